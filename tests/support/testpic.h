/* testpic.h -- the tests' generated pictures: distinct originals drawn with
 * libgd, whose perceptual hashes lie far apart from one another's.
 *
 * testpic_original(K) is picture K: a gradient of its own and seven shapes
 * (ellipses and rectangles) placed by a small LCG seeded with K, 320 x 240,
 * the same pixels on every run.  The tests make their variants (halved,
 * recompressed, cropped, gray) from it as each needs.
 */
#ifndef IMGFEED_TEST_TESTPIC_H
#define IMGFEED_TEST_TESTPIC_H

#include <gd.h>

#define TESTPIC_W 320
#define TESTPIC_H 240

/* Picture K (K >= 0), true colour; the caller destroys it. */
gdImagePtr testpic_original(int k);

#endif
