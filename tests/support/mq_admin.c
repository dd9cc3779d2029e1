/* mq_admin.c -- broker housekeeping for the AMQP tests (see mq_admin.h).
 *
 * A failed operation makes the broker close the channel; rather than answer
 * and reopen it, each operation opens a fresh channel number, so a failure
 * (deleting what is gone, counting a missing queue) costs nothing.
 */
#include "mq_admin.h"

#include <amqp_tcp_socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mq.h"
#include "testenv.h"
#include "xalloc.h"

struct mq_admin {
    amqp_connection_state_t conn;
    amqp_channel_t channel;
};

mq_admin *mq_admin_open(void) {
    mq_url url;
    assert_int_equal(mq_url_parse(testenv_require("IMGFEED_AMQP_URL"), &url), MQ_OK);
    mq_admin *a = xcalloc(1, sizeof *a);
    a->conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(a->conn);
    assert_non_null(sock);
    assert_int_equal(amqp_socket_open(sock, url.host, url.port), AMQP_STATUS_OK);
    amqp_rpc_reply_t r = amqp_login(a->conn, url.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, url.user, url.password);
    assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
    mq_url_release(&url);
    return a;
}

void mq_admin_close(mq_admin *a) {
    if (!a) return;
    amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(a->conn);
    free(a);
}

/* A fresh channel for the next operation. */
static amqp_channel_t mq_admin_channel(mq_admin *a) {
    a->channel++;
    amqp_channel_open(a->conn, a->channel);
    assert_int_equal(amqp_get_rpc_reply(a->conn).reply_type, AMQP_RESPONSE_NORMAL);
    return a->channel;
}

static bool mq_admin_ok(mq_admin *a) {
    amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return true;
    /* Only the channel may be closed; a closed connection is a failure. */
    assert_int_equal(r.reply_type, AMQP_RESPONSE_SERVER_EXCEPTION);
    assert_int_equal(r.reply.id, AMQP_CHANNEL_CLOSE_METHOD);
    amqp_channel_close_ok_t ok = {0};
    amqp_send_method(a->conn, a->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    return false;
}

void mq_admin_declare_queue(mq_admin *a, const char *queue, const amqp_table_t *args, const char *exchange,
                            const char *key) {
    amqp_channel_t ch = mq_admin_channel(a);
    amqp_queue_declare(a->conn, ch, amqp_cstring_bytes(queue), 0, 1, 0, 0, args ? *args : amqp_empty_table);
    assert_true(mq_admin_ok(a));
    amqp_queue_bind(a->conn, ch, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
                    amqp_empty_table);
    assert_true(mq_admin_ok(a));
}

long mq_admin_count(mq_admin *a, const char *queue) {
    amqp_channel_t ch = mq_admin_channel(a);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(a->conn, ch, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    if (!mq_admin_ok(a)) return -1;
    return (long)ok->message_count;
}

void mq_admin_delete_queue(mq_admin *a, const char *queue) {
    amqp_channel_t ch = mq_admin_channel(a);
    amqp_queue_delete(a->conn, ch, amqp_cstring_bytes(queue), 0, 0);
    mq_admin_ok(a);
}

void mq_admin_delete_exchange(mq_admin *a, const char *exchange) {
    amqp_channel_t ch = mq_admin_channel(a);
    amqp_exchange_delete(a->conn, ch, amqp_cstring_bytes(exchange), 0);
    mq_admin_ok(a);
}

void mq_admin_delete_topology(const char *exchange, const char *const *extras) {
    mq_admin *a = mq_admin_open();
    char name[256];
    static const char *const queues[] = {"hasher", "archiver", "dead"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s.%s", exchange, queues[i]);
        mq_admin_delete_queue(a, name);
    }
    for (size_t i = 0; extras && extras[i]; i++) {
        snprintf(name, sizeof name, "%s.%s", exchange, extras[i]);
        mq_admin_delete_queue(a, name);
    }
    static const char *const exchanges[] = {".raw", "", ".dead"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s%s", exchange, exchanges[i]);
        mq_admin_delete_exchange(a, name);
    }
    mq_admin_close(a);
}

mq *mq_admin_connect(const char *exchange, const char *name) {
    mq_options o;
    memset(&o, 0, sizeof o);
    o.url = testenv_require("IMGFEED_AMQP_URL");
    o.exchange = exchange;
    o.heartbeat_ms = 5000;
    o.connection_name = name;
    o.max_attempts = 20;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 500;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    return q;
}
