#!/usr/bin/python3
"""make_corpus.py -- a folder of typical image-board files for bench/hash.sh.

Usage: make_corpus.py OUTDIR [SOURCE_DIR]

Image boards mostly carry JPEGs and PNGs of 0.3 to 2 megapixels, plus the odd
camera-sized photo.  This resizes Debian's wallpapers (package
mate-backgrounds, /usr/share/backgrounds/mate) to that mix with Pillow:
every source as a JPEG at a width cycling through 640..1920 (quality 85-92,
every third one progressive), every fourth also as a PNG, and three
6000x4000 JPEGs.  Deterministic: the same sources give the same files.
"""
import os
import sys

from PIL import Image

WIDTHS = (640, 800, 1024, 1280, 1600, 1920)


def sources(root):
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.lower().endswith((".jpg", ".jpeg", ".png")):
                out.append(os.path.join(dirpath, name))
    return sorted(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/backgrounds/mate"
    srcs = sources(root)
    if not srcs:
        sys.exit("no images under %s: apt-get install mate-backgrounds" % root)
    os.makedirs(outdir, exist_ok=True)
    for i, path in enumerate(srcs):
        im = Image.open(path).convert("RGB")
        width = WIDTHS[i % len(WIDTHS)]
        height = max(1, round(im.height * width / im.width))
        small = im.resize((width, height), Image.LANCZOS)
        stem = "%02d-%s" % (i, os.path.splitext(os.path.basename(path))[0])
        small.save(os.path.join(outdir, stem + ".jpg"), quality=85 + i % 8, progressive=(i % 3 == 2))
        if i % 4 == 0:
            small.save(os.path.join(outdir, stem + ".png"))
        if i < 3:
            im.resize((6000, 4000), Image.LANCZOS).save(os.path.join(outdir, "large-%d.jpg" % i), quality=90)
    print("%d files in %s" % (len(os.listdir(outdir)), outdir))


if __name__ == "__main__":
    main()
