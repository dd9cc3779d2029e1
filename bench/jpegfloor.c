/* jpegfloor.c -- bench_jpegfloor: JPEG decoding alone, in one process, the
 * floor bench/hash.sh holds imgfeed-hasher against.
 *
 *   bench_jpegfloor [--list FILE] [FILE...]
 *
 * Decodes every FILE (and every line of the --list FILE, one path a line),
 * in the order given, and prints one line per file on stdout ("PATH WIDTH
 * HEIGHT COMPONENTS", or "PATH error: WHY"), then a summary on stderr: the
 * files, their megapixels, the wall and CPU time (user and system, from
 * getrusage) and files per second.  Exits 1 if any file failed, 2 on bad
 * arguments.
 *
 * No exact hash can skip decoding, so decoding is what hashing is measured
 * against.  The floor does what imgfeed-hasher's JPEG decoder
 * (imghash/decode_jpeg.c) asks of libjpeg-turbo, with Pillow's settings, and
 * nothing more: the file read whole into memory first (as `imgfeed-hasher
 * hash` reads it, with the same malloc tuning), jpeg_mem_src, the output
 * colour space Pillow asks for (gray from a 1-component file, RGBX from a
 * 3-component one, CMYK from a 4-component one), JDCT_ISLOW, fancy
 * upsampling, no scaling (imagehash never calls draft()), scanlines read 16
 * at a time into one batch laid out as the hasher lays it.  What it leaves
 * out is the hasher's own work past the decoder: the checksums, the gray
 * image and its conversion, the resizes and the hashes.  Started once for
 * all the files, it pays one process start, as the hasher does: libjpeg's
 * own djpeg, started once a file, paid one a file on the floor's side only.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#include "hashcli.h"

#define FLOOR_BATCH_ROWS 16 /* scanlines a jpeg_read_scanlines call, as the hasher reads them */

typedef struct floor_guard {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to it */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} floor_guard;

typedef struct floor_totals {
    long files, failed;
    double megapixels;
} floor_totals;

static void floor_on_error(j_common_ptr cinfo) {
    floor_guard *guard = (floor_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, guard->message);
    longjmp(guard->jump, 1);
}

/* Warnings and trace messages: counted by libjpeg, never printed. */
static void floor_on_output(j_common_ptr cinfo) { (void)cinfo; }


/* The state one decode needs, kept off the stack that setjmp guards. */
typedef struct floor_job {
    struct jpeg_decompress_struct cinfo;
    floor_guard guard;
    unsigned char *batch;
} floor_job;

/* Decodes the LEN bytes at DATA, every scanline, into a batch that is
 * overwritten 16 rows at a time.  Returns 0 with the size in *WIDTH,
 * *HEIGHT, *COMPONENTS, or -1 with libjpeg's message in JOB->guard. */
static int floor_decode(floor_job *job, const unsigned char *data, size_t len, int *width, int *height,
                        int *components) {
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    memset(job, 0, sizeof *job);
    cinfo->err = jpeg_std_error(&job->guard.pub);
    job->guard.pub.error_exit = floor_on_error;
    job->guard.pub.output_message = floor_on_output;
    if (setjmp(job->guard.jump)) {
        jpeg_destroy_decompress(cinfo);
        free(job->batch);
        return -1;
    }
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    /* Pillow's output colour spaces, as imghash/decode_jpeg.c asks for them. */
    switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo->out_color_space = JCS_EXT_RGBX; break;
    case 4: cinfo->out_color_space = JCS_CMYK; break;
    default:
        snprintf(job->guard.message, sizeof job->guard.message, "cannot handle %d-layer images", cinfo->num_components);
        jpeg_destroy_decompress(cinfo);
        return -1;
    }
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);
    /* The hasher's batch: rows one byte past a 32-byte boundary (see
     * jpegdec_batch_row in imghash/decode_jpeg.c). */
    size_t stride = (size_t)cinfo->output_width * (size_t)cinfo->output_components + 64;
    job->batch = malloc(stride * FLOOR_BATCH_ROWS);
    if (!job->batch) {
        snprintf(job->guard.message, sizeof job->guard.message, "out of memory: cannot hold %d scanlines",
                 FLOOR_BATCH_ROWS);
        jpeg_destroy_decompress(cinfo);
        return -1;
    }
    JSAMPROW rows[FLOOR_BATCH_ROWS];
    for (int i = 0; i < FLOOR_BATCH_ROWS; i++)
        rows[i] = job->batch + 1 + (size_t)i * stride;
    while (cinfo->output_scanline < cinfo->output_height) {
        JDIMENSION want = cinfo->output_height - cinfo->output_scanline;
        if (want > FLOOR_BATCH_ROWS) want = FLOOR_BATCH_ROWS;
        if (jpeg_read_scanlines(cinfo, rows, want) == 0) {
            snprintf(job->guard.message, sizeof job->guard.message, "truncated image");
            jpeg_destroy_decompress(cinfo);
            free(job->batch);
            return -1;
        }
    }
    jpeg_finish_decompress(cinfo);
    *width = (int)cinfo->output_width;
    *height = (int)cinfo->output_height;
    *components = cinfo->num_components;
    jpeg_destroy_decompress(cinfo);
    free(job->batch);
    return 0;
}

/* Reads and decodes PATH, prints its line, adds it to TOTALS. */
static void floor_file(const char *path, floor_job *job, floor_totals *totals) {
    unsigned char *data = NULL;
    size_t len = 0;
    int width = 0, height = 0, components = 0;
    totals->files++;
    if (hashcli_read(path, SIZE_MAX, &data, &len) != 0) { /* the hasher's own reader */
        printf("%s error: cannot read: %s\n", path, strerror(errno));
        totals->failed++;
        return;
    }
    if (floor_decode(job, data, len, &width, &height, &components) < 0) {
        printf("%s error: %s\n", path, job->guard.message);
        totals->failed++;
    } else {
        printf("%s %d %d %d\n", path, width, height, components);
        totals->megapixels += (double)width * height / 1e6;
    }
    free(data);
}

/* Every line of LIST, a path each; returns 0, or -1 if LIST cannot be read. */
static int floor_list(const char *list, floor_job *job, floor_totals *totals) {
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "bench_jpegfloor: cannot open list %s: %s\n", list, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[--n] = '\0';
        if (n > 0) floor_file(line, job, totals);
    }
    free(line);
    fclose(f);
    return 0;
}

static double floor_seconds(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
    /* As hashcli_tune_malloc: large blocks from the heap, kept for the next file. */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    floor_job *job = malloc(sizeof *job);
    if (!job) {
        fprintf(stderr, "bench_jpegfloor: out of memory\n");
        return 2;
    }
    floor_totals totals = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0 && i + 1 < argc) {
            if (floor_list(argv[++i], job, &totals) < 0) {
                free(job);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 || argv[i][0] == '-') {
            fprintf(stderr, "usage: bench_jpegfloor [--list FILE] [FILE...]\n");
            free(job);
            return 2;
        } else {
            floor_file(argv[i], job, &totals);
        }
    }
    free(job);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &end);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    double user = floor_seconds(ru.ru_utime), sys = floor_seconds(ru.ru_stime);
    fprintf(stderr,
            "bench_jpegfloor: %ld files (%ld failed), %.1f megapixels: %.3f s wall, %.3f s CPU (user %.3f, "
            "system %.3f): %.1f files/s, %.1f megapixels/s of CPU\n",
            totals.files, totals.failed, totals.megapixels, wall, user + sys, user, sys,
            wall > 0 ? (double)totals.files / wall : 0.0, user + sys > 0 ? totals.megapixels / (user + sys) : 0.0);
    return totals.failed ? 1 : 0;
}
