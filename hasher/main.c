/* main.c -- imgfeed-hasher: downloads the images of items and hashes them.
 *
 * Two commands in one program:
 *   imgfeed-hasher [OPTION]...     the daemon: consumes E.hasher, downloads
 *                                  every picture or video URL of each item,
 *                                  adds `_img` and publishes the items to E
 *                                  (consumer.c);
 *   imgfeed-hasher hash FILE...    the same hashes for local files (hashcli.c).
 * This file holds the daemon's settings table and starts one or the other.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "consumer.h"
#include "hashcli.h"
#include "netguard.h"
#include "sig.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "dev"
#endif

static const cfg_option hasher_options[] = {
    CFG_COMMON_OPTIONS(consumer_settings, common),
    {.name = "prefetch",
     .env = "IMGFEED_PREFETCH",
     .type = CFG_INT,
     .offset = offsetof(consumer_settings, prefetch),
     .defval = "16",
     .min = 1,
     .max = 65535,
     .help = "messages taken from E.hasher at once; their images download and hash together"},
    {.name = "threads",
     .env = "IMGFEED_THREADS",
     .type = CFG_INT,
     .offset = offsetof(consumer_settings, threads),
     .defval = "0",
     .min = 0,
     .max = 1024,
     .help = "hashing threads (0: one per online CPU core)"},
    {.name = "save-dir",
     .env = "IMGFEED_SAVE_DIR",
     .type = CFG_STRING,
     .offset = offsetof(consumer_settings, save_dir),
     .metavar = "DIR",
     .help = "keep each downloaded picture or video once, as DIR/ab/cd/SHA1.EXT, named by its sha1 (unset: keep none)"},
    {.name = "allow-private",
     .env = "IMGFEED_ALLOW_PRIVATE",
     .type = CFG_BOOL,
     .offset = offsetof(consumer_settings, allow_private),
     .defval = "false",
     .help = "also download from loopback, private, link-local and other non-public addresses"},
    {.name = "allow-net",
     .env = "IMGFEED_ALLOW_NET",
     .type = CFG_STRING,
     .offset = offsetof(consumer_settings, allow_net),
     .metavar = "CIDR[,CIDR...]",
     .check = netguard_check_list,
     .help = "networks downloaded from despite the private-address guard, such as an internal mirror"},
    {.name = "max-bytes",
     .env = "IMGFEED_MAX_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(consumer_settings, max_bytes),
     .defval = "64MiB",
     .min = 1,
     .max = 4294967296.0,
     .help = "largest file downloaded; a larger one gets the error \"too large\" without being read"},
    {.name = "max-pixels",
     .env = "IMGFEED_MAX_PIXELS",
     .type = CFG_INT,
     .offset = offsetof(consumer_settings, max_pixels),
     .defval = "128000000",
     .min = 1,
     .max = 1e12,
     .help = "largest image decoded, width times height; a larger one gets an error entry"},
    {.name = "download-timeout",
     .env = "IMGFEED_DOWNLOAD_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(consumer_settings, download_timeout_ms),
     .defval = "60s",
     .min = 1,
     .max = 86400000,
     .help = "longest one download attempt may take, connecting included"},
    {.name = "connect-timeout",
     .env = "IMGFEED_CONNECT_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(consumer_settings, connect_timeout_ms),
     .defval = "10s",
     .min = 1,
     .max = 3600000,
     .help = "longest wait for a connection to a host"},
    {.name = "download-retries",
     .env = "IMGFEED_DOWNLOAD_RETRIES",
     .type = CFG_INT,
     .offset = offsetof(consumer_settings, download_retries),
     .defval = "2",
     .min = 0,
     .max = 20,
     .help = "retries, with backoff, after a timeout, a connection failure or a 5xx; other statuses are final"},
    {.name = "max-downloads",
     .env = "IMGFEED_MAX_DOWNLOADS",
     .type = CFG_INT,
     .offset = offsetof(consumer_settings, max_downloads),
     .defval = "32",
     .min = 1,
     .max = 10000,
     .help = "downloads running at once"},
    {.name = "max-memory",
     .env = "IMGFEED_MAX_MEMORY",
     .type = CFG_BYTES,
     .offset = offsetof(consumer_settings, max_memory),
     .defval = "512MiB",
     .min = 0,
     .max = 1099511627776.0,
     .help = "memory for the files held (downloading, waiting, being hashed) and their decoding, all together: "
             "downloads and hashing wait for it; a file that needs more goes alone (0: no bound)"},
    {.name = "rps-per-host",
     .env = "IMGFEED_RPS_PER_HOST",
     .type = CFG_DOUBLE,
     .offset = offsetof(consumer_settings, rps_per_host),
     .defval = "10",
     .min = 0,
     .max = 1e6,
     .help = "requests per second to any one host (0: unlimited)"},
    {.name = "user-agent",
     .env = "IMGFEED_USER_AGENT",
     .type = CFG_STRING,
     .offset = offsetof(consumer_settings, user_agent),
     .defval = "imgfeed/" IMGFEED_VERSION " (+https://github.com/imgfeed/imgfeed)",
     .metavar = "TEXT",
     .help = "User-Agent header of the downloads"},
    {0},
};

static const cfg_program hasher_program = {
    "imgfeed-hasher",
    "[OPTION]...  |  imgfeed-hasher hash FILE...",
    "Consumes items from the queue E.hasher, downloads their pictures and videos, adds size, width,\n"
    "height, format, crc32, md5, sha1 and the perceptual hashes ahash, dhash, phash and whash as\n"
    "`_img`, and publishes them to the exchange E.  `imgfeed-hasher hash FILE...` prints the same\n"
    "for local files.",
    hasher_options,
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "hash") == 0) return hashcli_main(argc - 1, argv + 1);
    consumer_settings settings = {0};
    int status = cfg_main_load(&hasher_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    status = cfg_common_apply(&hasher_program, &settings.common);
    if (status == 0) {
        sig_install();
        status = consumer_run(&settings);
    }
    metrics_stop();
    cfg_release(&hasher_program, &settings);
    return status;
}
