/* test_ratelimit.c -- the per-host rate limiter, alone and under HTTP load.
 *
 * The unit tests drive the logic with an explicit clock (ratelimit_try_at).
 * The real tests send HTTP requests as fast as the limiter lets them to the
 * local fixture server for about three seconds at 5 requests per second, and
 * check the limiter's own grant times (recorded by its observer, in grant
 * order) strictly, and the server's arrival times and per-second counts.
 * Only properties the limiter guarantees are asserted, plus a count within
 * one of the expected, which leaves one interval of slack for a loaded
 * machine waking the waiters late.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <pthread.h>

#include "fixture.h"
#include "http.h"
#include "ratelimit.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define MS TIME_NS_PER_MS
#define S TIME_NS_PER_S

/* --- unit tests on an explicit clock --- */

static void test_spacing(void **state) {
    ratelimit *rl = ratelimit_new(0);
    ratelimit_set_rate(rl, "a.4cdn.org", 5.0);
    int64_t t0 = 10 * S;
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0), 0);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 50 * MS), 150 * MS);
    assert_int_equal(ratelimit_peek_at(rl, "a.4cdn.org", t0 + 100 * MS), 100 * MS);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 199 * MS), 1 * MS);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 200 * MS), 0);
    /* Granted late: the next one is due 1/rps after the actual grant, with no
     * catching up. */
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 900 * MS), 0);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 1000 * MS), 100 * MS);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0 + 1100 * MS), 0);
    /* Another host is not held back. */
    assert_int_equal(ratelimit_try_at(rl, "b.4cdn.org", t0 + 1100 * MS), 0);
    assert_int_equal(ratelimit_try_at(rl, "b.4cdn.org", t0 + 1100 * MS), 0);
    ratelimit_free(rl);
}

static void test_host_names(void **state) {
    ratelimit *rl = ratelimit_new(0);
    ratelimit_set_rate(rl, "A.4CDN.org", 1.0);
    int64_t t0 = 5 * S;
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org", t0), 0);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.ORG", t0), S);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.org.", t0), S);
    assert_int_equal(ratelimit_try_at(rl, "a.4cdn.or", t0), 0);
    assert_int_equal(ratelimit_host_count(rl), 1);
    ratelimit_free(rl);
}

static void test_default_rate(void **state) {
    ratelimit *rl = ratelimit_new(0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_try_at(rl, "free.example", S), 0);
    assert_int_equal(ratelimit_host_count(rl), 0); /* unlimited needs no memory */
    ratelimit_set_default_rate(rl, 2.0);
    assert_int_equal(ratelimit_try_at(rl, "free.example", S), 0);
    assert_int_equal(ratelimit_try_at(rl, "free.example", S), 500 * MS);
    /* A host set to 0 stays unlimited under a limited default. */
    ratelimit_set_rate(rl, "fast.example", 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ratelimit_try_at(rl, "fast.example", S), 0);
    /* Odd rates are unlimited, not undefined. */
    ratelimit_set_rate(rl, "neg.example", -3);
    assert_int_equal(ratelimit_try_at(rl, "neg.example", S), 0);
    assert_int_equal(ratelimit_try_at(rl, "neg.example", S), 0);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

static void test_pause(void **state) {
    ratelimit *rl = ratelimit_new(0);
    ratelimit_set_rate(rl, "limited.example", 10.0);
    int64_t t0 = 100 * S;
    ratelimit_pause(rl, "limited.example", t0 + 5 * S);
    ratelimit_pause(rl, "limited.example", t0 + 1 * S); /* does not shorten it */
    assert_int_equal(ratelimit_try_at(rl, "limited.example", t0), 5 * S);
    assert_int_equal(ratelimit_try_at(rl, "limited.example", t0 + 4 * S), 1 * S);
    assert_int_equal(ratelimit_try_at(rl, "limited.example", t0 + 5 * S), 0);
    assert_int_equal(ratelimit_try_at(rl, "limited.example", t0 + 5 * S), 100 * MS);
    /* An unlimited host can be paused too, and is free again after. */
    ratelimit_pause(rl, "Free.Example", t0 + 2 * S);
    assert_int_equal(ratelimit_try_at(rl, "free.example", t0), 2 * S);
    assert_int_equal(ratelimit_try_at(rl, "free.example", t0 + 2 * S), 0);
    assert_int_equal(ratelimit_try_at(rl, "free.example", t0 + 2 * S), 0);
    ratelimit_free(rl);
}

/* Millions of distinct hosts do not make the table grow without bound:
 * entries idle for one interval are swept; configured hosts stay. */
static void test_memory_bounded(void **state) {
    ratelimit *rl = ratelimit_new(1.0); /* an entry is live for 1 s after its grant */
    ratelimit_set_rate(rl, "kept.example", 0.001);
    int64_t t0 = 1000 * S;
    assert_int_equal(ratelimit_try_at(rl, "kept.example", t0), 0);
    size_t most = 0;
    char host[64];
    for (int i = 0; i < 200000; i++) {
        snprintf(host, sizeof host, "h%d.example", i);
        assert_int_equal(ratelimit_try_at(rl, host, t0 + (int64_t)i * MS), 0);
        size_t n = ratelimit_host_count(rl);
        if (n > most) most = n;
    }
    /* About 1000 hosts are live at any time (1 s at one per ms). */
    if (most > 4200) fail_msg("the registry tracked %zu hosts at once", most);
    assert_true(ratelimit_try_at(rl, "kept.example", t0 + 200 * S) > 0);
    /* A host swept while idle is still held to its rate once it returns. */
    int64_t later = t0 + 300 * S;
    assert_int_equal(ratelimit_try_at(rl, "h1.example", later), 0);
    assert_int_equal(ratelimit_try_at(rl, "h1.example", later), S);
    ratelimit_free(rl);
}

typedef struct grants {
    int64_t t[4096];
    int n;
} grants;

static void record_grant(void *userdata, const char *host, int64_t granted_ns) {
    grants *g = userdata;
    if (g->n < (int)(sizeof g->t / sizeof g->t[0])) g->t[g->n++] = granted_ns;
}

static void test_acquire(void **state) {
    sig_reset();
    ratelimit *rl = ratelimit_new(0);
    grants *g = xcalloc(1, sizeof *g);
    ratelimit_set_observer(rl, record_grant, g);
    ratelimit_set_rate(rl, "h.example", 20.0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_acquire(rl, "h.example", -1), RATELIMIT_OK);
    assert_int_equal(g->n, 5);
    for (int i = 1; i < g->n; i++)
        assert_true(g->t[i] - g->t[i - 1] >= 50 * MS);
    /* A wait beyond the maximum is refused at once, without a grant. */
    ratelimit_pause(rl, "h.example", time_mono_ns() + 3600 * S);
    assert_int_equal(ratelimit_acquire(rl, "h.example", 1 * S), RATELIMIT_TOO_LONG);
    assert_int_equal(g->n, 5);
    /* A stop ends the wait. */
    sig_request_stop();
    assert_int_equal(ratelimit_acquire(rl, "h.example", -1), RATELIMIT_STOPPED);
    sig_reset();
    ratelimit_free(rl);
    free(g);
}

/* --- real tests: HTTP through the limiter to the fixture server --- */

#define RATE 5.0
#define RATE_INTERVAL_NS (200 * MS)
#define RUN_NS (3 * S)

typedef struct load {
    fixture server;
    ratelimit *rl;
    grants g;
    int64_t start;
    char *url;
} load;

static int load_setup(void **state) {
    load *l = xcalloc(1, sizeof *l);
    sig_reset();
    fixture_start(&l->server);
    l->rl = ratelimit_new(0);
    ratelimit_set_rate(l->rl, "127.0.0.1", RATE);
    ratelimit_set_observer(l->rl, record_grant, &l->g);
    l->url = fixture_url(&l->server, "/ok");
    *state = l;
    return 0;
}

static int load_teardown(void **state) {
    load *l = *state;
    ratelimit_free(l->rl);
    fixture_stop(&l->server);
    free(l->url);
    free(l);
    return 0;
}

static http_client *load_client(load *l) {
    http_options o;
    http_options_init(&o);
    o.max_retries = 0;
    http_client *c = http_client_new(&o, l->rl);
    assert_non_null(c);
    return c;
}

/* Requests as fast as the limiter allows until RUN_NS after start. */
static int hammer(load *l, http_client *c) {
    int sent = 0;
    while (time_mono_ns() - l->start < RUN_NS) {
        http_request req = {.url = l->url};
        http_response resp;
        int rc = http_get(c, &req, &resp);
        http_response_release(&resp);
        if (rc != 0) return -1;
        sent++;
    }
    return sent;
}

/* The limiter's grant times, in grant order: never two closer than the
 * interval, so no window of one second holds more than RATE; and the count
 * within the first RUN_NS is within one of RATE per second. */
static void check_grants(const grants *g) {
    assert_true(g->n > 1);
    for (int i = 1; i < g->n; i++) {
        int64_t gap = g->t[i] - g->t[i - 1];
        if (gap < RATE_INTERVAL_NS) fail_msg("grants %d and %d only %lld ns apart", i - 1, i, (long long)gap);
    }
    for (int i = 0; i < g->n; i++) {
        int in_window = 0;
        for (int j = i; j < g->n && g->t[j] - g->t[i] < S; j++)
            in_window++;
        if (in_window > (int)RATE) fail_msg("%d grants within one second from grant %d", in_window, i);
    }
    int counted = 0;
    for (int i = 0; i < g->n; i++) {
        if (g->t[i] - g->t[0] < RUN_NS) counted++;
    }
    int expected = (int)(RATE * (double)RUN_NS / S); /* 15 */
    if (counted < expected - 1 || counted > expected + 1) {
        fail_msg("%d grants in %lld s at %.0f per second, expected %d +- 1", counted, (long long)(RUN_NS / S), RATE,
                 expected);
    }
}

/* What the server saw: per-second counts within the rate, and arrival times
 * that keep the spacing (less 50 ms for delivery jitter). */
static void check_server(load *l, int requests) {
    json_object *counts_doc = fixture_control(&l->server, "counts?prefix=/ok");
    json_object *counts = NULL;
    assert_true(json_object_object_get_ex(counts_doc, "counts", &counts));
    int total = 0;
    json_object_object_foreach(counts, second, count) {
        int n = json_object_get_int(count);
        if (n > (int)RATE) fail_msg("the server counted %d requests in second %s", n, second);
        total += n;
    }
    json_object_put(counts_doc);
    assert_int_equal(total, requests);

    json_object *log = fixture_log(&l->server, "/ok");
    size_t n = json_object_array_length(log);
    assert_int_equal(n, (size_t)requests);
    for (size_t i = 0; i + (size_t)RATE < n; i++) {
        json_object *a = NULL, *b = NULL;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "mono", &a));
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i + (size_t)RATE), "mono", &b));
        double span = json_object_get_double(b) - json_object_get_double(a);
        if (span < 0.95) fail_msg("the server got %d requests within %.3f s", (int)RATE + 1, span);
    }
    json_object_put(log);
}

static void test_rate_over_http(void **state) {
    load *l = *state;
    http_client *c = load_client(l);
    l->start = time_mono_ns();
    int sent = hammer(l, c);
    http_client_free(c);
    assert_true(sent > 0);
    assert_int_equal(sent, l->g.n);
    check_grants(&l->g);
    check_server(l, sent);
}

typedef struct worker {
    load *l;
    int sent;
} worker;

static void *worker_run(void *arg) {
    worker *w = arg;
    http_client *c = load_client(w->l);
    w->sent = hammer(w->l, c);
    http_client_free(c);
    return NULL;
}

static void test_rate_shared_by_threads(void **state) {
    load *l = *state;
    enum { NTHREADS = 4 };
    worker w[NTHREADS];
    pthread_t threads[NTHREADS];
    l->start = time_mono_ns();
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.l = l};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &w[i]), 0);
    }
    int sent = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_true(w[i].sent >= 0);
        sent += w[i].sent;
    }
    assert_int_equal(sent, l->g.n);
    check_grants(&l->g);
    check_server(l, sent);
}

typedef struct pauser {
    load *l;
    http_response resp;
} pauser;

static void *pauser_run(void *arg) {
    pauser *p = arg;
    http_options o;
    http_options_init(&o);
    http_client *c = http_client_new(&o, p->l->rl);
    char *url = fixture_url(&p->l->server, "/status/429?key=pause&fail=1&retry_after=2");
    http_request req = {.url = url};
    http_get(c, &req, &p->resp);
    free(url);
    http_client_free(c);
    return NULL;
}

/* A 429 with Retry-After to one client holds back another client's request
 * to the same host: it arrives no earlier than Retry-After after the 429. */
static void test_pause_holds_host(void **state) {
    load *l = *state;
    ratelimit_set_rate(l->rl, "127.0.0.1", 0); /* unlimited: only the pause holds it */
    pauser p = {.l = l};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, pauser_run, &p), 0);
    /* Wait until the 429 has paused the host. */
    int64_t deadline = time_mono_ns() + 30 * S;
    while (ratelimit_peek(l->rl, "127.0.0.1") == 0) {
        if (time_mono_ns() > deadline) fail_msg("the 429 never paused the host");
        time_sleep_ns(1 * MS);
    }
    http_client *c = load_client(l);
    http_request req = {.url = l->url};
    http_response resp;
    assert_int_equal(http_get(c, &req, &resp), 0);
    http_response_release(&resp);
    http_client_free(c);
    pthread_join(thread, NULL);
    assert_int_equal(p.resp.result, HTTP_OK);
    assert_int_equal(p.resp.attempts, 2);
    http_response_release(&p.resp);

    json_object *log = fixture_log(&l->server, "/");
    assert_int_equal(json_object_array_length(log), 3);
    double t429 = -1, tok = -1;
    for (size_t i = 0; i < 3; i++) {
        json_object *e = json_object_array_get_idx(log, i), *route = NULL, *status = NULL, *mono = NULL;
        assert_true(json_object_object_get_ex(e, "route", &route));
        assert_true(json_object_object_get_ex(e, "status", &status));
        assert_true(json_object_object_get_ex(e, "mono", &mono));
        if (json_object_get_int(status) == 429) t429 = json_object_get_double(mono);
        if (strcmp(json_object_get_string(route), "/ok") == 0) tok = json_object_get_double(mono);
    }
    json_object_put(log);
    assert_true(t429 >= 0 && tok >= 0);
    if (tok - t429 < 2.0) fail_msg("/ok arrived %.3f s after the 429, before its 2 s retry-after", tok - t429);
}

int main(void) {
    if (http_global_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spacing),
        cmocka_unit_test(test_host_names),
        cmocka_unit_test(test_default_rate),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_acquire),
        cmocka_unit_test_setup_teardown(test_rate_over_http, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_rate_shared_by_threads, load_setup, load_teardown),
        cmocka_unit_test_setup_teardown(test_pause_holds_host, load_setup, load_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_cleanup();
    return failed;
}
