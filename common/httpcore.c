/* httpcore.c -- one copy of the HTTP rules: body growth, verdicts, retries.
 *
 * httpcore_judge is the single place that turns (curl code, status,
 * headers, body flags) into what comes next.  Its order matters and is the
 * same for every caller:
 *
 *   aborted by a callback          done: stopped
 *   the buffer could not grow      done: no memory
 *   2xx past the byte limit        done: too large
 *   curl failed, and no error
 *   status to judge by             timeout / bad url / network error, retried
 *                                  when httpcore_retryable_code says so
 *   2xx                            done: ok
 *   304                            done: not modified
 *   301/302/303/307/308            redirect: CURLINFO_REDIRECT_URL (curl
 *                                  resolves it against the current URL),
 *                                  user info removed, host found, hops counted
 *   429/503 with Retry-After       host paused; retry after it, or done
 *                                  (rate limited) when longer than allowed
 *   5xx, 408, 429                  retry after a backoff
 *   anything else                  done: "http <status>"
 *
 * An error page whose transfer was cut short (by us, at
 * HTTPCORE_ERROR_BODY_MAX, or by curl) is judged by its status: the status
 * is what the server said.
 *
 * The body grows by doubling from first_cap, or straight to the
 * Content-Length (+1 for the NUL) of a 2xx response that gives one when a
 * limit is set (curl has refused a larger one), and never past limit + 1; an error page never takes more than its first
 * HTTPCORE_ERROR_BODY_MAX bytes, kept or dropped as the caller chose.
 */
#include "httpcore.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

/* --- the body --- */

void httpcore_body_reset(httpcore_body *b, int64_t limit) {
    b->len = 0;
    b->limit = limit;
    b->error_seen = 0;
    b->wait_cap = 0;
    b->too_large = b->truncated = b->no_memory = false;
    if (b->data) b->data[0] = '\0';
}

/* The capacity for NEED bytes (NUL included) of a body: see the top. */
static size_t httpcore_body_cap(const httpcore_body *b, size_t need, curl_off_t content_length) {
    uint64_t limit = b->limit > 0 ? (uint64_t)b->limit + 1 : UINT64_MAX;
    size_t cap = b->cap;
    if (!cap) {
        cap = b->first_cap ? b->first_cap : 16384;
        /* Trusted only under a limit: without one, a lying Content-Length
         * would allocate its whole size before a byte arrived. */
        if (b->limit > 0 && content_length > 0 && (uint64_t)content_length < limit) cap = (size_t)content_length + 1;
    }
    while (cap < need)
        cap *= 2;
    if ((uint64_t)cap > limit && need <= limit) cap = (size_t)limit;
    return cap;
}

/* Room for NEED bytes: reserved through the hook, then allocated.  1: grown;
 * 0: wait (wait_cap set); -1: no memory. */
static int httpcore_body_grow(httpcore_body *b, size_t need, curl_off_t content_length) {
    if (need <= b->cap) return 1;
    size_t cap = httpcore_body_cap(b, need, content_length);
    if (b->hooks.reserve && !b->hooks.reserve(b->hooks.userdata, cap)) {
        b->wait_cap = cap;
        return 0;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        if (b->hooks.shrink) b->hooks.shrink(b->hooks.userdata, b->cap);
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 1;
}

size_t httpcore_body_write(httpcore_body *b, CURL *easy, const char *data, size_t n) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    size_t take = n;
    curl_off_t length = -1;
    if (status < 200 || status > 299) {
        /* An error page or a redirect's body: its start at most. */
        size_t room = HTTPCORE_ERROR_BODY_MAX -
                      (b->error_seen < HTTPCORE_ERROR_BODY_MAX ? b->error_seen : HTTPCORE_ERROR_BODY_MAX);
        b->error_seen += n;
        if (n > room) {
            b->truncated = true;
            take = room;
        }
        if (!b->keep_errors) return b->truncated ? 0 : n;
    } else {
        if (b->limit > 0 && (uint64_t)b->len + n > (uint64_t)b->limit) {
            b->too_large = true;
            return 0;
        }
        if (!b->cap && curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) != CURLE_OK) length = -1;
    }
    switch (httpcore_body_grow(b, b->len + take + 1, length)) {
    case 1: break;
    case 0:
        if (status < 200 || status > 299) b->error_seen -= n; /* given again once unpaused */
        return CURL_WRITEFUNC_PAUSE;
    default: b->no_memory = true; return 0;
    }
    memcpy(b->data + b->len, data, take);
    b->len += take;
    b->data[b->len] = '\0';
    return b->truncated ? 0 : n;
}

char *httpcore_body_take(httpcore_body *b, size_t *len) {
    char *data = b->data && b->len ? b->data : NULL;
    *len = data ? b->len : 0;
    if (data) {
        b->data = NULL;
        b->cap = 0;
    } else {
        data = xstrdup("");
    }
    b->len = 0;
    return data;
}

void httpcore_body_release(httpcore_body *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* --- the verdict --- */

bool httpcore_retryable_code(CURLcode code) {
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return false;
    }
}

static void httpcore_set(httpcore_verdict *v, httpcore_next next, httpcore_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void httpcore_set(httpcore_verdict *v, httpcore_next next, httpcore_kind kind, const char *fmt, ...) {
    v->next = next;
    v->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->error, sizeof v->error, fmt, ap);
    va_end(ap);
}

/* The transfer failed before a response worth judging by its status. */
static void httpcore_judge_transfer(const httpcore_attempt *a, httpcore_verdict *v) {
    CURLcode code = a->code;
    const char *text = a->errbuf && a->errbuf[0] ? a->errbuf : curl_easy_strerror(code);
    httpcore_next retry = httpcore_retryable_code(code) ? HTTPCORE_RETRY : HTTPCORE_DONE;
    snprintf(v->detail, sizeof v->detail, "%s", text);
    if (code == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connect_us = 0;
        curl_easy_getinfo(a->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        v->connect_timeout = connect_us == 0;
        httpcore_set(v, retry, HTTPCORE_TIMEOUT, "timeout");
    } else if (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_LOGIN_DENIED) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_BAD_URL, "bad url: %s", text);
    } else {
        httpcore_set(v, retry, HTTPCORE_NETWORK, "%s", text);
    }
}

/* A 3xx: the next hop, or why there is none. */
static void httpcore_judge_redirect(const httpcore_attempt *a, httpcore_verdict *v) {
    long status = v->status;
    char *location = NULL;
    if (curl_easy_getinfo(a->easy, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || !location) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_REDIRECT_ERROR, "http %ld without a usable location", status);
        return;
    }
    if (a->redirects >= a->max_redirects) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_REDIRECT_ERROR, "too many redirects (more than %d)", a->max_redirects);
        return;
    }
    /* A site's Location is a URL from outside: its user info is never sent
     * (curl would send it as Basic credentials, and REDIRECT_URL keeps it). */
    bool stripped = false;
    v->location = http_url_strip_userinfo(location, &stripped);
    if (stripped) log_debug("redirect from %s: user name and password removed from the location", a->url);
    if (!v->location || http_url_host(v->location, v->host, sizeof v->host) != 0) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_BAD_URL, "bad url: redirect to %s without a host",
                     v->location ? v->location : HTTP_URL_UNPARSED);
        return;
    }
    httpcore_set(v, HTTPCORE_REDIRECT, HTTPCORE_STATUS, "http %ld", status);
}

/* A 429/503: true when it carried a usable Retry-After (V decided). */
static bool httpcore_judge_retry_after(const httpcore_attempt *a, httpcore_verdict *v) {
    struct curl_header *h = NULL;
    if (curl_easy_header(a->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return false;
    int64_t wait_ms = http_retry_after_ms(h->value, time_wall_ms());
    if (wait_ms < 0) {
        log_warn("cannot parse retry-after \"%s\" from %s: ignored", h->value, a->url);
        return false;
    }
    v->retry_after_ms = wait_ms;
    if (a->rl && a->host) {
        int64_t pause_ms = wait_ms < HTTPCORE_PAUSE_MAX_MS ? wait_ms : HTTPCORE_PAUSE_MAX_MS;
        ratelimit_pause(a->rl, a->host, time_mono_ns() + pause_ms * TIME_NS_PER_MS);
        v->host_paused = true;
    }
    if (wait_ms > a->retry_after_max_ms) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_RATE_LIMITED,
                     "http %ld: retry-after %" PRId64 " ms is longer than the %" PRId64 " ms allowed", v->status,
                     wait_ms, a->retry_after_max_ms);
    } else {
        httpcore_set(v, HTTPCORE_RETRY_AFTER, HTTPCORE_STATUS, "http %ld", v->status);
    }
    return true;
}

void httpcore_judge(const httpcore_attempt *a, httpcore_verdict *v) {
    memset(v, 0, sizeof *v);
    v->retry_after_ms = -1;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &v->status);
    long status = v->status;
    bool success = status >= 200 && status <= 299;
    const httpcore_body *b = a->body;
    if (a->code == CURLE_ABORTED_BY_CALLBACK) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_STOPPED, "stopped");
    } else if (b && b->no_memory) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_NO_MEMORY, "too large: out of memory after %zu bytes", b->len);
    } else if (success && ((b && b->too_large) || a->code == CURLE_FILESIZE_EXCEEDED)) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_TOO_LARGE, "too large");
    } else if (a->code != CURLE_OK && !(status > 0 && !success)) {
        httpcore_judge_transfer(a, v);
    } else if (success) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_OK, "%s", "");
    } else if (status == 304) {
        httpcore_set(v, HTTPCORE_DONE, HTTPCORE_NOT_MODIFIED, "http 304");
    } else if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        httpcore_judge_redirect(a, v);
    } else if ((status == 429 || status == 503) && httpcore_judge_retry_after(a, v)) {
        /* decided */
    } else {
        bool retry = status >= 500 || status == 408 || status == 429;
        httpcore_set(v, retry ? HTTPCORE_RETRY : HTTPCORE_DONE, HTTPCORE_STATUS, "http %ld", status);
    }
}

void httpcore_verdict_release(httpcore_verdict *v) {
    free(v->location);
    v->location = NULL;
}

/* --- retries --- */

void httpcore_retry_init(httpcore_retry *r, int max_retries, int64_t backoff_initial_ms, int64_t backoff_max_ms) {
    r->max = r->left = max_retries > 0 ? max_retries : 0;
    backoff_init(&r->bo, backoff_initial_ms, backoff_max_ms);
}

bool httpcore_retry_take(httpcore_retry *r, const httpcore_verdict *v, int64_t *delay_ms) {
    if (r->left <= 0) return false;
    r->left--;
    if (v->next == HTTPCORE_RETRY_AFTER) {
        *delay_ms = v->host_paused ? 0 : v->retry_after_ms;
    } else {
        *delay_ms = backoff_next_ms(&r->bo);
    }
    return true;
}

int httpcore_retry_used(const httpcore_retry *r) { return r->max - r->left; }
