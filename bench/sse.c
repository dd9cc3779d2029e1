/* sse.c -- bench_sse: many viewers of imgfeed-live at once, and the items
 * they watch, for bench/live.sh.
 *
 *   bench_sse --port P --viewers N --stalled S --seconds T
 *             [--rate R --amqp-url URL --exchange E]
 *
 * Opens N event streams to 127.0.0.1:P (/events?topic=bench.%23), S of them
 * stalled: they send their request with a 4 KB receive buffer and never
 * read.  The others read everything, in one thread with epoll.  With --rate
 * it also publishes R items a second to E under bench.post.b for T seconds
 * (from a thread and a broker connection of its own, so that reading never
 * holds the publishing back; the items due go out together, at most 50 a
 * message, as the hasher batches them),
 * each with one hashed picture and the time it was published
 * (CLOCK_REALTIME, in its text), so that the viewers measure the latency
 * from publish to event.  Latency is taken on every reading viewer but
 * recorded for at most LATENCY_VIEWERS of them (the others only count
 * events), so the tool spends its CPU reading, not sorting.
 *
 * Without --rate it only watches for T seconds (bench/pipeline.sh's items
 * flow meanwhile).  It prints one line of JSON: viewers connected, events,
 * dropped notices, latency p50/p90/p99/max in ms, items published.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mq.h"
#include "timeutil.h"
#include "xalloc.h"

#define LATENCY_VIEWERS 100
#define READ_BUF 65536
#define PUB_BATCH 50 /* items in one message at most */

typedef struct viewer {
    int fd;
    bool stalled, sample;
    char tail[64]; /* the end of what was read, for a marker cut between reads */
    size_t tail_len;
    uint64_t events, dropped;
} viewer;

static double *lat;
static size_t nlat, lat_cap;

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_stream(int port, bool stalled) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (stalled) {
        int small = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    const char *req = "GET /events?topic=bench.%23 HTTP/1.1\r\nHost: bench\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Count the frames of the LEN bytes at P read by V; on a sampled viewer,
 * the latency of each event from the "t=<ns>" its text carries. */
static void scan(viewer *v, const char *p, size_t len, int64_t now) {
    /* markers may straddle two reads: glue the tail of the last read on */
    char buf[READ_BUF + sizeof v->tail];
    memcpy(buf, v->tail, v->tail_len);
    memcpy(buf + v->tail_len, p, len);
    size_t n = v->tail_len + len;
    const char *s = buf, *end = buf + n;
    for (const char *q = s; (q = memmem(q, (size_t)(end - q), "event: ", 7)); q += 7) {
        if (end - q < 12) break;
        if (memcmp(q + 7, "item", 4) == 0) {
            v->events++;
            if (v->sample) {
                const char *t = memmem(q, (size_t)(end - q), "\"text\":\"t=", 10);
                char *stop = NULL;
                int64_t sent = t && end - t > 31 ? strtoll(t + 10, &stop, 10) : 0;
                if (sent && stop < end && *stop == '"') { /* all its digits were read */
                    if (nlat == lat_cap) {
                        lat_cap = lat_cap ? 2 * lat_cap : 65536;
                        lat = xrealloc(lat, lat_cap * sizeof *lat);
                    }
                    lat[nlat++] = (double)(now - sent) / 1e6;
                }
            }
        } else if (memcmp(q + 7, "drop", 4) == 0) {
            v->dropped++;
        }
        s = q + 7;
    }
    /* keep the last bytes after the last marker seen, at most the tail's size */
    size_t keep = n < sizeof v->tail ? n : sizeof v->tail;
    if ((size_t)(end - s) < keep) keep = (size_t)(end - s);
    memcpy(v->tail, end - keep, keep);
    v->tail_len = keep;
}

typedef struct publisher {
    pthread_t th;
    const char *amqp, *exchange;
    double rate;
    int64_t start, end; /* CLOCK_MONOTONIC ns */
    atomic_uint_fast64_t published;
    int status;
} publisher;

/* Publish RATE items a second until END, each stamped with its wall time. */
static void *publish_main(void *arg) {
    publisher *p = arg;
    mq_options o = {.url = p->amqp, .exchange = p->exchange, .heartbeat_ms = 30000, .max_attempts = 5};
    mq *q = NULL;
    if (mq_new(&o, &q) != MQ_OK) {
        p->status = 1;
        return NULL;
    }
    uint64_t n = 0;
    static char body[PUB_BATCH * 512 + 16];
    while (time_mono_ns() < p->end) {
        int64_t now = time_mono_ns();
        uint64_t due = (uint64_t)((double)(now - p->start) * p->rate / 1e9) + 1;
        if (due <= n) {
            time_sleep_ms(1);
            continue;
        }
        /* the items due, as one message of at most PUB_BATCH (a hasher publishes batches too) */
        size_t k = due - n > PUB_BATCH ? PUB_BATCH : (size_t)(due - n), len = 0;
        body[len++] = '[';
        for (size_t i = 0; i < k; i++) {
            uint64_t id = n + i;
            len += (size_t)snprintf(body + len, sizeof body - len,
                     "%s{\"_id\": \"%" PRIu64 "\", \"_chan\": \"bench\", \"_board\": \"b\", \"_type\": \"post\","
                     " \"com\": \"t=%" PRId64 "\", \"_urls\": [\"http://127.0.0.1:9/%" PRIu64 ".jpg\"], \"_files\": 1,"
                     " \"_img\": [{\"url\": 0, \"size\": 1000, \"width\": 640, \"height\": 480, \"format\": \"jpeg\","
                     " \"sha1\": \"5d6151241dfb5c65cb3f736f22b4cda978cc1cd0\", \"phash\": \"jVVSItap1dlSX0zZUmE2ZqZn\"}]}",
                     i ? ", " : "", id, wall_ns(), id);
        }
        body[len++] = ']';
        mq_message m = {.routing_key = "bench.post.b", .body = body, .len = len};
        if (mq_publish(q, mq_target_name(q, MQ_EXCHANGE_ITEMS), &m, 1) != MQ_OK) {
            p->status = 1;
            break;
        }
        n += k;
        atomic_store(&p->published, n);
    }
    mq_free(q);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) { return nlat ? lat[(size_t)(p * (double)(nlat - 1))] : 0; }

int main(int argc, char **argv) {
    int port = 0, nviewers = 100, nstalled = 0;
    double seconds = 10, rate = 0;
    const char *amqp = NULL, *exchange = "chan";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--viewers")) nviewers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stalled")) nstalled = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--amqp-url")) amqp = argv[i + 1];
        else if (!strcmp(argv[i], "--exchange")) exchange = argv[i + 1];
        else {
            fprintf(stderr, "bench_sse: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!port || nviewers < 1 || nstalled > nviewers || (rate > 0 && !amqp)) {
        fprintf(stderr, "usage: bench_sse --port P --viewers N --stalled S --seconds T [--rate R --amqp-url U --exchange E]\n");
        return 2;
    }
    viewer *vs = xcalloc((size_t)nviewers, sizeof *vs);
    int ep = epoll_create1(0), sampled = 0;
    for (int i = 0; i < nviewers; i++) {
        vs[i].stalled = i < nstalled;
        vs[i].fd = open_stream(port, vs[i].stalled);
        if (vs[i].fd < 0) {
            fprintf(stderr, "bench_sse: viewer %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (!vs[i].stalled) {
            vs[i].sample = sampled++ < LATENCY_VIEWERS;
            struct epoll_event e = {.events = EPOLLIN, .data.ptr = &vs[i]};
            epoll_ctl(ep, EPOLL_CTL_ADD, vs[i].fd, &e);
        }
    }
    time_sleep_ms(1000); /* every stream joined */
    int64_t start = time_mono_ns(), end = start + (int64_t)(seconds * 1e9);
    publisher pub = {.amqp = amqp, .exchange = exchange, .rate = rate, .start = start, .end = end};
    if (rate > 0) pthread_create(&pub.th, NULL, publish_main, &pub);
    static char buf[READ_BUF];
    struct epoll_event evs[256];
    while (time_mono_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        int64_t now = wall_ns();
        for (int i = 0; i < n; i++) {
            viewer *v = evs[i].data.ptr;
            for (;;) {
                ssize_t r = read(v->fd, buf, sizeof buf);
                if (r <= 0) break;
                scan(v, buf, (size_t)r, now);
            }
        }
    }
    if (rate > 0) pthread_join(pub.th, NULL);
    if (pub.status) {
        fprintf(stderr, "bench_sse: publishing failed\n");
        return 1;
    }
    uint64_t published = atomic_load(&pub.published);
    time_sleep_ms(500);
    /* what is still in flight */
    int n = epoll_wait(ep, evs, 256, 0);
    for (int i = 0; i < n; i++) {
        viewer *v = evs[i].data.ptr;
        ssize_t r;
        while ((r = read(v->fd, buf, sizeof buf)) > 0)
            scan(v, buf, (size_t)r, wall_ns());
    }
    uint64_t events = 0, dropped = 0, min_events = UINT64_MAX;
    for (int i = 0; i < nviewers; i++) {
        if (vs[i].stalled) continue;
        events += vs[i].events;
        dropped += vs[i].dropped;
        if (vs[i].events < min_events) min_events = vs[i].events;
        close(vs[i].fd);
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    printf("{\"viewers\": %d, \"stalled\": %d, \"published\": %" PRIu64 ", \"events\": %" PRIu64
           ", \"min_events_per_viewer\": %" PRIu64 ", \"dropped_notices\": %" PRIu64
           ", \"latency_samples\": %zu, \"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
           nviewers, nstalled, published, events, min_events == UINT64_MAX ? 0 : min_events, dropped, nlat, pct(0.5),
           pct(0.9), pct(0.99), nlat ? lat[nlat - 1] : 0);
    for (int i = 0; i < nstalled; i++)
        close(vs[i].fd);
    free(vs);
    free(lat);
    close(ep);
    return 0;
}
