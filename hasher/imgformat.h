/* imgformat.h -- what a file is, from its first bytes.
 *
 * The hasher never trusts a URL's extension or a Content-Type: a file is
 * what its magic bytes say.  Videos (WebM, MP4) are recognised so that they
 * get checksums; everything the decoders cannot read is IMG_FORMAT_UNKNOWN
 * and reported as "not an image".
 */
#ifndef IMGFEED_IMGFORMAT_H
#define IMGFEED_IMGFORMAT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum img_format {
    IMG_FORMAT_UNKNOWN = 0,
    IMG_FORMAT_JPEG,
    IMG_FORMAT_PNG,
    IMG_FORMAT_GIF,
    IMG_FORMAT_WEBP,
    IMG_FORMAT_BMP,
    IMG_FORMAT_TIFF,
    IMG_FORMAT_AVIF,
    IMG_FORMAT_HEIF,
    IMG_FORMAT_WEBM,
    IMG_FORMAT_MP4,
} img_format;

/* The format of the LEN bytes at DATA, IMG_FORMAT_UNKNOWN if none matches. */
img_format imgformat_detect(const unsigned char *data, size_t len);

/* Lower-case name as `_img` writes it ("jpeg", "png", ..., "mp4"), or
 * "unknown". */
const char *imgformat_name(img_format format);

/* The format whose imgformat_name is NAME, IMG_FORMAT_UNKNOWN for none
 * (readers of `_img`: the live view finds a saved file by it). */
img_format imgformat_from_name(const char *name);

/* The usual file extension without the dot ("jpg", "png", ...), for files
 * saved under --save-dir; "bin" for unknown. */
const char *imgformat_extension(img_format format);

/* True for WebM and MP4: checksums only, no perceptual hash. */
bool imgformat_is_video(img_format format);

#endif
