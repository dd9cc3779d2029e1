/* mq.h -- the AMQP side of imgfeed: topology, confirmed publishing, consuming.
 *
 * One mq object is one connection to RabbitMQ (librabbitmq-c) that survives
 * the broker: every operation that finds the connection gone (a socket error,
 * a missed heartbeat, connection.close or channel.close from the broker)
 * reconnects with exponential backoff (backoff.h) and carries on, until it
 * succeeds or a stop is requested (sig.h), or mq_options.max_attempts
 * attempts failed when that is set.  On every connect the topology of
 * design.md is declared again for the exchange name E given in mq_options:
 *
 *   E.raw  topic, durable   ──#──▶ queue E.hasher   (durable, dead letters to E.dead)
 *   E      topic, durable   ──#──▶ queue E.archiver (durable, dead letters to E.dead)
 *   E.dead fanout, durable  ─────▶ queue E.dead     (durable)
 *
 * so every process declares it with the same arguments (mq_declare_topology).
 * The three queues are classic queues, or with mq_options.queue_type
 * MQ_QUEUE_QUORUM quorum queues (replicated over a RabbitMQ cluster), whose
 * delivery limit dead-letters a message redelivered too often to E.dead
 * (at-least-once dead-lettering).
 *
 * A cluster: mq_options.url may list several nodes' URLs, separated by
 * commas.  A process starts at one node (by its pid, so that processes
 * spread over the nodes) and, when that connection is lost or cannot be
 * made, goes on to the next; the backoff applies once every node was tried.
 * Publisher confirms and manual acks keep at-least-once across the failover:
 * what was not confirmed is published again on the next node.
 *
 * Resource alarms: when the broker blocks publishing (connection.blocked:
 * low on memory or disk), a publish waits for its confirms as always, which
 * come once the broker unblocks; the block and its end are logged and
 * counted (imgfeed_broker_blocked, imgfeed_broker_blocked_seconds_total),
 * and a stop request still ends the wait.
 * A consumer beyond the archive (a live view, a search index) gives its own
 * queue in mq_options.own_queue: it is declared and bound to E right after,
 * on every connect.
 *
 * The connection has two channels: channel 1 publishes in confirm mode,
 * channel 2 consumes.  A process that publishes and consumes (the hasher)
 * therefore needs one mq object; the frames of both channels are read by the
 * same loop, so deliveries that arrive while mq_publish waits for confirms are
 * kept for mq_next.
 *
 * Publishing (mq_publish) sends a batch with mandatory set, persistent,
 * content type application/json, and returns only when the broker confirmed
 * every message.  If the connection dies or the broker nacks a message, the
 * messages from the first unconfirmed one onward are published again, in
 * their order (on the next connection, or after a nack on the same one after
 * a backoff): at-least-once, so a consumer may see a message twice but never
 * loses one, and the order within a routing key is kept.  A message the broker cannot route (no queue bound) comes back
 * as basic.return and is reported per message (mq_message.returned).  To tell which message came back, each message
 * carries the channel's publish sequence number as its message-id property.
 *
 * Consuming (mq_consume, then mq_next) uses basic.qos and basic.consume with
 * manual acknowledgements.  After a reconnect the consumer is set up again by
 * itself.  Delivery tags belong to one connection: each delivery carries the
 * connection's generation in its mq_tag, and acknowledging a tag of an
 * earlier connection is a logged no-op returning MQ_STALE (the broker
 * redelivers those messages anyway).  So a stage that acknowledges its input
 * after publishing its output (the hasher) needs nothing special when the
 * publish had to reconnect: its acks come back MQ_STALE, and the input is
 * delivered again.
 *
 * Heartbeats are serviced whenever the object reads from the broker: inside
 * mq_next, mq_publish and mq_tick.  A process that does long work between
 * calls (longer than the heartbeat interval) calls mq_tick now and then;
 * one that does not will find the connection closed on its next call, which
 * then reconnects (and a publish republishes) by itself.
 *
 * Threads: an mq object may be used by one thread at a time.  Two threads
 * that both need the broker use one mq object each.
 *
 * Ownership: mq_new returns an object the caller frees with mq_free.  The
 * messages given to mq_publish stay the caller's.  mq_next fills a caller's
 * mq_delivery whose contents belong to the caller until mq_delivery_release;
 * an mq_tag is a plain value that may outlive its delivery.
 *
 * Every function returns MQ_OK (0) or a negative mq_status.
 */
#ifndef IMGFEED_MQ_H
#define IMGFEED_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum mq_status {
    MQ_OK = 0,
    MQ_TIMEOUT = -1,      /* mq_next: nothing arrived within the timeout */
    MQ_STOPPED = -2,      /* a stop was requested (sig.h) before the work was done */
    MQ_STALE = -3,        /* ack/nack/reject of a delivery of an earlier connection: nothing was
                             done, the broker redelivers the message */
    MQ_UNROUTABLE = -4,   /* mq_publish: every message was confirmed, but some came back unroutable
                             (their .returned is set) */
    MQ_BAD_URL = -5,      /* a URL is not amqp://[user[:password]@]host[:port][/vhost] */
    MQ_GAVE_UP = -6,      /* mq_options.max_attempts connects or publish rounds failed */
    MQ_DISCONNECTED = -7, /* mq_tick: the connection is gone; the next call reconnects */
    MQ_INVALID = -8,      /* the call makes no sense here (mq_next without mq_consume, …) */
    MQ_REFUSED = -9,      /* mq_publish: every message was settled, but some were refused for good
                             (their .refused is set, with the reason in .why); the others were
                             confirmed, and .returned says which of those came back unroutable */
} mq_status;

/* A constant description of a status, for logs: "timed out", "stop requested". */
const char *mq_status_text(int status);

/* --- URLs --- */

/* A parsed broker URL.  Strings are allocated; mq_url_release frees them. */
typedef struct mq_url {
    char *user;
    char *password;
    char *host;
    int port; /* 5672, or 5671 for amqps */
    char *vhost;
    bool tls; /* amqps:// */
} mq_url;

/* Parse amqp://user:password@host:port/vhost (amqps:// for TLS).  Missing
 * parts take librabbitmq's defaults: guest, guest, localhost, 5672.  The
 * vhost (design.md): no path means "/", a trailing "/" names the empty
 * vhost "", "/%2f" names "/"; percent-escapes are decoded everywhere.
 * Returns MQ_OK or MQ_BAD_URL (then *out holds nothing to release). */
int mq_url_parse(const char *text, mq_url *out);
void mq_url_release(mq_url *url);
/* Parse a comma-separated list of such URLs (the nodes of one cluster; a
 * comma inside a password is written %2C).  Returns MQ_OK with *out an
 * array of *n >= 1 URLs (free with mq_url_list_release), or MQ_BAD_URL with
 * the 1-based position of the bad one in *bad (when not NULL). */
int mq_url_list_parse(const char *text, mq_url **out, size_t *n, size_t *bad);
void mq_url_list_release(mq_url *urls, size_t n);
/* The URL without its password, for logs: "amqp://guest@127.0.0.1:5672",
 * with "/vhost" (percent-encoded) unless the vhost is "/".  Caller frees. */
char *mq_url_describe(const mq_url *url);

/* --- the connection --- */

typedef struct mq mq;

/* The idle callback: do the caller's own work, and wait at most MAX_WAIT_MS
 * for it or for FD (the broker's socket) to become readable, whichever comes
 * first.  It runs inside an mq call, so it must not call mq functions. */
typedef void (*mq_idle_fn)(void *arg, int fd, int64_t max_wait_ms);

/* A consumer's own queue beyond the topology (design.md, "Consumers beyond
 * the archive"): declared and bound to E on every connect, after the
 * topology, so that an auto-delete queue, gone with its connection, is
 * there again before the consumer is set up again. */
typedef struct mq_queue_spec {
    const char *name;        /* the queue */
    bool durable;            /* durable (a search index); false: non-durable and auto-delete (a live view) */
    int64_t max_length;      /* x-max-length; 0: none */
    bool drop_head;          /* x-overflow drop-head: past max_length the oldest message goes */
    const char *const *keys; /* binding keys to E, NULL-terminated; NULL: "#" alone */
} mq_queue_spec;

/* The type of the topology's queues (design.md, "The pipeline"). */
typedef enum mq_queue_type {
    MQ_QUEUE_CLASSIC, /* durable classic queues: one broker */
    MQ_QUEUE_QUORUM,  /* quorum queues: replicated over a cluster */
} mq_queue_type;

/* "classic", "quorum" (the values of --queue-type). */
extern const char *const mq_queue_type_names[];

typedef struct mq_options {
    const char *url;             /* amqp:// or amqps:// URL, or several nodes' URLs separated by commas */
    const char *exchange;        /* E of design.md, "chan" by default */
    int64_t heartbeat_ms;        /* heartbeat interval, rounded up to whole seconds; 0 disables */
    const char *connection_name; /* shown by rabbitmqctl list_connections; may be NULL */
    unsigned max_attempts;       /* give up (MQ_GAVE_UP) after this many failed connects in a row or
                                    publish rounds of one batch; 0: only a stop ends the retries */
    int64_t backoff_initial_ms;  /* first retry delay; 0: 200 ms */
    int64_t backoff_max_ms;      /* longest retry delay; 0: 30 s */
    const char *tls_cacert;      /* amqps: CA bundle (PEM); NULL: the system's */
    int64_t max_message_bytes;   /* largest body published: a longer message is refused (MQ_REFUSED)
                                    without being sent; 0: no limit of ours (the broker's still applies) */
    mq_idle_fn idle;             /* called while a publish waits for confirms (see mq_publish); may be NULL */
    void *idle_arg;
    const mq_queue_spec *own_queue; /* a consumer's own queue (copied); NULL: none */
    mq_queue_type queue_type;    /* of E.hasher, E.archiver, E.dead and a durable own queue */
    int64_t delivery_limit;      /* quorum queues: deliveries of a message before it is dead-lettered to
                                    E.dead (x-delivery-limit); 0: MQ_DELIVERY_LIMIT */
} mq_options;

#define MQ_DELIVERY_LIMIT 20

/* Options from the common settings (url, exchange, heartbeat, max message,
 * queue type, delivery limit, CA), the rest at their defaults. */
void mq_options_init(mq_options *opts, const cfg_common *common, const char *connection_name);

/* Connect (retrying as mq_options says) and declare the topology.  On
 * success *out is the new object; on failure *out is NULL and the status is
 * MQ_BAD_URL, MQ_STOPPED or MQ_GAVE_UP, with the reasons logged. */
int mq_new(const mq_options *opts, mq **out);
/* Close the connection (unacknowledged deliveries go back to their queue)
 * and free everything.  mq_free(NULL) does nothing. */
void mq_free(mq *q);

/* Names of the topology for this object's exchange name. */
typedef enum mq_target {
    MQ_EXCHANGE_RAW,   /* "E.raw": the crawler publishes here */
    MQ_EXCHANGE_ITEMS, /* "E": the hasher publishes hashed items here */
    MQ_EXCHANGE_DEAD,  /* "E.dead" */
    MQ_QUEUE_HASHER,   /* "E.hasher" */
    MQ_QUEUE_ARCHIVER, /* "E.archiver" */
    MQ_QUEUE_DEAD,     /* "E.dead" */
} mq_target;
const char *mq_target_name(const mq *q, mq_target target);

/* mq_options.max_message_bytes of this object (0: no limit of ours): a
 * publisher that gathers items cuts its messages below it. */
int64_t mq_max_message(const mq *q);

/* Declare the topology again (it is declared on every connect anyway);
 * idempotent.  Reconnects first if needed. */
int mq_declare_topology(mq *q);

/* Read what the broker sent without waiting: heartbeats, confirms, and
 * deliveries (kept for mq_next).  Does not reconnect: returns MQ_OK, or
 * MQ_DISCONNECTED when the connection is gone (the next call reconnects). */
int mq_tick(mq *q);

/* The connection's generation: 1 for the first connection, +1 for each
 * reconnect. */
uint64_t mq_generation(const mq *q);

/* The node connected to, or to be tried next: 0-based index into the URL
 * list. */
size_t mq_current_node(const mq *q);

/* Whether the broker blocks this connection's publishing right now. */
bool mq_blocked(const mq *q);

typedef struct mq_stats {
    uint64_t connects;           /* successful connects, the first included */
    uint64_t connection_losses;  /* connections found dead */
    uint64_t heartbeat_timeouts; /* of which: the broker missed its heartbeats */
    uint64_t republished;        /* messages published again after a loss or a nack */
    uint64_t returned;           /* messages the broker returned as unroutable */
    uint64_t stale_acks;         /* ack/nack/reject calls that returned MQ_STALE */
    uint64_t failovers;          /* connects to another node than the last one connected to */
    uint64_t blocks;             /* times the broker blocked publishing (connection.blocked) */
} mq_stats;
void mq_get_stats(const mq *q, mq_stats *out);

/* --- publishing --- */

#define MQ_MESSAGE_WHY 200

typedef struct mq_message {
    const char *routing_key;
    const void *body;
    size_t len;
    bool returned; /* set by mq_publish: the broker returned it as unroutable */
    bool refused;  /* set by mq_publish: refused for good, never to be sent again (MQ_REFUSED) */
    char why[MQ_MESSAGE_WHY]; /* with refused: the reason ("message of 9000000 bytes is larger than
                                 --max-message, 8388608 bytes", or the broker's reply text) */
} mq_message;

/* Publish msgs[0..n) to the exchange and wait until the broker confirmed all
 * of them (see the top of this file).
 *
 * A message is refused for good, instead of being published again and again,
 * when it is longer than mq_options.max_message_bytes (it is not sent at
 * all), or when the broker closes the publishing channel over it with 406
 * PRECONDITION_FAILED (RabbitMQ's answer to a message over its
 * max_message_size): then the rest of the batch is published one message a
 * round, so that exactly the message the broker refuses alone is marked
 * refused.  Refusals of other kinds (403 access refused, …) are not about
 * the message: those are retried with backoff like a lost connection.  The broker confirms a persistent
 * message once it is on disk, which can take milliseconds: while waiting,
 * mq calls the idle callback of mq_options, when there is one, with the
 * broker's socket, instead of sleeping on that socket itself, so that a
 * caller's other work (the hasher's downloads) goes on.  Returns MQ_OK, MQ_UNROUTABLE (all
 * confirmed, some returned), MQ_REFUSED (all settled, some refused: see
 * .refused and .why; some may also be .returned), or MQ_STOPPED / MQ_GAVE_UP: then the batch is
 * not done and the caller must not treat it as published (some messages may
 * have arrived, which at-least-once allows). */
int mq_publish(mq *q, const char *exchange, mq_message *msgs, size_t n);

/* Why a message goes to E.dead: the reason label of imgfeed_dead_lettered_total. */
typedef enum mq_dead_reason {
    MQ_DEAD_UNPARSABLE,       /* not a message of items (JSON, shape) */
    MQ_DEAD_UNPUBLISHABLE,    /* could not be published on: too large, or refused by the broker */
    MQ_DEAD_UNROUTABLE,       /* no queue is bound for its routing key */
    MQ_DEAD_DATABASE_REFUSED, /* PostgreSQL refused its rows */
    MQ_DEAD_REASONS
} mq_dead_reason;
/* "unparsable", "unpublishable", "unroutable", "database_refused". */
const char *mq_dead_reason_name(mq_dead_reason r);

/* Send a message that can never be processed to E.dead with the headers
 * x-imgfeed-error (reason) and x-imgfeed-routing-key (its routing key),
 * confirmed like mq_publish.  max_message_bytes does not apply: a dead
 * letter is a message the broker took already, passed on as it came.  Only
 * the broker can refuse it (MQ_REFUSED, logged: it cannot be kept, and
 * counted in imgfeed_dead_letters_lost_total).  Once kept it is counted in
 * imgfeed_dead_lettered_total{reason=KIND}. */
int mq_publish_dead(mq *q, const char *routing_key, const void *body, size_t len, mq_dead_reason kind,
                    const char *reason);

/* --- consuming --- */

/* A delivery tag together with the connection it belongs to. */
typedef struct mq_tag {
    uint64_t generation;
    uint64_t value;
} mq_tag;

/* A header of a delivery whose value is a string, a number or a boolean,
 * as text. */
typedef struct mq_header {
    char *name;
    char *value;
} mq_header;

typedef struct mq_delivery {
    mq_tag tag;
    char *exchange;
    char *routing_key;
    char *body; /* len bytes, followed by a '\0' that is not counted */
    size_t len;
    bool redelivered;
    bool persistent;    /* delivery mode 2 */
    char *content_type; /* NULL when absent */
    mq_header *headers; /* nheaders entries */
    size_t nheaders;
} mq_delivery;

/* Start consuming queue with at most prefetch unacknowledged deliveries (0:
 * no limit).  One queue per mq object; after a reconnect it is consumed
 * again by itself. */
int mq_consume(mq *q, const char *queue, uint16_t prefetch);

/* Wait up to timeout_ms (negative: for ever) for the next delivery and fill
 * *out (the caller releases it with mq_delivery_release).  Returns MQ_OK,
 * MQ_TIMEOUT, MQ_STOPPED, MQ_GAVE_UP or MQ_INVALID; *out holds nothing to
 * release unless MQ_OK.  Reconnecting may take longer than timeout_ms. */
int mq_next(mq *q, mq_delivery *out, int64_t timeout_ms);
void mq_delivery_release(mq_delivery *d);
/* The text of header name, or NULL when the delivery has no such header. */
const char *mq_delivery_header(const mq_delivery *d, const char *name);

/* Acknowledge the delivery (and, with multiple, every earlier one of the
 * same connection), nack it (requeue, or dead-letter it), or reject it.
 * MQ_OK, or MQ_STALE when the tag's connection is gone (then the broker
 * redelivers the message anyway). */
int mq_ack(mq *q, mq_tag tag, bool multiple);
int mq_nack(mq *q, mq_tag tag, bool multiple, bool requeue);
int mq_reject(mq *q, mq_tag tag, bool requeue);

#endif
