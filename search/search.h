/* search.h -- imgfeed-search's service: settings and the loop.
 *
 *   STARTING ──listening, queue declared──▶ LOADING ──archive loaded──▶ SERVING
 *   LOADING ──the archive cannot be read──▶ waits (backoff), LOADING again
 *   any state ──SIGTERM──▶ STOPPING: requests finished, exit 0
 *
 * The queue is declared before the archive is read, so that every item
 * archived after the load began is also in the queue: none falls between
 * the two, and the catalog counts the ones both bring once (catalog.h).
 * While SERVING, the main thread takes the queue's messages into the
 * catalog and acknowledges each once its items are in; the HTTP threads
 * (web.h) answer from the catalog meanwhile, also while the broker is away.
 */
#ifndef IMGFEED_SEARCH_SEARCH_H
#define IMGFEED_SEARCH_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct search_settings {
    cfg_common common;
    char *pg;
    char *listen;
    char *queue;
    char *topics;
    long prefetch;
    long max_connections;
    int64_t max_memory;
    int64_t max_bytes;
    long max_pixels;
    bool allow_private;
    char *allow_net;
    int64_t download_timeout_ms;
    char *user_agent;
} search_settings;

typedef enum search_state {
    SEARCH_STARTING,
    SEARCH_LOADING,
    SEARCH_SERVING,
    SEARCH_STOPPING,
} search_state;

const char *search_state_name(search_state s);

/* Runs the service until a stop; the process's exit status. */
int search_run(const search_settings *s);

#endif
