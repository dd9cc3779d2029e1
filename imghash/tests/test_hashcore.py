#!/usr/bin/python3
"""test_hashcore.py -- the hash core against imagehash, bit for bit, no decoding.

Usage: test_hashcore.py HASHCORE_DRIVER

Makes a few hundred gray images in memory (noise, flat 0/128/255, gradients,
checkerboards, near-flat noise, smooth blobs) at awkward and common sizes
(1x1 ... 1920x1080, 4000x3, 3x4000, 6000x21, 30000x2), feeds their raw bytes to
hashcore_driver (ih_hashes_compute + ih_hashenc_*) at hash sizes 8, 12 and
16, and compares every hash, in hex and base64, with the functions of
tests/hasher/imagehash_ref.py on the same pixels as a Pillow mode "L" image.  Any differing bit fails the test
and is printed with the image and the hash it is in.  Sizes the DCT does not
support must give "error".

Must run under Debian's /usr/bin/python3 (Pillow, numpy, scipy, pywt).
"""
import os
import struct
import subprocess
import sys

import numpy
from PIL import Image

# The reference is shared with the hasher's bit-exactness test.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "hasher"))
import imagehash_ref as ref  # noqa: E402

SIZES = [(1, 1), (2, 3), (7, 5), (8, 8), (48, 48), (4000, 3), (3, 4000), (640, 480), (6000, 21), (30000, 2),
         (1920, 1080), (13, 12), (33, 17), (257, 129), (1000, 999)]
HASH_SIZES = (8, 12, 16)
NAMES = ("ahash", "dhash", "phash", "whash")


def make(kind, w, h, rng):
    y, x = numpy.indices((h, w))
    if kind == "noise":
        return rng.integers(0, 256, (h, w))
    if kind.startswith("flat"):
        return numpy.full((h, w), int(kind[4:]))
    if kind == "hgrad":
        return x * 255 // max(w - 1, 1)
    if kind == "vgrad":
        return y * 255 // max(h - 1, 1)
    if kind == "diag":
        return (x + y) * 255 // max(w + h - 2, 1)
    if kind == "checker1":
        return (x + y) % 2 * 255
    if kind == "checker8":
        return (x // 8 + y // 8) % 2 * 255
    if kind == "nearflat":
        return 128 + rng.integers(-1, 2, (h, w))
    if kind == "blobs":
        small = rng.integers(0, 256, (max(h // 16, 1), max(w // 16, 1)), dtype=numpy.uint8)
        return numpy.asarray(Image.fromarray(small, "L").resize((w, h), Image.Resampling.BILINEAR))
    raise ValueError(kind)


KINDS = ("noise", "flat0", "flat128", "flat255", "hgrad", "vgrad", "diag", "checker1",
         "checker8", "nearflat", "blobs")


def reference(pixels, hash_size):
    image = Image.fromarray(pixels, "L")
    bits = [ref.average_hash(image, hash_size), ref.dhash(image, hash_size),
            ref.phash(image, hash_size), ref.whash(image, ref.whash_size(hash_size))]
    return [ref.to_hex(b) for b in bits] + [ref.to_base64(b) for b in bits]


def main():
    driver = sys.argv[1]
    rng = numpy.random.default_rng(20240611)
    cases = []  # (label, pixels, hash size, expected fields or None for "error")
    for w, h in SIZES:
        for kind in KINDS:
            pixels = make(kind, w, h, rng).astype(numpy.uint8)
            for n in HASH_SIZES:
                cases.append(("%s %dx%d" % (kind, w, h), pixels, n, reference(pixels, n)))
    noise = make("noise", 40, 30, rng).astype(numpy.uint8)
    for n in (1, 7, 11, 33):
        cases.append(("unsupported size", noise, n, None))

    stdin = b"".join(struct.pack("<3i", p.shape[1], p.shape[0], n) + p.tobytes()
                     for _, p, n, _ in cases)
    proc = subprocess.run([driver], input=stdin, stdout=subprocess.PIPE, check=True)
    lines = proc.stdout.decode().splitlines()
    if len(lines) != len(cases):
        sys.exit("driver printed %d lines for %d images" % (len(lines), len(cases)))

    failed = compared = 0
    for (label, _, n, want), line in zip(cases, lines):
        got = line.split()
        if want is None:
            compared += 1
            if got != ["error"]:
                failed += 1
                print("FAIL %s hash size %d: expected error, got %s" % (label, n, line))
            continue
        for i, name in enumerate(NAMES * 2):
            compared += 1
            form = "hex" if i < 4 else "base64"
            if i >= len(got) or got[i] != want[i]:
                failed += 1
                print("FAIL %s hash size %d %s (%s): got %s, imagehash %s"
                      % (label, n, name, form, got[i] if i < len(got) else "-", want[i]))
    print("hashcore: %d images x hash sizes, %d hash strings compared, %d differ"
          % (len(cases), compared, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
