#!/usr/bin/env bash
# test_quickstart.sh -- deploy/quickstart.sh --demo end to end, as a user runs it.
#
# In a fresh data directory: the demo starts (build, private RabbitMQ and
# PostgreSQL on other ports than the suite's, own epmd, the demo board, the
# five programs) and every post of the demo board reaches the archive once,
# its pictures with sha1 and phash; the live view streams them and the
# reverse image search finds them (from its queue, and after the restart
# from the archive it loads); nothing it started listens beyond loopback; a
# second start while it runs starts nothing; every program and RabbitMQ serve
# their metrics; a start with --monitor adds Debian's Prometheus (and the
# PostgreSQL exporter) and nothing else, every target of it up and every
# alert rule evaluated; `stop` ends every process it started (and their
# children) and leaves the suite's servers alone, and says so again when run
# twice; a start after the stop reuses the cluster, the ports and the crawl
# state, and archives no post a second time.
#
# It runs quickstart.sh with --no-install (tests/run.sh installed the
# packages) and --rabbit-port 0 --pg-port 0 --live-port 0 --search-port 0
# --prometheus-port 0 (any free ports: 5672, 5432, 8090, 8091 and 9090 stay for
# a user's own quickstart).  About 50 s once build/quickstart is built; the
# first build adds a minute or so.
#
# Usage: test_quickstart.sh SOURCE_DIR
set -u
ROOT=${1:?usage: test_quickstart.sh SOURCE_DIR}
QS=$ROOT/deploy/quickstart.sh
PREFIX=${TMPDIR:-/tmp}/imgfeed-quickstart-test.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
failures=0
T0=$SECONDS

check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then echo "ok - $what"; else echo "not ok - $what"; failures=$((failures + 1)); fi
}
note() { echo "# [$((SECONDS - T0))s] $*"; }

# Data directories of earlier runs that were killed before their cleanup.
for dir in "$PREFIX"*; do
    [[ -f $dir/test-owner ]] || continue
    owner=$(cat "$dir/test-owner")
    [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null && continue
    note "stopping what an interrupted run left in $dir"
    bash "$QS" stop --data-dir "$dir" >/dev/null 2>&1
    rm -rf "$dir"
done

DATA=$(mktemp -d "${PREFIX}XXXXXX")
echo $$ >"$DATA/test-owner"
cleanup() {
    local status=$?
    trap - EXIT
    bash "$QS" stop --data-dir "$DATA" >/dev/null 2>&1 || true
    rm -rf "$DATA"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

qs() { # qs ARGS...: run quickstart.sh, its output in $OUT (shown), status in $STATUS
    OUT=$(bash "$QS" "$@" --data-dir "$DATA" 2>&1)
    STATUS=$?
    sed 's/^/#   /' <<<"$OUT"
}
sql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PG_PORT user=postgres dbname=imgfeed" -c "$1"; }
has() { grep -qF -- "$1" <<<"$OUT"; }
ALL="(SELECT id, archived_on, data FROM chan_demo_thread UNION ALL SELECT id, archived_on, data FROM chan_demo_post) AS p"

# Every post the demo board serves now, as archive ids (board.no), sorted.
board_ids() {
    python3 - "$DEMO_PORT" <<'PY'
import json, sys, urllib.request
base = "http://127.0.0.1:%s/_control/chan/info?site=demo" % sys.argv[1]
get = lambda q: json.load(urllib.request.urlopen(base + q, timeout=10))
ids = []
for board in get("")["boards"]:
    for t in get("&board=" + board)["threads"]:
        ids += ["%s.%d" % (board, no) for no in get("&board=%s&no=%d" % (board, t["no"]))["post_nos"]]
print("\n".join(sorted(ids)))
PY
}
archive_ids() { sql "SELECT id FROM $ALL ORDER BY 1" | LC_ALL=C sort; }

# wait_converged SECONDS: the archive holds exactly the board's posts (the
# board adds a post every few seconds: wait for a moment where the pipeline
# has caught up).
wait_converged() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        BOARD_IDS=$(board_ids | LC_ALL=C sort) || BOARD_IDS=x
        ARCHIVE_IDS=$(archive_ids 2>/dev/null) || ARCHIVE_IDS=y
        [[ $BOARD_IDS == "$ARCHIVE_IDS" ]] && return 0
        sleep 1
    done
    echo "# board has $(wc -l <<<"$BOARD_IDS") posts, archive $(wc -l <<<"$ARCHIVE_IDS"); differences:"
    diff <(echo "$BOARD_IDS") <(echo "$ARCHIVE_IDS") | head -n 10 | sed 's/^/#   /'
    return 1
}

# Every recorded process and all its descendants, as "pid starttime" lines.
process_trees() {
    local roots
    roots=$(cat "$DATA"/pids/*.pid 2>/dev/null | cut -d' ' -f1)
    python3 - $roots <<'PY'
import os, sys
def stat(pid):
    try:
        s = open("/proc/%s/stat" % pid).read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return int(f[1]), f[19], f[0]  # ppid, starttime, state
children = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        st = stat(p)
        if st:
            children.setdefault(st[0], []).append(int(p))
todo, seen = [int(a) for a in sys.argv[1:]], set()
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen.add(p)
    todo += children.get(p, [])
for p in sorted(seen):
    st = stat(p)
    if st and st[2] != "Z":
        print(p, st[1])
PY
}

# still_running "pid starttime" lines: print those that still run.
still_running() {
    local pid start now rest
    while read -r pid start; do
        [[ -n $pid ]] || continue
        now=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${now##*) }
        read -ra f <<<"$rest"
        [[ ${f[0]} != Z && ${f[19]} == "$start" ]] && echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-80)"
    done <<<"$1"
}

# Listening TCP sockets of the given pids that are not on loopback.
non_loopback_listeners() {
    python3 - "$@" <<'PY'
import os, sys
inodes = {}
for pid in sys.argv[1:]:
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        continue
    for fd in fds:
        try:
            link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes[link[8:-1]] = pid
for proto in ("tcp", "tcp6"):
    with open("/proc/net/" + proto) as f:
        next(f)
        for line in f:
            parts = line.split()
            addr, port = parts[1].split(":")
            if parts[3] != "0A" or parts[9] not in inodes:
                continue
            loop = (addr[6:8] == "7F" if len(addr) == 8 else
                    addr == "00000000000000000000000001000000" or
                    (addr.startswith("0000000000000000FFFF0000") and addr[-2:] == "7F"))
            if not loop:
                print("pid %s listens on %s port %d" % (inodes[parts[9]], addr, int(port, 16)))
PY
}

# wait_idle SECONDS: the crawler's first crawl since its last start is done
# for every board, and what it published has gone through: both queues are
# empty (ready and unacknowledged), so the archive holds all of it.
wait_idle() {
    local deadline=$((SECONDS + $1)) board queues
    while ((SECONDS < deadline)); do
        local crawled=1
        for board in pics art; do
            awk '/^=== /{n=0} /demo \/'"$board"'\/: .*published/{n=1} END{exit !n}' "$DATA/logs/crawler.log" || crawled=0
        done
        if ((crawled)); then
            queues=$(. "$DATA/rabbitmq.env" && rabbitmqctl -n imgfeed@localhost -q list_queues name messages 2>/dev/null)
            if grep -q "^chan.hasher\s0$" <<<"$queues" && grep -q "^chan.archiver\s0$" <<<"$queues"; then
                return 0
            fi
        fi
        sleep 1
    done
    echo "# not idle: $(tail -n 3 "$DATA/logs/crawler.log")"
    echo "# queues: ${queues:-}"
    return 1
}

# prom_targets_up JOB...: Prometheus' active targets are up, one or more of
# each JOB and none of another job (every target scraped once at least).
prom_targets_up() {
    curl -fsS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/targets?state=active" 2>/dev/null |
        python3 -c 'import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
jobs = sorted(set(t["labels"]["job"] for t in targets))
down = ["%s %s: %s %s" % (t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]) for t in targets if t["health"] != "up"]
if jobs != sorted(sys.argv[1:]) or down:
    print("# jobs %s; not up: %s" % (" ".join(jobs), "; ".join(down) or "none"), file=sys.stderr)
    sys.exit(1)' "$@"
}

# prom_rules_ok: Prometheus loaded the alert rules and has evaluated every one
# of them without error.
prom_rules_ok() {
    curl -fsS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/rules" 2>/dev/null |
        python3 -c 'import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = ["%s: %s %s" % (r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"]
if not rules or bad:
    print("# %d rules; not ok: %s" % (len(rules), "; ".join(bad)), file=sys.stderr)
    sys.exit(1)'
}

# wait_for SECONDS COMMAND...: COMMAND succeeds within SECONDS (its last
# complaint shown otherwise).
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    while ((SECONDS < deadline)); do
        "$@" 2>/dev/null && return 0
        sleep 0.5
    done
    "$@"
}

# search_state: the reverse image search's state ("loading", "serving"), and
# how many items it loaded from the archive, as "STATE ITEMS".
search_state() {
    curl -fsS --max-time 5 "http://127.0.0.1:$SEARCH_PORT/stats" 2>/dev/null |
        python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["state"], s["load"]["items"])' 2>/dev/null
}

# search_loaded: it loaded items from the archive when it started.
search_loaded() {
    local items
    items=$(search_state | cut -d' ' -f2)
    [[ $items =~ ^[0-9]+$ ]] && ((items > 0))
}

# wait_search_serving SECONDS: its /stats says "serving".
wait_search_serving() {
    local deadline=$((SECONDS + $1)) state=''
    while ((SECONDS < deadline)); do
        state=$(search_state)
        [[ $state == serving* ]] && return 0
        sleep 0.5
    done
    echo "# the search's state: ${state:-no answer}; $(tail -n 2 "$DATA/logs/search.log")"
    return 1
}

# search_finds SHA1 SECONDS: GET /search?sha1=SHA1 answers results, every one
# of them that picture (the search follows its own queue: it may lag the archive).
search_finds() {
    local sha1=$1 deadline=$((SECONDS + $2)) answer=''
    [[ $sha1 =~ ^[0-9a-f]{40}$ ]] || { echo "# not a sha1: '$sha1'"; return 1; }
    while ((SECONDS < deadline)); do
        answer=$(curl -sS --max-time 5 "http://127.0.0.1:$SEARCH_PORT/search?sha1=$sha1" 2>&1)
        python3 -c 'import json, sys
r = json.loads(sys.argv[1])["results"]
sys.exit(not (r and all(x["sha1"] == sys.argv[2] for x in r)))' "$answer" "$sha1" 2>/dev/null && return 0
        sleep 0.5
    done
    echo "# GET /search?sha1=$sha1: ${answer:0:300}"
    return 1
}

port_of() { sed -n 's/.*port=\([0-9]*\).*/\1/p; s|.*@[^:]*:\([0-9]*\).*|\1|p' <<<"$1" | head -n 1; }
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- first start ------------------------------------------------------------
note "first start: deploy/quickstart.sh --demo --data-dir $DATA --rabbit-port 0 --pg-port 0 --live-port 0 --search-port 0 --no-install"
qs --demo --rabbit-port 0 --pg-port 0 --live-port 0 --search-port 0 --no-install --wait 150
check "the first start exits 0" test "$STATUS" -eq 0
((STATUS == 0)) || exit 1
note "first start done"
# shellcheck source=/dev/null
. "$DATA/ports"
check "it prints the psql line that opens the archive" has "psql \"host=127.0.0.1 port=$PG_PORT user=postgres dbname=imgfeed\""
check "it prints how to watch the logs" has "tail -f $DATA/logs/*.log"
check "it prints the rabbitmqctl line" has "rabbitmqctl -n imgfeed@localhost list_queues"
check "it prints how to stop" has "deploy/quickstart.sh stop --data-dir $DATA"
check "it prints the live view's address" has "http://127.0.0.1:$LIVE_PORT/"
check "the live view serves its page" bash -c "curl -fsS --max-time 5 http://127.0.0.1:$LIVE_PORT/ | grep -q app.js"
# its stream: the newest hashed pictures of the demo board, as events
check "the live view streams the demo board's pictures" bash -c \
    "curl -sS -N --max-time 3 'http://127.0.0.1:$LIVE_PORT/events?topic=demo.%23&backlog=5' | grep -q '\"sha1\"'"
check "it prints the reverse image search's address" has "Find where a picture appeared (reverse image search):"
check "it prints the search's port" has "http://127.0.0.1:$SEARCH_PORT/"
check "the search serves its page" bash -c "curl -fsS --max-time 5 http://127.0.0.1:$SEARCH_PORT/ | grep -q app.js"
check "the search's /stats reaches \"serving\"" wait_search_serving 60
# a picture of the demo board the archive holds: the search has it from its queue
SHA1=$(sql "SELECT data->'_img'->0->>'sha1' FROM chan_demo_post
            WHERE data->'_img'->0->>'sha1' IS NOT NULL AND data->'_img'->0 ? 'phash'
            ORDER BY archived_on, id LIMIT 1")
check "a search by the sha1 of an archived picture finds it" search_finds "$SHA1" 60
check "it shows archived phashes" grep -Eq '\| [0-9a-f]{40} \| [A-Za-z0-9+/]{24}$' <<<"$OUT"
check "its build is Release, without the tests" grep -q '^CMAKE_BUILD_TYPE:STRING=Release' "$ROOT/build/quickstart/CMakeCache.txt"
check "the hasher may reach loopback only" grep -q -- '--allow-net 127.0.0.0/8$' "$DATA/logs/hasher.log"
check "the hasher is not given --allow-private" bash -c "! grep -q -- --allow-private '$DATA/logs/hasher.log'"
SUITE_PORTS="$(port_of "${IMGFEED_AMQP_URL:-}") $(port_of "${IMGFEED_PG:-}")"
for p in $RABBIT_PORT $PG_PORT $EPMD_PORT $RABBIT_DIST_PORT $LIVE_PORT $SEARCH_PORT; do
    check "port $p is none of the suite's servers' ($SUITE_PORTS)" bash -c "[[ ' $SUITE_PORTS ' != *' $p '* ]]"
done

check "the archive holds pictures with sha1 and phash" \
    test "$(sql "SELECT count(*) FROM $ALL, imgfeed_images(p.data) AS i
                 WHERE i.sha1 ~ '^[0-9a-f]{40}$' AND length(i.phash) = 24")" -gt 50
check "no picture failed" test "$(sql "SELECT count(*) FROM $ALL, imgfeed_images(p.data) AS i WHERE i.error IS NOT NULL")" -eq 0
check "every post with a file has its picture hashed" \
    test "$(sql "SELECT count(*) FROM $ALL WHERE data ? 'tim' AND NOT EXISTS
                 (SELECT 1 FROM imgfeed_images(p.data) AS i WHERE i.n = 0 AND i.phash IS NOT NULL)")" -eq 0
check "each id is in one table once" test "$(sql "SELECT count(*) - count(DISTINCT id) FROM $ALL")" -eq 0
check "every post of the board is in the archive, and nothing else" wait_converged 90
FIRST_IDS=$ARCHIVE_IDS
note "$(wc -l <<<"$FIRST_IDS") posts archived"

PIDS=$(process_trees)
ROOT_PIDS=$(cat "$DATA"/pids/*.pid | cut -d' ' -f1 | sort)
check "it recorded its 10 processes (5 programs, demo board, RabbitMQ wrapper and node, epmd, PostgreSQL)" \
    test "$(wc -l <<<"$ROOT_PIDS")" -eq 10
# shellcheck disable=SC2046
LISTEN=$(non_loopback_listeners $(cut -d' ' -f1 <<<"$PIDS"))
check "nothing it started listens beyond loopback" test -z "$LISTEN"
[[ -z $LISTEN ]] || echo "$LISTEN" | sed 's/^/#   /'

# --- a second start while it runs -----------------------------------------------
BEFORE=$(cat "$DATA"/pids/*.pid)
qs --demo --no-install
check "a second start exits 0" test "$STATUS" -eq 0
check "a second start says what already runs" has "crawler already running"
check "a second start starts nothing" test "$BEFORE" == "$(cat "$DATA"/pids/*.pid)"
qs status
check "status shows the queues" has "chan.archiver"
check "status shows the tables" has "chan_demo_post"

# --- metrics, and Prometheus with --monitor ------------------------------------------
# shellcheck source=/dev/null
. "$DATA/ports"
for v in CRAWLER HASHER ARCHIVER LIVE SEARCH; do
    port_var=${v}_METRICS_PORT
    check "the ${v,,} serves its metrics on 127.0.0.1:${!port_var}" bash -c \
        "curl -fsS --max-time 5 http://127.0.0.1:${!port_var}/metrics | grep -q '^imgfeed_build_info{program=\"imgfeed-${v,,}\"'"
done
check "RabbitMQ serves its metrics on 127.0.0.1:$RABBIT_METRICS_PORT" bash -c \
    "curl -fsS --max-time 5 http://127.0.0.1:$RABBIT_METRICS_PORT/metrics | grep -q '^rabbitmq_identity_info'"
if [[ -x /usr/bin/prometheus ]]; then
    note "--monitor"
    BEFORE=$(cat "$DATA"/pids/*.pid)
    qs --demo --monitor --prometheus-port 0 --no-install
    check "a start with --monitor exits 0" test "$STATUS" -eq 0
    check "a start with --monitor starts nothing of the pipeline again" has "crawler already running"
    # shellcheck source=/dev/null
    . "$DATA/ports"
    JOBS=(crawler hasher archiver live search rabbitmq rabbitmq-queues)
    MONITOR_PROCS=(prometheus)
    if [[ -x /usr/bin/prometheus-postgres-exporter ]]; then
        JOBS+=(postgres)
        MONITOR_PROCS+=(postgres-exporter)
    fi
    NEW=$(comm -13 <(sort <<<"$BEFORE") <(cat "$DATA"/pids/*.pid | sort) | wc -l)
    check "it starts ${MONITOR_PROCS[*]} and nothing else" test "$NEW" -eq "${#MONITOR_PROCS[@]}"
    check "it prints Prometheus' address" has "http://127.0.0.1:$PROM_PORT/"
    check "Prometheus' port $PROM_PORT is none of the suite's servers'" bash -c "[[ ' $SUITE_PORTS ' != *' $PROM_PORT '* ]]"
    check "Prometheus scrapes every job (${JOBS[*]}), all up" wait_for 30 prom_targets_up "${JOBS[@]}"
    check "Prometheus evaluates every alert rule of deploy/prometheus without error" wait_for 20 prom_rules_ok
    check "Prometheus knows the crawler's items published" bash -c \
        "curl -fsS --max-time 5 'http://127.0.0.1:$PROM_PORT/api/v1/query?query=sum(imgfeed_items_published_total%7Bjob%3D%22crawler%22%7D)' | grep -q '\"value\"'"
    qs status
    check "status shows Prometheus" has "Prometheus: http://127.0.0.1:$PROM_PORT/"
    PIDS=$(process_trees)
    # shellcheck disable=SC2046
    LISTEN=$(non_loopback_listeners $(cut -d' ' -f1 <<<"$PIDS"))
    check "nothing it started listens beyond loopback, Prometheus and RabbitMQ's metrics included" test -z "$LISTEN"
    [[ -z $LISTEN ]] || echo "$LISTEN" | sed 's/^/#   /'
    note "--monitor checked"
else
    echo "ok - --monitor # SKIP /usr/bin/prometheus is not installed (apt-get install prometheus)"
fi

# --- stop -------------------------------------------------------------------------
# What is archived now is never written again (a post the board adds in the
# meantime is archived once, before the stop or after the restart).
BEFORE_STOP=$(archive_ids)
check "the archive holds the board's posts before the stop" test "$(grep -c . <<<"$BEFORE_STOP")" -ge 400
qs stop
check "stop exits 0" test "$STATUS" -eq 0
LEFT=$(still_running "$PIDS")
check "every process it started, and their children, are gone ($(wc -l <<<"$PIDS") processes)" test -z "$LEFT"
[[ -z $LEFT ]] || echo "$LEFT" | sed 's/^/#   /'
check "no pid file is left" test -z "$(ls "$DATA/pids")"
for p in $SUITE_PORTS; do
    check "the suite's server on port $p still answers" accepts "$p"
done
qs stop
check "a second stop exits 0" test "$STATUS" -eq 0
check "a second stop says nothing was running" has "nothing was running"
note "stopped"

# --- start again: the same data ------------------------------------------------------
PORTS_BEFORE=$(cat "$DATA/ports")
MNESIA=$(stat -c %i "$DATA/rabbit/mnesia/imgfeed@localhost")
RESTART=$(date -u '+%F %T+00')
qs --demo --no-install
check "the start after a stop exits 0" test "$STATUS" -eq 0
check "it reuses the PostgreSQL cluster" bash -c "! grep -q 'creating a PostgreSQL cluster' <<<\"\$0\"" "$OUT"
check "it reuses the database" bash -c "! grep -q 'creating database' <<<\"\$0\"" "$OUT"
check "it reuses the ports" test "$PORTS_BEFORE" == "$(cat "$DATA/ports")"
check "the pipeline has carried the first crawl after the restart" wait_idle 90
check "every post of the board is in the archive after the restart" wait_converged 90
RECENT=$(sql "SELECT id FROM $ALL WHERE archived_on >= '$RESTART'")
check "the rows written since the restart can be listed" test $? -eq 0
REWRITTEN=$(comm -12 <(echo "$BEFORE_STOP") <(LC_ALL=C sort <<<"$RECENT"))
note "$(grep -c . <<<"$RECENT") rows written since the restart (posts added meanwhile)"
check "no post archived before the stop is written again" test -z "$REWRITTEN"
[[ -z $REWRITTEN ]] || head -n 5 <<<"$REWRITTEN" | sed 's/^/#   /'
check "the search is serving again after the restart" wait_search_serving 60
check "the search loaded the archive at its start" search_loaded
check "the search finds the archived picture after the restart" search_finds "$SHA1" 30
check "RabbitMQ reuses its database" test "$MNESIA" == "$(stat -c %i "$DATA/rabbit/mnesia/imgfeed@localhost")"

PIDS=$(process_trees)
qs stop
check "stop after the restart exits 0" test "$STATUS" -eq 0
LEFT=$(still_running "$PIDS")
check "every process of the restart is gone" test -z "$LEFT"
[[ -z $LEFT ]] || echo "$LEFT" | sed 's/^/#   /'

note "done, $failures failures"
((failures == 0))
