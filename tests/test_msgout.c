/* test_msgout.c -- hasher/msgout.c: a message's items with `_img`, in
 * messages under --max-message.
 *
 * Each case builds a message of items of chosen sizes, gives every item an
 * `_img`, and checks the messages against the limit: every item exactly
 * once, in order, each message a JSON array no longer than the limit but
 * for an item too large alone, which is a message of its own; items kept as
 * they were written with `_img` appended, and every item given back as it
 * was received.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "items.h"
#include "msgout.h"
#include "sbuf.h"
#include "xalloc.h"

/* The text of item I: `{"_id":"iI", "pad":"xxx..."}` with PAD x's (a space
 * after the comma, kept by the splice). */
static void add_item(sbuf *b, int i, size_t pad) {
    char head[64];
    int n = snprintf(head, sizeof head, "{\"_id\":\"i%d\", \"pad\":\"", i);
    sbuf_add(b, head, (size_t)n);
    for (size_t k = 0; k < pad; k++)
        sbuf_addc(b, 'x');
    sbuf_add(b, "\"}", 2);
}

static char *message_text(const size_t *pads, int n, size_t *len) {
    sbuf b = {0};
    sbuf_addc(&b, '[');
    for (int i = 0; i < n; i++) {
        if (i) sbuf_addc(&b, ',');
        add_item(&b, i, pads[i]);
    }
    sbuf_addc(&b, ']');
    sbuf_addc(&b, '\0');
    *len = b.len - 1;
    return b.p;
}

/* One `_img` array per item: [{"url":0,"size":I}]. */
static json_object **make_imgs(int n) {
    json_object **imgs = xcalloc((size_t)n + 1, sizeof *imgs);
    for (int i = 0; i < n; i++) {
        json_object *entry = json_object_new_object();
        json_object_object_add(entry, "url", json_object_new_int(0));
        json_object_object_add(entry, "size", json_object_new_int(i));
        imgs[i] = json_object_new_array();
        json_object_array_add(imgs[i], entry);
    }
    return imgs;
}

/* Build the message of N items with PADS, cut under MAX, and check it;
 * returns the number of messages.  TOO_LARGE lists the items expected to be
 * a message of their own longer than MAX (terminated by -1). */
static size_t check_case(const size_t *pads, int n, uint64_t max, const int *too_large) {
    size_t len;
    char *text = message_text(pads, n, &len);
    char why[128];
    json_object *items = items_parse(text, len, why, sizeof why);
    assert_non_null(items);
    json_object **imgs = make_imgs(n);
    msgout out;
    msgout_build(&out, "s.post.b", text, len, items, imgs, max);
    free(imgs);
    assert_int_equal(out.nitems, (size_t)n);
    assert_int_equal(out.first[0], 0);
    assert_int_equal(out.first[out.nmsgs], (size_t)n);

    /* every item once, in order; each message under the limit but those of
     * one item too large alone */
    int next = 0;
    size_t t = 0;
    for (size_t k = 0; k < out.nmsgs; k++) {
        const mq_message *msg = &out.msgs[k];
        size_t count = out.first[k + 1] - out.first[k];
        assert_string_equal(msg->routing_key, "s.post.b");
        bool alone = too_large && too_large[t] == next;
        if (alone) {
            assert_int_equal(count, 1);
            if (max) assert_true(msg->len > max);
            t++;
        } else if (max) {
            assert_true(msg->len <= max);
        }
        char *body = xstrndup(msg->body, msg->len);
        json_object *got = json_tokener_parse(body);
        if (!got) fail_msg("message %zu is not JSON: %.200s", k, body);
        assert_int_equal(json_object_array_length(got), count);
        for (size_t j = 0; j < count; j++) {
            assert_int_equal(out.first[k] + j, (size_t)next);
            json_object *item = json_object_array_get_idx(got, j), *id, *img, *size;
            char want_id[16];
            snprintf(want_id, sizeof want_id, "i%d", next);
            assert_true(json_object_object_get_ex(item, "_id", &id));
            assert_string_equal(json_object_get_string(id), want_id);
            assert_true(json_object_object_get_ex(item, "_img", &img));
            assert_true(json_object_object_get_ex(json_object_array_get_idx(img, 0), "size", &size));
            assert_int_equal(json_object_get_int(size), next);
            next++;
        }
        /* the item's own text, with `_img` appended after it */
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[{\"_id\":\"i%zu\", \"pad\":\"", out.first[k]);
        assert_memory_equal(msg->body, prefix, strlen(prefix));
        json_object_put(got);
        free(body);
    }
    assert_int_equal(next, n);
    size_t expected_too_large = 0;
    while (too_large && too_large[expected_too_large] >= 0)
        expected_too_large++;
    assert_int_equal(t, expected_too_large);

    /* every item given back as received */
    for (int i = 0; i < n; i++) {
        size_t rlen;
        char *received = msgout_received(&out, (size_t)i, &rlen);
        sbuf want = {0};
        sbuf_addc(&want, '[');
        add_item(&want, i, pads[i]);
        sbuf_addc(&want, ']');
        assert_int_equal(rlen, want.len);
        assert_memory_equal(received, want.p, rlen);
        assert_int_equal(received[rlen], '\0');
        free(want.p);
        free(received);
    }
    size_t nmsgs = out.nmsgs;
    msgout_release(&out);
    json_object_put(items);
    free(text);
    return nmsgs;
}

static void test_no_limit_one_part(void **state) {
    (void)state;
    size_t pads[50];
    for (int i = 0; i < 50; i++)
        pads[i] = 1000;
    assert_int_equal(check_case(pads, 50, 0, NULL), 1);
    assert_int_equal(check_case(pads, 50, 1 << 20, NULL), 1);
}

/* The output is the delivered text with `_img` appended to each item. */
static void test_spliced_as_sent(void **state) {
    (void)state;
    static const char good[] = "[ {\"_id\":\"a\", \"n\": 1.50 }\n,{\"_id\":\"b\"}]";
    char why[128];
    json_object *items = items_parse(good, strlen(good), why, sizeof why);
    assert_non_null(items);
    json_object **imgs = make_imgs(2);
    msgout out;
    msgout_build(&out, "s.post.b", good, strlen(good), items, imgs, 0);
    assert_int_equal(out.nmsgs, 1);
    static const char want[] = "[{\"_id\":\"a\", \"n\": 1.50 ,\"_img\":[{\"url\":0,\"size\":0}]},"
                               "{\"_id\":\"b\",\"_img\":[{\"url\":0,\"size\":1}]}]";
    assert_int_equal(out.msgs[0].len, strlen(want));
    assert_memory_equal(out.msgs[0].body, want, strlen(want));
    msgout_release(&out);
    free(imgs);
    json_object_put(items);
}

/* Many items under a small limit: several messages, none over the limit. */
static void test_cut_in_parts(void **state) {
    (void)state;
    size_t pads[300];
    for (int i = 0; i < 300; i++)
        pads[i] = 100 + (size_t)(i * 37 % 900);
    size_t parts = check_case(pads, 300, 16384, NULL);
    assert_true(parts > 5);
    /* exactly at the limit: "[" item "]" of 4096 bytes fits 4096 */
    size_t one[1];
    size_t probe_len;
    char *probe = message_text((size_t[]){0}, 1, &probe_len);
    /* the item's text with `_img` is probe_len - 2 + strlen(",\"_img\":[{\"url\":0,\"size\":0}]") */
    size_t fixed = probe_len + strlen(",\"_img\":[{\"url\":0,\"size\":0}]");
    free(probe);
    one[0] = 4096 - fixed;
    assert_int_equal(check_case(one, 1, 4096, NULL), 1);
    one[0]++;
    assert_int_equal(check_case(one, 1, 4096, (const int[]){0, -1}), 1); /* alone, and too large */
}

/* Items too large alone: each a message of its own (which mq refuses), and
 * the messages around them keep the order. */
static void test_too_large_items(void **state) {
    (void)state;
    size_t pads[20];
    for (int i = 0; i < 20; i++)
        pads[i] = 500;
    pads[0] = 9000;
    pads[7] = 20000;
    pads[8] = 5000;
    pads[19] = 8000;
    check_case(pads, 20, 4096, (const int[]){0, 7, 8, 19, -1});
    /* all of them */
    check_case((const size_t[]){5000, 6000}, 2, 4096, (const int[]){0, 1, -1});
}

/* An item that came with an `_img` of its own has it replaced (json-c
 * prints the items then), and is still cut and given back as received. */
static void test_own_img_replaced(void **state) {
    (void)state;
    static const char text[] = "[{\"_id\":\"a\",\"_img\":[{\"old\":true}]},{\"_id\":\"b\",\"pad\":\"yyyy\"}]";
    char why[128];
    json_object *items = items_parse(text, strlen(text), why, sizeof why);
    assert_non_null(items);
    json_object **imgs = make_imgs(2);
    msgout out;
    msgout_build(&out, "s.post.b", text, strlen(text), items, imgs, 60);
    free(imgs);
    assert_int_equal(out.nmsgs, 2);
    char *body = xstrndup(out.msgs[0].body, out.msgs[0].len);
    json_object *first = json_tokener_parse(body);
    free(body);
    json_object *want = json_tokener_parse("[{\"_id\":\"a\",\"_img\":[{\"url\":0,\"size\":0}]}]");
    assert_true(json_object_equal(first, want));
    json_object_put(first);
    json_object_put(want);
    size_t len;
    char *received = msgout_received(&out, 0, &len);
    assert_string_equal(received, "[{\"_id\":\"a\",\"_img\":[{\"old\":true}]}]");
    free(received);
    msgout_release(&out);
    json_object_put(items);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_limit_one_part), cmocka_unit_test(test_spliced_as_sent),
        cmocka_unit_test(test_cut_in_parts),      cmocka_unit_test(test_too_large_items),
        cmocka_unit_test(test_own_img_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
