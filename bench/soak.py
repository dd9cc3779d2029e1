#!/usr/bin/env python3
"""soak.py -- the parts of bench/soak.sh that are easier in Python.

  soak.py feed BASE SITE BOARDS FIRST_NOS RATE PER_THREAD OUT
      adds posts to the generated board of the fixture server at BASE (its
      /_control/chan/thread?...&add=K) at RATE posts a second until SIGTERM,
      ten at a time, to the threads in turn (board b0's first thread, b1's
      first, ..., b0's second, ...), each until it holds PER_THREAD posts
      (as a real board's threads stop at their bump limit), so that no
      thread grows without bound.  FIRST_NOS: each board's first thread
      number (comma-separated; the threads of a board are consecutive).
      Writes OUT (JSON: added, seconds, threads_used, exhausted, behind) at
      every tick and at the end.
  soak.py expected BASE SITE BOARDS OUT
      every post the fixture made on the site, from /_control/chan/info:
      OUT gets "b<k>.<no> thread|post" lines; prints "posts files".
  soak.py compare EXPECTED GOT
      GOT: "type id" lines of the archive.  Prints one line "rows distinct
      expected missing extra twice wrongtype" and exits 1 unless every
      expected post is a row exactly once, in its table, and no other.
  soak.py report WORK
      the RSS table and its verdicts, and the metrics against the archive
      (see soak.sh's top comment); prints them, exits 1 when a check fails.
"""
import http.client
import json
import os
import signal
import sys
import time
import urllib.parse


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("%s: %d %s" % (path, r.status, body[:200]))
    return json.loads(body)


def feed(base, site, boards, first_nos, rate, per_thread, out):
    boards, rate, per_thread = int(boards), float(rate), int(per_thread)
    first = [int(x) for x in first_nos.split(",")]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    conn = connect(base)
    nthreads = len(get(conn, "/_control/chan/info?site=%s&board=b0" % site)["threads"])
    slot, in_thread, added, t0 = 0, 0, 0, time.monotonic()
    state = {}

    def write(final=False):
        state.update(added=added, seconds=round(time.monotonic() - t0, 3), threads_used=min(slot + 1, boards * nthreads),
                     exhausted=slot >= boards * nthreads, final=final,
                     behind=max(0, int(rate * (time.monotonic() - t0)) - added))
        with open(out + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(out + ".tmp", out)

    while not stop:
        owed = int(rate * (time.monotonic() - t0)) - added
        while owed > 0 and not stop and slot < boards * nthreads:
            b, t = slot % boards, slot // boards
            k = min(10, owed, per_thread - 1 - in_thread)
            get(conn, "/_control/chan/thread?site=%s&board=b%d&no=%d&add=%d" % (site, b, first[b] + t, k))
            added, owed, in_thread = added + k, owed - k, in_thread + k
            if in_thread >= per_thread - 1:
                slot, in_thread = slot + 1, 0
        write()
        time.sleep(0.2)
    write(final=True)


def expected(base, site, boards, out):
    conn = connect(base)
    posts = files = 0
    with open(out, "w") as f:
        for b in range(int(boards)):
            for th in get(conn, "/_control/chan/info?site=%s&board=b%d" % (site, b))["threads"]:
                if th["deleted"]:
                    continue
                info = get(conn, "/_control/chan/info?site=%s&board=b%d&no=%d" % (site, b, th["no"]))
                for no in info["post_nos"]:
                    f.write("b%d.%d %s\n" % (b, no, "thread" if no == th["no"] else "post"))
                    posts += 1
                files += len(info["files"])
    print(posts, files)


def compare(expected_path, got_path):
    want = dict(line.split() for line in open(expected_path))
    seen, twice, wrong, extra = {}, 0, 0, 0
    rows = 0
    for line in open(got_path):
        typ, pid = line.split()
        rows += 1
        if pid in seen:
            twice += 1
        seen[pid] = typ
        if pid not in want:
            extra += 1
        elif want[pid] != typ:
            wrong += 1
    missing = sum(1 for p in want if p not in seen)
    print(rows, len(seen), len(want), missing, extra, twice, wrong)
    sys.exit(0 if (missing, extra, twice, wrong) == (0, 0, 0, 0) and rows == len(want) else 1)


def parse_prom(path):
    """{name: sum over its series} of a Prometheus text scrape."""
    out = {}
    for line in open(path):
        if not line.strip() or line[0] == "#":
            continue
        name = line.split("{")[0].split()[0]
        try:
            out[name] = out.get(name, 0.0) + float(line.rsplit(None, 1)[1])
        except ValueError:
            pass
    return out


def report(work):
    env = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(work, "report.env")))
    faults = env["FAULTS"] == "1"
    warmup = float(env["WARMUP_MINUTES"])
    tol_mb, tol_pct = float(env["RSS_TOL_MB"]), float(env["RSS_TOL_PCT"])
    rtol_mb, rtol_pct = float(env["RABBIT_TOL_MB"]), float(env["RABBIT_TOL_PCT"])
    failed = []

    # --- RSS: "minute seconds proc pid vmrss_kb vmhwm_kb" lines ---
    samples = {}
    for line in open(os.path.join(work, "rss")):
        m, t, proc, pid, rss, hwm = line.split()
        samples.setdefault(proc, []).append((float(m), int(pid), int(rss), int(hwm)))
    procs = sorted(samples, key=lambda p: (p.startswith("rabbit"), p))
    minutes = sorted({m for s in samples.values() for m, *_ in s})
    print("RSS (VmRSS MiB, VmHWM MiB in brackets) at each minute of the soak, per process incarnation:")
    head = "  %-16s" % "process" + "".join("%14s" % ("min %g" % round(m, 2)) for m in minutes)
    print(head)
    for p in procs:
        by = {m: (rss, hwm) for m, _, rss, hwm in samples[p]}
        print("  %-16s" % p + "".join("%14s" % ("%.1f [%.1f]" % (by[m][0] / 1024, by[m][1] / 1024) if m in by else "-")
                                      for m in minutes))
    feed_end = float(env["FEED_MINUTES"])
    print("  (the last column: after the drain, not judged)")
    print("RSS after warm-up (samples from minute %g, and a minute after an incarnation's first sample, to minute %g,"
          " split in two halves): the highest of the second half against the highest of the first; growth beyond"
          " max(%g MiB, %g%%) (imgfeed) or max(%g MiB, %g%%) (RabbitMQ nodes) is a leak's steady growth; a sawtooth"
          " (batches, the broker's WAL) stays within:" % (warmup, feed_end, tol_mb, tol_pct, rtol_mb, rtol_pct))
    judged = grew = 0
    for p in procs:
        born = samples[p][0][0]  # a restarted process or node warms up too (a node catches up with the others)
        after = [s for s in samples[p] if max(warmup, born + 1) <= s[0] <= feed_end]
        if len(after) < 2:
            print("  %-16s not judged: %d sample(s) after warm-up (a short run, or a killed incarnation)" % (p, len(after)))
            continue
        judged += 1
        mb, pct = (rtol_mb, rtol_pct) if p.startswith("rabbit") else (tol_mb, tol_pct)
        half = len(after) // 2
        verdicts = []
        for what, k in (("VmRSS", 2), ("VmHWM", 3)):
            a, z = max(s[k] for s in after[:half]) / 1024, max(s[k] for s in after[half:]) / 1024
            tol = max(mb, a * pct / 100)
            ok = z - a <= tol
            verdicts.append("%s %.1f -> %.1f MiB (%+.1f, tolerance %.1f): %s" % (what, a, z, z - a, tol, "flat" if ok else "GREW"))
            if not ok:
                failed.append("%s %s grew after warm-up" % (p, what))
                grew += 1
        print("  %-16s %s" % (p, "; ".join(verdicts)))
    print("RSS verdicts: %d incarnations judged, %d growths, %d not judged" % (judged, grew, len(procs) - judged))

    # --- metrics against the archive ---
    scrapes = {}
    for name in sorted(os.listdir(os.path.join(work, "scrapes"))):
        if name.endswith(".last.prom"):
            scrapes[name[: -len(".last.prom")]] = parse_prom(os.path.join(work, "scrapes", name))
    incs = [l.split() for l in open(os.path.join(work, "incarnations"))]
    rows_at_end = {}
    for line in open(os.path.join(work, "archiver_rows")):
        inc, rows = line.split()
        rows_at_end[inc] = int(rows)
    arch = {k: int(env[k]) for k in ("ARCHIVE_ROWS", "ARCHIVE_FILES", "EXPECTED_POSTS", "EXPECTED_FILES")}

    def total(stage_prefix, metric):
        return sum(s.get(metric, 0) for inc, s in scrapes.items() if inc.split("#")[0].startswith(stage_prefix))

    print("Metrics (the last scrape of each incarnation: at the end, or right before its kill -9), summed over incarnations:")
    unscraped = [i[0] for i in incs if i[0] not in scrapes]
    if unscraped:
        print("  never scraped (no metrics): " + ", ".join(unscraped))
        failed.append("incarnations never scraped: " + ", ".join(unscraped))
    for inc in sorted(scrapes):
        s = scrapes[inc]
        keys = [k for k in ("imgfeed_items_received_total", "imgfeed_items_published_total",
                            "imgfeed_hasher_images_hashed_total", "imgfeed_archiver_rows_written_total",
                            "imgfeed_archiver_rows_replaced_total", "imgfeed_archiver_rows_unchanged_total",
                            "imgfeed_dead_lettered_total", "imgfeed_broker_reconnects_total",
                            "imgfeed_broker_failovers_total", "imgfeed_database_reconnects_total") if k in s]
        print("  %-12s %s" % (inc, ", ".join("%s %d" % (k.replace("imgfeed_", "").replace("_total", ""), s[k]) for k in keys)))

    # The archiver, incarnation by incarnation: rows it inserted (written -
    # replaced) against the archive's growth over its life (one archiver
    # writes; the archive is counted when it was killed, before the next
    # started, and at the end).
    prev = 0
    print("  archiver: rows inserted (rows_written - rows_replaced) per incarnation against the archive's growth while it ran:")
    arch_incs = [i[0] for i in incs if i[0].startswith("archiver#")]
    for inc in arch_incs:
        grown = rows_at_end.get(inc)
        s = scrapes.get(inc, {})
        ins = int(s.get("imgfeed_archiver_rows_written_total", 0) - s.get("imgfeed_archiver_rows_replaced_total", 0))
        if grown is None:
            print("    %s: %d inserted; the archive was not counted at its end" % (inc, ins))
            failed.append("%s: archive not counted" % inc)
            continue
        grown_by = grown - prev
        prev = grown
        last = inc == arch_incs[-1]
        if ins == grown_by:
            verdict = "equal"
        elif ins < grown_by and not last:
            verdict = ("%d rows committed after its last scrape, before its kill -9 (or a commit whose answer a"
                       " PostgreSQL kill lost): not a mismatch" % (grown_by - ins))
        else:
            verdict = "MISMATCH"
            failed.append("%s counted %d rows inserted, the archive grew by %d" % (inc, ins, grown_by))
        print("    %s: counted %d, the archive grew by %d: %s" % (inc, ins, grown_by, verdict))
    ins_total = int(total("archiver", "imgfeed_archiver_rows_written_total") - total("archiver", "imgfeed_archiver_rows_replaced_total"))
    print("  archiver rows inserted, all incarnations: %d; archive rows: %d" % (ins_total, arch["ARCHIVE_ROWS"]))

    hashed = int(total("hasher", "imgfeed_hasher_images_hashed_total"))
    h_in = int(total("hasher", "imgfeed_items_received_total"))
    h_out = int(total("hasher", "imgfeed_items_published_total"))
    c_out = int(total("crawler", "imgfeed_items_published_total"))
    a_in = int(total("archiver", "imgfeed_items_received_total"))
    dead = int(sum(s.get("imgfeed_dead_lettered_total", 0) for s in scrapes.values()))
    lines = [("crawler items published", c_out, arch["ARCHIVE_ROWS"], "archive rows"),
             ("hasher items received", h_in, arch["ARCHIVE_ROWS"], "archive rows"),
             ("hasher items published", h_out, arch["ARCHIVE_ROWS"], "archive rows"),
             ("hasher images hashed", hashed, arch["ARCHIVE_FILES"], "archive _img entries with a sha1"),
             ("archiver items received", a_in, arch["ARCHIVE_ROWS"], "archive rows")]
    print("  at-least-once counters against the archive (with faults a count may exceed it by the redeliveries and"
          " republishes after a kill or a lost link, and fall short by what a killed incarnation did after its last scrape):")
    for what, n, want, of in lines:
        if n == want:
            v = "equal"
        elif faults:
            v = "%+d (faults)" % (n - want)
        else:
            v = "MISMATCH (%+d, a run without faults)" % (n - want)
            failed.append("%s %d, %s %d" % (what, n, of, want))
        print("    %-26s %8d   %s %d: %s" % (what, n, of, want, v))
    print("    dead-lettered (all processes): %d" % dead)
    if dead:
        failed.append("%d items dead-lettered" % dead)
    if failed:
        print("REPORT CHECKS FAILED: " + "; ".join(failed))
        sys.exit(1)
    print("report checks: passed")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"feed": feed, "expected": expected, "compare": compare, "report": report}[cmd](*args)
