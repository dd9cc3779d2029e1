/* hashes.h -- the four perceptual hashes of Python's imagehash 4.3
 * (ih_hashes_*).
 *
 * ih_hashes_compute() takes the gray image (decode.h) and gives, bit for
 * bit, what imagehash's average_hash, dhash, phash and whash give for the
 * same image with Pillow 9.4, numpy, scipy 1.10 and pywt (docs/design.md,
 * "Perceptual hashes").  The gray image is shared: each hash only resizes it
 * (resample.c) and then works on the small result (dct.c for phash, haar.c
 * for whash).
 *
 * Bits are stored one a byte (0 or 1), flattened row by row, in imagehash's
 * order.  hashenc.h turns them into bytes, the base64 of an `_img` entry and
 * imagehash's hex, and reads those forms back.
 */
#ifndef IH_HASHES_H
#define IH_HASHES_H

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

#define IH_HASH_MAX_SIZE 32
#define IH_HASH_MAX_BITS (IH_HASH_MAX_SIZE * IH_HASH_MAX_SIZE)
#define IH_HASH_DEFAULT_SIZE 12

typedef struct ih_bits {
    int nbits;
    unsigned char bit[IH_HASH_MAX_BITS];
} ih_bits;

typedef struct ih_hashes {
    int hash_size;  /* ahash, dhash and phash */
    int whash_size; /* a power of two */
    ih_bits ahash, dhash, phash, whash;
} ih_hashes;

/* True when HASH_SIZE can be computed exactly (see hashes.c for which
 * sizes the DCT supports); *WHY (may be NULL) gets the reason otherwise. */
bool ih_hashes_size_supported(int hash_size, const char **why);

/* The whash size used with HASH_SIZE: the largest power of two not above
 * it (12 gives 8, as design.md asks; 8 and 16 give themselves). */
int ih_hashes_whash_size(int hash_size);

/* Computes all four hashes of IMAGE at HASH_SIZE into OUT.  Returns 0, or -1
 * when HASH_SIZE is not supported or memory for a large whash resize cannot
 * be had. */
int ih_hashes_compute(const ih_gray *image, int hash_size, ih_hashes *out);

/* The most heap memory ih_hashes_compute() takes for a WIDTH x HEIGHT gray
 * image at HASH_SIZE, the image itself not included (an upper bound, for
 * a caller that bounds its memory). */
uint64_t ih_hashes_working_bytes(int width, int height, int hash_size);

#endif
