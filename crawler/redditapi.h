/* redditapi.h -- reddit listings: submissions as items, their pictures, the
 * paging cursors.  Pure parsing, no I/O (src_reddit.c does the requests).
 *
 * A listing (/r/<sub>/new.json) is {"kind": "Listing", "data": {"after",
 * "before", "children": [{"kind": "t3", "data": {...}}, ...]}}.  Each t3
 * child's data is one submission; redditapi_item turns it into an item in
 * place (design.md, "An item"): the site's fields as sent plus _v, _id (the
 * submission's id, "5jo13y"), _chan, _board, _type "submission",
 * _crawled_at, _urls and _files.
 *
 * _urls holds the submission's pictures first, counted by _files:
 *   - a gallery: gallery_data.items[].media_id, in that order, each looked
 *     up in media_metadata: https://i.redd.it/<media_id>.<ext> when its "m"
 *     (or the site's file_url, below)
 *     is "image/<ext>", else its s.u (or s.gif) URL;
 *   - else its "url" when that is a picture: an i.redd.it or i.imgur.com
 *     file with a picture extension, or any i.reddituploads.com URL;
 *   - else the preview's images[0].source.url;
 * then every http(s) link of "selftext" (markdown: bare URLs, [t](url),
 * <url>).  Every URL is HTML-unescaped (&amp; -> &; listings fetched without
 * raw_json=1 escape them), stripped of user info, and appears once.
 *
 * The body is checked with jsonscan before anything is handed out; then
 * each child is measured and parsed alone (jsonscan.h), so a listing of any
 * length costs at most one child's tree, max_tree bytes with the child
 * printed again; a child above it is refused (counted, passed over).
 *
 * Ownership: redditapi_listing_each lends each submission to its callback
 * (take a reference with json_object_get to keep it);
 * redditapi_listing_parse fills a listing whose subs it owns, released with
 * redditapi_listing_release.
 */
#ifndef IMGFEED_REDDITAPI_H
#define IMGFEED_REDDITAPI_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define REDDITAPI_ID_MAX 24 /* an id ("5jo13y") or a fullname ("t3_5jo13y"), with its NUL */

typedef struct redditapi_listing {
    json_object **subs;             /* redditapi_listing_parse: data of each valid t3 child, in listing order */
    size_t nsubs;                   /* valid t3 children */
    size_t nchildren;               /* children in all, the refused ones too */
    size_t nrefused;                /* children that are no submission (not t3, no data, bad id) */
    char first_refused[200];        /* why the first refused child was refused, or "" */
    char after[REDDITAPI_ID_MAX];   /* data.after ("t3_..."), or "" when null or absent */
    char before[REDDITAPI_ID_MAX];  /* data.before, or "" */
} redditapi_listing;

/* What redditapi_listing_each hands each submission to: SUB, the data of a
 * valid t3 child, is lent for the call.  Nonzero stops the walk. */
typedef int (*redditapi_sub_fn)(void *arg, json_object *sub);

/* Walk a listing body of LEN bytes, each child's json-c tree (printed again)
 * within MAX_TREE bytes (0: no limit), calling FN with each submission in
 * listing order; OUT gets the cursors and the counts (its subs stay NULL).
 * 0 after the last child, FN's nonzero return when it stopped the walk, or
 * -1 with WHY before any call ("not JSON: ...", "not a Listing",
 * "data.children is not an array").  A child that is no valid submission,
 * or too complex, is counted in nrefused and passed over. */
int redditapi_listing_each(const char *body, size_t len, uint64_t max_tree, redditapi_listing *out,
                           redditapi_sub_fn fn, void *arg, char *why, size_t whylen);
/* The same walk, every submission kept in OUT->subs.  0, or -1 with WHY. */
int redditapi_listing_parse(const char *body, size_t len, uint64_t max_tree, redditapi_listing *out, char *why,
                            size_t whylen);
void redditapi_listing_release(redditapi_listing *l);

/* The id of submission data SUB (a string of [0-9a-z], at most 20 bytes),
 * or NULL. */
const char *redditapi_sub_id(json_object *sub);

/* Where a gallery's pictures are: {tim} is the media_id, {ext} ".png".  A
 * site may give its own (the kind's template "file_url"); then a "url"
 * under it is a picture too. */
#define REDDITAPI_FILE_URL "https://i.redd.it/{tim}{ext}"

/* The _urls of submission SUB as a new array, *NFILES its leading pictures.
 * FILE_URL: as above, NULL for REDDITAPI_FILE_URL. */
json_object *redditapi_sub_urls(json_object *sub, const char *file_url, size_t *nfiles);

/* Turn SUB into an item in place (see the top). */
void redditapi_item(json_object *sub, const char *site, const char *board, const char *file_url,
                    int64_t crawled_at);

/* Append to URLS (a json array) every http(s) link of markdown TEXT (LEN
 * bytes) that URLS does not hold yet, unescaped and without user info. */
void redditapi_text_links(const char *text, size_t len, json_object *urls);

/* TEXT with the HTML entities &amp; &lt; &gt; &quot; &#39; &#x27; &#NN;
 * decoded: a new string the caller frees. */
char *redditapi_unescape(const char *text, size_t len);

/* How long to wait before the next request, from X-Ratelimit-Remaining and
 * X-Ratelimit-Reset (either may be NULL): the reset's seconds, in ms, when
 * fewer than one request remains; else 0. */
int64_t redditapi_ratelimit_wait_ms(const char *remaining, const char *reset);

#endif
