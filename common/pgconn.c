/* pgconn.c -- opening a libpq connection, and counting reconnects; see pgconn.h. */
#include "pgconn.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static pthread_once_t pgconn_metrics_once = PTHREAD_ONCE_INIT;
static metrics_series *pgconn_m_reconnects; /* imgfeed_database_reconnects_total; written once, under the once */

static void pgconn_metrics_register(void) {
    pgconn_m_reconnects = metrics_get(metrics_counter("imgfeed_database_reconnects_total",
                                                      "connections to PostgreSQL made again after one was lost", NULL));
}

void pgconn_metrics_init(void) { pthread_once(&pgconn_metrics_once, pgconn_metrics_register); }

void pgconn_count_reconnect(void) {
    pgconn_metrics_init();
    metrics_inc(pgconn_m_reconnects);
}

void pgconn_error_text(const char *message, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", message && *message ? message : "unknown error");
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
}

static void pgconn_on_notice(void *arg, const char *message) {
    (void)arg;
    char text[512];
    pgconn_error_text(message, text, sizeof text);
    log_debug("PostgreSQL: %s", text);
}

PGconn *pgconn_open(const char *conninfo, const char *application, char *why, size_t whylen) {
    const char *keys[] = {"application_name", "connect_timeout", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "dbname", "client_encoding", NULL};
    const char *values[] = {application, "10", "10", "5", "3", conninfo, "UTF8", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        pgconn_error_text(conn ? PQerrorMessage(conn) : "out of memory", why, whylen);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, pgconn_on_notice, NULL);
    return conn;
}
