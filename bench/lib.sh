# lib.sh -- what the benches that start servers share (archive.sh, crawl.sh,
# pipeline.sh): the build, a work directory with its own RabbitMQ and
# PostgreSQL (tests/lib/servers.sh), cleaned up at exit, the fixture server,
# and CPU seconds read from /proc.
#
# Source it after setting ROOT (the checkout) and BENCH (the script's name,
# for messages).  Then:
#   bench_build TARGET...   builds the targets, Release, in build/bench unless
#                           IMGFEED_BUILD names a build directory; sets BUILD
#   bench_start_servers     makes WORK, starts the servers there and loads
#                           their env and ports; sets RABBIT_PID, PG_PID.  At
#                           exit (or INT/TERM) bench_stop_processes runs, when
#                           the script defines it, then the fixture server,
#                           the servers and WORK go
#   bench_track_commits     turns track_commit_timestamp on (a PostgreSQL
#                           restart), so that commit times tell when a row
#                           was stored; updates PG_PID
#   bench_start_fixture MB [DIR]
#                           starts tests/support/fixture_server.py with MB of
#                           thread cache (and DIR served under /files/); sets
#                           FIXTURE_PID and BASE.  It listens on FIXTURE_HOST
#                           (127.0.0.1 unless set; soak.sh: a namespace's)
#   control PATH            GET BASE/_control/chan/PATH
#   psql ARGS               psql on the private database (PGBIN: the newest
#                           installed PostgreSQL unless set)
#   rabbitmqctl ARGS        rabbitmqctl on the private node
#   now, sub A B            the time in seconds; A - B to two decimals
#   proc_cpu PID            CPU seconds of a process, its threads included
#                           (WITH_CHILDREN=1: also the children it reaped); 0
#                           when it is gone
#   main_thread_cpu PID     CPU seconds of a process's first thread (the one
#                           that runs main); 0 when it is gone
#   cpu_ticks               "busy idle" clock ticks of the whole machine so
#                           far (/proc/stat; idle counts iowait, busy the rest)
#   pg_cpu                  CPU seconds of the whole PostgreSQL server: the
#                           postmaster, the children it reaped, the live ones
# shellcheck shell=bash

PY=/usr/bin/python3
PGBIN=${PGBIN:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)}
TICK=$(getconf CLK_TCK)
WORK=
FIXTURE_PID=

bench_build() {
    BUILD=${IMGFEED_BUILD:-$ROOT/build/bench}
    if [[ -z ${IMGFEED_BUILD:-} ]]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DIMGFEED_TESTS=OFF >/dev/null
    fi
    cmake --build "$BUILD" --target "$@" -j"$(nproc)" >/dev/null
}

bench_cleanup() {
    if declare -F bench_stop_processes >/dev/null; then bench_stop_processes; fi
    if [[ -n $FIXTURE_PID ]]; then
        kill -KILL "$FIXTURE_PID" 2>/dev/null || true
        wait "$FIXTURE_PID" 2>/dev/null || true
    fi
    if [[ -n $WORK ]]; then
        bash "$ROOT/tests/lib/servers.sh" stop "$WORK/servers" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
}

bench_start_servers() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgfeed-bench.XXXXXX")
    chmod 755 "$WORK" # the postgres user reaches its data directory through it
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    bash "$ROOT/tests/lib/servers.sh" start "$WORK/servers" >/dev/null
    # shellcheck source=/dev/null
    . "$WORK/servers/env"
    # shellcheck source=/dev/null
    . "$WORK/servers/ports"
    RABBIT_PID=$(cat "$WORK/servers/rabbit/pid")
    PG_PID=$(cat "$WORK/servers/pg/pid")
}

bench_track_commits() {
    psql -c "ALTER SYSTEM SET track_commit_timestamp = on"
    bash "$ROOT/tests/lib/servers.sh" pg-restart "$WORK/servers" >/dev/null
    PG_PID=$(cat "$WORK/servers/pg/pid")
}

bench_start_fixture() {
    local files=() host=${FIXTURE_HOST:-127.0.0.1}
    [[ -z ${2:-} ]] || files=(--files "$2")
    "$PY" "$ROOT/tests/support/fixture_server.py" --host "$host" --port-file "$WORK/fixture.port" --chan-cache-mb "$1" "${files[@]}" \
        >/dev/null 2>"$WORK/fixture.log" &
    FIXTURE_PID=$!
    for _ in $(seq 100); do [[ -s $WORK/fixture.port ]] && break; sleep 0.1; done
    [[ -s $WORK/fixture.port ]] || { cat "$WORK/fixture.log" >&2; echo "$BENCH: the fixture server did not start" >&2; exit 1; }
    BASE=http://$host:$(cat "$WORK/fixture.port")
}

control() { curl -fsS --max-time 600 "$BASE/_control/chan/$1"; }

psql() { "$PGBIN/psql" "$IMGFEED_PG" -v ON_ERROR_STOP=1 -Atq "$@"; }

# rabbitmqctl reaches the private node as servers.sh set it up.
rabbitmqctl() {
    HOME=$WORK/servers/rabbit RABBITMQ_NODENAME=imgfeedtest$RABBIT_PORT@localhost ERL_EPMD_PORT=$EPMD_PORT \
        RABBITMQ_CONF_ENV_FILE=$WORK/servers/rabbit/rabbitmq-env.conf \
        /usr/lib/rabbitmq/bin/rabbitmqctl -q "$@"
}

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

proc_cpu() {
    awk -v t="$TICK" -v c="${WITH_CHILDREN:-0}" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + c * ($14 + $15)) / t }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}

main_thread_cpu() { WITH_CHILDREN=0 proc_cpu "$1/task/$1"; }

cpu_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat
}

pg_cpu() {
    local total pid
    total=$(WITH_CHILDREN=1 proc_cpu "$PG_PID")
    for pid in $(pgrep -P "$PG_PID"); do
        total=$(awk -v a="$total" -v b="$(proc_cpu "$pid")" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$total"
}
