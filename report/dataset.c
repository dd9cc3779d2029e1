/* dataset.c -- an exported dataset's numbers; see dataset.h. */
#include "dataset.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "entry.h"
#include "log.h"
#include "sbuf.h"
#include "sig.h"
#include "xalloc.h"

#define RD_LINE_MAX (1 << 20)

/* The next line of F into B (NUL-terminated, without its newline); 1, 0 at
 * the end, 2 for a line over RD_LINE_MAX (skipped). */
static int rd_line(FILE *f, sbuf *b) {
    b->len = 0;
    int c, too_long = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (b->len >= RD_LINE_MAX)
            too_long = 1;
        else
            sbuf_addc(b, (char)c);
    }
    if (c == EOF && b->len == 0 && !too_long) return 0;
    sbuf_addc(b, '\0');
    b->len--;
    return too_long ? 2 : 1;
}

static const char *rd_str(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                             : NULL;
}

static bool rd_num(json_object *o, const char *key, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return false;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return false;
    *out = json_object_get_double(v);
    return isfinite(*out);
}

static bool rd_nums(json_object *o, const char *key, double *out, size_t n) {
    json_object *a;
    if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array) ||
        json_object_array_length(a) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return false;
        out[i] = json_object_get_double(v);
    }
    return true;
}

static int64_t rd_int(json_object *o, const char *key) {
    double v;
    return rd_num(o, key, &v) && v >= 0 && v < 9.2e18 ? (int64_t)llround(v) : -1;
}

typedef struct rd_run {
    const report_settings *s;
    char *manifest;
    int64_t rows, bad, represented;
    rmap sha1s;  /* sha1 -> int64_t rows */
    rmap wanted; /* path or "sha1:<hex>" -> rgroup_member * of the kept groups */
} rd_run;

/* First pass: the counters, the catalog, the sha1 counts. */
static int rd_first(rd_run *r, rstats *st, catalog *c, char *why, size_t whylen) {
    FILE *f = fopen(r->manifest, "re");
    if (!f) {
        snprintf(why, whylen, "cannot open %s: %s", r->manifest, strerror(errno));
        return -1;
    }
    sbuf line = {0};
    int got, rc = 0;
    int64_t lineno = 0;
    while (rc == 0 && (got = rd_line(f, &line)) != 0) {
        lineno++;
        json_object *o = got == 1 ? json_tokener_parse(line.p) : NULL;
        if (!json_object_is_type(o, json_type_object)) {
            if (line.len || got == 2)
                log_warn("%s line %" PRId64 ": %s, skipped", r->manifest, lineno,
                         got == 2 ? "longer than 1 MiB" : "not a JSON object");
            if (line.len || got == 2) r->bad++;
            json_object_put(o);
            continue;
        }
        r->rows++;
        rstats_image im = {.label = rd_str(o, "label"),
                           .split = rd_str(o, "split"),
                           .format = rd_str(o, "format"),
                           .size = rd_int(o, "size"),
                           .width = rd_int(o, "width"),
                           .height = rd_int(o, "height")};
        if (!im.label) im.label = "";
        im.has_brightness = rd_num(o, "brightness", &im.brightness);
        im.has_mean = rd_nums(o, "rgb_mean", im.mean, 3);
        im.has_hist = rd_nums(o, "rgb_hist", im.hist, RSTATS_HIST);
        rstats_add_image(st, &im);
        double t;
        char day[32] = "unknown";
        if (rd_num(o, "time", &t) && t >= 0 && t < 1e11) {
            time_t tt = (time_t)t;
            struct tm tm;
            if (gmtime_r(&tt, &tm)) strftime(day, sizeof day, "%Y-%m-%d", &tm);
        }
        const char *site = rd_str(o, "site");
        rstats_add_day(st, site ? site : "", day);
        int64_t dup = rd_int(o, "duplicates");
        if (dup > 0) r->represented += dup;
        const char *sha1 = rd_str(o, "sha1"), *path = rd_str(o, "path");
        if (sha1) (*(int64_t *)rmap_get(&r->sha1s, sha1))++;
        catalog_image img;
        unsigned bad = 0;
        if (path && entry_from_fields((uint32_t)(rd_int(o, "image") > 0 ? rd_int(o, "image") : 0), rd_str(o, "phash"),
                                      rd_str(o, "dhash"), sha1, rd_str(o, "md5"), &img, &bad))
            catalog_add(c, "manifest", path, &img, 1);
        json_object_put(o);
        if (sig_stop_requested()) {
            snprintf(why, whylen, "stopped");
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, whylen, "cannot read %s: %s", r->manifest, strerror(errno));
        rc = -1;
    }
    free(line.p);
    fclose(f);
    return rc;
}

/* Second pass: the kept groups' members get their row's fields. */
static int rd_second(rd_run *r, char *why, size_t whylen) {
    if (!r->wanted.n) return 0;
    FILE *f = fopen(r->manifest, "re");
    if (!f) {
        snprintf(why, whylen, "cannot open %s: %s", r->manifest, strerror(errno));
        return -1;
    }
    sbuf line = {0};
    int got;
    while ((got = rd_line(f, &line)) != 0) {
        json_object *o = got == 1 ? json_tokener_parse(line.p) : NULL;
        const char *path = json_object_is_type(o, json_type_object) ? rd_str(o, "path") : NULL;
        const char *sha1 = path ? rd_str(o, "sha1") : NULL;
        for (int pass = 0; pass < 2 && path; pass++) {
            char *key = pass == 0 ? xstrdup(path) : sha1 ? xasprintf("sha1:%s", sha1) : NULL;
            rgroup_member ***slot = key ? rmap_find(&r->wanted, key) : NULL;
            /* an exact group's slot takes the rows of its sha1 in manifest order, until full */
            for (rgroup_member **m = slot ? *slot : NULL; m && *m; m++) {
                if ((*m)->path) continue;
                free((*m)->table);
                free((*m)->id);
                const char *table = rd_str(o, "table"), *id = rd_str(o, "id"), *label = rd_str(o, "label"),
                           *format = rd_str(o, "format");
                int64_t image = rd_int(o, "image");
                (*m)->table = xstrdup(table ? table : "");
                (*m)->id = xstrdup(id ? id : "");
                (*m)->image = image > 0 ? (uint32_t)image : 0;
                (*m)->label = xstrdup(label ? label : "");
                (*m)->sha1 = sha1 ? xstrdup(sha1) : NULL;
                (*m)->format = format ? xstrdup(format) : NULL;
                (*m)->path = xstrdup(path);
                (*m)->file = xasprintf("%s/%s", r->s->dataset, path);
                break;
            }
            free(key);
        }
        json_object_put(o);
    }
    free(line.p);
    fclose(f);
    return 0;
}

/* The members awaiting their row under KEY (a NULL-ended array in the record). */
static void rd_want(rd_run *r, const char *key, rgroup_member *m) {
    rgroup_member ***slot = rmap_get(&r->wanted, key);
    size_t n = 0;
    while (*slot && (*slot)[n])
        n++;
    *slot = xrealloc(*slot, (n + 2) * sizeof **slot);
    (*slot)[n] = m;
    (*slot)[n + 1] = NULL;
}

static void rd_free_want(void *rec) { free(*(rgroup_member ***)rec); }

int rdataset_collect(const report_settings *s, rstats *st, rgroups *exact, rgroups *near, json_object *root, char *why,
                     size_t whylen) {
    rd_run r = {.s = s};
    rmap_init(&r.sha1s, sizeof(int64_t));
    rmap_init(&r.wanted, sizeof(rgroup_member **));
    char *summary_path = xasprintf("%s/summary.json", s->dataset);
    r.manifest = xasprintf("%s/manifest.jsonl", s->dataset);
    json_object *summary = json_object_from_file(summary_path);
    int rc = 0;
    if (!json_object_is_type(summary, json_type_object)) {
        snprintf(why, whylen, "cannot read %s: %s", summary_path,
                 summary                    ? "not a JSON object"
                 : json_util_get_last_err() ? json_util_get_last_err()
                                            : "unreadable");
        rc = -1;
    }
    catalog *c = catalog_new();
    if (rc == 0) rc = rd_first(&r, st, c, why, whylen);
    if (rc == 0) {
        catalog_build(c);
        catalog_kind kind = strcmp(s->hash, "dhash") == 0 ? CATALOG_DHASH : CATALOG_PHASH;
        if (rgroups_near(near, c, kind, (int)s->max_distance) != 0) {
            snprintf(why, whylen, "stopped");
            rc = -1;
        }
    }
    catalog_free(c);
    if (rc == 0) {
        const char **keys = rmap_keys(&r.sha1s);
        for (size_t i = 0; i < r.sha1s.n; i++) {
            int64_t n = *(const int64_t *)rmap_find(&r.sha1s, keys[i]);
            if (n < 2) continue;
            rgroup *g = rgroups_offer(exact, n);
            if (g) g->sha1 = xstrdup(keys[i]);
        }
        free(keys);
        char key[64];
        for (size_t i = 0; i < exact->n; i++) {
            snprintf(key, sizeof key, "sha1:%s", exact->g[i].sha1);
            for (int64_t k = 0; k < exact->g[i].size; k++) {
                rgroup_member *m = rgroup_add(exact, &exact->g[i], "", "", 0);
                if (!m) break;
                rd_want(&r, key, m);
            }
        }
        for (size_t i = 0; i < near->n; i++)
            for (size_t j = 0; j < near->g[i].n; j++)
                rd_want(&r, near->g[i].m[j].id, &near->g[i].m[j]);
        rc = rd_second(&r, why, whylen);
    }
    if (rc == 0) {
        json_object *src = json_object_new_object();
        json_object_object_add(src, "kind", json_object_new_string("dataset"));
        json_object_object_add(src, "dir", json_object_new_string(s->dataset));
        json_object_object_add(src, "rows", json_object_new_int64(r.rows));
        json_object_object_add(src, "bad_lines", json_object_new_int64(r.bad));
        json_object_object_add(root, "source", src);
        json_object *sm = json_object_new_object(), *v;
        if (json_object_object_get_ex(summary, "total", &v)) json_object_object_add(sm, "total", json_object_get(v));
        if (json_object_object_get_ex(summary, "skipped", &v))
            json_object_object_add(sm, "skipped", json_object_get(v));
        if (json_object_object_get_ex(summary, "settings", &v))
            json_object_object_add(sm, "settings", json_object_get(v));
        json_object_object_add(sm, "duplicates_represented", json_object_new_int64(r.represented));
        json_object_object_add(root, "summary", sm);
    }
    json_object_put(summary);
    rmap_release(&r.sha1s, NULL);
    rmap_release(&r.wanted, rd_free_want);
    free(summary_path);
    free(r.manifest);
    return rc;
}
