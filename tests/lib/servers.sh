#!/usr/bin/env bash
# servers.sh -- private RabbitMQ and PostgreSQL servers for the test suite.
#
# Each run gets its own directory (RUNDIR) holding the servers' data, logs,
# pid files and an `env` file that exports their addresses.  Servers listen on
# loopback only, on free ports picked at start (RabbitMQ's Prometheus endpoint,
# rabbitmq_prometheus, too: IMGFEED_TEST_RABBIT_METRICS), with their own Erlang port
# mapper, so nothing of the machine's own services is touched and two runs can
# share a machine.  Only processes whose pid this script recorded are stopped.
#
#   servers.sh start RUNDIR         start both, write RUNDIR/env
#   servers.sh stop RUNDIR          stop both (by recorded pid)
#   servers.sh rabbit-stop|rabbit-start|rabbit-restart RUNDIR
#   servers.sh pg-stop|pg-start|pg-restart RUNDIR
#   servers.sh pg-only RUNDIR       start PostgreSQL alone, write RUNDIR/pg.env
#                                   (IMGFEED_PG); deploy/netns.sh uses it with
#                                   cluster.sh's broker
#   servers.sh reap                 stop the servers of earlier runs that were
#                                   killed before they could stop their own
#
# Setting: IMGFEED_PG_HOST=ADDR (read by pg-start and pg-only): PostgreSQL
# listens on ADDR instead of 127.0.0.1 and lets in, without a password, the
# clients of the networks it is directly connected to (pg_hba "samenet"):
# for a private network such as deploy/netns.sh's namespaces, never a real one.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
RUN_PREFIX=${TMPDIR:-/tmp}/imgfeed-test.

die() { echo "servers.sh: $*" >&2; exit 1; }

# free_port, wait_port, alive, stop_pid (shared with cluster.sh)
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

load_ports() { # shellcheck source=/dev/null
    . "$RUNDIR/ports"
}

rabbit_env() {
    export HOME=$RUNDIR/rabbit                         # private .erlang.cookie
    export RABBITMQ_NODENAME=imgfeedtest$RABBIT_PORT@localhost
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RABBIT_PORT
    export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
    export ERL_EPMD_PORT=$EPMD_PORT
    export ERL_EPMD_ADDRESS=127.0.0.1
    # The Erlang distribution port listens on loopback only, like everything else.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_MNESIA_BASE=$RUNDIR/rabbit/mnesia
    export RABBITMQ_LOG_BASE=$RUNDIR/rabbit/log
    export RABBITMQ_PID_FILE=$RUNDIR/rabbit/pid
    export RABBITMQ_ENABLED_PLUGINS_FILE=$RUNDIR/rabbit/enabled_plugins
    export RABBITMQ_CONFIG_FILE=$RUNDIR/rabbit/rabbitmq
    export RABBITMQ_ADVANCED_CONFIG_FILE=$RUNDIR/rabbit/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$RUNDIR/rabbit/rabbitmq-env.conf
}

rabbit_start() {
    load_ports
    rabbit_env
    mkdir -p "$RUNDIR/rabbit/log"
    # rabbitmq_prometheus: the broker's own metrics (queue depths), scraped by
    # the monitoring test's Prometheus like deploy/prometheus does in production.
    [[ -f $RUNDIR/rabbit/enabled_plugins ]] || echo '[rabbitmq_prometheus].' >"$RUNDIR/rabbit/enabled_plugins"
    [[ -f $RUNDIR/rabbit/rabbitmq.conf ]] || cat >"$RUNDIR/rabbit/rabbitmq.conf" <<CONF
loopback_users.guest = true
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
heartbeat = 10
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
# A quarter of RabbitMQ's default (128 MiB), so that test_mq reaches the
# broker's own refusal of a too large message cheaply (IMGFEED_TEST_BROKER_MAX_MESSAGE).
max_message_size = 33554432
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBIT_METRICS_PORT
CONF
    : >"$RUNDIR/rabbit/rabbitmq-env.conf"
    # epmd is the Erlang port mapper; ours listens on a private port so that
    # the machine's own, if any, is left alone.
    if [[ ! -s $RUNDIR/rabbit/epmd.pid ]] || ! alive "$(cat "$RUNDIR/rabbit/epmd.pid")"; then
        epmd -port "$EPMD_PORT" -address 127.0.0.1 &
        echo $! >"$RUNDIR/rabbit/epmd.pid"
    fi
    setsid /usr/lib/rabbitmq/bin/rabbitmq-server >>"$RUNDIR/rabbit/server.log" 2>&1 </dev/null &
    echo $! >"$RUNDIR/rabbit/wrapper.pid"
    if ! wait_port "$RABBIT_PORT" 90; then
        tail -n 30 "$RUNDIR/rabbit/server.log" >&2 || true
        die "rabbitmq did not open port $RABBIT_PORT within 90 s (logs in $RUNDIR/rabbit)"
    fi
}

rabbit_stop() {
    load_ports
    # The wrapper script traps TERM and stops the node cleanly; the node's own
    # pid file is the fallback should the wrapper be gone.
    stop_pid "$RUNDIR/rabbit/wrapper.pid" 60
    stop_pid "$RUNDIR/rabbit/pid" 30
}

pg_start() {
    load_ports
    local data=$RUNDIR/pg/data host=${IMGFEED_PG_HOST:-127.0.0.1}
    if [[ ! -d $data ]]; then
        mkdir -p "$RUNDIR/pg"
        chown postgres: "$RUNDIR/pg"
        chmod 755 "$RUNDIR"
        runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >"$RUNDIR/pg/initdb.log" 2>&1 ||
            { cat "$RUNDIR/pg/initdb.log" >&2; die "initdb failed"; }
        [[ $host == 127.0.0.1 ]] || echo "host all all samenet trust" >>"$data/pg_hba.conf"
    fi
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$RUNDIR/pg/server.log" -w -t 60 start \
        -o "-p $PG_PORT -k $RUNDIR/pg -c listen_addresses=$host -c fsync=off" >/dev/null ||
        { tail -n 30 "$RUNDIR/pg/server.log" >&2; die "postgresql did not start"; }
    head -n 1 "$data/postmaster.pid" >"$RUNDIR/pg/pid"
    if ! runuser -u postgres -- "$PGBIN/psql" -h "$host" -p "$PG_PORT" -U postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = 'imgfeed'" postgres | grep -q 1; then
        runuser -u postgres -- "$PGBIN/createdb" -h "$host" -p "$PG_PORT" -U postgres imgfeed
    fi
}

pg_stop() {
    load_ports
    local data=$RUNDIR/pg/data
    if [[ -s $RUNDIR/pg/pid ]] && alive "$(cat "$RUNDIR/pg/pid")"; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    stop_pid "$RUNDIR/pg/pid" 10
}

epmd_stop() { stop_pid "$RUNDIR/rabbit/epmd.pid" 5; }

write_env() {
    load_ports
    cat >"$RUNDIR/env" <<ENV
export IMGFEED_AMQP_URL=amqp://guest:guest@127.0.0.1:$RABBIT_PORT
export IMGFEED_PG='host=127.0.0.1 port=$PG_PORT user=postgres dbname=imgfeed'
export IMGFEED_TEST_RUNDIR=$RUNDIR
export IMGFEED_TEST_BROKER_MAX_MESSAGE=33554432
export IMGFEED_TEST_RABBIT_METRICS=127.0.0.1:$RABBIT_METRICS_PORT
export IMGFEED_TEST_SERVERS=$(realpath "$0")
ENV
}

# pg_only: PostgreSQL alone (its own ports file if the RUNDIR is new), and
# RUNDIR/pg.env with its address.
pg_only() {
    mkdir -p "$RUNDIR"
    [[ -f $RUNDIR/ports ]] || echo "PG_PORT=$(free_port)" >"$RUNDIR/ports"
    pg_start
    echo "export IMGFEED_PG='host=${IMGFEED_PG_HOST:-127.0.0.1} port=$PG_PORT user=postgres dbname=imgfeed'" >"$RUNDIR/pg.env"
}

start_all() {
    mkdir -p "$RUNDIR"
    echo "${IMGFEED_TEST_OWNER_PID:-$$}" >"$RUNDIR/owner.pid"
    if [[ ! -f $RUNDIR/ports ]]; then
        cat >"$RUNDIR/ports" <<P
RABBIT_PORT=$(free_port)
RABBIT_DIST_PORT=$(free_port)
EPMD_PORT=$(free_port)
PG_PORT=$(free_port)
RABBIT_METRICS_PORT=$(free_port)
P
    fi
    rabbit_start &
    local rabbit_job=$!
    pg_start
    wait "$rabbit_job"
    write_env
}

stop_all() {
    rabbit_stop & local rabbit_job=$!
    pg_stop
    wait "$rabbit_job" || true
    epmd_stop
}

# reap: an earlier run killed with SIGKILL could not stop its servers; its
# owner pid is gone but its pid files remain.  Stop those servers and remove
# the directory.
reap() {
    local dir owner
    for dir in "$RUN_PREFIX"*; do
        [[ -f $dir/owner.pid ]] || continue
        owner=$(cat "$dir/owner.pid")
        if [[ $owner =~ ^[0-9]+$ ]] && alive "$owner"; then continue; fi
        echo "servers.sh: stopping servers left by an interrupted run in $dir" >&2
        RUNDIR=$dir stop_all
        rm -rf "$dir"
    done
}

cmd=${1:-}
RUNDIR=${2:-}
case $cmd in
    reap) reap; exit 0 ;;
    start|stop|rabbit-stop|rabbit-start|rabbit-restart|pg-stop|pg-start|pg-restart|pg-only) ;;
    *) die "usage: servers.sh start|stop|rabbit-stop|rabbit-start|rabbit-restart|pg-stop|pg-start|pg-restart|pg-only RUNDIR | reap" ;;
esac
[[ -n $RUNDIR ]] || die "$cmd needs a RUNDIR"
RUNDIR=$(realpath -m "$RUNDIR")
case $cmd in
    start) start_all ;;
    stop) stop_all ;;
    rabbit-stop) rabbit_stop ;;
    rabbit-start) rabbit_start ;;
    rabbit-restart) rabbit_stop; rabbit_start ;;
    pg-stop) pg_stop ;;
    pg-start) pg_start ;;
    pg-restart) pg_stop; pg_start ;;
    pg-only) pg_only ;;
esac
