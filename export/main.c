/* main.c -- imgfeed-export: the archive out of PostgreSQL, for other tools.
 *
 * Two commands in one program, each with its own settings table:
 *   imgfeed-export dataset --out DIR ...   a training set: the archive's
 *                                          pictures in an ImageFolder layout,
 *                                          deduplicated, with a manifest
 *                                          (dataset*.c);
 *   imgfeed-export ndjson --out DIR ...    every archive table as NDJSON
 *                                          compressed with zstd, a folder per
 *                                          table and day (ndjson.c).
 * This file only dispatches; `imgfeed-export COMMAND --help` tells the
 * command's settings.
 */
#include <stdio.h>
#include <string.h>

#include "dataset.h"
#include "ndjson.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "dev"
#endif

static void usage(FILE *out) {
    fprintf(out, "Usage: imgfeed-export COMMAND [OPTION]...\n"
                 "\n"
                 "Exports the archive of imgfeed-archiver for other tools.\n"
                 "\n"
                 "Commands:\n"
                 "  dataset --out DIR   a training set: pictures by label and split (ImageFolder layout),\n"
                 "                      deduplicated, with manifest.jsonl, manifest.csv and summary.json\n"
                 "  ndjson --out DIR    every archive table as zstd-compressed NDJSON, one folder per table\n"
                 "                      and day (DIR/<table>/date=YYYY-MM-DD/part-00000.ndjson.zst)\n"
                 "\n"
                 "`imgfeed-export COMMAND --help` lists a command's options.  docs/datasets.md tells more.\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "dataset") == 0) return dataset_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "ndjson") == 0) return ndjson_main(argc - 1, argv + 1);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("imgfeed-export %s\n", IMGFEED_VERSION);
        return 0;
    }
    if (argc > 1)
        fprintf(stderr, "imgfeed-export: unknown command '%s' (see --help)\n", argv[1]);
    else
        usage(stderr);
    return 2;
}
