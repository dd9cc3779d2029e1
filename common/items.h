/* items.h -- the one check every stage makes of a message body.
 *
 * design.md: a message body is a JSON array of items, each an object with a
 * string `_id`.  A body that is not (not JSON, trailing text, an object
 * instead of an array, an item without `_id`) can never be processed and
 * goes to E.dead with the reason this check gives.  The hasher and the
 * archiver both call it, so they refuse exactly the same messages.
 */
#ifndef IMGFEED_ITEMS_H
#define IMGFEED_ITEMS_H

#include <stddef.h>

#include <json-c/json.h>

/* Parse BODY (LEN bytes) strictly.  Returns the array, which the caller
 * frees with json_object_put, or NULL with a one-line reason in WHY
 * ("not JSON: unexpected end of the text", "item 3 has no string _id"). */
json_object *items_parse(const char *body, size_t len, char *why, size_t whylen);

#endif
