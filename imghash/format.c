/* format.c -- what a file is, from its first bytes (ih_format_*).
 *
 * Magic numbers only, never names or Content-Types.  Most formats have a
 * fixed signature at offset 0.  BMP's "BM" is short and common in text, so
 * the DIB header size after it must be one of the known ones.  ISO base
 * media files (AVIF, HEIF, MP4) all start with an "ftyp" box; its major and
 * compatible brands tell them apart: any AVIF brand makes an AVIF, else any
 * HEIF brand a HEIF, else the file is an MP4-family video.  Every EBML file
 * (Matroska, WebM) counts as WebM.
 */
#include "format.h"

#include <stdint.h>
#include <string.h>

static bool format_starts(const unsigned char *data, size_t len, const void *magic, size_t n) {
    return len >= n && memcmp(data, magic, n) == 0;
}

static uint32_t format_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t format_u32be(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "BM", then (at 14) a DIB header size that some BMP version uses. */
static bool format_is_bmp(const unsigned char *data, size_t len) {
    if (!format_starts(data, len, "BM", 2) || len < 18) return false;
    switch (format_u32le(data + 14)) {
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

static bool format_brand_in(const unsigned char *brand, const char *const *list) {
    for (; *list; list++)
        if (memcmp(brand, *list, 4) == 0) return true;
    return false;
}

/* An "ftyp" box: AVIF, HEIF or MP4 by its brands; UNKNOWN if not one. */
static ih_format format_ftyp(const unsigned char *data, size_t len) {
    static const char *const avif[] = {"avif", "avis", NULL};
    static const char *const heif[] = {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "mif2", "msf1", NULL};
    if (len < 16 || memcmp(data + 4, "ftyp", 4) != 0) return IH_FORMAT_UNKNOWN;
    uint32_t box = format_u32be(data);
    if (box < 16) return IH_FORMAT_UNKNOWN;
    size_t end = box < len ? box : len;
    bool is_heif = false;
    /* The major brand at 8, the minor version at 12, compatible brands from 16. */
    for (size_t at = 8; at + 4 <= end; at += at == 8 ? 8 : 4) {
        if (format_brand_in(data + at, avif)) return IH_FORMAT_AVIF;
        if (format_brand_in(data + at, heif)) is_heif = true;
    }
    return is_heif ? IH_FORMAT_HEIF : IH_FORMAT_MP4;
}

ih_format ih_format_detect(const unsigned char *data, size_t len) {
    if (!data) return IH_FORMAT_UNKNOWN;
    if (format_starts(data, len, "\xff\xd8\xff", 3)) return IH_FORMAT_JPEG;
    if (format_starts(data, len, "\x89PNG\r\n\x1a\n", 8)) return IH_FORMAT_PNG;
    if (format_starts(data, len, "GIF87a", 6) || format_starts(data, len, "GIF89a", 6)) return IH_FORMAT_GIF;
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) return IH_FORMAT_WEBP;
    if (format_is_bmp(data, len)) return IH_FORMAT_BMP;
    if (format_starts(data, len, "II*\0", 4) || format_starts(data, len, "MM\0*", 4)) return IH_FORMAT_TIFF;
    if (format_starts(data, len, "\x1a\x45\xdf\xa3", 4)) return IH_FORMAT_WEBM;
    return format_ftyp(data, len);
}

const char *ih_format_name(ih_format format) {
    switch (format) {
    case IH_FORMAT_JPEG: return "jpeg";
    case IH_FORMAT_PNG: return "png";
    case IH_FORMAT_GIF: return "gif";
    case IH_FORMAT_WEBP: return "webp";
    case IH_FORMAT_BMP: return "bmp";
    case IH_FORMAT_TIFF: return "tiff";
    case IH_FORMAT_AVIF: return "avif";
    case IH_FORMAT_HEIF: return "heif";
    case IH_FORMAT_WEBM: return "webm";
    case IH_FORMAT_MP4: return "mp4";
    default: return "unknown";
    }
}

ih_format ih_format_from_name(const char *name) {
    for (int f = IH_FORMAT_JPEG; f <= IH_FORMAT_MP4; f++)
        if (strcmp(ih_format_name((ih_format)f), name) == 0) return (ih_format)f;
    return IH_FORMAT_UNKNOWN;
}

const char *ih_format_extension(ih_format format) {
    switch (format) {
    case IH_FORMAT_JPEG: return "jpg";
    case IH_FORMAT_PNG: return "png";
    case IH_FORMAT_GIF: return "gif";
    case IH_FORMAT_WEBP: return "webp";
    case IH_FORMAT_BMP: return "bmp";
    case IH_FORMAT_TIFF: return "tiff";
    case IH_FORMAT_AVIF: return "avif";
    case IH_FORMAT_HEIF: return "heic";
    case IH_FORMAT_WEBM: return "webm";
    case IH_FORMAT_MP4: return "mp4";
    default: return "bin";
    }
}

bool ih_format_is_video(ih_format format) { return format == IH_FORMAT_WEBM || format == IH_FORMAT_MP4; }
