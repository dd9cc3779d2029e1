/* test_tablename.c -- routing keys to archive table names (design.md, "The
 * archive"): the board dropped, dots and every other byte outside [a-z0-9_]
 * made underscores, lower case, at most 63 bytes with long names kept apart
 * by a hash, and keys that name no table refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tablename.h"

static void test_names(void **state) {
    (void)state;
    static const struct {
        const char *exchange, *key, *table;
    } cases[] = {
        {"chan", "4chan.post.g", "chan_4chan_post"},
        {"chan", "lainchan.thread.tech", "chan_lainchan_thread"},
        {"chan", "nekos_best.image.neko", "chan_nekos_best_image"},
        {"chan", "site.post", "chan_site"},                  /* no board: the last segment still goes */
        {"chan", "a.b.c.d", "chan_a_b_c"},
        {"Chan", "Reddit.Image.EarthPorn", "chan_reddit_image"},
        {"chan", "x\";drop table y;--.post.g", "chan_x__drop_table_y____post"},
        {"chan", "caf\xc3\xa9.post.g", "chan_caf___post"},
        {"chan", "my-site.post.b", "chan_my_site_post"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[TABLENAME_MAX + 1], why[128];
        assert_true(tablename_from_key(cases[i].exchange, cases[i].key, out, why, sizeof why));
        assert_string_equal(out, cases[i].table);
    }
}

static void test_refused(void **state) {
    (void)state;
    static const char *const keys[] = {"nodots", "", ".post.g", "site..g"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char out[TABLENAME_MAX + 1], why[128];
        if (tablename_from_key("chan", keys[i], out, why, sizeof why)) fail_msg("'%s' gave table %s", keys[i], out);
        assert_non_null(strstr(why, "routing key"));
    }
}

/* Long names: 63 bytes, a stable hash at the end, two keys that differ only
 * past the cut get two tables. */
static void test_long(void **state) {
    (void)state;
    char key_a[2100], key_b[2100], a[TABLENAME_MAX + 1], b[TABLENAME_MAX + 1], again[TABLENAME_MAX + 1], why[128];
    for (size_t len = 54; len < 2060; len += 334) {
        memset(key_a, 's', len);
        memcpy(key_a + len, ".post.g", 8);
        memcpy(key_b, key_a, len + 8);
        key_b[len - 1] = 't'; /* differs only at the end of the site */
        assert_true(tablename_from_key("chan", key_a, a, why, sizeof why));
        assert_true(tablename_from_key("chan", key_b, b, why, sizeof why));
        assert_true(tablename_from_key("chan", key_a, again, why, sizeof why));
        assert_int_equal(strlen(a), TABLENAME_MAX);
        assert_string_equal(a, again);
        assert_string_not_equal(a, b);
        assert_int_equal(strncmp(a, "chan_sss", 8), 0);
        assert_int_equal(a[TABLENAME_MAX - 9], '_');
    }
    /* Exactly 63 bytes stays as it is. */
    char key[80];
    memset(key, 'k', 58 - 5);
    memcpy(key + 53, ".post.g", 8); /* "chan_" + 53 + "_post" = 63 */
    assert_true(tablename_from_key("chan", key, a, why, sizeof why));
    assert_int_equal(strlen(a), 63);
    assert_string_equal(a + 58, "_post");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
