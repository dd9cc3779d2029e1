/* cdp.h -- a real headless Chromium driven by the tests over the DevTools
 * protocol.
 *
 * `chromium --dump-dom` dumps a page when it has loaded, which for a page
 * that fills itself from an event stream is too early, and
 * --virtual-time-budget never ends while a stream is open.  So the tests
 * that check a page in a browser start Debian's chromium with
 * --remote-debugging-pipe and speak the DevTools protocol (JSON messages
 * ended by a NUL byte: the browser reads fd 3 and writes fd 4): open a tab
 * on a URL, evaluate expressions in it until the page is in the state
 * wanted, read its DOM, take a screenshot.  Every console message of the
 * page is kept (Runtime.consoleAPICalled), and so are exceptions
 * (Runtime.exceptionThrown), so a test can say what the page printed.
 *
 * Every failure fails the running cmocka test.
 */
#ifndef IMGFEED_TEST_CDP_H
#define IMGFEED_TEST_CDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "sbuf.h"

typedef struct cdp {
    pid_t pid;
    int to, from;      /* the pipes: the browser reads `to`, writes `from` */
    char *profile;     /* its --user-data-dir, removed by cdp_close */
    char *session;     /* the tab's session id */
    int next_id;
    sbuf in;           /* bytes read, not yet a whole message */
    json_object *console; /* array of the console's lines and exceptions, as text */
} cdp;

/* Start chromium and open a tab of WIDTH x HEIGHT on URL. */
void cdp_open(cdp *c, const char *url, int width, int height);
/* Close the browser (and wait for it) and remove its profile. */
void cdp_close(cdp *c);

/* Evaluate EXPRESSION in the tab: its value (returnByValue), a new
 * reference the caller puts, or NULL for undefined. */
json_object *cdp_eval(cdp *c, const char *expression);
/* Evaluate EXPRESSION every 100 ms until it is true, for at most
 * TIMEOUT_MS; returns whether it became true. */
bool cdp_wait_true(cdp *c, const char *expression, int64_t timeout_ms);
/* document.documentElement.outerHTML, a new string. */
char *cdp_dom(cdp *c);
/* A PNG screenshot of the tab into PATH. */
void cdp_screenshot(cdp *c, const char *path);
/* Whether a console line or exception of the page holds TEXT. */
bool cdp_console_has(const cdp *c, const char *text);

#endif
