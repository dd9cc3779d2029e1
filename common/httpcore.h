/* httpcore.h -- the decisions every imgfeed HTTP transfer shares.
 *
 * imgfeed runs curl two ways: the crawler's blocking client (http.h, one
 * easy handle, a loop of attempts) and the hasher's downloads (fetch.h, the
 * multi interface, a state machine per job).  What an attempt means is the
 * same for both and lives here, once:
 *
 *   - the body buffer (httpcore_body): how it grows (exactly the
 *     Content-Length when one is given under a byte limit, else doubling
 *     from a first capacity, never past the limit + 1), the byte limit itself, and
 *     what is kept of an error page (HTTPCORE_ERROR_BODY_MAX bytes, then
 *     the transfer is stopped).  A caller that accounts for memory (the
 *     hasher's budget) hooks the growth: its reserve hook is asked before
 *     each realloc and may answer "wait", which pauses the transfer;
 *   - the verdict on a finished transfer (httpcore_judge), from curl's
 *     code, the status and the headers: done (ok, 304, or a final error
 *     with its text), retry after a backoff (timeouts, connection
 *     failures, 5xx, 408, 429), retry once a Retry-After is over (429 and
 *     503: the host is paused in the ratelimit registry for everybody), or
 *     a redirect hop (301/302/303/307/308; the Location resolved by curl,
 *     its user info removed, its host found, the hop count checked);
 *   - the retry count and the backoff between retries (httpcore_retry).
 *
 * What stays with the callers is how they wait (sleeping or a not-before
 * time), their own checks (the crawler's URL filter and redirect loops,
 * the hasher's netguard and memory budget), and how they word an error for
 * their readers (the hasher's `_img` errors are part of the contract).
 */
#ifndef IMGFEED_HTTPCORE_H
#define IMGFEED_HTTPCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>

#include "backoff.h"
#include "ratelimit.h"

#define HTTPCORE_ERROR_BODY_MAX (64 * 1024)        /* bytes read of a non-2xx body before hanging up */
#define HTTPCORE_PAUSE_MAX_MS (24LL * 3600 * 1000) /* longest pause a Retry-After sets on a host */
#define HTTPCORE_HOST_MAX 256
#define HTTPCORE_ERROR_MAX 320

/* curl_easy_setopt(EASY, OPTION, VALUE); when it fails, "cannot set curl
 * option OPTION: <curl's reason>" into WHY (WHYLEN bytes), then the
 * statement FAIL (return -1; goto fail;). */
#define HTTPCORE_SETOPT(easy, option, value, why, whylen, fail)                                                        \
    do {                                                                                                               \
        CURLcode setopt_rc = curl_easy_setopt(easy, option, value);                                                    \
        if (setopt_rc != CURLE_OK) {                                                                                   \
            snprintf(why, whylen, "cannot set curl option %s: %s", #option, curl_easy_strerror(setopt_rc));            \
            fail;                                                                                                      \
        }                                                                                                              \
    } while (0)

/* --- the body of one transfer --- */

/* Asked before the buffer grows to CAP bytes in all: true to go on, false
 * to pause the transfer until the caller can have them (it keeps asking,
 * with body->wait_cap, and unpauses curl).  The shrink hook is told the
 * capacity kept when the realloc that followed a reservation failed. */
typedef struct httpcore_body_hooks {
    bool (*reserve)(void *userdata, size_t cap);
    void (*shrink)(void *userdata, size_t cap);
    void *userdata;
} httpcore_body_hooks;

/* A zeroed body with first_cap set is ready.  data is NUL-terminated after
 * each write (when not NULL) and the owner's: httpcore_body_release frees
 * it, httpcore_body_take hands it over. */
typedef struct httpcore_body {
    char *data;
    size_t len, cap;
    int64_t limit;             /* bytes of a 2xx body allowed; 0: none */
    size_t first_cap;          /* first capacity when no Content-Length says more */
    bool keep_errors;          /* keep an error page's first HTTPCORE_ERROR_BODY_MAX bytes (else drop them) */
    httpcore_body_hooks hooks; /* reserve NULL: plain realloc */
    size_t error_seen;         /* bytes of a non-2xx body received */
    size_t wait_cap;           /* the capacity the reserve hook refused (the transfer is paused for it) */
    bool too_large;            /* a 2xx body passed limit: transfer stopped */
    bool truncated;            /* an error page passed HTTPCORE_ERROR_BODY_MAX: transfer stopped */
    bool no_memory;            /* the buffer could not grow: transfer stopped */
} httpcore_body;

/* Ready for a new attempt with byte limit LIMIT: no bytes, no flags; the
 * buffer is kept. */
void httpcore_body_reset(httpcore_body *b, int64_t limit);
/* The write callback's work for the N bytes at DATA of EASY's transfer:
 * returns N (taken), 0 (stop the transfer: a flag says why) or
 * CURL_WRITEFUNC_PAUSE (the reserve hook said wait: curl gives the same
 * bytes again once unpaused). */
size_t httpcore_body_write(httpcore_body *b, CURL *easy, const char *data, size_t n);
/* The buffer, handed to the caller (free()): NUL-terminated, an empty
 * string when nothing arrived; *LEN its length.  The body is empty after. */
char *httpcore_body_take(httpcore_body *b, size_t *len);
/* Free the buffer; the settings (limit, first_cap, hooks) are kept. */
void httpcore_body_release(httpcore_body *b);

/* --- the verdict on one transfer --- */

typedef enum httpcore_next {
    HTTPCORE_DONE,        /* kind says how it ended */
    HTTPCORE_RETRY,       /* worth another attempt after a backoff delay */
    HTTPCORE_RETRY_AFTER, /* worth another attempt once the Retry-After is over */
    HTTPCORE_REDIRECT,    /* go on at location */
} httpcore_next;

typedef enum httpcore_kind {
    HTTPCORE_OK,             /* 2xx, body complete */
    HTTPCORE_NOT_MODIFIED,   /* 304 */
    HTTPCORE_STOPPED,        /* a callback aborted the transfer (a stop was requested) */
    HTTPCORE_TOO_LARGE,      /* the body passed the limit (or the Content-Length did) */
    HTTPCORE_NO_MEMORY,      /* the body's buffer could not grow */
    HTTPCORE_TIMEOUT,        /* connect or total timeout (connect_timeout says which) */
    HTTPCORE_BAD_URL,        /* a URL curl refuses, or a redirect to one without a host */
    HTTPCORE_NETWORK,        /* DNS, connection, TLS, protocol: error is curl's message */
    HTTPCORE_STATUS,         /* a status that is not a success: "http 404" */
    HTTPCORE_REDIRECT_ERROR, /* a 3xx without a usable Location, or too many hops */
    HTTPCORE_RATE_LIMITED,   /* a Retry-After longer than allowed */
} httpcore_kind;

/* What one transfer ended with. */
typedef struct httpcore_attempt {
    CURL *easy;                 /* its handle, still holding the response */
    CURLcode code;              /* what curl said */
    const httpcore_body *body;  /* its body */
    const char *errbuf;         /* curl's error buffer, or NULL */
    const char *url;            /* the URL of this hop (for logs) */
    ratelimit *rl;              /* the registry to pause host in on Retry-After; NULL: none */
    const char *host;           /* the URL's host */
    int64_t retry_after_max_ms; /* a longer Retry-After ends the request */
    int redirects;              /* hops followed before this one */
    int max_redirects;          /* hops allowed */
} httpcore_attempt;

typedef struct httpcore_verdict {
    httpcore_next next;
    httpcore_kind kind;
    long status;                  /* 0 when no response arrived */
    bool connect_timeout;         /* TIMEOUT before the connection was made */
    bool host_paused;             /* RETRY_AFTER: the registry holds the host back for the wait */
    int64_t retry_after_ms;       /* the Retry-After received (429/503), -1 if none */
    char *location;               /* REDIRECT: the target without user info (malloc'd, the caller's);
                                   * else NULL, or with BAD_URL the target without a host */
    char host[HTTPCORE_HOST_MAX]; /* REDIRECT: location's host */
    char detail[CURL_ERROR_SIZE]; /* TIMEOUT, BAD_URL, NETWORK: curl's own message */
    /* "" on OK; else "http 404", "http 304", "stopped", "too large", "timeout",
     * "bad url: <curl's text>", curl's message (NETWORK), "http 302 without a
     * usable location", "too many redirects (more than 5)", "bad url:
     * redirect to <url> without a host", "http 429: retry-after N ms is
     * longer than the M ms allowed"; never a URL's user info */
    char error[HTTPCORE_ERROR_MAX];
} httpcore_verdict;

/* Judge the transfer A describes into *V (overwritten).  Side effect: a
 * 429/503 with a Retry-After pauses A->host in A->rl (up to
 * HTTPCORE_PAUSE_MAX_MS), also when the wait is longer than allowed.
 * Free v->location with free() (httpcore_verdict_release). */
void httpcore_judge(const httpcore_attempt *a, httpcore_verdict *v);
void httpcore_verdict_release(httpcore_verdict *v);

/* True for the curl codes worth another attempt: timeouts, DNS and
 * connection failures, send/receive errors, an empty or partial reply, TLS
 * handshake failures, HTTP/2 stream errors. */
bool httpcore_retryable_code(CURLcode code);

/* --- retries --- */

typedef struct httpcore_retry {
    int left, max;
    backoff bo;
} httpcore_retry;

void httpcore_retry_init(httpcore_retry *r, int max_retries, int64_t backoff_initial_ms, int64_t backoff_max_ms);
/* After a verdict of RETRY or RETRY_AFTER: false when no retry is left (the
 * verdict is then final); else true, one retry used, *DELAY_MS the wait
 * before it (the backoff's next delay, or for RETRY_AFTER 0 when the
 * registry holds the host back, the Retry-After itself when not). */
bool httpcore_retry_take(httpcore_retry *r, const httpcore_verdict *v, int64_t *delay_ms);
/* Retries used so far. */
int httpcore_retry_used(const httpcore_retry *r);

#endif
