#!/usr/bin/python3
"""search_real.py -- real photographs, real variants of them, and their hashes:
the model bench/search.sh generates its ten million hashes from.

Usage: /usr/bin/python3 bench/search_real.py HASHER OUTDIR [QUERIES]

Debian's python3 with PIL (python3-pil).  The photographs are those of
PHOTOS below, from Debian's packages (bench/search.sh installs them): every
picture of these packages that is a photograph, one size of each (the
illustrations, renders and logos of the same packages are left out).  For
each original, the variants a board sees when a picture is posted again:

  half     half the width and height (bicubic), JPEG 85
  300px    300 pixels wide (Lanczos), JPEG 85
  q30      the original recompressed as JPEG at quality 30
  q70      ... at quality 70
  crop3l   3% cut off the left side, JPEG 85
  crop6t   6% cut off the top, JPEG 85
  crop10r  10% cut off the right side, JPEG 85
  grey     converted to grey (Pillow's 'L'), JPEG 85

and QUERIES (default 1000) more variants, each of a random original with
random steps (seed 16): a resize to 25-100% (70% of them), a crop of 1-10%
of a random side (half of them), grey (15%), then JPEG at quality 30-95.
Those are the queries of real images: they are not in the index.

Every file is hashed by HASHER (`imgfeed-hasher hash`, the archive's own
hashes: 144-bit phash and dhash, base64 of 18 big-endian bytes).  Writes to
OUTDIR:

  model.txt   what bench_search gen reads: the indexed real images (original
              and variants, their group, phash, dhash, sha1, md5, size),
              the query variants, the per-bit frequency of ones of phash
              and of dhash over the originals, and the (phash, dhash)
              distance of each variant from its original
  real.json   the same measures for the docs: per-bit frequencies, distance
              percentiles per variant kind, the photographs used

The variants themselves are made in OUTDIR/files and removed at the end.
"""
import base64
import json
import os
import random
import shutil
import subprocess
import sys

from PIL import Image

SEED = 16
SK = "/usr/lib/python3/dist-packages/skimage/data"
PLASMA = "/usr/share/wallpapers"
BG = "/usr/share/backgrounds"
# (package, path): every photograph of these packages, one size each.
PHOTOS = (
    [("mate-backgrounds", f"{BG}/mate/nature/{n}.jpg") for n in
     ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
      "TwoWings", "Wood", "YellowFlower")]
    + [("plasma-workspace-wallpapers", f"{PLASMA}/{n}/contents/images/1920x1080.jpg") for n in
       ("BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut",
        "Path", "summer_1am")]
    + [("plasma-workspace-wallpapers", f"{PLASMA}/ColorfulCups/contents/images/2560x1600.jpg")]
    + [("lomiri-wallpapers-16.04", f"{BG}/{n}.jpg") for n in
       ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
        "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi")]
    + [("lomiri-wallpapers-20.04", f"{BG}/{n}.jpg") for n in ("Infinite-Sea_by_Aury88", "Kleiber_by_Lukas_Baubkus")]
    + [("python3-skimage", f"{SK}/{n}") for n in
       ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
        "gravel.png", "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
        "hubble_deep_field.jpg", "retina.jpg", "rocket.jpg")]
    + [("python3-matplotlib", "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg")]
)
KINDS = ["half", "300px", "q30", "q70", "crop3l", "crop6t", "crop10r", "grey"]


def flat(im):
    """The picture as RGB or L, as a JPEG can hold it."""
    if im.mode in ("RGB", "L"):
        return im
    if im.mode in ("I;16", "I;16B", "I", "F"):
        return im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


def crop(im, side, frac):
    w, h = im.size
    dx, dy = round(w * frac), round(h * frac)
    box = {"l": (dx, 0, w, h), "r": (0, 0, w - dx, h), "t": (0, dy, w, h), "b": (0, 0, w, h - dy)}[side]
    return im.crop(box)


def variant(im, kind):
    """(image, JPEG quality) of the fixed variant KIND."""
    w, h = im.size
    if kind == "half":
        return im.resize((max(1, w // 2), max(1, h // 2)), Image.BICUBIC), 85
    if kind == "300px":
        return im.resize((300, max(1, round(h * 300 / w))), Image.LANCZOS), 85
    if kind == "q30":
        return im, 30
    if kind == "q70":
        return im, 70
    if kind.startswith("crop"):
        return crop(im, kind[-1], int(kind[4:-1]) / 100), 85
    if kind == "grey":
        return im.convert("L"), 85
    raise ValueError(kind)


def random_variant(im, rng):
    steps = []
    if rng.random() < 0.7:
        f = rng.uniform(0.25, 1.0)
        w, h = im.size
        im = im.resize((max(16, round(w * f)), max(16, round(h * f))), Image.LANCZOS)
        steps.append(f"scale {f:.2f}")
    if rng.random() < 0.5:
        side, frac = rng.choice("lrtb"), rng.uniform(0.01, 0.10)
        im = crop(im, side, frac)
        steps.append(f"crop {frac:.3f} {side}")
    if rng.random() < 0.15:
        im = im.convert("L")
        steps.append("grey")
    q = rng.randint(30, 95)
    steps.append(f"q{q}")
    return im, q, " ".join(steps)


def hash_files(hasher, paths):
    out = {}
    for i in range(0, len(paths), 200):
        r = subprocess.run([hasher, "hash", *paths[i:i + 200]], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            o = json.loads(line)
            if "error" in o:
                sys.exit(f"search_real.py: {o['file']}: {o['error']}")
            out[o["file"]] = o
        if r.returncode != 0:
            sys.exit(f"search_real.py: {hasher} failed: {r.stderr.strip()}")
    return out


def bits(b64):
    raw = base64.b64decode(b64)
    return [(raw[i // 8] >> (7 - i % 8)) & 1 for i in range(8 * len(raw))]


def distance(a, b):
    return sum(x != y for x, y in zip(bits(a), bits(b)))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    hasher, outdir = sys.argv[1], sys.argv[2]
    nqueries = int(sys.argv[3]) if len(sys.argv) == 4 else 1000
    files = os.path.join(outdir, "files")
    os.makedirs(files, exist_ok=True)
    originals = [(pkg, p) for pkg, p in PHOTOS if os.path.exists(p)]
    missing = [p for _, p in PHOTOS if not os.path.exists(p)]
    if missing:
        print(f"search_real.py: {len(missing)} photographs missing (packages not installed?): {missing[:3]}",
              file=sys.stderr)
    if len(originals) < 30:
        sys.exit("search_real.py: fewer than 30 photographs: install the packages bench/search.sh names")

    indexed = []  # (group, kind, path)
    queries = []  # (group, steps, path)
    rng = random.Random(SEED)
    plan = [rng.randrange(len(originals)) for _ in range(nqueries)]
    for g, (_, path) in enumerate(originals):
        indexed.append((g, "original", path))
        im = flat(Image.open(path))
        for kind in KINDS:
            v, q = variant(im, kind)
            out = os.path.join(files, f"{g:03d}_{kind}.jpg")
            v.save(out, quality=q)
            indexed.append((g, kind, out))
        for qi in (i for i, o in enumerate(plan) if o == g):
            v, q, steps = random_variant(im, random.Random(SEED * 1000003 + qi))
            out = os.path.join(files, f"q{qi:04d}.jpg")
            v.save(out, quality=q)
            queries.append((qi, g, steps, out))
    queries.sort()
    h = hash_files(hasher, [p for _, _, p in indexed] + [p for *_, p in queries])

    orig = {g: h[p] for g, k, p in indexed if k == "original"}
    n = len(orig)
    freq = {}
    for kind in ("phash", "dhash"):
        ones = [0] * 144
        for o in orig.values():
            for i, b in enumerate(bits(o[kind])):
                ones[i] += b
        freq[kind] = [c / n for c in ones]
    dists = []  # (kind, dp, dd)
    for g, k, p in indexed:
        if k != "original":
            dists.append((k, distance(orig[g]["phash"], h[p]["phash"]), distance(orig[g]["dhash"], h[p]["dhash"])))
    qd = [distance(orig[g]["phash"], h[p]["phash"]) for _, g, _, p in queries]

    with open(os.path.join(outdir, "model.txt"), "w") as f:
        f.write("# bench/search_real.py: the real images and the measured model, read by bench_search gen\n")
        f.write("pfreq " + " ".join(f"{x:.6f}" for x in freq["phash"]) + "\n")
        f.write("dfreq " + " ".join(f"{x:.6f}" for x in freq["dhash"]) + "\n")
        for k, dp, dd in dists:
            f.write(f"dist {dp} {dd} {k}\n")
        for g, k, p in indexed:
            o = h[p]
            f.write(f"real {g} {k} {o['phash']} {o['dhash']} {o['sha1']} {o['md5']} {o['size']} {o['width']} "
                    f"{o['height']} {o['format']} {o['crc32']} {o['ahash']} {o['whash']}\n")
        for _, g, _, p in queries:
            f.write(f"query {g} {h[p]['phash']} {h[p]['dhash']}\n")

    by_kind = {}
    for k, dp, dd in dists:
        by_kind.setdefault(k, ([], []))
        by_kind[k][0].append(dp)
        by_kind[k][1].append(dd)
    summary = {
        "originals": n,
        "packages": sorted({pkg for pkg, _ in originals}),
        "photos": [p for _, p in originals],
        "indexed": len(indexed),
        "queries": len(queries),
        "pfreq": freq["phash"],
        "dfreq": freq["dhash"],
        "variants": {k: {"phash": {"median": pct(v[0], 50), "p90": pct(v[0], 90), "max": max(v[0])},
                         "dhash": {"median": pct(v[1], 50), "p90": pct(v[1], 90), "max": max(v[1])}}
                     for k, v in by_kind.items()},
        "all_variants": {"phash": sorted(d[1] for d in dists), "dhash": sorted(d[2] for d in dists)},
        "query_distance": {"median": pct(qd, 50), "p90": pct(qd, 90), "max": max(qd)},
    }
    with open(os.path.join(outdir, "real.json"), "w") as f:
        json.dump(summary, f, indent=1)
    shutil.rmtree(files)

    pf = freq["phash"]
    print(f"real images: {n} photographs from {', '.join(summary['packages'])}; "
          f"{len(indexed)} indexed (originals + {len(KINDS)} variants each), {len(queries)} query variants")
    print("phash ones per bit over the originals: "
          f"bit 0 {pf[0]:.2f}, the others {min(pf[1:]):.2f} to {max(pf[1:]):.2f} "
          f"(mean {sum(pf[1:]) / 143:.3f}; {sum(1 for x in pf if x < 0.3 or x > 0.7)} bits outside 0.3-0.7)")
    print("phash distance original -> variant (median / p90 / max of " + str(n) + "):")
    for k in KINDS:
        v = summary["variants"][k]["phash"]
        d = summary["variants"][k]["dhash"]
        print(f"  {k:8} phash {v['median']:3} / {v['p90']:3} / {v['max']:3}   dhash {d['median']:3} / {d['p90']:3} / "
              f"{d['max']:3}")
    allp = summary["all_variants"]["phash"]
    print(f"  all      phash {pct(allp, 50):3} / {pct(allp, 90):3} / {max(allp):3}; "
          f"{sum(1 for x in allp if x <= 21) / len(allp):.0%} within 21 bits")
    print(f"query variants: phash distance to their original median {summary['query_distance']['median']}, "
          f"p90 {summary['query_distance']['p90']}, max {summary['query_distance']['max']}")


if __name__ == "__main__":
    main()
