/* stats.c -- the report's counters; see stats.h.
 *
 * Sums of colour fractions are doubles added in the order the rows come;
 * the tests compare them with PostgreSQL's avg() within 1e-9.
 */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

const int64_t rstats_size_edges[RSTATS_SIZE_BINS] = {
    0,       1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17,
    1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22, 1 << 23, 1 << 24, 1 << 25, 1 << 26,
};
const int rstats_dim_edges[RSTATS_DIM_BINS] = {0,    64,   128,  256,  384,  512,  768,
                                               1024, 1536, 2048, 3072, 4096, 6144, 8192};
const char *const rstats_split_names[RSTATS_SPLITS] = {"train", "val", "test", "other"};

void rstats_init(rstats *s, bool dataset) {
    memset(s, 0, sizeof *s);
    s->dataset = dataset;
    rmap_init(&s->labels, sizeof(rstats_label));
    rmap_init(&s->days, sizeof(rmap));
    rmap_init(&s->formats, 2 * sizeof(int64_t));
    rmap_init(&s->errors, sizeof(int64_t));
}

static void rstats_free_days(void *rec) { rmap_release(rec, NULL); }

void rstats_release(rstats *s) {
    rmap_release(&s->labels, NULL);
    rmap_release(&s->days, rstats_free_days);
    rmap_release(&s->formats, NULL);
    rmap_release(&s->errors, NULL);
}

int rstats_size_bin(int64_t size) {
    int b = 0;
    while (b + 1 < RSTATS_SIZE_BINS && size >= rstats_size_edges[b + 1])
        b++;
    return b;
}

int rstats_dim_bin(int64_t px) {
    int b = 0;
    while (b + 1 < RSTATS_DIM_BINS && px >= rstats_dim_edges[b + 1])
        b++;
    return b;
}

int rstats_bright_bin(double level) {
    double b = floor(level / 8.0);
    if (!(b >= 0)) return 0; /* negative or NaN */
    return b >= RSTATS_BRIGHT_BINS - 1 ? RSTATS_BRIGHT_BINS - 1 : (int)b;
}

void rstats_add_day(rstats *s, const char *site, const char *day) {
    rmap *days = rmap_get(&s->days, site ? site : "");
    if (!days->rec_size) rmap_init(days, sizeof(int64_t));
    (*(int64_t *)rmap_get(days, day ? day : "unknown"))++;
}

void rstats_add_image(rstats *s, const rstats_image *im) {
    rstats_label *l = rmap_get(&s->labels, im->label ? im->label : "");
    int64_t *f = rmap_get(&s->formats, im->format && *im->format ? im->format : "unknown");
    s->images++;
    l->images++;
    f[0]++;
    if (s->dataset) {
        int k = RSTATS_OTHER;
        for (int i = 0; i < RSTATS_OTHER && im->split; i++)
            if (strcmp(im->split, rstats_split_names[i]) == 0) k = i;
        l->splits[k]++;
    }
    if (im->size >= 0) {
        l->bytes += im->size;
        f[1] += im->size;
        s->bytes += im->size;
        s->size_hist[rstats_size_bin(im->size)]++;
    } else {
        s->without_size++;
    }
    if (im->width > 0 && im->height > 0)
        s->dim_hist[rstats_dim_bin(im->width)][rstats_dim_bin(im->height)]++;
    else
        s->without_dimensions++;
    if (im->has_brightness) {
        s->bright_hist[rstats_bright_bin(im->brightness)]++;
        l->bright += im->brightness;
        l->bright_n++;
    }
    if (im->has_mean) {
        for (int c = 0; c < 3; c++)
            l->mean[c] += im->mean[c];
        l->mean_n++;
    }
    bool hist = im->has_hist;
    double sums[3] = {0, 0, 0};
    for (int k = 0; hist && k < RSTATS_HIST; k++)
        sums[k / 8] += im->hist[k];
    for (int c = 0; c < 3; c++)
        if (!(sums[c] > 0)) hist = false;
    if (hist) {
        for (int k = 0; k < RSTATS_HIST; k++)
            l->hist[k] += im->hist[k] / sums[k / 8];
        l->hist_n++;
    }
    if (!hist && !im->has_mean && !im->has_brightness) s->without_colour++;
}

void rstats_error_kind(const char *reason, char *out, size_t outlen) {
    const char *r = reason ? reason : "";
    size_t n = strcspn(r, ":;");
    while (n && r[0] == ' ')
        r++, n--;
    while (n && r[n - 1] == ' ')
        n--;
    if (!n) r = "unknown", n = strlen(r);
    if (n >= outlen) n = outlen - 1;
    memcpy(out, r, n);
    out[n] = '\0';
}

void rstats_add_error(rstats *s, const char *reason) {
    char kind[512];
    rstats_error_kind(reason, kind, sizeof kind);
    (*(int64_t *)rmap_get(&s->errors, kind))++;
    s->errors_total++;
}

/* --- report.json --- */

static json_object *rstats_int_array(const int64_t *v, size_t n) {
    json_object *a = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int64(v[i]));
    return a;
}

static json_object *rstats_double(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

void rstats_json(const rstats *s, json_object *root) {
    json_object *totals = json_object_new_object();
    if (!s->dataset) {
        json_object_object_add(totals, "items", json_object_new_int64(s->items));
        json_object_object_add(totals, "items_without_img", json_object_new_int64(s->items_without_img));
        json_object_object_add(totals, "entries", json_object_new_int64(s->entries));
    }
    json_object_object_add(totals, "images", json_object_new_int64(s->images));
    json_object_object_add(totals, "bytes", json_object_new_int64(s->bytes));
    json_object_object_add(totals, "labels", json_object_new_int64((int64_t)s->labels.n));
    if (!s->dataset) json_object_object_add(totals, "errors", json_object_new_int64(s->errors_total));
    json_object_object_add(totals, "without_size", json_object_new_int64(s->without_size));
    json_object_object_add(totals, "without_dimensions", json_object_new_int64(s->without_dimensions));
    json_object_object_add(totals, "without_colour", json_object_new_int64(s->without_colour));
    json_object_object_add(root, "totals", totals);

    const char **keys = rmap_keys(&s->labels);
    json_object *labels = json_object_new_object(), *colour = json_object_new_object();
    for (size_t i = 0; i < s->labels.n; i++) {
        const rstats_label *l = rmap_find(&s->labels, keys[i]);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "images", json_object_new_int64(l->images));
        json_object_object_add(o, "bytes", json_object_new_int64(l->bytes));
        if (s->dataset)
            for (int k = 0; k < RSTATS_SPLITS; k++)
                json_object_object_add(o, rstats_split_names[k], json_object_new_int64(l->splits[k]));
        json_object_object_add(labels, keys[i], o);
        json_object *c = json_object_new_object();
        json_object_object_add(c, "with_hist", json_object_new_int64(l->hist_n));
        json_object_object_add(c, "with_mean", json_object_new_int64(l->mean_n));
        json_object_object_add(c, "with_brightness", json_object_new_int64(l->bright_n));
        if (l->mean_n) {
            json_object *m = json_object_new_array_ext(3);
            for (int k = 0; k < 3; k++)
                json_object_array_add(m, rstats_double(l->mean[k] / (double)l->mean_n));
            json_object_object_add(c, "rgb_mean", m);
        }
        if (l->bright_n) json_object_object_add(c, "brightness", rstats_double(l->bright / (double)l->bright_n));
        if (l->hist_n) {
            json_object *h = json_object_new_array_ext(RSTATS_HIST);
            for (int k = 0; k < RSTATS_HIST; k++)
                json_object_array_add(h, rstats_double(l->hist[k] / (double)l->hist_n));
            json_object_object_add(c, "rgb_hist", h);
        }
        json_object_object_add(colour, keys[i], c);
    }
    free(keys);
    json_object_object_add(root, "labels", labels);

    json_object *sites = json_object_new_object();
    keys = rmap_keys(&s->days);
    for (size_t i = 0; i < s->days.n; i++) {
        const rmap *days = rmap_find(&s->days, keys[i]);
        const char **dk = rmap_keys(days);
        json_object *o = json_object_new_object();
        for (size_t j = 0; j < days->n; j++)
            json_object_object_add(o, dk[j], json_object_new_int64(*(const int64_t *)rmap_find(days, dk[j])));
        free(dk);
        json_object_object_add(sites, keys[i], o);
    }
    free(keys);
    json_object *per_day = json_object_new_object();
    json_object_object_add(per_day, "unit", json_object_new_string(s->dataset ? "images" : "items"));
    json_object_object_add(per_day, "sites", sites);
    json_object_object_add(root, "per_day", per_day);

    json_object *formats = json_object_new_object();
    keys = rmap_keys(&s->formats);
    for (size_t i = 0; i < s->formats.n; i++) {
        const int64_t *f = rmap_find(&s->formats, keys[i]);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "images", json_object_new_int64(f[0]));
        json_object_object_add(o, "bytes", json_object_new_int64(f[1]));
        json_object_object_add(formats, keys[i], o);
    }
    free(keys);
    json_object_object_add(root, "formats", formats);

    json_object *sizes = json_object_new_object();
    json_object_object_add(sizes, "edges", rstats_int_array(rstats_size_edges, RSTATS_SIZE_BINS));
    json_object_object_add(sizes, "counts", rstats_int_array(s->size_hist, RSTATS_SIZE_BINS));
    json_object_object_add(root, "sizes", sizes);

    json_object *dims = json_object_new_object(), *edges = json_object_new_array_ext(RSTATS_DIM_BINS),
                *counts = json_object_new_array_ext(RSTATS_DIM_BINS);
    for (int i = 0; i < RSTATS_DIM_BINS; i++) {
        json_object_array_add(edges, json_object_new_int(rstats_dim_edges[i]));
        json_object_array_add(counts, rstats_int_array(s->dim_hist[i], RSTATS_DIM_BINS));
    }
    json_object_object_add(dims, "edges", edges);
    json_object_object_add(dims, "counts", counts); /* counts[width bin][height bin] */
    json_object_object_add(root, "dimensions", dims);

    json_object *bright = json_object_new_object(), *bedges = json_object_new_array_ext(RSTATS_BRIGHT_BINS);
    for (int i = 0; i < RSTATS_BRIGHT_BINS; i++)
        json_object_array_add(bedges, json_object_new_int(8 * i));
    json_object_object_add(bright, "edges", bedges);
    json_object_object_add(bright, "counts", rstats_int_array(s->bright_hist, RSTATS_BRIGHT_BINS));
    json_object_object_add(root, "brightness", bright);

    json_object_object_add(root, "colour", colour);

    if (!s->dataset) {
        json_object *errors = json_object_new_object();
        keys = rmap_keys(&s->errors);
        for (size_t i = 0; i < s->errors.n; i++)
            json_object_object_add(errors, keys[i],
                                   json_object_new_int64(*(const int64_t *)rmap_find(&s->errors, keys[i])));
        free(keys);
        json_object_object_add(root, "errors", errors);
    }
}
