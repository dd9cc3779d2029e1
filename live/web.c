/* web.c -- imgfeed-live's HTTP server; see web.h.
 *
 * libmicrohttpd runs one internal thread with epoll over every connection.
 * A route is a row of web_routes: a path (exact, or a prefix) and its
 * handler.  An event stream is a response whose content comes from a
 * reader callback (web_stream_read) that asks the hub for the viewer's next
 * bytes; with none, the hub parks the stream by suspending its connection,
 * and resumes it when an event comes (hub.h).  The listening socket, the
 * common headers and the page's files are common/httpd.c's.
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

#include "httpd.h"
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

struct web {
    struct MHD_Daemon *d;
    web_options o;
    int port;
};

/* --- the page --- */

static enum MHD_Result route_page(web *w, struct MHD_Connection *c, const char *url) {
    (void)w;
    static const httpd_file files[] = {
        {"/", HTTPD_TYPE_HTML, live_index_html},
        {"/app.js", "text/javascript; charset=utf-8", live_app_js},
        {"/style.css", "text/css; charset=utf-8", live_style_css},
    };
    return httpd_answer_file(c, files, sizeof files / sizeof files[0], url);
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
    if (a.bad[0]) return httpd_answer_text(c, 400, "%s\n", a.bad);
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
        return httpd_answer_text(c, 503, "too many viewers (at most %zu)\n", w->o.max_viewers);
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, WEB_BLOCK, web_stream_read, s, web_stream_free);
    if (!r) {
        web_stream_free(s);
        return MHD_NO;
    }
    httpd_headers(r, "text/event-stream; charset=utf-8", "no-store");
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
    if (!w->o.save_dir) return httpd_answer_text(c, 404, "no save dir is served\n");
    const char *name = url + strlen("/files/"), *dot = strchr(name, '.');
    const char *type = NULL;
    if (dot && dot - name == 40 && strspn(name, "0123456789abcdef") == 40) {
        for (size_t i = 0; i < sizeof web_file_types / sizeof web_file_types[0]; i++)
            if (strcmp(dot + 1, web_file_types[i].ext) == 0) type = web_file_types[i].type;
    }
    if (!type) return httpd_answer_text(c, 404, "not a file of the save dir\n");
    char sha1[41];
    memcpy(sha1, name, 40);
    sha1[40] = '\0';
    char *path = savedir_path(w->o.save_dir, sha1, dot + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return httpd_answer_text(c, 404, "not found\n");
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    httpd_headers(r, type, "public, max-age=31536000, immutable"); /* the name is the content */
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
    return httpd_answer(c, 200, HTTPD_TYPE_JSON, body, (size_t)n, MHD_RESPMEM_MUST_COPY);
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
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return httpd_answer_text(c, 405, "only GET\n");
    for (size_t i = 0; i < sizeof web_routes / sizeof web_routes[0]; i++) {
        bool hit = web_routes[i].prefix ? strncmp(url, web_routes[i].path, strlen(web_routes[i].path)) == 0
                                        : strcmp(url, web_routes[i].path) == 0;
        if (hit) return web_routes[i].fn(w, c, url);
    }
    return httpd_answer_text(c, 404, "not found\n");
}

web *web_start(const web_options *o, char *why, size_t whylen) {
    web *w = xcalloc(1, sizeof *w);
    w->o = *o;
    httpd_config hc = {
        .listen = o->listen,
        .flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
        .handler = web_access,
        .cls = w,
        .connection_limit = (unsigned)(o->max_viewers + WEB_EXTRA_CONNECTIONS),
        .connection_memory = WEB_CONN_MEMORY,
        .timeout_s = o->viewer_timeout_ms > 0 ? (unsigned)((o->viewer_timeout_ms + 999) / 1000) : 0,
    };
    w->d = httpd_start(&hc, &w->port, why, whylen);
    if (!w->d) {
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
