/* crawltest.h -- the harness of the crawler's tests (test_crawler.c and
 * test_crawl_<kind>.c): one real imgfeed-crawler against one fixture server
 * and the real broker, and what it published.
 *
 * crawltest_setup() makes a fresh exchange E ("t<pid><tag><letter>"), a
 * queue E.test bound to E.raw with "#" that the test consumes, a temporary
 * directory for the sites file and the state, and starts the fixture
 * server; crawltest_teardown() kills what is left and removes all of it.
 * Between the two, the global ct holds them.  The crawler runs with
 * --sites, --state-dir and --retries 1 before the test's own arguments.
 * A harvest takes E.test's messages until the queue stays quiet, keeping
 * the last copy of every item by _id and the items published under every
 * routing key.  Failures fail the running cmocka test.
 *
 * crawltest_once_here() runs the same crawl inside the test's process,
 * through the program's own main (crawler_main, which the crawler's tests
 * link from imgfeed-crawl), so that the test reads the crawler's metrics
 * with metrics_value(); its log goes to a file of the test's directory.
 */
#ifndef IMGFEED_CRAWLTEST_H
#define IMGFEED_CRAWLTEST_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "fixture.h"
#include "mq.h"
#include "proc.h"

typedef struct crawltest {
    char *exchange;
    char *queue; /* E.test, bound to E.raw with # */
    char *dir;   /* sites file and state */
    char *sites_file;
    char *state_dir;
    fixture fx;
    mq *q;
    proc crawler;
    char *here_log; /* the log of the last crawltest_once_here, or NULL */
} crawltest;

extern crawltest ct;

/* Set up for a test of program NAME ("test_crawl_reddit"), its exchange
 * names marked with TAG.  Returns 0, as cmocka's setup functions do. */
int crawltest_setup(const char *name, char tag);
int crawltest_teardown(void);

/* Write the sites file: {"user_agent": …, "sites": ENTRIES} (taken). */
void crawltest_write_sites(json_object *entries);

/* Start the crawler with ARGS (NULL-terminated, may be NULL). */
void crawltest_start(const char *const *args);
/* Run it with --once and ARGS; it must exit 0. */
void crawltest_once(const char *const *args);
/* The same crawl in this process: CRAWLER_MAIN (crawler_main of crawler.h)
 * with the arguments crawltest_once gives the program; it must return 0.
 * Its log is written to ct.here_log. */
void crawltest_once_here(int (*crawler_main)(int argc, char **argv), const char *const *args);
/* How many lines of ct.here_log hold TEXT. */
int crawltest_here_log_count(const char *text);
/* The metrics of this process (metrics_render) label site SITE only with
 * the boards of BOARDS (NULL-terminated: its boards in the sites file), and
 * each of those has its series: whatever the site answered, it made no
 * series of its own. */
void crawltest_series_only(const char *site, const char *const *boards);

typedef struct crawltest_harvest {
    json_object *by_id; /* _id -> item (the last copy) */
    json_object *keys;  /* routing key -> items published under it */
    size_t items;       /* items taken, copies included */
    size_t messages;
    size_t longest;     /* the longest message body */
} crawltest_harvest;

void crawltest_harvest_init(crawltest_harvest *h);
void crawltest_harvest_release(crawltest_harvest *h);
/* Take messages from E.test until none comes for QUIET_MS. */
void crawltest_harvest_take(crawltest_harvest *h, int64_t quiet_ms);
/* The items published under routing key KEY. */
long crawltest_key_count(const crawltest_harvest *h, const char *key);

/* The fixture's per-second request counts C ({"<unix second>": n, ...}, as
 * its /counts answers) against a site's limit of RPS requests a second.
 * The limiter spaces the requests' starts; the fixture counts arrivals,
 * which a loaded machine (the suite's two variants at once) can delay, so
 * one request may land in the next second: a second may hold RPS + 1, and
 * the whole stays within RPS a second over its span, plus that one. */
void crawltest_check_rate(json_object *counts, int rps);

#endif
