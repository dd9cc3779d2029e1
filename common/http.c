/* http.c -- GET with rate limits, retries, redirects and a byte limit.
 *
 * http_get() is a loop over attempts.  Each attempt offers its URL to the
 * filter, takes a grant for the URL's host from the ratelimit registry, and
 * runs one curl transfer on the client's easy handle (which keeps its
 * connection cache between transfers; redirects are not followed by curl).
 * The outcome of the transfer is judged by httpcore_judge (httpcore.h, the
 * rules the hasher's downloads share): done, retry after a backoff delay,
 * retry once a Retry-After is over (the host is paused in the registry, so
 * the next grant waits it out; without a registry the client sleeps), or
 * the next hop of a redirect (its user info removed).  This file adds what
 * only the crawler's client does: the URL filter on every hop, redirect
 * loops, conditional requests, its wording of errors ("timeout after
 * 10000 ms", "too large: over N bytes"), and the observer told of every
 * request sent, rate-limit wait and retry (the crawler's metrics).
 *
 * The byte limit is enforced twice: CURLOPT_MAXFILESIZE_LARGE refuses a
 * Content-Length above it before any body is read, and the write callback
 * (httpcore_body_write) stops the transfer as soon as the bytes received
 * pass it (chunked or lying responses).  Error pages are kept only up to
 * HTTPCORE_ERROR_BODY_MAX.  The progress callback aborts a transfer when a
 * stop is requested.
 */
#include "http.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpcore.h"
#include "log.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "0"
#endif

#define HTTP_FIRST_CAP 16384 /* the body's first capacity without a Content-Length */

struct http_client {
    CURL *easy;
    ratelimit *rl;
    http_options opt;
    char *user_agent;
    http_url_filter filter;
    void *filter_data;
    http_observer obs;  /* zeroed: nobody told */
    httpcore_body body; /* of the transfer in progress */
    char errbuf[CURL_ERROR_SIZE];
};

/* --- process-wide init --- */

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_init_code = CURLE_FAILED_INIT;

static void http_init_once(void) { http_init_code = curl_global_init(CURL_GLOBAL_DEFAULT); }

int http_global_init(void) {
    pthread_once(&http_once, http_init_once);
    if (http_init_code != CURLE_OK) {
        log_error("cannot initialise libcurl: %s", curl_easy_strerror(http_init_code));
        return -1;
    }
    return 0;
}

void http_global_cleanup(void) {
    if (http_init_code == CURLE_OK) curl_global_cleanup();
    http_init_code = CURLE_FAILED_INIT;
}

/* --- options, names --- */

void http_options_init(http_options *o) {
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    o->max_retries = 3;
    o->backoff_initial_ms = 1000;
    o->backoff_max_ms = 60000;
    o->retry_after_max_ms = 120000;
    o->max_redirects = 5;
}

const char *http_result_name(http_result r) {
    switch (r) {
    case HTTP_OK: return "ok";
    case HTTP_NOT_MODIFIED: return "not modified";
    case HTTP_TOO_LARGE: return "too large";
    case HTTP_TIMEOUT: return "timeout";
    case HTTP_STATUS_ERROR: return "http error";
    case HTTP_NETWORK_ERROR: return "network error";
    case HTTP_REDIRECT_ERROR: return "redirect error";
    case HTTP_RATE_LIMITED: return "rate limited";
    case HTTP_REFUSED: return "refused";
    case HTTP_BAD_URL: return "bad url";
    case HTTP_STOPPED: return "stopped";
    }
    return "unknown";
}

/* --- helpers anyone may use --- */

int64_t http_retry_after_ms(const char *value, int64_t now_wall_ms) {
    if (!value) return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        const char *p = value;
        int64_t seconds = 0;
        while (isdigit((unsigned char)*p)) {
            if (seconds < 1000000000000LL) seconds = seconds * 10 + (*p - '0'); /* enough: ~30000 years */
            p++;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) return -1;
        return seconds * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1) return -1;
    int64_t ms = (int64_t)when * 1000 - now_wall_ms;
    return ms > 0 ? ms : 0;
}

int http_url_host(const char *url, char *buf, size_t buflen) {
    int rc = -1;
    char *host = NULL;
    CURLU *u = curl_url();
    if (!u) goto fail;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto fail;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) goto fail;
    if (strlen(host) >= buflen) goto fail;
    strcpy(buf, host);
    rc = 0;
fail:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

char *http_url_strip_userinfo(const char *url, bool *stripped) {
    char *out = NULL, *user = NULL, *password = NULL, *text = NULL;
    if (stripped) *stripped = false;
    CURLU *u = url ? curl_url() : NULL;
    if (!u) return NULL;
    /* Parsed as CURLOPT_URL parses it (url.c: a missing scheme guessed,
     * schemes curl lacks accepted), so the user info found here is the one
     * curl would send. */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) goto done;
    bool has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
    bool has_password = curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK;
    if (!has_user && !has_password) {
        out = xstrdup(url);
        goto done;
    }
    if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &text, 0) != CURLUE_OK)
        goto done;
    out = xstrdup(text);
    if (stripped) *stripped = true;
done:
    curl_free(text);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return out;
}

/* --- curl callbacks --- */

static size_t http_on_write(char *data, size_t size, size_t nmemb, void *userdata) {
    http_client *c = userdata;
    return httpcore_body_write(&c->body, c->easy, data, size * nmemb);
}

static int http_on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow) {
    return sig_stop_requested() ? 1 : 0;
}

/* --- the client --- */

#define HTTP_EASY_SETOPT(option, value) HTTPCORE_SETOPT(easy, option, value, why, whylen, return -1)

int http_easy_defaults(CURL *easy, char *errbuf, const char *user_agent, int64_t connect_timeout_ms, int64_t timeout_ms,
                       char *why, size_t whylen) {
    HTTP_EASY_SETOPT(CURLOPT_NOSIGNAL, 1L);
    HTTP_EASY_SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    HTTP_EASY_SETOPT(CURLOPT_USERAGENT, user_agent);
    HTTP_EASY_SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    HTTP_EASY_SETOPT(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    HTTP_EASY_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    HTTP_EASY_SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    HTTP_EASY_SETOPT(CURLOPT_ACCEPT_ENCODING, "");
    HTTP_EASY_SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    return 0;
}

#define HTTP_SETOPT(option, value)                                                                                     \
    do {                                                                                                               \
        CURLcode setopt_rc = curl_easy_setopt(c->easy, option, value);                                                 \
        if (setopt_rc != CURLE_OK) {                                                                                   \
            log_error("cannot set curl option %s: %s", #option, curl_easy_strerror(setopt_rc));                        \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

http_client *http_client_new(const http_options *opt, ratelimit *rl) {
    if (http_global_init() != 0) return NULL;
    http_client *c = xcalloc(1, sizeof *c);
    if (opt) {
        c->opt = *opt;
    } else {
        http_options_init(&c->opt);
    }
    c->user_agent = opt && opt->user_agent ? xstrdup(opt->user_agent) : xstrdup("imgfeed/" IMGFEED_VERSION);
    c->opt.user_agent = c->user_agent;
    c->rl = rl;
    c->body.first_cap = HTTP_FIRST_CAP;
    c->body.keep_errors = true;
    c->easy = curl_easy_init();
    if (!c->easy) {
        log_error("cannot create a curl handle: curl_easy_init failed");
        goto fail;
    }
    char why[160];
    if (http_easy_defaults(c->easy, c->errbuf, c->user_agent, c->opt.connect_timeout_ms, c->opt.timeout_ms, why,
                           sizeof why) < 0) {
        log_error("%s", why);
        goto fail;
    }
    HTTP_SETOPT(CURLOPT_WRITEFUNCTION, http_on_write);
    HTTP_SETOPT(CURLOPT_WRITEDATA, c);
    HTTP_SETOPT(CURLOPT_XFERINFOFUNCTION, http_on_progress);
    HTTP_SETOPT(CURLOPT_XFERINFODATA, c);
    HTTP_SETOPT(CURLOPT_NOPROGRESS, 0L);
    return c;
fail:
    http_client_free(c);
    return NULL;
}

void http_client_free(http_client *c) {
    if (!c) return;
    if (c->easy) curl_easy_cleanup(c->easy);
    httpcore_body_release(&c->body);
    free(c->user_agent);
    free(c);
}

void http_client_set_url_filter(http_client *c, http_url_filter filter, void *userdata) {
    c->filter = filter;
    c->filter_data = userdata;
}

void http_client_set_observer(http_client *c, const http_observer *obs) {
    if (obs)
        c->obs = *obs;
    else
        memset(&c->obs, 0, sizeof c->obs);
}

CURL *http_client_curl(http_client *c) { return c->easy; }

void http_response_release(http_response *resp) {
    free(resp->body);
    free(resp->content_type);
    free(resp->last_modified);
    free(resp->etag);
    free(resp->effective_url);
    for (size_t i = 0; i < HTTP_KEEP_MAX; i++)
        free(resp->kept[i]);
    memset(resp, 0, sizeof *resp);
}

/* --- one GET --- */

static void http_fail(http_response *resp, http_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void http_fail(http_response *resp, http_result result, const char *fmt, ...) {
    resp->result = result;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp->error, sizeof resp->error, fmt, ap);
    va_end(ap);
}

static char *http_header_value(http_client *c, const char *name) {
    struct curl_header *h = NULL;
    if (curl_easy_header(c->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return NULL;
    return xstrdup(h->value);
}

/* Put verdict V of URL's transfer into RESP, in this client's words. */
static void http_report(http_client *c, const char *url, const httpcore_verdict *v, http_response *resp) {
    switch (v->kind) {
    case HTTPCORE_OK:
        resp->result = HTTP_OK;
        resp->error[0] = '\0';
        return;
    case HTTPCORE_NOT_MODIFIED:
        resp->result = HTTP_NOT_MODIFIED;
        resp->error[0] = '\0';
        return;
    case HTTPCORE_STOPPED: http_fail(resp, HTTP_STOPPED, "stopped"); return;
    case HTTPCORE_NO_MEMORY: http_fail(resp, HTTP_TOO_LARGE, "%s", v->error); return;
    case HTTPCORE_TOO_LARGE:
        http_fail(resp, HTTP_TOO_LARGE, "too large: over %" PRId64 " bytes", c->body.limit);
        return;
    case HTTPCORE_TIMEOUT:
        if (v->connect_timeout) {
            http_fail(resp, HTTP_TIMEOUT, "connect timeout after %" PRId64 " ms", c->opt.connect_timeout_ms);
        } else {
            http_fail(resp, HTTP_TIMEOUT, "timeout after %" PRId64 " ms", c->opt.timeout_ms);
        }
        return;
    case HTTPCORE_BAD_URL:
        if (v->detail[0]) {
            http_fail(resp, HTTP_BAD_URL, "bad url %s: %s", url, v->detail);
        } else {
            http_fail(resp, HTTP_BAD_URL, "%s", v->error); /* a redirect to a URL without a host */
        }
        return;
    case HTTPCORE_NETWORK: http_fail(resp, HTTP_NETWORK_ERROR, "%s", v->error); return;
    case HTTPCORE_STATUS: http_fail(resp, HTTP_STATUS_ERROR, "%s", v->error); return;
    case HTTPCORE_REDIRECT_ERROR: http_fail(resp, HTTP_REDIRECT_ERROR, "%s", v->error); return;
    case HTTPCORE_RATE_LIMITED: http_fail(resp, HTTP_RATE_LIMITED, "%s", v->error); return;
    }
    http_fail(resp, HTTP_NETWORK_ERROR, "%s", v->error);
}

/* Run one transfer of url and judge it into *V (release it); resp says how
 * it ended so far.  host is url's host, for pauses. */
static void http_attempt(http_client *c, const char *url, const char *host, const http_request *req,
                         struct curl_slist *headers, http_response *resp, httpcore_verdict *v) {
    memset(v, 0, sizeof *v);
    v->next = HTTPCORE_DONE;
    httpcore_body_reset(&c->body, req->max_bytes > 0 ? req->max_bytes : c->opt.max_bytes);
    c->errbuf[0] = '\0';
    resp->status = 0;

    bool post = req->post_body && resp->redirects == 0; /* a redirected POST becomes a GET */
    bool auth = req->userpwd && resp->redirects == 0;   /* credentials go to the URL they were given for */
    CURLcode code = curl_easy_setopt(c->easy, CURLOPT_URL, url);
    if (code == CURLE_OK) code = curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
    if (code == CURLE_OK) code = curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->body.limit);
    if (code == CURLE_OK && post) code = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->post_len);
    if (code == CURLE_OK && post) code = curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, req->post_body);
    if (code == CURLE_OK && auth) code = curl_easy_setopt(c->easy, CURLOPT_USERPWD, req->userpwd);
    if (code != CURLE_OK) {
        http_fail(resp, HTTP_NETWORK_ERROR, "cannot set up request: %s", curl_easy_strerror(code));
        curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c->easy, CURLOPT_USERPWD, NULL);
        return;
    }
    int64_t sent_ns = time_mono_ns();
    code = curl_easy_perform(c->easy);
    double seconds = (double)(time_mono_ns() - sent_ns) / 1e9;
    resp->attempts++;
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL); /* headers is freed by the caller */
    if (post) curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L); /* the next request is a GET again */
    if (auth) curl_easy_setopt(c->easy, CURLOPT_USERPWD, NULL);

    long connects = 0;
    if (curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) {
        resp->new_connections += (int)connects;
    }
    httpcore_attempt a = {
        .easy = c->easy,
        .code = code,
        .body = &c->body,
        .errbuf = c->errbuf,
        .url = url,
        .rl = c->rl,
        .host = host,
        .retry_after_max_ms = c->opt.retry_after_max_ms,
        .redirects = resp->redirects,
        .max_redirects = c->opt.max_redirects > 0 ? c->opt.max_redirects : 0,
    };
    httpcore_judge(&a, v);
    resp->status = v->status;
    if (c->obs.response) c->obs.response(c->obs.userdata, v->status, seconds);
    if (v->retry_after_ms >= 0) resp->retry_after_ms = v->retry_after_ms;
    http_report(c, url, v, resp);
}

/* Fill the response's strings from the last transfer. */
static void http_collect(http_client *c, const http_request *req, const char *url, http_response *resp) {
    resp->effective_url = xstrdup(url);
    char *type = NULL;
    if (resp->status > 0 && curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type) {
        resp->content_type = xstrdup(type);
    }
    if (resp->status > 0) {
        resp->last_modified = http_header_value(c, "Last-Modified");
        resp->etag = http_header_value(c, "ETag");
        for (size_t i = 0; req->keep_headers && i < HTTP_KEEP_MAX && req->keep_headers[i]; i++)
            resp->kept[i] = http_header_value(c, req->keep_headers[i]);
    }
    if (resp->result == HTTP_NOT_MODIFIED) {
        if (!resp->last_modified) resp->last_modified = xstrdup(req->if_modified_since);
        if (!resp->etag) resp->etag = xstrdup(req->if_none_match);
    }
    bool keep_body = resp->result == HTTP_OK || resp->result == HTTP_STATUS_ERROR;
    if (keep_body) {
        /* Hand the buffer over; the next transfer allocates its own. */
        resp->body = httpcore_body_take(&c->body, &resp->body_len);
    } else {
        resp->body = xstrdup("");
        resp->body_len = 0;
    }
}

static bool http_visited(char **visited, int n, const char *url) {
    for (int i = 0; i < n; i++) {
        if (strcmp(visited[i], url) == 0) return true;
    }
    return false;
}

int http_get(http_client *c, const http_request *req, http_response *resp) {
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;
    if (!req->url) {
        http_fail(resp, HTTP_BAD_URL, "bad url: none given");
        resp->body = xstrdup("");
        return -1;
    }
    struct curl_slist *headers = NULL;
    int max_hops = c->opt.max_redirects > 0 ? c->opt.max_redirects : 0;
    char **visited = xcalloc((size_t)max_hops + 1, sizeof *visited);
    int nvisited = 0;
    char *url = xstrdup(req->url);
    char host[HTTPCORE_HOST_MAX];
    httpcore_retry retry;
    httpcore_retry_init(&retry, c->opt.max_retries, c->opt.backoff_initial_ms, c->opt.backoff_max_ms);
    bool new_hop = true;

    if (req->if_modified_since && *req->if_modified_since) {
        char *line = xasprintf("If-Modified-Since: %s", req->if_modified_since);
        struct curl_slist *more = curl_slist_append(headers, line);
        free(line);
        if (!more) goto no_memory;
        headers = more;
    }
    if (req->if_none_match && *req->if_none_match) {
        char *line = xasprintf("If-None-Match: %s", req->if_none_match);
        struct curl_slist *more = curl_slist_append(headers, line);
        free(line);
        if (!more) goto no_memory;
        headers = more;
    }
    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        struct curl_slist *more = curl_slist_append(headers, req->headers[i]);
        if (!more) goto no_memory;
        headers = more;
    }

    for (;;) {
        if (new_hop) {
            if (http_url_host(url, host, sizeof host) != 0) {
                http_fail(resp, HTTP_BAD_URL, "bad url %s: cannot find its host", url);
                break;
            }
            char why[128] = "";
            if (c->filter && !c->filter(c->filter_data, url, (unsigned)resp->redirects, why, sizeof why)) {
                http_fail(resp, HTTP_REFUSED, "refused url %s%s%s", url, why[0] ? ": " : "", why);
                break;
            }
            visited[nvisited++] = xstrdup(url);
            new_hop = false;
        }
        if (c->rl) {
            int64_t max_wait_ns = c->opt.retry_after_max_ms < INT64_MAX / TIME_NS_PER_MS
                                      ? c->opt.retry_after_max_ms * TIME_NS_PER_MS
                                      : -1; /* no maximum */
            int64_t waited_ns = 0;
            ratelimit_status rs = ratelimit_acquire_waited(c->rl, host, max_wait_ns, &waited_ns);
            if (waited_ns > 0 && c->obs.ratelimit_wait) c->obs.ratelimit_wait(c->obs.userdata, (double)waited_ns / 1e9);
            if (rs == RATELIMIT_STOPPED) {
                http_fail(resp, HTTP_STOPPED, "stopped");
                break;
            }
            if (rs == RATELIMIT_TOO_LONG) {
                http_fail(resp, HTTP_RATE_LIMITED,
                          "host %s is held back for %" PRId64 " ms, longer than the %" PRId64 " ms allowed", host,
                          (int64_t)(ratelimit_peek(c->rl, host) / TIME_NS_PER_MS), c->opt.retry_after_max_ms);
                break;
            }
        } else if (sig_stop_requested()) {
            http_fail(resp, HTTP_STOPPED, "stopped");
            break;
        }

        httpcore_verdict v;
        http_attempt(c, url, host, req, headers, resp, &v);
        log_debug("get %s: status %ld, %zu bytes, attempt %d", url, resp->status, c->body.len, resp->attempts);
        if (v.next == HTTPCORE_DONE) {
            httpcore_verdict_release(&v);
            break;
        }
        if (v.next == HTTPCORE_REDIRECT) {
            char *next = v.location;
            v.location = NULL;
            if (http_visited(visited, nvisited, next)) {
                http_fail(resp, HTTP_REDIRECT_ERROR, "redirect loop at %s", next);
                free(next);
                break;
            }
            resp->redirects++;
            free(url);
            url = next;
            new_hop = true;
            continue;
        }
        int64_t delay_ms = 0;
        bool again = httpcore_retry_take(&retry, &v, &delay_ms);
        httpcore_verdict_release(&v);
        if (!again) break; /* resp holds the last attempt's error */
        if (c->obs.retry) c->obs.retry(c->obs.userdata);
        if (v.next == HTTPCORE_RETRY_AFTER) {
            log_warn("%s from %s: retry %d of %d after retry-after %" PRId64 " ms", resp->error, url,
                     httpcore_retry_used(&retry), c->opt.max_retries, resp->retry_after_ms);
        } else {
            log_warn("%s from %s: retry %d of %d in %" PRId64 " ms", resp->error, url, httpcore_retry_used(&retry),
                     c->opt.max_retries, delay_ms);
        }
        if (delay_ms > 0 && !time_sleep_ms(delay_ms)) {
            http_fail(resp, HTTP_STOPPED, "stopped");
            break;
        }
    }
    http_collect(c, req, url, resp);
    goto done;

no_memory:
    http_fail(resp, HTTP_NETWORK_ERROR, "cannot build request headers: out of memory");
    http_collect(c, req, url, resp);
done:
    curl_slist_free_all(headers);
    for (int i = 0; i < nvisited; i++)
        free(visited[i]);
    free(visited);
    free(url);
    return resp->result == HTTP_OK || resp->result == HTTP_NOT_MODIFIED ? 0 : -1;
}
