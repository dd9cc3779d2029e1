/* crawlmetrics.c -- the crawler's families and series; see crawlmetrics.h.
 *
 * Every family is one row of crawlmetrics_table: its name, type, labels
 * and help text are written once, here.
 */
#include "crawlmetrics.h"

typedef enum crawlmetrics_type { CM_COUNTER, CM_GAUGE, CM_HISTOGRAM } crawlmetrics_type;

typedef enum crawlmetrics_id {
    CM_PUBLISHED,
    CM_POLLS,
    CM_POLLS_SINCE_PUBLISH,
    CM_LAST_PUBLISH,
    CM_LAG,
    CM_RESPONSES,
    CM_REQUEST_SECONDS,
    CM_RATELIMIT_WAITS,
    CM_RATELIMIT_WAIT_SECONDS,
    CM_BACKOFFS,
    CM_REFUSED,
    CM_COUNT
} crawlmetrics_id;

/* The lag of an item: a second to a week. */
static const double crawlmetrics_lag_bounds[] = {1,   5,    15,   30,    60,    120,   300,
                                                 600, 1800, 3600, 10800, 43200, 86400, 604800};

static const struct {
    crawlmetrics_type type;
    const char *name, *labels, *help;
} crawlmetrics_table[CM_COUNT] = {
    [CM_PUBLISHED] = {CM_COUNTER, "imgfeed_items_published_total", "site,board", "items published"},
    [CM_POLLS] = {CM_COUNTER, "imgfeed_crawler_polls_total", "site,board",
                  "polls of a board's index (threads.json, listing or api page)"},
    [CM_POLLS_SINCE_PUBLISH] = {CM_GAUGE, "imgfeed_crawler_polls_since_publish", "site,board",
                                "polls in a row that published nothing new"},
    [CM_LAST_PUBLISH] = {CM_GAUGE, "imgfeed_crawler_last_publish_timestamp_seconds", "site,board",
                         "unix time of the last publish (0: none yet)"},
    [CM_LAG] = {CM_HISTOGRAM, "imgfeed_crawler_lag_seconds", "site,board", "publish time minus the item's own time"},
    [CM_RESPONSES] = {CM_COUNTER, "imgfeed_crawler_http_responses_total", "site,status",
                      "http responses by status (none: no answer)"},
    [CM_REQUEST_SECONDS] = {CM_HISTOGRAM, "imgfeed_crawler_http_request_seconds", "site",
                            "seconds of one http request"},
    [CM_RATELIMIT_WAITS] = {CM_COUNTER, "imgfeed_crawler_ratelimit_waits_total", "site",
                            "requests that had to wait for the rate limit"},
    [CM_RATELIMIT_WAIT_SECONDS] = {CM_COUNTER, "imgfeed_crawler_ratelimit_wait_seconds_total", "site",
                                   "seconds spent waiting for the rate limit"},
    [CM_BACKOFFS] = {CM_COUNTER, "imgfeed_crawler_backoffs_total", "site",
                     "retries after a failure (timeout, 5xx, 429, connection)"},
    [CM_REFUSED] = {CM_COUNTER, "imgfeed_crawler_documents_refused_total", "site",
                    "responses refused: malformed json, too large, too complex"},
};

static metrics_family *crawlmetrics_family(crawlmetrics_id id) {
    const char *name = crawlmetrics_table[id].name, *help = crawlmetrics_table[id].help,
               *labels = crawlmetrics_table[id].labels;
    switch (crawlmetrics_table[id].type) {
    case CM_COUNTER: return metrics_counter(name, help, labels);
    case CM_GAUGE: return metrics_gauge(name, help, labels);
    case CM_HISTOGRAM: break;
    }
    if (id == CM_LAG)
        return metrics_histogram(name, help, labels, crawlmetrics_lag_bounds,
                                 sizeof crawlmetrics_lag_bounds / sizeof crawlmetrics_lag_bounds[0]);
    return metrics_histogram(name, help, labels, NULL, 0); /* METRICS_SECONDS_BUCKETS */
}

void crawlmetrics_register(void) {
    for (int id = 0; id < CM_COUNT; id++)
        crawlmetrics_family((crawlmetrics_id)id);
}

void crawlmetrics_site_init(crawlmetrics_site *m, const char *site) {
    m->name = site;
    m->request_seconds = metrics_get(crawlmetrics_family(CM_REQUEST_SECONDS), site);
    m->ratelimit_waits = metrics_get(crawlmetrics_family(CM_RATELIMIT_WAITS), site);
    m->ratelimit_wait_seconds = metrics_get(crawlmetrics_family(CM_RATELIMIT_WAIT_SECONDS), site);
    m->backoffs = metrics_get(crawlmetrics_family(CM_BACKOFFS), site);
    m->refused = metrics_get(crawlmetrics_family(CM_REFUSED), site);
    m->nstatuses = 0;
}

void crawlmetrics_board_init(crawlmetrics_board *m, const char *site, const char *board) {
    m->published = metrics_get(crawlmetrics_family(CM_PUBLISHED), site, board);
    m->polls = metrics_get(crawlmetrics_family(CM_POLLS), site, board);
    m->polls_since_publish = metrics_get(crawlmetrics_family(CM_POLLS_SINCE_PUBLISH), site, board);
    m->last_publish = metrics_get(crawlmetrics_family(CM_LAST_PUBLISH), site, board);
    m->lag = metrics_get(crawlmetrics_family(CM_LAG), site, board);
}

metrics_series *crawlmetrics_status(crawlmetrics_site *m, long status) {
    const char *label = metrics_status_label(status);
    for (size_t i = 0; i < m->nstatuses; i++)
        if (m->statuses[i].label == label) return m->statuses[i].series;
    metrics_series *s = metrics_get(crawlmetrics_family(CM_RESPONSES), m->name, label);
    if (m->nstatuses < CRAWLMETRICS_STATUSES) { /* else looked up again next time: correct, only slower */
        m->statuses[m->nstatuses].label = label;
        m->statuses[m->nstatuses].series = s;
        m->nstatuses++;
    }
    return s;
}

void crawlmetrics_lag(const crawlmetrics_board *m, double now, double item_time) {
    if (!(item_time >= 0)) return; /* none given (or NaN) */
    double lag = now - item_time;
    metrics_observe(m->lag, lag > 0 ? lag : 0);
}
