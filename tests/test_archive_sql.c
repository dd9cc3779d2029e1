/* test_archive_sql.c -- the SQL examples of docs/querying.md, run against a real archive.
 *
 * docs/querying.md, "Querying the archive", shows psql blocks, each after a line
 * `<!-- sql-example: NAME -->`.  The group setup builds a real archive and
 * every test runs one block with psql as a user pastes it, then checks the
 * answer against values this file computes in C from the same items, never
 * against output recorded from a run:
 *
 *  - the items are the posts of the recorded 4chan threads
 *    (tests/fixtures/real/4chan/<board>-thread-*.json), with the `_` fields
 *    of docs/design.md; an opening post goes to
 *    routing key 4chan.thread.<board>, a reply to 4chan.post.<board>;
 *  - their `_img` entries are real: pictures drawn with libgd (an original,
 *    a slightly edited JPEG repost of it, a more heavily edited copy, and
 *    unrelated ones), hashed by `imgfeed-hasher hash`, and attached to the
 *    posts that have a file of the same format (the post's md5, fsize, w and
 *    h follow the picture); every eighth file and the WebMs get an
 *    "http 404" entry instead;
 *  - the real imgfeed-archiver stores them, and stops with SIGTERM.
 *
 * Where the archive lives.  docs/querying.md names the tables of the default
 * exchange, chan_4chan_thread and chan_4chan_post.  The test neither uses
 * the exchange "chan" (on a broker that runs a real pipeline, its archivers
 * would take the test's items, and deleting the topology afterwards would
 * delete theirs) nor writes to the database of IMGFEED_PG.  It creates a
 * database of its own on that server, runs the archiver into it with a fresh
 * exchange E, and renames the tables and indexes E_4chan_* there to
 * chan_4chan_*: exactly what `--exchange chan` would have made, which the
 * test checks (imgfeed_ensure_table finds nothing to add).  So the page's
 * SQL runs byte for byte as printed.  The database and E's queues and
 * exchanges are dropped at the end.
 *
 * psql runs with -X, ON_ERROR_STOP and --csv, in a session time zone far
 * from UTC so that no query leans on it.  Each block runs once as printed,
 * then with its `\set` lines for the test's parameters removed and the
 * values given with -v.  The index checks run the same blocks under EXPLAIN,
 * or under auto_explain for the plans inside imgfeed_find_image, with
 * enable_seqscan off since the tables are small.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gd.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "mq.h"
#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "tablename.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 180000    /* longest any wait may take before the test fails */
#define REPLIES_PER_MSG 25 /* replies per published message, as a crawler batches them */
#define ERROR_EVERY 8      /* every eighth file becomes a failed download */
#define NEAR 10            /* docs/querying.md's near-duplicate threshold */
#define SESSION_TZ "Asia/Tokyo"

/* --- the pictures --- */

typedef struct picture {
    const char *name;                           /* file name, which gives its format */
    const char *role;                           /* for messages */
    json_object *img;                           /* the `_img` entry, without "url" */
    const char *sha1, *md5, *phash, *phash_hex; /* inside img */
} picture;

enum { PIC_ORIGINAL, PIC_REPOST, PIC_EDITED, PIC_COUNT = 7 };

static picture pictures[PIC_COUNT] = {
    {"original.png", "the original", NULL, NULL, NULL, NULL, NULL},
    {"repost.jpg", "its repost (small patch, JPEG q60)", NULL, NULL, NULL, NULL, NULL},
    {"edited.jpg", "its edited copy (larger patch, JPEG q80)", NULL, NULL, NULL, NULL, NULL},
    {"other1.png", "an unrelated PNG", NULL, NULL, NULL, NULL, NULL},
    {"other2.png", "another unrelated PNG", NULL, NULL, NULL, NULL, NULL},
    {"other3.jpg", "an unrelated JPEG", NULL, NULL, NULL, NULL, NULL},
    {"other4.gif", "an unrelated GIF", NULL, NULL, NULL, NULL, NULL},
};

/* --- the archive, as this file expects it --- */

typedef struct thread_file {
    char *board;
    json_object *posts; /* the recorded "posts" array */
} thread_file;

typedef struct ctx {
    char *dir;      /* temporary files */
    char *exchange; /* E */
    char *dbname;   /* the test's own database */
    char *conninfo; /* IMGFEED_PG with dbname replaced */
    char *psql;     /* the psql binary */
    char *readme;   /* docs/querying.md */
    PGconn *db;     /* to the test's database */
    mq *q;          /* publishes to E */
    proc archiver;
    thread_file *threads;
    size_t nthreads;
    json_object *items; /* every item, in publishing order */
    long nthread_items, npost_items;
} ctx;

static ctx t;

/* --- small helpers --- */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *text = xmalloc(cap);
    size_t n;
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) text = xrealloc(text, cap *= 2);
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s: %s", path, strerror(errno));
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) fail_msg("cannot write %s", path);
}

static const char *str_of(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

static long long_of(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? (long)json_object_get_int64(v) : -1;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail_msg("'%c' is not a hex digit", c);
    return 0;
}

/* The Hamming distance of two hashes in imagehash's hex form, computed
 * here without the SQL helper; -1 when their lengths differ. */
static int hex_distance(const char *a, const char *b) {
    if (strlen(a) != strlen(b)) return -1;
    int d = 0;
    for (size_t i = 0; a[i]; i++)
        d += __builtin_popcount((unsigned)(hex_value(a[i]) ^ hex_value(b[i])));
    return d;
}

/* Standard base64 of the bytes written in HEX (4chan's md5 field). */
static char *base64_of_hex(const char *hex) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(hex) / 2;
    unsigned char bytes[64];
    assert_true(n <= sizeof bytes);
    for (size_t i = 0; i < n; i++)
        bytes[i] = (unsigned char)(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)bytes[i] << 16 | (i + 1 < n ? (uint32_t)bytes[i + 1] << 8 : 0) | (i + 2 < n ? bytes[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* EPOCH as PostgreSQL reads it, written in the zone OFFSET hours from UTC:
 * "2014-05-02 08:00:00-04". */
static void format_time(long epoch, int offset_hours, char out[32]) {
    time_t when = (time_t)(epoch + offset_hours * 3600L);
    struct tm tm;
    gmtime_r(&when, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, 32 - n, "%+03d", offset_hours);
}

/* The calendar day of EPOCH in the time zone TZ (an IANA name), from the C
 * library's own time zone data. */
static void day_in_zone(long epoch, const char *tz, char out[16]) {
    char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", tz, 1);
    tzset();
    time_t when = (time_t)epoch;
    struct tm tm;
    localtime_r(&when, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

/* The lines of a JSON array of strings, for failure messages and for
 * comparing answers as wholes. */
static void assert_lines_equal(const char *what, json_object *got, json_object *want) {
    if (json_object_equal(got, want)) return;
    fail_msg("%s:\n  got      %s\n  expected %s", what, json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
             json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(json_object_get_string(*(json_object *const *)a), json_object_get_string(*(json_object *const *)b));
}

/* --- the test's database --- */

/* IMGFEED_PG (a conninfo string or a URI) with dbname DBNAME, as a
 * conninfo string for libpq, psql and the archiver. */
static char *conninfo_with_dbname(const char *base, const char *dbname) {
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &err);
    if (!opts) fail_msg("IMGFEED_PG is not a valid conninfo: %s", err ? err : "out of memory");
    size_t cap = 256, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (PQconninfoOption *o = opts;; o++) {
        const char *key = o->keyword ? o->keyword : "dbname";
        const char *val = o->keyword ? o->val : dbname;
        if (o->keyword && (!o->val || strcmp(o->keyword, "dbname") == 0)) continue;
        if (len + 2 * strlen(val) + strlen(key) + 8 > cap) out = xrealloc(out, cap = cap * 2 + 2 * strlen(val) + 64);
        len += (size_t)sprintf(out + len, "%s%s='", len ? " " : "", key);
        for (const char *p = val; *p; p++) {
            if (*p == '\'' || *p == '\\') out[len++] = '\\';
            out[len++] = *p;
        }
        out[len++] = '\'';
        out[len] = '\0';
        if (!o->keyword) break;
    }
    PQconninfoFree(opts);
    return out;
}

static void db_create(void) {
    t.dbname = xasprintf("imgfeed_sql_%d", (int)getpid());
    pgtest_exec("DROP DATABASE IF EXISTS %s WITH (FORCE)", t.dbname);
    /* C collation: docs/querying.md's ORDER BY id sorts as strcmp does here. */
    pgtest_exec("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", t.dbname);
    t.conninfo = conninfo_with_dbname(testenv_require("IMGFEED_PG"), t.dbname);
    t.db = PQconnectdb(t.conninfo);
    if (PQstatus(t.db) != CONNECTION_OK) fail_msg("cannot connect to %s: %s", t.conninfo, PQerrorMessage(t.db));
    PQclear(PQexec(t.db, "SET client_min_messages = warning"));
}

static void db_drop(void) {
    if (t.db) PQfinish(t.db);
    t.db = NULL;
    if (t.dbname) pgtest_exec("DROP DATABASE IF EXISTS %s WITH (FORCE)", t.dbname);
}

/* --- pictures: drawn with libgd, hashed by imgfeed-hasher hash --- */

static uint32_t rng_state;

static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A W x H scene from SEED: a gradient with a dozen rectangles and ellipses. */
static gdImagePtr draw_scene(int w, int h, uint32_t seed) {
    rng_state = seed;
    gdImagePtr im = gdImageCreateTrueColor(w, h);
    assert_non_null(im);
    int r0 = (int)(rng_next() % 256), g0 = (int)(rng_next() % 256), b0 = (int)(rng_next() % 256);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            gdImageSetPixel(im, x, y, gdTrueColor((r0 + x * 128 / w) % 256, (g0 + y * 128 / h) % 256, b0));
    for (int i = 0; i < 12; i++) {
        int c = gdTrueColor((int)(rng_next() % 256), (int)(rng_next() % 256), (int)(rng_next() % 256));
        int cx = (int)(rng_next() % (uint32_t)w), cy = (int)(rng_next() % (uint32_t)h);
        int rw = 20 + (int)(rng_next() % (uint32_t)(w / 3)), rh = 20 + (int)(rng_next() % (uint32_t)(h / 3));
        if (i % 2)
            gdImageFilledEllipse(im, cx, cy, rw, rh, c);
        else
            gdImageFilledRectangle(im, cx - rw / 2, cy - rh / 2, cx + rw / 2, cy + rh / 2, c);
    }
    return im;
}

/* Write IM as the format NAME ends in (png, jpg at QUALITY, gif). */
static void save_picture(gdImagePtr im, const char *name, int quality) {
    const char *ext = strrchr(name, '.');
    int size = 0;
    void *data = strcmp(ext, ".png") == 0   ? gdImagePngPtr(im, &size)
                 : strcmp(ext, ".jpg") == 0 ? gdImageJpegPtr(im, &size, quality)
                                            : gdImageGifPtr(im, &size);
    assert_non_null(data);
    char *path = xasprintf("%s/%s", t.dir, name);
    write_file(path, data, (size_t)size);
    free(path);
    gdFree(data);
}

/* The original, its repost (a 24-pixel patch, JPEG q60: a few phash bits
 * away), its edited copy (a 36-pixel patch: more than NEAR bits away), and
 * four unrelated scenes. */
static void draw_pictures(void) {
    gdImagePtr im = draw_scene(640, 480, 1);
    save_picture(im, pictures[PIC_ORIGINAL].name, 0);
    gdImageFilledRectangle(im, 600 - 24, 20, 600, 20 + 24, gdTrueColor(250, 250, 250));
    save_picture(im, pictures[PIC_REPOST].name, 60);
    gdImageFilledRectangle(im, 600 - 36, 20, 600, 20 + 36, gdTrueColor(250, 250, 250));
    save_picture(im, pictures[PIC_EDITED].name, 80);
    gdImageDestroy(im);
    for (int i = PIC_EDITED + 1; i < PIC_COUNT; i++) {
        im = draw_scene(500 + 20 * i, 400, (uint32_t)i * 7919u);
        save_picture(im, pictures[i].name, 85);
        gdImageDestroy(im);
    }
}

/* Run `imgfeed-hasher hash` on every picture and keep each line's `_img`
 * fields: without "file" and the *_hex forms (phash_hex is kept aside for
 * the distances). */
static void hash_pictures(void) {
    char *binary = xasprintf("%s/hasher/imgfeed-hasher", testenv_binary_dir());
    char *paths[PIC_COUNT];
    const char *argv[PIC_COUNT + 5];
    int n = 0;
    argv[n++] = binary;
    argv[n++] = "hash";
    argv[n++] = "--log-level";
    argv[n++] = "error";
    for (int i = 0; i < PIC_COUNT; i++)
        argv[n++] = paths[i] = xasprintf("%s/%s", t.dir, pictures[i].name);
    argv[n] = NULL;
    proc hasher = {0};
    proc_start(&hasher, binary, argv);
    int status = proc_wait(&hasher);
    if (status != 0) {
        proc_print_log(&hasher);
        fail_msg("imgfeed-hasher hash exited with %d", status);
    }
    char *out = read_file(hasher.log);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '{') continue;
        json_object *o = json_tokener_parse(line);
        if (!o) fail_msg("imgfeed-hasher printed a line that is not JSON: %s", line);
        const char *file = str_of(o, "file");
        int k = -1;
        for (int i = 0; i < PIC_COUNT; i++)
            if (file && strcmp(file, paths[i]) == 0) k = i;
        if (k < 0) fail_msg("imgfeed-hasher printed a line for an unknown file: %s", line);
        json_object *img = json_object_new_object();
        json_object_object_foreach(o, key, val) {
            size_t len = strlen(key);
            if (strcmp(key, "file") == 0 || (len > 4 && strcmp(key + len - 4, "_hex") == 0)) continue;
            json_object_object_add(img, key, json_object_get(val));
        }
        pictures[k].img = img;
        pictures[k].sha1 = str_of(img, "sha1");
        pictures[k].md5 = str_of(img, "md5");
        pictures[k].phash = str_of(img, "phash");
        pictures[k].phash_hex = xstrdup(str_of(o, "phash_hex"));
        if (!pictures[k].sha1 || !pictures[k].md5 || !pictures[k].phash || str_of(img, "error"))
            fail_msg("imgfeed-hasher gave no hashes for %s: %s", pictures[k].name, line);
        json_object_put(o);
    }
    free(out);
    for (int i = 0; i < PIC_COUNT; i++) {
        if (!pictures[i].img) fail_msg("imgfeed-hasher printed no line for %s", paths[i]);
        free(paths[i]);
    }
    proc_release(&hasher);
    free(binary);
}

/* The test means something only if the repost is a near duplicate and
 * every other picture is not. */
static void check_picture_distances(void) {
    for (int i = 1; i < PIC_COUNT; i++) {
        int d = hex_distance(pictures[PIC_ORIGINAL].phash_hex, pictures[i].phash_hex);
        bool near = i == PIC_REPOST;
        if (near ? d < 1 || d > NEAR : d <= NEAR)
            fail_msg("%s is %d phash bits from the original: the test pictures need a near duplicate at 1..%d "
                     "bits and everything else beyond",
                     pictures[i].role, d, NEAR);
    }
}

/* --- items: the recorded threads with the `_` fields --- */

static void load_threads(void) {
    char *pattern = xasprintf("%s/tests/fixtures/real/4chan/*-thread-*.json", testenv_source_dir());
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0)
        fail_msg("no recorded 4chan threads match %s (tests/fixtures/real, see SOURCES.md there)", pattern);
    t.threads = xcalloc(g.gl_pathc, sizeof *t.threads);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        json_object *doc = json_object_from_file(g.gl_pathv[i]);
        json_object *posts;
        if (!doc || !json_object_object_get_ex(doc, "posts", &posts) || json_object_array_length(posts) == 0)
            fail_msg("%s is not a 4chan thread (no \"posts\")", g.gl_pathv[i]);
        t.threads[i].board = xstrndup(base, (size_t)(strstr(base, "-thread-") - base));
        t.threads[i].posts = json_object_get(posts);
        json_object_put(doc);
    }
    t.nthreads = g.gl_pathc;
    globfree(&g);
    free(pattern);
}

/* The picture a file of extension EXT gets, taking turns among the
 * pictures of its format; -1 for a failed download. */
static int picture_for(const char *ext, long nfile) {
    static int turn[3];
    static const char *const exts[3] = {".png", ".jpg", ".gif"};
    if (nfile % ERROR_EVERY == ERROR_EVERY - 1) return -1;
    for (int f = 0; f < 3; f++) {
        if (strcmp(ext, exts[f]) != 0) continue;
        for (int tries = 0; tries < PIC_COUNT; tries++) {
            int k = turn[f]++ % PIC_COUNT;
            if (strcmp(strrchr(pictures[k].name, '.'), exts[f]) == 0) return k;
        }
    }
    return -1; /* .webm: no picture of that kind */
}

/* Give ITEM, a post with a file, its `_img` entry; the post's md5, fsize,
 * w and h describe the picture it got, as they would the real file. */
static void attach_image(json_object *item, long nfile) {
    int k = picture_for(str_of(item, "ext"), nfile);
    json_object *img = json_object_new_array(), *e = NULL;
    if (k < 0) {
        e = json_object_new_object();
        json_object_object_add(e, "url", json_object_new_int(0));
        json_object_object_add(e, "error", json_object_new_string("http 404"));
    } else {
        assert_int_equal(json_object_deep_copy(pictures[k].img, &e, NULL), 0);
        json_object_object_add(e, "url", json_object_new_int(0));
        char *md5 = base64_of_hex(pictures[k].md5);
        json_object_object_add(item, "md5", json_object_new_string(md5));
        free(md5);
        json_object_object_add(item, "fsize", json_object_get(json_object_object_get(e, "size")));
        json_object_object_add(item, "w", json_object_get(json_object_object_get(e, "width")));
        json_object_object_add(item, "h", json_object_get(json_object_object_get(e, "height")));
    }
    json_object_array_add(img, e);
    json_object_object_add(item, "_img", img);
}

/* The item of POST on BOARD, as the hasher publishes it. */
static json_object *make_item(const char *board, json_object *post, long crawled_at, long *nfile) {
    json_object *item = NULL; /* json_object_deep_copy wants an empty target */
    assert_int_equal(json_object_deep_copy(post, &item, NULL), 0);
    long no = long_of(post, "no"), resto = long_of(post, "resto");
    char id[64];
    snprintf(id, sizeof id, "%s.%ld", board, no);
    json_object_object_add(item, "_v", json_object_new_int(1));
    json_object_object_add(item, "_id", json_object_new_string(id));
    json_object_object_add(item, "_chan", json_object_new_string("4chan"));
    json_object_object_add(item, "_board", json_object_new_string(board));
    json_object_object_add(item, "_type", json_object_new_string(resto == 0 ? "thread" : "post"));
    json_object_object_add(item, "_crawled_at", json_object_new_int64(crawled_at));
    json_object *urls = json_object_new_array();
    if (long_of(post, "tim") >= 0 && str_of(post, "ext")) {
        char *url = xasprintf("https://i.4cdn.org/%s/%ld%s", board, long_of(post, "tim"), str_of(post, "ext"));
        json_object_array_add(urls, json_object_new_string(url));
        free(url);
    }
    json_object_object_add(item, "_urls", urls);
    if (json_object_array_length(urls) > 0) attach_image(item, (*nfile)++);
    return item;
}

static void make_items(void) {
    t.items = json_object_new_array();
    long nfile = 0;
    for (size_t i = 0; i < t.nthreads; i++) {
        json_object *posts = t.threads[i].posts;
        size_t n = json_object_array_length(posts);
        long crawled_at = long_of(json_object_array_get_idx(posts, n - 1), "time") + 90;
        for (size_t k = 0; k < n; k++) {
            json_object *item = make_item(t.threads[i].board, json_object_array_get_idx(posts, k), crawled_at, &nfile);
            if (strcmp(str_of(item, "_type"), "thread") == 0)
                t.nthread_items++;
            else
                t.npost_items++;
            json_object_array_add(t.items, item);
        }
    }
}

/* The `_img` entry of ITEM (each has one at most), or NULL. */
static json_object *item_image(json_object *item) {
    json_object *img;
    return json_object_object_get_ex(item, "_img", &img) ? json_object_array_get_idx(img, 0) : NULL;
}

static const char *item_table(json_object *item) {
    return strcmp(str_of(item, "_type"), "thread") == 0 ? "chan_4chan_thread" : "chan_4chan_post";
}

/* --- publishing and archiving --- */

static void connect_broker(void) { t.q = mq_admin_connect(t.exchange, "test_archive_sql"); }

static void publish_batch(const char *type, const char *board, json_object *batch) {
    if (json_object_array_length(batch) == 0) return;
    char *key = xasprintf("4chan.%s.%s", type, board);
    const char *body = json_object_to_json_string_ext(batch, JSON_C_TO_STRING_PLAIN);
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(t.q, mq_target_name(t.q, MQ_EXCHANGE_ITEMS), &m, 1), MQ_OK);
    free(key);
}

/* Every thread: its opening post to 4chan.thread.<board>, its replies in
 * batches to 4chan.post.<board>. */
static void publish_items(void) {
    json_object *batch = json_object_new_array();
    const char *board = NULL;
    for (size_t i = 0; i < json_object_array_length(t.items); i++) {
        json_object *item = json_object_array_get_idx(t.items, i);
        bool op = strcmp(str_of(item, "_type"), "thread") == 0;
        if (op || json_object_array_length(batch) == REPLIES_PER_MSG) {
            publish_batch("post", board, batch);
            json_object_put(batch);
            batch = json_object_new_array();
        }
        board = str_of(item, "_board");
        if (op) {
            json_object *one = json_object_new_array();
            json_object_array_add(one, json_object_get(item));
            publish_batch("thread", board, one);
            json_object_put(one);
        } else {
            json_object_array_add(batch, json_object_get(item));
        }
    }
    publish_batch("post", board, batch);
    json_object_put(batch);
}

static char *exchange_table(const char *key) {
    char out[TABLENAME_MAX + 1], why[128];
    if (!tablename_from_key(t.exchange, key, out, why, sizeof why)) fail_msg("%s: %s", key, why);
    return xstrdup(out);
}

static void wait_rows(const char *table, long want) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    long n;
    while ((n = pgtest_count_on(t.db, table)) < want) {
        if (time_mono_ns() > deadline) {
            proc_print_log(&t.archiver);
            fail_msg("%s holds %ld rows, expected %ld", table, n, want);
        }
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
    if (n != want) fail_msg("%s holds %ld rows, expected %ld", table, n, want);
}

static void run_archiver(void) {
    char *binary = xasprintf("%s/archiver/imgfeed-archiver", testenv_binary_dir());
    const char *argv[] = {binary, "--exchange", t.exchange, "--pg", t.conninfo, "--amqp-heartbeat", "5s", NULL};
    proc_start(&t.archiver, binary, argv);
    char *threads = exchange_table("4chan.thread.g"), *posts = exchange_table("4chan.post.g");
    wait_rows(threads, t.nthread_items);
    wait_rows(posts, t.npost_items);
    proc_stop(&t.archiver);
    proc_release(&t.archiver);
    mq_admin *a = mq_admin_open();
    char *dead = xasprintf("%s.dead", t.exchange);
    if (mq_admin_count(a, dead) != 0) fail_msg("the archiver dead-lettered some of the items");
    mq_admin_close(a);
    free(dead);
    free(threads);
    free(posts);
    free(binary);
}

/* Rename E_* (tables and their indexes) to chan_*, as `--exchange chan`
 * names them, and check that the archiver's own table maker agrees. */
static void rename_to_chan(void) {
    char *prefix = xasprintf("%s_", t.exchange);
    const char *values[] = {prefix};
    PGresult *res =
        pgtest_query_on(t.db, "SELECT c.relkind, c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
                 "WHERE s.nspname = 'public' AND c.relkind IN ('r', 'i') AND starts_with(c.relname, $1) "
                 "ORDER BY c.relkind DESC",
                 1, values);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = PQgetvalue(res, i, 1);
        pgtest_exec_on(t.db, "ALTER %s \"%s\" RENAME TO \"chan_%s\"", PQgetvalue(res, i, 0)[0] == 'r' ? "TABLE" : "INDEX", name,
                name + strlen(prefix));
    }
    PQclear(res);
    PQclear(pgtest_query_on(t.db, "UPDATE imgfeed_tables SET name = 'chan_' || substr(name, length($1) + 1), exchange = 'chan' "
                     "WHERE starts_with(name, $1)",
                     1, values));
    free(prefix);
    static const char *const tables[][2] = {{"chan_4chan_thread", "4chan.thread"}, {"chan_4chan_post", "4chan.post"}};
    for (int i = 0; i < 2; i++) {
        const char *name = tables[i][0];
        long before = pgtest_long_on(t.db, "SELECT count(*) FROM pg_indexes WHERE tablename = '%s'", name);
        pgtest_exec_on(t.db, "SELECT imgfeed_ensure_table('%s', 'chan', '%s')", name, tables[i][1]);
        long after = pgtest_long_on(t.db, "SELECT count(*) FROM pg_indexes WHERE tablename = '%s'", name);
        if (before != 3 || after != 3)
            fail_msg("%s has %ld indexes after renaming and %ld after imgfeed_ensure_table, expected 3 and 3", name,
                     before, after);
    }
    assert_int_equal(pgtest_long_on(t.db, "SELECT count(*) FROM imgfeed_tables WHERE exchange = 'chan'"), 2);
    assert_int_equal(pgtest_count_on(t.db, "chan_4chan_thread"), t.nthread_items);
    assert_int_equal(pgtest_count_on(t.db, "chan_4chan_post"), t.npost_items);
}

/* --- the blocks of docs/querying.md and psql --- */

/* The SQL of the block after `<!-- sql-example: NAME -->`. */
static char *readme_block(const char *name) {
    char *marker = xasprintf("<!-- sql-example: %s -->\n", name);
    const char *at = strstr(t.readme, marker);
    if (!at) {
        fail_msg("docs/querying.md has no line %s", marker);
        return NULL; /* not reached: fail_msg leaves the test */
    }
    if (strstr(at + 1, marker)) fail_msg("docs/querying.md has the line %s twice", marker);
    at += strlen(marker);
    if (strncmp(at, "```sql\n", 7) != 0) fail_msg("docs/querying.md: %s is not followed by a ```sql block", marker);
    at += 7;
    const char *end = strstr(at, "\n```");
    if (!end) fail_msg("docs/querying.md: the block after %s does not end", marker);
    free(marker);
    return xstrndup(at, (size_t)(end - at) + 1);
}

/* BLOCK without its `\set NAME` lines for the NAME=value pairs of VARS
 * (NULL-terminated), which psql then gets with -v; every one of them must
 * have its line, or the page's parameters changed under the test. */
static char *block_without_sets(const char *name, const char *block, const char *const *vars) {
    char *out = xstrdup(block);
    for (size_t i = 0; vars && vars[i]; i++) {
        size_t len = (size_t)(strchr(vars[i], '=') - vars[i]);
        char *line = xasprintf("\\set %.*s ", (int)len, vars[i]);
        char *at = strstr(out, line);
        if (!at || (at != out && at[-1] != '\n'))
            fail_msg("the docs/querying.md block %s has no line \"%s...\": update the test", name, line);
        char *eol = strchr(at, '\n');
        memmove(at, eol + 1, strlen(eol + 1) + 1);
        free(line);
    }
    return out;
}

/* PREFIX, then BLOCK with WORD put before its statement (the first line
 * that is neither a psql command nor a comment). */
static char *block_wrapped(const char *prefix, const char *block, const char *word) {
    const char *p = block;
    while (*p == '\\' || *p == '\n' || strncmp(p, "--", 2) == 0)
        p = strchr(p, '\n') + 1;
    return xasprintf("%s%.*s%s%s", prefix, (int)(p - block), block, word, p);
}

static const char *psql_binary(void) {
    if (t.psql) return t.psql;
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/psql", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        fail_msg("no psql under /usr/lib/postgresql/*/bin (apt-get install postgresql-client)");
    size_t best = 0;
    for (size_t i = 1; i < g.gl_pathc; i++)
        if (atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/")) >
            atoi(g.gl_pathv[best] + strlen("/usr/lib/postgresql/")))
            best = i;
    t.psql = xstrdup(g.gl_pathv[best]);
    globfree(&g);
    return t.psql;
}

typedef struct psql_run {
    int status;
    char *out, *err;
} psql_run;

/* Run SQL as a file with psql -X -v ON_ERROR_STOP=1 --csv on the test's
 * database, with -v for each NAME=value of VARS (NULL-terminated). */
static psql_run psql(const char *sql, const char *const *vars) {
    char *file = xasprintf("%s/query.sql", t.dir), *out = xasprintf("%s/query.out", t.dir),
         *err = xasprintf("%s/query.err", t.dir);
    write_file(file, sql, strlen(sql));
    const char *argv[64];
    int n = 0;
    argv[n++] = psql_binary();
    argv[n++] = "-X";
    argv[n++] = "-q";
    argv[n++] = "-v";
    argv[n++] = "ON_ERROR_STOP=1";
    argv[n++] = "--csv";
    argv[n++] = "-d";
    argv[n++] = t.conninfo;
    for (size_t i = 0; vars && vars[i] && n < 60; i += 1) {
        argv[n++] = "-v";
        argv[n++] = vars[i];
    }
    argv[n++] = "-f";
    argv[n++] = file;
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0) _exit(126);
        setenv("PGTZ", SESSION_TZ, 1);
        setenv("PGDATESTYLE", "ISO", 1);
        setenv("PGCLIENTENCODING", "UTF8", 1);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    psql_run r = {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(out), read_file(err)};
    free(file);
    free(out);
    free(err);
    return r;
}

static void psql_release(psql_run *r) {
    free(r->out);
    free(r->err);
}

/* psql's --csv output as a JSON array of rows (arrays of strings); NULL
 * and the empty string both read as "". */
static json_object *csv_parse(const char *text) {
    json_object *rows = json_object_new_array(), *row = json_object_new_array();
    size_t cap = 256, len = 0;
    char *field = xmalloc(cap);
    const char *p = text;
    while (*p) {
        len = 0;
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"') p++; /* "" is one quote */
                if (len + 1 >= cap) field = xrealloc(field, cap *= 2);
                field[len++] = *p;
            }
            if (*p) p++;
        } else {
            for (; *p && *p != ',' && *p != '\n'; p++) {
                if (len + 1 >= cap) field = xrealloc(field, cap *= 2);
                field[len++] = *p;
            }
        }
        json_object_array_add(row, json_object_new_string_len(field, (int)len));
        if (*p == ',') {
            p++;
            continue;
        }
        json_object_array_add(rows, row);
        row = json_object_new_array();
        if (*p == '\n') p++;
    }
    json_object_put(row);
    free(field);
    return rows;
}

/* The docs/querying.md block NAME run with VARS: its rows, header first; a failing
 * psql fails the test with its message. */
static json_object *run_example(const char *name, const char *const *vars) {
    char *block = readme_block(name), *sql = block_without_sets(name, block, vars);
    psql_run r = psql(sql, vars);
    if (r.status != 0) fail_msg("psql failed (%d) on the block %s:\n%s\n%s", r.status, name, r.err, sql);
    json_object *rows = csv_parse(r.out);
    if (json_object_array_length(rows) < 1) fail_msg("the block %s printed no header: %s", name, r.out);
    psql_release(&r);
    free(sql);
    free(block);
    return rows;
}

/* The column NAME of ROWS' header. */
static size_t column(json_object *rows, const char *example, const char *name) {
    json_object *header = json_object_array_get_idx(rows, 0);
    for (size_t i = 0; i < json_object_array_length(header); i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(header, i)), name) == 0) return i;
    fail_msg("the docs/querying.md block %s has no column %s: its header is %s", example, name,
             json_object_to_json_string_ext(header, JSON_C_TO_STRING_PLAIN));
    return 0;
}

/* ROWS (after the header) projected on COLUMNS, each row as one string
 * "a|b|c". */
static json_object *project(json_object *rows, const char *example, const char *const *columns) {
    size_t idx[16], n = 0;
    for (; columns[n]; n++)
        idx[n] = column(rows, example, columns[n]);
    json_object *out = json_object_new_array();
    for (size_t r = 1; r < json_object_array_length(rows); r++) {
        json_object *row = json_object_array_get_idx(rows, r);
        size_t cap = 256, len = 0;
        char *line = xmalloc(cap);
        line[0] = '\0';
        for (size_t c = 0; c < n; c++) {
            const char *v = json_object_get_string(json_object_array_get_idx(row, idx[c]));
            if (len + strlen(v) + 2 > cap) line = xrealloc(line, cap = 2 * (len + strlen(v) + 2));
            len += (size_t)sprintf(line + len, "%s%s", c ? "|" : "", v);
        }
        json_object_array_add(out, json_object_new_string(line));
        free(line);
    }
    return out;
}

static void add_line(json_object *lines, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(json_object *lines, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *line = xvasprintf(fmt, ap);
    va_end(ap);
    json_object_array_add(lines, json_object_new_string(line));
    free(line);
}

/* LINES are "key\tvalue", the key sorting as the docs/querying.md query orders its
 * rows: sort them by key and keep the values. */
static json_object *sorted_values(json_object *lines) {
    json_object_array_sort(lines, compare_strings);
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(lines); i++) {
        const char *line = json_object_get_string(json_object_array_get_idx(lines, i));
        json_object_array_add(out, json_object_new_string(strchr(line, '\t') + 1));
    }
    json_object_put(lines);
    return out;
}

/* --- group setup and teardown --- */

static int group_setup(void **state) {
    (void)state;
    memset(&t, 0, sizeof t);
    t.dir = testenv_tmpdir("sql");
    t.exchange = xasprintf("t%ds", (int)getpid());
    char *readme = xasprintf("%s/docs/querying.md", testenv_source_dir());
    t.readme = read_file(readme);
    free(readme);
    draw_pictures();
    hash_pictures();
    check_picture_distances();
    load_threads();
    make_items();
    db_create();
    connect_broker();
    publish_items();
    run_archiver();
    rename_to_chan();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    proc_kill_all();
    proc_release(&t.archiver);
    mq_free(t.q);
    if (t.exchange) mq_admin_delete_topology(t.exchange, NULL);
    db_drop();
    pgtest_close();
    if (t.dir) testenv_rmtree(t.dir);
    for (size_t i = 0; i < t.nthreads; i++) {
        free(t.threads[i].board);
        json_object_put(t.threads[i].posts);
    }
    free(t.threads);
    json_object_put(t.items);
    for (int i = 0; i < PIC_COUNT; i++) {
        json_object_put(pictures[i].img);
        free((char *)pictures[i].phash_hex);
        pictures[i].img = NULL;
        pictures[i].phash_hex = NULL;
    }
    free(t.readme);
    free(t.psql);
    free(t.conninfo);
    free(t.dbname);
    free(t.exchange);
    free(t.dir);
    return 0;
}

/* --- the tests --- */

/* Every block runs as printed, with its own example values, and answers
 * with the columns docs/querying.md describes. */
static void test_blocks_as_printed(void **state) {
    (void)state;
    static const struct {
        const char *name, *header;
    } blocks[] = {
        {"posts-in-range", "[\"id\",\"type\",\"posted_at\",\"name\",\"comment\"]"},
        {"image-by-hash", "[\"table_name\",\"id\",\"url\",\"width\",\"height\",\"phash\",\"posted_at\"]"},
        {"near-duplicates", "[\"distance\",\"id\",\"url\",\"sha1\"]"},
        {"biggest-threads", "[\"board\",\"thread\",\"subject\",\"replies\",\"last_reply\"]"},
        {"images-per-day", "[\"board\",\"day\",\"images\",\"files\"]"},
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        json_object *rows = run_example(blocks[i].name, NULL);
        json_object *want = json_tokener_parse(blocks[i].header);
        char *what = xasprintf("header of the docs/querying.md block %s", blocks[i].name);
        assert_lines_equal(what, json_object_array_get_idx(rows, 0), want);
        free(what);
        json_object_put(want);
        json_object_put(rows);
    }
}

/* posts-in-range on BOARD for [FROM, TO) against the items' own times. */
static void check_posts_in_range(const char *board, long from, long to, int offset_hours) {
    char from_text[32], to_text[32];
    format_time(from, offset_hours, from_text);
    format_time(to, offset_hours, to_text);
    char *v_board = xasprintf("board=%s", board), *v_from = xasprintf("from=%s", from_text),
         *v_to = xasprintf("to=%s", to_text);
    const char *vars[] = {v_board, v_from, v_to, NULL};
    json_object *rows = run_example("posts-in-range", vars);
    static const char *const columns[] = {"id", "type", NULL};
    json_object *got = project(rows, "posts-in-range", columns);
    json_object *want = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(t.items); i++) {
        json_object *item = json_object_array_get_idx(t.items, i);
        long when = long_of(item, "time");
        if (strcmp(str_of(item, "_board"), board) != 0 || when < from || when >= to) continue;
        add_line(want, "%012ld %s\t%s|%s", when, str_of(item, "_id"), str_of(item, "_id"), str_of(item, "_type"));
    }
    want = sorted_values(want);
    char *what = xasprintf("posts-in-range, board %s from %s to %s", board, from_text, to_text);
    assert_lines_equal(what, got, want);
    fprintf(stderr, "%s: %zu posts\n", what, json_object_array_length(got));
    free(what);
    json_object_put(got);
    json_object_put(want);
    json_object_put(rows);
    free(v_board);
    free(v_from);
    free(v_to);
}

/* The time of the first and last post of the thread file of BOARD whose
 * opening post is the latest. */
static void thread_span(const char *board, long *first, long *last) {
    long best = -1;
    for (size_t i = 0; i < t.nthreads; i++) {
        if (strcmp(t.threads[i].board, board) != 0) continue;
        json_object *posts = t.threads[i].posts;
        long op = long_of(json_object_array_get_idx(posts, 0), "time");
        if (op <= best) continue;
        best = *first = op;
        *last = long_of(json_object_array_get_idx(posts, json_object_array_length(posts) - 1), "time");
    }
    if (best < 0) fail_msg("no recorded thread of /%s/", board);
}

/* A board's posts between two times: the bounds are inclusive and exclusive
 * (a post at exactly `from` is in, one at exactly `to` is out), opening
 * posts are included, other boards are not, and an offset is honoured. */
static void test_posts_in_range(void **state) {
    (void)state;
    long first, last;
    thread_span("g", &first, &last);
    check_posts_in_range("g", first, first + 2 * 3600, 0);      /* starts at an opening post */
    check_posts_in_range("g", first - 6 * 3600, first + 1, -4); /* ends just after it, in EDT */
    thread_span("v", &first, &last);
    check_posts_in_range("v", first + 600, last, 9);              /* the last post is out */
    check_posts_in_range("v", first - 86400 * 365, first - 1, 0); /* nothing */
}

/* image-by-hash for KIND = VALUE: every post whose `_img` carries it, in
 * both tables, with its URL, size and phash.  Returns a bit mask of the
 * tables it was found in (1: threads, 2: replies). */
static int check_image_by_hash(const char *kind, const char *value, const char *role) {
    char *v_kind = xasprintf("kind=%s", kind), *v_hash = xasprintf("hash=%s", value);
    const char *vars[] = {v_kind, v_hash, NULL};
    json_object *rows = run_example("image-by-hash", vars);
    static const char *const columns[] = {"table_name", "id", "url", "width", "height", "phash", NULL};
    json_object *got = project(rows, "image-by-hash", columns);
    json_object *want = json_object_new_array();
    int tables = 0;
    for (size_t i = 0; i < json_object_array_length(t.items); i++) {
        json_object *item = json_object_array_get_idx(t.items, i);
        json_object *e = item_image(item);
        const char *have = e ? str_of(e, kind) : NULL;
        if (!have || strcmp(have, value) != 0) continue;
        const char *url = json_object_get_string(json_object_array_get_idx(json_object_object_get(item, "_urls"), 0));
        add_line(want, "%012ld %s\t%s|%s|%s|%ld|%ld|%s", long_of(item, "time"), str_of(item, "_id"), item_table(item),
                 str_of(item, "_id"), url, long_of(e, "width"), long_of(e, "height"), str_of(e, "phash"));
        tables |= strcmp(item_table(item), "chan_4chan_thread") == 0 ? 1 : 2;
    }
    want = sorted_values(want);
    char *what = xasprintf("image-by-hash, %s of %s (%s)", kind, role, value);
    assert_lines_equal(what, got, want);
    fprintf(stderr, "%s: %zu posts\n", what, json_object_array_length(got));
    free(what);
    json_object_put(got);
    json_object_put(want);
    json_object_put(rows);
    free(v_kind);
    free(v_hash);
    return tables;
}

/* Every picture by sha1, one by md5, and a sha1 that is nowhere; the
 * original is found in both tables. */
static void test_image_by_hash(void **state) {
    (void)state;
    for (int k = 0; k < PIC_COUNT; k++) {
        int tables = check_image_by_hash("sha1", pictures[k].sha1, pictures[k].role);
        if (k == PIC_ORIGINAL && tables != 3)
            fail_msg("the original is not on both opening posts and replies: the test's items should put it on both");
    }
    check_image_by_hash("md5", pictures[PIC_REPOST].md5, pictures[PIC_REPOST].role);
    check_image_by_hash("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "an absent file");
}

/* near-duplicates of picture K: every image within NEAR bits, with the
 * distance computed here from imagehash's hex form. */
static void check_near_duplicates(int k) {
    char *v_phash = xasprintf("phash=%s", pictures[k].phash);
    const char *vars[] = {v_phash, NULL};
    json_object *rows = run_example("near-duplicates", vars);
    static const char *const columns[] = {"distance", "id", "url", "sha1", NULL};
    json_object *got = project(rows, "near-duplicates", columns);
    json_object *want = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(t.items); i++) {
        json_object *item = json_object_array_get_idx(t.items, i);
        json_object *e = item_image(item);
        const char *sha1 = e ? str_of(e, "sha1") : NULL;
        if (!sha1) continue;
        int p = -1;
        for (int j = 0; j < PIC_COUNT; j++)
            if (strcmp(pictures[j].sha1, sha1) == 0) p = j;
        assert_true(p >= 0);
        int d = hex_distance(pictures[k].phash_hex, pictures[p].phash_hex);
        if (d < 0 || d > NEAR) continue;
        const char *url = json_object_get_string(json_object_array_get_idx(json_object_object_get(item, "_urls"), 0));
        add_line(want, "%03d %s\t%d|%s|%s|%s", d, str_of(item, "_id"), d, str_of(item, "_id"), url, sha1);
    }
    want = sorted_values(want);
    char *what = xasprintf("near-duplicates of %s (%s)", pictures[k].role, pictures[k].phash);
    assert_lines_equal(what, got, want);
    fprintf(stderr, "%s: %zu images\n", what, json_object_array_length(got));
    free(what);
    json_object_put(got);
    json_object_put(want);
    json_object_put(rows);
    free(v_phash);
}

/* From every picture: the original and its repost find each other at
 * their true distance; the edited copy and the unrelated pictures stay
 * out (check_picture_distances made sure they are beyond NEAR). */
static void test_near_duplicates(void **state) {
    (void)state;
    for (int k = 0; k < PIC_COUNT; k++)
        check_near_duplicates(k);
}

/* biggest-threads with LIMIT, against reply counts taken from the thread
 * files: replies are the posts whose resto is not 0, the subject the
 * opening post's "sub". */
static void check_biggest_threads(long limit) {
    json_object *want = json_object_new_array();
    for (size_t i = 0; i < t.nthreads; i++) {
        json_object *posts = t.threads[i].posts, *op = json_object_array_get_idx(posts, 0);
        long replies = 0;
        for (size_t k = 0; k < json_object_array_length(posts); k++)
            replies += long_of(json_object_array_get_idx(posts, k), "resto") == long_of(op, "no");
        if (replies == 0) continue; /* a thread without replies has no row */
        const char *sub = str_of(op, "sub");
        add_line(want, "%08ld %s %ld\t%s|%ld|%s|%ld", 99999999 - replies, t.threads[i].board, long_of(op, "no"),
                 t.threads[i].board, long_of(op, "no"), sub ? sub : "", replies);
    }
    want = sorted_values(want);
    while ((long)json_object_array_length(want) > limit)
        json_object_array_del_idx(want, json_object_array_length(want) - 1, 1);
    char *v_limit = xasprintf("limit=%ld", limit);
    const char *vars[] = {v_limit, NULL};
    json_object *rows = run_example("biggest-threads", vars);
    static const char *const columns[] = {"board", "thread", "subject", "replies", NULL};
    json_object *got = project(rows, "biggest-threads", columns);
    char *what = xasprintf("biggest-threads, limit %ld", limit);
    assert_lines_equal(what, got, want);
    free(what);
    json_object_put(got);
    json_object_put(want);
    json_object_put(rows);
    free(v_limit);
}

static void test_biggest_threads(void **state) {
    (void)state;
    check_biggest_threads(100);
    check_biggest_threads(2);
}

/* images-per-day in time zone TZ: `_img` entries with a sha1, and distinct
 * sha1s, per board and calendar day of the post's "time" in TZ. */
static void check_images_per_day(const char *tz) {
    json_object *days = json_object_new_object(); /* "board|day" -> {sha1: count} */
    for (size_t i = 0; i < json_object_array_length(t.items); i++) {
        json_object *item = json_object_array_get_idx(t.items, i);
        json_object *e = item_image(item);
        const char *sha1 = e ? str_of(e, "sha1") : NULL;
        if (!sha1) continue;
        char day[16];
        day_in_zone(long_of(item, "time"), tz, day);
        char *key = xasprintf("%s|%s", str_of(item, "_board"), day);
        json_object *files;
        if (!json_object_object_get_ex(days, key, &files)) {
            files = json_object_new_object();
            json_object_object_add(days, key, files);
        }
        long seen = long_of(files, sha1); /* -1: not yet */
        json_object_object_add(files, sha1, json_object_new_int64(seen < 0 ? 1 : seen + 1));
        free(key);
    }
    json_object *want = json_object_new_array();
    json_object_object_foreach(days, key, files) {
        long images = 0;
        json_object_object_foreach(files, sha1, count) {
            (void)sha1;
            images += (long)json_object_get_int64(count);
        }
        add_line(want, "%s\t%s|%ld|%d", key, key, images, json_object_object_length(files));
    }
    json_object_put(days);
    want = sorted_values(want);
    char *v_tz = xasprintf("tz=%s", tz);
    const char *vars[] = {v_tz, NULL};
    json_object *rows = run_example("images-per-day", vars);
    static const char *const columns[] = {"board", "day", "images", "files", NULL};
    json_object *got = project(rows, "images-per-day", columns);
    char *what = xasprintf("images-per-day in %s", tz);
    assert_lines_equal(what, got, want);
    fprintf(stderr, "%s: %s\n", what, json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
    free(what);
    json_object_put(got);
    json_object_put(want);
    json_object_put(rows);
    free(v_tz);
}

/* UTC, and a zone where a day's posts straddle midnight (the session's own
 * zone is a third one). */
static void test_images_per_day(void **state) {
    (void)state;
    check_images_per_day("UTC");
    check_images_per_day("America/New_York");
}

/* Whether PLAN (EXPLAIN's text) scans the index NAME. */
static bool plan_uses_index(const char *plan, const char *name) {
    char *a = xasprintf("Index Scan using %s ", name), *b = xasprintf("Bitmap Index Scan on %s\n", name),
         *c = xasprintf("Bitmap Index Scan on %s ", name), *d = xasprintf("Index Only Scan using %s ", name);
    bool yes = strstr(plan, a) || strstr(plan, b) || strstr(plan, c) || strstr(plan, d);
    free(a);
    free(b);
    free(c);
    free(d);
    return yes;
}

/* posts-in-range can use each table's (_board, posted_at) index with both
 * bounds as index conditions, and imgfeed_find_image's inner queries the
 * GIN index on _img (their plans come from auto_explain, which sees inside
 * the function). */
static void test_index_use(void **state) {
    (void)state;
    char *block = readme_block("posts-in-range");
    char *sql = block_wrapped("SET enable_seqscan = off;\n", block, "EXPLAIN ");
    psql_run r = psql(sql, NULL);
    if (r.status != 0) fail_msg("EXPLAIN of posts-in-range failed:\n%s", r.err);
    static const char *const ranged[] = {"chan_4chan_thread_board_posted", "chan_4chan_post_board_posted"};
    for (int i = 0; i < 2; i++)
        if (!plan_uses_index(r.out, ranged[i])) fail_msg("posts-in-range does not use %s:\n%s", ranged[i], r.out);
    const char *cond = r.out;
    int conds = 0;
    while ((cond = strstr(cond, "Index Cond: ")) != NULL) {
        const char *eol = strchr(cond, '\n');
        char *line = xstrndup(cond, eol ? (size_t)(eol - cond) : strlen(cond));
        conds += strstr(line, "_board") && strstr(line, ">=") && strstr(line, "<");
        free(line);
        cond += 12;
    }
    if (conds != 2) fail_msg("posts-in-range should search both indexes by board and both bounds:\n%s", r.out);
    psql_release(&r);
    free(sql);
    free(block);

    block = readme_block("image-by-hash");
    sql = block_wrapped("LOAD 'auto_explain';\nSET auto_explain.log_min_duration = 0;\n"
                        "SET auto_explain.log_nested_statements = on;\nSET auto_explain.log_level = notice;\n"
                        "SET enable_seqscan = off;\n",
                        block, "");
    r = psql(sql, NULL);
    if (r.status != 0) fail_msg("image-by-hash under auto_explain failed:\n%s", r.err);
    static const char *const gin[] = {"chan_4chan_thread_img", "chan_4chan_post_img"};
    for (int i = 0; i < 2; i++)
        if (!plan_uses_index(r.err, gin[i])) fail_msg("imgfeed_find_image does not use %s:\n%s", gin[i], r.err);
    psql_release(&r);
    free(sql);
    free(block);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_as_printed), cmocka_unit_test(test_posts_in_range),
        cmocka_unit_test(test_image_by_hash),     cmocka_unit_test(test_near_duplicates),
        cmocka_unit_test(test_biggest_threads),   cmocka_unit_test(test_images_per_day),
        cmocka_unit_test(test_index_use),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
