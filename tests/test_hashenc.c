/* test_hashenc.c -- the two written forms of a hash, and the hash-size rules.
 *
 * The base64 strings are design.md's `_img` example; their hex forms are
 * what imagehash_ref.py's to_hex() gives for the same bits.  Each case is
 * checked both ways through the bits.  The hashes themselves are checked
 * against imagehash by tests/hasher/test_hashcore.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "hashenc.h"
#include "imagehash.h"

/* imagehash's hex (first bit most significant) back to NBITS bits. */
static void bits_from_hex(const char *hex, int nbits, imagehash_bits *bits) {
    int width = (int)strlen(hex);
    memset(bits, 0, sizeof *bits);
    bits->nbits = nbits;
    for (int p = 0; p < width; p++) {
        int c = hex[p], v = c <= '9' ? c - '0' : c - 'a' + 10;
        for (int b = 0; b < 4; b++) {
            int i = nbits - 1 - ((width - 1 - p) * 4 + (3 - b));
            if (i >= 0) bits->bit[i] = (unsigned char)(v >> (3 - b) & 1);
        }
    }
}

static void check(const char *hex, int nbits, const char *base64) {
    imagehash_bits bits;
    char text[HASHENC_HEX_LEN(IMAGEHASH_MAX_BITS)];
    bits_from_hex(hex, nbits, &bits);
    hashenc_base64(&bits, text);
    assert_string_equal(text, base64);
    hashenc_hex(&bits, text);
    assert_string_equal(text, hex);
}

static void test_design_example(void **state) {
    (void)state;
    check("fc0fc0fc0fc8fc0fdefd8fc0fc0fc0fc3fc0", 144, "A/w/A/A/A/G/e/A/E/A/A/A/");
    check("49c49429c698693b9c5b0a9859c69519f18e", 144, "cY+YqWOaGVDaOdyWGWOUKSOS");
    check("e665666c864a9b32fa4a9bab956b444aaab1", 144, "jVVSItap1dlSX0zZUmE2ZqZn");
    check("f0f0f0f0f0f0f0f0", 64, "Dw8PDw8PDw8=");
}

static void test_first_pixel_is_least_significant(void **state) {
    (void)state;
    imagehash_bits bits = {.nbits = 64};
    char text[HASHENC_HEX_LEN(64)]; /* the longer of the two for 64 bits */
    bits.bit[0] = 1;
    hashenc_base64(&bits, text);
    assert_string_equal(text, "AAAAAAAAAAE="); /* ...00 01 */
    hashenc_hex(&bits, text);
    assert_string_equal(text, "8000000000000000");
}

static void test_sizes_not_multiple_of_eight(void **state) {
    (void)state;
    check("101", 9, "AQE="); /* bits 1 0 0 0 0 0 0 0 1 */
    check("001", 9, "AQA=");
    check("1ff", 9, "Af8=");
    check("3", 4, "DA=="); /* bits 0 0 1 1 */
}

static void test_hash_sizes(void **state) {
    (void)state;
    const char *why = "unset";
    assert_true(imagehash_size_supported(12, &why));
    assert_null(why);
    static const int good[] = {2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30, 32};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(imagehash_size_supported(good[i], NULL));
    static const int bad[] = {-1, 0, 1, 7, 11, 13, 14, 17, 33, 64};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(imagehash_size_supported(bad[i], &why));
        assert_non_null(why);
    }
    assert_int_equal(imagehash_whash_size(12), 8);
    assert_int_equal(imagehash_whash_size(8), 8);
    assert_int_equal(imagehash_whash_size(16), 16);
    assert_int_equal(imagehash_whash_size(31), 16);
    assert_int_equal(imagehash_whash_size(2), 2);
}

static void test_compute_refuses_bad_size(void **state) {
    (void)state;
    unsigned char px[4] = {0, 64, 128, 255};
    gray_image image = {2, 2, px};
    static imagehash_set set;
    assert_int_equal(imagehash_compute(&image, 7, &set), -1);
    assert_int_equal(imagehash_compute(&image, 12, &set), 0);
    assert_int_equal(set.ahash.nbits, 144);
    assert_int_equal(set.whash.nbits, 64);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_first_pixel_is_least_significant),
        cmocka_unit_test(test_sizes_not_multiple_of_eight),
        cmocka_unit_test(test_hash_sizes),
        cmocka_unit_test(test_compute_refuses_bad_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
