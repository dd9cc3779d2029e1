#!/usr/bin/python3
"""make_images.py -- the hasher's test image set, written into OUTDIR.

Usage: /usr/bin/python3 make_images.py OUTDIR

Every file is made from seeded data, so two runs write the same bytes.  The
name says what a file is: <format>_<what>_<width>x<height>.<ext>.  Pillow
writes what it can (PNG, JPEG, GIF, WebP, BMP, TIFF); the cases it cannot
write are built byte by byte here: PNGs of every colour type and bit depth
(16-bit RGB, 2 and 4-bit gray, Adam7 interlacing, palettes shorter than
their indices), GIFs whose first frame is smaller than the screen, offset,
interlaced or beyond the screen, with and without a transparent index and a
local palette, and BMPs of 4, 16 and 32 bits, with bitfields, RLE or
top-down rows.

Four kinds of name prefix:
  (none)    valid images: decoders must give Pillow's gray exactly;
  cut_      copies of valid files cut short at chosen places: Pillow decides
            (some still decode, e.g. a PNG that lacks only its IEND), and
            the decoders must agree with it;
  damaged_  bad CRCs, a palette PNG without PLTE, LZW data ending early:
            Pillow decides here too;
  bad_      files every decoder must refuse: truncated data, a zero-byte file,
            HTML saved as .jpg, and headers of far too many pixels (a PNG
            saying 30000x30000, and real decompression bombs: 20000x20000
            all-zero gray PNGs of a few hundred KB).

Must run under Debian's /usr/bin/python3 (python3-pil 9.4, python3-numpy).
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageFilter

# --------------------------------------------------------------- content


def photo(w, h, seed):
    """Photo-like RGB: smooth coloured noise, blurred, with a little grain."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
    im = Image.fromarray(small, "RGB").resize((w, h), Image.BICUBIC)
    im = im.filter(ImageFilter.GaussianBlur(radius=max(1, min(w, h) // 100)))
    arr = np.asarray(im).astype(np.int16) + rng.integers(-6, 7, size=(h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def gradient(w, h):
    """Smooth RGB ramps in three directions."""
    y, x = np.mgrid[0:h, 0:w]
    fx = x / max(1, w - 1)
    fy = y / max(1, h - 1)
    arr = np.stack([fx * 255, fy * 255, (1 - fx) * (1 - fy) * 255], axis=-1)
    return Image.fromarray(np.round(arr).astype(np.uint8), "RGB")


def flat(w, h, color=(200, 120, 40)):
    return Image.new("RGB", (w, h), color)


def alpha_of(w, h, seed):
    """An alpha channel with fully clear, partly clear and opaque parts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = (x * 255 // max(1, w - 1)).astype(np.uint8)
    a[rng.random((h, w)) < 0.1] = 0
    return Image.fromarray(a, "L")


def rgba(im, seed):
    out = im.convert("RGBA")
    out.putalpha(alpha_of(im.width, im.height, seed))
    return out


SMALL = [(1, 1), (2, 3), (7, 5)]
STRIPS = [(4000, 3), (3, 4000)]


def contents():
    """(name, RGB image) pairs every format gets."""
    items = [("photo", photo(640, 480, 1)), ("gradient", gradient(256, 192)), ("flat", flat(64, 48))]
    for w, h in SMALL:
        items.append(("photo", photo(w, h, 10 + w * h)))
    for w, h in STRIPS:
        items.append(("gradient", gradient(w, h)))
    items.append(("photo", photo(641, 479, 2)))  # odd sizes: chroma edges
    return items


# --------------------------------------------------------------- output


class Out:
    def __init__(self, directory):
        self.dir = directory
        self.names = set()

    def write(self, name, data):
        assert name not in self.names, name
        self.names.add(name)
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)

    def save(self, name, im, fmt, **params):
        buf = io.BytesIO()
        im.save(buf, fmt, **params)
        self.write(name, buf.getvalue())
        return buf.getvalue()


def size(im):
    return "%dx%d" % im.size


# --------------------------------------------------------------- PNG by hand

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_pack_rows(samples, depth):
    """Rows of SAMPLES (h, w, channels) as filter-0 scanlines."""
    h = samples.shape[0]
    flat_rows = samples.reshape(h, -1)
    out = bytearray()
    for row in flat_rows:
        out.append(0)
        if depth == 16:
            out += row.astype(">u2").tobytes()
        elif depth == 8:
            out += row.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            padded = np.zeros(-(-len(row) // per) * per, dtype=np.uint16)
            padded[: len(row)] = row
            groups = padded.reshape(-1, per)
            shifts = np.arange(per - 1, -1, -1) * depth
            out += (groups << shifts).sum(axis=1).astype(np.uint8).tobytes()
    return bytes(out)


def png_raw(samples, depth, interlace):
    if not interlace:
        return png_pack_rows(samples, depth)
    out = b""
    for x0, y0, dx, dy in ADAM7:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            out += png_pack_rows(sub, depth)
    return out


def png_bytes(samples, depth, ctype, palette=None, trns=None, interlace=False, idat=None):
    """A PNG of SAMPLES (h, w, channels) with everything explicit."""
    h, w = samples.shape[:2]
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).ravel()))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    data = idat if idat is not None else zlib.compress(png_raw(samples, depth, interlace), 9)
    # Split the stream over several IDAT chunks, as real encoders do.
    step = max(1, len(data) // 3)
    for at in range(0, len(data), step):
        out += png_chunk(b"IDAT", data[at : at + step])
    return out + png_chunk(b"IEND", b"")


def rng_samples(w, h, channels, depth, seed):
    rng = np.random.default_rng(seed)
    base = photo(w, h, seed)
    arr = np.asarray(base).astype(np.uint32)
    if channels in (1, 2):
        arr = np.asarray(base.convert("L")).astype(np.uint32)[..., None]
    if depth == 16:
        arr = arr * 257 + rng.integers(0, 257, size=arr.shape)
    else:
        arr = arr >> (8 - depth)
    if channels == 2:
        a = np.asarray(alpha_of(w, h, seed)).astype(np.uint32)[..., None]
        arr = np.concatenate([arr, a * 257 if depth == 16 else a], axis=-1)
    if channels == 4:
        a = np.asarray(alpha_of(w, h, seed)).astype(np.uint32)[..., None]
        arr = np.concatenate([arr, a * 257 if depth == 16 else a], axis=-1)
    return arr


def gray16_low(w, h, seed):
    """16-bit gray mostly in 0..600, so that Pillow's clip at 255 shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = (x * 600 // max(1, w - 1) + rng.integers(0, 20, size=(h, w))).astype(np.uint32)
    arr[0, :] = 65535
    return arr[..., None]


def crafted_pngs(out):
    sizes = [(1, 1), (7, 5), (33, 17), (640, 480)]
    for interlace in (False, True):
        tag = "_interlaced" if interlace else ""
        for w, h in sizes:
            seed = w * 7 + h
            for depth in (1, 2, 4, 8, 16):
                s = rng_samples(w, h, 1, depth, seed)
                out.write("png_gray%d%s_%dx%d.png" % (depth, tag, w, h), png_bytes(s, depth, 0, interlace=interlace))
            out.write("png_gray16low%s_%dx%d.png" % (tag, w, h), png_bytes(gray16_low(w, h, seed), 16, 0,
                                                                            interlace=interlace))
            for depth in (8, 16):
                for ctype, name in ((2, "rgb"), (6, "rgba"), (4, "la")):
                    s = rng_samples(w, h, CHANNELS[ctype], depth, seed + ctype)
                    out.write("png_%s%d%s_%dx%d.png" % (name, depth, tag, w, h),
                              png_bytes(s, depth, ctype, interlace=interlace))
            for depth in (1, 2, 4, 8):
                rng = np.random.default_rng(seed + depth)
                n = 1 << depth
                pal = rng.integers(0, 256, size=(n, 3))
                idx = rng.integers(0, n, size=(h, w, 1))
                out.write("png_pal%d%s_%dx%d.png" % (depth, tag, w, h),
                          png_bytes(idx, depth, 3, palette=pal, interlace=interlace))
            # Indices past the end of PLTE: Pillow's default ramp.
            rng = np.random.default_rng(seed + 99)
            pal = rng.integers(0, 256, size=(10, 3))
            idx = rng.integers(0, 256, size=(h, w, 1))
            out.write("png_pal8_short_plte%s_%dx%d.png" % (tag, w, h),
                      png_bytes(idx, 8, 3, palette=pal, interlace=interlace))
            pal3 = rng.integers(0, 256, size=(3, 3))
            idx2 = rng.integers(0, 4, size=(h, w, 1))
            out.write("png_pal2_short_plte%s_%dx%d.png" % (tag, w, h),
                      png_bytes(idx2, 2, 3, palette=pal3, interlace=interlace))
    # tRNS on every kind that can have it: gray values never change.
    w, h = 40, 30
    out.write("png_gray8_trns_%dx%d.png" % (w, h), png_bytes(rng_samples(w, h, 1, 8, 5), 8, 0, trns=b"\x00\x80"))
    out.write("png_gray16_trns_%dx%d.png" % (w, h),
              png_bytes(rng_samples(w, h, 1, 16, 5), 16, 0, trns=b"\x12\x34"))
    out.write("png_rgb8_trns_%dx%d.png" % (w, h),
              png_bytes(rng_samples(w, h, 3, 8, 6), 8, 2, trns=b"\x00\x10\x00\x20\x00\x30"))
    rng = np.random.default_rng(7)
    pal = rng.integers(0, 256, size=(16, 3))
    idx = rng.integers(0, 16, size=(h, w, 1))
    out.write("png_pal4_trns_%dx%d.png" % (w, h), png_bytes(idx, 4, 3, palette=pal, trns=bytes(range(0, 256, 32))))


def png_pillow(out):
    for name, im in contents():
        s = size(im)
        out.save("png_rgb_%s_%s.png" % (name, s), im, "PNG")
        out.save("png_rgba_%s_%s.png" % (name, s), rgba(im, 3), "PNG")
        out.save("png_l_%s_%s.png" % (name, s), im.convert("L"), "PNG")
        out.save("png_la_%s_%s.png" % (name, s), rgba(im, 4).convert("LA"), "PNG")
        p = im.quantize(colors=200)
        out.save("png_p_%s_%s.png" % (name, s), p, "PNG")
        out.save("png_p_transparent_%s_%s.png" % (name, s), p, "PNG", transparency=0)
        out.save("png_l_transparent_%s_%s.png" % (name, s), im.convert("L"), "PNG", transparency=17)
        out.save("png_rgb_transparent_%s_%s.png" % (name, s), im, "PNG", transparency=(200, 120, 40))
        out.save("png_1_%s_%s.png" % (name, s), im.convert("1"), "PNG")
        out.save("png_p4bits_%s_%s.png" % (name, s), im.quantize(colors=16), "PNG", bits=4)
        i16 = Image.fromarray((np.asarray(im.convert("L")).astype(np.uint16) * 3).astype(np.uint16), "I;16")
        out.save("png_i16_%s_%s.png" % (name, s), i16, "PNG")
    im = photo(640, 480, 8)
    p = im.convert("RGBA").quantize(colors=64)
    out.save("png_pa_rgba_palette_640x480.png", p, "PNG")


# --------------------------------------------------------------- JPEG


def jpegs(out):
    for name, im in contents():
        s = size(im)
        for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
            out.save("jpeg_%s_baseline_%s_%s.jpg" % (tag, name, s), im, "JPEG", quality=90, subsampling=sub)
            out.save("jpeg_%s_progressive_%s_%s.jpg" % (tag, name, s), im, "JPEG", quality=85, subsampling=sub,
                     progressive=True)
        out.save("jpeg_gray_%s_%s.jpg" % (name, s), im.convert("L"), "JPEG", quality=90)
        out.save("jpeg_gray_progressive_%s_%s.jpg" % (name, s), im.convert("L"), "JPEG", quality=90, progressive=True)
        out.save("jpeg_cmyk_%s_%s.jpg" % (name, s), im.convert("CMYK"), "JPEG", quality=90)
    im = photo(1920, 1080, 4)
    out.save("jpeg_420_baseline_photo_1920x1080.jpg", im, "JPEG", quality=85)
    out.save("jpeg_420_lowquality_photo_640x480.jpg", photo(640, 480, 5), "JPEG", quality=10)
    out.save("jpeg_444_quality100_photo_640x480.jpg", photo(640, 480, 6), "JPEG", quality=100, subsampling=0)
    out.save("jpeg_420_optimized_photo_640x480.jpg", photo(640, 480, 7), "JPEG", quality=80, optimize=True)


# --------------------------------------------------------------- GIF by hand


def lzw_literal(indices, min_size):
    """LZW data for INDICES using only single-pixel codes, with a clear code
    before the decoder's table would widen the codes: valid for every
    decoder and simple to get right."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    width = min_size + 1
    per_clear = (1 << min_size) - 2
    codes = []
    for at in range(0, len(indices), per_clear):
        codes.append(clear)
        codes.extend(int(v) for v in indices[at : at + per_clear])
    codes.append(end)
    acc = nbits = 0
    data = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            data.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        data.append(acc & 255)
    return bytes(data)


def gif_blocks(data):
    out = b""
    for at in range(0, len(data), 255):
        chunk = data[at : at + 255]
        out += bytes([len(chunk)]) + chunk
    return out + b"\x00"


def interlace_order(h):
    return [y for start, step in ((0, 8), (4, 8), (2, 4), (1, 2)) for y in range(start, h, step)]


def pal_bits(n):
    bits = 1
    while (1 << bits) < n:
        bits += 1
    return bits


def pal_bytes(pal, bits):
    pal = np.asarray(pal, dtype=np.uint8).reshape(-1, 3)
    full = np.zeros(((1 << bits), 3), dtype=np.uint8)
    full[: len(pal)] = pal
    return full.tobytes()


def gif_bytes(screen, frames, global_pal=None, background=0):
    """GIF89a with a screen of SCREEN (w, h) and FRAMES: dicts with x, y,
    pixels (h, w) of indices, and optionally local (palette), transparency,
    gce (write one even without transparency), interlace, min_size and
    declared_height (a height for the descriptor other than the data's)."""
    w, h = screen
    flags = 0x70
    gbits = 1
    if global_pal is not None:
        gbits = pal_bits(len(global_pal))
        flags |= 0x80 | (gbits - 1)
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, flags, background, 0)
    if global_pal is not None:
        out += pal_bytes(global_pal, gbits)
    for fr in frames:
        pix = np.asarray(fr["pixels"], dtype=np.uint8)
        fh, fw = pix.shape
        t = fr.get("transparency")
        if t is not None or fr.get("gce"):
            out += b"!\xf9\x04" + bytes([1 if t is not None else 0]) + b"\x0a\x00" + bytes([t or 0]) + b"\x00"
        lflags = 0
        local = fr.get("local")
        lbits = 1
        if local is not None:
            lbits = pal_bits(len(local))
            lflags |= 0x80 | (lbits - 1)
        if fr.get("interlace"):
            lflags |= 0x40
        out += b"," + struct.pack("<HHHHB", fr["x"], fr["y"], fw, fr.get("declared_height", fh), lflags)
        if local is not None:
            out += pal_bytes(local, lbits)
        rows = interlace_order(fh) if fr.get("interlace") else range(fh)
        flat_px = np.concatenate([pix[y] for y in rows])
        min_size = fr.get("min_size", max(2, pal_bits(int(flat_px.max()) + 1)))
        out += bytes([min_size]) + gif_blocks(lzw_literal(flat_px, min_size))
    return out + b";"


def crafted_gifs(out):
    rng = np.random.default_rng(11)
    gpal = rng.integers(0, 256, size=(16, 3))
    lpal = rng.integers(0, 256, size=(16, 3))
    px = rng.integers(0, 16, size=(8, 10))
    cases = {
        "gif_offset_frame_global_20x16.gif": gif_bytes((20, 16), [dict(x=5, y=4, pixels=px)], gpal),
        "gif_offset_frame_transparent_20x16.gif": gif_bytes((20, 16), [dict(x=5, y=4, pixels=px, transparency=9)],
                                                            gpal),
        "gif_offset_frame_local_palette_20x16.gif": gif_bytes((20, 16), [dict(x=3, y=7, pixels=px, local=lpal)],
                                                              gpal),
        "gif_offset_frame_local_transparent_20x16.gif": gif_bytes(
            (20, 16), [dict(x=3, y=7, pixels=px, local=lpal, transparency=3)], gpal),
        "gif_offset_frame_local_only_20x16.gif": gif_bytes((20, 16), [dict(x=1, y=1, pixels=px, local=lpal)]),
        "gif_no_palette_20x16.gif": gif_bytes((20, 16), [dict(x=2, y=3, pixels=px)]),
        "gif_frame_past_screen_12x10.gif": gif_bytes((12, 10), [dict(x=6, y=5, pixels=px)], gpal),
        "gif_offset_interlaced_20x30.gif": gif_bytes(
            (20, 30), [dict(x=2, y=1, pixels=rng.integers(0, 16, size=(27, 15)), interlace=True)], gpal),
        "gif_interlaced_small_9x3.gif": gif_bytes(
            (9, 3), [dict(x=0, y=0, pixels=rng.integers(0, 16, size=(3, 9)), interlace=True)], gpal),
        # A 2-entry palette with indices 2 and 3: Pillow's ramp past the end.
        "gif_indices_past_palette_8x8.gif": gif_bytes(
            (8, 8), [dict(x=0, y=0, pixels=rng.integers(0, 4, size=(8, 8)), min_size=2)], [(255, 0, 0), (0, 0, 255)]),
        "gif_transparent_past_palette_12x12.gif": gif_bytes(
            (12, 12), [dict(x=4, y=4, pixels=rng.integers(0, 2, size=(4, 4)), transparency=200)],
            [(255, 0, 0), (0, 0, 255)]),
        "gif_gce_without_transparency_20x16.gif": gif_bytes((20, 16), [dict(x=5, y=4, pixels=px, gce=True)], gpal),
        "gif_1x1.gif": gif_bytes((1, 1), [dict(x=0, y=0, pixels=[[5]])], gpal),
        "gif_two_frames_first_small_20x16.gif": gif_bytes(
            (20, 16), [dict(x=5, y=4, pixels=px, transparency=2), dict(x=0, y=0, pixels=rng.integers(0, 16, (16, 20)))],
            gpal),
        # The identity ramp as a palette: Pillow drops it and reads "L".
        "gif_gray_ramp_palette_16x16.gif": gif_bytes(
            (16, 16), [dict(x=0, y=0, pixels=rng.integers(0, 256, size=(16, 16)), min_size=8)],
            [(i, i, i) for i in range(256)]),
        "gif_big_photo_palette_offset_300x200.gif": gif_bytes(
            (300, 200), [dict(x=40, y=30, pixels=rng.integers(0, 256, size=(120, 200)), min_size=8,
                              local=rng.integers(0, 256, size=(256, 3)), interlace=True)], gpal),
    }
    for name, data in cases.items():
        out.write(name, data)


def gifs_pillow(out):
    for name, im in contents():
        s = size(im)
        out.save("gif_%s_%s.gif" % (name, s), im.quantize(colors=256), "GIF")
        out.save("gif_transparent_%s_%s.gif" % (name, s), im.quantize(colors=64), "GIF", transparency=3)
        out.save("gif_l_%s_%s.gif" % (name, s), im.convert("L"), "GIF")
    im = photo(320, 240, 12)
    frames = [im.quantize(colors=128), photo(320, 240, 13).quantize(colors=128)]
    out.save("gif_animated_photo_320x240.gif", frames[0], "GIF", save_all=True, append_images=frames[1:],
             duration=100, loop=0)
    out.save("gif_not_interlaced_photo_320x240.gif", im.quantize(colors=200), "GIF", interlace=False)


# --------------------------------------------------------------- WebP


def webps(out):
    for name, im in contents():
        s = size(im)
        if max(im.size) > 16383:
            continue
        out.save("webp_lossy_%s_%s.webp" % (name, s), im, "WEBP", quality=80)
        out.save("webp_lossless_%s_%s.webp" % (name, s), im, "WEBP", lossless=True)
        out.save("webp_lossy_alpha_%s_%s.webp" % (name, s), rgba(im, 5), "WEBP", quality=80)
        out.save("webp_lossless_alpha_%s_%s.webp" % (name, s), rgba(im, 6), "WEBP", lossless=True)
        out.save("webp_lossless_alpha_exact_%s_%s.webp" % (name, s), rgba(im, 6), "WEBP", lossless=True, exact=True)
    a, b = photo(320, 240, 14), photo(320, 240, 15)
    out.save("webp_animated_photo_320x240.webp", a, "WEBP", save_all=True, append_images=[b], duration=100,
             quality=80)
    out.save("webp_animated_alpha_320x240.webp", rgba(a, 7), "WEBP", save_all=True, append_images=[rgba(b, 8)],
             duration=100, lossless=True)


# --------------------------------------------------------------- BMP


def bmp_bytes(w, h, bits, rows, palette=None, compression=0, header=40, masks=None, top_down=False, colors=None):
    """A BMP from ROWS (bytes of each row, already padded, in file order)."""
    pal = b""
    if palette is not None:
        pal = b"".join(bytes([b, g, r]) + (b"" if header == 12 else b"\x00") for r, g, b in palette)
    data = b"".join(rows)
    if header == 12:
        dib = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        hh = (1 << 32) - h if top_down else h
        ncolors = colors if colors is not None else (len(palette) if palette is not None else 0)
        dib = struct.pack("<IIIHHIIiiII", header, w, hh, 1, bits, compression, len(data), 2835, 2835, ncolors, 0)
        if header > 40:
            extra = struct.pack("<IIII", *(masks or (0, 0, 0, 0)))
            dib += extra + b"\x00" * (header - 40 - len(extra))
        elif masks is not None:
            dib += struct.pack("<III", *masks[:3])
    offset = 14 + len(dib) + len(pal)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + dib + pal + data


def pad4(b):
    return b + b"\x00" * (-len(b) % 4)


def crafted_bmps(out):
    rng = np.random.default_rng(21)
    w, h = 37, 23
    rgb = np.asarray(photo(w, h, 22))
    bottom_up = rgb[::-1]
    # 24-bit top-down, 32-bit BGRX, OS/2 24-bit
    out.write("bmp_24_topdown_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 24, [pad4(r[:, ::-1].tobytes()) for r in rgb], top_down=True))
    bgrx = [pad4(np.concatenate([r[:, ::-1], np.full((w, 1), 77, np.uint8)], axis=1).tobytes()) for r in bottom_up]
    out.write("bmp_32_bgrx_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 32, bgrx))
    out.write("bmp_os2_24_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 24, [pad4(r[:, ::-1].tobytes()) for r in bottom_up],
                                                          header=12))
    # 16-bit: 5-5-5 plain, 5-6-5 with bitfields (40-byte and v4 headers)
    r5, g5, b5 = (bottom_up[..., 0] >> 3).astype(np.uint16), (bottom_up[..., 1] >> 3).astype(np.uint16), \
        (bottom_up[..., 2] >> 3).astype(np.uint16)
    g6 = (bottom_up[..., 1] >> 2).astype(np.uint16)
    p555 = (r5 << 10) | (g5 << 5) | b5
    p565 = (r5 << 11) | (g6 << 5) | b5
    out.write("bmp_16_555_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 16, [pad4(r.astype("<u2").tobytes()) for r in p555]))
    out.write("bmp_16_565_bitfields_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 16, [pad4(r.astype("<u2").tobytes()) for r in p565], compression=3,
                        masks=(0xF800, 0x7E0, 0x1F)))
    out.write("bmp_32_abgr_v4_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 32, [np.concatenate([np.full((w, 1), 9, np.uint8), r[:, ::-1]], axis=1).tobytes()
                                   for r in bottom_up], compression=3, header=108,
                        masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF)))
    # 4-bit and 1-bit palettes, and an 8-bit palette shorter than its indices
    pal16 = [tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(16, 3))]
    idx4 = rng.integers(0, 16, size=(h, w))

    def pack4(row):
        r = np.concatenate([row, [0]]) if len(row) % 2 else row
        return pad4(((r[0::2] << 4) | r[1::2]).astype(np.uint8).tobytes())

    out.write("bmp_4_palette_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 4, [pack4(r) for r in idx4], palette=pal16))
    pal2 = [(255, 0, 0), (0, 128, 255)]
    idx1 = rng.integers(0, 2, size=(h, w))
    out.write("bmp_1_palette_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 1, [pad4(np.packbits(r).tobytes()) for r in idx1], palette=pal2))
    pal10 = [tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(10, 3))]
    idx8 = rng.integers(0, 256, size=(h, w))
    out.write("bmp_8_short_palette_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 8, [pad4(r.astype(np.uint8).tobytes()) for r in idx8], palette=pal10))
    out.write("bmp_os2_8_%dx%d.bmp" % (w, h),
              bmp_bytes(w, h, 8, [pad4(r.astype(np.uint8).tobytes()) for r in idx8],
                        palette=[tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(256, 3))], header=12))
    # A 4-bit gray-ramp palette: Pillow reads 8-bit "L" from 4-bit rows.
    out.write("bmp_4_gray_ramp_palette_3x4.bmp",
              bmp_bytes(3, 4, 4, [pack4(r) for r in rng.integers(0, 16, size=(4, 3))],
                        palette=[(i, i, i) for i in range(16)]))
    # RLE8 and RLE4, with runs, absolute runs, end of line, delta, end of bitmap
    rle8 = bytearray()
    for y in range(h):
        rle8 += bytes([5, y % 256, 0, 4, 10, 20, 30, 40])  # run of 5, absolute 4
        rle8 += bytes([0, 3, 7, 8, 9, 0])  # absolute 3 (padded)
        rle8 += bytes([w - 12, (y * 7) % 256])
        rle8 += b"\x00\x00"
    rle8 += b"\x00\x01"
    pal256 = [tuple(int(v) for v in c) for c in rng.integers(0, 256, size=(256, 3))]
    out.write("bmp_rle8_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 8, [bytes(rle8)], palette=pal256, compression=1))
    rle4 = bytearray()
    for y in range(h):
        rle4 += bytes([6, 0x12 + y % 3, 0, 4, 0x34, 0x56, w - 10, 0xAB, 0, 0])
    rle4 += b"\x00\x01"
    out.write("bmp_rle4_%dx%d.bmp" % (w, h), bmp_bytes(w, h, 4, [bytes(rle4)], palette=pal16, compression=2))
    rle_delta = bytes([4, 9, 0, 2, 0, 0, 3, 1, 2, 5, 0, 0, 0, 1])
    out.write("bmp_rle8_delta_%dx%d.bmp" % (10, 4), bmp_bytes(10, 4, 8, [rle_delta], palette=pal256, compression=1))


def bmps_pillow(out):
    for name, im in contents():
        s = size(im)
        out.save("bmp_24_%s_%s.bmp" % (name, s), im, "BMP")
        out.save("bmp_8_palette_%s_%s.bmp" % (name, s), im.quantize(colors=256), "BMP")
        out.save("bmp_8_gray_%s_%s.bmp" % (name, s), im.convert("L"), "BMP")
        out.save("bmp_1_%s_%s.bmp" % (name, s), im.convert("1"), "BMP")


# --------------------------------------------------------------- TIFF


def tiff_clean(data):
    """libtiff pads the strip data to an even offset with a byte it never
    sets; zero it, so that the file is the same on every run."""
    data = bytearray(data)
    ifd = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[ifd : ifd + 2])[0]
    tags = {}
    for i in range(n):
        tag, typ, count, value = struct.unpack("<HHII", data[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        if tag not in (273, 279):  # StripOffsets, StripByteCounts
            continue
        fmt = "<%d%s" % (count, "H" if typ == 3 else "I")
        where = ifd + 10 + 12 * i if struct.calcsize(fmt) <= 4 else value
        tags[tag] = struct.unpack(fmt, data[where : where + struct.calcsize(fmt)])
    end = max(o + c for o, c in zip(tags[273], tags[279]))
    if end < ifd:
        data[end:ifd] = bytes(ifd - end)
    return bytes(data)


def save_tiff(out, name, im, **params):
    buf = io.BytesIO()
    im.save(buf, "TIFF", **params)
    out.write(name, tiff_clean(buf.getvalue()))


def tiffs(out):
    for name, im in contents():
        s = size(im)
        out.save("tiff_rgb_%s_%s.tiff" % (name, s), im, "TIFF")
        out.save("tiff_l_%s_%s.tiff" % (name, s), im.convert("L"), "TIFF")
    im = photo(200, 150, 31)
    save_tiff(out, "tiff_rgb_lzw_photo_200x150.tiff", im, compression="tiff_lzw")
    save_tiff(out, "tiff_rgb_deflate_photo_200x150.tiff", im, compression="tiff_adobe_deflate")
    save_tiff(out, "tiff_rgb_packbits_photo_200x150.tiff", im, compression="packbits")
    save_tiff(out, "tiff_l_lzw_photo_200x150.tiff", im.convert("L"), compression="tiff_lzw")
    save_tiff(out, "tiff_l_deflate_photo_200x150.tiff", im.convert("L"), compression="tiff_adobe_deflate")
    save_tiff(out, "tiff_rgb_jpeg_photo_200x150.tiff", im, compression="jpeg")
    save_tiff(out, "tiff_p_photo_200x150.tiff", im.quantize(colors=100))
    save_tiff(out, "tiff_1_photo_200x150.tiff", im.convert("1"))
    save_tiff(out, "tiff_cmyk_photo_200x150.tiff", im.convert("CMYK"))
    save_tiff(out, "tiff_la_photo_200x150.tiff", rgba(im, 9).convert("LA"))
    frames = [photo(200, 150, 32)]
    save_tiff(out, "tiff_two_pages_photo_200x150.tiff", im, save_all=True, append_images=frames)


# --------------------------------------------------------------- cut and bad files


def cut_points(n):
    return sorted({n - 1, n - 2, n - 4, n - 12, n * 9 // 10, n // 2, n // 5})


def cuts(out):
    """Valid files cut short: Pillow's verdict is the reference."""
    im = photo(64, 48, 41)
    sources = {
        "jpeg_baseline": (im, "JPEG", dict(quality=90), "jpg"),
        "jpeg_progressive": (im, "JPEG", dict(quality=90, progressive=True), "jpg"),
        "png_rgb": (im, "PNG", {}, "png"),
        "gif": (im.quantize(colors=64), "GIF", {}, "gif"),
        "webp_lossy": (im, "WEBP", dict(quality=80), "webp"),
        "webp_lossless": (im, "WEBP", dict(lossless=True), "webp"),
        "bmp_24": (im, "BMP", {}, "bmp"),
        "bmp_8": (im.quantize(colors=256), "BMP", {}, "bmp"),
    }
    for name, (src, fmt, params, ext) in sources.items():
        buf = io.BytesIO()
        src.save(buf, fmt, **params)
        data = buf.getvalue()
        for n in cut_points(len(data)):
            out.write("cut_%s_%d_of_%d.%s" % (name, n, len(data), ext), data[:n])
    # A PNG whose data stream ends right after the last row (no adler32, no
    # IEND): Pillow has every row and decodes it.  Interlaced too.
    for interlace in (False, True):
        s = rng_samples(21, 13, 3, 8, 42)
        raw = zlib.compressobj(9)
        stream = raw.compress(png_raw(s, 8, interlace)) + raw.flush(zlib.Z_SYNC_FLUSH)
        data = png_bytes(s, 8, 2, interlace=interlace, idat=stream)
        tag = "_interlaced" if interlace else ""
        out.write("cut_png_no_adler_no_iend%s_21x13.png" % tag, data[: data.index(b"IEND") - 4])
        full = png_bytes(s, 8, 2, interlace=interlace)
        out.write("cut_png_no_iend%s_21x13.png" % tag, full[: full.index(b"IEND") - 4])
    for w, h in ((1, 1), (1, 9), (9, 1), (2, 3), (3, 2), (5, 5), (8, 8), (16, 1)):
        s = rng_samples(w, h, 3, 8, w * 10 + h)
        raw = zlib.compressobj(9)
        stream = raw.compress(png_raw(s, 8, True)) + raw.flush(zlib.Z_SYNC_FLUSH)
        data = png_bytes(s, 8, 2, interlace=True, idat=stream)
        out.write("cut_png_no_adler_no_iend_interlaced_%dx%d.png" % (w, h), data[: data.index(b"IEND") - 4])
    # A GIF that stops after its last pixel's sub-block: no terminator, no trailer.
    rng = np.random.default_rng(43)
    g = gif_bytes((10, 10), [dict(x=0, y=0, pixels=rng.integers(0, 4, size=(10, 10)))], [(1, 2, 3)] * 4)
    out.write("cut_gif_no_terminator_10x10.gif", g[:-2])
    out.write("cut_gif_no_trailer_10x10.gif", g[:-1])


def png_chunks(data):
    """(type, offset) of every chunk of a PNG."""
    out, at = [], 8
    while at + 8 <= len(data):
        n = struct.unpack(">I", data[at : at + 4])[0]
        out.append((data[at + 4 : at + 8], at))
        at += 12 + n
    return out


def damaged(out):
    """Bad CRCs, missing chunks, short LZW data: Pillow's verdict is the reference."""
    s = rng_samples(21, 13, 3, 8, 44)
    full = png_bytes(s, 8, 2)
    text = bytearray(png_chunk(b"tEXt", b"Comment\x00hello"))
    text[-1] ^= 1
    after_ihdr = 8 + 25
    out.write("damaged_png_bad_text_crc.png", full[:after_ihdr] + bytes(text) + full[after_ihdr:])
    bad_ihdr = bytearray(full)
    bad_ihdr[8 + 8 + 2] ^= 1
    out.write("damaged_png_bad_ihdr_crc.png", bytes(bad_ihdr))
    at = [a for t, a in png_chunks(full) if t == b"IDAT"][0]
    n = struct.unpack(">I", full[at : at + 4])[0]
    bad_idat = bytearray(full)
    bad_idat[at + 8 + n] ^= 1
    out.write("damaged_png_bad_idat_crc.png", bytes(bad_idat))
    bad_iend = bytearray(full)
    bad_iend[-1] ^= 1
    out.write("damaged_png_bad_iend_crc.png", bytes(bad_iend))
    iend = [a for t, a in png_chunks(full) if t == b"IEND"][0]
    out.write("damaged_png_bad_text_crc_after_idat.png", full[:iend] + bytes(text) + full[iend:])
    rng = np.random.default_rng(45)
    out.write("damaged_png_palette_without_plte.png", png_bytes(rng.integers(0, 256, size=(5, 7, 1)), 8, 3))
    out.write("damaged_png_pal2_without_plte.png", png_bytes(rng.integers(0, 4, size=(6, 9, 1)), 2, 3))
    # LZW data that ends (end code) before the frame is full.
    pal = [(9, 9, 9), (200, 0, 0), (0, 200, 0), (0, 0, 200)]
    px = rng.integers(0, 4, size=(3, 6))
    out.write("damaged_gif_short_lzw_data.gif", gif_bytes((6, 6), [dict(x=0, y=0, pixels=px, declared_height=6)], pal))


def png_bomb(w, h, depth):
    """A real PNG of w x h all-zero gray at DEPTH: a few hundred KB."""
    row = b"\x00" * (1 + (w * depth + 7) // 8)
    z = zlib.compressobj(9)
    parts = [z.compress(row) for _ in range(h)]
    parts.append(z.flush())
    return png_with_header(w, h, depth, 0, b"".join(parts))


def png_with_header(w, h, depth, ctype, stream):
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    for at in range(0, len(stream), 1 << 16):
        out += png_chunk(b"IDAT", stream[at : at + (1 << 16)])
    return out + png_chunk(b"IEND", b"")


def bads(out):
    im = photo(320, 240, 51)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    jpg = buf.getvalue()
    out.write("bad_truncated_baseline.jpg", jpg[: len(jpg) * 6 // 10])
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, progressive=True)
    out.write("bad_truncated_progressive.jpg", buf.getvalue()[: len(buf.getvalue()) * 6 // 10])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out.write("bad_truncated.png", buf.getvalue()[: len(buf.getvalue()) // 2])
    s = rng_samples(320, 240, 3, 8, 52)
    inter = png_bytes(s, 8, 2, interlace=True)
    out.write("bad_truncated_interlaced.png", inter[: len(inter) * 8 // 10])
    buf = io.BytesIO()
    im.quantize(colors=200).save(buf, "GIF")
    out.write("bad_truncated.gif", buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=80)
    out.write("bad_truncated.webp", buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    im.save(buf, "BMP")
    out.write("bad_truncated.bmp", buf.getvalue()[: len(buf.getvalue()) // 2])
    out.write("bad_empty.jpg", b"")
    out.write("bad_html.jpg", b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
                              b"<body><h1>Not Found</h1><p>The requested URL was not found.</p></body></html>\n")
    # A PNG whose IHDR says 30000x30000 (a few rows of data follow).
    out.write("bad_png_header_30000x30000.png", png_with_header(30000, 30000, 8, 0, zlib.compress(b"\x00" * 30001 * 4)))
    # Real decompression bombs: every row present, all zero.
    out.write("bad_png_bomb_20000x20000_gray1.png", png_bomb(20000, 20000, 1))
    out.write("bad_png_bomb_20000x20000_gray8.png", png_bomb(20000, 20000, 8))
    # Headers of other formats claiming too many pixels.
    sof = jpg.index(b"\xff\xc0")
    out.write("bad_jpeg_header_60000x60000.jpg", jpg[: sof + 5] + struct.pack(">HH", 60000, 60000) + jpg[sof + 9 :])
    out.write("bad_gif_screen_65535x65535.gif",
              gif_bytes((65535, 65535), [dict(x=0, y=0, pixels=[[1, 2], [3, 0]])], [(0, 0, 0), (255, 255, 255)]))
    out.write("bad_bmp_header_30000x30000.bmp", bmp_bytes(30000, 30000, 24, [b"\x00" * 90000]))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    out = Out(outdir)
    crafted_pngs(out)
    png_pillow(out)
    jpegs(out)
    crafted_gifs(out)
    gifs_pillow(out)
    webps(out)
    crafted_bmps(out)
    bmps_pillow(out)
    tiffs(out)
    cuts(out)
    damaged(out)
    bads(out)
    print("%d files in %s" % (len(out.names), outdir))


if __name__ == "__main__":
    main()
