/* test_crawlstate.c -- a board's crawl state: kept sorted, saved atomically,
 * read back the same, and a damaged file refused rather than ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crawlstate.h"
#include "testenv.h"
#include "xalloc.h"

static char *dir;

static int make_dir(void **state) {
    (void)state;
    dir = testenv_tmpdir("crawlstate-test");
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    int rc = testenv_rmtree(dir);
    free(dir);
    return rc;
}

static void test_roundtrip(void **state) {
    (void)state;
    crawlstate_board b;
    char why[256];
    assert_int_equal(crawlstate_load(&b, dir, "site", "\xce\xbb", why, sizeof why), 0);
    assert_int_equal(b.n, 0); /* never crawled */
    assert_non_null(strstr(b.path, "/site/%CE%BB.json"));
    int64_t nos[] = {30, 10, 20, 5, 9007199254740993};
    for (size_t i = 0; i < 5; i++) {
        crawlstate_thread *t = crawlstate_get(&b, nos[i]);
        t->last_modified = 1000 + (int64_t)i;
        t->last_post = nos[i] + 7;
        snprintf(t->http_lm, sizeof t->http_lm, "Sat, 02 May 2014 14:33:3%zu GMT", i);
    }
    crawlstate_get(&b, 20)->gone = true;
    assert_int_equal(b.n, 5);
    for (size_t i = 1; i < b.n; i++)
        assert_true(b.threads[i - 1].no < b.threads[i].no);
    snprintf(b.threads_lm, sizeof b.threads_lm, "Fri, 01 May 2014 00:00:00 GMT");
    assert_int_equal(crawlstate_save(&b, why, sizeof why), 0);
    char *tmp = xasprintf("%s.tmp", b.path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed away */
    free(tmp);

    crawlstate_board c;
    assert_int_equal(crawlstate_load(&c, dir, "site", "\xce\xbb", why, sizeof why), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.threads_lm, b.threads_lm);
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(c.threads[i].no, b.threads[i].no);
        assert_int_equal(c.threads[i].last_modified, b.threads[i].last_modified);
        assert_int_equal(c.threads[i].last_post, b.threads[i].last_post);
        assert_string_equal(c.threads[i].http_lm, b.threads[i].http_lm);
        assert_int_equal(c.threads[i].gone, b.threads[i].gone);
    }
    assert_int_equal(crawlstate_find(&c, 9007199254740993)->last_post, 9007199254741000);
    /* Threads no longer listed are forgotten. */
    int64_t listed[] = {20, 5, 999};
    crawlstate_retain(&c, listed, 3);
    assert_int_equal(c.n, 2);
    assert_non_null(crawlstate_find(&c, 5));
    assert_non_null(crawlstate_find(&c, 20));
    assert_null(crawlstate_find(&c, 30));
    crawlstate_retain(&c, NULL, 0);
    assert_int_equal(c.n, 0);
    crawlstate_release(&b);
    crawlstate_release(&c);
}

static void test_damaged(void **state) {
    (void)state;
    static const char *const texts[] = {"{\"v\":1,\"threads\":[[1,2,3]]}", "{\"v\":2,\"threads\":[]}", "{\"v\":1,\"thr",
                                        "[]"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *path = xasprintf("%s/damaged/b%zu.json", dir, i);
        crawlstate_board b;
        char why[256];
        assert_int_equal(crawlstate_load(&b, dir, "damaged", "x", why, sizeof why), 0); /* makes the directory */
        crawlstate_release(&b);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(texts[i], f);
        fclose(f);
        char board[8];
        snprintf(board, sizeof board, "b%zu", i);
        if (crawlstate_load(&b, dir, "damaged", board, why, sizeof why) == 0) fail_msg("damaged file %zu read", i);
        assert_non_null(strstr(why, path));
        crawlstate_release(&b);
        free(path);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
