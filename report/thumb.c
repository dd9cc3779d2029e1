/* thumb.c -- thumbnails with libgd as data: URIs; see thumb.h.
 *
 * libgd prints its decoders' complaints about damaged files to stderr by
 * default; they are sent to the debug log instead, since a damaged file is
 * an expected input here, shown as "damaged".
 */
#include "thumb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gd.h>

#include "imghash/imghash.h"
#include "log.h"
#include "xalloc.h"

static void thumb_gd_error(int priority, const char *fmt, va_list ap) {
    (void)priority;
    if (!log_enabled(LOG_DEBUG)) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_debug("libgd: %s", msg);
}

/* The whole file, unless larger than MAX; NULL with errno (EFBIG: too large). */
static unsigned char *thumb_read(const char *path, uint64_t max, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = ENOENT;
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        errno = EFBIG;
        return NULL;
    }
    unsigned char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

static gdImagePtr thumb_decode(const unsigned char *data, size_t len, ih_format f) {
    int n = (int)len;
    void *p = (void *)data;
    switch (f) {
    case IH_FORMAT_JPEG: return gdImageCreateFromJpegPtrEx(n, p, 1);
    case IH_FORMAT_PNG: return gdImageCreateFromPngPtr(n, p);
    case IH_FORMAT_GIF: return gdImageCreateFromGifPtr(n, p);
    case IH_FORMAT_WEBP: return gdImageCreateFromWebpPtr(n, p);
    case IH_FORMAT_BMP: return gdImageCreateFromBmpPtr(n, p);
    case IH_FORMAT_TIFF: return gdImageCreateFromTiffPtr(n, p);
    default: return NULL;
    }
}

const char *thumb_make(const char *path, int side, uint64_t max_bytes, uint64_t max_pixels, char **uri) {
    *uri = NULL;
    gdSetErrorMethod(thumb_gd_error);
    size_t len = 0;
    unsigned char *data = thumb_read(path, max_bytes, &len);
    if (!data) return errno == EFBIG ? "too large" : "missing";
    ih_format f = ih_format_detect(data, len);
    if (f == IH_FORMAT_UNKNOWN || ih_format_is_video(f)) {
        free(data);
        return f == IH_FORMAT_UNKNOWN ? "damaged" : "not a picture";
    }
    char err[IH_DECODE_ERROR_MAX];
    int w = 0, h = 0;
    if (ih_decode_dimensions(data, len, f, &w, &h, err) != 0 || w <= 0 || h <= 0) {
        free(data);
        return "damaged";
    }
    if ((uint64_t)w * (uint64_t)h > max_pixels) {
        free(data);
        return "too large";
    }
    gdImagePtr im = len <= (size_t)0x7fffffff ? thumb_decode(data, len, f) : NULL;
    free(data);
    if (!im) return "damaged";
    int sw = gdImageSX(im), sh = gdImageSY(im), tw = sw, th = sh;
    if (tw > side || th > side) {
        if (sw >= sh) {
            tw = side;
            th = (int)((int64_t)sh * side / sw);
        } else {
            th = side;
            tw = (int)((int64_t)sw * side / sh);
        }
        if (tw < 1) tw = 1;
        if (th < 1) th = 1;
    }
    gdImagePtr t = gdImageCreateTrueColor(tw, th);
    if (!t) {
        gdImageDestroy(im);
        return "damaged";
    }
    gdImageAlphaBlending(t, 0);
    gdImageSaveAlpha(t, 1);
    gdImageCopyResampled(t, im, 0, 0, 0, 0, tw, th, sw, sh);
    gdImageDestroy(im);
    int plen = 0;
    void *png = gdImagePngPtrEx(t, &plen, 9);
    gdImageDestroy(t);
    if (!png || plen <= 0) {
        if (png) gdFree(png);
        return "damaged";
    }
    static const char head[] = "data:image/png;base64,";
    char *out = xmalloc(sizeof head + 4 * (((size_t)plen + 2) / 3) + 1);
    memcpy(out, head, sizeof head - 1);
    ih_checksum_base64(png, (size_t)plen, out + sizeof head - 1);
    gdFree(png);
    *uri = out;
    return "ok";
}
