/* query.h -- one search request into its JSON answer.
 *
 * The HTTP side (web.c) and nothing else calls these; each call is one
 * request, on one of the server's threads, many at once.
 *
 *   GET /search?phash=B64 | dhash=B64 | sha1=HEX | md5=HEX | url=URL
 *               [&k=N] [&max_distance=D] [&hash=phash|dhash]
 *   POST /search (the body is an image) [?k=...&max_distance=...&hash=...]
 *
 * An image (the body, or the picture at url, downloaded through common/
 * fetch.h with the private-address guard and the byte limit) is hashed by
 * imghash exactly as the hasher hashes an archived one, then searched by
 * its phash (hash=dhash: its dhash).  k is 1..QUERY_K_MAX (10 by default);
 * max_distance 0..the hash's bits, by default QUERY_DEFAULT_RADIUS of them.
 *
 * The answer, 200:
 *   {"query": {"kind", "hash" (or "sha1"/"md5"), "bits", "k",
 *              "max_distance", and for an image its `_img` fields},
 *    "results": [detail.h's objects, nearest first],
 *    "took_ms": ..., "examined": hashes compared, "scanned": true when the
 *    index compared every hash (a query far from everything),
 *    "warning": "..." (details missing: the archive's reason)}
 * or 4xx/5xx with {"error": "the reason"}: 400 for a bad argument, a URL
 * that may not be fetched (a private address) or a hash of a size the
 * archive does not hold; 413 for a file or picture over the limits; 415
 * for what is not an image; 422 for an image that cannot be decoded; 502
 * when the URL's site fails; 503 while the archive is loading or memory
 * for the request is lacking (with Retry-After).
 *
 * Metrics: every request query_get or query_image answers counts in
 * imgfeed_search_queries_total{kind} and its time (from the call, its
 * arguments and body in hand, to its answer) in
 * imgfeed_search_query_seconds{kind}, errors included; kind is from the
 * fixed list of query_kind (query_metrics_init registers every kind at 0).
 * The HTTP side counts the requests for /search it refuses itself
 * (query_count).
 */
#ifndef IMGFEED_SEARCH_QUERY_H
#define IMGFEED_SEARCH_QUERY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "detail.h"
#include "fetch.h"
#include "imghash/imghash.h"
#include "membudget.h"
#include "metrics.h"
#include "netguard.h"

#define QUERY_K_DEFAULT 10
#define QUERY_K_MAX 1000
#define QUERY_DEFAULT_RADIUS(bits) ((bits) * 3 / 20) /* 21 of 144 bits: near-duplicates, not look-alikes */

/* What a request searches by: the label kind of the query metrics. */
typedef enum query_kind {
    QUERY_PHASH,   /* GET phash= */
    QUERY_DHASH,   /* GET dhash= */
    QUERY_SHA1,    /* GET sha1= */
    QUERY_MD5,     /* GET md5= */
    QUERY_URL,     /* GET url=: the picture at a URL */
    QUERY_UPLOAD,  /* POST: the picture in the body */
    QUERY_INVALID, /* GET naming none of those or more than one, or another method (400, 405) */
    QUERY_KINDS
} query_kind;

/* "phash", "dhash", "sha1", "md5", "url", "upload", "invalid". */
const char *query_kind_name(query_kind k);

typedef struct query_service {
    catalog *cat;
    detail *det;
    const netguard *guard;
    fetch_options fetch;   /* for url=; fetch.max_bytes is the hashing limit too */
    ih_options hashing;    /* as the hasher's (--max-bytes, --max-pixels, --hash-size) */
    membudget *budget;     /* bodies and hashing; shared by the threads under budget_lock */
    pthread_mutex_t budget_lock;
    atomic_bool ready;     /* the archive is loaded */
    atomic_uint_fast64_t queries, errors;
    metrics_series *m_queries[QUERY_KINDS], *m_seconds[QUERY_KINDS]; /* query_metrics_init */
} query_service;

/* Register the query metrics, every kind at 0, and keep their series in S;
 * before serving.  (Without it the requests are answered, not counted.) */
void query_metrics_init(query_service *s);
/* Count a request of KIND answered, begun at STARTED_NS (time_mono_ns). */
void query_count(query_service *s, query_kind kind, int64_t started_ns);

typedef struct query_args {
    const char *phash, *dhash, *sha1, *md5, *url; /* at most one */
    const char *k, *max_distance, *hash;
    int extra; /* arguments given twice or unknown: refused */
    char extra_name[64];
} query_args;

typedef struct query_answer {
    unsigned status;
    char *body; /* JSON, the caller's to free() */
    size_t len;
    int retry_after_s; /* > 0: send Retry-After */
} query_answer;

/* GET /search with ARGS. */
void query_get(query_service *s, const query_args *args, query_answer *out);
/* POST /search: the image of LEN bytes at DATA (the caller reserved them). */
void query_image(query_service *s, const query_args *args, const unsigned char *data, size_t len, query_answer *out);

/* Reserve/give back request memory from the shared budget (thread-safe).
 * False when TOTAL does not fit now. */
bool query_reserve(query_service *s, membudget_claim *c, uint64_t total);
void query_release(query_service *s, membudget_claim *c);

/* An error answer: STATUS with {"error": WHY}. */
void query_fail(query_answer *out, unsigned status, const char *why);

#endif
