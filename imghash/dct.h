/* dct.h -- scipy.fftpack.dct(x) (type II, norm=None), to the last bit
 * (ih_dct_*).
 *
 * ih_dct_ii() repeats the floating-point operations scipy 1.10's pocketfft
 * performs for the unnormalised DCT-II, so that its results are the same
 * doubles, not merely close ones (see dct.c for why that matters).  Lengths
 * whose prime factors are all 2, 3 or 5 are supported; phash uses 4 * its
 * hash size.
 *
 * A plan holds the twiddle factors for one length; it is a plain struct
 * with no allocation, filled by ih_dct_plan_init() and never released.
 */
#ifndef IH_DCT_H
#define IH_DCT_H

#include <stdbool.h>

#define IH_DCT_MAX_LEN 128
#define IH_DCT_MAX_FACTORS 8

typedef struct ih_dct_plan {
    int n;
    int nfact;
    int fact[IH_DCT_MAX_FACTORS];
    int tw_offset[IH_DCT_MAX_FACTORS]; /* into rfft_tw, per factor */
    double rfft_tw[2 * IH_DCT_MAX_LEN];
    double twiddle[IH_DCT_MAX_LEN]; /* cos(pi/2 * (i+1) / n), pocketfft's way */
} ih_dct_plan;

/* True when N (1 .. IH_DCT_MAX_LEN) has no prime factor above 5. */
bool ih_dct_length_supported(int n);

/* Fills PLAN for length N.  Returns 0, or -1 if N is not supported. */
int ih_dct_plan_init(ih_dct_plan *plan, int n);

/* The DCT-II of the plan->n doubles at X, in place. */
void ih_dct_ii(const ih_dct_plan *plan, double *x);

/* dct(dct(a, axis=0), axis=1) of the n x n row-major doubles at A, in place. */
void ih_dct_ii_2d(const ih_dct_plan *plan, double *a);

#endif
