/* hashcli.h -- `imgfeed-hasher hash FILE...`: the hash library on local files.
 *
 * Prints one JSON object per file on stdout: "file", then the fields of an
 * `_img` entry plus imagehash's hex forms.  Exit status 0 when every file
 * was hashed, 1 when some failed (their objects carry "error"), 2 on bad
 * usage.
 */
#ifndef IMGFEED_HASHCLI_H
#define IMGFEED_HASHCLI_H

/* ARGV[0] is "hash". */
int hashcli_main(int argc, char **argv);

#endif
