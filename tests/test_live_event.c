/* test_live_event.c -- what a live viewer is told of an item (live/event.h):
 * the fields of each kind of site, pictures only (no videos, failures or
 * other schemes), text made plain and cut on a UTF-8 boundary, NSFW from
 * the item or the topics, links only http(s), and hostile text kept as
 * text in valid one-line JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "event.h"

#define IMG(i, extra)                                                                                          \
    "{\"url\": " #i ", \"width\": 640, \"height\": 480, \"format\": \"png\", \"size\": 9,"                    \
    " \"sha1\": \"0123456789abcdef0123456789abcdef01234567\", \"phash\": \"AAAA\"" extra "}"

static json_object *make(const event_rules *r, const char *key, const char *item_json) {
    json_object *item = json_tokener_parse(item_json);
    assert_non_null(item);
    size_t len;
    char *ev = event_make(r, key, item, &len);
    json_object_put(item);
    if (!ev) return NULL;
    assert_int_equal(strlen(ev), len);
    assert_null(strchr(ev, '\n')); /* one SSE data line */
    json_object *o = json_tokener_parse(ev);
    assert_non_null(o);
    free(ev);
    return o;
}

static const char *str(json_object *o, const char *key) {
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_chan_post(void **state) {
    (void)state;
    static const char *const nsfw[] = {"4chan.*.b", NULL};
    event_rules r = {.nsfw_topics = nsfw, .files = true};
    json_object *o = make(&r, "4chan.post.b",
                          "{\"no\": 5, \"time\": 1700000000, \"sub\": \"Sub &amp; ject\","
                          " \"com\": \"&gt;quote<br>line<script>alert(1)</script> &#955;&#x3bb;\","
                          " \"_id\": \"b.5\", \"_chan\": \"4chan\", \"_board\": \"b\", \"_type\": \"post\","
                          " \"_urls\": [\"https://i.4cdn.org/b/1.png\", \"javascript:alert(1)\"],"
                          " \"_img\": [" IMG(0, "") ", " IMG(1, "") ", {\"url\": 0, \"error\": \"http 404\"}]}");
    assert_non_null(o);
    assert_string_equal(str(o, "id"), "b.5");
    assert_string_equal(str(o, "site"), "4chan");
    assert_string_equal(str(o, "type"), "post");
    assert_string_equal(str(o, "text"), "Sub & ject\n>quote\nlinealert(1) \xce\xbb\xce\xbb");
    json_object *v, *imgs;
    assert_true(json_object_object_get_ex(o, "nsfw", &v));
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(o, "images", &imgs));
    assert_int_equal(json_object_array_length(imgs), 1); /* the javascript: url and the failure dropped */
    json_object *img = json_object_array_get_idx(imgs, 0);
    assert_string_equal(str(img, "file"), "/files/0123456789abcdef0123456789abcdef01234567.png");
    assert_null(str(o, "link"));
    json_object_put(o);
}

static void test_reddit_and_imgapi(void **state) {
    (void)state;
    event_rules r = {0};
    json_object *o = make(&r, "reddit.submission.pics",
                          "{\"title\": \"A title\", \"selftext\": \"body\", \"over_18\": true, \"created_utc\": 1.7e9,"
                          " \"permalink\": \"/r/pics/comments/x/y/\", \"subreddit\": \"pics\", \"_id\": \"x\","
                          " \"_chan\": \"reddit\", \"_board\": \"pics\", \"_type\": \"submission\","
                          " \"_urls\": [\"https://i.redd.it/x.png\"], \"_img\": [" IMG(0, "") "]}");
    assert_string_equal(str(o, "text"), "A title\nbody");
    assert_string_equal(str(o, "link"), "https://www.reddit.com/r/pics/comments/x/y/");
    json_object *v;
    assert_true(json_object_object_get_ex(o, "nsfw", &v));
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(o, "time", &v));
    assert_int_equal(json_object_get_int64(v), 1700000000);
    assert_true(json_object_object_get_ex(o, "images", &v));
    assert_null(str(json_object_array_get_idx(v, 0), "file")); /* no save dir */
    json_object_put(o);
    o = make(&r, "waifu_im.image.maid",
             "{\"id\": 1, \"source\": \"https://example.org/a\", \"isNsfw\": false, \"_crawled_at\": 1600000000,"
             " \"_id\": \"1\", \"_chan\": \"waifu_im\", \"_board\": \"maid\", \"_type\": \"image\","
             " \"_urls\": [\"https://cdn.waifu.im/1.png\"], \"_img\": [" IMG(0, "") "]}");
    assert_string_equal(str(o, "link"), "https://example.org/a");
    assert_true(json_object_object_get_ex(o, "time", &v));
    assert_int_equal(json_object_get_int64(v), 1600000000);
    json_object_put(o);
}

static void test_nothing_to_show(void **state) {
    (void)state;
    event_rules r = {0};
    /* no _img, a video, a failure, an index out of range, a bad sha1 */
    static const char *const items[] = {
        "{\"_id\": \"1\", \"_urls\": [\"https://a/1.png\"]}",
        "{\"_id\": \"1\", \"_urls\": [\"https://a/1.webm\"], \"_img\": [{\"url\": 0, \"sha1\": "
        "\"0123456789abcdef0123456789abcdef01234567\", \"format\": \"webm\"}]}",
        "{\"_id\": \"1\", \"_urls\": [\"https://a/1.png\"], \"_img\": [{\"url\": 0, \"error\": \"too large\"}]}",
        "{\"_id\": \"1\", \"_urls\": [\"https://a/1.png\"], \"_img\": [" IMG(3, "") "]}",
        "{\"_id\": \"1\", \"_urls\": [\"https://a/1.png\"], \"_img\": [{\"url\": 0, \"sha1\": \"x\", \"phash\": \"A\"}]}",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        assert_null(make(&r, "a.b.c", items[i]));
}

static void test_text_cut(void **state) {
    (void)state;
    event_rules r = {0};
    char item[4096] = "{\"title\": \"";
    for (int i = 0; i < 300; i++)
        strcat(item, "\xce\xbb"); /* 600 bytes of two-byte characters */
    strcat(item, "\", \"_id\": \"1\", \"_urls\": [\"https://a/1.png\"], \"_img\": [" IMG(0, "") "]}");
    json_object *o = make(&r, "a.b.c", item);
    const char *t = str(o, "text");
    assert_true(strlen(t) <= EVENT_TEXT_MAX);
    assert_int_equal(strlen(t) % 2, 0); /* never half a character */
    json_object_put(o);
    assert_string_equal(event_format_ext("jpeg"), "jpg");
    assert_null(event_format_ext("exe"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chan_post),
        cmocka_unit_test(test_reddit_and_imgapi),
        cmocka_unit_test(test_nothing_to_show),
        cmocka_unit_test(test_text_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
