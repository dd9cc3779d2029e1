/* test_export_dataset.c -- `imgfeed-export dataset` over an archive filled by
 * the real pipeline (tests/support/dsarchive.c), against its truth.json.
 *
 * The expected set is computed here from the truth, not by the exporter's
 * code: NSFW pictures out; per truth group (the same source picture: exact
 * copies, the same file under two labels, resized and recompressed copies)
 * one picture kept, the largest (width x height, then bytes from the archive
 * by SQL), then the oldest (imgfeed_posted_at, then table, id, image in byte
 * order); its label; its split from its sha1 by the documented rule
 * (docs/datasets.md: u = (first 8 bytes of the sha1 >> 11) / 2^53 against
 * 0.8, 0.1, 0.1), recomputed here; its duplicates the rest of the group.
 * Then:
 *   - the manifest (JSON lines) holds exactly those rows, the CSV the same
 *     rows in the same order, every file has the sha1 of its row and name,
 *     and no other file is under the split folders; summary.json's counts
 *     match;
 *   - a rerun changes nothing (the manifest byte for byte: the split is the
 *     same), removes a stray picture file, keeps a file of another name;
 *     other settings into the same folder are refused (exit 2);
 *   - filters (--site, --kind, --min-width, --label twice): the expected set
 *     among the pictures that pass; --label-field _chan: the same pictures
 *     under their sites;
 *   - a save dir with a deleted and a damaged file: listed missing with
 *     --missing list, downloaded again from the fixture server otherwise;
 *   - kill -9 in the middle of a run that downloads everything (an empty
 *     save dir, a slow --rps), and a rerun: the same manifest as the
 *     uninterrupted run, and no final file ever half-written;
 *   - a full disk (a 256 KiB tmpfs in a private mount namespace, as root):
 *     a clear message, whole files only, and a rerun with space finishes
 *     the same set;
 *   - hostile labels, a row without _img, an entry with an error and a
 *     video (rows added by SQL): safe, distinct folders, labels kept in the
 *     manifest, the rest counted;
 *   - dsa_grow: the rerun adds only the new pictures, keeps every file it
 *     had, and a new copy of a kept picture stays out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "dsarchive.h"
#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "xalloc.h"

static dsarchive A;
static char *root;

/* --- small helpers --- */

static const char *str(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string %s in %s", key, json_object_to_json_string(o));
    return json_object_get_string(v);
}

static int64_t num(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        fail_msg("no number %s in %s", key, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

static bool flag(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void sha1_hex_of(const unsigned char *data, size_t len, char out[41]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha1(), NULL);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static bool file_sha1(const char *path, char out[41]) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    if (!b) return false;
    sha1_hex_of(b, len, out);
    free(b);
    return true;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) fail_msg("cannot write %s", path);
}

static char *path_join(const char *a, const char *b) { return xasprintf("%s/%s", a, b); }

/* The split of a picture by the documented rule, recomputed here. */
static const char *split_of(const char *sha1_hex) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) {
        unsigned v;
        sscanf(sha1_hex + 2 * i, "%2x", &v);
        x = x << 8 | v;
    }
    double u = (double)(x >> 11) / 9007199254740992.0;
    return u < 0.8 ? "train" : u < 0.8 + 0.1 ? "val" : "test";
}

static const char *ext_of(const char *format) { return strcmp(format, "jpeg") == 0 ? "jpg" : format; }

/* --- running the exporter --- */

/* Run imgfeed-export dataset on A's exchange (or EXCHANGE) with ARGS (NULL-ended); its exit status. */
static int run_export(proc *p, const char *exchange, const char *out, const char *save, const char *const *args,
                      bool wait) {
    const char *argv[48];
    size_t n = 0;
    char *bin = xasprintf("%s/export/imgfeed-export", testenv_binary_dir());
    argv[n++] = bin;
    argv[n++] = "dataset";
    argv[n++] = "--pg";
    argv[n++] = testenv_require("IMGFEED_PG");
    argv[n++] = "--exchange";
    argv[n++] = exchange ? exchange : A.exchange;
    argv[n++] = "--out";
    argv[n++] = out;
    argv[n++] = "--allow-private"; /* the fixture server is on 127.0.0.1 */
    if (save) {
        argv[n++] = "--save-dir";
        argv[n++] = save;
    }
    for (size_t i = 0; args && args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    proc_start(p, bin, argv);
    free(bin);
    if (!wait) return -1;
    int status = proc_wait(p);
    if (status != 0) proc_print_log(p);
    return status;
}

static int export_once(const char *out, const char *save, const char *const *args) {
    proc p = {0};
    int status = run_export(&p, NULL, out, save, args, true);
    proc_release(&p);
    return status;
}

static json_object *read_jsonl(const char *path) {
    json_object *arr = json_object_new_array();
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_object *o = json_tokener_parse(line);
        if (!json_object_is_type(o, json_type_object)) fail_msg("%s: not a JSON object: %s", path, line);
        json_object_array_add(arr, o);
    }
    free(line);
    fclose(f);
    return arr;
}

static char *read_text(const char *path) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    if (!b) fail_msg("cannot read %s", path);
    b = xrealloc(b, len + 1);
    b[len] = 0;
    return (char *)b;
}

/* --- the files under the split folders --- */

static size_t walk_count;
static const char *walk_root;
static bool walk_bad;

static int walk_fn(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (type != FTW_F) return 0;
    walk_count++;
    const char *base = strrchr(path, '/') + 1;
    char hex[41];
    if (!file_sha1(path, hex) || strncmp(base, hex, 40) != 0 || base[40] != '.') {
        fprintf(stderr, "# %s: a file whose bytes are not its name's sha1 (%s)\n", path, hex);
        walk_bad = true;
    }
    return 0;
}

/* Files under OUT/{train,val,test}; each must be whole (its name's sha1). */
static size_t count_files(const char *out) {
    walk_count = 0;
    walk_bad = false;
    walk_root = out;
    static const char *const splits[] = {"train", "val", "test"};
    for (int i = 0; i < 3; i++) {
        char *d = path_join(out, splits[i]);
        struct stat st;
        if (stat(d, &st) == 0) nftw(d, walk_fn, 16, FTW_PHYS);
        free(d);
    }
    assert_false(walk_bad);
    return walk_count;
}

/* --- the expected set, from the truth --- */

typedef struct pic {
    json_object *t; /* the truth entry */
    int64_t size, time;
    bool nsfw;
} pic;

static pic *pics;
static size_t npics;

static void load_truth(void) {
    for (size_t i = 0; i < npics; i++)
        json_object_put(pics[i].t);
    free(pics);
    json_object *top = json_object_from_file(A.truth_path), *arr;
    if (!top || !json_object_object_get_ex(top, "pictures", &arr)) fail_msg("cannot read %s", A.truth_path);
    npics = json_object_array_length(arr);
    pics = xcalloc(npics, sizeof *pics);
    for (size_t i = 0; i < npics; i++) {
        json_object *t = json_object_array_get_idx(arr, i);
        pics[i].t = json_object_get(t);
        pics[i].nsfw = flag(t, "nsfw");
        char image[24];
        snprintf(image, sizeof image, "%lld", (long long)num(t, "image"));
        const char *params[2] = {str(t, "id"), image};
        char *sql =
            xasprintf("SELECT (SELECT (e->>'size')::bigint FROM jsonb_array_elements(data->'_img') e "
                      "WHERE (e->>'url')::int = $2::int), floor(extract(epoch FROM imgfeed_posted_at(data)))::bigint "
                      "FROM \"%s\" WHERE id = $1",
                      str(t, "table"));
        PGresult *r = pgtest_query(sql, 2, params);
        free(sql);
        if (PQntuples(r) != 1) fail_msg("truth picture %s %s not in the archive", str(t, "table"), str(t, "id"));
        pics[i].size = atoll(PQgetvalue(r, 0, 0));
        pics[i].time = atoll(PQgetvalue(r, 0, 1));
        PQclear(r);
    }
    json_object_put(top);
}

static bool better(const pic *a, const pic *b) {
    int64_t aa = num(a->t, "width") * num(a->t, "height"), ab = num(b->t, "width") * num(b->t, "height");
    if (aa != ab) return aa > ab;
    if (a->size != b->size) return a->size > b->size;
    if (a->time != b->time) return a->time < b->time;
    int r = strcmp(str(a->t, "table"), str(b->t, "table"));
    if (!r) r = strcmp(str(a->t, "id"), str(b->t, "id"));
    if (!r) r = (int)(num(a->t, "image") - num(b->t, "image"));
    return r < 0;
}

static char *key_of(json_object *o) {
    return xasprintf("%s/%s/%lld", str(o, "table"), str(o, "id"), (long long)num(o, "image"));
}

typedef struct expected {
    json_object *rows; /* key -> {label, split, sha1, path, duplicates} */
    int64_t exact, near;
} expected;

/* Filters of a run, as the test reads them (NULL, 0: none). */
typedef struct filt {
    const char *site;
    int64_t min_width;
    const char *label1, *label2;
} filt;

static bool passes(const pic *p, const filt *f) {
    if (p->nsfw) return false;
    if (!f) return true;
    if (f->site && strcmp(str(p->t, "site"), f->site) != 0) return false;
    if (num(p->t, "width") < f->min_width) return false;
    const char *l = str(p->t, "label");
    return !f->label1 || strcmp(l, f->label1) == 0 || (f->label2 && strcmp(l, f->label2) == 0);
}

/* The set by the rule among the pictures that pass F; with PREV (a
 * manifest's rows by key), a group that holds pictures of PREV keeps those. */
static void expect(expected *e, json_object *prev, const filt *f) {
    e->rows = json_object_new_object();
    e->exact = e->near = 0;
    bool *done = xcalloc(npics, 1);
    for (size_t i = 0; i < npics; i++) {
        if (done[i] || !passes(&pics[i], f)) continue;
        int64_t g = num(pics[i].t, "group");
        size_t members[256], nm = 0;
        for (size_t j = i; j < npics; j++)
            if (passes(&pics[j], f) && num(pics[j].t, "group") == g) {
                done[j] = true;
                if (nm == 256) fail_msg("group too large");
                members[nm++] = j;
            }
        bool kept[256] = {0};
        size_t nkept = 0, best = SIZE_MAX;
        for (size_t k = 0; k < nm && prev; k++) {
            char *key = key_of(pics[members[k]].t);
            if (json_object_object_get_ex(prev, key, NULL)) kept[k] = true, nkept++;
            free(key);
        }
        for (size_t k = 0; k < nm; k++) {
            if (nkept && !kept[k]) continue;
            if (best == SIZE_MAX || better(&pics[members[k]], &pics[members[best]])) best = k;
        }
        if (!nkept) kept[best] = true, nkept = 1;
        /* distinct sha1s: exact = members - distinct, near = distinct - kept's distinct */
        size_t distinct = 0, kept_distinct = 0;
        for (size_t k = 0; k < nm; k++) {
            bool seen = false, kept_sha = false;
            for (size_t m = 0; m < k; m++)
                if (strcmp(str(pics[members[m]].t, "sha1"), str(pics[members[k]].t, "sha1")) == 0) seen = true;
            if (seen) continue;
            distinct++;
            for (size_t m = 0; m < nm; m++)
                if (kept[m] && strcmp(str(pics[members[m]].t, "sha1"), str(pics[members[k]].t, "sha1")) == 0)
                    kept_sha = true;
            if (kept_sha) kept_distinct++;
        }
        e->exact += (int64_t)(nm - nkept) - (int64_t)(distinct - kept_distinct);
        e->near += (int64_t)(distinct - kept_distinct);
        for (size_t k = 0; k < nm; k++) {
            if (!kept[k]) continue;
            json_object *t = pics[members[k]].t;
            json_object *row = json_object_new_object();
            const char *sha1 = str(t, "sha1");
            json_object_object_add(row, "label", json_object_new_string(str(t, "label")));
            json_object_object_add(row, "split", json_object_new_string(split_of(sha1)));
            json_object_object_add(row, "sha1", json_object_new_string(sha1));
            char *path = xasprintf("%s/%s/%s.%s", split_of(sha1), str(t, "label"), sha1, ext_of(str(t, "format")));
            json_object_object_add(row, "path", json_object_new_string(path));
            free(path);
            json_object_object_add(row, "duplicates", json_object_new_int64(k == best ? (int64_t)(nm - nkept) : 0));
            char *key = key_of(t);
            json_object_object_add(e->rows, key, row);
            free(key);
        }
    }
    free(done);
}

/* The manifest rows by key. */
static json_object *by_key(json_object *rows) {
    json_object *m = json_object_new_object();
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *r = json_object_array_get_idx(rows, i);
        char *key = key_of(r);
        if (json_object_object_get_ex(m, key, NULL)) fail_msg("%s twice in the manifest", key);
        json_object_object_add(m, key, json_object_get(r));
        free(key);
    }
    return m;
}

/* OUT's manifest, CSV, files and summary against E. */
static void check_dataset(const char *out, const expected *e) {
    char *p = path_join(out, "manifest.jsonl");
    json_object *rows = read_jsonl(p);
    free(p);
    json_object *m = by_key(rows);
    size_t n = json_object_array_length(rows);
    if (n != (size_t)json_object_object_length(e->rows)) {
        json_object_object_foreach(e->rows, k, v) {
            if (!json_object_object_get_ex(m, k, NULL))
                fprintf(stderr, "# expected, not exported: %s %s\n", k, json_object_to_json_string(v));
        }
        json_object_object_foreach(m, k2, v2) {
            if (!json_object_object_get_ex(e->rows, k2, NULL))
                fprintf(stderr, "# exported, not expected: %s %s\n", k2, json_object_to_json_string(v2));
        }
        fail_msg("%zu rows in the manifest, %d expected", n, json_object_object_length(e->rows));
    }
    json_object_object_foreach(e->rows, key, want) {
        json_object *got = NULL;
        if (!json_object_object_get_ex(m, key, &got)) fail_msg("%s missing from the manifest", key);
        static const char *const cols[] = {"label", "split", "sha1", "path"};
        for (size_t i = 0; i < 4; i++)
            if (strcmp(str(got, cols[i]), str(want, cols[i])) != 0)
                fail_msg("%s: %s is %s, expected %s", key, cols[i], str(got, cols[i]), str(want, cols[i]));
        assert_int_equal(num(got, "duplicates"), num(want, "duplicates"));
        char *f = path_join(out, str(got, "path"));
        char hex[41];
        if (!file_sha1(f, hex)) fail_msg("%s: no file %s", key, f);
        assert_string_equal(hex, str(got, "sha1"));
        free(f);
        assert_false(flag(got, "nsfw"));
    }
    assert_int_equal(count_files(out), n);
    /* the CSV: a header, then the same rows in the same order */
    p = path_join(out, "manifest.csv");
    char *csv = read_text(p);
    free(p);
    const char *header = "path,label,split,url,table,id,image,site,board,time,width,height,format,size,sha1,md5,"
                         "ahash,dhash,phash,whash,rgb_mean,brightness,rgb_hist,nsfw,duplicates\r\n";
    assert_memory_equal(csv, header, strlen(header));
    char *line = csv + strlen(header);
    for (size_t i = 0; i < n; i++) {
        const char *path = str(json_object_array_get_idx(rows, i), "path");
        if (strncmp(line, path, strlen(path)) != 0 || line[strlen(path)] != ',')
            fail_msg("CSV row %zu does not begin with %s", i, path);
        /* the row ends at a CRLF outside quotes */
        bool quoted = false;
        while (*line && !(!quoted && line[0] == '\r' && line[1] == '\n')) {
            if (*line == '"') quoted = !quoted;
            line++;
        }
        if (!*line) fail_msg("CSV row %zu has no end", i);
        line += 2;
    }
    assert_int_equal(*line, 0);
    free(csv);
    /* the summary */
    p = path_join(out, "summary.json");
    json_object *s = json_object_from_file(p), *labels, *skipped;
    free(p);
    assert_non_null(s);
    assert_int_equal(num(s, "total"), (int64_t)n);
    assert_true(json_object_object_get_ex(s, "skipped", &skipped));
    assert_int_equal(num(skipped, "exact_duplicate"), e->exact);
    assert_int_equal(num(skipped, "near_duplicate"), e->near);
    assert_true(json_object_object_get_ex(s, "labels", &labels));
    int64_t sum = 0;
    json_object_object_foreach(labels, lab, counts) {
        static const char *const splits[] = {"train", "val", "test"};
        for (int i = 0; i < 3; i++) {
            int64_t nwant = 0;
            for (size_t r = 0; r < n; r++) {
                json_object *row = json_object_array_get_idx(rows, r);
                if (strcmp(str(row, "label"), lab) == 0 && strcmp(str(row, "split"), splits[i]) == 0) nwant++;
            }
            assert_int_equal(num(counts, splits[i]), nwant);
            sum += nwant;
        }
    }
    assert_int_equal(sum, (int64_t)n);
    json_object_put(s);
    json_object_put(m);
    json_object_put(rows);
}

static json_object *summary_counts(const char *out, json_object **top) {
    char *p = path_join(out, "summary.json");
    *top = json_object_from_file(p);
    free(p);
    json_object *c = NULL;
    if (!json_object_object_get_ex(*top, "counts", &c)) fail_msg("summary.json of %s has no counts", out);
    return c;
}

/* --- the test --- */

static int setup(void **state) {
    (void)state;
    root = testenv_tmpdir("export-dataset");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    dsa_release(&A);
    for (size_t i = 0; i < npics; i++)
        json_object_put(pics[i].t);
    free(pics);
    pgtest_close();
    testenv_rmtree(root);
    free(root);
    return 0;
}

/* Files of the save dir of a picture. */
static char *saved_path(const char *save, const char *sha1, const char *format) {
    return xasprintf("%s/%.2s/%.2s/%s.%s", save, sha1, sha1 + 2, sha1, ext_of(format));
}

static void check_missing_and_damaged(const char *out1, const expected *e) {
    /* a copy of the save dir without one kept picture's file and with another's damaged */
    char *save2 = path_join(root, "save2");
    char *cmd = xasprintf("cp -a '%s' '%s'", A.save_dir, save2);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    const char *gone = NULL, *bad = NULL;
    json_object_object_foreach(e->rows, key, row) {
        (void)key;
        if (!gone)
            gone = str(row, "sha1");
        else if (!bad && strcmp(str(row, "sha1"), gone) != 0)
            bad = str(row, "sha1");
    }
    assert_non_null(bad);
    char *fmt_gone = NULL, *fmt_bad = NULL;
    for (size_t i = 0; i < npics; i++) {
        if (!fmt_gone && strcmp(str(pics[i].t, "sha1"), gone) == 0) fmt_gone = xstrdup(str(pics[i].t, "format"));
        if (!fmt_bad && strcmp(str(pics[i].t, "sha1"), bad) == 0) fmt_bad = xstrdup(str(pics[i].t, "format"));
    }
    char *p = saved_path(save2, gone, fmt_gone);
    assert_int_equal(unlink(p), 0);
    free(p);
    p = saved_path(save2, bad, fmt_bad);
    size_t len;
    unsigned char *b = slurp(p, &len);
    assert_non_null(b);
    b[len / 2] ^= 0x55;
    unlink(p); /* the save dir's file may be a hard link of the dataset's: break it, do not write through it */
    write_file(p, b, len);
    free(b);
    free(p);

    char *out3 = path_join(root, "out3");
    const char *list[] = {"--missing", "list", NULL};
    assert_int_equal(export_once(out3, save2, list), 0);
    json_object *top;
    summary_counts(out3, &top);
    json_object *sk = NULL;
    json_object_object_get_ex(top, "skipped", &sk);
    assert_int_equal(num(sk, "missing"), 2);
    json_object_put(top);
    p = path_join(out3, "missing.jsonl");
    json_object *miss = read_jsonl(p);
    free(p);
    assert_int_equal(json_object_array_length(miss), 2);
    int seen = 0;
    for (size_t i = 0; i < 2; i++) {
        json_object *m = json_object_array_get_idx(miss, i);
        const char *reason = str(m, "reason");
        if (strcmp(str(m, "sha1"), gone) == 0 && strstr(reason, "not in the save dir")) seen |= 1;
        if (strcmp(str(m, "sha1"), bad) == 0 && strstr(reason, "damaged")) seen |= 2;
    }
    assert_int_equal(seen, 3);
    json_object_put(miss);
    /* the same folder, downloading what is missing: the whole set, the same manifest */
    const char *fetch[] = {"--rps", "0", NULL};
    assert_int_equal(export_once(out3, save2, fetch), 0);
    summary_counts(out3, &top);
    json_object *c = NULL;
    json_object_object_get_ex(top, "counts", &c);
    assert_int_equal(num(c, "downloaded"), 2);
    json_object_put(top);
    check_dataset(out3, e);
    char *m1 = read_text(p = path_join(out1, "manifest.jsonl"));
    free(p);
    char *m3 = read_text(p = path_join(out3, "manifest.jsonl"));
    free(p);
    assert_string_equal(m1, m3);
    free(m1);
    free(m3);
    free(fmt_gone);
    free(fmt_bad);
    free(out3);
    free(save2);
}

static void check_kill(const char *out1, const expected *e) {
    char *empty = path_join(root, "empty-save");
    assert_int_equal(mkdir(empty, 0755), 0);
    char *out2 = path_join(root, "out2");
    const char *slow[] = {"--rps", "6", "--copy", NULL};
    proc p = {0};
    run_export(&p, NULL, out2, empty, slow, false);
    /* kill -9 once a few pictures are placed */
    for (int i = 0; i < 3000 && count_files(out2) < 3; i++) {
        if (proc_exited(&p)) fail_msg("the export ended before it was killed");
        usleep(10000);
    }
    assert_true(count_files(out2) >= 3);
    proc_kill(&p);
    proc_release(&p);
    size_t placed = count_files(out2); /* every file under a final name is whole */
    char *m = path_join(out2, "manifest.jsonl");
    struct stat st;
    assert_int_not_equal(stat(m, &st), 0); /* not committed */
    printf("# killed with %zu of %d pictures placed\n", placed, json_object_object_length(e->rows));
    assert_true(placed < (size_t)json_object_object_length(e->rows));
    const char *fast[] = {"--rps", "0", "--copy", NULL};
    assert_int_equal(export_once(out2, empty, fast), 0);
    check_dataset(out2, e);
    char *p1 = path_join(out1, "manifest.jsonl");
    char *a = read_text(p1), *b = read_text(m);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(p1);
    free(m);
    free(out2);
    free(empty);
}

static void check_full_disk(const char *out1, const expected *e) {
    if (geteuid() != 0 || system("unshare -m true 2>/dev/null") != 0) {
        printf("# full disk: skipped, needs root and unshare -m (a private tmpfs)\n");
        return;
    }
    char *mnt = path_join(root, "small"), *copy = path_join(root, "small-copy"), *log1 = path_join(root, "enospc1.log"),
         *log2 = path_join(root, "enospc2.log");
    assert_int_equal(mkdir(mnt, 0755), 0);
    assert_int_equal(mkdir(copy, 0755), 0);
    char *bin = xasprintf("%s/export/imgfeed-export", testenv_binary_dir());
    char *args = xasprintf("dataset --pg '%s' --exchange %s --save-dir '%s' --out '%s' --copy",
                           testenv_require("IMGFEED_PG"), A.exchange, A.save_dir, mnt);
    char *script =
        xasprintf("set -u\n"
                  "mount -t tmpfs -o size=256k tmpfs '%s' || exit 20\n"
                  "if '%s' %s >'%s' 2>&1; then exit 21; fi\n"
                  "grep -q 'no space left' '%s' || exit 22\n"
                  "grep -q 'Sanitizer' '%s' && exit 28\n"
                  "test -e '%s/manifest.jsonl' && exit 23\n"
                  "find '%s' -path '%s/.tmp' -prune -o -type f -name '*.*' -print | while IFS= read -r f; do\n"
                  "  case \"$f\" in */manifest.*|*/summary.json|*/missing.jsonl|*/.lock) continue;; esac\n"
                  "  b=$(basename \"$f\"); h=$(sha1sum \"$f\" | cut -c1-40)\n"
                  "  test \"${b%%%%.*}\" = \"$h\" || { echo \"# not whole: $f\" >&2; exit 24; }\n"
                  "done || exit 24\n"
                  "mount -o remount,size=64m '%s' || exit 25\n"
                  "'%s' %s >'%s' 2>&1 || exit 26\n"
                  "cp -a '%s/.' '%s/' || exit 27\n",
                  mnt, bin, args, log1, log1, log1, mnt, mnt, mnt, mnt, bin, args, log2, mnt, copy);
    char *sp = path_join(root, "enospc.sh");
    write_file(sp, script, strlen(script));
    char *cmd = xasprintf("unshare -m sh '%s'", sp);
    int rc = system(cmd);
    if (rc != 0) {
        char *l1 = read_text(log1);
        fprintf(stderr, "# full-disk script: status %d; first run's log:\n%s\n", WEXITSTATUS(rc), l1);
        free(l1);
        fail_msg("the full-disk run failed (script status %d)", WEXITSTATUS(rc));
    }
    char *l1 = read_text(log1);
    char *line = strstr(l1, "no space left");
    printf("# full disk: %.*s\n", (int)strcspn(line, "\n"), line);
    free(l1);
    check_dataset(copy, e);
    char *p1 = path_join(out1, "manifest.jsonl"), *p2 = path_join(copy, "manifest.jsonl");
    char *a = read_text(p1), *b = read_text(p2);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(p1);
    free(p2);
    free(cmd);
    free(sp);
    free(script);
    free(args);
    free(bin);
    free(log1);
    free(log2);
    free(copy);
    free(mnt);
}

/* Rows with hostile labels, no _img, an error entry and a video, in their own exchange. */
static void check_hostile(void) {
    char exchange[80];
    snprintf(exchange, sizeof exchange, "%sh", A.exchange);
    char table[120];
    snprintf(table, sizeof table, "%s_dsx_image", exchange);
    pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', 'dsx.image')", table, exchange);
    char *save = path_join(root, "save-hostile");
    assert_int_equal(mkdir(save, 0755), 0);
    char long_label[301];
    for (int i = 0; i < 100; i++)
        memcpy(long_label + 3 * i, "\xe6\x97\xa5", 3); /* 300 bytes of UTF-8 */
    long_label[300] = 0;
    char long_label2[301];
    memcpy(long_label2, long_label, 301);
    memcpy(long_label2 + 297, "\xe6\x9c\xac", 3); /* the same first 297 bytes */
    const char *labels[] = {"a/b",      "a_b",       "..",     ".",         ".hidden",    "",
                            long_label, long_label2, "x\001y", "../../etc", "ok~0123abcd"};
    size_t nl = sizeof labels / sizeof labels[0];
    srand(7);
    for (size_t i = 0; i < nl; i++) {
        unsigned char data[600];
        for (size_t k = 0; k < sizeof data; k++)
            data[k] = (unsigned char)rand();
        char hex[41];
        sha1_hex_of(data, sizeof data, hex);
        char *d = xasprintf("%s/%.2s", save, hex);
        mkdir(d, 0755);
        char *d2 = xasprintf("%s/%.2s", d, hex + 2);
        mkdir(d2, 0755);
        char *f = xasprintf("%s/%s.png", d2, hex);
        write_file(f, data, sizeof data);
        unsigned char ph[18];
        for (size_t k = 0; k < 18; k++)
            ph[k] = (unsigned char)rand();
        char b64[32];
        EVP_EncodeBlock((unsigned char *)b64, ph, 18);
        json_object *item = json_object_new_object();
        json_object_object_add(item, "_id", json_object_new_string("h"));
        json_object_object_add(item, "_chan", json_object_new_string("dsx"));
        json_object_object_add(item, "_type", json_object_new_string("image"));
        json_object_object_add(item, "_board", json_object_new_string(labels[i]));
        json_object_object_add(item, "_crawled_at", json_object_new_int64(1700000000));
        json_object *urls = json_object_new_array();
        json_object_array_add(urls, json_object_new_string("http://127.0.0.1:9/none.png"));
        json_object_object_add(item, "_urls", urls);
        json_object *img = json_object_new_array(), *e = json_object_new_object();
        json_object_object_add(e, "url", json_object_new_int(0));
        json_object_object_add(e, "size", json_object_new_int(sizeof data));
        json_object_object_add(e, "width", json_object_new_int(50));
        json_object_object_add(e, "height", json_object_new_int(40));
        json_object_object_add(e, "format", json_object_new_string("png"));
        json_object_object_add(e, "sha1", json_object_new_string(hex));
        json_object_object_add(e, "phash", json_object_new_string(b64));
        json_object_array_add(img, e);
        json_object_object_add(item, "_img", img);
        char id[16];
        snprintf(id, sizeof id, "h%02zu", i);
        const char *params[2] = {id, json_object_to_json_string(item)};
        char *sql = xasprintf("INSERT INTO \"%s\" (id, data) VALUES ($1, $2::jsonb)", table);
        PQclear(pgtest_query(sql, 2, params));
        free(sql);
        json_object_put(item);
        free(f);
        free(d2);
        free(d);
    }
    pgtest_exec("INSERT INTO \"%s\" (id, data) VALUES ('z1', '{\"_id\": \"z1\", \"_chan\": \"dsx\", \"_board\": \"b\", "
                "\"_type\": \"image\"}'), ('z2', '{\"_id\": \"z2\", \"_chan\": \"dsx\", \"_board\": \"b\", \"_type\": "
                "\"image\", \"_urls\": [\"http://x/a.png\", \"http://x/b.webm\"], \"_img\": [{\"url\": 0, \"error\": "
                "\"http 404\"}, {\"url\": 1, \"size\": 10, \"format\": \"webm\", \"sha1\": "
                "\"0000000000000000000000000000000000000000\"}]}')",
                table);
    char *out = path_join(root, "out-hostile");
    proc p = {0};
    const char *list[] = {"--missing", "list", NULL};
    assert_int_equal(run_export(&p, exchange, out, save, list, true), 0);
    proc_release(&p);
    char *mp = path_join(out, "manifest.jsonl");
    json_object *rows = read_jsonl(mp);
    free(mp);
    assert_int_equal(json_object_array_length(rows), nl);
    char *dirs[32];
    for (size_t i = 0; i < nl; i++) {
        json_object *row = NULL;
        for (size_t r = 0; r < nl; r++) {
            char id[16];
            snprintf(id, sizeof id, "h%02zu", i);
            if (strcmp(str(json_object_array_get_idx(rows, r), "id"), id) == 0)
                row = json_object_array_get_idx(rows, r);
        }
        assert_non_null(row);
        assert_string_equal(str(row, "label"), labels[i]); /* the manifest keeps the label */
        const char *path = str(row, "path");
        const char *a = strchr(path, '/'), *b = strrchr(path, '/');
        assert_true(a && b && a < b);
        size_t dl = (size_t)(b - a - 1);
        dirs[i] = xstrndup(a + 1, dl);
        assert_true(dl > 0 && dl <= 255);
        assert_true(strchr(dirs[i], '/') == NULL);
        assert_true(dirs[i][0] != '.');
        for (const char *c = dirs[i]; *c; c++)
            assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        char *f = path_join(out, path);
        char hex[41];
        assert_true(file_sha1(f, hex));
        assert_string_equal(hex, str(row, "sha1"));
        free(f);
        printf("# label %zu (%zu bytes) -> %s\n", i, strlen(labels[i]), dl > 60 ? "(long name)" : dirs[i]);
    }
    for (size_t i = 0; i < nl; i++)
        for (size_t j = i + 1; j < nl; j++)
            if (strcmp(dirs[i], dirs[j]) == 0) fail_msg("labels %zu and %zu share the folder %s", i, j, dirs[i]);
    for (size_t i = 0; i < nl; i++)
        free(dirs[i]);
    json_object_put(rows);
    json_object *top;
    json_object *c = summary_counts(out, &top);
    assert_int_equal(num(c, "rows_without_img"), 1);
    assert_int_equal(num(c, "videos"), 1);
    json_object *sk = NULL;
    json_object_object_get_ex(top, "skipped", &sk);
    assert_int_equal(num(sk, "error"), 1);
    assert_int_equal(num(sk, "filtered"), 1); /* the video */
    json_object_put(top);
    pgtest_drop_tables(table);
    free(out);
    free(save);
}

static void test_export_dataset(void **state) {
    (void)state;
    char *work = path_join(root, "archive");
    assert_int_equal(mkdir(work, 0755), 0);
    assert_int_equal(dsa_fill(&A, work), 0);
    load_truth();
    printf("# the archive: %zu pictures\n", npics);
    expected e;
    expect(&e, NULL, NULL);
    printf("# expected: %d pictures, %lld exact and %lld near duplicates left out\n", json_object_object_length(e.rows),
           (long long)e.exact, (long long)e.near);

    /* the set */
    char *out1 = path_join(root, "out1");
    assert_int_equal(export_once(out1, A.save_dir, NULL), 0);
    check_dataset(out1, &e);

    /* a rerun: nothing changes, the split is the same; a picture file the
     * manifest does not list (as an interrupted run over a changed archive
     * leaves) is removed, a file of another name is left alone */
    char *p = path_join(out1, "manifest.jsonl");
    char *before = read_text(p);
    json_object *rows1 = read_jsonl(p);
    const char *first = str(json_object_array_get_idx(rows1, 0), "path");
    char *label_dir = xstrndup(first, (size_t)(strrchr(first, '/') - first));
    char stray_hex[41];
    sha1_hex_of((const unsigned char *)"stray", 5, stray_hex);
    char *stray = xasprintf("%s/%s/%s.png", out1, label_dir, stray_hex);
    char *notes = xasprintf("%s/%s/notes.txt", out1, label_dir);
    write_file(stray, "stray", 5);
    write_file(notes, "mine", 4);
    assert_int_equal(export_once(out1, A.save_dir, NULL), 0);
    char *after = read_text(p);
    assert_string_equal(before, after);
    free(after);
    struct stat st;
    assert_int_not_equal(stat(stray, &st), 0);
    assert_int_equal(stat(notes, &st), 0);
    unlink(notes);
    free(stray);
    free(notes);
    free(label_dir);
    json_object_put(rows1);
    json_object *top;
    json_object *c = summary_counts(out1, &top);
    assert_int_equal(num(c, "present"), json_object_object_length(e.rows));
    assert_int_equal(num(c, "removed"), 1);
    json_object_put(top);
    /* other settings into the same folder: refused, nothing changed */
    const char *other[] = {"--split", "0.5,0.25,0.25", NULL};
    proc pr = {0};
    assert_int_equal(run_export(&pr, NULL, out1, A.save_dir, other, false), -1);
    assert_int_equal(proc_wait(&pr), 2);
    assert_int_equal(proc_log_count(&pr, "was made with other settings (split"), 1);
    proc_release(&pr);
    after = read_text(p);
    assert_string_equal(before, after);
    free(after);

    /* filters: a site, a smallest width, two labels (--label repeated);
     * duplicates are then found among what passed */
    {
        filt f = {.site = DSA_SITE_API, .min_width = 300, .label1 = "neko", .label2 = DSA_LABEL_ODD};
        expected ef;
        expect(&ef, NULL, &f);
        printf("# filtered: %d pictures expected\n", json_object_object_length(ef.rows));
        assert_true(json_object_object_length(ef.rows) > 0);
        char *outf = path_join(root, "out-filtered");
        const char *fargs[] = {"--site",  DSA_SITE_API, "--kind",  "image,thread", "--min-width", "300",
                               "--label", "neko",       "--label", DSA_LABEL_ODD,  NULL};
        assert_int_equal(export_once(outf, A.save_dir, fargs), 0);
        check_dataset(outf, &ef);
        json_object_put(ef.rows);
        free(outf);
    }

    /* another label: --label-field _chan (the site); the same pictures are kept */
    {
        char *outl = path_join(root, "out-label");
        const char *largs[] = {"--label-field", "_chan", NULL};
        assert_int_equal(export_once(outl, A.save_dir, largs), 0);
        char *mp = path_join(outl, "manifest.jsonl");
        json_object *lrows = read_jsonl(mp);
        assert_int_equal(json_object_array_length(lrows), json_object_object_length(e.rows));
        for (size_t i = 0; i < json_object_array_length(lrows); i++) {
            json_object *row = json_object_array_get_idx(lrows, i);
            char *key = key_of(row);
            assert_true(json_object_object_get_ex(e.rows, key, NULL));
            assert_string_equal(str(row, "label"), str(row, "site"));
            char *want = xasprintf("%s/%s/%s.", split_of(str(row, "sha1")), str(row, "site"), str(row, "sha1"));
            assert_memory_equal(str(row, "path"), want, strlen(want));
            free(want);
            free(key);
        }
        json_object_put(lrows);
        free(mp);
        free(outl);
    }

    check_missing_and_damaged(out1, &e);
    check_kill(out1, &e);
    check_full_disk(out1, &e);
    check_hostile();

    /* a grown archive: only the new pictures are added */
    json_object *prev_rows = read_jsonl(p);
    json_object *prev = by_key(prev_rows);
    assert_int_equal(dsa_grow(&A), 0);
    load_truth();
    expected e2;
    expect(&e2, prev, NULL);
    assert_int_equal(export_once(out1, A.save_dir, NULL), 0);
    check_dataset(out1, &e2);
    c = summary_counts(out1, &top);
    int64_t added = json_object_object_length(e2.rows) - json_object_object_length(e.rows);
    printf("# grown: %lld new pictures\n", (long long)added);
    assert_true(added > 0);
    assert_int_equal(num(c, "present"), json_object_object_length(e.rows));
    assert_int_equal(num(c, "linked") + num(c, "copied") + num(c, "downloaded"), added);
    json_object_put(top);
    /* every earlier row still there, with the same file */
    json_object *now_rows = read_jsonl(p);
    json_object *now = by_key(now_rows);
    json_object_put(now_rows);
    json_object_object_foreach(prev, k, row) {
        json_object *r2 = NULL;
        if (!json_object_object_get_ex(now, k, &r2)) fail_msg("%s left the set after it grew", k);
        assert_string_equal(str(r2, "path"), str(row, "path"));
    }
    /* a round-2 copy of a picture of round 1 stays out */
    int copies = 0;
    for (size_t i = 0; i < npics; i++) {
        if (num(pics[i].t, "round") != 2 || strcmp(str(pics[i].t, "variant"), "original") == 0) continue;
        char *key = key_of(pics[i].t);
        assert_false(json_object_object_get_ex(now, key, NULL));
        free(key);
        copies++;
    }
    printf("# grown: %d new copies of earlier pictures left out\n", copies);
    json_object_put(now);
    json_object_put(prev);
    json_object_put(prev_rows);
    json_object_put(e.rows);
    json_object_put(e2.rows);
    free(before);
    free(p);
    free(out1);
    free(work);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_dataset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
