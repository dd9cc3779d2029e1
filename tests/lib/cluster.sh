#!/usr/bin/env bash
# cluster.sh -- a private RabbitMQ cluster of 1 to 3 nodes for tests.
#
# The sibling of servers.sh (same shared functions, tests/lib/common.sh) for
# the tests that need a cluster: Debian's rabbitmq-server started as N nodes,
# each with its own data directory, AMQP port and Erlang distribution port,
# all with one Erlang cookie and one private Erlang port mapper (epmd) on a
# free port, so nothing of the machine's own services or of another test's
# cluster is touched.  The nodes start in parallel; nodes 2..N then join node
# 1 (rabbitmqctl join_cluster).  A node killed and started again rejoins by
# itself (its data directory remembers the cluster).  Only processes whose pid
# this script recorded are stopped.
#
#   cluster.sh start DIR N        start N nodes (1..3) in DIR, write DIR/env
#   cluster.sh stop DIR           stop every node and epmd (by recorded pid)
#   cluster.sh kill DIR I         kill -9 node I (1-based)
#   cluster.sh start-node DIR I   start node I again; waits until it serves AMQP
#   cluster.sh wait-synced DIR [SECONDS]  wait (default 120 s) until every node
#                                 runs and every quorum queue has all its
#                                 members online
#   cluster.sh reap               stop the clusters of earlier runs whose owner
#                                 is gone, and remove their DIRs
#   cluster.sh ctl DIR I [--tool T] ARGS...   what DIR/ctl runs (below)
#
# DIR/env exports IMGFEED_CLUSTER_URLS (comma-separated amqp:// URLs of the
# nodes, node 1 first), IMGFEED_CLUSTER_DIR, IMGFEED_CLUSTER_SIZE,
# IMGFEED_CLUSTER_SCRIPT, and per node I: IMGFEED_CLUSTER_URL<I>,
# IMGFEED_CLUSTER_PORT<I>, IMGFEED_CLUSTER_NODE<I> (Erlang node name),
# IMGFEED_CLUSTER_NODEDIR<I>.  `DIR/ctl I ARGS...` runs rabbitmqctl against
# node I; `DIR/ctl I --tool rabbitmq-queues ARGS...` (or rabbitmq-diagnostics,
# rabbitmq-plugins) another CLI tool.
#
# Settings (environment, read by start and start-node):
#   IMGFEED_CLUSTER_HOST=ADDR   AMQP listens on ADDR instead of 127.0.0.1, and
#                               guest may log in from other addresses
#                               (loopback_users = none); distribution and
#                               epmd stay on 127.0.0.1 (all nodes run in one
#                               network namespace)
#   IMGFEED_CLUSTER_CONF=FILE   appended to every node's rabbitmq.conf (e.g.
#                               a TLS listener)
#   IMGFEED_CLUSTER_PLUGINS=A,B plugins to enable (none by default)
#   IMGFEED_TEST_OWNER_PID=PID  the process that owns the cluster (default: the
#                               caller of `start`); reap stops clusters whose
#                               owner is gone
set -euo pipefail

# free_port, wait_port, alive, stop_pid
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RABBIT_BIN=/usr/lib/rabbitmq/bin # the tools themselves, not Debian's su wrappers
REGISTRY=${TMPDIR:-/tmp}/imgfeed-clusters # one symlink per running cluster, for reap

die() { echo "cluster.sh: $*" >&2; exit 1; }

load() { # shellcheck source=/dev/null
    [[ -f $DIR/cluster.ports ]] || die "$DIR holds no cluster (no cluster.ports)"
    . "$DIR/cluster.ports"
}

node_name() { echo "imgfeedc${EPMD_PORT}n$1@localhost"; }
amqp_port() { local v=P$1; echo "${!v}"; }
dist_port() { local v=D$1; echo "${!v}"; }

# node_env I: the environment rabbitmq-server and the CLI tools need for node I.
node_env() {
    local i=$1 nd=$DIR/n$1
    export HOME=$DIR/home # the cluster's one .erlang.cookie
    export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node_name "$i")
    export RABBITMQ_NODE_IP_ADDRESS=$HOST
    export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT=$(amqp_port "$i")
    export RABBITMQ_DIST_PORT; RABBITMQ_DIST_PORT=$(dist_port "$i")
    export ERL_EPMD_PORT=$EPMD_PORT
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_MNESIA_BASE=$nd/mnesia
    export RABBITMQ_LOG_BASE=$nd/log
    export RABBITMQ_PID_FILE=$nd/pid
    export RABBITMQ_ENABLED_PLUGINS_FILE=$nd/enabled_plugins
    export RABBITMQ_CONFIG_FILE=$nd/rabbitmq
    export RABBITMQ_ADVANCED_CONFIG_FILE=$nd/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$nd/rabbitmq-env.conf
}

# write_node_conf I: node I's configuration files (at every start, so that a
# changed IMGFEED_CLUSTER_CONF takes effect on start-node).
write_node_conf() {
    local i=$1 nd=$DIR/n$1 plugins=${IMGFEED_CLUSTER_PLUGINS:-}
    mkdir -p "$nd/log"
    echo "[${plugins//,/, }]." >"$nd/enabled_plugins"
    {
        if [[ $HOST == 127.0.0.1 ]]; then echo "loopback_users.guest = true"; else echo "loopback_users = none"; fi
        cat <<CONF
listeners.tcp.default = $HOST:$(amqp_port "$i")
heartbeat = 10
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = warning
CONF
        if [[ -n ${IMGFEED_CLUSTER_CONF:-} ]]; then cat "$IMGFEED_CLUSTER_CONF"; fi
    } >"$nd/rabbitmq.conf"
    : >"$nd/rabbitmq-env.conf"
}

epmd_start() {
    if [[ -s $DIR/epmd.pid ]] && alive "$(cat "$DIR/epmd.pid")"; then return 0; fi
    setsid epmd -port "$EPMD_PORT" -address 127.0.0.1 </dev/null >>"$DIR/epmd.log" 2>&1 &
    echo $! >"$DIR/epmd.pid"
    wait_port "$EPMD_PORT" 10 || die "epmd did not open port $EPMD_PORT"
}

# node_launch I: start node I's rabbitmq-server in the background.
node_launch() {
    local i=$1
    write_node_conf "$i"
    (
        node_env "$i"
        setsid "$RABBIT_BIN/rabbitmq-server" >>"$DIR/n$i/server.log" 2>&1 </dev/null &
        echo $! >"$DIR/n$i/wrapper.pid"
    )
}

# node_wait I: wait until node I serves AMQP.
node_wait() {
    local i=$1 port; port=$(amqp_port "$i")
    if ! wait_port "$port" 120 "$HOST"; then
        tail -n 30 "$DIR/n$i/server.log" "$DIR/n$i"/log/*.log >&2 2>/dev/null || true
        die "node $i did not open port $port within 120 s (logs in $DIR/n$i)"
    fi
}

ctl() { # ctl I [--tool NAME] ARGS...
    local i=$1 tool=rabbitmqctl; shift
    if [[ ${1:-} == --tool ]]; then tool=$2; shift 2; fi
    ( node_env "$i"; "$RABBIT_BIN/$tool" -q -n "$(node_name "$i")" "$@" )
}

write_files() {
    local i urls=
    for ((i = 1; i <= N; i++)); do urls+=${urls:+,}amqp://guest:guest@$HOST:$(amqp_port "$i"); done
    {
        echo "export IMGFEED_CLUSTER_URLS=$urls"
        echo "export IMGFEED_CLUSTER_DIR=$DIR"
        echo "export IMGFEED_CLUSTER_SIZE=$N"
        echo "export IMGFEED_CLUSTER_SCRIPT=$SCRIPT"
        for ((i = 1; i <= N; i++)); do
            echo "export IMGFEED_CLUSTER_URL$i=amqp://guest:guest@$HOST:$(amqp_port "$i")"
            echo "export IMGFEED_CLUSTER_PORT$i=$(amqp_port "$i")"
            echo "export IMGFEED_CLUSTER_NODE$i=$(node_name "$i")"
            echo "export IMGFEED_CLUSTER_NODEDIR$i=$DIR/n$i"
        done
    } >"$DIR/env"
    cat >"$DIR/ctl" <<CTL
#!/usr/bin/env bash
# ctl I [--tool rabbitmq-queues|rabbitmq-diagnostics|rabbitmq-plugins] ARGS...:
# a RabbitMQ CLI tool against node I of the cluster in this directory.
exec bash '$SCRIPT' ctl '$DIR' "\$@"
CTL
    chmod +x "$DIR/ctl"
}

start_all() {
    [[ $N =~ ^[1-3]$ ]] || die "start needs a node count of 1 to 3, not '$N'"
    [[ ! -f $DIR/cluster.ports ]] || die "$DIR already holds a cluster"
    mkdir -p "$DIR/home" "$REGISTRY"
    echo "${IMGFEED_TEST_OWNER_PID:-$PPID}" >"$DIR/owner.pid"
    ln -sfn "$DIR" "$REGISTRY/$(echo "$DIR" | md5sum | cut -c1-16)"
    # All the ports in one go (bound together, so distinct): python's start
    # is slow on a busy machine.
    python3 - "$N" "${IMGFEED_CLUSTER_HOST:-127.0.0.1}" >"$DIR/cluster.ports.tmp" <<'PY'
import secrets, socket, sys
n, host = int(sys.argv[1]), sys.argv[2]
socks = []
def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    return s.getsockname()[1]
print(f"N={n}\nHOST={host}\nEPMD_PORT={port()}\nCOOKIE={secrets.token_hex(16)}")
for i in range(1, n + 1):
    print(f"P{i}={port()}\nD{i}={port()}")
PY
    mv "$DIR/cluster.ports.tmp" "$DIR/cluster.ports"
    load
    # One cookie for every node and for the CLI tools (HOME=$DIR/home).
    printf %s "$COOKIE" >"$DIR/home/.erlang.cookie"
    chmod 400 "$DIR/home/.erlang.cookie"
    epmd_start
    local i
    for ((i = 1; i <= N; i++)); do node_launch "$i"; done
    for ((i = 1; i <= N; i++)); do node_wait "$i"; done
    # Nodes 2..N join node 1, in parallel, each in one CLI call (what
    # rabbitmqctl stop_app, join_cluster and start_app do, without starting
    # the CLI three times).
    local jobs=() seed; seed=$(node_name 1)
    for ((i = 2; i <= N; i++)); do
        ctl "$i" eval "ok = rabbit:stop(), case rabbit_mnesia:join_cluster('$seed', disc) of ok -> ok;
            {ok, already_member} -> ok end, ok = rabbit:start()." >"$DIR/n$i/join.log" 2>&1 &
        jobs+=($!)
    done
    for ((i = 2; i <= N; i++)); do
        wait "${jobs[i - 2]}" || { cat "$DIR/n$i/join.log" >&2; die "node $i could not join node 1"; }
    done
    for ((i = 1; i <= N; i++)); do node_wait "$i"; done
    write_files
}

node_pids() { # the pids of node I: its beam (pid file, or the wrapper's child) and its wrapper
    local nd=$DIR/n$1 w=
    [[ -s $nd/wrapper.pid ]] && w=$(cat "$nd/wrapper.pid")
    [[ -s $nd/pid ]] && { head -n 1 "$nd/pid"; echo; } # the file ends without a newline
    [[ -n $w ]] && { pgrep -P "$w" || true; echo "$w"; }
    return 0
}

kill_node() {
    local i=$1 pid
    for pid in $(node_pids "$i"); do
        if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    # Wait until they are gone, so that start-node finds the ports free.
    for _ in $(seq 100); do
        local left=0
        for pid in $(node_pids "$i"); do alive "$pid" && left=1; done
        ((left)) || break
        sleep 0.1
    done
    rm -f "$DIR/n$i/pid" "$DIR/n$i/wrapper.pid"
}

start_node() {
    local i=$1
    if ! [[ $i =~ ^[0-9]+$ ]] || ((i < 1 || i > N)); then die "no node $i (the cluster has $N)"; fi
    local w=
    [[ -s $DIR/n$i/wrapper.pid ]] && w=$(cat "$DIR/n$i/wrapper.pid")
    if [[ -n $w ]] && alive "$w"; then die "node $i is running (pid $w)"; fi
    epmd_start
    node_launch "$i"
    node_wait "$i"
}

stop_node() {
    # The wrapper script traps TERM and stops the node cleanly; the node's
    # own pid file is the fallback should the wrapper be gone.
    stop_pid "$DIR/n$1/wrapper.pid" 60
    stop_pid "$DIR/n$1/pid" 30
}

stop_all() {
    load
    local i jobs=()
    for ((i = 1; i <= N; i++)); do stop_node "$i" & jobs+=($!); done
    for j in "${jobs[@]}"; do wait "$j" || true; done
    stop_pid "$DIR/epmd.pid" 5
    rm -f "$REGISTRY/$(echo "$DIR" | md5sum | cut -c1-16)"
}

# synced: every node runs, and every quorum queue has all members online.
synced() {
    local running
    running=$(ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null) || return 1
    [[ $running == "$N" ]] || return 1
    # name type members online, one queue a line; quorum queues only.
    ctl 1 list_queues --no-table-headers name type members online 2>/dev/null >"$DIR/synced.out" || return 1
    python3 - "$DIR/synced.out" <<'PY'
import re, sys
bad = []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 4 or f[1] != "quorum":
        continue
    members = sorted(re.findall(r"[\w.-]+@[\w.-]+", f[2]))
    online = sorted(re.findall(r"[\w.-]+@[\w.-]+", f[3]))
    if members != online:
        bad.append(f[0])
sys.exit(1 if bad else 0)
PY
}

wait_synced() {
    local deadline=$((SECONDS + ${1:-120}))
    until synced; do
        if ((SECONDS >= deadline)); then
            ctl 1 list_queues name type members online >&2 || true
            die "the cluster in $DIR is not in sync after ${1:-120} s"
        fi
        sleep 0.5
    done
}

reap() {
    local link dir owner
    for link in "$REGISTRY"/*; do
        [[ -L $link ]] || continue
        dir=$(readlink "$link")
        if [[ ! -f $dir/owner.pid ]]; then rm -f "$link"; continue; fi
        owner=$(cat "$dir/owner.pid")
        if [[ $owner =~ ^[0-9]+$ ]] && alive "$owner"; then continue; fi
        echo "cluster.sh: stopping the cluster left by an interrupted run in $dir" >&2
        DIR=$dir stop_all || true
        rm -rf "$dir"
        rm -f "$link"
    done
}

SCRIPT=$(realpath "${BASH_SOURCE[0]}")
cmd=${1:-}
case $cmd in
    reap) reap; exit 0 ;;
    start|stop|kill|start-node|wait-synced|ctl) ;;
    *) die "usage: cluster.sh start DIR N | stop DIR | kill DIR I | start-node DIR I | wait-synced DIR [SECONDS] | reap" ;;
esac
[[ -n ${2:-} ]] || die "$cmd needs a DIR"
DIR=$(realpath -m "$2")
case $cmd in
    start) N=${3:-3}; HOST=${IMGFEED_CLUSTER_HOST:-127.0.0.1}; start_all ;;
    stop) stop_all ;;
    kill) load; kill_node "${3:?kill needs a node number}" ;;
    start-node) load; start_node "${3:?start-node needs a node number}" ;;
    wait-synced) load; wait_synced "${3:-120}" ;;
    ctl) load; shift 2; ctl "$@" ;;
esac
