/* timeutil.c -- clocks and sleeps that notice a requested stop. */
#include "timeutil.h"

#include <errno.h>
#include <time.h>

#include "sig.h"

#define TIME_SLEEP_SLICE_MS 50

int64_t time_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * TIME_NS_PER_S + ts.tv_nsec;
}

int64_t time_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / TIME_NS_PER_MS;
}

void time_sleep_ns(int64_t ns) {
    if (ns <= 0) return;
    struct timespec ts = {.tv_sec = ns / TIME_NS_PER_S, .tv_nsec = ns % TIME_NS_PER_S};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

bool time_sleep_ms(int64_t ms) {
    int64_t deadline = time_mono_ns() + ms * TIME_NS_PER_MS;
    for (;;) {
        if (sig_stop_requested()) return false;
        int64_t left = deadline - time_mono_ns();
        if (left <= 0) return true;
        int64_t slice = TIME_SLEEP_SLICE_MS * TIME_NS_PER_MS;
        time_sleep_ns(left < slice ? left : slice);
    }
}
