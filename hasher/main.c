/* main.c -- imgfeed-hasher: downloads the images of items and hashes them.
 *
 * The hasher consumes E.hasher, downloads every picture or video URL of each
 * item, adds size, dimensions, checksums and perceptual hashes as `_img`, and
 * publishes the item to E.  This file only loads the settings and starts;
 * hashing arrives with the hasher issue.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "sig.h"

typedef struct hasher_settings {
    cfg_common common;
} hasher_settings;

static const cfg_option hasher_options[] = {
    CFG_COMMON_OPTIONS(hasher_settings, common),
    {0},
};

static const cfg_program hasher_program = {
    "imgfeed-hasher", "[OPTION]...",
    "Consumes items from the queue E.hasher, downloads their images, adds size, width, height,\n"
    "crc32, md5, sha1 and the perceptual hashes ahash, dhash, phash and whash as `_img`, and\n"
    "publishes them to the exchange E.",
    hasher_options,
};

int main(int argc, char **argv) {
    hasher_settings settings = {0};
    int status = cfg_main_load(&hasher_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    cfg_common_apply(&hasher_program, &settings.common);
    sig_install();
    log_error("hashing is not implemented yet in this version: only --help and settings work");
    cfg_release(&hasher_program, &settings);
    return 1;
}
