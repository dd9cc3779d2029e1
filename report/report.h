/* report.h -- imgfeed-report's run: the numbers, the figures, the page.
 *
 * report_run collects the numbers of the archive (archive.h) or of an
 * exported dataset (dataset.h) into report.json's object, makes the
 * thumbnails of the largest duplicate groups (thumb.h), has the plotter draw
 * every figure from report.json (plot.h), writes the page (page.h), and only
 * then moves it all into --out (outfile.h): DIR/report.html,
 * DIR/report.json, DIR/figures/<name>.svg and .png.
 */
#ifndef IMGFEED_REPORT_REPORT_H
#define IMGFEED_REPORT_REPORT_H

#include <stdint.h>

typedef struct report_settings {
    char *pg;
    char *exchange;
    char *dataset; /* DSDIR: report of the dataset instead of the archive */
    char *out;
    char *save_dir;
    char *hash; /* "phash" or "dhash": near duplicates */
    long max_distance;
    long groups;       /* largest groups shown */
    long group_images; /* members shown of each */
    long thumb_size;
    int64_t thumb_max_bytes;
    long thumb_max_pixels;
    char *python;
    char *title;
    char *log_level;
} report_settings;

/* 0, or 1 after logging why the report was not made (nothing under --out changed). */
int report_run(const report_settings *s);

#endif
