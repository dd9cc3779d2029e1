/* archiver.h -- imgfeed-archiver's loop: messages in, rows committed, acks out.
 *
 * archiver_run consumes E.archiver, gathers deliveries into a batch
 * (batch.h), writes the batch to PostgreSQL in one transaction (pgstore.h)
 * when it holds --batch-size items or --batch-bytes of text or its first
 * message waited --flush-interval, and only after COMMIT acknowledges the
 * messages, with one multiple-ack.  See archiver.c for the failure paths.
 */
#ifndef IMGFEED_ARCHIVER_H
#define IMGFEED_ARCHIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct archiver_settings {
    cfg_common common;
    char *pg;                  /* libpq conninfo or URI */
    long batch_size;           /* items per transaction, at most */
    int64_t batch_bytes;       /* item text per transaction, at most (a larger lone message still goes) */
    int64_t flush_interval_ms; /* longest an item waits for its batch to fill */
    int64_t flush_quiet_ms;    /* a batch is written once no message came for this long (0: never early) */
    long prefetch;             /* unacknowledged messages the broker may send ahead */
    int64_t max_item_bytes;    /* a larger item makes its message go to E.dead */
    int64_t write_timeout_ms;  /* a batch write that takes longer: the connection is taken as dead */
    bool init_db;              /* install the SQL helpers and exit */
} archiver_settings;

/* Archive until SIGTERM/SIGINT; the exit status (0 after a clean stop). */
int archiver_run(const archiver_settings *s);

/* Install the SQL helpers (schema.sql) and exit: 0, or 1 when PostgreSQL
 * cannot be reached or refuses them. */
int archiver_init_db(const archiver_settings *s);

#endif
