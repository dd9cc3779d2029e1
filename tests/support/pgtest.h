/* pgtest.h -- the tests' own connection to the PostgreSQL of IMGFEED_PG.
 *
 * The archiver tests look at what the archive really holds.  These helpers
 * run SQL on a connection of their own that comes back by itself after the
 * server was restarted under it, and fail the test (cmocka) on any SQL
 * error, showing the statement and PostgreSQL's message.
 */
#ifndef IMGFEED_TEST_PGTEST_H
#define IMGFEED_TEST_PGTEST_H

#include <libpq-fe.h>

/* The connection (opened on first use, again after it broke). */
PGconn *pgtest_conn(void);
/* Close it (at the end of a test program). */
void pgtest_close(void);

/* Run SQL with text parameters (values may be NULL); the result must be
 * rows or "command ok".  The caller PQclears the result. */
PGresult *pgtest_query(const char *sql, int nparams, const char *const *values);
/* Run SQL (printf-style) whose result is not needed. */
void pgtest_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first column of the first row of SQL (printf-style) as a number; -1
 * for NULL. */
long pgtest_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Number of rows of TABLE, or -1 when it does not exist; a broken
 * connection (a server restarting) also gives -1 instead of failing. */
long pgtest_count(const char *table);
/* The same on another connection C (a test's own database). */
PGresult *pgtest_query_on(PGconn *c, const char *sql, int nparams, const char *const *values);
void pgtest_exec_on(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long pgtest_long_on(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long pgtest_count_on(PGconn *c, const char *table);

/* Drop every archive table whose name starts with PREFIX, and their rows in
 * imgfeed_tables (tests use a fresh exchange name each, so PREFIX is "E_"). */
void pgtest_drop_tables(const char *prefix);

#endif
