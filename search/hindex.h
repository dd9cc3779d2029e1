/* hindex.h -- an exact Hamming-distance index of fixed-length hashes.
 *
 * Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming
 * Space with Multi-Index Hashing", CVPR 2012): every hash of B bytes is cut
 * into m substrings, and each substring has a table from its value to the
 * slots holding it.  Two hashes within distance R agree within floor(R/m)
 * bits on at least one substring (pigeonhole), so a query looks up the
 * buckets near each of its own substrings, and checks the full distance of
 * each candidate.  A small index cuts the bytes in pairs (16-bit
 * substrings); a large one, once it can afford their bucket tables (at most
 * 10 bytes a hash), fewer and wider ones, up to 21 bits, which hold fewer
 * candidates a bucket: for 144 bits, 7 of 20 and 21 bits from 9.2 million
 * hashes (hindex.c, layout_for; the layout is chosen again at each build).
 *
 * How the buckets are walked: in steps (s, j), s = 0, 1, 2 ... and j = 0
 * .. m-1, step (s, j) visits every bucket of substring j at exactly s bits
 * from the query's.  After step (s, j) every hash within m*s + j of the
 * query has been seen (a hash unseen so far differs by at least s+1 bits on
 * substrings 0..j and s on the others).  A radius query stops after the
 * step that covers its radius; a top-k query stops once its k-th best
 * distance is covered, so its answer is exact too: every hash as near as the
 * k-th has been seen, ties included.  A hash that sits in several visited
 * buckets is counted only at the first step that reaches it: the step (d_i,
 * i) smallest over its substrings' distances d_i.  When the next steps would
 * look at more candidates than there are hashes, the query scans them all
 * instead, with the same rules: the answer does not depend on the path.
 *
 * Storage: the hashes in chunks of 65,536 slots (no copy when growing), a
 * 32-bit reference per slot (the caller's number for the image), and per
 * substring a sorted table (offsets of its buckets and the slots in bucket
 * order, 4 bytes a slot) for the slots up to the last hindex_build, and a
 * chained table for the slots added since, which hindex_add builds into the
 * sorted one when it has grown past an eighth of it.  For 144-bit hashes:
 * 18 + 4 + m x 4 bytes a hash plus the bucket tables: 58 bytes with 16-bit
 * substrings, 59.3 measured at 10 million (docs/benchmarks.md).
 *
 * Ties between equal distances are broken by the caller's order of
 * references (hindex_order), so results are the same whatever the order
 * the hashes were added in.
 *
 * Threads: any number of queries at once, or one writer (hindex_add,
 * hindex_remove, hindex_build) alone; the caller holds the lock.
 */
#ifndef IMGFEED_HINDEX_H
#define IMGFEED_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HINDEX_MAX_BYTES 128 /* up to 1024-bit hashes (imagehash's hash_size 32) */
#define HINDEX_NONE UINT32_MAX

typedef struct hindex hindex;

/* The caller's order of two references with equal distances: negative when
 * A comes first.  Must be a total order. */
typedef int (*hindex_order)(uint32_t a, uint32_t b, void *arg);

typedef struct hindex_hit {
    uint32_t ref;
    int distance;
} hindex_hit;

/* What one query did, for the stats and the benchmark. */
typedef struct hindex_trace {
    uint64_t candidates; /* hashes whose distance was computed */
    uint64_t buckets;    /* buckets looked up */
    bool scanned;        /* it fell back to a scan of every hash */
} hindex_trace;

/* An empty index of NBYTES-byte hashes (1..HINDEX_MAX_BYTES), ordering ties
 * with ORDER (NULL: by reference).  Freed with hindex_free. */
hindex *hindex_new(size_t nbytes, hindex_order order, void *order_arg);
void hindex_free(hindex *x);

size_t hindex_nbytes(const hindex *x);
/* Hashes held, removed ones not counted. */
size_t hindex_count(const hindex *x);
/* Heap bytes the index holds now. */
size_t hindex_memory(const hindex *x);

/* Adds HASH (nbytes) with reference REF (not HINDEX_NONE). */
void hindex_add(hindex *x, const unsigned char *hash, uint32_t ref);
/* Removes every hash with reference REF (a scan: for the rare item that
 * changes its pictures).  Returns how many. */
size_t hindex_remove(hindex *x, uint32_t ref);
/* Moves every hash added since the last build into the sorted tables (the
 * loader calls it once after loading; hindex_add calls it as needed). */
void hindex_build(hindex *x);

/* The hashes within MAX_DISTANCE of QUERY, nearest first, at most K (K 0:
 * all), ties in the caller's order, into a new array (*OUT, the caller's to
 * free(); NULL when none).  Returns how many.  TRACE may be NULL. */
size_t hindex_search(const hindex *x, const unsigned char *query, int max_distance, size_t k, hindex_hit **out,
                     hindex_trace *trace);

/* The same answer by a scan of every hash: the reference the tests and the
 * benchmark compare with. */
size_t hindex_scan(const hindex *x, const unsigned char *query, int max_distance, size_t k, hindex_hit **out);

/* Hamming distance between two NBYTES-byte hashes. */
int hindex_distance(const unsigned char *a, const unsigned char *b, size_t nbytes);

/* Calls FN for every hash held (removed ones skipped), in slot order. */
void hindex_each(const hindex *x, void (*fn)(const unsigned char *hash, uint32_t ref, void *arg), void *arg);

#endif
