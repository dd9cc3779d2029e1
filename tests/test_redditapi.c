/* test_redditapi.c -- reddit listings into submissions and items
 * (redditapi.h).
 *
 * The two recorded listings of tests/fixtures/real/reddit (SOURCES.md) go
 * through the parser byte for byte and are checked against a separate walk
 * of the same JSON with json-c and against facts pinned by hand from the
 * files (ids, cursors, a gallery's pictures in gallery_data order).  Then
 * pictures, escaped URLs and selftext links case by case, and broken
 * bodies: HTML, cut short, wrong types, too complex, 10,000 children.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "redditapi.h"
#include "xalloc.h"

static char *read_fixture(const char *rel, size_t *len) {
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    assert_non_null(src);
    char *path = xasprintf("%s/tests/fixtures/real/reddit/%s", src, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    free(path);
    *len = (size_t)n;
    return buf;
}

static const char *str(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* Parse FILE, compare with a plain walk, make every submission an item. */
static void check_fixture(const char *file, const char *first_id, const char *after, size_t want_with_files,
                          size_t want_galleries) {
    size_t len;
    char *body = read_fixture(file, &len);
    char why[256] = "";
    redditapi_listing l;
    assert_int_equal(redditapi_listing_parse(body, len, 0, &l, why, sizeof why), 0);
    json_object *plain = json_tokener_parse(body);
    json_object *data, *children;
    assert_true(json_object_object_get_ex(plain, "data", &data));
    assert_true(json_object_object_get_ex(data, "children", &children));
    size_t n = json_object_array_length(children);
    assert_int_equal(l.nchildren, n);
    assert_int_equal(l.nsubs, n);
    assert_int_equal(l.nrefused, 0);
    assert_string_equal(l.after, after);
    assert_string_equal(l.before, "");
    assert_string_equal(redditapi_sub_id(l.subs[0]), first_id);
    size_t with_files = 0, galleries = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *pd;
        json_object_object_get_ex(json_object_array_get_idx(children, i), "data", &pd);
        assert_string_equal(redditapi_sub_id(l.subs[i]), str(pd, "id"));
        size_t keys = (size_t)json_object_object_length(pd);
        redditapi_item(l.subs[i], "reddit", "all", NULL, 1790000000);
        json_object *it = l.subs[i];
        assert_int_equal((size_t)json_object_object_length(it), keys + 8);
        assert_string_equal(str(it, "_id"), str(pd, "id"));
        assert_string_equal(str(it, "_type"), "submission");
        assert_string_equal(str(it, "_board"), "all");
        assert_string_equal(str(it, "_chan"), "reddit");
        assert_string_equal(str(it, "title"), str(pd, "title"));
        json_object *urls, *files;
        assert_true(json_object_object_get_ex(it, "_urls", &urls));
        assert_true(json_object_object_get_ex(it, "_files", &files));
        size_t nf = (size_t)json_object_get_int64(files);
        assert_true(nf <= json_object_array_length(urls));
        for (size_t k = 0; k < json_object_array_length(urls); k++) {
            const char *u = json_object_get_string(json_object_array_get_idx(urls, k));
            assert_true(strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
            assert_null(strstr(u, "&amp;"));
        }
        if (nf) with_files++;
        if (json_object_object_get_ex(pd, "gallery_data", NULL)) {
            galleries++;
            json_object *gd, *items;
            json_object_object_get_ex(pd, "gallery_data", &gd);
            json_object_object_get_ex(gd, "items", &items);
            assert_int_equal(nf, json_object_array_length(items));
            for (size_t k = 0; k < nf; k++) {
                const char *mid = str(json_object_array_get_idx(items, k), "media_id");
                const char *u = json_object_get_string(json_object_array_get_idx(urls, k));
                assert_non_null(strstr(u, mid));
                assert_true(strncmp(u, "https://i.redd.it/", 18) == 0);
            }
        }
    }
    assert_int_equal(with_files, want_with_files);
    assert_int_equal(galleries, want_galleries);
    json_object_put(plain);
    redditapi_listing_release(&l);
    free(body);
}

static void test_fixture_all_2016(void **state) {
    (void)state;
    check_fixture("r-all-new-limit100-2016.json", "5jo13y", "t3_5jo10c", 50, 0);
}

static void test_fixture_popular_2026(void **state) {
    (void)state;
    check_fixture("r-popular-hot-galleries.json", "1skjxta", "t3_1skbyfv", 94, 14);
}

/* Facts pinned by hand: a gallery, a direct i.redd.it file, a preview. */
static void test_fixture_pinned(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture("r-popular-hot-galleries.json", &len);
    char why[256];
    redditapi_listing l;
    assert_int_equal(redditapi_listing_parse(body, len, 0, &l, why, sizeof why), 0);
    int seen = 0;
    for (size_t i = 0; i < l.nsubs; i++) {
        const char *id = redditapi_sub_id(l.subs[i]);
        size_t nf;
        json_object *urls = redditapi_sub_urls(l.subs[i], NULL, &nf);
        if (strcmp(id, "1skh6dk") == 0) {
            assert_int_equal(nf, 2);
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 0)),
                                "https://i.redd.it/l4qy0l5ppzug1.jpg");
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 1)),
                                "https://i.redd.it/ygxbkh7ppzug1.jpg");
            seen++;
        } else if (strcmp(id, "1skii2f") == 0) {
            assert_int_equal(nf, 1);
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 0)),
                                "https://i.redd.it/rrinwcmrxzug1.jpeg");
            seen++;
        } else if (strcmp(id, "1skjxta") == 0) { /* streamable: the preview's picture */
            assert_int_equal(nf, 1);
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 0)),
                                "https://external-preview.redd.it/qZIuPQ3BmxRI11HulZ-Ikg0_iC-LBfQi8tIVY4CVFLk.jpeg"
                                "?auto=webp&s=9f6bc785e518bd79d0d0a1ebd0fe4daba3064cda");
            seen++;
        }
        json_object_put(urls);
    }
    assert_int_equal(seen, 3);
    redditapi_listing_release(&l);
    free(body);
}

/* Every prefix of a fixture is refused, none crashes. */
static void test_fixture_cut(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture("r-all-new-limit100-2016.json", &len);
    for (size_t cut = 0; cut < len; cut += 997) {
        char why[256];
        redditapi_listing l;
        assert_int_equal(redditapi_listing_parse(body, cut, 0, &l, why, sizeof why), -1);
        assert_true(why[0] != '\0');
    }
    /* a bound below one submission's tree: every child refused, by name */
    redditapi_listing l;
    char why[256];
    assert_int_equal(redditapi_listing_parse(body, len, 5000, &l, why, sizeof why), 0);
    assert_int_equal(l.nsubs, 0);
    assert_int_equal(l.nrefused, 100);
    assert_non_null(strstr(l.first_refused, "children[0] is too complex"));
    redditapi_listing_release(&l);
    free(body);
}

typedef struct url_case {
    const char *sub;        /* submission JSON */
    size_t files;
    const char *urls[5];
    const char *file_url; /* NULL: i.redd.it */
} url_case;

static const url_case url_cases[] = {
    {"{\"id\":\"a\",\"url\":\"https://i.redd.it/x1.png\"}", 1, {"https://i.redd.it/x1.png"}, NULL},
    {"{\"id\":\"a\",\"url\":\"https://i.imgur.com/abc.jpg\"}", 1, {"https://i.imgur.com/abc.jpg"}, NULL},
    {"{\"id\":\"a\",\"url\":\"https://imgur.com/abc\"}", 0, {NULL}, NULL},
    {"{\"id\":\"a\",\"url\":\"https://i.reddituploads.com/k?fit=max&amp;h=1\"}", 1,
     {"https://i.reddituploads.com/k?fit=max&h=1"}, NULL},
    {"{\"id\":\"a\",\"url\":\"https://example.org/p\",\"preview\":{\"images\":[{\"source\":{\"url\":"
     "\"https://preview.redd.it/p.jpg?a=1&amp;b=2\"}}]}}",
     1, {"https://preview.redd.it/p.jpg?a=1&b=2"}, NULL},
    {"{\"id\":\"a\",\"url\":42,\"preview\":{\"images\":\"no\"}}", 0, {NULL}, NULL},
    {"{\"id\":\"a\",\"gallery_data\":{\"items\":[{\"media_id\":\"m2\"},{\"media_id\":\"m1\"},{\"media_id\":\"gone\"}]},"
     "\"media_metadata\":{\"m1\":{\"m\":\"image/png\"},\"m2\":{\"e\":\"AnimatedImage\",\"s\":{\"gif\":"
     "\"https://i.redd.it/m2.gif?x=1&amp;y=2\"}}}}",
     2, {"https://i.redd.it/m2.gif?x=1&y=2", "https://i.redd.it/m1.png"}, NULL},
    {"{\"id\":\"a\",\"is_self\":true,\"selftext\":\"see [this](https://a.example/x_(y)) and "
     "https://b.example/q?a=1&amp;b=2. Or <http://c.example/>, https://a.example/x_(y) again; http://u:p@d.example/z\"}",
     0, {"https://a.example/x_(y)", "https://b.example/q?a=1&b=2", "http://c.example/", "http://d.example/z"}, NULL},
    {"{\"id\":\"a\",\"url\":\"https://i.redd.it/x1.png\",\"selftext\":\"https://i.redd.it/x1.png ftp://no\"}", 1,
     {"https://i.redd.it/x1.png"}, NULL},
    {"{\"id\":\"a\",\"url\":\"http://127.0.0.1:9/reddit/s/i/x1.png\",\"gallery_data\":{\"items\":[]},"
     "\"media_metadata\":{}}",
     1, {"http://127.0.0.1:9/reddit/s/i/x1.png"}, "http://127.0.0.1:9/reddit/s/i/{tim}{ext}"},
    {"{\"id\":\"a\",\"gallery_data\":{\"items\":[{\"media_id\":\"m1\"}]},\"media_metadata\":{\"m1\":{\"m\":"
     "\"image/png\"}}}",
     1, {"http://127.0.0.1:9/reddit/s/i/m1.png"}, "http://127.0.0.1:9/reddit/s/i/{tim}{ext}"},
};

static void test_urls(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof url_cases / sizeof url_cases[0]; c++) {
        json_object *sub = json_tokener_parse(url_cases[c].sub);
        assert_non_null(sub);
        size_t nf = 99;
        json_object *urls = redditapi_sub_urls(sub, url_cases[c].file_url, &nf);
        size_t want = 0;
        while (want < 5 && url_cases[c].urls[want])
            want++;
        if (nf != url_cases[c].files || json_object_array_length(urls) != want)
            fail_msg("case %zu: %zu files, urls %s", c, nf, json_object_to_json_string(urls));
        for (size_t k = 0; k < want; k++)
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, k)), url_cases[c].urls[k]);
        json_object_put(urls);
        json_object_put(sub);
    }
}

static void test_unescape(void **state) {
    (void)state;
    const char *in = "a&amp;b&lt;c&gt;&quot;&#39;&#x27;&amp;amp;&nbsp;&";
    char *out = redditapi_unescape(in, strlen(in));
    assert_string_equal(out, "a&b<c>\"''&amp;&nbsp;&");
    free(out);
}

typedef struct bad_case {
    const char *body;
    const char *why; /* part of the reason */
} bad_case;

static const bad_case bad_cases[] = {
    {"", "empty"},
    {"<html><body>Too Many Requests</body></html>", "HTML"},
    {"[1,2]", "not an object"},
    {"{\"kind\":\"Listing\"}", "no data"},
    {"{\"kind\":\"t3\",\"data\":{}}", "not a Listing"},
    {"{\"kind\":\"Listing\",\"data\":{\"children\":{}}}", "not an array"},
    {"{\"kind\":\"Listing\",\"data\":{}}", "missing"},
    {"{\"kind\":\"Listing\",\"data\":{\"children\":[]}} x", "after the value"},
    {"{\"kind\":\"Listing\",\"data\":{\"children\":[", "truncated"},
};

static void test_bad_bodies(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
        redditapi_listing l;
        char why[256] = "";
        assert_int_equal(redditapi_listing_parse(bad_cases[c].body, strlen(bad_cases[c].body), 0, &l, why, sizeof why),
                         -1);
        if (!strstr(why, bad_cases[c].why)) fail_msg("case %zu: \"%s\" lacks \"%s\"", c, why, bad_cases[c].why);
        redditapi_listing_release(&l);
    }
}

/* Children that are no submission are counted and passed over. */
static void test_bad_children(void **state) {
    (void)state;
    const char *body = "{\"kind\":\"Listing\",\"data\":{\"after\":7,\"before\":\"t3_b\",\"children\":["
                       "{\"kind\":\"t1\",\"data\":{\"id\":\"c\"}},{\"kind\":\"t3\",\"data\":[]},"
                       "{\"kind\":\"t3\",\"data\":{\"id\":12}},{\"kind\":\"t3\",\"data\":{\"id\":\"A/B\"}},"
                       "5,{\"kind\":\"t3\",\"data\":{\"id\":\"ok1\",\"url\":[1]}}]}}";
    redditapi_listing l;
    char why[256];
    assert_int_equal(redditapi_listing_parse(body, strlen(body), 0, &l, why, sizeof why), 0);
    assert_int_equal(l.nchildren, 6);
    assert_int_equal(l.nsubs, 1);
    assert_int_equal(l.nrefused, 5);
    assert_string_equal(l.first_refused, "children[0] is not a t3 (submission)");
    assert_string_equal(l.after, "");
    assert_string_equal(l.before, "t3_b");
    redditapi_item(l.subs[0], "r", "b", NULL, 1);
    assert_string_equal(str(l.subs[0], "_id"), "ok1");
    redditapi_listing_release(&l);
}

static int stop_at_three(void *arg, json_object *sub) {
    (void)sub;
    return ++*(int *)arg == 3 ? 7 : 0;
}

/* A page of 10,000 children parses within a small bound (a child at a
 * time); a bound below one child refuses each, and the walk stops when the
 * callback says so. */
static void test_huge_page(void **state) {
    (void)state;
    size_t cap = 64 + 10000 * 64, at = 0;
    char *body = xmalloc(cap);
    at += (size_t)snprintf(body + at, cap - at, "{\"kind\":\"Listing\",\"data\":{\"children\":[");
    for (int i = 0; i < 10000; i++)
        at += (size_t)snprintf(body + at, cap - at, "%s{\"kind\":\"t3\",\"data\":{\"id\":\"i%d\"}}", i ? "," : "", i);
    at += (size_t)snprintf(body + at, cap - at, "]}}");
    redditapi_listing l;
    char why[256];
    assert_int_equal(redditapi_listing_parse(body, at, 64u << 20, &l, why, sizeof why), 0);
    assert_int_equal(l.nsubs, 10000);
    redditapi_listing_release(&l);
    assert_int_equal(redditapi_listing_parse(body, at, 64u << 10, &l, why, sizeof why), 0);
    assert_int_equal(l.nsubs, 10000);
    redditapi_listing_release(&l);
    assert_int_equal(redditapi_listing_parse(body, at, 100, &l, why, sizeof why), 0);
    assert_int_equal(l.nsubs, 0);
    assert_int_equal(l.nrefused, 10000);
    redditapi_listing_release(&l);
    int seen = 0;
    assert_int_equal(redditapi_listing_each(body, at, 0, &l, stop_at_three, &seen, why, sizeof why), 7);
    assert_int_equal(seen, 3);
    free(body);
}

static void test_ratelimit(void **state) {
    (void)state;
    assert_int_equal(redditapi_ratelimit_wait_ms(NULL, "10"), 0);
    assert_int_equal(redditapi_ratelimit_wait_ms("5.0", "10"), 0);
    assert_int_equal(redditapi_ratelimit_wait_ms("0.0", "12"), 12000);
    assert_int_equal(redditapi_ratelimit_wait_ms("0", "x"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_all_2016), cmocka_unit_test(test_fixture_popular_2026),
        cmocka_unit_test(test_fixture_pinned),   cmocka_unit_test(test_fixture_cut),
        cmocka_unit_test(test_urls),             cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_bad_bodies),       cmocka_unit_test(test_bad_children),
        cmocka_unit_test(test_huge_page),        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
