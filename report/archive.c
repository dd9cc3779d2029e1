/* archive.c -- the archive's numbers; see archive.h.
 *
 * Every jsonb field is read through a CASE on its jsonb_typeof, so that a
 * row of another shape (no `_img`, `_img` not an array, an entry not an
 * object, a size that is a string) is counted as what it is rather than
 * failing the query.
 */
#include "archive.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "catalog.h"
#include "loader.h"
#include "log.h"
#include "pgconn.h"
#include "savedir.h"
#include "sbuf.h"
#include "sig.h"
#include "imghash/imghash.h"
#include "xalloc.h"

/* The `_img` entries of table %1$s as rows e, with t the row. */
#define RA_ENTRIES                                                                                                     \
    " FROM %1$s t, jsonb_array_elements(CASE jsonb_typeof(t.data->'_img') WHEN 'array' THEN t.data->'_img'"            \
    " ELSE '[]'::jsonb END) AS e WHERE jsonb_typeof(e) = 'object'"

static const char ra_days_sql[] =
    "SELECT coalesce(t.data->>'_chan', ''),"
    " coalesce(to_char(imgfeed_posted_at(t.data) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'unknown'),"
    " count(*), count(*) FILTER (WHERE jsonb_typeof(t.data->'_img') IS DISTINCT FROM 'array')"
    " FROM %1$s t GROUP BY 1, 2";

static const char ra_entries_sql[] =
    "SELECT coalesce(t.data->>'_board', ''), e ? 'error', e->>'error',"
    " CASE WHEN jsonb_typeof(e->'format') = 'string' THEN e->>'format' END,"
    " CASE WHEN jsonb_typeof(e->'size') = 'number' THEN e->>'size' END,"
    " CASE WHEN jsonb_typeof(e->'width') = 'number' THEN e->>'width' END,"
    " CASE WHEN jsonb_typeof(e->'height') = 'number' THEN e->>'height' END,"
    " CASE WHEN jsonb_typeof(e->'brightness') = 'number' THEN e->>'brightness' END,"
    " CASE WHEN jsonb_typeof(e->'rgb_mean') = 'array' THEN e->>'rgb_mean' END,"
    " CASE WHEN jsonb_typeof(e->'rgb_hist') = 'array' THEN e->>'rgb_hist' END" RA_ENTRIES;

/* The sha1 of every downloaded entry of table %1$s. */
static const char ra_sha1_sql[] =
    "SELECT e->>'sha1' AS s" RA_ENTRIES " AND NOT e ? 'error' AND jsonb_typeof(e->'sha1') = 'string'";

/* The entries of table %1$s (named %2$s) with sha1 $1. */
static const char ra_members_sql[] =
    "SELECT %2$s::text AS tb, t.id COLLATE \"C\" AS id,"
    " CASE WHEN jsonb_typeof(e->'url') = 'number' THEN (e->>'url')::numeric::bigint ELSE -1 END AS n,"
    " coalesce(t.data->>'_board', '') AS label, e->>'format' AS format" RA_ENTRIES
    " AND t.data->'_img' @> jsonb_build_array(jsonb_build_object('sha1', $1::text))"
    " AND NOT e ? 'error' AND e->>'sha1' = $1";

/* One entry of table %1$s: item $1, url number $2. */
static const char ra_member_sql[] = "SELECT coalesce(t.data->>'_board', ''), e->>'sha1', e->>'format'" RA_ENTRIES
                                    " AND t.id = $1 AND e->'url' = $2::jsonb LIMIT 1";

typedef struct ra_run {
    PGconn *conn;
    char **tables; /* names */
    char **quoted; /* quoted identifiers */
    size_t n;
    char *why;
    size_t whylen;
} ra_run;

static int ra_fail(ra_run *r, const char *what, PGresult *res) {
    char err[512];
    pgconn_error_text(res ? PQresultErrorMessage(res) : PQerrorMessage(r->conn), err, sizeof err);
    snprintf(r->why, r->whylen, "%s: %s", what, err);
    return -1;
}

/* SQL with text parameters; NULL (reason in r->why) unless it gave rows. */
static PGresult *ra_query(ra_run *r, const char *what, const char *sql, int n, const char *const *params) {
    PGresult *res = PQexecParams(r->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) return res;
    ra_fail(r, what, res);
    PQclear(res);
    return NULL;
}

static int ra_tables(ra_run *r, const char *exchange) {
    const char *p[1] = {exchange};
    PGresult *res = PQexecParams(r->conn,
                                 "SELECT name FROM imgfeed_tables WHERE exchange = $1"
                                 " AND to_regclass(quote_ident(name)) IS NOT NULL ORDER BY name COLLATE \"C\"",
                                 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) { /* no imgfeed_tables: nothing archived yet */
            PQclear(res);
            log_warn("the archive has no tables yet (no imgfeed_tables): the report is empty");
            return 0;
        }
        ra_fail(r, "cannot list the archive's tables", res);
        PQclear(res);
        return -1;
    }
    r->n = (size_t)PQntuples(res);
    r->tables = xcalloc(r->n + 1, sizeof *r->tables);
    r->quoted = xcalloc(r->n + 1, sizeof *r->quoted);
    for (size_t i = 0; i < r->n; i++) {
        const char *name = PQgetvalue(res, (int)i, 0);
        r->tables[i] = xstrdup(name);
        char *q = PQescapeIdentifier(r->conn, name, strlen(name));
        if (!q) {
            PQclear(res);
            return ra_fail(r, "cannot quote a table name", NULL);
        }
        r->quoted[i] = xstrdup(q);
        PQfreemem(q);
    }
    PQclear(res);
    return 0;
}

static int ra_days(ra_run *r, size_t t, rstats *st) {
    char *sql = xasprintf(ra_days_sql, r->quoted[t]);
    PGresult *res = ra_query(r, "cannot count the items per day", sql, 0, NULL);
    free(sql);
    if (!res) return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t n = strtoll(PQgetvalue(res, i, 2), NULL, 10), without = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        rmap *days = rmap_get(&st->days, PQgetvalue(res, i, 0));
        if (!days->rec_size) rmap_init(days, sizeof(int64_t));
        *(int64_t *)rmap_get(days, PQgetvalue(res, i, 1)) += n;
        st->items += n;
        st->items_without_img += without;
    }
    PQclear(res);
    return 0;
}

/* A JSON array of numbers (TEXT) into OUT[N]; false unless exactly N numbers. */
static bool ra_numbers(const char *text, double *out, size_t n) {
    json_object *a = json_tokener_parse(text);
    bool ok = json_object_is_type(a, json_type_array) && json_object_array_length(a) == n;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
            ok = false;
        else
            out[i] = json_object_get_double(v);
    }
    json_object_put(a);
    return ok;
}

static int64_t ra_int(const char *text) {
    double v = strtod(text, NULL);
    return isfinite(v) && v >= 0 && v < 9.2e18 ? (int64_t)llround(v) : -1;
}

static void ra_entry(PGresult *res, rstats *st) {
    st->entries++;
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        rstats_add_error(st, PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2));
        return;
    }
    rstats_image im = {.label = PQgetvalue(res, 0, 0), .size = -1, .width = -1, .height = -1};
    if (!PQgetisnull(res, 0, 3)) im.format = PQgetvalue(res, 0, 3);
    if (!PQgetisnull(res, 0, 4)) im.size = ra_int(PQgetvalue(res, 0, 4));
    if (!PQgetisnull(res, 0, 5)) im.width = ra_int(PQgetvalue(res, 0, 5));
    if (!PQgetisnull(res, 0, 6)) im.height = ra_int(PQgetvalue(res, 0, 6));
    if (!PQgetisnull(res, 0, 7)) {
        im.brightness = strtod(PQgetvalue(res, 0, 7), NULL);
        im.has_brightness = isfinite(im.brightness);
    }
    if (!PQgetisnull(res, 0, 8)) im.has_mean = ra_numbers(PQgetvalue(res, 0, 8), im.mean, 3);
    if (!PQgetisnull(res, 0, 9)) im.has_hist = ra_numbers(PQgetvalue(res, 0, 9), im.hist, RSTATS_HIST);
    rstats_add_image(st, &im);
}

static int ra_entries(ra_run *r, size_t t, rstats *st) {
    char *sql = xasprintf(ra_entries_sql, r->quoted[t]);
    int sent = PQsendQueryParams(r->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    free(sql);
    if (!sent || !PQsetSingleRowMode(r->conn)) return ra_fail(r, "cannot read the images", NULL);
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(r->conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_SINGLE_TUPLE && rc == 0) {
            ra_entry(res, st);
            if (sig_stop_requested()) {
                snprintf(r->why, r->whylen, "stopped");
                rc = -1;
                PQrequestCancel(r->conn);
            }
        } else if (status != PGRES_TUPLES_OK && status != PGRES_SINGLE_TUPLE && rc == 0) {
            char what[200];
            snprintf(what, sizeof what, "cannot read the images of %s", r->tables[t]);
            rc = ra_fail(r, what, res);
        }
        PQclear(res);
    }
    return rc;
}

/* TEMPLATE with each "%1$s" made the quoted table and each "%2$s" its name as a literal. */
static void ra_fill(sbuf *b, const char *template, const char *quoted, const char *literal) {
    for (const char *p = template; *p;) {
        const char *one = strstr(p, "%1$s"), *two = strstr(p, "%2$s");
        const char *at = one && (!two || one < two) ? one : two;
        if (!at) {
            sbuf_add(b, p, strlen(p));
            break;
        }
        sbuf_add(b, p, (size_t)(at - p));
        const char *v = at == one ? quoted : literal;
        sbuf_add(b, v, strlen(v));
        p = at + 4;
    }
}

/* "SELECT ... UNION ALL SELECT ..." of TEMPLATE over every table. */
static char *ra_union(const ra_run *r, const char *template) {
    sbuf b = {0};
    for (size_t i = 0; i < r->n; i++) {
        char *lit = PQescapeLiteral(r->conn, r->tables[i], strlen(r->tables[i]));
        if (i) sbuf_add(&b, " UNION ALL ", 11);
        ra_fill(&b, template, r->quoted[i], lit ? lit : "''");
        if (lit) PQfreemem(lit);
    }
    sbuf_addc(&b, '\0');
    return b.p;
}

static char *ra_savedir_file(const report_settings *s, const char *sha1, const char *format) {
    if (!s->save_dir || !sha1 || strlen(sha1) != 40 || strspn(sha1, "0123456789abcdef") != 40) return NULL;
    return savedir_path(s->save_dir, sha1, ih_format_extension(ih_format_from_name(format ? format : "")));
}

static int ra_exact(ra_run *r, const report_settings *s, rgroups *exact) {
    if (!r->n) return 0;
    char *u = ra_union(r, ra_sha1_sql);
    char *sql =
        xasprintf("SELECT s, count(*) FROM (%s) u GROUP BY s HAVING count(*) > 1 ORDER BY 2 DESC, s COLLATE \"C\"", u);
    free(u);
    /* single-row mode: one group at a time, however many there are */
    int sent = PQsendQueryParams(r->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    free(sql);
    if (!sent || !PQsetSingleRowMode(r->conn)) return ra_fail(r, "cannot count the exact duplicates", NULL);
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(r->conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_SINGLE_TUPLE && rc == 0) {
            rgroup *g = rgroups_offer(exact, strtoll(PQgetvalue(res, 0, 1), NULL, 10));
            if (g) g->sha1 = xstrdup(PQgetvalue(res, 0, 0));
        } else if (status != PGRES_TUPLES_OK && status != PGRES_SINGLE_TUPLE && rc == 0) {
            rc = ra_fail(r, "cannot count the exact duplicates", res);
        }
        PQclear(res);
    }
    if (rc) return rc;
    u = ra_union(r, ra_members_sql);
    sql = xasprintf("SELECT * FROM (%s) m ORDER BY tb COLLATE \"C\", id COLLATE \"C\", n LIMIT %zu", u,
                    exact->keep_members);
    free(u);
    for (size_t i = 0; i < exact->n && rc == 0; i++) {
        rgroup *g = &exact->g[i];
        const char *p[1] = {g->sha1};
        PGresult *m = ra_query(r, "cannot find the members of an exact duplicate group", sql, 1, p);
        if (!m) rc = -1;
        for (int j = 0; m && j < PQntuples(m); j++) {
            rgroup_member *mb = rgroup_add(exact, g, PQgetvalue(m, j, 0), PQgetvalue(m, j, 1),
                                           (uint32_t)strtoul(PQgetvalue(m, j, 2), NULL, 10));
            if (!mb) break;
            mb->label = xstrdup(PQgetvalue(m, j, 3));
            mb->sha1 = xstrdup(g->sha1);
            if (!PQgetisnull(m, j, 4)) mb->format = xstrdup(PQgetvalue(m, j, 4));
            mb->file = ra_savedir_file(s, mb->sha1, mb->format);
        }
        PQclear(m);
    }
    free(sql);
    return rc;
}

static int ra_near(ra_run *r, const report_settings *s, rgroups *near) {
    catalog *c = catalog_new();
    loader_progress prog = {0};
    char why[600];
    if (loader_run(s->pg, s->exchange, c, &prog, why, sizeof why) != 0) {
        snprintf(r->why, r->whylen, "cannot load the archive's hashes: %s", why);
        catalog_free(c);
        return -1;
    }
    catalog_kind kind = strcmp(s->hash, "dhash") == 0 ? CATALOG_DHASH : CATALOG_PHASH;
    int rc = rgroups_near(near, c, kind, (int)s->max_distance);
    catalog_free(c);
    if (rc) {
        snprintf(r->why, r->whylen, "stopped");
        return -1;
    }
    for (size_t i = 0; i < near->n && rc == 0; i++) {
        for (size_t j = 0; j < near->g[i].n && rc == 0; j++) {
            rgroup_member *m = &near->g[i].m[j];
            char *q = PQescapeIdentifier(r->conn, m->table, strlen(m->table));
            if (!q) return ra_fail(r, "cannot quote a table name", NULL);
            char *sql = xasprintf(ra_member_sql, q);
            PQfreemem(q);
            char n[16];
            snprintf(n, sizeof n, "%" PRIu32, m->image);
            const char *p[2] = {m->id, n};
            PGresult *res = ra_query(r, "cannot read a near duplicate", sql, 2, p);
            free(sql);
            if (!res)
                rc = -1;
            else if (PQntuples(res) == 1) {
                m->label = xstrdup(PQgetvalue(res, 0, 0));
                if (!PQgetisnull(res, 0, 1)) m->sha1 = xstrdup(PQgetvalue(res, 0, 1));
                if (!PQgetisnull(res, 0, 2)) m->format = xstrdup(PQgetvalue(res, 0, 2));
                m->file = ra_savedir_file(s, m->sha1, m->format);
            }
            PQclear(res);
        }
    }
    return rc;
}

int rarchive_collect(const report_settings *s, rstats *st, rgroups *exact, rgroups *near, json_object *root, char *why,
                     size_t whylen) {
    char err[512];
    ra_run r = {.why = why, .whylen = whylen};
    r.conn = pgconn_open(s->pg, "imgfeed-report", err, sizeof err);
    if (!r.conn) {
        snprintf(why, whylen, "cannot connect to PostgreSQL: %s", err);
        return -1;
    }
    int rc = ra_tables(&r, s->exchange);
    for (size_t t = 0; t < r.n && rc == 0; t++) {
        rc = ra_days(&r, t, st);
        if (rc == 0) rc = ra_entries(&r, t, st);
        if (rc == 0) log_info("read table %s", r.tables[t]);
    }
    if (rc == 0) rc = ra_exact(&r, s, exact);
    if (rc == 0) rc = ra_near(&r, s, near);
    if (rc == 0) {
        json_object *src = json_object_new_object(), *tables = json_object_new_array();
        json_object_object_add(src, "kind", json_object_new_string("archive"));
        json_object_object_add(src, "exchange", json_object_new_string(s->exchange));
        for (size_t t = 0; t < r.n; t++)
            json_object_array_add(tables, json_object_new_string(r.tables[t]));
        json_object_object_add(src, "tables", tables);
        json_object_object_add(root, "source", src);
    }
    for (size_t t = 0; t < r.n; t++) {
        free(r.tables[t]);
        free(r.quoted[t]);
    }
    free(r.tables);
    free(r.quoted);
    PQfinish(r.conn);
    return rc;
}
