/* groups.h -- duplicate groups: how many, of which sizes, and the largest.
 *
 * A report counts every group (exact: the same sha1; near: single-linkage
 * groups of search/dupes.h) but keeps only the KEEP largest ones, each with
 * its first KEEP_MEMBERS members, to show them with thumbnails; so what it
 * holds beyond the counts is bounded by the settings.  Ties keep the group
 * met first (groups come in the catalog's order, or sha1 order).
 *
 * Members are filled by the source (archive.c, dataset.c): where they are
 * (table, id, image), their label, sha1 and format, and the file a
 * thumbnail is made of (thumb.h); the page shows them, report.json lists them.
 */
#ifndef IMGFEED_REPORT_GROUPS_H
#define IMGFEED_REPORT_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "catalog.h"
#include "rmap.h"

typedef struct rgroup_member {
    char *table, *id, *label, *sha1, *format, *path; /* path: dataset only */
    uint32_t image;
    char *file;              /* the file its thumbnail is made of, or NULL */
    char *thumb;             /* a data: URI, or NULL */
    const char *thumb_state; /* "ok", "missing", "damaged", "no file" */
} rgroup_member;

typedef struct rgroup {
    int64_t size; /* images in the group */
    char *sha1;   /* exact groups */
    size_t n;     /* members kept */
    rgroup_member *m;
} rgroup;

typedef struct rgroups {
    size_t keep, keep_members;
    size_t n; /* groups kept, largest first */
    rgroup *g;
    int64_t groups; /* every group of at least two images */
    int64_t images; /* the images of every group */
    rmap sizes;     /* "<size>" -> int64_t groups of that size */
} rgroups;

void rgroups_init(rgroups *r, size_t keep, size_t keep_members);
void rgroups_release(rgroups *r);

/* Counts a group of SIZE images; returns the kept group to fill (its
 * members through rgroup_add), or NULL when it is not among the largest. */
rgroup *rgroups_offer(rgroups *r, int64_t size);
/* A member of G (when fewer than keep_members are kept; else NULL). */
rgroup_member *rgroup_add(const rgroups *r, rgroup *g, const char *table, const char *id, uint32_t image);

/* The near-duplicate groups of C by KIND within MAX_DISTANCE into R (each
 * member's table, id and image; the rest is for the caller).  0, or -1
 * when a stop was requested. */
int rgroups_near(rgroups *r, catalog *c, catalog_kind kind, int max_distance);

/* {"groups", "images", "sizes": {"2": n, ...}, "largest": [{"size", ["sha1",]
 * "members": [{"table", "id", "image", "label", "sha1", "format", "thumb"}]}]} */
json_object *rgroups_json(const rgroups *r);

#endif
