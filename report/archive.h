/* archive.h -- the archive's numbers for the report.
 *
 * For each archive table of the exchange (imgfeed_tables), two queries:
 * the items per site (_chan) and day (imgfeed_posted_at, UTC), counted by
 * PostgreSQL (GROUP BY); and one row per `_img` entry (its item's label,
 * _board, and the entry's fields, already cut out of the jsonb), read in
 * libpq's single-row mode and counted by stats.h, so the report holds one
 * row at a time.  Exact duplicate groups are counted by PostgreSQL over
 * every table at once (GROUP BY sha1 of the entries); the largest ones'
 * members are found through each table's GIN index on `_img`.  Near
 * duplicate groups come from the search library: the catalog of every
 * image hash (search/loader.h) and search/dupes.h; this is the one part
 * whose memory grows with the archive, about 220 bytes per image with a
 * phash (the catalog, its index and dupes_find's working arrays; measured:
 * 31 MB of peak RSS at 50,000 images, 64 MB at 200,000).
 */
#ifndef IMGFEED_REPORT_ARCHIVE_H
#define IMGFEED_REPORT_ARCHIVE_H

#include <stddef.h>

#include <json-c/json.h>

#include "groups.h"
#include "report.h"
#include "stats.h"

/* Counts the archive into ST, EXACT and NEAR (whose members get their label,
 * sha1, format and, with a save dir, their file), and adds "source" to
 * ROOT.  0, or -1 with the reason in WHY. */
int rarchive_collect(const report_settings *s, rstats *st, rgroups *exact, rgroups *near, json_object *root, char *why,
                     size_t whylen);

#endif
