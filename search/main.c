/* main.c -- imgfeed-search: the nearest images of the whole archive.
 *
 * Three commands in one program:
 *   imgfeed-search [OPTION]...         the service (search.c): loads every
 *                                      image hash of the archive, stays
 *                                      current from its own queue, answers
 *                                      HTTP (web.c, query.c);
 *   imgfeed-search query FILE...       asks the service about local files (cli.c);
 *   imgfeed-search dupes [OPTION]...   groups of near-identical images (cli.c).
 * This file holds the service's settings table and starts one of them.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "metrics.h"
#include "netguard.h"
#include "search.h"
#include "sig.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "dev"
#endif

static const cfg_option search_options[] = {
    CFG_COMMON_OPTIONS(search_settings, common),
    {.name = "pg",
     .env = "IMGFEED_PG",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, pg),
     .defval = "dbname=imgfeed",
     .metavar = "CONNINFO",
     .help = "the archive to load and to read results' details from: a libpq conninfo string or a "
             "postgresql:// URI"},
    {.name = "listen",
     .env = "IMGFEED_SEARCH_LISTEN",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, listen),
     .defval = "127.0.0.1:8091",
     .metavar = "HOST:PORT",
     .help = "address of the HTTP server ([::1]:8091 for IPv6, :8091 for every address, port 0: any free one)"},
    {.name = "queue",
     .env = "IMGFEED_SEARCH_QUEUE",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, queue),
     .metavar = "NAME",
     .help = "the search index's durable queue; default E.search (one per index: two indexes need two names)"},
    {.name = "topics",
     .env = "IMGFEED_SEARCH_TOPICS",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, topics),
     .defval = "#",
     .metavar = "KEYS",
     .help = "binding keys of the queue to E, comma-separated (4chan.#,reddit.submission.*)"},
    {.name = "prefetch",
     .env = "IMGFEED_PREFETCH",
     .type = CFG_INT,
     .offset = offsetof(search_settings, prefetch),
     .defval = "64",
     .min = 1,
     .max = 65535,
     .help = "messages of the queue delivered ahead of their acknowledgement"},
    {.name = "max-connections",
     .env = "IMGFEED_SEARCH_MAX_CONNECTIONS",
     .type = CFG_INT,
     .offset = offsetof(search_settings, max_connections),
     .defval = "64",
     .min = 1,
     .max = 10000,
     .help = "HTTP connections at once (a thread each); more wait to be accepted"},
    {.name = "max-memory",
     .env = "IMGFEED_MAX_MEMORY",
     .type = CFG_BYTES,
     .offset = offsetof(search_settings, max_memory),
     .defval = "512MiB",
     .min = 0,
     .max = 1099511627776.0,
     .help = "memory for query images at once (bodies, downloads, decoding); a query that does not fit is "
             "answered 503 (0: no bound)"},
    {.name = "max-bytes",
     .env = "IMGFEED_MAX_BYTES",
     .type = CFG_BYTES,
     .offset = offsetof(search_settings, max_bytes),
     .defval = "64MiB",
     .min = 1,
     .max = 4294967296.0,
     .help = "a larger query image (body or download) is refused 413, as the hasher refuses it"},
    {.name = "max-pixels",
     .env = "IMGFEED_MAX_PIXELS",
     .type = CFG_INT,
     .offset = offsetof(search_settings, max_pixels),
     .defval = "128000000",
     .min = 1,
     .max = 1e12,
     .help = "a query image with more pixels is refused 413 from its header, before decoding"},
    {.name = "allow-private",
     .env = "IMGFEED_ALLOW_PRIVATE",
     .type = CFG_BOOL,
     .offset = offsetof(search_settings, allow_private),
     .defval = "false",
     .help = "let url= queries reach private, loopback and link-local addresses (tests only)"},
    {.name = "allow-net",
     .env = "IMGFEED_ALLOW_NET",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, allow_net),
     .metavar = "CIDRS",
     .check = netguard_check_list,
     .help = "networks url= queries may reach despite the guard, comma-separated (10.1.0.0/16,fd00::/8)"},
    {.name = "download-timeout",
     .env = "IMGFEED_DOWNLOAD_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(search_settings, download_timeout_ms),
     .defval = "30s",
     .min = 1,
     .max = 3600000,
     .help = "one download of a url= query, connecting to last byte"},
    {.name = "user-agent",
     .env = "IMGFEED_USER_AGENT",
     .type = CFG_STRING,
     .offset = offsetof(search_settings, user_agent),
     .defval = "imgfeed/" IMGFEED_VERSION " (+https://github.com/imgfeed/imgfeed)",
     .help = "User-Agent of url= downloads"},
    {0},
};

static const cfg_program search_program = {
    "imgfeed-search",
    "[OPTION]...  |  imgfeed-search query FILE...  |  imgfeed-search dupes [OPTION]...",
    "Reverse image search over the archive: loads every image hash of the archive's tables, stays\n"
    "current from its own durable queue bound to E, and answers GET/POST /search with the nearest\n"
    "images by phash or dhash (exact, within a radius or the k nearest) or by sha1 and md5, with a\n"
    "page at /.",
    search_options,
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "query") == 0) return cli_query(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "dupes") == 0) return cli_dupes(argc - 1, argv + 1);
    search_settings settings = {0};
    int status = cfg_main_load(&search_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    status = cfg_common_apply(&search_program, &settings.common);
    if (status == 0) {
        sig_install();
        status = search_run(&settings);
    }
    metrics_stop();
    cfg_release(&search_program, &settings);
    return status;
}
