/* sig.c -- the stop flag set by SIGTERM and SIGINT. */
#include "sig.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int sig_stop;

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

bool sig_stop_requested(void) { return atomic_load(&sig_stop) != 0; }
void sig_request_stop(void) { atomic_store(&sig_stop, 1); }
void sig_reset(void) { atomic_store(&sig_stop, 0); }

bool sig_take_stop(void) { return atomic_exchange(&sig_stop, 0) != 0; }
