/* threadpoll.c -- the poll of a thread-shaped board; see threadpoll.h. */
#include "threadpoll.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crawler.h"
#include "log.h"
#include "sites.h"
#include "timeutil.h"
#include "xalloc.h"

#define THREADPOLL_WHY 512

int threadpoll_open(crawl_board *b, threadpoll_board *tb, const threadpoll_rules *rules, const void *api, char *why,
                    size_t whylen) {
    memset(tb, 0, sizeof *tb);
    tb->rules = rules;
    tb->api = api;
    const site_config *c = crawl_site(b);
    if (crawlstate_load(&tb->state, crawl_settings(b)->state_dir, c->name, crawl_board_name(b), why, whylen) != 0) {
        threadpoll_release(tb);
        return -1;
    }
    return 0;
}

void threadpoll_release(threadpoll_board *tb) {
    crawlstate_release(&tb->state);
    free(tb->updates);
    tb->updates = NULL;
    tb->nupdates = tb->updates_cap = 0;
}

static void threadpoll_queue_update(threadpoll_board *tb, const threadpoll_update *u) {
    if (tb->nupdates == tb->updates_cap) {
        tb->updates_cap = tb->updates_cap ? 2 * tb->updates_cap : 64;
        tb->updates = xrealloc(tb->updates, tb->updates_cap * sizeof *tb->updates);
    }
    tb->updates[tb->nupdates++] = *u;
}

int threadpoll_commit(crawl_board *b, void *kb, char *why, size_t whylen) {
    (void)b;
    threadpoll_board *tb = kb;
    if (!tb->nupdates && !tb->list_lm_pending) return 0;
    for (size_t i = 0; i < tb->nupdates; i++) {
        const threadpoll_update *u = &tb->updates[i];
        crawlstate_thread *t = crawlstate_get(&tb->state, u->no);
        t->last_modified = u->last_modified;
        t->replies = u->replies;
        if (u->last_post > t->last_post) t->last_post = u->last_post;
        snprintf(t->http_lm, sizeof t->http_lm, "%s", u->http_lm);
        t->gone = u->gone;
    }
    tb->nupdates = 0;
    if (tb->list_lm_pending) {
        snprintf(tb->state.threads_lm, sizeof tb->state.threads_lm, "%s", tb->list_lm);
        tb->list_lm_pending = false;
    }
    return crawlstate_save(&tb->state, why, whylen);
}

void threadpoll_drop(crawl_board *b, void *kb) {
    (void)b;
    threadpoll_board *tb = kb;
    tb->nupdates = 0;
    tb->list_lm_pending = false;
}

/* --- one thread --- */

/* Emit the posts of thread REF that were not published yet.  CRAWL_OK
 * (also for 304 and 404), CRAWL_FAILED (try again at the next poll), or
 * what publishing returned. */
static int threadpoll_thread(crawl_board *b, threadpoll_board *tb, const threadpoll_ref *ref,
                             const crawlstate_thread *known) {
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char no[24], why[THREADPOLL_WHY];
    snprintf(no, sizeof no, "%" PRId64, ref->no);
    char *url = sites_expand(c->urls[tb->rules->thread_url], board, no, NULL, NULL);
    http_request req = {.url = url, .if_modified_since = known && *known->http_lm ? known->http_lm : NULL};
    http_response resp;
    int64_t crawled_at = time_wall_ms() / 1000;
    crawl_get(b, &req, &resp);
    threadpoll_update u = {.no = ref->no,
                           .last_modified = ref->last_modified,
                           .replies = ref->replies,
                           .last_post = known ? known->last_post : 0};
    int rc = CRAWL_OK;
    if (resp.result == HTTP_NOT_MODIFIED) {
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        threadpoll_queue_update(tb, &u);
    } else if (resp.result == HTTP_STATUS_ERROR && resp.status == 404) {
        log_info("%s /%s/ thread %s is gone (404): no longer asked for", c->name, board, no);
        u.gone = true;
        crawl_count_gone(b);
        threadpoll_queue_update(tb, &u);
    } else if (resp.result == HTTP_STOPPED) {
        rc = CRAWL_STOPPED;
    } else if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s /%s/ thread %s: %s", c->name, board, no, resp.error);
        rc = CRAWL_FAILED;
    } else {
        crawl_count_read(b);
        snprintf(u.http_lm, sizeof u.http_lm, "%s", resp.last_modified ? resp.last_modified : "");
        why[0] = '\0';
        rc = tb->rules->emit_thread(b, tb->api, resp.body, resp.body_len, crawled_at, known != NULL, &u.last_post, why,
                                    sizeof why);
        if (rc == CRAWL_FAILED) {
            log_write(crawl_warn_level(b), "%s /%s/ thread %s: %s", c->name, board, no, why);
            crawl_count_refused(b);
        } else if (rc == CRAWL_OK) {
            threadpoll_queue_update(tb, &u);
        }
    }
    http_response_release(&resp);
    free(url);
    return rc;
}

/* --- one board --- */

static bool threadpoll_changed(const threadpoll_ref *ref, const crawlstate_thread *t) {
    if (!t) return true;
    if (ref->last_modified < 0 && ref->replies < 0) return !t->gone; /* the site says nothing: ask (conditionally) */
    return (ref->last_modified >= 0 && ref->last_modified != t->last_modified) ||
           (ref->replies >= 0 && ref->replies != t->replies);
}

static int threadpoll_cmp_no(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int threadpoll_poll(crawl_board *b, void *kb) {
    threadpoll_board *tb = kb;
    const threadpoll_rules *rules = tb->rules;
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char why[THREADPOLL_WHY];
    char *url = sites_expand(c->urls[rules->list_url], board, NULL, NULL, NULL);
    http_request req = {.url = url, .if_modified_since = *tb->state.threads_lm ? tb->state.threads_lm : NULL};
    http_response resp;
    crawl_get(b, &req, &resp);
    free(url);
    if (resp.result == HTTP_NOT_MODIFIED) {
        log_debug("%s /%s/: %s not modified", c->name, board, rules->list_name);
        http_response_release(&resp);
        return CRAWL_OK;
    }
    if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s /%s/ %s: %s", c->name, board, rules->list_name, resp.error);
        int rc = resp.result == HTTP_STOPPED ? CRAWL_STOPPED : CRAWL_FAILED;
        http_response_release(&resp);
        return rc;
    }
    threadpoll_ref *refs = NULL;
    size_t n = 0;
    if (rules->parse_list(b, tb->api, resp.body, resp.body_len, &refs, &n, why, sizeof why) != 0) {
        log_write(crawl_warn_level(b), "%s /%s/ %s: %s", c->name, board, rules->list_name, why);
        crawl_count_refused(b);
        http_response_release(&resp);
        return CRAWL_FAILED;
    }
    int64_t *listed = xmalloc((n ? n : 1) * sizeof *listed);
    for (size_t i = 0; i < n; i++)
        listed[i] = refs[i].no;
    qsort(listed, n, sizeof *listed, threadpoll_cmp_no);
    crawlstate_retain(&tb->state, listed, n);
    bool *done = xcalloc(n ? n : 1, sizeof *done); /* a thread listed twice is handled once */
    size_t changed = 0;
    bool all_handled = true;
    int rc = CRAWL_OK;
    for (size_t i = 0; i < n && rc == CRAWL_OK; i++) {
        if (crawl_stopping()) {
            all_handled = false;
            break;
        }
        const int64_t *at = bsearch(&refs[i].no, listed, n, sizeof *listed, threadpoll_cmp_no);
        if (done[at - listed]) continue;
        done[at - listed] = true;
        crawlstate_thread *t = crawlstate_find(&tb->state, refs[i].no), known;
        if (!threadpoll_changed(&refs[i], t)) continue;
        if (t) known = *t;
        changed++;
        int trc = threadpoll_thread(b, tb, &refs[i], t ? &known : NULL);
        if (trc == CRAWL_STOPPED || trc == CRAWL_FATAL) {
            rc = trc;
            all_handled = false;
            break;
        }
        if (trc != CRAWL_OK) all_handled = false;
        rc = crawl_checkpoint(b);
    }
    if (rc == CRAWL_OK && all_handled) {
        snprintf(tb->list_lm, sizeof tb->list_lm, "%s", resp.last_modified ? resp.last_modified : "");
        tb->list_lm_pending = true;
    }
    free(done);
    free(listed);
    free(refs);
    http_response_release(&resp);
    if (changed)
        log_info("%s /%s/: %zu threads changed of %zu%s", c->name, board, changed, n,
                 all_handled ? "" : "; some threads failed and will be tried again");
    if (rc == CRAWL_OK && !all_handled) rc = crawl_stopping() ? CRAWL_STOPPED : CRAWL_FAILED;
    return rc;
}
