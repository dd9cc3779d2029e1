/* test_stop.c -- SIGTERM ends every process within seconds, exit 0, in the
 * states where one waits for a peer: the broker not there (every program
 * reconnects with backoff), PostgreSQL not there (the archiver).  The drain
 * after a stop is bounded (sig.h, SIG_DRAIN_MS): before, a process that
 * took the stop to drain waited for the peer for as long as it took. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "testenv.h"
#include "xalloc.h"

#define STOP_WITHIN_S 5.0

typedef struct ctx {
    char *dir;
    char *exchange;
    char *dead_amqp; /* a broker URL nobody answers */
    proc p;
} ctx;

static ctx t;

static int setup(void **state) {
    static char letter = 'a';
    (void)state;
    memset(&t, 0, sizeof t);
    t.dir = testenv_tmpdir("stop-test");
    t.exchange = xasprintf("t%ds%c", (int)getpid(), letter++);
    t.dead_amqp = xasprintf("amqp://guest:guest@127.0.0.1:%d", testenv_free_port());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    proc_release(&t.p);
    testenv_rmtree(t.dir);
    free(t.dir);
    free(t.exchange);
    free(t.dead_amqp);
    return 0;
}

/* Start PROGRAM with ARGS, wait until its log says WAITING, SIGTERM it: it
 * must exit 0 within STOP_WITHIN_S. */
static void stop_while(const char *program, const char *const *args, const char *waiting, const char *state_name) {
    proc_start_imgfeed(&t.p, program, t.exchange, args);
    proc_wait_log(&t.p, waiting);
    sleep(1); /* well inside the wait */
    double took = proc_stop_timed(&t.p);
    fprintf(stderr, "%s, %s: exited 0 after %.2f s\n", program, state_name, took);
    if (took > STOP_WITHIN_S) fail_msg("%s took %.1f s to stop while %s", program, took, state_name);
}

static void test_crawler_without_broker(void **state) {
    (void)state;
    char *sites = xasprintf("%s/sites.json", t.dir), *state_dir = xasprintf("%s/state", t.dir);
    FILE *f = fopen(sites, "w");
    assert_non_null(f);
    fprintf(f, "{\"user_agent\": \"imgfeed-test/1\", \"sites\": [{\"name\": \"s\", \"kind\": \"4chan\", "
               "\"api\": \"http://127.0.0.1:%d\", \"boards\": [\"g\"], \"rps\": 1}]}\n",
            testenv_free_port());
    fclose(f);
    const char *const args[] = {"--amqp-url", t.dead_amqp, "--sites", sites, "--state-dir", state_dir, NULL};
    stop_while("crawler/imgfeed-crawler", args, "retrying in", "reconnecting to the broker");
    free(sites);
    free(state_dir);
}

static void test_hasher_without_broker(void **state) {
    (void)state;
    const char *const args[] = {"--amqp-url", t.dead_amqp, NULL};
    stop_while("hasher/imgfeed-hasher", args, "retrying in", "reconnecting to the broker");
}

static void test_archiver_without_broker(void **state) {
    (void)state;
    const char *const args[] = {"--amqp-url", t.dead_amqp, NULL};
    stop_while("archiver/imgfeed-archiver", args, "retrying in", "reconnecting to the broker");
}

static void test_archiver_without_postgres(void **state) {
    (void)state;
    char *pg = xasprintf("host=127.0.0.1 port=%d user=postgres dbname=imgfeed connect_timeout=2", testenv_free_port());
    const char *const args[] = {"--pg", pg, NULL};
    stop_while("archiver/imgfeed-archiver", args, "waiting for PostgreSQL", "waiting for PostgreSQL");
    free(pg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crawler_without_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hasher_without_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archiver_without_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archiver_without_postgres, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
