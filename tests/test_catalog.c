/* test_catalog.c -- the catalog of search (search/catalog.h): results in
 * the archive's order (distance, table, id, url number) whatever order the
 * items came in; an item added again counted once, replaced when its
 * pictures changed; sha1 and md5 found exactly; hashes of other sizes kept
 * apart; the index's answer equal to a scan's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog.h"
#include "entry.h"

static catalog_image image(uint32_t n, unsigned char seed, int flips) {
    catalog_image g;
    memset(&g, 0, sizeof g);
    g.n = n;
    for (int i = 0; i < 18; i++) {
        g.phash[i] = (unsigned char)(seed * 31 + i * 7);
        g.dhash[i] = (unsigned char)(seed * 17 + i * 3);
    }
    for (int i = 0; i < flips; i++)
        g.phash[i] ^= 1;
    g.phash_len = g.dhash_len = 18;
    for (int i = 0; i < 20; i++)
        g.sha1[i] = (unsigned char)(seed + i);
    for (int i = 0; i < 16; i++)
        g.md5[i] = (unsigned char)(seed * 3 + i);
    g.has_sha1 = g.has_md5 = true;
    return g;
}

static void test_order_and_counting(void **state) {
    (void)state;
    /* the same five items, added in two orders, give the same answers */
    static const struct {
        const char *table, *id;
        int flips;
    } items[] = {{"chan_b", "x.2", 0}, {"chan_a", "z.9", 0}, {"chan_a", "y.1", 0}, {"chan_b", "x.10", 2},
                 {"chan_a", "y.1b", 1}};
    for (int pass = 0; pass < 2; pass++) {
        catalog *c = catalog_new();
        for (int i = 0; i < 5; i++) {
            int k = pass ? 4 - i : i;
            catalog_image g[2] = {image(3, 1, items[k].flips), image(0, 1, items[k].flips)};
            assert_int_equal(catalog_add(c, items[k].table, items[k].id, g, 2), CATALOG_NEW);
        }
        catalog_build(c);
        catalog_image q = image(0, 1, 0);
        catalog_hit *h = NULL;
        size_t n = catalog_search(c, CATALOG_PHASH, q.phash, 18, 10, 100, &h, NULL);
        assert_int_equal(n, 10);
        static const char *const want[][3] = {
            {"chan_a", "y.1", "0"}, {"chan_a", "y.1", "3"}, {"chan_a", "z.9", "0"}, {"chan_a", "z.9", "3"},
            {"chan_b", "x.2", "0"}, {"chan_b", "x.2", "3"}, {"chan_a", "y.1b", "0"}, {"chan_a", "y.1b", "3"},
            {"chan_b", "x.10", "0"}, {"chan_b", "x.10", "3"}};
        for (size_t i = 0; i < n; i++) {
            char num[8];
            snprintf(num, sizeof num, "%u", h[i].n);
            assert_string_equal(h[i].table, want[i][0]);
            assert_string_equal(h[i].id, want[i][1]);
            assert_string_equal(num, want[i][2]);
        }
        assert_int_equal(h[0].distance, 0);
        assert_int_equal(h[6].distance, 1);
        assert_int_equal(h[8].distance, 2);
        free(h);
        /* again: counted once */
        catalog_image g[2] = {image(3, 1, 0), image(0, 1, 0)};
        assert_int_equal(catalog_add(c, "chan_b", "x.2", g, 2), CATALOG_SAME);
        catalog_stats st;
        catalog_get_stats(c, &st);
        assert_int_equal(st.items, 5);
        assert_int_equal(st.images, 10);
        /* other pictures: replaced, the old ones no longer found */
        catalog_image other = image(0, 99, 0);
        assert_int_equal(catalog_add(c, "chan_b", "x.2", &other, 1), CATALOG_REPLACED);
        catalog_get_stats(c, &st);
        assert_int_equal(st.images, 9);
        n = catalog_search(c, CATALOG_PHASH, q.phash, 18, 0, 100, &h, NULL);
        assert_int_equal(n, 4); /* y.1 and z.9, two images each */
        free(h);
        n = catalog_search(c, CATALOG_SHA1, other.sha1, 20, 0, 10, &h, NULL);
        assert_int_equal(n, 1);
        assert_string_equal(h[0].id, "x.2");
        free(h);
        catalog_free(c);
    }
}

static void test_digests_and_lengths(void **state) {
    (void)state;
    catalog *c = catalog_new();
    catalog_image g = image(0, 5, 0);
    for (int i = 0; i < 50; i++) { /* one picture reposted fifty times */
        char id[16];
        snprintf(id, sizeof id, "r.%02d", i);
        assert_int_equal(catalog_add(c, "chan_r", id, &g, 1), CATALOG_NEW);
    }
    catalog_image small = image(1, 6, 0);
    small.phash_len = 8; /* a 64-bit phash from a hasher with another hash size */
    assert_int_equal(catalog_add(c, "chan_s", "s.1", &small, 1), CATALOG_NEW);
    catalog_hit *h = NULL;
    assert_int_equal(catalog_search(c, CATALOG_MD5, g.md5, 16, 0, 20, &h, NULL), 20);
    assert_string_equal(h[0].id, "r.00");
    assert_string_equal(h[19].id, "r.19");
    free(h);
    assert_int_equal(catalog_search(c, CATALOG_SHA1, small.sha1, 20, 0, 20, &h, NULL), 1);
    free(h);
    unsigned char none[20] = {0};
    assert_int_equal(catalog_search(c, CATALOG_SHA1, none, 20, 0, 20, &h, NULL), 0);
    /* the 64-bit phash is found among 64-bit ones only */
    assert_int_equal(catalog_search(c, CATALOG_PHASH, small.phash, 8, 0, 20, &h, NULL), 1);
    assert_string_equal(h[0].id, "s.1");
    free(h);
    assert_int_equal(catalog_search(c, CATALOG_PHASH, g.phash, 18, 0, 100, &h, NULL), 50);
    free(h);
    size_t lens[4];
    assert_int_equal(catalog_lengths(c, CATALOG_PHASH, lens, 4), 2);
    catalog_free(c);
}

static void test_index_equals_scan(void **state) {
    (void)state;
    catalog *c = catalog_new();
    uint64_t r = 12345;
    for (int i = 0; i < 3000; i++) {
        catalog_image g = image((uint32_t)(i % 3), (unsigned char)(i % 40), 0);
        for (int b = 0; b < 18; b++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            if ((r >> 60) == 0) g.phash[b] ^= (unsigned char)(r >> 52);
        }
        char id[16];
        snprintf(id, sizeof id, "i.%d", i / 3);
        catalog_add(c, i % 2 ? "chan_odd" : "chan_even", id, &g, 1);
    }
    catalog_build(c);
    for (int t = 0; t < 200; t++) {
        catalog_image q = image(0, (unsigned char)(t % 45), t % 7);
        int radius = t % 30;
        size_t k = (size_t)(1 + t % 60);
        catalog_hit *a = NULL, *b = NULL;
        size_t na = catalog_search(c, CATALOG_PHASH, q.phash, 18, radius, k, &a, NULL);
        size_t nb = catalog_scan(c, CATALOG_PHASH, q.phash, 18, radius, k, &b);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
            assert_string_equal(a[i].table, b[i].table);
            assert_string_equal(a[i].id, b[i].id);
            assert_int_equal(a[i].n, b[i].n);
            assert_int_equal(a[i].distance, b[i].distance);
        }
        free(a);
        free(b);
    }
    catalog_free(c);
}

static void test_entry_parsing(void **state) {
    (void)state;
    catalog_image g;
    unsigned bad = 0;
    /* a real `_img` entry's fields (docs/design.md) */
    assert_true(entry_from_fields(2, "jVVSItap1dlSX0zZUmE2ZqZn", "cY+YqWOaGVDaOdyWGWOUKSOS",
                                  "5d6151241dfb5c65cb3f736f22b4cda978cc1cd0", "a46897b44d42d955fac6988f548b1b2f", &g,
                                  &bad));
    assert_int_equal(bad, 0);
    assert_int_equal(g.phash_len, 18);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.sha1[0], 0x5d);
    assert_false(entry_from_fields(0, "not base64!", "jVV", "xyz", "12", &g, &bad));
    assert_int_equal(bad, 4);
    json_object *e = json_tokener_parse("{\"url\": 1.5, \"phash\": \"jVVSItap1dlSX0zZUmE2ZqZn\"}");
    assert_false(entry_from_json(e, &g, &bad));
    json_object_put(e);
    e = json_tokener_parse("{\"url\": 0, \"phash\": \"jVVSItap1dlSX0zZUmE2ZqZn\", \"dhash\": 7}");
    assert_true(entry_from_json(e, &g, &bad));
    assert_int_equal(g.dhash_len, 0);
    json_object_put(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_counting),
        cmocka_unit_test(test_digests_and_lengths),
        cmocka_unit_test(test_index_equals_scan),
        cmocka_unit_test(test_entry_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
