/* httpd.h -- what every imgfeed HTTP server shares, on libmicrohttpd.
 *
 * The listening socket is made here (httpd_listen), so that "port 0" works
 * and the port chosen is known (httpd_port), and handed to the daemon with
 * MHD_OPTION_LISTEN_SOCKET.  Answers carry the same headers everywhere
 * (no sniffing, no referrer, a Content-Security-Policy on HTML that allows
 * the server's own scripts and styles and pictures from http(s) only), and
 * a page built into a program is a table of httpd_file rows.
 */
#ifndef IMGFEED_HTTPD_H
#define IMGFEED_HTTPD_H

#include <stdarg.h>
#include <stddef.h>

#include <microhttpd.h>

#define HTTPD_TYPE_HTML "text/html; charset=utf-8"
#define HTTPD_TYPE_JSON "application/json"
#define HTTPD_TYPE_TEXT "text/plain; charset=utf-8"

/* What httpd_start needs: the address, libmicrohttpd's threading flags
 * (MHD_USE_ERROR_LOG is added), the request handler and its completion
 * callback (may be NULL), and the limits of the connections. */
typedef struct httpd_config {
    const char *listen;
    unsigned flags;
    MHD_AccessHandlerCallback handler;
    MHD_RequestCompletedCallback completed;
    void *cls; /* for both callbacks */
    unsigned connection_limit;
    size_t connection_memory;
    unsigned timeout_s; /* 0: none */
} httpd_config;

/* Listens (httpd_listen) and starts the daemon on that socket, which
 * MHD_stop_daemon closes; *PORT gets the port.  NULL, with WHY, when it
 * cannot listen or start. */
struct MHD_Daemon *httpd_start(const httpd_config *c, int *port, char *why, size_t whylen);

/* A socket listening on ADDR: "HOST:PORT", "[V6]:PORT" or ":PORT" (every
 * address); port 0 picks a free one.  -1, with WHY, on failure. */
int httpd_listen(const char *addr, char *why, size_t whylen);
/* The port socket FD listens on; -1 when unknown. */
int httpd_port(int fd);

/* The headers every answer carries: Content-Type TYPE, Cache-Control CACHE,
 * no sniffing, no referrer (and the Content-Security-Policy on HTML). */
void httpd_headers(struct MHD_Response *r, const char *type, const char *cache);

/* Queue an answer of LEN bytes of BODY (MODE as libmicrohttpd's) with the
 * common headers and Cache-Control: no-store. */
enum MHD_Result httpd_answer(struct MHD_Connection *c, unsigned status, const char *type, const char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode);
/* A short plain-text answer (an error's reason, a line break at its end). */
enum MHD_Result httpd_answer_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A file of a built-in page. */
typedef struct httpd_file {
    const char *path, *type, *body;
} httpd_file;

/* Answers URL from FILES (N rows), or 404. */
enum MHD_Result httpd_answer_file(struct MHD_Connection *c, const httpd_file *files, size_t n, const char *url);

/* libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER): to our log at debug level. */
void httpd_log(void *cls, const char *fmt, va_list ap);

#endif
