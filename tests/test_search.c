/* test_search.c -- imgfeed-search against an archive the real pipeline built.
 *
 * The setup draws pictures with libgd (shapes on gradients, each its own),
 * and variants of each: half the size, JPEG at quality 40, cropped 4% on
 * every side, grey.  The fixture server serves them; items naming them go
 * to E.raw as the crawler publishes them, and the real imgfeed-hasher and
 * imgfeed-archiver (child processes) hash and archive them.  Some pictures
 * are posted several times (ties), and a table of 20,000 clustered hashes
 * is added by SQL, so that the index walks its buckets rather than
 * scanning.  Then imgfeed-search runs as a child process:
 *
 *   - each variant, uploaded, finds its original among its nearest;
 *   - hundreds of random queries (phash, dhash, sha1, md5; radii and k)
 *     answer exactly what PostgreSQL's brute force over the archive
 *     answers, in the same order (distance, table, id, url number);
 *   - an item published after the start is found, and how long it took is
 *     printed (the benchmark measures; this only guards);
 *   - bad input gets a clear 4xx and the service stays up, its memory
 *     bounded: not an image, a truncated one, a 30000x30000 bomb, a URL of
 *     a private address, a hash of the wrong length or bad base64, k of a
 *     million;
 *   - `imgfeed-search query` and `dupes` print their JSON lines;
 *   - the page in headless Chromium: an upload shows the results, an item's
 *     hostile text stays text;
 *   - kill -9, items published while it is down, a restart: the same
 *     answers, the new items found, nothing counted twice.
 *
 * `test_search faults` (alone: it stops the servers): PostgreSQL down at
 * the start (it retries and says so, answers 503, SIGTERM still exits 0,
 * then loads when PostgreSQL is back), and restarted while it serves (the
 * details come back on a new connection); the broker down later (it
 * answers from the index, and catches up when the broker is back).
 *
 * The service runs with --metrics-listen: its queries by kind, items
 * received, index size and reconnects, scraped, must be what the test made
 * happen and what /stats says.
 */
#define _GNU_SOURCE /* memmem */
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
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <gd.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "cdp.h"
#include "fixture.h"
#include "mq.h"
#include "pgtest.h"
#include "testpic.h"
#include "proc.h"
#include "sbuf.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 60000
#define ORIGINALS 10
#define BULK 20000

static const char *const variant_names[] = {"half", "q40", "crop", "grey"};
#define VARIANTS 4

static char exchange[64], site_table[128], bulk_table[128];
static char *pics;
static fixture fx;
static proc hasher, archiver, search;
static mq *pub;
static int port, mport; /* the service's, and its metrics' */
static int next_no = 1000;

/* --- pictures --- */

static void save(gdImagePtr im, const char *name, bool jpeg, int quality) {
    int size;
    void *data = jpeg ? gdImageJpegPtr(im, &size, quality) : gdImagePngPtr(im, &size);
    char *path = xasprintf("%s/%s", pics, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(data, 1, (size_t)size, f);
    fclose(f);
    free(path);
    gdFree(data);
}

/* Original K: a gradient and a few shapes of its own; then its variants. */
static void draw(int k) {
    enum { W = TESTPIC_W, H = TESTPIC_H };
    gdImagePtr im = testpic_original(k);
    char name[64];
    snprintf(name, sizeof name, "o%d.png", k);
    save(im, name, false, 0);
    gdImagePtr half = gdImageCreateTrueColor(W / 2, H / 2);
    gdImageCopyResampled(half, im, 0, 0, 0, 0, W / 2, H / 2, W, H);
    snprintf(name, sizeof name, "o%d_half.png", k);
    save(half, name, false, 0);
    gdImageDestroy(half);
    snprintf(name, sizeof name, "o%d_q40.jpg", k);
    save(im, name, true, 40);
    gdImagePtr crop = gdImageCreateTrueColor(W - 2 * (W / 25), H - 2 * (H / 25));
    gdImageCopy(crop, im, 0, 0, W / 25, H / 25, W - 2 * (W / 25), H - 2 * (H / 25));
    snprintf(name, sizeof name, "o%d_crop.png", k);
    save(crop, name, false, 0);
    gdImageDestroy(crop);
    gdImageGrayScale(im);
    snprintf(name, sizeof name, "o%d_grey.png", k);
    save(im, name, false, 0);
    gdImageDestroy(im);
}

static char *read_pic(const char *name, size_t *len) {
    char *path = xasprintf("%s/%s", pics, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    sbuf b = {0};
    assert_true(sbuf_add_stream(&b, f));
    fclose(f);
    free(path);
    *len = b.len;
    return b.p;
}

/* --- items --- */

/* A 4chan-like post naming picture NAME, as the crawler publishes it. */
static json_object *post(int no, const char *name, const char *com) {
    json_object *o = json_object_new_object();
    char id[32];
    snprintf(id, sizeof id, "b.%d", no);
    json_object_object_add(o, "no", json_object_new_int(no));
    json_object_object_add(o, "time", json_object_new_int(1790000000 + no));
    json_object_object_add(o, "com", json_object_new_string(com));
    json_object_object_add(o, "_v", json_object_new_int(1));
    json_object_object_add(o, "_id", json_object_new_string(id));
    json_object_object_add(o, "_chan", json_object_new_string("srch"));
    json_object_object_add(o, "_board", json_object_new_string("b"));
    json_object_object_add(o, "_type", json_object_new_string("post"));
    json_object_object_add(o, "_crawled_at", json_object_new_int(1790000000 + no));
    json_object *urls = json_object_new_array();
    char *u = fixture_url(&fx, "/files/%s", name);
    json_object_array_add(urls, json_object_new_string(u));
    free(u);
    json_object_object_add(o, "_urls", urls);
    json_object_object_add(o, "_files", json_object_new_int(1));
    return o;
}

static void publish_to(mq_target target, const char *key, json_object *it) {
    json_object *a = json_object_new_array();
    json_object_array_add(a, it);
    const char *body = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    mq_message m = {.routing_key = key, .body = body, .len = strlen(body)};
    assert_int_equal(mq_publish(pub, mq_target_name(pub, target), &m, 1), MQ_OK);
    json_object_put(a);
}

/* Publish a post of NAME to E.raw; its number. */
static int post_picture(const char *name, const char *com) {
    int no = next_no++;
    publish_to(MQ_EXCHANGE_RAW, "srch.post.b", post(no, name, com));
    return no;
}

/* Rows of the site's table with a hashed picture. */
static long hashed_rows(void) {
    return pgtest_long("SELECT count(*) FROM %s t WHERE EXISTS (SELECT 1 FROM imgfeed_images(t.data) i "
                       "WHERE i.phash IS NOT NULL)",
                       site_table);
}

static void wait_rows(long n) {
    int64_t end = time_mono_ns() / 1000000 + GUARD_MS;
    while (pgtest_count(site_table) < 0 || hashed_rows() < n) {
        if (time_mono_ns() / 1000000 > end) {
            proc_print_log(&hasher);
            proc_print_log(&archiver);
            fail_msg("%ld hashed rows, not %ld", pgtest_count(site_table) < 0 ? -1 : hashed_rows(), n);
        }
        time_sleep_ms(100);
    }
}

/* --- 20,000 clustered hashes by SQL --- */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void b64(const unsigned char *b, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3, out += 4) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[0] = tab[v >> 18 & 63];
        out[1] = tab[v >> 12 & 63];
        out[2] = tab[v >> 6 & 63];
        out[3] = tab[v & 63];
    }
    *out = '\0';
}

static void random_hash(char *out) {
    unsigned char h[18];
    for (int i = 0; i < 18; i++)
        h[i] = (unsigned char)rnd();
    b64(h, 18, out);
}

static void load_bulk(void) {
    pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', 'bulk.image')", bulk_table, exchange);
    PGconn *c = pgtest_conn();
    char *sql = xasprintf("COPY %s (id, data) FROM STDIN", bulk_table);
    PGresult *r = PQexec(c, sql);
    free(sql);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    unsigned char centre[18], h[18], dh[18];
    int left = 0;
    sbuf b = {0};
    for (int i = 0; i < BULK; i++) {
        if (left == 0) {
            for (int j = 0; j < 18; j++)
                centre[j] = (unsigned char)rnd();
            left = 1 + (int)(rnd() % 25);
        }
        left--;
        memcpy(h, centre, 18);
        for (int f = (int)(rnd() % 12); f > 0; f--) {
            unsigned bit = (unsigned)(rnd() % 144);
            h[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
        for (int j = 0; j < 18; j++)
            dh[j] = (unsigned char)(h[j] ^ 0x5a);
        char ph[32], dhs[32];
        b64(h, 18, ph);
        b64(dh, 18, dhs);
        char line[512];
        /* a few items with two images, and ids whose order is not their number's */
        int n = snprintf(line, sizeof line,
                         "k%d\t{\"_id\": \"k%d\", \"_chan\": \"bulk\", \"_board\": \"x\", \"_type\": \"image\","
                         " \"_urls\": [\"https://bulk.invalid/%d.png\", \"https://bulk.invalid/%d-2.png\"],"
                         " \"_img\": [{\"url\": 0, \"width\": 64, \"height\": 64, \"phash\": \"%s\", \"dhash\": \"%s\","
                         " \"sha1\": \"%040x\", \"md5\": \"%032x\"}%s]}\n",
                         i, i, i, i, ph, dhs, (unsigned)(i % 5000), (unsigned)(i % 7000),
                         i % 97 == 0 ? ", {\"url\": 1, \"phash\": \"AAAAAAAAAAAAAAAAAAAAAAAA\"}" : "");
        sbuf_add(&b, line, (size_t)n);
    }
    assert_int_equal(PQputCopyData(c, b.p, (int)b.len), 1);
    assert_int_equal(PQputCopyEnd(c, NULL), 1);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("COPY: %s", PQresultErrorMessage(r));
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
    free(b.p);
}

/* --- the service --- */

static void start_search(const char *const *extra) {
    const char *pg = testenv_require("IMGFEED_PG");
    const char *args[24] = {
        "--listen",     "127.0.0.1:0", "--pg",         pg,         "--allow-net",      "127.0.0.2/32",
        "--max-memory", "256MiB",      "--max-pixels", "20000000", "--metrics-listen", "127.0.0.1:0"};
    size_t n = 12;
    for (size_t i = 0; extra && extra[i] && n < 22; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    proc_start_imgfeed(&search, "search/imgfeed-search", exchange, args);
    proc_wait_log(&search, "listening on");
    port = proc_log_port(&search);
    mport = scrape_port(&search);
}

static void wait_serving(void) { proc_wait_log(&search, "serving search"); }

static size_t body_write(char *data, size_t size, size_t n, void *arg) {
    sbuf_add(arg, data, size * n);
    return size * n;
}

/* GET or POST (BODY non-NULL) PATH of the service; the answer's JSON. */
static json_object *ask(const char *path, const char *body, size_t len, long *status) {
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    sbuf out = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fail_msg("%s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    sbuf_addc(&out, '\0');
    json_object *o = json_tokener_parse(out.p);
    if (!o) fail_msg("%s answered %ld, not JSON: %.200s", url, *status, out.p);
    free(out.p);
    return o;
}

static json_object *get_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *get_ok(const char *fmt, ...) {
    char path[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    long status;
    json_object *o = ask(path, NULL, 0, &status);
    if (status != 200) fail_msg("GET %s: %ld %s", path, status, json_object_to_json_string(o));
    return o;
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static const char *str(json_object *o, const char *key) {
    json_object *v = member(o, key);
    return v ? json_object_get_string(v) : "";
}

static int64_t num(json_object *o, const char *key) { return json_object_get_int64(member(o, key)); }

static char *escape(const char *s) {
    char *e = curl_easy_escape(NULL, s, 0);
    char *r = xstrdup(e);
    curl_free(e);
    return r;
}

/* "table id n distance" of each result, one a line. */
static char *result_lines(json_object *answer) {
    json_object *rs = member(answer, "results");
    sbuf b = {0};
    for (size_t i = 0; i < json_object_array_length(rs); i++) {
        json_object *r = json_object_array_get_idx(rs, i);
        char line[512];
        int n = snprintf(line, sizeof line, "%s %s %" PRId64 " %" PRId64 "\n", str(r, "table"), str(r, "id"),
                         num(r, "image"), num(r, "distance"));
        sbuf_add(&b, line, (size_t)n);
    }
    sbuf_addc(&b, '\0');
    return b.p;
}

static int64_t stat_of(const char *key) {
    json_object *o = get_ok("/stats");
    int64_t v = num(o, key);
    json_object_put(o);
    return v;
}

/* The queries of each kind (query.c's list) must be WANT (phash, dhash,
 * sha1, md5, url, upload, invalid), and as many answer times. */
static void expect_queries(const int want[7]) {
    static const char *const kinds[] = {"phash", "dhash", "sha1", "md5", "url", "upload", "invalid"};
    for (int k = 0; k < 7; k++) {
        char sample[128];
        snprintf(sample, sizeof sample, "imgfeed_search_queries_total{kind=\"%s\"}", kinds[k]);
        double n = scrape_value(mport, sample);
        snprintf(sample, sizeof sample, "imgfeed_search_query_seconds_count{kind=\"%s\"}", kinds[k]);
        double timed = scrape_value(mport, sample);
        if (n != want[k] || timed != want[k])
            fail_msg("%s queries: %g counted, %g timed, expected %d", kinds[k], n, timed, want[k]);
    }
}

/* The index gauges say what /stats says. */
static void expect_index_gauges(void) {
    json_object *o = get_ok("/stats");
    double images = (double)num(o, "images"), bytes = (double)(num(o, "index_bytes") + num(o, "catalog_bytes"));
    json_object_put(o);
    assert_true(images > 0);
    double gimages = scrape_value(mport, "imgfeed_search_index_images");
    double gbytes = scrape_value(mport, "imgfeed_search_index_bytes");
    if (gimages != images || gbytes != bytes)
        fail_msg("the index gauges say %g images and %g bytes, /stats %g and %g", gimages, gbytes, images, bytes);
}

/* Publish to E, as the hasher would, a post whose one picture has phash PH. */
static void publish_hashed(const char *ph, const char *com) {
    json_object *it = post(next_no++, "o6.png", com);
    json_object *img = json_tokener_parse("{\"url\": 0}");
    json_object_object_add(img, "phash", json_object_new_string(ph));
    json_object_object_add(img, "dhash", json_object_new_string(ph));
    json_object *list = json_object_new_array();
    json_object_array_add(list, img);
    json_object_object_add(it, "_img", list);
    publish_to(MQ_EXCHANGE_ITEMS, "srch.post.b", it);
}

/* Waits until the service finds phash PH (at distance 0); the nanoseconds
 * it took from T0, or the test fails at the guard. */
static int64_t wait_found(const char *ph, int64_t t0) {
    char *e = escape(ph);
    for (int64_t end = time_mono_ns() + (int64_t)GUARD_MS * 1000000; time_mono_ns() < end; time_sleep_ms(5)) {
        json_object *a = get_ok("/search?phash=%s&max_distance=0", e);
        size_t n = json_object_array_length(member(a, "results"));
        json_object_put(a);
        if (n == 1) {
            free(e);
            return time_mono_ns() - t0;
        }
    }
    fail_msg("phash %s was never found", ph);
    return -1;
}

/* --- setup --- */

static bool faults_only; /* `test_search faults`: a small archive is enough */

static int group_setup(void **state) {
    (void)state;
    snprintf(exchange, sizeof exchange, "srch%d", (int)getpid());
    snprintf(site_table, sizeof site_table, "%s_srch_post", exchange);
    snprintf(bulk_table, sizeof bulk_table, "%s_bulk_image", exchange);
    pics = testenv_tmpdir("test_search_pics");
    for (int k = 0; k < ORIGINALS + 1; k++)
        draw(k);
    /* 127.0.0.2: the one address the service may download from (--allow-net) */
    fixture_start_with(&fx, &(fixture_options){.files_dir = pics, .host = "127.0.0.2"});
    mq_options o;
    mq_options_init(&o, &(cfg_common){.amqp_url = (char *)testenv_require("IMGFEED_AMQP_URL"), .exchange = exchange},
                    "test_search");
    assert_int_equal(mq_new(&o, &pub), MQ_OK);
    static const char *const hargs[] = {"--allow-net", "127.0.0.0/8", "--rps-per-host", "0", NULL};
    proc_start_imgfeed(&hasher, "hasher/imgfeed-hasher", exchange, hargs);
    const char *aargs[] = {"--pg", testenv_require("IMGFEED_PG"), "--flush-interval", "100ms", NULL};
    proc_start_imgfeed(&archiver, "archiver/imgfeed-archiver", exchange, aargs);
    /* every original and variant once; original 0 three more times (ties);
     * original 10 only as the upload of the page test */
    long items = 0;
    for (int k = 0; k < (faults_only ? 2 : ORIGINALS); k++) {
        char name[64];
        snprintf(name, sizeof name, "o%d.png", k);
        post_picture(name, "an original");
        items++;
        for (int v = 0; v < VARIANTS; v++) {
            snprintf(name, sizeof name, "o%d_%s.%s", k, variant_names[v], v == 1 ? "jpg" : "png");
            post_picture(name, "a variant");
            items++;
        }
    }
    for (int i = 0; i < 3; i++, items++)
        post_picture("o0.png", "a repost");
    /* hostile text, shown by the page */
    post_picture("o1.png", "&lt;img src=x onerror=&quot;document.body.dataset.pwned=1&quot;&gt;"
                           "&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt; hostile");
    items++;
    wait_rows(items);
    if (!faults_only) load_bulk();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    proc_kill_all();
    mq_free(pub);
    fixture_stop(&fx);
    pgtest_drop_tables(exchange);
    pgtest_close();
    testenv_rmtree(pics);
    free(pics);
    return 0;
}

/* --- the tests --- */

/* Each variant, uploaded, finds itself at 0 and its original among the nearest. */
static void test_variants_find_originals(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    for (int k = 0; k < ORIGINALS; k++) {
        char want[64];
        long ono = pgtest_long("SELECT (data->>'no')::int FROM %s WHERE data->'_urls'->>0 LIKE '%%/o%d.png' "
                               "ORDER BY id LIMIT 1",
                               site_table, k);
        snprintf(want, sizeof want, "b.%ld", ono);
        for (int v = 0; v < VARIANTS; v++) {
            char name[64];
            snprintf(name, sizeof name, "o%d_%s.%s", k, variant_names[v], v == 1 ? "jpg" : "png");
            size_t len;
            char *data = read_pic(name, &len);
            long status;
            json_object *a = ask("/search?k=5&max_distance=144", data, len, &status);
            free(data);
            if (status != 200) fail_msg("%s: %ld %s", name, status, json_object_to_json_string(a));
            json_object *rs = member(a, "results");
            assert_true(json_object_array_length(rs) >= 2);
            /* the variant's own post at 0 (a grey one ties with its original: phash sees grey) */
            bool own = false;
            for (size_t i = 0; i < json_object_array_length(rs); i++) {
                json_object *r = json_object_array_get_idx(rs, i);
                if (strstr(str(r, "url"), name)) own = num(r, "distance") == 0;
            }
            if (!own) fail_msg("%s: its own post is not at 0: %s", name, json_object_to_json_string(rs));
            int at = -1;
            for (size_t i = 0; i < json_object_array_length(rs) && at < 0; i++)
                if (strcmp(str(json_object_array_get_idx(rs, i), "id"), want) == 0) at = (int)i;
            if (at < 0 || at > 2)
                fail_msg("%s: the original %s is not among the 3 nearest: %s", name, want,
                         json_object_to_json_string(rs));
            json_object *orig = json_object_array_get_idx(rs, (size_t)at);
            printf("# %-16s original at %d bits\n", name, (int)num(orig, "distance"));
            /* the details of a result */
            assert_string_equal(str(orig, "board"), "b");
            assert_string_equal(str(orig, "site"), "srch");
            assert_int_equal(num(orig, "width"), 320);
            assert_int_equal(num(orig, "height"), 240);
            assert_int_equal(strlen(str(orig, "sha1")), 40);
            assert_true(num(orig, "time") > 1790000000);
            assert_string_equal(str(member(a, "query"), "kind"), "phash");
            json_object_put(a);
        }
    }
    expect_queries((const int[7]){0, 0, 0, 0, 0, ORIGINALS * VARIANTS, 0});
    expect_index_gauges();
    proc_stop(&search);
}

/* The brute force of PostgreSQL over the archive: the same order. */
static char *sql_answer(const char *kind, const char *value, int radius, int k) {
    char rs[16], ks[16];
    snprintf(rs, sizeof rs, "%d", radius);
    snprintf(ks, sizeof ks, "%d", k);
    bool digest = strcmp(kind, "sha1") == 0 || strcmp(kind, "md5") == 0;
    char *dist = digest ? xasprintf("CASE WHEN i.%s = $1 THEN 0 END", kind)
                        : xasprintf("imgfeed_hamming(i.%s, $1)", kind);
    char *sql = xasprintf("SELECT tbl, id, n, d FROM ("
                          " SELECT '%s' AS tbl, t.id, i.n, %s AS d FROM %s t, imgfeed_images(t.data) i"
                          "  WHERE i.phash IS NOT NULL OR i.dhash IS NOT NULL"
                          " UNION ALL"
                          " SELECT '%s', t.id, i.n, %s FROM %s t, imgfeed_images(t.data) i"
                          "  WHERE i.phash IS NOT NULL OR i.dhash IS NOT NULL) x"
                          " WHERE d <= $2 ORDER BY d, tbl COLLATE \"C\", id COLLATE \"C\", n LIMIT $3",
                          site_table, dist, site_table, bulk_table, dist, bulk_table);
    const char *params[] = {value, rs, ks};
    PGresult *r = pgtest_query(sql, 3, params);
    sbuf b = {0};
    for (int i = 0; i < PQntuples(r); i++) {
        char line[512];
        int n = snprintf(line, sizeof line, "%s %s %s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                         PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        sbuf_add(&b, line, (size_t)n);
    }
    sbuf_addc(&b, '\0');
    PQclear(r);
    free(sql);
    free(dist);
    return b.p;
}

static void flip_b64(const char *in, int flips, char *out) {
    /* decode, flip, encode: 18 bytes */
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char h[18];
    for (int i = 0; i < 6; i++) {
        uint32_t v = 0;
        for (int j = 0; j < 4; j++)
            v = v << 6 | (uint32_t)(strchr(tab, in[4 * i + j]) - tab);
        h[3 * i] = (unsigned char)(v >> 16);
        h[3 * i + 1] = (unsigned char)(v >> 8);
        h[3 * i + 2] = (unsigned char)v;
    }
    for (int f = 0; f < flips; f++) {
        unsigned bit = (unsigned)(rnd() % 144);
        h[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    b64(h, 18, out);
}

static void test_exact_like_postgres(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    char *sql = xasprintf("SELECT i.phash, i.dhash, i.sha1, i.md5 FROM (SELECT data FROM %s UNION ALL SELECT data "
                          "FROM %s) y, imgfeed_images(y.data) i WHERE i.phash IS NOT NULL AND i.sha1 IS NOT NULL",
                          site_table, bulk_table);
    PGresult *rows = pgtest_query(sql, 0, NULL);
    free(sql);
    int nrows = PQntuples(rows);
    assert_true(nrows > BULK);
    int walked = 0, queries = 0, by_kind[7] = {0};
    static const int ks[] = {1, 5, 10, 50};
    for (int t = 0; t < 250; t++) {
        int row = (int)(rnd() % (uint64_t)nrows);
        const char *kind = t % 10 == 9 ? "sha1" : t % 10 == 8 ? "md5" : t % 5 == 3 ? "dhash" : "phash";
        char value[64];
        int radius = (int)(rnd() % 40), k = ks[rnd() % 4];
        if (strcmp(kind, "phash") == 0 || strcmp(kind, "dhash") == 0) {
            if (t % 7 == 6) random_hash(value); /* far from everything */
            else flip_b64(PQgetvalue(rows, row, strcmp(kind, "phash") == 0 ? 0 : 1), (int)(rnd() % 14), value);
        } else {
            snprintf(value, sizeof value, "%s", PQgetvalue(rows, row, strcmp(kind, "sha1") == 0 ? 2 : 3));
            radius = 0;
        }
        char *e = escape(value);
        json_object *a = get_ok("/search?%s=%s&k=%d&max_distance=%d", kind, e, k, radius);
        free(e);
        by_kind[kind[0] == 's' ? 2 : kind[0] == 'm' ? 3 : kind[0] == 'd' ? 1 : 0]++;
        char *got = result_lines(a), *want = sql_answer(kind, value, radius, k);
        if (strcmp(got, want) != 0)
            fail_msg("%s=%s radius %d k %d:\nsearch:\n%s\nPostgreSQL:\n%s", kind, value, radius, k, got, want);
        if (!json_object_get_boolean(member(a, "scanned"))) walked++;
        queries++;
        free(got);
        free(want);
        json_object_put(a);
    }
    PQclear(rows);
    printf("# %d queries equal to PostgreSQL's brute force; %d answered by the walk over buckets\n", queries,
           walked);
    assert_true(walked > 80);
    expect_queries(by_kind);
    proc_stop(&search);
}

/* An item published after the start is found; prints how long it took. */
static void test_new_item_found(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    /* as the hasher publishes it, to E */
    char ph[32];
    random_hash(ph);
    int64_t t0 = time_mono_ns();
    publish_hashed(ph, "published after the start");
    int64_t found = wait_found(ph, t0);
    printf("# an item published to E was found after %.1f ms\n", (double)found / 1e6);
    /* through the whole pipeline: a new picture posted to E.raw, found by its upload */
    int no = post_picture("o10.png", "a new picture");
    size_t len;
    char *data = read_pic("o10.png", &len);
    char want[32];
    snprintf(want, sizeof want, "b.%d", no);
    bool seen = false;
    for (int64_t end = time_mono_ns() / 1000000 + GUARD_MS; !seen && time_mono_ns() / 1000000 < end;) {
        long status;
        json_object *a = ask("/search?k=3&max_distance=0", data, len, &status);
        assert_int_equal(status, 200);
        json_object *rs = member(a, "results");
        seen = json_object_array_length(rs) >= 1 && strcmp(str(json_object_array_get_idx(rs, 0), "id"), want) == 0;
        json_object_put(a);
        if (!seen) time_sleep_ms(50);
    }
    free(data);
    assert_true(seen);
    scrape_expect(mport, "imgfeed_items_received_total", 2); /* the two items published since the start */
    expect_index_gauges();
    proc_stop(&search);
}

static void expect_error(long want, const char *why_part, const char *path, const char *body, size_t len) {
    long status;
    json_object *a = ask(path, body, len, &status);
    const char *why = str(a, "error");
    if (status != want || !strstr(why, why_part))
        fail_msg("%s: %ld %s, not %ld with \"%s\"", path, status, why, want, why_part);
    printf("# %-60.60s %ld %s\n", path, status, why);
    json_object_put(a);
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* A PNG that says it is W x H (a valid header, CRC included), with a tiny body. */
static char *png_bomb(int w, int h, size_t *len) {
    gdImagePtr im = gdImageCreate(8, 8);
    gdImageColorAllocate(im, 0, 0, 0);
    int size;
    unsigned char *p = gdImagePngPtr(im, &size);
    gdImageDestroy(im);
    /* IHDR's width and height are bytes 16..23, its CRC (of bytes 12..28) 29..32 */
    unsigned char *out = xmalloc((size_t)size);
    memcpy(out, p, (size_t)size);
    gdFree(p);
    for (int i = 0; i < 4; i++) {
        out[16 + i] = (unsigned char)((unsigned)w >> (24 - 8 * i));
        out[20 + i] = (unsigned char)((unsigned)h >> (24 - 8 * i));
    }
    uint32_t crc = crc32_of(out + 12, 17);
    for (int i = 0; i < 4; i++)
        out[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
    *len = (size_t)size;
    return (char *)out;
}

static void test_bad_input(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    long rss0 = proc_peak_rss_kb(search.pid);
    expect_error(415, "not an image", "/search", "hello, not a picture", 20);
    size_t len;
    char *png = read_pic("o3.png", &len);
    expect_error(422, "", "/search", png, len / 2); /* truncated */
    free(png);
    char *bomb = png_bomb(30000, 30000, &len);
    expect_error(413, "too many pixels", "/search", bomb, len);
    free(bomb);
    expect_error(400, "private address", "/search?url=http%3A%2F%2F127.0.0.1%3A9%2Fx.png", NULL, 0);
    expect_error(400, "private address", "/search?url=http%3A%2F%2F%5B%3A%3A1%5D%3A9%2Fx.png", NULL, 0);
    expect_error(400, "bad url", "/search?url=nothing", NULL, 0);
    char *u = fixture_url(&fx, "/files/missing.png"), *e = escape(u);
    char path[512];
    snprintf(path, sizeof path, "/search?url=%s", e);
    expect_error(502, "http 404", path, NULL, 0);
    free(u);
    free(e);
    expect_error(400, "cannot be compared", "/search?phash=AAAA", NULL, 0);
    expect_error(400, "base64", "/search?phash=not%20base64", NULL, 0);
    expect_error(400, "base64", "/search?dhash=jVVSItap1dlSX0zZUmE2ZqZ", NULL, 0);
    expect_error(400, "k must be", "/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&k=1000000", NULL, 0);
    expect_error(400, "max_distance", "/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&max_distance=145", NULL, 0);
    expect_error(400, "sha1 must be", "/search?sha1=abc", NULL, 0);
    expect_error(400, "exactly one", "/search", NULL, 0);
    expect_error(400, "exactly one", "/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&md5=a46897b44d42d955fac6988f548b1b2f",
                 NULL, 0);
    expect_error(400, "unknown or repeated argument: kk", "/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&kk=3", NULL, 0);
    expect_error(400, "hash must be", "/search?hash=ahash", "x", 1);
    /* a URL query of a picture the guard permits (127.0.0.2) works */
    u = fixture_url(&fx, "/files/o3_q40.jpg");
    e = escape(u);
    snprintf(path, sizeof path, "/search?url=%s&k=1", e);
    free(u);
    free(e);
    json_object *a = get_ok("%s", path);
    assert_int_equal(json_object_array_length(member(a, "results")), 1);
    assert_int_equal(num(json_object_array_get_idx(member(a, "results"), 0), "distance"), 0);
    json_object_put(a);
    /* every request counted by what it asked: 5 phash (kk=3 names one), 1 dhash, 1 sha1, 5 url, 4 uploads,
     * 2 that name none or two */
    expect_queries((const int[7]){5, 1, 1, 0, 5, 4, 2});
    /* a body over --max-bytes is refused from its Content-Length */
    proc_stop(&search);
    static const char *const small[] = {"--max-bytes", "1KiB", NULL};
    start_search(small);
    wait_serving();
    png = read_pic("o3.png", &len);
    expect_error(413, "too large", "/search", png, len);
    free(png);
    expect_queries((const int[7]){0, 0, 0, 0, 0, 1, 0}); /* refused before its body: an upload all the same */
    /* still up, memory bounded */
    assert_true(stat_of("errors") >= 1);
    long rss = proc_peak_rss_kb(search.pid);
    printf("# peak RSS %ld kB at the first start, %ld kB after the bad requests\n", rss0, rss);
    assert_true(rss < rss0 + 200 * 1024);
    proc_stop(&search);
}

static void test_cli(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    char server[64], p1[512], p2[512], p3[512];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", port);
    snprintf(p1, sizeof p1, "%s/o4_grey.png", pics);
    snprintf(p2, sizeof p2, "%s/o7_half.png", pics);
    snprintf(p3, sizeof p3, "%s/nothing-here.png", pics);
    const char *bin = xasprintf("%s/search/imgfeed-search", testenv_binary_dir());
    const char *argv[] = {bin, "query", "--server", server, "--k", "3", p1, p2, p3, NULL};
    proc q = {0};
    proc_start(&q, bin, argv);
    assert_int_equal(proc_wait(&q), 1); /* one file failed */
    FILE *f = fopen(q.log, "r");
    char line[65536];
    int lines = 0, ok = 0;
    while (f && fgets(line, sizeof line, f)) {
        json_object *o = json_tokener_parse(line);
        if (!json_object_is_type(o, json_type_object)) { /* a log line */
            json_object_put(o);
            continue;
        }
        lines++;
        if (member(o, "results") && json_object_array_length(member(o, "results")) == 3 &&
            num(json_object_array_get_idx(member(o, "results"), 0), "distance") == 0)
            ok++;
        if (strstr(str(o, "file"), "nothing-here")) assert_non_null(strstr(str(o, "error"), "cannot open"));
        json_object_put(o);
    }
    if (f) fclose(f);
    assert_int_equal(lines, 3);
    assert_int_equal(ok, 2);
    proc_release(&q);
    proc_stop(&search);

    /* dupes: every original with its half and q40 variants, and the reposts, in one group */
    const char *dargv[] = {bin,        "dupes", "--pg", testenv_require("IMGFEED_PG"), "--exchange", exchange,
                           "--max-distance", "8", NULL};
    proc d = {0};
    proc_start(&d, bin, dargv);
    assert_int_equal(proc_wait(&d), 0);
    f = fopen(d.log, "r");
    int groups_with_original = 0;
    while (f && fgets(line, sizeof line, f)) {
        json_object *o = json_tokener_parse(line);
        if (!json_object_is_type(o, json_type_object)) { /* a log line */
            json_object_put(o);
            continue;
        }
        json_object *imgs = member(o, "images");
        int site = 0;
        for (size_t i = 0; i < json_object_array_length(imgs); i++)
            if (strcmp(str(json_object_array_get_idx(imgs, i), "table"), site_table) == 0) site++;
        if (site >= 3) groups_with_original++;
        assert_int_equal(num(o, "size"), (int64_t)json_object_array_length(imgs));
        json_object_put(o);
    }
    if (f) fclose(f);
    printf("# dupes: %d groups of at least 3 archived posts\n", groups_with_original);
    assert_true(groups_with_original >= ORIGINALS / 2);
    proc_release(&d);
    free((void *)bin);
}

static void test_page_in_chromium(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    cdp browser;
    cdp_open(&browser, url, 1280, 900);
    assert_true(cdp_wait_true(&browser, "document.body && document.body.dataset.ready === '1'", GUARD_MS));
    /* the upload: a real File through the page's own input */
    size_t len;
    char *png = read_pic("o1.png", &len);
    sbuf js = {0};
    const char *head = "(() => { const b = new Uint8Array([";
    sbuf_add(&js, head, strlen(head));
    for (size_t i = 0; i < len; i++) {
        char n[8];
        int l = snprintf(n, sizeof n, "%s%u", i ? "," : "", (unsigned char)png[i]);
        sbuf_add(&js, n, (size_t)l);
    }
    const char *tail = "]); const dt = new DataTransfer(); dt.items.add(new File([b], 'q.png', {type: 'image/png'}));"
                       " const i = document.getElementById('file'); i.files = dt.files;"
                       " i.dispatchEvent(new Event('change')); return true; })()";
    sbuf_add(&js, tail, strlen(tail));
    sbuf_addc(&js, '\0');
    free(png);
    json_object_put(cdp_eval(&browser, js.p));
    free(js.p);
    bool shown = cdp_wait_true(&browser, "document.body.dataset.results !== undefined && "
                                         "document.querySelectorAll('#results .hit').length > 0",
                               GUARD_MS);
    char *dom = cdp_dom(&browser);
    if (!shown) fail_msg("no results shown; status: %s", strstr(dom, "id=\"status\"") ? strstr(dom, "id=\"status\"") : dom);
    /* o1 is archived twice (the original and the hostile repost), both at distance 0, with
     * its variants that phash cannot tell from it (grey, and here half and q40) */
    json_object *n0 = cdp_eval(&browser, "[...document.querySelectorAll('#results .hit')]"
                                         ".filter(h => h.querySelector('.dist.d0') && h.querySelector('img[src$=\"/files/o1.png\"]'))"
                                         ".length");
    assert_int_equal(json_object_get_int(n0), 2);
    json_object_put(n0);
    /* the hostile text is text */
    assert_non_null(strstr(dom, "&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt; hostile"));
    assert_null(strstr(dom, "<script>document.body"));
    json_object *pwned = cdp_eval(&browser, "document.body.dataset.pwned === undefined");
    assert_true(json_object_get_boolean(pwned));
    json_object_put(pwned);
    /* the pictures come from the fixture server */
    assert_true(cdp_wait_true(&browser, "[...document.querySelectorAll('#results img')]"
                                        ".every(i => i.complete && i.naturalWidth > 0)", GUARD_MS));
    const char *shot = getenv("IMGFEED_SEARCH_SCREENSHOT");
    if (shot && *shot) cdp_screenshot(&browser, shot);
    free(dom);
    cdp_close(&browser);
    /* a phone-sized screen: no sideways scroll */
    cdp_open(&browser, url, 390, 844);
    assert_true(cdp_wait_true(&browser, "document.body && document.body.dataset.ready === '1'", GUARD_MS));
    json_object *fits = cdp_eval(&browser, "document.documentElement.scrollWidth <= window.innerWidth");
    assert_true(json_object_get_boolean(fits));
    json_object_put(fits);
    cdp_close(&browser);
    proc_stop(&search);
}

/* kill -9 with items in flight, more published while it is down: a restart answers the same. */
static void test_kill9_restart(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    enum { Q = 30 };
    char *before[Q], queries[Q][64];
    for (int i = 0; i < Q; i++) {
        char ph[32];
        long row = (long)(rnd() % BULK);
        char *v = NULL;
        PGresult *r = NULL;
        char *sql = xasprintf("SELECT data->'_img'->0->>'phash' FROM %s WHERE id = 'k%ld'", bulk_table, row);
        r = pgtest_query(sql, 0, NULL);
        free(sql);
        v = PQgetvalue(r, 0, 0);
        flip_b64(v, (int)(rnd() % 6), ph);
        PQclear(r);
        char *e = escape(ph);
        snprintf(queries[i], sizeof queries[i], "%s", e);
        free(e);
        json_object *a = get_ok("/search?phash=%s&k=10&max_distance=30", queries[i]);
        before[i] = result_lines(a);
        json_object_put(a);
    }
    int64_t items = stat_of("items");
    proc_kill(&search);
    /* while it is down: new items to E (the archiver takes them too) */
    char fresh[5][32];
    for (int i = 0; i < 5; i++) {
        random_hash(fresh[i]);
        publish_hashed(fresh[i], "published while search was down");
    }
    start_search(NULL);
    wait_serving();
    for (int i = 0; i < 5; i++)
        wait_found(fresh[i], time_mono_ns());
    scrape_expect(mport, "imgfeed_items_received_total", 5); /* what came while it was down */
    expect_index_gauges();
    for (int i = 0; i < Q; i++) {
        json_object *a = get_ok("/search?phash=%s&k=10&max_distance=30", queries[i]);
        char *after = result_lines(a);
        if (strcmp(before[i], after) != 0) fail_msg("query %d changed:\n%s\nafter:\n%s", i, before[i], after);
        free(after);
        free(before[i]);
        json_object_put(a);
    }
    /* nothing counted twice: the items are the archive's items with a hash */
    long archived = pgtest_long("SELECT (SELECT count(*) FROM %s t WHERE EXISTS (SELECT 1 FROM imgfeed_images(t.data) i"
                                " WHERE i.phash IS NOT NULL OR i.dhash IS NOT NULL)) + (SELECT count(*) FROM %s)",
                                site_table, bulk_table);
    int64_t now = stat_of("items");
    printf("# items: %" PRId64 " before the kill, %" PRId64 " after the restart, %ld in the archive\n", items, now,
           archived);
    assert_int_equal(now, archived);
    proc_stop(&search);
}

/* --- faults (alone) --- */

static void test_pg_down_at_start(void **state) {
    (void)state;
    assert_int_equal(testenv_servers("pg-stop"), 0);
    start_search(NULL);
    proc_wait_log(&search, "cannot load the archive");
    long status;
    json_object *a = ask("/search?phash=jVVSItap1dlSX0zZUmE2ZqZn", NULL, 0, &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(str(a, "error"), "loading"));
    json_object_put(a);
    json_object *st = get_ok("/stats");
    assert_string_equal(str(st, "state"), "loading");
    json_object_put(st);
    /* SIGTERM while it waits for PostgreSQL: exit 0 */
    proc_stop(&search);
    start_search(NULL);
    proc_wait_log(&search, "cannot load the archive");
    assert_int_equal(testenv_servers("pg-start"), 0);
    pgtest_close(); /* its connection died with the server */
    wait_serving();
    json_object *r = get_ok("/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&k=1&max_distance=144");
    assert_int_equal(json_object_array_length(member(r, "results")), 1);
    assert_null(member(r, "warning"));
    json_object_put(r);
    /* connections that failed before one was made are no reconnects */
    assert_true(scrape_value(mport, "imgfeed_database_reconnects_total") == 0);
    /* PostgreSQL restarted while it serves: the pooled connection is found broken (details missing,
     * said so), and the next answer's details come on a new one, counted */
    assert_int_equal(testenv_servers("pg-restart"), 0);
    pgtest_close();
    bool whole = false;
    for (int64_t end = time_mono_ns() / 1000000 + GUARD_MS; !whole && time_mono_ns() / 1000000 < end;) {
        r = get_ok("/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&k=1&max_distance=144");
        whole = member(r, "warning") == NULL;
        json_object_put(r);
        if (!whole) time_sleep_ms(100);
    }
    assert_true(whole);
    assert_true(scrape_value(mport, "imgfeed_database_reconnects_total") == 1);
    proc_stop(&search);
}

static void test_broker_down_later(void **state) {
    (void)state;
    start_search(NULL);
    wait_serving();
    assert_int_equal(testenv_servers("rabbit-stop"), 0);
    for (int i = 0; i < 20; i++) {
        json_object *a = get_ok("/search?phash=jVVSItap1dlSX0zZUmE2ZqZn&k=3&max_distance=144");
        assert_int_equal(json_object_array_length(member(a, "results")), 3);
        json_object_put(a);
        time_sleep_ms(100);
    }
    proc_wait_log(&search, "the broker");
    assert_int_equal(testenv_servers("rabbit-start"), 0);
    char ph[32];
    random_hash(ph);
    publish_hashed(ph, "after the broker came back");
    wait_found(ph, time_mono_ns());
    proc_stop(&search);
}

static int teardown(void **state) {
    (void)state;
    if (search.pid) {
        proc_print_log(&search);
        proc_kill(&search);
    }
    return 0;
}

int main(int argc, char **argv) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_variants_find_originals, teardown),
        cmocka_unit_test_teardown(test_exact_like_postgres, teardown),
        cmocka_unit_test_teardown(test_new_item_found, teardown),
        cmocka_unit_test_teardown(test_bad_input, teardown),
        cmocka_unit_test_teardown(test_cli, teardown),
        cmocka_unit_test_teardown(test_page_in_chromium, teardown),
        cmocka_unit_test_teardown(test_kill9_restart, teardown),
    };
    const struct CMUnitTest faults[] = {
        cmocka_unit_test_teardown(test_pg_down_at_start, teardown),
        cmocka_unit_test_teardown(test_broker_down_later, teardown),
    };
    faults_only = argc > 1 && strcmp(argv[1], "faults") == 0;
    if (faults_only)
        return cmocka_run_group_tests_name("faults", faults, group_setup, group_teardown);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
