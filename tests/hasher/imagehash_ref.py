#!/usr/bin/python3
"""imagehash_ref.py -- the reference imgfeed's hashes must equal, bit for bit.

Usage: imagehash_ref.py [--hash-size N] FILE...

Prints one JSON line per FILE with what imgfeed-hasher puts in an `_img` entry
(size, crc32, md5, sha1, format, width, height, the four perceptual hashes
in chan_feed's base64 and the colour summary) plus imagehash's own hex
strings (*_hex), or {"file": ..., "error": ...} when Pillow cannot open or
load the file.

The colour summary is design.md's: rgb_mean is ImageStat's mean of
convert('RGB'), brightness ImageStat's mean of convert('L'), both written
with exactly three decimals ("%.3f", as bare JSON numbers: read them back
with json.loads(line, parse_float=str) to compare the texts), and rgb_hist
convert('RGB').histogram() summed into 8 bins of 32 levels per channel.

The four functions below are imagehash 4.3's average_hash, dhash, phash and
whash, written out from its source so that no imagehash package is needed.
Run it with Debian 12's /usr/bin/python3: Pillow 9.4.0, numpy 1.24,
scipy 1.10.1 and pywt 1.1.1 are the versions the C code copies.  As
design.md says, ahash, dhash and phash use N (default 12) and whash the
largest power of two not above N (8 for 12).
"""
import argparse
import base64
import hashlib
import json
import sys
import zlib

import numpy
import pywt
import scipy.fftpack
from PIL import Image, ImageStat

LANCZOS = Image.Resampling.LANCZOS


def average_hash(image, hash_size=8):
    image = image.convert("L").resize((hash_size, hash_size), LANCZOS)
    pixels = numpy.asarray(image)
    return pixels > pixels.mean()


def dhash(image, hash_size=8):
    image = image.convert("L").resize((hash_size + 1, hash_size), LANCZOS)
    pixels = numpy.asarray(image)
    return pixels[:, 1:] > pixels[:, :-1]


def phash(image, hash_size=8, highfreq_factor=4):
    img_size = hash_size * highfreq_factor
    image = image.convert("L").resize((img_size, img_size), LANCZOS)
    pixels = numpy.asarray(image)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    dctlowfreq = dct[:hash_size, :hash_size]
    return dctlowfreq > numpy.median(dctlowfreq)


def whash(image, hash_size=8):
    image_natural_scale = 2 ** int(numpy.log2(min(image.size)))
    image_scale = max(image_natural_scale, hash_size)
    ll_max_level = int(numpy.log2(image_scale))
    level = int(numpy.log2(hash_size))
    assert hash_size & (hash_size - 1) == 0, "hash_size is not power of 2"
    dwt_level = ll_max_level - level

    image = image.convert("L").resize((image_scale, image_scale), LANCZOS)
    pixels = numpy.asarray(image) / 255.0
    # imagehash's remove_max_haar_ll=True: drop the lowest LL and rebuild.
    coeffs = list(pywt.wavedec2(pixels, "haar", level=ll_max_level))
    coeffs[0] *= 0
    pixels = pywt.waverec2(coeffs, "haar")
    dwt_low = pywt.wavedec2(pixels, "haar", level=dwt_level)[0]
    return dwt_low > numpy.median(dwt_low)


def to_hex(bits):
    """imagehash's str(): first bit most significant, ceil(n/4) hex digits."""
    bit_string = "".join(str(b) for b in 1 * bits.flatten())
    width = (len(bit_string) + 3) // 4
    return "{:0>{width}x}".format(int(bit_string, 2), width=width)


def to_base64(bits):
    """chan_feed's form (design.md): bit i of the integer is flat[i],
    big-endian in ceil(n/8) bytes, standard base64."""
    flat = bits.flatten()
    value = sum(1 << i for i, b in enumerate(flat) if b)
    return base64.b64encode(value.to_bytes((len(flat) + 7) // 8, "big")).decode()


def colour(image):
    """rgb_mean and brightness as "%.3f" texts, and rgb_hist (design.md)."""
    rgb = image.convert("RGB")
    mean = ImageStat.Stat(rgb).mean
    brightness = ImageStat.Stat(image.convert("L")).mean[0]
    hist = rgb.histogram()
    bins = [sum(hist[256 * c + 32 * k: 256 * c + 32 * (k + 1)]) for c in range(3) for k in range(8)]
    return {"rgb_mean": ["%.3f" % m for m in mean], "brightness": "%.3f" % brightness, "rgb_hist": bins}


# Fields whose values are number texts, written bare.
NUMBER_TEXTS = ("rgb_mean", "brightness")


def to_json(entry):
    """One JSON line; the NUMBER_TEXTS fields as the numbers they spell."""
    parts = []
    for key, value in entry.items():
        if key in NUMBER_TEXTS:
            text = "[" + ", ".join(value) + "]" if isinstance(value, list) else value
        else:
            text = json.dumps(value)
        parts.append(json.dumps(key) + ": " + text)
    return "{" + ", ".join(parts) + "}"


def whash_size(hash_size):
    return 1 << (hash_size.bit_length() - 1)


# Pillow calls a JPEG with an MPF segment (many camera files) "MPO"; for
# imgfeed, which goes by magic bytes, it is a JPEG.
FORMAT_NAMES = {"MPO": "jpeg"}


def describe(path, hash_size):
    with open(path, "rb") as f:
        data = f.read()
    entry = {"file": path}
    try:
        image = Image.open(path)
        image.load()
        hashes = {
            "ahash": average_hash(image, hash_size),
            "dhash": dhash(image, hash_size),
            "phash": phash(image, hash_size),
            "whash": whash(image, whash_size(hash_size)),
        }
        colours = colour(image)
    except Exception as e:  # anything Pillow refuses is an error entry
        entry["error"] = "%s: %s" % (type(e).__name__, e)
        return entry
    entry.update({
        "size": len(data),
        "crc32": "%08x" % zlib.crc32(data),
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "format": FORMAT_NAMES.get(image.format, (image.format or "").lower()),
        "width": image.size[0],
        "height": image.size[1],
    })
    for name, bits in hashes.items():
        entry[name + "_hex"] = to_hex(bits)
    for name, bits in hashes.items():
        entry[name] = to_base64(bits)
    entry.update(colours)
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hash-size", type=int, default=12)
    parser.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args()
    if args.hash_size < 2:
        parser.error("--hash-size must be at least 2")
    for path in args.files:
        print(to_json(describe(path, args.hash_size)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
