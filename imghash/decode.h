/* decode.h -- image bytes to the gray image of Pillow's convert('L')
 * (ih_decode_*), with the picture's colour summary (ih_colour).
 *
 * ih_decode_gray() turns a file into exactly the 8-bit gray pixels that
 * `Image.open(f).convert('L')` gives in Pillow 9.4, which the perceptual
 * hashes are computed from.  Each format has its own file (decode_jpeg.c,
 * decode_png.c, ...); this module picks one by the detected format.
 *
 * On the way the decoders add up the colour of the picture from the very
 * pixels they convert to gray (no second decode): the sums and 8-bin
 * histograms of the R, G and B of Pillow's `convert('RGB')` and the sum of
 * the gray image, from which describe.c writes an entry's rgb_mean,
 * brightness and rgb_hist (docs/design.md).
 *
 * Limits: the pixel count is checked against max_pixels from the header,
 * before any pixel memory is allocated.  Truncated or corrupt data is an
 * error, as it is in Pillow, never a partly gray image.
 */
#ifndef IH_DECODE_H
#define IH_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Levels of a channel a bin of ih_colour's histograms holds (256 / 8). */
#define IH_COLOUR_BINS 8
#define IH_COLOUR_BIN_SHIFT 5

/* The colour summary of a decoded picture, exact integers: over its
 * `pixels` pixels, the sums of the R, G and B values of Pillow's
 * convert('RGB') and of the gray values of convert('L'), and per channel
 * the pixel counts of the values v with v >> 5 == bin (0..31 in bin 0, ...,
 * 224..255 in bin 7).  Pillow's ImageStat mean is sum / pixels, computed in
 * double as it does; each channel's bins add up to `pixels`. */
typedef struct ih_colour {
    uint64_t pixels;
    uint64_t sum[3];
    uint64_t gray_sum;
    uint64_t hist[3][IH_COLOUR_BINS];
} ih_colour;

/* ImageStat's mean of channel C (0 R, 1 G, 2 B; 3 the gray), or 0 for no
 * pixels. */
double ih_colour_mean(const ih_colour *colour, int c);

/* Row-major 8-bit gray pixels, `width` bytes a row, and the colour summary
 * of the picture they came from (filled by ih_decode_gray()).
 * ih_gray_release() frees the pixels and zeroes the struct; releasing a
 * zeroed one is fine. */
typedef struct ih_gray {
    int width;
    int height;
    unsigned char *pixels;
    ih_colour colour;
} ih_gray;

void ih_gray_release(ih_gray *image);

#define IH_DECODE_ERROR_MAX 160

/* Decodes the LEN bytes at DATA (of FORMAT, as ih_format_detect() said) into
 * OUT, its colour summary included.  Returns 0 on success.  On failure returns -1, leaves OUT zeroed and
 * writes a short lower-case reason into ERR (IH_DECODE_ERROR_MAX bytes), such
 * as "truncated image", "corrupt image: <codec's message>", "too many
 * pixels: 30000x30000 is over 134217728" or "not an image". */
int ih_decode_gray(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels, ih_gray *out,
                   char err[IH_DECODE_ERROR_MAX]);

/* Only the dimensions, from the header (no pixel decoding): 0 or -1 with
 * ERR, like ih_decode_gray(). */
int ih_decode_dimensions(const unsigned char *data, size_t len, ih_format format, int *width, int *height,
                         char err[IH_DECODE_ERROR_MAX]);

/* The most heap memory ih_decode_gray() takes for the LEN bytes at DATA, the
 * gray image included, judged from the header alone (no pixel decoding):
 * what a caller that bounds its memory reserves before decoding.  0 when
 * ih_decode_gray() would refuse the file before allocating (not an image, a
 * broken header, more than MAX_PIXELS).  WIDTH and HEIGHT (may be NULL) get
 * the header's size, or 0. */
uint64_t ih_decode_working_bytes(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels,
                                 int *width, int *height);

#endif
