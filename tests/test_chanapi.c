/* test_chanapi.c -- 4chan and vichan JSON into thread lists and items
 * (chanapi.h).
 *
 * Every recorded 4chan and vichan file of the shared fixtures
 * (tests/fixtures/real, see SOURCES.md there) goes through its parser,
 * and the result is checked against a separate, simple walk of the same
 * JSON (posts, threads, the fields as sent, file URLs) and against facts
 * pinned by hand from the files.  Then comment links case by case, broken
 * bodies (every fixture cut short too), and numbers that must not pass
 * through a double.
 */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "chanapi.h"
#include "xalloc.h"

static const chanapi_site site_4chan = {"4chan", CHANAPI_4CHAN, "https://i.4cdn.org/{board}/{tim}{ext}", 0};
static const chanapi_site site_lain = {"lainchan", CHANAPI_VICHAN, "https://lainchan.org/{board}/src/{tim}{ext}", 0};
/* The same templates cut where board goes and where tim goes, for the
 * separate walk: prefix board middle tim ext. */
typedef struct url_parts {
    const char *prefix, *middle;
} url_parts;
static const url_parts parts_4chan = {"https://i.4cdn.org/", "/"};
static const url_parts parts_lain = {"https://lainchan.org/", "/src/"};
#define LAMBDA "\xce\xbb" /* lainchan's board /λ/ */
#define LAMBDA_URL "%CE%BB" /* the same in a URL */
#define CRAWLED 1790000000

/* ---- helpers ---- */

static char *fixture(const char *rel, size_t *len) {
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    if (!src) fail_msg("IMGFEED_SOURCE_DIR is not set (ctest sets it)");
    char *path = xasprintf("%s/tests/fixtures/real/%s", src, rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    free(path);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static json_object *get(json_object *obj, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static const char *str(json_object *obj, const char *key) {
    json_object *v = get(obj, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static const char *plain(json_object *v) { return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN); }

/* The item of post number no in items, or a failure. */
static json_object *item_no(json_object *items, int64_t no) {
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        if (json_object_get_int64(get(it, "no")) == no) return it;
    }
    fail_msg("no item for post %" PRId64, no);
    return NULL;
}

/* _urls of an item equal to the n strings given. */
static void assert_urls(json_object *item, size_t n, ...) {
    json_object *urls = get(item, "_urls");
    assert_true(json_object_is_type(urls, json_type_array));
    if (json_object_array_length(urls) != n)
        fail_msg("item %s: %zu URLs, expected %zu: %s", str(item, "_id"), json_object_array_length(urls), n,
                 plain(urls));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, i)), want);
    }
    va_end(ap);
}

/* ---- the separate walk: what the items must be ---- */

/* The file URL of obj (a post or an extra_files entry) by the rules read
 * plainly, into buf; false when it has none. */
static bool walk_file(const url_parts *fmt, const char *board, json_object *obj, char *buf, size_t len) {
    json_object *tim = get(obj, "tim"), *fd = get(obj, "filedeleted");
    const char *ext = str(obj, "ext");
    if (!tim || !ext || !*ext || strcmp(ext, "deleted") == 0) return false;
    if (fd && json_object_get_int(fd) == 1) return false;
    const char *t;
    if (json_object_is_type(tim, json_type_int))
        t = plain(tim); /* json-c's own digits */
    else if (json_object_is_type(tim, json_type_string) && json_object_get_string_len(tim) > 0)
        t = json_object_get_string(tim);
    else
        return false;
    /* The board percent-encoded, as in every URL the crawler makes. */
    char enc[256] = "";
    for (const unsigned char *c = (const unsigned char *)board; *c && strlen(enc) + 4 < sizeof enc; c++) {
        if (*c < 0x80)
            strncat(enc, (const char *)c, 1);
        else
            snprintf(enc + strlen(enc), sizeof enc - strlen(enc), "%%%02X", *c);
    }
    snprintf(buf, len, "%s%s%s%s%s", fmt->prefix, enc, fmt->middle, t, ext);
    return true;
}

typedef struct walk_counts {
    size_t posts, files, threads; /* items, file URLs, items of _type thread */
} walk_counts;

/* Check the items made from posts (the posts of a separate parse): one item
 * per post in order, every field of the site unchanged, the added fields,
 * the file URLs first and no URL twice. */
static void check_items(const chanapi_site *site, const url_parts *fmt, const char *board, json_object *posts,
                        json_object *items, size_t first, walk_counts *c) {
    size_t n = json_object_array_length(posts);
    for (size_t i = 0; i < n; i++) {
        json_object *post = json_object_array_get_idx(posts, i);
        json_object *item = json_object_array_get_idx(items, first + i);
        assert_non_null(item);
        /* Every field as sent, and exactly eight more. */
        json_object_object_foreach(post, key, val) {
            json_object *mine = get(item, key);
            if (!mine) fail_msg("post %zu lost field %s", i, key);
            assert_string_equal(plain(mine), plain(val));
        }
        assert_int_equal(json_object_object_length(item), json_object_object_length(post) + 8);
        char id[300];
        snprintf(id, sizeof id, "%s.%s", board, plain(get(post, "no")));
        assert_string_equal(str(item, "_id"), id);
        assert_int_equal(json_object_get_int(get(item, "_v")), 1);
        assert_string_equal(str(item, "_chan"), site->name);
        assert_string_equal(str(item, "_board"), board);
        assert_int_equal(json_object_get_int64(get(item, "_crawled_at")), CRAWLED);
        bool op = json_object_get_int64(get(post, "resto")) == 0;
        assert_string_equal(str(item, "_type"), op ? "thread" : "post");
        c->threads += op;
        /* Files first. */
        json_object *urls = get(item, "_urls");
        size_t k = 0;
        char want[512];
        if (walk_file(fmt, board, post, want, sizeof want)) {
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, k)), want);
            k++;
        }
        json_object *extra = get(post, "extra_files");
        for (size_t e = 0; site->kind == CHANAPI_VICHAN && extra && e < json_object_array_length(extra); e++)
            if (walk_file(fmt, board, json_object_array_get_idx(extra, e), want, sizeof want)) {
                assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, k)), want);
                k++;
            }
        c->files += k;
        assert_int_equal(json_object_get_int64(get(item, "_files")), (int64_t)k);
        /* Then links: absolute http(s), none twice, none a file URL of the site. */
        size_t nu = json_object_array_length(urls);
        for (size_t u = 0; u < nu; u++) {
            const char *s = json_object_get_string(json_object_array_get_idx(urls, u));
            assert_true(strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
            if (u >= k) assert_null(strstr(s, "4cdn.org"));
            for (size_t v = 0; v < u; v++)
                assert_string_not_equal(s, json_object_get_string(json_object_array_get_idx(urls, v)));
        }
        c->posts++;
    }
}

/* Every integer of the raw text after "key": (source digits, found without
 * any JSON parser) is in the serialized items as "key":digits. */
static void check_raw_numbers(const char *raw, const char *serialized, const char *key) {
    char pat[32], want[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    size_t seen = 0;
    for (const char *p = strstr(raw, pat); p; p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')
            q++;
        if (*q != ':') continue;
        q++;
        while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')
            q++;
        size_t d = 0;
        while (q[d] >= '0' && q[d] <= '9')
            d++;
        if (d == 0) continue;
        snprintf(want, sizeof want, "\"%s\":%.*s", key, (int)d, q);
        if (!strstr(serialized, want)) fail_msg("%s from the source is not in the items", want);
        seen++;
    }
    (void)seen;
}

/* ---- every recorded file ---- */

typedef enum { F_THREADS, F_THREAD, F_INDEX } fixture_kind;

static const struct fixture_case {
    const char *file;
    fixture_kind kind;
    const chanapi_site *site;
    const url_parts *fmt;
    const char *board;
    size_t count; /* threads (F_THREADS) or posts */
    size_t files; /* file URLs (F_THREAD, F_INDEX) */
} fixtures[] = {
    {"4chan/g-threads-2014.json", F_THREADS, &site_4chan, NULL, "g", 150, 0},
    {"4chan/g-catalog-2014.json", F_THREADS, &site_4chan, NULL, "g", 150, 0},
    {"4chan/g-index-page1-2014.json", F_INDEX, &site_4chan, &parts_4chan, "g", 72, 26},
    {"4chan/g-thread-41704783.json", F_THREAD, &site_4chan, &parts_4chan, "g", 25, 17},
    {"4chan/g-thread-41703336-webm-gif.json", F_THREAD, &site_4chan, &parts_4chan, "g", 73, 6},
    {"4chan/g-thread-41693287-filedeleted.json", F_THREAD, &site_4chan, &parts_4chan, "g", 113, 17},
    {"4chan/g-thread-39894014-sticky.json", F_THREAD, &site_4chan, &parts_4chan, "g", 1, 1},
    {"4chan/tg-threads-2017.json", F_THREADS, &site_4chan, NULL, "tg", 152, 0},
    {"4chan/v-thread-393603295.json", F_THREAD, &site_4chan, &parts_4chan, "v", 79, 9},
    {"4chan/po-catalog.json", F_THREADS, &site_4chan, NULL, "po", 151, 0},
    {"4chan/g-threads-2026-with-replies.json", F_THREADS, &site_4chan, NULL, "g", 151, 0},
    {"vichan/lainchan-lambda-thread-30364.json", F_THREAD, &site_lain, &parts_lain, LAMBDA, 13, 1},
    {"vichan/lainchan-lambda-threads.json", F_THREADS, &site_lain, NULL, LAMBDA, 130, 0},
};
#define NFIXTURES (sizeof fixtures / sizeof fixtures[0])

static void check_threads_file(const struct fixture_case *fc, const char *body, size_t len) {
    chanapi_thread_ref *refs;
    size_t n;
    char why[256];
    if (chanapi_parse_threads(body, len, 0, &refs, &n, why, sizeof why) != 0) fail_msg("%s: %s", fc->file, why);
    assert_int_equal(n, fc->count);
    json_object *root = json_tokener_parse(body);
    size_t k = 0;
    for (size_t p = 0; p < json_object_array_length(root); p++) {
        json_object *threads = get(json_object_array_get_idx(root, p), "threads");
        for (size_t t = 0; t < json_object_array_length(threads); t++, k++) {
            json_object *th = json_object_array_get_idx(threads, t), *lm = get(th, "last_modified"),
                        *re = get(th, "replies");
            assert_true(k < n);
            assert_int_equal(refs[k].no, json_object_get_int64(get(th, "no")));
            assert_int_equal(refs[k].last_modified, lm ? json_object_get_int64(lm) : -1);
            assert_int_equal(refs[k].replies, re ? json_object_get_int64(re) : -1);
        }
    }
    assert_int_equal(k, n);
    json_object_put(root);
    free(refs);
}

static void check_posts_file(const struct fixture_case *fc, const char *body, size_t len) {
    char why[256];
    json_object *items = fc->kind == F_THREAD
                             ? chanapi_parse_thread(fc->site, fc->board, body, len, CRAWLED, why, sizeof why)
                             : chanapi_parse_index(fc->site, fc->board, body, len, CRAWLED, why, sizeof why);
    if (!items) fail_msg("%s: %s", fc->file, why);
    assert_int_equal(json_object_array_length(items), fc->count);
    json_object *root = json_tokener_parse(body);
    walk_counts c = {0, 0, 0};
    if (fc->kind == F_THREAD) {
        check_items(fc->site, fc->fmt, fc->board, get(root, "posts"), items, 0, &c);
        assert_int_equal(c.threads, 1);
    } else {
        json_object *threads = get(root, "threads");
        for (size_t t = 0; t < json_object_array_length(threads); t++) {
            size_t before = c.threads;
            check_items(fc->site, fc->fmt, fc->board, get(json_object_array_get_idx(threads, t), "posts"), items,
                        c.posts, &c);
            assert_int_equal(c.threads, before + 1); /* one opening post a thread */
        }
    }
    assert_int_equal(c.posts, fc->count);
    assert_int_equal(c.files, fc->files);
    /* Numbers straight from the source text. */
    const char *ser = plain(items);
    static const char *const keys[] = {"no", "tim", "resto", "time", "fsize", "w", "h", "last_modified"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        check_raw_numbers(body, ser, keys[k]);
    json_object_put(root);
    json_object_put(items);
}

static void test_fixtures(void **state) {
    (void)state;
    for (size_t i = 0; i < NFIXTURES; i++) {
        size_t len;
        char *body = fixture(fixtures[i].file, &len);
        if (fixtures[i].kind == F_THREADS)
            check_threads_file(&fixtures[i], body, len);
        else
            check_posts_file(&fixtures[i], body, len);
        free(body);
    }
}

/* Every file recorded in 4chan/ and vichan/ is in the table above. */
static void test_fixtures_complete(void **state) {
    (void)state;
    static const char *const dirs[] = {"4chan", "vichan"};
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    assert_non_null(src);
    size_t found = 0;
    for (size_t d = 0; d < 2; d++) {
        char *path = xasprintf("%s/tests/fixtures/real/%s", src, dirs[d]);
        DIR *dir = opendir(path);
        if (!dir) fail_msg("cannot open %s", path);
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
            char *rel = xasprintf("%s/%s", dirs[d], e->d_name);
            bool listed = false;
            for (size_t i = 0; i < NFIXTURES; i++)
                listed |= strcmp(fixtures[i].file, rel) == 0;
            if (!listed) fail_msg("fixture %s has no case in test_chanapi.c", rel);
            free(rel);
            found++;
        }
        closedir(dir);
        free(path);
    }
    assert_int_equal(found, NFIXTURES);
}

/* ---- facts pinned by hand from the files ---- */

static json_object *thread_items(const chanapi_site *site, const char *board, const char *file) {
    size_t len;
    char *body = fixture(file, &len), why[256];
    json_object *items = chanapi_parse_thread(site, board, body, len, CRAWLED, why, sizeof why);
    if (!items) fail_msg("%s: %s", file, why);
    free(body);
    return items;
}

static size_t items_with_file(json_object *items, const char *host) {
    size_t n = 0;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *urls = get(json_object_array_get_idx(items, i), "_urls");
        n += json_object_array_length(urls) > 0 &&
             strncmp(json_object_get_string(json_object_array_get_idx(urls, 0)), host, strlen(host)) == 0;
    }
    return n;
}

static void test_pinned_4chan(void **state) {
    (void)state;
    /* /v/ 393603295: 79 posts, 9 with files; links in text, after a
     * greentext '>' and inside a spoiler. */
    json_object *v = thread_items(&site_4chan, "v", "4chan/v-thread-393603295.json");
    assert_int_equal(json_object_array_length(v), 79);
    assert_int_equal(items_with_file(v, "https://i.4cdn.org/v/"), 9);
    json_object *op = json_object_array_get_idx(v, 0);
    assert_string_equal(str(op, "_id"), "v.393603295");
    assert_string_equal(str(op, "_type"), "thread");
    assert_urls(op, 2, "https://i.4cdn.org/v/1508165702287.jpg", "https://www.atlus.co.jp/news/5854/");
    assert_urls(item_no(v, 393608641), 1, "https://www.atlus.co.jp/news/5854/");
    assert_urls(item_no(v, 393609258), 1, "http://ran.2hu.moe/ycyeoj.7z");
    assert_urls(item_no(v, 393616610), 1, "https://youtu.be/KwUghPuqNAU");
    assert_urls(item_no(v, 393618056), 1, "https://i.4cdn.org/v/1508176255164.png");
    assert_string_equal(str(item_no(v, 393618056), "_type"), "post");
    json_object_put(v);

    /* /g/ 41693287: the post whose file was deleted has no URL at all (its
     * comment holds only quote links); a mega link split by <wbr>. */
    json_object *g = thread_items(&site_4chan, "g", "4chan/g-thread-41693287-filedeleted.json");
    json_object *fd = item_no(g, 41693450);
    assert_int_equal(json_object_get_int(get(fd, "filedeleted")), 1);
    assert_urls(fd, 0);
    assert_urls(item_no(g, 41698542), 1, "https://mega.co.nz/#!PNF0mZSB!OI8PLVIQFC-wSxu-NIWyxVd1-RBn_xXcgnq3QCYfSp4");
    assert_urls(item_no(g, 41701898), 2, "https://i.4cdn.org/g/1399029952175.jpg", "http://pastebin.com/UGSYFjjk");
    assert_urls(item_no(g, 41693287), 2, "https://i.4cdn.org/g/1398979993907.gif", "http://pastebin.com/cW3JnRBd");
    json_object_put(g);

    /* /g/ 41703336: the webm and the gif. */
    json_object *w = thread_items(&site_4chan, "g", "4chan/g-thread-41703336-webm-gif.json");
    assert_urls(item_no(w, 41704530), 1, "https://i.4cdn.org/g/1399044675525.webm");
    assert_urls(item_no(w, 41703594), 1, "https://i.4cdn.org/g/1399039733661.gif");
    json_object_put(w);

    /* /g/ 41704783: another mega link, split twice. */
    json_object *m = thread_items(&site_4chan, "g", "4chan/g-thread-41704783.json");
    assert_urls(item_no(m, 41706060), 1, "https://mega.co.nz/#!0VchnTia!zILgQVx7F4xgyB3THprpBnQ1OWiKPW509OqAp-gt-ZI");
    json_object_put(m);

    /* The sticky: its file, then every link once, though the comment has
     * each twice (href and text) and two of them nested <a> in <a>. */
    json_object *s = thread_items(&site_4chan, "g", "4chan/g-thread-39894014-sticky.json");
    assert_int_equal(json_object_array_length(s), 1);
    json_object *st = json_object_array_get_idx(s, 0);
    assert_int_equal(json_object_get_int(get(st, "sticky")), 1);
    assert_string_equal(str(st, "_type"), "thread");
    assert_string_equal(str(st, "capcode"), "mod");
    assert_urls(st, 9, "https://i.4cdn.org/g/1390842451744.png", "http://wiki.installgentoo.com/",
                "https://startpage.com/", "https://duckduckgo.com", "https://stackexchange.com/",
                "http://www.logicalincrements.com/", "https://boards.4chan.org/g/searchword",
                "https://boards.4chan.org/g/catalog", "https://www.4chan.org/rules");
    json_object_put(s);
}

static void test_pinned_index(void **state) {
    (void)state;
    size_t len;
    char *body = fixture("4chan/g-index-page1-2014.json", &len), why[256];
    json_object *items = chanapi_parse_index(&site_4chan, "g", body, len, CRAWLED, why, sizeof why);
    if (!items) fail_msg("%s", why);
    assert_int_equal(json_object_array_length(items), 72);
    json_object *first = json_object_array_get_idx(items, 0);
    assert_string_equal(str(first, "_id"), "g.39894014"); /* the sticky leads page 1 */
    assert_string_equal(str(first, "_type"), "thread");
    assert_int_equal(json_object_get_int(get(first, "sticky")), 1);
    json_object_put(items);
    free(body);
}

static void test_pinned_vichan(void **state) {
    (void)state;
    json_object *l = thread_items(&site_lain, LAMBDA, "vichan/lainchan-lambda-thread-30364.json");
    assert_int_equal(json_object_array_length(l), 13);
    json_object *op = item_no(l, 30364);
    assert_string_equal(str(op, "_id"), LAMBDA ".30364");
    assert_string_equal(str(op, "_chan"), "lainchan");
    assert_string_equal(str(op, "_type"), "thread");
    assert_string_equal(str(op, "tim"), "1646887159530-0"); /* still the string */
    assert_urls(op, 1, "https://lainchan.org/" LAMBDA_URL "/src/1646887159530-0.png");
    json_object *del = item_no(l, 32124);
    assert_string_equal(str(del, "ext"), "deleted");
    assert_urls(del, 0);
    assert_urls(item_no(l, 30366), 0); /* a quote link to /λ/res/30364.html#30365 only */
    assert_urls(item_no(l, 30376), 1, "https://youtu.be/nUsDk8wjRPs");
    json_object_put(l);
}

/* The recorded lainchan thread has no extra_files: give its opening post
 * some, as vichan sends them, and read them back as URLs in order. */
static void test_vichan_extra_files(void **state) {
    (void)state;
    size_t len;
    char *body = fixture("vichan/lainchan-lambda-thread-30364.json", &len), why[256];
    json_object *root = json_tokener_parse(body);
    json_object *op = json_object_array_get_idx(get(root, "posts"), 0);
    json_object_object_add(op, "extra_files",
                           json_tokener_parse("[{\"tim\":\"1646887159530-1\",\"ext\":\".jpg\",\"fsize\":1},"
                                              "{\"tim\":\"\",\"ext\":\"deleted\"},"
                                              "{\"tim\":\"1646887159530-2\",\"ext\":\"deleted\"},"
                                              "{\"tim\":\"1646887159530-3\",\"ext\":\".webm\"},"
                                              "{\"tim\":\"1646887159530-0\",\"ext\":\".png\"},"
                                              "{\"ext\":\".gif\"}, 7]"));
    const char *text = plain(root);
    json_object *items = chanapi_parse_thread(&site_lain, LAMBDA, text, strlen(text), CRAWLED, why, sizeof why);
    if (!items) fail_msg("%s", why);
    assert_urls(json_object_array_get_idx(items, 0), 3, "https://lainchan.org/" LAMBDA_URL "/src/1646887159530-0.png",
                "https://lainchan.org/" LAMBDA_URL "/src/1646887159530-1.jpg",
                "https://lainchan.org/" LAMBDA_URL "/src/1646887159530-3.webm");
    assert_int_equal(json_object_array_length(get(json_object_array_get_idx(items, 0), "extra_files")), 7);
    /* A 4chan site reads no extra_files. */
    json_object *urls = chanapi_post_urls(&site_4chan, "g", op);
    assert_int_equal(json_object_array_length(urls), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 0)),
                        "https://i.4cdn.org/g/1646887159530-0.png");
    json_object_put(urls);
    json_object_put(items);
    json_object_put(root);
    free(body);
}

static void test_pinned_threads(void **state) {
    (void)state;
    static const struct {
        const char *file;
        size_t idx;
        int64_t no, last_modified, replies;
    } cases[] = {
        {"4chan/g-threads-2014.json", 0, 39894014, 1392330834, -1},
        {"4chan/g-threads-2014.json", 149, 41704185, 1399045771, -1},
        {"4chan/g-threads-2026-with-replies.json", 0, 105076684, 1745612922, 3},
        {"4chan/g-threads-2026-with-replies.json", 2, 109986626, 1791193874, 0},
        {"4chan/g-threads-2026-with-replies.json", 150, 109980439, 1791157627, 46},
        {"4chan/tg-threads-2017.json", 0, 15396072, 1798779605, -1},
        {"4chan/g-catalog-2014.json", 0, 39894014, -1, 0}, /* the 2014 catalog has no last_modified */
        {"4chan/g-catalog-2014.json", 149, 41704185, -1, 21},
        {"4chan/po-catalog.json", 0, 570368, 1546294897, 2},
        {"4chan/po-catalog.json", 150, 577937, 1573900140, 1},
        {"vichan/lainchan-lambda-threads.json", 0, 42742, 1790105649, -1}, /* page 0, threads before page */
        {"vichan/lainchan-lambda-threads.json", 5, 30364, 1790911432, -1},
        {"vichan/lainchan-lambda-threads.json", 129, 39212, 1747908025, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len, n;
        char *body = fixture(cases[i].file, &len), why[256];
        chanapi_thread_ref *refs;
        if (chanapi_parse_threads(body, len, 0, &refs, &n, why, sizeof why) != 0) fail_msg("%s: %s", cases[i].file, why);
        assert_true(cases[i].idx < n);
        assert_int_equal(refs[cases[i].idx].no, cases[i].no);
        assert_int_equal(refs[cases[i].idx].last_modified, cases[i].last_modified);
        assert_int_equal(refs[cases[i].idx].replies, cases[i].replies);
        free(refs);
        free(body);
    }
}

/* ---- comment links ---- */

static void test_comment_links(void **state) {
    (void)state;
    static const struct {
        const char *com;
        const char *urls[4];
    } cases[] = {
        {"", {NULL}},
        {"no links here, just http and https: and http:// alone", {NULL}},
        {"see http://a.example/x and https://b.example/y?q=1#f", {"http://a.example/x", "https://b.example/y?q=1#f"}},
        /* 4chan breaks long words with <wbr> */
        {"https://mega.co.nz/#!ab<wbr>cd<wbr>ef<br>next line", {"https://mega.co.nz/#!abcdef"}},
        {"http://x.example/a<wbr/>b<wbr />c<WBR>d", {"http://x.example/abcd"}},
        {"<span class=\"quote\">&gt;http://green.example/<wbr>more</span>", {"http://green.example/more"}},
        /* entities decoded, and a decoded quote ends the URL */
        {"http://x.example/a?b=1&amp;c=2", {"http://x.example/a?b=1&c=2"}},
        {"&quot;http://q.example/&quot; and &#039;http://r.example/&#39;", {"http://q.example/", "http://r.example/"}},
        {"&#104;ttp://dec.example/ &#x68;ttps://hex.example/ &#X68;ttp://HEX.example/",
         {"http://dec.example/", "https://hex.example/", "http://HEX.example/"}},
        {"caf&#233; http://caf&#xe9;.example/&lt;b", {"http://caf\xc3\xa9.example/"}},
        {"bad &#0; &#xD800; &#99999999; &bogus; &amp http://after.example/&nbsp;x", {"http://after.example/"}},
        /* hrefs: absolute http(s) only; quote links are not URLs of the item */
        {"<a href=\"#p123\" class=\"quotelink\">&gt;&gt;123</a>", {NULL}},
        {"<a href=\"/g/thread/41693287#p41693375\" class=\"quotelink\">&gt;&gt;41693375</a>", {NULL}},
        {"<a onclick=\"highlightReply('30365', event);\" href=\"/\xce\xbb/res/30364.html#30365\">&gt;&gt;30365</a>",
         {NULL}},
        {"<a href=\"//boards.4chan.org/g/\">&gt;&gt;&gt;/g/</a>", {NULL}},
        {"<a href=\"https://a.example/\">https://a.example/</a>", {"https://a.example/"}},
        {"<a onclick=\"f('>', 1);\" href=\"https://o.example/?x=1&amp;y=2\" target=\"_blank\">link</a>",
         {"https://o.example/?x=1&y=2"}},
        {"<a href='http://single.example/'>s</a> <a href=http://bare.example/>b</a>",
         {"http://single.example/", "http://bare.example/"}},
        {"<A HREF=\" HTTPS://Spaced.Example/ \">x</A>", {"HTTPS://Spaced.Example/"}},
        {"<a class=\"x\" href=\"mailto:a@b.example\">m</a><a data-href=\"http://no.example/\">n</a>", {NULL}},
        {"<abbr href=\"http://not-an-anchor.example/\">x</abbr>", {NULL}},
        /* order kept, duplicates dropped */
        {"http://d.example/ http://d.example/ <a href=\"http://e.example/\">http://d.example/</a> http://e.example/",
         {"http://d.example/", "http://e.example/"}},
        {"<s>http://spoiler.example/</s>line<br>http://a.example/<br>HTTP://b.example/",
         {"http://spoiler.example/", "http://a.example/", "HTTP://b.example/"}},
        {"tab\thttp://t.example/\tx\nhttp://n.example/\r\n", {"http://t.example/", "http://n.example/"}},
        {"a < b http://lt.example/<i>x</i>", {"http://lt.example/"}},
        {"<!-- http://hidden.example/ --> http://shown.example/", {"http://shown.example/"}},
        {"xhttp://glued.example/", {"http://glued.example/"}},
        {"ahttps://s.example/ Xttps://no.example/ http:/no.example/ https:no ttp://no.example/",
         {"https://s.example/"}},
        {"http&#58;//colon.example/ https&#x3A;//hexcolon.example/",
         {"http://colon.example/", "https://hexcolon.example/"}},
        {"&gt;&gt;123<br>no colon at all &amp; &#039;quoted&#039;", {NULL}},
        {"http://a.example/http://b.example/ http://c.example/",
         {"http://a.example/http://b.example/", "http://c.example/"}},
        /* cut short: an unclosed tag, an entity without ';' */
        {"http://cut.example/&amp", {"http://cut.example/&amp"}},
        {"<a href=\"http://open.example/", {"http://open.example/"}},
        {"text <a href=", {NULL}},
        {"<", {NULL}},
        {"&", {NULL}},
        {"</", {NULL}},
        /* user info of a link is never kept, so never sent on or shown */
        {"http://user:secret@creds.example/x.png <a href=\"https://u@h.example:8080/a.jpg?q=1\">f</a>",
         {"http://creds.example/x.png", "https://h.example:8080/a.jpg?q=1"}},
        {"http://creds.example/x.png http://a:b@creds.example/x.png", {"http://creds.example/x.png"}},
        {"http://host.example/path@not-userinfo.png", {"http://host.example/path@not-userinfo.png"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *urls = json_object_new_array();
        chanapi_comment_links(cases[i].com, strlen(cases[i].com), urls);
        size_t want = 0;
        while (want < 4 && cases[i].urls[want])
            want++;
        if (json_object_array_length(urls) != want) fail_msg("case %zu (%s): got %s", i, cases[i].com, plain(urls));
        for (size_t k = 0; k < want; k++)
            if (strcmp(json_object_get_string(json_object_array_get_idx(urls, k)), cases[i].urls[k]) != 0)
                fail_msg("case %zu (%s): got %s", i, cases[i].com, plain(urls));
        json_object_put(urls);
    }
}

/* Links already in the array (the files) are not added again; a comment
 * with thousands of links keeps them all, once each, in order. */
static void test_comment_links_dedup(void **state) {
    (void)state;
    json_object *urls = json_object_new_array();
    json_object_array_add(urls, json_object_new_string("https://i.4cdn.org/g/1.jpg"));
    static const char com[] =
        "https://i.4cdn.org/g/1.jpg <a href=\"https://i.4cdn.org/g/1.jpg\">f</a> http://n.example/";
    chanapi_comment_links(com, sizeof com - 1, urls);
    assert_int_equal(json_object_array_length(urls), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 1)), "http://n.example/");
    json_object_put(urls);

    size_t cap = 3000 * 40, len = 0;
    char *big = xmalloc(cap);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 1500; i++)
            len += (size_t)snprintf(big + len, cap - len, "http://h%d.example/ ", i);
    urls = json_object_new_array();
    chanapi_comment_links(big, len, urls);
    assert_int_equal(json_object_array_length(urls), 1500);
    for (int i = 0; i < 1500; i += 97) {
        char want[40];
        snprintf(want, sizeof want, "http://h%d.example/", i);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, (size_t)i)), want);
    }
    json_object_put(urls);
    free(big);
}

/* ---- broken input ---- */

static void expect_thread_error(const char *body, const char *reason) {
    char why[256] = "";
    json_object *items = chanapi_parse_thread(&site_4chan, "g", body, strlen(body), CRAWLED, why, sizeof why);
    if (items) fail_msg("'%s' parsed: %s", body, plain(items));
    if (!strstr(why, reason)) fail_msg("'%s': reason '%s', expected '%s'", body, why, reason);
}

static void test_broken_thread(void **state) {
    (void)state;
    static const struct {
        const char *body, *reason;
    } cases[] = {
        {"", "not JSON: empty body"},
        {" \n ", "not JSON: empty body"},
        {"not json", "not JSON"},
        {"{\"posts\":[{\"no\":1,\"resto\":0}", "not JSON: truncated"},
        {"{\"posts\":[{\"no\":1,\"com\":\"abc", "not JSON: truncated"},
        {"{\"posts\":[]} {}", "not JSON: unexpected bytes after the value"},
        {"{}", "no posts array"},
        {"[]", "not a thread object but array"},
        {"7", "not a thread object but number"},
        {"{\"posts\":{}}", "posts is not an array"},
        {"{\"posts\":null}", "posts is not an array"},
        {"{\"posts\":[]}", "posts is empty"},
        {"{\"posts\":[{\"resto\":0,\"com\":\"x\"}]}", "posts[0] has no integer no"},
        {"{\"posts\":[{\"no\":1,\"resto\":0},{\"no\":\"2\",\"resto\":1}]}", "posts[1] has no integer no"},
        {"{\"posts\":[{\"no\":1.5}]}", "posts[0] has no integer no"},
        {"{\"posts\":[{\"no\":1,\"resto\":0},7]}", "posts[1] is not an object"},
        {"{\"posts\":[[1]]}", "posts[0] is not an object"},
        {"{\"posts\":[{\"no\":0}]}", "posts[0]: no 0 is out of range"},
        {"{\"posts\":[{\"no\":-3}]}", "out of range"},
        {"{\"posts\":[{\"no\":18446744073709551615}]}", "out of range"},
        {"{\"posts\":[{\"no\":1,\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]}]}",
         "not JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_thread_error(cases[i].body, cases[i].reason);

    /* A NUL inside the body, and no site. */
    char why[256];
    static const char nul[] = "{\"posts\":[{\"no\":1}]}\0x";
    assert_null(chanapi_parse_thread(&site_4chan, "g", nul, sizeof nul - 1, 0, why, sizeof why));
    assert_null(chanapi_parse_thread(NULL, "g", "{}", 2, 0, why, sizeof why));
    assert_null(chanapi_parse_thread(&site_4chan, "g", "{}", 2, 0, NULL, 0)); /* why may be NULL */
}

static void test_broken_index_and_threads(void **state) {
    (void)state;
    static const struct {
        const char *body, *reason;
    } index_cases[] = {
        {"{}", "no threads array"},
        {"[]", "not an index object but array"},
        {"{\"threads\":{}}", "threads is not an array"},
        {"{\"threads\":null}", "threads is not an array"},
        {"{\"threads\":[{\"posts\":[{\"no\":1,\"resto\":0}]},5]}", "threads[1] is not an object"},
        {"{\"threads\":[{\"posts\":[{\"no\":1,\"resto\":0}]},{}]}", "threads[1]: no posts array"},
        {"{\"threads\":[{\"posts\":[{\"no\":1,\"resto\":0},{\"resto\":1}]}]}",
         "threads[0]: posts[1] has no integer no"},
        {"{\"threads\":[{\"posts\":[", "not JSON: truncated"},
    };
    char why[256];
    for (size_t i = 0; i < sizeof index_cases / sizeof index_cases[0]; i++) {
        const char *b = index_cases[i].body;
        json_object *items = chanapi_parse_index(&site_4chan, "g", b, strlen(b), CRAWLED, why, sizeof why);
        if (items) fail_msg("'%s' parsed", b);
        if (!strstr(why, index_cases[i].reason)) fail_msg("'%s': reason '%s'", b, why);
    }
    json_object *empty = chanapi_parse_index(&site_4chan, "g", "{\"threads\":[]}", 14, CRAWLED, why, sizeof why);
    assert_non_null(empty);
    assert_int_equal(json_object_array_length(empty), 0);
    json_object_put(empty);

    static const struct {
        const char *body, *reason;
    } threads_cases[] = {
        {"{}", "not an array of pages but object"},
        {"[]", "no pages"},
        {"[5]", "pages[0] is not an object"},
        {"[{\"page\":1}]", "page 1 has no threads array"},
        {"[{\"page\":1,\"threads\":[]},{\"page\":2,\"threads\":{}}]", "page 2 has no threads array"},
        {"[{\"threads\":[]},{\"threads\":null}]", "pages[1] has no threads array"},
        {"[{\"page\":0,\"threads\":[{\"last_modified\":1}]}]", "page 0 threads[0] has no integer no"},
        {"[{\"page\":1,\"threads\":[{\"no\":1},\"x\"]}]", "page 1 threads[1] is not an object"},
        {"[{\"page\":1,\"threads\":[{\"no\":-1}]}]", "out of range"},
        {"[{\"page\":1,\"threads\":[{\"no\":1}", "not JSON: truncated"},
        {"", "not JSON: empty body"},
    };
    for (size_t i = 0; i < sizeof threads_cases / sizeof threads_cases[0]; i++) {
        const char *b = threads_cases[i].body;
        chanapi_thread_ref *refs = (chanapi_thread_ref *)1;
        size_t n = 99;
        if (chanapi_parse_threads(b, strlen(b), 0, &refs, &n, why, sizeof why) == 0) fail_msg("'%s' parsed", b);
        assert_null(refs);
        assert_int_equal(n, 0);
        if (!strstr(why, threads_cases[i].reason)) fail_msg("'%s': reason '%s'", b, why);
    }
    /* Empty pages: a board with no threads. */
    chanapi_thread_ref *refs;
    size_t n;
    static const char empty_pages[] = "[{\"threads\":[],\"page\":0},{\"threads\":[],\"page\":1}]";
    assert_int_equal(chanapi_parse_threads(empty_pages, sizeof empty_pages - 1, 0, &refs, &n, why, sizeof why), 0);
    assert_int_equal(n, 0);
    free(refs);
}

/* A fixture cut to its first `cut` bytes, in a buffer of exactly that
 * size so that ASan sees any read past the end: an error. */
static void check_cut(const struct fixture_case *fc, const char *body, size_t cut) {
    char *copy = xmalloc(cut + 1);
    memcpy(copy, body, cut);
    char why[256] = "";
    bool parsed;
    if (fc->kind == F_THREADS) {
        chanapi_thread_ref *refs;
        size_t n;
        parsed = chanapi_parse_threads(copy, cut, 0, &refs, &n, why, sizeof why) == 0;
        if (parsed) free(refs);
    } else {
        json_object *items = fc->kind == F_THREAD
                                 ? chanapi_parse_thread(fc->site, fc->board, copy, cut, 0, why, sizeof why)
                                 : chanapi_parse_index(fc->site, fc->board, copy, cut, 0, why, sizeof why);
        parsed = items != NULL;
        json_object_put(items);
    }
    if (parsed) fail_msg("%s cut at %zu parsed", fc->file, cut);
    if (!strstr(why, "not JSON")) fail_msg("%s cut at %zu: %s", fc->file, cut, why);
    free(copy);
}

/* Every fixture cut short anywhere before its last bracket (about 250 cuts
 * a file, and the last three bytes one by one) is an error, never a crash
 * or a leak. */
static void test_truncated_fixtures(void **state) {
    (void)state;
    for (size_t i = 0; i < NFIXTURES; i++) {
        size_t len;
        char *body = fixture(fixtures[i].file, &len);
        size_t last = len; /* the length up to the closing bracket */
        while (last > 0 && (body[last - 1] == '\n' || body[last - 1] == ' ' || body[last - 1] == '\r'))
            last--;
        assert_true(last > 3);
        for (size_t cut = 0; cut < last - 3; cut += last / 250 + 1)
            check_cut(&fixtures[i], body, cut);
        for (size_t cut = last - 3; cut < last; cut++)
            check_cut(&fixtures[i], body, cut);
        free(body);
    }
}

/* ---- numbers kept exactly ---- */

static void test_exact_numbers(void **state) {
    (void)state;
    static const char body[] =
        "{\"posts\":[{\"no\":9007199254740993,\"resto\":0,\"tim\":1399041215455,\"ext\":\".jpg\","
        "\"time\":1399041215,\"ratio\":1.10,\"tiny\":1e-7,\"big\":18446744073709551615},"
        "{\"no\":9007199254740995,\"resto\":9007199254740993,\"tim\":9223372036854775807,"
        "\"ext\":\".png\"}]}";
    char why[256];
    json_object *items = chanapi_parse_thread(&site_4chan, "g", body, sizeof body - 1, 1399041300, why, sizeof why);
    if (!items) fail_msg("%s", why);
    json_object *op = json_object_array_get_idx(items, 0);
    const char *s = plain(op);
    assert_non_null(strstr(s, "\"no\":9007199254740993,"));
    assert_non_null(strstr(s, "\"tim\":1399041215455,"));
    assert_non_null(strstr(s, "\"ratio\":1.10,"));
    assert_non_null(strstr(s, "\"tiny\":1e-7,"));
    assert_non_null(strstr(s, "\"big\":18446744073709551615,"));
    assert_non_null(strstr(s, "\"_id\":\"g.9007199254740993\""));
    assert_non_null(strstr(s, "\"_crawled_at\":1399041300,"));
    assert_urls(op, 1, "https://i.4cdn.org/g/1399041215455.jpg");
    json_object *reply = json_object_array_get_idx(items, 1);
    assert_string_equal(str(reply, "_type"), "post");
    assert_string_equal(str(reply, "_id"), "g.9007199254740995");
    assert_urls(reply, 1, "https://i.4cdn.org/g/9223372036854775807.png");
    /* The whole array back through a parser: the same numbers. */
    json_object *again = json_tokener_parse(plain(items));
    assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(again, 0), "no")), INT64_C(9007199254740993));
    assert_int_equal(json_object_get_int64(get(json_object_array_get_idx(again, 0), "tim")), INT64_C(1399041215455));
    json_object_put(again);
    json_object_put(items);

    chanapi_thread_ref *refs;
    size_t n;
    static const char threads[] =
        "[{\"page\":1,\"threads\":[{\"no\":9007199254740993,\"last_modified\":1399041215455}]}]";
    assert_int_equal(chanapi_parse_threads(threads, sizeof threads - 1, 0, &refs, &n, why, sizeof why), 0);
    assert_int_equal(n, 1);
    assert_true(refs[0].no == INT64_C(9007199254740993));
    assert_true(refs[0].last_modified == INT64_C(1399041215455));
    assert_int_equal(refs[0].replies, -1);
    free(refs);
}

/* ---- smaller rules ---- */

static void test_rules(void **state) {
    (void)state;
    chanapi_kind k = CHANAPI_VICHAN;
    assert_true(chanapi_kind_from_name("4chan", &k));
    assert_int_equal(k, CHANAPI_4CHAN);
    assert_true(chanapi_kind_from_name("vichan", &k));
    assert_int_equal(k, CHANAPI_VICHAN);
    assert_false(chanapi_kind_from_name("lynxchan", &k));
    assert_false(chanapi_kind_from_name("4CHAN", &k));
    assert_false(chanapi_kind_from_name("", &k));
    assert_false(chanapi_kind_from_name(NULL, &k));
    assert_int_equal(k, CHANAPI_VICHAN);
    assert_string_equal(chanapi_kind_name(CHANAPI_4CHAN), "4chan");
    assert_string_equal(chanapi_kind_name(CHANAPI_VICHAN), "vichan");

    /* No resto: the first post opens the thread.  A site's own _id is
     * replaced.  Files: filedeleted, empty ext, a tim that is neither an
     * integer nor a string give none. */
    static const char body[] =
        "{\"posts\":[{\"no\":5,\"_id\":\"theirs\",\"tim\":1,\"ext\":\".jpg\",\"filedeleted\":1},"
        "{\"no\":6,\"tim\":2,\"ext\":\"\"},{\"no\":7,\"tim\":3.5,\"ext\":\".jpg\"},"
        "{\"no\":8,\"tim\":null,\"ext\":\".jpg\"},{\"no\":9,\"tim\":\"\",\"ext\":\".png\"},"
        "{\"no\":10,\"tim\":4,\"ext\":\".jpg\",\"filedeleted\":0,\"com\":\"https://i.4cdn.org/b/4.jpg\"}]}";
    char why[256];
    json_object *items = chanapi_parse_thread(&site_4chan, "b", body, sizeof body - 1, 0, why, sizeof why);
    if (!items) fail_msg("%s", why);
    assert_string_equal(str(json_object_array_get_idx(items, 0), "_type"), "thread");
    assert_string_equal(str(json_object_array_get_idx(items, 0), "_id"), "b.5");
    assert_string_equal(str(json_object_array_get_idx(items, 1), "_type"), "post");
    for (size_t i = 0; i < 5; i++)
        assert_urls(json_object_array_get_idx(items, i), 0);
    assert_urls(json_object_array_get_idx(items, 5), 1, "https://i.4cdn.org/b/4.jpg");
    json_object_put(items);

    /* A long board name still makes its _id. */
    char board[400];
    memset(board, 'x', sizeof board - 1);
    board[sizeof board - 1] = '\0';
    static const char one[] = "{\"posts\":[{\"no\":1}]}";
    items = chanapi_parse_thread(&site_4chan, board, one, sizeof one - 1, 0, why, sizeof why);
    assert_non_null(items);
    const char *id = str(json_object_array_get_idx(items, 0), "_id");
    assert_int_equal(strlen(id), sizeof board - 1 + 2);
    assert_string_equal(id + sizeof board - 1, ".1");
    json_object_put(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_fixtures_complete),
        cmocka_unit_test(test_pinned_4chan),
        cmocka_unit_test(test_pinned_index),
        cmocka_unit_test(test_pinned_vichan),
        cmocka_unit_test(test_vichan_extra_files),
        cmocka_unit_test(test_pinned_threads),
        cmocka_unit_test(test_comment_links),
        cmocka_unit_test(test_comment_links_dedup),
        cmocka_unit_test(test_broken_thread),
        cmocka_unit_test(test_broken_index_and_threads),
        cmocka_unit_test(test_truncated_fixtures),
        cmocka_unit_test(test_exact_numbers),
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
