/* test_config.c -- settings: defaults, environment, flags, errors, help.
 *
 * Table-driven: each row of the bad-value tables is a command line or an
 * environment that must be refused with a message naming the setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"
#include "config.h"

typedef struct demo_settings {
    cfg_common common;
    long prefetch;
    double rps;
    bool once;
    int64_t max_bytes;
    int64_t flush_ms;
    char *pg;
} demo_settings;

static const cfg_option demo_options[] = {
    CFG_COMMON_OPTIONS(demo_settings, common),
    {.name = "prefetch", .env = "IMGFEED_PREFETCH", .type = CFG_INT, .offset = offsetof(demo_settings, prefetch),
     .defval = "100", .help = "prefetch", .min = 1, .max = 65535},
    {.name = "rps", .env = "IMGFEED_RPS", .type = CFG_DOUBLE, .offset = offsetof(demo_settings, rps),
     .defval = "1.5", .help = "rate", .min = 0.001, .max = 1000},
    {.name = "once", .env = "IMGFEED_ONCE", .type = CFG_BOOL, .offset = offsetof(demo_settings, once),
     .defval = "false", .help = "once"},
    {.name = "max-bytes", .env = "IMGFEED_MAX_BYTES", .type = CFG_BYTES, .offset = offsetof(demo_settings, max_bytes),
     .defval = "64MiB", .help = "limit"},
    {.name = "flush-interval", .env = "IMGFEED_FLUSH_INTERVAL", .type = CFG_MILLIS,
     .offset = offsetof(demo_settings, flush_ms), .defval = "1s", .help = "flush", .min = 1, .max = 3600000},
    {.name = "pg", .env = "IMGFEED_PG", .type = CFG_STRING, .offset = offsetof(demo_settings, pg),
     .defval = "dbname=imgfeed", .help = "database"},
    {0},
};

static const cfg_program demo_program = {"imgfeed-demo", "[OPTION]... [FILE]...", "A demo.", demo_options};

static const char *const demo_env_names[] = {
    "IMGFEED_AMQP_URL", "IMGFEED_EXCHANGE",  "IMGFEED_AMQP_HEARTBEAT", "IMGFEED_LOG_LEVEL",
    "IMGFEED_LOG_FORMAT", "IMGFEED_PREFETCH", "IMGFEED_RPS",           "IMGFEED_ONCE",
    "IMGFEED_MAX_BYTES", "IMGFEED_FLUSH_INTERVAL", "IMGFEED_PG",
};

static int clear_env(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof demo_env_names / sizeof demo_env_names[0]; i++) unsetenv(demo_env_names[i]);
    return 0;
}

/* Load argv (NULL-terminated, without the program name). */
static cfg_result load(demo_settings *s, const char *const *args, int *npos, char *err, size_t errlen,
                       FILE *out) {
    char *argv[32] = {"imgfeed-demo"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    memset(s, 0, sizeof *s);
    return cfg_load(&demo_program, s, argc, argv, npos, out, err, errlen);
}

static void test_defaults(void **state) {
    (void)state;
    demo_settings s;
    char err[256];
    assert_int_equal(load(&s, NULL, NULL, err, sizeof err, stdout), CFG_OK);
    assert_string_equal(s.common.amqp_url, "amqp://guest:guest@localhost:5672");
    assert_string_equal(s.common.exchange, "chan");
    assert_string_equal(s.common.log_level, "info");
    assert_int_equal(s.common.amqp_heartbeat_ms, 30000);
    assert_int_equal(s.prefetch, 100);
    assert_true(s.rps == 1.5);
    assert_false(s.once);
    assert_int_equal(s.max_bytes, 64 * 1024 * 1024);
    assert_int_equal(s.flush_ms, 1000);
    assert_string_equal(s.pg, "dbname=imgfeed");
    cfg_release(&demo_program, &s);
    assert_null(s.pg);
}

static void test_env_then_flags(void **state) {
    (void)state;
    demo_settings s;
    char err[256];
    setenv("IMGFEED_EXCHANGE", "fromenv", 1);
    setenv("IMGFEED_PREFETCH", "7", 1);
    setenv("IMGFEED_ONCE", "yes", 1);
    setenv("IMGFEED_PG", "", 1); /* empty counts as unset */
    const char *args[] = {"--exchange", "fromflag", "--max-bytes=512k", "--flush-interval", "250ms", NULL};
    assert_int_equal(load(&s, args, NULL, err, sizeof err, stdout), CFG_OK);
    assert_string_equal(s.common.exchange, "fromflag"); /* flags win */
    assert_int_equal(s.prefetch, 7);                    /* env over default */
    assert_true(s.once);
    assert_string_equal(s.pg, "dbname=imgfeed");
    assert_int_equal(s.max_bytes, 512 * 1024);
    assert_int_equal(s.flush_ms, 250);
    cfg_release(&demo_program, &s);
}

static void test_positional_and_bool_forms(void **state) {
    (void)state;
    demo_settings s;
    char err[256];
    int npos = -1;
    const char *args[] = {"hash", "--once", "a.jpg", "--rps=2", "--", "--not-a-flag", NULL};
    char *argv[8] = {"imgfeed-demo"};
    for (int i = 0; args[i]; i++) argv[i + 1] = (char *)args[i];
    memset(&s, 0, sizeof s);
    assert_int_equal(cfg_load(&demo_program, &s, 7, argv, &npos, stdout, err, sizeof err), CFG_OK);
    assert_int_equal(npos, 3);
    assert_string_equal(argv[1], "hash");
    assert_string_equal(argv[2], "a.jpg");
    assert_string_equal(argv[3], "--not-a-flag");
    assert_true(s.once);
    assert_true(s.rps == 2.0);
    cfg_release(&demo_program, &s);

    const char *off[] = {"--once=false", NULL};
    assert_int_equal(load(&s, off, NULL, err, sizeof err, stdout), CFG_OK);
    assert_false(s.once);
    cfg_release(&demo_program, &s);
}

/* Each bad command line, and a word its error message must contain. */
static const struct {
    const char *args[4];
    const char *needle;
} bad_flags[] = {
    {{"--nope", NULL}, "unknown option '--nope'"},
    {{"-x", NULL}, "unknown option '-x'"},
    {{"--prefetch", "abc", NULL}, "--prefetch: 'abc' is not a whole number"},
    {{"--prefetch", "0", NULL}, "from 1 to 65535"},
    {{"--prefetch", "12x", NULL}, "--prefetch"},
    {{"--prefetch", NULL}, "needs a value"},
    {{"--rps=fast", NULL}, "--rps: 'fast' is not a number"},
    {{"--rps=nan", NULL}, "--rps"},
    {{"--once=maybe", NULL}, "not true or false"},
    {{"--max-bytes", "12 parsecs", NULL}, "not a size"},
    {{"--max-bytes", "-5", NULL}, "not a size"},
    {{"--flush-interval", "soon", NULL}, "not a duration"},
    {{"--flush-interval", "0", NULL}, "from 1 to 3.6e+06 ms"},
    {{"--log-level", "loud", NULL}, "not one of debug, info, warn, error"},
    {{"--log-format=xml", NULL}, "--log-format"},
    {{"--amqp-url", "http://broker", NULL}, "does not start with amqp:// or amqps://"},
    {{"--amqp-url", "amqp://host:notaport", NULL}, "is not amqp[s]://"},
    {{"--exchange", "a.b", NULL}, "may hold only a-z, 0-9, _ and -"},
    {{"--exchange=", NULL}, "must have 1 to 40 characters"},
    /* a program that takes no operands refuses a stray word (a misspelt command) */
    {{"qurey", "x.jpg", NULL}, "unexpected argument 'qurey'"},
};

static void test_bad_flags(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        demo_settings s;
        char err[256];
        assert_int_equal(load(&s, bad_flags[i].args, NULL, err, sizeof err, stdout), CFG_ERROR);
        if (!strstr(err, bad_flags[i].needle)) fail_msg("row %zu: '%s' lacks '%s'", i, err, bad_flags[i].needle);
        cfg_release(&demo_program, &s);
    }
}

static void test_bad_env(void **state) {
    (void)state;
    demo_settings s;
    char err[256];
    setenv("IMGFEED_PREFETCH", "lots", 1);
    assert_int_equal(load(&s, NULL, NULL, err, sizeof err, stdout), CFG_ERROR);
    assert_non_null(strstr(err, "IMGFEED_PREFETCH: 'lots'"));
    cfg_release(&demo_program, &s);
    /* a flag does not rescue a bad environment: the operator should know */
    const char *args[] = {"--prefetch", "5", NULL};
    assert_int_equal(load(&s, args, NULL, err, sizeof err, stdout), CFG_ERROR);
    cfg_release(&demo_program, &s);
}

static void test_help_and_version(void **state) {
    (void)state;
    demo_settings s;
    char err[256], *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    setenv("IMGFEED_PREFETCH", "broken", 1); /* --help works whatever the environment */
    const char *help[] = {"--nope", "--help", NULL};
    assert_int_equal(load(&s, help, NULL, err, sizeof err, out), CFG_EXIT);
    const char *version[] = {"--version", NULL};
    assert_int_equal(load(&s, version, NULL, err, sizeof err, out), CFG_EXIT);
    const char *markdown[] = {"--help-markdown", NULL};
    assert_int_equal(load(&s, markdown, NULL, err, sizeof err, out), CFG_EXIT);
    fclose(out);
    assert_non_null(strstr(buf, "Usage: imgfeed-demo [OPTION]... [FILE]..."));
    assert_non_null(strstr(buf, "--prefetch N"));
    assert_non_null(strstr(buf, "env IMGFEED_PREFETCH; default 100"));
    assert_non_null(strstr(buf, "one of: debug info warn error"));
    assert_non_null(strstr(buf, "imgfeed-demo 0.1.0"));
    assert_non_null(strstr(buf, "| `--max-bytes BYTES` | `IMGFEED_MAX_BYTES` | `64MiB` | limit |"));
    free(buf);
}

static void test_units(void **state) {
    (void)state;
    static const struct { const char *text; int64_t bytes; } sizes[] = {
        {"0", 0}, {"17", 17}, {"1k", 1024}, {"1.5K", 1536}, {"64MiB", 67108864}, {"2 GB", 2147483648LL},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t v = -1;
        assert_true(cfg_parse_bytes(sizes[i].text, &v));
        assert_int_equal(v, sizes[i].bytes);
    }
    static const struct { const char *text; int64_t ms; } durations[] = {
        {"10", 10000}, {"0.5", 500}, {"250ms", 250}, {"1.5s", 1500}, {"2m", 120000}, {"1h", 3600000},
    };
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        int64_t v = -1;
        assert_true(cfg_parse_millis(durations[i].text, &v));
        assert_int_equal(v, durations[i].ms);
    }
    int64_t v;
    assert_false(cfg_parse_millis("10 fortnights", &v));
    assert_false(cfg_parse_bytes("", &v));
}

static void test_backoff_grows_and_caps(void **state) {
    (void)state;
    backoff b;
    backoff_init(&b, 100, 1000);
    int64_t expect_max[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof expect_max / sizeof expect_max[0]; i++) {
        int64_t d = backoff_next_ms(&b);
        assert_in_range(d, expect_max[i] / 2, expect_max[i]);
    }
    backoff_reset(&b);
    assert_in_range(backoff_next_ms(&b), 50, 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_env_then_flags, clear_env),
        cmocka_unit_test_setup(test_positional_and_bool_forms, clear_env),
        cmocka_unit_test_setup(test_bad_flags, clear_env),
        cmocka_unit_test_setup(test_bad_env, clear_env),
        cmocka_unit_test_setup(test_help_and_version, clear_env),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_backoff_grows_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
