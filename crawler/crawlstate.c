/* crawlstate.c -- a board's crawl state on disk; see crawlstate.h.
 *
 * The file is compact JSON: {"v": 1, "threads_lm": "...", "threads":
 * [[no, last_modified, replies, last_post, "http_lm", gone], ...]}.
 */
#include "crawlstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "statefile.h"
#include "xalloc.h"

#define CRAWLSTATE_VERSION 1

void crawlstate_release(crawlstate_board *b) {
    free(b->path);
    free(b->threads);
    memset(b, 0, sizeof *b);
}

static int crawlstate_cmp(const void *key, const void *elem) {
    int64_t a = *(const int64_t *)key, b = ((const crawlstate_thread *)elem)->no;
    return (a > b) - (a < b);
}

crawlstate_thread *crawlstate_find(crawlstate_board *b, int64_t no) {
    return b->n ? bsearch(&no, b->threads, b->n, sizeof *b->threads, crawlstate_cmp) : NULL;
}

crawlstate_thread *crawlstate_get(crawlstate_board *b, int64_t no) {
    crawlstate_thread *t = crawlstate_find(b, no);
    if (t) return t;
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->threads = xrealloc(b->threads, b->cap * sizeof *b->threads);
    }
    size_t at = b->n;
    while (at > 0 && b->threads[at - 1].no > no)
        at--;
    memmove(&b->threads[at + 1], &b->threads[at], (b->n - at) * sizeof *b->threads);
    b->n++;
    t = &b->threads[at];
    memset(t, 0, sizeof *t);
    t->no = no;
    t->last_modified = t->replies = -1;
    return t;
}

static int crawlstate_int64_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void crawlstate_retain(crawlstate_board *b, const int64_t *listed, size_t n) {
    int64_t *sorted = xmalloc((n ? n : 1) * sizeof *sorted);
    if (n) memcpy(sorted, listed, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, crawlstate_int64_cmp);
    size_t keep = 0;
    for (size_t i = 0; i < b->n; i++)
        if (n && bsearch(&b->threads[i].no, sorted, n, sizeof *sorted, crawlstate_int64_cmp))
            b->threads[keep++] = b->threads[i];
    b->n = keep;
    free(sorted);
}

static int64_t crawlstate_int(json_object *a, size_t i) {
    json_object *v = json_object_array_get_idx(a, i);
    return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
}

static int crawlstate_parse(crawlstate_board *b, json_object *root, char *why, size_t whylen) {
    json_object *v, *threads;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "v", &v) ||
        json_object_get_int(v) != CRAWLSTATE_VERSION || !json_object_object_get_ex(root, "threads", &threads) ||
        !json_object_is_type(threads, json_type_array)) {
        snprintf(why, whylen, "%s is not a crawl state of version %d", b->path, CRAWLSTATE_VERSION);
        return -1;
    }
    if (json_object_object_get_ex(root, "threads_lm", &v))
        snprintf(b->threads_lm, sizeof b->threads_lm, "%s", json_object_get_string(v));
    for (size_t i = 0; i < json_object_array_length(threads); i++) {
        json_object *t = json_object_array_get_idx(threads, i);
        if (!json_object_is_type(t, json_type_array) || json_object_array_length(t) != 6 || crawlstate_int(t, 0) <= 0) {
            snprintf(why, whylen, "%s: thread entry %zu is malformed", b->path, i);
            return -1;
        }
        crawlstate_thread *s = crawlstate_get(b, crawlstate_int(t, 0));
        s->last_modified = crawlstate_int(t, 1);
        s->replies = crawlstate_int(t, 2);
        s->last_post = crawlstate_int(t, 3);
        if (s->last_post < 0) s->last_post = 0;
        snprintf(s->http_lm, sizeof s->http_lm, "%s", json_object_get_string(json_object_array_get_idx(t, 4)));
        s->gone = json_object_get_boolean(json_object_array_get_idx(t, 5));
    }
    return 0;
}

int crawlstate_load(crawlstate_board *b, const char *dir, const char *site, const char *board, char *why,
                    size_t whylen) {
    memset(b, 0, sizeof *b);
    b->path = statefile_path(dir, site, board, why, whylen);
    if (!b->path) return -1;
    json_object *root;
    if (statefile_load(b->path, &root, why, whylen) != 0) return -1;
    if (!root) return 0; /* never crawled */
    int rc = crawlstate_parse(b, root, why, whylen);
    json_object_put(root);
    return rc;
}

static json_object *crawlstate_json(const crawlstate_board *b) {
    json_object *root = json_object_new_object(), *threads = json_object_new_array_ext((int)b->n);
    json_object_object_add(root, "v", json_object_new_int(CRAWLSTATE_VERSION));
    json_object_object_add(root, "threads_lm", json_object_new_string(b->threads_lm));
    for (size_t i = 0; i < b->n; i++) {
        const crawlstate_thread *t = &b->threads[i];
        json_object *a = json_object_new_array_ext(6);
        json_object_array_add(a, json_object_new_int64(t->no));
        json_object_array_add(a, json_object_new_int64(t->last_modified));
        json_object_array_add(a, json_object_new_int64(t->replies));
        json_object_array_add(a, json_object_new_int64(t->last_post));
        json_object_array_add(a, json_object_new_string(t->http_lm));
        json_object_array_add(a, json_object_new_boolean(t->gone));
        json_object_array_add(threads, a);
    }
    json_object_object_add(root, "threads", threads);
    return root;
}

int crawlstate_save(const crawlstate_board *b, char *why, size_t whylen) {
    json_object *root = crawlstate_json(b);
    int rc = statefile_save(b->path, root, why, whylen);
    json_object_put(root);
    return rc;
}

