/* test_pipeline.c -- the whole pipeline: fixture board -> imgfeed-crawler ->
 * imgfeed-hasher -> imgfeed-archiver -> rows in PostgreSQL.
 *
 * The test starts tests/support/fixture_server.py with a generated 4chan-like
 * site of a few boards whose posts carry real pictures (the fixture's PNGs),
 * runs the three real programs as child processes (proc.h) on a fresh
 * exchange E, and looks at the archive tables E_<site>_thread and
 * E_<site>_post with its own SQL.  What the archive must hold comes from the
 * fixture itself (/_control/chan/info: every thread's post numbers and
 * files), and every `_img` entry must equal what `imgfeed-hasher hash` prints
 * for the same bytes, downloaded by the test from the fixture server.
 *
 * First phase: one crawl (--once) with the hasher and the archiver running;
 * every post is a row exactly once, with its hashes.
 *
 * Second phase: posts are added to every thread and a second crawl runs,
 * during which each program is killed with SIGKILL once, while it has work in
 * flight, and started again:
 *   - the hasher while it waits for a picture: the fixture holds one new
 *     file's download (a delay fault) until the kill;
 *   - the archiver while its batch INSERT waits: the test holds an EXCLUSIVE
 *     lock on E_<site>_post from a connection of its own, kills the archiver
 *     once its backend waits for that lock, and ends that backend too, so
 *     that the uncommitted batch is lost and only redelivery can bring it
 *     back;
 *   - the crawler in the middle of the crawl: a thread of the second board is
 *     held (a delay fault), so the first board is published and saved, the
 *     second partly published and partly queued, unpublished.
 * Then every post, old and new, must again be a row exactly once, none
 * missing, with correct `_img` entries, and nothing dead-lettered.
 *
 * Two more cases run the same three programs on the other kinds' sites: a
 * generated subreddit (rows of E_<site>_submission) and a generated
 * nekos_best category (rows of E_<site>_image, the API's metadata kept).
 *
 * Nothing is timed: every wait ends at a guard deadline that only keeps a
 * broken pipeline from hanging the suite, and then prints the logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "fixture.h"
#include "mq.h"
#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 90000 /* longest any single wait may take before the test fails */
#define SITE "pipe"
#define BOARDS 3
#define THREADS 8
#define POSTS 10
#define IMAGES 5        /* of every 10 posts with a file (the OPs always) */
#define ADD 4           /* posts added to every thread for the second crawl */
#define HOLD_SECONDS 90 /* how long the fixture holds a request of a delay fault */

typedef struct ctx {
    char *exchange;
    char *dir; /* sites file, crawl state, downloaded files */
    char *sites_file;
    char *state_dir;
    char *files_dir;
    char *thread_table; /* E_pipe_thread */
    char *post_table;   /* E_pipe_post */
    fixture fx;
    proc crawler, hasher, archiver;
    PGconn *locker;     /* the connection holding the lock on post_table */
    json_object *posts; /* _id -> {"type": "thread"|"post", "path": file path or null} */
    json_object *refs;  /* _id -> the expected `_img` entry of its file */
} ctx;

static ctx t;

/* --- setup --- */

static int setup(void **state) {
    static char letter = 'a';
    (void)state;
    memset(&t, 0, sizeof t);
    t.exchange = xasprintf("t%dp%c", (int)getpid(), letter++);
    t.dir = testenv_tmpdir("pipeline-test");
    t.sites_file = xasprintf("%s/sites.json", t.dir);
    t.state_dir = xasprintf("%s/state", t.dir);
    t.files_dir = xasprintf("%s/files", t.dir);
    if (mkdir(t.files_dir, 0755) != 0) fail_msg("cannot create %s: %s", t.files_dir, strerror(errno));
    t.thread_table = xasprintf("%s_%s_thread", t.exchange, SITE);
    t.post_table = xasprintf("%s_%s_post", t.exchange, SITE);
    t.posts = json_object_new_object();
    t.refs = json_object_new_object();
    fixture_start(&t.fx);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    proc_release(&t.crawler);
    proc_release(&t.hasher);
    proc_release(&t.archiver);
    if (t.locker) PQfinish(t.locker);
    fixture_stop(&t.fx);
    mq_admin_delete_topology(t.exchange, NULL);
    char *prefix = xasprintf("%s_", t.exchange);
    pgtest_drop_tables(prefix);
    free(prefix);
    pgtest_close();
    testenv_rmtree(t.dir);
    json_object_put(t.posts);
    json_object_put(t.refs);
    free(t.thread_table);
    free(t.post_table);
    free(t.files_dir);
    free(t.state_dir);
    free(t.sites_file);
    free(t.dir);
    free(t.exchange);
    return 0;
}

/* Print the logs of the three programs (those that ran) and fail. */
static void fail_with_logs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_with_logs(const char *fmt, ...) {
    proc *all[] = {&t.crawler, &t.hasher, &t.archiver};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->log) proc_print_log(all[i]);
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fail_msg("%s", msg);
}

static bool past(int64_t deadline) { return time_mono_ns() > deadline; }
static int64_t deadline_in(int64_t ms) { return time_mono_ns() + ms * TIME_NS_PER_MS; }
static void pause_ms(int64_t ms) { time_sleep_ns(ms * TIME_NS_PER_MS); }

/* --- the fixture site --- */

static void make_site(void) {
    json_object_put(fixture_control(&t.fx, "chan/site?name=%s&kind=4chan", SITE));
    for (int b = 0; b < BOARDS; b++)
        json_object_put(fixture_control(&t.fx, "chan/board?site=%s&board=b%d&threads=%d&posts=%d&images=%d&seed=%d",
                                        SITE, b, THREADS, POSTS, IMAGES, 40 + b));
}

static void write_sites(void) { fixture_write_chan_sites(&t.fx, t.sites_file, SITE, BOARDS); }

/* The thread numbers of board B, in ascending order (a new reference). */
static json_object *board_threads(int b) {
    json_object *info = fixture_control(&t.fx, "chan/info?site=%s&board=b%d", SITE, b), *threads;
    if (!json_object_object_get_ex(info, "threads", &threads)) fail_msg("chan/info of b%d has no threads", b);
    json_object *nos = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(threads); i++) {
        json_object *no;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(threads, i), "no", &no));
        json_object_array_add(nos, json_object_new_int64(json_object_get_int64(no)));
    }
    json_object_put(info);
    return nos;
}

/* Read every post of the site from the fixture into t.posts: its type
 * (the OP is a "thread", the others "post"s) and its file's path. */
static void load_posts(void) {
    for (int b = 0; b < BOARDS; b++) {
        json_object *threads = board_threads(b);
        for (size_t i = 0; i < json_object_array_length(threads); i++) {
            int64_t no = json_object_get_int64(json_object_array_get_idx(threads, i));
            json_object *info = fixture_control(&t.fx, "chan/info?site=%s&board=b%d&no=%" PRId64, SITE, b, no);
            json_object *post_nos, *files;
            if (!json_object_object_get_ex(info, "post_nos", &post_nos) ||
                !json_object_object_get_ex(info, "files", &files))
                fail_msg("chan/info of thread %" PRId64 " lacks post_nos or files", no);
            for (size_t k = 0; k < json_object_array_length(post_nos); k++) {
                int64_t pno = json_object_get_int64(json_object_array_get_idx(post_nos, k));
                char id[64];
                snprintf(id, sizeof id, "b%d.%" PRId64, b, pno);
                json_object *post = json_object_new_object();
                json_object_object_add(post, "type", json_object_new_string(pno == no ? "thread" : "post"));
                json_object_object_add(post, "path", NULL);
                json_object_object_add(t.posts, id, post);
            }
            for (size_t k = 0; k < json_object_array_length(files); k++) {
                json_object *file = json_object_array_get_idx(files, k), *fno, *path, *post;
                assert_true(json_object_object_get_ex(file, "no", &fno));
                assert_true(json_object_object_get_ex(file, "path", &path));
                char id[64];
                snprintf(id, sizeof id, "b%d.%" PRId64, b, json_object_get_int64(fno));
                if (!json_object_object_get_ex(t.posts, id, &post))
                    fail_msg("file of %s, not a post of the thread", id);
                json_object_object_add(post, "path", json_object_new_string(json_object_get_string(path)));
            }
            json_object_put(info);
        }
        json_object_put(threads);
    }
}

static const char *post_field(json_object *post, const char *key) {
    json_object *v;
    return json_object_object_get_ex(post, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* --- the expected hashes: the files downloaded, `imgfeed-hasher hash` --- */

static size_t write_file(char *data, size_t size, size_t n, void *arg) { return fwrite(data, size, n, arg); }

static void download(const char *path, const char *dest) {
    char *url = fixture_url(&t.fx, "%s", path);
    FILE *f = fopen(dest, "wb");
    if (!f) fail_msg("cannot create %s: %s", dest, strerror(errno));
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_file);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
    CURLcode rc = curl_easy_perform(easy);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    if (fclose(f) != 0) fail_msg("cannot write %s", dest);
    if (rc != CURLE_OK || status != 200) fail_msg("GET %s: %s, status %ld", url, curl_easy_strerror(rc), status);
    free(url);
}

/* For every post of t.posts with a file and no entry in t.refs yet: download
 * the file and put what `imgfeed-hasher hash` prints for it, as an `_img`
 * entry of _urls[0], into t.refs. */
static void reference_hashes(void) {
    size_t cap = (size_t)json_object_object_length(t.posts) + 8, n = 0;
    const char **argv = xcalloc(cap, sizeof *argv);
    char **ids = xcalloc(cap, sizeof *ids);
    char *binary = xasprintf("%s/hasher/imgfeed-hasher", testenv_binary_dir());
    argv[n++] = binary;
    argv[n++] = "hash";
    argv[n++] = "--log-level";
    argv[n++] = "error";
    size_t first = n;
    json_object_object_foreach(t.posts, id, post) {
        const char *path = post_field(post, "path");
        if (!path || json_object_object_get_ex(t.refs, id, NULL)) continue;
        char *dest = xasprintf("%s/%s.png", t.files_dir, id);
        download(path, dest);
        ids[n] = xstrdup(id);
        argv[n++] = dest;
    }
    argv[n] = NULL;
    if (n > first) {
        proc h = {0};
        proc_start(&h, binary, argv);
        int status = proc_wait(&h);
        if (status != 0) {
            proc_print_log(&h);
            fail_msg("imgfeed-hasher hash exited with %d", status);
        }
        FILE *f = fopen(h.log, "r");
        if (!f) fail_msg("cannot read %s", h.log);
        char line[8192];
        size_t lines = 0;
        while (fgets(line, sizeof line, f)) {
            if (line[0] != '{') continue;
            json_object *o = json_tokener_parse(line), *file;
            if (!o || !json_object_object_get_ex(o, "file", &file)) fail_msg("imgfeed-hasher hash printed %s", line);
            size_t k = first;
            while (k < n && strcmp(argv[k], json_object_get_string(file)) != 0)
                k++;
            if (k == n) fail_msg("imgfeed-hasher hash printed a line for an unknown file: %s", line);
            json_object *entry = json_object_new_object();
            json_object_object_add(entry, "url", json_object_new_int(0));
            json_object_object_foreach(o, key, val) {
                size_t len = strlen(key);
                if (strcmp(key, "file") == 0 || (len > 4 && strcmp(key + len - 4, "_hex") == 0)) continue;
                json_object_object_add(entry, key, json_object_get(val));
            }
            if (json_object_object_get_ex(entry, "error", NULL)) fail_msg("imgfeed-hasher hash failed on %s", line);
            json_object_object_add(t.refs, ids[k], entry);
            json_object_put(o);
            lines++;
        }
        fclose(f);
        if (lines != n - first) fail_msg("imgfeed-hasher hash printed %zu lines for %zu files", lines, n - first);
        proc_release(&h);
    }
    for (size_t k = first; k < n; k++) {
        free((char *)argv[k]);
        free(ids[k]);
    }
    free(binary);
    free(argv);
    free(ids);
}

/* --- the programs --- */

static void start(proc *p, const char *dir, const char *name, const char *const *args) {
    char *program = xasprintf("%s/%s", dir, name);
    proc_start_imgfeed(p, program, t.exchange, args);
    free(program);
}

/* Both publishers run with a small --max-message, so that a thread (about
 * 10 KB of items as the crawler publishes them, more with `_img`) travels in
 * several messages at each step and must still arrive whole, each post once. */
#define MAX_MESSAGE "4KiB"

static void hasher_start(void) {
    static const char *const args[] = {"--allow-net", "127.0.0.0/8", "--threads", "2", "--rps-per-host", "0",
                                       "--max-message", MAX_MESSAGE, NULL};
    start(&t.hasher, "hasher", "imgfeed-hasher", args);
}

static void archiver_start(void) {
    static const char *const args[] = {"--flush-interval", "200ms", NULL};
    start(&t.archiver, "archiver", "imgfeed-archiver", args);
}

/* imgfeed-crawler --once; small batches, so that the crawl publishes (and
 * saves its state) every few threads; a long request timeout, so that a
 * request the fixture holds stays in flight until the test kills the crawler. */
static void crawler_start(void) {
    const char *args[] = {"--once", "--sites",      t.sites_file, "--state-dir",       t.state_dir, "--retries",
                          "1",      "--batch-size", "10",         "--request-timeout", "150s",      "--max-message",
                          MAX_MESSAGE, NULL};
    start(&t.crawler, "crawler", "imgfeed-crawler", args);
}

static void crawler_finish(void) {
    int status = proc_wait(&t.crawler);
    if (status != 0) fail_with_logs("imgfeed-crawler --once exited with %d", status);
}

/* --- the archive --- */

static long count_rows(void) {
    long a = pgtest_count(t.thread_table), b = pgtest_count(t.post_table);
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

/* Wait until the archive holds WANT rows (it can never hold more: the ids
 * are the posts'); a program that exits on its own fails the test. */
static void wait_rows(long want) {
    int64_t deadline = deadline_in(GUARD_MS);
    long n;
    while ((n = count_rows()) < want) {
        proc *daemons[] = {&t.hasher, &t.archiver};
        for (size_t i = 0; i < 2; i++) {
            if (proc_exited(daemons[i])) {
                int status = proc_wait(daemons[i]);
                fail_with_logs("%s exited with %d while the archive held %ld of %ld rows", daemons[i]->name, status, n,
                               want);
            }
        }
        if (past(deadline)) fail_with_logs("the archive holds %ld rows, expected %ld", n, want);
        pause_ms(50);
    }
}

/* Every post of t.posts is exactly one row, in the table of its type; no
 * other row; a post with a file has `_img` = [its expected entry] and its
 * file's URL as _urls[0]; a post without one has `_img` = []. */
static void check_archive(const char *phase) {
    char *sql = xasprintf("SELECT 'thread', id, data->>'_type', data->'_img', data->'_urls'->>0 FROM \"%s\" "
                          "UNION ALL SELECT 'post', id, data->>'_type', data->'_img', data->'_urls'->>0 FROM \"%s\"",
                          t.thread_table, t.post_table);
    PGresult *res = pgtest_query(sql, 0, NULL);
    free(sql);
    json_object *seen = json_object_new_object();
    long with_files = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *table = PQgetvalue(res, r, 0), *id = PQgetvalue(res, r, 1), *type = PQgetvalue(res, r, 2);
        json_object *post;
        if (!json_object_object_get_ex(t.posts, id, &post))
            fail_msg("%s: row %s in %s is no post of the site", phase, id, table);
        if (json_object_object_get_ex(seen, id, NULL)) fail_msg("%s: post %s is a row twice", phase, id);
        json_object_object_add(seen, id, NULL);
        const char *want_type = post_field(post, "type");
        if (strcmp(table, want_type) != 0 || strcmp(type, want_type) != 0)
            fail_msg("%s: post %s is a %s, stored in the %s table with _type %s", phase, id, want_type, table, type);
        json_object *img = json_tokener_parse(PQgetvalue(res, r, 3));
        if (!img || !json_object_is_type(img, json_type_array))
            fail_msg("%s: post %s has _img %s", phase, id, PQgetvalue(res, r, 3));
        const char *path = post_field(post, "path");
        json_object *want = json_object_new_array();
        if (path) {
            json_object *entry;
            if (!json_object_object_get_ex(t.refs, id, &entry)) fail_msg("%s: no reference hashes for %s", phase, id);
            json_object_array_add(want, json_object_get(entry));
            const char *url = PQgetvalue(res, r, 4);
            size_t ul = strlen(url), pl = strlen(path);
            if (ul < pl || strcmp(url + ul - pl, path) != 0)
                fail_msg("%s: post %s has _urls[0] %s, not ...%s", phase, id, url, path);
            with_files++;
        }
        if (!json_object_equal(img, want))
            fail_msg("%s: post %s:\n  _img     %s\n  expected %s", phase, id, json_object_to_json_string(img),
                     json_object_to_json_string(want));
        json_object_put(img);
        json_object_put(want);
    }
    PQclear(res);
    int missing = 0;
    json_object_object_foreach(t.posts, id, post) {
        (void)post;
        if (!json_object_object_get_ex(seen, id, NULL) && missing++ < 10)
            fprintf(stderr, "%s: %s is missing\n", phase, id);
    }
    if (missing) fail_msg("%s: %d posts are missing from the archive", phase, missing);
    fprintf(stderr, "%s: %d posts, each one row; %ld with a file, every _img equal to imgfeed-hasher hash\n", phase,
            json_object_object_length(seen), with_files);
    json_object_put(seen);
}

/* Nothing went to E.dead. */
static void check_no_dead(void) {
    mq_admin *a = mq_admin_open();
    char *dead = xasprintf("%s.dead", t.exchange);
    long n = mq_admin_count(a, dead);
    mq_admin_close(a);
    if (n != 0) fail_with_logs("%s holds %ld messages", dead, n);
    free(dead);
}

/* --- holding work in flight --- */

/* Hits of the fixture fault on exactly PATH (0 once it is gone). */
static long fault_hits(const char *path) {
    json_object *info = fixture_control(&t.fx, "chan/info?site=%s", SITE), *faults;
    long hits = 0;
    if (json_object_object_get_ex(info, "faults", &faults))
        for (size_t i = 0; i < json_object_array_length(faults); i++) {
            json_object *f = json_object_array_get_idx(faults, i), *p, *h;
            if (json_object_object_get_ex(f, "path", &p) && strcmp(json_object_get_string(p), path) == 0 &&
                json_object_object_get_ex(f, "hits", &h))
                hits = json_object_get_int64(h);
        }
    json_object_put(info);
    return hits;
}

static void hold(const char *path) {
    json_object_put(fixture_control(&t.fx, "chan/fault?site=%s&path=%s&delay=%d", SITE, path, HOLD_SECONDS));
}

static void release(const char *path) {
    json_object_put(fixture_control(&t.fx, "chan/fault?site=%s&clear=1&path=%s", SITE, path));
}

/* Wait until some request for PATH is being held. */
static void wait_held(const char *path, const char *who) {
    int64_t deadline = deadline_in(GUARD_MS);
    while (fault_hits(path) < 1) {
        if (past(deadline)) fail_with_logs("%s never asked for %s", who, path);
        pause_ms(20);
    }
}

/* Lock the post table against writes, from a connection of the test's own. */
static void lock_posts(void) {
    t.locker = PQconnectdb(testenv_require("IMGFEED_PG"));
    if (PQstatus(t.locker) != CONNECTION_OK) fail_msg("cannot connect to IMGFEED_PG: %s", PQerrorMessage(t.locker));
    pgtest_exec_on(t.locker, "BEGIN");
    pgtest_exec_on(t.locker, "LOCK TABLE \"%s\" IN EXCLUSIVE MODE", t.post_table);
}

static void unlock_posts(void) {
    pgtest_exec_on(t.locker, "ROLLBACK");
    PQfinish(t.locker);
    t.locker = NULL;
}

/* The archiver's backends waiting for the lock on the post table. */
static const char *const WAITING_SQL = "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                       "WHERE NOT l.granted AND l.relation = quote_ident($1)::regclass "
                                       "AND a.application_name = 'imgfeed-archiver'";

/* Wait until the archiver's batch waits for the lock on the post table:
 * written but not committed, its messages not acknowledged. */
static void wait_archiver_blocked(void) {
    int64_t deadline = deadline_in(GUARD_MS);
    const char *values[] = {t.post_table};
    for (;;) {
        PGresult *res = pgtest_query(WAITING_SQL, 1, values);
        int n = PQntuples(res);
        PQclear(res);
        if (n > 0) return;
        if (past(deadline)) fail_with_logs("the archiver never waited for the lock on %s", t.post_table);
        pause_ms(20);
    }
}

/* The archiver was killed; its backend, still waiting for the lock, would
 * run the rest of the batch's query once the lock is released and commit it
 * without anybody to acknowledge the messages.  End that backend too, as a
 * crash of the archiver's machine would, so that the batch is lost and only
 * the broker's redelivery can bring those rows back. */
static void end_archiver_backend(void) {
    const char *values[] = {t.post_table};
    char *sql = xasprintf("SELECT pg_terminate_backend(pid) FROM (%s) AS w", WAITING_SQL);
    PQclear(pgtest_query(sql, 1, values));
    free(sql);
    int64_t deadline = deadline_in(GUARD_MS);
    for (;;) {
        PGresult *res = pgtest_query(WAITING_SQL, 1, values);
        int n = PQntuples(res);
        PQclear(res);
        if (n == 0) return;
        if (past(deadline)) fail_msg("the killed archiver's backend still waits for the lock on %s", t.post_table);
        pause_ms(20);
    }
}

/* --- the test --- */

static void test_pipeline(void **state) {
    (void)state;
    make_site();
    write_sites();
    load_posts();
    long first_total = json_object_object_length(t.posts);

    /* First phase: one crawl through the running hasher and archiver. */
    archiver_start();
    hasher_start();
    crawler_start();
    crawler_finish();
    wait_rows(first_total);
    reference_hashes();
    check_archive("first crawl");

    /* Second phase: ADD new posts in every thread. */
    for (int b = 0; b < BOARDS; b++) {
        json_object *threads = board_threads(b);
        for (size_t i = 0; i < json_object_array_length(threads); i++)
            json_object_put(fixture_control(&t.fx, "chan/thread?site=%s&board=b%d&no=%" PRId64 "&add=%d", SITE, b,
                                            json_object_get_int64(json_object_array_get_idx(threads, i)), ADD));
        json_object_put(threads);
    }
    load_posts();
    long total = json_object_object_length(t.posts);
    assert_int_equal(total, first_total + BOARDS * THREADS * ADD);

    /* What is held: the file of a new post of b0 (the hasher), a thread in
     * the middle of b1 (the crawler: b0 is published by then, b1 partly),
     * and the post table (the archiver). */
    char *file_path = NULL, *thread_path = NULL;
    json_object_object_foreach(t.posts, id, post) {
        const char *path = post_field(post, "path");
        if (!file_path && path && strncmp(id, "b0.", 3) == 0 && !json_object_object_get_ex(t.refs, id, NULL))
            file_path = xstrdup(path);
    }
    if (!file_path) fail_msg("no new post of b0 has a file");
    /* The crawler reads the changed threads of b1 in threads.json's order,
     * the last bumped first: the reverse of the order of the additions
     * above.  Held at the sixth, it has published (and saved) the first
     * three, --batch-size 10 being 3 threads of ADD posts, and holds the
     * next two in its queue, unpublished. */
    json_object *b1 = board_threads(1);
    thread_path = xasprintf("/%s/b1/thread/%" PRId64 ".json", SITE,
                            json_object_get_int64(json_object_array_get_idx(b1, THREADS - 6)));
    json_object_put(b1);
    hold(file_path);
    hold(thread_path);
    lock_posts();

    crawler_start();

    /* The hasher, waiting for the held picture. */
    wait_held(file_path, "the hasher");
    proc_kill(&t.hasher);
    release(file_path);
    hasher_start();
    fprintf(stderr, "second crawl: hasher killed while downloading %s, %ld rows\n", file_path, count_rows());

    /* The archiver, its batch waiting for the lock. */
    wait_archiver_blocked();
    proc_kill(&t.archiver);
    end_archiver_backend();
    unlock_posts();
    archiver_start();
    fprintf(stderr, "second crawl: archiver killed while writing, %ld rows\n", count_rows());

    /* The crawler, in the middle of b1. */
    wait_held(thread_path, "the crawler");
    long rows_at_kill = count_rows();
    proc_kill(&t.crawler);
    release(thread_path);
    fprintf(stderr, "second crawl: crawler killed while reading %s, %ld rows\n", thread_path, rows_at_kill);
    if (rows_at_kill >= total) fail_msg("the second crawl was complete before the crawler was killed");
    crawler_start();
    crawler_finish();

    wait_rows(total);
    reference_hashes();
    check_archive("second crawl, each program killed once");
    check_no_dead();

    /* Both daemons still stop cleanly. */
    proc_stop(&t.hasher);
    proc_stop(&t.archiver);
    free(file_path);
    free(thread_path);
}

/* --- another kind through the whole pipeline --- */

/* Download URL (its path from PREFIX on, from the fixture) to file N of the
 * files dir, hash it with `imgfeed-hasher hash`, and check that the `_img`
 * entry E holds every field the command printed with the same value. */
static void check_by_command(json_object *e, const char *url, const char *prefix, const char *what, size_t n) {
    const char *path = strstr(url, prefix);
    if (!path) fail_msg("%s: URL %s is not the fixture's %s", what, url, prefix);
    char *dest = xasprintf("%s/c%zu.png", t.files_dir, n);
    download(path, dest);
    char *binary = xasprintf("%s/hasher/imgfeed-hasher", testenv_binary_dir());
    const char *argv[] = {binary, "hash", "--log-level", "error", dest, NULL};
    proc h = {0};
    proc_start(&h, binary, argv);
    if (proc_wait(&h) != 0) fail_msg("imgfeed-hasher hash %s failed", dest);
    FILE *lf = fopen(h.log, "r");
    char line[8192] = "";
    while (lf && fgets(line, sizeof line, lf) && line[0] != '{') {
    }
    if (lf) fclose(lf);
    json_object *ref = json_tokener_parse(line), *mv = NULL;
    if (!ref) fail_msg("imgfeed-hasher hash printed %s", line);
    json_object_object_foreach(ref, key, val) {
        size_t len = strlen(key);
        if (strcmp(key, "file") == 0 || (len > 4 && strcmp(key + len - 4, "_hex") == 0)) continue;
        if (!json_object_object_get_ex(e, key, &mv) ||
            strcmp(json_object_to_json_string(mv), json_object_to_json_string(val)) != 0)
            fail_msg("%s: %s is %s in the archive, %s by the command", what, key,
                     mv ? json_object_to_json_string(mv) : "absent", json_object_to_json_string(val));
    }
    json_object_put(ref);
    proc_release(&h);
    free(binary);
    free(dest);
}

/* Write a sites file of the one site ENTRY (a JSON object), run the three
 * programs on it (the crawler --once) and wait until table <E>_SUFFIX holds
 * WANT rows.  Returns the table's name (the caller frees it). */
static char *crawl_one_site(const char *entry, const char *suffix, long want) {
    FILE *f = fopen(t.sites_file, "w");
    if (!f) fail_msg("cannot write %s", t.sites_file);
    fprintf(f, "{\"user_agent\": \"imgfeed-test/1 (+https://example.invalid/contact)\",\n \"sites\": [%s]}\n", entry);
    fclose(f);
    archiver_start();
    hasher_start();
    crawler_start();
    crawler_finish();
    char *table = xasprintf("%s_%s", t.exchange, suffix);
    int64_t deadline = deadline_in(GUARD_MS);
    while (pgtest_count(table) < want) {
        if (past(deadline)) fail_with_logs("%s holds %ld rows, expected %ld", table, pgtest_count(table), want);
        pause_ms(50);
    }
    return table;
}

/* Nothing dead-lettered; stop the hasher and the archiver. */
static void stop_daemons(void) {
    check_no_dead();
    proc_stop(&t.hasher);
    proc_stop(&t.archiver);
}

/* The string KEY of a fixture's control answer O (the caller frees it). */
static char *control_string(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("the fixture's answer has no %s", key);
    return xstrdup(json_object_get_string(v));
}

#define RSITE "rpipe"
#define RSUBS 40

/* A generated subreddit ends as rows of <E>_rpipe_submission, a table of
 * its own: every submission once, each of its pictures (the first _files
 * URLs, fixture PNGs) hashed as `imgfeed-hasher hash` hashes the file, its
 * links (pages, not pictures) not downloaded. */
static void test_pipeline_reddit(void **state) {
    (void)state;
    json_object *site = fixture_control(&t.fx, "reddit/site?name=%s", RSITE);
    char *api = control_string(site, "api"), *file_url = control_string(site, "file_url");
    json_object_put(site);
    json_object_put(fixture_control(&t.fx, "reddit/sub?site=%s&sub=pics&n=%d&seed=5", RSITE, RSUBS));
    char *entry = xasprintf("{\"name\": \"%s\", \"kind\": \"reddit\", \"api\": \"%s\", \"file_url\": \"%s\", "
                            "\"boards\": [\"pics\"], \"rps\": 200}",
                            RSITE, api, file_url);
    char *table = crawl_one_site(entry, RSITE "_submission", RSUBS);
    free(entry);
    json_object *exp = fixture_control(&t.fx, "reddit/expect?site=%s&sub=pics", RSITE), *items;
    assert_true(json_object_object_get_ex(exp, "items", &items));
    char *sql = xasprintf("SELECT id, data->'_urls', data->'_files', data->'_img' FROM \"%s\" ORDER BY id", table);
    PGresult *res = pgtest_query(sql, 0, NULL);
    assert_int_equal(PQntuples(res), RSUBS);
    size_t pictures = 0, checked = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        json_object *want, *want_urls, *want_files;
        if (!json_object_object_get_ex(items, id, &want)) fail_msg("row %s is no submission of the fixture", id);
        assert_true(json_object_object_get_ex(want, "urls", &want_urls));
        assert_true(json_object_object_get_ex(want, "files", &want_files));
        json_object *urls = json_tokener_parse(PQgetvalue(res, r, 1)), *img = json_tokener_parse(PQgetvalue(res, r, 3));
        int64_t files = atoll(PQgetvalue(res, r, 2));
        assert_int_equal(files, json_object_get_int64(want_files));
        assert_string_equal(json_object_to_json_string(urls), json_object_to_json_string(want_urls));
        /* one entry per picture, in order; nothing for the links */
        if (!img || (int64_t)json_object_array_length(img) != files)
            fail_msg("submission %s: %" PRId64 " pictures, _img %s", id, files, PQgetvalue(res, r, 3));
        for (int64_t k = 0; k < files; k++) {
            json_object *e = json_object_array_get_idx(img, (size_t)k), *url, *sha1;
            assert_true(json_object_object_get_ex(e, "url", &url));
            assert_int_equal(json_object_get_int64(url), k);
            if (json_object_object_get_ex(e, "error", NULL) || !json_object_object_get_ex(e, "sha1", &sha1))
                fail_msg("submission %s: picture %" PRId64 " is %s", id, k, json_object_to_json_string(e));
            pictures++;
            if (checked < 3) { /* a few against the hasher's own command on the same file */
                const char *u = json_object_get_string(json_object_array_get_idx(urls, (size_t)k));
                char *what = xasprintf("submission %s picture %" PRId64, id, k);
                check_by_command(e, u, "/reddit/", what, checked++);
                free(what);
            }
        }
        json_object_put(urls);
        json_object_put(img);
    }
    assert_true(pictures >= RSUBS / 2);
    assert_int_equal(checked, 3);
    PQclear(res);
    free(sql);
    json_object_put(exp);
    stop_daemons();
    free(table);
    free(api);
    free(file_url);
}

#define ISITE "ipipe"
#define IPOOL 12

/* A generated image-API category (nekos_best, one answer of 20 holds the
 * whole pool of 12) ends as rows of <E>_ipipe_image: every image once, with
 * the API's metadata kept, its picture hashed as `imgfeed-hasher hash`
 * hashes the same file. */
static void test_pipeline_imgapi(void **state) {
    (void)state;
    json_object *site = fixture_control(&t.fx, "imgapi/site?name=%s&kind=nekos_best", ISITE);
    char *api = control_string(site, "api");
    json_object_put(site);
    json_object_put(fixture_control(&t.fx, "imgapi/cat?site=%s&cat=neko&n=%d&seed=3", ISITE, IPOOL));
    char *entry = xasprintf("{\"name\": \"%s\", \"kind\": \"nekos_best\", \"api\": \"%s\", "
                            "\"boards\": [\"neko\"], \"amount\": 20, \"rps\": 200}",
                            ISITE, api);
    char *table = crawl_one_site(entry, ISITE "_image", IPOOL);
    free(entry);
    json_object *exp = fixture_control(&t.fx, "imgapi/expect?site=%s&cat=neko", ISITE), *items;
    assert_true(json_object_object_get_ex(exp, "items", &items));
    assert_int_equal(json_object_object_length(items), IPOOL);
    char *sql = xasprintf("SELECT id, data->'_urls'->>0, data->'_files', data->'_img'->0, data->>'_board', "
                          "data->>'artist_name', data->>'source_url' FROM \"%s\" ORDER BY id",
                          table);
    PGresult *res = pgtest_query(sql, 0, NULL);
    assert_int_equal(PQntuples(res), IPOOL);
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        json_object *want;
        if (!json_object_object_get_ex(items, id, &want)) fail_msg("row %s is no image of the fixture", id);
        assert_string_equal(PQgetvalue(res, r, 1), json_object_get_string(want));
        assert_string_equal(PQgetvalue(res, r, 2), "1");
        assert_string_equal(PQgetvalue(res, r, 4), "neko");
        if (strncmp(PQgetvalue(res, r, 5), "artist ", 7) != 0 || strncmp(PQgetvalue(res, r, 6), "https://", 8) != 0)
            fail_msg("image %s lost the API's metadata: artist_name %s, source_url %s", id, PQgetvalue(res, r, 5),
                     PQgetvalue(res, r, 6));
        json_object *e = json_tokener_parse(PQgetvalue(res, r, 3)), *url;
        if (!e || !json_object_object_get_ex(e, "url", &url) || json_object_get_int64(url) != 0 ||
            json_object_object_get_ex(e, "error", NULL) || !json_object_object_get_ex(e, "sha1", NULL))
            fail_msg("image %s: _img[0] is %s", id, PQgetvalue(res, r, 3));
        if (r < 3) {
            char *what = xasprintf("image %s", id);
            check_by_command(e, PQgetvalue(res, r, 1), "/imgapi/", what, (size_t)r);
            free(what);
        }
        json_object_put(e);
    }
    PQclear(res);
    free(sql);
    json_object_put(exp);
    stop_daemons();
    free(table);
    free(api);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_reddit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_imgapi, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
