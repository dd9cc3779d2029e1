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
#include "pixbuf.h"

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
    out->pixels = ih_pixbuf_alloc((size_t)width * (size_t)height);
    if (!out->pixels) return ih_decode_fail(err, "out of memory: cannot hold a %dx%d gray image", width, height);
    out->width = width;
    out->height = height;
    return 0;
}

double ih_colour_mean(const ih_colour *colour, int c) {
    if (!colour->pixels || c < 0 || c > 3) return 0.0;
    /* ImageStat: sum (a float, exact below 2^53) / count, in double */
    return (double)(c == 3 ? colour->gray_sum : colour->sum[c]) / (double)colour->pixels;
}

void ih_colour_add_gray(ih_colour *colour, const unsigned char *gray, size_t count) {
    uint64_t bins[IH_COLOUR_BINS] = {0}, sum = 0;
    while (count > 0) { /* 32-bit partial sums, in chunks that cannot overflow them */
        size_t n = count > (1u << 20) ? (1u << 20) : count;
        uint32_t part = 0, ge[IH_COLOUR_BINS] = {0};
        for (size_t i = 0; i < n; i++) {
            unsigned v = gray[i];
            part += v;
            for (int k = 1; k < IH_COLOUR_BINS; k++) /* vectorizes: counts of v >= 32k */
                ge[k] += v >= (unsigned)k << IH_COLOUR_BIN_SHIFT;
        }
        ge[0] = (uint32_t)n;
        for (int k = 0; k < IH_COLOUR_BINS; k++)
            bins[k] += ge[k] - (k + 1 < IH_COLOUR_BINS ? ge[k + 1] : 0);
        sum += part;
        gray += n;
        count -= n;
    }
    for (int c = 0; c < 3; c++) {
        colour->sum[c] += sum;
        for (int k = 0; k < IH_COLOUR_BINS; k++)
            colour->hist[c][k] += bins[k];
    }
}

void ih_colour_add_indexed(ih_colour *colour, const ih_decode_palette *palette, const uint64_t counts[256]) {
    for (int i = 0; i < 256; i++) {
        uint64_t n = counts[i];
        if (!n) continue;
        for (int c = 0; c < 3; c++) {
            unsigned v = palette->rgb[i][c];
            colour->sum[c] += n * v;
            colour->hist[c][v >> IH_COLOUR_BIN_SHIFT] += n;
        }
    }
}

/* R, G, B of COUNT pixels of STEP bytes into COLOUR, portable version. */
static void decode_colour_rgb(ih_colour *colour, const unsigned char *rgb, int count, int step) {
    for (int x = 0; x < count; x++, rgb += step)
        ih_colour_add_pixel(colour, rgb[0], rgb[1], rgb[2]);
}

/* -DDECODE_X86=0 builds the portable code alone (imghash/CMakeLists.txt's
 * test variants, so that a machine with AVX2 tests it too). */
#ifndef DECODE_X86
#if defined(__GNUC__) && defined(__x86_64__)
#define DECODE_X86 1
#else
#define DECODE_X86 0
#endif
#endif
#if DECODE_X86
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

/* The colour of RGBX pixels in registers, 8 pixels a vector:
 *   rb, gx  16-bit sums of R and B (the low and high halves of each 32-bit
 *           pixel) and of G and X; 255 vectors at most before a flush, so
 *           a lane holds at most 255 * 255;
 *   ge[k]   per byte, how many times that byte was >= 32 (k + 1), as
 *           negated compare masks (at most 255 before a flush);
 * and the flush that moves them into an ih_colour. */
typedef struct decode_colour_avx2 {
    __m256i rb, gx;
    __m256i ge[IH_COLOUR_BINS - 1];
    int vectors;     /* since the last flush */
    uint64_t pixels; /* since the last flush */
} decode_colour_avx2;

__attribute__((target("avx2"))) static inline void decode_colour_clear_avx2(decode_colour_avx2 *a) {
    a->rb = a->gx = _mm256_setzero_si256();
    for (int k = 0; k < IH_COLOUR_BINS - 1; k++)
        a->ge[k] = _mm256_setzero_si256();
    a->vectors = 0;
    a->pixels = 0;
}

/* The sum of the bytes of V at the offsets 0 mod 4 plus OFF (0 R, 1 G, 2 B). */
__attribute__((target("avx2"))) static inline uint64_t decode_bytes_sum_avx2(__m256i v, int off) {
    __m256i m = _mm256_and_si256(v, _mm256_set1_epi32(0xff << (8 * off)));
    __m256i s = _mm256_sad_epu8(m, _mm256_setzero_si256());
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(t) + (uint64_t)_mm_extract_epi64(t, 1);
}

/* The sum of the eight 32-bit lanes of V. */
__attribute__((target("avx2"))) static inline uint64_t decode_lanes_sum_avx2(__m256i v) {
    __m256i s = _mm256_add_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(v)),
                                 _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v, 1)));
    __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(t) + (uint64_t)_mm_extract_epi64(t, 1);
}

__attribute__((target("avx2"))) static void decode_colour_flush_avx2(decode_colour_avx2 *a, ih_colour *colour) {
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    colour->sum[0] += decode_lanes_sum_avx2(_mm256_and_si256(a->rb, lo16));
    colour->sum[2] += decode_lanes_sum_avx2(_mm256_srli_epi32(a->rb, 16));
    colour->sum[1] += decode_lanes_sum_avx2(_mm256_and_si256(a->gx, lo16));
    for (int c = 0; c < 3; c++) {
        uint64_t ge[IH_COLOUR_BINS + 1];
        ge[0] = a->pixels;
        for (int k = 1; k < IH_COLOUR_BINS; k++)
            ge[k] = decode_bytes_sum_avx2(a->ge[k - 1], c);
        ge[IH_COLOUR_BINS] = 0;
        for (int k = 0; k < IH_COLOUR_BINS; k++)
            colour->hist[c][k] += ge[k] - ge[k + 1];
    }
    decode_colour_clear_avx2(a);
}

/* Adds the 8 RGBX pixels in V. */
__attribute__((target("avx2"))) static inline void decode_colour_add_avx2(decode_colour_avx2 *a, __m256i v) {
    a->rb = _mm256_add_epi16(a->rb, _mm256_and_si256(v, _mm256_set1_epi16(0xff)));
    a->gx = _mm256_add_epi16(a->gx, _mm256_srli_epi16(v, 8));
    /* v >= 32k as signed bytes: v ^ 0x80 > (32k - 1) ^ 0x80 */
    __m256i s = _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80));
    for (int k = 1; k < IH_COLOUR_BINS; k++) {
        __m256i m = _mm256_cmpgt_epi8(s, _mm256_set1_epi8((char)(((k << IH_COLOUR_BIN_SHIFT) - 1) ^ 0x80)));
        a->ge[k - 1] = _mm256_sub_epi8(a->ge[k - 1], m);
    }
    a->pixels += 8;
}

/* ih_decode_rgb_row for RGBX with AVX2, 32 pixels a step, the colour of
 * those pixels added to COLOUR; returns how many pixels it did. */
__attribute__((target("avx2"))) static int
decode_rgbx_avx2(unsigned char *restrict gray, const unsigned char *restrict rgb, int count, ih_colour *colour) {
    decode_colour_avx2 acc;
    decode_colour_clear_avx2(&acc);
    int x = 0;
    for (; x + 32 <= count; x += 32) {
        __m256i g[4];
        for (int i = 0; i < 4; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(rgb + 4 * (x + 8 * i)));
            g[i] = decode_luma8_avx2(v);
            decode_colour_add_avx2(&acc, v);
        }
        /* packs work per 128-bit lane: the permutes put the pixels back in order */
        __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(g[0], g[1]), _mm256_packus_epi32(g[2], g[3]));
        w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(gray + x), w);
        if (acc.vectors += 4, acc.vectors > 255 - 4) decode_colour_flush_avx2(&acc, colour);
    }
    if (acc.pixels) decode_colour_flush_avx2(&acc, colour);
    return x;
}
#endif

/* Written out for each step so that the compiler vectorizes the loops (and
 * the RGBX case, libjpeg's output, has an AVX2 version on x86-64 that adds
 * up the colour in the same sweep). */
void ih_decode_rgb_row(unsigned char *restrict gray, const unsigned char *restrict rgb, int count, int step,
                       ih_colour *colour) {
    int x = 0;
    if (step == 4) {
#if DECODE_X86
        if (__builtin_cpu_supports("avx2")) x = decode_rgbx_avx2(gray, rgb, count, colour);
#endif
        for (int i = x; i < count; i++)
            gray[i] = ih_decode_luma(rgb[4 * i], rgb[4 * i + 1], rgb[4 * i + 2]);
    } else {
        for (int i = 0; i < count; i++)
            gray[i] = ih_decode_luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
    }
    decode_colour_rgb(colour, rgb + (size_t)x * (size_t)step, count - x, step);
}

void ih_decode_palette_init(ih_decode_palette *palette, const unsigned char *entries, int count, int step, int r, int g,
                            int b) {
    if (count > 256) count = 256;
    for (int i = 0; i < 256; i++) {
        palette->gray[i] = (unsigned char)i;
        palette->rgb[i][0] = palette->rgb[i][1] = palette->rgb[i][2] = (unsigned char)i;
    }
    for (int i = 0; i < count; i++) {
        const unsigned char *e = entries + (size_t)i * (size_t)step;
        palette->gray[i] = ih_decode_luma(e[r], e[g], e[b]);
        palette->rgb[i][0] = e[r];
        palette->rgb[i][1] = e[g];
        palette->rgb[i][2] = e[b];
    }
}

/* The gray sum of IMAGE into its colour summary, and the check that the
 * decoder counted every pixel's colour once. */
static int decode_colour_finish(ih_gray *image, char err[IH_DECODE_ERROR_MAX]) {
    ih_colour *colour = &image->colour;
    size_t total = (size_t)image->width * (size_t)image->height;
    const unsigned char *p = image->pixels;
    uint64_t sum = 0;
    while (total > 0) {
        size_t n = total > (1u << 20) ? (1u << 20) : total;
        uint32_t part = 0;
        for (size_t i = 0; i < n; i++)
            part += p[i];
        sum += part;
        p += n;
        total -= n;
    }
    colour->gray_sum = sum;
    colour->pixels = (uint64_t)image->width * (uint64_t)image->height;
    for (int c = 0; c < 3; c++) {
        uint64_t counted = 0;
        for (int k = 0; k < IH_COLOUR_BINS; k++)
            counted += colour->hist[c][k];
        if (counted != colour->pixels)
            return ih_decode_fail(err, "internal error: the colour of %llu pixels counted for %llu",
                                  (unsigned long long)counted, (unsigned long long)colour->pixels);
    }
    return 0;
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
    if (status == 0) status = decode_colour_finish(out, err);
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
    return ih_pixbuf_bytes((uint64_t)w * (uint64_t)h) + extra;
}
