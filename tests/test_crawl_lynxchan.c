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

#include "crawler.h"
#include "crawlmetrics.h"
#include "crawltest.h"
#include "fixture.h"
#include "metrics.h"
#include "mq.h"
#include "mq_admin.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 120000

/* --- setup --- */

static int setup(void **state) {
    (void)state;
    return crawltest_setup("test_crawl_lynxchan", 'l');
}

static int teardown(void **state) {
    (void)state;
    return crawltest_teardown();
}

/* --- the fixture's lynxchan sites --- */

static char *api_base;

static void make_site(const char *ctl, const char *name) {
    json_object *o = fixture_control(&ct.fx, "lynxchan/%s?name=%s", ctl, name), *v;
    free(api_base);
    assert_true(json_object_object_get_ex(o, "api", &v));
    api_base = xstrdup(json_object_get_string(v));
    json_object_put(o);
}

/* A generated board; returns its first thread's id. */
static int64_t make_board(const char *site, const char *board, int threads, int posts, int seed) {
    json_object *o = fixture_control(&ct.fx, "lynxchan/board?site=%s&board=%s&threads=%d&posts=%d&seed=%d", site, board,
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
    crawltest_write_sites(entries);
}

static long board_key_count(const crawltest_harvest *h, const char *site, const char *type, const char *board) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s.%s", site, type, board);
    return crawltest_key_count(h, key);
}

/* Every item of H of SITE's BOARD is one the fixture expects, with its
 * _type, _urls and _files; returns how many. */
static size_t check_items(const crawltest_harvest *h, const char *site, const char *board) {
    json_object *exp = fixture_control(&ct.fx, "lynxchan/expect?site=%s&board=%s", site, board), *items;
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
    crawlmetrics_board ma, mb;
    crawlmetrics_board_init(&ma, "lx", "a");
    crawlmetrics_board_init(&mb, "lx", "b");
    double a0 = metrics_value(ma.published), b0 = metrics_value(mb.published);
    double a_lag0 = metrics_value(ma.lag), b_lag0 = metrics_value(mb.lag);
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(board_key_count(&h, "lx", "thread", "a"), 5);
    assert_int_equal(board_key_count(&h, "lx", "post", "a"), 45);
    assert_int_equal(board_key_count(&h, "lx", "thread", "b"), 3);
    assert_int_equal(board_key_count(&h, "lx", "post", "b"), 57);
    assert_int_equal(check_items(&h, "lx", "a"), 50);
    assert_int_equal(check_items(&h, "lx", "b"), 60);
    assert_int_equal(h.items, 110);
    /* Its metrics: each board's posts, each with its lag (its creation). */
    assert_int_equal(metrics_value(ma.published) - a0, 50);
    assert_int_equal(metrics_value(mb.published) - b0, 60);
    assert_int_equal(metrics_value(ma.lag) - a_lag0, 50);
    assert_int_equal(metrics_value(mb.lag) - b_lag0, 60);

    crawltest_once(NULL); /* nothing new */
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 110);

    /* three replies to one thread, two sage replies to another, one deleted */
    json_object_put(fixture_control(&ct.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&add=3", a1));
    json_object_put(fixture_control(&ct.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&add=2&sage=1", a1 + 10));
    json_object_put(fixture_control(&ct.fx, "lynxchan/thread?site=lx&board=a&no=%" PRId64 "&delete=1", a1 + 20));
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 115);
    assert_int_equal(metrics_value(ma.published) - a0, 55);
    assert_int_equal(metrics_value(mb.published) - b0, 60);
    assert_int_equal(metrics_value(ma.polls_since_publish), 0);
    assert_int_equal(metrics_value(mb.polls_since_publish), 1);
    assert_int_equal(board_key_count(&h, "lx", "post", "a"), 50);
    assert_int_equal(check_items(&h, "lx", "a"), 55);
    crawltest_once(NULL);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 115);
    crawltest_harvest_release(&h);
}

/* The recorded Endchan thread, byte for byte. */
static void test_recorded(void **state) {
    (void)state;
    make_site("recorded", "rec");
    write_one(site_entry("rec", (const char *const[]){"polru", NULL}, 100));
    crawltest_once(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
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
    crawltest_once(NULL);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 6);
    crawltest_harvest_release(&h);
}

/* kill -9 in the middle of the first crawl, start again: every post
 * arrives, duplicates at most a batch and a thread. */
static void test_kill9_resumes(void **state) {
    (void)state;
    make_site("site", "kill");
    make_board("kill", "big", 60, 50, 3);
    write_one(site_entry("kill", (const char *const[]){"big", NULL}, 20));
    crawltest_start((const char *const[]){"--once", "--batch-size", "20", NULL});
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (json_object_object_length(h.by_id) < 500) {
        if (time_mono_ns() > deadline) fail_msg("the crawler published only %d", json_object_object_length(h.by_id));
        crawltest_harvest_take(&h, 20);
    }
    proc_kill(&ct.crawler);
    proc_release(&ct.crawler);
    size_t before = h.items;
    if (before >= 3000) fail_msg("the crawl ended before the kill");
    crawltest_once((const char *const[]){"--batch-size", "20", NULL});
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(json_object_object_length(h.by_id), 3000);
    assert_int_equal(check_items(&h, "kill", "big"), 3000);
    size_t duplicates = h.items - 3000;
    fprintf(stderr, "kill -9 after %zu posts: %zu published twice\n", before, duplicates);
    assert_true(duplicates <= 50 + 20);
    crawltest_harvest_release(&h);
}

/* The fixture's own per-second counts keep to the site's rps
 * (crawltest_check_rate). */
static void test_rate(void **state) {
    (void)state;
    make_site("site", "slow");
    make_board("slow", "a", 5, 4, 4);
    make_board("slow", "b", 5, 4, 5);
    write_one(site_entry("slow", (const char *const[]){"a", "b", NULL}, 2));
    crawltest_once(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 40);
    json_object *c = fixture_control(&ct.fx, "lynxchan/counts?site=slow"), *counts, *req;
    assert_true(json_object_object_get_ex(c, "counts", &counts));
    assert_true(json_object_object_get_ex(c, "requests", &req));
    assert_true(json_object_get_int64(req) >= 12);
    crawltest_check_rate(counts, 2);
    json_object_put(c);
    crawltest_harvest_release(&h);
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
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/html/&body=html"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/types/&body=types"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/t429/&status=429&retry_after=1&count=1"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/huge/catalog.json&body=huge&count=1"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/err500/&status=500"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/half/&body=half"));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/badurl/res/&body=badurl"));
    json_object_put(
        fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/thr500/res/%" PRId64 ".json&status=500", first[7]));
    write_one(site_entry("flt", boards, 100));
    crawlmetrics_site fm;
    crawlmetrics_site_init(&fm, "flt");
    double refused0 = metrics_value(fm.refused), backoffs0 = metrics_value(fm.backoffs);
    double s500 = metrics_value(crawlmetrics_status(&fm, 500)), s429 = metrics_value(crawlmetrics_status(&fm, 429));
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "flt", "fine"), 15);
    assert_int_equal(check_items(&h, "flt", "t429"), 15);
    assert_int_equal(board_key_count(&h, "flt", "thread", "html") + board_key_count(&h, "flt", "post", "html"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "half") + board_key_count(&h, "flt", "post", "half"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "types") + board_key_count(&h, "flt", "post", "types"), 0);
    assert_int_equal(board_key_count(&h, "flt", "thread", "err500") + board_key_count(&h, "flt", "post", "err500"), 0);
    /* huge: 10,000 copies of one thread: parsed or refused as too complex; that thread once at most */
    long huge = board_key_count(&h, "flt", "thread", "huge") + board_key_count(&h, "flt", "post", "huge");
    assert_true(huge == 5 || (huge == 0 && crawltest_here_log_count("too complex") > 0));
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
    assert_true(crawltest_here_log_count("flt /html/ catalog.json") > 0);
    assert_true(crawltest_here_log_count("flt /half/ catalog.json") > 0);
    assert_true(crawltest_here_log_count("flt /types/ catalog.json") > 0);
    assert_true(crawltest_here_log_count("flt /err500/ catalog.json") > 0);
    assert_true(crawltest_here_log_count("flt /thr500/ thread") > 0);
    /* Its metrics: the catalogs of html, half and types (and huge's, when
     * too complex) refused as documents; 500 twice for err500's catalog and
     * twice for thr500's thread (--retries 1), 429 once; each retried once;
     * the answers made no series beyond the boards of the sites file. */
    double refused = metrics_value(fm.refused) - refused0;
    assert_true(refused == 3 || (refused == 4 && huge == 0));
    assert_int_equal(metrics_value(crawlmetrics_status(&fm, 500)) - s500, 4);
    assert_int_equal(metrics_value(crawlmetrics_status(&fm, 429)) - s429, 1);
    assert_int_equal(metrics_value(fm.backoffs) - backoffs0, 3);
    crawltest_series_only("flt", boards);
    /* the failed thread is asked for again, and published, once the fault is gone */
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/thr500/res/%" PRId64 ".json", first[7]));
    json_object_put(fixture_control(&ct.fx, "lynxchan/fault?site=flt&path=/html/"));
    crawltest_once(NULL);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "flt", "thr500"), 15);
    assert_int_equal(check_items(&h, "flt", "html"), 15);
    crawltest_harvest_release(&h);
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
