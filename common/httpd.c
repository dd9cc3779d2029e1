/* httpd.c -- the pieces every imgfeed HTTP server shares; see httpd.h. */
#include "httpd.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define HTTPD_CSP                                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' http: https: blob:; "        \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

void httpd_headers(struct MHD_Response *r, const char *type, const char *cache) {
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (strcmp(type, HTTPD_TYPE_HTML) == 0) MHD_add_response_header(r, "Content-Security-Policy", HTTPD_CSP);
}

enum MHD_Result httpd_answer(struct MHD_Connection *c, unsigned status, const char *type, const char *body, size_t len,
                             enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    httpd_headers(r, type, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result httpd_answer_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    return httpd_answer(c, status, HTTPD_TYPE_TEXT, buf, len, MHD_RESPMEM_MUST_COPY);
}

enum MHD_Result httpd_answer_file(struct MHD_Connection *c, const httpd_file *files, size_t n, const char *url) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(url, files[i].path) == 0)
            return httpd_answer(c, 200, files[i].type, files[i].body, strlen(files[i].body), MHD_RESPMEM_PERSISTENT);
    return httpd_answer_text(c, 404, "not found\n");
}

void httpd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_debug("http: %s", buf);
}

/* Split "HOST:PORT", "[V6]:PORT" or ":PORT" (every address). */
static int split_listen(const char *addr, char *host, size_t hostlen, char *port, size_t portlen) {
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) >= portlen)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostlen) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

int httpd_listen(const char *addr, char *why, size_t whylen) {
    char host[256], port[16];
    if (split_listen(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(why, whylen, "--listen %s is not HOST:PORT", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *list = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &list);
    if (rc != 0) {
        snprintf(why, whylen, "cannot listen on %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 512) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) snprintf(why, whylen, "cannot listen on %s: %s", addr, strerror(err));
    return fd;
}

int httpd_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    char port[16];
    if (getnameinfo((struct sockaddr *)&ss, len, NULL, 0, port, sizeof port, NI_NUMERICSERV) != 0) return -1;
    return atoi(port);
}

struct MHD_Daemon *httpd_start(const httpd_config *c, int *port, char *why, size_t whylen) {
    int fd = httpd_listen(c->listen, why, whylen);
    if (fd < 0) return NULL;
    *port = httpd_port(fd);
    struct MHD_Daemon *d = MHD_start_daemon(
        c->flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, c->handler, c->cls, MHD_OPTION_NOTIFY_COMPLETED, c->completed,
        c->cls, MHD_OPTION_EXTERNAL_LOGGER, httpd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        c->connection_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->connection_memory, MHD_OPTION_CONNECTION_TIMEOUT,
        c->timeout_s, MHD_OPTION_END);
    if (!d) {
        snprintf(why, whylen, "cannot start the HTTP server on %s", c->listen);
        close(fd);
    }
    return d;
}
