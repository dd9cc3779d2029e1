/* hashes.c -- imagehash 4.3's average_hash, dhash, phash and whash
 * (ih_hashes_*).
 *
 * Each hash resizes the one gray image with Pillow's LANCZOS (resample.c;
 * the four resizes in one sweep over the image, ih_resample_lanczos_many)
 * and then follows imagehash line by line:
 *
 *   ahash  N x N; bit = pixel > numpy.mean(pixels).  The mean is sum/N^2 in
 *          double, and an integer pixel is above it exactly when
 *          pixel * N^2 > sum, so the test is done in integers.
 *   dhash  (N+1) wide x N high; bit = right neighbour > left.
 *   phash  4N x 4N as doubles; scipy.fftpack.dct over axis 0 then axis 1
 *          (dct.c); the top-left N x N block; bit = value > its median.
 *   whash  W = the largest power of two <= N (design.md: 8 for 12);
 *          scale = max(2^floor(log2(min(w, h))), W); resize to scale x
 *          scale; haar whash pipeline (haar.c); bit = value > its median.
 *
 * The median is numpy's: the middle value of the sorted values, or for an
 * even count (a + b) / 2 of the two middle ones, computed in that order
 * (found by selection; which of equal values is picked cannot matter).
 *
 * Supported sizes: 2 <= N <= 32 with 4N free of prime factors above 5
 * (dct.c has FFTPACK's radix 2, 3, 4 and 5 passes only), that is 2, 3, 4,
 * 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30 and 32.
 */
#include "hashes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dct.h"
#include "haar.h"
#include "pixbuf.h"
#include "resample.h"

bool ih_hashes_size_supported(int hash_size, const char **why) {
    const char *reason = NULL;
    if (hash_size < 2)
        reason = "hash size must be at least 2";
    else if (hash_size > IH_HASH_MAX_SIZE)
        reason = "hash size must be at most 32";
    else if (!ih_dct_length_supported(4 * hash_size))
        reason = "phash's DCT supports 4 * hash size with prime factors 2, 3 and 5 only: "
                 "use 2-6, 8-10, 12, 15, 16, 18, 20, 24, 25, 27, 30 or 32";
    if (why) *why = reason;
    return reason == NULL;
}

int ih_hashes_whash_size(int hash_size) {
    int w = 1;
    while (w * 2 <= hash_size)
        w *= 2;
    return w;
}

static void hashes_ahash(const unsigned char *px, int n, ih_bits *bits) {
    int64_t sum = 0, count = (int64_t)n * n;
    for (int i = 0; i < n * n; i++)
        sum += px[i];
    for (int i = 0; i < n * n; i++)
        bits->bit[i] = px[i] * count > sum;
    bits->nbits = n * n;
}

static void hashes_dhash(const unsigned char *px, int n, ih_bits *bits) {
    for (int y = 0; y < n; y++) {
        const unsigned char *row = px + (size_t)y * (size_t)(n + 1);
        for (int x = 0; x < n; x++)
            bits->bit[y * n + x] = row[x + 1] > row[x];
    }
    bits->nbits = n * n;
}

/* The K-th smallest of the COUNT values at V (0-based), which it reorders:
 * Hoare's selection.  Only values matter to the median, not which of equal
 * values is picked (a zero's sign never changes a comparison). */
static double hashes_select(double *v, int count, int k) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* numpy.median of the COUNT values at V: the middle one, or for an even
 * count (a + b) / 2 of the two middle ones. */
static double hashes_median(const double *v, int count) {
    double work[IH_HASH_MAX_BITS];
    memcpy(work, v, (size_t)count * sizeof *v);
    int k = count / 2;
    double upper = hashes_select(work, count, k);
    if (count % 2) return upper;
    double lower = work[0]; /* the largest of the k values now below position k */
    for (int i = 1; i < k; i++)
        if (work[i] > lower) lower = work[i];
    return (lower + upper) / 2;
}

/* bit = value > median(values), for the COUNT values at V. */
static void hashes_above_median(const double *v, int count, ih_bits *bits) {
    double median = hashes_median(v, count);
    for (int i = 0; i < count; i++)
        bits->bit[i] = v[i] > median;
    bits->nbits = count;
}

/* PX: the 4N x 4N resize. */
static int hashes_phash(const unsigned char *px, int n, ih_bits *bits) {
    int side = 4 * n;
    ih_dct_plan plan;
    if (ih_dct_plan_init(&plan, side) < 0) return -1;
    double *coef = malloc((size_t)side * (size_t)side * sizeof *coef);
    if (!coef) return -1;
    for (int i = 0; i < side * side; i++)
        coef[i] = px[i];
    ih_dct_ii_2d(&plan, coef);
    double low[IH_HASH_MAX_BITS];
    for (int y = 0; y < n; y++)
        memcpy(&low[y * n], &coef[y * side], (size_t)n * sizeof *low);
    free(coef);
    hashes_above_median(low, n * n, bits);
    return 0;
}

/* 2^floor(log2(v)) for v >= 1. */
static int hashes_floor_pow2(int v) {
    int p = 1;
    while (p <= v / 2)
        p *= 2;
    return p;
}

/* whash's side: max(2^floor(log2(min(w, h))), SIZE). */
static int hashes_whash_scale(int width, int height, int size) {
    int natural = hashes_floor_pow2(width < height ? width : height);
    return natural > size ? natural : size;
}

/* PX: the SCALE x SCALE resize. */
static int hashes_whash(const unsigned char *px, int scale, int size, ih_bits *bits) {
    double ll[IH_HASH_MAX_BITS];
    if (ih_haar_whash_ll(px, scale, size, ll) < 0) return -1;
    hashes_above_median(ll, size * size, bits);
    return 0;
}

/* The four resizes in one sweep over the image (resample.h), then each
 * hash from its own. */
int ih_hashes_compute(const ih_gray *image, int hash_size, ih_hashes *out) {
    if (!ih_hashes_size_supported(hash_size, NULL) || image->width < 1 || image->height < 1) return -1;
    memset(out, 0, sizeof *out);
    int n = hash_size;
    out->hash_size = n;
    out->whash_size = ih_hashes_whash_size(n);
    int scale = hashes_whash_scale(image->width, image->height, out->whash_size);
    ih_resample_target t[4] = {{n, n, NULL}, {n + 1, n, NULL}, {4 * n, 4 * n, NULL}, {scale, scale, NULL}};
    /* ahash, dhash and phash share one small buffer; whash's may be huge */
    size_t small = (size_t)n * (size_t)n + (size_t)(n + 1) * (size_t)n + (size_t)(16 * n) * (size_t)n;
    unsigned char *buf = malloc(small);
    t[3].out = ih_pixbuf_alloc((size_t)scale * (size_t)scale);
    int status = -1;
    if (!buf || !t[3].out) goto done;
    t[0].out = buf;
    t[1].out = t[0].out + (size_t)n * (size_t)n;
    t[2].out = t[1].out + (size_t)(n + 1) * (size_t)n;
    if (ih_resample_lanczos_many(image->pixels, image->width, image->height, t, 4) < 0) goto done;
    hashes_ahash(t[0].out, n, &out->ahash);
    hashes_dhash(t[1].out, n, &out->dhash);
    if (hashes_phash(t[2].out, n, &out->phash) < 0) goto done;
    free(buf);
    buf = NULL;
    if (hashes_whash(t[3].out, scale, out->whash_size, &out->whash) < 0) goto done;
    status = 0;
done:
    free(buf);
    free(t[3].out);
    return status;
}

/* The most ih_hashes_compute() holds (see it above): while resizing, the
 * four outputs (whash's scale x scale, the others small) and the four
 * intermediate images (whash's scale x H, the others N to 4N wide), with
 * the blocked pass's scratch and the filters that are not cached
 * (resample.c: filters of large images, about 11 bytes a tap, bounded by
 * 1200 bytes a pixel of the sides for all eight); then whash's square with
 * phash's 4N x 4N doubles or with its haar pyramid (haar.c: about 1.3
 * bytes a pixel of the square).  Big buffers take whole huge pages
 * (pixbuf.h). */
uint64_t ih_hashes_working_bytes(int width, int height, int hash_size) {
    if (width < 1 || height < 1) return 0;
    uint64_t w = (uint64_t)width, h = (uint64_t)height;
    uint64_t n = (uint64_t)(hash_size > 0 ? hash_size : IH_HASH_DEFAULT_SIZE);
    int size = ih_hashes_whash_size((int)n);
    uint64_t scale = (uint64_t)hashes_whash_scale(width, height, size);
    uint64_t square = ih_pixbuf_bytes(scale * scale);
    uint64_t small = n * n + (n + 1) * n + 16 * n * n;
    uint64_t resizing = square + small + ih_pixbuf_bytes(scale * h) + (6 * n + 1) * h;
    uint64_t haar =
        (scale * scale / 16 * 4 / 3 + 1) * 8 + scale * scale / 16 * 8 + (scale * scale / 64 + 1) * 8 + 4 * scale * 8;
    uint64_t phash = small + 16 * n * n * 9;
    uint64_t after = square + (haar > phash ? haar : phash);
    return (resizing > after ? resizing : after) + 1200 * (w + h) + 64 * 1024;
}
