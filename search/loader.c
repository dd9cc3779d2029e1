/* loader.c -- the archive's image hashes into the catalog; see loader.h.
 *
 * The SQL cuts each `_img` entry down to the six fields the catalog needs
 * and reads each one as the queue's JSON reading does (entry.c): a field
 * that is not a string, or a "url" that is not a whole number, is NULL.
 * COPY's text format escapes tabs, newlines and backslashes in an id; they
 * are undone here (copy_unescape).
 */
#include "loader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entry.h"
#include "log.h"
#include "pgconn.h"
#include "sbuf.h"
#include "sig.h"
#include "xalloc.h"

#define LOADER_ITEM_IMAGES_MAX 4096 /* images of one item kept; _urls holds far fewer */

/* Connections loader_run made in this process (see loader.h). */
static atomic_uint_fast64_t loader_connections;

/* One row per hashed `_img` entry.  %s is the quoted table. */
static const char loader_sql[] =
    "COPY (SELECT t.id,"
    " CASE WHEN jsonb_typeof(e->'url') = 'number' THEN e->>'url' END,"
    " CASE WHEN jsonb_typeof(e->'phash') = 'string' THEN e->>'phash' END,"
    " CASE WHEN jsonb_typeof(e->'dhash') = 'string' THEN e->>'dhash' END,"
    " CASE WHEN jsonb_typeof(e->'sha1') = 'string' THEN e->>'sha1' END,"
    " CASE WHEN jsonb_typeof(e->'md5') = 'string' THEN e->>'md5' END"
    " FROM %s t, jsonb_array_elements(CASE jsonb_typeof(t.data->'_img') WHEN 'array' THEN t.data->'_img'"
    " ELSE '[]'::jsonb END) AS e"
    " WHERE jsonb_typeof(e) = 'object' AND (e ? 'phash' OR e ? 'dhash')) TO STDOUT";

/* Undoes COPY's text escapes in place; NULL for \N. */
static char *copy_unescape(char *s) {
    if (strcmp(s, "\\N") == 0) return NULL;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\' || !r[1]) {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case 't': *w++ = '\t'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'v': *w++ = '\v'; break;
        default:
            if (*r >= '0' && *r <= '7') {
                int v = 0;
                for (int i = 0; i < 3 && *r >= '0' && *r <= '7'; i++, r++)
                    v = v * 8 + (*r - '0');
                r--;
                *w++ = (char)v;
            } else {
                *w++ = *r; /* \\ and any other escaped byte stand for themselves */
            }
        }
    }
    *w = '\0';
    return s;
}

/* A whole number 0..INT32_MAX in decimal, as json-c's int would be. */
static bool parse_n(const char *s, uint32_t *out) {
    if (!s || !*s || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s)) return false;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v > INT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

typedef struct pending_item {
    sbuf id;
    bool open;
    catalog_image *images;
    size_t n, cap;
} pending_item;

static void pending_flush(catalog *c, const char *table, pending_item *p, loader_progress *prog) {
    if (!p->open) return;
    if (p->n) {
        catalog_add(c, table, p->id.p, p->images, p->n);
        atomic_fetch_add(&prog->items, 1);
    }
    p->open = false;
    p->n = 0;
}

/* One COPY row: id \t url \t phash \t dhash \t sha1 \t md5. */
static void take_row(catalog *c, const char *table, char *row, pending_item *p, loader_progress *prog) {
    char *f[6];
    size_t nf = 0;
    for (char *s = row; nf < 6; nf++) {
        f[nf] = s;
        char *tab = strchr(s, '\t');
        if (!tab) {
            nf++;
            break;
        }
        *tab = '\0';
        s = tab + 1;
    }
    atomic_fetch_add(&prog->rows, 1);
    if (nf != 6) {
        atomic_fetch_add(&prog->bad_fields, 1);
        return;
    }
    char *nl = strchr(f[5], '\n');
    if (nl) *nl = '\0';
    const char *id = copy_unescape(f[0]);
    for (size_t i = 1; i < 6; i++)
        f[i] = copy_unescape(f[i]);
    if (!id) return;
    if (!p->open || strcmp(p->id.p, id) != 0) {
        pending_flush(c, table, p, prog);
        p->id.len = 0;
        sbuf_add(&p->id, id, strlen(id));
        sbuf_addc(&p->id, '\0');
        p->open = true;
    }
    uint32_t n;
    unsigned bad = 0;
    if (!parse_n(f[1], &n)) return;
    if (p->n == p->cap) {
        if (p->cap >= LOADER_ITEM_IMAGES_MAX) return;
        p->cap = p->cap ? 2 * p->cap : 4;
        p->images = xrealloc(p->images, p->cap * sizeof *p->images);
    }
    if (entry_from_fields(n, f[2], f[3], f[4], f[5], &p->images[p->n], &bad)) p->n++;
    if (bad) atomic_fetch_add(&prog->bad_fields, bad);
}

static int load_table(PGconn *conn, const char *table, catalog *c, loader_progress *prog, char *why, size_t whylen) {
    char *quoted = PQescapeIdentifier(conn, table, strlen(table));
    if (!quoted) {
        pgconn_error_text(PQerrorMessage(conn), why, whylen);
        return -1;
    }
    char *sql = xasprintf(loader_sql, quoted);
    PQfreemem(quoted);
    PGresult *r = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        char err[512];
        pgconn_error_text(PQresultErrorMessage(r), err, sizeof err);
        snprintf(why, whylen, "cannot read table %s: %s", table, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    pending_item p = {0};
    char *row = NULL;
    int len, status = 0;
    while ((len = PQgetCopyData(conn, &row, 0)) > 0) {
        take_row(c, table, row, &p, prog);
        PQfreemem(row);
        if (sig_stop_requested()) {
            snprintf(why, whylen, "stopped");
            status = -1;
            break;
        }
    }
    if (status == 0) {
        pending_flush(c, table, &p, prog);
        if (len == -2) {
            pgconn_error_text(PQerrorMessage(conn), why, whylen);
            status = -1;
        }
        while ((r = PQgetResult(conn)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && status == 0) {
                char err[512];
                pgconn_error_text(PQresultErrorMessage(r), err, sizeof err);
                snprintf(why, whylen, "cannot read table %s: %s", table, err);
                status = -1;
            }
            PQclear(r);
        }
    }
    free(p.id.p);
    free(p.images);
    return status;
}

int loader_run(const char *conninfo, const char *exchange, catalog *c, loader_progress *prog, char *why,
               size_t whylen) {
    char err[512];
    PGconn *conn = pgconn_open(conninfo, "imgfeed-search", err, sizeof err);
    if (!conn) {
        snprintf(why, whylen, "cannot connect to PostgreSQL: %s", err);
        return -1;
    }
    if (atomic_fetch_add(&loader_connections, 1) > 0) pgconn_count_reconnect(); /* an earlier load's is gone */
    int status = -1;
    /* An item's rows must come together: no parallel workers interleaving them. */
    PGresult *r = PQexec(conn, "SET max_parallel_workers_per_gather = 0");
    PQclear(r);
    const char *params[1] = {exchange};
    r = PQexecParams(conn, "SELECT name FROM imgfeed_tables WHERE exchange = $1 ORDER BY name", 1, NULL, params, NULL,
                     NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) { /* undefined_table: nothing archived yet */
            log_info("the archive has no tables yet (no imgfeed_tables): nothing to load");
            status = 0;
        } else {
            pgconn_error_text(PQresultErrorMessage(r), err, sizeof err);
            snprintf(why, whylen, "cannot list the archive's tables: %s", err);
        }
        PQclear(r);
        PQfinish(conn);
        return status;
    }
    int ntables = PQntuples(r);
    status = 0;
    for (int i = 0; i < ntables && status == 0; i++) {
        const char *table = PQgetvalue(r, i, 0);
        uint64_t before = atomic_load(&prog->rows);
        status = load_table(conn, table, c, prog, why, whylen);
        if (status == 0) {
            atomic_fetch_add(&prog->tables, 1);
            log_info("loaded table %s: %" PRIu64 " images", table, (uint64_t)(atomic_load(&prog->rows) - before));
        }
    }
    PQclear(r);
    PQfinish(conn);
    if (status == 0) catalog_build(c);
    return status;
}
