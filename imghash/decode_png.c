/* decode_png.c -- PNG to Pillow's gray, with libpng directly.
 *
 * Pillow 9.4's PNG modes (PngImagePlugin.py _MODES) decide the gray values:
 *   gray 1-bit       mode "1": 0 or 255
 *   gray 2/4-bit     "L;2"/"L;4": scaled by bit replication (x85, x17)
 *   gray 16-bit      mode "I"; convert('L') CLIPS to 0..255 (Convert.c i2l)
 *   RGB/RGBA/LA 16   the high byte of each sample
 *   palette          through PLTE; indices past it keep Pillow's gray ramp
 *   alpha, tRNS      ignored: never composited, never changes a gray value
 * so libpng is asked only to unpack samples to bytes (png_set_packing) and
 * to drop the low byte of 16-bit colour (png_set_strip_16); the rest is
 * done here row by row, through one row buffer even for interlaced images,
 * whose passes libpng gives as small images that we scatter.
 *
 * Where Pillow and libpng disagree on damage, we follow Pillow: a bad CRC
 * before the image data fails the image, a bad CRC on IDAT is ignored, an
 * IDAT cut by the end of the file is read as far as it goes, and once
 * every row is decoded libpng's complaints about what follows (a missing
 * adler32 or IEND) do not matter; only a later chunk running past the end
 * of the file fails the image, as in Pillow's load_end().  A user
 * transform counts the decoded rows so that an error raised after the last
 * one can be told from one before it.  Errors longjmp back with libpng's
 * message; warnings are dropped; nothing is printed.
 */
#include <ctype.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_formats.h"

typedef struct pngdec_segment {
    const unsigned char *bytes;
    size_t len;
    bool real; /* from the file, not made up */
} pngdec_segment;

typedef struct pngdec_job {
    png_structp png;
    png_infop info;
    const unsigned char *data;
    size_t len;
    pngdec_segment segments[6]; /* the stream libpng reads (pngdec_plan_stream) */
    int nsegments, segment;     /* how many; the one being read */
    size_t offset;              /* in that segment */
    size_t file_pos;            /* after the last byte read from DATA */
    size_t rows_end;            /* file_pos when the last row was decoded */
    unsigned char cut_header[8];
    bool truncated;
    char message[IH_DECODE_ERROR_MAX];
    png_uint_32 width, height;
    int bit_depth, color_type;
    bool interlaced;
    unsigned long rows_decoded, rows_expected;
    size_t rowbytes;
    unsigned char *row;      /* one row from libpng */
    unsigned char *gray_row; /* that row in gray, before it is scattered */
    int pass;                /* the row being read: its pass (0 if not interlaced) */
    png_uint_32 pass_row;    /* and its number within the pass */
    ih_decode_palette palette;
    ih_gray image;
} pngdec_job;

static void pngdec_on_error(png_structp png, png_const_charp message) {
    pngdec_job *job = png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", message ? message : "");
    png_longjmp(png, 1);
}

static void pngdec_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/* --- the bytes libpng reads, and what Pillow reads after the image ---
 *
 * libpng reads the file through pngdec_on_read(), which may show it two
 * small changes, each to make libpng behave as Pillow does:
 *   - a palette image without PLTE before its IDAT is refused by libpng but
 *     read by Pillow through its default gray ramp: a one-entry PLTE
 *     (black, the ramp's entry 0 too) is slipped in front of the first IDAT;
 *   - an IDAT whose length runs past the end of the file (a cut download)
 *     is read by Pillow as far as the file goes, while libpng asks for whole
 *     8 KiB pieces and fails: its length is shown as what there is, and a
 *     CRC (unchecked on IDAT) follows.
 * The file is then a list of segments, some from DATA and some made here. */

static const unsigned char pngdec_plte[15] = {0, 0, 0, 3, 'P', 'L', 'T', 'E', 0, 0, 0, 0xa7, 0x7a, 0x3d, 0xda};
static const unsigned char pngdec_fake_crc[4] = {0, 0, 0, 0};

static uint32_t pngdec_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void pngdec_add_segment(pngdec_job *job, const unsigned char *bytes, size_t n, bool real) {
    pngdec_segment *seg = &job->segments[job->nsegments++];
    *seg = (pngdec_segment){.bytes = bytes, .len = n, .real = real};
}

/* Walks the chunk headers once and lays out the segments. */
static void pngdec_plan_stream(pngdec_job *job) {
    const unsigned char *data = job->data;
    size_t len = job->len, splice = SIZE_MAX, cut = SIZE_MAX; /* at most 2 + 4 segments */
    bool palette = len >= 33 && data[25] == PNG_COLOR_TYPE_PALETTE, seen_plte = false, seen_idat = false;
    for (size_t at = 8; len >= at + 8;) {
        uint32_t n = pngdec_be32(data + at);
        bool idat = memcmp(data + at + 4, "IDAT", 4) == 0;
        if (memcmp(data + at + 4, "PLTE", 4) == 0) seen_plte = true;
        if (idat && !seen_idat && palette && !seen_plte) splice = at;
        seen_idat |= idat;
        if (n > len - at - 8) {
            if (idat) cut = at;
            break;
        }
        if (len - at - 8 - n < 4) break;
        at += (size_t)n + 12;
    }
    size_t from = 0;
    if (splice != SIZE_MAX) {
        pngdec_add_segment(job, data, splice, true);
        pngdec_add_segment(job, pngdec_plte, sizeof pngdec_plte, false);
        from = splice;
    }
    if (cut != SIZE_MAX) {
        size_t have = len - cut - 8;
        pngdec_add_segment(job, data + from, cut - from, true);
        job->cut_header[0] = (unsigned char)(have >> 24), job->cut_header[1] = (unsigned char)(have >> 16);
        job->cut_header[2] = (unsigned char)(have >> 8), job->cut_header[3] = (unsigned char)have;
        memcpy(job->cut_header + 4, "IDAT", 4);
        pngdec_add_segment(job, job->cut_header, 8, false);
        pngdec_add_segment(job, data + cut + 8, have, true);
        pngdec_add_segment(job, pngdec_fake_crc, sizeof pngdec_fake_crc, false);
    } else {
        pngdec_add_segment(job, data + from, len - from, true);
    }
}

static void pngdec_on_read(png_structp png, png_bytep buf, size_t n) {
    pngdec_job *job = png_get_io_ptr(png);
    for (size_t done = 0; done < n;) {
        if (job->segment == job->nsegments) {
            job->truncated = true;
            png_error(png, "truncated");
        }
        const pngdec_segment *seg = &job->segments[job->segment];
        size_t take = seg->len - job->offset < n - done ? seg->len - job->offset : n - done;
        memcpy(buf + done, seg->bytes + job->offset, take);
        done += take;
        job->offset += take;
        if (seg->real && take) job->file_pos = (size_t)(seg->bytes - job->data) + job->offset;
        if (job->offset == seg->len) job->segment++, job->offset = 0;
    }
}

/* Pillow's PngImageFile.load_end(): once the rows are out it skips the rest
 * of the chunk it was reading and walks the chunks up to IEND.  It stops
 * quietly at a chunk header cut short or not made of letters and digits,
 * but fails ("Truncated File Read") on a chunk whose length runs past the
 * end of the file.  LAST is the position after the last byte the rows came
 * from. */
static bool pngdec_tail_ok(const unsigned char *data, size_t len, size_t last) {
    size_t at = 8, end = len;
    while (len >= at + 8) { /* the chunk holding byte last - 1 */
        uint64_t data_end = (uint64_t)at + 8 + pngdec_be32(data + at);
        if (last <= data_end) {
            end = data_end < len ? (size_t)data_end : len;
            break;
        }
        at = (size_t)data_end + 4;
        if (at > len) return true;
    }
    for (at = end; len >= at + 12;) {
        at += 4; /* the CRC, unchecked */
        const unsigned char *type = data + at + 4;
        for (int i = 0; i < 4; i++)
            if (!isalnum(type[i]) && type[i] != '_') return true;
        if (memcmp(type, "IEND", 4) == 0) return true;
        uint32_t n = pngdec_be32(data + at);
        if (n > len - at - 8) return false;
        at += 8 + (size_t)n;
    }
    return true;
}

/* Runs on every decoded row, before libpng stores it for us. */
static void pngdec_on_row(png_structp png, png_row_infop row_info, png_bytep row) {
    (void)row_info;
    (void)row;
    pngdec_job *job = png_get_io_ptr(png);
    if (++job->rows_decoded == job->rows_expected) job->rows_end = job->file_pos;
}

static unsigned long pngdec_rows_expected(png_uint_32 width, png_uint_32 height, bool interlaced) {
    if (!interlaced) return height;
    unsigned long rows = 0;
    for (int pass = 0; pass < 7; pass++)
        if (PNG_PASS_COLS(width, pass) > 0) rows += PNG_PASS_ROWS(height, pass);
    return rows;
}

static int pngdec_fail(const pngdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    if (job->truncated) return ih_decode_fail(err, "truncated image");
    return ih_decode_fail_codec(err, job->message);
}

/* WIDTH pixels of libpng's output (after the transforms chosen below) to
 * gray, their colour added to the image's summary: R = G = B = the gray
 * value for the gray types, as Pillow's convert('RGB') of L, I, 1 and LA. */
static void pngdec_gray_row(pngdec_job *job, unsigned char *gray, const unsigned char *row, int width) {
    ih_colour *colour = &job->image.colour;
    switch (job->color_type) {
    case PNG_COLOR_TYPE_GRAY:
        if (job->bit_depth == 16) {
            for (int x = 0; x < width; x++)
                gray[x] = row[2 * x] ? 255 : row[2 * x + 1];
        } else if (job->bit_depth == 8) {
            memcpy(gray, row, (size_t)width);
        } else {
            unsigned scale = 255u / ((1u << job->bit_depth) - 1u);
            for (int x = 0; x < width; x++)
                gray[x] = (unsigned char)(row[x] * scale);
        }
        ih_colour_add_gray(colour, gray, (size_t)width);
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        for (int x = 0; x < width; x++)
            gray[x] = row[2 * x];
        ih_colour_add_gray(colour, gray, (size_t)width);
        break;
    case PNG_COLOR_TYPE_RGB: ih_decode_rgb_row(gray, row, width, 3, colour); break;
    case PNG_COLOR_TYPE_RGB_ALPHA: ih_decode_rgb_row(gray, row, width, 4, colour); break;
    case PNG_COLOR_TYPE_PALETTE:
        for (int x = 0; x < width; x++) {
            const unsigned char *rgb = job->palette.rgb[row[x]];
            gray[x] = job->palette.gray[row[x]];
            ih_colour_add_pixel(colour, rgb[0], rgb[1], rgb[2]);
        }
        break;
    }
}

/* Pillow's palette: the PLTE entries, then its default ramp. */
static void pngdec_read_palette(pngdec_job *job) {
    png_colorp entries = NULL;
    int count = 0;
    if (job->color_type != PNG_COLOR_TYPE_PALETTE) return;
    if (!png_get_PLTE(job->png, job->info, &entries, &count)) count = 0;
    ih_decode_palette_init(&job->palette, (const unsigned char *)entries, count, (int)sizeof(png_color),
                           (int)offsetof(png_color, red), (int)offsetof(png_color, green),
                           (int)offsetof(png_color, blue));
}

/* Header, limits and transforms, up to png_read_update_info. */
static int pngdec_prepare(pngdec_job *job, uint64_t max_pixels, char err[IH_DECODE_ERROR_MAX]) {
    png_structp png = job->png;
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT); /* Pillow checks CRCs before IDAT */
    png_set_benign_errors(png, 1);
    png_set_check_for_invalid_index(png, 0);
    png_read_info(png, job->info);
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE); /* ... and not after */
    int interlace;
    png_get_IHDR(png, job->info, &job->width, &job->height, &job->bit_depth, &job->color_type, &interlace, NULL, NULL);
    if (ih_decode_check_size(job->width, job->height, max_pixels, err) < 0) return -1;
    job->interlaced = interlace != PNG_INTERLACE_NONE;
    if (job->bit_depth < 8) png_set_packing(png);
    if (job->bit_depth == 16 && job->color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);
    png_set_read_user_transform_fn(png, pngdec_on_row);
    pngdec_read_palette(job);
    png_read_update_info(png, job->info);
    job->rowbytes = png_get_rowbytes(png, job->info);
    job->rows_expected = pngdec_rows_expected(job->width, job->height, job->interlaced);
    job->row = malloc(job->rowbytes);
    job->gray_row = malloc(job->width);
    if (!job->row || !job->gray_row) return ih_decode_fail(err, "out of memory: cannot hold a row");
    return ih_decode_alloc(&job->image, (int)job->width, (int)job->height, err);
}

/* The row just read (job->pass, job->pass_row) into the gray image: a whole
 * row, or the pixels of one Adam7 pass row, each where it belongs. */
static void pngdec_store_row(pngdec_job *job) {
    if (!job->interlaced) {
        pngdec_gray_row(job, job->image.pixels + (size_t)job->pass_row * job->width, job->row, (int)job->width);
        return;
    }
    int pass = job->pass;
    png_uint_32 cols = PNG_PASS_COLS(job->width, pass);
    unsigned char *out = job->image.pixels + (size_t)PNG_ROW_FROM_PASS_ROW(job->pass_row, pass) * job->width;
    pngdec_gray_row(job, job->gray_row, job->row, (int)cols);
    for (png_uint_32 k = 0; k < cols; k++)
        out[PNG_COL_FROM_PASS_COL(k, pass)] = job->gray_row[k];
}

/* Every row, in file order.  Without png_set_interlace_handling libpng
 * hands out each Adam7 pass as the small image it is (and skips the empty
 * ones), so an interlaced image needs no buffer of its own either. */
static void pngdec_read_rows(pngdec_job *job) {
    for (job->pass = 0; job->pass < (job->interlaced ? 7 : 1); job->pass++) {
        png_uint_32 rows = job->interlaced ? PNG_PASS_ROWS(job->height, job->pass) : job->height;
        if (job->interlaced && PNG_PASS_COLS(job->width, job->pass) == 0) continue;
        for (job->pass_row = 0; job->pass_row < rows; job->pass_row++) {
            png_read_row(job->png, job->row, NULL);
            pngdec_store_row(job);
        }
    }
}

/* After a longjmp: every row decoded means the error came from what follows
 * the image, which Pillow never reads; the last row is in job->row. */
static int pngdec_recover(pngdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    if (!job->image.pixels || job->rows_expected == 0 || job->rows_decoded != job->rows_expected)
        return pngdec_fail(job, err);
    pngdec_store_row(job);
    return 0;
}

static void pngdec_job_free(pngdec_job *job) {
    png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
    free(job->row);
    free(job->gray_row);
    ih_gray_release(&job->image);
    free(job);
}

static pngdec_job *pngdec_job_new(const unsigned char *data, size_t len) {
    pngdec_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    job->data = data;
    job->len = len;
    pngdec_plan_stream(job);
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, pngdec_on_error, pngdec_on_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    if (!job->png || !job->info) {
        pngdec_job_free(job);
        return NULL;
    }
    png_set_read_fn(job->png, job, pngdec_on_read);
    return job;
}

int ih_decode_png_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]) {
    pngdec_job *job = pngdec_job_new(data, len);
    if (!job) return ih_decode_fail(err, "out of memory");
    int status;
    if (setjmp(png_jmpbuf(job->png))) {
        status = pngdec_recover(job, err);
    } else {
        status = pngdec_prepare(job, max_pixels, err);
        if (status == 0) pngdec_read_rows(job);
    }
    if (status == 0 && !pngdec_tail_ok(data, len, job->rows_end)) status = ih_decode_fail(err, "truncated image");
    if (status == 0) {
        *out = job->image;
        memset(&job->image, 0, sizeof job->image);
    }
    pngdec_job_free(job);
    return status;
}

int ih_decode_png_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]) {
    /* Signature, then the IHDR chunk: length, "IHDR", width, height. */
    if (len < 24 || memcmp(data + 12, "IHDR", 4) != 0) return ih_decode_fail(err, "corrupt image: no IHDR chunk");
    uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
    uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
    if (w > INT32_MAX || h > INT32_MAX) return ih_decode_fail(err, "corrupt image: size %ux%u out of range", w, h);
    *width = (int)w;
    *height = (int)h;
    return w && h ? 0 : ih_decode_check_size(w, h, 0, err);
}
