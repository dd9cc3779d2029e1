/* itemtext.h -- the text of each item, made acceptable to PostgreSQL's jsonb.
 *
 * The archiver stores each item's JSON text as the message carried it
 * (numbers keep every digit, keys their order until jsonb sorts them), so
 * it cuts the body into item texts (items_split, common/items.h) instead of
 * printing the parsed tree again.
 *
 * JSON that json-c accepts but jsonb refuses is mended on the way
 * (itemtext_repair), and nothing is lost:
 *   - a raw control character inside a string is written as its \u00XX
 *     escape (the same text, spelled as JSON requires);
 *   - \u0000 is removed: jsonb cannot hold it;
 *   - an escaped surrogate without its pair becomes \ufffd, and a byte
 *     sequence that is not UTF-8 becomes U+FFFD;
 * and when text was removed or replaced, the item gains
 * "_repaired": {"nul": N, "utf8": M} saying how much.  NaN and Infinity,
 * which json-c takes for numbers, are refused: they are not JSON.
 */
#ifndef IMGFEED_ITEMTEXT_H
#define IMGFEED_ITEMTEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct itemtext_repairs {
    size_t nul;  /* \u0000 removed */
    size_t utf8; /* lone surrogates and invalid byte sequences replaced by U+FFFD */
} itemtext_repairs;

/* Room itemtext_repair may need for an item of LEN bytes. */
#define ITEMTEXT_REPAIR_ROOM(len) (3 * (len) + 96)

/* Write the jsonb-safe form of the object text ITEM (LEN bytes) to OUT, which
 * has ITEMTEXT_REPAIR_ROOM(len) bytes, and count the repairs in *R.  Returns
 * the length written, or (size_t)-1 with a reason in WHY when the item
 * cannot be stored (NaN, Infinity). */
size_t itemtext_repair(const char *item, size_t len, char *out, itemtext_repairs *r, char *why, size_t whylen);

/* The same repairs on a decoded string (an _id as json-c gives it): NUL bytes
 * removed, invalid UTF-8 replaced by U+FFFD.  OUT has 3 * len + 1 bytes and is
 * NUL-terminated; returns its length. */
size_t itemtext_repair_string(const char *s, size_t len, char *out);

/* The length of the valid UTF-8 sequence at S (at most LEN bytes), as
 * PostgreSQL judges it; 0 when it is not one. */
size_t itemtext_utf8_len(const unsigned char *s, size_t len);

#endif
