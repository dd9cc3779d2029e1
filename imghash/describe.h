/* describe.h -- one `_img` entry from a file's bytes (ih_describe*,
 * ih_options, ih_result).
 *
 * ih_describe() is the whole per-file job, the same for every program that
 * hashes a file (a download, a local file, a query image): detect the
 * format, checksum, decode to gray, compute the four perceptual hashes and
 * the colour summary, and write the fields of docs/design.md's `_img` entry into a JSON object the
 * caller made (so the caller puts its own fields, such as "url" or "file",
 * first).  A failure writes "error" instead and still says what it can
 * (size and checksums of a file that is not an image are worth keeping).
 */
#ifndef IH_DESCRIBE_H
#define IH_DESCRIBE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "format.h"

#define IH_DEFAULT_MAX_BYTES (64 * 1024 * 1024)
#define IH_DEFAULT_MAX_PIXELS (128 * 1000 * 1000)

typedef struct ih_options {
    uint64_t max_bytes;  /* larger files get "too large" */
    uint64_t max_pixels; /* larger images get "too many pixels: ..." */
    int hash_size;       /* ahash, dhash, phash; whash per ih_hashes_whash_size() */
    bool hex;            /* also write ahash_hex ... whash_hex */
} ih_options;

/* Sets OPTIONS to the defaults: IH_DEFAULT_MAX_BYTES, IH_DEFAULT_MAX_PIXELS,
 * IH_HASH_DEFAULT_SIZE, no hex. */
void ih_options_init(ih_options *options);

/* What the caller may want besides the JSON: the format and the checksums
 * (valid whenever checksummed is true), to store the file or to compare it
 * with an md5 given for it. */
typedef struct ih_result {
    bool ok; /* no "error" was written */
    bool checksummed;
    ih_format format;
    ih_checksums sums;
} ih_result;

/* Describes the LEN bytes at DATA into ENTRY (fields are added in design.md's
 * order: size, width, height, format, crc32, md5, sha1, ahash, dhash, phash,
 * whash, rgb_mean, brightness, rgb_hist, then the hex forms).  Returns 0 when the entry has no error, -1 when
 * it got an "error" field.  RESULT may be NULL.  Never fails silently; safe
 * to call from many threads at once. */
int ih_describe(json_object *entry, const unsigned char *data, size_t len, const ih_options *options,
                ih_result *result);

/* The most heap memory ih_describe() takes for the LEN bytes at DATA
 * (the bytes themselves not included), judged from the header alone: the
 * larger of the decoder's peak (ih_decode_working_bytes) and the gray image
 * with the hashes' working memory (ih_hashes_working_bytes), plus a small
 * fixed part.  Reads only the header, so a caller that bounds its memory
 * (the hasher's main thread) calls it before giving the file to a hashing
 * thread, to reserve that memory first.  Safe to call from many threads at
 * once. */
uint64_t ih_describe_working_bytes(const unsigned char *data, size_t len, const ih_options *options);

#endif
