/* test_sbuf.c -- the growing byte buffer (common/sbuf.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sbuf.h"

static void test_add_and_grow(void **state) {
    (void)state;
    sbuf b = {0};
    sbuf_add(&b, "ab", 2);
    sbuf_addc(&b, '\0'); /* bytes, not a string: a NUL is kept */
    sbuf_addc(&b, 'c');
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "ab\0c", 4);
    assert_true(b.cap >= 4);
    char big[1000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 100; i++)
        sbuf_add(&b, big, sizeof big);
    assert_int_equal(b.len, 4 + 100 * sizeof big);
    assert_true(b.cap >= b.len);
    assert_memory_equal(b.p, "ab\0c", 4);
    assert_int_equal(b.p[b.len - 1], 'x');
    size_t cap = b.cap;
    sbuf_grow(&b, cap - b.len); /* room enough already: nothing moves */
    assert_int_equal(b.cap, cap);
    sbuf_grow(&b, cap - b.len + 1);
    assert_true(b.cap - b.len >= cap - b.len + 1);
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
