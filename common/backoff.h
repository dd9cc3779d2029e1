/* backoff.h -- exponential backoff with jitter, for reconnects and retries.
 *
 * The n-th delay is drawn uniformly from [d/2, d] where d = initial * 2^n,
 * capped at max: doubling spreads retries out, and the jitter keeps many
 * clients that failed together from retrying together.  backoff_reset()
 * after a success starts again from the initial delay.
 */
#ifndef IMGFEED_BACKOFF_H
#define IMGFEED_BACKOFF_H

#include <stdint.h>

typedef struct backoff {
    int64_t initial_ms;
    int64_t max_ms;
    unsigned attempt;
    uint64_t rng; /* xorshift state, seeded per instance */
} backoff;

void backoff_init(backoff *b, int64_t initial_ms, int64_t max_ms);
/* The delay to wait before the next attempt; counts the attempt. */
int64_t backoff_next_ms(backoff *b);
void backoff_reset(backoff *b);

#endif
