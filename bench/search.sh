#!/usr/bin/env bash
# search.sh -- reverse image search over N phashes: the index against a brute-force scan and PostgreSQL.
#
# Usage: bash bench/search.sh        (N=10000000 images; N=1000000 for a quick run)
#
# What it measures (issue 16), in one run:
#   real     bench/search_real.py: the photographs of Debian's packages
#            named in PHOTO_PACKAGES (installed with apt-get when missing),
#            8 real variants of each (half size, 300 px wide, JPEG 30 and
#            70, crops of 3, 6 and 10% of a side, grey) and 1000 random
#            variants for queries, all hashed by `imgfeed-hasher hash`; from
#            them the per-bit frequency of ones of phash and dhash over the
#            originals and the (phash, dhash) distances original -> variant
#   gen      bench_search gen (bench/search.c): N images = the real ones and
#            synthetic groups (Zipf sizes on 1..1000, exponent ZIPF; centres
#            drawn bit by bit with the measured frequencies; members at
#            measured variant distances from their centre), shuffled; the
#            query sets: 1000 fresh variants of random groups, the 1000 real
#            query variants, 200 uniformly random hashes; and the items as
#            PostgreSQL COPY text
#   index    on one core (taskset -c CPU): hindex_search for top-10 within
#            21 bits (the service's default), top-10 unbounded, and radius
#            8, 12, 16, against bench_search's brute-force scan of the same
#            hashes (one array, POPCNT, -O3), every answer compared;
#            p50/p99/mean of each query's CPU time (the thread's clock: the
#            machine's other tenants move wall times more; the index's wall
#            p50/p99 are printed beside), index memory per hash
#   archive  a private PostgreSQL (tests/lib/servers.sh through bench/lib.sh;
#            it starts RabbitMQ too, unused), archiver/schema.sql, the table
#            chan_bench_image made by imgfeed_ensure_table, its GIN index
#            dropped for the COPY of the N items and made again after, then
#            VACUUM ANALYZE
#   load     bench_search load, on core CPU: loader_run, as imgfeed-search
#            loads the archive at start (seconds, rows/s, its CPU and the
#            server's), the process's resident memory and catalog_get_stats
#            per image; then catalog_search (the service's path) for every
#            query, compared with the index's answers
#   pg       bench_search pg: docs/querying.md's near-duplicate query as top
#            10 (ORDER BY imgfeed_hamming ... LIMIT 10) and within 12 bits,
#            for PG_QUERIES (5) variant queries, timed and compared with the
#            index; PostgreSQL runs with its default settings (parallel
#            workers included; the plan says how many it launched)
# Goals: top-10 p50 under 1 ms and p99 under 10 ms over 10 M, at least 30x
# faster than the C scan, at most 64 bytes of index memory per image, 10 M
# rows loaded in under 2 minutes.
#
# Knobs: N (10000000), ZIPF (2.5), SEED (16), CPU (0: the core of the
# measurements), PG_QUERIES (5), REAL_DIR (a directory where search_real.py
# has run already: reused, else made there; default: in the work directory),
# SKIP_PG=1 (the index alone), GIN=0 (do not make the GIN index again).
# Needs about 12 GB of disk in TMPDIR at N=10000000 (the COPY text, the
# table and its indexes) and 6 GB of memory.
# Builds Release binaries in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-10000000}
ZIPF=${ZIPF:-2.5}
SEED=${SEED:-16}
CPU=${CPU:-0}
PG_QUERIES=${PG_QUERIES:-5}
REAL_DIR=${REAL_DIR:-}
SKIP_PG=${SKIP_PG:-0}
GIN=${GIN:-1}
TABLE=chan_bench_image
PHOTO_PACKAGES=(mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
    python3-skimage python3-matplotlib python3-pil)
BENCH=search.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

if ! [[ $N =~ ^[1-9][0-9]*$ ]] || ((N < 10000)); then
    echo "search.sh: N is a whole number >= 10000" >&2
    exit 2
fi
for tool in taskset "$PY"; do
    command -v "$tool" >/dev/null || { echo "search.sh: $tool missing" >&2; exit 2; }
done
if [[ $SKIP_PG != 1 ]]; then
    [[ -x $PGBIN/psql ]] || { echo "search.sh: PostgreSQL missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
fi
missing=()
for pkg in "${PHOTO_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || { echo "search.sh: the photographs need: apt-get install ${missing[*]}" >&2; exit 2; }
    echo "search.sh: installing ${missing[*]} (the photographs)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

bench_build bench_search imgfeed-hasher
SEARCH=$BUILD/bench/bench_search
HASHER=$BUILD/hasher/imgfeed-hasher

# The work directory, with the servers when they are wanted.
if [[ $SKIP_PG == 1 ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgfeed-bench.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
else
    bench_start_servers
fi
DATA=$WORK/data
mkdir -p "$DATA"
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores," \
    "$(free -g | awk '/^Mem:/ { print $2 }') GiB, $(lsb_release -ds 2>/dev/null || echo "Debian $(cat /etc/debian_version)")," \
    "$(date -u '+%F %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt"); hindex.c and bench/search.c at -O3)"
echo "run: N=$N ZIPF=$ZIPF SEED=$SEED CPU=$CPU"
echo

# --- real images ---
REAL=${REAL_DIR:-$WORK/real}
mkdir -p "$REAL"
if [[ -s $REAL/model.txt ]]; then
    echo "real images: reusing $REAL/model.txt"
else
    t0=$(now)
    "$PY" "$ROOT/bench/search_real.py" "$HASHER" "$REAL"
    echo "real images: made and hashed in $(secs "$t0" "$(now)") s"
fi
echo

# --- generated data ---
gen_opts=()
[[ $SKIP_PG == 1 ]] && gen_opts=(--no-copy)
"$SEARCH" gen --model "$REAL/model.txt" --n "$N" --seed "$SEED" --zipf "$ZIPF" --out "$DATA" "${gen_opts[@]}"
echo

# --- the index against the scan, on one core ---
taskset -c "$CPU" "$SEARCH" index --dir "$DATA" | tee "$WORK/index.out" | grep -v '^RESULT' || {
    echo "search.sh: the index and the scan disagree (or bench_search index failed)" >&2
    exit 1
}
echo
rm -f "$DATA/phash.bin" "$DATA/dhash.bin"
[[ $SKIP_PG == 1 ]] && exit 0

# --- the archive ---
psql -f "$ROOT/archiver/schema.sql" >/dev/null
psql -c "SELECT imgfeed_ensure_table('$TABLE', 'chan', 'bench.image')" >/dev/null
psql -c "DROP INDEX ${TABLE}_img" >/dev/null
echo "archive: COPY of $N items ($(du -m "$DATA/items.copy" | cut -f1) MB of text) into $TABLE (primary key and board index kept, GIN index dropped)"
t0=$(now)
psql -c "\\copy $TABLE (id, data) FROM '$DATA/items.copy'"
t1=$(now)
echo "archive: COPY $(secs "$t0" "$t1") s ($(awk -v n="$N" -v s="$(secs "$t0" "$t1")" 'BEGIN { printf "%.0f", n / s }') rows/s)"
rm -f "$DATA/items.copy"
if [[ $GIN == 1 ]]; then
    t0=$(now)
    psql -c "SET maintenance_work_mem = '1GB'" \
        -c "CREATE INDEX ${TABLE}_img ON $TABLE USING gin ((data->'_img') jsonb_path_ops)" >/dev/null
    echo "archive: GIN index on _img made again in $(secs "$t0" "$(now)") s (maintenance_work_mem 1GB)"
fi
t0=$(now)
psql -c "VACUUM ANALYZE $TABLE" -c "CHECKPOINT" >/dev/null
echo "archive: VACUUM ANALYZE $(secs "$t0" "$(now)") s; table $(psql -c "SELECT pg_size_pretty(pg_table_size('$TABLE'))"), indexes $(psql -c "SELECT pg_size_pretty(pg_indexes_size('$TABLE'))")"
echo "archive: PostgreSQL $(psql -c 'SHOW server_version'), shared_buffers $(psql -c 'SHOW shared_buffers'), max_parallel_workers_per_gather $(psql -c 'SHOW max_parallel_workers_per_gather')"
echo

# --- imgfeed-search's load ---
pg0=$(pg_cpu)
t0=$(now)
taskset -c "$CPU" "$SEARCH" load --pg "$IMGFEED_PG" --exchange chan --dir "$DATA" 2>"$WORK/load.log" |
    tee "$WORK/load.out" | grep -v '^RESULT' || { cat "$WORK/load.log" >&2; echo "search.sh: load failed" >&2; exit 1; }
echo "load: PostgreSQL's CPU meanwhile $(awk -v a="$pg0" -v b="$(pg_cpu)" 'BEGIN { printf "%.1f", b - a }') s (the whole load, with the catalog's queries after it: $(secs "$t0" "$(now)") s)"
echo

# --- PostgreSQL's scan ---
"$SEARCH" pg --pg "$IMGFEED_PG" --table "$TABLE" --dir "$DATA" --count "$PG_QUERIES" | tee "$WORK/pg.out" |
    grep -v '^RESULT' || { echo "search.sh: pg failed" >&2; exit 1; }
echo

# --- the figures against the goals ---
"$PY" - "$WORK/index.out" "$WORK/load.out" "$WORK/pg.out" "$N" <<'PYEOF'
import sys
def results(path):
    out = []
    for line in open(path):
        if line.startswith("RESULT "):
            f = line.split()
            d = {}
            for kv in f[1:]:
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    d[k] = v
                else:
                    d["kind"] = kv
            out.append(d)
    return out
idx = results(sys.argv[1])
load = results(sys.argv[2])
pg = results(sys.argv[3])
n = int(sys.argv[4])
def row(s, m):
    for d in idx:
        if d.get("set") == s and d.get("mode") == m:
            return d
print("summary (CPU ms a query; goals for top-10 over 10 M: p50 < 1 ms, p99 < 10 ms, >= 30x the scan):")
for s in ("variant", "real", "random"):
    d = row(s, "k10r21")
    if not d:
        continue
    p50, p99, sp50 = float(d["index_p50"]), float(d["index_p99"]), float(d["scan_p50"])
    print(f"  {s:8} top-10 <= 21: p50 {p50:.3f} ms ({'met' if p50 < 1 else 'missed'}), p99 {p99:.3f} ms "
          f"({'met' if p99 < 10 else 'missed'}), scan/index at p50 {sp50 / p50:.1f}x ({'met' if sp50 / p50 >= 30 else 'missed'})")
mem = [l for l in open(sys.argv[1]) if "bytes a hash" in l]
if mem:
    print("  " + mem[0].strip())
for d in load:
    if d.get("kind") == "load":
        secs = float(d["seconds"]) * 10_000_000 / int(d["rows"])
        print(f"  load: {d['rows']} rows in {float(d['seconds']):.1f} s, {float(d['rows_per_s']):.0f} rows/s; "
              f"10 M rows at that rate: {secs:.0f} s ({'met' if secs < 120 else 'missed'}: goal 120 s)")
for d in pg:
    if d.get("kind") == "pg":
        print(f"  PostgreSQL: top 10 median {float(d['top10_p50']):.2f} s, within 12 bits {float(d['within_p50']):.2f} s, "
              f"mismatches {d['mismatches']}")
PYEOF
