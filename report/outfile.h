/* outfile.h -- files that appear whole under their final name, or not at all.
 *
 * The report writes everything it makes into a staging directory beside
 * its output (DIR/.report.XXXXXX), checks every write (a full disk is
 * found at the write, the flush, the fsync or the close that fails), and
 * only when all of it is written renames each file to its final name.  A
 * failure anywhere removes the staging directory and leaves the final names
 * as they were: an earlier report stays whole, nothing is half-written.  A
 * run can simply be started again.
 *
 * Every function returns 0, or -1 with the reason in WHY ("cannot write
 * /out/.report.x/report.html: No space left on device").
 */
#ifndef IMGFEED_REPORT_OUTFILE_H
#define IMGFEED_REPORT_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

#define OUTFILE_WHY_MAX 600

typedef struct outfile_stage {
    char *dir;   /* the final directory, DIR */
    char *stage; /* DIR/.report.XXXXXX, NULL once removed */
} outfile_stage;

/* Create DIR (and its parents) if missing, and the staging directory in it. */
int outfile_stage_init(outfile_stage *s, const char *dir, char why[OUTFILE_WHY_MAX]);
/* Remove the staging directory and what is in it (after a failure, or after
 * outfile_stage_commit), and free. */
void outfile_stage_release(outfile_stage *s);

/* Path of NAME inside the staging directory; caller frees. */
char *outfile_stage_path(const outfile_stage *s, const char *name);

/* Open NAME in the staging directory for writing. */
FILE *outfile_open(const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]);
/* Flush, fsync and close F (opened for NAME), whatever happens; -1 with the
 * reason when any of them failed. */
int outfile_close(FILE *f, const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]);
/* fsync the file NAME of the staging directory (one another program wrote). */
int outfile_sync(const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]);

/* Rename staged NAMES (NULL-terminated, relative paths such as
 * "figures/labels.svg"; their final directories are created) to their final
 * names under DIR, in order, and fsync the directories. */
int outfile_stage_commit(outfile_stage *s, const char *const *names, char why[OUTFILE_WHY_MAX]);

#endif
