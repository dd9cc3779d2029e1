# plot.py -- imgfeed-report's figures, drawn by matplotlib from report.json.
#
# imgfeed-report (report/plot.c) runs this with Debian's python3, the script
# on standard input: python3 -I - REPORT_JSON OUTDIR.  It draws every figure
# of the page from the numbers of report.json -- the C program counts, this
# only draws -- and writes OUTDIR/<name>.svg and OUTDIR/<name>.png for each
# name of FIGURES.  SVG text is drawn as paths (svg.fonttype 'path'), so a
# figure looks the same on every machine and needs no font; ids are salted
# per figure so that figures inlined into one page do not share ids.
# Labels are shown made safe (control characters as \xNN, at most 32
# characters); report.json and the page's tables keep them whole.
# Exit status: 0; 3 when matplotlib is missing; 1 on any other failure.
import datetime
import json
import math
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.dates as mdates
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
except ImportError as e:
    sys.stderr.write("the plotter needs matplotlib (Debian: apt-get install python3-matplotlib): %s\n" % e)
    sys.exit(3)

ACCENT = "#1f4e79"
SPLIT_COLOURS = {"train": "#1f4e79", "val": "#5b9bd5", "test": "#a9c6e8", "other": "#bfbfbf"}
SERIES = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#843c0c", "#375623",
          "#595959", "#d6a3ff"]
CHANNELS = [("R", "#c00000"), ("G", "#00803c"), ("B", "#1f4eb4")]

plt.rcParams.update({
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#444444",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "svg.fonttype": "path",
    "text.parse_math": False,
    "text.usetex": False,
    "figure.dpi": 100,
})


def show(label, width=32):
    """A label as the figures show it: control characters escaped, cut."""
    if label == "":
        return "(none)"
    out = []
    for ch in label:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or o in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= o < 0xE000:
            out.append("\\x%02x" % o if o < 0x100 else "\\u%04x" % o)
        else:
            out.append(ch)
    s = "".join(out)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def human_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.3g %s" % (n, unit))
        n /= 1024.0


def empty(ax, text="no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def top_labels(labels, n):
    keys = sorted(labels, key=lambda k: (-labels[k]["images"], k))
    return keys[:n], keys[n:]


def fig_labels(r, fig):
    ax = fig.add_subplot(111)
    labels = r.get("labels", {})
    dataset = r.get("source", {}).get("kind") == "dataset"
    ax.set_title("Images per label" + (" and split" if dataset else ""))
    if not labels:
        return empty(ax)
    shown, rest = top_labels(labels, 25)
    names = [show(k) for k in shown]
    rows = [labels[k] for k in shown]
    if rest:
        names.append("(%d other labels)" % len(rest))
        other = {"images": sum(labels[k]["images"] for k in rest)}
        for sp in SPLIT_COLOURS:
            other[sp] = sum(labels[k].get(sp, 0) for k in rest)
        rows.append(other)
    y = list(range(len(names)))[::-1]
    if dataset:
        left = [0] * len(rows)
        for sp, col in SPLIT_COLOURS.items():
            vals = [row.get(sp, 0) for row in rows]
            if not any(vals):
                continue
            ax.barh(y, vals, left=left, color=col, label=sp, height=0.7)
            left = [a + b for a, b in zip(left, vals)]
        ax.legend(frameon=False, loc="lower right")
    else:
        ax.barh(y, [row["images"] for row in rows], color=ACCENT, height=0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlabel("images")
    ax.grid(axis="y", visible=False)


def fig_per_day(r, fig):
    ax = fig.add_subplot(111)
    pd = r.get("per_day", {})
    sites = pd.get("sites", {})
    ax.set_title("%s per day per site (UTC)" % pd.get("unit", "items").capitalize())
    days = sorted({d for s in sites.values() for d in s if d != "unknown"})
    if not days:
        return empty(ax)
    first = datetime.date.fromisoformat(days[0])
    span = (datetime.date.fromisoformat(days[-1]) - first).days + 1
    totals = sorted(sites, key=lambda s: (-sum(sites[s].values()), s))
    for i, site in enumerate(totals[:10]):
        # every day of the span, 0 where the site had nothing
        if span <= 4000:
            counts = [0] * span
            for d, n in sites[site].items():
                if d != "unknown":
                    counts[(datetime.date.fromisoformat(d) - first).days] = n
            x = [first + datetime.timedelta(days=k) for k in range(span)]
        else:  # years apart (a wrong clock): the days that have items only
            pts = sorted((datetime.date.fromisoformat(d), n) for d, n in sites[site].items() if d != "unknown")
            x, counts = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(x, counts, marker="o" if span <= 60 else None, markersize=3, linewidth=1.4,
                color=SERIES[i % len(SERIES)], label=show(site))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=12))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    for t in ax.get_xticklabels():
        t.set_rotation(30)
        t.set_ha("right")
    ax.set_ylabel(pd.get("unit", "items"))
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, fontsize=8)


def fig_formats(r, fig):
    formats = r.get("formats", {})
    a1 = fig.add_subplot(121)
    a2 = fig.add_subplot(122)
    a1.set_title("Images per format")
    a2.set_title("Bytes per format (MiB)")
    if not formats:
        empty(a1)
        return empty(a2)
    keys = sorted(formats, key=lambda k: (-formats[k]["images"], k))
    x = range(len(keys))
    a1.bar(x, [formats[k]["images"] for k in keys], color=ACCENT)
    a1.yaxis.set_major_locator(MaxNLocator(integer=True))
    a2.bar(x, [formats[k]["bytes"] / 1048576.0 for k in keys], color="#5b9bd5")
    for a in (a1, a2):
        a.set_xticks(list(x))
        a.set_xticklabels([show(k, 12) for k in keys])
        a.grid(axis="x", visible=False)


def fig_sizes(r, fig):
    ax = fig.add_subplot(111)
    s = r.get("sizes", {})
    edges, counts = s.get("edges", []), s.get("counts", [])
    ax.set_title("File sizes")
    if not any(counts):
        return empty(ax)
    names = []
    for i, e in enumerate(edges):
        names.append(("\u2265 " + human_bytes(e)) if i == len(edges) - 1 else ("< " + human_bytes(edges[1])) if i == 0
                     else human_bytes(e))
    ax.bar(range(len(counts)), counts, color=ACCENT, width=0.85)
    ax.set_xticks(range(len(counts)))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("images")
    ax.grid(axis="x", visible=False)


def fig_dimensions(r, fig):
    ax = fig.add_subplot(111)
    d = r.get("dimensions", {})
    edges, counts = d.get("edges", []), d.get("counts", [])
    ax.set_title("Width \u00d7 height (images per cell)")
    total = sum(sum(row) for row in counts)
    if not total:
        return empty(ax)
    n = len(edges)
    grid = [[counts[w][h] if counts[w][h] else float("nan") for w in range(n)] for h in range(n)]
    top = max(max(row) for row in counts)
    mesh = ax.pcolormesh(range(n + 1), range(n + 1), grid, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(top, 2)),
                         edgecolors="#ffffff", linewidth=0.3)
    bar = fig.colorbar(mesh, ax=ax, label="images", shrink=0.85)
    # plain numbers (the log scale's default labels are mathtext, which is off)
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([str(e) for e in edges], rotation=45, ha="right")
    ax.set_yticklabels([str(e) for e in edges])
    ax.set_xlabel("width (px, lower edge of the bin)")
    ax.set_ylabel("height (px)")
    ax.grid(False)


def fig_brightness(r, fig):
    ax = fig.add_subplot(111)
    b = r.get("brightness", {})
    edges, counts = b.get("edges", []), b.get("counts", [])
    ax.set_title("Brightness (mean of Pillow's L, 0-255)")
    if not any(counts):
        return empty(ax, "no image has a brightness yet")
    ax.bar([e + 4 for e in edges], counts, width=7.2, color=[str(min(0.92, (e + 4) / 255.0)) for e in edges],
           edgecolor="#444444", linewidth=0.5)
    ax.set_xlim(0, 256)
    ax.set_xticks(range(0, 257, 32))
    ax.set_xlabel("brightness")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("images")
    ax.grid(axis="x", visible=False)


def fig_colour(r, fig):
    colour = r.get("colour", {})
    labels = r.get("labels", {})
    keys = [k for k in sorted(colour, key=lambda k: (-colour[k].get("with_hist", 0), k))
            if colour[k].get("rgb_hist")][:6]
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    if not keys:
        empty(axes[1], "no image has a colour histogram yet")
        for a in (axes[0], axes[2]):
            empty(a, "")
        axes[0].set_title("Colour per label")
        return
    width = 0.8 / len(keys)
    for c, (name, col) in enumerate(CHANNELS):
        ax = axes[c]
        ax.set_title("%s: mean share per bin" % name, color=col)
        for i, k in enumerate(keys):
            vals = colour[k]["rgb_hist"][8 * c: 8 * c + 8]
            ax.bar([x + (i - (len(keys) - 1) / 2.0) * width for x in range(8)], vals, width=width,
                   color=SERIES[i % len(SERIES)], label=show(k, 20) if c == 0 else None)
        ax.set_xticks(range(8))
        ax.set_xticklabels(["%d" % (32 * i) for i in range(8)], fontsize=7)
        ax.set_xlabel("level (bin start)")
        ax.grid(axis="x", visible=False)
    axes[0].legend(frameon=False, fontsize=7, loc="upper left")


def size_classes(sizes):
    classes = [("2", 2, 2), ("3", 3, 3), ("4", 4, 4), ("5-8", 5, 8), ("9-16", 9, 16), ("> 16", 17, math.inf)]
    out = []
    for name, lo, hi in classes:
        out.append(sum(n for s, n in sizes.items() if lo <= int(s) <= hi))
    return [c[0] for c in classes], out


def fig_duplicates(r, fig):
    ax = fig.add_subplot(111)
    d = r.get("duplicates", {})
    ax.set_title("Duplicate groups by size")
    ex, ne = d.get("exact", {}), d.get("near", {})
    if not ex.get("groups") and not ne.get("groups"):
        return empty(ax, "no duplicates")
    names, e = size_classes(ex.get("sizes", {}))
    _, n = size_classes(ne.get("sizes", {}))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], e, width=0.4, color=ACCENT, label="exact (same sha1): %d groups" % ex.get("groups", 0))
    ax.bar([i + 0.2 for i in x], n, width=0.4, color="#c55a11",
           label="near (%s within %s bits): %d groups" % (d.get("hash", "phash"), d.get("max_distance", "?"),
                                                          ne.get("groups", 0)))
    ax.set_xticks(list(x))
    ax.set_xticklabels(names)
    ax.set_xlabel("images in the group")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("groups")
    ax.legend(frameon=False)
    ax.grid(axis="x", visible=False)


def fig_errors(r, fig):
    ax = fig.add_subplot(111)
    if r.get("source", {}).get("kind") == "dataset":
        skipped = r.get("summary", {}).get("skipped", {})
        errors = {k: v for k, v in skipped.items() if isinstance(v, (int, float))}
        ax.set_title("Images left out of the dataset, by reason")
    else:
        errors = r.get("errors", {})
        ax.set_title("Download and hashing errors by kind")
    if not any(errors.values()):
        return empty(ax, "none")
    keys = sorted(errors, key=lambda k: (-errors[k], k))[:20]
    y = list(range(len(keys)))[::-1]
    ax.barh(y, [errors[k] for k in keys], color="#a50021", height=0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(y)
    ax.set_yticklabels([show(k, 40) for k in keys])
    ax.set_xlabel("images")
    ax.grid(axis="y", visible=False)


FIGURES = [
    ("labels", fig_labels, (8, 5)),
    ("per_day", fig_per_day, (8, 3.6)),
    ("formats", fig_formats, (8, 3.2)),
    ("sizes", fig_sizes, (8, 3.4)),
    ("dimensions", fig_dimensions, (6.4, 5.4)),
    ("brightness", fig_brightness, (8, 3.2)),
    ("colour", fig_colour, (9, 3.4)),
    ("duplicates", fig_duplicates, (8, 3.2)),
    ("errors", fig_errors, (8, 3.2)),
]


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: plot.py REPORT_JSON OUTDIR\n")
        return 1
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        report = json.load(f)
    for name, draw, size in FIGURES:
        plt.rcParams["svg.hashsalt"] = "imgfeed-" + name
        if name == "labels":
            size = (size[0], min(8.0, 1.2 + 0.28 * min(26, len(report.get("labels", {})))))
        fig = plt.figure(figsize=size)
        draw(report, fig)
        fig.tight_layout()
        fig.savefig("%s/%s.svg" % (sys.argv[2], name), format="svg", metadata={"Date": None})
        fig.savefig("%s/%s.png" % (sys.argv[2], name), format="png", dpi=110)
        plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
