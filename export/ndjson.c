/* ndjson.c -- the archive as zstd-compressed NDJSON, a folder per table and
 * day; see ndjson.h for the layout, the line and the exit status.
 *
 * How one table is exported, inside one REPEATABLE READ READ ONLY
 * transaction (one snapshot, so the fingerprints describe exactly the rows
 * that are then read):
 *
 *   1. the days of the table with their fingerprint:
 *        SELECT day, count(*), sum(hashtextextended(id archived_on xmin))
 *          FROM t GROUP BY day
 *      (xmin changes whenever a row changes, whoever changes it);
 *   2. leftovers of a killed run (hidden .date=* folders) are removed, and
 *      day folders whose rows are all gone are removed (renamed hidden first);
 *   3. a day whose _imgfeed.json holds the same fingerprint and whose parts
 *      are all there with their recorded sizes is kept; the others are
 *      read with ONE query, streamed row by row:
 *        COPY (SELECT day, data::text FROM t WHERE day = ANY(todo)
 *              ORDER BY archived_on, id) TO STDOUT (FORMAT binary)
 *      (binary COPY: the jsonb text arrives as it is, no unescaping);
 *   4. each day is written into .date=D.tmp (parts through zpart.c, then
 *      its _imgfeed.json), fsynced, and exchanged with date=D in one
 *      renameat2(RENAME_EXCHANGE) (two renames where the file system has
 *      no exchange); the old folder is then removed.
 *
 * Memory is bounded by the largest row, not by the archive: libpq holds one
 * COPY message (one row) at a time and this file a copy of it, plus the
 * zstd context of the level (zpart.h) and the list of a table's days.
 * Waits on PostgreSQL (the fingerprint's scan, COPY's sort) poll the socket
 * every 200 ms, so that SIGTERM stops the export at once: the query is
 * cancelled, the day in progress dropped, exit 3.
 */
#define _GNU_SOURCE /* renameat2, nftw */

#include "ndjson.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "pgconn.h"
#include "sbuf.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"
#include "zpart.h"

#define NDJSON_MANIFEST "_imgfeed.json"
#define NDJSON_MANIFEST_MAX (16 << 20)
#define NDJSON_POLL_MS 200
#define NDJSON_FORMAT 1

/* --- settings --- */

static bool ndjson_check_day(const char *value, char *why, size_t whylen) {
    int y, m, d;
    char tail;
    if (strlen(value) != 10 || sscanf(value, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || value[4] != '-' ||
        value[7] != '-' || !isdigit((unsigned char)value[0]) || !isdigit((unsigned char)value[5]) ||
        !isdigit((unsigned char)value[8])) {
        snprintf(why, whylen, "is not a day YYYY-MM-DD");
        return false;
    }
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm back;
    if (y < 1970 || t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_year != y - 1900 || back.tm_mon != m - 1 ||
        back.tm_mday != d) {
        snprintf(why, whylen, "is not a day of the calendar (from 1970)");
        return false;
    }
    return true;
}

static const cfg_option ndjson_options[] = {
    CFG_ARCHIVE_OPTIONS(ndjson_settings, pg, exchange, "the exchange whose tables are exported (imgfeed_tables)"),
    {.name = "out",
     .env = "IMGFEED_EXPORT_OUT",
     .type = CFG_STRING,
     .offset = offsetof(ndjson_settings, out),
     .metavar = "DIR",
     .help = "where the export goes (created if missing): DIR/<table>/date=YYYY-MM-DD/part-NNNNN.ndjson.zst"},
    {.name = "tables",
     .env = "IMGFEED_EXPORT_TABLES",
     .type = CFG_STRING,
     .offset = offsetof(ndjson_settings, tables),
     .metavar = "PATTERNS",
     .help = "only the tables matching one of these comma-separated shell patterns (chan_4chan_*,chan_reddit_post); "
             "default every table"},
    {.name = "since",
     .env = "IMGFEED_EXPORT_SINCE",
     .type = CFG_STRING,
     .offset = offsetof(ndjson_settings, since),
     .metavar = "YYYY-MM-DD",
     .check = ndjson_check_day,
     .help = "first day exported (archived_on, UTC); days before it are neither written nor removed"},
    {.name = "until",
     .env = "IMGFEED_EXPORT_UNTIL",
     .type = CFG_STRING,
     .offset = offsetof(ndjson_settings, until),
     .metavar = "YYYY-MM-DD",
     .check = ndjson_check_day,
     .help = "last day exported (archived_on, UTC), included; days after it are neither written nor removed"},
    {.name = "level",
     .env = "IMGFEED_EXPORT_LEVEL",
     .type = CFG_INT,
     .offset = offsetof(ndjson_settings, level),
     .defval = "3",
     .min = 1,
     .max = 19,
     .help = "zstd compression level: 1 fastest, 19 smallest (days already exported are not recompressed)"},
    {.name = "part-bytes",
     .env = "IMGFEED_EXPORT_PART_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(ndjson_settings, part_bytes),
     .defval = "64MiB",
     .min = 1024,
     .max = 1099511627776.0,
     .help = "a part is closed at the first line after it holds this many compressed bytes, and the day goes on "
             "in the next part (one part is one Spark task: zstd files are not split)"},
    {.name = "log-level",
     .env = "IMGFEED_LOG_LEVEL",
     .type = CFG_CHOICE,
     .offset = offsetof(ndjson_settings, log_level),
     .defval = "info",
     .choices = cfg_log_levels,
     .help = "least severe level logged"},
    {.name = "log-format",
     .env = "IMGFEED_LOG_FORMAT",
     .type = CFG_CHOICE,
     .offset = offsetof(ndjson_settings, log_format),
     .defval = "text",
     .choices = cfg_log_formats,
     .help = "text lines, or json lines for log shippers"},
    {0},
};

static const cfg_program ndjson_program = {
    "imgfeed-export ndjson",
    "--out DIR [OPTION]...",
    "Writes every archive table of the exchange as NDJSON compressed with zstd, a folder per table\n"
    "and day of archived_on (UTC): DIR/<table>/date=YYYY-MM-DD/part-00000.ndjson.zst, each line a\n"
    "row's data as PostgreSQL prints the jsonb.  Run again, it writes only the days that changed.\n"
    "Exit status: 0 done, 1 PostgreSQL failed, 2 bad settings or DIR, 3 stopped by a signal,\n"
    "4 the output could not be written (disk full); a rerun goes on where it stopped.",
    ndjson_options,
};

/* --- files --- */

static int ndjson_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT) log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Remove PATH and everything below it; a missing PATH is fine. */
static void ndjson_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    nftw(path, ndjson_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p PATH; 0 or -1 with errno. */
static int ndjson_mkdirs(const char *path) {
    char *p = xstrdup(path);
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) r = -1;
        *s = c;
        if (r != 0 || c == '\0') break;
    }
    int e = errno;
    struct stat st;
    if (r == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        e = stat(path, &st) != 0 ? errno : ENOTDIR;
        r = -1;
    }
    free(p);
    errno = e;
    return r;
}

/* "date=YYYY-MM-DD" -> the day (10 chars) or NULL. */
static const char *ndjson_day_of_name(const char *name) {
    if (strncmp(name, "date=", 5) != 0 || strlen(name) != 15) return NULL;
    const char *d = name + 5;
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? d[i] != '-' : !isdigit((unsigned char)d[i])) return NULL;
    return d;
}

/* --- PostgreSQL --- */

typedef struct ndjson_run_ctx {
    const ndjson_settings *s;
    ndjson_stats *stats;
    PGconn *conn;
    zpart_writer *zw;
    char range_sql[160]; /* the --since/--until condition on archived_on, or "TRUE" */
    char why[1024];      /* the reason of the failure returned */
    int werr;            /* errno of an output failure (NDJSON_EWRITE) */
} ndjson_run_ctx;

/* The next result of the query sent on the connection, waiting with stop
 * checks.  NULL at the end of results, or on a stop (*STOPPED true: the
 * query was cancelled) or a lost connection (why set). */
static PGresult *ndjson_wait(ndjson_run_ctx *c, bool *stopped) {
    *stopped = false;
    while (PQisBusy(c->conn)) {
        if (sig_stop_requested()) {
            PGcancel *cancel = PQgetCancel(c->conn);
            char err[256];
            if (cancel) {
                PQcancel(cancel, err, sizeof err);
                PQfreeCancel(cancel);
            }
            *stopped = true;
            return NULL;
        }
        struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};
        if (p.fd < 0 || (poll(&p, 1, NDJSON_POLL_MS) < 0 && errno != EINTR) || !PQconsumeInput(c->conn)) {
            pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
            return NULL;
        }
    }
    return PQgetResult(c->conn);
}

/* Run SQL (no parameters) and want STATUS; the result, or NULL with why
 * set (or *STOPPED).  The caller PQclears. */
static PGresult *ndjson_query(ndjson_run_ctx *c, const char *sql, ExecStatusType want, bool *stopped) {
    *stopped = false;
    if (!PQsendQuery(c->conn, sql)) {
        pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
        return NULL;
    }
    PGresult *first = NULL, *r;
    while ((r = ndjson_wait(c, stopped)) != NULL) {
        if (!first) {
            first = r;
            if (want == PGRES_COPY_OUT && PQresultStatus(r) == PGRES_COPY_OUT) return first;
        } else {
            PQclear(r);
        }
    }
    if (*stopped) {
        PQclear(first);
        return NULL;
    }
    if (!first) {
        if (!c->why[0]) pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
        return NULL;
    }
    if (PQresultStatus(first) != want) {
        pgconn_error_text(PQresultErrorMessage(first), c->why, sizeof c->why);
        PQclear(first);
        return NULL;
    }
    return first;
}

static bool ndjson_exec(ndjson_run_ctx *c, const char *sql, bool *stopped) {
    PGresult *r = ndjson_query(c, sql, PGRES_COMMAND_OK, stopped);
    PQclear(r);
    return r != NULL;
}

/* --- a table's days --- */

typedef struct ndjson_day {
    char day[11];
    uint64_t rows;
    char fp[96]; /* "count:sum" */
    bool todo;
} ndjson_day;

typedef struct ndjson_part_rec {
    char name[32];
    uint64_t rows, bytes;
} ndjson_part_rec;

/* Whether DIR holds a whole export of DAY with fingerprint FP: its manifest
 * says so and every part it lists is there with its size, and no other. */
static bool ndjson_day_valid(const char *dir, const ndjson_day *day) {
    char *path = xasprintf("%s/" NDJSON_MANIFEST, dir);
    json_object *m = NULL;
    bool ok = false;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size < NDJSON_MANIFEST_MAX) m = json_object_from_file(path);
    free(path);
    json_object *fp, *parts, *rows;
    if (!m || !json_object_object_get_ex(m, "fingerprint", &fp) || !json_object_object_get_ex(m, "parts", &parts) ||
        !json_object_object_get_ex(m, "rows", &rows) || !json_object_is_type(parts, json_type_array) ||
        strcmp(json_object_get_string(fp), day->fp) != 0 || (uint64_t)json_object_get_int64(rows) != day->rows) {
        json_object_put(m);
        return false;
    }
    size_t n = json_object_array_length(parts);
    uint64_t total = 0;
    ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        json_object *p = json_object_array_get_idx(parts, i), *name, *bytes, *prow;
        if (!json_object_object_get_ex(p, "name", &name) || !json_object_object_get_ex(p, "bytes", &bytes) ||
            !json_object_object_get_ex(p, "rows", &prow)) {
            ok = false;
            break;
        }
        const char *nm = json_object_get_string(name);
        char *pp = xasprintf("%s/%s", dir, nm);
        ok = strchr(nm, '/') == NULL && stat(pp, &st) == 0 && S_ISREG(st.st_mode) &&
             (uint64_t)st.st_size == (uint64_t)json_object_get_int64(bytes);
        total += (uint64_t)json_object_get_int64(prow);
        free(pp);
    }
    ok = ok && total == day->rows;
    /* no stray part: every visible file is the manifest or a listed part */
    DIR *d = ok ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, NDJSON_MANIFEST) == 0) continue;
        bool listed = false;
        for (size_t i = 0; i < n && !listed; i++) {
            json_object *name;
            if (json_object_object_get_ex(json_object_array_get_idx(parts, i), "name", &name))
                listed = strcmp(json_object_get_string(name), e->d_name) == 0;
        }
        ok = listed;
    }
    if (d) closedir(d);
    json_object_put(m);
    return ok;
}

/* Write DIR/_imgfeed.json for DAY of TABLE with its PARTS, fsynced. */
static int ndjson_write_manifest(ndjson_run_ctx *c, const char *dir, const char *table, const ndjson_day *day,
                                 const ndjson_part_rec *parts, size_t nparts) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "format", json_object_new_int(NDJSON_FORMAT));
    json_object_object_add(m, "table", json_object_new_string(table));
    json_object_object_add(m, "date", json_object_new_string(day->day));
    json_object_object_add(m, "rows", json_object_new_int64((int64_t)day->rows));
    json_object_object_add(m, "fingerprint", json_object_new_string(day->fp));
    json_object_object_add(m, "level", json_object_new_int((int)c->s->level));
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < nparts; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "name", json_object_new_string(parts[i].name));
        json_object_object_add(p, "rows", json_object_new_int64((int64_t)parts[i].rows));
        json_object_object_add(p, "bytes", json_object_new_int64((int64_t)parts[i].bytes));
        json_object_array_add(arr, p);
    }
    json_object_object_add(m, "parts", arr);
    const char *text = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *path = xasprintf("%s/" NDJSON_MANIFEST, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = -1;
    if (fd >= 0) {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = write(fd, text + off, len - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            off += (size_t)w;
        }
        if (off == len && write(fd, "\n", 1) == 1 && fsync(fd) == 0) r = 0;
        int e = errno;
        close(fd);
        errno = e;
    }
    if (r != 0) {
        c->werr = errno;
        snprintf(c->why, sizeof c->why, "cannot write %s: %s", path, strerror(errno));
    }
    free(path);
    json_object_put(m);
    return r;
}

/* --- writing days --- */

typedef struct ndjson_table_ctx {
    ndjson_run_ctx *run;
    const char *table;
    char *tdir; /* DIR/<table> */
    ndjson_day *days;
    size_t ndays;
    size_t next_todo; /* index into days of the next day to be written */
    ndjson_day *cur;  /* the day being written, or NULL */
    char *staging;    /* its DIR/<table>/.date=D.tmp */
    uint64_t day_rows;
    ndjson_part_rec *parts;
    size_t nparts, parts_cap;
    bool part_open;
    uint64_t part_rows;
} ndjson_table_ctx;

static ndjson_status ndjson_write_error(ndjson_run_ctx *c, const char *why) {
    c->werr = errno;
    snprintf(c->why, sizeof c->why, "%s", why);
    return NDJSON_EWRITE;
}

static ndjson_status ndjson_part_end(ndjson_table_ctx *t) {
    if (!t->part_open) return NDJSON_OK;
    char why[600];
    uint64_t bytes = 0;
    uint64_t text = zpart_given(t->run->zw);
    t->part_open = false;
    if (zpart_commit(t->run->zw, &bytes, why, sizeof why) != 0) return ndjson_write_error(t->run, why);
    if (t->nparts == t->parts_cap) {
        t->parts_cap = t->parts_cap ? 2 * t->parts_cap : 8;
        t->parts = xrealloc(t->parts, t->parts_cap * sizeof *t->parts);
    }
    ndjson_part_rec *p = &t->parts[t->nparts];
    snprintf(p->name, sizeof p->name, "part-%05zu.ndjson.zst", t->nparts);
    p->rows = t->part_rows;
    p->bytes = bytes;
    t->nparts++;
    t->run->stats->parts++;
    t->run->stats->bytes += bytes;
    t->run->stats->text_bytes += text;
    return NDJSON_OK;
}

static ndjson_status ndjson_part_begin(ndjson_table_ctx *t) {
    char name[32], why[600];
    snprintf(name, sizeof name, "part-%05zu.ndjson.zst", t->nparts);
    if (zpart_begin(t->run->zw, t->staging, name, why, sizeof why) != 0) return ndjson_write_error(t->run, why);
    t->part_open = true;
    t->part_rows = 0;
    return NDJSON_OK;
}

/* Drop the day in progress: its temporary part and its hidden folder. */
static void ndjson_day_drop(ndjson_table_ctx *t) {
    zpart_abort(t->run->zw);
    t->part_open = false;
    if (t->staging) ndjson_rmtree(t->staging);
    free(t->staging);
    t->staging = NULL;
    t->cur = NULL;
}

static ndjson_status ndjson_day_begin(ndjson_table_ctx *t, const char *day) {
    while (t->next_todo < t->ndays && !t->days[t->next_todo].todo)
        t->next_todo++;
    if (t->next_todo >= t->ndays || strcmp(t->days[t->next_todo].day, day) != 0) {
        snprintf(t->run->why, sizeof t->run->why, "table %s: rows of day %s came out of order", t->table, day);
        return NDJSON_EPG;
    }
    t->cur = &t->days[t->next_todo++];
    t->staging = xasprintf("%s/.date=%s.tmp", t->tdir, day);
    ndjson_rmtree(t->staging);
    if (mkdir(t->staging, 0755) != 0) {
        char why[700];
        snprintf(why, sizeof why, "cannot create %s: %s", t->staging, strerror(errno));
        return ndjson_write_error(t->run, why);
    }
    t->day_rows = 0;
    t->nparts = 0;
    return ndjson_part_begin(t);
}

/* Swap the finished staging folder in as date=D. */
static ndjson_status ndjson_day_end(ndjson_table_ctx *t) {
    ndjson_run_ctx *c = t->run;
    ndjson_status st = ndjson_part_end(t);
    if (st != NDJSON_OK) return st;
    if (t->day_rows != t->cur->rows) {
        snprintf(c->why, sizeof c->why, "table %s, day %s: %" PRIu64 " rows read, %" PRIu64 " counted", t->table,
                 t->cur->day, t->day_rows, t->cur->rows);
        return NDJSON_EPG;
    }
    if (ndjson_write_manifest(c, t->staging, t->table, t->cur, t->parts, t->nparts) != 0) return NDJSON_EWRITE;
    if (zpart_sync_dir(t->staging) != 0) {
        snprintf(c->why, sizeof c->why, "cannot sync %s: %s", t->staging, strerror(errno));
        return NDJSON_EWRITE;
    }
    char *final = xasprintf("%s/date=%s", t->tdir, t->cur->day);
    int r = renameat2(AT_FDCWD, t->staging, AT_FDCWD, final, RENAME_EXCHANGE);
    if (r == 0) {
        ndjson_rmtree(t->staging); /* now the old day */
    } else if (errno == ENOENT) {
        r = rename(t->staging, final);
    } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
        /* no exchange here: the day is missing for a moment, never half */
        char *old = xasprintf("%s/.date=%s.old", t->tdir, t->cur->day);
        ndjson_rmtree(old);
        r = rename(final, old);
        if (r == 0) r = rename(t->staging, final);
        if (r == 0) ndjson_rmtree(old);
        free(old);
    }
    if (r != 0) {
        snprintf(c->why, sizeof c->why, "cannot put %s in place of %s: %s", t->staging, final, strerror(errno));
        free(final);
        return NDJSON_EWRITE;
    }
    if (zpart_sync_dir(t->tdir) != 0) log_warn("cannot sync %s: %s", t->tdir, strerror(errno));
    log_info("wrote %s/date=%s: %" PRIu64 " row%s in %zu part%s", t->table, t->cur->day, t->day_rows,
             t->day_rows == 1 ? "" : "s", t->nparts, t->nparts == 1 ? "" : "s");
    c->stats->days_written++;
    free(final);
    free(t->staging);
    t->staging = NULL;
    t->cur = NULL;
    return NDJSON_OK;
}

static ndjson_status ndjson_row(ndjson_table_ctx *t, const char *day, size_t daylen, const char *data, size_t len) {
    char d[11];
    if (daylen != 10) {
        snprintf(t->run->why, sizeof t->run->why, "table %s: a row without a day", t->table);
        return NDJSON_EPG;
    }
    memcpy(d, day, 10);
    d[10] = '\0';
    ndjson_status st = NDJSON_OK;
    if (t->cur && strcmp(t->cur->day, d) != 0) st = ndjson_day_end(t);
    if (st == NDJSON_OK && !t->cur) st = ndjson_day_begin(t, d);
    if (st == NDJSON_OK && !t->part_open) st = ndjson_part_begin(t);
    if (st != NDJSON_OK) return st;
    char why[600];
    if (zpart_add(t->run->zw, data, len, why, sizeof why) != 0 || zpart_add(t->run->zw, "\n", 1, why, sizeof why) != 0)
        return ndjson_write_error(t->run, why);
    t->part_rows++;
    t->day_rows++;
    t->run->stats->rows++;
    if (zpart_written(t->run->zw) >= (uint64_t)t->run->s->part_bytes) st = ndjson_part_end(t);
    return st;
}

static uint32_t ndjson_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Takes the whole tuples at the start of BUF (binary COPY); how many bytes
 * were used, or -1 on a malformed stream (why set) or a failed row (*ST). */
static ssize_t ndjson_take_tuples(ndjson_table_ctx *t, const unsigned char *buf, size_t len, bool *header_done,
                                  bool *trailer, ndjson_status *st) {
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0377, '\r', '\n', 0};
    size_t pos = 0;
    if (!*header_done) {
        if (len < 19) return 0;
        if (memcmp(buf, sig, 11) != 0) goto bad;
        uint32_t ext = ndjson_be32(buf + 15);
        if (len < 19 + (size_t)ext) return 0;
        pos = 19 + ext;
        *header_done = true;
    }
    while (!*trailer && len - pos >= 2) {
        int16_t nf = (int16_t)((uint16_t)buf[pos] << 8 | buf[pos + 1]);
        if (nf == -1) {
            *trailer = true;
            pos += 2;
            break;
        }
        if (nf != 2) goto bad;
        size_t p = pos + 2;
        const unsigned char *f[2];
        size_t fl[2];
        bool whole = true;
        for (int i = 0; i < 2 && whole; i++) {
            if (len - p < 4) {
                whole = false;
                break;
            }
            uint32_t l = ndjson_be32(buf + p);
            if (l == UINT32_MAX) goto bad; /* NULL: neither column can be */
            p += 4;
            if (len - p < l) {
                whole = false;
                break;
            }
            f[i] = buf + p;
            fl[i] = l;
            p += l;
        }
        if (!whole) break;
        *st = ndjson_row(t, (const char *)f[0], fl[0], (const char *)f[1], fl[1]);
        if (*st != NDJSON_OK) return -1;
        pos = p;
        if (sig_stop_requested()) {
            *st = NDJSON_STOPPED;
            return -1;
        }
    }
    return (ssize_t)pos;
bad:
    snprintf(t->run->why, sizeof t->run->why, "table %s: COPY sent something that is not binary COPY", t->table);
    *st = NDJSON_EPG;
    return -1;
}

/* Stream the COPY of the table's days to write. */
static ndjson_status ndjson_stream(ndjson_table_ctx *t, const char *sql) {
    ndjson_run_ctx *c = t->run;
    bool stopped = false;
    PGresult *r = ndjson_query(c, sql, PGRES_COPY_OUT, &stopped);
    if (!r) return stopped ? NDJSON_STOPPED : NDJSON_EPG;
    PQclear(r);
    sbuf in = {0};
    bool header_done = false, trailer = false;
    ndjson_status st = NDJSON_OK;
    for (;;) {
        char *msg = NULL;
        int n = PQgetCopyData(c->conn, &msg, 1);
        if (n > 0) {
            sbuf_add(&in, msg, (size_t)n);
            PQfreemem(msg);
            ssize_t used = ndjson_take_tuples(t, (const unsigned char *)in.p, in.len, &header_done, &trailer, &st);
            if (used < 0) break;
            memmove(in.p, in.p + used, in.len - (size_t)used);
            in.len -= (size_t)used;
            continue;
        }
        if (n == 0) {
            if (sig_stop_requested()) {
                st = NDJSON_STOPPED;
                break;
            }
            struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};
            if (p.fd < 0 || (poll(&p, 1, NDJSON_POLL_MS) < 0 && errno != EINTR) || !PQconsumeInput(c->conn)) {
                pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
                st = NDJSON_EPG;
                break;
            }
            continue;
        }
        if (n == -2) {
            pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
            st = NDJSON_EPG;
            break;
        }
        /* n == -1: the COPY is over; its final result says how */
        while ((r = ndjson_wait(c, &stopped)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && st == NDJSON_OK) {
                pgconn_error_text(PQresultErrorMessage(r), c->why, sizeof c->why);
                st = NDJSON_EPG;
            }
            PQclear(r);
        }
        if (stopped && st == NDJSON_OK) st = NDJSON_STOPPED;
        if (st == NDJSON_OK && (!trailer || in.len != 0)) {
            snprintf(c->why, sizeof c->why, "table %s: the COPY ended early", t->table);
            st = NDJSON_EPG;
        }
        if (st == NDJSON_OK && t->cur) st = ndjson_day_end(t);
        break;
    }
    free(in.p);
    if (st != NDJSON_OK) {
        if (st == NDJSON_STOPPED || st == NDJSON_EWRITE) {
            PGcancel *cancel = PQgetCancel(c->conn);
            char err[256];
            if (cancel) {
                PQcancel(cancel, err, sizeof err);
                PQfreeCancel(cancel);
            }
        }
        ndjson_day_drop(t);
        return st;
    }
    /* every day to write was written */
    for (size_t i = t->next_todo; i < t->ndays; i++) {
        if (t->days[i].todo) {
            snprintf(c->why, sizeof c->why, "table %s: no rows came for day %s", t->table, t->days[i].day);
            return NDJSON_EPG;
        }
    }
    return NDJSON_OK;
}

static bool ndjson_in_range(const ndjson_settings *s, const char *day) {
    return (!s->since || strcmp(day, s->since) >= 0) && (!s->until || strcmp(day, s->until) <= 0);
}

/* Remove leftovers of killed runs and the days that lost all their rows. */
static void ndjson_tidy(ndjson_table_ctx *t) {
    DIR *d = opendir(t->tdir);
    if (!d) return;
    struct dirent *e;
    char **gone = NULL;
    size_t ngone = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".date=", 6) == 0) {
            gone = xrealloc(gone, (ngone + 1) * sizeof *gone);
            gone[ngone++] = xstrdup(e->d_name);
            continue;
        }
        const char *day = ndjson_day_of_name(e->d_name);
        if (!day || !ndjson_in_range(t->run->s, day)) continue;
        bool live = false;
        for (size_t i = 0; i < t->ndays && !live; i++)
            live = strcmp(t->days[i].day, day) == 0;
        if (live) continue;
        gone = xrealloc(gone, (ngone + 1) * sizeof *gone);
        gone[ngone++] = xstrdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < ngone; i++) {
        char *path = xasprintf("%s/%s", t->tdir, gone[i]);
        if (gone[i][0] == '.') {
            log_info("removing %s, left by an interrupted run", path);
            ndjson_rmtree(path);
        } else {
            /* hidden first, so that a kill never leaves half a day visible */
            char *hidden = xasprintf("%s/.%s.old", t->tdir, gone[i]);
            if (rename(path, hidden) == 0) {
                ndjson_rmtree(hidden);
                t->run->stats->days_removed++;
                log_info("removed %s: its rows are no longer in the archive on that day", path);
            } else {
                log_warn("cannot remove %s: %s", path, strerror(errno));
            }
            free(hidden);
        }
        free(path);
        free(gone[i]);
    }
    free(gone);
    zpart_sync_dir(t->tdir);
}

static ndjson_status ndjson_table(ndjson_run_ctx *c, const char *table) {
    ndjson_table_ctx t = {.run = c, .table = table};
    ndjson_status st = NDJSON_OK;
    bool stopped = false;
    char *quoted = PQescapeIdentifier(c->conn, table, strlen(table));
    if (!quoted) {
        pgconn_error_text(PQerrorMessage(c->conn), c->why, sizeof c->why);
        return NDJSON_EPG;
    }
    if (!ndjson_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &stopped)) {
        PQfreemem(quoted);
        return stopped ? NDJSON_STOPPED : NDJSON_EPG;
    }
    char *sql = xasprintf("SELECT to_char(archived_on AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*),"
                          " coalesce(sum(hashtextextended(id || ' ' || archived_on::text || ' ' || xmin::text, 0)"
                          "::numeric), 0)::text"
                          " FROM %s WHERE %s GROUP BY 1 ORDER BY 1",
                          quoted, c->range_sql);
    PGresult *r = ndjson_query(c, sql, PGRES_TUPLES_OK, &stopped);
    free(sql);
    if (!r) {
        PQfreemem(quoted);
        if (!stopped) {
            char err[600];
            snprintf(err, sizeof err, "%s", c->why);
            snprintf(c->why, sizeof c->why, "cannot read table %s: %s", table, err);
        }
        return stopped ? NDJSON_STOPPED : NDJSON_EPG;
    }
    t.ndays = (size_t)PQntuples(r);
    t.days = xcalloc(t.ndays ? t.ndays : 1, sizeof *t.days);
    for (size_t i = 0; i < t.ndays; i++) {
        snprintf(t.days[i].day, sizeof t.days[i].day, "%s", PQgetvalue(r, (int)i, 0));
        t.days[i].rows = strtoull(PQgetvalue(r, (int)i, 1), NULL, 10);
        snprintf(t.days[i].fp, sizeof t.days[i].fp, "%s:%s", PQgetvalue(r, (int)i, 1), PQgetvalue(r, (int)i, 2));
    }
    PQclear(r);
    t.tdir = xasprintf("%s/%s", c->s->out, table);
    if (ndjson_mkdirs(t.tdir) != 0) {
        snprintf(c->why, sizeof c->why, "cannot create %s: %s", t.tdir, strerror(errno));
        st = NDJSON_EWRITE;
        goto done;
    }
    ndjson_tidy(&t);
    size_t ntodo = 0;
    sbuf list = {0};
    for (size_t i = 0; i < t.ndays; i++) {
        char *dir = xasprintf("%s/date=%s", t.tdir, t.days[i].day);
        t.days[i].todo = !ndjson_day_valid(dir, &t.days[i]);
        free(dir);
        if (!t.days[i].todo) {
            c->stats->days_kept++;
            continue;
        }
        sbuf_add(&list, ntodo ? "," : "'{", ntodo ? 1 : 2);
        sbuf_add(&list, t.days[i].day, 10);
        ntodo++;
    }
    log_info("table %s: %zu day%s, %zu to write, %zu unchanged", table, t.ndays, t.ndays == 1 ? "" : "s", ntodo,
             t.ndays - ntodo);
    if (ntodo > 0) {
        sbuf_add(&list, "}'", 2);
        sbuf_addc(&list, '\0');
        char *where = ntodo == t.ndays
                          ? xstrdup(c->range_sql)
                          : xasprintf("%s AND to_char(archived_on AT TIME ZONE 'UTC', 'YYYY-MM-DD') = ANY (%s::text[])",
                                      c->range_sql, list.p);
        sql = xasprintf("COPY (SELECT to_char(archived_on AT TIME ZONE 'UTC', 'YYYY-MM-DD'), data::text FROM %s"
                        " WHERE %s ORDER BY archived_on, id COLLATE \"C\") TO STDOUT (FORMAT binary)",
                        quoted, where);
        free(where);
        st = ndjson_stream(&t, sql);
        free(sql);
    }
    free(list.p);
    if (st == NDJSON_OK && !ndjson_exec(c, "COMMIT", &stopped)) st = stopped ? NDJSON_STOPPED : NDJSON_EPG;
done:
    if (st != NDJSON_OK && PQstatus(c->conn) == CONNECTION_OK && PQtransactionStatus(c->conn) != PQTRANS_ACTIVE) {
        PGresult *rb = PQexec(c->conn, "ROLLBACK");
        PQclear(rb);
    }
    PQfreemem(quoted);
    free(t.tdir);
    free(t.days);
    free(t.parts);
    free(t.staging);
    if (st == NDJSON_OK) c->stats->tables++;
    return st;
}

/* --- the run --- */

static bool ndjson_table_wanted(const char *patterns, const char *table) {
    if (!patterns || !*patterns) return true;
    char *copy = xstrdup(patterns), *save = NULL;
    bool match = false;
    for (char *p = strtok_r(copy, ",", &save); p && !match; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        match = fnmatch(p, table, 0) == 0;
    }
    free(copy);
    return match;
}

static bool ndjson_table_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) || name[i] == '_')) return false;
    return true;
}

ndjson_status ndjson_run(const ndjson_settings *s, ndjson_stats *stats) {
    memset(stats, 0, sizeof *stats);
    ndjson_run_ctx c = {.s = s, .stats = stats};
    if (!s->out || !*s->out) {
        log_error("no --out DIR: say where the export goes");
        return NDJSON_EUSAGE;
    }
    if (s->since && s->until && strcmp(s->since, s->until) > 0) {
        log_error("--since %s is after --until %s", s->since, s->until);
        return NDJSON_EUSAGE;
    }
    if (ndjson_mkdirs(s->out) != 0) {
        log_error("cannot use --out %s: %s", s->out, strerror(errno));
        return NDJSON_EUSAGE;
    }
    char *lockpath = xasprintf("%s/.imgfeed-export.lock", s->out);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) {
        log_error("cannot write in --out %s: %s", s->out, strerror(errno));
        free(lockpath);
        return NDJSON_EUSAGE;
    }
    free(lockpath);
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        log_error("--out %s is being written by another imgfeed-export", s->out);
        close(lock);
        return NDJSON_EUSAGE;
    }
    char why[600];
    c.zw = zpart_writer_new((int)s->level, why, sizeof why);
    if (!c.zw) {
        log_error("%s", why);
        close(lock);
        return NDJSON_EUSAGE;
    }
    if (s->since && s->until)
        snprintf(c.range_sql, sizeof c.range_sql,
                 "archived_on >= '%s'::timestamp AT TIME ZONE 'UTC' AND archived_on < ('%s'::date + 1)::timestamp "
                 "AT TIME ZONE 'UTC'",
                 s->since, s->until);
    else if (s->since)
        snprintf(c.range_sql, sizeof c.range_sql, "archived_on >= '%s'::timestamp AT TIME ZONE 'UTC'", s->since);
    else if (s->until)
        snprintf(c.range_sql, sizeof c.range_sql, "archived_on < ('%s'::date + 1)::timestamp AT TIME ZONE 'UTC'",
                 s->until);
    else
        snprintf(c.range_sql, sizeof c.range_sql, "TRUE");

    ndjson_status st = NDJSON_OK;
    c.conn = pgconn_open(s->pg, "imgfeed-export", why, sizeof why);
    if (!c.conn) {
        log_error("cannot connect to PostgreSQL: %s", why);
        st = NDJSON_EPG;
        goto out;
    }
    bool stopped = false;
    /* archived_on::text (the fingerprint) and the days in UTC whatever the role's settings say */
    if (!ndjson_exec(&c, "SET TimeZone = 'UTC'", &stopped)) {
        log_error("cannot set up the session: %s", c.why);
        st = stopped ? NDJSON_STOPPED : NDJSON_EPG;
        goto out;
    }
    const char *params[1] = {s->exchange};
    PGresult *r = PQexecParams(c.conn,
                               "SELECT name FROM imgfeed_tables WHERE exchange = $1"
                               " AND to_regclass(quote_ident(name)) IS NOT NULL ORDER BY name",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) {
            log_info("the archive has no tables yet (no imgfeed_tables): nothing to export");
        } else {
            pgconn_error_text(PQresultErrorMessage(r), why, sizeof why);
            log_error("cannot list the archive's tables: %s", why);
            st = NDJSON_EPG;
        }
        PQclear(r);
        goto out;
    }
    int64_t t0 = time_mono_ns();
    for (int i = 0; i < PQntuples(r) && st == NDJSON_OK; i++) {
        const char *table = PQgetvalue(r, i, 0);
        if (!ndjson_table_wanted(s->tables, table)) continue;
        if (!ndjson_table_name_ok(table)) {
            log_warn("table %s skipped: its name is not one the archiver makes ([a-z0-9_], 63 bytes at most)", table);
            continue;
        }
        c.why[0] = '\0';
        st = ndjson_table(&c, table);
        if (st == NDJSON_STOPPED) {
            log_warn("stopped by a signal during table %s: what is written stays, a rerun goes on", table);
        } else if (st == NDJSON_EWRITE) {
            log_error("%s%s; nothing is left half-written, and a rerun goes on once the output can be written",
                      c.werr == ENOSPC || c.werr == EDQUOT ? "disk full: " : "", c.why);
        } else if (st != NDJSON_OK) {
            log_error("export of table %s failed: %s; a rerun goes on where this one stopped", table, c.why);
        }
    }
    PQclear(r);
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    if (st == NDJSON_OK)
        log_info("done: %" PRIu64 " tables, %" PRIu64 " days written, %" PRIu64 " unchanged, %" PRIu64
                 " removed; %" PRIu64 " rows, %" PRIu64 " bytes in %.1f s",
                 stats->tables, stats->days_written, stats->days_kept, stats->days_removed, stats->rows, stats->bytes,
                 secs);
out:
    if (c.conn) PQfinish(c.conn);
    zpart_writer_free(c.zw);
    close(lock);
    return st;
}

int ndjson_main(int argc, char **argv) {
    ndjson_settings s = {0};
    int status = cfg_main_load(&ndjson_program, &s, argc, argv, NULL);
    if (status >= 0) return status;
    log_level lv = LOG_INFO;
    log_format lf = LOG_FORMAT_TEXT;
    log_set_program("imgfeed-export");
    if (s.log_level) log_level_parse(s.log_level, &lv);
    if (s.log_format) log_format_parse(s.log_format, &lf);
    log_set_level(lv);
    log_set_format(lf);
    sig_install();
    ndjson_stats stats;
    ndjson_status st = ndjson_run(&s, &stats);
    printf("{\"status\":%d,\"tables\":%" PRIu64 ",\"days_written\":%" PRIu64 ",\"days_kept\":%" PRIu64
           ",\"days_removed\":%" PRIu64 ",\"rows\":%" PRIu64 ",\"parts\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"text_bytes\":%" PRIu64 "}\n",
           (int)st, stats.tables, stats.days_written, stats.days_kept, stats.days_removed, stats.rows, stats.parts,
           stats.bytes, stats.text_bytes);
    fflush(stdout);
    cfg_release(&ndjson_program, &s);
    return (int)st;
}
