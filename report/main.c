/* main.c -- imgfeed-report: a report of the archive or of an exported dataset.
 *
 *   imgfeed-report --out DIR [--pg CONNINFO] [--exchange E] [--save-dir DIR]
 *   imgfeed-report --dataset DSDIR --out DIR
 *
 * writes DIR/report.html (one self-contained page), DIR/report.json (every
 * number of the page) and DIR/figures/<name>.svg and .png.  This file holds
 * the settings table and starts report.c.
 *
 * Plots come from matplotlib (Debian's python3-matplotlib), not gnuplot:
 * its SVG draws text as paths, so the figures inlined into the page look the
 * same on every machine without any font; it reads the numbers as JSON (no
 * quoting rules for labels that hold quotes, spaces or newlines, as a
 * gnuplot data file has); and the test suite already depends on Debian's
 * Python stack (Pillow, numpy, scipy), to which it adds one package.  Its
 * cost is a Python start (about 1 s of CPU for the nine figures).
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "report.h"
#include "sig.h"

static const char *const report_hashes[] = {"phash", "dhash", NULL};

static const cfg_option report_options[] = {
    {.name = "out",
     .env = "IMGFEED_REPORT_OUT",
     .type = CFG_STRING,
     .offset = offsetof(report_settings, out),
     .metavar = "DIR",
     .help = "where report.html, report.json and figures/ are written (created if missing)"},
    {.name = "dataset",
     .env = "IMGFEED_REPORT_DATASET",
     .type = CFG_STRING,
     .offset = offsetof(report_settings, dataset),
     .metavar = "DSDIR",
     .help = "report on the dataset that imgfeed-export dataset wrote to DSDIR (its manifest.jsonl and "
             "summary.json) instead of the archive"},
    CFG_ARCHIVE_OPTIONS(report_settings, pg, exchange, "the exchange whose tables are read"),
    {.name = "save-dir",
     .env = "IMGFEED_SAVE_DIR",
     .type = CFG_STRING,
     .offset = offsetof(report_settings, save_dir),
     .metavar = "DIR",
     .help = "the hasher's --save-dir, where the thumbnails of duplicate groups are read from"},
    {.name = "hash",
     .env = "IMGFEED_SEARCH_HASH",
     .type = CFG_CHOICE,
     .offset = offsetof(report_settings, hash),
     .defval = "phash",
     .choices = report_hashes,
     .help = "the perceptual hash near duplicates are found by"},
    {.name = "max-distance",
     .env = "IMGFEED_DUPES_MAX_DISTANCE",
     .type = CFG_INT,
     .offset = offsetof(report_settings, max_distance),
     .defval = "4",
     .min = 0,
     .max = 1024,
     .help = "images at most this many bits apart are near duplicates (as imgfeed-search dupes)"},
    {.name = "groups",
     .env = "IMGFEED_REPORT_GROUPS",
     .type = CFG_INT,
     .offset = offsetof(report_settings, groups),
     .defval = "8",
     .min = 0,
     .max = 1000,
     .help = "the largest duplicate groups shown with thumbnails, of each kind"},
    {.name = "group-images",
     .env = "IMGFEED_REPORT_GROUP_IMAGES",
     .type = CFG_INT,
     .offset = offsetof(report_settings, group_images),
     .defval = "8",
     .min = 1,
     .max = 100,
     .help = "images shown of each of those groups"},
    {.name = "thumb-size",
     .env = "IMGFEED_REPORT_THUMB_SIZE",
     .type = CFG_INT,
     .offset = offsetof(report_settings, thumb_size),
     .defval = "120",
     .min = 16,
     .max = 512,
     .metavar = "PX",
     .help = "thumbnails fit in a square of this side"},
    {.name = "thumb-max-bytes",
     .env = "IMGFEED_REPORT_THUMB_MAX_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(report_settings, thumb_max_bytes),
     .defval = "64MiB",
     .min = 1,
     .max = 4294967296.0,
     .help = "a larger file gets no thumbnail (\"too large\")"},
    {.name = "thumb-max-pixels",
     .env = "IMGFEED_REPORT_THUMB_MAX_PIXELS",
     .type = CFG_INT,
     .offset = offsetof(report_settings, thumb_max_pixels),
     .defval = "40000000",
     .min = 1,
     .max = 4e9,
     .help = "a picture with more pixels gets no thumbnail, judged from its header (decoding takes 4 bytes a pixel)"},
    {.name = "python",
     .env = "IMGFEED_PYTHON",
     .type = CFG_STRING,
     .offset = offsetof(report_settings, python),
     .defval = "/usr/bin/python3",
     .metavar = "PROGRAM",
     .help = "the Python with matplotlib that draws the figures (Debian: python3-matplotlib)"},
    {.name = "title",
     .env = "IMGFEED_REPORT_TITLE",
     .type = CFG_STRING,
     .offset = offsetof(report_settings, title),
     .defval = "imgfeed report",
     .help = "the page's title"},
    {.name = "log-level",
     .env = "IMGFEED_LOG_LEVEL",
     .type = CFG_CHOICE,
     .offset = offsetof(report_settings, log_level),
     .defval = "info",
     .choices = cfg_log_levels,
     .help = "least severe level logged"},
    {0},
};

static const cfg_program report_program = {
    "imgfeed-report",
    "--out DIR [OPTION]...",
    "A report of the archive (or, with --dataset, of an exported dataset): one self-contained page,\n"
    "DIR/report.html, with figures of the images per label, per day and site, formats and sizes, width x\n"
    "height, duplicate groups with thumbnails, brightness, colour per label and errors by kind; every\n"
    "number in DIR/report.json, every figure in DIR/figures/ as SVG and PNG.",
    report_options,
};

int main(int argc, char **argv) {
    report_settings s = {0};
    int status = cfg_main_load(&report_program, &s, argc, argv, NULL);
    if (status >= 0) return status;
    log_set_program("imgfeed-report");
    log_level lv;
    if (log_level_parse(s.log_level, &lv)) log_set_level(lv);
    if (!s.out || !*s.out) {
        fprintf(stderr, "imgfeed-report: give --out DIR (see --help)\n");
        cfg_release(&report_program, &s);
        return 2;
    }
    /* a write that fails must fail as an error we report, not kill us */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    sig_install();
    status = report_run(&s);
    cfg_release(&report_program, &s);
    return status;
}
