/* decode_bmp.c -- BMP to Pillow's gray, read by hand.
 *
 * BMP is simple enough to read directly, and Pillow 9.4's BmpImagePlugin
 * has rules of its own that libgd does not share, so this file follows
 * BmpImagePlugin._bitmap() and BmpRleDecoder step by step:
 *   - headers of 12 (OS/2), 40, 64, 108 and 124 bytes; a negative height
 *     means top-down rows;
 *   - 1, 4 and 8 bits go through the palette (4-byte entries, 3 for OS/2),
 *     Pillow's gray ramp past its end.  A palette that is already a gray
 *     ramp (or black and white for 2 colours) makes Pillow read the pixels
 *     as "L" (8 bits) or "1" (1 bit) whatever their real depth, which we
 *     repeat, odd as it is;
 *   - 16 bits are 5-5-5 (or 5-6-5 with BITFIELDS) scaled by 255/31 and
 *     255/63; 24 and 32 bits are BGR(X), 32-bit BITFIELDS take Pillow's
 *     five known layouts; alpha never matters;
 *   - RLE8 and RLE4 decode as BmpRleDecoder does, quirks included (its
 *     delta skips two bytes first, absolute runs align on the file offset),
 *     and fail where it fails;
 *   - rows are `((width * bits + 31) >> 3) & ~3` bytes apart, and the last
 *     row needs only its own bytes: anything shorter is "truncated image".
 * The pixel count is checked before the gray image is allocated; nothing
 * else is allocated.
 */
#include <stdbool.h>
#include <string.h>

#include "decode_formats.h"

enum { BMP_RAW = 0, BMP_RLE8 = 1, BMP_RLE4 = 2, BMP_BITFIELDS = 3 };

/* How Pillow unpacks a pixel (its rawmode). */
typedef enum bmpdec_unpack {
    BMP_UNPACK_P1,   /* "P;1": 1-bit palette index */
    BMP_UNPACK_P4,   /* "P;4" */
    BMP_UNPACK_P8,   /* "P" */
    BMP_UNPACK_BIT1, /* "1": 1 bit, 0 or 255 */
    BMP_UNPACK_L8,   /* "L": the byte is the gray */
    BMP_UNPACK_BGR15,
    BMP_UNPACK_BGR16,
    BMP_UNPACK_BYTES, /* 3 or 4 bytes with R, G, B at offsets r, g, b */
} bmpdec_unpack;

typedef struct bmpdec_info {
    const unsigned char *data;
    size_t len;
    uint32_t header_size;
    uint64_t width, height;
    bool top_down;
    unsigned bits;
    uint32_t compression;
    uint64_t colors;
    uint32_t masks[4]; /* r, g, b, a for BITFIELDS */
    size_t cursor;     /* where Pillow's file pointer is after the headers */
    size_t offset;     /* the pixel data */
    unsigned padding;  /* bytes a palette entry */
    bmpdec_unpack unpack;
    unsigned unpack_bits; /* bits a pixel as unpacked (may differ from bits) */
    int r, g, b;          /* byte offsets for BMP_UNPACK_BYTES */
    bool greyscale;       /* the palette is Pillow's "ditch palette" case */
    ih_decode_palette palette;
} bmpdec_info;

static uint32_t bmpdec_u16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t bmpdec_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int bmpdec_truncated(char err[IH_DECODE_ERROR_MAX]) { return ih_decode_fail(err, "truncated image"); }

/* The BITFIELDS masks: in the header when it has room, else the three
 * words right after a 40-byte header. */
static int bmpdec_read_masks(bmpdec_info *info, const unsigned char *hd, char err[IH_DECODE_ERROR_MAX]) {
    if (info->header_size - 4 >= 52) {
        for (int i = 0; i < 4; i++)
            info->masks[i] = bmpdec_u32(hd + 36 + 4 * i);
        return 0;
    }
    if (info->len - info->cursor < 12) return bmpdec_truncated(err);
    for (int i = 0; i < 3; i++)
        info->masks[i] = bmpdec_u32(info->data + info->cursor + 4 * i);
    info->masks[3] = 0;
    info->cursor += 12;
    return 0;
}

/* File header and DIB header (BmpImagePlugin._open and the top of _bitmap). */
static int bmpdec_parse_header(bmpdec_info *info, char err[IH_DECODE_ERROR_MAX]) {
    if (info->len < 18) return bmpdec_truncated(err);
    info->offset = bmpdec_u32(info->data + 10);
    info->header_size = bmpdec_u32(info->data + 14);
    if (info->header_size < 4 || info->len - 14 < info->header_size) return bmpdec_truncated(err);
    const unsigned char *hd = info->data + 18; /* the header after its size */
    info->cursor = 14 + (size_t)info->header_size;
    if (info->header_size == 12) {
        info->width = bmpdec_u16(hd);
        info->height = bmpdec_u16(hd + 2);
        info->bits = bmpdec_u16(hd + 6);
        info->compression = BMP_RAW;
        info->padding = 3;
    } else if (info->header_size == 40 || info->header_size == 64 || info->header_size == 108 ||
               info->header_size == 124) {
        info->top_down = hd[7] == 0xff;
        info->width = bmpdec_u32(hd);
        info->height = info->top_down ? (1ull << 32) - bmpdec_u32(hd + 4) : bmpdec_u32(hd + 4);
        info->bits = bmpdec_u16(hd + 10);
        info->compression = bmpdec_u32(hd + 12);
        info->colors = bmpdec_u32(hd + 28);
        info->padding = 4;
        if (info->compression == BMP_BITFIELDS && bmpdec_read_masks(info, hd, err) < 0) return -1;
    } else {
        return ih_decode_fail(err, "corrupt image: unsupported BMP header type (%u)", info->header_size);
    }
    if (!info->colors) info->colors = info->bits < 64 ? 1ull << info->bits : 0;
    if (info->offset == 14 + (size_t)info->header_size && info->bits <= 8) info->offset += 4 * info->colors;
    return 0;
}

/* Pillow's rawmode for a BITFIELDS layout, or -1. */
static int bmpdec_bitfields(bmpdec_info *info, char err[IH_DECODE_ERROR_MAX]) {
    static const struct {
        unsigned bits;
        uint32_t m[4];
        int r, g, b; /* -1: the 16-bit layouts */
    } known[] = {
        {32, {0xff0000, 0xff00, 0xff, 0}, 2, 1, 0},          /* BGRX */
        {32, {0xff000000, 0xff0000, 0xff00, 0}, 3, 2, 1},    /* XBGR */
        {32, {0xff000000, 0xff0000, 0xff00, 0xff}, 3, 2, 1}, /* ABGR */
        {32, {0xff, 0xff00, 0xff0000, 0xff000000}, 0, 1, 2}, /* RGBA */
        {32, {0xff0000, 0xff00, 0xff, 0xff000000}, 2, 1, 0}, /* BGRA */
        {32, {0, 0, 0, 0}, 2, 1, 0},                         /* BGRA */
        {24, {0xff0000, 0xff00, 0xff, 0}, 2, 1, 0},          /* BGR */
        {16, {0xf800, 0x7e0, 0x1f, 0}, -1, -1, -1},          /* BGR;16 */
        {16, {0x7c00, 0x3e0, 0x1f, 0}, -1, -1, -1},          /* BGR;15 */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (known[i].bits != info->bits || known[i].m[0] != info->masks[0] || known[i].m[1] != info->masks[1] ||
            known[i].m[2] != info->masks[2] || (info->bits == 32 && known[i].m[3] != info->masks[3]))
            continue;
        if (known[i].r < 0) {
            info->unpack = known[i].m[0] == 0xf800 ? BMP_UNPACK_BGR16 : BMP_UNPACK_BGR15;
        } else {
            info->unpack = BMP_UNPACK_BYTES;
            info->r = known[i].r, info->g = known[i].g, info->b = known[i].b;
        }
        return 0;
    }
    return ih_decode_fail(err, "corrupt image: unsupported BMP bitfields layout");
}

/* BIT2MODE and the compression checks: how pixels are unpacked. */
static int bmpdec_choose_unpack(bmpdec_info *info, char err[IH_DECODE_ERROR_MAX]) {
    info->unpack_bits = info->bits;
    switch (info->bits) {
    case 1: info->unpack = BMP_UNPACK_P1; break;
    case 4: info->unpack = BMP_UNPACK_P4; break;
    case 8: info->unpack = BMP_UNPACK_P8; break;
    case 16: info->unpack = BMP_UNPACK_BGR15; break;
    case 24: info->unpack = BMP_UNPACK_BYTES, info->r = 2, info->g = 1, info->b = 0; break;
    case 32: info->unpack = BMP_UNPACK_BYTES, info->r = 2, info->g = 1, info->b = 0; break;
    default: return ih_decode_fail(err, "corrupt image: unsupported BMP pixel depth (%u)", info->bits);
    }
    switch (info->compression) {
    case BMP_RAW: return 0;
    case BMP_BITFIELDS:
        if (info->bits != 16 && info->bits != 24 && info->bits != 32)
            return ih_decode_fail(err, "corrupt image: unsupported BMP bitfields layout");
        return bmpdec_bitfields(info, err);
    case BMP_RLE8:
    case BMP_RLE4:
        if (info->bits > 8) return ih_decode_fail(err, "corrupt image: RLE with %u-bit pixels", info->bits);
        return 0;
    default: return ih_decode_fail(err, "corrupt image: unsupported BMP compression (%u)", info->compression);
    }
}

/* The palette of 1, 4 and 8-bit images, read where Pillow reads it (as
 * many entries as the header says, as far as the file goes).  A gray ramp
 * (or black and white for 2 colours; Pillow compares entry i with i & 255)
 * switches to Pillow's "L" or "1" unpacking; any other palette becomes the
 * image's, and more than 256 entries of it fail as putpalette() does. */
static int bmpdec_read_palette(bmpdec_info *info, char err[IH_DECODE_ERROR_MAX]) {
    if (info->bits > 8) return 0;
    if (info->colors == 0 || info->colors > 65536)
        return ih_decode_fail(err, "corrupt image: unsupported BMP palette size (%llu)",
                              (unsigned long long)info->colors);
    size_t want = info->padding * (size_t)info->colors;
    size_t have = info->cursor < info->len ? info->len - info->cursor : 0;
    size_t size = want < have ? want : have;
    const unsigned char *entries = info->data + info->cursor;
    info->cursor += size;
    info->greyscale = true;
    for (uint64_t i = 0; i < info->colors && info->greyscale; i++) {
        unsigned value = info->colors == 2 ? (unsigned)i * 255u : (unsigned)(i & 255);
        size_t at = (size_t)i * info->padding;
        if (at + 3 > size || entries[at] != value || entries[at + 1] != value || entries[at + 2] != value)
            info->greyscale = false;
    }
    if (info->greyscale) {
        info->unpack = info->colors == 2 ? BMP_UNPACK_BIT1 : BMP_UNPACK_L8;
        info->unpack_bits = info->colors == 2 ? 1 : 8;
        ih_decode_palette_init(&info->palette, NULL, 0, 0, 0, 0, 0); /* RLE bytes are the gray */
        return 0;
    }
    if (size / info->padding > 256) return ih_decode_fail(err, "corrupt image: invalid palette size");
    ih_decode_palette_init(&info->palette, entries, (int)(size / info->padding), (int)info->padding, 2, 1, 0);
    return 0;
}

/* One row of WIDTH pixels at SRC, unpacked as Pillow's rawmode does, into
 * GRAY; the R, G, B of Pillow's convert('RGB') added to COLOUR. */
static void bmpdec_gray_row(const bmpdec_info *info, unsigned char *gray, const unsigned char *src, int width,
                            ih_colour *colour) {
    const ih_decode_palette *pal = &info->palette;
    switch (info->unpack) {
    case BMP_UNPACK_P1:
        for (int x = 0; x < width; x++) {
            unsigned i = (src[x >> 3] >> (7 - (x & 7))) & 1;
            gray[x] = pal->gray[i];
            ih_colour_add_pixel(colour, pal->rgb[i][0], pal->rgb[i][1], pal->rgb[i][2]);
        }
        break;
    case BMP_UNPACK_P4:
        for (int x = 0; x < width; x++) {
            unsigned i = (src[x >> 1] >> (x & 1 ? 0 : 4)) & 15;
            gray[x] = pal->gray[i];
            ih_colour_add_pixel(colour, pal->rgb[i][0], pal->rgb[i][1], pal->rgb[i][2]);
        }
        break;
    case BMP_UNPACK_P8:
        for (int x = 0; x < width; x++) {
            unsigned i = src[x];
            gray[x] = pal->gray[i];
            ih_colour_add_pixel(colour, pal->rgb[i][0], pal->rgb[i][1], pal->rgb[i][2]);
        }
        break;
    case BMP_UNPACK_BIT1:
        for (int x = 0; x < width; x++)
            gray[x] = (src[x >> 3] >> (7 - (x & 7))) & 1 ? 255 : 0;
        ih_colour_add_gray(colour, gray, (size_t)width);
        break;
    case BMP_UNPACK_L8:
        memcpy(gray, src, (size_t)width);
        ih_colour_add_gray(colour, gray, (size_t)width);
        break;
    case BMP_UNPACK_BGR15:
    case BMP_UNPACK_BGR16:
        for (int x = 0; x < width; x++) {
            unsigned p = src[2 * x] | (unsigned)src[2 * x + 1] << 8;
            unsigned b = (p & 31) * 255 / 31, r, g;
            if (info->unpack == BMP_UNPACK_BGR16)
                g = ((p >> 5) & 63) * 255 / 63, r = ((p >> 11) & 31) * 255 / 31;
            else
                g = ((p >> 5) & 31) * 255 / 31, r = ((p >> 10) & 31) * 255 / 31;
            gray[x] = ih_decode_luma(r, g, b);
            ih_colour_add_pixel(colour, r, g, b);
        }
        break;
    case BMP_UNPACK_BYTES: {
        int step = (int)info->unpack_bits / 8;
        for (int x = 0; x < width; x++, src += step) {
            gray[x] = ih_decode_luma(src[info->r], src[info->g], src[info->b]);
            ih_colour_add_pixel(colour, src[info->r], src[info->g], src[info->b]);
        }
        break;
    }
    }
}

static int bmpdec_decode_raw(const bmpdec_info *info, ih_gray *out, char err[IH_DECODE_ERROR_MAX]) {
    size_t stride = (size_t)((((uint64_t)info->width * info->bits + 31) >> 3) & ~(uint64_t)3);
    size_t need = (size_t)(((uint64_t)info->width * info->unpack_bits + 7) / 8);
    if (need > stride) return ih_decode_fail(err, "corrupt image: BMP rows too short for their pixels");
    size_t h = (size_t)info->height;
    if (info->offset > info->len || info->len - info->offset < need ||
        (info->len - info->offset - need) / stride < h - 1)
        return bmpdec_truncated(err);
    for (size_t i = 0; i < h; i++) {
        size_t y = info->top_down ? i : h - 1 - i;
        bmpdec_gray_row(info, out->pixels + y * (size_t)out->width, info->data + info->offset + i * stride, out->width,
                        &out->colour);
    }
    return 0;
}

/* BmpRleDecoder's output: palette indices, rows of `width` bytes in file
 * order, written into OUT (which has exactly width * height bytes); the
 * rows are flipped and mapped through the palette by the caller. */
typedef struct bmpdec_rle {
    const bmpdec_info *info;
    unsigned char *buf;
    size_t n, cap; /* bytes produced (may pass cap; extra ones are dropped) */
    size_t pos;    /* Pillow's file position */
} bmpdec_rle;

static void bmpdec_rle_put(bmpdec_rle *rle, unsigned char value, size_t count) {
    for (size_t i = 0; i < count && rle->n < rle->cap; i++)
        rle->buf[rle->n++] = value;
    if (rle->n >= rle->cap) rle->n += count; /* only the length matters now */
}

/* An absolute run of COUNT pixels; false when the data ends inside it. */
static bool bmpdec_rle_absolute(bmpdec_rle *rle, unsigned count, bool rle4) {
    const unsigned char *d = rle->info->data;
    size_t byte_count = rle4 ? count / 2 : count;
    size_t have = rle->pos < rle->info->len ? rle->info->len - rle->pos : 0;
    size_t got = byte_count < have ? byte_count : have;
    for (size_t i = 0; i < got; i++) {
        unsigned char v = d[rle->pos + i];
        if (rle4) {
            bmpdec_rle_put(rle, v >> 4, 1);
            bmpdec_rle_put(rle, v & 15, 1);
        } else {
            bmpdec_rle_put(rle, v, 1);
        }
    }
    rle->pos += got;
    if (got < byte_count) return false;
    if (rle->pos % 2) rle->pos++;
    return true;
}

/* The loop of BmpRleDecoder.decode(); -1 where it raises. */
static int bmpdec_rle_run(bmpdec_rle *rle, char err[IH_DECODE_ERROR_MAX]) {
    const unsigned char *d = rle->info->data;
    size_t len = rle->info->len, width = (size_t)rle->info->width;
    bool rle4 = rle->info->compression == BMP_RLE4;
    size_t x = 0;
    while (rle->n < rle->cap) {
        if (rle->pos >= len || len - rle->pos < 2) break;
        unsigned count = d[rle->pos], byte = d[rle->pos + 1];
        rle->pos += 2;
        if (count) {
            size_t run = x + count > width ? (width > x ? width - x : 0) : count;
            for (size_t i = 0; i < run; i++)
                bmpdec_rle_put(rle, rle4 ? (i % 2 ? byte & 15 : byte >> 4) : byte, 1);
            x += run;
        } else if (byte == 0) {
            while (rle->n % width)
                bmpdec_rle_put(rle, 0, 1);
            x = 0;
        } else if (byte == 1) {
            break;
        } else if (byte == 2) {
            if (rle->pos >= len || len - rle->pos < 2) break;
            rle->pos += 2; /* Pillow reads two bytes, then the two it uses */
            if (rle->pos >= len || len - rle->pos < 2)
                return ih_decode_fail(err, "corrupt image: BMP RLE delta cut short");
            size_t right = d[rle->pos], up = d[rle->pos + 1];
            rle->pos += 2;
            bmpdec_rle_put(rle, 0, right + up * width);
            x = rle->n % width;
        } else {
            if (!bmpdec_rle_absolute(rle, byte, rle4)) break;
            x += byte;
        }
    }
    if (rle->n < rle->cap) return ih_decode_fail(err, "truncated image");
    return 0;
}

static int bmpdec_decode_rle(const bmpdec_info *info, ih_gray *out, char err[IH_DECODE_ERROR_MAX]) {
    if (info->greyscale && info->colors == 2)
        return ih_decode_fail(err, "corrupt image: RLE with a black and white palette");
    bmpdec_rle rle = {
        .info = info, .buf = out->pixels, .cap = (size_t)out->width * (size_t)out->height, .pos = info->offset};
    if (bmpdec_rle_run(&rle, err) < 0) return -1;
    size_t w = (size_t)out->width, h = (size_t)out->height;
    if (!info->top_down) {
        unsigned char tmp;
        for (size_t y = 0; y < h / 2; y++)
            for (size_t x = 0; x < w; x++) {
                tmp = out->pixels[y * w + x];
                out->pixels[y * w + x] = out->pixels[(h - 1 - y) * w + x];
                out->pixels[(h - 1 - y) * w + x] = tmp;
            }
    }
    uint64_t counts[256] = {0};
    for (size_t i = 0; i < w * h; i++) {
        counts[out->pixels[i]]++;
        out->pixels[i] = info->palette.gray[out->pixels[i]];
    }
    ih_colour_add_indexed(&out->colour, &info->palette, counts);
    return 0;
}

static int bmpdec_open(bmpdec_info *info, const unsigned char *data, size_t len, char err[IH_DECODE_ERROR_MAX]) {
    memset(info, 0, sizeof *info);
    info->data = data;
    info->len = len;
    if (bmpdec_parse_header(info, err) < 0 || bmpdec_choose_unpack(info, err) < 0 || bmpdec_read_palette(info, err) < 0)
        return -1;
    if (info->offset == 0) info->offset = info->cursor;
    return 0;
}

int ih_decode_bmp_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]) {
    bmpdec_info info;
    if (bmpdec_open(&info, data, len, err) < 0) return -1;
    if (ih_decode_check_size(info.width, info.height, max_pixels, err) < 0) return -1;
    if (ih_decode_alloc(out, (int)info.width, (int)info.height, err) < 0) return -1;
    bool rle = info.compression == BMP_RLE8 || info.compression == BMP_RLE4;
    int status = rle ? bmpdec_decode_rle(&info, out, err) : bmpdec_decode_raw(&info, out, err);
    if (status < 0) ih_gray_release(out);
    return status;
}

int ih_decode_bmp_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]) {
    bmpdec_info info;
    memset(&info, 0, sizeof info);
    info.data = data;
    info.len = len;
    if (bmpdec_parse_header(&info, err) < 0) return -1;
    if (ih_decode_check_size(info.width, info.height, 0, err) < 0) return -1;
    *width = (int)info.width;
    *height = (int)info.height;
    return 0;
}
