/* metrics.c -- the registry, the text format and the /metrics listener; see metrics.h.
 *
 * Families are a list kept sorted by name, each with its series in the
 * order they were made; both only grow, under REGISTRY.lock, and are read
 * under it when a scrape renders them.  A series' numbers are atomics:
 *
 *   counter    whole  (integer adds)  + bits (a double, for fractional adds)
 *   gauge      bits   (a double)
 *   histogram  buckets[nbounds + 1] (not cumulative; the last is +Inf) and
 *              bits (the sum); the count is the buckets' total, so that a
 *              scrape during an observation never shows count != +Inf.
 *
 * A double is added by compare-and-swap of its bits.  The process' own
 * figures come from /proc/self/stat, /proc/self/fd and getrlimit.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "sbuf.h"
#include "xalloc.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "dev"
#endif

typedef enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type;

static const char *const metrics_type_names[] = {"counter", "gauge", "histogram"};

struct metrics_series {
    const metrics_family *family;
    char *values[METRICS_MAX_LABELS];
    _Atomic uint64_t whole;
    _Atomic uint64_t bits;
    _Atomic uint64_t *buckets;
    metrics_series *next;
};

struct metrics_family {
    char *name, *help;
    metrics_type type;
    char *labels[METRICS_MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    char **le; /* the bounds as the le label writes them, "+Inf" last */
    metrics_series *first, *last;
    size_t nseries;
    metrics_series *overflow; /* beyond METRICS_MAX_SERIES: counts, never shown */
    metrics_family *next;
};

static struct {
    pthread_mutex_t lock;
    metrics_family *families;
    char program[64];
    struct MHD_Daemon *daemon;
    int port;
} REGISTRY = {.lock = PTHREAD_MUTEX_INITIALIZER, .program = "imgfeed"};

const double METRICS_SECONDS_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10,   30};
const size_t METRICS_SECONDS_NBUCKETS = sizeof METRICS_SECONDS_BUCKETS / sizeof METRICS_SECONDS_BUCKETS[0];

static void metrics_put_number(sbuf *b, double v);

/* --- registering --- */

static size_t metrics_split_labels(const char *labels, char **out) {
    size_t n = 0;
    if (!labels) return 0;
    const char *p = labels;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len) {
            if (n == METRICS_MAX_LABELS) abort(); /* a programming error */
            out[n++] = xstrndup(p, len);
        }
        p += len;
        if (*p == ',') p++;
    }
    return n;
}

static bool metrics_same_labels(const metrics_family *f, char **labels, size_t n) {
    if (f->nlabels != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->labels[i], labels[i]) != 0) return false;
    return true;
}

static metrics_family *metrics_register(metrics_type type, const char *name, const char *help, const char *labels,
                                        const double *bounds, size_t nbounds) {
    char *names[METRICS_MAX_LABELS];
    size_t n = metrics_split_labels(labels, names);
    pthread_mutex_lock(&REGISTRY.lock);
    metrics_family **at = &REGISTRY.families;
    while (*at && strcmp((*at)->name, name) < 0) at = &(*at)->next;
    metrics_family *f = *at;
    if (f && strcmp(f->name, name) == 0) {
        if (f->type != type || !metrics_same_labels(f, names, n)) {
            log_error("metrics: %s registered twice, differently", name);
            abort();
        }
        for (size_t i = 0; i < n; i++) free(names[i]);
        pthread_mutex_unlock(&REGISTRY.lock);
        return f;
    }
    f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->type = type;
    memcpy(f->labels, names, n * sizeof *names);
    f->nlabels = n;
    if (type == METRICS_HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = xmalloc(nbounds * sizeof *bounds);
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->le = xcalloc(nbounds + 1, sizeof *f->le);
        for (size_t i = 0; i < nbounds; i++) {
            sbuf text = {0};
            metrics_put_number(&text, bounds[i]);
            sbuf_addc(&text, '\0');
            f->le[i] = text.p;
        }
        f->le[nbounds] = xstrdup("+Inf");
    }
    f->next = *at;
    *at = f;
    pthread_mutex_unlock(&REGISTRY.lock);
    return f;
}

metrics_family *metrics_counter(const char *name, const char *help, const char *labels) {
    return metrics_register(METRICS_COUNTER, name, help, labels, NULL, 0);
}

metrics_family *metrics_gauge(const char *name, const char *help, const char *labels) {
    return metrics_register(METRICS_GAUGE, name, help, labels, NULL, 0);
}

metrics_family *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                                  size_t nbounds) {
    if (!bounds) {
        bounds = METRICS_SECONDS_BUCKETS;
        nbounds = METRICS_SECONDS_NBUCKETS;
    }
    return metrics_register(METRICS_HISTOGRAM, name, help, labels, bounds, nbounds);
}

static metrics_series *metrics_series_new(const metrics_family *f, const char **values) {
    metrics_series *s = xcalloc(1, sizeof *s);
    s->family = f;
    for (size_t i = 0; i < f->nlabels; i++) s->values[i] = xstrdup(values[i] ? values[i] : "");
    if (f->type == METRICS_HISTOGRAM) {
        s->buckets = xmalloc((f->nbounds + 1) * sizeof *s->buckets);
        for (size_t i = 0; i <= f->nbounds; i++) atomic_init(&s->buckets[i], 0);
    }
    return s;
}

metrics_series *metrics_get(metrics_family *f, ...) {
    const char *values[METRICS_MAX_LABELS] = {0};
    va_list ap;
    va_start(ap, f);
    for (size_t i = 0; i < f->nlabels; i++) values[i] = va_arg(ap, const char *);
    va_end(ap);
    pthread_mutex_lock(&REGISTRY.lock);
    metrics_series *s = f->first;
    for (; s; s = s->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i] ? values[i] : "") == 0) i++;
        if (i == f->nlabels) break;
    }
    if (!s && f->nseries >= METRICS_MAX_SERIES) {
        if (!f->overflow) {
            log_warn("metrics: %s has %d series already; further ones are counted but not exposed", f->name,
                     METRICS_MAX_SERIES);
            f->overflow = metrics_series_new(f, values);
        }
        s = f->overflow;
    } else if (!s) {
        s = metrics_series_new(f, values);
        if (f->last)
            f->last->next = s;
        else
            f->first = s;
        f->last = s;
        f->nseries++;
    }
    pthread_mutex_unlock(&REGISTRY.lock);
    return s;
}

/* --- updating --- */

static double metrics_bits_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static uint64_t metrics_double_bits(double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

static void metrics_bits_add(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, metrics_double_bits(metrics_bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void metrics_inc(metrics_series *s) { atomic_fetch_add_explicit(&s->whole, 1, memory_order_relaxed); }

void metrics_add(metrics_series *s, uint64_t n) { atomic_fetch_add_explicit(&s->whole, n, memory_order_relaxed); }

void metrics_add_double(metrics_series *s, double v) {
    if (v > 0) metrics_bits_add(&s->bits, v); /* a counter only goes up */
}

void metrics_set(metrics_series *s, double v) {
    atomic_store_explicit(&s->bits, metrics_double_bits(v), memory_order_relaxed);
}

void metrics_gauge_add(metrics_series *s, double delta) { metrics_bits_add(&s->bits, delta); }

void metrics_observe(metrics_series *s, double v) {
    const metrics_family *f = s->family;
    size_t i = 0;
    while (i < f->nbounds && !(v <= f->bounds[i])) i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    metrics_bits_add(&s->bits, v);
}

double metrics_value(const metrics_series *s) {
    switch (s->family->type) {
    case METRICS_COUNTER:
        return (double)atomic_load_explicit(&s->whole, memory_order_relaxed) +
               metrics_bits_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
    case METRICS_GAUGE: return metrics_bits_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
    case METRICS_HISTOGRAM: break;
    }
    uint64_t n = 0;
    for (size_t i = 0; i <= s->family->nbounds; i++) n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    return (double)n;
}

const char *metrics_status_label(long status) {
    static const char *const known[] = {"200", "204", "206", "301", "302", "303", "304", "307", "308", "400",
                                        "401", "403", "404", "408", "410", "413", "416", "429", "500", "502",
                                        "503", "504", "520", "521", "522", "523", "524"};
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    if (status <= 0) return "none";
    char text[24];
    snprintf(text, sizeof text, "%ld", status);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i], text) == 0) return known[i];
    if (status >= 100 && status < 600) return classes[status / 100 - 1];
    return "other";
}

void metrics_set_program(const char *program) {
    pthread_mutex_lock(&REGISTRY.lock);
    snprintf(REGISTRY.program, sizeof REGISTRY.program, "%s", program);
    pthread_mutex_unlock(&REGISTRY.lock);
}

/* --- the text format --- */

static void metrics_put(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

static void metrics_putf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void metrics_putf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sbuf_grow(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* S escaped for a HELP line (\\ and \n) or, with QUOTE, a label value (\" too). */
static void metrics_put_escaped(sbuf *b, const char *s, bool quote) {
    for (; *s; s++) {
        if (*s == '\\')
            metrics_put(b, "\\\\");
        else if (*s == '\n')
            metrics_put(b, "\\n");
        else if (quote && *s == '"')
            metrics_put(b, "\\\"");
        else
            sbuf_addc(b, *s);
    }
}

/* A number as Prometheus writes one: integers without a fraction, +Inf/-Inf/NaN. */
static void metrics_put_number(sbuf *b, double v) {
    if (isnan(v))
        metrics_put(b, "NaN");
    else if (isinf(v))
        metrics_put(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) { /* the common case, without printf */
        char digits[24], *d = digits + sizeof digits;
        uint64_t n = (uint64_t)fabs(v);
        do {
            *--d = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        if (v < 0) *--d = '-';
        sbuf_add(b, d, (size_t)(digits + sizeof digits - d));
    }
    else {
        char text[32];
        snprintf(text, sizeof text, "%.15g", v); /* the shortest that reads back the same, mostly */
        if (strtod(text, NULL) != v) snprintf(text, sizeof text, "%.17g", v);
        metrics_put(b, text);
    }
}

/* NAME{labels of S, and EXTRA="EXTRAV" when given} VALUE */
static void metrics_put_sample(sbuf *b, const metrics_family *f, const char *suffix, const metrics_series *s,
                               const char *extra, const char *extrav, double v) {
    metrics_put(b, f->name);
    metrics_put(b, suffix);
    if (f->nlabels || extra) {
        sbuf_addc(b, '{');
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i) sbuf_addc(b, ',');
            metrics_put(b, f->labels[i]);
            metrics_put(b, "=\"");
            metrics_put_escaped(b, s->values[i], true);
            sbuf_addc(b, '"');
        }
        if (extra) {
            if (f->nlabels) sbuf_addc(b, ',');
            metrics_put(b, extra);
            metrics_put(b, "=\"");
            metrics_put(b, extrav);
            sbuf_addc(b, '"');
        }
        sbuf_addc(b, '}');
    }
    sbuf_addc(b, ' ');
    metrics_put_number(b, v);
    sbuf_addc(b, '\n');
}

static void metrics_put_histogram(sbuf *b, const metrics_family *f, const metrics_series *s) {
    uint64_t total = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        total += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        metrics_put_sample(b, f, "_bucket", s, "le", f->le[i], (double)total);
    }
    metrics_put_sample(b, f, "_sum", s, NULL, NULL, metrics_bits_double(atomic_load_explicit(&s->bits, memory_order_relaxed)));
    metrics_put_sample(b, f, "_count", s, NULL, NULL, (double)total);
}

static void metrics_put_header(sbuf *b, const char *name, const char *help, const char *type) {
    metrics_putf(b, "# HELP %s ", name);
    metrics_put_escaped(b, help, false);
    metrics_putf(b, "\n# TYPE %s %s\n", name, type);
}

static void metrics_put_family(sbuf *b, const metrics_family *f) {
    metrics_put_header(b, f->name, f->help, metrics_type_names[f->type]);
    for (const metrics_series *s = f->first; s; s = s->next) {
        if (f->type == METRICS_HISTOGRAM)
            metrics_put_histogram(b, f, s);
        else
            metrics_put_sample(b, f, "", s, NULL, NULL, metrics_value(s));
    }
}

/* A family of one sample without labels. */
static void metrics_put_one(sbuf *b, const char *name, const char *help, const char *type, double v) {
    metrics_put_header(b, name, help, type);
    metrics_put(b, name);
    sbuf_addc(b, ' ');
    metrics_put_number(b, v);
    sbuf_addc(b, '\n');
}

/* The figures every Prometheus client library exports about its process. */
static void metrics_put_process(sbuf *b) {
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char stat[1024] = "";
    FILE *fp = fopen("/proc/self/stat", "r");
    if (fp) {
        size_t n = fread(stat, 1, sizeof stat - 1, fp);
        stat[n] = '\0';
        fclose(fp);
    }
    /* After the command's ")": field 3 (state) onwards; utime is field 14. */
    const char *p = strrchr(stat, ')');
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0;
    bool have = p && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld",
                            &utime, &stime, &start, &vsize, &rss) == 5;
    static double boot; /* the boot time does not change: read once (under the registry's lock) */
    fp = boot > 0 ? NULL : fopen("/proc/stat", "r");
    if (fp) {
        char line[256];
        while (fgets(line, sizeof line, fp))
            if (sscanf(line, "btime %lf", &boot) == 1) break;
        fclose(fp);
    }
    if (have && ticks > 0) {
        metrics_put_one(b, "process_cpu_seconds_total", "user and system CPU time spent, in seconds", "counter",
                        (double)(utime + stime) / (double)ticks);
        metrics_put_one(b, "process_resident_memory_bytes", "resident memory size, in bytes", "gauge",
                        (double)rss * (double)page);
        metrics_put_one(b, "process_virtual_memory_bytes", "virtual memory size, in bytes", "gauge", (double)vsize);
        if (boot > 0)
            metrics_put_one(b, "process_start_time_seconds", "start time of the process since the Unix epoch, in seconds",
                            "gauge", boot + (double)start / (double)ticks);
    }
    long fds = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        fds = 0;
        while (readdir(d)) fds++;
        closedir(d);
        fds -= 3; /* ".", ".." and the directory's own descriptor */
    }
    if (fds >= 0) metrics_put_one(b, "process_open_fds", "open file descriptors", "gauge", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        metrics_put_one(b, "process_max_fds", "the limit of open file descriptors", "gauge", (double)rl.rlim_cur);
}

char *metrics_render(size_t *len) {
    sbuf b = {0};
    pthread_mutex_lock(&REGISTRY.lock);
    metrics_put_header(&b, "imgfeed_build_info", "the program and its version; always 1", "gauge");
    metrics_put(&b, "imgfeed_build_info{program=\"");
    metrics_put_escaped(&b, REGISTRY.program, true);
    metrics_put(&b, "\",version=\"" IMGFEED_VERSION "\"} 1\n");
    for (const metrics_family *f = REGISTRY.families; f; f = f->next) metrics_put_family(&b, f);
    metrics_put_process(&b);
    pthread_mutex_unlock(&REGISTRY.lock);
    sbuf_addc(&b, '\0');
    *len = b.len - 1;
    return b.p;
}

/* --- the listener --- */

static enum MHD_Result metrics_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                       const char *version, const char *upload, size_t *upload_len, void **state) {
    (void)cls, (void)version, (void)upload, (void)upload_len;
    static int seen;
    if (!*state) { /* the headers only: answering now would close the connection (no keep-alive) */
        *state = &seen;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return httpd_answer_text(c, 405, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *body = metrics_render(&len);
        return httpd_answer(c, 200, METRICS_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/") == 0) return httpd_answer_text(c, 200, "%s: the metrics are at /metrics\n", REGISTRY.program);
    return httpd_answer_text(c, 404, "not found; the metrics are at /metrics\n");
}

int metrics_serve(const char *listen, char *why, size_t whylen) {
    if (!listen || !*listen) return 0;
    if (REGISTRY.daemon) {
        snprintf(why, whylen, "metrics are served already");
        return -1;
    }
    httpd_config hc = {
        .listen = listen,
        .flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
        .handler = metrics_request,
        .connection_limit = 16,
        .connection_memory = 32 * 1024, /* a scrape's request is a few headers; a larger pool costs time per connection */
        .timeout_s = 10,
    };
    char reason[256];
    int port = 0;
    struct MHD_Daemon *d = httpd_start(&hc, &port, reason, sizeof reason);
    if (!d) {
        snprintf(why, whylen, "--metrics-listen: %s", reason);
        return -1;
    }
    REGISTRY.daemon = d;
    REGISTRY.port = port;
    log_info("metrics on http://%s/metrics (metrics port %d)", listen, port);
    return 0;
}

int metrics_port(void) { return REGISTRY.port; }

void metrics_stop(void) {
    if (!REGISTRY.daemon) return;
    MHD_stop_daemon(REGISTRY.daemon);
    REGISTRY.daemon = NULL;
    REGISTRY.port = 0;
}
