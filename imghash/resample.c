/* resample.c -- Pillow 9.4's LANCZOS resize for 8-bit gray, byte for byte.
 *
 * This follows libImaging/Resample.c (ImagingResampleInner with the 8bpc
 * passes) step by step:
 *
 *   - for each axis, precompute_coeffs(): for output pixel xx the window
 *     center = (xx + 0.5) * scale, taps from (int)(center - support + 0.5) to
 *     (int)(center + support + 0.5) clamped to the image, weights
 *     lanczos((x + xmin - center + 0.5) / filterscale) normalised by their sum,
 *     all in double with Pillow's expressions in Pillow's order; then
 *     normalize_coeffs_8bpc() rounds them to 22-bit fixed point, half away
 *     from zero;
 *   - the horizontal pass first, on the rows the vertical pass will read,
 *     then the vertical pass; a pass is skipped when its side keeps its size,
 *     and when neither runs the result is a copy;
 *   - each output pixel is (1 << 21) + sum(pixel * coeff) in int32, shifted
 *     right by 22 and clipped to 0..255.
 *
 * Why the floating-point expressions must stay as they are: a coefficient
 * that rounds to a different 22-bit integer changes some output byte, and
 * the hashes compare bytes exactly.  The integer sums, on the other hand,
 * are exact (they cannot overflow: |sum| < 2^31 for any 8-bit input), so
 * the loops below are free to add them in any order, and are written for
 * speed (on x86-64 with AVX2 kernels chosen at run time, plain C elsewhere):
 *   - vertical pass: 32 columns at a time, sums kept in registers;
 *   - horizontal pass, long kernels (downscaling a lot): one dot product
 *     over contiguous taps per output pixel, four rows at a time, with
 *     VNNI's byte dot products where the CPU has AVX512-VNNI
 *     (resample_axis_digits says why they are exact), else 16-bit
 *     multiply-adds (below);
 *   - horizontal pass, short kernels: blocks of 16 rows are transposed
 *     (16 x 16 byte tiles, with vector shuffles) so that one tap serves the
 *     16 rows at once, and the result is transposed back;
 *   - several sizes of one image (ih_resample_lanczos_many, the hashes'
 *     four): their horizontal passes share one sweep over the rows, a band
 *     of RESAMPLE_BAND rows at a time, so a large image leaves memory for
 *     the cache once and not once a size.
 *
 * The 16-bit multiply-adds (vpmaddwd: 16 int16 products a step, added in
 * pairs into int32 lanes) take pixels, which are 0..255, but coefficients
 * have 22 fractional bits and a sign.  Each coefficient k is split into
 *     k = hi * 2^11 + lo,   hi = k >> 11 (floor),   0 <= lo < 2^11,
 * both of which fit an int16 (|k| < 2^23); then
 *     sum(p * k) = sum(p * hi) * 2^11 + sum(p * lo).
 * Why this is exact, with no overflow check: a pair of products is at most
 * 2 * 255 * 32767 < 2^31 in magnitude, so vpmaddwd itself is exact, and
 * past it everything (the lane additions, the shift by 11, the final
 * additions) is arithmetic mod 2^32, in which the identity above holds
 * whatever the intermediate values.  The true sum plus the rounding
 * constant lies in int32 (see above), so its value mod 2^32 read as an
 * int32 is the sum itself, however many taps there are.  When a filter's
 * coefficients all fit an int16 (a downscale by 128 or more spreads the
 * weight that thin), the split is skipped: one multiply-add per step
 * (axis->narrow).
 *
 * The weights call the C library's sin(), as Pillow does: on one machine
 * both use the same libm (glibc picks its variant by CPU), so the weights
 * agree to the bit.
 * Filters depend only on (input size, output size); they are kept in a small
 * process-wide cache, because two sin() a tap are otherwise a large part of
 * the work for a typical image.
 */
#include "resample.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pixbuf.h"

#define RESAMPLE_PRECISION_BITS 22
#define RESAMPLE_SUPPORT 3.0
/* Rows the short-kernel horizontal pass handles together. */
#define RESAMPLE_BLOCK 16
/* Kernels shorter than this take the blocked horizontal pass. */
#define RESAMPLE_SHORT_KERNEL 24
/* Columns the vertical pass accumulates at a time (on the stack). */
#define RESAMPLE_CHUNK 512
/* The low part of a split coefficient (see the top): 11 bits. */
#define RESAMPLE_SPLIT_BITS 11

/* On x86-64 the hot loops have an AVX2 variant, used when the CPU has it
 * (-DRESAMPLE_X86=0 builds the portable code alone, to test it). */
#ifndef RESAMPLE_X86
#if defined(__GNUC__) && defined(__x86_64__)
#define RESAMPLE_X86 1
#else
#define RESAMPLE_X86 0
#endif
#endif
/* -DRESAMPLE_VNNI=0 leaves the AVX-512 VNNI kernels out, so that a machine
 * that has them tests the AVX2 ones too (imghash/CMakeLists.txt). */
#ifndef RESAMPLE_VNNI
#define RESAMPLE_VNNI RESAMPLE_X86
#endif
#if RESAMPLE_X86
#include <immintrin.h>
#endif

/* The fixed-point filter of one axis: output i reads the taps
 * bounds[2i] .. bounds[2i] + bounds[2i+1] - 1 with coeffs[i * ksize ...]. */
typedef struct resample_axis {
    int out_size;
    int ksize;
    int *bounds;
    int32_t *coeffs;
    /* The same coefficients split for 16-bit multiplies (see the top):
     * coeffs = split_hi * 2^11 + split_lo, row xx at xx * split_stride,
     * split_stride a multiple of 16, zeros past ksize (NULL if unsplittable). */
    int split_stride;
    int16_t *split_hi;
    int16_t *split_lo;
    /* Every coefficient fits an int16 (a large downscale spreads the
     * weight thin): split_lo holds them whole, split_hi zeros. */
    bool narrow;
    /* The same coefficients as three signed bytes each, for VNNI's
     * vpdpbusd (see resample_axis_digits): k = d2 * 2^16 + d1 * 2^8 + d0,
     * digit plane i at dig + i * out_size * dig_stride, row xx at
     * xx * dig_stride, dig_stride a multiple of 32, zeros past ksize (NULL
     * when not made: no long kernel, or a coefficient too large). */
    int dig_stride;
    int8_t *dig;
} resample_axis;

/* Pillow's sinc_filter and lanczos_filter (a = 3). */
static double resample_sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double resample_lanczos3(double x) {
    if (-3.0 <= x && x < 3.0) return resample_sinc(x) * resample_sinc(x / 3);
    return 0.0;
}

static void resample_axis_release(resample_axis *axis) {
    free(axis->bounds);
    free(axis->coeffs);
    free(axis->split_hi);
    free(axis->split_lo);
    free(axis->dig);
    memset(axis, 0, sizeof *axis);
}

/* Pillow's normalize_coeffs_8bpc for one value. */
static int32_t resample_fixed(double k) {
    if (k < 0) return (int32_t)(-0.5 + k * (1 << RESAMPLE_PRECISION_BITS));
    return (int32_t)(0.5 + k * (1 << RESAMPLE_PRECISION_BITS));
}

/* The taps of output XX into BOUNDS (xmin, count) and K (ksize doubles,
 * normalised, zeros past count): Pillow's precompute_coeffs loop body. */
static void resample_window(int in_size, double scale, double filterscale, double support, int xx, int ksize,
                            int bounds[2], double *k) {
    double center = 0.0 + (xx + 0.5) * scale; /* in0 (a float 0) + ... */
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    int x;
    for (x = 0; x < xmax; x++) {
        double w = resample_lanczos3((x + xmin - center + 0.5) * ss);
        k[x] = w;
        ww += w;
    }
    for (x = 0; x < xmax; x++) {
        if (ww != 0.0) k[x] /= ww;
    }
    for (; x < ksize; x++)
        k[x] = 0;
    bounds[0] = xmin;
    bounds[1] = xmax;
}

/* Whether every coefficient of AXIS lies in LO .. HI. */
static bool resample_axis_within(const resample_axis *axis, int32_t lo, int32_t hi) {
    size_t total = (size_t)axis->out_size * (size_t)axis->ksize;
    for (size_t i = 0; i < total; i++)
        if (axis->coeffs[i] < lo || axis->coeffs[i] > hi) return false;
    return true;
}

/* Fills AXIS's split_* arrays from its coeffs.  Returns 0, or -1 without
 * memory (AXIS released).  Normalised weights are below 2 in magnitude, so
 * k >> 11 always fits an int16; were it not so, the arrays stay NULL and
 * the horizontal pass takes the plain 32-bit path. */
static int resample_axis_split(resample_axis *axis) {
    if (!resample_axis_within(axis, -(1 << 26), (1 << 26) - 1)) return 0;
    axis->narrow = resample_axis_within(axis, INT16_MIN, INT16_MAX);
    axis->split_stride = (axis->ksize + 15) / 16 * 16;
    size_t count = (size_t)axis->out_size * (size_t)axis->split_stride;
    axis->split_hi = calloc(count, sizeof *axis->split_hi);
    axis->split_lo = calloc(count, sizeof *axis->split_lo);
    if (!axis->split_hi || !axis->split_lo) {
        resample_axis_release(axis);
        return -1;
    }
    for (int xx = 0; xx < axis->out_size; xx++) {
        const int32_t *k = &axis->coeffs[(size_t)xx * (size_t)axis->ksize];
        int16_t *hi = &axis->split_hi[(size_t)xx * (size_t)axis->split_stride];
        int16_t *lo = &axis->split_lo[(size_t)xx * (size_t)axis->split_stride];
        for (int x = 0; x < axis->ksize; x++) {
            if (axis->narrow) {
                lo[x] = (int16_t)k[x];
            } else { /* >> of a negative int is arithmetic (floor) in GCC and Clang */
                hi[x] = (int16_t)(k[x] >> RESAMPLE_SPLIT_BITS);
                lo[x] = (int16_t)(k[x] & ((1 << RESAMPLE_SPLIT_BITS) - 1));
            }
        }
    }
    return 0;
}

/* Whether the CPU runs resample_rows_vnni (below). */
static bool resample_have_vnni(void) {
#if RESAMPLE_X86 && RESAMPLE_VNNI
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

/* Fills AXIS's dig array for a long kernel: each coefficient as balanced
 * base-256 digits d0, d1 in -128..127 and d2 = the rest, kept only when
 * every d2 fits a signed byte too (|k| below about 2^23: normalised weights
 * are below 2).  vpdpbusd multiplies 4 unsigned pixels by 4 signed digits
 * and adds the four products into an int32 lane with no saturation, so
 * the three digit sums, recombined mod 2^32 as d2 * 2^16 + d1 * 2^8 + d0,
 * are the exact sum for the same reason as the split (see the top).
 * Returns 0, or -1 without memory (AXIS released). */
static int resample_axis_digits(resample_axis *axis) {
    if (axis->ksize < RESAMPLE_SHORT_KERNEL || !resample_have_vnni()) return 0;
    size_t total = (size_t)axis->out_size * (size_t)axis->ksize;
    for (size_t i = 0; i < total; i++)
        if (axis->coeffs[i] < -(1 << 22) || axis->coeffs[i] >= (1 << 22)) return 0;
    axis->dig_stride = (axis->ksize + 31) / 32 * 32;
    size_t plane = (size_t)axis->out_size * (size_t)axis->dig_stride;
    axis->dig = calloc(3 * plane, 1);
    if (!axis->dig) {
        resample_axis_release(axis);
        return -1;
    }
    for (int xx = 0; xx < axis->out_size; xx++) {
        const int32_t *k = &axis->coeffs[(size_t)xx * (size_t)axis->ksize];
        int8_t *d = axis->dig + (size_t)xx * (size_t)axis->dig_stride;
        for (int x = 0; x < axis->ksize; x++) {
            int32_t v = k[x];
            int32_t d0 = ((v + 128) & 255) - 128;
            v = (v - d0) / 256; /* exact */
            int32_t d1 = ((v + 128) & 255) - 128;
            int32_t d2 = (v - d1) / 256;
            d[x] = (int8_t)d0;
            d[plane + (size_t)x] = (int8_t)d1;
            d[2 * plane + (size_t)x] = (int8_t)d2; /* |k| < 2^22: |d2| <= 64 */
        }
    }
    return 0;
}

/* Fills AXIS for IN_SIZE -> OUT_SIZE.  Returns 0, or -1 without memory. */
static int resample_axis_init(resample_axis *axis, int in_size, int out_size) {
    memset(axis, 0, sizeof *axis);
    /* Pillow: box = (float)0, (float)in_size; scale = (double)(in1 - in0) / out */
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = RESAMPLE_SUPPORT * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    size_t count = (size_t)out_size * (size_t)ksize;
    double *k = malloc((size_t)ksize * sizeof *k);
    axis->bounds = malloc((size_t)out_size * 2 * sizeof *axis->bounds);
    axis->coeffs = malloc(count * sizeof *axis->coeffs);
    if (!k || !axis->bounds || !axis->coeffs) {
        free(k);
        resample_axis_release(axis);
        return -1;
    }
    axis->out_size = out_size;
    axis->ksize = ksize;
    for (int xx = 0; xx < out_size; xx++) {
        resample_window(in_size, scale, filterscale, support, xx, ksize, &axis->bounds[2 * xx], k);
        int32_t *fixed = &axis->coeffs[(size_t)xx * (size_t)ksize];
        for (int x = 0; x < ksize; x++)
            fixed[x] = resample_fixed(k[x]);
    }
    free(k);
    /* the digits where the CPU has VNNI, else the split (not both: a filter
     * is memory that every new image size fills afresh) */
    if (resample_axis_digits(axis) < 0) return -1;
    return axis->dig ? 0 : resample_axis_split(axis);
}

/* A process-wide cache of axis filters by (in_size, out_size).  Computing
 * a filter costs two sin() a tap, a large part of the hashing time of a
 * typical image; images of the same size (and ahash's and dhash's equal
 * heights) reuse it.  Entries are immutable once in; REFS counts the users
 * so that only unused ones are replaced (least recently used first), and
 * big filters (huge images) are not kept.  A filter is kept only from the
 * second time its size is asked for within the last RESAMPLE_SEEN sizes:
 * kept filters live on between images, and if every one-off size were
 * kept, each would land past the memory the images' own buffers come and
 * go in, so the heap would keep growing into fresh pages (a page fault
 * each, on first touch) instead of reusing the same ones image after
 * image. */
#define RESAMPLE_CACHE_SLOTS 512                     /* many image sizes, each with ~8 filters */
#define RESAMPLE_CACHE_MAX_BYTES (256 * 1024)        /* a larger filter is not kept */
#define RESAMPLE_CACHE_TOTAL_BYTES (4 * 1024 * 1024) /* all kept filters together */

typedef struct resample_cached {
    int in_size;
    int refs;
    unsigned long last_use;
    size_t bytes; /* 0: the slot is free */
    resample_axis axis;
} resample_cached;

#define RESAMPLE_SEEN 128 /* sizes remembered, for the second-use rule */

static pthread_mutex_t resample_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { int in_size, out_size; } resample_seen[RESAMPLE_SEEN];
static unsigned resample_seen_next;

/* Whether IN_SIZE -> OUT_SIZE was asked for lately; remembers it if not.
 * Caller holds the lock. */
static bool resample_seen_before(int in_size, int out_size) {
    for (int i = 0; i < RESAMPLE_SEEN; i++)
        if (resample_seen[i].in_size == in_size && resample_seen[i].out_size == out_size) return true;
    resample_seen[resample_seen_next % RESAMPLE_SEEN].in_size = in_size;
    resample_seen[resample_seen_next % RESAMPLE_SEEN].out_size = out_size;
    resample_seen_next++;
    return false;
}
static resample_cached resample_cache[RESAMPLE_CACHE_SLOTS];
static unsigned long resample_cache_clock;
static size_t resample_cache_bytes; /* of every kept filter */

/* The cached entry for IN_SIZE -> OUT_SIZE, its use counted; caller holds
 * the lock. */
static resample_cached *resample_cache_find(int in_size, int out_size) {
    for (int i = 0; i < RESAMPLE_CACHE_SLOTS; i++) {
        resample_cached *c = &resample_cache[i];
        if (c->bytes && c->axis.out_size == out_size && c->in_size == in_size) {
            c->refs++;
            c->last_use = ++resample_cache_clock;
            return c;
        }
    }
    return NULL;
}

/* The least recently used slot nobody uses (a free one first), or NULL. */
static resample_cached *resample_cache_victim(bool occupied_only) {
    resample_cached *slot = NULL;
    for (int i = 0; i < RESAMPLE_CACHE_SLOTS; i++) {
        resample_cached *c = &resample_cache[i];
        if (c->refs != 0 || (occupied_only && !c->bytes)) continue;
        if (!c->bytes && !occupied_only) return c;
        if (!slot || c->last_use < slot->last_use) slot = c;
    }
    return slot;
}

static void resample_cache_evict(resample_cached *c) {
    resample_axis_release(&c->axis);
    resample_cache_bytes -= c->bytes;
    c->bytes = 0;
    c->in_size = 0;
}

/* Moves OWN (BYTES big) into a free or least recently used unused slot,
 * evicting unused filters while the total would pass its budget; NULL when
 * it cannot (every slot in use).  Caller holds the lock. */
static resample_cached *resample_cache_insert(int in_size, resample_axis *own, size_t bytes) {
    while (resample_cache_bytes + bytes > RESAMPLE_CACHE_TOTAL_BYTES) {
        resample_cached *old = resample_cache_victim(true);
        if (!old) return NULL;
        resample_cache_evict(old);
    }
    resample_cached *slot = resample_cache_victim(false);
    if (!slot) return NULL;
    if (slot->bytes) resample_cache_evict(slot);
    slot->in_size = in_size;
    slot->axis = *own;
    slot->bytes = bytes;
    resample_cache_bytes += bytes;
    slot->refs = 1;
    slot->last_use = ++resample_cache_clock;
    memset(own, 0, sizeof *own);
    return slot;
}

/* The filter for IN_SIZE -> OUT_SIZE: from the cache, or computed into OWN
 * (then cached when it fits).  NULL without memory.  Give it back with
 * resample_axis_put(). */
static const resample_axis *resample_axis_get(int in_size, int out_size, resample_axis *own) {
    memset(own, 0, sizeof *own);
    pthread_mutex_lock(&resample_cache_lock);
    resample_cached *c = resample_cache_find(in_size, out_size);
    pthread_mutex_unlock(&resample_cache_lock);
    if (c) return &c->axis;
    if (resample_axis_init(own, in_size, out_size) < 0) return NULL;
    size_t bytes = (size_t)own->out_size * (size_t)own->ksize * sizeof(int32_t) +
                   (size_t)own->out_size * (size_t)own->split_stride * 2 * sizeof(int16_t) +
                   (size_t)own->out_size * 2 * sizeof(int) + (size_t)own->out_size * (size_t)own->dig_stride * 3;
    if (bytes > RESAMPLE_CACHE_MAX_BYTES) return own;
    pthread_mutex_lock(&resample_cache_lock);
    c = resample_cache_find(in_size, out_size); /* another thread may have been faster */
    if (!c && resample_seen_before(in_size, out_size)) c = resample_cache_insert(in_size, own, bytes);
    pthread_mutex_unlock(&resample_cache_lock);
    if (!c) return own;
    resample_axis_release(own); /* a no-op when it went into the cache */
    return &c->axis;
}

/* Gives back what resample_axis_get() returned (NULL is fine). */
static void resample_axis_put(const resample_axis *axis, resample_axis *own) {
    if (!axis) return;
    if (axis == own) {
        resample_axis_release(own);
        return;
    }
    pthread_mutex_lock(&resample_cache_lock);
    for (int i = 0; i < RESAMPLE_CACHE_SLOTS; i++)
        if (&resample_cache[i].axis == axis) resample_cache[i].refs--;
    pthread_mutex_unlock(&resample_cache_lock);
}

/* Pillow's clip8: the sum shifted down, clipped to a byte. */
static inline unsigned char resample_clip8(int32_t sum) {
    int32_t v = sum >> RESAMPLE_PRECISION_BITS;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One output pixel: the dot product of N pixels with N coefficients. */
static inline int32_t resample_dot(const unsigned char *restrict px, const int32_t *restrict k, int n) {
    int32_t sum = 1 << (RESAMPLE_PRECISION_BITS - 1);
    for (int x = 0; x < n; x++)
        sum += px[x] * k[x];
    return sum;
}

/* Horizontal pass, long kernels: one dot product per output pixel. */
static void resample_rows_dot(const unsigned char *in, int in_w, int rows, const resample_axis *ax,
                              unsigned char *out) {
    for (int y = 0; y < rows; y++) {
        const unsigned char *row = in + (size_t)y * (size_t)in_w;
        unsigned char *dst = out + (size_t)y * (size_t)ax->out_size;
        for (int xx = 0; xx < ax->out_size; xx++) {
            const int *b = &ax->bounds[2 * xx];
            const int32_t *k = &ax->coeffs[(size_t)xx * (size_t)ax->ksize];
            dst[xx] = resample_clip8(resample_dot(row + b[0], k, b[1]));
        }
    }
}

#if RESAMPLE_X86
/* 16 coefficients at K. */
__attribute__((target("avx2"))) static inline __m256i resample_load_k(const int16_t *k) {
    return _mm256_loadu_si256((const __m256i *)(const void *)k);
}

/* 16 pixels at PX as 16-bit lanes.  Pixels past LIMIT (the end of the
 * buffer) are read as zeros: they only ever meet zero coefficients. */
__attribute__((target("avx2"))) static inline __m256i resample_load16_avx2(const unsigned char *px,
                                                                           const unsigned char *limit) {
    if (limit - px >= 16) return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)px));
    unsigned char tail[16] = {0};
    memcpy(tail, px, (size_t)(limit - px));
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)tail));
}

/* The sum of the eight int32 lanes of V, mod 2^32. */
__attribute__((target("avx2"))) static inline uint32_t resample_hsum_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(s);
}

/* lo, or hi * 2^11 + lo when SPLIT, plus Pillow's rounding constant, as
 * the int32 it is: the halves are sums mod 2^32, and so is this, and the
 * exact sum fits an int32 (see the top), so it is that sum. */
__attribute__((target("avx2"), always_inline)) static inline int32_t resample_join_avx2(__m256i acc_hi, __m256i acc_lo,
                                                                                        bool split) {
    __m256i acc = split ? _mm256_add_epi32(_mm256_slli_epi32(acc_hi, RESAMPLE_SPLIT_BITS), acc_lo) : acc_lo;
    return (int32_t)((uint32_t)(1 << (RESAMPLE_PRECISION_BITS - 1)) + resample_hsum_avx2(acc));
}

/* resample_dot with AVX2 on the coefficients LO, or on the split ones HI
 * and LO when SPLIT (both with zeros up to a multiple of 16 past N):
 * vpmaddwd, 16 taps a step.  Reads no pixel at or past LIMIT. */
__attribute__((target("avx2"), always_inline)) static inline int32_t
resample_dot_split_avx2(const unsigned char *px, const unsigned char *limit, const int16_t *restrict hi,
                        const int16_t *restrict lo, int n, bool split) {
    __m256i acc_hi = _mm256_setzero_si256(), acc_lo = _mm256_setzero_si256();
    for (int x = 0; x < n; x += 16) {
        __m256i p = resample_load16_avx2(px + x, limit);
        if (split) acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(p, resample_load_k(hi + x)));
        acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(p, resample_load_k(lo + x)));
    }
    return resample_join_avx2(acc_hi, acc_lo, split);
}

/* The same for four rows STRIDE bytes apart, into DST[r * DST_STRIDE]:
 * the rows share each load of coefficients (with thousands of taps, in a
 * large downscale, the coefficients do not stay in L1 and reading them
 * once per row is the bottleneck).  All 16-byte steps of the four rows
 * must be readable. */
__attribute__((target("avx2"), always_inline)) static inline void
resample_dot4_split_avx2(const unsigned char *px, size_t stride, const int16_t *restrict hi, const int16_t *restrict lo,
                         int n, unsigned char *dst, size_t dst_stride, bool split) {
    __m256i h0 = _mm256_setzero_si256(), h1 = h0, h2 = h0, h3 = h0;
    __m256i l0 = h0, l1 = h0, l2 = h0, l3 = h0;
    for (int x = 0; x < n; x += 16) {
        const unsigned char *q = px + x;
        __m256i p0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)q));
        __m256i p1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + stride)));
        __m256i p2 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + 2 * stride)));
        __m256i p3 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + 3 * stride)));
        if (split) {
            __m256i h = resample_load_k(hi + x);
            h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(p0, h));
            h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(p1, h));
            h2 = _mm256_add_epi32(h2, _mm256_madd_epi16(p2, h));
            h3 = _mm256_add_epi32(h3, _mm256_madd_epi16(p3, h));
        }
        __m256i l = resample_load_k(lo + x);
        l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(p0, l));
        l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(p1, l));
        l2 = _mm256_add_epi32(l2, _mm256_madd_epi16(p2, l));
        l3 = _mm256_add_epi32(l3, _mm256_madd_epi16(p3, l));
    }
    dst[0] = resample_clip8(resample_join_avx2(h0, l0, split));
    dst[dst_stride] = resample_clip8(resample_join_avx2(h1, l1, split));
    dst[2 * dst_stride] = resample_clip8(resample_join_avx2(h2, l2, split));
    dst[3 * dst_stride] = resample_clip8(resample_join_avx2(h3, l3, split));
}

/* Horizontal pass, long kernels, with AVX2: four rows at a time, one by
 * one where a 16-byte step could read past the end of IN. */
__attribute__((target("avx2"), always_inline)) static inline void
resample_rows_dot_avx2_impl(const unsigned char *in, int in_w, int rows, size_t readable, const resample_axis *ax,
                            unsigned char *out, bool split) {
    size_t w = (size_t)in_w, out_w = (size_t)ax->out_size, size = readable;
    for (int y = 0; y < rows; y += 4) {
        int n = rows - y < 4 ? rows - y : 4;
        const unsigned char *row = in + (size_t)y * w;
        unsigned char *dst = out + (size_t)y * out_w;
        for (int xx = 0; xx < ax->out_size; xx++) {
            const int *b = &ax->bounds[2 * xx];
            size_t k = (size_t)xx * (size_t)ax->split_stride;
            const int16_t *hi = &ax->split_hi[k], *lo = &ax->split_lo[k];
            size_t span = (size_t)b[0] + ((size_t)b[1] + 15) / 16 * 16; /* bytes of a row read */
            if (n == 4 && (size_t)(y + 3) * w + span <= size) {
                resample_dot4_split_avx2(row + b[0], w, hi, lo, b[1], dst + xx, out_w, split);
                continue;
            }
            for (int r = 0; r < n; r++)
                dst[(size_t)r * out_w + (size_t)xx] = resample_clip8(
                    resample_dot_split_avx2(row + (size_t)r * w + (size_t)b[0], in + size, hi, lo, b[1], split));
        }
    }
}

/* The pass compiled twice, for split and for narrow coefficients. */
__attribute__((target("avx2"))) static void resample_rows_dot_avx2(const unsigned char *in, int in_w, int rows,
                                                                   size_t readable, const resample_axis *ax,
                                                                   unsigned char *out) {
    if (ax->narrow)
        resample_rows_dot_avx2_impl(in, in_w, rows, readable, ax, out, false);
    else
        resample_rows_dot_avx2_impl(in, in_w, rows, readable, ax, out, true);
}
#endif

#if RESAMPLE_X86
/* Horizontal pass, long kernels, with VNNI (vpdpbusd on 256-bit vectors,
 * AVX512-VNNI with VL): 32 taps a step as three digit products (see
 * resample_axis_digits), four rows sharing each load of the digits; one
 * row at a time where a 32-byte step could read past the end of IN. */
__attribute__((target("avx2,avx512vnni,avx512vl"))) static inline int32_t resample_join_digits(__m256i a0, __m256i a1,
                                                                                               __m256i a2) {
    __m256i acc = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(a2, 16), _mm256_slli_epi32(a1, 8)), a0);
    return (int32_t)((uint32_t)(1 << (RESAMPLE_PRECISION_BITS - 1)) + resample_hsum_avx2(acc));
}

__attribute__((target("avx2,avx512vnni,avx512vl"))) static void resample_rows_vnni(const unsigned char *in, int in_w,
                                                                                   int rows, size_t readable,
                                                                                   const resample_axis *ax,
                                                                                   unsigned char *out) {
    size_t w = (size_t)in_w, out_w = (size_t)ax->out_size, size = readable;
    size_t plane = (size_t)ax->out_size * (size_t)ax->dig_stride;
    for (int y = 0; y < rows; y += 4) {
        int n = rows - y < 4 ? rows - y : 4;
        const unsigned char *row = in + (size_t)y * w;
        unsigned char *dst = out + (size_t)y * out_w;
        for (int xx = 0; xx < ax->out_size; xx++) {
            const int *b = &ax->bounds[2 * xx];
            const int8_t *d = ax->dig + (size_t)xx * (size_t)ax->dig_stride;
            int taps = b[1];
            size_t span = (size_t)b[0] + ((size_t)taps + 31) / 32 * 32; /* bytes of a row read */
            if (n == 4 && (size_t)(y + 3) * w + span <= size) {
                __m256i z = _mm256_setzero_si256();
                __m256i a0[4] = {z, z, z, z}, a1[4] = {z, z, z, z}, a2[4] = {z, z, z, z};
                const unsigned char *px = row + b[0];
                for (int x = 0; x < taps; x += 32) {
                    __m256i k0 = _mm256_loadu_si256((const __m256i *)(const void *)(d + x));
                    __m256i k1 = _mm256_loadu_si256((const __m256i *)(const void *)(d + plane + (size_t)x));
                    __m256i k2 = _mm256_loadu_si256((const __m256i *)(const void *)(d + 2 * plane + (size_t)x));
                    for (int r = 0; r < 4; r++) {
                        __m256i p = _mm256_loadu_si256((const __m256i *)(const void *)(px + (size_t)r * w + x));
                        a0[r] = _mm256_dpbusd_epi32(a0[r], p, k0);
                        a1[r] = _mm256_dpbusd_epi32(a1[r], p, k1);
                        a2[r] = _mm256_dpbusd_epi32(a2[r], p, k2);
                    }
                }
                for (int r = 0; r < 4; r++)
                    dst[(size_t)r * out_w + (size_t)xx] = resample_clip8(resample_join_digits(a0[r], a1[r], a2[r]));
                continue;
            }
            for (int r = 0; r < n; r++) {
                const unsigned char *px = row + (size_t)r * w + (size_t)b[0];
                const unsigned char *limit = in + size;
                __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0;
                for (int x = 0; x < taps; x += 32) {
                    __m256i p;
                    if (limit - (px + x) >= 32) {
                        p = _mm256_loadu_si256((const __m256i *)(const void *)(px + x));
                    } else { /* past LIMIT only zero digits would meet it */
                        unsigned char tail[32] = {0};
                        memcpy(tail, px + x, (size_t)(limit - (px + x)));
                        p = _mm256_loadu_si256((const __m256i *)(const void *)tail);
                    }
                    a0 = _mm256_dpbusd_epi32(a0, p, _mm256_loadu_si256((const __m256i *)(const void *)(d + x)));
                    a1 = _mm256_dpbusd_epi32(
                        a1, p, _mm256_loadu_si256((const __m256i *)(const void *)(d + plane + (size_t)x)));
                    a2 = _mm256_dpbusd_epi32(
                        a2, p, _mm256_loadu_si256((const __m256i *)(const void *)(d + 2 * plane + (size_t)x)));
                }
                dst[(size_t)r * out_w + (size_t)xx] = resample_clip8(resample_join_digits(a0, a1, a2));
            }
        }
    }
}
#endif

/* The transposition uses GCC's vector types and __builtin_shuffle (SSE2
 * unpack instructions on x86-64, whatever fits elsewhere). */
typedef uint8_t resample_u8x16 __attribute__((vector_size(16)));

/* Interleaves of 1, 2, 4 and 8 bytes, low and high halves. */
static const resample_u8x16 resample_lo8 = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const resample_u8x16 resample_hi8 = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
static const resample_u8x16 resample_lo16 = {0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23};
static const resample_u8x16 resample_hi16 = {8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31};
static const resample_u8x16 resample_lo32 = {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23};
static const resample_u8x16 resample_hi32 = {8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
static const resample_u8x16 resample_lo64 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
static const resample_u8x16 resample_hi64 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};

/* Transposes the 16 x 16 bytes at IN (rows STRIDE apart) into OUT
 * (OUT[c * 16 + r] = IN[r][c]) with four rounds of interleaving. */
static void resample_transpose16(const unsigned char *in, size_t stride, unsigned char *out) {
    resample_u8x16 a[16], b[16];
    for (int r = 0; r < 16; r++)
        memcpy(&a[r], in + (size_t)r * stride, 16);
    for (int k = 0; k < 8; k++) { /* b[2k], b[2k+1]: rows 2k, 2k+1 by byte */
        b[2 * k] = __builtin_shuffle(a[2 * k], a[2 * k + 1], resample_lo8);
        b[2 * k + 1] = __builtin_shuffle(a[2 * k], a[2 * k + 1], resample_hi8);
    }
    for (int g = 0; g < 4; g++) { /* a[4g+q]: rows 4g..4g+3, columns 4q..4q+3 */
        a[4 * g] = __builtin_shuffle(b[4 * g], b[4 * g + 2], resample_lo16);
        a[4 * g + 1] = __builtin_shuffle(b[4 * g], b[4 * g + 2], resample_hi16);
        a[4 * g + 2] = __builtin_shuffle(b[4 * g + 1], b[4 * g + 3], resample_lo16);
        a[4 * g + 3] = __builtin_shuffle(b[4 * g + 1], b[4 * g + 3], resample_hi16);
    }
    for (int h = 0; h < 2; h++) { /* b[8h+m]: rows 8h..8h+7, columns 2m, 2m+1 */
        for (int q = 0; q < 4; q++) {
            b[8 * h + 2 * q] = __builtin_shuffle(a[8 * h + q], a[8 * h + 4 + q], resample_lo32);
            b[8 * h + 2 * q + 1] = __builtin_shuffle(a[8 * h + q], a[8 * h + 4 + q], resample_hi32);
        }
    }
    for (int m = 0; m < 8; m++) { /* whole columns 2m and 2m+1 */
        a[0] = __builtin_shuffle(b[m], b[8 + m], resample_lo64);
        a[1] = __builtin_shuffle(b[m], b[8 + m], resample_hi64);
        memcpy(out + 32 * m, &a[0], 16);
        memcpy(out + 32 * m + 16, &a[1], 16);
    }
}

/* Copies ROWS (<= RESAMPLE_BLOCK) rows of IN into T column by column:
 * T[x * RESAMPLE_BLOCK + r] = IN[r][x]; missing rows are zero. */
static void resample_transpose_block(const unsigned char *in, int in_w, int rows, unsigned char *restrict t) {
    int x = 0;
    if (rows == RESAMPLE_BLOCK) {
        for (; x + 16 <= in_w; x += 16)
            resample_transpose16(in + x, (size_t)in_w, t + (size_t)x * RESAMPLE_BLOCK);
    } else {
        memset(t, 0, (size_t)in_w * RESAMPLE_BLOCK);
    }
    for (int r = 0; r < rows; r++) {
        const unsigned char *row = in + (size_t)r * (size_t)in_w;
        for (int c = x; c < in_w; c++)
            t[(size_t)c * RESAMPLE_BLOCK + r] = row[c];
    }
}

/* Horizontal pass on a transposed block, portable version: each tap is
 * applied to the 16 rows at once. */
static void resample_block_taps_generic(const unsigned char *restrict t, const resample_axis *ax,
                                        unsigned char *restrict out_t) {
    for (int xx = 0; xx < ax->out_size; xx++) {
        const int *b = &ax->bounds[2 * xx];
        const int32_t *k = &ax->coeffs[(size_t)xx * (size_t)ax->ksize];
        const unsigned char *col = t + (size_t)b[0] * RESAMPLE_BLOCK;
        int32_t acc[RESAMPLE_BLOCK];
        for (int r = 0; r < RESAMPLE_BLOCK; r++)
            acc[r] = 1 << (RESAMPLE_PRECISION_BITS - 1);
        for (int x = 0; x < b[1]; x++)
            for (int r = 0; r < RESAMPLE_BLOCK; r++)
                acc[r] += col[x * RESAMPLE_BLOCK + r] * k[x];
        for (int r = 0; r < RESAMPLE_BLOCK; r++)
            out_t[(size_t)xx * RESAMPLE_BLOCK + r] = resample_clip8(acc[r]);
    }
}

#if RESAMPLE_X86
/* The same with AVX2: two vectors of 8 row sums; the final clip is a shift
 * and two saturating packs (sums >> 22 lie in -640..639, inside int16). */
__attribute__((target("avx2"))) static void
resample_block_taps_avx2(const unsigned char *restrict t, const resample_axis *ax, unsigned char *restrict out_t) {
    const __m256i init = _mm256_set1_epi32(1 << (RESAMPLE_PRECISION_BITS - 1));
    for (int xx = 0; xx < ax->out_size; xx++) {
        const int *b = &ax->bounds[2 * xx];
        const int32_t *k = &ax->coeffs[(size_t)xx * (size_t)ax->ksize];
        const unsigned char *col = t + (size_t)b[0] * RESAMPLE_BLOCK;
        __m256i acc0 = init, acc1 = init;
        for (int x = 0; x < b[1]; x++) {
            __m128i px = _mm_loadu_si128((const __m128i *)(const void *)(col + x * RESAMPLE_BLOCK));
            __m256i c = _mm256_set1_epi32(k[x]);
            acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(px), c));
            acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(px, 8)), c));
        }
        __m256i w = _mm256_packs_epi32(_mm256_srai_epi32(acc0, RESAMPLE_PRECISION_BITS),
                                       _mm256_srai_epi32(acc1, RESAMPLE_PRECISION_BITS));
        w = _mm256_permute4x64_epi64(w, 0xd8); /* packs works per 128-bit lane */
        __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(void *)(out_t + (size_t)xx * RESAMPLE_BLOCK), bytes);
    }
}
#endif

static void resample_block_taps(const unsigned char *restrict t, const resample_axis *ax,
                                unsigned char *restrict out_t) {
#if RESAMPLE_X86
    if (__builtin_cpu_supports("avx2")) {
        resample_block_taps_avx2(t, ax, out_t);
        return;
    }
#endif
    resample_block_taps_generic(t, ax, out_t);
}

/* Horizontal pass, short kernels, ROWS rows of IN into OUT. */
static int resample_rows_blocked(const unsigned char *in, int in_w, int rows, const resample_axis *ax,
                                 unsigned char *out) {
    int out_w = ax->out_size;
    unsigned char *t = malloc((size_t)in_w * RESAMPLE_BLOCK);
    unsigned char *out_t = malloc(((size_t)out_w + 16) * RESAMPLE_BLOCK);
    if (!t || !out_t) {
        free(t);
        free(out_t);
        return -1;
    }
    for (int y0 = 0; y0 < rows; y0 += RESAMPLE_BLOCK) {
        int n = rows - y0 < RESAMPLE_BLOCK ? rows - y0 : RESAMPLE_BLOCK;
        resample_transpose_block(in + (size_t)y0 * (size_t)in_w, in_w, n, t);
        resample_block_taps(t, ax, out_t);
        unsigned char *dst = out + (size_t)y0 * (size_t)out_w;
        int xx = 0;
        if (n == RESAMPLE_BLOCK) { /* transpose back, 16 columns at a time */
            unsigned char tile[256];
            for (; xx + 16 <= out_w; xx += 16) {
                resample_transpose16(out_t + (size_t)xx * RESAMPLE_BLOCK, RESAMPLE_BLOCK, tile);
                for (int r = 0; r < 16; r++)
                    memcpy(dst + (size_t)r * (size_t)out_w + xx, tile + 16 * r, 16);
            }
        }
        for (int r = 0; r < n; r++)
            for (int c = xx; c < out_w; c++)
                dst[(size_t)r * (size_t)out_w + c] = out_t[(size_t)c * RESAMPLE_BLOCK + r];
    }
    free(t);
    free(out_t);
    return 0;
}

/* Horizontal pass: ROWS rows of IN (IN_W wide) into OUT (ax->out_size
 * wide); READABLE bytes from IN on may be read (the rows and any after
 * them: a band of an image may read into the next band). */
static int resample_horizontal(const unsigned char *in, int in_w, int rows, size_t readable, const resample_axis *ax,
                               unsigned char *out) {
    if (ax->ksize < RESAMPLE_SHORT_KERNEL && rows >= RESAMPLE_BLOCK)
        return resample_rows_blocked(in, in_w, rows, ax, out);
#if RESAMPLE_X86
    if (ax->dig) { /* made only where the CPU has VNNI */
        resample_rows_vnni(in, in_w, rows, readable, ax, out);
        return 0;
    }
    if (__builtin_cpu_supports("avx2") && ax->split_hi) {
        resample_rows_dot_avx2(in, in_w, rows, readable, ax, out);
        return 0;
    }
#endif
    resample_rows_dot(in, in_w, rows, ax, out);
    return 0;
}

/* Vertical pass for columns X0 .. X0 + N - 1 (N <= RESAMPLE_CHUNK); IN's
 * first row is row FIRST of the rows ax->bounds refers to. */
static void resample_columns(const unsigned char *in, int w, int first, const resample_axis *ax, int x0, int n,
                             unsigned char *out) {
    int32_t acc[RESAMPLE_CHUNK];
    for (int yy = 0; yy < ax->out_size; yy++) {
        const int *b = &ax->bounds[2 * yy];
        const int32_t *k = &ax->coeffs[(size_t)yy * (size_t)ax->ksize];
        for (int i = 0; i < n; i++)
            acc[i] = 1 << (RESAMPLE_PRECISION_BITS - 1);
        for (int y = 0; y < b[1]; y++) {
            const unsigned char *restrict row = in + (size_t)(b[0] - first + y) * (size_t)w + x0;
            int32_t c = k[y];
            for (int i = 0; i < n; i++)
                acc[i] += row[i] * c;
        }
        unsigned char *dst = out + (size_t)yy * (size_t)w + x0;
        for (int i = 0; i < n; i++)
            dst[i] = resample_clip8(acc[i]);
    }
}

#if RESAMPLE_X86
/* Vertical pass with AVX2 for columns 0 .. W/32*32 - 1: 32 columns at a
 * time, their sums held in four registers over all the taps. */
__attribute__((target("avx2"))) static void resample_columns_avx2(const unsigned char *in, int w, int first,
                                                                  const resample_axis *ax, unsigned char *out) {
    const __m256i init = _mm256_set1_epi32(1 << (RESAMPLE_PRECISION_BITS - 1));
    for (int yy = 0; yy < ax->out_size; yy++) {
        const int *b = &ax->bounds[2 * yy];
        const int32_t *k = &ax->coeffs[(size_t)yy * (size_t)ax->ksize];
        const unsigned char *top = in + (size_t)(b[0] - first) * (size_t)w;
        for (int x0 = 0; x0 + 32 <= w; x0 += 32) {
            __m256i acc[4] = {init, init, init, init};
            for (int y = 0; y < b[1]; y++) {
                const unsigned char *p = top + (size_t)y * (size_t)w + x0;
                __m256i c = _mm256_set1_epi32(k[y]);
                for (int q = 0; q < 4; q++) {
                    __m128i px = _mm_loadl_epi64((const __m128i *)(const void *)(p + 8 * q));
                    acc[q] = _mm256_add_epi32(acc[q], _mm256_mullo_epi32(_mm256_cvtepu8_epi32(px), c));
                }
            }
            for (int q = 0; q < 4; q++)
                acc[q] = _mm256_srai_epi32(acc[q], RESAMPLE_PRECISION_BITS);
            /* packs work per 128-bit lane: the permute puts the bytes back in order */
            __m256i w01 = _mm256_packs_epi32(acc[0], acc[1]), w23 = _mm256_packs_epi32(acc[2], acc[3]);
            __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(w01, w23), 0xd8);
            bytes = _mm256_shuffle_epi32(bytes, 0xd8);
            _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)yy * (size_t)w + x0), bytes);
        }
    }
}
#endif

/* Vertical pass: IN (W wide; its first row is row FIRST of what ax->bounds
 * refers to) into OUT. */
static void resample_vertical(const unsigned char *in, int w, int first, const resample_axis *ax, unsigned char *out) {
    int x0 = 0;
#if RESAMPLE_X86
    if (__builtin_cpu_supports("avx2") && w >= 32) {
        resample_columns_avx2(in, w, first, ax, out);
        x0 = w / 32 * 32;
    }
#endif
    for (; x0 < w; x0 += RESAMPLE_CHUNK) {
        int n = w - x0 < RESAMPLE_CHUNK ? w - x0 : RESAMPLE_CHUNK;
        resample_columns(in, w, first, ax, x0, n, out);
    }
}

int ih_resample_lanczos(const unsigned char *in, int in_w, int in_h, unsigned char *out, int out_w, int out_h) {
    bool need_h = out_w != in_w, need_v = out_h != in_h;
    resample_axis own_h, own_v;
    const resample_axis *horiz = NULL, *vert = NULL;
    unsigned char *tmp = NULL;
    int status = -1;

    if (!need_h && !need_v) {
        memcpy(out, in, (size_t)in_w * (size_t)in_h);
        return 0;
    }
    if (need_v && !(vert = resample_axis_get(in_h, out_h, &own_v))) goto done;
    if (!need_h) {
        resample_vertical(in, in_w, 0, vert, out);
        status = 0;
        goto done;
    }
    if (!(horiz = resample_axis_get(in_w, out_w, &own_h))) goto done;
    if (!need_v) {
        status = resample_horizontal(in, in_w, in_h, (size_t)in_w * (size_t)in_h, horiz, out);
        goto done;
    }
    /* Only the rows the vertical pass reads, as Pillow's ybox_first/last. */
    int first = vert->bounds[0];
    int last = vert->bounds[2 * out_h - 2] + vert->bounds[2 * out_h - 1];
    tmp = ih_pixbuf_alloc((size_t)out_w * (size_t)(last - first));
    if (!tmp) goto done;
    if (resample_horizontal(in + (size_t)first * (size_t)in_w, in_w, last - first,
                            (size_t)in_w * (size_t)(in_h - first), horiz, tmp) < 0)
        goto done;
    resample_vertical(tmp, out_w, first, vert, out);
    status = 0;
done:
    free(tmp);
    resample_axis_put(horiz, &own_h);
    resample_axis_put(vert, &own_v);
    return status;
}

/* One target of ih_resample_lanczos_many while it runs. */
typedef struct resample_job {
    ih_resample_target *target;
    bool need_h, need_v;
    resample_axis own_h, own_v;
    const resample_axis *horiz, *vert;
    bool borrowed_h, borrowed_v; /* an earlier target's filter, not ours to put */
    int first, last;             /* the input rows the horizontal pass reads */
    unsigned char *tmp;          /* their horizontal pass, or the output itself */
} resample_job;

/* Rows a band of the shared horizontal sweep: 64 rows of a 6000-pixel
 * photo are 384 KB, which stay in the L2 cache while every target reads
 * them. */
#define RESAMPLE_BAND 64

/* An earlier job's filter for IN_SIZE -> OUT_SIZE (ahash's and dhash's
 * heights are the same, and so are both sides of a square image), or NULL. */
static const resample_axis *resample_jobs_find(const resample_job *jobs, int count, int in_w, int in_h, int in_size,
                                               int out_size) {
    for (int i = 0; i < count; i++) {
        const resample_job *j = &jobs[i];
        if (j->horiz && in_w == in_size && j->target->out_w == out_size) return j->horiz;
        if (j->vert && in_h == in_size && j->target->out_h == out_size) return j->vert;
    }
    return NULL;
}

int ih_resample_lanczos_many(const unsigned char *in, int in_w, int in_h, ih_resample_target *targets, int count) {
    resample_job jobs[IH_RESAMPLE_MAX_TARGETS];
    int status = -1;
    if (count < 0 || count > IH_RESAMPLE_MAX_TARGETS) return -1;
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < count; i++) {
        resample_job *j = &jobs[i];
        ih_resample_target *t = &targets[i];
        j->target = t;
        j->need_h = t->out_w != in_w;
        j->need_v = t->out_h != in_h;
        if (j->need_v) {
            j->vert = resample_jobs_find(jobs, i, in_w, in_h, in_h, t->out_h);
            j->borrowed_v = j->vert != NULL;
            if (!j->vert && !(j->vert = resample_axis_get(in_h, t->out_h, &j->own_v))) goto done;
        }
        if (j->need_h) {
            j->horiz = resample_jobs_find(jobs, i, in_w, in_h, in_w, t->out_w);
            if (!j->horiz && j->vert && in_w == in_h && t->out_w == t->out_h) j->horiz = j->vert;
            j->borrowed_h = j->horiz != NULL;
            if (!j->horiz && !(j->horiz = resample_axis_get(in_w, t->out_w, &j->own_h))) goto done;
        }
        if (!j->need_h) continue;
        if (!j->need_v) { /* the horizontal pass alone, straight into the output */
            j->first = 0, j->last = in_h, j->tmp = t->out;
            continue;
        }
        /* Only the rows the vertical pass reads, as Pillow's ybox_first/last. */
        j->first = j->vert->bounds[0];
        j->last = j->vert->bounds[2 * t->out_h - 2] + j->vert->bounds[2 * t->out_h - 1];
        j->tmp = ih_pixbuf_alloc((size_t)t->out_w * (size_t)(j->last - j->first));
        if (!j->tmp) goto done;
    }
    /* The horizontal passes of all targets, band by band over the rows. */
    for (int y0 = 0; y0 < in_h; y0 += RESAMPLE_BAND) {
        int y1 = in_h - y0 < RESAMPLE_BAND ? in_h : y0 + RESAMPLE_BAND;
        for (int i = 0; i < count; i++) {
            resample_job *j = &jobs[i];
            if (!j->need_h) continue;
            int a = y0 > j->first ? y0 : j->first, b = y1 < j->last ? y1 : j->last;
            if (a >= b) continue;
            if (resample_horizontal(in + (size_t)a * (size_t)in_w, in_w, b - a, (size_t)in_w * (size_t)(in_h - a),
                                    j->horiz, j->tmp + (size_t)(a - j->first) * (size_t)j->target->out_w) < 0)
                goto done;
        }
    }
    for (int i = 0; i < count; i++) {
        resample_job *j = &jobs[i];
        ih_resample_target *t = j->target;
        if (!j->need_h && !j->need_v)
            memcpy(t->out, in, (size_t)in_w * (size_t)in_h);
        else if (!j->need_h)
            resample_vertical(in, in_w, 0, j->vert, t->out);
        else if (j->need_v)
            resample_vertical(j->tmp, t->out_w, j->first, j->vert, t->out);
    }
    status = 0;
done:
    for (int i = 0; i < count; i++) {
        resample_job *j = &jobs[i];
        if (j->tmp && j->need_v) free(j->tmp);
        if (!j->borrowed_h) resample_axis_put(j->horiz, &j->own_h);
        if (!j->borrowed_v) resample_axis_put(j->vert, &j->own_v);
    }
    return status;
}
