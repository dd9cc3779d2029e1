# shellcheck shell=bash
# quickstart-lib.sh -- the pieces of deploy/quickstart.sh: processes it
# records and stops, loopback ports, and its private RabbitMQ and PostgreSQL.
# Sourced, not run.  Everything lives under $DATA; nothing listens beyond
# 127.0.0.1 (and ::1); only processes recorded in $DATA/pids are ever signalled.
#
# A pid file $DATA/pids/NAME.pid holds "PID STARTTIME", the start time being
# field 22 of /proc/PID/stat: a pid the kernel gave to another process since
# (after a reboot, say) does not match it, so it is never taken for ours.

say() { echo "quickstart: $*"; }
warn() { echo "quickstart: $*" >&2; }
die() { echo "quickstart: $*" >&2; exit 1; }

# --- processes ---------------------------------------------------------------

# proc_start PID: the start time of PID (clock ticks since boot); fails if
# there is no such process or it is a zombie.
proc_start() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    rest=${stat##*) }  # the command name may hold spaces and parentheses
    # shellcheck disable=SC2086
    set -- $rest
    [[ $1 != Z && $1 != X ]] || return 1
    echo "${20}"
}

pid_save() { # pid_save NAME PID
    local start
    start=$(proc_start "$2") || return 1
    echo "$2 $start" >"$DATA/pids/$1.pid"
}

# pid_alive NAME: print the pid and succeed if the recorded process still runs.
pid_alive() {
    local file=$DATA/pids/$1.pid pid start now
    [[ -s $file ]] || return 1
    read -r pid start <"$file" || true
    [[ $pid =~ ^[0-9]+$ && $start =~ ^[0-9]+$ ]] || return 1
    now=$(proc_start "$pid") || return 1
    [[ $now == "$start" ]] || return 1
    echo "$pid"
}

# pid_wait_gone NAME SECONDS: succeed once the recorded process is gone.
pid_wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        pid_alive "$1" >/dev/null || return 0
        sleep 0.1
    done
    ! pid_alive "$1" >/dev/null
}

# pid_stop NAME SECONDS: SIGTERM the recorded process, wait up to SECONDS for
# it to finish what it holds, SIGKILL it if it is still there, forget it.
pid_stop() {
    local name=$1 grace=$2 pid
    if pid=$(pid_alive "$name"); then
        kill -0 "$pid" 2>/dev/null || die "cannot signal $name (pid $pid): run stop as the user who started it"
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        if ! pid_wait_gone "$name" "$grace"; then
            warn "$name (pid $pid) still runs after ${grace}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            pid_wait_gone "$name" 5 || warn "$name (pid $pid) survived SIGKILL"
        fi
        STOPPED=$((STOPPED + 1))
    fi
    rm -f "$DATA/pids/$name.pid"
}

# start_daemon NAME COMMAND...: run COMMAND in its own session, detached from
# this terminal, output appended to $DATA/logs/NAME.log, and record its pid.
# (A background job of a script is not a process group leader, so setsid
# execs in place: $! is the daemon's own pid.)  Descriptor 9, the data
# directory's lock, is not inherited.
start_daemon() {
    local name=$1 log=$DATA/logs/$1.log
    shift
    printf '=== %s quickstart.sh: %s\n' "$(date '+%F %T')" "$*" >>"$log"
    (cd "$DATA" && exec setsid "$@" >>"$log" 2>&1 </dev/null 9>&-) &
    pid_save "$name" $! || die "$name exited at once: $(tail -n 5 "$log")"
}

# --- ports --------------------------------------------------------------------

# port_free PORT: nothing listens on 127.0.0.1:PORT (nor on a wildcard address).
port_free() {
    python3 - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", port))
except OSError:
    sys.exit(1)
s.close()
c = socket.socket()
c.settimeout(1)
try:
    c.connect(("127.0.0.1", port))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

# any_port: a free port on 127.0.0.1, none of the ports already chosen.
any_port() {
    local p
    while :; do
        p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        [[ " $RABBIT_PORT $RABBIT_DIST_PORT $EPMD_PORT $PG_PORT $DEMO_PORT $LIVE_PORT $SEARCH_PORT \
$RABBIT_METRICS_PORT $PROM_PORT $PG_EXPORTER_PORT $CRAWLER_METRICS_PORT $HASHER_METRICS_PORT \
$ARCHIVER_METRICS_PORT $LIVE_METRICS_PORT $SEARCH_METRICS_PORT " == *" $p "* ]] ||
            break
    done
    echo "$p"
}

# pick_port VAR WANTED: set VAR to WANTED if it is free, else to a free port
# (0 asks for any free port).  Called only when the server that would use it
# is not running: a port our own server holds is never given away.
pick_port() {
    local var=$1 want=$2 what=$3
    if [[ $want != 0 ]] && port_free "$want"; then
        printf -v "$var" '%s' "$want"
        return 0
    fi
    printf -v "$var" '%s' "$(any_port)"
    [[ $want == 0 ]] || say "port $want for $what is in use: using ${!var}"
}

# The metrics ports of the five programs (--metrics-listen), by stage name
# (used by quickstart.sh).
# shellcheck disable=SC2034
METRICS_VARS=(archiver:ARCHIVER_METRICS_PORT search:SEARCH_METRICS_PORT hasher:HASHER_METRICS_PORT
    live:LIVE_METRICS_PORT crawler:CRAWLER_METRICS_PORT)

load_ports() {
    RABBIT_PORT='' RABBIT_DIST_PORT='' EPMD_PORT='' PG_PORT='' DEMO_PORT='' LIVE_PORT='' SEARCH_PORT=''
    RABBIT_METRICS_PORT='' PROM_PORT='' PG_EXPORTER_PORT='' CRAWLER_METRICS_PORT='' HASHER_METRICS_PORT=''
    ARCHIVER_METRICS_PORT='' LIVE_METRICS_PORT='' SEARCH_METRICS_PORT=''
    # shellcheck source=/dev/null
    [[ -f $DATA/ports ]] && . "$DATA/ports"
    return 0
}

save_ports() {
    cat >"$DATA/ports.tmp" <<P
# loopback ports of this data directory, chosen once and reused (deploy/quickstart.sh)
RABBIT_PORT=$RABBIT_PORT
RABBIT_DIST_PORT=$RABBIT_DIST_PORT
EPMD_PORT=$EPMD_PORT
PG_PORT=$PG_PORT
DEMO_PORT=$DEMO_PORT
LIVE_PORT=$LIVE_PORT
SEARCH_PORT=$SEARCH_PORT
RABBIT_METRICS_PORT=$RABBIT_METRICS_PORT
CRAWLER_METRICS_PORT=$CRAWLER_METRICS_PORT
HASHER_METRICS_PORT=$HASHER_METRICS_PORT
ARCHIVER_METRICS_PORT=$ARCHIVER_METRICS_PORT
LIVE_METRICS_PORT=$LIVE_METRICS_PORT
SEARCH_METRICS_PORT=$SEARCH_METRICS_PORT
PROM_PORT=$PROM_PORT
PG_EXPORTER_PORT=$PG_EXPORTER_PORT
P
    mv "$DATA/ports.tmp" "$DATA/ports"
}

# wait_port PORT SECONDS [PIDNAME]: succeed once 127.0.0.1:PORT accepts; fail
# early if the recorded process PIDNAME is gone.
wait_port() {
    local port=$1 deadline=$((SECONDS + $2)) name=${3:-}
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [[ -n $name ]] && ! pid_alive "$name" >/dev/null; then return 1; fi
        sleep 0.2
    done
    return 1
}

# --- RabbitMQ -----------------------------------------------------------------

RABBIT_NODE=imgfeed@localhost
RABBIT_BIN=/usr/lib/rabbitmq/bin # not /usr/sbin: Debian's wrappers switch to the rabbitmq user
LOOPBACK_DIST="-kernel inet_dist_use_interface {127,0,0,1}"

# rabbit_env: the environment of our node and of rabbitmqctl talking to it.
# Only ever called in a subshell (it changes HOME, for the Erlang cookie).
rabbit_env() {
    export HOME=$DATA/rabbit
    export RABBITMQ_NODENAME=$RABBIT_NODE
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RABBIT_PORT
    export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
    export ERL_EPMD_PORT=$EPMD_PORT
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE=$DATA/rabbit/mnesia
    export RABBITMQ_LOG_BASE=$DATA/rabbit/log
    export RABBITMQ_PID_FILE=$DATA/rabbit/node.pid
    export RABBITMQ_ENABLED_PLUGINS_FILE=$DATA/rabbit/enabled_plugins
    export RABBITMQ_CONFIG_FILE=$DATA/rabbit/rabbitmq
    export RABBITMQ_ADVANCED_CONFIG_FILE=$DATA/rabbit/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$DATA/rabbit/rabbitmq-env.conf
    # The Erlang distribution (node and CLI) listens on loopback only.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=$LOOPBACK_DIST
    export RABBITMQ_CTL_ERL_ARGS=$LOOPBACK_DIST
}

# The file a user sources (in a subshell) to run rabbitmqctl against our node.
write_rabbit_env() {
    cat >"$DATA/rabbitmq.env" <<ENV
# (. $DATA/rabbitmq.env && rabbitmqctl list_queues name messages consumers)
export HOME='$DATA/rabbit'
export ERL_EPMD_PORT=$EPMD_PORT
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_NODENAME=$RABBIT_NODE
export RABBITMQ_CTL_ERL_ARGS='$LOOPBACK_DIST'
export PATH=$RABBIT_BIN:\$PATH
ENV
}

# rabbitmqctl ARGS...: our node's rabbitmqctl.  Only while our epmd runs:
# without it the CLI would start a machine-wide epmd of its own.
rabbitmqctl_qs() {
    pid_alive epmd >/dev/null || { warn "RabbitMQ is not running"; return 1; }
    (rabbit_env && exec "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" -q "$@" 9>&-)
}

epmd_start() {
    local pid
    if pid=$(pid_alive epmd); then return 0; fi
    mkdir -p "$DATA/rabbit"
    start_daemon epmd epmd -port "$EPMD_PORT" -address 127.0.0.1
    wait_port "$EPMD_PORT" 10 epmd || die "epmd did not start on port $EPMD_PORT (see $DATA/logs/epmd.log)"
}

rabbit_start() {
    local pid
    if pid=$(pid_alive rabbitmq); then
        say "RabbitMQ already running (pid $pid, port $RABBIT_PORT)"
        wait_port "$RABBIT_PORT" 60 rabbitmq ||
            die "RabbitMQ of $DATA runs but does not answer on port $RABBIT_PORT (logs: $DATA/rabbit/log): '$0 stop${DATA_ARG}' and start again"
        return 0
    fi
    pid_alive rabbitmq-node >/dev/null && die "a RabbitMQ node of $DATA runs without its wrapper: run '$0 stop${DATA_ARG}' first"
    mkdir -p "$DATA/rabbit/log"
    chmod 700 "$DATA/rabbit"
    # rabbitmq_prometheus: the broker's own metrics (queue depths, alarms) on
    # 127.0.0.1:RABBIT_METRICS_PORT, for the Prometheus of --monitor.
    echo '[rabbitmq_prometheus].' >"$DATA/rabbit/enabled_plugins"
    # Rewritten at every start: the ports may have moved.
    cat >"$DATA/rabbit/rabbitmq.conf" <<CONF
# written by deploy/quickstart.sh at every start
loopback_users.guest = true
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBIT_METRICS_PORT
CONF
    : >"$DATA/rabbit/rabbitmq-env.conf"
    epmd_start
    say "starting RabbitMQ on 127.0.0.1:$RABBIT_PORT (data in $DATA/rabbit)"
    printf '=== %s quickstart.sh: rabbitmq-server\n' "$(date '+%F %T')" >>"$DATA/logs/rabbitmq.log"
    (rabbit_env && exec setsid "$RABBIT_BIN/rabbitmq-server" >>"$DATA/logs/rabbitmq.log" 2>&1 </dev/null 9>&-) &
    pid_save rabbitmq $! || die "rabbitmq-server exited at once: $(tail -n 20 "$DATA/logs/rabbitmq.log")"
    if ! wait_port "$RABBIT_PORT" 120 rabbitmq; then
        tail -n 20 "$DATA/logs/rabbitmq.log" >&2 || true
        tail -n 20 "$DATA/rabbit/log/$RABBIT_NODE.log" >&2 2>/dev/null || true
        die "RabbitMQ did not open port $RABBIT_PORT (logs: $DATA/logs/rabbitmq.log, $DATA/rabbit/log)"
    fi
    # The Erlang VM itself, as it recorded its pid: stopped if the wrapper
    # ever goes without it.
    local i node
    for ((i = 0; i < 50; i++)); do
        node=$(cat "$DATA/rabbit/node.pid" 2>/dev/null || true)
        [[ $node =~ ^[0-9]+$ ]] && pid_save rabbitmq-node "$node" && break
        sleep 0.1
    done
}

rabbit_stop() {
    # The wrapper script traps TERM and stops the node cleanly; the node's
    # own pid is the fallback should the wrapper be gone.
    pid_stop rabbitmq 90
    pid_stop rabbitmq-node 30
    rm -f "$DATA/rabbit/node.pid"
}

# --- PostgreSQL ---------------------------------------------------------------

# PostgreSQL refuses to run as root: as root it runs as the postgres user.
pg_as() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_bin: the server binaries of the data directory's major version, or of
# the newest one installed for a new cluster.
pg_bin() {
    local version
    if [[ -f $DATA/pg/data/PG_VERSION ]]; then
        version=$(cat "$DATA/pg/data/PG_VERSION")
        [[ -x /usr/lib/postgresql/$version/bin/postgres ]] ||
            die "$DATA/pg/data was made by PostgreSQL $version, which is not installed (apt-get install postgresql-$version)"
        PGBIN=/usr/lib/postgresql/$version/bin
    else
        PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        [[ -n $PGBIN ]] || die "no PostgreSQL server installed (apt-get install postgresql)"
    fi
}

psql_qs() { # psql_qs DB ARGS...: psql as the superuser over loopback TCP
    local db=$1
    shift
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PG_PORT user=postgres dbname=$db" "$@"
}

pg_init() {
    pg_bin
    [[ -f $DATA/pg/data/PG_VERSION ]] && return 0
    [[ -e $DATA/pg/data ]] && die "$DATA/pg/data exists without PG_VERSION (an interrupted initdb?): remove it and run again"
    mkdir -p "$DATA/pg"
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "no postgres user (apt-get install postgresql)"
        chown postgres: "$DATA/pg"
    fi
    chmod 700 "$DATA/pg"
    pg_as test -w "$DATA/pg" ||
        die "the postgres user cannot reach $DATA/pg (a parent directory is closed to others): use --data-dir in a place it can reach, such as /var/tmp/imgfeed"
    say "creating a PostgreSQL cluster in $DATA/pg/data (first run only)"
    pg_as "$PGBIN/initdb" -D "$DATA/pg/data" -U postgres -A trust -E UTF8 --no-locale >"$DATA/pg/initdb.log" 2>&1 ||
        { cat "$DATA/pg/initdb.log" >&2; die "initdb failed"; }
}

pg_start() {
    local pid
    pg_init
    if pid=$(pid_alive postgres); then
        say "PostgreSQL already running (pid $pid, port $PG_PORT)"
    else
        say "starting PostgreSQL on 127.0.0.1:$PG_PORT (data in $DATA/pg/data)"
        touch "$DATA/logs/postgresql.log"
        ((EUID != 0)) || chown postgres: "$DATA/logs/postgresql.log"
        # No Unix socket: loopback TCP only, nothing written outside $DATA.
        pg_as "$PGBIN/pg_ctl" -D "$DATA/pg/data" -l "$DATA/logs/postgresql.log" -w -t 120 start \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" >/dev/null 9>&- ||
            { tail -n 20 "$DATA/logs/postgresql.log" >&2; die "PostgreSQL did not start (log: $DATA/logs/postgresql.log)"; }
        pid=$(head -n 1 "$DATA/pg/data/postmaster.pid")
        pid_save postgres "$pid" || die "PostgreSQL exited after starting (log: $DATA/logs/postgresql.log)"
    fi
    if [[ $(psql_qs postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'imgfeed'") != 1 ]]; then
        say "creating database imgfeed"
        psql_qs postgres -c "CREATE DATABASE imgfeed" >/dev/null
    fi
}

pg_stop() {
    if pid_alive postgres >/dev/null; then
        pg_bin
        say "stopping postgres (pid $(pid_alive postgres))"
        pg_as "$PGBIN/pg_ctl" -D "$DATA/pg/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
        pid_wait_gone postgres 5 || true
        pid_alive postgres >/dev/null || STOPPED=$((STOPPED + 1))
    fi
    pid_stop postgres 30
}
