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

#endif
