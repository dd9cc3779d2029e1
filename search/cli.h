/* cli.h -- imgfeed-search's commands for scripts.
 *
 *   imgfeed-search query FILE...   hashes each file with imghash (as the
 *       hasher would) and asks a running imgfeed-search (--server) for its
 *       nearest images: one JSON line a file, {"file": ..., "query": ...,
 *       "results": [...]} or {"file": ..., "error": ...}.  Exit 0 when
 *       every file was answered, 1 when any was not, 2 on bad usage.
 *
 *   imgfeed-search dupes [--max-distance N] [--hash phash|dhash]
 *       loads the archive (--pg) as the service does and prints the groups
 *       of near-identical images: images linked by a distance of at most N
 *       (directly or through others of the group) form a group.  One JSON
 *       line a group of at least --min-size images, {"size": n, "images":
 *       [{"table", "id", "image"}, ...]}, images and groups in the
 *       catalog's order (table, id, url number).
 */
#ifndef IMGFEED_SEARCH_CLI_H
#define IMGFEED_SEARCH_CLI_H

int cli_query(int argc, char **argv);
int cli_dupes(int argc, char **argv);

#endif
