/* live.h -- imgfeed-live: the images as they come in, to browsers.
 *
 * live_run declares the process's own queue (non-durable, auto-delete,
 * x-max-length with drop-head: design.md, "Consumers beyond the archive")
 * bound to E with --topics, so it never takes a message meant for the
 * archiver and never slows the pipeline; turns each item with a hashed
 * picture into an event (event.h) and hands it to the hub (hub.h), which
 * fans it out to the viewers connected over HTTP (web.h).  One process, one
 * broker connection, however many viewers.
 */
#ifndef IMGFEED_LIVE_H
#define IMGFEED_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct live_settings {
    cfg_common common;
    char *listen;          /* HOST:PORT the HTTP server listens on */
    char *topics;          /* binding keys of the queue, comma-separated */
    char *queue;           /* the queue's name; NULL: E.live.<host>.<pid> */
    long max_viewers;      /* viewers connected at once, at most */
    long viewer_buffer;    /* events waiting for one viewer, at most */
    long replay;           /* events kept for reconnects and backlogs */
    long queue_length;     /* x-max-length of the queue */
    int64_t heartbeat_ms;  /* a ping to every idle viewer this often */
    int64_t viewer_timeout_ms; /* a viewer that takes nothing for this long is closed */
    char *save_dir;        /* the hasher's --save-dir, served under /files/; NULL: none */
    char *nsfw_topics;     /* binding keys of boards not safe for work, comma-separated */
} live_settings;

/* Serve until SIGTERM/SIGINT; the exit status (0 after a clean stop). */
int live_run(const live_settings *s);

#endif
