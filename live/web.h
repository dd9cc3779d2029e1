/* web.h -- imgfeed-live's HTTP side (libmicrohttpd).
 *
 *   GET /                  the page (web/index.html), and /app.js,
 *                          /style.css, built into the program
 *   GET /events?topic=K    a Server-Sent Events stream (text/event-stream)
 *                          of the items whose routing key matches a topic K
 *                          (repeatable; default "#"), checked (topic.h):
 *                          400 otherwise.  backlog=N first sends the newest
 *                          N matching events kept; a Last-Event-ID header
 *                          (a browser reconnecting) or last_event_id=
 *                          resumes after that event.  503 when
 *                          --max-viewers are connected.
 *   GET /files/<sha1>.<ext>  a file of the hasher's save dir, when one is
 *                          given: only that shape of name (40 hex digits,
 *                          a known extension), so no other file is reachable
 *   GET /stats             {"viewers", "events", "delivered", "dropped",
 *                          "last_id"} as JSON
 *
 * Every answer says Cache-Control and X-Content-Type-Options: nosniff; the
 * page's a Content-Security-Policy that allows scripts and styles from this
 * server only (no inline script), pictures from http(s), and connections to
 * this server; Referrer-Policy: no-referrer, so image hosts are not told
 * who watches.
 *
 * One libmicrohttpd thread polls every connection (epoll).  A stream with
 * nothing to send is suspended (hub.h parks it) and resumed when an event
 * for it arrives; a stream whose viewer stops reading makes no progress and
 * is closed after --viewer-timeout; its events meanwhile wait in its own
 * bounded ring.
 */
#ifndef IMGFEED_WEB_H
#define IMGFEED_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

typedef struct web web;

typedef struct web_options {
    const char *listen;        /* "127.0.0.1:8090", "[::1]:8090", ":8090" (every address) */
    hub *hub;
    size_t max_viewers;
    int64_t viewer_timeout_ms;
    const char *save_dir;      /* NULL: no /files/ */
} web_options;

/* Start listening.  NULL with WHY when the address cannot be used. */
web *web_start(const web_options *o, char *why, size_t whylen);
/* The port it listens on (the one the system chose for port 0). */
int web_port(const web *w);
/* Stop: close every connection and the listening socket, wait for the
 * server's thread.  Call hub_close first so that streams end cleanly. */
void web_stop(web *w);

#endif
