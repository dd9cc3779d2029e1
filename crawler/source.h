/* source.h -- source kinds: one module a family of sites, one crawler for all.
 *
 * A source kind (4chan, vichan, lynxchan, reddit, nekos_best, …) is a handler
 * table in the manner of curl's protocol handlers: its name, the URL
 * templates it asks for and their defaults, how it reads its own settings of
 * a site, and how it polls one board (a board, subreddit or category) into
 * items.  Everything else stays in one place for every kind, in crawler.c:
 * the thread a site, the loop that picks the board due next, the per-host
 * rate limiter (every request through crawl_get), batching items into
 * messages under --max-message (crawl_emit), publishing with confirms, the
 * backoff of a failing board, and the stop.  The state file of a board and
 * its atomic save are statefile.c's.
 *
 * A poll, as the crawler drives it:
 *
 *   board_open   once, before the first poll: load the board's state
 *                (statefile_load) into the kind's own struct.
 *   board_poll   ask the site (crawl_get), turn what it says into items and
 *                hand each to crawl_emit, keeping in the kind's struct what
 *                the state will say once they are confirmed ("pending").
 *                Between two whole units (a thread, a listing page), call
 *                crawl_checkpoint: when a batch is full it publishes and
 *                commits.  Return CRAWL_OK, CRAWL_FAILED (the board waits a
 *                growing backoff), or what crawl_* returned (CRAWL_STOPPED,
 *                CRAWL_FATAL).
 *   board_commit everything emitted so far is confirmed by the broker: fold
 *                the pending into the state and save it (statefile_save).
 *                Called by crawl_checkpoint and after board_poll returns
 *                CRAWL_OK or CRAWL_FAILED (what was emitted is published
 *                first).
 *   board_drop   what was emitted since the last commit was not confirmed
 *                (a stop, the broker gone): forget the pending, so that it
 *                is published again next time.
 *   board_close  free the kind's struct.
 *
 * A kind whose items tell when they were posted gives item_time, from which
 * the crawler counts the lag of each item it publishes (crawlmetrics.h).
 *
 * Adding a kind: write src_<kind>.c defining a `const source_kind
 * source_<kind>` and add one line to the table in sources.c.
 */
#ifndef IMGFEED_SOURCE_H
#define IMGFEED_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "http.h"
#include "log.h"

typedef struct site_config site_config;
typedef struct crawler_settings crawler_settings;

/* What a poll, a checkpoint or an emit ends with. */
enum {
    CRAWL_OK = 0,
    CRAWL_FAILED = -1,  /* this board's crawl failed: try again after a backoff */
    CRAWL_FATAL = -2,   /* the broker gave up or the state cannot be written: the crawler exits 1 */
    CRAWL_STOPPED = -3, /* a stop cut the crawl short: nothing more is recorded, the process exits 0 */
};

/* One URL template of a kind: the key of the sites file that overrides it,
 * and its default; {api} and {media} are replaced when the site is read. */
typedef struct source_template {
    const char *key;
    const char *def;
} source_template;

#define SOURCE_TEMPLATES_MAX 6

/* The crawler's side of one board, handed to the kind's functions. */
typedef struct crawl_board crawl_board;

typedef struct source_kind {
    const char *name; /* as in the sites file's "kind" and in docs/design.md */
    /* URL templates, ending with {NULL, NULL}; site_config.urls[i] holds
     * template i, overrides applied and {api}/{media} replaced. */
    source_template templates[SOURCE_TEMPLATES_MAX + 1];
    const char *default_api; /* used when a site gives no "api"; NULL: "api" is required */
    double default_rps;      /* the site's published limit, used when a site gives no "rps"; 0: "rps" is required */
    /* Read the kind's own settings of the site object O into C->kind_conf
     * (NULL: the kind has none).  0, or -1 with WHY. */
    int (*site_load)(site_config *c, json_object *o, char *why, size_t whylen);
    void (*site_free)(site_config *c);
    int (*board_open)(crawl_board *cb, void **kb, char *why, size_t whylen);
    int (*board_poll)(crawl_board *cb, void *kb);
    int (*board_commit)(crawl_board *cb, void *kb, char *why, size_t whylen);
    void (*board_drop)(crawl_board *cb, void *kb);
    void (*board_close)(void *kb);
    /* The item's own time (when it was posted), in UNIX seconds, or a
     * negative value when it gives none: its lag at publishing is counted
     * (imgfeed_crawler_lag_seconds).  NULL: the kind's items have none. */
    double (*item_time)(json_object *item);
} source_kind;

/* The kind named NAME, or NULL. */
const source_kind *source_find(const char *name);
/* "4chan, vichan, …": every kind, for messages.  A static string. */
const char *source_names(void);

/* --- what the crawler offers a kind (crawler.c) --- */

const site_config *crawl_site(const crawl_board *cb);
const crawler_settings *crawl_settings(const crawl_board *cb);
const char *crawl_board_name(const crawl_board *cb);
/* The path of the board's state file (statefile_path of the state dir). */
const char *crawl_state_path(const crawl_board *cb);
/* The largest json-c tree of one document or item (--max-parse-memory). */
uint64_t crawl_max_tree(const crawl_board *cb);

/* A request to the site: the rate limiter's grant, retries, Retry-After,
 * redirects (http.h), counted in the site's totals and metrics (a body over
 * --max-body as a document refused).  resp is the caller's to release. */
void crawl_get(crawl_board *cb, const http_request *req, http_response *resp);

/* Queue ITEM (borrowed: printed now, and its item_time read) under
 * <site>.<type>.<board>.  When a message is full it is published at once;
 * an item larger than --max-message allows is refused for good (logged
 * with its _id, counted) and passed over.  CRAWL_OK, or CRAWL_STOPPED /
 * CRAWL_FATAL from publishing (then board_drop follows: return it from
 * board_poll). */
int crawl_emit(crawl_board *cb, const char *type, json_object *item);
/* Call between whole units: when --batch-size items are queued, publish
 * them all and commit.  CRAWL_OK, CRAWL_STOPPED or CRAWL_FATAL. */
int crawl_checkpoint(crawl_board *cb);
/* Items queued since the last commit. */
size_t crawl_queued(const crawl_board *cb);

/* A stop was asked for: end the poll at the next whole unit. */
bool crawl_stopping(void);
/* The level of a board's warnings: LOG_WARN, or LOG_DEBUG after the first
 * failed crawl in a row (the crawler said once that the board fails). */
log_level crawl_warn_level(const crawl_board *cb);
/* After this poll succeeds, poll the board again in MS milliseconds rather
 * than after the site's poll_interval (a saturated image category). */
void crawl_poll_after(crawl_board *cb, int64_t ms);
/* The site asked for a pause (reddit's X-Ratelimit-Remaining 0): hold every
 * request of the process to the host of URL for MS milliseconds, as a
 * Retry-After would (the wait ends early for a stop). */
void crawl_hold_host(crawl_board *cb, const char *url, int64_t ms);
/* Count a document read (a thread, a listing) or gone (404) in the site's
 * closing line. */
void crawl_count_read(crawl_board *cb);
void crawl_count_gone(crawl_board *cb);
/* Count a response whose body the kind refused (not JSON, too complex, not
 * the shape of the site's API) in the site's documents refused. */
void crawl_count_refused(crawl_board *cb);

#endif
