/* src_lynxchan.c -- the source kind lynxchan (Endchan and other LynxChan
 * sites): catalog.json, the threads that changed, their new posts.
 *
 * The poll is threadpoll.h's, as for the 4chan kinds, on LynxChan's
 * documents (lynxapi.h parses them):
 *   - the listing is {api}/{board}/catalog.json; a thread counts as changed
 *     when its lastBump or its postCount differs from the state's (a sage
 *     reply bumps nothing but counts): the state's last_modified holds
 *     lastBump in milliseconds, replies the postCount;
 *   - a thread is {api}/{board}/res/{threadId}.json, conditional with the
 *     Last-Modified the site sent for it; its posts with an id above the
 *     highest one published are emitted: the thread object (without its
 *     posts) as "thread", each reply as "post".
 * A thread is parsed whole (lynxapi_parse_thread checks its size against
 * --max-parse-memory first).
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lynxapi.h"
#include "sites.h"
#include "source.h"
#include "threadpoll.h"
#include "xalloc.h"

/* The templates, in the order of the table below. */
enum { LYNX_URL_CATALOG = 0, LYNX_URL_THREAD = 1 };

typedef struct lynx_board {
    threadpoll_board tp; /* first: the threadpoll hooks take the board as theirs */
    lynxapi_site api;
} lynx_board;

/* --- the rules threadpoll follows --- */

static int lynx_parse_list(crawl_board *b, const void *api, const char *body, size_t len, threadpoll_ref **out,
                           size_t *n, char *why, size_t whylen) {
    (void)b;
    lynxapi_thread_ref *refs = NULL;
    if (lynxapi_parse_catalog(body, len, ((const lynxapi_site *)api)->max_tree, &refs, n, why, whylen) != 0) return -1;
    *out = xmalloc((*n ? *n : 1) * sizeof **out);
    for (size_t i = 0; i < *n; i++)
        (*out)[i] = (threadpoll_ref){refs[i].id, refs[i].last_bump, refs[i].posts};
    free(refs);
    return 0;
}

static int lynx_emit_thread(crawl_board *b, const void *api, const char *body, size_t len, int64_t crawled_at,
                            bool known, int64_t *last_post, char *why, size_t whylen) {
    json_object *items = lynxapi_parse_thread(api, crawl_board_name(b), body, len, crawled_at, why, whylen);
    if (!items) return CRAWL_FAILED;
    int rc = CRAWL_OK;
    size_t n = json_object_array_length(items);
    for (size_t i = 0; i < n && rc == CRAWL_OK; i++) {
        json_object *item = json_object_array_get_idx(items, i), *v;
        int64_t no = 0;
        /* _id is "<board>.<no>": the number is what follows the last dot */
        if (json_object_object_get_ex(item, "_id", &v)) {
            const char *s = strrchr(json_object_get_string(v), '.');
            no = s ? strtoll(s + 1, NULL, 10) : 0;
        }
        if (known && no <= *last_post) continue; /* published before */
        if (no > *last_post) *last_post = no;
        rc = crawl_emit(b, i == 0 ? "thread" : "post", item);
    }
    json_object_put(items);
    return rc;
}

static const threadpoll_rules lynx_rules = {
    .list_name = "catalog.json",
    .list_url = LYNX_URL_CATALOG,
    .thread_url = LYNX_URL_THREAD,
    .parse_list = lynx_parse_list,
    .emit_thread = lynx_emit_thread,
};

/* --- the kind's own hooks --- */

/* A post's (or the opening post's) "creation", an ISO 8601 date. */
static double lynx_item_time(json_object *item) {
    json_object *v;
    if (!json_object_object_get_ex(item, "creation", &v) || !json_object_is_type(v, json_type_string)) return -1;
    int64_t ms = lynxapi_parse_date(json_object_get_string(v));
    return ms < 0 ? -1 : (double)ms / 1000;
}

static int lynx_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const site_config *c = crawl_site(b);
    lynx_board *lb = xcalloc(1, sizeof *lb);
    lb->api = (lynxapi_site){.name = c->name, .media = c->media ? c->media : c->api, .max_tree = crawl_max_tree(b)};
    if (threadpoll_open(b, &lb->tp, &lynx_rules, &lb->api, why, whylen) != 0) {
        free(lb);
        return -1;
    }
    *out = lb;
    return 0;
}

static void lynx_close(void *kb) {
    lynx_board *lb = kb;
    if (!lb) return;
    threadpoll_release(&lb->tp);
    free(lb);
}

const source_kind source_lynxchan = {
    .name = "lynxchan",
    .templates = {{"catalog_url", "{api}/{board}/catalog.json"},
                  {"thread_url", "{api}/{board}/res/{no}.json"},
                  {NULL, NULL}},
    .default_api = NULL,
    .default_rps = 1,
    .board_open = lynx_open,
    .board_poll = threadpoll_poll,
    .board_commit = threadpoll_commit,
    .board_drop = threadpoll_drop,
    .board_close = lynx_close,
    .item_time = lynx_item_time,
};
