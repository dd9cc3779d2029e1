#!/usr/bin/env bash
# soak.sh -- the whole pipeline for minutes on two "machines", with a fault every minute, then
# the checks: every post once in the archive, memory flat, nothing dead-lettered, metrics = archive.
#
# Usage (as root; by hand, not in CI):
#   bash bench/soak.sh                      10 minutes with faults
#   SOAK_FAULTS=0 bash bench/soak.sh        the same run without faults (the comparison)
#
# Layout: deploy/netns.sh's two-machine layout (namespaces <P>-main, <P>-w1, <P>-w2): main
# holds a 3-node RabbitMQ cluster (tests/lib/cluster.sh; raft.wal_max_size_bytes = 64 MiB,
# see the RSS check), PostgreSQL, the archiver and the
# generated board (tests/support/fixture_server.py on main's address, tiny PNGs it makes
# itself); w1 the crawler and a hasher, w2 a second hasher.  Every program gets
# --queue-type quorum, --amqp-url with the three nodes' URLs, --amqp-heartbeat 5s (a dead
# link shows within seconds) and --metrics-listen 127.0.0.1:0 in its namespace.  The script
# runs twice: the outer run (in the host's namespace) brings the namespaces up, runs itself
# again inside main (--inner) and always takes them down (netns.sh down: the servers, every
# process left in the namespaces, the namespaces), whatever the inner run did; a run that
# was killed outright is cleaned up by the next one (netns.sh reap).
#
# 1. Calibration: a pre-generated site "cal" (4 boards x 100 threads x 100 posts, all with a
#    picture, rendered beforehand) through the pipeline on exchange "cal", no faults, for
#    SOAK_CAL_SECONDS (60) after the first row, or until it is all archived: the rate is
#    the rows archived over that time (polled every second).
# 2. Soak, exchange "soak": the same programs on a site "soak" whose threads start with
#    their OP; bench/soak.py feed adds posts to them at SOAK_FRACTION (0.8) of the
#    calibrated rate, ten at a time, each thread up to 100 posts (then the next one), for
#    SOAK_MINUTES (10).  The boards get as many threads as 1.5 times the posts planned need.
#    Every SOAK_FAULT_EVERY seconds (60; the first half-way through the first period) one
#    fault, cycling through:
#      stage     kill -9 of a random stage (crawler, hasher-w1, hasher-w2, archiver; each
#                once in every round of four), its metrics scraped right before (the log
#                says how many ms before); restarted 3 s later, as a supervisor would
#      broker    kill -9 of a random RabbitMQ node (cluster.sh kill), started again 5 s
#                later (cluster.sh start-node), then cluster.sh wait-synced; the next
#                broker fault waits for that
#      postgres  kill -9 of the postmaster; once its backends are gone (they exit when it
#                dies) and 5 s have passed, started again (servers.sh pg-start)
#      link      netns.sh link wI down for 20 to 30 s (a random worker), then up
#    Each is logged with its time (seconds into the soak, and UTC).  A stage that exits
#    by itself is logged, counted as a failure, and restarted.
#    Every SOAK_SAMPLE_EVERY seconds (60), from the start: VmRSS and VmHWM (/proc/PID/status)
#    of every process incarnation (stage#N: restarted processes are new pids) and of every
#    RabbitMQ node's beam (rabbit-nI#N), and a scrape of every stage's metrics.
# 3. Drain: the feeder stops; once every fault is over, wait (SOAK_DRAIN_SECONDS, 900, at
#    most) until the archive holds every post the fixture made (its /_control/chan/info
#    lists them) and soak.hasher and soak.archiver are empty.  The run's rate: posts
#    archived over the time from the soak's start until the last of them was seen.
# 4. Checks (any failed one makes the exit status 1):
#    - every post exactly once in the archive, in the table of its type, no other row
#      (rows = distinct ids = posts expected); every post's picture hashed (_img entries
#      with a sha1, none with an error, = the fixture's files); soak.dead empty;
#    - RSS: for each incarnation with two samples or more from minute SOAK_WARMUP_MINUTES
#      (and a minute after its own first sample: a restarted node catches up, a restarted
#      stage fills its buffers) until the feeding stops, split in two halves: the highest VmRSS (and VmHWM) of
#      the second half minus the highest of the first must stay within max(8 MiB, 10%)
#      (imgfeed) or max(64 MiB, 25%) (a RabbitMQ node, whose memory follows its queues
#      and its write-ahead log); more is reported as growth (a leak grows steadily, a
#      sawtooth does not).  The warm-up is 2 minutes without faults, and with faults lasts until a
#      minute after every kind of fault has happened once (5 with a fault every 60 s):
#      the backlog a fault leaves (a worker cut off for 30 s) raises a hasher's peak once,
#      which is no leak.  The sample after the drain is shown, not judged;
#    - metrics (the last scrape of each incarnation: at the end, or right before its
#      kill -9; summed over incarnations): the archiver's
#      imgfeed_archiver_rows_written_total - imgfeed_archiver_rows_replaced_total against
#      the archive's growth during that incarnation (the archive is counted after each
#      archiver kill, before its successor starts, and at the end: one archiver writes, so
#      the growth is exactly what that incarnation inserted).  The last incarnation must
#      match exactly; a killed one may fall short by the rows it committed between its
#      last scrape and the kill (a race this cannot close: a process's counters die with
#      it), or by a commit whose answer a PostgreSQL kill lost (stored, retried, counted
#      as unchanged); it may never exceed.  The crawler's imgfeed_items_published_total,
#      the hashers' imgfeed_items_received_total, imgfeed_items_published_total and the
#      archiver's imgfeed_items_received_total against the archive's rows, the hashers'
#      imgfeed_hasher_images_hashed_total against its hashed pictures: equal in a run
#      without faults; with faults they differ by redeliveries (more) and by what killed
#      incarnations did after their last scrape (less), and the difference is printed.
#      imgfeed_dead_lettered_total must be 0 everywhere.
# Then a block ready for docs/benchmarks.md: the command, date, machine (nproc, CPU
# model), rates, faults, checks and the RSS table.
#
# Settings (environment): SOAK_MINUTES (10), SOAK_FAULTS (1), SOAK_FRACTION (0.8),
# SOAK_RATE (posts/s: feed at this rate, without calibrating; to compare a run with faults
# with one without at the same rate),
# SOAK_CAL_SECONDS (60), SOAK_FAULT_EVERY (60), SOAK_SAMPLE_EVERY (60),
# SOAK_WARMUP_MINUTES (2), SOAK_DRAIN_SECONDS (900), SOAK_STAGE_KILLS (e.g. "archiver
# crawler": the stages the stage faults kill, in turn, instead of at random), SOAK_PREFIX (imgfeed-soak: the
# namespaces' prefix), SOAK_KEEP_LOGS=DIR (copy the programs' logs, the fault log, the
# scrapes and the servers' logs there), IMGFEED_BUILD (a build directory; otherwise
# Release binaries in build/bench).
# shellcheck disable=SC2317 # the faults and the cleanups are called indirectly (fault_$KIND, traps)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=soak.sh
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
NETNS=$ROOT/deploy/netns.sh
CLUSTER=$ROOT/tests/lib/cluster.sh
SERVERS=$ROOT/tests/lib/servers.sh
SOAKPY=$ROOT/bench/soak.py

SOAK_MINUTES=${SOAK_MINUTES:-10}
SOAK_FAULTS=${SOAK_FAULTS:-1}
SOAK_FRACTION=${SOAK_FRACTION:-0.8}
SOAK_RATE=${SOAK_RATE:-}
SOAK_CAL_SECONDS=${SOAK_CAL_SECONDS:-60}
SOAK_FAULT_EVERY=${SOAK_FAULT_EVERY:-60}
SOAK_SAMPLE_EVERY=${SOAK_SAMPLE_EVERY:-60}
# the warm-up: 2 minutes without faults; with them, until a minute after every kind of fault
# has happened once (5 minutes with a fault every 60 s)
if [[ ${SOAK_FAULTS:-1} == 1 && ${SOAK_FAULT_EVERY:-60} =~ ^[0-9]+$ ]]; then
    SOAK_WARMUP_MINUTES=${SOAK_WARMUP_MINUTES:-$(((${SOAK_FAULT_EVERY:-60} / 2 + 3 * ${SOAK_FAULT_EVERY:-60} + 30 + 60 + 59) / 60))}
else
    SOAK_WARMUP_MINUTES=${SOAK_WARMUP_MINUTES:-2}
fi
SOAK_DRAIN_SECONDS=${SOAK_DRAIN_SECONDS:-900}
SOAK_PREFIX=${SOAK_PREFIX:-imgfeed-soak}
SOAK_KEEP_LOGS=${SOAK_KEEP_LOGS:-}
CAL_BOARDS=4 CAL_THREADS=100 CAL_POSTS=100
SOAK_BOARDS=4
PER_THREAD=100 # posts a soak thread grows to
RESTART_DELAY=3
BROKER_DOWN=5
PG_DOWN=5

die() { echo "soak.sh: $*" >&2; exit 1; }
say() { echo "soak.sh: $*"; }

# ---------------------------------------------------------------- outer run

NET_UP=
INNER_PID=
outer_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $INNER_PID ]]; then kill -TERM "$INNER_PID" 2>/dev/null || true; wait "$INNER_PID" 2>/dev/null || true; fi
    if [[ -n $SOAK_KEEP_LOGS && -d $WORK ]]; then
        mkdir -p "$SOAK_KEEP_LOGS"
        cp -r "$WORK/logs" "$WORK/scrapes" "$SOAK_KEEP_LOGS/" 2>/dev/null || true
        cp "$WORK"/*.log "$WORK"/rss "$WORK"/incarnations "$WORK"/faults "$WORK"/archiver_rows "$WORK"/report.* \
            "$WORK"/feed.json "$SOAK_KEEP_LOGS/" 2>/dev/null || true
        for n in 1 2 3; do cp -r "$WORK/net/rabbit/n$n/log" "$SOAK_KEEP_LOGS/rabbit-n$n" 2>/dev/null || true; done
        cp "$WORK/net/pg/pg/server.log" "$SOAK_KEEP_LOGS/pg.log" 2>/dev/null || true
    fi
    if [[ -n $NET_UP ]]; then
        bash "$NETNS" down "$WORK/net" >>"$WORK/netns.log" 2>&1 || { tail -n 5 "$WORK/netns.log" >&2; echo "soak.sh: netns.sh down failed" >&2; rc=1; }
    fi
    if ip netns list 2>/dev/null | grep -q "^$SOAK_PREFIX-"; then
        echo "soak.sh: namespaces of $SOAK_PREFIX are left: $(ip netns list | grep "^$SOAK_PREFIX-" | tr '\n' ' ')" >&2
        rc=1
    fi
    [[ -z $WORK ]] || rm -rf "$WORK"
    exit "$rc"
}

outer() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces, veth links): run it as root"
    local v
    for v in SOAK_MINUTES SOAK_CAL_SECONDS SOAK_FAULT_EVERY SOAK_SAMPLE_EVERY SOAK_DRAIN_SECONDS; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v is a positive integer, not '${!v}'"
    done
    [[ $SOAK_FAULTS == 0 || $SOAK_FAULTS == 1 ]] || die "SOAK_FAULTS is 0 or 1"
    [[ $SOAK_FRACTION =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] || die "SOAK_FRACTION is a number in (0, 1]"
    [[ $SOAK_WARMUP_MINUTES =~ ^[0-9]+$ ]] || die "SOAK_WARMUP_MINUTES is an integer"
    for v in ${SOAK_STAGE_KILLS:-}; do
        [[ " ${STAGES[*]} " == *" $v "* ]] || die "SOAK_STAGE_KILLS names stages of: ${STAGES[*]}"
    done
    for tool in "$PGBIN/psql" /usr/lib/rabbitmq/bin/rabbitmq-server "$PY" curl ip; do
        command -v "$tool" >/dev/null || die "$tool missing (tests/run.sh installs what the servers need)"
    done
    bench_build imgfeed-crawler imgfeed-hasher imgfeed-archiver
    bash "$NETNS" reap || true
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgfeed-soak.XXXXXX")
    chmod 755 "$WORK" # the postgres user reaches its data directory through it
    # Quorum queues keep their write-ahead log in memory until it reaches
    # raft.wal_max_size_bytes (512 MiB by default) and rolls over: a node's RSS climbs by
    # that much before it falls.  64 MiB keeps that sawtooth small next to a leak.
    echo "raft.wal_max_size_bytes = 67108864" >"$WORK/rabbitmq-soak.conf"
    export IMGFEED_CLUSTER_CONF=$WORK/rabbitmq-soak.conf
    trap outer_cleanup EXIT
    trap 'exit 130' INT TERM
    say "$(date -u '+%F %T') UTC: namespaces $SOAK_PREFIX-{main,w1,w2}, a 3-node RabbitMQ cluster and PostgreSQL in main"
    NET_UP=1
    bash "$NETNS" up "$WORK/net" --prefix "$SOAK_PREFIX" --workers 2 --nodes 3 >"$WORK/netns.log" 2>&1 ||
        { tail -n 20 "$WORK/netns.log" >&2; die "netns.sh up failed"; }
    SOAK_WORK=$WORK SOAK_BUILD=$BUILD bash "$NETNS" run "$WORK/net" main bash "$ROOT/bench/soak.sh" --inner &
    INNER_PID=$!
    local rc=0
    wait "$INNER_PID" || rc=$?
    INNER_PID=
    exit "$rc"
}

# ---------------------------------------------------------------- inner run (in main)

declare -A PID INC KILLED RESTART_AT
STAGES=(crawler hasher-w1 hasher-w2 archiver)
FEED_PID=
EXCH=
FAILURES=()
LOG_T0=

stage_ns() { case $1 in crawler | hasher-w1) echo w1 ;; hasher-w2) echo w2 ;; archiver) echo main ;; esac; }

inner_cleanup() {
    local s
    trap - EXIT INT TERM
    [[ -z $FEED_PID ]] || kill -TERM "$FEED_PID" 2>/dev/null || true
    local pids=("$FEED_PID" "$FIXTURE_PID" "$BROKER_JOB" "$PG_JOB")
    for s in "${STAGES[@]}"; do pids+=("${PID[$s]:-}"); done
    for s in "${pids[@]}"; do [[ -z $s ]] || kill -KILL "$s" 2>/dev/null || true; done
    for s in "${pids[@]}"; do [[ -z $s ]] || wait "$s" 2>/dev/null || true; done
    # what the fault jobs started (a node starting, pg_ctl) goes with the namespace (netns.sh down)
}

# elapsed: seconds since the soak's start (LOG_T0), one decimal.
elapsed() { awk -v a="$(now)" -v b="$LOG_T0" 'BEGIN { printf "%.1f", a - b }'; }

# fault_log TEXT: a line of WORK/faults and of the output, with the time.
fault_log() {
    local line
    line=$(printf '%8ss  %s  %s' "+$(elapsed)" "$(date -u +%T)" "$*")
    echo "$line" >>"$WORK/faults"
    echo "  $line"
}

# start_stage S: a new incarnation of stage S on exchange EXCH.
start_stage() {
    local s=$1 n log cmd
    n=$((${INC[$s]:-0} + 1))
    INC[$s]=$n
    log=$WORK/logs/$EXCH.$s.$n.log
    case $s in
        crawler) cmd=("$NETNS" run "$IMGFEED_NETNS_DIR" w1 "$CRAWLER" --sites "$WORK/sites.$EXCH.json"
                      --state-dir "$WORK/state.$EXCH" --poll-interval 1s) ;;
        hasher-w1 | hasher-w2) cmd=("$NETNS" run "$IMGFEED_NETNS_DIR" "${s#hasher-}" "$HASHER"
                      --allow-net "$IMGFEED_NETNS_NET" --rps-per-host 0) ;;
        archiver) cmd=("$ARCHIVER" --pg "$IMGFEED_PG") ;;
    esac
    [[ $s == archiver ]] || cmd=(bash "${cmd[@]}") # netns.sh run execs: the pid is the program's
    "${cmd[@]}" --exchange "$EXCH" --amqp-url "$IMGFEED_AMQP_URL" --queue-type quorum --amqp-heartbeat 5s \
        --metrics-listen 127.0.0.1:0 >"$log" 2>&1 &
    PID[$s]=$!
    KILLED[$s]=
    RESTART_AT[$s]=
    [[ $EXCH != soak ]] || echo "$s#$n ${PID[$s]} $(elapsed)" >>"$WORK/incarnations"
}

# scrape S: the metrics of S's running incarnation into WORK/scrapes/S#N.last.prom (kept
# when the scrape fails: the previous one stays the last).
scrape() {
    local s=$1 port tag
    tag=$s#${INC[$s]}
    port=$(grep -o 'metrics port [0-9]*' "$WORK/logs/$EXCH.$s.${INC[$s]}.log" 2>/dev/null | grep -o '[0-9]*$' | tail -n 1 || true)
    [[ -n $port ]] || return 0
    local ns
    ns=$(stage_ns "$s")
    if { if [[ $ns == main ]]; then curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics"
         else bash "$NETNS" run "$IMGFEED_NETNS_DIR" "$ns" curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics"; fi; } \
        >"$WORK/scrapes/$tag.tmp" 2>/dev/null; then
        mv "$WORK/scrapes/$tag.tmp" "$WORK/scrapes/$tag.last.prom"
    else
        rm -f "$WORK/scrapes/$tag.tmp"
    fi
}

# wait_consumers E: E.hasher and E.archiver have their consumers (hashers, archiver).
wait_consumers() {
    local deadline=$((SECONDS + 120)) list
    while ((SECONDS < deadline)); do
        list=$("$IMGFEED_CLUSTER_DIR/ctl" 1 list_queues --no-table-headers name consumers 2>/dev/null || true)
        if grep -qE "^$1\.hasher[[:space:]]+2" <<<"$list" && grep -qE "^$1\.archiver[[:space:]]+1" <<<"$list"; then return 0; fi
        sleep 1
    done
    tail -n 5 "$WORK"/logs/"$1".*.log >&2
    die "the hashers and the archiver of $1 never consumed"
}

# rows E SITE: rows of E's two tables (0 before they exist); empty when PostgreSQL does not answer.
rows() {
    psql -c "SELECT coalesce((SELECT sum(n) FROM (
               SELECT (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I', t), false, true, '')))[1]::text::bigint AS n
               FROM unnest(ARRAY['${1}_${2}_thread', '${1}_${2}_post']) t WHERE to_regclass(quote_ident(t)) IS NOT NULL) x), 0)" 2>/dev/null || true
}

# queue_messages Q: messages in queue Q (ready + unacknowledged), asked of node 1; empty when unknown.
queue_messages() {
    "$IMGFEED_CLUSTER_DIR/ctl" 1 list_queues --no-table-headers name messages 2>/dev/null | awk -v q="$1" '$1 == q { print $2 }' || true
}

stop_stages() { # SIGTERM every stage; each must exit 0
    local s rc
    for s in "${STAGES[@]}"; do [[ -z ${PID[$s]:-} ]] || kill -TERM "${PID[$s]}" 2>/dev/null || true; done
    for s in "${STAGES[@]}"; do
        [[ -n ${PID[$s]:-} ]] || continue
        rc=0
        wait "${PID[$s]}" || rc=$?
        if ((rc != 0)); then
            FAILURES+=("$s#${INC[$s]} ($EXCH) exited $rc after SIGTERM")
            tail -n 5 "$WORK/logs/$EXCH.$s.${INC[$s]}.log" >&2
        fi
        PID[$s]=
    done
}

write_sites() { # write_sites SITE BOARDS
    local boards='' b
    for ((b = 0; b < $2; b++)); do boards+=${boards:+, }\"b$b\"; done
    cat >"$WORK/sites.$1.json" <<JSON
{"user_agent": "imgfeed-bench/1 (bench/soak.sh)",
 "sites": [{"name": "$1", "kind": "4chan", "api": "$BASE/$1", "media": "$BASE/$1/media",
            "boards": [$boards], "rps": 1000000}]}
JSON
}

calibrate() {
    local b want t_first='' r_first t r s
    control "site?name=cal&kind=4chan" >/dev/null
    for ((b = 0; b < CAL_BOARDS; b++)); do
        control "board?site=cal&board=b$b&threads=$CAL_THREADS&posts=$CAL_POSTS&images=10&seed=$((b + 1))&prerender=1" >/dev/null
    done
    want=$((CAL_BOARDS * CAL_THREADS * CAL_POSTS))
    write_sites cal "$CAL_BOARDS"
    EXCH='cal'
    start_stage archiver
    start_stage hasher-w1
    start_stage hasher-w2
    wait_consumers cal
    start_stage crawler
    say "calibration: $want posts of site cal (pre-generated), no faults, ${SOAK_CAL_SECONDS} s after the first row at most"
    while :; do
        for s in "${STAGES[@]}"; do
            kill -0 "${PID[$s]}" 2>/dev/null || { tail -n 20 "$WORK/logs/cal.$s.1.log" >&2; die "calibration: $s exited"; }
        done
        t=$(now)
        r=$(rows cal cal)
        [[ $r =~ ^[0-9]+$ ]] || die "calibration: PostgreSQL did not answer"
        if [[ -z $t_first ]] && ((r > 0)); then t_first=$t r_first=$r; fi
        if [[ -n $t_first ]] && { ((r >= want)) || awk -v a="$t" -v b="$t_first" -v s="$SOAK_CAL_SECONDS" 'BEGIN { exit !(a - b >= s) }'; }; then
            break
        fi
        sleep 1
    done
    CAL_RATE=$(awk -v r="$r" -v r0="$r_first" -v t="$t" -v t0="$t_first" 'BEGIN { printf "%.1f", (r - r0) / (t - t0) }')
    CAL_ROWS=$((r - r_first))
    CAL_SPAN=$(sub "$t" "$t_first")
    stop_stages
    say "calibration: $CAL_ROWS posts archived in $CAL_SPAN s after the first row: $CAL_RATE posts/s"
    awk -v r="$CAL_RATE" 'BEGIN { exit !(r >= 1) }' || die "calibration: the pipeline archived less than a post a second"
}

# sample_rss MINUTE: VmRSS and VmHWM of every stage incarnation and RabbitMQ node; scrape the stages.
declare -A NODE_PID NODE_INC
sample_rss() {
    local m=$1 s pid i rss hwm
    for s in "${STAGES[@]}"; do
        pid=${PID[$s]:-}
        [[ -n $pid ]] || continue
        read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r + 0, h + 0 }' "/proc/$pid/status" 2>/dev/null || echo "0 0")
        ((rss > 0)) && echo "$m $(elapsed) $s#${INC[$s]} $pid $rss $hwm" >>"$WORK/rss"
        scrape "$s"
    done
    for i in 1 2 3; do
        pid=$(head -n 1 "$IMGFEED_CLUSTER_DIR/n$i/pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        if [[ ${NODE_PID[$i]:-} != "$pid" ]]; then NODE_PID[$i]=$pid; NODE_INC[$i]=$((${NODE_INC[$i]:-0} + 1)); fi
        read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r + 0, h + 0 }' "/proc/$pid/status" 2>/dev/null || echo "0 0")
        ((rss > 0)) && echo "$m $(elapsed) rabbit-n$i#${NODE_INC[$i]} $pid $rss $hwm" >>"$WORK/rss"
    done
    return 0
}

# count_archive_for S: after an archiver incarnation ended, the archive's rows (retried
# while PostgreSQL is down, 120 s at most) into WORK/archiver_rows.
count_archive_for() {
    local deadline=$((SECONDS + 120)) r
    while :; do
        r=$(rows soak soak)
        [[ $r =~ ^[0-9]+$ ]] && break
        ((SECONDS < deadline)) || { FAILURES+=("the archive could not be counted after archiver#${INC[archiver]}"); return 0; }
        sleep 1
    done
    echo "archiver#${INC[archiver]} $r" >>"$WORK/archiver_rows"
}

# --- faults ---
BROKER_JOB='' PG_JOB='' LINK_UP_AT='' LINK_W='' FAULT_N=0
KINDS=(stage broker postgres link)

# next_victim: the stage the next stage fault kills: SOAK_STAGE_KILLS in turn, or drawn at
# random from those not killed yet in this round of four (so that every stage has its turn).
STAGE_BAG=() STAGE_KILL_N=0
next_victim() {
    if [[ -n ${SOAK_STAGE_KILLS:-} ]]; then
        local order
        read -r -a order <<<"$SOAK_STAGE_KILLS"
        VICTIM=${order[STAGE_KILL_N % ${#order[@]}]}
        STAGE_KILL_N=$((STAGE_KILL_N + 1))
        return 0
    fi
    ((${#STAGE_BAG[@]})) || STAGE_BAG=("${STAGES[@]}")
    local k=$((RANDOM % ${#STAGE_BAG[@]}))
    VICTIM=${STAGE_BAG[k]}
    STAGE_BAG=("${STAGE_BAG[@]:0:k}" "${STAGE_BAG[@]:k+1}")
}

fault_stage() {
    local s t_scraped
    next_victim
    s=$VICTIM
    if [[ -n ${RESTART_AT[$s]} ]]; then fault_log "stage fault: $s is down already (restart pending); nothing killed"; return 0; fi
    scrape "$s"
    t_scraped=$(now)
    { # (bash's "Killed" notice of the job goes to /dev/null)
        kill -KILL "${PID[$s]}" || true
        fault_log "kill -9 $s#${INC[$s]} (pid ${PID[$s]}), $(awk -v a="$(now)" -v b="$t_scraped" 'BEGIN { printf "%.0f", 1000 * (a - b) }') ms after its last scrape; restart in ${RESTART_DELAY} s"
        wait "${PID[$s]}" || true
    } 2>/dev/null
    KILLED[$s]=1
    RESTART_AT[$s]=$(awk -v a="$(elapsed)" -v d="$RESTART_DELAY" 'BEGIN { print a + d }')
}

fault_broker() {
    if [[ -n $BROKER_JOB ]]; then
        fault_log "broker fault: waiting for the previous node to be back and in sync"
        wait "$BROKER_JOB" || FAILURES+=("a RabbitMQ node did not come back in sync")
        BROKER_JOB=
    fi
    local i=$((RANDOM % 3 + 1)) pid
    pid=$(head -n 1 "$IMGFEED_CLUSTER_DIR/n$i/pid" 2>/dev/null || echo '?')
    fault_log "kill -9 RabbitMQ node $i (beam pid $pid); started again in ${BROKER_DOWN} s, then wait-synced"
    bash "$CLUSTER" kill "$IMGFEED_CLUSTER_DIR" "$i"
    (
        sleep "$BROKER_DOWN"
        bash "$CLUSTER" start-node "$IMGFEED_CLUSTER_DIR" "$i" >>"$WORK/broker-faults.log" 2>&1 &&
            bash "$CLUSTER" wait-synced "$IMGFEED_CLUSTER_DIR" 300 >>"$WORK/broker-faults.log" 2>&1 &&
            fault_log "RabbitMQ node $i back (beam pid $(head -n 1 "$IMGFEED_CLUSTER_DIR/n$i/pid" 2>/dev/null)), every quorum queue in sync"
    ) &
    BROKER_JOB=$!
}

fault_postgres() {
    if [[ -n $PG_JOB ]]; then wait "$PG_JOB" || FAILURES+=("PostgreSQL did not start again"); PG_JOB=; fi
    local pg=$IMGFEED_NETNS_DIR/pg pm kids # servers.sh pg-only's RUNDIR; the pid in RUNDIR/pg/pid
    pm=$(cat "$pg/pg/pid")
    kids=$(pgrep -P "$pm" | tr '\n' ' ' || true)
    fault_log "kill -9 PostgreSQL's postmaster (pid $pm); started again once its backends are gone, ${PG_DOWN} s at least"
    kill -KILL "$pm"
    (
        sleep "$PG_DOWN"
        local k left
        for _ in $(seq 300); do
            left=0
            for k in $pm $kids; do kill -0 "$k" 2>/dev/null && left=1; done
            ((left)) || break
            sleep 0.1
        done
        IMGFEED_PG_HOST=$IMGFEED_NETNS_MAIN bash "$SERVERS" pg-start "$pg" >>"$WORK/pg-faults.log" 2>&1 &&
            fault_log "PostgreSQL back (postmaster pid $(cat "$pg/pg/pid"))"
    ) &
    PG_JOB=$!
}

fault_link() {
    LINK_W=w$((RANDOM % 2 + 1))
    local secs=$((20 + RANDOM % 11))
    bash "$NETNS" link "$IMGFEED_NETNS_DIR" "$LINK_W" down >>"$WORK/link-faults.log" 2>&1
    fault_log "link of $LINK_W down (both ends) for $secs s"
    LINK_UP_AT=$(awk -v a="$(elapsed)" -v d="$secs" 'BEGIN { print a + d }')
}

link_up() {
    bash "$NETNS" link "$IMGFEED_NETNS_DIR" "$LINK_W" up >>"$WORK/link-faults.log" 2>&1 ||
        FAILURES+=("netns.sh link $LINK_W up failed")
    fault_log "link of $LINK_W up"
    LINK_UP_AT=
}

past() { awk -v a="$(elapsed)" -v b="$1" 'BEGIN { exit !(a >= b) }'; }

# supervise: restart what is due; a stage that exited without being killed is a failure, restarted.
supervise() {
    local s rc
    for s in "${STAGES[@]}"; do
        if [[ -n ${PID[$s]:-} && -z ${KILLED[$s]} ]] && ! kill -0 "${PID[$s]}" 2>/dev/null; then
            rc=0
            wait "${PID[$s]}" || rc=$?
            fault_log "UNEXPECTED: $s#${INC[$s]} exited by itself ($rc); restart in ${RESTART_DELAY} s"
            FAILURES+=("$s#${INC[$s]} exited by itself ($rc)")
            tail -n 5 "$WORK/logs/soak.$s.${INC[$s]}.log" | sed 's/^/      /'
            KILLED[$s]=1
            RESTART_AT[$s]=$(awk -v a="$(elapsed)" -v d="$RESTART_DELAY" 'BEGIN { print a + d }')
        fi
        if [[ -n ${RESTART_AT[$s]} ]] && past "${RESTART_AT[$s]}"; then
            # what the archiver's incarnation that ended wrote: the archive before its
            # successor starts (commits it sent before dying have landed by now)
            [[ $s != archiver ]] || count_archive_for archiver
            start_stage "$s"
            fault_log "$s#${INC[$s]} started (pid ${PID[$s]})"
        fi
    done
    if [[ -n $LINK_UP_AT ]] && past "$LINK_UP_AT"; then link_up; fi
}

soak() {
    local b first_nos='' total threads feed_rate
    if [[ -n $SOAK_RATE ]]; then
        feed_rate=$SOAK_RATE
    else
        feed_rate=$(awk -v r="$CAL_RATE" -v f="$SOAK_FRACTION" 'BEGIN { printf "%.1f", r * f }')
    fi
    total=$(awk -v r="$feed_rate" -v m="$SOAK_MINUTES" 'BEGIN { printf "%d", r * m * 60 * 1.5 + 1 }')
    threads=$(((total / (PER_THREAD - 1) + SOAK_BOARDS) / SOAK_BOARDS + 1))
    control "site?name=soak&kind=4chan" >/dev/null
    for ((b = 0; b < SOAK_BOARDS; b++)); do
        first_nos+=${first_nos:+,}$(control "board?site=soak&board=b$b&threads=$threads&posts=1&images=10&seed=$((b + 11))" |
            "$PY" -c 'import json, sys; print(json.load(sys.stdin)["first_no"])')
    done
    write_sites soak "$SOAK_BOARDS"
    FEED_RATE=$feed_rate
    EXCH=soak
    INC=()
    LOG_T0=$(now)
    : >"$WORK/faults"
    : >"$WORK/incarnations"
    : >"$WORK/archiver_rows"
    : >"$WORK/rss"
    start_stage archiver
    start_stage hasher-w1
    start_stage hasher-w2
    wait_consumers soak
    start_stage crawler
    LOG_T0=$(now)
    say "soak: $SOAK_MINUTES min, posts added at $feed_rate posts/s ($([[ -n $SOAK_RATE ]] && echo "SOAK_RATE" || echo "$SOAK_FRACTION of $CAL_RATE")) to $SOAK_BOARDS boards of $threads threads (each begun by its OP, grown to $PER_THREAD posts), faults $([[ $SOAK_FAULTS == 1 ]] && echo "every $SOAK_FAULT_EVERY s" || echo off)"
    "$PY" "$SOAKPY" feed "$BASE" soak "$SOAK_BOARDS" "$first_nos" "$feed_rate" "$PER_THREAD" "$WORK/feed.json" \
        >"$WORK/feed.log" 2>&1 &
    FEED_PID=$!
    local end=$((SOAK_MINUTES * 60)) next_sample=0 next_fault
    next_fault=$((SOAK_FAULT_EVERY / 2))
    while ! past "$end"; do
        if past "$next_sample"; then
            sample_rss "$(awk -v s="$next_sample" 'BEGIN { printf "%g", s / 60 }')"
            next_sample=$((next_sample + SOAK_SAMPLE_EVERY))
        fi
        if [[ $SOAK_FAULTS == 1 ]] && past "$next_fault" && ((next_fault < end)); then
            "fault_${KINDS[FAULT_N % 4]}"
            FAULT_N=$((FAULT_N + 1))
            next_fault=$((next_fault + SOAK_FAULT_EVERY))
        fi
        kill -0 "$FEED_PID" 2>/dev/null || { cat "$WORK/feed.log" >&2; die "the feeder exited"; }
        supervise
        sleep 0.5
    done
    kill -TERM "$FEED_PID"
    wait "$FEED_PID" || { cat "$WORK/feed.log" >&2; die "the feeder failed"; }
    FEED_PID=
    FEED_END=$(elapsed)
    ((next_sample > end)) || sample_rss "$SOAK_MINUTES"
    read -r FED FED_SECONDS FEED_BEHIND FEED_EXHAUSTED < <("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["added"], d["seconds"], d["behind"], d["exhausted"])' "$WORK/feed.json")
    say "soak: feeding stopped at +${FEED_END}s: $FED posts added in $FED_SECONDS s ($FEED_BEHIND behind the schedule at the end, threads exhausted: $FEED_EXHAUSTED)"
    [[ $FEED_EXHAUSTED == False ]] || FAILURES+=("the feeder ran out of threads")

    # Every fault over before the drain.
    while [[ -n $LINK_UP_AT ]] || [[ -n ${RESTART_AT[crawler]}${RESTART_AT[hasher-w1]}${RESTART_AT[hasher-w2]}${RESTART_AT[archiver]} ]]; do
        supervise
        sleep 0.5
    done
    if [[ -n $BROKER_JOB ]]; then wait "$BROKER_JOB" || FAILURES+=("a RabbitMQ node did not come back in sync"); BROKER_JOB=; fi
    if [[ -n $PG_JOB ]]; then wait "$PG_JOB" || FAILURES+=("PostgreSQL did not start again"); PG_JOB=; fi

    read -r EXPECTED_POSTS EXPECTED_FILES < <("$PY" "$SOAKPY" expected "$BASE" soak "$SOAK_BOARDS" "$WORK/expected")
    say "drain: waiting (${SOAK_DRAIN_SECONDS} s at most) for the $EXPECTED_POSTS posts the fixture made ($EXPECTED_FILES pictures) and empty queues"
    local deadline=$((SECONDS + SOAK_DRAIN_SECONDS)) r h a
    ALL_SEEN=
    while :; do
        supervise
        r=$(rows soak soak)
        if [[ -z $ALL_SEEN && $r =~ ^[0-9]+$ ]] && ((r >= EXPECTED_POSTS)); then ALL_SEEN=$(elapsed); fi
        if [[ -n $ALL_SEEN ]]; then
            h=$(queue_messages soak.hasher)
            a=$(queue_messages soak.archiver)
            [[ $h == 0 && $a == 0 ]] && break
        fi
        if ((SECONDS >= deadline)); then
            FAILURES+=("drain: after ${SOAK_DRAIN_SECONDS} s the archive holds ${r:-?} of $EXPECTED_POSTS posts, soak.hasher ${h:-?}, soak.archiver ${a:-?} messages")
            break
        fi
        sleep 1
    done
    DRAIN_END=$(elapsed)
    sample_rss "$(awk -v e="$DRAIN_END" -v m="$SOAK_MINUTES" 'BEGIN { e /= 60; if (e < m + 0.1) e = m + 0.1; printf "%.1f", e }')"
}

check() {
    local s
    # the last incarnations: a final scrape while they are alive and idle, then the archive's count
    for s in "${STAGES[@]}"; do scrape "$s"; done
    count_archive_for archiver
    psql -F ' ' -c "SELECT 'thread', id FROM soak_soak_thread UNION ALL SELECT 'post', id FROM soak_soak_post" >"$WORK/got"
    read -r ARCHIVE_ROWS ARCHIVE_DISTINCT _ MISSING EXTRA TWICE WRONG < <("$PY" "$SOAKPY" compare "$WORK/expected" "$WORK/got" || true)
    ARCHIVE_FILES=$(psql -c "SELECT count(*) FROM (SELECT data FROM soak_soak_thread UNION ALL SELECT data FROM soak_soak_post) p,
                                jsonb_array_elements(p.data->'_img') e WHERE e ? 'sha1' AND NOT e ? 'error'")
    IMG_ERRORS=$(psql -c "SELECT count(*) FROM (SELECT data FROM soak_soak_thread UNION ALL SELECT data FROM soak_soak_post) p,
                                jsonb_array_elements(p.data->'_img') e WHERE e ? 'error'")
    DEAD=$(queue_messages soak.dead)
    if ((ARCHIVE_ROWS == EXPECTED_POSTS && ARCHIVE_DISTINCT == EXPECTED_POSTS && MISSING + EXTRA + TWICE + WRONG == 0)); then
        CHECK_ONCE="every post exactly once: rows $ARCHIVE_ROWS = distinct ids $ARCHIVE_DISTINCT = posts the fixture made $EXPECTED_POSTS"
    else
        CHECK_ONCE="NOT exactly once: rows $ARCHIVE_ROWS, distinct ids $ARCHIVE_DISTINCT, expected $EXPECTED_POSTS; missing $MISSING, not of the site $EXTRA, twice $TWICE, in the wrong table $WRONG"
        FAILURES+=("$CHECK_ONCE")
    fi
    if ((ARCHIVE_FILES == EXPECTED_FILES && IMG_ERRORS == 0)); then
        CHECK_FILES="every picture hashed: $ARCHIVE_FILES _img entries with a sha1, none with an error"
    else
        CHECK_FILES="pictures: $ARCHIVE_FILES hashed of $EXPECTED_FILES, $IMG_ERRORS _img entries with an error"
        FAILURES+=("$CHECK_FILES")
    fi
    if [[ $DEAD == 0 ]]; then CHECK_DEAD="soak.dead empty"; else CHECK_DEAD="soak.dead holds ${DEAD:-?} messages"; FAILURES+=("$CHECK_DEAD"); fi
    stop_stages # each must exit 0 on SIGTERM
}

inner() {
    WORK=$SOAK_WORK
    BUILD=$SOAK_BUILD
    CRAWLER=$BUILD/crawler/imgfeed-crawler
    HASHER=$BUILD/hasher/imgfeed-hasher
    ARCHIVER=$BUILD/archiver/imgfeed-archiver
    trap inner_cleanup EXIT
    trap 'exit 130' INT TERM
    trap 'echo "soak.sh: a command failed at line $LINENO" >&2' ERR
    mkdir -p "$WORK/logs" "$WORK/scrapes"
    "$ARCHIVER" --init-db --pg "$IMGFEED_PG" --log-level warn
    # shellcheck disable=SC2034 # read by bench_start_fixture
    FIXTURE_HOST=$IMGFEED_NETNS_MAIN
    bench_start_fixture 512
    LOG_T0=$(now)
    if [[ -z $SOAK_RATE ]]; then calibrate; fi
    soak
    check
    local machine model date
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    machine="nproc $(nproc), $model"
    date=$(date -u '+%F %H:%M UTC')
    local rate
    rate=$(awk -v n="$EXPECTED_POSTS" -v t="${ALL_SEEN:-$DRAIN_END}" 'BEGIN { printf "%.1f", n / t }')
    {
        echo "FAULTS=$SOAK_FAULTS"
        echo "WARMUP_MINUTES=$SOAK_WARMUP_MINUTES"
        echo "FEED_MINUTES=$SOAK_MINUTES"
        echo "RSS_TOL_MB=8"
        echo "RSS_TOL_PCT=10"
        echo "RABBIT_TOL_MB=64"
        echo "RABBIT_TOL_PCT=25"
        echo "ARCHIVE_ROWS=$ARCHIVE_ROWS"
        echo "ARCHIVE_FILES=$ARCHIVE_FILES"
        echo "EXPECTED_POSTS=$EXPECTED_POSTS"
        echo "EXPECTED_FILES=$EXPECTED_FILES"
    } >"$WORK/report.env"
    local report_rc=0
    "$PY" "$SOAKPY" report "$WORK" >"$WORK/report.txt" 2>&1 || report_rc=$?
    ((report_rc == 0)) || FAILURES+=("the report: $(sed -n 's/^REPORT CHECKS FAILED: //p' "$WORK/report.txt")")
    local how="SOAK_MINUTES=$SOAK_MINUTES SOAK_FAULTS=$SOAK_FAULTS${SOAK_RATE:+ SOAK_RATE=$SOAK_RATE}"
    [[ $SOAK_FAULT_EVERY == 60 ]] || how+=" SOAK_FAULT_EVERY=$SOAK_FAULT_EVERY"
    [[ $SOAK_FRACTION == 0.8 ]] || how+=" SOAK_FRACTION=$SOAK_FRACTION"
    echo
    echo "----- for docs/benchmarks.md -----"
    echo "### Soak: $SOAK_MINUTES minutes, $([[ $SOAK_FAULTS == 1 ]] && echo "a fault every $SOAK_FAULT_EVERY s" || echo "without faults") ($date)"
    echo
    echo "    $how bash bench/soak.sh"
    echo
    echo "Machine: $machine.  Layout: deploy/netns.sh (main: 3-node RabbitMQ cluster, quorum queues,"
    echo "PostgreSQL, archiver, the generated board; w1: crawler + hasher; w2: hasher), tiny PNGs."
    echo
    if [[ -n $SOAK_RATE ]]; then
        echo "- no calibration: fed at SOAK_RATE=$SOAK_RATE posts/s"
    else
        echo "- calibration (no faults, pre-generated board): $CAL_ROWS posts in $CAL_SPAN s: **$CAL_RATE posts/s**"
    fi
    echo "- fed at $([[ -n $SOAK_RATE ]] || echo "$SOAK_FRACTION of it, ")$FEED_RATE posts/s: $FED replies added in $FED_SECONDS s, plus the threads' OPs;"
    echo "  $EXPECTED_POSTS posts ($EXPECTED_FILES pictures) in all"
    echo "- every post archived at +${ALL_SEEN:-never}s (feeding stopped at +${FEED_END}s): **$rate posts/s archived**"
    echo "  over the run (posts / seconds from the soak's start to the last post seen in the archive)"
    if [[ $SOAK_FAULTS == 1 ]]; then
        echo "- faults (seconds into the soak, UTC):"
        sed 's/^/      /' "$WORK/faults"
    fi
    echo "- checks: $CHECK_ONCE; $CHECK_FILES; $CHECK_DEAD"
    echo
    sed 's/^/    /' "$WORK/report.txt"
    echo
    if ((${#FAILURES[@]})); then
        echo "Verdict: FAILED"
        printf '  - %s\n' "${FAILURES[@]}"
        echo "-----"
        exit 1
    fi
    echo "Verdict: passed (exactly once, nothing dead-lettered, the archiver's counts = the archive's, clean stops;"
    echo "  memory: $(sed -n 's/^RSS verdicts: //p' "$WORK/report.txt"))"
    echo "-----"
}

# (one line, read whole before it runs: an edit of this file during a run cannot change what follows)
if [[ ${1:-} == --inner ]]; then inner; else outer; fi; exit 0
