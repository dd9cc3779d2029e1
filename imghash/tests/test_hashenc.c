/* test_hashenc.c -- the written forms of a hash, their parsers, and the
 * hash-size rules.
 *
 * The base64 strings are design.md's `_img` example; their hex forms are
 * what imagehash_ref.py's to_hex() gives for the same bits.  Each case is
 * checked both ways through the bits, and read back by the parsers.  The
 * parsers also get every hash size's texts of random bits, and the texts
 * they must refuse (table-driven).  The hashes themselves are checked
 * against imagehash by test_hashcore.py beside this file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imghash/imghash.h"

/* imagehash's hex (first bit most significant) back to NBITS bits. */
static void bits_from_hex(const char *hex, int nbits, ih_bits *bits) {
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

/* The base64 and hex texts of NBITS bits parse back into their bytes. */
static void check_parse(const ih_bits *bits, const char *base64, const char *hex) {
    unsigned char want[IH_HASHENC_BYTES(IH_HASH_MAX_BITS)], got[sizeof want + 1];
    size_t nbytes = ih_hashenc_bytes(bits, want), len = 0;
    assert_int_equal(nbytes, IH_HASHENC_BYTES(bits->nbits));
    assert_int_equal(ih_hashenc_parse_base64(base64, strlen(base64), got, nbytes, &len), 0);
    assert_int_equal(len, nbytes);
    assert_memory_equal(got, want, nbytes);
    /* one byte short of room is refused */
    if (nbytes) assert_int_equal(ih_hashenc_parse_base64(base64, strlen(base64), got, nbytes - 1, &len), -1);

    /* hex: imagehash's number, bit[0] its highest bit */
    size_t hexbytes = (strlen(hex) + 1) / 2;
    assert_int_equal(ih_hashenc_parse_hex(hex, strlen(hex), got, sizeof got, &len), 0);
    assert_int_equal(len, hexbytes);
    for (int i = 0; i < bits->nbits; i++) {
        size_t weight = (size_t)(bits->nbits - 1 - i); /* of bit[i] in the number */
        assert_int_equal(got[hexbytes - 1 - weight / 8] >> (weight % 8) & 1, bits->bit[i]);
    }
    assert_int_equal(ih_hashenc_parse_hex(hex, strlen(hex), got, hexbytes - 1, &len), -1);
}

static void check(const char *hex, int nbits, const char *base64) {
    ih_bits bits;
    char text[IH_HASHENC_HEX_LEN(IH_HASH_MAX_BITS)];
    bits_from_hex(hex, nbits, &bits);
    ih_hashenc_base64(&bits, text);
    assert_string_equal(text, base64);
    ih_hashenc_hex(&bits, text);
    assert_string_equal(text, hex);
    check_parse(&bits, base64, hex);
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
    ih_bits bits = {.nbits = 64};
    char text[IH_HASHENC_HEX_LEN(64)]; /* the longer of the two for 64 bits */
    bits.bit[0] = 1;
    ih_hashenc_base64(&bits, text);
    assert_string_equal(text, "AAAAAAAAAAE="); /* ...00 01 */
    ih_hashenc_hex(&bits, text);
    assert_string_equal(text, "8000000000000000");
}

static void test_sizes_not_multiple_of_eight(void **state) {
    (void)state;
    check("101", 9, "AQE="); /* bits 1 0 0 0 0 0 0 0 1 */
    check("001", 9, "AQA=");
    check("1ff", 9, "Af8=");
    check("3", 4, "DA=="); /* bits 0 0 1 1 */
}

/* Random bits at 8, 12 and 16 bits a side (and every other size the hashes
 * take), written and read back. */
static void test_parse_round_trip(void **state) {
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    for (int side = 2; side <= IH_HASH_MAX_SIZE; side++) {
        for (int round = 0; round < 50; round++) {
            ih_bits bits = {.nbits = side * side};
            for (int i = 0; i < bits.nbits; i++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                bits.bit[i] = round == 0 ? 0 : round == 1 ? 1 : (unsigned char)(rng >> 40 & 1);
            }
            char base64[IH_HASHENC_BASE64_LEN(IH_HASH_MAX_BITS)], hex[IH_HASHENC_HEX_LEN(IH_HASH_MAX_BITS)];
            ih_hashenc_base64(&bits, base64);
            ih_hashenc_hex(&bits, hex);
            check_parse(&bits, base64, hex);
        }
    }
    /* the sizes the archive holds, by their lengths */
    static const struct {
        int side;
        size_t base64_len, bytes;
    } sizes[] = {{8, 12, 8}, {12, 24, 18}, {16, 44, 32}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        ih_bits bits = {.nbits = sizes[i].side * sizes[i].side};
        bits.bit[0] = 1;
        char base64[IH_HASHENC_BASE64_LEN(IH_HASH_MAX_BITS)];
        unsigned char out[IH_HASHENC_BYTES(IH_HASH_MAX_BITS)];
        size_t len = 0;
        ih_hashenc_base64(&bits, base64);
        assert_int_equal(strlen(base64), sizes[i].base64_len);
        assert_int_equal(ih_hashenc_parse_base64(base64, strlen(base64), out, sizes[i].bytes, &len), 0);
        assert_int_equal(len, sizes[i].bytes);
        assert_int_equal(out[len - 1], 1); /* the first pixel is the last byte's lowest bit */
    }
}

static void test_parse_base64_refuses(void **state) {
    (void)state;
    static const char *const bad[] = {
        "A",                /* not a multiple of 4 */
        "AAAAAAAAAAE",      /* one short */
        "AAAAAAAAAAE==",    /* one long */
        "AAAA AAAAAE=",     /* a space */
        "AAAAAAAAAA\n=",    /* a line break */
        "AAAAAAAA-_E=",     /* the URL-safe alphabet */
        "AAAAAAAAAAE.",     /* a stray character */
        "AAAAAAAAAAF=",     /* padding bits set (F = 5: 000101) */
        "AAAAAAAAAB==",     /* padding bits set after one byte */
        "AA=A",             /* '=' inside */
        "A===",             /* three '=' */
        "====",             /* only padding */
        "=AAA",             /* '=' first */
        "Dw8PDw8PDw8=Dw8=", /* padding before the end */
    };
    unsigned char out[64];
    size_t len = 12345;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = strlen(bad[i]);
        if (ih_hashenc_parse_base64(bad[i], n, out, 8, &len) != -1)
            fail_msg("accepted \"%s\" as %zu bytes", bad[i], len);
    }
    /* a NUL inside the given length is a bad character, not an end */
    assert_int_equal(ih_hashenc_parse_base64("AAAA\0AAAAAAA", 12, out, sizeof out, &len), -1);
    /* the same text is fine where it is right: room, padding, bits */
    assert_int_equal(ih_hashenc_parse_base64("Dw8PDw8PDw8=", 12, out, 8, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(ih_hashenc_parse_base64("Dw8PDw8PDw8=", 12, out, 7, &len), -1);
    assert_int_equal(ih_hashenc_parse_base64("AAAAAAAAAA==", 12, out, 8, &len), 0);
    assert_int_equal(len, 7);
    assert_int_equal(ih_hashenc_parse_base64("", 0, out, 0, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(ih_hashenc_parse_base64("/+8=", 4, out, 2, NULL), 0);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xef);
    assert_int_equal(ih_hashenc_parse_base64("/+9=", 4, out, 2, NULL), -1); /* 9: a padding bit */
}

static void test_parse_hex_refuses(void **state) {
    (void)state;
    unsigned char out[64];
    size_t len = 0;
    static const char *const bad[] = {"f0f0f0f0f0f0f0fg", "f0f0 f0f0", "0x10", "-1", "f0f0f0f0f0f0f0f\n", "+f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ih_hashenc_parse_hex(bad[i], strlen(bad[i]), out, sizeof out, &len) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(ih_hashenc_parse_hex("00\0", 3, out, sizeof out, &len), -1);
    assert_int_equal(ih_hashenc_parse_hex("f0f0f0f0f0f0f0f0", 16, out, 7, &len), -1); /* no room */
    assert_int_equal(ih_hashenc_parse_hex("F0f0F0f0F0f0F0f0", 16, out, 8, &len), 0);  /* either case */
    assert_int_equal(len, 8);
    assert_int_equal(out[0], 0xf0);
    assert_int_equal(out[7], 0xf0);
    assert_int_equal(ih_hashenc_parse_hex("1ff", 3, out, 2, &len), 0); /* odd: a leading zero nibble */
    assert_int_equal(len, 2);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(ih_hashenc_parse_hex("", 0, out, 0, &len), 0);
    assert_int_equal(len, 0);
}

static void test_hash_sizes(void **state) {
    (void)state;
    const char *why = "unset";
    assert_true(ih_hashes_size_supported(12, &why));
    assert_null(why);
    static const int good[] = {2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30, 32};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(ih_hashes_size_supported(good[i], NULL));
    static const int bad[] = {-1, 0, 1, 7, 11, 13, 14, 17, 33, 64};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(ih_hashes_size_supported(bad[i], &why));
        assert_non_null(why);
    }
    assert_int_equal(ih_hashes_whash_size(12), 8);
    assert_int_equal(ih_hashes_whash_size(8), 8);
    assert_int_equal(ih_hashes_whash_size(16), 16);
    assert_int_equal(ih_hashes_whash_size(31), 16);
    assert_int_equal(ih_hashes_whash_size(2), 2);
}

static void test_compute_refuses_bad_size(void **state) {
    (void)state;
    unsigned char px[4] = {0, 64, 128, 255};
    ih_gray image = {.width = 2, .height = 2, .pixels = px};
    static ih_hashes set;
    assert_int_equal(ih_hashes_compute(&image, 7, &set), -1);
    assert_int_equal(ih_hashes_compute(&image, 12, &set), 0);
    assert_int_equal(set.ahash.nbits, 144);
    assert_int_equal(set.whash.nbits, 64);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_first_pixel_is_least_significant),
        cmocka_unit_test(test_sizes_not_multiple_of_eight),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_base64_refuses),
        cmocka_unit_test(test_parse_hex_refuses),
        cmocka_unit_test(test_hash_sizes),
        cmocka_unit_test(test_compute_refuses_bad_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
