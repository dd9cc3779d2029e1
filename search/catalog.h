/* catalog.h -- every image of the archive that search can find, in memory.
 *
 * An item is (archive table, _id); its images are the `_img` entries with
 * a phash or a dhash, each known by the item and its `url` number n.  The
 * catalog holds per image only what finding it needs: its phash and dhash
 * in a Hamming index each (hindex.h; one index per kind and hash length, as
 * hashes of different sizes are never compared), and 64-bit fingerprints
 * of its sha1 and md5 in hash tables for exact lookups.  Everything a result
 * shows besides (URL, size, board, time, the full sha1) is read from the
 * archive when the result is shown (detail.h), which also drops the
 * (astronomically rare) result whose digest only shared its fingerprint
 * with the query's.
 *
 * The order of results: by distance, then table name, then _id (byte
 * order, as PostgreSQL's COLLATE "C"), then n.  It depends only on the
 * archive's content, not on the order items arrived in, so a restart gives
 * the same answers.
 *
 * An item added again is compared with what the catalog holds: the same
 * images are not counted twice (the loader and the queue both see items
 * archived while search started); different ones replace the old.
 *
 * Threads: catalog_add takes a write lock, the lookups a read lock, so any
 * number of HTTP threads ask while the queue's thread adds.
 *
 * Metrics: the catalog knows none by itself (tests and commands make
 * several); the service hands it two gauges to keep current
 * (catalog_watch).
 */
#ifndef IMGFEED_CATALOG_H
#define IMGFEED_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hindex.h"
#include "metrics.h"

typedef enum catalog_kind {
    CATALOG_PHASH,
    CATALOG_DHASH,
    CATALOG_SHA1,
    CATALOG_MD5,
    CATALOG_KINDS
} catalog_kind;

/* "phash", "dhash", "sha1", "md5". */
const char *catalog_kind_name(catalog_kind k);
/* The kind named NAME; -1 when none. */
int catalog_kind_from_name(const char *name);

#define CATALOG_HASH_MAX HINDEX_MAX_BYTES

/* One image of an item, as catalog_add takes it: absent hashes have length 0. */
typedef struct catalog_image {
    uint32_t n; /* the `_img` entry's "url": its index into `_urls` */
    unsigned char phash[CATALOG_HASH_MAX], dhash[CATALOG_HASH_MAX];
    size_t phash_len, dhash_len;
    unsigned char sha1[20], md5[16];
    bool has_sha1, has_md5;
} catalog_image;

typedef enum catalog_added {
    CATALOG_NEW,      /* an item not seen before */
    CATALOG_SAME,     /* already held with the same images: nothing changed */
    CATALOG_REPLACED, /* held with other images: they were replaced */
} catalog_added;

typedef struct catalog catalog;

catalog *catalog_new(void);
void catalog_free(catalog *c);

/* Adds item ID of TABLE with its NIMAGES images (none: the item is still
 * remembered, so that it is not counted again). */
catalog_added catalog_add(catalog *c, const char *table, const char *id, const catalog_image *images,
                          size_t nimages);
/* Builds the Hamming indexes' pending additions (after a load). */
void catalog_build(catalog *c);

/* A found image: TABLE and ID point into the catalog and stay valid as
 * long as it lives (items are never forgotten). */
typedef struct catalog_hit {
    const char *table;
    const char *id;
    uint32_t n;
    int distance;
} catalog_hit;

/* The images whose KIND hash (phash or dhash: HASH of LEN bytes; sha1 or
 * md5: the digest) is within MAX_DISTANCE of the query (digests: equal),
 * nearest first in the order above, at most K (at least 1).  A new array in
 * *OUT, freed by the caller; returns how many.  TRACE may be NULL. */
size_t catalog_search(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance,
                      size_t k, catalog_hit **out, hindex_trace *trace);
/* The same answer by scanning every image (the tests' reference). */
size_t catalog_scan(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance,
                    size_t k, catalog_hit **out);

typedef struct catalog_stats {
    uint64_t items, images;
    uint64_t hashed[CATALOG_KINDS]; /* images with each kind */
    uint64_t index_bytes;           /* the Hamming indexes */
    uint64_t catalog_bytes;         /* everything else: items, their ids, the digest tables */
} catalog_stats;

void catalog_get_stats(catalog *c, catalog_stats *out);

/* From now on keep the gauges IMAGES (catalog_stats.images) and BYTES
 * (index_bytes + catalog_bytes) current: set now, and by every
 * catalog_add and catalog_build, under the write lock, in a few steps.
 * NULL for either: watch nothing. */
void catalog_watch(catalog *c, metrics_series *images, metrics_series *bytes);

/* Calls FN for each image with a KIND hash of LEN bytes (phash or dhash),
 * with the image's number (0 .. catalog_images-1), under the read lock. */
void catalog_each_hash(catalog *c, catalog_kind kind, size_t len,
                       void (*fn)(const unsigned char *hash, uint32_t image, void *arg), void *arg);
/* The numbers of every image whose KIND hash (phash or dhash) is within
 * MAX_DISTANCE of HASH (LEN bytes), in no order, into a new array *OUT
 * (freed by the caller); returns how many.  For duplicate groups. */
size_t catalog_within(catalog *c, catalog_kind kind, const unsigned char *hash, size_t len, int max_distance,
                      uint32_t **out);
/* Images held, removed ones included: image numbers are below it. */
size_t catalog_image_count(catalog *c);
/* The table, id and n of image number IMAGE. */
void catalog_image_of(catalog *c, uint32_t image, const char **table, const char **id, uint32_t *n);
/* The hash lengths indexed for KIND, into LENS (at most MAX); returns how many. */
size_t catalog_lengths(catalog *c, catalog_kind kind, size_t *lens, size_t max);

#endif
