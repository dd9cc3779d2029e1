/* query.c -- a search request into its answer; see query.h.
 *
 * Every request goes the same way: its arguments are checked (a clear
 * reason for each refusal), an image is hashed by imghash within the
 * memory the request reserved, the catalog is asked, and detail.c fills in
 * the results.  Nothing here keeps state between requests but counters
 * and the metrics' series (query.h).
 */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "itemview.h"
#include "log.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define QUERY_FETCH_WAIT_MS 100

static const char *const query_kind_names[QUERY_KINDS] = {
    [QUERY_PHASH] = "phash", [QUERY_DHASH] = "dhash",   [QUERY_SHA1] = "sha1",       [QUERY_MD5] = "md5",
    [QUERY_URL] = "url",     [QUERY_UPLOAD] = "upload", [QUERY_INVALID] = "invalid",
};

const char *query_kind_name(query_kind k) { return k >= 0 && k < QUERY_KINDS ? query_kind_names[k] : "invalid"; }

void query_metrics_init(query_service *s) {
    metrics_family *queries =
        metrics_counter("imgfeed_search_queries_total", "search requests answered, errors included, by kind", "kind");
    metrics_family *seconds = metrics_histogram("imgfeed_search_query_seconds",
                                                "seconds to answer a search request, by kind", "kind", NULL, 0);
    for (int k = 0; k < QUERY_KINDS; k++) {
        s->m_queries[k] = metrics_get(queries, query_kind_names[k]);
        s->m_seconds[k] = metrics_get(seconds, query_kind_names[k]);
    }
}

/* The kind of a GET with arguments A. */
static query_kind query_kind_of(const query_args *a) {
    const char *values[] = {a->phash, a->dhash, a->sha1, a->md5, a->url};
    static const query_kind kinds[] = {QUERY_PHASH, QUERY_DHASH, QUERY_SHA1, QUERY_MD5, QUERY_URL};
    query_kind kind = QUERY_INVALID;
    int given = 0;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (!values[i]) continue;
        given++;
        kind = kinds[i];
    }
    return given == 1 ? kind : QUERY_INVALID;
}

void query_count(query_service *s, query_kind kind, int64_t started_ns) {
    if (kind < 0 || kind >= QUERY_KINDS) kind = QUERY_INVALID;
    if (!s->m_queries[kind]) return; /* not counted (query_metrics_init) */
    metrics_inc(s->m_queries[kind]);
    metrics_observe(s->m_seconds[kind], (double)(time_mono_ns() - started_ns) / TIME_NS_PER_S);
}

void query_fail(query_answer *out, unsigned status, const char *why) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(why));
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    out->status = status;
    out->body = xmalloc(len + 1);
    memcpy(out->body, s, len + 1);
    out->len = len;
    json_object_put(o);
}

bool query_reserve(query_service *s, membudget_claim *c, uint64_t total) {
    pthread_mutex_lock(&s->budget_lock);
    bool ok = membudget_try(c, total);
    pthread_mutex_unlock(&s->budget_lock);
    return ok;
}

void query_release(query_service *s, membudget_claim *c) {
    pthread_mutex_lock(&s->budget_lock);
    membudget_release(c);
    pthread_mutex_unlock(&s->budget_lock);
}

/* A whole number MIN..MAX in decimal, or -1. */
static long parse_number(const char *v, long min, long max) {
    if (!v || !*v || strlen(v) > 9 || strspn(v, "0123456789") != strlen(v)) return -1;
    long n = strtol(v, NULL, 10);
    return n < min || n > max ? -1 : n;
}

/* What a search asks for, once its arguments are checked. */
typedef struct query_plan {
    catalog_kind kind;
    unsigned char hash[CATALOG_HASH_MAX];
    size_t len;
    size_t k;
    int max_distance;
    json_object *image; /* an image query's `_img` fields; owned */
} query_plan;

static bool plan_k(const query_args *a, query_plan *p, query_answer *out) {
    p->k = QUERY_K_DEFAULT;
    if (a->k) {
        long k = parse_number(a->k, 1, QUERY_K_MAX);
        if (k < 0) {
            char why[128];
            snprintf(why, sizeof why, "k must be a whole number from 1 to %d", QUERY_K_MAX);
            query_fail(out, 400, why);
            return false;
        }
        p->k = (size_t)k;
    }
    return true;
}

/* Checks max_distance against the hash's bits and that the archive holds
 * hashes of that size. */
static bool plan_distance(query_service *s, const query_args *a, query_plan *p, query_answer *out) {
    char why[256];
    int bits = (int)(8 * p->len);
    if (p->kind == CATALOG_SHA1 || p->kind == CATALOG_MD5) {
        p->max_distance = 0;
        return true;
    }
    size_t lens[16];
    size_t n = catalog_lengths(s->cat, p->kind, lens, 16);
    bool held = n == 0; /* an empty archive: nothing to find, but nothing wrong either */
    for (size_t i = 0; i < n; i++)
        held = held || lens[i] == p->len;
    if (!held) {
        snprintf(why, sizeof why, "a %s of %d bits cannot be compared: the archive's are %zu bits",
                 catalog_kind_name(p->kind), bits, 8 * lens[0]);
        query_fail(out, 400, why);
        return false;
    }
    p->max_distance = QUERY_DEFAULT_RADIUS(bits);
    if (a->max_distance) {
        long d = parse_number(a->max_distance, 0, bits);
        if (d < 0) {
            snprintf(why, sizeof why, "max_distance must be a whole number from 0 to %d (the hash's bits)", bits);
            query_fail(out, 400, why);
            return false;
        }
        p->max_distance = (int)d;
    }
    return true;
}

/* Asks the catalog and writes the answer. */
static void run(query_service *s, query_plan *p, query_answer *out) {
    int64_t t0 = time_mono_ns();
    catalog_hit *hits = NULL;
    hindex_trace trace;
    size_t n = catalog_search(s->cat, p->kind, p->hash, p->len, p->max_distance, p->k, &hits, &trace);
    json_object *results = json_object_new_array();
    char warn[320] = "";
    bool digest = p->kind == CATALOG_SHA1 || p->kind == CATALOG_MD5;
    int rc = detail_add(s->det, hits, n, p->kind, digest ? p->hash : NULL, results, warn, sizeof warn);
    free(hits);

    json_object *q = p->image ? p->image : json_object_new_object();
    p->image = NULL;
    json_object_object_add(q, "kind", json_object_new_string(catalog_kind_name(p->kind)));
    if (digest) {
        char hex[41];
        for (size_t i = 0; i < p->len; i++)
            snprintf(hex + 2 * i, 3, "%02x", p->hash[i]);
        json_object_object_add(q, "digest", json_object_new_string(hex));
    } else {
        char b64[4 * ((CATALOG_HASH_MAX + 2) / 3) + 1];
        ih_checksum_base64(p->hash, p->len, b64);
        json_object_object_add(q, "hash", json_object_new_string(b64));
        json_object_object_add(q, "bits", json_object_new_int((int)(8 * p->len)));
        json_object_object_add(q, "max_distance", json_object_new_int(p->max_distance));
    }
    json_object_object_add(q, "k", json_object_new_int((int)p->k));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "query", q);
    json_object_object_add(o, "results", results);
    json_object_object_add(o, "took_ms", json_object_new_double((double)(time_mono_ns() - t0) / 1e6));
    /* how the index found them: hashes compared, and whether it scanned them all */
    json_object_object_add(o, "examined", json_object_new_int64((int64_t)trace.candidates));
    json_object_object_add(o, "scanned", json_object_new_boolean(trace.scanned));
    if (rc != 0) json_object_object_add(o, "warning", json_object_new_string(warn));
    size_t len;
    const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    out->status = 200;
    out->body = xmalloc(len + 1);
    memcpy(out->body, txt, len + 1);
    out->len = len;
    json_object_put(o);
}

static bool check_ready(query_service *s, const query_args *a, query_answer *out) {
    atomic_fetch_add(&s->queries, 1);
    if (a->extra) {
        char why[160];
        snprintf(why, sizeof why, "unknown or repeated argument: %s", a->extra_name);
        query_fail(out, 400, why);
        return false;
    }
    if (!atomic_load(&s->ready)) {
        query_fail(out, 503, "loading the archive; try again in a few seconds");
        out->retry_after_s = 5;
        return false;
    }
    return true;
}

/* The status for an `_img` error of a query image. */
static unsigned image_error_status(const char *err) {
    if (strncmp(err, "too large", 9) == 0 || strncmp(err, "too many pixels", 15) == 0) return 413;
    if (strcmp(err, "not an image") == 0 || strcmp(err, "empty file") == 0 || strncmp(err, "unsupported", 11) == 0)
        return 415;
    return 422;
}

static void answer_image(query_service *s, const query_args *a, const unsigned char *data, size_t len,
                         query_answer *out) {
    query_plan p = {0};
    if (!plan_k(a, &p, out)) return;
    const char *kind = a->hash ? a->hash : "phash";
    if (strcmp(kind, "phash") != 0 && strcmp(kind, "dhash") != 0) {
        query_fail(out, 400, "hash must be phash or dhash");
        return;
    }
    /* Hash at the size of the archive's hashes (the hasher's 12 gives 144 bits). */
    ih_options ho = s->hashing;
    size_t lens[4];
    size_t nl = catalog_lengths(s->cat, strcmp(kind, "dhash") == 0 ? CATALOG_DHASH : CATALOG_PHASH, lens, 4);
    for (int side = 2; nl && side <= IH_HASH_MAX_SIZE; side++)
        if ((size_t)(side * side) == 8 * lens[0] && ih_hashes_size_supported(side, NULL)) ho.hash_size = side;
    if (len > s->hashing.max_bytes) {
        query_fail(out, 413, "too large");
        return;
    }
    membudget_claim work;
    membudget_claim_init(&work, s->budget);
    if (!query_reserve(s, &work, ih_describe_working_bytes(data, len, &ho))) {
        query_fail(out, 503, "too many images are being hashed now; try again");
        out->retry_after_s = 1;
        return;
    }
    json_object *entry = json_object_new_object();
    int rc = ih_describe(entry, data, len, &ho, NULL);
    query_release(s, &work);
    if (rc != 0) {
        const char *err = itemview_string(entry, "error");
        char why[300];
        snprintf(why, sizeof why, "the query is no picture search can use: %s", err ? err : "unknown error");
        query_fail(out, image_error_status(err ? err : ""), why);
        json_object_put(entry);
        return;
    }
    p.kind = strcmp(kind, "dhash") == 0 ? CATALOG_DHASH : CATALOG_PHASH;
    if (entry_hash_decode(itemview_string(entry, kind), p.hash, &p.len) != 0) {
        query_fail(out, 422, "the query has no perceptual hash (a video?)");
        json_object_put(entry);
        return;
    }
    p.image = entry;
    if (!plan_distance(s, a, &p, out)) {
        json_object_put(p.image);
        return;
    }
    run(s, &p, out);
}

void query_image(query_service *s, const query_args *a, const unsigned char *data, size_t len, query_answer *out) {
    int64_t t0 = time_mono_ns();
    memset(out, 0, sizeof *out);
    if (!check_ready(s, a, out)) goto done;
    if (a->phash || a->dhash || a->sha1 || a->md5 || a->url) {
        query_fail(out, 400, "a POST searches for the image in its body: give no phash, dhash, sha1, md5 or url");
        goto done;
    }
    answer_image(s, a, data, len, out);
done:
    if (out->status != 200) atomic_fetch_add(&s->errors, 1);
    query_count(s, QUERY_UPLOAD, t0);
}

/* Downloads URL through the guard and answers its image. */
static void answer_url(query_service *s, const query_args *a, query_answer *out) {
    membudget_claim body;
    membudget_claim_init(&body, s->budget);
    uint64_t limit = (uint64_t)s->fetch.max_bytes;
    if (!query_reserve(s, &body, limit)) {
        query_fail(out, 503, "too many images are being fetched now; try again");
        out->retry_after_s = 1;
        return;
    }
    fetch *f = fetch_new(&s->fetch, NULL, s->guard, NULL);
    if (!f) {
        query_release(s, &body);
        query_fail(out, 500, "cannot start a download");
        return;
    }
    fetch_add(f, a->url, NULL);
    fetch_result r;
    bool got = false;
    while (!(got = fetch_take(f, &r)) && !sig_stop_requested())
        if (fetch_perform(f, QUERY_FETCH_WAIT_MS, true) != 0) break;
    fetch_free(f);
    if (!got) {
        query_release(s, &body);
        query_fail(out, 503, "the server is stopping");
        return;
    }
    if (!r.ok) {
        char why[FETCH_ERROR_MAX + 64];
        snprintf(why, sizeof why, "cannot fetch the url: %s", r.error);
        unsigned status = strncmp(r.error, "refused", 7) == 0 || strncmp(r.error, "bad url", 7) == 0 ? 400
                          : strcmp(r.error, "too large") == 0                                      ? 413
                                                                                                   : 502;
        query_fail(out, status, why);
    } else {
        answer_image(s, a, r.body, r.len, out);
    }
    free(r.body);
    membudget_release(&r.claim);
    query_release(s, &body);
}

void query_get(query_service *s, const query_args *a, query_answer *out) {
    int64_t t0 = time_mono_ns();
    memset(out, 0, sizeof *out);
    if (!check_ready(s, a, out)) goto done;
    static const struct {
        const char *name;
        catalog_kind kind;
    } forms[] = {{"phash", CATALOG_PHASH}, {"dhash", CATALOG_DHASH}, {"sha1", CATALOG_SHA1}, {"md5", CATALOG_MD5}};
    const char *values[] = {a->phash, a->dhash, a->sha1, a->md5};
    int given = !!a->url;
    for (size_t i = 0; i < 4; i++)
        given += !!values[i];
    if (given != 1) {
        query_fail(out, 400, "give exactly one of phash, dhash, sha1, md5 (or url, or POST an image)");
        goto done;
    }
    if (a->url) {
        answer_url(s, a, out);
        goto done;
    }
    query_plan p = {0};
    if (!plan_k(a, &p, out)) goto done;
    for (size_t i = 0; i < 4; i++) {
        if (!values[i]) continue;
        p.kind = forms[i].kind;
        char why[200];
        if (p.kind == CATALOG_SHA1 || p.kind == CATALOG_MD5) {
            p.len = p.kind == CATALOG_SHA1 ? 20 : 16;
            if (entry_hex_decode(values[i], p.hash, p.len) != 0) {
                snprintf(why, sizeof why, "%s must be %zu hex digits", forms[i].name, 2 * p.len);
                query_fail(out, 400, why);
                goto done;
            }
        } else if (entry_hash_decode(values[i], p.hash, &p.len) != 0) {
            snprintf(why, sizeof why, "%s is not a hash as `_img` writes it (standard base64 with padding)",
                     forms[i].name);
            query_fail(out, 400, why);
            goto done;
        }
    }
    if (!plan_distance(s, a, &p, out)) goto done;
    run(s, &p, out);
done:
    if (out->status != 200) atomic_fetch_add(&s->errors, 1);
    query_count(s, query_kind_of(a), t0);
}
