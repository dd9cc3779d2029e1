/* test_sites.c -- the sites file: defaults of each kind, templates, and the
 * mistakes it refuses with a reason; the time each kind reads of its items
 * (their lag, in the crawler's metrics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "sites.h"
#include "xalloc.h"

static char *write_temp(const char *text) {
    char path[] = "/tmp/imgfeed-sites-test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return xstrdup(path);
}

/* The kinds crawler/sites.json must show a site of. */
#define SHIPPED_KINDS "4chan", "vichan", "lynxchan", "reddit", "nekos_best", "waifu_pics", "waifu_im", "catboys"

static int load(const char *text, sites *s, char *why, size_t whylen) {
    char *path = write_temp(text);
    int rc = sites_load(path, 10000, s, why, whylen);
    unlink(path);
    free(path);
    return rc;
}

static void test_defaults(void **state) {
    (void)state;
    sites s;
    char why[256];
    assert_int_equal(load("{\"user_agent\":\"ua/1 (contact)\",\"sites\":["
                          "{\"name\":\"4chan\",\"kind\":\"4chan\",\"api\":\"https://a.4cdn.org\","
                          "\"media\":\"https://i.4cdn.org\",\"boards\":[\"g\",\"wg\"],\"rps\":1},"
                          "{\"name\":\"lainchan\",\"kind\":\"vichan\",\"api\":\"https://lainchan.org\","
                          "\"boards\":[\"\xce\xbb\"],\"rps\":0.5,\"poll_interval\":\"30s\",\"user_agent\":\"own\"},"
                          "{\"name\":\"other\",\"kind\":\"nosuchkind\",\"boards\":[\"pics\"],\"rps\":1}]}",
                          &s, why, sizeof why),
                     0);
    assert_int_equal(s.n, 2); /* a kind of another version skipped, not an error */
    assert_string_equal(sites_url(&s.v[0], "threads_url"), "https://a.4cdn.org/{board}/threads.json");
    assert_string_equal(sites_url(&s.v[0], "thread_url"), "https://a.4cdn.org/{board}/thread/{no}.json");
    assert_string_equal(sites_url(&s.v[0], "file_url"), "https://i.4cdn.org/{board}/{tim}{ext}");
    assert_int_equal(s.v[0].nboards, 2);
    assert_int_equal(s.v[0].poll_interval_ms, 10000);
    assert_string_equal(s.v[0].user_agent, "ua/1 (contact)");
    assert_string_equal(s.v[1].kind->name, "vichan");
    assert_string_equal(sites_url(&s.v[1], "thread_url"), "https://lainchan.org/{board}/res/{no}.json");
    assert_string_equal(sites_url(&s.v[1], "file_url"), "https://lainchan.org/{board}/src/{tim}{ext}");
    assert_int_equal(s.v[1].poll_interval_ms, 30000);
    assert_string_equal(s.v[1].user_agent, "own");
    char *url = sites_expand(sites_url(&s.v[1], "thread_url"), s.v[1].boards[0], "30364", NULL, NULL);
    assert_string_equal(url, "https://lainchan.org/%CE%BB/res/30364.json");
    free(url);
    sites_release(&s);
}

static void test_templates(void **state) {
    (void)state;
    sites s;
    char why[256];
    assert_int_equal(load("{\"user_agent\":\"ua\",\"sites\":[{\"name\":\"w\",\"kind\":\"vichan\",\"api\":\"http://h/x\","
                          "\"thread_url\":\"{api}/{board}/res/{no}.json?v=1\",\"file_url\":\"http://files/{board}/{tim}{ext}\","
                          "\"boards\":[\"b\"],\"rps\":2}]}",
                          &s, why, sizeof why),
                     0);
    assert_string_equal(sites_url(&s.v[0], "thread_url"), "http://h/x/{board}/res/{no}.json?v=1");
    assert_string_equal(sites_url(&s.v[0], "threads_url"), "http://h/x/{board}/threads.json");
    char *url = sites_expand(sites_url(&s.v[0], "file_url"), "b", NULL, "123-0", ".png");
    assert_string_equal(url, "http://files/b/123-0.png");
    free(url);
    sites_release(&s);
}

static void test_refused(void **state) {
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"not json", "cannot read sites file"},
        {"[]", "expected an object with a \"sites\" array"},
        {"{\"sites\":[]}", "no site of a kind"},
        {"{\"sites\":[{\"name\":\"Bad Name\",\"kind\":\"4chan\"}]}", "\"name\" must be"},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\"]}]}",
         "\"rps\""},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\"],\"rps\":0}]}",
         "\"rps\""},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[],\"rps\":1}]}",
         "\"boards\""},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"a.b\"],\"rps\":1}]}",
         "without dots"},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\",\"g\"],\"rps\":1}]}",
         "listed twice"},
        {"{\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\"],\"rps\":1}]}", "user_agent"},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"boards\":[\"g\"],\"rps\":1}]}", "\"api\""},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\"],\"rps\":1},"
         "{\"name\":\"a\",\"kind\":\"vichan\",\"api\":\"h\",\"boards\":[\"g\"],\"rps\":1}]}",
         "two sites are named"},
        {"{\"user_agent\":\"u\",\"sites\":[{\"name\":\"a\",\"kind\":\"4chan\",\"api\":\"h\",\"boards\":[\"g\"],\"rps\":1,"
         "\"poll_interval\":\"soon\"}]}",
         "poll_interval"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sites s;
        char why[512];
        if (load(cases[i].text, &s, why, sizeof why) == 0) fail_msg("case %zu was accepted", i);
        if (!strstr(why, cases[i].why)) fail_msg("case %zu: \"%s\" does not say %s", i, why, cases[i].why);
    }
}

/* The default selection shipped in crawler/sites.json loads: a real site of
 * every kind, each within its site's published limit.  Each kind reads its
 * items' own time where they give one (else none: no lag is counted). */
static void test_shipped(void **state) {
    (void)state;
    const char *src = getenv("IMGFEED_SOURCE_DIR");
    assert_non_null(src);
    char *path = xasprintf("%s/crawler/sites.json", src);
    sites s;
    char why[256];
    if (sites_load(path, 10000, &s, why, sizeof why) != 0) fail_msg("%s", why);
    assert_string_equal(s.v[0].name, "4chan");
    assert_true(s.v[0].rps <= 1);
    assert_int_equal(s.v[0].nboards, 5);
    static const char *const kinds[] = {SHIPPED_KINDS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const source_kind *kind = source_find(kinds[k]);
        assert_non_null(kind);
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++)
            if (s.v[i].kind == kind) n++;
        if (!n) fail_msg("crawler/sites.json has no site of kind %s", kinds[k]);
    }
    for (size_t i = 0; i < s.n; i++) {
        assert_non_null(strstr(s.v[i].user_agent, "imgfeed"));
        if (s.v[i].kind->default_rps > 0 && s.v[i].rps > s.v[i].kind->default_rps)
            fail_msg("site %s asks %g rps, more than its kind's published %g", s.v[i].name, s.v[i].rps,
                     s.v[i].kind->default_rps);
    }
    sites_release(&s);
    free(path);
    static const struct {
        const char *kind, *item;
        double time; /* < 0: none */
    } times[] = {
        {"4chan", "{\"no\": 5, \"time\": 1398979993}", 1398979993},
        {"4chan", "{\"no\": 5, \"time\": \"1398979993\"}", -1},
        {"vichan", "{\"no\": 5, \"time\": 1646887159}", 1646887159},
        {"lynxchan", "{\"postId\": 7, \"creation\": \"2026-06-07T20:44:00.500Z\"}", 1780865040.5},
        {"lynxchan", "{\"postId\": 7, \"creation\": \"yesterday\"}", -1},
        {"reddit", "{\"id\": \"5jo13y\", \"created_utc\": 1482222222.0}", 1482222222},
        {"reddit", "{\"id\": \"5jo13y\"}", -1},
        /* uploaded_at is a random old image's upload, not when it appeared: no lag */
        {"waifu_im", "{\"image_id\": 8108, \"uploaded_at\": \"2023-05-03T18:40:04.381354+02:00\"}", -1},
        {"nekos_best", "{\"url\": \"https://nekos.best/a.png\", \"uploaded_at\": \"2023-05-03T18:40:04Z\"}", -1},
        {"waifu_pics", "{\"url\": \"https://i.waifu.pics/a.png\"}", -1},
        {"catboys", "{\"url\": \"https://cdn.catboys.com/a.png\"}", -1},
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        const source_kind *kind = source_find(times[i].kind);
        json_object *item = json_tokener_parse(times[i].item);
        assert_non_null(item);
        double got = kind->item_time ? kind->item_time(item) : -1;
        json_object_put(item);
        if (times[i].time < 0 ? got >= 0 : !(got > times[i].time - 0.001 && got < times[i].time + 0.001))
            fail_msg("%s %s: time %.3f, want %.3f", times[i].kind, times[i].item, got, times[i].time);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_shipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
