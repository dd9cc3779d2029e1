/* test_httpcore.c -- the shared HTTP rules (common/httpcore.h) that need no
 * server: the verdict on transfers that failed before a response, retries
 * and their delays, and the body's handling of an error page.  The verdicts
 * on real responses (statuses, Retry-After, redirects, limits) are tested
 * through both users, in test_http.c and test_fetch.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "httpcore.h"

/* Judge CODE on a handle that never got a response. */
static void judge(CURL *easy, CURLcode code, const char *errbuf, httpcore_verdict *v) {
    httpcore_body body = {0};
    httpcore_attempt a = {.easy = easy, .code = code, .body = &body, .errbuf = errbuf, .url = "http://x/"};
    httpcore_judge(&a, v);
}

static void test_transfer_failures(void **state) {
    (void)state;
    assert_int_equal(http_global_init(), 0);
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    static const struct {
        CURLcode code;
        httpcore_next next;
        httpcore_kind kind;
    } cases[] = {
        {CURLE_OPERATION_TIMEDOUT, HTTPCORE_RETRY, HTTPCORE_TIMEOUT},
        {CURLE_COULDNT_RESOLVE_HOST, HTTPCORE_RETRY, HTTPCORE_NETWORK},
        {CURLE_COULDNT_CONNECT, HTTPCORE_RETRY, HTTPCORE_NETWORK},
        {CURLE_RECV_ERROR, HTTPCORE_RETRY, HTTPCORE_NETWORK},
        {CURLE_GOT_NOTHING, HTTPCORE_RETRY, HTTPCORE_NETWORK},
        {CURLE_PEER_FAILED_VERIFICATION, HTTPCORE_DONE, HTTPCORE_NETWORK},
        {CURLE_URL_MALFORMAT, HTTPCORE_DONE, HTTPCORE_BAD_URL},
        {CURLE_UNSUPPORTED_PROTOCOL, HTTPCORE_DONE, HTTPCORE_BAD_URL},
        {CURLE_LOGIN_DENIED, HTTPCORE_DONE, HTTPCORE_BAD_URL},
        {CURLE_ABORTED_BY_CALLBACK, HTTPCORE_DONE, HTTPCORE_STOPPED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        httpcore_verdict v;
        judge(easy, cases[i].code, NULL, &v);
        if (v.next != cases[i].next || v.kind != cases[i].kind)
            fail_msg("%s: next %d kind %d, not %d %d", curl_easy_strerror(cases[i].code), v.next, v.kind, cases[i].next,
                     cases[i].kind);
        assert_int_equal(v.status, 0);
        assert_null(v.location);
        assert_int_equal(httpcore_retryable_code(cases[i].code), cases[i].next == HTTPCORE_RETRY);
        httpcore_verdict_release(&v);
    }
    httpcore_verdict v;
    judge(easy, CURLE_OPERATION_TIMEDOUT, NULL, &v);
    assert_string_equal(v.error, "timeout");
    assert_true(v.connect_timeout); /* no connection was made */
    judge(easy, CURLE_COULDNT_CONNECT, "connection refused by 10.0.0.1", &v);
    assert_string_equal(v.error, "connection refused by 10.0.0.1"); /* curl's buffer first */
    assert_string_equal(v.detail, "connection refused by 10.0.0.1");
    judge(easy, CURLE_URL_MALFORMAT, "", &v);
    assert_int_equal(strncmp(v.error, "bad url: ", 9), 0);
    assert_string_equal(v.error + 9, curl_easy_strerror(CURLE_URL_MALFORMAT));
    curl_easy_cleanup(easy);
}

static void test_retries(void **state) {
    (void)state;
    httpcore_retry r;
    httpcore_retry_init(&r, 3, 100, 250);
    httpcore_verdict later = {.next = HTTPCORE_RETRY};
    httpcore_verdict paused = {.next = HTTPCORE_RETRY_AFTER, .retry_after_ms = 5000, .host_paused = true};
    httpcore_verdict unpaused = {.next = HTTPCORE_RETRY_AFTER, .retry_after_ms = 5000};
    int64_t delay = -1;
    assert_true(httpcore_retry_take(&r, &later, &delay));
    assert_true(delay > 0 && delay <= 250);
    assert_true(httpcore_retry_take(&r, &paused, &delay));
    assert_int_equal(delay, 0); /* the registry waits it out */
    assert_true(httpcore_retry_take(&r, &unpaused, &delay));
    assert_int_equal(delay, 5000); /* no registry: the caller waits */
    assert_int_equal(httpcore_retry_used(&r), 3);
    assert_false(httpcore_retry_take(&r, &later, &delay));
    assert_int_equal(httpcore_retry_used(&r), 3);

    httpcore_retry_init(&r, -1, 100, 250); /* negative: none */
    assert_false(httpcore_retry_take(&r, &later, &delay));
}

/* Before a status arrives (as for an error page), the body keeps at most
 * HTTPCORE_ERROR_BODY_MAX bytes when asked to, and stops the transfer past
 * them; otherwise it drops them. */
static void test_error_page(void **state) {
    (void)state;
    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    size_t chunk = 40 * 1024;
    char *data = malloc(chunk);
    memset(data, 'e', chunk);

    httpcore_body kept = {.first_cap = 1024, .keep_errors = true};
    httpcore_body_reset(&kept, 0);
    assert_int_equal(httpcore_body_write(&kept, easy, data, chunk), chunk);
    assert_false(kept.truncated);
    assert_int_equal(httpcore_body_write(&kept, easy, data, chunk), 0); /* past the cap: stop */
    assert_true(kept.truncated);
    assert_int_equal(kept.len, HTTPCORE_ERROR_BODY_MAX);
    assert_true(kept.cap <= 2 * HTTPCORE_ERROR_BODY_MAX);
    size_t len = 0;
    char *page = httpcore_body_take(&kept, &len);
    assert_int_equal(len, HTTPCORE_ERROR_BODY_MAX);
    assert_int_equal(page[len], '\0');
    free(page);
    assert_null(kept.data);
    page = httpcore_body_take(&kept, &len); /* nothing left: an empty string */
    assert_int_equal(len, 0);
    assert_string_equal(page, "");
    free(page);

    httpcore_body dropped = {.first_cap = 1024};
    httpcore_body_reset(&dropped, 10);
    assert_int_equal(httpcore_body_write(&dropped, easy, data, chunk), chunk);
    assert_int_equal(dropped.len, 0);
    assert_null(dropped.data);
    assert_int_equal(httpcore_body_write(&dropped, easy, data, chunk), 0);
    assert_true(dropped.truncated);
    httpcore_body_reset(&dropped, 10); /* a new attempt forgets it */
    assert_false(dropped.truncated);
    assert_int_equal(dropped.error_seen, 0);
    httpcore_body_release(&dropped);
    httpcore_body_release(&kept);
    free(data);
    curl_easy_cleanup(easy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_failures),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_error_page),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    http_global_cleanup();
    return rc;
}
