/* test_monitoring.c -- the metrics of every program, scraped by a real Prometheus.
 *
 * A pipeline runs against a generated 4chan-like fixture site: the crawler,
 * the hasher, the archiver, the live view and the search service, each with
 * --metrics-listen 127.0.0.1:0, while Debian's Prometheus scrapes them every
 * second, with RabbitMQ's own endpoint (rabbitmq_prometheus, enabled by
 * tests/lib/servers.sh) and Debian's PostgreSQL exporter, using the scrape
 * jobs and the alert rules of deploy/prometheus (deploy/prometheus/local_config.py
 * makes the configuration for loopback targets, as for deploy/quickstart.sh
 * --monitor).  The site answers one 500 and one truncated thread on the
 * way, so the error panels have something to show.  Then:
 *
 *   - Prometheus' answers for the items published, the rows written and the
 *     images hashed equal the counts of the run (from the fixture and the
 *     archive's own SQL);
 *   - every target is up and every rule evaluates without error;
 *   - every panel query of deploy/grafana's dashboard returns data
 *     (tests/monitoring/dashboard_queries.py);
 *   - each program's exposition passes `promtool check metrics`, and
 *     docs/metrics.md lists exactly what they expose (tests/monitoring/metrics_doc.py);
 *   - a second crawler follows a hostile reddit site, r/all, whose 100 posts
 *     name 77 other subreddits: its series are those of its settings, none more.
 *
 * Nothing is timed: waits end at a guard deadline and then print the logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "fixture.h"
#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "sbuf.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 90000
#define SITE "mon"
#define BOARDS 2
#define THREADS 4
#define POSTS 6
#define IMAGES 5 /* of every 10 posts with a file */

enum { CRAWLER, HASHER, ARCHIVER, LIVE, SEARCH, HOSTILE, NPROGS };
static const char *const PROGRAMS[NPROGS] = {"crawler/imgfeed-crawler", "hasher/imgfeed-hasher",
                                             "archiver/imgfeed-archiver", "live/imgfeed-live",
                                             "search/imgfeed-search", "crawler/imgfeed-crawler"};

typedef struct ctx {
    char *exchange, *hostile_exchange;
    char *dir;
    fixture fx;
    proc progs[NPROGS];
    int ports[NPROGS]; /* their metrics ports */
    proc prometheus, exporter;
    int prometheus_port, exporter_port;
    long posts, files; /* of the fixture site */
} ctx;

static ctx t;

static int setup(void **state) {
    (void)state;
    memset(&t, 0, sizeof t);
    t.exchange = xasprintf("t%dm", (int)getpid());
    t.hostile_exchange = xasprintf("t%dh", (int)getpid());
    t.dir = testenv_tmpdir("monitoring-test");
    fixture_start(&t.fx);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    for (int i = 0; i < NPROGS; i++) proc_release(&t.progs[i]);
    proc_release(&t.prometheus);
    proc_release(&t.exporter);
    fixture_stop(&t.fx);
    mq_admin_delete_topology(t.exchange, NULL);
    mq_admin_delete_topology(t.hostile_exchange, NULL);
    char *prefix = xasprintf("%s_", t.exchange);
    pgtest_drop_tables(prefix);
    free(prefix);
    pgtest_close();
    testenv_rmtree(t.dir);
    free(t.dir);
    free(t.exchange);
    free(t.hostile_exchange);
    return 0;
}

static void fail_with_logs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_with_logs(const char *fmt, ...) {
    for (int i = 0; i < NPROGS; i++)
        if (t.progs[i].log) proc_print_log(&t.progs[i]);
    if (t.prometheus.log) proc_print_log(&t.prometheus);
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    fail_msg("%s", msg);
}

static int64_t deadline_in(int64_t ms) { return time_mono_ns() + ms * TIME_NS_PER_MS; }
static bool past(int64_t deadline) { return time_mono_ns() > deadline; }
static void pause_ms(int64_t ms) { time_sleep_ns(ms * TIME_NS_PER_MS); }

/* --- HTTP over loopback --- */

static size_t keep(char *data, size_t size, size_t n, void *arg) {
    sbuf_add(arg, data, size * n);
    return size * n;
}

/* GET URL: the status (0 when nothing answered), the body NUL-terminated in *BODY (the caller frees). */
static long http_get(const char *url, char **body) {
    sbuf b = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    sbuf_addc(&b, '\0');
    *body = b.p;
    return status;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) fail_msg("cannot write %s: %s", path, strerror(errno));
}

/* Run the shell command; its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    free(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* --- the fixture site and the sites files --- */

static void make_site(void) {
    json_object_put(fixture_control(&t.fx, "chan/site?name=%s&kind=4chan", SITE));
    for (int b = 0; b < BOARDS; b++)
        json_object_put(fixture_control(&t.fx, "chan/board?site=%s&board=b%d&threads=%d&posts=%d&images=%d&seed=%d",
                                        SITE, b, THREADS, POSTS, IMAGES, 70 + b));
    /* Every post and every file of the site. */
    for (int b = 0; b < BOARDS; b++) {
        json_object *info = fixture_control(&t.fx, "chan/info?site=%s&board=b%d", SITE, b), *threads;
        assert_true(json_object_object_get_ex(info, "threads", &threads));
        for (size_t i = 0; i < json_object_array_length(threads); i++) {
            json_object *no, *thread, *nos, *files;
            assert_true(json_object_object_get_ex(json_object_array_get_idx(threads, i), "no", &no));
            thread = fixture_control(&t.fx, "chan/info?site=%s&board=b%d&no=%" PRId64, SITE, b,
                                     json_object_get_int64(no));
            assert_true(json_object_object_get_ex(thread, "post_nos", &nos));
            assert_true(json_object_object_get_ex(thread, "files", &files));
            t.posts += (long)json_object_array_length(nos);
            t.files += (long)json_object_array_length(files);
            if (b == 0 && i == 1) /* one truncated answer, once: refused, read again at the next poll */
                json_object_put(fixture_control(&t.fx, "chan/fault?site=%s&path=/%s/b0/thread/%" PRId64 ".json&broken=1&count=1",
                                                SITE, SITE, json_object_get_int64(no)));
            json_object_put(thread);
        }
        json_object_put(info);
    }
    /* One 500 on b1's index, retried. */
    json_object_put(fixture_control(&t.fx, "chan/fault?site=%s&path=/%s/b1/threads.json&status=500&count=1", SITE, SITE));
}

static char *write_sites(void) {
    char *path = xasprintf("%s/sites.json", t.dir);
    char *api = fixture_url(&t.fx, "/%s", SITE), *media = fixture_url(&t.fx, "/%s/media", SITE);
    char *text = xasprintf("{\"user_agent\": \"imgfeed-test/1 (+https://example.invalid/contact)\",\n"
                           " \"sites\": [{\"name\": \"%s\", \"kind\": \"4chan\", \"api\": \"%s\", \"media\": \"%s\",\n"
                           "            \"boards\": [\"b0\", \"b1\"], \"rps\": 200}]}\n",
                           SITE, api, media);
    write_text(path, text);
    free(text);
    free(api);
    free(media);
    return path;
}

/* A reddit site whose r/all answers a recorded listing of the real site:
 * 100 posts of 77 subreddits, none of them "all". */
static char *write_hostile_sites(void) {
    json_object *o = fixture_control(&t.fx, "reddit/site?name=hostile"), *api;
    assert_true(json_object_object_get_ex(o, "api", &api));
    char *path = xasprintf("%s/hostile.json", t.dir);
    char *text = xasprintf("{\"user_agent\": \"imgfeed-test/1 (+https://example.invalid/contact)\",\n"
                           " \"sites\": [{\"name\": \"hostile\", \"kind\": \"reddit\", \"api\": \"%s\",\n"
                           "            \"boards\": [\"all\"], \"rps\": 200}]}\n",
                           json_object_get_string(api));
    write_text(path, text);
    free(text);
    json_object_put(o);
    return path;
}

/* --- the programs --- */

/* Start program I with --metrics-listen on its port (t.ports[I], chosen
 * beforehand, so that Prometheus scrapes it from its first second). */
static void start_program(int i, const char *const *args) {
    const char *argv[24];
    size_t n = 0;
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", t.ports[i]);
    argv[n++] = "--metrics-listen";
    argv[n++] = listen;
    for (size_t k = 0; args && args[k]; k++) argv[n++] = args[k];
    argv[n] = NULL;
    proc_start_imgfeed(&t.progs[i], PROGRAMS[i], i == HOSTILE ? t.hostile_exchange : t.exchange, argv);
}

/* --- Prometheus --- */

/* Start Debian's Prometheus with the configuration local_config.py makes
 * from deploy/prometheus for these loopback targets, scraped every second. */
static void start_prometheus(void) {
    t.prometheus_port = testenv_free_port();
    char *targets = xasprintf("crawler=127.0.0.1:%d crawler=127.0.0.1:%d hasher=127.0.0.1:%d archiver=127.0.0.1:%d "
                              "live=127.0.0.1:%d search=127.0.0.1:%d rabbitmq=%s",
                              t.ports[CRAWLER], t.ports[HOSTILE], t.ports[HASHER], t.ports[ARCHIVER], t.ports[LIVE],
                              t.ports[SEARCH], testenv_require("IMGFEED_TEST_RABBIT_METRICS"));
    char *exporter = t.exporter_port ? xasprintf(" postgres=127.0.0.1:%d", t.exporter_port) : xstrdup("");
    char *cfgdir = xasprintf("%s/prometheus", t.dir);
    if (run("/usr/bin/python3 %s/deploy/prometheus/local_config.py --interval 1s --out %s %s%s",
            testenv_source_dir(), cfgdir, targets, exporter) != 0)
        fail_msg("local_config.py failed");
    char *config = xasprintf("--config.file=%s/prometheus.yml", cfgdir);
    char *storage = xasprintf("--storage.tsdb.path=%s/data", cfgdir);
    char *listen = xasprintf("--web.listen-address=127.0.0.1:%d", t.prometheus_port);
    const char *argv[] = {"prometheus", config, storage, listen, "--log.level=warn", NULL};
    proc_start(&t.prometheus, "/usr/bin/prometheus", argv);
    char *url = xasprintf("http://127.0.0.1:%d/-/ready", t.prometheus_port), *body = NULL;
    int64_t deadline = deadline_in(GUARD_MS);
    while (http_get(url, &body) != 200) {
        free(body);
        if (past(deadline)) fail_with_logs("Prometheus is not ready");
        pause_ms(100);
    }
    free(body);
    free(url);
    free(listen);
    free(storage);
    free(config);
    free(cfgdir);
    free(exporter);
    free(targets);
}

/* Debian's PostgreSQL exporter on the suite's PostgreSQL, when installed. */
static void start_exporter(void) {
    if (access("/usr/bin/prometheus-postgres-exporter", X_OK) != 0) return;
    /* IMGFEED_PG is "host=H port=P user=U dbname=D" (tests/lib/servers.sh). */
    char host[64] = "", user[64] = "", db[64] = "";
    int port = 0;
    const char *pg = testenv_require("IMGFEED_PG");
    if (sscanf(pg, "host=%63s port=%d user=%63s dbname=%63s", host, &port, user, db) != 4)
        fail_msg("IMGFEED_PG is not of the form servers.sh writes: %s", pg);
    t.exporter_port = testenv_free_port();
    char *dsn = xasprintf("postgresql://%s@%s:%d/%s?sslmode=disable", user, host, port, db);
    setenv("DATA_SOURCE_NAME", dsn, 1);
    char *listen = xasprintf("--web.listen-address=127.0.0.1:%d", t.exporter_port);
    const char *argv[] = {"prometheus-postgres-exporter", listen, "--log.level=warn", NULL};
    proc_start(&t.exporter, "/usr/bin/prometheus-postgres-exporter", argv);
    unsetenv("DATA_SOURCE_NAME");
    free(listen);
    free(dsn);
}

/* The value of the PromQL expression QUERY (a single number), or -1 when it has none. */
static double prom_value(const char *query) {
    char *q = curl_easy_escape(NULL, query, 0);
    char *url = xasprintf("http://127.0.0.1:%d/api/v1/query?query=%s", t.prometheus_port, q), *body;
    curl_free(q);
    long status = http_get(url, &body);
    free(url);
    if (status != 200) fail_with_logs("Prometheus answered %ld to %s: %s", status, query, body);
    json_object *o = json_tokener_parse(body), *data, *result, *value;
    free(body);
    double v = -1;
    if (o && json_object_object_get_ex(o, "data", &data) && json_object_object_get_ex(data, "result", &result) &&
        json_object_array_length(result) == 1 &&
        json_object_object_get_ex(json_object_array_get_idx(result, 0), "value", &value))
        v = atof(json_object_get_string(json_object_array_get_idx(value, 1)));
    json_object_put(o);
    return v;
}

/* Wait until QUERY answers WANT; fails with the last answer at the guard deadline. */
static void wait_prom(const char *query, double want) {
    int64_t deadline = deadline_in(GUARD_MS);
    double v;
    while ((v = prom_value(query)) != want) {
        if (past(deadline)) fail_with_logs("Prometheus: %s = %g, expected %g", query, v, want);
        pause_ms(250);
    }
    fprintf(stderr, "Prometheus: %s = %g, as in the run\n", query, v);
}

/* Wait until QUERY answers at least WANT. */
static void wait_prom_at_least(const char *query, double want) {
    int64_t deadline = deadline_in(GUARD_MS);
    double v;
    while ((v = prom_value(query)) < want) {
        if (past(deadline)) fail_with_logs("Prometheus: %s = %g, expected at least %g", query, v, want);
        pause_ms(250);
    }
}

/* Every target is up; every rule group evaluated without error. */
static void check_targets_and_rules(void) {
    char *url = xasprintf("http://127.0.0.1:%d/api/v1/targets?state=active", t.prometheus_port), *body;
    int64_t deadline = deadline_in(GUARD_MS);
    for (;;) {
        assert_int_equal(http_get(url, &body), 200);
        json_object *o = json_tokener_parse(body), *data, *active;
        assert_true(json_object_object_get_ex(o, "data", &data) && json_object_object_get_ex(data, "activeTargets", &active));
        size_t n = json_object_array_length(active), up = 0;
        for (size_t i = 0; i < n; i++) {
            json_object *h;
            if (json_object_object_get_ex(json_object_array_get_idx(active, i), "health", &h) &&
                strcmp(json_object_get_string(h), "up") == 0)
                up++;
        }
        json_object_put(o);
        if (n >= 7 && up == n) {
            fprintf(stderr, "Prometheus: all %zu targets up\n", n);
            break;
        }
        if (past(deadline)) fail_with_logs("Prometheus targets: %zu of %zu up:\n%s", up, n, body);
        free(body);
        pause_ms(250);
    }
    free(body);
    free(url);
    url = xasprintf("http://127.0.0.1:%d/api/v1/rules", t.prometheus_port);
    assert_int_equal(http_get(url, &body), 200);
    json_object *o = json_tokener_parse(body), *data, *groups;
    assert_true(json_object_object_get_ex(o, "data", &data) && json_object_object_get_ex(data, "groups", &groups));
    size_t rules = 0;
    for (size_t g = 0; g < json_object_array_length(groups); g++) {
        json_object *list;
        assert_true(json_object_object_get_ex(json_object_array_get_idx(groups, g), "rules", &list));
        for (size_t r = 0; r < json_object_array_length(list); r++, rules++) {
            json_object *rule = json_object_array_get_idx(list, r), *health;
            if (json_object_object_get_ex(rule, "health", &health) &&
                strcmp(json_object_get_string(health), "err") == 0)
                fail_msg("a rule fails to evaluate: %s", json_object_to_json_string(rule));
        }
    }
    if (rules == 0) fail_msg("Prometheus loaded no rules: %s", body);
    fprintf(stderr, "Prometheus: %zu rules loaded, none failing\n", rules);
    json_object_put(o);
    free(body);
    free(url);
}

/* --- the test --- */

static long archive_rows(void) {
    char *threads = xasprintf("%s_%s_thread", t.exchange, SITE), *posts = xasprintf("%s_%s_post", t.exchange, SITE);
    long a = pgtest_count(threads), b = pgtest_count(posts);
    free(threads);
    free(posts);
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

static void test_monitoring(void **state) {
    (void)state;
    make_site();
    char *sites = write_sites(), *hostile = write_hostile_sites();
    char *state_dir = xasprintf("%s/state", t.dir), *hostile_state = xasprintf("%s/hostile-state", t.dir);

    const char *archiver_args[] = {"--flush-interval", "200ms", NULL};
    const char *hasher_args[] = {"--allow-net", "127.0.0.0/8", "--threads", "2", "--rps-per-host", "0", NULL};
    const char *live_args[] = {"--listen", "127.0.0.1:0", NULL};
    const char *search_args[] = {"--listen", "127.0.0.1:0", NULL};
    const char *crawler_args[] = {"--sites", sites, "--state-dir", state_dir, "--poll-interval", "1s",
                                  "--retries", "2", NULL};
    const char *hostile_args[] = {"--sites", hostile, "--state-dir", hostile_state, "--poll-interval", "1h", NULL};
    for (int i = 0; i < NPROGS; i++) t.ports[i] = testenv_free_port();
    start_program(ARCHIVER, archiver_args);
    start_program(HASHER, hasher_args);
    start_program(LIVE, live_args);
    start_program(SEARCH, search_args);
    start_exporter();
    start_prometheus();
    /* Prometheus scrapes the idle pipeline before the crawlers start, so that
     * the run is an increase it sees (rates, quantiles), not a step before it. */
    wait_prom_at_least("count_over_time(up{job=\"hasher\"}[1m])", 2);
    start_program(CRAWLER, crawler_args);
    start_program(HOSTILE, hostile_args);

    /* The run: every post a row. */
    int64_t deadline = deadline_in(GUARD_MS);
    long rows;
    while ((rows = archive_rows()) < t.posts) {
        if (past(deadline)) fail_with_logs("the archive holds %ld rows of %ld posts", rows, t.posts);
        pause_ms(100);
    }
    fprintf(stderr, "the archive holds the site's %ld posts (%ld files)\n", rows, t.files);
    long hashed = pgtest_long("SELECT (SELECT count(*) FROM \"%s_%s_thread\" , jsonb_array_elements(data->'_img') e "
                              "WHERE e ? 'phash') + (SELECT count(*) FROM \"%s_%s_post\", "
                              "jsonb_array_elements(data->'_img') e WHERE e ? 'phash')",
                              t.exchange, SITE, t.exchange, SITE);
    assert_int_equal(hashed, t.files);

    /* Prometheus' figures are the run's. */
    char *q = xasprintf("sum(imgfeed_items_published_total{job=\"crawler\",site=\"%s\"})", SITE);
    wait_prom(q, (double)t.posts);
    free(q);
    wait_prom("sum(imgfeed_archiver_rows_written_total{job=\"archiver\"})", (double)rows);
    wait_prom("sum(imgfeed_hasher_images_hashed_total{job=\"hasher\"})", (double)t.files);
    wait_prom("sum(imgfeed_items_received_total{job=\"archiver\"})", (double)t.posts);
    wait_prom("sum(imgfeed_crawler_http_responses_total{job=\"crawler\",site=\"" SITE "\",status=\"500\"})", 1);
    check_targets_and_rules();
    /* Three scrapes of every target since the crawlers started: rate() has points on both sides. */
    wait_prom_at_least("min(count_over_time(up{job=\"crawler\"}[1m]))", 3);

    /* Every panel of the dashboard shows data. */
    if (run("/usr/bin/python3 %s/tests/monitoring/dashboard_queries.py --prometheus http://127.0.0.1:%d "
            "%s/deploy/grafana/dashboards/imgfeed.json",
            testenv_source_dir(), t.prometheus_port, testenv_source_dir()) != 0)
        fail_with_logs("a panel of the dashboard shows no data (above)");

    /* Each exposition: promtool's check, and docs/metrics.md. */
    static const char *const names[] = {"imgfeed-crawler", "imgfeed-hasher", "imgfeed-archiver", "imgfeed-live",
                                        "imgfeed-search"};
    sbuf args = {0};
    for (int i = CRAWLER; i <= SEARCH; i++) {
        char *text = scrape_get(t.ports[i]), *path = xasprintf("%s/%s.metrics", t.dir, names[i]);
        write_text(path, text);
        if (run("/usr/bin/promtool check metrics < %s", path) != 0) fail_msg("promtool check metrics: %s", names[i]);
        char *arg = xasprintf(" %s=%s", names[i], path);
        sbuf_add(&args, arg, strlen(arg));
        free(arg);
        free(path);
        free(text);
    }
    sbuf_addc(&args, '\0');
    /* IMGFEED_WRITE_METRICS_DOC=1 rewrites the tables instead (after a change of the metrics). */
    const char *mode = getenv("IMGFEED_WRITE_METRICS_DOC") ? "--write" : "--check";
    if (run("/usr/bin/python3 %s/tests/monitoring/metrics_doc.py %s %s/docs/metrics.md%s", testenv_source_dir(), mode,
            testenv_source_dir(), args.p) != 0)
        fail_msg("docs/metrics.md does not list what the programs expose (above)");
    free(args.p);

    /* The hostile site: series of its settings only. */
    char *text = NULL;
    deadline = deadline_in(GUARD_MS);
    for (;;) {
        text = scrape_get(t.ports[HOSTILE]);
        if (strstr(text, "imgfeed_items_published_total{site=\"hostile\",board=\"all\"} 100\n")) break;
        if (past(deadline)) fail_with_logs("the hostile crawler did not publish r/all's 100 posts:\n%s", text);
        free(text);
        pause_ms(100);
    }
    size_t series = 0;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, "imgfeed_crawler_", 16) == 0 || strncmp(line, "imgfeed_items_", 14) == 0) {
            const char *site = strstr(line, "site=\""), *board = strstr(line, "board=\"");
            if (site && strncmp(site, "site=\"hostile\"", 14) != 0) fail_msg("a series of another site: %.200s", line);
            if (board && strncmp(board, "board=\"all\"", 11) != 0) fail_msg("a series of another board: %.200s", line);
            series++;
        }
        if (!strchr(line, '\n')) break;
    }
    fprintf(stderr, "the hostile site's crawler exposes %zu crawler series, all of site hostile, board all\n", series);
    free(text);

    for (int i = 0; i < NPROGS; i++) proc_stop(&t.progs[i]);
    proc_kill(&t.prometheus);
    if (t.exporter.pid) proc_kill(&t.exporter);
    free(hostile_state);
    free(state_dir);
    free(hostile);
    free(sites);
}

int main(void) {
    testenv_require("IMGFEED_AMQP_URL");
    testenv_require("IMGFEED_PG");
    const struct CMUnitTest tests[] = {cmocka_unit_test_setup_teardown(test_monitoring, setup, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
