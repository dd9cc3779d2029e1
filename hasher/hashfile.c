/* hashfile.c -- one `_img` entry from a file's bytes.
 *
 * The steps, each of which can end the entry with an "error":
 *   1. size, and the byte limit ("too large");
 *   2. crc32, md5, sha1 (checksum.c) -- kept even when the rest fails, since
 *      they identify the file a site served;
 *   3. the format from the magic bytes (imgformat.c): unknown bytes are "not
 *      an image", videos stop here with their checksums;
 *   4. the dimensions from the header, then the gray image (decode.c), which
 *      refuses too many pixels before allocating them;
 *   5. the four perceptual hashes of that one gray image (imagehash.c), in
 *      chan_feed's base64 and, when asked, imagehash's hex (hashenc.c).
 * Fields are added in design.md's order, so the JSON reads the same as the
 * example there.
 */
#include "hashfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "hashenc.h"
#include "imagehash.h"

/* The entry, the hash set and the checksums' contexts: what describing any
 * file takes besides decoding and hashing. */
#define HASHFILE_FIXED_BYTES (64 * 1024)

void hashfile_options_init(hashfile_options *options) {
    memset(options, 0, sizeof *options);
    options->max_bytes = HASHFILE_DEFAULT_MAX_BYTES;
    options->max_pixels = HASHFILE_DEFAULT_MAX_PIXELS;
    options->hash_size = IMAGEHASH_DEFAULT_SIZE;
}

static void hashfile_add_string(json_object *entry, const char *key, const char *value) {
    json_object_object_add(entry, key, json_object_new_string(value));
}

static int hashfile_fail(json_object *entry, const char *reason) {
    hashfile_add_string(entry, "error", reason);
    return -1;
}

static void hashfile_add_sums(json_object *entry, const checksum_set *sums) {
    hashfile_add_string(entry, "crc32", sums->crc32_hex);
    hashfile_add_string(entry, "md5", sums->md5_hex);
    hashfile_add_string(entry, "sha1", sums->sha1_hex);
}

static void hashfile_add_hash(json_object *entry, const char *key, const imagehash_bits *bits,
                              bool hex) {
    char text[HASHENC_BASE64_LEN(IMAGEHASH_MAX_BITS)];
    if (hex) {
        char name[16];
        hashenc_hex(bits, text);
        snprintf(name, sizeof name, "%s_hex", key);
        hashfile_add_string(entry, name, text);
    } else {
        hashenc_base64(bits, text);
        hashfile_add_string(entry, key, text);
    }
}

static void hashfile_add_hashes(json_object *entry, const imagehash_set *set, bool hex) {
    hashfile_add_hash(entry, "ahash", &set->ahash, hex);
    hashfile_add_hash(entry, "dhash", &set->dhash, hex);
    hashfile_add_hash(entry, "phash", &set->phash, hex);
    hashfile_add_hash(entry, "whash", &set->whash, hex);
}

/* Steps 4 and 5: dimensions, gray image, hashes. */
static int hashfile_describe_image(json_object *entry, const unsigned char *data, size_t len,
                                   const hashfile_options *options, const checksum_set *sums,
                                   img_format format) {
    char err[DECODE_ERROR_MAX];
    int width, height;
    if (decode_dimensions(data, len, format, &width, &height, err) < 0) {
        hashfile_add_string(entry, "format", imgformat_name(format));
        hashfile_add_sums(entry, sums);
        return hashfile_fail(entry, err);
    }
    json_object_object_add(entry, "width", json_object_new_int(width));
    json_object_object_add(entry, "height", json_object_new_int(height));
    hashfile_add_string(entry, "format", imgformat_name(format));
    hashfile_add_sums(entry, sums);

    gray_image gray;
    if (decode_gray(data, len, format, options->max_pixels, &gray, err) < 0)
        return hashfile_fail(entry, err);
    imagehash_set *set = malloc(sizeof *set);
    int status = set ? imagehash_compute(&gray, options->hash_size, set) : -1;
    gray_image_release(&gray);
    if (status < 0) {
        free(set);
        return hashfile_fail(entry, "cannot compute hashes: out of memory");
    }
    hashfile_add_hashes(entry, set, false);
    if (options->hex) hashfile_add_hashes(entry, set, true);
    free(set);
    return 0;
}

int hashfile_describe(json_object *entry, const unsigned char *data, size_t len,
                      const hashfile_options *options, hashfile_result *result) {
    hashfile_result local;
    if (!result) result = &local;
    memset(result, 0, sizeof *result);

    json_object_object_add(entry, "size", json_object_new_int64((int64_t)len));
    if (options->max_bytes && len > options->max_bytes) return hashfile_fail(entry, "too large");

    checksum_compute(data, len, &result->sums);
    result->checksummed = true;
    result->format = imgformat_detect(data, len);
    if (result->format == IMG_FORMAT_UNKNOWN) {
        hashfile_add_sums(entry, &result->sums);
        return hashfile_fail(entry, len == 0 ? "empty file" : "not an image");
    }
    if (imgformat_is_video(result->format)) {
        hashfile_add_string(entry, "format", imgformat_name(result->format));
        hashfile_add_sums(entry, &result->sums);
        result->ok = true;
        return 0;
    }
    if (hashfile_describe_image(entry, data, len, options, &result->sums, result->format) < 0)
        return -1;
    result->ok = true;
    return 0;
}

uint64_t hashfile_working_bytes(const unsigned char *data, size_t len, const hashfile_options *options) {
    if (options->max_bytes && len > options->max_bytes) return 0;
    img_format format = imgformat_detect(data, len);
    if (format == IMG_FORMAT_UNKNOWN || imgformat_is_video(format)) return HASHFILE_FIXED_BYTES;
    int width, height;
    uint64_t decoding = decode_working_bytes(data, len, format, options->max_pixels, &width, &height);
    if (decoding == 0) return HASHFILE_FIXED_BYTES;
    uint64_t hashing = (uint64_t)width * (uint64_t)height + imagehash_working_bytes(width, height, options->hash_size);
    return (decoding > hashing ? decoding : hashing) + HASHFILE_FIXED_BYTES;
}
