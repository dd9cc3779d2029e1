/* src_chan.c -- the source kinds 4chan and vichan.
 *
 * One module, two rule sets: chanapi.h parses both families, the tables at
 * the bottom give each its URL templates, and threadpoll.h does the poll
 * (threads.json, the threads that changed, their new posts).  A thread's
 * posts are parsed and emitted one at a time (chanapi_thread_each), so a
 * huge thread is published as its messages fill and takes about two
 * messages per routing key of memory; its state is recorded only once all
 * its posts are confirmed.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "chanapi.h"
#include "sites.h"
#include "source.h"
#include "threadpoll.h"
#include "xalloc.h"

/* The templates, in the order of the tables below. */
enum { CHAN_URL_THREADS = 0, CHAN_URL_THREAD = 1, CHAN_URL_FILE = 2 };

typedef struct chan_board {
    threadpoll_board tp; /* first: the threadpoll hooks take the board as theirs */
    chanapi_site api;
} chan_board;

/* --- the rules threadpoll follows --- */

static int chan_parse_list(crawl_board *b, const void *api, const char *body, size_t len, threadpoll_ref **out,
                           size_t *n, char *why, size_t whylen) {
    (void)b;
    chanapi_thread_ref *refs = NULL;
    if (chanapi_parse_threads(body, len, ((const chanapi_site *)api)->max_tree, &refs, n, why, whylen) != 0) return -1;
    *out = xmalloc((*n ? *n : 1) * sizeof **out);
    for (size_t i = 0; i < *n; i++)
        (*out)[i] = (threadpoll_ref){refs[i].no, refs[i].last_modified, refs[i].replies};
    free(refs);
    return 0;
}

/* One thread's walk (chanapi_thread_each): where its posts go. */
typedef struct chan_walk {
    crawl_board *b;
    int64_t *last_post;
    bool known; /* the state knew the thread: only posts after *last_post are new */
    int rc;     /* what stopped the walk: CRAWL_STOPPED or CRAWL_FATAL */
} chan_walk;

static int chan_emit_post(void *arg, json_object *item) {
    chan_walk *w = arg;
    json_object *v;
    int64_t post_no = json_object_object_get_ex(item, "no", &v) ? json_object_get_int64(v) : 0;
    if (w->known && post_no <= *w->last_post) return 0; /* published before */
    if (post_no > *w->last_post) *w->last_post = post_no;
    bool op = json_object_object_get_ex(item, "_type", &v) && strcmp(json_object_get_string(v), "thread") == 0;
    w->rc = crawl_emit(w->b, op ? "thread" : "post", item);
    return w->rc != CRAWL_OK;
}

static int chan_emit_thread(crawl_board *b, const void *api, const char *body, size_t len, int64_t crawled_at,
                            bool known, int64_t *last_post, char *why, size_t whylen) {
    chan_walk w = {.b = b, .last_post = last_post, .known = known, .rc = CRAWL_OK};
    int walked =
        chanapi_thread_each(api, crawl_board_name(b), body, len, crawled_at, chan_emit_post, &w, why, whylen);
    if (walked < 0) return CRAWL_FAILED;
    return walked > 0 ? w.rc : CRAWL_OK;
}

static const threadpoll_rules chan_rules = {
    .list_name = "threads.json",
    .list_url = CHAN_URL_THREADS,
    .thread_url = CHAN_URL_THREAD,
    .parse_list = chan_parse_list,
    .emit_thread = chan_emit_thread,
};

/* --- the kind's own hooks --- */

/* A post's "time": UNIX seconds, an integer on 4chan and vichan alike. */
static double chan_item_time(json_object *item) {
    json_object *v;
    if (!json_object_object_get_ex(item, "time", &v) || !json_object_is_type(v, json_type_int)) return -1;
    return (double)json_object_get_int64(v);
}

static int chan_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const site_config *c = crawl_site(b);
    chan_board *cb = xcalloc(1, sizeof *cb);
    cb->api = (chanapi_site){.name = c->name,
                             .kind = strcmp(c->kind->name, "vichan") == 0 ? CHANAPI_VICHAN : CHANAPI_4CHAN,
                             .file_url = c->urls[CHAN_URL_FILE],
                             .max_tree = crawl_max_tree(b)};
    if (threadpoll_open(b, &cb->tp, &chan_rules, &cb->api, why, whylen) != 0) {
        free(cb);
        return -1;
    }
    *out = cb;
    return 0;
}

static void chan_close(void *kb) {
    chan_board *cb = kb;
    if (!cb) return;
    threadpoll_release(&cb->tp);
    free(cb);
}

/* --- the tables --- */

const source_kind source_4chan = {
    .name = "4chan",
    .templates = {{"threads_url", "{api}/{board}/threads.json"},
                  {"thread_url", "{api}/{board}/thread/{no}.json"},
                  {"file_url", "{media}/{board}/{tim}{ext}"},
                  {NULL, NULL}},
    .board_open = chan_open,
    .board_poll = threadpoll_poll,
    .board_commit = threadpoll_commit,
    .board_drop = threadpoll_drop,
    .board_close = chan_close,
    .item_time = chan_item_time,
};

const source_kind source_vichan = {
    .name = "vichan",
    .templates = {{"threads_url", "{api}/{board}/threads.json"},
                  {"thread_url", "{api}/{board}/res/{no}.json"},
                  {"file_url", "{media}/{board}/src/{tim}{ext}"},
                  {NULL, NULL}},
    .board_open = chan_open,
    .board_poll = threadpoll_poll,
    .board_commit = threadpoll_commit,
    .board_drop = threadpoll_drop,
    .board_close = chan_close,
    .item_time = chan_item_time,
};
