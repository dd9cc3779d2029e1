/* stats.h -- the report's numbers, counted one image at a time.
 *
 * Both sources of a report (the archive, archive.h; an exported dataset,
 * dataset.h) hand their rows to these counters one by one; the counters keep
 * per key only sums (rmap.h), so their memory grows with the number of
 * labels, sites x days, formats and error kinds, never with the number of
 * images.  rstats_json turns them into report.json's object, which the
 * plotter (plot.h) and the page (page.h) both read: every number of the page
 * is a number of report.json.
 *
 * The bins are fixed (the same for every report, so reports compare):
 *   file sizes   powers of two, [0, 1 KiB), [1 KiB, 2 KiB), ... [64 MiB, inf)
 *   width/height 0 64 128 256 384 512 768 1024 1536 2048 3072 4096 6144 8192 px, the last open
 *   brightness   32 bins of 8 levels, [0, 8) ... [248, 256]
 * A value v falls in the last bin whose lower edge is <= v.
 *
 * Colour per label: the mean over the label's images of each image's
 * rgb_hist made fractions (each bin / its channel's sum), of rgb_mean and of
 * brightness; images without these fields (archived before the hasher wrote
 * them) are counted apart and left out of the means.
 */
#ifndef IMGFEED_REPORT_STATS_H
#define IMGFEED_REPORT_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rmap.h"

#define RSTATS_SIZE_BINS 18
#define RSTATS_DIM_BINS 14
#define RSTATS_BRIGHT_BINS 32
#define RSTATS_HIST 24 /* rgb_hist: 8 bins per channel, R then G then B */

extern const int64_t rstats_size_edges[RSTATS_SIZE_BINS];
extern const int rstats_dim_edges[RSTATS_DIM_BINS];

/* The splits of a dataset, in report order; "other" holds any other name. */
enum { RSTATS_TRAIN, RSTATS_VAL, RSTATS_TEST, RSTATS_OTHER, RSTATS_SPLITS };
extern const char *const rstats_split_names[RSTATS_SPLITS];

typedef struct rstats_label {
    int64_t images, bytes;
    int64_t splits[RSTATS_SPLITS];
    int64_t hist_n, mean_n, bright_n; /* images with each colour field */
    double hist[RSTATS_HIST], mean[3], bright;
} rstats_label;

/* One image as a source sees it; absent fields: NULL, -1, false. */
typedef struct rstats_image {
    const char *label; /* "" when the item has none */
    const char *split; /* datasets only */
    const char *format;
    int64_t size;
    int64_t width, height;
    bool has_brightness, has_mean, has_hist;
    double brightness, mean[3], hist[RSTATS_HIST];
} rstats_image;

typedef struct rstats {
    bool dataset; /* per split, and per-day counts are of images */
    rmap labels;  /* label -> rstats_label */
    rmap days;    /* site -> rmap (day -> int64_t) */
    rmap formats; /* format -> int64_t[2]: images, bytes */
    rmap errors;  /* error kind -> int64_t */
    int64_t size_hist[RSTATS_SIZE_BINS];
    int64_t dim_hist[RSTATS_DIM_BINS][RSTATS_DIM_BINS]; /* [width bin][height bin] */
    int64_t bright_hist[RSTATS_BRIGHT_BINS];
    int64_t items, items_without_img, entries, images, errors_total, bytes;
    int64_t without_size, without_dimensions, without_colour;
} rstats;

void rstats_init(rstats *s, bool dataset);
void rstats_release(rstats *s);

/* An item (archive) or an image (dataset) of SITE on DAY ("YYYY-MM-DD", or "unknown"). */
void rstats_add_day(rstats *s, const char *site, const char *day);
/* One picture or video that was downloaded (an `_img` entry without "error"). */
void rstats_add_image(rstats *s, const rstats_image *im);
/* One `_img` entry with an "error": counted by its kind (rstats_error_kind). */
void rstats_add_error(rstats *s, const char *reason);

/* The kind of an error text: what comes before the first ':' or ';', blanks
 * trimmed ("http 404", "too large", "network error"); "unknown" when empty.
 * Into OUT of OUTLEN bytes. */
void rstats_error_kind(const char *reason, char *out, size_t outlen);

/* The bin of a value (edges as above). */
int rstats_size_bin(int64_t size);
int rstats_dim_bin(int64_t px);
int rstats_bright_bin(double level);

/* The counters as report.json's members, added to ROOT: "totals", "labels",
 * "per_day", "formats", "sizes", "dimensions", "brightness", "colour", "errors". */
void rstats_json(const rstats *s, json_object *root);

#endif
