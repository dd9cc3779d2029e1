#!/usr/bin/env python3
"""local_config.py -- deploy/prometheus for processes on known addresses (no Compose).

  local_config.py --out DIR [--interval 5s] JOB=HOST:PORT...

writes into DIR (made if need be):

  prometheus.yml   deploy/prometheus/prometheus.yml without its dns_sd_configs
                   blocks (Docker's DNS names exist only in Compose), its global
                   scrape and evaluation interval set to --interval if given
  alerts.yml       deploy/prometheus/alerts.yml
  targets/JOB.yml  one file_sd file per job named, with its addresses; other
                   files of DIR/targets are removed (DIR is this script's)

JOB is one of crawler, hasher, archiver, live, search (an imgfeed program's
--metrics-listen), rabbitmq (RabbitMQ's rabbitmq_prometheus endpoint: the jobs
rabbitmq and rabbitmq-queues both scrape it) or postgres (the PostgreSQL
exporter); a JOB given more than once gets every address.  Files are written
whole and renamed into place, so a Prometheus already running on DIR picks up
new targets by itself (file_sd); send it SIGHUP for a new prometheus.yml.

  local_config.py --out run/prometheus --interval 5s crawler=127.0.0.1:9101 \\
      hasher=127.0.0.1:9102 rabbitmq=127.0.0.1:15692

deploy/quickstart.sh --monitor and the suite's monitoring test use it.
Standard library only.
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = ("crawler", "hasher", "archiver", "live", "search", "rabbitmq", "postgres")
ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def local_config(text, interval):
    """The text of prometheus.yml without dns_sd_configs blocks, intervals set."""
    out, skip = [], None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if skip is not None:
            if not line.strip():
                out.append(line)
                continue
            if indent > skip:
                continue
            skip = None
        if re.match(r"^\s*dns_sd_configs:\s*$", line):
            skip = indent
            continue
        out.append(line)
    text = "\n".join(out) + "\n"
    if "dns_sd_configs" in re.sub(r"(?m)#.*$", "", text):
        raise SystemExit("local_config.py: a dns_sd_configs block of prometheus.yml was not removed "
                         "(write it as `dns_sd_configs:` on a line of its own, its list indented below)")
    if interval:
        text, n = re.subn(r"(?m)^(  (?:scrape|evaluation)_interval:)\s*\S+", r"\1 " + interval, text)
        if n != 2:
            raise SystemExit("local_config.py: prometheus.yml has no global scrape_interval and "
                             "evaluation_interval to set")
    header = ("# Written by deploy/prometheus/local_config.py from deploy/prometheus/prometheus.yml:\n"
              "# edit that file (and run the script again), not this one.\n")
    return header + text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--out", required=True, help="the directory to write")
    ap.add_argument("--interval", help="scrape and rule evaluation interval (default: prometheus.yml's)")
    ap.add_argument("targets", nargs="+", metavar="JOB=HOST:PORT")
    args = ap.parse_args()
    if args.interval and not DURATION.match(args.interval):
        ap.error(f"--interval {args.interval!r} is not a Prometheus duration (5s, 1m)")
    jobs = {}
    for t in args.targets:
        job, _, address = t.partition("=")
        if job not in JOBS:
            ap.error(f"{t!r}: the job must be one of {', '.join(JOBS)}")
        m = ADDRESS.match(address)
        if not m or not 0 < int(m.group(2)) < 65536:
            ap.error(f"{t!r}: the address must be HOST:PORT")
        jobs.setdefault(job, [])
        if address not in jobs[job]:
            jobs[job].append(address)

    with open(os.path.join(HERE, "prometheus.yml"), encoding="utf-8") as f:
        config = local_config(f.read(), args.interval)
    with open(os.path.join(HERE, "alerts.yml"), encoding="utf-8") as f:
        alerts = f.read()
    targets = os.path.join(args.out, "targets")
    os.makedirs(targets, exist_ok=True)
    for job, addresses in jobs.items():
        write(os.path.join(targets, job + ".yml"), json.dumps([{"targets": addresses}], indent=2) + "\n")
    for name in os.listdir(targets):
        if name.endswith(".yml") and name[:-4] not in jobs:
            os.remove(os.path.join(targets, name))
    write(os.path.join(args.out, "alerts.yml"), alerts)
    write(os.path.join(args.out, "prometheus.yml"), config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
