/* batch.h -- the items an archiver holds until its next COMMIT.
 *
 * Deliveries join the batch one by one (batch_add).  Each item is checked,
 * mended for jsonb (itemtext.h) and copied into the arena of its table; the
 * delivery itself is kept too, so that after the COMMIT its tag can be acked
 * and, should PostgreSQL refuse one message, that message can go to E.dead
 * as it came.
 *
 * Within a table an _id may arrive more than once in one batch (a replay, a
 * thread read twice).  One INSERT … ON CONFLICT cannot touch a row twice, so
 * the batch keeps, per _id, the row that the archive would keep: the newer
 * by `_crawled_at`, the later on a tie, and never one without `_crawled_at`
 * over one with it (the same rule as the SQL's, see pgstore.c).  The others
 * stay in the arena, marked superseded, for the one-message-at-a-time
 * fallback.
 *
 * Ownership: a batch owns the deliveries it took and frees them in
 * batch_clear and batch_release.
 */
#ifndef IMGFEED_BATCH_H
#define IMGFEED_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq.h"
#include "sbuf.h"
#include "tablename.h"

#define BATCH_LIVE UINT32_MAX /* batch_row.superseded_by of a row that is written */

typedef struct batch_row {
    uint32_t msg;           /* its message, an index into batch.msgs */
    uint32_t superseded_by; /* BATCH_LIVE, or the message whose row of the same _id replaces it */
    size_t id_off;          /* its _id, mended, NUL-terminated, in the table's arena */
    size_t text_off;        /* its jsonb-safe text in the arena */
    size_t text_len;
    double crawled_at;      /* `_crawled_at`, NAN when it has no number there */
} batch_row;

typedef struct batch_table {
    char name[TABLENAME_MAX + 1];
    char *key_prefix; /* the routing key without its board, for the table registry */
    batch_row *rows;
    size_t nrows, rows_cap;
    sbuf arena;      /* the mended texts and _ids, which the rows find by offset */
    uint32_t *slots; /* _id -> row index + 1, open addressing; nslots is a power of two */
    size_t nslots;
} batch_table;

typedef struct batch_msg {
    mq_delivery d;
    size_t table; /* index into batch.tables */
    size_t nitems;
    size_t repaired; /* of its items, those that gained "_repaired" */
} batch_msg;

typedef struct batch {
    const char *exchange;
    size_t max_item_bytes;
    batch_msg *msgs;
    size_t nmsgs, msgs_cap;
    batch_table *tables;
    size_t ntables, tables_cap;
    size_t items;       /* rows taken, superseded ones included */
    size_t bytes;       /* their text */
    size_t repaired;    /* items that gained "_repaired" */
    int64_t started_ns; /* when the first message joined (time_mono_ns) */
} batch;

/* An empty batch for EXCHANGE (the settings' string, which must outlive it). */
void batch_init(batch *b, const char *exchange, size_t max_item_bytes);
/* Free every delivery and the memory. */
void batch_release(batch *b);
/* Free every delivery; the batch is empty again. */
void batch_clear(batch *b);

/* Take delivery D: true and the batch owns it (*d is emptied), or false with
 * the reason it can never be stored in WHY ("not JSON: …", "item 2 is
 * 20971540 bytes, over the limit of 16777216") and *d is still the
 * caller's. */
bool batch_add(batch *b, mq_delivery *d, char *why, size_t whylen);

/* The rows of table T to write, as one jsonb[] parameter in PostgreSQL's
 * binary array format, sorted by _id (so that two archivers lock rows in the
 * same order and never deadlock): every live row when MSG < 0, else the
 * rows of message MSG alone.  *OUT is allocated (the caller frees it);
 * returns the number of rows. */
size_t batch_table_param(const batch *b, size_t t, long msg, char **out, size_t *outlen);

#endif
