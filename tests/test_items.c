/* test_items.c -- the check of a message body and its cutting into item
 * texts (common/items.h), case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "items.h"

static void test_parse(void **state) {
    (void)state;
    static const struct {
        const char *body, *why; /* why NULL: accepted */
    } cases[] = {
        {"[]", NULL},
        {" [{\"_id\":\"a\"},{\"_id\":\"b\",\"n\":1}]\n", NULL},
        {"", "not JSON: unexpected end of the text"},
        {"[{\"_id\":\"a\"}", "not JSON: unexpected end of the text"},
        {"[{\"_id\":\"a\"}] x", "not JSON: unexpected character"}, /* json-c sees the x */
        {"[{\"_id\":\"a\"}][]", "not JSON: unexpected character"},
        {"{\"_id\":\"a\"}", "not a JSON array of items"},
        {"[{\"_id\":\"a\"},1]", "item 1 is not an object"},
        {"[{\"id\":\"a\"}]", "item 0 has no string _id"},
        {"[{\"_id\":7}]", "item 0 has no string _id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[128] = "";
        json_object *items = items_parse(cases[i].body, strlen(cases[i].body), why, sizeof why);
        if (!cases[i].why) {
            if (!items) fail_msg("%s: refused: %s", cases[i].body, why);
        } else {
            if (items) fail_msg("%s: accepted", cases[i].body);
            assert_string_equal(why, cases[i].why);
        }
        json_object_put(items);
    }
    /* json-c stops at a NUL byte; what follows it is still refused. */
    char why[128] = "";
    assert_null(items_parse("[] \0x", 5, why, sizeof why));
    assert_string_equal(why, "not JSON: text after the value at byte 3");
}

static void test_split(void **state) {
    (void)state;
    static const char body[] = " [ {\"_id\":\"a\",\"s\":\"}],{[\\\"\"} ,\n{\"_id\":\"b\",\"x\":[{},[]]}]\n";
    items_span spans[4];
    assert_int_equal(items_split(body, sizeof body - 1, spans, 4), 2);
    assert_int_equal(spans[0].len, strlen("{\"_id\":\"a\",\"s\":\"}],{[\\\"\"}"));
    assert_memory_equal(spans[0].text, "{\"_id\":\"a\",\"s\":\"}],{[\\\"\"}", spans[0].len);
    assert_memory_equal(spans[1].text, "{\"_id\":\"b\",\"x\":[{},[]]}", spans[1].len);
    assert_int_equal(items_split("[]", 2, spans, 4), 0);
    assert_int_equal(items_split("{\"a\":1}", 7, spans, 4), (size_t)-1);
    assert_int_equal(items_split("[1]", 3, spans, 4), 0); /* not objects: items_parse refuses those first */
    assert_int_equal(items_split("[[1]]", 5, spans, 4), (size_t)-1);
    assert_int_equal(items_split("[{\"a\":\"]", 8, spans, 4), (size_t)-1);
    /* More items than room: counted all the same. */
    assert_int_equal(items_split("[{},{},{}]", 10, spans, 2), 3);
}

static void test_span_is_empty(void **state) {
    (void)state;
    assert_true(items_span_is_empty((items_span){"{}", 2}));
    assert_true(items_span_is_empty((items_span){"{ \n\t}", 5}));
    assert_false(items_span_is_empty((items_span){"{\"a\":1}", 7}));
    assert_false(items_span_is_empty((items_span){"{ \"\":1 }", 8}));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_span_is_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
