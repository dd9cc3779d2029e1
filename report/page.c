/* page.c -- report.html; see page.h.
 *
 * The page is written straight to its staged file as it is made: tables
 * are as long as report.json's maps (labels, sites x days), never per image.
 */
#include "page.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "sbuf.h"
#include "stats.h"
#include "xalloc.h"

static const char page_style[] =
    ":root{--ink:#1b1f24;--mute:#5b6570;--line:#d6dbe1;--accent:#1f4e79;--bg:#ffffff;--band:#f4f6f8}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 \"DejaVu Sans\",\"Segoe UI\",Helvetica,"
    "Arial,sans-serif}"
    "main{max-width:1080px;margin:0 auto;padding:24px 20px 60px}"
    "header{border-bottom:2px solid var(--ink);padding-bottom:10px;margin-bottom:18px}"
    "h1{font-size:22px;margin:0 0 4px;letter-spacing:.01em}"
    "h2{font-size:17px;margin:34px 0 8px;padding-top:8px;border-top:1px solid var(--line)}"
    "h3{font-size:14px;margin:18px 0 6px}"
    ".meta{color:var(--mute);margin:0;overflow-wrap:anywhere}"
    "nav{margin:10px 0 0;color:var(--mute)}nav a{color:var(--accent);margin-right:12px;text-decoration:none}"
    ".totals{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:16px 0}"
    ".totals div{background:var(--band);border-left:3px solid var(--accent);padding:6px 10px}"
    ".totals b{display:block;font-size:18px}.totals span{color:var(--mute);font-size:12px}"
    "figure{margin:8px 0 10px}figure svg{display:block;width:100%;height:auto;max-width:900px}"
    "figcaption{color:var(--mute);font-size:12px}figcaption a{color:var(--mute)}"
    ".scroll{max-height:22em;overflow:auto;border:1px solid var(--line)}"
    "table{border-collapse:collapse;font-size:12.5px;width:100%}"
    "th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}"
    "th{background:var(--band);position:sticky;top:0;font-weight:600}"
    "th:first-child,td:first-child{text-align:left}"
    "td.t{text-align:left;overflow-wrap:anywhere;min-width:9em;max-width:28em}"
    ".groups{display:grid;gap:12px}"
    ".group{border:1px solid var(--line);padding:8px 10px}"
    ".group p{margin:0 0 6px;color:var(--mute);overflow-wrap:anywhere}.group p b{color:var(--ink)}"
    ".thumbs{display:flex;flex-wrap:wrap;gap:8px}"
    ".thumb{width:132px;font-size:11px;color:var(--mute);overflow-wrap:anywhere}"
    ".thumb img,.thumb .ph{display:block;max-width:120px;max-height:120px;border:1px solid var(--line)}"
    ".thumb .ph{width:120px;height:90px;background:repeating-linear-gradient(45deg,#f4f6f8,#f4f6f8 6px,#e8ebef "
    "6px,#e8ebef 12px);display:flex;align-items:center;justify-content:center;color:#8a1c1c;font-weight:600}"
    ".note{color:var(--mute);font-size:12px}"
    "@media (max-width:600px){main{padding:14px 10px}.thumb{width:100px}}";

void page_escape(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == '&')
            fputs("&amp;", f), p++;
        else if (c == '<')
            fputs("&lt;", f), p++;
        else if (c == '>')
            fputs("&gt;", f), p++;
        else if (c == '"')
            fputs("&quot;", f), p++;
        else if (c == '\'')
            fputs("&#39;", f), p++;
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c), p++;
        else if (c < 0x80)
            fputc((int)c, f), p++;
        else {
            /* one UTF-8 sequence, checked: shortest form, no surrogates, at most U+10FFFF */
            size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
            uint32_t cp = n == 4 ? c & 7 : n == 3 ? c & 15 : c & 31;
            bool ok = n >= 2 && c <= 0xf4 && (size_t)(end - p) >= n;
            for (size_t i = 1; ok && i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) ok = false;
                cp = (cp << 6) | (p[i] & 0x3f);
            }
            if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
                       (cp >= 0xd800 && cp < 0xe000)))
                ok = false;
            if (ok && cp >= 0x80 && cp < 0xa0) { /* C1 controls */
                fprintf(f, "\\u%04x", (unsigned)cp);
                p += n;
            } else if (ok) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fputs("\xef\xbf\xbd", f);
                p++;
            }
        }
    }
}

static void page_text(FILE *f, const char *s) { page_escape(f, s ? s : "", s ? strlen(s) : 0); }

/* A label as the page shows it: "(none)" for the empty one. */
static void page_label(FILE *f, const char *s) {
    if (!s || !*s)
        fputs("<i>(none)</i>", f);
    else
        page_text(f, s);
}

/* A label cut to at most MAX bytes (at a character's start) with an ellipsis,
 * whole in a title attribute: for the thumbnails' captions. */
static void page_label_cut(FILE *f, const char *s, size_t max) {
    size_t len = s ? strlen(s) : 0;
    if (len <= max) {
        page_label(f, s);
        return;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    fputs("<span title=\"", f);
    page_escape(f, s, len);
    fputs("\">", f);
    page_escape(f, s, cut);
    fputs("&hellip;</span>", f);
}

static json_object *page_get(json_object *o, const char *key) {
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int64_t page_int(json_object *o, const char *key) { return json_object_get_int64(page_get(o, key)); }

static void page_total(FILE *f, json_object *totals, const char *key, const char *what) {
    json_object *v = page_get(totals, key);
    if (!v) return;
    fprintf(f, "<div><b>%" PRId64 "</b><span>%s</span></div>", json_object_get_int64(v), what);
}

/* The figure NAME, inlined, with its ids prefixed by NAME. */
static int page_figure(FILE *f, const outfile_stage *st, const char *name, const char *caption,
                       char why[OUTFILE_WHY_MAX]) {
    char *rel = xasprintf("figures/%s.svg", name), *path = outfile_stage_path(st, rel);
    free(rel);
    FILE *in = fopen(path, "rbe");
    if (!in) {
        snprintf(why, OUTFILE_WHY_MAX, "cannot read the figure %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    sbuf b = {0};
    bool bad = !sbuf_add_stream(&b, in);
    fclose(in);
    sbuf_addc(&b, '\0');
    const char *svg = strstr(b.p, "<svg");
    if (bad || !svg) {
        snprintf(why, OUTFILE_WHY_MAX, "cannot read the figure %s: %s", path, bad ? "read error" : "not an SVG");
        free(b.p);
        free(path);
        return -1;
    }
    free(path);
    fprintf(f, "<figure id=\"fig-%s\">", name);
    static const char *const from[] = {"id=\"", "href=\"#", "url(#"};
    const char *p = svg;
    while (*p) {
        size_t best = SIZE_MAX;
        int which = -1;
        for (int i = 0; i < 3; i++) {
            const char *q = strstr(p, from[i]);
            if (q && (size_t)(q - p) < best) best = (size_t)(q - p), which = i;
        }
        if (which < 0) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, best, f);
        fputs(from[which], f);
        fprintf(f, "%s-", name);
        p += best + strlen(from[which]);
    }
    fputs("<figcaption>", f);
    page_text(f, caption);
    fprintf(f,
            " &middot; <a href=\"figures/%s.svg\">SVG</a> &middot; <a href=\"figures/%s.png\">PNG</a>"
            "</figcaption></figure>\n",
            name, name);
    free(b.p);
    return 0;
}

static void page_groups(FILE *f, const rgroups *g, bool exact) {
    if (!g->n) {
        fputs("<p class=\"note\">No group.</p>\n", f);
        return;
    }
    fputs("<div class=\"groups\">\n", f);
    for (size_t i = 0; i < g->n; i++) {
        const rgroup *gr = &g->g[i];
        fprintf(f, "<div class=\"group\"><p><b>%" PRId64 " images</b>", gr->size);
        if (exact && gr->sha1) {
            fputs(" &middot; sha1 <code>", f);
            page_text(f, gr->sha1);
            fputs("</code>", f);
        }
        if ((int64_t)gr->n < gr->size) fprintf(f, " &middot; the first %zu shown", gr->n);
        fputs("</p><div class=\"thumbs\">", f);
        for (size_t j = 0; j < gr->n; j++) {
            const rgroup_member *m = &gr->m[j];
            fputs("<div class=\"thumb\">", f);
            if (m->thumb)
                fprintf(f, "<img src=\"%s\" alt=\"\">", m->thumb);
            else {
                fputs("<div class=\"ph\">", f);
                page_text(f, m->thumb_state);
                fputs("</div>", f);
            }
            page_label_cut(f, m->label, 60);
            fputs("<br>", f);
            page_text(f, m->path ? m->path : m->table);
            if (!m->path) {
                fputs(" ", f);
                page_text(f, m->id);
                fprintf(f, " #%" PRIu32, m->image);
            }
            fputs("</div>", f);
        }
        fputs("</div></div>\n", f);
    }
    fputs("</div>\n", f);
}

static void page_sizes_table(FILE *f, json_object *sizes, const char *what) {
    /* group sizes in numeric order */
    size_t n = 0;
    int64_t keys[4096];
    json_object_object_foreach(sizes, k, v) {
        (void)v;
        if (n < sizeof keys / sizeof keys[0]) keys[n++] = strtoll(k, NULL, 10);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && keys[j - 1] > keys[j]; j--) {
            int64_t t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    fprintf(f,
            "<h3>%s: groups by size</h3><div class=\"scroll\"><table><tr><th>images in the group</th>"
            "<th>groups</th></tr>",
            what);
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%" PRId64, keys[i]);
        fprintf(f, "<tr><td>%s</td><td>%" PRId64 "</td></tr>", key, page_int(sizes, key));
    }
    fputs("</table></div>\n", f);
}

static void page_human(char *out, size_t n, int64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double v = (double)bytes;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    if (u == 0)
        snprintf(out, n, "%" PRId64 " B", bytes);
    else
        snprintf(out, n, "%.3g %s", v, units[u]);
}

int page_write(FILE *f, json_object *report, const rgroups *exact, const rgroups *near, const outfile_stage *st,
               const char *title, char why[OUTFILE_WHY_MAX]) {
    json_object *source = page_get(report, "source"), *totals = page_get(report, "totals");
    const char *kind = json_object_get_string(page_get(source, "kind"));
    bool dataset = kind && strcmp(kind, "dataset") == 0;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
          "style-src 'unsafe-inline'\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    page_text(f, title);
    fprintf(f, "</title>\n<style>%s</style></head>\n<body><main>\n<header><h1>", page_style);
    page_text(f, title);
    fputs("</h1><p class=\"meta\">", f);
    if (dataset) {
        fputs("Dataset ", f);
        page_text(f, json_object_get_string(page_get(source, "dir")));
        fprintf(f, " &middot; %" PRId64 " manifest rows, %" PRId64 " bad lines", page_int(source, "rows"),
                page_int(source, "bad_lines"));
    } else {
        fputs("Archive of exchange <b>", f);
        page_text(f, json_object_get_string(page_get(source, "exchange")));
        fprintf(f, "</b> &middot; %zu tables", json_object_array_length(page_get(source, "tables")));
    }
    fputs(" &middot; generated ", f);
    page_text(f, json_object_get_string(page_get(report, "generated_at")));
    fputs(" by imgfeed-report</p>\n<nav><a href=\"#labels\">labels</a><a href=\"#per_day\">per day</a>"
          "<a href=\"#formats\">formats and sizes</a><a href=\"#dimensions\">width &times; height</a>"
          "<a href=\"#duplicates\">duplicates</a><a href=\"#brightness\">brightness</a>"
          "<a href=\"#colour\">colour</a><a href=\"#errors\">errors</a></nav></header>\n",
          f);

    fputs("<div class=\"totals\">", f);
    page_total(f, totals, "items", "items");
    page_total(f, totals, "items_without_img", "items without _img");
    page_total(f, totals, "entries", "_img entries");
    page_total(f, totals, "images", "images");
    char bytes[64];
    page_human(bytes, sizeof bytes, page_int(totals, "bytes"));
    char bytes_what[96];
    snprintf(bytes_what, sizeof bytes_what, "bytes (%s)", bytes);
    page_total(f, totals, "bytes", bytes_what);
    page_total(f, totals, "labels", "labels");
    page_total(f, totals, "errors", "errors");
    page_total(f, totals, "without_size", "images without size");
    page_total(f, totals, "without_dimensions", "without width/height");
    page_total(f, totals, "without_colour", "without colour fields");
    json_object *summary = page_get(report, "summary");
    if (summary) {
        page_total(f, summary, "total", "summary: total");
        page_total(f, summary, "duplicates_represented", "duplicates the kept stand for");
    }
    fputs("</div>\n", f);

    /* labels */
    json_object *labels = page_get(report, "labels");
    fprintf(f, "<h2 id=\"labels\">Images per label%s</h2>\n", dataset ? " and split" : "");
    if (page_figure(f, st, "labels",
                    dataset ? "Images of each label, stacked by split (the 25 largest labels)"
                            : "Images of each label (_board; the 25 largest)",
                    why) != 0)
        return -1;
    fputs("<div class=\"scroll\"><table><tr><th>label</th><th>images</th><th>bytes</th>", f);
    if (dataset)
        for (int k = 0; k < RSTATS_SPLITS; k++)
            fprintf(f, "<th>%s</th>", rstats_split_names[k]);
    fputs("</tr>", f);
    json_object_object_foreach(labels, lk, lv) {
        fputs("<tr><td class=\"t\">", f);
        page_label(f, lk);
        fprintf(f, "</td><td>%" PRId64 "</td><td>%" PRId64 "</td>", page_int(lv, "images"), page_int(lv, "bytes"));
        if (dataset)
            for (int k = 0; k < RSTATS_SPLITS; k++)
                fprintf(f, "<td>%" PRId64 "</td>", page_int(lv, rstats_split_names[k]));
        fputs("</tr>", f);
    }
    fputs("</table></div>\n", f);

    /* per day */
    json_object *per_day = page_get(report, "per_day");
    const char *unit = json_object_get_string(page_get(per_day, "unit"));
    fprintf(f, "<h2 id=\"per_day\">%s per day per site</h2>\n", strcmp(unit, "images") == 0 ? "Images" : "Items");
    if (page_figure(f, st, "per_day", "Per day (UTC) of the site's time, else the crawl time; the 10 largest sites",
                    why) != 0)
        return -1;
    fprintf(f, "<div class=\"scroll\"><table><tr><th>site</th><th>day (UTC)</th><th>%s</th></tr>", unit);
    json_object_object_foreach(page_get(per_day, "sites"), sk, sv) {
        json_object_object_foreach(sv, dk, dv) {
            fputs("<tr><td class=\"t\">", f);
            page_label(f, sk);
            fputs("</td><td>", f);
            page_text(f, dk);
            fprintf(f, "</td><td>%" PRId64 "</td></tr>", json_object_get_int64(dv));
        }
    }
    fputs("</table></div>\n", f);

    /* formats and sizes */
    fputs("<h2 id=\"formats\">Formats and sizes</h2>\n", f);
    if (page_figure(f, st, "formats", "Images and bytes per format", why) != 0) return -1;
    fputs("<div class=\"scroll\"><table><tr><th>format</th><th>images</th><th>bytes</th><th></th></tr>", f);
    json_object_object_foreach(page_get(report, "formats"), fk, fv) {
        char h[32];
        page_human(h, sizeof h, page_int(fv, "bytes"));
        fputs("<tr><td class=\"t\">", f);
        page_text(f, fk);
        fprintf(f, "</td><td>%" PRId64 "</td><td>%" PRId64 "</td><td>%s</td></tr>", page_int(fv, "images"),
                page_int(fv, "bytes"), h);
    }
    fputs("</table></div>\n", f);
    if (page_figure(f, st, "sizes", "File sizes, bins of powers of two", why) != 0) return -1;
    json_object *sizes = page_get(report, "sizes"), *edges = page_get(sizes, "edges"),
                *counts = page_get(sizes, "counts");
    fputs("<div class=\"scroll\"><table><tr><th>size from (bytes)</th><th>below (bytes)</th><th>images</th></tr>", f);
    for (size_t i = 0; i < json_object_array_length(edges); i++) {
        fprintf(f, "<tr><td>%" PRId64 "</td>", json_object_get_int64(json_object_array_get_idx(edges, i)));
        if (i + 1 < json_object_array_length(edges))
            fprintf(f, "<td>%" PRId64 "</td>", json_object_get_int64(json_object_array_get_idx(edges, i + 1)));
        else
            fputs("<td>&infin;</td>", f);
        fprintf(f, "<td>%" PRId64 "</td></tr>", json_object_get_int64(json_object_array_get_idx(counts, i)));
    }
    fputs("</table></div>\n", f);

    /* width x height */
    fputs("<h2 id=\"dimensions\">Width &times; height</h2>\n", f);
    if (page_figure(f, st, "dimensions", "Images per cell of width and height bins (log colour scale)", why) != 0)
        return -1;
    json_object *dims = page_get(report, "dimensions");
    edges = page_get(dims, "edges");
    counts = page_get(dims, "counts");
    fputs("<div class=\"scroll\"><table><tr><th>width from (px)</th><th>height from (px)</th><th>images</th></tr>", f);
    for (size_t w = 0; w < json_object_array_length(counts); w++) {
        json_object *row = json_object_array_get_idx(counts, w);
        for (size_t h = 0; h < json_object_array_length(row); h++) {
            int64_t n = json_object_get_int64(json_object_array_get_idx(row, h));
            if (!n) continue;
            fprintf(f, "<tr><td>%d</td><td>%d</td><td>%" PRId64 "</td></tr>",
                    json_object_get_int(json_object_array_get_idx(edges, w)),
                    json_object_get_int(json_object_array_get_idx(edges, h)), n);
        }
    }
    fputs("</table></div>\n<p class=\"note\">Cells not listed hold no image.</p>\n", f);

    /* duplicates */
    json_object *dup = page_get(report, "duplicates"), *dex = page_get(dup, "exact"), *dne = page_get(dup, "near");
    fputs("<h2 id=\"duplicates\">Duplicate groups</h2>\n", f);
    if (page_figure(f, st, "duplicates", "Groups of exact (same sha1) and near duplicates, by size", why) != 0)
        return -1;
    fprintf(f,
            "<div class=\"totals\"><div><b>%" PRId64 "</b><span>exact groups</span></div><div><b>%" PRId64
            "</b><span>images in exact groups</span></div><div><b>%" PRId64 "</b><span>near groups (",
            page_int(dex, "groups"), page_int(dex, "images"), page_int(dne, "groups"));
    page_text(f, json_object_get_string(page_get(dup, "hash")));
    fprintf(f,
            " within %" PRId64 " bits)</span></div><div><b>%" PRId64 "</b><span>images in near groups</span></div>"
            "</div>\n",
            page_int(dup, "max_distance"), page_int(dne, "images"));
    page_sizes_table(f, page_get(dex, "sizes"), "Exact");
    page_sizes_table(f, page_get(dne, "sizes"), "Near");
    fputs("<h3>The largest exact groups</h3>\n", f);
    page_groups(f, exact, true);
    fputs("<h3>The largest near groups</h3>\n", f);
    page_groups(f, near, false);

    /* brightness */
    fputs("<h2 id=\"brightness\">Brightness</h2>\n", f);
    if (page_figure(f, st, "brightness", "Images per brightness bin of 8 levels", why) != 0) return -1;
    json_object *br = page_get(report, "brightness");
    edges = page_get(br, "edges");
    counts = page_get(br, "counts");
    fputs("<div class=\"scroll\"><table><tr><th>brightness from</th><th>images</th></tr>", f);
    for (size_t i = 0; i < json_object_array_length(edges); i++)
        fprintf(f, "<tr><td>%d</td><td>%" PRId64 "</td></tr>", json_object_get_int(json_object_array_get_idx(edges, i)),
                json_object_get_int64(json_object_array_get_idx(counts, i)));
    fputs("</table></div>\n", f);

    /* colour */
    fputs("<h2 id=\"colour\">Colour per label</h2>\n", f);
    if (page_figure(f, st, "colour",
                    "Mean share of each rgb_hist bin (8 levels of 32 per channel) over the images of a label; "
                    "the 6 labels with most histograms",
                    why) != 0)
        return -1;
    fputs("<div class=\"scroll\"><table><tr><th>label</th><th>images with histogram</th><th>mean R</th>"
          "<th>mean G</th><th>mean B</th><th>brightness</th><th>channel</th>",
          f);
    for (int k = 0; k < 8; k++)
        fprintf(f, "<th>%d&ndash;%d</th>", 32 * k, 32 * k + 31);
    fputs("</tr>", f);
    json_object_object_foreach(page_get(report, "colour"), ck, cv) {
        json_object *mean = page_get(cv, "rgb_mean"), *hist = page_get(cv, "rgb_hist"), *b = page_get(cv, "brightness");
        for (int c = 0; c < 3; c++) {
            fputs("<tr><td class=\"t\">", f);
            if (c == 0) page_label(f, ck);
            fputs("</td><td>", f);
            if (c == 0) fprintf(f, "%" PRId64, page_int(cv, "with_hist"));
            fputs("</td>", f);
            for (int m = 0; m < 3; m++) {
                if (c == 0 && mean)
                    fprintf(f, "<td>%.3f</td>", json_object_get_double(json_object_array_get_idx(mean, (size_t)m)));
                else
                    fputs("<td></td>", f);
            }
            if (c == 0 && b)
                fprintf(f, "<td>%.3f</td>", json_object_get_double(b));
            else
                fputs("<td></td>", f);
            fprintf(f, "<td>%c</td>", "RGB"[c]);
            for (int k = 0; k < 8; k++) {
                if (hist)
                    fprintf(f, "<td>%.4f</td>",
                            json_object_get_double(json_object_array_get_idx(hist, (size_t)(8 * c + k))));
                else
                    fputs("<td></td>", f);
            }
            fputs("</tr>", f);
        }
    }
    fputs("</table></div>\n", f);

    /* errors */
    fputs("<h2 id=\"errors\">Errors by kind</h2>\n", f);
    if (page_figure(f, st, "errors",
                    dataset ? "Images the export left out, by reason (summary.json)"
                            : "_img entries with an error, by the kind of their reason",
                    why) != 0)
        return -1;
    json_object *errors = dataset ? page_get(summary, "skipped") : page_get(report, "errors");
    fputs("<div class=\"scroll\"><table><tr><th>kind</th><th>images</th></tr>", f);
    json_object_object_foreach(errors, ek, ev) {
        fputs("<tr><td class=\"t\">", f);
        page_text(f, ek);
        fprintf(f, "</td><td>%" PRId64 "</td></tr>", json_object_get_int64(ev));
    }
    fputs("</table></div>\n</main></body></html>\n", f);
    return 0;
}
