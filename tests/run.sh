#!/usr/bin/env bash
# run.sh -- the test command: install, build, start servers, run the suite.
#
#   bash tests/run.sh              the whole suite, plain and under
#                                  AddressSanitizer + UndefinedBehaviorSanitizer,
#                                  the two at once (each with its own servers;
#                                  their output follows when both are done)
#   bash tests/run.sh --plain      only the plain build
#   bash tests/run.sh --sanitize   only the sanitized build
#   bash tests/run.sh -- ARGS      extra arguments for ctest (e.g. -R mq)
#   IMGFEED_BUILD_ROOT=DIR         build under DIR instead of build/ (two
#                                  checkouts' or developers' runs side by side)
#
# On a fresh Debian 12 machine it installs the Debian packages it needs (only
# those missing), builds each variant in a fresh directory under build/,
# starts its own RabbitMQ and PostgreSQL on free loopback ports in a
# temporary directory (tests/lib/servers.sh), runs ctest with their addresses
# in the environment, and stops those servers on every exit path.  Servers
# left behind by an earlier run that was killed are stopped first.  Exits
# non-zero if anything fails.
#
# The variants run side by side because most of the suite waits (on
# servers, on timeouts it provokes, on processes it stops), so two suites
# fill the machine's cores better than one: on 2 cores the whole takes about
# the time of the sanitized suite alone.  Each variant has its own servers,
# since some tests restart them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ROOT=${IMGFEED_BUILD_ROOT:-$ROOT/build}
JOBS=$(nproc 2>/dev/null || echo 2)
VARIANTS=(plain sanitize)
CTEST_ARGS=()

while (($#)); do
    case $1 in
        --plain) VARIANTS=(plain) ;;
        --sanitize) VARIANTS=(sanitize) ;;
        --) shift; CTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Debian packages the build and the suite need.
PACKAGES=(
    build-essential cmake pkg-config
    librabbitmq-dev libcurl4-openssl-dev libjson-c-dev libpq-dev libgd-dev libcmocka-dev
    libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev zlib1g-dev libssl-dev
    libmicrohttpd-dev # imgfeed-live's HTTP server; bench_media
    rabbitmq-server postgresql python3 procps docker-compose curl
    chromium # the live view's page, checked in a real headless browser (tests/support/cdp.c)
    # the metrics scraped by a real Prometheus, promtool's checks of the rules
    # and the expositions, PostgreSQL's exporter (test_monitoring)
    prometheus prometheus-postgres-exporter
    # the imagehash reference the hasher's hashes are compared with
    python3-pil python3-numpy python3-scipy python3-pywt
    # imgfeed-report's figures (matplotlib) and the page checked in chromium (test_report)
    python3-matplotlib
    # imgfeed-export ndjson's zstd parts, and pandas reading them back (test_export_ndjson)
    libzstd-dev zstd python3-pandas python3-zstandard
    openssl # the test CA and broker certificate of test_tls (tests/lib/testca.sh)
    iproute2 # the network namespaces of test_netns (deploy/netns.sh)
)

install_missing() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "run.sh: installing ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

CHILDREN=()
cleanup() { # the variants still running stop their own servers (run_variant)
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${CHILDREN[@]}"; do # a subshell acts on TERM once its ctest is gone
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${CHILDREN[@]}"; do wait "$pid" 2>/dev/null || true; done
    exit "$status"
}

build() { # build VARIANT DIR
    local variant=$1 dir=$2 sanitize=OFF
    [[ $variant == sanitize ]] && sanitize=ON
    rm -rf "$dir"
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGFEED_WERROR=ON \
        -DIMGFEED_SANITIZE=$sanitize >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log" >&2; return 1; }
    cmake --build "$dir" -j "$JOBS" || return 1
}

run_suite() { # run_suite VARIANT
    local variant=$1 dir=$BUILD_ROOT/tests-$1
    # Called as `run_suite || …`, where bash ignores set -e: every step
    # checks its own status.
    echo "=== $variant build"
    build "$variant" "$dir" || return 1
    echo "=== $variant tests"
    (
        cd "$dir" || exit 1
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        ctest --output-on-failure --no-tests=error -j "$JOBS" "${CTEST_ARGS[@]}"
    ) || return 1
}

run_variant() { # run_variant VARIANT: its own servers, then run_suite; in a subshell
    local rundir
    rundir=$(mktemp -d "${TMPDIR:-/tmp}/imgfeed-test.XXXXXX")
    # shellcheck disable=SC2064
    trap "bash '$ROOT/tests/lib/servers.sh' stop '$rundir' >/dev/null 2>&1 || true; rm -rf '$rundir'" EXIT
    trap 'exit 143' TERM
    IMGFEED_TEST_OWNER_PID=$BASHPID bash "$ROOT/tests/lib/servers.sh" start "$rundir" || return 1
    # shellcheck source=/dev/null
    . "$rundir/env"
    echo "run.sh: $1: RabbitMQ at $IMGFEED_AMQP_URL, PostgreSQL at $IMGFEED_PG"
    run_suite "$1"
}

install_missing
mkdir -p "$BUILD_ROOT"
bash "$ROOT/tests/lib/servers.sh" reap
bash "$ROOT/tests/lib/cluster.sh" reap # the same for the tests' own clusters (cluster.sh)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failed=()
if ((${#VARIANTS[@]} == 1)); then
    (run_variant "${VARIANTS[0]}") || failed+=("${VARIANTS[0]}")
else
    for variant in "${VARIANTS[@]}"; do
        (run_variant "$variant") >"$BUILD_ROOT/tests-$variant.log" 2>&1 &
        CHILDREN+=($!)
    done
    echo "run.sh: ${VARIANTS[*]} running at once; their output follows when each is done"
    for i in "${!VARIANTS[@]}"; do
        status=0
        wait "${CHILDREN[$i]}" || status=$?
        echo "=================== ${VARIANTS[$i]} (exit $status)"
        cat "$BUILD_ROOT/tests-${VARIANTS[$i]}.log"
        ((status == 0)) || failed+=("${VARIANTS[$i]}")
    done
    CHILDREN=()
fi
if ((${#failed[@]})); then
    echo "run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all passed (${VARIANTS[*]})"
