/* fetch.h -- many guarded downloads at once on libcurl's multi interface.
 *
 * For any program that downloads files from URLs it was given (the hasher's
 * consumer, one job per picture): the caller adds one job per URL
 * (fetch_add) and drives every transfer from its own loop (fetch_perform),
 * taking finished jobs back with fetch_take.  Nothing blocks: the loop waits in curl_multi_poll for sockets,
 * timers, or fetch_wakeup (which the hashing threads call when they finish a
 * job), never longer than the caller allows.
 *
 * What a job goes through (fetch_state, each change logged at debug level):
 *
 *   WAITING ──slot free, not_before reached, memory, host's grant────▶ RUNNING
 *   RUNNING ──2xx, or a final error──────────────────────────────────▶ FINISHED
 *   RUNNING ──3xx (redirect hop), or a retryable failure + backoff────▶ WAITING
 *   RUNNING ──no memory for the body: paused in curl, then resumed───▶ RUNNING
 *
 * - At most max_transfers run at once; the multi handle keeps the
 *   connections and the DNS cache between transfers, so they are reused.
 * - Each attempt, retry and redirect hop takes a grant for its own host from
 *   the shared ratelimit registry with ratelimit_try: a host that is not due
 *   yet leaves its job waiting while other hosts' jobs start.
 * - Every new connection is offered to the netguard from curl's open-socket
 *   callback: the address checked is the one about to be connected, after
 *   DNS resolution, on every redirect hop ("refused: private address ...",
 *   final).  Redirects are followed by this module, at most max_redirects,
 *   and only to http and https.  Proxies from the environment are ignored,
 *   since the guard could not see the real address behind one.
 * - The body is limited to max_bytes: a larger Content-Length is refused
 *   before the body (CURLOPT_MAXFILESIZE_LARGE), and a body that grows past
 *   the limit stops the transfer ("too large").
 * - Memory (membudget.h, --max-memory): a body's buffer is reserved from the
 *   budget before it is allocated.  A job starts only when its first 64 KiB
 *   fit and nobody waits for memory; its whole body is reserved when the
 *   Content-Length arrives (and each doubling of a body of unknown length),
 *   and a transfer whose body does not fit is paused in curl
 *   (CURL_WRITEFUNC_PAUSE) until it does.  A transfer that times out while
 *   it was paused is started again once, not counted as a retry, with its
 *   whole body reserved before it starts.  A failed attempt gives its
 *   memory back at once; a downloaded body keeps its reservation, which
 *   fetch_take hands to the caller with the body.
 * - User names and passwords in URLs (http://user:secret@host/x.png) are
 *   never used: a site's post cannot make a download send credentials.
 *   Every URL, the first and each redirect's Location, goes through
 *   http_url_strip_userinfo (common/http.h) before it is downloaded or logged, and curl is
 *   told to refuse a URL with a user name should one ever reach it
 *   (CURLOPT_DISALLOW_USERNAME_IN_URL).  (curl 7.88 itself, following a
 *   Location with user info, would send it as Authorization: Basic; and its
 *   CURLINFO_REDIRECT_URL keeps it.)  The picture is still downloaded: it is
 *   public, only the credentials are dropped.
 * - Timeouts, connection failures, 5xx, 408 and 429 are retried up to
 *   max_retries times with exponential backoff; a Retry-After on 429 or 503
 *   pauses the whole host in the registry (without a registry, the job
 *   waits it out itself).  Other statuses are final ("http 404").  These
 *   rules, the redirect checks and the body's growth are httpcore.h's,
 *   the same the crawler's client (http.h) follows.
 *
 * Ownership: fetch_new returns an object freed with fetch_free (which
 * cancels every job).  A fetch_job pointer is valid from fetch_add until the
 * job is taken or cancelled.  The body of a taken result is the caller's
 * (free()), and so is its claim on the budget (membudget_release, or
 * membudget_claim_move into the caller's own claim).  One thread drives a
 * fetch object, the same that uses its budget; only fetch_wakeup may be
 * called from other threads.
 */
#ifndef IMGFEED_FETCH_H
#define IMGFEED_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "membudget.h"
#include "netguard.h"
#include "ratelimit.h"

#define FETCH_ERROR_MAX 320

typedef struct fetch fetch;
typedef struct fetch_job fetch_job;

typedef struct fetch_options {
    const char *user_agent;     /* copied; NULL: "imgfeed" */
    int64_t connect_timeout_ms; /* default 10 s */
    int64_t timeout_ms;         /* one attempt, connecting to last byte; default 60 s */
    int64_t max_bytes;          /* body limit; default 64 MiB */
    int max_transfers;          /* running at once; default 32 */
    int max_retries;            /* retries after the first attempt; default 2 */
    int max_redirects;          /* hops followed; default 5 */
    int64_t backoff_initial_ms; /* first retry delay (backoff.h); default 1 s */
    int64_t backoff_max_ms;     /* default 30 s */
    int64_t retry_after_max_ms; /* a host held back longer ends the job; default 120 s */
} fetch_options;

void fetch_options_init(fetch_options *o);

typedef enum fetch_state {
    FETCH_WAITING,  /* for a transfer slot, its host's grant, or a retry's backoff */
    FETCH_RUNNING,  /* a transfer in curl */
    FETCH_FINISHED, /* done; waiting for fetch_take */
} fetch_state;

const char *fetch_state_name(fetch_state s);

/* How a job ended, from a fixed list (fetch_outcome_name): what a program
 * counts its downloads by (the hasher's imgfeed_hasher_downloads_total). */
typedef enum fetch_outcome {
    FETCH_OUTCOME_OK,              /* downloaded */
    FETCH_OUTCOME_HTTP_ERROR,      /* a status that is not a success, retried or not ("http 404", "http 503") */
    FETCH_OUTCOME_TIMEOUT,         /* connecting or the transfer took too long, retries included */
    FETCH_OUTCOME_TOO_LARGE,       /* past max_bytes (or the body's buffer could not grow) */
    FETCH_OUTCOME_REFUSED_ADDRESS, /* the guard refused the address to connect (a private address) */
    FETCH_OUTCOME_NETWORK_ERROR,   /* DNS, connection, TLS, protocol, or curl itself */
    FETCH_OUTCOME_BAD_URL,         /* a URL that cannot be parsed, has no host, or curl refuses */
    FETCH_OUTCOME_REDIRECT_ERROR,  /* too many redirects, or a 3xx without a usable Location */
    FETCH_OUTCOME_RATE_LIMITED,    /* the host is held back longer than retry_after_max_ms */
    FETCH_OUTCOMES
} fetch_outcome;

/* "ok", "http_error", "timeout", "too_large", "refused_address",
 * "network_error", "bad_url", "redirect_error", "rate_limited". */
const char *fetch_outcome_name(fetch_outcome o);

typedef struct fetch_result {
    void *userdata; /* as given to fetch_add */
    bool ok;
    fetch_outcome outcome; /* FETCH_OUTCOME_OK exactly when ok */
    double seconds;        /* its transfers' time: every attempt and hop, start to end, not the waits between */
    unsigned char *body;   /* ok: len bytes (plus a NUL), the caller's to free(); else NULL */
    size_t len;
    membudget_claim claim; /* ok: the body's reservation (its buffer), the caller's; else empty */
    long status;           /* of the last response; 0 when none arrived */
    int attempts;          /* transfers started: retries and redirect hops included */
    int redirects;         /* hops followed */
    /* !ok: what `_img` records: "http 404", "timeout", "too large",
     * "refused: private address 127.0.0.1 (loopback)", "too many redirects",
     * "bad url: ...", "network error: <curl's message>"; never a URL's
     * user name or password */
    char error[FETCH_ERROR_MAX];
} fetch_result;

/* A fetch object with a copy of O (NULL: defaults), taking grants from RL
 * (NULL: no rate limit), asking GUARD (NULL: no guard) about every new
 * connection and reserving the bodies from BUDGET (NULL: no bound); RL,
 * GUARD and BUDGET must outlive it.  NULL, logged, when curl fails. */
fetch *fetch_new(const fetch_options *o, ratelimit *rl, const netguard *guard, membudget *budget);
void fetch_free(fetch *f);

/* Queue a download of URL; USERDATA comes back in its result. */
fetch_job *fetch_add(fetch *f, const char *url, void *userdata);
/* Forget a job that was not taken yet: its transfer stops, nothing of it
 * comes back. */
void fetch_cancel(fetch *f, fetch_job *job);

/* Start the jobs that are due (when MAY_START: the caller stops new
 * transfers while it has too much downloaded and not yet hashed), wait up to
 * MAX_WAIT_MS for network activity, a timer or fetch_wakeup, and move
 * transfers along.  Returns 0, or -1 (logged) when curl itself fails. */
int fetch_perform(fetch *f, int64_t max_wait_ms, bool may_start);
/* fetch_perform that also stops waiting when WATCH_FD (-1: none) becomes
 * readable: the consumer watches the broker's socket this way while a
 * publish waits for its confirms. */
int fetch_perform_watch(fetch *f, int64_t max_wait_ms, bool may_start, int watch_fd);
/* Take a finished job: fills *OUT and returns true, or false when none is
 * finished.  The job pointer is invalid afterwards. */
bool fetch_take(fetch *f, fetch_result *out);
/* Make a fetch_perform that waits return now.  Thread-safe. */
void fetch_wakeup(fetch *f);
/* Jobs added and neither taken nor cancelled. */
size_t fetch_pending(const fetch *f);
/* Jobs whose transfer is running now. */
size_t fetch_running(const fetch *f);

/* True when URL names a picture or video by the extension of its path (jpg
 * jpeg png gif webp bmp tif tiff avif heic heif webm mp4, any case; the
 * query and fragment are ignored).  Links to pages are not downloaded; an
 * item's own files (the first `_files` of its `_urls`) are, whatever their
 * path (consumer.c). */
bool fetch_is_media_url(const char *url);

#endif
