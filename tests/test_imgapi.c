/* test_imgapi.c -- the answers of the random-image APIs into images and
 * items (imgapi.h).
 *
 * The recorded doc samples of tests/fixtures/real/nekos.best and waifu.im
 * (SOURCES.md) go through the parser byte for byte, with facts pinned by
 * hand from the files (urls, ids, metadata kept as sent).  Then the shapes
 * of waifu.pics and catboys (no recording exists: built here after their
 * docs), the waifu.im API of 2025 (items/id), and broken bodies: HTML, cut
 * short, wrong types, missing urls, a url that is not a string, too
 * complex, 10,000 entries.
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

#include "imgapi.h"
#include "sbuf.h"
#include "xalloc.h"

static char *read_fixture(const char *rel, size_t *len) {
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    assert_non_null(src);
    char *path = xasprintf("%s/tests/fixtures/real/%s", src, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
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
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    return json_object_get_string(v);
}

static void parse_ok(imgapi_kind k, const char *body, size_t len, imgapi_page *pg) {
    char why[256] = "";
    int rc = imgapi_parse(k, body, len, 64 << 20, pg, why, sizeof why);
    if (rc != 0) fprintf(stderr, "why: %s\n", why);
    assert_int_equal(rc, 0);
}

static void test_nekos_neko(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture("nekos.best/doc-sample-neko-2023-2025.json", &len);
    imgapi_page pg;
    parse_ok(IMGAPI_NEKOS_BEST, body, len, &pg);
    assert_int_equal(pg.nimages, 1);
    assert_int_equal(pg.nrefused, 0);
    imgapi_image *img = &pg.images[0];
    assert_string_equal(img->id, "bbffa4e8-dc40-11ed-afa1-0242ac120002.png");
    assert_string_equal(img->url, "https://nekos.best/api/v2/neko/bbffa4e8-dc40-11ed-afa1-0242ac120002.png");
    imgapi_item(img, "nekos_best", "neko", 1700000000);
    assert_string_equal(str(img->obj, "artist_name"), "かえで");
    assert_string_equal(str(img->obj, "artist_href"), "https://www.pixiv.net/en/users/47065875");
    assert_string_equal(str(img->obj, "source_url"), "https://www.pixiv.net/en/artworks/88682108");
    assert_string_equal(str(img->obj, "_id"), "bbffa4e8-dc40-11ed-afa1-0242ac120002.png");
    assert_string_equal(str(img->obj, "_chan"), "nekos_best");
    assert_string_equal(str(img->obj, "_board"), "neko");
    assert_string_equal(str(img->obj, "_type"), "image");
    json_object *v;
    assert_true(json_object_object_get_ex(img->obj, "_urls", &v));
    assert_int_equal(json_object_array_length(v), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), img->url);
    assert_true(json_object_object_get_ex(img->obj, "_files", &v));
    assert_int_equal(json_object_get_int(v), 1);
    assert_true(json_object_object_get_ex(img->obj, "_crawled_at", &v));
    assert_int_equal(json_object_get_int64(v), 1700000000);
    imgapi_page_release(&pg);
    free(body);
}

static void test_nekos_amount2(void **state) {
    (void)state;
    const char *files[] = {"nekos.best/doc-sample-hug-amount2-2023-2025.json",
                           "nekos.best/doc-sample-hug-amount2-with-dimensions-placeholder-2026.json",
                           "nekos.best/doc-sample-neko-with-dimensions-placeholder-2026.json"};
    size_t want[] = {2, 2, 1};
    for (size_t f = 0; f < 3; f++) {
        size_t len;
        char *body = read_fixture(files[f], &len);
        imgapi_page pg;
        parse_ok(IMGAPI_NEKOS_BEST, body, len, &pg);
        assert_int_equal(pg.nimages, want[f]);
        assert_int_equal(pg.nentries, want[f]);
        for (size_t i = 0; i < pg.nimages; i++) {
            assert_non_null(strstr(pg.images[i].url, pg.images[i].id));
            assert_true(strlen(pg.images[i].id) > 4);
        }
        if (f == 1) {
            json_object *d, *w;
            assert_string_equal(pg.images[0].id, "xxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.gif");
            assert_string_equal(str(pg.images[0].obj, "anime_name"), "Generic Anime Name");
            assert_true(json_object_object_get_ex(pg.images[0].obj, "dimensions", &d));
            assert_true(json_object_object_get_ex(d, "width", &w));
            assert_int_equal(json_object_get_int(w), 420);
        }
        imgapi_page_release(&pg);
        free(body);
    }
}

static void test_waifu_im_search(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture("waifu.im/doc-sample-search-200.json", &len);
    imgapi_page pg;
    parse_ok(IMGAPI_WAIFU_IM, body, len, &pg);
    assert_int_equal(pg.nimages, 1);
    assert_string_equal(pg.images[0].id, "8108");
    assert_string_equal(pg.images[0].url, "https://cdn.waifu.im/8108.png");
    imgapi_item(&pg.images[0], "waifu_im", "waifu", 1);
    json_object *a, *t;
    assert_true(json_object_object_get_ex(pg.images[0].obj, "artist", &a));
    assert_string_equal(str(a, "name"), "fourthwallzart");
    assert_true(json_object_object_get_ex(pg.images[0].obj, "tags", &t));
    assert_string_equal(str(json_object_array_get_idx(t, 0), "name"), "waifu");
    assert_string_equal(str(pg.images[0].obj, "source"), "https://www.patreon.com/posts/persephone-78224476");
    imgapi_page_release(&pg);
    free(body);
}

static void test_waifu_im_2025(void **state) {
    (void)state;
    const char *body = "{\"items\":[{\"id\":6758,\"url\":\"https://cdn.waifu.im/6758.png\",\"width\":1600,"
                       "\"artists\":[{\"id\":838,\"name\":\"n\"}],\"tags\":[{\"id\":7,\"slug\":\"oppai\"}]},"
                       "{\"id\":\"x\",\"url\":\"https://cdn.waifu.im/1.png\"}],\"pageNumber\":1}";
    imgapi_page pg;
    parse_ok(IMGAPI_WAIFU_IM, body, strlen(body), &pg);
    assert_int_equal(pg.nimages, 1);
    assert_int_equal(pg.nrefused, 1);
    assert_string_equal(pg.images[0].id, "6758");
    assert_non_null(strstr(pg.first_refused, "entry 1"));
    imgapi_page_release(&pg);
}

static void test_waifu_pics_catboys(void **state) {
    (void)state;
    imgapi_page pg;
    const char *one = "{\"url\":\"https://i.waifu.pics/abc_D.jpg\"}";
    parse_ok(IMGAPI_WAIFU_PICS, one, strlen(one), &pg);
    assert_int_equal(pg.nimages, 1);
    assert_string_equal(pg.images[0].id, "abc_D.jpg");
    imgapi_page_release(&pg);
    const char *many = "{\"files\":[\"https://i.waifu.pics/a.png\",\"https://i.waifu.pics/b.gif?x=1\",3]}";
    parse_ok(IMGAPI_WAIFU_PICS, many, strlen(many), &pg);
    assert_int_equal(pg.nimages, 2);
    assert_int_equal(pg.nrefused, 1);
    assert_string_equal(pg.images[1].id, "b.gif");
    assert_string_equal(str(pg.images[1].obj, "url"), "https://i.waifu.pics/b.gif?x=1");
    imgapi_page_release(&pg);
    const char *cb = "{\"url\":\"https://cdn.catboys.com/images/image_93.jpg\",\"artist\":\"unknown\","
                     "\"artist_url\":\"none\",\"source_url\":\"none\",\"error\":\"none\"}";
    parse_ok(IMGAPI_CATBOYS, cb, strlen(cb), &pg);
    assert_int_equal(pg.nimages, 1);
    assert_string_equal(pg.images[0].id, "image_93.jpg");
    imgapi_item(&pg.images[0], "catboys", "img", 5);
    assert_string_equal(str(pg.images[0].obj, "artist"), "unknown");
    assert_string_equal(str(pg.images[0].obj, "_board"), "img");
    imgapi_page_release(&pg);
}

static void test_bad(void **state) {
    (void)state;
    struct {
        imgapi_kind k;
        const char *body;
        const char *why;
    } cases[] = {
        {IMGAPI_NEKOS_BEST, "<html><body>502</body></html>", "HTML"},
        {IMGAPI_NEKOS_BEST, "", "empty"},
        {IMGAPI_NEKOS_BEST, "{\"results\":[{\"url\":\"x\"}", "not JSON"},
        {IMGAPI_NEKOS_BEST, "{\"results\":{}}", "not an array"},
        {IMGAPI_NEKOS_BEST, "{\"message\":\"not found\"}", "no results"},
        {IMGAPI_WAIFU_IM, "{\"detail\":\"rate limited\"}", "no items"},
        {IMGAPI_CATBOYS, "{\"error\":\"x\"}", "no url"},
        {IMGAPI_WAIFU_PICS, "[1,2]", "not an object"},
        {IMGAPI_NEKOS_BEST, "{} x", "text after"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        imgapi_page pg;
        char why[256] = "";
        assert_int_equal(imgapi_parse(cases[i].k, cases[i].body, strlen(cases[i].body), 1 << 20, &pg, why, sizeof why),
                         -1);
        if (!strstr(why, cases[i].why)) fail_msg("case %zu: %s", i, why);
    }
    /* entries passed over, the rest kept */
    const char *b = "{\"results\":[{\"url\":5},{\"nourl\":1},{\"url\":\"ftp://x/y.png\"},{\"url\":\"https://h/\"},"
                    "7,{\"url\":\"https://h/ok.png\"}]}";
    imgapi_page pg;
    parse_ok(IMGAPI_NEKOS_BEST, b, strlen(b), &pg);
    assert_int_equal(pg.nimages, 1);
    assert_int_equal(pg.nrefused, 5);
    assert_int_equal(pg.nentries, 6);
    assert_string_equal(pg.images[0].id, "ok.png");
    assert_non_null(strstr(pg.first_refused, "not a string"));
    imgapi_page_release(&pg);
    /* catboys whose url is not a string: parsed, nothing taken */
    const char *c = "{\"url\":[\"https://x/a.png\"]}";
    parse_ok(IMGAPI_CATBOYS, c, strlen(c), &pg);
    assert_int_equal(pg.nimages, 0);
    assert_int_equal(pg.nrefused, 1);
    imgapi_page_release(&pg);
}

static void test_huge(void **state) {
    (void)state;
    sbuf s = {0};
    sbuf_add(&s, "{\"results\":[", 12);
    for (int i = 0; i < 10000; i++) {
        char e[80];
        snprintf(e, sizeof e, "%s{\"url\":\"https://h/%d.png\"}", i ? "," : "", i);
        sbuf_add(&s, e, strlen(e));
    }
    sbuf_add(&s, "]}", 2);
    imgapi_page pg;
    char why[256];
    assert_int_equal(imgapi_parse(IMGAPI_NEKOS_BEST, s.p, s.len, 64 << 20, &pg, why, sizeof why), -1);
    assert_non_null(strstr(why, "10000 entries"));
    assert_int_equal(imgapi_parse(IMGAPI_NEKOS_BEST, s.p, s.len, 100000, &pg, why, sizeof why), -1);
    assert_non_null(strstr(why, "too complex"));
    free(s.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nekos_neko),       cmocka_unit_test(test_nekos_amount2),
        cmocka_unit_test(test_waifu_im_search),  cmocka_unit_test(test_waifu_im_2025),
        cmocka_unit_test(test_waifu_pics_catboys), cmocka_unit_test(test_bad),
        cmocka_unit_test(test_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
