/* test_pg_server.c -- the PostgreSQL that tests/run.sh starts is there and
 * does what the archiver will need: a connection from IMGFEED_PG, jsonb, and
 * INSERT ... ON CONFLICT.  It checks the harness, so that a broken server
 * start fails here with a clear message instead of deep inside the archiver
 * tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "testenv.h"

static PGresult *exec_ok(PGconn *conn, const char *sql) {
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(conn));
    return res;
}

static void test_pg_jsonb_upsert(void **state) {
    (void)state;
    PGconn *conn = PQconnectdb(testenv_require("IMGFEED_PG"));
    if (PQstatus(conn) != CONNECTION_OK) fail_msg("cannot connect to IMGFEED_PG: %s", PQerrorMessage(conn));
    assert_true(PQserverVersion(conn) >= 120000);
    PQclear(exec_ok(conn, "CREATE TEMP TABLE t (id text PRIMARY KEY, data jsonb NOT NULL)"));
    for (int i = 0; i < 2; i++)
        PQclear(exec_ok(conn, "INSERT INTO t VALUES ('g.1', '{\"no\": 1, \"com\": \"\\u00e9\"}') "
                              "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data"));
    PGresult *res = exec_ok(conn, "SELECT count(*), min(data->>'com') FROM t");
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    assert_string_equal(PQgetvalue(res, 0, 1), "\xc3\xa9");
    PQclear(res);
    PQfinish(conn);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pg_jsonb_upsert)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
