/* haar.c -- whash's haar wavedec2 / waverec2, with pywt 1.1.1's arithmetic.
 *
 * pywt's 2-D haar transform works on 2 x 2 blocks.  wavedec2 level by level
 * (dwtn) filters along axis 0 and then along axis 1, and its downsampling
 * convolution computes each coefficient as
 *     sum = 0; sum += f[0] * x[2k+1]; sum += f[1] * x[2k];
 * with dec_lo = (h, h) and dec_hi = (-h, h), h = 0x1.6a09e667f3bcdp-1.  So
 * for a block x00 x01 / x10 x11 (row, column):
 *     a0 = h*x10 + h*x00        d0 = -h*x10 + h*x00     (axis 0, column 0)
 *     a1 = h*x11 + h*x01        d1 = -h*x11 + h*x01     (axis 0, column 1)
 *     aa = h*a1 + h*a0   ad = -h*a1 + h*a0   da = h*d1 + h*d0   dd = -h*d1 + h*d0
 * waverec2 (idwtn) undoes axis 1 first and then axis 0; its upsampling
 * convolution adds rec_lo * approximation and then rec_hi * detail into a
 * zeroed output, with rec_lo = (h, h), rec_hi = (h, -h):
 *     A0 = h*aa + h*ad   A1 = h*aa + -h*ad   D0 = h*da + h*dd   D1 = h*da + -h*dd
 *     x00 = h*A0 + h*D0  x10 = h*A0 + -h*D0  x01 = h*A1 + h*D1  x11 = h*A1 + -h*D1
 * The code writes -h*u + h*v as h*v - h*u and h*u + -h*v as h*u - h*v: in
 * IEEE arithmetic these are the same operations (a product's rounding does
 * not depend on its sign, and x + -y is x - y), so the values are the same
 * bits.  The leading "0 +" of pywt's sums is left out: it can only turn a -0
 * into +0, and the sign of a zero never reaches a comparison.
 *
 * Why these exact expressions: whash compares values with their median, and
 * on flat or regular images many values are equal but for rounding noise;
 * a different order of operations (or a fused multiply-add: the library is
 * built with -ffp-contract=off) rounds differently and flips bits.
 *
 * How whash is done without the whole coefficient list:
 *   1. the forward pass keeps only the approximations, from LL_2 up: each
 *      4 x 4 block of pixels gives four LL_1 values and one LL_2 value;
 *   2. the rebuild runs from the zeroed LL_L down to R_2 (level by level,
 *      each level's details recomputed from the approximation below it:
 *      the same expressions give the same values as stored details would);
 *   3. a second pass over the 4 x 4 pixel blocks recomputes LL_1 and does
 *      the last two rebuild levels and the first one or two levels of the
 *      second wavedec2 in one go, since all of them stay inside the block;
 *   4. the remaining levels of the second wavedec2, approximations only.
 * Working memory is about SCALE^2 / 6 doubles (S^2/12 for LL_2 and up,
 * S^2/16 + S^2/64 for the rebuild), instead of several full-size arrays.
 */
#include "haar.h"

#include <stdlib.h>
#include <string.h>

/* pywt's haar filter value, 1/sqrt(2) rounded. */
#define HAAR_H 0x1.6a09e667f3bcdp-1

/* The block loops vectorize; on x86-64 they also get an AVX2 clone, chosen
 * at run time (the results are the same: no FMA, same operations). */
#ifndef HAAR_HOT
#if defined(__GNUC__) && defined(__x86_64__)
#define HAAR_HOT __attribute__((target_clones("avx2", "default")))
#else
#define HAAR_HOT
#endif
#endif

/* The four subbands of one 2 x 2 block. */
typedef struct haar_bands {
    double aa, ad, da, dd;
} haar_bands;

/* The subbands of the block x00 x01 / x10 x11, given as U = h*x (the
 * products the first filter step forms). */
static inline haar_bands haar_forward_u(double u00, double u01, double u10, double u11) {
    const double h = HAAR_H;
    double a0 = u10 + u00, d0 = u00 - u10, a1 = u11 + u01, d1 = u01 - u11;
    double ha0 = h * a0, ha1 = h * a1, hd0 = h * d0, hd1 = h * d1;
    return (haar_bands){ha1 + ha0, ha0 - ha1, hd1 + hd0, hd0 - hd1};
}

static inline haar_bands haar_forward(const double x[4]) {
    const double h = HAAR_H;
    return haar_forward_u(h * x[0], h * x[1], h * x[2], h * x[3]);
}

/* The approximation alone, the same expressions as haar_forward. */
static inline double haar_approx_u(double u00, double u01, double u10, double u11) {
    const double h = HAAR_H;
    return h * (u11 + u01) + h * (u10 + u00);
}

static inline double haar_approx(const double x[4]) {
    const double h = HAAR_H;
    return haar_approx_u(h * x[0], h * x[1], h * x[2], h * x[3]);
}

/* Rebuilds the block from its subbands into X (x00, x01, x10, x11). */
static inline void haar_inverse(haar_bands b, double x[4]) {
    const double h = HAAR_H;
    double haa = h * b.aa, had = h * b.ad, hda = h * b.da, hdd = h * b.dd;
    double a0 = haa + had, a1 = haa - had, d0 = hda + hdd, d1 = hda - hdd;
    double ha0 = h * a0, ha1 = h * a1, hd0 = h * d0, hd1 = h * d1;
    x[0] = ha0 + hd0;
    x[1] = ha1 + hd1;
    x[2] = ha0 - hd0;
    x[3] = ha1 - hd1;
}

/* h * (p / 255.) for each byte value p: numpy.asarray(image) / 255. times
 * the first filter tap, the same product as computed in place. */
static void haar_pixel_table(double table[256]) {
    for (int i = 0; i < 256; i++)
        table[i] = HAAR_H * (i / 255.);
}

/* The 2 x 2 block (i, j) of the N x N doubles V. */
static inline void haar_load(const double *v, size_t n, size_t i, size_t j, double x[4]) {
    const double *r0 = v + 2 * i * n + 2 * j, *r1 = r0 + n;
    x[0] = r0[0];
    x[1] = r0[1];
    x[2] = r1[0];
    x[3] = r1[1];
}

static inline void haar_store(double *v, size_t n, size_t i, size_t j, const double x[4]) {
    double *r0 = v + 2 * i * n + 2 * j, *r1 = r0 + n;
    r0[0] = x[0];
    r0[1] = x[1];
    r1[0] = x[2];
    r1[1] = x[3];
}

/* One wavedec2 level, approximation only: N x N doubles IN to N/2 x N/2 OUT. */
HAAR_HOT
static void haar_approx_level(const double *in, size_t n, double *out) {
    size_t m = n / 2;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < m; j++) {
            double x[4];
            haar_load(in, n, i, j, x);
            out[i * m + j] = haar_approx(x);
        }
    }
}

/* One waverec2 level: the N/2 x N/2 approximation APPROX and the details of
 * the level below (recomputed from its N x N values SRC) give N x N OUT. */
HAAR_HOT
static void haar_rebuild_level(const double *approx, const double *src, size_t n, double *out) {
    size_t m = n / 2;
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < m; j++) {
            double x[4];
            haar_load(src, n, i, j, x);
            haar_bands b = haar_forward(x);
            b.aa = approx[i * m + j];
            haar_inverse(b, x);
            haar_store(out, n, i, j, x);
        }
    }
}

/* The products U = h * x of block row BI of the N x N PIXELS, as 16
 * planes of M = N/4 values: plane[(2e + s) ... see HAAR_PLANE] so that
 * the block loops below run element-wise over the blocks of a row. */
#define HAAR_PLANE(planes, m, s, e) ((planes) + (size_t)((s)*4 + (e)) * (m))

static void haar_load_planes(const unsigned char *px, size_t n, size_t bi, const double hx[256], double *planes) {
    size_t m = n / 4;
    for (int r = 0; r < 4; r++) {
        const unsigned char *row = px + (4 * bi + (size_t)r) * n;
        for (int c = 0; c < 4; c++) {
            /* pixel (r, c) of a block is element e of its 2 x 2 sub-block s */
            double *plane = HAAR_PLANE(planes, m, (r / 2) * 2 + c / 2, (r % 2) * 2 + c % 2);
            for (size_t bj = 0; bj < m; bj++)
                plane[bj] = hx[row[4 * bj + (size_t)c]];
        }
    }
}

/* Element BJ of the planes: the products of the four 2 x 2 sub-blocks. */
static inline void haar_block_u(const double *planes, size_t m, size_t bj, double u[4][4]) {
    for (int s = 0; s < 4; s++)
        for (int e = 0; e < 4; e++)
            u[s][e] = HAAR_PLANE(planes, m, s, e)[bj];
}

/* Pass 1, one block row: LL_2 of each 4 x 4 block, through its LL_1. */
HAAR_HOT
static void haar_ll2_row(const double *planes, size_t m, double *restrict ll2) {
    for (size_t bj = 0; bj < m; bj++) {
        double u[4][4], l1[4];
        haar_block_u(planes, m, bj, u);
        for (int s = 0; s < 4; s++)
            l1[s] = haar_approx_u(u[s][0], u[s][1], u[s][2], u[s][3]);
        ll2[bj] = haar_approx(l1);
    }
}

/* Pass 2 for one 4 x 4 pixel block: the level-2 rebuild from R2 (the
 * block's R_2 value), the level-1 rebuild of the pixels into X (four 2 x 2
 * sub-blocks), and their level-1 approximations into Q1 (2 x 2). */
static inline void haar_final_block(const double u[4][4], double r2, double x[4][4], double q1[4]) {
    double l1[4], r1[4];
    for (int s = 0; s < 4; s++)
        l1[s] = haar_approx_u(u[s][0], u[s][1], u[s][2], u[s][3]);
    haar_bands b2 = haar_forward(l1);
    b2.aa = r2;
    haar_inverse(b2, r1);
    for (int s = 0; s < 4; s++) {
        haar_bands b1 = haar_forward_u(u[s][0], u[s][1], u[s][2], u[s][3]);
        b1.aa = r1[s];
        haar_inverse(b1, x[s]);
        q1[s] = haar_approx(x[s]);
    }
}

/* Pass 2, one block row, when the second wavedec2 has two levels or more:
 * RQ holds the row's R_2 values on entry and its level-2 approximations
 * (of the rebuilt image) on return. */
HAAR_HOT
static void haar_final_row(const double *planes, size_t m, double *restrict rq) {
    for (size_t bj = 0; bj < m; bj++) {
        double u[4][4], x[4][4], q1[4];
        haar_block_u(planes, m, bj, u);
        haar_final_block(u, rq[bj], x, q1);
        rq[bj] = haar_approx(q1);
    }
}

/* Pass 2, one block row, when the second wavedec2 has at most one level:
 * Q1 (N/2 wide) gets the row's two rows of level-1 approximations, or with
 * SECOND 0, FULL (N wide) the four rebuilt pixel rows.  Only small images
 * (SCALE <= 2 * 32) come here. */
static void haar_final_row_small(const double *planes, size_t m, const double *r2, int second, double *out_rows) {
    for (size_t bj = 0; bj < m; bj++) {
        double u[4][4], x[4][4], q1[4];
        haar_block_u(planes, m, bj, u);
        haar_final_block(u, r2[bj], x, q1);
        for (int s = 0; s < 4; s++) {
            size_t i = (size_t)s / 2, j = 2 * bj + (size_t)s % 2;
            if (second == 1)
                out_rows[i * 2 * m + j] = q1[s];
            else
                haar_store(out_rows, 4 * m, i, j, x[s]);
        }
    }
}

static int haar_log2(int n) {
    int k = 0;
    while ((1 << k) < n)
        k++;
    return k;
}

/* SCALE 2: one level each way, on a copy of the four pixels as doubles. */
static void haar_whash_2(const unsigned char *px, int size, double *out) {
    double x[4], r1[1];
    for (int i = 0; i < 4; i++)
        x[i] = px[i] / 255.;
    r1[0] = haar_approx(x) * 0;
    haar_rebuild_level(r1, x, 2, x);
    if (size == 2)
        memcpy(out, x, sizeof x);
    else
        out[0] = haar_approx(x);
}

int ih_haar_whash_ll(const unsigned char *pixels, int scale, int size, double *out) {
    if (scale == 1) { /* wavedec2 to level 0 and back: the pixel alone */
        out[0] = pixels[0] / 255.;
        return 0;
    }
    if (scale == 2) {
        haar_whash_2(pixels, size, out);
        return 0;
    }
    int levels = haar_log2(scale), second = levels - haar_log2(size);
    size_t n = (size_t)scale, s16 = n * n / 16;
    double hx[256];
    haar_pixel_table(hx);
    /* LL_k (k >= 2, side n >> k) at pyramid + offset[k]; then the rebuild
     * R_k in rq (k even) or spare (k odd), and the second wavedec2. */
    double *pyramid = malloc((s16 * 4 / 3 + 1) * sizeof *pyramid);
    double *rq = malloc(s16 * sizeof *rq);
    double *spare = malloc((s16 / 4 + 1) * sizeof *spare);
    double *planes = malloc(4 * n * sizeof *planes);
    if (!pyramid || !rq || !spare || !planes) {
        free(pyramid);
        free(rq);
        free(spare);
        free(planes);
        return -1;
    }
    size_t offset[32] = {0};
    for (size_t bi = 0; bi < n / 4; bi++) {
        haar_load_planes(pixels, n, bi, hx, planes);
        haar_ll2_row(planes, n / 4, pyramid + bi * (n / 4));
    }
    for (int k = 3; k <= levels; k++) {
        size_t side = n >> (k - 1);
        offset[k] = offset[k - 1] + side * side;
        haar_approx_level(pyramid + offset[k - 1], side, pyramid + offset[k]);
    }
    double *r = levels % 2 ? spare : rq; /* coeffs[0] *= 0 */
    r[0] = pyramid[offset[levels]] * 0;
    for (int k = levels; k >= 3; k--) {
        double *next = (k - 1) % 2 ? spare : rq;
        haar_rebuild_level(r, pyramid + offset[k - 1], n >> (k - 1), next);
        r = next;
    }
    for (size_t bi = 0; bi < n / 4; bi++) {
        haar_load_planes(pixels, n, bi, hx, planes);
        if (second >= 2)
            haar_final_row(planes, n / 4, rq + bi * (n / 4));
        else /* the rows of OUT this block row covers */
            haar_final_row_small(planes, n / 4, rq + bi * (n / 4), second,
                                 out + bi * (second == 1 ? 2 * (n / 2) : 4 * n));
    }
    if (second >= 2) {
        double *q = rq;
        for (int k = 3; k <= second; k++) {
            double *next = q == rq ? spare : rq;
            haar_approx_level(q, n >> (k - 1), next);
            q = next;
        }
        memcpy(out, q, (size_t)size * (size_t)size * sizeof *out);
    }
    free(pyramid);
    free(rq);
    free(spare);
    free(planes);
    return 0;
}
