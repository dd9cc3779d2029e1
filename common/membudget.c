/* membudget.c -- a count of bytes held, a limit, and a queue of waiters.
 *
 * The budget keeps three numbers: the bytes every claim holds (used), the
 * part of them held by claims that wait (waiting_held), and the limit; and
 * the waiting claims in two doubly linked FIFOs, "first" and "then".  The
 * head is the first queue's oldest claim, or when it is empty the second's.
 * A reservation of TOTAL by C is granted when C is the head (or nobody
 * waits) and either the others' bytes plus TOTAL fit the limit, or all the
 * others' bytes belong to waiters (the deadlock rule of membudget.h).
 * Every operation is O(1): a claim knows whether it waits and where, so
 * nothing walks a queue.
 */
#include "membudget.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

typedef struct membudget_queue {
    membudget_claim *head, *tail;
} membudget_queue;

struct membudget {
    uint64_t limit;
    uint64_t used;
    uint64_t waiting_held;
    uint64_t nwaiting;
    membudget_queue queue[2]; /* [1]: membudget_reserve_first's, served before [0] */
    membudget_stats stats;
};

membudget *membudget_new(uint64_t limit) {
    membudget *b = xcalloc(1, sizeof *b);
    b->limit = limit;
    return b;
}

void membudget_free(membudget *b) { free(b); }

void membudget_claim_init(membudget_claim *c, membudget *b) {
    memset(c, 0, sizeof *c);
    c->budget = b;
}

/* The claim served next. */
static const membudget_claim *membudget_head(const membudget *b) {
    return b->queue[1].head ? b->queue[1].head : b->queue[0].head;
}

static void membudget_enqueue(membudget *b, membudget_claim *c, uint64_t want, bool first) {
    c->want = want;
    if (c->waiting) return;
    membudget_queue *q = &b->queue[first];
    c->waiting = true;
    c->first = first;
    c->prev = q->tail;
    c->next = NULL;
    if (q->tail) {
        q->tail->next = c;
    } else {
        q->head = c;
    }
    q->tail = c;
    b->waiting_held += c->held;
    b->nwaiting++;
    b->stats.waits++;
}

static void membudget_dequeue(membudget *b, membudget_claim *c) {
    if (!c->waiting) return;
    membudget_queue *q = &b->queue[c->first];
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        q->head = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    } else {
        q->tail = c->prev;
    }
    c->prev = c->next = NULL;
    c->waiting = false;
    c->want = 0;
    b->waiting_held -= c->held;
    b->nwaiting--;
}

/* Whether C may hold TOTAL (> c->held) now; *OVER tells a grant past the
 * limit. */
static bool membudget_grantable(const membudget *b, const membudget_claim *c, uint64_t total, bool *over) {
    *over = false;
    const membudget_claim *head = membudget_head(b);
    if (head && head != c) return false; /* someone comes first, or has waited longer */
    uint64_t others = b->used - c->held;
    if (b->limit == 0 || (others <= b->limit && total <= b->limit - others)) return true;
    uint64_t others_waiting = b->waiting_held - (c->waiting ? c->held : 0);
    if (others != others_waiting) return false; /* running work will give bytes back */
    *over = true;
    return true;
}

static void membudget_grant(membudget *b, membudget_claim *c, uint64_t total, bool over) {
    membudget_dequeue(b, c);
    b->used += total - c->held;
    c->held = total;
    if (b->used > b->stats.peak) b->stats.peak = b->used;
    if (over) b->stats.overdrafts++;
}

static bool membudget_ask(membudget_claim *c, uint64_t total, bool queue, bool first) {
    membudget *b = c->budget;
    if (!b) {
        if (total > c->held) c->held = total;
        return true;
    }
    if (total <= c->held) {
        membudget_dequeue(b, c);
        return true;
    }
    bool over;
    if (membudget_grantable(b, c, total, &over)) {
        membudget_grant(b, c, total, over);
        return true;
    }
    if (queue) {
        if (c->waiting && c->first != first) membudget_dequeue(b, c); /* asked the other way now */
        membudget_enqueue(b, c, total, first);
    }
    return false;
}

bool membudget_reserve(membudget_claim *c, uint64_t total) { return membudget_ask(c, total, true, false); }

bool membudget_reserve_first(membudget_claim *c, uint64_t total) { return membudget_ask(c, total, true, true); }

bool membudget_try(membudget_claim *c, uint64_t total) { return membudget_ask(c, total, false, false); }

void membudget_shrink(membudget_claim *c, uint64_t total) {
    if (total >= c->held) return;
    membudget *b = c->budget;
    uint64_t less = c->held - total;
    c->held = total;
    if (!b) return;
    b->used -= less;
    if (c->waiting) b->waiting_held -= less;
}

void membudget_release(membudget_claim *c) {
    if (c->budget) membudget_dequeue(c->budget, c);
    membudget_shrink(c, 0);
}

void membudget_claim_move(membudget_claim *to, membudget_claim *from) {
    membudget_release(to);
    if (from->budget) membudget_dequeue(from->budget, from);
    *to = *from;
    to->prev = to->next = NULL;
    to->waiting = to->first = false;
    from->held = 0;
}

void membudget_get_stats(const membudget *b, membudget_stats *out) {
    *out = b->stats;
    out->limit = b->limit;
    out->used = b->used;
    out->waiting = b->nwaiting;
}
