/* decode_gd.c -- TIFF, AVIF and HEIF to gray, through libgd.
 *
 * These formats are rare on the web, so libgd decodes them into
 * a gdImage and we take Pillow's L formula of each pixel's red, green and
 * blue.  TIFF goes through libtiff; AVIF and HEIF both go through libgd's
 * HEIF reader, since libheif reads AVIF as well and libgd 2.3.3's AVIF
 * reader leaks a few hundred bytes a call.  For 8-bit TIFFs (RGB, gray,
 * palette, gray + alpha, CMYK, any compression) this is exactly Pillow's
 * result, and so is 1-bit once libgd's black/white swap is undone.  Not
 * equal: 16-bit gray (libtiff scales to 8 bits where Pillow clips) and RGBA
 * with partial alpha (libtiff premultiplies).  Pillow 9.4 opens no AVIF or
 * HEIF at all, so for those there is nothing to be equal to.
 *
 * libgd allocates as soon as it decodes, so the pixel count is read from
 * the header first: TIFF's first IFD (ImageWidth, ImageLength), and for
 * AVIF and HEIF the primary item's "ispe" (image spatial extent) property,
 * found through the "meta" box's pitm, ipma and ipco, "irot" turning it.
 *
 * libgd and libtiff report through process-wide handlers; ours are
 * installed once and write the message into a thread-local buffer that the
 * current call points at, so concurrent decodes keep their own messages and
 * nothing is printed.
 */
#include <dlfcn.h>
#include <gd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "decode_formats.h"

static _Thread_local char *gddec_message; /* the running call's buffer, or NULL */
static pthread_once_t gddec_once = PTHREAD_ONCE_INIT;

static void gddec_on_error(int priority, const char *fmt, va_list ap) {
    (void)priority;
    if (gddec_message && !gddec_message[0]) vsnprintf(gddec_message, IH_DECODE_ERROR_MAX, fmt, ap);
}

/* libtiff (loaded with libgd) prints its errors and warnings to stderr
 * unless told otherwise, and libgd does not tell it; we do, finding its
 * setters at run time so that we need not link libtiff ourselves. */
typedef void (*gddec_tiff_handler)(const char *module, const char *fmt, va_list ap);
typedef gddec_tiff_handler (*gddec_tiff_setter)(gddec_tiff_handler);

static void gddec_on_tiff_error(const char *module, const char *fmt, va_list ap) {
    (void)module;
    gddec_on_error(0, fmt, ap);
}

static void gddec_on_tiff_warning(const char *module, const char *fmt, va_list ap) {
    (void)module;
    (void)fmt;
    (void)ap;
}

static void gddec_set_tiff_handler(const char *name, gddec_tiff_handler handler) {
    gddec_tiff_setter setter;
    *(void **)&setter = dlsym(RTLD_DEFAULT, name);
    if (setter) setter(handler);
}

static void gddec_install(void) {
    gdSetErrorMethod(gddec_on_error);
    gddec_set_tiff_handler("TIFFSetErrorHandler", gddec_on_tiff_error);
    gddec_set_tiff_handler("TIFFSetWarningHandler", gddec_on_tiff_warning);
}

/* --- sizes from the headers --- */

static uint32_t gddec_get(const unsigned char *p, int n, bool big) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint32_t)p[big ? i : n - 1 - i] << (8 * (n - 1 - i));
    return v;
}

/* What we read of a TIFF's first IFD. */
typedef struct gddec_tiff {
    uint64_t width, height; /* ImageWidth (256), ImageLength (257) */
    uint32_t bits, samples; /* BitsPerSample (258), SamplesPerPixel (277) */
    int photometric;        /* PhotometricInterpretation (262), -1 if absent */
} gddec_tiff;

static int gddec_tiff_parse(const unsigned char *data, size_t len, gddec_tiff *tiff, char err[IH_DECODE_ERROR_MAX]) {
    bool big = data[0] == 'M';
    uint32_t ifd = len >= 8 ? gddec_get(data + 4, 4, big) : 0;
    if (len < 8 || ifd > len || len - ifd < 2) return ih_decode_fail(err, "truncated image");
    uint32_t count = gddec_get(data + ifd, 2, big);
    *tiff = (gddec_tiff){.bits = 1, .samples = 1, .photometric = -1};
    for (uint32_t i = 0; i < count; i++) {
        size_t at = (size_t)ifd + 2 + (size_t)i * 12;
        if (at + 12 > len) return ih_decode_fail(err, "truncated image");
        uint32_t tag = gddec_get(data + at, 2, big), type = gddec_get(data + at + 2, 2, big);
        uint32_t value = type == 3 ? gddec_get(data + at + 8, 2, big) : gddec_get(data + at + 8, 4, big);
        switch (tag) {
        case 256: tiff->width = value; break;
        case 257: tiff->height = value; break;
        case 258: tiff->bits = gddec_get(data + at + 4, 4, big) == 1 ? value : 0; break; /* 0: one per sample */
        case 262: tiff->photometric = (int)value; break;
        case 277: tiff->samples = value; break;
        }
    }
    if (!tiff->width || !tiff->height)
        return ih_decode_fail(err, "corrupt image: no ImageWidth or ImageLength in the TIFF");
    return 0;
}

typedef struct gddec_box {
    const unsigned char *body;
    size_t size;
    char type[5];
} gddec_box;

/* The box at *AT within [data, data+len); advances *AT.  False at the end
 * or on a malformed box. */
static bool gddec_next_box(const unsigned char *data, size_t len, size_t *at, gddec_box *box) {
    if (*at + 8 > len) return false;
    uint64_t size = gddec_get(data + *at, 4, true);
    size_t header = 8;
    if (size == 1) {
        if (*at + 16 > len) return false;
        size = (uint64_t)gddec_get(data + *at + 8, 4, true) << 32 | gddec_get(data + *at + 12, 4, true);
        header = 16;
    } else if (size == 0) {
        size = len - *at;
    }
    if (size < header || size > len - *at) return false;
    memcpy(box->type, data + *at + 4, 4);
    box->type[4] = '\0';
    box->body = data + *at + header;
    box->size = (size_t)size - header;
    *at += (size_t)size;
    return true;
}

/* The first child box of TYPE in PARENT's body (after SKIP bytes). */
static bool gddec_find_box(const unsigned char *data, size_t len, size_t skip, const char *type, gddec_box *found) {
    size_t at = skip;
    gddec_box box;
    while (gddec_next_box(data, len, &at, &box))
        if (strcmp(box.type, type) == 0) {
            *found = box;
            return true;
        }
    return false;
}

/* The K-th (from 1) child box of IPCO. */
static bool gddec_property(const gddec_box *ipco, unsigned k, gddec_box *found) {
    size_t at = 0;
    for (unsigned i = 1; gddec_next_box(ipco->body, ipco->size, &at, found); i++)
        if (i == k) return true;
    return false;
}

/* The primary item's ID from "pitm" (0 if none). */
static uint32_t gddec_primary_item(const gddec_box *meta) {
    gddec_box pitm;
    if (!gddec_find_box(meta->body, meta->size, 4, "pitm", &pitm) || pitm.size < 6) return 0;
    return pitm.body[0] == 0 ? gddec_get(pitm.body + 4, 2, true)
           : pitm.size >= 8  ? gddec_get(pitm.body + 4, 4, true)
                             : 0;
}

/* Applies one property of the primary item: its size (ispe) or a turn (irot). */
static void gddec_apply_property(const gddec_box *prop, uint64_t *width, uint64_t *height, bool *turned) {
    if (strcmp(prop->type, "ispe") == 0 && prop->size >= 12) {
        *width = gddec_get(prop->body + 4, 4, true);
        *height = gddec_get(prop->body + 8, 4, true);
    } else if (strcmp(prop->type, "irot") == 0 && prop->size >= 1) {
        *turned = (prop->body[0] & 3) % 2 == 1;
    }
}

/* Walks "ipma" for ITEM's associations and applies each property. */
static void gddec_item_size(const gddec_box *ipma, const gddec_box *ipco, uint32_t item, uint64_t *width,
                            uint64_t *height, bool *turned) {
    const unsigned char *p = ipma->body, *end = ipma->body + ipma->size;
    if (ipma->size < 8) return;
    unsigned version = p[0], wide_index = p[3] & 1;
    uint32_t entries = gddec_get(p + 4, 4, true);
    p += 8;
    for (uint32_t e = 0; e < entries; e++) {
        size_t id_size = version < 1 ? 2 : 4;
        if ((size_t)(end - p) < id_size + 1) return;
        uint32_t id = gddec_get(p, (int)id_size, true);
        unsigned count = p[id_size];
        p += id_size + 1;
        for (unsigned a = 0; a < count; a++) {
            if ((size_t)(end - p) < 1u + wide_index) return;
            unsigned index = wide_index ? gddec_get(p, 2, true) & 0x7fff : p[0] & 0x7fu;
            p += 1 + wide_index;
            gddec_box prop;
            if (id == item && index && gddec_property(ipco, index, &prop))
                gddec_apply_property(&prop, width, height, turned);
        }
    }
}

/* The primary image's size: its "ispe" property (meta/iprp/ipco, through
 * meta/iprp/ipma), a quarter turn applied.  libheif and libavif may crop
 * the result further ("clap"); ih_decode_gray() reports what they give. */
static int gddec_heif_size(const unsigned char *data, size_t len, uint64_t *width, uint64_t *height,
                           char err[IH_DECODE_ERROR_MAX]) {
    gddec_box meta, iprp, ipco, ipma;
    if (!gddec_find_box(data, len, 0, "meta", &meta) || meta.size < 4 ||
        !gddec_find_box(meta.body, meta.size, 4, "iprp", &iprp) ||
        !gddec_find_box(iprp.body, iprp.size, 0, "ipco", &ipco) ||
        !gddec_find_box(iprp.body, iprp.size, 0, "ipma", &ipma))
        return ih_decode_fail(err, "corrupt image: no image properties in the file");
    *width = *height = 0;
    bool turned = false;
    uint32_t primary = gddec_primary_item(&meta);
    if (primary) gddec_item_size(&ipma, &ipco, primary, width, height, &turned);
    if (!*width || !*height) return ih_decode_fail(err, "corrupt image: no size (ispe) for the primary image");
    if (turned) {
        uint64_t t = *width;
        *width = *height;
        *height = t;
    }
    return 0;
}

static int gddec_header_size(const unsigned char *data, size_t len, ih_format format, uint64_t *width, uint64_t *height,
                             char err[IH_DECODE_ERROR_MAX]) {
    if (format != IH_FORMAT_TIFF) return gddec_heif_size(data, len, width, height, err);
    gddec_tiff tiff;
    if (gddec_tiff_parse(data, len, &tiff, err) < 0) return -1;
    *width = tiff.width;
    *height = tiff.height;
    return 0;
}

/* --- decoding --- */

static gdImagePtr gddec_create(const unsigned char *data, size_t len, ih_format format) {
    void *bytes = (void *)data; /* libgd only reads it */
    switch (format) {
    case IH_FORMAT_TIFF: return gdImageCreateFromTiffPtr((int)len, bytes);
    case IH_FORMAT_AVIF: /* libheif reads AVIF too; libgd's own AVIF reader leaks */
    case IH_FORMAT_HEIF: return gdImageCreateFromHeifPtr((int)len, bytes);
    default: return NULL;
    }
}

/* libgd's bilevel TIFF reader (gd_tiff.c, readTiffBw) swaps black and white
 * when the file says min-is-black; Pillow reads a set bit as white there. */
static bool gddec_bilevel_inverted(const unsigned char *data, size_t len, ih_format format) {
    gddec_tiff tiff;
    char scratch[IH_DECODE_ERROR_MAX];
    return format == IH_FORMAT_TIFF && gddec_tiff_parse(data, len, &tiff, scratch) == 0 && tiff.bits == 1 &&
           tiff.samples == 1 && tiff.photometric == 1;
}

/* The gray of IM into GRAY, its R, G, B into COLOUR. */
static void gddec_to_gray(gdImagePtr im, unsigned char *gray, bool invert, ih_colour *colour) {
    int w = gdImageSX(im), h = gdImageSY(im);
    for (int y = 0; y < h; y++, gray += w) {
        for (int x = 0; x < w; x++) {
            unsigned r, g, b;
            if (gdImageTrueColor(im)) {
                int p = gdImageTrueColorPixel(im, x, y);
                r = (unsigned)gdTrueColorGetRed(p), g = (unsigned)gdTrueColorGetGreen(p);
                b = (unsigned)gdTrueColorGetBlue(p);
            } else {
                int i = gdImagePalettePixel(im, x, y);
                r = (unsigned)im->red[i], g = (unsigned)im->green[i], b = (unsigned)im->blue[i];
            }
            if (invert) r = 255 - r, g = 255 - g, b = 255 - b; /* black and white: 255 - L is L of these */
            gray[x] = ih_decode_luma(r, g, b);
            ih_colour_add_pixel(colour, r, g, b);
        }
    }
}

int ih_decode_gd_gray(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels, ih_gray *out,
                      char err[IH_DECODE_ERROR_MAX]) {
    uint64_t w, h;
    if (gddec_header_size(data, len, format, &w, &h, err) < 0) return -1;
    if (ih_decode_check_size(w, h, max_pixels, err) < 0) return -1;
    if (len > INT32_MAX) return ih_decode_fail(err, "too large for libgd: %zu bytes", len);
    pthread_once(&gddec_once, gddec_install);
    char message[IH_DECODE_ERROR_MAX] = "";
    gddec_message = message;
    gdImagePtr im = gddec_create(data, len, format);
    gddec_message = NULL;
    if (!im) return ih_decode_fail_codec(err, message[0] ? message : "libgd cannot read it");
    int status = ih_decode_check_size((uint64_t)gdImageSX(im), (uint64_t)gdImageSY(im), max_pixels, err);
    if (status == 0) status = ih_decode_alloc(out, gdImageSX(im), gdImageSY(im), err);
    if (status == 0) gddec_to_gray(im, out->pixels, gddec_bilevel_inverted(data, len, format), &out->colour);
    gdImageDestroy(im);
    return status;
}

int ih_decode_gd_size(const unsigned char *data, size_t len, ih_format format, int *width, int *height,
                      char err[IH_DECODE_ERROR_MAX]) {
    uint64_t w, h;
    if (gddec_header_size(data, len, format, &w, &h, err) < 0) return -1;
    if (ih_decode_check_size(w, h, 0, err) < 0) return -1;
    *width = (int)w;
    *height = (int)h;
    return 0;
}
