/* detail.h -- what a search result shows, read from the archive.
 *
 * The catalog knows where an image is (table, _id, url number) and how far
 * it is; everything else a result shows comes from the item's row, read
 * when the answer is made: one query per table among the hits
 * (SELECT id, data ... WHERE id = ANY($1)), on a connection taken from a
 * small pool that the HTTP threads share.  A result then carries:
 *
 *   table, id, image (the entry's url number), distance,
 *   url, width, height, format, size, sha1, md5 (of the `_img` entry),
 *   site, board, type, time, link, text, nsfw (of the item, itemview.h)
 *
 * A hit of a sha1 or md5 lookup whose entry's whole digest differs from
 * the query (the catalog compares 64-bit fingerprints) is dropped here.
 * When the archive cannot be read, the hits are answered with what the
 * catalog knows and the reason is returned; after a failure the archive is
 * not asked again for DETAIL_RETRY_MS, so answers stay fast while it is
 * down.
 */
#ifndef IMGFEED_SEARCH_DETAIL_H
#define IMGFEED_SEARCH_DETAIL_H

#include <stddef.h>

#include <json-c/json.h>

#include "catalog.h"

#define DETAIL_RETRY_MS 5000
#define DETAIL_TEXT_MAX 300

typedef struct detail detail;

/* A pool of at most MAX_CONNS connections to CONNINFO; none is opened yet.
 * A connection opened to replace a broken one counts in
 * imgfeed_database_reconnects_total (pgconn.h). */
detail *detail_new(const char *conninfo, size_t max_conns);
void detail_free(detail *d);

/* Appends to RESULTS (a JSON array) an object per hit of HITS (N), in
 * order.  KIND and DIGEST (sha1 or md5 lookups: the whole digest asked
 * for; else NULL) drop false matches.  Returns 0, or -1 with WHY when the
 * details could not be read (the hits are still appended). */
int detail_add(detail *d, const catalog_hit *hits, size_t n, catalog_kind kind, const unsigned char *digest,
               json_object *results, char *why, size_t whylen);

#endif
