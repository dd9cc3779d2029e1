/* haar.h -- the wavelet part of imagehash's whash, as pywt 1.1.1 computes it
 * (ih_haar_whash_ll).
 *
 * whash (hashes.c) resizes the image to SCALE x SCALE and then, on the
 * pixels divided by 255, runs pywt.wavedec2(.., 'haar', level=log2(SCALE)),
 * zeroes the lowest approximation, rebuilds the image with pywt.waverec2 and
 * decomposes it again with wavedec2 down to SIZE x SIZE, keeping the
 * approximation.  ih_haar_whash_ll() does all of that with the same
 * floating-point operations as pywt's C code (see haar.c), without building
 * the whole coefficient list.
 */
#ifndef IH_HAAR_H
#define IH_HAAR_H

/* From the SCALE x SCALE gray PIXELS (row-major; SCALE a power of two),
 * writes the SIZE x SIZE approximation described above into OUT (SIZE a
 * power of two, 1 <= SIZE <= SCALE; OUT holds SIZE * SIZE doubles, owned by
 * the caller).  Returns 0, or -1 when the working memory (about SCALE^2 / 6
 * doubles, 1.4 MB for SCALE 1024) cannot be had. */
int ih_haar_whash_ll(const unsigned char *pixels, int scale, int size, double *out);

#endif
