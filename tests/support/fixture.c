/* fixture.c -- the fixture server as a child process of a test.
 *
 * The child's stdout is a pipe on which the server prints its port once it
 * is bound, so there is no port to guess and no file to clean up.  The
 * server also exits by itself when this process dies, so a crashed test
 * leaves nothing behind.
 */
#include "fixture.h"

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define FIXTURE_START_TIMEOUT_MS 30000

static void fixture_exec(const char *script, const fixture_options *o) {
    const char *argv[10];
    int n = 0;
    argv[n++] = "python3";
    argv[n++] = script;
    if (o && o->host) {
        argv[n++] = "--host";
        argv[n++] = o->host;
    }
    if (o && o->files_dir) {
        argv[n++] = "--files";
        argv[n++] = o->files_dir;
    }
    if (o && o->fixtures_dir) {
        argv[n++] = "--fixtures";
        argv[n++] = o->fixtures_dir;
    }
    argv[n] = NULL;
    char *const *args = (char *const *)argv;
    const char *python = getenv("IMGFEED_PYTHON");
    if (python && *python) execvp(python, args);
    execvp("python3", args);
    execv("/usr/bin/python3", args);
    fprintf(stderr, "fixture: cannot run python3 %s: %s\n", script, strerror(errno));
    _exit(127);
}

/* Read the port line from fd, waiting at most until deadline. */
static int fixture_read_port(int fd, int64_t deadline_ns) {
    char line[32];
    size_t len = 0;
    while (len < sizeof line - 1) {
        int64_t left_ms = (deadline_ns - time_mono_ns()) / TIME_NS_PER_MS;
        if (left_ms <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)left_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) return -1;
        ssize_t n = read(fd, line + len, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = '\0';
    char *end = NULL;
    long port = strtol(line, &end, 10);
    if (end == line || port <= 0 || port > 65535) return -1;
    return (int)port;
}

static size_t fixture_collect(char *data, size_t size, size_t nmemb, void *userdata) {
    char **buf = userdata;
    size_t old = *buf ? strlen(*buf) : 0;
    size_t n = size * nmemb;
    *buf = xrealloc(*buf, old + n + 1);
    memcpy(*buf + old, data, n);
    (*buf)[old + n] = '\0';
    return n;
}

/* GET url with plain curl; the body (malloc'd) or NULL, and the status. */
static char *fixture_fetch(const char *url, long *status) {
    char *body = NULL;
    *status = 0;
    CURL *easy = curl_easy_init();
    if (!easy) return NULL;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, fixture_collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    if (curl_easy_perform(easy) == CURLE_OK) {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
    } else {
        free(body);
        body = NULL;
    }
    curl_easy_cleanup(easy);
    return body;
}

void fixture_start(fixture *f) { fixture_start_with(f, NULL); }

void fixture_start_with(fixture *f, const fixture_options *o) {
    f->pid = 0;
    f->port = 0;
    snprintf(f->host, sizeof f->host, "%s", o && o->host ? o->host : "127.0.0.1");
    char *script = xasprintf("%s/tests/support/fixture_server.py", testenv_source_dir());
    int fds[2];
    if (pipe(fds) != 0) fail_msg("cannot create a pipe for the fixture server: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail_msg("cannot fork the fixture server: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(127);
        close(fds[1]);
        fixture_exec(script, o);
    }
    close(fds[1]);
    f->pid = pid;
    int64_t deadline = time_mono_ns() + FIXTURE_START_TIMEOUT_MS * TIME_NS_PER_MS;
    f->port = fixture_read_port(fds[0], deadline);
    close(fds[0]);
    if (f->port <= 0) {
        fixture_stop(f);
        fail_msg("fixture server %s did not report its port", script);
    }
    free(script);
    /* The port is bound before it is printed; one ping proves it serves. */
    json_object *pong = fixture_control(f, "ping");
    json_object_put(pong);
}

void fixture_stop(fixture *f) {
    if (f->pid <= 0) return;
    kill(f->pid, SIGTERM);
    int64_t deadline = time_mono_ns() + 10 * TIME_NS_PER_S;
    for (;;) {
        int status;
        pid_t rc = waitpid(f->pid, &status, WNOHANG);
        if (rc == f->pid || (rc < 0 && errno != EINTR)) break;
        if (time_mono_ns() > deadline) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            break;
        }
        time_sleep_ns(10 * TIME_NS_PER_MS);
    }
    f->pid = 0;
    f->port = 0;
}

char *fixture_url(const fixture *f, const char *path_fmt, ...) {
    va_list ap;
    va_start(ap, path_fmt);
    char *path = xvasprintf(path_fmt, ap);
    va_end(ap);
    char *url = xasprintf("http://%s:%d%s", f->host, f->port, path);
    free(path);
    return url;
}

json_object *fixture_control(const fixture *f, const char *what_fmt, ...) {
    va_list ap;
    va_start(ap, what_fmt);
    char *what = xvasprintf(what_fmt, ap);
    va_end(ap);
    char *url = xasprintf("http://%s:%d/_control/%s", f->host, f->port, what);
    free(what);
    long status = 0;
    char *body = fixture_fetch(url, &status);
    if (!body || status != 200) fail_msg("fixture control %s failed: status %ld", url, status);
    json_object *obj = json_tokener_parse(body);
    if (!obj) fail_msg("fixture control %s: not JSON: %s", url, body);
    free(body);
    free(url);
    return obj;
}

json_object *fixture_log(const fixture *f, const char *prefix) {
    json_object *log = fixture_control(f, "log?prefix=%s", prefix);
    json_object *entries = NULL;
    if (!json_object_object_get_ex(log, "entries", &entries)) fail_msg("fixture log without entries");
    json_object_get(entries);
    json_object_put(log);
    return entries;
}

void fixture_write_chan_sites(const fixture *f, const char *path, const char *site, int boards) {
    char *api = fixture_url(f, "/%s", site), *media = fixture_url(f, "/%s/media", site);
    FILE *out = fopen(path, "w");
    if (!out) fail_msg("cannot write %s", path);
    fprintf(out,
            "{\"user_agent\": \"imgfeed-test/1 (+https://example.invalid/contact)\",\n \"sites\": [{\"name\": \"%s\", "
            "\"kind\": \"4chan\", \"api\": \"%s\", \"media\": \"%s\", \"rps\": 200, \"boards\": [",
            site, api, media);
    for (int b = 0; b < boards; b++)
        fprintf(out, "%s\"b%d\"", b ? ", " : "", b);
    fprintf(out, "]}]}\n");
    if (fclose(out) != 0) fail_msg("cannot write %s", path);
    free(api);
    free(media);
}
