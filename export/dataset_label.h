/* dataset_label.h -- folder names for labels, and the split of a picture.
 *
 * A label is whatever the archive holds (a board, a category, a field the
 * user chose): it may hold '/', "..", control characters, a leading dot,
 * hundreds of bytes, bytes that are not UTF-8, or nothing at all.  Its
 * folder under DIR/<split>/ must be one safe file name, and two labels must
 * never share a folder:
 *
 * - a label of 1 to DATASET_LABEL_MAX bytes of valid UTF-8 without '/',
 *   control characters (below 0x20, 0x7f) or a leading '.', that does not
 *   end in "~" and 8 hex digits, is its own folder name;
 * - any other label is made safe: '/', control characters and bytes that
 *   are not UTF-8 become '_', leading dots become '_', the text is cut to
 *   DATASET_LABEL_MAX bytes on a UTF-8 boundary, and "~" + the first 8 hex
 *   digits of the sha1 of the label's bytes is appended (so "a/b" and "a_b"
 *   stay apart: "a_b~<8 hex>" and "a_b");
 * - the empty label (or none) is "_empty~da39a3ee" (the sha1 of nothing).
 * The manifest keeps the original label; summary.json maps the labels whose
 * folder differs (label_dirs).
 *
 * The split is the picture's, by its sha1 alone: u = (the first 8 bytes of
 * the sha1 as a big-endian integer >> 11) / 2^53, a number in [0, 1); train
 * when u < TRAIN, val when u < TRAIN + VAL, else test.  The same picture is
 * in the same split on every run, in every archive.
 *
 * Pure functions; strings returned are new (the caller frees).
 */
#ifndef IMGFEED_EXPORT_DATASET_LABEL_H
#define IMGFEED_EXPORT_DATASET_LABEL_H

#include <stdbool.h>
#include <stddef.h>

#define DATASET_LABEL_MAX 200 /* bytes of a folder name before its suffix; a name stays under 255 */

typedef enum dataset_split { DATASET_TRAIN, DATASET_VAL, DATASET_TEST, DATASET_SPLITS } dataset_split;

/* "train", "val", "test". */
const char *dataset_split_name(dataset_split s);

/* The split of the picture whose sha1 is SHA1 (20 bytes). */
dataset_split dataset_split_of(const unsigned char *sha1, double train, double val);

/* The folder name of LABEL (LEN bytes). */
char *dataset_label_dir(const char *label, size_t len);

/* True when LABEL is its own folder name (the first rule above). */
bool dataset_label_is_safe(const char *label, size_t len);

#endif
