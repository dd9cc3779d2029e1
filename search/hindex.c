/* hindex.c -- an exact Hamming-distance index (multi-index hashing); see hindex.h.
 *
 * The query keeps its best hits in a max-heap ordered by (distance, the
 * caller's order), so the worst kept hit is at the top and is the bound a
 * new candidate must beat.  The walk over buckets is hindex.h's steps, each
 * step's candidates gathered and their hashes fetched ahead; the scan of
 * every hash is the fallback and the reference, chosen when the steps left
 * would cost more (WALK_COST).  A build after additions only merges them
 * into the sorted tables when nothing was removed.  The hot loops are
 * built twice on x86-64 (with and without the POPCNT instruction) and the
 * right one is chosen when the program starts.
 */
#include "hindex.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define CHUNK_BITS 16
#define CHUNK_SLOTS ((size_t)1 << CHUNK_BITS)
#define SUB_MAX ((HINDEX_MAX_BYTES + 1) / 2)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HINDEX_HOT __attribute__((target_clones("popcnt", "default")))
#else
#define HINDEX_HOT
#endif

/* Substrings of up to WIDE_MAX bits when the index is large enough that
 * their bucket tables cost at most FIXED_PER_HASH bytes a hash (layout_for). */
#define WIDE_MAX 21
#define FIXED_PER_HASH 10

struct hindex {
    size_t nbytes, m;
    unsigned width[SUB_MAX];  /* bits of substring j */
    unsigned offset[SUB_MAX]; /* its first bit: bit i is bit i % 8 of byte i / 8 */
    hindex_order order;
    void *order_arg;

    /* slots: hash and reference, in chunks */
    unsigned char **hashes;
    uint32_t **refs;
    size_t nslots, nchunks, chunks_cap, nremoved;

    /* slots [0, nbuilt): per substring, bucket offsets and slots in bucket order */
    size_t nbuilt, nremoved_built; /* nremoved_built: nremoved when the tables were last made whole */
    uint32_t *start[SUB_MAX];
    uint32_t *ids[SUB_MAX];
    /* slots [nbuilt, nslots): per substring, chains */
    uint32_t *head[SUB_MAX];
    uint32_t *next[SUB_MAX];
    size_t next_cap;
};

/* --- masks: the values of WIDTH bits with S bits set, in increasing order --- */

static double binom[WIDE_MAX + 1][WIDE_MAX + 1]; /* binom[w][s]: masks of w bits with s set */
static pthread_once_t binom_once = PTHREAD_ONCE_INIT;

static void binom_init(void) {
    for (unsigned w = 0; w <= WIDE_MAX; w++) {
        binom[w][0] = 1;
        for (unsigned s = 1; s <= w; s++)
            binom[w][s] = binom[w - 1][s - 1] + (s < w ? binom[w - 1][s] : 0);
    }
}

/* The next value with as many bits set as V (V not 0): Gosper's hack. */
static inline uint32_t next_mask(uint32_t v) {
    uint32_t t = v | (v - 1);
    return (t + 1) | (((~t & (t + 1)) - 1) >> (__builtin_ctz(v) + 1));
}

/* --- slots --- */

static inline const unsigned char *slot_hash(const hindex *x, size_t slot) {
    return x->hashes[slot >> CHUNK_BITS] + (slot & (CHUNK_SLOTS - 1)) * x->nbytes;
}

static inline uint32_t slot_ref(const hindex *x, size_t slot) {
    return x->refs[slot >> CHUNK_BITS][slot & (CHUNK_SLOTS - 1)];
}

/* Substring J of hash H: bits offset .. offset + width - 1 (for the 16-bit
 * layout, bytes 2j and 2j + 1 as a little-endian number). */
static inline unsigned sub_key(const hindex *x, const unsigned char *h, size_t j) {
    unsigned off = x->offset[j], w = x->width[j];
    size_t first = off >> 3, last = (off + w - 1) >> 3;
    uint32_t v = h[first];
    for (size_t i = first + 1; i <= last; i++)
        v |= (uint32_t)h[i] << (8 * (i - first));
    return (v >> (off & 7)) & ((1u << w) - 1);
}

static inline int distance(const unsigned char *a, const unsigned char *b, size_t n) {
    int d = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, a + i, 8);
        memcpy(&v, b + i, 8);
        d += __builtin_popcountll(u ^ v);
    }
    for (; i + 2 <= n; i += 2) {
        uint16_t u, v;
        memcpy(&u, a + i, 2);
        memcpy(&v, b + i, 2);
        d += __builtin_popcount((unsigned)(u ^ v));
    }
    if (i < n) d += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

HINDEX_HOT int hindex_distance(const unsigned char *a, const unsigned char *b, size_t nbytes) {
    return distance(a, b, nbytes);
}

/* The substrings for N hashes of NBYTES bytes, into M, WIDTH and OFFSET.
 * Bytes in pairs, 16 bits each (the last 8 when NBYTES is odd), unless the
 * index holds enough hashes for fewer, wider substrings: then as few as
 * keep each within WIDE_MAX bits and their tables (two of 4 bytes a bucket)
 * within FIXED_PER_HASH bytes a hash, of even widths.  Wider substrings
 * have fewer candidates a bucket: for 144 bits, 8 of 18 bits from 1.7
 * million hashes, 7 of 20 and 21 bits from 9.2 million. */
static void layout_for(size_t nbytes, size_t n, size_t *m, unsigned *width, unsigned *offset) {
    size_t bits = 8 * nbytes, pairs = (nbytes + 1) / 2;
    *m = pairs;
    for (size_t mm = (bits + WIDE_MAX - 1) / WIDE_MAX; mm < pairs; mm++) {
        size_t base = bits / mm, extra = bits % mm;
        double fixed = 8.0 * ((double)extra * (double)((size_t)1 << (base + 1)) +
                              (double)(mm - extra) * (double)((size_t)1 << base));
        if (base + (extra > 0) > WIDE_MAX || fixed > (double)n * FIXED_PER_HASH) continue;
        *m = mm;
        break;
    }
    unsigned off = 0;
    for (size_t j = 0; j < *m; j++) {
        if (*m == pairs) width[j] = 2 * j + 1 < nbytes ? 16 : 8;
        else width[j] = (unsigned)(bits / *m + (j < bits % *m));
        offset[j] = off;
        off += width[j];
    }
}

/* Empty tables for layout M, WIDTH, OFFSET (the old ones freed). */
static void set_layout(hindex *x, size_t m, const unsigned *width, const unsigned *offset) {
    for (size_t j = 0; j < x->m; j++) {
        free(x->start[j]);
        free(x->ids[j]);
        free(x->head[j]);
        free(x->next[j]);
        x->start[j] = x->ids[j] = x->head[j] = x->next[j] = NULL;
    }
    x->m = m;
    for (size_t j = 0; j < m; j++) {
        x->width[j] = width[j];
        x->offset[j] = offset[j];
        size_t buckets = (size_t)1 << width[j];
        x->start[j] = xcalloc(buckets + 1, sizeof(uint32_t));
        x->head[j] = xmalloc(buckets * sizeof(uint32_t));
        memset(x->head[j], 0xff, buckets * sizeof(uint32_t));
    }
}

hindex *hindex_new(size_t nbytes, hindex_order order, void *order_arg) {
    if (nbytes == 0 || nbytes > HINDEX_MAX_BYTES) return NULL;
    pthread_once(&binom_once, binom_init);
    hindex *x = xcalloc(1, sizeof *x);
    x->nbytes = nbytes;
    x->order = order;
    x->order_arg = order_arg;
    size_t m;
    unsigned width[SUB_MAX], offset[SUB_MAX];
    layout_for(nbytes, 0, &m, width, offset);
    set_layout(x, m, width, offset);
    return x;
}

void hindex_free(hindex *x) {
    if (!x) return;
    for (size_t c = 0; c < x->nchunks; c++) {
        free(x->hashes[c]);
        free(x->refs[c]);
    }
    free(x->hashes);
    free(x->refs);
    for (size_t j = 0; j < x->m; j++) {
        free(x->start[j]);
        free(x->ids[j]);
        free(x->head[j]);
        free(x->next[j]);
    }
    free(x);
}

size_t hindex_nbytes(const hindex *x) { return x->nbytes; }

size_t hindex_count(const hindex *x) { return x->nslots - x->nremoved; }

size_t hindex_memory(const hindex *x) {
    size_t b = sizeof *x + x->chunks_cap * 2 * sizeof(void *);
    b += x->nchunks * CHUNK_SLOTS * (x->nbytes + sizeof(uint32_t));
    for (size_t j = 0; j < x->m; j++) {
        size_t buckets = (size_t)1 << x->width[j];
        b += (buckets + 1) * sizeof(uint32_t) + x->nbuilt * sizeof(uint32_t);
        b += buckets * sizeof(uint32_t) + x->next_cap * sizeof(uint32_t);
    }
    return b;
}

/* Substring J's new sorted tables replace the old ones; its chains are emptied. */
static void install_tables(hindex *x, size_t j, uint32_t *start, uint32_t *ids) {
    free(x->start[j]);
    free(x->ids[j]);
    x->start[j] = start;
    x->ids[j] = ids;
    memset(x->head[j], 0xff, ((size_t)1 << x->width[j]) * sizeof(uint32_t));
    free(x->next[j]);
    x->next[j] = NULL;
}

/* Slots [nbuilt, nslots) into the sorted tables when none was removed since
 * they were last made whole: every bucket keeps its slots and gains the new
 * ones after them, which are higher, so the tables are the ones a whole
 * build makes, in one sequential pass over them instead of scattering every
 * slot again (a load of ten million hashes rebuilds them some 40 times). */
static void build_merge(hindex *x) {
    size_t live = x->nslots - x->nremoved;
    for (size_t j = 0; j < x->m; j++) {
        size_t buckets = (size_t)1 << x->width[j];
        const uint32_t *old_start = x->start[j], *old_ids = x->ids[j];
        uint32_t *start = xmalloc((buckets + 1) * sizeof(uint32_t));
        uint32_t *ids = xmalloc((live ? live : 1) * sizeof(uint32_t));
        uint32_t *fill = xcalloc(buckets, sizeof(uint32_t)); /* new slots a bucket, then where the next goes */
        for (size_t s = x->nbuilt; s < x->nslots; s++)
            fill[sub_key(x, slot_hash(x, s), j)]++;
        uint32_t added = 0;
        for (size_t b = 0; b < buckets; b++) {
            uint32_t len = old_start[b + 1] - old_start[b];
            start[b] = old_start[b] + added;
            if (len) memcpy(ids + start[b], old_ids + old_start[b], len * sizeof(uint32_t));
            added += fill[b];
            fill[b] = start[b] + len;
        }
        start[buckets] = old_start[buckets] + added;
        for (size_t s = x->nbuilt; s < x->nslots; s++)
            ids[fill[sub_key(x, slot_hash(x, s), j)]++] = (uint32_t)s;
        free(fill);
        install_tables(x, j, start, ids);
    }
    x->next_cap = 0;
    x->nbuilt = x->nslots;
}

void hindex_build(hindex *x) {
    if (x->nbuilt == x->nslots) return;
    size_t live = x->nslots - x->nremoved, m;
    unsigned width[SUB_MAX], offset[SUB_MAX];
    layout_for(x->nbytes, live, &m, width, offset);
    bool same = m == x->m;
    for (size_t j = 0; same && j < m; j++)
        same = width[j] == x->width[j];
    if (!same) {
        /* Another layout: every slot, chained ones included, goes into new tables. */
        set_layout(x, m, width, offset);
        x->nbuilt = 0;
        x->nremoved_built = SIZE_MAX; /* a whole build */
        x->next_cap = 0;
    }
    if (x->nremoved == x->nremoved_built) {
        build_merge(x);
        return;
    }
    for (size_t j = 0; j < x->m; j++) {
        size_t buckets = (size_t)1 << x->width[j];
        uint32_t *start = xcalloc(buckets + 1, sizeof(uint32_t));
        uint32_t *ids = xmalloc((live ? live : 1) * sizeof(uint32_t));
        for (size_t s = 0; s < x->nslots; s++)
            if (slot_ref(x, s) != HINDEX_NONE) start[sub_key(x, slot_hash(x, s), j) + 1]++;
        for (size_t b = 0; b < buckets; b++)
            start[b + 1] += start[b];
        for (size_t s = 0; s < x->nslots; s++)
            if (slot_ref(x, s) != HINDEX_NONE) ids[start[sub_key(x, slot_hash(x, s), j)]++] = (uint32_t)s;
        /* start[b] now holds the end of bucket b: shift back by one. */
        memmove(start + 1, start, buckets * sizeof(uint32_t));
        start[0] = 0;
        install_tables(x, j, start, ids);
    }
    x->next_cap = 0;
    x->nbuilt = x->nslots;
    x->nremoved_built = x->nremoved;
}

void hindex_add(hindex *x, const unsigned char *hash, uint32_t ref) {
    size_t delta = x->nslots - x->nbuilt;
    if (delta >= 65536 && delta >= x->nbuilt / 8) {
        hindex_build(x);
        delta = 0;
    }
    if (x->nslots == x->nchunks * CHUNK_SLOTS) {
        if (x->nchunks == x->chunks_cap) {
            x->chunks_cap = x->chunks_cap ? 2 * x->chunks_cap : 16;
            x->hashes = xrealloc(x->hashes, x->chunks_cap * sizeof *x->hashes);
            x->refs = xrealloc(x->refs, x->chunks_cap * sizeof *x->refs);
        }
        x->hashes[x->nchunks] = xmalloc(CHUNK_SLOTS * x->nbytes);
        x->refs[x->nchunks] = xmalloc(CHUNK_SLOTS * sizeof(uint32_t));
        x->nchunks++;
    }
    if (delta == x->next_cap) {
        x->next_cap = x->next_cap ? 2 * x->next_cap : 1024;
        for (size_t j = 0; j < x->m; j++)
            x->next[j] = xrealloc(x->next[j], x->next_cap * sizeof(uint32_t));
    }
    size_t slot = x->nslots++;
    memcpy(x->hashes[slot >> CHUNK_BITS] + (slot & (CHUNK_SLOTS - 1)) * x->nbytes, hash, x->nbytes);
    x->refs[slot >> CHUNK_BITS][slot & (CHUNK_SLOTS - 1)] = ref;
    for (size_t j = 0; j < x->m; j++) {
        unsigned k = sub_key(x, hash, j);
        x->next[j][delta] = x->head[j][k];
        x->head[j][k] = (uint32_t)slot;
    }
}

size_t hindex_remove(hindex *x, uint32_t ref) {
    size_t n = 0;
    for (size_t s = 0; s < x->nslots; s++) {
        uint32_t *r = &x->refs[s >> CHUNK_BITS][s & (CHUNK_SLOTS - 1)];
        if (*r == ref) {
            *r = HINDEX_NONE;
            n++;
        }
    }
    x->nremoved += n;
    return n;
}

void hindex_each(const hindex *x, void (*fn)(const unsigned char *hash, uint32_t ref, void *arg), void *arg) {
    for (size_t s = 0; s < x->nslots; s++)
        if (slot_ref(x, s) != HINDEX_NONE) fn(slot_hash(x, s), slot_ref(x, s), arg);
}

/* --- the hits of one query --- */

typedef struct hits {
    const hindex *x;
    size_t k; /* 0: every hit within max_distance */
    int max_distance;
    hindex_hit *v;
    size_t n, cap;
    uint32_t *slots; /* the candidates of one step of the walk */
    size_t slots_cap;
} hits;

/* True when hit A comes before hit B. */
static bool hit_before(const hits *h, const hindex_hit *a, const hindex_hit *b) {
    if (a->distance != b->distance) return a->distance < b->distance;
    if (h->x->order) return h->x->order(a->ref, b->ref, h->x->order_arg) < 0;
    return a->ref < b->ref;
}

static void heap_down(const hits *h, size_t i, size_t n) {
    for (;;) {
        size_t l = 2 * i + 1, worst = i;
        if (l < n && hit_before(h, &h->v[worst], &h->v[l])) worst = l;
        if (l + 1 < n && hit_before(h, &h->v[worst], &h->v[l + 1])) worst = l + 1;
        if (worst == i) return;
        hindex_hit t = h->v[i];
        h->v[i] = h->v[worst];
        h->v[worst] = t;
        i = worst;
    }
}

static void heap_up(const hits *h, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hit_before(h, &h->v[p], &h->v[i])) return;
        hindex_hit t = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = t;
        i = p;
    }
}

/* The largest distance a new hit may have to be kept. */
static inline int hits_bound(const hits *h) {
    return h->k && h->n == h->k ? h->v[0].distance : h->max_distance;
}

static inline bool hits_full(const hits *h) { return h->k && h->n == h->k; }

static void hits_offer(hits *h, uint32_t ref, int d) {
    hindex_hit c = {ref, d};
    if (hits_full(h)) {
        if (!hit_before(h, &c, &h->v[0])) return;
        h->v[0] = c;
        heap_down(h, 0, h->n);
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : (h->k ? h->k : 64);
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = c;
    heap_up(h, h->n - 1);
}

/* Sorts the hits nearest first (heapsort on the max-heap) and hands them over. */
static size_t hits_finish(hits *h, hindex_hit **out) {
    for (size_t end = h->n; end > 1; end--) {
        hindex_hit t = h->v[0];
        h->v[0] = h->v[end - 1];
        h->v[end - 1] = t;
        heap_down(h, 0, end - 1);
    }
    *out = h->n ? h->v : NULL;
    if (!h->n) free(h->v);
    free(h->slots);
    return h->n;
}

/* --- the scan --- */

/* Hashes [0, N) of one chunk.  Inlined with NB a constant for the common
 * lengths, so that the distance is a few POPCNTs; the bound is kept in a
 * register and the reference read only for a hash within it. */
static inline __attribute__((always_inline)) void scan_chunk(const unsigned char *q, hits *h,
                                                             const unsigned char *hs, const uint32_t *rs, size_t n,
                                                             size_t nb) {
    int bound = hits_bound(h);
    for (size_t i = 0; i < n; i++) {
        int d = distance(q, hs + i * nb, nb);
        if (d > bound || rs[i] == HINDEX_NONE) continue;
        hits_offer(h, rs[i], d);
        bound = hits_bound(h);
    }
}

HINDEX_HOT static void scan_all(const hindex *x, const unsigned char *q, hits *h, hindex_trace *trace) {
    size_t nb = x->nbytes;
    for (size_t c = 0; c < x->nchunks; c++) {
        size_t n = c + 1 < x->nchunks ? CHUNK_SLOTS : x->nslots - c * CHUNK_SLOTS;
        const unsigned char *hs = x->hashes[c];
        const uint32_t *rs = x->refs[c];
        switch (nb) {
        case 8: scan_chunk(q, h, hs, rs, n, 8); break;
        case 16: scan_chunk(q, h, hs, rs, n, 16); break;
        case 18: scan_chunk(q, h, hs, rs, n, 18); break; /* 144 bits: the archive's phash and dhash */
        case 32: scan_chunk(q, h, hs, rs, n, 32); break;
        default: scan_chunk(q, h, hs, rs, n, nb); break;
        }
        if (trace) trace->candidates += n;
    }
    if (trace) trace->scanned = true;
}

size_t hindex_scan(const hindex *x, const unsigned char *query, int max_distance, size_t k, hindex_hit **out) {
    hits h = {.x = x, .k = k, .max_distance = max_distance};
    if (max_distance >= 0) scan_all(x, query, &h, NULL);
    return hits_finish(&h, out);
}

/* --- the walk over buckets --- */

/* True when the candidate with hash C, found at step (S, J), was found at
 * an earlier step: one of its other substrings is nearer, or as near and
 * walked before. */
static bool seen_before(const hindex *x, const unsigned char *q, const unsigned char *c, unsigned s, size_t j) {
    for (size_t i = 0; i < x->m; i++) {
        if (i == j) continue;
        unsigned d = (unsigned)__builtin_popcount(sub_key(x, q, i) ^ sub_key(x, c, i));
        if (d < s || (d == s && i < j)) return true;
    }
    return false;
}

static inline void consider(const hindex *x, const unsigned char *q, hits *h, uint32_t slot, unsigned s,
                            size_t j) {
    const unsigned char *c = slot_hash(x, slot);
    int d = distance(q, c, x->nbytes);
    if (d > hits_bound(h)) return;
    uint32_t ref = slot_ref(x, slot);
    if (ref == HINDEX_NONE || seen_before(x, q, c, s, j)) return;
    hits_offer(h, ref, d);
}

/* How many candidates ahead the walk asks for a hash: a candidate's hash
 * is a random read of the whole index, so its cache misses are overlapped. */
#define PREFETCH_AHEAD 16

/* Step (S, J): every bucket of substring J at S bits from the query's.  The
 * slots of the sorted buckets are gathered first and their hashes fetched
 * ahead; they are considered in the same order as bucket by bucket. */
HINDEX_HOT static void walk_step(const hindex *x, const unsigned char *q, hits *h, unsigned s, size_t j,
                                 hindex_trace *trace) {
    unsigned w = x->width[j], qk = sub_key(x, q, j);
    uint32_t first = s ? (1u << s) - 1 : 0, end = 1u << w;
    const uint32_t *start = x->start[j], *ids = x->ids[j];
    size_t n = 0, nbuckets = 0;
    for (uint32_t mask = first; mask < end; mask = s ? next_mask(mask) : end) {
        unsigned key = qk ^ mask;
        nbuckets++;
        uint32_t p = start[key], len = start[key + 1] - p;
        if (!len) continue;
        if (n + len > h->slots_cap) {
            h->slots_cap = 2 * (n + len) > 1024 ? 2 * (n + len) : 1024;
            h->slots = xrealloc(h->slots, h->slots_cap * sizeof *h->slots);
        }
        memcpy(h->slots + n, ids + p, len * sizeof *ids);
        n += len;
    }
    const uint32_t *slots = h->slots;
    size_t nb = x->nbytes;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) {
            const unsigned char *c = slot_hash(x, slots[i + PREFETCH_AHEAD]);
            __builtin_prefetch(c);
            __builtin_prefetch(c + nb - 1); /* a hash may straddle two cache lines */
        }
        consider(x, q, h, slots[i], s, j);
    }
    uint64_t cand = n;
    for (uint32_t mask = first; mask < end && x->nslots > x->nbuilt; mask = s ? next_mask(mask) : end) {
        unsigned key = qk ^ mask;
        for (uint32_t slot = x->head[j][key]; slot != HINDEX_NONE; slot = x->next[j][slot - x->nbuilt]) {
            consider(x, q, h, slot, s, j);
            cand++;
        }
    }
    if (trace) {
        trace->buckets += nbuckets;
        trace->candidates += cand;
    }
}

/* Buckets of a substring of WIDTH bits at exactly S bits from a value. */
static double buckets_at(unsigned width, unsigned s) { return s > width ? 0 : binom[width][s]; }

/* Candidates step (S, J) is expected to look at (and one a bucket, for
 * looking it up), were the hashes spread evenly over the buckets. */
static double step_expect(const hindex *x, unsigned s, size_t j) {
    return buckets_at(x->width[j], s) * ((double)x->nslots / (double)((size_t)1 << x->width[j]) + 1);
}

/* Candidates of the steps from (S, J) on, up to the first that covers TARGET bits. */
static double walk_remaining(const hindex *x, unsigned s, size_t j, int target) {
    double total = 0;
    for (;;) {
        total += step_expect(x, s, j);
        if ((int)(x->m * s + j) >= target) return total;
        if (++j == x->m) {
            j = 0;
            s++;
        }
    }
}

/* What a candidate of the walk costs, in hashes of a scan.  A scan reads the
 * hashes in order, a few POPCNTs each (about 1.2 ns a 144-bit hash on the
 * machine of docs/benchmarks.md); a bucket's candidates are scattered over
 * the whole index, and even fetched ahead each costs some 10 to 15 times as
 * much (bench/search.sh measures both). */
#define WALK_COST 12.0

size_t hindex_search(const hindex *x, const unsigned char *query, int max_distance, size_t k, hindex_hit **out,
                     hindex_trace *trace) {
    hits h = {.x = x, .k = k, .max_distance = max_distance};
    if (trace) memset(trace, 0, sizeof *trace);
    if (max_distance < 0 || x->nslots == x->nremoved) return hits_finish(&h, out);
    int nbits = (int)(8 * x->nbytes);
    if (max_distance > nbits) h.max_distance = max_distance = nbits;
    /* Walk or scan: once the bound is known (a radius, or the k-th best
     * distance of a full top-k), the steps left until it is covered are
     * weighed against a scan, which starts over; a top-k not yet full walks
     * on while what it has spent is below a scan. */
    double scan_cost = (double)x->nslots / WALK_COST, spent = 0;
    for (unsigned s = 0;; s++) {
        for (size_t j = 0; j < x->m; j++) {
            double expect = step_expect(x, s, j);
            bool bounded = k == 0 || hits_full(&h);
            if (bounded ? walk_remaining(x, s, j, hits_bound(&h)) > scan_cost : spent + expect > scan_cost) {
                /* Cheaper to look at everything: start over with a scan. */
                h.n = 0;
                scan_all(x, query, &h, trace);
                return hits_finish(&h, out);
            }
            spent += expect;
            if (s <= x->width[j]) walk_step(x, query, &h, s, j, trace);
            int covered = (int)(x->m * s + j);
            if (covered >= max_distance) return hits_finish(&h, out);
            if (hits_full(&h) && h.v[0].distance <= covered) return hits_finish(&h, out);
        }
    }
}
