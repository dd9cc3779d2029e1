/* crawltest.c -- the harness of the crawler's tests: see crawltest.h. */
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crawltest.h"
#include "log.h"
#include "metrics.h"
#include "mq_admin.h"
#include "testenv.h"
#include "xalloc.h"

crawltest ct;

int crawltest_setup(const char *name, char tag) {
    static char letter = 'a';
    memset(&ct, 0, sizeof ct);
    ct.exchange = xasprintf("t%d%c%c", (int)getpid(), tag, letter++);
    ct.queue = xasprintf("%s.test", ct.exchange);
    ct.dir = testenv_tmpdir(name);
    ct.sites_file = xasprintf("%s/sites.json", ct.dir);
    ct.state_dir = xasprintf("%s/state", ct.dir);
    ct.q = mq_admin_connect(ct.exchange, name);
    mq_admin *a = mq_admin_open();
    mq_admin_declare_queue(a, ct.queue, NULL, mq_target_name(ct.q, MQ_EXCHANGE_RAW), "#");
    mq_admin_close(a);
    assert_int_equal(mq_consume(ct.q, ct.queue, 1000), MQ_OK);
    fixture_start(&ct.fx);
    return 0;
}

int crawltest_teardown(void) {
    proc_kill_all();
    proc_release(&ct.crawler);
    fixture_stop(&ct.fx);
    mq_free(ct.q);
    static const char *const extras[] = {"test", NULL};
    mq_admin_delete_topology(ct.exchange, extras);
    testenv_rmtree(ct.dir);
    free(ct.here_log);
    free(ct.sites_file);
    free(ct.state_dir);
    free(ct.dir);
    free(ct.queue);
    free(ct.exchange);
    memset(&ct, 0, sizeof ct);
    return 0;
}

void crawltest_write_sites(json_object *entries) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "user_agent",
                           json_object_new_string("imgfeed-test/1 (+https://example.invalid/contact)"));
    json_object_object_add(root, "sites", entries);
    assert_int_equal(json_object_to_file_ext(ct.sites_file, root, JSON_C_TO_STRING_PRETTY), 0);
    json_object_put(root);
}

void crawltest_start(const char *const *args) {
    const char *argv[33] = {"--sites", ct.sites_file, "--state-dir", ct.state_dir, "--retries", "1"};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && n < 32; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    proc_start_imgfeed(&ct.crawler, "crawler/imgfeed-crawler", ct.exchange, argv);
}

void crawltest_once(const char *const *args) {
    const char *argv[32];
    int n = 0;
    argv[n++] = "--once";
    for (size_t i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    crawltest_start(argv);
    int status = proc_wait(&ct.crawler);
    if (status != 0) {
        proc_print_log(&ct.crawler);
        fail_msg("imgfeed-crawler --once exited with %d", status);
    }
}

void crawltest_once_here(int (*crawler_main)(int argc, char **argv), const char *const *args) {
    static int runs;
    const char *argv[40] = {"imgfeed-crawler", "--exchange", ct.exchange, "--amqp-heartbeat", "5s",
                            "--sites", ct.sites_file, "--state-dir", ct.state_dir, "--retries", "1", "--once"};
    int n = 12;
    for (size_t i = 0; args && args[i]; i++) {
        if (n == 39) fail_msg("too many arguments for the crawler");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    free(ct.here_log);
    ct.here_log = xasprintf("%s/crawler-here-%d.log", ct.dir, ++runs);
    int fd = open(ct.here_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) fail_msg("cannot write %s", ct.here_log);
    log_set_fd(fd);
    int status = crawler_main(n, (char **)argv);
    log_set_fd(2);
    close(fd);
    if (status != 0) {
        char *cmd = xasprintf("tail -n 60 '%s' >&2", ct.here_log);
        if (system(cmd) != 0) fprintf(stderr, "cannot show %s\n", ct.here_log);
        free(cmd);
        fail_msg("crawler_main --once returned %d", status);
    }
}

int crawltest_here_log_count(const char *text) {
    proc here = {.log = ct.here_log}; /* the log of crawler_main run here, read as a child's */
    return proc_log_count(&here, text);
}

void crawltest_series_only(const char *site, const char *const *boards) {
    size_t len;
    char *text = metrics_render(&len);
    char *site_label = xasprintf("site=\"%s\"", site);
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        char *at = line[0] != '#' ? strstr(line, site_label) : NULL;
        char *board = at && at < end ? strstr(line, "board=\"") : NULL;
        if (board && board < end) {
            board += strlen("board=\"");
            size_t n = strcspn(board, "\"");
            size_t i = 0;
            while (boards[i] && !(strlen(boards[i]) == n && strncmp(boards[i], board, n) == 0))
                i++;
            if (!boards[i]) fail_msg("a series of site %s not of its settings: %.*s", site, (int)(end - line), line);
        }
        line = *end ? end + 1 : end;
    }
    for (size_t i = 0; boards[i]; i++) {
        char *want = xasprintf("imgfeed_items_published_total{site=\"%s\",board=\"%s\"} ", site, boards[i]);
        if (!strstr(text, want)) fail_msg("no series %s", want);
        free(want);
    }
    free(site_label);
    free(text);
}

void crawltest_harvest_init(crawltest_harvest *h) {
    memset(h, 0, sizeof *h);
    h->by_id = json_object_new_object();
    h->keys = json_object_new_object();
}

void crawltest_harvest_release(crawltest_harvest *h) {
    json_object_put(h->by_id);
    json_object_put(h->keys);
}

void crawltest_harvest_take(crawltest_harvest *h, int64_t quiet_ms) {
    for (;;) {
        mq_delivery d;
        int rc = mq_next(ct.q, &d, quiet_ms);
        if (rc == MQ_TIMEOUT) return;
        assert_int_equal(rc, MQ_OK);
        json_object *items = json_tokener_parse(d.body);
        if (!items || !json_object_is_type(items, json_type_array)) fail_msg("the crawler published %.200s", d.body);
        h->messages++;
        if (d.len > h->longest) h->longest = d.len;
        json_object *count;
        if (!json_object_object_get_ex(h->keys, d.routing_key, &count)) {
            count = json_object_new_int(0);
            json_object_object_add(h->keys, d.routing_key, count);
        }
        json_object_int_inc(count, (int64_t)json_object_array_length(items));
        for (size_t i = 0; i < json_object_array_length(items); i++) {
            json_object *item = json_object_array_get_idx(items, i), *id;
            if (!json_object_object_get_ex(item, "_id", &id)) fail_msg("an item without _id");
            json_object_object_add(h->by_id, json_object_get_string(id), json_object_get(item));
            h->items++;
        }
        json_object_put(items);
        assert_int_equal(mq_ack(ct.q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
}

long crawltest_key_count(const crawltest_harvest *h, const char *key) {
    json_object *v;
    return json_object_object_get_ex(h->keys, key, &v) ? (long)json_object_get_int64(v) : 0;
}

void crawltest_check_rate(json_object *counts, int rps) {
    int64_t first = INT64_MAX, last = INT64_MIN, total = 0;
    json_object_object_foreach(counts, sec, n) {
        int64_t k = strtoll(sec, NULL, 10), v = json_object_get_int64(n);
        if (v > rps + 1) fail_msg("%" PRId64 " requests in second %s at rps %d", v, sec, rps);
        if (k < first) first = k;
        if (k > last) last = k;
        total += v;
    }
    if (total && total > rps * (last - first + 1) + 1)
        fail_msg("%" PRId64 " requests in the %" PRId64 " seconds from %" PRId64 " at rps %d", total, last - first + 1,
                 first, rps);
}
