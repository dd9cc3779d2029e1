/* dataset_files.h -- pictures into the dataset folder, whole or not at all.
 *
 * Every file reaches its final name DIR/<split>/<label>/<sha1>.<ext> by a
 * rename from DIR/.tmp/ (the same file system), so a final name always holds
 * a whole file: a kill -9, a full disk or a crash leaves at worst a file in
 * DIR/.tmp/, which the next run empties (dsf_open).
 *
 * From the save dir (the hasher's --save-dir, hasher/savedir.h's layout):
 * the source is read once and its sha1 checked against the archive's (a
 * damaged file is never used); then it is hard-linked (no copy, no space),
 * or copied when linking is refused (another file system, or --copy: the
 * copy is written while it is read, fsync'd, and its sha1 checked).
 * Downloaded bodies are checked the same way and written like a copy.
 *
 * A final name already present with the expected size is kept as it is
 * (a rerun, or a run over a grown archive).
 *
 * Errors come back as DSF_FAILED with the reason: a source that is missing
 * or damaged is the caller's to download (DSF_SOURCE_BAD, with why); a
 * failure to write into DIR (a full disk, no permission) is DSF_FAILED,
 * with DSF_NO_SPACE telling a full disk, since the run cannot go on.
 */
#ifndef IMGFEED_EXPORT_DATASET_FILES_H
#define IMGFEED_EXPORT_DATASET_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSF_WHY_MAX 600

typedef enum dsf_result {
    DSF_PRESENT,    /* the final name was there already */
    DSF_LINKED,     /* hard-linked from the save dir */
    DSF_COPIED,     /* copied from the save dir */
    DSF_WRITTEN,    /* a downloaded body written */
    DSF_SOURCE_BAD, /* the save dir has no such file, or a damaged one: download it */
    DSF_FAILED,     /* cannot write into the dataset: the run stops */
} dsf_result;

typedef struct dsf {
    char *dir;     /* the dataset folder */
    char *tmp_dir; /* DIR/.tmp */
    bool copy;     /* never hard-link */
    bool no_space; /* the last DSF_FAILED was a full disk (ENOSPC, EDQUOT) */
    uint64_t seq;  /* temporary names */
} dsf;

/* Make DIR and DIR/.tmp, and empty DIR/.tmp (what an interrupted run left).
 * Returns 0, or -1 with why. */
int dsf_open(dsf *f, const char *dir, bool copy, char why[DSF_WHY_MAX]);
void dsf_close(dsf *f);

/* The path of REL under the dataset folder (new string). */
char *dsf_path(const dsf *f, const char *rel);

/* Whether REL (relative to DIR) is a regular file of SIZE bytes (SIZE < 0: any). */
bool dsf_present(const dsf *f, const char *rel, int64_t size);

/* Place the save dir's file SRC at REL, if its sha1 is SHA1 (20 bytes). */
dsf_result dsf_place(dsf *f, const char *src, const char *rel, const unsigned char *sha1, char why[DSF_WHY_MAX]);

/* Write the LEN bytes at DATA at REL, if their sha1 is SHA1 (else
 * DSF_SOURCE_BAD). */
dsf_result dsf_write(dsf *f, const unsigned char *data, size_t len, const char *rel, const unsigned char *sha1,
                     char why[DSF_WHY_MAX]);

/* Write the whole text of BUF (LEN bytes) to DIR/NAME crash-safely: a
 * temporary file, fsync, rename, fsync of DIR.  0, or -1 with why (and
 * f->no_space). */
int dsf_write_text(dsf *f, const char *name, const char *buf, size_t len, char why[DSF_WHY_MAX]);

/* Move the temporary file TMP (a path under DIR/.tmp, fsync'd) to DIR/NAME. */
int dsf_commit(dsf *f, const char *tmp, const char *name, char why[DSF_WHY_MAX]);

/* A new temporary path under DIR/.tmp (new string). */
char *dsf_tmp_path(dsf *f);

/* fsync the directory DIR. */
int dsf_sync_dir(const char *dir, char why[DSF_WHY_MAX]);

#endif
