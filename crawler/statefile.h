/* statefile.h -- a board's state on disk, saved atomically, for every kind.
 *
 * One file a board, <state-dir>/<site>/<board>.json (the board name
 * percent-encoded: [A-Za-z0-9_-] kept, every other byte %XX), holding a JSON
 * value that the board's source kind reads and writes (source.h).
 *
 * statefile_save writes a temporary file, fsyncs it, renames it over the
 * old one and fsyncs the directory: after a crash the file is the old one
 * or the new one, never a mix.  The crawler commits a board's state only
 * after the broker confirmed the items it counts as published, so a kill -9
 * can only make it publish again what was not yet saved.
 */
#ifndef IMGFEED_STATEFILE_H
#define IMGFEED_STATEFILE_H

#include <stddef.h>

#include <json-c/json.h>

/* The path of SITE's BOARD under DIR, creating DIR/SITE.  A new string, or
 * NULL with WHY when the directory cannot be made. */
char *statefile_path(const char *dir, const char *site, const char *board, char *why, size_t whylen);
/* Read PATH: 0 with *OUT the JSON value (the caller's), or 0 with *OUT NULL
 * when there is no file yet (never crawled); -1 with WHY when it exists but
 * cannot be read or parsed (the crawler then refuses to start rather than
 * publish the whole board again). */
int statefile_load(const char *path, json_object **out, char *why, size_t whylen);
/* Write STATE to PATH atomically (see the top).  0, or -1 with WHY. */
int statefile_save(const char *path, json_object *state, char *why, size_t whylen);

/* The steps, for other files of a board's state (seenlog.h): */
/* Replace PATH by the LEN bytes of DATA atomically, as statefile_save does. */
int statefile_replace(const char *path, const char *data, size_t len, char *why, size_t whylen);
/* Write all LEN bytes of DATA to FD (the file PATH, for WHY), through EINTR
 * and short writes.  0, or -1 with WHY. */
int statefile_write_all(int fd, const char *path, const char *data, size_t len, char *why, size_t whylen);
/* fsync the directory of PATH: a file made or renamed there is durable. */
void statefile_sync_dir(const char *path);

#endif
