/* outbox.c -- items into messages under a size limit; see outbox.h.
 *
 * Messages live in one array in the order they were opened; a key has at
 * most one open message, found by a walk from the end (a publisher has a
 * handful of keys).  outbox_ready marks what it hands out, outbox_done
 * removes those and closes the gaps, keeping the order. */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void outbox_init(outbox *o, size_t max_bytes) {
    memset(o, 0, sizeof *o);
    o->max_bytes = max_bytes;
}

static void outbox_msg_release(outbox_msg *m) {
    free(m->routing_key);
    free(m->body.p);
}

void outbox_release(outbox *o) {
    for (size_t i = 0; i < o->n; i++)
        outbox_msg_release(&o->v[i]);
    free(o->v);
    free(o->ready);
    size_t max = o->max_bytes;
    outbox_init(o, max);
}

static void outbox_seal(outbox *o, outbox_msg *m) {
    if (m->sealed) return;
    sbuf_addc(&m->body, ']');
    m->sealed = true;
    o->sealed_bytes += m->body.len;
}

static outbox_msg *outbox_open(outbox *o, const char *key) {
    for (size_t i = o->n; i-- > 0;)
        if (!o->v[i].sealed && strcmp(o->v[i].routing_key, key) == 0) return &o->v[i];
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 8;
        o->v = xrealloc(o->v, o->cap * sizeof *o->v);
    }
    outbox_msg *m = &o->v[o->n++];
    memset(m, 0, sizeof *m);
    m->routing_key = xstrdup(key);
    sbuf_addc(&m->body, '[');
    return m;
}

void outbox_add(outbox *o, const char *key, const char *text, size_t len) {
    outbox_msg *m = outbox_open(o, key);
    /* With this item and the closing bracket, would it pass the limit? */
    if (m->items && o->max_bytes && m->body.len + 1 + len + 1 > o->max_bytes) {
        outbox_seal(o, m);
        m = outbox_open(o, key);
    }
    if (m->items) sbuf_addc(&m->body, ',');
    sbuf_add(&m->body, text, len);
    m->items++;
    o->items++;
}

size_t outbox_ready(outbox *o, bool all, mq_message **msgs, size_t *items) {
    if (all)
        for (size_t i = 0; i < o->n; i++)
            outbox_seal(o, &o->v[i]);
    if (o->ready_cap < o->n) {
        o->ready_cap = o->n;
        o->ready = xrealloc(o->ready, o->ready_cap * sizeof *o->ready);
    }
    o->nready = o->ready_items = 0;
    for (size_t i = 0; i < o->n; i++) {
        outbox_msg *m = &o->v[i];
        if (!m->sealed) continue;
        o->ready[o->nready++] = (mq_message){.routing_key = m->routing_key, .body = m->body.p, .len = m->body.len};
        o->ready_items += m->items;
    }
    *msgs = o->ready;
    if (items) *items = o->ready_items;
    return o->nready;
}

void outbox_done(outbox *o) {
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++) {
        outbox_msg *m = &o->v[i];
        if (m->sealed) {
            o->items -= m->items;
            o->sealed_bytes -= m->body.len;
            outbox_msg_release(m);
        } else {
            o->v[k++] = *m;
        }
    }
    o->n = k;
    o->nready = o->ready_items = 0;
}

void outbox_clear(outbox *o) {
    for (size_t i = 0; i < o->n; i++)
        outbox_msg_release(&o->v[i]);
    o->n = o->items = o->sealed_bytes = 0;
    o->nready = o->ready_items = 0;
}
