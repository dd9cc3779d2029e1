/* src_imgapi.c -- the source kinds of random-image APIs: nekos_best,
 * waifu_pics, waifu_im, catboys.
 *
 * A board is a category (a tag for waifu_im, an endpoint for catboys).  A
 * poll is one request of template "images_url" (each kind's default below,
 * {amount} from the site's "amount"), answered with random images
 * (imgapi.h); each image whose _id this board never published is emitted
 * as an item of type "image".  The four kinds share this one poll loop and
 * differ only in their table: template, default api, rps, whether the
 * request is a POST with an exclude list, and the shape imgapi.c reads.
 *
 * waifu_pics is asked with POST {api}/many/sfw/{board} and the body
 * {"exclude": [url, …]}: the urls of the last "exclude_max" (default 100)
 * images this board published in this process, so that the 30 images of an
 * answer are ones it has not sent lately.  Once the category has nothing
 * else, it answers an empty "files": with an exclude list sent, that counts
 * as an answer of repeats.
 *
 * Repeats: every _id published goes into the board's seenlog (seenlog.h),
 * at most "seen_max" ids (default 100000), appended to its journal after
 * the broker confirmed them, so a kill -9 repeats at most what was not
 * confirmed.  A board moves between two states:
 *
 *   IMGAPI_FRESH      answers bring new images: poll at the site's rate.
 *   IMGAPI_SATURATED  "saturate_after" answers in a row (default 3) were all
 *                     repeats: the category has nothing new to give, so the
 *                     next poll waits twice as long as the last, from the
 *                     poll interval up to "slow_max" ms (default 1 hour)
 *                     (crawl_poll_after).  Logged once when entered, and
 *                     once when a fresh image brings the normal rate back.
 *
 * On disk: the journal "<state>.seen" of the seenlog.  A state file of an
 * older crawler, {"seen": ["id", … oldest first]}, is imported into the
 * journal at the first commit and then removed.
 *
 * Rates (default_rps): nekos.best allows about 200 requests a minute per
 * category but the limiter keeps one rate per host, so 3 rps for all
 * categories together is safe; waifu.im documents 1 request per 200 ms
 * (5 rps, 429 with Retry-After, which crawl_get honours); waifu.pics and
 * catboys document none: 1 rps.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "crawler.h"
#include "imgapi.h"
#include "log.h"
#include "seenlog.h"
#include "sites.h"
#include "source.h"
#include "statefile.h"
#include "timeutil.h"
#include "urltmpl.h"
#include "xalloc.h"

#define IMGAPI_WHY 512
#define IMGAPI_SEEN_DEFAULT 100000
#define IMGAPI_SATURATE_DEFAULT 3
#define IMGAPI_SLOW_MAX_DEFAULT (3600 * 1000LL)
#define IMGAPI_EXCLUDE_DEFAULT 100

typedef enum imgapi_state { IMGAPI_FRESH, IMGAPI_SATURATED } imgapi_state;

typedef struct imgapi_conf {
    long amount;        /* images asked for an answer ({amount}) */
    long seen_max;      /* ids remembered */
    long saturate_after;
    long long slow_max; /* ms */
    long exclude_max;   /* urls in a POST's exclude list; 0: the kind GETs */
} imgapi_conf;

typedef struct imgapi_board {
    seenlog *seen;      /* the _ids published, pending ones too */
    bool legacy;        /* an older state file was imported: remove it after the first commit */
    char **pend_urls;   /* the urls of the pending images, when the kind sends exclude lists */
    size_t npend_urls, pend_urls_cap;
    char **recent;      /* the urls of the last exclude_max images confirmed, a ring */
    size_t nrecent, recent_next;
    imgapi_state state;
    long repeats;       /* answers in a row with nothing new */
    long long slow_ms;  /* the last wait while saturated */
} imgapi_board;

/* --- the kinds --- */

static imgapi_kind kind_of(const site_config *c) {
    if (strcmp(c->kind->name, "nekos_best") == 0) return IMGAPI_NEKOS_BEST;
    if (strcmp(c->kind->name, "waifu_pics") == 0) return IMGAPI_WAIFU_PICS;
    if (strcmp(c->kind->name, "waifu_im") == 0) return IMGAPI_WAIFU_IM;
    return IMGAPI_CATBOYS;
}

static long default_amount(imgapi_kind k) {
    return k == IMGAPI_NEKOS_BEST ? 20 : k == IMGAPI_WAIFU_IM ? 30 : 1;
}

/* Only waifu_pics' /many takes an exclude list. */
static bool sends_exclude(imgapi_kind k) {
    return k == IMGAPI_WAIFU_PICS;
}

/* --- settings --- */

static int get_long(json_object *o, const char *key, long lo, long hi, long *out, char *why, size_t whylen) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo || json_object_get_int64(v) > hi) {
        snprintf(why, whylen, "%s must be an integer from %ld to %ld", key, lo, hi);
        return -1;
    }
    *out = (long)json_object_get_int64(v);
    return 0;
}

static int imgapi_site_load(site_config *c, json_object *o, char *why, size_t whylen) {
    imgapi_conf *ic = xcalloc(1, sizeof *ic);
    ic->amount = default_amount(kind_of(c));
    ic->seen_max = IMGAPI_SEEN_DEFAULT;
    ic->saturate_after = IMGAPI_SATURATE_DEFAULT;
    ic->exclude_max = sends_exclude(kind_of(c)) ? IMGAPI_EXCLUDE_DEFAULT : 0;
    long slow_s = (long)(IMGAPI_SLOW_MAX_DEFAULT / 1000);
    if (get_long(o, "amount", 1, 1000, &ic->amount, why, whylen) != 0 ||
        get_long(o, "seen_max", 1, 10000000, &ic->seen_max, why, whylen) != 0 ||
        get_long(o, "saturate_after", 1, 1000, &ic->saturate_after, why, whylen) != 0 ||
        get_long(o, "slow_max_s", 1, 7 * 86400, &slow_s, why, whylen) != 0 ||
        (sends_exclude(kind_of(c)) && get_long(o, "exclude_max", 0, 10000, &ic->exclude_max, why, whylen) != 0)) {
        free(ic);
        return -1;
    }
    ic->slow_max = slow_s * 1000LL;
    c->kind_conf = ic;
    return 0;
}

static void imgapi_site_free(site_config *c) {
    free(c->kind_conf);
    c->kind_conf = NULL;
}

static const imgapi_conf *conf_of(const site_config *c) {
    static const imgapi_conf def = {1, IMGAPI_SEEN_DEFAULT, IMGAPI_SATURATE_DEFAULT, IMGAPI_SLOW_MAX_DEFAULT, 0};
    return c->kind_conf ? c->kind_conf : &def;
}

/* --- state --- */

/* Forget the urls of the pending images. */
static void pending_urls_clear(imgapi_board *ib) {
    for (size_t i = 0; i < ib->npend_urls; i++)
        free(ib->pend_urls[i]);
    ib->npend_urls = 0;
}

/* Put URL (taken) into the ring of the last MAX urls confirmed. */
static void recent_add(imgapi_board *ib, char *url, size_t max) {
    if (!max) {
        free(url);
        return;
    }
    if (!ib->recent) ib->recent = xcalloc(max, sizeof *ib->recent);
    free(ib->recent[ib->recent_next]);
    ib->recent[ib->recent_next] = url;
    ib->recent_next = (ib->recent_next + 1) % max;
    if (ib->nrecent < max) ib->nrecent++;
}

/* The body of a POST: {"exclude": [the ring's urls]}.  Freed by the caller. */
static char *exclude_body(const imgapi_board *ib) {
    json_object *o = json_object_new_object(), *list = json_object_new_array();
    for (size_t i = 0; i < ib->nrecent; i++)
        json_object_array_add(list, json_object_new_string(ib->recent[i]));
    json_object_object_add(o, "exclude", list);
    char *body = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return body;
}

static void imgapi_close(void *kb) {
    imgapi_board *ib = kb;
    if (!ib) return;
    pending_urls_clear(ib);
    free(ib->pend_urls);
    for (size_t i = 0; i < ib->nrecent; i++)
        free(ib->recent[i]);
    free(ib->recent);
    seenlog_close(ib->seen);
    free(ib);
}

static int imgapi_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const char *path = crawl_state_path(b);
    imgapi_board *ib = xcalloc(1, sizeof *ib);
    json_object *st = NULL;
    ib->seen = seenlog_open(path, (size_t)conf_of(crawl_site(b))->seen_max, why, whylen);
    if (!ib->seen || statefile_load(path, &st, why, whylen) != 0) goto fail;
    if (st) { /* an older crawler's state */
        json_object *v;
        char reason[200];
        if (!json_object_is_type(st, json_type_object)) {
            snprintf(why, whylen, "%s: not an image category state (not an object)", path);
            goto fail;
        }
        if (json_object_object_get_ex(st, "seen", &v) && seenlog_import(ib->seen, v, reason, sizeof reason) != 0) {
            snprintf(why, whylen, "%s: seen: %s", path, reason);
            goto fail;
        }
        ib->legacy = true;
        json_object_put(st);
    }
    *out = ib;
    return 0;
fail:
    json_object_put(st);
    imgapi_close(ib);
    return -1;
}

static int imgapi_commit(crawl_board *b, void *kb, char *why, size_t whylen) {
    imgapi_board *ib = kb;
    if (!seenlog_pending(ib->seen) && !ib->legacy) return 0;
    for (size_t i = 0; i < ib->npend_urls; i++) {
        recent_add(ib, ib->pend_urls[i], (size_t)conf_of(crawl_site(b))->exclude_max);
        ib->pend_urls[i] = NULL;
    }
    ib->npend_urls = 0;
    if (seenlog_commit(ib->seen, why, whylen) != 0) return -1;
    if (ib->legacy && unlink(crawl_state_path(b)) != 0 && errno != ENOENT) {
        snprintf(why, whylen, "cannot remove %s, imported into %s: %s", crawl_state_path(b),
                 seenlog_path(ib->seen), strerror(errno));
        return -1;
    }
    ib->legacy = false;
    return 0;
}

static void imgapi_drop(crawl_board *b, void *kb) {
    (void)b;
    imgapi_board *ib = kb;
    seenlog_drop(ib->seen);
    pending_urls_clear(ib);
}

/* --- the poll --- */

/* Move between FRESH and SATURATED after an answer with FRESH_N new images
 * out of NIMAGES, to a request that EXCLUDED images already sent. */
static void imgapi_pace(crawl_board *b, imgapi_board *ib, size_t fresh_n, size_t nimages, bool excluded) {
    const site_config *c = crawl_site(b);
    const imgapi_conf *ic = conf_of(c);
    if (fresh_n) {
        if (ib->state == IMGAPI_SATURATED)
            log_info("%s %s: fresh images again, back to polling every %lld ms", c->name, crawl_board_name(b),
                     (long long)c->poll_interval_ms);
        ib->state = IMGAPI_FRESH;
        ib->repeats = 0;
        return;
    }
    if (!nimages && !excluded) return; /* an empty answer says nothing about repeats, unless we excluded some */
    ib->repeats++;
    if (ib->state == IMGAPI_FRESH && ib->repeats >= ic->saturate_after) {
        ib->state = IMGAPI_SATURATED;
        ib->slow_ms = c->poll_interval_ms > 0 ? c->poll_interval_ms : 1000;
        log_info("%s %s: saturated, the last %ld answers were all repeats: polling less often, up to every %lld ms",
                 c->name, crawl_board_name(b), ib->repeats, ic->slow_max);
    }
    if (ib->state == IMGAPI_SATURATED) {
        ib->slow_ms = ib->slow_ms * 2 > ic->slow_max ? ic->slow_max : ib->slow_ms * 2;
        crawl_poll_after(b, ib->slow_ms);
    }
}

static int imgapi_poll(crawl_board *b, void *kb) {
    imgapi_board *ib = kb;
    const site_config *c = crawl_site(b);
    const char *board = crawl_board_name(b);
    char why[IMGAPI_WHY], amount[24];
    snprintf(amount, sizeof amount, "%ld", conf_of(c)->amount);
    urltmpl_var vars[] = {{"board", board, true}, {"amount", amount, false}};
    char *url = urltmpl_expand(c->urls[0], vars, 2);
    http_request req = {.url = url};
    char *post = NULL;
    bool excluded = false;
    if (sends_exclude(kind_of(c))) {
        static const char *const json_type[] = {"Content-Type: application/json", NULL};
        post = exclude_body(ib);
        excluded = ib->nrecent > 0;
        req.post_body = post;
        req.post_len = strlen(post);
        req.headers = json_type;
    }
    http_response resp;
    int64_t crawled_at = time_wall_ms() / 1000;
    crawl_get(b, &req, &resp);
    int rc = CRAWL_OK;
    size_t fresh_n = 0;
    if (resp.result == HTTP_STOPPED) {
        rc = CRAWL_STOPPED;
    } else if (resp.result != HTTP_OK) {
        log_write(crawl_warn_level(b), "%s %s: %s", c->name, board, resp.error);
        rc = CRAWL_FAILED;
    } else {
        imgapi_page pg;
        if (imgapi_parse(kind_of(c), resp.body, resp.body_len, crawl_max_tree(b), &pg, why, sizeof why) != 0) {
            log_write(crawl_warn_level(b), "%s %s: %s", c->name, board, why);
            crawl_count_refused(b);
            rc = CRAWL_FAILED;
        } else {
            crawl_count_read(b);
            if (pg.nrefused)
                log_write(crawl_warn_level(b), "%s %s: %zu of %zu images passed over (%s)", c->name, board,
                          pg.nrefused, pg.nentries, pg.first_refused);
            for (size_t i = 0; i < pg.nimages && rc == CRAWL_OK; i++) {
                imgapi_image *img = &pg.images[i];
                if (seenlog_has(ib->seen, img->id)) continue;
                /* its url, for the exclude list, before imgapi_item changes obj */
                char *img_url = conf_of(c)->exclude_max ? xstrdup(img->url) : NULL;
                seenlog_pend(ib->seen, img->id);
                imgapi_item(img, c->name, board, crawled_at);
                rc = crawl_emit(b, "image", img->obj);
                if (rc != CRAWL_OK) {
                    free(img_url);
                    break;
                }
                if (img_url) {
                    if (ib->npend_urls == ib->pend_urls_cap) {
                        ib->pend_urls_cap = ib->pend_urls_cap ? 2 * ib->pend_urls_cap : 64;
                        ib->pend_urls = xrealloc(ib->pend_urls, ib->pend_urls_cap * sizeof *ib->pend_urls);
                    }
                    ib->pend_urls[ib->npend_urls++] = img_url;
                }
                fresh_n++;
            }
            if (rc == CRAWL_OK) {
                if (fresh_n) log_debug("%s %s: %zu new images", c->name, board, fresh_n);
                imgapi_pace(b, ib, fresh_n, pg.nimages, excluded);
            }
            imgapi_page_release(&pg);
        }
    }
    http_response_release(&resp);
    free(post);
    free(url);
    return rc;
}

/* No kind here has an item time that says when the item appeared: waifu.im's
 * "uploaded_at" is the upload of a random old image, not a new post, so no
 * image of these APIs is counted in imgfeed_crawler_lag_seconds. */
#define IMGAPI_KIND(kname, tmpl, api, rps, time_fn)                                                          \
    {                                                                                                        \
        .name = kname, .templates = {{"images_url", tmpl}, {NULL, NULL}}, .default_api = api,                \
        .default_rps = rps, .site_load = imgapi_site_load, .site_free = imgapi_site_free,                    \
        .board_open = imgapi_open, .board_poll = imgapi_poll, .board_commit = imgapi_commit,                 \
        .board_drop = imgapi_drop, .board_close = imgapi_close, .item_time = time_fn,                          \
    }

const source_kind source_nekos_best =
    IMGAPI_KIND("nekos_best", "{api}/{board}?amount={amount}", "https://nekos.best/api/v2", 3.0, NULL);
const source_kind source_waifu_pics =
    IMGAPI_KIND("waifu_pics", "{api}/many/sfw/{board}", "https://api.waifu.pics", 1.0, NULL);
const source_kind source_waifu_im = IMGAPI_KIND("waifu_im", "{api}/images?IncludedTags={board}&PageSize={amount}",
                                                "https://api.waifu.im", 5.0, NULL);
const source_kind source_catboys = IMGAPI_KIND("catboys", "{api}/{board}", "https://api.catboys.com", 1.0, NULL);
