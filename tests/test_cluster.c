/* test_cluster.c -- the whole pipeline on a 3-node RabbitMQ cluster with
 * quorum queues, two of its nodes killed (kill -9) one after the other while
 * the pipeline runs.
 *
 * The test starts its own cluster (tests/lib/cluster.sh through cluster.h)
 * and runs the crawler, the hasher and the archiver (chanpipe.h: a generated
 * board of 3 x 10 threads of 10 posts) with --amqp-url = the three nodes'
 * URLs and --queue-type quorum.  "Mid-run" is made certain, not timed: the
 * fixture holds requests until the test releases them (delay faults,
 * cleared with release=1):
 *   1. a thread of b1 (the crawler stops in the middle of the crawl, b2 not
 *      published yet) and a picture of b0 (the hasher holds an unacked
 *      delivery); once both are held, the node holding most of the
 *      programs' connections (rabbitmqctl list_connections port) is
 *      killed, then both are released: the crawl goes on with two nodes.  A
 *      program that was on that node must log a failover to another one
 *      ("failed over from").  The node is started again and the test waits
 *      until every quorum queue has all its members online (cluster.sh
 *      wait-synced).
 *   2. the same with a thread of b2 and a picture of the thread held in 1
 *      (so that both are asked for only after the first release), killing
 *      the busiest node of the two others.
 * The crawler must end by itself (exit 0); then every post must be in the
 * archive exactly once with its file hashed, E.dead empty (chanpipe_check,
 * whose broker connection goes to node 1 through IMGFEED_AMQP_URL), and
 * E.hasher, E.archiver and E.dead quorum queues (rabbitmqctl list_queues).
 *
 * Nothing is timed: every wait is a bounded poll that only keeps a broken
 * pipeline from hanging the suite.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "chanpipe.h"
#include "cluster.h"
#include "pgtest.h"
#include "proc.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 120000 /* longest any single wait may take before the test fails */
#define BOARDS 3
#define THREADS 10
#define POSTS 10
#define HELD_THREAD 4    /* index (of chan/info's list) of the thread held on b1 and on b2 */
#define HOLD_SECONDS 600 /* a held request waits for its release, never for this */

static cluster cl;
static chanpipe cp;
static const char *common_args[5];
static int64_t started; /* when setup began */

/* A line of progress on stderr, with the seconds since setup began. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
    fprintf(stderr, "[%5.1f s] ", (double)(time_mono_ns() - started) / 1e9);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int setup(void **state) {
    (void)state;
    started = time_mono_ns();
    cluster_start(&cl, 3, NULL);
    note("3-node cluster up");
    /* chanpipe_check counts E.dead through mq_admin, on IMGFEED_AMQP_URL. */
    setenv("IMGFEED_AMQP_URL", cl.url[0], 1);
    chanpipe_init(&cp, "cl", BOARDS, THREADS, POSTS);
    note("fixture up, %d posts", json_object_object_length(cp.posts));
    common_args[0] = "--amqp-url";
    common_args[1] = cl.urls;
    common_args[2] = "--queue-type";
    common_args[3] = "quorum";
    common_args[4] = NULL;
    cp.common_args = common_args;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc *all[] = {&cp.crawler, &cp.hasher, &cp.archiver};
    for (size_t i = 0; i < 3; i++)
        proc_kill(all[i]);
    /* The cluster goes with its queues; a node may be down after a failure,
     * so chanpipe_release must not try to delete E's topology. */
    cluster_stop(&cl);
    if (cp.exchange[0]) {
        char *prefix = xasprintf("%s_", cp.exchange);
        pgtest_drop_tables(prefix);
        free(prefix);
        cp.exchange[0] = '\0';
    }
    chanpipe_release(&cp);
    pgtest_close();
    note("torn down");
    return 0;
}

/* --- holding requests --- */

static void hold(const char *path) {
    json_object_put(fixture_control(&cp.fx, "chan/fault?site=%s&path=%s&delay=%d", CHANPIPE_SITE, path, HOLD_SECONDS));
}

static void release(const char *path) {
    json_object_put(fixture_control(&cp.fx, "chan/fault?site=%s&clear=1&release=1&path=%s", CHANPIPE_SITE, path));
}

/* Requests that fault PATH has held so far. */
static long hits(const char *path) {
    json_object *info = fixture_control(&cp.fx, "chan/info?site=%s", CHANPIPE_SITE), *faults, *v;
    long n = 0;
    if (json_object_object_get_ex(info, "faults", &faults))
        for (size_t i = 0; i < json_object_array_length(faults); i++) {
            json_object *f = json_object_array_get_idx(faults, i);
            if (json_object_object_get_ex(f, "path", &v) && strcmp(json_object_get_string(v), path) == 0 &&
                json_object_object_get_ex(f, "hits", &v))
                n = json_object_get_int64(v);
        }
    json_object_put(info);
    return n;
}

static void wait_held(const char *path, const char *who) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (hits(path) < 1) {
        if (proc_exited(&cp.crawler)) chanpipe_fail(&cp, "the crawler exited before %s asked for %s", who, path);
        if (time_mono_ns() > deadline) chanpipe_fail(&cp, "%s never asked for %s", who, path);
        time_sleep_ns(20 * TIME_NS_PER_MS);
    }
}

/* The number of thread N (chan/info's order) of board B. */
static int64_t thread_no(int b, int n) {
    json_object *info = fixture_control(&cp.fx, "chan/info?site=%s&board=b%d", CHANPIPE_SITE, b), *threads, *no;
    if (!json_object_object_get_ex(info, "threads", &threads) || (size_t)n >= json_object_array_length(threads) ||
        !json_object_object_get_ex(json_object_array_get_idx(threads, (size_t)n), "no", &no))
        fail_msg("board b%d has no thread %d", b, n);
    int64_t out = json_object_get_int64(no);
    json_object_put(info);
    return out;
}

/* The site's path of thread N of board B; the caller frees it. */
static char *thread_path(int b, int n) {
    return xasprintf("/%s/b%d/thread/%" PRId64 ".json", CHANPIPE_SITE, b, thread_no(b, n));
}

/* The path of the first file of thread N of board B; the caller frees it. */
static char *file_path(int b, int n) {
    int64_t no = thread_no(b, n);
    json_object *info = fixture_control(&cp.fx, "chan/info?site=%s&board=b%d&no=%" PRId64, CHANPIPE_SITE, b, no),
                *files, *path;
    if (!json_object_object_get_ex(info, "files", &files) || json_object_array_length(files) == 0 ||
        !json_object_object_get_ex(json_object_array_get_idx(files, 0), "path", &path))
        fail_msg("thread %" PRId64 " of b%d has no file", no, b);
    char *out = xstrdup(json_object_get_string(path));
    json_object_put(info);
    return out;
}

/* --- the cluster --- */

/* The node (1-based) that holds most of the pipeline's connections, other
 * than node EXCEPT (0: none).  Logs which program is on which node. */
static int busiest_node(int except) {
    char *out = NULL;
    if (cluster_ctl(&cl, 1, &out, "list_connections --no-table-headers port client_properties") != 0)
        fail_msg("rabbitmqctl list_connections failed:\n%s", out);
    static const char *const programs[] = {"crawler", "hasher", "archiver"};
    int count[CLUSTER_MAX_NODES + 1] = {0}, best = 0;
    char on[CLUSTER_MAX_NODES + 1][64] = {{0}};
    for (const char *line = out; *line; line += strcspn(line, "\n"), line += *line == '\n') {
        size_t len = strcspn(line, "\n");
        for (int i = 1; i <= cl.nodes; i++) {
            const char *port = strrchr(cl.url[i - 1], ':') + 1;
            size_t plen = strlen(port);
            if (len <= plen || strncmp(line, port, plen) != 0 || line[plen] != '\t') continue;
            count[i]++;
            for (size_t k = 0; k < 3; k++) {
                const char *hit = strstr(line, programs[k]);
                size_t used = strlen(on[i]);
                if (hit && hit < line + len) snprintf(on[i] + used, sizeof on[i] - used, " %s", programs[k]);
            }
        }
    }
    for (int i = 1; i <= cl.nodes; i++)
        if (i != except && (best == 0 || count[i] > count[best])) best = i;
    note("connections: node 1 %d (%s), node 2 %d (%s), node 3 %d (%s); killing node %d", count[1], on[1] + 1, count[2],
         on[2] + 1, count[3], on[3] + 1, best);
    if (count[best] == 0) fail_msg("no connection of the pipeline on any node but %d:\n%s", except, out);
    free(out);
    return best;
}

/* Lines "failed over from" in the programs' logs: in *EACH (crawler,
 * hasher, archiver) when not NULL, and together. */
static int failovers(int each[3]) {
    proc *all[] = {&cp.crawler, &cp.hasher, &cp.archiver};
    int n = 0;
    for (size_t i = 0; i < 3; i++) {
        int k = proc_log_count(all[i], "failed over from");
        if (each) each[i] = k;
        n += k;
    }
    return n;
}

/* Wait until a program logs a failover it had not logged in BEFORE. */
static void wait_failover(const int before[3], const char *what) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    int now[3];
    while (failovers(now) <= before[0] + before[1] + before[2]) {
        if (time_mono_ns() > deadline) chanpipe_fail(&cp, "%s: no program logged a failover", what);
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
    note("%s: failovers logged by the crawler %d, the hasher %d, the archiver %d", what, now[0] - before[0],
         now[1] - before[1], now[2] - before[2]);
}

/* Once the crawler waits for THREAD and the hasher for FILE: kill the
 * busiest node other than EXCEPT, release both requests, wait for a
 * failover.  Returns the node killed. */
static int kill_mid_run(const char *thread, const char *file, int except, const char *what) {
    wait_held(thread, "the crawler");
    wait_held(file, "the hasher");
    int before[3], node = busiest_node(except);
    failovers(before);
    long rows = chanpipe_rows(&cp);
    cluster_kill(&cl, node);
    release(thread);
    release(file);
    note("%s: node %d killed with %ld of %d rows archived", what, node, rows, json_object_object_length(cp.posts));
    wait_failover(before, what);
    return node;
}

/* E.hasher, E.archiver and E.dead are quorum queues. */
static void check_quorum(void) {
    char *out = NULL;
    if (cluster_ctl(&cl, 1, &out, "list_queues --no-table-headers name type") != 0)
        fail_msg("rabbitmqctl list_queues failed:\n%s", out);
    static const char *const queues[] = {"hasher", "archiver", "dead"};
    for (size_t i = 0; i < 3; i++) {
        char *want = xasprintf("%s.%s\tquorum\n", cp.exchange, queues[i]);
        if (!strstr(out, want)) fail_msg("%s.%s is not a quorum queue:\n%s", cp.exchange, queues[i], out);
        free(want);
    }
    free(out);
}

static void test_cluster_failover(void **state) {
    (void)state;
    char *thread1 = thread_path(1, HELD_THREAD), *file1 = file_path(0, 0);
    char *thread2 = thread_path(2, HELD_THREAD), *file2 = file_path(1, HELD_THREAD);
    hold(thread1);
    hold(file1);
    hold(thread2);
    hold(file2);
    /* A held request must outlast a node's restart: long timeouts. */
    static const char *const hasher_args[] = {"--download-timeout", "300s", NULL};
    static const char *const crawler_args[] = {"--once", "--request-timeout", "300s", NULL};
    chanpipe_archiver(&cp, NULL);
    chanpipe_hasher(&cp, hasher_args);
    chanpipe_crawler(&cp, crawler_args);

    int first = kill_mid_run(thread1, file1, 0, "first kill");
    cluster_start_node(&cl, first);
    note("node %d started again", first);
    cluster_wait_synced(&cl, GUARD_MS / 1000);
    note("in sync");
    int second = kill_mid_run(thread2, file2, first, "second kill");
    int status = proc_wait(&cp.crawler);
    if (status != 0) chanpipe_fail(&cp, "imgfeed-crawler --once exited with %d", status);
    note("the crawler is done");
    cluster_start_node(&cl, second);
    note("node %d started again", second);
    chanpipe_wait_archived(&cp);
    note("every post archived");
    cluster_wait_synced(&cl, GUARD_MS / 1000);
    note("in sync");
    chanpipe_check(&cp, "two nodes killed");
    check_quorum();
    proc_stop(&cp.hasher);
    proc_stop(&cp.archiver);
    note("checked; the hasher and the archiver stopped");
    free(thread1);
    free(file1);
    free(thread2);
    free(file2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_failover, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
