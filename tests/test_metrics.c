/* test_metrics.c -- common/metrics: the registry, the text format and the listener.
 *
 * The text a registry renders is parsed back line by line here (names,
 * labels, escapes, cumulative buckets) and given to `promtool check metrics`
 * when Debian's promtool is installed (it is in the suite's packages); the
 * listener is scraped over loopback with libcurl; counters updated from
 * several threads at once add up exactly; the series cap holds against a
 * flood of label values.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "metrics.h"
#include "sbuf.h"
#include "scrape.h"

static void test_counter_gauge(void **state) {
    (void)state;
    metrics_family *f = metrics_counter("t_requests_total", "requests \"served\"\nby the test \\ server", "site,code");
    metrics_series *a = metrics_get(f, "4chan", "200"), *b = metrics_get(f, "we\"ird\\site\n", "404");
    assert_ptr_equal(metrics_get(f, "4chan", "200"), a); /* the same series again */
    assert_ptr_equal(metrics_counter("t_requests_total", "other help", "site,code"), f);
    metrics_inc(a);
    metrics_add(a, 41);
    metrics_add_double(b, 0.5);
    metrics_add_double(b, -3); /* a counter never goes down */
    metrics_series *g = metrics_get(metrics_gauge("t_depth", "queue depth", NULL));
    metrics_set(g, 7);
    metrics_gauge_add(g, -2.25);
    assert_true(metrics_value(a) == 42);
    assert_true(metrics_value(g) == 4.75);

    size_t len;
    char *text = metrics_render(&len);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# HELP t_requests_total requests \"served\"\\nby the test \\\\ server\n"));
    assert_non_null(strstr(text, "# TYPE t_requests_total counter\n"));
    assert_true(scrape_sample(text, "t_requests_total{site=\"4chan\",code=\"200\"}") == 42);
    assert_true(scrape_sample(text, "t_requests_total{site=\"we\\\"ird\\\\site\\n\",code=\"404\"}") == 0.5);
    assert_true(scrape_sample(text, "t_depth") == 4.75);
    assert_non_null(strstr(text, "# TYPE t_depth gauge\n"));
    /* The process and the build, always. */
    assert_true(scrape_find(text, "process_cpu_seconds_total", NULL));
    assert_true(scrape_find(text, "process_resident_memory_bytes", NULL));
    assert_true(scrape_find(text, "process_open_fds", NULL));
    assert_non_null(strstr(text, "imgfeed_build_info{program=\""));
    free(text);
}

static void test_histogram(void **state) {
    (void)state;
    const double bounds[] = {1, 5, 10};
    metrics_series *h = metrics_get(metrics_histogram("t_lag_seconds", "lag", "board", bounds, 3), "g");
    const double seen[] = {0.5, 1, 3, 5.0001, 9, 100, 100};
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++) metrics_observe(h, seen[i]);
    assert_true(metrics_value(h) == 7);
    size_t len;
    char *text = metrics_render(&len);
    assert_true(scrape_sample(text, "t_lag_seconds_bucket{board=\"g\",le=\"1\"}") == 2); /* le is inclusive */
    assert_true(scrape_sample(text, "t_lag_seconds_bucket{board=\"g\",le=\"5\"}") == 3);
    assert_true(scrape_sample(text, "t_lag_seconds_bucket{board=\"g\",le=\"10\"}") == 5);
    assert_true(scrape_sample(text, "t_lag_seconds_bucket{board=\"g\",le=\"+Inf\"}") == 7);
    assert_true(scrape_sample(text, "t_lag_seconds_count{board=\"g\"}") == 7);
    assert_float_equal(scrape_sample(text, "t_lag_seconds_sum{board=\"g\"}"), 218.5001, 1e-9);
    /* The default buckets are seconds: 1 ms .. 30 s. */
    metrics_series *d = metrics_get(metrics_histogram("t_commit_seconds", "commit", NULL, NULL, 0));
    metrics_observe(d, 0.003);
    free(text);
    text = metrics_render(&len);
    assert_true(scrape_sample(text, "t_commit_seconds_bucket{le=\"0.0025\"}") == 0);
    assert_true(scrape_sample(text, "t_commit_seconds_bucket{le=\"0.005\"}") == 1);
    assert_true(scrape_sample(text, "t_commit_seconds_bucket{le=\"30\"}") == 1);
    free(text);
}

static void test_status_labels(void **state) {
    (void)state;
    assert_string_equal(metrics_status_label(200), "200");
    assert_string_equal(metrics_status_label(429), "429");
    assert_string_equal(metrics_status_label(503), "503");
    assert_string_equal(metrics_status_label(418), "4xx");
    assert_string_equal(metrics_status_label(599), "5xx");
    assert_string_equal(metrics_status_label(0), "none");
    assert_string_equal(metrics_status_label(-1), "none");
    assert_string_equal(metrics_status_label(99999), "other");
}

/* However many label values a hostile input would make, a family holds at
 * most METRICS_MAX_SERIES series; the rest count into one never shown. */
static void test_series_cap(void **state) {
    (void)state;
    metrics_family *f = metrics_counter("t_flood_total", "a flood of label values", "name");
    char name[32];
    for (int i = 0; i < METRICS_MAX_SERIES + 500; i++) {
        snprintf(name, sizeof name, "n%d", i);
        metrics_inc(metrics_get(f, name));
    }
    size_t len;
    char *text = metrics_render(&len);
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, "\nt_flood_total{")); p++) n++;
    assert_int_equal(n, METRICS_MAX_SERIES);
    assert_null(strstr(text, "name=\"n" "4596\""));
    free(text);
}

typedef struct adder {
    metrics_series *c, *h, *g;
} adder;

static void *add_many(void *arg) {
    adder *a = arg;
    for (int i = 0; i < 100000; i++) {
        metrics_inc(a->c);
        metrics_observe(a->h, 0.25);
        metrics_gauge_add(a->g, 1);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    adder a = {metrics_get(metrics_counter("t_adds_total", "adds", NULL)),
               metrics_get(metrics_histogram("t_add_seconds", "adds", NULL, NULL, 0)),
               metrics_get(metrics_gauge("t_adds", "adds", NULL))};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, add_many, &a), 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_true(metrics_value(a.c) == 400000);
    assert_true(metrics_value(a.h) == 400000);
    assert_true(metrics_value(a.g) == 400000);
    size_t len;
    char *text = metrics_render(&len);
    assert_true(scrape_sample(text, "t_add_seconds_sum") == 100000);
    free(text);
}

static size_t keep(char *data, size_t size, size_t n, void *arg) {
    sbuf_add(arg, data, size * n);
    return size * n;
}

/* GET http://127.0.0.1:PORT/PATH: the status, the body in *BODY, the Content-Type in TYPE. */
static long get(int port, const char *path, sbuf *body, char *type, size_t typelen) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(type, typelen, "%s", ct ? ct : "");
    curl_easy_cleanup(c);
    sbuf_addc(body, '\0');
    return status;
}

static void test_listener(void **state) {
    (void)state;
    char why[256];
    metrics_set_program("test_metrics");
    assert_int_equal(metrics_serve("127.0.0.1:0", why, sizeof why), 0);
    int port = metrics_port();
    assert_true(port > 0);
    assert_int_equal(metrics_serve("127.0.0.1:0", why, sizeof why), -1); /* one listener a process */
    metrics_inc(metrics_get(metrics_counter("t_scraped_total", "scrapes of the test", NULL)));

    sbuf body = {0};
    char type[128];
    assert_int_equal(get(port, "/metrics", &body, type, sizeof type), 200);
    assert_string_equal(type, METRICS_CONTENT_TYPE);
    assert_true(scrape_sample(body.p, "t_scraped_total") == 1);
    assert_non_null(strstr(body.p, "imgfeed_build_info{program=\"test_metrics\",version=\""));

    /* promtool's own check of the format and the naming conventions. */
    if (access("/usr/bin/promtool", X_OK) == 0) {
        FILE *p = popen("/usr/bin/promtool check metrics > promtool.out 2>&1", "w");
        assert_non_null(p);
        /* Only the conventional families: the test's own t_* ones break
         * naming rules on purpose (units). */
        for (const char *line = body.p; *line;) {
            const char *end = strchr(line, '\n');
            size_t n = end ? (size_t)(end - line + 1) : strlen(line);
            if (strstr(line, "t_") != line && !strstr(line, " t_")) fwrite(line, 1, n, p);
            line += n;
        }
        int rc = pclose(p);
        if (rc != 0) {
            if (system("cat promtool.out") != 0) print_error("(no promtool.out)\n");
            fail_msg("promtool check metrics failed");
        }
        remove("promtool.out");
    }
    body.len = 0;
    assert_int_equal(get(port, "/nothing", &body, type, sizeof type), 404);
    metrics_stop();
    assert_int_equal(metrics_port(), 0);
    assert_int_equal(metrics_serve("nonsense", why, sizeof why), -1);
    assert_non_null(strstr(why, "--metrics-listen"));
    free(body.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge), cmocka_unit_test(test_histogram), cmocka_unit_test(test_status_labels),
        cmocka_unit_test(test_series_cap),    cmocka_unit_test(test_threads),   cmocka_unit_test(test_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
