/* test_crawl_lynxchan.c -- imgfeed-crawler's lynxchan kind against the
 * fixture server (tests/support/fixture_lynxchan.py) and the real broker.
 *
 * Generated boards give exact checks: the fixture's /expect says which
 * posts exist and what their _type, _urls and _files must be.  A first
 * crawl publishes every post once; a second nothing (catalog 304); new
 * replies, sage replies (postCount changes, lastBump does not) and a
 * deleted thread publish exactly the new posts.  Then the recorded Endchan
 * thread, kill -9 mid-crawl, the request rate, and bad answers.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fixture.h"
#include "mq.h"
#include "mq_admin.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 120000

typedef struct ctx {
    char *exchange;
    char *queue; /* E.test, bound to E.raw with # */
    char *dir;   /* sites file and state */
    char *sites_file;
    char *state_dir;
    fixture fx;
    mq *q;
    proc crawler;
} ctx;

static ctx t;

/* --- setup --- */

static int setup(void **state) {
    static char letter = 'a';
    (void)state;
    memset(&t, 0, sizeof t);
    t.exchange = xasprintf("t%dl%c", (int)getpid(), letter++);
    t.queue = xasprintf("%s.test", t.exchange);
    t.dir = testenv_tmpdir("crawl-lynx");
    t.sites_file = xasprintf("%s/sites.json", t.dir);
    t.state_dir = xasprintf("%s/state", t.dir);
    t.q = mq_admin_connect(t.exchange, "test_crawl_lynxchan");
    mq_admin *a = mq_admin_open();
    mq_admin_declare_queue(a, t.queue, NULL, mq_target_name(t.q, MQ_EXCHANGE_RAW), "#");
    mq_admin_close(a);
    assert_int_equal(mq_consume(t.q, t.queue, 1000), MQ_OK);
    fixture_start(&t.fx);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    proc_release(&t.crawler);
    fixture_stop(&t.fx);
    mq_free(t.q);
    static const char *const extras[] = {"test", NULL};
    mq_admin_delete_topology(t.exchange, extras);
    testenv_rmtree(t.dir);
    free(t.sites_file);
    free(t.state_dir);
    free(t.dir);
    free(t.queue);
    free(t.exchange);
    return 0;
}

static void write_sites(json_object *entries) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "user_agent",
                           json_object_new_string("imgfeed-test/1 (+https://example.invalid/contact)"));
    json_object_object_add(root, "sites", entries);
    assert_int_equal(json_object_to_file_ext(t.sites_file, root, JSON_C_TO_STRING_PRETTY), 0);
    json_object_put(root);
}

/* --- the crawler --- */

static void crawler_start(const char *const *args) {
    const char *argv[33] = {"--sites", t.sites_file, "--state-dir", t.state_dir, "--retries", "1"};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && n < 32; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    proc_start_imgfeed(&t.crawler, "crawler/imgfeed-crawler", t.exchange, argv);
}

/* Run the crawler with --once (and ARGS); it must exit 0. */
static void crawl_once(const char *const *args) {
    const char *argv[32];
    int n = 0;
    argv[n++] = "--once";
    for (size_t i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    crawler_start(argv);
    int status = proc_wait(&t.crawler);
    if (status != 0) {
        proc_print_log(&t.crawler);
        fail_msg("imgfeed-crawler --once exited with %d", status);
    }
}

/* --- what was published --- */

typedef struct harvest {
    json_object *by_id; /* _id -> item (the last copy) */
    json_object *keys;  /* routing key -> items published under it */
    size_t items;       /* items taken, copies included */
    size_t messages;
    size_t longest; /* the longest message body */
} harvest;

static void harvest_init(harvest *h) {
    memset(h, 0, sizeof *h);
    h->by_id = json_object_new_object();
    h->keys = json_object_new_object();
}

static void harvest_release(harvest *h) {
    json_object_put(h->by_id);
    json_object_put(h->keys);
}

/* Take messages from E.test until none comes for QUIET_MS. */
static void harvest_take(harvest *h, int64_t quiet_ms) {
    for (;;) {
        mq_delivery d;
        int rc = mq_next(t.q, &d, quiet_ms);
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
        assert_int_equal(mq_ack(t.q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
}

static long key_count(const harvest *h, const char *key) {
    json_object *v;
    return json_object_object_get_ex(h->keys, key, &v) ? (long)json_object_get_int64(v) : 0;
}

/* --- the fixture's lynxchan sites --- */

static char *api_base;

static void make_site(const char *ctl, const char *name) {
    json_object *o = fixture_control(&t.fx, "lynxchan/%s?name=%s", ctl, name), *v;
    free(api_base);
    assert_true(json_object_object_get_ex(o, "api", &v));
    api_base = xstrdup(json_object_get_string(v));
    json_object_put(o);
}

/* A generated board; returns its first thread's id. */
static int64_t make_board(const char *site, const char *board, int threads, int posts, int seed) {
    json_object *o = fixture_control(&t.fx, "lynxchan/board?site=%s&board=%s&threads=%d&posts=%d&seed=%d", site, board,
                                     threads, posts, seed),
                *v;
    assert_true(json_object_object_get_ex(o, "threads", &v));
    int64_t first = json_object_array_length(v) ? json_object_get_int64(json_object_array_get_idx(v, 0)) : 0;
    json_object_put(o);
    return first;
}

static json_object *site_entry(const char *name, const char *const *boards, double rps) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "kind", json_object_new_string("lynxchan"));
    json_object_object_add(o, "api", json_object_new_string(api_base));
    json_object *list = json_object_new_array();
    for (size_t b = 0; boards[b]; b++)
        json_object_array_add(list, json_object_new_string(boards[b]));
    json_object_object_add(o, "boards", list);
    json_object_object_add(o, "rps", json_object_new_double(rps));
    return o;
}

static void write_one(json_object *entry) {
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, entry);
    write_sites(entries);
}

static long board_key_count(const harvest *h, const char *site, const char *type, const char *board) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s.%s", site, type, board);
    return key_count(h, key);
}

/* Every item of H of SITE's BOARD is one the fixture expects, with its
 * _type, _urls and _files; returns how many. */
static size_t check_items(const harvest *h, const char *site, const char *board) {
    json_object *exp = fixture_control(&t.fx, "lynxchan/expect?site=%s&board=%s", site, board), *items;
    assert_true(json_object_object_get_ex(exp, "items", &items));
    size_t n = 0;
    json_object_object_foreach(h->by_id, id, item) {
        json_object *v, *e, *w;
        assert_true(json_object_object_get_ex(item, "_board", &v));
        if (strcmp(json_object_get_string(v), board) != 0) continue;
        assert_true(json_object_object_get_ex(item, "_chan", &v));
        if (strcmp(json_object_get_string(v), site) != 0) continue;
        if (!json_object_object_get_ex(items, id, &e)) fail_msg("/%s/: %s is not a post of the fixture", board, id);
        assert_true(json_object_object_get_ex(item, "_type", &v));
        assert_true(json_object_object_get_ex(e, "type", &w));
        assert_string_equal(json_object_get_string(v), json_object_get_string(w));
        if (strcmp(json_object_get_string(v), "thread") == 0)
            assert_false(json_object_object_get_ex(item, "posts", NULL));
        assert_true(json_object_object_get_ex(item, "_urls", &v));
        assert_true(json_object_object_get_ex(e, "urls", &w));
        if (!json_object_equal(v, w))
            fail_msg("/%s/ %s: _urls %s, want %s", board, id, json_object_to_json_string(v),
                     json_object_to_json_string(w));
        assert_true(json_object_object_get_ex(item, "_files", &v));
        assert_true(json_object_object_get_ex(e, "files", &w));
        assert_int_equal(json_object_get_int64(v), json_object_get_int64(w));
        n++;
    }
    json_object_put(exp);
    return n;
}

/* --- tests --- */

static void test_generated(void **state) {
    (void)state;
    make_site("site", "lx");
    int64_t a1 = make_board("lx", "a", 5, 10, 1);
    make_board("lx", "b", 3, 20, 2);
    write_one(site_entry("lx", (const char *const[]){"a", "b", NULL}, 100));
    crawl_once(NULL);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 1000);
    assert_int_equal(board_key_count(&h, "lx", "thread", "a"), 5);
    assert_int_equal(board_key_count(&h, "lx", "post", "a"), 45);
    assert_int_equal(board_key_count(&h, "lx", "thread", "b"), 3);
    assert_int_equal(board_key_count(&h, "lx", "post", "b"), 57);
    assert_int_equal(check_items(&h, "lx", "a"), 50);
    assert_int_equal(check_items(&h, "lx", "b"), 60);
    assert_int_equal(h.items, 110);

    crawl_once(NULL); /* nothing new */
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 110);

    /* three replies to one thread, two sage replies to another, one deleted */
    json_object_put(fixture_control(&t.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&add=3", a1));
    json_object_put(fixture_control(&t.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&add=2&sage=1", a1 + 10));
    json_object_put(fixture_control(&t.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&delete=1", a1 + 20));
    crawl_once(NULL);
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 115);
    assert_int_equal(board_key_count(&h, "lx", "post", "a"), 50);
    assert_int_equal(check_items(&h, "lx", "a"), 55);
    crawl_once(NULL);
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 115);
    harvest_release(&h);
}

/* The recorded Endchan thread, byte for byte. */
static void test_recorded(void **state) {
    (void)state;
    make_site("recorded", "rec");
    write_one(site_entry("rec", (const char *const[]){"polru", NULL}, 100));
    crawl_once(NULL);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 1000);
    assert_int_equal(board_key_count(&h, "rec", "thread", "polru"), 1);
    assert_int_equal(board_key_count(&h, "rec", "post", "polru"), 5);
    json_object *item, *v;
    assert_true(json_object_object_get_ex(h.by_id, "polru.867082", &item));
    assert_false(json_object_object_get_ex(item, "posts", NULL));
    assert_true(json_object_object_get_ex(item, "_files", &v));
    assert_int_equal(json_object_get_int64(v), 2);
    assert_true(json_object_object_get_ex(item, "_urls", &v));
    char *want = xasprintf("%s/.media/53781bea8476800b093c909d2f0902d2-imagejpeg.jpg", api_base);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), want);
    free(want);
    assert_true(json_object_object_get_ex(item, "flagData", &v));
    assert_int_equal(json_object_array_length(v), 21);
    assert_true(json_object_object_get_ex(h.by_id, "polru.867934", &item));
    assert_true(json_object_object_get_ex(item, "_files", &v));
    assert_int_equal(json_object_get_int64(v), 1);
    crawl_once(NULL);
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 6);
    harvest_release(&h);
}

/* kill -9 in the middle of the first crawl, start again: every post
 * arrives, duplicates at most a batch and a thread. */
static void test_kill9_resumes(void **state) {
    (void)state;
    make_site("site", "kill");
    make_board("kill", "big", 60, 50, 3);
    write_one(site_entry("kill", (const char *const[]){"big", NULL}, 20));
    crawler_start((const char *const[]){"--once", "--batch-size", "20", NULL});
    harvest h;
    harvest_init(&h);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (json_object_object_length(h.by_id) < 500) {
        if (time_mono_ns() > deadline) fail_msg("the crawler published only %d", json_object_object_length(h.by_id));
        harvest_take(&h, 20);
    }
    proc_kill(&t.crawler);
    proc_release(&t.crawler);
    size_t before = h.items;
    if (before >= 3000) fail_msg("the crawl ended before the kill");
    crawl_once((const char *const[]){"--batch-size", "20", NULL});
    harvest_take(&h, 1000);
    assert_int_equal(json_object_object_length(h.by_id), 3000);
    assert_int_equal(check_items(&h, "kill", "big"), 3000);
    size_t duplicates = h.items - 3000;
    fprintf(stderr, "kill -9 after %zu posts: %zu published twice\n", before, duplicates);
    assert_true(duplicates <= 50 + 20);
    harvest_release(&h);
}

/* The fixture's own per-second counts never pass the site's rps. */
static void test_rate(void **state) {
    (void)state;
    make_site("site", "slow");
    make_board("slow", "a", 5, 4, 4);
    make_board("slow", "b", 5, 4, 5);
    write_one(site_entry("slow", (const char *const[]){"a", "b", NULL}, 2));
    crawl_once(NULL);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 40);
    json_object *c = fixture_control(&t.fx, "lynxchan/counts?site=slow"), *counts, *req;
    assert_true(json_object_object_get_ex(c, "counts", &counts));
    assert_true(json_object_object_get_ex(c, "requests", &req));
    assert_true(json_object_get_int64(req) >= 12);
    json_object_object_foreach(counts, sec, n) {
        if (json_object_get_int64(n) > 2)
            fail_msg("%" PRId64 " requests in second %s at rps 2", json_object_get_int64(n), sec);
    }
    json_object_put(c);
    harvest_release(&h);
}

/* Bad answers: a clear line naming site and board, nothing published
 * wrongly, the other boards go on; 429 with Retry-After is waited for. */
static void test_faults(void **state) {
    (void)state;
    make_site("site", "flt");
    const char *const boards[] = {"html", "types", "t429", "huge", "err500", "half", "badurl", "thr500", "fine", NULL};
    int64_t first[16];
    for (int i = 0; boards[i]; i++)
        first[i] = make_board("flt", boards[i], 3, 5, 10 + i);
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/html/&body=html"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/types/&body=types"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/t429/&status=429&retry_after=1&count=1"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/huge/catalog.json&body=huge&count=1"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/err500/&status=500"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/half/&body=half"));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/badurl/res/&body=badurl"));
    json_object_put(
        fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/thr500/res/%" PRId64 ".json&status=500", first[7]));
    write_one(site_entry("flt", boards, 100));
    crawl_once(NULL);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "flt", "fine"), 15);
    assert_int_equal(check_items(&h, "flt", "t429"), 15);
    assert_int_equal(board_key_count(&h, "flt", "thread", "html") + board_key_count(&h, "flt", "post", "html"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "half") + board_key_count(&h, "flt", "post", "half"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "types") + board_key_count(&h, "flt", "post", "types"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "err500") + board_key_count(&h, "flt", "post", "err500"), 0);
    /* huge: 10,000 copies of one thread: parsed or refused as too complex; that thread once at most */
    long huge = board_key_count(&h, "flt", "thread", "huge") + board_key_count(&h, "flt", "post", "huge");
    assert_true(huge == 5 || (huge == 0 && proc_log_count(&t.crawler, "too complex") > 0));
    /* thr500: the other two threads */
    assert_int_equal(board_key_count(&h, "flt", "thread", "thr500") + board_key_count(&h, "flt", "post", "thr500"), 10);
    /* badurl: every post, no file URL */
    assert_int_equal(board_key_count(&h, "flt", "thread", "badurl") + board_key_count(&h, "flt", "post", "badurl"), 15);
    json_object_object_foreach(h.by_id, id, item) {
        json_object *v;
        assert_true(json_object_object_get_ex(item, "_board", &v));
        if (strcmp(json_object_get_string(v), "badurl") != 0) continue;
        assert_true(json_object_object_get_ex(item, "_files", &v));
        if (json_object_get_int64(v) != 0) fail_msg("%s: _files %" PRId64, id, json_object_get_int64(v));
        assert_true(json_object_object_get_ex(item, "_urls", &v));
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (strstr(json_object_get_string(json_object_array_get_idx(v, i)), "/.media/"))
                fail_msg("%s: a file URL", id);
    }
    assert_true(proc_log_count(&t.crawler, "flt /html/ catalog.json") > 0);
    assert_true(proc_log_count(&t.crawler, "flt /half/ catalog.json") > 0);
    assert_true(proc_log_count(&t.crawler, "flt /types/ catalog.json") > 0);
    assert_true(proc_log_count(&t.crawler, "flt /err500/ catalog.json") > 0);
    assert_true(proc_log_count(&t.crawler, "flt /thr500/ thread") > 0);
    /* the failed thread is asked for again, and published, once the fault is gone */
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/thr500/res/%" PRId64 ".json", first[7]));
    json_object_put(fixture_control(&t.fx, "lynxchan/fault?site=flt&path=/html/"));
    crawl_once(NULL);
    harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "flt", "thr500"), 15);
    assert_int_equal(check_items(&h, "flt", "html"), 15);
    harvest_release(&h);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(api_base);
    return rc;
}
