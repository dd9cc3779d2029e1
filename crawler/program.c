/* program.c -- imgfeed-crawler's settings table and what its main does.
 *
 * The settings (flags and IMGFEED_* variables, config.h), the sites file
 * (sites.h), then the crawl (crawler.c) until it ends.  It is in the
 * library, not in main.c, so that a test can run the crawler in its own
 * process exactly as the program runs (and read its metrics).
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "crawler.h"
#include "log.h"
#include "metrics.h"
#include "sig.h"
#include "sites.h"

static const cfg_option crawler_options[] = {
    CFG_COMMON_OPTIONS(crawler_settings, common),
    {.name = "sites",
     .env = "IMGFEED_SITES",
     .type = CFG_STRING,
     .offset = offsetof(crawler_settings, sites),
     .defval = "sites.json",
     .metavar = "FILE",
     .help = "JSON file listing the sites to crawl: name, kind, base URLs, boards, requests per second, User-Agent"},
    {.name = "state-dir",
     .env = "IMGFEED_STATE_DIR",
     .type = CFG_STRING,
     .offset = offsetof(crawler_settings, state_dir),
     .defval = "state",
     .metavar = "DIR",
     .help = "where the crawler remembers, per board, what it published (one file a board)"},
    {.name = "once",
     .type = CFG_BOOL,
     .offset = offsetof(crawler_settings, once),
     .defval = "false",
     .help = "crawl every board one time, then exit (for cron and tests)"},
    {.name = "batch-size",
     .env = "IMGFEED_BATCH_SIZE",
     .type = CFG_INT,
     .offset = offsetof(crawler_settings, batch_size),
     .defval = "250",
     .min = 1,
     .max = 100000,
     .help = "posts gathered (whole threads) before they are published and the state saved"},
    {.name = "poll-interval",
     .env = "IMGFEED_POLL_INTERVAL",
     .type = CFG_MILLIS,
     .offset = offsetof(crawler_settings, poll_interval_ms),
     .defval = "10s",
     .min = 0,
     .max = 86400000,
     .help = "a board's threads.json at most this often, for sites that set no poll_interval"},
    {.name = "request-timeout",
     .env = "IMGFEED_REQUEST_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(crawler_settings, request_timeout_ms),
     .defval = "30s",
     .min = 1,
     .max = 3600000,
     .help = "longest one request may take, connecting included"},
    {.name = "retries",
     .env = "IMGFEED_RETRIES",
     .type = CFG_INT,
     .offset = offsetof(crawler_settings, retries),
     .defval = "3",
     .min = 0,
     .max = 20,
     .help = "retries with backoff after a timeout, a connection failure, a 5xx or a 429"},
    {.name = "max-body",
     .env = "IMGFEED_MAX_BODY",
     .type = CFG_BYTES,
     .offset = offsetof(crawler_settings, max_body_bytes),
     .defval = "32MiB",
     .min = 1024,
     .max = 4294967296.0,
     .help = "largest threads.json or thread JSON read"},
    {.name = "max-parse-memory",
     .env = "IMGFEED_MAX_PARSE_MEMORY",
     .type = CFG_BYTES,
     .offset = offsetof(crawler_settings, max_parse_bytes),
     .defval = "64MiB",
     .min = 65536,
     .max = 68719476736.0,
     .help = "most memory one parsed JSON document may take (threads.json, an index; of a thread, one post), "
             "estimated from its shape before parsing; a larger one is refused as too complex"},
    {0},
};

static const cfg_program crawler_program = {
    "imgfeed-crawler",
    "[OPTION]...",
    "Polls image boards (4chan and vichan JSON APIs) within their rate limits and publishes every\n"
    "new post to the exchange E.raw, remembering what it published so that it resumes after a crash.",
    crawler_options,
};

int crawler_main(int argc, char **argv) {
    crawler_settings settings = {0};
    int status = cfg_main_load(&crawler_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    status = cfg_common_apply(&crawler_program, &settings.common);
    sites list;
    char why[512];
    if (status == 0 && sites_load(settings.sites, settings.poll_interval_ms, &list, why, sizeof why) != 0) {
        log_error("%s", why);
        status = 2;
    } else if (status == 0) {
        sig_install();
        status = crawler_run(&settings, &list);
        sites_release(&list);
    }
    metrics_stop();
    cfg_release(&crawler_program, &settings);
    return status;
}
