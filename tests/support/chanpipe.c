/* chanpipe.c -- a generated board through the real pipeline; see chanpipe.h.
 *
 * The expected posts come from the fixture's own account of its site (every
 * thread's post numbers and files), never from what the programs did; the
 * check reads the archive with one query and counts each id.
 */
#include "chanpipe.h"

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
#include <libpq-fe.h>

#include "mq_admin.h"
#include "pgtest.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define CHANPIPE_GUARD_MS 120000 /* longest wait for the archive before the test fails */
#define CHANPIPE_MAX_ARGS 30

void chanpipe_fail(chanpipe *c, const char *fmt, ...) {
    proc *all[] = {&c->crawler, &c->hasher, &c->archiver};
    va_list ap;
    va_start(ap, fmt);
    proc_vfail_logs(all, 3, fmt, ap);
    va_end(ap);
}

/* The thread numbers of board B (a new reference). */
static json_object *chanpipe_threads(chanpipe *c, int b) {
    json_object *info = fixture_control(&c->fx, "chan/info?site=%s&board=b%d", CHANPIPE_SITE, b), *threads;
    if (!json_object_object_get_ex(info, "threads", &threads)) fail_msg("chan/info of b%d has no threads", b);
    json_object_get(threads);
    json_object_put(info);
    return threads;
}

static int64_t chanpipe_int(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("the fixture's answer has no %s", key);
    return json_object_get_int64(v);
}

void chanpipe_load(chanpipe *c) {
    json_object_put(c->posts);
    c->posts = json_object_new_object();
    c->files = 0;
    for (int b = 0; b < c->boards; b++) {
        json_object *threads = chanpipe_threads(c, b);
        for (size_t i = 0; i < json_object_array_length(threads); i++) {
            int64_t no = chanpipe_int(json_object_array_get_idx(threads, i), "no");
            json_object *nos, *files,
                *info = fixture_control(&c->fx, "chan/info?site=%s&board=b%d&no=%" PRId64, CHANPIPE_SITE, b, no);
            if (!json_object_object_get_ex(info, "post_nos", &nos) || !json_object_object_get_ex(info, "files", &files))
                fail_msg("chan/info of thread %" PRId64 " lacks post_nos or files", no);
            for (size_t k = 0; k < json_object_array_length(nos); k++) {
                int64_t pno = json_object_get_int64(json_object_array_get_idx(nos, k));
                char id[64];
                snprintf(id, sizeof id, "b%d.%" PRId64, b, pno);
                json_object_object_add(c->posts, id, json_object_new_string(pno == no ? "thread" : "post"));
            }
            c->files += (long)json_object_array_length(files);
            json_object_put(info);
        }
        json_object_put(threads);
    }
}

void chanpipe_add_posts(chanpipe *c, int k) {
    for (int b = 0; b < c->boards; b++) {
        json_object *threads = chanpipe_threads(c, b);
        for (size_t i = 0; i < json_object_array_length(threads); i++) {
            int64_t no = chanpipe_int(json_object_array_get_idx(threads, i), "no");
            json_object_put(fixture_control(&c->fx, "chan/thread?site=%s&board=b%d&no=%" PRId64 "&add=%d",
                                            CHANPIPE_SITE, b, no, k));
        }
        json_object_put(threads);
    }
    chanpipe_load(c);
}

void chanpipe_init(chanpipe *c, const char *tag, int boards, int threads, int posts) {
    chanpipe_init_with(c, NULL, tag, boards, threads, posts);
}

void chanpipe_init_with(chanpipe *c, const fixture_options *fo, const char *tag, int boards, int threads, int posts) {
    static int serial;
    memset(c, 0, sizeof *c);
    snprintf(c->exchange, sizeof c->exchange, "t%d%s%d", (int)getpid(), tag, ++serial);
    c->boards = boards;
    c->dir = testenv_tmpdir("chanpipe");
    c->sites_file = xasprintf("%s/sites.json", c->dir);
    c->state_dir = xasprintf("%s/state", c->dir);
    fixture_start_with(&c->fx, fo);
    json_object_put(fixture_control(&c->fx, "chan/site?name=%s&kind=4chan", CHANPIPE_SITE));
    for (int b = 0; b < boards; b++)
        json_object_put(fixture_control(&c->fx, "chan/board?site=%s&board=b%d&threads=%d&posts=%d&images=3&seed=%d",
                                        CHANPIPE_SITE, b, threads, posts, 7 + b));
    fixture_write_chan_sites(&c->fx, c->sites_file, CHANPIPE_SITE, boards);
    chanpipe_load(c);
}

void chanpipe_release(chanpipe *c) {
    proc *all[] = {&c->crawler, &c->hasher, &c->archiver};
    for (size_t i = 0; i < 3; i++) {
        proc_kill(all[i]);
        proc_release(all[i]);
    }
    fixture_stop(&c->fx);
    if (c->exchange[0]) {
        mq_admin_delete_topology(c->exchange, NULL);
        char *prefix = xasprintf("%s_", c->exchange);
        pgtest_drop_tables(prefix);
        free(prefix);
    }
    if (c->dir) testenv_rmtree(c->dir);
    json_object_put(c->posts);
    free(c->dir);
    free(c->sites_file);
    free(c->state_dir);
    memset(c, 0, sizeof *c);
}

/* PROGRAM with FIXED, then ARGS, then the common arguments. */
static void chanpipe_start(chanpipe *c, proc *p, const char *program, const char *const *fixed,
                           const char *const *args) {
    const char *argv[CHANPIPE_MAX_ARGS + 1];
    size_t n = 0;
    const char *const *lists[] = {fixed, args, c->common_args};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            if (n == CHANPIPE_MAX_ARGS) fail_msg("too many arguments for %s", program);
            argv[n++] = lists[l][i];
        }
    argv[n] = NULL;
    proc_start_imgfeed_in(p, c->launcher, program, c->exchange, argv);
}

void chanpipe_crawler(chanpipe *c, const char *const *args) {
    const char *fixed[] = {"--sites",      c->sites_file, "--state-dir",       c->state_dir, "--retries", "1",
                           "--batch-size", "10",          "--request-timeout", "150s",       NULL};
    chanpipe_start(c, &c->crawler, "crawler/imgfeed-crawler", fixed, args);
}

void chanpipe_hasher(chanpipe *c, const char *const *args) { chanpipe_hasher_into(c, &c->hasher, args); }

void chanpipe_hasher_into(chanpipe *c, proc *p, const char *const *args) {
    static const char *const fixed[] = {"--allow-net", "127.0.0.0/8", "--threads", "2", "--rps-per-host", "0", NULL};
    chanpipe_start(c, p, "hasher/imgfeed-hasher", fixed, args);
}

void chanpipe_archiver(chanpipe *c, const char *const *args) {
    static const char *const fixed[] = {"--flush-interval", "200ms", NULL};
    chanpipe_start(c, &c->archiver, "archiver/imgfeed-archiver", fixed, args);
}

static char *chanpipe_table(chanpipe *c, const char *type) {
    return xasprintf("%s_%s_%s", c->exchange, CHANPIPE_SITE, type);
}

long chanpipe_rows(chanpipe *c) {
    long n = 0;
    static const char *const types[] = {"thread", "post"};
    for (size_t i = 0; i < 2; i++) {
        char *table = chanpipe_table(c, types[i]);
        long rows = pgtest_count(table);
        if (rows > 0) n += rows;
        free(table);
    }
    return n;
}

void chanpipe_wait_archived(chanpipe *c) {
    long want = json_object_object_length(c->posts), n;
    int64_t deadline = time_mono_ns() + CHANPIPE_GUARD_MS * TIME_NS_PER_MS;
    while ((n = chanpipe_rows(c)) < want) {
        proc *daemons[] = {&c->hasher, &c->archiver};
        for (size_t i = 0; i < 2; i++)
            if (proc_exited(daemons[i]))
                chanpipe_fail(c, "%s exited with %d while the archive held %ld of %ld posts", daemons[i]->name,
                              proc_wait(daemons[i]), n, want);
        if (time_mono_ns() > deadline) chanpipe_fail(c, "the archive holds %ld rows, expected %ld", n, want);
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
}

void chanpipe_check(chanpipe *c, const char *what) {
    char *thread = chanpipe_table(c, "thread"), *post = chanpipe_table(c, "post");
    char *sql = xasprintf("SELECT 'thread', id, (SELECT count(*) FROM jsonb_array_elements(data->'_img') e "
                          "WHERE e ? 'sha1' AND NOT e ? 'error') FROM \"%s\" UNION ALL "
                          "SELECT 'post', id, (SELECT count(*) FROM jsonb_array_elements(data->'_img') e "
                          "WHERE e ? 'sha1' AND NOT e ? 'error') FROM \"%s\"",
                          thread, post);
    PGresult *res = pgtest_query(sql, 0, NULL);
    json_object *seen = json_object_new_object();
    long hashed = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *table = PQgetvalue(res, r, 0), *id = PQgetvalue(res, r, 1);
        json_object *type;
        if (!json_object_object_get_ex(c->posts, id, &type))
            chanpipe_fail(c, "%s: row %s of the %s table is no post of the site", what, id, table);
        if (json_object_object_get_ex(seen, id, NULL)) chanpipe_fail(c, "%s: post %s is a row twice", what, id);
        if (strcmp(json_object_get_string(type), table) != 0)
            chanpipe_fail(c, "%s: post %s (%s) is in the %s table", what, id, json_object_get_string(type), table);
        json_object_object_add(seen, id, NULL);
        hashed += atol(PQgetvalue(res, r, 2));
    }
    PQclear(res);
    long want = json_object_object_length(c->posts), have = json_object_object_length(seen);
    json_object_put(seen);
    if (have != want) chanpipe_fail(c, "%s: %ld of %ld posts in the archive", what, have, want);
    if (hashed != c->files) chanpipe_fail(c, "%s: %ld of %ld files hashed in the archive", what, hashed, c->files);
    mq_admin *a = mq_admin_open();
    char *dead = xasprintf("%s.dead", c->exchange);
    long n = mq_admin_count(a, dead);
    mq_admin_close(a);
    if (n != 0) chanpipe_fail(c, "%s: %s holds %ld messages", what, dead, n);
    fprintf(stderr, "%s: %ld posts, each one row; %ld files hashed; %s empty\n", what, want, hashed, dead);
    free(dead);
    free(sql);
    free(thread);
    free(post);
}
