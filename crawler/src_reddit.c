/* src_reddit.c -- the source kind reddit: the new submissions of subreddits.
 *
 * A board is a subreddit; its listing is new.json (template "new_url",
 * default {api}/r/{board}/new.json?limit=100&raw_json=1), newest first.
 * Every submission is published once as an item of type "submission"
 * (redditapi.h), pictures or not.  A board moves through three states:
 *
 *   REDDIT_FIRST   never crawled to the end: walk down the listing with
 *                  `after`, page by page, until "backfill" submissions (the
 *                  site's setting, default 1000) were looked at or the
 *                  listing ends.  Only then is the newest one recorded.
 *   REDDIT_UP      the usual poll: ask for what is newer than the newest
 *                  recorded (`before=t3_<id>`), page by page upwards, the
 *                  newest recorded after each page.
 *   REDDIT_DOWN    `before` answered an empty listing.  Either nothing is
 *                  new, or the recorded submission was deleted or removed,
 *                  for which reddit's `before` answers empty too: so walk
 *                  down the plain listing until a submission already
 *                  published (or backfill), and record its newest.
 *
 * The ids published recently are kept in a seenlog (seenlog.h, a journal
 * beside the state file), so walking down again never publishes one twice.
 * What a poll emits is pending until board_commit: the ids are appended to
 * the journal, then the newest and the end of the first walk are recorded
 * in the state file.  So a kill -9 repeats at most what was not confirmed
 * (a crash between the two only makes the next poll ask again for pages
 * whose ids are all known).
 *
 * The state file: {"newest": "t3_…" or "", "backfilled": bool}.  An older
 * crawler's "seen" array in it is imported into the journal.
 *
 * Rate: reddit allows about 10 requests a minute without OAuth (default
 * rps 10/60).  When X-Ratelimit-Remaining says no request is left, every
 * request to the host waits for X-Ratelimit-Reset (crawl_hold_host).
 * App-only OAuth: with IMGFEED_REDDIT_CLIENT_ID and
 * IMGFEED_REDDIT_CLIENT_SECRET in the environment, a site takes a bearer
 * token from token_url (client credentials, basic auth), asks
 * oauth_new_url ({oauth}: "oauth_api", default https://oauth.reddit.com)
 * with it at 100 requests a minute unless the site says otherwise, renews
 * it a minute before it expires, and once more on a 401.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "crawler.h"
#include "log.h"
#include "redditapi.h"
#include "seenlog.h"
#include "sites.h"
#include "source.h"
#include "statefile.h"
#include "timeutil.h"
#include "urltmpl.h"
#include "xalloc.h"

#define REDDIT_WHY 512
#define REDDIT_BACKFILL_DEFAULT 1000
#define REDDIT_SEEN_MIN 10000

enum { REDDIT_URL_NEW = 0, REDDIT_URL_FILE = 1, REDDIT_URL_OAUTH_NEW = 2, REDDIT_URL_TOKEN = 3 };

/* reddit's limits: without OAuth about 10 requests a minute, with an
 * OAuth client 100. */
#define REDDIT_RPS (10.0 / 60.0)
#define REDDIT_OAUTH_RPS (100.0 / 60.0)
#define REDDIT_OAUTH_API "https://oauth.reddit.com"
#define REDDIT_ENV_ID "IMGFEED_REDDIT_CLIENT_ID"
#define REDDIT_ENV_SECRET "IMGFEED_REDDIT_CLIENT_SECRET"
/* A token is renewed this long before reddit says it expires. */
#define REDDIT_TOKEN_MARGIN_S 60
#define REDDIT_TOKEN_MAX_BODY (64 * 1024)

typedef enum reddit_walk { REDDIT_FIRST, REDDIT_UP, REDDIT_DOWN } reddit_walk;

static const char *const reddit_walk_names[] = {"first walk down", "up from the newest", "down to the last seen"};

typedef struct reddit_conf {
    long backfill; /* submissions looked at on first sight, and when walking down again */
    /* app-only OAuth, when the environment holds a client id and secret;
     * the token is the site's (one thread a site uses it) */
    char *userpwd; /* "id:secret"; NULL: no OAuth */
    char *token;   /* the bearer token, or NULL */
    int64_t token_renew_ns; /* monotonic time to get a new one */
} reddit_conf;

typedef char reddit_id[REDDITAPI_ID_MAX];

typedef struct reddit_board {
    /* committed */
    seenlog *seen;    /* the ids published, pending ones too */
    reddit_id newest; /* fullname, "" when none */
    bool backfilled;
    bool imported;    /* an older state's "seen": save the state without it */
    /* pending, folded in by board_commit */
    reddit_id pend_newest;
    bool pend_newest_set, pend_backfilled;
} reddit_board;

/* --- settings --- */

static int reddit_site_load(site_config *c, json_object *o, char *why, size_t whylen) {
    reddit_conf *rc = xcalloc(1, sizeof *rc);
    c->kind_conf = rc; /* freed by reddit_site_free, on errors too */
    rc->backfill = REDDIT_BACKFILL_DEFAULT;
    json_object *v;
    if (json_object_object_get_ex(o, "backfill", &v)) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
            json_object_get_int64(v) > 100000) {
            snprintf(why, whylen, "backfill must be an integer from 1 to 100000");
            return -1;
        }
        rc->backfill = (long)json_object_get_int64(v);
    }
    const char *id = getenv(REDDIT_ENV_ID), *secret = getenv(REDDIT_ENV_SECRET);
    if ((id && *id) != (secret && *secret)) {
        snprintf(why, whylen, "OAuth needs both %s and %s in the environment", REDDIT_ENV_ID, REDDIT_ENV_SECRET);
        return -1;
    }
    const char *oauth_api = sites_string(o, "oauth_api");
    const urltmpl_var vars[] = {{"oauth", oauth_api ? oauth_api : REDDIT_OAUTH_API, false}};
    char *expanded = urltmpl_expand(c->urls[REDDIT_URL_OAUTH_NEW], vars, 1);
    free(c->urls[REDDIT_URL_OAUTH_NEW]);
    c->urls[REDDIT_URL_OAUTH_NEW] = expanded;
    if (id && *id) {
        rc->userpwd = xasprintf("%s:%s", id, secret);
        if (!json_object_object_get_ex(o, "rps", &v)) c->rps = REDDIT_OAUTH_RPS; /* an OAuth client's limit */
    }
    return 0;
}

static void reddit_site_free(site_config *c) {
    reddit_conf *rc = c->kind_conf;
    if (rc) {
        free(rc->userpwd);
        free(rc->token);
        free(rc);
    }
    c->kind_conf = NULL;
}

static long reddit_backfill(const site_config *c) {
    const reddit_conf *rc = c->kind_conf;
    return rc ? rc->backfill : REDDIT_BACKFILL_DEFAULT;
}

/* --- state --- */

static void reddit_close(void *kb) {
    reddit_board *rb = kb;
    if (!rb) return;
    seenlog_close(rb->seen);
    free(rb);
}

static int reddit_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const char *path = crawl_state_path(b);
    reddit_board *rb = xcalloc(1, sizeof *rb);
    long backfill = reddit_backfill(crawl_site(b));
    size_t seen_max = (size_t)backfill * 2 > REDDIT_SEEN_MIN ? (size_t)backfill * 2 : REDDIT_SEEN_MIN;
    json_object *st = NULL;
    rb->seen = seenlog_open(path, seen_max, why, whylen);
    if (!rb->seen || statefile_load(path, &st, why, whylen) != 0) goto fail;
    if (st) {
        json_object *v;
        if (!json_object_is_type(st, json_type_object)) {
            snprintf(why, whylen, "%s: not a reddit board state (not an object)", path);
            goto fail;
        }
        if (json_object_object_get_ex(st, "newest", &v) && json_object_is_type(v, json_type_string) &&
            json_object_get_string_len(v) < REDDITAPI_ID_MAX)
            snprintf(rb->newest, sizeof rb->newest, "%s", json_object_get_string(v));
        rb->backfilled = json_object_object_get_ex(st, "backfilled", &v) && json_object_get_boolean(v);
        if (json_object_object_get_ex(st, "seen", &v)) {
            char reason[200];
            if (seenlog_import(rb->seen, v, reason, sizeof reason) != 0) {
                snprintf(why, whylen, "%s: seen: %s", path, reason);
                goto fail;
            }
            rb->imported = true;
        }
        json_object_put(st);
    }
    *out = rb;
    return 0;
fail:
    json_object_put(st);
    reddit_close(rb);
    return -1;
}

static int reddit_commit(crawl_board *b, void *kb, char *why, size_t whylen) {
    reddit_board *rb = kb;
    if (!seenlog_pending(rb->seen) && !rb->pend_newest_set && !rb->pend_backfilled && !rb->imported) return 0;
    if (seenlog_commit(rb->seen, why, whylen) != 0) return -1;
    bool changed = rb->imported || (rb->pend_newest_set && strcmp(rb->newest, rb->pend_newest) != 0) ||
                   (rb->pend_backfilled && !rb->backfilled);
    if (rb->pend_newest_set) memcpy(rb->newest, rb->pend_newest, sizeof rb->newest);
    if (rb->pend_backfilled) rb->backfilled = true;
    rb->pend_newest_set = rb->pend_backfilled = false;
    if (!changed) return 0; /* only ids: the journal has them */
    json_object *st = json_object_new_object();
    json_object_object_add(st, "newest", json_object_new_string(rb->newest));
    json_object_object_add(st, "backfilled", json_object_new_boolean(rb->backfilled));
    int rc = statefile_save(crawl_state_path(b), st, why, whylen);
    json_object_put(st);
    if (rc == 0) rb->imported = false;
    return rc;
}

static void reddit_drop(crawl_board *b, void *kb) {
    (void)b;
    reddit_board *rb = kb;
    seenlog_drop(rb->seen);
    rb->pend_newest_set = rb->pend_backfilled = false;
}

/* --- one page --- */

static bool reddit_has(const reddit_board *rb, const char *id) {
    return seenlog_has(rb->seen, id);
}

/* The page size the template asks for (limit=N), reddit's 25 without. */
static size_t reddit_page_limit(const char *url) {
    const char *p = strstr(url, "limit=");
    if (!p || (p > url && p[-1] != '?' && p[-1] != '&')) return 25;
    long n = strtol(p + 6, NULL, 10);
    return n > 0 && n <= 100 ? (size_t)n : 25;
}

/* What one page says for the walk. */
typedef struct reddit_page {
    size_t nsubs, nchildren, fresh;
    bool hit_seen;            /* a submission on it was published before */
    reddit_id first;          /* fullname of its first (newest) submission, or "" */
    reddit_id after, before;  /* the listing's cursors */
} reddit_page;

/* --- OAuth --- */

/* A bearer token for the site: the one in hand unless RENEW or due for
 * renewal, else a new one from the token URL (client credentials, HTTP
 * basic auth).  CRAWL_OK, CRAWL_FAILED (logged) or CRAWL_STOPPED. */
static int reddit_token(crawl_board *b, reddit_conf *rc, bool renew) {
    if (rc->token && !renew && time_mono_ns() < rc->token_renew_ns) return CRAWL_OK;
    const site_config *c = crawl_site(b);
    static const char body[] = "grant_type=client_credentials";
    http_request req = {.url = c->urls[REDDIT_URL_TOKEN],
                        .post_body = body,
                        .post_len = sizeof body - 1,
                        .userpwd = rc->userpwd,
                        .max_bytes = REDDIT_TOKEN_MAX_BODY};
    http_response resp;
    crawl_get(b, &req, &resp);
    int rc_out = CRAWL_OK;
    json_object *root = NULL, *tok, *ttl;
    if (resp.result == HTTP_STOPPED) {
        rc_out = CRAWL_STOPPED;
    } else if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s: cannot get an OAuth token from %s: %s", c->name, req.url, resp.error);
        rc_out = CRAWL_FAILED;
    } else if (!(root = json_tokener_parse(resp.body)) || !json_object_object_get_ex(root, "access_token", &tok) ||
               !json_object_is_type(tok, json_type_string) || !json_object_get_string_len(tok)) {
        log_write(crawl_warn_level(b), "%s: the OAuth token answer of %s has no access_token", c->name, req.url);
        crawl_count_refused(b);
        rc_out = CRAWL_FAILED;
    } else {
        int64_t expires = json_object_object_get_ex(root, "expires_in", &ttl) && json_object_is_type(ttl, json_type_int)
                              ? json_object_get_int64(ttl)
                              : 3600;
        int64_t keep_s = expires > 2 * REDDIT_TOKEN_MARGIN_S ? expires - REDDIT_TOKEN_MARGIN_S : expires / 2;
        free(rc->token);
        rc->token = xstrdup(json_object_get_string(tok));
        rc->token_renew_ns = time_mono_ns() + (keep_s > 0 ? keep_s : 0) * 1000 * TIME_NS_PER_MS;
        log_info("%s: OAuth token taken, renewed in %" PRId64 " s", c->name, keep_s);
    }
    json_object_put(root);
    http_response_release(&resp);
    return rc_out;
}

/* GET URL, with the site's OAuth token when it has a client: a 401 gets a
 * new token and one more try.  CRAWL_OK (resp filled: look at its result),
 * or CRAWL_FAILED / CRAWL_STOPPED when no token could be had (resp
 * zeroed). */
static int reddit_get(crawl_board *b, http_request *req, http_response *resp) {
    reddit_conf *rc = crawl_site(b)->kind_conf;
    memset(resp, 0, sizeof *resp);
    if (!rc || !rc->userpwd) {
        crawl_get(b, req, resp);
        return CRAWL_OK;
    }
    for (int attempt = 0;; attempt++) {
        int trc = reddit_token(b, rc, attempt > 0);
        if (trc != CRAWL_OK) return trc;
        char *auth = xasprintf("Authorization: bearer %s", rc->token);
        const char *headers[] = {auth, NULL};
        req->headers = headers;
        crawl_get(b, req, resp);
        req->headers = NULL;
        free(auth);
        if (!(resp->result == HTTP_STATUS_ERROR && resp->status == 401) || attempt > 0) return CRAWL_OK;
        log_info("%s: reddit refused the OAuth token (401): taking a new one", crawl_site(b)->name);
        http_response_release(resp);
    }
}

/* What reddit_emit_sub needs of the page being read. */
typedef struct reddit_emit_ctx {
    crawl_board *b;
    reddit_board *rb;
    reddit_page *pg;
    int64_t crawled_at;
    int rc; /* CRAWL_OK, or what crawl_emit returned */
} reddit_emit_ctx;

/* One submission of a listing (redditapi_listing_each): emit it unless it
 * was published already.  Nonzero stops the walk (crawl_emit failed). */
static int reddit_emit_sub(void *arg, json_object *sub) {
    reddit_emit_ctx *x = arg;
    const site_config *c = crawl_site(x->b);
    const char *id = redditapi_sub_id(sub);
    if (!x->pg->first[0]) snprintf(x->pg->first, sizeof x->pg->first, "t3_%s", id);
    if (reddit_has(x->rb, id)) {
        x->pg->hit_seen = true;
        return 0;
    }
    seenlog_pend(x->rb->seen, id); /* before redditapi_item changes the submission */
    redditapi_item(sub, c->name, crawl_board_name(x->b), c->urls[REDDIT_URL_FILE], x->crawled_at);
    x->rc = crawl_emit(x->b, "submission", sub);
    if (x->rc != CRAWL_OK) return 1;
    x->pg->fresh++;
    return 0;
}

/* GET the listing with CURSOR_KEY=CURSOR (NULL: none) and emit what is new.
 * CRAWL_OK, CRAWL_FAILED, or what crawl_emit returned. */
static int reddit_page_get(crawl_board *b, reddit_board *rb, reddit_walk walk, const char *cursor_key,
                           const char *cursor, reddit_page *pg) {
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char why[REDDIT_WHY];
    memset(pg, 0, sizeof *pg);
    const reddit_conf *conf = c->kind_conf;
    char *base = sites_expand(c->urls[conf && conf->userpwd ? REDDIT_URL_OAUTH_NEW : REDDIT_URL_NEW], board, NULL,
                              NULL, NULL);
    char *url = cursor ? xasprintf("%s%c%s=%s", base, strchr(base, '?') ? '&' : '?', cursor_key, cursor)
                       : xstrdup(base);
    free(base);
    static const char *const ratelimit_headers[] = {"X-Ratelimit-Remaining", "X-Ratelimit-Reset", NULL};
    http_request req = {.url = url, .keep_headers = ratelimit_headers};
    http_response resp;
    int64_t crawled_at = time_wall_ms() / 1000;
    int grc = reddit_get(b, &req, &resp);
    if (grc != CRAWL_OK) {
        free(url);
        return grc;
    }
    /* reddit says how many requests are left until its window resets: when
     * none is, every request to the host waits for the reset. */
    int64_t hold_ms = redditapi_ratelimit_wait_ms(resp.kept[0], resp.kept[1]);
    if (hold_ms > 0) {
        log_info("%s r/%s: reddit's rate limit is used up (X-Ratelimit-Remaining %s): waiting %.1f s for its reset",
                 c->name, board, resp.kept[0] ? resp.kept[0] : "?", (double)hold_ms / 1000);
        crawl_hold_host(b, url, hold_ms);
    }
    int rc = CRAWL_OK;
    if (resp.result == HTTP_STOPPED) {
        rc = CRAWL_STOPPED;
    } else if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s r/%s (%s): %s", c->name, board, reddit_walk_names[walk], resp.error);
        rc = CRAWL_FAILED;
    } else {
        redditapi_listing l;
        reddit_emit_ctx x = {.b = b, .rb = rb, .pg = pg, .crawled_at = crawled_at, .rc = CRAWL_OK};
        if (redditapi_listing_each(resp.body, resp.body_len, crawl_max_tree(b), &l, reddit_emit_sub, &x, why,
                                   sizeof why) < 0) {
            log_write(crawl_warn_level(b), "%s r/%s (%s): %s", c->name, board, reddit_walk_names[walk], why);
            crawl_count_refused(b);
            rc = CRAWL_FAILED;
        } else {
            crawl_count_read(b);
            if (l.nrefused)
                log_write(crawl_warn_level(b), "%s r/%s: %zu of %zu children passed over (%s)", c->name, board,
                          l.nrefused, l.nchildren, l.first_refused);
            pg->nsubs = l.nsubs;
            pg->nchildren = l.nchildren;
            memcpy(pg->after, l.after, sizeof pg->after);
            memcpy(pg->before, l.before, sizeof pg->before);
            rc = x.rc;
        }
    }
    http_response_release(&resp);
    free(url);
    return rc;
}

/* --- the walks --- */

/* Walk down with `after` from the top.  STOP_AT_SEEN: end on the page that
 * holds a submission published before.  The newest is recorded at the end. */
static int reddit_walk_down(crawl_board *b, reddit_board *rb, reddit_walk walk, size_t *fresh) {
    const site_config *c = crawl_site(b);
    size_t limit = (size_t)reddit_backfill(c), looked = 0;
    reddit_id cursor = "", newest = "";
    int rc = CRAWL_OK;
    for (;;) {
        if (crawl_stopping()) return CRAWL_STOPPED;
        reddit_page pg;
        rc = reddit_page_get(b, rb, walk, "after", cursor[0] ? cursor : NULL, &pg);
        if (rc != CRAWL_OK) return rc;
        *fresh += pg.fresh;
        if (!newest[0]) memcpy(newest, pg.first, sizeof newest);
        looked += pg.nchildren;
        rc = crawl_checkpoint(b);
        if (rc != CRAWL_OK) return rc;
        if (!pg.nchildren || !pg.after[0] || looked >= limit) break;
        if (walk == REDDIT_DOWN && pg.hit_seen) break;
        memcpy(cursor, pg.after, sizeof cursor);
    }
    if (newest[0]) {
        memcpy(rb->pend_newest, newest, sizeof newest);
        rb->pend_newest_set = true;
    }
    if (walk == REDDIT_FIRST) rb->pend_backfilled = true;
    return CRAWL_OK;
}

/* Walk up with `before` from the newest recorded.  *EMPTY: the first page
 * was empty (nothing new, or the newest is gone). */
static int reddit_walk_up(crawl_board *b, reddit_board *rb, bool *empty, size_t *fresh) {
    const site_config *c = crawl_site(b);
    size_t page_limit = reddit_page_limit(c->urls[REDDIT_URL_NEW]);
    size_t max_pages = (size_t)reddit_backfill(c) / page_limit + 2;
    reddit_id cursor;
    memcpy(cursor, rb->newest, sizeof cursor);
    *empty = false;
    for (size_t page = 0; page < max_pages; page++) {
        if (crawl_stopping()) return CRAWL_STOPPED;
        reddit_page pg;
        int rc = reddit_page_get(b, rb, REDDIT_UP, "before", cursor, &pg);
        if (rc != CRAWL_OK) return rc;
        *fresh += pg.fresh;
        if (!pg.nchildren) {
            *empty = page == 0;
            return CRAWL_OK;
        }
        if (pg.first[0]) {
            memcpy(rb->pend_newest, pg.first, sizeof pg.first);
            rb->pend_newest_set = true;
            memcpy(cursor, pg.first, sizeof cursor);
        }
        rc = crawl_checkpoint(b);
        if (rc != CRAWL_OK) return rc;
        if (!pg.before[0] && pg.nchildren < page_limit) return CRAWL_OK;
    }
    log_write(crawl_warn_level(b), "%s r/%s: more than %ld new submissions since the last poll; walking on next time",
              c->name, crawl_board_name(b), reddit_backfill(c));
    return CRAWL_OK;
}

static int reddit_poll(crawl_board *b, void *kb) {
    reddit_board *rb = kb;
    const site_config *c = crawl_site(b);
    size_t fresh = 0;
    int rc;
    reddit_walk walk;
    if (!rb->backfilled) {
        walk = REDDIT_FIRST;
        rc = reddit_walk_down(b, rb, walk, &fresh);
    } else if (!rb->newest[0]) {
        walk = REDDIT_DOWN;
        rc = reddit_walk_down(b, rb, walk, &fresh);
    } else {
        bool empty;
        walk = REDDIT_UP;
        rc = reddit_walk_up(b, rb, &empty, &fresh);
        if (rc == CRAWL_OK && empty) {
            log_debug("%s r/%s: nothing after %s (none new, or it was removed): walking down", c->name,
                      crawl_board_name(b), rb->newest);
            walk = REDDIT_DOWN;
            rc = reddit_walk_down(b, rb, walk, &fresh);
        }
    }
    if (fresh) log_info("%s r/%s: %zu new submissions (%s)", c->name, crawl_board_name(b), fresh, reddit_walk_names[walk]);
    return rc;
}

/* A submission's "created_utc": UNIX seconds, a number (reddit sends
 * 1700000000.0). */
static double reddit_item_time(json_object *item) {
    json_object *v;
    if (!json_object_object_get_ex(item, "created_utc", &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return -1;
    return json_object_get_double(v);
}

const source_kind source_reddit = {
    .name = "reddit",
    .templates = {{"new_url", "{api}/r/{board}/new.json?limit=100&raw_json=1"},
                  {"file_url", REDDITAPI_FILE_URL},
                  {"oauth_new_url", "{oauth}/r/{board}/new.json?limit=100&raw_json=1"},
                  {"token_url", "https://www.reddit.com/api/v1/access_token"},
                  {NULL, NULL}},
    .default_api = "https://www.reddit.com",
    .default_rps = REDDIT_RPS,
    .site_load = reddit_site_load,
    .site_free = reddit_site_free,
    .board_open = reddit_open,
    .board_poll = reddit_poll,
    .board_commit = reddit_commit,
    .board_drop = reddit_drop,
    .board_close = reddit_close,
    .item_time = reddit_item_time,
};
