/* pgstore.c -- the archive in PostgreSQL; see pgstore.h.
 *
 * How a batch is written (pgstore_write):
 *
 *   SELECT imgfeed_ensure_table($1, $2, $3)       -- once per table and connection
 *   WITH w0 AS (INSERT INTO "t" AS t (id, data)   -- a WITH clause per table
 *       SELECT d->>'_id', d FROM unnest($1::jsonb[]) AS u(d)
 *       ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, archived_on = now()
 *       WHERE t.data IS DISTINCT FROM EXCLUDED.data
 *         AND (t.data->'_crawled_at' IS NULL
 *              OR EXCLUDED.data->'_crawled_at' >= t.data->'_crawled_at')
 *       RETURNING t.xmax = 0 AS new), w1 AS (...)
 *   SELECT count(*), count(*) FILTER (WHERE new)  -- rows written, of them new
 *     FROM (SELECT new FROM w0 UNION ALL SELECT new FROM w1 ...) AS w
 *
 * One statement is one transaction and one round trip, whatever the number
 * of tables.  RETURNING gives a row per row written (inserted or updated),
 * none for a row left as it was; `xmax = 0` tells an insert from an update:
 * the new version of a row that ON CONFLICT updated carries the xid of the
 * lock the update took in xmax, a freshly inserted row none.  So the
 * archiver knows how many rows the archive gained (imgfeed_archiver_rows_*
 * metrics).
 * The rows travel as one binary jsonb[] parameter per table: one round trip,
 * no quoting, no temporary table, and PostgreSQL parses each item once.
 * The WHERE clause is what makes writes idempotent: a replayed item finds
 * its row equal and changes nothing (no new row version, no WAL); a changed
 * item replaces its row unless the row holds a newer crawl.  Rows come
 * sorted by id and tables by name, so concurrent archivers take row locks
 * in the same order and cannot deadlock.
 *
 * Errors are sorted by SQLSTATE (pgstore_classify): class 22 (data
 * exception), 23 (integrity), 54 (program limit, e.g. an index row too big)
 * and 21000 mean the rows are refused; everything else, connection loss
 * included, is worth a retry.
 */
#include "pgstore.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgconn.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define PGSTORE_POLL_MS 100
#define PGSTORE_JSONB_ARRAY_OID 3807
#define PGSTORE_SCHEMA_LOCK "SELECT pg_advisory_xact_lock(hashtext('imgfeed_schema'))"

struct pgstore {
    pgstore_options opts;
    PGconn *conn;
    bool schema_ready;
    char **tables; /* created on this connection */
    size_t ntables, tables_cap;
    pgstore_stats stats;
};

pgstore *pgstore_new(const pgstore_options *opts) {
    pgstore *pg = xcalloc(1, sizeof *pg);
    pg->opts = *opts;
    return pg;
}

static void pgstore_forget_tables(pgstore *pg) {
    for (size_t i = 0; i < pg->ntables; i++)
        free(pg->tables[i]);
    pg->ntables = 0;
    pg->schema_ready = false;
}

static void pgstore_disconnect(pgstore *pg) {
    if (pg->conn) PQfinish(pg->conn);
    pg->conn = NULL;
    pgstore_forget_tables(pg);
}

void pgstore_free(pgstore *pg) {
    if (!pg) return;
    pgstore_disconnect(pg);
    free(pg->tables);
    free(pg);
}

bool pgstore_connected(const pgstore *pg) { return pg->conn && PQstatus(pg->conn) == CONNECTION_OK; }

void pgstore_get_stats(const pgstore *pg, pgstore_stats *out) { *out = pg->stats; }


/* --- connecting --- */

static int pgstore_connect(pgstore *pg) {
    char err[512];
    pg->conn = pgconn_open(pg->opts.conninfo, "imgfeed-archiver", err, sizeof err);
    if (!pg->conn) {
        log_warn("cannot connect to PostgreSQL: %s", err);
        pgstore_disconnect(pg);
        return PGSTORE_RETRY;
    }
    if (pg->stats.connects++ > 0) pgconn_count_reconnect(); /* every connection but the first replaces a lost one */
    if (PQsetnonblocking(pg->conn, 1) != 0) {
        log_warn("cannot make the PostgreSQL connection nonblocking: %s", PQerrorMessage(pg->conn));
        pgstore_disconnect(pg);
        return PGSTORE_RETRY;
    }
    const char *enc = PQparameterStatus(pg->conn, "server_encoding");
    if (enc && strcmp(enc, "UTF8") != 0)
        log_warn("database %s has encoding %s, not UTF8: jsonb refuses \\u escapes of non-ASCII characters there",
                 PQdb(pg->conn), enc);
    log_info("connected to PostgreSQL %s:%s, database %s", PQhost(pg->conn), PQport(pg->conn), PQdb(pg->conn));
    return PGSTORE_OK;
}

/* --- statements --- */

/* Send SQL (with NPARAMS binary jsonb[] or text parameters) and wait for
 * its results, calling the idle callback between looks at the socket.  Returns the
 * first error result, else the last result (the caller PQclears it), or NULL
 * when the connection broke or the wait exceeded TIMEOUT_MS (then the
 * connection is dropped and *ERR says why). */
static PGresult *pgstore_exec(pgstore *pg, const char *sql, int nparams, const Oid *types,
                              const char *const *values, const int *lengths, const int *formats,
                              int64_t timeout_ms, char *err, size_t errlen) {
    int sent = nparams || types ? PQsendQueryParams(pg->conn, sql, nparams, types, values, lengths, formats, 0)
                                : PQsendQuery(pg->conn, sql);
    if (!sent) goto broken;
    /* Nonblocking: send the statement (a batch can be tens of MB) and read
     * the answer in the same loop, so that a server that stops reading
     * cannot block us past the deadline. */
    int64_t deadline = timeout_ms > 0 ? time_mono_ns() + timeout_ms * TIME_NS_PER_MS : 0;
    bool busy = true; /* the idle callback has work: look at the socket without waiting (so it runs at once) */
    for (;;) {
        int unsent = PQflush(pg->conn); /* 0: all sent, 1: more to send, -1: failed */
        if (unsent < 0) goto broken;
        if (!unsent && !PQisBusy(pg->conn)) break;
        struct pollfd pfd = {.fd = PQsocket(pg->conn), .events = (short)(POLLIN | (unsent ? POLLOUT : 0))};
        if (pfd.fd < 0) goto broken;
        int rc = poll(&pfd, 1, busy ? 0 : PGSTORE_POLL_MS);
        if (rc < 0 && errno != EINTR) goto broken;
        if (rc > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(pg->conn)) goto broken;
        if (unsent && rc > 0 && (pfd.revents & POLLOUT)) continue; /* the server waits for the rest: send first */
        busy = pg->opts.idle && pg->opts.idle(pg->opts.idle_arg);
        if (sig_draining() && sig_stop_requested()) { /* the stop's drain time is over (sig.h) */
            snprintf(err, errlen, "given up: the time to drain after the stop request is over");
            pgstore_disconnect(pg);
            return NULL;
        }
        if (deadline && time_mono_ns() > deadline) {
            snprintf(err, errlen, "no answer within %lld ms", (long long)timeout_ms);
            pgstore_disconnect(pg);
            return NULL;
        }
    }
    PGresult *res, *keep = NULL;
    while ((res = PQgetResult(pg->conn))) {
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(res); /* keep the first error */
        } else {
            PQclear(keep);
            keep = res;
        }
    }
    if (!keep || PQstatus(pg->conn) != CONNECTION_OK) {
        if (keep) {
            pgconn_error_text(PQresultErrorMessage(keep), err, errlen);
            PQclear(keep);
        } else {
            pgconn_error_text(PQerrorMessage(pg->conn), err, errlen);
        }
        pgstore_disconnect(pg);
        return NULL;
    }
    return keep;
broken:
    pgconn_error_text(PQerrorMessage(pg->conn), err, errlen);
    pgstore_disconnect(pg);
    return NULL;
}

/* What an error result means for the caller; *ERR gets its message. */
static int pgstore_classify(pgstore *pg, const PGresult *res, char *err, size_t errlen) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char msg[768];
    pgconn_error_text(PQresultErrorMessage(res), msg, sizeof msg);
    snprintf(err, errlen, "%s%s%s", msg, state ? " (SQLSTATE " : "", state ? state : "");
    if (state) strncat(err, ")", errlen - strlen(err) - 1);
    if (!state) return PGSTORE_RETRY;
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42883") == 0 || strcmp(state, "3F000") == 0) {
        pgstore_forget_tables(pg); /* dropped behind our back: create again */
        return PGSTORE_RETRY;
    }
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 || strncmp(state, "54", 2) == 0 ||
        strcmp(state, "21000") == 0)
        return PGSTORE_REFUSED;
    return PGSTORE_RETRY;
}

/* Run SQL that returns no rows we need; OK, RETRY or REFUSED. */
static int pgstore_run(pgstore *pg, const char *sql, int nparams, const char *const *values, int64_t timeout_ms,
                       char *err, size_t errlen) {
    PGresult *res = pgstore_exec(pg, sql, nparams, NULL, values, NULL, NULL, timeout_ms, err, errlen);
    if (!res) return PGSTORE_RETRY;
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? PGSTORE_OK : pgstore_classify(pg, res, err, errlen);
    PQclear(res);
    return rc;
}

static void pgstore_rollback(pgstore *pg) {
    char err[256];
    if (pgstore_connected(pg) && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        pgstore_run(pg, "ROLLBACK", 0, NULL, pg->opts.write_timeout_ms, err, sizeof err);
}

/* --- the schema and the tables --- */

static int pgstore_install_schema(pgstore *pg) {
    char err[1024];
    char *sql = xasprintf("BEGIN; %s; %s\nCOMMIT;", PGSTORE_SCHEMA_LOCK, pgstore_schema_sql);
    int rc = pgstore_run(pg, sql, 0, NULL, 0, err, sizeof err);
    free(sql);
    if (rc != PGSTORE_OK) {
        pgstore_rollback(pg);
        log_error("cannot install the archive's SQL helpers: %s", err);
        return PGSTORE_RETRY;
    }
    pg->schema_ready = true;
    log_debug("archive SQL helpers installed");
    return PGSTORE_OK;
}

int pgstore_ready(pgstore *pg) {
    if (pg->conn && PQstatus(pg->conn) != CONNECTION_OK) pgstore_disconnect(pg);
    if (!pg->conn && pgstore_connect(pg) != PGSTORE_OK) return PGSTORE_RETRY;
    if (!pg->schema_ready && pgstore_install_schema(pg) != PGSTORE_OK) return PGSTORE_RETRY;
    return PGSTORE_OK;
}

static bool pgstore_knows_table(const pgstore *pg, const char *name) {
    for (size_t i = 0; i < pg->ntables; i++)
        if (strcmp(pg->tables[i], name) == 0) return true;
    return false;
}

static int pgstore_ensure_table(pgstore *pg, const pgstore_table *t, char *why, size_t whylen) {
    if (pgstore_knows_table(pg, t->name)) return PGSTORE_OK;
    const char *values[] = {t->name, t->exchange, t->key_prefix};
    char err[1024];
    int rc = pgstore_run(pg, "SELECT imgfeed_ensure_table($1, $2, $3)", 3, values, 0, err, sizeof err);
    if (rc != PGSTORE_OK) {
        log_warn("cannot create table %s: %s", t->name, err);
        snprintf(why, whylen, "cannot create table %s: %s", t->name, err);
        return rc == PGSTORE_REFUSED ? PGSTORE_RETRY : rc; /* a bad table name is ours, not the data's */
    }
    if (pg->ntables == pg->tables_cap) {
        pg->tables_cap = pg->tables_cap ? 2 * pg->tables_cap : 16;
        pg->tables = xrealloc(pg->tables, pg->tables_cap * sizeof *pg->tables);
    }
    pg->tables[pg->ntables++] = xstrdup(t->name);
    pg->stats.tables_created++;
    return PGSTORE_OK;
}

/* --- writing --- */

/* The upsert of one table, its rows in parameter $PARAM (see the top). */
static char *pgstore_upsert_sql(const char *ident, int param) {
    return xasprintf("INSERT INTO %s AS t (id, data) SELECT d->>'_id', d FROM unnest($%d::jsonb[]) AS u(d) "
                     "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, archived_on = now() "
                     "WHERE t.data IS DISTINCT FROM EXCLUDED.data AND (t.data->'_crawled_at' IS NULL "
                     "OR EXCLUDED.data->'_crawled_at' >= t.data->'_crawled_at') RETURNING t.xmax = 0 AS new",
                     ident, param);
}

static int pgstore_table_cmp(const void *a, const void *b) {
    const pgstore_table *x = *(const pgstore_table *const *)a, *y = *(const pgstore_table *const *)b;
    return strcmp(x->name, y->name);
}

/* One statement for every table: a WITH clause of INSERT … RETURNING for
 * each table, and one row of two counts: the rows written and, of them, the
 * new ones.  A single statement is one round trip and its own transaction.
 * Tables go in name order, as rows go in id order, for the same lock order
 * everywhere.  NULL when a name cannot be quoted. */
static char *pgstore_statement(pgstore *pg, const pgstore_table **t, size_t n) {
    char *sql = NULL;
    for (size_t i = 0; i < n; i++) {
        char *ident = PQescapeIdentifier(pg->conn, t[i]->name, strlen(t[i]->name));
        if (!ident) {
            free(sql);
            return NULL;
        }
        char *one = pgstore_upsert_sql(ident, (int)i + 1);
        PQfreemem(ident);
        char *next = xasprintf("%s%sw%zu AS (%s)", sql ? sql : "WITH ", sql ? ", " : "", i, one);
        free(one);
        free(sql);
        sql = next;
    }
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s%sSELECT new FROM w%zu", sql,
                               i ? " UNION ALL " : " SELECT count(*), count(*) FILTER (WHERE new) FROM (", i);
        free(sql);
        sql = next;
    }
    char *all = xasprintf("%s) AS w", sql);
    free(sql);
    return all;
}

/* A count of the statement's answer: column COL of its row. */
static bool pgstore_count(const PGresult *res, int col, uint64_t *out) {
    if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, col)) return false;
    char *end;
    const char *text = PQgetvalue(res, 0, col);
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end) return false;
    *out = v;
    return true;
}

int pgstore_write(pgstore *pg, const pgstore_table *tables, size_t n, pgstore_result *out, char *why, size_t whylen) {
    pgstore_result dummy;
    if (!out) out = &dummy;
    memset(out, 0, sizeof *out);
    if (pgstore_ready(pg) != PGSTORE_OK) {
        snprintf(why, whylen, "PostgreSQL is not reachable");
        return PGSTORE_RETRY;
    }
    const pgstore_table **t = xmalloc((n ? n : 1) * sizeof *t);
    size_t k = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tables[i].nrows) continue;
        int rc = pgstore_ensure_table(pg, &tables[i], why, whylen);
        if (rc != PGSTORE_OK) {
            free(t);
            return rc;
        }
        t[k++] = &tables[i];
        rows += tables[i].nrows;
    }
    if (!k) {
        free(t);
        return PGSTORE_OK;
    }
    qsort(t, k, sizeof *t, pgstore_table_cmp);
    char *sql = pgstore_statement(pg, t, k);
    if (!sql) {
        snprintf(why, whylen, "cannot quote a table name: %s", PQerrorMessage(pg->conn));
        free(t);
        return PGSTORE_RETRY;
    }
    Oid *types = xmalloc(k * sizeof *types);
    const char **values = xmalloc(k * sizeof *values);
    int *lengths = xmalloc(k * sizeof *lengths), *formats = xmalloc(k * sizeof *formats);
    for (size_t i = 0; i < k; i++) {
        types[i] = PGSTORE_JSONB_ARRAY_OID;
        values[i] = t[i]->param;
        lengths[i] = (int)t[i]->param_len;
        formats[i] = 1;
    }
    char err[1024];
    int64_t t0 = time_mono_ns();
    PGresult *res = pgstore_exec(pg, sql, (int)k, types, values, lengths, formats, pg->opts.write_timeout_ms, err,
                                 sizeof err);
    int64_t took = time_mono_ns() - t0;
    free(sql);
    free(types);
    free(values);
    free(lengths);
    free(formats);
    int rc = PGSTORE_OK;
    if (!res) {
        snprintf(why, whylen, "%s", err);
        rc = PGSTORE_RETRY;
    } else if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
        uint64_t written = 0, inserted = 0;
        if (!pgstore_count(res, 0, &written) || !pgstore_count(res, 1, &inserted) || inserted > written) {
            /* Committed all the same: the rows are there, only the counts are unknown. */
            log_warn("PostgreSQL answered the write of %zu rows with counts that cannot be read", rows);
            written = inserted = 0;
        }
        *out = (pgstore_result){.rows = rows, .written = written, .inserted = inserted, .commit_ns = took};
        pg->stats.rows_written += written;
        pg->stats.rows_inserted += inserted;
        pg->stats.rows_unchanged += rows > written ? rows - written : 0;
        pg->stats.commits++;
    } else {
        rc = pgstore_classify(pg, res, err, sizeof err);
        snprintf(why, whylen, "%s%s: %s", t[0]->name, k > 1 ? " and others" : "", err);
    }
    PQclear(res);
    free(t);
    return rc;
}
