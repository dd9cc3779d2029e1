/* test_itemtext.c -- mending item text that jsonb refuses (itemtext.h),
 * case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itemtext.h"
#include "xalloc.h"

static void test_repair(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
        size_t nul, utf8;
    } cases[] = {
        {"{\"a\":\"plain\"}", "{\"a\":\"plain\"}", 0, 0},
        {"{\"a\":\"\\u0000x\\u0000\"}", "{\"a\":\"x\",\"_repaired\":{\"nul\":2,\"utf8\":0}}", 2, 0},
        {"{\"k\\u0000\":1}", "{\"k\":1,\"_repaired\":{\"nul\":1,\"utf8\":0}}", 1, 0},
        {"{\"a\":\"\\\\u0000\"}", "{\"a\":\"\\\\u0000\"}", 0, 0}, /* an escaped backslash, then text */
        {"{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\ud83d\\ude00\"}", 0, 0},
        {"{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ufffd\",\"_repaired\":{\"nul\":0,\"utf8\":1}}", 0, 1},
        {"{\"a\":\"\\ude00\\ud83dx\"}", "{\"a\":\"\\ufffd\\ufffdx\",\"_repaired\":{\"nul\":0,\"utf8\":2}}", 0, 2},
        {"{\"a\":\"\\uD83D\\uDE00\"}", "{\"a\":\"\\uD83D\\uDE00\"}", 0, 0},
        {"{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", 0, 0},
        {"{\"a\":\"\xff\"}", "{\"a\":\"\xef\xbf\xbd\",\"_repaired\":{\"nul\":0,\"utf8\":1}}", 0, 1},
        {"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"_repaired\":{\"nul\":0,\"utf8\":2}}", 0, 2},
        {"{\"a\":\"\xed\xa0\x80\"}", /* a surrogate in UTF-8 */
         "{\"a\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"_repaired\":{\"nul\":0,\"utf8\":3}}", 0, 3},
        {"{\"a\":\"\xc3\"}", "{\"a\":\"\xef\xbf\xbd\",\"_repaired\":{\"nul\":0,\"utf8\":1}}", 0, 1},
        {"{\"a\":\"a\nb\tc\x01\"}", "{\"a\":\"a\\u000ab\\u0009c\\u0001\"}", 0, 0},
        {"{ }", "{ }", 0, 0},
        {"{\"\\u0000\":null }", "{\"\":null ,\"_repaired\":{\"nul\":1,\"utf8\":0}}", 1, 0},
        {"{\"a\":[true,false,null]}", "{\"a\":[true,false,null]}", 0, 0},
        /* Every number JSON allows, exponents too, kept to the letter. */
        {"{\"_id\":\"x\",\"a\":2.5e3}", "{\"_id\":\"x\",\"a\":2.5e3}", 0, 0},
        {"{\"a\":[1e400,1.5e308,1e-05,-2E+3,0.5E-7,-0,1E5]}", "{\"a\":[1e400,1.5e308,1e-05,-2E+3,0.5E-7,-0,1E5]}", 0,
         0},
        {"{\"a\":12345678901234567890123e-3}", "{\"a\":12345678901234567890123e-3}", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].in);
        char *out = xmalloc(ITEMTEXT_REPAIR_ROOM(len));
        itemtext_repairs r;
        char why[128];
        size_t n = itemtext_repair(cases[i].in, len, out, &r, why, sizeof why);
        if (n == (size_t)-1) fail_msg("case %zu refused: %s", i, why);
        if (n != strlen(cases[i].out) || memcmp(out, cases[i].out, n) != 0)
            fail_msg("case %zu: got %.*s, expected %s", i, (int)n, out, cases[i].out);
        assert_int_equal(r.nul, cases[i].nul);
        assert_int_equal(r.utf8, cases[i].utf8);
        free(out);
    }
}

static void test_refused(void **state) {
    (void)state;
    static const char *const bad[] = {"{\"a\":NaN}", "{\"a\":-Infinity}", "{\"a\":nan}", "{\"a\":\"x",
                                      "{\"a\":1e5x}", "{\"a\":Infinity}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = strlen(bad[i]);
        char *out = xmalloc(ITEMTEXT_REPAIR_ROOM(len));
        itemtext_repairs r;
        char why[128];
        assert_int_equal(itemtext_repair(bad[i], len, out, &r, why, sizeof why), (size_t)-1);
        assert_non_null(strstr(why, "not JSON"));
        free(out);
    }
}

static void test_repair_string(void **state) {
    (void)state;
    char out[64];
    assert_int_equal(itemtext_repair_string("a\0b", 3, out), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(itemtext_repair_string("x\xffy", 3, out), 5);
    assert_string_equal(out, "x\xef\xbf\xbdy");
    assert_int_equal(itemtext_repair_string("\xc3\xa9", 2, out), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_repair_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
