/* dsarchive.c -- a test archive filled by the real pipeline; see dsarchive.h.
 *
 * Two tables drive it: dsa_sources, the distinct source pictures (a group
 * each: its round, site, label, format, size, style), and dsa_copies, the
 * known duplicates (which group, which variant, where it goes).  A round
 * draws its source pictures with libgd from the group number alone (a
 * splitmix64 stream: a gradient background with a little noise, then large
 * filled ellipses, rectangles and triangles), derives the copies from the
 * encoded bytes (decoded again, scaled or re-encoded), writes each file into
 * WORKDIR/pool/<site>/<label folder>/, and tells the fixture server to serve
 * those folders (it reads them again on every control request, so a grown
 * folder grows the site).  Then the three programs run: imgfeed-archiver and
 * imgfeed-hasher --save-dir as daemons, imgfeed-crawler --once, and the round
 * waits until every picture of the truth is a row whose _urls[0] and _img
 * sha1 are the truth's; the daemons are stopped (SIGTERM, exit 0).
 *
 * The truth lives in memory as a json-c array (a->priv) and is written to
 * truth.json through a temporary file and rename.  Chan items' ids come from
 * the fixture's answer (the post number of each file); the others' are the
 * crawler's rule (nekos_best: the file name; waifu_im: the id, here the
 * file's digits).
 */
#include "dsarchive.h"

#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <gd.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define DSA_GUARD_MS 120000 /* longest a round waits for its rows before failing */

enum { DSA_API, DSA_NSFW, DSA_CHAN, DSA_NSITES };
enum { DSA_JPEG, DSA_PNG };
enum { DSA_PLAIN, DSA_GRAY, DSA_ALPHA };

typedef struct dsa_site_info {
    const char *name, *kind;
} dsa_site_info;

static const dsa_site_info dsa_sites[DSA_NSITES] = {
    [DSA_API] = {DSA_SITE_API, "nekos_best"},
    [DSA_NSFW] = {DSA_SITE_NSFW, "waifu_im"},
    [DSA_CHAN] = {DSA_SITE_CHAN, "4chan"},
};

/* The labels of each site and the folder each one's files go to. */
typedef struct dsa_label {
    int site;
    const char *label, *folder;
} dsa_label;

static const dsa_label dsa_labels[] = {
    {DSA_API, "neko", "neko"},
    {DSA_API, "kitsune", "kitsune"},
    {DSA_API, DSA_LABEL_ODD, "odd"},
    {DSA_NSFW, "ecchi", "ecchi"},
    {DSA_CHAN, "a", "a"},
    {DSA_CHAN, "c", "c"},
};
#define DSA_NLABELS (sizeof dsa_labels / sizeof dsa_labels[0])

/* A source picture: group = its index in dsa_sources. */
typedef struct dsa_source {
    int round;
    int label; /* index into dsa_labels */
    int format, style;
    int w, h; /* 0: from the seed, 200 to 600 */
} dsa_source;

#define L_NEKO 0
#define L_KITSUNE 1
#define L_ODD 2
#define L_ECCHI 3
#define L_A 4
#define L_C 5

static const dsa_source dsa_sources[] = {
    /* 0-11: neko */
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_PNG, 0, 0, 0},
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_PNG, 0, 0, 0},
    {1, L_NEKO, DSA_JPEG, 0, 1400, 1000},
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_PNG, DSA_GRAY, 0, 0},
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_PNG, 0, 0, 0},
    {1, L_NEKO, DSA_JPEG, 0, 0, 0},
    {1, L_NEKO, DSA_PNG, DSA_ALPHA, 0, 0},
    /* 12-21: kitsune */
    {1, L_KITSUNE, DSA_JPEG, 0, 0, 0},
    {1, L_KITSUNE, DSA_PNG, 0, 0, 0},
    {1, L_KITSUNE, DSA_JPEG, 0, 0, 0},
    {1, L_KITSUNE, DSA_PNG, 0, 0, 0},
    {1, L_KITSUNE, DSA_JPEG, 0, 0, 0},
    {1, L_KITSUNE, DSA_JPEG, 0, 1600, 1100},
    {1, L_KITSUNE, DSA_JPEG, DSA_GRAY, 0, 0},
    {1, L_KITSUNE, DSA_PNG, 0, 0, 0},
    {1, L_KITSUNE, DSA_JPEG, 0, 0, 0},
    {1, L_KITSUNE, DSA_PNG, 0, 0, 0},
    /* 22-24: the odd label */
    {1, L_ODD, DSA_JPEG, 0, 0, 0},
    {1, L_ODD, DSA_PNG, 0, 0, 0},
    {1, L_ODD, DSA_JPEG, 0, 0, 0},
    /* 25-28: NSFW */
    {1, L_ECCHI, DSA_JPEG, 0, 0, 0},
    {1, L_ECCHI, DSA_PNG, 0, 0, 0},
    {1, L_ECCHI, DSA_JPEG, 0, 0, 0},
    {1, L_ECCHI, DSA_JPEG, 0, 0, 0},
    /* 29-34: board a */
    {1, L_A, DSA_JPEG, 0, 1300, 1250},
    {1, L_A, DSA_PNG, 0, 0, 0},
    {1, L_A, DSA_JPEG, 0, 0, 0},
    {1, L_A, DSA_JPEG, 0, 0, 0},
    {1, L_A, DSA_PNG, 0, 0, 0},
    {1, L_A, DSA_JPEG, 0, 0, 0},
    /* 35-39: board c */
    {1, L_C, DSA_PNG, 0, 0, 0},
    {1, L_C, DSA_JPEG, 0, 0, 0},
    {1, L_C, DSA_JPEG, 0, 0, 0},
    {1, L_C, DSA_PNG, 0, 0, 0},
    {1, L_C, DSA_JPEG, 0, 0, 0},
    /* 40-43: round 2 */
    {2, L_NEKO, DSA_JPEG, 0, 0, 0},
    {2, L_NEKO, DSA_PNG, 0, 0, 0},
    {2, L_A, DSA_JPEG, 0, 0, 0},
    {2, L_KITSUNE, DSA_JPEG, 0, 0, 0},
};
#define DSA_NSOURCES (sizeof dsa_sources / sizeof dsa_sources[0])

typedef struct dsa_copy {
    int round;
    int group;
    const char *variant; /* other_label, resized, recompressed, exact_copy */
    int label;
} dsa_copy;

static const dsa_copy dsa_copies[] = {
    {1, 1, "other_label", L_KITSUNE},  /* the same file under two categories */
    {1, 30, "other_label", L_C},       /* ... under two boards */
    {1, 13, "other_label", L_A},       /* ... on two sites */
    {1, 2, "resized", L_NEKO},         /* 60%, JPEG, the same label */
    {1, 14, "resized", L_C},           /* ... another label and site */
    {1, 31, "resized", L_NEKO},        /* ... of a board's picture, into a category */
    {1, 3, "recompressed", L_KITSUNE}, /* JPEG quality 60, another label */
    {1, 36, "recompressed", L_A},      /* ... of board c's, onto board a */
    {1, 4, "exact_copy", L_NEKO},      /* the same bytes, another URL */
    {1, 32, "exact_copy", L_A},        /* ... another post */
    {2, 5, "resized", L_KITSUNE},      /* round 2: a copy of a round-1 picture */
    {2, 6, "exact_copy", L_NEKO},      /* ... and of a round-1 file */
};
#define DSA_NCOPIES (sizeof dsa_copies / sizeof dsa_copies[0])

/* One file of the pools, as the truth will tell it. */
typedef struct dsa_pic {
    int round, group, label;
    const char *variant;
    char *name; /* its file name */
    char *sha1;
    int w, h;
    const char *format;
    char *table, *id, *url; /* filled once known */
} dsa_pic;

typedef struct dsa_priv {
    dsa_pic pics[DSA_NSOURCES + DSA_NCOPIES];
    size_t npics;
    proc crawler, hasher, archiver;
    char *api_url[DSA_NSITES]; /* the imgapi sites' api */
} dsa_priv;

/* --- pictures --- */

static uint64_t dsa_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int dsa_range(uint64_t *s, int lo, int hi) { return lo + (int)(dsa_next(s) % (uint64_t)(hi - lo + 1)); }

static int dsa_clamp(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* The source picture of GROUP, drawn (the caller destroys it). */
static gdImagePtr dsa_draw(int group, const dsa_source *src) {
    uint64_t s = 0x5EED0000ULL + (uint64_t)group * 7919;
    int w = src->w ? src->w : dsa_range(&s, 200, 600), h = src->h ? src->h : dsa_range(&s, 200, 600);
    gdImagePtr im = gdImageCreateTrueColor(w, h);
    if (!im) fail_msg("libgd cannot make a %dx%d picture", w, h);
    gdImageAlphaBlending(im, 0);
    if (src->style == DSA_ALPHA) gdImageSaveAlpha(im, 1);
    /* background: a gradient between two colours in a random direction, a little noise */
    int c0[3], c1[3];
    for (int k = 0; k < 3; k++) {
        c0[k] = dsa_range(&s, 0, 255);
        c1[k] = dsa_range(&s, 0, 255);
    }
    double angle = (double)dsa_range(&s, 0, 359) * M_PI / 180.0, ca = cos(angle), sa = sin(angle);
    double span = fabs(ca) * w + fabs(sa) * h, origin = (ca < 0 ? -ca * w : 0) + (sa < 0 ? -sa * h : 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double t = (x * ca + y * sa + origin) / span;
            uint64_t n = dsa_next(&s);
            int rgb[3];
            for (int k = 0; k < 3; k++)
                rgb[k] = dsa_clamp((int)(c0[k] + (c1[k] - c0[k]) * t) + (int)((n >> (8 * k)) & 15) - 8);
            int alpha = src->style == DSA_ALPHA ? (int)(t * 110) : 0;
            im->tpixels[y][x] = gdTrueColorAlpha(rgb[0], rgb[1], rgb[2], alpha);
        }
    /* shapes: large, flat, contrasting */
    int shapes = dsa_range(&s, 6, 11);
    for (int i = 0; i < shapes; i++) {
        int col = gdTrueColorAlpha(dsa_range(&s, 0, 255), dsa_range(&s, 0, 255), dsa_range(&s, 0, 255),
                                   src->style == DSA_ALPHA ? dsa_range(&s, 0, 90) : 0);
        int cx = dsa_range(&s, 0, w - 1), cy = dsa_range(&s, 0, h - 1);
        int rw = dsa_range(&s, w / 8, w / 2), rh = dsa_range(&s, h / 8, h / 2);
        switch (dsa_range(&s, 0, 2)) {
        case 0: gdImageFilledEllipse(im, cx, cy, rw * 2, rh * 2, col); break;
        case 1: gdImageFilledRectangle(im, cx - rw / 2, cy - rh / 2, cx + rw / 2, cy + rh / 2, col); break;
        default: {
            gdPoint p[3] = {{cx, cy - rh}, {cx - rw, cy + rh}, {cx + rw, cy + rh / 2}};
            gdImageFilledPolygon(im, p, 3, col);
        }
        }
    }
    if (src->style == DSA_GRAY)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int p = im->tpixels[y][x];
                int l = (gdTrueColorGetRed(p) * 19595 + gdTrueColorGetGreen(p) * 38470 + gdTrueColorGetBlue(p) * 7471 +
                         0x8000) >>
                        16;
                im->tpixels[y][x] = gdTrueColor(l, l, l);
            }
    return im;
}

typedef struct dsa_bytes {
    unsigned char *data;
    size_t len;
    int w, h;
    const char *format;
} dsa_bytes;

static void dsa_encode(gdImagePtr im, int format, int quality, dsa_bytes *out) {
    int size = 0;
    void *p = format == DSA_JPEG ? gdImageJpegPtr(im, &size, quality) : gdImagePngPtrEx(im, &size, 6);
    if (!p || size <= 0) fail_msg("libgd cannot encode a %dx%d picture", gdImageSX(im), gdImageSY(im));
    out->data = xmalloc((size_t)size);
    memcpy(out->data, p, (size_t)size);
    gdFree(p);
    out->len = (size_t)size;
    out->w = gdImageSX(im);
    out->h = gdImageSY(im);
    out->format = format == DSA_JPEG ? "jpeg" : "png";
}

static gdImagePtr dsa_decode(const dsa_bytes *b) {
    gdImagePtr im = strcmp(b->format, "jpeg") == 0 ? gdImageCreateFromJpegPtr((int)b->len, b->data)
                                                   : gdImageCreateFromPngPtr((int)b->len, b->data);
    if (!im) fail_msg("libgd cannot decode its own %s", b->format);
    if (!gdImageTrueColor(im)) gdImagePaletteToTrueColor(im);
    return im;
}

static char *dsa_sha1(const unsigned char *data, size_t len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha1(), NULL) != 1 || n != 20) fail_msg("sha1 failed");
    char *hex = xmalloc(41);
    for (unsigned i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

static void dsa_mkdir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail_msg("cannot create %s: %s", path, strerror(errno));
}

static char *dsa_folder(const dsarchive *a, int label) {
    return xasprintf("%s/pool/%s/%s", a->workdir, dsa_sites[dsa_labels[label].site].name, dsa_labels[label].folder);
}

/* Write picture B as the next file of LABEL's folder and note it. */
static void dsa_add(dsarchive *a, int round, int group, const char *variant, int label, const dsa_bytes *b) {
    dsa_priv *p = a->priv;
    size_t k = p->npics;
    assert_true(k < sizeof p->pics / sizeof p->pics[0]);
    dsa_pic *pic = &p->pics[k];
    const char *ext = strcmp(b->format, "jpeg") == 0 ? "jpg" : "png";
    pic->round = round;
    pic->group = group;
    pic->label = label;
    pic->variant = variant;
    pic->name =
        dsa_labels[label].site == DSA_NSFW ? xasprintf("%zu.%s", 7000 + k, ext) : xasprintf("p%03zu.%s", k, ext);
    pic->sha1 = dsa_sha1(b->data, b->len);
    pic->w = b->w;
    pic->h = b->h;
    pic->format = b->format;
    char *folder = dsa_folder(a, label), *path = xasprintf("%s/%s", folder, pic->name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    free(path);
    free(folder);
    p->npics++;
}

/* The bytes of the original of GROUP: drawn again (the same every time). */
static void dsa_original(int group, dsa_bytes *out) {
    const dsa_source *src = &dsa_sources[group];
    gdImagePtr im = dsa_draw(group, src);
    dsa_encode(im, src->format, 90, out);
    gdImageDestroy(im);
}

/* Make the pictures of ROUND: its sources, then its copies. */
static void dsa_make_round(dsarchive *a, int round) {
    for (size_t g = 0; g < DSA_NSOURCES; g++) {
        if (dsa_sources[g].round != round) continue;
        dsa_bytes b;
        dsa_original((int)g, &b);
        dsa_add(a, round, (int)g, "original", dsa_sources[g].label, &b);
        free(b.data);
    }
    for (size_t c = 0; c < DSA_NCOPIES; c++) {
        const dsa_copy *cp = &dsa_copies[c];
        if (cp->round != round) continue;
        dsa_bytes orig, b;
        dsa_original(cp->group, &orig);
        if (strcmp(cp->variant, "resized") == 0 || strcmp(cp->variant, "recompressed") == 0) {
            gdImagePtr im = dsa_decode(&orig);
            if (strcmp(cp->variant, "resized") == 0) {
                gdImageSetInterpolationMethod(im, GD_BILINEAR_FIXED);
                gdImagePtr small = gdImageScale(im, (unsigned)(orig.w * 6 / 10), (unsigned)(orig.h * 6 / 10));
                if (!small) fail_msg("libgd cannot scale group %d", cp->group);
                dsa_encode(small, DSA_JPEG, 85, &b);
                gdImageDestroy(small);
            } else {
                dsa_encode(im, DSA_JPEG, 60, &b);
            }
            gdImageDestroy(im);
            free(orig.data);
        } else {
            b = orig; /* the same bytes */
        }
        dsa_add(a, round, cp->group, cp->variant, cp->label, &b);
        free(b.data);
    }
}

/* --- the fixture's sites --- */

static char *dsa_escape(const char *s) {
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) fail_msg("cannot escape %s", s);
    char *out = xstrdup(e);
    curl_free(e);
    return out;
}

static const char *dsa_string(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("the fixture's answer has no string %s: %s", key, json_object_to_json_string(o));
    return json_object_get_string(v);
}

/* (Re)serve every label's folder; chan posts give their pictures' ids. */
static void dsa_serve(dsarchive *a) {
    dsa_priv *p = a->priv;
    for (size_t l = 0; l < DSA_NLABELS; l++) {
        const dsa_label *lb = &dsa_labels[l];
        char *folder = dsa_folder(a, (int)l), *dir = dsa_escape(folder), *label = dsa_escape(lb->label);
        const char *site = dsa_sites[lb->site].name;
        if (lb->site != DSA_CHAN) {
            json_object_put(fixture_control(&a->fx, "imgapi/cat?site=%s&cat=%s&dir=%s%s", site, label, dir,
                                            lb->site == DSA_NSFW ? "&nsfw=1" : ""));
        } else {
            json_object *o = fixture_control(&a->fx, "chan/board?site=%s&board=%s&dir=%s&per_thread=4", site, label,
                                             dir),
                        *posted, *post, *no, *thread, *tim;
            if (!json_object_object_get_ex(o, "posted", &posted)) fail_msg("chan/board answered no posted");
            for (size_t k = 0; k < p->npics; k++) {
                dsa_pic *pic = &p->pics[k];
                if (pic->label != (int)l || pic->id) continue;
                if (!json_object_object_get_ex(posted, pic->name, &post) ||
                    !json_object_object_get_ex(post, "no", &no) || !json_object_object_get_ex(post, "tim", &tim))
                    fail_msg("the fixture did not post %s on /%s/", pic->name, lb->label);
                /* the OP: the first post of its thread (chan/info would say so too) */
                int64_t n = json_object_get_int64(no);
                json_object *info = fixture_control(&a->fx, "chan/info?site=%s&board=%s", site, label), *threads;
                bool op = false;
                if (json_object_object_get_ex(info, "threads", &threads))
                    for (size_t i = 0; i < json_object_array_length(threads); i++)
                        if (json_object_object_get_ex(json_object_array_get_idx(threads, i), "no", &thread) &&
                            json_object_get_int64(thread) == n)
                            op = true;
                json_object_put(info);
                pic->table = dsa_table(a, site, op ? "thread" : "post");
                pic->id = xasprintf("%s.%lld", lb->label, (long long)n);
                const char *ext = strrchr(pic->name, '.');
                pic->url = fixture_url(&a->fx, "/%s/media/%s/%s%s", site, lb->label, json_object_get_string(tim),
                                       ext ? ext : "");
            }
            json_object_put(o);
        }
        free(folder);
        free(dir);
        free(label);
    }
    for (size_t k = 0; k < p->npics; k++) {
        dsa_pic *pic = &p->pics[k];
        if (pic->id) continue;
        const char *site = dsa_sites[dsa_labels[pic->label].site].name;
        pic->table = dsa_table(a, site, "image");
        pic->id =
            dsa_labels[pic->label].site == DSA_NSFW ? xstrndup(pic->name, strcspn(pic->name, ".")) : xstrdup(pic->name);
        pic->url = fixture_url(&a->fx, "/imgapi/%s/i/%s", site, pic->name);
    }
}

static void dsa_write_sites(dsarchive *a) {
    dsa_priv *p = a->priv;
    json_object *sites = json_object_new_array();
    for (int s = 0; s < DSA_NSITES; s++) {
        json_object *o = json_object_new_object(), *boards = json_object_new_array();
        json_object_object_add(o, "name", json_object_new_string(dsa_sites[s].name));
        json_object_object_add(o, "kind", json_object_new_string(dsa_sites[s].kind));
        if (s == DSA_CHAN) {
            char *api = fixture_url(&a->fx, "/%s", dsa_sites[s].name),
                 *media = fixture_url(&a->fx, "/%s/media", dsa_sites[s].name);
            json_object_object_add(o, "api", json_object_new_string(api));
            json_object_object_add(o, "media", json_object_new_string(media));
            free(api);
            free(media);
        } else {
            json_object_object_add(o, "api", json_object_new_string(p->api_url[s]));
            json_object_object_add(o, "amount", json_object_new_int(100));
        }
        for (size_t l = 0; l < DSA_NLABELS; l++)
            if (dsa_labels[l].site == s) json_object_array_add(boards, json_object_new_string(dsa_labels[l].label));
        json_object_object_add(o, "boards", boards);
        json_object_object_add(o, "rps", json_object_new_int(200));
        json_object_array_add(sites, o);
    }
    json_object *top = json_object_new_object();
    json_object_object_add(top, "user_agent",
                           json_object_new_string("imgfeed-test/1 (+https://example.invalid/contact)"));
    json_object_object_add(top, "sites", sites);
    if (json_object_to_file_ext(a->sites_file, top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0)
        fail_msg("cannot write %s", a->sites_file);
    json_object_put(top);
}

/* --- the programs --- */

static void dsa_fail_logs(dsarchive *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dsa_fail_logs(dsarchive *a, const char *fmt, ...) {
    dsa_priv *p = a->priv;
    proc *all[] = {&p->crawler, &p->hasher, &p->archiver};
    for (size_t i = 0; i < 3; i++)
        if (all[i]->log) proc_print_log(all[i]);
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fail_msg("%s", msg);
}

/* Every picture of the round so far is a row with its url and sha1?  Returns
 * how many are; fails the test on a row that disagrees with the truth. */
static size_t dsa_rows_done(dsarchive *a, bool final) {
    dsa_priv *p = a->priv;
    size_t done = 0;
    for (size_t k = 0; k < p->npics; k++) {
        dsa_pic *pic = &p->pics[k];
        const char *values[] = {pic->table};
        PGresult *res = pgtest_query("SELECT to_regclass(quote_ident($1)) IS NOT NULL", 1, values);
        bool exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!exists) continue;
        char *sql = xasprintf("SELECT data->'_urls'->>0, data->'_img'->0->>'sha1', data->'_img'->0->>'error' "
                              "FROM \"%s\" WHERE id = $1",
                              pic->table);
        const char *idv[] = {pic->id};
        res = pgtest_query(sql, 1, idv);
        free(sql);
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
            if (strcmp(PQgetvalue(res, 0, 0), pic->url) != 0 || strcmp(PQgetvalue(res, 0, 1), pic->sha1) != 0)
                dsa_fail_logs(a, "%s %s: _urls[0] %s, sha1 %s; the truth: %s, %s", pic->table, pic->id,
                              PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), pic->url, pic->sha1);
            done++;
        } else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 2)) {
            dsa_fail_logs(a, "%s %s: its picture failed: %s", pic->table, pic->id, PQgetvalue(res, 0, 2));
        } else if (final) {
            fprintf(stderr, "dsarchive: %s %s (%s) is missing\n", pic->table, pic->id, pic->url);
        }
        PQclear(res);
    }
    return done;
}

static void dsa_start(dsarchive *a, proc *pr, const char *program, const char *const *args) {
    char *path = xasprintf("%s/%s", strchr(program, '-') + 1, program);
    /* "imgfeed-hasher" -> "hasher/imgfeed-hasher" */
    proc_start_imgfeed(pr, path, a->exchange, args);
    free(path);
}

/* One crawl through the running daemons, until every picture is a row. */
static void dsa_crawl(dsarchive *a) {
    dsa_priv *p = a->priv;
    const char *arch_args[] = {"--flush-interval", "200ms", NULL};
    const char *hash_args[] = {"--allow-net", "127.0.0.0/8", "--threads", "2", "--rps-per-host",
                               "0",           "--save-dir",  a->save_dir, NULL};
    const char *crawl_args[] = {"--once",     "--sites",   a->sites_file, "--state-dir",
                                a->state_dir, "--retries", "1",           NULL};
    dsa_start(a, &p->archiver, "imgfeed-archiver", arch_args);
    dsa_start(a, &p->hasher, "imgfeed-hasher", hash_args);
    dsa_start(a, &p->crawler, "imgfeed-crawler", crawl_args);
    int status = proc_wait(&p->crawler);
    if (status != 0) dsa_fail_logs(a, "imgfeed-crawler --once exited with %d", status);
    int64_t deadline = time_mono_ns() + (int64_t)DSA_GUARD_MS * TIME_NS_PER_MS;
    size_t done;
    while ((done = dsa_rows_done(a, false)) < p->npics) {
        if (proc_exited(&p->hasher) || proc_exited(&p->archiver))
            dsa_fail_logs(a, "the hasher or the archiver exited with %zu of %zu pictures archived", done, p->npics);
        if (time_mono_ns() > deadline) {
            dsa_rows_done(a, true);
            dsa_fail_logs(a, "%zu of %zu pictures archived", done, p->npics);
        }
        time_sleep_ns(100 * TIME_NS_PER_MS);
    }
    proc_stop(&p->hasher);
    proc_stop(&p->archiver);
    proc_release(&p->crawler);
    proc_release(&p->hasher);
    proc_release(&p->archiver);
}

/* --- the truth --- */

static void dsa_write_truth(dsarchive *a) {
    dsa_priv *p = a->priv;
    json_object *arr = json_object_new_array();
    for (size_t k = 0; k < p->npics; k++) {
        dsa_pic *pic = &p->pics[k];
        const dsa_label *lb = &dsa_labels[pic->label];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "table", json_object_new_string(pic->table));
        json_object_object_add(o, "id", json_object_new_string(pic->id));
        json_object_object_add(o, "image", json_object_new_int(0));
        json_object_object_add(o, "url", json_object_new_string(pic->url));
        json_object_object_add(o, "label", json_object_new_string(lb->label));
        json_object_object_add(o, "site", json_object_new_string(dsa_sites[lb->site].name));
        json_object_object_add(o, "kind", json_object_new_string(dsa_sites[lb->site].kind));
        json_object_object_add(o, "sha1", json_object_new_string(pic->sha1));
        json_object_object_add(o, "width", json_object_new_int(pic->w));
        json_object_object_add(o, "height", json_object_new_int(pic->h));
        json_object_object_add(o, "format", json_object_new_string(pic->format));
        json_object_object_add(o, "group", json_object_new_int(pic->group));
        json_object_object_add(o, "variant", json_object_new_string(pic->variant));
        json_object_object_add(o, "round", json_object_new_int(pic->round));
        json_object_object_add(o, "nsfw", json_object_new_boolean(lb->site == DSA_NSFW));
        json_object_array_add(arr, o);
    }
    json_object *top = json_object_new_object();
    json_object_object_add(top, "pictures", arr);
    char *tmp = xasprintf("%s.tmp", a->truth_path);
    if (json_object_to_file_ext(tmp, top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0 ||
        rename(tmp, a->truth_path) != 0)
        fail_msg("cannot write %s: %s", a->truth_path, strerror(errno));
    free(tmp);
    json_object_put(top);
    a->pictures = p->npics;
}

/* --- the API --- */

char *dsa_table(const dsarchive *a, const char *site, const char *type) {
    return xasprintf("%s_%s_%s", a->exchange, site, type);
}

int dsa_fill(dsarchive *a, const char *workdir) {
    static int serial;
    memset(a, 0, sizeof *a);
    dsa_priv *p = xcalloc(1, sizeof *p);
    a->priv = p;
    snprintf(a->exchange, sizeof a->exchange, "ds%x%c", (unsigned)getpid(), 'a' + serial++ % 26);
    a->workdir = xstrdup(workdir);
    a->save_dir = xasprintf("%s/save", workdir);
    a->truth_path = xasprintf("%s/truth.json", workdir);
    a->sites_file = xasprintf("%s/sites.json", workdir);
    a->state_dir = xasprintf("%s/state", workdir);
    char *pool = xasprintf("%s/pool", workdir);
    dsa_mkdir(pool);
    for (int s = 0; s < DSA_NSITES; s++) {
        char *d = xasprintf("%s/%s", pool, dsa_sites[s].name);
        dsa_mkdir(d);
        free(d);
    }
    for (size_t l = 0; l < DSA_NLABELS; l++) {
        char *d = dsa_folder(a, (int)l);
        dsa_mkdir(d);
        free(d);
    }
    free(pool);
    dsa_mkdir(a->state_dir);
    dsa_make_round(a, 1);

    fixture_start(&a->fx);
    for (int s = 0; s < DSA_NSITES; s++) {
        if (s == DSA_CHAN) {
            json_object_put(fixture_control(&a->fx, "chan/site?name=%s&kind=4chan", dsa_sites[s].name));
            continue;
        }
        json_object *o = fixture_control(&a->fx, "imgapi/site?name=%s&kind=%s", dsa_sites[s].name, dsa_sites[s].kind);
        p->api_url[s] = xstrdup(dsa_string(o, "api"));
        json_object_put(o);
    }
    dsa_serve(a);
    dsa_write_sites(a);
    dsa_crawl(a);
    dsa_write_truth(a);
    a->round = 1;
    return 0;
}

int dsa_grow(dsarchive *a) {
    if (a->round != 1) fail_msg("dsa_grow after round %d", a->round);
    dsa_make_round(a, 2);
    dsa_serve(a);
    dsa_crawl(a);
    dsa_write_truth(a);
    a->round = 2;
    return 0;
}

void dsa_release(dsarchive *a) {
    dsa_priv *p = a->priv;
    if (p) {
        proc *all[] = {&p->crawler, &p->hasher, &p->archiver};
        for (size_t i = 0; i < 3; i++) {
            if (all[i]->pid > 0) proc_kill(all[i]);
            proc_release(all[i]);
        }
        for (size_t k = 0; k < p->npics; k++) {
            dsa_pic *pic = &p->pics[k];
            free(pic->name);
            free(pic->sha1);
            free(pic->table);
            free(pic->id);
            free(pic->url);
        }
        for (int s = 0; s < DSA_NSITES; s++)
            free(p->api_url[s]);
        free(p);
    }
    fixture_stop(&a->fx);
    if (a->exchange[0]) {
        mq_admin_delete_topology(a->exchange, NULL);
        char *prefix = xasprintf("%s_", a->exchange);
        pgtest_drop_tables(prefix);
        free(prefix);
    }
    free(a->save_dir);
    free(a->workdir);
    free(a->truth_path);
    free(a->sites_file);
    free(a->state_dir);
    memset(a, 0, sizeof *a);
}
