/* main.c -- imgfeed-archiver: writes every item into PostgreSQL.
 *
 * The archiver consumes E.archiver and writes each item as a JSONB row of the
 * table named after its routing key, creating tables on first sight
 * (archiver.c).  This file holds the settings table and starts it;
 * `--init-db` only installs the SQL helpers (schema.sql) and exits.
 */
#include <stddef.h>
#include <stdio.h>

#include "archiver.h"
#include "config.h"
#include "metrics.h"
#include "sig.h"

static const cfg_option archiver_options[] = {
    CFG_COMMON_OPTIONS(archiver_settings, common),
    {.name = "pg",
     .env = "IMGFEED_PG",
     .type = CFG_STRING,
     .offset = offsetof(archiver_settings, pg),
     .defval = "dbname=imgfeed",
     .metavar = "CONNINFO",
     .help = "PostgreSQL to write to: a libpq conninfo string or a postgresql:// URI"},
    {.name = "batch-size",
     .env = "IMGFEED_BATCH_SIZE",
     .type = CFG_INT,
     .offset = offsetof(archiver_settings, batch_size),
     .defval = "1000",
     .min = 1,
     .max = 1000000,
     .help = "most items written in one transaction"},
    {.name = "batch-bytes",
     .env = "IMGFEED_BATCH_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(archiver_settings, batch_bytes),
     .defval = "32MiB",
     .min = 1,
     .max = 512.0 * 1024 * 1024,
     .help = "most item text written in one transaction (a single larger message still goes alone)"},
    {.name = "flush-interval",
     .env = "IMGFEED_FLUSH_INTERVAL",
     .type = CFG_MILLIS,
     .offset = offsetof(archiver_settings, flush_interval_ms),
     .defval = "1s",
     .min = 0,
     .max = 3600000,
     .help = "longest an item waits for its batch to fill before it is written anyway"},
    {.name = "flush-quiet",
     .env = "IMGFEED_FLUSH_QUIET",
     .type = CFG_MILLIS,
     .offset = offsetof(archiver_settings, flush_quiet_ms),
     .defval = "10ms",
     .min = 0,
     .max = 3600000,
     .help = "a batch is written as soon as no message came for this long: the end of a burst is stored "
             "at once, a steady stream still fills batches (0: wait for --flush-interval)"},
    {.name = "prefetch",
     .env = "IMGFEED_PREFETCH",
     .type = CFG_INT,
     .offset = offsetof(archiver_settings, prefetch),
     .defval = "2000",
     .min = 1,
     .max = 65535,
     .help = "messages the broker may deliver ahead of the acks; keep it above a batch's messages"},
    {.name = "max-item-bytes",
     .env = "IMGFEED_MAX_ITEM_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(archiver_settings, max_item_bytes),
     .defval = "16MiB",
     .min = 1024,
     .max = 255.0 * 1024 * 1024,
     .help = "largest item stored; a message with a larger one goes to E.dead"},
    {.name = "write-timeout",
     .env = "IMGFEED_WRITE_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(archiver_settings, write_timeout_ms),
     .defval = "5m",
     .min = 0,
     .max = 86400000,
     .help = "a batch write PostgreSQL has not answered in this long counts as a lost connection (0: wait for ever)"},
    {.name = "init-db",
     .type = CFG_BOOL,
     .offset = offsetof(archiver_settings, init_db),
     .defval = "false",
     .help = "install the SQL helpers and indexes (also done at every start), then exit"},
    {0},
};

static const cfg_program archiver_program = {
    "imgfeed-archiver",
    "[OPTION]...",
    "Consumes items from the queue E.archiver and writes each one as a JSONB row of the table\n"
    "<exchange>_<site>_<type>, created on first sight; an item is stored once however often it\n"
    "is delivered, and a newer copy replaces an older one.",
    archiver_options,
};

int main(int argc, char **argv) {
    archiver_settings settings = {0};
    int status = cfg_main_load(&archiver_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    status = cfg_common_apply(&archiver_program, &settings.common);
    if (status == 0) {
        sig_install();
        status = settings.init_db ? archiver_init_db(&settings) : archiver_run(&settings);
    }
    metrics_stop();
    cfg_release(&archiver_program, &settings);
    return status;
}
