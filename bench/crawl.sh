#!/usr/bin/env bash
# crawl.sh -- the CPU time and peak memory imgfeed-crawler spends per 100,000 items.
#
# Usage: bash bench/crawl.sh [BOARDS [THREADS [POSTS]]]   (default 100 150 50; RUNS=3 runs)
#        KIND=reddit bash bench/crawl.sh [SUBS [N]]       (default 10 10000)
#        KIND=imgapi bash bench/crawl.sh [CATEGORIES]     (default 1000)
#
# KIND (default 4chan) is the kind of site crawled:
#   4chan   described below.
#   reddit  SUBS generated subreddits of N submissions each (fixture_reddit.py,
#           made as they are asked for), backfill N: the first crawl pages
#           down every subreddit with after= (N/100 pages of 100), the
#           second asks before= the newest (empty) and the first page of the
#           plain listing (all seen): two requests a subreddit.
#   imgapi  a waifu_im site (fixture_imgapi.py) of CATEGORIES categories
#           whose pool is 100 images, asked 100 at a time (PageSize): the
#           first crawl gets every pool in one answer each, all new; the
#           second gets them again, all seen (one request a category, nothing
#           published).  Each category keeps its ids in its journal.
# The rest (servers, figures, goals, PERF) is the same for every kind.
#
# Starts its own RabbitMQ and PostgreSQL (tests/lib/servers.sh, in a temporary
# directory, stopped at exit) and the fixture server (tests/support/
# fixture_server.py), which plays a 4chan-like site "bench" of BOARDS generated
# boards of THREADS threads of POSTS posts each (the OP included), every
# thread body rendered when its board is made (prerender=1) so that the
# server only copies cached bytes while the crawler runs.  Then, in each run:
#   first    imgfeed-crawler --once with an empty --state-dir and the rate
#            limit lifted (rps 1000000): BOARDS threads.json and
#            BOARDS x THREADS thread requests, every post parsed and published
#            to crawl<run>.raw with publisher confirms (default --batch-size
#            250: a message per routing key every 5 threads of 50 posts, and
#            the board's state file saved, fsync'd, after each)
#   second   the same command on the same state: nothing changed, so only the
#            conditional threads.json requests (304), nothing published
# both under /usr/bin/time -v.  It prints the posts published and requests
# made (from the crawler's last log line, checked against the fixture
# server's counts and against BOARDS x THREADS x POSTS), the wall time, the
# crawler's user+sys CPU seconds and peak RSS, CPU seconds and MB per 100,000
# posts against the goals (under 2 CPU-s per 100,000 items; under 50 MB, which
# is judged on the whole peak: the peak grows with --batch-size and with the
# threads held in the crawl state, about 80 bytes each, not with the posts),
# and the CPU the fixture server and RabbitMQ spent meanwhile (other
# processes, not counted in the figures).  PostgreSQL starts with RabbitMQ
# (servers.sh starts both) but has no part in it.
#
# E.raw always has E.hasher bound (design.md), so the first crawl leaves
# BOARDS x THREADS x POSTS items (about 0.5 KB each) in crawl<run>.hasher:
# nobody consumes them during the run (a consumer would compete for the
# cores); the queue is deleted with rabbitmqctl after each crawl, and the
# script fails if RabbitMQ raised a memory or disk alarm (which would block
# the publisher and distort the figures).
# CRAWLER_OPTS adds options to the crawler's command line ("--batch-size 1000").
# PERF=FILE records the first crawl of run 1 with perf record (999 Hz, DWARF
# call graphs, attached to the crawler's pid, so perf's own CPU is not in the
# crawler's figures, though on few cores it slows the run): read it with
# perf report -i FILE --no-children --sort dso,sym.
# Builds a Release imgfeed-crawler in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KIND=${KIND:-4chan}
case $KIND in
4chan) BOARDS=${1:-100} THREADS=${2:-150} POSTS=${3:-50} ;;
reddit) BOARDS=${1:-10} SUBN=${2:-10000} ;;
imgapi) BOARDS=${1:-1000} ;;
*) echo "crawl.sh: KIND is 4chan, reddit or imgapi, not $KIND" >&2; exit 2 ;;
esac
RUNS=${RUNS:-1}
read -r -a CRAWLER_OPTS <<<"${CRAWLER_OPTS:-}"
PERF=${PERF:-}
SITE=bench
GOAL_CPU=2   # CPU seconds per 100,000 items
GOAL_MB=50   # peak RSS, MB (10^6 bytes)
BENCH=crawl.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for v in BOARDS THREADS POSTS SUBN RUNS; do
    [[ -z ${!v+set} || ${!v} =~ ^[1-9][0-9]*$ ]] ||
        { echo "usage: [KIND=4chan] bench/crawl.sh [BOARDS [THREADS [POSTS]]]; KIND=reddit ... [SUBS [N]]; KIND=imgapi ... [CATEGORIES] (positive integers; RUNS too)" >&2; exit 2; }
done
[[ $KIND != reddit ]] || ((SUBN <= 90000)) || { echo "crawl.sh: the fixture makes at most 90000 submissions a subreddit" >&2; exit 2; }
for tool in /usr/bin/time /usr/lib/rabbitmq/bin/rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmqctl "$PY" curl; do
    command -v "$tool" >/dev/null || { echo "crawl.sh: $tool missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
done
[[ -z $PERF ]] || command -v perf >/dev/null || { echo "crawl.sh: PERF needs perf: apt-get install linux-perf" >&2; exit 2; }
# NPOSTS: the items the first crawl publishes; NREQ: the requests it makes
# (reddit: at least, a page of 100 a request); NREQ2: the second crawl's,
# one a board (reddit: two, `before` answers empty and the walk down the
# plain listing stops at its first page, all seen).
# IMGAPI_N: the images an imgapi answer (and a category's pool) holds, the
# fixture's largest answer.
IMGAPI_N=100
case $KIND in
4chan) NPOSTS=$((BOARDS * THREADS * POSTS)) NREQ=$((BOARDS + BOARDS * THREADS)) ;;
reddit) NPOSTS=$((BOARDS * SUBN)) NREQ=$((BOARDS * ((SUBN + 99) / 100))) ;;
imgapi) NPOSTS=$((BOARDS * IMGAPI_N)) NREQ=$BOARDS ;;
esac
NREQ2=$BOARDS
[[ $KIND != reddit ]] || NREQ2=$((2 * BOARDS))

bench_build imgfeed-crawler
CRAWLER=$BUILD/crawler/imgfeed-crawler

TIME_PID=
bench_stop_processes() {
    if [[ -n $TIME_PID ]]; then
        pkill -KILL -P "$TIME_PID" 2>/dev/null || true # the crawler, child of /usr/bin/time
    fi
}
bench_start_servers

# The fixture server keeps every rendered thread: about 280 bytes a post,
# 210 MB for 750,000 posts; give it room for all of them.
CACHE_MB=256
[[ $KIND != 4chan ]] || CACHE_MB=$((NPOSTS * 400 / 1000000 + 64))
((CACHE_MB > 256)) || CACHE_MB=256
bench_start_fixture "$CACHE_MB"

# ctl PATH: GET BASE/_control/PATH (the reddit and imgapi plugins' control API).
ctl() { curl -fsS --max-time 600 "$BASE/_control/$1"; }
# jfield KEY: member KEY of the JSON object on stdin.
jfield() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# served: the requests the fixture server answered the site so far.
served() {
    case $KIND in
    4chan) control "counts?site=$SITE" | "$PY" -c 'import json, sys; print(sum(json.load(sys.stdin)["by_route"].values()))' ;;
    *) ctl "$KIND/counts?site=$SITE" | jfield requests ;;
    esac
}

# The site, its boards made (4chan: rendered) now.
boards_json=
t0=$(now)
: >"$WORK/prerender"
case $KIND in
4chan)
    control "site?name=$SITE&kind=4chan" >/dev/null
    for b in $(seq "$BOARDS"); do
        control "board?site=$SITE&board=b$b&threads=$THREADS&posts=$POSTS&prerender=1" >"$WORK/board.json"
        jfield prerender_seconds <"$WORK/board.json" >>"$WORK/prerender"
        boards_json+="${boards_json:+,}\"b$b\""
    done
    site_json="\"kind\": \"4chan\", \"api\": \"$BASE/$SITE\", \"media\": \"$BASE/$SITE/media\""
    ;;
reddit)
    # backfill SUBN: first sight pages through every submission (after=).
    file_url=$(ctl "reddit/site?name=$SITE" | jfield file_url)
    for b in $(seq "$BOARDS"); do
        ctl "reddit/sub?site=$SITE&sub=s$b&n=$SUBN&seed=$b" >/dev/null
        boards_json+="${boards_json:+,}\"s$b\""
    done
    site_json="\"kind\": \"reddit\", \"api\": \"$BASE/reddit/$SITE\", \"file_url\": \"$file_url\", \"backfill\": $SUBN"
    ;;
imgapi)
    # waifu_im, amount (PageSize) IMGAPI_N, pools of IMGAPI_N: --once polls
    # each category once, and that answer is the whole pool, all new on an
    # empty state; the second crawl's answers are the same pools, all seen.
    api=$(ctl "imgapi/site?name=$SITE&kind=waifu_im" | jfield api)
    for b in $(seq "$BOARDS"); do
        ctl "imgapi/cat?site=$SITE&cat=c$b&n=$IMGAPI_N&seed=$((b % 10000))" >/dev/null
        boards_json+="${boards_json:+,}\"c$b\""
    done
    site_json="\"kind\": \"waifu_im\", \"api\": \"$api\", \"amount\": $IMGAPI_N"
    ;;
esac
t1=$(now)
PRERENDER=$(awk '{ s += $1 } END { printf "%.1f", s }' "$WORK/prerender")
SETUP=$(sub "$t1" "$t0")
cat >"$WORK/sites.json" <<JSON
{"user_agent": "imgfeed-bench/1 (bench/crawl.sh)",
 "sites": [{"name": "$SITE", $site_json,
            "boards": [$boards_json], "rps": 1000000}]}
JSON

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "disk:      $(df -h --output=avail "$WORK" | tail -1 | tr -d ' ') free under $WORK (state files, RabbitMQ's message store)"
echo "rabbitmq:  $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), durable queue, persistent messages, nobody consuming"
echo "libraries: json-c $(dpkg-query -W -f '${Version}' libjson-c5 2>/dev/null || echo '?'), libcurl $(dpkg-query -W -f '${Version}' libcurl4 2>/dev/null || echo '?'), librabbitmq $(dpkg-query -W -f '${Version}' librabbitmq4 2>/dev/null || echo '?')"
case $KIND in
4chan)
    echo "site:      4chan, $BOARDS boards x $THREADS threads x $POSTS posts = $NPOSTS posts, $NREQ requests; fixture server on $BASE,"
    echo "           boards made and prerendered in $SETUP s (rendering $PRERENDER s of it), cache $CACHE_MB MB" ;;
reddit)
    echo "site:      reddit, $BOARDS subreddits x $SUBN submissions = $NPOSTS submissions, at least $NREQ requests (backfill $SUBN);"
    echo "           fixture server on $BASE, subreddits made in $SETUP s" ;;
imgapi)
    echo "site:      imgapi (waifu_im), $BOARDS categories x $IMGAPI_N images (amount $IMGAPI_N, pool $IMGAPI_N) = $NPOSTS images, $NREQ requests;"
    echo "           fixture server on $BASE, categories made in $SETUP s" ;;
esac
echo "crawler:   $CRAWLER --once --sites (rps 1000000) --state-dir (fresh) --exchange crawl<run>${CRAWLER_OPTS[*]:+ ${CRAWLER_OPTS[*]}}"
echo

# crawl R WHICH: one crawl of run R on state $WORK/state<R>; prints
# "wall cpu rss_kb requests posts messages fixture_cpu rabbit_cpu served user sys not_modified".
crawl() {
    local r=$1 which=$2 e=crawl$1 t0 t1 f0 r0 s0 s1
    s0=$(served)
    f0=$(proc_cpu "$FIXTURE_PID")
    r0=$(proc_cpu "$RABBIT_PID")
    t0=$(now)
    /usr/bin/time -v -o "$WORK/$which.time" "$CRAWLER" --once --sites "$WORK/sites.json" --state-dir "$WORK/state$r" \
        --exchange "$e" --amqp-url "$IMGFEED_AMQP_URL" --log-level info "${CRAWLER_OPTS[@]}" \
        >"$WORK/$which.log" 2>&1 &
    TIME_PID=$!
    local perf_pid=
    if [[ -n $PERF && $r == 1 && $which == first ]]; then
        local pid=
        while [[ -z $pid ]] && kill -0 "$TIME_PID" 2>/dev/null; do pid=$(pgrep -P "$TIME_PID" || true); done
        if [[ -n $pid ]]; then
            perf record -F 999 --call-graph dwarf,16384 -p "$pid" -o "$PERF" >"$WORK/perf.log" 2>&1 &
            perf_pid=$!
        fi
    fi
    local rc=0
    wait "$TIME_PID" || rc=$?
    TIME_PID=
    if [[ -n $perf_pid ]]; then wait "$perf_pid" || { cat "$WORK/perf.log" >&2; echo "crawl.sh: perf record failed" >&2; }; fi
    t1=$(now)
    ((rc == 0)) || { tail -n 20 "$WORK/$which.log" >&2; echo "crawl.sh: the crawler exited $rc" >&2; exit 1; }
    local f1 r1
    f1=$(proc_cpu "$FIXTURE_PID")
    r1=$(proc_cpu "$RABBIT_PID")
    s1=$(served)
    # "bench: 15100 requests (0 not modified), 15000 threads read, 0 gone,
    #  750000 items published in 6000 messages, 0 failed board crawls"
    local last
    last=$(grep -E "$SITE: [0-9]+ requests \(" "$WORK/$which.log" | tail -n 1)
    [[ -n $last ]] || { tail -n 20 "$WORK/$which.log" >&2; echo "crawl.sh: no final line in the crawler's log" >&2; exit 1; }
    local req nm posts msgs failed
    req=$(sed -E 's/.*: ([0-9]+) requests \(.*/\1/' <<<"$last")
    nm=$(sed -E 's/.* requests \(([0-9]+) not modified.*/\1/' <<<"$last")
    posts=$(sed -E 's/.* ([0-9]+) items published in.*/\1/' <<<"$last")
    msgs=$(sed -E 's/.*published in ([0-9]+) messages.*/\1/' <<<"$last")
    failed=$(sed -E 's/.* ([0-9]+) failed board crawls.*/\1/' <<<"$last")
    ((failed == 0)) || { echo "crawl.sh: $which crawl: $last" >&2; exit 1; }
    local cpu rss
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/$which.time")
    awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f %.2f\n", u, s }' "$WORK/$which.time" >"$WORK/$which.us"
    rss=$(awk -F': ' '/Maximum resident/ { print $2 }' "$WORK/$which.time")
    # The items pile up in crawl<run>.hasher: drop them before the next crawl.
    rabbitmqctl delete_queue "$e.hasher" >/dev/null
    if grep -qi 'alarm set' "$WORK"/servers/rabbit/log/*.log 2>/dev/null; then
        grep -i 'alarm' "$WORK"/servers/rabbit/log/*.log >&2
        echo "crawl.sh: RabbitMQ raised a resource alarm: the publisher was blocked, the figures are not the crawler's" >&2
        exit 1
    fi
    echo "$(sub "$t1" "$t0") $cpu $rss $req $posts $msgs $(sub "$f1" "$f0") $(sub "$r1" "$r0") $((s1 - s0)) $(cat "$WORK/$which.us") $nm"
}

: >"$WORK/results"
for r in $(seq "$RUNS"); do
    crawl "$r" first >"$WORK/first.out"
    crawl "$r" second >"$WORK/second.out"
    read -r w1 c1 m1 q1 p1 n1 fx1 rb1 sv1 u1 s1 _ <"$WORK/first.out"
    read -r w2 c2 m2 q2 p2 _ _ _ sv2 _ _ nm2 <"$WORK/second.out"
    ((p1 == NPOSTS)) || { echo "crawl.sh: run $r published $p1 items, not $NPOSTS" >&2; exit 1; }
    if [[ $KIND == reddit ]]; then
        ((q1 >= NREQ && sv1 == q1)) || { echo "crawl.sh: run $r made $q1 requests (the server saw $sv1), not at least $NREQ" >&2; exit 1; }
    else
        ((q1 == NREQ && sv1 == NREQ)) || { echo "crawl.sh: run $r made $q1 requests (the server saw $sv1), not $NREQ" >&2; exit 1; }
    fi
    ((p2 == 0)) || { echo "crawl.sh: the second crawl of run $r published $p2 items, not 0" >&2; exit 1; }
    ((q2 == NREQ2 && sv2 == NREQ2)) ||
        { echo "crawl.sh: the second crawl of run $r made $q2 requests (the server saw $sv2), not $NREQ2" >&2; exit 1; }
    [[ $KIND != 4chan ]] || ((nm2 == BOARDS)) ||
        { echo "crawl.sh: the second crawl of run $r had $nm2 not modified answers, not $BOARDS 304s" >&2; exit 1; }
    echo "$r $w1 $c1 $m1 $q1 $p1 $n1 $fx1 $rb1 $w2 $c2 $m2 $q2 $sv2 $u1 $s1" >>"$WORK/results"
    "$PY" - "$WORK/results" "$GOAL_CPU" "$GOAL_MB" <<'PYEOF'
import sys
r, w1, c1, m1, q1, p1, n1, fx1, rb1, w2, c2, m2, q2, sv2, u1, s1 = open(sys.argv[1]).read().splitlines()[-1].split()
goal_cpu, goal_mb = float(sys.argv[2]), float(sys.argv[3])
p1 = int(p1)
per = 100000 / p1
cpu, mb = float(c1) * per, int(m1) * 1024 / 1e6 * per
print(f"run {r}: first  {p1} items published in {n1} messages, {q1} requests, {float(w1):.1f} s wall"
      f" ({p1 / float(w1):.0f} items/s)")
peak = int(m1) * 1024 / 1e6
print(f"        crawler CPU {c1} s (user {u1}, sys {s1}): {cpu:.2f} CPU-s per 100,000 items ({'meets' if cpu < goal_cpu else 'MISSES'} < {goal_cpu:g});"
      f" peak RSS {peak:.1f} MB ({'meets' if peak < goal_mb else 'MISSES'} < {goal_mb:g}), {mb:.1f} MB per 100,000 items")
print(f"        meanwhile: fixture server CPU {fx1} s, RabbitMQ CPU {rb1} s")
print(f"        second (nothing changed): {q2} requests, {float(w2):.2f} s wall,"
      f" crawler CPU {c2} s, peak RSS {int(m2) * 1024 / 1e6:.1f} MB")
PYEOF
done

"$PY" - "$WORK/results" "$GOAL_CPU" "$GOAL_MB" <<'PYEOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
goal_cpu, goal_mb = float(sys.argv[2]), float(sys.argv[3])
med = lambda i: statistics.median(float(r[i]) for r in rows)
p = int(rows[0][5])
per = 100000 / p
cpu, mb = med(2) * per, med(3) * 1024 / 1e6 * per
print()
print(f"median of {len(rows)} run{'s' if len(rows) > 1 else ''}, {p} items:")
peak = med(3) * 1024 / 1e6
print(f"  first crawl   {med(1):.1f} s wall ({p / med(1):.0f} items/s), crawler CPU {med(2):.2f} s"
      f" (user {med(14):.2f}, sys {med(15):.2f}), peak RSS {peak:.1f} MB")
print(f"  per 100,000 items: {cpu:.2f} CPU-s (goal < {goal_cpu:g}: {'met' if cpu < goal_cpu else 'MISSED'}),"
      f" {mb:.1f} MB of peak RSS")
print(f"  peak RSS {peak:.1f} MB (goal < {goal_mb:g} MB: {'met' if peak < goal_mb else 'MISSED'})")
print(f"  second crawl  {med(9):.2f} s wall, crawler CPU {med(10):.2f} s, peak RSS {med(11) * 1024 / 1e6:.1f} MB")
PYEOF
