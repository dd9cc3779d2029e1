/* dataset_out.c -- the manifest files; see dataset_out.h.
 *
 * Rows go through stdio into DIR/.tmp; every write's status is kept and
 * checked at commit (ferror, fflush, fsync), so a full disk met while
 * writing the manifest is reported, never committed.
 */
#define _GNU_SOURCE
#include "dataset_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "xalloc.h"

const char *const dsout_columns[] = {
    "path",  "label", "split",    "url",        "table",    "id",   "image",      "site",  "board",
    "time",  "width", "height",   "format",     "size",     "sha1", "md5",        "ahash", "dhash",
    "phash", "whash", "rgb_mean", "brightness", "rgb_hist", "nsfw", "duplicates", NULL,
};

static const int dsout_json_flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

static int dsout_fail(dsout *o, char why[DSF_WHY_MAX], const char *what, const char *path, int err) {
    if (err == ENOSPC || err == EDQUOT) o->files->no_space = true;
    snprintf(why, DSF_WHY_MAX, "cannot %s %s: %s", what, path, strerror(err));
    return -1;
}

static FILE *dsout_create(dsout *o, char **path, char why[DSF_WHY_MAX]) {
    *path = dsf_tmp_path(o->files);
    FILE *f = fopen(*path, "wx");
    if (!f) dsout_fail(o, why, "create", *path, errno);
    return f;
}

static void dsout_csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int dsout_open(dsout *o, dsf *files, char why[DSF_WHY_MAX]) {
    memset(o, 0, sizeof *o);
    o->files = files;
    if (!(o->jsonl = dsout_create(o, &o->tmp_jsonl, why)) || !(o->csv = dsout_create(o, &o->tmp_csv, why)) ||
        !(o->missing = dsout_create(o, &o->tmp_missing, why))) {
        dsout_abort(o);
        return -1;
    }
    for (size_t i = 0; dsout_columns[i]; i++) {
        if (i) fputc(',', o->csv);
        fputs(dsout_columns[i], o->csv);
    }
    fputs("\r\n", o->csv);
    return 0;
}

int dsout_row(dsout *o, json_object *row, char why[DSF_WHY_MAX]) {
    json_object *ordered = json_object_new_object();
    for (size_t i = 0; dsout_columns[i]; i++) {
        json_object *v = NULL;
        json_object_object_get_ex(row, dsout_columns[i], &v);
        json_object_object_add(ordered, dsout_columns[i], json_object_get(v));
        if (i) fputc(',', o->csv);
        if (!v) continue;
        if (json_object_is_type(v, json_type_string))
            dsout_csv_field(o->csv, json_object_get_string(v));
        else
            dsout_csv_field(o->csv, json_object_to_json_string_ext(v, dsout_json_flags));
    }
    fputs("\r\n", o->csv);
    fputs(json_object_to_json_string_ext(ordered, dsout_json_flags), o->jsonl);
    fputc('\n', o->jsonl);
    json_object_put(ordered);
    o->rows++;
    if (ferror(o->jsonl)) return dsout_fail(o, why, "write", o->tmp_jsonl, errno);
    if (ferror(o->csv)) return dsout_fail(o, why, "write", o->tmp_csv, errno);
    return 0;
}

int dsout_missing(dsout *o, json_object *row, char why[DSF_WHY_MAX]) {
    fputs(json_object_to_json_string_ext(row, dsout_json_flags), o->missing);
    fputc('\n', o->missing);
    o->missing_rows++;
    if (ferror(o->missing)) return dsout_fail(o, why, "write", o->tmp_missing, errno);
    return 0;
}

/* fflush, fsync, fclose F (written to PATH); -1 with why. */
static int dsout_close_file(dsout *o, FILE **f, const char *path, char why[DSF_WHY_MAX]) {
    int rc = 0;
    if (fflush(*f) != 0 || ferror(*f) || fsync(fileno(*f)) != 0) rc = dsout_fail(o, why, "write", path, errno);
    if (fclose(*f) != 0 && rc == 0) rc = dsout_fail(o, why, "write", path, errno);
    *f = NULL;
    return rc;
}

int dsout_commit(dsout *o, char why[DSF_WHY_MAX]) {
    if (dsout_close_file(o, &o->csv, o->tmp_csv, why) != 0 || dsout_close_file(o, &o->jsonl, o->tmp_jsonl, why) != 0 ||
        dsout_close_file(o, &o->missing, o->tmp_missing, why) != 0)
        return -1;
    /* the CSV first, the JSON lines (what the next run reads) after */
    if (dsf_commit(o->files, o->tmp_csv, "manifest.csv", why) != 0) return -1;
    free(o->tmp_csv);
    o->tmp_csv = NULL;
    if (dsf_commit(o->files, o->tmp_missing, "missing.jsonl", why) != 0) return -1;
    free(o->tmp_missing);
    o->tmp_missing = NULL;
    if (dsf_commit(o->files, o->tmp_jsonl, "manifest.jsonl", why) != 0) return -1;
    free(o->tmp_jsonl);
    o->tmp_jsonl = NULL;
    return 0;
}

void dsout_abort(dsout *o) {
    FILE **files[] = {&o->jsonl, &o->csv, &o->missing};
    char **paths[] = {&o->tmp_jsonl, &o->tmp_csv, &o->tmp_missing};
    for (size_t i = 0; i < 3; i++) {
        if (*files[i]) fclose(*files[i]);
        *files[i] = NULL;
        if (*paths[i]) unlink(*paths[i]);
        free(*paths[i]);
        *paths[i] = NULL;
    }
}

uint64_t dsout_key(const char *table, const char *id, uint32_t image) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = table; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = id; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((image >> (8 * i)) & 0xff)) * 1099511628211ULL;
    return h ? h : 1;
}

static void dsout_prev_put(dsout_prev *p, uint64_t key, const unsigned char *sha1) {
    if (2 * (p->n + 1) > p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 1024;
        dsout_prev_entry *s = xcalloc(cap, sizeof *s);
        for (size_t i = 0; i < p->cap; i++) {
            if (!p->slots[i].key) continue;
            size_t j = p->slots[i].key & (cap - 1);
            while (s[j].key)
                j = (j + 1) & (cap - 1);
            s[j] = p->slots[i];
        }
        free(p->slots);
        p->slots = s;
        p->cap = cap;
    }
    size_t j = key & (p->cap - 1);
    while (p->slots[j].key) {
        if (p->slots[j].key == key && memcmp(p->slots[j].sha1, sha1, 20) == 0) return;
        j = (j + 1) & (p->cap - 1);
    }
    p->slots[j].key = key;
    memcpy(p->slots[j].sha1, sha1, 20);
    p->n++;
}

bool dsout_prev_has(const dsout_prev *p, uint64_t key, const unsigned char *sha1) {
    if (!p->cap) return false;
    for (size_t j = key & (p->cap - 1); p->slots[j].key; j = (j + 1) & (p->cap - 1))
        if (p->slots[j].key == key && memcmp(p->slots[j].sha1, sha1, 20) == 0) return true;
    return false;
}

int dsout_prev_load(dsout_prev *p, const char *dir, char why[DSF_WHY_MAX]) {
    memset(p, 0, sizeof *p);
    char *path = xasprintf("%s/summary.json", dir);
    json_object *summary = json_object_from_file(path);
    json_object *settings = NULL;
    if (summary && json_object_object_get_ex(summary, "settings", &settings)) p->settings = json_object_get(settings);
    json_object_put(summary);
    free(path);
    path = xasprintf("%s/manifest.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        int err = errno;
        free(path);
        if (err == ENOENT) return 0;
        snprintf(why, DSF_WHY_MAX, "cannot read the previous manifest: %s", strerror(err));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    uint64_t lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_object *row = json_tokener_parse(line);
        json_object *t = NULL, *id = NULL, *im = NULL, *sha1 = NULL;
        unsigned char digest[20];
        if (!json_object_object_get_ex(row, "table", &t) || !json_object_object_get_ex(row, "id", &id) ||
            !json_object_object_get_ex(row, "image", &im) || !json_object_object_get_ex(row, "sha1", &sha1) ||
            !json_object_is_type(t, json_type_string) || !json_object_is_type(id, json_type_string) ||
            !json_object_is_type(im, json_type_int) || !json_object_is_type(sha1, json_type_string) ||
            entry_hex_decode(json_object_get_string(sha1), digest, 20) != 0) {
            snprintf(why, DSF_WHY_MAX,
                     "%s line %llu is not a manifest row: remove the folder's manifest files "
                     "(the pictures stay and are checked again) or choose another --out",
                     path, (unsigned long long)lineno);
            json_object_put(row);
            rc = -1;
            break;
        }
        dsout_prev_put(
            p, dsout_key(json_object_get_string(t), json_object_get_string(id), (uint32_t)json_object_get_int64(im)),
            digest);
        json_object_put(row);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, DSF_WHY_MAX, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    free(path);
    return rc;
}

void dsout_prev_release(dsout_prev *p) {
    free(p->slots);
    json_object_put(p->settings);
    memset(p, 0, sizeof *p);
}
