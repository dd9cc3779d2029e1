/* metrics.h -- Prometheus metrics of a process, and the listener that serves them.
 *
 * One registry per process holds families (a name, a help text, a type and
 * the names of its labels) and, in each, the series of one combination of
 * label values.  A module registers what it updates when it starts:
 *
 *   metrics_family *f = metrics_counter("imgfeed_items_published_total",
 *                                       "items published", "site,board");
 *   metrics_series *s = metrics_get(f, "4chan", "g");   -- once, at setup
 *   ...
 *   metrics_add(s, n);                                  -- on the hot path
 *
 * Registering is idempotent (the same name gives the same family, so two
 * modules or two objects of a test share it) and takes the registry's lock;
 * updating takes no lock: a relaxed atomic add or store on the series, which
 * costs a few nanoseconds.  A series lives as long as the process.
 *
 * Labels must be bounded: their values come from the settings (sites,
 * boards) or from fixed lists (metrics_status_label, reasons), never from
 * what a site or a message says.  As a last guard a family holds at most
 * METRICS_MAX_SERIES series; metrics_get beyond that returns a series that
 * counts but is never exposed, and logs it once.
 *
 * metrics_serve() starts the listener (--metrics-listen, design.md
 * "Metrics"): GET /metrics answers the text format 0.0.4, rendered under the
 * registry's lock from the atomics, with the process' CPU, memory, file
 * descriptors and start time (process_*, read from /proc/self at scrape
 * time) and imgfeed_build_info{program,version} added.  It runs on one
 * thread of libmicrohttpd of its own, so a scrape never waits for the
 * process' work nor the work for a scrape.
 */
#ifndef IMGFEED_METRICS_H
#define IMGFEED_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 4096
#define METRICS_MAX_LABELS 4
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct metrics_family metrics_family;
typedef struct metrics_series metrics_series;

/* Register (or find) a family.  NAME as Prometheus wants it ([a-zA-Z_:][a-zA-Z0-9_:]*);
 * LABELS the comma-separated label names, or NULL/"" for none.  A second
 * registration of NAME must have the same type and labels (it aborts
 * otherwise: a programming error). */
metrics_family *metrics_counter(const char *name, const char *help, const char *labels);
metrics_family *metrics_gauge(const char *name, const char *help, const char *labels);
/* BOUNDS: the upper bounds of the buckets, increasing (+Inf is implied);
 * NULL takes METRICS_SECONDS_BUCKETS. */
metrics_family *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                                  size_t nbounds);

/* Buckets for durations of requests and commits: 1 ms .. 30 s. */
extern const double METRICS_SECONDS_BUCKETS[];
extern const size_t METRICS_SECONDS_NBUCKETS;

/* The series of F with the label values given (as many const char * as F
 * has labels; none for a family without).  Created, at zero, on first use. */
metrics_series *metrics_get(metrics_family *f, ...);

/* Counters. */
void metrics_inc(metrics_series *s);
void metrics_add(metrics_series *s, uint64_t n);
void metrics_add_double(metrics_series *s, double v);
/* Gauges. */
void metrics_set(metrics_series *s, double v);
void metrics_gauge_add(metrics_series *s, double delta);
/* Histograms. */
void metrics_observe(metrics_series *s, double v);

/* A series' value: a counter's or gauge's, a histogram's count (tests). */
double metrics_value(const metrics_series *s);

/* The label of an HTTP status, from a fixed list: the usual codes as
 * themselves ("200", "404", "429"), others as their class ("5xx"), and 0
 * (no answer: refused, reset, timed out) as "none". */
const char *metrics_status_label(long status);

/* Everything in the text format 0.0.4, with the process' own metrics; a
 * NUL-terminated string of *LEN bytes the caller frees. */
char *metrics_render(size_t *len);

/* Name the program (imgfeed_build_info{program}); once, before serving. */
void metrics_set_program(const char *program);

/* Serve GET /metrics on LISTEN ("HOST:PORT", port 0 picks one); NULL or ""
 * serves nothing.  Logs "metrics on http://LISTEN/metrics (metrics port N)".
 * 0, or -1 with the reason in WHY. */
int metrics_serve(const char *listen, char *why, size_t whylen);
/* The port served, or 0. */
int metrics_port(void);
/* Stop serving (waits for a scrape in progress). */
void metrics_stop(void);

#endif
