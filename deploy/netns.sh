#!/usr/bin/env bash
# netns.sh -- imgfeed's two-machine layout on one Linux host, without docker:
# the processes themselves in network namespaces, for tests and benchmarks.
#
# The layout is that of real machines (docs/operations.md):
#
#   <P>-main   the main machine: RabbitMQ (1 to 3 nodes), PostgreSQL, the
#              archiver(s); its one address is 10.213.0.1 (on its loopback,
#              like a machine's service address), reachable over each link
#   <P>-w1..N  the workers: crawler and hashers; worker I is 10.213.I.2 on its
#              link to main, whose end is 10.213.I.1 (a /24 per link), and
#              reaches main's address 10.213.0.0/24 through that link
#
# Each worker is joined to main by its own veth pair (named "wI" in main and
# "main" in the worker), like a cable.  There is no default route and no link
# to the host's network: a worker reaches main only, main reaches nothing
# beyond the workers (it does not forward, so workers cannot reach each
# other).  Every namespace has its loopback up.
#
#   netns.sh up DIR [--prefix P] [--workers N] [--nodes N]
#       create the namespaces and links, start RabbitMQ (N nodes, default 1,
#       tests/lib/cluster.sh) and PostgreSQL (tests/lib/servers.sh pg-only)
#       inside main, listening on 10.213.0.1, and write DIR/env: the
#       addresses and URLs as every namespace sees them (IMGFEED_AMQP_URL,
#       IMGFEED_PG, IMGFEED_NETNS_*, and cluster.sh's IMGFEED_CLUSTER_*).
#       P defaults to "imgfeed", N workers to 2 (at most 9).
#   netns.sh run DIR main|wI CMD...
#       run CMD in that namespace with DIR/env exported; CMD replaces the
#       script (exec, no fork), so its pid is the caller's child's.
#   netns.sh link DIR wI down|up
#       cut (ip link set ... down, on both ends) or restore worker I's link;
#       up puts the worker's route to main back (the kernel drops it with the
#       link) and waits until main answers.
#   netns.sh down DIR
#       stop the servers (by their recorded pids), then every process still in
#       the namespaces (ip netns pids: only what runs there), delete the
#       namespaces (the links go with them).
#   netns.sh reap
#       `down` for every layout whose owner (the caller of `up`, or
#       IMGFEED_TEST_OWNER_PID) is gone: what a killed test left behind.
#
# Processes: start the archiver in main, crawlers and hashers in workers, with
# `netns.sh run`.  The hasher refuses private addresses unless told:
# --allow-net 10.213.0.0/16.  RabbitMQ's guest user may log in from the
# workers (loopback_users = none) and PostgreSQL trusts the directly
# connected networks: fine on these private links, not on real machines
# (docs/operations.md says what to do there).  Needs root (CAP_NET_ADMIN and
# runuser for PostgreSQL).
#
# The broker's nodes are cluster.sh's in DIR/rabbit; their Erlang distribution
# is on main's loopback, so the CLI tools and node starts run in main:
#   netns.sh run DIR main DIR/rabbit/ctl 1 cluster_status
#   bash tests/lib/cluster.sh kill DIR/rabbit 2        (a kill -9 works anywhere)
#   netns.sh run DIR main bash tests/lib/cluster.sh start-node DIR/rabbit 2
#   netns.sh run DIR main bash tests/lib/cluster.sh wait-synced DIR/rabbit
# PostgreSQL is servers.sh's in DIR/pg (pg-stop / pg-start, IMGFEED_PG_HOST
# set to 10.213.0.1, in main).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$HERE/../tests/lib
SCRIPT=$HERE/$(basename "${BASH_SOURCE[0]}")
MAIN_ADDR=10.213.0.1
REGISTRY=${TMPDIR:-/tmp}/imgfeed-netns # one symlink per layout that is up, for reap

die() { echo "netns.sh: $*" >&2; exit 1; }
say() { echo "netns.sh: $*" >&2; }

usage() {
    die "usage: netns.sh up DIR [--prefix P] [--workers N] [--nodes N] | run DIR NS CMD... | link DIR wI down|up | down DIR | reap"
}

load() { # shellcheck source=/dev/null
    [[ -f $DIR/netns.conf ]] || die "$DIR holds no namespaces (no netns.conf)"
    . "$DIR/netns.conf"
}

ns() { echo "$PREFIX-$1"; } # ns main|wI: the namespace's name

# worker_index wI: I, or die when there is no such worker.
worker_index() {
    if [[ $1 =~ ^w([1-9])$ ]] && ((BASH_REMATCH[1] <= WORKERS)); then
        echo "${BASH_REMATCH[1]}"
    else
        die "no worker '$1' (workers: w1..w$WORKERS)"
    fi
}

# route_to_main I: worker I's route to main's address, through its link.
route_to_main() {
    ip -n "$(ns "w$1")" route replace 10.213.0.0/24 via "10.213.$1.1" dev main
}

# wait_reachable I SECONDS: main answers worker I (a TCP connect to port 9,
# where nothing listens: "refused" is an answer; no ping needed).
wait_reachable() {
    local deadline=$((SECONDS + $2))
    until ip netns exec "$(ns "w$1")" python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], 9))
except ConnectionRefusedError:
    pass
except OSError:
    sys.exit(1)' "$MAIN_ADDR"; do
        ((SECONDS < deadline)) || die "main ($MAIN_ADDR) does not answer w$1 within $2 s"
        sleep 0.1
    done
}

up() {
    PREFIX=imgfeed WORKERS=2 NODES=1
    while (($#)); do
        case $1 in
            --prefix) PREFIX=${2:?}; shift 2 ;;
            --workers) WORKERS=${2:?}; shift 2 ;;
            --nodes) NODES=${2:?}; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ $PREFIX =~ ^[A-Za-z0-9_.-]{1,40}$ ]] || die "bad prefix '$PREFIX'"
    [[ $WORKERS =~ ^[1-9]$ ]] || die "--workers takes 1 to 9, not '$WORKERS'"
    [[ $NODES =~ ^[1-3]$ ]] || die "--nodes takes 1 to 3, not '$NODES'"
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces, veth links, runuser for PostgreSQL)"
    [[ ! -f $DIR/netns.conf ]] || die "$DIR is in use (netns.conf exists): netns.sh down $DIR first"
    [[ ! -e /run/netns/$PREFIX-main ]] || die "namespace $PREFIX-main exists already"
    mkdir -p "$DIR" "$REGISTRY"
    printf 'PREFIX=%s\nWORKERS=%s\nNODES=%s\n' "$PREFIX" "$WORKERS" "$NODES" >"$DIR/netns.conf"
    local owner=${IMGFEED_TEST_OWNER_PID:-$PPID}
    echo "$owner" >"$DIR/owner.pid"
    ln -sfn "$DIR" "$REGISTRY/$PREFIX"

    local main i w
    main=$(ns main)
    ip netns add "$main"
    ip -n "$main" link set lo up
    ip -n "$main" addr add "$MAIN_ADDR/32" dev lo
    for ((i = 1; i <= WORKERS; i++)); do
        w=$(ns "w$i")
        ip netns add "$w"
        ip -n "$w" link set lo up
        ip link add "w$i" netns "$main" type veth peer name main netns "$w"
        ip -n "$main" addr add "10.213.$i.1/24" dev "w$i"
        ip -n "$w" addr add "10.213.$i.2/24" dev main
        ip -n "$main" link set "w$i" up
        ip -n "$w" link set main up
        route_to_main "$i"
    done
    for ((i = 1; i <= WORKERS; i++)); do wait_reachable "$i" 10; done

    # The servers, inside main; their owner is our caller (cluster.sh reap
    # leaves them alone while it lives).
    ip netns exec "$main" env IMGFEED_CLUSTER_HOST="$MAIN_ADDR" IMGFEED_TEST_OWNER_PID="$owner" \
        bash "$LIB/cluster.sh" start "$DIR/rabbit" "$NODES" >"$DIR/rabbit.log" 2>&1 &
    local rabbit_job=$!
    ip netns exec "$main" env IMGFEED_PG_HOST="$MAIN_ADDR" IMGFEED_TEST_OWNER_PID="$owner" \
        bash "$LIB/servers.sh" pg-only "$DIR/pg" >"$DIR/pg.log" 2>&1 ||
        { cat "$DIR/pg.log" >&2; die "PostgreSQL did not start in $main (log $DIR/pg.log)"; }
    wait "$rabbit_job" || { cat "$DIR/rabbit.log" >&2; die "RabbitMQ did not start in $main (log $DIR/rabbit.log)"; }

    # shellcheck source=/dev/null
    local urls pg
    urls=$(. "$DIR/rabbit/env" && echo "$IMGFEED_CLUSTER_URLS")
    pg=$(. "$DIR/pg/pg.env" && echo "$IMGFEED_PG")
    {
        echo "# written by netns.sh up: the addresses as every namespace sees them"
        echo "export IMGFEED_NETNS_DIR=$DIR"
        echo "export IMGFEED_NETNS_SCRIPT=$SCRIPT"
        echo "export IMGFEED_NETNS_PREFIX=$PREFIX"
        echo "export IMGFEED_NETNS_WORKERS=$WORKERS"
        echo "export IMGFEED_NETNS_MAIN=$MAIN_ADDR"
        echo "export IMGFEED_NETNS_NET=10.213.0.0/16"
        for ((i = 1; i <= WORKERS; i++)); do echo "export IMGFEED_NETNS_W$i=10.213.$i.2"; done
        echo "export IMGFEED_AMQP_URL=$urls"
        echo "export IMGFEED_PG='$pg'"
        cat "$DIR/rabbit/env"
    } >"$DIR/env"
    say "up: $main ($MAIN_ADDR: RabbitMQ $urls, PostgreSQL $pg) and $WORKERS workers; env in $DIR/env"
}

run() {
    load
    local name=${1:?run needs a namespace: main or wI}
    shift
    (($#)) || die "run needs a command"
    [[ $name == main ]] || worker_index "$name" >/dev/null
    # shellcheck source=/dev/null
    . "$DIR/env"
    exec ip netns exec "$(ns "$name")" "$@"
}

link() {
    load
    local i
    i=$(worker_index "${1:-}")
    case ${2:-} in
        down)
            ip -n "$(ns main)" link set "w$i" down
            ip -n "$(ns "w$i")" link set main down
            say "link of w$i down"
            ;;
        up)
            ip -n "$(ns main)" link set "w$i" up
            ip -n "$(ns "w$i")" link set main up
            route_to_main "$i"
            wait_reachable "$i" 10
            say "link of w$i up"
            ;;
        *) die "link takes wI down|up" ;;
    esac
}

# kill_all_in NS: TERM, then KILL after 10 s, every process in namespace NS.
kill_all_in() {
    local pids
    pids=$(ip netns pids "$1" 2>/dev/null || true)
    [[ -n $pids ]] || return 0
    # shellcheck disable=SC2086
    kill -CONT $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 100); do
        [[ -n $(ip netns pids "$1" 2>/dev/null) ]] || return 0
        sleep 0.1
    done
    # shellcheck disable=SC2046
    kill -KILL $(ip netns pids "$1" 2>/dev/null) 2>/dev/null || true
}

down() {
    load
    [[ ! -f $DIR/rabbit/cluster.ports ]] || bash "$LIB/cluster.sh" stop "$DIR/rabbit" >>"$DIR/rabbit.log" 2>&1 || true
    [[ ! -f $DIR/pg/ports ]] || bash "$LIB/servers.sh" pg-stop "$DIR/pg" >>"$DIR/pg.log" 2>&1 || true
    local i name
    for name in main $(for ((i = 1; i <= WORKERS; i++)); do echo "w$i"; done); do
        if [[ -e /run/netns/$(ns "$name") ]]; then
            kill_all_in "$(ns "$name")"
            ip netns del "$(ns "$name")"
        fi
    done
    rm -f "$DIR/netns.conf" "$REGISTRY/$PREFIX"
    say "down: the namespaces of $PREFIX are gone"
}

reap() {
    local link owner
    for link in "$REGISTRY"/*; do
        [[ -L $link ]] || continue
        DIR=$(readlink "$link")
        owner=$(cat "$DIR/owner.pid" 2>/dev/null || true)
        if [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
        if [[ -f $DIR/netns.conf ]]; then
            say "taking down the layout left by an interrupted run in $DIR"
            (down) || true
        fi
        rm -f "$link"
    done
}

cmd=${1:-}
if [[ $cmd == reap ]]; then reap; exit 0; fi
[[ -n ${2:-} ]] || usage
DIR=$(realpath -m "$2")
shift 2
case $cmd in
    up) up "$@" ;;
    run) run "$@" ;;
    link) link "$@" ;;
    down) down ;;
    *) usage ;;
esac
