/* ndjson.h -- `imgfeed-export ndjson`: the archive as zstd-compressed NDJSON.
 *
 * Every archive table of the exchange (imgfeed_tables) is written as
 *   DIR/<table>/date=YYYY-MM-DD/part-00000.ndjson.zst   (part-00001, ... past --part-bytes)
 *   DIR/<table>/date=YYYY-MM-DD/_imgfeed.json           (what the day holds: rows, fingerprint, parts)
 * where the day is the row's archived_on in UTC and each line is the row's
 * `data` exactly as PostgreSQL prints the jsonb (data::text), nothing
 * added: the item's `_id` is the row's id, the folders give the table and
 * the day.  Rows of a day come in (archived_on, id) order.
 *
 * A day is written into a hidden folder (.date=D.tmp) and swapped in whole
 * (renameat2 RENAME_EXCHANGE), so readers never see half a day and a kill
 * leaves no half part under a final name.  A rerun compares each day's
 * fingerprint (count, and a hash of every row's id, archived_on and xmin,
 * taken in the same snapshot as the rows) with the day's _imgfeed.json:
 * unchanged days are skipped, changed ones (new rows, rows updated or moved
 * to another day by the archiver's upsert, rows deleted) are rewritten
 * whole, days that lost all their rows are removed.
 *
 * Exit status (ndjson_status): 0 done; 1 PostgreSQL failed (unreachable,
 * lost, an SQL error); 2 bad settings or a bad --out DIR (not a directory,
 * not writable, used by another export); 3 stopped by SIGTERM or SIGINT
 * before the end; 4 the output could not be written (disk full, file too
 * large, I/O error).  In every case what is under a final name is whole and
 * a rerun goes on from there.
 */
#ifndef IMGFEED_EXPORT_NDJSON_H
#define IMGFEED_EXPORT_NDJSON_H

#include <stdint.h>

typedef enum ndjson_status {
    NDJSON_OK = 0,
    NDJSON_EPG = 1,
    NDJSON_EUSAGE = 2,
    NDJSON_STOPPED = 3,
    NDJSON_EWRITE = 4,
} ndjson_status;

typedef struct ndjson_settings {
    char *pg;
    char *exchange;
    char *out;
    char *tables; /* comma-separated fnmatch patterns; NULL or "": every table */
    char *since;  /* YYYY-MM-DD, first day exported (UTC), or NULL */
    char *until;  /* YYYY-MM-DD, last day exported (UTC), or NULL */
    long level;   /* zstd level */
    int64_t part_bytes;
    char *log_level;
    char *log_format;
} ndjson_settings;

typedef struct ndjson_stats {
    uint64_t tables;       /* tables looked at */
    uint64_t days_written; /* days (re)written */
    uint64_t days_kept;    /* days already exported and unchanged */
    uint64_t days_removed; /* day folders whose rows are all gone */
    uint64_t rows;         /* rows written */
    uint64_t parts;        /* parts written */
    uint64_t bytes;        /* compressed bytes written */
    uint64_t text_bytes;   /* uncompressed NDJSON bytes written */
} ndjson_stats;

/* Run the export with settings S (loaded); fills *STATS.  Logs what it does
 * and why it stops. */
ndjson_status ndjson_run(const ndjson_settings *s, ndjson_stats *stats);

/* `imgfeed-export ndjson [OPTION]...` with ARGV[0] = "ndjson": loads the
 * settings, runs, prints the stats as one JSON line on stdout. */
int ndjson_main(int argc, char **argv);

#endif
