/* main.c -- imgfeed-crawler: polls image sites and publishes their posts.
 *
 * The crawler reads the sites file, polls each board within the site's rate
 * limit and publishes every new post or item to the exchange E.raw, keeping
 * what it has already published under --state-dir so that it resumes after a
 * crash.  This file only loads the settings and starts; the crawl itself
 * arrives with the crawler issue.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "sig.h"

typedef struct crawler_settings {
    cfg_common common;
    char *sites;
} crawler_settings;

static const cfg_option crawler_options[] = {
    CFG_COMMON_OPTIONS(crawler_settings, common),
    {.name = "sites", .env = "IMGFEED_SITES", .type = CFG_STRING, .offset = offsetof(crawler_settings, sites),
     .defval = "sites.json", .metavar = "FILE",
     .help = "JSON file listing the sites to crawl: name, kind, base URLs, boards, requests per second, User-Agent"},
    {0},
};

static const cfg_program crawler_program = {
    "imgfeed-crawler", "[OPTION]...",
    "Polls image boards and image APIs within their rate limits and publishes every new post\n"
    "or item to the exchange E.raw, remembering what it published so that it resumes after a crash.",
    crawler_options,
};

int main(int argc, char **argv) {
    crawler_settings settings = {0};
    int status = cfg_main_load(&crawler_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    cfg_common_apply(&crawler_program, &settings.common);
    sig_install();
    log_error("crawling is not implemented yet in this version: only --help and settings work");
    cfg_release(&crawler_program, &settings);
    return 1;
}
