/* pgtest.c -- SQL helpers for the archiver tests; see pgtest.h. */
#include "pgtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testenv.h"
#include "xalloc.h"

static PGconn *pgtest_connection;

PGconn *pgtest_conn(void) {
    if (pgtest_connection && PQstatus(pgtest_connection) == CONNECTION_OK) return pgtest_connection;
    if (pgtest_connection) PQfinish(pgtest_connection);
    pgtest_connection = PQconnectdb(testenv_require("IMGFEED_PG"));
    if (PQstatus(pgtest_connection) != CONNECTION_OK)
        fail_msg("cannot connect to IMGFEED_PG: %s", PQerrorMessage(pgtest_connection));
    PQclear(PQexec(pgtest_connection, "SET client_min_messages = warning"));
    return pgtest_connection;
}

void pgtest_close(void) {
    if (pgtest_connection) PQfinish(pgtest_connection);
    pgtest_connection = NULL;
}

PGresult *pgtest_query(const char *sql, int nparams, const char *const *values) {
    PGconn *conn = pgtest_conn();
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(conn));
    return res;
}

void pgtest_exec(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *sql = xvasprintf(fmt, ap);
    va_end(ap);
    PQclear(pgtest_query(sql, 0, NULL));
    free(sql);
}

long pgtest_long(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *sql = xvasprintf(fmt, ap);
    va_end(ap);
    PGresult *res = pgtest_query(sql, 0, NULL);
    if (PQntuples(res) < 1) fail_msg("%s: no rows", sql);
    long v = PQgetisnull(res, 0, 0) ? -1 : atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    free(sql);
    return v;
}

long pgtest_count(const char *table) {
    PGconn *conn = pgtest_conn();
    char *ident = PQescapeIdentifier(conn, table, strlen(table));
    char *sql = xasprintf("SELECT count(*) FROM %s", ident);
    PQfreemem(ident);
    PGresult *res = PQexec(conn, sql);
    free(sql);
    long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return n;
}

void pgtest_drop_tables(const char *prefix) {
    const char *values[] = {prefix};
    PGresult *res = pgtest_query("SELECT quote_ident(relname) FROM pg_class WHERE relkind = 'r' "
                                 "AND starts_with(relname, $1)",
                                 1, values);
    for (int i = 0; i < PQntuples(res); i++)
        pgtest_exec("DROP TABLE IF EXISTS %s", PQgetvalue(res, i, 0));
    PQclear(res);
    if (pgtest_long("SELECT count(*) FROM pg_class WHERE relname = 'imgfeed_tables'") > 0)
        PQclear(pgtest_query("DELETE FROM imgfeed_tables WHERE starts_with(name, $1)", 1, values));
}
