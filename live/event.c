/* event.c -- an item into the JSON of a live event; see event.h.
 *
 * The event is built as a json-c object and printed once.  What a person
 * is shown of an item (its time, text, link, NSFW) is common/itemview.c's,
 * shared with search's results; this file picks the pictures and puts the
 * event together.
 */
#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imghash/imghash.h"
#include "itemview.h"
#include "xalloc.h"

const char *event_format_ext(const char *format) {
    ih_format f = format ? ih_format_from_name(format) : IH_FORMAT_UNKNOWN;
    return f == IH_FORMAT_UNKNOWN ? NULL : ih_format_extension(f);
}

/* The picture of _img entry E, or NULL when it is no hashed picture with an
 * http(s) URL. */
static json_object *item_image(const event_rules *rules, json_object *item, json_object *e) {
    static const char *const copied[] = {"width", "height", "format", "size", "sha1", "md5",
                                         "crc32", "ahash", "dhash", "phash", "whash"};
    const char *sha1 = itemview_string(e, "sha1");
    if (!itemview_string(e, "phash") || !sha1 || strlen(sha1) != 40) return NULL;
    const char *url = itemview_image_url(item, e);
    if (!url) return NULL;
    json_object *img = json_object_new_object();
    json_object_object_add(img, "url", json_object_new_string(url));
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        json_object *v = itemview_member(e, copied[i]);
        if (v) json_object_object_add(img, copied[i], json_object_get(v));
    }
    const char *ext = event_format_ext(itemview_string(e, "format"));
    bool hex = strspn(sha1, "0123456789abcdef") == 40;
    if (rules->files && ext && hex) {
        char file[64];
        snprintf(file, sizeof file, "/files/%s.%s", sha1, ext);
        json_object_object_add(img, "file", json_object_new_string(file));
    }
    return img;
}

char *event_make(const event_rules *rules, const char *key, json_object *item, size_t *len) {
    json_object *imgs = itemview_member(item, "_img");
    if (!json_object_is_type(item, json_type_object) || !json_object_is_type(imgs, json_type_array)) return NULL;
    json_object *images = json_object_new_array();
    size_t n = json_object_array_length(imgs);
    for (size_t i = 0; i < n && json_object_array_length(images) < EVENT_IMAGES_MAX; i++) {
        json_object *img = item_image(rules, item, json_object_array_get_idx(imgs, i));
        if (img) json_object_array_add(images, img);
    }
    if (json_object_array_length(images) == 0) {
        json_object_put(images);
        return NULL;
    }
    json_object *ev = json_object_new_object();
    static const struct {
        const char *out, *in;
    } ids[] = {{"id", "_id"}, {"site", "_chan"}, {"board", "_board"}, {"type", "_type"}};
    json_object_object_add(ev, "key", json_object_new_string(key));
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const char *s = itemview_string(item, ids[i].in);
        json_object_object_add(ev, ids[i].out, json_object_new_string(s ? s : ""));
    }
    json_object_object_add(ev, "time", json_object_new_int64(itemview_time(item)));
    json_object_object_add(ev, "nsfw", json_object_new_boolean(itemview_nsfw(item, key, rules->nsfw_topics)));
    size_t tl;
    char *text = itemview_text(item, EVENT_TEXT_MAX, &tl);
    json_object_object_add(ev, "text", json_object_new_string_len(text, (int)tl));
    free(text);
    char *link = itemview_link(item);
    if (link) json_object_object_add(ev, "link", json_object_new_string(link));
    free(link);
    json_object_object_add(ev, "images", images);
    size_t l;
    const char *s = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &l);
    char *out = xmalloc(l + 1);
    memcpy(out, s, l + 1);
    *len = l;
    json_object_put(ev);
    return out;
}
