#!/usr/bin/env bash
# pipeline.sh -- images per second through the whole pipeline, against imgfeed-hasher hash alone.
#
# Usage: bash bench/pipeline.sh [BOARDS [THREADS [POSTS]]]   (default 8 50 25: 10000 posts; RUNS=3 runs)
#
# Starts its own RabbitMQ and PostgreSQL (tests/lib/servers.sh, in a temporary
# directory, stopped at exit) and the fixture server (tests/support/
# fixture_server.py), which plays a 4chan-like site "bench" of BOARDS generated
# boards of THREADS threads of POSTS posts each, every post with a picture
# (images=10; the fixture's PNGs, 24 to 250 pixels a side, 0.1 to 50 KB),
# every thread body rendered beforehand (prerender=1).  Everything runs on this
# machine, with the rate limits lifted: rps 1000000 in the sites file,
# --rps-per-host 0 for the hasher, which may download from loopback
# (--allow-net 127.0.0.0/8).
#
# Before the runs, every picture is downloaded once from the fixture server
# into MEDIA/<board>/<tim>.png, and bench_media (bench/media.c, a static file
# server on libmicrohttpd) serves that directory as the site's "media" host:
# a real board's pictures come from its CDN, not from the crawler's machine,
# and the Python fixture server would spend 0.12 ms of CPU a picture, as much
# as hashing one, taken from the pipeline being measured.  PICTURES=fixture
# serves them from the fixture server instead.  Then, in each run, on a fresh
# exchange pipe<run>:
#   pipeline   imgfeed-archiver and imgfeed-hasher (defaults, apart from the
#              above: --threads 0, one hashing thread per core) are started and
#              ready (both queues have their consumer); the clock starts with
#              imgfeed-crawler --once (fresh --state-dir) and stops at the
#              commit of the last row (track_commit_timestamp), once every post
#              is a row; the rows must hold one `_img` entry each, without
#              error, whose sha1 is that of the downloaded file
#   hash       imgfeed-hasher hash over the downloaded files, one process
#              (the command is single-threaded), right before and right
#              after the pipeline, averaged: the standalone rate, measured
#              on both sides so that the machine's drift (its other tenants)
#              weighs on it as on the pipeline
#   hash x N   the same files split over N = nproc processes at once: the
#              machine's hashing ceiling, for context
# and prints images per second of each, pipeline / hash (goal: at least
# 0.80), the CPU seconds each process spent during the pipeline run
# (crawler, hasher and its main thread apart, archiver, fixture server,
# picture server, RabbitMQ, PostgreSQL), which say where the time went, and
# how long the machine's cores were idle (/proc/stat).  The archiver runs
# with its defaults: its last batch is written once no message came for
# --flush-quiet (10 ms), not after --flush-interval.
# PERF=FILE records the hasher during the pipeline of run 1 with perf record
# (999 Hz, or PERF_HZ; DWARF call graphs, attached to its pid; on few cores
# perf's own CPU slows the run): read it with perf report -i FILE
# --no-children --sort dso,sym (add --tid of the main thread for its share).
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
BOARDS=${1:-8}
THREADS=${2:-50}
POSTS=${3:-25}
RUNS=${RUNS:-3}
read -r -a HASHER_OPTS <<<"${HASHER_OPTS:-}"
read -r -a ARCHIVER_OPTS <<<"${ARCHIVER_OPTS:-}"
PERF=${PERF:-}
PICTURES=${PICTURES:-media}
SITE=bench
GOAL=0.80
BENCH=pipeline.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[[ $PICTURES == media || $PICTURES == fixture ]] || { echo "pipeline.sh: PICTURES is media or fixture" >&2; exit 2; }
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
[[ $PICTURES != media ]] || bench_build bench_media
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
# Every picture, downloaded once from the fixture server: MEDIA/<board>/<tim>.png
# (the path of its URL under the site's media), and "id sha1" lines.
mkdir "$WORK/media"
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
if [[ $PICTURES == media ]]; then
    "$MEDIA_SERVER" --root "$WORK/media" --port-file "$WORK/media.port" 2>"$WORK/media.log" &
    MEDIA_PID=$!
    for _ in $(seq 100); do [[ -s $WORK/media.port ]] && break; sleep 0.1; done
    [[ -s $WORK/media.port ]] || { cat "$WORK/media.log" >&2; echo "pipeline.sh: bench_media did not start" >&2; exit 1; }
    MEDIA_BASE=http://127.0.0.1:$(cat "$WORK/media.port")
else
    MEDIA_BASE=$BASE/$SITE/media
fi
cat >"$WORK/sites.json" <<JSON
{"user_agent": "imgfeed-bench/1 (bench/pipeline.sh)",
 "sites": [{"name": "$SITE", "kind": "4chan", "api": "$BASE/$SITE", "media": "$MEDIA_BASE",
            "boards": [$boards_json], "rps": 1000000}]}
JSON
NFILES=$(wc -l <"$WORK/sha1")
((NFILES == NPOSTS)) || { echo "pipeline.sh: $NFILES pictures for $NPOSTS posts" >&2; exit 1; }
sort "$WORK/sha1" -o "$WORK/sha1"
FILES_MB=$(du -sm "$WORK/media" | cut -f1)
find "$WORK/media" -name '*.png' | sort >"$WORK/all"
split -n "r/$NCPU" "$WORK/all" "$WORK/part."

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $NCPU cores, $(free -g | awk '/^Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "servers:   PostgreSQL $(psql -c 'SHOW server_version'), RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), fixture server on $BASE"
echo "site:      $BOARDS boards x $THREADS threads x $POSTS posts = $NPOSTS posts, each with a picture: $NFILES PNGs, $FILES_MB MB"
echo "crawler:   $CRAWLER --once (rps 1000000, fresh --state-dir)"
HASH_THREADS="$NCPU, one per core"
if [[ " ${HASHER_OPTS[*]} " =~ \ --threads\ ([0-9]+)\  ]] && ((BASH_REMATCH[1] > 0)); then HASH_THREADS=${BASH_REMATCH[1]}; fi
echo "hasher:    $HASHER --allow-net 127.0.0.0/8 --rps-per-host 0${HASHER_OPTS[*]:+ ${HASHER_OPTS[*]}} (hashing threads: $HASH_THREADS)"
echo "archiver:  $ARCHIVER${ARCHIVER_OPTS[*]:+ ${ARCHIVER_OPTS[*]}}"
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
        perf record -F "${PERF_HZ:-999}" --call-graph dwarf,16384 -p "$HASHER_PID" -o "$PERF" >"$WORK/perf.log" 2>&1 &
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

# hash_one: "seconds cpu_seconds" of imgfeed-hasher hash over every file, one process.
hash_one() {
    local t0 t1 lines
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$WORK/hash.cpu" xargs -d '\n' -a "$WORK/all" "$HASHER" hash >"$WORK/hash.out"
    t1=$(now)
    lines=$(grep -c '"sha1"' "$WORK/hash.out")
    ((lines == NFILES)) || { echo "pipeline.sh: imgfeed-hasher hash hashed $lines of $NFILES files" >&2; exit 1; }
    echo "$(sub "$t1" "$t0") $(awk '{ printf "%.2f", $1 + $2 }' "$WORK/hash.cpu")"
}

# hash_all: seconds of imgfeed-hasher hash over every file, NCPU processes over a share each.
hash_all() {
    local t0 t1 pids=() f
    t0=$(now)
    for f in "$WORK"/part.*; do
        xargs -d '\n' -a "$f" "$HASHER" hash >/dev/null &
        pids+=($!)
    done
    for f in "${pids[@]}"; do wait "$f"; done
    t1=$(now)
    sub "$t1" "$t0"
}

poll_install
: >"$WORK/results"
for r in $(seq "$RUNS"); do
    # hash alone right before and right after the pipeline, so that the
    # machine's drift (other tenants) weighs on both sides alike
    read -r hs0 hcpu0 <<<"$(hash_one)"
    pipeline_run "$r" >"$WORK/pipeline.out"
    read -r hs1 hcpu1 <<<"$(hash_one)"
    hps=$(hash_all)
    read -r ps pn fs fn ccpu hcpu acpu fcpu qcpu pcpu mcpu cwall hmcpu busy idle <"$WORK/pipeline.out"
    hs=$(awk -v a="$hs0" -v b="$hs1" 'BEGIN { printf "%.3f", (a + b) / 2 }')
    hcpu1=$(awk -v a="$hcpu0" -v b="$hcpu1" 'BEGIN { printf "%.2f", (a + b) / 2 }')
    echo "$r $ps $pn $hs $hps $ccpu $hcpu $acpu $fcpu $qcpu $pcpu $fs $fn $hcpu1 $mcpu $cwall $hmcpu $busy $idle $hs0 $hs1" >>"$WORK/results"
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
        awk -v n="$pn" -v a="$ops" -v b="$mps" -v s="$(cat "$WORK/scrape.line")" 'BEGIN {
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
    "$PY" - "$WORK/results" "$GOAL" "$NCPU" <<'PYEOF'
import sys
r, ps, pn, hs, hps, ccpu, hcpu, acpu, fcpu, qcpu, pcpu, fs, fn, hcpu1, mcpu, cwall, hmcpu, busy, idle, hs0, hs1 = open(sys.argv[1]).read().splitlines()[-1].split()
goal, ncpu = float(sys.argv[2]), int(sys.argv[3])
n = int(pn)
p, h, hp = n / float(ps), n / float(hs), n / float(hps)
print(f"run {r}: pipeline {p:7.0f} images/s ({n} in {float(ps):.2f} s)   hash {h:7.0f} images/s"
      f" ({float(hs0):.2f} s before, {float(hs1):.2f} s after)"
      f"   hash x {ncpu} {hp:7.0f} images/s   pipeline/hash {p / h:.2f}")
sust = (n - int(fn)) / (float(ps) - float(fs))
print(f"       first row committed after {float(fs):.2f} s; from then on {sust:.0f} images/s ({sust / h:.2f} of hash);"
      f" the crawler was done after {float(cwall):.2f} s; the machine was idle {100 * int(idle) / (int(busy) + int(idle)):.0f}% of the time")
print(f"       CPU during the pipeline run: hasher {hcpu} s (main thread {hmcpu} s), archiver {acpu} s, crawler {ccpu} s,"
      f" fixture server {fcpu} s, picture server {mcpu} s, RabbitMQ {qcpu} s, PostgreSQL {pcpu} s")
PYEOF
done

"$PY" - "$WORK/results" "$GOAL" "$NCPU" <<'PYEOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
goal, ncpu = float(sys.argv[2]), int(sys.argv[3])
n = int(rows[0][2])
med = lambda f: statistics.median(f(r) for r in rows)
p = med(lambda r: n / float(r[1]))
h = med(lambda r: n / float(r[3]))
hp = med(lambda r: n / float(r[4]))
ratio = med(lambda r: (n / float(r[1])) / (n / float(r[3])))
print()
print(f"median of {len(rows)} run{'s' if len(rows) > 1 else ''}, {n} images:")
print(f"  pipeline (crawl -> hash -> archive, until the last row is committed)  {p:7.0f} images/s")
print(f"  imgfeed-hasher hash alone, one process                                 {h:7.0f} images/s")
print(f"  imgfeed-hasher hash, {ncpu} processes at once (the machine's ceiling)      {hp:7.0f} images/s")
print(f"  pipeline / hash  {ratio:.2f}   (goal: >= {goal:.2f}: {'met' if ratio >= goal else 'MISSED'})")
first = med(lambda r: float(r[11]))
sust = med(lambda r: (n - int(r[12])) / (float(r[1]) - float(r[11])))
print(f"  first row committed after {first:.2f} s; from then on {sust:.0f} images/s ({sust / h:.2f} of hash alone)")
idle = med(lambda r: int(r[18]) / (int(r[17]) + int(r[18])))
print(f"  the machine's cores were idle {100 * idle:.0f}% of the time (/proc/stat, until the last row was seen)")
names = ["crawler", "hasher", "archiver", "fixture server", "RabbitMQ", "PostgreSQL", "picture server"]
cpu = [med(lambda r, i=i: float(r[5 + i])) for i in range(6)] + [med(lambda r: float(r[14]))]
wall = med(lambda r: float(r[1]))
print(f"  CPU seconds during the pipeline's {wall:.2f} s (of {ncpu * wall:.2f} core-seconds): "
      + ", ".join(f"{k} {v:.2f}" for k, v in zip(names, cpu)))
alone = med(lambda r: float(r[13]))
print(f"  CPU milliseconds per image: pipeline {1000 * sum(cpu) / n:.3f} ("
      + ", ".join(f"{k} {1000 * v / n:.3f}" for k, v in zip(names, cpu))
      + f"); imgfeed-hasher hash alone {1000 * alone / n:.3f}")
main = med(lambda r: float(r[16]))
print(f"  of the hasher's, its main thread (broker, downloads, JSON) {1000 * main / n:.3f},"
      f" its hashing threads {1000 * (cpu[1] - main) / n:.3f}")
PYEOF
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
