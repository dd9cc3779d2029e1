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

PGresult *pgtest_query_on(PGconn *c, const char *sql, int nparams, const char *const *values) {
    PGresult *res = PQexecParams(c, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    return res;
}

PGresult *pgtest_query(const char *sql, int nparams, const char *const *values) {
    return pgtest_query_on(pgtest_conn(), sql, nparams, values);
}

static long pgtest_vlong(PGconn *c, const char *fmt, va_list ap) {
    char *sql = xvasprintf(fmt, ap);
    PGresult *res = pgtest_query_on(c, sql, 0, NULL);
    if (PQntuples(res) < 1) fail_msg("%s: no rows", sql);
    long v = PQgetisnull(res, 0, 0) ? -1 : atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    free(sql);
    return v;
}

static void pgtest_vexec(PGconn *c, const char *fmt, va_list ap) {
    char *sql = xvasprintf(fmt, ap);
    PQclear(pgtest_query_on(c, sql, 0, NULL));
    free(sql);
}

void pgtest_exec(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pgtest_vexec(pgtest_conn(), fmt, ap);
    va_end(ap);
}

void pgtest_exec_on(PGconn *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pgtest_vexec(c, fmt, ap);
    va_end(ap);
}

long pgtest_long(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    long v = pgtest_vlong(pgtest_conn(), fmt, ap);
    va_end(ap);
    return v;
}

long pgtest_long_on(PGconn *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    long v = pgtest_vlong(c, fmt, ap);
    va_end(ap);
    return v;
}

long pgtest_count_on(PGconn *c, const char *table) {
    char *ident = PQescapeIdentifier(c, table, strlen(table));
    char *sql = xasprintf("SELECT count(*) FROM %s", ident ? ident : "\"\"");
    PQfreemem(ident);
    PGresult *res = PQexec(c, sql);
    free(sql);
    long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atol(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return n;
}

long pgtest_count(const char *table) { return pgtest_count_on(pgtest_conn(), table); }

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
