/* hashenc.c -- a perceptual hash as chan_feed's base64 and imagehash's hex.
 *
 * Both forms read the bits as one big integer, in opposite directions:
 * base64 puts bit[i] at weight 2^i (the first pixel is the least
 * significant bit, design.md), hex puts bit[0] first, most significant, as
 * imagehash's _binary_array_to_hex does ('{:0>{w}x}', w = ceil(n/4)).
 */
#include "hashenc.h"

#include <string.h>

void hashenc_base64(const imagehash_bits *bits, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char bytes[IMAGEHASH_MAX_BITS / 8 + 1];
    int nbytes = (bits->nbits + 7) / 8;
    memset(bytes, 0, sizeof bytes);
    for (int i = 0; i < bits->nbits; i++) /* big-endian: weight 2^i */
        if (bits->bit[i]) bytes[nbytes - 1 - i / 8] |= (unsigned char)(1u << (i % 8));
    int o = 0;
    for (int i = 0; i < nbytes; i += 3) {
        unsigned v = (unsigned)bytes[i] << 16;
        if (i + 1 < nbytes) v |= (unsigned)bytes[i + 1] << 8;
        if (i + 2 < nbytes) v |= bytes[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < nbytes ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < nbytes ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

void hashenc_hex(const imagehash_bits *bits, char *out) {
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
