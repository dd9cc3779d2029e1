/* test_archiver.c -- imgfeed-archiver end to end: real broker, real PostgreSQL.
 *
 * Each test publishes items to a fresh exchange E (so its tables are E_*),
 * runs the real imgfeed-archiver as a child process, and looks at what the
 * archive holds with its own SQL.  Ordering without sleeps: a single
 * archiver works through its queue in order, so once a "sentinel" item
 * published last is in the archive, everything before it has been handled.
 *
 * Where a test starts the archiver with --metrics-listen, a scrape of its
 * /metrics must say what the test made happen: items received, rows
 * written (the archive's gain plus the rows replaced), unchanged,
 * replaced, repaired, dead letters by reason, reconnects.
 *
 * `test_archiver restart` runs the tests that restart PostgreSQL and the
 * broker under a busy archiver; ctest runs those alone.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mq.h"
#include "mq_admin.h"
#include "pgtest.h"
#include "proc.h"
#include "scrape.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define GUARD_MS 180000 /* longest any wait may take before the test fails */

typedef struct ctx {
    char *exchange;
    char *post_table;   /* E_site_post */
    char *thread_table; /* E_site_thread */
    mq *q;              /* publishes to E */
    proc archiver[2];
} ctx;

static ctx t;

/* --- the archiver as a child process --- */

/* Start imgfeed-archiver --exchange E with ARGS (NULL-terminated). */
static void archiver_start(proc *p, const char *const *args) {
    proc_start_imgfeed(p, "archiver/imgfeed-archiver", t.exchange, args);
}

static const char *const with_metrics[] = {"--metrics-listen", "127.0.0.1:0", NULL};

/* The archive's rows in the test's two tables. */
static long archive_rows(void) {
    long posts = pgtest_count(t.post_table), threads = pgtest_count(t.thread_table);
    return (posts > 0 ? posts : 0) + (threads > 0 ? threads : 0);
}

/* The metrics of the archiver at PORT after a run: RECEIVED items,
 * WRITTEN rows of which REPLACED replaced one, UNCHANGED items; and the
 * archive gained exactly the rows written that replaced none. */
static void expect_rows(int port, double received, double written, double replaced, double unchanged) {
    scrape_expect(port, "imgfeed_items_received_total", received);
    scrape_expect(port, "imgfeed_archiver_rows_written_total", written);
    scrape_expect(port, "imgfeed_archiver_rows_replaced_total", replaced);
    scrape_expect(port, "imgfeed_archiver_rows_unchanged_total", unchanged);
    assert_int_equal(archive_rows(), (long)(written - replaced));
}

/* --- publishing --- */

static void publish_text(const char *key, const char *body, size_t len) {
    mq_message m = {.routing_key = key, .body = body, .len = len};
    assert_int_equal(mq_publish(t.q, mq_target_name(t.q, MQ_EXCHANGE_ITEMS), &m, 1), MQ_OK);
}

static void publish_json(const char *key, json_object *items) {
    const char *body = json_object_to_json_string_ext(items, JSON_C_TO_STRING_PLAIN);
    publish_text(key, body, strlen(body));
}

/* An item as the hasher would publish it. */
static json_object *make_item(const char *board, long no, long crawled_at, const char *comment) {
    json_object *o = json_object_new_object();
    char id[64];
    snprintf(id, sizeof id, "%s.%ld", board, no);
    json_object_object_add(o, "no", json_object_new_int64(no));
    json_object_object_add(o, "time", json_object_new_int64(1700000000 + no));
    json_object_object_add(o, "com", json_object_new_string(comment));
    json_object_object_add(o, "tim", json_object_new_int64(1699999999000000 + no));
    json_object_object_add(o, "_v", json_object_new_int(1));
    json_object_object_add(o, "_id", json_object_new_string(id));
    json_object_object_add(o, "_chan", json_object_new_string("site"));
    json_object_object_add(o, "_board", json_object_new_string(board));
    json_object_object_add(o, "_type", json_object_new_string("post"));
    json_object_object_add(o, "_crawled_at", json_object_new_int64(crawled_at));
    json_object *urls = json_object_new_array();
    json_object_array_add(urls, json_object_new_string("https://i.example.org/g/1.jpg"));
    json_object_object_add(o, "_urls", urls);
    json_object *img = json_object_new_array(), *e = json_object_new_object();
    json_object_object_add(e, "url", json_object_new_int(0));
    json_object_object_add(e, "sha1", json_object_new_string("5d6151241dfb5c65cb3f736f22b4cda978cc1cd0"));
    json_object_object_add(e, "phash", json_object_new_string("jVVSItap1dlSX0zZUmE2ZqZn"));
    json_object_array_add(img, e);
    json_object_object_add(o, "_img", img);
    return o;
}

/* Publish items FIRST..FIRST+N of board "g" as messages of PER items each to
 * KEY, and remember their texts in EXPECT (id -> item) when given. */
static void publish_range(const char *key, long first, long n, long per, long crawled_at, json_object *expect) {
    for (long i = 0; i < n; i += per) {
        json_object *items = json_object_new_array();
        for (long k = i; k < i + per && k < n; k++) {
            char com[64];
            snprintf(com, sizeof com, "post %ld, crawl %ld", first + k, crawled_at);
            json_object *item = make_item("g", first + k, crawled_at, com);
            if (expect) {
                char id[64];
                snprintf(id, sizeof id, "g.%ld", first + k);
                json_object_object_add(expect, id, json_object_get(item));
            }
            json_object_array_add(items, item);
        }
        publish_json(key, items);
        json_object_put(items);
    }
}

/* Publish one item with id SENTINEL to KEY. */
static void publish_sentinel(const char *key, const char *sentinel) {
    char body[256];
    int n = snprintf(body, sizeof body, "[{\"_id\":\"%s\",\"_crawled_at\":1}]", sentinel);
    publish_text(key, body, (size_t)n);
}

/* --- looking at the archive --- */

static char *table_of(const char *site_type) { return xasprintf("%s_%s", t.exchange, site_type); }

/* Wait until TABLE holds at least WANT rows; its count. */
static long wait_rows(const char *table, long want) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    long n;
    while ((n = pgtest_count(table)) < want) {
        if (time_mono_ns() > deadline) {
            for (int i = 0; i < 2; i++)
                if (t.archiver[i].pid) proc_print_log(&t.archiver[i]);
            fail_msg("%s holds %ld rows, expected %ld", table, n, want);
        }
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
    return n;
}

/* Wait until the row ID is in TABLE. */
static void wait_id(const char *table, const char *id) {
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    for (;;) {
        if (pgtest_count(table) >= 0) {
            const char *values[] = {id};
            char *sql = xasprintf("SELECT count(*) FROM \"%s\" WHERE id = $1", table);
            PGresult *res = pgtest_query(sql, 1, values);
            long n = atol(PQgetvalue(res, 0, 0));
            PQclear(res);
            free(sql);
            if (n == 1) return;
        }
        if (time_mono_ns() > deadline) {
            if (t.archiver[0].pid) proc_print_log(&t.archiver[0]);
            fail_msg("%s never reached %s", id, table);
        }
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
}

/* Every item of EXPECT (id -> item) is a row of TABLE with the same JSON. */
static void assert_rows_equal(const char *table, json_object *expect) {
    char *sql = xasprintf("SELECT count(*) FROM \"%s\" WHERE id = $1 AND data = $2::jsonb", table);
    json_object_object_foreach(expect, id, item) {
        const char *values[] = {id, json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN)};
        PGresult *res = pgtest_query(sql, 2, values);
        if (atol(PQgetvalue(res, 0, 0)) != 1) fail_msg("row %s of %s is missing or differs from %s", id, table, values[1]);
        PQclear(res);
    }
    free(sql);
}

/* The reason header of every message in E.dead, in order (a JSON array of
 * [reason, body-prefix] pairs); the queue is emptied. */
static json_object *take_dead(long want) {
    mq *dead = mq_admin_connect(t.exchange, "test_archiver");
    assert_int_equal(mq_consume(dead, mq_target_name(dead, MQ_QUEUE_DEAD), 100), MQ_OK);
    json_object *out = json_object_new_array();
    for (long i = 0; i < want; i++) {
        mq_delivery d;
        int rc = mq_next(dead, &d, GUARD_MS);
        if (rc != MQ_OK) fail_msg("only %ld of %ld dead letters arrived", i, want);
        const char *why = mq_delivery_header(&d, "x-imgfeed-error");
        json_object *pair = json_object_new_array();
        json_object_array_add(pair, json_object_new_string(why ? why : "(no reason)"));
        json_object_array_add(pair, json_object_new_string_len(d.body, d.len > 40 ? 40 : (int)d.len));
        json_object_array_add(out, pair);
        assert_int_equal(mq_ack(dead, d.tag, false), MQ_OK);
        mq_delivery_release(&d);
    }
    mq_free(dead);
    return out;
}

static long queue_count(mq_target target) {
    mq_admin *a = mq_admin_open();
    long n = mq_admin_count(a, mq_target_name(t.q, target));
    mq_admin_close(a);
    return n;
}

/* --- setup --- */

static int setup(void **state) {
    static char letter = 'a';
    (void)state;
    memset(&t, 0, sizeof t);
    t.exchange = xasprintf("t%da%c", (int)getpid(), letter++);
    t.post_table = table_of("site_post");
    t.thread_table = table_of("site_thread");
    t.q = mq_admin_connect(t.exchange, "test_archiver");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    for (int i = 0; i < 2; i++)
        proc_release(&t.archiver[i]);
    mq_free(t.q);
    mq_admin_delete_topology(t.exchange, NULL);
    char *prefix = xasprintf("%s_", t.exchange);
    pgtest_drop_tables(prefix);
    free(prefix);
    free(t.post_table);
    free(t.thread_table);
    free(t.exchange);
    return 0;
}

/* --- the tests --- */

#define STORE_N 600

/* N items in, N rows out with the same JSON; the same items again change
 * nothing (not even a row version); newer copies replace rows, older ones
 * do not, in one batch or across batches. */
static void test_store_replay_newer(void **state) {
    (void)state;
    json_object *expect = json_object_new_object();
    publish_range("site.post.g", 0, STORE_N, 25, 100, expect);
    json_object *thread = json_object_new_array();
    json_object_array_add(thread, make_item("g", 999999, 100, "an opening post"));
    publish_json("site.thread.g", thread);
    json_object_put(thread);
    archiver_start(&t.archiver[0], with_metrics);
    int mport = scrape_port(&t.archiver[0]);
    assert_int_equal(wait_rows(t.post_table, STORE_N), STORE_N);
    wait_rows(t.thread_table, 1);
    assert_rows_equal(t.post_table, expect);
    expect_rows(mport, STORE_N + 1, STORE_N + 1, 0, 0);
    assert_int_equal(pgtest_long("SELECT count(*) FROM imgfeed_tables WHERE name IN ('%s', '%s')", t.post_table,
                                 t.thread_table),
                     2);

    /* Replay: still N rows, and not one row rewritten. */
    char *versions = xasprintf("SELECT sum(hashtext(xmin::text || ctid::text)) FROM \"%s\" WHERE id LIKE 'g.%%'", t.post_table);
    long before = pgtest_long("%s", versions);
    publish_range("site.post.g", 0, STORE_N, 25, 100, NULL);
    publish_range("site.post.g", 0, STORE_N, 50, 100, NULL);
    publish_sentinel("site.post.g", "sentinel-1");
    wait_id(t.post_table, "sentinel-1");
    assert_int_equal(pgtest_count(t.post_table), STORE_N + 1);
    assert_int_equal(pgtest_long("%s", versions), before);
    assert_rows_equal(t.post_table, expect);
    expect_rows(mport, 3 * STORE_N + 2, STORE_N + 2, 0, 2 * STORE_N); /* the replays changed nothing */

    /* Newer copies (crawl 200) of items 0..99 replace their rows; older
     * copies (crawl 50) of items 100..199 do not; and within one message,
     * the newest of three copies wins whatever the order. */
    json_object *newer = json_object_new_object();
    publish_range("site.post.g", 0, 100, 20, 200, newer);
    publish_range("site.post.g", 100, 100, 20, 50, NULL);
    json_object *mixed = json_object_new_array();
    json_object_array_add(mixed, make_item("g", 300, 300, "newest"));
    json_object_array_add(mixed, make_item("g", 300, 250, "older"));
    json_object_array_add(mixed, make_item("g", 300, 50, "oldest"));
    publish_json("site.post.g", mixed);
    json_object_put(mixed);
    publish_sentinel("site.post.g", "sentinel-2");
    wait_id(t.post_table, "sentinel-2");
    assert_rows_equal(t.post_table, newer);
    json_object_object_foreach(newer, id, item) {
        (void)item;
        json_object_object_add(expect, id, json_object_get(json_object_object_get(newer, id)));
    }
    json_object_object_del(expect, "g.300");
    assert_rows_equal(t.post_table, expect); /* 100..199 kept crawl 100 */
    assert_int_equal(pgtest_long("SELECT count(*) FROM \"%s\" WHERE id = 'g.300' AND data->>'com' = 'newest'",
                                 t.post_table),
                     1);
    assert_int_equal(pgtest_count(t.post_table), STORE_N + 2);
    /* 100 newer copies and the newest g.300 replaced their rows, sentinel-2 is new; the 100 older copies
     * and g.300's two older copies in its message changed nothing */
    expect_rows(mport, 3 * STORE_N + 2 + 204, STORE_N + 2 + 102, 101, 2 * STORE_N + 102);
    double batches = scrape_value(mport, "imgfeed_archiver_batch_rows_count");
    assert_true(batches >= 1);
    /* every item stored, a commit a batch */
    assert_true(scrape_value(mport, "imgfeed_archiver_batch_rows_sum") == 3 * STORE_N + 2 + 204);
    assert_true(scrape_value(mport, "imgfeed_archiver_commit_seconds_count") == batches);
    assert_true(scrape_value(mport, "imgfeed_archiver_rows_repaired_total") == 0);
    assert_true(scrape_value(mport, "imgfeed_database_reconnects_total") == 0);
    free(versions);
    proc_stop(&t.archiver[0]);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0);
    json_object_put(newer);
    json_object_put(expect);
}

/* Text jsonb refuses is mended and flagged; raw control characters are
 * escaped; nothing is lost. */
static void test_mended_text(void **state) {
    (void)state;
    static const char body[] =
        "[{\"_id\":\"nul\",\"com\":\"a\\u0000b\",\"k\\u0000ey\":1,\"_crawled_at\":1},"
        "{\"_id\":\"surrogate\",\"com\":\"x\\ud800y\\udc00z\\ud83d\\ude00\"},"
        "{\"_id\":\"bytes\",\"com\":\"caf\xc3\xa9 \xff\xfe end\"},"
        "{\"_id\":\"control\",\"com\":\"line\nbreak\ttab\"},"
        "{\"_id\":\"id\\u0000nul\"},"
        "{\"_id\":\"big\",\"n\":123456789012345678901234567890,\"f\":1.50,\"e\":-0}]";
    publish_text("site.post.g", body, sizeof body - 1);
    archiver_start(&t.archiver[0], with_metrics);
    wait_rows(t.post_table, 6);
    int mport = scrape_port(&t.archiver[0]);
    expect_rows(mport, 6, 6, 0, 0);
    scrape_expect(mport, "imgfeed_archiver_rows_repaired_total", 4); /* nul, surrogate, bytes, idnul */
    proc_stop(&t.archiver[0]);
    static const struct {
        const char *id, *sql;
    } checks[] = {
        {"nul", "data->>'com' = 'ab' AND data ? 'key' AND data->'_repaired' = '{\"nul\":2,\"utf8\":0}'"},
        {"surrogate", "data->>'com' = 'x\xef\xbf\xbdy\xef\xbf\xbdz\xf0\x9f\x98\x80' AND "
                      "data->'_repaired' = '{\"nul\":0,\"utf8\":2}'"},
        {"bytes", "data->>'com' = 'caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end' AND data->'_repaired' = "
                  "'{\"nul\":0,\"utf8\":2}'"},
        {"control", "data->>'com' = E'line\\nbreak\\ttab' AND NOT data ? '_repaired'"},
        {"idnul", "data->>'_id' = 'idnul' AND data->'_repaired' = '{\"nul\":1,\"utf8\":0}'"},
        {"big", "data->'n' = '123456789012345678901234567890'::jsonb AND data->>'f' = '1.50' AND NOT data ? "
                "'_repaired'"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        long n = pgtest_long("SELECT count(*) FROM \"%s\" WHERE id = '%s' AND %s", t.post_table, checks[i].id,
                             checks[i].sql);
        if (n != 1) fail_msg("row %s: %s does not hold", checks[i].id, checks[i].sql);
    }
}

/* Every number JSON allows reaches the archive, exponents too (json-c
 * itself prints some doubles so): published straight to E, and through the
 * hasher from E.raw.  jsonb keeps the value (numeric takes 1e400). */
static void test_exponent_numbers(void **state) {
    (void)state;
    static const char *const ids[] = {"e-direct", "e-hashed"};
    static const char *const fields = "\"a\":2.5e3,\"b\":1e400,\"c\":1.5e308,\"d\":1e-05,\"e\":-2E+3,\"f\":[1E5]";
    char *direct = xasprintf("[{\"_id\":\"%s\",%s}]", ids[0], fields);
    char *raw = xasprintf("[{\"_id\":\"%s\",%s}]", ids[1], fields);
    publish_text("site.post.g", direct, strlen(direct));
    mq_message m = {.routing_key = "site.post.g", .body = raw, .len = strlen(raw)};
    assert_int_equal(mq_publish(t.q, mq_target_name(t.q, MQ_EXCHANGE_RAW), &m, 1), MQ_OK);
    archiver_start(&t.archiver[0], NULL);
    proc_start_imgfeed(&t.archiver[1], "hasher/imgfeed-hasher", t.exchange, NULL); /* the second slot: a hasher */
    wait_rows(t.post_table, 2);
    proc_stop(&t.archiver[1]);
    proc_stop(&t.archiver[0]);
    for (size_t i = 0; i < 2; i++) {
        long n = pgtest_long("SELECT count(*) FROM \"%s\" WHERE id = '%s' AND data->'a' = '2500'::jsonb AND "
                             "data->'b' = '1e400'::jsonb AND data->'c' = '1.5e308'::jsonb AND "
                             "data->'d' = '0.00001'::jsonb AND data->'e' = '-2000'::jsonb AND "
                             "data->'f' = '[100000]'::jsonb",
                             t.post_table, ids[i]);
        if (n != 1) fail_msg("row %s does not hold the numbers as sent", ids[i]);
    }
    assert_int_equal(pgtest_long("SELECT count(*) FROM \"%s\" WHERE id = '%s' AND data ? '_img'", t.post_table, ids[1]),
                     1);
    assert_int_equal(queue_count(MQ_QUEUE_DEAD), 0);
    free(direct);
    free(raw);
}

/* Messages that can never be stored go to E.dead with their reason; the
 * good ones around them are stored, in the same batch. */
static void test_poison(void **state) {
    (void)state;
    static const struct {
        const char *key, *body, *reason;
    } poison[] = {
        {"site.post.g", "not json at all", "not JSON"},
        {"site.post.g", "{\"_id\":\"x\"}", "not a JSON array of items"},
        {"site.post.g", "[{\"_id\":\"ok\"},{\"no\":1}]", "item 1 has no string _id"},
        {"site.post.g", "[{\"_id\":\"x\",\"n\":Infinity}]", "not JSON: Infinity is not a JSON value"},
        {"nodots", "[{\"_id\":\"x\"}]", "routing key \"nodots\" is not <site>.<type>.<board>"},
        {"site.post.g", NULL, "item 0 is 20971"},
    };
    size_t n = sizeof poison / sizeof poison[0];
    /* A 20 MB item: over the default --max-item-bytes of 16 MiB. */
    size_t big_len = 20u * 1024 * 1024;
    char *big = xmalloc(big_len + 64);
    int head = snprintf(big, 64, "[{\"_id\":\"big\",\"com\":\"");
    memset(big + head, 'x', big_len);
    memcpy(big + head + big_len, "\"}]", 3);
    publish_range("site.post.g", 0, 10, 5, 100, NULL);
    for (size_t i = 0; i < n; i++) {
        if (poison[i].body)
            publish_text(poison[i].key, poison[i].body, strlen(poison[i].body));
        else
            publish_text(poison[i].key, big, (size_t)head + big_len + 3);
        publish_range("site.post.g", 10 + 10 * (long)i, 10, 5, 100, NULL);
    }
    free(big);
    static const char *const args[] = {"--flush-interval", "3s", "--metrics-listen", "127.0.0.1:0",
                                       NULL}; /* all in one batch */
    archiver_start(&t.archiver[0], args);
    json_object *dead = take_dead((long)n);
    wait_rows(t.post_table, 10 + 10 * (long)n);
    int mport = scrape_port(&t.archiver[0]);
    expect_rows(mport, 10 + 10 * (double)n, 10 + 10 * (double)n, 0, 0); /* a poison message brings no item */
    scrape_expect(mport, "imgfeed_dead_lettered_total{reason=\"unparsable\"}", (double)n);
    scrape_expect(mport, "imgfeed_dead_lettered_total{reason=\"database_refused\"}", 0);
    proc_stop(&t.archiver[0]);
    for (size_t i = 0; i < n; i++) {
        const char *why = json_object_get_string(json_object_array_get_idx(json_object_array_get_idx(dead, i), 0));
        if (strncmp(why, poison[i].reason, strlen(poison[i].reason)) != 0)
            fail_msg("message %zu dead-lettered as '%s', expected '%s'", i, why, poison[i].reason);
    }
    json_object_put(dead);
    assert_int_equal(pgtest_count(t.post_table), 10 + 10 * (long)n);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0);
    assert_int_equal(queue_count(MQ_QUEUE_DEAD), 0);
}

/* A message PostgreSQL itself refuses (a _board too long for its index)
 * goes to E.dead with PostgreSQL's reason; the rest of its batch is
 * stored. */
static void test_refused_by_postgres(void **state) {
    (void)state;
    publish_range("site.post.g", 0, 50, 10, 100, NULL);
    json_object *items = json_object_new_array();
    json_object *bad = make_item("g", 5000, 100, "huge board name");
    char *board = xmalloc(8001);
    uint32_t x = 2463534242u;
    for (int i = 0; i < 8000; i++) { /* random letters: no compression brings it under the index row limit */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        board[i] = (char)('a' + x % 26);
    }
    board[8000] = '\0';
    json_object_object_add(bad, "_board", json_object_new_string(board));
    free(board);
    json_object_array_add(items, make_item("g", 5001, 100, "fine, but in a refused message"));
    json_object_array_add(items, bad);
    publish_json("site.post.g", items);
    json_object_put(items);
    publish_range("site.post.g", 50, 50, 10, 100, NULL);
    static const char *const args[] = {"--flush-interval", "3s", "--metrics-listen", "127.0.0.1:0", NULL};
    archiver_start(&t.archiver[0], args);
    json_object *dead = take_dead(1);
    wait_rows(t.post_table, 100);
    int mport = scrape_port(&t.archiver[0]);
    expect_rows(mport, 102, 100, 0, 0); /* the refused message's two items are neither */
    scrape_expect(mport, "imgfeed_dead_lettered_total{reason=\"database_refused\"}", 1);
    proc_stop(&t.archiver[0]);
    const char *why = json_object_get_string(json_object_array_get_idx(json_object_array_get_idx(dead, 0), 0));
    if (!strstr(why, "PostgreSQL refused it") || !strstr(why, "54000"))
        fail_msg("dead-lettered as '%s', expected PostgreSQL's index row size error", why);
    json_object_put(dead);
    assert_int_equal(pgtest_count(t.post_table), 100);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0);
}

#define STREAM_N 5000

/* Publish most of STREAM_N items, start an archiver that writes batches of
 * 100, DISRUPT it once a fifth of the rows are in, publish the rest, and
 * check that every item ends up once, with its JSON, and the queue empty.
 * The items published after the disruption make sure the archiver has to
 * come back (reconnect, or be started again) whatever its speed; when
 * MUST_LOG is given, its log must show that line at least twice, and when
 * RECONNECTS is given, that counter of its metrics must have counted. */
static void survive(const char *what, void (*disrupt)(void), const char *must_log, const char *reconnects) {
    json_object *expect = json_object_new_object();
    long later = STREAM_N / 5;
    publish_range("site.post.g", 0, STREAM_N - later, 5, 100, expect);
    static const char *const args[] = {"--batch-size", "100", "--metrics-listen", "127.0.0.1:0", NULL};
    archiver_start(&t.archiver[0], args);
    long at = wait_rows(t.post_table, STREAM_N / 5);
    disrupt();
    fprintf(stderr, "%s at %ld of %d rows\n", what, at, STREAM_N);
    publish_range("site.post.g", STREAM_N - later, later, 5, 100, expect);
    if (!t.archiver[0].pid) archiver_start(&t.archiver[0], args);
    wait_rows(t.post_table, STREAM_N);
    if (reconnects) {
        double n = scrape_value(scrape_port(&t.archiver[0]), reconnects);
        fprintf(stderr, "%s: %s %g\n", what, reconnects, n);
        if (n < 1) fail_msg("%s: %s is %g", what, reconnects, n);
    }
    proc_stop(&t.archiver[0]);
    if (must_log && proc_log_count(&t.archiver[0], must_log) < 2) {
        proc_print_log(&t.archiver[0]);
        fail_msg("%s: the archiver's log never says \"%s\" again", what, must_log);
    }
    assert_int_equal(pgtest_count(t.post_table), STREAM_N);
    assert_rows_equal(t.post_table, expect);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0);
    json_object_put(expect);
}

static void kill_archiver(void) {
    proc_kill(&t.archiver[0]);
    proc_release(&t.archiver[0]);
}

/* kill -9 mid-stream, start again: every item once. */
static void test_kill9(void **state) {
    (void)state;
    survive("kill -9", kill_archiver, NULL, NULL);
}

#define TWO_N 3000

/* Two archivers on one queue, a new table for both at once, replays in
 * other orders: N rows, no error, both stop cleanly. */
static void test_two_archivers(void **state) {
    (void)state;
    static const char *const args[] = {"--batch-size",     "300",         "--prefetch", "100",
                                       "--metrics-listen", "127.0.0.1:0", NULL};
    archiver_start(&t.archiver[0], args);
    archiver_start(&t.archiver[1], args);
    json_object *expect = json_object_new_object();
    publish_range("site.post.g", 0, TWO_N, 30, 100, expect);
    /* The same items again, grouped otherwise, and backwards. */
    for (long i = TWO_N; i > 0; i -= 50)
        publish_range("site.post.g", i - 50 > 0 ? i - 50 : 0, i - 50 > 0 ? 50 : i, 17, 100, NULL);
    wait_rows(t.post_table, TWO_N);
    publish_sentinel("site.post.g", "sentinel-a");
    publish_sentinel("site.post.g", "sentinel-b");
    wait_id(t.post_table, "sentinel-a");
    wait_id(t.post_table, "sentinel-b");
    /* Between them, each row written once: racing for the same new _id, one inserts it and the other
     * finds it equal. */
    int ports[2] = {scrape_port(&t.archiver[0]), scrape_port(&t.archiver[1])};
    scrape_expect_sum(ports, 2, "imgfeed_items_received_total", 2 * TWO_N + 2);
    scrape_expect_sum(ports, 2, "imgfeed_archiver_rows_written_total", TWO_N + 2);
    scrape_expect_sum(ports, 2, "imgfeed_archiver_rows_unchanged_total", TWO_N);
    scrape_expect_sum(ports, 2, "imgfeed_archiver_rows_replaced_total", 0);
    proc_stop(&t.archiver[0]);
    proc_stop(&t.archiver[1]);
    assert_int_equal(pgtest_count(t.post_table), TWO_N + 2);
    assert_rows_equal(t.post_table, expect);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0);
    assert_int_equal(queue_count(MQ_QUEUE_DEAD), 0);
    json_object_put(expect);
}

/* A routing key built to inject SQL makes one harmless table. */
static void test_injection(void **state) {
    (void)state;
    char *victim = xasprintf("%s_y", t.exchange);
    pgtest_exec("CREATE TABLE \"%s\" (v int)", victim);
    pgtest_exec("INSERT INTO \"%s\" VALUES (42)", victim);
    long tables_before = pgtest_long("SELECT count(*) FROM pg_class WHERE relkind = 'r'");
    char *key = xasprintf("x\";drop table %s;--.post.g", victim);
    publish_text(key, "[{\"_id\":\"i1\"}]", 14);
    archiver_start(&t.archiver[0], NULL);
    char *harmless = xasprintf("%s_x__drop_table_%s____post", t.exchange, victim);
    for (char *p = harmless; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    wait_rows(harmless, 1);
    proc_stop(&t.archiver[0]);
    assert_int_equal(pgtest_count(victim), 1);
    assert_int_equal(pgtest_long("SELECT count(*) FROM pg_class WHERE relkind = 'r'"), tables_before + 1);
    assert_int_equal(pgtest_long("SELECT count(*) FROM imgfeed_tables WHERE name = '%s'", harmless), 1);
    free(harmless);
    free(key);
    free(victim);
}

/* SIGTERM with a batch held: it is committed and acked, exit 0.  A lone item
 * is written within the flush interval. */
static void test_sigterm_and_flush_interval(void **state) {
    (void)state;
    static const char *const hold[] = {"--flush-interval", "10m", "--flush-quiet", "0", "--batch-size", "100000", NULL};
    archiver_start(&t.archiver[0], hold);
    publish_range("site.post.g", 0, 500, 10, 100, NULL);
    /* Wait until the broker handed every message over (none ready). */
    int64_t deadline = time_mono_ns() + GUARD_MS * TIME_NS_PER_MS;
    while (queue_count(MQ_QUEUE_ARCHIVER) > 0) {
        if (time_mono_ns() > deadline) fail_msg("the archiver took nothing");
        time_sleep_ns(50 * TIME_NS_PER_MS);
    }
    assert_true(pgtest_count(t.post_table) <= 0); /* held, not written */
    proc_stop(&t.archiver[0]);
    assert_int_equal(pgtest_count(t.post_table), 500);
    assert_int_equal(queue_count(MQ_QUEUE_ARCHIVER), 0); /* acked: nothing came back */

    /* The default flush interval (1 s) writes a lone item without waiting for more. */
    archiver_start(&t.archiver[0], NULL);
    publish_range("site.post.g", 1000, 1, 1, 100, NULL);
    wait_rows(t.post_table, 501);
    proc_stop(&t.archiver[0]);
}

/* --flush-quiet: a batch is written as soon as no message came for that
 * long, long before --flush-interval; a stream with shorter gaps still goes
 * in one batch (one transaction: one xmin). */
static void test_flush_quiet(void **state) {
    (void)state;
    static const char *const quiet[] = {"--flush-interval", "10m", NULL}; /* default --flush-quiet */
    archiver_start(&t.archiver[0], quiet);
    publish_range("site.post.g", 0, 1, 1, 100, NULL);
    wait_rows(t.post_table, 1); /* within GUARD_MS, where the flush interval is 10 minutes */
    proc_stop(&t.archiver[0]);

    static const char *const stream[] = {"--flush-interval", "10m", "--flush-quiet", "2s", NULL};
    archiver_start(&t.archiver[0], stream);
    for (long i = 0; i < 40; i++) {
        publish_range("site.post.g", 100 + i, 1, 1, 100, NULL);
        time_sleep_ns(10 * TIME_NS_PER_MS);
    }
    wait_rows(t.post_table, 41);
    proc_stop(&t.archiver[0]);
    long transactions =
        pgtest_long("SELECT count(DISTINCT xmin::text) FROM \"%s\" WHERE id <> 'g.0'", t.post_table);
    if (transactions != 1) fail_msg("40 messages 10 ms apart went in %ld transactions, expected 1", transactions);
}

/* --init-db runs alone, twice at once, and installs the helpers. */
static void test_init_db(void **state) {
    (void)state;
    static const char *const args[] = {"--init-db", NULL};
    archiver_start(&t.archiver[0], args);
    archiver_start(&t.archiver[1], args);
    assert_int_equal(proc_wait(&t.archiver[0]), 0);
    assert_int_equal(proc_wait(&t.archiver[1]), 0);
    assert_int_equal(pgtest_long("SELECT imgfeed_hamming('A/w/A/A/A/G/e/A/E/A/A/A/', 'A/w/A/A/A/G/e/A/E/A/A/B/')"), 1);
    assert_int_equal(pgtest_long("SELECT imgfeed_hamming('Dw8PDw8PDw8=', 'Dw8PDw8PDw8=')"), 0);
    assert_int_equal(pgtest_long("SELECT imgfeed_hamming('Dw8PDw8PDw8=', 'A/w/A/A/A/G/e/A/E/A/A/B/')"), -1);
    assert_int_equal(pgtest_long("SELECT count(*) FROM imgfeed_images('{\"_urls\":[\"a\",\"b\"],\"_img\":"
                                 "[{\"url\":1,\"sha1\":\"s\"},{\"url\":0,\"error\":\"http 404\"}]}') "
                                 "WHERE (n = 1 AND url = 'b' AND sha1 = 's') OR (n = 0 AND error = 'http 404')"),
                     2);
}

/* --- restarts, run alone --- */

static void restart_postgres(void) { assert_int_equal(testenv_servers("pg-restart"), 0); }

static void stop_postgres_3s(void) {
    assert_int_equal(testenv_servers("pg-stop"), 0);
    sleep(3);
    assert_int_equal(testenv_servers("pg-start"), 0);
}

static void stop_broker_3s(void) {
    assert_int_equal(testenv_servers("rabbit-stop"), 0);
    sleep(3);
    assert_int_equal(testenv_servers("rabbit-start"), 0);
}

/* PostgreSQL restarted mid-stream: N rows, none twice, none lost. */
static void test_pg_restart(void **state) {
    (void)state;
    survive("PostgreSQL restart", restart_postgres, "connected to PostgreSQL", "imgfeed_database_reconnects_total");
}

/* PostgreSQL down for a few seconds mid-stream: the batch waits, N rows. */
static void test_pg_down(void **state) {
    (void)state;
    survive("PostgreSQL stop", stop_postgres_3s, "connected to PostgreSQL", "imgfeed_database_reconnects_total");
}

/* The broker stopped for a few seconds mid-stream: N rows. */
static void test_broker_stop(void **state) {
    (void)state;
    survive("broker stop", stop_broker_3s, "connected to amqp", "imgfeed_broker_reconnects_total");
}

static int done(void **state) {
    (void)state;
    pgtest_close();
    return 0;
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_replay_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mended_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponent_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_by_postgres, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_archivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_and_flush_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_quiet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_db, setup, teardown),
    };
    const struct CMUnitTest restart[] = {
        cmocka_unit_test_setup_teardown(test_pg_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_stop, setup, teardown),
    };
    if (argc > 1 && strcmp(argv[1], "restart") == 0) return cmocka_run_group_tests(restart, NULL, done);
    return cmocka_run_group_tests(tests, NULL, done);
}
