/* test_seenset.c -- the bounded set of published ids (seenset.h).
 *
 * Adds, lookups and the forgetting of the oldest past max, checked against
 * a plain array model over many random ids (so backward-shift deletion is
 * exercised on long probe chains), and the JSON round trip with its errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "seenset.h"

static void test_basic(void **state) {
    (void)state;
    seenset *s = seenset_new(3);
    assert_false(seenset_has(s, "a"));
    seenset_add(s, "a");
    seenset_add(s, "b");
    seenset_add(s, "a");
    assert_int_equal(seenset_count(s), 2);
    seenset_add(s, "c");
    seenset_add(s, "d"); /* forgets a */
    assert_int_equal(seenset_count(s), 3);
    assert_false(seenset_has(s, "a"));
    assert_true(seenset_has(s, "b"));
    assert_true(seenset_has(s, "d"));
    json_object *a = seenset_to_json(s);
    assert_string_equal(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN), "[\"b\",\"c\",\"d\"]");
    seenset *t = seenset_new(2);
    char why[128];
    assert_int_equal(seenset_from_json(t, a, why, sizeof why), 0);
    assert_int_equal(seenset_count(t), 2);
    assert_false(seenset_has(t, "b"));
    assert_true(seenset_has(t, "c"));
    json_object_put(a);
    seenset_free(t);
    seenset_free(s);
    seenset_free(NULL);
}

static void test_bad_json(void **state) {
    (void)state;
    seenset *s = seenset_new(10);
    char why[128];
    json_object *o = json_tokener_parse("{\"a\":1}");
    assert_int_equal(seenset_from_json(s, o, why, sizeof why), -1);
    json_object_put(o);
    o = json_tokener_parse("[\"a\",2]");
    assert_int_equal(seenset_from_json(s, o, why, sizeof why), -1);
    assert_non_null(strstr(why, "1"));
    assert_true(seenset_count(s) <= 1);
    json_object_put(o);
    seenset_free(s);
}

/* Against a model: the last MAX distinct ids added, for bounds below,
 * at and past the ring's first size and its doublings. */
static void check_model(size_t MAX) {
    enum { N = 20000, SPACE = 400 };
    seenset *s = seenset_new(MAX);
    int model[300];
    size_t mcount = 0, mhead = 0;
    srand(7);
    for (int n = 0; n < N; n++) {
        int v = rand() % SPACE;
        char id[16];
        snprintf(id, sizeof id, "%d", v);
        bool in = false;
        for (size_t i = 0; i < mcount; i++)
            if (model[(mhead + i) % MAX] == v)
                in = true;
        assert_int_equal(seenset_has(s, id), in);
        seenset_add(s, id);
        if (!in) {
            if (mcount == MAX) {
                mhead = (mhead + 1) % MAX;
                mcount--;
            }
            model[(mhead + mcount) % MAX] = v;
            mcount++;
        }
        assert_int_equal(seenset_count(s), mcount);
    }
    for (int v = 0; v < SPACE; v++) {
        char id[16];
        snprintf(id, sizeof id, "%d", v);
        bool in = false;
        for (size_t i = 0; i < mcount; i++)
            if (model[(mhead + i) % MAX] == v)
                in = true;
        assert_int_equal(seenset_has(s, id), in);
    }
    /* the JSON is the model's order, oldest first */
    json_object *a = seenset_to_json(s);
    assert_int_equal(json_object_array_length(a), mcount);
    for (size_t i = 0; i < mcount; i++)
        assert_int_equal(atoi(json_object_get_string(json_object_array_get_idx(a, i))), model[(mhead + i) % MAX]);
    json_object_put(a);
    seenset_free(s);
}

static void test_model(void **state) {
    (void)state;
    static const size_t bounds[] = {1, 2, 15, 16, 17, 33, 97, 300};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++)
        check_model(bounds[i]);
}

static void test_large(void **state) {
    (void)state;
    seenset *s = seenset_new(100000);
    char id[32];
    for (int i = 0; i < 250000; i++) {
        snprintf(id, sizeof id, "img%06d.png", i);
        seenset_add(s, id);
    }
    assert_int_equal(seenset_count(s), 100000);
    assert_false(seenset_has(s, "img149999.png"));
    assert_true(seenset_has(s, "img150000.png"));
    assert_true(seenset_has(s, "img249999.png"));
    seenset_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
