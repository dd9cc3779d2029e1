/* consumer.c -- the hasher's loop: take messages, download, hash, publish, ack.
 *
 * One thread (this one) talks to the broker and drives the downloads; the
 * hashing runs on a workpool.  Each turn of consumer_loop:
 *
 *   1. take the deliveries waiting (mq_next; without waiting when there is
 *      work in progress, else up to CONSUMER_IDLE_WAIT_MS): a message that
 *      cannot be processed goes to E.dead and is acked at once; any other
 *      becomes a consumer_msg with one consumer_image per URL to download
 *      of its items (the first `_files` of its `_urls` whatever their path,
 *      the others when they name a picture or video), each queued;
 *   2. fetch_perform: start due downloads (unless too many bodies wait for
 *      hashing, consumer_may_download, or the memory budget is spent), wait
 *      a little for sockets, timers, or a hashing thread's fetch_wakeup,
 *      move transfers on;
 *   3. a finished download becomes a hashing job once the memory its
 *      decoding takes is reserved (consumer_collect_downloads), a failed
 *      one an `_img` error entry; a finished hashing job is the image's
 *      `_img` entry, and gives its memory back;
 *   4. the messages whose images are all done are published to E in one
 *      confirmed batch, then acked one by one; while the broker confirms,
 *      mq calls consumer_idle, which goes on with steps 2 and 3 (the
 *      downloads and the hashing), so that the hashing threads keep working;
 *   5. if the connection changed (mq reconnected inside a call), the messages
 *      delivered on the old one are dropped: the broker delivers them again,
 *      and their acks would be refused anyway.
 *
 * Message states (consumer_msg_state), each change logged at debug level:
 *
 *   WORKING ──every image has its entry──▶ READY ──published, acked──▶ freed
 *   WORKING/READY ──connection lost──▶ DROPPED ──its hashing jobs back──▶ freed
 *
 * Stopping: the first SIGTERM/SIGINT stops the taking of messages, and the
 * loop ends when the messages in flight are published and acked.  mq refuses
 * to work while a stop is requested, so the consumer takes the request (it
 * takes the flag, sig_take_stop) and remembers it; a second signal sets the flag
 * again, and so does the end of the drain time (SIG_DRAIN_MS after the first
 * signal), and then the loop ends at once, leaving what is unfinished to be
 * delivered again.
 *
 * Publishing (consumer_publish_ready): each message's items, `_img` added,
 * are cut into messages under --max-message (msgout.c); an item too large
 * for any message, and the items of a message the broker refuses for good,
 * go to E.dead one by one as received, and an item that E.dead refuses too
 * is logged and dropped, since it can never be processed.  The input is
 * acked only when all of its items are settled so.
 *
 * --save-dir failures (a full disk) do not lose files: the message is not
 * published but nacked back to the queue, and no new message is taken for a
 * backoff delay.
 *
 * Memory (--max-memory, common/membudget.h): a downloaded body comes with its
 * claim on the budget (common/fetch.c reserved it); before it is hashed the claim grows
 * by what decoding and hashing it take (ih_describe_working_bytes, from the
 * header), and when that does not fit the image waits, in order, in
 * c->memory_wait (CONSUMER_IMAGE_MEMORY) while its body stays counted; it
 * waits in the budget's first queue, ahead of every download, since
 * hashing gives memory back and downloading only takes it.  The claim is
 * released when the hashing job comes back.  So the bodies being
 * downloaded, waiting and being hashed, and the decoders' pixels, together
 * stay within the budget, but for the one request that may go alone when
 * nothing else runs (membudget.h).  Besides, malloc keeps the blocks of
 * small and typical pictures freed for the next ones, a bounded amount,
 * given back once the hasher is idle (consumer_open, consumer_trim).
 *
 * Metrics (metrics.h; docs/metrics.md lists them): consumer_metrics_init
 * registers every family before the broker is connected, each series of a
 * fixed list made at zero, and keeps the series in c->m, so that an update
 * is one relaxed atomic (the hashing threads observe hash_seconds and count
 * hash_failures themselves).  What is counted where:
 *
 *   items_received     items of each message taken and parsed (a message
 *                      sent to E.dead as unparsable has none);
 *   downloads{result}  each download taken back from fetch, by its outcome
 *                      (fetch_outcome: ok, http_error, timeout, ...), with
 *                      its bytes and its transfers' seconds;
 *   hash_seconds, hash_failures  on the worker, per ih_describe (a video
 *                      is checksummed, neither hashed nor a failure);
 *   items_published, images_hashed  when the broker confirmed a message to
 *                      E: its items, and the `_img` entries with hashes
 *                      among them; each part of a message once, although a
 *                      message that could not be settled is published again
 *                      whole (consumer_msg_count_published).  A redelivered
 *                      message is another message and counts again, since
 *                      it is published again;
 *   images_in_flight   each image from its delivery until its entry is done
 *                      (or its download is cancelled, or its hashing job
 *                      comes back, for a dropped message);
 *   bytes_in_flight    the budget's bytes held, read at the end of every
 *                      turn of the loop (consumer_advance).
 */
#include "consumer.h"

#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backoff.h"
#include "fetch.h"
#include "http.h"
#include "imghash/imghash.h"
#include "items.h"
#include "log.h"
#include "membudget.h"
#include "metrics.h"
#include "mq.h"
#include "msgout.h"
#include "netguard.h"
#include "ratelimit.h"
#include "savedir.h"
#include "sig.h"
#include "timeutil.h"
#include "workpool.h"
#include "xalloc.h"

#define CONSUMER_IDLE_WAIT_MS 200 /* longest wait for a delivery when nothing is in progress */
#define CONSUMER_BUSY_WAIT_MS 25  /* longest wait for downloads before looking at the broker again */
#define CONSUMER_STATS_EVERY_NS (60 * TIME_NS_PER_S)
/* Downloaded bodies waiting for hashing (consumer_may_download): always up
 * to CONSUMER_BACKLOG_PER_THREAD per hashing thread, and up to
 * CONSUMER_BACKLOG_SMALL_PER_THREAD while they total less than
 * CONSUMER_BACKLOG_BYTES.  The deep queue of small bodies keeps the threads
 * busy while this thread parses, serializes and publishes a message of
 * hundreds of items (milliseconds, when a small image hashes in 0.1 ms); the
 * byte bound keeps large files from piling up. */
#define CONSUMER_BACKLOG_PER_THREAD 2
#define CONSUMER_BACKLOG_SMALL_PER_THREAD 32
#define CONSUMER_BACKLOG_BYTES (64u << 20)
#define CONSUMER_REASON_MAX 256
#define CONSUMER_MMAP_THRESHOLD (8u << 20)              /* see consumer_open */
#define CONSUMER_TRIM_THRESHOLD (8u << 20)              /* see consumer_open */
#define CONSUMER_TRIM_IDLE_NS (TIME_NS_PER_S)           /* see consumer_trim */
#define CONSUMER_TRIM_PRESSED_NS (100 * TIME_NS_PER_MS) /* see consumer_trim_pressed */

/* imgfeed_hasher_hash_seconds: a small picture hashes in 0.1 ms, a large
 * one in a second or more. */
static const double CONSUMER_HASH_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                               0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

typedef enum consumer_msg_state {
    CONSUMER_MSG_WORKING, /* images downloading or hashing */
    CONSUMER_MSG_READY,   /* every image has its `_img` entry: to publish */
    CONSUMER_MSG_DROPPED, /* its connection is gone: waiting only for its hashing jobs to come back */
} consumer_msg_state;

typedef enum consumer_image_state {
    CONSUMER_IMAGE_DOWNLOADING,
    CONSUMER_IMAGE_MEMORY, /* downloaded, waiting for the memory its hashing takes */
    CONSUMER_IMAGE_HASHING,
    CONSUMER_IMAGE_DONE,
} consumer_image_state;

typedef struct consumer consumer;
typedef struct consumer_msg consumer_msg;

typedef struct consumer_image {
    workpool_job job; /* the hashing job; consumer_hash_run finds the image by offsetof */
    consumer_msg *msg;
    consumer_image_state state;
    size_t item;           /* index of its item in the message */
    int url_index;         /* index in the item's `_urls` */
    const char *url;       /* owned by the item's JSON */
    char expected_md5[32]; /* the site's base64 md5 of the file, or "" */
    fetch_job *download;   /* while DOWNLOADING */
    unsigned char *body;   /* while MEMORY and HASHING: the worker frees it */
    size_t len;
    membudget_claim claim; /* from MEMORY until the hashing job is back: the body and its decoding */
    uint64_t hash_total;   /* the claim while hashing: the body and ih_describe_working_bytes */
    struct consumer_image *wait_prev, *wait_next; /* c->memory_wait, while MEMORY */
    atomic_bool cancelled;                        /* the message was dropped: the worker skips the work */
    json_object *entry;                           /* the `_img` entry once DONE, until it joins the item */
    bool hashed;                                  /* the worker wrote hashes into entry */
    bool in_flight;                               /* counted in c->images_in_flight */
    bool save_failed;
    char save_error[SAVEDIR_ERROR_MAX];
} consumer_image;

struct consumer_msg {
    consumer_msg *prev, *next;
    consumer *owner;
    uint64_t id; /* the n-th message taken, for logs */
    consumer_msg_state state;
    mq_tag tag;
    char *routing_key;
    json_object *items; /* the parsed array: where the images are */
    char *text;         /* the body as delivered, which the `_img` arrays are appended to */
    size_t text_len;
    consumer_image *images;
    size_t nimages;
    size_t images_left; /* not DONE yet */
    size_t hashing;     /* images in the workpool */
    msgout out;         /* once READY and built: the messages to publish */
    bool built;
    bool *counted; /* once built: counted[k], message k of out was confirmed and counted (metrics) */
};

typedef struct consumer_stats {
    uint64_t messages_in, messages_out, items_out, dead_lettered, dropped, requeued;
    uint64_t items_dead; /* items sent to E.dead alone: too large for a message, or refused */
    uint64_t items_lost; /* items refused even by E.dead: logged and dropped */
    uint64_t images_ok, images_failed, bytes;
} consumer_stats;

/* The series the consumer updates (see the top of this file). */
typedef struct consumer_metrics {
    metrics_series *items_received, *items_published;
    metrics_series *downloads[FETCH_OUTCOMES]; /* by fetch_outcome */
    metrics_series *download_bytes, *download_seconds;
    metrics_series *images_hashed, *hash_failures, *hash_seconds;
    metrics_series *images_in_flight, *bytes_in_flight, *memory_budget;
} consumer_metrics;

typedef struct consumer_wait_list {
    consumer_image *head, *tail;
} consumer_wait_list;

struct consumer {
    const consumer_settings *s;
    mq *q;
    ratelimit *rl;
    netguard *guard;
    fetch *fetch;
    workpool *pool;
    ih_options hash_options;
    membudget *budget;                     /* --max-memory */
    consumer_wait_list memory_wait;        /* images downloaded, waiting for memory to be hashed, in order */
    size_t max_backlog, max_backlog_small; /* see CONSUMER_BACKLOG_PER_THREAD */
    size_t backlog_bytes;                  /* of the bodies submitted and not yet taken back */
    uint64_t generation;
    consumer_msg *head, *tail; /* every message, in the order taken */
    size_t live;               /* messages WORKING or READY */
    uint64_t next_id;
    bool draining, aborting;
    bool trim_due;           /* messages came since malloc last gave back what was free (consumer_trim) */
    int64_t last_message_ns; /* when the last message was taken */
    int64_t last_trim_ns;    /* when consumer_trim_pressed last trimmed */
    int status;              /* what consumer_run returns */
    int64_t hold_until_ns;
    backoff hold_backoff;
    consumer_stats stats;
    int64_t next_stats_ns;
    consumer_metrics m;
    size_t images_in_flight; /* images with in_flight set */
};

static const char *consumer_msg_state_name(consumer_msg_state s) {
    switch (s) {
    case CONSUMER_MSG_WORKING: return "working";
    case CONSUMER_MSG_READY: return "ready";
    case CONSUMER_MSG_DROPPED: return "dropped";
    }
    return "unknown";
}

static void consumer_msg_set_state(consumer_msg *m, consumer_msg_state to, const char *why) {
    log_debug("message %" PRIu64 " (%s, %zu images): %s -> %s (%s)", m->id, m->routing_key, m->nimages,
              consumer_msg_state_name(m->state), consumer_msg_state_name(to), why);
    m->state = to;
}

/* --- metrics --- */

/* Register the hasher's families, every series of the fixed lists at zero,
 * and keep the series in C->m. */
static void consumer_metrics_init(consumer *c) {
    consumer_metrics *m = &c->m;
    m->items_received = items_received_metric();
    m->items_published = metrics_get(metrics_counter("imgfeed_items_published_total", "items published", NULL));
    metrics_family *downloads =
        metrics_counter("imgfeed_hasher_downloads_total", "downloads ended, by result", "result");
    for (int o = 0; o < FETCH_OUTCOMES; o++)
        m->downloads[o] = metrics_get(downloads, fetch_outcome_name((fetch_outcome)o));
    m->download_bytes =
        metrics_get(metrics_counter("imgfeed_hasher_download_bytes_total", "bytes of the files downloaded", NULL));
    m->download_seconds = metrics_get(metrics_histogram("imgfeed_hasher_download_seconds",
                                                        "seconds the transfers of one download took, retries and "
                                                        "redirects included",
                                                        NULL, NULL, 0));
    m->images_hashed =
        metrics_get(metrics_counter("imgfeed_hasher_images_hashed_total",
                                    "images whose hashes were published, one per _img entry with hashes", NULL));
    m->hash_failures = metrics_get(metrics_counter("imgfeed_hasher_hash_failures_total",
                                                   "files downloaded but not hashable: not an image, truncated, "
                                                   "too many pixels",
                                                   NULL));
    m->hash_seconds = metrics_get(
        metrics_histogram("imgfeed_hasher_hash_seconds", "seconds decoding and hashing one file took", NULL,
                          CONSUMER_HASH_BUCKETS, sizeof CONSUMER_HASH_BUCKETS / sizeof CONSUMER_HASH_BUCKETS[0]));
    m->images_in_flight = metrics_get(
        metrics_gauge("imgfeed_hasher_images_in_flight", "images downloading, waiting or being hashed", NULL));
    m->bytes_in_flight =
        metrics_get(metrics_gauge("imgfeed_hasher_bytes_in_flight", "bytes held against the memory budget", NULL));
    m->memory_budget = metrics_get(metrics_gauge("imgfeed_hasher_memory_budget_bytes",
                                                 "the memory budget (--max-memory) in bytes, 0 for no bound", NULL));
    metrics_set(m->memory_budget, c->s->max_memory > 0 ? (double)c->s->max_memory : 0);
    metrics_set(m->images_in_flight, 0);
    metrics_set(m->bytes_in_flight, 0);
}

/* IM is no longer in flight: its entry is done, its download cancelled, or
 * its hashing job back from a dropped message. */
static void consumer_image_landed(consumer *c, consumer_image *im) {
    if (!im->in_flight) return;
    im->in_flight = false;
    c->images_in_flight--;
    metrics_set(c->m.images_in_flight, (double)c->images_in_flight);
}

/* The bytes held against the budget, now. */
static void consumer_metrics_memory(consumer *c) {
    membudget_stats mem;
    membudget_get_stats(c->budget, &mem);
    metrics_set(c->m.bytes_in_flight, (double)mem.used);
}

/* --- images waiting for memory --- */

static void consumer_wait_append(consumer *c, consumer_image *im) {
    consumer_wait_list *l = &c->memory_wait;
    im->wait_prev = l->tail;
    im->wait_next = NULL;
    if (l->tail) {
        l->tail->wait_next = im;
    } else {
        l->head = im;
    }
    l->tail = im;
}

static void consumer_wait_remove(consumer *c, consumer_image *im) {
    consumer_wait_list *l = &c->memory_wait;
    if (im->wait_prev) {
        im->wait_prev->wait_next = im->wait_next;
    } else {
        l->head = im->wait_next;
    }
    if (im->wait_next) {
        im->wait_next->wait_prev = im->wait_prev;
    } else {
        l->tail = im->wait_prev;
    }
    im->wait_prev = im->wait_next = NULL;
}

/* --- messages: life and death --- */

static void consumer_msg_link(consumer *c, consumer_msg *m) {
    m->prev = c->tail;
    if (c->tail) {
        c->tail->next = m;
    } else {
        c->head = m;
    }
    c->tail = m;
}

static void consumer_msg_free(consumer *c, consumer_msg *m) {
    if (m->prev) {
        m->prev->next = m->next;
    } else {
        c->head = m->next;
    }
    if (m->next) {
        m->next->prev = m->prev;
    } else {
        c->tail = m->prev;
    }
    for (size_t i = 0; i < m->nimages; i++) {
        consumer_image *im = &m->images[i];
        consumer_image_landed(c, im);
        if (im->download) fetch_cancel(c->fetch, im->download);
        if (im->state == CONSUMER_IMAGE_MEMORY) consumer_wait_remove(c, im);
        free(im->body);
        membudget_release(&im->claim);
        if (im->entry) json_object_put(im->entry);
    }
    free(m->images);
    json_object_put(m->items);
    free(m->text);
    msgout_release(&m->out);
    free(m->counted);
    free(m->routing_key);
    free(m);
}

/* Give up a message whose delivery belongs to a lost connection: stop its
 * downloads, let its hashing jobs run out, free it once none is left. */
static void consumer_msg_drop(consumer *c, consumer_msg *m, const char *why) {
    if (m->state == CONSUMER_MSG_DROPPED) return;
    for (size_t i = 0; i < m->nimages; i++) {
        consumer_image *im = &m->images[i];
        if (im->download) {
            fetch_cancel(c->fetch, im->download);
            im->download = NULL;
        }
        if (im->state == CONSUMER_IMAGE_MEMORY) {
            consumer_wait_remove(c, im);
            free(im->body);
            im->body = NULL;
            membudget_release(&im->claim);
            im->state = CONSUMER_IMAGE_DONE;
        }
        if (im->state == CONSUMER_IMAGE_HASHING) {
            atomic_store(&im->cancelled, true);
        } else {
            consumer_image_landed(c, im); /* a download cancelled, or a body freed */
        }
    }
    consumer_msg_set_state(m, CONSUMER_MSG_DROPPED, why);
    c->live--;
    c->stats.dropped++;
    if (m->hashing == 0) consumer_msg_free(c, m);
}

/* Drop every live message not delivered on the current connection. */
static void consumer_check_generation(consumer *c) {
    uint64_t generation = mq_generation(c->q);
    if (generation == c->generation) return;
    size_t n = 0;
    for (consumer_msg *m = c->head, *next; m; m = next) {
        next = m->next;
        if (m->state != CONSUMER_MSG_DROPPED && m->tag.generation != generation) {
            consumer_msg_drop(c, m, "the connection it came on is gone");
            n++;
        }
    }
    if (n) log_info("dropped %zu messages of the lost connection: the broker delivers them again", n);
    c->generation = generation;
}

/* The connection is gone and will not be reopened (stopping): drop all. */
static void consumer_drop_all(consumer *c, const char *why) {
    for (consumer_msg *m = c->head, *next; m; m = next) {
        next = m->next;
        consumer_msg_drop(c, m, why);
    }
}

/* --- images --- */

/* An image is done: its entry is ENTRY. */
static void consumer_image_done(consumer *c, consumer_image *im, json_object *entry) {
    consumer_msg *m = im->msg;
    im->state = CONSUMER_IMAGE_DONE;
    im->entry = entry;
    consumer_image_landed(c, im);
    if (json_object_object_get_ex(entry, "error", NULL)) {
        c->stats.images_failed++;
    } else {
        c->stats.images_ok++;
    }
    if (--m->images_left == 0) consumer_msg_set_state(m, CONSUMER_MSG_READY, "every image done");
}

/* URL as a log line may show it: without user name and password (a new
 * string the caller frees). */
static char *consumer_shown_url(const char *url) {
    char *shown = http_url_strip_userinfo(url, NULL);
    return shown ? shown : xstrdup(HTTP_URL_UNPARSED);
}

static json_object *consumer_error_entry(int url_index, const char *error) {
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "url", json_object_new_int(url_index));
    json_object_object_add(entry, "error", json_object_new_string(error));
    return entry;
}

/* Compare the file's md5 with the site's; a mismatch keeps the hashes and
 * says "md5 mismatch" (unless the entry has an error already). */
static void consumer_check_md5(json_object *entry, const consumer_image *im, const ih_result *res) {
    char b64[4 * ((16 + 2) / 3) + 1];
    ih_checksum_base64(res->sums.md5, sizeof res->sums.md5, b64);
    if (strcmp(b64, im->expected_md5) == 0) return;
    if (log_enabled(LOG_DEBUG)) {
        char *shown = consumer_shown_url(im->url);
        log_debug("%s: md5 %s, the site says %s", shown, b64, im->expected_md5);
        free(shown);
    }
    if (!json_object_object_get_ex(entry, "error", NULL))
        json_object_object_add(entry, "error", json_object_new_string("md5 mismatch"));
}

/* The hashing job, on a worker thread: the entry, the md5 check, the copy
 * under --save-dir.  Touches only the image. */
static void consumer_hash_run(workpool_job *job) {
    consumer_image *im = (consumer_image *)((char *)job - offsetof(consumer_image, job));
    const consumer *c = im->msg->owner;
    if (atomic_load(&im->cancelled)) goto done;
    json_object *entry = json_object_new_object();
    json_object_object_add(entry, "url", json_object_new_int(im->url_index));
    ih_result res;
    int64_t start = time_mono_ns();
    ih_describe(entry, im->body, im->len, &c->hash_options, &res);
    metrics_observe(c->m.hash_seconds, (double)(time_mono_ns() - start) / TIME_NS_PER_S);
    if (!res.ok) metrics_inc(c->m.hash_failures);
    im->hashed = json_object_object_get_ex(entry, "phash", NULL); /* not a video's checksums alone */
    if (im->expected_md5[0] && res.checksummed) consumer_check_md5(entry, im, &res);
    if (c->s->save_dir && res.ok &&
        savedir_store(c->s->save_dir, res.sums.sha1_hex, ih_format_extension(res.format), im->body, im->len, NULL,
                      im->save_error) != 0)
        im->save_failed = true;
    im->entry = entry;
done:
    free(im->body);
    im->body = NULL;
}

static void consumer_wake(void *userdata) {
    consumer *c = userdata;
    fetch_wakeup(c->fetch);
}

/* --- a delivery becomes a message --- */

/* The site's md5 of the item's file (4chan, vichan: "md5", base64 of the raw
 * digest) into OUT when `_urls[0]` is that file (its path ends with
 * "<tim><ext>"); false when the item says nothing checkable. */
static bool consumer_expected_md5(json_object *item, json_object *urls, char *out, size_t outlen) {
    json_object *md5 = NULL, *tim = NULL, *ext = NULL;
    if (!json_object_object_get_ex(item, "md5", &md5) || !json_object_is_type(md5, json_type_string)) return false;
    if (!json_object_object_get_ex(item, "tim", &tim) || !json_object_object_get_ex(item, "ext", &ext)) return false;
    if (!json_object_is_type(ext, json_type_string)) return false;
    if (!json_object_is_type(tim, json_type_int) && !json_object_is_type(tim, json_type_string)) return false;
    const char *url = json_object_get_string(json_object_array_get_idx(urls, 0));
    const char *digest = json_object_get_string(md5);
    if (!url || strlen(digest) >= outlen || !*digest) return false;
    char file[128];
    int n = snprintf(file, sizeof file, "/%s%s", json_object_get_string(tim), json_object_get_string(ext));
    if (n <= 1 || (size_t)n >= sizeof file) return false;
    size_t path_end = strcspn(url, "?#");
    if (path_end < (size_t)n || strncmp(url + path_end - (size_t)n, file, (size_t)n) != 0) return false;
    snprintf(out, outlen, "%s", digest);
    return true;
}

/* How many leading `_urls` of ITEM are its own files (`_files`: downloaded
 * whatever their path says); 0 when `_files` is absent or not an integer
 * >= 0 (items from before it: every URL by the media rule). */
static size_t consumer_item_files(json_object *item) {
    json_object *files = NULL;
    if (!json_object_object_get_ex(item, "_files", &files) || !json_object_is_type(files, json_type_int)) return 0;
    int64_t n = json_object_get_int64(files);
    if (n < 0) return 0;
    return (uint64_t)n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* Count the URLs to download of every item (IMAGES NULL), or fill them:
 * its first `_files` URLs, then the others that name a picture or video
 * (fetch_is_media_url). */
static size_t consumer_find_images(consumer_msg *m, consumer_image *images) {
    size_t n = 0;
    for (size_t i = 0; i < json_object_array_length(m->items); i++) {
        json_object *item = json_object_array_get_idx(m->items, i), *urls = NULL;
        if (!json_object_object_get_ex(item, "_urls", &urls) || !json_object_is_type(urls, json_type_array)) continue;
        size_t files = consumer_item_files(item);
        for (size_t u = 0; u < json_object_array_length(urls) && u <= INT32_MAX; u++) {
            json_object *url = json_object_array_get_idx(urls, u);
            if (!json_object_is_type(url, json_type_string)) continue;
            if (u >= files && !fetch_is_media_url(json_object_get_string(url))) continue;
            if (images) {
                consumer_image *im = &images[n];
                im->msg = m;
                im->item = i;
                im->url_index = (int)u;
                im->url = json_object_get_string(url);
                im->job.run = consumer_hash_run;
                atomic_init(&im->cancelled, false);
                membudget_claim_init(&im->claim, m->owner->budget);
                if (u == 0) consumer_expected_md5(item, urls, im->expected_md5, sizeof im->expected_md5);
            }
            n++;
        }
    }
    return n;
}

/* Send an unprocessable delivery to E.dead, then ack it. */
static void consumer_dead_letter(consumer *c, const mq_delivery *d, const char *reason) {
    log_warn("cannot process a message of routing key %s (%zu bytes): %s; sending it to %s", d->routing_key, d->len,
             reason, mq_target_name(c->q, MQ_EXCHANGE_DEAD));
    int rc = mq_publish_dead(c->q, d->routing_key, d->body, d->len, MQ_DEAD_UNPARSABLE, reason);
    if (rc == MQ_REFUSED) {
        /* Too large even for E.dead: it can never be processed, and kept
         * unacknowledged it would come back for ever. */
        log_error("cannot keep a message of routing key %s (%zu bytes) even in %s: refused; it can never be "
                  "processed and is dropped",
                  d->routing_key, d->len, mq_target_name(c->q, MQ_EXCHANGE_DEAD));
        c->stats.items_lost++;
        mq_ack(c->q, d->tag, false);
        return;
    }
    if (rc != MQ_OK && rc != MQ_UNROUTABLE) {
        log_warn("cannot dead-letter the message: %s; it stays in the queue", mq_status_text(rc));
        return;
    }
    c->stats.dead_lettered++;
    mq_ack(c->q, d->tag, false);
}

/* Take the delivery D as a message (its body moves into it) or send it to
 * E.dead. */
static void consumer_on_delivery(consumer *c, mq_delivery *d) {
    c->stats.messages_in++;
    if (d->tag.generation != mq_generation(c->q)) return; /* of a lost connection: it comes again */
    char why[CONSUMER_REASON_MAX];
    json_object *items = items_parse(d->body, d->len, why, sizeof why);
    if (!items) {
        consumer_dead_letter(c, d, why);
        return;
    }
    consumer_msg *m = xcalloc(1, sizeof *m);
    m->owner = c;
    m->id = ++c->next_id;
    c->trim_due = true;
    c->last_message_ns = time_mono_ns();
    m->state = CONSUMER_MSG_WORKING;
    m->tag = d->tag;
    m->routing_key = xstrdup(d->routing_key);
    m->items = items;
    m->text = d->body; /* the delivery's to give: mq_delivery_release frees what is left */
    m->text_len = d->len;
    d->body = NULL;
    d->len = 0;
    metrics_add(c->m.items_received, json_object_array_length(items));
    m->nimages = consumer_find_images(m, NULL);
    m->images = xcalloc(m->nimages ? m->nimages : 1, sizeof *m->images);
    consumer_find_images(m, m->images);
    m->images_left = m->nimages;
    consumer_msg_link(c, m);
    c->live++;
    log_debug("message %" PRIu64 " (%s): %zu items, %zu images%s", m->id, m->routing_key,
              json_object_array_length(items), m->nimages, d->redelivered ? ", redelivered" : "");
    if (m->nimages == 0) {
        consumer_msg_set_state(m, CONSUMER_MSG_READY, "no images");
        return;
    }
    for (size_t i = 0; i < m->nimages; i++) {
        m->images[i].state = CONSUMER_IMAGE_DOWNLOADING;
        m->images[i].in_flight = true;
        m->images[i].download = fetch_add(c->fetch, m->images[i].url, &m->images[i]);
    }
    c->images_in_flight += m->nimages;
    metrics_set(c->m.images_in_flight, (double)c->images_in_flight);
}

/* --- the steps of the loop --- */

/* Notice a stop request: the first starts the draining; a second signal,
 * or the end of the drain time (sig.h), ends it. */
static void consumer_watch_stop(consumer *c) {
    if (!c->draining) {
        if (!sig_take_stop()) return; /* taken: mq works again, for the publishes and acks still due */
        c->draining = true;
        log_info("stop requested: finishing the %zu messages in flight within %d s, then exiting (a second signal "
                 "exits at once)",
                 c->live, SIG_DRAIN_MS / 1000);
    } else if (sig_stop_requested() && !c->aborting) {
        c->aborting = true;
        if (sig_drain_left_ms() == 0)
            log_warn("the %d s of drain time are over (or a second signal came): exiting now; %zu unfinished "
                     "messages will be delivered again",
                     SIG_DRAIN_MS / 1000, c->live);
        else
            log_warn("stop requested again: exiting now; %zu unfinished messages will be delivered again", c->live);
    }
}

static bool consumer_advance(consumer *c, int64_t wait_ms, int watch_fd);

static void consumer_take_deliveries(consumer *c, int64_t wait_ms) {
    if (c->draining || time_mono_ns() < c->hold_until_ns) {
        /* Taking nothing, but heartbeats and confirms still need reading. */
        if (mq_tick(c->q) == MQ_DISCONNECTED && c->draining) consumer_drop_all(c, "connection lost while stopping");
        return;
    }
    for (;;) {
        mq_delivery d;
        int rc = mq_next(c->q, &d, wait_ms);
        if (rc == MQ_OK) {
            consumer_on_delivery(c, &d);
            mq_delivery_release(&d);
            wait_ms = 0;
            /* Parsing a message of hundreds of items takes milliseconds:
             * between two, feed the hashing threads and start downloads. */
            if (!consumer_advance(c, 0, -1)) return;
            continue;
        }
        if (rc != MQ_TIMEOUT && rc != MQ_STOPPED) {
            log_error("cannot take messages from %s: %s", mq_target_name(c->q, MQ_QUEUE_HASHER), mq_status_text(rc));
            c->aborting = true;
            c->status = 1;
        }
        return;
    }
}

/* Whether another download may start: the bodies waiting for hashing are
 * few, or small (see CONSUMER_BACKLOG_PER_THREAD). */
static bool consumer_may_download(const consumer *c) {
    size_t waiting = workpool_backlog(c->pool);
    if (waiting < c->max_backlog) return true;
    return waiting < c->max_backlog_small && c->backlog_bytes < CONSUMER_BACKLOG_BYTES;
}

/* Give IM, downloaded and its memory reserved, to a hashing thread. */
static void consumer_image_hash(consumer *c, consumer_image *im) {
    c->backlog_bytes += im->len;
    im->state = CONSUMER_IMAGE_HASHING;
    im->msg->hashing++;
    workpool_submit(c->pool, &im->job);
}

/* Memory is short (an image waits for it): give back what malloc keeps
 * free for the next pictures (see consumer_open), at most every
 * CONSUMER_TRIM_PRESSED_NS, so that the process holds little beyond what
 * the budget counts when the budget is what bounds it. */
static void consumer_trim_pressed(consumer *c) {
    int64_t now = time_mono_ns();
    if (now - c->last_trim_ns < CONSUMER_TRIM_PRESSED_NS) return;
    c->last_trim_ns = now;
    malloc_trim(0);
}

static void consumer_collect_downloads(consumer *c) {
    fetch_result r;
    while (fetch_take(c->fetch, &r)) {
        consumer_image *im = r.userdata;
        im->download = NULL;
        if (r.outcome >= 0 && r.outcome < FETCH_OUTCOMES) metrics_inc(c->m.downloads[r.outcome]);
        if (r.attempts > 0) metrics_observe(c->m.download_seconds, r.seconds);
        if (!r.ok) {
            if (log_enabled(LOG_DEBUG)) {
                char *shown = consumer_shown_url(im->url);
                log_debug("image %s of message %" PRIu64 ": %s", shown, im->msg->id, r.error);
                free(shown);
            }
            consumer_image_done(c, im, consumer_error_entry(im->url_index, r.error));
            continue;
        }
        c->stats.bytes += r.len;
        metrics_add(c->m.download_bytes, r.len);
        im->body = r.body;
        im->len = r.len;
        membudget_claim_move(&im->claim, &r.claim);
        im->hash_total = im->claim.held + ih_describe_working_bytes(im->body, im->len, &c->hash_options);
        im->state = CONSUMER_IMAGE_MEMORY;
        /* Asked even behind others: a claim that waits must be in the
         * budget's queue, or the budget would count its body as work still
         * running and never let the oldest waiter go alone. */
        if (membudget_reserve_first(&im->claim, im->hash_total)) {
            consumer_image_hash(c, im);
        } else {
            log_debug("image %d of item %zu of message %" PRIu64 " (%zu bytes) waits for %" PRIu64
                      " bytes of memory to be hashed",
                      im->url_index, im->item, im->msg->id, im->len, im->hash_total);
            consumer_wait_append(c, im);
            consumer_trim_pressed(c);
        }
    }
}

/* Submit the images waiting for memory, in order, while it can be had. */
static void consumer_submit_waiting(consumer *c) {
    consumer_image *im;
    while ((im = c->memory_wait.head) && membudget_reserve_first(&im->claim, im->hash_total)) {
        consumer_wait_remove(c, im);
        consumer_image_hash(c, im);
    }
}

static void consumer_collect_hashes(consumer *c) {
    workpool_job *job;
    while ((job = workpool_take(c->pool))) {
        consumer_image *im = (consumer_image *)((char *)job - offsetof(consumer_image, job));
        consumer_msg *m = im->msg;
        c->backlog_bytes -= im->len;
        membudget_release(&im->claim); /* the worker freed the body, the decoder its pixels */
        m->hashing--;
        if (m->state == CONSUMER_MSG_DROPPED) {
            consumer_image_landed(c, im);
            if (m->hashing == 0) consumer_msg_free(c, m);
            continue;
        }
        json_object *entry = im->entry;
        im->entry = NULL;
        consumer_image_done(c, im, entry);
    }
}

/* Item I's `_img` array: its images' entries (moved out of them), in `_urls`
 * order, from *NEXT on. */
static json_object *consumer_msg_take_img(consumer_msg *m, size_t i, size_t *next) {
    json_object *img = json_object_new_array();
    for (; *next < m->nimages && m->images[*next].item == i; (*next)++) {
        json_object_array_add(img, m->images[*next].entry);
        m->images[*next].entry = NULL;
    }
    return img;
}

/* The messages to publish, made once (a publish interrupted by a stop is
 * repeated): the items with their `_img`, in parts under --max-message
 * (msgout.c). */
static void consumer_msg_make_output(consumer *c, consumer_msg *m) {
    if (m->built) return;
    size_t n = json_object_array_length(m->items), next = 0;
    json_object **imgs = xcalloc(n ? n : 1, sizeof *imgs);
    for (size_t i = 0; i < n; i++)
        imgs[i] = consumer_msg_take_img(m, i, &next);
    int64_t max = mq_max_message(c->q);
    msgout_build(&m->out, m->routing_key, m->text, m->text_len, m->items, imgs, max > 0 ? (uint64_t)max : 0);
    free(imgs);
    m->counted = xcalloc(m->out.nmsgs ? m->out.nmsgs : 1, sizeof *m->counted);
    m->built = true;
    if (m->out.nmsgs > 1)
        log_info("message %" PRIu64 " (%s, %zu items) is published as %zu messages under --max-message (%" PRId64
                 " bytes)",
                 m->id, m->routing_key, n, m->out.nmsgs, max);
}

/* A READY message whose files could not be saved: back to the queue, and a
 * pause before taking more. */
static bool consumer_msg_requeue_if_unsaved(consumer *c, consumer_msg *m) {
    for (size_t i = 0; i < m->nimages; i++) {
        if (!m->images[i].save_failed) continue;
        int64_t delay = backoff_next_ms(&c->hold_backoff);
        char *shown = consumer_shown_url(m->images[i].url);
        log_error("cannot save %s of message %" PRIu64 ": %s; putting the message back and taking no new one "
                  "for %" PRId64 " ms",
                  shown, m->id, m->images[i].save_error, delay);
        free(shown);
        c->hold_until_ns = time_mono_ns() + delay * TIME_NS_PER_MS;
        mq_nack(c->q, m->tag, false, true);
        c->stats.requeued++;
        c->live--;
        consumer_msg_free(c, m);
        return true;
    }
    backoff_reset(&c->hold_backoff);
    return false;
}

/* The `_id` of item I of M (items_parse made sure it has one). */
static const char *consumer_item_id(const consumer_msg *m, size_t i) {
    json_object *id = NULL;
    json_object_object_get_ex(json_object_array_get_idx(m->items, i), "_id", &id);
    return json_object_get_string(id);
}

/* Send item I of M to E.dead as it was received, with REASON.  True once it
 * is settled: kept there, or refused even there (too large for the broker as
 * received), which is logged with its `_id` and counted, for it can never
 * be processed; false when that is not known (a stop, or the broker gone):
 * then M must not be acked. */
static bool consumer_dead_letter_item(consumer *c, consumer_msg *m, size_t i, mq_dead_reason kind, const char *reason) {
    size_t len;
    char *body = msgout_received(&m->out, i, &len);
    const char *dead = mq_target_name(c->q, MQ_EXCHANGE_DEAD);
    log_warn("item %s of message %" PRIu64 " (%s): %s; sending it to %s as received (%zu bytes)",
             consumer_item_id(m, i), m->id, m->routing_key, reason, dead, len);
    int rc = mq_publish_dead(c->q, m->routing_key, body, len, kind, reason);
    free(body);
    if (rc == MQ_OK || rc == MQ_UNROUTABLE) {
        c->stats.items_dead++;
        return true;
    }
    if (rc == MQ_REFUSED) {
        log_error("cannot keep item %s of message %" PRIu64 " (%s) even in %s: %zu bytes as received, refused; "
                  "it can never be processed and is dropped",
                  consumer_item_id(m, i), m->id, m->routing_key, dead, len);
        c->stats.items_lost++;
        return true;
    }
    if (rc != MQ_STOPPED)
        log_warn("cannot send item %s of message %" PRIu64 " to %s: %s; the message stays unacknowledged",
                 consumer_item_id(m, i), m->id, dead, mq_status_text(rc));
    return false;
}

/* Dead-letter the COUNT items of M from FIRST, each as received.  False
 * when one of them is not settled (see consumer_dead_letter_item). */
static bool consumer_dead_letter_items(consumer *c, consumer_msg *m, size_t first, size_t count, mq_dead_reason kind,
                                       const char *reason) {
    for (size_t i = first; i < first + count; i++)
        if (!consumer_dead_letter_item(c, m, i, kind, reason)) return false;
    return true;
}

/* Count what the broker confirmed of M's messages OUT[0 .. nmsgs) (neither
 * refused nor returned) and was not counted yet: their items, and their
 * images with hashes.  The images are in the order of their items, and so
 * are the messages. */
static void consumer_msg_count_published(consumer *c, consumer_msg *m, const mq_message *out) {
    uint64_t items = 0, hashed = 0;
    size_t i = 0;
    for (size_t k = 0; k < m->out.nmsgs; k++) {
        size_t end = m->out.first[k + 1];
        bool now = !out[k].refused && !out[k].returned && !m->counted[k];
        if (now) {
            m->counted[k] = true;
            items += end - m->out.first[k];
        }
        for (; i < m->nimages && m->images[i].item < end; i++)
            if (now && m->images[i].hashed) hashed++;
    }
    if (items) metrics_add(c->m.items_published, items);
    if (hashed) metrics_add(c->m.images_hashed, hashed);
}

/* After the publish: what became of M's messages OUT[0 .. nmsgs).  One
 * the broker returned (no queue bound to E for its key) goes to E.dead as
 * published; the items of one refused for good (longer than --max-message,
 * as an item too large alone with its `_img` is, or refused by the broker)
 * go to E.dead one by one as received.  True when every item is settled,
 * and M may be acked. */
static bool consumer_msg_settle(consumer *c, consumer_msg *m, const mq_message *out) {
    char why[CONSUMER_REASON_MAX];
    bool all = true;
    for (size_t k = 0; k < m->out.nmsgs && all; k++) {
        size_t first = m->out.first[k], count = m->out.first[k + 1] - first;
        if (out[k].refused) {
            snprintf(why, sizeof why, "cannot be published to %s: %s", mq_target_name(c->q, MQ_EXCHANGE_ITEMS),
                     out[k].why);
            all = consumer_dead_letter_items(c, m, first, count, MQ_DEAD_UNPUBLISHABLE, why);
        } else if (out[k].returned) {
            /* Nothing is bound to E for this key: keep the items in E.dead rather than lose them. */
            snprintf(why, sizeof why, "unroutable: no queue is bound to exchange %s for routing key %s",
                     mq_target_name(c->q, MQ_EXCHANGE_ITEMS), m->routing_key);
            log_warn("%s; sending message %" PRIu64 " to %s", why, m->id, mq_target_name(c->q, MQ_EXCHANGE_DEAD));
            int rc = mq_publish_dead(c->q, m->routing_key, out[k].body, out[k].len, MQ_DEAD_UNROUTABLE, why);
            if (rc == MQ_REFUSED) {
                all = consumer_dead_letter_items(c, m, first, count, MQ_DEAD_UNROUTABLE, why);
            } else if (rc == MQ_OK || rc == MQ_UNROUTABLE) {
                c->stats.dead_lettered++;
            } else {
                all = false;
            }
        } else {
            c->stats.messages_out++;
            c->stats.items_out += count;
        }
    }
    return all;
}

/* Publish every READY message in one confirmed batch (each as its parts),
 * then settle what came back and ack the messages whose every item is
 * published or in E.dead. */
static void consumer_publish_ready(consumer *c) {
    size_t n = 0, nout = 0;
    for (consumer_msg *m = c->head, *next; m; m = next) {
        next = m->next;
        if (m->state != CONSUMER_MSG_READY || consumer_msg_requeue_if_unsaved(c, m)) continue;
        consumer_msg_make_output(c, m);
        n++;
        nout += m->out.nmsgs;
    }
    if (n == 0) return;
    mq_message *out = xcalloc(nout ? nout : 1, sizeof *out);
    consumer_msg **batch = xcalloc(n, sizeof *batch);
    size_t k = 0, o = 0;
    for (consumer_msg *m = c->head; m && k < n; m = m->next) {
        if (m->state != CONSUMER_MSG_READY) continue;
        for (size_t p = 0; p < m->out.nmsgs; p++)
            out[o++] = m->out.msgs[p];
        batch[k++] = m;
    }
    int rc = nout ? mq_publish(c->q, mq_target_name(c->q, MQ_EXCHANGE_ITEMS), out, nout) : MQ_OK;
    if (rc == MQ_STOPPED) {
        /* Not published, not acked: published again once the stop is taken
         * (the first signal), or left to be delivered again (the second). */
        log_info("publishing %zu messages interrupted by a stop request", nout);
        goto done;
    }
    if (rc != MQ_OK && rc != MQ_UNROUTABLE && rc != MQ_REFUSED) {
        log_error("cannot publish %zu messages to %s: %s", nout, mq_target_name(c->q, MQ_EXCHANGE_ITEMS),
                  mq_status_text(rc));
        c->aborting = true;
        c->status = 1;
        goto done;
    }
    o = 0;
    for (size_t i = 0; i < n; i++) {
        consumer_msg *m = batch[i];
        const mq_message *parts = &out[o];
        o += m->out.nmsgs;
        consumer_msg_count_published(c, m, parts);
        if (!consumer_msg_settle(c, m, parts)) continue; /* stays READY: published again next turn */
        mq_ack(c->q, m->tag, false);
        log_debug("message %" PRIu64 " (%s): published and acked", m->id, m->routing_key);
        c->live--;
        consumer_msg_free(c, m);
    }
done:
    free(batch);
    free(out);
}

static void consumer_log_stats(consumer *c, bool now) {
    int64_t t = time_mono_ns();
    if (!now && t < c->next_stats_ns) return;
    c->next_stats_ns = t + CONSUMER_STATS_EVERY_NS;
    const consumer_stats *s = &c->stats;
    membudget_stats mem;
    membudget_get_stats(c->budget, &mem);
    log_info("%" PRIu64 " messages in, %" PRIu64 " out (%" PRIu64 " items), %" PRIu64 " dead-lettered (and %" PRIu64
             " items alone, %" PRIu64 " refused even there), %" PRIu64 " dropped, %" PRIu64 " requeued; %" PRIu64
             " images hashed, %" PRIu64 " failed, %" PRIu64
             " bytes downloaded; %zu messages in flight; memory: %" PRIu64 " bytes held, %" PRIu64 " at most, %" PRIu64
             " waits for it",
             s->messages_in, s->messages_out, s->items_out, s->dead_lettered, s->items_dead, s->items_lost, s->dropped,
             s->requeued, s->images_ok, s->images_failed, s->bytes, c->live, mem.used, mem.peak, mem.waits);
}

/* Steps 2 and 3 of the loop: run the downloads, waiting at most WAIT_MS
 * (for curl, a hashing thread's wake-up, or WATCH_FD when >= 0), then turn
 * finished downloads into hashing jobs and finished hashing jobs into
 * entries.  False, with the consumer aborting, when curl itself failed. */
static bool consumer_advance(consumer *c, int64_t wait_ms, int watch_fd) {
    if (fetch_perform_watch(c->fetch, wait_ms, consumer_may_download(c), watch_fd) != 0) {
        c->aborting = true;
        c->status = 1;
        return false;
    }
    consumer_collect_downloads(c);
    consumer_collect_hashes(c);
    consumer_submit_waiting(c);
    consumer_metrics_memory(c);
    return true;
}

/* The idle callback of mq (mq_options.idle): while a publish waits for the
 * broker's confirms, which for persistent messages take as long as the
 * broker's disk, the downloads and the hashing go on, instead of the hashing
 * threads running out of work.  Only steps that call no mq function run
 * here; the broker's socket ends the wait. */
static void consumer_idle(void *arg, int fd, int64_t max_wait_ms) {
    consumer *c = arg;
    if (c->aborting) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, (int)max_wait_ms);
        return;
    }
    consumer_advance(c, max_wait_ms, fd);
}

/* Nothing in flight, and no message came for CONSUMER_TRIM_IDLE_NS: give
 * the memory malloc keeps for the next pictures back to the system (see
 * consumer_open).  Not at every pause of a stream of messages: that would
 * give it back and fault it in again, and a trim takes a millisecond. */
static void consumer_trim(consumer *c) {
    if (!c->trim_due || time_mono_ns() - c->last_message_ns < CONSUMER_TRIM_IDLE_NS) return;
    c->trim_due = false;
    malloc_trim(0);
    log_debug("idle: free memory given back to the system");
}

static void consumer_loop(consumer *c) {
    for (;;) {
        consumer_watch_stop(c);
        if (c->aborting || (c->draining && c->live == 0)) break;
        bool busy = fetch_pending(c->fetch) > 0 || workpool_backlog(c->pool) > 0;
        bool holding = time_mono_ns() < c->hold_until_ns;
        consumer_take_deliveries(c, busy ? 0 : CONSUMER_IDLE_WAIT_MS);
        if (!busy && c->live == 0) consumer_trim(c);
        consumer_check_generation(c);
        int64_t wait = busy || holding || c->draining ? CONSUMER_BUSY_WAIT_MS : 0;
        if (!consumer_advance(c, wait, -1)) break;
        consumer_publish_ready(c);
        consumer_check_generation(c);
        consumer_metrics_memory(c); /* the messages freed gave their memory back */
        consumer_log_stats(c, false);
    }
}

/* --- setting up --- */

static int consumer_open(consumer *c) {
    const consumer_settings *s = c->s;
    char err[SAVEDIR_ERROR_MAX];
    if (s->save_dir && savedir_prepare(s->save_dir, err) != 0) {
        log_error("cannot use --save-dir: %s", err);
        return -1;
    }
    c->guard = netguard_new(s->allow_private);
    if (s->allow_net && netguard_allow_list(c->guard, s->allow_net, err, sizeof err) != 0) {
        log_error("bad --allow-net '%s': %s", s->allow_net, err);
        return -1;
    }
    c->rl = ratelimit_new(s->rps_per_host);
    c->budget = membudget_new((uint64_t)s->max_memory);
    /* Where malloc takes large blocks from (glibc): by default it raises
     * its mmap threshold to the size of each large block freed (up to 32
     * MiB), after which what is freed stays in whichever thread's arena
     * held it, without a bound.  Mapping every large block afresh instead
     * (a low fixed threshold) bounds that, but makes every picture fault in
     * and zero its buffers again and unmap them after: a 1 MP JPEG takes a
     * few hundred page faults, which cost more than decoding it on a
     * virtual machine (bench/pipeline.sh, PICTURES=photos: the hashing
     * threads spent 2.5 times the CPU of `hash` alone).  So: blocks under
     * CONSUMER_MMAP_THRESHOLD (a body and the buffers of pictures of up to a
     * few megapixels) come from the arenas and are used again by the next
     * picture; larger ones (large pictures, the ones the memory budget is
     * for) are mapped and unmapped as before; each arena gives back what is
     * free at its top beyond CONSUMER_TRIM_THRESHOLD, and everything free
     * goes back once the hasher has nothing in flight (consumer_trim) and
     * whenever a picture waits for memory (consumer_trim_pressed).
     * What malloc keeps beyond the budget is so bounded by the threads'
     * arenas times a few such blocks, while the hasher works. */
    if (mallopt(M_MMAP_THRESHOLD, CONSUMER_MMAP_THRESHOLD) != 1 ||
        mallopt(M_TRIM_THRESHOLD, CONSUMER_TRIM_THRESHOLD) != 1)
        log_warn("cannot set malloc's mmap and trim thresholds: memory freed may stay with the process");
    fetch_options fo;
    fetch_options_init(&fo);
    fo.user_agent = s->user_agent;
    fo.connect_timeout_ms = s->connect_timeout_ms;
    fo.timeout_ms = s->download_timeout_ms;
    fo.max_bytes = s->max_bytes;
    fo.max_transfers = (int)s->max_downloads;
    fo.max_retries = (int)s->download_retries;
    c->fetch = fetch_new(&fo, c->rl, c->guard, c->budget);
    if (!c->fetch) return -1;
    int threads = s->threads > 0 ? (int)s->threads : workpool_online_cores();
    c->pool = workpool_new(threads, consumer_wake, c);
    if (!c->pool) return -1;
    c->max_backlog = (size_t)workpool_threads(c->pool) * CONSUMER_BACKLOG_PER_THREAD;
    c->max_backlog_small = (size_t)workpool_threads(c->pool) * CONSUMER_BACKLOG_SMALL_PER_THREAD;
    ih_options_init(&c->hash_options);
    c->hash_options.max_bytes = (uint64_t)s->max_bytes;
    c->hash_options.max_pixels = (uint64_t)s->max_pixels;
    backoff_init(&c->hold_backoff, 1000, 60000);
    return 0;
}

static void consumer_close(consumer *c) {
    workpool_free(c->pool); /* no worker touches a message after this */
    while (c->head)
        consumer_msg_free(c, c->head);
    fetch_free(c->fetch);
    membudget_free(c->budget); /* every claim was released with its message or its job */
    mq_free(c->q);             /* unacknowledged deliveries go back to the queue */
    ratelimit_free(c->rl);
    netguard_free(c->guard);
}

int consumer_run(const consumer_settings *s) {
    consumer c = {.s = s, .next_stats_ns = time_mono_ns() + CONSUMER_STATS_EVERY_NS};
    consumer_metrics_init(&c); /* before the broker: an idle hasher shows every family */
    if (consumer_open(&c) != 0) {
        consumer_close(&c);
        return 1;
    }
    mq_options mo;
    mq_options_init(&mo, &s->common, "imgfeed-hasher");
    mo.idle = consumer_idle;
    mo.idle_arg = &c;
    int rc = mq_new(&mo, &c.q);
    if (rc == MQ_OK) rc = mq_consume(c.q, mq_target_name(c.q, MQ_QUEUE_HASHER), (uint16_t)s->prefetch);
    if (rc != MQ_OK) {
        if (rc != MQ_STOPPED) log_error("cannot consume from the broker: %s", mq_status_text(rc));
        consumer_close(&c);
        return rc == MQ_STOPPED ? 0 : 1;
    }
    c.generation = mq_generation(c.q);
    char memory[64];
    if (s->max_memory > 0)
        snprintf(memory, sizeof memory, "files and decoding within %.1f MiB", (double)s->max_memory / (1 << 20));
    else
        snprintf(memory, sizeof memory, "no memory budget");
    log_info("hashing on %d threads, up to %ld downloads at once, %g requests per second per host, %s%s",
             workpool_threads(c.pool), s->max_downloads, s->rps_per_host, memory,
             s->allow_private ? ", private addresses allowed" : "");
    consumer_loop(&c);
    consumer_log_stats(&c, true);
    log_info("stopped%s", c.status ? " after an error" : "");
    consumer_close(&c);
    return c.status;
}
