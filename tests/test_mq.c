/* test_mq.c -- common/mq.c: URL parsing, and against the real RabbitMQ the
 * topology, confirmed publishing, consuming and acknowledging.
 *
 * Each broker test uses its own exchange name "t<pid><letter>" so that runs
 * and tests never see each other's queues, and deletes its topology at the
 * end.  Nothing here is timed: a negative check ("nothing else arrives")
 * publishes a sentinel after the fact and expects the sentinel next.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mq.h"
#include "mq_admin.h"
#include "sig.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

/* --- URL parsing (no broker) --- */

typedef struct url_case {
    const char *text;
    int status;
    const char *user, *password, *host;
    int port;
    const char *vhost;
    bool tls;
} url_case;

static void test_url_parse(void **state) {
    (void)state;
    static const url_case cases[] = {
        {"amqp://", MQ_OK, "guest", "guest", "localhost", 5672, "/", false},
        {"amqp://h", MQ_OK, "guest", "guest", "h", 5672, "/", false},
        {"amqp://h/", MQ_OK, "guest", "guest", "h", 5672, "", false},     /* trailing / : the empty vhost */
        {"amqp://h/%2f", MQ_OK, "guest", "guest", "h", 5672, "/", false}, /* %2f : the vhost "/" */
        {"amqp://h/%2F", MQ_OK, "guest", "guest", "h", 5672, "/", false},
        {"amqp://h/v", MQ_OK, "guest", "guest", "h", 5672, "v", false},
        {"amqp://h/a%2fb", MQ_OK, "guest", "guest", "h", 5672, "a/b", false},
        {"amqp://u:p@h:1/v", MQ_OK, "u", "p", "h", 1, "v", false},
        {"amqp://u:p%40x%3a@h", MQ_OK, "u", "p@x:", "h", 5672, "/", false},
        {"amqp://guest:guest@127.0.0.1:5672", MQ_OK, "guest", "guest", "127.0.0.1", 5672, "/", false},
        {"amqp://[::1]:5/x", MQ_OK, "guest", "guest", "::1", 5, "x", false},
        {"amqps://h", MQ_OK, "guest", "guest", "h", 5671, "/", true},
        {"amqps://u:p@h:5000/", MQ_OK, "u", "p", "h", 5000, "", true},
        {"", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"http://h", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp:/h", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://h:abc", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://h:99999", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://h:0", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://h?heartbeat=5", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://h/a/b", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false}, /* a / in a vhost must be %2f */
        {"amqp://h/%zz", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
        {"amqp://[::1", MQ_BAD_URL, NULL, NULL, NULL, 0, NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const url_case *c = &cases[i];
        mq_url url;
        int rc = mq_url_parse(c->text, &url);
        if (rc != c->status) fail_msg("'%s': status %d, expected %d", c->text, rc, c->status);
        if (rc != MQ_OK) continue;
        assert_string_equal(url.user, c->user);
        assert_string_equal(url.password, c->password);
        assert_string_equal(url.host, c->host);
        assert_int_equal(url.port, c->port);
        assert_string_equal(url.vhost, c->vhost);
        assert_int_equal(url.tls, c->tls);
        mq_url_release(&url);
    }
    mq_url none;
    assert_int_equal(mq_url_parse(NULL, &none), MQ_BAD_URL);
}

/* A cluster's nodes: URLs separated by commas, blanks around them allowed;
 * a bad one is named by its position, in mq and in the settings' check. */
static void test_url_list(void **state) {
    (void)state;
    mq_url *urls;
    size_t n, bad;
    assert_int_equal(mq_url_list_parse("amqp://a:x@h1:1/v, amqps://b@h2 ,amqp://h3", &urls, &n, &bad), MQ_OK);
    assert_int_equal(n, 3);
    assert_string_equal(urls[0].user, "a");
    assert_string_equal(urls[0].host, "h1");
    assert_int_equal(urls[0].port, 1);
    assert_string_equal(urls[0].vhost, "v");
    assert_string_equal(urls[1].host, "h2");
    assert_true(urls[1].tls);
    assert_int_equal(urls[1].port, 5671);
    assert_string_equal(urls[2].host, "h3");
    mq_url_list_release(urls, n);
    assert_int_equal(mq_url_list_parse("amqp://u:p%2Cq@h", &urls, &n, &bad), MQ_OK); /* a comma in a password */
    assert_int_equal(n, 1);
    assert_string_equal(urls[0].password, "p,q");
    mq_url_list_release(urls, n);
    assert_int_equal(mq_url_list_parse("amqp://h1,amqp://h2:abc", &urls, &n, &bad), MQ_BAD_URL);
    assert_int_equal(bad, 2);
    assert_null(urls);
    assert_int_equal(mq_url_list_parse("amqp://h1,", &urls, &n, &bad), MQ_BAD_URL);
    assert_int_equal(bad, 2);

    char why[200];
    assert_true(cfg_check_amqp_url("amqp://h1:5672,amqp://h2:5672", why, sizeof why));
    assert_false(cfg_check_amqp_url("amqp://h1,http://h2", why, sizeof why));
    assert_string_equal(why, "URL 2 does not start with amqp:// or amqps://");
    assert_false(cfg_check_amqp_url("amqp://h1,amqp://h2:x", why, sizeof why));
    assert_string_equal(why, "URL 2 is not amqp[s]://[user[:password]@]host[:port][/vhost]");
    assert_false(cfg_check_amqp_url("amqp://h:x", why, sizeof why));
    assert_string_equal(why, "is not amqp[s]://[user[:password]@]host[:port][/vhost]");
}

/* The form logged: no password; parsing it again gives the same place. */
static void test_url_describe(void **state) {
    (void)state;
    static const struct {
        const char *text, *described;
    } cases[] = {
        {"amqp://u:secret@h:1/v", "amqp://u@h:1/v"},
        {"amqp://h", "amqp://guest@h:5672"},
        {"amqp://h/%2f", "amqp://guest@h:5672"},
        {"amqp://h/", "amqp://guest@h:5672/"},
        {"amqps://u%40x:secret@[::1]/a%2fb", "amqps://u%40x@[::1]:5671/a%2Fb"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mq_url url, again;
        assert_int_equal(mq_url_parse(cases[i].text, &url), MQ_OK);
        char *s = mq_url_describe(&url);
        assert_string_equal(s, cases[i].described);
        assert_null(strstr(s, "secret"));
        assert_int_equal(mq_url_parse(s, &again), MQ_OK);
        assert_string_equal(again.user, url.user);
        assert_string_equal(again.host, url.host);
        assert_int_equal(again.port, url.port);
        assert_string_equal(again.vhost, url.vhost);
        assert_int_equal(again.tls, url.tls);
        mq_url_release(&again);
        mq_url_release(&url);
        free(s);
    }
}

/* The options of a daemon come from the common settings. */
static void test_options_init(void **state) {
    (void)state;
    cfg_common common = {.amqp_url = "amqp://u:p@h/v", .exchange = "chan", .amqp_heartbeat_ms = 30000};
    mq_options o;
    mq_options_init(&o, &common, "imgfeed-hasher");
    assert_string_equal(o.url, "amqp://u:p@h/v");
    assert_string_equal(o.exchange, "chan");
    assert_int_equal(o.heartbeat_ms, 30000);
    assert_string_equal(o.connection_name, "imgfeed-hasher");
    assert_int_equal(o.max_attempts, 0); /* daemons retry until stopped */
    assert_null(o.tls_cacert);
    assert_int_equal(o.queue_type, MQ_QUEUE_CLASSIC);

    common.amqp_cacert = "/etc/imgfeed/ca.pem";
    common.queue_type = "quorum";
    common.delivery_limit = 7;
    mq_options_init(&o, &common, "imgfeed-archiver");
    assert_string_equal(o.tls_cacert, "/etc/imgfeed/ca.pem");
    assert_int_equal(o.queue_type, MQ_QUEUE_QUORUM);
    assert_int_equal(o.delivery_limit, 7);
}

static int reset_stop(void **state) {
    (void)state;
    sig_reset();
    return 0;
}

/* --- helpers for the broker tests --- */

static char *exchange_for(char letter) { return xasprintf("t%d%c", (int)getpid(), letter); }

static void options_for(mq_options *o, const char *exchange) {
    memset(o, 0, sizeof *o);
    o->url = testenv_require("IMGFEED_AMQP_URL");
    o->exchange = exchange;
    o->heartbeat_ms = 5000;
    o->connection_name = "test_mq";
    o->max_attempts = 5;
    o->backoff_initial_ms = 50;
    o->backoff_max_ms = 500;
}

static mq *connect_to(const char *exchange) {
    mq_options o;
    options_for(&o, exchange);
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    assert_non_null(q);
    return q;
}

static char *body_of(int n) { return xasprintf("[{\"_id\":\"%d\",\"n\":%d}]", n, n); }

/* N messages with bodies body_of(i), routed to KEYS[(i / 7) % NKEYS]; free
 * with messages_free. */
static mq_message *messages_new(int n, const char *const *keys, int nkeys) {
    mq_message *msgs = xcalloc((size_t)n, sizeof *msgs);
    for (int i = 0; i < n; i++) {
        char *body = body_of(i);
        msgs[i] = (mq_message){.routing_key = keys[(i / 7) % nkeys], .body = body, .len = strlen(body)};
    }
    return msgs;
}

static void messages_free(mq_message *msgs, int n) {
    for (int i = 0; i < n; i++)
        free((void *)msgs[i].body);
    free(msgs);
}

/* Publish one message and expect MQ_OK. */
static void publish_one(mq *q, const char *exchange, const char *key, const char *body) {
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(q, exchange, &m, 1), MQ_OK);
    assert_false(m.returned);
}

/* The next delivery, which must come. */
static void next_of(mq *q, mq_delivery *d) {
    int rc = mq_next(q, d, 60000);
    if (rc != MQ_OK) fail_msg("mq_next: %s", mq_status_text(rc));
}

/* --- connecting --- */

/* Every failed attempt is logged with its reason and without the password;
 * max_attempts ends the retries. */
static void test_connect_failures(void **state) {
    (void)state;
    char *e = exchange_for('a');
    mq_url good;
    assert_int_equal(mq_url_parse(testenv_require("IMGFEED_AMQP_URL"), &good), MQ_OK);
    char *refused = xstrdup("amqp://guest:sekrit-one@127.0.0.1:1");
    char *bad_password = xasprintf("amqp://guest:sekrit-two@127.0.0.1:%d", good.port);
    char *bad_vhost = xasprintf("amqp://%s:%s@127.0.0.1:%d/no-such-vhost", good.user, good.password, good.port);

    int fd = testenv_log_begin();
    mq_options o;
    options_for(&o, e);
    o.max_attempts = 2;
    o.backoff_initial_ms = 10;
    mq *q = NULL;
    const char *urls[] = {refused, bad_password, bad_vhost};
    for (size_t i = 0; i < 3; i++) {
        o.url = urls[i];
        assert_int_equal(mq_new(&o, &q), MQ_GAVE_UP);
        assert_null(q);
    }
    o.url = "amqp://h:notaport";
    assert_int_equal(mq_new(&o, &q), MQ_BAD_URL);
    char *text = testenv_log_end(fd);
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "cannot connect to amqp://guest@127.0.0.1:1: connection refused; retrying in"));
    assert_non_null(strstr(text, "giving up after 2 attempts"));
    assert_non_null(strstr(text, "ACCESS_REFUSED"));
    assert_non_null(strstr(text, "no-such-vhost"));
    assert_null(strstr(text, "sekrit"));
    free(text);
    free(refused);
    free(bad_password);
    free(bad_vhost);
    mq_url_release(&good);
    free(e);
}

/* A requested stop ends connecting and publishing with MQ_STOPPED. */
static void test_stop_requested(void **state) {
    (void)state;
    char *e = exchange_for('b');
    mq *q = connect_to(e);
    sig_request_stop();
    mq_options o;
    options_for(&o, e);
    o.url = "amqp://guest:guest@127.0.0.1:1";
    o.max_attempts = 0; /* only the stop ends it */
    mq *other = NULL;
    assert_int_equal(mq_new(&o, &other), MQ_STOPPED);
    assert_null(other);
    mq_message m = {.routing_key = "s.post.a", .body = "[]", .len = 2};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), &m, 1), MQ_STOPPED);
    sig_reset();
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* --- topology --- */

static void test_topology_twice(void **state) {
    (void)state;
    char *e = exchange_for('c');
    char *name = xasprintf("%s.raw", e);
    mq *q = connect_to(e);
    assert_string_equal(mq_target_name(q, MQ_EXCHANGE_RAW), name);
    assert_string_equal(mq_target_name(q, MQ_EXCHANGE_ITEMS), e);
    free(name);
    name = xasprintf("%s.dead", e);
    assert_string_equal(mq_target_name(q, MQ_EXCHANGE_DEAD), name);
    assert_string_equal(mq_target_name(q, MQ_QUEUE_DEAD), name);
    free(name);
    assert_int_equal(mq_declare_topology(q), MQ_OK);
    assert_int_equal(mq_declare_topology(q), MQ_OK);
    mq *other = connect_to(e); /* a second process declares it too */
    assert_int_equal(mq_declare_topology(other), MQ_OK);
    assert_int_equal(mq_tick(q), MQ_OK);
    assert_int_equal(mq_generation(q), 1);
    mq_free(other);

    mq_admin *a = mq_admin_open();
    assert_int_equal(mq_admin_count(a, mq_target_name(q, MQ_QUEUE_HASHER)), 0);
    assert_int_equal(mq_admin_count(a, mq_target_name(q, MQ_QUEUE_ARCHIVER)), 0);
    assert_int_equal(mq_admin_count(a, mq_target_name(q, MQ_QUEUE_DEAD)), 0);
    mq_admin_close(a);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* A queue declared with other arguments is a refusal, reported and retried
 * like any failed connect. */
static void test_topology_conflict(void **state) {
    (void)state;
    char *e = exchange_for('d');
    char *hasher = xasprintf("%s.hasher", e);
    mq *q = connect_to(e);
    mq_admin *a = mq_admin_open();
    mq_admin_delete_queue(a, hasher);
    mq_admin_declare_queue(a, hasher, NULL, mq_target_name(q, MQ_EXCHANGE_RAW), "#"); /* no dead-lettering */
    mq_free(q);

    mq_options o;
    options_for(&o, e);
    o.max_attempts = 2;
    o.backoff_initial_ms = 10;
    assert_int_equal(mq_new(&o, &q), MQ_GAVE_UP);
    assert_null(q);
    mq_admin_close(a);
    mq_admin_delete_topology(e, NULL);
    free(hasher);
    free(e);
}

/* --- a cluster's nodes, quorum queues --- */

/* With several nodes, a node that does not answer is passed over at once
 * (no backoff before the next), and a lost connection is made again to the
 * next node: the failover is logged and counted, and what was delivered
 * but not acknowledged comes again there.  The two "nodes" here are the
 * test broker by two names. */
static void test_failover(void **state) {
    (void)state;
    char *e = exchange_for('q');
    mq_url good;
    assert_int_equal(mq_url_parse(testenv_require("IMGFEED_AMQP_URL"), &good), MQ_OK);
    /* A process starts at node getpid() % n: the dead node is put there. */
    char *alive = xasprintf("amqp://%s:%s@127.0.0.1:%d", good.user, good.password, good.port);
    const char *dead_url = "amqp://guest:guest@127.0.0.1:1";
    bool dead_at_0 = getpid() % 2 == 0;
    char *dead_first = xasprintf("%s,%s", dead_at_0 ? dead_url : alive, dead_at_0 ? alive : dead_url);
    int fd = testenv_log_begin();
    mq_options o;
    options_for(&o, e);
    o.url = dead_first;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    assert_int_equal(mq_current_node(q), dead_at_0 ? 1 : 0);
    mq_free(q);

    char *two = xasprintf("amqp://%s:%s@127.0.0.1:%d,amqp://%s:%s@localhost:%d", good.user, good.password, good.port,
                          good.user, good.password, good.port);
    o.url = two;
    o.backoff_initial_ms = 50;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    size_t first = mq_current_node(q);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[\"moved\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    mq_delivery d, again;
    next_of(q, &d);
    mq_tag bogus = d.tag;
    bogus.value += 1000;
    assert_int_equal(mq_ack(q, bogus, false), MQ_OK); /* the broker closes the channel: the connection is lost */
    next_of(q, &again);
    assert_string_equal(again.body, "[\"moved\"]");
    assert_true(again.redelivered);
    assert_int_equal(mq_current_node(q), 1 - first);
    assert_int_equal(mq_ack(q, again.tag, false), MQ_OK);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.failovers, 1);
    assert_int_equal(st.connects, 2);
    mq_delivery_release(&d);
    mq_delivery_release(&again);
    mq_free(q);
    char *text = testenv_log_end(fd);
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "cannot connect to amqp://guest@127.0.0.1:1: connection refused; trying the next node"));
    assert_non_null(strstr(text, "failed over from"));
    assert_non_null(strstr(text, "of 2, generation 2"));
    free(text);
    mq_admin_delete_topology(e, NULL);
    free(two);
    free(dead_first);
    free(alive);
    mq_url_release(&good);
    free(e);
}

/* Quorum queues: a message delivered and given back delivery_limit times
 * is dead-lettered by the broker to E.dead (delivery_limit reason), not
 * dropped; a process that wants classic queues where quorum queues are is
 * refused with the broker's reason. */
static void test_quorum_delivery_limit(void **state) {
    (void)state;
    char *e = exchange_for('r');
    mq_options o;
    options_for(&o, e);
    o.queue_type = MQ_QUEUE_QUORUM;
    o.delivery_limit = 2;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[\"poison\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    int deliveries = 0;
    mq_delivery d;
    while (mq_next(q, &d, 2000) == MQ_OK) {
        assert_string_equal(d.body, "[\"poison\"]");
        if (deliveries > 0) assert_non_null(mq_delivery_header(&d, "x-delivery-count"));
        deliveries++;
        assert_int_equal(mq_nack(q, d.tag, false, true), MQ_OK);
        mq_delivery_release(&d);
        assert_true(deliveries <= 10);
    }
    assert_int_equal(deliveries, 3); /* the first and delivery_limit more */

    mq *dead = NULL;
    assert_int_equal(mq_new(&o, &dead), MQ_OK);
    assert_int_equal(mq_consume(dead, mq_target_name(dead, MQ_QUEUE_DEAD), 10), MQ_OK);
    next_of(dead, &d);
    assert_string_equal(d.body, "[\"poison\"]");
    assert_string_equal(d.routing_key, "s.post.a");
    assert_string_equal(mq_delivery_header(&d, "x-first-death-reason"), "delivery_limit");
    assert_string_equal(mq_delivery_header(&d, "x-first-death-queue"), mq_target_name(q, MQ_QUEUE_HASHER));
    assert_int_equal(mq_ack(dead, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(dead);
    mq_free(q);

    int fd = testenv_log_begin();
    o.queue_type = MQ_QUEUE_CLASSIC;
    o.max_attempts = 1;
    assert_int_equal(mq_new(&o, &q), MQ_GAVE_UP);
    char *text = testenv_log_end(fd);
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "x-queue-type"));
    free(text);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* --- publishing and consuming --- */

#define ORDER_N 1000

static void test_publish_consume_order(void **state) {
    (void)state;
    static const char *const keys[] = {"site1.post.g", "site1.thread.g", "site2.image.neko", "site3.post.tech"};
    char *e = exchange_for('e');
    mq *q = connect_to(e);
    mq_message *msgs = messages_new(ORDER_N, keys, 4);
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), msgs, ORDER_N), MQ_OK);
    for (int i = 0; i < ORDER_N; i++)
        assert_false(msgs[i].returned);

    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 100), MQ_OK);
    for (int i = 0; i < ORDER_N; i++) {
        mq_delivery d;
        next_of(q, &d);
        assert_string_equal(d.routing_key, msgs[i].routing_key);
        assert_int_equal(d.len, msgs[i].len);
        assert_string_equal(d.body, msgs[i].body);
        assert_true(d.persistent);
        assert_false(d.redelivered);
        assert_string_equal(d.content_type, "application/json");
        assert_string_equal(d.exchange, mq_target_name(q, MQ_EXCHANGE_RAW));
        assert_int_equal(d.tag.generation, mq_generation(q));
        if (i % 50 == 49) assert_int_equal(mq_ack(q, d.tag, true), MQ_OK);
        mq_delivery_release(&d);
    }
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.republished, 0);
    assert_int_equal(st.returned, 0);
    assert_int_equal(st.stale_acks, 0);

    /* Nothing else is in the queue: the next message is a new one. */
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "site1.post.g", "[\"sentinel\"]");
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, "[\"sentinel\"]");
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);

    messages_free(msgs, ORDER_N);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* The idle callback: called while a publish waits for confirms, with the
 * broker's socket, on which it does the waiting. */
typedef struct idle_record {
    int calls, bad_fd, bad_wait;
} idle_record;

static void record_idle(void *arg, int fd, int64_t max_wait_ms) {
    idle_record *r = arg;
    r->calls++;
    if (fd < 0) r->bad_fd++;
    if (max_wait_ms <= 0 || max_wait_ms > 1000) r->bad_wait++;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (fd >= 0 && poll(&pfd, 1, (int)max_wait_ms) < 0) r->bad_fd++;
}

static void test_publish_idle(void **state) {
    (void)state;
    char *e = exchange_for('p');
    mq_options o;
    options_for(&o, e);
    idle_record rec = {0};
    o.idle = record_idle;
    o.idle_arg = &rec;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    static const char *const key[] = {"site1.post.g"};
    mq_message *msgs = messages_new(ORDER_N, key, 1);
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), msgs, ORDER_N), MQ_OK);
    assert_true(rec.calls >= 1); /* the last confirms cannot be there as the last message leaves */
    assert_int_equal(rec.bad_fd, 0);
    assert_int_equal(rec.bad_wait, 0);
    /* Every message arrived, once, in order. */
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 100), MQ_OK);
    for (int i = 0; i < ORDER_N; i++) {
        mq_delivery d;
        next_of(q, &d);
        assert_string_equal(d.body, msgs[i].body);
        assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    mq_delivery d;
    assert_int_equal(mq_next(q, &d, 200), MQ_TIMEOUT);
    messages_free(msgs, ORDER_N);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* Acknowledging the last tag with multiple acknowledges all: a new
 * connection gets nothing of them again. */
static void test_ack_multiple(void **state) {
    (void)state;
    char *e = exchange_for('f');
    mq *q = connect_to(e);
    const char *raw = mq_target_name(q, MQ_EXCHANGE_RAW);
    mq_message msgs[10];
    char *bodies[10];
    for (int i = 0; i < 10; i++) {
        bodies[i] = body_of(i);
        msgs[i] = (mq_message){.routing_key = "s.post.a", .body = bodies[i], .len = strlen(bodies[i])};
    }
    assert_int_equal(mq_publish(q, raw, msgs, 10), MQ_OK);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 20), MQ_OK);
    mq_tag last = {0};
    for (int i = 0; i < 10; i++) {
        mq_delivery d;
        next_of(q, &d);
        assert_string_equal(d.body, bodies[i]);
        last = d.tag;
        mq_delivery_release(&d);
    }
    assert_int_equal(mq_ack(q, last, true), MQ_OK);
    mq_free(q); /* unacknowledged deliveries would go back to the queue now */

    q = connect_to(e);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[\"sentinel\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 20), MQ_OK);
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, "[\"sentinel\"]");
    assert_false(d.redelivered);
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(q);
    for (int i = 0; i < 10; i++)
        free(bodies[i]);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* nack with requeue delivers the message again, flagged redelivered. */
static void test_nack_requeue(void **state) {
    (void)state;
    char *e = exchange_for('g');
    mq *q = connect_to(e);
    const char *raw = mq_target_name(q, MQ_EXCHANGE_RAW);
    publish_one(q, raw, "s.post.a", "[\"a\"]");
    publish_one(q, raw, "s.post.a", "[\"b\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 1), MQ_OK);
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, "[\"a\"]");
    assert_false(d.redelivered);
    assert_int_equal(mq_nack(q, d.tag, false, true), MQ_OK);
    mq_delivery_release(&d);
    next_of(q, &d);
    assert_string_equal(d.body, "[\"a\"]");
    assert_true(d.redelivered);
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    next_of(q, &d);
    assert_string_equal(d.body, "[\"b\"]");
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* reject without requeue dead-letters the message into E.dead, with its
 * routing key. */
static void test_reject_dead_letters(void **state) {
    (void)state;
    char *e = exchange_for('h');
    mq *q = connect_to(e);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_ITEMS), "s.thread.z", "[\"poison\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_ARCHIVER), 10), MQ_OK);
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, "[\"poison\"]");
    assert_int_equal(mq_reject(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);

    mq *dead = connect_to(e);
    assert_int_equal(mq_consume(dead, mq_target_name(dead, MQ_QUEUE_DEAD), 10), MQ_OK);
    next_of(dead, &d);
    assert_string_equal(d.body, "[\"poison\"]");
    assert_string_equal(d.routing_key, "s.thread.z");
    assert_true(d.persistent);
    const char *reason = mq_delivery_header(&d, "x-first-death-reason");
    assert_non_null(reason);
    assert_string_equal(reason, "rejected");
    assert_string_equal(mq_delivery_header(&d, "x-first-death-queue"), mq_target_name(q, MQ_QUEUE_ARCHIVER));
    assert_int_equal(mq_ack(dead, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(dead);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* The dead-letter helper's message arrives in E.dead saying why. */
static void test_publish_dead(void **state) {
    (void)state;
    char *e = exchange_for('i');
    mq *q = connect_to(e);
    const char *body = "{not json";
    assert_int_equal(mq_publish_dead(q, "site.post.b", body, strlen(body), MQ_DEAD_UNPARSABLE, "not JSON: unexpected end"), MQ_OK);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_DEAD), 10), MQ_OK);
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, body);
    assert_string_equal(d.exchange, mq_target_name(q, MQ_EXCHANGE_DEAD));
    assert_true(d.persistent);
    assert_non_null(mq_delivery_header(&d, "x-imgfeed-error"));
    assert_string_equal(mq_delivery_header(&d, "x-imgfeed-error"), "not JSON: unexpected end");
    assert_string_equal(mq_delivery_header(&d, "x-imgfeed-routing-key"), "site.post.b");
    assert_null(mq_delivery_header(&d, "x-no-such-header"));
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* A message no queue takes comes back (basic.return): reported per message,
 * the others of the batch go through. */
static void test_unroutable(void **state) {
    (void)state;
    char *e = exchange_for('j');
    char *keep = xasprintf("%s.keep", e);
    mq *q = connect_to(e);
    mq_admin *a = mq_admin_open();
    mq_admin_delete_queue(a, mq_target_name(q, MQ_QUEUE_ARCHIVER));
    mq_admin_declare_queue(a, keep, NULL, e, "keep.#");
    mq_message msgs[] = {
        {.routing_key = "keep.post.a", .body = "[1]", .len = 3},
        {.routing_key = "drop.post.a", .body = "[2]", .len = 3},
        {.routing_key = "keep.post.b", .body = "[3]", .len = 3},
        {.routing_key = "drop.post.b", .body = "[4]", .len = 3},
    };
    assert_int_equal(mq_publish(q, e, msgs, 4), MQ_UNROUTABLE);
    assert_false(msgs[0].returned);
    assert_true(msgs[1].returned);
    assert_false(msgs[2].returned);
    assert_true(msgs[3].returned);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.returned, 2);
    assert_int_equal(st.republished, 0);
    assert_int_equal(mq_admin_count(a, keep), 2);
    /* The connection is fine after it. */
    msgs[1].routing_key = "keep.post.c";
    assert_int_equal(mq_publish(q, e, msgs, 2), MQ_OK);
    assert_int_equal(mq_generation(q), 1);
    mq_admin_close(a);
    mq_free(q);
    const char *const extras[] = {"keep", NULL};
    mq_admin_delete_topology(e, extras);
    free(keep);
    free(e);
}

/* Publishing to an exchange that does not exist makes the broker close the
 * channel: each round reconnects, and max_attempts ends it. */
static void test_publish_refused(void **state) {
    (void)state;
    char *e = exchange_for('k');
    mq_options o;
    options_for(&o, e);
    o.max_attempts = 2;
    o.backoff_initial_ms = 10;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    char *missing = xasprintf("%s.missing", e);
    mq_message m = {.routing_key = "s.post.a", .body = "[]", .len = 2};
    assert_int_equal(mq_publish(q, missing, &m, 1), MQ_GAVE_UP);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[]");
    assert_true(mq_generation(q) >= 2);
    free(missing);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* Take deliveries from Q until none comes for a second: how many carried
 * BODY (the deliveries are acked). */
static int count_body(mq *q, const char *body, int *others) {
    int n = 0;
    mq_delivery d;
    while (mq_next(q, &d, 1000) == MQ_OK) {
        if (d.len == strlen(body) && memcmp(d.body, body, d.len) == 0)
            n++;
        else if (others)
            (*others)++;
        assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    return n;
}

/* A message over max_message_bytes is refused for good without being sent
 * (MQ_REFUSED, with the reason); the rest of its batch is published. */
static void test_publish_too_large(void **state) {
    (void)state;
    char *e = exchange_for('o');
    mq_options o;
    options_for(&o, e);
    o.max_message_bytes = 1000;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    assert_int_equal(mq_max_message(q), 1000);
    char *big = xmalloc(2001);
    memset(big, 'x', 2000);
    big[2000] = '\0';
    mq_message m[3] = {{.routing_key = "s.post.a", .body = "[1]", .len = 3},
                       {.routing_key = "s.post.a", .body = big, .len = 2000},
                       {.routing_key = "s.post.a", .body = "[3]", .len = 3}};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), m, 3), MQ_REFUSED);
    assert_false(m[0].refused);
    assert_true(m[1].refused);
    assert_false(m[2].refused);
    if (!strstr(m[1].why, "larger than --max-message")) fail_msg("reason: %s", m[1].why);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    int others = 0;
    assert_int_equal(count_body(q, "[3]", &others), 1);
    assert_int_equal(others, 1); /* [1], and never the big one */
    /* A dead letter is the broker's already: the limit does not apply. */
    assert_int_equal(mq_publish_dead(q, "s.post.a", big, 2000, MQ_DEAD_UNPARSABLE, "test"), MQ_OK);
    free(big);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* A message over the broker's own max_message_size: the broker closes the
 * channel (406).  It is refused for good, found among the batch by
 * publishing the rest one at a time, and the others are confirmed; the
 * connection works on.  Before, it was published again for ever. */
static void test_broker_refuses_too_large(void **state) {
    (void)state;
    long max = atol(testenv_require("IMGFEED_TEST_BROKER_MAX_MESSAGE"));
    char *e = exchange_for('p');
    mq *q = connect_to(e); /* no max_message_bytes of ours */
    size_t len = (size_t)max + 1;
    char *huge = xmalloc(len);
    memset(huge, ' ', len);
    huge[0] = '[';
    huge[len - 1] = ']';
    mq_message m[4] = {{.routing_key = "s.post.a", .body = "[1]", .len = 3},
                       {.routing_key = "s.post.a", .body = "[2]", .len = 3},
                       {.routing_key = "s.post.a", .body = huge, .len = len},
                       {.routing_key = "s.post.a", .body = "[4]", .len = 3}};
    int64_t t0 = time_mono_ns();
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), m, 4), MQ_REFUSED);
    fprintf(stderr, "refused in %.2f s\n", (double)(time_mono_ns() - t0) / 1e9);
    assert_true(m[2].refused);
    assert_false(m[0].refused || m[1].refused || m[3].refused);
    if (!strstr(m[2].why, "406")) fail_msg("reason: %s", m[2].why);
    free(huge);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[5]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    int others = 0;
    int fours = count_body(q, "[4]", &others);
    assert_true(fours >= 1); /* republished one by one: at least once */
    assert_true(others >= 3); /* [1], [2], [5]; the huge one never */
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* A queue that refuses messages (reject-publish overflow) makes the broker
 * nack them: they are published again until max_attempts. */
static void test_publish_nacked(void **state) {
    (void)state;
    char *e = exchange_for('l');
    char *full = xasprintf("%s.full", e);
    mq_options o;
    options_for(&o, e);
    o.max_attempts = 3;
    o.backoff_initial_ms = 10;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    mq_admin *a = mq_admin_open();
    amqp_table_entry_t args[] = {
        {.key = amqp_cstring_bytes("x-max-length"), .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 0}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("reject-publish")}},
    };
    amqp_table_t table = {.num_entries = 2, .entries = args};
    mq_admin_declare_queue(a, full, &table, e, "full.#");
    mq_message m = {.routing_key = "full.post.a", .body = "[]", .len = 2};
    assert_int_equal(mq_publish(q, e, &m, 1), MQ_GAVE_UP);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.republished, 2);
    assert_int_equal(mq_generation(q), 1); /* a nack does not need a new connection */
    m.routing_key = "other.post.a";
    assert_int_equal(mq_publish(q, e, &m, 1), MQ_OK);
    mq_admin_close(a);
    mq_free(q);
    const char *const extras[] = {"full", NULL};
    mq_admin_delete_topology(e, extras);
    free(full);
    free(e);
}

/* The broker closes the consuming channel (here: an unknown delivery tag);
 * mq_next reconnects and consumes again, the message comes again, and the
 * tag of the old connection is stale. */
static void test_stale_tag_after_reconnect(void **state) {
    (void)state;
    char *e = exchange_for('m');
    mq *q = connect_to(e);
    publish_one(q, mq_target_name(q, MQ_EXCHANGE_RAW), "s.post.a", "[\"once\"]");
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    mq_delivery first, again;
    next_of(q, &first);
    assert_int_equal(first.tag.generation, 1);
    mq_tag bogus = first.tag;
    bogus.value += 1000;
    assert_int_equal(mq_ack(q, bogus, false), MQ_OK); /* sent; the broker closes the channel */
    next_of(q, &again);
    assert_string_equal(again.body, "[\"once\"]");
    assert_true(again.redelivered);
    assert_int_equal(again.tag.generation, 2);
    assert_int_equal(mq_generation(q), 2);
    assert_int_equal(mq_ack(q, first.tag, false), MQ_STALE);
    assert_int_equal(mq_nack(q, first.tag, false, true), MQ_STALE);
    assert_int_equal(mq_reject(q, first.tag, false), MQ_STALE);
    assert_int_equal(mq_ack(q, again.tag, false), MQ_OK);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.stale_acks, 3);
    assert_int_equal(st.connection_losses, 1);
    assert_int_equal(st.connects, 2);
    mq_delivery_release(&first);
    mq_delivery_release(&again);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* A consumed queue deleted under the consumer: the broker cancels the
 * consumer, mq reconnects, declares the queue again and consumes it. */
static void test_queue_deleted_while_consuming(void **state) {
    (void)state;
    char *e = exchange_for('o');
    mq *q = connect_to(e);
    const char *raw = mq_target_name(q, MQ_EXCHANGE_RAW);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    mq_admin *a = mq_admin_open();
    mq_admin_delete_queue(a, mq_target_name(q, MQ_QUEUE_HASHER));
    mq_admin_close(a);
    /* Until the cancel arrives and the queue is back, the message has
     * nowhere to go and comes back. */
    mq_message m = {.routing_key = "s.post.a", .body = "[\"back\"]", .len = 8};
    int rc;
    while ((rc = mq_publish(q, raw, &m, 1)) == MQ_UNROUTABLE)
        time_sleep_ms(20);
    assert_int_equal(rc, MQ_OK);
    mq_delivery d;
    next_of(q, &d);
    assert_string_equal(d.body, "[\"back\"]");
    assert_int_equal(d.tag.generation, 2);
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.connection_losses, 1);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* Misuse is refused, not crashed on. */
static void test_invalid_calls(void **state) {
    (void)state;
    char *e = exchange_for('n');
    mq *q = connect_to(e);
    mq_delivery d;
    assert_int_equal(mq_next(q, &d, 0), MQ_INVALID);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 1), MQ_OK);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_DEAD), 1), MQ_INVALID);
    assert_int_equal(mq_next(q, &d, 0), MQ_TIMEOUT);
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), NULL, 0), MQ_OK);
    mq_message m = {.routing_key = NULL, .body = "[]", .len = 2};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), &m, 1), MQ_INVALID);
    mq_free(q);
    mq_free(NULL);
    mq_delivery_release(NULL);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_url_list),
        cmocka_unit_test(test_url_describe),
        cmocka_unit_test(test_options_init),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test_teardown(test_stop_requested, reset_stop),
        cmocka_unit_test(test_topology_twice),
        cmocka_unit_test(test_topology_conflict),
        cmocka_unit_test(test_publish_consume_order),
        cmocka_unit_test(test_publish_idle),
        cmocka_unit_test(test_ack_multiple),
        cmocka_unit_test(test_nack_requeue),
        cmocka_unit_test(test_reject_dead_letters),
        cmocka_unit_test(test_publish_dead),
        cmocka_unit_test(test_unroutable),
        cmocka_unit_test(test_publish_refused),
        cmocka_unit_test(test_publish_too_large),
        cmocka_unit_test(test_broker_refuses_too_large),
        cmocka_unit_test(test_publish_nacked),
        cmocka_unit_test(test_stale_tag_after_reconnect),
        cmocka_unit_test(test_queue_deleted_while_consuming),
        cmocka_unit_test(test_invalid_calls),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_quorum_delivery_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
