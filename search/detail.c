/* detail.c -- a search result's details from the archive; see detail.h.
 *
 * The pool counts the connections it lost (closed because libpq found them
 * broken); a connection it opens while some are lost replaces one of them
 * and counts in imgfeed_database_reconnects_total (pgconn.h).  Opening one
 * more as requests grow is not a reconnect.
 */
#include "detail.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "entry.h"
#include "itemview.h"
#include "log.h"
#include "pgconn.h"
#include "sbuf.h"
#include "timeutil.h"
#include "xalloc.h"

#define DETAIL_ITEM_MAX (8u << 20) /* an item's text parsed for details at most */

struct detail {
    char *conninfo;
    size_t max_conns;
    pthread_mutex_t lock;
    PGconn **idle;
    size_t nidle, open;
    size_t lost;           /* connections found broken and not yet replaced */
    int64_t down_until_ns; /* after a failure, the archive is not asked before this */
    char down_why[256];
};

detail *detail_new(const char *conninfo, size_t max_conns) {
    detail *d = xcalloc(1, sizeof *d);
    d->conninfo = xstrdup(conninfo ? conninfo : "");
    d->max_conns = max_conns ? max_conns : 1;
    d->idle = xcalloc(d->max_conns, sizeof *d->idle);
    pthread_mutex_init(&d->lock, NULL);
    return d;
}

void detail_free(detail *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nidle; i++)
        PQfinish(d->idle[i]);
    free(d->idle);
    free(d->conninfo);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* A connection, or NULL with WHY. */
static PGconn *conn_take(detail *d, char *why, size_t whylen) {
    pthread_mutex_lock(&d->lock);
    if (time_mono_ns() < d->down_until_ns) {
        snprintf(why, whylen, "%s", d->down_why);
        pthread_mutex_unlock(&d->lock);
        return NULL;
    }
    if (d->nidle) {
        PGconn *c = d->idle[--d->nidle];
        pthread_mutex_unlock(&d->lock);
        return c;
    }
    d->open++;
    pthread_mutex_unlock(&d->lock);
    char err[200];
    PGconn *c = pgconn_open(d->conninfo, "imgfeed-search", err, sizeof err);
    if (!c) {
        snprintf(why, whylen, "the archive is unreachable: %s", err);
        pthread_mutex_lock(&d->lock);
        d->open--;
        d->down_until_ns = time_mono_ns() + (int64_t)DETAIL_RETRY_MS * TIME_NS_PER_MS;
        snprintf(d->down_why, sizeof d->down_why, "%s", why);
        pthread_mutex_unlock(&d->lock);
        log_warn("%s", why);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    bool again = d->lost > 0;
    if (again) d->lost--;
    pthread_mutex_unlock(&d->lock);
    if (again) pgconn_count_reconnect();
    return c;
}

/* Gives C back (healthy) or closes it (after an error). */
static void conn_give(detail *d, PGconn *c, bool healthy) {
    pthread_mutex_lock(&d->lock);
    if (healthy && PQstatus(c) == CONNECTION_OK && d->nidle < d->max_conns) {
        d->idle[d->nidle++] = c;
        c = NULL;
    }
    if (c) d->open--;
    if (c && PQstatus(c) != CONNECTION_OK) d->lost++;
    if (!healthy) d->down_until_ns = 0;
    pthread_mutex_unlock(&d->lock);
    if (c) PQfinish(c);
}

/* The text of PostgreSQL's array literal of the strings IDS. */
static void array_literal(sbuf *b, const char *const *ids, size_t n) {
    sbuf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_addc(b, ',');
        sbuf_addc(b, '"');
        for (const char *s = ids[i]; *s; s++) {
            if (*s == '"' || *s == '\\') sbuf_addc(b, '\\');
            sbuf_addc(b, *s);
        }
        sbuf_addc(b, '"');
    }
    sbuf_addc(b, '}');
    sbuf_addc(b, '\0');
}

static void add_copy(json_object *to, json_object *from, const char *key) {
    json_object *v = itemview_member(from, key);
    if (v) json_object_object_add(to, key, json_object_get(v));
}

/* The `_img` entry of ITEM whose url is N, or NULL. */
static json_object *entry_of(json_object *item, uint32_t n) {
    json_object *imgs = itemview_member(item, "_img");
    if (!json_object_is_type(imgs, json_type_array)) return NULL;
    for (size_t i = 0; i < json_object_array_length(imgs); i++) {
        json_object *e = json_object_array_get_idx(imgs, i), *u = itemview_member(e, "url");
        if (json_object_is_type(u, json_type_int) && json_object_get_int64(u) == (int64_t)n) return e;
    }
    return NULL;
}

/* Adds the item's and the entry's fields to R; false when the entry's
 * digest is not the one asked for. */
static bool fill(json_object *r, json_object *item, uint32_t n, catalog_kind kind, const unsigned char *digest) {
    json_object *e = entry_of(item, n);
    if (digest && (kind == CATALOG_SHA1 || kind == CATALOG_MD5)) {
        size_t dl = kind == CATALOG_SHA1 ? 20 : 16;
        unsigned char have[20];
        if (!e || entry_hex_decode(itemview_string(e, catalog_kind_name(kind)), have, dl) != 0 ||
            memcmp(have, digest, dl) != 0)
            return false;
    }
    const char *url = e ? itemview_image_url(item, e) : NULL;
    if (url) json_object_object_add(r, "url", json_object_new_string(url));
    static const char *const entry_keys[] = {"width", "height", "format", "size", "sha1", "md5"};
    for (size_t i = 0; e && i < sizeof entry_keys / sizeof entry_keys[0]; i++)
        add_copy(r, e, entry_keys[i]);
    static const struct {
        const char *out, *in;
    } ids[] = {{"site", "_chan"}, {"board", "_board"}, {"type", "_type"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const char *s = itemview_string(item, ids[i].in);
        if (s) json_object_object_add(r, ids[i].out, json_object_new_string(s));
    }
    json_object_object_add(r, "time", json_object_new_int64(itemview_time(item)));
    char *link = itemview_link(item);
    if (link) json_object_object_add(r, "link", json_object_new_string(link));
    free(link);
    size_t tl;
    char *text = itemview_text(item, DETAIL_TEXT_MAX, &tl);
    json_object_object_add(r, "text", json_object_new_string_len(text, (int)tl));
    free(text);
    json_object_object_add(r, "nsfw", json_object_new_boolean(itemview_nsfw(item, "", NULL)));
    return true;
}

/* Reads the rows of TABLE among HITS into ITEMS[i] (parsed, or NULL). */
static int read_table(PGconn *c, const char *table, const catalog_hit *hits, size_t n, json_object **items, char *why,
                      size_t whylen) {
    const char **ids = xmalloc(n * sizeof *ids);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(hits[i].table, table) == 0) ids[m++] = hits[i].id;
    sbuf arr = {0};
    array_literal(&arr, ids, m);
    free(ids);
    char *quoted = PQescapeIdentifier(c, table, strlen(table));
    char *sql = quoted ? xasprintf("SELECT id, data::text FROM %s WHERE id = ANY($1::text[])", quoted) : NULL;
    PQfreemem(quoted);
    const char *params[1] = {arr.p};
    PGresult *r = sql ? PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0) : NULL;
    free(sql);
    free(arr.p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char err[300];
        pgconn_error_text(r ? PQresultErrorMessage(r) : PQerrorMessage(c), err, sizeof err);
        snprintf(why, whylen, "cannot read %s from the archive: %s", table, err);
        PQclear(r);
        return -1;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        const char *id = PQgetvalue(r, row, 0);
        int len = PQgetlength(r, row, 1);
        json_object *item = NULL;
        for (size_t i = 0; i < n; i++) {
            if (items[i] || strcmp(hits[i].table, table) != 0 || strcmp(hits[i].id, id) != 0) continue;
            if (!item && (size_t)len <= DETAIL_ITEM_MAX) item = json_tokener_parse(PQgetvalue(r, row, 1));
            if (item) items[i] = json_object_get(item);
        }
        json_object_put(item);
    }
    PQclear(r);
    return 0;
}

int detail_add(detail *d, const catalog_hit *hits, size_t n, catalog_kind kind, const unsigned char *digest,
               json_object *results, char *why, size_t whylen) {
    json_object **items = xcalloc(n ? n : 1, sizeof *items);
    int status = 0;
    if (n) {
        PGconn *c = conn_take(d, why, whylen);
        if (!c) status = -1;
        for (size_t i = 0; c && i < n && status == 0; i++) {
            bool first = true; /* the first hit of its table reads the whole table's share */
            for (size_t j = 0; j < i; j++)
                if (strcmp(hits[j].table, hits[i].table) == 0) first = false;
            if (first) status = read_table(c, hits[i].table, hits, n, items, why, whylen);
        }
        if (c) conn_give(d, c, status == 0);
    }
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "table", json_object_new_string(hits[i].table));
        json_object_object_add(r, "id", json_object_new_string(hits[i].id));
        json_object_object_add(r, "image", json_object_new_int64(hits[i].n));
        json_object_object_add(r, "distance", json_object_new_int(hits[i].distance));
        if (items[i] && !fill(r, items[i], hits[i].n, kind, digest)) {
            json_object_put(r);
            r = NULL;
        }
        if (r) json_object_array_add(results, r);
        json_object_put(items[i]);
    }
    free(items);
    return status;
}
