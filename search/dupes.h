/* dupes.h -- groups of near-identical images of a catalog.
 *
 * The images of a catalog whose phash (or dhash) are within a Hamming
 * distance of each other, directly or through other members (single
 * linkage), form a group.  `imgfeed-search dupes` prints them;
 * `imgfeed-export dataset` keeps one image of each.
 *
 * The order depends only on the catalog's content (table, id, url number:
 * catalog.h), never on the order the images were loaded in, so two runs
 * over the same archive give the same groups in the same order.
 *
 * Memory: about 20 bytes per image of the catalog beyond the catalog
 * itself while dupes_find runs (union-find parents, the order, the sort
 * keys), plus one hash length's copy of the hashes (at most 2 x 18 bytes
 * per image for 144-bit hashes); all freed before it returns.
 */
#ifndef IMGFEED_SEARCH_DUPES_H
#define IMGFEED_SEARCH_DUPES_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* Called once per group: MEMBERS are image numbers of C (catalog_image_of),
 * N of them, in the catalog's order.  MEMBERS belongs to dupes_find and is
 * valid only during the call. */
typedef void (*dupes_group_fn)(catalog *c, const uint32_t *members, size_t n, void *arg);

/* The groups of images of C whose KIND hashes are linked by Hamming distances of at
 * most MAX_DISTANCE (single linkage), each group's members in the catalog's order
 * (table, id, image), groups in the order of their first member; groups of fewer
 * than MIN_SIZE images are skipped.  Returns the number of groups given to FN, or
 * -1 when a stop was requested (sig.h). */
long dupes_find(catalog *c, catalog_kind kind, int max_distance, size_t min_size, dupes_group_fn fn, void *arg);

#endif
