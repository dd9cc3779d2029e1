/* decode_jpeg.c -- JPEG to Pillow's gray, with libjpeg-turbo directly.
 *
 * Pillow 9.4 (JpegImagePlugin.py, libImaging/JpegDecode.c) decodes with
 * libjpeg's defaults (JDCT_ISLOW, fancy upsampling, block smoothing) and
 * asks for RGB (as RGBX) from a 3-component file, gray from a 1-component
 * file and CMYK from a 4-component one, which it unpacks as "CMYK;I"
 * (inverted, Adobe's convention, whatever the markers say) and turns into
 * RGB with cmyk2rgb before the L formula.  We ask the same library for the
 * same output and convert each batch of scanlines to gray at once, adding
 * up its colour (ih_colour) in the same sweep: no whole RGB image is ever
 * held, and a gray JPEG decodes straight into the result.
 *
 * Errors: libjpeg's error_exit longjmps back here with its message; its
 * warnings are ignored as Pillow ignores them, except "premature end of
 * JPEG file".  Pillow's decoder suspends where the data ends and then fails
 * with "image file is truncated" unless every scanline was already read, so
 * that warning before the last scanline makes the image "truncated image";
 * in jpeg_finish_decompress it is harmless, as in Pillow (and so is any
 * error after it, which only libjpeg's fake end marker causes), while an
 * error there before the data ends fails the image, again as in Pillow.
 * Nothing is printed.
 *
 * One deliberate difference: a progressive file with more than
 * JPEG_MAX_SCANS scans is refused (real files have about ten; thousands of
 * tiny scans are a known way to burn CPU), where Pillow would go on.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "decode_formats.h"

#define JPEG_MAX_SCANS 1000
#define JPEG_BATCH_ROWS 16

typedef struct jpegdec_guard {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    bool truncated;      /* "premature end of JPEG file" */
    bool too_many_scans; /* the progress monitor gave up */
    char message[JMSG_LENGTH_MAX];
} jpegdec_guard;

static void jpegdec_on_error(j_common_ptr cinfo) {
    jpegdec_guard *guard = (jpegdec_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, guard->message);
    longjmp(guard->jump, 1);
}

/* Warnings (level -1) and trace messages: none are printed. */
static void jpegdec_on_message(j_common_ptr cinfo, int level) {
    jpegdec_guard *guard = (jpegdec_guard *)cinfo->err;
    if (level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) guard->truncated = true;
    }
}

static void jpegdec_on_output(j_common_ptr cinfo) { (void)cinfo; }

static void jpegdec_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    jpegdec_guard *guard = (jpegdec_guard *)cinfo->err;
    if (dinfo->input_scan_number > JPEG_MAX_SCANS) {
        guard->too_many_scans = true;
        longjmp(guard->jump, 1);
    }
}

static void jpegdec_guard_init(jpegdec_guard *guard, struct jpeg_decompress_struct *cinfo) {
    memset(guard, 0, sizeof *guard);
    cinfo->err = jpeg_std_error(&guard->pub);
    guard->pub.error_exit = jpegdec_on_error;
    guard->pub.emit_message = jpegdec_on_message;
    guard->pub.output_message = jpegdec_on_output;
    guard->progress.progress_monitor = jpegdec_on_progress;
}

/* The error text after a longjmp or a truncation. */
static int jpegdec_fail(const jpegdec_guard *guard, char err[IH_DECODE_ERROR_MAX]) {
    if (guard->too_many_scans)
        return ih_decode_fail(err, "corrupt image: more than %d progressive scans", JPEG_MAX_SCANS);
    if (guard->truncated) return ih_decode_fail(err, "truncated image");
    return ih_decode_fail_codec(err, guard->message);
}

/* Pillow's CMYK;I unpacking then cmyk2rgb (Convert.c) then L; the RGB
 * into COLOUR. */
static void jpegdec_cmyk_row(unsigned char *gray, const unsigned char *cmyk, int count, ih_colour *colour) {
    for (int x = 0; x < count; x++, cmyk += 4) {
        int nk = cmyk[3]; /* 255 - (255 - k) */
        unsigned rgb[3];
        for (int i = 0; i < 3; i++) {
            int t = (255 - cmyk[i]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            rgb[i] = (unsigned)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        gray[x] = ih_decode_luma(rgb[0], rgb[1], rgb[2]);
        ih_colour_add_pixel(colour, rgb[0], rgb[1], rgb[2]);
    }
}

/* The state one decode needs, kept off the stack that setjmp guards. */
typedef struct jpegdec_job {
    struct jpeg_decompress_struct cinfo;
    jpegdec_guard guard;
    unsigned char *batch; /* JPEG_BATCH_ROWS rows of RGBX or CMYK */
    size_t batch_stride;
    bool rows_done; /* every scanline read: only jpeg_finish_decompress is left */
    ih_gray image;
} jpegdec_job;

static void jpegdec_job_free(jpegdec_job *job) {
    jpeg_destroy_decompress(&job->cinfo);
    free(job->batch);
    ih_gray_release(&job->image);
    free(job);
}

/* Where batch row I starts.  libjpeg-turbo's SIMD colour conversion writes
 * rows that start on a 32-byte boundary with non-temporal stores, which
 * bypass the cache: reading them back for the gray conversion then costs a
 * trip to memory for every line (as much as the whole decode).  So each row
 * starts one byte past such a boundary. */
static unsigned char *jpegdec_batch_row(const jpegdec_job *job, int i) {
    return job->batch + 1 + (size_t)i * job->batch_stride;
}

/* Reads every scanline into job->image; libjpeg errors longjmp out. */
static int jpegdec_read_rows(jpegdec_job *job, char err[IH_DECODE_ERROR_MAX]) {
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    int width = (int)cinfo->output_width;
    bool gray_out = cinfo->out_color_space == JCS_GRAYSCALE, cmyk = cinfo->out_color_space == JCS_CMYK;
    JSAMPROW rows[JPEG_BATCH_ROWS];
    if (!gray_out) {
        job->batch_stride = (size_t)width * (size_t)cinfo->output_components + 64;
        job->batch = malloc(job->batch_stride * JPEG_BATCH_ROWS);
        if (!job->batch) return ih_decode_fail(err, "out of memory: cannot hold %d scanlines", JPEG_BATCH_ROWS);
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        int y = (int)cinfo->output_scanline;
        int want = (int)cinfo->output_height - y;
        if (want > JPEG_BATCH_ROWS) want = JPEG_BATCH_ROWS;
        for (int i = 0; i < want; i++)
            rows[i] = gray_out ? job->image.pixels + (size_t)(y + i) * (size_t)width : jpegdec_batch_row(job, i);
        int got = (int)jpeg_read_scanlines(cinfo, rows, (JDIMENSION)want);
        if (job->guard.truncated || got <= 0) return jpegdec_fail(&job->guard, err);
        ih_colour *colour = &job->image.colour;
        if (gray_out) ih_colour_add_gray(colour, rows[0], (size_t)got * (size_t)width);
        for (int i = 0; i < got && !gray_out; i++) {
            unsigned char *gray = job->image.pixels + (size_t)(y + i) * (size_t)width;
            if (cmyk)
                jpegdec_cmyk_row(gray, rows[i], width, colour);
            else
                ih_decode_rgb_row(gray, rows[i], width, 4, colour);
        }
    }
    return 0;
}

/* Header, checks, output colour space; then the rows. */
static int jpegdec_run(jpegdec_job *job, const unsigned char *data, size_t len, uint64_t max_pixels,
                       char err[IH_DECODE_ERROR_MAX]) {
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    if (job->guard.truncated) return jpegdec_fail(&job->guard, err);
    if (ih_decode_check_size(cinfo->image_width, cinfo->image_height, max_pixels, err) < 0) return -1;
    switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo->out_color_space = JCS_EXT_RGBX; break; /* Pillow's choice too: same values as JCS_RGB */
    case 4: cinfo->out_color_space = JCS_CMYK; break;
    default: return ih_decode_fail(err, "corrupt image: cannot handle %d-layer images", cinfo->num_components);
    }
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    cinfo->progress = &job->guard.progress;
    jpeg_start_decompress(cinfo);
    if (job->guard.truncated) return jpegdec_fail(&job->guard, err);
    if (ih_decode_alloc(&job->image, (int)cinfo->output_width, (int)cinfo->output_height, err) < 0) return -1;
    if (jpegdec_read_rows(job, err) < 0) return -1;
    job->rows_done = true;
    jpeg_finish_decompress(cinfo);
    return 0;
}

int ih_decode_jpeg_gray(const unsigned char *data, size_t len, uint64_t max_pixels, ih_gray *out,
                        char err[IH_DECODE_ERROR_MAX]) {
    jpegdec_job *job = calloc(1, sizeof *job);
    if (!job) return ih_decode_fail(err, "out of memory");
    jpegdec_guard_init(&job->guard, &job->cinfo);
    int status;
    if (setjmp(job->guard.jump)) {
        /* Past the last scanline, Pillow stops where the data ends: an error
         * that the end of the data (libjpeg's fake EOI) brings is no error. */
        bool after_end = job->rows_done && job->guard.truncated && !job->guard.too_many_scans;
        status = after_end ? 0 : jpegdec_fail(&job->guard, err);
    } else {
        jpeg_create_decompress(&job->cinfo);
        status = jpegdec_run(job, data, len, max_pixels, err);
    }
    if (status == 0) {
        *out = job->image;
        memset(&job->image, 0, sizeof job->image);
    }
    jpegdec_job_free(job);
    return status;
}

int ih_decode_jpeg_size(const unsigned char *data, size_t len, int *width, int *height, char err[IH_DECODE_ERROR_MAX]) {
    jpegdec_job *job = calloc(1, sizeof *job);
    if (!job) return ih_decode_fail(err, "out of memory");
    jpegdec_guard_init(&job->guard, &job->cinfo);
    int status;
    if (setjmp(job->guard.jump)) {
        status = jpegdec_fail(&job->guard, err);
    } else {
        jpeg_create_decompress(&job->cinfo);
        jpeg_mem_src(&job->cinfo, data, (unsigned long)len);
        jpeg_read_header(&job->cinfo, TRUE);
        if (job->guard.truncated)
            status = jpegdec_fail(&job->guard, err);
        else
            status = ih_decode_check_size(job->cinfo.image_width, job->cinfo.image_height, 0, err);
        *width = (int)job->cinfo.image_width;
        *height = (int)job->cinfo.image_height;
    }
    jpegdec_job_free(job);
    return status;
}

/* What decoding needs besides the gray image (ih_decode_working_bytes): the
 * whole-image coefficient buffer of a progressive or multi-scan file
 * (jdcoefct.c: 64 JCOEFs, 128 bytes, a block of each component, the
 * component's blocks rounded up to its sampling factors), libjpeg's row
 * buffers (jdmainct.c, jdsample.c: a few sample rows of each component,
 * bounded here by 48 rows of max_v_samp_factor each), our batch of
 * scanlines and libjpeg's pools. */
int ih_decode_jpeg_memory(const unsigned char *data, size_t len, uint64_t *bytes, int *width, int *height,
                          char err[IH_DECODE_ERROR_MAX]) {
    jpegdec_job *job = calloc(1, sizeof *job);
    if (!job) return ih_decode_fail(err, "out of memory");
    jpegdec_guard_init(&job->guard, &job->cinfo);
    int status;
    if (setjmp(job->guard.jump)) {
        status = jpegdec_fail(&job->guard, err);
    } else {
        struct jpeg_decompress_struct *cinfo = &job->cinfo;
        jpeg_create_decompress(cinfo);
        jpeg_mem_src(cinfo, data, (unsigned long)len);
        jpeg_read_header(cinfo, TRUE);
        if (job->guard.truncated) {
            status = jpegdec_fail(&job->guard, err);
        } else {
            status = ih_decode_check_size(cinfo->image_width, cinfo->image_height, 0, err);
            *width = (int)cinfo->image_width;
            *height = (int)cinfo->image_height;
        }
        if (status == 0) {
            uint64_t w = cinfo->image_width, ncomp = (uint64_t)cinfo->num_components, total = 0;
            if (jpeg_has_multiple_scans(cinfo)) {
                for (int c = 0; c < cinfo->num_components; c++) {
                    const jpeg_component_info *comp = &cinfo->comp_info[c];
                    uint64_t h = comp->h_samp_factor > 0 ? (uint64_t)comp->h_samp_factor : 1;
                    uint64_t v = comp->v_samp_factor > 0 ? (uint64_t)comp->v_samp_factor : 1;
                    uint64_t wb = (comp->width_in_blocks + h - 1) / h * h;
                    uint64_t hb = (comp->height_in_blocks + v - 1) / v * v;
                    total += wb * hb * 128;
                }
            }
            uint64_t vmax = cinfo->max_v_samp_factor > 0 ? (uint64_t)cinfo->max_v_samp_factor : 1;
            total += ncomp * (w + 64) * 48 * vmax;             /* sample rows */
            total += (uint64_t)JPEG_BATCH_ROWS * (w * 4 + 64); /* our batch */
            total += 256 * 1024;                               /* the pools, huffman and quantisation tables */
            *bytes = total;
        }
    }
    jpegdec_job_free(job);
    return status;
}
