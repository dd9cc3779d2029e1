/* test_topic.c -- binding keys checked and matched as RabbitMQ's topic
 * exchange matches them (common/topic.h): a table of patterns and keys
 * from RabbitMQ's own documentation and its edge cases, and a hostile
 * pattern that a backtracking matcher would take for ever on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "topic.h"

static void test_match(void **state) {
    (void)state;
    static const struct {
        const char *pattern, *key;
        bool match;
    } cases[] = {
        {"#", "4chan.post.g", true},
        {"#", "", true},
        {"4chan.*.g", "4chan.post.g", true},
        {"4chan.*.g", "4chan.thread.g", true},
        {"4chan.*.g", "4chan.post.v", false},
        {"4chan.*.g", "4chan.g", false},
        {"4chan.*.g", "4chan.a.b.g", false},
        {"4chan.#", "4chan", true},
        {"4chan.#", "4chan.post.g", true},
        {"4chan.#", "4chanx.post.g", false},
        {"#.g", "4chan.post.g", true},
        {"#.g", "g", true},
        {"#.g", "4chan.post.gg", false},
        {"reddit.submission.*", "reddit.submission.pics", true},
        {"reddit.submission.*", "reddit.submission", false},
        {"*", "a", true},
        {"*", "a.b", false},
        {"*.*", "a.b", true},
        {"a.#.b", "a.b", true},
        {"a.#.b", "a.x.y.b", true},
        {"a.#.b", "a.x.y.c", false},
        {"a.*.#", "a", false},
        {"a.*.#", "a.b", true},
        {"#.#", "a.b.c", true},
        {"a*.b", "ab.b", false},   /* '*' inside a word is a plain character */
        {"a*.b", "a*.b", true},
        {"quick.orange.rabbit", "quick.orange.rabbit", true},
        {"*.orange.*", "quick.orange.rabbit", true},
        {"*.*.rabbit", "lazy.orange.elephant", false},
        {"lazy.#", "lazy.orange.male.rabbit", true},
        {"*.orange.*", "quick.orange.male.rabbit", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (topic_match(cases[i].pattern, cases[i].key) != cases[i].match)
            fail_msg("%s vs %s: not %d", cases[i].pattern, cases[i].key, cases[i].match);
}

static void test_check(void **state) {
    (void)state;
    char why[200];
    static const char *const good[] = {"#", "4chan.*.g", "a-b_c.D9", "*"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(topic_check(good[i], why, sizeof why));
    static const char *const bad[] = {"", "a b", "a/b", "\xc3\xa9", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(topic_check(bad[i], why, sizeof why));
        assert_true(why[0] != '\0');
    }
    char longkey[300];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_false(topic_check(longkey, why, sizeof why));
    assert_non_null(strstr(why, "255"));
}

/* 127 '#' words against a key of 127 words: quadratic, not exponential
 * (ctest's timeout is the guard). */
static void test_hostile_pattern(void **state) {
    (void)state;
    char pattern[TOPIC_MAX + 1] = "", key[TOPIC_MAX + 1] = "";
    for (int i = 0; i < 127; i++) {
        strcat(pattern, i ? ".#" : "#");
        strcat(key, i ? ".a" : "a");
    }
    pattern[strlen(pattern) - 1] = 'z'; /* the last word cannot match: every path is tried */
    assert_false(topic_match(pattern, key)); /* a backtracking matcher would never come back */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_hostile_pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
