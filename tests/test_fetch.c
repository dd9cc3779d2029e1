/* test_fetch.c -- common/fetch.c: many downloads on curl's multi interface,
 * against the local fixture server.
 *
 * Every outcome the consumer turns into an `_img` entry is produced for
 * real: success, 404, retried 5xx, timeout, a Content-Length over the limit,
 * a body growing past it, redirects (followed, looping, and to a refused
 * private address), plus connection reuse, the transfer limit, the per-host
 * rate limit and cancelling; user names and passwords in URLs never sent
 * (the fixture server records every request's headers); and the memory
 * budget: transfers paused until their bodies fit, one larger than the
 * budget going alone, a transfer timed out while paused started again.
 * Each result's outcome (the hasher's downloads_total{result}) is checked
 * with its error, and its seconds are those of its transfers alone.
 * Timing is only ever a lower bound the rate limiter guarantees; deadlines
 * are failure guards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "fetch.h"
#include "http.h"
#include "membudget.h"
#include "fixture.h"
#include "netguard.h"
#include "ratelimit.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 60000

static fixture fx;

static int start_fixture(void **state) {
    (void)state;
    fixture_start(&fx);
    return 0;
}

static int stop_fixture(void **state) {
    (void)state;
    fixture_stop(&fx);
    return 0;
}

static void reset_log(void) { json_object_put(fixture_control(&fx, "reset")); }

static fetch_options quick_options(void) {
    fetch_options o;
    fetch_options_init(&o);
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 100;
    o.timeout_ms = 10000;
    return o;
}

/* Run F until N results are taken (in the order they finished). */
static void drive(fetch *f, fetch_result *results, size_t n, size_t max_running) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    size_t got = 0;
    while (got < n) {
        if (time_mono_ns() > deadline) fail_msg("only %zu of %zu downloads finished", got, n);
        assert_int_equal(fetch_perform(f, 100, true), 0);
        if (max_running) assert_true(fetch_running(f) <= max_running);
        while (got < n && fetch_take(f, &results[got])) {
            membudget_release(&results[got].claim); /* the test keeps no body in the budget */
            got++;
        }
    }
    assert_int_equal(fetch_pending(f), 0);
}

/* One download of URL with options O (NULL: quick ones). */
static void fetch_one(const char *url, const fetch_options *o, const netguard *g, fetch_result *r) {
    fetch_options quick = quick_options();
    fetch *f = fetch_new(o ? o : &quick, NULL, g, NULL);
    assert_non_null(f);
    int tag = 7;
    fetch_add(f, url, &tag);
    drive(f, r, 1, 0);
    assert_ptr_equal(r->userdata, &tag);
    fetch_free(f);
}

static void test_media_urls(void **state) {
    (void)state;
    static const struct {
        const char *url;
        bool media;
    } cases[] = {
        {"https://i.4cdn.org/g/1400000000000.jpg", true},
        {"https://i.4cdn.org/g/1400000000000.JPG", true},
        {"http://h/a.jpeg", true},
        {"http://h/a.png?x=1.html", true},
        {"http://h/a.gif#frag", true},
        {"http://h/dir.jpg/file", false},
        {"http://h/a.webm", true},
        {"http://h/a.mp4", true},
        {"http://h/a.webp", true},
        {"http://h/a.bmp", true},
        {"http://h/a.tif", true},
        {"http://h/a.TIFF", true},
        {"http://h/a.avif", true},
        {"http://h/a.heic", true},
        {"http://h/a.heif", true},
        {"http://h/thread/123", false},
        {"http://h/page.html", false},
        {"http://h/a.gifv", false},
        {"http://h/a.jpg.html", false},
        {"http://h/image?format=jpg", false},
        {"http://h.jpg", false},
        {"http://h.jpg/", false},
        {"http://h/.jpg", true},
        {"http://h/a.", false},
        {"/relative/a.jpg", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (fetch_is_media_url(cases[i].url) != cases[i].media)
            fail_msg("%s: expected %s", cases[i].url, cases[i].media ? "media" : "not media");
    }
    assert_false(fetch_is_media_url(NULL));
}

static void test_ok_and_statuses(void **state) {
    (void)state;
    fetch_result r;
    char *url = fixture_url(&fx, "/bytes?n=100000");
    fetch_one(url, NULL, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.outcome, FETCH_OUTCOME_OK);
    assert_true(r.seconds > 0);
    assert_int_equal(r.len, 100000);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body[0], 'b');
    assert_int_equal(r.body[99999], 'b');
    free(r.body);
    free(url);

    url = fixture_url(&fx, "/bytes?n=0");
    fetch_one(url, NULL, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.len, 0);
    assert_non_null(r.body);
    free(r.body);
    free(url);

    url = fixture_url(&fx, "/status/404/a.jpg");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_null(r.body);
    assert_string_equal(r.error, "http 404");
    assert_int_equal(r.outcome, FETCH_OUTCOME_HTTP_ERROR);
    assert_int_equal(r.attempts, 1); /* final */
    free(url);

    url = fixture_url(&fx, "/status/500/a.jpg?key=retry&fail=1");
    fetch_one(url, NULL, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.attempts, 2);
    free(r.body);
    free(url);

    url = fixture_url(&fx, "/status/503/a.jpg");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "http 503");
    assert_int_equal(r.outcome, FETCH_OUTCOME_HTTP_ERROR);
    assert_int_equal(r.attempts, 3); /* 1 + max_retries */
    free(url);

    /* A Retry-After longer than retry_after_max_ms: `_img` says the status. */
    url = fixture_url(&fx, "/status/429/a.jpg?retry_after=300");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "http 429");
    assert_int_equal(r.outcome, FETCH_OUTCOME_RATE_LIMITED);
    assert_int_equal(r.attempts, 1);
    free(url);

    static const char *const names[FETCH_OUTCOMES] = {"ok",        "http_error",      "timeout",
                                                      "too_large", "refused_address", "network_error",
                                                      "bad_url",   "redirect_error",  "rate_limited"};
    for (int i = 0; i < FETCH_OUTCOMES; i++)
        assert_string_equal(fetch_outcome_name((fetch_outcome)i), names[i]);
    assert_string_equal(fetch_outcome_name(FETCH_OUTCOMES), "unknown");
}

static void test_timeout(void **state) {
    (void)state;
    fetch_options o = quick_options();
    o.timeout_ms = 300;
    o.max_retries = 1;
    fetch_result r;
    char *url = fixture_url(&fx, "/slow/s.jpg?delay=5");
    fetch_one(url, &o, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "timeout");
    assert_int_equal(r.outcome, FETCH_OUTCOME_TIMEOUT);
    assert_int_equal(r.attempts, 2);
    assert_true(r.seconds >= 0.5); /* two attempts of 0.3 s */
    free(url);
}

static void test_too_large(void **state) {
    (void)state;
    fetch_options o = quick_options();
    o.max_bytes = 1024 * 1024;
    fetch_result r;
    char *url = fixture_url(&fx, "/huge/h.jpg?key=huge");
    fetch_one(url, &o, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "too large");
    assert_int_equal(r.outcome, FETCH_OUTCOME_TOO_LARGE);
    assert_int_equal(r.attempts, 1);
    free(url);
    /* Refused by its Content-Length: the server noticed the hang-up long
     * before the limit was sent. */
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    for (;;) {
        json_object *b = fixture_control(&fx, "bytes?key=huge"), *done, *bytes;
        assert_true(json_object_object_get_ex(b, "done", &done));
        assert_true(json_object_object_get_ex(b, "bytes", &bytes));
        bool is_done = json_object_get_boolean(done);
        int64_t n = json_object_get_int64(bytes);
        json_object_put(b);
        if (is_done) {
            assert_true(n < 64 * 1024 * 1024);
            break;
        }
        if (time_mono_ns() > deadline) fail_msg("the server still streams /huge");
        time_sleep_ms(20);
    }

    url = fixture_url(&fx, "/endless/e.jpg?key=endless");
    fetch_one(url, &o, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "too large");
    assert_int_equal(r.outcome, FETCH_OUTCOME_TOO_LARGE);
    free(url);
}

static void test_redirects(void **state) {
    (void)state;
    fetch_result r;
    char *url = fixture_url(&fx, "/chain/3");
    fetch_one(url, NULL, NULL, &r);
    assert_true(r.ok);
    assert_int_equal(r.redirects, 3);
    assert_memory_equal(r.body, "end of chain\n", 13);
    free(r.body);
    free(url);

    url = fixture_url(&fx, "/loop/a");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "too many redirects (more than 5)");
    assert_int_equal(r.outcome, FETCH_OUTCOME_REDIRECT_ERROR);
    free(url);

    url = fixture_url(&fx, "/redirect/r.jpg?to=ftp://example.com/a.jpg");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "bad url"));
    assert_int_equal(r.outcome, FETCH_OUTCOME_BAD_URL);
    free(url);
}

/* The guard sees the address of every new connection: a server allowed by
 * --allow-net may not redirect to a private address. */
static void test_guard(void **state) {
    (void)state;
    fixture other;
    fixture_options fo = {.host = "127.0.0.2"};
    fixture_start_with(&other, &fo);
    netguard *g = netguard_new(false);
    char err[128];
    assert_int_equal(netguard_allow_list(g, "127.0.0.2/32", err, sizeof err), 0);

    fetch_result r;
    char *url = fixture_url(&other, "/ok");
    fetch_one(url, NULL, g, &r);
    assert_true(r.ok);
    free(r.body);
    free(url);

    char *target = fixture_url(&fx, "/ok");
    url = fixture_url(&other, "/redirect/r.jpg?to=%s", target);
    fetch_one(url, NULL, g, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "refused: private address 127.0.0.1 (loopback)");
    assert_int_equal(r.outcome, FETCH_OUTCOME_REFUSED_ADDRESS);
    assert_int_equal(r.attempts, 2); /* the hop, not retried */
    free(url);

    reset_log();
    fetch_one(target, NULL, g, &r);
    assert_false(r.ok);
    assert_string_equal(r.error, "refused: private address 127.0.0.1 (loopback)");
    json_object *log = fixture_log(&fx, "/");
    assert_int_equal(json_object_array_length(log), 0); /* never connected */
    json_object_put(log);
    log = fixture_log(&other, "/redirect");
    assert_int_equal(json_object_array_length(log), 1);
    json_object_put(log);
    free(target);

    netguard_free(g);
    fixture_stop(&other);
}

/* Sequential downloads from one host share one connection. */
static void test_connection_reuse(void **state) {
    (void)state;
    reset_log();
    fetch_options o = quick_options();
    fetch *f = fetch_new(&o, NULL, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        char *url = fixture_url(&fx, "/bytes?n=%d", 100 + i);
        fetch_add(f, url, NULL);
        free(url);
        fetch_result r;
        drive(f, &r, 1, 0);
        assert_true(r.ok);
        free(r.body);
    }
    fetch_free(f);
    json_object *log = fixture_log(&fx, "/bytes");
    assert_int_equal(json_object_array_length(log), 5);
    const char *first = NULL;
    for (size_t i = 0; i < 5; i++) {
        json_object *conn;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "conn", &conn));
        if (!first) first = json_object_get_string(conn);
        assert_string_equal(json_object_get_string(conn), first);
    }
    json_object_put(log);
}

/* At most max_transfers run; every job still finishes. */
static void test_transfer_limit(void **state) {
    (void)state;
    fetch_options o = quick_options();
    o.max_transfers = 2;
    fetch *f = fetch_new(&o, NULL, NULL, NULL);
    for (int i = 0; i < 6; i++) {
        char *url = fixture_url(&fx, "/slow/s%d.jpg?delay=0.2", i);
        fetch_add(f, url, NULL);
        free(url);
    }
    fetch_result r[6];
    drive(f, r, 6, 2);
    for (int i = 0; i < 6; i++) {
        assert_true(r[i].ok);
        free(r[i].body);
    }
    fetch_free(f);
}

/* Grants to one host are at least 1/rps apart, and the loop never blocks on
 * them: a job of another host goes first. */
static void test_rate_limit(void **state) {
    (void)state;
    reset_log();
    ratelimit *rl = ratelimit_new(0);
    ratelimit_set_rate(rl, "127.0.0.1", 5);
    fetch_options o = quick_options();
    fetch *f = fetch_new(&o, rl, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        char *url = fixture_url(&fx, "/bytes?n=%d", i + 1);
        fetch_add(f, url, NULL);
        free(url);
    }
    fixture other;
    fixture_options fo = {.host = "127.0.0.3"};
    fixture_start_with(&other, &fo);
    char *url = fixture_url(&other, "/ok");
    int unlimited = 1;
    fetch_add(f, url, &unlimited);
    free(url);
    fetch_result r[5];
    drive(f, r, 5, 0);
    bool other_before_last = false;
    for (int i = 0; i < 5; i++) {
        assert_true(r[i].ok);
        /* the transfer alone: the last one waited 0.6 s for its grant */
        if (r[i].seconds >= 0.5)
            fail_msg("download %d took %.3f s, the wait for the rate limit counted", i, r[i].seconds);
        if (r[i].userdata == &unlimited && i < 4) other_before_last = true;
        free(r[i].body);
    }
    assert_true(other_before_last);
    fetch_free(f);
    ratelimit_free(rl);
    fixture_stop(&other);

    json_object *log = fixture_log(&fx, "/bytes");
    assert_int_equal(json_object_array_length(log), 4);
    double prev = 0;
    for (size_t i = 0; i < 4; i++) {
        json_object *mono;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "mono", &mono));
        double t = json_object_get_double(mono);
        /* 0.2 s apart when granted; half of it at the server leaves room
         * for a slow thread there, and an unlimited client is ~1 ms. */
        if (i > 0 && t - prev < 0.1) fail_msg("requests %zu and %zu only %.3f s apart", i - 1, i, t - prev);
        prev = t;
    }
    json_object_put(log);
}

static void test_cancel(void **state) {
    (void)state;
    fetch_options o = quick_options();
    fetch *f = fetch_new(&o, NULL, NULL, NULL);
    char *url = fixture_url(&fx, "/slow/c.jpg?delay=5");
    fetch_job *slow = fetch_add(f, url, NULL);
    free(url);
    url = fixture_url(&fx, "/ok");
    fetch_job *waiting = fetch_add(f, url, NULL);
    free(url);
    fetch_cancel(f, waiting);
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (fetch_running(f) == 0) {
        if (time_mono_ns() > deadline) fail_msg("the download never started");
        assert_int_equal(fetch_perform(f, 50, true), 0);
    }
    fetch_cancel(f, slow);
    assert_int_equal(fetch_pending(f), 0);
    assert_int_equal(fetch_perform(f, 0, true), 0);
    fetch_result r;
    assert_false(fetch_take(f, &r));
    fetch_free(f);
    fetch_free(NULL);
}

/* --- user info in URLs --- */

static void test_strip_userinfo(void **state) {
    (void)state;
    static const struct {
        const char *url, *clean; /* clean NULL: cannot be parsed */
        bool stripped;
    } cases[] = {
        {"http://user:secret@h.example/x.png", "http://h.example/x.png", true},
        {"http://user@h.example/x.png", "http://h.example/x.png", true},
        {"http://:secret@h.example/x.png", "http://h.example/x.png", true},
        {"https://u:p@h.example:8443/a/b.jpg?q=1#f", "https://h.example:8443/a/b.jpg?q=1#f", true},
        {"http://us%40er:p%3Aw@h.example/x.png", "http://h.example/x.png", true},
        {"http://@h.example/x.png", "http://h.example/x.png", true},
        {"http://h.example/x.png", "http://h.example/x.png", false},
        {"http://h.example/a@b.png", "http://h.example/a@b.png", false},
        {"http://h.example/x.png?to=u:p@h", "http://h.example/x.png?to=u:p@h", false},
        {"HTTP://h.example:80/x.PNG", "HTTP://h.example:80/x.PNG", false}, /* untouched: nothing to remove */
        {"http://u:p@/x.png", NULL, false},
        {"http://u:p@h.example x/x.png", NULL, false},
        {"", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool stripped = !cases[i].stripped;
        char *clean = http_url_strip_userinfo(cases[i].url, &stripped);
        if (!cases[i].clean) {
            if (clean) fail_msg("%s: expected no url, got %s", cases[i].url, clean);
            continue;
        }
        if (!clean || strcmp(clean, cases[i].clean) != 0)
            fail_msg("%s: expected %s, got %s", cases[i].url, cases[i].clean, clean ? clean : "NULL");
        assert_int_equal(stripped, cases[i].stripped);
        free(clean);
    }
    assert_null(http_url_strip_userinfo(NULL, NULL));
}

/* No request of LOG (fixture log entries) carried credentials. */
static void assert_no_authorization(json_object *log) {
    for (size_t i = 0; i < json_object_array_length(log); i++) {
        json_object *headers;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "headers", &headers));
        json_object_object_foreach(headers, name, value) {
            if (strcasecmp(name, "authorization") == 0 || strcasecmp(name, "proxy-authorization") == 0)
                fail_msg("request %zu sent %s: %s", i, name, json_object_get_string(value));
        }
    }
}

/* A URL with a user name and password is downloaded without them, and so
 * is a redirect's Location that has them (curl 7.88 would send both as
 * Authorization: Basic); no error text shows the password. */
static void test_userinfo_never_sent(void **state) {
    (void)state;
    reset_log();
    fetch_result r;
    char *url = xasprintf("http://user:secret@%s:%d/files/none.png", fx.host, fx.port);
    fetch_one(url, NULL, NULL, &r); /* no --files: 404, but the request is what counts */
    assert_false(r.ok);
    assert_string_equal(r.error, "http 404");
    free(url);
    url = xasprintf("http://user:secret@%s:%d/ok", fx.host, fx.port);
    fetch_one(url, NULL, NULL, &r);
    assert_true(r.ok);
    assert_memory_equal(r.body, "ok\n", 3);
    free(r.body);
    free(url);
    json_object *log = fixture_log(&fx, "/");
    assert_int_equal(json_object_array_length(log), 2);
    assert_no_authorization(log);
    json_object_put(log);

    /* Absolute and scheme-relative Locations with user info. */
    for (int i = 0; i < 2; i++) {
        reset_log();
        char *target = xasprintf("%suser:secret@%s:%d/ok", i == 0 ? "http://" : "//", fx.host, fx.port);
        url = fixture_url(&fx, "/redirect/r.jpg?to=%s", target);
        fetch_one(url, NULL, NULL, &r);
        assert_true(r.ok);
        assert_int_equal(r.redirects, 1);
        assert_memory_equal(r.body, "ok\n", 3);
        free(r.body);
        log = fixture_log(&fx, "/");
        assert_int_equal(json_object_array_length(log), 2);
        assert_no_authorization(log);
        json_object_put(log);
        free(url);
        free(target);
    }

    /* A Location that cannot be used: its password is not in the error. */
    url = fixture_url(&fx, "/redirect/r.jpg?to=http://user:secret@/x.png");
    fetch_one(url, NULL, NULL, &r);
    assert_false(r.ok);
    assert_non_null(strstr(r.error, "bad url"));
    if (strstr(r.error, "secret")) fail_msg("the error shows the password: %s", r.error);
    free(url);
}

/* --- the memory budget --- */

static membudget_stats budget_stats(const membudget *b) {
    membudget_stats s;
    membudget_get_stats(b, &s);
    return s;
}

/* Six bodies of 300 kB while 800 kB of a 1 MiB budget are taken by other
 * work: the transfers that started pause at their first bytes and none
 * finishes; once the memory is given back they resume, every body arrives
 * whole, and the budget is never exceeded. */
static void test_budget_pauses(void **state) {
    (void)state;
    membudget *b = membudget_new(1 << 20);
    membudget_claim other;
    membudget_claim_init(&other, b);
    assert_true(membudget_reserve(&other, 800 * 1024));
    fetch_options o = quick_options();
    o.max_transfers = 8;
    fetch *f = fetch_new(&o, NULL, NULL, b);
    for (int i = 0; i < 6; i++) {
        char *url = fixture_url(&fx, "/bytes?n=300000&i=%d", i);
        fetch_add(f, url, NULL);
        free(url);
    }
    fetch_result r[6];
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (budget_stats(b).waiting == 0) {
        if (time_mono_ns() > deadline) fail_msg("no download ever waited for memory");
        assert_int_equal(fetch_perform(f, 20, true), 0);
        assert_false(fetch_take(f, &r[0]));
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(fetch_perform(f, 20, true), 0);
        assert_false(fetch_take(f, &r[0])); /* no body fits while the 800 kB are taken */
    }
    assert_true(fetch_running(f) > 0); /* paused, not failed */
    membudget_release(&other);
    drive(f, r, 6, 8);
    for (int i = 0; i < 6; i++) {
        assert_true(r[i].ok);
        assert_int_equal(r[i].len, 300000);
        assert_int_equal(r[i].body[299999], 'b');
        assert_int_equal(r[i].attempts, 1);
        free(r[i].body);
    }
    membudget_stats s = budget_stats(b);
    fprintf(stderr, "budget of 1 MiB: at most %llu bytes held, %llu waits\n", (unsigned long long)s.peak,
            (unsigned long long)s.waits);
    assert_true(s.waits > 0);
    assert_int_equal(s.overdrafts, 0);
    assert_true(s.peak <= 1 << 20);
    assert_int_equal(s.used, 0);
    fetch_free(f);
    membudget_free(b);
}

/* A body larger than the whole budget is downloaded alone; one of unknown
 * length grows within it until it is cut at --max-bytes. */
static void test_budget_alone_and_growing(void **state) {
    (void)state;
    membudget *b = membudget_new(100 * 1024);
    fetch_options o = quick_options();
    o.max_bytes = 1024 * 1024;
    fetch *f = fetch_new(&o, NULL, NULL, b);
    char *url = fixture_url(&fx, "/bytes?n=500000");
    fetch_add(f, url, NULL);
    free(url);
    url = fixture_url(&fx, "/endless/e.jpg?key=budget");
    fetch_add(f, url, NULL);
    free(url);
    fetch_result r[2];
    drive(f, r, 2, 0);
    int ok = r[0].ok ? 0 : 1;
    assert_true(r[ok].ok);
    assert_int_equal(r[ok].len, 500000);
    free(r[ok].body);
    assert_false(r[1 - ok].ok);
    assert_string_equal(r[1 - ok].error, "too large");
    membudget_stats s = budget_stats(b);
    assert_true(s.overdrafts >= 1);
    assert_int_equal(s.used, 0);
    fetch_free(f);
    membudget_free(b);
}

/* A transfer paused for memory longer than its timeout is started again,
 * not counted as a retry and not failed: it waits, without starting, until
 * its whole body fits, then arrives whole. */
static void test_budget_timeout_while_paused(void **state) {
    (void)state;
    reset_log();
    membudget *b = membudget_new(1 << 20);
    fetch_options o = quick_options();
    o.timeout_ms = 500;
    o.max_retries = 0;
    fetch *f = fetch_new(&o, NULL, NULL, b);
    char *url = fixture_url(&fx, "/bytes?n=800000&job=a");
    fetch_add(f, url, NULL);
    free(url);
    fetch_result a;
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (!fetch_take(f, &a)) {
        if (time_mono_ns() > deadline) fail_msg("the first download never finished");
        assert_int_equal(fetch_perform(f, 50, true), 0);
    }
    assert_true(a.ok);
    assert_int_equal(a.claim.held, 800001); /* kept: 800 kB of the 1 MiB stay taken */

    url = fixture_url(&fx, "/bytes?n=800000&job=b");
    fetch_add(f, url, NULL);
    free(url);
    /* It starts, pauses at its first bytes, times out, and then waits. */
    for (;;) {
        if (time_mono_ns() > deadline) fail_msg("the second download never timed out while paused");
        assert_int_equal(fetch_perform(f, 50, true), 0);
        json_object *log = fixture_log(&fx, "/bytes");
        size_t requests = json_object_array_length(log);
        json_object_put(log);
        if (requests == 2 && fetch_running(f) == 0) break;
    }
    fetch_result r;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(fetch_perform(f, 20, true), 0);
        assert_int_equal(fetch_running(f), 0); /* its 800 kB cannot be had: it does not start */
        assert_false(fetch_take(f, &r));
    }
    membudget_release(&a.claim);
    free(a.body);
    drive(f, &r, 1, 0);
    assert_true(r.ok);
    assert_int_equal(r.len, 800000);
    assert_int_equal(r.attempts, 2);
    free(r.body);
    json_object *log = fixture_log(&fx, "/bytes");
    assert_int_equal(json_object_array_length(log), 3);
    json_object_put(log);
    assert_int_equal(budget_stats(b).used, 0);
    fetch_free(f);
    membudget_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_urls),
        cmocka_unit_test(test_ok_and_statuses),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_transfer_limit),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_strip_userinfo),
        cmocka_unit_test(test_userinfo_never_sent),
        cmocka_unit_test(test_budget_pauses),
        cmocka_unit_test(test_budget_alone_and_growing),
        cmocka_unit_test(test_budget_timeout_while_paused),
    };
    return cmocka_run_group_tests(tests, start_fixture, stop_fixture);
}
