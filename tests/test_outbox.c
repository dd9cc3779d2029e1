/* test_outbox.c -- items gathered into messages under a size limit
 * (common/outbox.h): every item once, in order per key, no message over the
 * limit unless one item alone is, sealed messages handed out first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "outbox.h"

static void add_item(outbox *o, const char *key, int n, size_t pad) {
    char text[4096];
    int len = snprintf(text, sizeof text, "{\"_id\":\"%d\",\"p\":\"%*s\"}", n, (int)pad, "");
    outbox_add(o, key, text, (size_t)len);
}

/* Every message is a JSON array of its key's items, in the order added. */
static void check_messages(const mq_message *msgs, size_t n, const char *key, int *next, size_t max) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(msgs[i].routing_key, key) != 0) continue;
        if (max) assert_true(msgs[i].len <= max);
        char *body = malloc(msgs[i].len + 1); /* the body has no NUL of its own */
        assert_non_null(body);
        memcpy(body, msgs[i].body, msgs[i].len);
        body[msgs[i].len] = '\0';
        json_object *arr = json_tokener_parse(body);
        assert_non_null(arr);
        assert_true(json_object_is_type(arr, json_type_array));
        for (size_t k = 0; k < json_object_array_length(arr); k++) {
            json_object *id;
            assert_true(json_object_object_get_ex(json_object_array_get_idx(arr, k), "_id", &id));
            assert_int_equal(atoi(json_object_get_string(id)), (*next)++);
        }
        json_object_put(arr);
        free(body);
    }
}

static void test_split_under_limit(void **state) {
    (void)state;
    outbox o;
    outbox_init(&o, 1000);
    for (int i = 0; i < 100; i++) {
        add_item(&o, "s.post.b", i, 50);
        add_item(&o, "s.thread.b", 1000 + i, 10);
    }
    assert_int_equal(o.items, 200);
    mq_message *msgs;
    size_t items;
    size_t sealed = outbox_ready(&o, false, &msgs, &items);
    assert_true(sealed > 0);
    for (size_t i = 0; i < sealed; i++)
        assert_true(msgs[i].len <= 1000 && msgs[i].len > 900 - 80); /* full, but never over */
    size_t all = outbox_ready(&o, true, &msgs, &items);
    assert_int_equal(items, 200);
    assert_true(all == sealed + 2); /* each key's open message, sealed now */
    int next_post = 0, next_thread = 1000;
    check_messages(msgs, all, "s.post.b", &next_post, 1000);
    check_messages(msgs, all, "s.thread.b", &next_thread, 1000);
    assert_int_equal(next_post, 100);
    assert_int_equal(next_thread, 1100);
    outbox_done(&o);
    assert_int_equal(o.items, 0);
    assert_int_equal(outbox_ready(&o, true, &msgs, &items), 0);
    outbox_release(&o);
}

/* A publish of the sealed messages only, then more items: the open
 * message goes on filling, and the order within a key holds. */
static void test_sealed_first(void **state) {
    (void)state;
    outbox o;
    outbox_init(&o, 300);
    int next = 0;
    for (int i = 0; i < 20; i++)
        add_item(&o, "k", i, 30);
    mq_message *msgs;
    size_t n = outbox_ready(&o, false, &msgs, NULL);
    check_messages(msgs, n, "k", &next, 300);
    outbox_done(&o);
    assert_true(o.items > 0 && o.items < 20); /* the open one stays */
    for (int i = 20; i < 40; i++)
        add_item(&o, "k", i, 30);
    n = outbox_ready(&o, true, &msgs, NULL);
    check_messages(msgs, n, "k", &next, 300);
    assert_int_equal(next, 40);
    outbox_done(&o);
    outbox_release(&o);
}

/* An item longer than the limit gets a message of its own (which mq
 * refuses), between the messages of its neighbours; no limit: one message. */
static void test_item_over_limit(void **state) {
    (void)state;
    outbox o;
    outbox_init(&o, 200);
    add_item(&o, "k", 0, 10);
    add_item(&o, "k", 1, 500);
    add_item(&o, "k", 2, 10);
    mq_message *msgs;
    size_t n = outbox_ready(&o, true, &msgs, NULL);
    assert_int_equal(n, 3);
    assert_true(msgs[1].len > 500);
    int next = 0;
    check_messages(msgs, n, "k", &next, 0);
    outbox_clear(&o);
    assert_int_equal(o.items, 0);
    outbox_release(&o);
    outbox_init(&o, 0);
    for (int i = 0; i < 50; i++)
        add_item(&o, "k", i, 100);
    assert_int_equal(outbox_ready(&o, true, &msgs, NULL), 1);
    outbox_release(&o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_under_limit),
        cmocka_unit_test(test_sealed_first),
        cmocka_unit_test(test_item_over_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
