/* crawlmetrics.h -- the crawler's Prometheus metrics (metrics.h; the list
 * is docs/metrics.md's "Crawler").
 *
 * crawlmetrics_register() registers every family the crawler exposes; the
 * crawler calls it when it starts, before it connects anywhere, so that a
 * scrape of an idle crawler lists them all.  The series are made then too,
 * from the settings: a site's (crawlmetrics_site_init) and each of its
 * boards' (crawlmetrics_board_init), labelled with the names the sites file
 * gives.  Whatever a site answers never becomes a label: what a poll
 * publishes is counted in the series of the board being polled, and an
 * HTTP status is one of metrics_status_label's fixed list ("none" when no
 * answer came).
 *
 * The structs keep their series, so an update on the hot path is one
 * relaxed atomic (metrics.h) and no lookup by name.  A site's series by
 * status are made at its first answer with that status and kept in the
 * site's table; a crawlmetrics_site is used by its site's thread only.
 */
#ifndef IMGFEED_CRAWLMETRICS_H
#define IMGFEED_CRAWLMETRICS_H

#include <stddef.h>

#include "metrics.h"

/* More than metrics_status_label has labels. */
#define CRAWLMETRICS_STATUSES 48

/* The series of one board: labels {site, board}. */
typedef struct crawlmetrics_board {
    metrics_series *published;           /* imgfeed_items_published_total */
    metrics_series *polls;               /* imgfeed_crawler_polls_total */
    metrics_series *polls_since_publish; /* imgfeed_crawler_polls_since_publish */
    metrics_series *last_publish;        /* imgfeed_crawler_last_publish_timestamp_seconds */
    metrics_series *lag;                 /* imgfeed_crawler_lag_seconds */
} crawlmetrics_board;

/* The series of one site: label {site}, and {site, status} for responses. */
typedef struct crawlmetrics_site {
    const char *name;                       /* borrowed from the settings */
    metrics_series *request_seconds;        /* imgfeed_crawler_http_request_seconds */
    metrics_series *ratelimit_waits;        /* imgfeed_crawler_ratelimit_waits_total */
    metrics_series *ratelimit_wait_seconds; /* imgfeed_crawler_ratelimit_wait_seconds_total */
    metrics_series *backoffs;               /* imgfeed_crawler_backoffs_total */
    metrics_series *refused;                /* imgfeed_crawler_documents_refused_total */
    struct {
        const char *label; /* metrics_status_label's own string: compared by address */
        metrics_series *series;
    } statuses[CRAWLMETRICS_STATUSES]; /* imgfeed_crawler_http_responses_total, as met */
    size_t nstatuses;
} crawlmetrics_site;

/* Register every family of the crawler (idempotent). */
void crawlmetrics_register(void);

/* The series of site SITE (borrowed: it must outlive M). */
void crawlmetrics_site_init(crawlmetrics_site *m, const char *site);
/* The series of board BOARD of site SITE. */
void crawlmetrics_board_init(crawlmetrics_board *m, const char *site, const char *board);

/* The series of the site's responses with status STATUS (0: none arrived). */
metrics_series *crawlmetrics_status(crawlmetrics_site *m, long status);

/* An item published at NOW (UNIX seconds) whose own time is ITEM_TIME
 * (UNIX seconds; negative: it has none, nothing is observed): its lag into
 * the board's histogram, 0 when the site's clock is ahead of ours. */
void crawlmetrics_lag(const crawlmetrics_board *m, double now, double item_time);

#endif
