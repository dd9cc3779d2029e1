/* test_mq_restart.c -- common/mq.c survives the broker.
 *
 * A restart of RabbitMQ while one mq object publishes numbered messages in
 * small batches and another consumes them in a thread: every number must
 * arrive at least once, and both objects must have come through a new
 * connection.  Then a broker frozen with SIGSTOP: the client must notice the
 * silence by its heartbeats, and reconnect once the broker runs again.
 *
 * These tests stop the broker under everyone's feet, so ctest runs them
 * alone (RUN_SERIAL).  Nothing is timed: the publisher simply keeps going
 * while the restart runs, and the only wait with a bound is a watchdog that
 * fails the test when the consumer makes no progress for minutes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "mq.h"
#include "mq_admin.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define BATCH 10
#define BEFORE_RESTART 1000 /* numbers published before the restart starts */
#define TOTAL_MIN 3000      /* at least this many numbers in all */
#define NUMBERS_MAX 200000  /* bound of the numbers published while the broker restarts */
#define WATCHDOG_MS (180 * 1000)

static void options_for(mq_options *o, const char *exchange, const char *name) {
    memset(o, 0, sizeof *o);
    o->url = testenv_require("IMGFEED_AMQP_URL");
    o->exchange = exchange;
    o->heartbeat_ms = 2000;
    o->connection_name = name;
    o->max_attempts = 0; /* retry for as long as the broker is away */
    o->backoff_initial_ms = 100;
    o->backoff_max_ms = 1000;
}

/* --- the consumer thread (no cmocka calls: it only records) --- */

typedef struct consumer {
    const char *exchange;
    pthread_mutex_t lock;
    unsigned char *seen; /* NUMBERS_MAX flags */
    long target;         /* all of 0..target-1 must be seen; -1 while unknown */
    long distinct, total, redelivered, stale;
    bool abort;
    int error;           /* a status that ended the thread early */
    uint64_t generation; /* of its connection at the end */
} consumer;

static void *consumer_main(void *arg) {
    consumer *c = arg;
    mq_options o;
    options_for(&o, c->exchange, "test_mq_restart consumer");
    mq *q = NULL;
    int rc = mq_new(&o, &q);
    if (rc == MQ_OK) rc = mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 50);
    while (rc == MQ_OK) {
        pthread_mutex_lock(&c->lock);
        bool done = c->abort || (c->target >= 0 && c->distinct >= c->target);
        pthread_mutex_unlock(&c->lock);
        if (done) break;
        mq_delivery d;
        rc = mq_next(q, &d, 200);
        if (rc == MQ_TIMEOUT) {
            rc = MQ_OK;
            continue;
        }
        if (rc != MQ_OK) break;
        long n = -1;
        if (sscanf(d.body, "[{\"_id\":\"%ld\"", &n) != 1 || n < 0 || n >= NUMBERS_MAX) {
            rc = MQ_INVALID;
            mq_delivery_release(&d);
            break;
        }
        pthread_mutex_lock(&c->lock);
        c->total++;
        c->redelivered += d.redelivered;
        if (!c->seen[n]) {
            c->seen[n] = 1;
            c->distinct++;
        }
        pthread_mutex_unlock(&c->lock);
        int ack = mq_ack(q, d.tag, false);
        mq_delivery_release(&d);
        if (ack == MQ_STALE) {
            pthread_mutex_lock(&c->lock);
            c->stale++;
            pthread_mutex_unlock(&c->lock);
        } else if (ack != MQ_OK) {
            rc = ack;
        }
    }
    pthread_mutex_lock(&c->lock);
    c->error = rc;
    c->generation = q ? mq_generation(q) : 0;
    pthread_mutex_unlock(&c->lock);
    mq_free(q);
    return NULL;
}

/* --- the restart thread --- */

typedef struct restarter {
    atomic_int done;
    int status;
} restarter;

static void *restarter_main(void *arg) {
    restarter *r = arg;
    r->status = testenv_servers("rabbit-restart");
    atomic_store(&r->done, 1);
    return NULL;
}

/* Publish the next BATCH numbers, spread over three routing keys. */
static void publish_batch(mq *q, long *next) {
    static const char *const keys[] = {"site1.post.b", "site2.thread.b", "site3.image.c"};
    mq_message msgs[BATCH];
    char *bodies[BATCH];
    for (int i = 0; i < BATCH; i++) {
        long n = *next + i;
        bodies[i] = xasprintf("[{\"_id\":\"%ld\",\"n\":%ld}]", n, n);
        msgs[i] = (mq_message){.routing_key = keys[n % 3], .body = bodies[i], .len = strlen(bodies[i])};
    }
    int rc = mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), msgs, BATCH);
    for (int i = 0; i < BATCH; i++)
        free(bodies[i]);
    if (rc != MQ_OK) fail_msg("publishing numbers %ld..%ld: %s", *next, *next + BATCH - 1, mq_status_text(rc));
    *next += BATCH;
}

static void test_restart_while_publishing(void **state) {
    (void)state;
    testenv_require("IMGFEED_TEST_SERVERS"); /* checked here: the threads must not fail */
    testenv_require("IMGFEED_TEST_RUNDIR");
    char *e = xasprintf("r%d", (int)getpid());
    mq_options o;
    options_for(&o, e, "test_mq_restart publisher");
    mq *p = NULL;
    assert_int_equal(mq_new(&o, &p), MQ_OK);

    consumer c = {.exchange = e, .seen = xcalloc(NUMBERS_MAX, 1), .target = -1};
    pthread_mutex_init(&c.lock, NULL);
    pthread_t consumer_thread;
    assert_int_equal(pthread_create(&consumer_thread, NULL, consumer_main, &c), 0);

    long next = 0;
    while (next < BEFORE_RESTART)
        publish_batch(p, &next);

    /* Keep publishing while the broker goes down and comes back: a batch in
     * flight when it goes loses its connection and is published again, and
     * the calls made meanwhile find it dead and wait inside for its return. */
    restarter r = {.status = -1};
    atomic_init(&r.done, 0);
    pthread_t restart_thread;
    assert_int_equal(pthread_create(&restart_thread, NULL, restarter_main, &r), 0);
    while (!atomic_load(&r.done) && next + BATCH <= NUMBERS_MAX)
        publish_batch(p, &next);
    pthread_join(restart_thread, NULL);
    assert_int_equal(r.status, 0);
    do
        publish_batch(p, &next);
    while (next < TOTAL_MIN);

    mq_stats ps;
    mq_get_stats(p, &ps);
    log_info("publisher: %ld numbers, %" PRIu64 " connects, %" PRIu64 " losses, %" PRIu64 " republished", next,
             ps.connects, ps.connection_losses, ps.republished);
    assert_true(ps.connection_losses >= 1);
    assert_true(ps.connects >= 2);

    pthread_mutex_lock(&c.lock);
    c.target = next;
    pthread_mutex_unlock(&c.lock);
    /* Wait for the consumer; give up only if it stops making progress. */
    long last = -1;
    int64_t last_change = time_mono_ns();
    for (;;) {
        pthread_mutex_lock(&c.lock);
        long distinct = c.distinct;
        bool finished = distinct >= next || c.error != MQ_OK;
        pthread_mutex_unlock(&c.lock);
        if (finished) break;
        if (distinct != last) {
            last = distinct;
            last_change = time_mono_ns();
        } else if (time_mono_ns() - last_change > WATCHDOG_MS * TIME_NS_PER_MS) {
            pthread_mutex_lock(&c.lock);
            c.abort = true;
            pthread_mutex_unlock(&c.lock);
            break;
        }
        time_sleep_ms(100);
    }
    pthread_join(consumer_thread, NULL);
    log_info("consumer: %ld distinct of %ld, %ld deliveries, %ld redelivered, %ld stale acks, generation %" PRIu64,
             c.distinct, next, c.total, c.redelivered, c.stale, c.generation);
    if (c.distinct < next) {
        long missing = 0;
        while (missing < next && c.seen[missing])
            missing++;
        fail_msg("%ld of %ld numbers never arrived, the first is %ld (consumer status: %s)", next - c.distinct, next,
                 missing, mq_status_text(c.error));
    }
    assert_int_equal(c.error, MQ_OK);
    assert_true(c.generation >= 2); /* the consumer went through a reconnect */

    pthread_mutex_destroy(&c.lock);
    free(c.seen);
    mq_free(p);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

/* --- a frozen broker --- */

static pid_t frozen_pid;

static void thaw(void) {
    if (frozen_pid > 0) kill(frozen_pid, SIGCONT);
    frozen_pid = 0;
}

static int thaw_teardown(void **state) {
    (void)state;
    thaw();
    return 0;
}

static pid_t broker_pid(void) {
    char *path = xasprintf("%s/rabbit/pid", testenv_require("IMGFEED_TEST_RUNDIR"));
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1) fail_msg("no pid in %s", path);
    fclose(f);
    free(path);
    return (pid_t)pid;
}

/* With the broker stopped by SIGSTOP, the socket stays open and silent:
 * only the heartbeats can tell the connection is dead. */
static void test_frozen_broker_noticed_by_heartbeat(void **state) {
    (void)state;
    char *e = xasprintf("h%d", (int)getpid());
    mq_options o;
    options_for(&o, e, "test_mq_restart heartbeat");
    o.heartbeat_ms = 1000;
    mq *q = NULL;
    assert_int_equal(mq_new(&o, &q), MQ_OK);
    assert_int_equal(mq_tick(q), MQ_OK);

    pid_t pid = broker_pid();
    frozen_pid = pid;
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int rc;
    while ((rc = mq_tick(q)) == MQ_OK)
        time_sleep_ms(100);
    thaw();
    assert_int_equal(rc, MQ_DISCONNECTED);
    mq_stats st;
    mq_get_stats(q, &st);
    assert_int_equal(st.heartbeat_timeouts, 1);
    assert_int_equal(st.connection_losses, 1);

    /* And once it runs again, the next call reconnects by itself. */
    mq_message m = {.routing_key = "site.post.a", .body = "[\"after\"]", .len = 9};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), &m, 1), MQ_OK);
    assert_int_equal(mq_generation(q), 2);
    assert_int_equal(mq_consume(q, mq_target_name(q, MQ_QUEUE_HASHER), 10), MQ_OK);
    mq_delivery d;
    assert_int_equal(mq_next(q, &d, 60000), MQ_OK);
    assert_string_equal(d.body, "[\"after\"]");
    assert_int_equal(mq_ack(q, d.tag, false), MQ_OK);
    mq_delivery_release(&d);
    mq_free(q);
    mq_admin_delete_topology(e, NULL);
    free(e);
}

int main(void) {
    atexit(thaw); /* never leave the broker frozen */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_while_publishing),
        cmocka_unit_test_teardown(test_frozen_broker_noticed_by_heartbeat, thaw_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
