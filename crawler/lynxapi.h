/* lynxapi.h -- the JSON of LynxChan boards (Endchan and others), read into
 * thread lists and items (design.md, "An item").
 *
 * Pure functions: no I/O, no logging, no global state; src_lynxchan.c
 * fetches, these parse.  LynxChan's JSON API:
 *   - {api}/{board}/catalog.json: an array of thread objects, each with an
 *     integer threadId and, in the versions seen, lastBump (an ISO 8601
 *     date string, "2026-06-07T20:44:00.000Z"), postCount and fileCount.
 *   - {api}/{board}/res/{threadId}.json: the thread object itself (the
 *     opening post: threadId, creation, message, markdown, files[]) with its
 *     replies in "posts" (postId, creation, message, markdown, files[]).
 *   - files[].path is "/.media/<hash>.<ext>", joined onto the site's media
 *     base.  The name is the site's, not a checksum the hasher could verify.
 *
 * An item is the site's object itself, every field as sent, plus _v 1, _id
 * "<board>.<threadId or postId>", _chan, _board, _type ("thread" for the
 * opening post, "post" for a reply), _crawled_at, _urls and _files.  The
 * opening post's item is the thread object without its "posts" array (each
 * reply is an item of its own).  _urls holds the file URLs (files[] entries
 * whose path is a non-empty string; others are passed over), then the
 * http(s) links of "markdown" (HTML) and "message" (text), as
 * chanapi_comment_links finds them, each once; _files counts the first.
 *
 * Memory: a body is checked and measured by jsonscan first and refused as
 * "too complex" when its tree, printed again, would take more than max_tree
 * bytes (0: no limit).  Errors come back as NULL or -1 with a one-line
 * reason in `why`.
 */
#ifndef IMGFEED_LYNXAPI_H
#define IMGFEED_LYNXAPI_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* One thread of a board's catalog. */
typedef struct lynxapi_thread_ref {
    int64_t id;        /* threadId, >= 1 */
    int64_t last_bump; /* lastBump in UNIX milliseconds; -1 when absent or not a date */
    int64_t posts;     /* postCount; -1 when absent or not an integer */
} lynxapi_thread_ref;

/* Parse catalog.json (LEN bytes; no NUL needed): an array of objects with an
 * integer threadId >= 1.  Threads in the site's order.  0 with *out a
 * malloc'd array of *n refs the caller frees (NULL when *n is 0), or -1
 * with *out NULL, *n 0 and why: not JSON, not an array, an entry that is
 * not an object or has no integer threadId, too complex. */
int lynxapi_parse_catalog(const char *body, size_t len, uint64_t max_tree, lynxapi_thread_ref **out, size_t *n,
                          char *why, size_t whylen);

/* "2026-06-07T20:44:00.000Z" (also without fraction, or with an offset
 * "+02:00") -> UNIX milliseconds, or -1 when S is not such a date. */
int64_t lynxapi_parse_date(const char *s);

/* What the item builder needs of a site, borrowed for the call. */
typedef struct lynxapi_site {
    const char *name;  /* site name, as in the routing key */
    const char *media; /* base that files[].path is joined onto ("https://endchan.net") */
    uint64_t max_tree; /* 0: no limit */
} lynxapi_site;

/* Parse a thread (res/{threadId}.json) into its items, the opening post
 * first, then the replies in the site's order: a new json array the caller
 * json_object_put's.  NULL with why when the body is not JSON, not an
 * object, has no integer threadId >= 1, a "posts" that is not an array, a
 * reply that is not an object or has no integer postId >= 1, or is too
 * complex. */
json_object *lynxapi_parse_thread(const lynxapi_site *site, const char *board, const char *body, size_t len,
                                  int64_t crawled_at, char *why, size_t whylen);

/* The _urls of one LynxChan post object: a new json array (caller puts it);
 * *nfiles gets the number of leading file URLs. */
json_object *lynxapi_post_urls(const lynxapi_site *site, const json_object *post, size_t *nfiles);

#endif
