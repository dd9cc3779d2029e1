/* thumb.h -- small thumbnails of the save dir's files, as data: URIs.
 *
 * A duplicate group on the page shows its members' pictures.  The page is
 * one self-contained file, so each picture is read from the hasher's save
 * dir (or the dataset's folder), checked (at most MAX_BYTES, its pixel
 * count from the header at most MAX_PIXELS: imghash's format and
 * dimension readers), decoded with libgd, scaled to fit SIDE x SIDE and
 * encoded as a PNG inside a data: URI.  A file that is missing, too large,
 * not a picture (a video) or damaged gives its state instead, never a
 * failure: the page shows a placeholder with that word.
 */
#ifndef IMGFEED_REPORT_THUMB_H
#define IMGFEED_REPORT_THUMB_H

#include <stdint.h>

/* Makes the thumbnail of PATH: *URI a new "data:image/png;base64,..." (caller
 * frees) and "ok", or *URI NULL and the state: "missing", "too large",
 * "not a picture", "damaged". */
const char *thumb_make(const char *path, int side, uint64_t max_bytes, uint64_t max_pixels, char **uri);

#endif
