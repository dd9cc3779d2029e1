/* mq_admin.h -- broker housekeeping for the AMQP tests, behind mq's back.
 *
 * The tests check mq against what the broker really holds, and they need to
 * do what imgfeed itself never does: delete queues and exchanges, count the
 * messages of a queue, declare odd queues.  This talks to the broker of
 * IMGFEED_AMQP_URL with plain librabbitmq on its own connection; every
 * failure fails the test (cmocka), except deleting what is already gone.
 */
#ifndef IMGFEED_TEST_MQ_ADMIN_H
#define IMGFEED_TEST_MQ_ADMIN_H

#include <amqp.h>

#include "mq.h"

typedef struct mq_admin mq_admin;

/* An mq connection (imgfeed's own, common/mq.h) to the test broker for
 * exchange E, as the daemon tests use to publish and consume: 5 s
 * heartbeats, quick retries (50 to 500 ms), giving up after 20 failed
 * connects.  NAME shows in rabbitmqctl list_connections.  Fails the test when
 * it cannot connect; the caller mq_frees it. */
mq *mq_admin_connect(const char *exchange, const char *name);

mq_admin *mq_admin_open(void);
void mq_admin_close(mq_admin *a);

/* Declare a durable queue with arguments (NULL: none) bound to exchange
 * with key. */
void mq_admin_declare_queue(mq_admin *a, const char *queue, const amqp_table_t *args, const char *exchange,
                            const char *key);
/* Messages ready in queue, or -1 when there is no such queue. */
long mq_admin_count(mq_admin *a, const char *queue);
void mq_admin_delete_queue(mq_admin *a, const char *queue);
void mq_admin_delete_exchange(mq_admin *a, const char *exchange);
/* Delete the topology of exchange name E (E.raw, E, E.dead and the queues
 * E.hasher, E.archiver, E.dead) and the queues E.<extra> named in extras
 * (NULL-terminated, may be NULL). */
void mq_admin_delete_topology(const char *exchange, const char *const *extras);

#endif
