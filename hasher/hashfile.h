/* hashfile.h -- one `_img` entry from a file's bytes.
 *
 * hashfile_describe() is the whole per-file job shared by the consumer and
 * `imgfeed-hasher hash`: detect the format, checksum, decode to gray, compute
 * the four perceptual hashes, and write the fields of design.md's `_img`
 * entry into a JSON object the caller made (so the caller puts "url" or
 * "file" first).  A failure writes "error" instead and still says what it
 * can (size and checksums of a file that is not an image are worth keeping).
 */
#ifndef IMGFEED_HASHFILE_H
#define IMGFEED_HASHFILE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "imgformat.h"

#define HASHFILE_DEFAULT_MAX_BYTES (64 * 1024 * 1024)
#define HASHFILE_DEFAULT_MAX_PIXELS (128 * 1000 * 1000)

typedef struct hashfile_options {
    uint64_t max_bytes;  /* larger files get "too large" */
    uint64_t max_pixels; /* larger images get "too many pixels: ..." */
    int hash_size;       /* ahash, dhash, phash; whash per imagehash_whash_size() */
    bool hex;            /* also write ahash_hex ... whash_hex (the CLI does) */
} hashfile_options;

void hashfile_options_init(hashfile_options *options);

/* What the caller may want besides the JSON: the format and the checksums
 * (valid whenever checksummed is true), for --save-dir and md5 checks. */
typedef struct hashfile_result {
    bool ok; /* no "error" was written */
    bool checksummed;
    img_format format;
    checksum_set sums;
} hashfile_result;

/* Describes the LEN bytes at DATA into ENTRY (fields are added in design.md's
 * order: size, width, height, format, crc32, md5, sha1, ahash, dhash, phash,
 * whash, then the hex forms).  Returns 0 when the entry has no error, -1 when
 * it got an "error" field.  RESULT may be NULL.  Never fails silently; safe
 * to call from many threads at once. */
int hashfile_describe(json_object *entry, const unsigned char *data, size_t len,
                      const hashfile_options *options, hashfile_result *result);

/* The most heap memory hashfile_describe() takes for the LEN bytes at DATA
 * (the bytes themselves not included), judged from the header alone: the
 * larger of the decoder's peak (decode_working_bytes) and the gray image
 * with the hashes' working memory (imagehash_working_bytes), plus a small
 * fixed part.  Reads only the header, so the hasher's main thread calls it
 * before giving the file to a hashing thread, to reserve that memory from
 * its budget.  Safe to call from many threads at once. */
uint64_t hashfile_working_bytes(const unsigned char *data, size_t len, const hashfile_options *options);

#endif
