#!/usr/bin/python3
"""dashboard_queries.py -- the Grafana dashboard of deploy/grafana, parsed, checked and queried.

  dashboard_queries.py [DASHBOARD] [--window 1m]
        check the dashboard's structure and print every panel query, its Grafana
        variables expanded
  dashboard_queries.py [DASHBOARD] --prometheus URL [--window 1m]
        the same, then run every query against Prometheus' HTTP API
        (GET URL/api/v1/query) and fail, listing each one, if a query errors or
        returns no data

DASHBOARD defaults to deploy/grafana/dashboards/imgfeed.json of this repository.

The structure checked: a uid, a title and a list of panels; the variables
"datasource" (of type datasource) and "site" (label_values(...) of
imgfeed_items_published_total); for every panel, rows included (also those
inside a collapsed row), a unique integer id and a gridPos inside the 24
columns, no two panels on the same cells; for every panel but rows, a
datasource and at least one target, each with a refId unique in its panel and a
non-empty expr.  A query may use only the variables $site (inside a =~ matcher:
it may hold several values), $__rate_interval and $__interval (and $__range).

Expanded as Grafana would with every site selected: $site becomes .*, and
$__rate_interval, $__interval and $__range become --window (1m by default: at
least four scrapes at Prometheus' default interval, as Grafana's
$__rate_interval is).  A result whose every value is NaN (a quantile of a
histogram without observations in the window) counts as data, and is noted.

Exit status: 0 if all is well, 1 on a structural problem or a failing query,
2 on bad usage.  Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DASHBOARD = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "grafana", "dashboards", "imgfeed.json"))
GRID_COLUMNS = 24
SITE_QUERY = re.compile(r"^label_values\(\s*imgfeed_items_published_total\s*,\s*site\s*\)$")
# $name, ${name} or ${name:format}, [[name]]
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
INTERVALS = ("__rate_interval", "__interval", "__range")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def all_panels(panels):
    """Every panel, rows and the panels of collapsed rows included, in order."""
    for p in panels:
        yield p
        if p.get("type") == "row":
            yield from all_panels(p.get("panels") or [])


def check_structure(dash):
    """The list of problems of the dashboard (empty if none)."""
    problems = []
    if not isinstance(dash, dict):
        return ["the dashboard is not a JSON object"]
    for key in ("uid", "title"):
        if not isinstance(dash.get(key), str) or not dash.get(key):
            problems.append(f"the dashboard has no {key}")
    panels = dash.get("panels")
    if not isinstance(panels, list) or not panels:
        return problems + ["the dashboard has no panels"]

    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or [] if isinstance(v, dict)}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append('no variable "datasource" of type datasource (query "prometheus")')
    site = variables.get("site")
    if not site:
        problems.append('no variable "site"')
    else:
        q = site.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not isinstance(q, str) or not SITE_QUERY.match(q.strip()):
            problems.append(f'variable "site": query {q!r}, expected label_values(imgfeed_items_published_total, site)')
        if not site.get("multi") or not site.get("includeAll"):
            problems.append('variable "site" must allow several values and All (multi, includeAll)')

    ids, cells = {}, {}
    for p in all_panels(panels):
        title = p.get("title") or "(untitled)"
        pid = p.get("id")
        where = f'panel {pid!r} "{title}"'
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.append(f"{where}: no integer id")
        elif pid in ids:
            problems.append(f'{where}: id {pid} is also the id of "{ids[pid]}"')
        else:
            ids[pid] = title
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: no gridPos with integer h, w, x, y")
        elif g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > GRID_COLUMNS:
            problems.append(f"{where}: gridPos {g} is not inside the {GRID_COLUMNS} columns")
        elif not (p.get("type") == "row" and p.get("collapsed")):
            for y in range(g["y"], g["y"] + g["h"]):
                for x in range(g["x"], g["x"] + g["w"]):
                    if (x, y) in cells:
                        problems.append(f'{where}: overlaps "{cells[(x, y)]}" at column {x}, row {y}')
                        break
                    cells[(x, y)] = title
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
        if not p.get("type"):
            problems.append(f"{where}: no type")
        pds = p.get("datasource")
        if not isinstance(pds, dict) or not pds.get("uid"):
            problems.append(f"{where}: no datasource (with a uid)")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problems.append(f"{where}: no targets")
            continue
        refs = set()
        for i, t in enumerate(targets):
            ref = t.get("refId") if isinstance(t, dict) else None
            if not ref:
                problems.append(f"{where}: target {i} has no refId")
            elif ref in refs:
                problems.append(f"{where}: refId {ref} twice")
            refs.add(ref)
            expr = t.get("expr") if isinstance(t, dict) else None
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: target {ref or i} has no expr")
                continue
            problems += [f"{where}, {ref}: {m}" for m in check_variables(expr)]
    return problems


def check_variables(expr):
    """Problems with the Grafana variables of EXPR."""
    problems = []
    site_uses = 0
    for m in VARIABLE.finditer(expr):
        name = m.group(1) or m.group(2) or m.group(3)
        if name == "site":
            site_uses += 1
        elif name not in INTERVALS:
            problems.append(f"unknown variable ${name}")
    matched = len(re.findall(r'=~\s*"(\$site|\$\{site\}|\[\[site\]\])"', expr))
    if site_uses != matched:
        problems.append('$site outside a matcher of the form label=~"$site" (it may hold several values)')
    return problems


def expand(expr, window):
    """EXPR as Grafana sends it with every site selected and intervals of WINDOW."""
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name == "site":
            return ".*"
        if name in INTERVALS:
            return window
        return m.group(0)
    return VARIABLE.sub(one, expr)


def queries(dash, window):
    """(panel title, refId, expanded expr) of every target of every panel."""
    out = []
    for p in all_panels(dash.get("panels") or []):
        if p.get("type") == "row":
            continue
        for t in p.get("targets") or []:
            if isinstance(t, dict) and isinstance(t.get("expr"), str) and t["expr"].strip():
                out.append((p.get("title") or "(untitled)", t.get("refId") or "?", expand(t["expr"], window)))
    return out


def run_query(base, expr, timeout):
    """(error or None, number of series, whether every value is NaN)."""
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except (ValueError, OSError):
            return f"HTTP {e.code}", 0, False
    except (OSError, ValueError) as e:
        return f"no answer from {base}: {e}", 0, False
    if body.get("status") != "success":
        return f"{body.get('errorType', 'error')}: {body.get('error', body)}", 0, False
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return None, 1, str(result[1]).lower() == "nan"
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        return f"unexpected result type {kind!r}", 0, False
    values = [s["value"][1] for s in result if "value" in s] + [v[1] for s in result for v in s.get("values", [])]
    return None, len(result), bool(values) and all(str(v).lower() == "nan" for v in values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboard", nargs="?", default=DEFAULT_DASHBOARD, help="the dashboard JSON (default: %(default)s)")
    ap.add_argument("--prometheus", metavar="URL", help="run every query against this Prometheus (http://HOST:PORT)")
    ap.add_argument("--window", default="1m", help="what $__rate_interval, $__interval and $__range become (default 1m)")
    ap.add_argument("--timeout", type=float, default=20, help="seconds for each query (default 20)")
    args = ap.parse_args()
    if not DURATION.match(args.window):
        ap.error(f"--window {args.window!r} is not a Prometheus duration (1m, 30s, 1h30m)")

    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"dashboard_queries: cannot read {args.dashboard}: {e}", file=sys.stderr)
        return 1
    problems = check_structure(dash)
    if problems:
        print(f"dashboard_queries: {args.dashboard}: {len(problems)} problems:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    qs = queries(dash, args.window)
    npanels = sum(1 for p in all_panels(dash["panels"]) if p.get("type") != "row")
    print(f"dashboard_queries: {args.dashboard}: structure ok, {npanels} panels, {len(qs)} queries")

    if not args.prometheus:
        for title, ref, expr in qs:
            print(f"{title} [{ref}]\n    {expr}")
        return 0

    failures, nan_only = [], []
    for title, ref, expr in qs:
        error, n, all_nan = run_query(args.prometheus, expr, args.timeout)
        if error:
            failures.append((title, ref, expr, error))
        elif n == 0:
            failures.append((title, ref, expr, "no data"))
        else:
            if all_nan:
                nan_only.append((title, ref))
            print(f"ok: {title} [{ref}]: {n} series{' (all NaN)' if all_nan else ''}")
    for title, ref in nan_only:
        print(f"note: {title} [{ref}] returns only NaN (nothing observed in the last {args.window})")
    if failures:
        print(f"dashboard_queries: {len(failures)} of {len(qs)} queries fail against {args.prometheus}:",
              file=sys.stderr)
        for title, ref, expr, error in failures:
            print(f"  {title} [{ref}]: {error}\n      {expr}", file=sys.stderr)
        return 1
    print(f"dashboard_queries: all {len(qs)} queries return data from {args.prometheus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
