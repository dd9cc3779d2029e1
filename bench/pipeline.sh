#!/usr/bin/env bash
# pipeline.sh -- images per second through the whole pipeline, against the machine's hashing ceiling.
#
# Usage: bash bench/pipeline.sh [BOARDS [THREADS [POSTS]]]
#   PICTURES=media (the default): tiny PNGs; 8 50 25 by default, 10000 posts
#   PICTURES=photos: JPEGs of 0.3 to 2 megapixels; 4 20 25 by default, 2000 posts
#   RUNS=3 runs; the commands of docs/benchmarks.md are
#   RUNS=5 bash bench/pipeline.sh  and  RUNS=5 PICTURES=photos bash bench/pipeline.sh
#
# Starts its own RabbitMQ and PostgreSQL (tests/lib/servers.sh, in a temporary
# directory, stopped at exit) and the fixture server (tests/support/
# fixture_server.py), which plays a 4chan-like site "bench" of BOARDS generated
# boards of THREADS threads of POSTS posts each, every post with a picture
# (images=10), every thread body rendered beforehand (prerender=1).
# Everything runs on this machine, with the rate limits lifted: rps 1000000
# in the sites file, --rps-per-host 0 for the hasher, which may download from
# loopback (--allow-net 127.0.0.0/8).
#
# The pictures (PICTURES):
#   media      the fixture's PNGs, 24 to 250 pixels a side, 0.1 to 50 KB,
#              each downloaded once into MEDIA/<board>/<tim>.png, the path
#              of its URL under the site's media, and served by bench_media
#              (bench/media.c, a static file server on libmicrohttpd) as the
#              site's "media" host: a real board's pictures come from its CDN,
#              not from the crawler's machine, and the Python fixture server
#              would spend 0.12 ms of CPU a picture, as much as hashing one,
#              taken from the pipeline being measured.  The thread JSON comes
#              from the fixture server.  The hard case: the work around the
#              hashing weighs most next to hashing a small picture.
#   fixture    the same PNGs served by the fixture server itself.
#   photos     what boards serve: a JPEG of 0.3 to 2 megapixels for every
#              post, each its own bytes and pixels, made from Debian's
#              wallpapers (mate-backgrounds) by bench/pipeline_photos.py,
#              which also rewrites the fixture's thread JSON to name them
#              (ext, md5, fsize, w, h); bench_media serves the site's JSON
#              and the photos, the fixture server nothing during the runs.
#              The photos are kept in PHOTO_CACHE (build/bench-photos, or
#              the build directory's bench-photos) for the next time.
#
# Then, in each run, on a fresh exchange pipe<run>:
#   ceiling    imgfeed-hasher hash over every file, NCPU = nproc processes at
#              once, each started once over its share of the files (shares
#              of equal pixels, which is what decoding and hashing take), its
#              output written to a file: the machine's hashing ceiling; right
#              before and right after the pipeline, the two averaged, so
#              that the machine's drift (its other tenants) weighs on it as
#              on the pipeline.  Its time is the slowest process's; its CPU
#              all of theirs: "hash alone" per image
#   pipeline   imgfeed-archiver and imgfeed-hasher (defaults, apart from the
#              above: --threads 0, one hashing thread per core) are started and
#              ready (both queues have their consumer); the clock starts with
#              imgfeed-crawler --once (fresh --state-dir) and stops at the
#              commit of the last row (track_commit_timestamp), once every post
#              is a row; the rows must hold one `_img` entry each, without
#              error, whose sha1 is that of the file served
# and prints, per run and as the median of the runs: pipeline and ceiling in
# images per second and their ratio (goal with photos: at least 0.80); the
# CPU per image of each process during the pipeline run: the hasher's main
# thread (broker, downloads, JSON) and its hashing threads, RabbitMQ,
# PostgreSQL (every backend and helper process), the archiver, the crawler,
# and the site's stand-ins (the fixture server and bench_media, which are
# not part of the pipeline); the CPU `hash` spends per image in the ceiling
# runs; and the CPU the pipeline adds per image: its own processes' (crawler,
# hasher, archiver, RabbitMQ, PostgreSQL) minus what `hash` alone spends
# (the goal on tiny pictures: half of what it was, docs/benchmarks.md).  CPU
# per image is what to compare while other work shares the machine; images
# per second only on a quiet one.  The archiver runs with its defaults: its
# last batch is written once no message came for --flush-quiet (10 ms), not
# after --flush-interval.
# PERF=FILE records the hasher during the pipeline of run 1 with perf record
# (999 Hz, or PERF_HZ; DWARF call graphs, attached to its pid; on few cores
# perf's own CPU slows the run): read it with perf report -i FILE
# --no-children --sort dso,sym (add --tid of the main thread for its share).
# PERF_PID_OF=archiver|postgres|rabbitmq records that process instead (for
# postgres, the archiver's backend).
# KEEP_LOGS=DIR keeps the logs of the crawler, the hasher and the archiver of
# each run in DIR/run<run>/.
# HASHER_OPTS and ARCHIVER_OPTS replace the extra options of those two
# ("--threads 1", "--flush-interval 1s").
# LIVE_VIEWERS=N runs the pipeline a second time in each run, on a fresh
# exchange pipe<run>v, with imgfeed-live attached (defaults) and N viewers of
# bench_sse (bench/sse.c; a tenth of them stalled, the others reading every
# event) watching it; it prints that rate beside the one without, and the
# live view's CPU.
# METRICS=1 runs the pipeline a second time in each run, on a fresh exchange
# pipe<run>m, with the crawler, the hasher and the archiver serving their
# metrics (--metrics-listen 127.0.0.1:0) and bench_scrape (bench/scrape.c)
# scraping each every METRICS_SCRAPE_MS (1000; Prometheus' default is
# 15000) during the run; the two runs alternate which goes first.  It prints
# that rate beside the one without (their ratio: the cost of the metrics,
# against the spread between runs: the noise) and the scrape times of each
# busy process (p50, p99, max).
# Builds Release binaries in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PICTURES=${PICTURES:-media}
if [[ $PICTURES == photos ]]; then
    BOARDS=${1:-4}
    THREADS=${2:-20}
else
    BOARDS=${1:-8}
    THREADS=${2:-50}
fi
POSTS=${3:-25}
RUNS=${RUNS:-3}
read -r -a HASHER_OPTS <<<"${HASHER_OPTS:-}"
read -r -a ARCHIVER_OPTS <<<"${ARCHIVER_OPTS:-}"
PERF=${PERF:-}
PERF_PID_OF=${PERF_PID_OF:-hasher}
KEEP_LOGS=${KEEP_LOGS:-}
SITE=bench
GOAL=0.80
BENCH=pipeline.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[[ $PICTURES == media || $PICTURES == fixture || $PICTURES == photos ]] || { echo "pipeline.sh: PICTURES is media, fixture or photos" >&2; exit 2; }
[[ $PERF_PID_OF =~ ^(hasher|archiver|postgres|rabbitmq)$ ]] || { echo "pipeline.sh: PERF_PID_OF is hasher, archiver, postgres or rabbitmq" >&2; exit 2; }
for v in BOARDS THREADS POSTS RUNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/pipeline.sh [BOARDS [THREADS [POSTS]]] (positive integers; RUNS too)" >&2; exit 2; }
done
for tool in "$PGBIN/psql" /usr/bin/time /usr/lib/rabbitmq/bin/rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmqctl "$PY"; do
    [[ -x $tool ]] || { echo "pipeline.sh: $tool missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
done
[[ -z $PERF ]] || command -v perf >/dev/null || { echo "pipeline.sh: PERF needs perf: apt-get install linux-perf" >&2; exit 2; }
NPOSTS=$((BOARDS * THREADS * POSTS))
NCPU=$(nproc)

bench_build imgfeed-crawler imgfeed-hasher imgfeed-archiver imgfeed-live bench_sse bench_scrape
[[ $PICTURES == fixture ]] || bench_build bench_media
PHOTO_CACHE=${PHOTO_CACHE:-$BUILD/bench-photos}
CRAWLER=$BUILD/crawler/imgfeed-crawler
HASHER=$BUILD/hasher/imgfeed-hasher
ARCHIVER=$BUILD/archiver/imgfeed-archiver
MEDIA_SERVER=$BUILD/bench/bench_media
LIVE_VIEWERS=${LIVE_VIEWERS:-0}
LIVE=$BUILD/live/imgfeed-live
SSE=$BUILD/bench/bench_sse
METRICS=${METRICS:-0}
METRICS_SCRAPE_MS=${METRICS_SCRAPE_MS:-1000}
SCRAPE=$BUILD/bench/bench_scrape
SCRAPE_PID=

MEDIA_PID=
HASHER_PID=
ARCHIVER_PID=
CRAWLER_PID=
PERF_PID=
POLL_PID=
LIVE_PID=
SSE_PID=
bench_stop_processes() {
    local pid
    for pid in "$SSE_PID" "$LIVE_PID" "$SCRAPE_PID"; do
        [[ -z $pid ]] || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
    done
    if [[ -n $PERF_PID ]]; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
    fi
    if [[ -n $CRAWLER_PID ]]; then
        pkill -KILL -P "$CRAWLER_PID" 2>/dev/null || true # the crawler, child of /usr/bin/time
    fi
    for pid in "$HASHER_PID" "$ARCHIVER_PID" "$MEDIA_PID" "$POLL_PID"; do
        [[ -z $pid ]] || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
    done
}
bench_start_servers
# Commit times tell when the last row was stored.
bench_track_commits
"$ARCHIVER" --init-db --pg "$IMGFEED_PG" --log-level warn

# The fixture server and the site.
CACHE_MB=$((NPOSTS * 400 / 1000000 + 64))
((CACHE_MB > 256)) || CACHE_MB=256
bench_start_fixture "$CACHE_MB"
control "site?name=$SITE&kind=4chan" >/dev/null
boards_json=
for b in $(seq "$BOARDS"); do
    control "board?site=$SITE&board=b$b&threads=$THREADS&posts=$POSTS&images=10&seed=$b&prerender=1" >/dev/null
    boards_json+="${boards_json:+,}\"b$b\""
done
# The pictures, and "id sha1" lines (WORK/sha1) of every post's file.
# media, fixture: every picture downloaded once from the fixture server into
# MEDIA/<board>/<tim>.png (the path of its URL under the site's media);
# photos: the static site of pipeline_photos.py under WORK/www.
start_media_server() {
    "$MEDIA_SERVER" --root "$1" --port-file "$WORK/media.port" 2>"$WORK/media.log" &
    MEDIA_PID=$!
    for _ in $(seq 100); do [[ -s $WORK/media.port ]] && break; sleep 0.1; done
    [[ -s $WORK/media.port ]] || { cat "$WORK/media.log" >&2; echo "pipeline.sh: bench_media did not start" >&2; exit 1; }
    MEDIA_HOST=http://127.0.0.1:$(cat "$WORK/media.port")
}
if [[ $PICTURES == photos ]]; then
    mkdir "$WORK/www"
    "$PY" "$ROOT/bench/pipeline_photos.py" "$BASE" "$SITE" "$BOARDS" "$WORK/www" "$WORK/sha1" "$PHOTO_CACHE" >/dev/null
    MEDIA_DIR=$WORK/www/media
    start_media_server "$WORK/www"
    API_BASE=$MEDIA_HOST/site
    MEDIA_BASE=$MEDIA_HOST/media
    KIND="JPEGs (photos)"
else
    mkdir "$WORK/media"
    MEDIA_DIR=$WORK/media
    "$PY" - "$BASE" "$SITE" "$BOARDS" "$WORK/media" "$WORK/sha1" <<'PYEOF'
import hashlib, http.client, json, os, sys
base, site, boards, out, sha1_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
host, port = base.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))
prefix = f"/{site}/media/"
def get(path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status}")
    return body
with open(sha1_out, "w") as s:
    for b in range(1, boards + 1):
        os.mkdir(f"{out}/b{b}")
        info = json.loads(get(f"/_control/chan/info?site={site}&board=b{b}"))
        for th in info["threads"]:
            t = json.loads(get(f"/_control/chan/info?site={site}&board=b{b}&no={th['no']}"))
            if len(t["files"]) != len(t["post_nos"]):
                sys.exit(f"thread {th['no']} of b{b}: {len(t['files'])} files for {len(t['post_nos'])} posts")
            for f in t["files"]:
                if not f["path"].startswith(prefix + f"b{b}/"):
                    sys.exit(f"{f['path']}: not under {prefix}b{b}/")
                body = get(f["path"])
                with open(out + "/" + f["path"][len(prefix):], "wb") as o:
                    o.write(body)
                s.write(f"b{b}.{f['no']} {hashlib.sha1(body).hexdigest()}\n")
PYEOF
    # The picture host: bench_media over those files, or (PICTURES=fixture) the
    # fixture server itself.
    API_BASE=$BASE/$SITE
    if [[ $PICTURES == media ]]; then
        start_media_server "$WORK/media"
        MEDIA_BASE=$MEDIA_HOST
    else
        MEDIA_BASE=$BASE/$SITE/media
    fi
    KIND="PNGs (tiny)"
fi
cat >"$WORK/sites.json" <<JSON
{"user_agent": "imgfeed-bench/1 (bench/pipeline.sh)",
 "sites": [{"name": "$SITE", "kind": "4chan", "api": "$API_BASE", "media": "$MEDIA_BASE",
            "boards": [$boards_json], "rps": 1000000}]}
JSON
NFILES=$(wc -l <"$WORK/sha1")
((NFILES == NPOSTS)) || { echo "pipeline.sh: $NFILES pictures for $NPOSTS posts" >&2; exit 1; }
sort "$WORK/sha1" -o "$WORK/sha1"
FILES_MB=$(du -sm "$MEDIA_DIR" | cut -f1)
# The ceiling's shares, WORK/part.<i> (paths relative to MEDIA_DIR): files
# of equal pixels in all, largest first to the share with the fewest so far.
(cd "$MEDIA_DIR" && find . -type f -name '*.*' | sed 's|^\./||' | sort) >"$WORK/all"
PIXELS=$("$PY" - "$MEDIA_DIR" "$WORK/all" "$NCPU" "$WORK/part" <<'PYEOF'
import os, sys
from PIL import Image
root, listing, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = []
for name in open(listing).read().splitlines():
    with Image.open(os.path.join(root, name)) as im:
        files.append((im.width * im.height, os.path.getsize(os.path.join(root, name)), name))
files.sort(reverse=True)
shares = [[0, 0, []] for _ in range(n)]
for px, size, name in files:
    s = min(shares, key=lambda s: (s[0], s[1]))
    s[0] += px
    s[1] += size
    s[2].append(name)
for i, s in enumerate(shares):
    with open(f"{out}.{i}", "w") as f:
        f.write("".join(name + "\n" for name in sorted(s[2])))
total = sum(f[0] for f in files)
print(f"{total / len(files) / 1e6:.3f} {min(f[0] for f in files) / 1e6:.3f} {max(f[0] for f in files) / 1e6:.3f}")
PYEOF
)
read -r PX_MEAN PX_MIN PX_MAX <<<"$PIXELS"

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $NCPU cores, $(free -g | awk '/^Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "servers:   PostgreSQL $(psql -c 'SHOW server_version'), RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), fixture server on $BASE"
echo "site:      $BOARDS boards x $THREADS threads x $POSTS posts = $NPOSTS posts, each with a picture: $NFILES $KIND, $FILES_MB MB,"
echo "           $PX_MIN to $PX_MAX megapixels, $PX_MEAN on average; JSON from $API_BASE, pictures from $MEDIA_BASE"
echo "crawler:   $CRAWLER --once (rps 1000000, fresh --state-dir)"
HASH_THREADS="$NCPU, one per core"
if [[ " ${HASHER_OPTS[*]} " =~ \ --threads\ ([0-9]+)\  ]] && ((BASH_REMATCH[1] > 0)); then HASH_THREADS=${BASH_REMATCH[1]}; fi
echo "hasher:    $HASHER --allow-net 127.0.0.0/8 --rps-per-host 0${HASHER_OPTS[*]:+ ${HASHER_OPTS[*]}} (hashing threads: $HASH_THREADS)"
echo "archiver:  $ARCHIVER${ARCHIVER_OPTS[*]:+ ${ARCHIVER_OPTS[*]}}"
echo "ceiling:   $HASHER hash, $NCPU processes at once, each over a share of the files of equal pixels"
echo

# wait_ready E: both queues of exchange E have their consumer.
wait_ready() {
    local e=$1 deadline=$((SECONDS + 60)) list
    while ((SECONDS < deadline)); do
        list=$(rabbitmqctl list_queues name consumers 2>/dev/null || true)
        if grep -qE "^$e\.hasher[[:space:]]+[1-9]" <<<"$list" && grep -qE "^$e\.archiver[[:space:]]+[1-9]" <<<"$list"; then
            return 0
        fi
        sleep 0.2
    done
    echo "pipeline.sh: the hasher and the archiver of $e never both consumed" >&2
    return 1
}

# The rows stored so far are counted by one psql that stays connected for
# the run (reading queries from a fifo, answering through another), and not
# often: a psql and a PostgreSQL backend started for every poll, or a count
# every few milliseconds, would take their CPU from the pipeline.  The time
# measured comes from the commit stamps, not from the polls.
# bench_poll(E, WANT, T0) counts the rows of E's two tables (0 for a table
# not made yet) and says how long to sleep before the next count: half the
# time the rest should take at the rate so far since T0 (epoch seconds),
# between 0.02 and 0.5 s (poll_install makes it, once).
poll_install() {
    psql -c "CREATE OR REPLACE FUNCTION bench_poll(e text, want bigint, t0 float8) RETURNS text LANGUAGE plpgsql AS \$\$
        DECLARE t text; n bigint; total bigint := 0; spent float8;
        BEGIN
            FOREACH t IN ARRAY ARRAY[e || '_${SITE}_thread', e || '_${SITE}_post'] LOOP
                IF to_regclass(quote_ident(t)) IS NOT NULL THEN
                    EXECUTE format('SELECT count(*) FROM %I', t) INTO n;
                    total := total + n;
                END IF;
            END LOOP;
            spent := extract(epoch FROM clock_timestamp()) - t0;
            RETURN total || ' ' || CASE WHEN total = 0 THEN 0.05
                ELSE round(greatest(0.02, least(0.5, (want - total) * spent / total / 2))::numeric, 3) END;
        END \$\$"
}

poll_start() {
    rm -f "$WORK/poll.in" "$WORK/poll.out"
    mkfifo "$WORK/poll.in" "$WORK/poll.out"
    "$PGBIN/psql" "$IMGFEED_PG" -AtqX <"$WORK/poll.in" >"$WORK/poll.out" 2>&1 &
    POLL_PID=$!
    exec {POLL_IN}>"$WORK/poll.in" {POLL_OUT}<"$WORK/poll.out"
}

# rows_stored E T0: ROWS = the rows of E's tables, NAP = the seconds until the next count.
rows_stored() {
    local answer
    echo "SELECT bench_poll('$1', $NPOSTS, $2);" >&"$POLL_IN"
    read -r -t 10 answer <&"$POLL_OUT" || { echo "pipeline.sh: the polling psql did not answer" >&2; exit 1; }
    [[ $answer =~ ^[0-9]+\ [0-9.]+$ ]] || { echo "pipeline.sh: the polling psql said: $answer" >&2; exit 1; }
    read -r ROWS NAP <<<"$answer"
}

poll_stop() {
    exec {POLL_IN}>&- {POLL_OUT}<&-
    wait "$POLL_PID" 2>/dev/null || true
    POLL_PID=
}

# stop_daemon PID LOG NAME: SIGTERM, it must exit 0.
stop_daemon() {
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    ((rc == 0)) || { tail -n 20 "$2" >&2; echo "pipeline.sh: $3 exited $rc after SIGTERM" >&2; exit 1; }
}

# live_attach E: imgfeed-live on exchange E and LIVE_VIEWERS viewers of it
# (bench_sse, watching only, a tenth stalled); LIVE_CPU0 its CPU then.
live_attach() {
    "$LIVE" --exchange "$1" --amqp-url "$IMGFEED_AMQP_URL" --listen 127.0.0.1:0 --max-viewers $((LIVE_VIEWERS + 10)) \
        >"$WORK/live.log" 2>&1 &
    LIVE_PID=$!
    local port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/live.log" | head -n 1)
        [[ -z $port ]] || break
        sleep 0.1
    done
    [[ -n $port ]] || { cat "$WORK/live.log" >&2; echo "pipeline.sh: imgfeed-live did not start" >&2; exit 1; }
    "$SSE" --port "$port" --viewers "$LIVE_VIEWERS" --stalled $((LIVE_VIEWERS / 10)) --seconds 3600 >"$WORK/sse.out" 2>&1 &
    SSE_PID=$!
    LIVE_PORT=$port
    for _ in $(seq 100); do
        [[ $(curl -fsS "http://127.0.0.1:$port/stats" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["viewers"])') == "$LIVE_VIEWERS" ]] && break
        sleep 0.1
    done
    LIVE_CPU0=$(proc_cpu "$LIVE_PID")
    SSE_CPU0=$(proc_cpu "$SSE_PID")
}

# live_detach: LIVE_CPU (its CPU during the run) and LIVE_STATS; both stopped.
live_detach() {
    LIVE_CPU=$(sub "$(proc_cpu "$LIVE_PID")" "$LIVE_CPU0")
    SSE_CPU=$(sub "$(proc_cpu "$SSE_PID")" "$SSE_CPU0")
    LIVE_STATS=$(curl -fsS "http://127.0.0.1:$LIVE_PORT/stats")
    kill -KILL "$SSE_PID" 2>/dev/null || true
    wait "$SSE_PID" 2>/dev/null || true
    SSE_PID=
    stop_daemon "$LIVE_PID" "$WORK/live.log" imgfeed-live
    LIVE_PID=
    echo "$LIVE_CPU $SSE_CPU $LIVE_STATS" >"$WORK/live.out"
}

# metrics_port LOG: the port a program logged "(metrics port N)" in LOG, once it has.
metrics_port() {
    local port
    for _ in $(seq 200); do
        port=$(grep -o 'metrics port [0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$' | tail -n 1 || true)
        [[ -z $port ]] || { echo "$port"; return 0; }
        sleep 0.01
    done
    echo "pipeline.sh: no metrics port in $1" >&2
    exit 1
}

# scrape_start: bench_scrape on the three programs' /metrics during the run
# (without the row poller's pipe, which would keep psql from seeing its end).
scrape_start() {
    local c h a
    c=$(metrics_port "$WORK/crawler.log")
    h=$(metrics_port "$WORK/hasher.log")
    a=$(metrics_port "$WORK/archiver.log")
    "$SCRAPE" --interval-ms "$METRICS_SCRAPE_MS" "http://127.0.0.1:$c/metrics" "http://127.0.0.1:$h/metrics" \
        "http://127.0.0.1:$a/metrics" >"$WORK/scrape.out" 2>&1 {POLL_IN}>&- {POLL_OUT}<&- &
    SCRAPE_PID=$!
}

scrape_stop() {
    kill -TERM "$SCRAPE_PID"
    wait "$SCRAPE_PID" || true
    SCRAPE_PID=
    # crawler hasher archiver: "scrapes p50 p99 max bytes" each
    awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           printf "%s %s %s %s %s ", v["scrapes"], v["p50_ms"], v["p99_ms"], v["max_ms"], v["bytes"] }' \
        "$WORK/scrape.out" >"$WORK/scrape.line"
}

# pipeline_run R: prints "seconds images first_row_seconds first_commit_rows crawler_cpu hasher_cpu archiver_cpu fixture_cpu rabbit_cpu pg_cpu media_cpu crawler_seconds hasher_main_thread_cpu
# busy_ticks idle_ticks" (the last two: the whole machine's, from the start to the last row seen).
pipeline_run() {
    local r=$1 e=pipe$1 t0 h0 hm0 a0 f0 q0 p0 m0=0 busy0 idle0 metrics=()
    [[ $r != *m ]] || metrics=(--metrics-listen 127.0.0.1:0)
    "$ARCHIVER" --exchange "$e" --pg "$IMGFEED_PG" --amqp-url "$IMGFEED_AMQP_URL" "${ARCHIVER_OPTS[@]}" "${metrics[@]}" \
        >"$WORK/archiver.log" 2>&1 &
    ARCHIVER_PID=$!
    "$HASHER" --exchange "$e" --amqp-url "$IMGFEED_AMQP_URL" --allow-net 127.0.0.0/8 --rps-per-host 0 \
        "${HASHER_OPTS[@]}" "${metrics[@]}" >"$WORK/hasher.log" 2>&1 &
    HASHER_PID=$!
    wait_ready "$e" || { tail -n 20 "$WORK/hasher.log" "$WORK/archiver.log" >&2; exit 1; }
    [[ $r != *v ]] || live_attach "$e"
    h0=$(proc_cpu "$HASHER_PID")
    hm0=$(main_thread_cpu "$HASHER_PID")
    a0=$(proc_cpu "$ARCHIVER_PID")
    f0=$(proc_cpu "$FIXTURE_PID")
    [[ -z $MEDIA_PID ]] || m0=$(proc_cpu "$MEDIA_PID")
    q0=$(proc_cpu "$RABBIT_PID")
    p0=$(pg_cpu)
    if [[ -n $PERF && $r == 1 ]]; then
        local perf_pid=$HASHER_PID
        case $PERF_PID_OF in
        archiver) perf_pid=$ARCHIVER_PID ;;
        rabbitmq) perf_pid=$RABBIT_PID ;;
        postgres)
            perf_pid=$(psql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'imgfeed-archiver' LIMIT 1")
            [[ -n $perf_pid ]] || { echo "pipeline.sh: no backend of the archiver" >&2; exit 1; }
            ;;
        esac
        perf record -F "${PERF_HZ:-999}" --call-graph dwarf,16384 -p "$perf_pid" -o "$PERF" >"$WORK/perf.log" 2>&1 &
        PERF_PID=$!
        sleep 1 # perf attaches
    fi
    poll_start
    read -r busy0 idle0 <<<"$(cpu_ticks)"
    t0=$(now)
    /usr/bin/time -f '%U %S %e' -o "$WORK/crawler.time" "$CRAWLER" --once --sites "$WORK/sites.json" \
        --state-dir "$WORK/state$r" --exchange "$e" --amqp-url "$IMGFEED_AMQP_URL" "${metrics[@]}" >"$WORK/crawler.log" 2>&1 &
    CRAWLER_PID=$!
    [[ $r != *m ]] || scrape_start
    while :; do
        if [[ -n $CRAWLER_PID ]] && ! kill -0 "$CRAWLER_PID" 2>/dev/null; then
            local rc=0
            wait "$CRAWLER_PID" || rc=$?
            CRAWLER_PID=
            ((rc == 0)) || { tail -n 20 "$WORK/crawler.log" >&2; echo "pipeline.sh: the crawler exited $rc" >&2; exit 1; }
        fi
        kill -0 "$HASHER_PID" 2>/dev/null || { tail -n 20 "$WORK/hasher.log" >&2; echo "pipeline.sh: the hasher exited" >&2; exit 1; }
        kill -0 "$ARCHIVER_PID" 2>/dev/null || { tail -n 20 "$WORK/archiver.log" >&2; echo "pipeline.sh: the archiver exited" >&2; exit 1; }
        rows_stored "$e" "$t0"
        ((ROWS >= NPOSTS)) && break
        sleep "$NAP"
    done
    local busy1 idle1
    read -r busy1 idle1 <<<"$(cpu_ticks)"
    poll_stop
    [[ $r != *v ]] || live_detach
    [[ $r != *m ]] || scrape_stop
    local h1 hm1 a1 f1 q1 p1 m1=0
    if [[ -n $PERF_PID ]]; then
        kill -INT "$PERF_PID"
        wait "$PERF_PID" || { cat "$WORK/perf.log" >&2; echo "pipeline.sh: perf record failed" >&2; }
        PERF_PID=
    fi
    h1=$(proc_cpu "$HASHER_PID")
    hm1=$(main_thread_cpu "$HASHER_PID")
    a1=$(proc_cpu "$ARCHIVER_PID")
    f1=$(proc_cpu "$FIXTURE_PID")
    [[ -z $MEDIA_PID ]] || m1=$(proc_cpu "$MEDIA_PID")
    q1=$(proc_cpu "$RABBIT_PID")
    p1=$(pg_cpu)
    if [[ -n $CRAWLER_PID ]]; then
        local rc=0
        wait "$CRAWLER_PID" || rc=$?
        CRAWLER_PID=
        ((rc == 0)) || { tail -n 20 "$WORK/crawler.log" >&2; echo "pipeline.sh: the crawler exited $rc" >&2; exit 1; }
    fi
    local crawler_cpu crawler_wall
    crawler_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$WORK/crawler.time")
    crawler_wall=$(awk '{ print $3 }' "$WORK/crawler.time")
    stop_daemon "$HASHER_PID" "$WORK/hasher.log" imgfeed-hasher
    HASHER_PID=
    stop_daemon "$ARCHIVER_PID" "$WORK/archiver.log" imgfeed-archiver
    ARCHIVER_PID=
    if [[ -n $KEEP_LOGS ]]; then
        mkdir -p "$KEEP_LOGS/run$r"
        cp "$WORK/crawler.log" "$WORK/hasher.log" "$WORK/archiver.log" "$KEEP_LOGS/run$r/"
    fi
    local last
    # The commits: the last one, and the first one with its rows (a commit may
    # hold rows of both tables).
    local last first first_rows
    read -r last first first_rows <<<"$(psql -F ' ' -c "
        WITH c AS (SELECT pg_xact_commit_timestamp(xmin) AS c FROM ${e}_${SITE}_thread
                   UNION ALL SELECT pg_xact_commit_timestamp(xmin) FROM ${e}_${SITE}_post)
        SELECT extract(epoch FROM max(c)), extract(epoch FROM min(c)),
               (SELECT count(*) FROM c WHERE c = (SELECT min(c) FROM c)) FROM c")"
    # Every post once, one `_img` entry each, no error, the sha1 of the file downloaded.
    psql -F ' ' -c "SELECT id, e->>'sha1' FROM (SELECT id, data FROM ${e}_${SITE}_thread UNION ALL SELECT id, data FROM ${e}_${SITE}_post) p,
                    jsonb_array_elements(p.data->'_img') e WHERE NOT e ? 'error' ORDER BY 1" >"$WORK/got.sha1"
    local entries errors
    entries=$(psql -c "SELECT count(*) FROM (SELECT data FROM ${e}_${SITE}_thread UNION ALL SELECT data FROM ${e}_${SITE}_post) p, jsonb_array_elements(p.data->'_img')")
    errors=$(psql -c "SELECT count(*) FROM (SELECT data FROM ${e}_${SITE}_thread UNION ALL SELECT data FROM ${e}_${SITE}_post) p, jsonb_array_elements(p.data->'_img') e WHERE e ? 'error'")
    ((errors == 0)) || { echo "pipeline.sh: run $r: $errors _img entries with an error" >&2; exit 1; }
    ((entries == NFILES)) || { echo "pipeline.sh: run $r: $entries _img entries for $NFILES pictures" >&2; exit 1; }
    LC_ALL=C sort -o "$WORK/got.sha1" "$WORK/got.sha1"
    LC_ALL=C sort -o "$WORK/sha1" "$WORK/sha1"
    cmp -s "$WORK/got.sha1" "$WORK/sha1" || { diff "$WORK/got.sha1" "$WORK/sha1" | head >&2; echo "pipeline.sh: run $r: the archive's sha1s differ from the files'" >&2; exit 1; }
    psql -c "DROP TABLE ${e}_${SITE}_thread, ${e}_${SITE}_post; DELETE FROM imgfeed_tables WHERE exchange = '$e'"
    echo "$(sub "$last" "$t0") $entries $(sub "$first" "$t0") $first_rows $crawler_cpu $(sub "$h1" "$h0") $(sub "$a1" "$a0") $(sub "$f1" "$f0") $(sub "$q1" "$q0") $(sub "$p1" "$p0") $(sub "$m1" "$m0") $crawler_wall $(sub "$hm1" "$hm0") $((busy1 - busy0)) $((idle1 - idle0))"
}

# hash_ceiling: "seconds cpu_seconds" of imgfeed-hasher hash over every file,
# NCPU processes at once, each started once over its share (WORK/part.<i>),
# its output in a file: the seconds of the slowest, the CPU of all.
hash_ceiling() {
    local i pids=() rc lines=0 files
    for ((i = 0; i < NCPU; i++)); do
        mapfile -t files <"$WORK/part.$i"
        (cd "$MEDIA_DIR" && exec /usr/bin/time -f '%e %U %S' -o "$WORK/ceiling.$i.time" "$HASHER" hash "${files[@]}" \
            >"$WORK/ceiling.$i.out") &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        ((rc == 0)) || { tail -n 3 "$WORK/ceiling.$i.out" >&2; echo "pipeline.sh: imgfeed-hasher hash exited $rc" >&2; exit 1; }
        lines=$((lines + $(grep -c '"sha1"' "$WORK/ceiling.$i.out")))
    done
    ((lines == NFILES)) || { echo "pipeline.sh: imgfeed-hasher hash hashed $lines of $NFILES files" >&2; exit 1; }
    awk '{ if ($1 > s) s = $1; c += $2 + $3 } END { printf "%.3f %.2f", s, c }' "$WORK"/ceiling.*.time
}

# The fields of a line of WORK/results, in order (report.py reads them by name).
RESULT_FIELDS="run seconds images first_row_seconds first_commit_rows crawler hasher archiver fixture rabbitmq postgres
media crawler_seconds hasher_main busy_ticks idle_ticks ceiling_before ceiling_cpu_before ceiling_after ceiling_cpu_after"

# report LAST|MEDIAN: one run's numbers (the last line of WORK/results) or the medians of all.
report() {
    "$PY" - "$1" "$WORK/results" "$PICTURES" "$GOAL" "$NCPU" "$RESULT_FIELDS" <<'PYEOF'
import statistics, sys
what, path, pictures, goal, ncpu, names = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6].split()
runs = [dict(zip(names, line.split())) for line in open(path)]

def derived(r):
    """The numbers of one run, per image in milliseconds of CPU."""
    f = {k: float(v) for k, v in r.items() if k != "run"}
    n = f["images"]
    d = {"pipeline": n / f["seconds"],
         "ceiling": n / ((f["ceiling_before"] + f["ceiling_after"]) / 2),
         "sustained": (n - f["first_commit_rows"]) / (f["seconds"] - f["first_row_seconds"]),
         "idle": f["idle_ticks"] / max(1, f["busy_ticks"] + f["idle_ticks"]),
         "first_row": f["first_row_seconds"], "crawler_seconds": f["crawler_seconds"], "seconds": f["seconds"],
         "ceiling_before": f["ceiling_before"], "ceiling_after": f["ceiling_after"]}
    d["ratio"] = d["pipeline"] / d["ceiling"]
    ms = lambda cpu: 1000 * cpu / n
    d["main"] = ms(f["hasher_main"])
    d["threads"] = ms(f["hasher"] - f["hasher_main"])
    for k in ("rabbitmq", "postgres", "archiver", "crawler", "fixture", "media"):
        d[k] = ms(f[k])
    d["alone"] = ms((f["ceiling_cpu_before"] + f["ceiling_cpu_after"]) / 2)
    d["own"] = d["main"] + d["threads"] + d["rabbitmq"] + d["postgres"] + d["archiver"] + d["crawler"]
    d["added"] = d["own"] - d["alone"]
    return d

def cpu_lines(d, indent):
    return (f"{indent}CPU ms per image: hasher main thread {d['main']:.3f}, hashing threads {d['threads']:.3f},"
            f" RabbitMQ {d['rabbitmq']:.3f}, PostgreSQL {d['postgres']:.3f}, archiver {d['archiver']:.3f},"
            f" crawler {d['crawler']:.3f}; the site's servers: fixture {d['fixture']:.3f}, pictures {d['media']:.3f}\n"
            f"{indent}pipeline {d['own']:.3f} (its own processes, servers apart) - hash alone {d['alone']:.3f}"
            f" = added {d['added']:.3f} ms per image (hashing threads - hash alone {d['threads'] - d['alone']:+.3f},"
            f" the rest {d['added'] - d['threads'] + d['alone']:.3f})")

ds = [derived(r) for r in runs]
n = int(runs[0]["images"])
if what == "last":
    d, r = ds[-1], runs[-1]
    print(f"run {r['run']}: pipeline {d['pipeline']:7.1f} images/s ({n} in {d['seconds']:.2f} s)   ceiling {d['ceiling']:7.1f} images/s"
          f" ({d['ceiling_before']:.2f} s before, {d['ceiling_after']:.2f} s after)   pipeline/ceiling {d['ratio']:.2f}")
    print(f"       first row committed after {d['first_row']:.2f} s; from then on {d['sustained']:.1f} images/s"
          f" ({d['sustained'] / d['ceiling']:.2f} of the ceiling); the crawler was done after {d['crawler_seconds']:.2f} s;"
          f" the machine was idle {100 * d['idle']:.0f}% of the time")
    print(cpu_lines(d, "       "))
    sys.exit(0)
med = {k: statistics.median(d[k] for d in ds) for k in ds[0]}
print()
print(f"median of {len(ds)} run{'s' if len(ds) > 1 else ''}, {n} images ({pictures}):")
print(f"  pipeline (crawl -> hash -> archive, until the last row is committed)  {med['pipeline']:8.1f} images/s")
print(f"  ceiling: imgfeed-hasher hash, {ncpu} processes at once                   {med['ceiling']:8.1f} images/s")
verdict = f"(goal: >= {goal:.2f}: {'met' if med['ratio'] >= goal else 'MISSED'})" if pictures == "photos" else "(goal with photos: >= %.2f)" % goal
ratios = ", ".join("%.2f" % d["ratio"] for d in ds)
print(f"  pipeline / ceiling  {med['ratio']:.2f} {verdict}   (runs: {ratios})")
print(f"  first row committed after {med['first_row']:.2f} s; from then on {med['sustained']:.1f} images/s ({med['sustained'] / med['ceiling']:.2f} of the ceiling)")
print(f"  the machine's cores were idle {100 * med['idle']:.0f}% of the time (/proc/stat, until the last row was seen)")
print(cpu_lines(med, "  "))
print("  added CPU ms per image, runs: " + ", ".join("%.3f" % d["added"] for d in ds))
PYEOF
}

poll_install
: >"$WORK/results"
for r in $(seq "$RUNS"); do
    # the ceiling right before and right after the pipeline, so that the
    # machine's drift (other tenants) weighs on both sides alike
    read -r cs0 ccpu0 <<<"$(hash_ceiling)"
    pipeline_run "$r" >"$WORK/pipeline.out"
    read -r cs1 ccpu1 <<<"$(hash_ceiling)"
    echo "$r $(cat "$WORK/pipeline.out") $cs0 $ccpu0 $cs1 $ccpu1" >>"$WORK/results"
    read -r ps _ <"$WORK/pipeline.out"
    if ((METRICS)); then
        # With metrics on, and then (odd runs) or before (even runs) the same
        # without, so that the order weighs on neither side.
        if ((r % 2 == 0)); then
            pipeline_run "${r}m" >"$WORK/pipeline_metrics.out"
            pipeline_run "${r}o" >"$WORK/pipeline_off.out"
        else
            pipeline_run "${r}o" >"$WORK/pipeline_off.out"
            pipeline_run "${r}m" >"$WORK/pipeline_metrics.out"
        fi
        read -r ops _ <"$WORK/pipeline_off.out"
        read -r mps _ <"$WORK/pipeline_metrics.out"
        echo "$r $ps $ops $mps $(cat "$WORK/scrape.line")" >>"$WORK/metrics_results"
        awk -v n="$NFILES" -v a="$ops" -v b="$mps" -v s="$(cat "$WORK/scrape.line")" 'BEGIN {
            split(s, f, " ")
            printf "       metrics off %.0f images/s, on %.0f images/s (scraped every '"$METRICS_SCRAPE_MS"' ms): on/off %.3f; scrapes (p50/p99/max ms, bytes): crawler %s/%s/%s %s, hasher %s/%s/%s %s, archiver %s/%s/%s %s\n",
                n / a, n / b, a / b, f[2], f[3], f[4], f[5], f[7], f[8], f[9], f[10], f[12], f[13], f[14], f[15] }'
    fi
    if ((LIVE_VIEWERS)); then
        pipeline_run "${r}v" >"$WORK/pipeline_live.out"
        read -r lps lpn _ <"$WORK/pipeline_live.out"
        read -r lcpu scpu lstats <"$WORK/live.out"
        echo "$r $ps $lps $lcpu $scpu" >>"$WORK/live_results"
        awk -v n="$lpn" -v a="$ps" -v b="$lps" -v v="$LIVE_VIEWERS" -v c="$lcpu" -v sc="$scpu" -v st="$lstats" 'BEGIN {
            printf "       with imgfeed-live and %d viewers: %.0f images/s, %.2f of the run without; CPU-s: imgfeed-live %.2f, the viewers (bench_sse) %.2f; %s\n",
                v, n / b, (n / b) / (n / a), c, sc, st }'
    fi
    report last
done
report median
if ((METRICS)); then
    "$PY" - "$WORK/metrics_results" <<'PYEOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
# r, plain run, metrics off, metrics on, then per program: scrapes p50 p99 max bytes
plain = [float(r[1]) for r in rows]
off = [float(r[2]) for r in rows]
on = [float(r[3]) for r in rows]
ratios = [o / m for o, m in zip(off, on)]  # rate on / rate off
noise = [p / o for p, o in zip(plain, off)]  # two runs alike, both off
print(f"  metrics on / off: {statistics.median(ratios):.3f} of the rate (runs: {', '.join(f'{x:.3f}' for x in ratios)});"
      f" two runs without, one against the other (the noise): {', '.join(f'{x:.3f}' for x in noise)}")
for k, name in enumerate(["crawler", "hasher", "archiver"]):
    base = 4 + 5 * k
    n = sum(int(r[base]) for r in rows)
    print(f"  scrapes of the busy {name}: {n}, p50 {statistics.median(float(r[base + 1]) for r in rows):.3f} ms,"
          f" p99 {max(float(r[base + 2]) for r in rows):.3f} ms, max {max(float(r[base + 3]) for r in rows):.3f} ms,"
          f" {rows[-1][base + 4]} bytes")
PYEOF
fi
if ((LIVE_VIEWERS)); then
    "$PY" - "$WORK/live_results" "$LIVE_VIEWERS" <<'PYEOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
ratios = [float(r[1]) / float(r[2]) for r in rows]
print(f"  with imgfeed-live and {sys.argv[2]} viewers: {statistics.median(ratios):.2f} of the rate without"
      f" (runs: {', '.join(f'{x:.2f}' for x in ratios)}); CPU-s a run: imgfeed-live {statistics.median(float(r[3]) for r in rows):.2f},"
      f" the viewers' client {statistics.median(float(r[4]) for r in rows):.2f}")
PYEOF
fi
