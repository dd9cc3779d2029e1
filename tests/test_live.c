/* test_live.c -- imgfeed-live against the real broker, through real HTTP.
 *
 * The test publishes items to <E> as the hasher would (with _img) and reads
 * the event streams with libcurl, each viewer in a thread of its own:
 *   - a viewer of 4chan.*.g gets exactly the matching items that have a
 *     hashed picture, in order, with the fields of design.md; a viewer of
 *     "#" gets them all;
 *   - a viewer that reconnects with Last-Event-ID gets what it missed, and a
 *     new one asking for a backlog the newest few;
 *   - a stalled viewer (a socket that never reads) does not delay another,
 *     loses its oldest events (told so when it reads again), and the
 *     program's memory stays bounded;
 *   - bad topics get 400, /files/ serves only the save dir's names;
 *   - SIGTERM with viewers connected exits 0 within seconds;
 *   - the page in headless Chromium shows the pictures of the items
 *     published (served by the fixture server) for its topic only, and an
 *     item whose text holds <img onerror> and <script> shows them as text
 *     and runs nothing; on a phone-sized screen it fits without a sideways
 *     scroll.  IMGFEED_LIVE_SCREENSHOT=FILE (and _PHONE=FILE) also save
 *     screenshots of that page (docs/live.png is one).
 * The program runs with --metrics-listen: its viewers, events sent and
 * dropped and items received, scraped, must be what the test made happen
 * and what /stats says.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <gd.h>
#include <json-c/json.h>

#include "cdp.h"
#include "fixture.h"
#include "mq.h"
#include "mq_admin.h"
#include "proc.h"
#include "sbuf.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 20000
#define SHA1_A "5d6151241dfb5c65cb3f736f22b4cda978cc1cd0"

static char exchange[64];
static char *save_dir;
static proc live;
static mq *pub;
static int port, mport; /* the live view's, and its metrics' */

/* --- the program --- */

/* Start imgfeed-live on a free port with the test's settings, then EXTRA;
 * the hasher's save dir is the test's unless NO_FILES. */
static void start_live_with(const char *const *extra, bool no_files) {
    const char *args[26] = {"--metrics-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--heartbeat",      "300ms",
                            "--viewer-buffer",  "64",          "--replay", "40",          "--viewer-timeout", "30s",
                            "--save-dir",       save_dir};
    size_t n = no_files ? 12 : 14;
    for (size_t i = 0; extra && extra[i] && n < 24; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    proc_start_imgfeed(&live, "live/imgfeed-live", exchange, args);
    proc_wait_log(&live, "serving the live view");
    port = proc_log_port(&live);
    mport = scrape_port(&live);
}

static void start_live(const char *const *extra) { start_live_with(extra, false); }

static int setup(void **state) {
    (void)state;
    static int n;
    snprintf(exchange, sizeof exchange, "t%dlv%d", (int)getpid(), n++);
    save_dir = testenv_tmpdir("test_live");
    pub = mq_admin_connect(exchange, "test_live");
    start_live(NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (live.pid) proc_stop(&live);
    proc_release(&live);
    mq_free(pub);
    mq_admin_delete_topology(exchange, NULL);
    testenv_rmtree(save_dir);
    free(save_dir);
    return 0;
}

/* --- items --- */

/* An item as the hasher publishes it: _img with one hashed picture when
 * IMG, else none at all.  TEXT goes in as 4chan's HTML comment. */
static json_object *item(const char *site, const char *board, const char *type, const char *id, const char *text,
                         bool img) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "no", json_object_new_int(atoi(id)));
    json_object_object_add(o, "time", json_object_new_int(1790000000));
    json_object_object_add(o, "com", json_object_new_string(text));
    json_object_object_add(o, "_id", json_object_new_string(id));
    json_object_object_add(o, "_chan", json_object_new_string(site));
    json_object_object_add(o, "_board", json_object_new_string(board));
    json_object_object_add(o, "_type", json_object_new_string(type));
    json_object *urls = json_object_new_array();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:9/%s/%s.jpg", board, id);
    json_object_array_add(urls, json_object_new_string(url));
    json_object_object_add(o, "_urls", urls);
    json_object_object_add(o, "_files", json_object_new_int(1));
    if (img) {
        json_object *e = json_tokener_parse(
            "{\"url\": 0, \"size\": 109261, \"width\": 601, \"height\": 1024, \"format\": \"jpeg\","
            " \"crc32\": \"e4b7245e\", \"md5\": \"a46897b44d42d955fac6988f548b1b2f\", \"sha1\": \"" SHA1_A "\","
            " \"ahash\": \"A/w/A/A/A/G/e/A/E/A/A/A/\", \"dhash\": \"cY+YqWOaGVDaOdyWGWOUKSOS\","
            " \"phash\": \"jVVSItap1dlSX0zZUmE2ZqZn\", \"whash\": \"Dw8PDw8PDw8=\"}");
        json_object *list = json_object_new_array();
        json_object_array_add(list, e);
        json_object_object_add(o, "_img", list);
    }
    return o;
}

/* Publish ITEMS (an array, taken) as one message of routing key KEY. */
static void publish(const char *key, json_object *items) {
    const char *body = json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN);
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(pub, mq_target_name(pub, MQ_EXCHANGE_ITEMS), &m, 1), MQ_OK);
    json_object_put(items);
}

static void publish_one(const char *key, json_object *it) {
    json_object *a = json_object_new_array();
    json_object_array_add(a, it);
    publish(key, a);
}

/* --- the program's own counts --- */

static size_t body_write(char *data, size_t size, size_t n, void *arg) {
    sbuf_add(arg, data, size * n);
    return size * n;
}

static char *http_get(const char *path, long *status) {
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    sbuf body = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    sbuf_addc(&body, '\0');
    return body.p;
}

static int64_t stat_of(const char *name) {
    long status;
    char *body = http_get("/stats", &status);
    json_object *o = json_tokener_parse(body), *v;
    free(body);
    assert_true(json_object_object_get_ex(o, name, &v));
    int64_t n = json_object_get_int64(v);
    json_object_put(o);
    return n;
}

static void wait_viewers(int64_t n) {
    int64_t end = time_mono_ns() / 1000000 + GUARD_MS;
    while (stat_of("viewers") != n) {
        if (time_mono_ns() / 1000000 > end) fail_msg("%" PRId64 " viewers, not %" PRId64, stat_of("viewers"), n);
        time_sleep_ms(20);
    }
}

/* --- a viewer: an event stream read by libcurl in a thread --- */

typedef struct viewer {
    pthread_t th;
    char url[600];
    char last_id[32]; /* sent as Last-Event-ID when set */
    size_t want;      /* stop after this many item events */
    pthread_mutex_t lock;
    sbuf raw;          /* bytes not yet cut into frames */
    json_object *events; /* [{"id", "event", "data"}] */
    size_t items;
    atomic_bool stop, done;
} viewer;

static void viewer_frame(viewer *v, const char *f, size_t len) {
    json_object *ev = json_object_new_object();
    const char *p = f, *end = f + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *colon = memchr(p, ':', ll);
        if (colon && colon > p) {
            char key[16];
            size_t kl = (size_t)(colon - p) < sizeof key - 1 ? (size_t)(colon - p) : sizeof key - 1;
            memcpy(key, p, kl);
            key[kl] = '\0';
            const char *val = colon + 1 + (colon[1] == ' ');
            json_object_object_add(ev, key, json_object_new_string_len(val, (int)(p + ll - val)));
        }
        p += ll + 1;
    }
    if (json_object_object_length(ev) == 0) {
        json_object_put(ev); /* a comment (": ping") */
        return;
    }
    json_object *kind;
    if (json_object_object_get_ex(ev, "event", &kind) && strcmp(json_object_get_string(kind), "item") == 0) v->items++;
    json_object_array_add(v->events, ev);
}

static size_t viewer_write(char *data, size_t size, size_t n, void *arg) {
    viewer *v = arg;
    pthread_mutex_lock(&v->lock);
    sbuf_add(&v->raw, data, size * n);
    for (;;) {
        char *sep = v->raw.len ? memmem(v->raw.p, v->raw.len, "\n\n", 2) : NULL;
        if (!sep) break;
        size_t fl = (size_t)(sep - v->raw.p);
        viewer_frame(v, v->raw.p, fl);
        memmove(v->raw.p, sep + 2, v->raw.len - fl - 2);
        v->raw.len -= fl + 2;
    }
    bool enough = v->want && v->items >= v->want;
    pthread_mutex_unlock(&v->lock);
    return enough || atomic_load(&v->stop) ? 0 : size * n;
}

static int viewer_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&((viewer *)arg)->stop) ? 1 : 0;
}

static void *viewer_main(void *arg) {
    viewer *v = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char header[64];
    if (v->last_id[0]) {
        snprintf(header, sizeof header, "Last-Event-ID: %s", v->last_id);
        h = curl_slist_append(h, header);
    }
    curl_easy_setopt(c, CURLOPT_URL, v->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, viewer_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, v);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, viewer_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, v);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)GUARD_MS);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    atomic_store(&v->done, true);
    return NULL;
}

static viewer *viewer_open(const char *query, const char *last_id, size_t want) {
    viewer *v = xcalloc(1, sizeof *v);
    snprintf(v->url, sizeof v->url, "http://127.0.0.1:%d/events%s", port, query);
    if (last_id) snprintf(v->last_id, sizeof v->last_id, "%s", last_id);
    v->want = want;
    v->events = json_object_new_array();
    pthread_mutex_init(&v->lock, NULL);
    pthread_create(&v->th, NULL, viewer_main, v);
    return v;
}

/* Wait until V has WANT item events (or its stream ended). */
static void viewer_wait(viewer *v) {
    pthread_join(v->th, NULL);
}

static void viewer_close(viewer *v) {
    atomic_store(&v->stop, true);
    pthread_join(v->th, NULL);
    json_object_put(v->events);
    free(v->raw.p);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* The item events of V, their data parsed: a new array. */
static json_object *viewer_items(viewer *v) {
    json_object *out = json_object_new_array();
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < json_object_array_length(v->events); i++) {
        json_object *e = json_object_array_get_idx(v->events, i), *kind, *data, *id;
        if (!json_object_object_get_ex(e, "event", &kind) || strcmp(json_object_get_string(kind), "item") != 0)
            continue;
        assert_true(json_object_object_get_ex(e, "data", &data));
        assert_true(json_object_object_get_ex(e, "id", &id));
        json_object *d = json_tokener_parse(json_object_get_string(data));
        assert_non_null(d);
        json_object_object_add(d, "_event_id", json_object_get(id));
        json_object_array_add(out, d);
    }
    pthread_mutex_unlock(&v->lock);
    return out;
}

static const char *str(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("no %s in %s", key, json_object_to_json_string(o));
    return json_object_get_string(v);
}

/* The ids of the item events of V, comma-separated, into BUF. */
static const char *ids_of(viewer *v, char *buf, size_t len) {
    json_object *items = viewer_items(v);
    buf[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%s", i ? "," : "", str(json_object_array_get_idx(items, i), "id"));
    }
    json_object_put(items);
    return buf;
}

/* --- tests --- */

/* Exactly the matching items with a hashed picture, in order, with their fields. */
static void test_topics_and_fields(void **state) {
    (void)state;
    viewer *g = viewer_open("?topic=4chan.*.g", NULL, 4), *all = viewer_open("", NULL, 6);
    wait_viewers(2);
    assert_true(scrape_value(mport, "imgfeed_live_viewers") == 2);
    json_object *a = json_object_new_array();
    json_object_array_add(a, item("4chan", "g", "post", "101", "first <b>bold</b> &amp; <br>line", true));
    json_object_array_add(a, item("4chan", "g", "post", "102", "no picture", false));
    json_object_array_add(a, item("4chan", "g", "post", "103", "second", true));
    publish("4chan.post.g", a);
    publish_one("4chan.post.v", item("4chan", "v", "post", "201", "other board", true));
    publish_one("reddit.submission.pics", item("reddit", "pics", "submission", "r1", "a submission", true));
    publish_one("4chan.thread.g", item("4chan", "g", "thread", "104", "a thread", true));
    publish_one("4chan.post.g", item("4chan", "g", "post", "105", "last", true));
    viewer_wait(g);
    viewer_wait(all);
    scrape_expect(mport, "imgfeed_items_received_total", 7);
    scrape_expect(mport, "imgfeed_live_events_sent_total", 4 + 6);
    assert_true(scrape_value(mport, "imgfeed_live_events_dropped_total") == 0);
    char buf[256];
    assert_string_equal(ids_of(g, buf, sizeof buf), "101,103,104,105");
    assert_string_equal(ids_of(all, buf, sizeof buf), "101,103,201,r1,104,105");
    json_object *items = viewer_items(g), *first = json_object_array_get_idx(items, 0), *images, *img, *v;
    assert_string_equal(str(first, "key"), "4chan.post.g");
    assert_string_equal(str(first, "site"), "4chan");
    assert_string_equal(str(first, "board"), "g");
    assert_string_equal(str(first, "type"), "post");
    assert_string_equal(str(first, "text"), "first bold & \nline");
    assert_true(json_object_object_get_ex(first, "time", &v));
    assert_int_equal(json_object_get_int64(v), 1790000000);
    assert_true(json_object_object_get_ex(first, "images", &images));
    assert_int_equal(json_object_array_length(images), 1);
    img = json_object_array_get_idx(images, 0);
    assert_string_equal(str(img, "url"), "http://127.0.0.1:9/g/101.jpg");
    assert_string_equal(str(img, "sha1"), SHA1_A);
    assert_string_equal(str(img, "phash"), "jVVSItap1dlSX0zZUmE2ZqZn");
    assert_string_equal(str(img, "format"), "jpeg");
    assert_string_equal(str(img, "file"), "/files/" SHA1_A ".jpg");
    assert_true(json_object_object_get_ex(img, "width", &v));
    assert_int_equal(json_object_get_int(v), 601);
    assert_true(json_object_object_get_ex(img, "size", &v));
    assert_int_equal(json_object_get_int(v), 109261);
    /* ids grow by one */
    int64_t id0 = atoll(str(first, "_event_id")), id1 = atoll(str(json_object_array_get_idx(items, 1), "_event_id"));
    assert_int_equal(id1, id0 + 1);
    json_object_put(items);
    viewer_close(g);
    viewer_close(all);
}

/* Last-Event-ID resumes after the last event seen; backlog=N sends the newest N. */
static void test_resume_and_backlog(void **state) {
    (void)state;
    viewer *v = viewer_open("?topic=4chan.post.g", NULL, 2);
    wait_viewers(1);
    publish_one("4chan.post.g", item("4chan", "g", "post", "1", "a", true));
    publish_one("4chan.post.g", item("4chan", "g", "post", "2", "b", true));
    viewer_wait(v);
    json_object *items = viewer_items(v);
    char last[32];
    snprintf(last, sizeof last, "%s", str(json_object_array_get_idx(items, 1), "_event_id"));
    json_object_put(items);
    viewer_close(v);
    wait_viewers(0);
    assert_true(scrape_value(mport, "imgfeed_live_viewers") == 0);
    for (int i = 3; i <= 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        publish_one("4chan.post.g", item("4chan", "g", "post", id, "missed", true));
        publish_one("4chan.post.v", item("4chan", "v", "post", id, "not wanted", true));
    }
    time_sleep_ms(300);
    char buf[256];
    v = viewer_open("?topic=4chan.post.g", last, 3);
    viewer_wait(v);
    assert_string_equal(ids_of(v, buf, sizeof buf), "3,4,5");
    viewer_close(v);
    v = viewer_open("?topic=4chan.post.g&backlog=2", NULL, 2);
    viewer_wait(v);
    assert_string_equal(ids_of(v, buf, sizeof buf), "4,5");
    viewer_close(v);
    v = viewer_open("?topic=4chan.post.g&last_event_id=0&backlog=0", NULL, 0); /* no backlog: nothing old */
    wait_viewers(1);
    publish_one("4chan.post.g", item("4chan", "g", "post", "6", "new", true));
    time_sleep_ms(500);
    assert_string_equal(ids_of(v, buf, sizeof buf), "6");
    viewer_close(v);
}

/* A socket that asks for a stream and never reads. */
static int stalled_open(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    return fd;
}

/* Stalled viewers lose their oldest events, never delay the others, and
 * the program's memory stays within its bounds. */
static void test_stalled_viewer(void **state) {
    (void)state;
    enum { N = 6000, STALLED = 20 };
    /* a ring that holds a message's burst (50 events): a viewer that reads loses nothing */
    proc_stop(&live);
    start_live((const char *const[]){"--viewer-buffer", "256", NULL});
    int fds[STALLED];
    for (int i = 0; i < STALLED; i++)
        fds[i] = stalled_open();
    viewer *v = viewer_open("?topic=bulk.%23", NULL, N);
    wait_viewers(STALLED + 1);
    char text[2000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    int64_t t0 = time_mono_ns();
    for (int m = 0; m < N / 50; m++) {
        json_object *a = json_object_new_array();
        for (int i = 0; i < 50; i++) {
            char id[16];
            snprintf(id, sizeof id, "%d", m * 50 + i);
            json_object_array_add(a, item("bulk", "b", "post", id, text, true));
        }
        publish("bulk.post.b", a);
        time_sleep_ms(10); /* 5,000 events a second, in bursts of 50 */
    }
    viewer_wait(v);
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    json_object *items = viewer_items(v);
    if (json_object_array_length(items) != N) {
        proc_print_log(&live);
        fail_msg("%zu events of %d (%zu frames, %zu bytes unparsed: %.200s)", json_object_array_length(items), N,
                 json_object_array_length(v->events), v->raw.len, v->raw.p ? v->raw.p : "");
    }
    for (size_t i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "%zu", i);
        assert_string_equal(str(json_object_array_get_idx(items, i), "id"), want);
    }
    json_object_put(items);
    viewer_close(v);
    fprintf(stderr, "# %d events to a reading viewer beside %d stalled ones in %.2f s\n", N, STALLED, secs);
    assert_true(stat_of("dropped") > 0);
    /* the metrics say what /stats says: all are published, the stalled rings full */
    scrape_expect(mport, "imgfeed_items_received_total", N);
    assert_true(scrape_value(mport, "imgfeed_live_events_dropped_total") == (double)stat_of("dropped"));
    assert_true(scrape_value(mport, "imgfeed_live_events_sent_total") == (double)stat_of("delivered"));
    assert_true(scrape_value(mport, "imgfeed_live_events_sent_total") >= N);
    assert_true(scrape_value(mport, "imgfeed_live_viewers") == (double)stat_of("viewers"));
    long rss = proc_peak_rss_kb(live.pid);
    fprintf(stderr, "# peak RSS %ld kB\n", rss);
    /* 20 stalled rings of 256 events of about 700 bytes and 40 in the replay: a few MB over the start;
     * under AddressSanitizer, its shadow memory and its quarantine of freed blocks (256 MB) come on top */
#ifdef __SANITIZE_ADDRESS__
    const long bound_kb = 640 * 1024;
#else
    const long bound_kb = 64 * 1024;
#endif
    if (rss > bound_kb) fail_msg("peak RSS %ld kB, above %ld kB", rss, bound_kb);
    /* a stalled viewer that reads again is told what it lost */
    char buf[65536];
    sbuf got = {0};
    int64_t end = time_mono_ns() / 1000000 + GUARD_MS;
    while (!(got.len && memmem(got.p, got.len, "event: dropped", 14)) && time_mono_ns() / 1000000 < end) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        sbuf_add(&got, buf, (size_t)n);
    }
    assert_non_null(got.len ? memmem(got.p, got.len, "event: dropped", 14) : NULL);
    free(got.p);
    for (int i = 0; i < STALLED; i++)
        close(fds[i]);
}

/* Topics are checked; /files/ serves the save dir's files and nothing else. */
static void test_bad_requests_and_files(void **state) {
    (void)state;
    static const char *const bad[] = {"/events?topic=a%20b", "/events?topic=%C3%A9", "/events?topic=",
                                      "/events?topic=a&backlog=x", "/events?topic=a/b"};
    long status;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        free(http_get(bad[i], &status));
        if (status != 400) fail_msg("%s: %ld", bad[i], status);
    }
    char path[400] = "/events?topic=";
    memset(path + strlen(path), 'a', 300);
    free(http_get(path, &status));
    assert_int_equal(status, 400);
    /* a saved file, by the hasher's layout */
    char *dir = xasprintf("%s/5d/61", save_dir), *file = xasprintf("%s/" SHA1_A ".jpg", dir);
    char *mk = xasprintf("mkdir -p %s", dir);
    assert_int_equal(system(mk), 0);
    FILE *f = fopen(file, "w");
    fputs("JPEGBYTES", f);
    fclose(f);
    char *body = http_get("/files/" SHA1_A ".jpg", &status);
    assert_int_equal(status, 200);
    assert_string_equal(body, "JPEGBYTES");
    free(body);
    static const char *const refused[] = {"/files/../" SHA1_A ".jpg", "/files/" SHA1_A ".exe",
                                          "/files/5d/61/" SHA1_A ".jpg", "/files/" SHA1_A "0.jpg",
                                          "/files/%2e%2e/etc/passwd"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        free(http_get(refused[i], &status));
        if (status != 404) fail_msg("%s: %ld", refused[i], status);
    }
    body = http_get("/", &status);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "app.js"));
    free(body);
    free(mk);
    free(file);
    free(dir);
}

/* SIGTERM with a reading and a stalled viewer: exit 0 within seconds. */
static void test_sigterm(void **state) {
    (void)state;
    int fd = stalled_open();
    viewer *v = viewer_open("", NULL, 0);
    wait_viewers(2);
    double secs = proc_stop_timed(&live);
    fprintf(stderr, "# stopped in %.2f s\n", secs);
    assert_true(secs < 5);
    viewer_close(v);
    close(fd);
}

/* A picture of 64x64 in colour K, as a PNG file in DIR. */
static void write_png(const char *dir, int k) {
    gdImagePtr im = gdImageCreateTrueColor(64, 64);
    int c = gdImageColorAllocate(im, (k * 67) % 256, (k * 139 + 60) % 256, (k * 29 + 120) % 256);
    gdImageFilledRectangle(im, 0, 0, 63, 63, c);
    gdImageFilledRectangle(im, 8 + k % 24, 8, 40 + k % 16, 40, gdImageColorAllocate(im, 255, 255, 255));
    int size;
    void *png = gdImagePngPtr(im, &size);
    char *path = xasprintf("%s/p%d.png", dir, k);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(png, 1, (size_t)size, f);
    fclose(f);
    free(path);
    gdFree(png);
    gdImageDestroy(im);
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* The page in a real browser: pictures of its topic only, hostile text as text. */
static void test_page_in_chromium(void **state) {
    (void)state;
    enum { G = 24, V = 4 };
    proc_stop(&live);
    start_live_with(NULL, true); /* no save dir: the page shows the pictures from their sites */
    char *pics = testenv_tmpdir("test_live_pics");
    for (int k = 0; k < G + V + 1; k++)
        write_png(pics, k);
    fixture fx;
    fixture_start_with(&fx, &(fixture_options){.files_dir = pics});
    for (int k = 0; k < G + V + 1; k++) {
        bool g = k < G || k == G + V;
        char id[16];
        snprintf(id, sizeof id, "%d", 500 + k);
        /* the hostile one: a raw title (plain text, as reddit's), and a comment whose markup is escaped,
         * as 4chan's HTML carries a post's "<" */
        bool hostile = k == G + V;
        const char *text = hostile ? "&lt;img src=x onerror=&quot;console.log('PWNED')&quot;&gt;"
                                     "&lt;script&gt;console.log('PWNED')&lt;/script&gt; hostile"
                                   : "a post";
        json_object *it = item("4chan", g ? "g" : "v", "post", id, text, true), *urls;
        if (hostile)
            json_object_object_add(it, "title", json_object_new_string("<img src=x onerror=\"console.log('PWNED');"
                                                                       "document.body.dataset.pwned=1\"><b>t</b>"));
        assert_true(json_object_object_get_ex(it, "_urls", &urls));
        char *u = fixture_url(&fx, "/files/p%d.png", k);
        json_object_array_put_idx(urls, 0, json_object_new_string(u));
        free(u);
        publish_one(g ? "4chan.post.g" : "4chan.post.v", it);
    }
    int64_t end = time_mono_ns() / 1000000 + GUARD_MS;
    while (stat_of("events") < G + V + 1 && time_mono_ns() / 1000000 < end)
        time_sleep_ms(50);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?topic=4chan.*.g", port);
    cdp browser;
    cdp_open(&browser, url, 1280, 900);
    /* the backlog fills the grid; then every picture has loaded */
    bool filled = cdp_wait_true(&browser, "document.querySelectorAll('figure.tile').length === 25", GUARD_MS) &&
                  cdp_wait_true(&browser, "[...document.images].filter(i => i.closest('.tile'))"
                                          ".every(i => i.complete && i.naturalWidth === 64)", GUARD_MS);
    char *dom = cdp_dom(&browser);
    if (!filled) {
        json_object *why = cdp_eval(&browser, "JSON.stringify({tiles: document.querySelectorAll('figure.tile').length,"
                                              " conn: document.getElementById('conn').textContent,"
                                              " loaded: [...document.images].slice(0, 3).map(i => i.complete + ':' + i.naturalWidth + ':' + i.src)})");
        fail_msg("the page did not fill: %s; console %s", json_object_get_string(why),
                 json_object_to_json_string(browser.console));
    }
    assert_int_equal(count_of(dom, "<figure class=\"tile"), G + 1);
    assert_int_equal(count_of(dom, "/files/p"), G + 1);
    assert_null(strstr(dom, "/files/p25.png\"")); /* a picture of board v */
    assert_non_null(strstr(dom, "id=\"conn\">live<"));
    /* the hostile text is text: escaped in the DOM, its handlers never ran */
    assert_non_null(strstr(dom, "&lt;script&gt;console.log('PWNED')&lt;/script&gt; hostile"));
    assert_non_null(strstr(dom, "&lt;img src=x onerror=\"console.log('PWNED');document.body.dataset.pwned=1\"&gt;"));
    assert_null(strstr(dom, "<b>t</b>"));
    assert_null(strstr(dom, "data-pwned"));
    assert_null(strstr(dom, "<script>console.log"));
    json_object *pwned = cdp_eval(&browser, "document.body.dataset.pwned === undefined");
    assert_true(json_object_get_boolean(pwned));
    json_object_put(pwned);
    assert_false(cdp_console_has(&browser, "PWNED"));
    /* a click opens the details: all the hashes, the text as text */
    json_object_put(cdp_eval(&browser, "document.querySelector('figure.tile').click()"));
    json_object *shown = cdp_eval(&browser, "!document.getElementById('details').hidden && "
                                            "document.getElementById('d-fields').textContent.includes('" SHA1_A "') && "
                                            "document.getElementById('d-text').textContent.includes('<script>')");
    assert_true(json_object_get_boolean(shown));
    json_object_put(shown);
    json_object_put(cdp_eval(&browser, "document.getElementById('close').click()"));
    const char *shot = getenv("IMGFEED_LIVE_SCREENSHOT");
    if (shot && *shot) cdp_screenshot(&browser, shot);
    free(dom);
    cdp_close(&browser);
    /* a phone-sized screen: the grid fills it without a sideways scroll, the controls fit */
    cdp_open(&browser, url, 390, 844);
    assert_true(cdp_wait_true(&browser, "document.querySelectorAll('figure.tile').length === 25", GUARD_MS));
    json_object *fits = cdp_eval(&browser, "document.documentElement.scrollWidth <= window.innerWidth && "
                                           "document.getElementById('pause').getBoundingClientRect().right <= window.innerWidth");
    assert_true(json_object_get_boolean(fits));
    json_object_put(fits);
    const char *phone = getenv("IMGFEED_LIVE_SCREENSHOT_PHONE");
    if (phone && *phone) cdp_screenshot(&browser, phone);
    cdp_close(&browser);
    /* the browser fetched the pictures from the fixture server */
    json_object *log = fixture_log(&fx, "/files/p");
    assert_true(json_object_array_length(log) >= G);
    json_object_put(log);
    fixture_stop(&fx);
    testenv_rmtree(pics);
    free(pics);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_topics_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_and_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_viewer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_and_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_in_chromium, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
