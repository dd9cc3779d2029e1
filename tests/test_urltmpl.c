/* test_urltmpl.c -- percent-encoding and URL templates (common/urltmpl.h):
 * tables of inputs and the exact strings they give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sbuf.h"
#include "urltmpl.h"

static void test_percent_encode(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"abcXYZ019", "abcXYZ019"},
        {"-_.~", "-_.~"},
        {"a b", "a%20b"},
        {"a+b/c?d=e&f#g", "a%2Bb%2Fc%3Fd%3De%26f%23g"},
        {"%", "%25"},
        {"{no}", "%7Bno%7D"},
        {"\xce\xbb", "%CE%BB"},                                /* λ, two UTF-8 bytes */
        {"caf\xc3\xa9 \xe2\x98\x95", "caf%C3%A9%20%E2%98%95"}, /* é and ☕ */
        {"\x01\x7f\xff", "%01%7F%FF"},
        {"!*'();:@$,[]", "%21%2A%27%28%29%3B%3A%40%24%2C%5B%5D"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = urltmpl_percent_encode(cases[i].in);
        assert_non_null(got);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
    assert_null(urltmpl_percent_encode(NULL));

    sbuf b = {0};
    sbuf_add(&b, "x=", 2);
    urltmpl_percent_encode_to(&b, "a/b");
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.p, "x=a%2Fb", 7);
    free(b.p);
}

/* Decoding undoes encoding, reads either case of hex, and refuses a cut
 * or bad escape and %00. */
static void test_percent_decode(void **state) {
    (void)state;
    static const char *const round[] = {"", "abc", "a b/c?d=e&f#g%", "\xce\xbb \x01\x7f\xff\n\r", "{no}"};
    for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
        char *enc = urltmpl_percent_encode(round[i]);
        sbuf b = {0};
        assert_int_equal(urltmpl_percent_decode_to(&b, enc, strlen(enc)), 0);
        assert_int_equal(b.len, strlen(round[i]));
        if (b.len) assert_memory_equal(b.p, round[i], b.len);
        free(b.p);
        free(enc);
    }
    sbuf b = {0};
    assert_int_equal(urltmpl_percent_decode_to(&b, "%2f%2F+x", 8), 0);
    assert_memory_equal(b.p, "//+x", 4);
    static const char *const bad[] = {"%", "%2", "a%zz", "%g0", "%00", "x%4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.len = 0;
        assert_int_equal(urltmpl_percent_decode_to(&b, bad[i], strlen(bad[i])), -1);
    }
    free(b.p);
}

static void test_expand(void **state) {
    (void)state;
    const urltmpl_var vars[] = {
        {"api", "https://a.example", false},
        {"board", "b/\xce\xbb", true},
        {"no", "123", false},
        {"tim", NULL, false},
        {"ext", ".png", false},
        {"trick", "{no}", false},
    };
    size_t n = sizeof vars / sizeof vars[0];
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"no placeholders", "no placeholders"},
        {"{api}/{board}/thread/{no}.json", "https://a.example/b%2F%CE%BB/thread/123.json"},
        {"{no}{no}", "123123"},
        {"{tim}{ext}", "{tim}.png"},         /* NULL value: left as is */
        {"{unknown}/{no}", "{unknown}/123"}, /* unknown: left as is */
        {"{trick}", "{no}"},                 /* a value is not scanned again */
        {"{", "{"},
        {"a{no", "a{no"}, /* no closing brace */
        {"{{no}}", "{123}"},
        {"{}", "{}"},
        {"}{no}{", "}123{"},
        {"{ no}", "{ no}"},
        {"{NO}", "{NO}"}, /* names are case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = urltmpl_expand(cases[i].in, vars, n);
        assert_non_null(got);
        if (strcmp(got, cases[i].out) != 0) fail_msg("%s gave %s, not %s", cases[i].in, got, cases[i].out);
        free(got);
    }
    assert_null(urltmpl_expand(NULL, vars, n));
    char *got = urltmpl_expand("{no}", NULL, 0);
    assert_string_equal(got, "{no}");
    free(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_expand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
