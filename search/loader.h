/* loader.h -- every image hash of the archive into the catalog, at start.
 *
 * loader_run reads the archive tables of one exchange (imgfeed_tables) one
 * after the other with COPY (SELECT ...) TO STDOUT: PostgreSQL sends one
 * row per `_img` entry that has a phash or a dhash (the item's id, the
 * entry's url number, phash, dhash, sha1, md5), already cut out of the
 * jsonb, and the loader takes them one row at a time, so the memory it
 * needs beyond the catalog is one row.  The rows of an item come together
 * (one table scan, no parallel workers), and an item's images go to the
 * catalog together (catalog_add), so loading twice, or loading what the
 * queue also delivers, counts nothing twice.
 *
 * An archive without imgfeed_tables (no archiver has run yet) is empty, not
 * an error.  Any other error stops the load with the reason: the caller
 * waits (backoff) and loads again; what was loaded stays.  Each connection
 * a load makes after the first one of the process (which the failed load
 * before it lost) counts in imgfeed_database_reconnects_total (pgconn.h).
 */
#ifndef IMGFEED_SEARCH_LOADER_H
#define IMGFEED_SEARCH_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* What a load has done so far, read by other threads (/stats). */
typedef struct loader_progress {
    atomic_uint_fast64_t tables, rows, items, bad_fields;
} loader_progress;

/* Loads the archive at CONNINFO (libpq conninfo or URI), tables of
 * EXCHANGE, into C.  Returns 0, or -1 with the reason in WHY (PostgreSQL
 * unreachable, a query failed, a stop was requested: sig.h). */
int loader_run(const char *conninfo, const char *exchange, catalog *c, loader_progress *p, char *why, size_t whylen);

#endif
