/* crawler.h -- imgfeed-crawler's work: every board of every site, politely.
 *
 * crawler_run starts one thread a site (so a slow or failing site never
 * holds up another), each with its own HTTP client and broker connection;
 * all share one rate-limit registry, in which each site's API host gets
 * the site's rps.  See crawler.c for a board's crawl.
 */
#ifndef IMGFEED_CRAWLER_H
#define IMGFEED_CRAWLER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "sites.h"

typedef struct crawler_settings {
    cfg_common common;
    char *sites;
    char *state_dir;
    bool once;
    long batch_size;             /* items per published batch, at most (whole threads) */
    int64_t poll_interval_ms;    /* default for sites without poll_interval */
    int64_t request_timeout_ms;  /* one HTTP request */
    long retries;                /* HTTP retries after timeouts, 5xx, 429 */
    int64_t max_body_bytes;      /* largest threads.json or thread JSON read */
    int64_t max_parse_bytes;     /* largest json-c tree of one document (of a thread: one post) */
} crawler_settings;

/* Crawl until SIGTERM (or, with --once, until every board was crawled
 * once).  Returns the exit status: 0, or 1 when the state cannot be read
 * or written or the broker gave up. */
int crawler_run(const crawler_settings *s, const sites *list);

/* The program: settings from ARGV and the environment, the sites file, the
 * metrics listener, then crawler_run.  Returns the exit status (2: bad
 * settings or sites file).  main.c's whole work, and a test's way to run
 * the crawler in its own process. */
int crawler_main(int argc, char **argv);

#endif
