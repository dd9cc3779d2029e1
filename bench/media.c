/* media.c -- bench_media: a static file server on loopback, standing in for
 * a site's image host in bench/pipeline.sh.
 *
 *   bench_media --root DIR --port-file FILE
 *
 * Serves GET and HEAD of DIR/<path> for every regular file under DIR, on
 * 127.0.0.1 at a port the kernel picks, which it writes to FILE (through a
 * temporary file and a rename, so that a reader never sees half a number)
 * once it listens.  Runs until SIGTERM or SIGINT, then exits 0.
 *
 * Why not the fixture server: a real board's pictures come from its CDN,
 * whose CPU is not the crawler's.  tests/support/fixture_server.py spends
 * about 0.12 ms of Python per picture, as much as hashing a small one, and
 * on one machine that CPU is taken from the pipeline being measured.  This
 * server costs a few microseconds a picture: libmicrohttpd (chosen over a
 * socket loop of our own: keep-alive, pipelining, partial writes and bad
 * requests handled by a well-kept library) on one epoll thread, and the
 * bodies go out with sendfile.
 *
 * Paths: only "/" followed by segments of [A-Za-z0-9._-] that are not "."
 * or ".." are served; anything else is 404, as is a missing file or a
 * directory.  The Content-Type follows the extension.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#define MEDIA_PATH_MAX 4096

typedef struct media_server {
    const char *root;
    struct MHD_Response *not_found;
} media_server;

/* True when URL is "/" and segments of [A-Za-z0-9._-], none "." or "..". */
static int media_path_ok(const char *url) {
    if (url[0] != '/' || url[1] == '\0') return 0;
    const char *seg = url + 1;
    for (const char *p = seg;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0) return 0;
            if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return 0;
            if (*p == '\0') return 1;
            seg = p + 1;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
}

static const char *media_content_type(const char *path) {
    static const struct {
        const char *ext, *type;
    } types[] = {{".png", "image/png"},   {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"},
                 {".gif", "image/gif"},   {".webp", "image/webp"},      {".bmp", "image/bmp"},
                 {".webm", "video/webm"}, {".mp4", "video/mp4"},        {".json", "application/json"}};
    const char *dot = strrchr(path, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    }
    return "application/octet-stream";
}

static enum MHD_Result media_not_found(const media_server *s, struct MHD_Connection *conn) {
    return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, s->not_found);
}

/* The file of URL as a response that sends it with sendfile; NULL (and the
 * 404 queued) when there is none. */
static enum MHD_Result media_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                        const char *version, const char *upload_data, size_t *upload_data_size,
                                        void **req_cls) {
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    media_server *s = cls;
    /* The first call only announces the request: a response queued then
     * makes libmicrohttpd close the connection after it (no keep-alive). */
    static int seen;
    if (!*req_cls) {
        *req_cls = &seen;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, s->not_found);
    }
    if (!media_path_ok(url)) return media_not_found(s, conn);
    char path[MEDIA_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s%s", s->root, url);
    if (n < 0 || (size_t)n >= sizeof path) return media_not_found(s, conn);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return media_not_found(s, conn);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return media_not_found(s, conn);
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* owns fd from here */
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, media_content_type(path));
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static int media_write_port(const char *file, unsigned port) {
    char tmp[MEDIA_PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", file);
    if (n < 0 || (size_t)n >= sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int bad = fprintf(f, "%u\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, file) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void media_usage(void) { fprintf(stderr, "usage: bench_media --root DIR --port-file FILE\n"); }

int main(int argc, char **argv) {
    const char *root = NULL, *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[++i];
        } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
            port_file = argv[++i];
        } else {
            media_usage();
            return 2;
        }
    }
    if (!root || !port_file) {
        media_usage();
        return 2;
    }
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "bench_media: %s is not a directory\n", root);
        return 2;
    }

    /* The signals are taken by sigwait below, in this thread only. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    static const char not_found_body[] = "not found\n";
    media_server s = {.root = root};
    s.not_found = MHD_create_response_from_buffer(sizeof not_found_body - 1, (void *)not_found_body,
                                                  MHD_RESPMEM_PERSISTENT);
    if (!s.not_found) {
        fprintf(stderr, "bench_media: cannot make the 404 response\n");
        return 1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG, 0,
                                            NULL, NULL, media_on_request, &s, MHD_OPTION_SOCK_ADDR, &addr,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_media: cannot listen on 127.0.0.1\n");
        MHD_destroy_response(s.not_found);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int rc = 0;
    if (!info || media_write_port(port_file, info->port) != 0) {
        fprintf(stderr, "bench_media: cannot write the port to %s: %s\n", port_file, strerror(errno));
        rc = 1;
    } else {
        int sig;
        sigwait(&stop, &sig);
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(s.not_found);
    return rc;
}
