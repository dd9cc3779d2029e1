#!/usr/bin/python3
"""metrics_doc.py -- docs/metrics.md's tables, made from and checked against what the programs expose.

Each argument PROGRAM=FILE names a program ("imgfeed-crawler") and a file holding
one scrape of its GET /metrics.  The tables of docs/metrics.md list every family:
one section "Every program" for those all the given programs expose, and one
section per program ("## imgfeed-crawler") for its own; a row is

  | `name` | type | labels | meaning |

where labels are the label names the scrape's samples carry (le excepted) and the
meaning is the family's HELP text, word for word.

  metrics_doc.py --write DOC PROGRAM=FILE...   rewrite the tables between the
                                               markers <!-- metrics:begin --> and
                                               <!-- metrics:end --> of DOC
  metrics_doc.py --check DOC PROGRAM=FILE...   exit 1, listing every difference,
                                               unless DOC's tables are exactly those
                                               (a family documented and not exposed,
                                               exposed and not documented, or of
                                               another type, labels or meaning)

Standard library only (Debian's python3).
"""
import re
import sys

BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"
COMMON = "Every program"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def parse_scrape(text):
    """{family: {"type", "help", "labels": set}} of one exposition."""
    fams, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            fams.setdefault(name, {"labels": set()})["help"] = help_text.replace("\\n", "\n").replace("\\\\", "\\")
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            fams.setdefault(name, {"labels": set()})["type"] = kind
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if not m:
                continue
            name = m.group(1)
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[: -len(suffix)] if name.endswith(suffix) else None
                if base and types.get(base) == "histogram":
                    name = base
                    break
            labels = {k for k in LABEL.findall(m.group(3) or "") if k != "le"}
            fams.setdefault(name, {"labels": set()})["labels"] |= labels
    return fams


def row(name, fam):
    labels = ", ".join(sorted(fam["labels"])) or "-"
    return "| `%s` | %s | %s | %s |" % (name, fam.get("type", "?"), labels, fam.get("help", "").replace("|", "\\|"))


def tables(scrapes):
    """The Markdown between the markers, from {program: families}."""
    programs = list(scrapes)
    common = set.intersection(*(set(f) for f in scrapes.values()))
    out = []

    def section(title, names, fams):
        out.append("### %s\n" % title)
        out.append("| metric | type | labels | meaning |")
        out.append("|---|---|---|---|")
        for name in sorted(names):
            out.append(row(name, fams(name)))
        out.append("")

    def merged(name):
        fam = {"labels": set()}
        for f in scrapes.values():
            fam["labels"] |= f[name]["labels"]
            fam.setdefault("type", f[name].get("type"))
            fam.setdefault("help", f[name].get("help"))
        return fam

    section(COMMON, common, merged)
    for p in programs:
        section(p, set(scrapes[p]) - common, lambda n, p=p: scrapes[p][n])
    return "\n".join(out)


def read_doc_tables(doc):
    """{section: {name: row text}} of the tables between the markers."""
    text = open(doc, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        sys.exit("%s: no %s ... %s markers" % (doc, BEGIN, END))
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    sections, cur = {}, None
    for line in body.splitlines():
        if line.startswith("### "):
            cur = sections.setdefault(line[4:].strip(), {})
        elif line.startswith("| `") and cur is not None:
            cur[line.split("`")[1]] = line.strip()
    return sections


def load(args):
    scrapes = {}
    for a in args:
        program, _, path = a.partition("=")
        if not path:
            sys.exit("expected PROGRAM=FILE, got %r" % a)
        scrapes[program] = parse_scrape(open(path, encoding="utf-8").read())
    if not scrapes:
        sys.exit("no scrapes given")
    return scrapes


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("--write", "--check"):
        sys.exit(__doc__)
    mode, doc, scrapes = sys.argv[1], sys.argv[2], load(sys.argv[3:])
    want = tables(scrapes)
    if mode == "--write":
        text = open(doc, encoding="utf-8").read()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        open(doc, "w", encoding="utf-8").write(head + BEGIN + "\n\n" + want + "\n" + END + tail)
        return 0
    have = read_doc_tables(doc)
    expected = {}
    cur = None
    for line in want.splitlines():
        if line.startswith("### "):
            cur = expected.setdefault(line[4:].strip(), {})
        elif line.startswith("| `"):
            cur[line.split("`")[1]] = line
    problems = []
    for sec in sorted(set(have) | set(expected)):
        h, e = have.get(sec, {}), expected.get(sec, {})
        if sec not in have:
            problems.append("section %r is not in %s" % (sec, doc))
        elif sec not in expected:
            problems.append("section %r of %s names no program that was scraped" % (sec, doc))
        for name in sorted(set(h) | set(e)):
            if name not in e:
                problems.append("%s: %s is documented but not exposed" % (sec, name))
            elif name not in h:
                problems.append("%s: %s is exposed but not documented:\n    %s" % (sec, name, e[name]))
            elif h[name] != e[name]:
                problems.append("%s: %s differs:\n    doc:     %s\n    exposed: %s" % (sec, name, h[name], e[name]))
    for p in problems:
        print(p)
    if problems:
        print("(after a change of the metrics, rewrite the tables: IMGFEED_WRITE_METRICS_DOC=1 ctest -R monitoring)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
