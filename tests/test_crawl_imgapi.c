/* test_crawl_imgapi.c -- imgfeed-crawler's image-API kinds (nekos_best,
 * waifu_pics, waifu_im, catboys) against the fixture server
 * (tests/support/fixture_imgapi.py) and the real broker.
 *
 * A generated category answers random samples of a pool of images: after
 * enough polls every pool image is published exactly once (checked against
 * the fixture's /expect: _id, _urls, _files, routing key), then the
 * category saturates (the log says so once, and it is asked less often),
 * and when its pool grows it is fresh again.  Then every kind, waifu.pics'
 * exclude lists, the recorded answers byte for byte, kill -9 in the
 * middle, the request rate, and bad answers on one category while the
 * other goes on.
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
    return crawltest_setup("test_crawl_imgapi", 'i');
}

static int teardown(void **state) {
    (void)state;
    return crawltest_teardown();
}

/* --- the fixture's image-API sites --- */

static char *api_base;

static void make_site(const char *name, const char *kind) {
    json_object *o = fixture_control(&ct.fx, "imgapi/site?name=%s&kind=%s", name, kind);
    json_object *v;
    free(api_base);
    assert_true(json_object_object_get_ex(o, "api", &v));
    api_base = xstrdup(json_object_get_string(v));
    json_object_put(o);
}

static void make_cat(const char *site, const char *cat, int n, int seed) {
    json_object_put(fixture_control(&ct.fx, "imgapi/cat?site=%s&cat=%s&n=%d&seed=%d", site, cat, n, seed));
}

static json_object *site_entry(const char *name, const char *kind, const char *const *boards, double rps,
                               const char *poll, int amount) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "api", json_object_new_string(api_base));
    json_object *list = json_object_new_array();
    for (size_t b = 0; boards[b]; b++)
        json_object_array_add(list, json_object_new_string(boards[b]));
    json_object_object_add(o, "boards", list);
    json_object_object_add(o, "rps", json_object_new_double(rps));
    if (poll) json_object_object_add(o, "poll_interval", json_object_new_string(poll));
    if (amount) json_object_object_add(o, "amount", json_object_new_int(amount));
    json_object_object_add(o, "slow_max_s", json_object_new_int(2));
    return o;
}

static void write_one(json_object *entry) {
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, entry);
    crawltest_write_sites(entries);
}

/* Every item of H for SITE/CAT is a pool image with the right fields;
 * returns how many. */
static size_t check_items(const crawltest_harvest *h, const char *site, const char *cat) {
    json_object *exp = fixture_control(&ct.fx, "imgapi/expect?site=%s&cat=%s", site, cat), *items;
    assert_true(json_object_object_get_ex(exp, "items", &items));
    size_t n = 0;
    json_object_object_foreach(h->by_id, id, item) {
        json_object *v, *e;
        assert_true(json_object_object_get_ex(item, "_board", &v));
        if (strcmp(json_object_get_string(v), cat) != 0) continue;
        assert_true(json_object_object_get_ex(item, "_chan", &v));
        if (strcmp(json_object_get_string(v), site) != 0) continue;
        if (!json_object_object_get_ex(items, id, &e)) fail_msg("%s %s: %s is not a pool image", site, cat, id);
        assert_true(json_object_object_get_ex(item, "_type", &v));
        assert_string_equal(json_object_get_string(v), "image");
        assert_true(json_object_object_get_ex(item, "_urls", &v));
        assert_int_equal(json_object_array_length(v), 1);
        assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), json_object_get_string(e));
        assert_true(json_object_object_get_ex(item, "_files", &v));
        assert_int_equal(json_object_get_int(v), 1);
        n++;
    }
    size_t want = json_object_object_length(items);
    json_object_put(exp);
    assert_int_equal(n, want);
    return n;
}

static long cat_key_count(const crawltest_harvest *h, const char *site, const char *cat) {
    char key[128];
    snprintf(key, sizeof key, "%s.image.%s", site, cat);
    return crawltest_key_count(h, key);
}

/* Harvest until SITE/CAT has WANT items or the guard runs out. */
static void harvest_until(crawltest_harvest *h, const char *site, const char *cat, long want) {
    int64_t end = (time_mono_ns() / 1000000) + GUARD_MS;
    while (cat_key_count(h, site, cat) < want && (time_mono_ns() / 1000000) < end)
        crawltest_harvest_take(h, 300);
}

static long requests_of(const char *site, const char *cat) {
    json_object *o = fixture_control(&ct.fx, "imgapi/counts?site=%s", site), *bc, *v;
    long n = 0;
    if (json_object_object_get_ex(o, "by_cat", &bc) && json_object_object_get_ex(bc, cat, &v))
        n = (long)json_object_get_int64(v);
    json_object_put(o);
    return n;
}

/* --- tests --- */

/* Every pool image once, then saturation: said once, fewer requests; the
 * pool grows: fresh again, the new images published once. */
static void test_pool_saturates(void **state) {
    (void)state;
    make_site("nk", "nekos_best");
    make_cat("nk", "neko", 30, 1);
    write_one(site_entry("nk", "nekos_best", (const char *const[]){"neko", NULL}, 50, "50ms", 10));
    crawltest_start(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    harvest_until(&h, "nk", "neko", 30);
    proc_wait_log(&ct.crawler, "saturated");
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(cat_key_count(&h, "nk", "neko"), 30);
    assert_int_equal(h.items, 30);
    assert_int_equal(check_items(&h, "nk", "neko"), 30);
    /* saturated: at most a few requests in 2 s instead of 40 */
    long before = requests_of("nk", "neko");
    sleep(2);
    long during = requests_of("nk", "neko") - before;
    if (during > 6) fail_msg("a saturated category was asked %ld times in 2 s", during);
    assert_int_equal(proc_log_count(&ct.crawler, "saturated"), 1);
    assert_int_equal(proc_log_count(&ct.crawler, "fresh images again"), 0);
    /* 30 more images (the first 30 are the same: an image is its seed, category and number) */
    make_cat("nk", "neko", 60, 1);
    proc_wait_log(&ct.crawler, "nk neko: fresh images again");
    harvest_until(&h, "nk", "neko", 60);
    crawltest_harvest_take(&h, 500);
    assert_int_equal(h.items, 60);
    assert_int_equal(check_items(&h, "nk", "neko"), 60);
    /* the last few new ones may come after another saturation: each said once */
    assert_true(proc_log_count(&ct.crawler, "saturated") >= proc_log_count(&ct.crawler, "fresh images again"));
    proc_stop(&ct.crawler);
    crawltest_harvest_release(&h);
}

/* waifu.pics: POST /many with the urls already published excluded: a pool
 * of 45 is all published in two answers (30, then the other 15); the next
 * answers are empty, which is saturation. */
static void test_many_exclude(void **state) {
    (void)state;
    make_site("wp", "waifu_pics");
    make_cat("wp", "waifu", 45, 2);
    write_one(site_entry("wp", "waifu_pics", (const char *const[]){"waifu", NULL}, 50, "50ms", 0));
    crawltest_start(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    harvest_until(&h, "wp", "waifu", 45);
    proc_wait_log(&ct.crawler, "wp waifu: saturated");
    proc_stop(&ct.crawler);
    crawltest_harvest_take(&h, 500);
    assert_int_equal(h.items, 45);
    assert_int_equal(check_items(&h, "wp", "waifu"), 45);
    json_object *o = fixture_control(&ct.fx, "imgapi/counts?site=wp"), *ex, *list;
    assert_true(json_object_object_get_ex(o, "excludes", &ex));
    assert_true(json_object_object_get_ex(ex, "waifu", &list));
    /* 0 sent first, then the 30 of the first answer, then all 45, 3 times */
    assert_true(json_object_array_length(list) >= 5);
    static const int want[] = {0, 30, 45, 45, 45};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(json_object_get_int(json_object_array_get_idx(list, i)), want[i]);
    json_object_put(o);
    crawltest_harvest_release(&h);
}

/* Each kind: its pool once. */
static void test_kinds(void **state) {
    (void)state;
    static const char *const kinds[] = {"nekos_best", "waifu_pics", "waifu_im", "catboys"};
    json_object *entries = json_object_new_array();
    char *apis[4];
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", k);
        make_site(name, kinds[k]);
        apis[k] = xstrdup(api_base);
        make_cat(name, "cat", 8, 3 + k);
        json_object_array_add(entries, site_entry(name, kinds[k], (const char *const[]){"cat", NULL}, 50, "20ms", 4));
    }
    crawltest_write_sites(entries);
    crawltest_start(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", k);
        harvest_until(&h, name, "cat", 8);
        assert_int_equal(check_items(&h, name, "cat"), 8);
        free(apis[k]);
    }
    crawltest_harvest_take(&h, 500);
    assert_int_equal(h.items, 32);
    proc_stop(&ct.crawler);
    crawltest_harvest_release(&h);
}

/* The recorded answers, byte for byte, into items as the unit test says. */
static void test_recorded(void **state) {
    (void)state;
    make_site("rn", "nekos_best");
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("rn", "nekos_best", (const char *const[]){"recorded", NULL}, 50, NULL, 0));
    make_site("rw", "waifu_im");
    json_object_array_add(entries, site_entry("rw", "waifu_im", (const char *const[]){"recorded", NULL}, 50, NULL, 0));
    crawltest_write_sites(entries);
    crawlmetrics_board mn, mw;
    crawlmetrics_board_init(&mn, "rn", "recorded");
    crawlmetrics_board_init(&mw, "rw", "recorded");
    double n0 = metrics_value(mn.published), w0 = metrics_value(mw.published);
    double n_lag0 = metrics_value(mn.lag), w_lag0 = metrics_value(mw.lag);
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(crawltest_key_count(&h, "rn.image.recorded"), 1);
    assert_int_equal(crawltest_key_count(&h, "rw.image.recorded"), 1);
    /* Its metrics: one image each; no lag: neither API tells when an image
     * appeared (waifu.im's uploaded_at is an old image's upload). */
    assert_int_equal(metrics_value(mn.published) - n0, 1);
    assert_int_equal(metrics_value(mw.published) - w0, 1);
    assert_int_equal(metrics_value(mn.lag) - n_lag0, 0);
    assert_int_equal(metrics_value(mw.lag) - w_lag0, 0);
    json_object *it, *v;
    assert_true(json_object_object_get_ex(h.by_id, "bbffa4e8-dc40-11ed-afa1-0242ac120002.png", &it));
    assert_true(json_object_object_get_ex(it, "artist_name", &v));
    assert_string_equal(json_object_get_string(v), "かえで");
    assert_true(json_object_object_get_ex(h.by_id, "8108", &it));
    assert_true(json_object_object_get_ex(it, "artist", &v));
    crawltest_once(NULL); /* the same answer again: nothing new */
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, 2);
    crawltest_harvest_release(&h);
}

/* kill -9 in the middle, then a restart: every image, none twice beyond a batch. */
static void test_kill9(void **state) {
    (void)state;
    make_site("kl", "nekos_best");
    make_cat("kl", "neko", 300, 5);
    write_one(site_entry("kl", "nekos_best", (const char *const[]){"neko", NULL}, 20, "20ms", 20));
    crawltest_start((const char *const[]){"--batch-size", "10", NULL});
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    harvest_until(&h, "kl", "neko", 100);
    proc_kill(&ct.crawler);
    proc_release(&ct.crawler);
    crawltest_harvest_take(&h, 500);
    size_t first = h.items;
    crawltest_start((const char *const[]){"--batch-size", "10", NULL});
    harvest_until(&h, "kl", "neko", 300);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "kl", "neko"), 300);
    if (h.items > 300 + 20) fail_msg("%zu items for 300 images (%zu before the kill)", h.items, first);
    proc_stop(&ct.crawler);
    crawltest_harvest_release(&h);
}

/* The state file of an older crawler, {"seen": [ids]}: those images are
 * not published again; the file is imported into the journal, then
 * removed. */
static void test_legacy_state(void **state) {
    (void)state;
    make_site("lg", "nekos_best");
    make_cat("lg", "neko", 20, 4);
    json_object *exp = fixture_control(&ct.fx, "imgapi/expect?site=lg&cat=neko"), *items;
    assert_true(json_object_object_get_ex(exp, "items", &items));
    json_object *old = json_object_new_array(), *st = json_object_new_object();
    json_object_object_foreach(items, id, url) {
        (void)url;
        if (json_object_array_length(old) < 8) json_object_array_add(old, json_object_new_string(id));
    }
    json_object_object_add(st, "seen", json_object_get(old));
    char *sdir = xasprintf("%s/lg", ct.state_dir), *path = xasprintf("%s/neko.json", sdir);
    char *journal = xasprintf("%s.seen", path);
    mkdir(ct.state_dir, 0755); /* made by the crawler otherwise */
    assert_int_equal(mkdir(sdir, 0755), 0);
    assert_int_equal(json_object_to_file(path, st), 0);
    json_object_put(st);
    write_one(site_entry("lg", "nekos_best", (const char *const[]){"neko", NULL}, 50, "20ms", 10));
    crawltest_start(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    harvest_until(&h, "lg", "neko", 12);
    proc_wait_log(&ct.crawler, "lg neko: saturated");
    proc_stop(&ct.crawler);
    crawltest_harvest_take(&h, 500);
    assert_int_equal(h.items, 12);
    for (size_t i = 0; i < json_object_array_length(old); i++) {
        const char *oid = json_object_get_string(json_object_array_get_idx(old, i));
        if (json_object_object_get_ex(h.by_id, oid, NULL)) fail_msg("%s, in the old state, published again", oid);
    }
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    FILE *f = fopen(journal, "r");
    assert_non_null(f);
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    assert_int_equal(lines, 20);
    json_object_put(old);
    json_object_put(exp);
    free(journal);
    free(path);
    free(sdir);
    crawltest_harvest_release(&h);
}

/* Bad answers on one category: a log line naming site and board, nothing
 * published from it, the other category goes on. */
static void test_bad(void **state) {
    (void)state;
    make_site("bd", "waifu_im");
    make_cat("bd", "good", 10, 1);
    make_cat("bd", "bad", 10, 2);
    static const char *const faults[] = {"body=html", "body=types", "body=huge", "body=badurl", "status=500",
                                         "status=429&retry_after=1"};
    static const char *const logs[] = {"bd bad: not an answer", "bd bad: 3 of 3", "bd bad: items has 10000",
                                       "bd bad: 1 of 1", "bd bad", "bd bad"};
    /* What each fault adds to the site's metrics: documents refused (not
     * JSON; too many entries), statuses 500 and 429 (--retries 1). */
    static const int refused[] = {1, 0, 1, 0, 0, 0}, s500[] = {0, 0, 0, 0, 2, 0}, s429[] = {0, 0, 0, 0, 0, 2};
    crawlmetrics_site m;
    crawlmetrics_site_init(&m, "bd");
    for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
        json_object_put(fixture_control(&ct.fx, "imgapi/fault?site=bd&cat=bad&%s", faults[f]));
        write_one(site_entry("bd", "waifu_im", (const char *const[]){"bad", "good", NULL}, 50, NULL, 5));
        double refused0 = metrics_value(m.refused), s500_0 = metrics_value(crawlmetrics_status(&m, 500)),
               s429_0 = metrics_value(crawlmetrics_status(&m, 429));
        crawltest_once_here(crawler_main, NULL);
        crawltest_harvest h;
        crawltest_harvest_init(&h);
        crawltest_harvest_take(&h, 500);
        assert_int_equal(cat_key_count(&h, "bd", "bad"), 0);
        if (crawltest_here_log_count(logs[f]) < 1)
            fail_msg("fault %s: no log line \"%s\" in %s", faults[f], logs[f], ct.here_log);
        if (f == 0) assert_true(cat_key_count(&h, "bd", "good") > 0);
        assert_int_equal(metrics_value(m.refused) - refused0, refused[f]);
        assert_int_equal(metrics_value(crawlmetrics_status(&m, 500)) - s500_0, s500[f]);
        assert_int_equal(metrics_value(crawlmetrics_status(&m, 429)) - s429_0, s429[f]);
        crawltest_harvest_release(&h);
    }
}

/* The site's rps is never exceeded (the server's own counts). */
static void test_rate(void **state) {
    (void)state;
    make_site("rt", "waifu_pics");
    make_cat("rt", "a", 100000, 1);
    make_cat("rt", "b", 100000, 2);
    write_one(site_entry("rt", "waifu_pics", (const char *const[]){"a", "b", NULL}, 4, "1ms", 0));
    crawltest_start(NULL);
    sleep(4);
    proc_stop(&ct.crawler);
    json_object *o = fixture_control(&ct.fx, "imgapi/counts?site=rt"), *counts;
    assert_true(json_object_object_get_ex(o, "counts", &counts));
    long total = 0;
    json_object_object_foreach(counts, sec, n) {
        if (json_object_get_int(n) > 4 + 1) fail_msg("second %s: %d requests at rps 4", sec, json_object_get_int(n));
        total += json_object_get_int(n);
    }
    assert_true(total >= 8);
    json_object_put(o);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 500);
    crawltest_harvest_release(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_saturates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_exclude, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(api_base);
    return rc;
}
