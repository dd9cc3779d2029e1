#!/usr/bin/env bash
# check_rules.sh ROOT -- deploy/prometheus and deploy/grafana checked offline:
#
#   - `promtool check config` on deploy/prometheus/prometheus.yml (as Compose
#     runs it) and on the configuration local_config.py makes from it for
#     loopback targets (as deploy/quickstart.sh --monitor runs it);
#   - `promtool check rules` on deploy/prometheus/alerts.yml;
#   - every alert has a severity label, a summary and a description, and in
#     deploy/prometheus/tests/*.yml a case where it fires and one where it
#     does not;
#   - `promtool test rules` on deploy/prometheus/tests/*.yml;
#   - the dashboard's structure (tests/monitoring/dashboard_queries.py without
#     a Prometheus) and Grafana's provisioning files.
#
# Needs Debian's promtool (package prometheus; tests/run.sh installs it) and
# /usr/bin/python3 with yaml (python3-yaml, which docker-compose depends on).
# Prints what it checks; exits non-zero on the first failure.
set -uo pipefail

ROOT=${1:?usage: check_rules.sh ROOT}
PROM=$ROOT/deploy/prometheus
GRAFANA=$ROOT/deploy/grafana

fail() { echo "check_rules: FAIL: $*" >&2; exit 1; }

PROMTOOL=$(command -v promtool) ||
    fail "promtool not found: apt-get install prometheus (tests/run.sh installs it)"
/usr/bin/python3 -c 'import yaml' 2>/dev/null ||
    fail "/usr/bin/python3 without yaml: apt-get install python3-yaml"
for f in "$PROM/prometheus.yml" "$PROM/alerts.yml" "$PROM/local_config.py" "$GRAFANA/dashboards/imgfeed.json"; do
    [[ -f $f ]] || fail "$f is missing"
done
shopt -s nullglob
TESTS=("$PROM"/tests/*.yml)
((${#TESTS[@]})) || fail "no rule tests in $PROM/tests/"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check_rules.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# run DESCRIPTION COMMAND...: its output shown indented, a failure fatal.
run() {
    local what=$1
    shift
    if "$@" >"$TMP/out" 2>&1; then
        sed 's/^/#   /' "$TMP/out"
        echo "ok: $what"
    else
        cat "$TMP/out" >&2
        fail "$what"
    fi
}

# --- 1. the configuration, as Compose and as the quickstart run it ---
# (promtool warns that the targets files of the imgfeed jobs do not exist:
# in Compose those jobs find their targets by DNS.)
run "promtool check config deploy/prometheus/prometheus.yml" "$PROMTOOL" check config "$PROM/prometheus.yml"
run "local_config.py makes a configuration for loopback targets" /usr/bin/python3 "$PROM/local_config.py" \
    --out "$TMP/local" --interval 5s crawler=127.0.0.1:9101 hasher=127.0.0.1:9102 archiver=127.0.0.1:9103 \
    live=127.0.0.1:9104 search=127.0.0.1:9105 rabbitmq=127.0.0.1:15692 postgres=127.0.0.1:9187
grep -v "^[[:space:]]*#" "$TMP/local/prometheus.yml" | grep -q dns_sd_configs && fail "local_config.py left a dns_sd_configs block"
run "promtool check config on local_config.py's configuration" "$PROMTOOL" check config "$TMP/local/prometheus.yml"

# --- 2. the rules ---
run "promtool check rules deploy/prometheus/alerts.yml" "$PROMTOOL" check rules "$PROM/alerts.yml"

# --- 3. every alert: severity, summary, description; a case that fires, one that does not ---
run "every alert has a severity, a summary, a description, a firing and a quiet test case" \
    /usr/bin/python3 - "$PROM/alerts.yml" "${TESTS[@]}" <<'PY'
import sys, yaml

rules = yaml.safe_load(open(sys.argv[1]))
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
problems = []
names = [a["alert"] for a in alerts]
for n in sorted(set(n for n in names if names.count(n) > 1)):
    problems.append(f"{n}: two alerts of that name")
for a in alerts:
    if (a.get("labels") or {}).get("severity") not in ("critical", "warning"):
        problems.append(f"{a['alert']}: no severity label critical or warning")
    for key in ("summary", "description"):
        if not (a.get("annotations") or {}).get(key, "").strip():
            problems.append(f"{a['alert']}: no {key} annotation")
fires, quiet = set(), set()
for path in sys.argv[2:]:
    for test in yaml.safe_load(open(path)).get("tests") or []:
        for case in test.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
for n in names:
    if n not in fires:
        problems.append(f"{n}: no test case where it fires")
    if n not in quiet:
        problems.append(f"{n}: no test case where it does not fire")
for n in sorted((fires | quiet) - set(names)):
    problems.append(f"{n}: tested, but no such alert")
for p in problems:
    print(p, file=sys.stderr)
print(f"{len(alerts)} alerts, each with both cases" if not problems else f"{len(problems)} problems")
sys.exit(1 if problems else 0)
PY

# --- 4. the rule tests ---
run "promtool test rules deploy/prometheus/tests/*.yml" "$PROMTOOL" test rules "${TESTS[@]}"

# --- 5. Grafana: the dashboard and the provisioning ---
run "the dashboard's structure (dashboard_queries.py)" /usr/bin/python3 "$ROOT/tests/monitoring/dashboard_queries.py" \
    "$GRAFANA/dashboards/imgfeed.json"
run "Grafana's provisioning files" /usr/bin/python3 - "$GRAFANA" <<'PY'
import json, os, sys, yaml

root = sys.argv[1]
ds = yaml.safe_load(open(os.path.join(root, "provisioning/datasources/prometheus.yml")))
sources = ds.get("datasources") or []
prom = [s for s in sources if s.get("type") == "prometheus"]
assert ds.get("apiVersion") == 1 and len(prom) == 1, "datasources: one Prometheus data source, apiVersion 1"
assert prom[0].get("url") and prom[0].get("uid"), "datasources: the Prometheus data source has no url or uid"
dp = yaml.safe_load(open(os.path.join(root, "provisioning/dashboards/imgfeed.yml")))
providers = dp.get("providers") or []
assert dp.get("apiVersion") == 1 and providers, "dashboards: apiVersion 1 and a provider"
for p in providers:
    assert p.get("type") == "file" and (p.get("options") or {}).get("path"), "dashboards: a file provider with a path"
dash = json.load(open(os.path.join(root, "dashboards/imgfeed.json")))
print(f"data source {prom[0]['name']} ({prom[0]['url']}), dashboard provider {providers[0]['name']} "
      f"({providers[0]['options']['path']}), dashboard uid {dash['uid']}")
PY
echo "check_rules: all passed"
