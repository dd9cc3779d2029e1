/* test_http.c -- the HTTP client against the local fixture server.
 *
 * Each test starts its own tests/support/fixture_server.py and judges the
 * client by what the server saw (its request log: arrival times, headers,
 * connections) as well as by the response.  Timing is only ever asserted
 * as a lower bound that the client guarantees (a retry no earlier than
 * Retry-After asked), never as "must be fast".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <pthread.h>

#include "fixture.h"
#include "http.h"
#include "ratelimit.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

typedef struct http_test {
    fixture server;
    ratelimit *rl;
    http_options opt;
    http_client *client;
} http_test;

/* Options small enough for tests: quick backoff, a few retries. */
static void test_options(http_options *o) {
    http_options_init(o);
    o->user_agent = "imgfeed-test/1";
    o->connect_timeout_ms = 5000;
    o->timeout_ms = 30000;
    o->max_retries = 3;
    o->backoff_initial_ms = 20;
    o->backoff_max_ms = 100;
    o->retry_after_max_ms = 10000;
}

static int setup(void **state) {
    http_test *t = xcalloc(1, sizeof *t);
    sig_reset();
    fixture_start(&t->server);
    t->rl = ratelimit_new(0);
    test_options(&t->opt);
    t->client = http_client_new(&t->opt, t->rl);
    assert_non_null(t->client);
    *state = t;
    return 0;
}

static int teardown(void **state) {
    http_test *t = *state;
    http_client_free(t->client);
    ratelimit_free(t->rl);
    fixture_stop(&t->server);
    free(t);
    sig_reset();
    return 0;
}

/* Replace the client with one built from t->opt. */
static void renew_client(http_test *t) {
    http_client_free(t->client);
    t->client = http_client_new(&t->opt, t->rl);
    assert_non_null(t->client);
}

/* GET path on the fixture server. */
static int get(http_test *t, const char *path, http_response *resp) {
    char *url = fixture_url(&t->server, "%s", path);
    http_request req = {.url = url};
    int rc = http_get(t->client, &req, resp);
    free(url);
    return rc;
}

static json_object *entry_at(json_object *entries, size_t i) {
    json_object *e = json_object_array_get_idx(entries, i);
    assert_non_null(e);
    return e;
}

static double entry_double(json_object *entry, const char *key) {
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(entry, key, &v));
    return json_object_get_double(v);
}

static const char *entry_string(json_object *entry, const char *key) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(entry, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

static const char *entry_header(json_object *entry, const char *name) {
    json_object *headers = NULL;
    assert_true(json_object_object_get_ex(entry, "headers", &headers));
    return entry_string(headers, name);
}

static int64_t stream_bytes_when_done(http_test *t, const char *key) {
    int64_t deadline = time_mono_ns() + 30 * TIME_NS_PER_S;
    for (;;) {
        json_object *s = fixture_control(&t->server, "bytes?key=%s", key);
        json_object *done = NULL, *bytes = NULL;
        assert_true(json_object_object_get_ex(s, "done", &done));
        assert_true(json_object_object_get_ex(s, "bytes", &bytes));
        bool finished = json_object_get_boolean(done);
        int64_t n = json_object_get_int64(bytes);
        json_object_put(s);
        if (finished) return n;
        if (time_mono_ns() > deadline)
            fail_msg("the server still streams %s after 30 s: the client did not hang up", key);
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
}

/* --- pure helpers --- */

static void test_retry_after_parse(void **state) {
    int64_t now = (int64_t)1445412480 * 1000; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(http_retry_after_ms("120", now), 120000);
    assert_int_equal(http_retry_after_ms(" 5 ", now), 5000);
    assert_int_equal(http_retry_after_ms("0", now), 0);
    assert_int_equal(http_retry_after_ms("Wed, 21 Oct 2015 07:28:03 GMT", now), 3000);
    assert_int_equal(http_retry_after_ms("Wed, 21 Oct 2015 07:28:03 GMT", now + 500), 2500);
    assert_int_equal(http_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
    assert_int_equal(http_retry_after_ms("soon", now), -1);
    assert_int_equal(http_retry_after_ms("12abc", now), -1);
    assert_int_equal(http_retry_after_ms("", now), -1);
    assert_int_equal(http_retry_after_ms(NULL, now), -1);
    assert_true(http_retry_after_ms("99999999999999999999999", now) > 0);
}

static void test_url_host(void **state) {
    char host[64];
    assert_int_equal(http_url_host("http://Example.COM:8080/x?y=1", host, sizeof host), 0);
    assert_string_equal(host, "Example.COM");
    assert_int_equal(http_url_host("https://i.4cdn.org/g/1.jpg", host, sizeof host), 0);
    assert_string_equal(host, "i.4cdn.org");
    assert_int_equal(http_url_host("not a url", host, sizeof host), -1);
    assert_int_equal(http_url_host("http://a-very-long-host-name.example/", host, 8), -1);
    assert_string_equal(http_result_name(HTTP_TOO_LARGE), "too large");
}

/* --- against the server --- */

static void test_ok_body(void **state) {
    http_test *t = *state;
    http_response resp;
    assert_int_equal(get(t, "/ok", &resp), 0);
    assert_int_equal(resp.result, HTTP_OK);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 3);
    assert_string_equal(resp.body, "ok\n");
    assert_string_equal(resp.content_type, "text/plain");
    assert_string_equal(resp.error, "");
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(resp.redirects, 0);
    char *url = fixture_url(&t->server, "/ok");
    assert_string_equal(resp.effective_url, url);
    free(url);
    http_response_release(&resp);

    json_object *log = fixture_log(&t->server, "/ok");
    assert_int_equal(json_object_array_length(log), 1);
    assert_string_equal(entry_header(entry_at(log, 0), "User-Agent"), "imgfeed-test/1");
    json_object_put(log);

    /* An error status keeps its body and says which status. */
    assert_int_equal(get(t, "/status/404", &resp), -1);
    assert_int_equal(resp.result, HTTP_STATUS_ERROR);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.error, "http 404");
    assert_string_equal(resp.body, "status 404\n");
    assert_int_equal(resp.attempts, 1); /* a 404 is not retried */
    http_response_release(&resp);
}

/* A POST with its body, more headers and basic auth; response headers kept;
 * the client's next request is a GET without credentials again. */
static void test_post_headers_auth(void **state) {
    http_test *t = *state;
    char *url = fixture_url(&t->server, "/echo?header=left-9");
    const char *headers[] = {"X-Extra: one", NULL};
    const char *keep[] = {"X-Echo", "X-Absent", NULL};
    http_request req = {.url = url,
                        .post_body = "grant_type=client_credentials",
                        .post_len = strlen("grant_type=client_credentials"),
                        .headers = headers,
                        .userpwd = "id:secret",
                        .keep_headers = keep};
    http_response resp;
    assert_int_equal(http_get(t->client, &req, &resp), 0);
    assert_string_equal(resp.kept[0], "left-9");
    assert_null(resp.kept[1]);
    json_object *echo = json_tokener_parse(resp.body), *v, *h;
    assert_non_null(echo);
    assert_true(json_object_object_get_ex(echo, "method", &v));
    assert_string_equal(json_object_get_string(v), "POST");
    assert_true(json_object_object_get_ex(echo, "body", &v));
    assert_string_equal(json_object_get_string(v), "grant_type=client_credentials");
    assert_true(json_object_object_get_ex(echo, "headers", &h));
    assert_true(json_object_object_get_ex(h, "X-Extra", &v));
    assert_string_equal(json_object_get_string(v), "one");
    assert_true(json_object_object_get_ex(h, "Authorization", &v));
    assert_string_equal(json_object_get_string(v), "Basic aWQ6c2VjcmV0"); /* base64("id:secret") */
    assert_true(json_object_object_get_ex(h, "Content-Type", &v));
    assert_string_equal(json_object_get_string(v), "application/x-www-form-urlencoded");
    json_object_put(echo);
    http_response_release(&resp);
    free(url);

    url = fixture_url(&t->server, "/echo");
    assert_int_equal(get(t, "/echo", &resp), 0);
    echo = json_tokener_parse(resp.body);
    assert_non_null(echo);
    assert_true(json_object_object_get_ex(echo, "method", &v));
    assert_string_equal(json_object_get_string(v), "GET");
    assert_true(json_object_object_get_ex(echo, "headers", &h));
    assert_false(json_object_object_get_ex(h, "Authorization", &v));
    assert_false(json_object_object_get_ex(h, "X-Extra", &v));
    json_object_put(echo);
    http_response_release(&resp);
    free(url);
}

static void test_not_modified(void **state) {
    http_test *t = *state;
    http_response first, again, by_date;
    char *url = fixture_url(&t->server, "/cond");

    http_request req = {.url = url};
    assert_int_equal(http_get(t->client, &req, &first), 0);
    assert_int_equal(first.result, HTTP_OK);
    assert_non_null(first.last_modified);
    assert_non_null(first.etag);
    assert_string_equal(first.last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_string_equal(first.etag, "\"v1-abc\"");

    http_request cond = {.url = url, .if_modified_since = first.last_modified, .if_none_match = first.etag};
    assert_int_equal(http_get(t->client, &cond, &again), 0);
    assert_int_equal(again.result, HTTP_NOT_MODIFIED);
    assert_int_equal(again.status, 304);
    assert_int_equal(again.body_len, 0);
    assert_string_equal(again.body, "");
    assert_string_equal(again.etag, first.etag);
    assert_string_equal(again.last_modified, first.last_modified);

    http_request date_only = {.url = url, .if_modified_since = first.last_modified};
    assert_int_equal(http_get(t->client, &date_only, &by_date), 0);
    assert_int_equal(by_date.result, HTTP_NOT_MODIFIED);

    json_object *log = fixture_log(&t->server, "/cond");
    assert_int_equal(json_object_array_length(log), 3);
    assert_null(entry_header(entry_at(log, 0), "If-None-Match"));
    assert_string_equal(entry_header(entry_at(log, 1), "If-None-Match"), "\"v1-abc\"");
    assert_string_equal(entry_header(entry_at(log, 1), "If-Modified-Since"), "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_string_equal(entry_header(entry_at(log, 2), "If-Modified-Since"), "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_null(entry_header(entry_at(log, 2), "If-None-Match"));
    json_object_put(log);

    http_response_release(&first);
    http_response_release(&again);
    http_response_release(&by_date);
    free(url);
}

/* The retried request arrives no earlier than Retry-After seconds after the
 * first one did (server's monotonic clock for both). */
static void check_retry_after_seconds(http_test *t, int code) {
    char path[128];
    snprintf(path, sizeof path, "/status/%d?key=ra%d&fail=1&retry_after=1", code, code);
    http_response resp;
    assert_int_equal(get(t, path, &resp), 0);
    assert_int_equal(resp.result, HTTP_OK);
    assert_int_equal(resp.attempts, 2);
    assert_int_equal(resp.retry_after_ms, 1000);
    http_response_release(&resp);

    char prefix[32];
    snprintf(prefix, sizeof prefix, "/status/%d", code);
    json_object *log = fixture_log(&t->server, prefix);
    assert_int_equal(json_object_array_length(log), 2);
    assert_int_equal((int)entry_double(entry_at(log, 0), "status"), code);
    assert_int_equal((int)entry_double(entry_at(log, 1), "status"), 200);
    double gap = entry_double(entry_at(log, 1), "mono") - entry_double(entry_at(log, 0), "mono");
    if (gap < 1.0) fail_msg("retry after %d came %.3f s after it, before the 1 s asked", code, gap);
    json_object_put(log);
}

static void test_retry_after_429_seconds(void **state) { check_retry_after_seconds(*state, 429); }
static void test_retry_after_503_seconds(void **state) { check_retry_after_seconds(*state, 503); }

/* Retry-After as an HTTP date: the retry arrives no earlier than that date. */
static void check_retry_after_date(http_test *t, int code) {
    char path[128];
    snprintf(path, sizeof path, "/status/%d?key=rd%d&fail=1&retry_after_date=2", code, code);
    http_response resp;
    assert_int_equal(get(t, path, &resp), 0);
    assert_int_equal(resp.result, HTTP_OK);
    assert_int_equal(resp.attempts, 2);
    assert_true(resp.retry_after_ms >= 0 && resp.retry_after_ms <= 2000);
    http_response_release(&resp);

    char prefix[32];
    snprintf(prefix, sizeof prefix, "/status/%d", code);
    json_object *log = fixture_log(&t->server, prefix);
    assert_int_equal(json_object_array_length(log), 2);
    double retry_at = entry_double(entry_at(log, 0), "retry_at");
    double arrived = entry_double(entry_at(log, 1), "t");
    /* 10 ms for the wall clock being slewed against the monotonic one the
     * client waits on. */
    if (arrived < retry_at - 0.010) fail_msg("retry arrived at %.3f, before the date asked, %.0f", arrived, retry_at);
    json_object_put(log);
}

static void test_retry_after_429_date(void **state) { check_retry_after_date(*state, 429); }
static void test_retry_after_503_date(void **state) { check_retry_after_date(*state, 503); }

/* A Retry-After beyond the maximum ends the request at once, and the pause
 * it set holds back the next request to the host too. */
static void test_retry_after_too_long(void **state) {
    http_test *t = *state;
    t->opt.retry_after_max_ms = 2000;
    renew_client(t);
    http_response resp;
    assert_int_equal(get(t, "/status/429?key=long&fail=1&retry_after=3600", &resp), -1);
    assert_int_equal(resp.result, HTTP_RATE_LIMITED);
    assert_int_equal(resp.status, 429);
    assert_int_equal(resp.attempts, 1);
    assert_int_equal(resp.retry_after_ms, 3600000);
    assert_non_null(strstr(resp.error, "retry-after"));
    http_response_release(&resp);

    assert_int_equal(get(t, "/ok", &resp), -1);
    assert_int_equal(resp.result, HTTP_RATE_LIMITED);
    assert_int_equal(resp.attempts, 0);
    assert_non_null(strstr(resp.error, "held back"));
    http_response_release(&resp);

    json_object *log = fixture_log(&t->server, "/");
    assert_int_equal(json_object_array_length(log), 1);
    json_object_put(log);
}

static void test_500_retried_then_ok(void **state) {
    http_test *t = *state;
    http_response resp;
    assert_int_equal(get(t, "/status/500?key=five&fail=2", &resp), 0);
    assert_int_equal(resp.result, HTTP_OK);
    assert_int_equal(resp.attempts, 3);
    assert_string_equal(resp.body, "ok\n");
    http_response_release(&resp);
}

static void test_retries_exhausted(void **state) {
    http_test *t = *state;
    t->opt.max_retries = 2;
    renew_client(t);
    http_response resp;
    assert_int_equal(get(t, "/status/500", &resp), -1);
    assert_int_equal(resp.result, HTTP_STATUS_ERROR);
    assert_int_equal(resp.status, 500);
    assert_int_equal(resp.attempts, 3);
    assert_string_equal(resp.error, "http 500");
    http_response_release(&resp);

    /* 429 without Retry-After: retried with backoff, then given up. */
    assert_int_equal(get(t, "/status/429", &resp), -1);
    assert_int_equal(resp.result, HTTP_STATUS_ERROR);
    assert_int_equal(resp.status, 429);
    assert_int_equal(resp.attempts, 3);
    http_response_release(&resp);

    json_object *log = fixture_log(&t->server, "/status/");
    assert_int_equal(json_object_array_length(log), 6);
    json_object_put(log);
}

static void check_too_large(http_test *t, const char *resource) {
    char path[64];
    snprintf(path, sizeof path, "/%s?key=%s", resource, resource);
    http_response resp;
    assert_int_equal(get(t, path, &resp), -1);
    assert_int_equal(resp.result, HTTP_TOO_LARGE);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 0);
    assert_string_equal(resp.error, "too large: over 1048576 bytes");
    assert_int_equal(resp.attempts, 1); /* not retried */
    http_response_release(&resp);
    /* The client hung up early: the server got rid of far fewer bytes than
     * it wanted to send, socket buffers included. */
    int64_t sent = stream_bytes_when_done(t, resource);
    if (sent >= 64 * 1024 * 1024) fail_msg("/%s sent %lld bytes before the client hung up", resource, (long long)sent);
}

static void test_too_large(void **state) {
    http_test *t = *state;
    t->opt.max_bytes = 1024 * 1024;
    renew_client(t);
    check_too_large(t, "endless"); /* chunked: the write callback stops it */
    check_too_large(t, "huge");    /* Content-Length: stopped before the body */

    /* Exactly the limit is fine, one byte more is not. */
    http_response resp;
    assert_int_equal(get(t, "/bytes?n=1048576", &resp), 0);
    assert_int_equal(resp.body_len, 1048576);
    assert_int_equal(strlen(resp.body), 1048576);
    http_response_release(&resp);
    assert_int_equal(get(t, "/bytes?n=1048577", &resp), -1);
    assert_int_equal(resp.result, HTTP_TOO_LARGE);
    http_response_release(&resp);

    /* A request's own limit wins over the client's. */
    char *url = fixture_url(&t->server, "/bytes?n=1000");
    http_request req = {.url = url, .max_bytes = 999};
    assert_int_equal(http_get(t->client, &req, &resp), -1);
    assert_int_equal(resp.result, HTTP_TOO_LARGE);
    http_response_release(&resp);
    free(url);
}

static void test_timeout(void **state) {
    http_test *t = *state;
    t->opt.timeout_ms = 500;
    t->opt.max_retries = 1;
    renew_client(t);
    http_response resp;
    assert_int_equal(get(t, "/slow?delay=5", &resp), -1);
    assert_int_equal(resp.result, HTTP_TIMEOUT);
    assert_string_equal(resp.error, "timeout after 500 ms");
    assert_int_equal(resp.attempts, 2);
    http_response_release(&resp);
}

static void test_redirects(void **state) {
    http_test *t = *state;
    char *ok = fixture_url(&t->server, "/ok");
    http_response resp;

    assert_int_equal(get(t, "/redirect?to=/ok", &resp), 0); /* relative */
    assert_int_equal(resp.redirects, 1);
    assert_int_equal(resp.attempts, 2);
    assert_string_equal(resp.effective_url, ok);
    assert_string_equal(resp.body, "ok\n");
    http_response_release(&resp);

    assert_int_equal(get(t, "/redirect?to=/ok&abs=1&code=301", &resp), 0); /* absolute */
    assert_int_equal(resp.redirects, 1);
    assert_string_equal(resp.effective_url, ok);
    http_response_release(&resp);

    assert_int_equal(get(t, "/redirect?to=/ok&code=307", &resp), 0);
    assert_string_equal(resp.effective_url, ok);
    http_response_release(&resp);

    assert_int_equal(get(t, "/chain/3", &resp), 0); /* chain of relative hops */
    assert_int_equal(resp.redirects, 3);
    char *end = fixture_url(&t->server, "/chain/0");
    assert_string_equal(resp.effective_url, end);
    assert_string_equal(resp.body, "end of chain\n");
    http_response_release(&resp);
    free(end);

    /* A Location with user info: followed without it, no credentials sent
     * (curl would send them as Authorization: Basic), none shown. */
    const char *hostport = ok + strlen("http://");
    char *to = xasprintf("/redirect?to=http://user:secret@%s", hostport);
    assert_int_equal(get(t, to, &resp), 0);
    assert_string_equal(resp.effective_url, ok);
    assert_null(strstr(resp.effective_url, "secret"));
    http_response_release(&resp);
    free(to);
    json_object *log = fixture_log(&t->server, "/ok");
    for (size_t i = 0; i < json_object_array_length(log); i++) {
        json_object *headers;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(log, i), "headers", &headers));
        json_object_object_foreach(headers, name, value) {
            (void)value;
            if (strcasecmp(name, "authorization") == 0) fail_msg("the redirect's user info was sent");
        }
    }
    json_object_put(log);

    assert_int_equal(get(t, "/chain/6", &resp), -1); /* more than max_redirects (5) */
    assert_int_equal(resp.result, HTTP_REDIRECT_ERROR);
    assert_non_null(strstr(resp.error, "too many redirects"));
    assert_int_equal(resp.redirects, 5);
    http_response_release(&resp);
    free(ok);
}

static void test_redirect_loop(void **state) {
    http_test *t = *state;
    http_response resp;
    assert_int_equal(get(t, "/loop/a", &resp), -1);
    assert_int_equal(resp.result, HTTP_REDIRECT_ERROR);
    assert_non_null(strstr(resp.error, "redirect loop"));
    assert_int_equal(resp.attempts, 2);
    http_response_release(&resp);
}

static bool refuse_ok(void *userdata, const char *url, unsigned hop, char *why, size_t whylen) {
    int *calls = userdata;
    (*calls)++;
    if (hop > 0 && strstr(url, "/ok")) {
        snprintf(why, whylen, "test refuses /ok at hop %u", hop);
        return false;
    }
    return true;
}

static void test_url_filter(void **state) {
    http_test *t = *state;
    int calls = 0;
    http_client_set_url_filter(t->client, refuse_ok, &calls);
    http_response resp;
    assert_int_equal(get(t, "/redirect?to=/ok", &resp), -1);
    assert_int_equal(resp.result, HTTP_REFUSED);
    assert_non_null(strstr(resp.error, "hop 1"));
    assert_int_equal(calls, 2);
    http_response_release(&resp);
    json_object *log = fixture_log(&t->server, "/ok");
    assert_int_equal(json_object_array_length(log), 0);
    json_object_put(log);
}

static void test_connection_reused(void **state) {
    http_test *t = *state;
    for (int i = 0; i < 5; i++) {
        http_response resp;
        assert_int_equal(get(t, "/ok", &resp), 0);
        assert_int_equal(resp.new_connections, i == 0 ? 1 : 0);
        http_response_release(&resp);
    }
    json_object *log = fixture_log(&t->server, "/ok");
    assert_int_equal(json_object_array_length(log), 5);
    const char *conn = entry_string(entry_at(log, 0), "conn");
    for (size_t i = 1; i < 5; i++)
        assert_string_equal(entry_string(entry_at(log, i), "conn"), conn);
    json_object_put(log);
}

static void *request_stop_later(void *arg) {
    time_sleep_ns(300 * TIME_NS_PER_MS);
    sig_request_stop();
    return NULL;
}

static void test_stop(void **state) {
    http_test *t = *state;
    http_response resp;
    /* A stop during a transfer ends it. */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, request_stop_later, NULL), 0);
    assert_int_equal(get(t, "/slow?delay=20", &resp), -1);
    pthread_join(thread, NULL);
    assert_int_equal(resp.result, HTTP_STOPPED);
    http_response_release(&resp);
    /* A stop already requested sends nothing. */
    assert_int_equal(get(t, "/ok", &resp), -1);
    assert_int_equal(resp.result, HTTP_STOPPED);
    assert_int_equal(resp.attempts, 0);
    http_response_release(&resp);
    sig_reset();
}

int main(void) {
    if (http_global_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_url_host),
        cmocka_unit_test_setup_teardown(test_ok_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_headers_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_modified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_429_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_503_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_429_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_503_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_retried_then_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_cleanup();
    return failed;
}
