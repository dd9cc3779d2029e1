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
#   - monitoring: every program serves its metrics on 0.0.0.0:9100, unpublished on
#     the main machine, published on loopback by default on a worker; Prometheus
#     with deploy/prometheus mounted, its data in a volume, on loopback; its jobs
#     name services and ports that exist (the dns_sd names and the targets files);
#     the PostgreSQL exporter and Grafana (deploy/grafana's provisioning, its
#     dashboards where the provider looks, the data source at the service
#     prometheus) with their passwords from the env file;
#   - the passwords reach the broker URL, the conninfo, the exporter and Grafana
#     from the env file, the files refuse to render without them, and neither file
#     holds a literal password.
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
GRAFANA_PASSWORD=SentinelGrafana5
IMGFEED_BROKER_HOST=198.51.100.7
EOF
dc -f "$MAIN" --env-file "$TMP/env" config >"$TMP/main.yml" 2>"$TMP/err" ||
    fail "docker-compose config (main): $(cat "$TMP/err")"
dc -f "$WORKER" --env-file "$TMP/env" config >"$TMP/worker.yml" 2>"$TMP/err" ||
    fail "docker-compose config (worker): $(cat "$TMP/err")"

/usr/bin/python3 - "$TMP/main.yml" "$TMP/worker.yml" "$ROOT" <<'PY' || exit 1
import glob, json, os, sys, yaml

def fail(msg):
    print("test_compose: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

main = yaml.safe_load(open(sys.argv[1]))["services"]
worker = yaml.safe_load(open(sys.argv[2]))["services"]
ROOT = os.path.realpath(sys.argv[3])
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
    if env(svc, name, "IMGFEED_METRICS_LISTEN") != "0.0.0.0:9100":
        fail(f"{name}: IMGFEED_METRICS_LISTEN is not 0.0.0.0:9100")

def port_parts(p):
    """(host ip, host port or range, container port) of a rendered port."""
    if isinstance(p, dict):
        return str(p.get("host_ip", "")), str(p.get("published", "")), str(p.get("target"))
    parts = str(p).split("/")[0].split(":")
    return (parts[0] if len(parts) == 3 else ""), (parts[-2] if len(parts) >= 2 else ""), parts[-1]

def published(svc, container_port):
    return [p for p in svc.get("ports") or [] if port_parts(p)[2] == str(container_port)]

def on_loopback(svc, name, container_port):
    ports = published(svc, container_port)
    if not ports:
        fail(f"{name}: port {container_port} is not published")
    for p in ports:
        if port_parts(p)[0] != "127.0.0.1":
            fail(f"{name}: port {container_port} is published as {p!r}, not on 127.0.0.1 by default")

def bind(svc, name, target):
    """The source of the read-only bind mount of SVC on TARGET."""
    for v in svc.get("volumes") or []:
        if isinstance(v, dict) and v.get("target") == target:
            if v.get("type") != "bind" or not v.get("read_only"):
                fail(f"{name}: {target} is not a read-only bind mount")
            return os.path.realpath(v["source"])
    fail(f"{name}: nothing mounted on {target}")

def volume_on(svc, name, target):
    if not any(str(v).split(":")[1:2] == [target] or (isinstance(v, dict) and v.get("target") == target
               and v.get("type") == "volume") for v in svc.get("volumes") or []):
        fail(f"{name}: no volume on {target}")

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

# main: the seven services and the three of monitoring
if set(main) != {"rabbitmq", "postgres", "archiver", "hasher", "crawler", "live", "search",
                 "postgres-exporter", "prometheus", "grafana"}:
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
# the programs' metrics stay inside the compose network
for name in PROGRAMS:
    if published(main[name], 9100):
        fail(f"{name}: its metrics port 9100 is published (only Prometheus, inside, reads it)")
if published(rabbit, 15692):
    fail("rabbitmq: its metrics port 15692 is published (only Prometheus, inside, reads it)")

# --- monitoring ---
prom, graf, exporter = main["prometheus"], main["grafana"], main["postgres-exporter"]
if not str(prom.get("image", "")).startswith("prom/prometheus:"):
    fail("prometheus: not the image prom/prometheus")
if bind(prom, "prometheus", "/etc/prometheus") != os.path.join(ROOT, "deploy", "prometheus"):
    fail("prometheus: /etc/prometheus is not deploy/prometheus")
if "--config.file=/etc/prometheus/prometheus.yml" not in (prom.get("command") or []):
    fail("prometheus: not started with --config.file=/etc/prometheus/prometheus.yml")
if "--storage.tsdb.path=/prometheus" not in (prom.get("command") or []):
    fail("prometheus: its data is not in /prometheus")
volume_on(prom, "prometheus", "/prometheus")
on_loopback(prom, "prometheus", 9090)
if prom.get("restart") != "unless-stopped":
    fail("prometheus: no restart policy")

# every job of prometheus.yml names services and ports of this file
config = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")))
jobs = {j["job_name"]: j for j in config["scrape_configs"]}
for want in list(PROGRAMS) + ["rabbitmq", "rabbitmq-queues", "postgres"]:
    if want not in jobs:
        fail(f"prometheus.yml: no job {want}")
for name in PROGRAMS:
    names = [(n, d.get("port")) for d in jobs[name].get("dns_sd_configs") or [] for n in d.get("names") or []]
    if names != [(name, 9100)]:
        fail(f"prometheus.yml: job {name} does not find the service {name} by DNS on port 9100: {names}")
addresses = {}
for job, j in jobs.items():
    for sd in j.get("file_sd_configs") or []:
        for pattern in sd.get("files") or []:
            for path in glob.glob(os.path.join(ROOT, "deploy", "prometheus", pattern)):
                for group in yaml.safe_load(open(path)) or []:
                    addresses.setdefault(job, []).extend(group.get("targets") or [])
expected = {"rabbitmq": ["rabbitmq:15692"], "rabbitmq-queues": ["rabbitmq:15692"],
            "postgres": ["postgres-exporter:9187"]}
if addresses != expected:
    fail(f"deploy/prometheus/targets: {addresses}, expected {expected}")
if "rabbitmq.yml" not in os.listdir(os.path.join(ROOT, "deploy", "prometheus", "targets")):
    fail("deploy/prometheus/targets/rabbitmq.yml is missing")

# the PostgreSQL exporter: the archive's database, the password of the env file
if not str(exporter.get("image", "")).startswith("quay.io/prometheuscommunity/postgres-exporter:"):
    fail("postgres-exporter: not the image quay.io/prometheuscommunity/postgres-exporter")
if not env(exporter, "postgres-exporter", "DATA_SOURCE_URI").startswith("postgres:5432/imgfeed"):
    fail("postgres-exporter: DATA_SOURCE_URI is not postgres:5432/imgfeed")
if env(exporter, "postgres-exporter", "DATA_SOURCE_PASS") != "SentinelPg9":
    fail("postgres-exporter: DATA_SOURCE_PASS does not come from POSTGRES_PASSWORD")
waits_for(exporter, "postgres-exporter", ["postgres"])
if exporter.get("ports"):
    fail("postgres-exporter: publishes ports")

# Grafana: provisioning and dashboards of deploy/grafana, data source at prometheus:9090
if not str(graf.get("image", "")).startswith("grafana/grafana:"):
    fail("grafana: not the image grafana/grafana")
if env(graf, "grafana", "GF_SECURITY_ADMIN_PASSWORD") != "SentinelGrafana5":
    fail("grafana: GF_SECURITY_ADMIN_PASSWORD does not come from GRAFANA_PASSWORD")
if bind(graf, "grafana", "/etc/grafana/provisioning") != os.path.join(ROOT, "deploy", "grafana", "provisioning"):
    fail("grafana: /etc/grafana/provisioning is not deploy/grafana/provisioning")
providers = yaml.safe_load(open(os.path.join(ROOT, "deploy/grafana/provisioning/dashboards/imgfeed.yml")))["providers"]
for p in providers:
    if bind(graf, "grafana", p["options"]["path"]) != os.path.join(ROOT, "deploy", "grafana", "dashboards"):
        fail(f"grafana: the provider's path {p['options']['path']} is not deploy/grafana/dashboards")
home = env(graf, "grafana", "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if not any(home == p["options"]["path"] + "/imgfeed.json" for p in providers):
    fail(f"grafana: the home dashboard {home} is not the provisioned imgfeed.json")
sources = yaml.safe_load(open(os.path.join(ROOT, "deploy/grafana/provisioning/datasources/prometheus.yml")))
if [s["url"] for s in sources["datasources"]] != ["http://prometheus:9090"]:
    fail("grafana: its data source is not http://prometheus:9090")
json.load(open(os.path.join(ROOT, "deploy/grafana/dashboards/imgfeed.json")))
volume_on(graf, "grafana", "/var/lib/grafana")
on_loopback(graf, "grafana", 3000)
print("ok: prometheus, grafana and postgres-exporter as expected, prometheus.yml's jobs match the services")

# worker: a hasher and a crawler, nothing that waits for a remote service
if set(worker) != {"hasher", "crawler"}:
    fail(f"worker: services {sorted(worker)}, expected only hasher and crawler")
for name in worker:
    check_program(worker[name], name, AMQP_WORKER)
    if worker[name].get("depends_on"):
        fail(f"worker: {name} has depends_on, but its broker is on another machine")
    # only its metrics, for the main machine's Prometheus, on loopback unless told
    if len(published(worker[name], 9100)) != len(worker[name].get("ports") or []):
        fail(f"worker: {name} publishes other ports than its metrics: {worker[name].get('ports')}")
    on_loopback(worker[name], f"worker {name}", 9100)
if "-" not in port_parts(published(worker["hasher"], 9100)[0])[1]:
    fail("worker: the hasher's metrics are not published on a range of ports (--scale hasher=N)")
has_state_volume(worker["crawler"], "worker crawler")
print("ok: services, health checks, dependencies, volumes and passwords as expected")
PY

# --- 3. no password, no service: the files must not render without them ---
for var in RABBITMQ_PASSWORD POSTGRES_PASSWORD GRAFANA_PASSWORD; do
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
