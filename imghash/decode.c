/* decode.c -- picks a decoder by format, and the helpers they share
 * (ih_decode_*, ih_gray_release).
 *
 * Which library decodes what, and why:
 *   JPEG  libjpeg-turbo directly (decode_jpeg.c): the same library and
 *         settings as Pillow, scanline by scanline, so also the fastest.
 *   PNG   libpng directly (decode_png.c): Pillow's modes (16-bit gray is
 *         clipped, palettes keep Pillow's ramp past PLTE) need the raw rows.
 *   GIF   giflib directly (decode_gif.c): Pillow's first frame on its
 *         logical screen, which libgd does not give.
 *   WebP  libwebp's WebPAnimDecoder (decode_webp.c), as Pillow's _webp does.
 *   BMP   our own reader (decode_bmp.c): Pillow's BMP plugin has its own
 *         rules (16-bit scaling, palettes, RLE) that libgd does not follow.
 *   TIFF, AVIF, HEIF  libgd (decode_gd.c); Pillow 9.4 reads no AVIF or HEIF,
 *         so for those there is no reference to be equal to.
 * Libgd is bypassed everywhere else because its gdImage is a full RGBA copy
 * of the picture (slow, and 4 bytes a pixel) and because its conversions
 * differ from Pillow's in small ways that change hashes.
 *
 * Every decoder checks the header's size with ih_decode_check_size() before it
 * allocates pixel memory, and fails rather than return part of an image.
 *
 * What each takes, besides the gray image of width x height bytes
 * (ih_decode_working_bytes; measured on every format with a counting malloc,
 * imghash/tests/test_hashmem.c, which checks that these are upper bounds):
 *   JPEG  a baseline file a few rows; a progressive or multi-scan one 2
 *         bytes a sample of each component (ih_decode_jpeg_memory);
 *   PNG   libpng's two rows and ours, at most 8 bytes a pixel each;
 *   GIF   12 KiB of LZW tables and giflib's line;
 *   WebP  the RGBA canvas of WebPAnimDecoder, the previous frame's canvas
 *         and the frame decoder's buffers: 12 bytes a pixel (lossless);
 *   BMP   nothing;
 *   TIFF  libgd's truecolor image (4 bytes a pixel) and libtiff's RGBA
 *         raster (4 more); AVIF and HEIF: libgd's image, libheif's RGB(A)
 *         planes and the codec's YUV frame, 16 bytes a pixel is generous.
 */
#include "decode.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_formats.h"

void ih_gray_release(ih_gray *image) {
    if (!image) return;
    free(image->pixels);
    memset(image, 0, sizeof *image);
}

int ih_decode_fail(char err[IH_DECODE_ERROR_MAX], const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, IH_DECODE_ERROR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

int ih_decode_fail_codec(char err[IH_DECODE_ERROR_MAX], const char *message) {
    while (message && (*message == ':' || *message == ' '))
        message++; /* libtiff's empty file name */
    if (!message || !*message) message = "unknown error";
    ih_decode_fail(err, "corrupt image: %s", message);
    /* "Premature end" reads "premature end"; "IHDR: CRC error" stays. */
    size_t prefix = strlen("corrupt image: ");
    if (strlen(err) > prefix + 1 && islower((unsigned char)err[prefix + 1]))
        err[prefix] = (char)tolower((unsigned char)err[prefix]);
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r' || err[n - 1] == ' '))
        err[--n] = '\0';
    return -1;
}

int ih_decode_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, char err[IH_DECODE_ERROR_MAX]) {
    if (width == 0 || height == 0)
        return ih_decode_fail(err, "corrupt image: %llux%llu has no pixels", (unsigned long long)width,
                              (unsigned long long)height);
    if (width > IH_DECODE_MAX_SIDE || height > IH_DECODE_MAX_SIDE)
        return ih_decode_fail(err, "too many pixels: %llux%llu has a side over %d", (unsigned long long)width,
                              (unsigned long long)height, IH_DECODE_MAX_SIDE);
    if (max_pixels && width * height > max_pixels)
        return ih_decode_fail(err, "too many pixels: %llux%llu is over %llu", (unsigned long long)width,
                              (unsigned long long)height, (unsigned long long)max_pixels);
    return 0;
}

int ih_decode_alloc(ih_gray *out, int width, int height, char err[IH_DECODE_ERROR_MAX]) {
    memset(out, 0, sizeof *out);
    out->pixels = malloc((size_t)width * (size_t)height);
    if (!out->pixels) return ih_decode_fail(err, "out of memory: cannot hold a %dx%d gray image", width, height);
    out->width = width;
    out->height = height;
    return 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#define DECODE_X86 1
#include <immintrin.h>

/* The gray of 8 RGBX pixels in V, as eight int32.  ih_decode_luma's
 *   19595 R + 38470 G + 7471 B + 0x8000
 * has a coefficient too large for an int16, so it is computed as
 *   (19595 R - 27066 G) + (7471 B + 0 X) + 65536 G + 0x8000
 * which is the same integer (38470 = 65536 - 27066): vpmaddwd gives the
 * two brackets from the pixels' 16-bit channels, vphaddd adds them. */
__attribute__((target("avx2"))) static inline __m256i decode_luma8_avx2(__m256i v) {
    const __m256i coef = _mm256_setr_epi16(19595, -27066, 7471, 0, 19595, -27066, 7471, 0, 19595, -27066, 7471, 0,
                                           19595, -27066, 7471, 0);
    const __m256i zero = _mm256_setzero_si256();
    /* per 128-bit lane: pixels 0, 1 (lo) and 2, 3 (hi) of that lane's four */
    __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(v, zero), coef);
    __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(v, zero), coef);
    __m256i sum = _mm256_hadd_epi32(lo, hi); /* the lane's pixels in order */
    __m256i g = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xff00)), 8);
    sum = _mm256_add_epi32(sum, _mm256_add_epi32(g, _mm256_set1_epi32(0x8000)));
    return _mm256_srli_epi32(sum, 16);
}

/* ih_decode_rgb_row for RGBX with AVX2, 32 pixels a step; returns how many
 * pixels it did. */
__attribute__((target("avx2"))) static int decode_rgbx_avx2(unsigned char *restrict gray,
                                                            const unsigned char *restrict rgb, int count) {
    int x = 0;
    for (; x + 32 <= count; x += 32) {
        __m256i g[4];
        for (int i = 0; i < 4; i++)
            g[i] = decode_luma8_avx2(_mm256_loadu_si256((const __m256i *)(const void *)(rgb + 4 * (x + 8 * i))));
        /* packs work per 128-bit lane: the permutes put the pixels back in order */
        __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(g[0], g[1]), _mm256_packus_epi32(g[2], g[3]));
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(gray + x), w);
    }
    return x;
}
#else
#define DECODE_X86 0
#endif

/* Written out for each step so that the compiler vectorizes the loops (and
 * the RGBX case, libjpeg's output, has an AVX2 version on x86-64). */
void ih_decode_rgb_row(unsigned char *restrict gray, const unsigned char *restrict rgb, int count, int step) {
    if (step == 4) {
        int x = 0;
#if DECODE_X86
        if (__builtin_cpu_supports("avx2")) x = decode_rgbx_avx2(gray, rgb, count);
#endif
        for (; x < count; x++)
            gray[x] = ih_decode_luma(rgb[4 * x], rgb[4 * x + 1], rgb[4 * x + 2]);
    } else {
        for (int x = 0; x < count; x++)
            gray[x] = ih_decode_luma(rgb[3 * x], rgb[3 * x + 1], rgb[3 * x + 2]);
    }
}

void ih_decode_palette_init(ih_decode_palette *palette, const unsigned char *entries, int count, int step, int r, int g,
                            int b) {
    if (count > 256) count = 256;
    for (int i = 0; i < 256; i++)
        palette->gray[i] = (unsigned char)i;
    for (int i = 0; i < count; i++) {
        const unsigned char *e = entries + (size_t)i * (size_t)step;
        palette->gray[i] = ih_decode_luma(e[r], e[g], e[b]);
    }
}

static int decode_not_image(char err[IH_DECODE_ERROR_MAX]) { return ih_decode_fail(err, "not an image"); }

int ih_decode_gray(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels, ih_gray *out,
                   char err[IH_DECODE_ERROR_MAX]) {
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (!data || len == 0) return decode_not_image(err);
    int status;
    switch (format) {
    case IH_FORMAT_JPEG: status = ih_decode_jpeg_gray(data, len, max_pixels, out, err); break;
    case IH_FORMAT_PNG: status = ih_decode_png_gray(data, len, max_pixels, out, err); break;
    case IH_FORMAT_GIF: status = ih_decode_gif_gray(data, len, max_pixels, out, err); break;
    case IH_FORMAT_WEBP: status = ih_decode_webp_gray(data, len, max_pixels, out, err); break;
    case IH_FORMAT_BMP: status = ih_decode_bmp_gray(data, len, max_pixels, out, err); break;
    case IH_FORMAT_TIFF:
    case IH_FORMAT_AVIF:
    case IH_FORMAT_HEIF: status = ih_decode_gd_gray(data, len, format, max_pixels, out, err); break;
    default: return decode_not_image(err);
    }
    if (status < 0) {
        ih_gray_release(out);
        if (!err[0]) ih_decode_fail(err, "corrupt image");
        return -1;
    }
    return 0;
}

int ih_decode_dimensions(const unsigned char *data, size_t len, ih_format format, int *width, int *height,
                         char err[IH_DECODE_ERROR_MAX]) {
    *width = *height = 0;
    err[0] = '\0';
    if (!data || len == 0) return decode_not_image(err);
    int status;
    switch (format) {
    case IH_FORMAT_JPEG: status = ih_decode_jpeg_size(data, len, width, height, err); break;
    case IH_FORMAT_PNG: status = ih_decode_png_size(data, len, width, height, err); break;
    case IH_FORMAT_GIF: status = ih_decode_gif_size(data, len, width, height, err); break;
    case IH_FORMAT_WEBP: status = ih_decode_webp_size(data, len, width, height, err); break;
    case IH_FORMAT_BMP: status = ih_decode_bmp_size(data, len, width, height, err); break;
    case IH_FORMAT_TIFF:
    case IH_FORMAT_AVIF:
    case IH_FORMAT_HEIF: status = ih_decode_gd_size(data, len, format, width, height, err); break;
    default: return decode_not_image(err);
    }
    if (status < 0) {
        *width = *height = 0;
        if (!err[0]) ih_decode_fail(err, "corrupt image");
        return -1;
    }
    return 0;
}

/* Memory a decoder takes besides the gray image, bytes a pixel and a fixed
 * part (see the top of this file); JPEG is computed from its header. */
static uint64_t decode_extra_bytes(ih_format format, uint64_t width, uint64_t height) {
    uint64_t pixels = width * height;
    switch (format) {
    case IH_FORMAT_PNG: return 3 * (8 * width + 64) + 256 * 1024;
    case IH_FORMAT_GIF: return 4 * width + 64 * 1024;
    case IH_FORMAT_WEBP: return 12 * pixels + 256 * width + 256 * 1024; /* and libwebp's rows of macroblocks */
    case IH_FORMAT_BMP: return 64 * 1024;
    case IH_FORMAT_TIFF: return 8 * pixels + 16 * width + 256 * 1024;
    case IH_FORMAT_AVIF:
    case IH_FORMAT_HEIF: return 16 * pixels + 2 * 1024 * 1024;
    default: return 0;
    }
}

uint64_t ih_decode_working_bytes(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels,
                                 int *width, int *height) {
    int w = 0, h = 0;
    uint64_t extra = 0;
    char err[IH_DECODE_ERROR_MAX];
    int status = format == IH_FORMAT_JPEG && data && len ? ih_decode_jpeg_memory(data, len, &extra, &w, &h, err)
                                                         : ih_decode_dimensions(data, len, format, &w, &h, err);
    if (width) *width = status == 0 ? w : 0;
    if (height) *height = status == 0 ? h : 0;
    if (status < 0 || ih_decode_check_size((uint64_t)w, (uint64_t)h, max_pixels, err) < 0) return 0;
    if (format != IH_FORMAT_JPEG) extra = decode_extra_bytes(format, (uint64_t)w, (uint64_t)h);
    return (uint64_t)w * (uint64_t)h + extra;
}
