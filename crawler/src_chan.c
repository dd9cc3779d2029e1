/* src_chan.c -- the source kinds 4chan and vichan: threads.json, the threads
 * that changed, their new posts.
 *
 * One module, two rule sets (chanapi.h parses both families; the tables at
 * the bottom give each its URL templates).  A board's poll:
 *
 *   1. GET threads.json with If-Modified-Since; 304 ends it.
 *   2. Forget the threads no longer listed (archived, pruned).
 *   3. For each listed thread whose last_modified (or, where the site gives
 *      none, reply count) differs from the state's, GET its JSON
 *      (conditional too).  404: the thread is gone; it stays a tombstone
 *      while threads.json lists it unchanged, and is not asked for again.
 *      Otherwise its posts newer than the last one published are emitted:
 *      the opening post as type "thread", replies as "post".
 *   4. Between threads, crawl_checkpoint: once a batch is full it is
 *      published and board_commit folds the threads' pending updates into
 *      the state (crawlstate.h) and saves it.
 *   5. Only when every thread was handled is the new threads.json
 *      Last-Modified kept; a thread that failed (500, broken JSON) is tried
 *      again at the next poll.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chanapi.h"
#include "crawler.h"
#include "crawlstate.h"
#include "log.h"
#include "sites.h"
#include "source.h"
#include "timeutil.h"
#include "xalloc.h"

#define CHAN_WHY 512

/* The templates, in the order of the tables below. */
enum { CHAN_URL_THREADS = 0, CHAN_URL_THREAD = 1, CHAN_URL_FILE = 2 };

/* What the state will say of a thread once its emitted posts are confirmed. */
typedef struct chan_update {
    int64_t no, last_modified, replies, last_post;
    char http_lm[CRAWLSTATE_HTTP_DATE];
    bool gone;
} chan_update;

typedef struct chan_board {
    crawlstate_board state;
    chanapi_site api;
    chan_update *updates; /* pending, in the order the threads were handled */
    size_t nupdates, updates_cap;
    char threads_lm[CRAWLSTATE_HTTP_DATE]; /* pending: the listing's Last-Modified, once all threads are handled */
    bool threads_lm_pending;
} chan_board;

static void chan_queue_update(chan_board *cb, const chan_update *u) {
    if (cb->nupdates == cb->updates_cap) {
        cb->updates_cap = cb->updates_cap ? 2 * cb->updates_cap : 64;
        cb->updates = xrealloc(cb->updates, cb->updates_cap * sizeof *cb->updates);
    }
    cb->updates[cb->nupdates++] = *u;
}

/* --- the kind's hooks --- */

static int chan_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const site_config *c = crawl_site(b);
    const crawler_settings *s = crawl_settings(b);
    chan_board *cb = xcalloc(1, sizeof *cb);
    if (crawlstate_load(&cb->state, s->state_dir, c->name, crawl_board_name(b), why, whylen) != 0) {
        crawlstate_release(&cb->state);
        free(cb);
        return -1;
    }
    cb->api = (chanapi_site){.name = c->name,
                             .kind = strcmp(c->kind->name, "vichan") == 0 ? CHANAPI_VICHAN : CHANAPI_4CHAN,
                             .file_url = c->urls[CHAN_URL_FILE],
                             .max_tree = crawl_max_tree(b)};
    *out = cb;
    return 0;
}

static int chan_commit(crawl_board *b, void *kb, char *why, size_t whylen) {
    (void)b;
    chan_board *cb = kb;
    if (!cb->nupdates && !cb->threads_lm_pending) return 0;
    for (size_t i = 0; i < cb->nupdates; i++) {
        const chan_update *u = &cb->updates[i];
        crawlstate_thread *t = crawlstate_get(&cb->state, u->no);
        t->last_modified = u->last_modified;
        t->replies = u->replies;
        if (u->last_post > t->last_post) t->last_post = u->last_post;
        snprintf(t->http_lm, sizeof t->http_lm, "%s", u->http_lm);
        t->gone = u->gone;
    }
    cb->nupdates = 0;
    if (cb->threads_lm_pending) {
        snprintf(cb->state.threads_lm, sizeof cb->state.threads_lm, "%s", cb->threads_lm);
        cb->threads_lm_pending = false;
    }
    return crawlstate_save(&cb->state, why, whylen);
}

static void chan_drop(crawl_board *b, void *kb) {
    (void)b;
    chan_board *cb = kb;
    cb->nupdates = 0;
    cb->threads_lm_pending = false;
}

static void chan_close(void *kb) {
    chan_board *cb = kb;
    if (!cb) return;
    crawlstate_release(&cb->state);
    free(cb->updates);
    free(cb);
}

/* --- one thread --- */

/* One thread's walk (chanapi_thread_each): where its posts go. */
typedef struct chan_walk {
    crawl_board *b;
    chan_update *u;
    bool known; /* the state knew the thread: only posts after u->last_post are new */
    int rc;     /* what stopped the walk: CRAWL_STOPPED or CRAWL_FATAL */
} chan_walk;

/* Emit one post of the thread if it is new.  A huge thread is published as
 * its messages fill (crawl_emit), so it takes about two messages per key of
 * memory; its state is recorded only once all its posts are confirmed. */
static int chan_emit_post(void *arg, json_object *item) {
    chan_walk *w = arg;
    json_object *v;
    int64_t post_no = json_object_object_get_ex(item, "no", &v) ? json_object_get_int64(v) : 0;
    if (w->known && post_no <= w->u->last_post) return 0; /* published before */
    if (post_no > w->u->last_post) w->u->last_post = post_no;
    bool op = json_object_object_get_ex(item, "_type", &v) && strcmp(json_object_get_string(v), "thread") == 0;
    w->rc = crawl_emit(w->b, op ? "thread" : "post", item);
    return w->rc != CRAWL_OK;
}

/* Emit the posts of thread REF that were not published yet.  CRAWL_OK
 * (also for 304 and 404), CRAWL_FAILED (try again at the next poll), or
 * what publishing a part of a huge thread returned. */
static int chan_thread(crawl_board *b, chan_board *cb, const chanapi_thread_ref *ref, const crawlstate_thread *known) {
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char no[24], why[CHAN_WHY];
    snprintf(no, sizeof no, "%" PRId64, ref->no);
    char *url = sites_expand(c->urls[CHAN_URL_THREAD], board, no, NULL, NULL);
    http_request req = {.url = url, .if_modified_since = known && *known->http_lm ? known->http_lm : NULL};
    http_response resp;
    int64_t crawled_at = time_wall_ms() / 1000;
    crawl_get(b, &req, &resp);
    chan_update u = {.no = ref->no,
                     .last_modified = ref->last_modified,
                     .replies = ref->replies,
                     .last_post = known ? known->last_post : 0};
    int rc = CRAWL_OK;
    if (resp.result == HTTP_NOT_MODIFIED) {
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        chan_queue_update(cb, &u);
    } else if (resp.result == HTTP_STATUS_ERROR && resp.status == 404) {
        log_info("%s /%s/ thread %s is gone (404): no longer asked for", c->name, board, no);
        u.gone = true;
        crawl_count_gone(b);
        chan_queue_update(cb, &u);
    } else if (resp.result == HTTP_STOPPED) {
        rc = CRAWL_STOPPED;
    } else if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s /%s/ thread %s: %s", c->name, board, no, resp.error);
        rc = CRAWL_FAILED;
    } else {
        crawl_count_read(b);
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        chan_walk w = {.b = b, .u = &u, .known = known != NULL, .rc = CRAWL_OK};
        int walked = chanapi_thread_each(&cb->api, board, resp.body, resp.body_len, crawled_at, chan_emit_post, &w, why,
                                         sizeof why);
        if (walked < 0) {
            log_write(crawl_warn_level(b), "%s /%s/ thread %s: %s", c->name, board, no, why);
            rc = CRAWL_FAILED;
        } else if (walked > 0) {
            rc = w.rc;
        } else {
            chan_queue_update(cb, &u);
        }
    }
    http_response_release(&resp);
    free(url);
    return rc;
}

/* --- one board --- */

static bool chan_thread_changed(const chanapi_thread_ref *ref, const crawlstate_thread *t) {
    if (!t) return true;
    if (ref->last_modified >= 0) return ref->last_modified != t->last_modified;
    if (ref->replies >= 0) return ref->replies != t->replies;
    return !t->gone; /* the site says nothing: ask (conditionally) */
}

static int chan_poll(crawl_board *b, void *kb) {
    chan_board *cb = kb;
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char why[CHAN_WHY];
    char *url = sites_expand(c->urls[CHAN_URL_THREADS], board, NULL, NULL, NULL);
    http_request req = {.url = url, .if_modified_since = *cb->state.threads_lm ? cb->state.threads_lm : NULL};
    http_response resp;
    crawl_get(b, &req, &resp);
    free(url);
    if (resp.result == HTTP_NOT_MODIFIED) {
        log_debug("%s /%s/: threads.json not modified", c->name, board);
        http_response_release(&resp);
        return CRAWL_OK;
    }
    if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s /%s/ threads.json: %s", c->name, board, resp.error);
        int rc = resp.result == HTTP_STOPPED ? CRAWL_STOPPED : CRAWL_FAILED;
        http_response_release(&resp);
        return rc;
    }
    chanapi_thread_ref *refs = NULL;
    size_t n = 0;
    if (chanapi_parse_threads(resp.body, resp.body_len, cb->api.max_tree, &refs, &n, why, sizeof why) != 0) {
        log_write(crawl_warn_level(b), "%s /%s/ threads.json: %s", c->name, board, why);
        http_response_release(&resp);
        return CRAWL_FAILED;
    }
    int64_t *listed = xmalloc((n ? n : 1) * sizeof *listed);
    for (size_t i = 0; i < n; i++)
        listed[i] = refs[i].no;
    crawlstate_retain(&cb->state, listed, n);
    free(listed);
    size_t changed = 0;
    bool all_handled = true;
    int rc = CRAWL_OK;
    for (size_t i = 0; i < n && rc == CRAWL_OK; i++) {
        if (crawl_stopping()) {
            all_handled = false;
            break;
        }
        crawlstate_thread *t = crawlstate_find(&cb->state, refs[i].no), known;
        if (!chan_thread_changed(&refs[i], t)) continue;
        if (t) known = *t;
        changed++;
        int trc = chan_thread(b, cb, &refs[i], t ? &known : NULL);
        if (trc == CRAWL_STOPPED || trc == CRAWL_FATAL) {
            rc = trc;
            all_handled = false;
            break;
        }
        if (trc != CRAWL_OK) all_handled = false;
        rc = crawl_checkpoint(b);
    }
    if (rc == CRAWL_OK && all_handled) {
        snprintf(cb->threads_lm, sizeof cb->threads_lm, "%s", resp.last_modified ? resp.last_modified : "");
        cb->threads_lm_pending = true;
    }
    free(refs);
    http_response_release(&resp);
    if (changed)
        log_info("%s /%s/: %zu threads changed of %zu%s", c->name, board, changed, n,
                 all_handled ? "" : "; some threads failed and will be tried again");
    if (rc == CRAWL_OK && !all_handled) rc = crawl_stopping() ? CRAWL_STOPPED : CRAWL_FAILED;
    return rc;
}

/* --- the tables --- */

const source_kind source_4chan = {
    .name = "4chan",
    .templates = {{"threads_url", "{api}/{board}/threads.json"},
                  {"thread_url", "{api}/{board}/thread/{no}.json"},
                  {"file_url", "{media}/{board}/{tim}{ext}"},
                  {NULL, NULL}},
    .board_open = chan_open,
    .board_poll = chan_poll,
    .board_commit = chan_commit,
    .board_drop = chan_drop,
    .board_close = chan_close,
};

const source_kind source_vichan = {
    .name = "vichan",
    .templates = {{"threads_url", "{api}/{board}/threads.json"},
                  {"thread_url", "{api}/{board}/res/{no}.json"},
                  {"file_url", "{media}/{board}/src/{tim}{ext}"},
                  {NULL, NULL}},
    .board_open = chan_open,
    .board_poll = chan_poll,
    .board_commit = chan_commit,
    .board_drop = chan_drop,
    .board_close = chan_close,
};
