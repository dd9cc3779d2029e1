/* sig.c -- the stop flag set by SIGTERM and SIGINT, and the drain deadline.
 *
 * The flag is set by the handler; the deadline (monotonic ns, 0 for none) is
 * set by the first sig_take_stop.  Both are atomics, read by every thread. */
#include "sig.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "timeutil.h"

static atomic_int sig_stop;
static atomic_int_fast64_t sig_deadline_ns;

static void sig_on_stop(int signo) {
    if (atomic_exchange(&sig_stop, 1)) signal(signo, SIG_DFL); /* second one: give up */
}

void sig_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sig_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool sig_stop_requested(void) {
    if (atomic_load(&sig_stop)) return true;
    int64_t deadline = atomic_load(&sig_deadline_ns);
    return deadline && time_mono_ns() >= deadline;
}

void sig_request_stop(void) { atomic_store(&sig_stop, 1); }

void sig_reset(void) {
    atomic_store(&sig_stop, 0);
    atomic_store(&sig_deadline_ns, 0);
}

bool sig_take_stop(void) {
    if (!atomic_exchange(&sig_stop, 0)) return false;
    int_fast64_t none = 0;
    atomic_compare_exchange_strong(&sig_deadline_ns, &none, time_mono_ns() + SIG_DRAIN_MS * TIME_NS_PER_MS);
    return true;
}

bool sig_draining(void) { return atomic_load(&sig_deadline_ns) != 0; }

int64_t sig_drain_left_ms(void) {
    int64_t deadline = atomic_load(&sig_deadline_ns);
    if (!deadline) return -1;
    int64_t left = deadline - time_mono_ns();
    return left > 0 ? left / TIME_NS_PER_MS : 0;
}
