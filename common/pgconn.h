/* pgconn.h -- a libpq connection the way every imgfeed part opens one.
 *
 * The user's conninfo (a "key=value" string or a postgresql:// URI) comes
 * after our defaults, so it overrides them: the program's application_name,
 * connect_timeout 10 s, TCP keepalives that find a dead server within 25 s.
 * client_encoding comes last, UTF-8 whatever the user says, since the items
 * are UTF-8 JSON.  Server notices go to the debug log.
 *
 * Reconnects are counted in imgfeed_database_reconnects_total (metrics.h).
 * Only the caller knows whether a connection it opens replaces one that was
 * lost (pgconn_open also makes first connections, and pools grow), so the
 * caller counts it: pgconn_count_reconnect.  A program that talks to
 * PostgreSQL calls pgconn_metrics_init when it starts, so that its idle
 * scrape shows the counter at 0.
 */
#ifndef IMGFEED_PGCONN_H
#define IMGFEED_PGCONN_H

#include <stddef.h>

#include <libpq-fe.h>

/* A connection to CONNINFO as APPLICATION, or NULL with the reason in WHY
 * (one line).  The caller closes it with PQfinish. */
PGconn *pgconn_open(const char *conninfo, const char *application, char *why, size_t whylen);

/* libpq's MESSAGE made one line (no trailing newline, inner ones made
 * spaces), for logs and answers; "unknown error" when empty. */
void pgconn_error_text(const char *message, char *out, size_t outlen);

/* Register imgfeed_database_reconnects_total (idempotent, thread-safe). */
void pgconn_metrics_init(void);
/* A connection was made again after one was lost: count it (thread-safe,
 * lock-free after the first call). */
void pgconn_count_reconnect(void);

#endif
