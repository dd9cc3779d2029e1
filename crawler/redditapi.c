/* redditapi.c -- reddit listings into submissions, pictures and cursors.
 *
 * See redditapi.h.  The body is walked once by jsonscan (syntax) before
 * anything is handed out; then kind, data.after and data.before are parsed
 * alone, and each child of data.children is measured (jsonscan_fits) and
 * parsed alone, so one submission's tree is in memory at a time.  Each t3
 * child is checked for the one thing an item needs, a string id of [0-9a-z].  Everything
 * else of a submission is kept as reddit sent it: the URLs found are only
 * read from it, never required, and a field of the wrong type is passed
 * over as if it were absent.
 */
#include "redditapi.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "jsonscan.h"
#include "sites.h"
#include "xalloc.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...) {
    if (!why || !whylen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v)) return NULL;
    return v;
}

static const char *member_string(json_object *o, const char *key) {
    json_object *v = member(o, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* --- the listing --- */

const char *redditapi_sub_id(json_object *sub) {
    const char *id = member_string(sub, "id");
    if (!id) return NULL;
    size_t n = strlen(id);
    if (n == 0 || n > 20) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z'))) return NULL;
    return id;
}

/* Count child I of OUT as refused, keeping the first reason. */
static void refuse_child(redditapi_listing *out, size_t i, const char *problem) {
    if (!out->nrefused++) snprintf(out->first_refused, sizeof out->first_refused, "children[%zu] %s", i, problem);
}

/* The small value (a kind, a cursor) at BODY[VS, VE) parsed, or NULL (none
 * there: VE 0, or an object or array). */
static json_object *span_value(const char *body, size_t vs, size_t ve) {
    if (!ve || body[vs] == '{' || body[vs] == '[') return NULL;
    return jsonscan_parse_span(body + vs, ve - vs, "a member", NULL, 0);
}

/* The cursor at BODY[VS, VE) into DST (REDDITAPI_ID_MAX bytes): "" unless
 * a string short enough. */
static void span_cursor(const char *body, size_t vs, size_t ve, char *dst) {
    json_object *v = span_value(body, vs, ve);
    dst[0] = '\0';
    if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) < REDDITAPI_ID_MAX)
        snprintf(dst, REDDITAPI_ID_MAX, "%s", json_object_get_string(v));
    json_object_put(v);
}

int redditapi_listing_each(const char *body, size_t len, uint64_t max_tree, redditapi_listing *out,
                           redditapi_sub_fn fn, void *arg, char *why, size_t whylen) {
    memset(out, 0, sizeof *out);
    size_t root = 0;
    if (jsonscan_skip_space(body, len, &root) < 0) {
        set_why(why, whylen, "not JSON: the body is empty");
        return -1;
    }
    if (body[root] != '{') {
        set_why(why, whylen, "not a Listing: the body does not start with '{' (%s)",
                body[root] == '<' ? "HTML?" : "not an object");
        return -1;
    }
    if (jsonscan_body(body, len, NULL, why, whylen) != 0) return -1;
    /* one walk of the root for kind and data, one of data for the rest */
    enum { KIND, DATA };
    enum { CHILDREN, AFTER, BEFORE };
    static const char *const root_keys[] = {"kind", "data"}, *const data_keys[] = {"children", "after", "before"};
    size_t rs[2], re[2], ds[3], de[3];
    jsonscan_members(body, len, root, root_keys, 2, rs, re);
    json_object *kind = span_value(body, rs[KIND], re[KIND]);
    bool listing = json_object_is_type(kind, json_type_string) && strcmp(json_object_get_string(kind), "Listing") == 0;
    if (!listing) {
        set_why(why, whylen, "not a Listing: kind is %s",
                json_object_is_type(kind, json_type_string) ? json_object_get_string(kind) : "missing or not a string");
        json_object_put(kind);
        return -1;
    }
    json_object_put(kind);
    if (!re[DATA] || body[rs[DATA]] != '{') {
        set_why(why, whylen, "not a Listing: no data object");
        return -1;
    }
    jsonscan_members(body, len, rs[DATA], data_keys, 3, ds, de);
    if (!de[CHILDREN] || body[ds[CHILDREN]] != '[') {
        set_why(why, whylen, "data.children is %s", de[CHILDREN] ? "not an array" : "missing");
        return -1;
    }
    span_cursor(body, ds[AFTER], de[AFTER], out->after);
    span_cursor(body, ds[BEFORE], de[BEFORE], out->before);
    size_t pos = ds[CHILDREN], es, ee;
    jsonscan_cost cost;
    for (size_t idx = 0; jsonscan_element(body, len, &pos, &es, &ee, &cost); idx++) {
        out->nchildren++;
        char what[48], reason[sizeof out->first_refused];
        snprintf(what, sizeof what, "children[%zu]", idx);
        json_object *child = NULL, *sub = NULL;
        if (!jsonscan_fits(&cost, max_tree, true, what, reason, sizeof reason)) {
            if (!out->nrefused++) snprintf(out->first_refused, sizeof out->first_refused, "%s", reason);
        } else if (!(child = jsonscan_parse_span(body + es, ee - es, what, reason, sizeof reason))) {
            refuse_child(out, idx, "is not JSON that json-c reads (nested too deep?)");
        } else {
            const char *ckind = member_string(child, "kind");
            sub = member(child, "data");
            const char *problem = NULL;
            if (!json_object_is_type(child, json_type_object)) problem = "is not an object";
            else if (!ckind || strcmp(ckind, "t3") != 0) problem = "is not a t3 (submission)";
            else if (!json_object_is_type(sub, json_type_object)) problem = "has no data object";
            else if (!redditapi_sub_id(sub)) problem = "has no id of [0-9a-z]";
            if (problem) {
                refuse_child(out, idx, problem);
                sub = NULL;
            }
        }
        if (sub) {
            json_object_get(sub);
            json_object_put(child);
            out->nsubs++;
            int rc = fn(arg, sub);
            json_object_put(sub);
            if (rc) return rc;
        } else {
            json_object_put(child);
        }
    }
    return 0;
}

static int collect_sub(void *arg, json_object *sub) {
    redditapi_listing *l = arg;
    l->subs = xrealloc(l->subs, (l->nsubs + 1) * sizeof *l->subs);
    l->subs[l->nsubs++] = json_object_get(sub);
    return 0;
}

int redditapi_listing_parse(const char *body, size_t len, uint64_t max_tree, redditapi_listing *out, char *why,
                            size_t whylen) {
    redditapi_listing into = {0};
    redditapi_listing counts;
    int rc = redditapi_listing_each(body, len, max_tree, &counts, collect_sub, &into, why, whylen);
    if (rc != 0) {
        redditapi_listing_release(&into);
        memset(out, 0, sizeof *out);
        return -1;
    }
    counts.subs = into.subs;
    *out = counts;
    return 0;
}

void redditapi_listing_release(redditapi_listing *l) {
    if (!l) return;
    for (size_t i = 0; i < l->nsubs && l->subs; i++)
        json_object_put(l->subs[i]);
    free(l->subs);
    memset(l, 0, sizeof *l);
}

/* --- URLs --- */

char *redditapi_unescape(const char *text, size_t len) {
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == '&') {
            static const struct {
                const char *ent;
                char c;
            } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''},
                         {"&#x27;", '\''}, {"&apos;", '\''}};
            bool done = false;
            for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
                size_t el = strlen(named[k].ent);
                if (len - i >= el && strncasecmp(text + i, named[k].ent, el) == 0) {
                    out[o++] = named[k].c;
                    i += el;
                    done = true;
                    break;
                }
            }
            if (done) continue;
        }
        out[o++] = text[i++];
    }
    out[o] = '\0';
    return out;
}

static bool urls_has(json_object *urls, const char *url) {
    size_t n = json_object_array_length(urls);
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(urls, i)), url) == 0) return true;
    return false;
}

/* Add URL (LEN bytes, maybe escaped) to URLS when it is http(s) and new.
 * Returns whether it was added. */
static bool add_url(json_object *urls, const char *url, size_t len) {
    char *plain = redditapi_unescape(url, len);
    bool added = false;
    if (strncasecmp(plain, "http://", 7) == 0 || strncasecmp(plain, "https://", 8) == 0) {
        char *clean = http_url_strip_userinfo(plain, NULL);
        if (clean && !urls_has(urls, clean)) {
            json_object_array_add(urls, json_object_new_string(clean));
            added = true;
        }
        free(clean);
    }
    free(plain);
    return added;
}

/* The host of URL into HOST (lower case), and where its path starts. */
static const char *url_host(const char *url, char *host, size_t hostlen) {
    const char *p = strstr(url, "://");
    host[0] = '\0';
    if (!p) return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    size_t h = strcspn(p, ":/?#");
    if (h > n) h = n;
    if (h >= hostlen) return NULL;
    for (size_t i = 0; i < h; i++)
        host[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    host[h] = '\0';
    return p + n;
}

static bool picture_ext(const char *path) {
    size_t n = strcspn(path, "?#");
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"};
    for (size_t k = 0; k < sizeof exts / sizeof exts[0]; k++) {
        size_t el = strlen(exts[k]);
        if (n >= el && strncasecmp(path + n - el, exts[k], el) == 0) return true;
    }
    return false;
}

/* Whether the submission's url (unescaped) is a picture file. */
static bool url_is_picture(const char *url, const char *file_url) {
    if (file_url && strcmp(file_url, REDDITAPI_FILE_URL) != 0) { /* a site's own picture host */
        size_t n = strcspn(file_url, "{");
        if (n > 8 && strncmp(url, file_url, n) == 0) return true;
    }
    char host[256];
    const char *path = url_host(url, host, sizeof host);
    if (!path) return false;
    if (strcmp(host, "i.reddituploads.com") == 0) return true;
    if (strcmp(host, "i.redd.it") == 0 || strcmp(host, "i.imgur.com") == 0) return picture_ext(path);
    return false;
}

/* The gallery's pictures, in gallery_data order. */
static size_t gallery_urls(json_object *sub, const char *file_url, json_object *urls) {
    json_object *items = member(member(sub, "gallery_data"), "items");
    json_object *meta = member(sub, "media_metadata");
    if (!json_object_is_type(items, json_type_array) || !json_object_is_type(meta, json_type_object)) return 0;
    size_t added = 0, n = json_object_array_length(items);
    for (size_t i = 0; i < n; i++) {
        const char *mid = member_string(json_object_array_get_idx(items, i), "media_id");
        json_object *m = mid ? member(meta, mid) : NULL;
        if (!m) continue;
        const char *mime = member_string(m, "m");
        bool idok = strlen(mid) <= 64 && strspn(mid, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                                             strlen(mid);
        if (idok && mime && strncmp(mime, "image/", 6) == 0 && mime[6] && strlen(mime + 6) <= 8 &&
            strspn(mime + 6, "abcdefghijklmnopqrstuvwxyz") == strlen(mime + 6)) {
            char ext[16];
            snprintf(ext, sizeof ext, ".%s", mime + 6);
            char *url = sites_expand(file_url ? file_url : REDDITAPI_FILE_URL, NULL, NULL, mid, ext);
            added += add_url(urls, url, strlen(url));
            free(url);
            continue;
        }
        json_object *s = member(m, "s");
        const char *u = member_string(s, "u");
        if (!u) u = member_string(s, "gif");
        if (u) added += add_url(urls, u, strlen(u));
    }
    return added;
}

json_object *redditapi_sub_urls(json_object *sub, const char *file_url, size_t *nfiles) {
    json_object *urls = json_object_new_array_ext(2);
    size_t files = gallery_urls(sub, file_url, urls);
    if (!files) {
        const char *u = member_string(sub, "url");
        if (u) {
            char *plain = redditapi_unescape(u, strlen(u));
            if (url_is_picture(plain, file_url)) files += add_url(urls, plain, strlen(plain));
            free(plain);
        }
    }
    if (!files) {
        json_object *images = member(member(sub, "preview"), "images");
        json_object *first = json_object_is_type(images, json_type_array) ? json_object_array_get_idx(images, 0) : NULL;
        const char *u = member_string(member(first, "source"), "url");
        if (u) files += add_url(urls, u, strlen(u));
    }
    const char *text = member_string(sub, "selftext");
    if (text) redditapi_text_links(text, strlen(text), urls);
    *nfiles = files;
    return urls;
}

/* --- markdown links --- */

/* Bytes that end a bare URL. */
static bool url_stop(unsigned char c) {
    return c <= ' ' || c == '<' || c == '>' || c == '"' || c == '[' || c == ']' || c == '`' || c == '\\' ||
           c == '{' || c == '}' || c == '|' || c == '^' || c == 0x7f;
}

void redditapi_text_links(const char *text, size_t len, json_object *urls) {
    for (size_t i = 0; i < len; i++) {
        if (text[i] != 'h' && text[i] != 'H') continue;
        size_t rest = len - i;
        bool http = rest >= 7 && strncasecmp(text + i, "http://", 7) == 0;
        bool https = rest >= 8 && strncasecmp(text + i, "https://", 8) == 0;
        if (!http && !https) continue;
        if (i > 0 && ((text[i - 1] >= 'a' && text[i - 1] <= 'z') || (text[i - 1] >= 'A' && text[i - 1] <= 'Z')))
            continue; /* inside a word: "xhttp://" */
        size_t end = i + (https ? 8 : 7), depth = 0;
        while (end < len && !url_stop((unsigned char)text[end])) {
            if (text[end] == '(') depth++;
            else if (text[end] == ')') {
                if (!depth) break; /* "[t](http://x)" or "(see http://x)" */
                depth--;
            }
            end++;
        }
        /* Trailing punctuation of the sentence is not part of the URL. */
        while (end > i && strchr(".,;:!?*_'", text[end - 1]))
            end--;
        size_t host_start = i + (https ? 8 : 7);
        if (end > host_start) add_url(urls, text + i, end - i);
        i = end ? end - 1 : i;
    }
}

/* --- items --- */

static void add_field(json_object *obj, const char *key, json_object *v) {
    json_object_object_add_ex(obj, key, v, JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

void redditapi_item(json_object *sub, const char *site, const char *board, const char *file_url,
                    int64_t crawled_at) {
    size_t nfiles = 0;
    json_object *urls = redditapi_sub_urls(sub, file_url, &nfiles);
    const char *id = redditapi_sub_id(sub);
    json_object *idv = json_object_new_string(id ? id : "");
    add_field(sub, "_v", json_object_new_int(1));
    add_field(sub, "_id", idv);
    add_field(sub, "_chan", json_object_new_string(site));
    add_field(sub, "_board", json_object_new_string(board));
    add_field(sub, "_type", json_object_new_string("submission"));
    add_field(sub, "_crawled_at", json_object_new_int64(crawled_at));
    add_field(sub, "_urls", urls);
    add_field(sub, "_files", json_object_new_int64((int64_t)nfiles));
}

/* --- rate-limit headers --- */

int64_t redditapi_ratelimit_wait_ms(const char *remaining, const char *reset) {
    if (!remaining || !reset) return 0;
    char *end;
    double left = strtod(remaining, &end);
    if (end == remaining || left >= 1.0) return 0;
    double secs = strtod(reset, &end);
    if (end == reset || secs <= 0) return 0;
    if (secs > 3600) secs = 3600;
    return (int64_t)(secs * 1000.0);
}
