/* config.c -- load a settings table from defaults, environment and argv.
 *
 * cfg_load walks the table three times: every default, then every
 * environment variable that is set, then the command line, each layer
 * overwriting the one before.  Parsing is per type (cfg_set_value); errors
 * name the flag or variable, the value, and what was expected.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "mq.h"
#include "xalloc.h"

#ifndef IMGFEED_VERSION
#define IMGFEED_VERSION "dev"
#endif

const char *const cfg_log_levels[] = {"debug", "info", "warn", "error", NULL};
const char *const cfg_log_formats[] = {"text", "json", NULL};
const char *const cfg_queue_types[] = {"classic", "quorum", NULL};

static const char *const cfg_type_names[] = {
    [CFG_STRING] = "STRING", [CFG_CHOICE] = "NAME",  [CFG_INT] = "N",        [CFG_DOUBLE] = "NUMBER",
    [CFG_BOOL] = "",         [CFG_BYTES] = "BYTES",  [CFG_MILLIS] = "DURATION",
};

static void *cfg_field(void *settings, const cfg_option *opt) { return (char *)settings + opt->offset; }

static void cfg_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cfg_error(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool cfg_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v)) return false;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return false;
    *out = v;
    return true;
}

static bool cfg_parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno == ERANGE || *end) return false;
    *out = v;
    return true;
}

static bool cfg_parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = true, true;
        if (strcasecmp(s, no[i]) == 0) return *out = false, true;
    }
    return false;
}

/* Split "64MiB" into the number 64 and the unit "MiB". */
static bool cfg_split_unit(const char *s, double *num, const char **unit) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return false;
    while (isspace((unsigned char)*end)) end++;
    *num = v;
    *unit = end;
    return true;
}

bool cfg_parse_bytes(const char *s, int64_t *out) {
    static const struct { const char *unit; double mult; } units[] = {
        {"", 1},           {"b", 1},           {"k", 1024.0},      {"kb", 1024.0},     {"kib", 1024.0},
        {"m", 1048576.0},  {"mb", 1048576.0},  {"mib", 1048576.0}, {"g", 1073741824.0},
        {"gb", 1073741824.0}, {"gib", 1073741824.0},
    };
    double v;
    const char *unit;
    if (!cfg_split_unit(s, &v, &unit)) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(unit, units[i].unit) == 0) {
            double bytes = v * units[i].mult;
            if (bytes > 9.0e18) return false;
            *out = (int64_t)bytes;
            return true;
        }
    }
    return false;
}

bool cfg_parse_millis(const char *s, int64_t *out) {
    static const struct { const char *unit; double mult; } units[] = {
        {"", 1000.0}, {"ms", 1.0}, {"s", 1000.0}, {"m", 60000.0}, {"min", 60000.0}, {"h", 3600000.0},
    };
    double v;
    const char *unit;
    if (!cfg_split_unit(s, &v, &unit)) return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].unit) == 0) {
            double ms = v * units[i].mult;
            if (ms > 9.0e15) return false;
            *out = (int64_t)llround(ms);
            return true;
        }
    }
    return false;
}

static bool cfg_in_range(const cfg_option *opt, double v) {
    return !(opt->min < opt->max) || (v >= opt->min && v <= opt->max);
}

/* Describe the range for an error message: " (from 1 to 100)". */
static void cfg_range_text(const cfg_option *opt, char *buf, size_t len) {
    static const char *const units[] = {[CFG_BYTES] = " bytes", [CFG_MILLIS] = " ms"};
    const char *unit = opt->type == CFG_BYTES || opt->type == CFG_MILLIS ? units[opt->type] : "";
    buf[0] = '\0';
    if (opt->min < opt->max) snprintf(buf, len, " from %g to %g%s", opt->min, opt->max, unit);
}

/* Store value into the option's field.  `where` names the source for errors:
 * "--prefetch" or "IMGFEED_PREFETCH". */
static bool cfg_store_value(const cfg_option *opt, void *settings, const char *value, const char *where, char *err,
                          size_t errlen) {
    void *field = cfg_field(settings, opt);
    char range[64];
    cfg_range_text(opt, range, sizeof range);
    switch (opt->type) {
    case CFG_STRING:
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return true;
    case CFG_CHOICE:
        for (const char *const *c = opt->choices; *c; c++) {
            if (strcmp(*c, value) == 0) {
                free(*(char **)field);
                *(char **)field = xstrdup(value);
                return true;
            }
        }
        {
            char list[256] = "";
            for (const char *const *c = opt->choices; *c; c++) {
                if (c != opt->choices) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, *c, sizeof list - strlen(list) - 1);
            }
            cfg_error(err, errlen, "bad value for %s: '%s' is not one of %s", where, value, list);
        }
        return false;
    case CFG_INT: {
        long v;
        if (!cfg_parse_long(value, &v) || !cfg_in_range(opt, (double)v)) {
            cfg_error(err, errlen, "bad value for %s: '%s' is not a whole number%s", where, value, range);
            return false;
        }
        *(long *)field = v;
        return true;
    }
    case CFG_DOUBLE: {
        double v;
        if (!cfg_parse_double(value, &v) || !cfg_in_range(opt, v)) {
            cfg_error(err, errlen, "bad value for %s: '%s' is not a number%s", where, value, range);
            return false;
        }
        *(double *)field = v;
        return true;
    }
    case CFG_BOOL:
        if (!cfg_parse_bool(value, (bool *)field)) {
            cfg_error(err, errlen, "bad value for %s: '%s' is not true or false", where, value);
            return false;
        }
        return true;
    case CFG_BYTES: {
        int64_t v;
        if (!cfg_parse_bytes(value, &v) || !cfg_in_range(opt, (double)v)) {
            cfg_error(err, errlen, "bad value for %s: '%s' is not a size such as 512k or 64MiB%s", where, value,
                      range);
            return false;
        }
        *(int64_t *)field = v;
        return true;
    }
    case CFG_MILLIS: {
        int64_t v;
        if (!cfg_parse_millis(value, &v) || !cfg_in_range(opt, (double)v)) {
            cfg_error(err, errlen, "bad value for %s: '%s' is not a duration such as 250ms, 10s or 5m%s", where,
                      value, range);
            return false;
        }
        *(int64_t *)field = v;
        return true;
    }
    }
    return false;
}

static bool cfg_set_value(const cfg_option *opt, void *settings, const char *value, const char *where, char *err,
                          size_t errlen) {
    char why[256];
    if (opt->check && !opt->check(value, why, sizeof why)) {
        cfg_error(err, errlen, "bad value for %s: '%s' %s", where, value, why);
        return false;
    }
    return cfg_store_value(opt, settings, value, where, err, errlen);
}

static const cfg_option *cfg_find(const cfg_program *prog, const char *name, size_t len) {
    for (const cfg_option *opt = prog->options; opt->name; opt++)
        if (strlen(opt->name) == len && strncmp(opt->name, name, len) == 0) return opt;
    return NULL;
}

static bool cfg_load_defaults(const cfg_program *prog, void *settings, char *err, size_t errlen) {
    for (const cfg_option *opt = prog->options; opt->name; opt++) {
        if (!opt->defval) continue;
        char where[96];
        snprintf(where, sizeof where, "the default of --%s", opt->name);
        if (!cfg_set_value(opt, settings, opt->defval, where, err, errlen)) return false;
    }
    return true;
}

static bool cfg_load_env(const cfg_program *prog, void *settings, char *err, size_t errlen) {
    for (const cfg_option *opt = prog->options; opt->name; opt++) {
        const char *value = opt->env ? getenv(opt->env) : NULL;
        if (!value || !*value) continue;
        if (!cfg_set_value(opt, settings, value, opt->env, err, errlen)) return false;
    }
    return true;
}

/* What a flag asks for besides a setting. */
typedef enum cfg_special { CFG_SPECIAL_NONE, CFG_SPECIAL_HELP, CFG_SPECIAL_VERSION, CFG_SPECIAL_MARKDOWN } cfg_special;

/* --help and friends are found before anything is parsed, so that they work
 * whatever else the command line or the environment holds. */
static cfg_special cfg_scan_special(int argc, char **argv) {
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return CFG_SPECIAL_HELP;
        if (strcmp(argv[i], "--version") == 0) return CFG_SPECIAL_VERSION;
        if (strcmp(argv[i], "--help-markdown") == 0) return CFG_SPECIAL_MARKDOWN;
    }
    return CFG_SPECIAL_NONE;
}

static bool cfg_load_argv(const cfg_program *prog, void *settings, int argc, char **argv, int *npos, char *err,
                          size_t errlen) {
    char **positional = xcalloc((size_t)argc + 1, sizeof *positional);
    int n = 0;
    bool ok = true, options_done = false;
    for (int i = 1; i < argc && ok; i++) {
        char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            positional[n++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const cfg_option *opt = arg[1] == '-' ? cfg_find(prog, name, name_len) : NULL;
        char where[96];
        snprintf(where, sizeof where, "--%.*s", (int)name_len, name);
        if (!opt) {
            cfg_error(err, errlen, "unknown option '%s' (see --help)", arg);
            ok = false;
        } else if (eq) {
            ok = cfg_set_value(opt, settings, eq + 1, where, err, errlen);
        } else if (opt->type == CFG_BOOL) {
            *(bool *)cfg_field(settings, opt) = true;
        } else if (i + 1 < argc) {
            ok = cfg_set_value(opt, settings, argv[++i], where, err, errlen);
        } else {
            cfg_error(err, errlen, "option %s needs a value (see --help)", where);
            ok = false;
        }
    }
    if (ok) {
        for (int i = 0; i < n; i++) argv[i + 1] = positional[i];
        *npos = n;
    }
    free(positional);
    return ok;
}

cfg_result cfg_load(const cfg_program *prog, void *settings, int argc, char **argv, int *npos, FILE *out,
                    char *err, size_t errlen) {
    int none;
    bool takes_positional = npos != NULL;
    if (!npos) npos = &none;
    *npos = 0;
    err[0] = '\0';
    switch (cfg_scan_special(argc, argv)) {
    case CFG_SPECIAL_HELP: cfg_print_help(prog, out); return CFG_EXIT;
    case CFG_SPECIAL_VERSION: fprintf(out, "%s %s\n", prog->name, IMGFEED_VERSION); return CFG_EXIT;
    case CFG_SPECIAL_MARKDOWN: cfg_print_markdown(prog, out); return CFG_EXIT;
    case CFG_SPECIAL_NONE: break;
    }
    if (!cfg_load_defaults(prog, settings, err, errlen)) return CFG_ERROR;
    if (!cfg_load_env(prog, settings, err, errlen)) return CFG_ERROR;
    if (!cfg_load_argv(prog, settings, argc, argv, npos, err, errlen)) return CFG_ERROR;
    if (!takes_positional && *npos > 0) {
        /* a program without operands: a stray word is a mistake (a misspelt command), not ignored */
        cfg_error(err, errlen, "unexpected argument '%s' (see --help)", argv[1]);
        return CFG_ERROR;
    }
    return CFG_OK;
}

void cfg_release(const cfg_program *prog, void *settings) {
    for (const cfg_option *opt = prog->options; opt->name; opt++) {
        if (opt->type == CFG_STRING || opt->type == CFG_CHOICE) {
            char **field = cfg_field(settings, opt);
            free(*field);
            *field = NULL;
        }
    }
}

/* "--prefetch N" as shown in --help. */
static void cfg_flag_text(const cfg_option *opt, char *buf, size_t len) {
    if (opt->type == CFG_BOOL) snprintf(buf, len, "--%s", opt->name);
    else snprintf(buf, len, "--%s %s", opt->name, opt->metavar ? opt->metavar : cfg_type_names[opt->type]);
}

void cfg_print_help(const cfg_program *prog, FILE *out) {
    fprintf(out, "Usage: %s %s\n\n%s\n\nOptions (flags win over the environment):\n", prog->name, prog->usage,
            prog->summary);
    for (const cfg_option *opt = prog->options; opt->name; opt++) {
        char flag[96];
        cfg_flag_text(opt, flag, sizeof flag);
        fprintf(out, "  %-28s %s\n", flag, opt->help);
        if (opt->choices) {
            fprintf(out, "  %-28s one of:", "");
            for (const char *const *c = opt->choices; *c; c++) fprintf(out, " %s", *c);
            fputc('\n', out);
        }
        if (opt->env || opt->defval) {
            fprintf(out, "  %-28s ", "");
            if (opt->env) fprintf(out, "env %s", opt->env);
            if (opt->defval) fprintf(out, "%sdefault %s", opt->env ? "; " : "", opt->defval);
            fputc('\n', out);
        }
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n\n", "--help", "show this help and exit", "--version",
            "show the version and exit");
    fprintf(out, "Sizes take k, M, G suffixes (binary: 64MiB); durations take ms, s, m, h (a bare number is "
                 "seconds).\n");
}

void cfg_print_markdown(const cfg_program *prog, FILE *out) {
    fprintf(out, "| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n");
    for (const cfg_option *opt = prog->options; opt->name; opt++) {
        char flag[96];
        cfg_flag_text(opt, flag, sizeof flag);
        fprintf(out, "| `%s` | %s%s%s | %s%s%s | %s", flag, opt->env ? "`" : "", opt->env ? opt->env : "",
                opt->env ? "`" : "", opt->defval ? "`" : "", opt->defval ? opt->defval : "",
                opt->defval ? "`" : "", opt->help);
        if (opt->choices) {
            fprintf(out, " (");
            for (const char *const *c = opt->choices; *c; c++)
                fprintf(out, "%s`%s`", c == opt->choices ? "" : ", ", *c);
            fprintf(out, ")");
        }
        fprintf(out, " |\n");
    }
}

/* One URL or a comma-separated list of them (the nodes of a cluster). */
bool cfg_check_amqp_url(const char *value, char *why, size_t whylen) {
    bool list = strchr(value, ',') != NULL;
    size_t i = 0;
    for (const char *p = value; p; p = strchr(p, ','), p = p ? p + 1 : NULL) {
        i++;
        while (isspace((unsigned char)*p))
            p++;
        if (strncmp(p, "amqp://", 7) != 0 && strncmp(p, "amqps://", 8) != 0) {
            if (list)
                snprintf(why, whylen, "URL %zu does not start with amqp:// or amqps://", i);
            else
                snprintf(why, whylen, "does not start with amqp:// or amqps://");
            return false;
        }
    }
    mq_url *urls;
    size_t n, bad;
    if (mq_url_list_parse(value, &urls, &n, &bad) != MQ_OK) {
        if (list)
            snprintf(why, whylen, "URL %zu is not amqp[s]://[user[:password]@]host[:port][/vhost]", bad);
        else
            snprintf(why, whylen, "is not amqp[s]://[user[:password]@]host[:port][/vhost]");
        return false;
    }
    mq_url_list_release(urls, n);
    return true;
}

/* An exchange name is part of queue names, routing and table names: keep it
 * to what all three accept. */
bool cfg_check_exchange(const char *value, char *why, size_t whylen) {
    size_t len = strlen(value);
    if (len == 0 || len > 40) {
        snprintf(why, whylen, "must have 1 to 40 characters");
        return false;
    }
    for (const char *c = value; *c; c++) {
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-')) {
            snprintf(why, whylen, "may hold only a-z, 0-9, _ and -");
            return false;
        }
    }
    return true;
}

int cfg_common_apply(const cfg_program *prog, const cfg_common *common) {
    log_level level = LOG_INFO;
    log_format format = LOG_FORMAT_TEXT;
    log_set_program(prog->name);
    if (common->log_level) log_level_parse(common->log_level, &level);
    if (common->log_format) log_format_parse(common->log_format, &format);
    log_set_level(level);
    log_set_format(format);
    metrics_set_program(prog->name);
    char why[512];
    if (metrics_serve(common->metrics_listen, why, sizeof why) != 0) {
        log_error("%s", why);
        return 2;
    }
    return 0;
}

int cfg_main_load(const cfg_program *prog, void *settings, int argc, char **argv, int *npos) {
    char err[512];
    switch (cfg_load(prog, settings, argc, argv, npos, stdout, err, sizeof err)) {
    case CFG_OK: return -1;
    case CFG_EXIT: return 0;
    case CFG_ERROR: break;
    }
    fprintf(stderr, "%s: %s\n", prog->name, err);
    cfg_release(prog, settings);
    return 2;
}
