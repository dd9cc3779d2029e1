/* format.h -- what a file is, from its first bytes (ih_format_*).
 *
 * The library never trusts a file name's extension or a media type given
 * with the bytes: a file is what its magic bytes say.  Videos (WebM, MP4)
 * are recognised so that they get checksums; everything the decoders cannot
 * read is IH_FORMAT_UNKNOWN and described as "not an image".
 */
#ifndef IH_FORMAT_H
#define IH_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum ih_format {
    IH_FORMAT_UNKNOWN = 0,
    IH_FORMAT_JPEG,
    IH_FORMAT_PNG,
    IH_FORMAT_GIF,
    IH_FORMAT_WEBP,
    IH_FORMAT_BMP,
    IH_FORMAT_TIFF,
    IH_FORMAT_AVIF,
    IH_FORMAT_HEIF,
    IH_FORMAT_WEBM,
    IH_FORMAT_MP4,
} ih_format;

/* The format of the LEN bytes at DATA, IH_FORMAT_UNKNOWN if none matches. */
ih_format ih_format_detect(const unsigned char *data, size_t len);

/* Lower-case name as an `_img` entry's "format" writes it ("jpeg", "png",
 * ..., "mp4"), or "unknown". */
const char *ih_format_name(ih_format format);

/* The format whose ih_format_name is NAME, IH_FORMAT_UNKNOWN for none
 * (for readers of `_img` entries: the format of a file described before). */
ih_format ih_format_from_name(const char *name);

/* The usual file extension without the dot ("jpg", "png", ...), for naming
 * a stored copy of the file; "bin" for unknown. */
const char *ih_format_extension(ih_format format);

/* True for WebM and MP4: checksums only, no perceptual hash. */
bool ih_format_is_video(ih_format format);

#endif
