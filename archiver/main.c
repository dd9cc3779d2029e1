/* main.c -- imgfeed-archiver: writes every item into PostgreSQL.
 *
 * The archiver consumes E.archiver and writes each item as a JSONB row of the
 * table named after its routing key, creating tables on first sight.  This
 * file only loads the settings and starts; archiving arrives with the
 * archiver issue.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "sig.h"

typedef struct archiver_settings {
    cfg_common common;
    char *pg;
} archiver_settings;

static const cfg_option archiver_options[] = {
    CFG_COMMON_OPTIONS(archiver_settings, common),
    {.name = "pg", .env = "IMGFEED_PG", .type = CFG_STRING, .offset = offsetof(archiver_settings, pg),
     .defval = "dbname=imgfeed", .metavar = "CONNINFO",
     .help = "PostgreSQL to write to: a libpq conninfo string or a postgresql:// URI"},
    {0},
};

static const cfg_program archiver_program = {
    "imgfeed-archiver", "[OPTION]...",
    "Consumes items from the queue E.archiver and writes each one as a JSONB row of the table\n"
    "<exchange>_<site>_<type>, created on first sight; an item is stored once however often it\n"
    "is delivered.",
    archiver_options,
};

int main(int argc, char **argv) {
    archiver_settings settings = {0};
    int status = cfg_main_load(&archiver_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    cfg_common_apply(&archiver_program, &settings.common);
    sig_install();
    log_error("archiving is not implemented yet in this version: only --help and settings work");
    cfg_release(&archiver_program, &settings);
    return 1;
}
