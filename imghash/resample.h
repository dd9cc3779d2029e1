/* resample.h -- Pillow's LANCZOS resize of an 8-bit gray image, exactly
 * (ih_resample_lanczos).
 *
 * ih_resample_lanczos() gives the bytes of Pillow 9.4's
 * `im.resize((out_w, out_h), Image.LANCZOS)` on a mode "L" image: the same
 * filter coefficients (computed in double, then rounded to 22-bit fixed
 * point), the same two separable integer passes (horizontal first, each
 * skipped when its side keeps its size) and the same rounding and clipping.
 * The perceptual hashes (hashes.c) start from these bytes, so a single
 * different byte can flip a hash bit.
 *
 * Thread-safe: the filter cache inside (resample.c) is shared by all threads
 * under a lock; its few entries live until the process exits.
 */
#ifndef IH_RESAMPLE_H
#define IH_RESAMPLE_H

/* Resizes the IN_W x IN_H pixels at IN (row-major, IN_W bytes a row) to
 * OUT_W x OUT_H into OUT, which the caller owns (OUT_W * OUT_H bytes; it
 * must not overlap IN).  All sizes must be at least 1.  Returns 0, or -1
 * when memory for the coefficient tables or the intermediate image cannot
 * be had (OUT is then undefined). */
int ih_resample_lanczos(const unsigned char *in, int in_w, int in_h, unsigned char *out, int out_w, int out_h);

/* Up to this many sizes at once. */
#define IH_RESAMPLE_MAX_TARGETS 8

/* One size wanted of ih_resample_lanczos_many(): OUT_W x OUT_H bytes into
 * OUT, which the caller owns. */
typedef struct ih_resample_target {
    int out_w, out_h;
    unsigned char *out;
} ih_resample_target;

/* ih_resample_lanczos() to COUNT (at most IH_RESAMPLE_MAX_TARGETS) sizes
 * at once, each target's bytes the same as alone: the horizontal passes
 * of all of them run in one sweep over IN, a band of rows at a time, so
 * that a large image is read from memory once rather than once a size.
 * Holds every target's intermediate image at the same time.  Returns 0, or
 * -1 without memory (the outputs are then undefined). */
int ih_resample_lanczos_many(const unsigned char *in, int in_w, int in_h, ih_resample_target *targets, int count);

#endif
