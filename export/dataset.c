/* dataset.c -- `imgfeed-export dataset`; see dataset.h for the steps.
 *
 * Memory.  The archive is streamed (a cursor, FETCH of DS_FETCH rows); what
 * grows with it is, per picture that passes the filters, a 56-byte record
 * (ds_image) and its entry in the search catalog (its phash in the Hamming
 * index, its item and id: about 150 bytes measured), and while the groups
 * are made 4 more arrays of 4 bytes and a sort of 24 bytes a picture: about
 * 280 bytes a picture at the peak (bench/export.sh), on top of the
 * catalog's fixed 7 MiB.  Everything else is bounded: one fetched batch of
 * rows, at most DS_WINDOW manifest rows waiting for their downloads, at
 * most --max-transfers downloads of --max-bytes.
 *
 * Order.  Both passes read the same snapshot in the same order: tables by
 * name, each table's rows as PostgreSQL stores them (a plain scan from the
 * first block: no synchronized scans, no parallel workers; no ORDER BY,
 * whose sort of the whole table would spill to disk twice), a row's `_img`
 * entries by url number.  Each entry is classified by the same function
 * (ds_entry_class), so the N-th candidate of the second pass is record N
 * of the first, which is also image N of the catalog; its sha1 is checked
 * to be sure.  The rule's last tie-break, (table, id, image) in byte order,
 * reads the ids from the catalog.  The manifest is written in that order
 * too: rows waiting for a download hold back those after them (a window of
 * DS_WINDOW), so the manifest of a run is the same whatever the network
 * does.
 */
#define _GNU_SOURCE
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "catalog.h"
#include "config.h"
#include "dataset_files.h"
#include "dataset_label.h"
#include "dataset_out.h"
#include "dupes.h"
#include "entry.h"
#include "fetch.h"
#include "imghash/format.h"
#include "itemview.h"
#include "log.h"
#include "netguard.h"
#include "pgconn.h"
#include "ratelimit.h"
#include "savedir.h"
#include "sig.h"
#include "topic.h"
#include "xalloc.h"

#define DS_FETCH 500      /* rows a FETCH brings */
#define DS_WINDOW 1024    /* manifest rows held back by pending downloads */
#define DS_LIST_MAX 256   /* values of one list filter */
#define DS_TOPICS_MAX 256 /* --nsfw-topics */
#define DS_NONE UINT32_MAX

/* --- settings --- */

typedef struct ds_settings {
    char *pg, *exchange, *out, *save_dir, *label_field, *split, *since, *until, *nsfw_topics, *missing;
    char *site, *kind, *label, *format; /* shown by --help; the values come from ds_lists */
    char *allow_net, *user_agent, *log_level;
    long min_width, min_height, max_distance, max_transfers;
    bool nsfw, copy, allow_private;
    double rps;
    int64_t max_bytes, timeout_ms;
} ds_settings;

static const char *const ds_missing_modes[] = {"fetch", "list", NULL};

static bool ds_parse_time(const char *s, int64_t *out);
static bool ds_parse_split(const char *s, double f[3]);

static bool ds_check_time(const char *value, char *why, size_t whylen) {
    int64_t t;
    if (ds_parse_time(value, &t)) return true;
    snprintf(why, whylen, "not a time: UNIX seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
    return false;
}

static bool ds_check_split(const char *value, char *why, size_t whylen) {
    double f[3];
    if (ds_parse_split(value, f)) return true;
    snprintf(why, whylen, "three fractions TRAIN,VAL,TEST of at least 0 that add up to 1, such as 0.8,0.1,0.1");
    return false;
}

static bool ds_check_field(const char *value, char *why, size_t whylen) {
    if (*value && value[0] != '.' && value[strlen(value) - 1] != '.' && !strstr(value, "..")) return true;
    snprintf(why, whylen, "a field name, or keys joined by dots (tags.0.name)");
    return false;
}

static const cfg_option ds_options[] = {
    CFG_ARCHIVE_OPTIONS(ds_settings, pg, exchange, "the exchange whose tables are read"),
    {.name = "out",
     .env = "IMGFEED_EXPORT_OUT",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, out),
     .metavar = "DIR",
     .help = "the dataset folder (required); a second run adds what is new"},
    {.name = "save-dir",
     .env = "IMGFEED_SAVE_DIR",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, save_dir),
     .metavar = "DIR",
     .help = "the hasher's --save-dir, where the pictures are taken from (unset: downloaded)"},
    {.name = "label-field",
     .env = "IMGFEED_DATASET_LABEL_FIELD",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, label_field),
     .defval = "_board",
     .metavar = "FIELD",
     .check = ds_check_field,
     .help = "the item field that is the label: a key, or keys joined by dots, numbers indexing arrays "
             "(tags.0.name)"},
    {.name = "split",
     .env = "IMGFEED_DATASET_SPLIT",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, split),
     .defval = "0.8,0.1,0.1",
     .metavar = "T,V,T",
     .check = ds_check_split,
     .help = "fractions of train, val and test; a picture's split follows from its sha1 alone"},
    {.name = "site",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, site),
     .metavar = "SITE[,SITE...]",
     .help = "only these sites (_chan); repeatable"},
    {.name = "kind",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, kind),
     .metavar = "TYPE[,TYPE...]",
     .help = "only items of these types (_type: thread, post, image, submission); repeatable"},
    {.name = "label",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, label),
     .metavar = "LABEL",
     .help = "only this label (as the archive holds it); repeat for more"},
    {.name = "format",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, format),
     .metavar = "FMT[,FMT...]",
     .help = "only these formats (jpeg, png, gif, webp, bmp, tiff, avif, heif); repeatable"},
    {.name = "min-width",
     .env = "IMGFEED_DATASET_MIN_WIDTH",
     .type = CFG_INT,
     .offset = offsetof(ds_settings, min_width),
     .defval = "0",
     .min = 0,
     .max = 1e9,
     .help = "only pictures at least this wide"},
    {.name = "min-height",
     .env = "IMGFEED_DATASET_MIN_HEIGHT",
     .type = CFG_INT,
     .offset = offsetof(ds_settings, min_height),
     .defval = "0",
     .min = 0,
     .max = 1e9,
     .help = "only pictures at least this high"},
    {.name = "since",
     .env = "IMGFEED_DATASET_SINCE",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, since),
     .metavar = "TIME",
     .check = ds_check_time,
     .help = "only items posted at or after TIME (the site's time, else _crawled_at)"},
    {.name = "until",
     .env = "IMGFEED_DATASET_UNTIL",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, until),
     .metavar = "TIME",
     .check = ds_check_time,
     .help = "only items posted before TIME"},
    {.name = "nsfw",
     .env = "IMGFEED_DATASET_NSFW",
     .type = CFG_BOOL,
     .offset = offsetof(ds_settings, nsfw),
     .defval = "false",
     .help = "also take pictures of items that are not safe for work (left out by default)"},
    {.name = "nsfw-topics",
     .env = "IMGFEED_DATASET_NSFW_TOPICS",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, nsfw_topics),
     .defval = ITEMVIEW_NSFW_TOPICS,
     .metavar = "KEYS",
     .help = "routing keys of boards not safe for work, as binding keys, comma-separated (the live view's)"},
    {.name = "max-distance",
     .env = "IMGFEED_DATASET_MAX_DISTANCE",
     .type = CFG_INT,
     .offset = offsetof(ds_settings, max_distance),
     .defval = "10",
     .min = 0,
     .max = 1024,
     .help = "pictures whose phashes are at most this many bits apart (of 144) are near duplicates"},
    {.name = "missing",
     .env = "IMGFEED_DATASET_MISSING",
     .type = CFG_CHOICE,
     .offset = offsetof(ds_settings, missing),
     .defval = "fetch",
     .choices = ds_missing_modes,
     .help = "a picture missing or damaged in the save dir: download it, or only list it in missing.jsonl"},
    {.name = "copy",
     .env = "IMGFEED_DATASET_COPY",
     .type = CFG_BOOL,
     .offset = offsetof(ds_settings, copy),
     .defval = "false",
     .help = "copy the pictures rather than hard-linking them from the save dir"},
    {.name = "rps",
     .env = "IMGFEED_DATASET_RPS",
     .type = CFG_DOUBLE,
     .offset = offsetof(ds_settings, rps),
     .defval = "1",
     .min = 0,
     .max = 1e6,
     .help = "downloads per second per host (0: unlimited)"},
    {.name = "max-transfers",
     .env = "IMGFEED_DATASET_MAX_TRANSFERS",
     .type = CFG_INT,
     .offset = offsetof(ds_settings, max_transfers),
     .defval = "4",
     .min = 1,
     .max = 256,
     .help = "downloads at once"},
    {.name = "max-bytes",
     .env = "IMGFEED_MAX_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(ds_settings, max_bytes),
     .defval = "64MiB",
     .min = 1,
     .max = 4294967296.0,
     .help = "largest file downloaded"},
    {.name = "download-timeout",
     .env = "IMGFEED_DOWNLOAD_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(ds_settings, timeout_ms),
     .defval = "60s",
     .min = 1,
     .max = 3600000,
     .help = "one download attempt, connecting to last byte"},
    {.name = "user-agent",
     .env = "IMGFEED_USER_AGENT",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, user_agent),
     .defval = "imgfeed-export",
     .metavar = "TEXT",
     .help = "User-Agent of the downloads"},
    {.name = "allow-private",
     .env = "IMGFEED_ALLOW_PRIVATE",
     .type = CFG_BOOL,
     .offset = offsetof(ds_settings, allow_private),
     .defval = "false",
     .help = "also download from loopback, private and link-local addresses (tests only)"},
    {.name = "allow-net",
     .env = "IMGFEED_ALLOW_NET",
     .type = CFG_STRING,
     .offset = offsetof(ds_settings, allow_net),
     .metavar = "CIDRS",
     .check = netguard_check_list,
     .help = "networks downloaded from despite the private-address guard, comma-separated"},
    {.name = "log-level",
     .env = "IMGFEED_LOG_LEVEL",
     .type = CFG_CHOICE,
     .offset = offsetof(ds_settings, log_level),
     .defval = "info",
     .choices = cfg_log_levels,
     .help = "least severe level logged"},
    {0},
};

static const cfg_program ds_program = {
    "imgfeed-export dataset",
    "--out DIR [OPTION]...",
    "Exports the archive's pictures as a training set: DIR/<split>/<label>/<sha1>.<ext> (ImageFolder),\n"
    "each picture once (exact and near duplicates kept once), with manifest.jsonl, manifest.csv,\n"
    "missing.jsonl and summary.json.  A second run over a grown archive adds what is new.",
    ds_options,
};

/* The values of the list filters, taken from the command line (every
 * occurrence; --site, --kind and --format also split at commas). */
typedef struct ds_list {
    const char *v[DS_LIST_MAX];
    size_t n;
} ds_list;

typedef struct ds_lists {
    ds_list site, kind, label, format;
    char *store; /* the split copies */
} ds_lists;

/* --- time and split --- */

static bool ds_parse_time(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && errno == 0) {
        *out = v;
        return true;
    }
    struct tm tm;
    static const char *const forms[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        memset(&tm, 0, sizeof tm);
        const char *e = strptime(s, forms[i], &tm);
        if (e && !*e) {
            *out = (int64_t)timegm(&tm);
            return true;
        }
    }
    return false;
}

static bool ds_parse_split(const char *s, double f[3]) {
    char *end;
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        f[i] = strtod(p, &end);
        if (end == p || errno || !(f[i] >= 0 && f[i] <= 1)) return false;
        p = end;
        if (i < 2) {
            if (*p != ',') return false;
            p++;
        }
    }
    return !*p && fabs(f[0] + f[1] + f[2] - 1.0) < 1e-9;
}

/* --- the run --- */

/* One picture that passed the filters (the first pass's record). */
typedef struct ds_image {
    unsigned char sha1[20];
    uint32_t label; /* index into ds.labels */
    uint32_t width, height;
    int64_t size, time;
    uint32_t dups; /* when kept: the group's pictures it stands for */
    uint8_t flags;
} ds_image;

enum { DS_KEPT = 1, DS_EXPORTED = 2 };

/* A label: its text, folder, and the count per split of placed pictures. */
typedef struct ds_label {
    char *text;
    size_t len;
    char *dir;
    uint64_t placed[DATASET_SPLITS];
} ds_label;

typedef enum ds_class {
    DS_CANDIDATE,
    DS_ERROR,    /* an entry with "error", or without a usable sha1, phash or size */
    DS_VIDEO,    /* no perceptual hash: not for a picture set (counted as filtered) */
    DS_FILTERED, /* left out by a filter (or NSFW) */
} ds_class;

/* One `_img` entry of the item at hand. */
typedef struct ds_entry {
    json_object *o;
    uint32_t n;
    ds_class cls;
    unsigned char sha1[20];
    catalog_image cimg;
    int64_t width, height, size;
    const char *format;
} ds_entry;

/* The item at hand, as both passes read it. */
typedef struct ds_item {
    const char *table;
    const char *id;
    json_object *item;
    const char *label;
    size_t label_len;
    char *label_store;
    const char *site, *type, *board;
    char *key;
    int64_t time;
    bool nsfw, filtered;
    ds_entry *e;
    size_t ne, cap;
} ds_item;

/* A manifest row on its way out (the ordered window). */
typedef enum ds_slot_state { DS_SLOT_WAITING, DS_SLOT_PLACED, DS_SLOT_MISSING } ds_slot_state;

typedef struct ds_slot {
    ds_slot_state state;
    json_object *row;
    char *rel;
    char *why;
    unsigned char sha1[20];
    uint32_t label;
    dataset_split split;
} ds_slot;

typedef struct ds_counts {
    uint64_t rows, rows_without_img, entries, videos, candidates, groups;
    uint64_t exact, near, filtered, missing, error;
    uint64_t present, linked, copied, downloaded, swept;
} ds_counts;

typedef struct ds {
    const ds_settings *s;
    const ds_lists *lists;
    double frac[3];
    int64_t since, until;
    const char *topics[DS_TOPICS_MAX + 1];
    char *topics_store;
    char **field_path; /* --label-field split at dots */
    size_t field_depth;

    PGconn *conn;
    char **tables, **prefixes;
    size_t ntables;

    ds_image *img;
    size_t n, cap;
    ds_label *labels;
    size_t nlabels, labels_cap;
    uint32_t *label_slots; /* open addressing over labels: index + 1 */
    size_t label_slots_cap;

    catalog *cat;
    dsout_prev prev;
    dsf files;
    dsout out;
    fetch *fetch;
    ratelimit *rl;
    netguard *guard;
    ds_slot window[DS_WINDOW];
    size_t head, count;
    size_t cursor; /* record index in the second pass */

    uint64_t *placed; /* hashes of the placed rows' paths, for the sweep */
    size_t nplaced, placed_cap;

    ds_counts c;
    bool failed;
    char why[DSF_WHY_MAX];
} ds;

static void ds_fail(ds *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ds_fail(ds *d, const char *fmt, ...) {
    if (d->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
    d->failed = true;
}

/* --- labels --- */

static uint64_t ds_hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint32_t ds_label_intern(ds *d, const char *text, size_t len) {
    if (2 * (d->nlabels + 1) > d->label_slots_cap) {
        size_t cap = d->label_slots_cap ? 2 * d->label_slots_cap : 64;
        uint32_t *s = xcalloc(cap, sizeof *s);
        for (size_t i = 0; i < d->nlabels; i++) {
            size_t j = ds_hash_bytes(d->labels[i].text, d->labels[i].len) & (cap - 1);
            while (s[j])
                j = (j + 1) & (cap - 1);
            s[j] = (uint32_t)i + 1;
        }
        free(d->label_slots);
        d->label_slots = s;
        d->label_slots_cap = cap;
    }
    size_t j = ds_hash_bytes(text, len) & (d->label_slots_cap - 1);
    while (d->label_slots[j]) {
        ds_label *l = &d->labels[d->label_slots[j] - 1];
        if (l->len == len && memcmp(l->text, text, len) == 0) return d->label_slots[j] - 1;
        j = (j + 1) & (d->label_slots_cap - 1);
    }
    if (d->nlabels == d->labels_cap) {
        d->labels_cap = d->labels_cap ? 2 * d->labels_cap : 16;
        d->labels = xrealloc(d->labels, d->labels_cap * sizeof *d->labels);
    }
    ds_label *l = &d->labels[d->nlabels];
    memset(l, 0, sizeof *l);
    l->text = xstrndup(text, len);
    l->len = len;
    l->dir = dataset_label_dir(text, len);
    d->label_slots[j] = (uint32_t)d->nlabels + 1;
    return (uint32_t)d->nlabels++;
}

/* --- reading an item --- */

static bool ds_list_has(const ds_list *l, const char *v, size_t len) {
    if (!l->n) return true;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], v, len) == 0) return true;
    return false;
}

/* The member of ITEM that --label-field names, or NULL. */
static json_object *ds_field(const ds *d, json_object *item) {
    json_object *v = item;
    for (size_t i = 0; i < d->field_depth && v; i++) {
        const char *k = d->field_path[i];
        if (json_object_is_type(v, json_type_object)) {
            v = itemview_member(v, k);
        } else if (json_object_is_type(v, json_type_array) && *k && strspn(k, "0123456789") == strlen(k) &&
                   strlen(k) < 10) {
            size_t at = (size_t)strtoul(k, NULL, 10);
            v = at < json_object_array_length(v) ? json_object_array_get_idx(v, at) : NULL;
        } else {
            v = NULL;
        }
    }
    return v;
}

static int ds_entry_cmp(const void *a, const void *b) {
    const ds_entry *x = a, *y = b;
    return x->n < y->n ? -1 : x->n > y->n;
}

static int64_t ds_int_member(json_object *o, const char *key) {
    json_object *v = itemview_member(o, key);
    return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/* What entry E of item IT is (both passes). */
static void ds_entry_class(const ds *d, const ds_item *it, ds_entry *e) {
    json_object *o = e->o;
    if (itemview_member(o, "error")) {
        e->cls = DS_ERROR;
        return;
    }
    e->format = itemview_string(o, "format");
    if (e->format && ih_format_is_video(ih_format_from_name(e->format))) {
        e->cls = DS_VIDEO;
        return;
    }
    const char *sha1 = itemview_string(o, "sha1"), *phash = itemview_string(o, "phash");
    e->width = ds_int_member(o, "width");
    e->height = ds_int_member(o, "height");
    e->size = ds_int_member(o, "size");
    memset(&e->cimg, 0, sizeof e->cimg);
    e->cimg.n = e->n;
    if (!sha1 || !phash || !e->format || e->width <= 0 || e->height <= 0 || e->size < 0 || e->width > UINT32_MAX ||
        e->height > UINT32_MAX || entry_hex_decode(sha1, e->sha1, 20) != 0 ||
        entry_hash_decode(phash, e->cimg.phash, &e->cimg.phash_len) != 0 ||
        ih_format_from_name(e->format) == IH_FORMAT_UNKNOWN) {
        e->cls = DS_ERROR;
        return;
    }
    if (it->filtered || e->width < d->s->min_width || e->height < d->s->min_height ||
        !ds_list_has(&d->lists->format, e->format, strlen(e->format))) {
        e->cls = DS_FILTERED;
        return;
    }
    e->cls = DS_CANDIDATE;
}

static void ds_item_release(ds_item *it) {
    json_object_put(it->item);
    it->item = NULL;
    free(it->label_store);
    it->label_store = NULL;
    free(it->key);
    it->key = NULL;
    it->ne = 0;
}

/* Parse one row into IT (its entries classified).  False for a row that is
 * not a JSON object (counted by the caller). */
static bool ds_item_read(const ds *d, ds_item *it, const char *table, const char *prefix, const char *id,
                         const char *text) {
    it->table = table;
    it->id = id;
    it->item = json_tokener_parse(text);
    it->ne = 0;
    if (!json_object_is_type(it->item, json_type_object)) return false;
    json_object *lv = ds_field(d, it->item);
    if (json_object_is_type(lv, json_type_string)) {
        it->label = json_object_get_string(lv);
        it->label_len = (size_t)json_object_get_string_len(lv);
    } else if (json_object_is_type(lv, json_type_int) || json_object_is_type(lv, json_type_double) ||
               json_object_is_type(lv, json_type_boolean)) {
        it->label_store = xstrdup(json_object_to_json_string_ext(lv, JSON_C_TO_STRING_PLAIN));
        it->label = it->label_store;
        it->label_len = strlen(it->label_store);
    } else {
        it->label = "";
        it->label_len = 0;
    }
    it->site = itemview_string(it->item, "_chan");
    it->type = itemview_string(it->item, "_type");
    it->board = itemview_string(it->item, "_board");
    it->key = xasprintf("%s.%s", prefix, it->board ? it->board : "");
    it->time = itemview_time(it->item);
    it->nsfw = itemview_nsfw(it->item, it->key, d->topics);
    it->filtered = !ds_list_has(&d->lists->site, it->site ? it->site : "", it->site ? strlen(it->site) : 0) ||
                   !ds_list_has(&d->lists->kind, it->type ? it->type : "", it->type ? strlen(it->type) : 0) ||
                   !ds_list_has(&d->lists->label, it->label, it->label_len) || it->time < d->since ||
                   it->time >= d->until || (it->nsfw && !d->s->nsfw);
    json_object *img = itemview_member(it->item, "_img");
    size_t n = json_object_is_type(img, json_type_array) ? json_object_array_length(img) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(img, i);
        int64_t url = json_object_is_type(e, json_type_object) ? ds_int_member(e, "url") : -1;
        if (it->ne == it->cap) {
            it->cap = it->cap ? 2 * it->cap : 8;
            it->e = xrealloc(it->e, it->cap * sizeof *it->e);
        }
        ds_entry *en = &it->e[it->ne++];
        memset(en, 0, sizeof *en);
        en->o = e;
        en->n = url >= 0 && url <= INT32_MAX ? (uint32_t)url : UINT32_MAX;
        if (url < 0 || url > INT32_MAX) en->cls = DS_ERROR;
    }
    qsort(it->e, it->ne, sizeof *it->e, ds_entry_cmp);
    for (size_t i = 0; i < it->ne; i++) {
        if (it->e[i].n == UINT32_MAX) continue;
        if (i > 0 && it->e[i - 1].n == it->e[i].n) { /* the same url twice: the first one counts */
            it->e[i].cls = DS_ERROR;
            continue;
        }
        ds_entry_class(d, it, &it->e[i]);
    }
    return true;
}

/* --- reading the archive --- */

static PGresult *ds_exec(ds *d, const char *sql, ExecStatusType want) {
    PGresult *r = PQexec(d->conn, sql);
    if (PQresultStatus(r) != want) {
        char err[512];
        pgconn_error_text(PQresultErrorMessage(r), err, sizeof err);
        ds_fail(d, "PostgreSQL: %s", err);
        PQclear(r);
        return NULL;
    }
    return r;
}

static int ds_connect(ds *d) {
    char err[512];
    d->conn = pgconn_open(d->s->pg, "imgfeed-export", err, sizeof err);
    if (!d->conn) {
        ds_fail(d, "cannot connect to PostgreSQL: %s", err);
        return -1;
    }
    /* both passes must see the rows in the same order: one snapshot, and a
     * plain scan of each table from its first block (no synchronized scan
     * starting where another one is, no parallel workers) */
    PGresult *r = ds_exec(d,
                          "SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0; "
                          "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                          PGRES_COMMAND_OK);
    if (!r) return -1;
    PQclear(r);
    const char *params[1] = {d->s->exchange};
    r = PQexecParams(
        d->conn,
        "SELECT name, key_prefix FROM imgfeed_tables WHERE exchange = $1 AND to_regclass(quote_ident(name)) "
        "IS NOT NULL ORDER BY name COLLATE \"C\"",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) { /* no imgfeed_tables: nothing archived yet */
            PQclear(r);
            log_info("the archive has no tables yet (no imgfeed_tables)");
            r = ds_exec(d, "ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK);
            if (!r) return -1;
            PQclear(r);
            return 0;
        }
        pgconn_error_text(PQresultErrorMessage(r), err, sizeof err);
        ds_fail(d, "cannot list the archive's tables: %s", err);
        PQclear(r);
        return -1;
    }
    d->ntables = (size_t)PQntuples(r);
    d->tables = xcalloc(d->ntables + 1, sizeof *d->tables);
    d->prefixes = xcalloc(d->ntables + 1, sizeof *d->prefixes);
    for (size_t i = 0; i < d->ntables; i++) {
        d->tables[i] = xstrdup(PQgetvalue(r, (int)i, 0));
        d->prefixes[i] = xstrdup(PQgetvalue(r, (int)i, 1));
    }
    PQclear(r);
    return 0;
}

typedef void (*ds_item_fn)(ds *d, ds_item *it);

/* Every row of every table, in order, to FN. */
static int ds_walk(ds *d, ds_item_fn fn, const char *pass) {
    ds_item it = {0};
    for (size_t t = 0; t < d->ntables && !d->failed; t++) {
        char *q = PQescapeIdentifier(d->conn, d->tables[t], strlen(d->tables[t]));
        char *sql = xasprintf("DECLARE ds_rows NO SCROLL CURSOR FOR SELECT id, data::text FROM %s", q ? q : "\"\"");
        PQfreemem(q);
        PGresult *r = ds_exec(d, sql, PGRES_COMMAND_OK);
        free(sql);
        if (!r) break;
        PQclear(r);
        uint64_t rows = 0;
        for (;;) {
            if (sig_stop_requested()) {
                ds_fail(d, "stopped");
                break;
            }
            char fetch_sql[64];
            snprintf(fetch_sql, sizeof fetch_sql, "FETCH %d FROM ds_rows", DS_FETCH);
            r = ds_exec(d, fetch_sql, PGRES_TUPLES_OK);
            if (!r) break;
            int n = PQntuples(r);
            for (int i = 0; i < n && !d->failed; i++) {
                bool ok = ds_item_read(d, &it, d->tables[t], d->prefixes[t], PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
                if (ok) fn(d, &it);
                ds_item_release(&it);
            }
            rows += (uint64_t)n;
            PQclear(r);
            if (n < DS_FETCH || d->failed) break;
            if (rows % 100000 < DS_FETCH) log_info("%s: %s: %" PRIu64 " rows", pass, d->tables[t], rows);
        }
        r = ds_exec(d, "CLOSE ds_rows", PGRES_COMMAND_OK);
        if (r) PQclear(r);
        if (!d->failed) log_info("%s: table %s: %" PRIu64 " rows", pass, d->tables[t], rows);
    }
    free(it.e);
    return d->failed ? -1 : 0;
}

/* --- first pass: the candidates --- */

static void ds_first(ds *d, ds_item *it) {
    d->c.rows++;
    if (!json_object_is_type(itemview_member(it->item, "_img"), json_type_array)) d->c.rows_without_img++;
    catalog_image *imgs = NULL;
    size_t k = 0;
    for (size_t i = 0; i < it->ne; i++) {
        ds_entry *e = &it->e[i];
        d->c.entries++;
        switch (e->cls) {
        case DS_ERROR: d->c.error++; continue;
        case DS_VIDEO:
            d->c.videos++;
            d->c.filtered++;
            continue;
        case DS_FILTERED: d->c.filtered++; continue;
        case DS_CANDIDATE: break;
        }
        if (d->n == UINT32_MAX - 1) {
            ds_fail(d, "more than 4 billion pictures: narrow the set with the filters");
            break;
        }
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap + d->cap / 2 : 4096;
            d->img = xrealloc(d->img, d->cap * sizeof *d->img);
        }
        ds_image *im = &d->img[d->n++];
        memset(im, 0, sizeof *im);
        memcpy(im->sha1, e->sha1, 20);
        im->label = ds_label_intern(d, it->label, it->label_len);
        im->width = (uint32_t)e->width;
        im->height = (uint32_t)e->height;
        im->size = e->size;
        im->time = it->time;
        if (dsout_prev_has(&d->prev, dsout_key(it->table, it->id, e->n), e->sha1)) im->flags |= DS_EXPORTED;
        if (!imgs) imgs = xmalloc(it->ne * sizeof *imgs);
        imgs[k++] = e->cimg;
    }
    if (k) {
        size_t before = catalog_image_count(d->cat);
        catalog_add(d->cat, it->table, it->id, imgs, k);
        if (catalog_image_count(d->cat) != before + k)
            ds_fail(d, "the catalog numbered the pictures of %s %s unexpectedly", it->table, it->id);
    }
    free(imgs);
    d->c.candidates = d->n;
}

/* --- the groups --- */

static uint32_t ds_root(uint32_t *parent, uint32_t a) {
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

static void ds_union(uint32_t *parent, uint32_t a, uint32_t b) {
    a = ds_root(parent, a);
    b = ds_root(parent, b);
    if (a != b) parent[a < b ? b : a] = a < b ? a : b;
}

static void ds_on_group(catalog *c, const uint32_t *members, size_t n, void *arg) {
    (void)c;
    uint32_t *parent = arg;
    for (size_t i = 1; i < n; i++)
        ds_union(parent, members[0], members[i]);
}

/* The rule: larger width x height, then more bytes, then older, then
 * first in (table, id, image) byte order (from the catalog, which holds
 * them: image numbers are record numbers). */
static bool ds_better(const ds *d, uint32_t a, uint32_t b) {
    const ds_image *x = &d->img[a], *y = &d->img[b];
    uint64_t ax = (uint64_t)x->width * x->height, ay = (uint64_t)y->width * y->height;
    if (ax != ay) return ax > ay;
    if (x->size != y->size) return x->size > y->size;
    if (x->time != y->time) return x->time < y->time;
    const char *ta, *tb, *ia, *ib;
    uint32_t na, nb;
    catalog_image_of(d->cat, a, &ta, &ia, &na);
    catalog_image_of(d->cat, b, &tb, &ib, &nb);
    int r = strcmp(ta, tb);
    if (!r) r = strcmp(ia, ib);
    if (!r) r = na < nb ? -1 : na > nb;
    return r ? r < 0 : a < b;
}

typedef struct ds_by_sha1 {
    unsigned char sha1[20];
    uint32_t i;
} ds_by_sha1;

static int ds_sha1_cmp(const void *a, const void *b) {
    const ds_by_sha1 *x = a, *y = b;
    int r = memcmp(x->sha1, y->sha1, 20);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

static int ds_group(ds *d) {
    size_t n = d->n;
    catalog_build(d->cat);
    catalog_stats st;
    catalog_get_stats(d->cat, &st);
    log_info("%zu pictures to group: catalog %" PRIu64 " bytes (%.0f a picture), records %zu bytes", n,
             st.index_bytes + st.catalog_bytes, n ? (double)(st.index_bytes + st.catalog_bytes) / (double)n : 0.0,
             n * sizeof(ds_image));
    uint32_t *parent = xmalloc((n ? n : 1) * sizeof *parent);
    for (size_t i = 0; i < n; i++)
        parent[i] = (uint32_t)i;
    long groups = dupes_find(d->cat, CATALOG_PHASH, (int)d->s->max_distance, 2, ds_on_group, parent);
    if (groups < 0) {
        free(parent);
        ds_fail(d, "stopped");
        return -1;
    }
    /* exact copies: the same sha1, whatever their phash says */
    ds_by_sha1 *by = xmalloc((n ? n : 1) * sizeof *by);
    for (size_t i = 0; i < n; i++) {
        memcpy(by[i].sha1, d->img[i].sha1, 20);
        by[i].i = (uint32_t)i;
    }
    qsort(by, n, sizeof *by, ds_sha1_cmp);
    for (size_t i = 1; i < n; i++)
        if (memcmp(by[i].sha1, by[i - 1].sha1, 20) == 0) ds_union(parent, by[i - 1].i, by[i].i);
    /* per group: exported pictures, the best one, the sizes */
    uint32_t *best = xmalloc((n ? n : 1) * sizeof *best);
    uint32_t *size = xcalloc(n ? n : 1, sizeof *size);
    uint32_t *kept = xcalloc(n ? n : 1, sizeof *kept);
    uint8_t *has_exported = xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        best[i] = DS_NONE;
        parent[i] = ds_root(parent, (uint32_t)i);
        if (d->img[i].flags & DS_EXPORTED) has_exported[parent[i]] = 1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t r = parent[i];
        size[r]++;
        if (has_exported[r] && !(d->img[i].flags & DS_EXPORTED)) continue;
        if (best[r] == DS_NONE || ds_better(d, (uint32_t)i, best[r])) best[r] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t r = parent[i];
        bool k = has_exported[r] ? (d->img[i].flags & DS_EXPORTED) != 0 : best[r] == i;
        if (k) {
            d->img[i].flags |= DS_KEPT;
            kept[r]++;
        }
        if (r == i) d->c.groups++;
    }
    for (size_t i = 0; i < n; i++)
        if (parent[i] == i) d->img[best[i]].dups = size[i] - kept[i];
    catalog_free(d->cat); /* its ids were needed by the rule's last step */
    d->cat = NULL;
    /* exact or near: per run of one sha1 (all in one group) */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        bool any_kept = false;
        uint64_t not_kept = 0;
        while (j < n && memcmp(by[j].sha1, by[i].sha1, 20) == 0) {
            if (d->img[by[j].i].flags & DS_KEPT)
                any_kept = true;
            else
                not_kept++;
            j++;
        }
        if (any_kept)
            d->c.exact += not_kept;
        else if (not_kept)
            d->c.near++, d->c.exact += not_kept - 1;
        i = j;
    }
    log_info("%zu pictures in %" PRIu64 " groups (%ld of near duplicates within %ld bits): %" PRIu64
             " exact and %" PRIu64 " near duplicates left out",
             n, d->c.groups, groups, d->s->max_distance, d->c.exact, d->c.near);
    free(has_exported);
    free(kept);
    free(size);
    free(best);
    free(by);
    free(parent);
    return 0;
}

/* --- second pass: the files and the manifest --- */

static void ds_hex(const unsigned char *s, char out[41]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[s[i] >> 4];
        out[2 * i + 1] = hex[s[i] & 15];
    }
    out[40] = '\0';
}

/* Move finished rows at the window's head to the manifest. */
static void ds_flush(ds *d) {
    char why[DSF_WHY_MAX];
    while (d->count && d->window[d->head].state != DS_SLOT_WAITING && !d->failed) {
        ds_slot *s = &d->window[d->head];
        if (s->state == DS_SLOT_PLACED) {
            if (dsout_row(&d->out, s->row, why) != 0) ds_fail(d, "%s", why);
            d->labels[s->label].placed[s->split]++;
            if (d->nplaced == d->placed_cap) {
                d->placed_cap = d->placed_cap ? 2 * d->placed_cap : 4096;
                d->placed = xrealloc(d->placed, d->placed_cap * sizeof *d->placed);
            }
            d->placed[d->nplaced++] = ds_hash_bytes(s->rel, strlen(s->rel));
        } else {
            json_object *m = json_object_new_object();
            json_object_object_foreach(s->row, k, v) {
                if (strcmp(k, "path") != 0) json_object_object_add(m, k, json_object_get(v));
            }
            json_object_object_add(m, "reason", json_object_new_string(s->why ? s->why : "unknown"));
            if (dsout_missing(&d->out, m, why) != 0) ds_fail(d, "%s", why);
            json_object_put(m);
            d->c.missing++;
        }
        json_object_put(s->row);
        free(s->rel);
        free(s->why);
        memset(s, 0, sizeof *s);
        d->head = (d->head + 1) % DS_WINDOW;
        d->count--;
    }
}

/* The row of S is missing: REASON is added to what was said before. */
static void ds_missing(ds_slot *s, const char *reason) {
    char *w = s->why && *s->why ? xasprintf("%s; %s", s->why, reason) : xstrdup(reason);
    free(s->why);
    s->why = w;
    s->state = DS_SLOT_MISSING;
}

/* Take finished downloads. */
static void ds_take(ds *d) {
    fetch_result r;
    char why[DSF_WHY_MAX];
    while (fetch_take(d->fetch, &r)) {
        ds_slot *s = r.userdata;
        if (!r.ok) {
            char *reason = xasprintf("cannot download it: %s", r.error);
            ds_missing(s, reason);
            free(reason);
        } else {
            dsf_result fr = dsf_write(&d->files, r.body, r.len, s->rel, s->sha1, why);
            if (fr == DSF_WRITTEN) {
                s->state = DS_SLOT_PLACED;
                d->c.downloaded++;
            } else if (fr == DSF_SOURCE_BAD) {
                char *reason = xasprintf("downloaded again: %s", why);
                ds_missing(s, reason);
                free(reason);
            } else {
                ds_fail(d, "%s", why);
                s->state = DS_SLOT_MISSING;
            }
        }
        free(r.body);
        membudget_release(&r.claim);
    }
}

/* Drive the downloads until the head of the window is done (or, ALL,
 * until every row is). */
static void ds_drain(ds *d, bool all) {
    while (!d->failed && d->count && (all || d->window[d->head].state == DS_SLOT_WAITING)) {
        if (d->window[d->head].state != DS_SLOT_WAITING) {
            ds_flush(d);
            continue;
        }
        if (sig_stop_requested()) {
            ds_fail(d, "stopped");
            break;
        }
        if (fetch_perform(d->fetch, 200, true) != 0) {
            ds_fail(d, "the downloads failed (curl)");
            break;
        }
        ds_take(d);
        ds_flush(d);
    }
    ds_flush(d);
}

static json_object *ds_member_ref(json_object *o, const char *key) { return json_object_get(itemview_member(o, key)); }

static json_object *ds_row(ds *d, ds_item *it, ds_entry *e, const ds_image *im, const char *rel, dataset_split split) {
    json_object *row = json_object_new_object();
    char hex[41];
    ds_hex(im->sha1, hex);
    const char *url = itemview_image_url(it->item, e->o);
    json_object_object_add(row, "path", json_object_new_string(rel));
    json_object_object_add(row, "label", json_object_new_string_len(it->label, (int)it->label_len));
    json_object_object_add(row, "split", json_object_new_string(dataset_split_name(split)));
    json_object_object_add(row, "url", url ? json_object_new_string(url) : NULL);
    json_object_object_add(row, "table", json_object_new_string(it->table));
    json_object_object_add(row, "id", json_object_new_string(it->id));
    json_object_object_add(row, "image", json_object_new_int64(e->n));
    json_object_object_add(row, "site", it->site ? json_object_new_string(it->site) : NULL);
    json_object_object_add(row, "board", it->board ? json_object_new_string(it->board) : NULL);
    json_object_object_add(row, "time", json_object_new_int64(it->time));
    json_object_object_add(row, "width", json_object_new_int64(e->width));
    json_object_object_add(row, "height", json_object_new_int64(e->height));
    json_object_object_add(row, "format", json_object_new_string(e->format));
    json_object_object_add(row, "size", json_object_new_int64(e->size));
    json_object_object_add(row, "sha1", json_object_new_string(hex));
    static const char *const copied[] = {"md5",   "ahash",    "dhash",      "phash",
                                         "whash", "rgb_mean", "brightness", "rgb_hist"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        json_object_object_add(row, copied[i], ds_member_ref(e->o, copied[i]));
    json_object_object_add(row, "nsfw", json_object_new_boolean(it->nsfw));
    json_object_object_add(row, "duplicates", json_object_new_int64(im->dups));
    return row;
}

static void ds_second(ds *d, ds_item *it) {
    char why[DSF_WHY_MAX];
    for (size_t i = 0; i < it->ne && !d->failed; i++) {
        ds_entry *e = &it->e[i];
        if (e->cls != DS_CANDIDATE) continue;
        if (d->cursor >= d->n || memcmp(d->img[d->cursor].sha1, e->sha1, 20) != 0) {
            ds_fail(d, "the archive read differently the second time (%s %s): a bug", it->table, it->id);
            return;
        }
        const ds_image *im = &d->img[d->cursor++];
        if (!(im->flags & DS_KEPT)) continue;
        if (d->count == DS_WINDOW) ds_drain(d, false);
        if (d->failed) return;
        dataset_split split = dataset_split_of(im->sha1, d->frac[0], d->frac[1]);
        char hex[41];
        ds_hex(im->sha1, hex);
        const char *ext = ih_format_extension(ih_format_from_name(e->format));
        ds_slot *s = &d->window[(d->head + d->count++) % DS_WINDOW];
        memset(s, 0, sizeof *s);
        s->rel = xasprintf("%s/%s/%s.%s", dataset_split_name(split), d->labels[im->label].dir, hex, ext);
        s->row = ds_row(d, it, e, im, s->rel, split);
        memcpy(s->sha1, im->sha1, 20);
        s->label = im->label;
        s->split = split;
        s->state = DS_SLOT_WAITING;
        if (dsf_present(&d->files, s->rel, e->size)) {
            s->state = DS_SLOT_PLACED;
            d->c.present++;
        } else if (d->s->save_dir) {
            char *src = savedir_path(d->s->save_dir, hex, ext);
            dsf_result r = dsf_place(&d->files, src, s->rel, im->sha1, why);
            free(src);
            if (r == DSF_LINKED || r == DSF_COPIED) {
                s->state = DS_SLOT_PLACED;
                if (r == DSF_LINKED)
                    d->c.linked++;
                else
                    d->c.copied++;
            } else if (r == DSF_FAILED) {
                ds_fail(d, "%s", why);
                s->state = DS_SLOT_MISSING;
            } else {
                s->why = xstrdup(why);
            }
        } else {
            s->why = xstrdup("no --save-dir");
        }
        if (s->state == DS_SLOT_WAITING) {
            const char *url = itemview_image_url(it->item, e->o);
            if (strcmp(d->s->missing, "fetch") != 0)
                ds_missing(s, "not downloaded (--missing list)");
            else if (!url)
                ds_missing(s, "no http(s) URL to download it from");
            if (s->state == DS_SLOT_WAITING) fetch_add(d->fetch, url, s);
        }
        if (fetch_pending(d->fetch)) {
            if (fetch_perform(d->fetch, 0, true) != 0) ds_fail(d, "the downloads failed (curl)");
            ds_take(d);
        }
        ds_flush(d);
    }
}

/* --- the sweep --- */

static int ds_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A picture's file name: 40 hex digits, a dot, an extension. */
static bool ds_picture_name(const char *name) {
    return strspn(name, "0123456789abcdef") == 40 && name[40] == '.' && name[41] && !strchr(name + 41, '/');
}

/* Remove the pictures under the split folders that the manifest does not
 * list: left by an interrupted run over an archive that changed since, or
 * by items that left the archive.  Other files are left alone. */
static void ds_sweep(ds *d) {
    qsort(d->placed, d->nplaced, sizeof *d->placed, ds_u64_cmp);
    for (int k = 0; k < DATASET_SPLITS; k++) {
        const char *split = dataset_split_name((dataset_split)k);
        char *sdir = xasprintf("%s/%s", d->s->out, split);
        DIR *sd = opendir(sdir);
        struct dirent *le;
        while (sd && (le = readdir(sd)) != NULL) {
            if (le->d_name[0] == '.') continue;
            char *ldir = xasprintf("%s/%s", sdir, le->d_name);
            DIR *ld = opendir(ldir);
            struct dirent *fe;
            while (ld && (fe = readdir(ld)) != NULL) {
                if (!ds_picture_name(fe->d_name)) continue;
                char *rel = xasprintf("%s/%s/%s", split, le->d_name, fe->d_name);
                uint64_t h = ds_hash_bytes(rel, strlen(rel));
                if (!bsearch(&h, d->placed, d->nplaced, sizeof h, ds_u64_cmp)) {
                    char *f = xasprintf("%s/%s", d->s->out, rel);
                    if (unlink(f) == 0) {
                        d->c.swept++;
                        log_info("removed %s: not in the manifest", rel);
                    } else {
                        log_warn("cannot remove %s (not in the manifest): %s", f, strerror(errno));
                    }
                    free(f);
                }
                free(rel);
            }
            if (ld) closedir(ld);
            rmdir(ldir); /* only when empty */
            free(ldir);
        }
        if (sd) closedir(sd);
        free(sdir);
    }
}

/* --- summary --- */

static json_object *ds_list_json(const ds_list *l) {
    const char *v[DS_LIST_MAX];
    memcpy(v, l->v, l->n * sizeof *v);
    for (size_t i = 1; i < l->n; i++) /* sorted, so that the order given does not matter */
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < l->n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

/* The settings that decide the set: a folder is only ever added to with the same. */
static json_object *ds_settings_json(const ds *d) {
    const ds_settings *s = d->s;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "exchange", json_object_new_string(s->exchange));
    json_object_object_add(o, "label_field", json_object_new_string(s->label_field));
    json_object *split = json_object_new_array();
    for (int i = 0; i < 3; i++) {
        char text[32];
        snprintf(text, sizeof text, "%.10g", d->frac[i]);
        json_object_array_add(split, json_object_new_double_s(d->frac[i], text));
    }
    json_object_object_add(o, "split", split);
    json_object_object_add(o, "sites", ds_list_json(&d->lists->site));
    json_object_object_add(o, "kinds", ds_list_json(&d->lists->kind));
    json_object_object_add(o, "labels", ds_list_json(&d->lists->label));
    json_object_object_add(o, "formats", ds_list_json(&d->lists->format));
    json_object_object_add(o, "min_width", json_object_new_int64(s->min_width));
    json_object_object_add(o, "min_height", json_object_new_int64(s->min_height));
    json_object_object_add(o, "since", s->since ? json_object_new_int64(d->since) : NULL);
    json_object_object_add(o, "until", s->until ? json_object_new_int64(d->until) : NULL);
    json_object_object_add(o, "nsfw", json_object_new_boolean(s->nsfw));
    json_object_object_add(o, "nsfw_topics", json_object_new_string(s->nsfw_topics ? s->nsfw_topics : ""));
    json_object_object_add(o, "hash", json_object_new_string("phash"));
    json_object_object_add(o, "max_distance", json_object_new_int64(s->max_distance));
    json_object_object_add(o, "keep",
                           json_object_new_string("largest width*height, then bytes; then oldest time, "
                                                  "then table, id, image"));
    return o;
}

static int ds_write_summary(ds *d, json_object *settings, char why[DSF_WHY_MAX]) {
    json_object *o = json_object_new_object(), *labels = json_object_new_object(), *dirs = json_object_new_object();
    uint64_t total = 0;
    for (size_t i = 0; i < d->nlabels; i++) {
        ds_label *l = &d->labels[i];
        uint64_t sum = l->placed[0] + l->placed[1] + l->placed[2];
        if (!sum) continue;
        json_object *c = json_object_new_object();
        for (int k = 0; k < DATASET_SPLITS; k++)
            json_object_object_add(c, dataset_split_name((dataset_split)k),
                                   json_object_new_int64((int64_t)l->placed[k]));
        json_object_object_add(labels, l->text, c);
        if (strcmp(l->text, l->dir) != 0) json_object_object_add(dirs, l->text, json_object_new_string(l->dir));
        total += sum;
    }
    json_object_object_add(o, "labels", labels);
    json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
    json_object *sk = json_object_new_object();
    json_object_object_add(sk, "exact_duplicate", json_object_new_int64((int64_t)d->c.exact));
    json_object_object_add(sk, "near_duplicate", json_object_new_int64((int64_t)d->c.near));
    json_object_object_add(sk, "filtered", json_object_new_int64((int64_t)d->c.filtered));
    json_object_object_add(sk, "missing", json_object_new_int64((int64_t)d->c.missing));
    json_object_object_add(sk, "error", json_object_new_int64((int64_t)d->c.error));
    json_object_object_add(o, "skipped", sk);
    json_object_object_add(o, "settings", json_object_get(settings));
    json_object_object_add(o, "label_dirs", dirs);
    json_object *rules = json_object_new_object();
    json_object_object_add(
        rules, "kept",
        json_object_new_string(
            "one picture per group of exact (same sha1) and near (phash within max_distance) duplicates: the largest "
            "(width*height, then bytes), then the oldest (time, then table, id, image); a group holding pictures of an "
            "earlier run keeps those"));
    json_object_object_add(
        rules, "label",
        json_object_new_string("a picture under several labels is kept once, under the label of the item kept"));
    json_object_object_add(
        rules, "split",
        json_object_new_string(
            "train if u < split[0], val if u < split[0]+split[1], else test; u = (first 8 bytes of the sha1, "
            "big-endian, >> 11) / 2^53"));
    json_object_object_add(o, "rules", rules);
    json_object *c = json_object_new_object();
    const struct {
        const char *name;
        uint64_t v;
    } counts[] = {{"rows", d->c.rows},
                  {"rows_without_img", d->c.rows_without_img},
                  {"entries", d->c.entries},
                  {"videos", d->c.videos},
                  {"candidates", d->c.candidates},
                  {"groups", d->c.groups},
                  {"present", d->c.present},
                  {"linked", d->c.linked},
                  {"copied", d->c.copied},
                  {"downloaded", d->c.downloaded},
                  {"removed", d->c.swept}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_object_add(c, counts[i].name, json_object_new_int64((int64_t)counts[i].v));
    json_object_object_add(o, "counts", c);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    char *body = xasprintf("%s\n", text);
    int rc = dsf_write_text(&d->files, "summary.json", body, strlen(body), why);
    free(body);
    json_object_put(o);
    return rc;
}

/* --- the command line's lists --- */

static void ds_list_add(ds_list *l, char *v, bool split, const char *name, bool *too_many) {
    char *save = NULL;
    for (char *t = split ? strtok_r(v, ",", &save) : v; t; t = split ? strtok_r(NULL, ",", &save) : NULL) {
        if (split && !*t) continue;
        if (l->n == DS_LIST_MAX) {
            fprintf(stderr, "imgfeed-export dataset: at most %d values of --%s\n", DS_LIST_MAX, name);
            *too_many = true;
            return;
        }
        l->v[l->n++] = t;
    }
}

/* Every occurrence of --site, --kind, --label and --format in ARGV. */
static bool ds_lists_scan(ds_lists *ls, int argc, char **argv) {
    struct {
        const char *name;
        ds_list *l;
        bool split;
    } opts[] = {{"site", &ls->site, true},
                {"kind", &ls->kind, true},
                {"label", &ls->label, false},
                {"format", &ls->format, true}};
    size_t need = 0;
    for (int i = 1; i < argc; i++)
        need += strlen(argv[i]) + 1;
    ls->store = xmalloc(need + 1);
    char *w = ls->store;
    bool too_many = false;
    for (int i = 1; i < argc && !too_many; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
            size_t nl = strlen(opts[k].name);
            const char *a = argv[i];
            if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, opts[k].name, nl) != 0) continue;
            const char *v = NULL;
            if (a[2 + nl] == '=')
                v = a + 3 + nl;
            else if (a[2 + nl] == '\0' && i + 1 < argc)
                v = argv[++i];
            else
                continue;
            strcpy(w, v);
            ds_list_add(opts[k].l, w, opts[k].split, opts[k].name, &too_many);
            w += strlen(v) + 1;
            break;
        }
    }
    return !too_many;
}

/* --- main --- */

static int ds_lock(const char *dir, int *fd) {
    char *p = xasprintf("%s/.lock", dir);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (*fd < 0) {
        log_error("cannot open %s: %s", p, strerror(errno));
        rc = -1;
    } else if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("another imgfeed-export dataset is writing into %s (%s is locked)", dir, p);
        rc = -1;
    }
    free(p);
    return rc;
}

static int ds_setup(ds *d) {
    const ds_settings *s = d->s;
    ds_parse_split(s->split, d->frac);
    d->since = INT64_MIN;
    d->until = INT64_MAX;
    if (s->since) ds_parse_time(s->since, &d->since);
    if (s->until) ds_parse_time(s->until, &d->until);
    char why[300];
    if (topic_split_list(s->nsfw_topics, d->topics, DS_TOPICS_MAX, &d->topics_store, "--nsfw-topics", why,
                         sizeof why) != 0) {
        fprintf(stderr, "imgfeed-export dataset: %s\n", why);
        return 2;
    }
    char *save = NULL;
    char *f = xstrdup(s->label_field);
    for (char *t = strtok_r(f, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
        d->field_path = xrealloc(d->field_path, (d->field_depth + 1) * sizeof *d->field_path);
        d->field_path[d->field_depth++] = xstrdup(t);
    }
    free(f);
    return 0;
}

static void ds_release(ds *d) {
    for (size_t i = 0; i < d->count; i++) {
        ds_slot *s = &d->window[(d->head + i) % DS_WINDOW];
        json_object_put(s->row);
        free(s->rel);
        free(s->why);
    }
    if (d->fetch) fetch_free(d->fetch);
    ratelimit_free(d->rl);
    netguard_free(d->guard);
    if (d->conn) PQfinish(d->conn);
    for (size_t i = 0; i < d->ntables; i++) {
        free(d->tables[i]);
        free(d->prefixes[i]);
    }
    free(d->tables);
    free(d->prefixes);
    for (size_t i = 0; i < d->nlabels; i++) {
        free(d->labels[i].text);
        free(d->labels[i].dir);
    }
    free(d->labels);
    free(d->label_slots);
    free(d->img);
    free(d->placed);
    catalog_free(d->cat);
    dsout_prev_release(&d->prev);
    for (size_t i = 0; i < d->field_depth; i++)
        free(d->field_path[i]);
    free(d->field_path);
    free(d->topics_store);
}

static int ds_run(ds *d) {
    const ds_settings *s = d->s;
    char why[DSF_WHY_MAX];
    int lockfd = -1, status = 1;
    json_object *settings = NULL;
    bool files_open = false, out_open = false;
    char err[SAVEDIR_ERROR_MAX];
    if (savedir_prepare(s->out, err) != 0) { /* mkdir -p, and writable */
        log_error("%s", err);
        return 1;
    }
    if (ds_lock(s->out, &lockfd) != 0) goto done; /* before DIR/.tmp is emptied: it may be another run's */
    if (dsf_open(&d->files, s->out, s->copy, why) != 0) {
        log_error("%s", why);
        goto done;
    }
    files_open = true;
    if (dsout_prev_load(&d->prev, s->out, why) != 0) {
        log_error("%s", why);
        goto done;
    }
    settings = ds_settings_json(d);
    if (d->prev.settings && !json_object_equal(d->prev.settings, settings)) {
        char keys[400] = "";
        json_object_object_foreach(settings, k, v) {
            json_object *was = NULL;
            json_object_object_get_ex(d->prev.settings, k, &was);
            if (!json_object_equal(was, v) && strlen(keys) + strlen(k) + 3 < sizeof keys)
                snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", *keys ? ", " : "", k);
        }
        log_error("%s was made with other settings (%s: see its summary.json); a dataset is only added to with the "
                  "same ones: choose another --out, or remove %s to start again",
                  s->out, *keys ? keys : "settings", s->out);
        status = 2;
        goto done;
    }
    if (d->prev.n) log_info("%s holds %zu pictures of an earlier run: they stay", s->out, d->prev.n);
    d->guard = netguard_new(s->allow_private);
    if (s->allow_net && *s->allow_net && netguard_allow_list(d->guard, s->allow_net, err, sizeof err) != 0) {
        log_error("bad --allow-net '%s': %s", s->allow_net, err);
        status = 2;
        goto done;
    }
    d->rl = ratelimit_new(s->rps);
    fetch_options fo;
    fetch_options_init(&fo);
    fo.user_agent = s->user_agent;
    fo.max_bytes = s->max_bytes;
    fo.max_transfers = (int)s->max_transfers;
    fo.timeout_ms = s->timeout_ms;
    d->fetch = fetch_new(&fo, d->rl, d->guard, NULL);
    if (!d->fetch) goto done;
    d->cat = catalog_new();
    if (ds_connect(d) != 0) goto fail;
    if (ds_walk(d, ds_first, "reading") != 0) goto fail;
    log_info("%" PRIu64 " rows, %" PRIu64 " pictures pass the filters (%" PRIu64 " filtered, %" PRIu64
             " videos among them, %" PRIu64 " with errors)",
             d->c.rows, d->c.candidates, d->c.filtered, d->c.videos, d->c.error);
    if (ds_group(d) != 0) goto fail;
    if (dsout_open(&d->out, &d->files, why) != 0) {
        ds_fail(d, "%s", why);
        goto fail;
    }
    out_open = true;
    d->cursor = 0;
    if (ds_walk(d, ds_second, "placing") != 0) goto fail;
    ds_drain(d, true);
    if (d->failed) goto fail;
    if (d->cursor != d->n) {
        ds_fail(d, "the archive read differently the second time (%zu of %zu pictures): a bug", d->cursor, d->n);
        goto fail;
    }
    if (dsout_commit(&d->out, why) != 0) {
        ds_fail(d, "%s", why);
        goto fail;
    }
    ds_sweep(d);
    if (ds_write_summary(d, settings, why) != 0) {
        ds_fail(d, "%s", why);
        goto fail;
    }
    log_info("%s: %" PRIu64 " pictures (%" PRIu64 " were there, %" PRIu64 " linked, %" PRIu64 " copied, %" PRIu64
             " downloaded), %" PRIu64 " missing (missing.jsonl), %" PRIu64 " exact and %" PRIu64
             " near duplicates, %" PRIu64 " filtered, %" PRIu64 " with errors",
             s->out, d->out.rows, d->c.present, d->c.linked, d->c.copied, d->c.downloaded, d->c.missing, d->c.exact,
             d->c.near, d->c.filtered, d->c.error);
    if (d->c.missing)
        log_warn("%" PRIu64 " pictures are missing: see %s/missing.jsonl; a rerun tries them again", d->c.missing,
                 s->out);
    status = 0;
    goto done;
fail:
    if (d->files.no_space)
        log_error("no space left on the device of %s: %s; nothing was left half-written, the pictures placed so far "
                  "stay: free some space and run the same command again to finish",
                  s->out, d->why);
    else
        log_error("the dataset was not finished: %s; run the same command again to finish it", d->why);
    status = 1;
done:
    if (out_open) dsout_abort(&d->out);
    json_object_put(settings);
    if (lockfd >= 0) close(lockfd);
    if (files_open) dsf_close(&d->files);
    return status;
}

int dataset_main(int argc, char **argv) {
    ds_settings s = {0};
    ds_lists lists = {0};
    if (!ds_lists_scan(&lists, argc, argv)) {
        free(lists.store);
        return 2;
    }
    int status = cfg_main_load(&ds_program, &s, argc, argv, NULL);
    if (status >= 0) {
        free(lists.store);
        return status;
    }
    log_set_program("imgfeed-export");
    log_level lv;
    if (log_level_parse(s.log_level, &lv)) log_set_level(lv);
    if (!s.out || !*s.out) {
        fprintf(stderr, "imgfeed-export dataset: give the dataset folder with --out DIR\n");
        cfg_release(&ds_program, &s);
        free(lists.store);
        return 2;
    }
    sig_install();
    ds d = {.s = &s, .lists = &lists};
    status = ds_setup(&d);
    if (status == 0) status = ds_run(&d);
    ds_release(&d);
    cfg_release(&ds_program, &s);
    free(lists.store);
    return status;
}
