/* ratelimit.h -- requests per second per host, shared by a whole process.
 *
 * A ratelimit registry holds, for each host, the time of its last grant and
 * a pause ("not before") set from a Retry-After.  Every request of the
 * process to a host takes a grant first, so all the threads and clients that
 * share the registry together keep the host's rate.  The program creates one
 * registry and passes it to its HTTP clients: there is no hidden global.
 *
 * The rate is held without any burst: a grant is given only when the clock
 * has reached both the host's pause and the previous grant plus 1/rps, and
 * the grant time recorded is the clock read under the lock at the moment of
 * granting.  A waiter that wakes late therefore never earns a catch-up burst:
 * two grants to one host are always at least 1/rps apart.
 *
 * Rates are set per host (ratelimit_set_rate) with a default for every other
 * host; a rate of 0 (or less) means unlimited.  Hosts are host names without
 * port, matched case-insensitively and with one trailing dot ignored.
 *
 * Memory: configured hosts are kept; other hosts are tracked only while they
 * matter (granted less than 1/rps ago, or paused) and idle entries are swept
 * as the table grows, so millions of distinct hosts do not pile up.  With an
 * unlimited default, unconfigured hosts take no memory until paused.
 *
 * Every function is thread-safe.  Times are on the monotonic clock
 * (time_mono_ns in timeutil.h), in nanoseconds.
 */
#ifndef IMGFEED_RATELIMIT_H
#define IMGFEED_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

typedef enum ratelimit_status {
    RATELIMIT_OK = 0,
    RATELIMIT_STOPPED = -1,  /* sig_stop_requested() before the grant */
    RATELIMIT_TOO_LONG = -2, /* the wait would pass the caller's maximum */
} ratelimit_status;

/* Called for every grant, with the registry's lock held (so calls come in
 * grant order): it must be quick and must not call into the registry.  For
 * tests and statistics. */
typedef void (*ratelimit_grant_fn)(void *userdata, const char *host, int64_t granted_ns);

/* A registry whose hosts get default_rps unless set otherwise (0:
 * unlimited).  Free with ratelimit_free; ratelimit_free(NULL) does nothing. */
ratelimit *ratelimit_new(double default_rps);
void ratelimit_free(ratelimit *rl);

/* Requests per second for hosts without a rate of their own (0: unlimited). */
void ratelimit_set_default_rate(ratelimit *rl, double rps);
/* Requests per second for one host (0: unlimited).  The host stays
 * configured for the registry's life. */
void ratelimit_set_rate(ratelimit *rl, const char *host, double rps);
void ratelimit_set_observer(ratelimit *rl, ratelimit_grant_fn fn, void *userdata);

/* Wait for a grant to host.  Returns RATELIMIT_OK once granted,
 * RATELIMIT_STOPPED as soon as a stop is requested (checked at least every
 * 50 ms), or RATELIMIT_TOO_LONG at once, without a grant, when the wait
 * would last more than max_wait_ns (negative: no maximum). */
ratelimit_status ratelimit_acquire(ratelimit *rl, const char *host, int64_t max_wait_ns);
/* ratelimit_acquire, telling in *WAITED_NS how long it slept before it
 * returned: 0 when the grant was due at once (a caller's statistics: the
 * crawler's rate-limit waits). */
ratelimit_status ratelimit_acquire_waited(ratelimit *rl, const char *host, int64_t max_wait_ns, int64_t *waited_ns);
/* Take a grant now if one is due: returns 0 when granted, otherwise the
 * nanoseconds to wait before trying again (nothing is taken).  For event
 * loops, such as curl's multi interface. */
int64_t ratelimit_try(ratelimit *rl, const char *host);
/* The nanoseconds until a grant would be due (0: now), taking nothing. */
int64_t ratelimit_peek(ratelimit *rl, const char *host);
/* Hold host back until until_ns (monotonic): no grant before then, for any
 * caller.  A pause only ever extends an earlier one.  Used for Retry-After. */
void ratelimit_pause(ratelimit *rl, const char *host, int64_t until_ns);

/* ratelimit_try and ratelimit_peek with the caller's clock, for tests of the
 * logic and for callers that manage time themselves.  now_ns must not go
 * backwards between calls on one host. */
int64_t ratelimit_try_at(ratelimit *rl, const char *host, int64_t now_ns);
int64_t ratelimit_peek_at(ratelimit *rl, const char *host, int64_t now_ns);
/* The number of hosts the registry tracks now (configured and live). */
size_t ratelimit_host_count(ratelimit *rl);

#endif
