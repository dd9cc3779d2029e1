/* testenv.h -- what the test environment provides.
 *
 * tests/run.sh starts the servers and exports their addresses; ctest adds
 * the source and build directories.  A test that needs a server it was not
 * given fails with a message saying how to run it, rather than skipping: a
 * suite that silently skips is a suite that passes without testing.
 */
#ifndef IMGFEED_TESTENV_H
#define IMGFEED_TESTENV_H

/* The value of an environment variable the test cannot do without; fails the
 * test (cmocka) with a hint when it is missing. */
const char *testenv_require(const char *name);
/* IMGFEED_SOURCE_DIR and IMGFEED_BINARY_DIR. */
const char *testenv_source_dir(void);
const char *testenv_binary_dir(void);
/* Run a command of tests/lib/servers.sh on this run's servers, e.g.
 * testenv_servers("rabbit-restart"); returns its exit status. */
int testenv_servers(const char *command);

/* A new empty directory /tmp/imgfeed-NAME.XXXXXX; the caller frees the path
 * and removes the directory with testenv_rmtree.  Fails the test when it
 * cannot be made. */
char *testenv_tmpdir(const char *name);
/* Remove DIR and everything below it; 0, or -1 with a message on stderr. */
int testenv_rmtree(const char *dir);

/* A TCP port of 127.0.0.1 that nothing listens on right now (bound and
 * closed again): a peer that is not there. */
int testenv_free_port(void);

/* Send log lines (log.h) to a temporary file until testenv_log_end, which
 * returns what was logged (the caller frees it) and restores stderr. */
int testenv_log_begin(void);
char *testenv_log_end(int fd);

#endif
