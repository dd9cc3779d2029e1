/* test_netns.c -- the pipeline across two "machines" in network namespaces,
 * and a worker's link cut for 30 s under it.
 *
 * deploy/netns.sh lays out a main namespace (RabbitMQ, PostgreSQL, the
 * archiver, the fixture board on 10.213.0.1) and two workers w1 and w2, each
 * joined to main by its own veth link.  The program runs twice: the outer
 * process (as ctest starts it) brings the namespaces up, runs itself again
 * inside main (`netns.sh run DIR main`, which exports the addresses of
 * DIR/env), and always brings them down after, whatever the inner run did.
 * The inner run is the cmocka test: the archiver runs in main, the crawler
 * and a hasher in w1, another hasher in w2, each started through
 * `netns.sh run DIR wI` (tests/support/chanpipe.h, with a launcher), with 2 s
 * AMQP heartbeats so that a dead link shows within seconds.
 *
 *   1. The generated board is crawled, hashed and archived across the links.
 *   2. Posts are added; every picture download is held by the fixture (a
 *      delay fault) until w1's hasher is seen waiting for one; then w1's link
 *      goes down (both ends) with that download in flight, for 30 s.  w1's
 *      hasher must log the lost connection by itself (the heartbeats).
 *   3. The link comes back; more posts are added, which only w1's crawler
 *      can publish.  w1's crawler must log the lost connection (it sees it
 *      when it publishes), w1's crawler and hasher a new connection, and
 *      they never exited: nobody restarts them.  The picture download w1's
 *      hasher held at the cut was downloaded by w2's hasher too: the broker
 *      gave the unacknowledged message to the other consumer.
 * Then every post, old and new, is in the archive exactly once, each file
 * hashed, and E.dead is empty (chanpipe_check); every program stops cleanly
 * on SIGTERM.
 *
 * Needs root (namespaces, veth links): without it the test fails, saying so.
 * Nothing is timed but the 30 s of the cut, which the issue asks for; every
 * wait ends at a guard deadline that only keeps a broken pipeline from
 * hanging the suite, and then shows the programs' logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "chanpipe.h"
#include "fixture.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 120000 /* longest any single wait may take before the test fails */
#define CUT_SECONDS 30
#define BOARDS 2
#define THREADS 6
#define POSTS 10
#define HOLD_SECONDS 10 /* how long the fixture holds each picture download in phase 2 */
#define MEDIA "/" CHANPIPE_SITE "/media"

static chanpipe c;
static proc hasher2; /* the hasher in w2; c.hasher is w1's */
static const char *script, *dir;
static const char *launch_w1[6], *launch_w2[6];

/* --- the outer run: the namespaces around the inner one --- */

/* Run ARGV (NULL-terminated) and wait; its exit status, or 128 + signal. */
static int run(const char *const *argv) {
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "test_netns: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int outer(void) {
    if (geteuid() != 0) {
        fprintf(stderr, "test_netns: needs root (it creates network namespaces and veth links with ip netns); "
                        "run it as root, as CI does\n");
        return 1;
    }
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "test_netns: IMGFEED_SOURCE_DIR is not set: run it through ctest\n");
        return 1;
    }
    char *netns = xasprintf("%s/deploy/netns.sh", src), *where = xasprintf("/tmp/imgfeed-netns.%d", (int)getpid()),
         *prefix = xasprintf("imgfeed-t%d", (int)getpid()), self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "test_netns: cannot read /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[len] = '\0';
    const char *reap[] = {"/bin/bash", netns, "reap", NULL};
    const char *up[] = {"/bin/bash", netns, "up", where, "--prefix", prefix, "--workers", "2", NULL};
    const char *inner[] = {"/bin/bash", netns, "run", where, "main", self, NULL};
    const char *down[] = {"/bin/bash", netns, "down", where, NULL};
    run(reap); /* namespaces left by a run that was killed */
    int status = run(up);
    if (status != 0)
        fprintf(stderr, "test_netns: netns.sh up failed (%d)\n", status);
    else
        status = run(inner);
    if (run(down) != 0)
        fprintf(stderr, "test_netns: netns.sh down %s failed\n", where);
    else
        testenv_rmtree(where);
    free(netns);
    free(where);
    free(prefix);
    return status;
}

/* --- the inner run, in main --- */

static void fail_logs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_logs(const char *fmt, ...) {
    proc *const all[] = {&c.crawler, &c.hasher, &hasher2, &c.archiver};
    va_list ap;
    va_start(ap, fmt);
    proc_vfail_logs(all, sizeof all / sizeof all[0], fmt, ap);
    va_end(ap);
}

static int setup(void **state) {
    (void)state;
    script = testenv_require("IMGFEED_NETNS_SCRIPT");
    dir = testenv_require("IMGFEED_NETNS_DIR");
    const char *w1[] = {"/bin/bash", script, "run", dir, "w1", NULL},
               *w2[] = {"/bin/bash", script, "run", dir, "w2", NULL};
    memcpy(launch_w1, w1, sizeof w1);
    memcpy(launch_w2, w2, sizeof w2);
    fixture_options fo = {.host = testenv_require("IMGFEED_NETNS_MAIN")};
    chanpipe_init_with(&c, &fo, "n", BOARDS, THREADS, POSTS);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill(&hasher2);
    proc_release(&hasher2);
    chanpipe_release(&c);
    return 0;
}

/* The path of a picture download of a client at address ADDR that the
 * fixture logged: held under the delay fault when HELD, else of exactly
 * PATH.  NULL when there is none; the caller frees it. */
static char *download_of(const char *addr, bool held, const char *path) {
    json_object *log = fixture_log(&c.fx, MEDIA);
    size_t alen = strlen(addr);
    char *found = NULL;
    for (size_t i = 0; !found && i < json_object_array_length(log); i++) {
        json_object *e = json_object_array_get_idx(log, i), *conn, *route;
        if (!json_object_object_get_ex(e, "conn", &conn) || !json_object_object_get_ex(e, "route", &route)) continue;
        const char *from = json_object_get_string(conn), *what = json_object_get_string(route);
        if (strncmp(from, addr, alen) != 0 || from[alen] != ':') continue;
        if (held ? json_object_object_get_ex(e, "fault", NULL) : strcmp(what, path) == 0) found = xstrdup(what);
    }
    json_object_put(log);
    return found;
}

/* Wait until P's log holds at least N lines with TEXT. */
static void wait_log_count(const proc *p, const char *text, int n) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (proc_log_count(p, text) < n) {
        if (proc_exited(p)) fail_logs("%s exited while waiting for \"%s\" in its log", p->name, text);
        if (time_mono_ns() > deadline) fail_logs("%s never logged \"%s\" %d times", p->name, text, n);
        time_sleep_ns(100 * TIME_NS_PER_MS);
    }
}

static void link_w1(const char *how) {
    const char *argv[] = {"/bin/bash", script, "link", dir, "w1", how, NULL};
    if (run(argv) != 0) fail_logs("netns.sh link w1 %s failed", how);
}

static void test_netns_link_cut(void **state) {
    (void)state;
    static const char *const heartbeat[] = {"--amqp-heartbeat", "2s", NULL};
    static const char *const hasher_args[] = {"--allow-net", "10.213.0.0/16", NULL};
    /* A request that the cut strands ends after 5 s, not chanpipe's 150. */
    static const char *const crawler_args[] = {"--poll-interval", "1s", "--request-timeout", "5s", NULL};
    const char *w1 = testenv_require("IMGFEED_NETNS_W1"), *w2 = testenv_require("IMGFEED_NETNS_W2");
    c.common_args = heartbeat;

    /* 1. The board across the links. */
    c.launcher = NULL;
    chanpipe_archiver(&c, NULL);
    c.launcher = launch_w1;
    chanpipe_hasher(&c, hasher_args);
    chanpipe_crawler(&c, crawler_args);
    c.launcher = launch_w2;
    chanpipe_hasher_into(&c, &hasher2, hasher_args);
    chanpipe_wait_archived(&c);
    chanpipe_check(&c, "across the links");

    /* 2. New posts, their pictures held, until w1's hasher waits for one. */
    json_object_put(fixture_control(&c.fx, "chan/fault?site=%s&path=%s&delay=%d", CHANPIPE_SITE, MEDIA, HOLD_SECONDS));
    chanpipe_add_posts(&c, 4);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    char *held;
    while (!(held = download_of(w1, true, NULL))) {
        if (time_mono_ns() > deadline) fail_logs("w1's hasher (%s) never downloaded a new picture", w1);
        time_sleep_ns(20 * TIME_NS_PER_MS);
    }
    int lost_crawler = proc_log_count(&c.crawler, "lost the connection"),
        lost_hasher = proc_log_count(&c.hasher, "lost the connection"),
        conn_crawler = proc_log_count(&c.crawler, "connected to"),
        conn_hasher = proc_log_count(&c.hasher, "connected to");
    link_w1("down");
    int64_t cut_end = time_mono_ns() + CUT_SECONDS * 1000 * TIME_NS_PER_MS;
    json_object_put(fixture_control(&c.fx, "chan/fault?site=%s&clear=1&path=%s", CHANPIPE_SITE, MEDIA));
    fprintf(stderr, "w1's link down while w1's hasher downloads %s; %ld rows\n", held, chanpipe_rows(&c));
    /* The hasher, a consumer, notices by the heartbeats; the crawler, a
     * publisher, may notice only when it next publishes, after the cut. */
    wait_log_count(&c.hasher, "lost the connection", lost_hasher + 1);
    fprintf(stderr, "w1's hasher noticed; %ld rows\n", chanpipe_rows(&c));
    int64_t left = cut_end - time_mono_ns();
    if (left > 0) time_sleep_ns(left);

    /* 3. Back; posts that only w1's crawler can bring. */
    link_w1("up");
    fprintf(stderr, "w1's link up after %d s; %ld rows\n", CUT_SECONDS, chanpipe_rows(&c));
    chanpipe_add_posts(&c, 2);
    wait_log_count(&c.crawler, "lost the connection", lost_crawler + 1);
    wait_log_count(&c.crawler, "connected to", conn_crawler + 1);
    wait_log_count(&c.hasher, "connected to", conn_hasher + 1);
    chanpipe_wait_archived(&c);
    chanpipe_check(&c, "after w1's link was cut and restored");
    if (proc_exited(&c.crawler) || proc_exited(&c.hasher) || proc_exited(&hasher2))
        fail_logs("a worker's program exited by itself");
    /* The broker gave the message w1's hasher held to the other hasher. */
    char *again = download_of(w2, false, held);
    if (!again) fail_logs("w2's hasher never downloaded %s, which w1's held when its link went down", held);
    fprintf(stderr, "%s, held by w1 at the cut, was downloaded by w2 too\n", held);
    free(again);
    free(held);

    /* Each ran throughout (never restarted) and still stops cleanly. */
    proc_stop(&c.crawler);
    proc_stop(&c.hasher);
    proc_stop(&hasher2);
    proc_stop(&c.archiver);
}

int main(void) {
    if (!getenv("IMGFEED_NETNS_DIR")) return outer();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_netns_link_cut, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
