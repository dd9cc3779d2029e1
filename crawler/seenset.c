/* seenset.c -- a bounded set of ids, oldest forgotten first; see seenset.h.
 *
 * The ids live in a ring of `cap` slots (slot `head` is the oldest once the
 * ring is full).  A chained hash table finds them: buckets[h] is the first
 * slot whose id hashes to h, next[slot] the following one (SEENSET_NONE ends
 * a chain).  Forgetting the oldest unlinks its slot from its chain, which is
 * short: there are at least as many buckets as slots.
 *
 * The ring starts small and doubles (ids laid out again oldest first, the
 * table rebuilt) until it holds `max`: memory follows the ids held, not the
 * bound, so a thousand categories with a bound of 100,000 and a few ids each
 * cost kilobytes, not gigabytes.
 */
#include "seenset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define SEENSET_NONE SIZE_MAX
#define SEENSET_FIRST_CAP 16

struct seenset {
    char **ids;      /* the ring: cap slots */
    size_t *next;    /* per slot: the next slot of its chain */
    size_t *buckets; /* nbuckets chain heads */
    size_t max, cap, count, head, nbuckets;
};

/* FNV-1a: ids are short and not chosen to collide. */
static size_t seenset_hash(const seenset *s, const char *id) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h & (s->nbuckets - 1));
}

/* Make room for CAP slots (count <= cap <= max): the ids oldest first from
 * slot 0, the table rebuilt with at least CAP buckets. */
static void seenset_resize(seenset *s, size_t cap) {
    char **ids = xcalloc(cap, sizeof *ids);
    for (size_t i = 0; i < s->count; i++)
        ids[i] = s->ids[(s->head + i) % s->cap];
    free(s->ids);
    s->ids = ids;
    s->cap = cap;
    s->head = 0;
    s->nbuckets = 16;
    while (s->nbuckets < cap)
        s->nbuckets *= 2;
    free(s->buckets);
    free(s->next);
    s->next = xmalloc(cap * sizeof *s->next);
    s->buckets = xmalloc(s->nbuckets * sizeof *s->buckets);
    for (size_t i = 0; i < s->nbuckets; i++)
        s->buckets[i] = SEENSET_NONE;
    for (size_t k = 0; k < s->count; k++) {
        size_t h = seenset_hash(s, ids[k]);
        s->next[k] = s->buckets[h];
        s->buckets[h] = k;
    }
}

seenset *seenset_new(size_t max) {
    seenset *s = xcalloc(1, sizeof *s);
    s->max = max ? max : 1;
    seenset_resize(s, s->max < SEENSET_FIRST_CAP ? s->max : SEENSET_FIRST_CAP);
    return s;
}

void seenset_free(seenset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->count; i++)
        free(s->ids[(s->head + i) % s->cap]);
    free(s->ids);
    free(s->next);
    free(s->buckets);
    free(s);
}

bool seenset_has(const seenset *s, const char *id) {
    for (size_t k = s->buckets[seenset_hash(s, id)]; k != SEENSET_NONE; k = s->next[k])
        if (strcmp(s->ids[k], id) == 0) return true;
    return false;
}

/* Unlink slot K from its chain and free its id. */
static void seenset_forget(seenset *s, size_t k) {
    size_t *link = &s->buckets[seenset_hash(s, s->ids[k])];
    while (*link != k)
        link = &s->next[*link];
    *link = s->next[k];
    free(s->ids[k]);
    s->ids[k] = NULL;
}

void seenset_add(seenset *s, const char *id) {
    if (seenset_has(s, id)) return;
    if (s->count == s->cap && s->cap < s->max) seenset_resize(s, s->cap > s->max / 2 ? s->max : 2 * s->cap);
    size_t k = (s->head + s->count) % s->cap;
    if (s->count == s->max) { /* full: slot k is the oldest */
        seenset_forget(s, k);
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
    s->ids[k] = xstrdup(id);
    size_t h = seenset_hash(s, id);
    s->next[k] = s->buckets[h];
    s->buckets[h] = k;
    s->count++;
}

size_t seenset_count(const seenset *s) { return s->count; }

const char *seenset_id(const seenset *s, size_t i) { return s->ids[(s->head + i) % s->cap]; }

json_object *seenset_to_json(const seenset *s) {
    json_object *a = json_object_new_array_ext((int)s->count);
    for (size_t i = 0; i < s->count; i++)
        json_object_array_add(a, json_object_new_string(seenset_id(s, i)));
    return a;
}

int seenset_from_json(seenset *s, json_object *a, char *why, size_t whylen) {
    if (!json_object_is_type(a, json_type_array)) {
        snprintf(why, whylen, "the ids seen are not an array");
        return -1;
    }
    size_t n = json_object_array_length(a);
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_string)) {
            snprintf(why, whylen, "id %zu of the ids seen is not a string", i);
            return -1;
        }
        seenset_add(s, json_object_get_string(v));
    }
    return 0;
}
