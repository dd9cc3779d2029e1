/* ratelimit.c -- per-host grants spaced 1/rps apart, under one mutex.
 *
 * Hosts live in a chained hash table keyed by the lower-cased host name.  An
 * entry holds the host's own interval (when configured), the time of its
 * last grant and the end of its pause.  A grant is due at
 * max(last grant + interval, pause end); granting records the clock read
 * under the lock, never the scheduled time, so late wake-ups cannot bunch
 * grants together.
 *
 * Unconfigured entries that are idle (their interval since the last grant
 * has passed and they are not paused) hold no information a fresh entry
 * would not: when the table has doubled since the last sweep, they are
 * dropped and the bucket array is resized to fit what is left.  The work is
 * amortised over the insertions, and the table stays proportional to the
 * hosts that are live within one interval.
 */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define RATELIMIT_SLICE_NS (50 * TIME_NS_PER_MS)
#define RATELIMIT_SWEEP_MIN 64
#define RATELIMIT_BUCKETS_MIN 16

typedef struct ratelimit_host {
    struct ratelimit_host *next;
    uint64_t hash;
    bool configured;     /* has its own rate; never swept */
    bool granted;        /* last_grant_ns is valid */
    int64_t interval_ns; /* configured hosts: own interval (0: unlimited) */
    int64_t last_grant_ns;
    int64_t paused_until_ns;
    size_t len;
    char name[]; /* lower case, no trailing dot, NUL-terminated */
} ratelimit_host;

struct ratelimit {
    pthread_mutex_t lock;
    int64_t default_interval_ns; /* 0: unlimited */
    ratelimit_host **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t sweep_at; /* sweep idle entries when count reaches this */
    int64_t clock;   /* the latest time a grant was checked at: sweeps outside checks use it */
    ratelimit_grant_fn observer;
    void *observer_data;
};

/* --- host keys --- */

static char ratelimit_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* The length of host's key: without one trailing dot. */
static size_t ratelimit_key_len(const char *host) {
    size_t len = strlen(host);
    if (len > 1 && host[len - 1] == '.') len--;
    return len;
}

static uint64_t ratelimit_hash(const char *host, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)ratelimit_lower(host[i]);
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool ratelimit_key_equal(const ratelimit_host *e, const char *host, size_t len) {
    if (e->len != len) return false;
    for (size_t i = 0; i < len; i++) {
        if (e->name[i] != ratelimit_lower(host[i])) return false;
    }
    return true;
}

/* --- rates --- */

static int64_t ratelimit_interval(double rps) {
    if (!(rps > 0) || isinf(rps)) return 0;
    double ns = ceil((double)TIME_NS_PER_S / rps);
    if (ns > (double)(INT64_MAX / 4)) return INT64_MAX / 4; /* room to add to a clock reading */
    return ns < 1 ? 1 : (int64_t)ns;
}

static int64_t ratelimit_host_interval(const ratelimit *rl, const ratelimit_host *e) {
    return e->configured ? e->interval_ns : rl->default_interval_ns;
}

/* When the next grant to e is due. */
static int64_t ratelimit_due(const ratelimit *rl, const ratelimit_host *e) {
    int64_t due = e->paused_until_ns;
    int64_t interval = ratelimit_host_interval(rl, e);
    if (e->granted && interval > 0 && e->last_grant_ns + interval > due) due = e->last_grant_ns + interval;
    return due;
}

static bool ratelimit_idle(const ratelimit *rl, const ratelimit_host *e, int64_t now) {
    return !e->configured && ratelimit_due(rl, e) <= now;
}

/* --- the table --- */

static void ratelimit_rehash(ratelimit *rl, size_t nbuckets) {
    ratelimit_host **buckets = xcalloc(nbuckets, sizeof *buckets);
    for (size_t i = 0; i < rl->nbuckets; i++) {
        ratelimit_host *e = rl->buckets[i];
        while (e) {
            ratelimit_host *next = e->next;
            size_t b = (size_t)(e->hash & (nbuckets - 1));
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(rl->buckets);
    rl->buckets = buckets;
    rl->nbuckets = nbuckets;
}

static size_t ratelimit_buckets_for(size_t count) {
    size_t n = RATELIMIT_BUCKETS_MIN;
    while (n < count)
        n *= 2;
    return n;
}

/* Drop idle unconfigured entries and fit the bucket array to the rest. */
static void ratelimit_sweep(ratelimit *rl, int64_t now) {
    for (size_t i = 0; i < rl->nbuckets; i++) {
        ratelimit_host **link = &rl->buckets[i];
        while (*link) {
            ratelimit_host *e = *link;
            if (ratelimit_idle(rl, e, now)) {
                *link = e->next;
                free(e);
                rl->count--;
            } else {
                link = &e->next;
            }
        }
    }
    size_t fit = ratelimit_buckets_for(rl->count);
    if (fit != rl->nbuckets) ratelimit_rehash(rl, fit);
    rl->sweep_at = rl->count * 2 > RATELIMIT_SWEEP_MIN ? rl->count * 2 : RATELIMIT_SWEEP_MIN;
}

static ratelimit_host *ratelimit_find(const ratelimit *rl, const char *host, size_t len, uint64_t hash) {
    for (ratelimit_host *e = rl->buckets[hash & (rl->nbuckets - 1)]; e; e = e->next) {
        if (e->hash == hash && ratelimit_key_equal(e, host, len)) return e;
    }
    return NULL;
}

static ratelimit_host *ratelimit_insert(ratelimit *rl, const char *host, size_t len, uint64_t hash, int64_t now) {
    if (rl->count + 1 >= rl->sweep_at) ratelimit_sweep(rl, now);
    if (rl->count + 1 > rl->nbuckets) ratelimit_rehash(rl, rl->nbuckets * 2);
    ratelimit_host *e = xcalloc(1, sizeof *e + len + 1);
    e->hash = hash;
    e->len = len;
    for (size_t i = 0; i < len; i++)
        e->name[i] = ratelimit_lower(host[i]);
    size_t b = (size_t)(hash & (rl->nbuckets - 1));
    e->next = rl->buckets[b];
    rl->buckets[b] = e;
    rl->count++;
    return e;
}

/* The entry for host, made if it has none; called with the lock held. */
static ratelimit_host *ratelimit_get(ratelimit *rl, const char *host) {
    size_t len = ratelimit_key_len(host);
    uint64_t hash = ratelimit_hash(host, len);
    ratelimit_host *e = ratelimit_find(rl, host, len, hash);
    return e ? e : ratelimit_insert(rl, host, len, hash, rl->clock);
}

/* --- public --- */

ratelimit *ratelimit_new(double default_rps) {
    ratelimit *rl = xcalloc(1, sizeof *rl);
    if (pthread_mutex_init(&rl->lock, NULL) != 0) {
        free(rl);
        return NULL;
    }
    rl->default_interval_ns = ratelimit_interval(default_rps);
    rl->nbuckets = RATELIMIT_BUCKETS_MIN;
    rl->buckets = xcalloc(rl->nbuckets, sizeof *rl->buckets);
    rl->sweep_at = RATELIMIT_SWEEP_MIN;
    return rl;
}

void ratelimit_free(ratelimit *rl) {
    if (!rl) return;
    for (size_t i = 0; i < rl->nbuckets; i++) {
        ratelimit_host *e = rl->buckets[i];
        while (e) {
            ratelimit_host *next = e->next;
            free(e);
            e = next;
        }
    }
    free(rl->buckets);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

void ratelimit_set_default_rate(ratelimit *rl, double rps) {
    pthread_mutex_lock(&rl->lock);
    rl->default_interval_ns = ratelimit_interval(rps);
    pthread_mutex_unlock(&rl->lock);
}

void ratelimit_set_rate(ratelimit *rl, const char *host, double rps) {
    pthread_mutex_lock(&rl->lock);
    ratelimit_host *e = ratelimit_get(rl, host);
    e->configured = true;
    e->interval_ns = ratelimit_interval(rps);
    pthread_mutex_unlock(&rl->lock);
}

void ratelimit_set_observer(ratelimit *rl, ratelimit_grant_fn fn, void *userdata) {
    pthread_mutex_lock(&rl->lock);
    rl->observer = fn;
    rl->observer_data = userdata;
    pthread_mutex_unlock(&rl->lock);
}

/* The wait for host at now, granting when it is 0 and grant is set.  A
 * negative now means "read the clock here", under the lock. */
static int64_t ratelimit_check(ratelimit *rl, const char *host, int64_t now, bool grant) {
    size_t len = ratelimit_key_len(host);
    uint64_t hash = ratelimit_hash(host, len);
    pthread_mutex_lock(&rl->lock);
    if (now < 0) now = time_mono_ns();
    if (now > rl->clock) rl->clock = now;
    int64_t wait = 0;
    ratelimit_host *e = ratelimit_find(rl, host, len, hash);
    if (e) {
        int64_t due = ratelimit_due(rl, e);
        if (due > now) wait = due - now;
    }
    if (wait == 0 && grant) {
        /* An unknown host under an unlimited default needs no entry. */
        if (!e && rl->default_interval_ns > 0) e = ratelimit_insert(rl, host, len, hash, now);
        if (e) {
            e->granted = true;
            e->last_grant_ns = now;
        }
        if (rl->observer) rl->observer(rl->observer_data, host, now);
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

int64_t ratelimit_try_at(ratelimit *rl, const char *host, int64_t now_ns) {
    return ratelimit_check(rl, host, now_ns < 0 ? 0 : now_ns, true);
}

int64_t ratelimit_peek_at(ratelimit *rl, const char *host, int64_t now_ns) {
    return ratelimit_check(rl, host, now_ns < 0 ? 0 : now_ns, false);
}

int64_t ratelimit_try(ratelimit *rl, const char *host) { return ratelimit_check(rl, host, -1, true); }

int64_t ratelimit_peek(ratelimit *rl, const char *host) { return ratelimit_check(rl, host, -1, false); }

ratelimit_status ratelimit_acquire_waited(ratelimit *rl, const char *host, int64_t max_wait_ns, int64_t *waited_ns) {
    int64_t start = time_mono_ns();
    bool slept = false;
    ratelimit_status rs;
    for (;;) {
        if (sig_stop_requested()) {
            rs = RATELIMIT_STOPPED;
            break;
        }
        int64_t wait = ratelimit_try(rl, host);
        if (wait == 0) {
            rs = RATELIMIT_OK;
            break;
        }
        if (max_wait_ns >= 0 && wait > max_wait_ns - (time_mono_ns() - start)) {
            rs = RATELIMIT_TOO_LONG;
            break;
        }
        time_sleep_ns(wait < RATELIMIT_SLICE_NS ? wait : RATELIMIT_SLICE_NS);
        slept = true;
    }
    if (waited_ns) *waited_ns = slept ? time_mono_ns() - start : 0;
    return rs;
}

ratelimit_status ratelimit_acquire(ratelimit *rl, const char *host, int64_t max_wait_ns) {
    return ratelimit_acquire_waited(rl, host, max_wait_ns, NULL);
}

void ratelimit_pause(ratelimit *rl, const char *host, int64_t until_ns) {
    pthread_mutex_lock(&rl->lock);
    ratelimit_host *e = ratelimit_get(rl, host);
    if (until_ns > e->paused_until_ns) e->paused_until_ns = until_ns;
    pthread_mutex_unlock(&rl->lock);
}

size_t ratelimit_host_count(ratelimit *rl) {
    pthread_mutex_lock(&rl->lock);
    size_t n = rl->count;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
