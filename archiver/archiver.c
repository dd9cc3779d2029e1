/* archiver.c -- the archiver's loop; see archiver.h.
 *
 * One thread, two batches: one filling, one being written.  Each turn takes
 * a delivery (waiting at most until the batch's flush deadline), and either
 * adds it to the filling batch or, when it can never be stored (not JSON,
 * not an array of objects with a string _id, an item over --max-item-bytes,
 * a routing key that names no table), sends it to E.dead with the reason
 * and acks it at once.  A batch is flushed when it is full, as old as
 * --flush-interval, or quiet: no delivery was taken for --flush-quiet (time
 * spent parsing one does not count).  So the end of a burst is stored at once, while a steady
 * stream (a message at least every few milliseconds) or a backlog in the
 * queue still fills batches.  Flushed, it becomes the
 * writing batch, and while PostgreSQL works on it, pgstore's idle callback
 * (archiver_idle) keeps taking deliveries into the other one, so that the
 * archiver parses the next batch while the server writes this one.  At most
 * two batches are held; the filling one stops taking when it is full.
 *
 *   FILLING ──full / flush interval / quiet / stop──▶ WRITING ──COMMIT──▶ ACKED (batch emptied)
 *                                               │  ▲
 *                  PostgreSQL down, deadlock, … │  │ backoff, broker kept alive
 *                                               ▼  │
 *                                             RETRYING
 *   WRITING ──rows refused──▶ ISOLATING: each message in its own transaction;
 *                             a message still refused goes to E.dead with
 *                             PostgreSQL's reason, the others are stored.
 *
 * Acks: after COMMIT one multiple-ack on the batch's last delivery of the
 * current connection covers the whole batch (deliveries come in tag order
 * and every earlier one is in the batch or already acked).  If a dead-letter
 * could not be sent, that delivery is a hole that a multiple-ack would
 * swallow; then the batch is acked message by message instead.  Deliveries
 * of a connection that has since been lost cannot be acked (mq: MQ_STALE);
 * the broker delivers them again and the upsert absorbs the repeat.
 *
 * Metrics (metrics.h, registered by archiver_run before it connects):
 * imgfeed_items_received_total counts the items of every delivery taken
 * into a batch; after each COMMIT, every item of what it stored is either
 * a row written (inserted, or replacing its row with a newer version:
 * imgfeed_archiver_rows_written_total, of which
 * imgfeed_archiver_rows_replaced_total replaced one) or left unchanged (the
 * row already held it or a newer copy, or a later copy of the same _id in
 * the batch won: imgfeed_archiver_rows_unchanged_total); so over a run the
 * archive gains rows_written - rows_replaced rows.  Items stored with
 * "_repaired" (text mended for jsonb, batch.h) count in
 * imgfeed_archiver_rows_repaired_total.  A batch stored adds its items to
 * imgfeed_archiver_batch_rows, each COMMIT its time to
 * imgfeed_archiver_commit_seconds; pgstore counts the database reconnects.
 *
 * Stopping: the first SIGTERM/SIGINT stops the taking of new messages; the
 * batch, and whatever the broker had already delivered, are written and
 * acked, then the process exits 0.  If that is not done within the drain
 * time of sig.h (SIG_DRAIN_MS: PostgreSQL or the broker unreachable, a
 * write that hangs), or a second signal comes, it exits 0 as well, without
 * acking what it did not store: the broker keeps those messages, and
 * nothing is lost.
 */
#include "archiver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "batch.h"
#include "items.h"
#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "pgconn.h"
#include "pgstore.h"
#include "sig.h"
#include "timeutil.h"
#include "xalloc.h"

#define ARCHIVER_IDLE_WAIT_MS 200 /* longest wait for a delivery with an empty batch */
#define ARCHIVER_SLICE_MS 100     /* backoff waits in slices, servicing the broker */
#define ARCHIVER_STATS_EVERY_NS (60 * TIME_NS_PER_S)
#define ARCHIVER_REASON_MAX 1024
#define ARCHIVER_IDLE_TAKE 1 /* deliveries taken per idle call while a batch is written: few, so that
                                PostgreSQL's answer is read soon */

typedef struct archiver_stats {
    uint64_t messages, items, dead_lettered, refused_messages, flushes, retries;
} archiver_stats;

/* The archiver's series (see the top), looked up once. */
typedef struct archiver_metrics {
    metrics_series *items_received; /* imgfeed_items_received_total */
    metrics_series *rows_written, *rows_replaced, *rows_unchanged, *rows_repaired;
    metrics_series *batch_rows;     /* histogram: items a batch */
    metrics_series *commit_seconds; /* histogram */
} archiver_metrics;

static const double archiver_batch_buckets[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

typedef struct archiver {
    const archiver_settings *s;
    mq *q;
    pgstore *pg;
    batch batches[2];
    batch *filling; /* takes deliveries */
    batch *writing; /* being written; NULL between flushes */
    backoff pg_backoff;
    bool stopping;       /* a stop was taken: drain and exit */
    bool abandoned;      /* gave up draining: what is held is not acked */
    int64_t last_take_ns; /* when the last delivery was taken, its parsing done (--flush-quiet) */
    uint64_t hole_generation; /* a delivery of this connection was neither stored nor acked */
    archiver_stats stats;
    archiver_metrics m;
    int64_t next_stats_ns;
} archiver;

/* --- metrics --- */

/* Register every family the archiver exposes (idempotent: a test's several
 * archivers share them). */
static void archiver_metrics_init(archiver_metrics *m) {
    m->items_received = items_received_metric();
    m->rows_written = metrics_get(metrics_counter("imgfeed_archiver_rows_written_total",
                                                  "rows inserted, or replaced by a newer version of their item", NULL));
    m->rows_replaced = metrics_get(metrics_counter("imgfeed_archiver_rows_replaced_total",
                                                   "rows written that replaced an older version of their item", NULL));
    m->rows_unchanged = metrics_get(
        metrics_counter("imgfeed_archiver_rows_unchanged_total",
                        "items that changed no row: archived already as they are, or not newer than the row", NULL));
    m->rows_repaired = metrics_get(metrics_counter(
        "imgfeed_archiver_rows_repaired_total", "items stored with text mended for jsonb and marked _repaired", NULL));
    m->batch_rows = metrics_get(metrics_histogram("imgfeed_archiver_batch_rows", "items in each batch stored", NULL,
                                                  archiver_batch_buckets,
                                                  sizeof archiver_batch_buckets / sizeof archiver_batch_buckets[0]));
    m->commit_seconds = metrics_get(metrics_histogram(
        "imgfeed_archiver_commit_seconds", "seconds of each write transaction until its commit", NULL, NULL, 0));
    pgconn_metrics_init(); /* imgfeed_database_reconnects_total, counted by pgstore */
}

/* A COMMIT (R) stored ITEMS items, REPAIRED of them mended. */
static void archiver_count_commit(archiver *a, const pgstore_result *r, size_t items, size_t repaired) {
    if (r->rows) metrics_observe(a->m.commit_seconds, (double)r->commit_ns / TIME_NS_PER_S);
    metrics_add(a->m.rows_written, r->written);
    metrics_add(a->m.rows_replaced, r->written - r->inserted);
    metrics_add(a->m.rows_unchanged, items > r->written ? items - r->written : 0);
    metrics_add(a->m.rows_repaired, repaired);
}

/* --- waiting --- */

static void archiver_take(archiver *a, mq_delivery *d);
static void archiver_take_stop(archiver *a);

static bool archiver_batch_full(const archiver *a, const batch *b) {
    return b->items >= (size_t)a->s->batch_size || b->bytes >= (size_t)a->s->batch_bytes;
}

/* Called by pgstore while it waits for the server: take what the broker
 * delivered into the filling batch, a few messages a call.  True when it
 * took something (pgstore looks at its socket and calls again at once). */
static bool archiver_idle(void *arg) {
    archiver *a = arg;
    archiver_take_stop(a); /* a stop during a write starts the drain (sig.h), so that a hung write ends */
    if (!a->q) return false;
    if (!a->writing || a->stopping || archiver_batch_full(a, a->filling)) {
        mq_tick(a->q);
        return false;
    }
    bool took = false;
    for (int i = 0; i < ARCHIVER_IDLE_TAKE && !archiver_batch_full(a, a->filling); i++) {
        mq_delivery d;
        if (mq_next(a->q, &d, 0) != MQ_OK) break;
        archiver_take(a, &d);
        took = true;
    }
    return took;
}

/* Take a requested stop (mq refuses to work while one is pending): the
 * first one starts the drain, a second one abandons it. */
static void archiver_take_stop(archiver *a) {
    if (!sig_take_stop()) return;
    if (a->stopping) {
        log_warn("second stop request: exiting without writing what is held");
        a->abandoned = true;
        return;
    }
    log_info("stop requested: writing the %zu items held, then exiting",
             a->filling->items + (a->writing ? a->writing->items : 0));
    a->stopping = true;
}

/* Take a requested stop; false when waiting must end for good: a second
 * signal, or the drain time over (sig.h). */
static bool archiver_check_stop(archiver *a) {
    archiver_take_stop(a);
    if (a->abandoned) return false;
    if (a->stopping && sig_drain_left_ms() == 0) {
        log_warn("the %d s to drain after the stop request are over: exiting; the %zu items held are not acked, and "
                 "the broker delivers them again",
                 SIG_DRAIN_MS / 1000, a->filling->items + (a->writing ? a->writing->items : 0));
        a->abandoned = true;
        return false;
    }
    return true;
}

/* Wait MS while keeping the broker connection alive.  False when the wait
 * must end for good (see archiver_check_stop). */
static bool archiver_wait(archiver *a, int64_t ms) {
    int64_t end = time_mono_ns() + ms * TIME_NS_PER_MS;
    while (time_mono_ns() < end) {
        if (!archiver_check_stop(a)) return false;
        mq_tick(a->q);
        time_sleep_ns(ARCHIVER_SLICE_MS * TIME_NS_PER_MS);
    }
    return archiver_check_stop(a);
}

/* --- dead letters and acks --- */

/* Send an unstorable delivery to E.dead with REASON and ack it. */
static void archiver_dead_letter(archiver *a, const mq_delivery *d, mq_dead_reason kind, const char *reason) {
    log_warn("cannot archive a message of routing key %s (%zu bytes): %s; sending it to %s", d->routing_key, d->len,
             reason, mq_target_name(a->q, MQ_EXCHANGE_DEAD));
    archiver_take_stop(a); /* a drain may still publish */
    int rc = mq_publish_dead(a->q, d->routing_key, d->body, d->len, kind, reason);
    /* MQ_REFUSED: the broker will not take it even in E.dead (mq logged
     * it); it can never be processed, so it is acked, not kept for ever. */
    if (rc != MQ_OK && rc != MQ_UNROUTABLE && rc != MQ_REFUSED) {
        log_warn("cannot dead-letter the message: %s; it stays in the queue", mq_status_text(rc));
        if (d->tag.generation == mq_generation(a->q)) a->hole_generation = d->tag.generation;
        return;
    }
    a->stats.dead_lettered++;
    mq_ack(a->q, d->tag, false);
}

/* Ack every message of batch B except those in SKIP (may be NULL). */
static void archiver_ack_batch(archiver *a, const batch *b, const bool *skip) {
    uint64_t gen = mq_generation(a->q);
    bool one_by_one = skip || a->hole_generation == gen;
    size_t last = SIZE_MAX;
    archiver_take_stop(a); /* the acks are owed */
    for (size_t i = 0; i < b->nmsgs; i++) {
        const mq_delivery *d = &b->msgs[i].d;
        if (d->tag.generation != gen) continue; /* its connection is gone: it comes again */
        if (skip && skip[i]) continue;
        if (one_by_one)
            mq_ack(a->q, d->tag, false);
        else
            last = i;
    }
    if (last != SIZE_MAX) mq_ack(a->q, b->msgs[last].d.tag, true);
}

/* --- writing the batch --- */

/* The rows of every table of batch B (MSG < 0), or of its message MSG. */
static size_t archiver_tables(const archiver *a, const batch *b, long msg, pgstore_table *out) {
    size_t n = 0;
    for (size_t t = 0; t < b->ntables; t++) {
        if (msg >= 0 && b->msgs[msg].table != t) continue;
        const batch_table *bt = &b->tables[t];
        char *param;
        size_t len;
        size_t rows = batch_table_param(b, t, msg, &param, &len);
        out[n++] = (pgstore_table){.name = bt->name,
                                   .exchange = a->s->common.exchange,
                                   .key_prefix = bt->key_prefix,
                                   .param = param,
                                   .param_len = len,
                                   .nrows = rows};
    }
    return n;
}

static void archiver_tables_free(pgstore_table *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        free((char *)t[i].param);
}

/* Write TABLES until it is done (what it did in *RES), refused, or the
 * wait is abandoned. */
static int archiver_write(archiver *a, const pgstore_table *tables, size_t n, size_t items, pgstore_result *res,
                          char *why, size_t whylen) {
    for (;;) {
        int rc = pgstore_write(a->pg, tables, n, res, why, whylen);
        if (rc != PGSTORE_RETRY) {
            backoff_reset(&a->pg_backoff);
            return rc;
        }
        a->stats.retries++;
        int64_t delay = backoff_next_ms(&a->pg_backoff);
        log_warn("cannot write %zu items to PostgreSQL: %s; trying again in %" PRId64 " ms", items, why, delay);
        if (!archiver_wait(a, delay)) return PGSTORE_RETRY;
    }
}

/* PostgreSQL refused the batch: store each message alone, and send the
 * ones it still refuses to E.dead.  False when abandoned. */
static bool archiver_isolate(archiver *a, batch *b) {
    log_warn("PostgreSQL refused a batch of %zu messages: writing them one by one to find the culprit", b->nmsgs);
    bool *skip = xcalloc(b->nmsgs, sizeof *skip);
    bool ok = true;
    for (size_t i = 0; i < b->nmsgs && ok; i++) {
        pgstore_table one;
        char why[ARCHIVER_REASON_MAX];
        size_t n = archiver_tables(a, b, (long)i, &one);
        pgstore_result res;
        int rc = archiver_write(a, &one, n, b->msgs[i].nitems, &res, why, sizeof why);
        archiver_tables_free(&one, n);
        if (rc == PGSTORE_OK) {
            archiver_count_commit(a, &res, b->msgs[i].nitems, b->msgs[i].repaired);
        } else if (rc == PGSTORE_REFUSED) {
            char reason[ARCHIVER_REASON_MAX + 32];
            snprintf(reason, sizeof reason, "PostgreSQL refused it: %s", why);
            a->stats.refused_messages++;
            archiver_dead_letter(a, &b->msgs[i].d, MQ_DEAD_DATABASE_REFUSED, reason);
            skip[i] = true; /* acked, or a hole */
        } else if (rc != PGSTORE_OK) {
            ok = false;
        }
    }
    if (ok) archiver_ack_batch(a, b, skip);
    free(skip);
    return ok;
}

/* Write the filling batch, ack it, empty it; meanwhile the other batch
 * fills.  False when the drain was abandoned (the batch is emptied unacked:
 * the broker delivers it again). */
static bool archiver_flush(archiver *a) {
    batch *b = a->filling;
    if (!b->nmsgs) return true;
    a->writing = b;
    a->filling = b == &a->batches[0] ? &a->batches[1] : &a->batches[0];
    a->stats.flushes++;
    pgstore_table *tables = xcalloc(b->ntables ? b->ntables : 1, sizeof *tables);
    size_t n = archiver_tables(a, b, -1, tables);
    char why[ARCHIVER_REASON_MAX];
    int64_t t0 = time_mono_ns();
    pgstore_result res;
    int rc = archiver_write(a, tables, n, b->items, &res, why, sizeof why);
    archiver_tables_free(tables, n);
    free(tables);
    bool ok = true;
    if (rc == PGSTORE_OK) {
        archiver_count_commit(a, &res, b->items, b->repaired);
        archiver_ack_batch(a, b, NULL);
        log_debug("committed %zu items of %zu messages in %" PRId64 " ms; %zu items taken meanwhile", b->items,
                  b->nmsgs, (int64_t)((time_mono_ns() - t0) / TIME_NS_PER_MS), a->filling->items);
    } else if (rc == PGSTORE_REFUSED) {
        ok = archiver_isolate(a, b);
    } else {
        ok = false;
    }
    if (ok)
        metrics_observe(a->m.batch_rows, (double)b->items);
    else
        log_warn("%zu messages were not archived; the broker will deliver them again", b->nmsgs);
    batch_clear(b);
    a->writing = NULL;
    return ok;
}

/* Whether the filling batch is to be written: full, or as old as the
 * flush interval.  (Quiet is decided by the loop, which waited.) */
static bool archiver_batch_due(const archiver *a) {
    const batch *b = a->filling;
    if (!b->nmsgs) return false;
    return archiver_batch_full(a, b) ||
           time_mono_ns() - b->started_ns >= a->s->flush_interval_ms * TIME_NS_PER_MS;
}

/* When the filling batch becomes quiet (no delivery taken for
 * --flush-quiet); INT64_MAX when --flush-quiet is 0. */
static int64_t archiver_quiet_at_ns(const archiver *a) {
    if (a->s->flush_quiet_ms <= 0) return INT64_MAX;
    return a->last_take_ns + a->s->flush_quiet_ms * TIME_NS_PER_MS;
}

/* Whether the filling batch is quiet: the loop's wait for a delivery ended
 * with none (RC), and none was taken for --flush-quiet. */
static bool archiver_batch_quiet(const archiver *a, int rc) {
    if (!a->filling->nmsgs || rc != MQ_TIMEOUT) return false;
    return time_mono_ns() >= archiver_quiet_at_ns(a);
}

/* --- the loop --- */

static void archiver_take(archiver *a, mq_delivery *d) {
    char why[ARCHIVER_REASON_MAX];
    a->stats.messages++;
    if (batch_add(a->filling, d, why, sizeof why)) {
        size_t items = a->filling->msgs[a->filling->nmsgs - 1].nitems;
        a->stats.items += items;
        metrics_add(a->m.items_received, items);
    } else {
        archiver_dead_letter(a, d, MQ_DEAD_UNPARSABLE, why);
        mq_delivery_release(d);
    }
    a->last_take_ns = time_mono_ns();
}

static void archiver_log_stats(archiver *a) {
    pgstore_stats ps;
    pgstore_get_stats(a->pg, &ps);
    mq_stats ms;
    mq_get_stats(a->q, &ms);
    log_info("%" PRIu64 " messages, %" PRIu64 " items; %" PRIu64 " rows written, %" PRIu64
             " unchanged, in %" PRIu64 " commits; %" PRIu64 " messages dead-lettered (%" PRIu64
             " refused by PostgreSQL); %" PRIu64 " write retries, %" PRIu64 " PostgreSQL connects, %" PRIu64
             " broker connects",
             a->stats.messages, a->stats.items, ps.rows_written, ps.rows_unchanged, ps.commits, a->stats.dead_lettered,
             a->stats.refused_messages, a->stats.retries, ps.connects, ms.connects);
}

/* After a stop: store what the broker already delivered (it sits in the
 * socket or in mq's list, unacked) along with the batch, rather than leave
 * it to come again.  Bounded by the prefetch, since the broker sends no more
 * than that unacknowledged. */
static void archiver_drain(archiver *a) {
    bool connected = mq_tick(a->q) == MQ_OK; /* else mq_next would reconnect: take nothing more */
    for (long taken = 0;;) {
        mq_delivery d;
        while (connected && taken < a->s->prefetch && !archiver_batch_full(a, a->filling) && mq_next(a->q, &d, 0) == MQ_OK) {
            archiver_take(a, &d);
            taken++;
        }
        bool more = archiver_batch_full(a, a->filling) && taken < a->s->prefetch;
        if (!archiver_flush(a)) {
            a->abandoned = true;
            return;
        }
        if (!more) return;
    }
}

static int archiver_loop(archiver *a) {
    while (!a->stopping) {
        if (!archiver_check_stop(a)) break;
        if (a->stopping) break;
        int64_t wait_ms = ARCHIVER_IDLE_WAIT_MS;
        if (a->filling->nmsgs) {
            int64_t due = a->filling->started_ns + a->s->flush_interval_ms * TIME_NS_PER_MS;
            int64_t quiet = archiver_quiet_at_ns(a);
            if (quiet < due) due = quiet;
            due -= time_mono_ns();
            wait_ms = due > 0 ? due / TIME_NS_PER_MS + 1 : 0;
            if (wait_ms > ARCHIVER_IDLE_WAIT_MS) wait_ms = ARCHIVER_IDLE_WAIT_MS;
        }
        mq_delivery d;
        int rc = mq_next(a->q, &d, wait_ms);
        if (rc == MQ_OK)
            archiver_take(a, &d);
        else if (rc == MQ_GAVE_UP) {
            log_error("the broker cannot be reached: giving up");
            return 1;
        }
        if ((archiver_batch_quiet(a, rc) || archiver_batch_due(a)) && !archiver_flush(a)) break;
        if (time_mono_ns() >= a->next_stats_ns) {
            archiver_log_stats(a);
            a->next_stats_ns = time_mono_ns() + ARCHIVER_STATS_EVERY_NS;
        }
    }
    if (!a->abandoned) archiver_drain(a);
    archiver_log_stats(a);
    return 0;
}

static pgstore *archiver_pgstore_new(const archiver_settings *s, archiver *a) {
    pgstore_options po = {.conninfo = s->pg, .write_timeout_ms = s->write_timeout_ms};
    if (a) {
        po.idle = archiver_idle;
        po.idle_arg = a;
    }
    return pgstore_new(&po);
}

int archiver_run(const archiver_settings *s) {
    archiver a;
    memset(&a, 0, sizeof a);
    a.s = s;
    batch_init(&a.batches[0], s->common.exchange, (size_t)s->max_item_bytes);
    batch_init(&a.batches[1], s->common.exchange, (size_t)s->max_item_bytes);
    a.filling = &a.batches[0];
    backoff_init(&a.pg_backoff, 200, 30000);
    a.next_stats_ns = time_mono_ns() + ARCHIVER_STATS_EVERY_NS;
    archiver_metrics_init(&a.m);
    int status = 1;

    mq_options mo;
    mq_options_init(&mo, &s->common, "imgfeed-archiver");
    int rc = mq_new(&mo, &a.q);
    if (rc != MQ_OK) {
        status = rc == MQ_STOPPED ? 0 : 1;
        goto done;
    }
    a.pg = archiver_pgstore_new(s, &a);
    /* Install the SQL helpers before taking anything. */
    while (pgstore_ready(a.pg) != PGSTORE_OK) {
        int64_t delay = backoff_next_ms(&a.pg_backoff);
        log_warn("waiting for PostgreSQL; trying again in %" PRId64 " ms", delay);
        if (!archiver_wait(&a, delay) || a.stopping) {
            status = 0;
            goto done;
        }
    }
    backoff_reset(&a.pg_backoff);
    rc = mq_consume(a.q, mq_target_name(a.q, MQ_QUEUE_ARCHIVER), (uint16_t)s->prefetch);
    if (rc != MQ_OK) {
        status = rc == MQ_STOPPED ? 0 : 1;
        goto done;
    }
    log_info("archiving %s into PostgreSQL: batches of %ld items or %" PRId64 " ms, or after %" PRId64 " ms without a message",
             mq_target_name(a.q, MQ_QUEUE_ARCHIVER), s->batch_size, s->flush_interval_ms, s->flush_quiet_ms);
    status = archiver_loop(&a);
done:
    batch_release(&a.batches[0]);
    batch_release(&a.batches[1]);
    pgstore_free(a.pg);
    mq_free(a.q);
    return status;
}

int archiver_init_db(const archiver_settings *s) {
    pgstore *pg = archiver_pgstore_new(s, NULL);
    int rc = pgstore_ready(pg);
    pgstore_free(pg);
    if (rc != PGSTORE_OK) return 1;
    log_info("the archive's SQL helpers are installed");
    return 0;
}
