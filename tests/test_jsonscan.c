/* test_jsonscan.c -- the JSON walk that checks and measures without
 * building (common/jsonscan.h): what it accepts and refuses, where a value
 * ends, what it counts, and that its estimate is above what json-c takes. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "jsonscan.h"

static int scan(const char *text, size_t *end, jsonscan_cost *cost, char *why, size_t whylen) {
    size_t pos = 0;
    int rc = jsonscan_value(text, strlen(text), &pos, cost, why, whylen);
    if (end) *end = pos;
    return rc;
}

static void test_accepts(void **state) {
    (void)state;
    static const char *const good[] = {
        "{}", "[]", " {\"a\":1} ", "[1,-2,3.5,2.5e3,1E400,1e-05,-0,0.5E+7]", "\"x\\u00e9\\n\\\"\"",
        "{\"a\":{\"b\":[true,false,null,{}]}}", "[NaN,Infinity,-Infinity]", "\"raw\ttab\"", "7", "[[[[]]]]",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char why[160];
        if (scan(good[i], NULL, NULL, why, sizeof why) != 0) fail_msg("'%s' refused: %s", good[i], why);
    }
}

static void test_refuses(void **state) {
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "truncated"},
        {"{", "truncated"},
        {"{\"a\":", "truncated"},
        {"[1,", "truncated"},
        {"\"abc", "truncated"},
        {"{\"a\" 1}", "expected ':'"},
        {"{1:2}", "expected a key"},
        {"[1 2]", "expected ','"},
        {"[1,]", "a bad value"},
        {"{\"a\":1,}", "expected a key"},
        {"[01x]", "expected ','"},
        {"[-]", "a bad value"},
        {"[1.]", "a bad value"},
        {"[1e]", "a bad value"},
        {"[tru]", "a bad value"},
        {"[nan]", "a bad value"},
        {"\"\\x\"", "a bad escape"},
        {"\"\\u12g4\"", "a bad escape"},
        {"]", "a bad value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[160] = "";
        if (scan(bad[i].text, NULL, NULL, why, sizeof why) == 0) fail_msg("'%s' accepted", bad[i].text);
        if (!strstr(why, bad[i].why) || !strstr(why, "not JSON"))
            fail_msg("'%s': '%s', expected '%s'", bad[i].text, why, bad[i].why);
    }
    /* Depth: JSONSCAN_MAX_DEPTH levels pass, one more does not. */
    char deep[2 * JSONSCAN_MAX_DEPTH + 3];
    for (int extra = 0; extra < 2; extra++) {
        size_t n = JSONSCAN_MAX_DEPTH + (size_t)extra, k = 0;
        for (size_t i = 0; i < n; i++)
            deep[k++] = '[';
        for (size_t i = 0; i < n; i++)
            deep[k++] = ']';
        deep[k] = '\0';
        char why[160] = "";
        assert_int_equal(scan(deep, NULL, NULL, why, sizeof why), extra ? -1 : 0);
        if (extra) assert_non_null(strstr(why, "nested deeper"));
    }
}

/* The walk stops right after the value: what follows is the caller's. */
static void test_end_and_cost(void **state) {
    (void)state;
    size_t end;
    jsonscan_cost c = {0};
    assert_int_equal(scan("{\"ab\":[1,\"xyz\",{}],\"c\":null} tail", &end, &c, NULL, 0), 0);
    assert_int_equal(end, 28);
    assert_int_equal(c.objects, 2);
    assert_int_equal(c.arrays, 1);
    assert_int_equal(c.members, 2);
    assert_int_equal(c.elements, 3);
    assert_int_equal(c.scalars, 3);
    assert_int_equal(c.string_bytes, 2 + 3 + 1);
    assert_int_equal(c.text_bytes, 28);
    assert_int_equal(c.control_bytes, 0);
    jsonscan_cost raw = {0};
    assert_int_equal(scan("[\"a\x01\tb\\n\"]", &end, &raw, NULL, 0), 0);
    assert_int_equal(raw.control_bytes, 2); /* the raw ones; "\\n" is an escape already */
    assert_int_equal(jsonscan_print_estimate(&raw), 2 * (raw.text_bytes + 5 * 2));
    size_t pos = 0;
    assert_int_equal(jsonscan_skip_space(" \t\n x", 5, &pos), 'x');
    assert_int_equal(pos, 4);
    pos = 0;
    assert_int_equal(jsonscan_skip_space("   ", 3, &pos), -1);
}

/* Bytes in use by the heap (glibc). */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* The estimate is above what json-c really allocates, for the shapes that
 * cost it the most per byte of text. */
static void test_estimate_covers_json_c(void **state) {
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    skip(); /* ASan's allocator is not glibc's: mallinfo2 does not see it */
#endif
    static const char *const shapes[] = {"{}", "[]", "1", "\"\"", "{\"a\":1}", "\"some words of a comment\""};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t n = 20000, one = strlen(shapes[s]);
        char *text = malloc(n * (one + 1) + 3), *p = text;
        *p++ = '[';
        for (size_t i = 0; i < n; i++) {
            if (i) *p++ = ',';
            memcpy(p, shapes[s], one);
            p += one;
        }
        *p++ = ']';
        *p = '\0';
        jsonscan_cost c = {0};
        assert_int_equal(scan(text, NULL, &c, NULL, 0), 0);
        size_t before = heap_in_use();
        json_object *tree = json_tokener_parse(text);
        assert_non_null(tree);
        size_t used = heap_in_use() - before;
        json_object_put(tree);
        uint64_t estimate = jsonscan_estimate(&c);
        fprintf(stderr, "%-28s json-c %8zu bytes, estimate %8llu\n", shapes[s], used, (unsigned long long)estimate);
        assert_true(estimate >= used);
        assert_true(estimate <= 3 * used + 4096); /* and not wildly above */
        free(text);
    }
}

/* Members found in one walk: the last of a repeated key, none inside a
 * nested value, 0 for a missing one; the pieces parse alone; jsonscan_body
 * and jsonscan_fits say why they refuse. */
static void test_members_and_pieces(void **state) {
    (void)state;
    const char *s = " {\"a\": 1, \"n\": {\"b\": 2}, \"c\": [3, {\"b\": 4}], \"a\": \"x\"} ";
    size_t len = strlen(s), root = 1;
    static const char *const keys[] = {"a", "b", "c", "n"};
    size_t vs[4], ve[4];
    assert_int_equal(jsonscan_body(s, len, NULL, NULL, 0), 0);
    jsonscan_members(s, len, root, keys, 4, vs, ve);
    assert_int_equal(ve[1], 0); /* b is only nested */
    assert_memory_equal(s + vs[0], "\"x\"", 3);
    assert_int_equal(ve[0] - vs[0], 3);
    assert_memory_equal(s + vs[2], "[3, {\"b\": 4}]", ve[2] - vs[2]);
    size_t one_s, one_e;
    assert_true(jsonscan_member(s, len, root, "n", &one_s, &one_e));
    assert_int_equal(one_s, vs[3]);
    assert_false(jsonscan_member(s, len, root, "zz", &one_s, &one_e));
    char why[200];
    json_object *n = jsonscan_parse_span(s + vs[3], ve[3] - vs[3], "n", why, sizeof why);
    assert_non_null(n);
    assert_int_equal(json_object_object_length(n), 1);
    json_object_put(n);
    json_object *num = jsonscan_parse_span("12", 2, "a number", why, sizeof why); /* a bare number at the end */
    assert_int_equal(json_object_get_int(num), 12);
    json_object_put(num);
    assert_int_equal(jsonscan_body("", 0, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "empty"));
    assert_int_equal(jsonscan_body("{} x", 4, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "after the value"));
    jsonscan_cost cost = {0};
    size_t pos = 0;
    assert_int_equal(jsonscan_value(s, len, &pos, &cost, NULL, 0), 0);
    assert_true(jsonscan_fits(&cost, 0, true, "it", why, sizeof why));
    assert_false(jsonscan_fits(&cost, 100, true, "the thing", why, sizeof why));
    assert_non_null(strstr(why, "the thing is too complex"));
    /* the elements of an array, one at a time, each with its own cost */
    const char *a = "[ 1 , {\"a\": [2]} ,\"x\" ]";
    static const char *const want[] = {"1", "{\"a\": [2]}", "\"x\""};
    size_t at = 0, es, ee, k = 0;
    while (jsonscan_element(a, strlen(a), &at, &es, &ee, &cost)) {
        assert_true(k < 3);
        assert_int_equal(ee - es, strlen(want[k]));
        assert_memory_equal(a + es, want[k], ee - es);
        assert_int_equal(cost.objects, k == 1 ? 1 : 0);
        k++;
    }
    assert_int_equal(k, 3);
    at = 0;
    assert_false(jsonscan_element("[ ]", 3, &at, &es, &ee, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_end_and_cost),
        cmocka_unit_test(test_estimate_covers_json_c),
        cmocka_unit_test(test_members_and_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
