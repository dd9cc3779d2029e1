#!/usr/bin/env bash
# quickstart.sh -- the whole imgfeed pipeline on this machine, in one command.
#
#   deploy/quickstart.sh [--demo] [--monitor] [OPTIONS]  start (again): install, build, run
#   deploy/quickstart.sh status [--data-dir DIR]         what runs, queue depths, rows archived
#   deploy/quickstart.sh stop [--data-dir DIR]           stop exactly what it started
#
# On Debian or Ubuntu it installs the packages that are missing (apt-get,
# through sudo when not root), builds a Release build in build/quickstart,
# starts a private RabbitMQ and PostgreSQL in the data directory (./run by
# default: no docker, no system service used, loopback ports only, data kept
# between runs), then imgfeed-archiver, imgfeed-search (the reverse image
# search of the archive, on 127.0.0.1:8091 or a free port), imgfeed-hasher,
# imgfeed-live (the live view in a browser, on 127.0.0.1:8090 or a free port)
# and imgfeed-crawler on the sites file, and prints how to watch them, the
# addresses of the live view and of the search, the psql line that opens the
# archive and how to stop.  Run again, it reuses the data and the servers and
# starts only what is not running.  With --demo the crawler crawls a generated
# image board served on 127.0.0.1 (deploy/demo/board.py) instead of the real
# sites: it works offline, and the script waits until hashed rows are in the
# archive and shows a few.  Every program serves its metrics (Prometheus'
# format) on a loopback port of its own; with --monitor, Debian's Prometheus
# scrapes them, RabbitMQ and a PostgreSQL exporter with deploy/prometheus' jobs
# and alert rules, on 127.0.0.1:9090 or a free port.
#
# Options:
#   --demo              crawl the local demo board instead of the sites file
#   --monitor           also run Prometheus (and prometheus-postgres-exporter)
#   --data-dir DIR      servers' data, logs, pids, crawl state (default: ./run
#                       in the repository)
#   --sites FILE        sites file to crawl (default: crawler/sites.json)
#   --rabbit-port N     RabbitMQ's port when first chosen (default 5672, or any
#                       free port if taken; 0: any free port)
#   --pg-port N         PostgreSQL's port likewise (default 5432)
#   --live-port N       the live view's port likewise (default 8090)
#   --search-port N     the reverse image search's port likewise (default 8091)
#   --prometheus-port N --monitor: Prometheus' port likewise (default 9090)
#   --wait SECONDS      --demo: how long to wait for the rows (default 120)
#   --no-install        do not install missing packages (only warn)
#   -h, --help          this text
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lib/quickstart-lib.sh
. "$ROOT/deploy/lib/quickstart-lib.sh"

# Settings of the shell this runs from must not change what it starts: the
# programs get every setting that matters as a flag, and libpq nothing else.
for v in "${!IMGFEED_@}" "${!PG@}"; do unset "$v"; done

CMD=start DEMO=0 DATA=$ROOT/run DATA_ARG='' SITES=$ROOT/crawler/sites.json SITES_SET=0
WANT_RABBIT_PORT='' WANT_PG_PORT='' WANT_LIVE_PORT='' WANT_SEARCH_PORT='' WANT_PROM_PORT='' WAIT=120 INSTALL=1
MONITOR=0
EXCHANGE=chan BUILD=$ROOT/build/quickstart JOBS=$(nproc 2>/dev/null || echo 2)
DEMO_BOARDS=pics,art DEMO_THREADS=10 DEMO_POSTS=20 DEMO_TICK=15
STOPPED=0 STARTED=0

usage() { sed -n '2,/^set -euo pipefail$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }
while (($#)); do
    case $1 in
        start|stop|status) CMD=$1 ;;
        --demo) DEMO=1 ;;
        --monitor) MONITOR=1 ;;
        --data-dir) need_arg "$@"; DATA=$2; shift ;;
        --data-dir=*) DATA=${1#*=} ;;
        --sites) need_arg "$@"; SITES=$(realpath -m "$2"); SITES_SET=1; shift ;;
        --rabbit-port) need_arg "$@"; WANT_RABBIT_PORT=$2; shift ;;
        --pg-port) need_arg "$@"; WANT_PG_PORT=$2; shift ;;
        --live-port) need_arg "$@"; WANT_LIVE_PORT=$2; shift ;;
        --search-port) need_arg "$@"; WANT_SEARCH_PORT=$2; shift ;;
        --prometheus-port) need_arg "$@"; WANT_PROM_PORT=$2; shift ;;
        --wait) need_arg "$@"; WAIT=$2; shift ;;
        --no-install) INSTALL=0 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
for n in "$WANT_RABBIT_PORT" "$WANT_PG_PORT" "$WANT_LIVE_PORT" "$WANT_SEARCH_PORT" "$WANT_PROM_PORT" "$WAIT"; do
    [[ -z $n || $n =~ ^[0-9]+$ ]] || die "'$n' is not a number"
done
((DEMO == 0 || SITES_SET == 0)) || die "--demo crawls the demo board: --sites does not go with it"
[[ $DATA == "$ROOT/run" ]] || DATA_ARG=" --data-dir $(printf %q "$DATA")"
DATA=$(realpath -m "$DATA")
BIN=$BUILD

# One quickstart.sh at a time per data directory.  Descriptor 9 holds the
# lock; nothing started from here inherits it.
lock_data() {
    mkdir -p "$DATA"
    exec 9>>"$DATA/.lock"
    flock -w 120 9 || die "another quickstart.sh is busy with $DATA"
}

# --- packages and build -------------------------------------------------------

# A|B|C: any of them will do; the first one apt knows is installed.
PACKAGES=(
    build-essential cmake pkg-config
    librabbitmq-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libgd-dev libmicrohttpd-dev
    "libjpeg62-turbo-dev|libjpeg-turbo8-dev|libjpeg-dev" libpng-dev libwebp-dev libgif-dev zlib1g-dev libssl-dev
    rabbitmq-server postgresql python3 procps util-linux ca-certificates
    python3-matplotlib # imgfeed-report draws its figures with it
    libzstd-dev # imgfeed-export's zstd parts (the build needs it)
)
# --monitor: Debian's Prometheus and PostgreSQL exporter.  (Installing them
# starts their system services on 9090 and 9187; the quickstart leaves them
# alone and runs its own on other ports.)
MONITOR_PACKAGES=(prometheus prometheus-postgres-exporter)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_missing() {
    local missing=() entry alt ok pick sudo=()
    command -v dpkg-query >/dev/null || die "this needs Debian or Ubuntu (dpkg and apt-get)"
    local wanted=("${PACKAGES[@]}")
    ((MONITOR == 0)) || wanted+=("${MONITOR_PACKAGES[@]}")
    for entry in "${wanted[@]}"; do
        ok=0
        for alt in ${entry//|/ }; do installed "$alt" && { ok=1; break; }; done
        ((ok)) || missing+=("$entry")
    done
    ((${#missing[@]})) || return 0
    if ((INSTALL == 0)); then
        warn "missing packages (not installed, --no-install): ${missing[*]}"
        return 0
    fi
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing packages ${missing[*]}: install them as root, or install sudo"
        sudo=(sudo)
    fi
    say "missing packages: ${missing[*]//|/ or }"
    "${sudo[@]}" apt-get update -q
    local names=()
    for entry in "${missing[@]}"; do
        pick=${entry%%|*}
        for alt in ${entry//|/ }; do
            if apt-cache show --no-all-versions "$alt" >/dev/null 2>&1; then pick=$alt; break; fi
        done
        names+=("$pick")
    done
    say "installing ${names[*]}"
    # Debian starts the system's own RabbitMQ and PostgreSQL services when it
    # installs them; quickstart leaves them alone and takes other ports.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${names[@]}"
}

build() {
    local log=$BUILD/quickstart-build.log
    mkdir -p "$BUILD"
    # Two quickstarts (say, two test runs) must not build the same tree at once.
    (
        flock -w 1800 8 || die "build/quickstart stays locked"
        if [[ ! -f $BUILD/CMakeCache.txt ]]; then
            say "configuring a Release build in $BUILD"
            cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DIMGFEED_TESTS=OFF >"$log" 2>&1 ||
                { tail -n 30 "$log" >&2; die "cmake failed (log: $log)"; }
        else
            # Again at every start: the build files of an older checkout have
            # no rule for a program added since (make fails on its target).
            cmake -S "$ROOT" -B "$BUILD" >"$log" 2>&1 ||
                { tail -n 30 "$log" >&2; die "cmake failed (log: $log)"; }
        fi
        say "building imgfeed-crawler, imgfeed-hasher, imgfeed-archiver, imgfeed-live, imgfeed-search (log: $log)"
        cmake --build "$BUILD" -j "$JOBS" \
            --target imgfeed-crawler imgfeed-hasher imgfeed-archiver imgfeed-live imgfeed-search \
            >>"$log" 2>&1 ||
            { tail -n 30 "$log" >&2; die "the build failed (log: $log)"; }
    ) 8>>"$ROOT/build/quickstart.lock" 9>&-
}

# --- the pipeline -------------------------------------------------------------

amqp_url() { echo "amqp://guest:guest@127.0.0.1:$RABBIT_PORT"; }
pg_conninfo() { echo "host=127.0.0.1 port=$PG_PORT user=postgres dbname=imgfeed"; }

choose_ports() {
    load_ports
    if ! pid_alive rabbitmq >/dev/null; then
        pick_port RABBIT_PORT "${WANT_RABBIT_PORT:-${RABBIT_PORT:-5672}}" RabbitMQ
        pick_port RABBIT_METRICS_PORT "${RABBIT_METRICS_PORT:-0}" "RabbitMQ's metrics"
        if ! pid_alive epmd >/dev/null; then
            pick_port EPMD_PORT "${EPMD_PORT:-0}" "the Erlang port mapper"
        fi
        pick_port RABBIT_DIST_PORT "${RABBIT_DIST_PORT:-0}" "RabbitMQ's Erlang distribution"
    fi
    if ! pid_alive postgres >/dev/null; then
        pick_port PG_PORT "${WANT_PG_PORT:-${PG_PORT:-5432}}" PostgreSQL
    fi
    if ((DEMO)) && ! pid_alive demo-board >/dev/null; then
        pick_port DEMO_PORT "${DEMO_PORT:-0}" "the demo board"
    fi
    if ! pid_alive live >/dev/null; then
        pick_port LIVE_PORT "${WANT_LIVE_PORT:-${LIVE_PORT:-8090}}" "the live view"
    fi
    if ! pid_alive search >/dev/null; then
        pick_port SEARCH_PORT "${WANT_SEARCH_PORT:-${SEARCH_PORT:-8091}}" "the reverse image search"
    fi
    # Every program serves its metrics, --monitor or not: a Prometheus started
    # later (quickstart.sh --monitor, or your own) finds them without a restart
    # of the pipeline, and serving them costs nothing measurable.
    local entry name var
    for entry in "${METRICS_VARS[@]}"; do
        name=${entry%%:*} var=${entry#*:}
        pid_alive "$name" >/dev/null || pick_port "$var" "${!var:-0}" "the metrics of the $name"
    done
    if ((MONITOR)); then
        pid_alive prometheus >/dev/null ||
            pick_port PROM_PORT "${WANT_PROM_PORT:-${PROM_PORT:-9090}}" Prometheus
        pid_alive postgres-exporter >/dev/null ||
            pick_port PG_EXPORTER_PORT "${PG_EXPORTER_PORT:-0}" "the PostgreSQL exporter"
    fi
    save_ports
}

# The crawler's mode: "demo", or the sites file it crawls.
wanted_mode() { if ((DEMO)); then echo demo; else echo "sites $SITES"; fi; }

check_mode() {
    local mode running
    mode=$(wanted_mode)
    running=$(cat "$DATA/mode" 2>/dev/null || true)
    if [[ -n $running && $running != "$mode" ]] &&
        { pid_alive crawler >/dev/null || pid_alive hasher >/dev/null || pid_alive demo-board >/dev/null; }; then
        die "the pipeline of $DATA already runs in another mode (${running}): run '$0 stop${DATA_ARG}' first"
    fi
    echo "$mode" >"$DATA/mode"
}

demo_start() {
    local pid i
    mkdir -p "$DATA/demo"
    if pid=$(pid_alive demo-board); then
        say "demo board already running (pid $pid, http://127.0.0.1:$DEMO_PORT/demo/)"
    else
        rm -f "$DATA/demo/port"
        say "starting the demo board on http://127.0.0.1:$DEMO_PORT/demo/"
        start_daemon demo-board python3 -B "$ROOT/deploy/demo/board.py" --port "$DEMO_PORT" \
            --port-file "$DATA/demo/port" --journal "$DATA/demo/journal" --site demo \
            --boards "$DEMO_BOARDS" --threads "$DEMO_THREADS" --posts "$DEMO_POSTS" --tick "$DEMO_TICK"
        for ((i = 0; i < 300; i++)); do
            [[ -s $DATA/demo/port ]] && break
            pid_alive demo-board >/dev/null || break
            sleep 0.1
        done
        [[ -s $DATA/demo/port ]] || { tail -n 20 "$DATA/logs/demo-board.log" >&2; die "the demo board did not start"; }
    fi
    local boards
    boards=$(printf '"%s", ' ${DEMO_BOARDS//,/ })
    cat >"$DATA/demo/sites.json.tmp" <<JSON
{
  "user_agent": "imgfeed/0.1.0 quickstart demo (local fixture board)",
  "sites": [
    {
      "name": "demo",
      "kind": "4chan",
      "api": "http://127.0.0.1:$DEMO_PORT/demo",
      "media": "http://127.0.0.1:$DEMO_PORT/demo/media",
      "boards": [${boards%, }],
      "rps": 20,
      "poll_interval": "5s"
    }
  ]
}
JSON
    if ! cmp -s "$DATA/demo/sites.json.tmp" "$DATA/demo/sites.json" && pid_alive crawler >/dev/null; then
        say "the demo board moved to port $DEMO_PORT: restarting the crawler"
        pid_stop crawler 60
    fi
    mv "$DATA/demo/sites.json.tmp" "$DATA/demo/sites.json"
}

# start_stage NAME COMMAND...: unless it runs already.
start_stage() {
    local name=$1 pid exe
    shift
    if pid=$(pid_alive "$name"); then
        say "$name already running (pid $pid)"
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        [[ $exe != *" (deleted)" ]] ||
            say "  ($name was rebuilt since it started: '$0 stop${DATA_ARG}' and start again to run the new build)"
        return 0
    fi
    say "starting $name"
    start_daemon "$name" "$@"
    STARTED=$((STARTED + 1))
}

start_pipeline() {
    local hasher_net=() sites=$SITES
    if ((DEMO)); then
        # The demo board is on 127.0.0.1, which the hasher refuses by default;
        # let loopback through, nothing else.
        hasher_net=(--allow-net 127.0.0.0/8)
        sites=$DATA/demo/sites.json
    else
        [[ -r $sites ]] || die "cannot read the sites file $sites"
    fi
    mkdir -p "$DATA/state"
    start_stage archiver "$BIN/archiver/imgfeed-archiver" --amqp-url "$(amqp_url)" --exchange "$EXCHANGE" \
        --pg "$(pg_conninfo)" --metrics-listen "127.0.0.1:$ARCHIVER_METRICS_PORT"
    # The search loads the archive's hashes, then follows its own queue, <E>.search.
    start_stage search "$BIN/search/imgfeed-search" --amqp-url "$(amqp_url)" --exchange "$EXCHANGE" \
        --pg "$(pg_conninfo)" --listen "127.0.0.1:$SEARCH_PORT" --metrics-listen "127.0.0.1:$SEARCH_METRICS_PORT"
    start_stage hasher "$BIN/hasher/imgfeed-hasher" --amqp-url "$(amqp_url)" --exchange "$EXCHANGE" \
        --metrics-listen "127.0.0.1:$HASHER_METRICS_PORT" "${hasher_net[@]}"
    start_stage live "$BIN/live/imgfeed-live" --amqp-url "$(amqp_url)" --exchange "$EXCHANGE" \
        --listen "127.0.0.1:$LIVE_PORT" --metrics-listen "127.0.0.1:$LIVE_METRICS_PORT"
    start_stage crawler "$BIN/crawler/imgfeed-crawler" --amqp-url "$(amqp_url)" --exchange "$EXCHANGE" \
        --sites "$sites" --state-dir "$DATA/state" --metrics-listen "127.0.0.1:$CRAWLER_METRICS_PORT"
    # A bad setting or an unreadable sites file ends a program at once.
    ((STARTED == 0)) || sleep 1.5
    check_alive
}

STAGES=(archiver search hasher live crawler)

check_alive() {
    local name
    for name in "${STAGES[@]}" $( ((DEMO)) && echo demo-board); do
        if ! pid_alive "$name" >/dev/null; then
            tail -n 15 "$DATA/logs/$name.log" >&2 || true
            die "$name stopped (log: $DATA/logs/$name.log); the others run on: '$0 stop${DATA_ARG}' stops them"
        fi
    done
}

# --- monitoring (--monitor) ----------------------------------------------------

# monitor_config: $DATA/prometheus from deploy/prometheus, for the ports of
# this data directory (deploy/prometheus/local_config.py); a running
# Prometheus reads the targets again by itself, and a new prometheus.yml on
# SIGHUP.
monitor_config() {
    local before after targets=() entry var
    for entry in "${METRICS_VARS[@]}"; do
        var=${entry#*:}
        if [[ -n ${!var} ]]; then
            targets+=("${entry%%:*}=127.0.0.1:${!var}")
        else # started by an older quickstart.sh, without metrics
            warn "the ${entry%%:*} serves no metrics: '$0 stop${DATA_ARG}' and start again for them"
        fi
    done
    if [[ -n $RABBIT_METRICS_PORT ]]; then
        targets+=("rabbitmq=127.0.0.1:$RABBIT_METRICS_PORT")
    else
        warn "RabbitMQ serves no metrics: '$0 stop${DATA_ARG}' and start again for them"
    fi
    [[ -z $PG_EXPORTER_PORT ]] || ! pid_alive postgres-exporter >/dev/null ||
        targets+=("postgres=127.0.0.1:$PG_EXPORTER_PORT")
    before=$(cksum <"$DATA/prometheus/prometheus.yml" 2>/dev/null || true)
    python3 "$ROOT/deploy/prometheus/local_config.py" --out "$DATA/prometheus" --interval 5s "${targets[@]}" ||
        die "could not write the Prometheus configuration in $DATA/prometheus"
    after=$(cksum <"$DATA/prometheus/prometheus.yml")
    local pid
    if [[ $before != "$after" ]] && pid=$(pid_alive prometheus); then
        say "Prometheus configuration changed: reloading it (pid $pid)"
        kill -HUP "$pid" 2>/dev/null || true
    fi
}

monitor_start() {
    local pid
    command -v prometheus >/dev/null ||
        die "--monitor needs Debian's Prometheus: apt-get install prometheus prometheus-postgres-exporter"
    mkdir -p "$DATA/prometheus/data"
    if pid=$(pid_alive postgres-exporter); then
        say "PostgreSQL exporter already running (pid $pid, port $PG_EXPORTER_PORT)"
    elif command -v prometheus-postgres-exporter >/dev/null; then
        say "starting the PostgreSQL exporter on 127.0.0.1:$PG_EXPORTER_PORT"
        start_daemon postgres-exporter env "DATA_SOURCE_NAME=postgresql://postgres@127.0.0.1:$PG_PORT/imgfeed?sslmode=disable" \
            prometheus-postgres-exporter "--web.listen-address=127.0.0.1:$PG_EXPORTER_PORT"
        wait_port "$PG_EXPORTER_PORT" 30 postgres-exporter ||
            { tail -n 15 "$DATA/logs/postgres-exporter.log" >&2; die "the PostgreSQL exporter did not start"; }
    else
        warn "prometheus-postgres-exporter is not installed: no PostgreSQL figures (apt-get install prometheus-postgres-exporter)"
    fi
    monitor_config
    if pid=$(pid_alive prometheus); then
        say "Prometheus already running (pid $pid, http://127.0.0.1:$PROM_PORT/)"
        return 0
    fi
    say "starting Prometheus on http://127.0.0.1:$PROM_PORT/ (configuration and data in $DATA/prometheus)"
    start_daemon prometheus prometheus "--config.file=$DATA/prometheus/prometheus.yml" \
        "--storage.tsdb.path=$DATA/prometheus/data" "--storage.tsdb.retention.time=15d" \
        "--web.listen-address=127.0.0.1:$PROM_PORT"
    wait_port "$PROM_PORT" 60 prometheus ||
        { tail -n 15 "$DATA/logs/prometheus.log" >&2; die "Prometheus did not start (log: $DATA/logs/prometheus.log)"; }
}

# Rows of the demo site, and hashed pictures among them.
DEMO_TABLES="(SELECT data FROM chan_demo_thread UNION ALL SELECT data FROM chan_demo_post) AS p"

demo_counts() {
    psql_qs imgfeed -Atc "SELECT count(*), count(*) FILTER (WHERE EXISTS
        (SELECT 1 FROM imgfeed_images(p.data) AS i WHERE i.phash IS NOT NULL)) FROM $DEMO_TABLES" 2>/dev/null ||
        echo "0|0"
}

DEMO_QUERY="SELECT p.id, i.width || 'x' || i.height AS size, i.sha1, i.phash
FROM chan_demo_post AS p, imgfeed_images(p.data) AS i
WHERE i.phash IS NOT NULL
ORDER BY p.archived_on DESC, p.id
LIMIT 5;"

demo_wait() {
    local expected=$(($(tr ',' '\n' <<<"$DEMO_BOARDS" | grep -c .) * DEMO_THREADS * DEMO_POSTS))
    local deadline=$((SECONDS + WAIT)) next=0 counts rows hashed
    say "waiting for the demo board's $expected posts to reach the archive (up to ${WAIT}s)"
    while :; do
        counts=$(demo_counts)
        rows=${counts%%|*} hashed=${counts##*|}
        if ((rows >= expected && hashed > 0)); then break; fi
        if ((SECONDS >= deadline)); then
            warn "after ${WAIT}s: $rows posts archived, $hashed with hashed pictures"
            local name
            for name in "${STAGES[@]}" demo-board; do
                echo "--- $DATA/logs/$name.log" >&2
                tail -n 8 "$DATA/logs/$name.log" >&2 || true
            done
            die "the demo did not complete in time"
        fi
        if ((SECONDS >= next)); then
            say "  $rows posts archived, $hashed with hashed pictures"
            next=$((SECONDS + 5))
        fi
        check_alive
        sleep 1
    done
    say "  $rows posts archived, $hashed with hashed pictures: the pipeline works"
    echo
    echo "A few archived pictures and their perceptual hash (phash, 144 bits in base64):"
    echo
    sed 's/^/    /' <<<"$DEMO_QUERY"
    echo
    psql_qs imgfeed -P pager=off -c "$DEMO_QUERY" | sed 's/^/    /'
}

print_help() {
    local stop="deploy/quickstart.sh stop${DATA_ARG}"
    cat <<TXT

imgfeed runs ($( ((DEMO)) && echo "demo board http://127.0.0.1:$DEMO_PORT/demo/" || echo "sites of $SITES")).

  Watch the images come in, in a browser (the live view):
    http://127.0.0.1:$LIVE_PORT/

  Find where a picture appeared (reverse image search):
    http://127.0.0.1:$SEARCH_PORT/

  Watch it:
    tail -f $DATA/logs/*.log
    deploy/quickstart.sh status${DATA_ARG}        # processes, queue depths, rows per table
    (. $DATA/rabbitmq.env && rabbitmqctl -n $RABBIT_NODE list_queues name messages consumers)

  Open the archive (tables chan_<site>_thread and chan_<site>_post; queries in
  docs/querying.md):
    psql "$(pg_conninfo)"

  The programs' settings:  AMQP $(amqp_url)   PostgreSQL $(pg_conninfo)
  (also in $DATA/env, to source before starting more crawlers, hashers or archivers)

  Stop everything it started (data is kept; run quickstart.sh again to resume;
  to start from nothing, remove $DATA after the stop):
    $stop
TXT
    if pid_alive prometheus >/dev/null; then
        cat <<TXT

  Prometheus, with the alert rules of deploy/prometheus (Alerts tab; what each
  one means: docs/operations.md, "Monitoring"):
    http://127.0.0.1:$PROM_PORT/
  For graphs, import deploy/grafana/dashboards/imgfeed.json into a Grafana
  with this Prometheus as its data source.
TXT
    elif [[ -n $CRAWLER_METRICS_PORT ]]; then
        echo
        echo "  Each program's metrics: http://127.0.0.1:$CRAWLER_METRICS_PORT/metrics (the crawler; the others' ports"
        echo "  are in $DATA/ports).  Add --monitor to run Prometheus and its alert rules on them."
    fi
    if ((DEMO)); then
        echo
        echo "  Without --demo it crawls the real sites of crawler/sites.json (stop the demo first)."
    fi
}

write_env() {
    cat >"$DATA/env" <<ENV
# source this file to reach the quickstart's servers (deploy/quickstart.sh)
export IMGFEED_AMQP_URL=$(amqp_url)
export IMGFEED_PG='$(pg_conninfo)'
export IMGFEED_EXCHANGE=$EXCHANGE
ENV
    write_rabbit_env
}

cmd_start() {
    install_missing
    build
    lock_data
    chmod 755 "$DATA" # the postgres user goes through it to its own directory
    mkdir -p "$DATA/logs" "$DATA/pids"
    check_mode
    choose_ports
    pg_start
    rabbit_start
    write_env
    ((DEMO == 0)) || demo_start
    start_pipeline
    if ((MONITOR)); then
        monitor_start
    elif pid_alive prometheus >/dev/null; then
        monitor_config
    fi
    ((DEMO == 0)) || demo_wait
    print_help
}

cmd_stop() {
    if [[ ! -d $DATA/pids ]]; then
        say "nothing started in $DATA"
        return 0
    fi
    lock_data
    load_ports
    pid_stop prometheus 30
    pid_stop postgres-exporter 10
    # The source first, so that what is in flight drains downstream: the
    # crawler finishes its thread and publishes, the hasher its downloads
    # (from the demo board, still up), the archiver its batch.
    pid_stop crawler 60
    pid_stop hasher 90
    pid_stop live 10
    pid_stop search 10
    pid_stop demo-board 10
    pid_stop archiver 60
    rabbit_stop
    pg_stop
    pid_stop epmd 10
    local left
    left=$(ls "$DATA/pids" 2>/dev/null || true)
    [[ -z $left ]] || warn "left pid files: $left"
    if ((STOPPED)); then
        say "stopped $STOPPED processes; data kept in $DATA"
    else
        say "nothing was running in $DATA"
    fi
}

cmd_status() {
    [[ -d $DATA/pids ]] || { say "nothing started in $DATA"; return 0; }
    load_ports
    local name pid
    for name in crawler hasher live search archiver demo-board prometheus postgres-exporter rabbitmq rabbitmq-node \
        postgres epmd; do
        [[ -e $DATA/pids/$name.pid ]] || continue
        if pid=$(pid_alive "$name"); then
            printf '  %-18s running (pid %s)\n' "$name" "$pid"
        else
            printf '  %-18s not running\n' "$name"
        fi
    done
    if pid_alive prometheus >/dev/null; then
        echo
        echo "Prometheus: http://127.0.0.1:$PROM_PORT/ (alerts: http://127.0.0.1:$PROM_PORT/alerts)"
    fi
    if pid_alive rabbitmq-node >/dev/null; then
        echo
        echo "Queues (messages waiting, consumers):"
        rabbitmqctl_qs list_queues name messages consumers 2>&1 | sed 's/^/  /' || true
    fi
    if pid_alive postgres >/dev/null; then
        pg_bin
        echo
        echo "Archive ($(pg_conninfo)):"
        psql_qs imgfeed -P pager=off -c "SELECT name AS table, (xpath('/row/n/text()',
            query_to_xml(format('SELECT count(*) AS n FROM %I', name), false, true, '')))[1]::text::bigint AS rows
            FROM imgfeed_tables ORDER BY name" 2>/dev/null | sed 's/^/  /' || echo "  (no table yet)"
    fi
}

case $CMD in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
esac
