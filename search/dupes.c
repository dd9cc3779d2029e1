/* dupes.c -- groups of near-identical images; see dupes.h.
 *
 * A union-find over image numbers: every image asks the Hamming index for
 * its neighbours within the distance (catalog_within) and is joined with
 * each.  The hashes are copied out first, so that the queries do not run
 * inside the catalog's walk (catalog_each_hash holds its read lock).
 *
 * The order: the images are sorted once by (table, id, n) into a rank;
 * each group is then known by the rank of its first member, and one sort
 * of 64-bit keys (first member's rank, own rank) lays the groups out one
 * after the other, members in order.  No comparator needs the catalog, so
 * nothing is kept in globals.
 */
#include "dupes.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sig.h"
#include "xalloc.h"

static uint32_t dupes_root(uint32_t *parent, uint32_t a) {
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

/* The hashes of one length, copied out of the catalog. */
typedef struct dupes_copy {
    unsigned char *hashes;
    uint32_t *images;
    size_t n, cap, len;
} dupes_copy;

static void dupes_take(const unsigned char *hash, uint32_t image, void *arg) {
    dupes_copy *d = arg;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 4096;
        d->hashes = xrealloc(d->hashes, d->cap * d->len);
        d->images = xrealloc(d->images, d->cap * sizeof *d->images);
    }
    memcpy(d->hashes + d->n * d->len, hash, d->len);
    d->images[d->n++] = image;
}

/* An image with its place in the catalog's order. */
typedef struct dupes_pos {
    const char *table, *id;
    uint32_t n, image;
} dupes_pos;

static int dupes_pos_cmp(const void *a, const void *b) {
    const dupes_pos *x = a, *y = b;
    int r = x->table == y->table ? 0 : strcmp(x->table, y->table);
    if (!r) r = strcmp(x->id, y->id);
    if (!r) r = x->n < y->n ? -1 : x->n > y->n;
    return r ? r : (x->image > y->image) - (x->image < y->image);
}

static int dupes_key_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

long dupes_find(catalog *c, catalog_kind kind, int max_distance, size_t min_size, dupes_group_fn fn, void *arg) {
    size_t total = catalog_image_count(c);
    uint32_t *parent = xmalloc((total ? total : 1) * sizeof *parent);
    for (size_t i = 0; i < total; i++)
        parent[i] = (uint32_t)i;
    size_t lens[16], nl = catalog_lengths(c, kind, lens, 16);
    uint32_t *order = NULL; /* every image with a KIND hash */
    size_t n = 0;
    bool stopped = false;
    for (size_t l = 0; l < nl && !stopped; l++) {
        dupes_copy d = {.len = lens[l]};
        catalog_each_hash(c, kind, lens[l], dupes_take, &d);
        for (size_t i = 0; i < d.n; i++) {
            if (sig_stop_requested()) {
                stopped = true;
                break;
            }
            uint32_t *near = NULL;
            size_t m = catalog_within(c, kind, d.hashes + i * d.len, d.len, max_distance, &near);
            for (size_t j = 0; j < m; j++) {
                uint32_t a = dupes_root(parent, d.images[i]), b = dupes_root(parent, near[j]);
                if (a != b) parent[a < b ? b : a] = a < b ? a : b;
            }
            free(near);
            if ((i + 1) % 1000000 == 0) log_info("%zu of %zu images compared", i + 1, d.n);
        }
        order = xrealloc(order, (n + d.n + 1) * sizeof *order);
        memcpy(order + n, d.images, d.n * sizeof *d.images);
        n += d.n;
        free(d.hashes);
        free(d.images);
    }
    long groups = 0;
    if (stopped) goto done;

    /* the catalog's order */
    dupes_pos *pos = xmalloc((n ? n : 1) * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        pos[i].image = order[i];
        catalog_image_of(c, order[i], &pos[i].table, &pos[i].id, &pos[i].n);
    }
    qsort(pos, n, sizeof *pos, dupes_pos_cmp);
    for (size_t i = 0; i < n; i++)
        order[i] = pos[i].image;
    free(pos);

    /* each group by its first member's rank: first[root] */
    uint32_t *first = xmalloc((total ? total : 1) * sizeof *first);
    for (size_t i = 0; i < total; i++)
        first[i] = UINT32_MAX;
    uint64_t *keys = xmalloc((n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = dupes_root(parent, order[i]);
        if (first[r] == UINT32_MAX) first[r] = (uint32_t)i;
        keys[i] = (uint64_t)first[r] << 32 | (uint64_t)i;
    }
    free(first);
    qsort(keys, n, sizeof *keys, dupes_key_cmp);

    uint32_t *members = xmalloc((n ? n : 1) * sizeof *members);
    for (size_t i = 0; i < n;) {
        if (sig_stop_requested()) {
            stopped = true;
            break;
        }
        size_t j = i;
        while (j < n && keys[j] >> 32 == keys[i] >> 32) {
            members[j - i] = order[(uint32_t)keys[j]];
            j++;
        }
        if (j - i >= min_size) {
            fn(c, members, j - i, arg);
            groups++;
        }
        i = j;
    }
    free(members);
    free(keys);
done:
    free(order);
    free(parent);
    return stopped ? -1 : groups;
}
