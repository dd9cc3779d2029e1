#!/usr/bin/python3
"""make_corpus.py -- a folder of typical image-board files for bench/hash.sh.

Usage: make_corpus.py OUTDIR [SOURCE_DIR]

Image boards mostly carry JPEGs and PNGs of 0.3 to 2 megapixels, plus the odd
camera-sized photo, and thumbnails and small pictures by the thousand.  This
resizes Debian's wallpapers (package mate-backgrounds,
/usr/share/backgrounds/mate) to that mix with Pillow, in the three classes
bench/hash.sh measures apart:
  typical  every source as a JPEG of 0.3 to 2 megapixels (the area cycling
           through MEGAPIXELS, the source's aspect kept; quality 85-92,
           every third one progressive), every fourth also as a PNG;
  small    every source as ten JPEGs under 0.1 megapixels (names
           small-*: widths cycling through 96..320, quality 75-90, every
           fifth progressive, every seventh gray);
  large    three 6000x4000 JPEGs (24 megapixels; names large-*).
Deterministic: the same sources give the same files.
"""
import os
import sys

from PIL import Image

MEGAPIXELS = (0.3, 0.5, 0.8, 1.2, 1.6, 2.0)
SMALL_WIDTHS = (96, 128, 160, 200, 250, 300, 320)
SMALL_PER_SOURCE = 10


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
        area = MEGAPIXELS[i % len(MEGAPIXELS)] * 1e6
        width = round((area * im.width / im.height) ** 0.5)
        height = max(1, round(area / width))
        small = im.resize((width, height), Image.LANCZOS)
        stem = "%02d-%s" % (i, os.path.splitext(os.path.basename(path))[0])
        small.save(os.path.join(outdir, stem + ".jpg"), quality=85 + i % 8, progressive=(i % 3 == 2))
        if i % 4 == 0:
            small.save(os.path.join(outdir, stem + ".png"))
        for j in range(SMALL_PER_SOURCE):
            k = i * SMALL_PER_SOURCE + j
            sw = SMALL_WIDTHS[k % len(SMALL_WIDTHS)]
            sh = max(1, round(im.height * sw / im.width))
            if sw * sh >= 100_000:  # under 0.1 megapixels
                sh = 99_999 // sw
            thumb = im.resize((sw, sh), Image.LANCZOS)
            if k % 7 == 6:
                thumb = thumb.convert("L")
            thumb.save(os.path.join(outdir, "small-%s-%d.jpg" % (stem, j)), quality=75 + k % 16,
                       progressive=(k % 5 == 4))
        if i < 3:
            im.resize((6000, 4000), Image.LANCZOS).save(os.path.join(outdir, "large-%d.jpg" % i), quality=90)
    print("%d files in %s" % (len(os.listdir(outdir)), outdir))


if __name__ == "__main__":
    main()
