/* scrape.c -- reading a program's GET /metrics in the tests; see scrape.h. */
#include "scrape.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "sbuf.h"
#include "timeutil.h"

#define SCRAPE_PORT_TEXT "(metrics port "
#define SCRAPE_TIMEOUT_MS 20000L /* one scrape */

int scrape_port(const proc *p) {
    proc_wait_log(p, SCRAPE_PORT_TEXT);
    FILE *f = fopen(p->log, "r");
    if (!f) fail_msg("%s: no log at %s", p->name, p->log);
    char line[1024];
    int port = 0;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, SCRAPE_PORT_TEXT);
        if (at) port = atoi(at + strlen(SCRAPE_PORT_TEXT));
    }
    fclose(f);
    if (port <= 0) fail_msg("%s logged no metrics port", p->name);
    return port;
}

static size_t scrape_keep(char *data, size_t size, size_t n, void *arg) {
    sbuf_add(arg, data, size * n);
    return size * n;
}

char *scrape_get(int port) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    CURL *c = curl_easy_init();
    if (!c) fail_msg("curl_easy_init failed");
    sbuf body = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, SCRAPE_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, scrape_keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    sbuf_addc(&body, '\0');
    if (rc != CURLE_OK) fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    if (status != 200) fail_msg("GET %s answered %ld:\n%.500s", url, status, body.p);
    return body.p;
}

bool scrape_find(const char *text, const char *sample, double *value) {
    size_t n = strlen(sample);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
            if (value) *value = strtod(line + n + 1, NULL);
            return true;
        }
    }
    return false;
}

double scrape_sample(const char *text, const char *sample) {
    double v = 0;
    if (!scrape_find(text, sample, &v)) fail_msg("no sample %s in the scrape:\n%s", sample, text);
    return v;
}

double scrape_value(int port, const char *sample) {
    char *text = scrape_get(port);
    double v = 0;
    if (!scrape_find(text, sample, &v))
        fail_msg("no sample %s in the scrape of http://127.0.0.1:%d/metrics:\n%s", sample, port, text);
    free(text);
    return v;
}

void scrape_expect_sum(const int *ports, int n, const char *sample, double want) {
    int64_t deadline = time_mono_ns() + PROC_GUARD_MS * TIME_NS_PER_MS;
    double v;
    for (;;) {
        v = 0;
        for (int i = 0; i < n; i++)
            v += scrape_value(ports[i], sample);
        if (v >= want || time_mono_ns() > deadline) break;
        time_sleep_ms(20);
    }
    if (v != want) fail_msg("%s is %g, expected %g", sample, v, want);
}

void scrape_expect(int port, const char *sample, double want) { scrape_expect_sum(&port, 1, sample, want); }
