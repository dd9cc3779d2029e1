#!/usr/bin/env bash
# deploy/podman-two-machines.sh -- runs deploy/docker-compose.yml (the main
# machine) and deploy/docker-compose.worker.yml (a worker) for real, with
# Debian's podman and podman-compose instead of Docker, on one host playing
# two machines; pushes a generated image board through them, checks the
# archive, and tears everything down.  Run by hand as root (docs/operations.md,
# "Running the compose files with podman", has the result of a run):
#
#   apt-get install -y podman podman-compose runc debootstrap
#   deploy/podman-two-machines.sh [--keep] [--wait SECONDS]
#
# Read it as the recipe for two real machines: each phase below is what you
# would type there, with the main machine's private address where this script
# uses MAIN_ADDR.
#
#   0. podman's settings, private to this script (nothing of the machine's own
#      podman is read or touched): a containers.conf (CONTAINERS_CONF) with the
#      runc runtime (crun refuses hosts with hybrid cgroups v1/v2) and explicit
#      ulimits (nofile 1024 is enough for RabbitMQ's few connections here; raise
#      it for a real broker), a storage.conf (CONTAINERS_STORAGE_CONF) keeping
#      images, containers and volumes under $STATE, and a network config dir.
#   1. the base image debian:12 (and debian:12-slim, the same image), made with
#      `debootstrap --variant=minbase bookworm` and `podman import`, because no
#      image registry is reachable; kept between runs.
#   2. the images: imgfeed (the repository's Dockerfile) and, from Debian's
#      packages (deploy/images/*), RabbitMQ, PostgreSQL, Prometheus and the
#      PostgreSQL exporter, named through the compose files' IMGFEED_*_IMAGE
#      variables.  Grafana has no Debian package: its service is not started.
#      Builds need Debian's mirror (apt-get in the Dockerfiles); podman keeps
#      the layers, so a second run only rebuilds what changed.
#   3. two podman-compose projects, each on its own network, as two machines:
#      "imgfeedmain" (10.89.201.0/24) and "imgfeedworker" (10.89.202.0/24).  The
#      main machine's address, MAIN_ADDR, is the host's address on the main
#      network (10.89.201.1): the main publishes there, as on a private
#      address, and the worker's containers reach it only through those
#      published ports (the broker as MAIN_ADDR:5672, IMGFEED_BROKER_HOST).
#   4. main: rabbitmq and postgres, waited for with `podman healthcheck run`
#      (podman runs health checks from systemd timers, absent here, and
#      podman-compose 1.0.3 ignores depends_on conditions), then the archiver,
#      the live view, the search, the PostgreSQL exporter and Prometheus.  Its
#      crawler and hasher are not started: the worker runs them, so every item
#      crosses the "machines" twice.
#   5. the board: tests/support/fixture_server.py on MAIN_ADDR (any address the
#      worker reaches would do), one generated 4chan-like board of
#      BOARD_THREADS threads of BOARD_POSTS posts.
#   6. worker: its hasher and, with the sites file of the board, its crawler;
#      a third compose file ($STATE/worker.override.yml) only lets the hasher
#      download from the board's private address (IMGFEED_ALLOW_NET).
#   7. the checks, bounded by --wait: every post of the board exactly once in
#      PostgreSQL (read through the published port), each post with a file
#      with an `_img` entry with its phash, nothing in E.dead (management API),
#      and Prometheus scraping the main's programs, RabbitMQ and the exporter.
#   8. `podman-compose down -v` of both projects, their networks removed
#      (unless --keep).  Runs on any exit, failures included.
#
# Each phase prints its duration.  Exits 0 when every check passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${IMGFEED_PODMAN_STATE:-/var/tmp/imgfeed-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
MAIN_NET=${MAIN_NET:-10.89.201}
WORKER_NET=${WORKER_NET:-10.89.202}
MAIN_ADDR=$MAIN_NET.1 WORKER_ADDR=$WORKER_NET.1
BOARD_THREADS=${BOARD_THREADS:-10} BOARD_POSTS=${BOARD_POSTS:-20}
WAIT=300 KEEP=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
    case $1 in
        --keep) KEEP=1 ;;
        --wait) WAIT=${2:?--wait SECONDS}; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option $1" >&2; usage 2 >&2 ;;
    esac
    shift
done

say() { printf '%s podman-two-machines: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { say "FAIL: $*" >&2; exit 1; }
((EUID == 0)) || die "run as root (rootful podman: published ports on the hosts' addresses)"
for tool in podman podman-compose runc debootstrap psql curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y podman podman-compose runc debootstrap postgresql-client curl)"
done
[[ ! -e $ROOT/deploy/.env ]] ||
    die "deploy/.env exists: podman-compose 1.0.3 reads it and its values would replace this script's; move it away for the run"

# --- timings ---
declare -a TIMES=()
PHASE='' PHASE_T0=0
phase() {
    phase_end
    PHASE=$1 PHASE_T0=$(date +%s.%N)
    say "== $PHASE"
}
phase_end() {
    [[ -n $PHASE ]] || return 0
    TIMES+=("$(printf '%-48s %7.1f s' "$PHASE" "$(awk -v a="$PHASE_T0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")")
    PHASE=''
}
print_times() {
    phase_end
    say "time per phase:"
    local t
    for t in "${TIMES[@]}"; do echo "    $t"; done
}

# --- 0. podman's settings, private ---
mkdir -p "$STATE/conf" "$STATE/networks" "$STATE/run"
chmod 755 "$STATE"
cat >"$STATE/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
network_config_dir = "$STATE/networks"
EOF
cat >"$STATE/conf/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
export CONTAINERS_CONF=$STATE/conf/containers.conf CONTAINERS_STORAGE_CONF=$STATE/conf/storage.conf

# The compose files' variables: passwords of this run, the images built here,
# the addresses of the two "machines".
RUN_ID=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
export RABBITMQ_USER=imgfeed RABBITMQ_PASSWORD=mq$RUN_ID POSTGRES_PASSWORD=pg$RUN_ID GRAFANA_PASSWORD=gf$RUN_ID
export IMGFEED_IMAGE=localhost/imgfeed:podman
export IMGFEED_RABBITMQ_IMAGE=localhost/imgfeed-rabbitmq:debian
export IMGFEED_POSTGRES_IMAGE=localhost/imgfeed-postgres:debian
export IMGFEED_PROMETHEUS_IMAGE=localhost/imgfeed-prometheus:debian
export IMGFEED_POSTGRES_EXPORTER_IMAGE=localhost/imgfeed-postgres-exporter:debian
# main: every port on MAIN_ADDR, the "private address" the worker reaches
export RABBITMQ_PUBLISH=$MAIN_ADDR:5672 RABBITMQ_UI_PUBLISH=$MAIN_ADDR:15672 POSTGRES_PUBLISH=$MAIN_ADDR:5432
export LIVE_PUBLISH=$MAIN_ADDR:8090 SEARCH_PUBLISH=$MAIN_ADDR:8091 PROMETHEUS_PUBLISH=$MAIN_ADDR:9090
# worker: the broker at MAIN_ADDR; its metrics on its own address (one port:
# podman refuses the default range 9101-9108 for one container port)
export IMGFEED_BROKER_HOST=$MAIN_ADDR IMGFEED_BROKER_PORT=5672
export HASHER_METRICS_PUBLISH=$WORKER_ADDR:9101 CRAWLER_METRICS_PUBLISH=$WORKER_ADDR:9100
export CRAWLER_SITES_FILE=$STATE/run-board/sites.json

MAIN=(podman-compose -p imgfeedmain -f "$ROOT/deploy/docker-compose.yml")
WORKER=(podman-compose -p imgfeedworker -f "$ROOT/deploy/docker-compose.worker.yml" -f "$STATE/run-board/worker.override.yml")
LOGS=$STATE/logs
mkdir -p "$LOGS" "$STATE/run-board"
chmod 700 "$LOGS"   # podman-compose logs the merged files, passwords included
rm -f "$LOGS"/*.log

BOARD_PID=''
teardown() {
    local rc=$?
    set +e
    if ((rc != 0)); then
        say "logs of the containers (last lines) after the failure:"
        local c project
        for project in imgfeedmain imgfeedworker; do
            for c in $(podman ps -a --format '{{.Names}}' --filter label=io.podman.compose.project=$project); do
                echo "--- $c ($(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null))"
                podman logs --tail 8 "$c" 2>&1 | sed 's/^/    /'
            done
        done
    fi
    [[ -z $BOARD_PID ]] || kill "$BOARD_PID" 2>/dev/null
    if ((KEEP)); then
        say "--keep: left running; CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF podman ps"
    else
        phase "8. down -v (both projects) and networks removed"
        "${WORKER[@]}" down -v -t 30 >"$LOGS/worker-down.log" 2>&1
        "${MAIN[@]}" down -v -t 30 >"$LOGS/main-down.log" 2>&1
        podman network rm -f imgfeedworker_default imgfeedmain_default >/dev/null 2>&1
        local left
        left=$(podman ps -a -q --filter label=io.podman.compose.project=imgfeedmain; podman ps -a -q \
               --filter label=io.podman.compose.project=imgfeedworker; podman volume ls -q | grep -E '^imgfeed(main|worker)_')
        [[ -z $left ]] || { say "FAIL: left behind after down -v: $left" >&2; rc=1; }
    fi
    print_times
    ((rc == 0)) && say "PASS" || say "FAILED (logs in $LOGS)"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s)

# --- 1. the base image ---
phase "1. base image debian:12 (debootstrap, import)"
if podman image exists localhost/debian:12 && podman image exists localhost/debian:12-slim; then
    say "debian:12 exists, kept"
else
    rm -rf "$STATE/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$STATE/rootfs.tmp" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $LOGS/debootstrap.log"
    rm -f "$STATE/rootfs.tmp/var/cache/apt/archives/"*.deb
    tar -C "$STATE/rootfs.tmp" -c . | podman import --change 'CMD ["bash"]' - localhost/debian:12 >/dev/null
    podman tag localhost/debian:12 localhost/debian:12-slim
    rm -rf "$STATE/rootfs.tmp"
fi

# --- 2. the images ---
build() {  # build NAME CONTEXT [DOCKERFILE]
    local name=$1 ctx=$2 file=${3:-$2/Dockerfile}
    podman build -t "$name" -f "$file" "$ctx" >"$LOGS/build-${name##*/}.log" 2>&1 ||
        die "building $name failed: $(tail -n 5 "$LOGS/build-${name##*/}.log")"
}
phase "2. images (imgfeed; Debian's rabbitmq, postgresql, prometheus)"
build "$IMGFEED_IMAGE" "$ROOT" "$ROOT/Dockerfile"
for image in rabbitmq postgres prometheus postgres-exporter; do
    build "localhost/imgfeed-$image:debian" "$ROOT/deploy/images/$image"
done

# --- 3. the two "machines" ---
phase "3. networks of the two projects"
for net in "imgfeedmain_default $MAIN_NET" "imgfeedworker_default $WORKER_NET"; do
    set -- $net
    podman network rm -f "$1" >/dev/null 2>&1 || true
    podman network create --subnet "$2.0/24" --gateway "$2.1" \
        --label io.podman.compose.project="${1%_default}" "$1" >/dev/null
done

# --- 4. the main machine ---
healthy() {  # healthy CONTAINER SECONDS
    local deadline=$((SECONDS + $2))
    until podman healthcheck run "$1" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$1 not healthy after $2 s: $(podman logs --tail 5 "$1" 2>&1)"
        sleep 1
    done
}
phase "4a. main: up rabbitmq postgres, healthy"
"${MAIN[@]}" up -d --no-build rabbitmq postgres >"$LOGS/main-up.log" 2>&1 || die "main up: $LOGS/main-up.log"
healthy imgfeedmain_rabbitmq_1 120
healthy imgfeedmain_postgres_1 120
phase "4b. main: up archiver live search exporter prometheus"
"${MAIN[@]}" up -d --no-build archiver live search postgres-exporter prometheus >>"$LOGS/main-up.log" 2>&1 ||
    die "main up: $LOGS/main-up.log"
say "not started: main's crawler and hasher (the worker runs them), grafana (no Debian package, no image)"

# --- 5. the board ---
phase "5. board on $MAIN_ADDR"
rm -f "$STATE/run-board/port"
python3 -B "$ROOT/tests/support/fixture_server.py" --host "$MAIN_ADDR" --port-file "$STATE/run-board/port" \
    >"$LOGS/board.log" 2>&1 &
BOARD_PID=$!
for _ in $(seq 100); do [[ -s $STATE/run-board/port ]] && break; sleep 0.1; done
[[ -s $STATE/run-board/port ]] || die "the board did not start: $(tail -n 5 "$LOGS/board.log")"
BOARD=http://$MAIN_ADDR:$(cat "$STATE/run-board/port")
curl -fsS "$BOARD/_control/chan/site?name=pm&kind=4chan" >/dev/null
curl -fsS "$BOARD/_control/chan/board?site=pm&board=b1&threads=$BOARD_THREADS&posts=$BOARD_POSTS" >/dev/null
EXPECTED=$((BOARD_THREADS * BOARD_POSTS))
cat >"$STATE/run-board/sites.json" <<JSON
{
  "user_agent": "imgfeed podman-two-machines (local generated board)",
  "sites": [
    {"name": "pm", "kind": "4chan", "api": "$BOARD/pm", "media": "$BOARD/pm/media",
     "boards": ["b1"], "rps": 50, "poll_interval": "5s"}
  ]
}
JSON
chmod 644 "$STATE/run-board/sites.json"
chmod 755 "$STATE/run-board"
cat >"$STATE/run-board/worker.override.yml" <<EOF
# Written by deploy/podman-two-machines.sh: the board is on a private address.
services:
  hasher:
    environment:
      IMGFEED_ALLOW_NET: $MAIN_NET.0/24
EOF
say "board $BOARD/pm/b1: $BOARD_THREADS threads of $BOARD_POSTS posts"

# --- 6. the worker ---
phase "6. worker: up hasher crawler"
"${WORKER[@]}" up -d --no-build hasher crawler >"$LOGS/worker-up.log" 2>&1 || die "worker up: $LOGS/worker-up.log"

# --- 7. the checks ---
psql_main() { PGPASSWORD=$POSTGRES_PASSWORD psql -h "$MAIN_ADDR" -p 5432 -U imgfeed -d imgfeed -XAtq "$@"; }
ROWS="(SELECT id, data FROM chan_pm_thread UNION ALL SELECT id, data FROM chan_pm_post) AS p"
phase "7a. wait: $EXPECTED posts in the archive"
deadline=$((SECONDS + WAIT)) next=0
while :; do
    n=$(psql_main -c "SELECT count(*) FROM $ROWS" 2>/dev/null || echo 0)
    ((n >= EXPECTED)) && break
    ((SECONDS < deadline)) || die "after ${WAIT}s: $n of $EXPECTED posts archived"
    ((SECONDS < next)) || { say "  $n of $EXPECTED posts archived"; next=$((SECONDS + 10)); }
    sleep 1
done
phase "7b. checks (archive, E.dead, Prometheus)"
# Once, with _img: the rows are the posts, each id once; a post with a file
# (4chan's "tim") has one _img entry with a phash, a post without one has [].
read -r total ids files hashed bad < <(psql_main -F ' ' -c "SELECT count(*), count(DISTINCT id),
    count(*) FILTER (WHERE data ? 'tim'),
    count(*) FILTER (WHERE data ? 'tim' AND jsonb_array_length(data->'_img') = 1
                     AND data->'_img'->0->>'phash' IS NOT NULL),
    count(*) FILTER (WHERE NOT data ? 'tim' AND data->'_img' IS DISTINCT FROM '[]'::jsonb) FROM $ROWS")
say "archive: $total rows, $ids ids, $files posts with a file, $hashed of them hashed, $bad others with _img != []"
((total == EXPECTED && ids == EXPECTED)) || die "expected $EXPECTED posts once each, got $total rows of $ids ids"
((files > 0 && hashed == files && bad == 0)) || die "not every post has its _img"
dead=$(curl -fsS -u "$RABBITMQ_USER:$RABBITMQ_PASSWORD" "http://$MAIN_ADDR:15672/api/queues/%2f/chan.dead" |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])') || die "cannot read chan.dead"
say "E.dead: $dead messages"
((dead == 0)) || die "$dead messages in chan.dead"
# Prometheus on the main machine: its own programs, RabbitMQ and PostgreSQL up.
deadline=$((SECONDS + 60))
while :; do
    down=$(curl -fsS "http://$MAIN_ADDR:9090/api/v1/targets" | python3 -c '
import json, sys
up = {}
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    up[t["labels"]["job"]] = up.get(t["labels"]["job"], False) or t["health"] == "up"
print(" ".join(j for j in ("archiver", "live", "search", "rabbitmq", "postgres") if not up.get(j)))' || echo prometheus)
    [[ -z $down ]] && break
    ((SECONDS < deadline)) || die "Prometheus does not scrape: $down"
    sleep 2
done
say "Prometheus scrapes archiver, live, search, rabbitmq, postgres"
say "all checks passed in $(($(date +%s) - T_START)) s"
