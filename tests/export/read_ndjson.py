#!/usr/bin/python3
"""read_ndjson.py -- reads an `imgfeed-export ndjson` folder back and checks it
against the archive's rows.

    read_ndjson.py OUT EXPECTED [--partial]

EXPECTED holds the archive's rows as the test read them with SQL, one a line:
TABLE <tab> YYYY-MM-DD (archived_on in UTC) <tab> data::text.  Every part
OUT/<table>/date=D/part-*.ndjson.zst is read twice, as a user would:

  - with pandas (Debian's python3-pandas; compression='zstd' needs
    python3-zstandard): pd.read_json(lines=True), whose frame must equal the
    frame pandas makes of the same rows' SQL text;
  - line by line through zstandard and json.loads: each line must equal its
    SQL row as JSON, under the right table and day, and every row must come
    exactly once.

Each day's _imgfeed.json must count the rows and list the parts that are
there.  No hidden temporary file may be left.  With --partial (after a kill)
the rows present must be right, but rows may be missing and the hidden
folders of the interrupted day may be there.

Prints one JSON line {"rows", "parts", "days", "tables", "pandas_refused"}
(parts pandas cannot read: integers beyond 64 bits) and exits 0; on a
mismatch prints what differs and exits 1.
"""
import io
import json
import os
import sys

import pandas as pd
import zstandard

PANDAS_OPTS = dict(lines=True, dtype=False, convert_dates=False)


def fail(msg):
    print("read_ndjson: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    partial = "--partial" in sys.argv
    out, expected_path = args
    expected = {}  # (table, id) -> (day, text)
    with open(expected_path, encoding="utf-8") as f:
        for line in f:
            table, day, text = line.rstrip("\n").split("\t", 2)
            key = (table, json.loads(text)["_id"])
            if key in expected:
                fail("EXPECTED holds %r twice" % (key,))
            expected[key] = (day, text)
    seen = set()
    parts = days = 0
    tables = set()
    refused = []
    for root, dirs, files in os.walk(out):
        if partial:
            break  # a killed run leaves hidden folders; the next run removes them
        for name in dirs + files:
            if name.startswith(".") and name != ".imgfeed-export.lock":
                fail("hidden leftover %s in %s" % (name, root))
    for table in sorted(os.listdir(out)):
        tdir = os.path.join(out, table)
        if table.startswith(".") or not os.path.isdir(tdir):
            continue
        tables.add(table)
        for dname in sorted(os.listdir(tdir)):
            if dname.startswith(".") and partial:
                continue
            if not dname.startswith("date="):
                fail("unexpected %s in %s" % (dname, tdir))
            day = dname[5:]
            ddir = os.path.join(tdir, dname)
            with open(os.path.join(ddir, "_imgfeed.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            listed = [p["name"] for p in manifest["parts"]]
            present = sorted(n for n in os.listdir(ddir) if n.startswith("part-"))
            if listed != present:
                fail("%s: manifest lists %s, folder holds %s" % (ddir, listed, present))
            if manifest["table"] != table or manifest["date"] != day:
                fail("%s: manifest names %s/%s" % (ddir, manifest["table"], manifest["date"]))
            days += 1
            day_rows = 0
            for p in manifest["parts"]:
                path = os.path.join(ddir, p["name"])
                if os.path.getsize(path) != p["bytes"]:
                    fail("%s: %d bytes, manifest says %d" % (path, os.path.getsize(path), p["bytes"]))
                parts += 1
                with open(path, "rb") as f:
                    text = zstandard.ZstdDecompressor().stream_reader(f).read().decode("utf-8")
                if not text.endswith("\n"):
                    fail("%s does not end with a newline" % path)
                lines = text[:-1].split("\n")
                if len(lines) != p["rows"]:
                    fail("%s: %d lines, manifest says %d" % (path, len(lines), p["rows"]))
                ids = []
                for ln in lines:
                    obj = json.loads(ln)
                    key = (table, obj["_id"])
                    if key not in expected:
                        fail("%s: row %r is not in the archive" % (path, key))
                    if key in seen:
                        fail("%s: row %r comes twice" % (path, key))
                    seen.add(key)
                    eday, etext = expected[key]
                    if eday != day:
                        fail("%s: row %r is under day %s, archived on %s" % (path, key, day, eday))
                    if obj != json.loads(etext):
                        fail("%s: row %r differs:\n  file %s\n  sql  %s" % (path, key, ln, etext))
                    ids.append(obj["_id"])
                day_rows += len(lines)
                # pandas reads the part as it is, and the SQL rows the same way
                try:
                    got = pd.read_json(path, compression="zstd", **PANDAS_OPTS)
                except ValueError as e:
                    if "too big" not in str(e):
                        raise
                    refused.append(path)
                    continue
                want = pd.read_json(io.StringIO("\n".join(expected[(table, i)][1] for i in ids) + "\n"),
                                    **PANDAS_OPTS)
                if len(got) != len(lines) or list(got["_id"]) != ids:
                    fail("%s: pandas read %d rows, ids %s..." % (path, len(got), list(got["_id"])[:3]))
                pd.testing.assert_frame_equal(got, want, check_like=True)
            if day_rows != manifest["rows"]:
                fail("%s: %d rows, manifest says %d" % (ddir, day_rows, manifest["rows"]))
    if not partial:
        missing = sorted(set(expected) - seen)
        if missing:
            fail("%d archive rows are missing from the export, e.g. %r" % (len(missing), missing[:3]))
    print(json.dumps({"rows": len(seen), "parts": parts, "days": days, "tables": len(tables),
                      "pandas_refused": [os.path.relpath(p, out) for p in refused]}))


if __name__ == "__main__":
    main()
