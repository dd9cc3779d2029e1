/* membudget.h -- a budget of bytes in flight (the hasher's --max-memory).
 *
 * The downloads of fetch.h reserve their bodies from it, so any program that
 * downloads with fetch.h can bound its memory the same way.  The hasher
 * holds each file in memory from its first byte until it is
 * hashed, and decoding a picture takes memory in proportion to its pixels.
 * Unbounded, --max-downloads large files at once (each up to --max-bytes)
 * plus their decodes can take more memory than the machine has.  A membudget
 * is one number of bytes that every holder of such memory reserves first,
 * so that many large files at once slow the hasher down instead:
 *
 *   - a download reserves its buffer before it allocates it (fetch.c): its
 *     first 64 KiB when it starts, the whole body once the Content-Length
 *     is known, and each doubling of a body of unknown length;
 *   - a downloaded file, before it is hashed, adds the decoder's working
 *     memory for its pixels (ih_describe_working_bytes) to what its body holds
 *     (hasher/consumer.c);
 *   - it is all given back when the file is hashed, or its download fails
 *     or is cancelled.
 *
 * A reservation that does not fit waits: membudget_reserve returns false and
 * puts the claim in a queue, in the order the waits began.  The owner asks
 * again later (the hasher's loop asks on every turn), and only the claim at
 * the head of the queue can be granted, so a large request is not starved by
 * a stream of small ones.  There are two queues: membudget_reserve_first
 * (hashing a file already held, which gives everything back when done)
 * goes before every membudget_reserve (a download starting or growing, which
 * only takes more): memory freed by a hashing goes to the next hashing, and
 * downloads cannot fill the budget with bodies that then have no room to be
 * decoded.  No deadlock: the head is granted even when it does not fit if
 * every byte held is held by waiting claims (nothing still running would
 * ever give bytes back), so the oldest waiter of the first queue, or else of
 * the second, proceeds alone, and the limit is exceeded by at most that one
 * request (an "overdraft") until it is done.
 *
 * Ownership: membudget_new returns a budget freed with membudget_free, after
 * every claim was released.  A claim (membudget_claim) is its holder's
 * memory, embedded in the holder's struct; it must not be copied or moved
 * while it waits (membudget_claim_move moves one that does not wait).  A
 * claim of no budget (NULL) is always granted and counts nothing.
 * Threads: a budget and its claims are used by one thread (the hasher's main
 * thread, which downloads and submits the hashing); nothing here locks.
 */
#ifndef IMGFEED_MEMBUDGET_H
#define IMGFEED_MEMBUDGET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct membudget membudget;

typedef struct membudget_claim {
    membudget *budget;                   /* NULL: no budget, every reservation granted */
    uint64_t held;                       /* bytes counted against the budget */
    uint64_t want;                       /* while waiting: the total asked for */
    bool waiting;                        /* in one of the budget's queues */
    bool first;                          /* in the queue of membudget_reserve_first */
    struct membudget_claim *prev, *next; /* the queue's */
} membudget_claim;

typedef struct membudget_stats {
    uint64_t limit;      /* 0: no limit (bytes are counted, nothing waits) */
    uint64_t used;       /* held by every claim now */
    uint64_t peak;       /* the most ever held at once */
    uint64_t waiting;    /* claims waiting now */
    uint64_t waits;      /* reservations that had to wait, ever */
    uint64_t overdrafts; /* grants past the limit to a lone oldest waiter, ever */
} membudget_stats;

/* A budget of LIMIT bytes (0: no limit). */
membudget *membudget_new(uint64_t limit);
/* membudget_free(NULL) does nothing. */
void membudget_free(membudget *b);

/* An empty claim on B (which may be NULL). */
void membudget_claim_init(membudget_claim *c, membudget *b);

/* Make C hold TOTAL bytes (a claim never grows by reserving less than it
 * holds).  True when granted (C leaves the queue if it waited); false when
 * it does not fit yet: C keeps what it holds, waits in the queue, and its
 * owner calls again with the same TOTAL later. */
bool membudget_reserve(membudget_claim *c, uint64_t total);
/* membudget_reserve in the first queue: for work that gives all its memory
 * back when it is done (hashing a downloaded file). */
bool membudget_reserve_first(membudget_claim *c, uint64_t total);
/* membudget_reserve that does not queue: false, and nothing changed, when
 * TOTAL does not fit now or others wait already.  For work that can simply
 * start later (a download not yet begun). */
bool membudget_try(membudget_claim *c, uint64_t total);
/* Lower what C holds to TOTAL (nothing happens when it holds less). */
void membudget_shrink(membudget_claim *c, uint64_t total);
/* Give everything back and leave the queue; C may be reserved again. */
void membudget_release(membudget_claim *c);
/* Move what FROM holds to TO (which holds nothing and does not wait); FROM
 * must not wait, and is left empty on the same budget. */
void membudget_claim_move(membudget_claim *to, membudget_claim *from);

void membudget_get_stats(const membudget *b, membudget_stats *out);

#endif
