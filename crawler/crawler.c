/* crawler.c -- crawling boards: threads.json, the threads that changed, new posts.
 *
 * One thread a site (site_main).  It keeps, per board, the crawl state
 * (crawlstate.h) and the time of its next poll, and crawls the board that is
 * due next.  A board's crawl (crawler_board):
 *
 *   1. GET threads.json with If-Modified-Since; 304 ends it.
 *   2. Forget the threads no longer listed (archived, pruned).
 *   3. For each listed thread whose last_modified (or, where the site gives
 *      none, reply count) differs from the state's, GET its JSON
 *      (conditional too).  404: the thread is gone; it stays a tombstone
 *      while threads.json lists it unchanged, and is not asked for again.
 *      Otherwise its posts newer than the last one published are queued:
 *      the opening post under <site>.thread.<board>, replies under
 *      <site>.post.<board>.
 *   4. Whenever the queue holds --batch-size items (whole threads only), and
 *      at the end: publish one message per routing key with publisher
 *      confirms, then update the state of those threads and save it.
 *   5. Only when every thread was handled is the new threads.json
 *      Last-Modified saved; a thread that failed (500, broken JSON) is tried
 *      again at the next poll.
 *
 * Politeness: every request takes a grant from the shared rate limiter,
 * where the site's API host has the site's rps (http.h also honours 429
 * and Retry-After for the whole host); threads.json of a board is asked at
 * most every poll interval; a board that fails waits a growing backoff
 * while the others go on.
 *
 * Stopping: the main thread turns the first SIGTERM/SIGINT into
 * crawler_stopping (taking the signal flag, so that publishing still works);
 * each site finishes the thread in hand, publishes and saves what it
 * queued, and ends.  A second signal makes the broker and HTTP calls give
 * up at once.
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
#include "crawlstate.h"
#include "http.h"
#include "log.h"
#include "mq.h"
#include "outbox.h"
#include "ratelimit.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define CRAWLER_SLICE_MS 50
#define CRAWLER_WHY 512
/* A board that keeps failing waits from this long up to the ceiling. */
#define CRAWLER_RETRY_FIRST_MS 5000
#define CRAWLER_RETRY_MAX_MS 600000

/* CRAWLER_STOPPED: a stop cut the crawl short; what was not confirmed is
 * not recorded (published again next time), and the process exits 0. */
enum { CRAWLER_OK = 0, CRAWLER_FAILED = -1, CRAWLER_FATAL = -2, CRAWLER_STOPPED = -3 };
enum { CRAWLER_KEY_THREAD = 0, CRAWLER_KEY_POST = 1 };

static atomic_bool crawler_stopping;

typedef struct board_run {
    const char *name;
    char *keys[2]; /* <site>.thread.<board>, <site>.post.<board> */
    crawlstate_board state;
    int64_t next_poll_ns;
    backoff retry;
    unsigned failures; /* failed crawls in a row: past the first, their warnings go to debug */
    bool crawled;      /* at least once (for --once) */
} board_run;

/* What the state will say of a thread once its queued posts are confirmed. */
typedef struct thread_update {
    int64_t no, last_modified, replies, last_post;
    char http_lm[CRAWLSTATE_HTTP_DATE];
    bool gone;
} thread_update;

typedef struct site_stats {
    uint64_t requests, not_modified, threads_fetched, threads_gone, posts, messages, failures;
    uint64_t refused; /* posts or messages refused for good (too large, or by the broker) */
} site_stats;

typedef struct site_run {
    const crawler_settings *s;
    const site_config *cfg;
    ratelimit *rl;
    chanapi_site api;
    http_client *http;
    mq *q;
    board_run *boards;
    outbox out; /* the posts gathered, as messages under --max-message */
    thread_update *updates;
    size_t nupdates, updates_cap;
    site_stats stats;
    pthread_t thread;
    atomic_bool finished; /* site_main has returned: the thread can be joined */
    bool joined;
    int status;
} site_run;

static bool crawler_should_stop(void) { return atomic_load(&crawler_stopping) || sig_stop_requested(); }

/* Sleep until DEADLINE_NS (monotonic), waking early for a stop. */
static void crawler_sleep_until(int64_t deadline_ns) {
    while (!crawler_should_stop()) {
        int64_t left = deadline_ns - time_mono_ns();
        if (left <= 0) return;
        time_sleep_ns(left < CRAWLER_SLICE_MS * TIME_NS_PER_MS ? left : CRAWLER_SLICE_MS * TIME_NS_PER_MS);
    }
}

/* --- HTTP --- */

/* The level of a board's warnings: after its first failed crawl in a row,
 * they go to debug (crawler_board_failed said it once). */
static log_level crawler_warn_level(const board_run *b) { return b->failures ? LOG_DEBUG : LOG_WARN; }

/* GET URL, conditional on LAST_MODIFIED when given. */
static void crawler_get(site_run *r, const char *url, const char *last_modified, http_response *resp) {
    http_request req = {.url = url, .if_modified_since = last_modified && *last_modified ? last_modified : NULL};
    http_get(r->http, &req, resp);
    r->stats.requests += (uint64_t)resp->attempts;
    if (resp->result == HTTP_NOT_MODIFIED) r->stats.not_modified++;
}

/* --- queueing and publishing --- */

static void crawler_queue_update(site_run *r, const thread_update *u) {
    if (r->nupdates == r->updates_cap) {
        r->updates_cap = r->updates_cap ? 2 * r->updates_cap : 64;
        r->updates = xrealloc(r->updates, r->updates_cap * sizeof *r->updates);
    }
    r->updates[r->nupdates++] = *u;
}

static void crawler_clear_queue(site_run *r) {
    outbox_clear(&r->out);
    r->nupdates = 0;
}

/* Publish the messages of the outbox that are ready: the sealed ones, or
 * with ALL every one.  CRAWLER_OK (a message refused for good is logged,
 * counted and passed over: it can never be published), CRAWLER_STOPPED, or
 * CRAWLER_FATAL (the broker gave up); on those two the queue is cleared and
 * nothing is recorded, so it is published again next time. */
static int crawler_publish(site_run *r, board_run *b, bool all) {
    mq_message *msgs;
    size_t items;
    size_t n = outbox_ready(&r->out, all, &msgs, &items);
    if (!n) return CRAWLER_OK;
    int rc = mq_publish(r->q, mq_target_name(r->q, MQ_EXCHANGE_RAW), msgs, n);
    if (rc == MQ_STOPPED) {
        log_info("%s /%s/: stopped before %zu posts were confirmed: they are published again next time",
                 r->cfg->name, b->name, items);
        crawler_clear_queue(r);
        return CRAWLER_STOPPED;
    }
    if (rc != MQ_OK && rc != MQ_UNROUTABLE && rc != MQ_REFUSED) {
        log_error("%s /%s/: cannot publish %zu posts: %s", r->cfg->name, b->name, items, mq_status_text(rc));
        crawler_clear_queue(r);
        return CRAWLER_FATAL;
    }
    for (size_t i = 0; i < n; i++)
        if (msgs[i].refused) {
            log_error("%s /%s/: a message of %zu bytes under %s is refused for good and passed over: %s",
                      r->cfg->name, b->name, msgs[i].len, msgs[i].routing_key, msgs[i].why);
            r->stats.refused++;
        }
    r->stats.posts += items;
    r->stats.messages += n;
    outbox_done(&r->out);
    return CRAWLER_OK;
}

/* Publish everything queued for board B, then record it in the state and
 * save the state.  CRAWLER_OK, CRAWLER_STOPPED, or CRAWLER_FATAL (broker
 * gone for good, state not writable: nothing is recorded, so it is
 * published again next time). */
static int crawler_flush(site_run *r, board_run *b) {
    char why[CRAWLER_WHY];
    int rc = crawler_publish(r, b, true);
    if (rc != CRAWLER_OK) return rc;
    if (!r->nupdates) return CRAWLER_OK;
    for (size_t i = 0; i < r->nupdates; i++) {
        const thread_update *u = &r->updates[i];
        crawlstate_thread *t = crawlstate_get(&b->state, u->no);
        t->last_modified = u->last_modified;
        t->replies = u->replies;
        if (u->last_post > t->last_post) t->last_post = u->last_post;
        snprintf(t->http_lm, sizeof t->http_lm, "%s", u->http_lm);
        t->gone = u->gone;
    }
    crawler_clear_queue(r);
    if (crawlstate_save(&b->state, why, sizeof why) != 0) {
        log_error("%s /%s/: %s", r->cfg->name, b->name, why);
        return CRAWLER_FATAL;
    }
    return CRAWLER_OK;
}

/* One thread's walk (chanapi_thread_each): where its posts go. */
typedef struct thread_walk {
    site_run *r;
    board_run *b;
    thread_update *u;
    bool known; /* the state knew the thread: only posts after u->last_post are new */
    int rc;     /* what stopped the walk: CRAWLER_STOPPED or CRAWLER_FATAL */
} thread_walk;

/* Queue one post of the thread if it is new.  Whenever messages are sealed
 * they are published at once, so a huge thread takes about two messages per
 * key of memory; its state is recorded only once all its posts are
 * confirmed (crawler_flush). */
static int crawler_queue_post(void *arg, json_object *item) {
    thread_walk *w = arg;
    json_object *v;
    int64_t post_no = json_object_object_get_ex(item, "no", &v) ? json_object_get_int64(v) : 0;
    if (w->known && post_no <= w->u->last_post) return 0; /* published before */
    if (post_no > w->u->last_post) w->u->last_post = post_no;
    bool op = json_object_object_get_ex(item, "_type", &v) && strcmp(json_object_get_string(v), "thread") == 0;
    size_t len;
    const char *text =
        json_object_to_json_string_length(item, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    size_t max = w->r->out.max_bytes;
    if (max && len + 2 > max) { /* even alone, "[item]" is over --max-message: no message can carry it */
        log_error("%s /%s/: post %" PRId64 " is refused for good and passed over: %zu bytes, more than --max-message "
                  "(%zu bytes) allows",
                  w->r->cfg->name, w->b->name, post_no, len, max);
        w->r->stats.refused++;
        return 0;
    }
    outbox_add(&w->r->out, w->b->keys[op ? CRAWLER_KEY_THREAD : CRAWLER_KEY_POST], text, len);
    if (w->r->out.sealed_bytes) w->rc = crawler_publish(w->r, w->b, false);
    return w->rc != CRAWLER_OK;
}

/* --- one thread --- */

/* Queue the posts of thread REF that were not published yet.  CRAWLER_OK
 * (also for 304 and 404), CRAWLER_FAILED (try again at the next poll), or
 * what publishing a part of a huge thread returned (CRAWLER_STOPPED,
 * CRAWLER_FATAL). */
static int crawler_thread(site_run *r, board_run *b, const chanapi_thread_ref *ref, const crawlstate_thread *known) {
    char no[24], why[CRAWLER_WHY];
    snprintf(no, sizeof no, "%" PRId64, ref->no);
    char *url = sites_expand(r->cfg->thread_url, b->name, no, NULL, NULL);
    http_response resp;
    int64_t crawled_at = time_wall_ms() / 1000;
    crawler_get(r, url, known ? known->http_lm : NULL, &resp);
    thread_update u = {.no = ref->no,
                       .last_modified = ref->last_modified,
                       .replies = ref->replies,
                       .last_post = known ? known->last_post : 0};
    int rc = CRAWLER_OK;
    if (resp.result == HTTP_NOT_MODIFIED) {
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        crawler_queue_update(r, &u);
    } else if (resp.result == HTTP_STATUS_ERROR && resp.status == 404) {
        log_info("%s /%s/ thread %s is gone (404): no longer asked for", r->cfg->name, b->name, no);
        u.gone = true;
        r->stats.threads_gone++;
        crawler_queue_update(r, &u);
    } else if (resp.result != HTTP_OK) {
        log_write(crawler_warn_level(b), "%s /%s/ thread %s: %s", r->cfg->name, b->name, no, resp.error);
        rc = CRAWLER_FAILED;
    } else {
        r->stats.threads_fetched++;
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        thread_walk w = {.r = r, .b = b, .u = &u, .known = known != NULL, .rc = CRAWLER_OK};
        int walked = chanapi_thread_each(&r->api, b->name, resp.body, resp.body_len, crawled_at, crawler_queue_post, &w,
                                         why, sizeof why);
        if (walked < 0) {
            log_write(crawler_warn_level(b), "%s /%s/ thread %s: %s", r->cfg->name, b->name, no, why);
            rc = CRAWLER_FAILED;
        } else if (walked > 0) {
            rc = w.rc;
        } else {
            crawler_queue_update(r, &u);
        }
    }
    http_response_release(&resp);
    free(url);
    return rc;
}

/* --- one board --- */

static bool crawler_thread_changed(const chanapi_thread_ref *ref, const crawlstate_thread *t) {
    if (!t) return true;
    if (ref->last_modified >= 0) return ref->last_modified != t->last_modified;
    if (ref->replies >= 0) return ref->replies != t->replies;
    return !t->gone; /* the site says nothing: ask (conditionally) */
}

static int crawler_board(site_run *r, board_run *b) {
    char why[CRAWLER_WHY];
    char *url = sites_expand(r->cfg->threads_url, b->name, NULL, NULL, NULL);
    http_response resp;
    crawler_get(r, url, b->state.threads_lm, &resp);
    free(url);
    if (resp.result == HTTP_NOT_MODIFIED) {
        log_debug("%s /%s/: threads.json not modified", r->cfg->name, b->name);
        http_response_release(&resp);
        return CRAWLER_OK;
    }
    if (resp.result != HTTP_OK) {
        log_write(crawler_warn_level(b), "%s /%s/ threads.json: %s", r->cfg->name, b->name, resp.error);
        int rc = resp.result == HTTP_STOPPED ? CRAWLER_STOPPED : CRAWLER_FAILED;
        http_response_release(&resp);
        return rc;
    }
    chanapi_thread_ref *refs = NULL;
    size_t n = 0;
    if (chanapi_parse_threads(resp.body, resp.body_len, r->api.max_tree, &refs, &n, why, sizeof why) != 0) {
        log_write(crawler_warn_level(b), "%s /%s/ threads.json: %s", r->cfg->name, b->name, why);
        http_response_release(&resp);
        return CRAWLER_FAILED;
    }
    int64_t *listed = xmalloc((n ? n : 1) * sizeof *listed);
    for (size_t i = 0; i < n; i++)
        listed[i] = refs[i].no;
    crawlstate_retain(&b->state, listed, n);
    free(listed);
    uint64_t posts_before = r->stats.posts;
    size_t changed = 0;
    bool all_handled = true;
    int rc = CRAWLER_OK;
    for (size_t i = 0; i < n && rc == CRAWLER_OK; i++) {
        if (crawler_should_stop()) {
            all_handled = false;
            break;
        }
        crawlstate_thread *t = crawlstate_find(&b->state, refs[i].no), known;
        if (!crawler_thread_changed(&refs[i], t)) continue;
        if (t) known = *t;
        changed++;
        int trc = crawler_thread(r, b, &refs[i], t ? &known : NULL);
        if (trc == CRAWLER_STOPPED || trc == CRAWLER_FATAL) {
            rc = trc;
            all_handled = false;
            break;
        }
        if (trc != CRAWLER_OK) all_handled = false;
        if (r->out.items >= (size_t)r->s->batch_size) rc = crawler_flush(r, b);
    }
    if (rc == CRAWLER_OK) rc = crawler_flush(r, b);
    if (rc == CRAWLER_OK && all_handled) {
        snprintf(b->state.threads_lm, sizeof b->state.threads_lm, "%s", resp.last_modified ? resp.last_modified : "");
        if (crawlstate_save(&b->state, why, sizeof why) != 0) {
            log_error("%s /%s/: %s", r->cfg->name, b->name, why);
            rc = CRAWLER_FATAL;
        }
    }
    free(refs);
    http_response_release(&resp);
    uint64_t posts = r->stats.posts - posts_before;
    if (posts || changed)
        log_info("%s /%s/: %zu threads changed of %zu, %" PRIu64 " new posts published%s", r->cfg->name, b->name,
                 changed, n, posts, all_handled ? "" : "; some threads failed and will be tried again");
    if (rc == CRAWLER_OK && !all_handled) rc = crawler_should_stop() ? CRAWLER_STOPPED : CRAWLER_FAILED;
    return rc;
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

static int crawler_site_setup(site_run *r) {
    char why[CRAWLER_WHY];
    r->boards = xcalloc(r->cfg->nboards, sizeof *r->boards);
    int64_t now = time_mono_ns();
    for (size_t i = 0; i < r->cfg->nboards; i++) {
        board_run *b = &r->boards[i];
        b->name = r->cfg->boards[i];
        b->keys[CRAWLER_KEY_THREAD] = xasprintf("%s.thread.%s", r->cfg->name, b->name);
        b->keys[CRAWLER_KEY_POST] = xasprintf("%s.post.%s", r->cfg->name, b->name);
        b->next_poll_ns = now;
        backoff_init(&b->retry, CRAWLER_RETRY_FIRST_MS, CRAWLER_RETRY_MAX_MS);
        if (crawlstate_load(&b->state, r->s->state_dir, r->cfg->name, b->name, why, sizeof why) != 0) {
            log_error("%s: %s", r->cfg->name, why);
            return -1;
        }
    }
    http_options ho;
    http_options_init(&ho);
    ho.user_agent = r->cfg->user_agent;
    ho.timeout_ms = r->s->request_timeout_ms;
    ho.max_retries = (int)r->s->retries;
    ho.max_bytes = r->s->max_body_bytes;
    r->http = http_client_new(&ho, r->rl);
    if (!r->http) return -1;
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
    b->next_poll_ns = started + r->cfg->poll_interval_ms * TIME_NS_PER_MS;
}

static void *site_main(void *arg) {
    site_run *r = arg;
    site_crawl(r);
    atomic_store(&r->finished, true);
    return NULL;
}

static void site_crawl(site_run *r) {
    crawler_clear_queue(r);
    int rc = crawler_site_setup(r);
    if (rc != 0) {
        r->status = rc < 0 ? 1 : 0;
        return;
    }
    log_info("%s: crawling %zu boards at %.3g requests per second", r->cfg->name, r->cfg->nboards, r->cfg->rps);
    board_run *b;
    while (!crawler_should_stop() && (b = crawler_next_board(r))) {
        crawler_sleep_until(b->next_poll_ns);
        if (crawler_should_stop()) break;
        int64_t started = time_mono_ns();
        rc = crawler_board(r, b);
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
    log_info("%s: %" PRIu64 " requests (%" PRIu64 " not modified), %" PRIu64 " threads read, %" PRIu64
             " gone, %" PRIu64 " posts published in %" PRIu64 " messages, %" PRIu64 " refused for good, %" PRIu64
             " failed board crawls",
             r->cfg->name, r->stats.requests, r->stats.not_modified, r->stats.threads_fetched, r->stats.threads_gone,
             r->stats.posts, r->stats.messages, r->stats.refused, r->stats.failures);
}

static void site_release(site_run *r) {
    for (size_t i = 0; r->boards && i < r->cfg->nboards; i++) {
        crawlstate_release(&r->boards[i].state);
        free(r->boards[i].keys[0]);
        free(r->boards[i].keys[1]);
    }
    free(r->boards);
    outbox_release(&r->out);
    free(r->updates);
    http_client_free(r->http);
    mq_free(r->q);
}

/* --- the process --- */

int crawler_run(const crawler_settings *s, const sites *list) {
    if (http_global_init() != 0) return 1;
    ratelimit *rl = ratelimit_new(0);
    site_run *runs = xcalloc(list->n, sizeof *runs);
    for (size_t i = 0; i < list->n; i++) {
        const site_config *c = &list->v[i];
        char host[256];
        if (http_url_host(c->threads_url, host, sizeof host) == 0) {
            /* Sites that share a host share the strictest rate. */
            double rps = c->rps;
            for (size_t k = 0; k < i; k++) {
                char other[256];
                if (http_url_host(list->v[k].threads_url, other, sizeof other) == 0 && strcmp(other, host) == 0 &&
                    list->v[k].rps < rps)
                    rps = list->v[k].rps;
            }
            ratelimit_set_rate(rl, host, rps);
        }
        runs[i].s = s;
        runs[i].cfg = c;
        runs[i].rl = rl;
        runs[i].api = (chanapi_site){
            .name = c->name, .kind = c->kind, .file_url = c->file_url, .max_tree = (uint64_t)s->max_parse_bytes};
        atomic_init(&runs[i].finished, false);
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
