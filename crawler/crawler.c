/* crawler.c -- the crawler's core: every board of every site, whatever its kind.
 *
 * One thread a site (site_main).  It keeps, per board, the kind's state
 * (source.h: board_open) and the time of its next poll, and polls the board
 * that is due next with its kind's board_poll.  What every kind shares is
 * here:
 *
 *   - requests (crawl_get): every one takes a grant from the shared rate
 *     limiter, where the site's API host has the site's rps (http.h also
 *     honours 429 and Retry-After for the whole host); a board is polled at
 *     most every poll interval (or what the kind asked: crawl_poll_after);
 *   - items (crawl_emit): printed into the outbox under --max-message, one
 *     message per routing key <site>.<type>.<board>, published with
 *     publisher confirms as messages fill;
 *   - commits: whenever --batch-size items are queued (crawl_checkpoint,
 *     at a whole unit of the kind) and after each poll, everything queued
 *     is published and confirmed, and only then the kind's board_commit
 *     records it in the state and saves it (statefile.h); when publishing
 *     fails or a stop cuts it short, board_drop forgets it, so it is
 *     published again next time;
 *   - failures: a board that fails waits a growing backoff, said once,
 *     while the others go on;
 *   - metrics (crawlmetrics.h): every family registered and every site's
 *     and board's series made from the settings before anything connects;
 *     the HTTP client's observer counts responses, request seconds,
 *     rate-limit waits and retries in the site's series; a board's polls,
 *     items published and their lag (from each item's own time, kept per
 *     routing key from crawl_emit until its message is confirmed) in the
 *     board's.
 *
 * Stopping: the main thread turns the first SIGTERM/SIGINT into
 * crawler_stopping (taking the signal flag, so that publishing still works,
 * for at most the drain of sig.h); each site finishes the unit in hand,
 * publishes and saves what it queued, and ends.
 */
#include "crawler.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backoff.h"
#include "crawlmetrics.h"
#include "http.h"
#include "log.h"
#include "mq.h"
#include "outbox.h"
#include "ratelimit.h"
#include "sig.h"
#include "source.h"
#include "statefile.h"
#include "timeutil.h"
#include "xalloc.h"

#define CRAWLER_SLICE_MS 50
#define CRAWLER_WHY 512
/* A board that keeps failing waits from this long up to the ceiling. */
#define CRAWLER_RETRY_FIRST_MS 5000
#define CRAWLER_RETRY_MAX_MS 600000

enum { CRAWLER_OK = CRAWL_OK, CRAWLER_FAILED = CRAWL_FAILED, CRAWLER_FATAL = CRAWL_FATAL, CRAWLER_STOPPED = CRAWL_STOPPED };

/* Routing keys a board has used, kept so that an item costs no allocation. */
#define CRAWLER_KEYS 4
/* What an item without a time of its own has for one (crawlmetrics_lag). */
#define CRAWLER_NO_TIME (-1.0)

static atomic_bool crawler_stopping;

typedef struct site_stats {
    uint64_t requests, not_modified, read, gone, items, messages, failures;
    uint64_t refused; /* items or messages refused for good (too large, or by the broker) */
} site_stats;

typedef struct site_run site_run;

/* The own times of the items queued under one routing key, oldest first,
 * until their message is confirmed (their lag) or dropped: v[head..n). */
typedef struct crawler_times {
    double *v;
    size_t head, n, cap;
} crawler_times;

/* A routing key <site>.<type>.<board> and its items' times. */
typedef struct crawler_key {
    char *type, *key;
    crawler_times times;
} crawler_key;

struct crawl_board {
    site_run *r;
    const char *name;
    void *kb; /* the kind's state of the board */
    char *state_path;
    crawler_key keys[CRAWLER_KEYS];
    crawlmetrics_board m;
    uint64_t published;           /* items published (confirmed), for polls_since_publish */
    uint64_t polls_since_publish; /* polls in a row that published nothing */
    int64_t next_poll_ns;
    int64_t poll_after_ms; /* asked by the kind for after this poll; -1: the poll interval */
    backoff retry;
    unsigned failures; /* failed crawls in a row: past the first, their warnings go to debug */
    bool crawled;      /* at least once (for --once) */
    bool opened;
};

typedef crawl_board board_run;

struct site_run {
    const crawler_settings *s;
    const site_config *cfg;
    ratelimit *rl;
    http_client *http;
    mq *q;
    board_run *boards;
    outbox out; /* the items gathered, as messages under --max-message */
    site_stats stats;
    crawlmetrics_site m;
    pthread_t thread;
    atomic_bool finished; /* site_main has returned: the thread can be joined */
    bool joined;
    int status;
};

static bool crawler_should_stop(void) { return atomic_load(&crawler_stopping) || sig_stop_requested(); }

/* Sleep until DEADLINE_NS (monotonic), waking early for a stop.  Meanwhile
 * the broker's connection Q is serviced (mq_tick: heartbeats both ways), so
 * that a pause between polls longer than the heartbeat neither gets the
 * connection closed by the broker nor hides a dead link until the next
 * publish: a lost connection is logged and made again (by the next
 * publish) while there is time. */
static void crawler_sleep_until(mq *q, int64_t deadline_ns) {
    while (!crawler_should_stop()) {
        mq_tick(q);
        int64_t left = deadline_ns - time_mono_ns();
        if (left <= 0) return;
        time_sleep_ns(left < CRAWLER_SLICE_MS * TIME_NS_PER_MS ? left : CRAWLER_SLICE_MS * TIME_NS_PER_MS);
    }
}

/* --- what a kind sees (source.h) --- */

const site_config *crawl_site(const crawl_board *b) { return b->r->cfg; }
const crawler_settings *crawl_settings(const crawl_board *b) { return b->r->s; }
const char *crawl_board_name(const crawl_board *b) { return b->name; }
const char *crawl_state_path(const crawl_board *b) { return b->state_path; }
uint64_t crawl_max_tree(const crawl_board *b) { return (uint64_t)b->r->s->max_parse_bytes; }
bool crawl_stopping(void) { return crawler_should_stop(); }
log_level crawl_warn_level(const crawl_board *b) { return b->failures ? LOG_DEBUG : LOG_WARN; }
void crawl_poll_after(crawl_board *b, int64_t ms) { b->poll_after_ms = ms < 0 ? 0 : ms; }
void crawl_count_read(crawl_board *b) { b->r->stats.read++; }
void crawl_count_gone(crawl_board *b) { b->r->stats.gone++; }
void crawl_count_refused(crawl_board *b) { metrics_inc(b->r->m.refused); }
size_t crawl_queued(const crawl_board *b) { return b->r->out.items; }

void crawl_hold_host(crawl_board *b, const char *url, int64_t ms) {
    char host[256];
    if (ms <= 0 || http_url_host(url, host, sizeof host) != 0) return;
    ratelimit_pause(b->r->rl, host, time_mono_ns() + ms * TIME_NS_PER_MS);
}

void crawl_get(crawl_board *b, const http_request *req, http_response *resp) {
    site_run *r = b->r;
    http_get(r->http, req, resp);
    r->stats.requests += (uint64_t)resp->attempts;
    if (resp->result == HTTP_NOT_MODIFIED) r->stats.not_modified++;
    if (resp->result == HTTP_TOO_LARGE) metrics_inc(r->m.refused);
}

/* --- the HTTP client's observer: the site's metrics --- */

static void crawler_on_response(void *arg, long status, double seconds) {
    site_run *r = arg;
    metrics_inc(crawlmetrics_status(&r->m, status));
    metrics_observe(r->m.request_seconds, seconds);
}

static void crawler_on_ratelimit_wait(void *arg, double seconds) {
    site_run *r = arg;
    metrics_inc(r->m.ratelimit_waits);
    metrics_add_double(r->m.ratelimit_wait_seconds, seconds);
}

static void crawler_on_retry(void *arg) {
    site_run *r = arg;
    metrics_inc(r->m.backoffs);
}

/* --- items' times, until their message is confirmed --- */

static void crawler_times_push(crawler_times *t, double when) {
    if (t->n == t->cap) {
        if (t->head >= t->cap / 2 && t->head) { /* half is gone already: move the rest down */
            memmove(t->v, t->v + t->head, (t->n - t->head) * sizeof *t->v);
            t->n -= t->head;
            t->head = 0;
        } else {
            t->cap = t->cap ? 2 * t->cap : 64;
            t->v = xrealloc(t->v, t->cap * sizeof *t->v);
        }
    }
    t->v[t->n++] = when;
}

/* The N oldest items were confirmed at NOW (LAG: count their lag into it)
 * or refused (LAG NULL). */
static void crawler_times_take(crawler_times *t, size_t n, const crawlmetrics_board *lag, double now) {
    if (n > t->n - t->head) n = t->n - t->head;
    for (size_t i = 0; lag && i < n; i++)
        crawlmetrics_lag(lag, now, t->v[t->head + i]);
    t->head += n;
    if (t->head == t->n) t->head = t->n = 0;
}

static void crawler_times_clear(crawler_times *t) { t->head = t->n = 0; }

/* The key of board B whose routing key is KEY, or NULL. */
static crawler_key *crawler_key_named(board_run *b, const char *key) {
    for (size_t i = 0; i < CRAWLER_KEYS && b->keys[i].key; i++)
        if (strcmp(b->keys[i].key, key) == 0) return &b->keys[i];
    return NULL;
}

/* The routing key <site>.<type>.<board>. */
static crawler_key *crawler_key_of(board_run *b, const char *type) {
    size_t i = 0;
    for (; i < CRAWLER_KEYS && b->keys[i].type; i++)
        if (strcmp(b->keys[i].type, type) == 0) return &b->keys[i];
    if (i == CRAWLER_KEYS) { /* a kind with more types than kept: forget the oldest (and its items' lag) */
        free(b->keys[0].type);
        free(b->keys[0].key);
        free(b->keys[0].times.v);
        memmove(&b->keys[0], &b->keys[1], (CRAWLER_KEYS - 1) * sizeof b->keys[0]);
        i = CRAWLER_KEYS - 1;
        memset(&b->keys[i], 0, sizeof b->keys[i]);
    }
    b->keys[i].type = xstrdup(type);
    b->keys[i].key = xasprintf("%s.%s.%s", b->r->cfg->name, type, b->name);
    return &b->keys[i];
}

/* Nothing queued is recorded: the kind forgets its pending state, so that
 * it is published again next time. */
static void crawler_drop(board_run *b) {
    outbox_clear(&b->r->out);
    for (size_t i = 0; i < CRAWLER_KEYS; i++)
        crawler_times_clear(&b->keys[i].times);
    b->r->cfg->kind->board_drop(b, b->kb);
}

/* The messages MSGS[0..N) of the last outbox_ready were confirmed (those
 * marked refused were not and never will be): count the items published
 * in board B's metrics, with their lag.  outbox_ready hands out the sealed
 * messages in the outbox's order, so MSGS[j] is its j-th sealed one, which
 * says how many items it holds. */
static void crawler_count_published(board_run *b, const mq_message *msgs, size_t n) {
    const outbox *o = &b->r->out;
    double now = (double)time_wall_ms() / 1000;
    uint64_t published = 0;
    size_t j = 0;
    for (size_t i = 0; i < o->n && j < n; i++) {
        const outbox_msg *m = &o->v[i];
        if (!m->sealed) continue;
        const mq_message *sent = &msgs[j++];
        crawler_key *k = crawler_key_named(b, m->routing_key);
        if (k) crawler_times_take(&k->times, m->items, sent->refused ? NULL : &b->m, now);
        if (!sent->refused) published += m->items;
    }
    if (!published) return;
    b->published += published;
    metrics_add(b->m.published, published);
    metrics_set(b->m.last_publish, now);
}

/* Publish the messages of the outbox that are ready: the sealed ones, or
 * with ALL every one.  CRAWLER_OK (a message refused for good is logged,
 * counted and passed over: it can never be published), CRAWLER_STOPPED, or
 * CRAWLER_FATAL (the broker gave up); on those two the queue is dropped. */
static int crawler_publish(board_run *b, bool all) {
    site_run *r = b->r;
    mq_message *msgs;
    size_t items;
    size_t n = outbox_ready(&r->out, all, &msgs, &items);
    if (!n) return CRAWLER_OK;
    int rc = mq_publish(r->q, mq_target_name(r->q, MQ_EXCHANGE_RAW), msgs, n);
    if (rc == MQ_STOPPED) {
        log_info("%s /%s/: stopped before %zu items were confirmed: they are published again next time",
                 r->cfg->name, b->name, items);
        crawler_drop(b);
        return CRAWLER_STOPPED;
    }
    if (rc != MQ_OK && rc != MQ_UNROUTABLE && rc != MQ_REFUSED) {
        log_error("%s /%s/: cannot publish %zu items: %s", r->cfg->name, b->name, items, mq_status_text(rc));
        crawler_drop(b);
        return CRAWLER_FATAL;
    }
    for (size_t i = 0; i < n; i++)
        if (msgs[i].refused) {
            log_error("%s /%s/: a message of %zu bytes under %s is refused for good and passed over: %s",
                      r->cfg->name, b->name, msgs[i].len, msgs[i].routing_key, msgs[i].why);
            r->stats.refused++;
        }
    crawler_count_published(b, msgs, n);
    r->stats.items += items;
    r->stats.messages += n;
    outbox_done(&r->out);
    if (!r->out.items) /* every time was taken; but should one be left, it is not another item's */
        for (size_t i = 0; i < CRAWLER_KEYS; i++)
            crawler_times_clear(&b->keys[i].times);
    return CRAWLER_OK;
}

/* Publish everything queued for board B, then let its kind record it and
 * save the state.  CRAWLER_OK, CRAWLER_STOPPED, or CRAWLER_FATAL (broker
 * gone for good, state not writable: nothing is recorded, so it is
 * published again next time). */
static int crawler_flush(board_run *b) {
    char why[CRAWLER_WHY];
    int rc = crawler_publish(b, true);
    if (rc != CRAWLER_OK) return rc;
    if (b->r->cfg->kind->board_commit(b, b->kb, why, sizeof why) != 0) {
        log_error("%s /%s/: %s", b->r->cfg->name, b->name, why);
        return CRAWLER_FATAL;
    }
    return CRAWLER_OK;
}

int crawl_emit(crawl_board *b, const char *type, json_object *item) {
    site_run *r = b->r;
    size_t len;
    const char *text =
        json_object_to_json_string_length(item, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    size_t max = r->out.max_bytes;
    if (max && len + 2 > max) { /* even alone, "[item]" is over --max-message: no message can carry it */
        json_object *id;
        log_error("%s /%s/: item %s is refused for good and passed over: %zu bytes, more than --max-message "
                  "(%zu bytes) allows",
                  r->cfg->name, b->name,
                  json_object_object_get_ex(item, "_id", &id) ? json_object_get_string(id) : "(without _id)", len,
                  max);
        r->stats.refused++;
        return CRAWLER_OK;
    }
    crawler_key *k = crawler_key_of(b, type);
    outbox_add(&r->out, k->key, text, len);
    crawler_times_push(&k->times, r->cfg->kind->item_time ? r->cfg->kind->item_time(item) : CRAWLER_NO_TIME);
    return r->out.sealed_bytes ? crawler_publish(b, false) : CRAWLER_OK;
}

int crawl_checkpoint(crawl_board *b) {
    return b->r->out.items >= (size_t)b->r->s->batch_size ? crawler_flush(b) : CRAWLER_OK;
}

/* --- one site --- */

static board_run *crawler_next_board(site_run *r) {
    board_run *next = NULL;
    for (size_t i = 0; i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        if (r->s->once && b->crawled) continue;
        if (!next || b->next_poll_ns < next->next_poll_ns) next = b;
    }
    return next;
}

/* One poll of board B, and what follows it: publish and commit what it
 * queued (after a failed or stopped poll too: what was confirmed counts),
 * or drop it. */
static int crawler_board(board_run *b) {
    const source_kind *k = b->r->cfg->kind;
    char why[CRAWLER_WHY];
    if (!b->opened) {
        if (k->board_open(b, &b->kb, why, sizeof why) != 0) {
            log_error("%s /%s/: %s", b->r->cfg->name, b->name, why);
            return CRAWLER_FATAL;
        }
        b->opened = true;
    }
    uint64_t items_before = b->r->stats.items, published_before = b->published;
    b->poll_after_ms = -1;
    metrics_inc(b->m.polls);
    int rc = k->board_poll(b, b->kb);
    if (rc == CRAWLER_FATAL) {
        crawler_drop(b);
        return rc;
    }
    int frc = crawler_flush(b);
    if (frc != CRAWLER_OK) rc = frc;
    b->polls_since_publish = b->published > published_before ? 0 : b->polls_since_publish + 1;
    metrics_set(b->m.polls_since_publish, (double)b->polls_since_publish);
    uint64_t items = b->r->stats.items - items_before;
    if (items) log_info("%s /%s/: %" PRIu64 " new items published", b->r->cfg->name, b->name, items);
    return rc;
}

/* Site R's boards and the series of the site and of each board, before
 * anything connects (crawler_run). */
static void crawler_site_prepare(site_run *r) {
    crawlmetrics_site_init(&r->m, r->cfg->name);
    r->boards = xcalloc(r->cfg->nboards, sizeof *r->boards);
    for (size_t i = 0; i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        b->r = r;
        b->name = r->cfg->boards[i];
        crawlmetrics_board_init(&b->m, r->cfg->name, b->name);
    }
}

static int crawler_site_setup(site_run *r) {
    char why[CRAWLER_WHY];
    int64_t now = time_mono_ns();
    for (size_t i = 0; i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        b->next_poll_ns = now;
        backoff_init(&b->retry, CRAWLER_RETRY_FIRST_MS, CRAWLER_RETRY_MAX_MS);
        b->state_path = statefile_path(r->s->state_dir, r->cfg->name, b->name, why, sizeof why);
        if (!b->state_path) {
            log_error("%s: %s", r->cfg->name, why);
            return -1;
        }
    }
    /* Every board's state is read before anything is crawled: a state that
     * cannot be read stops the crawler before it publishes anything. */
    for (size_t i = 0; i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        if (r->cfg->kind->board_open(b, &b->kb, why, sizeof why) != 0) {
            log_error("%s: %s", r->cfg->name, why);
            return -1;
        }
        b->opened = true;
    }
    http_options ho;
    http_options_init(&ho);
    ho.user_agent = r->cfg->user_agent;
    ho.timeout_ms = r->s->request_timeout_ms;
    ho.max_retries = (int)r->s->retries;
    ho.max_bytes = r->s->max_body_bytes;
    r->http = http_client_new(&ho, r->rl);
    if (!r->http) return -1;
    http_observer obs = {.response = crawler_on_response,
                         .ratelimit_wait = crawler_on_ratelimit_wait,
                         .retry = crawler_on_retry,
                         .userdata = r};
    http_client_set_observer(r->http, &obs);
    mq_options mo;
    char *conn_name = xasprintf("imgfeed-crawler %s", r->cfg->name);
    mq_options_init(&mo, &r->s->common, conn_name);
    int rc = mq_new(&mo, &r->q);
    free(conn_name);
    if (rc != MQ_OK) return rc == MQ_STOPPED ? 1 : -1;
    outbox_init(&r->out, (size_t)mq_max_message(r->q)); /* nothing was gathered yet */
    return 0;
}

static void site_crawl(site_run *r);

/* A failed crawl of board B: try again after a growing delay, up to
 * CRAWLER_RETRY_MAX_MS, and say so once; the board's further warnings go to
 * debug until a crawl succeeds. */
static void crawler_board_failed(site_run *r, board_run *b) {
    r->stats.failures++;
    int64_t delay = backoff_next_ms(&b->retry);
    if (b->failures++ == 0)
        log_warn("%s /%s/: the crawl failed; trying again in %.1f s, then after delays doubling up to %d min "
                 "(further failures are logged at debug level until it recovers)",
                 r->cfg->name, b->name, (double)delay / 1000, CRAWLER_RETRY_MAX_MS / 60000);
    else
        log_debug("%s /%s/: failed crawl %u in a row; trying again in %.1f s", r->cfg->name, b->name, b->failures,
                  (double)delay / 1000);
    b->next_poll_ns = time_mono_ns() + delay * TIME_NS_PER_MS;
}

/* A crawl of board B that STARTED at that time succeeded. */
static void crawler_board_ok(site_run *r, board_run *b, int64_t started) {
    if (b->failures)
        log_info("%s /%s/: crawled again after %u failed crawls in a row", r->cfg->name, b->name, b->failures);
    b->failures = 0;
    backoff_reset(&b->retry);
    int64_t after = b->poll_after_ms >= 0 ? b->poll_after_ms : r->cfg->poll_interval_ms;
    b->next_poll_ns = started + after * TIME_NS_PER_MS;
}

static void *site_main(void *arg) {
    site_run *r = arg;
    site_crawl(r);
    atomic_store(&r->finished, true);
    return NULL;
}

static void site_crawl(site_run *r) {
    outbox_init(&r->out, 0);
    int rc = crawler_site_setup(r);
    if (rc != 0) {
        r->status = rc < 0 ? 1 : 0;
        return;
    }
    log_info("%s: crawling %zu boards at %.3g requests per second", r->cfg->name, r->cfg->nboards, r->cfg->rps);
    board_run *b;
    while (!crawler_should_stop() && (b = crawler_next_board(r))) {
        crawler_sleep_until(r->q, b->next_poll_ns);
        if (crawler_should_stop()) break;
        int64_t started = time_mono_ns();
        rc = crawler_board(b);
        b->crawled = true;
        if (rc == CRAWLER_FATAL) {
            r->status = 1;
            break;
        }
        if (rc == CRAWLER_STOPPED) break;
        if (rc == CRAWLER_FAILED)
            crawler_board_failed(r, b);
        else
            crawler_board_ok(r, b, started);
    }
    log_info("%s: %" PRIu64 " requests (%" PRIu64 " not modified), %" PRIu64 " documents read, %" PRIu64
             " gone, %" PRIu64 " items published in %" PRIu64 " messages, %" PRIu64 " refused for good, %" PRIu64
             " failed board crawls",
             r->cfg->name, r->stats.requests, r->stats.not_modified, r->stats.read, r->stats.gone, r->stats.items,
             r->stats.messages, r->stats.refused, r->stats.failures);
}

static void site_release(site_run *r) {
    for (size_t i = 0; r->boards && i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        if (b->opened) r->cfg->kind->board_close(b->kb);
        free(b->state_path);
        for (size_t k = 0; k < CRAWLER_KEYS; k++) {
            free(b->keys[k].type);
            free(b->keys[k].key);
            free(b->keys[k].times.v);
        }
    }
    free(r->boards);
    outbox_release(&r->out);
    http_client_free(r->http);
    mq_free(r->q);
}

/* --- the process --- */

/* Whether site C sends requests to HOST (its api or one of its templates). */
static bool crawler_site_uses_host(const site_config *c, const char *host) {
    char h[256];
    if (c->api && http_url_host(c->api, h, sizeof h) == 0 && strcmp(h, host) == 0) return true;
    for (size_t i = 0; i < SOURCE_TEMPLATES_MAX; i++)
        if (c->urls[i] && http_url_host(c->urls[i], h, sizeof h) == 0 && strcmp(h, host) == 0) return true;
    return false;
}

/* Every host site C may ask (its api and the hosts of its templates: reddit
 * asks oauth.reddit.com and www.reddit.com) gets the site's rps; sites that
 * share a host share the strictest rate. */
static void crawler_set_rates(ratelimit *rl, const sites *list, const site_config *c) {
    for (size_t u = 0; u <= SOURCE_TEMPLATES_MAX; u++) {
        const char *url = u < SOURCE_TEMPLATES_MAX ? c->urls[u] : c->api;
        char host[256];
        if (!url || http_url_host(url, host, sizeof host) != 0) continue;
        double rps = c->rps;
        for (size_t k = 0; k < list->n; k++)
            if (list->v[k].rps < rps && crawler_site_uses_host(&list->v[k], host)) rps = list->v[k].rps;
        ratelimit_set_rate(rl, host, rps);
    }
}

int crawler_run(const crawler_settings *s, const sites *list) {
    crawlmetrics_register(); /* every family, before anything connects */
    if (http_global_init() != 0) return 1;
    ratelimit *rl = ratelimit_new(0);
    if (!rl) {
        log_error("cannot create the rate limiter");
        return 1;
    }
    site_run *runs = xcalloc(list->n, sizeof *runs);
    for (size_t i = 0; i < list->n; i++) {
        const site_config *c = &list->v[i];
        crawler_set_rates(rl, list, c);
        runs[i].s = s;
        runs[i].cfg = c;
        runs[i].rl = rl;
        atomic_init(&runs[i].finished, false);
        crawler_site_prepare(&runs[i]);
    }
    atomic_store(&crawler_stopping, false);
    size_t started = 0;
    for (; started < list->n; started++)
        if (pthread_create(&runs[started].thread, NULL, site_main, &runs[started]) != 0) {
            log_error("cannot start a thread for site %s", runs[started].cfg->name);
            atomic_store(&crawler_stopping, true);
            break;
        }
    /* Wait, turning the first stop request into crawler_stopping. */
    for (size_t done = 0; done < started;) {
        if (sig_stop_requested() && !atomic_load(&crawler_stopping)) {
            log_info("stop requested: finishing the threads in hand");
            atomic_store(&crawler_stopping, true);
            sig_take_stop();
        }
        done = 0;
        for (size_t i = 0; i < started; i++) {
            if (!runs[i].joined && atomic_load(&runs[i].finished)) {
                pthread_join(runs[i].thread, NULL);
                runs[i].joined = true;
            }
            done += runs[i].joined;
        }
        if (done < started) time_sleep_ns(CRAWLER_SLICE_MS * TIME_NS_PER_MS);
    }
    int status = started == list->n ? 0 : 1;
    for (size_t i = 0; i < list->n; i++) {
        if (runs[i].status) status = runs[i].status;
        site_release(&runs[i]);
    }
    free(runs);
    ratelimit_free(rl);
    return status;
}
