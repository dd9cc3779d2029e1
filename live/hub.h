/* hub.h -- the events of imgfeed-live and the viewers they go to.
 *
 * An event is one SSE frame ("id: N\nevent: item\ndata: {...}\n\n") made
 * once and shared by reference count between the replay ring and every
 * viewer that will send it.  Ids grow by one from the time the hub was made
 * (its start in milliseconds x 1000), so a browser that reconnects to a
 * restarted server with an old Last-Event-ID is sent the whole replay ring.
 *
 * The replay ring keeps the last `replay` events.  A viewer has topics (AMQP
 * binding keys, topic.h), a ring of at most `buffer` events waiting to be
 * sent, the frame being written and how far, and the count of events it
 * lost: when its ring is full, the oldest waiting event is dropped and
 * counted, and the next thing it is sent is an "event: dropped" frame
 * saying how many.  So a viewer that cannot keep up costs its own ring and
 * never memory or time of the others, and the publisher never waits for it.
 *
 * Waiting: when a viewer has nothing to send, hub_read asks the caller's
 * sleep function to park it (libmicrohttpd's suspend) while the hub lock is
 * held; hub_publish marks it due when an event for it arrives, and the next
 * hub_flush wakes it (resume), under the same lock: a wake can never come
 * before its sleep.  The publisher flushes every few milliseconds and when
 * it has nothing else to do, so a burst of events reaches a viewer in one
 * write.  hub_ping wakes
 * every parked viewer to send a comment line, which keeps proxies open and
 * finds the browsers that went away.
 *
 * Bound: events are at most `max_event` bytes (the caller cuts them), so the
 * hub holds at most (replay + viewers x buffer) x max_event bytes of events,
 * plus per viewer its ring of pointers.
 *
 * Threads: every function takes the hub's lock; callbacks are called with
 * it held and must not call back into the hub.
 *
 * Metrics: hub_new registers imgfeed_live_viewers, _events_sent_total and
 * _events_dropped_total (metrics.h), which the hub keeps as its stats.
 */
#ifndef IMGFEED_HUB_H
#define IMGFEED_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hub hub;
typedef struct hub_viewer hub_viewer;

/* Park or wake the connection of a viewer (ARG is what hub_join was given). */
typedef void (*hub_park_fn)(void *arg);

typedef struct hub_stats {
    size_t viewers;
    uint64_t events;     /* published */
    uint64_t delivered;  /* frames of events handed to viewers' connections */
    uint64_t dropped;    /* events viewers lost, their rings full */
    uint64_t last_id;    /* the newest event's id, 0 before the first */
} hub_stats;

hub *hub_new(size_t replay, size_t buffer, size_t max_viewers);
void hub_free(hub *h);

/* A new viewer of TOPICS (NTOPICS checked binding keys, copied).  BACKLOG:
 * the newest matching events of the replay ring to send first (at most the
 * buffer); LAST_ID (0: none): a reconnecting browser's Last-Event-ID, which
 * queues every matching event after it instead, the ones that fell out of
 * the ring counted as dropped.  SLEEP and WAKE park and wake its connection
 * (with ARG).  NULL when max_viewers are connected. */
hub_viewer *hub_join(hub *h, const char *const *topics, size_t ntopics, size_t backlog, uint64_t last_id,
                     hub_park_fn sleep, hub_park_fn wake, void *arg);
/* The viewer is gone (its connection closed): forget it. */
void hub_leave(hub *h, hub_viewer *v);

/* Publish an event of routing key KEY whose data is the LEN bytes of JSON
 * (one line) at DATA: into the replay ring and to every viewer whose topics
 * match, marking those parked due for the next hub_flush.  Returns its id. */
uint64_t hub_publish(hub *h, const char *key, const char *data, size_t len);

/* Wake the parked viewers that events were queued for since the last
 * flush.  Returns how many. */
size_t hub_flush(hub *h);

/* Copy into OUT (at most MAX bytes) what viewer V has to send: a dropped
 * notice, the frames waiting, a ping.  Returns the bytes copied; 0 when there
 * is nothing, after calling the viewer's sleep function (the caller then
 * returns "no data yet" to its HTTP server); -1 when the hub is closing (the
 * stream ends). */
long hub_read(hub *h, hub_viewer *v, char *out, size_t max);

/* Wake every parked viewer to send ": ping" (keep-alive, and a write that
 * finds a closed connection). */
void hub_ping(hub *h);
/* End every stream: hub_read returns -1 from now on; parked viewers are woken. */
void hub_close(hub *h);

void hub_get_stats(hub *h, hub_stats *out);

#endif
