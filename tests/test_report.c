/* test_report.c -- imgfeed-report: every number against SQL, the page in Chromium.
 *
 * The archive: pictures drawn with libgd (each its own gradient and shapes)
 * and their variants (half size, JPEG at quality 40), hashed by the hash
 * library as the hasher hashes them and stored in a save dir with the
 * hasher's own savedir_store; items naming them inserted by SQL into two
 * tables of a fresh exchange, with the same picture under several labels
 * (exact duplicates), variants (near duplicates), hostile labels ('/',
 * '..', control characters, 300 bytes of UTF-8, markup), entries with
 * errors, rows without `_img` or with an `_img` of another shape, entries
 * without the colour fields; and 2,000 generated rows by SQL (sizes,
 * dimensions, formats, colour, errors and exact duplicates of their own).
 * One file of the save dir is removed and one damaged.  When the shared
 * test archive filled by the real pipeline (tests/support/dsarchive.h) is
 * built in, its archive is reported on and checked the same way.
 *
 * Then imgfeed-report runs as a child process, and the test checks every
 * number of report.json against its own SQL over the same tables: totals,
 * images and bytes per label, items per day per site, images and bytes per
 * format, the size, width x height and brightness histograms, the colour
 * means per label (within 1e-9), errors by kind, exact duplicate groups
 * (GROUP BY sha1) and near ones (`imgfeed-search dupes`, the same library
 * run as its own program), the largest groups' members and their
 * thumbnails' states (missing, damaged, ok); and that the page shows those
 * numbers and the hostile labels as text.  Headless Chromium opens the page
 * from file://: every figure is drawn with a size, every thumbnail decoded,
 * nothing requested but the file itself (the Content-Security-Policy would
 * refuse, and the console would say so), and a screenshot is taken
 * (IMGFEED_REPORT_SCREENSHOT: where to keep it, for docs/report.png;
 * IMGFEED_REPORT_SCREENSHOT_HEIGHT: a taller window; IMGFEED_REPORT_SCREENSHOT_AT: the id
 * of a section to scroll to first, e.g. duplicates).
 *
 * Bad input: the plotter missing, failing, without matplotlib; a full disk
 * (the file size limit of prlimit: writes fail with EFBIG): a clear error,
 * exit 1, nothing under a final name, an earlier report left whole.  The
 * dataset mode: a manifest and summary written here in the format of
 * docs/datasets.md, its numbers checked against the rows written.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gd.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "cdp.h"
#include "imghash/imghash.h"
#include "pgtest.h"
#include "testpic.h"
#include "proc.h"
#include "savedir.h"
#include "sbuf.h"
#include "testenv.h"
#include "xalloc.h"
#ifdef IMGFEED_REPORT_HAVE_EXPORT
#define HAVE_EXPORT 1 /* imgfeed-export is built: its datasets are reported on too */
#endif
#if __has_include("dsarchive.h")
#include "dsarchive.h"
#define HAVE_DSARCHIVE 1
#endif

#define ORIGINALS 6
#define MAX_DISTANCE 8

static char exchange[40];
static char *work, *save_dir, *report_bin;

/* The labels of the hand-made items: hostile ones included. */
static const char *const labels[] = {
    "cat",
    "dog/..",
    "..",
    "a\x01"
    "b\x7f"
    "c\x1b[31m",
    NULL, /* 300 bytes of UTF-8, made in setup */
    "<script>document.title='pwned'</script>&amp;",
    "quote\"'`",
};
#define NLABELS (sizeof labels / sizeof labels[0])
static char utf300[301];

static const char *label_of(size_t i) { return i == 4 ? utf300 : labels[i]; }

/* --- pictures --- */

typedef struct picture {
    json_object *entry; /* its `_img` fields, without "url" */
    char sha1[41];
} picture;

static picture pics[ORIGINALS][3]; /* original, half, q40 */

static void describe(gdImagePtr im, bool jpeg, picture *p) {
    int size;
    void *data = jpeg ? gdImageJpegPtr(im, &size, 40) : gdImagePngPtr(im, &size);
    ih_options o;
    ih_options_init(&o);
    p->entry = json_object_new_object();
    ih_result res;
    assert_int_equal(ih_describe(p->entry, data, (size_t)size, &o, &res), 0);
    /* the fields as the archive holds them: numbers as printed (rgb_mean with 3 decimals) */
    json_object *printed = json_tokener_parse(json_object_to_json_string_ext(p->entry, JSON_C_TO_STRING_PLAIN));
    json_object_put(p->entry);
    p->entry = printed;
    json_object *v;
    assert_true(json_object_object_get_ex(p->entry, "sha1", &v));
    snprintf(p->sha1, sizeof p->sha1, "%s", json_object_get_string(v));
    char err[SAVEDIR_ERROR_MAX];
    assert_int_equal(savedir_store(save_dir, p->sha1, jpeg ? "jpg" : "png", data, (size_t)size, NULL, err), 0);
    gdFree(data);
}

static void draw(int k) {
    enum { W = TESTPIC_W, H = TESTPIC_H };
    gdImagePtr im = testpic_original(k);
    describe(im, false, &pics[k][0]);
    gdImagePtr half = gdImageCreateTrueColor(W / 2, H / 2);
    gdImageCopyResampled(half, im, 0, 0, 0, 0, W / 2, H / 2, W, H);
    describe(half, false, &pics[k][1]);
    gdImageDestroy(half);
    describe(im, true, &pics[k][2]);
    gdImageDestroy(im);
}

/* --- the archive --- */

static char table_a[80], table_b[80];
static int item_no;

/* An entry of picture P at url number N (a copy of its fields). */
static json_object *entry_of(const picture *p, int n) {
    json_object *e = json_object_new_object();
    json_object_object_add(e, "url", json_object_new_int(n));
    json_object_object_foreach(p->entry, k, v) json_object_object_add(e, k, json_object_get(v));
    return e;
}

static json_object *error_entry(int n, const char *why) {
    json_object *e = json_object_new_object();
    json_object_object_add(e, "url", json_object_new_int(n));
    json_object_object_add(e, "error", json_object_new_string(why));
    return e;
}

/* Insert item ITEM (its _id made here) into TABLE; takes ITEM. */
static void insert(const char *table, const char *site, const char *label, long time, json_object *item) {
    char id[32];
    snprintf(id, sizeof id, "i.%d", ++item_no);
    json_object_object_add(item, "_id", json_object_new_string(id));
    json_object_object_add(item, "_chan", json_object_new_string(site));
    if (label) json_object_object_add(item, "_board", json_object_new_string(label));
    if (time) json_object_object_add(item, "time", json_object_new_int64(time));
    const char *p[2] = {id, json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN)};
    char *sql = xasprintf("INSERT INTO \"%s\" (id, data) VALUES ($1, $2::jsonb)", table);
    PQclear(pgtest_query(sql, 2, p));
    free(sql);
    json_object_put(item);
}

static json_object *item_with(json_object *img) {
    json_object *item = json_object_new_object();
    json_object_object_add(item, "_v", json_object_new_int(1));
    json_object *urls = json_object_new_array();
    for (int i = 0; i < 4; i++) {
        char u[64];
        snprintf(u, sizeof u, "http://127.0.0.1:9/f%d.png", i);
        json_object_array_add(urls, json_object_new_string(u));
    }
    json_object_object_add(item, "_urls", urls);
    if (img) json_object_object_add(item, "_img", img);
    return item;
}

static const long day0 = 1764547200; /* 2025-12-01 00:00 UTC */

static void fill_archive(void) {
    const char *const iargs[] = {"--init-db", "--pg", testenv_require("IMGFEED_PG"), NULL};
    proc p = {0};
    proc_start_imgfeed(&p, "archiver/imgfeed-archiver", exchange, iargs);
    assert_int_equal(proc_wait(&p), 0);
    proc_release(&p);
    snprintf(table_a, sizeof table_a, "%s_alpha_post", exchange);
    snprintf(table_b, sizeof table_b, "%s_beta_image", exchange);
    pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', 'alpha.post')", table_a, exchange);
    pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', 'beta.image')", table_b, exchange);
    for (int k = 0; k < ORIGINALS; k++) {
        /* the original under its label, with an error beside it now and then */
        json_object *img = json_object_new_array();
        json_object_array_add(img, entry_of(&pics[k][0], 0));
        if (k % 2) json_object_array_add(img, error_entry(1, k % 4 == 1 ? "http 404" : "network error: refused"));
        insert(table_a, "alpha", label_of((size_t)k % NLABELS), day0 + k * 43200, item_with(img));
        /* its variants on the other site */
        for (int v = 1; v < 3; v++) {
            img = json_object_new_array();
            json_object_array_add(img, entry_of(&pics[k][v], 0));
            insert(table_b, "beta", label_of((size_t)(k + v) % NLABELS), day0 + 86400 + k * 3600, item_with(img));
        }
    }
    /* exact duplicates: original 0 three more times (every hostile label), 1 once */
    for (size_t l = 3; l < NLABELS; l++) {
        json_object *img = json_object_new_array();
        json_object_array_add(img, entry_of(&pics[0][0], 2));
        json_object_array_add(img, error_entry(3, "too large"));
        insert(table_a, "alpha", label_of(l), day0 + 2 * 86400, item_with(img));
    }
    json_object *img = json_object_new_array();
    json_object_array_add(img, entry_of(&pics[1][0], 0));
    json_object_array_add(img, error_entry(1, "not an image"));
    json_object_array_add(img, error_entry(2, "http 500: retry-after 9 ms is longer than the 5 ms allowed"));
    insert(table_a, "alpha", NULL, 0, item_with(img)); /* no label, no time: _crawled_at */
    img = json_object_new_array();
    json_object_array_add(img, entry_of(&pics[1][0], 1));
    insert(table_b, "beta", "cat", day0 + 86400, item_with(img));
    /* rows without `_img`, `_img` of another shape, entries that are not objects */
    insert(table_a, "alpha", "cat", day0, item_with(NULL));
    insert(table_b, "beta", "cat", day0, item_with(NULL));
    json_object *odd = item_with(NULL);
    json_object_object_add(odd, "_img", json_object_new_string("not an array"));
    insert(table_b, "beta", "dog/..", day0 + 3 * 86400, odd);
    img = json_object_new_array();
    json_object_array_add(img, json_object_new_int(5));
    json_object_array_add(img, json_object_new_string("x"));
    json_object_array_add(img, error_entry(0, ""));
    insert(table_b, "beta", "..", 0, item_with(img));
    pgtest_exec("UPDATE \"%s\" SET data = data || '{\"_crawled_at\": %ld}' WHERE NOT data ? 'time'", table_a,
                day0 + 4 * 86400 + 5);
    /* colour fields removed from one picture's copies (archived before the hasher wrote them) */
    pgtest_exec("UPDATE \"%s\" SET data = jsonb_set(data, '{_img,0}', (data->'_img'->0) - 'rgb_mean' - 'rgb_hist' - "
                "'brightness') WHERE data->'_img'->0->>'sha1' = '%s'",
                table_b, pics[2][1].sha1);
    /* 2,000 generated rows: their own labels, sizes, shapes, colours, errors and exact duplicates */
    pgtest_exec(
        "INSERT INTO \"%s\" (id, data) SELECT 'g.' || i, jsonb_build_object('_chan', 'alpha', '_board', 'gen' || (i %% "
        "7),"
        " 'time', %ld + i * 733, '_urls', jsonb_build_array('http://127.0.0.1:9/g.jpg'),"
        " '_img', jsonb_build_array(jsonb_build_object('url', 0, 'size', (i * 7919) %% 5000000,"
        "   'width', 20 + (i * 37) %% 9000, 'height', 20 + (i * 53) %% 7000,"
        "   'format', (ARRAY['jpeg','png','gif','webp'])[1 + i %% 4],"
        "   'sha1', md5('g' || (i %% 1500)) || left(md5('h' || (i %% 1500)), 8),"
        "   'phash', encode(substr(decode(md5('p' || (i %% 1500)) || md5('q' || (i %% 1500)), 'hex'), 1, 18), "
        "'base64'),"
        "   'brightness', ((i * 13) %% 256000) / 1000.0,"
        "   'rgb_mean', jsonb_build_array((i * 7) %% 256 + 0.25, (i * 11) %% 256 + 0.5, (i * 17) %% 256 + 0.125),"
        "   'rgb_hist', (SELECT jsonb_agg(((i * (k + 3)) %% 97) + CASE WHEN k %% 8 = 0 THEN 1 ELSE 0 END ORDER BY k)"
        "                FROM generate_series(0, 23) k)))"
        "   || CASE WHEN i %% 50 = 0 THEN jsonb_build_array(jsonb_build_object('url', 1,"
        "        'error', CASE WHEN i %% 100 = 0 THEN 'http 404' ELSE 'network error: timed out' END)) ELSE '[]' END)"
        " FROM generate_series(1, 2000) i",
        table_a, day0 - 10 * 86400);
    /* the save dir: one file gone, one damaged */
    char *gone = savedir_path(save_dir, pics[1][0].sha1, "png"), *bad = savedir_path(save_dir, pics[0][1].sha1, "png");
    assert_int_equal(unlink(gone), 0);
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("\x89PNG\r\n\x1a\n but then nothing of a picture", f);
    fclose(f);
    free(gone);
    free(bad);
}

/* --- SQL over the archive --- */

static char *entries_union(const char *ex) {
    PGresult *r =
        pgtest_query("SELECT name FROM imgfeed_tables WHERE exchange = $1 ORDER BY name", 1, (const char *[]){ex});
    sbuf b = {0};
    for (int i = 0; i < PQntuples(r); i++) {
        char *one = xasprintf("%sSELECT t.data AS d, e FROM \"%s\" t, jsonb_array_elements(CASE WHEN "
                              "jsonb_typeof(t.data->'_img') = 'array' THEN t.data->'_img' ELSE '[]' END) e "
                              "WHERE jsonb_typeof(e) = 'object'",
                              i ? " UNION ALL " : "", PQgetvalue(r, i, 0));
        sbuf_add(&b, one, strlen(one));
        free(one);
    }
    PQclear(r);
    sbuf_addc(&b, '\0');
    return b.p;
}

static char *items_union(const char *ex) {
    PGresult *r =
        pgtest_query("SELECT name FROM imgfeed_tables WHERE exchange = $1 ORDER BY name", 1, (const char *[]){ex});
    sbuf b = {0};
    for (int i = 0; i < PQntuples(r); i++) {
        char *one = xasprintf("%sSELECT data AS d FROM \"%s\"", i ? " UNION ALL " : "", PQgetvalue(r, i, 0));
        sbuf_add(&b, one, strlen(one));
        free(one);
    }
    PQclear(r);
    sbuf_addc(&b, '\0');
    return b.p;
}

/* Rows (k1, [k2,] n...) of SQL as a JSON map: {k1: n} with one value
 * column, {k1: {k2: n}} with NEST, {k1: {names[i]: col i}} with NAMES. */
static json_object *sql_map(const char *sql, bool nest, const char *const *names) {
    PGresult *r = pgtest_query(sql, 0, NULL);
    json_object *m = json_object_new_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *k = PQgetvalue(r, i, 0);
        if (nest) {
            json_object *in;
            if (!json_object_object_get_ex(m, k, &in)) json_object_object_add(m, k, in = json_object_new_object());
            json_object_object_add(in, PQgetvalue(r, i, 1),
                                   json_object_new_int64(strtoll(PQgetvalue(r, i, 2), NULL, 10)));
        } else if (names) {
            json_object *o = json_object_new_object();
            for (int c = 0; names[c]; c++)
                json_object_object_add(o, names[c], json_object_new_int64(strtoll(PQgetvalue(r, i, c + 1), NULL, 10)));
            json_object_object_add(m, k, o);
        } else {
            json_object_object_add(m, k, json_object_new_int64(strtoll(PQgetvalue(r, i, 1), NULL, 10)));
        }
    }
    PQclear(r);
    return m;
}

static json_object *get(json_object *o, const char *path) {
    char *p = xstrdup(path), *save = NULL;
    for (char *k = strtok_r(p, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, k, &v)) fail_msg("report.json has no %s (at %s)", path, k);
        o = v;
    }
    free(p);
    return o;
}

static void assert_json_equal(const char *what, json_object *got, json_object *want) {
    if (!json_object_equal(got, want))
        fail_msg("%s differs:\n  report %s\n  SQL    %s", what,
                 json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
                 json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
}

/* REP's member at PATH must equal the map SQL gives (sql_map, NEST and
 * NAMES as there); SQL is freed. */
static void expect_sql_map(json_object *rep, const char *what, const char *path, char *sql, bool nest,
                           const char *const *names) {
    json_object *want = sql_map(sql, nest, names);
    free(sql);
    assert_json_equal(what, get(rep, path), want);
    json_object_put(want);
}

static void assert_near(const char *what, double got, double want) {
    if (!(fabs(got - want) <= 1e-9 * (1 + fabs(want)))) fail_msg("%s: report %.17g, SQL %.17g", what, got, want);
}

static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *sql = xvasprintf(fmt, ap);
    va_end(ap);
    PGresult *r = pgtest_query(sql, 0, NULL);
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    free(sql);
    return v;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b = {0};
    sbuf_add_stream(&b, f);
    fclose(f);
    sbuf_addc(&b, '\0');
    return b.p;
}

/* The page's escape of a label (page.c's rules), to find it in the HTML. */
static char *html_of(const char *s) {
    sbuf b = {0};
    if (!*s) {
        sbuf_add(&b, "<i>(none)</i>", 13);
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        const char *rep = *p == '&'    ? "&amp;"
                          : *p == '<'  ? "&lt;"
                          : *p == '>'  ? "&gt;"
                          : *p == '"'  ? "&quot;"
                          : *p == '\'' ? "&#39;"
                                       : NULL;
        if (!rep && (*p < 0x20 || *p == 0x7f)) {
            snprintf(tmp, sizeof tmp, "\\x%02x", *p);
            rep = tmp;
        }
        if (rep)
            sbuf_add(&b, rep, strlen(rep));
        else
            sbuf_addc(&b, (char)*p);
    }
    sbuf_addc(&b, '\0');
    return b.p;
}

static void assert_html_has(const char *html, const char *text) {
    if (!strstr(html, text)) fail_msg("the page does not show %s", text);
}

/* The thumbnail state of the member with SHA1 in any kept group of DUPES ("" when none). */
static const char *thumb_state(json_object *dupes, const char *sha1) {
    json_object *largest = get(dupes, "largest");
    for (size_t i = 0; i < json_object_array_length(largest); i++) {
        json_object *members = get(json_object_array_get_idx(largest, i), "members");
        for (size_t j = 0; j < json_object_array_length(members); j++) {
            json_object *m = json_object_array_get_idx(members, j), *s;
            if (json_object_object_get_ex(m, "sha1", &s) && json_object_get_string(s) &&
                strcmp(json_object_get_string(s), sha1) == 0)
                return json_object_get_string(get(m, "thumb"));
        }
    }
    return "";
}

/* Run imgfeed-report with ARGS (after the binary), its log into a file; exit status. */
static int run_report(const char *const *args, char **log) {
    sbuf cmd = {0};
    for (int i = -1; i < 0 || args[i]; i++) {
        const char *a = i < 0 ? report_bin : args[i];
        sbuf_addc(&cmd, '\'');
        for (const char *c = a; *c; c++) {
            if (*c == '\'')
                sbuf_add(&cmd, "'\\''", 4);
            else
                sbuf_addc(&cmd, *c);
        }
        sbuf_add(&cmd, "' ", 2);
    }
    char *logpath = xasprintf("%s/report-%d.log", work, item_no++);
    sbuf_add(&cmd, ">", 1);
    sbuf_add(&cmd, logpath, strlen(logpath));
    sbuf_add(&cmd, " 2>&1", 5);
    sbuf_addc(&cmd, '\0');
    int st = system(cmd.p);
    free(cmd.p);
    *log = read_text(logpath);
    if (!*log) *log = xstrdup("");
    free(logpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Whether DIR holds a staging directory (.report.*) left behind. */
static bool stage_left(const char *dir) {
    DIR *d = opendir(dir);
    bool left = false;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".report.", 8) == 0) left = true;
    if (d) closedir(d);
    return left;
}

/* Every number of OUT/report.json against SQL over the archive of EX. */
static void check_archive_report(const char *ex, const char *out, bool hand_made) {
    char *path = xasprintf("%s/report.json", out);
    json_object *rep = json_object_from_file(path);
    if (!rep) fail_msg("cannot read %s", path);
    free(path);
    char *E = entries_union(ex), *I = items_union(ex), *sql;
    /* totals */
    assert_int_equal(json_object_get_int64(get(rep, "totals.items")), sql_int("SELECT count(*) FROM (%s) u", I));
    assert_int_equal(json_object_get_int64(get(rep, "totals.items_without_img")),
                     sql_int("SELECT count(*) FROM (%s) u WHERE jsonb_typeof(d->'_img') IS DISTINCT FROM 'array'", I));
    assert_int_equal(json_object_get_int64(get(rep, "totals.entries")), sql_int("SELECT count(*) FROM (%s) u", E));
    assert_int_equal(json_object_get_int64(get(rep, "totals.images")),
                     sql_int("SELECT count(*) FROM (%s) u WHERE NOT e ? 'error'", E));
    assert_int_equal(json_object_get_int64(get(rep, "totals.errors")),
                     sql_int("SELECT count(*) FROM (%s) u WHERE e ? 'error'", E));
    assert_int_equal(json_object_get_int64(get(rep, "totals.bytes")),
                     sql_int("SELECT sum((e->>'size')::numeric) FROM (%s) u WHERE NOT e ? 'error' AND "
                             "jsonb_typeof(e->'size') = 'number' AND (e->>'size')::numeric >= 0",
                             E));
    /* labels */
    static const char *const lnames[] = {"images", "bytes", NULL};
    sql = xasprintf("SELECT coalesce(d->>'_board', ''), count(*), coalesce(sum(CASE WHEN jsonb_typeof(e->'size') = "
                    "'number' AND (e->>'size')::numeric >= 0 THEN round((e->>'size')::numeric) END), 0) FROM (%s) u "
                    "WHERE NOT e ? 'error' GROUP BY 1",
                    E);
    expect_sql_map(rep, "images and bytes per label", "labels", sql, false, lnames);
    assert_int_equal(json_object_get_int64(get(rep, "totals.labels")),
                     sql_int("SELECT count(DISTINCT coalesce(d->>'_board', '')) FROM (%s) u WHERE NOT e ? 'error'", E));
    /* items per day per site */
    sql = xasprintf("SELECT coalesce(d->>'_chan', ''), coalesce(to_char(imgfeed_posted_at(d) AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD'), 'unknown'), count(*) FROM (%s) u GROUP BY 1, 2",
                    I);
    expect_sql_map(rep, "items per day per site", "per_day.sites", sql, true, NULL);
    /* formats */
    sql = xasprintf("SELECT CASE WHEN jsonb_typeof(e->'format') = 'string' AND e->>'format' <> '' THEN e->>'format' "
                    "ELSE 'unknown' END, count(*), coalesce(sum(CASE WHEN jsonb_typeof(e->'size') = 'number' AND "
                    "(e->>'size')::numeric >= 0 THEN round((e->>'size')::numeric) END), 0) FROM (%s) u "
                    "WHERE NOT e ? 'error' GROUP BY 1",
                    E);
    expect_sql_map(rep, "images and bytes per format", "formats", sql, false, lnames);
    /* the size histogram: powers of two from 1 KiB to 64 MiB, as documented */
    json_object *edges = json_object_new_array();
    sbuf arr = {0};
    sbuf_add(&arr, "ARRAY[0", 7);
    json_object_array_add(edges, json_object_new_int64(0));
    for (int k = 10; k <= 26; k++) {
        char n[32];
        snprintf(n, sizeof n, ",%lld", 1LL << k);
        sbuf_add(&arr, n, strlen(n));
        json_object_array_add(edges, json_object_new_int64(1LL << k));
    }
    sbuf_add(&arr, "]::numeric[]", 13);
    assert_json_equal("size bin edges", get(rep, "sizes.edges"), edges);
    json_object_put(edges);
    json_object *counts = get(rep, "sizes.counts");
    sql = xasprintf("SELECT width_bucket(round((e->>'size')::numeric), %s), count(*) FROM (%s) u WHERE NOT e ? 'error' "
                    "AND jsonb_typeof(e->'size') = 'number' AND (e->>'size')::numeric >= 0 GROUP BY 1",
                    arr.p, E);
    free(arr.p);
    PGresult *r = pgtest_query(sql, 0, NULL);
    free(sql);
    int64_t got_sizes[18] = {0};
    for (int i = 0; i < PQntuples(r); i++)
        got_sizes[atoi(PQgetvalue(r, i, 0)) - 1] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    PQclear(r);
    for (int i = 0; i < 18; i++)
        assert_int_equal(json_object_get_int64(json_object_array_get_idx(counts, (size_t)i)), got_sizes[i]);
    /* width x height */
    static const int dim_edges[] = {0, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192};
    const char *darr = "ARRAY[0,64,128,256,384,512,768,1024,1536,2048,3072,4096,6144,8192]::numeric[]";
    for (int i = 0; i < 14; i++)
        assert_int_equal(json_object_get_int(json_object_array_get_idx(get(rep, "dimensions.edges"), (size_t)i)),
                         dim_edges[i]);
    sql = xasprintf(
        "SELECT width_bucket(round((e->>'width')::numeric), %s), width_bucket(round((e->>'height')::numeric), "
        "%s), count(*) FROM (%s) u WHERE NOT e ? 'error' AND jsonb_typeof(e->'width') = 'number' AND "
        "jsonb_typeof(e->'height') = 'number' AND round((e->>'width')::numeric) > 0 AND "
        "round((e->>'height')::numeric) > 0 GROUP BY 1, 2",
        darr, darr, E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    int64_t dims[14][14] = {{0}};
    for (int i = 0; i < PQntuples(r); i++)
        dims[atoi(PQgetvalue(r, i, 0)) - 1][atoi(PQgetvalue(r, i, 1)) - 1] = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    PQclear(r);
    json_object *dc = get(rep, "dimensions.counts");
    for (int w = 0; w < 14; w++)
        for (int h = 0; h < 14; h++)
            assert_int_equal(
                json_object_get_int64(json_object_array_get_idx(json_object_array_get_idx(dc, (size_t)w), (size_t)h)),
                dims[w][h]);
    /* brightness: bins of 8 levels */
    sql = xasprintf("SELECT least(31, greatest(0, floor((e->>'brightness')::numeric / 8)))::int, count(*) FROM (%s) u "
                    "WHERE NOT e ? 'error' AND jsonb_typeof(e->'brightness') = 'number' GROUP BY 1",
                    E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    int64_t bright[32] = {0};
    for (int i = 0; i < PQntuples(r); i++)
        bright[atoi(PQgetvalue(r, i, 0))] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    PQclear(r);
    int64_t bright_total = 0;
    for (int i = 0; i < 32; i++) {
        assert_int_equal(json_object_get_int64(json_object_array_get_idx(get(rep, "brightness.counts"), (size_t)i)),
                         bright[i]);
        bright_total += bright[i];
    }
    /* colour per label: mean share of each rgb_hist bin in its channel, mean rgb_mean, mean brightness */
    sql = xasprintf(
        "WITH img AS (SELECT coalesce(d->>'_board', '') AS label, e->'rgb_hist' AS h, row_number() OVER () AS n "
        "FROM (%s) u WHERE NOT e ? 'error' AND jsonb_typeof(e->'rgb_hist') = 'array' AND "
        "jsonb_array_length(e->'rgb_hist') = 24),"
        " bins AS (SELECT label, n, k - 1 AS k, v::float8 AS v, sum(v::float8) OVER (PARTITION BY n, (k - 1) / 8) AS s "
        "FROM img, jsonb_array_elements_text(h) WITH ORDINALITY AS a(v, k))"
        " SELECT label, k, avg(v / s), count(*) FROM bins GROUP BY 1, 2 ORDER BY 1, 2",
        E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    int hist_rows = PQntuples(r);
    for (int i = 0; i < hist_rows; i++) {
        json_object *c = get(rep, "colour"), *lc;
        if (!json_object_object_get_ex(c, PQgetvalue(r, i, 0), &lc))
            fail_msg("no colour for label %s", PQgetvalue(r, i, 0));
        int k = atoi(PQgetvalue(r, i, 1));
        json_object *h;
        if (!json_object_object_get_ex(lc, "rgb_hist", &h)) fail_msg("no rgb_hist for label %s", PQgetvalue(r, i, 0));
        assert_near("rgb_hist mean", json_object_get_double(json_object_array_get_idx(h, (size_t)k)),
                    strtod(PQgetvalue(r, i, 2), NULL));
        if (k == 0)
            assert_int_equal(json_object_get_int64(get(lc, "with_hist")), strtoll(PQgetvalue(r, i, 3), NULL, 10));
    }
    PQclear(r);
    sql = xasprintf(
        "SELECT coalesce(d->>'_board', ''), avg((e->'rgb_mean'->>0)::float8), avg((e->'rgb_mean'->>1)::float8),"
        " avg((e->'rgb_mean'->>2)::float8), count(*) FROM (%s) u WHERE NOT e ? 'error' AND "
        "jsonb_typeof(e->'rgb_mean') = 'array' AND jsonb_array_length(e->'rgb_mean') = 3 GROUP BY 1",
        E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    for (int i = 0; i < PQntuples(r); i++) {
        json_object *lc, *m;
        assert_true(json_object_object_get_ex(get(rep, "colour"), PQgetvalue(r, i, 0), &lc));
        assert_true(json_object_object_get_ex(lc, "rgb_mean", &m));
        for (int c = 0; c < 3; c++)
            assert_near("rgb_mean", json_object_get_double(json_object_array_get_idx(m, (size_t)c)),
                        strtod(PQgetvalue(r, i, 1 + c), NULL));
        assert_int_equal(json_object_get_int64(get(lc, "with_mean")), strtoll(PQgetvalue(r, i, 4), NULL, 10));
    }
    PQclear(r);
    sql = xasprintf("SELECT coalesce(d->>'_board', ''), avg((e->>'brightness')::float8), count(*) FROM (%s) u WHERE "
                    "NOT e ? 'error' AND jsonb_typeof(e->'brightness') = 'number' GROUP BY 1",
                    E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    for (int i = 0; i < PQntuples(r); i++) {
        json_object *lc;
        assert_true(json_object_object_get_ex(get(rep, "colour"), PQgetvalue(r, i, 0), &lc));
        assert_near("brightness", json_object_get_double(get(lc, "brightness")), strtod(PQgetvalue(r, i, 1), NULL));
        assert_int_equal(json_object_get_int64(get(lc, "with_brightness")), strtoll(PQgetvalue(r, i, 2), NULL, 10));
    }
    PQclear(r);
    /* errors by kind */
    sql = xasprintf(
        "SELECT coalesce(nullif(btrim(split_part(split_part(coalesce(e->>'error', ''), ':', 1), ';', 1), ' '), "
        "''), 'unknown'), count(*) FROM (%s) u WHERE e ? 'error' GROUP BY 1",
        E);
    expect_sql_map(rep, "errors by kind", "errors", sql, false, NULL);
    /* exact duplicates: GROUP BY sha1 */
    sql = xasprintf("SELECT c::text, count(*) FROM (SELECT e->>'sha1', count(*) AS c FROM (%s) u WHERE NOT e ? 'error' "
                    "AND jsonb_typeof(e->'sha1') = 'string' GROUP BY 1 HAVING count(*) > 1) g GROUP BY 1",
                    E);
    json_object *want = sql_map(sql, false, NULL);
    free(sql);
    assert_json_equal("exact groups by size", get(rep, "duplicates.exact.sizes"), want);
    int64_t groups = 0, images = 0;
    json_object_object_foreach(want, sz, cnt) {
        groups += json_object_get_int64(cnt);
        images += json_object_get_int64(cnt) * strtoll(sz, NULL, 10);
    }
    json_object_put(want);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.groups")), groups);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.images")), images);
    sql = xasprintf(
        "SELECT s, count(*) FROM (SELECT e->>'sha1' AS s FROM (%s) u WHERE NOT e ? 'error' AND "
        "jsonb_typeof(e->'sha1') = 'string') v GROUP BY s HAVING count(*) > 1 ORDER BY 2 DESC, s COLLATE \"C\" "
        "LIMIT 1",
        E);
    r = pgtest_query(sql, 0, NULL);
    free(sql);
    json_object *largest = get(rep, "duplicates.exact.largest");
    if (PQntuples(r)) {
        json_object *g0 = json_object_array_get_idx(largest, 0);
        assert_string_equal(json_object_get_string(get(g0, "sha1")), PQgetvalue(r, 0, 0));
        assert_int_equal(json_object_get_int64(get(g0, "size")), strtoll(PQgetvalue(r, 0, 1), NULL, 10));
    }
    PQclear(r);
    /* near duplicates: imgfeed-search dupes over the same archive */
    char *cmd = xasprintf("%s/search/imgfeed-search dupes --pg '%s' --exchange %s --max-distance %d --log-level warn",
                          testenv_binary_dir(), testenv_require("IMGFEED_PG"), ex, MAX_DISTANCE);
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    char *line = NULL;
    size_t cap = 0;
    int64_t ngroups = 0, nimages = 0;
    json_object *sizes = json_object_new_object(), *first = NULL;
    while (getline(&line, &cap, p) > 0) {
        json_object *g = json_tokener_parse(line);
        assert_non_null(g);
        int64_t n = json_object_get_int64(get(g, "size"));
        char key[32];
        snprintf(key, sizeof key, "%" PRId64, n);
        json_object *c;
        if (json_object_object_get_ex(sizes, key, &c))
            json_object_int_inc(c, 1);
        else
            json_object_object_add(sizes, key, json_object_new_int64(1));
        ngroups++;
        nimages += n;
        if (!first || n > json_object_get_int64(get(first, "size"))) {
            json_object_put(first);
            first = json_object_get(g);
        }
        json_object_put(g);
    }
    free(line);
    assert_int_equal(pclose(p), 0);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.groups")), ngroups);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.images")), nimages);
    assert_json_equal("near groups by size", get(rep, "duplicates.near.sizes"), sizes);
    json_object_put(sizes);
    if (first) { /* the largest near group, first met: the same members */
        json_object *g0 = json_object_array_get_idx(get(rep, "duplicates.near.largest"), 0);
        assert_int_equal(json_object_get_int64(get(g0, "size")), json_object_get_int64(get(first, "size")));
        json_object *gm = get(g0, "members"), *wm = get(first, "images");
        for (size_t i = 0; i < json_object_array_length(gm); i++) {
            json_object *a = json_object_array_get_idx(gm, i), *b = json_object_array_get_idx(wm, i);
            assert_string_equal(json_object_get_string(get(a, "table")), json_object_get_string(get(b, "table")));
            assert_string_equal(json_object_get_string(get(a, "id")), json_object_get_string(get(b, "id")));
            assert_int_equal(json_object_get_int64(get(a, "image")), json_object_get_int64(get(b, "image")));
        }
        json_object_put(first);
    }
    if (hand_made) {
        /* the variants of the pictures are near duplicates of them (the bulk rows' hashes are random: only
         * their exact copies meet) and the thumbnails say what the save dir holds */
        assert_true(ngroups > 500);
        assert_string_equal(thumb_state(get(rep, "duplicates.exact"), pics[0][0].sha1), "ok");
        assert_string_equal(thumb_state(get(rep, "duplicates.exact"), pics[1][0].sha1), "missing");
        assert_string_equal(thumb_state(get(rep, "duplicates.near"), pics[0][1].sha1), "damaged");
    }
    /* the page shows the numbers */
    char *hpath = xasprintf("%s/report.html", out);
    char *html = read_text(hpath);
    assert_non_null(html);
    free(hpath);
    json_object_object_foreach(get(rep, "labels"), lk, lv) {
        char *esc = html_of(lk);
        char *cell = xasprintf("%s</td><td>%" PRId64 "</td><td>%" PRId64 "</td>", esc,
                               json_object_get_int64(get(lv, "images")), json_object_get_int64(get(lv, "bytes")));
        assert_html_has(html, cell);
        free(cell);
        free(esc);
    }
    json_object_object_foreach(get(rep, "per_day.sites"), sk, sv) {
        json_object_object_foreach(sv, dk, dv) {
            char *esc = html_of(sk);
            char *cell = xasprintf("%s</td><td>%s</td><td>%" PRId64 "</td>", esc, dk, json_object_get_int64(dv));
            assert_html_has(html, cell);
            free(cell);
            free(esc);
        }
    }
    json_object_object_foreach(get(rep, "formats"), fk, fv) {
        char *cell = xasprintf("%s</td><td>%" PRId64 "</td><td>%" PRId64 "</td>", fk,
                               json_object_get_int64(get(fv, "images")), json_object_get_int64(get(fv, "bytes")));
        assert_html_has(html, cell);
        free(cell);
    }
    json_object_object_foreach(get(rep, "errors"), ek, ev) {
        char *esc = html_of(ek);
        char *cell = xasprintf("%s</td><td>%" PRId64 "</td>", esc, json_object_get_int64(ev));
        assert_html_has(html, cell);
        free(cell);
        free(esc);
    }
    for (int i = 0; i < 32; i++) {
        char cell[64];
        snprintf(cell, sizeof cell, "<tr><td>%d</td><td>%" PRId64 "</td></tr>", 8 * i, bright[i]);
        assert_html_has(html, cell);
    }
    json_object_object_foreach(get(rep, "colour"), ck, cv) {
        json_object *h;
        if (!json_object_object_get_ex(cv, "rgb_hist", &h)) continue;
        char cell[64];
        snprintf(cell, sizeof cell, "<td>%.4f</td>", json_object_get_double(json_object_array_get_idx(h, 7)));
        assert_html_has(html, cell);
        (void)ck;
    }
    char cell[128];
    snprintf(cell, sizeof cell, "<b>%" PRId64 "</b><span>exact groups</span>",
             json_object_get_int64(get(rep, "duplicates.exact.groups")));
    assert_html_has(html, cell);
    snprintf(cell, sizeof cell, "<b>%" PRId64 "</b><span>images in near groups</span>", nimages);
    assert_html_has(html, cell);
    if (hand_made) { /* hostile labels are text */
        assert_null(strstr(html, "<script>"));
        assert_html_has(html, "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;&amp;amp;");
        assert_html_has(html, "a\\x01b\\x7fc\\x1b[31m");
        assert_html_has(html, utf300);
    }
    (void)bright_total;
    (void)hist_rows;
    free(html);
    free(E);
    free(I);
    json_object_put(rep);
}

/* The page in headless Chromium: figures drawn, thumbnails decoded, nothing fetched. */
static void check_page_in_chromium(const char *out, const char *shot) {
    char *url = xasprintf("file://%s/report.html", out);
    cdp b;
    const char *tall = getenv("IMGFEED_REPORT_SCREENSHOT_HEIGHT"); /* a taller screenshot, to look at it all */
    cdp_open(&b, url, 1280, tall && atoi(tall) > 0 ? atoi(tall) : 1700);
    assert_true(cdp_wait_true(&b, "document.readyState === 'complete'", 30000));
    json_object *v = cdp_eval(&b, "document.querySelectorAll('figure svg').length");
    assert_int_equal(json_object_get_int(v), 9);
    json_object_put(v);
    v = cdp_eval(&b, "[...document.querySelectorAll('figure svg')].every(s => { const r = s.getBoundingClientRect();"
                     " return r.width > 100 && r.height > 50 && s.querySelectorAll('path').length > 10; })");
    assert_true(json_object_get_boolean(v));
    json_object_put(v);
    v = cdp_eval(&b, "document.querySelectorAll('.thumb img').length");
    assert_true(json_object_get_int(v) > 0);
    json_object_put(v);
    v = cdp_eval(
        &b, "[...document.images].every(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/png'))");
    assert_true(json_object_get_boolean(v));
    json_object_put(v);
    v = cdp_eval(&b, "document.querySelectorAll('.thumb .ph').length");
    assert_true(json_object_get_int(v) >= 2); /* the missing and the damaged file */
    json_object_put(v);
    /* nothing but the page itself was requested */
    v = cdp_eval(&b, "performance.getEntriesByType('resource').filter(e => !e.name.startsWith('data:')).length");
    assert_int_equal(json_object_get_int(v), 0);
    json_object_put(v);
    /* and nothing could be: no script, no stylesheet or font file, every source a data: URI, every SVG
     * reference inside the page (or a data: PNG: matplotlib's colour bar) */
    v = cdp_eval(&b, "JSON.stringify([document.scripts.length === 0,"
                     " document.querySelectorAll('link, iframe, object, embed').length === 0,"
                     " [...document.styleSheets].every(s => s.href === null),"
                     " [...document.querySelectorAll('[src]')].every(e => e.getAttribute('src').startsWith('data:')),"
                     " [...document.querySelectorAll('use, image')].every(e => (e.getAttribute('href') ||"
                     " e.getAttribute('xlink:href') || '').match(/^(#|data:image\\/png;base64,)/)),"
                     " [...document.querySelectorAll('a[href]')].every(a => a.href.startsWith('file:') ||"
                     " a.getAttribute('href').startsWith('#')),"
                     " !document.documentElement.outerHTML.includes('url(http')])");
    assert_string_equal(json_object_get_string(v), "[true,true,true,true,true,true,true]");
    json_object_put(v);
    v = cdp_eval(&b, "document.title");
    assert_string_equal(json_object_get_string(v), "imgfeed report");
    json_object_put(v);
    assert_false(cdp_console_has(&b, "Content Security Policy"));
    assert_false(cdp_console_has(&b, "pwned"));
    const char *at = getenv("IMGFEED_REPORT_SCREENSHOT_AT"); /* a section to shoot instead of the top */
    if (at && *at && strspn(at, "abcdefghijklmnopqrstuvwxyz_") == strlen(at)) {
        char *js = xasprintf("document.getElementById('%s').scrollIntoView(), true", at);
        json_object_put(cdp_eval(&b, js));
        free(js);
    }
    char *png = xasprintf("%s/page.png", out);
    cdp_screenshot(&b, shot && *shot ? shot : png);
    free(png);
    cdp_close(&b);
    free(url);
}

/* --- setup --- */

static int group_setup(void **state) {
    (void)state;
    snprintf(exchange, sizeof exchange, "rpt%d", (int)getpid());
    work = testenv_tmpdir("test_report");
    save_dir = xasprintf("%s/save", work);
    char err[SAVEDIR_ERROR_MAX];
    assert_int_equal(savedir_prepare(save_dir, err), 0);
    report_bin = xasprintf("%s/report/imgfeed-report", testenv_binary_dir());
    for (int i = 0; i < 150; i++)
        memcpy(utf300 + 2 * i, "\xc3\xa9", 2); /* é */
    utf300[300] = '\0';
    for (int k = 0; k < ORIGINALS; k++)
        draw(k);
    fill_archive();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    proc_kill_all();
    pgtest_drop_tables(exchange);
    pgtest_close();
    for (int k = 0; k < ORIGINALS; k++)
        for (int v = 0; v < 3; v++)
            json_object_put(pics[k][v].entry);
    testenv_rmtree(work);
    free(work);
    free(save_dir);
    free(report_bin);
    return 0;
}

/* --- the tests --- */

static void test_archive_report(void **state) {
    (void)state;
    char *out = xasprintf("%s/out", work), *log;
    char dist[16];
    snprintf(dist, sizeof dist, "%d", MAX_DISTANCE);
    const char *args[] = {"--pg",
                          testenv_require("IMGFEED_PG"),
                          "--exchange",
                          exchange,
                          "--out",
                          out,
                          "--save-dir",
                          save_dir,
                          "--max-distance",
                          dist,
                          "--groups",
                          "12",
                          NULL};
    int st = run_report(args, &log);
    if (st != 0) fail_msg("imgfeed-report exited %d:\n%s", st, log);
    free(log);
    check_archive_report(exchange, out, true);
    /* every figure as SVG and PNG, no staging left */
    static const char *const figs[] = {"labels",     "per_day", "formats",    "sizes", "dimensions",
                                       "brightness", "colour",  "duplicates", "errors"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        for (int k = 0; k < 2; k++) {
            char *f = xasprintf("%s/figures/%s.%s", out, figs[i], k ? "png" : "svg");
            struct stat sb;
            if (stat(f, &sb) != 0 || sb.st_size < 1000) fail_msg("no figure %s", f);
            free(f);
        }
    }
    assert_false(stage_left(out));
    check_page_in_chromium(out, getenv("IMGFEED_REPORT_SCREENSHOT"));
    free(out);
}

static void test_bad_plotter_and_full_disk(void **state) {
    (void)state;
    char *out = xasprintf("%s/bad", work), *log;
    const char *pg = testenv_require("IMGFEED_PG");
    /* no plotter: nothing written */
    const char *a1[] = {"--pg", pg, "--exchange", exchange, "--out", out, "--python", "/nonexistent/python3", NULL};
    assert_int_equal(run_report(a1, &log), 1);
    if (!strstr(log, "cannot run the plotter /nonexistent/python3: No such file or directory")) fail_msg("%s", log);
    free(log);
    char *html = xasprintf("%s/report.html", out);
    assert_int_not_equal(access(html, F_OK), 0);
    assert_false(stage_left(out));
    /* a plotter that fails */
    const char *a2[] = {"--pg", pg, "--exchange", exchange, "--out", out, "--python", "/bin/false", NULL};
    assert_int_equal(run_report(a2, &log), 1);
    if (!strstr(log, "the plotter /bin/false failed (exit 1)")) fail_msg("%s", log);
    free(log);
    /* a Python without matplotlib */
    char *fake = xasprintf("%s/python-without-matplotlib", work);
    FILE *f = fopen(fake, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\n# a python3 whose import of matplotlib fails\nshift 2\n"
          "exec /usr/bin/python3 -c 'import builtins, sys\n"
          "real = builtins.__import__\n"
          "def imp(name, *a, **k):\n"
          "    if name.split(\".\")[0] == \"matplotlib\": raise ImportError(\"No module named \" + name)\n"
          "    return real(name, *a, **k)\n"
          "builtins.__import__ = imp\n"
          "sys.argv = [\"plot\"] + sys.argv[1:]\n"
          "exec(compile(sys.stdin.read(), \"plot.py\", \"exec\"))' \"$@\"\n",
          f);
    fclose(f);
    chmod(fake, 0755);
    const char *a3[] = {"--pg", pg, "--exchange", exchange, "--out", out, "--python", fake, NULL};
    assert_int_equal(run_report(a3, &log), 1);
    if (!strstr(log, "failed (exit 3): the plotter needs matplotlib (Debian: apt-get install python3-matplotlib)"))
        fail_msg("%s", log);
    free(log);
    assert_int_not_equal(access(html, F_OK), 0);
    assert_false(stage_left(out));
    /* a good report, then a full disk: the good one stays whole */
    const char *a4[] = {"--pg", pg, "--exchange", exchange, "--out", out, "--groups", "2", NULL};
    assert_int_equal(run_report(a4, &log), 0);
    free(log);
    char *before = read_text(html);
    assert_non_null(before);
    const char *a5[] = {"--pg", pg, "--exchange", exchange, "--out", out, "--groups", "3", "--title", "second", NULL};
    char *lim = xasprintf("%s/limited-report", work);
    f = fopen(lim, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nexec prlimit --fsize=200000 '%s' \"$@\"\n", report_bin);
    fclose(f);
    chmod(lim, 0755);
    char *real = report_bin;
    report_bin = lim;
    int st = run_report(a5, &log);
    report_bin = real;
    assert_int_equal(st, 1);
    if (!strstr(log, "File too large") || !strstr(log, "no report was written")) fail_msg("%s", log);
    free(log);
    char *after = read_text(html);
    assert_string_equal(before, after);
    assert_false(stage_left(out));
    free(before);
    free(after);
    free(lim);
    free(fake);
    free(html);
    free(out);
}

/* The dataset mode on a manifest written here (docs/datasets.md's format). */
typedef struct ds_row {
    const char *label, *split, *site, *format;
    long time;
    int pic, var; /* picture and variant */
} ds_row;

static void test_dataset_report(void **state) {
    (void)state;
    char *ds = xasprintf("%s/dataset", work), *out = xasprintf("%s/dsout", work), *log;
    assert_int_equal(mkdir(ds, 0755), 0);
    static const ds_row rows[] = {
        {"cat", "train", "alpha", "png", 1764547200, 0, 0},
        {"cat", "val", "alpha", "png", 1764633600, 1, 0},
        {"dog/..", "train", "beta", "png", 1764633600, 2, 0},
        {"dog/..", "test", "beta", "jpeg", 1764720000, 2, 2},
        {"<b>x</b>", "train", "alpha", "png", 1764720000, 3, 0},
        {"<b>x</b>", "train", "alpha", "png", 1764720000, 3, 1},
        {"cat", "test", "alpha", "png", 1764547200, 0, 0}, /* the same file twice: an exact group */
    };
    size_t n = sizeof rows / sizeof rows[0];
    char *mpath = xasprintf("%s/manifest.jsonl", ds);
    FILE *m = fopen(mpath, "w");
    assert_non_null(m);
    json_object *want_labels = json_object_new_object(), *sites = json_object_new_object(),
                *formats = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        const ds_row *r = &rows[i];
        const picture *p = &pics[r->pic][r->var];
        json_object *o = json_object_new_object(), *v;
        const char *ext = strcmp(r->format, "jpeg") == 0 ? "jpg" : "png";
        char *path = xasprintf("%s/%s/%s%s.%s", r->split,
                               r->label[0] == '<'   ? "x"
                               : r->label[0] == 'd' ? "dog"
                                                    : "cat",
                               p->sha1, i == 6 ? "-copy" : "", ext);
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "label", json_object_new_string(r->label));
        json_object_object_add(o, "split", json_object_new_string(r->split));
        json_object_object_add(o, "url", json_object_new_string("http://127.0.0.1:9/x.png"));
        json_object_object_add(o, "table", json_object_new_string(table_a));
        char id[16];
        snprintf(id, sizeof id, "d.%zu", i);
        json_object_object_add(o, "id", json_object_new_string(id));
        json_object_object_add(o, "image", json_object_new_int(0));
        json_object_object_add(o, "site", json_object_new_string(r->site));
        json_object_object_add(o, "board", json_object_new_string(r->label));
        json_object_object_add(o, "time", json_object_new_int64(r->time));
        static const char *const copy[] = {"width", "height", "format", "size",     "sha1",       "md5",     "ahash",
                                           "dhash", "phash",  "whash",  "rgb_mean", "brightness", "rgb_hist"};
        for (size_t c = 0; c < sizeof copy / sizeof copy[0]; c++)
            if (json_object_object_get_ex(p->entry, copy[c], &v))
                json_object_object_add(o, copy[c], json_object_get(v));
        json_object_object_add(o, "nsfw", json_object_new_boolean(0));
        json_object_object_add(o, "duplicates", json_object_new_int((int)i % 3));
        fprintf(m, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        /* the file: all there but the last (missing) */
        if (i != 5) {
            char *dir = xasprintf("%s/%s", ds, path);
            *strrchr(dir, '/') = '\0';
            char *mk = xasprintf("mkdir -p '%s'", dir);
            assert_int_equal(system(mk), 0);
            char *src = savedir_path(save_dir, p->sha1, ext), *dst = xasprintf("%s/%s", ds, path);
            char *cp = xasprintf("cp '%s' '%s' 2>/dev/null || true", src, dst);
            assert_int_equal(system(cp), 0);
            free(cp), free(src), free(dst), free(mk), free(dir);
        }
        /* the expected numbers */
        json_object *l;
        if (!json_object_object_get_ex(want_labels, r->label, &l)) {
            json_object_object_add(want_labels, r->label, l = json_object_new_object());
            static const char *const k[] = {"images", "bytes", "train", "val", "test", "other"};
            for (size_t j = 0; j < 6; j++)
                json_object_object_add(l, k[j], json_object_new_int64(0));
        }
        json_object_int_inc(get(l, "images"), 1);
        json_object_int_inc(get(l, "bytes"), json_object_get_int64(get(p->entry, "size")));
        json_object_int_inc(get(l, r->split), 1);
        char day[16];
        time_t t = (time_t)r->time;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        json_object *s;
        if (!json_object_object_get_ex(sites, r->site, &s))
            json_object_object_add(sites, r->site, s = json_object_new_object());
        if (json_object_object_get_ex(s, day, &v))
            json_object_int_inc(v, 1);
        else
            json_object_object_add(s, day, json_object_new_int64(1));
        if (!json_object_object_get_ex(formats, r->format, &v)) {
            json_object_object_add(formats, r->format, v = json_object_new_object());
            json_object_object_add(v, "images", json_object_new_int64(0));
            json_object_object_add(v, "bytes", json_object_new_int64(0));
        }
        json_object_int_inc(get(v, "images"), 1);
        json_object_int_inc(get(v, "bytes"), json_object_get_int64(get(p->entry, "size")));
        free(path);
        json_object_put(o);
    }
    fputs("not json\n", m);
    fclose(m);
    char *spath = xasprintf("%s/summary.json", ds);
    m = fopen(spath, "w");
    fputs(
        "{\"labels\": {}, \"total\": 7, \"skipped\": {\"exact_duplicate\": 4, \"near_duplicate\": 3, \"filtered\": 0, "
        "\"missing\": 1, \"error\": 2}, \"settings\": {}}\n",
        m);
    fclose(m);
    char dist[16];
    snprintf(dist, sizeof dist, "%d", MAX_DISTANCE);
    const char *args[] = {"--dataset", ds, "--out", out, "--max-distance", dist, NULL};
    int st = run_report(args, &log);
    if (st != 0) fail_msg("imgfeed-report --dataset exited %d:\n%s", st, log);
    if (!strstr(log, "line 8: not a JSON object, skipped")) fail_msg("%s", log);
    free(log);
    char *jpath = xasprintf("%s/report.json", out);
    json_object *rep = json_object_from_file(jpath);
    assert_non_null(rep);
    assert_json_equal("dataset labels", get(rep, "labels"), want_labels);
    assert_json_equal("dataset per day", get(rep, "per_day.sites"), sites);
    assert_json_equal("dataset formats", get(rep, "formats"), formats);
    assert_int_equal(json_object_get_int64(get(rep, "source.rows")), (int64_t)n);
    assert_int_equal(json_object_get_int64(get(rep, "source.bad_lines")), 1);
    assert_int_equal(json_object_get_int64(get(rep, "summary.skipped.exact_duplicate")), 4);
    assert_int_equal(json_object_get_int64(get(rep, "summary.duplicates_represented")), 0 + 1 + 2 + 0 + 1 + 2 + 0);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.groups")), 1);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.images")), 2);
    /* near groups, brute force over the rows' phashes: union-find */
    int parent[16];
    for (size_t i = 0; i < n; i++)
        parent[i] = (int)i;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            unsigned char a[32], b[32];
            size_t la, lb;
            const char *pa = json_object_get_string(get(pics[rows[i].pic][rows[i].var].entry, "phash"));
            const char *pb = json_object_get_string(get(pics[rows[j].pic][rows[j].var].entry, "phash"));
            assert_int_equal(ih_hashenc_parse_base64(pa, strlen(pa), a, sizeof a, &la), 0);
            assert_int_equal(ih_hashenc_parse_base64(pb, strlen(pb), b, sizeof b, &lb), 0);
            int d = 0;
            for (size_t k = 0; k < la; k++)
                d += __builtin_popcount(a[k] ^ b[k]);
            if (d <= MAX_DISTANCE) {
                int x = (int)i, y = (int)j;
                while (parent[x] != x)
                    x = parent[x];
                while (parent[y] != y)
                    y = parent[y];
                if (x != y) parent[y] = x;
            }
        }
    int size[16] = {0}, near_groups = 0, near_images = 0;
    for (size_t i = 0; i < n; i++) {
        int x = (int)i;
        while (parent[x] != x)
            x = parent[x];
        size[x]++;
    }
    for (size_t i = 0; i < n; i++)
        if (size[i] > 1) near_groups++, near_images += size[i];
    assert_true(near_groups >= 2); /* the variants and the copy */
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.groups")), near_groups);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.images")), near_images);
    /* the brightness histogram and colour means, from the rows */
    int64_t bright[32] = {0};
    for (size_t i = 0; i < n; i++) {
        json_object *b;
        if (json_object_object_get_ex(pics[rows[i].pic][rows[i].var].entry, "brightness", &b))
            bright[(int)fmin(31, floor(json_object_get_double(b) / 8))]++;
    }
    for (int i = 0; i < 32; i++)
        assert_int_equal(json_object_get_int64(json_object_array_get_idx(get(rep, "brightness.counts"), (size_t)i)),
                         bright[i]);
    json_object *cm;
    if (json_object_object_get_ex(pics[0][0].entry, "rgb_mean", &cm)) {
        /* "cat": pictures 0, 1, 0 */
        json_object *got = get(rep, "colour.cat.rgb_mean");
        for (int c = 0; c < 3; c++) {
            double want =
                (2 * json_object_get_double(json_object_array_get_idx(cm, (size_t)c)) +
                 json_object_get_double(json_object_array_get_idx(get(pics[1][0].entry, "rgb_mean"), (size_t)c))) /
                3;
            assert_near("dataset rgb_mean", json_object_get_double(json_object_array_get_idx(got, (size_t)c)), want);
        }
    }
    char *hpath = xasprintf("%s/report.html", out);
    char *html = read_text(hpath);
    assert_html_has(html, "&lt;b&gt;x&lt;/b&gt;</td><td>2</td>");
    assert_null(strstr(html, "<b>x</b>"));
    assert_html_has(html, "exact_duplicate</td><td>4</td>");
    free(html);
    free(hpath);
    json_object_put(rep);
    json_object_put(want_labels);
    json_object_put(sites);
    json_object_put(formats);
    free(jpath);
    free(spath);
    free(mpath);
    free(ds);
    free(out);
}

/* OUT/report.json of the dataset DS against DS's manifest.jsonl and summary.json, read here:
 * labels and splits, days, formats, rows, exact groups (sha1), near groups (every pair's phash
 * distance), the brightness histogram, the skipped counts. */
static void check_dataset_report(const char *ds, const char *out) {
    char *mpath = xasprintf("%s/manifest.jsonl", ds), *jpath = xasprintf("%s/report.json", out),
         *spath = xasprintf("%s/summary.json", ds);
    json_object *rep = json_object_from_file(jpath), *summary = json_object_from_file(spath);
    assert_non_null(rep);
    assert_non_null(summary);
    FILE *m = fopen(mpath, "r");
    assert_non_null(m);
    json_object *want_labels = json_object_new_object(), *sites = json_object_new_object(),
                *formats = json_object_new_object(), *sha1s = json_object_new_object(), *v;
    enum { MAXROWS = 4096 };
    static unsigned char hashes[MAXROWS][32];
    static size_t hlen[MAXROWS];
    int64_t rows = 0, bright[32] = {0};
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, m) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            continue;
        }
        assert_true(rows < MAXROWS);
        const char *label = json_object_get_string(get(o, "label")), *split = json_object_get_string(get(o, "split"));
        json_object *l;
        if (!json_object_object_get_ex(want_labels, label, &l)) {
            json_object_object_add(want_labels, label, l = json_object_new_object());
            static const char *const k[] = {"images", "bytes", "train", "val", "test", "other"};
            for (size_t j = 0; j < 6; j++)
                json_object_object_add(l, k[j], json_object_new_int64(0));
        }
        json_object_int_inc(get(l, "images"), 1);
        json_object_int_inc(get(l, "bytes"), json_object_get_int64(get(o, "size")));
        json_object_int_inc(
            get(l, strcmp(split, "train") == 0 || strcmp(split, "val") == 0 || strcmp(split, "test") == 0 ? split
                                                                                                          : "other"),
            1);
        char day[16];
        time_t t = (time_t)json_object_get_int64(get(o, "time"));
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        const char *site = json_object_get_string(get(o, "site"));
        json_object *st;
        if (!json_object_object_get_ex(sites, site, &st))
            json_object_object_add(sites, site, st = json_object_new_object());
        if (json_object_object_get_ex(st, day, &v))
            json_object_int_inc(v, 1);
        else
            json_object_object_add(st, day, json_object_new_int64(1));
        const char *fmt = json_object_get_string(get(o, "format"));
        if (!json_object_object_get_ex(formats, fmt, &v)) {
            json_object_object_add(formats, fmt, v = json_object_new_object());
            json_object_object_add(v, "images", json_object_new_int64(0));
            json_object_object_add(v, "bytes", json_object_new_int64(0));
        }
        json_object_int_inc(get(v, "images"), 1);
        json_object_int_inc(get(v, "bytes"), json_object_get_int64(get(o, "size")));
        const char *sha1 = json_object_get_string(get(o, "sha1"));
        if (json_object_object_get_ex(sha1s, sha1, &v))
            json_object_int_inc(v, 1);
        else
            json_object_object_add(sha1s, sha1, json_object_new_int64(1));
        json_object *b;
        if (json_object_object_get_ex(o, "brightness", &b) &&
            (json_object_is_type(b, json_type_double) || json_object_is_type(b, json_type_int)))
            bright[(int)fmin(31, floor(json_object_get_double(b) / 8))]++;
        const char *ph = json_object_object_get_ex(o, "phash", &v) ? json_object_get_string(v) : NULL;
        hlen[rows] = 0;
        if (ph) assert_int_equal(ih_hashenc_parse_base64(ph, strlen(ph), hashes[rows], 32, &hlen[rows]), 0);
        rows++;
        json_object_put(o);
    }
    free(line);
    fclose(m);
    assert_true(rows > 0);
    assert_json_equal("dataset labels", get(rep, "labels"), want_labels);
    assert_json_equal("dataset per day", get(rep, "per_day.sites"), sites);
    assert_json_equal("dataset formats", get(rep, "formats"), formats);
    assert_int_equal(json_object_get_int64(get(rep, "source.rows")), rows);
    assert_json_equal("dataset skipped", get(rep, "summary.skipped"), get(summary, "skipped"));
    int64_t eg = 0, ei = 0;
    json_object_object_foreach(sha1s, sk, sv) {
        (void)sk;
        if (json_object_get_int64(sv) > 1) eg++, ei += json_object_get_int64(sv);
    }
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.groups")), eg);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.exact.images")), ei);
    static int parent[MAXROWS], size[MAXROWS];
    for (int64_t i = 0; i < rows; i++)
        parent[i] = (int)i, size[i] = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = i + 1; j < rows; j++) {
            if (!hlen[i] || hlen[i] != hlen[j]) continue;
            int d = 0;
            for (size_t k = 0; k < hlen[i]; k++)
                d += __builtin_popcount(hashes[i][k] ^ hashes[j][k]);
            if (d > MAX_DISTANCE) continue;
            int x = (int)i, y = (int)j;
            while (parent[x] != x)
                x = parent[x];
            while (parent[y] != y)
                y = parent[y];
            if (x != y) parent[y] = x;
        }
    int64_t ng = 0, ni = 0;
    for (int64_t i = 0; i < rows; i++) {
        int x = (int)i;
        while (parent[x] != x)
            x = parent[x];
        size[x]++;
    }
    for (int64_t i = 0; i < rows; i++)
        if (size[i] > 1) ng++, ni += size[i];
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.groups")), ng);
    assert_int_equal(json_object_get_int64(get(rep, "duplicates.near.images")), ni);
    for (int i = 0; i < 32; i++)
        assert_int_equal(json_object_get_int64(json_object_array_get_idx(get(rep, "brightness.counts"), (size_t)i)),
                         bright[i]);
    json_object_put(want_labels);
    json_object_put(sites);
    json_object_put(formats);
    json_object_put(sha1s);
    json_object_put(rep);
    json_object_put(summary);
    free(mpath);
    free(jpath);
    free(spath);
}

#ifdef HAVE_DSARCHIVE
/* The shared archive that the real crawler, hasher and archiver fill. */
static void test_pipeline_archive(void **state) {
    (void)state;
    dsarchive a = {0};
    char *dir = xasprintf("%s/dsa", work);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(dsa_fill(&a, dir), 0);
    char *out = xasprintf("%s/dsa-out", work), *log;
    char dist[16];
    snprintf(dist, sizeof dist, "%d", MAX_DISTANCE);
    const char *args[] = {"--pg",
                          testenv_require("IMGFEED_PG"),
                          "--exchange",
                          a.exchange,
                          "--out",
                          out,
                          "--save-dir",
                          a.save_dir,
                          "--max-distance",
                          dist,
                          NULL};
    int st = run_report(args, &log);
    if (st != 0) fail_msg("imgfeed-report exited %d:\n%s", st, log);
    free(log);
    check_archive_report(a.exchange, out, false);
    char *path = xasprintf("%s/report.json", out);
    json_object *rep = json_object_from_file(path);
    /* the pipeline's pictures have their thumbnails */
    json_object *largest = get(rep, "duplicates.exact.largest");
    if (json_object_array_length(largest))
        assert_string_equal(
            json_object_get_string(
                get(json_object_array_get_idx(get(json_object_array_get_idx(largest, 0), "members"), 0), "thumb")),
            "ok");
    json_object_put(rep);
    free(path);
#ifdef HAVE_EXPORT
    /* the dataset imgfeed-export makes of it, reported on */
    char *ds = xasprintf("%s/dsa-set", work), *dsout = xasprintf("%s/dsa-set-out", work);
    char *cmd = xasprintf("'%s/export/imgfeed-export' dataset --pg '%s' --exchange %s --out '%s' --save-dir '%s' "
                          "--log-level warn > '%s/export.log' 2>&1",
                          testenv_binary_dir(), testenv_require("IMGFEED_PG"), a.exchange, ds, a.save_dir, work);
    int es = system(cmd);
    if (es != 0) {
        char *elog = xasprintf("%s/export.log", work), *text = read_text(elog);
        fail_msg("imgfeed-export dataset failed (%d):\n%s", es, text ? text : "");
    }
    free(cmd);
    const char *dargs[] = {"--dataset", ds, "--out", dsout, "--max-distance", dist, NULL};
    st = run_report(dargs, &log);
    if (st != 0) fail_msg("imgfeed-report --dataset exited %d:\n%s", st, log);
    free(log);
    check_dataset_report(ds, dsout);
    free(ds);
    free(dsout);
#endif
    dsa_release(&a);
    free(out);
    free(dir);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archive_report),
        cmocka_unit_test(test_bad_plotter_and_full_disk),
        cmocka_unit_test(test_dataset_report),
#ifdef HAVE_DSARCHIVE
        cmocka_unit_test(test_pipeline_archive),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
