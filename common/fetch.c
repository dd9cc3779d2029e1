/* fetch.c -- guarded downloads on libcurl's multi interface (the hasher's).
 *
 * Jobs live on three lists, one per fetch_state.  fetch_perform() is one
 * turn of the wheel:
 *
 *   1. start due jobs (fetch_start_due): in the order they were added, while
 *      a transfer slot is free, each job whose not_before has come asks
 *      ratelimit_try for its host; one granted gets a fresh easy handle and
 *      joins the multi handle, one refused learns how long to wait;
 *   2. wait in curl_multi_poll (bounded by the caller, by curl's own timers
 *      and by the earliest waiting job), then curl_multi_perform;
 *   3. judge every transfer curl reports done (fetch_on_done) with
 *      httpcore_judge, the rules common/http.c uses for the crawler too:
 *      success, redirect hop, retry after a backoff or a Retry-After, or a
 *      final error, worded here for `_img`.
 *
 * An attempt takes an easy handle from the idle stack (made and configured
 * once, at most max_transfers of them) and gives it back when it ends; only
 * the options that name the job (URL, private pointer, error buffer, write
 * and open-socket data) are set again.  Making and configuring a handle per
 * picture cost a tenth of the hasher's main thread.  The connections and the
 * DNS cache belong to the multi handle, so they outlive the attempts and are
 * reused.  The body is an httpcore_body: it grows by doubling up to
 * max_bytes (exactly the Content-Length when one is given); error pages are
 * read up to HTTPCORE_ERROR_BODY_MAX and dropped.  The open-socket callback asks the netguard about the
 * address curl is about to connect and records why it refused, so that the
 * resulting connect failure can be reported as a refusal and not retried.
 *
 * Memory: each job has a claim on the budget that always covers its body's
 * capacity.  fetch_start_due reserves the first 64 KiB before the host's
 * grant (a job that cannot have them stays waiting, and so do the new ones
 * after it; a job started again after a timeout while paused reserves its
 * whole body, waiting in the budget's queue); the body's reserve hook
 * (fetch_body_reserve) reserves each larger capacity before the realloc,
 * and when that has to wait the write callback returns
 * CURL_WRITEFUNC_PAUSE: curl keeps the bytes it holds and stops reading the
 * socket.  fetch_resume asks again for every paused job at each turn, and
 * unpauses the ones granted; curl then gives the same bytes to the write callback again.  A
 * handle paused when its transfer ends is not reused (curl could keep the
 * pause and the held bytes).
 *
 * Each job also keeps, for fetch_take, its outcome (fetch_outcome: set
 * where it ends, with the `_img` error, from the verdict's kind or from
 * this module's own refusals) and the time its attempts ran (from the
 * handle joining the multi handle to its release; not the waits for a
 * slot, a grant or a backoff in between).
 */
#include "fetch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "http.h"
#include "httpcore.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#define FETCH_FIRST_CAP (64 * 1024)
#define FETCH_WHY_MAX 160

typedef struct fetch_list {
    fetch_job *head, *tail;
    size_t count;
} fetch_list;

struct fetch_job {
    fetch_job *prev, *next;
    fetch *owner;
    fetch_state state;
    void *userdata;
    char *url; /* of the current hop */
    char host[HTTPCORE_HOST_MAX];
    int64_t not_before_ns;
    int attempts, redirects;
    httpcore_retry retry;
    CURL *easy;                  /* while RUNNING */
    httpcore_body body;          /* of the current attempt; kept when downloaded */
    membudget_claim claim;       /* covers cap (or more while waiting to start) */
    bool paused;                 /* the write callback paused the transfer: waiting for memory */
    bool waited;                 /* this attempt was paused at least once */
    bool memory_retried;         /* started again after a timeout while paused */
    size_t expect;               /* the body's capacity, known from an earlier attempt (0: unknown) */
    char refused[FETCH_WHY_MAX]; /* why the guard refused an address of this attempt */
    char errbuf[CURL_ERROR_SIZE];
    long status;
    bool ok;
    fetch_outcome outcome;
    int64_t attempt_start_ns; /* while an attempt runs (0: none) */
    int64_t transfer_ns;      /* of the attempts that ended */
    char error[FETCH_ERROR_MAX];
};

struct fetch {
    CURLM *multi;
    fetch_options opt;
    char *user_agent;
    ratelimit *rl;
    const netguard *guard;
    fetch_list waiting, running, finished;
    membudget *budget;
    CURL **idle; /* easy handles between attempts, configured but for the job's options */
    size_t nidle;
};

/* --- options, names --- */

void fetch_options_init(fetch_options *o) {
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 60000;
    o->max_bytes = 64LL * 1024 * 1024;
    o->max_transfers = 32;
    o->max_retries = 2;
    o->max_redirects = 5;
    o->backoff_initial_ms = 1000;
    o->backoff_max_ms = 30000;
    o->retry_after_max_ms = 120000;
}

const char *fetch_state_name(fetch_state s) {
    switch (s) {
    case FETCH_WAITING: return "waiting";
    case FETCH_RUNNING: return "running";
    case FETCH_FINISHED: return "finished";
    }
    return "unknown";
}

static const char *const fetch_outcome_names[FETCH_OUTCOMES] = {
    [FETCH_OUTCOME_OK] = "ok",
    [FETCH_OUTCOME_HTTP_ERROR] = "http_error",
    [FETCH_OUTCOME_TIMEOUT] = "timeout",
    [FETCH_OUTCOME_TOO_LARGE] = "too_large",
    [FETCH_OUTCOME_REFUSED_ADDRESS] = "refused_address",
    [FETCH_OUTCOME_NETWORK_ERROR] = "network_error",
    [FETCH_OUTCOME_BAD_URL] = "bad_url",
    [FETCH_OUTCOME_REDIRECT_ERROR] = "redirect_error",
    [FETCH_OUTCOME_RATE_LIMITED] = "rate_limited",
};

const char *fetch_outcome_name(fetch_outcome o) {
    return o >= 0 && o < FETCH_OUTCOMES ? fetch_outcome_names[o] : "unknown";
}

/* The outcome of a job ended by a verdict of kind K. */
static fetch_outcome fetch_outcome_of(httpcore_kind k) {
    switch (k) {
    case HTTPCORE_OK: return FETCH_OUTCOME_OK;
    case HTTPCORE_NOT_MODIFIED:
    case HTTPCORE_STATUS: return FETCH_OUTCOME_HTTP_ERROR;
    case HTTPCORE_TOO_LARGE:
    case HTTPCORE_NO_MEMORY: return FETCH_OUTCOME_TOO_LARGE;
    case HTTPCORE_TIMEOUT: return FETCH_OUTCOME_TIMEOUT;
    case HTTPCORE_BAD_URL: return FETCH_OUTCOME_BAD_URL;
    case HTTPCORE_REDIRECT_ERROR: return FETCH_OUTCOME_REDIRECT_ERROR;
    case HTTPCORE_RATE_LIMITED: return FETCH_OUTCOME_RATE_LIMITED;
    case HTTPCORE_STOPPED:
    case HTTPCORE_NETWORK: return FETCH_OUTCOME_NETWORK_ERROR;
    }
    return FETCH_OUTCOME_NETWORK_ERROR;
}

bool fetch_is_media_url(const char *url) {
    static const char *const exts[] = {"jpg",  "jpeg", "png",  "gif",  "webp", "bmp", "tif",
                                       "tiff", "avif", "heic", "heif", "webm", "mp4", NULL};
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p) return false;
    p += 3;
    const char *path = p + strcspn(p, "/?#");
    if (*path != '/') return false;
    const char *end = path + strcspn(path, "?#");
    const char *dot = NULL;
    for (const char *c = path; c < end; c++) {
        if (*c == '/') dot = NULL;
        if (*c == '.') dot = c;
    }
    if (!dot) return false;
    size_t len = (size_t)(end - dot - 1);
    for (size_t i = 0; exts[i]; i++)
        if (strlen(exts[i]) == len && strncasecmp(dot + 1, exts[i], len) == 0) return true;
    return false;
}

/* --- lists --- */

static void fetch_list_append(fetch_list *l, fetch_job *job) {
    job->prev = l->tail;
    job->next = NULL;
    if (l->tail) {
        l->tail->next = job;
    } else {
        l->head = job;
    }
    l->tail = job;
    l->count++;
}

static void fetch_list_remove(fetch_list *l, fetch_job *job) {
    if (job->prev) {
        job->prev->next = job->next;
    } else {
        l->head = job->next;
    }
    if (job->next) {
        job->next->prev = job->prev;
    } else {
        l->tail = job->prev;
    }
    job->prev = job->next = NULL;
    l->count--;
}

static fetch_list *fetch_list_of(fetch *f, fetch_state s) {
    switch (s) {
    case FETCH_WAITING: return &f->waiting;
    case FETCH_RUNNING: return &f->running;
    case FETCH_FINISHED: return &f->finished;
    }
    return &f->waiting;
}

/* Move JOB to state TO, logging why. */
static void fetch_set_state(fetch_job *job, fetch_state to, const char *why) {
    fetch *f = job->owner;
    log_debug("download %s: %s -> %s (%s)", job->url, fetch_state_name(job->state), fetch_state_name(to), why);
    fetch_list_remove(fetch_list_of(f, job->state), job);
    job->state = to;
    fetch_list_append(fetch_list_of(f, to), job);
}

/* --- the object --- */

fetch *fetch_new(const fetch_options *o, ratelimit *rl, const netguard *guard, membudget *budget) {
    if (http_global_init() != 0) return NULL;
    fetch *f = xcalloc(1, sizeof *f);
    if (o) {
        f->opt = *o;
    } else {
        fetch_options_init(&f->opt);
    }
    if (f->opt.max_transfers < 1) f->opt.max_transfers = 1;
    f->user_agent = xstrdup(f->opt.user_agent ? f->opt.user_agent : "imgfeed");
    f->opt.user_agent = f->user_agent;
    f->rl = rl;
    f->guard = guard;
    f->budget = budget;
    f->idle = xcalloc((size_t)f->opt.max_transfers, sizeof *f->idle);
    f->multi = curl_multi_init();
    if (!f->multi) {
        log_error("cannot create a curl multi handle: curl_multi_init failed");
        fetch_free(f);
        return NULL;
    }
    CURLMcode mc = curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)f->opt.max_transfers + 16);
    if (mc != CURLM_OK) log_warn("cannot set the connection cache size: %s", curl_multi_strerror(mc));
    return f;
}

/* Free JOB's body and give its memory back. */
static void fetch_drop_body(fetch_job *job) {
    httpcore_body_release(&job->body);
    membudget_release(&job->claim);
}

static void fetch_job_free(fetch_job *job) {
    fetch_drop_body(job);
    free(job->url);
    free(job);
}

/* Take JOB's easy handle off the multi handle and keep it for the next
 * attempt (or clean it up when the idle stack is full, or when it is still
 * paused: see the top of this file). */
static void fetch_release_easy(fetch *f, fetch_job *job) {
    CURL *easy = job->easy;
    job->easy = NULL;
    if (job->attempt_start_ns) {
        job->transfer_ns += time_mono_ns() - job->attempt_start_ns;
        job->attempt_start_ns = 0;
    }
    curl_multi_remove_handle(f->multi, easy);
    if (!job->paused && f->nidle < (size_t)f->opt.max_transfers) {
        f->idle[f->nidle++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
    job->paused = false;
}

/* Stop JOB's transfer if it runs. */
static void fetch_stop_transfer(fetch *f, fetch_job *job) {
    if (job->easy) fetch_release_easy(f, job);
}

void fetch_free(fetch *f) {
    if (!f) return;
    fetch_list *lists[] = {&f->waiting, &f->running, &f->finished};
    for (size_t i = 0; i < 3; i++) {
        while (lists[i]->head) {
            fetch_job *job = lists[i]->head;
            fetch_stop_transfer(f, job);
            fetch_list_remove(lists[i], job);
            fetch_job_free(job);
        }
    }
    while (f->nidle)
        curl_easy_cleanup(f->idle[--f->nidle]);
    free(f->idle);
    if (f->multi) curl_multi_cleanup(f->multi);
    free(f->user_agent);
    free(f);
}

size_t fetch_pending(const fetch *f) { return f->waiting.count + f->running.count + f->finished.count; }

size_t fetch_running(const fetch *f) { return f->running.count; }

void fetch_wakeup(fetch *f) { curl_multi_wakeup(f->multi); }

/* --- ending a job --- */

/* A downloaded body waits for hashing with what it needs only: a buffer
 * that doubled past its length (no Content-Length) is cut to it, and the
 * claim to the buffer (it held at least the first 64 KiB since the start). */
static void fetch_body_trim(fetch_job *job) {
    httpcore_body *b = &job->body;
    size_t need = b->len + 1;
    if (b->data && b->cap - need > need / 8 + 4096) {
        char *data = realloc(b->data, need);
        if (data) { /* else kept as it is, and counted as it is */
            b->data = data;
            b->cap = need;
        }
    }
    membudget_shrink(&job->claim, b->cap);
}

static void fetch_finish_ok(fetch_job *job) {
    job->ok = true;
    job->outcome = FETCH_OUTCOME_OK;
    job->error[0] = '\0';
    fetch_body_trim(job);
    fetch_set_state(job, FETCH_FINISHED, "downloaded");
}

/* End JOB with OUTCOME and the printf-formatted error `_img` records. */
static void fetch_finish_error(fetch_job *job, fetch_outcome outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fetch_finish_error(fetch_job *job, fetch_outcome outcome, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->error, sizeof job->error, fmt, ap);
    va_end(ap);
    job->ok = false;
    job->outcome = outcome;
    fetch_drop_body(job);
    fetch_set_state(job, FETCH_FINISHED, job->error);
}

/* Retry after verdict V's delay if retries are left; else end with ERROR
 * (and V's outcome). */
static void fetch_retry_or_fail(fetch_job *job, const httpcore_verdict *v, const char *error) {
    int64_t delay_ms = 0;
    if (!httpcore_retry_take(&job->retry, v, &delay_ms)) {
        fetch_finish_error(job, fetch_outcome_of(v->kind), "%s", error);
        return;
    }
    job->not_before_ns = time_mono_ns() + delay_ms * TIME_NS_PER_MS;
    char why[FETCH_ERROR_MAX + 64];
    snprintf(why, sizeof why, "%s; retry %d of %d in %" PRId64 " ms", error, httpcore_retry_used(&job->retry),
             job->owner->opt.max_retries, delay_ms);
    log_debug("download %s: %s", job->url, why);
    fetch_set_state(job, FETCH_WAITING, v->next == HTTPCORE_RETRY_AFTER ? "retry-after" : "retry");
}

/* Point JOB at its first URL, without its user info (a redirect's
 * Location comes without it from httpcore_judge).  False when URL cannot
 * be parsed or has no host: job ended. */
static bool fetch_set_url(fetch_job *job, const char *url) {
    bool stripped = false;
    char *clean = http_url_strip_userinfo(url, &stripped);
    free(job->url);
    job->url = clean ? clean : xstrdup(HTTP_URL_UNPARSED);
    job->not_before_ns = 0;
    if (stripped) log_debug("download %s: user name and password removed from the url", job->url);
    if (!clean || http_url_host(clean, job->host, sizeof job->host) != 0) {
        job->host[0] = '\0';
        return false;
    }
    return true;
}

/* --- curl callbacks --- */

/* The body's reserve hook: its claim on the budget covers CAP first. */
static bool fetch_body_reserve(void *userdata, size_t cap) {
    fetch_job *job = userdata;
    return membudget_reserve(&job->claim, cap);
}

/* The body's shrink hook: a realloc failed, the claim goes back to CAP. */
static void fetch_body_shrink(void *userdata, size_t cap) {
    fetch_job *job = userdata;
    membudget_shrink(&job->claim, cap);
}

static size_t fetch_on_write(char *data, size_t size, size_t nmemb, void *userdata) {
    fetch_job *job = userdata;
    size_t taken = httpcore_body_write(&job->body, job->easy, data, size * nmemb);
    if (taken == CURL_WRITEFUNC_PAUSE) {
        /* curl keeps these bytes and gives them again once unpaused */
        if (!job->paused)
            log_debug("download %s: pausing at %zu bytes until %zu bytes of memory are free", job->url, job->body.len,
                      job->body.wait_cap);
        job->paused = job->waited = true;
    }
    return taken;
}

static curl_socket_t fetch_on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address) {
    fetch_job *job = clientp;
    const netguard *guard = job->owner->guard;
    char why[FETCH_WHY_MAX - 32];
    if (guard && !netguard_permits(guard, &address->addr, why, sizeof why)) {
        snprintf(job->refused, sizeof job->refused, "%s", why);
        log_debug("download %s: not connecting to %s", job->url, why);
        return CURL_SOCKET_BAD;
    }
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd < 0) {
        snprintf(job->errbuf, sizeof job->errbuf, "cannot create a socket: %s", strerror(errno));
        return CURL_SOCKET_BAD;
    }
    return fd;
}

/* --- starting transfers --- */

#define FETCH_SETOPT(option, value) HTTPCORE_SETOPT(easy, option, value, why, whylen, goto fail)

/* A new easy handle with the options every attempt shares, or NULL with WHY. */
static CURL *fetch_make_easy(fetch *f, char *why, size_t whylen) {
    CURL *easy = curl_easy_init();
    if (!easy) {
        snprintf(why, whylen, "cannot create a curl handle: curl_easy_init failed");
        return NULL;
    }
    if (http_easy_defaults(easy, NULL, f->user_agent, f->opt.connect_timeout_ms, f->opt.timeout_ms, why, whylen) < 0)
        goto fail;
    FETCH_SETOPT(CURLOPT_PROXY, ""); /* no proxy from the environment: the guard must see the real address */
    /* fetch_set_url removed any user info; should one slip through, curl
     * refuses the URL instead of sending the credentials. */
    FETCH_SETOPT(CURLOPT_DISALLOW_USERNAME_IN_URL, 1L);
    FETCH_SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->opt.max_bytes);
    FETCH_SETOPT(CURLOPT_WRITEFUNCTION, fetch_on_write);
    FETCH_SETOPT(CURLOPT_OPENSOCKETFUNCTION, fetch_on_open_socket);
    return easy;
fail:
    curl_easy_cleanup(easy);
    return NULL;
}

/* An easy handle for JOB's current attempt (an idle one, or a new one), or
 * NULL with WHY. */
static CURL *fetch_take_easy(fetch *f, fetch_job *job, char *why, size_t whylen) {
    CURL *easy = f->nidle ? f->idle[--f->nidle] : fetch_make_easy(f, why, whylen);
    if (!easy) return NULL;
    FETCH_SETOPT(CURLOPT_URL, job->url);
    FETCH_SETOPT(CURLOPT_PRIVATE, job);
    FETCH_SETOPT(CURLOPT_ERRORBUFFER, job->errbuf);
    FETCH_SETOPT(CURLOPT_WRITEDATA, job);
    FETCH_SETOPT(CURLOPT_OPENSOCKETDATA, job);
    return easy;
fail:
    curl_easy_cleanup(easy);
    return NULL;
}

/* Start JOB's next attempt now (its grant is taken). */
static void fetch_start(fetch *f, fetch_job *job) {
    char why[FETCH_ERROR_MAX];
    httpcore_body_reset(&job->body, f->opt.max_bytes);
    job->paused = job->waited = false;
    job->refused[0] = '\0';
    job->errbuf[0] = '\0';
    job->status = 0;
    job->easy = fetch_take_easy(f, job, why, sizeof why);
    if (!job->easy) {
        log_error("cannot download %s: %s", job->url, why);
        fetch_finish_error(job, FETCH_OUTCOME_NETWORK_ERROR, "network error: %s", why);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(f->multi, job->easy);
    if (mc != CURLM_OK) {
        log_error("cannot download %s: cannot add the transfer: %s", job->url, curl_multi_strerror(mc));
        curl_easy_cleanup(job->easy); /* not on the multi handle */
        job->easy = NULL;
        fetch_finish_error(job, FETCH_OUTCOME_NETWORK_ERROR, "network error: %s", curl_multi_strerror(mc));
        return;
    }
    job->attempt_start_ns = time_mono_ns();
    job->attempts++;
    char attempt[32];
    snprintf(attempt, sizeof attempt, "attempt %d", job->attempts);
    fetch_set_state(job, FETCH_RUNNING, attempt);
}
/* The memory JOB needs before it starts: its whole body when an earlier
 * attempt told its size (reserved in turn, waiting in the queue), else the
 * first FETCH_FIRST_CAP bytes, only when nobody waits.  False: not now. */
static bool fetch_reserve_start(fetch_job *job) {
    if (job->expect) return membudget_reserve(&job->claim, job->expect);
    return membudget_try(&job->claim, FETCH_FIRST_CAP);
}

/* Start the waiting jobs that are due, while slots are free.  Returns the
 * nanoseconds until the next waiting job is due (INT64_MAX: none). */
static int64_t fetch_start_due(fetch *f) {
    int64_t now = time_mono_ns(), next = INT64_MAX;
    int64_t max_wait_ns = f->opt.retry_after_max_ms * TIME_NS_PER_MS;
    bool no_memory = false; /* a job could not have its first bytes: no new one starts this turn */
    fetch_job *job = f->waiting.head;
    while (job && f->running.count < (size_t)f->opt.max_transfers) {
        fetch_job *following = job->next;
        if (job->not_before_ns > now) {
            if (job->not_before_ns - now < next) next = job->not_before_ns - now;
        } else if (no_memory && !job->expect) {
            /* waits for memory, after the one before it */
        } else if (!fetch_reserve_start(job)) {
            /* A job that knows its size waits in the budget's queue and must
             * keep asking (it may be the head); the others just start later. */
            if (!job->expect) no_memory = true;
        } else {
            int64_t wait = f->rl ? ratelimit_try(f->rl, job->host) : 0;
            if (wait == 0) {
                fetch_start(f, job);
            } else if (wait > max_wait_ns) {
                fetch_finish_error(job, FETCH_OUTCOME_RATE_LIMITED,
                                   "rate limited: host %s is held back for %" PRId64 " s", job->host,
                                   (int64_t)(wait / TIME_NS_PER_S));
            } else {
                if (!job->expect) membudget_release(&job->claim); /* the first bytes, taken again when due */
                job->not_before_ns = now + wait;
                if (wait < next) next = wait;
            }
        }
        job = following;
    }
    return next;
}

/* --- judging a finished transfer --- */

/* JOB goes on at the Location of verdict V (taken from it). */
static void fetch_follow(fetch_job *job, httpcore_verdict *v) {
    free(job->url);
    job->url = v->location;
    v->location = NULL;
    snprintf(job->host, sizeof job->host, "%s", v->host);
    job->not_before_ns = 0;
    job->redirects++;
    fetch_set_state(job, FETCH_WAITING, "redirect");
}

/* A transfer that failed before a response to judge by its status: V's
 * kind is TIMEOUT, BAD_URL or NETWORK; the guard and the memory budget may
 * know better. */
static void fetch_on_transfer_error(fetch_job *job, CURLcode code, const httpcore_verdict *v) {
    char error[HTTPCORE_ERROR_MAX + 16];
    if (job->refused[0]) {
        fetch_finish_error(job, FETCH_OUTCOME_REFUSED_ADDRESS, "refused: private address %s", job->refused);
    } else if (code == CURLE_OPERATION_TIMEDOUT && job->waited && !job->memory_retried) {
        /* Its time ran out while it waited for memory, not for the host:
         * once more, its whole body reserved before it starts. */
        job->memory_retried = true;
        job->expect = job->body.wait_cap > job->body.cap ? job->body.wait_cap : job->body.cap;
        log_debug("download %s: timed out while waiting for memory; starting again once %zu bytes are free", job->url,
                  job->expect);
        fetch_set_state(job, FETCH_WAITING, "timed out waiting for memory");
    } else if (v->kind == HTTPCORE_TIMEOUT) {
        log_debug("download %s: %s", job->url, v->detail);
        fetch_retry_or_fail(job, v, "timeout");
    } else if (v->kind == HTTPCORE_BAD_URL) {
        fetch_finish_error(job, FETCH_OUTCOME_BAD_URL, "%s", v->error);
    } else if (v->next == HTTPCORE_RETRY) {
        snprintf(error, sizeof error, "network error: %s", v->error);
        fetch_retry_or_fail(job, v, error);
    } else {
        fetch_finish_error(job, FETCH_OUTCOME_NETWORK_ERROR, "network error: %s", v->error);
    }
}

/* Curl reports JOB's transfer done with CODE: decide what comes next. */
static void fetch_on_done(fetch *f, fetch_job *job, CURLcode code) {
    job->ok = false;
    httpcore_attempt a = {
        .easy = job->easy,
        .code = code,
        .body = &job->body,
        .errbuf = job->errbuf,
        .url = job->url,
        .rl = f->rl,
        .host = job->host,
        .retry_after_max_ms = f->opt.retry_after_max_ms,
        .redirects = job->redirects,
        .max_redirects = f->opt.max_redirects,
    };
    httpcore_verdict v;
    httpcore_judge(&a, &v);
    job->status = v.status;
    bool transfer_failed = v.kind == HTTPCORE_TIMEOUT || v.kind == HTTPCORE_NETWORK ||
                           (v.kind == HTTPCORE_BAD_URL && v.detail[0]) || v.kind == HTTPCORE_STOPPED;
    if (v.kind == HTTPCORE_OK) {
        fetch_finish_ok(job);
    } else if (v.next == HTTPCORE_REDIRECT) {
        fetch_follow(job, &v);
    } else if (transfer_failed) {
        fetch_on_transfer_error(job, code, &v);
    } else if (v.kind == HTTPCORE_RATE_LIMITED) {
        /* `_img` says the status; the log says why */
        fetch_finish_error(job, FETCH_OUTCOME_RATE_LIMITED, "http %ld", v.status);
    } else if (v.next == HTTPCORE_DONE) {
        /* "http 404", "too large", "too many redirects ..." */
        fetch_finish_error(job, fetch_outcome_of(v.kind), "%s", v.error);
    } else {
        fetch_retry_or_fail(job, &v, v.error); /* "http 503" */
    }
    httpcore_verdict_release(&v);
    /* A body kept only when downloaded; a retry or a hop starts afresh. */
    if (!job->ok) fetch_drop_body(job);
    /* REDIRECT_URL and the headers were read above: the handle can go. */
    fetch_release_easy(f, job);
}

static void fetch_read_done(fetch *f) {
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(f->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        fetch_job *job = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
        if (job) fetch_on_done(f, job, msg->data.result);
    }
}

/* --- the public loop --- */

fetch_job *fetch_add(fetch *f, const char *url, void *userdata) {
    fetch_job *job = xcalloc(1, sizeof *job);
    job->owner = f;
    job->userdata = userdata;
    job->state = FETCH_WAITING;
    httpcore_retry_init(&job->retry, f->opt.max_retries, f->opt.backoff_initial_ms, f->opt.backoff_max_ms);
    job->body.first_cap = FETCH_FIRST_CAP;
    job->body.limit = f->opt.max_bytes;
    job->body.hooks =
        (httpcore_body_hooks){.reserve = fetch_body_reserve, .shrink = fetch_body_shrink, .userdata = job};
    membudget_claim_init(&job->claim, f->budget);
    fetch_list_append(&f->waiting, job);
    if (!fetch_set_url(job, url))
        fetch_finish_error(job, FETCH_OUTCOME_BAD_URL, "bad url: cannot parse it or find its host");
    return job;
}

void fetch_cancel(fetch *f, fetch_job *job) {
    if (!job) return;
    fetch_stop_transfer(f, job);
    log_debug("download %s: %s -> cancelled", job->url, fetch_state_name(job->state));
    fetch_list_remove(fetch_list_of(f, job->state), job);
    fetch_job_free(job);
}

/* Unpause the transfers paused for memory whose memory can now be had, in
 * the order they run (the budget grants its longest waiter first anyway). */
static void fetch_resume(fetch *f) {
    for (fetch_job *job = f->running.head, *next; job; job = next) {
        next = job->next;
        if (!job->paused || !membudget_reserve(&job->claim, job->body.wait_cap)) continue;
        job->paused = false;
        log_debug("download %s: resuming at %zu bytes", job->url, job->body.len);
        /* curl may call the write callback from inside, with the bytes it kept */
        CURLcode rc = curl_easy_pause(job->easy, CURLPAUSE_CONT);
        if (rc != CURLE_OK) {
            log_error("cannot resume the download of %s: %s", job->url, curl_easy_strerror(rc));
            fetch_release_easy(f, job);
            fetch_finish_error(job, FETCH_OUTCOME_NETWORK_ERROR, "network error: cannot resume the transfer: %s",
                               curl_easy_strerror(rc));
        }
    }
}

int fetch_perform(fetch *f, int64_t max_wait_ms, bool may_start) {
    return fetch_perform_watch(f, max_wait_ms, may_start, -1);
}

int fetch_perform_watch(fetch *f, int64_t max_wait_ms, bool may_start, int watch_fd) {
    int64_t wait_ms = max_wait_ms < 0 ? 0 : max_wait_ms;
    fetch_resume(f);
    if (may_start) {
        int64_t next_ns = fetch_start_due(f);
        if (next_ns != INT64_MAX) {
            int64_t next_ms = (next_ns + TIME_NS_PER_MS - 1) / TIME_NS_PER_MS;
            if (next_ms < wait_ms) wait_ms = next_ms;
        }
    }
    if (f->finished.count) wait_ms = 0;
    if (wait_ms > INT32_MAX) wait_ms = INT32_MAX;
    struct curl_waitfd watch = {.fd = watch_fd, .events = CURL_WAIT_POLLIN};
    CURLMcode mc = curl_multi_poll(f->multi, watch_fd >= 0 ? &watch : NULL, watch_fd >= 0 ? 1 : 0, (int)wait_ms, NULL);
    if (mc != CURLM_OK) {
        log_error("cannot wait for downloads: %s", curl_multi_strerror(mc));
        return -1;
    }
    int running = 0;
    mc = curl_multi_perform(f->multi, &running);
    if (mc != CURLM_OK) {
        log_error("cannot run downloads: %s", curl_multi_strerror(mc));
        return -1;
    }
    fetch_read_done(f);
    fetch_resume(f);
    if (may_start) fetch_start_due(f);
    return 0;
}

bool fetch_take(fetch *f, fetch_result *out) {
    fetch_job *job = f->finished.head;
    memset(out, 0, sizeof *out);
    if (!job) return false;
    fetch_list_remove(&f->finished, job);
    out->userdata = job->userdata;
    out->ok = job->ok;
    out->outcome = job->outcome;
    out->seconds = (double)job->transfer_ns / TIME_NS_PER_S;
    out->status = job->status;
    out->attempts = job->attempts;
    out->redirects = job->redirects;
    snprintf(out->error, sizeof out->error, "%s", job->error);
    membudget_claim_init(&out->claim, f->budget);
    if (job->ok) {
        out->body = (unsigned char *)httpcore_body_take(&job->body, &out->len); /* "" when no byte came */
        membudget_claim_move(&out->claim, &job->claim);
    }
    fetch_job_free(job);
    return true;
}
