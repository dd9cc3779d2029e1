/* test_seenlog.c -- a board's published ids in a journal (seenlog.h).
 *
 * Pending ids count as seen until committed or dropped; what was committed
 * is there after a reopen, what was dropped is not; a last line cut by a
 * crash is forgotten and cut off the file so that later lines stay whole;
 * the journal is compacted past twice max and keeps the newest max; an
 * older state's "seen" array is imported; ids with any byte survive; a
 * journal that does not decode refuses to open, naming the file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "seenlog.h"
#include "testenv.h"
#include "xalloc.h"

static char *dir, *state, *journal;

static int setup(void **st) {
    (void)st;
    dir = testenv_tmpdir("test_seenlog");
    state = xasprintf("%s/board.json", dir);
    journal = xasprintf("%s.seen", state);
    return 0;
}

static int teardown(void **st) {
    (void)st;
    testenv_rmtree(dir);
    free(dir);
    free(state);
    free(journal);
    return 0;
}

static seenlog *open_ok(size_t max) {
    char why[256];
    seenlog *l = seenlog_open(state, max, why, sizeof why);
    if (!l) fail_msg("seenlog_open: %s", why);
    return l;
}

static void commit_ok(seenlog *l) {
    char why[256];
    if (seenlog_commit(l, why, sizeof why) != 0) fail_msg("seenlog_commit: %s", why);
}

static size_t file_lines(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void append_raw(const char *text) {
    FILE *f = fopen(journal, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_commit_drop_reopen(void **st) {
    (void)st;
    seenlog *l = open_ok(100);
    assert_false(seenlog_has(l, "a"));
    seenlog_pend(l, "a");
    seenlog_pend(l, "b");
    seenlog_pend(l, "a"); /* twice: once */
    assert_true(seenlog_has(l, "a"));
    assert_int_equal(seenlog_pending(l), 2);
    assert_int_equal(seenlog_count(l), 0);
    commit_ok(l);
    assert_int_equal(seenlog_pending(l), 0);
    assert_int_equal(seenlog_count(l), 2);
    seenlog_pend(l, "c");
    seenlog_drop(l);
    assert_false(seenlog_has(l, "c"));
    commit_ok(l); /* nothing pending: nothing written */
    seenlog_close(l);
    assert_int_equal(file_lines(journal), 2);

    l = open_ok(100);
    assert_true(seenlog_has(l, "a"));
    assert_true(seenlog_has(l, "b"));
    assert_false(seenlog_has(l, "c"));
    assert_int_equal(seenlog_count(l), 2);
    seenlog_close(l);
}

static void test_cut_last_line(void **st) {
    (void)st;
    seenlog *l = open_ok(100);
    seenlog_pend(l, "a");
    commit_ok(l);
    seenlog_close(l);
    append_raw("partial"); /* a crash in the middle of an append */
    l = open_ok(100);
    assert_false(seenlog_has(l, "partial"));
    seenlog_pend(l, "d");
    commit_ok(l);
    seenlog_close(l);
    l = open_ok(100);
    assert_true(seenlog_has(l, "a"));
    assert_true(seenlog_has(l, "d"));
    assert_false(seenlog_has(l, "partial"));
    assert_false(seenlog_has(l, "partiald"));
    assert_int_equal(seenlog_count(l), 2);
    seenlog_close(l);
    assert_int_equal(file_lines(journal), 2);
}

static void test_compaction(void **st) {
    (void)st;
    enum { MAX = 10, N = 95 };
    seenlog *l = open_ok(MAX);
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "id%d", i);
        seenlog_pend(l, id);
        if (i % 3 == 2) commit_ok(l);
        if (i % 3 == 2) assert_true(file_lines(journal) <= 2 * MAX);
    }
    commit_ok(l);
    seenlog_close(l);
    assert_true(file_lines(journal) <= 2 * MAX);
    l = open_ok(MAX);
    assert_int_equal(seenlog_count(l), MAX);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "id%d", i);
        assert_int_equal(seenlog_has(l, id), i >= N - MAX);
    }
    seenlog_close(l);
}

static void test_import_and_any_byte(void **st) {
    (void)st;
    static const char *const odd[] = {"a\nb", "50%", "sp ace", "\xce\xbb", "%0A", "x\r"};
    seenlog *l = open_ok(100);
    json_object *a = json_tokener_parse("[\"old1\", \"old2\"]");
    char why[256];
    assert_int_equal(seenlog_import(l, a, why, sizeof why), 0);
    json_object_put(a);
    commit_ok(l); /* the imported ids are written though nothing is pending */
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        seenlog_pend(l, odd[i]);
    commit_ok(l);
    seenlog_close(l);
    assert_int_equal(file_lines(journal), 2 + sizeof odd / sizeof odd[0]);
    l = open_ok(100);
    assert_true(seenlog_has(l, "old1"));
    assert_true(seenlog_has(l, "old2"));
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_true(seenlog_has(l, odd[i]));
    assert_false(seenlog_has(l, "a"));
    seenlog_close(l);

    a = json_tokener_parse("[\"ok\", 5]");
    l = open_ok(100);
    assert_int_equal(seenlog_import(l, a, why, sizeof why), -1);
    assert_non_null(strstr(why, "not a string"));
    json_object_put(a);
    seenlog_close(l);
}

static void test_bad_journal(void **st) {
    (void)st;
    append_raw("fine\n%zz\n");
    char why[256];
    assert_null(seenlog_open(state, 100, why, sizeof why));
    assert_non_null(strstr(why, journal));
    assert_non_null(strstr(why, "line 2"));
    remove(journal);
    append_raw("\n");
    assert_null(seenlog_open(state, 100, why, sizeof why));
    remove(journal);
    assert_int_equal(mkdir(journal, 0755), 0); /* not a file */
    assert_null(seenlog_open(state, 100, why, sizeof why));
    assert_non_null(strstr(why, journal));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_drop_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_and_any_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_journal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
