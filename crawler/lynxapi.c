/* lynxapi.c -- LynxChan catalog and thread JSON into refs and items; see
 * lynxapi.h.
 *
 * A body is walked by jsonscan (syntax, and what json-c would allocate)
 * before json-c parses it, so a hostile body is refused before it costs
 * memory.  A thread is parsed whole (LynxChan threads are capped at a few
 * hundred posts by the software's bump and page limits) and checked whole
 * before any item is made, so a broken reply hands out nothing of the
 * thread.  Links of the text are found by chanapi_comment_links, the same
 * rules as the 4chan kinds.
 */
#include "lynxapi.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanapi.h"
#include "jsonscan.h"
#include "xalloc.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...) {
    if (!why || !whylen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static json_object *member(const json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!json_object_is_type(obj, json_type_object)) return NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static const char *type_name(const json_object *v) { return json_type_to_name(json_object_get_type(v)); }

/* ---- the body ---- */

/* ---- dates ---- */

/* Days from 1970-01-01 to Y-M-D (proleptic Gregorian; H. Hinnant). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int64_t *out) {
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int64_t lynxapi_parse_date(const char *s) {
    int64_t y, mo, d, h, mi, se, ms = 0;
    if (!s || strlen(s) < 19) return -1;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != ' ') || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
        s[16] != ':' || !digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3) ms = ms * 10 + (*p - '0');
        if (n == 0) return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int64_t oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om)) return -1;
        offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    return secs * 1000 + ms;
}

/* ---- the catalog ---- */

int lynxapi_parse_catalog(const char *body, size_t len, uint64_t max_tree, lynxapi_thread_ref **out, size_t *n,
                          char *why, size_t whylen) {
    *out = NULL;
    *n = 0;
    json_object *root = jsonscan_parse_body(body, len, max_tree, true, why, whylen);
    if (!root) return -1;
    if (!json_object_is_type(root, json_type_array)) {
        set_why(why, whylen, "the catalog is not an array but %s", type_name(root));
        json_object_put(root);
        return -1;
    }
    size_t count = json_object_array_length(root);
    lynxapi_thread_ref *refs = count ? xmalloc(count * sizeof *refs) : NULL;
    for (size_t i = 0; i < count; i++) {
        json_object *t = json_object_array_get_idx(root, i);
        if (!json_object_is_type(t, json_type_object)) {
            set_why(why, whylen, "catalog[%zu] is not an object but %s", i, type_name(t));
            goto fail;
        }
        json_object *id = member(t, "threadId");
        if (!json_object_is_type(id, json_type_int) || json_object_get_int64(id) < 1 ||
            json_object_get_int64(id) == INT64_MAX) {
            set_why(why, whylen, "catalog[%zu] has no integer threadId >= 1", i);
            goto fail;
        }
        json_object *bump = member(t, "lastBump"), *posts = member(t, "postCount");
        refs[i] = (lynxapi_thread_ref){
            .id = json_object_get_int64(id),
            .last_bump =
                json_object_is_type(bump, json_type_string) ? lynxapi_parse_date(json_object_get_string(bump)) : -1,
            .posts = json_object_is_type(posts, json_type_int) ? json_object_get_int64(posts) : -1,
        };
    }
    json_object_put(root);
    *out = refs;
    *n = count;
    return 0;
fail:
    free(refs);
    json_object_put(root);
    return -1;
}

/* ---- items ---- */

static bool urls_has(json_object *urls, const char *s) {
    size_t n = json_object_array_length(urls);
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(urls, i)), s) == 0) return true;
    return false;
}

static bool is_absolute(const char *s) { return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0; }

json_object *lynxapi_post_urls(const lynxapi_site *site, const json_object *post, size_t *nfiles) {
    json_object *urls = json_object_new_array_ext(2);
    json_object *files = member(post, "files");
    size_t nf = json_object_is_type(files, json_type_array) ? json_object_array_length(files) : 0;
    const char *media = site->media ? site->media : "";
    size_t mlen = strlen(media);
    while (mlen && media[mlen - 1] == '/')
        mlen--;
    for (size_t i = 0; i < nf; i++) {
        json_object *path = member(json_object_array_get_idx(files, i), "path");
        if (!json_object_is_type(path, json_type_string)) continue;
        const char *p = json_object_get_string(path);
        if (!*p) continue;
        char *url;
        if (is_absolute(p))
            url = xstrdup(p);
        else
            url = xasprintf("%.*s%s%s", (int)mlen, media, *p == '/' ? "" : "/", p);
        if (!urls_has(urls, url)) json_object_array_add(urls, json_object_new_string(url));
        free(url);
    }
    *nfiles = json_object_array_length(urls);
    static const char *const text_keys[] = {"markdown", "message"};
    for (size_t k = 0; k < sizeof text_keys / sizeof text_keys[0]; k++) {
        json_object *v = member(post, text_keys[k]);
        if (json_object_is_type(v, json_type_string))
            chanapi_comment_links(json_object_get_string(v), (size_t)json_object_get_string_len(v), urls);
    }
    return urls;
}

static void add_field(json_object *obj, const char *key, json_object *v) {
    json_object_object_add_ex(obj, key, v, JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

/* Make POST (number NO) an item, in place. */
static void decorate(const lynxapi_site *site, const char *board, json_object *post, int64_t no, bool op,
                     int64_t crawled_at) {
    size_t nfiles = 0;
    json_object *urls = lynxapi_post_urls(site, post, &nfiles);
    char *id = xasprintf("%s.%" PRId64, board, no);
    add_field(post, "_v", json_object_new_int(1));
    add_field(post, "_id", json_object_new_string(id));
    add_field(post, "_chan", json_object_new_string(site->name));
    add_field(post, "_board", json_object_new_string(board));
    add_field(post, "_type", json_object_new_string(op ? "thread" : "post"));
    add_field(post, "_crawled_at", json_object_new_int64(crawled_at));
    add_field(post, "_urls", urls);
    add_field(post, "_files", json_object_new_int64((int64_t)nfiles));
    free(id);
}

static int64_t id_of(const json_object *o, const char *key) {
    json_object *v = member(o, key);
    if (!json_object_is_type(v, json_type_int)) return -1;
    int64_t n = json_object_get_int64(v);
    return n >= 1 && n < INT64_MAX ? n : -1;
}

json_object *lynxapi_parse_thread(const lynxapi_site *site, const char *board, const char *body, size_t len,
                                  int64_t crawled_at, char *why, size_t whylen) {
    json_object *root = jsonscan_parse_body(body, len, site->max_tree, true, why, whylen);
    if (!root) return NULL;
    if (!json_object_is_type(root, json_type_object)) {
        set_why(why, whylen, "the thread is not an object but %s", type_name(root));
        json_object_put(root);
        return NULL;
    }
    int64_t tid = id_of(root, "threadId");
    if (tid < 0) {
        set_why(why, whylen, "the thread has no integer threadId >= 1");
        json_object_put(root);
        return NULL;
    }
    json_object *posts = member(root, "posts");
    size_t n = 0;
    if (posts) {
        if (!json_object_is_type(posts, json_type_array)) {
            set_why(why, whylen, "posts is not an array but %s", type_name(posts));
            json_object_put(root);
            return NULL;
        }
        n = json_object_array_length(posts);
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(posts, i);
            if (!json_object_is_type(p, json_type_object)) {
                set_why(why, whylen, "posts[%zu] is not an object but %s", i, type_name(p));
                json_object_put(root);
                return NULL;
            }
            if (id_of(p, "postId") < 0) {
                set_why(why, whylen, "posts[%zu] has no integer postId >= 1", i);
                json_object_put(root);
                return NULL;
            }
        }
    }
    json_object *items = json_object_new_array_ext((int)(n + 1 < INT_MAX ? n + 1 : INT_MAX));
    json_object_array_add(items, root); /* the array owns the root now */
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(posts, i);
        decorate(site, board, p, id_of(p, "postId"), false, crawled_at);
        json_object_array_add(items, json_object_get(p));
    }
    if (posts) json_object_object_del(root, "posts"); /* the replies live on in items */
    decorate(site, board, root, tid, true, crawled_at);
    return items;
}
