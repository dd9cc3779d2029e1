/* test_crawler.c -- imgfeed-crawler against the fixture server and the real broker.
 *
 * Each test starts tests/support/fixture_server.py, creates image-board
 * sites on it (generated boards, or the recorded 4chan and lainchan
 * responses), writes a sites file pointing at it, runs the real
 * imgfeed-crawler as a child process (mostly with --once), and reads what it
 * published from a queue of its own bound to E.raw.  The fixture server's
 * log and per-second counts show which requests the crawler made.
 *
 * `test_crawler rate` runs the test that measures the request rate, which
 * ctest runs alone so that no other test's load disturbs the timing.
 *
 * Some crawls run inside the test's process (crawltest_once_here, the
 * program's own crawler_main), so that the crawler's metrics can be read
 * with metrics_value() and held against what the test made happen.
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
    return crawltest_setup("test_crawler", 'c');
}

static int teardown(void **state) {
    (void)state;
    return crawltest_teardown();
}

/* --- the fixture's sites --- */

/* A generated site NAME of KIND with BOARDS boards "b0".."bN" of THREADS
 * threads of POSTS posts. */
static void make_site(const char *name, const char *kind, int boards, int threads, int posts) {
    json_object_put(fixture_control(&ct.fx, "chan/site?name=%s&kind=%s", name, kind));
    for (int b = 0; b < boards; b++)
        json_object_put(
            fixture_control(&ct.fx, "chan/board?site=%s&board=b%d&threads=%d&posts=%d&seed=%d", name, b, threads, posts, b));
}

/* The sites file entry of fixture site NAME (its API under /NAME). */
static json_object *site_entry(const char *name, const char *kind, int boards, double rps) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "kind", json_object_new_string(kind));
    char *api = fixture_url(&ct.fx, "/%s", name);
    json_object_object_add(o, "api", json_object_new_string(api));
    if (strcmp(kind, "4chan") == 0) {
        char *media = fixture_url(&ct.fx, "/%s/media", name);
        json_object_object_add(o, "media", json_object_new_string(media));
        free(media);
    }
    free(api);
    json_object *list = json_object_new_array();
    for (int b = 0; b < boards; b++) {
        char board[16];
        snprintf(board, sizeof board, "b%d", b);
        json_object_array_add(list, json_object_new_string(board));
    }
    json_object_object_add(o, "boards", list);
    json_object_object_add(o, "rps", json_object_new_double(rps));
    return o;
}

/* --- what was published --- */

/* The fixture's requests whose path starts with PREFIX. */
static json_object *requests(const char *prefix) { return fixture_log(&ct.fx, prefix); }

static const char *header_of(json_object *entry, const char *name) {
    json_object *headers, *v;
    if (!json_object_object_get_ex(entry, "headers", &headers)) return NULL;
    json_object_object_foreach(headers, key, val) {
        if (strcasecmp(key, name) == 0) return json_object_get_string(val);
    }
    (void)v;
    return NULL;
}

/* --- the crawler's metrics, as a crawl in this process left them --- */

typedef struct board_figures {
    double published, polls, since_publish, last_publish, lagged;
} board_figures;

static board_figures board_now(const char *site, const char *board) {
    crawlmetrics_board m;
    crawlmetrics_board_init(&m, site, board);
    return (board_figures){metrics_value(m.published), metrics_value(m.polls), metrics_value(m.polls_since_publish),
                           metrics_value(m.last_publish), metrics_value(m.lag)};
}

typedef struct site_figures {
    double requests, refused, backoffs, waits, wait_seconds;
} site_figures;

static site_figures site_now(const char *site) {
    crawlmetrics_site m;
    crawlmetrics_site_init(&m, site);
    return (site_figures){metrics_value(m.request_seconds), metrics_value(m.refused), metrics_value(m.backoffs),
                          metrics_value(m.ratelimit_waits), metrics_value(m.ratelimit_wait_seconds)};
}

/* Responses of SITE counted under STATUS's label. */
static double status_now(const char *site, long status) {
    crawlmetrics_site m;
    crawlmetrics_site_init(&m, site);
    return metrics_value(crawlmetrics_status(&m, status));
}

/* --- tests --- */

/* A crawl publishes every post once, under the right keys, with the _
 * fields and the file URLs; a second crawl with nothing changed sends only
 * conditional requests and publishes nothing; a changed thread publishes
 * its new posts only. */
static void test_crawl_twice_and_change(void **state) {
    (void)state;
    make_site("gen", "4chan", 3, 6, 8);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("gen", "4chan", 3, 100));
    crawltest_write_sites(entries);

    board_figures before[3], now;
    char bname[3][8];
    for (int b = 0; b < 3; b++) {
        snprintf(bname[b], sizeof bname[b], "b%d", b);
        before[b] = board_now("gen", bname[b]);
    }
    site_figures site_before = site_now("gen");
    double ok_before = status_now("gen", 200), not_modified_before = status_now("gen", 304);
    double t0 = (double)time_wall_ms() / 1000;
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(json_object_object_length(h.by_id), 3 * 6 * 8);
    assert_int_equal(h.items, 3 * 6 * 8); /* each once */
    for (int b = 0; b < 3; b++) {
        char key[64];
        snprintf(key, sizeof key, "gen.thread.b%d", b);
        assert_int_equal(crawltest_key_count(&h, key), 6);
        snprintf(key, sizeof key, "gen.post.b%d", b);
        assert_int_equal(crawltest_key_count(&h, key), 6 * 7);
    }
    /* The _ fields, and file URLs that the fixture serves. */
    int64_t a_thread = 0;
    size_t with_files = 0;
    json_object_object_foreach(h.by_id, id, item) {
        json_object *v, *board, *no, *urls;
        assert_true(json_object_object_get_ex(item, "_v", &v) && json_object_get_int(v) == 1);
        assert_true(json_object_object_get_ex(item, "_chan", &v) && strcmp(json_object_get_string(v), "gen") == 0);
        assert_true(json_object_object_get_ex(item, "_board", &board));
        assert_true(json_object_object_get_ex(item, "no", &no));
        char want[64];
        snprintf(want, sizeof want, "%s.%" PRId64, json_object_get_string(board), json_object_get_int64(no));
        assert_string_equal(id, want);
        assert_true(json_object_object_get_ex(item, "_crawled_at", &v) && json_object_get_int64(v) > 1700000000);
        assert_true(json_object_object_get_ex(item, "_urls", &urls));
        json_object *tim, *ext;
        if (json_object_object_get_ex(item, "tim", &tim) && json_object_object_get_ex(item, "ext", &ext)) {
            char *url = fixture_url(&ct.fx, "/gen/media/%s/%" PRId64 "%s", json_object_get_string(board),
                                    json_object_get_int64(tim), json_object_get_string(ext));
            assert_string_equal(json_object_get_string(json_object_array_get_idx(urls, 0)), url);
            free(url);
            with_files++;
        }
        assert_true(json_object_object_get_ex(item, "_type", &v));
        if (strcmp(json_object_get_string(v), "thread") == 0 && strcmp(json_object_get_string(board), "b1") == 0)
            a_thread = json_object_get_int64(no);
    }
    assert_true(with_files > 0);
    assert_true(a_thread > 0);
    /* Its metrics: each board's items, one poll, a publish just now, the
     * lag of every post (each has a time); every request under its status. */
    for (int b = 0; b < 3; b++) {
        now = board_now("gen", bname[b]);
        assert_int_equal(now.published - before[b].published, 6 * 8);
        assert_int_equal(now.polls - before[b].polls, 1);
        assert_int_equal(now.since_publish, 0);
        assert_true(now.last_publish >= t0 - 1 && now.last_publish <= (double)time_wall_ms() / 1000 + 1);
        assert_int_equal(now.lagged - before[b].lagged, 6 * 8);
    }
    json_object *sent = requests("/gen/");
    size_t nsent = json_object_array_length(sent);
    json_object_put(sent);
    assert_int_equal(nsent, 3 + 3 * 6); /* threads.json and every thread, each once */
    assert_int_equal(status_now("gen", 200) - ok_before, nsent);
    site_figures site_after = site_now("gen");
    assert_int_equal(site_after.requests - site_before.requests, nsent);
    assert_int_equal(site_after.refused - site_before.refused, 0);
    assert_int_equal(site_after.backoffs - site_before.backoffs, 0);
    assert_true(site_after.waits - site_before.waits <= nsent);

    /* Nothing changed: every request conditional, nothing published. */
    json_object_put(fixture_control(&ct.fx, "reset"));
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h2;
    crawltest_harvest_init(&h2);
    crawltest_harvest_take(&h2, 500);
    assert_int_equal(h2.items, 0);
    json_object *log = requests("/gen/");
    assert_int_equal(json_object_array_length(log), 3); /* the three threads.json */
    for (size_t i = 0; i < json_object_array_length(log); i++) {
        json_object *e = json_object_array_get_idx(log, i);
        if (!header_of(e, "If-Modified-Since")) fail_msg("request %zu was not conditional", i);
        const char *ua = header_of(e, "User-Agent");
        if (!ua || strcmp(ua, "imgfeed-test/1 (+https://example.invalid/contact)") != 0)
            fail_msg("request %zu sent User-Agent %s, not the sites file's", i, ua ? ua : "(none)");
    }
    json_object_put(log);
    /* A second poll of each board that published nothing; three 304s. */
    for (int b = 0; b < 3; b++) {
        now = board_now("gen", bname[b]);
        assert_int_equal(now.published - before[b].published, 6 * 8);
        assert_int_equal(now.polls - before[b].polls, 2);
        assert_int_equal(now.since_publish, 1);
    }
    assert_int_equal(status_now("gen", 304) - not_modified_before, 3);
    assert_int_equal(status_now("gen", 200) - ok_before, nsent);

    /* A thread gains 3 posts: those 3 only. */
    json_object_put(fixture_control(&ct.fx, "chan/thread?site=gen&board=b1&no=%" PRId64 "&add=3", a_thread));
    crawltest_once_here(crawler_main, NULL);
    crawltest_harvest h3;
    crawltest_harvest_init(&h3);
    crawltest_harvest_take(&h3, 1000);
    assert_int_equal(h3.items, 3);
    assert_int_equal(crawltest_key_count(&h3, "gen.post.b1"), 3);
    for (int b = 0; b < 3; b++) {
        now = board_now("gen", bname[b]);
        assert_int_equal(now.published - before[b].published, 6 * 8 + (b == 1 ? 3 : 0));
        assert_int_equal(now.since_publish, b == 1 ? 0 : 1); /* counted from the start of this run */
        assert_int_equal(now.lagged - before[b].lagged, 6 * 8 + (b == 1 ? 3 : 0));
    }
    json_object_object_foreach(h3.by_id, id3, item3) {
        (void)item3;
        if (json_object_object_get_ex(h.by_id, id3, NULL)) fail_msg("%s was published again", id3);
    }
    crawltest_harvest_release(&h);
    crawltest_harvest_release(&h2);
    crawltest_harvest_release(&h3);
}

/* The recorded 4chan and lainchan boards: every recorded post is published
 * with its file URLs; threads that answer 404 are dropped and not asked
 * again. */
static void test_recorded_boards(void **state) {
    (void)state;
    json_object_put(fixture_control(&ct.fx, "chan/recorded?site=rec&kind=4chan"));
    json_object_put(fixture_control(&ct.fx, "chan/recorded?site=lain&kind=vichan"));
    json_object *entries = json_object_new_array();
    json_object *rec = site_entry("rec", "4chan", 0, 100), *lain = site_entry("lain", "vichan", 0, 100);
    json_object *b = json_object_new_array();
    json_object_array_add(b, json_object_new_string("g"));
    json_object_array_add(b, json_object_new_string("v"));
    json_object_object_add(rec, "boards", b);
    b = json_object_new_array();
    json_object_array_add(b, json_object_new_string("lambda"));
    json_object_object_add(lain, "boards", b);
    json_object_array_add(entries, rec);
    json_object_array_add(entries, lain);
    crawltest_write_sites(entries);
    crawltest_once(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    /* Counted from the recorded files themselves. */
    long want = 0;
    static const char *const files[] = {"4chan/g-thread-39894014-sticky.json", "4chan/g-thread-41693287-filedeleted.json",
                                        "4chan/g-thread-41703336-webm-gif.json", "4chan/g-thread-41704783.json",
                                        "4chan/v-thread-393603295.json", "vichan/lainchan-lambda-thread-30364.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = xasprintf("%s/tests/fixtures/real/%s", testenv_source_dir(), files[i]);
        json_object *root = json_object_from_file(path), *posts;
        if (!root || !json_object_object_get_ex(root, "posts", &posts)) fail_msg("cannot read %s", path);
        want += (long)json_object_array_length(posts);
        json_object_put(root);
        free(path);
    }
    assert_int_equal((long)json_object_object_length(h.by_id), want);
    assert_int_equal((long)h.items, want);
    /* A webm of /g/ and a vichan string tim keep their exact file URLs. */
    json_object *item, *urls;
    assert_true(json_object_object_get_ex(h.by_id, "lambda.30364", &item));
    assert_true(json_object_object_get_ex(item, "_urls", &urls));
    const char *first = json_object_get_string(json_object_array_get_idx(urls, 0));
    if (!strstr(first, "/lain/lambda/src/") || strstr(first, "e+")) fail_msg("vichan file URL %s", first);
    crawltest_harvest_release(&h);

    /* lainchan's recorded threads.json lists threads the fixture does not
     * have: they answered 404 once and are not asked for again. */
    json_object *gone = requests("/lain/lambda/res/");
    size_t first_crawl = json_object_array_length(gone);
    json_object_put(gone);
    assert_true(first_crawl > 1);
    json_object_put(fixture_control(&ct.fx, "reset"));
    crawltest_once(NULL);
    gone = requests("/lain/lambda/res/");
    assert_int_equal(json_object_array_length(gone), 0);
    json_object_put(gone);
}

#define KILL_BOARDS 4

/* kill -9 in the middle of a crawl, start again: every post arrives,
 * duplicates at most one batch. */
static void test_kill9_resumes(void **state) {
    (void)state;
    make_site("kill", "4chan", KILL_BOARDS, 20, 10);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("kill", "4chan", KILL_BOARDS, 40)); /* about 2 s of requests */
    crawltest_write_sites(entries);
    static const char *const args[] = {"--once", "--batch-size", "20", NULL};
    crawltest_start(args);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (json_object_object_length(h.by_id) < 150) {
        if (time_mono_ns() > deadline) fail_msg("the crawler published only %d posts", json_object_object_length(h.by_id));
        crawltest_harvest_take(&h, 20);
    }
    proc_kill(&ct.crawler);
    proc_release(&ct.crawler);
    size_t before = h.items;
    if (before >= (size_t)(KILL_BOARDS * 20 * 10)) fail_msg("the crawl ended before the kill");
    crawltest_once((const char *const[]){"--batch-size", "20", NULL});
    crawltest_harvest_take(&h, 1000);
    int total = KILL_BOARDS * 20 * 10;
    assert_int_equal(json_object_object_length(h.by_id), total);
    size_t duplicates = h.items - (size_t)total;
    fprintf(stderr, "kill -9 after %zu posts: %zu published twice\n", before, duplicates);
    /* At most one batch: --batch-size posts, plus the rest of the thread
     * that filled it (10 posts a thread), per routing key. */
    assert_true(duplicates <= 20 + 10);
    crawltest_harvest_release(&h);
}

/* A board answering 500 or broken JSON is logged; the other boards go on.
 * 429 with Retry-After is honoured. */
static void test_faults(void **state) {
    (void)state;
    make_site("flt", "4chan", 4, 3, 4);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("flt", "4chan", 4, 100));
    crawltest_write_sites(entries);
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=flt&path=/flt/b0/&status=500"));
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=flt&path=/flt/b1/threads.json&broken=1"));
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=flt&path=/flt/b2/threads.json&status=429&retry_after=2&count=1"));
    int64_t t0 = time_mono_ns();
    crawltest_once_here(crawler_main, NULL);
    int64_t took_ms = (time_mono_ns() - t0) / TIME_NS_PER_MS;
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    /* b2 after its 429, and b3: 2 boards × 3 threads × 4 posts. */
    assert_int_equal(crawltest_key_count(&h, "flt.thread.b2") + crawltest_key_count(&h, "flt.post.b2"), 12);
    assert_int_equal(crawltest_key_count(&h, "flt.thread.b3") + crawltest_key_count(&h, "flt.post.b3"), 12);
    assert_int_equal(crawltest_key_count(&h, "flt.post.b0") + crawltest_key_count(&h, "flt.post.b1"), 0);
    assert_true(took_ms >= 2000); /* it waited out the Retry-After before asking b2 again */
    /* Its metrics.  Every board has its series, the failing ones too (made
     * from the sites file before the crawl). */
    size_t len;
    char *text = metrics_render(&len);
    for (int b = 0; b < 4; b++) {
        char line[128];
        snprintf(line, sizeof line, "imgfeed_crawler_polls_total{site=\"flt\",board=\"b%d\"} 1\n", b);
        if (!strstr(text, line)) fail_msg("no %s in:\n%s", line, text);
    }
    if (!strstr(text, "imgfeed_items_published_total{site=\"flt\",board=\"b0\"} 0\n"))
        fail_msg("no series of b0, which published nothing, in:\n%s", text);
    free(text);
    static const int want_items[4] = {0, 0, 12, 12};
    for (int b = 0; b < 4; b++) {
        char board[8];
        snprintf(board, sizeof board, "b%d", b);
        board_figures fb = board_now("flt", board);
        assert_int_equal(fb.published, want_items[b]);
        assert_int_equal(fb.since_publish, want_items[b] ? 0 : 1);
        assert_int_equal(fb.lagged, want_items[b]);
    }
    /* b0: 500 twice (--retries 1); b2: 429 once, then its answers; b1's
     * threads.json refused as broken JSON; two retries, one of them after
     * the 2 s of Retry-After, waited for at the rate limiter. */
    assert_int_equal(status_now("flt", 500), 2);
    assert_int_equal(status_now("flt", 429), 1);
    site_figures fs = site_now("flt");
    assert_int_equal(fs.refused, 1);
    assert_int_equal(fs.backoffs, 2);
    assert_true(fs.waits >= 1);
    assert_true(fs.wait_seconds >= 1.5);
    json_object *sent = requests("/flt/");
    assert_int_equal(fs.requests, json_object_array_length(sent));
    assert_int_equal(status_now("flt", 200) + status_now("flt", 500) + status_now("flt", 429), fs.requests);
    json_object_put(sent);
    /* The log says what failed. */
    FILE *f = fopen(ct.here_log, "r");
    assert_non_null(f);
    char line[2048];
    bool saw500 = false, sawjson = false;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "/b0/") && strstr(line, "500")) saw500 = true;
        if (strstr(line, "/b1/") && strstr(line, "JSON")) sawjson = true;
    }
    fclose(f);
    if (!saw500 || !sawjson)
        fail_msg("the log %s does not name the failures (500: %d, broken JSON: %d)", ct.here_log, saw500, sawjson);
    /* Once repaired, those boards come in whole at the next crawl. */
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=flt&clear=1"));
    crawltest_once(NULL);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(json_object_object_length(h.by_id), 4 * 3 * 4);
    crawltest_harvest_release(&h);
}

/* How many lines of the crawler's log hold TEXT (and TEXT2, when given). */
static int log_lines(const char *text, const char *text2) {
    FILE *f = fopen(ct.crawler.log, "r");
    if (!f) return 0; /* not written yet */
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, text) && (!text2 || strstr(line, text2))) n++;
    fclose(f);
    return n;
}

/* A thread far bigger than --max-message is published in several messages,
 * none over the limit, every post once; its state is saved once all are
 * confirmed, so the next crawl publishes nothing.  Before, a thread was one
 * message whatever its size, which the broker refuses over its limit. */
#define BIG_POSTS 3000
static void test_big_thread_split(void **state) {
    (void)state;
    make_site("big", "4chan", 1, 1, BIG_POSTS);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("big", "4chan", 1, 100));
    crawltest_write_sites(entries);
    static const char *const args[] = {"--max-message", "64KiB", NULL};
    board_figures before = board_now("big", "b0");
    crawltest_once_here(crawler_main, args);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    fprintf(stderr, "%zu posts in %zu messages, the longest %zu bytes\n", h.items, h.messages, h.longest);
    assert_int_equal(h.items, BIG_POSTS);
    /* Published as the messages filled: each post counted once, with its lag. */
    board_figures after = board_now("big", "b0");
    assert_int_equal(after.published - before.published, BIG_POSTS);
    assert_int_equal(after.lagged - before.lagged, BIG_POSTS);
    assert_int_equal(json_object_object_length(h.by_id), BIG_POSTS);
    assert_true(h.messages >= 10); /* about 900 KB of posts */
    assert_true(h.longest <= 65536);
    crawltest_once(args);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(h.items, BIG_POSTS);
    crawltest_harvest_release(&h);
}

/* A post too large for any message is refused for good: logged with the
 * reason, counted, passed over; the board's other posts and the site's
 * other board are published, and the next crawl does not try it again.
 * Recorded 4chan threads (board g: posts of up to 2.3 KB) under a
 * --max-message of 2 KiB. */
static void test_refused_post_others_go_on(void **state) {
    (void)state;
    json_object_put(fixture_control(&ct.fx, "chan/recorded?site=rec"));
    json_object *e = site_entry("rec", "4chan", 0, 100);
    json_object *boards = json_object_new_array();
    json_object_array_add(boards, json_object_new_string("g"));
    json_object_array_add(boards, json_object_new_string("v"));
    json_object_object_add(e, "boards", boards);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, e);
    crawltest_write_sites(entries);
    static const char *const args[] = {"--max-message", "2KiB", NULL};
    board_figures g_before = board_now("rec", "g"), v_before = board_now("rec", "v");
    crawltest_once_here(crawler_main, args);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    crawltest_harvest_take(&h, 1000);
    long g = crawltest_key_count(&h, "rec.thread.g") + crawltest_key_count(&h, "rec.post.g");
    long v = crawltest_key_count(&h, "rec.thread.v") + crawltest_key_count(&h, "rec.post.v");
    int refused = crawltest_here_log_count("refused for good and passed over");
    fprintf(stderr, "g: %ld published, %d refused; v: %ld\n", g, refused, v);
    assert_int_equal(v, 79);
    assert_true(refused >= 1);
    assert_int_equal(g + refused, 1 + 113 + 73 + 25);
    assert_true(h.longest <= 2048);
    assert_int_equal(crawltest_here_log_count(" refused for good, "), 1); /* the closing count */
    /* Only what was published is counted, each with its lag. */
    board_figures g_after = board_now("rec", "g"), v_after = board_now("rec", "v");
    assert_int_equal(g_after.published - g_before.published, g);
    assert_int_equal(g_after.lagged - g_before.lagged, g);
    assert_int_equal(v_after.published - v_before.published, v);
    assert_int_equal(v_after.lagged - v_before.lagged, v);
    crawltest_once(args);
    crawltest_harvest_take(&h, 1000);
    assert_int_equal(log_lines("refused for good and passed over", NULL), 0); /* not tried again */
    assert_int_equal(h.items, (size_t)(g + v));
    crawltest_harvest_release(&h);
}

/* SIGTERM, then the crawler must exit 0 within 5 s. */
static void stop_within_5s(const char *state_name) {
    double took = proc_stop_timed(&ct.crawler);
    fprintf(stderr, "%s: exited 0 after %.2f s\n", state_name, took);
    if (took > 5) fail_msg("%s: the crawler took %.1f s to stop", state_name, took);
}

/* SIGTERM ends the crawler within seconds, exit 0, in every state: while it
 * reconnects to a broker that is not there, and while it waits out a long
 * Retry-After.  Before, it took the stop to drain and then waited on. */
static void test_sigterm_in_every_state(void **state) {
    (void)state;
    make_site("stp", "4chan", 1, 1, 2);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("stp", "4chan", 1, 100));
    crawltest_write_sites(entries);
    /* A broker port nobody listens on: mq_new retries with backoff. */
    char *url = xasprintf("amqp://guest:guest@127.0.0.1:%d", testenv_free_port());
    const char *const dead[] = {"--amqp-url", url, NULL};
    crawltest_start(dead);
    proc_wait_log(&ct.crawler, "retrying in");
    stop_within_5s("reconnecting");
    free(url);
    /* A 429 with Retry-After: 60 on threads.json. */
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=stp&path=/stp/b0/threads.json&status=429&retry_after=60"));
    crawltest_start(NULL);
    proc_wait_log(&ct.crawler, "retry-after");
    stop_within_5s("waiting out Retry-After");
}

/* A board that always fails backs off: the delays grow (up to minutes), the
 * crawler says so once, not at every attempt, and the site's other board
 * goes on at its poll interval. */
static void test_failing_board_backs_off(void **state) {
    (void)state;
    make_site("bko", "4chan", 2, 1, 2);
    json_object *entries = json_object_new_array();
    json_object *e = site_entry("bko", "4chan", 2, 100);
    json_object_object_add(e, "poll_interval", json_object_new_string("300ms"));
    json_object_array_add(entries, e);
    crawltest_write_sites(entries);
    json_object_put(fixture_control(&ct.fx, "chan/fault?site=bko&path=/bko/b0/threads.json&status=500"));
    static const char *const args[] = {"--retries", "0", NULL};
    crawltest_start(args);
    time_sleep_ns(12 * TIME_NS_PER_S);
    proc_stop(&ct.crawler);
    json_object *b0 = requests("/bko/b0/threads.json"), *entries0 = b0;
    json_object *b1 = requests("/bko/b1/threads.json"), *entries1 = b1;
    size_t n0 = json_object_array_length(entries0), n1 = json_object_array_length(entries1);
    double last_gap = 0;
    for (size_t i = 1; i < n0; i++) {
        json_object *a, *b;
        json_object_object_get_ex(json_object_array_get_idx(entries0, i - 1), "mono", &a);
        json_object_object_get_ex(json_object_array_get_idx(entries0, i), "mono", &b);
        double gap = json_object_get_double(b) - json_object_get_double(a);
        fprintf(stderr, "b0 asked again after %.2f s\n", gap);
        assert_true(gap >= last_gap * 0.99);
        assert_true(gap >= 2.4);
        last_gap = gap;
    }
    fprintf(stderr, "in 12 s: b0 (always 500) asked %zu times, b1 %zu times\n", n0, n1);
    assert_true(n0 >= 2 && n0 <= 4);
    assert_true(n1 >= 10);
    assert_int_equal(log_lines("/b0/", "trying again in"), 1); /* said once */
    json_object_put(b0);
    json_object_put(b1);
}

/* Without --once the crawler polls until SIGTERM, then exits 0; a deleted
 * thread (404) is dropped. */
static void test_daemon_sigterm(void **state) {
    (void)state;
    make_site("dmn", "vichan", 2, 3, 5);
    json_object *entries = json_object_new_array();
    json_object *e = site_entry("dmn", "vichan", 2, 100);
    json_object_object_add(e, "poll_interval", json_object_new_string("300ms"));
    json_object_array_add(entries, e);
    crawltest_write_sites(entries);
    crawltest_start(NULL);
    crawltest_harvest h;
    crawltest_harvest_init(&h);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (json_object_object_length(h.by_id) < 2 * 3 * 5) {
        if (time_mono_ns() > deadline) fail_msg("only %d posts", json_object_object_length(h.by_id));
        crawltest_harvest_take(&h, 50);
    }
    /* Posts added while it runs arrive by themselves, at the next poll. */
    int64_t op = 0;
    json_object_object_foreach(h.by_id, id, item) {
        json_object *type, *board, *no;
        (void)id;
        if (json_object_object_get_ex(item, "_type", &type) && strcmp(json_object_get_string(type), "thread") == 0 &&
            json_object_object_get_ex(item, "_board", &board) && strcmp(json_object_get_string(board), "b0") == 0 &&
            json_object_object_get_ex(item, "no", &no))
            op = json_object_get_int64(no);
    }
    assert_true(op > 0);
    json_object_put(fixture_control(&ct.fx, "chan/thread?site=dmn&board=b0&no=%" PRId64 "&add=2", op));
    size_t before = h.items;
    while (h.items < before + 2) {
        if (time_mono_ns() > deadline) fail_msg("the added posts never came");
        crawltest_harvest_take(&h, 50);
    }
    assert_int_equal(json_object_object_length(h.by_id), 2 * 3 * 5 + 2);
    proc_stop(&ct.crawler);
    crawltest_harvest_release(&h);
}

#define RATE_RPS 5

/* The requests to a site never exceed its rps, whatever the number of
 * boards: 6 boards, rps 5. */
static void test_rate(void **state) {
    (void)state;
    make_site("rate", "4chan", 6, 4, 3);
    json_object *entries = json_object_new_array();
    json_object_array_add(entries, site_entry("rate", "4chan", 6, RATE_RPS));
    crawltest_write_sites(entries);
    crawltest_once(NULL);
    json_object *counts = fixture_control(&ct.fx, "counts?prefix=/rate/"), *per_second;
    assert_true(json_object_object_get_ex(counts, "counts", &per_second));
    int total = 0, max = 0;
    json_object_object_foreach(per_second, second, n) {
        (void)second;
        int c = json_object_get_int(n);
        total += c;
        if (c > max) max = c;
    }
    fprintf(stderr, "%d requests, at most %d in one second (rps %d)\n", total, max, RATE_RPS);
    assert_int_equal(total, 6 + 6 * 4); /* threads.json and every thread, once */
    assert_true(max <= RATE_RPS);
    json_object_put(counts);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crawl_twice_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded_boards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_thread_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_post_others_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_in_every_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_board_backs_off, setup, teardown),
    };
    const struct CMUnitTest rate[] = {
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
    };
    if (argc > 1 && strcmp(argv[1], "rate") == 0) return cmocka_run_group_tests(rate, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
