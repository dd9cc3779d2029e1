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

#endif
