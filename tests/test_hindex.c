/* test_hindex.c -- the Hamming index (search/hindex.h) answers exactly what
 * a scan of every hash answers: the same hashes, the same distances, ties
 * in the same order, for hundreds of random queries at every radius and
 * for top-k, on clustered hashes (groups of near-duplicates, as reposts
 * make them) and uniform ones, of 144 bits and of odd lengths, with hashes
 * added after the build (the chained part), and removed; and at 1.8
 * million hashes, where the index cuts them into fewer, wider substrings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hindex.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_hash(unsigned char *h, size_t n) {
    for (size_t i = 0; i < n; i++)
        h[i] = (unsigned char)next_rand();
}

/* H with FLIPS random bits flipped (maybe the same twice). */
static void flip(unsigned char *h, size_t n, int flips) {
    for (int i = 0; i < flips; i++) {
        unsigned b = (unsigned)(next_rand() % (8 * n));
        h[b / 8] ^= (unsigned char)(1u << (b % 8));
    }
}

/* A tie order unlike the references' own: by the reference's low bits first. */
static int odd_order(uint32_t a, uint32_t b, void *arg) {
    (void)arg;
    uint32_t ka = (a * 2654435761u), kb = (b * 2654435761u);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
}

static unsigned walked, scanned; /* queries answered by each path */

static void same_answer(const hindex *x, const unsigned char *q, int radius, size_t k) {
    hindex_hit *a = NULL, *b = NULL;
    hindex_trace tr;
    size_t na = hindex_search(x, q, radius, k, &a, &tr);
    size_t nb = hindex_scan(x, q, radius, k, &b);
    if (tr.scanned) scanned++;
    else walked++;
    if (na != nb) fail_msg("radius %d k %zu: %zu hits, the scan %zu", radius, k, na, nb);
    for (size_t i = 0; i < na; i++) {
        if (a[i].ref != b[i].ref || a[i].distance != b[i].distance)
            fail_msg("radius %d k %zu: hit %zu is %u at %d, the scan's %u at %d", radius, k, i, a[i].ref,
                     a[i].distance, b[i].ref, b[i].distance);
        if (i && a[i].distance < a[i - 1].distance) fail_msg("not nearest first");
    }
    free(a);
    free(b);
}

/* An index of N hashes of NB bytes: groups of near-duplicates around
 * random centres, group sizes 1..40, spread 0..12 bits. */
static hindex *clustered(size_t n, size_t nb, hindex_order order, unsigned char **centres, size_t *ncentres) {
    hindex *x = hindex_new(nb, order, NULL);
    size_t cap = n, nc = 0;
    unsigned char *cs = malloc(cap * nb);
    unsigned char h[HINDEX_MAX_BYTES];
    for (size_t i = 0; i < n;) {
        random_hash(cs + nc * nb, nb);
        size_t size = 1 + next_rand() % 40;
        int spread = (int)(next_rand() % 13);
        for (size_t j = 0; j < size && i < n; j++, i++) {
            memcpy(h, cs + nc * nb, nb);
            flip(h, nb, (int)(next_rand() % (unsigned)(spread + 1)));
            hindex_add(x, h, (uint32_t)i);
        }
        nc++;
    }
    *centres = cs;
    *ncentres = nc;
    return x;
}

static void check_queries(const hindex *x, const unsigned char *centres, size_t nc, size_t nb, int queries) {
    static const size_t ks[] = {1, 5, 10, 50, 0};
    unsigned char q[HINDEX_MAX_BYTES];
    for (int t = 0; t < queries; t++) {
        if (t % 4 == 3) {
            random_hash(q, nb); /* far from everything */
        } else {
            memcpy(q, centres + (next_rand() % nc) * nb, nb);
            flip(q, nb, (int)(next_rand() % 16));
        }
        int bits = (int)(8 * nb);
        int radius = (int)(next_rand() % (unsigned)(bits / 3 + 1));
        same_answer(x, q, radius, 0);
        same_answer(x, q, bits, ks[next_rand() % 4]);
        same_answer(x, q, radius, ks[next_rand() % 5]);
    }
}

static void test_exact_144(void **state) {
    (void)state;
    unsigned char *cs;
    size_t nc;
    hindex *x = clustered(60000, 18, NULL, &cs, &nc);
    hindex_build(x);
    walked = scanned = 0;
    check_queries(x, cs, nc, 18, 300);
    assert_int_equal(hindex_count(x), 60000);
    /* both paths were taken: the walk for near queries, the scan for far ones */
    assert_true(walked > 300);
    assert_true(scanned > 50);
    hindex_free(x);
    free(cs);
}

static void test_exact_ties_and_delta(void **state) {
    (void)state;
    unsigned char *cs;
    size_t nc;
    /* Not built: every hash sits in the chained part; then half built. */
    hindex *x = clustered(20000, 18, odd_order, &cs, &nc);
    check_queries(x, cs, nc, 18, 100);
    hindex_build(x);
    unsigned char h[18];
    for (uint32_t i = 0; i < 5000; i++) {
        memcpy(h, cs + (next_rand() % nc) * 18, 18);
        flip(h, 18, (int)(next_rand() % 6));
        hindex_add(x, h, 100000 + i);
    }
    check_queries(x, cs, nc, 18, 100);
    /* Many exact copies: ties at distance 0 ordered by the caller. */
    for (uint32_t i = 0; i < 300; i++)
        hindex_add(x, cs, 200000 + i);
    same_answer(x, cs, 0, 10);
    same_answer(x, cs, 5, 0);
    hindex_free(x);
    free(cs);
}

static void test_exact_other_lengths(void **state) {
    (void)state;
    static const size_t lengths[] = {1, 3, 7, 8, 13, 32};
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        unsigned char *cs;
        size_t nc;
        hindex *x = clustered(8000, lengths[l], NULL, &cs, &nc);
        if (l % 2) hindex_build(x);
        check_queries(x, cs, nc, lengths[l], 60);
        hindex_free(x);
        free(cs);
    }
}

static void test_remove(void **state) {
    (void)state;
    unsigned char *cs;
    size_t nc;
    hindex *x = clustered(10000, 18, NULL, &cs, &nc);
    hindex_build(x);
    for (uint32_t r = 0; r < 10000; r += 3)
        assert_int_equal(hindex_remove(x, r), 1);
    assert_int_equal(hindex_count(x), 10000 - 3334);
    check_queries(x, cs, nc, 18, 60);
    hindex_build(x); /* the removed ones leave the tables */
    check_queries(x, cs, nc, 18, 60);
    hindex_hit *h = NULL;
    size_t n = hindex_scan(x, cs, 144, 0, &h);
    for (size_t i = 0; i < n; i++)
        assert_true(h[i].ref % 3 != 0);
    free(h);
    hindex_free(x);
    free(cs);
}

/* A large index takes fewer, wider substrings (from 1.7 million 144-bit
 * hashes on, hindex.c's layout_for): the same exactness there, with hashes
 * added after the build in the chained tables. */
static void test_exact_wide_layout(void **state) {
    (void)state;
    unsigned char *cs;
    size_t nc;
    hindex *x = clustered(1800000, 18, odd_order, &cs, &nc);
    hindex_build(x);
    unsigned char h[18];
    for (uint32_t i = 0; i < 20000; i++) {
        memcpy(h, cs + (next_rand() % nc) * 18, 18);
        flip(h, 18, (int)(next_rand() % 8));
        hindex_add(x, h, 3000000 + i);
    }
    walked = scanned = 0;
    check_queries(x, cs, nc, 18, 40);
    assert_true(walked > 40);
    /* 58 bytes a hash with 16-bit substrings; the wide tables cost at most 10 more */
    assert_true(hindex_memory(x) < (size_t)1820000 * 70);
    hindex_free(x);
    free(cs);
}

static void test_edges(void **state) {
    (void)state;
    assert_null(hindex_new(0, NULL, NULL));
    assert_null(hindex_new(HINDEX_MAX_BYTES + 1, NULL, NULL));
    hindex *x = hindex_new(18, NULL, NULL);
    unsigned char q[18] = {0};
    hindex_hit *h = (hindex_hit *)1;
    assert_int_equal(hindex_search(x, q, 10, 10, &h, NULL), 0); /* empty */
    assert_null(h);
    hindex_add(x, q, 7);
    assert_int_equal(hindex_search(x, q, -1, 10, &h, NULL), 0); /* a negative radius finds nothing */
    assert_int_equal(hindex_search(x, q, 100000, 10, &h, NULL), 1); /* a radius past the bits is all bits */
    assert_int_equal(h[0].ref, 7);
    free(h);
    unsigned char a[18], b[18];
    memset(a, 0xff, 18);
    memset(b, 0x00, 18);
    assert_int_equal(hindex_distance(a, b, 18), 144);
    assert_true(hindex_memory(x) > 0);
    hindex_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_144),       cmocka_unit_test(test_exact_ties_and_delta),
        cmocka_unit_test(test_exact_other_lengths), cmocka_unit_test(test_remove),
        cmocka_unit_test(test_exact_wide_layout), cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
