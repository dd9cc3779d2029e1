/* test_alarm.c -- a broker resource alarm mid-run: the publishers wait,
 * say so, do not spin, still stop on SIGTERM, and lose nothing.
 *
 * The test starts its own one-node RabbitMQ (tests/lib/cluster.sh, through
 * cluster.h): the alarm blocks every publisher of the broker, so the
 * suite's shared one must not see it.  The pipeline is chanpipe.h's: a
 * generated board, the real crawler, hasher and archiver.  The alarm is a
 * memory high watermark far below what the node uses
 * (`rabbitmqctl set_vm_memory_high_watermark 0.000001`); RabbitMQ then
 * blocks a connection (connection.blocked) at its next publish.  To have
 * both publishers blocked with work in hand, whatever the timing:
 *   1. the crawler (--once) crawls the board with the archiver running and
 *      no hasher: every post waits in E.hasher;
 *   2. the alarm is raised (and seen in the broker's list of alarms);
 *   3. the hasher starts: it takes the posts, hashes them, and is blocked
 *      at its first publish;
 *   4. posts are added to every thread and the crawler starts again, as a
 *      daemon: it is blocked publishing the new posts.
 * Then, both blocked: each says "blocks publishing" in its log and
 * imgfeed_broker_blocked is 1 in its metrics (--metrics-listen, scrape.h);
 * over a WINDOW_S window neither uses more than MAX_CPU_S of CPU (utime +
 * stime from /proc: a count, not a timing); SIGTERM makes the crawler exit
 * 0 within STOP_WITHIN_S (its bounded drain, sig.h), and started again it is
 * blocked again.  The watermark back at 0.4: every post, old and new, is
 * exactly once in the archive, hashed, nothing in E.dead, both gauges are 0
 * again, the hasher counted blocked seconds, and the restarted crawler
 * published only part of the new posts, never the old ones (it resumed from
 * its saved state).
 *
 * Apart from the CPU window, nothing is timed: every wait ends at a guard
 * deadline only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chanpipe.h"
#include "cluster.h"
#include "pgtest.h"
#include "proc.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define BOARDS 2
#define THREADS 5
#define POSTS 10
#define ADD 3 /* posts added to every thread while the broker blocks */

#define WINDOW_S 10       /* the CPU of the blocked publishers is counted over this long */
#define MAX_CPU_S 1.0     /* a spinning process burns several seconds in the window */
#define STOP_WITHIN_S 5.0 /* SIGTERM while blocked: the drain is 3 s (sig.h) */
#define GUARD_MS 120000

#define BLOCKED "imgfeed_broker_blocked"
#define BLOCKED_LOG "blocks publishing"

static cluster broker;
static chanpipe p;

static int group_setup(void **state) {
    (void)state;
    cluster_start(&broker, 1, NULL);
    setenv("IMGFEED_AMQP_URL", broker.url[0], 1); /* the programs, mq_admin.h */
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    chanpipe_release(&p);
    cluster_stop(&broker);
    pgtest_close();
    return 0;
}

/* Set the watermark, then wait until the broker's alarms say ON. */
static void watermark(const char *value, bool on) {
    cluster_ctl_ok(&broker, 1, "set_vm_memory_high_watermark %s", value);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    for (;;) {
        char *out = NULL;
        if (cluster_ctl(&broker, 1, &out, "eval 'rabbit_alarm:get_alarms().'") != 0)
            fail_msg("cannot read the broker's alarms:\n%s", out);
        bool memory = strstr(out, "memory") != NULL;
        free(out);
        if (memory == on) return;
        if (time_mono_ns() > deadline) fail_msg("the memory alarm is not %s at watermark %s", on ? "on" : "off", value);
        time_sleep_ns(200 * TIME_NS_PER_MS);
    }
}

/* Wait until the gauge imgfeed_broker_blocked of PORT is WANT. */
static void wait_blocked(const proc *pr, int port, double want) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    double v;
    while ((v = scrape_value(port, BLOCKED)) != want) {
        if (time_mono_ns() > deadline) chanpipe_fail(&p, "%s: %s is %g, not %g", pr->name, BLOCKED, v, want);
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
}

/* Items the crawler of PORT published, over the boards. */
static double published(int port) {
    char *text = scrape_get(port);
    double sum = 0;
    for (int b = 0; b < BOARDS; b++) {
        char sample[128];
        double v = 0;
        snprintf(sample, sizeof sample, "imgfeed_items_published_total{site=\"%s\",board=\"b%d\"}", CHANPIPE_SITE, b);
        if (scrape_find(text, sample, &v)) sum += v;
    }
    free(text);
    return sum;
}

static void test_alarm(void **state) {
    (void)state;
    static const char *const once[] = {"--once", NULL};
    static const char *const metrics[] = {"--metrics-listen", "127.0.0.1:0", NULL};
    chanpipe_init(&p, "a", BOARDS, THREADS, POSTS);
    long old_posts = json_object_object_length(p.posts);

    /* 1. Every post crawled, waiting in E.hasher. */
    chanpipe_archiver(&p, NULL);
    chanpipe_crawler(&p, once);
    int status = proc_wait(&p.crawler);
    if (status != 0) chanpipe_fail(&p, "imgfeed-crawler --once exited with %d", status);

    /* 2, 3. The alarm; the hasher blocked at its first publish. */
    watermark("0.000001", true);
    chanpipe_hasher(&p, metrics);
    int hasher_port = scrape_port(&p.hasher);
    proc_wait_log(&p.hasher, BLOCKED_LOG);

    /* 4. New posts; the crawler blocked publishing them. */
    chanpipe_add_posts(&p, ADD);
    long total = json_object_object_length(p.posts);
    assert_int_equal(total, old_posts + BOARDS * THREADS * ADD);
    chanpipe_crawler(&p, metrics);
    int crawler_port = scrape_port(&p.crawler);
    proc_wait_log(&p.crawler, BLOCKED_LOG);
    wait_blocked(&p.hasher, hasher_port, 1);
    wait_blocked(&p.crawler, crawler_port, 1);

    /* Blocked, they wait without spinning. */
    proc *pubs[] = {&p.crawler, &p.hasher};
    double cpu[2];
    for (size_t i = 0; i < 2; i++)
        cpu[i] = proc_cpu_seconds(pubs[i]->pid);
    long rows = chanpipe_rows(&p);
    time_sleep_ns((int64_t)WINDOW_S * 1000 * TIME_NS_PER_MS);
    for (size_t i = 0; i < 2; i++) {
        double used = proc_cpu_seconds(pubs[i]->pid) - cpu[i];
        fprintf(stderr, "%s, blocked: %.2f s of CPU in %d s\n", pubs[i]->name, used, WINDOW_S);
        if (used > MAX_CPU_S)
            chanpipe_fail(&p, "%s used %.2f s of CPU in %d s while blocked", pubs[i]->name, used, WINDOW_S);
    }
    fprintf(stderr, "archive while blocked: %ld rows before the window, %ld after, of %ld\n", rows, chanpipe_rows(&p),
            total);

    /* SIGTERM while blocked; started again, blocked again. */
    double took = proc_stop_timed(&p.crawler);
    fprintf(stderr, "imgfeed-crawler, blocked: exited 0 %.2f s after SIGTERM\n", took);
    if (took > STOP_WITHIN_S) chanpipe_fail(&p, "the blocked crawler took %.1f s to stop", took);
    chanpipe_crawler(&p, metrics);
    crawler_port = scrape_port(&p.crawler);
    proc_wait_log(&p.crawler, BLOCKED_LOG);

    /* Unblocked: everything arrives, once. */
    watermark("0.4", false);
    chanpipe_wait_archived(&p);
    chanpipe_check(&p, "after the alarm");
    wait_blocked(&p.hasher, hasher_port, 0);
    wait_blocked(&p.crawler, crawler_port, 0);
    if (proc_log_count(&p.hasher, "unblocked publishing") < 1 || proc_log_count(&p.crawler, "unblocked publishing") < 1)
        chanpipe_fail(&p, "a publisher did not log that the broker unblocked it");
    double seconds = scrape_value(hasher_port, "imgfeed_broker_blocked_seconds_total");
    if (seconds < WINDOW_S)
        chanpipe_fail(&p, "the hasher counted %.1f s blocked, the window alone was %d s", seconds, WINDOW_S);
    double again = published(crawler_port);
    fprintf(stderr, "the restarted crawler published %.0f of the %ld new posts; the hasher was blocked %.1f s\n", again,
            total - old_posts, seconds);
    if (again < 1 || again > total - old_posts)
        chanpipe_fail(&p, "the restarted crawler published %.0f items, of %ld new posts", again, total - old_posts);
    proc_stop(&p.crawler);
    proc_stop(&p.hasher);
    proc_stop(&p.archiver);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alarm),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
