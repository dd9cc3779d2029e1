/* catalog.c -- the images search can find; see catalog.h.
 *
 * Items and images live in parallel arrays that grow by doubling; an
 * item's id is copied into blocks of 1 MiB that never move, so a hit's
 * strings stay valid.  Two open-addressing tables (linear probing, at most
 * half full) find an item by (table, id) and an image by a 64-bit
 * fingerprint of its sha1 or md5; images sharing a digest are chained
 * through a next array, so a picture reposted a thousand times costs one
 * slot.  Watched (catalog_watch), every change sets the two gauges under
 * the write lock: images held, and the memory of catalog_get_stats
 * (index_bytes + catalog_bytes), both computed in a few steps.
 */
#include "catalog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "xalloc.h"

#define CATALOG_NONE UINT32_MAX
#define ARENA_BLOCK (1u << 20)

static const char *const catalog_kind_names[CATALOG_KINDS] = {"phash", "dhash", "sha1", "md5"};

const char *catalog_kind_name(catalog_kind k) { return k < CATALOG_KINDS ? catalog_kind_names[k] : "?"; }

int catalog_kind_from_name(const char *name) {
    for (int k = 0; k < CATALOG_KINDS; k++)
        if (strcmp(name, catalog_kind_names[k]) == 0) return k;
    return -1;
}

typedef struct cat_item {
    const char *id;
    uint32_t first_image; /* its images are first_image .. first_image + nimages - 1 */
    uint16_t table;
    uint16_t nimages;
} cat_item;

/* An open-addressing table of 32-bit values (item or image numbers). */
typedef struct slots {
    uint32_t *v;
    size_t cap, used; /* cap a power of two */
} slots;

typedef struct cat_index {
    catalog_kind kind;
    size_t len;
    hindex *x;
} cat_index;

enum { IMG_SHA1 = 1, IMG_MD5 = 2, IMG_REMOVED = 4 };

struct catalog {
    pthread_rwlock_t lock;

    char **tables;
    size_t ntables;

    cat_item *items;
    size_t nitems, items_cap;
    slots item_slots;

    /* per image */
    uint32_t *img_item, *img_n;
    uint64_t *img_digest[2]; /* fingerprints of sha1, md5 (digest_key) */
    uint32_t *img_next[2];   /* the next image with the same fingerprint */
    uint8_t *img_flags;
    size_t nimages, images_cap, nremoved;
    slots digest_slots[2];

    cat_index *indexes;
    size_t nindexes;

    char **blocks;
    size_t nblocks, block_used, arena_bytes;

    metrics_series *watch_images, *watch_bytes; /* catalog_watch's gauges, or NULL */
};

/* --- small helpers --- */

/* The memory of the Hamming indexes, and of everything else; under the lock. */
static void catalog_memory(const catalog *c, uint64_t *index_bytes, uint64_t *catalog_bytes) {
    *index_bytes = 0;
    for (size_t i = 0; i < c->nindexes; i++)
        *index_bytes += hindex_memory(c->indexes[i].x);
    *catalog_bytes = c->items_cap * sizeof(cat_item) + c->item_slots.cap * 4 + c->arena_bytes +
                     c->images_cap * (4 + 4 + 1 + 2 * (8 + 4)) + (c->digest_slots[0].cap + c->digest_slots[1].cap) * 4;
}

/* Set the watched gauges; under the write lock (or alone with C). */
static void catalog_set_gauges(const catalog *c) {
    if (!c->watch_images) return;
    uint64_t index_bytes, catalog_bytes;
    catalog_memory(c, &index_bytes, &catalog_bytes);
    metrics_set(c->watch_images, (double)(c->nimages - c->nremoved));
    metrics_set(c->watch_bytes, (double)(index_bytes + catalog_bytes));
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* A 64-bit fingerprint of a whole digest of N bytes (N a multiple of 4):
 * digests that share their first bytes (made-up ones, such as the md5 of a
 * test) still fall apart. */
static uint64_t digest_key(const unsigned char *d, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w;
        memcpy(&w, d + i, 4);
        h = mix64(h ^ w) + 0x632be59bd9b4e019ull;
    }
    return h;
}

static const char *arena_copy(catalog *c, const char *s) {
    size_t n = strlen(s) + 1;
    if (c->nblocks == 0 || c->block_used + n > ARENA_BLOCK) {
        c->blocks = xrealloc(c->blocks, (c->nblocks + 1) * sizeof *c->blocks);
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        c->blocks[c->nblocks++] = xmalloc(size);
        c->arena_bytes += size;
        c->block_used = 0;
    }
    char *p = c->blocks[c->nblocks - 1] + c->block_used;
    memcpy(p, s, n);
    c->block_used += n;
    if (n > ARENA_BLOCK) c->block_used = ARENA_BLOCK; /* a block of its own: full */
    return p;
}

static void slots_init(slots *t) {
    t->cap = 1024;
    t->used = 0;
    t->v = xmalloc(t->cap * sizeof *t->v);
    memset(t->v, 0xff, t->cap * sizeof *t->v);
}

static uint64_t item_hash(const catalog *c, uint32_t item) {
    const cat_item *it = &c->items[item];
    return fnv1a(it->id, strlen(it->id), fnv1a(&it->table, sizeof it->table, 14695981039346656037ull));
}

static uint64_t digest_hash(const catalog *c, int which, uint32_t image) {
    return mix64(c->img_digest[which][image]);
}

/* Doubles T, placing every value again by HASH. */
static void slots_grow(const catalog *c, slots *t, uint64_t (*hash)(const catalog *, int, uint32_t), int which) {
    size_t cap = t->cap * 2;
    uint32_t *v = xmalloc(cap * sizeof *v);
    memset(v, 0xff, cap * sizeof *v);
    for (size_t i = 0; i < t->cap; i++) {
        if (t->v[i] == CATALOG_NONE) continue;
        size_t p = hash(c, which, t->v[i]) & (cap - 1);
        while (v[p] != CATALOG_NONE)
            p = (p + 1) & (cap - 1);
        v[p] = t->v[i];
    }
    free(t->v);
    t->v = v;
    t->cap = cap;
}

static uint64_t item_hash_any(const catalog *c, int which, uint32_t item) {
    (void)which;
    return item_hash(c, item);
}

/* --- tables and items --- */

static uint16_t table_number(catalog *c, const char *table) {
    for (size_t i = 0; i < c->ntables; i++)
        if (strcmp(c->tables[i], table) == 0) return (uint16_t)i;
    c->tables = xrealloc(c->tables, (c->ntables + 1) * sizeof *c->tables);
    c->tables[c->ntables] = xstrdup(table);
    return (uint16_t)c->ntables++;
}

/* The item (TABLE, ID), or CATALOG_NONE; *AT gets the free slot where it
 * would go. */
static uint32_t item_find(const catalog *c, uint16_t table, const char *id, size_t *at) {
    uint64_t h = fnv1a(id, strlen(id), fnv1a(&table, sizeof table, 14695981039346656037ull));
    size_t mask = c->item_slots.cap - 1;
    for (size_t p = h & mask;; p = (p + 1) & mask) {
        uint32_t v = c->item_slots.v[p];
        if (v == CATALOG_NONE) {
            if (at) *at = p;
            return CATALOG_NONE;
        }
        if (c->items[v].table == table && strcmp(c->items[v].id, id) == 0) return v;
    }
}

static int image_order(uint32_t a, uint32_t b, void *arg) {
    const catalog *c = arg;
    const cat_item *ia = &c->items[c->img_item[a]], *ib = &c->items[c->img_item[b]];
    if (ia != ib) {
        int r = ia->table == ib->table ? 0 : strcmp(c->tables[ia->table], c->tables[ib->table]);
        if (r) return r;
        r = strcmp(ia->id, ib->id);
        if (r) return r;
    }
    if (c->img_n[a] != c->img_n[b]) return c->img_n[a] < c->img_n[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

static hindex *index_for(catalog *c, catalog_kind kind, size_t len, bool create) {
    for (size_t i = 0; i < c->nindexes; i++)
        if (c->indexes[i].kind == kind && c->indexes[i].len == len) return c->indexes[i].x;
    if (!create) return NULL;
    c->indexes = xrealloc(c->indexes, (c->nindexes + 1) * sizeof *c->indexes);
    cat_index *ci = &c->indexes[c->nindexes++];
    ci->kind = kind;
    ci->len = len;
    ci->x = hindex_new(len, image_order, c);
    return ci->x;
}

catalog *catalog_new(void) {
    catalog *c = xcalloc(1, sizeof *c);
    pthread_rwlock_init(&c->lock, NULL);
    slots_init(&c->item_slots);
    slots_init(&c->digest_slots[0]);
    slots_init(&c->digest_slots[1]);
    return c;
}

void catalog_free(catalog *c) {
    if (!c) return;
    for (size_t i = 0; i < c->ntables; i++)
        free(c->tables[i]);
    free(c->tables);
    free(c->items);
    free(c->item_slots.v);
    free(c->img_item);
    free(c->img_n);
    free(c->img_flags);
    for (int w = 0; w < 2; w++) {
        free(c->img_digest[w]);
        free(c->img_next[w]);
        free(c->digest_slots[w].v);
    }
    for (size_t i = 0; i < c->nindexes; i++)
        hindex_free(c->indexes[i].x);
    free(c->indexes);
    for (size_t i = 0; i < c->nblocks; i++)
        free(c->blocks[i]);
    free(c->blocks);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

/* --- adding --- */

static bool same_images(const catalog *c, const cat_item *it, const catalog_image *images, size_t n) {
    if (it->nimages != n) return false;
    for (size_t i = 0; i < n; i++) {
        uint32_t im = it->first_image + (uint32_t)i;
        const catalog_image *g = &images[i];
        if (c->img_n[im] != g->n || !!(c->img_flags[im] & IMG_SHA1) != g->has_sha1 ||
            !!(c->img_flags[im] & IMG_MD5) != g->has_md5)
            return false;
        if (g->has_sha1 && c->img_digest[0][im] != digest_key(g->sha1, 20)) return false;
        if (g->has_md5 && c->img_digest[1][im] != digest_key(g->md5, 16)) return false;
    }
    return true;
}

static void digest_link(catalog *c, int w, uint32_t image) {
    slots *t = &c->digest_slots[w];
    if (2 * (t->used + 1) > t->cap) slots_grow(c, t, digest_hash, w);
    size_t mask = t->cap - 1;
    for (size_t p = digest_hash(c, w, image) & mask;; p = (p + 1) & mask) {
        uint32_t v = t->v[p];
        if (v == CATALOG_NONE) {
            t->v[p] = image;
            t->used++;
            c->img_next[w][image] = CATALOG_NONE;
            return;
        }
        if (c->img_digest[w][v] == c->img_digest[w][image]) {
            /* Keep the chain's head in the slot: the newest goes second. */
            c->img_next[w][image] = c->img_next[w][v];
            c->img_next[w][v] = image;
            return;
        }
    }
}

static void images_reserve(catalog *c, size_t more) {
    if (c->nimages + more <= c->images_cap) return;
    size_t cap = c->images_cap ? c->images_cap : 1024;
    while (cap < c->nimages + more)
        cap *= 2;
    c->img_item = xrealloc(c->img_item, cap * sizeof *c->img_item);
    c->img_n = xrealloc(c->img_n, cap * sizeof *c->img_n);
    c->img_flags = xrealloc(c->img_flags, cap * sizeof *c->img_flags);
    for (int w = 0; w < 2; w++) {
        c->img_digest[w] = xrealloc(c->img_digest[w], cap * sizeof *c->img_digest[w]);
        c->img_next[w] = xrealloc(c->img_next[w], cap * sizeof *c->img_next[w]);
    }
    c->images_cap = cap;
}

static void remove_images(catalog *c, cat_item *it) {
    for (uint32_t i = 0; i < it->nimages; i++) {
        uint32_t im = it->first_image + i;
        c->img_flags[im] |= IMG_REMOVED;
        c->nremoved++;
        for (size_t x = 0; x < c->nindexes; x++)
            hindex_remove(c->indexes[x].x, im);
    }
}

catalog_added catalog_add(catalog *c, const char *table, const char *id, const catalog_image *images,
                          size_t nimages) {
    if (nimages > UINT16_MAX) nimages = UINT16_MAX; /* _urls holds far fewer */
    pthread_rwlock_wrlock(&c->lock);
    uint16_t t = table_number(c, table);
    size_t at;
    uint32_t item = item_find(c, t, id, &at);
    catalog_added result = CATALOG_NEW;
    if (item != CATALOG_NONE) {
        if (same_images(c, &c->items[item], images, nimages)) {
            pthread_rwlock_unlock(&c->lock);
            return CATALOG_SAME;
        }
        remove_images(c, &c->items[item]);
        result = CATALOG_REPLACED;
    } else {
        if (c->nitems == c->items_cap) {
            c->items_cap = c->items_cap ? 2 * c->items_cap : 1024;
            c->items = xrealloc(c->items, c->items_cap * sizeof *c->items);
        }
        item = (uint32_t)c->nitems++;
        c->items[item].id = arena_copy(c, id);
        c->items[item].table = t;
        c->item_slots.v[at] = item;
        if (2 * ++c->item_slots.used > c->item_slots.cap) slots_grow(c, &c->item_slots, item_hash_any, 0);
    }
    cat_item *it = &c->items[item];
    images_reserve(c, nimages);
    it->first_image = (uint32_t)c->nimages;
    it->nimages = (uint16_t)nimages;
    for (size_t i = 0; i < nimages; i++) {
        const catalog_image *g = &images[i];
        uint32_t im = (uint32_t)c->nimages++;
        c->img_item[im] = item;
        c->img_n[im] = g->n;
        c->img_flags[im] = (uint8_t)((g->has_sha1 ? IMG_SHA1 : 0) | (g->has_md5 ? IMG_MD5 : 0));
        c->img_digest[0][im] = g->has_sha1 ? digest_key(g->sha1, 20) : 0;
        c->img_digest[1][im] = g->has_md5 ? digest_key(g->md5, 16) : 0;
        c->img_next[0][im] = c->img_next[1][im] = CATALOG_NONE;
        if (g->has_sha1) digest_link(c, 0, im);
        if (g->has_md5) digest_link(c, 1, im);
        if (g->phash_len) hindex_add(index_for(c, CATALOG_PHASH, g->phash_len, true), g->phash, im);
        if (g->dhash_len) hindex_add(index_for(c, CATALOG_DHASH, g->dhash_len, true), g->dhash, im);
    }
    catalog_set_gauges(c);
    pthread_rwlock_unlock(&c->lock);
    return result;
}

void catalog_build(catalog *c) {
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < c->nindexes; i++)
        hindex_build(c->indexes[i].x);
    catalog_set_gauges(c);
    pthread_rwlock_unlock(&c->lock);
}

void catalog_watch(catalog *c, metrics_series *images, metrics_series *bytes) {
    pthread_rwlock_wrlock(&c->lock);
    c->watch_images = images && bytes ? images : NULL;
    c->watch_bytes = images && bytes ? bytes : NULL;
    catalog_set_gauges(c);
    pthread_rwlock_unlock(&c->lock);
}

/* --- finding --- */

static size_t hits_from(const catalog *c, const hindex_hit *h, size_t n, catalog_hit **out) {
    catalog_hit *r = n ? xmalloc(n * sizeof *r) : NULL;
    for (size_t i = 0; i < n; i++) {
        const cat_item *it = &c->items[c->img_item[h[i].ref]];
        r[i] = (catalog_hit){c->tables[it->table], it->id, c->img_n[h[i].ref], h[i].distance};
    }
    *out = r;
    return n;
}

/* Images with digest prefix of kind W equal to the query's, in order, at
 * most K; by the table (SCAN false) or by looking at every image. */
static size_t digest_find(catalog *c, int w, const unsigned char *digest, size_t k, bool scan, catalog_hit **out) {
    uint64_t key = digest_key(digest, w == 0 ? 20 : 16);
    uint8_t flag = w == 0 ? IMG_SHA1 : IMG_MD5;
    hindex_hit *v = NULL;
    size_t n = 0, cap = 0;
    uint32_t first = CATALOG_NONE;
    if (!scan) {
        slots *t = &c->digest_slots[w];
        size_t mask = t->cap - 1;
        for (size_t p = mix64(key) & mask; t->v[p] != CATALOG_NONE; p = (p + 1) & mask) {
            if (c->img_digest[w][t->v[p]] == key) {
                first = t->v[p];
                break;
            }
        }
    }
    for (uint32_t im = scan ? 0 : first; scan ? im < c->nimages : im != CATALOG_NONE;
         im = scan ? im + 1 : c->img_next[w][im]) {
        if (!(c->img_flags[im] & flag) || (c->img_flags[im] & IMG_REMOVED) || c->img_digest[w][im] != key) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = (hindex_hit){im, 0};
    }
    /* Insertion sort by the catalog's order: chains are short. */
    for (size_t i = 1; i < n; i++) {
        hindex_hit h = v[i];
        size_t j = i;
        while (j > 0 && image_order(h.ref, v[j - 1].ref, c) < 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = h;
    }
    size_t r = hits_from(c, v, n < k ? n : k, out);
    free(v);
    return r;
}

static size_t find(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance, size_t k,
                   bool scan, catalog_hit **out, hindex_trace *trace) {
    *out = NULL;
    if (trace) memset(trace, 0, sizeof *trace);
    if (k == 0) k = 1;
    pthread_rwlock_rdlock(&c->lock);
    size_t n = 0;
    if (kind == CATALOG_SHA1 || kind == CATALOG_MD5) {
        if (len == (kind == CATALOG_SHA1 ? 20u : 16u))
            n = digest_find(c, kind == CATALOG_SHA1 ? 0 : 1, hash, k, scan, out);
    } else {
        hindex *x = index_for(c, kind, len, false);
        if (x) {
            hindex_hit *h = NULL;
            size_t m = scan ? hindex_scan(x, hash, max_distance, k, &h)
                            : hindex_search(x, hash, max_distance, k, &h, trace);
            n = hits_from(c, h, m, out);
            free(h);
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return n;
}

size_t catalog_search(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance,
                      size_t k, catalog_hit **out, hindex_trace *trace) {
    return find(c, kind, hash, len, max_distance, k, false, out, trace);
}

size_t catalog_scan(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance, size_t k,
                    catalog_hit **out) {
    return find(c, kind, hash, len, max_distance, k, true, out, NULL);
}

void catalog_get_stats(catalog *c, catalog_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&c->lock);
    out->items = c->nitems;
    out->images = c->nimages - c->nremoved;
    for (size_t i = 0; i < c->nindexes; i++)
        out->hashed[c->indexes[i].kind] += hindex_count(c->indexes[i].x);
    for (size_t im = 0; im < c->nimages; im++) {
        if (c->img_flags[im] & IMG_REMOVED) continue;
        if (c->img_flags[im] & IMG_SHA1) out->hashed[CATALOG_SHA1]++;
        if (c->img_flags[im] & IMG_MD5) out->hashed[CATALOG_MD5]++;
    }
    catalog_memory(c, &out->index_bytes, &out->catalog_bytes);
    pthread_rwlock_unlock(&c->lock);
}

void catalog_each_hash(catalog *c, catalog_kind kind, size_t len,
                       void (*fn)(const unsigned char *hash, uint32_t image, void *arg), void *arg) {
    pthread_rwlock_rdlock(&c->lock);
    hindex *x = index_for(c, kind, len, false);
    if (x) hindex_each(x, fn, arg);
    pthread_rwlock_unlock(&c->lock);
}

void catalog_image_of(catalog *c, uint32_t image, const char **table, const char **id, uint32_t *n) {
    pthread_rwlock_rdlock(&c->lock);
    const cat_item *it = &c->items[c->img_item[image]];
    *table = c->tables[it->table];
    *id = it->id;
    *n = c->img_n[image];
    pthread_rwlock_unlock(&c->lock);
}

size_t catalog_lengths(catalog *c, catalog_kind kind, size_t *lens, size_t max) {
    size_t n = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < c->nindexes && n < max; i++)
        if (c->indexes[i].kind == kind) lens[n++] = c->indexes[i].len;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

size_t catalog_within(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance,
                      uint32_t **out) {
    *out = NULL;
    pthread_rwlock_rdlock(&c->lock);
    hindex *x = kind == CATALOG_PHASH || kind == CATALOG_DHASH ? index_for(c, kind, len, false) : NULL;
    size_t n = 0;
    if (x) {
        hindex_hit *h = NULL;
        n = hindex_search(x, hash, max_distance, 0, &h, NULL);
        if (n) {
            *out = xmalloc(n * sizeof **out);
            for (size_t i = 0; i < n; i++)
                (*out)[i] = h[i].ref;
        }
        free(h);
    }
    pthread_rwlock_unlock(&c->lock);
    return n;
}

size_t catalog_image_count(catalog *c) {
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->nimages;
    pthread_rwlock_unlock(&c->lock);
    return n;
}
