/* web.h -- imgfeed-search's HTTP server.
 *
 * Routes: GET / (the page, with /app.js and /style.css built into the
 * program), GET and POST /search (query.h), GET /stats (the stats callback's
 * JSON).  libmicrohttpd runs a thread per connection, at most
 * max_connections of them, since a request may wait on a download or on
 * the archive; a POST body is read into memory reserved from the query
 * service's budget, and one whose Content-Length is over the byte limit is
 * refused before it is read.
 */
#ifndef IMGFEED_SEARCH_WEB_H
#define IMGFEED_SEARCH_WEB_H

#include <stddef.h>

#include "query.h"

typedef struct web_options {
    const char *listen;     /* HOST:PORT */
    query_service *service; /* outlives the server */
    unsigned max_connections;
    /* The JSON of GET /stats, a new string the caller frees. */
    char *(*stats)(void *arg, size_t *len);
    void *stats_arg;
} web_options;

typedef struct search_web search_web;

/* Listens and serves; NULL with WHY when it cannot listen. */
search_web *web_start(const web_options *o, char *why, size_t whylen);
int web_port(const search_web *w);
/* Stops listening and waits for the requests in progress.  NULL: nothing. */
void web_stop(search_web *w);

#endif
