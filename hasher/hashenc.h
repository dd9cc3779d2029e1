/* hashenc.h -- the two written forms of a perceptual hash.
 *
 * base64 (what `_img` stores, as chan_feed did): the integer whose bit i is
 * bit[i] -- the first pixel is the least significant bit -- written
 * big-endian in ceil(n/8) bytes, standard base64 with padding.
 *
 * hex (imagehash's str()): the bits read as one binary number, first bit
 * most significant, zero-padded to ceil(n/4) lower-case hex digits.
 */
#ifndef IMGFEED_HASHENC_H
#define IMGFEED_HASHENC_H

#include "imagehash.h"

/* Sizes of the output buffers for N bits, terminating NUL included. */
#define HASHENC_BASE64_LEN(n) ((((n) + 7) / 8 + 2) / 3 * 4 + 1)
#define HASHENC_HEX_LEN(n) (((n) + 3) / 4 + 1)

void hashenc_base64(const imagehash_bits *bits, char *out);
void hashenc_hex(const imagehash_bits *bits, char *out);

#endif
