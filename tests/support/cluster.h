/* cluster.h -- a private RabbitMQ cluster of tests/lib/cluster.sh, from C.
 *
 * A test that must not share the suite's broker (it raises an alarm that
 * blocks every publisher, it needs a TLS listener, it kills nodes) starts
 * its own: cluster_start runs `cluster.sh start DIR N` with the test's pid
 * as owner (so that `cluster.sh reap` stops it should the test die) and
 * IMGFEED_CLUSTER_CONF=CONF when given, then reads the nodes' amqp:// URLs
 * from DIR/env.  cluster_ctl runs rabbitmqctl (or another CLI tool, with
 * "--tool NAME" first) against a node through DIR/ctl.  cluster_stop stops
 * every node by recorded pid and removes DIR.
 *
 * Every failure fails the running cmocka test; cluster_stop never fails.
 */
#ifndef IMGFEED_TEST_CLUSTER_H
#define IMGFEED_TEST_CLUSTER_H

#define CLUSTER_MAX_NODES 3

typedef struct cluster {
    char *dir;                    /* the cluster's directory (cluster.sh's DIR) */
    int nodes;                    /* 1..CLUSTER_MAX_NODES */
    char *url[CLUSTER_MAX_NODES]; /* amqp://guest:guest@127.0.0.1:PORT of node 1.. (index 0..) */
    char *urls;                   /* all of them, comma-separated, node 1 first */
} cluster;

/* Start N nodes; CONF (a file, may be NULL) is appended to every node's
 * rabbitmq.conf.  Fails the test when the cluster does not come up. */
void cluster_start(cluster *c, int n, const char *conf);
/* Stop the nodes, remove the directory, free.  Safe on a zeroed C. */
void cluster_stop(cluster *c);

/* Run the CLI tool on node I (1-based) with the printf-formatted ARGS (shell
 * words); its output (stdout and stderr) in *OUT when OUT is not NULL (the
 * caller frees).  Returns the exit status. */
int cluster_ctl(const cluster *c, int node, char **out, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, failing the test (with the output) unless the status is 0. */
void cluster_ctl_ok(const cluster *c, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* kill -9 node I; start it again (waits until it serves AMQP). */
void cluster_kill(const cluster *c, int node);
void cluster_start_node(const cluster *c, int node);
/* Wait (at most SECONDS) until every node runs and every quorum queue has
 * all its members online (cluster.sh wait-synced). */
void cluster_wait_synced(const cluster *c, int seconds);

#endif
