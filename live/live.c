/* live.c -- imgfeed-live's loop; see live.h.
 *
 * The main thread consumes the process's own queue and publishes events to
 * the hub; libmicrohttpd's thread (web.c) serves the viewers.  Each message
 * is measured before it is parsed (jsonscan: its json-c tree must fit in
 * LIVE_MAX_TREE), then every item with a hashed picture becomes an event,
 * and the message is acknowledged.  A message that cannot be read is logged,
 * counted and acknowledged: the archive has its own copy, and a live view
 * has nothing to keep.
 *
 *   STARTING ──queue declared, listening──▶ SERVING ──SIGTERM──▶ CLOSING:
 *   streams ended (hub_close), connections closed (web_stop), exit 0.
 *
 * Viewers are woken (hub_flush) LIVE_FLUSH_MS after the first event that
 * came since the last wake, or as soon as no delivery is waiting: a burst
 * reaches a viewer in one write, a lone event at once.  A ping goes to every
 * idle viewer each --heartbeat, and the counts are logged once a minute.
 *
 * Metrics (metrics.h), registered before the listener and the broker
 * connection: imgfeed_items_received_total counts the items of each
 * message read (an unreadable one has none to count), and the hub keeps
 * the viewers' (hub.h).
 */
#include "live.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "hub.h"
#include "items.h"
#include "jsonscan.h"
#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "sig.h"
#include "timeutil.h"
#include "topic.h"
#include "web.h"
#include "xalloc.h"

#define LIVE_MAX_TREE (64u << 20) /* json-c memory one message may take */
#define LIVE_TAKE_MS 200          /* longest wait for a delivery */
#define LIVE_FLUSH_MS 10          /* viewers are woken this often while events come (hub_flush) */
#define LIVE_STATS_EVERY_NS (60 * TIME_NS_PER_S)
#define LIVE_TOPICS_MAX 64

typedef struct live_counts {
    uint64_t messages, items, events, unreadable;
    metrics_series *m_items; /* imgfeed_items_received_total */
} live_counts;

/* One delivery into events. */
static void live_take(hub *h, const event_rules *rules, const mq_delivery *d, live_counts *n) {
    char why[256];
    jsonscan_cost cost = {0};
    json_object *items = NULL;
    n->messages++;
    if (jsonscan_body(d->body, d->len, &cost, why, sizeof why) == 0 &&
        jsonscan_fits(&cost, LIVE_MAX_TREE, false, "the message", why, sizeof why))
        items = items_parse(d->body, d->len, why, sizeof why);
    if (!items) {
        n->unreadable++;
        log_warn("a message of %s cannot be read, passed over: %s", d->routing_key ? d->routing_key : "?", why);
        return;
    }
    size_t count = json_object_array_length(items);
    metrics_add(n->m_items, count);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        char *ev = event_make(rules, d->routing_key ? d->routing_key : "", json_object_array_get_idx(items, i), &len);
        n->items++;
        if (!ev) continue;
        hub_publish(h, d->routing_key ? d->routing_key : "", ev, len);
        n->events++;
        free(ev);
    }
    json_object_put(items);
}

int live_run(const live_settings *s) {
    char why[512], host[64];
    const char *keys[LIVE_TOPICS_MAX + 1], *nsfw[LIVE_TOPICS_MAX + 1];
    char *keys_store = NULL, *nsfw_store = NULL, *queue = NULL;
    int status = 1;
    hub *h = NULL;
    web *w = NULL;
    mq *q = NULL;
    if (topic_split_list(s->topics, keys, LIVE_TOPICS_MAX, &keys_store, "--topics", why, sizeof why) != 0 ||
        topic_split_list(s->nsfw_topics, nsfw, LIVE_TOPICS_MAX, &nsfw_store, "--nsfw-topics", why, sizeof why) != 0) {
        log_error("%s", why);
        goto done;
    }
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '.') *p = '-';
    queue = s->queue && *s->queue ? xstrdup(s->queue)
                                   : xasprintf("%s.live.%s.%ld", s->common.exchange, host, (long)getpid());

    live_counts n = {.m_items = items_received_metric()};
    h = hub_new((size_t)s->replay, (size_t)s->viewer_buffer, (size_t)s->max_viewers);
    web_options wo = {.listen = s->listen, .hub = h, .max_viewers = (size_t)s->max_viewers,
                      .viewer_timeout_ms = s->viewer_timeout_ms, .save_dir = s->save_dir && *s->save_dir ? s->save_dir : NULL};
    w = web_start(&wo, why, sizeof why);
    if (!w) {
        log_error("%s", why);
        goto done;
    }

    mq_queue_spec own = {.name = queue, .durable = false, .max_length = s->queue_length, .drop_head = true,
                         .keys = keys[0] ? keys : NULL};
    mq_options opts;
    mq_options_init(&opts, &s->common, "imgfeed-live");
    opts.own_queue = &own;
    int rc = mq_new(&opts, &q);
    if (rc == MQ_OK) rc = mq_consume(q, queue, 200);
    if (rc != MQ_OK) {
        status = rc == MQ_STOPPED ? 0 : 1;
        if (rc != MQ_STOPPED) log_error("cannot consume %s: %s", queue, mq_status_text(rc));
        goto done;
    }
    log_info("serving the live view on http://%s (port %d), queue %s bound with %s", s->listen, web_port(w), queue,
             s->topics);

    event_rules rules = {.nsfw_topics = nsfw, .files = wo.save_dir != NULL};
    int64_t next_ping = time_mono_ns() + s->heartbeat_ms * TIME_NS_PER_MS;
    int64_t next_stats = time_mono_ns() + LIVE_STATS_EVERY_NS, next_flush = 0;
    bool pending = false; /* events published since the last flush */
    while (!sig_stop_requested()) {
        mq_delivery d;
        /* with events pending, wait no longer than the next flush, and flush when nothing comes */
        int64_t wait_ms = pending ? (next_flush - time_mono_ns()) / 1000000 : LIVE_TAKE_MS;
        rc = mq_next(q, &d, wait_ms < 0 ? 0 : wait_ms);
        if (rc == MQ_OK) {
            uint64_t before = n.events;
            live_take(h, &rules, &d, &n);
            mq_ack(q, d.tag, false);
            mq_delivery_release(&d);
            if (n.events != before && !pending) {
                pending = true;
                next_flush = time_mono_ns() + LIVE_FLUSH_MS * TIME_NS_PER_MS;
            }
        } else if (rc != MQ_TIMEOUT && rc != MQ_STALE) {
            if (rc == MQ_STOPPED) break;
            log_warn("the broker: %s", mq_status_text(rc));
        }
        int64_t now = time_mono_ns();
        if (pending && (now >= next_flush || rc == MQ_TIMEOUT)) {
            hub_flush(h);
            pending = false;
        }
        if (s->heartbeat_ms > 0 && now >= next_ping) {
            hub_ping(h);
            next_ping = now + s->heartbeat_ms * TIME_NS_PER_MS;
        }
        if (now >= next_stats) {
            hub_stats st;
            hub_get_stats(h, &st);
            log_info("%zu viewers; %" PRIu64 " messages, %" PRIu64 " items, %" PRIu64 " events, %" PRIu64
                     " unreadable; %" PRIu64 " events viewers lost",
                     st.viewers, n.messages, n.items, n.events, n.unreadable, st.dropped);
            next_stats = now + LIVE_STATS_EVERY_NS;
        }
    }
    hub_stats st;
    hub_get_stats(h, &st);
    log_info("stopping: ending %zu streams", st.viewers);
    status = 0;
done:
    if (h) hub_close(h);
    web_stop(w);
    mq_free(q);
    hub_free(h);
    free(queue);
    free(keys_store);
    free(nsfw_store);
    return status;
}
