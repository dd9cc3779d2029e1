/* savedir.h -- keep each downloaded file once, named by its sha1 (--save-dir).
 *
 * A file with sha1 abcdef0123... and format jpeg lives at
 * DIR/ab/cd/abcdef0123....jpg: two levels of 256 directories keep any one
 * directory small for millions of files, and the name is the content, so a
 * file is never stored twice and never needs rewriting.
 *
 * Writing is crash-safe: the bytes go to a temporary file in the final
 * directory (".<name>.XXXXXX", a dot file), which is fsync'd, closed and
 * renamed to the final name, and then the directory is fsync'd (and so are
 * the parents of directories just created).  A crash leaves at worst a
 * temporary dot file, never a half file under a final name.  A file already
 * present is left alone.
 *
 * Thread-safe: two threads (or processes) storing the same file at once
 * each write their own temporary file and rename it over the same name with
 * the same bytes.
 */
#ifndef IMGFEED_SAVEDIR_H
#define IMGFEED_SAVEDIR_H

#include <stdbool.h>
#include <stddef.h>

#define SAVEDIR_ERROR_MAX 512

/* Create DIR (and its parents) if missing and check that it is a writable
 * directory.  Returns 0, or -1 with the reason in ERR. */
int savedir_prepare(const char *dir, char err[SAVEDIR_ERROR_MAX]);

/* The final path of a file: DIR/ab/cd/<sha1_hex>.<ext>.  Caller frees. */
char *savedir_path(const char *dir, const char *sha1_hex, const char *ext);

/* Store the LEN bytes at DATA (whose sha1 is SHA1_HEX, 40 lower-case hex
 * digits) as savedir_path(DIR, SHA1_HEX, EXT), unless that file exists.
 * Returns 0 with *WRITTEN telling whether it wrote the file (WRITTEN may be
 * NULL), or -1 with the reason in ERR ("cannot write /x/.y: no space left on
 * device"); a failure leaves no file behind. */
int savedir_store(const char *dir, const char *sha1_hex, const char *ext, const unsigned char *data, size_t len,
                  bool *written, char err[SAVEDIR_ERROR_MAX]);

#endif
