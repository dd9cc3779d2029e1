/* dsarchive.h -- a test archive filled by the real pipeline, with a truth file.
 *
 * Fills a fresh exchange's archive through the real imgfeed-crawler,
 * imgfeed-hasher (--save-dir) and imgfeed-archiver from a generated image-API
 * site (nekos_best kind: category = label) and a generated 4chan-like board
 * site (board = label), whose pictures include known duplicates; a third
 * small image-API site of kind waifu_im serves the NSFW pictures (its entries
 * say "isNsfw": true).
 *
 * The pictures are drawn with libgd from fixed seeds (shapes, gradients and
 * a little noise; 200 to 600 px, JPEG and PNG, three 1.4 to 1.8 MP JPEGs,
 * two grayscale ones (gray pixels; libgd writes them as RGB: it has no
 * grayscale PNG or JPEG output), an RGBA PNG with transparency), so the same
 * libgd writes the same bytes (the same sha1) on every run: round 1 is 40
 * distinct pictures and 10 copies (50 items), round 2 adds 4 distinct
 * pictures and 2 copies (56).  The ids of all items are the same on every
 * run too; the URLs are not (the fixture's port; a board's tim is the post's
 * time in ms, as 4chan's).  They go to WORKDIR/pool/<site>/<label>/ and the
 * fixture server (tests/support/fixture.h, started here) serves those
 * folders as they are: /_control/imgapi/cat?...&dir= and
 * /_control/chan/board?...&dir= (see fixture_imgapi.py, fixture_server.py).
 *
 * The sites (names fixed, tables <exchange>_<site>_<type>):
 *   DSA_SITE_API  "dsapi"  nekos_best  labels "neko", "kitsune" and
 *                                      DSA_LABEL_ODD; table .._dsapi_image,
 *                                      _id the file name ("neko-003.jpg")
 *   DSA_SITE_NSFW "dsnsfw" waifu_im    label "ecchi", every entry isNsfw;
 *                                      table .._dsnsfw_image, _id a number
 *   DSA_SITE_CHAN "dschan" 4chan       boards "a" and "c"; one picture a
 *                                      post; tables .._dschan_thread (the
 *                                      OPs) and .._dschan_post, _id
 *                                      "<board>.<no>"
 * Every item has exactly one picture (_urls[0], "image": 0 in the truth).
 *
 * Known duplicates (truth "group" = the source picture, "variant"):
 *   "original"      the first appearance of a source picture;
 *   "other_label"   the same file (same bytes) as another item under another
 *                   label (same site or another site);
 *   "resized"       a 60% JPEG copy (phash within 10 bits of the original);
 *   "recompressed"  a JPEG quality-60 copy (phash within 10 bits);
 *   "exact_copy"    the same bytes as another item of the same label, under
 *                   another URL.
 * Different groups' phashes are more than 24 bits apart (test_dsarchive.c
 * checks both bounds on the archive's own hashes).
 *
 * Labels: the fixtures' routes take category and board names of
 * [A-Za-z0-9_-] only, and the crawler refuses board names with '.', '/',
 * '#', '*', control characters or more than 64 bytes, so labels with '/',
 * "..", NUL or 300 bytes of UTF-8 cannot come through a real site: a test
 * needing them adds such rows by SQL itself.  What does come through is
 * DSA_LABEL_ODD, a category with spaces, a leading '-' and non-ASCII UTF-8
 * (percent-encoded on the way; the fixture decodes it).
 *
 * truth.json (WORKDIR/truth.json, rewritten by dsa_grow):
 *   {"pictures": [{"table", "id", "image", "url", "label", "site", "kind",
 *     "sha1", "width", "height", "format" ("jpeg"|"png"), "group" (int),
 *     "variant", "round" (1|2), "nsfw" (bool)}, ...]}
 * one entry per archived picture, in a fixed order; table, id and url are
 * read back from the archive (dsa_fill fails when a row is missing or its
 * _urls[0] or _img sha1 differ from the truth).
 *
 * Needs the test servers of tests/lib/servers.sh (IMGFEED_PG,
 * IMGFEED_AMQP_URL ...) and the three programs built: a test using this
 * adds add_dependencies(test_x imgfeed-crawler imgfeed-hasher
 * imgfeed-archiver) in tests/CMakeLists.txt (dsarchive.c is part of
 * imgfeed-test-support, which links libgd for it).  Like the rest of
 * tests/support, every failure fails the running cmocka test (fail_msg);
 * the functions return 0 otherwise.  Nothing is timed: waits end at a guard
 * deadline only.  The hasher and archiver run only inside dsa_fill and
 * dsa_grow; the fixture server stays up until dsa_release (a test may
 * download the pictures again from it, or set faults on it).
 */
#ifndef IMGFEED_TEST_DSARCHIVE_H
#define IMGFEED_TEST_DSARCHIVE_H

#include <stddef.h>

#include "fixture.h"

#define DSA_SITE_API "dsapi"
#define DSA_SITE_NSFW "dsnsfw"
#define DSA_SITE_CHAN "dschan"
#define DSA_LABEL_ODD "-odd label \xc3\xbc \xe6\x97\xa5\xe6\x9c\xac" /* "-odd label ü 日本" */

typedef struct dsarchive {
    char exchange[64]; /* fresh, e.g. "ds1a2b3c" */
    char *save_dir;    /* the hasher's --save-dir: WORKDIR/save */
    char *workdir;     /* pictures, logs, truth.json (the caller's folder) */
    char *truth_path;  /* workdir/truth.json */
    /* --- added --- */
    fixture fx;       /* the fixture server serving the sites */
    char *sites_file; /* workdir/sites.json, the crawler's --sites */
    char *state_dir;  /* workdir/state, the crawler's --state-dir */
    int round;        /* rounds filled: 1 after dsa_fill, 2 after dsa_grow */
    size_t pictures;  /* entries of truth.json */
    void *priv;       /* dsarchive.c's own (the truth in memory) */
} dsarchive;

/* Round 1: generate the first set of pictures under WORKDIR (an existing,
 * empty folder the caller owns and removes), start the fixture server, run
 * imgfeed-archiver, imgfeed-hasher --save-dir and imgfeed-crawler --once on a
 * fresh exchange, wait until every picture is archived, stop the hasher and
 * the archiver, write truth.json.  A must be zeroed or released. */
int dsa_fill(dsarchive *a, const char *workdir);
/* Round 2: add new pictures (new items: a few new distinct ones, one more
 * resized copy of a round-1 picture, an exact copy of a round-1 file), crawl
 * again with the same crawler state, wait for the new rows, rewrite
 * truth.json with round 1 and round 2. */
int dsa_grow(dsarchive *a);
/* Stop what it started (programs, fixture server), drop the exchange's
 * tables (<exchange>_*) and its broker topology, free.  The workdir stays
 * (the caller's).  Safe on a zeroed or already released A. */
void dsa_release(dsarchive *a);

/* The table of SITE's items of TYPE ("image", "thread", "post"):
 * "<exchange>_<site>_<type>".  The caller frees it. */
char *dsa_table(const dsarchive *a, const char *site, const char *type);

#endif
