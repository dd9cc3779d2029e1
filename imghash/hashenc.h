/* hashenc.h -- the written forms of a perceptual hash, and their parsers
 * (ih_hashenc_*).
 *
 * bytes: the integer whose bit i is bit[i] -- the first pixel is the least
 * significant bit -- big-endian in ceil(n/8) bytes.
 *
 * base64 (what an `_img` entry stores, as chan_feed did): those bytes in
 * standard base64 with padding.
 *
 * hex (imagehash's str()): the bits read as one binary number, first bit
 * most significant, zero-padded to ceil(n/4) lower-case hex digits.
 *
 * The parsers read a written form back into big-endian bytes, for a program
 * that compares stored hashes (with those of a query image, say): base64
 * into the bytes above, hex into the bytes of imagehash's number.  They are
 * strict: a text that ih_hashenc_base64 or ih_hashenc_hex could not have
 * written (bad characters, bad padding, stray bits) is refused, never read
 * as some nearby value.
 */
#ifndef IH_HASHENC_H
#define IH_HASHENC_H

#include <stddef.h>

#include "hashes.h"

/* Sizes of the outputs for N bits: bytes, and texts with their NUL. */
#define IH_HASHENC_BYTES(n) (((n) + 7) / 8)
#define IH_HASHENC_BASE64_LEN(n) ((IH_HASHENC_BYTES(n) + 2) / 3 * 4 + 1)
#define IH_HASHENC_HEX_LEN(n) (((n) + 3) / 4 + 1)

/* The bytes of BITS into OUT (IH_HASHENC_BYTES(bits->nbits) of them, owned
 * by the caller); returns their count. */
size_t ih_hashenc_bytes(const ih_bits *bits, unsigned char *out);

/* The base64 and hex texts of BITS into OUT, which holds
 * IH_HASHENC_BASE64_LEN or IH_HASHENC_HEX_LEN(bits->nbits) bytes. */
void ih_hashenc_base64(const ih_bits *bits, char *out);
void ih_hashenc_hex(const ih_bits *bits, char *out);

/* Decodes the LEN characters at S (no NUL needed), standard base64 with
 * padding, into OUT, which holds OUTMAX bytes; *OUTLEN (may be NULL) gets
 * the count.  Returns 0, or -1 with OUT undefined when S is not what
 * ih_hashenc_base64 writes: LEN not a multiple of 4, a character outside
 * A-Z a-z 0-9 + /, '=' anywhere but as the last one or two, bits set in
 * the padding, or more than OUTMAX bytes.  The empty text is 0 bytes. */
int ih_hashenc_parse_base64(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen);

/* Decodes the LEN hex digits at S (either case) into the big-endian bytes of
 * their number, ceil(LEN/2) of them (an odd count has a leading zero
 * nibble).  These hold bit[0] as the number's highest bit: not the order of
 * ih_hashenc_bytes.  Returns 0, or -1 for a character that is not a hex
 * digit or more than OUTMAX bytes. */
int ih_hashenc_parse_hex(const char *s, size_t len, unsigned char *out, size_t outmax, size_t *outlen);

#endif
