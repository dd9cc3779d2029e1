#!/usr/bin/python3
"""gray_ref.py -- Pillow's gray image of every file, the reference for test_decode.

Usage: /usr/bin/python3 gray_ref.py INDIR OUTDIR

For each file INDIR/NAME writes OUTDIR/NAME.pgm, the binary PGM (P5) of
numpy.asarray(Image.open(f).convert('L')), or OUTDIR/NAME.err holding the
exception Pillow raised.  Warnings (DecompressionBombWarning and the like)
are not errors.  Must run under Debian's /usr/bin/python3 (Pillow 9.4).
"""
import os
import sys
import warnings

import numpy as np
from PIL import Image


def reference(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    indir, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    warnings.simplefilter("ignore")
    for name in sorted(os.listdir(indir)):
        path = os.path.join(indir, name)
        if not os.path.isfile(path):
            continue
        try:
            gray = reference(path)
        except Exception as e:  # every refusal is a result
            with open(os.path.join(outdir, name + ".err"), "w") as f:
                f.write("%s: %s\n" % (type(e).__name__, e))
            continue
        h, w = gray.shape
        with open(os.path.join(outdir, name + ".pgm"), "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (w, h))
            f.write(np.ascontiguousarray(gray, dtype=np.uint8).tobytes())


if __name__ == "__main__":
    main()
