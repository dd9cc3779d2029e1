/* dataset.h -- `imgfeed-export dataset`: a training set from the archive.
 *
 *   imgfeed-export dataset --out DIR [--save-dir SAVE] [filters] ...
 *
 * The pictures of the archive (--pg, --exchange) in an ImageFolder layout,
 * DIR/<split>/<label>/<sha1>.<ext>, each picture once, with DIR/manifest.jsonl,
 * DIR/manifest.csv, DIR/missing.jsonl and DIR/summary.json
 * (docs/datasets.md, "Training sets").  How it works (dataset.c):
 *
 *   1. one REPEATABLE READ snapshot of the archive, read twice, table by
 *      table in the same (stored) order through a cursor;
 *   2. the first pass keeps, per picture that passes the filters, a small
 *      record (its sha1, size, time, label: 56 bytes) and its phash in a
 *      search catalog (catalog.h);
 *   3. the groups: near duplicates from dupes_find (dupes.h) over that
 *      catalog, joined with exact duplicates (the same sha1); in each group
 *      one picture is kept by a fixed rule (largest width x height, then
 *      bytes; then oldest time, then table, id, image), unless the group
 *      holds pictures a previous run placed, which are kept instead;
 *   4. the second pass writes the manifest rows of the kept pictures and
 *      places their files (dataset_files.h): from the save dir, checked
 *      against the sha1 and hard-linked or copied, else downloaded through
 *      the guarded fetch (fetch.h) within --rps per host, else listed in
 *      missing.jsonl;
 *   5. manifest and summary are moved to their final names at the end.
 *
 * Exit status: 0 done (missing pictures are listed, and said in the log);
 * 1 the run failed (PostgreSQL, a full disk: a rerun resumes); 2 bad
 * usage, or settings that differ from those DIR was made with.
 */
#ifndef IMGFEED_EXPORT_DATASET_H
#define IMGFEED_EXPORT_DATASET_H

/* Runs `imgfeed-export dataset` with ARGV[0] = "dataset"; the exit status. */
int dataset_main(int argc, char **argv);

#endif
