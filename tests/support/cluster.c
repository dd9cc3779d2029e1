/* cluster.c -- tests/lib/cluster.sh driven from a C test; see cluster.h.
 *
 * Every command goes through the shell script (popen, output captured), so
 * the script stays the one place that knows how a node is started, named
 * and stopped.
 */
#include "cluster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sbuf.h"
#include "testenv.h"
#include "xalloc.h"

/* Run CMD with sh; its output into *OUT (when OUT is not NULL); the status. */
static int cluster_run(const char *cmd, char **out) {
    char *full = xasprintf("%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) fail_msg("cannot run %s", cmd);
    sbuf buf = {0};
    sbuf_add_stream(&buf, p);
    int status = pclose(p);
    sbuf_addc(&buf, '\0');
    if (out)
        *out = buf.p;
    else
        free(buf.p);
    return status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `bash cluster.sh ARGS`, which must succeed. */
static void cluster_script(const char *env, const char *args) {
    char *cmd = xasprintf("%s bash '%s/tests/lib/cluster.sh' %s", env ? env : "", testenv_source_dir(), args);
    char *out = NULL;
    int status = cluster_run(cmd, &out);
    if (status != 0) fail_msg("%s: exit %d\n%s", cmd, status, out);
    free(out);
    free(cmd);
}

void cluster_start(cluster *c, int n, const char *conf) {
    memset(c, 0, sizeof *c);
    if (n < 1 || n > CLUSTER_MAX_NODES) fail_msg("a cluster of %d nodes", n);
    c->dir = testenv_tmpdir("cluster");
    c->nodes = n;
    char *env = conf ? xasprintf("IMGFEED_TEST_OWNER_PID=%d IMGFEED_CLUSTER_CONF='%s'", (int)getpid(), conf)
                     : xasprintf("IMGFEED_TEST_OWNER_PID=%d", (int)getpid());
    char *args = xasprintf("start '%s' %d", c->dir, n);
    cluster_script(env, args);
    free(args);
    free(env);
    char *path = xasprintf("%s/env", c->dir);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cluster.sh wrote no %s", path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        int i = 0, used = 0;
        if (sscanf(line, "export IMGFEED_CLUSTER_URL%d=%n", &i, &used) == 1 && used > 0 && i >= 1 && i <= n)
            c->url[i - 1] = xstrdup(line + used);
        else if (strncmp(line, "export IMGFEED_CLUSTER_URLS=", 28) == 0)
            c->urls = xstrdup(line + 28);
    }
    fclose(f);
    for (int i = 0; i < n; i++)
        if (!c->url[i]) fail_msg("%s names no URL of node %d", path, i + 1);
    if (!c->urls) fail_msg("%s has no IMGFEED_CLUSTER_URLS", path);
    free(path);
}

void cluster_stop(cluster *c) {
    if (c->dir) {
        char *cmd = xasprintf("bash '%s/tests/lib/cluster.sh' stop '%s'", testenv_source_dir(), c->dir);
        char *out = NULL;
        if (cluster_run(cmd, &out) != 0) fprintf(stderr, "%s:\n%s", cmd, out);
        free(out);
        free(cmd);
        testenv_rmtree(c->dir);
    }
    for (int i = 0; i < CLUSTER_MAX_NODES; i++)
        free(c->url[i]);
    free(c->urls);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

static int cluster_vctl(const cluster *c, int node, char **out, const char *fmt, va_list ap) {
    char *args = xvasprintf(fmt, ap);
    char *cmd = xasprintf("'%s/ctl' %d %s", c->dir, node, args);
    int status = cluster_run(cmd, out);
    free(cmd);
    free(args);
    return status;
}

int cluster_ctl(const cluster *c, int node, char **out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int status = cluster_vctl(c, node, out, fmt, ap);
    va_end(ap);
    return status;
}

void cluster_ctl_ok(const cluster *c, int node, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int status = cluster_vctl(c, node, &out, fmt, ap);
    va_end(ap);
    if (status != 0) fail_msg("ctl %d %s: exit %d\n%s", node, fmt, status, out);
    free(out);
}

void cluster_kill(const cluster *c, int node) {
    char *args = xasprintf("kill '%s' %d", c->dir, node);
    cluster_script(NULL, args);
    free(args);
}

void cluster_start_node(const cluster *c, int node) {
    char *args = xasprintf("start-node '%s' %d", c->dir, node);
    char *env = xasprintf("IMGFEED_TEST_OWNER_PID=%d", (int)getpid());
    cluster_script(env, args);
    free(env);
    free(args);
}

void cluster_wait_synced(const cluster *c, int seconds) {
    char *args = xasprintf("wait-synced '%s' %d", c->dir, seconds);
    cluster_script(NULL, args);
    free(args);
}
