/* test_consumer.c -- imgfeed-hasher the daemon, end to end: the real broker,
 * the fixture server as the image host, the program as a child process.
 *
 * The group setup writes a set of files (real PNG, JPEG and GIF pictures
 * made with libgd, a WebM header, and the bad ones: HTML named .jpg, a
 * truncated JPEG, an empty file, a PNG bomb that claims 30000x30000) and
 * starts one fixture server that serves them under /files/.  Each test uses
 * its own exchange name "t<pid>c<letter>", binds a queue "<E>.test" to the
 * exchange E with "#" to see what the hasher publishes, publishes items to
 * E.raw, runs `imgfeed-hasher --exchange <E> ...` and deletes the topology
 * at the end.  The expected `_img` entry of a file is what
 * `imgfeed-hasher hash` says for the same bytes.
 *
 * Nothing is timed: deadlines only keep a broken hasher from hanging the
 * suite, and the throughput test prints its rate without judging it.  The
 * hasher's log goes to a file that is printed when a test fails.
 *
 * Also here: user names and passwords in crawled URLs are never sent (the
 * fixture server records every request's headers); --max-message cuts the
 * output into several messages and sends an item too large for any of them
 * to E.dead; and --max-memory bounds the hasher's peak RSS while it hashes
 * 40 large pictures at once (test_memory_budget, which measures it with and
 * without the budget and prints both).
 *
 * The metrics: the hasher runs as a child, so its counters are read from
 * its GET /metrics (--metrics-listen 127.0.0.1:0), not metrics_value().
 * test_images_and_failures checks every family against what it made happen
 * (downloads by result, bytes, images hashed, hash failures, items, the
 * gauges back at zero) and that an idle hasher shows every result at 0;
 * test_private_redirect_refused counts the refusals, test_poison the items
 * of the only message that parses, and test_max_message_splits that images
 * hashed and items published count only what reached E, not E.dead.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>
#include <gd.h>
#include <json-c/json.h>

#include "fixture.h"
#include "imghash/imghash.h"
#include "mq.h"
#include "mq_admin.h"
#include "proc.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 180000 /* longest any wait may take before the test fails */
#define RSS_LIMIT_KB (200 * 1024)
#ifdef __SANITIZE_ADDRESS__
#undef RSS_LIMIT_KB
#define RSS_LIMIT_KB (600 * 1024) /* ASan's shadow memory and quarantine */
#endif

/* --- the files --- */

static char *files_dir;
static fixture fx;

static void write_bytes(const char *name, const void *data, size_t len) {
    char *path = xasprintf("%s/%s", files_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s: %s", path, strerror(errno));
    if (len && fwrite(data, 1, len, f) != len) fail_msg("cannot write %s", path);
    fclose(f);
    free(path);
}

static unsigned char *read_bytes(const char *name, size_t *len) {
    char *path = xasprintf("%s/%s", files_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = xmalloc((size_t)size + 1);
    if (size && fread(data, 1, (size_t)size, f) != (size_t)size) fail_msg("cannot read %s", path);
    fclose(f);
    free(path);
    *len = (size_t)size;
    return data;
}

/* A picture with some structure, so that its hashes are not all zero. */
static gdImagePtr make_picture(int w, int h, int seed) {
    gdImagePtr im = gdImageCreateTrueColor(w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            gdImageSetPixel(
                im, x, y,
                gdTrueColor((x * 255 / w + seed * 40) % 256, (y * 255 / h) % 256, ((x / 8 + y / 8 + seed) % 2) * 200));
    return im;
}

static void write_picture(const char *name, int w, int h, int seed, char kind) {
    gdImagePtr im = make_picture(w, h, seed);
    int size = 0;
    void *data = kind == 'p'   ? gdImagePngPtr(im, &size)
                 : kind == 'j' ? gdImageJpegPtr(im, &size, 90)
                               : gdImageGifPtr(im, &size);
    assert_non_null(data);
    write_bytes(name, data, (size_t)size);
    gdFree(data);
    gdImageDestroy(im);
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void png_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t len) {
    unsigned char head[8], tail[4];
    put32(head, len);
    memcpy(head + 4, type, 4);
    fwrite(head, 1, 8, f);
    if (len) fwrite(data, 1, len, f);
    uLong crc = crc32(0, head + 4, 4);
    crc = crc32(crc, data, len);
    put32(tail, (uint32_t)crc);
    fwrite(tail, 1, 4, f);
}

/* A 30000x30000 gray PNG whose IDAT is a valid, small zlib stream of 100
 * rows: a decoder that allocated before checking would need 900 MB. */
static void write_png_bomb(const char *name) {
    char *path = xasprintf("%s/%s", files_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    const uint32_t side = 30000;
    unsigned char ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}; /* 8-bit gray */
    put32(ihdr, side);
    put32(ihdr + 4, side);
    png_chunk(f, "IHDR", ihdr, 13);
    size_t raw_len = 100 * (side + 1);
    unsigned char *raw = xcalloc(raw_len, 1);
    uLongf packed_len = compressBound(raw_len);
    unsigned char *packed = xmalloc(packed_len);
    assert_int_equal(compress2(packed, &packed_len, raw, raw_len, 9), Z_OK);
    png_chunk(f, "IDAT", packed, (uint32_t)packed_len);
    png_chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw);
    free(packed);
    free(path);
}

static int make_files(void **state) {
    (void)state;
    files_dir = testenv_tmpdir("consumer-files");
    write_picture("a.png", 64, 48, 1, 'p');
    write_picture("b.jpg", 80, 60, 2, 'j');
    write_picture("c.gif", 40, 30, 3, 'g');
    size_t len;
    unsigned char *b = read_bytes("b.jpg", &len);
    write_bytes("trunc.jpg", b, len / 2);
    write_bytes("1400000000001.jpg", b, len);
    write_bytes("1400000000002.jpg", b, len);
    free(b);
    static const char html[] = "<!doctype html><html><body>a page, not a picture</body></html>\n";
    write_bytes("html.jpg", html, sizeof html - 1);
    write_bytes("empty.jpg", "", 0);
    static const unsigned char webm[] = {0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81,
                                         0x01, 0x42, 0x82, 0x84, 'w',  'e',  'b',  'm',  0x42, 0x87, 0x81, 0x02};
    write_bytes("v.webm", webm, sizeof webm);
    write_png_bomb("bomb.png");
    /* Files without an extension, as reddit's i.reddituploads.com serves
     * them: pictures, and a page. */
    static const char *const bare[] = {"bare-a", "bare-b", "bare-c", "bare-d", "bare-e", "bare-f", NULL};
    for (size_t i = 0; bare[i]; i++)
        write_picture(bare[i], 50, 40, 4 + (int)i, 'p');
    write_bytes("bare-page", html, sizeof html - 1);
    fixture_options o = {.files_dir = files_dir};
    fixture_start_with(&fx, &o);
    return 0;
}

static int remove_files(void **state) {
    (void)state;
    fixture_stop(&fx);
    int rc = testenv_rmtree(files_dir);
    free(files_dir);
    return rc;
}

/* The `_img` entry for file NAME as _urls[INDEX]: what `imgfeed-hasher hash`
 * prints for the same file, without its "file" and *_hex fields. */
static json_object *expected_entry(const char *name, int index) {
    char *cmd = xasprintf("'%s/hasher/imgfeed-hasher' hash '%s/%s'", testenv_binary_dir(), files_dir, name);
    FILE *p = popen(cmd, "r");
    if (!p) fail_msg("cannot run %s: %s", cmd, strerror(errno));
    char line[4096];
    if (!fgets(line, sizeof line, p)) fail_msg("no output from %s", cmd);
    pclose(p);
    json_object *printed = json_tokener_parse(line);
    if (!printed) fail_msg("%s printed no JSON: %s", cmd, line);
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "url", json_object_new_int(index));
    json_object_object_foreach(printed, key, value) {
        size_t n = strlen(key);
        if (strcmp(key, "file") == 0 || (n > 4 && strcmp(key + n - 4, "_hex") == 0)) continue;
        json_object_object_add(entry, key, json_object_get(value));
    }
    json_object_put(printed);
    free(cmd);
    return entry;
}

static json_object *error_entry(int index, const char *error) {
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "url", json_object_new_int(index));
    json_object_object_add(entry, "error", json_object_new_string(error));
    return entry;
}

static void assert_json_equal(json_object *actual, json_object *expected, const char *what) {
    if (!json_object_equal(actual, expected))
        fail_msg("%s:\n  got      %s\n  expected %s", what, json_object_to_json_string(actual),
                 json_object_to_json_string(expected));
}

static bool has_error(json_object *entry) { return json_object_object_get_ex(entry, "error", NULL); }

/* --- the hasher as a child process --- */

/* Start imgfeed-hasher --exchange E with ARGS (NULL-terminated). */
static void hasher_start(proc *h, const char *exchange, const char *const *args) {
    const char *argv[33] = {"--rps-per-host", "0"};
    size_t n = 2;
    for (size_t i = 0; args && args[i] && n < 32; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    proc_start_imgfeed(h, "hasher/imgfeed-hasher", exchange, argv);
}

/* --- the hasher's metrics --- */

/* SAMPLE of the hasher on PORT must be WANT, a gauge as well as a counter
 * (scrape_expect waits for counters only).  Waited for: the test sees a
 * message as soon as the broker routes it, the hasher counts it once the
 * confirm comes back, a moment later. */
static void assert_metric(int port, const char *sample, double want) {
    int64_t deadline = time_mono_ns() + 10000 * TIME_NS_PER_MS;
    double got = -1;
    for (;;) {
        got = scrape_value(port, sample);
        if (got == want) return;
        if (time_mono_ns() > deadline) break;
        time_sleep_ms(50);
    }
    fail_msg("%s is %.17g, expected %.17g", sample, got, want);
}

static off_t file_size(const char *name) {
    char *path = xasprintf("%s/%s", files_dir, name);
    struct stat st;
    if (stat(path, &st) != 0) fail_msg("cannot stat %s: %s", path, strerror(errno));
    free(path);
    return st.st_size;
}

/* --- the broker side of a test --- */

typedef struct ctx {
    char *exchange;
    mq *q; /* publishes to E.raw, consumes E.test */
    proc hasher;
} ctx;

static ctx t;

static int setup_exchange(void **state) {
    static char letter = 'a';
    (void)state;
    memset(&t, 0, sizeof t);
    t.exchange = xasprintf("t%dc%c", (int)getpid(), letter++);
    t.q = mq_admin_connect(t.exchange, "test_consumer");
    char *queue = xasprintf("%s.test", t.exchange);
    mq_admin *a = mq_admin_open();
    mq_admin_declare_queue(a, queue, NULL, t.exchange, "#");
    mq_admin_close(a);
    assert_int_equal(mq_consume(t.q, queue, 1000), MQ_OK);
    free(queue);
    return 0;
}

static int teardown_exchange(void **state) {
    (void)state;
    proc_kill_all();
    proc_release(&t.hasher);
    mq_free(t.q);
    static const char *const extras[] = {"test", NULL};
    mq_admin_delete_topology(t.exchange, extras);
    free(t.exchange);
    return 0;
}

static void publish_json(mq *q, const char *key, json_object *items) {
    const char *body = json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN);
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), &m, 1), MQ_OK);
}

static void publish_text(mq *q, const char *key, const char *body) {
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(q, mq_target_name(q, MQ_EXCHANGE_RAW), &m, 1), MQ_OK);
}

/* Take messages from E.test until BY_ID (a JSON object used as a map from
 * _id to the last item seen) holds WANT ids.  Returns the messages taken. */
static size_t collect(json_object *by_id, size_t want, const char *routing_key) {
    size_t messages = 0;
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while ((size_t)json_object_object_length(by_id) < want) {
        int64_t left = (deadline - time_mono_ns()) / TIME_NS_PER_MS;
        mq_delivery d;
        int rc = left > 0 ? mq_next(t.q, &d, left) : MQ_TIMEOUT;
        if (rc != MQ_OK) {
            if (t.hasher.log) proc_print_log(&t.hasher);
            fail_msg("only %d of %zu items arrived: %s", json_object_object_length(by_id), want, mq_status_text(rc));
        }
        if (routing_key) assert_string_equal(d.routing_key, routing_key);
        json_object *items = json_tokener_parse(d.body);
        if (!items || !json_object_is_type(items, json_type_array)) fail_msg("hasher published %s", d.body);
        for (size_t i = 0; i < json_object_array_length(items); i++) {
            json_object *item = json_object_array_get_idx(items, i), *id;
            assert_true(json_object_object_get_ex(item, "_id", &id));
            json_object_object_add(by_id, json_object_get_string(id), json_object_get(item));
        }
        json_object_put(items);
        int acked = mq_ack(t.q, d.tag, false);
        assert_true(acked == MQ_OK || acked == MQ_STALE); /* stale after a broker restart: it comes again */
        mq_delivery_release(&d);
        messages++;
    }
    return messages;
}

static json_object *img_of(json_object *by_id, const char *id) {
    json_object *item, *img;
    if (!json_object_object_get_ex(by_id, id, &item)) fail_msg("item %s did not arrive", id);
    if (!json_object_object_get_ex(item, "_img", &img)) fail_msg("item %s has no _img", id);
    return img;
}

static json_object *urls_of(const char *const *urls) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; urls[i]; i++)
        json_object_array_add(a, json_object_new_string(urls[i]));
    return a;
}

static json_object *item_with(const char *id, json_object *urls) {
    json_object *item = json_object_new_object();
    json_object_object_add(item, "_id", json_object_new_string(id));
    json_object_object_add(item, "_v", json_object_new_int(1));
    if (urls) json_object_object_add(item, "_urls", urls);
    return item;
}

/* --- the tests --- */

/* Every kind of file in one item: good ones hashed exactly as `hash` does,
 * every bad one an error entry, the other fields untouched, the site's md5
 * checked, and the memory of the process bounded after all that. */
static void test_images_and_failures(void **state) {
    (void)state;
    char *u[16];
    u[0] = fixture_url(&fx, "/files/a.png");
    u[1] = fixture_url(&fx, "/files/b.jpg");
    u[2] = fixture_url(&fx, "/files/c.gif");
    u[3] = fixture_url(&fx, "/status/404/x.jpg");
    u[4] = fixture_url(&fx, "/slow/s.jpg?delay=30");
    u[5] = fixture_url(&fx, "/files/html.jpg");
    u[6] = fixture_url(&fx, "/files/trunc.jpg");
    u[7] = fixture_url(&fx, "/files/empty.jpg");
    u[8] = fixture_url(&fx, "/files/bomb.png");
    u[9] = fixture_url(&fx, "/huge/h.jpg?key=h");
    u[10] = xstrdup("https://example.invalid/thread/123"); /* a link, not downloaded */
    u[11] = fixture_url(&fx, "/files/a.png?size=large#top");
    u[12] = fixture_url(&fx, "/files/v.webm");
    u[13] = fixture_url(&fx, "/endless/e.jpg?key=e"); /* read up to --max-bytes (8 MiB here), then cut */
    u[14] = NULL;
    json_object *items = json_object_new_array();
    json_object *p1 = item_with("p1", urls_of((const char *const *)u));
    json_object_object_add(p1, "com", json_object_new_string("h\xc3\xa9llo <b>world</b> \\ \"quoted\""));
    json_object_object_add(p1, "ratio", json_object_new_double(1.5));
    json_object_object_add(p1, "big", json_object_new_int64(1400000000000123LL));
    json_object *nested = json_tokener_parse("{\"a\":[1,2,{\"b\":null}],\"t\":true}");
    json_object_object_add(p1, "nested", nested);
    json_object_array_add(items, p1);

    /* 4chan's md5: base64 of the raw digest of the file _urls[0] = tim + ext. */
    size_t len;
    unsigned char *b = read_bytes("b.jpg", &len);
    ih_checksums sums;
    ih_checksum_compute(b, len, &sums);
    free(b);
    char md5[32];
    ih_checksum_base64(sums.md5, 16, md5);
    char *good = fixture_url(&fx, "/files/1400000000001.jpg");
    json_object *p2 = item_with("p2", urls_of((const char *const[]){good, NULL}));
    json_object_object_add(p2, "tim", json_object_new_int64(1400000000001LL));
    json_object_object_add(p2, "ext", json_object_new_string(".jpg"));
    json_object_object_add(p2, "md5", json_object_new_string(md5));
    json_object_array_add(items, p2);
    char *bad = fixture_url(&fx, "/files/1400000000002.jpg");
    json_object *p3 = item_with("p3", urls_of((const char *const[]){bad, NULL}));
    json_object_object_add(p3, "tim", json_object_new_int64(1400000000002LL));
    json_object_object_add(p3, "ext", json_object_new_string(".jpg"));
    json_object_object_add(p3, "md5", json_object_new_string("AAAAAAAAAAAAAAAAAAAAAA=="));
    json_object_array_add(items, p3);
    json_object_array_add(items, item_with("p4", NULL));

    /* --max-bytes 8MiB: the endless body must reach the limit well within the
     * 1 s timeout, also under the sanitizers on a busy machine (64 MiB did not always) */
    static const char *const args[] = {"--allow-private", "--download-timeout", "1s", "--download-retries", "1",
                                       "--threads", "2", "--max-bytes", "8MiB", "--metrics-listen", "127.0.0.1:0",
                                       NULL};
    hasher_start(&t.hasher, t.exchange, args);
    /* Idle, it lists every family, each result at 0: once it consumes (its
     * metrics port is served from the start, while the families are still
     * being registered). */
    proc_wait_log(&t.hasher, "consuming queue");
    int port = scrape_port(&t.hasher);
    static const char *const results[] = {
        "ok",      "http_error",     "timeout",      "too_large", "refused_address", "network_error",
        "bad_url", "redirect_error", "rate_limited", NULL};
    char *idle = scrape_get(port);
    for (size_t i = 0; results[i]; i++) {
        char sample[96];
        double v = -1;
        snprintf(sample, sizeof sample, "imgfeed_hasher_downloads_total{result=\"%s\"}", results[i]);
        if (!scrape_find(idle, sample, &v) || v != 0) fail_msg("an idle hasher shows no %s 0", sample);
    }
    static const char *const zero[] = {"imgfeed_items_received_total",        "imgfeed_items_published_total",
                                       "imgfeed_hasher_download_bytes_total", "imgfeed_hasher_download_seconds_count",
                                       "imgfeed_hasher_images_hashed_total",  "imgfeed_hasher_hash_failures_total",
                                       "imgfeed_hasher_hash_seconds_count",   "imgfeed_hasher_images_in_flight",
                                       "imgfeed_hasher_bytes_in_flight",      NULL};
    for (size_t i = 0; zero[i]; i++) {
        double v = -1;
        if (!scrape_find(idle, zero[i], &v) || v != 0) fail_msg("an idle hasher shows no %s 0", zero[i]);
    }
    free(idle);
    publish_json(t.q, "site.post.g", items);
    json_object *by_id = json_object_new_object();
    assert_int_equal(collect(by_id, 4, "site.post.g"), 1); /* one message in, one out */

    long rss = proc_peak_rss_kb(t.hasher.pid);
    fprintf(stderr, "peak RSS of imgfeed-hasher after the bad files: %ld kB\n", rss);
    assert_true(rss > 0 && rss < RSS_LIMIT_KB);

    json_object *expected = json_object_new_array();
    static const char *const names[] = {"a.png",     "b.jpg",    "c.gif", NULL, NULL,    "html.jpg", "trunc.jpg",
                                        "empty.jpg", "bomb.png", NULL,    NULL, "a.png", "v.webm",   NULL};
    for (int i = 0; i <= 13; i++) {
        if (i == 3) json_object_array_add(expected, error_entry(3, "http 404"));
        if (i == 4) json_object_array_add(expected, error_entry(4, "timeout"));
        if (i == 9) json_object_array_add(expected, error_entry(9, "too large"));
        if (i == 13) json_object_array_add(expected, error_entry(13, "too large"));
        if (names[i]) json_object_array_add(expected, expected_entry(names[i], i));
    }
    json_object *img = img_of(by_id, "p1");
    assert_json_equal(img, expected, "_img of p1");
    for (int i = 0; i < 3; i++)
        assert_false(has_error(json_object_array_get_idx(img, (size_t)i)));
    for (int i = 3; i <= 9; i++) /* 404, timeout, html, truncated, empty, bomb, huge */
        assert_true(has_error(json_object_array_get_idx(img, (size_t)i)));
    json_object_put(expected);

    /* Every field of the source is kept. */
    json_object *out, *copy = NULL;
    assert_true(json_object_object_get_ex(by_id, "p1", &out));
    assert_int_equal(json_object_deep_copy(out, &copy, NULL), 0);
    json_object_object_del(copy, "_img");
    assert_json_equal(copy, p1, "item p1 without _img");
    json_object_put(copy);

    img = img_of(by_id, "p2");
    assert_int_equal(json_object_array_length(img), 1);
    json_object *want = expected_entry("1400000000001.jpg", 0);
    assert_json_equal(json_object_array_get_idx(img, 0), want, "_img of p2");
    json_object_put(want);
    img = img_of(by_id, "p3");
    want = expected_entry("1400000000002.jpg", 0);
    json_object_object_add(want, "error", json_object_new_string("md5 mismatch"));
    assert_json_equal(json_object_array_get_idx(img, 0), want, "_img of p3");
    json_object_put(want);
    assert_int_equal(json_object_array_length(img_of(by_id, "p4")), 0);

    /* What the metrics say of it: 15 downloads (a.png twice, b, c, the
     * seven other files of p1 and the two of p2 and p3 downloaded; a 404, a
     * timeout, two too large), 6 images with hashes (webm is checksummed
     * only), 4 files not hashable (html, truncated, empty, bomb). */
    assert_metric(port, "imgfeed_items_received_total", 4);
    assert_metric(port, "imgfeed_items_published_total", 4);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"ok\"}", 11);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"http_error\"}", 1);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"timeout\"}", 1);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"too_large\"}", 2);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"network_error\"}", 0);
    assert_metric(port, "imgfeed_hasher_download_seconds_count", 15);
    static const char *const downloaded[] = {"a.png", "a.png", "b.jpg", "c.gif", "html.jpg", "trunc.jpg", "empty.jpg",
                                             "bomb.png", "v.webm", "1400000000001.jpg", "1400000000002.jpg", NULL};
    double bytes = 0;
    for (size_t i = 0; downloaded[i]; i++)
        bytes += (double)file_size(downloaded[i]);
    assert_metric(port, "imgfeed_hasher_download_bytes_total", bytes);
    assert_metric(port, "imgfeed_hasher_images_hashed_total", 6);
    assert_metric(port, "imgfeed_hasher_hash_failures_total", 4);
    assert_metric(port, "imgfeed_hasher_hash_seconds_count", 11);
    assert_metric(port, "imgfeed_hasher_images_in_flight", 0);
    assert_metric(port, "imgfeed_hasher_bytes_in_flight", 0);
    assert_metric(port, "imgfeed_hasher_memory_budget_bytes", 512.0 * 1024 * 1024);

    proc_stop(&t.hasher);
    json_object_put(by_id);
    json_object_put(items);
    for (int i = 0; i < 14; i++)
        free(u[i]);
    free(good);
    free(bad);
}

/* `_files` n: the first n `_urls` are downloaded whatever their path
 * (extensionless ones hashed, a page "not an image"), the rest only when
 * they name a picture or video; `_files` absent or not an integer >= 0:
 * the extension rule for all.  `url` stays the index into `_urls`. */
static void test_files_counted(void **state) {
    (void)state;
    json_object_put(fixture_control(&fx, "reset"));
    char *u1[7] = {fixture_url(&fx, "/files/bare-a?w=1&h=2"),
                   fixture_url(&fx, "/files/bare-page"),
                   fixture_url(&fx, "/files/c.gif?f=1"),
                   fixture_url(&fx, "/files/bare-b"),
                   xstrdup("https://example.invalid/thread/1"),
                   fixture_url(&fx, "/files/a.png?f=1"),
                   NULL};
    char *u2[2] = {fixture_url(&fx, "/files/bare-c"), NULL};
    char *u3[3] = {fixture_url(&fx, "/files/bare-d"), fixture_url(&fx, "/files/a.png?f=3"), NULL};
    char *u4[2] = {fixture_url(&fx, "/files/bare-e"), NULL};
    char *u5[2] = {fixture_url(&fx, "/files/bare-f"), NULL};
    char *u6[2] = {fixture_url(&fx, "/files/bare-a?f=6"), NULL};
    json_object *items = json_object_new_array();
    json_object *f1 = item_with("f1", urls_of((const char *const *)u1));
    json_object_object_add(f1, "_files", json_object_new_int(2));
    json_object_array_add(items, f1);
    json_object *f2 = item_with("f2", urls_of((const char *const *)u2));
    json_object_object_add(f2, "_files", json_object_new_int(0));
    json_object_array_add(items, f2);
    json_object_array_add(items, item_with("f3", urls_of((const char *const *)u3))); /* no _files: an old item */
    json_object *f4 = item_with("f4", urls_of((const char *const *)u4));
    json_object_object_add(f4, "_files", json_object_new_string("1"));
    json_object_array_add(items, f4);
    json_object *f5 = item_with("f5", urls_of((const char *const *)u5));
    json_object_object_add(f5, "_files", json_object_new_int(-1));
    json_object_array_add(items, f5);
    json_object *f6 = item_with("f6", urls_of((const char *const *)u6));
    json_object_object_add(f6, "_files", json_object_new_int(5)); /* more than it has */
    json_object_array_add(items, f6);

    static const char *const args[] = {"--allow-private", "--download-retries", "0", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_json(t.q, "site.post.r", items);
    json_object *by_id = json_object_new_object();
    collect(by_id, 6, "site.post.r");

    json_object *expected = json_object_new_array();
    json_object_array_add(expected, expected_entry("bare-a", 0));
    json_object_array_add(expected, expected_entry("bare-page", 1)); /* its checksums, and the error */
    json_object_array_add(expected, expected_entry("c.gif", 2));
    json_object_array_add(expected, expected_entry("a.png", 5));
    assert_json_equal(img_of(by_id, "f1"), expected, "_img of f1");
    json_object_put(expected);
    json_object *page_error = NULL;
    assert_true(json_object_object_get_ex(json_object_array_get_idx(img_of(by_id, "f1"), 1), "error", &page_error));
    assert_string_equal(json_object_get_string(page_error), "not an image");
    assert_int_equal(json_object_array_length(img_of(by_id, "f2")), 0);
    expected = json_object_new_array();
    json_object_array_add(expected, expected_entry("a.png", 1));
    assert_json_equal(img_of(by_id, "f3"), expected, "_img of f3");
    json_object_put(expected);
    assert_int_equal(json_object_array_length(img_of(by_id, "f4")), 0);
    assert_int_equal(json_object_array_length(img_of(by_id, "f5")), 0);
    expected = json_object_new_array();
    json_object_array_add(expected, expected_entry("bare-a", 0));
    assert_json_equal(img_of(by_id, "f6"), expected, "_img of f6");
    json_object_put(expected);

    /* What was not counted by _files and names no picture was never asked for. */
    static const char *const untouched[] = {"/files/bare-b", "/files/bare-c", "/files/bare-d",
                                            "/files/bare-e", "/files/bare-f", NULL};
    for (size_t i = 0; untouched[i]; i++) {
        json_object *log = fixture_log(&fx, untouched[i]);
        if (json_object_array_length(log) != 0) fail_msg("%s was downloaded", untouched[i]);
        json_object_put(log);
    }
    json_object *log = fixture_log(&fx, "/files/bare-a");
    assert_int_equal(json_object_array_length(log), 2);
    json_object_put(log);

    proc_stop(&t.hasher);
    json_object_put(by_id);
    json_object_put(items);
    char **all[] = {u1, u2, u3, u4, u5, u6};
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; all[i][j]; j++)
            free(all[i][j]);
}

/* --allow-net lets one private server through; its redirect to 127.0.0.1 is
 * refused on the address connected, and nothing reaches 127.0.0.1. */
static void test_private_redirect_refused(void **state) {
    (void)state;
    fixture mirror;
    fixture_options o = {.host = "127.0.0.2", .files_dir = files_dir};
    fixture_start_with(&mirror, &o);
    json_object_put(fixture_control(&fx, "reset"));
    char *u[4];
    u[0] = fixture_url(&mirror, "/files/a.png");
    u[1] = fixture_url(&mirror, "/redirect/r.jpg?to=http://127.0.0.1:1/x.jpg");
    u[2] = fixture_url(&fx, "/files/b.jpg");
    u[3] = NULL;
    json_object *items = json_object_new_array();
    json_object_array_add(items, item_with("r1", urls_of((const char *const *)u)));
    static const char *const args[] = {
        "--allow-net", "127.0.0.2/32", "--download-retries", "0", "--metrics-listen", "127.0.0.1:0", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_json(t.q, "site.image.x", items);
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, NULL);
    json_object *img = img_of(by_id, "r1");
    assert_int_equal(json_object_array_length(img), 3);
    json_object *want = expected_entry("a.png", 0);
    assert_json_equal(json_object_array_get_idx(img, 0), want, "the allowed mirror's file");
    json_object_put(want);
    want = error_entry(1, "refused: private address 127.0.0.1 (loopback)");
    assert_json_equal(json_object_array_get_idx(img, 1), want, "the redirect to 127.0.0.1");
    json_object_put(want);
    want = error_entry(2, "refused: private address 127.0.0.1 (loopback)");
    assert_json_equal(json_object_array_get_idx(img, 2), want, "a direct 127.0.0.1");
    json_object_put(want);
    json_object *log = fixture_log(&mirror, "/redirect");
    assert_int_equal(json_object_array_length(log), 1);
    json_object_put(log);
    log = fixture_log(&fx, "/");
    assert_int_equal(json_object_array_length(log), 0);
    json_object_put(log);
    int port = scrape_port(&t.hasher);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"refused_address\"}", 2);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"ok\"}", 1);
    assert_metric(port, "imgfeed_hasher_images_hashed_total", 1);
    proc_stop(&t.hasher);
    fixture_stop(&mirror);
    json_object_put(by_id);
    json_object_put(items);
    for (int i = 0; i < 3; i++)
        free(u[i]);
}

/* Messages that can never be processed land in E.dead saying why, are
 * acked, and the good message after them goes through. */
static void test_poison(void **state) {
    (void)state;
    static const struct {
        const char *body, *reason;
    } poison[] = {
        {"not json at all", "not JSON"},
        {"[{\"_id\":\"x\"}", "not JSON: unexpected end of the text"},
        {"[{\"_id\":\"x\"}] trailing", "not JSON"},
        {"{\"_id\":\"x\"}", "not a JSON array of items"},
        {"[1,2]", "item 0 is not an object"},
        {"[{\"_urls\":[]}]", "item 0 has no string _id"},
        {"[{\"_id\":\"a\"},{\"_id\":5}]", "item 1 has no string _id"},
    };
    size_t n = sizeof poison / sizeof poison[0];
    static const char *const args[] = {"--allow-private", "--metrics-listen", "127.0.0.1:0", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    for (size_t i = 0; i < n; i++)
        publish_text(t.q, "site.post.bad", poison[i].body);
    publish_text(t.q, "site.post.good", "[{\"_id\":\"good\",\"_urls\":[\"http://example.invalid/\"]}]");
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, "site.post.good");
    assert_int_equal(json_object_array_length(img_of(by_id, "good")), 0);
    /* Only the good message has items; its link is not downloaded. */
    int port = scrape_port(&t.hasher);
    assert_metric(port, "imgfeed_items_received_total", 1);
    assert_metric(port, "imgfeed_items_published_total", 1);
    assert_metric(port, "imgfeed_hasher_download_seconds_count", 0);
    proc_stop(&t.hasher);

    mq *dead = mq_admin_connect(t.exchange, "test_consumer");
    assert_int_equal(mq_consume(dead, mq_target_name(dead, MQ_QUEUE_DEAD), 100), MQ_OK);
    for (size_t i = 0; i < n; i++) {
        mq_delivery d;
        assert_int_equal(mq_next(dead, &d, GUARD_MS), MQ_OK);
        assert_string_equal(d.body, poison[i].body);
        const char *why = mq_delivery_header(&d, "x-imgfeed-error");
        assert_non_null(why);
        if (strncmp(why, poison[i].reason, strlen(poison[i].reason)) != 0)
            fail_msg("'%s' dead-lettered as '%s', expected '%s'", poison[i].body, why, poison[i].reason);
        assert_string_equal(mq_delivery_header(&d, "x-imgfeed-routing-key"), "site.post.bad");
        assert_int_equal(mq_ack(dead, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    mq_free(dead);
    mq_admin *a = mq_admin_open();
    assert_int_equal(mq_admin_count(a, mq_target_name(t.q, MQ_QUEUE_HASHER)), 0); /* all acked */
    assert_int_equal(mq_admin_count(a, mq_target_name(t.q, MQ_QUEUE_DEAD)), 0);
    mq_admin_close(a);
    json_object_put(by_id);
}

/* The items go on as the crawler wrote them, `_img` appended: every digit
 * of a number too long for a double, escapes and spacing kept.  An item
 * that came with an `_img` of its own has it replaced. */
static void test_items_kept_as_sent(void **state) {
    (void)state;
    static const char sent[] = "[ {\"_id\":\"a\", \"big\": 123456789012345678901234567890, \"f\": 1.50,"
                               " \"s\":\"\\u00e9\\/x\", \"_urls\":[] }\n,{\"_urls\":[],\"_id\":\"b\"}]";
    static const char expected[] = "[{\"_id\":\"a\", \"big\": 123456789012345678901234567890, \"f\": 1.50,"
                                   " \"s\":\"\\u00e9\\/x\", \"_urls\":[] ,\"_img\":[]},"
                                   "{\"_urls\":[],\"_id\":\"b\",\"_img\":[]}]";
    static const char *const args[] = {"--allow-private", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_text(t.q, "site.post.text", sent);
    publish_text(t.q, "site.post.replaced", "[{\"_id\":\"c\",\"_img\":[{\"old\":true}],\"_urls\":[]}]");
    for (int i = 0; i < 2; i++) {
        mq_delivery d;
        assert_int_equal(mq_next(t.q, &d, GUARD_MS), MQ_OK);
        if (strcmp(d.routing_key, "site.post.text") == 0) {
            assert_int_equal(d.len, strlen(expected));
            assert_string_equal(d.body, expected);
        } else {
            assert_string_equal(d.routing_key, "site.post.replaced");
            json_object *got = json_tokener_parse(d.body);
            json_object *want = json_tokener_parse("[{\"_id\":\"c\",\"_img\":[],\"_urls\":[]}]");
            assert_json_equal(got, want, "an item with an _img of its own");
            json_object_put(got);
            json_object_put(want);
        }
        assert_int_equal(mq_ack(t.q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    proc_stop(&t.hasher);
}

#define KILL_N 200

/* kill -9 in the middle of the stream loses nothing: whatever was not
 * acked comes again to the next hasher. */
static void test_kill9_loses_nothing(void **state) {
    (void)state;
    static const char *const args[] = {"--allow-private", "--prefetch", "16", NULL};
    for (int i = 0; i < KILL_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        char *a = fixture_url(&fx, "/files/a.png?k=%d", i), *b = fixture_url(&fx, "/files/b.jpg?k=%d", i);
        json_object *items = json_object_new_array();
        json_object_array_add(items, item_with(id, urls_of((const char *const[]){a, b, NULL})));
        publish_json(t.q, "site.post.k", items);
        json_object_put(items);
        free(a);
        free(b);
    }
    hasher_start(&t.hasher, t.exchange, args);
    json_object *by_id = json_object_new_object();
    size_t before = collect(by_id, 30, NULL);
    kill(t.hasher.pid, SIGKILL);
    assert_int_equal(proc_wait(&t.hasher), 128 + SIGKILL);
    proc_release(&t.hasher);
    hasher_start(&t.hasher, t.exchange, args);
    size_t after = collect(by_id, KILL_N, NULL);
    fprintf(stderr, "kill -9 after %zu outputs: %zu more messages for %d items (%zu delivered twice)\n", before, after,
            KILL_N, before + after - KILL_N);
    for (int i = 0; i < KILL_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        json_object *img = img_of(by_id, id);
        assert_int_equal(json_object_array_length(img), 2);
        assert_false(has_error(json_object_array_get_idx(img, 0)));
        assert_false(has_error(json_object_array_get_idx(img, 1)));
    }
    proc_stop(&t.hasher);
    json_object_put(by_id);
}

#define DRAIN_N 40

/* SIGTERM while busy: exit 0, the messages in flight finished, and every
 * message that left the queue was published. */
static void test_sigterm_drains(void **state) {
    (void)state;
    json_object_put(fixture_control(&fx, "reset"));
    for (int i = 0; i < DRAIN_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        char *slow = fixture_url(&fx, "/slow/s.jpg?delay=1&id=%d", i), *a = fixture_url(&fx, "/files/a.png?id=%d", i);
        json_object *items = json_object_new_array();
        json_object_array_add(items, item_with(id, urls_of((const char *const[]){slow, a, NULL})));
        publish_json(t.q, "site.post.s", items);
        json_object_put(items);
        free(slow);
        free(a);
    }
    static const char *const args[] = {"--allow-private", "--prefetch", "8", "--download-timeout", "30s", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    /* Wait until downloads are under way, and note whose. */
    json_object *log = NULL;
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    for (;;) {
        log = fixture_log(&fx, "/slow");
        if (json_object_array_length(log) >= 4) break;
        json_object_put(log);
        if (time_mono_ns() > deadline) fail_msg("the hasher never started downloading");
        time_sleep_ms(20);
    }
    kill(t.hasher.pid, SIGTERM);
    int status = proc_wait(&t.hasher);
    if (status != 0) {
        proc_print_log(&t.hasher);
        fail_msg("imgfeed-hasher exited with %d after SIGTERM", status);
    }

    mq_admin *adm = mq_admin_open();
    long published = mq_admin_count(adm, mq_target_name(t.q, MQ_QUEUE_ARCHIVER));
    long left = mq_admin_count(adm, mq_target_name(t.q, MQ_QUEUE_HASHER));
    mq_admin_close(adm);
    fprintf(stderr, "SIGTERM: %ld messages published, %ld left in the queue\n", published, left);
    assert_true(published > 0);
    json_object *out = json_object_new_object();
    collect(out, (size_t)published, NULL);

    /* Every message whose download had begun was finished and published. */
    for (size_t i = 0; i < json_object_array_length(log); i++) {
        json_object *path;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "path", &path));
        const char *p = strstr(json_object_get_string(path), "id=");
        assert_non_null(p);
        char id[16];
        snprintf(id, sizeof id, "s%d", atoi(p + 3));
        if (!json_object_object_get_ex(out, id, NULL)) fail_msg("%s was in flight at SIGTERM but not published", id);
        json_object *img = img_of(out, id);
        assert_int_equal(json_object_array_length(img), 2);
    }
    json_object_put(log);

    /* Nothing lost: each message is published or still in E.hasher. */
    mq *rest = mq_admin_connect(t.exchange, "test_consumer");
    assert_int_equal(mq_consume(rest, mq_target_name(rest, MQ_QUEUE_HASHER), 100), MQ_OK);
    json_object *queued = json_object_new_object();
    for (long i = 0; i < left; i++) {
        mq_delivery d;
        assert_int_equal(mq_next(rest, &d, GUARD_MS), MQ_OK);
        json_object *items = json_tokener_parse(d.body), *id;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(items, 0), "_id", &id));
        json_object_object_add(queued, json_object_get_string(id), NULL);
        json_object_put(items);
        mq_delivery_release(&d);
    }
    mq_free(rest);
    for (int i = 0; i < DRAIN_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        if (!json_object_object_get_ex(out, id, NULL) && !json_object_object_get_ex(queued, id, NULL))
            fail_msg("%s was acked without being published", id);
    }
    json_object_put(queued);
    json_object_put(out);
}

/* Count regular files under DIR, and fail on a leftover temporary. */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (e->d_name[0] == '.') fail_msg("temporary file %s/%s left behind", dir, e->d_name);
        char *path = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        n += S_ISDIR(st.st_mode) ? count_files(path) : 1;
        free(path);
    }
    closedir(d);
    return n;
}

/* --save-dir keeps each good file once, by sha1, with its bytes. */
static void test_save_dir(void **state) {
    (void)state;
    char *dir = testenv_tmpdir("consumer-save");
    char *save = xasprintf("%s/files", dir);
    static const char *const names[] = {"a.png", "b.jpg", "a.png", "html.jpg", "v.webm"};
    char *u[6];
    for (int i = 0; i < 5; i++)
        u[i] = fixture_url(&fx, "/files/%s?i=%d", names[i], i);
    u[5] = NULL;
    json_object *items = json_object_new_array();
    json_object_array_add(items, item_with("f1", urls_of((const char *const *)u)));
    const char *args[] = {"--allow-private", "--save-dir", save, NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_json(t.q, "site.image.f", items);
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, NULL);
    json_object *img = img_of(by_id, "f1");
    assert_int_equal(json_object_array_length(img), 5);
    static const char *const exts[] = {"png", "jpg", "png", NULL, "webm"};
    struct stat first = {0};
    for (int i = 0; i < 5; i++) {
        json_object *entry = json_object_array_get_idx(img, (size_t)i), *sha1;
        if (!exts[i]) {
            assert_true(has_error(entry));
            continue;
        }
        assert_true(json_object_object_get_ex(entry, "sha1", &sha1));
        const char *hex = json_object_get_string(sha1);
        char *path = xasprintf("%s/%.2s/%.2s/%s.%s", save, hex, hex + 2, hex, exts[i]);
        size_t want_len, got_len;
        unsigned char *want = read_bytes(names[i], &want_len);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("%s was not saved as %s", names[i], path);
        unsigned char *got = xmalloc(want_len + 16);
        got_len = fread(got, 1, want_len + 16, f);
        fclose(f);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        if (i == 0) assert_int_equal(stat(path, &first), 0);
        free(got);
        free(want);
        free(path);
    }
    assert_int_equal(count_files(save), 3); /* a.png once, b.jpg, v.webm; not the HTML */

    /* The same picture again: the file is not written again. */
    json_object *again = json_object_new_array();
    char *a = fixture_url(&fx, "/files/a.png?again=1");
    json_object_array_add(again, item_with("f2", urls_of((const char *const[]){a, NULL})));
    publish_json(t.q, "site.image.f", again);
    collect(by_id, 2, NULL);
    json_object *sha1;
    assert_true(json_object_object_get_ex(json_object_array_get_idx(img_of(by_id, "f2"), 0), "sha1", &sha1));
    const char *hex = json_object_get_string(sha1);
    char *path = xasprintf("%s/%.2s/%.2s/%s.png", save, hex, hex + 2, hex);
    struct stat later;
    assert_int_equal(stat(path, &later), 0);
    assert_int_equal(later.st_ino, first.st_ino);
    assert_int_equal(later.st_mtim.tv_sec, first.st_mtim.tv_sec);
    assert_int_equal(later.st_mtim.tv_nsec, first.st_mtim.tv_nsec);
    assert_int_equal(count_files(save), 3);
    proc_stop(&t.hasher);

    free(path);
    free(a);
    json_object_put(again);
    json_object_put(by_id);
    json_object_put(items);
    for (int i = 0; i < 5; i++)
        free(u[i]);
    assert_int_equal(testenv_rmtree(dir), 0);
    free(save);
    free(dir);
}

/* A file that cannot be saved is not lost: the message goes back to the
 * queue, and goes through once the disk is usable again. */
static void test_save_failure_requeues(void **state) {
    (void)state;
    char *dir = testenv_tmpdir("consumer-save");
    size_t len;
    unsigned char *data = read_bytes("a.png", &len);
    ih_checksums sums;
    ih_checksum_compute(data, len, &sums);
    free(data);
    /* A plain file where the first directory level must go. */
    char *blocker = xasprintf("%s/%.2s", dir, sums.sha1_hex);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);

    char *url = fixture_url(&fx, "/files/a.png");
    json_object *items = json_object_new_array();
    json_object_array_add(items, item_with("q1", urls_of((const char *const[]){url, NULL})));
    const char *args[] = {"--allow-private", "--save-dir", dir, NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_json(t.q, "site.image.q", items);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    for (;;) {
        char *cmd = xasprintf("grep -q 'cannot save' '%s'", t.hasher.log);
        int rc = system(cmd);
        free(cmd);
        if (rc == 0) break;
        if (time_mono_ns() > deadline) {
            proc_print_log(&t.hasher);
            fail_msg("the hasher never reported the failed save");
        }
        time_sleep_ms(20);
    }
    assert_int_equal(unlink(blocker), 0);
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, NULL);
    json_object *want = expected_entry("a.png", 0);
    assert_json_equal(json_object_array_get_idx(img_of(by_id, "q1"), 0), want, "_img of q1");
    json_object_put(want);
    char *path = xasprintf("%s/%.2s/%.2s/%s.png", dir, sums.sha1_hex, sums.sha1_hex + 2, sums.sha1_hex);
    struct stat st;
    if (stat(path, &st) != 0) fail_msg("%s was not saved", path);
    assert_int_equal(count_files(dir), 1);
    proc_stop(&t.hasher);

    free(path);
    json_object_put(by_id);
    json_object_put(items);
    free(url);
    free(blocker);
    assert_int_equal(testenv_rmtree(dir), 0);
    free(dir);
}

#define RESTART_N 60

/* The broker restarts under a busy hasher: the messages of the old
 * connection are dropped and delivered again, and every item arrives. */
static void test_broker_restart(void **state) {
    (void)state;
    for (int i = 0; i < RESTART_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        char *slow = fixture_url(&fx, "/slow/s.jpg?delay=0.3&id=%d", i), *a = fixture_url(&fx, "/files/a.png?id=%d", i);
        json_object *items = json_object_new_array();
        json_object_array_add(items, item_with(id, urls_of((const char *const[]){slow, a, NULL})));
        publish_json(t.q, "site.post.b", items);
        json_object_put(items);
        free(slow);
        free(a);
    }
    static const char *const args[] = {"--allow-private", "--prefetch", "8", "--metrics-listen", "127.0.0.1:0", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    json_object *by_id = json_object_new_object();
    collect(by_id, 5, NULL);
    assert_int_equal(testenv_servers("rabbit-restart"), 0);
    collect(by_id, RESTART_N, NULL);
    for (int i = 0; i < RESTART_N; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        json_object *img = img_of(by_id, id);
        assert_int_equal(json_object_array_length(img), 2);
        /* /slow answers "slow\n": hashed as "not an image", but downloaded. */
        if (has_error(json_object_array_get_idx(img, 1))) {
            proc_print_log(&t.hasher);
            fail_msg("%s: %s", id, json_object_to_json_string(img));
        }
    }
    char *cmd = xasprintf("grep -q 'dropped .* messages of the lost connection' '%s'", t.hasher.log);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        proc_print_log(&t.hasher);
        fail_msg("the hasher did not drop the messages of the lost connection");
    }
    /* The images of the dropped messages left the gauges too; the items and
     * images published again are counted again. */
    int port = scrape_port(&t.hasher);
    assert_metric(port, "imgfeed_hasher_images_in_flight", 0);
    assert_metric(port, "imgfeed_hasher_bytes_in_flight", 0);
    char *text = scrape_get(port);
    double hashed = 0, published = 0;
    assert_true(scrape_find(text, "imgfeed_hasher_images_hashed_total", &hashed));
    assert_true(scrape_find(text, "imgfeed_items_published_total", &published));
    free(text);
    if (hashed < RESTART_N || published < RESTART_N)
        fail_msg("%g images hashed and %g items published for %d items", hashed, published, RESTART_N);
    proc_stop(&t.hasher);
    json_object_put(by_id);
}

#define RATE_MESSAGES 200
#define RATE_ITEMS 10

/* How fast small pictures go through; printed, not judged. */
static void test_throughput(void **state) {
    (void)state;
    static const char *const args[] = {"--allow-private", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    /* One message through first, so that the clock starts with the hasher up. */
    publish_text(t.q, "site.image.w", "[{\"_id\":\"warm\"}]");
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, NULL);
    double cpu_before = proc_cpu_seconds(t.hasher.pid);
    int64_t start = time_mono_ns();
    for (int m = 0; m < RATE_MESSAGES; m++) {
        json_object *items = json_object_new_array();
        for (int i = 0; i < RATE_ITEMS; i++) {
            char id[24];
            int n = m * RATE_ITEMS + i;
            snprintf(id, sizeof id, "w%d", n);
            char *url = fixture_url(&fx, "/files/%s?n=%d", n % 3 == 0 ? "b.jpg" : n % 3 == 1 ? "a.png" : "c.gif", n);
            json_object_array_add(items, item_with(id, urls_of((const char *const[]){url, NULL})));
            free(url);
        }
        publish_json(t.q, "site.image.w", items);
        json_object_put(items);
    }
    collect(by_id, 1 + RATE_MESSAGES * RATE_ITEMS, NULL);
    double seconds = (double)(time_mono_ns() - start) / TIME_NS_PER_S;
    int images = RATE_MESSAGES * RATE_ITEMS;
    double cpu = proc_cpu_seconds(t.hasher.pid) - cpu_before;
    fprintf(stderr,
            "throughput: %d items with one small picture each in %.2f s: %.0f items/s, %.0f images/s; "
            "the hasher used %.2f s of CPU (%.2f ms an image)\n",
            images, seconds, images / seconds, images / seconds, cpu, cpu * 1000 / images);
    long rss = proc_peak_rss_kb(t.hasher.pid);
    fprintf(stderr, "peak RSS of imgfeed-hasher: %ld kB\n", rss);
    proc_stop(&t.hasher);
    json_object_put(by_id);
}

/* --- user names and passwords in URLs --- */

/* True when the hasher's log holds TEXT. */
static bool log_has(const char *text) {
    char *cmd = xasprintf("grep -qF -- '%s' '%s'", text, t.hasher.log);
    int rc = system(cmd);
    free(cmd);
    return rc == 0;
}

/* A post linking http://user:password@host/x.png, and one whose link
 * redirects to such a URL: the pictures are downloaded and hashed, no
 * request carries an Authorization header, and the password shows in no
 * log line. */
static void test_userinfo_never_sent(void **state) {
    (void)state;
    json_object_put(fixture_control(&fx, "reset"));
    char *u[3];
    u[0] = xasprintf("http://user:hunter2@%s:%d/files/a.png", fx.host, fx.port);
    /* the Location, percent-encoded in the query: its password is only in
     * the log as %3A...%40 if at all, never as user:secret@ */
    u[1] = fixture_url(&fx, "/redirect/r.jpg?to=http%%3A%%2F%%2Fuser%%3Asecret%%40%s%%3A%d%%2Ffiles%%2Fb.jpg", fx.host,
                       fx.port);
    u[2] = NULL;
    json_object *items = json_object_new_array();
    json_object_array_add(items, item_with("cred", urls_of((const char *const *)u)));
    static const char *const args[] = {"--allow-private", "--log-level", "debug", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    publish_json(t.q, "site.post.cred", items);
    json_object *by_id = json_object_new_object();
    collect(by_id, 1, NULL);
    json_object *img = img_of(by_id, "cred");
    assert_int_equal(json_object_array_length(img), 2);
    json_object *want = expected_entry("a.png", 0);
    assert_json_equal(json_object_array_get_idx(img, 0), want, "the picture of a URL with a password");
    json_object_put(want);
    want = expected_entry("b.jpg", 1);
    assert_json_equal(json_object_array_get_idx(img, 1), want, "the picture a redirect with a password leads to");
    json_object_put(want);
    proc_stop(&t.hasher);

    json_object *log = fixture_log(&fx, "/");
    assert_int_equal(json_object_array_length(log), 3); /* a.png, the redirect, b.jpg */
    for (size_t i = 0; i < json_object_array_length(log); i++) {
        json_object *headers;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "headers", &headers));
        json_object_object_foreach(headers, name, value) {
            char lower[64];
            size_t n = 0;
            for (; name[n] && n < sizeof lower - 1; n++)
                lower[n] = (char)tolower((unsigned char)name[n]);
            lower[n] = '\0';
            if (strcmp(lower, "authorization") == 0) fail_msg("request %zu sent %s", i, json_object_get_string(value));
        }
    }
    json_object_put(log);
    if (log_has("hunter2") || log_has("user:secret@")) {
        proc_print_log(&t.hasher);
        fail_msg("the hasher's log shows a password");
    }
    json_object_put(by_id);
    json_object_put(items);
    for (int i = 0; i < 2; i++)
        free(u[i]);
}

/* --- --max-message --- */

#define SPLIT_ITEMS 300
#define SPLIT_MAX 65536

/* An item "_id" ID with a "com" of PAD characters and the picture URLS. */
static json_object *padded_item(const char *id, size_t pad, json_object *urls) {
    json_object *item = item_with(id, urls ? urls : json_object_new_array());
    char *com = xmalloc(pad + 1);
    for (size_t i = 0; i < pad; i++)
        com[i] = (char)('a' + i % 26);
    com[pad] = '\0';
    json_object_object_add(item, "com", json_object_new_string(com));
    free(com);
    return item;
}

/* One message of 300 items (700 kB with their `_img`) under --max-message
 * 64k comes out as several messages, every item once and in order, each
 * body within the limit; an item too large for any message with its `_img`
 * lands in E.dead as it was received, saying why; so does one too large
 * even as received, or, should E.dead refuse it (mq applies --max-message
 * to E.dead too, or the broker's own max_message_size is lower), it is
 * logged with its _id as never to be processed; and the input is acked. */
static void test_max_message_splits(void **state) {
    (void)state;
    json_object *items = json_object_new_array();
    for (int i = 0; i < SPLIT_ITEMS; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        json_object *urls = NULL;
        if (i % 10 == 0) {
            char *url = fixture_url(&fx, "/files/a.png?m=%d", i);
            urls = urls_of((const char *const[]){url, NULL});
            free(url);
        }
        json_object_array_add(items, padded_item(id, 1500 + (size_t)(i * 37 % 900), urls));
        if (i == 100) {
            /* fits as received (64,9xx bytes), not with two `_img` entries */
            char *a = fixture_url(&fx, "/files/a.png?big=1"), *b = fixture_url(&fx, "/files/b.jpg?big=1");
            json_object_array_add(items,
                                  padded_item("toolarge", SPLIT_MAX - 500, urls_of((const char *const[]){a, b, NULL})));
            free(a);
            free(b);
        }
        if (i == 200) json_object_array_add(items, padded_item("huge", SPLIT_MAX + 1000, NULL));
    }
    const char *body = json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN);
    size_t body_len = strlen(body);
    assert_true(body_len > 4 * SPLIT_MAX);
    /* what E.dead must hold: the items exactly as published to E.raw */
    char *received[2];
    received[0] = xasprintf(
        "[%s]", json_object_to_json_string_ext(json_object_array_get_idx(items, 101), JSON_C_TO_STRING_PLAIN));
    received[1] = xasprintf(
        "[%s]", json_object_to_json_string_ext(json_object_array_get_idx(items, 202), JSON_C_TO_STRING_PLAIN));
    assert_true(strlen(received[0]) < SPLIT_MAX);
    assert_true(strlen(received[1]) > SPLIT_MAX);

    char max[16];
    snprintf(max, sizeof max, "%d", SPLIT_MAX);
    const char *args[] = {"--allow-private", "--max-message", "64k", "--metrics-listen", "127.0.0.1:0", NULL};
    hasher_start(&t.hasher, t.exchange, args);
    /* The test's own connection publishes the input: 600 kB, no limit of its own. */
    mq_message m = {.routing_key = "site.post.split", .body = body, .len = body_len};
    assert_int_equal(mq_publish(t.q, mq_target_name(t.q, MQ_EXCHANGE_RAW), &m, 1), MQ_OK);

    /* Every item but the two once, in order, in messages within the limit. */
    json_object *seen = json_object_new_object();
    size_t messages = 0;
    int next = 0;
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (next < SPLIT_ITEMS) {
        int64_t left = (deadline - time_mono_ns()) / TIME_NS_PER_MS;
        mq_delivery d;
        int rc = left > 0 ? mq_next(t.q, &d, left) : MQ_TIMEOUT;
        if (rc != MQ_OK) {
            proc_print_log(&t.hasher);
            fail_msg("only %d of %d items arrived: %s", next, SPLIT_ITEMS, mq_status_text(rc));
        }
        assert_string_equal(d.routing_key, "site.post.split");
        if (d.len > SPLIT_MAX) fail_msg("a message of %zu bytes, over --max-message %d", d.len, SPLIT_MAX);
        json_object *got = json_tokener_parse(d.body);
        assert_non_null(got);
        for (size_t i = 0; i < json_object_array_length(got); i++) {
            json_object *item = json_object_array_get_idx(got, i), *id, *img;
            assert_true(json_object_object_get_ex(item, "_id", &id));
            char want[16];
            snprintf(want, sizeof want, "m%d", next);
            if (strcmp(json_object_get_string(id), want) != 0)
                fail_msg("item %s arrived where %s was due", json_object_get_string(id), want);
            assert_true(json_object_object_get_ex(item, "_img", &img));
            assert_int_equal(json_object_array_length(img), next % 10 == 0 ? 1 : 0);
            if (next % 10 == 0) assert_false(has_error(json_object_array_get_idx(img, 0)));
            json_object_object_add(seen, want, NULL);
            next++;
        }
        json_object_put(got);
        assert_int_equal(mq_ack(t.q, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
        messages++;
    }
    fprintf(stderr, "--max-message %d: %zu bytes of input came out as %zu messages\n", SPLIT_MAX, body_len, messages);
    assert_true(messages >= 5);
    assert_int_equal(json_object_object_length(seen), SPLIT_ITEMS);

    /* "toolarge" in E.dead, as received, with the reason; then "huge", or
     * a log line that it is lost. */
    mq *dead = mq_admin_connect(t.exchange, "test_consumer");
    assert_int_equal(mq_consume(dead, mq_target_name(dead, MQ_QUEUE_DEAD), 100), MQ_OK);
    for (int k = 0; k < 2; k++) {
        mq_delivery d;
        int rc = mq_next(dead, &d, k == 0 ? GUARD_MS : 2000);
        if (k == 1 && rc == MQ_TIMEOUT) {
            if (!log_has("item huge of message") || !log_has("can never be processed")) {
                proc_print_log(&t.hasher);
                fail_msg("the item too large for E.dead was neither there nor reported");
            }
            break;
        }
        assert_int_equal(rc, MQ_OK);
        json_object *got = json_tokener_parse(d.body), *want = json_tokener_parse(received[k]);
        assert_json_equal(got, want, k == 0 ? "item toolarge in E.dead" : "item huge in E.dead");
        json_object_put(got);
        json_object_put(want);
        const char *why = mq_delivery_header(&d, "x-imgfeed-error");
        assert_non_null(why);
        if (!strstr(why, "larger than --max-message") || !strstr(why, max)) fail_msg("E.dead says '%s'", why);
        assert_string_equal(mq_delivery_header(&d, "x-imgfeed-routing-key"), "site.post.split");
        assert_int_equal(mq_ack(dead, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    mq_free(dead);

    /* Counted as published: what reached E.  "toolarge"'s two images were
     * hashed but went to E.dead with it. */
    int port = scrape_port(&t.hasher);
    assert_metric(port, "imgfeed_items_received_total", SPLIT_ITEMS + 2);
    assert_metric(port, "imgfeed_items_published_total", SPLIT_ITEMS);
    assert_metric(port, "imgfeed_hasher_downloads_total{result=\"ok\"}", SPLIT_ITEMS / 10 + 2);
    assert_metric(port, "imgfeed_hasher_images_hashed_total", SPLIT_ITEMS / 10);

    proc_stop(&t.hasher);
    mq_admin *a = mq_admin_open();
    assert_int_equal(mq_admin_count(a, mq_target_name(t.q, MQ_QUEUE_HASHER)), 0);
    mq_admin_close(a);
    free(received[0]);
    free(received[1]);
    json_object_put(seen);
    json_object_put(items);
}

/* --- --max-memory --- */

#define BIG_FILES 8
#define BIG_URLS 40
#define BIG_BUDGET_MIB 64
/* What the hasher holds besides the budget.  Measured on the suite's
 * machine (Debian 12, 2 cores): 17.5 MiB resident when idle (15 of them the
 * pages of the program and its libraries: curl, OpenSSL, libgd with its
 * codecs, librabbitmq, json-c), and 31 to 48 MiB over the budget at the
 * peak of this test (22 to 33 before blocks under CONSUMER_MMAP_THRESHOLD
 * stayed in malloc's arenas).  Besides the idle part: what the arenas of
 * the main thread and the two hashing threads keep free for the next
 * pictures (up to CONSUMER_TRIM_THRESHOLD, 8 MiB, at the top of each, and
 * the holes the growing bodies leave until the next trim), resample.c's
 * filter cache (bounded at 16 MiB; a few MiB for the 8 sizes here), the
 * heap curl's 32 transfers use (buffers of 16 KiB, the bytes a paused
 * transfer keeps), the messages, and page rounding.  The bodies and the
 * decoders' pixels themselves are within the budget: 64 MiB holds four of
 * these files with their decoding (an image here takes 6 to 14 MiB to
 * decode and hash).  So the bound is the idle part, three arenas' 8 MiB
 * and the test's own measured rest, rounded up: 64 MiB. */
#define BIG_CONSTANT_MIB 64

/* Noise (so that PNG cannot compress it) of W x H, stored uncompressed:
 * about 3 bytes a pixel. */
static void write_noise_png(const char *name, int w, int h, unsigned seed) {
    gdImagePtr im = gdImageCreateTrueColor(w, h);
    assert_non_null(im);
    uint32_t x = seed * 2654435761u + 1;
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            im->tpixels[y][i] = gdTrueColor((int)(x & 255), (int)((x >> 8) & 255), (int)((i + y) & 255));
        }
    int size = 0;
    void *data = gdImagePngPtrEx(im, &size, 0);
    assert_non_null(data);
    write_bytes(name, data, (size_t)size);
    gdFree(data);
    gdImageDestroy(im);
}

/* Run the hasher on the 40 large pictures with --max-memory MAX; every
 * `_img` must be right.  Returns its peak RSS in kB. */
static long hash_big_files(const char *max, json_object *const *expected, int round) {
    for (int m = 0; m < BIG_URLS / 10; m++) {
        json_object *items = json_object_new_array();
        for (int i = 0; i < 10; i++) {
            int n = m * 10 + i;
            char id[24];
            snprintf(id, sizeof id, "big%d.%d", round, n);
            char *url = fixture_url(&fx, "/files/big%d.png?r=%d&n=%d", n % BIG_FILES, round, n);
            json_object_array_add(items, item_with(id, urls_of((const char *const[]){url, NULL})));
            free(url);
        }
        publish_json(t.q, "site.image.big", items);
        json_object_put(items);
    }
    const char *args[] = {"--allow-private",    "--max-memory", max, "--max-downloads", "32", "--threads", "2",
                          "--download-timeout", "120s",         NULL};
    hasher_start(&t.hasher, t.exchange, args);
    json_object *by_id = json_object_new_object();
    collect(by_id, BIG_URLS, NULL);
    long rss = proc_peak_rss_kb(t.hasher.pid);
    proc_stop(&t.hasher);
    /* A publish cut short by the stop is made again: at least once, so the
     * next round must not see this round's copies. */
    mq_delivery d;
    while (mq_next(t.q, &d, 500) == MQ_OK) {
        mq_ack(t.q, d.tag, false);
        mq_delivery_release(&d);
    }
    for (int n = 0; n < BIG_URLS; n++) {
        char id[24];
        snprintf(id, sizeof id, "big%d.%d", round, n);
        json_object *img = img_of(by_id, id);
        assert_int_equal(json_object_array_length(img), 1);
        assert_json_equal(json_object_array_get_idx(img, 0), expected[n % BIG_FILES], id);
    }
    json_object_put(by_id);
    proc_release(&t.hasher);
    return rss;
}

/* 40 downloads of 8 to 16 MiB pictures (8 files, 5 URLs each), 32 at once:
 * with --max-memory 64MiB the hasher's peak RSS stays under the budget plus
 * BIG_CONSTANT_MIB, and every entry is still right.  The same run without a
 * budget is measured and printed, not judged (it is what the budget
 * prevents: --max-downloads bodies at once). */
static void test_memory_budget(void **state) {
    (void)state;
    static const int sides[BIG_FILES][2] = {{1700, 1650}, {1850, 1700}, {1950, 1800}, {2050, 1900},
                                            {2150, 2000}, {2250, 2100}, {2350, 2150}, {2400, 2300}};
    json_object *expected[BIG_FILES];
    for (int i = 0; i < BIG_FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "big%d.png", i);
        write_noise_png(name, sides[i][0], sides[i][1], (unsigned)i + 1);
        size_t len;
        free(read_bytes(name, &len));
        if (len < 8u << 20 || len > 16u << 20) fail_msg("%s is %zu bytes, not 8 to 16 MiB", name, len);
        expected[i] = expected_entry(name, 0);
        assert_false(has_error(expected[i]));
    }
    char budget[16];
    snprintf(budget, sizeof budget, "%dMiB", BIG_BUDGET_MIB);
    long bounded = hash_big_files(budget, expected, 0);
    fprintf(stderr, "peak RSS hashing %d pictures of 8-16 MiB, 32 downloads at once: %ld kB with --max-memory %s\n",
            BIG_URLS, bounded, budget);
#ifndef __SANITIZE_ADDRESS__
    long unbounded = hash_big_files("0", expected, 1);
    fprintf(stderr, "peak RSS of the same without a budget (--max-memory 0): %ld kB\n", unbounded);
    if (bounded > (long)(BIG_BUDGET_MIB + BIG_CONSTANT_MIB) * 1024)
        fail_msg("peak RSS %ld kB is over the budget of %d MiB plus %d MiB", bounded, BIG_BUDGET_MIB, BIG_CONSTANT_MIB);
#else
    fprintf(stderr, "under ASan (shadow memory, quarantine) the peak is not judged\n");
#endif
    for (int i = 0; i < BIG_FILES; i++) {
        json_object_put(expected[i]);
        char *path = xasprintf("%s/big%d.png", files_dir, i);
        unlink(path);
        free(path);
    }
}

/* `test_consumer restart` runs the test that restarts the broker, which
 * ctest runs alone; without arguments, the rest. */
int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_images_and_failures, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_files_counted, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_private_redirect_refused, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_poison, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_items_kept_as_sent, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_kill9_loses_nothing, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_sigterm_drains, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_save_dir, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_save_failure_requeues, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_throughput, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_userinfo_never_sent, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_max_message_splits, setup_exchange, teardown_exchange),
        cmocka_unit_test_setup_teardown(test_memory_budget, setup_exchange, teardown_exchange),
    };
    const struct CMUnitTest restart[] = {
        cmocka_unit_test_setup_teardown(test_broker_restart, setup_exchange, teardown_exchange),
    };
    if (argc > 1 && strcmp(argv[1], "restart") == 0) return cmocka_run_group_tests(restart, make_files, remove_files);
    return cmocka_run_group_tests(tests, make_files, remove_files);
}
