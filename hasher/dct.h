/* dct.h -- scipy.fftpack.dct(x) (type II, norm=None), to the last bit.
 *
 * dct_ii() repeats the floating-point operations scipy 1.10's pocketfft
 * performs for the unnormalised DCT-II, so that its results are the same
 * doubles, not merely close ones (see dct.c for why that matters).  Lengths
 * whose prime factors are all 2, 3 or 5 are supported; phash uses 4 * its
 * hash size.
 *
 * A plan holds the twiddle factors for one length; it is a plain struct
 * with no allocation, filled by dct_plan_init() and never released.
 */
#ifndef IMGFEED_DCT_H
#define IMGFEED_DCT_H

#include <stdbool.h>

#define DCT_MAX_LEN 128
#define DCT_MAX_FACTORS 8

typedef struct dct_plan {
    int n;
    int nfact;
    int fact[DCT_MAX_FACTORS];
    int tw_offset[DCT_MAX_FACTORS]; /* into rfft_tw, per factor */
    double rfft_tw[2 * DCT_MAX_LEN];
    double twiddle[DCT_MAX_LEN]; /* cos(pi/2 * (i+1) / n), pocketfft's way */
} dct_plan;

/* True when N (1 .. DCT_MAX_LEN) has no prime factor above 5. */
bool dct_length_supported(int n);

/* Fills PLAN for length N.  Returns 0, or -1 if N is not supported. */
int dct_plan_init(dct_plan *plan, int n);

/* The DCT-II of the plan->n doubles at X, in place. */
void dct_ii(const dct_plan *plan, double *x);

/* dct(dct(a, axis=0), axis=1) of the n x n row-major doubles at A, in place. */
void dct_ii_2d(const dct_plan *plan, double *a);

#endif
