/* timeutil.h -- clocks and interruptible sleeps.
 *
 * Deadlines and rate limits use the monotonic clock (time_mono_ns), which
 * never jumps; timestamps that people read use the wall clock.  time_sleep_ms
 * returns early when a stop was requested (sig.h), so a process waiting out a
 * backoff still answers SIGTERM promptly.
 */
#ifndef IMGFEED_TIMEUTIL_H
#define IMGFEED_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>

#define TIME_NS_PER_MS 1000000LL
#define TIME_NS_PER_S 1000000000LL

/* Nanoseconds on the monotonic clock. */
int64_t time_mono_ns(void);
/* Milliseconds since the UNIX epoch. */
int64_t time_wall_ms(void);
/* Sleep for ms milliseconds, in slices, returning false as soon as a stop is
 * requested (true when the whole time passed). */
bool time_sleep_ms(int64_t ms);
/* Sleep for ns nanoseconds, uninterruptible by the stop flag. */
void time_sleep_ns(int64_t ns);

#endif
