/* consumer.h -- the imgfeed-hasher daemon: E.hasher in, hashed items out to E.
 *
 * consumer_run() consumes the queue E.hasher with a prefetch, downloads
 * every picture or video URL of each item's `_urls` (common/fetch.c, many
 * at once), hashes them on worker threads (workpool.c, with the hash
 * library's ih_describe, imghash/describe.c), adds `_img` to
 * every item, publishes each message's items to the exchange E with the
 * same routing key and confirms (in several messages when they would be
 * longer than --max-message, msgout.c), and only then acknowledges the
 * input.  Files and decoding in flight stay within --max-memory
 * (common/membudget.c).
 * consumer.c explains the loop; design.md is the contract for the messages.
 *
 * The settings struct is filled by main.c's settings table (config.h); the
 * consumer only reads it.
 */
#ifndef IMGFEED_CONSUMER_H
#define IMGFEED_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct consumer_settings {
    cfg_common common;
    long prefetch;               /* deliveries in flight */
    long threads;                /* hashing threads; 0: one per online core */
    char *save_dir;              /* keep files here by sha1; NULL: keep none */
    bool allow_private;          /* no private-address guard */
    char *allow_net;             /* "CIDR,CIDR" permitted despite the guard; NULL: none */
    int64_t max_bytes;           /* largest file */
    long max_pixels;             /* largest image decoded */
    int64_t download_timeout_ms; /* one attempt */
    int64_t connect_timeout_ms;
    long download_retries; /* after timeouts, connection failures, 5xx */
    long max_downloads;    /* transfers at once */
    int64_t max_memory;    /* bytes of files and decoding in flight (membudget.h); 0: no bound */
    double rps_per_host;   /* requests per second per host; 0: unlimited */
    char *user_agent;
} consumer_settings;

/* Run until SIGTERM/SIGINT (sig.h): then stop taking messages, finish and
 * acknowledge the ones in flight, and return 0.  A second signal while
 * finishing, or the end of the drain time (SIG_DRAIN_MS), returns at once,
 * leaving the unfinished messages to be delivered again.  Returns 1 (logged) when the consumer cannot start: a bad
 * broker URL, an unusable --save-dir, curl or threads failing. */
int consumer_run(const consumer_settings *s);

#endif
