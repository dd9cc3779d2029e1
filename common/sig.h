/* sig.h -- graceful stop on SIGTERM and SIGINT, within a bounded drain.
 *
 * sig_install() makes SIGTERM and SIGINT set a flag instead of killing the
 * process, and ignores SIGPIPE (a peer that hangs up is an error return, not
 * a death).  Loops check sig_stop_requested() between units of work: they
 * finish what is in flight, acknowledge it, and return so that main exits 0.
 *
 * Every blocking wait of common/ (reconnect backoff, confirms, HTTP retries,
 * Retry-After, rate-limit grants) ends as soon as sig_stop_requested() is
 * true.  A loop that still owes publishes and acks takes the stop
 * (sig_take_stop), so that those waits work again while it drains; but the
 * drain is bounded: SIG_DRAIN_MS after the stop was taken,
 * sig_stop_requested() is true again for good, every wait gives up, and the
 * process exits within seconds whatever state it is in (a broker that is
 * down, a publish the broker keeps refusing, an hour-long Retry-After).
 * What was not confirmed by then is delivered or crawled again: at least
 * once, nothing lost.  A second signal ends the drain at once, and a third
 * kills the process (the default action is restored).
 */
#ifndef IMGFEED_SIG_H
#define IMGFEED_SIG_H

#include <stdbool.h>
#include <stdint.h>

/* How long a process may drain after it took a stop. */
#define SIG_DRAIN_MS 3000

void sig_install(void);
/* A stop is pending, or the drain of a taken one is over. */
bool sig_stop_requested(void);
/* Ask for a stop from inside the process (tests, fatal conditions). */
void sig_request_stop(void);
/* Take a requested stop: true when one was pending, and the flag is cleared
 * in the same atomic step.  The first take starts the drain (SIG_DRAIN_MS);
 * a further signal sets the flag again. */
bool sig_take_stop(void);
/* Whether a stop was taken and the process is draining (or past it). */
bool sig_draining(void);
/* Milliseconds left of the drain (0 when it is over, -1 when no stop was
 * taken). */
int64_t sig_drain_left_ms(void);
/* Forget a requested stop and the drain (tests only). */
void sig_reset(void);

#endif
