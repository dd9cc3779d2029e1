/* hashenc.c -- a perceptual hash as bytes, base64 and imagehash's hex, and
 * back (ih_hashenc_*).
 *
 * Both written forms read the bits as one big integer, in opposite
 * directions: the bytes (and so base64) put bit[i] at weight 2^i (the first
 * pixel is the least significant bit, docs/design.md), hex puts bit[0]
 * first, most significant, as imagehash's _binary_array_to_hex does
 * ('{:0>{w}x}', w = ceil(n/4)).  Base64 itself is checksum.c's, the one
 * encoder of the library.
 *
 * The base64 parser accepts exactly the texts the encoder can write: each
 * text has one reading, so a stored hash that was damaged is refused rather
 * than compared as another hash.
 */
#include "hashenc.h"

#include <string.h>

#include "checksum.h"

size_t ih_hashenc_bytes(const ih_bits *bits, unsigned char *out) {
    size_t nbytes = (size_t)IH_HASHENC_BYTES(bits->nbits);
    memset(out, 0, nbytes);
    for (int i = 0; i < bits->nbits; i++) /* big-endian: weight 2^i */
        if (bits->bit[i]) out[nbytes - 1 - (size_t)i / 8] |= (unsigned char)(1u << (i % 8));
    return nbytes;
}

void ih_hashenc_base64(const ih_bits *bits, char *out) {
    unsigned char bytes[IH_HASHENC_BYTES(IH_HASH_MAX_BITS)];
    size_t nbytes = ih_hashenc_bytes(bits, bytes);
    ih_checksum_base64(bytes, nbytes, out);
}

void ih_hashenc_hex(const ih_bits *bits, char *out) {
    int n = bits->nbits, width = (n + 3) / 4;
    for (int p = 0; p < width; p++) {
        unsigned digit = 0;
        for (int b = 3; b >= 0; b--) { /* value bit j is bit[n - 1 - j] */
            int i = n - 1 - ((width - 1 - p) * 4 + b);
            digit = digit << 1 | (i >= 0 && bits->bit[i] ? 1u : 0u);
        }
        out[p] = "0123456789abcdef"[digit];
    }
    out[width] = '\0';
}

/* The 6-bit value of a base64 character, -1 for any other byte. */
static int hashenc_base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int ih_hashenc_parse_base64(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen) {
    if (len % 4) return -1;
    size_t pad = len == 0 ? 0 : s[len - 1] != '=' ? 0 : s[len - 2] != '=' ? 1 : 2;
    size_t nbytes = len / 4 * 3 - pad;
    if (nbytes > outmax) return -1;
    for (size_t i = 0, o = 0; i < len; i += 4) {
        int keep = i + 4 < len ? 4 : 4 - (int)pad; /* characters that carry bits */
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
            int d = k < keep ? hashenc_base64_value((unsigned char)s[i + (size_t)k]) : 0;
            if (d < 0) return -1;
            v = v << 6 | (unsigned)d;
        }
        /* the bits below the last byte, set only by a different encoder */
        if (keep == 2 ? (v & 0xffff) : keep == 3 ? (v & 0xff) : 0) return -1;
        out[o++] = (unsigned char)(v >> 16);
        if (keep > 2) out[o++] = (unsigned char)(v >> 8);
        if (keep > 3) out[o++] = (unsigned char)v;
    }
    if (outlen) *outlen = nbytes;
    return 0;
}

/* The value of a hex digit of either case, -1 for any other byte. */
static int hashenc_hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ih_hashenc_parse_hex(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen) {
    size_t nbytes = (len + 1) / 2, i = 0, o = 0;
    if (nbytes > outmax) return -1;
    if (len % 2) { /* the first byte's high nibble is 0 */
        int d = hashenc_hex_value((unsigned char)s[0]);
        if (d < 0) return -1;
        out[o++] = (unsigned char)d;
        i = 1;
    }
    for (; i < len; i += 2) {
        int hi = hashenc_hex_value((unsigned char)s[i]), lo = hashenc_hex_value((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[o++] = (unsigned char)(hi << 4 | lo);
    }
    if (outlen) *outlen = nbytes;
    return 0;
}
