/* decode_gif.c -- a GIF's first frame to Pillow's gray: giflib for the
 * container, Pillow's own LZW decoder for the pixels.
 *
 * Pillow 9.4 (GifImagePlugin.py _seek(0), load_prepare) shows frame 0 as a
 * "P" image the size of the logical screen, grown if the frame reaches past
 * it.  The screen starts as palette index 0, or as the frame's transparent
 * index when its graphic control extension has one; the frame's pixels are
 * then copied in unchanged (transparent ones too).  Every pixel goes through
 * the frame's palette, the local one if the frame has it, else the global
 * one, else none (index = gray); entries past the palette's end are
 * Pillow's default ramp.
 *
 * giflib reads the screen, palettes, extensions and the first image
 * descriptor from memory through a read callback; we stop there.  The
 * pixels are not giflib's: on damaged data giflib's LZW decoder goes on
 * (codes past its table, data ending early) where Pillow's fails, and on
 * a file cut after the last pixel giflib fails where Pillow succeeds.  So
 * the LZW data is decoded by a transcription of libImaging/GifDecode.c,
 * fed the way ImageFile.load() feeds it: the rest of the file from the
 * frame's data on, 64 KiB at a time, "truncated image" when the file ends
 * before the last pixel.
 */
#include <gif_lib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode_formats.h"

#define GIF_LZW_BITS 12
#define GIF_LZW_TABLE (1 << GIF_LZW_BITS)
#define GIF_PILLOW_BLOCK 65536 /* ImageFile.MAXBLOCK, the size of each read */

/* GifDecode.c's GIFDECODERSTATE and the ImagingCodecState fields it uses. */
typedef struct gifdec_lzw {
    int bits;            /* the LZW minimum code size */
    int interlace;       /* 0, or 1..3: the next pass to move to (GifDecode.c) */
    int step;            /* rows between two rows of this pass */
    int state;           /* 0 new, 1 after a clear code, 2 first code, 3 running */
    int x, y;            /* the next pixel of the frame */
    int xsize, ysize;    /* the frame */
    unsigned char *rows; /* the frame's top-left pixel on the screen */
    size_t stride;       /* the screen's width */
    bool broken;         /* GifDecode.c's IMAGING_CODEC_BROKEN */
    uint32_t bitbuffer;
    int bitcount, blocksize;
    int codesize, codemask;
    int clear, end, next;
    int lastcode;
    unsigned char lastdata;
    int bufferindex;
    unsigned char buffer[GIF_LZW_TABLE];
    uint16_t link[GIF_LZW_TABLE];
    unsigned char data[GIF_LZW_TABLE];
} gifdec_lzw;

typedef struct gifdec_job {
    const unsigned char *data;
    size_t len, pos;
    bool ran_out;        /* giflib asked for bytes past the end */
    size_t code_size_at; /* the frame's LZW code size byte, once known */
    GifFileType *gif;
    int transparency; /* -1: none */
    int screen_w, screen_h;
    ih_gray image;
    gifdec_lzw lzw;
} gifdec_job;

/* --- the container, through giflib --- */

static int gifdec_on_read(GifFileType *gif, GifByteType *buf, int n) {
    gifdec_job *job = gif->UserData;
    size_t want = n > 0 ? (size_t)n : 0, left = job->len - job->pos;
    size_t got = want < left ? want : left;
    memcpy(buf, job->data + job->pos, got);
    if (job->code_size_at >= job->pos && job->code_size_at - job->pos < got && buf[job->code_size_at - job->pos] > 8)
        buf[job->code_size_at - job->pos] = 8; /* giflib refuses more; Pillow takes up to 12, and so do we */
    job->pos += got;
    if (got < want) job->ran_out = true;
    return (int)got;
}

static int gifdec_fail(const gifdec_job *job, int code, char err[IH_DECODE_ERROR_MAX]) {
    if (job->ran_out) return ih_decode_fail(err, "truncated image");
    const char *message = GifErrorString(code);
    return ih_decode_fail_codec(err, message ? message : "gif error");
}

/* Pillow skips any byte between blocks that starts none (GifImagePlugin's
 * "illegal GIF tag" branch); giflib would stop with "wrong record type". */
static void gifdec_skip_junk(gifdec_job *job) {
    while (job->pos < job->len && job->data[job->pos] != ',' && job->data[job->pos] != '!' &&
           job->data[job->pos] != ';')
        job->pos++;
}

/* Reads one extension as Pillow's _seek(0) does: a graphic control
 * extension gives the transparent index (a later one overrides) and needs
 * 3 bytes (4 with a transparent index); an application extension needs a
 * first sub-block, and after "NETSCAPE2.0" a second one. */
static int gifdec_read_extension(gifdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    int code;
    GifByteType *ext;
    if (DGifGetExtension(job->gif, &code, &ext) == GIF_ERROR) return gifdec_fail(job, job->gif->Error, err);
    bool netscape = false;
    if (code == GRAPHICS_EXT_FUNC_CODE) {
        if (!ext || ext[0] < 3 || ((ext[1] & 1) && ext[0] < 4))
            return ih_decode_fail(err, "corrupt image: short graphic control extension");
        if (ext[1] & 1) job->transparency = ext[4];
    } else if (code == APPLICATION_EXT_FUNC_CODE) {
        if (!ext) return ih_decode_fail(err, "corrupt image: empty application extension");
        netscape = ext[0] >= 11 && memcmp(ext + 1, "NETSCAPE2.0", 11) == 0;
    }
    for (bool first = true; ext; first = false) {
        if (DGifGetExtensionNext(job->gif, &ext) == GIF_ERROR) return gifdec_fail(job, job->gif->Error, err);
        if (first && netscape && !ext) return ih_decode_fail(err, "corrupt image: empty NETSCAPE2.0 extension");
    }
    return 0;
}

/* Where the LZW code size of the image descriptor at job->pos is: after 9
 * bytes of descriptor and the local palette.  giflib only reads that byte
 * (the pixels are ours), but fails on sizes over 8, so gifdec_on_read()
 * shows it at most 8 while gifdec_read_frame() takes the real one. */
static void gifdec_find_code_size(gifdec_job *job) {
    size_t at = job->pos;
    if (job->len - at < 9) return;
    unsigned flags = job->data[at + 8];
    job->code_size_at = at + 9 + ((flags & 0x80) ? (size_t)3 << ((flags & 7) + 1) : 0);
}

/* Opens the file and reads records up to the first image descriptor (and
 * its LZW code size); sets the screen size, grown to hold the frame. */
static int gifdec_open_first_frame(gifdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    int code = 0;
    job->transparency = -1;
    job->gif = DGifOpen(job, gifdec_on_read, &code);
    if (!job->gif) return gifdec_fail(job, code, err);
    for (;;) {
        GifRecordType type;
        gifdec_skip_junk(job);
        if (DGifGetRecordType(job->gif, &type) == GIF_ERROR) return gifdec_fail(job, job->gif->Error, err);
        if (type == TERMINATE_RECORD_TYPE) return ih_decode_fail(err, "corrupt image: no frame in the GIF");
        if (type == IMAGE_DESC_RECORD_TYPE) break;
        if (type == EXTENSION_RECORD_TYPE && gifdec_read_extension(job, err) < 0) return -1;
    }
    gifdec_find_code_size(job);
    if (DGifGetImageDesc(job->gif) == GIF_ERROR) return gifdec_fail(job, job->gif->Error, err);
    const GifImageDesc *desc = &job->gif->Image;
    job->screen_w = job->gif->SWidth > desc->Left + desc->Width ? job->gif->SWidth : desc->Left + desc->Width;
    job->screen_h = job->gif->SHeight > desc->Top + desc->Height ? job->gif->SHeight : desc->Top + desc->Height;
    return 0;
}

/* The rectangle the frame's pixels go to (Pillow's decoder setimage()): a
 * frame starting at x 0 with no width means the whole screen there. */
static int gifdec_frame_tile(const gifdec_job *job, int *x, int *y, int *w, int *h, char err[IH_DECODE_ERROR_MAX]) {
    const GifImageDesc *desc = &job->gif->Image;
    if (desc->Left == 0 && desc->Width == 0) {
        *x = *y = 0, *w = job->screen_w, *h = job->screen_h;
    } else {
        *x = desc->Left, *y = desc->Top, *w = desc->Width, *h = desc->Height;
    }
    if (*w <= 0 || *h <= 0 || *x < 0 || *y < 0)
        return ih_decode_fail(err, "corrupt image: frame %dx%d at %d,%d", desc->Width, desc->Height, desc->Left,
                              desc->Top);
    return 0;
}

/* --- the pixels, as libImaging/GifDecode.c decodes them --- */

/* NEWLINE: to the first pixel of the next row of the frame, in the
 * interlaced order if need be; false when the frame is full. */
static bool gifdec_lzw_newline(gifdec_lzw *z) {
    z->x = 0;
    z->y += z->step;
    while (z->y >= z->ysize) {
        switch (z->interlace) {
        case 1: z->y = 4, z->interlace = 2; break;
        case 2: z->step = 4, z->y = 2, z->interlace = 3; break;
        case 3: z->step = 2, z->y = 1, z->interlace = 0; break;
        default: return false;
        }
    }
    return true;
}

/* Reads the next code into *CODE; false when BYTES run out first (the
 * caller then waits for more, as Pillow's decoder returns for more data:
 * it never starts a sub-block it does not hold entirely). */
static bool gifdec_lzw_code(gifdec_lzw *z, const unsigned char **ptr, size_t *bytes, int *code) {
    while (z->bitcount < z->codesize) {
        if (z->blocksize > 0) {
            z->bitbuffer |= (uint32_t) * (*ptr)++ << z->bitcount;
            (*bytes)--;
            z->blocksize--;
            z->bitcount += 8;
        } else {
            if (*bytes < 1 || *bytes < (size_t) * *ptr + 1) return false;
            z->blocksize = *(*ptr)++;
            (*bytes)--;
        }
    }
    *code = (int)(z->bitbuffer & (uint32_t)z->codemask);
    z->bitbuffer >>= z->codesize;
    z->bitcount -= z->codesize;
    return true;
}

/* A code past the first after a clear: pushes its string (but for its
 * first byte, left in lastdata) onto the buffer and extends the table. */
static bool gifdec_lzw_expand(gifdec_lzw *z, int c) {
    int thiscode = c;
    if (c > z->next) return false;
    if (c == z->next) { /* "c == next is allowed. not sure why." */
        if (z->bufferindex <= 0) return false;
        z->buffer[--z->bufferindex] = z->lastdata;
        c = z->lastcode;
    }
    while (c >= z->clear) {
        if (z->bufferindex <= 0 || c >= GIF_LZW_TABLE) return false;
        z->buffer[--z->bufferindex] = z->data[c];
        c = z->link[c];
    }
    z->lastdata = (unsigned char)c;
    if (z->next < GIF_LZW_TABLE) {
        z->data[z->next] = (unsigned char)c;
        z->link[z->next] = (uint16_t)z->lastcode;
        if (z->next == z->codemask && z->codesize < GIF_LZW_BITS) {
            z->codesize++;
            z->codemask = (1 << z->codesize) - 1;
        }
        z->next++;
    }
    z->lastcode = thiscode;
    return true;
}

/* Writes COUNT pixels; false once the frame is full. */
static bool gifdec_lzw_put(gifdec_lzw *z, const unsigned char *p, int count) {
    for (int i = 0; i < count; i++) {
        z->rows[(size_t)z->y * z->stride + (size_t)z->x] = p[i];
        if (++z->x >= z->xsize && !gifdec_lzw_newline(z)) return false;
    }
    return true;
}

/* ImagingGifDecode(): consumes what it can of BYTES at BUF and returns how
 * much, or -1 when the frame is full (or, with z->broken, on bad data). */
static long gifdec_lzw_decode(gifdec_lzw *z, const unsigned char *buf, size_t bytes) {
    const unsigned char *ptr = buf;
    if (z->state == 0) {
        z->clear = 1 << z->bits;
        z->end = z->clear + 1;
        z->step = z->interlace ? 8 : 1;
        z->state = 1;
    }
    for (;;) {
        if (z->state == 1) {
            z->next = z->clear + 2;
            z->codesize = z->bits + 1;
            z->codemask = (1 << z->codesize) - 1;
            z->bufferindex = GIF_LZW_TABLE;
            z->state = 2;
        }
        const unsigned char *p;
        int count, c;
        if (z->bufferindex < GIF_LZW_TABLE) { /* the rest of a string */
            count = GIF_LZW_TABLE - z->bufferindex;
            p = &z->buffer[z->bufferindex];
            z->bufferindex = GIF_LZW_TABLE;
        } else {
            if (!gifdec_lzw_code(z, &ptr, &bytes, &c)) return ptr - buf;
            if (c == z->clear) {
                if (z->state != 2) z->state = 1;
                continue;
            }
            if (c == z->end) return ptr - buf;
            count = 1;
            p = &z->lastdata;
            bool valid = z->state == 2 ? c <= z->clear : gifdec_lzw_expand(z, c);
            if (!valid) {
                z->broken = true;
                return -1;
            }
            if (z->state == 2) { /* the first code after a clear is a pixel */
                z->lastdata = (unsigned char)c;
                z->lastcode = c;
                z->state = 3;
            }
        }
        if (!gifdec_lzw_put(z, p, count)) return -1;
    }
}

/* ImageFile.load()'s loop: read 64 KiB more, decode what is held, keep the
 * rest; the end of the file before the end of the frame is "truncated". */
static int gifdec_lzw_run(gifdec_lzw *z, const unsigned char *data, size_t len, size_t offset,
                          char err[IH_DECODE_ERROR_MAX]) {
    size_t start = offset, held = offset;
    for (;;) {
        if (held >= len) return ih_decode_fail(err, "truncated image");
        held = len - held > GIF_PILLOW_BLOCK ? held + GIF_PILLOW_BLOCK : len;
        long n = gifdec_lzw_decode(z, data + start, held - start);
        if (n < 0) return z->broken ? ih_decode_fail(err, "corrupt image: broken data stream") : 0;
        start += (size_t)n;
    }
}

static int gifdec_read_frame(gifdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    const GifImageDesc *desc = &job->gif->Image;
    size_t screen = (size_t)job->screen_w * (size_t)job->screen_h;
    memset(job->image.pixels, job->transparency >= 0 ? job->transparency : 0, screen);
    gifdec_lzw *z = &job->lzw;
    int x, y;
    if (gifdec_frame_tile(job, &x, &y, &z->xsize, &z->ysize, err) < 0) return -1;
    z->bits = job->data[job->code_size_at]; /* the real one (see gifdec_find_code_size) */
    if (z->bits > GIF_LZW_BITS) return ih_decode_fail(err, "corrupt image: LZW code size %d", z->bits);
    z->interlace = desc->Interlace ? 1 : 0;
    z->stride = (size_t)job->screen_w;
    z->rows = job->image.pixels + (size_t)y * z->stride + (size_t)x;
    if (gifdec_lzw_run(z, job->data, job->len, job->pos, err) < 0) return -1;

    const ColorMapObject *map = desc->ColorMap ? desc->ColorMap : job->gif->SColorMap;
    ih_decode_palette palette;
    ih_decode_palette_init(&palette, map ? (const unsigned char *)map->Colors : NULL, map ? map->ColorCount : 0,
                           (int)sizeof(GifColorType), 0, 1, 2);
    uint64_t counts[256] = {0};
    for (size_t i = 0; i < screen; i++) {
        counts[job->image.pixels[i]]++;
        job->image.pixels[i] = palette.gray[job->image.pixels[i]];
    }
    ih_colour_add_indexed(&job->image.colour, &palette, counts);
    return 0;
}

static void gifdec_job_free(gifdec_job *job) {
    int code;
    if (job->gif) DGifCloseFile(job->gif, &code);
    ih_gray_release(&job->image);
    free(job);
}

static gifdec_job *gifdec_job_new(const unsigned char *data, size_t len) {
    gifdec_job *job = calloc(1, sizeof *job); /* the LZW tables make it 12 KiB */
    if (!job) return NULL;
    job->data = data;
    job->len = len;
    job->code_size_at = SIZE_MAX;
    return job;
}

int ih_decode_gif_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                       char err[IH_DECODE_ERROR_MAX]) {
    gifdec_job *job = gifdec_job_new(data, len);
    if (!job) return ih_decode_fail(err, "out of memory");
    int status = gifdec_open_first_frame(job, err);
    if (status == 0) status = ih_decode_check_size((uint64_t)job->screen_w, (uint64_t)job->screen_h, max_pixels, err);
    if (status == 0) status = ih_decode_alloc(&job->image, job->screen_w, job->screen_h, err);
    if (status == 0) status = gifdec_read_frame(job, err);
    if (status == 0) {
        *out = job->image;
        memset(&job->image, 0, sizeof job->image);
    }
    gifdec_job_free(job);
    return status;
}

int ih_decode_gif_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]) {
    gifdec_job *job = gifdec_job_new(data, len);
    if (!job) return ih_decode_fail(err, "out of memory");
    int status = gifdec_open_first_frame(job, err);
    if (status == 0) {
        *width = job->screen_w;
        *height = job->screen_h;
    }
    gifdec_job_free(job);
    return status;
}
