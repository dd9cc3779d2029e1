/* zpart.h -- one NDJSON part file, compressed with zstd as it is written.
 *
 * A part is written to a hidden temporary file (".NAME.tmp" in its folder),
 * as one zstd frame with a content checksum; zpart_commit ends the frame,
 * fsyncs the file and renames it to NAME, so that a part under its final
 * name is always whole, whatever kills the process.  zpart_abort removes
 * the temporary file.
 *
 * One zpart_writer is reused for every part (its compression context and
 * output buffer are allocated once): memory is the zstd context for the
 * level (ZSTD_estimateCStreamSize) plus one output buffer
 * (ZSTD_CStreamOutSize, 128 KiB), whatever the part's size.
 *
 * Why libzstd rather than a `zstd` process: a streaming frame per part with
 * ZSTD_compressStream2 (no size known in advance, bounded memory), a chosen
 * level, XXH64 content checksums that every reader verifies, and every
 * write error (ENOSPC, EFBIG, EIO) seen by us with its errno, so that no
 * half part is ever renamed to its final name.
 */
#ifndef IMGFEED_EXPORT_ZPART_H
#define IMGFEED_EXPORT_ZPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zpart_writer zpart_writer;

/* A writer at zstd LEVEL (1..19), or NULL with the reason in WHY.  Free with
 * zpart_writer_free (NULL is fine). */
zpart_writer *zpart_writer_new(int level, char *why, size_t whylen);
void zpart_writer_free(zpart_writer *w);

/* Start the part DIR/NAME (DIR exists): creates DIR/.NAME.tmp, replacing a
 * leftover one.  0, or -1 with the reason in WHY and errno set.  One part at
 * a time per writer. */
int zpart_begin(zpart_writer *w, const char *dir, const char *name, char *why, size_t whylen);
/* Compress LEN bytes of DATA into the part.  0, or -1 with the reason in WHY
 * and errno set (the part is then to be aborted). */
int zpart_add(zpart_writer *w, const void *data, size_t len, char *why, size_t whylen);
/* Compressed bytes written to the file so far (the frame's tail may still
 * be in the context), and uncompressed bytes given. */
uint64_t zpart_written(const zpart_writer *w);
uint64_t zpart_given(const zpart_writer *w);
/* End the frame, fsync, close and rename to DIR/NAME.  0 with the file's
 * size in *BYTES, or -1 with the reason in WHY and errno set: then the
 * temporary file is removed and the part does not exist. */
int zpart_commit(zpart_writer *w, uint64_t *bytes, char *why, size_t whylen);
/* Drop the part in progress (if any) and remove its temporary file. */
void zpart_abort(zpart_writer *w);

/* fsync the directory DIR (a rename in it made durable).  0 or -1, errno. */
int zpart_sync_dir(const char *dir);

#endif
