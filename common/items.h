/* items.h -- the one check every stage makes of a message body.
 *
 * design.md: a message body is a JSON array of items, each an object with a
 * string `_id`.  A body that is not (not JSON, trailing text, an object
 * instead of an array, an item without `_id`) can never be processed and
 * goes to E.dead with the reason this check gives.  The hasher and the
 * archiver both call it, so they refuse exactly the same messages.
 *
 * items_split then cuts an accepted body into the text of each item, so that
 * a stage can pass an item on as it came (every digit of its numbers, its
 * keys in their order) instead of printing json-c's tree again: the
 * archiver stores those texts, the hasher appends `_img` to them.
 */
#ifndef IMGFEED_ITEMS_H
#define IMGFEED_ITEMS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "metrics.h"

/* Parse BODY (LEN bytes) strictly.  Returns the array, which the caller
 * frees with json_object_put, or NULL with a one-line reason in WHY
 * ("not JSON: unexpected end of the text", "item 3 has no string _id"). */
json_object *items_parse(const char *body, size_t len, char *why, size_t whylen);

typedef struct items_span {
    const char *text;
    size_t len;
} items_span;

/* The items of BODY, a JSON array of objects that items_parse accepted:
 * spans[i] is the text of item i, from its '{' to its '}'.  Fills at most
 * max spans and returns how many items there are; (size_t)-1 if BODY is not
 * an array of objects after all. */
size_t items_split(const char *body, size_t len, items_span *spans, size_t max);

/* Whether SPAN, an item's text, holds no member ("{}", "{ }"). */
bool items_span_is_empty(items_span span);

/* imgfeed_items_received_total: the items a consumer took from its queue
 * (those of messages items_parse accepted).  One name and meaning for the
 * hasher, the archiver, the live view and the search service. */
metrics_series *items_received_metric(void);

#endif
