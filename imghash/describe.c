/* describe.c -- one `_img` entry from a file's bytes (ih_describe*).
 *
 * The steps, each of which can end the entry with an "error":
 *   1. size, and the byte limit ("too large");
 *   2. crc32, md5, sha1 (checksum.c) -- kept even when the rest fails, since
 *      they identify the file that was served;
 *   3. the format from the magic bytes (format.c): unknown bytes are "not
 *      an image", videos stop here with their checksums;
 *   4. the gray image (decode.c), which refuses too many pixels from the
 *      header before allocating them, and gives the dimensions (when it
 *      fails, the header is read alone for them);
 *   5. the four perceptual hashes of that one gray image (hashes.c), in
 *      the entry's base64 and, when asked, imagehash's hex (hashenc.c);
 *   6. the colour summary the decoder added up (decode.h, ih_colour):
 *      rgb_mean, brightness (numbers written with 3 decimals, as printf's
 *      and Python's "%.3f" round the same double) and rgb_hist.
 * Fields are added in design.md's order, so the JSON reads the same as the
 * example there.
 */
#include "describe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "hashenc.h"
#include "hashes.h"
#include "pixbuf.h"

/* The entry, the hash set and the checksums' contexts: what describing any
 * file takes besides decoding and hashing. */
#define DESCRIBE_FIXED_BYTES (64 * 1024)

void ih_options_init(ih_options *options) {
    memset(options, 0, sizeof *options);
    options->max_bytes = IH_DEFAULT_MAX_BYTES;
    options->max_pixels = IH_DEFAULT_MAX_PIXELS;
    options->hash_size = IH_HASH_DEFAULT_SIZE;
}

static void describe_add_string(json_object *entry, const char *key, const char *value) {
    json_object_object_add(entry, key, json_object_new_string(value));
}

static int describe_fail(json_object *entry, const char *reason) {
    describe_add_string(entry, "error", reason);
    return -1;
}

static void describe_add_sums(json_object *entry, const ih_checksums *sums) {
    describe_add_string(entry, "crc32", sums->crc32_hex);
    describe_add_string(entry, "md5", sums->md5_hex);
    describe_add_string(entry, "sha1", sums->sha1_hex);
}

static void describe_add_hash(json_object *entry, const char *key, const ih_bits *bits, bool hex) {
    char text[IH_HASHENC_BASE64_LEN(IH_HASH_MAX_BITS)];
    if (hex) {
        char name[16];
        ih_hashenc_hex(bits, text);
        snprintf(name, sizeof name, "%s_hex", key);
        describe_add_string(entry, name, text);
    } else {
        ih_hashenc_base64(bits, text);
        describe_add_string(entry, key, text);
    }
}

static void describe_add_hashes(json_object *entry, const ih_hashes *set, bool hex) {
    describe_add_hash(entry, "ahash", &set->ahash, hex);
    describe_add_hash(entry, "dhash", &set->dhash, hex);
    describe_add_hash(entry, "phash", &set->phash, hex);
    describe_add_hash(entry, "whash", &set->whash, hex);
}

/* A number written as "%.3f" gives it (json-c keeps the text). */
static json_object *describe_number3(double value) {
    char text[64];
    snprintf(text, sizeof text, "%.3f", value);
    return json_object_new_double_s(value, text);
}

/* Step 6: rgb_mean [R, G, B], brightness, rgb_hist [R bins 0..7, G, B]. */
static void describe_add_colour(json_object *entry, const ih_colour *colour) {
    json_object *mean = json_object_new_array_ext(3);
    for (int c = 0; c < 3; c++)
        json_object_array_add(mean, describe_number3(ih_colour_mean(colour, c)));
    json_object_object_add(entry, "rgb_mean", mean);
    json_object_object_add(entry, "brightness", describe_number3(ih_colour_mean(colour, 3)));
    json_object *hist = json_object_new_array_ext(3 * IH_COLOUR_BINS);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < IH_COLOUR_BINS; k++)
            json_object_array_add(hist, json_object_new_int64((int64_t)colour->hist[c][k]));
    json_object_object_add(entry, "rgb_hist", hist);
}

/* Steps 4 to 6: dimensions, gray image, hashes, colour.  The gray image
 * gives the dimensions; only when decoding fails is the header read on its
 * own, for an entry that still says what it can (a second parse of every
 * header costs a small picture a few percent of its time). */
static int describe_image(json_object *entry, const unsigned char *data, size_t len, const ih_options *options,
                          const ih_checksums *sums, ih_format format) {
    char err[IH_DECODE_ERROR_MAX];
    ih_gray gray;
    if (ih_decode_gray(data, len, format, options->max_pixels, &gray, err) < 0) {
        char why[IH_DECODE_ERROR_MAX];
        int width, height;
        if (ih_decode_dimensions(data, len, format, &width, &height, why) < 0) {
            describe_add_string(entry, "format", ih_format_name(format));
            describe_add_sums(entry, sums);
            return describe_fail(entry, why); /* the header's own fault, as before decoding */
        }
        json_object_object_add(entry, "width", json_object_new_int(width));
        json_object_object_add(entry, "height", json_object_new_int(height));
        describe_add_string(entry, "format", ih_format_name(format));
        describe_add_sums(entry, sums);
        return describe_fail(entry, err);
    }
    json_object_object_add(entry, "width", json_object_new_int(gray.width));
    json_object_object_add(entry, "height", json_object_new_int(gray.height));
    describe_add_string(entry, "format", ih_format_name(format));
    describe_add_sums(entry, sums);

    ih_hashes *set = malloc(sizeof *set);
    int status = set ? ih_hashes_compute(&gray, options->hash_size, set) : -1;
    ih_colour colour = gray.colour;
    ih_gray_release(&gray);
    if (status < 0) {
        free(set);
        return describe_fail(entry, "cannot compute hashes: out of memory");
    }
    describe_add_hashes(entry, set, false);
    describe_add_colour(entry, &colour);
    if (options->hex) describe_add_hashes(entry, set, true);
    free(set);
    return 0;
}

int ih_describe(json_object *entry, const unsigned char *data, size_t len, const ih_options *options,
                ih_result *result) {
    ih_result local;
    if (!result) result = &local;
    memset(result, 0, sizeof *result);

    json_object_object_add(entry, "size", json_object_new_int64((int64_t)len));
    if (options->max_bytes && len > options->max_bytes) return describe_fail(entry, "too large");

    if (ih_checksum_compute(data, len, &result->sums) < 0)
        return describe_fail(entry, "cannot compute checksums: out of memory");
    result->checksummed = true;
    result->format = ih_format_detect(data, len);
    if (result->format == IH_FORMAT_UNKNOWN) {
        describe_add_sums(entry, &result->sums);
        return describe_fail(entry, len == 0 ? "empty file" : "not an image");
    }
    if (ih_format_is_video(result->format)) {
        describe_add_string(entry, "format", ih_format_name(result->format));
        describe_add_sums(entry, &result->sums);
        result->ok = true;
        return 0;
    }
    if (describe_image(entry, data, len, options, &result->sums, result->format) < 0) return -1;
    result->ok = true;
    return 0;
}

uint64_t ih_describe_working_bytes(const unsigned char *data, size_t len, const ih_options *options) {
    if (options->max_bytes && len > options->max_bytes) return 0;
    ih_format format = ih_format_detect(data, len);
    if (format == IH_FORMAT_UNKNOWN || ih_format_is_video(format)) return DESCRIBE_FIXED_BYTES;
    int width, height;
    uint64_t decoding = ih_decode_working_bytes(data, len, format, options->max_pixels, &width, &height);
    if (decoding == 0) return DESCRIBE_FIXED_BYTES;
    uint64_t hashing = ih_pixbuf_bytes((uint64_t)width * (uint64_t)height) +
                       ih_hashes_working_bytes(width, height, options->hash_size);
    return (decoding > hashing ? decoding : hashing) + DESCRIBE_FIXED_BYTES;
}
