#!/usr/bin/python3
"""make_large_images.py -- pictures large enough that decoding memory shows.

Usage: /usr/bin/python3 make_large_images.py OUTDIR

test_hashmem.c checks that ih_describe_working_bytes() is an upper bound
of the memory hashing a file takes.  The per-pixel parts of that bound only
show on pictures of some size, so this writes one of about 0.75 megapixels
(and a tall and a wide one) for every way a decoder can spend memory:
progressive JPEGs of each sampling and colour space (whole-image
coefficient buffers), 16-bit and interlaced PNGs, lossy, lossless and
animated WebP (canvases), TIFFs (libgd's and libtiff's copies), BMP and GIF.
Seeded, so two runs write the same bytes.  Needs Debian's python3-pil and
python3-numpy.
"""
import os
import sys

import numpy as np
from PIL import Image


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    w, h = 1000, 750
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = (x * 255 // w).astype(np.uint8)
    arr[..., 1] = (y * 255 // h).astype(np.uint8)
    arr[..., 2] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rgb = Image.fromarray(arr, "RGB")
    save = lambda im, name, **kw: im.save(os.path.join(out, name), **kw)
    save(rgb, "rgb.png")
    save(rgb.convert("RGBA"), "rgba.png")
    save(Image.fromarray((arr[..., 0].astype(np.uint16) * 257), "I;16"), "gray16.png")
    save(rgb.convert("P"), "palette_interlaced.png", interlace=1)
    save(rgb, "baseline_420.jpg", quality=90)
    save(rgb, "progressive_420.jpg", quality=90, progressive=True)
    save(rgb, "progressive_422.jpg", quality=90, progressive=True, subsampling=1)
    save(rgb, "progressive_444.jpg", quality=90, progressive=True, subsampling=0)
    save(rgb.convert("L"), "progressive_gray.jpg", quality=90, progressive=True)
    save(rgb.convert("CMYK"), "progressive_cmyk.jpg", quality=90, progressive=True)
    save(rgb.convert("CMYK"), "baseline_cmyk.jpg", quality=90)
    save(rgb.convert("P"), "a.gif")
    save(rgb, "lossy.webp", quality=80)
    save(rgb.convert("RGBA"), "lossless_rgba.webp", lossless=True)
    frames = [rgb, rgb.transpose(Image.FLIP_LEFT_RIGHT)]
    save(frames[0], "animated.webp", save_all=True, append_images=frames[1:], lossless=True)
    save(rgb, "a.bmp")
    save(rgb.convert("RGBA"), "rgba.bmp")
    save(rgb, "plain.tif")
    save(rgb, "lzw.tif", compression="tiff_lzw")
    save(rgb.convert("RGBA"), "rgba.tif")
    save(Image.fromarray(arr[:, :60]), "tall.png")
    save(rgb.resize((3000, 120)), "wide.jpg", progressive=True)


if __name__ == "__main__":
    main()
