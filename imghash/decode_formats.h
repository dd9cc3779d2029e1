/* decode_formats.h -- what decode.c shares with the per-format decoders.
 *
 * Private to the decoders (decode.c, decode_jpeg.c, decode_png.c,
 * decode_gif.c, decode_webp.c, decode_bmp.c, decode_gd.c): each format has
 * a function that decodes to gray and one that reads only the header's
 * dimensions, with ih_decode_gray()'s contract (0, or -1 with ERR set and OUT
 * left zeroed).  decode.c checks the arguments and dispatches; the helpers
 * below are the pieces every decoder needs: the error text, the pixel-count
 * check that must come before any pixel memory, the gray allocation and
 * Pillow's luma formula.
 */
#ifndef IH_DECODE_FORMATS_H
#define IH_DECODE_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

/* No side may be longer than this, whatever max_pixels says: it keeps every
 * row size and offset far from int overflow (libpng's default limit). */
#define IH_DECODE_MAX_SIDE 1000000

int ih_decode_jpeg_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                        char err[IH_DECODE_ERROR_MAX]);
int ih_decode_jpeg_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]);
/* The header's size, and in *BYTES the memory libjpeg and ih_decode_jpeg_gray
 * take besides the gray image, which depends on more than the size (scans,
 * components, sampling). */
int ih_decode_jpeg_memory(const unsigned char *data, size_t len, uint64_t *bytes, int *width, int *height,
                          char err[IH_DECODE_ERROR_MAX]);

int ih_decode_png_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]);
int ih_decode_png_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]);

int ih_decode_gif_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]);
int ih_decode_gif_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]);

int ih_decode_webp_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                        char err[IH_DECODE_ERROR_MAX]);
int ih_decode_webp_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]);

int ih_decode_bmp_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]);
int ih_decode_bmp_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]);

/* TIFF, AVIF and HEIF, through libgd (FORMAT says which). */
int ih_decode_gd_gray(const unsigned char *data, size_t len, ih_format format, uint64_t max_pixels, ih_gray *out,
                      char err[IH_DECODE_ERROR_MAX]);
int ih_decode_gd_size(const unsigned char *data, size_t len, ih_format format, int *width, int *height,
                      char err[IH_DECODE_ERROR_MAX]);

/* printf into ERR (truncated to IH_DECODE_ERROR_MAX); always returns -1. */
int ih_decode_fail(char err[IH_DECODE_ERROR_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "corrupt image: <codec message>", the message's first word lowered if it
 * is a plain word, trailing newlines dropped; always returns -1. */
int ih_decode_fail_codec(char err[IH_DECODE_ERROR_MAX], const char *message);

/* 0 when a WIDTH x HEIGHT image may be decoded: both sides at least 1 and at
 * most IH_DECODE_MAX_SIDE, and width * height <= MAX_PIXELS (0: no limit).
 * Otherwise -1 with "too many pixels: ..." or "corrupt image: ..." in ERR.
 * Every decoder calls it on the header's size before allocating pixels. */
int ih_decode_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, char err[IH_DECODE_ERROR_MAX]);

/* Allocates OUT's pixels for a checked size (malloc, so that a huge image
 * fails with "out of memory" rather than aborting); OUT's colour summary
 * starts at zero. */
int ih_decode_alloc(ih_gray *out, int width, int height, char err[IH_DECODE_ERROR_MAX]);

/* Pillow's L from R, G, B (Convert.c, L24): ITU-R 601-2 luma in 16-bit
 * fixed point, rounded. */
static inline unsigned char ih_decode_luma(unsigned r, unsigned g, unsigned b) {
    return (unsigned char)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* Gray of COUNT pixels of STEP bytes each (R, G, B first; 3 for RGB, 4 for
 * RGBA or RGBX, whose fourth byte is ignored as Pillow ignores alpha), and
 * their R, G and B added to COLOUR. */
void ih_decode_rgb_row(unsigned char *restrict gray, const unsigned char *restrict rgb, int count, int step,
                       ih_colour *colour);

/* Adds COUNT pixels of a gray picture (R = G = B = the gray value, as
 * Pillow's L, I, 1 and LA give convert('RGB')) to COLOUR's R, G and B. */
void ih_colour_add_gray(ih_colour *colour, const unsigned char *gray, size_t count);

/* Adds one pixel's R, G, B to COLOUR (the decoders' scalar paths). */
static inline void ih_colour_add_pixel(ih_colour *colour, unsigned r, unsigned g, unsigned b) {
    colour->sum[0] += r;
    colour->sum[1] += g;
    colour->sum[2] += b;
    colour->hist[0][r >> IH_COLOUR_BIN_SHIFT]++;
    colour->hist[1][g >> IH_COLOUR_BIN_SHIFT]++;
    colour->hist[2][b >> IH_COLOUR_BIN_SHIFT]++;
}

/* A palette as Pillow holds it: 256 entries, the file's first and the rest
 * Pillow's default ramp (entry i is R = G = B = i), as gray values and as
 * R, G, B. */
typedef struct ih_decode_palette {
    unsigned char gray[256];
    unsigned char rgb[256][3];
} ih_decode_palette;

/* Adds to COLOUR the pixels of an indexed picture: COUNTS[i] pixels of
 * palette entry i. */
void ih_colour_add_indexed(ih_colour *colour, const ih_decode_palette *palette, const uint64_t counts[256]);

/* Sets PALETTE from COUNT entries of STEP bytes at ENTRIES, with the red,
 * green and blue bytes at offsets R, G, B (COUNT is clipped to 256). */
void ih_decode_palette_init(ih_decode_palette *palette, const unsigned char *entries, int count, int step, int r, int g,
                            int b);

#endif
