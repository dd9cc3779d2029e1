/* entry.h -- an `_img` entry as the catalog takes it.
 *
 * The same fields arrive two ways: as strings from the archive (the
 * loader's COPY) and as json-c values from a message (the queue).  Both go
 * through entry_from_fields, so an image is read the same way whichever
 * way it came: phash and dhash as `_img` writes them (base64 of the
 * big-endian integer, imghash's ih_hashenc_parse_base64), sha1 and md5 as
 * lower- or upper-case hex.  A malformed field is left out (and counted by
 * the caller), never guessed at.
 */
#ifndef IMGFEED_SEARCH_ENTRY_H
#define IMGFEED_SEARCH_ENTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "catalog.h"

/* Fills OUT from the fields (any may be NULL).  Returns true when OUT has a
 * phash or a dhash (an image search can find); *BAD counts the fields that
 * were present but malformed. */
bool entry_from_fields(uint32_t n, const char *phash, const char *dhash, const char *sha1, const char *md5,
                       catalog_image *out, unsigned *bad);

/* The same from an `_img` entry of a message (its "url" is n); false as
 * above, and for an entry that is not an object or has no valid "url". */
bool entry_from_json(json_object *e, catalog_image *out, unsigned *bad);

/* Decodes a hash as `_img` writes it (base64) into OUT (CATALOG_HASH_MAX
 * bytes); 0 with *LEN, or -1. */
int entry_hash_decode(const char *s, unsigned char *out, size_t *len);
/* Decodes N bytes of hex (exactly 2N digits) into OUT; 0 or -1. */
int entry_hex_decode(const char *s, unsigned char *out, size_t n);

#endif
