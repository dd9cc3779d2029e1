/* mq.c -- a RabbitMQ connection that survives the broker (see mq.h).
 *
 * The object is in one of two states, MQ_STATE_CLOSED or MQ_STATE_OPEN, and
 * every change is logged with its reason.  Opening (mq_connect_once) is the
 * whole setup: TCP (our own non-blocking connect, so that a failure says
 * "connection refused" rather than "a socket error occurred"), login with
 * heartbeats, channel 1 with the topology and confirm.select, channel 2 with
 * basic.qos and basic.consume when a queue is consumed.  Any failure while
 * open drops the connection (mq_drop) and the next operation that needs it
 * calls mq_reconnect, which retries mq_connect_once with backoff.  With
 * several nodes' URLs, each failed attempt and each lost connection moves on
 * to the next node (mq_next_node), and the backoff waits only once every
 * node failed in a row.
 *
 * All reading goes through one loop, mq_pump: it waits for one frame with
 * librabbitmq's amqp_simple_wait_frame_noblock (which also sends and checks
 * heartbeats) and hands it to mq_dispatch.  Publisher confirms on channel 1
 * settle the messages of the publish round in progress; basic.return and
 * basic.deliver start a message (method, header frame, body frames) that is
 * assembled per channel in mq_content; finished deliveries wait in a list
 * for mq_next.  Frames are copied out at once, so librabbitmq's buffers for
 * the channel can be recycled after each frame.
 *
 * A publish round sends messages with sequence numbers next_seq.. (the
 * broker numbers confirms the same way, from 1 on each new channel) and waits
 * until each is acked or nacked.  mq_publish_all repeats rounds from the
 * first message not acked until all are, so nothing is lost and the order is
 * kept.
 */
#include "mq.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "sig.h"
#include "timeutil.h"
#include "urltmpl.h"
#include "xalloc.h"

#define MQ_CH_PUBLISH 1
#define MQ_CH_CONSUME 2
#define MQ_FRAME_MAX 131072
#define MQ_CONNECT_TIMEOUT_MS 10000
#define MQ_RPC_TIMEOUT_MS 30000
#define MQ_CLOSE_TIMEOUT_MS 2000 /* the broker's close-ok, when we close */
#define MQ_SLICE_MS 200    /* longest wait between two looks at the stop flag */
#define MQ_DRAIN_EVERY 128 /* read confirms after this many publishes */
#define MQ_BACKOFF_INITIAL_MS 200
#define MQ_BACKOFF_MAX_MS 30000
#define MQ_SYSTEM_CACERT "/etc/ssl/certs/ca-certificates.crt"
#define MQ_WHY_MAX 512

typedef enum mq_state { MQ_STATE_CLOSED, MQ_STATE_OPEN } mq_state;

/* A message being received on a channel: its method came, its header and
 * body frames are coming. */
typedef enum mq_content_kind { MQ_CONTENT_NONE, MQ_CONTENT_DELIVERY, MQ_CONTENT_RETURN } mq_content_kind;

typedef struct mq_content {
    mq_content_kind kind;
    bool have_header;
    uint64_t size, got;
    mq_delivery d;       /* MQ_CONTENT_DELIVERY */
    uint64_t return_seq; /* MQ_CONTENT_RETURN: the message-id we gave it, 0 if unknown */
    char *return_why;    /* MQ_CONTENT_RETURN: reply code and text, exchange, routing key */
} mq_content;

typedef struct mq_node {
    mq_delivery d;
    struct mq_node *next;
} mq_node;

/* The confirmation state of one message of a batch: REFUSED is final
 * (too long for max_message_bytes, or refused by the broker when alone). */
enum { MQ_UNCONFIRMED = 0, MQ_ACKED = 1, MQ_NACKED = 2, MQ_REFUSED_FOR_GOOD = 3 };

struct mq {
    mq_url *urls; /* the nodes, nurls >= 1 */
    char **url_logs; /* each without its password */
    size_t nurls;
    size_t node;            /* the node connected to, or tried next */
    size_t connected_node;  /* the node of the last connection made; SIZE_MAX: none yet */
    const mq_url *url;      /* urls[node] */
    const char *url_log;    /* url_logs[node] */
    mq_queue_type queue_type;
    int64_t delivery_limit;
    char *exchange;
    char *connection_name;
    char *tls_cacert;
    char *names[MQ_QUEUE_DEAD + 1];
    int heartbeat_s;
    unsigned max_attempts;
    int64_t backoff_initial_ms, backoff_max_ms;
    int64_t max_message;
    backoff backoff;
    metrics_series *m_reconnects;              /* imgfeed_broker_reconnects_total */
    metrics_series *m_failovers;               /* imgfeed_broker_failovers_total */
    metrics_series *m_blocked;                 /* imgfeed_broker_blocked (connections blocked) */
    metrics_series *m_blocked_seconds;         /* imgfeed_broker_blocked_seconds_total */
    metrics_series *m_dead[MQ_DEAD_REASONS];   /* imgfeed_dead_lettered_total{reason} */
    metrics_series *m_dead_lost;               /* imgfeed_dead_letters_lost_total */
    mq_idle_fn idle;
    void *idle_arg;

    mq_state state;
    amqp_connection_state_t conn;
    bool blocked;             /* connection.blocked came, connection.unblocked not yet */
    int64_t blocked_since_ns; /* time_mono_ns() when it came */
    uint64_t generation;
    uint64_t next_seq; /* publish sequence number of the next message on channel 1 */

    char *queue; /* consumed queue, or NULL */
    /* mq_options.own_queue, copied; own.name NULL: none */
    mq_queue_spec own;
    char **own_keys;
    uint16_t prefetch;
    mq_content content[MQ_CH_CONSUME + 1];
    mq_node *head, *tail; /* deliveries waiting for mq_next */

    struct {
        uint64_t seq_base;   /* sequence number of msgs[idx[0]] */
        size_t n, settled, first_open;
        const size_t *idx;   /* the round's messages: sequence seq_base + k is msgs[idx[k]] */
        unsigned char *state; /* indexed like msgs */
        mq_message *msgs;
        bool nacked;
    } round;
    /* The broker closed the publishing channel with 406 during a round: the
     * batch is published one message a round to find which one it refuses. */
    bool refusal;
    char refusal_why[MQ_MESSAGE_WHY];

    mq_stats stats;
};

const char *mq_status_text(int status) {
    switch (status) {
    case MQ_OK: return "ok";
    case MQ_TIMEOUT: return "timed out";
    case MQ_STOPPED: return "stop requested";
    case MQ_STALE: return "delivery of an earlier connection";
    case MQ_UNROUTABLE: return "unroutable message returned";
    case MQ_BAD_URL: return "bad broker URL";
    case MQ_GAVE_UP: return "gave up after too many attempts";
    case MQ_DISCONNECTED: return "connection lost";
    case MQ_INVALID: return "invalid call";
    case MQ_REFUSED: return "refused for good";
    }
    return "unknown status";
}

/* --- small helpers --- */

/* strerror in lower case ("connection refused"), as log lines want. */
static void mq_strerror(int err, char *buf, size_t len) {
    if (strerror_r(err, buf, len) != 0) snprintf(buf, len, "error %d", err);
    buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* snprintf for messages composed of other messages: cutting a long one
 * short is intended (and keeps -Wformat-truncation quiet). */
static void mq_format(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void mq_format(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static struct timeval mq_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    return tv;
}

static char *mq_bytes_dup(amqp_bytes_t b) {
    char *s = xmalloc(b.len + 1);
    if (b.len) memcpy(s, b.bytes, b.len);
    s[b.len] = '\0';
    return s;
}

/* Why a librabbitmq call failed, with the socket's own error when there is
 * one: "a socket error occurred (connection reset by peer)". */
static void mq_status_why(amqp_connection_state_t conn, int status, int heartbeat_s, char *why, size_t len) {
    if (status == AMQP_STATUS_HEARTBEAT_TIMEOUT) {
        snprintf(why, len, "no heartbeat from the broker for %d s", 2 * heartbeat_s);
        return;
    }
    int fd = conn ? amqp_get_sockfd(conn) : -1, err = 0;
    socklen_t errlen = sizeof err;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) == 0 && err != 0) {
        char buf[128];
        mq_strerror(err, buf, sizeof buf);
        mq_format(why, len, "%s (%s)", amqp_error_string2(status), buf);
    } else {
        snprintf(why, len, "%s", amqp_error_string2(status));
    }
}

/* Why an RPC failed: the broker's close reply ("406 PRECONDITION_FAILED -
 * …") or the library's error.  *server is set when the broker answered, so
 * that the connection is still good enough to be closed politely. */
static void mq_reply_why(amqp_connection_state_t conn, amqp_rpc_reply_t r, int heartbeat_s, char *why, size_t len,
                         bool *server) {
    *server = false;
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: snprintf(why, len, "no error"); return;
    case AMQP_RESPONSE_NONE: snprintf(why, len, "no reply from the broker"); return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: mq_status_why(conn, r.library_error, heartbeat_s, why, len); return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(why, len, "the broker closed the connection: %.*s", (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(why, len, "the broker closed the channel: %.*s", (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
            *server = true;
        } else {
            snprintf(why, len, "unexpected reply %s", amqp_method_name(r.reply.id));
        }
        return;
    }
    snprintf(why, len, "unknown reply type %d", (int)r.reply_type);
}

/* After a synchronous librabbitmq call: true if it worked, else why. */
static bool mq_rpc_ok(amqp_connection_state_t conn, int heartbeat_s, char *why, size_t len, bool *server,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static bool mq_rpc_ok(amqp_connection_state_t conn, int heartbeat_s, char *why, size_t len, bool *server,
                      const char *fmt, ...) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
    char what[256], detail[MQ_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    mq_reply_why(conn, r, heartbeat_s, detail, sizeof detail, server);
    mq_format(why, len, "cannot %s: %s", what, detail);
    return false;
}

/* --- URLs --- */

int mq_url_parse(const char *text, mq_url *out) {
    memset(out, 0, sizeof *out);
    if (!text) return MQ_BAD_URL;
    char *buf = xstrdup(text);
    struct amqp_connection_info ci;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK || ci.port <= 0 || !*ci.host) {
        free(buf);
        return MQ_BAD_URL;
    }
    out->user = xstrdup(ci.user);
    out->password = xstrdup(ci.password);
    out->host = xstrdup(ci.host);
    out->port = ci.port;
    out->vhost = xstrdup(ci.vhost);
    out->tls = ci.ssl != 0;
    free(buf);
    return MQ_OK;
}

void mq_url_release(mq_url *url) {
    if (!url) return;
    free(url->user);
    free(url->password);
    free(url->host);
    free(url->vhost);
    memset(url, 0, sizeof *url);
}

int mq_url_list_parse(const char *text, mq_url **out, size_t *n, size_t *bad) {
    *out = NULL;
    *n = 0;
    if (bad) *bad = 0;
    if (!text) return MQ_BAD_URL;
    size_t count = 1;
    for (const char *c = text; *c; c++)
        count += *c == ',';
    mq_url *urls = xcalloc(count, sizeof *urls);
    const char *p = text;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        char *one = xstrndup(p, len);
        int rc = mq_url_parse(one, &urls[i]);
        free(one);
        if (rc != MQ_OK) {
            if (bad) *bad = i + 1;
            mq_url_list_release(urls, i);
            return MQ_BAD_URL;
        }
        p = end ? end + 1 : p + len;
    }
    *out = urls;
    *n = count;
    return MQ_OK;
}

void mq_url_list_release(mq_url *urls, size_t n) {
    for (size_t i = 0; urls && i < n; i++)
        mq_url_release(&urls[i]);
    free(urls);
}

/* Append s to out[*pos..) percent-encoded (urltmpl.h); out has room for
 * three bytes a character. */
static void mq_url_escape(char *out, size_t *pos, const char *s) {
    char *enc = urltmpl_percent_encode(s);
    size_t n = strlen(enc);
    memcpy(out + *pos, enc, n);
    *pos += n;
    free(enc);
}

char *mq_url_describe(const mq_url *url) {
    size_t cap = 3 * (strlen(url->user) + strlen(url->host) + strlen(url->vhost)) + 32;
    char *out = xmalloc(cap);
    size_t pos = (size_t)snprintf(out, cap, "%s://", url->tls ? "amqps" : "amqp");
    mq_url_escape(out, &pos, url->user);
    bool v6 = strchr(url->host, ':') != NULL;
    pos += (size_t)snprintf(out + pos, cap - pos, "@%s%s%s:%d", v6 ? "[" : "", url->host, v6 ? "]" : "", url->port);
    if (strcmp(url->vhost, "/") != 0) {
        out[pos++] = '/';
        mq_url_escape(out, &pos, url->vhost);
    }
    out[pos] = '\0';
    return out;
}

/* --- deliveries --- */

void mq_delivery_release(mq_delivery *d) {
    if (!d) return;
    free(d->exchange);
    free(d->routing_key);
    free(d->body);
    free(d->content_type);
    for (size_t i = 0; i < d->nheaders; i++) {
        free(d->headers[i].name);
        free(d->headers[i].value);
    }
    free(d->headers);
    memset(d, 0, sizeof *d);
}

const char *mq_delivery_header(const mq_delivery *d, const char *name) {
    for (size_t i = 0; i < d->nheaders; i++)
        if (strcmp(d->headers[i].name, name) == 0) return d->headers[i].value;
    return NULL;
}

/* A header value as text, or NULL for kinds that have none (tables, arrays…). */
static char *mq_field_text(const amqp_field_value_t *v) {
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return mq_bytes_dup(v->value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN: return xstrdup(v->value.boolean ? "true" : "false");
    case AMQP_FIELD_KIND_I8: return xasprintf("%d", (int)v->value.i8);
    case AMQP_FIELD_KIND_U8: return xasprintf("%u", (unsigned)v->value.u8);
    case AMQP_FIELD_KIND_I16: return xasprintf("%d", (int)v->value.i16);
    case AMQP_FIELD_KIND_U16: return xasprintf("%u", (unsigned)v->value.u16);
    case AMQP_FIELD_KIND_I32: return xasprintf("%" PRId32, v->value.i32);
    case AMQP_FIELD_KIND_U32: return xasprintf("%" PRIu32, v->value.u32);
    case AMQP_FIELD_KIND_I64: return xasprintf("%" PRId64, v->value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: return xasprintf("%" PRIu64, v->value.u64);
    default: return NULL;
    }
}

static void mq_copy_headers(mq_delivery *d, const amqp_table_t *t) {
    if (t->num_entries <= 0) return;
    d->headers = xcalloc((size_t)t->num_entries, sizeof *d->headers);
    for (int i = 0; i < t->num_entries; i++) {
        char *value = mq_field_text(&t->entries[i].value);
        if (!value) continue;
        d->headers[d->nheaders].name = mq_bytes_dup(t->entries[i].key);
        d->headers[d->nheaders].value = value;
        d->nheaders++;
    }
}

static void mq_content_reset(mq_content *c) {
    mq_delivery_release(&c->d);
    free(c->return_why);
    memset(c, 0, sizeof *c);
}

static void mq_free_deliveries(mq *q) {
    while (q->head) {
        mq_node *n = q->head;
        q->head = n->next;
        mq_delivery_release(&n->d);
        free(n);
    }
    q->tail = NULL;
}

/* --- losing and closing the connection --- */

/* Close and forget the connection.  polite: the broker is alive and answers,
 * so say goodbye with connection.close (else just close the socket). */
/* The broker no longer blocks this connection (it said so, or the
 * connection is gone): count the time it did. */
static void mq_unblock(mq *q) {
    if (!q->blocked) return;
    q->blocked = false;
    metrics_gauge_add(q->m_blocked, -1);
    metrics_add_double(q->m_blocked_seconds, (double)(time_mono_ns() - q->blocked_since_ns) / 1e9);
}

/* Drop the connection; POLITE: say goodbye first (connection.close), and
 * wait up to MQ_CLOSE_TIMEOUT_MS for the broker's close-ok.  Not while the
 * broker blocks us: it reads nothing from a blocked connection, so the
 * close-ok would never come. */
static void mq_drop(mq *q, bool polite) {
    if (q->state != MQ_STATE_OPEN && !q->conn) return;
    if (polite && !q->blocked) {
        struct timeval tv = mq_timeval(MQ_CLOSE_TIMEOUT_MS);
        amqp_set_rpc_timeout(q->conn, &tv);
        amqp_connection_close(q->conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(q->conn);
    q->conn = NULL;
    q->state = MQ_STATE_CLOSED;
    mq_unblock(q);
    size_t dropped = 0;
    for (mq_node *n = q->head; n; n = n->next)
        dropped++;
    if (dropped)
        log_info("dropping %zu deliveries of the closed connection to %s: the broker delivers them again", dropped,
                 q->url_log);
    mq_free_deliveries(q);
    for (size_t i = 0; i <= MQ_CH_CONSUME; i++)
        mq_content_reset(&q->content[i]);
}

/* Make node I the one connected to or tried next. */
static void mq_set_node(mq *q, size_t i) {
    q->node = i % q->nurls;
    q->url = &q->urls[q->node];
    q->url_log = q->url_logs[q->node];
}

/* Go on to the next node of the list (nothing changes with one node). */
static void mq_next_node(mq *q) { mq_set_node(q, q->node + 1); }

/* The connection died (or must be given up): log why and drop it; the next
 * connect tries the next node first, since this one may be gone. */
static void mq_lost(mq *q, bool polite, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void mq_lost(mq *q, bool polite, const char *fmt, ...) {
    char why[MQ_WHY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    log_warn("lost the connection to %s (generation %" PRIu64 "): %s", q->url_log, q->generation, why);
    q->stats.connection_losses++;
    mq_drop(q, polite);
    mq_next_node(q);
}

/* A librabbitmq call returned status: the connection is lost. */
static void mq_lost_status(mq *q, const char *what, int status) {
    char why[MQ_WHY_MAX];
    if (status == AMQP_STATUS_HEARTBEAT_TIMEOUT) q->stats.heartbeat_timeouts++;
    mq_status_why(q->conn, status, q->heartbeat_s, why, sizeof why);
    mq_lost(q, false, "%s: %s", what, why);
}

/* --- connecting --- */

/* A non-blocking TCP connection to host:port within timeout_ms, as
 * librabbitmq's TCP socket expects it; -1 with why. */
static int mq_tcp_open(const char *host, int port, int timeout_ms, char *why, size_t len) {
    struct addrinfo hints, *list = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0) {
        snprintf(why, len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n;
            do
                n = poll(&p, 1, timeout_ms);
            while (n < 0 && errno == EINTR);
            socklen_t errlen = sizeof err;
            if (n == 0)
                err = ETIMEDOUT;
            else if (n < 0)
                err = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0)
                err = errno;
            if (err == 0) break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd < 0) {
        char buf[128];
        mq_strerror(err, buf, sizeof buf);
        snprintf(why, len, "%s", buf);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    return fd;
}

/* The arguments of a queue declaration (x-queue-type, …), built up. */
#define MQ_QUEUE_ARGS 6
typedef struct mq_args {
    amqp_table_entry_t entries[MQ_QUEUE_ARGS];
    amqp_table_t table;
} mq_args;

static void mq_args_text(mq_args *a, const char *key, const char *value) {
    a->entries[a->table.num_entries++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes(key), .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(value)}};
    a->table.entries = a->entries;
}

static void mq_args_int(mq_args *a, const char *key, int64_t value) {
    a->entries[a->table.num_entries++] = (amqp_table_entry_t){
        .key = amqp_cstring_bytes(key), .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = value}};
    a->table.entries = a->entries;
}

/* The arguments every queue of the topology (and a durable own queue) gets
 * from the queue type; with DEAD_LETTERS, where its dead letters go: a
 * message rejected without requeueing, or, in a quorum queue, delivered
 * delivery_limit times, goes to E.dead.  Quorum queues dead-letter
 * at-least-once (RabbitMQ 3.10: x-dead-letter-strategy, which needs
 * x-overflow reject-publish; the queues have no length limit, so that never
 * rejects a publish).  Classic queues get exactly the arguments they always
 * had, so that an existing one is declared again unchanged. */
static void mq_queue_args(const mq *q, mq_args *a, bool durable, bool dead_letters) {
    memset(a, 0, sizeof *a);
    a->table.entries = a->entries;
    bool quorum = durable && q->queue_type == MQ_QUEUE_QUORUM;
    if (quorum) mq_args_text(a, "x-queue-type", "quorum");
    if (dead_letters) mq_args_text(a, "x-dead-letter-exchange", q->names[MQ_EXCHANGE_DEAD]);
    if (quorum && dead_letters) {
        mq_args_int(a, "x-delivery-limit", q->delivery_limit);
        mq_args_text(a, "x-dead-letter-strategy", "at-least-once");
        mq_args_text(a, "x-overflow", "reject-publish");
    }
}

/* A consumer's own queue (mq_options.own_queue), bound to E with its keys:
 * a durable one has the topology's queue type, a transient one (a live
 * view's, gone with its connection) is always a classic queue. */
static int mq_declare_own(const mq *q, amqp_connection_state_t conn, char *why, size_t len, bool *server) {
    const amqp_channel_t ch = MQ_CH_PUBLISH;
    const mq_queue_spec *o = &q->own;
    mq_args args;
    mq_queue_args(q, &args, o->durable, false);
    if (o->max_length > 0) mq_args_int(&args, "x-max-length", o->max_length);
    if (o->drop_head) mq_args_text(&args, "x-overflow", "drop-head");
    amqp_queue_declare(conn, ch, amqp_cstring_bytes(o->name), 0, o->durable, 0, !o->durable, args.table);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "declare queue %s", o->name)) return -1;
    for (size_t i = 0; o->keys[i]; i++) {
        amqp_queue_bind(conn, ch, amqp_cstring_bytes(o->name), amqp_cstring_bytes(q->names[MQ_EXCHANGE_ITEMS]),
                        amqp_cstring_bytes(o->keys[i]), amqp_empty_table);
        if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "bind queue %s to exchange %s with %s", o->name,
                       q->names[MQ_EXCHANGE_ITEMS], o->keys[i]))
            return -1;
    }
    return 0;
}

/* The one place that says what the topology is (design.md).  Each
 * declaration is idempotent: declaring an existing thing with the same
 * arguments is a no-op, with other arguments the broker refuses it. */
static int mq_declare_on(const mq *q, amqp_connection_state_t conn, char *why, size_t len, bool *server) {
    const amqp_channel_t ch = MQ_CH_PUBLISH;
    const char *raw = q->names[MQ_EXCHANGE_RAW], *items = q->names[MQ_EXCHANGE_ITEMS],
               *dead = q->names[MQ_EXCHANGE_DEAD];
    const struct { const char *name, *type; } exchanges[] = {{raw, "topic"}, {items, "topic"}, {dead, "fanout"}};
    for (size_t i = 0; i < sizeof exchanges / sizeof exchanges[0]; i++) {
        amqp_exchange_declare(conn, ch, amqp_cstring_bytes(exchanges[i].name), amqp_cstring_bytes(exchanges[i].type), 0,
                              1, 0, 0, amqp_empty_table);
        if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "declare exchange %s", exchanges[i].name)) return -1;
    }

    const struct {
        const char *queue, *exchange, *key;
        bool dead_letters;
    } queues[] = {
        {q->names[MQ_QUEUE_DEAD], dead, "", false},
        {q->names[MQ_QUEUE_HASHER], raw, "#", true},
        {q->names[MQ_QUEUE_ARCHIVER], items, "#", true},
    };
    for (size_t i = 0; i < sizeof queues / sizeof queues[0]; i++) {
        mq_args args;
        mq_queue_args(q, &args, true, queues[i].dead_letters);
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(queues[i].queue), 0, 1, 0, 0, args.table);
        if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "declare queue %s", queues[i].queue)) return -1;
        amqp_queue_bind(conn, ch, amqp_cstring_bytes(queues[i].queue), amqp_cstring_bytes(queues[i].exchange),
                        amqp_cstring_bytes(queues[i].key), amqp_empty_table);
        if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "bind queue %s to exchange %s", queues[i].queue,
                       queues[i].exchange))
            return -1;
    }
    return q->own.name ? mq_declare_own(q, conn, why, len, server) : 0;
}

static int mq_setup_consumer(const mq *q, amqp_connection_state_t conn, char *why, size_t len, bool *server) {
    amqp_basic_qos(conn, MQ_CH_CONSUME, 0, q->prefetch, 0);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "set prefetch %u", (unsigned)q->prefetch)) return -1;
    amqp_basic_consume(conn, MQ_CH_CONSUME, amqp_cstring_bytes(q->queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, server, "consume queue %s", q->queue)) return -1;
    return 0;
}

/* One attempt at the whole setup; -1 with why on failure. */
static int mq_connect_once(mq *q, char *why, size_t len) {
    bool server = false, logged_in = false;
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    struct timeval tv = mq_timeval(MQ_CONNECT_TIMEOUT_MS);
    if (q->url->tls) {
        amqp_socket_t *sock = amqp_ssl_socket_new(conn);
        if (!sock) {
            snprintf(why, len, "cannot create a TLS socket");
            goto fail;
        }
        const char *ca = q->tls_cacert ? q->tls_cacert : MQ_SYSTEM_CACERT;
        int rc = amqp_ssl_socket_set_cacert(sock, ca);
        if (rc != AMQP_STATUS_OK) {
            snprintf(why, len, "cannot load the CA certificates %s: %s", ca, amqp_error_string2(rc));
            goto fail;
        }
        amqp_ssl_socket_set_verify_peer(sock, 1);
        amqp_ssl_socket_set_verify_hostname(sock, 1);
        rc = amqp_socket_open_noblock(sock, q->url->host, q->url->port, &tv);
        if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED) {
            snprintf(why, len, "%s: the broker's certificate is not signed by a CA of %s (--amqp-cacert)",
                     amqp_error_string2(rc), ca);
            goto fail;
        }
        if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED) {
            snprintf(why, len,
                     "%s: the broker's certificate does not name the host %s (write a DNS name of the "
                     "certificate in the URL: addresses are not matched)",
                     amqp_error_string2(rc), q->url->host);
            goto fail;
        }
        if (rc != AMQP_STATUS_OK) {
            snprintf(why, len, "%s", amqp_error_string2(rc));
            goto fail;
        }
    } else {
        amqp_socket_t *sock = amqp_tcp_socket_new(conn);
        if (!sock) {
            snprintf(why, len, "cannot create a socket");
            goto fail;
        }
        int fd = mq_tcp_open(q->url->host, q->url->port, MQ_CONNECT_TIMEOUT_MS, why, len);
        if (fd < 0) goto fail;
        amqp_tcp_socket_set_sockfd(sock, fd); /* the connection owns it now */
    }
    struct timeval rpc = mq_timeval(MQ_RPC_TIMEOUT_MS);
    amqp_set_rpc_timeout(conn, &rpc);

    amqp_table_entry_t caps[] = {
        {.key = amqp_cstring_bytes("authentication_failure_close"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("connection.blocked"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t props[] = {
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {.num_entries = 3, .entries = caps}}},
        {.key = amqp_cstring_bytes("connection_name"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes(q->connection_name ? q->connection_name : "imgfeed")}},
    };
    amqp_table_t props_table = {.num_entries = 2, .entries = props};
    amqp_rpc_reply_t r = amqp_login_with_properties(conn, q->url->vhost, 0, MQ_FRAME_MAX, q->heartbeat_s, &props_table,
                                                    AMQP_SASL_METHOD_PLAIN, q->url->user, q->url->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char detail[MQ_WHY_MAX];
        mq_reply_why(conn, r, q->heartbeat_s, detail, sizeof detail, &server);
        mq_format(why, len, "cannot log in as %s to vhost '%s': %s", q->url->user, q->url->vhost, detail);
        server = false;
        goto fail;
    }
    logged_in = true;

    amqp_channel_open(conn, MQ_CH_PUBLISH);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, &server, "open channel %d", MQ_CH_PUBLISH)) goto fail;
    if (mq_declare_on(q, conn, why, len, &server) != 0) goto fail;
    amqp_confirm_select(conn, MQ_CH_PUBLISH);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, &server, "select publisher confirms")) goto fail;
    amqp_channel_open(conn, MQ_CH_CONSUME);
    if (!mq_rpc_ok(conn, q->heartbeat_s, why, len, &server, "open channel %d", MQ_CH_CONSUME)) goto fail;
    if (q->queue && mq_setup_consumer(q, conn, why, len, &server) != 0) goto fail;

    q->conn = conn;
    q->state = MQ_STATE_OPEN;
    q->generation++;
    q->next_seq = 1;
    if (q->stats.connects++ > 0) metrics_inc(q->m_reconnects);
    char node[64] = "";
    if (q->nurls > 1) snprintf(node, sizeof node, "node %zu of %zu, ", q->node + 1, q->nurls);
    if (q->connected_node != SIZE_MAX && q->connected_node != q->node) {
        q->stats.failovers++;
        metrics_inc(q->m_failovers);
        log_info("failed over from %s to %s", q->url_logs[q->connected_node], q->url_log);
    }
    q->connected_node = q->node;
    log_info("connected to %s (%sgeneration %" PRIu64 ", heartbeat %d s%s%s)", q->url_log, node, q->generation,
             amqp_get_heartbeat(conn), q->queue ? ", consuming " : "", q->queue ? q->queue : "");
    return 0;

fail:
    if (logged_in && server) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return -1;
}

/* Connect, retrying with backoff until it works, a stop is requested or
 * max_attempts attempts failed (an attempt is one node tried).  A failed
 * node is followed by the next at once; the backoff comes after a whole
 * round of nodes failed. */
static int mq_reconnect(mq *q) {
    char why[MQ_WHY_MAX];
    for (unsigned attempt = 1;; attempt++) {
        if (sig_stop_requested()) {
            log_info("not connecting to %s: stop requested", q->url_log);
            return MQ_STOPPED;
        }
        if (mq_connect_once(q, why, sizeof why) == 0) {
            backoff_reset(&q->backoff);
            return MQ_OK;
        }
        if (q->max_attempts && attempt >= q->max_attempts) {
            log_error("cannot connect to %s: %s; giving up after %u attempts", q->url_log, why, attempt);
            return MQ_GAVE_UP;
        }
        const char *failed = q->url_log;
        mq_next_node(q);
        if (attempt % q->nurls != 0) {
            log_warn("cannot connect to %s: %s; trying the next node, %s", failed, why, q->url_log);
            continue;
        }
        int64_t delay = backoff_next_ms(&q->backoff);
        if (q->nurls > 1)
            log_warn("cannot connect to %s: %s; no node of %zu answered, retrying %s in %" PRId64 " ms", failed, why,
                     q->nurls, q->url_log, delay);
        else
            log_warn("cannot connect to %s: %s; retrying in %" PRId64 " ms", failed, why, delay);
        if (!time_sleep_ms(delay)) {
            log_info("not connecting to %s: stop requested", q->url_log);
            return MQ_STOPPED;
        }
    }
}

/* --- reading frames --- */

static void mq_on_confirm(mq *q, uint64_t tag, bool multiple, unsigned char result) {
    if (!q->round.n || tag < q->round.seq_base) return; /* of a round given up earlier */
    uint64_t last = q->round.seq_base + q->round.n - 1;
    if (tag > last) tag = last;
    size_t from = multiple ? q->round.first_open : (size_t)(tag - q->round.seq_base);
    size_t to = (size_t)(tag - q->round.seq_base);
    for (size_t k = from; k <= to; k++) {
        size_t i = q->round.idx[k];
        if (q->round.state[i] != MQ_UNCONFIRMED) continue;
        q->round.state[i] = result;
        q->round.settled++;
        if (result == MQ_NACKED && !q->round.nacked) {
            q->round.nacked = true;
            log_warn("the broker refused (nacked) message %zu of a batch, routing key %s: it will be published again",
                     i, q->round.msgs[i].routing_key);
        }
    }
    while (q->round.first_open < q->round.n && q->round.state[q->round.idx[q->round.first_open]] != MQ_UNCONFIRMED)
        q->round.first_open++;
}

static void mq_on_returned(mq *q, mq_content *c) {
    q->stats.returned++;
    uint64_t seq = c->return_seq;
    if (q->round.n && seq >= q->round.seq_base && seq - q->round.seq_base < q->round.n) {
        q->round.msgs[q->round.idx[seq - q->round.seq_base]].returned = true;
        log_warn("the broker returned a message as unroutable: %s", c->return_why);
    } else {
        log_warn("the broker returned a message of an earlier batch as unroutable: %s", c->return_why);
    }
}

/* A message's last frame came. */
static void mq_content_done(mq *q, mq_content *c) {
    if (c->kind == MQ_CONTENT_DELIVERY) {
        mq_node *n = xcalloc(1, sizeof *n);
        n->d = c->d;
        memset(&c->d, 0, sizeof c->d);
        if (q->tail)
            q->tail->next = n;
        else
            q->head = n;
        q->tail = n;
    } else {
        mq_on_returned(q, c);
    }
    mq_content_reset(c);
}

static int mq_on_method(mq *q, amqp_channel_t ch, const amqp_method_t *m) {
    mq_content *c = &q->content[ch];
    switch (m->id) {
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *cl = m->decoded;
        char text[MQ_WHY_MAX];
        snprintf(text, sizeof text, "%.*s", (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(q->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        mq_lost(q, false, "the broker closed the connection: %s", text);
        return MQ_DISCONNECTED;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *cl = m->decoded;
        char text[MQ_WHY_MAX];
        snprintf(text, sizeof text, "%.*s", (int)cl->reply_text.len, (const char *)cl->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(q->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        if (ch == MQ_CH_PUBLISH && q->round.n && cl->reply_code == AMQP_PRECONDITION_FAILED) {
            /* About a message of the round (RabbitMQ: "message size … is
             * larger than configured max size …"): mq_publish_all finds it. */
            q->refusal = true;
            snprintf(q->refusal_why, sizeof q->refusal_why, "the broker refused it: %u %.160s",
                     (unsigned)cl->reply_code, text);
        }
        mq_lost(q, true, "the broker closed channel %u: %u %s", (unsigned)ch, (unsigned)cl->reply_code, text);
        return MQ_DISCONNECTED;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        const amqp_connection_blocked_t *b = m->decoded;
        if (!q->blocked) {
            q->blocked = true;
            q->blocked_since_ns = time_mono_ns();
            q->stats.blocks++;
            metrics_gauge_add(q->m_blocked, 1);
        }
        log_warn("the broker %s blocks publishing: %.*s; publishing waits until it unblocks", q->url_log,
                 (int)b->reason.len, (const char *)b->reason.bytes);
        return MQ_OK;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD: {
        double seconds = q->blocked ? (double)(time_mono_ns() - q->blocked_since_ns) / 1e9 : 0;
        mq_unblock(q);
        log_info("the broker %s unblocked publishing after %.1f s", q->url_log, seconds);
        return MQ_OK;
    }
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = m->decoded;
        if (ch == MQ_CH_PUBLISH) mq_on_confirm(q, a->delivery_tag, a->multiple != 0, MQ_ACKED);
        return MQ_OK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = m->decoded;
        if (ch == MQ_CH_PUBLISH) mq_on_confirm(q, a->delivery_tag, a->multiple != 0, MQ_NACKED);
        return MQ_OK;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *r = m->decoded;
        c->kind = MQ_CONTENT_RETURN;
        c->return_why =
            xasprintf("%u %.*s, exchange %.*s, routing key %.*s", (unsigned)r->reply_code, (int)r->reply_text.len,
                      (const char *)r->reply_text.bytes, (int)r->exchange.len, (const char *)r->exchange.bytes,
                      (int)r->routing_key.len, (const char *)r->routing_key.bytes);
        return MQ_OK;
    }
    case AMQP_BASIC_DELIVER_METHOD: {
        const amqp_basic_deliver_t *d = m->decoded;
        c->kind = MQ_CONTENT_DELIVERY;
        c->d.tag.generation = q->generation;
        c->d.tag.value = d->delivery_tag;
        c->d.redelivered = d->redelivered != 0;
        c->d.exchange = mq_bytes_dup(d->exchange);
        c->d.routing_key = mq_bytes_dup(d->routing_key);
        return MQ_OK;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        mq_lost(q, true, "the broker cancelled the consumer of queue %s (was the queue deleted?)",
                q->queue ? q->queue : "?");
        return MQ_DISCONNECTED;
    default:
        log_debug("ignoring %s on channel %u from %s", amqp_method_name(m->id), (unsigned)ch, q->url_log);
        return MQ_OK;
    }
}

static int mq_on_header(mq *q, mq_content *c, const amqp_frame_t *f) {
    if (c->kind == MQ_CONTENT_NONE || c->have_header) {
        mq_lost(q, false, "unexpected content header on channel %u", (unsigned)f->channel);
        return MQ_DISCONNECTED;
    }
    const amqp_basic_properties_t *p = f->payload.properties.decoded;
    c->have_header = true;
    c->size = f->payload.properties.body_size;
    if (c->size >= SIZE_MAX / 2) {
        mq_lost(q, false, "message of %" PRIu64 " bytes on channel %u is too large", c->size, (unsigned)f->channel);
        return MQ_DISCONNECTED;
    }
    if (c->kind == MQ_CONTENT_DELIVERY) {
        c->d.body = xmalloc((size_t)c->size + 1);
        c->d.body[c->size] = '\0';
        c->d.len = (size_t)c->size;
        if (p && (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG)) c->d.content_type = mq_bytes_dup(p->content_type);
        if (p && (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG))
            c->d.persistent = p->delivery_mode == AMQP_DELIVERY_PERSISTENT;
        if (p && (p->_flags & AMQP_BASIC_HEADERS_FLAG)) mq_copy_headers(&c->d, &p->headers);
    } else if (p && (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
        char *id = mq_bytes_dup(p->message_id);
        c->return_seq = strtoull(id, NULL, 10);
        free(id);
    }
    if (c->size == 0) mq_content_done(q, c);
    return MQ_OK;
}

static int mq_on_body(mq *q, mq_content *c, const amqp_frame_t *f) {
    amqp_bytes_t frag = f->payload.body_fragment;
    if (c->kind == MQ_CONTENT_NONE || !c->have_header || frag.len > c->size - c->got) {
        mq_lost(q, false, "unexpected content body on channel %u", (unsigned)f->channel);
        return MQ_DISCONNECTED;
    }
    if (c->kind == MQ_CONTENT_DELIVERY && frag.len) memcpy(c->d.body + c->got, frag.bytes, frag.len);
    c->got += frag.len;
    if (c->got == c->size) mq_content_done(q, c);
    return MQ_OK;
}

static int mq_dispatch(mq *q, const amqp_frame_t *f) {
    if (f->channel > MQ_CH_CONSUME) {
        mq_lost(q, false, "frame on unknown channel %u", (unsigned)f->channel);
        return MQ_DISCONNECTED;
    }
    mq_content *c = &q->content[f->channel];
    switch (f->frame_type) {
    case AMQP_FRAME_METHOD:
        if (c->kind != MQ_CONTENT_NONE) {
            mq_lost(q, false, "%s inside a message on channel %u", amqp_method_name(f->payload.method.id),
                    (unsigned)f->channel);
            return MQ_DISCONNECTED;
        }
        return mq_on_method(q, f->channel, &f->payload.method);
    case AMQP_FRAME_HEADER: return mq_on_header(q, c, f);
    case AMQP_FRAME_BODY: return mq_on_body(q, c, f);
    default: return MQ_OK;
    }
}

/* Wait up to timeout_ms for one frame and handle it: MQ_OK (a frame was
 * handled), MQ_TIMEOUT, or MQ_DISCONNECTED (the connection was dropped). */
static int mq_pump(mq *q, int64_t timeout_ms) {
    amqp_frame_t frame;
    struct timeval tv = mq_timeval(timeout_ms < 0 ? 0 : timeout_ms);
    int rc = amqp_simple_wait_frame_noblock(q->conn, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) return MQ_TIMEOUT;
    if (rc != AMQP_STATUS_OK) {
        mq_lost_status(q, "cannot read from the broker", rc);
        return MQ_DISCONNECTED;
    }
    rc = mq_dispatch(q, &frame);
    if (q->state == MQ_STATE_OPEN) amqp_maybe_release_buffers_on_channel(q->conn, frame.channel);
    return rc;
}

/* Handle every frame that has already arrived. */
static int mq_drain(mq *q) {
    int rc;
    while ((rc = mq_pump(q, 0)) == MQ_OK) {
    }
    return rc == MQ_TIMEOUT ? MQ_OK : rc;
}

/* Wait up to MQ_SLICE_MS for frames and handle them: in mq_pump, or, with
 * an idle callback, handle what has arrived and let the callback do the
 * waiting on the socket (librabbitmq has nothing buffered once mq_drain saw
 * no whole frame, so the socket alone says when more comes).  MQ_OK or
 * MQ_DISCONNECTED. */
static int mq_wait_readable(mq *q) {
    if (!q->idle) {
        int rc = mq_pump(q, MQ_SLICE_MS);
        return rc == MQ_DISCONNECTED ? rc : MQ_OK;
    }
    int rc = mq_drain(q);
    if (rc != MQ_OK) return rc;
    if (q->round.settled >= q->round.n) return MQ_OK;
    q->idle(q->idle_arg, amqp_get_sockfd(q->conn), MQ_SLICE_MS);
    return MQ_OK;
}

/* --- the object --- */

const char *const mq_queue_type_names[] = {[MQ_QUEUE_CLASSIC] = "classic", [MQ_QUEUE_QUORUM] = "quorum", NULL};

void mq_options_init(mq_options *opts, const cfg_common *common, const char *connection_name) {
    memset(opts, 0, sizeof *opts);
    opts->url = common->amqp_url;
    opts->exchange = common->exchange;
    opts->heartbeat_ms = common->amqp_heartbeat_ms;
    opts->max_message_bytes = common->max_message_bytes;
    opts->connection_name = connection_name;
    opts->tls_cacert = common->amqp_cacert && *common->amqp_cacert ? common->amqp_cacert : NULL;
    opts->queue_type = common->queue_type && strcmp(common->queue_type, "quorum") == 0 ? MQ_QUEUE_QUORUM
                                                                                      : MQ_QUEUE_CLASSIC;
    opts->delivery_limit = common->delivery_limit;
}

static const char *const mq_dead_reason_names[MQ_DEAD_REASONS] = {
    [MQ_DEAD_UNPARSABLE] = "unparsable",
    [MQ_DEAD_UNPUBLISHABLE] = "unpublishable",
    [MQ_DEAD_UNROUTABLE] = "unroutable",
    [MQ_DEAD_DATABASE_REFUSED] = "database_refused",
};

const char *mq_dead_reason_name(mq_dead_reason r) {
    return r >= 0 && r < MQ_DEAD_REASONS ? mq_dead_reason_names[r] : "unknown";
}

static void mq_metrics_init(mq *q) {
    q->m_reconnects = metrics_get(metrics_counter("imgfeed_broker_reconnects_total",
                                                  "connections to the broker made again after one was lost", NULL));
    metrics_family *dead = metrics_counter("imgfeed_dead_lettered_total",
                                           "messages or items sent to E.dead, by reason", "reason");
    for (int r = 0; r < MQ_DEAD_REASONS; r++) q->m_dead[r] = metrics_get(dead, mq_dead_reason_names[r]);
    q->m_dead_lost = metrics_get(metrics_counter(
        "imgfeed_dead_letters_lost_total", "messages the broker refused even in E.dead (dropped, logged)", NULL));
    q->m_failovers = metrics_get(metrics_counter(
        "imgfeed_broker_failovers_total", "connections made to another node of the cluster than the last one", NULL));
    q->m_blocked = metrics_get(metrics_gauge(
        "imgfeed_broker_blocked", "connections the broker blocks from publishing now (a resource alarm)", NULL));
    q->m_blocked_seconds = metrics_get(metrics_counter(
        "imgfeed_broker_blocked_seconds_total", "seconds connections were blocked from publishing, summed", NULL));
}

int mq_new(const mq_options *opts, mq **out) {
    *out = NULL;
    if (!opts || !opts->url || !opts->exchange || !*opts->exchange) return MQ_INVALID;
    mq *q = xcalloc(1, sizeof *q);
    size_t bad;
    if (mq_url_list_parse(opts->url, &q->urls, &q->nurls, &bad) != MQ_OK) {
        /* The URL itself is not logged: it may hold a password. */
        log_error("cannot use the broker URL%s: URL %zu is not of the form amqp[s]://user:password@host:port/vhost",
                  strchr(opts->url, ',') ? "s" : "", bad);
        free(q);
        return MQ_BAD_URL;
    }
    q->url_logs = xcalloc(q->nurls, sizeof *q->url_logs);
    for (size_t i = 0; i < q->nurls; i++)
        q->url_logs[i] = mq_url_describe(&q->urls[i]);
    /* Processes spread over the nodes: each starts at its own. */
    mq_set_node(q, (size_t)getpid());
    q->connected_node = SIZE_MAX;
    q->queue_type = opts->queue_type;
    q->delivery_limit = opts->delivery_limit > 0 ? opts->delivery_limit : MQ_DELIVERY_LIMIT;
    q->exchange = xstrdup(opts->exchange);
    q->connection_name = xstrdup(opts->connection_name);
    q->tls_cacert = xstrdup(opts->tls_cacert);
    q->names[MQ_EXCHANGE_RAW] = xasprintf("%s.raw", q->exchange);
    q->names[MQ_EXCHANGE_ITEMS] = xstrdup(q->exchange);
    q->names[MQ_EXCHANGE_DEAD] = xasprintf("%s.dead", q->exchange);
    q->names[MQ_QUEUE_HASHER] = xasprintf("%s.hasher", q->exchange);
    q->names[MQ_QUEUE_ARCHIVER] = xasprintf("%s.archiver", q->exchange);
    q->names[MQ_QUEUE_DEAD] = xasprintf("%s.dead", q->exchange);
    int64_t hb = opts->heartbeat_ms <= 0 ? 0 : (opts->heartbeat_ms + 999) / 1000;
    q->heartbeat_s = hb > 65535 ? 65535 : (int)hb;
    q->max_attempts = opts->max_attempts;
    q->backoff_initial_ms = opts->backoff_initial_ms > 0 ? opts->backoff_initial_ms : MQ_BACKOFF_INITIAL_MS;
    q->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : MQ_BACKOFF_MAX_MS;
    q->max_message = opts->max_message_bytes > 0 ? opts->max_message_bytes : 0;
    q->idle = opts->idle;
    q->idle_arg = opts->idle_arg;
    if (opts->own_queue && opts->own_queue->name) {
        const mq_queue_spec *o = opts->own_queue;
        size_t n = 0;
        while (o->keys && o->keys[n])
            n++;
        q->own_keys = xcalloc(n ? n + 1 : 2, sizeof *q->own_keys);
        for (size_t i = 0; i < n; i++)
            q->own_keys[i] = xstrdup(o->keys[i]);
        if (!n) q->own_keys[0] = xstrdup("#");
        q->own = *o;
        q->own.name = xstrdup(o->name);
        q->own.keys = (const char *const *)q->own_keys;
    }
    backoff_init(&q->backoff, q->backoff_initial_ms, q->backoff_max_ms);
    mq_metrics_init(q);
    int rc = mq_reconnect(q);
    if (rc != MQ_OK) {
        mq_free(q);
        return rc;
    }
    *out = q;
    return MQ_OK;
}

void mq_free(mq *q) {
    if (!q) return;
    if (q->state == MQ_STATE_OPEN) {
        log_info("closing the connection to %s", q->url_log);
        mq_drop(q, true);
    }
    mq_free_deliveries(q);
    for (size_t i = 0; i <= MQ_CH_CONSUME; i++)
        mq_content_reset(&q->content[i]);
    for (size_t i = 0; i < q->nurls; i++)
        free(q->url_logs[i]);
    free(q->url_logs);
    mq_url_list_release(q->urls, q->nurls);
    free(q->exchange);
    free(q->connection_name);
    free(q->tls_cacert);
    for (size_t i = 0; i <= MQ_QUEUE_DEAD; i++)
        free(q->names[i]);
    free(q->queue);
    for (size_t i = 0; q->own_keys && q->own_keys[i]; i++)
        free(q->own_keys[i]);
    free(q->own_keys);
    free((char *)q->own.name);
    free(q);
}

const char *mq_target_name(const mq *q, mq_target target) {
    return target >= MQ_EXCHANGE_RAW && target <= MQ_QUEUE_DEAD ? q->names[target] : NULL;
}

uint64_t mq_generation(const mq *q) { return q->generation; }

size_t mq_current_node(const mq *q) { return q->node; }

bool mq_blocked(const mq *q) { return q->blocked; }

int64_t mq_max_message(const mq *q) { return q->max_message; }

void mq_get_stats(const mq *q, mq_stats *out) { *out = q->stats; }

int mq_declare_topology(mq *q) {
    char why[MQ_WHY_MAX];
    for (;;) {
        if (q->state != MQ_STATE_OPEN) return mq_reconnect(q); /* which declares it */
        bool server = false;
        if (mq_declare_on(q, q->conn, why, sizeof why, &server) == 0) return MQ_OK;
        mq_lost(q, server, "%s", why);
    }
}

int mq_tick(mq *q) {
    if (q->state != MQ_STATE_OPEN) return MQ_DISCONNECTED;
    return mq_drain(q);
}

/* --- publishing --- */

/* Publish msgs[idx[0..n)] once, with state[idx[k]] recording the broker's
 * answer for each, and wait for all answers.  MQ_OK (every message acked or
 * nacked), MQ_DISCONNECTED or MQ_STOPPED. */
static int mq_publish_round(mq *q, const char *exchange, mq_message *msgs, const size_t *idx, size_t n,
                            const amqp_table_t *headers, unsigned char *state) {
    q->round.seq_base = q->next_seq;
    q->round.n = n;
    q->round.settled = 0;
    q->round.first_open = 0;
    q->round.idx = idx;
    q->round.state = state;
    q->round.msgs = msgs;
    q->round.nacked = false;

    int rc = MQ_OK;
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (headers) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers = *headers;
    }
    /* Blocked: send nothing until the broker unblocks, since it does not
     * read this connection meanwhile, and a send into full socket buffers
     * would wait without looking at the stop flag. */
    while (q->blocked) {
        if (sig_stop_requested()) {
            rc = MQ_STOPPED;
            goto done;
        }
        if ((rc = mq_wait_readable(q)) == MQ_DISCONNECTED) goto done;
        rc = MQ_OK;
    }
    amqp_bytes_t ex = amqp_cstring_bytes(exchange);
    for (size_t k = 0; k < n; k++) {
        const mq_message *m = &msgs[idx[k]];
        char id[24];
        snprintf(id, sizeof id, "%" PRIu64, q->next_seq);
        props.message_id = amqp_cstring_bytes(id);
        amqp_bytes_t body = {.len = m->len, .bytes = (void *)m->body};
        int st = amqp_basic_publish(q->conn, MQ_CH_PUBLISH, ex, amqp_cstring_bytes(m->routing_key), 1, 0, &props, body);
        if (st != AMQP_STATUS_OK) {
            mq_lost_status(q, "cannot publish", st);
            rc = MQ_DISCONNECTED;
            goto done;
        }
        q->next_seq++;
        if ((k + 1) % MQ_DRAIN_EVERY == 0 && (rc = mq_drain(q)) != MQ_OK) goto done;
    }
    while (q->round.settled < n) {
        if (sig_stop_requested()) {
            rc = MQ_STOPPED;
            goto done;
        }
        if ((rc = mq_wait_readable(q)) == MQ_DISCONNECTED) goto done;
        rc = MQ_OK;
    }
done:
    q->round.n = 0;
    q->round.idx = NULL;
    q->round.state = NULL;
    q->round.msgs = NULL;
    return rc;
}

/* Mark msgs[i] refused for good, with the reason. */
static void mq_refuse(mq_message *m, unsigned char *state, const char *exchange, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mq_refuse(mq_message *m, unsigned char *state, const char *exchange, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->why, sizeof m->why, fmt, ap);
    va_end(ap);
    m->refused = true;
    *state = MQ_REFUSED_FOR_GOOD;
    log_error("not publishing a message of %zu bytes to exchange %s, routing key %s, ever: %s", m->len, exchange,
              m->routing_key, m->why);
}

/* Publish until every message is acked or refused for good (see mq.h);
 * with LIMIT, messages over max_message are refused without being sent. */
static int mq_publish_all(mq *q, const char *exchange, mq_message *msgs, size_t n, const amqp_table_t *headers,
                          bool limit) {
    if (!exchange || (n && !msgs)) return MQ_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].routing_key || (msgs[i].len && !msgs[i].body)) return MQ_INVALID;
        msgs[i].returned = msgs[i].refused = false;
        msgs[i].why[0] = '\0';
    }
    if (n == 0) return MQ_OK;

    unsigned char *state = xcalloc(n, 1);
    size_t *idx = xmalloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        if (limit && q->max_message && msgs[i].len > (uint64_t)q->max_message)
            mq_refuse(&msgs[i], &state[i], exchange,
                      "message of %zu bytes is larger than --max-message, %" PRId64 " bytes", msgs[i].len,
                      q->max_message);
    bool one_by_one = false; /* after a refusal by the broker: find the message it refuses */
    unsigned rounds = 0;     /* failed rounds in a row */
    backoff retry;
    backoff_init(&retry, q->backoff_initial_ms, q->backoff_max_ms);
    int rc;
    for (;;) {
        size_t m = 0;
        for (size_t i = 0; i < n && !(one_by_one && m == 1); i++)
            if (state[i] == MQ_UNCONFIRMED) idx[m++] = i;
        if (m == 0) {
            rc = MQ_OK;
            break;
        }
        if (sig_stop_requested()) {
            rc = MQ_STOPPED;
            break;
        }
        /* Find out first if an idle connection died meanwhile. */
        if (q->state == MQ_STATE_OPEN) mq_drain(q);
        if (q->state != MQ_STATE_OPEN && (rc = mq_reconnect(q)) != MQ_OK) break;
        q->refusal = false;
        rc = mq_publish_round(q, exchange, msgs, idx, m, headers, state);
        if (rc == MQ_STOPPED) break;
        /* From the first message not acked on, every message of the round
         * is published again, acked or not, so that none overtakes another
         * of its routing key. */
        size_t first_failed = 0;
        while (first_failed < m && state[idx[first_failed]] == MQ_ACKED)
            first_failed++;
        size_t failed = m - first_failed;
        for (size_t k = first_failed; k < m; k++) {
            state[idx[k]] = MQ_UNCONFIRMED;
            msgs[idx[k]].returned = false;
        }
        if (!failed) {
            rounds = 0;
            backoff_reset(&retry);
            continue;
        }
        if (q->refusal) {
            /* Not a failed attempt: the answer about one message. */
            if (m == 1) {
                mq_refuse(&msgs[idx[0]], &state[idx[0]], exchange, "%s", q->refusal_why);
            } else {
                log_warn("the broker refused a message of a batch of %zu to exchange %s (%s): publishing the "
                         "%zu unconfirmed ones one at a time to find it",
                         m, exchange, q->refusal_why, failed);
                one_by_one = true;
            }
            q->stats.republished += failed - (m == 1);
            continue;
        }
        rounds++;
        if (q->max_attempts && rounds >= q->max_attempts) {
            log_error("cannot publish to exchange %s: %zu of %zu messages unconfirmed; giving up after %u attempts",
                      exchange, failed, n, rounds);
            rc = MQ_GAVE_UP;
            break;
        }
        log_warn("publishing %zu of %zu messages to exchange %s again: %s", failed, n, exchange,
                 rc == MQ_DISCONNECTED ? "the connection was lost" : "the broker nacked one");
        q->stats.republished += failed;
        /* The first retry after a lost connection goes at once (reconnecting
         * has its own backoff); the rest wait, so that a broker that refuses
         * every time is not hammered. */
        if ((rounds > 1 || q->state == MQ_STATE_OPEN) && !time_sleep_ms(backoff_next_ms(&retry))) {
            rc = MQ_STOPPED;
            break;
        }
    }
    free(idx);
    free(state);
    if (rc == MQ_OK) {
        for (size_t i = 0; i < n; i++)
            if (msgs[i].returned && rc == MQ_OK) rc = MQ_UNROUTABLE;
        for (size_t i = 0; i < n; i++)
            if (msgs[i].refused) rc = MQ_REFUSED;
    }
    return rc;
}

int mq_publish(mq *q, const char *exchange, mq_message *msgs, size_t n) {
    return mq_publish_all(q, exchange, msgs, n, NULL, true);
}

int mq_publish_dead(mq *q, const char *routing_key, const void *body, size_t len, mq_dead_reason kind,
                    const char *reason) {
    if (!routing_key || !reason || kind < 0 || kind >= MQ_DEAD_REASONS) return MQ_INVALID;
    amqp_table_entry_t entries[] = {
        {.key = amqp_cstring_bytes("x-imgfeed-error"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(reason)}},
        {.key = amqp_cstring_bytes("x-imgfeed-routing-key"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(routing_key)}},
    };
    amqp_table_t headers = {.num_entries = 2, .entries = entries};
    mq_message msg = {.routing_key = routing_key, .body = body, .len = len};
    int rc = mq_publish_all(q, q->names[MQ_EXCHANGE_DEAD], &msg, 1, &headers, false);
    if (rc == MQ_OK || rc == MQ_UNROUTABLE) metrics_inc(q->m_dead[kind]);
    if (rc == MQ_REFUSED) {
        log_error("the dead letter of routing key %s is lost: %s", routing_key, msg.why);
        metrics_inc(q->m_dead_lost);
    }
    return rc;
}

/* --- consuming --- */

int mq_consume(mq *q, const char *queue, uint16_t prefetch) {
    if (!queue || !*queue) return MQ_INVALID;
    if (q->queue) {
        log_error("cannot consume queue %s: this connection consumes %s already", queue, q->queue);
        return MQ_INVALID;
    }
    q->queue = xstrdup(queue);
    q->prefetch = prefetch;
    char why[MQ_WHY_MAX];
    int rc;
    for (;;) {
        if (q->state != MQ_STATE_OPEN) {
            rc = mq_reconnect(q); /* which sets up the consumer */
            break;
        }
        bool server = false;
        if (mq_setup_consumer(q, q->conn, why, sizeof why, &server) == 0) {
            log_info("consuming queue %s on %s (prefetch %u)", queue, q->url_log, (unsigned)prefetch);
            rc = MQ_OK;
            break;
        }
        mq_lost(q, server, "%s", why);
    }
    if (rc != MQ_OK) {
        free(q->queue);
        q->queue = NULL;
    }
    return rc;
}

int mq_next(mq *q, mq_delivery *out, int64_t timeout_ms) {
    memset(out, 0, sizeof *out);
    if (!q->queue) return MQ_INVALID;
    if (timeout_ms > INT64_MAX / (4 * TIME_NS_PER_MS)) timeout_ms = -1; /* centuries: for ever */
    int64_t deadline = timeout_ms < 0 ? 0 : time_mono_ns() + timeout_ms * TIME_NS_PER_MS;
    for (;;) {
        if (q->head) {
            mq_node *n = q->head;
            q->head = n->next;
            if (!q->head) q->tail = NULL;
            *out = n->d;
            free(n);
            return MQ_OK;
        }
        if (sig_stop_requested()) return MQ_STOPPED;
        if (q->state != MQ_STATE_OPEN) {
            int rc = mq_reconnect(q);
            if (rc != MQ_OK) return rc;
            continue;
        }
        int64_t wait_ms = MQ_SLICE_MS;
        if (timeout_ms >= 0) {
            int64_t left_ns = deadline - time_mono_ns();
            int64_t left_ms = left_ns <= 0 ? 0 : (left_ns + TIME_NS_PER_MS - 1) / TIME_NS_PER_MS;
            if (left_ms < wait_ms) wait_ms = left_ms;
        }
        if (mq_pump(q, wait_ms) == MQ_TIMEOUT && timeout_ms >= 0 && time_mono_ns() >= deadline) return MQ_TIMEOUT;
    }
}

/* Is tag of the open connection?  If not, say so: the call is a no-op. */
static bool mq_tag_current(mq *q, mq_tag tag, const char *verb) {
    if (q->state == MQ_STATE_OPEN && tag.generation == q->generation) return true;
    q->stats.stale_acks++;
    log_info("not %s delivery %" PRIu64 " of connection generation %" PRIu64
             ": that connection is gone and the broker delivers the message again",
             verb, tag.value, tag.generation);
    return false;
}

static int mq_settle_status(mq *q, int st, const char *verb, mq_tag tag) {
    if (st == AMQP_STATUS_OK) return MQ_OK;
    char what[96];
    mq_format(what, sizeof what, "cannot send the %s of delivery %" PRIu64, verb, tag.value);
    mq_lost_status(q, what, st);
    q->stats.stale_acks++;
    return MQ_STALE;
}

int mq_ack(mq *q, mq_tag tag, bool multiple) {
    if (!mq_tag_current(q, tag, "acknowledging")) return MQ_STALE;
    return mq_settle_status(q, amqp_basic_ack(q->conn, MQ_CH_CONSUME, tag.value, multiple), "ack", tag);
}

int mq_nack(mq *q, mq_tag tag, bool multiple, bool requeue) {
    if (!mq_tag_current(q, tag, "nacking")) return MQ_STALE;
    return mq_settle_status(q, amqp_basic_nack(q->conn, MQ_CH_CONSUME, tag.value, multiple, requeue), "nack", tag);
}

int mq_reject(mq *q, mq_tag tag, bool requeue) {
    if (!mq_tag_current(q, tag, "rejecting")) return MQ_STALE;
    return mq_settle_status(q, amqp_basic_reject(q->conn, MQ_CH_CONSUME, tag.value, requeue), "reject", tag);
}
