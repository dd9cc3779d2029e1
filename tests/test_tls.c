/* test_tls.c -- the programs talk amqps:// to a broker whose certificate a
 * test CA signed, and refuse a broker their CA did not sign.
 *
 * The test makes its TLS material at run time (tests/lib/testca.sh: a CA, a
 * server certificate for IP:127.0.0.1 and DNS:localhost, and a second,
 * unrelated CA) and starts its own one-node RabbitMQ (tests/lib/cluster.sh,
 * through cluster.h) with a TLS listener on a free port beside its plain
 * one; the suite's shared broker has no TLS listener.  The plain listener
 * serves only the test's own look at the broker (mq_admin.h: counting
 * E.dead, deleting the topology).
 *
 * tls_pipeline: the crawler, hasher and archiver (chanpipe.h, a generated
 * board) with --amqp-url amqps://guest:guest@localhost:PORT and
 * --amqp-cacert ca.pem (localhost, not 127.0.0.1: librabbitmq 0.11 checks
 * the host name against the certificate's DNS names only, so an address in
 * the URL fails "SSL hostname verification" even with an IP SAN): every post exactly once in the archive, hashed,
 * nothing dead-lettered; and the broker's list of connections says that
 * the daemons still connected (hasher, archiver) use TLS.
 *
 * tls_wrong_ca: the same three programs trusting only the other CA: each
 * logs that the broker's certificate failed verification (mq.c's
 * "cannot connect to URL: WHY" with librabbitmq's reason), publishes nothing
 * (the exchange's queues were never declared, the archive has no row) and
 * still stops on SIGTERM with exit 0.
 *
 * Nothing is timed: every wait ends at a guard deadline only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chanpipe.h"
#include "cluster.h"
#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "xalloc.h"

/* What mq.c logs when the broker's certificate is not signed by the CA
 * given (librabbitmq's text for AMQP_STATUS_SSL_PEER_VERIFY_FAILED). */
#define VERIFY_FAILED "cert verification failed"

static struct {
    char *dir; /* the TLS material and the broker's extra configuration */
    char *ca, *other_ca;
    char *amqps; /* amqps://guest:guest@localhost:PORT */
    cluster broker;
} g;

static void run_or_fail(const char *cmd) {
    int status = system(cmd);
    if (status != 0) fail_msg("%s: status %d", cmd, status);
}

static int group_setup(void **state) {
    (void)state;
    g.dir = testenv_tmpdir("tls-test");
    char *cmd = xasprintf("bash '%s/tests/lib/testca.sh' '%s' >&2", testenv_source_dir(), g.dir);
    run_or_fail(cmd);
    free(cmd);
    g.ca = xasprintf("%s/ca.pem", g.dir);
    g.other_ca = xasprintf("%s/other-ca.pem", g.dir);
    int port = testenv_free_port();
    char *conf = xasprintf("%s/tls.conf", g.dir);
    FILE *f = fopen(conf, "w");
    if (!f) fail_msg("cannot write %s", conf);
    fprintf(f,
            "listeners.ssl.default = 127.0.0.1:%d\n"
            "ssl_options.cacertfile = %s/ca.pem\n"
            "ssl_options.certfile = %s/server.pem\n"
            "ssl_options.keyfile = %s/server.key\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n",
            port, g.dir, g.dir, g.dir);
    if (fclose(f) != 0) fail_msg("cannot write %s", conf);
    cluster_start(&g.broker, 1, conf);
    free(conf);
    g.amqps = xasprintf("amqps://guest:guest@localhost:%d", port);
    /* mq_admin.h (and any program not given --amqp-url) uses the plain listener. */
    setenv("IMGFEED_AMQP_URL", g.broker.url[0], 1);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    cluster_stop(&g.broker);
    pgtest_close();
    if (g.dir) testenv_rmtree(g.dir);
    free(g.dir);
    free(g.ca);
    free(g.other_ca);
    free(g.amqps);
    return 0;
}

static chanpipe p;

static int teardown(void **state) {
    (void)state;
    chanpipe_release(&p);
    return 0;
}

static void test_tls_pipeline(void **state) {
    (void)state;
    const char *common[] = {"--amqp-url", g.amqps, "--amqp-cacert", g.ca, NULL};
    chanpipe_init(&p, "s", 2, 4, 8);
    p.common_args = common;
    chanpipe_archiver(&p, NULL);
    chanpipe_hasher(&p, NULL);
    static const char *const once[] = {"--once", NULL};
    chanpipe_crawler(&p, once);
    int status = proc_wait(&p.crawler);
    if (status != 0) chanpipe_fail(&p, "imgfeed-crawler --once exited with %d", status);
    chanpipe_wait_archived(&p);
    chanpipe_check(&p, "over amqps://");
    proc *daemons[] = {&p.hasher, &p.archiver};
    for (size_t i = 0; i < 2; i++)
        if (proc_log_count(daemons[i], "connected to amqps://guest@localhost:") < 1)
            chanpipe_fail(&p, "%s did not say it connected to %s", daemons[i]->name, g.amqps);

    /* The broker's side: every client connection of the two daemons is TLS. */
    char *out = NULL;
    if (cluster_ctl(&g.broker, 1, &out, "list_connections --no-table-headers client_properties ssl ssl_protocol") != 0)
        fail_msg("rabbitmqctl list_connections failed:\n%s", out);
    int tls = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "imgfeed")) continue; /* the CLI's own, if listed */
        if (!strstr(line, "\ttrue\t")) fail_msg("a connection without TLS: %s", line);
        tls++;
    }
    free(out);
    if (tls < 2)
        fail_msg("the broker lists %d TLS connections of imgfeed, the hasher's and the archiver's expected", tls);
    fprintf(stderr, "the broker lists %d TLS connections of imgfeed\n", tls);
    proc_stop(&p.hasher);
    proc_stop(&p.archiver);
}

static void test_tls_wrong_ca(void **state) {
    (void)state;
    const char *common[] = {"--amqp-url", g.amqps, "--amqp-cacert", g.other_ca, NULL};
    chanpipe_init(&p, "w", 1, 2, 4);
    p.common_args = common;
    static const char *const once[] = {"--once", NULL};
    chanpipe_archiver(&p, NULL);
    chanpipe_hasher(&p, NULL);
    chanpipe_crawler(&p, once);
    proc *all[] = {&p.crawler, &p.hasher, &p.archiver};
    for (size_t i = 0; i < 3; i++) {
        proc_wait_log(all[i], VERIFY_FAILED);
        if (proc_log_count(all[i], "connected to amqps://")) chanpipe_fail(&p, "%s connected", all[i]->name);
    }
    fprintf(stderr, "each program refused the broker; the crawler said:\n");
    proc_print_log(&p.crawler);
    /* Nothing got through: the topology was never declared, no row. */
    mq_admin *a = mq_admin_open();
    char *queue = xasprintf("%s.hasher", p.exchange);
    long n = mq_admin_count(a, queue);
    mq_admin_close(a);
    if (n != -1) chanpipe_fail(&p, "%s exists (%ld messages): a program passed the TLS handshake", queue, n);
    free(queue);
    if (chanpipe_rows(&p) != 0) chanpipe_fail(&p, "the archive holds rows");
    for (size_t i = 0; i < 3; i++)
        proc_stop(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tls_pipeline, teardown),
        cmocka_unit_test_teardown(test_tls_wrong_ca, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
