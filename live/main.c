/* main.c -- imgfeed-live: the images as they come in, in a browser.
 *
 * This file holds the settings table and starts the loop (live.c); the
 * HTTP side is web.c, the events and the viewers hub.c, what an event says
 * of an item event.c, and the page web/index.html, app.js and style.css,
 * built into the program.
 */
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "itemview.h"
#include "metrics.h"
#include "live.h"
#include "sig.h"

/* 4chan's boards not safe for work: itemview.h's list, shared with imgfeed-export dataset. */
#define LIVE_NSFW_DEFAULT ITEMVIEW_NSFW_TOPICS

static const cfg_option live_options[] = {
    CFG_COMMON_OPTIONS(live_settings, common),
    {.name = "listen",
     .env = "IMGFEED_LIVE_LISTEN",
     .type = CFG_STRING,
     .offset = offsetof(live_settings, listen),
     .defval = "127.0.0.1:8090",
     .metavar = "HOST:PORT",
     .help = "address of the HTTP server ([::1]:8090 for IPv6, :8090 for every address, port 0: any free one)"},
    {.name = "topics",
     .env = "IMGFEED_LIVE_TOPICS",
     .type = CFG_STRING,
     .offset = offsetof(live_settings, topics),
     .defval = "#",
     .metavar = "KEYS",
     .help = "binding keys of the live queue to E, comma-separated (4chan.#,reddit.submission.*)"},
    {.name = "queue",
     .env = "IMGFEED_LIVE_QUEUE",
     .type = CFG_STRING,
     .offset = offsetof(live_settings, queue),
     .metavar = "NAME",
     .help = "name of the live queue (non-durable, auto-delete); default E.live.<host>.<pid>"},
    {.name = "max-viewers",
     .env = "IMGFEED_LIVE_MAX_VIEWERS",
     .type = CFG_INT,
     .offset = offsetof(live_settings, max_viewers),
     .defval = "2000",
     .min = 1,
     .max = 100000,
     .help = "event streams open at once; one more is answered 503"},
    {.name = "viewer-buffer",
     .env = "IMGFEED_LIVE_VIEWER_BUFFER",
     .type = CFG_INT,
     .offset = offsetof(live_settings, viewer_buffer),
     .defval = "64",
     .min = 1,
     .max = 100000,
     .help = "events waiting for one viewer; a viewer that falls further behind loses its oldest, and is told"},
    {.name = "replay",
     .env = "IMGFEED_LIVE_REPLAY",
     .type = CFG_INT,
     .offset = offsetof(live_settings, replay),
     .defval = "1000",
     .min = 1,
     .max = 1000000,
     .help = "newest events kept for browsers that reconnect (Last-Event-ID) or ask for a backlog"},
    {.name = "queue-length",
     .env = "IMGFEED_LIVE_QUEUE_LENGTH",
     .type = CFG_INT,
     .offset = offsetof(live_settings, queue_length),
     .defval = "10000",
     .min = 1,
     .max = 100000000,
     .help = "x-max-length of the live queue: past it the broker drops the oldest message, never slowing the pipeline"},
    {.name = "heartbeat",
     .env = "IMGFEED_LIVE_HEARTBEAT",
     .type = CFG_MILLIS,
     .offset = offsetof(live_settings, heartbeat_ms),
     .defval = "15s",
     .min = 0,
     .max = 3600000,
     .help = "a comment line to every idle viewer this often: keeps proxies open, finds browsers that left (0: none)"},
    {.name = "viewer-timeout",
     .env = "IMGFEED_LIVE_VIEWER_TIMEOUT",
     .type = CFG_MILLIS,
     .offset = offsetof(live_settings, viewer_timeout_ms),
     .defval = "60s",
     .min = 0,
     .max = 86400000,
     .help = "a connection that takes no bytes for this long is closed (0: never)"},
    {.name = "save-dir",
     .env = "IMGFEED_SAVE_DIR",
     .type = CFG_STRING,
     .offset = offsetof(live_settings, save_dir),
     .metavar = "DIR",
     .help = "the hasher's --save-dir: its files are served under /files/ and the page shows them instead of "
             "asking the sites"},
    {.name = "nsfw-topics",
     .env = "IMGFEED_LIVE_NSFW_TOPICS",
     .type = CFG_STRING,
     .offset = offsetof(live_settings, nsfw_topics),
     .defval = LIVE_NSFW_DEFAULT,
     .metavar = "KEYS",
     .help = "routing keys of boards not safe for work, as binding keys, comma-separated (4chan's by default); "
             "items that say so themselves (reddit's over_18) count too"},
    {0},
};

static const cfg_program live_program = {
    "imgfeed-live",
    "[OPTION]...",
    "Shows the images as they come in: consumes its own queue bound to E and serves a page and a\n"
    "Server-Sent Events stream of every item with a hashed picture, for many viewers at once,\n"
    "each filtered by its topics and bounded in what it may hold.",
    live_options,
};

int main(int argc, char **argv) {
    live_settings settings = {0};
    int status = cfg_main_load(&live_program, &settings, argc, argv, NULL);
    if (status >= 0) return status;
    status = cfg_common_apply(&live_program, &settings.common);
    if (status == 0) {
        sig_install();
        status = live_run(&settings);
    }
    metrics_stop();
    cfg_release(&live_program, &settings);
    return status;
}
