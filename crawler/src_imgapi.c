/* src_imgapi.c -- the source kinds of random-image APIs: nekos_best,
 * waifu_pics, waifu_im, catboys.
 *
 * A board is a category (a tag for waifu_im, an endpoint for catboys).  A
 * poll is one GET of template "images_url" (each kind's default below,
 * {amount} from the site's "amount"), answered with random images
 * (imgapi.h); each image whose _id this board never published is emitted
 * as an item of type "image".  The four kinds share this one poll loop and
 * differ only in their table: template, default api, rps, and the shape
 * imgapi.c reads.
 *
 * Repeats: every _id published goes into the board's seenset (seenset.h),
 * at most "seen_max" ids (default 100000), saved in the state file after
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
 * The state file: {"seen": ["id", … oldest first]}.
 *
 * Rates (default_rps): nekos.best allows about 200 requests a minute per
 * category but the limiter keeps one rate per host, so 3 rps for all
 * categories together is safe; waifu.im documents 1 request per 200 ms
 * (5 rps, 429 with Retry-After, which crawl_get honours); waifu.pics and
 * catboys document none: 1 rps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "crawler.h"
#include "imgapi.h"
#include "log.h"
#include "seenset.h"
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

typedef enum imgapi_state { IMGAPI_FRESH, IMGAPI_SATURATED } imgapi_state;

typedef struct imgapi_conf {
    long amount;        /* images asked for an answer ({amount}) */
    long seen_max;      /* ids remembered */
    long saturate_after;
    long long slow_max; /* ms */
} imgapi_conf;

typedef struct imgapi_board {
    char *state_path;
    seenset *seen;     /* committed */
    seenset *pend_set; /* emitted, not yet confirmed */
    char (*pend)[IMGAPI_ID_MAX];
    size_t npend, pend_cap;
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
    long slow_s = (long)(IMGAPI_SLOW_MAX_DEFAULT / 1000);
    if (get_long(o, "amount", 1, 1000, &ic->amount, why, whylen) != 0 ||
        get_long(o, "seen_max", 1, 10000000, &ic->seen_max, why, whylen) != 0 ||
        get_long(o, "saturate_after", 1, 1000, &ic->saturate_after, why, whylen) != 0 ||
        get_long(o, "slow_max_s", 1, 7 * 86400, &slow_s, why, whylen) != 0) {
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
    static const imgapi_conf def = {1, IMGAPI_SEEN_DEFAULT, IMGAPI_SATURATE_DEFAULT, IMGAPI_SLOW_MAX_DEFAULT};
    return c->kind_conf ? c->kind_conf : &def;
}

/* --- state --- */

static void pending_reset(imgapi_board *ib, size_t max) {
    if (ib->npend || !ib->pend_set) {
        seenset_free(ib->pend_set);
        ib->pend_set = seenset_new(max);
    }
    ib->npend = 0;
}

static int imgapi_open(crawl_board *b, void **out, char *why, size_t whylen) {
    const site_config *c = crawl_site(b);
    const crawler_settings *s = crawl_settings(b);
    size_t max = (size_t)conf_of(c)->seen_max;
    imgapi_board *ib = xcalloc(1, sizeof *ib);
    ib->seen = seenset_new(max);
    pending_reset(ib, max);
    json_object *st = NULL;
    ib->state_path = statefile_path(s->state_dir, c->name, crawl_board_name(b), why, whylen);
    if (!ib->state_path || statefile_load(ib->state_path, &st, why, whylen) != 0) goto fail;
    if (st) {
        json_object *v;
        char reason[200];
        if (!json_object_is_type(st, json_type_object)) {
            snprintf(why, whylen, "%s: not an image category state (not an object)", ib->state_path);
            goto fail;
        }
        if (json_object_object_get_ex(st, "seen", &v) && seenset_from_json(ib->seen, v, reason, sizeof reason) != 0) {
            snprintf(why, whylen, "%s: seen: %s", ib->state_path, reason);
            goto fail;
        }
        json_object_put(st);
    }
    *out = ib;
    return 0;
fail:
    json_object_put(st);
    seenset_free(ib->seen);
    seenset_free(ib->pend_set);
    free(ib->state_path);
    free(ib);
    return -1;
}

static int imgapi_commit(crawl_board *b, void *kb, char *why, size_t whylen) {
    imgapi_board *ib = kb;
    if (!ib->npend) return 0;
    for (size_t i = 0; i < ib->npend; i++)
        seenset_add(ib->seen, ib->pend[i]);
    pending_reset(ib, (size_t)conf_of(crawl_site(b))->seen_max);
    json_object *st = json_object_new_object();
    json_object_object_add(st, "seen", seenset_to_json(ib->seen));
    int rc = statefile_save(ib->state_path, st, why, whylen);
    json_object_put(st);
    return rc;
}

static void imgapi_drop(crawl_board *b, void *kb) {
    pending_reset(kb, (size_t)conf_of(crawl_site(b))->seen_max);
}

static void imgapi_close(void *kb) {
    imgapi_board *ib = kb;
    if (!ib) return;
    seenset_free(ib->seen);
    seenset_free(ib->pend_set);
    free(ib->pend);
    free(ib->state_path);
    free(ib);
}

/* --- the poll --- */

/* Move between FRESH and SATURATED after an answer with FRESH_N new images
 * out of NIMAGES. */
static void imgapi_pace(crawl_board *b, imgapi_board *ib, size_t fresh_n, size_t nimages) {
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
    if (!nimages) return; /* an empty answer says nothing about repeats */
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
            rc = CRAWL_FAILED;
        } else {
            crawl_count_read(b);
            if (pg.nrefused)
                log_write(crawl_warn_level(b), "%s %s: %zu of %zu images passed over (%s)", c->name, board,
                          pg.nrefused, pg.nentries, pg.first_refused);
            for (size_t i = 0; i < pg.nimages && rc == CRAWL_OK; i++) {
                imgapi_image *img = &pg.images[i];
                if (seenset_has(ib->seen, img->id) || seenset_has(ib->pend_set, img->id)) continue;
                char keep[IMGAPI_ID_MAX];
                snprintf(keep, sizeof keep, "%s", img->id);
                imgapi_item(img, c->name, board, crawled_at);
                rc = crawl_emit(b, "image", img->obj);
                if (rc != CRAWL_OK) break;
                if (ib->npend == ib->pend_cap) {
                    ib->pend_cap = ib->pend_cap ? 2 * ib->pend_cap : 64;
                    ib->pend = xrealloc(ib->pend, ib->pend_cap * sizeof *ib->pend);
                }
                memcpy(ib->pend[ib->npend++], keep, sizeof keep);
                seenset_add(ib->pend_set, keep);
                fresh_n++;
            }
            if (rc == CRAWL_OK) {
                if (fresh_n) log_debug("%s %s: %zu new images", c->name, board, fresh_n);
                imgapi_pace(b, ib, fresh_n, pg.nimages);
            }
            imgapi_page_release(&pg);
        }
    }
    http_response_release(&resp);
    free(url);
    return rc;
}

#define IMGAPI_KIND(kname, tmpl, api, rps)                                                                   \
    {                                                                                                        \
        .name = kname, .templates = {{"images_url", tmpl}, {NULL, NULL}}, .default_api = api,                \
        .default_rps = rps, .site_load = imgapi_site_load, .site_free = imgapi_site_free,                    \
        .board_open = imgapi_open, .board_poll = imgapi_poll, .board_commit = imgapi_commit,                 \
        .board_drop = imgapi_drop, .board_close = imgapi_close,                                              \
    }

const source_kind source_nekos_best =
    IMGAPI_KIND("nekos_best", "{api}/{board}?amount={amount}", "https://nekos.best/api/v2", 3.0);
const source_kind source_waifu_pics = IMGAPI_KIND("waifu_pics", "{api}/sfw/{board}", "https://api.waifu.pics", 1.0);
const source_kind source_waifu_im =
    IMGAPI_KIND("waifu_im", "{api}/images?IncludedTags={board}&PageSize={amount}", "https://api.waifu.im", 5.0);
const source_kind source_catboys = IMGAPI_KIND("catboys", "{api}/{board}", "https://api.catboys.com", 1.0);
