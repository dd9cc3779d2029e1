/* chanapi.h -- the JSON of 4chan and vichan boards, read into thread lists
 * and items (design.md, "An item").
 *
 * Pure functions: no I/O, no logging, no global state; the crawler fetches,
 * these parse.  Two API families share one shape:
 *   - 4chan (a.4cdn.org): threads.json and catalog.json are arrays of pages
 *     {"page": 1, "threads": [...]}; a thread is /board/thread/N.json
 *     {"posts": [...]}; an index page /board/1.json is
 *     {"threads": [{"posts": [...]}, ...]}; `tim` is an integer.
 *   - vichan (lainchan and other vichan/Tinyboard boards): the same
 *     documents, pages numbered from 0 with "threads" before "page",
 *     threads at /board/res/N.json, `tim` a string ("1646887159530-0"),
 *     a deleted file as "ext": "deleted" with "tim": "", and more files of a
 *     post in `extra_files`.
 *
 * An item is the site's post object itself, every field as the site sent it
 * (json-c keeps integers as int64 and doubles with their original text, so
 * nothing passes through a double), plus _v, _id, _chan, _board, _type,
 * _crawled_at, _urls and _files.  _urls holds the post's file URLs, made from the
 * site's template, then the http(s) links of its comment, each once.
 *
 * Memory: json-c's tree costs far more than the text (3 bytes of "{}," take
 * about 800), so every body is first checked and measured by jsonscan
 * (common/jsonscan.h) and refused as "too complex" when its tree would take
 * more than max_tree bytes.  A thread is not parsed whole: chanapi_thread_each
 * parses and hands out one post at a time, so a thread of a million posts
 * needs the memory of its text and of one post, and max_tree applies to
 * each post: its tree and its text printed again (jsonscan_print_estimate).
 *
 * Errors come back as NULL or -1 with a one-line reason in `why` (which may
 * be NULL), such as "not JSON: unexpected end of data" or
 * "posts[3] has no integer no".
 */
#ifndef IMGFEED_CHANAPI_H
#define IMGFEED_CHANAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

typedef enum chanapi_kind { CHANAPI_4CHAN, CHANAPI_VICHAN } chanapi_kind;

/* "4chan" / "vichan" -> *out; false (and *out untouched) for any other name. */
bool chanapi_kind_from_name(const char *name, chanapi_kind *out);
/* The name of a kind: "4chan", "vichan" ("?" for a value outside the enum). */
const char *chanapi_kind_name(chanapi_kind kind);

/* One thread of a board's list. */
typedef struct chanapi_thread_ref {
    int64_t no;            /* the thread's number, >= 1 */
    int64_t last_modified; /* UNIX seconds; -1 when the site gives none */
    int64_t replies;       /* -1 when the site gives none */
} chanapi_thread_ref;

/* Parse a board's threads.json or catalog.json (len bytes of body; no NUL
 * needed): an array of pages, each an object with a "threads" array whose
 * entries have an integer "no" (>= 1) and may have integer "last_modified"
 * and "replies" (absent or not integers: -1).  Threads come in the site's
 * order, duplicates kept.  Returns 0 with *out a malloc'd array of *n
 * threads that the caller frees (NULL when *n is 0: a board whose pages are
 * all empty); or -1 with *out = NULL, *n = 0 and the reason in why: not
 * JSON, truncated, not an array, no pages at all, "page 2 has no threads
 * array", a thread without an integer no, a tree of more than MAX_TREE
 * bytes (0: no limit). */
int chanapi_parse_threads(const char *body, size_t len, uint64_t max_tree, chanapi_thread_ref **out, size_t *n,
                          char *why, size_t whylen);

/* What the item builder needs of a site.  Borrowed by the calls below only
 * for their duration. */
typedef struct chanapi_site {
    const char *name;     /* site name, as in the routing key: "4chan", "lainchan" ([a-z0-9_-]+) */
    chanapi_kind kind;    /* which rules find the files: CHANAPI_VICHAN also reads extra_files */
    const char *file_url; /* template of a file's URL: {board}, {tim} and {ext} are replaced, e.g.
                           * "https://i.4cdn.org/{board}/{tim}{ext}" or
                           * "https://lainchan.org/{board}/src/{tim}{ext}" */
    uint64_t max_tree;    /* largest json-c tree of a body (of a thread: one post, printed too); 0: no limit */
} chanapi_site;

/* Called with each item of a thread, in the site's order.  The item is
 * chanapi's and freed after the call (json_object_get it to keep it).
 * Return 0 to go on, anything else to stop the walk. */
typedef int (*chanapi_item_fn)(void *arg, json_object *item);

/* Walk a thread's body (see chanapi_parse_thread for what is accepted and
 * what an item is), parsing one post at a time and calling FN with each
 * item.  The whole body is checked first (syntax, the posts array), so a
 * truncated or broken body hands out nothing; a post that is refused (no
 * integer no, too complex, not an object) ends the walk there, after the
 * items before it were handed out.  Returns 0 when every item was handed
 * out, 1 when FN stopped the walk, or -1 with the reason in why. */
int chanapi_thread_each(const chanapi_site *site, const char *board, const char *body, size_t len,
                        int64_t crawled_at, chanapi_item_fn fn, void *arg, char *why, size_t whylen);

/* Parse a thread (4chan /board/thread/N.json, vichan /board/res/N.json:
 * {"posts": [...]}) into its items, in the site's order: a new json array
 * that the caller releases with json_object_put (which frees the items
 * too).  Each item is the post object with, added at its end:
 *   _v 1, _id "<board>.<no>", _chan site->name, _board board,
 *   _type "thread" for the opening post (resto 0; without resto, the first
 *   post) and "post" for a reply, _crawled_at crawled_at, _urls, _files (how many of _urls are its files).
 * A field of the site with one of these names is replaced.
 * Returns NULL with the reason in why when the body is not JSON, is
 * truncated, is not an object, has no "posts" array or an empty one, or a
 * post is not an object or has no integer no >= 1. */
json_object *chanapi_parse_thread(const chanapi_site *site, const char *board, const char *body, size_t len,
                                  int64_t crawled_at, char *why, size_t whylen);

/* Parse an index page (4chan /board/1.json, vichan /board/1.json:
 * {"threads": [{"posts": [...]}, ...]}) into the items of all its threads,
 * thread by thread, made as chanapi_parse_thread makes them (an index shows
 * each opening post with its last few replies only).  A page without
 * threads gives an empty array.  Same ownership and errors, plus
 * "threads[2]: no posts array". */
json_object *chanapi_parse_index(const chanapi_site *site, const char *board, const char *body, size_t len,
                                 int64_t crawled_at, char *why, size_t whylen);

/* The _urls of one post object as the site sent it: a new json array of
 * strings (caller json_object_put's it), possibly empty.  Files first:
 *   - the post's own file when it has an integer or non-empty string tim
 *     and a non-empty ext other than "deleted", and no "filedeleted": 1;
 *     tim goes into the URL exactly as sent (digits, or the string);
 *   - vichan: then each entry of extra_files, by the same rule, in order.
 * Then the links of the comment "com", as chanapi_comment_links finds
 * them, each without the user info (user name, password) it may hold,
 * which is never sent on or shown.  Each URL appears once. */
json_object *chanapi_post_urls(const chanapi_site *site, const char *board, const json_object *post);

/* Append to the json array urls every link of a comment (len bytes of the
 * site's HTML) that urls does not hold yet, in the order they appear:
 *   - the href of each <a> tag when it is an absolute http:// or https://
 *     URL (quote links such as "#p123" or "/g/thread/1#p2" are not);
 *   - each http:// or https:// URL in the text, with <wbr> tags removed
 *     first (4chan breaks long words with them) and the entities &amp;
 *     &quot; &#039; &#39; &apos; &lt; &gt; &#NNN; &#xHH; decoded (&nbsp; ends
 *     a URL like a space).
 * A URL ends at whitespace, '<' (any tag but <wbr>), '"', '\'' or the end of
 * its text; the scheme is matched in any case and kept as written. */
void chanapi_comment_links(const char *html, size_t len, json_object *urls);

#endif
