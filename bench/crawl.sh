#!/usr/bin/env bash
# crawl.sh -- the CPU time and peak memory imgfeed-crawler spends per 100,000 posts.
#
# Usage: bash bench/crawl.sh [BOARDS [THREADS [POSTS]]]   (default 100 150 50; RUNS=3 runs)
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
# posts against the goals (under 2 CPU-s per 100,000 posts; under 50 MB, which
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
BOARDS=${1:-100}
THREADS=${2:-150}
POSTS=${3:-50}
RUNS=${RUNS:-1}
read -r -a CRAWLER_OPTS <<<"${CRAWLER_OPTS:-}"
PERF=${PERF:-}
SITE=bench
GOAL_CPU=2   # CPU seconds per 100,000 posts
GOAL_MB=50   # peak RSS, MB (10^6 bytes)
BENCH=crawl.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for v in BOARDS THREADS POSTS RUNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/crawl.sh [BOARDS [THREADS [POSTS]]] (positive integers; RUNS too)" >&2; exit 2; }
done
for tool in /usr/bin/time /usr/lib/rabbitmq/bin/rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmqctl "$PY" curl; do
    command -v "$tool" >/dev/null || { echo "crawl.sh: $tool missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
done
[[ -z $PERF ]] || command -v perf >/dev/null || { echo "crawl.sh: PERF needs perf: apt-get install linux-perf" >&2; exit 2; }
NPOSTS=$((BOARDS * THREADS * POSTS))
NREQ=$((BOARDS + BOARDS * THREADS))

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
CACHE_MB=$((NPOSTS * 400 / 1000000 + 64))
((CACHE_MB > 256)) || CACHE_MB=256
bench_start_fixture "$CACHE_MB"

# The site, its boards rendered now.
control "site?name=$SITE&kind=4chan" >/dev/null
boards_json=
t0=$(now)
: >"$WORK/prerender"
for b in $(seq "$BOARDS"); do
    control "board?site=$SITE&board=b$b&threads=$THREADS&posts=$POSTS&prerender=1" >"$WORK/board.json"
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["prerender_seconds"])' "$WORK/board.json" >>"$WORK/prerender"
    boards_json+="${boards_json:+,}\"b$b\""
done
t1=$(now)
PRERENDER=$(awk '{ s += $1 } END { printf "%.1f", s }' "$WORK/prerender")
SETUP=$(sub "$t1" "$t0")
cat >"$WORK/sites.json" <<JSON
{"user_agent": "imgfeed-bench/1 (bench/crawl.sh)",
 "sites": [{"name": "$SITE", "kind": "4chan", "api": "$BASE/$SITE", "media": "$BASE/$SITE/media",
            "boards": [$boards_json], "rps": 1000000}]}
JSON

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "disk:      $(df -h --output=avail "$WORK" | tail -1 | tr -d ' ') free under $WORK (state files, RabbitMQ's message store)"
echo "rabbitmq:  $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), durable queue, persistent messages, nobody consuming"
echo "libraries: json-c $(dpkg-query -W -f '${Version}' libjson-c5 2>/dev/null || echo '?'), libcurl $(dpkg-query -W -f '${Version}' libcurl4 2>/dev/null || echo '?'), librabbitmq $(dpkg-query -W -f '${Version}' librabbitmq4 2>/dev/null || echo '?')"
echo "site:      $BOARDS boards x $THREADS threads x $POSTS posts = $NPOSTS posts, $NREQ requests; fixture server on $BASE,"
echo "           boards made and prerendered in $SETUP s (rendering $PRERENDER s of it), cache $CACHE_MB MB"
echo "crawler:   $CRAWLER --once --sites (rps 1000000) --state-dir (fresh) --exchange crawl<run>${CRAWLER_OPTS[*]:+ ${CRAWLER_OPTS[*]}}"
echo

# crawl R WHICH: one crawl of run R on state $WORK/state<R>; prints
# "wall cpu rss_kb requests posts messages fixture_cpu rabbit_cpu served user sys not_modified".
crawl() {
    local r=$1 which=$2 e=crawl$1 t0 t1 f0 r0 s0 s1
    s0=$(control "counts?site=$SITE" | "$PY" -c 'import json, sys; print(sum(json.load(sys.stdin)["by_route"].values()))')
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
    s1=$(control "counts?site=$SITE" | "$PY" -c 'import json, sys; print(sum(json.load(sys.stdin)["by_route"].values()))')
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
    ((p1 == NPOSTS)) || { echo "crawl.sh: run $r published $p1 posts, not $NPOSTS" >&2; exit 1; }
    ((q1 == NREQ && sv1 == NREQ)) || { echo "crawl.sh: run $r made $q1 requests (the server saw $sv1), not $NREQ" >&2; exit 1; }
    ((p2 == 0)) || { echo "crawl.sh: the second crawl of run $r published $p2 posts, not 0" >&2; exit 1; }
    ((q2 == BOARDS && sv2 == BOARDS && nm2 == BOARDS)) ||
        { echo "crawl.sh: the second crawl of run $r made $q2 requests ($nm2 not modified; the server saw $sv2), not $BOARDS 304s" >&2; exit 1; }
    echo "$r $w1 $c1 $m1 $q1 $p1 $n1 $fx1 $rb1 $w2 $c2 $m2 $q2 $sv2 $u1 $s1" >>"$WORK/results"
    "$PY" - "$WORK/results" "$GOAL_CPU" "$GOAL_MB" <<'PYEOF'
import sys
r, w1, c1, m1, q1, p1, n1, fx1, rb1, w2, c2, m2, q2, sv2, u1, s1 = open(sys.argv[1]).read().splitlines()[-1].split()
goal_cpu, goal_mb = float(sys.argv[2]), float(sys.argv[3])
p1 = int(p1)
per = 100000 / p1
cpu, mb = float(c1) * per, int(m1) * 1024 / 1e6 * per
print(f"run {r}: first  {p1} items published in {n1} messages, {q1} requests, {float(w1):.1f} s wall"
      f" ({p1 / float(w1):.0f} posts/s)")
peak = int(m1) * 1024 / 1e6
print(f"        crawler CPU {c1} s (user {u1}, sys {s1}): {cpu:.2f} CPU-s per 100,000 posts ({'meets' if cpu < goal_cpu else 'MISSES'} < {goal_cpu:g});"
      f" peak RSS {peak:.1f} MB ({'meets' if peak < goal_mb else 'MISSES'} < {goal_mb:g}), {mb:.1f} MB per 100,000 posts")
print(f"        meanwhile: fixture server CPU {fx1} s, RabbitMQ CPU {rb1} s")
print(f"        second (nothing changed): {q2} requests (all 304), {float(w2):.2f} s wall,"
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
print(f"median of {len(rows)} run{'s' if len(rows) > 1 else ''}, {p} posts:")
peak = med(3) * 1024 / 1e6
print(f"  first crawl   {med(1):.1f} s wall ({p / med(1):.0f} posts/s), crawler CPU {med(2):.2f} s"
      f" (user {med(14):.2f}, sys {med(15):.2f}), peak RSS {peak:.1f} MB")
print(f"  per 100,000 posts: {cpu:.2f} CPU-s (goal < {goal_cpu:g}: {'met' if cpu < goal_cpu else 'MISSED'}),"
      f" {mb:.1f} MB of peak RSS")
print(f"  peak RSS {peak:.1f} MB (goal < {goal_mb:g} MB: {'met' if peak < goal_mb else 'MISSED'})")
print(f"  second crawl  {med(9):.2f} s wall, crawler CPU {med(10):.2f} s, peak RSS {med(11) * 1024 / 1e6:.1f} MB")
PYEOF
