/* rmap.c -- string-keyed map of zeroed records; see rmap.h. */
#include "rmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void rmap_init(rmap *m, size_t rec_size) {
    memset(m, 0, sizeof *m);
    m->rec_size = rec_size;
}

void rmap_release(rmap *m, void (*free_rec)(void *rec)) {
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        if (free_rec) free_rec(m->vals[i]);
        free(m->vals[i]);
        free(m->keys[i]);
    }
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->n = m->cap = 0;
}

static uint64_t rmap_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t rmap_slot(const rmap *m, const char *key) {
    size_t i = (size_t)(rmap_hash(key) & (m->cap - 1));
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *rmap_find(const rmap *m, const char *key) {
    if (!m->cap) return NULL;
    size_t i = rmap_slot(m, key);
    return m->keys[i] ? m->vals[i] : NULL;
}

void *rmap_get(rmap *m, const char *key) {
    if (2 * (m->n + 1) > m->cap) {
        rmap old = *m;
        m->cap = old.cap ? 2 * old.cap : 16;
        m->keys = xcalloc(m->cap, sizeof *m->keys);
        m->vals = xcalloc(m->cap, sizeof *m->vals);
        for (size_t i = 0; i < old.cap; i++) {
            if (!old.keys[i]) continue;
            size_t j = rmap_slot(m, old.keys[i]);
            m->keys[j] = old.keys[i];
            m->vals[j] = old.vals[i];
        }
        free(old.keys);
        free(old.vals);
    }
    size_t i = rmap_slot(m, key);
    if (!m->keys[i]) {
        m->keys[i] = xstrdup(key);
        m->vals[i] = xcalloc(1, m->rec_size ? m->rec_size : 1);
        m->n++;
    }
    return m->vals[i];
}

static int rmap_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

const char **rmap_keys(const rmap *m) {
    const char **k = xmalloc((m->n ? m->n : 1) * sizeof *k);
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) k[n++] = m->keys[i];
    qsort(k, n, sizeof *k, rmap_cmp);
    return k;
}
