/* fixture.h -- start and drive tests/support/fixture_server.py from a C test.
 *
 * Each test starts its own server: fixture_start() forks python3 on the
 * script (found through IMGFEED_SOURCE_DIR), reads the port it prints and
 * waits until it answers; fixture_stop() kills it by pid and reaps it.  The
 * interpreter is $IMGFEED_PYTHON if set, else python3 on PATH, else
 * /usr/bin/python3 (any Python >= 3.9).  Control requests go through plain
 * libcurl, not http.c, so they are neither rate-limited nor logged by the
 * server.  Failures fail the running cmocka test.
 */
#ifndef IMGFEED_FIXTURE_H
#define IMGFEED_FIXTURE_H

#include <sys/types.h>

#include <json-c/json.h>

typedef struct fixture {
    pid_t pid;
    int port;
    char host[64]; /* the address it listens on, "127.0.0.1" by default */
} fixture;

typedef struct fixture_options {
    const char *host;      /* address to listen on (any of 127/8); NULL: 127.0.0.1 */
    const char *files_dir; /* directory served under /files/; NULL: none */
    /* The recorded API responses for /_control/chan/recorded (--fixtures);
     * NULL: the server's default, <source>/tests/fixtures/real. */
    const char *fixtures_dir;
} fixture_options;

/* Start a server; fails the test when it does not come up within 30 s. */
void fixture_start(fixture *f);
/* The same with options (NULL: the defaults). */
void fixture_start_with(fixture *f, const fixture_options *o);
/* Stop it (SIGTERM, then SIGKILL if it lingers) and reap it.  Safe on a
 * fixture that was never started or is already stopped. */
void fixture_stop(fixture *f);
/* "http://<host>:<port>" followed by the printf-formatted path.  The
 * caller frees the result. */
char *fixture_url(const fixture *f, const char *path_fmt, ...) __attribute__((format(printf, 2, 3)));
/* GET /_control/<what> and parse the JSON answer; fails the test when the
 * answer is not 200 with JSON.  The caller json_object_put()s it. */
json_object *fixture_control(const fixture *f, const char *what_fmt, ...) __attribute__((format(printf, 2, 3)));
/* The request log entries whose path starts with prefix (a new reference
 * to a JSON array; the caller puts it). */
json_object *fixture_log(const fixture *f, const char *prefix);
/* Write a sites file (crawler/sites.json's format) at PATH naming the
 * fixture's generated 4chan-like SITE with its boards b0 .. b<BOARDS-1>,
 * at 200 requests a second. */
void fixture_write_chan_sites(const fixture *f, const char *path, const char *site, int boards);

#endif
