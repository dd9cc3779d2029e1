/* chanapi.c -- 4chan and vichan JSON into thread lists and items.
 *
 * The body is parsed once by json-c, and the items are the parsed post
 * objects themselves with the _ fields added: nothing is copied field by
 * field, so every field the site sent stays as it was (json-c keeps
 * integers as int64 and doubles with their original text).
 *
 * _urls: files first, from the site's template with tim written out as
 * sent (an integer's digits straight from the int64, a vichan string as
 * is).  Then the comment, read in one pass: tags end the text that holds a
 * URL (except <wbr>, which is dropped, since 4chan splits long words with
 * it), an <a> tag offers its href, and entities are decoded into a scratch
 * buffer as the text goes; each run of text between tags is then searched
 * for "http://" and "https://" from their colons (a comment without any
 * colon, most of them, is skipped after one memchr).  URLs are kept once
 * each: a linear search while a post has few, a small hash table past
 * that, so that a comment made of thousands of links stays linear.
 *
 * One scratch buffer lives for a whole parse and is reused by every post.
 */
#include "chanapi.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "htmltext.h"
#include "jsonscan.h"
#include "sbuf.h"
#include "xalloc.h"

/* ---- small helpers ---- */

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...) {
    if (!why || whylen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
/* Where a URL ends. */
static bool is_url_end(int c) { return is_space(c) || c == '<' || c == '"' || c == '\''; }

/* Does s (n bytes) start with the lower-case word w, in any case? */
static bool starts_ci(const char *s, size_t n, const char *w) {
    size_t i = 0;
    for (; w[i]; i++)
        if (i >= n || lower((unsigned char)s[i]) != w[i]) return false;
    return true;
}

/* The length of an http:// or https:// scheme at the start of s, or 0. */
static size_t scheme_len(const char *s, size_t n) {
    if (starts_ci(s, n, "http://")) return 7;
    if (starts_ci(s, n, "https://")) return 8;
    return 0;
}

/* An integer json value written out exactly: int64, or uint64 above it. */
static int int_text(const json_object *v, char *buf, size_t len) {
    int64_t i = json_object_get_int64(v);
    if (i == INT64_MAX) return snprintf(buf, len, "%" PRIu64, json_object_get_uint64(v));
    return snprintf(buf, len, "%" PRId64, i);
}

/* A member of an object, or NULL. */
static json_object *member(const json_object *obj, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

/* ---- the URLs of one item, each once ---- */

#define URLSET_LINEAR 16 /* up to this many URLs, a linear search */

typedef struct urlset {
    json_object *arr; /* the json array of strings being built (not owned) */
    uint32_t *slots;  /* index + 1 into arr, 0 = empty; NULL while linear */
    size_t cap;       /* slots, a power of two */
} urlset;

static uint32_t url_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static bool url_equal(const json_object *v, const char *s, size_t n) {
    return json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string((json_object *)v), s, n) == 0;
}

static void urlset_insert_slot(urlset *u, size_t idx) {
    json_object *v = json_object_array_get_idx(u->arr, idx);
    if (!json_object_is_type(v, json_type_string)) return;
    size_t mask = u->cap - 1, h = url_hash(json_object_get_string(v), (size_t)json_object_get_string_len(v)) & mask;
    while (u->slots[h])
        h = (h + 1) & mask;
    u->slots[h] = (uint32_t)(idx + 1);
}

static void urlset_rebuild(urlset *u, size_t cap) {
    free(u->slots);
    u->slots = xcalloc(cap, sizeof *u->slots);
    u->cap = cap;
    size_t n = json_object_array_length(u->arr);
    for (size_t i = 0; i < n; i++)
        urlset_insert_slot(u, i);
}

static void urlset_init(urlset *u, json_object *arr) {
    u->arr = arr;
    u->slots = NULL;
    u->cap = 0;
    size_t n = json_object_array_length(arr);
    if (n > URLSET_LINEAR) {
        size_t cap = 64;
        while (cap < 2 * n)
            cap *= 2;
        urlset_rebuild(u, cap);
    }
}

static void urlset_release(urlset *u) {
    free(u->slots);
    u->slots = NULL;
    u->cap = 0;
}

static bool urlset_has(const urlset *u, const char *s, size_t n) {
    if (!u->slots) {
        size_t len = json_object_array_length(u->arr);
        for (size_t i = 0; i < len; i++)
            if (url_equal(json_object_array_get_idx(u->arr, i), s, n)) return true;
        return false;
    }
    size_t mask = u->cap - 1;
    for (size_t h = url_hash(s, n) & mask; u->slots[h]; h = (h + 1) & mask)
        if (url_equal(json_object_array_get_idx(u->arr, u->slots[h] - 1), s, n)) return true;
    return false;
}

static void urlset_add(urlset *u, const char *s, size_t n) {
    if (n == 0 || urlset_has(u, s, n)) return;
    json_object_array_add(u->arr, json_object_new_string_len(s, (int)n));
    size_t len = json_object_array_length(u->arr);
    if (u->slots && 2 * len <= u->cap)
        urlset_insert_slot(u, len - 1);
    else if (len > URLSET_LINEAR)
        urlset_rebuild(u, u->cap ? 2 * u->cap : 64);
}

/* Add a link of a comment: a URL from the site, whose user info (a user
 * name and password before the host) is removed, never to be sent on or
 * shown (http_url_strip_userinfo); a link with user info that curl cannot
 * parse is left out. */
static void urlset_add_link(urlset *u, const char *s, size_t n) {
    const char *authority = memchr(s, '/', n);
    size_t rest = authority ? n - (size_t)(authority - s) : 0;
    if (rest > 2 && authority[1] == '/') {
        size_t end = 2;
        while (end < rest && !strchr("/?#", authority[end]))
            end++;
        if (memchr(authority + 2, '@', end - 2)) {
            char *text = xstrndup(s, n), *clean = http_url_strip_userinfo(text, NULL);
            if (clean) urlset_add(u, clean, strlen(clean));
            free(clean);
            free(text);
            return;
        }
    }
    urlset_add(u, s, n);
}

/* ---- comments ---- */

/* Decode the entities of s into b. */
static void decode_into(sbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = s[i] == '&' ? htmltext_entity(s + i, n - i, b) : 0;
        if (k) {
            i += k;
        } else {
            sbuf_addc(b, s[i]);
            i++;
        }
    }
}

/* The length of a <wbr>, <wbr/> or <wbr /> tag at s, or 0. */
static size_t wbr_len(const char *s, size_t n) {
    if (!starts_ci(s, n, "<wbr")) return 0;
    size_t i = 4;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    if (i < n && s[i] == '/') i++;
    return i < n && s[i] == '>' ? i + 1 : 0;
}

/* Every http(s) URL in the decoded text b, found from its colon (rarer
 * than an 'h'). */
static void text_urls(const sbuf *b, urlset *u) {
    const char *t = b->p;
    size_t n = b->len, from = 0; /* no URL starts before from */
    while (from + 8 <= n) {
        const char *c = memchr(t + from + 4, ':', n - from - 4);
        if (!c) return;
        size_t colon = (size_t)(c - t), start;
        if (colon >= from + 5 && starts_ci(t + colon - 5, n - (colon - 5), "https://"))
            start = colon - 5;
        else if (starts_ci(t + colon - 4, n - (colon - 4), "http://"))
            start = colon - 4;
        else {
            from = colon - 3; /* the next colon is searched from colon + 1 */
            continue;
        }
        size_t end = colon + 3;
        while (end < n && !is_url_end((unsigned char)t[end]))
            end++;
        if (end > colon + 3) urlset_add_link(u, t + start, end - start);
        from = end;
    }
}

/* Can the comment hold a URL at all?  Every URL has a colon: a ':' or an
 * entity that decodes to one.  Most comments have neither, and are done
 * with one memchr. */
static bool may_have_url(const char *s, size_t n, sbuf *scratch) {
    if (memchr(s, ':', n)) return true;
    for (const char *a = memchr(s, '&', n); a; a = memchr(a + 1, '&', n - (size_t)(a + 1 - s))) {
        scratch->len = 0;
        if (htmltext_entity(a, n - (size_t)(a - s), scratch) && scratch->len == 1 && scratch->p[0] == ':') return true;
    }
    return false;
}

/* An href value: entities decoded, leading space skipped, up to the end of
 * the URL; kept when it is an absolute http(s) URL. */
static void href_url(sbuf *scratch, const char *v, size_t n, urlset *u) {
    scratch->len = 0;
    decode_into(scratch, v, n);
    size_t i = 0;
    while (i < scratch->len && is_space((unsigned char)scratch->p[i]))
        i++;
    size_t s = scheme_len(scratch->p + i, scratch->len - i);
    if (!s) return;
    size_t end = i + s;
    while (end < scratch->len && !is_url_end((unsigned char)scratch->p[end]))
        end++;
    if (end > i + s) urlset_add_link(u, scratch->p + i, end - i);
}

/* s[i] is '<' and starts a tag: read it to its '>' (quoted attribute values
 * may hold '>'), offer the href of an <a> tag, and return the index after
 * it (n when the comment ends inside the tag). */
static size_t tag(const char *s, size_t n, size_t i, sbuf *scratch, urlset *u) {
    size_t j = i + 1;
    if (j < n && s[j] == '!') { /* a comment or a declaration */
        if (starts_ci(s + j, n - j, "!--")) {
            for (j += 3; j + 2 < n; j++)
                if (s[j] == '-' && s[j + 1] == '-' && s[j + 2] == '>') return j + 3;
            return n;
        }
        const char *gt = memchr(s + j, '>', n - j);
        return gt ? (size_t)(gt - s) + 1 : n;
    }
    if (j < n && s[j] == '/') j++;
    size_t name = j;
    while (j < n && !is_space((unsigned char)s[j]) && s[j] != '>' && s[j] != '/')
        j++;
    bool anchor = s[i + 1] != '/' && j - name == 1 && lower((unsigned char)s[name]) == 'a';
    bool href_seen = false;
    while (j < n) {
        while (j < n && (is_space((unsigned char)s[j]) || s[j] == '/'))
            j++;
        if (j >= n) break;
        if (s[j] == '>') return j + 1;
        size_t an = j;
        while (j < n && !is_space((unsigned char)s[j]) && s[j] != '=' && s[j] != '>' && s[j] != '/')
            j++;
        if (j == an) { /* a stray '=': step over it */
            j++;
            continue;
        }
        size_t alen = j - an;
        while (j < n && is_space((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != '=') continue; /* an attribute without a value */
        j++;
        while (j < n && is_space((unsigned char)s[j]))
            j++;
        size_t v, vlen;
        if (j < n && (s[j] == '"' || s[j] == '\'')) {
            char q = s[j++];
            v = j;
            while (j < n && s[j] != q)
                j++;
            vlen = j - v;
            if (j < n) j++;
        } else {
            v = j;
            while (j < n && !is_space((unsigned char)s[j]) && s[j] != '>')
                j++;
            vlen = j - v;
        }
        if (anchor && !href_seen && alen == 4 && starts_ci(s + an, alen, "href")) {
            href_seen = true;
            href_url(scratch, s + v, vlen, u);
        }
    }
    return n;
}

/* The links of a comment, in order, into u; scratch is reused. */
static void comment_links(const char *s, size_t n, sbuf *scratch, urlset *u) {
    if (!may_have_url(s, n, scratch)) return;
    scratch->len = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c == '<') {
            size_t w = wbr_len(s + i, n - i);
            if (w) {
                i += w;
                continue;
            }
            if (i + 1 < n && (is_alpha((unsigned char)s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
                text_urls(scratch, u);
                i = tag(s, n, i, scratch, u);
                scratch->len = 0;
                continue;
            }
            sbuf_addc(scratch, '<'); /* a bare '<': text, and the end of a URL */
            i++;
        } else if (c == '&') {
            size_t k = htmltext_entity(s + i, n - i, scratch);
            if (!k) sbuf_addc(scratch, '&');
            i += k ? k : 1;
        } else {
            size_t j = i + 1;
            while (j < n && s[j] != '<' && s[j] != '&')
                j++;
            sbuf_add(scratch, s + i, j - i);
            i = j;
        }
    }
    text_urls(scratch, u);
    scratch->len = 0;
}

/* ---- files ---- */

/* The URL of the file described by obj (a post, or an entry of vichan's
 * extra_files), if it has one. */
static void file_url(const chanapi_site *site, const char *board, const json_object *obj, sbuf *b, urlset *u) {
    json_object *tim = member(obj, "tim"), *ext = member(obj, "ext"), *del = member(obj, "filedeleted");
    if (!tim || !ext || !json_object_is_type(ext, json_type_string)) return;
    if (del && (json_object_is_type(del, json_type_int) || json_object_is_type(del, json_type_boolean)) &&
        json_object_get_int64(del) != 0)
        return;
    const char *e = json_object_get_string(ext);
    size_t elen = (size_t)json_object_get_string_len(ext);
    if (elen == 0 || strcmp(e, "deleted") == 0) return;
    char digits[32];
    const char *t;
    size_t tlen;
    if (json_object_is_type(tim, json_type_int)) {
        tlen = (size_t)int_text(tim, digits, sizeof digits);
        t = digits;
    } else if (json_object_is_type(tim, json_type_string)) {
        t = json_object_get_string(tim);
        tlen = (size_t)json_object_get_string_len(tim);
        if (tlen == 0) return;
    } else {
        return; /* a double or anything else: no exact file name */
    }
    b->len = 0;
    for (const char *p = site->file_url; *p;) {
        if (*p == '{') {
            if (strncmp(p, "{board}", 7) == 0) { /* percent-encoded, as the crawler's API URLs: "λ" is %CE%BB */
                static const char hex[] = "0123456789ABCDEF";
                for (const unsigned char *c = (const unsigned char *)board; *c; c++) {
                    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                        strchr("-_.~", *c)) {
                        sbuf_addc(b, (char)*c);
                    } else {
                        char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
                        sbuf_add(b, esc, 3);
                    }
                }
                p += 7;
                continue;
            }
            if (strncmp(p, "{tim}", 5) == 0) {
                sbuf_add(b, t, tlen);
                p += 5;
                continue;
            }
            if (strncmp(p, "{ext}", 5) == 0) {
                sbuf_add(b, e, elen);
                p += 5;
                continue;
            }
        }
        sbuf_addc(b, *p++);
    }
    urlset_add(u, b->p, b->len);
}

/* Append the post's URLs to urls; returns how many of them are its own files
 * (they come first). */
static size_t post_urls(const chanapi_site *site, const char *board, const json_object *post, sbuf *scratch,
                        json_object *urls) {
    urlset u;
    urlset_init(&u, urls);
    file_url(site, board, post, scratch, &u);
    json_object *extra = member(post, "extra_files");
    if (site->kind == CHANAPI_VICHAN && json_object_is_type(extra, json_type_array)) {
        size_t n = json_object_array_length(extra);
        for (size_t i = 0; i < n; i++) {
            json_object *f = json_object_array_get_idx(extra, i);
            if (json_object_is_type(f, json_type_object)) file_url(site, board, f, scratch, &u);
        }
    }
    size_t files = json_object_array_length(urls);
    json_object *com = member(post, "com");
    if (json_object_is_type(com, json_type_string))
        comment_links(json_object_get_string(com), (size_t)json_object_get_string_len(com), scratch, &u);
    urlset_release(&u);
    return files;
}

/* ---- items ---- */

/* What one parse shares between its posts. */
typedef struct itemctx {
    const chanapi_site *site;
    const char *board;
    int64_t crawled_at;
    sbuf scratch;
    json_object *items;
} itemctx;

static void add_field(json_object *obj, const char *key, json_object *v) {
    json_object_object_add_ex(obj, key, v, JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

/* Turn post (posts[idx] of where) into an item, in place. */
static int add_item(itemctx *cx, json_object *post, const char *where, size_t idx, char *why, size_t whylen) {
    if (!json_object_is_type(post, json_type_object)) {
        set_why(why, whylen, "%sposts[%zu] is not an object", where, idx);
        return -1;
    }
    json_object *no = member(post, "no");
    if (!json_object_is_type(no, json_type_int)) {
        set_why(why, whylen, "%sposts[%zu] has no integer no", where, idx);
        return -1;
    }
    int64_t number = json_object_get_int64(no);
    if (number < 1 || number == INT64_MAX) {
        char text[32];
        int_text(no, text, sizeof text);
        set_why(why, whylen, "%sposts[%zu]: no %s is out of range", where, idx, text);
        return -1;
    }
    json_object *resto = member(post, "resto");
    bool thread = json_object_is_type(resto, json_type_int) ? json_object_get_int64(resto) == 0 : idx == 0;

    json_object *urls = json_object_new_array_ext(2); /* most posts have 0 to 2 */
    size_t files = post_urls(cx->site, cx->board, post, &cx->scratch, urls);

    char id[256];
    int idlen = snprintf(id, sizeof id, "%s.%" PRId64, cx->board, number);
    add_field(post, "_v", json_object_new_int(1));
    if (idlen >= 0 && (size_t)idlen < sizeof id) {
        add_field(post, "_id", json_object_new_string_len(id, idlen));
    } else { /* a board name of over 200 bytes */
        char *long_id = xasprintf("%s.%" PRId64, cx->board, number);
        add_field(post, "_id", json_object_new_string(long_id));
        free(long_id);
    }
    add_field(post, "_chan", json_object_new_string(cx->site->name));
    add_field(post, "_board", json_object_new_string(cx->board));
    add_field(post, "_type", json_object_new_string(thread ? "thread" : "post"));
    add_field(post, "_crawled_at", json_object_new_int64(cx->crawled_at));
    add_field(post, "_urls", urls);
    add_field(post, "_files", json_object_new_int64((int64_t)files));
    return 0;
}

/* Items of every post of a {"posts": [...]} object; where prefixes the
 * reasons ("" or "threads[2]: "). */
static int add_thread(itemctx *cx, json_object *thread, const char *where, char *why, size_t whylen) {
    json_object *posts = member(thread, "posts");
    if (!json_object_is_type(posts, json_type_array)) {
        bool present = json_object_object_get_ex(thread, "posts", NULL); /* a null one too */
        set_why(why, whylen, "%s%s", where, present ? "posts is not an array" : "no posts array");
        return -1;
    }
    size_t n = json_object_array_length(posts);
    if (n == 0) {
        set_why(why, whylen, "%sposts is empty", where);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *post = json_object_array_get_idx(posts, i);
        if (add_item(cx, post, where, i, why, whylen) < 0) return -1;
        json_object_array_add(cx->items, json_object_get(post));
    }
    return 0;
}

/* ---- parsing the body ---- */

/* The JSON type of the value that starts with C, as json-c names it. */
static const char *text_type_name(int c) {
    switch (c) {
    case '{': return "object";
    case '[': return "array";
    case '"': return "string";
    case 't':
    case 'f': return "boolean";
    case 'n': return "null";
    default: return "number";
    }
}

static const char *type_name(const json_object *v) { return json_type_to_name(json_object_get_type(v)); }

/* ---- the API ---- */

bool chanapi_kind_from_name(const char *name, chanapi_kind *out) {
    if (!name) return false;
    if (strcmp(name, "4chan") == 0) {
        *out = CHANAPI_4CHAN;
        return true;
    }
    if (strcmp(name, "vichan") == 0) {
        *out = CHANAPI_VICHAN;
        return true;
    }
    return false;
}

const char *chanapi_kind_name(chanapi_kind kind) {
    switch (kind) {
    case CHANAPI_4CHAN: return "4chan";
    case CHANAPI_VICHAN: return "vichan";
    }
    return "?";
}

/* An optional integer member, -1 when absent or not an integer. */
static int64_t opt_int(const json_object *obj, const char *key) {
    json_object *v = member(obj, key);
    return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/* "page 2" by the site's own number, or "pages[1]" when it has none. */
static void page_name(const json_object *page, size_t idx, char *buf, size_t len) {
    json_object *p = member(page, "page");
    if (json_object_is_type(p, json_type_int))
        snprintf(buf, len, "page %" PRId64, json_object_get_int64(p));
    else
        snprintf(buf, len, "pages[%zu]", idx);
}

int chanapi_parse_threads(const char *body, size_t len, uint64_t max_tree, chanapi_thread_ref **out, size_t *n,
                          char *why, size_t whylen) {
    *out = NULL;
    *n = 0;
    json_object *root = jsonscan_parse_body(body, len, max_tree, false, why, whylen);
    if (!root) return -1;
    chanapi_thread_ref *refs = NULL;
    size_t count = 0, cap = 0;
    if (!json_object_is_type(root, json_type_array)) {
        set_why(why, whylen, "not an array of pages but %s", type_name(root));
        goto fail;
    }
    size_t pages = json_object_array_length(root);
    if (pages == 0) {
        set_why(why, whylen, "no pages");
        goto fail;
    }
    for (size_t p = 0; p < pages; p++) {
        json_object *page = json_object_array_get_idx(root, p);
        char name[48];
        if (!json_object_is_type(page, json_type_object)) {
            set_why(why, whylen, "pages[%zu] is not an object but %s", p, type_name(page));
            goto fail;
        }
        page_name(page, p, name, sizeof name);
        json_object *threads = member(page, "threads");
        if (!json_object_is_type(threads, json_type_array)) {
            set_why(why, whylen, "%s has no threads array", name);
            goto fail;
        }
        size_t nt = json_object_array_length(threads);
        for (size_t t = 0; t < nt; t++) {
            json_object *th = json_object_array_get_idx(threads, t);
            json_object *no = member(th, "no");
            if (!json_object_is_type(th, json_type_object)) {
                set_why(why, whylen, "%s threads[%zu] is not an object but %s", name, t, type_name(th));
                goto fail;
            }
            if (!json_object_is_type(no, json_type_int)) {
                set_why(why, whylen, "%s threads[%zu] has no integer no", name, t);
                goto fail;
            }
            int64_t number = json_object_get_int64(no);
            if (number < 1 || number == INT64_MAX) {
                set_why(why, whylen, "%s threads[%zu]: no %s is out of range", name, t, json_object_to_json_string(no));
                goto fail;
            }
            if (count == cap) {
                cap = cap ? 2 * cap : 256;
                refs = xrealloc(refs, cap * sizeof *refs);
            }
            refs[count++] = (chanapi_thread_ref){
                .no = number, .last_modified = opt_int(th, "last_modified"), .replies = opt_int(th, "replies")};
        }
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

static bool site_ok(const chanapi_site *site, const char *board, char *why, size_t whylen) {
    if (!site || !site->name || !site->file_url || !board) {
        set_why(why, whylen, "no site, site name, file URL template or board given");
        return false;
    }
    return true;
}

int chanapi_thread_each(const chanapi_site *site, const char *board, const char *body, size_t len,
                        int64_t crawled_at, chanapi_item_fn fn, void *arg, char *why, size_t whylen) {
    if (!site_ok(site, board, why, whylen)) return -1;
    if (jsonscan_body(body, len, NULL, why, whylen) != 0) return -1;
    size_t root = 0;
    int first = jsonscan_skip_space(body, len, &root);
    if (first != '{') {
        set_why(why, whylen, "not a thread object but %s", text_type_name(first));
        return -1;
    }
    size_t ps, pe;
    if (!jsonscan_member(body, len, root, "posts", &ps, &pe)) {
        set_why(why, whylen, "no posts array");
        return -1;
    }
    if (body[ps] != '[') {
        set_why(why, whylen, "posts is not an array");
        return -1;
    }
    size_t pos = ps, es, ee;
    jsonscan_cost cost;
    if (!jsonscan_element(body, len, &pos, &es, &ee, &cost)) {
        set_why(why, whylen, "posts is empty");
        return -1;
    }
    itemctx cx = {.site = site, .board = board, .crawled_at = crawled_at, .items = NULL};
    int rc = 0;
    size_t idx = 0;
    do {
        char what[40];
        snprintf(what, sizeof what, "posts[%zu]", idx);
        if (!jsonscan_fits(&cost, site->max_tree, true, what, why, whylen)) {
            rc = -1;
            break;
        }
        json_object *post = jsonscan_parse_span(body + es, ee - es, what, why, whylen);
        if (!post || add_item(&cx, post, "", idx, why, whylen) < 0) {
            json_object_put(post);
            rc = -1;
            break;
        }
        rc = fn(arg, post) ? 1 : 0;
        json_object_put(post);
        idx++;
    } while (rc == 0 && jsonscan_element(body, len, &pos, &es, &ee, &cost));
    free(cx.scratch.p);
    return rc;
}

static int collect_item(void *arg, json_object *item) {
    json_object_array_add(arg, json_object_get(item));
    return 0;
}

json_object *chanapi_parse_thread(const chanapi_site *site, const char *board, const char *body, size_t len,
                                  int64_t crawled_at, char *why, size_t whylen) {
    json_object *items = json_object_new_array();
    if (chanapi_thread_each(site, board, body, len, crawled_at, collect_item, items, why, whylen) != 0) {
        json_object_put(items);
        return NULL;
    }
    return items;
}

json_object *chanapi_parse_index(const chanapi_site *site, const char *board, const char *body, size_t len,
                                 int64_t crawled_at, char *why, size_t whylen) {
    if (!site_ok(site, board, why, whylen)) return NULL;
    json_object *root = jsonscan_parse_body(body, len, site->max_tree, false, why, whylen);
    if (!root) return NULL;
    itemctx cx = {.site = site, .board = board, .crawled_at = crawled_at, .items = json_object_new_array()};
    json_object *threads = member(root, "threads");
    if (!json_object_is_type(root, json_type_object)) {
        set_why(why, whylen, "not an index object but %s", type_name(root));
        goto fail;
    }
    if (!json_object_is_type(threads, json_type_array)) {
        bool present = json_object_object_get_ex(root, "threads", NULL);
        set_why(why, whylen, "%s", present ? "threads is not an array" : "no threads array");
        goto fail;
    }
    size_t n = json_object_array_length(threads);
    for (size_t i = 0; i < n; i++) {
        json_object *th = json_object_array_get_idx(threads, i);
        char where[40];
        snprintf(where, sizeof where, "threads[%zu]: ", i);
        if (!json_object_is_type(th, json_type_object)) {
            set_why(why, whylen, "threads[%zu] is not an object but %s", i, type_name(th));
            goto fail;
        }
        if (add_thread(&cx, th, where, why, whylen) < 0) goto fail;
    }
    free(cx.scratch.p);
    json_object_put(root);
    return cx.items;
fail:
    free(cx.scratch.p);
    json_object_put(cx.items);
    json_object_put(root);
    return NULL;
}

json_object *chanapi_post_urls(const chanapi_site *site, const char *board, const json_object *post) {
    json_object *urls = json_object_new_array();
    if (!site || !site->file_url || !board || !json_object_is_type(post, json_type_object)) return urls;
    sbuf scratch = {0};
    post_urls(site, board, post, &scratch, urls);
    free(scratch.p);
    return urls;
}

void chanapi_comment_links(const char *html, size_t len, json_object *urls) {
    if (!html || !json_object_is_type(urls, json_type_array)) return;
    sbuf scratch = {0};
    urlset u;
    urlset_init(&u, urls);
    comment_links(html, len, &scratch, &u);
    urlset_release(&u);
    free(scratch.p);
}
