/* threadpoll.h -- the poll of a thread-shaped board, shared by the kinds
 * whose boards list threads that hold posts (4chan, vichan, lynxchan).
 *
 * A poll (threadpoll_poll):
 *
 *   1. GET the board's listing (threads.json, catalog.json) with
 *      If-Modified-Since; 304 ends it.
 *   2. Forget the threads no longer listed (archived, pruned).
 *   3. For each listed thread (once, should the listing name it twice) whose
 *      last_modified or reply count differs from the state's, GET its JSON
 *      (conditional too).  404: the thread is gone; it stays a tombstone
 *      while the listing shows it unchanged, and is not asked for again.
 *      Otherwise the kind's emit_thread emits its posts newer than the last
 *      one published.
 *   4. Between threads, crawl_checkpoint: once a batch is full it is
 *      published and threadpoll_commit folds the threads' pending updates
 *      into the state (crawlstate.h) and saves it.
 *   5. Only when every thread was handled is the listing's Last-Modified
 *      kept; a thread that failed (500, broken JSON) is tried again at the
 *      next poll.
 *
 * A kind embeds a threadpoll_board as the first member of its board struct,
 * gives its rules, and uses threadpoll_poll, threadpoll_commit and
 * threadpoll_drop as its table's hooks.
 */
#ifndef IMGFEED_THREADPOLL_H
#define IMGFEED_THREADPOLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crawlstate.h"
#include "source.h"

/* One thread of a listing. */
typedef struct threadpoll_ref {
    int64_t no;            /* >= 1 */
    int64_t last_modified; /* as the listing gives it (any unit); -1: none given */
    int64_t replies;       /* -1: none given */
} threadpoll_ref;

typedef struct threadpoll_rules {
    const char *list_name; /* "threads.json", "catalog.json": in log lines */
    size_t list_url;       /* index of the listing's template in site_config.urls ({board}) */
    size_t thread_url;     /* index of a thread's template ({board}, {no}) */
    /* The listing's threads: 0 with *OUT (malloc'd, may be NULL when *N is
     * 0), or -1 with WHY. */
    int (*parse_list)(crawl_board *b, const void *api, const char *body, size_t len, threadpoll_ref **out, size_t *n,
                      char *why, size_t whylen);
    /* Emit (crawl_emit) the posts of a thread's body whose number is above
     * *LAST_POST (every post when !KNOWN), raising *LAST_POST.  CRAWL_OK,
     * CRAWL_FAILED with WHY (the body is refused; the thread is tried again
     * next poll), or what crawl_emit returned. */
    int (*emit_thread)(crawl_board *b, const void *api, const char *body, size_t len, int64_t crawled_at, bool known,
                       int64_t *last_post, char *why, size_t whylen);
} threadpoll_rules;

/* What the state will say of a thread once its emitted posts are confirmed. */
typedef struct threadpoll_update {
    int64_t no, last_modified, replies, last_post;
    char http_lm[CRAWLSTATE_HTTP_DATE];
    bool gone;
} threadpoll_update;

typedef struct threadpoll_board {
    const threadpoll_rules *rules;
    const void *api; /* the kind's parsing context, handed to its rules */
    crawlstate_board state;
    threadpoll_update *updates; /* pending, in the order the threads were handled */
    size_t nupdates, updates_cap;
    char list_lm[CRAWLSTATE_HTTP_DATE]; /* pending: the listing's Last-Modified, once all threads are handled */
    bool list_lm_pending;
} threadpoll_board;

/* Load the board's state into TB.  0, or -1 with WHY (TB released). */
int threadpoll_open(crawl_board *b, threadpoll_board *tb, const threadpoll_rules *rules, const void *api, char *why,
                    size_t whylen);
void threadpoll_release(threadpoll_board *tb);

/* The hooks of source_kind; KB points at a threadpoll_board. */
int threadpoll_poll(crawl_board *b, void *kb);
int threadpoll_commit(crawl_board *b, void *kb, char *why, size_t whylen);
void threadpoll_drop(crawl_board *b, void *kb);

#endif
