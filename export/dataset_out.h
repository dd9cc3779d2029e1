/* dataset_out.h -- the manifest of a dataset, and the one a run left.
 *
 * The manifest (docs/datasets.md; helpers' shared contract): one row per
 * picture of the set, the same columns in DIR/manifest.jsonl (one JSON
 * object a line) and DIR/manifest.csv (a header line, RFC 4180: fields
 * holding a comma, a quote, CR or LF are quoted, quotes doubled, lines end
 * in CRLF; arrays as JSON text; JSON null as an empty field), in the order
 * of dsout_columns.  Pictures that could not be had are listed in
 * DIR/missing.jsonl with the reason.
 *
 * A writer writes into temporary files under DIR/.tmp and moves them to
 * their final names at dsout_commit only (fsync, rename, fsync of DIR): a
 * reader never sees half a manifest, and the previous one stays until the
 * new one is whole.
 *
 * dsout_prev_load reads the manifest of an earlier run: the pictures it
 * holds, as 64-bit keys of (table, id, image) with their sha1, so that a
 * run over a grown archive keeps what it placed (memory: 32 bytes a row).
 */
#ifndef IMGFEED_EXPORT_DATASET_OUT_H
#define IMGFEED_EXPORT_DATASET_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "dataset_files.h"

/* The manifest's columns, NULL-terminated. */
extern const char *const dsout_columns[];

typedef struct dsout {
    dsf *files;
    char *tmp_jsonl, *tmp_csv, *tmp_missing;
    FILE *jsonl, *csv, *missing;
    uint64_t rows, missing_rows;
} dsout;

/* Open the temporary files.  0, or -1 with why. */
int dsout_open(dsout *o, dsf *files, char why[DSF_WHY_MAX]);
/* One picture: ROW holds the columns (absent ones are written as null). */
int dsout_row(dsout *o, json_object *row, char why[DSF_WHY_MAX]);
/* One missing picture (any object: written as it is). */
int dsout_missing(dsout *o, json_object *row, char why[DSF_WHY_MAX]);
/* Flush, fsync and move the files to their final names. */
int dsout_commit(dsout *o, char why[DSF_WHY_MAX]);
/* Close and remove whatever is not committed; safe after commit. */
void dsout_abort(dsout *o);

/* The key of a picture (table, id, image) in the previous manifest. */
uint64_t dsout_key(const char *table, const char *id, uint32_t image);

typedef struct dsout_prev_entry {
    uint64_t key; /* 0: empty slot */
    unsigned char sha1[20];
} dsout_prev_entry;

typedef struct dsout_prev {
    dsout_prev_entry *slots;
    size_t cap, n;
    json_object *settings; /* the previous summary.json's "settings", or NULL */
} dsout_prev;

/* Read DIR/manifest.jsonl and DIR/summary.json when present (none: an empty
 * set).  0, or -1 with why (a line that is not a manifest row). */
int dsout_prev_load(dsout_prev *p, const char *dir, char why[DSF_WHY_MAX]);
/* True when the previous manifest holds (KEY, SHA1). */
bool dsout_prev_has(const dsout_prev *p, uint64_t key, const unsigned char *sha1);
void dsout_prev_release(dsout_prev *p);

#endif
