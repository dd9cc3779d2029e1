/* http.h -- a polite HTTP GET client on libcurl.
 *
 * An http_client owns one curl easy handle and keeps it between requests, so
 * connections (and curl's DNS cache) are reused.  A client is for one thread
 * at a time: give each thread its own.  The ratelimit registry given at
 * creation is what clients share: every request, every retry and every
 * redirect hop first takes a grant for its own host there.
 *
 * http_get() does what a crawler needs around one GET (or POST: post_body;
 * more headers, basic auth and response headers to keep: http_request):
 *   - conditional requests (If-Modified-Since / If-None-Match from the
 *     previous Last-Modified / ETag), with 304 as HTTP_NOT_MODIFIED;
 *   - a byte limit that stops the download as soon as it is passed
 *     (HTTP_TOO_LARGE), before the body when Content-Length says so; it
 *     counts the body as delivered, after gzip or deflate decoding;
 *   - retries with exponential backoff (backoff.h) on timeouts, connection
 *     failures, 5xx, 408 and 429;
 *   - Retry-After on 429 and 503 (seconds or an HTTP date) pauses the host
 *     in the registry, so every request of the process to it waits; one
 *     beyond retry_after_max_ms ends the request (HTTP_RATE_LIMITED) rather
 *     than blocking;
 *   - redirects followed by the client itself, one hop at a time, each hop
 *     rate-limited for its own host and offered to the URL filter;
 *   - waits that end early when a stop is requested (sig.h): HTTP_STOPPED;
 *   - an observer told of every request sent, every wait for the rate
 *     limit and every retry (http_client_set_observer), for statistics.
 *
 * The verdict on each attempt (retry, Retry-After, redirect, final error),
 * the retry count and the body's growth are httpcore.h's: the guarded
 * downloads (fetch.h, the hasher's) follow the same rules.
 *
 * Call http_global_init() once before threads start (http_client_new also
 * calls it, safely, but curl's global init is best done single-threaded).
 */
#ifndef IMGFEED_HTTP_H
#define IMGFEED_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "ratelimit.h"

typedef struct http_client http_client;

typedef struct http_options {
    const char *user_agent;     /* copied; NULL: "imgfeed/<version>" */
    int64_t connect_timeout_ms; /* per attempt; default 10 s */
    int64_t timeout_ms;         /* whole attempt, connect to last byte; default 30 s */
    int64_t max_bytes;          /* body limit; 0: none; default 0 */
    int max_retries;            /* retries after the first attempt; default 3 */
    int64_t backoff_initial_ms; /* first retry delay (backoff.h); default 1 s */
    int64_t backoff_max_ms;     /* default 60 s */
    int64_t retry_after_max_ms; /* longest wait for Retry-After or the rate limit; default 120 s */
    int max_redirects;          /* hops followed; default 5 */
} http_options;

/* Fill o with the defaults above. */
void http_options_init(http_options *o);

/* Decides whether a URL may be requested: called for the first URL (hop 0)
 * and for every redirect target before it is requested.  Return false to
 * refuse it (HTTP_REFUSED); why, if given, names the reason in the error. */
typedef bool (*http_url_filter)(void *userdata, const char *url, unsigned hop, char *why, size_t whylen);

typedef enum http_result {
    HTTP_OK = 0,         /* 2xx, body complete */
    HTTP_NOT_MODIFIED,   /* 304 to a conditional request */
    HTTP_TOO_LARGE,      /* the body passed the byte limit; download stopped */
    HTTP_TIMEOUT,        /* connect or total timeout, retries exhausted */
    HTTP_STATUS_ERROR,   /* final status other than 2xx/304 (e.g. 404, or 500 after the retries) */
    HTTP_NETWORK_ERROR,  /* DNS, connection, TLS, protocol errors (curl's text in error) */
    HTTP_REDIRECT_ERROR, /* too many redirects, a loop, or a 3xx without a usable Location */
    HTTP_RATE_LIMITED,   /* Retry-After or the host's rate limit asked for more than retry_after_max_ms */
    HTTP_REFUSED,        /* the URL filter refused a URL */
    HTTP_BAD_URL,        /* the URL cannot be parsed or has no host */
    HTTP_STOPPED,        /* a stop was requested (sig.h) */
} http_result;

/* A short name for a result: "ok", "not modified", "too large", … */
const char *http_result_name(http_result r);

typedef struct http_request {
    const char *url;
    const char *if_modified_since; /* the previous Last-Modified, sent as is; or NULL */
    const char *if_none_match;     /* the previous ETag, sent as is; or NULL */
    int64_t max_bytes;             /* > 0: this request's body limit instead of the client's */
    /* A POST instead of a GET: post_len bytes of post_body, sent as
     * application/x-www-form-urlencoded unless headers name another
     * Content-Type.  A redirect turns it into a GET of the new URL (as
     * browsers do for 301, 302 and 303). */
    const char *post_body;
    size_t post_len;
    const char *const *headers;      /* more request headers, "Name: value", NULL-terminated; or NULL */
    const char *userpwd;             /* "user:password" for HTTP basic auth, sent to the first URL only; or NULL */
    const char *const *keep_headers; /* names of response headers to keep in resp->kept (at most HTTP_KEEP_MAX) */
} http_request;

#define HTTP_KEEP_MAX 4

/* Everything http_get learnt.  Strings are malloc'd (or NULL when absent)
 * and owned by the response: free them all with http_response_release. */
typedef struct http_response {
    http_result result;
    long status;            /* status of the last response, 0 if none arrived */
    char *body;             /* never NULL after http_get; NUL-terminated; empty unless a body arrived */
    size_t body_len;        /* bytes of body, not counting the NUL */
    char *content_type;     /* as sent, or NULL */
    char *last_modified;    /* new Last-Modified; on 304, the server's or else the request's */
    char *etag;             /* new ETag; on 304, the server's or else the request's */
    char *effective_url;    /* the URL of the last hop */
    int attempts;           /* requests sent in all: retries and redirect hops included */
    int redirects;          /* hops followed */
    int new_connections;    /* connections opened; 0 when every request reused one */
    int64_t retry_after_ms; /* the last Retry-After received, -1 if none */
    char *kept[HTTP_KEEP_MAX]; /* the values of req->keep_headers in the last response, in order; NULL: absent */
    char error[320];        /* "" on HTTP_OK / HTTP_NOT_MODIFIED; else "http 404", "timeout after 10000 ms", … */
} http_response;

/* Initialise curl once per process; thread-safe, idempotent.  Returns 0, or
 * -1 (logged) when curl cannot be initialised. */
int http_global_init(void);
/* Undo http_global_init at exit, when no client is left. */
void http_global_cleanup(void);

/* A client with a copy of opt (NULL: defaults) that takes its grants from
 * rl (NULL: no rate limit).  rl must outlive the client.  Returns NULL
 * (logged) when curl fails.  http_client_free(NULL) does nothing. */
http_client *http_client_new(const http_options *opt, ratelimit *rl);
void http_client_free(http_client *c);
void http_client_set_url_filter(http_client *c, http_url_filter filter, void *userdata);

/* What a client tells of its requests as they happen, for its owner's
 * statistics (the crawler's metrics).  Each function may be NULL; they are
 * called in the thread of http_get, which waits for them: keep them quick. */
typedef struct http_observer {
    /* Every request sent (each retry and redirect hop too): the status of
     * its answer (0: none arrived: refused, reset, timed out, stopped) and
     * the seconds from sending it to its end. */
    void (*response)(void *userdata, long status, double seconds);
    /* A request that had to wait for its host's grant (the rate, or a pause
     * a Retry-After set), and the seconds it waited. */
    void (*ratelimit_wait)(void *userdata, double seconds);
    /* A request about to be retried after a failure (timeout, connection
     * failure, 5xx, 408, 429), before its backoff or Retry-After. */
    void (*retry)(void *userdata);
    void *userdata;
} http_observer;

/* Report the client's requests to OBS (copied; NULL: to nobody). */
void http_client_set_observer(http_client *c, const http_observer *obs);
/* The client's curl handle, to set options http_get leaves alone (for
 * example CURLOPT_OPENSOCKETFUNCTION to refuse addresses).  http_get sets
 * CURLOPT_URL, CURLOPT_HTTPHEADER and CURLOPT_MAXFILESIZE_LARGE on every
 * request; the options set at creation are kept unless changed here. */
CURL *http_client_curl(http_client *c);

/* GET req->url.  resp is overwritten (release it before reuse) and always
 * filled, on failure too.  Returns 0 for HTTP_OK and HTTP_NOT_MODIFIED, -1
 * otherwise, resp->result and resp->error saying what happened. */
int http_get(http_client *c, const http_request *req, http_response *resp);
/* Free the response's strings and zero it.  Safe on a zeroed response. */
void http_response_release(http_response *resp);

/* The milliseconds a Retry-After value asks to wait: delta-seconds, or an
 * HTTP date compared with now_wall_ms (UNIX milliseconds).  A date in the
 * past gives 0.  Returns -1 when the value is neither. */
int64_t http_retry_after_ms(const char *value, int64_t now_wall_ms);

/* The settings every imgfeed transfer shares, on an easy handle the caller
 * owns (the blocking client here and the hasher's multi-interface
 * downloads): no signals, ERRBUF (CURL_ERROR_SIZE bytes; NULL when the
 * caller sets one per transfer) as error buffer, USER_AGENT, the two
 * timeouts, redirects left to the caller, http and https only, any content
 * encoding, TCP keep-alive.  Returns 0, or -1 with the
 * option that failed in WHY. */
int http_easy_defaults(CURL *easy, char *errbuf, const char *user_agent, int64_t connect_timeout_ms,
                       int64_t timeout_ms, char *why, size_t whylen);
/* The host name of url (no port, no brackets removed for IPv6), into buf.
 * Returns 0, or -1 when url cannot be parsed or has no host. */
int http_url_host(const char *url, char *buf, size_t buflen);
/* URL without its user name and password ("http://u:p@h/x.png" gives
 * "http://h/x.png"), through curl's own URL parser (CURLU), so that what is
 * removed is exactly what curl would have sent as credentials.  A URL with
 * no user info comes back unchanged; one curl cannot parse gives NULL.  A
 * new string the caller frees; *STRIPPED (may be NULL) tells whether
 * anything was removed.  The one place a URL from a site is cleaned: the
 * crawler's _urls and redirects (http_get), the hasher's downloads and its
 * logs use it. */
char *http_url_strip_userinfo(const char *url, bool *stripped);
/* What a log line or an error shows in place of a URL that
 * http_url_strip_userinfo cannot parse: not its text, which may hold a
 * password. */
#define HTTP_URL_UNPARSED "(a url that cannot be parsed)"

#endif
