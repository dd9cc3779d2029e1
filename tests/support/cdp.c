/* cdp.c -- headless Chromium over the DevTools protocol's pipe; see cdp.h.
 *
 * A call sends {"id", "method", "params"[, "sessionId"]} and reads the
 * browser's messages until the one with that id, keeping the console events
 * met on the way.  The tab is made on about:blank, attached in flat mode
 * (its session id on every message), told to report its console, sized,
 * and only then sent to the URL, so nothing it prints is missed.
 */
#define _GNU_SOURCE /* pipe2 */
#include "cdp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define CDP_CALL_MS 30000 /* longest a call may take */
#define CDP_BROWSER "/usr/bin/chromium"

static void cdp_send(cdp *c, int id, const char *method, json_object *params, bool in_tab) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_int(id));
    json_object_object_add(m, "method", json_object_new_string(method));
    json_object_object_add(m, "params", params ? params : json_object_new_object());
    if (in_tab) json_object_object_add(m, "sessionId", json_object_new_string(c->session));
    size_t len;
    const char *text = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &len);
    for (size_t off = 0; off <= len;) { /* the NUL ends the message */
        ssize_t n = write(c->to, text + off, len + 1 - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_msg("cdp: cannot write to the browser: %s", strerror(errno));
        off += (size_t)n;
    }
    json_object_put(m);
}

/* Keep what a console event says. */
static void cdp_event(cdp *c, json_object *m, const char *method) {
    json_object *params, *v;
    if (!json_object_object_get_ex(m, "params", &params)) return;
    if (strcmp(method, "Runtime.consoleAPICalled") == 0 && json_object_object_get_ex(params, "args", &v)) {
        sbuf line = {0};
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *a = json_object_array_get_idx(v, i), *val;
            const char *s = json_object_object_get_ex(a, "value", &val) ? json_object_get_string(val)
                            : json_object_object_get_ex(a, "description", &val) ? json_object_get_string(val)
                                                                                 : "?";
            if (i) sbuf_addc(&line, ' ');
            sbuf_add(&line, s, strlen(s));
        }
        sbuf_addc(&line, '\0');
        json_object_array_add(c->console, json_object_new_string(line.p));
        free(line.p);
    } else if (strcmp(method, "Runtime.exceptionThrown") == 0) {
        json_object_array_add(c->console, json_object_new_string(json_object_to_json_string(params)));
    }
}

/* Read messages until the answer to ID: its "result" (a new reference). */
static json_object *cdp_wait(cdp *c, int id) {
    int64_t end = time_mono_ns() / 1000000 + CDP_CALL_MS;
    for (;;) {
        char *nul;
        while ((nul = c->in.len ? memchr(c->in.p, '\0', c->in.len) : NULL)) {
            size_t len = (size_t)(nul - c->in.p);
            json_object *m = json_tokener_parse(c->in.p);
            memmove(c->in.p, nul + 1, c->in.len - len - 1);
            c->in.len -= len + 1;
            if (!m) continue;
            json_object *v, *result = NULL;
            if (json_object_object_get_ex(m, "id", &v) && json_object_get_int(v) == id) {
                if (json_object_object_get_ex(m, "error", &v))
                    fail_msg("cdp: call %d failed: %s", id, json_object_to_json_string(v));
                if (json_object_object_get_ex(m, "result", &v)) result = json_object_get(v);
                json_object_put(m);
                return result ? result : json_object_new_object();
            }
            if (json_object_object_get_ex(m, "method", &v)) cdp_event(c, m, json_object_get_string(v));
            json_object_put(m);
        }
        int64_t left = end - time_mono_ns() / 1000000;
        if (left <= 0) fail_msg("cdp: no answer to call %d in %d ms", id, CDP_CALL_MS);
        struct pollfd p = {.fd = c->from, .events = POLLIN};
        if (poll(&p, 1, (int)(left < 1000 ? left : 1000)) <= 0) continue;
        char buf[65536];
        ssize_t n = read(c->from, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_msg("cdp: the browser closed its pipe");
        sbuf_add(&c->in, buf, (size_t)n);
    }
}

static json_object *cdp_call(cdp *c, const char *method, json_object *params, bool in_tab) {
    int id = ++c->next_id;
    cdp_send(c, id, method, params, in_tab);
    return cdp_wait(c, id);
}

static const char *result_string(json_object *r, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(r, key, &v)) fail_msg("cdp: no %s in %s", key, json_object_to_json_string(r));
    return json_object_get_string(v);
}

void cdp_open(cdp *c, const char *url, int width, int height) {
    memset(c, 0, sizeof *c);
    if (access(CDP_BROWSER, X_OK) != 0) fail_msg("cdp: %s is missing (apt-get install chromium)", CDP_BROWSER);
    c->profile = testenv_tmpdir("cdp");
    c->console = json_object_new_array();
    int to[2], from[2];
    assert_int_equal(pipe2(to, O_CLOEXEC), 0);
    assert_int_equal(pipe2(from, O_CLOEXEC), 0);
    char *profile = xasprintf("--user-data-dir=%s", c->profile);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int r = fcntl(to[0], F_DUPFD, 10), w = fcntl(from[1], F_DUPFD, 10);
        if (r < 0 || w < 0 || dup2(r, 3) != 3 || dup2(w, 4) != 4) _exit(127);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(CDP_BROWSER, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--remote-debugging-pipe", "--hide-scrollbars", profile, "about:blank", (char *)NULL);
        _exit(127);
    }
    free(profile);
    close(to[0]);
    close(from[1]);
    c->to = to[1];
    c->from = from[0];
    json_object *p = json_object_new_object();
    json_object_object_add(p, "url", json_object_new_string("about:blank"));
    json_object *r = cdp_call(c, "Target.createTarget", p, false);
    char *target = xstrdup(result_string(r, "targetId"));
    json_object_put(r);
    p = json_object_new_object();
    json_object_object_add(p, "targetId", json_object_new_string(target));
    json_object_object_add(p, "flatten", json_object_new_boolean(1));
    r = cdp_call(c, "Target.attachToTarget", p, false);
    c->session = xstrdup(result_string(r, "sessionId"));
    json_object_put(r);
    free(target);
    json_object_put(cdp_call(c, "Runtime.enable", NULL, true));
    json_object_put(cdp_call(c, "Page.enable", NULL, true));
    p = json_object_new_object();
    json_object_object_add(p, "width", json_object_new_int(width));
    json_object_object_add(p, "height", json_object_new_int(height));
    json_object_object_add(p, "deviceScaleFactor", json_object_new_int(1));
    json_object_object_add(p, "mobile", json_object_new_boolean(width < 700));
    json_object_put(cdp_call(c, "Emulation.setDeviceMetricsOverride", p, true));
    p = json_object_new_object();
    json_object_object_add(p, "url", json_object_new_string(url));
    json_object_put(cdp_call(c, "Page.navigate", p, true));
}

void cdp_close(cdp *c) {
    if (c->pid > 0) {
        cdp_send(c, ++c->next_id, "Browser.close", NULL, false);
        int64_t end = time_mono_ns() / 1000000 + 10000;
        int status;
        while (waitpid(c->pid, &status, WNOHANG) == 0) {
            if (time_mono_ns() / 1000000 > end) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                break;
            }
            time_sleep_ms(50);
        }
        c->pid = 0;
    }
    if (c->to > 0) close(c->to);
    if (c->from > 0) close(c->from);
    if (c->profile) testenv_rmtree(c->profile);
    free(c->profile);
    free(c->session);
    free(c->in.p);
    json_object_put(c->console);
    memset(c, 0, sizeof *c);
}

json_object *cdp_eval(cdp *c, const char *expression) {
    json_object *p = json_object_new_object(), *inner, *v;
    json_object_object_add(p, "expression", json_object_new_string(expression));
    json_object_object_add(p, "returnByValue", json_object_new_boolean(1));
    json_object *r = cdp_call(c, "Runtime.evaluate", p, true), *out = NULL;
    if (json_object_object_get_ex(r, "exceptionDetails", &v))
        fail_msg("cdp: %s threw %s", expression, json_object_to_json_string(v));
    if (json_object_object_get_ex(r, "result", &inner) && json_object_object_get_ex(inner, "value", &v))
        out = json_object_get(v);
    json_object_put(r);
    return out;
}

bool cdp_wait_true(cdp *c, const char *expression, int64_t timeout_ms) {
    int64_t end = time_mono_ns() / 1000000 + timeout_ms;
    for (;;) {
        json_object *v = cdp_eval(c, expression);
        bool yes = json_object_get_boolean(v);
        json_object_put(v);
        if (yes) return true;
        if (time_mono_ns() / 1000000 > end) return false;
        time_sleep_ms(100);
    }
}

char *cdp_dom(cdp *c) {
    json_object *v = cdp_eval(c, "document.documentElement.outerHTML");
    char *dom = xstrdup(json_object_get_string(v));
    json_object_put(v);
    return dom;
}

void cdp_screenshot(cdp *c, const char *path) {
    json_object *p = json_object_new_object();
    json_object_object_add(p, "format", json_object_new_string("png"));
    json_object *r = cdp_call(c, "Page.captureScreenshot", p, true);
    const char *b64 = result_string(r, "data");
    size_t len = strlen(b64);
    unsigned char *png = xmalloc(len / 4 * 3 + 3);
    int n = EVP_DecodeBlock(png, (const unsigned char *)b64, (int)len);
    assert_true(n >= 0);
    size_t pad = len >= 2 ? (b64[len - 1] == '=') + (b64[len - 2] == '=') : 0;
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cdp: cannot write %s: %s", path, strerror(errno));
    fwrite(png, 1, (size_t)n - pad, f);
    fclose(f);
    free(png);
    json_object_put(r);
}

bool cdp_console_has(const cdp *c, const char *text) {
    for (size_t i = 0; i < json_object_array_length(c->console); i++)
        if (strstr(json_object_get_string(json_object_array_get_idx(c->console, i)), text)) return true;
    return false;
}
