/* dct.c -- the unnormalised DCT-II exactly as scipy 1.10.1 computes it.
 *
 * scipy.fftpack.dct(x) (type 2, norm=None) runs pocketfft's C++ T_dcst23:
 * pre-twiddle the input (x[0] and x[n-1] doubled, neighbours summed and
 * differenced), a real *backward* FFT (pocketfft's rfftp, FFTPACK's radb2,
 * radb3, radb4 and radb5 passes over the factors 4, 4, ..., 2, 3, 5 in
 * pocketfft's order), then a post-twiddle with cos(pi/2 * k / n).  The
 * twiddle factors come from pocketfft's sincos_2pibyn: cos/sin of an angle
 * reduced to the first octant, split into two tables and multiplied back.
 * This file repeats those steps in C, expression by expression (cos and
 * sin are the C library's, which scipy's C++ code calls too).
 *
 * Why the order of operations must not change: phash compares each DCT
 * coefficient with the median of the 12 x 12 block, and for flat images,
 * ramps and other regular pictures several coefficients are mathematically
 * equal (often zero) and differ only by rounding noise.  Which of them is
 * "greater" is decided by the last bit of that noise, so anything but the
 * very same operations in the very same order (no fused multiply-add, no
 * reassociation: the library is built with -ffp-contract=off) gives a
 * different hash on such images.
 */
#include "dct.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Table sizes of the twiddle generator for lengths up to 4 * IH_DCT_MAX_LEN. */
#define DCT_SINCOS_MAX 64

typedef struct dct_cmplx {
    double r, i;
} dct_cmplx;

/* pocketfft's sincos_2pibyn<double>: exp(2 pi i k / n) for 0 <= k < n. */
typedef struct dct_sincos {
    size_t n, mask, shift;
    dct_cmplx v1[DCT_SINCOS_MAX], v2[DCT_SINCOS_MAX];
} dct_sincos;

/* cos/sin of x * 2 pi / n computed from the first octant (calc()). */
static dct_cmplx dct_sincos_calc(size_t x, size_t n, double ang) {
    x <<= 3;
    if (x < 4 * n) {     /* first half */
        if (x < 2 * n) { /* first quadrant */
            if (x < n) return (dct_cmplx){cos((double)x * ang), sin((double)x * ang)};
            return (dct_cmplx){sin((double)(2 * n - x) * ang), cos((double)(2 * n - x) * ang)};
        }
        x -= 2 * n; /* second quadrant */
        if (x < n) return (dct_cmplx){-sin((double)x * ang), cos((double)x * ang)};
        return (dct_cmplx){-cos((double)(2 * n - x) * ang), sin((double)(2 * n - x) * ang)};
    }
    x = 8 * n - x;
    if (x < 2 * n) { /* third quadrant */
        if (x < n) return (dct_cmplx){cos((double)x * ang), -sin((double)x * ang)};
        return (dct_cmplx){sin((double)(2 * n - x) * ang), -cos((double)(2 * n - x) * ang)};
    }
    x -= 2 * n; /* fourth quadrant */
    if (x < n) return (dct_cmplx){-sin((double)x * ang), -cos((double)x * ang)};
    return (dct_cmplx){-cos((double)(2 * n - x) * ang), -sin((double)(2 * n - x) * ang)};
}

static void dct_sincos_init(dct_sincos *s, size_t n) {
    /* Thigh(0.25L*pi/n): computed in long double, then rounded. */
    double ang = (double)(0.25L * 3.141592653589793238462643383279502884197L / (long double)n);
    size_t nval = (n + 2) / 2;
    s->n = n;
    s->shift = 1;
    while (((size_t)1 << s->shift) * ((size_t)1 << s->shift) < nval)
        ++s->shift;
    s->mask = ((size_t)1 << s->shift) - 1;
    size_t n1 = s->mask + 1, n2 = (nval + s->mask) / (s->mask + 1);
    s->v1[0] = (dct_cmplx){1.0, 0.0};
    for (size_t i = 1; i < n1; ++i)
        s->v1[i] = dct_sincos_calc(i, n, ang);
    s->v2[0] = (dct_cmplx){1.0, 0.0};
    for (size_t i = 1; i < n2; ++i)
        s->v2[i] = dct_sincos_calc(i * (s->mask + 1), n, ang);
}

/* operator[]: the two table entries multiplied back together. */
static dct_cmplx dct_sincos_at(const dct_sincos *s, size_t idx) {
    if (2 * idx <= s->n) {
        dct_cmplx x1 = s->v1[idx & s->mask], x2 = s->v2[idx >> s->shift];
        return (dct_cmplx){x1.r * x2.r - x1.i * x2.i, x1.r * x2.i + x1.i * x2.r};
    }
    idx = s->n - idx;
    dct_cmplx x1 = s->v1[idx & s->mask], x2 = s->v2[idx >> s->shift];
    return (dct_cmplx){x1.r * x2.r - x1.i * x2.i, -(x1.r * x2.i + x1.i * x2.r)};
}

bool ih_dct_length_supported(int n) {
    if (n < 1 || n > IH_DCT_MAX_LEN) return false;
    while (n % 2 == 0)
        n /= 2;
    while (n % 3 == 0)
        n /= 3;
    while (n % 5 == 0)
        n /= 5;
    return n == 1;
}

/* rfftp::factorize(): 4s first, then one 2 moved to the front, then odd
 * factors in increasing order. */
static void dct_factorize(ih_dct_plan *plan) {
    int len = plan->n;
    plan->nfact = 0;
    while (len % 4 == 0) {
        plan->fact[plan->nfact++] = 4;
        len >>= 2;
    }
    if (len % 2 == 0) {
        len >>= 1;
        plan->fact[plan->nfact++] = 2;
        int t = plan->fact[0];
        plan->fact[0] = plan->fact[plan->nfact - 1];
        plan->fact[plan->nfact - 1] = t;
    }
    for (int divisor = 3; divisor * divisor <= len; divisor += 2) {
        while (len % divisor == 0) {
            plan->fact[plan->nfact++] = divisor;
            len /= divisor;
        }
    }
    if (len > 1) plan->fact[plan->nfact++] = len;
}

/* rfftp::comp_twiddle(): per factor but the last, (ip-1) * (ido-1) values. */
static void dct_rfft_twiddles(ih_dct_plan *plan) {
    dct_sincos twid;
    dct_sincos_init(&twid, (size_t)plan->n);
    int l1 = 1, ofs = 0;
    for (int k = 0; k < plan->nfact; ++k) {
        int ip = plan->fact[k], ido = plan->n / (l1 * ip);
        plan->tw_offset[k] = ofs;
        if (k < plan->nfact - 1) {
            double *tw = &plan->rfft_tw[ofs];
            ofs += (ip - 1) * (ido - 1);
            for (int j = 1; j < ip; ++j) {
                for (int i = 1; i <= (ido - 1) / 2; ++i) {
                    dct_cmplx w = dct_sincos_at(&twid, (size_t)j * (size_t)l1 * (size_t)i);
                    tw[(j - 1) * (ido - 1) + 2 * i - 2] = w.r;
                    tw[(j - 1) * (ido - 1) + 2 * i - 1] = w.i;
                }
            }
        }
        l1 *= ip;
    }
}

int ih_dct_plan_init(ih_dct_plan *plan, int n) {
    memset(plan, 0, sizeof *plan);
    if (!ih_dct_length_supported(n)) return -1;
    plan->n = n;
    dct_factorize(plan);
    dct_rfft_twiddles(plan);
    dct_sincos tw;
    dct_sincos_init(&tw, 4 * (size_t)n);
    for (int i = 0; i < n; ++i)
        plan->twiddle[i] = dct_sincos_at(&tw, (size_t)i + 1).r;
    return 0;
}

/* FFTPACK's helpers: PM(a, b, c, d) is a = c + d, b = c - d; MULPM(a, b, c,
 * d, e, f) is a = c*e + d*f, b = c*f - d*e. */
#define DCT_PM(a, b, c, d)                                                                                             \
    do {                                                                                                               \
        double c_ = (c);                                                                                               \
        double d_ = (d);                                                                                               \
        (a) = c_ + d_;                                                                                                 \
        (b) = c_ - d_;                                                                                                 \
    } while (0)
#define DCT_MULPM(a, b, c, d, e, f)                                                                                    \
    do {                                                                                                               \
        double c_ = (c), d_ = (d);                                                                                     \
        double e_ = (e), f_ = (f);                                                                                     \
        (a) = c_ * e_ + d_ * f_;                                                                                       \
        (b) = c_ * f_ - d_ * e_;                                                                                       \
    } while (0)

/* Array views as in pocketfft: CC(a,b,c) = cc[a + ido*(b + cdim*c)],
 * CH(a,b,c) = ch[a + ido*(b + l1*c)], WA(x,i) = wa[i + x*(ido-1)]. */
#define CC(a, b, c) cc[(a) + ido * ((b) + cdim * (c))]
#define CH(a, b, c) ch[(a) + ido * ((b) + l1 * (c))]
#define WA(x, i) wa[(i) + (x) * (ido - 1)]

static void dct_radb2(size_t ido, size_t l1, const double *restrict cc, double *restrict ch,
                      const double *restrict wa) {
    const size_t cdim = 2;
    for (size_t k = 0; k < l1; k++)
        DCT_PM(CH(0, k, 0), CH(0, k, 1), CC(0, 0, k), CC(ido - 1, 1, k));
    if ((ido & 1) == 0) {
        for (size_t k = 0; k < l1; k++) {
            CH(ido - 1, k, 0) = 2 * CC(ido - 1, 0, k);
            CH(ido - 1, k, 1) = -2 * CC(0, 1, k);
        }
    }
    if (ido <= 2) return;
    for (size_t k = 0; k < l1; ++k) {
        for (size_t i = 2; i < ido; i += 2) {
            size_t ic = ido - i;
            double ti2, tr2;
            DCT_PM(CH(i - 1, k, 0), tr2, CC(i - 1, 0, k), CC(ic - 1, 1, k));
            DCT_PM(ti2, CH(i, k, 0), CC(i, 0, k), CC(ic, 1, k));
            DCT_MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), ti2, tr2);
        }
    }
}

static const double dct_taur = -0.5;
static const double dct_taui = (double)0.8660254037844386467637231707529362L;

static void dct_radb3(size_t ido, size_t l1, const double *restrict cc, double *restrict ch,
                      const double *restrict wa) {
    const size_t cdim = 3;
    for (size_t k = 0; k < l1; k++) {
        double tr2 = 2 * CC(ido - 1, 1, k);
        double cr2 = CC(0, 0, k) + dct_taur * tr2;
        CH(0, k, 0) = CC(0, 0, k) + tr2;
        double ci3 = 2 * dct_taui * CC(0, 2, k);
        DCT_PM(CH(0, k, 2), CH(0, k, 1), cr2, ci3);
    }
    if (ido == 1) return;
    for (size_t k = 0; k < l1; k++) {
        for (size_t i = 2, ic = ido - 2; i < ido; i += 2, ic -= 2) {
            double tr2 = CC(i - 1, 2, k) + CC(ic - 1, 1, k);
            double ti2 = CC(i, 2, k) - CC(ic, 1, k);
            double cr2 = CC(i - 1, 0, k) + dct_taur * tr2;
            double ci2 = CC(i, 0, k) + dct_taur * ti2;
            CH(i - 1, k, 0) = CC(i - 1, 0, k) + tr2;
            CH(i, k, 0) = CC(i, 0, k) + ti2;
            double cr3 = dct_taui * (CC(i - 1, 2, k) - CC(ic - 1, 1, k));
            double ci3 = dct_taui * (CC(i, 2, k) + CC(ic, 1, k));
            double di2, di3, dr2, dr3;
            DCT_PM(dr3, dr2, cr2, ci3);
            DCT_PM(di2, di3, ci2, cr3);
            DCT_MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), di2, dr2);
            DCT_MULPM(CH(i, k, 2), CH(i - 1, k, 2), WA(1, i - 2), WA(1, i - 1), di3, dr3);
        }
    }
}

static const double dct_sqrt2 = (double)1.414213562373095048801688724209698L;

static void dct_radb4(size_t ido, size_t l1, const double *restrict cc, double *restrict ch,
                      const double *restrict wa) {
    const size_t cdim = 4;
    for (size_t k = 0; k < l1; k++) {
        double tr1, tr2;
        DCT_PM(tr2, tr1, CC(0, 0, k), CC(ido - 1, 3, k));
        double tr3 = 2 * CC(ido - 1, 1, k);
        double tr4 = 2 * CC(0, 2, k);
        DCT_PM(CH(0, k, 0), CH(0, k, 2), tr2, tr3);
        DCT_PM(CH(0, k, 3), CH(0, k, 1), tr1, tr4);
    }
    if ((ido & 1) == 0) {
        for (size_t k = 0; k < l1; k++) {
            double tr1, tr2, ti1, ti2;
            DCT_PM(ti1, ti2, CC(0, 3, k), CC(0, 1, k));
            DCT_PM(tr2, tr1, CC(ido - 1, 0, k), CC(ido - 1, 2, k));
            CH(ido - 1, k, 0) = tr2 + tr2;
            CH(ido - 1, k, 1) = dct_sqrt2 * (tr1 - ti1);
            CH(ido - 1, k, 2) = ti2 + ti2;
            CH(ido - 1, k, 3) = -dct_sqrt2 * (tr1 + ti1);
        }
    }
    if (ido <= 2) return;
    for (size_t k = 0; k < l1; ++k) {
        for (size_t i = 2; i < ido; i += 2) {
            double ci2, ci3, ci4, cr2, cr3, cr4, ti1, ti2, ti3, ti4, tr1, tr2, tr3, tr4;
            size_t ic = ido - i;
            DCT_PM(tr2, tr1, CC(i - 1, 0, k), CC(ic - 1, 3, k));
            DCT_PM(ti1, ti2, CC(i, 0, k), CC(ic, 3, k));
            DCT_PM(tr4, ti3, CC(i, 2, k), CC(ic, 1, k));
            DCT_PM(tr3, ti4, CC(i - 1, 2, k), CC(ic - 1, 1, k));
            DCT_PM(CH(i - 1, k, 0), cr3, tr2, tr3);
            DCT_PM(CH(i, k, 0), ci3, ti2, ti3);
            DCT_PM(cr4, cr2, tr1, tr4);
            DCT_PM(ci2, ci4, ti1, ti4);
            DCT_MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), ci2, cr2);
            DCT_MULPM(CH(i, k, 2), CH(i - 1, k, 2), WA(1, i - 2), WA(1, i - 1), ci3, cr3);
            DCT_MULPM(CH(i, k, 3), CH(i - 1, k, 3), WA(2, i - 2), WA(2, i - 1), ci4, cr4);
        }
    }
}

static const double dct_tr11 = (double)0.3090169943749474241022934171828191L;
static const double dct_ti11 = (double)0.9510565162951535721164393333793821L;
static const double dct_tr12 = (double)-0.8090169943749474241022934171828191L;
static const double dct_ti12 = (double)0.5877852522924731291687059546390728L;

static void dct_radb5_first(size_t ido, size_t l1, const double *restrict cc, double *restrict ch) {
    const size_t cdim = 5;
    for (size_t k = 0; k < l1; k++) {
        double ti5 = CC(0, 2, k) + CC(0, 2, k);
        double ti4 = CC(0, 4, k) + CC(0, 4, k);
        double tr2 = CC(ido - 1, 1, k) + CC(ido - 1, 1, k);
        double tr3 = CC(ido - 1, 3, k) + CC(ido - 1, 3, k);
        CH(0, k, 0) = CC(0, 0, k) + tr2 + tr3;
        double cr2 = CC(0, 0, k) + dct_tr11 * tr2 + dct_tr12 * tr3;
        double cr3 = CC(0, 0, k) + dct_tr12 * tr2 + dct_tr11 * tr3;
        double ci4, ci5;
        DCT_MULPM(ci5, ci4, ti5, ti4, dct_ti11, dct_ti12);
        DCT_PM(CH(0, k, 4), CH(0, k, 1), cr2, ci5);
        DCT_PM(CH(0, k, 3), CH(0, k, 2), cr3, ci4);
    }
}

static void dct_radb5(size_t ido, size_t l1, const double *restrict cc, double *restrict ch,
                      const double *restrict wa) {
    const size_t cdim = 5;
    dct_radb5_first(ido, l1, cc, ch);
    if (ido == 1) return;
    for (size_t k = 0; k < l1; ++k) {
        for (size_t i = 2, ic = ido - 2; i < ido; i += 2, ic -= 2) {
            double tr2, tr3, tr4, tr5, ti2, ti3, ti4, ti5;
            DCT_PM(tr2, tr5, CC(i - 1, 2, k), CC(ic - 1, 1, k));
            DCT_PM(ti5, ti2, CC(i, 2, k), CC(ic, 1, k));
            DCT_PM(tr3, tr4, CC(i - 1, 4, k), CC(ic - 1, 3, k));
            DCT_PM(ti4, ti3, CC(i, 4, k), CC(ic, 3, k));
            CH(i - 1, k, 0) = CC(i - 1, 0, k) + tr2 + tr3;
            CH(i, k, 0) = CC(i, 0, k) + ti2 + ti3;
            double cr2 = CC(i - 1, 0, k) + dct_tr11 * tr2 + dct_tr12 * tr3;
            double ci2 = CC(i, 0, k) + dct_tr11 * ti2 + dct_tr12 * ti3;
            double cr3 = CC(i - 1, 0, k) + dct_tr12 * tr2 + dct_tr11 * tr3;
            double ci3 = CC(i, 0, k) + dct_tr12 * ti2 + dct_tr11 * ti3;
            double ci4, ci5, cr5, cr4;
            DCT_MULPM(cr5, cr4, tr5, tr4, dct_ti11, dct_ti12);
            DCT_MULPM(ci5, ci4, ti5, ti4, dct_ti11, dct_ti12);
            double dr2, dr3, dr4, dr5, di2, di3, di4, di5;
            DCT_PM(dr4, dr3, cr3, ci4);
            DCT_PM(di3, di4, ci3, cr4);
            DCT_PM(dr5, dr2, cr2, ci5);
            DCT_PM(di2, di5, ci2, cr5);
            DCT_MULPM(CH(i, k, 1), CH(i - 1, k, 1), WA(0, i - 2), WA(0, i - 1), di2, dr2);
            DCT_MULPM(CH(i, k, 2), CH(i - 1, k, 2), WA(1, i - 2), WA(1, i - 1), di3, dr3);
            DCT_MULPM(CH(i, k, 3), CH(i - 1, k, 3), WA(2, i - 2), WA(2, i - 1), di4, dr4);
            DCT_MULPM(CH(i, k, 4), CH(i - 1, k, 4), WA(3, i - 2), WA(3, i - 1), di5, dr5);
        }
    }
}

#undef CC
#undef CH
#undef WA

/* rfftp::exec(c, 1.0, false): the backward real FFT, in place. */
static void dct_rfft_backward(const ih_dct_plan *plan, double *c) {
    size_t n = (size_t)plan->n;
    if (n == 1) return;
    double scratch[IH_DCT_MAX_LEN];
    double *p1 = c, *p2 = scratch;
    size_t l1 = 1;
    for (int k = 0; k < plan->nfact; k++) {
        size_t ip = (size_t)plan->fact[k], ido = n / (ip * l1);
        const double *tw = &plan->rfft_tw[plan->tw_offset[k]];
        if (ip == 4)
            dct_radb4(ido, l1, p1, p2, tw);
        else if (ip == 2)
            dct_radb2(ido, l1, p1, p2, tw);
        else if (ip == 3)
            dct_radb3(ido, l1, p1, p2, tw);
        else
            dct_radb5(ido, l1, p1, p2, tw);
        double *t = p1;
        p1 = p2;
        p2 = t;
        l1 *= ip;
    }
    if (p1 != c) memcpy(c, p1, n * sizeof *c);
}

void ih_dct_ii(const ih_dct_plan *plan, double *c) {
    size_t n = (size_t)plan->n, ns2 = (n + 1) / 2;
    const double *tw = plan->twiddle;
    c[0] *= 2;
    if ((n & 1) == 0) c[n - 1] *= 2;
    for (size_t k = 1; k + 1 < n; k += 2) { /* MPINPLACE(c[k+1], c[k]) */
        double t = c[k + 1];
        c[k + 1] -= c[k];
        c[k] = t + c[k];
    }
    dct_rfft_backward(plan, c);
    for (size_t k = 1, kc = n - 1; k < ns2; ++k, --kc) {
        double t1 = tw[k - 1] * c[kc] + tw[kc - 1] * c[k];
        double t2 = tw[k - 1] * c[k] - tw[kc - 1] * c[kc];
        c[k] = 0.5 * (t1 + t2);
        c[kc] = 0.5 * (t1 - t2);
    }
    if ((n & 1) == 0) c[ns2] *= tw[ns2 - 1];
}

void ih_dct_ii_2d(const ih_dct_plan *plan, double *a) {
    int n = plan->n;
    double line[IH_DCT_MAX_LEN];
    for (int x = 0; x < n; x++) { /* axis 0: each column */
        for (int y = 0; y < n; y++)
            line[y] = a[y * n + x];
        ih_dct_ii(plan, line);
        for (int y = 0; y < n; y++)
            a[y * n + x] = line[y];
    }
    for (int y = 0; y < n; y++) /* axis 1: each row */
        ih_dct_ii(plan, &a[y * n]);
}
