/* page.h -- report.html: one self-contained page.
 *
 * The page needs nothing from elsewhere: no script at all, its style in
 * the page, the figures inlined as SVG (their ids prefixed with the
 * figure's name, so that nine figures in one document never share one),
 * thumbnails as data: URIs, and a Content-Security-Policy that lets the
 * browser load nothing else (default-src 'none'; img-src data:).  Beside
 * each figure, a table with its numbers, the numbers of report.json, so
 * the page can be read (and checked) without the figure.
 *
 * Every text from the archive (labels, sites, ids, error kinds) goes
 * through page_escape: HTML's five special characters as entities, control
 * characters as visible \xNN, bytes that are not UTF-8 as U+FFFD.  A label
 * can never end an element, open a tag or break the page's encoding.
 */
#ifndef IMGFEED_REPORT_PAGE_H
#define IMGFEED_REPORT_PAGE_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include "groups.h"
#include "outfile.h"

/* S (LEN bytes) escaped for HTML text and attribute values, to F. */
void page_escape(FILE *f, const char *s, size_t len);

/* The page of REPORT (report.json's object) to F; the figures are read from
 * the staging directory ST ("figures/<name>.svg"), the thumbnails from the
 * groups.  0, or -1 with the reason in WHY (a figure that cannot be read). */
int page_write(FILE *f, json_object *report, const rgroups *exact, const rgroups *near, const outfile_stage *st,
               const char *title, char why[OUTFILE_WHY_MAX]);

#endif
