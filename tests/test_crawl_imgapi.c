/* test_crawl_imgapi.c -- imgfeed-crawler's image-API kinds (nekos_best,
 * waifu_pics, waifu_im, catboys) against the fixture server
 * (tests/support/fixture_imgapi.py) and the real broker.
 *
 * A generated category answers random samples of a pool of images: after
 * enough polls every pool image is published exactly once (checked against
 * the fixture's /expect: _id, _urls, _files, routing key), then the
 * category saturates (the log says so once, and it is asked less often).
 * Then every kind, the recorded answers byte for byte, kill -9 in the
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
    t.exchange = xasprintf("t%di%c", (int)getpid(), letter++);
    t.queue = xasprintf("%s.test", t.exchange);
    t.dir = testenv_tmpdir("crawl-imgapi");
    t.sites_file = xasprintf("%s/sites.json", t.dir);
    t.state_dir = xasprintf("%s/state", t.dir);
    t.q = mq_admin_connect(t.exchange, "test_crawl_imgapi");
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
    json_object_object_add(root, "user_agent", json_object_new_string("imgfeed-test/1 (+https://example.invalid/contact)"));
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
    json_object *by_id;  /* _id -> item (the last copy) */
    json_object *keys;   /* routing key -> items published under it */
    size_t items;        /* items taken, copies included */
    size_t messages;
    size_t longest;      /* the longest message body */
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

/* --- the fixture's image-API sites --- */

static char *api_base;

static void make_site(const char *name, const char *kind) {
    json_object *o = fixture_control(&t.fx, "imgapi/site?name=%s&kind=%s", name, kind);
    json_object *v;
    free(api_base);
    assert_true(json_object_object_get_ex(o, "api", &v));
    api_base = xstrdup(json_object_get_string(v));
    json_object_put(o);
}

static void make_cat(const char *site, const char *cat, int n, int seed) {
    json_object_put(fixture_control(&t.fx, "imgapi/cat?site=%s&cat=%s&n=%d&seed=%d", site, cat, n, seed));
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
    write_sites(entries);
}

/* Every item of H for SITE/CAT is a pool image with the right fields;
 * returns how many. */
static size_t check_items(const harvest *h, const char *site, const char *cat) {
    json_object *exp = fixture_control(&t.fx, "imgapi/expect?site=%s&cat=%s", site, cat), *items;
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

static long cat_key_count(const harvest *h, const char *site, const char *cat) {
    char key[128];
    snprintf(key, sizeof key, "%s.image.%s", site, cat);
    return key_count(h, key);
}

/* Harvest until SITE/CAT has WANT items or the guard runs out. */
static void harvest_until(harvest *h, const char *site, const char *cat, long want) {
    int64_t end = (time_mono_ns() / 1000000) + GUARD_MS;
    while (cat_key_count(h, site, cat) < want && (time_mono_ns() / 1000000) < end)
        harvest_take(h, 300);
}

static long requests_of(const char *site, const char *cat) {
    json_object *o = fixture_control(&t.fx, "imgapi/counts?site=%s", site), *bc, *v;
    long n = 0;
    if (json_object_object_get_ex(o, "by_cat", &bc) && json_object_object_get_ex(bc, cat, &v))
        n = (long)json_object_get_int64(v);
    json_object_put(o);
    return n;
}

/* --- tests --- */

/* Every pool image once, then saturation: said once, fewer requests;
 * a fresh category beside it keeps its rate. */
static void test_pool_saturates(void **state) {
    (void)state;
    make_site("nk", "nekos_best");
    make_cat("nk", "neko", 30, 1);
    write_one(site_entry("nk", "nekos_best", (const char *const[]){"neko", NULL}, 50, "50ms", 10));
    crawler_start(NULL);
    harvest h;
    harvest_init(&h);
    harvest_until(&h, "nk", "neko", 30);
    proc_wait_log(&t.crawler, "saturated");
    harvest_take(&h, 1000);
    assert_int_equal(cat_key_count(&h, "nk", "neko"), 30);
    assert_int_equal(h.items, 30);
    assert_int_equal(check_items(&h, "nk", "neko"), 30);
    /* saturated: at most a few requests in 2 s instead of 40 */
    long before = requests_of("nk", "neko");
    sleep(2);
    long during = requests_of("nk", "neko") - before;
    if (during > 6) fail_msg("a saturated category was asked %ld times in 2 s", during);
    assert_int_equal(proc_log_count(&t.crawler, "saturated"), 1);
    proc_stop(&t.crawler);
    harvest_release(&h);
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
    write_sites(entries);
    crawler_start(NULL);
    harvest h;
    harvest_init(&h);
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", k);
        harvest_until(&h, name, "cat", 8);
        assert_int_equal(check_items(&h, name, "cat"), 8);
        free(apis[k]);
    }
    harvest_take(&h, 500);
    assert_int_equal(h.items, 32);
    proc_stop(&t.crawler);
    harvest_release(&h);
}

/* The recorded answers, byte for byte, into items as the unit test says. */
static void test_recorded(void **state) {
    (void)state;
    make_site("rn", "nekos_best");
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("rn", "nekos_best", (const char *const[]){"recorded", NULL}, 50, NULL, 0));
    make_site("rw", "waifu_im");
    json_object_array_add(entries, site_entry("rw", "waifu_im", (const char *const[]){"recorded", NULL}, 50, NULL, 0));
    write_sites(entries);
    crawl_once(NULL);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 1000);
    assert_int_equal(key_count(&h, "rn.image.recorded"), 1);
    assert_int_equal(key_count(&h, "rw.image.recorded"), 1);
    json_object *it, *v;
    assert_true(json_object_object_get_ex(h.by_id, "bbffa4e8-dc40-11ed-afa1-0242ac120002.png", &it));
    assert_true(json_object_object_get_ex(it, "artist_name", &v));
    assert_string_equal(json_object_get_string(v), "かえで");
    assert_true(json_object_object_get_ex(h.by_id, "8108", &it));
    assert_true(json_object_object_get_ex(it, "artist", &v));
    crawl_once(NULL); /* the same answer again: nothing new */
    harvest_take(&h, 1000);
    assert_int_equal(h.items, 2);
    harvest_release(&h);
}

/* kill -9 in the middle, then a restart: every image, none twice beyond a batch. */
static void test_kill9(void **state) {
    (void)state;
    make_site("kl", "nekos_best");
    make_cat("kl", "neko", 300, 5);
    write_one(site_entry("kl", "nekos_best", (const char *const[]){"neko", NULL}, 20, "20ms", 20));
    crawler_start((const char *const[]){"--batch-size", "10", NULL});
    harvest h;
    harvest_init(&h);
    harvest_until(&h, "kl", "neko", 100);
    proc_kill(&t.crawler);
    proc_release(&t.crawler);
    harvest_take(&h, 500);
    size_t first = h.items;
    crawler_start((const char *const[]){"--batch-size", "10", NULL});
    harvest_until(&h, "kl", "neko", 300);
    harvest_take(&h, 1000);
    assert_int_equal(check_items(&h, "kl", "neko"), 300);
    if (h.items > 300 + 20) fail_msg("%zu items for 300 images (%zu before the kill)", h.items, first);
    proc_stop(&t.crawler);
    harvest_release(&h);
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
    for (size_t f = 0; f < sizeof faults / sizeof faults[0]; f++) {
        json_object_put(fixture_control(&t.fx, "imgapi/fault?site=bd&cat=bad&%s", faults[f]));
        write_one(site_entry("bd", "waifu_im", (const char *const[]){"bad", "good", NULL}, 50, NULL, 5));
        crawl_once(NULL);
        harvest h;
        harvest_init(&h);
        harvest_take(&h, 500);
        assert_int_equal(cat_key_count(&h, "bd", "bad"), 0);
        if (proc_log_count(&t.crawler, logs[f]) < 1) {
            proc_print_log(&t.crawler);
            fail_msg("fault %s: no log line \"%s\"", faults[f], logs[f]);
        }
        if (f == 0) assert_true(cat_key_count(&h, "bd", "good") > 0);
        harvest_release(&h);
        proc_release(&t.crawler);
    }
}

/* The site's rps is never exceeded (the server's own counts). */
static void test_rate(void **state) {
    (void)state;
    make_site("rt", "waifu_pics");
    make_cat("rt", "a", 100000, 1);
    make_cat("rt", "b", 100000, 2);
    write_one(site_entry("rt", "waifu_pics", (const char *const[]){"a", "b", NULL}, 4, "1ms", 0));
    crawler_start(NULL);
    sleep(4);
    proc_stop(&t.crawler);
    json_object *o = fixture_control(&t.fx, "imgapi/counts?site=rt"), *counts;
    assert_true(json_object_object_get_ex(o, "counts", &counts));
    long total = 0;
    json_object_object_foreach(counts, sec, n) {
        if (json_object_get_int(n) > 4 + 1) fail_msg("second %s: %d requests at rps 4", sec, json_object_get_int(n));
        total += json_object_get_int(n);
    }
    assert_true(total >= 8);
    json_object_put(o);
    harvest h;
    harvest_init(&h);
    harvest_take(&h, 500);
    harvest_release(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_saturates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(api_base);
    return rc;
}
