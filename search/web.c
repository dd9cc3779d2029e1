/* web.c -- imgfeed-search's HTTP server; see web.h.
 *
 * A request's state lives in a web_request made at its first call: the
 * arguments it named, and for a POST the body so far with the memory it
 * holds.  libmicrohttpd calls again for each piece of the body and once
 * more at its end, when the answer is made.  A /search request refused
 * here (the method, a body too large or beyond the memory budget) counts
 * in the query metrics like an answered one (query.h): as an upload when
 * it is a POST, else as invalid.
 */
#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "httpd.h"
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#define WEB_TIMEOUT_S 60
#define WEB_CONN_MEMORY 65536

extern const char search_index_html[], search_app_js[], search_style_css[];

static const httpd_file web_page[] = {
    {"/", HTTPD_TYPE_HTML, search_index_html},
    {"/app.js", "text/javascript; charset=utf-8", search_app_js},
    {"/style.css", "text/css; charset=utf-8", search_style_css},
};

struct search_web {
    struct MHD_Daemon *d;
    web_options o;
    int port;
};

typedef struct web_request {
    query_args args;
    unsigned char *body;
    size_t len, cap;
    membudget_claim claim;
    bool refused;         /* over the limit or out of memory: the rest is not kept */
    unsigned refuse_status;
    char refuse_why[128];
} web_request;

static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    query_args *a = cls;
    struct {
        const char *name;
        const char **slot;
    } known[] = {{"phash", &a->phash}, {"dhash", &a->dhash}, {"sha1", &a->sha1}, {"md5", &a->md5},
                 {"url", &a->url},     {"k", &a->k},         {"max_distance", &a->max_distance},
                 {"hash", &a->hash}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(key, known[i].name) != 0) continue;
        if (*known[i].slot) break; /* given twice */
        *known[i].slot = value ? value : "";
        return MHD_YES;
    }
    if (!a->extra++) snprintf(a->extra_name, sizeof a->extra_name, "%s", key);
    return MHD_YES;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, query_answer *a) {
    struct MHD_Response *r = MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(a->body);
        return MHD_NO;
    }
    httpd_headers(r, HTTPD_TYPE_JSON, "no-store");
    if (a->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", a->retry_after_s);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result rc = MHD_queue_response(c, a->status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Refuse a request with STATUS and WHY; a request for /search counts as a
 * query of KIND (QUERY_KINDS: it is no search request). */
static enum MHD_Result refuse(search_web *w, struct MHD_Connection *c, query_kind kind, unsigned status,
                              const char *why) {
    atomic_fetch_add(&w->o.service->errors, 1);
    if (kind < QUERY_KINDS) query_count(w->o.service, kind, time_mono_ns());
    query_answer a = {0};
    query_fail(&a, status, why);
    return send_answer(c, &a);
}

/* Keeps SIZE more bytes of a POST body, within the limit and the budget. */
static void take_body(search_web *w, web_request *rq, const char *data, size_t size) {
    query_service *s = w->o.service;
    if (rq->refused) return;
    if (rq->len + size > s->hashing.max_bytes) {
        rq->refused = true;
        rq->refuse_status = 413;
        snprintf(rq->refuse_why, sizeof rq->refuse_why, "the query is no picture search can use: too large");
        return;
    }
    if (rq->len + size > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 65536;
        while (cap < rq->len + size)
            cap *= 2;
        if (cap > s->hashing.max_bytes) cap = (size_t)s->hashing.max_bytes;
        if (!query_reserve(s, &rq->claim, cap)) {
            rq->refused = true;
            rq->refuse_status = 503;
            snprintf(rq->refuse_why, sizeof rq->refuse_why, "too many images are being uploaded now; try again");
            return;
        }
        rq->body = xrealloc(rq->body, cap);
        rq->cap = cap;
    }
    memcpy(rq->body + rq->len, data, size);
    rq->len += size;
}

static enum MHD_Result route_search(search_web *w, struct MHD_Connection *c, const char *method, web_request *rq,
                                    const char *data, size_t *size) {
    query_answer a;
    if (strcmp(method, "GET") == 0) {
        query_get(w->o.service, &rq->args, &a);
        return send_answer(c, &a);
    }
    if (*size) {
        take_body(w, rq, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (rq->refused) {
        atomic_fetch_add(&w->o.service->errors, 1);
        query_count(w->o.service, QUERY_UPLOAD, time_mono_ns());
        query_answer r = {.retry_after_s = rq->refuse_status == 503 ? 1 : 0};
        query_fail(&r, rq->refuse_status, rq->refuse_why);
        return send_answer(c, &r);
    }
    query_image(w->o.service, &rq->args, rq->body, rq->len, &a);
    return send_answer(c, &a);
}

static enum MHD_Result web_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **req_cls) {
    (void)version;
    search_web *w = cls;
    web_request *rq = *req_cls;
    if (!rq) {
        rq = xcalloc(1, sizeof *rq);
        membudget_claim_init(&rq->claim, w->o.service->budget);
        *req_cls = rq;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_arg, &rq->args);
        if (strcmp(url, "/search") == 0 && strcmp(method, "POST") == 0) {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > w->o.service->hashing.max_bytes)
                return refuse(w, c, QUERY_UPLOAD, 413, "the query is no picture search can use: too large");
            return MHD_YES; /* the body comes in the next calls */
        }
    }
    if (strcmp(url, "/search") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
            return refuse(w, c, QUERY_INVALID, 405, "GET or POST");
        return route_search(w, c, method, rq, data, size);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return refuse(w, c, QUERY_KINDS, 405, "GET only");
    if (strcmp(url, "/stats") == 0) {
        size_t len;
        char *body = w->o.stats(w->o.stats_arg, &len);
        query_answer a = {.status = 200, .body = body, .len = len};
        return send_answer(c, &a);
    }
    return httpd_answer_file(c, web_page, sizeof web_page / sizeof web_page[0], url);
}

static void web_done(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    search_web *w = cls;
    web_request *rq = *req_cls;
    if (!rq) return;
    query_release(w->o.service, &rq->claim);
    free(rq->body);
    free(rq);
    *req_cls = NULL;
}

search_web *web_start(const web_options *o, char *why, size_t whylen) {
    search_web *w = xcalloc(1, sizeof *w);
    w->o = *o;
    httpd_config hc = {
        .listen = o->listen,
        .flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
        .handler = web_access,
        .completed = web_done,
        .cls = w,
        .connection_limit = o->max_connections,
        .connection_memory = WEB_CONN_MEMORY,
        .timeout_s = WEB_TIMEOUT_S,
    };
    w->d = httpd_start(&hc, &w->port, why, whylen);
    if (!w->d) {
        free(w);
        return NULL;
    }
    return w;
}

int web_port(const search_web *w) { return w->port; }

void web_stop(search_web *w) {
    if (!w) return;
    MHD_stop_daemon(w->d); /* waits for the requests in progress; closes the listening socket */
    free(w);
}
