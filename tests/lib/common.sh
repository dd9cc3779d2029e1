# shellcheck shell=bash
# common.sh -- shell functions shared by the test helpers that start servers
# (servers.sh, cluster.sh): free ports, waiting for a port, and stopping a
# process by its recorded pid only.  Sourced, not run.

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT SECONDS [HOST]: succeed once something accepts on HOST:PORT
# (HOST 127.0.0.1 by default).
wait_port() {
    local port=$1 deadline=$((SECONDS + $2)) host=${3:-127.0.0.1}
    while (( SECONDS < deadline )); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

# alive PID: the process exists and is not a zombie (an orphan whose parent
# never reaped it still answers kill -0).
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

# stop_pid PIDFILE SECONDS: TERM the process, KILL it if it outlives SECONDS.
stop_pid() {
    local pidfile=$1 grace=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(head -n 1 "$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
        kill -CONT "$pid" 2>/dev/null || true # a test may have frozen it with SIGSTOP
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((grace * 10))); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}
