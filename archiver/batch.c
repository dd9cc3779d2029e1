/* batch.c -- the items held until the next COMMIT; see batch.h.
 *
 * Each table has one arena (a growing byte buffer) for the mended item texts
 * and _ids, a row array, and an open-addressing hash from _id to the row
 * that wins.  Offsets, not pointers, point into the arena, since it moves
 * when it grows.  A message is checked whole before any of its rows are
 * added, so a refused message leaves nothing behind.
 */
#include "batch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "itemtext.h"
#include "items.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#define BATCH_JSONB_OID 3802

void batch_init(batch *b, const char *exchange, size_t max_item_bytes) {
    memset(b, 0, sizeof *b);
    b->exchange = exchange;
    b->max_item_bytes = max_item_bytes;
}

static void batch_table_release(batch_table *t) {
    free(t->key_prefix);
    free(t->rows);
    free(t->arena.p);
    free(t->slots);
}

void batch_clear(batch *b) {
    for (size_t i = 0; i < b->nmsgs; i++)
        mq_delivery_release(&b->msgs[i].d);
    for (size_t i = 0; i < b->ntables; i++)
        batch_table_release(&b->tables[i]);
    b->nmsgs = b->ntables = 0;
    b->items = b->bytes = b->repaired = 0;
    b->started_ns = 0;
}

void batch_release(batch *b) {
    batch_clear(b);
    free(b->msgs);
    free(b->tables);
    b->msgs = NULL;
    b->tables = NULL;
    b->msgs_cap = b->tables_cap = 0;
}

/* --- tables --- */

static size_t batch_table_find(batch *b, const char *name, const char *routing_key) {
    for (size_t i = 0; i < b->ntables; i++)
        if (strcmp(b->tables[i].name, name) == 0) return i;
    if (b->ntables == b->tables_cap) {
        b->tables_cap = b->tables_cap ? 2 * b->tables_cap : 8;
        b->tables = xrealloc(b->tables, b->tables_cap * sizeof *b->tables);
    }
    batch_table *t = &b->tables[b->ntables];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    const char *dot = strrchr(routing_key, '.');
    t->key_prefix = xstrndup(routing_key, dot ? (size_t)(dot - routing_key) : strlen(routing_key));
    return b->ntables++;
}

/* Room for N more bytes in the arena; returns the offset where they go. */
static size_t batch_arena_reserve(batch_table *t, size_t n) {
    sbuf_grow(&t->arena, n);
    return t->arena.len;
}

static uint64_t batch_hash(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of ID: the one holding it, or the empty one where it would go. */
static size_t batch_slot(const batch_table *t, const char *id) {
    size_t mask = t->nslots - 1, i = (size_t)batch_hash(id) & mask;
    while (t->slots[i] && strcmp(t->arena.p + t->rows[t->slots[i] - 1].id_off, id) != 0)
        i = (i + 1) & mask;
    return i;
}

static void batch_slots_grow(batch_table *t) {
    size_t old_n = t->nslots;
    uint32_t *old = t->slots;
    t->nslots = old_n ? 2 * old_n : 1024;
    t->slots = xcalloc(t->nslots, sizeof *t->slots);
    for (size_t i = 0; i < old_n; i++)
        if (old[i]) t->slots[batch_slot(t, t->arena.p + t->rows[old[i] - 1].id_off)] = old[i];
    free(old);
}

/* Does row N win over row O of the same _id?  The archive's rule: newer
 * `_crawled_at` or the same, and never none over one. */
static bool batch_newer(const batch_row *n, const batch_row *o) {
    if (isnan(o->crawled_at)) return true;
    return !isnan(n->crawled_at) && n->crawled_at >= o->crawled_at;
}

static void batch_row_add(batch_table *t, batch_row row) {
    if (t->nrows == t->rows_cap) {
        t->rows_cap = t->rows_cap ? 2 * t->rows_cap : 256;
        t->rows = xrealloc(t->rows, t->rows_cap * sizeof *t->rows);
    }
    if (2 * (t->nrows + 1) > t->nslots) batch_slots_grow(t);
    size_t idx = t->nrows++;
    t->rows[idx] = row;
    size_t s = batch_slot(t, t->arena.p + row.id_off);
    if (!t->slots[s]) {
        t->slots[s] = (uint32_t)(idx + 1);
        return;
    }
    batch_row *old = &t->rows[t->slots[s] - 1], *new = &t->rows[idx];
    if (batch_newer(new, old)) {
        old->superseded_by = new->msg;
        t->slots[s] = (uint32_t)(idx + 1);
    } else {
        new->superseded_by = old->msg;
    }
}

/* --- taking a delivery --- */

static double batch_crawled_at(json_object *item) {
    json_object *v;
    if (!json_object_object_get_ex(item, "_crawled_at", &v)) return NAN;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) return NAN;
    double x = json_object_get_double(v);
    return isfinite(x) ? x : NAN;
}

bool batch_add(batch *b, mq_delivery *d, char *why, size_t whylen) {
    char table[TABLENAME_MAX + 1];
    if (!tablename_from_key(b->exchange, d->routing_key, table, why, whylen)) return false;
    json_object *items = items_parse(d->body, d->len, why, whylen);
    if (!items) return false;
    size_t n = json_object_array_length(items);
    items_span *spans = xmalloc((n ? n : 1) * sizeof *spans);
    size_t *offs = xmalloc((n ? n : 1) * 2 * sizeof *offs);
    bool ok = false;
    if (items_split(d->body, d->len, spans, n) != n) {
        snprintf(why, whylen, "not JSON: cannot find its %zu items", n);
        goto done;
    }
    if (b->nmsgs >= BATCH_LIVE - 1) {
        snprintf(why, whylen, "the batch is full");
        goto done;
    }
    size_t ti = batch_table_find(b, table, d->routing_key);
    batch_table *t = &b->tables[ti];
    size_t saved = t->arena.len, repaired = 0;
    /* Check and mend every item before any row is added. */
    for (size_t i = 0; i < n; i++) {
        if (spans[i].len > b->max_item_bytes) {
            snprintf(why, whylen, "item %zu is %zu bytes, over the limit of %zu (--max-item-bytes)", i, spans[i].len,
                     b->max_item_bytes);
            t->arena.len = saved;
            goto done;
        }
        size_t at = batch_arena_reserve(t, ITEMTEXT_REPAIR_ROOM(spans[i].len));
        itemtext_repairs r;
        size_t len = itemtext_repair(spans[i].text, spans[i].len, t->arena.p + at, &r, why, whylen);
        if (len == (size_t)-1) {
            t->arena.len = saved;
            goto done;
        }
        if (r.nul || r.utf8) {
            repaired++;
            log_info("item %zu of a message of %s: %zu \\u0000 removed, %zu invalid UTF-8 sequences replaced; "
                     "stored with \"_repaired\"",
                     i, d->routing_key, r.nul, r.utf8);
        }
        t->arena.len += len;
        offs[2 * i] = at;
        offs[2 * i + 1] = len;
    }
    uint32_t msg = (uint32_t)b->nmsgs;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(items, i), *id;
        json_object_object_get_ex(item, "_id", &id);
        size_t idlen = (size_t)json_object_get_string_len(id);
        size_t at = batch_arena_reserve(t, 3 * idlen + 1);
        t->arena.len += itemtext_repair_string(json_object_get_string(id), idlen, t->arena.p + at) + 1;
        batch_row_add(t, (batch_row){.msg = msg,
                                     .superseded_by = BATCH_LIVE,
                                     .id_off = at,
                                     .text_off = offs[2 * i],
                                     .text_len = offs[2 * i + 1],
                                     .crawled_at = batch_crawled_at(item)});
        b->bytes += offs[2 * i + 1];
    }
    if (b->nmsgs == b->msgs_cap) {
        b->msgs_cap = b->msgs_cap ? 2 * b->msgs_cap : 64;
        b->msgs = xrealloc(b->msgs, b->msgs_cap * sizeof *b->msgs);
    }
    b->msgs[b->nmsgs++] = (batch_msg){.d = *d, .table = ti, .nitems = n, .repaired = repaired};
    memset(d, 0, sizeof *d);
    if (!b->started_ns) b->started_ns = time_mono_ns();
    b->items += n;
    b->repaired += repaired;
    ok = true;
done:
    free(spans);
    free(offs);
    json_object_put(items);
    return ok;
}

/* --- the rows as a parameter --- */

typedef struct batch_sorted {
    const char *id;
    size_t row;
} batch_sorted;

static int batch_sorted_cmp(const void *a, const void *b) {
    const batch_sorted *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

static char *batch_put32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

size_t batch_table_param(const batch *b, size_t ti, long msg, char **out, size_t *outlen) {
    const batch_table *t = &b->tables[ti];
    batch_sorted *sel = xmalloc((t->nrows ? t->nrows : 1) * sizeof *sel);
    size_t n = 0, bytes = 20;
    for (size_t i = 0; i < t->nrows; i++) {
        const batch_row *r = &t->rows[i];
        bool take = msg < 0 ? r->superseded_by == BATCH_LIVE
                            : r->msg == (uint32_t)msg && r->superseded_by != (uint32_t)msg;
        if (!take) continue;
        sel[n++] = (batch_sorted){t->arena.p + r->id_off, i};
        bytes += 5 + r->text_len;
    }
    qsort(sel, n, sizeof *sel, batch_sorted_cmp);
    char *buf = xmalloc(bytes), *p = buf;
    /* PostgreSQL's array_recv: ndim, has-nulls, element type, then per
     * dimension its size and lower bound, then each element as a length and
     * jsonb_recv's bytes: version 1 and the text. */
    p = batch_put32(p, 1);
    p = batch_put32(p, 0);
    p = batch_put32(p, BATCH_JSONB_OID);
    p = batch_put32(p, (uint32_t)n);
    p = batch_put32(p, 1);
    for (size_t i = 0; i < n; i++) {
        const batch_row *r = &t->rows[sel[i].row];
        p = batch_put32(p, (uint32_t)(r->text_len + 1));
        *p++ = 1;
        memcpy(p, t->arena.p + r->text_off, r->text_len);
        p += r->text_len;
    }
    free(sel);
    *out = buf;
    *outlen = (size_t)(p - buf);
    return n;
}
