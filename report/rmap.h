/* rmap.h -- a string-keyed hash map of zeroed records, for the report's counters.
 *
 * The report counts per label, per site and day, per format, per error
 * kind: its memory grows with the number of distinct keys, never with the
 * number of images.  rmap_get hands out a zeroed record of the map's record
 * size for a key, made on first use; records stay at their address until
 * rmap_release.  rmap_keys gives the keys sorted bytewise (the order of
 * report.json).  Open addressing, linear probing, FNV-1a.
 */
#ifndef IMGFEED_REPORT_RMAP_H
#define IMGFEED_REPORT_RMAP_H

#include <stddef.h>

typedef struct rmap {
    size_t rec_size; /* bytes of each record */
    size_t n, cap;   /* keys held, slots */
    char **keys;     /* cap slots, NULL when free */
    void **vals;
} rmap;

void rmap_init(rmap *m, size_t rec_size);
/* Frees the keys and records; FREE_REC (may be NULL) is called on each record first. */
void rmap_release(rmap *m, void (*free_rec)(void *rec));
/* The record of KEY (NUL-terminated), made zeroed when new. */
void *rmap_get(rmap *m, const char *key);
/* The record of KEY, or NULL. */
void *rmap_find(const rmap *m, const char *key);
/* The keys, sorted bytewise, in a new array of m->n pointers into the map (caller frees the array). */
const char **rmap_keys(const rmap *m);

#endif
