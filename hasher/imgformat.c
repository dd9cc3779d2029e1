/* imgformat.c -- what a file is, from its first bytes.
 *
 * Magic numbers only, never names or Content-Types.  Most formats have a
 * fixed signature at offset 0.  BMP's "BM" is short and common in text, so
 * the DIB header size after it must be one of the known ones.  ISO base
 * media files (AVIF, HEIF, MP4) all start with an "ftyp" box; its major and
 * compatible brands tell them apart: any AVIF brand makes an AVIF, else any
 * HEIF brand a HEIF, else the file is an MP4-family video.  Every EBML file
 * (Matroska, WebM) counts as WebM.
 */
#include "imgformat.h"

#include <stdint.h>
#include <string.h>

static bool imgformat_starts(const unsigned char *data, size_t len, const void *magic, size_t n) {
    return len >= n && memcmp(data, magic, n) == 0;
}

static uint32_t imgformat_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t imgformat_u32be(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "BM", then (at 14) a DIB header size that some BMP version uses. */
static bool imgformat_is_bmp(const unsigned char *data, size_t len) {
    if (!imgformat_starts(data, len, "BM", 2) || len < 18) return false;
    switch (imgformat_u32le(data + 14)) {
    case 12:
    case 16:
    case 40:
    case 52:
    case 56:
    case 64:
    case 108:
    case 124: return true;
    default: return false;
    }
}

static bool imgformat_brand_in(const unsigned char *brand, const char *const *list) {
    for (; *list; list++)
        if (memcmp(brand, *list, 4) == 0) return true;
    return false;
}

/* An "ftyp" box: AVIF, HEIF or MP4 by its brands; UNKNOWN if not one. */
static img_format imgformat_ftyp(const unsigned char *data, size_t len) {
    static const char *const avif[] = {"avif", "avis", NULL};
    static const char *const heif[] = {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "mif2", "msf1", NULL};
    if (len < 16 || memcmp(data + 4, "ftyp", 4) != 0) return IMG_FORMAT_UNKNOWN;
    uint32_t box = imgformat_u32be(data);
    if (box < 16) return IMG_FORMAT_UNKNOWN;
    size_t end = box < len ? box : len;
    bool is_heif = false;
    /* The major brand at 8, the minor version at 12, compatible brands from 16. */
    for (size_t at = 8; at + 4 <= end; at += at == 8 ? 8 : 4) {
        if (imgformat_brand_in(data + at, avif)) return IMG_FORMAT_AVIF;
        if (imgformat_brand_in(data + at, heif)) is_heif = true;
    }
    return is_heif ? IMG_FORMAT_HEIF : IMG_FORMAT_MP4;
}

img_format imgformat_detect(const unsigned char *data, size_t len) {
    if (!data) return IMG_FORMAT_UNKNOWN;
    if (imgformat_starts(data, len, "\xff\xd8\xff", 3)) return IMG_FORMAT_JPEG;
    if (imgformat_starts(data, len, "\x89PNG\r\n\x1a\n", 8)) return IMG_FORMAT_PNG;
    if (imgformat_starts(data, len, "GIF87a", 6) || imgformat_starts(data, len, "GIF89a", 6)) return IMG_FORMAT_GIF;
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) return IMG_FORMAT_WEBP;
    if (imgformat_is_bmp(data, len)) return IMG_FORMAT_BMP;
    if (imgformat_starts(data, len, "II*\0", 4) || imgformat_starts(data, len, "MM\0*", 4)) return IMG_FORMAT_TIFF;
    if (imgformat_starts(data, len, "\x1a\x45\xdf\xa3", 4)) return IMG_FORMAT_WEBM;
    return imgformat_ftyp(data, len);
}

const char *imgformat_name(img_format format) {
    switch (format) {
    case IMG_FORMAT_JPEG: return "jpeg";
    case IMG_FORMAT_PNG: return "png";
    case IMG_FORMAT_GIF: return "gif";
    case IMG_FORMAT_WEBP: return "webp";
    case IMG_FORMAT_BMP: return "bmp";
    case IMG_FORMAT_TIFF: return "tiff";
    case IMG_FORMAT_AVIF: return "avif";
    case IMG_FORMAT_HEIF: return "heif";
    case IMG_FORMAT_WEBM: return "webm";
    case IMG_FORMAT_MP4: return "mp4";
    default: return "unknown";
    }
}

img_format imgformat_from_name(const char *name) {
    for (int f = IMG_FORMAT_JPEG; f <= IMG_FORMAT_MP4; f++)
        if (strcmp(imgformat_name((img_format)f), name) == 0) return (img_format)f;
    return IMG_FORMAT_UNKNOWN;
}

const char *imgformat_extension(img_format format) {
    switch (format) {
    case IMG_FORMAT_JPEG: return "jpg";
    case IMG_FORMAT_PNG: return "png";
    case IMG_FORMAT_GIF: return "gif";
    case IMG_FORMAT_WEBP: return "webp";
    case IMG_FORMAT_BMP: return "bmp";
    case IMG_FORMAT_TIFF: return "tiff";
    case IMG_FORMAT_AVIF: return "avif";
    case IMG_FORMAT_HEIF: return "heic";
    case IMG_FORMAT_WEBM: return "webm";
    case IMG_FORMAT_MP4: return "mp4";
    default: return "bin";
    }
}

bool imgformat_is_video(img_format format) { return format == IMG_FORMAT_WEBM || format == IMG_FORMAT_MP4; }
