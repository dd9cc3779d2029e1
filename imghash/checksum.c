/* checksum.c -- crc32, md5 and sha1 of a file's bytes, and base64.
 *
 * One pass per digest over bytes already in memory: zlib's crc32() (which
 * uses its slicing tables) and OpenSSL's one-shot EVP_Digest(), which picks
 * the CPU's SHA extensions when there are any.  Nothing here can fail but
 * OpenSSL itself, which only fails without memory: the caller is told.
 */
#include "checksum.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <zlib.h>

static void checksum_hex(const unsigned char *raw, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[2 * len] = '\0';
}

/* zlib's crc32() takes a uInt length: feed it in chunks. */
static uint32_t checksum_crc32(const unsigned char *data, size_t len) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (len > 0) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, data, chunk);
        data += chunk;
        len -= chunk;
    }
    return (uint32_t)crc;
}

int ih_checksum_compute(const unsigned char *data, size_t len, ih_checksums *out) {
    static const unsigned char empty[1];
    if (!data) data = empty;
    out->crc32 = checksum_crc32(data, len);
    snprintf(out->crc32_hex, sizeof out->crc32_hex, "%08x", (unsigned)out->crc32);
    if (!EVP_Digest(data, len, out->md5, NULL, EVP_md5(), NULL) ||
        !EVP_Digest(data, len, out->sha1, NULL, EVP_sha1(), NULL))
        return -1;
    checksum_hex(out->md5, sizeof out->md5, out->md5_hex);
    checksum_hex(out->sha1, sizeof out->sha1, out->sha1_hex);
    return 0;
}

void ih_checksum_base64(const unsigned char *data, size_t len, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) v |= data[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}
