/* event.c -- an item into the JSON of a live event; see event.h.
 *
 * The event is built as a json-c object and printed once; the fields are
 * looked up in small tables (which member holds the text, the time, the
 * link), so a new kind of site with other names is one line here.
 */
#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "htmltext.h"
#include "imgformat.h"
#include "sbuf.h"
#include "topic.h"
#include "xalloc.h"

/* Members holding a title, then a body; "html" when it is HTML. */
static const struct {
    const char *key;
    bool html;
} event_titles[] = {{"title", false}, {"sub", true}, {"subject", false}},
  event_bodies[] = {{"com", true}, {"selftext", false}, {"message", false}, {"markdown", true}};

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *member_string(json_object *o, const char *key) {
    json_object *v = member(o, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool is_http(const char *u) {
    return u && (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0);
}

const char *event_format_ext(const char *format) {
    img_format f = format ? imgformat_from_name(format) : IMG_FORMAT_UNKNOWN;
    return f == IMG_FORMAT_UNKNOWN ? NULL : imgformat_extension(f);
}

/* --- text --- */

/* Append the text of member KEY (HTML when HTML) to B, after a line break
 * when B holds something. */
static void add_text(sbuf *b, json_object *item, const char *key, bool html) {
    const char *s = member_string(item, key);
    if (!s || !*s) return;
    if (b->len) sbuf_addc(b, '\n');
    if (html) {
        char *t = htmltext_plain(s, strlen(s));
        sbuf_add(b, t, strlen(t));
        free(t);
    } else {
        sbuf_add(b, s, strlen(s));
    }
}

/* The item's text, plain and cut on a UTF-8 boundary. */
static json_object *item_text(json_object *item) {
    sbuf b = {0};
    for (size_t i = 0; i < sizeof event_titles / sizeof event_titles[0]; i++) {
        if (member_string(item, event_titles[i].key)) {
            add_text(&b, item, event_titles[i].key, event_titles[i].html);
            break;
        }
    }
    for (size_t i = 0; i < sizeof event_bodies / sizeof event_bodies[0]; i++) {
        if (member_string(item, event_bodies[i].key)) {
            add_text(&b, item, event_bodies[i].key, event_bodies[i].html);
            break;
        }
    }
    size_t n = b.len;
    if (n > EVENT_TEXT_MAX) {
        n = EVENT_TEXT_MAX;
        while (n > 0 && ((unsigned char)b.p[n] & 0xC0) == 0x80)
            n--;
    }
    json_object *t = json_object_new_string_len(b.p ? b.p : "", (int)n);
    free(b.p);
    return t;
}

/* --- the rest --- */

static int64_t item_time(json_object *item) {
    static const char *const keys[] = {"time", "created_utc", "_crawled_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_object *v = member(item, keys[i]);
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
            return json_object_get_int64(v);
    }
    return 0;
}

static char *item_link(json_object *item) {
    const char *permalink = member_string(item, "permalink");
    if (permalink && permalink[0] == '/' && member_string(item, "subreddit"))
        return xasprintf("https://www.reddit.com%s", permalink);
    static const char *const keys[] = {"source_url", "source"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *u = member_string(item, keys[i]);
        if (is_http(u)) return xstrdup(u);
    }
    return NULL;
}

static bool item_nsfw(const event_rules *rules, const char *key, json_object *item) {
    static const char *const flags[] = {"over_18", "isNsfw", "is_nsfw", "nsfw"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        json_object *v = member(item, flags[i]);
        if (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v)) return true;
    }
    for (size_t i = 0; rules->nsfw_topics && rules->nsfw_topics[i]; i++)
        if (topic_match(rules->nsfw_topics[i], key)) return true;
    return false;
}

/* The picture of _img entry E, or NULL when it is no hashed picture with an
 * http(s) URL. */
static json_object *item_image(const event_rules *rules, json_object *e, json_object *urls) {
    static const char *const copied[] = {"width", "height", "format", "size", "sha1", "md5",
                                         "crc32", "ahash", "dhash", "phash", "whash"};
    json_object *idx = member(e, "url");
    const char *sha1 = member_string(e, "sha1");
    if (!member_string(e, "phash") || !sha1 || strlen(sha1) != 40 || !json_object_is_type(idx, json_type_int))
        return NULL;
    int64_t k = json_object_get_int64(idx);
    if (!json_object_is_type(urls, json_type_array) || k < 0 || (size_t)k >= json_object_array_length(urls))
        return NULL;
    json_object *u = json_object_array_get_idx(urls, (size_t)k);
    if (!json_object_is_type(u, json_type_string) || !is_http(json_object_get_string(u))) return NULL;
    json_object *img = json_object_new_object();
    json_object_object_add(img, "url", json_object_get(u));
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        json_object *v = member(e, copied[i]);
        if (v) json_object_object_add(img, copied[i], json_object_get(v));
    }
    const char *ext = event_format_ext(member_string(e, "format"));
    bool hex = strspn(sha1, "0123456789abcdef") == 40;
    if (rules->files && ext && hex) {
        char file[64];
        snprintf(file, sizeof file, "/files/%s.%s", sha1, ext);
        json_object_object_add(img, "file", json_object_new_string(file));
    }
    return img;
}

char *event_make(const event_rules *rules, const char *key, json_object *item, size_t *len) {
    json_object *imgs = member(item, "_img"), *urls = member(item, "_urls");
    if (!json_object_is_type(item, json_type_object) || !json_object_is_type(imgs, json_type_array)) return NULL;
    json_object *images = json_object_new_array();
    size_t n = json_object_array_length(imgs);
    for (size_t i = 0; i < n && json_object_array_length(images) < EVENT_IMAGES_MAX; i++) {
        json_object *img = item_image(rules, json_object_array_get_idx(imgs, i), urls);
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
        const char *s = member_string(item, ids[i].in);
        json_object_object_add(ev, ids[i].out, json_object_new_string(s ? s : ""));
    }
    json_object_object_add(ev, "time", json_object_new_int64(item_time(item)));
    json_object_object_add(ev, "nsfw", json_object_new_boolean(item_nsfw(rules, key, item)));
    json_object_object_add(ev, "text", item_text(item));
    char *link = item_link(item);
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
