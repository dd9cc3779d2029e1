/* imghash.h -- the hash core of imgfeed, as a library: one include for its
 * users.
 *
 * What is in it: from a file's bytes to the fields of an `_img` entry
 * (docs/design.md), the same for every program that hashes an image, so a
 * query image is hashed exactly as an archived one:
 *   format.h    what a file is, from its magic bytes (ih_format_*);
 *   decode.h    Pillow 9.4's convert('L') of JPEG, PNG, GIF, WebP and BMP,
 *               TIFF, AVIF and HEIF through libgd (ih_decode_*, ih_gray);
 *   resample.h  Pillow's LANCZOS resize, byte for byte;
 *   dct.h       scipy 1.10's DCT-II, to the last bit;
 *   haar.h      pywt's haar transforms of whash;
 *   hashes.h    imagehash 4.3's ahash, dhash, phash and whash (ih_hashes_*,
 *               ih_bits);
 *   hashenc.h   their bytes, base64 and hex forms, and the strict parsers
 *               of those forms (ih_hashenc_*);
 *   checksum.h  crc32, md5, sha1 (ih_checksum_*);
 *   pixbuf.h    large pixel buffers on huge pages (ih_pixbuf_*);
 *   describe.h  all of it on one file, into one `_img` entry (ih_describe,
 *               ih_options).
 * Its tests are in tests/ beside it.
 *
 * The rules, in the manner of git's xdiff/:
 *   - one prefix: every exported name is ih_ (IH_ for macros and enum
 *     constants); file-local names carry the file's name;
 *   - no knowledge of the programs that use it: no AMQP, no HTTP client, no
 *     field of any site.  It links only the codec libraries (libjpeg, libpng,
 *     giflib, libwebp, libgd), zlib, libcrypto, json-c (an entry is a JSON
 *     object) and libm;
 *   - no logging and no abort: a failure comes back to the caller as a
 *     status with its reason in a string (a decoder's ERR, an entry's
 *     "error"); memory is allocated with checks, since a huge image must be
 *     an error and not the end of the process;
 *   - built with -O3 (the resampling loops must vectorize) and
 *     -ffp-contract=off (imghash/CMakeLists.txt says why: the DCT and the
 *     wavelets must repeat Python's floating-point operations one by one).
 *
 * Thread-safe: every function may be called from many threads at once.
 * Include it as "imghash/imghash.h".
 */
#ifndef IH_IMGHASH_H
#define IH_IMGHASH_H

#include "checksum.h"
#include "dct.h"
#include "decode.h"
#include "describe.h"
#include "format.h"
#include "haar.h"
#include "hashenc.h"
#include "hashes.h"
#include "pixbuf.h"
#include "resample.h"

#endif
