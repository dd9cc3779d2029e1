/* backoff.c -- exponential backoff with "equal jitter". */
#include "backoff.h"

#include <unistd.h>

#include "timeutil.h"

void backoff_init(backoff *b, int64_t initial_ms, int64_t max_ms) {
    b->initial_ms = initial_ms > 0 ? initial_ms : 1;
    b->max_ms = max_ms >= b->initial_ms ? max_ms : b->initial_ms;
    b->attempt = 0;
    b->rng = (uint64_t)time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)b;
    if (!b->rng) b->rng = 0x9e3779b97f4a7c15ULL;
}

static uint64_t backoff_random(backoff *b) {
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return b->rng = x;
}

int64_t backoff_next_ms(backoff *b) {
    int64_t d = b->initial_ms;
    for (unsigned i = 0; i < b->attempt && d < b->max_ms; i++) d *= 2;
    if (d > b->max_ms) d = b->max_ms;
    b->attempt++;
    int64_t half = d / 2;
    return half + (int64_t)(backoff_random(b) % (uint64_t)(d - half + 1));
}

void backoff_reset(backoff *b) { b->attempt = 0; }
