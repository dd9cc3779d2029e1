/* itemview.h -- what a person is shown of an archived item.
 *
 * Items keep their site's own fields (docs/design.md, "An item"), which
 * differ by kind of site: 4chan's time and com, reddit's created_utc,
 * selftext and permalink, an image API's source.  These functions read
 * them through small tables, so the live view and search show the same
 * things, and a new kind of site with other names is one line here:
 *
 * - itemview_time: the site's own time of the post (4chan "time", reddit
 *   "created_utc"), else _crawled_at; 0 when none.
 * - itemview_text: the first of title/sub/subject, then com/selftext/
 *   message/markdown; HTML (4chan's com, LynxChan's markdown) made plain
 *   text (htmltext.h), cut to MAX bytes on a UTF-8 boundary.
 * - itemview_link: reddit's permalink on www.reddit.com, an image API's
 *   source_url or source, when http(s).
 * - itemview_nsfw: the item says so (reddit over_18, waifu.im isNsfw, a
 *   "nsfw" true), or its routing key matches one of TOPICS.
 * - itemview_image_url: the URL of an `_img` entry (its "url" index into
 *   _urls), when http(s).
 *
 * Pure: no I/O.  Returned strings are new (the caller frees) unless said.
 */
#ifndef IMGFEED_ITEMVIEW_H
#define IMGFEED_ITEMVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Member KEY of O, or NULL; a string member's text, or NULL (borrowed). */
json_object *itemview_member(json_object *o, const char *key);
const char *itemview_string(json_object *o, const char *key);
/* True when U starts with http:// or https:// (any case). */
bool itemview_is_http(const char *u);

int64_t itemview_time(json_object *item);
/* The text, *LEN its length (always a string, maybe empty). */
char *itemview_text(json_object *item, size_t max, size_t *len);
char *itemview_link(json_object *item);
bool itemview_nsfw(json_object *item, const char *key, const char *const *topics);
/* The default TOPICS, as binding keys separated by commas: 4chan's boards
 * that its boards.json declares not safe for work ("ws_board": 0).  The
 * live view's --nsfw-topics and imgfeed-export dataset's default. */
#define ITEMVIEW_NSFW_TOPICS                                                                                 \
    "4chan.*.aco,4chan.*.b,4chan.*.bant,4chan.*.d,4chan.*.e,4chan.*.f,4chan.*.gif,4chan.*.h,4chan.*.hc,"     \
    "4chan.*.hm,4chan.*.hr,4chan.*.i,4chan.*.ic,4chan.*.pol,4chan.*.r,4chan.*.r9k,4chan.*.s,4chan.*.s4s,"   \
    "4chan.*.soc,4chan.*.t,4chan.*.trash,4chan.*.u,4chan.*.wg,4chan.*.y"
/* Borrowed from ITEM's _urls; NULL when ENTRY has no valid url index or the URL is not http(s). */
const char *itemview_image_url(json_object *item, json_object *entry);

#endif
