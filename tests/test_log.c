/* test_log.c -- log lines: levels filter, text form, JSON form parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "log.h"
#include "testenv.h"

/* Log through fn and return what was written. */
static char *capture(void (*fn)(void)) {
    int fd = testenv_log_begin();
    fn();
    return testenv_log_end(fd);
}

static void emit_levels(void) {
    log_debug("hidden %d", 1);
    log_info("cannot open %s: %s", "/x", "permission denied");
    log_error("quote \" backslash \\ newline \n tab \t done");
}

static void test_text(void **state) {
    (void)state;
    log_set_program("imgfeed-test");
    log_set_level(LOG_INFO);
    log_set_format(LOG_FORMAT_TEXT);
    char *out = capture(emit_levels);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " info  imgfeed-test: cannot open /x: permission denied\n"));
    assert_non_null(strstr(out, " error imgfeed-test: quote"));
    /* "2026-11-21T08:30:00.123Z " */
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[23], 'Z');
    free(out);
}

static void test_json(void **state) {
    (void)state;
    log_set_level(LOG_DEBUG);
    log_set_format(LOG_FORMAT_JSON);
    char *out = capture(emit_levels);
    log_set_format(LOG_FORMAT_TEXT);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_object *obj = json_tokener_parse(line);
        if (!obj) fail_msg("not JSON: %s", line);
        json_object *msg, *level, *ts;
        assert_true(json_object_object_get_ex(obj, "msg", &msg));
        assert_true(json_object_object_get_ex(obj, "level", &level));
        assert_true(json_object_object_get_ex(obj, "ts", &ts));
        if (lines == 2) {
            assert_string_equal(json_object_get_string(level), "error");
            assert_string_equal(json_object_get_string(msg), "quote \" backslash \\ newline \n tab \t done");
        }
        json_object_put(obj);
    }
    assert_int_equal(lines, 3);
    free(out);
}

static void test_parse_names(void **state) {
    (void)state;
    log_level level;
    log_format format;
    assert_true(log_level_parse("warn", &level));
    assert_int_equal(level, LOG_WARN);
    assert_false(log_level_parse("loud", &level));
    assert_true(log_format_parse("json", &format));
    assert_int_equal(format, LOG_FORMAT_JSON);
    assert_false(log_format_parse("xml", &format));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_parse_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
