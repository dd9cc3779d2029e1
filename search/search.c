/* search.c -- imgfeed-search's loop; see search.h.
 *
 * A message of the queue is measured before it is parsed (its json-c tree
 * must fit SEARCH_MAX_TREE), then each item's hashed `_img` entries go to
 * the catalog (entry.c reads them as the loader does) and the message is
 * acknowledged.  A message that cannot be read is logged, counted and
 * acknowledged: the archiver dead-letters it, and the archive keeps what it
 * keeps, which the next start loads.
 *
 * Metrics (metrics.h), every family registered before the listener starts:
 * imgfeed_items_received_total (the items of each message read),
 * imgfeed_search_index_images and _index_bytes (the catalog keeps them
 * current as the load and the queue add items: catalog_watch), the query
 * metrics (query.h), and imgfeed_database_reconnects_total (pgconn.h),
 * which the loader and the detail pool count.
 */
#include "search.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "catalog.h"
#include "detail.h"
#include "entry.h"
#include "items.h"
#include "itemview.h"
#include "jsonscan.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "pgconn.h"
#include "query.h"
#include "sig.h"
#include "tablename.h"
#include "timeutil.h"
#include "topic.h"
#include "web.h"
#include "xalloc.h"

#define SEARCH_MAX_TREE (64u << 20) /* json-c memory one message may take */
#define SEARCH_TAKE_MS 200
#define SEARCH_TOPICS_MAX 64
#define SEARCH_ITEM_IMAGES_MAX 4096
#define SEARCH_STATS_EVERY_NS (60 * TIME_NS_PER_S)

static const char *const search_state_names[] = {"starting", "loading", "serving", "stopping"};

const char *search_state_name(search_state s) { return search_state_names[s]; }

typedef struct search_counts {
    atomic_uint_fast64_t messages, items, added, same, replaced, unreadable, bad_fields;
    metrics_series *m_items; /* imgfeed_items_received_total */
} search_counts;

typedef struct search_ctx {
    const search_settings *s;
    catalog *cat;
    query_service svc;
    loader_progress load;
    search_counts n;
    _Atomic int state;
    _Atomic int64_t loaded_ms;
} search_ctx;

/* --- /stats --- */

static char *stats_json(void *arg, size_t *len) {
    search_ctx *x = arg;
    catalog_stats cs;
    catalog_get_stats(x->cat, &cs);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "state", json_object_new_string(search_state_name(atomic_load(&x->state))));
    json_object_object_add(o, "items", json_object_new_int64((int64_t)cs.items));
    json_object_object_add(o, "images", json_object_new_int64((int64_t)cs.images));
    for (int k = 0; k < CATALOG_KINDS; k++)
        json_object_object_add(o, catalog_kind_name(k), json_object_new_int64((int64_t)cs.hashed[k]));
    json_object_object_add(o, "index_bytes", json_object_new_int64((int64_t)cs.index_bytes));
    json_object_object_add(o, "catalog_bytes", json_object_new_int64((int64_t)cs.catalog_bytes));
    json_object *load = json_object_new_object();
    json_object_object_add(load, "tables", json_object_new_int64((int64_t)atomic_load(&x->load.tables)));
    json_object_object_add(load, "rows", json_object_new_int64((int64_t)atomic_load(&x->load.rows)));
    json_object_object_add(load, "items", json_object_new_int64((int64_t)atomic_load(&x->load.items)));
    json_object_object_add(load, "bad_fields", json_object_new_int64((int64_t)atomic_load(&x->load.bad_fields)));
    json_object_object_add(load, "ms", json_object_new_int64(atomic_load(&x->loaded_ms)));
    json_object_object_add(o, "load", load);
    json_object *q = json_object_new_object();
    static const char *const names[] = {"messages", "items", "added", "same", "replaced", "unreadable", "bad_fields"};
    atomic_uint_fast64_t *vals[] = {&x->n.messages, &x->n.items,      &x->n.added,     &x->n.same,
                                    &x->n.replaced, &x->n.unreadable, &x->n.bad_fields};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_object_add(q, names[i], json_object_new_int64((int64_t)atomic_load(vals[i])));
    json_object_object_add(o, "queue", q);
    json_object_object_add(o, "queries", json_object_new_int64((int64_t)atomic_load(&x->svc.queries)));
    json_object_object_add(o, "errors", json_object_new_int64((int64_t)atomic_load(&x->svc.errors)));
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, len);
    char *out = xmalloc(*len + 1);
    memcpy(out, s, *len + 1);
    json_object_put(o);
    return out;
}

/* --- the queue --- */

/* One item of a message into the catalog. */
static void take_item(search_ctx *x, const char *table, json_object *item, catalog_image *images) {
    const char *id = itemview_string(item, "_id");
    json_object *imgs = itemview_member(item, "_img");
    atomic_fetch_add(&x->n.items, 1);
    if (!id || !json_object_is_type(imgs, json_type_array)) return;
    size_t n = 0;
    unsigned bad = 0;
    for (size_t i = 0; i < json_object_array_length(imgs) && n < SEARCH_ITEM_IMAGES_MAX; i++)
        if (entry_from_json(json_object_array_get_idx(imgs, i), &images[n], &bad)) n++;
    if (bad) atomic_fetch_add(&x->n.bad_fields, bad);
    if (n == 0) return; /* nothing to find (and an item never loses its pictures) */
    switch (catalog_add(x->cat, table, id, images, n)) {
    case CATALOG_NEW: atomic_fetch_add(&x->n.added, 1); break;
    case CATALOG_SAME: atomic_fetch_add(&x->n.same, 1); break;
    case CATALOG_REPLACED: atomic_fetch_add(&x->n.replaced, 1); break;
    }
}

static void take_message(search_ctx *x, const mq_delivery *d, catalog_image *images) {
    char why[256], table[TABLENAME_MAX + 1];
    atomic_fetch_add(&x->n.messages, 1);
    const char *key = d->routing_key ? d->routing_key : "";
    if (!tablename_from_key(x->s->common.exchange, key, table, why, sizeof why)) {
        atomic_fetch_add(&x->n.unreadable, 1);
        log_warn("a message of %s names no archive table, passed over: %s", key, why);
        return;
    }
    jsonscan_cost cost = {0};
    json_object *items = NULL;
    if (jsonscan_body(d->body, d->len, &cost, why, sizeof why) == 0 &&
        jsonscan_fits(&cost, SEARCH_MAX_TREE, false, "the message", why, sizeof why))
        items = items_parse(d->body, d->len, why, sizeof why);
    if (!items) {
        atomic_fetch_add(&x->n.unreadable, 1);
        log_warn("a message of %s cannot be read, passed over: %s", key, why);
        return;
    }
    size_t n = json_object_array_length(items);
    metrics_add(x->n.m_items, n);
    for (size_t i = 0; i < n; i++)
        take_item(x, table, json_object_array_get_idx(items, i), images);
    json_object_put(items);
}

/* --- loading --- */

/* Sleeps MS, or less when a stop is requested. */
static void nap(int64_t ms) {
    for (int64_t left = ms; left > 0 && !sig_stop_requested(); left -= 100)
        usleep((useconds_t)(left < 100 ? left : 100) * 1000);
}

static int load_archive(search_ctx *x) {
    backoff b;
    backoff_init(&b, 1000, 30000);
    int64_t t0 = time_mono_ns();
    atomic_store(&x->state, SEARCH_LOADING);
    while (!sig_stop_requested()) {
        char why[600];
        if (loader_run(x->s->pg, x->s->common.exchange, x->cat, &x->load, why, sizeof why) == 0) {
            catalog_stats cs;
            catalog_get_stats(x->cat, &cs);
            int64_t ms = (time_mono_ns() - t0) / TIME_NS_PER_MS;
            atomic_store(&x->loaded_ms, ms);
            log_info("loaded the archive in %.1f s: %" PRIu64 " items, %" PRIu64 " images (%" PRIu64
                     " phashes, %" PRIu64 " dhashes); index %.1f MiB, catalog %.1f MiB",
                     (double)ms / 1000, cs.items, cs.images, cs.hashed[CATALOG_PHASH], cs.hashed[CATALOG_DHASH],
                     (double)cs.index_bytes / 1048576, (double)cs.catalog_bytes / 1048576);
            return 0;
        }
        if (sig_stop_requested()) break;
        int64_t wait = backoff_next_ms(&b);
        log_warn("cannot load the archive: %s; trying again in %.1f s", why, (double)wait / 1000);
        nap(wait);
    }
    return -1;
}

/* Register every family of the service (see the top) and give the
 * catalog its gauges. */
static void search_metrics_init(search_ctx *x) {
    x->n.m_items = items_received_metric();
    catalog_watch(x->cat,
                  metrics_get(metrics_gauge("imgfeed_search_index_images",
                                            "images in the index (those with a phash or a dhash)", NULL)),
                  metrics_get(metrics_gauge("imgfeed_search_index_bytes",
                                            "memory of the index: hashes, items and digest tables", NULL)));
    query_metrics_init(&x->svc);
    pgconn_metrics_init();
}

/* Cut the comma-separated LIST into OUT (NULL-terminated, at most MAX),
 * each checked as a binding key; the strings live in *STORE. */
static int split_topics(const char *list, const char **out, size_t max, char **store, char *why, size_t whylen) {
    *store = xstrdup(list ? list : "");
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(*store, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char reason[200];
        if (!topic_check(t, reason, sizeof reason)) {
            snprintf(why, whylen, "--topics: %s", reason);
            return -1;
        }
        if (n == max) {
            snprintf(why, whylen, "--topics: at most %zu", max);
            return -1;
        }
        out[n++] = t;
    }
    out[n] = NULL;
    return 0;
}

int search_run(const search_settings *s) {
    char why[512];
    const char *keys[SEARCH_TOPICS_MAX + 1];
    char *keys_store = NULL, *queue = NULL;
    int status = 1;
    search_ctx *x = xcalloc(1, sizeof *x);
    x->s = s;
    catalog_image *images = xmalloc(SEARCH_ITEM_IMAGES_MAX * sizeof *images);
    search_web *w = NULL;
    mq *q = NULL;
    netguard *guard = NULL;
    if (split_topics(s->topics, keys, SEARCH_TOPICS_MAX, &keys_store, why, sizeof why) != 0) {
        log_error("%s", why);
        goto done;
    }
    guard = netguard_new(s->allow_private);
    if (s->allow_net && *s->allow_net && netguard_allow_list(guard, s->allow_net, why, sizeof why) != 0) {
        log_error("--allow-net: %s", why);
        goto done;
    }
    x->cat = catalog_new();
    query_service *svc = &x->svc;
    svc->cat = x->cat;
    svc->det = detail_new(s->pg, (size_t)s->max_connections);
    svc->guard = guard;
    fetch_options_init(&svc->fetch);
    svc->fetch.user_agent = s->user_agent;
    svc->fetch.max_bytes = s->max_bytes;
    svc->fetch.timeout_ms = s->download_timeout_ms;
    svc->fetch.max_transfers = 1;
    ih_options_init(&svc->hashing);
    svc->hashing.max_bytes = (uint64_t)s->max_bytes;
    svc->hashing.max_pixels = (uint64_t)s->max_pixels;
    svc->budget = membudget_new((uint64_t)s->max_memory);
    pthread_mutex_init(&svc->budget_lock, NULL);
    search_metrics_init(x);

    web_options wo = {.listen = s->listen, .service = svc, .max_connections = (unsigned)s->max_connections,
                      .stats = stats_json, .stats_arg = x};
    w = web_start(&wo, why, sizeof why);
    if (!w) {
        log_error("%s", why);
        goto done;
    }
    log_info("listening on http://%s (port %d)", s->listen, web_port(w));

    queue = s->queue && *s->queue ? xstrdup(s->queue) : xasprintf("%s.search", s->common.exchange);
    mq_queue_spec own = {.name = queue, .durable = true, .keys = keys[0] ? keys : NULL};
    mq_options opts;
    mq_options_init(&opts, &s->common, "imgfeed-search");
    opts.own_queue = &own;
    int rc = mq_new(&opts, &q);
    if (rc != MQ_OK) {
        status = rc == MQ_STOPPED ? 0 : 1;
        if (rc != MQ_STOPPED) log_error("cannot reach the broker: %s", mq_status_text(rc));
        goto done;
    }
    if (load_archive(x) != 0) {
        status = 0; /* only a stop ends the loading */
        goto done;
    }
    atomic_store(&svc->ready, true);
    atomic_store(&x->state, SEARCH_SERVING);
    rc = mq_consume(q, queue, (uint16_t)s->prefetch);
    if (rc != MQ_OK) {
        status = rc == MQ_STOPPED ? 0 : 1;
        if (rc != MQ_STOPPED) log_error("cannot consume %s: %s", queue, mq_status_text(rc));
        goto done;
    }
    log_info("serving search on http://%s, catching up from queue %s bound with %s", s->listen, queue, s->topics);
    int64_t next_stats = time_mono_ns() + SEARCH_STATS_EVERY_NS;
    while (!sig_stop_requested()) {
        mq_delivery d;
        rc = mq_next(q, &d, SEARCH_TAKE_MS);
        if (rc == MQ_OK) {
            take_message(x, &d, images);
            mq_ack(q, d.tag, false);
            mq_delivery_release(&d);
        } else if (rc != MQ_TIMEOUT && rc != MQ_STALE) {
            if (rc == MQ_STOPPED) break;
            log_warn("the broker: %s; answering from the index meanwhile", mq_status_text(rc));
        }
        if (time_mono_ns() >= next_stats) {
            catalog_stats cs;
            catalog_get_stats(x->cat, &cs);
            log_info("%" PRIu64 " images of %" PRIu64 " items; %" PRIu64 " queries; queue: %" PRIu64
                     " items added, %" PRIu64 " already held, %" PRIu64 " unreadable messages",
                     cs.images, cs.items, (uint64_t)atomic_load(&svc->queries), (uint64_t)atomic_load(&x->n.added),
                     (uint64_t)atomic_load(&x->n.same), (uint64_t)atomic_load(&x->n.unreadable));
            next_stats = time_mono_ns() + SEARCH_STATS_EVERY_NS;
        }
    }
    status = 0;
done:
    atomic_store(&x->state, SEARCH_STOPPING);
    log_info("stopping");
    web_stop(w);
    mq_free(q);
    detail_free(x->svc.det);
    if (x->svc.budget) {
        membudget_free(x->svc.budget);
        pthread_mutex_destroy(&x->svc.budget_lock);
    }
    catalog_free(x->cat);
    netguard_free(guard);
    free(images);
    free(queue);
    free(keys_store);
    free(x);
    return status;
}
