#!/usr/bin/env bash
# archive.sh -- how many rows a second imgfeed-archiver stores, against PostgreSQL's own COPY.
#
# Usage: bash bench/archive.sh [N]       (N items, default 200000; RUNS=3 runs)
#
# Starts its own RabbitMQ and PostgreSQL (tests/lib/servers.sh, in a temporary
# directory, stopped at exit), makes N realistic 4chan items with bench_feed
# (bench/feed.c: the posts of the recorded threads in tests/fixtures/real/4chan
# with the fields the crawler and the hasher add; ITEMS=files, the default,
# takes the posts that have a file, about 0.9 KB of JSON an item; ITEMS=all
# takes every post, one in six with a file, about 0.5 KB), and in each run times
# two ways of putting the same N rows into empty archive tables made by
# imgfeed_ensure_table (primary key, btree and GIN indexes: the tables the
# archiver makes), on the same server with the same settings:
#   copy       psql's \copy of a text-format file of (id, data) lines into the
#              thread and post tables: PostgreSQL's own bulk path, the ceiling
#   archiver   one imgfeed-archiver (default settings) started on a queue that
#              already holds the N items as bench_feed published them (messages
#              of 20 to 50 items of one routing key), timed from its start to the
#              commit of the last row (track_commit_timestamp), so the figure is
#              the archiver and PostgreSQL, not the publisher
# A CHECKPOINT comes before each, and each run's tables are dropped after it.
# Prints rows/s of both, archiver/copy per run and the medians (goal: at least
# 0.5), the archiver's CPU seconds and peak memory (/usr/bin/time -v), and the
# CPU that PostgreSQL (every server process) and RabbitMQ spent meanwhile.
# "sustained" leaves out the archiver's last transaction (written once no
# message came for --flush-quiet, 10 ms by default).
# ARCHIVER_OPTS adds options to the archiver's command line ("--batch-size 5000").
# Builds Release binaries in build/bench unless IMGFEED_BUILD names a build directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-200000}
RUNS=${RUNS:-3}
ITEMS=${ITEMS:-files}
read -r -a ARCHIVER_OPTS <<<"${ARCHIVER_OPTS:-}"
POLL=0.2
BENCH=archive.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/archive.sh [N]" >&2; exit 2; }
case $ITEMS in files) FEED_OPTS=(--only-files) ;; all) FEED_OPTS=() ;; *) echo "archive.sh: ITEMS is files or all" >&2; exit 2 ;; esac
for tool in "$PGBIN/psql" /usr/bin/time /usr/lib/rabbitmq/bin/rabbitmq-server "$PY"; do
    [[ -x $tool ]] || { echo "archive.sh: $tool missing (tests/run.sh installs what the servers need)" >&2; exit 2; }
done

bench_build imgfeed-archiver bench_feed
ARCHIVER=$BUILD/archiver/imgfeed-archiver
FEED=$BUILD/bench/bench_feed

TIME_PID=
bench_stop_processes() {
    if [[ -n $TIME_PID ]]; then
        pkill -KILL -P "$TIME_PID" 2>/dev/null || true # the archiver, child of /usr/bin/time
    fi
}
bench_start_servers
# Commit times tell when the archiver's last row was stored.
bench_track_commits
"$ARCHIVER" --init-db --pg "$IMGFEED_PG" --log-level warn

# The items, and the same rows as COPY text files, one per table.
"$FEED" "${FEED_OPTS[@]}" items "$N" "$WORK/items.jsonl" 2>/dev/null
"$PY" - "$WORK" <<'PYEOF'
import json, sys
work = sys.argv[1]
out = {t: open(f"{work}/{t}.copy", "w") for t in ("thread", "post")}
n = size = 0
with open(f"{work}/items.jsonl") as f:
    for line in f:
        line = line.rstrip("\n")
        item = json.loads(line)
        # text format: tab-separated, backslash is the escape character
        out[item["_type"]].write(item["_id"] + "\t" + line.replace("\\", "\\\\") + "\n")
        n += 1
        size += len(line.encode())
for f in out.values():
    f.close()
with open(f"{work}/items.txt", "w") as f:
    f.write(f"{n} {size}\n")
PYEOF
read -r NITEMS BYTES <"$WORK/items.txt"
NTHREAD=$(wc -l <"$WORK/thread.copy")

echo "machine:    $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "postgresql: $(psql -c 'SHOW server_version') ($(psql -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'max_wal_size', 'wal_buffers', 'checkpoint_timeout', 'work_mem', 'maintenance_work_mem', 'track_commit_timestamp', 'autovacuum')"))"
echo "rabbitmq:   $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?'), classic durable queue, persistent messages"
echo "archiver:   $ARCHIVER --exchange arch<run>${ARCHIVER_OPTS[*]:+ ${ARCHIVER_OPTS[*]}}"
echo "items:      $NITEMS ($ITEMS: $NTHREAD threads, $((NITEMS - NTHREAD)) replies), $((BYTES / NITEMS)) bytes of JSON each on average, $((BYTES / 1000000)) MB"
echo

# fresh_tables E: the empty archive tables of exchange E, as the archiver
# creates them, then a checkpoint.
fresh_tables() {
    psql -c "SELECT imgfeed_ensure_table('${1}_4chan_thread', '$1', '4chan.thread'), imgfeed_ensure_table('${1}_4chan_post', '$1', '4chan.post')" >/dev/null
    psql -c CHECKPOINT
}
drop_tables() {
    psql -c "DROP TABLE ${1}_4chan_thread, ${1}_4chan_post; DELETE FROM imgfeed_tables WHERE exchange = '$1'"
}
rows_stored() {
    psql -c "SELECT (SELECT count(*) FROM ${1}_4chan_thread) + (SELECT count(*) FROM ${1}_4chan_post)"
}

# copy_run R: \copy both files into fresh tables; prints "seconds pg_cpu psql_cpu".
copy_run() {
    local e=copy$1 t0 t1 c0 c1
    fresh_tables "$e"
    c0=$(pg_cpu)
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$WORK/psql.time" "$PGBIN/psql" "$IMGFEED_PG" -v ON_ERROR_STOP=1 -Atq \
        -c "\\copy ${e}_4chan_thread (id, data) FROM '$WORK/thread.copy'" \
        -c "\\copy ${e}_4chan_post (id, data) FROM '$WORK/post.copy'"
    t1=$(now)
    sleep 0.5 # the backend is gone and reaped
    c1=$(pg_cpu)
    local rows
    rows=$(rows_stored "$e")
    [[ $rows == "$NITEMS" ]] || { echo "archive.sh: COPY stored $rows rows, not $NITEMS" >&2; exit 1; }
    drop_tables "$e"
    echo "$(sub "$t1" "$t0") $(sub "$c1" "$c0") $(awk '{ printf "%.2f", $1 + $2 }' "$WORK/psql.time")"
}

# archive_run R: publish N items, then time one archiver storing them; prints
# "seconds sustained_seconds sustained_rows arch_cpu arch_rss_kb pg_cpu backend_cpu rabbit_cpu".
archive_run() {
    local e=arch$1 t0 c0 r0 ins arch_pid backend='' next_count
    "$FEED" "${FEED_OPTS[@]}" publish --exchange "$e" "$N" 2>"$WORK/publish.log" ||
        { cat "$WORK/publish.log" >&2; exit 1; }
    fresh_tables "$e"
    c0=$(pg_cpu)
    r0=$(proc_cpu "$RABBIT_PID")
    t0=$(now)
    /usr/bin/time -v -o "$WORK/archiver.time" "$ARCHIVER" --exchange "$e" --pg "$IMGFEED_PG" \
        --amqp-url "$IMGFEED_AMQP_URL" "${ARCHIVER_OPTS[@]}" >"$WORK/archiver.log" 2>&1 &
    TIME_PID=$!
    # Wait for the rows.  count(*) of a large table costs PostgreSQL tens of
    # milliseconds, so the statistics view (cheap, but some seconds behind)
    # says when to count; the time measured comes from the commit times.
    next_count=$((SECONDS + 5))
    while :; do
        sleep "$POLL"
        kill -0 "$TIME_PID" 2>/dev/null || { cat "$WORK/archiver.log" >&2; echo "archive.sh: the archiver exited" >&2; exit 1; }
        [[ -n $backend ]] || backend=$(psql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'imgfeed-archiver' LIMIT 1")
        ins=$(psql -c "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname IN ('${e}_4chan_thread', '${e}_4chan_post')")
        if ((ins >= N || SECONDS >= next_count)); then
            (($(rows_stored "$e") >= N)) && break
            next_count=$((SECONDS + 5))
        fi
    done
    local bcpu rabbit
    bcpu=$(proc_cpu "$backend" 2>/dev/null || echo 0)
    rabbit=$(sub "$(proc_cpu "$RABBIT_PID")" "$r0")
    arch_pid=$(pgrep -P "$TIME_PID")
    kill -TERM "$arch_pid"
    local rc=0
    wait "$TIME_PID" || rc=$?
    TIME_PID=
    ((rc == 0)) || { cat "$WORK/archiver.log" >&2; echo "archive.sh: the archiver exited $rc after SIGTERM" >&2; exit 1; }
    sleep 0.5 # the backend is gone and reaped
    local c1
    c1=$(pg_cpu)
    # Commit times of the archiver's transactions, last first.
    local commits
    commits=$(psql -F ' ' -c "SELECT extract(epoch FROM c), n FROM (SELECT pg_xact_commit_timestamp(xmin) AS c, count(*) AS n FROM ${e}_4chan_thread GROUP BY 1 UNION ALL SELECT pg_xact_commit_timestamp(xmin), count(*) FROM ${e}_4chan_post GROUP BY 1) s ORDER BY 1 DESC")
    local stored
    stored=$(awk '{ s += $2 } END { print s }' <<<"$commits")
    [[ $stored == "$NITEMS" ]] || { echo "archive.sh: the archiver stored $stored rows, not $NITEMS" >&2; exit 1; }
    # A commit may hold rows of both tables (one line each): group by time.
    read -r last prev last_rows <<<"$(awk '{ n[$1] += $2; if (!($1 in seen)) { seen[$1] = 1; t[++k] = $1 } }
        END { print t[1], (k > 1 ? t[2] : t[1]), n[t[1]] }' <<<"$commits")"
    local cpu rss
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/archiver.time")
    rss=$(awk -F': ' '/Maximum resident/ { print $2 }' "$WORK/archiver.time")
    drop_tables "$e"
    echo "$(sub "$last" "$t0") $(sub "$prev" "$t0") $((NITEMS - last_rows)) $cpu $rss $(sub "$c1" "$c0") $bcpu $rabbit"
}

: >"$WORK/results"
for r in $(seq "$RUNS"); do
    copy_run "$r" >"$WORK/copy.out"
    archive_run "$r" >"$WORK/archive.out"
    read -r cs cpg cpsql <"$WORK/copy.out"
    read -r as ss srows acpu arss apg abk arab <"$WORK/archive.out"
    echo "$r $cs $cpg $cpsql $as $ss $srows $acpu $arss $apg $abk $arab" >>"$WORK/results"
    "$PY" - "$NITEMS" "$WORK/results" <<'PYEOF'
import sys
n = int(sys.argv[1])
r, cs, cpg, cpsql, as_, ss, srows, acpu, arss, apg, abk, arab = open(sys.argv[2]).read().splitlines()[-1].split()
cs, as_, ss = float(cs), float(as_), float(ss)
print(f"run {r}: copy {n / cs:8.0f} rows/s ({cs:.2f} s; PostgreSQL CPU {cpg} s, psql {cpsql} s)")
print(f"       archiver {n / as_:8.0f} rows/s ({as_:.2f} s), sustained {int(srows) / ss:.0f} rows/s;"
      f" archiver/copy {n / as_ / (n / cs):.2f} (sustained {int(srows) / ss / (n / cs):.2f})")
print(f"       CPU: archiver {acpu} s (peak RSS {int(arss) // 1024} MiB), PostgreSQL {apg} s"
      f" (of which the archiver's backend {abk} s), RabbitMQ {arab} s")
PYEOF
done

"$PY" - "$NITEMS" "$WORK/results" <<'PYEOF'
import statistics, sys
n = int(sys.argv[1])
rows = [line.split() for line in open(sys.argv[2])]
med = lambda i: statistics.median(float(r[i]) for r in rows)
copy = statistics.median(n / float(r[1]) for r in rows)
arch = statistics.median(n / float(r[4]) for r in rows)
sust = statistics.median(int(r[6]) / float(r[5]) for r in rows)
ratio = statistics.median((n / float(r[4])) / (n / float(r[1])) for r in rows)
sratio = statistics.median((int(r[6]) / float(r[5])) / (n / float(r[1])) for r in rows)
print()
print(f"median of {len(rows)} runs, {n} rows:")
print(f"  copy      {copy:8.0f} rows/s   (PostgreSQL CPU {med(2):.2f} s)")
print(f"  archiver  {arch:8.0f} rows/s   sustained {sust:.0f} rows/s")
print(f"  archiver / copy  {ratio:.2f}   sustained {sratio:.2f}   (goal: >= 0.50)")
print(f"  archiver CPU {med(7):.2f} s, peak RSS {med(8) / 1024:.0f} MiB; PostgreSQL CPU {med(9):.2f} s"
      f" (archiver's backend {med(10):.2f} s); RabbitMQ CPU {med(11):.2f} s")
PYEOF
