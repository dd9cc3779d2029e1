/* itemview.c -- what a person is shown of an item; see itemview.h. */
#include "itemview.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "htmltext.h"
#include "sbuf.h"
#include "topic.h"
#include "xalloc.h"

/* Members holding a title, then a body; "html" when it is HTML. */
static const struct {
    const char *key;
    bool html;
} itemview_titles[] = {{"title", false}, {"sub", true}, {"subject", false}},
  itemview_bodies[] = {{"com", true}, {"selftext", false}, {"message", false}, {"markdown", true}};

json_object *itemview_member(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *itemview_string(json_object *o, const char *key) {
    json_object *v = itemview_member(o, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool itemview_is_http(const char *u) {
    return u && (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0);
}

/* Append the text of member KEY (HTML when HTML) to B, after a line break
 * when B holds something. */
static void add_text(sbuf *b, json_object *item, const char *key, bool html) {
    const char *s = itemview_string(item, key);
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

char *itemview_text(json_object *item, size_t max, size_t *len) {
    sbuf b = {0};
    for (size_t i = 0; i < sizeof itemview_titles / sizeof itemview_titles[0]; i++) {
        if (itemview_string(item, itemview_titles[i].key)) {
            add_text(&b, item, itemview_titles[i].key, itemview_titles[i].html);
            break;
        }
    }
    for (size_t i = 0; i < sizeof itemview_bodies / sizeof itemview_bodies[0]; i++) {
        if (itemview_string(item, itemview_bodies[i].key)) {
            add_text(&b, item, itemview_bodies[i].key, itemview_bodies[i].html);
            break;
        }
    }
    size_t n = b.len;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)b.p[n] & 0xC0) == 0x80)
            n--;
    }
    char *out = xmalloc(n + 1);
    if (n) memcpy(out, b.p, n);
    out[n] = '\0';
    free(b.p);
    *len = n;
    return out;
}

int64_t itemview_time(json_object *item) {
    static const char *const keys[] = {"time", "created_utc", "_crawled_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_object *v = itemview_member(item, keys[i]);
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
            return json_object_get_int64(v);
    }
    return 0;
}

char *itemview_link(json_object *item) {
    const char *permalink = itemview_string(item, "permalink");
    if (permalink && permalink[0] == '/' && itemview_string(item, "subreddit"))
        return xasprintf("https://www.reddit.com%s", permalink);
    static const char *const keys[] = {"source_url", "source"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *u = itemview_string(item, keys[i]);
        if (itemview_is_http(u)) return xstrdup(u);
    }
    return NULL;
}

bool itemview_nsfw(json_object *item, const char *key, const char *const *topics) {
    static const char *const flags[] = {"over_18", "isNsfw", "is_nsfw", "nsfw"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        json_object *v = itemview_member(item, flags[i]);
        if (json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v)) return true;
    }
    for (size_t i = 0; topics && topics[i]; i++)
        if (topic_match(topics[i], key)) return true;
    return false;
}

const char *itemview_image_url(json_object *item, json_object *entry) {
    json_object *idx = itemview_member(entry, "url"), *urls = itemview_member(item, "_urls");
    if (!json_object_is_type(idx, json_type_int) || !json_object_is_type(urls, json_type_array)) return NULL;
    int64_t k = json_object_get_int64(idx);
    if (k < 0 || (size_t)k >= json_object_array_length(urls)) return NULL;
    json_object *u = json_object_array_get_idx(urls, (size_t)k);
    const char *s = json_object_is_type(u, json_type_string) ? json_object_get_string(u) : NULL;
    return itemview_is_http(s) ? s : NULL;
}
