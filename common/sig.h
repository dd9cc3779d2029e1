/* sig.h -- graceful stop on SIGTERM and SIGINT.
 *
 * sig_install() makes SIGTERM and SIGINT set a flag instead of killing the
 * process, and ignores SIGPIPE (a peer that hangs up is an error return, not
 * a death).  Loops check sig_stop_requested() between units of work: they
 * finish what is in flight, acknowledge it, and return so that main exits 0.
 * A second signal while stopping restores the default action, so a stuck
 * process can still be interrupted twice.
 */
#ifndef IMGFEED_SIG_H
#define IMGFEED_SIG_H

#include <stdbool.h>

void sig_install(void);
bool sig_stop_requested(void);
/* Ask for a stop from inside the process (tests, fatal conditions). */
void sig_request_stop(void);
/* Take a requested stop: true when one was pending, and the flag is cleared
 * in the same atomic step.  A loop that drains in-flight work after a stop
 * takes it, so that the publishes and acks it still owes are not refused as
 * "stopping"; a further signal sets the flag again. */
bool sig_take_stop(void);
/* Forget a requested stop (tests only). */
void sig_reset(void);

#endif
