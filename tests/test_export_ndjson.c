/* test_export_ndjson.c -- `imgfeed-export ndjson` against the real PostgreSQL.
 *
 * An archive made with SQL the archiver's way (imgfeed_ensure_table, rows
 * id/archived_on/data) under a fresh exchange: several tables and days,
 * unicode, control characters, U+2028, quotes and backslashes, rows without
 * `_img`, `_img` entries with errors and with the colour fields, items of
 * 320 KB, days cut at UTC midnight to the microsecond, an integer beyond
 * 64 bits, a registered table that is gone and one whose name is not the
 * archiver's.  Then the program, as a child process:
 *
 *   - the export read back by tests/export/read_ndjson.py, with pandas and
 *     line by line, equals the SQL rows (every row once, equal as JSON,
 *     under its table and day);
 *   - a rerun writes nothing; a grown archive (new day, a day gaining a
 *     row, a row moved to another day by an upsert, a row changed in place,
 *     a day emptied) rewrites exactly the days that changed, removes the
 *     empty one, and leaves the others' files alone;
 *   - kill -9 in the middle, then a rerun: the days done before are kept,
 *     nothing half-written is visible, the result equals SQL;
 *   - SIGTERM: exit 3, nothing half-written; a second export of the same
 *     DIR at once is refused; PostgreSQL unreachable: exit 1; a bad DIR: 2;
 *   - disk full (tests/export/disk_full.sh: a 600 KiB tmpfs in a private
 *     mount namespace, else RLIMIT_FSIZE): exit 4 with the reason, no half
 *     file, and a rerun with room finishes and equals SQL.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <json-c/json.h>

#include "pgtest.h"
#include "proc.h"
#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

static char exchange[32];
static char *work;     /* temporary folder of the test */
static char *expected; /* work/expected.tsv */
static proc exp_proc;

static char *tbl(const char *suffix) {
    static char names[8][96];
    static int next;
    char *n = names[next++ % 8];
    snprintf(n, 96, "%s_%s", exchange, suffix);
    return n;
}

/* --- the archive --- */

static void make_archive(void) {
    static const char *const kinds[][2] = {{"4chan_post", "4chan.post"},
                                           {"nekos_best_image", "nekos_best.image"},
                                           {"reddit_submission", "reddit.submission"},
                                           {"bignum_item", "bignum.item"}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', '%s')", tbl(kinds[i][0]), exchange, kinds[i][1]);
    /* 240 posts over three days: every odd thing the archiver stores */
    pgtest_exec(
        "INSERT INTO %s (id, archived_on, data) SELECT d->>'_id', t, d FROM ("
        " SELECT timestamptz '2026-11-01 00:00:00.123456+00' + g * interval '17 minutes 3.5 seconds' AS t,"
        "  jsonb_build_object('_id', '4chan.a.' || g, '_board', 'a', 'no', g, 'time', 1700000000 + g,"
        "   '_crawled_at', 1700000100.25 + g,"
        "   'com', CASE g %% 5 WHEN 0 THEN 'plain'"
        "     WHEN 1 THEN E'quote \" backslash \\\\ slash / newline \\n tab \\t bell \\u0007 esc \\u001b'"
        "     WHEN 2 THEN 'ünïcödé ☃ 日本語 😀 עברית ' || chr(8232) || chr(8233) || chr(65279)"
        "     WHEN 3 THEN '' ELSE repeat('long text ', 1000) END,"
        "   'sub', CASE WHEN g %% 7 = 0 THEN NULL ELSE 'sub ' || g END,"
        "   '_urls', CASE WHEN g %% 4 = 0 THEN '[]'::jsonb"
        "     ELSE jsonb_build_array('https://i.4cdn.org/a/' || g || '.jpg') END)"
        "  || CASE WHEN g %% 4 = 0 THEN '{}'::jsonb"
        "     WHEN g %% 4 = 1 THEN jsonb_build_object('_img', jsonb_build_array("
        "       jsonb_build_object('url', 0, 'error', 'HTTP 404')))"
        "     ELSE jsonb_build_object('_img', jsonb_build_array(jsonb_build_object('url', 0, 'size', 12345 + g,"
        "       'width', 640, 'height', 480, 'format', 'jpeg', 'sha1', md5(g::text) || 'abcd1234',"
        "       'phash', 'AAAAAAAAAAAAAAAAAAAA', 'rgb_mean', jsonb_build_array(127.254, 3.5, 0.000),"
        "       'brightness', 99.125, 'rgb_hist', (SELECT jsonb_agg(x * g) FROM generate_series(1, 24) x)))) END"
        "  || CASE WHEN g %% 9 = 0 THEN '{\"_repaired\": {\"nul\": 1, \"utf8\": 2},"
        "       \"weird key \\\" \\\\ /\": [true, false, null, -1.5e-7, 1.5e15, 0.1]}'::jsonb ELSE '{}' END AS d"
        " FROM generate_series(1, 240) g) s",
        tbl("4chan_post"));
    /* big items: 320 KB of hex each, two days */
    pgtest_exec("INSERT INTO %s (id, archived_on, data) SELECT 'nekos.' || g,"
                " timestamptz '2026-11-02 20:00:00+00' + g * interval '3 hours',"
                " jsonb_build_object('_id', 'nekos.' || g, 'category', 'neko', '_urls', jsonb_build_array('u'),"
                "  'blob', (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 10000) i))"
                " FROM generate_series(1, 6) g",
                tbl("nekos_best_image"));
    /* days cut at UTC midnight, whatever the server's time zone */
    pgtest_exec("INSERT INTO %s (id, archived_on, data) VALUES"
                " ('r1', '2020-02-29 23:59:59.999999+00', '{\"_id\": \"r1\", \"title\": \"leap\"}'),"
                " ('r2', '2020-03-01 00:00:00+00', '{\"_id\": \"r2\", \"title\": \"next\"}'),"
                " ('r3', '2026-11-02 23:30:00-05', '{\"_id\": \"r3\", \"title\": \"new york\"}')",
                tbl("reddit_submission"));
    /* integers pandas' parser refuses (more than 64 bits); jsonb prints 1e300
     * as 1 and 300 zeros */
    pgtest_exec("INSERT INTO %s (id, archived_on, data) VALUES ('b1', '2026-11-01 12:00+00',"
                " '{\"_id\": \"b1\", \"n\": 123456789012345678901234567890, \"f\": 1.0000000000000000000001,"
                " \"e\": 1e300}')",
                tbl("bignum_item"));
    /* registered but gone, and a name the archiver never makes */
    pgtest_exec("INSERT INTO imgfeed_tables (name, exchange, key_prefix) VALUES ('%s', '%s', 'gone.item')",
                tbl("gone_item"), exchange);
    pgtest_exec("CREATE TABLE \"%s_Evil/../x\" (id text PRIMARY KEY, archived_on timestamptz NOT NULL DEFAULT now(),"
                " data jsonb NOT NULL)",
                exchange);
    pgtest_exec("INSERT INTO \"%s_Evil/../x\" (id, data) VALUES ('e1', '{\"_id\": \"e1\"}')", exchange);
    pgtest_exec("INSERT INTO imgfeed_tables (name, exchange, key_prefix) VALUES ('%s_Evil/../x', '%s', 'evil.x')",
                exchange, exchange);
}

/* The rows of every exportable table as read_ndjson.py wants them. */
static long dump_expected(const char *only) {
    FILE *f = fopen(expected, "w");
    assert_non_null(f);
    const char *params[1] = {exchange};
    PGresult *t = pgtest_query("SELECT name FROM imgfeed_tables WHERE exchange = $1"
                               " AND to_regclass(quote_ident(name)) IS NOT NULL AND name ~ '^[a-z0-9_]+$' ORDER BY 1",
                               1, params);
    long n = 0;
    for (int i = 0; i < PQntuples(t); i++) {
        const char *name = PQgetvalue(t, i, 0);
        if (only && strcmp(only, name) != 0) continue;
        char *sql =
            xasprintf("SELECT to_char(archived_on AT TIME ZONE 'UTC', 'YYYY-MM-DD'), data::text FROM \"%s\"", name);
        PGresult *r = pgtest_query(sql, 0, NULL);
        free(sql);
        for (int j = 0; j < PQntuples(r); j++, n++)
            fprintf(f, "%s\t%s\t%s\n", name, PQgetvalue(r, j, 0), PQgetvalue(r, j, 1));
        PQclear(r);
    }
    PQclear(t);
    assert_int_equal(fclose(f), 0);
    return n;
}

/* --- running things --- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return xstrdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = xmalloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static void start_export(proc *p, const char *out, const char *const *extra) {
    const char *argv[24] = {"imgfeed-export", "ndjson", "--pg",  testenv_require("IMGFEED_PG"),
                            "--exchange",     exchange, "--out", out};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    char *bin = xasprintf("%s/export/imgfeed-export", testenv_binary_dir());
    proc_start(p, bin, argv);
    free(bin);
}

/* The stats line of a finished export's log. */
static json_object *export_stats(const proc *p) {
    char *log = slurp(p->log);
    char *line = strstr(log, "{\"status\":");
    json_object *o = line ? json_tokener_parse(line) : NULL;
    free(log);
    return o;
}

static int64_t stat_of(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) fail_msg("no %s in the stats", key);
    return json_object_get_int64(v);
}

/* Run an export to the end; its exit status must be WANT; the stats. */
static json_object *run_export(const char *out, int want, const char *const *extra) {
    start_export(&exp_proc, out, extra);
    int st = proc_wait(&exp_proc);
    if (st != want) {
        proc_print_log(&exp_proc);
        fail_msg("imgfeed-export exited %d, expected %d", st, want);
    }
    json_object *o = export_stats(&exp_proc);
    if (!o) {
        proc_print_log(&exp_proc);
        fail_msg("imgfeed-export printed no stats");
    }
    return o;
}

/* read_ndjson.py over OUT; its summary (fails the test when it fails). */
static json_object *read_back(const char *out, bool partial) {
    char *res = xasprintf("%s/read.out", work);
    char *cmd = xasprintf("/usr/bin/python3 %s/tests/export/read_ndjson.py '%s' '%s' %s >'%s' 2>&1",
                          testenv_source_dir(), out, expected, partial ? "--partial" : "", res);
    int st = system(cmd);
    char *text = slurp(res);
    if (st != 0) fail_msg("read_ndjson.py failed (%d):\n%s", st, text);
    json_object *o = json_tokener_parse(text);
    if (!o) fail_msg("read_ndjson.py said: %s", text);
    free(text);
    free(cmd);
    free(res);
    return o;
}

static int count_parts(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "part-", 5) == 0;
    closedir(d);
    return n;
}

/* --- tests --- */

static int group_setup(void **state) {
    (void)state;
    snprintf(exchange, sizeof exchange, "ndj%x", (unsigned)getpid());
    work = testenv_tmpdir("test_export_ndjson");
    expected = xasprintf("%s/expected.tsv", work);
    /* the SQL helpers, as the archiver installs them (under its lock) */
    proc p = {0};
    const char *const args[] = {"--init-db", "--pg", testenv_require("IMGFEED_PG"), NULL};
    proc_start_imgfeed(&p, "archiver/imgfeed-archiver", exchange, args);
    assert_int_equal(proc_wait(&p), 0);
    proc_release(&p);
    make_archive();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    proc_kill_all();
    pgtest_exec("DROP TABLE IF EXISTS \"%s_Evil/../x\"", exchange);
    pgtest_exec("DELETE FROM imgfeed_tables WHERE exchange = '%s'", exchange);
    pgtest_drop_tables(exchange);
    pgtest_close();
    testenv_rmtree(work);
    free(work);
    free(expected);
    proc_release(&exp_proc);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    proc_kill_all();
    return 0;
}

static char *out1;

static void test_export_equals_sql(void **state) {
    (void)state;
    long rows = dump_expected(NULL);
    out1 = xasprintf("%s/out1", work);
    static const char *const extra[] = {"--part-bytes", "64k", NULL};
    json_object *st = run_export(out1, 0, extra);
    assert_int_equal(stat_of(st, "rows"), rows);
    assert_int_equal(stat_of(st, "tables"), 4);
    assert_int_equal(stat_of(st, "days_written"), 3 + 2 + 3 + 1);
    json_object_put(st);
    assert_int_equal(proc_log_count(&exp_proc, "skipped: its name is not one the archiver makes"), 1);
    json_object *r = read_back(out1, false);
    assert_int_equal(stat_of(r, "rows"), rows);
    assert_int_equal(stat_of(r, "tables"), 4);
    json_object *refused;
    assert_true(json_object_object_get_ex(r, "pandas_refused", &refused));
    assert_int_equal(json_object_array_length(refused), 1); /* the integer beyond 64 bits, and only it */
    assert_non_null(strstr(json_object_get_string(json_object_array_get_idx(refused, 0)), "bignum_item"));
    json_object_put(r);
    /* 320 KB items past --part-bytes 64k: a day of several parts */
    char *big = xasprintf("%s/%s/date=2026-11-03", out1, tbl("nekos_best_image"));
    assert_true(count_parts(big) >= 2);
    free(big);
    /* the day of a row at 23:30 in New York is the next day in UTC */
    char *ny = xasprintf("%s/%s/date=2026-11-03", out1, tbl("reddit_submission"));
    assert_int_equal(count_parts(ny), 1);
    free(ny);
    /* nothing of the table with the odd name escaped anywhere */
    char *evil = xasprintf("%s/x", work);
    struct stat sb;
    assert_int_not_equal(stat(evil, &sb), 0);
    free(evil);
}

static void test_rerun_and_grow(void **state) {
    (void)state;
    static const char *const extra[] = {"--part-bytes", "64k", NULL};
    json_object *st = run_export(out1, 0, extra);
    assert_int_equal(stat_of(st, "days_written"), 0);
    assert_int_equal(stat_of(st, "rows"), 0);
    assert_int_equal(stat_of(st, "days_kept"), 9);
    json_object_put(st);
    /* a part of a day that stays as it is */
    char *kept = xasprintf("%s/%s/date=2026-11-02/part-00000.ndjson.zst", out1, tbl("nekos_best_image"));
    struct stat before, after;
    assert_int_equal(stat(kept, &before), 0);
    const char *posts = tbl("4chan_post");
    /* a new day; a day gaining a row; a row moved from 11-01 to the new day
     * (the archiver's upsert sets archived_on); a row of 11-03 changed in
     * place; reddit's 2020-02-29 emptied */
    pgtest_exec("INSERT INTO %s (id, archived_on, data) SELECT 'n' || g, timestamptz '2026-11-20 08:00+00' + g * "
                "interval '1 minute', jsonb_build_object('_id', 'n' || g, 'new', true) FROM generate_series(1, 10) g",
                posts);
    pgtest_exec("INSERT INTO %s (id, archived_on, data) VALUES ('late', '2026-11-02 12:00+00',"
                " '{\"_id\": \"late\", \"com\": \"late arrival\"}')",
                posts);
    pgtest_exec("UPDATE %s SET data = data || '{\"com\": \"edited\"}', archived_on = '2026-11-20 09:00+00'"
                " WHERE id = '4chan.a.3'",
                posts);
    pgtest_exec("UPDATE %s SET data = data || '{\"sub\": \"fixed by hand\"}' WHERE id = '4chan.a.200'", posts);
    assert_int_equal(pgtest_long("SELECT count(*) FROM %s WHERE id = '4chan.a.200'"
                                 " AND to_char(archived_on AT TIME ZONE 'UTC', 'YYYY-MM-DD') = '2026-11-03'",
                                 posts),
                     1);
    pgtest_exec("DELETE FROM %s WHERE id = 'r1'", tbl("reddit_submission"));
    long rows = dump_expected(NULL);
    st = run_export(out1, 0, extra);
    assert_int_equal(stat_of(st, "days_written"), 4); /* 11-01, 11-02, 11-03, 11-20 of the posts */
    assert_int_equal(stat_of(st, "days_removed"), 1);
    assert_int_equal(stat_of(st, "days_kept"), 5);
    assert_int_equal(stat_of(st, "rows"),
                     pgtest_long("SELECT count(*) FROM %s WHERE archived_on >= '2026-11-01' AND archived_on < "
                                 "'2026-11-04' OR archived_on >= '2026-11-20'",
                                 posts));
    json_object_put(st);
    json_object *r = read_back(out1, false);
    assert_int_equal(stat_of(r, "rows"), rows);
    json_object_put(r);
    assert_int_equal(stat(kept, &after), 0);
    assert_true(before.st_ino == after.st_ino && before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
                before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    free(kept);
    char *gone = xasprintf("%s/%s/date=2020-02-29", out1, tbl("reddit_submission"));
    assert_int_not_equal(stat(gone, &after), 0);
    free(gone);
}

/* A table big enough that --level 19 takes seconds. */
static void make_bulk(void) {
    pgtest_exec("SELECT imgfeed_ensure_table('%s', '%s', 'bulk.post')", tbl("bulk_post"), exchange);
    pgtest_exec(
        "INSERT INTO %s (id, archived_on, data) SELECT 'bulk.' || g,"
        " timestamptz '2026-10-01 00:00+00' + (g %% 8) * interval '1 day' + g * interval '1 second',"
        " jsonb_build_object('_id', 'bulk.' || g, '_board', 'b', 'no', g,"
        "  'com', md5(g::text) || ' ' || repeat(md5((g * 7)::text), 20), '_img', jsonb_build_array("
        "  jsonb_build_object('url', 0, 'sha1', md5((g * 3)::text), 'rgb_mean', jsonb_build_array(g %% 256, 1.5,"
        " 2.25))))"
        " FROM generate_series(1, 16000) g",
        tbl("bulk_post"));
}

static void test_kill9_resume(void **state) {
    (void)state;
    make_bulk();
    const char *bulk = tbl("bulk_post");
    long rows = dump_expected(bulk);
    char *out = xasprintf("%s/out_kill", work);
    const char *const slow[] = {"--tables", bulk, "--level", "19", "--part-bytes", "16k", NULL};
    start_export(&exp_proc, out, slow);
    proc_wait_log(&exp_proc, "wrote "); /* the first day is in place */
    proc_kill(&exp_proc);
    json_object *none = export_stats(&exp_proc);
    if (none) fail_msg("the export ended before the kill: make the bulk table bigger");
    /* what is visible is whole and right, though not all there */
    json_object *r = read_back(out, true);
    int64_t days_before = stat_of(r, "days");
    assert_true(days_before >= 1 && days_before < 8);
    json_object_put(r);
    const char *const fast[] = {"--tables", bulk, "--level", "1", "--part-bytes", "16k", NULL};
    json_object *st = run_export(out, 0, fast);
    assert_int_equal(stat_of(st, "days_kept"), days_before);
    assert_int_equal(stat_of(st, "days_written"), 8 - days_before);
    json_object_put(st);
    r = read_back(out, false);
    assert_int_equal(stat_of(r, "rows"), rows);
    assert_int_equal(stat_of(r, "days"), 8);
    json_object_put(r);
    free(out);
}

static void test_sigterm_lock_and_errors(void **state) {
    (void)state;
    const char *bulk = tbl("bulk_post");
    dump_expected(bulk);
    char *out = xasprintf("%s/out_term", work);
    const char *const slow[] = {"--tables", bulk, "--level", "19", "--part-bytes", "16k", NULL};
    start_export(&exp_proc, out, slow);
    proc_wait_log(&exp_proc, "table ");
    /* a second export of the same DIR at once is refused */
    proc other = {0};
    start_export(&other, out, slow);
    assert_int_equal(proc_wait(&other), 2);
    assert_int_equal(proc_log_count(&other, "is being written by another imgfeed-export"), 1);
    proc_release(&other);
    proc_wait_log(&exp_proc, "wrote ");
    kill(exp_proc.pid, SIGTERM);
    int64_t t0 = time_mono_ns();
    assert_int_equal(proc_wait(&exp_proc), 3);
    assert_true(time_mono_ns() - t0 < 5 * TIME_NS_PER_S);
    assert_int_equal(proc_log_count(&exp_proc, "stopped by a signal"), 1);
    json_object *r = read_back(out, true); /* right though partial, and no hidden leftover either: */
    assert_true(stat_of(r, "days") >= 1);
    json_object_put(r);
    char *cmd = xasprintf("test -z \"$(find '%s' -name '.*' ! -name .imgfeed-export.lock)\"", out);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* PostgreSQL unreachable: 1; a DIR that is a file: 2 */
    char *conn = xasprintf("host=127.0.0.1 port=%d connect_timeout=3", testenv_free_port());
    const char *argv[] = {"imgfeed-export", "ndjson", "--pg", conn, "--out", out, NULL};
    char *bin = xasprintf("%s/export/imgfeed-export", testenv_binary_dir());
    proc_start(&exp_proc, bin, argv);
    assert_int_equal(proc_wait(&exp_proc), 1);
    assert_int_equal(proc_log_count(&exp_proc, "cannot connect to PostgreSQL"), 1);
    char *file = xasprintf("%s/expected.tsv", work);
    const char *argv2[] = {"imgfeed-export", "ndjson", "--pg", conn, "--out", file, NULL};
    proc_start(&exp_proc, bin, argv2);
    assert_int_equal(proc_wait(&exp_proc), 2);
    assert_int_equal(proc_log_count(&exp_proc, "Not a directory"), 1);
    free(file);
    free(bin);
    free(conn);
    free(out);
}

static void test_disk_full(void **state) {
    (void)state;
    dump_expected(NULL);
    /* without the bulk table: its rows are not in the small file system's budget */
    char *out = xasprintf("%s/out_full", work);
    char *res = xasprintf("%s/disk_full.out", work);
    char *cmd = xasprintf("bash %s/tests/export/disk_full.sh '%s/export/imgfeed-export' '%s' '%s' '%s' '%s' '%s'"
                          " >'%s' 2>&1",
                          testenv_source_dir(), testenv_binary_dir(), testenv_require("IMGFEED_PG"), exchange, out,
                          expected, tbl("bulk_post"), res);
    int st = system(cmd);
    char *text = slurp(res);
    printf("%s", text);
    if (st != 0) fail_msg("disk_full.sh failed (%d)", st);
    assert_non_null(strstr(text, "ok - disk full"));
    free(text);
    free(cmd);
    free(res);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_export_equals_sql, teardown),
        cmocka_unit_test_teardown(test_rerun_and_grow, teardown),
        cmocka_unit_test_teardown(test_kill9_resume, teardown),
        cmocka_unit_test_teardown(test_sigterm_lock_and_errors, teardown),
        cmocka_unit_test_teardown(test_disk_full, teardown),
    };
    int r = cmocka_run_group_tests(tests, group_setup, group_teardown);
    free(out1);
    return r;
}
