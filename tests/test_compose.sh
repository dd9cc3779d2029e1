#!/usr/bin/env bash
# test_compose.sh ROOT -- checks deploy/docker-compose.yml and
# deploy/docker-compose.worker.yml without a Docker engine:
#
#   - both are valid for `docker-compose config` with deploy/.env.example;
#   - the rendered services are the ones docs/operations.md describes: health checks on
#     RabbitMQ and PostgreSQL, the archiver, hasher, crawler, live view and search
#     waiting for them, no container_name (--scale hasher=N), the crawler's state volume;
#     on the worker file only a hasher and a crawler (behind a profile), no
#     depends_on, the broker address from IMGFEED_BROKER_HOST;
#   - the passwords reach the broker URL and the conninfo from the env file,
#     the files refuse to render without them, and neither file holds a
#     literal password.
#
# Needs Debian's docker-compose (tests/run.sh installs it) and its python3-yaml.
# Exits non-zero with a message on the first failure.
set -uo pipefail

ROOT=${1:?usage: test_compose.sh ROOT}
MAIN=$ROOT/deploy/docker-compose.yml
WORKER=$ROOT/deploy/docker-compose.worker.yml
EXAMPLE=$ROOT/deploy/.env.example

fail() { echo "test_compose: FAIL: $*" >&2; exit 1; }

command -v docker-compose >/dev/null 2>&1 ||
    fail "docker-compose not found: tests/run.sh installs it (Debian package docker-compose), or apt-get install docker-compose"
/usr/bin/python3 -c 'import yaml' 2>/dev/null ||
    fail "/usr/bin/python3 with yaml not found (Debian's docker-compose depends on python3-yaml)"
for f in "$MAIN" "$WORKER" "$EXAMPLE"; do [[ -f $f ]] || fail "$f is missing"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_compose.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# docker-compose in a clean environment, so that variables of the caller's
# shell (IMGFEED_*, COMPOSE_*) do not stand in for the env file's.
dc() { env -i PATH="$PATH" HOME="$TMP" docker-compose "$@"; }

# --- 1. both files are valid with the shipped example ---
for f in "$MAIN" "$WORKER"; do
    dc -f "$f" --env-file "$EXAMPLE" config -q >"$TMP/out" 2>&1 ||
        fail "docker-compose config rejects ${f#"$ROOT"/} with deploy/.env.example: $(cat "$TMP/out")"
    echo "ok: ${f#"$ROOT"/} is valid with deploy/.env.example"
done

# --- 2. the rendered services, with recognisable passwords ---
cat >"$TMP/env" <<'EOF'
RABBITMQ_USER=mquser
RABBITMQ_PASSWORD=SentinelRabbit7
POSTGRES_PASSWORD=SentinelPg9
IMGFEED_BROKER_HOST=198.51.100.7
EOF
dc -f "$MAIN" --env-file "$TMP/env" config >"$TMP/main.yml" 2>"$TMP/err" ||
    fail "docker-compose config (main): $(cat "$TMP/err")"
dc -f "$WORKER" --env-file "$TMP/env" config >"$TMP/worker.yml" 2>"$TMP/err" ||
    fail "docker-compose config (worker): $(cat "$TMP/err")"

/usr/bin/python3 - "$TMP/main.yml" "$TMP/worker.yml" <<'PY' || exit 1
import sys, yaml

def fail(msg):
    print("test_compose: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

main = yaml.safe_load(open(sys.argv[1]))["services"]
worker = yaml.safe_load(open(sys.argv[2]))["services"]
AMQP_MAIN = "amqp://mquser:SentinelRabbit7@rabbitmq:5672/%2f"
AMQP_WORKER = "amqp://mquser:SentinelRabbit7@198.51.100.7:5672/%2f"
PROGRAMS = {"archiver": "imgfeed-archiver", "hasher": "imgfeed-hasher", "crawler": "imgfeed-crawler",
            "live": "imgfeed-live", "search": "imgfeed-search"}

def env(svc, name, key):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    if key not in e:
        fail(f"{name}: no {key} in its environment")
    return str(e[key])

def check_program(svc, name, amqp):
    if svc.get("command") != [PROGRAMS[name]]:
        fail(f"{name}: command {svc.get('command')!r}, expected [{PROGRAMS[name]!r}]")
    if "build" not in svc:
        fail(f"{name}: not built from the repository's Dockerfile")
    if "container_name" in svc:
        fail(f"{name}: has a container_name (it breaks --scale)")
    if svc.get("restart") not in ("unless-stopped", "always", "on-failure"):
        fail(f"{name}: no restart policy")
    if not svc.get("stop_grace_period"):
        fail(f"{name}: no stop_grace_period for the SIGTERM drain")
    if env(svc, name, "IMGFEED_AMQP_URL") != amqp:
        fail(f"{name}: IMGFEED_AMQP_URL is {env(svc, name, 'IMGFEED_AMQP_URL')!r}, expected {amqp!r}")

def waits_for(svc, name, deps):
    d = svc.get("depends_on") or {}
    for dep in deps:
        if not isinstance(d, dict) or (d.get(dep) or {}).get("condition") != "service_healthy":
            fail(f"{name}: does not wait for {dep} to be healthy (depends_on condition: service_healthy)")

def has_state_volume(svc, name):
    if not any(str(v).split(":")[1:2] == ["/var/lib/imgfeed/state"] or
               (isinstance(v, dict) and v.get("target") == "/var/lib/imgfeed/state")
               for v in svc.get("volumes") or []):
        fail(f"{name}: no volume on /var/lib/imgfeed/state")
    if env(svc, name, "IMGFEED_STATE_DIR") != "/var/lib/imgfeed/state":
        fail(f"{name}: IMGFEED_STATE_DIR is not /var/lib/imgfeed/state")
    sites = env(svc, name, "IMGFEED_SITES")
    if not any(isinstance(v, dict) and v.get("target") == sites for v in svc.get("volumes") or []):
        fail(f"{name}: IMGFEED_SITES {sites} is not a mounted file")

# main: the seven services
if set(main) != {"rabbitmq", "postgres", "archiver", "hasher", "crawler", "live", "search"}:
    fail(f"main: services {sorted(main)}")
rabbit, pg = main["rabbitmq"], main["postgres"]
if not str(rabbit.get("image", "")).startswith("rabbitmq:3-management"):
    fail("main: rabbitmq is not rabbitmq:3-management")
if "rabbitmq-diagnostics" not in " ".join(map(str, rabbit.get("healthcheck", {}).get("test", []))):
    fail("main: rabbitmq has no rabbitmq-diagnostics health check")
if rabbit.get("environment", {}).get("RABBITMQ_DEFAULT_PASS") != "SentinelRabbit7":
    fail("main: RABBITMQ_DEFAULT_PASS does not come from RABBITMQ_PASSWORD")
if not any("15672" in str(p) for p in rabbit.get("ports") or []):
    fail("main: the management UI (15672) is not published")
if not str(pg.get("image", "")).startswith("postgres:15"):
    fail("main: postgres is not postgres:15")
if "pg_isready" not in " ".join(map(str, pg.get("healthcheck", {}).get("test", []))):
    fail("main: postgres has no pg_isready health check")
if not any("/var/lib/postgresql/data" in str(v) for v in pg.get("volumes") or []):
    fail("main: postgres keeps its data in no volume")
if pg.get("environment", {}).get("POSTGRES_PASSWORD") != "SentinelPg9":
    fail("main: POSTGRES_PASSWORD does not come from the env file")
for name in PROGRAMS:
    check_program(main[name], name, AMQP_MAIN)
waits_for(main["archiver"], "archiver", ["rabbitmq", "postgres"])
waits_for(main["hasher"], "hasher", ["rabbitmq"])
waits_for(main["crawler"], "crawler", ["rabbitmq"])
waits_for(main["live"], "live", ["rabbitmq"])
waits_for(main["search"], "search", ["rabbitmq", "postgres"])
# the live view listens on every address inside its container, published on loopback by default
if env(main["live"], "live", "IMGFEED_LIVE_LISTEN") != "0.0.0.0:8090":
    fail("live: IMGFEED_LIVE_LISTEN is not 0.0.0.0:8090")
if not any("8090" in str(p) for p in main["live"].get("ports") or []):
    fail("live: port 8090 is not published")
# the search likewise, on 8091
if env(main["search"], "search", "IMGFEED_SEARCH_LISTEN") != "0.0.0.0:8091":
    fail("search: IMGFEED_SEARCH_LISTEN is not 0.0.0.0:8091")
if not any("8091" in str(p) for p in main["search"].get("ports") or []):
    fail("search: port 8091 is not published")
# the archiver and the search read the same archive
for name in ("archiver", "search"):
    conninfo = env(main[name], name, "IMGFEED_PG")
    for part in ("host=postgres", "password=SentinelPg9", "dbname=imgfeed"):
        if part not in conninfo.split():
            fail(f"{name}: IMGFEED_PG {conninfo!r} lacks {part}")
has_state_volume(main["crawler"], "crawler")

# worker: a hasher and a crawler, nothing that waits for a remote service
if set(worker) != {"hasher", "crawler"}:
    fail(f"worker: services {sorted(worker)}, expected only hasher and crawler")
for name in worker:
    check_program(worker[name], name, AMQP_WORKER)
    if worker[name].get("depends_on"):
        fail(f"worker: {name} has depends_on, but its broker is on another machine")
    if worker[name].get("ports"):
        fail(f"worker: {name} publishes ports")
has_state_volume(worker["crawler"], "worker crawler")
print("ok: services, health checks, dependencies, volumes and passwords as expected")
PY

# --- 3. no password, no service: the files must not render without them ---
for var in RABBITMQ_PASSWORD POSTGRES_PASSWORD; do
    grep -v "^$var=" "$TMP/env" >"$TMP/env-$var"
    if dc -f "$MAIN" --env-file "$TMP/env-$var" config -q >/dev/null 2>&1; then
        fail "deploy/docker-compose.yml renders without $var: a password must come from .env (\${$var:?...})"
    fi
done
grep -v "^IMGFEED_BROKER_HOST=" "$TMP/env" >"$TMP/env-host"
if dc -f "$WORKER" --env-file "$TMP/env-host" config -q >/dev/null 2>&1; then
    fail "deploy/docker-compose.worker.yml renders without IMGFEED_BROKER_HOST"
fi
echo "ok: neither file renders without its passwords and broker address"

# --- 4. no literal password in the compose files ---
for f in "$MAIN" "$WORKER"; do
    rel=${f#"$ROOT"/}
    # a password variable with a default or alternative value in the file
    hit=$(grep -vE '^[[:space:]]*#' "$f" | grep -oE '\$\{[A-Z_]*PASS[A-Z_]*:?[-+][^}]*\}') &&
        fail "$rel gives a password variable a value of its own: $hit"
    # comments dropped, every ${VARIABLE...} replaced by the token __VAR__
    code=$(grep -vE '^[[:space:]]*#' "$f" | sed -E 's/\$\{[^}]*\}/__VAR__/g')
    # a password key or conninfo field whose value is not a variable
    hit=$(grep -oE '(PASS(WORD)?|password)[[:space:]]*[:=][[:space:]]*[^[:space:]]+' <<<"$code" |
        grep -vE '[:=][[:space:]]*__VAR__$') &&
        fail "$rel holds a literal password: $hit"
    # an amqp:// URL whose user or password is not a variable
    hit=$(grep -oE 'amqps?://[^[:space:]]*@' <<<"$code" | grep -vE '^amqps?://__VAR__:__VAR__@$') &&
        fail "$rel has a broker URL with a literal user or password: $hit"
    # the example's placeholder passwords
    while IFS='=' read -r key value; do
        [[ $key == *PASSWORD && -n $value ]] || continue
        grep -qF -- "$value" "$f" && fail "$rel contains the value of $key from .env.example"
    done <"$EXAMPLE"
done
echo "ok: no literal password in the compose files"
echo "test_compose: all passed"
