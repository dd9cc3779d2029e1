/* imagehash.h -- the four perceptual hashes of Python's imagehash 4.3.
 *
 * imagehash_compute() takes the gray image (decode.h) and gives, bit for
 * bit, what imagehash's average_hash, dhash, phash and whash give for the
 * same image with Pillow 9.4, numpy, scipy 1.10 and pywt (design.md,
 * "Perceptual hashes").  The gray image is shared: each hash only resizes it
 * (resample.c) and then works on the small result (dct.c for phash, haar.c
 * for whash).
 *
 * Bits are stored one a byte (0 or 1), flattened row by row, in imagehash's
 * order.  hashenc.h turns them into chan_feed's base64 and imagehash's hex.
 */
#ifndef IMGFEED_IMAGEHASH_H
#define IMGFEED_IMAGEHASH_H

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

#define IMAGEHASH_MAX_SIZE 32
#define IMAGEHASH_MAX_BITS (IMAGEHASH_MAX_SIZE * IMAGEHASH_MAX_SIZE)
#define IMAGEHASH_DEFAULT_SIZE 12

typedef struct imagehash_bits {
    int nbits;
    unsigned char bit[IMAGEHASH_MAX_BITS];
} imagehash_bits;

typedef struct imagehash_set {
    int hash_size;  /* ahash, dhash and phash */
    int whash_size; /* a power of two */
    imagehash_bits ahash, dhash, phash, whash;
} imagehash_set;

/* True when HASH_SIZE can be computed exactly (see imagehash.c for which
 * sizes the DCT supports); ERR gets the reason otherwise. */
bool imagehash_size_supported(int hash_size, const char **why);

/* The whash size used with HASH_SIZE: the largest power of two not above
 * it (12 gives 8, as design.md asks; 8 and 16 give themselves). */
int imagehash_whash_size(int hash_size);

/* Computes all four hashes of IMAGE at HASH_SIZE into OUT.  Returns 0, or -1
 * when HASH_SIZE is not supported or memory for a large whash resize cannot
 * be had. */
int imagehash_compute(const gray_image *image, int hash_size, imagehash_set *out);

/* The most heap memory imagehash_compute() takes for a WIDTH x HEIGHT gray
 * image at HASH_SIZE, the image itself not included (an upper bound, for
 * the hasher's memory budget). */
uint64_t imagehash_working_bytes(int width, int height, int hash_size);

#endif
