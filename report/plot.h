/* plot.h -- the figures, drawn by matplotlib.
 *
 * The plotting library is matplotlib (Debian's python3-matplotlib), not
 * hand-written drawing: report/plot.py, built into the program
 * (cmake/EmbedText.cmake), is given to PYTHON on its standard input
 * (`PYTHON -I - REPORT_JSON OUTDIR`) and draws every figure from the numbers
 * of report.json into OUTDIR/<name>.svg and .png (plot_figures lists the
 * names, in page order).  The plotter only draws: every number comes from
 * the C side, so its memory does not grow with the archive.
 */
#ifndef IMGFEED_REPORT_PLOT_H
#define IMGFEED_REPORT_PLOT_H

#include <stddef.h>

/* The figures plot.py draws, NULL-terminated. */
extern const char *const plot_figures[];

/* Runs the plotter; 0, or -1 with the reason in WHY: "cannot run the plotter
 * /usr/bin/python3: No such file or directory", or the plotter's exit status
 * and the last lines it printed (matplotlib missing, a failed drawing, a
 * full disk). */
int plot_run(const char *python, const char *report_json, const char *outdir, char *why, size_t whylen);

#endif
