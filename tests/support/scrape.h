/* scrape.h -- a program's Prometheus metrics, read as Prometheus reads them.
 *
 * The daemon tests start imgfeed's programs with --metrics-listen
 * 127.0.0.1:0 and hold what their GET /metrics says against what the test
 * made happen: the port the child logged, one scrape over loopback with
 * libcurl, the value of one sample line, and a wait until a counter has
 * counted what it must.  A SAMPLE is the sample's name and labels exactly as
 * exposed, "imgfeed_items_received_total" or
 * "imgfeed_dead_lettered_total{reason=\"unparsable\"}"; its line is
 * "SAMPLE VALUE".
 *
 * Every failure fails the test (cmocka).
 */
#ifndef IMGFEED_TEST_SCRAPE_H
#define IMGFEED_TEST_SCRAPE_H

#include <stdbool.h>

#include "proc.h"

/* Waits for the log line "(metrics port N)" of P, a child started with
 * --metrics-listen 127.0.0.1:0, and returns N (the newest one). */
int scrape_port(const proc *p);
/* GET http://127.0.0.1:PORT/metrics: the body, NUL-terminated (the caller
 * frees).  Fails the test when nothing answers or the status is not 200. */
char *scrape_get(int port);
/* The value of SAMPLE in the scrape TEXT into *VALUE (when VALUE is not
 * NULL); false when TEXT has no such line. */
bool scrape_find(const char *text, const char *sample, double *value);
/* The value of SAMPLE in TEXT; fails the test, showing TEXT, when absent. */
double scrape_sample(const char *text, const char *sample);
/* The value of SAMPLE in one scrape of PORT; fails the test when absent. */
double scrape_value(int port, const char *sample);
/* Waits until the counter SAMPLE of PORT reaches WANT (a counter only
 * grows), then it must be WANT; fails the test after PROC_GUARD_MS. */
void scrape_expect(int port, const char *sample, double want);
/* The same for SAMPLE summed over the N PORTS (programs sharing one queue). */
void scrape_expect_sum(const int *ports, int n, const char *sample, double want);

#endif
