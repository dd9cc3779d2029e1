/* test_lynxapi.c -- LynxChan catalogs and threads into refs and items
 * (lynxapi.h).
 *
 * The recorded Endchan thread of tests/fixtures/real/lynxchan (SOURCES.md)
 * goes through the parser byte for byte and is checked against a plain
 * json-c walk of the same file (every field kept as sent) and facts pinned
 * by hand (ids, files).  Then catalogs, dates, file paths and links case by
 * case, and broken bodies: HTML, cut short, wrong types, too complex, a
 * catalog of 10,000 threads, a path that is not a string.
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

#include "lynxapi.h"
#include "sbuf.h"
#include "xalloc.h"

#define ENDCHAN "endchan-polru-thread-867082-trimmed.json"

static char *read_fixture(const char *rel, size_t *len) {
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    assert_non_null(src);
    char *path = xasprintf("%s/tests/fixtures/real/lynxchan/%s", src, rel);
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

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key) {
    json_object *v = get(o, key);
    return v ? json_object_get_string(v) : NULL;
}

static const lynxapi_site endchan = {.name = "endchan", .media = "https://endchan.net/", .max_tree = 0};

static json_object *parse(const char *body, char *why, size_t whylen) {
    return lynxapi_parse_thread(&endchan, "b", body, strlen(body), 1700000000, why, whylen);
}

/* Every field of PLAIN is in ITEM with the same text, and ITEM has nothing
 * else but the _ fields (and, for the OP, lacks posts). */
static void same_fields(json_object *plain, json_object *item) {
    json_object_object_foreach(plain, key, val) {
        if (strcmp(key, "posts") == 0) {
            assert_null(get(item, "posts"));
            continue;
        }
        json_object *got = get(item, key);
        assert_true(json_object_object_get_ex(item, key, &got));
        assert_string_equal(json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
                            json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN));
    }
    json_object_object_foreach(item, k2, v2) {
        (void)v2;
        if (k2[0] == '_') continue;
        assert_true(json_object_object_get_ex(plain, k2, NULL));
    }
}

static void test_endchan_thread(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture(ENDCHAN, &len);
    char why[256] = "";
    lynxapi_site site = {.name = "endchan", .media = "https://endchan.net", .max_tree = 64 << 20};
    json_object *items = lynxapi_parse_thread(&site, "polru", body, len, 1780000000, why, sizeof why);
    assert_non_null(items);
    json_object *plain = json_tokener_parse(body);
    assert_non_null(plain);
    json_object *posts = get(plain, "posts");
    assert_int_equal(json_object_array_length(posts), 5);
    assert_int_equal(json_object_array_length(items), 6);

    static const struct {
        const char *id, *type;
        int files;
    } want[] = {
        {"polru.867082", "thread", 2}, {"polru.867094", "post", 0}, {"polru.867169", "post", 0},
        {"polru.867604", "post", 0},   {"polru.867615", "post", 0}, {"polru.867934", "post", 1},
    };
    for (size_t i = 0; i < 6; i++) {
        json_object *item = json_object_array_get_idx(items, i);
        assert_string_equal(str(item, "_id"), want[i].id);
        assert_string_equal(str(item, "_type"), want[i].type);
        assert_string_equal(str(item, "_chan"), "endchan");
        assert_string_equal(str(item, "_board"), "polru");
        assert_int_equal(json_object_get_int(get(item, "_v")), 1);
        assert_int_equal(json_object_get_int64(get(item, "_crawled_at")), 1780000000);
        assert_int_equal(json_object_get_int(get(item, "_files")), want[i].files);
        json_object *urls = get(item, "_urls");
        assert_int_equal(json_object_array_length(urls), (size_t)want[i].files); /* no links in this thread */
        json_object *src = i == 0 ? plain : json_object_array_get_idx(posts, i - 1);
        json_object *files = get(src, "files");
        for (int f = 0; f < want[i].files; f++) {
            char *u = xasprintf("https://endchan.net%s", str(json_object_array_get_idx(files, (size_t)f), "path"));
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, (size_t)f)), u);
            free(u);
        }
        same_fields(src, item);
    }
    /* pinned by hand from the file */
    json_object *op = json_object_array_get_idx(items, 0);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(get(op, "_urls"), 0)),
                        "https://endchan.net/.media/53781bea8476800b093c909d2f0902d2-imagejpeg.jpg");
    assert_string_equal(
        json_object_get_string(json_object_array_get_idx(get(json_object_array_get_idx(items, 5), "_urls"), 0)),
        "https://endchan.net/.media/730220a447b8e63cc7b1a253e3a22cb4-imagejpeg.jpg");
    assert_int_equal(json_object_array_length(get(op, "flagData")), 21);
    assert_string_equal(str(op, "creation"), "2026-06-07T20:44:00.000Z");
    json_object_put(plain);
    json_object_put(items);
    free(body);
}

/* The recorded thread under a limit it does not fit. */
static void test_endchan_too_complex(void **state) {
    (void)state;
    size_t len;
    char *body = read_fixture(ENDCHAN, &len);
    char why[256] = "";
    lynxapi_site site = {.name = "endchan", .media = "https://endchan.net", .max_tree = 10000};
    assert_null(lynxapi_parse_thread(&site, "polru", body, len, 1, why, sizeof why));
    assert_non_null(strstr(why, "too complex"));
    free(body);
}

static void test_dates(void **state) {
    (void)state;
    assert_int_equal(lynxapi_parse_date("1970-01-01T00:00:00.000Z"), 0);
    assert_int_equal(lynxapi_parse_date("2026-06-07T20:44:00.000Z"), 1780865040000LL);
    assert_int_equal(lynxapi_parse_date("2026-06-07T20:44:00Z"), 1780865040000LL);
    assert_int_equal(lynxapi_parse_date("2026-06-07T22:44:00.5+02:00"), 1780865040500LL);
    assert_int_equal(lynxapi_parse_date("2000-02-29T12:00:00.123Z"), 951825600123LL);
    assert_int_equal(lynxapi_parse_date("2026-06-07"), -1);
    assert_int_equal(lynxapi_parse_date("2026-13-07T20:44:00Z"), -1);
    assert_int_equal(lynxapi_parse_date("2026-06-07T20:44:00"), -1);
    assert_int_equal(lynxapi_parse_date("2026-06-07T20:44:00Zx"), -1);
    assert_int_equal(lynxapi_parse_date("yesterday, at noon!!"), -1);
    assert_int_equal(lynxapi_parse_date(NULL), -1);
}

static void test_catalog(void **state) {
    (void)state;
    const char *body = "[{\"threadId\": 5, \"lastBump\": \"1970-01-01T00:00:01.000Z\", \"postCount\": 3, "
                       "\"fileCount\": 1, \"subject\": null},"
                       " {\"threadId\": 7}, {\"threadId\": 9, \"lastBump\": 12, \"postCount\": \"x\"}]";
    lynxapi_thread_ref *refs;
    size_t n;
    char why[256] = "";
    assert_int_equal(lynxapi_parse_catalog(body, strlen(body), 0, &refs, &n, why, sizeof why), 0);
    assert_int_equal(n, 3);
    assert_int_equal(refs[0].id, 5);
    assert_int_equal(refs[0].last_bump, 1000);
    assert_int_equal(refs[0].posts, 3);
    assert_int_equal(refs[1].id, 7);
    assert_int_equal(refs[1].last_bump, -1);
    assert_int_equal(refs[1].posts, -1);
    assert_int_equal(refs[2].last_bump, -1);
    assert_int_equal(refs[2].posts, -1);
    free(refs);
    assert_int_equal(lynxapi_parse_catalog("[]", 2, 0, &refs, &n, why, sizeof why), 0);
    assert_int_equal(n, 0);
    assert_null(refs);
}

static void test_catalog_broken(void **state) {
    (void)state;
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"<html><body>503 Service Unavailable</body></html>", "not JSON"},
        {"[{\"threadId\": 5}, {\"threadId\"", "not JSON"},
        {"", "empty"},
        {"{\"threadId\": 5}", "not an array"},
        {"[1]", "catalog[0] is not an object"},
        {"[{\"threadId\": \"5\"}]", "catalog[0] has no integer threadId"},
        {"[{\"threadId\": 0}]", "catalog[0] has no integer threadId"},
        {"[{\"threadId\": 1}, {}]", "catalog[1] has no integer threadId"},
        {"[{\"threadId\": 1}] x", "unexpected bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynxapi_thread_ref *refs = (void *)1;
        size_t n = 99;
        char why[256] = "";
        assert_int_equal(lynxapi_parse_catalog(cases[i].body, strlen(cases[i].body), 0, &refs, &n, why, sizeof why),
                         -1);
        assert_null(refs);
        assert_int_equal(n, 0);
        if (!strstr(why, cases[i].why)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].why);
    }
}

/* A catalog of 10,000 threads: parsed whole under a generous limit,
 * refused as too complex under a small one. */
static void test_catalog_huge(void **state) {
    (void)state;
    sbuf b = {0};
    sbuf_addc(&b, '[');
    for (int i = 1; i <= 10000; i++) {
        char e[128];
        int n =
            snprintf(e, sizeof e, "%s{\"threadId\": %d, \"lastBump\": \"2026-01-01T00:00:00.000Z\", \"postCount\": 1}",
                     i > 1 ? "," : "", i);
        sbuf_add(&b, e, (size_t)n);
    }
    sbuf_addc(&b, ']');
    lynxapi_thread_ref *refs;
    size_t n;
    char why[256] = "";
    assert_int_equal(lynxapi_parse_catalog(b.p, b.len, 256 << 20, &refs, &n, why, sizeof why), 0);
    assert_int_equal(n, 10000);
    assert_int_equal(refs[9999].id, 10000);
    free(refs);
    assert_int_equal(lynxapi_parse_catalog(b.p, b.len, 1 << 20, &refs, &n, why, sizeof why), -1);
    assert_non_null(strstr(why, "too complex"));
    free(b.p);
}

static void test_files_and_links(void **state) {
    (void)state;
    char why[256] = "";
    const char *body =
        "{\"threadId\": 10, \"message\": \"see https://example.org/a?x=1&y=2 and https://endchan.net/.media/f.png\","
        " \"markdown\": \"see <a href=\\\"https://example.org/a?x=1&amp;y=2\\\">link</a> "
        "<a class=\\\"quoteLink\\\" href=\\\"/b/res/9.html#9\\\">&gt;&gt;9</a>\","
        " \"files\": [{\"path\": \"/.media/f.png\", \"mime\": \"image/png\"}, {\"path\": 42}, {\"path\": \"\"},"
        " {\"mime\": \"image/png\"}, {\"path\": \"/.media/f.png\"}, {\"path\": \".media/g.jpg\"},"
        " {\"path\": \"https://cdn.example/h.gif\"}, 7],"
        " \"_id\": \"spoofed\","
        " \"posts\": [{\"postId\": 11, \"files\": \"none\", \"message\": 5},"
        " {\"postId\": 12, \"message\": \"http://x.example/p\", \"files\": null}]}";
    json_object *items = parse(body, why, sizeof why);
    assert_non_null(items);
    assert_int_equal(json_object_array_length(items), 3);
    json_object *op = json_object_array_get_idx(items, 0);
    assert_string_equal(str(op, "_id"), "b.10");
    assert_null(get(op, "posts"));
    json_object *urls = get(op, "_urls");
    static const char *const want[] = {
        "https://endchan.net/.media/f.png",
        "https://endchan.net/.media/g.jpg",
        "https://cdn.example/h.gif",
        "https://example.org/a?x=1&y=2",
    };
    assert_int_equal(json_object_array_length(urls), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, i)), want[i]);
    assert_int_equal(json_object_get_int(get(op, "_files")), 3);
    json_object *p11 = json_object_array_get_idx(items, 1), *p12 = json_object_array_get_idx(items, 2);
    assert_string_equal(str(p11, "_id"), "b.11");
    assert_string_equal(str(p11, "_type"), "post");
    assert_int_equal(json_object_array_length(get(p11, "_urls")), 0);
    assert_int_equal(json_object_get_int(get(p11, "_files")), 0);
    assert_int_equal(json_object_array_length(get(p12, "_urls")), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(get(p12, "_urls"), 0)), "http://x.example/p");
    assert_int_equal(json_object_get_int(get(p12, "_files")), 0);
    json_object_put(items);

    /* a thread without posts: just the OP */
    items = parse("{\"threadId\": 3, \"files\": []}", why, sizeof why);
    assert_non_null(items);
    assert_int_equal(json_object_array_length(items), 1);
    json_object_put(items);
}

static void test_thread_broken(void **state) {
    (void)state;
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"<!DOCTYPE html><html><head><title>404</title></head></html>", "not JSON"},
        {"{\"threadId\": 5, \"posts\": [{\"postId\": 6}", "not JSON"},
        {"[]", "not an object"},
        {"{\"posts\": []}", "no integer threadId"},
        {"{\"threadId\": \"5\"}", "no integer threadId"},
        {"{\"threadId\": -5}", "no integer threadId"},
        {"{\"threadId\": 5, \"posts\": {}}", "posts is not an array"},
        {"{\"threadId\": 5, \"posts\": [{\"postId\": 6}, 3]}", "posts[1] is not an object"},
        {"{\"threadId\": 5, \"posts\": [{\"postId\": 6}, {\"postId\": 7.5}]}", "posts[1] has no integer postId"},
        {"{\"threadId\": 5, \"posts\": [{}]}", "posts[0] has no integer postId"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[256] = "";
        json_object *items = parse(cases[i].body, why, sizeof why);
        if (items) fail_msg("case %zu parsed", i);
        if (!strstr(why, cases[i].why)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, cases[i].why);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endchan_thread),  cmocka_unit_test(test_endchan_too_complex),
        cmocka_unit_test(test_dates),           cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_catalog_broken),  cmocka_unit_test(test_catalog_huge),
        cmocka_unit_test(test_files_and_links), cmocka_unit_test(test_thread_broken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
