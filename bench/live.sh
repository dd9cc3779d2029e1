#!/usr/bin/env bash
# live.sh -- imgfeed-live with many viewers: latency, CPU and memory per viewer.
#
# Usage: bash bench/live.sh [VIEWERS [STALLED [RATE [SECONDS]]]]   (default 1000 100 300 30)
#
# Starts its own RabbitMQ (and PostgreSQL, unused; tests/lib/servers.sh, in a
# temporary directory, stopped at exit) and imgfeed-live (Release, defaults
# apart from --max-viewers and a free port) on exchange "live".  Then:
#   alone    bench_sse (bench/sse.c) with one viewer publishes RATE items a
#            second for 10 s: imgfeed-live's CPU and resident memory with
#            the items flowing and nobody watching (the baseline)
#   viewers  bench_sse opens VIEWERS event streams, STALLED of them never
#            reading (4 KB receive buffers), and publishes RATE items a
#            second for SECONDS: every reading viewer is sent every item (and
#            loses its oldest, told so, when it cannot take them in time)
# bench_sse stamps each item with the time it was published and its reading
# viewers measure publish -> event (p50, p90, p99, max; sampled on 100 of
# them), count the events each received and the "dropped" notices.  The
# script prints those, imgfeed-live's CPU per second and per viewer beyond the
# baseline, and its memory per viewer: (the peak resident memory with the
# viewers - the resident memory of the baseline) / VIEWERS.  Goals: p99 under
# 200 ms, under 50 KB per viewer.  RATE 300 is a busy crawl of real sites;
# the pipeline on local fixtures reaches about 4,000 (docs/benchmarks.md
# runs both).  The items
# are published by bench_sse itself, so the pipeline is not running here;
# bench/pipeline.sh with LIVE_VIEWERS=N measures the pipeline's rate with and
# without viewers.
# Builds Release binaries in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIEWERS=${1:-1000}
STALLED=${2:-100}
RATE=${3:-300}
SECS=${4:-30}
BENCH=live.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for v in VIEWERS RATE SECS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/live.sh [VIEWERS [STALLED [RATE [SECONDS]]]] (positive integers)" >&2; exit 2; }
done
[[ $STALLED =~ ^[0-9]+$ ]] && ((STALLED < VIEWERS)) || { echo "live.sh: STALLED is from 0 to VIEWERS - 1" >&2; exit 2; }
# Each viewer is a socket on both sides.
ulimit -n $((4 * VIEWERS + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
((VIEWERS * 2 + 64 < $(ulimit -n))) || { echo "live.sh: too few file descriptors ($(ulimit -n)) for $VIEWERS viewers" >&2; exit 2; }

bench_build imgfeed-live bench_sse
LIVE=$BUILD/live/imgfeed-live
SSE=$BUILD/bench/bench_sse
bench_start_servers

LIVE_PID=
bench_stop_processes() {
    [[ -z $LIVE_PID ]] || { kill -TERM "$LIVE_PID" 2>/dev/null || true; wait "$LIVE_PID" 2>/dev/null || true; }
}
"$LIVE" --amqp-url "$IMGFEED_AMQP_URL" --exchange live --listen 127.0.0.1:0 --max-viewers $((VIEWERS + 10)) \
    >"$WORK/live.log" 2>&1 &
LIVE_PID=$!
for _ in $(seq 100); do grep -q "(port " "$WORK/live.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/live.log" | head -n 1)
[[ -n $PORT ]] || { cat "$WORK/live.log" >&2; echo "live.sh: imgfeed-live did not start" >&2; exit 1; }

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$LIVE_PID/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$LIVE_PID/status"; }
sse() { "$SSE" --port "$PORT" --amqp-url "$IMGFEED_AMQP_URL" --exchange live --rate "$RATE" "$@"; }

echo "machine:   $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(date -u +%F)"
echo "imgfeed-live: $LIVE on 127.0.0.1:$PORT, defaults (viewer buffer 64, replay 1000)"
echo "load:      $RATE items a second, one picture each; $VIEWERS viewers, $STALLED of them stalled, for $SECS s"
echo

c0=$(proc_cpu "$LIVE_PID")
sse --viewers 1 --stalled 0 --seconds 10 >"$WORK/alone.json"
c1=$(proc_cpu "$LIVE_PID")
RSS_BASE=$(rss_kb)
echo 0 >"$WORK/peak"
sse --viewers "$VIEWERS" --stalled "$STALLED" --seconds "$SECS" >"$WORK/viewers.json" &
SSE_PID=$!
# the peak of resident memory while the viewers are connected (VmHWM also
# counts the baseline run, so sample VmRSS)
while kill -0 "$SSE_PID" 2>/dev/null; do
    r=$(rss_kb)
    (( r > $(cat "$WORK/peak") )) && echo "$r" >"$WORK/peak"
    sleep 0.2
done
wait "$SSE_PID"
c2=$(proc_cpu "$LIVE_PID")
PEAK=$(cat "$WORK/peak")
STATS=$(curl -fsS "http://127.0.0.1:$PORT/stats")

"$PY" - "$WORK/alone.json" "$WORK/viewers.json" "$c0" "$c1" "$c2" "$RSS_BASE" "$PEAK" "$VIEWERS" "$STALLED" "$SECS" "$STATS" <<'PYEOF'
import json, sys
alone, view = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
c0, c1, c2 = map(float, sys.argv[3:6])
base, peak, viewers, stalled, secs = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), float(sys.argv[10])
stats = json.loads(sys.argv[11])
reading = viewers - stalled
cpu_alone, cpu_view = (c1 - c0) / 10.0, (c2 - c1) / (secs + 1.5)
per_viewer_kb = (peak - base) / viewers
print(f"alone:   {alone['published']} items in 10 s; imgfeed-live {cpu_alone * 100:.1f}% of a core, {base / 1024:.1f} MB resident")
print(f"viewers: {view['published']} items; {view['events']} events to {reading} reading viewers"
      f" ({view['events'] / max(1, reading * view['published']):.4f} of every item to every one; the fewest any got: {view['min_events_per_viewer']}),"
      f" {view['dropped_notices']} dropped notices")
print(f"         latency publish -> event over {view['latency_samples']} samples: p50 {view['p50_ms']:.1f} ms, p90 {view['p90_ms']:.1f} ms,"
      f" p99 {view['p99_ms']:.1f} ms (goal < 200: {'met' if view['p99_ms'] < 200 else 'MISSED'}), max {view['max_ms']:.1f} ms")
print(f"         imgfeed-live {cpu_view * 100:.1f}% of a core: {(cpu_view - cpu_alone) / viewers * 1000:.3f} ms of CPU a second per viewer")
print(f"         resident memory {base / 1024:.1f} -> peak {peak / 1024:.1f} MB: {per_viewer_kb:.1f} KB per viewer"
      f" (goal < 50: {'met' if per_viewer_kb < 50 else 'MISSED'})")
print(f"         server's counts: {stats}")
PYEOF
