/* hub.c -- events shared between a replay ring and the viewers' rings; see
 * hub.h.
 *
 * One mutex guards everything.  A parked viewer that an event is queued for
 * is marked due and woken by the next hub_flush, so that many events at a
 * high rate cost a viewer one wake and one write, not one each.  An event
 * is allocated once with its frame
 * inline and counted: one reference for the replay ring, one for each
 * viewer ring or "frame being written" that holds it.  The viewers are a
 * doubly linked list; publishing walks it once per event, matching the
 * event's routing key once per distinct list of topics (hub_topics).
 *
 * Metrics (metrics.h; registered by hub_new, shared by every hub of a
 * process): imgfeed_live_viewers follows the viewers joined and not yet
 * left, imgfeed_live_events_sent_total the events handed to a viewer's
 * stream (hub_read), imgfeed_live_events_dropped_total what viewers lost
 * (as hub_stats.dropped).  They are updated under the hub's lock, where
 * the stats are, with relaxed atomics that scrapes read without it.
 */
#include "hub.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "timeutil.h"
#include "topic.h"
#include "xalloc.h"

typedef struct hub_event {
    unsigned refs;
    uint64_t id;
    char *key;   /* routing key */
    size_t len;  /* bytes of frame */
    char frame[]; /* "id: N\nevent: item\ndata: {...}\n\n" */
} hub_event;

/* The topics of viewers: those that ask for the same list share one, and
 * with it the answer for the last event matched, so an event is matched
 * once per distinct list, not once per viewer. */
typedef struct hub_topics {
    struct hub_topics *next;
    char **keys;
    size_t n;
    size_t refs;
    uint64_t memo_id; /* the event last matched (ids are never 0) */
    bool memo;        /* and whether it matched */
} hub_topics;

struct hub_viewer {
    hub_viewer *prev, *next;
    hub_topics *topics;
    hub_event **ring; /* waiting events, oldest at head */
    size_t head, count;
    hub_event *cur;   /* the frame being written */
    size_t cur_off;
    char notice[96];  /* a dropped notice or a ping being written */
    size_t notice_len, notice_off;
    uint64_t dropped_unsent;
    bool parked, ping;
    bool due; /* parked with events waiting: to be woken by hub_flush */
    hub_park_fn sleep, wake;
    void *arg;
};

struct hub {
    pthread_mutex_t lock;
    hub_event **replay; /* ring of replay_cap, oldest at replay_head */
    size_t replay_cap, replay_head, replay_count;
    size_t buffer, max_viewers;
    hub_viewer *viewers;
    hub_topics *topic_lists;
    uint64_t first_id, next_id;
    bool closing;
    size_t ndue; /* viewers to wake at the next hub_flush */
    hub_stats stats;
    metrics_series *m_viewers, *m_sent, *m_dropped;
};

static void event_unref(hub_event *e) {
    if (e && --e->refs == 0) {
        free(e->key);
        free(e);
    }
}

hub *hub_new(size_t replay, size_t buffer, size_t max_viewers) {
    hub *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->replay_cap = replay ? replay : 1;
    h->replay = xcalloc(h->replay_cap, sizeof *h->replay);
    h->buffer = buffer ? buffer : 1;
    h->max_viewers = max_viewers;
    h->first_id = h->next_id = (uint64_t)(time_wall_ms() * 1000);
    h->m_viewers = metrics_get(metrics_gauge("imgfeed_live_viewers", "open event streams", NULL));
    h->m_sent = metrics_get(
        metrics_counter("imgfeed_live_events_sent_total", "events sent to viewers, one per event and viewer", NULL));
    h->m_dropped = metrics_get(metrics_counter(
        "imgfeed_live_events_dropped_total",
        "events viewers lost: their buffer full, or gone from the replay ring before a reconnect", NULL));
    return h;
}

/* The shared list of these N topics, made when nobody has it yet. */
static hub_topics *topics_take(hub *h, const char *const *keys, size_t n) {
    for (hub_topics *t = h->topic_lists; t; t = t->next) {
        bool same = t->n == n;
        for (size_t i = 0; same && i < n; i++)
            same = strcmp(t->keys[i], keys[i]) == 0;
        if (same) {
            t->refs++;
            return t;
        }
    }
    hub_topics *t = xcalloc(1, sizeof *t);
    t->keys = xcalloc(n ? n : 1, sizeof *t->keys);
    for (size_t i = 0; i < n; i++)
        t->keys[i] = xstrdup(keys[i]);
    t->n = n;
    t->refs = 1;
    t->next = h->topic_lists;
    h->topic_lists = t;
    return t;
}

static void topics_release(hub *h, hub_topics *t) {
    if (--t->refs) return;
    for (hub_topics **p = &h->topic_lists; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    for (size_t i = 0; i < t->n; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t);
}

static void viewer_release(hub *h, hub_viewer *v) {
    for (size_t i = 0; i < v->count; i++)
        event_unref(v->ring[(v->head + i) % h->buffer]);
    event_unref(v->cur);
    topics_release(h, v->topics);
    free(v->ring);
    free(v);
}

void hub_free(hub *h) {
    if (!h) return;
    metrics_gauge_add(h->m_viewers, -(double)h->stats.viewers);
    while (h->viewers) {
        hub_viewer *v = h->viewers;
        h->viewers = v->next;
        viewer_release(h, v);
    }
    for (size_t i = 0; i < h->replay_count; i++)
        event_unref(h->replay[(h->replay_head + i) % h->replay_cap]);
    free(h->replay);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static bool viewer_wants(const hub_viewer *v, const hub_event *e) {
    hub_topics *t = v->topics;
    if (t->memo_id != e->id) {
        t->memo_id = e->id;
        t->memo = false;
        for (size_t i = 0; i < t->n && !t->memo; i++)
            t->memo = topic_match(t->keys[i], e->key);
    }
    return t->memo;
}

/* Queue E for V; a full ring loses its oldest event, counted. */
static void viewer_push(hub *h, hub_viewer *v, hub_event *e) {
    if (v->count == h->buffer) {
        event_unref(v->ring[v->head]);
        v->head = (v->head + 1) % h->buffer;
        v->count--;
        v->dropped_unsent++;
        h->stats.dropped++;
        metrics_inc(h->m_dropped);
    }
    e->refs++;
    v->ring[(v->head + v->count) % h->buffer] = e;
    v->count++;
}

static void viewer_wake(hub_viewer *v) {
    if (!v->parked) return;
    v->parked = false;
    v->wake(v->arg);
}

/* Wake V now (a ping, the close), forgetting a pending hub_flush wake. */
static void viewer_wake_now(hub *h, hub_viewer *v) {
    if (v->due) {
        v->due = false;
        h->ndue--;
    }
    viewer_wake(v);
}

/* The I-th oldest event of the replay ring. */
static hub_event *replay_at(const hub *h, size_t i) { return h->replay[(h->replay_head + i) % h->replay_cap]; }

hub_viewer *hub_join(hub *h, const char *const *topics, size_t ntopics, size_t backlog, uint64_t last_id,
                     hub_park_fn sleep, hub_park_fn wake, void *arg) {
    pthread_mutex_lock(&h->lock);
    if (h->closing || h->stats.viewers >= h->max_viewers) {
        pthread_mutex_unlock(&h->lock);
        return NULL;
    }
    hub_viewer *v = xcalloc(1, sizeof *v);
    v->topics = topics_take(h, topics, ntopics);
    v->ring = xcalloc(h->buffer, sizeof *v->ring);
    v->sleep = sleep;
    v->wake = wake;
    v->arg = arg;
    if (last_id && last_id >= h->first_id) {
        /* a reconnect: everything after its last event, what fell out of the ring counted */
        uint64_t oldest = h->replay_count ? replay_at(h, 0)->id : h->next_id;
        if (last_id + 1 < oldest) {
            v->dropped_unsent += oldest - last_id - 1;
            h->stats.dropped += oldest - last_id - 1;
            metrics_add(h->m_dropped, oldest - last_id - 1);
        }
        for (size_t i = 0; i < h->replay_count; i++) {
            hub_event *e = replay_at(h, i);
            if (e->id > last_id && viewer_wants(v, e)) viewer_push(h, v, e);
        }
    } else if (last_id || backlog) {
        /* a first connection asking for the newest few, or a reconnect to a restarted server: from
         * the start of the newest BACKLOG matching ones (all of the ring after a restart) */
        size_t want = last_id ? h->buffer : (backlog < h->buffer ? backlog : h->buffer), found = 0, from = h->replay_count;
        while (from > 0 && found < want) {
            if (viewer_wants(v, replay_at(h, from - 1))) found++;
            from--;
        }
        for (size_t i = from; i < h->replay_count; i++) {
            hub_event *e = replay_at(h, i);
            if (viewer_wants(v, e)) viewer_push(h, v, e);
        }
    }
    v->next = h->viewers;
    if (h->viewers) h->viewers->prev = v;
    h->viewers = v;
    h->stats.viewers++;
    metrics_gauge_add(h->m_viewers, 1);
    pthread_mutex_unlock(&h->lock);
    return v;
}

void hub_leave(hub *h, hub_viewer *v) {
    if (!v) return;
    pthread_mutex_lock(&h->lock);
    if (v->due) h->ndue--;
    if (v->prev) v->prev->next = v->next;
    else h->viewers = v->next;
    if (v->next) v->next->prev = v->prev;
    h->stats.viewers--;
    metrics_gauge_add(h->m_viewers, -1);
    viewer_release(h, v);
    pthread_mutex_unlock(&h->lock);
}

uint64_t hub_publish(hub *h, const char *key, const char *data, size_t len) {
    pthread_mutex_lock(&h->lock);
    uint64_t id = h->next_id++;
    char head[64];
    int hn = snprintf(head, sizeof head, "id: %" PRIu64 "\nevent: item\ndata: ", id);
    hub_event *e = xmalloc(sizeof *e + (size_t)hn + len + 3);
    e->refs = 1; /* the replay ring's */
    e->id = id;
    e->key = xstrdup(key);
    memcpy(e->frame, head, (size_t)hn);
    memcpy(e->frame + hn, data, len);
    memcpy(e->frame + hn + len, "\n\n", 3);
    e->len = (size_t)hn + len + 2;
    if (h->replay_count == h->replay_cap) {
        event_unref(h->replay[h->replay_head]);
        h->replay_head = (h->replay_head + 1) % h->replay_cap;
        h->replay_count--;
    }
    h->replay[(h->replay_head + h->replay_count) % h->replay_cap] = e;
    h->replay_count++;
    h->stats.events++;
    h->stats.last_id = id;
    for (hub_viewer *v = h->viewers; v; v = v->next) {
        if (!viewer_wants(v, e)) continue;
        viewer_push(h, v, e);
        if (v->parked && !v->due) {
            v->due = true;
            h->ndue++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return id;
}

size_t hub_flush(hub *h) {
    pthread_mutex_lock(&h->lock);
    size_t n = h->ndue;
    if (n) {
        for (hub_viewer *v = h->viewers; v; v = v->next) {
            if (!v->due) continue;
            v->due = false;
            viewer_wake(v);
        }
        h->ndue = 0;
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* Copy what is left of TEXT (LEN bytes, *OFF written) into OUT past *N,
 * at most MAX in all; true when all of it is out. */
static bool copy_out(const char *text, size_t len, size_t *off, char *out, size_t max, size_t *n) {
    size_t k = len - *off < max - *n ? len - *off : max - *n;
    memcpy(out + *n, text + *off, k);
    *n += k;
    *off += k;
    return *off == len;
}

long hub_read(hub *h, hub_viewer *v, char *out, size_t max) {
    pthread_mutex_lock(&h->lock);
    if (h->closing) {
        pthread_mutex_unlock(&h->lock);
        return -1;
    }
    size_t n = 0;
    while (n < max) {
        if (v->notice_len) {
            if (copy_out(v->notice, v->notice_len, &v->notice_off, out, max, &n)) v->notice_len = v->notice_off = 0;
        } else if (v->cur) {
            if (copy_out(v->cur->frame, v->cur->len, &v->cur_off, out, max, &n)) {
                event_unref(v->cur);
                v->cur = NULL;
                v->cur_off = 0;
            }
        } else if (v->dropped_unsent) {
            v->notice_len = (size_t)snprintf(v->notice, sizeof v->notice, "event: dropped\ndata: {\"dropped\":%" PRIu64 "}\n\n",
                                             v->dropped_unsent);
            v->dropped_unsent = 0;
        } else if (v->count) {
            v->cur = v->ring[v->head];
            v->head = (v->head + 1) % h->buffer;
            v->count--;
            h->stats.delivered++;
            metrics_inc(h->m_sent);
        } else if (v->ping) {
            v->ping = false;
            v->notice_len = (size_t)snprintf(v->notice, sizeof v->notice, ": ping\n\n");
        } else {
            break;
        }
    }
    if (n == 0) {
        v->parked = true;
        v->sleep(v->arg);
    }
    pthread_mutex_unlock(&h->lock);
    return (long)n;
}

void hub_ping(hub *h) {
    pthread_mutex_lock(&h->lock);
    for (hub_viewer *v = h->viewers; v; v = v->next) {
        v->ping = true;
        viewer_wake_now(h, v);
    }
    pthread_mutex_unlock(&h->lock);
}

void hub_close(hub *h) {
    pthread_mutex_lock(&h->lock);
    h->closing = true;
    for (hub_viewer *v = h->viewers; v; v = v->next)
        viewer_wake_now(h, v);
    pthread_mutex_unlock(&h->lock);
}

void hub_get_stats(hub *h, hub_stats *out) {
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    pthread_mutex_unlock(&h->lock);
}
