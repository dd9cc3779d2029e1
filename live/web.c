/* web.c -- imgfeed-live's HTTP server; see web.h.
 *
 * libmicrohttpd runs one internal thread with epoll over every connection.
 * A route is a row of web_routes: a path (exact, or a prefix) and its
 * handler.  An event stream is a response whose content comes from a reader
 * callback (web_stream_read) that asks the hub for the viewer's next bytes;
 * with none, the hub parks the stream by suspending its connection, and
 * resumes it when an event comes (hub.h).  The listening socket is made
 * here (so port 0 works and the port is known) and handed to the daemon.
 */
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "savedir.h"
#include "topic.h"
#include "xalloc.h"

#define WEB_TOPICS_MAX 16      /* topic= arguments of one stream */
#define WEB_BLOCK 8192         /* bytes asked of the hub at a time */
#define WEB_CONN_MEMORY 16384  /* libmicrohttpd's memory per connection */
#define WEB_EXTRA_CONNECTIONS 64 /* page and file requests beside the streams */

/* The page, built into the program (cmake/EmbedText.cmake). */
extern const char live_index_html[], live_app_js[], live_style_css[];

#define WEB_CSP                                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' http: https:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct web {
    struct MHD_Daemon *d;
    web_options o;
    int fd;
    int port;
};

/* --- answers --- */

static void common_headers(struct MHD_Response *r, const char *type, const char *cache) {
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                              size_t len, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r) return MHD_NO;
    common_headers(r, type, "no-store");
    if (strcmp(type, "text/html; charset=utf-8") == 0) MHD_add_response_header(r, "Content-Security-Policy", WEB_CSP);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    return answer(c, status, "text/plain; charset=utf-8", buf, len, MHD_RESPMEM_MUST_COPY);
}

/* --- the page --- */

static enum MHD_Result route_page(web *w, struct MHD_Connection *c, const char *url) {
    (void)w;
    static const struct {
        const char *path, *type;
        const char *body;
    } files[] = {
        {"/", "text/html; charset=utf-8", live_index_html},
        {"/app.js", "text/javascript; charset=utf-8", live_app_js},
        {"/style.css", "text/css; charset=utf-8", live_style_css},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (strcmp(url, files[i].path) == 0)
            return answer(c, 200, files[i].type, files[i].body, strlen(files[i].body), MHD_RESPMEM_PERSISTENT);
    return answer_text(c, 404, "not found\n");
}

/* --- the event stream --- */

typedef struct web_stream {
    web *w;
    struct MHD_Connection *conn;
    hub_viewer *v;
} web_stream;

static void web_stream_sleep(void *arg) { MHD_suspend_connection(((web_stream *)arg)->conn); }
static void web_stream_wake(void *arg) { MHD_resume_connection(((web_stream *)arg)->conn); }

static ssize_t web_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    web_stream *s = cls;
    long n = hub_read(s->w->o.hub, s->v, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void web_stream_free(void *cls) {
    web_stream *s = cls;
    hub_leave(s->w->o.hub, s->v);
    free(s);
}

typedef struct stream_args {
    const char *topics[WEB_TOPICS_MAX];
    size_t ntopics;
    char bad[300]; /* why an argument is refused, or "" */
    long long backlog;
    unsigned long long last_id;
} stream_args;

static bool parse_count(const char *v, unsigned long long *out) {
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19) return false;
    *out = strtoull(v, NULL, 10);
    return true;
}

static enum MHD_Result stream_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    stream_args *a = cls;
    char why[200];
    unsigned long long n;
    if (a->bad[0]) return MHD_NO;
    if (strcmp(key, "topic") == 0) {
        if (!topic_check(value ? value : "", why, sizeof why)) {
            snprintf(a->bad, sizeof a->bad, "bad topic: %s", why);
        } else if (a->ntopics == WEB_TOPICS_MAX) {
            snprintf(a->bad, sizeof a->bad, "at most %d topics", WEB_TOPICS_MAX);
        } else {
            a->topics[a->ntopics++] = value;
        }
    } else if (strcmp(key, "backlog") == 0) {
        if (!parse_count(value, &n)) snprintf(a->bad, sizeof a->bad, "backlog is a count of events");
        else a->backlog = (long long)n;
    } else if (strcmp(key, "last_event_id") == 0) {
        if (!parse_count(value, &n)) snprintf(a->bad, sizeof a->bad, "last_event_id is an event id");
        else a->last_id = n;
    }
    return a->bad[0] ? MHD_NO : MHD_YES;
}

static enum MHD_Result route_events(web *w, struct MHD_Connection *c, const char *url) {
    (void)url;
    stream_args a = {.ntopics = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, stream_arg, &a);
    if (a.bad[0]) return answer_text(c, 400, "%s\n", a.bad);
    const char *header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    unsigned long long last = 0;
    if (header && parse_count(header, &last)) a.last_id = last;
    if (!a.ntopics) a.topics[a.ntopics++] = "#";
    web_stream *s = xcalloc(1, sizeof *s);
    s->w = w;
    s->conn = c;
    s->v = hub_join(w->o.hub, a.topics, a.ntopics, (size_t)a.backlog, a.last_id, web_stream_sleep, web_stream_wake, s);
    if (!s->v) {
        free(s);
        return answer_text(c, 503, "too many viewers (at most %zu)\n", w->o.max_viewers);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WEB_BLOCK, web_stream_read, s, web_stream_free);
    if (!r) {
        web_stream_free(s);
        return MHD_NO;
    }
    common_headers(r, "text/event-stream; charset=utf-8", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* --- the save dir --- */

static const struct {
    const char *ext, *type;
} web_file_types[] = {
    {"jpg", "image/jpeg"}, {"png", "image/png"},   {"gif", "image/gif"},   {"webp", "image/webp"},
    {"bmp", "image/bmp"},  {"tiff", "image/tiff"}, {"avif", "image/avif"}, {"heic", "image/heic"},
    {"webm", "video/webm"}, {"mp4", "video/mp4"},
};

static enum MHD_Result route_file(web *w, struct MHD_Connection *c, const char *url) {
    if (!w->o.save_dir) return answer_text(c, 404, "no save dir is served\n");
    const char *name = url + strlen("/files/"), *dot = strchr(name, '.');
    const char *type = NULL;
    if (dot && dot - name == 40 && strspn(name, "0123456789abcdef") == 40) {
        for (size_t i = 0; i < sizeof web_file_types / sizeof web_file_types[0]; i++)
            if (strcmp(dot + 1, web_file_types[i].ext) == 0) type = web_file_types[i].type;
    }
    if (!type) return answer_text(c, 404, "not a file of the save dir\n");
    char sha1[41];
    memcpy(sha1, name, 40);
    sha1[40] = '\0';
    char *path = savedir_path(w->o.save_dir, sha1, dot + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return answer_text(c, 404, "not found\n");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    common_headers(r, type, "public, max-age=31536000, immutable"); /* the name is the content */
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* --- stats --- */

static enum MHD_Result route_stats(web *w, struct MHD_Connection *c, const char *url) {
    (void)url;
    hub_stats st;
    hub_get_stats(w->o.hub, &st);
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"viewers\": %zu, \"events\": %llu, \"delivered\": %llu, \"dropped\": %llu, \"last_id\": %llu}\n",
                     st.viewers, (unsigned long long)st.events, (unsigned long long)st.delivered,
                     (unsigned long long)st.dropped, (unsigned long long)st.last_id);
    return answer(c, 200, "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* --- routing --- */

static const struct {
    const char *path;
    bool prefix;
    enum MHD_Result (*fn)(web *w, struct MHD_Connection *c, const char *url);
} web_routes[] = {
    {"/events", false, route_events},
    {"/stats", false, route_stats},
    {"/files/", true, route_file},
    {"/", true, route_page},
};

static enum MHD_Result web_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    (void)upload_data;
    web *w = cls;
    /* The first call only announces the request: a response queued then
     * makes libmicrohttpd close the connection after it (no keep-alive for
     * the page's files and the pictures of /files/). */
    static int announced;
    if (!*con_cls) {
        *con_cls = &announced;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* a body is read and ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return answer_text(c, 405, "only GET\n");
    for (size_t i = 0; i < sizeof web_routes / sizeof web_routes[0]; i++) {
        bool hit = web_routes[i].prefix ? strncmp(url, web_routes[i].path, strlen(web_routes[i].path)) == 0
                                        : strcmp(url, web_routes[i].path) == 0;
        if (hit) return web_routes[i].fn(w, c, url);
    }
    return answer_text(c, 404, "not found\n");
}

static void web_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_debug("http: %s", buf);
}

/* --- the listening socket --- */

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

static int open_listener(const char *addr, char *why, size_t whylen) {
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

static int socket_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -1;
    char port[16];
    if (getnameinfo((struct sockaddr *)&ss, len, NULL, 0, port, sizeof port, NI_NUMERICSERV) != 0) return -1;
    return atoi(port);
}

web *web_start(const web_options *o, char *why, size_t whylen) {
    web *w = xcalloc(1, sizeof *w);
    w->o = *o;
    w->fd = open_listener(o->listen, why, whylen);
    if (w->fd < 0) {
        free(w);
        return NULL;
    }
    w->port = socket_port(w->fd);
    unsigned timeout_s = o->viewer_timeout_ms > 0 ? (unsigned)((o->viewer_timeout_ms + 999) / 1000) : 0;
    w->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, web_access, w, MHD_OPTION_EXTERNAL_LOGGER, web_log, NULL,
                            MHD_OPTION_LISTEN_SOCKET, w->fd, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(o->max_viewers + WEB_EXTRA_CONNECTIONS), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)WEB_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_END);
    if (!w->d) {
        snprintf(why, whylen, "cannot start the HTTP server on %s", o->listen);
        close(w->fd);
        free(w);
        return NULL;
    }
    return w;
}

int web_port(const web *w) { return w->port; }

void web_stop(web *w) {
    if (!w) return;
    MHD_stop_daemon(w->d); /* closes the listening socket too */
    free(w);
}
