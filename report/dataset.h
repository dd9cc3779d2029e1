/* dataset.h -- an exported dataset's numbers for the report.
 *
 * Reads DSDIR/summary.json (whole: it is small) and DSDIR/manifest.jsonl one
 * line at a time (a line longer than 1 MiB, or one that is not a JSON
 * object, is counted as bad and skipped, with a warning), the format of
 * `imgfeed-export dataset` (docs/datasets.md).  Each row is one image of the
 * dataset: counted by stats.h under its label and split, per site and day
 * of its "time" (UTC).  Near-duplicate groups: a catalog (search/catalog.h)
 * of the rows' hashes, grouped by search/dupes.h; exact groups: rows sharing
 * a sha1 (a deduplicated dataset has none).  Both grow with the rows, about
 * 150 bytes each; everything else with the labels.  A second pass over the
 * manifest finds the largest groups' members, whose thumbnails come from
 * DSDIR/<path>.
 */
#ifndef IMGFEED_REPORT_DATASET_H
#define IMGFEED_REPORT_DATASET_H

#include <stddef.h>

#include <json-c/json.h>

#include "groups.h"
#include "report.h"
#include "stats.h"

/* 0, or -1 with the reason in WHY. */
int rdataset_collect(const report_settings *s, rstats *st, rgroups *exact, rgroups *near, json_object *root, char *why,
                     size_t whylen);

#endif
