/* pgstore.h -- the archive in PostgreSQL: connecting, the schema, batch writes.
 *
 * One pgstore is one libpq connection that the archiver's loop drives.  It
 * never sleeps or retries by itself: every call tries once and says whether
 * the caller should try again later (PGSTORE_RETRY: the server is down or
 * restarting, a deadlock, a full disk: nothing was written) or whether the
 * rows themselves were refused (PGSTORE_REFUSED: PostgreSQL rejects the
 * data, e.g. an index entry too large, so retrying the same rows cannot
 * help).  The caller owns the backoff, which lets it keep the broker
 * connection alive while it waits.
 *
 * While a statement runs, pgstore waits on the socket in slices of up to
 * 100 ms and calls the idle callback between them: the archiver takes and
 * prepares the next batch there, so that it works while PostgreSQL writes,
 * and keeps its AMQP heartbeats going.  A batch write that takes longer than write_timeout_ms
 * is abandoned and the connection dropped, which catches a server that hangs
 * without closing the socket.
 *
 * On each new connection pgstore installs the schema (schema.sql, embedded
 * at build time) before the first write, and it creates each archive table
 * the first time this connection writes to it (imgfeed_ensure_table).  An
 * error that says a table or function is missing (someone dropped it) makes
 * it forget what it created and install everything again on the retry.
 *
 * Ownership: pgstore_new returns an object freed with pgstore_free.  Strings
 * in pgstore_options must outlive it.
 */
#ifndef IMGFEED_PGSTORE_H
#define IMGFEED_PGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pgstore_status {
    PGSTORE_OK = 0,
    PGSTORE_RETRY = -1,   /* nothing written; try again after a backoff */
    PGSTORE_REFUSED = -2, /* nothing written; PostgreSQL refuses these rows */
} pgstore_status;

typedef struct pgstore_options {
    const char *conninfo;      /* libpq conninfo string or postgresql:// URI */
    int64_t write_timeout_ms;  /* longest one batch write may take (0: no limit) */
    bool (*idle)(void *arg);   /* called while waiting for the server: at once again when it returns true
                                  (it did work), else after up to 100 ms; may be NULL */
    void *idle_arg;
} pgstore_options;

typedef struct pgstore pgstore;

/* The rows of one archive table, as batch_table_param makes them. */
typedef struct pgstore_table {
    const char *name;       /* sanitized table name (tablename.h) */
    const char *exchange;   /* for the table registry */
    const char *key_prefix; /* routing key without its board, for the registry */
    const char *param;      /* jsonb[] in binary array format */
    size_t param_len;
    size_t nrows;
} pgstore_table;

typedef struct pgstore_stats {
    uint64_t connects;
    uint64_t commits;
    uint64_t rows_written;   /* inserted or updated */
    uint64_t rows_inserted;  /* of those, new rows */
    uint64_t rows_unchanged; /* already there, or older than the row there */
    uint64_t tables_created; /* imgfeed_ensure_table calls */
} pgstore_stats;

/* What one committed pgstore_write did. */
typedef struct pgstore_result {
    uint64_t rows;     /* rows sent */
    uint64_t written;  /* rows inserted or updated */
    uint64_t inserted; /* of those, new rows (the rest replaced a row with a newer version) */
    int64_t commit_ns; /* the statement, from sending it to its COMMIT's answer */
} pgstore_result;

/* A store for OPTS, not yet connected. */
pgstore *pgstore_new(const pgstore_options *opts);
void pgstore_free(pgstore *pg);

/* Connect unless connected, and install the schema unless this connection
 * did.  PGSTORE_OK or PGSTORE_RETRY (the reason is logged). */
int pgstore_ready(pgstore *pg);

/* Write every table's rows in one transaction: INSERT … ON CONFLICT, where a
 * replayed row changes nothing and a newer one replaces the row (design.md).
 * PGSTORE_OK after COMMIT, with what it did in *RES (may be NULL); else
 * nothing was written (*RES is zero), and for PGSTORE_REFUSED the reason
 * is in WHY.
 * A connection made after one was lost counts in
 * imgfeed_database_reconnects_total (pgconn.h). */
int pgstore_write(pgstore *pg, const pgstore_table *tables, size_t n, pgstore_result *res, char *why, size_t whylen);

/* Whether the connection is up (as far as libpq knows). */
bool pgstore_connected(const pgstore *pg);
void pgstore_get_stats(const pgstore *pg, pgstore_stats *out);

/* The schema SQL (schema.sql), NUL-terminated. */
extern const char pgstore_schema_sql[];

#endif
