/* scrape.c -- bench_scrape: scrapes /metrics endpoints like Prometheus, and times each scrape.
 *
 *   bench_scrape [--interval-ms N] URL...
 *
 * Every N ms (1000 by default) GETs each URL once, over a connection kept
 * open per URL (as Prometheus keeps one per target), and records how long
 * the answer took, from sending the request to the last byte (libcurl's
 * CURLINFO_TOTAL_TIME_T on a reused connection).  On SIGTERM or SIGINT it
 * prints one line per URL:
 *
 *   URL scrapes=N failed=F bytes=B p50_ms=X p99_ms=Y max_ms=Z
 *
 * (bytes of the last answer).  A URL that does not answer yet, or any more
 * (a crawler --once that exited), counts as failed, not timed.  Used by
 * bench/pipeline.sh with METRICS=1.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct target {
    const char *url;
    CURL *curl;
    double *ms;
    size_t n, cap, failed, bytes, got;
} target;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static size_t count_bytes(char *data, size_t size, size_t n, void *arg) {
    (void)data;
    ((target *)arg)->got += size * n;
    return size * n;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *v, size_t n, double q) { return n ? v[(size_t)(q * (double)(n - 1) + 0.5)] : 0; }

static void scrape(target *t) {
    t->got = 0;
    long status = 0;
    curl_off_t us = 0;
    if (curl_easy_perform(t->curl) != CURLE_OK ||
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200 ||
        curl_easy_getinfo(t->curl, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK) {
        t->failed++;
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->ms = realloc(t->ms, t->cap * sizeof *t->ms);
        if (!t->ms) abort();
    }
    t->ms[t->n++] = (double)us / 1000.0;
    t->bytes = t->got;
}

int main(int argc, char **argv) {
    long interval_ms = 1000;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--interval-ms") == 0) {
        interval_ms = atol(argv[2]);
        first = 3;
    }
    if (first >= argc || interval_ms <= 0) {
        fprintf(stderr, "usage: bench_scrape [--interval-ms N] URL...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    size_t n = (size_t)(argc - first);
    target *t = calloc(n, sizeof *t);
    if (!t) return 1;
    for (size_t i = 0; i < n; i++) {
        t[i].url = argv[first + (int)i];
        t[i].curl = curl_easy_init();
        curl_easy_setopt(t[i].curl, CURLOPT_URL, t[i].url);
        curl_easy_setopt(t[i].curl, CURLOPT_WRITEFUNCTION, count_bytes);
        curl_easy_setopt(t[i].curl, CURLOPT_WRITEDATA, &t[i]);
        curl_easy_setopt(t[i].curl, CURLOPT_TIMEOUT_MS, 10000L);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) {
        for (size_t i = 0; i < n && !stop; i++) scrape(&t[i]);
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        qsort(t[i].ms, t[i].n, sizeof *t[i].ms, by_value);
        printf("%s scrapes=%zu failed=%zu bytes=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", t[i].url, t[i].n,
               t[i].failed, t[i].bytes, quantile(t[i].ms, t[i].n, 0.5), quantile(t[i].ms, t[i].n, 0.99),
               t[i].n ? t[i].ms[t[i].n - 1] : 0.0);
        curl_easy_cleanup(t[i].curl);
        free(t[i].ms);
    }
    free(t);
    curl_global_cleanup();
    return 0;
}
