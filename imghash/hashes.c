/* hashes.c -- imagehash 4.3's average_hash, dhash, phash and whash
 * (ih_hashes_*).
 *
 * Each hash resizes the one gray image with Pillow's LANCZOS (resample.c)
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
 * even count (a + b) / 2 of the two middle ones, computed in that order.
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

/* Resizes IMAGE to W x H into a new buffer (free() it), NULL without memory. */
static unsigned char *hashes_resize(const ih_gray *image, int w, int h) {
    unsigned char *out = malloc((size_t)w * (size_t)h);
    if (out && ih_resample_lanczos(image->pixels, image->width, image->height, out, w, h) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static int hashes_ahash(const ih_gray *image, int n, ih_bits *bits) {
    unsigned char *px = hashes_resize(image, n, n);
    if (!px) return -1;
    int64_t sum = 0, count = (int64_t)n * n;
    for (int i = 0; i < n * n; i++)
        sum += px[i];
    for (int i = 0; i < n * n; i++)
        bits->bit[i] = px[i] * count > sum;
    bits->nbits = n * n;
    free(px);
    return 0;
}

static int hashes_dhash(const ih_gray *image, int n, ih_bits *bits) {
    unsigned char *px = hashes_resize(image, n + 1, n);
    if (!px) return -1;
    for (int y = 0; y < n; y++) {
        const unsigned char *row = px + (size_t)y * (size_t)(n + 1);
        for (int x = 0; x < n; x++)
            bits->bit[y * n + x] = row[x + 1] > row[x];
    }
    bits->nbits = n * n;
    free(px);
    return 0;
}

static int hashes_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.median of the COUNT values at V. */
static double hashes_median(const double *v, int count) {
    double sorted[IH_HASH_MAX_BITS];
    memcpy(sorted, v, (size_t)count * sizeof *v);
    qsort(sorted, (size_t)count, sizeof *sorted, hashes_cmp_double);
    if (count % 2) return sorted[count / 2];
    return (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
}

/* bit = value > median(values), for the COUNT values at V. */
static void hashes_above_median(const double *v, int count, ih_bits *bits) {
    double median = hashes_median(v, count);
    for (int i = 0; i < count; i++)
        bits->bit[i] = v[i] > median;
    bits->nbits = count;
}

static int hashes_phash(const ih_gray *image, int n, ih_bits *bits) {
    int side = 4 * n;
    ih_dct_plan plan;
    if (ih_dct_plan_init(&plan, side) < 0) return -1;
    unsigned char *px = hashes_resize(image, side, side);
    if (!px) return -1;
    double *coef = malloc((size_t)side * (size_t)side * sizeof *coef);
    if (!coef) {
        free(px);
        return -1;
    }
    for (int i = 0; i < side * side; i++)
        coef[i] = px[i];
    free(px);
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

static int hashes_whash(const ih_gray *image, int size, ih_bits *bits) {
    int natural = hashes_floor_pow2(image->width < image->height ? image->width : image->height);
    int scale = natural > size ? natural : size;
    unsigned char *px = hashes_resize(image, scale, scale);
    if (!px) return -1;
    double ll[IH_HASH_MAX_BITS];
    int status = ih_haar_whash_ll(px, scale, size, ll);
    free(px);
    if (status < 0) return -1;
    hashes_above_median(ll, size * size, bits);
    return 0;
}

int ih_hashes_compute(const ih_gray *image, int hash_size, ih_hashes *out) {
    if (!ih_hashes_size_supported(hash_size, NULL) || image->width < 1 || image->height < 1) return -1;
    memset(out, 0, sizeof *out);
    out->hash_size = hash_size;
    out->whash_size = ih_hashes_whash_size(hash_size);
    if (hashes_ahash(image, hash_size, &out->ahash) < 0 || hashes_dhash(image, hash_size, &out->dhash) < 0 ||
        hashes_phash(image, hash_size, &out->phash) < 0 || hashes_whash(image, out->whash_size, &out->whash) < 0)
        return -1;
    return 0;
}

/* The largest of the four hashes' allocations (see the functions above):
 * whash's scale x scale resize with the resize's intermediate rows, or its
 * haar pyramid (haar.c: about 1.3 bytes a pixel of the square); phash's
 * 4N x 4N doubles; and the filters of the resize that is not cached
 * (resample.c: about 140 bytes a tap row, bounded by 200 a pixel of the
 * sides). */
uint64_t ih_hashes_working_bytes(int width, int height, int hash_size) {
    if (width < 1 || height < 1) return 0;
    uint64_t w = (uint64_t)width, h = (uint64_t)height;
    int size = ih_hashes_whash_size(hash_size);
    int natural = hashes_floor_pow2(width < height ? width : height);
    uint64_t scale = (uint64_t)(natural > size ? natural : size);
    uint64_t square = scale * scale;
    uint64_t haar = (square / 16 * 4 / 3 + 1) * 8 + square / 16 * 8 + (square / 64 + 1) * 8 + 4 * scale * 8;
    uint64_t resize = scale * h;
    uint64_t whash = square + (resize > haar ? resize : haar);
    uint64_t side = 4 * (uint64_t)(hash_size > 0 ? hash_size : IH_HASH_DEFAULT_SIZE);
    uint64_t phash = side * h + side * side * 9;
    return (whash > phash ? whash : phash) + 200 * (w + h) + 64 * 1024;
}
