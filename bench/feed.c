/* feed.c -- bench_feed: realistic 4chan items for bench/archive.sh.
 *
 *   bench_feed [--fixtures DIR] [--only-files] items N OUT.jsonl
 *       writes N items, one JSON object a line
 *   bench_feed [--fixtures DIR] [--only-files] publish --exchange E N
 *       publishes the same N items to exchange E of IMGFEED_AMQP_URL, with
 *       publisher confirms, as the hasher would hand them to the archiver
 *
 * The items are made from the recorded 4chan threads (every *thread*.json
 * of DIR, tests/fixtures/real/4chan by default, that holds a "posts"
 * array): the posts as the API gave them, cycled over as often as N needs;
 * with --only-files, only the posts that have a file (about 860 bytes of
 * JSON an item, against 490 for all posts, of which one in six has a file).
 * Copy c of post p gets no = c * 10^9 + p.no (resto, time and tim shifted
 * alike, so that every copy is a distinct post of a consistent thread) and
 * the fields design.md adds: _v, _id ("<board>.<no>"), _chan, _board, _type
 * ("thread" for an OP, "post" for a reply), _crawled_at, _urls (the file,
 * then the links of com) and, for a post with a file, one _img entry whose
 * checksums and hashes are made up deterministically from _id (the right
 * lengths and encodings, not real values: no image is downloaded).
 *
 * Both modes walk the same generator, so they give the same items, in the
 * same order, with the same JSON text.  Messages are cut as a crawler with
 * one buffer per routing key cuts them: OPs go under 4chan.thread.<board>,
 * replies under 4chan.post.<board>, and a key's buffer becomes a message
 * when it holds 20 to 50 items (varying from one message to the next).
 */
#include <glob.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "mq.h"
#include "timeutil.h"
#include "xalloc.h"

#ifndef BENCH_FIXTURES_DIR
#define BENCH_FIXTURES_DIR "tests/fixtures/real/4chan"
#endif

#define FEED_MSG_MIN 20           /* fewest items in one message (but the last of a key) */
#define FEED_MSG_ITEMS 50         /* most items in one message */
#define FEED_PUBLISH_BATCH 100    /* messages per mq_publish (one wait for confirms) */
#define FEED_NO_STRIDE 1000000000 /* copy c of post no is c * FEED_NO_STRIDE + no */
#define FEED_CRAWL_DELAY 30       /* _crawled_at: this many seconds after the post */
#define FEED_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* --- fields of a post --- */

static int64_t get_int(json_object *o, const char *key, int64_t fallback) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
                                                                                          : fallback;
}

static const char *get_string(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                             : NULL;
}

/* The post has a file still on the server: tim and ext, not filedeleted. */
static bool has_file(json_object *post) {
    return get_int(post, "tim", 0) > 0 && get_string(post, "ext") && !get_int(post, "filedeleted", 0);
}

/* --- the recorded threads --- */

typedef struct thread {
    char board[32];
    json_object **posts; /* into the parsed file; posts[0] is the OP unless it was left out */
    size_t nposts;
} thread;

typedef struct corpus {
    json_object **files; /* every parsed file, owned (threads point into them) */
    size_t nfiles;
    thread *threads;
    size_t nthreads, nposts;
} corpus;

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_feed: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* The board of a fixture file: its name up to the first '-' ("g-thread-…"). */
static void board_of(const char *path, char *out, size_t outlen) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, "-");
    if (n == 0 || n >= outlen) die("cannot tell the board of %s", path);
    memcpy(out, base, n);
    out[n] = '\0';
}

/* True when POSTS is a thread we can copy: objects with integer no (below
 * FEED_NO_STRIDE), resto and time, the first one an OP (resto 0). */
static bool thread_usable(json_object *posts) {
    size_t n = json_object_array_length(posts);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(posts, i), *no, *resto, *t;
        if (!json_object_is_type(p, json_type_object) || !json_object_object_get_ex(p, "no", &no) ||
            !json_object_object_get_ex(p, "resto", &resto) || !json_object_object_get_ex(p, "time", &t) ||
            !json_object_is_type(no, json_type_int) || json_object_get_int64(no) <= 0 ||
            json_object_get_int64(no) >= FEED_NO_STRIDE || (i == 0) != (json_object_get_int64(resto) == 0))
            return false;
    }
    return n > 0;
}

/* The posts of a thread file, or only those with a file. */
static void thread_take(thread *t, json_object *posts, bool only_files) {
    size_t n = json_object_array_length(posts);
    t->posts = xcalloc(n, sizeof *t->posts);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(posts, i);
        if (!only_files || has_file(p)) t->posts[t->nposts++] = p;
    }
}

static void corpus_load(corpus *c, const char *dir, bool only_files) {
    memset(c, 0, sizeof *c);
    char *pattern = xasprintf("%s/*thread*.json", dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) die("no *thread*.json in %s", dir);
    free(pattern);
    c->files = xcalloc(g.gl_pathc, sizeof *c->files);
    c->threads = xcalloc(g.gl_pathc, sizeof *c->threads);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        json_object *root = json_object_from_file(g.gl_pathv[i]), *posts;
        if (!root) die("cannot read %s as JSON", g.gl_pathv[i]);
        c->files[i] = root;
        /* threads.json listings hold no posts: skip them. */
        if (!json_object_object_get_ex(root, "posts", &posts) || !json_object_is_type(posts, json_type_array)) continue;
        if (!thread_usable(posts)) die("%s: not a thread of posts with no, resto and time", g.gl_pathv[i]);
        thread *t = &c->threads[c->nthreads];
        board_of(g.gl_pathv[i], t->board, sizeof t->board);
        thread_take(t, posts, only_files);
        c->nposts += t->nposts;
        if (t->nposts)
            c->nthreads++;
        else
            free(t->posts);
    }
    c->nfiles = g.gl_pathc;
    globfree(&g);
    if (!c->nthreads) die("no thread with %s in %s", only_files ? "posts with files" : "posts", dir);
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->nthreads; i++)
        free(c->threads[i].posts);
    for (size_t i = 0; i < c->nfiles; i++)
        json_object_put(c->files[i]);
    free(c->files);
    free(c->threads);
}

/* --- made-up but well-formed hash values --- */

/* splitmix64: a stream of well-mixed 64-bit values from one seed. */
static uint64_t mix_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t seed_of(const char *s) { /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static void random_bytes(uint64_t *state, unsigned char *out, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = mix_next(state);
        memcpy(out + i, &v, n - i < 8 ? n - i : 8);
    }
}

/* N (at most 32) random bytes as lower-case hex. */
static json_object *random_hex(uint64_t *state, size_t n) {
    unsigned char b[32];
    char text[65];
    random_bytes(state, b, n);
    for (size_t i = 0; i < n; i++)
        snprintf(text + 2 * i, 3, "%02x", b[i]);
    return json_object_new_string(text);
}

/* N (at most 30) random bytes in standard base64 with padding, as _img's hashes. */
static json_object *random_base64(uint64_t *state, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char b[32] = {0};
    char text[48];
    size_t o = 0;
    random_bytes(state, b, n);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        text[o++] = abc[v >> 18 & 63];
        text[o++] = abc[v >> 12 & 63];
        text[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        text[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    text[o] = '\0';
    return json_object_new_string(text);
}

/* --- one item --- */

static bool has_url(json_object *urls, const char *url, size_t len) {
    for (size_t i = 0; i < json_object_array_length(urls); i++) {
        json_object *u = json_object_array_get_idx(urls, i);
        if ((size_t)json_object_get_string_len(u) == len && memcmp(json_object_get_string(u), url, len) == 0)
            return true;
    }
    return false;
}

/* Add to URLS every http(s) link written in COM (4chan's HTML: a link is
 * often both an href and the text of its <a>), once each. */
static void add_links(json_object *urls, const char *com) {
    for (const char *p = com; p && (p = strstr(p, "http")) != NULL;) {
        if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
            p += 4;
            continue;
        }
        size_t n = strcspn(p, " \t\r\n<>\"'");
        if (!has_url(urls, p, n)) json_object_array_add(urls, json_object_new_string_len(p, (int)n));
        p += n;
    }
}

static const char *format_of(const char *ext) {
    if (strcmp(ext, ".jpg") == 0 || strcmp(ext, ".jpeg") == 0) return "jpeg";
    return ext[0] == '.' ? ext + 1 : ext;
}

/* The hasher's entry for the post's file (url 0), values made up from ID. */
static json_object *make_img(json_object *post, const char *id) {
    const char *format = format_of(get_string(post, "ext"));
    bool video = strcmp(format, "webm") == 0 || strcmp(format, "mp4") == 0;
    uint64_t state = seed_of(id);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "url", json_object_new_int(0));
    json_object_object_add(e, "size", json_object_new_int64(get_int(post, "fsize", 0)));
    if (!video) {
        json_object_object_add(e, "width", json_object_new_int64(get_int(post, "w", 0)));
        json_object_object_add(e, "height", json_object_new_int64(get_int(post, "h", 0)));
    }
    json_object_object_add(e, "format", json_object_new_string(format));
    json_object_object_add(e, "crc32", random_hex(&state, 4));
    json_object_object_add(e, "md5", random_hex(&state, 16));
    json_object_object_add(e, "sha1", random_hex(&state, 20));
    if (!video) {
        json_object_object_add(e, "ahash", random_base64(&state, 18));
        json_object_object_add(e, "dhash", random_base64(&state, 18));
        json_object_object_add(e, "phash", random_base64(&state, 18));
        json_object_object_add(e, "whash", random_base64(&state, 8));
    }
    json_object *img = json_object_new_array();
    json_object_array_add(img, e);
    return img;
}

/* Copy CYCLE of POST of thread T, as the hasher publishes it. */
static json_object *make_item(const thread *t, json_object *post, uint64_t cycle) {
    int64_t shift = (int64_t)cycle * FEED_NO_STRIDE;
    int64_t no = get_int(post, "no", 0) + shift, resto = get_int(post, "resto", 0);
    int64_t posted = get_int(post, "time", 0) + (int64_t)cycle; /* one second later per copy */
    json_object *item = json_object_new_object();
    json_object_object_foreach(post, key, val) {
        json_object *v = json_object_get(val);
        if (strcmp(key, "no") == 0) {
            json_object_put(v);
            v = json_object_new_int64(no);
        } else if (strcmp(key, "resto") == 0 && resto) {
            json_object_put(v);
            v = json_object_new_int64(resto + shift);
        } else if (strcmp(key, "time") == 0) {
            json_object_put(v);
            v = json_object_new_int64(posted);
        } else if (strcmp(key, "tim") == 0) {
            json_object_put(v);
            v = json_object_new_int64(get_int(post, "tim", 0) + (int64_t)cycle * 1000);
        }
        json_object_object_add(item, key, v);
    }
    char id[64];
    snprintf(id, sizeof id, "%s.%" PRId64, t->board, no);
    json_object_object_add(item, "_v", json_object_new_int(1));
    json_object_object_add(item, "_id", json_object_new_string(id));
    json_object_object_add(item, "_chan", json_object_new_string("4chan"));
    json_object_object_add(item, "_board", json_object_new_string(t->board));
    json_object_object_add(item, "_type", json_object_new_string(resto ? "post" : "thread"));
    json_object_object_add(item, "_crawled_at", json_object_new_int64(posted + FEED_CRAWL_DELAY));
    json_object *urls = json_object_new_array();
    bool file = has_file(post);
    if (file) {
        char *url = xasprintf("https://i.4cdn.org/%s/%" PRId64 "%s", t->board,
                              get_int(post, "tim", 0) + (int64_t)cycle * 1000, get_string(post, "ext"));
        json_object_array_add(urls, json_object_new_string(url));
        free(url);
    }
    add_links(urls, get_string(post, "com"));
    json_object_object_add(item, "_urls", urls);
    if (file) json_object_object_add(item, "_img", make_img(post, id));
    return item;
}

/* --- the generator: messages of items, N items in all --- */

/* The items waiting for their message, per routing key. */
typedef struct pending {
    char routing_key[64];
    json_object *items; /* array */
    size_t want;        /* the message goes when it holds this many */
} pending;

typedef struct feed {
    const corpus *c;
    uint64_t cycle;
    size_t thread, post; /* the next post */
    size_t left;         /* items still to make */
    pending *keys;       /* two a board at most: OPs and replies */
    size_t nkeys;
    uint64_t nmsgs; /* messages cut so far */
} feed;

typedef struct message {
    char routing_key[64];
    char *body; /* JSON array of the items */
    size_t len, nitems;
} message;

static void feed_init(feed *f, const corpus *c, size_t n) {
    memset(f, 0, sizeof *f);
    f->c = c;
    f->left = n;
    f->keys = xcalloc(2 * c->nthreads, sizeof *f->keys);
}

static void feed_free(feed *f) {
    for (size_t i = 0; i < f->nkeys; i++)
        json_object_put(f->keys[i].items);
    free(f->keys);
}

/* Messages hold FEED_MSG_MIN..FEED_MSG_ITEMS items, varying from one to the next. */
static size_t feed_message_size(feed *f) {
    return FEED_MSG_MIN + (size_t)(f->nmsgs++ * 7 % (FEED_MSG_ITEMS - FEED_MSG_MIN + 1));
}

static pending *feed_key(feed *f, const char *routing_key) {
    for (size_t i = 0; i < f->nkeys; i++)
        if (strcmp(f->keys[i].routing_key, routing_key) == 0) return &f->keys[i];
    pending *k = &f->keys[f->nkeys++];
    snprintf(k->routing_key, sizeof k->routing_key, "%s", routing_key);
    k->items = json_object_new_array();
    k->want = feed_message_size(f);
    return k;
}

/* Make the next item of the stream (cycle after cycle of every thread's
 * posts) and queue it under its key; the key it went to. */
static pending *feed_make(feed *f) {
    const thread *t = &f->c->threads[f->thread];
    json_object *post = t->posts[f->post];
    char key[64];
    snprintf(key, sizeof key, "4chan.%s.%s", get_int(post, "resto", 0) ? "post" : "thread", t->board);
    pending *k = feed_key(f, key);
    json_object_array_add(k->items, make_item(t, post, f->cycle));
    f->left--;
    if (++f->post == t->nposts) {
        f->post = 0;
        if (++f->thread == f->c->nthreads) {
            f->thread = 0;
            f->cycle++;
        }
    }
    return k;
}

/* Cut the message of key K into M; each of its items also goes to EACH. */
static void feed_cut(feed *f, pending *k, message *m, void (*each)(const char *json, size_t len, void *arg),
                     void *arg) {
    size_t n = json_object_array_length(k->items), len;
    for (size_t i = 0; each && i < n; i++) {
        const char *text =
            json_object_to_json_string_length(json_object_array_get_idx(k->items, i), FEED_JSON_FLAGS, &len);
        each(text, len, arg);
    }
    snprintf(m->routing_key, sizeof m->routing_key, "%s", k->routing_key);
    m->body = xstrdup(json_object_to_json_string_length(k->items, FEED_JSON_FLAGS, &len));
    m->len = len;
    m->nitems = n;
    json_object_put(k->items);
    k->items = json_object_new_array();
    k->want = feed_message_size(f);
}

/* The next message (false when every item went out): the items of one
 * routing key in the order they were made, as a crawler that keeps one
 * buffer per key cuts them.  The caller frees m->body. */
static bool feed_next(feed *f, message *m, void (*each)(const char *json, size_t len, void *arg), void *arg) {
    while (f->left) {
        pending *k = feed_make(f);
        if (json_object_array_length(k->items) >= k->want) {
            feed_cut(f, k, m, each, arg);
            return true;
        }
    }
    for (size_t i = 0; i < f->nkeys; i++) {
        if (json_object_array_length(f->keys[i].items)) {
            feed_cut(f, &f->keys[i], m, each, arg);
            return true;
        }
    }
    return false;
}

/* --- the two modes --- */

static void write_line(const char *json, size_t len, void *arg) {
    FILE *out = arg;
    fwrite(json, 1, len, out);
    fputc('\n', out);
}

static int run_items(const corpus *c, size_t n, const char *path) {
    FILE *out = fopen(path, "w");
    if (!out) die("cannot write %s", path);
    feed f;
    feed_init(&f, c, n);
    message m;
    size_t msgs = 0;
    while (feed_next(&f, &m, write_line, out)) {
        free(m.body);
        msgs++;
    }
    feed_free(&f);
    if (fclose(out) != 0) die("cannot write %s", path);
    fprintf(stderr, "bench_feed: %zu items (%zu messages) written to %s\n", n, msgs, path);
    return 0;
}

static void free_messages(message *msgs, mq_message *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(msgs[i].body);
    memset(out, 0, n * sizeof *out);
}

static int run_publish(const corpus *c, size_t n, const char *exchange) {
    const char *url = getenv("IMGFEED_AMQP_URL");
    mq_options opts = {.url = url ? url : "amqp://guest:guest@localhost:5672",
                       .exchange = exchange,
                       .heartbeat_ms = 30000,
                       .connection_name = "bench_feed",
                       .max_attempts = 5};
    mq *q;
    if (mq_new(&opts, &q) != MQ_OK) die("cannot connect to %s", opts.url);
    const char *target = mq_target_name(q, MQ_EXCHANGE_ITEMS);
    feed f;
    feed_init(&f, c, n);
    message msgs[FEED_PUBLISH_BATCH];
    mq_message out[FEED_PUBLISH_BATCH] = {{0}};
    size_t nmsgs = 0, bytes = 0, k = 0;
    int64_t t0 = time_mono_ns();
    bool more = true;
    while (more) {
        more = feed_next(&f, &msgs[k], NULL, NULL);
        if (more) {
            out[k] = (mq_message){.routing_key = msgs[k].routing_key, .body = msgs[k].body, .len = msgs[k].len};
            bytes += msgs[k].len;
            k++;
        }
        if (k == FEED_PUBLISH_BATCH || (!more && k)) {
            int rc = mq_publish(q, target, out, k);
            if (rc != MQ_OK) die("publishing failed: %s", mq_status_text(rc));
            nmsgs += k;
            free_messages(msgs, out, k);
            k = 0;
        }
    }
    feed_free(&f);
    double s = (double)(time_mono_ns() - t0) / 1e9;
    fprintf(stderr, "bench_feed: %zu items in %zu messages (%.1f MB) published to %s in %.2f s (%.0f items/s)\n", n,
            nmsgs, (double)bytes / 1e6, target, s, (double)n / s);
    mq_free(q);
    return 0;
}

static size_t parse_count(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v == 0) die("not a positive count: %s", s);
    return (size_t)v;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_feed [--fixtures DIR] [--only-files] items N OUT.jsonl\n"
                    "       bench_feed [--fixtures DIR] [--only-files] publish --exchange E N  (IMGFEED_AMQP_URL)\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = BENCH_FIXTURES_DIR;
    bool only_files = false;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--only-files") == 0)
            only_files = true;
        else
            return usage();
    }
    if (i >= argc) return usage();
    const char *mode = argv[i++];
    corpus c;
    int status;
    if (strcmp(mode, "items") == 0 && argc - i == 2) {
        corpus_load(&c, dir, only_files);
        status = run_items(&c, parse_count(argv[i]), argv[i + 1]);
    } else if (strcmp(mode, "publish") == 0 && argc - i == 3 && strcmp(argv[i], "--exchange") == 0) {
        corpus_load(&c, dir, only_files);
        status = run_publish(&c, parse_count(argv[i + 2]), argv[i + 1]);
    } else {
        return usage();
    }
    corpus_free(&c);
    return status;
}
