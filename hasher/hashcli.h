/* hashcli.h -- `imgfeed-hasher hash FILE...`: the hash library on local files.
 *
 * Prints one JSON object per file on stdout: "file", then the fields of an
 * `_img` entry plus imagehash's hex forms.  Exit status 0 when every file
 * was hashed, 1 when some failed (their objects carry "error"), 2 on bad
 * usage.
 */
#ifndef IMGFEED_HASHCLI_H
#define IMGFEED_HASHCLI_H

#include <stddef.h>

/* ARGV[0] is "hash". */
int hashcli_main(int argc, char **argv);

/* Reads the regular file PATH whole into a new buffer *DATA (the caller
 * frees it) unless it is larger than MAX_BYTES.  Returns 0, 1 when too large
 * (*LEN holds the size), or -1 with errno.  bench_jpegfloor reads its files
 * the same way. */
int hashcli_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len);

#endif
