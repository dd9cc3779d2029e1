/* event.h -- what a viewer is told of an item: its hashed pictures, where it
 * came from, a little of its text.
 *
 * event_make turns one archived-form item (docs/design.md, "An item": the
 * site's fields plus _id, _chan, _board, _type, _crawled_at, _urls, _img)
 * into the JSON of one Server-Sent Event, or nothing when the item has no
 * hashed picture:
 *
 *   {"key": "4chan.post.g", "id": "g.123", "site": "4chan", "board": "g",
 *    "type": "post", "time": 1790000000, "nsfw": false,
 *    "text": "the subject and comment as plain text, cut",
 *    "link": "https://www.reddit.com/r/…" (when the item names one),
 *    "images": [{"url", "file" (with a save dir), "width", "height",
 *                "format", "size", "sha1", "md5", "crc32", "ahash",
 *                "dhash", "phash", "whash"}, …]}
 *
 * - images: the _img entries with a phash (pictures, not videos or
 *   failures), at most EVENT_IMAGES_MAX, each with its URL from _urls
 *   (http or https only; another scheme drops the picture).  "file" is
 *   /files/<sha1>.<ext> when the server serves the hasher's save dir.
 * - time, text (cut to EVENT_TEXT_MAX bytes), link and nsfw (the item
 *   says so, or its routing key matches one of the NSFW topics given) are
 *   common/itemview.h's, the same search shows.  The page shows the text as
 *   text.
 *
 * Pure: no I/O.  Every string comes from json-c, so the output is valid JSON
 * on one line whatever the item holds.
 */
#ifndef IMGFEED_EVENT_H
#define IMGFEED_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define EVENT_TEXT_MAX 400
#define EVENT_IMAGES_MAX 16

typedef struct event_rules {
    const char *const *nsfw_topics; /* NULL-terminated binding keys; may be NULL */
    bool files;                     /* add "file" (/files/<sha1>.<ext>) to each picture */
} event_rules;

/* The event of ITEM published under routing key KEY, a new string the caller
 * frees (*LEN its length), or NULL when the item has no hashed picture. */
char *event_make(const event_rules *rules, const char *key, json_object *item, size_t *len);

/* The file extension the hasher's save dir gives FORMAT ("jpeg" -> "jpg"),
 * or NULL for a format it does not know. */
const char *event_format_ext(const char *format);

#endif
