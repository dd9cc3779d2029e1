/* report.c -- imgfeed-report's run; see report.h.
 *
 * The order makes a failure cheap and harmless: everything is counted
 * first (nothing is written while PostgreSQL or the manifest is read), then
 * the thumbnails are made, report.json is staged, the plotter draws from it,
 * the page is staged, and only when all of it is on disk is it renamed into
 * --out, the page last.  Any failure removes the staging directory.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "archive.h"
#include "dataset.h"
#include "groups.h"
#include "log.h"
#include "outfile.h"
#include "page.h"
#include "plot.h"
#include "stats.h"
#include "thumb.h"
#include "xalloc.h"

static void report_thumbs(const report_settings *s, rgroups *g) {
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = 0; j < g->g[i].n; j++) {
            rgroup_member *m = &g->g[i].m[j];
            if (!m->file) {
                m->thumb_state = !s->dataset && !s->save_dir ? "no save dir" : "no file";
                continue;
            }
            m->thumb_state = thumb_make(m->file, (int)s->thumb_size, (uint64_t)s->thumb_max_bytes,
                                        (uint64_t)s->thumb_max_pixels, &m->thumb);
            if (!m->thumb) log_info("no thumbnail of %s: %s", m->file, m->thumb_state);
        }
}

static int report_write_json(const outfile_stage *st, json_object *root, char why[OUTFILE_WHY_MAX]) {
    FILE *f = outfile_open(st, "report.json", why);
    if (!f) return -1;
    fputs(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE), f);
    fputc('\n', f);
    return outfile_close(f, st, "report.json", why);
}

static int report_write(const report_settings *s, json_object *root, const rgroups *exact, const rgroups *near,
                        outfile_stage *st, char why[OUTFILE_WHY_MAX]) {
    if (report_write_json(st, root, why) != 0) return -1;
    char *json = outfile_stage_path(st, "report.json"), *figs = outfile_stage_path(st, "figures");
    int rc = 0;
    if (mkdir(figs, 0755) != 0) {
        snprintf(why, OUTFILE_WHY_MAX, "cannot create directory %s: %s", figs, strerror(errno));
        rc = -1;
    }
    if (rc == 0) rc = plot_run(s->python, json, figs, why, OUTFILE_WHY_MAX);
    free(json);
    free(figs);
    /* every figure there and on disk */
    size_t nfig = 0;
    while (plot_figures[nfig])
        nfig++;
    char **names = xcalloc(2 * nfig + 3, sizeof *names);
    for (size_t i = 0; i < nfig; i++) {
        names[2 * i] = xasprintf("figures/%s.svg", plot_figures[i]);
        names[2 * i + 1] = xasprintf("figures/%s.png", plot_figures[i]);
    }
    names[2 * nfig] = xstrdup("report.json");
    names[2 * nfig + 1] = xstrdup("report.html");
    for (size_t i = 0; rc == 0 && i < 2 * nfig; i++)
        rc = outfile_sync(st, names[i], why);
    if (rc == 0) {
        FILE *f = outfile_open(st, "report.html", why);
        if (!f)
            rc = -1;
        else {
            char title[512];
            snprintf(title, sizeof title, "%s", s->title);
            rc = page_write(f, root, exact, near, st, title, why);
            char why2[OUTFILE_WHY_MAX];
            if (outfile_close(f, st, "report.html", rc == 0 ? why : why2) != 0) rc = -1;
        }
    }
    if (rc == 0) rc = outfile_stage_commit(st, (const char *const *)names, why);
    for (size_t i = 0; i < 2 * nfig + 2; i++)
        free(names[i]);
    free(names);
    return rc;
}

int report_run(const report_settings *s) {
    rstats st;
    rstats_init(&st, s->dataset != NULL);
    rgroups exact, near;
    rgroups_init(&exact, (size_t)s->groups, (size_t)s->group_images);
    rgroups_init(&near, (size_t)s->groups, (size_t)s->group_images);
    json_object *root = json_object_new_object();
    char why[OUTFILE_WHY_MAX] = "";
    time_t now = time(NULL);
    struct tm tm;
    char stamp[64] = "";
    if (gmtime_r(&now, &tm)) strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_object_add(root, "generated_at", json_object_new_string(stamp));
    int rc = s->dataset ? rdataset_collect(s, &st, &exact, &near, root, why, sizeof why)
                        : rarchive_collect(s, &st, &exact, &near, root, why, sizeof why);
    if (rc == 0) {
        rstats_json(&st, root);
        report_thumbs(s, &exact);
        report_thumbs(s, &near);
        json_object *dup = json_object_new_object();
        json_object_object_add(dup, "hash", json_object_new_string(s->hash));
        json_object_object_add(dup, "max_distance", json_object_new_int64(s->max_distance));
        json_object_object_add(dup, "exact", rgroups_json(&exact));
        json_object_object_add(dup, "near", rgroups_json(&near));
        json_object_object_add(root, "duplicates", dup);
        outfile_stage stage;
        rc = outfile_stage_init(&stage, s->out, why);
        if (rc == 0) rc = report_write(s, root, &exact, &near, &stage, why);
        outfile_stage_release(&stage);
    }
    if (rc == 0)
        log_info("wrote %s/report.html, report.json and %s/figures: %" PRId64 " images, %" PRId64 " exact and %" PRId64
                 " near duplicate groups",
                 s->out, s->out, st.images, exact.groups, near.groups);
    else
        log_error("no report was written: %s", why);
    json_object_put(root);
    rgroups_release(&exact);
    rgroups_release(&near);
    rstats_release(&st);
    return rc == 0 ? 0 : 1;
}
