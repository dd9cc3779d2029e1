/* config.h -- settings from flags and IMGFEED_* environment variables.
 *
 * Each program describes its settings in one table of cfg_option: the flag,
 * the environment variable, the type, the default, the help text and the
 * accepted range.  cfg_load() fills the program's settings struct from that
 * table in three layers, defaults < environment < command line, and the same
 * table prints --help and the README's settings tables (--help-markdown), so
 * the documentation and the parser never disagree.
 *
 * Value syntax:
 *   string, choice  as written; a choice must be one of the listed names
 *   int, double     a number within [min, max] when min < max
 *   bool            "--flag" alone means true; "--flag=false", or in the
 *                   environment 1/0, true/false, yes/no, on/off
 *   bytes           a count with an optional binary suffix: 512k, 64MiB, 1G
 *   millis          a duration: 250ms, 1.5s, 10m, 2h; a bare number is seconds
 * An empty environment variable counts as unset.
 *
 * Ownership: strings stored in the settings struct are allocated by cfg_load
 * and freed by cfg_release.
 */
#ifndef IMGFEED_CONFIG_H
#define IMGFEED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cfg_type {
    CFG_STRING, /* char *  */
    CFG_CHOICE, /* char *, one of choices */
    CFG_INT,    /* long    */
    CFG_DOUBLE, /* double  */
    CFG_BOOL,   /* bool    */
    CFG_BYTES,  /* int64_t */
    CFG_MILLIS, /* int64_t */
} cfg_type;

typedef struct cfg_option {
    const char *name;            /* flag without dashes: "amqp-url"; NULL ends a table */
    const char *env;             /* "IMGFEED_AMQP_URL", or NULL for flag-only */
    cfg_type type;
    size_t offset;               /* offsetof the value in the settings struct */
    const char *defval;          /* default as it would be typed; NULL: none (string NULL, number 0) */
    const char *help;            /* one sentence */
    const char *const *choices;  /* CFG_CHOICE: NULL-terminated */
    double min, max;             /* numbers: accepted range when min < max */
    const char *metavar;         /* the value's name in --help ("URL"); NULL: from the type */
    /* Further check of a value that parsed; false with a reason in why. */
    bool (*check)(const char *value, char *why, size_t whylen);
} cfg_option;

typedef struct cfg_program {
    const char *name;      /* "imgfeed-crawler" */
    const char *usage;     /* after the name: "[OPTION]..." */
    const char *summary;   /* a paragraph for --help */
    const cfg_option *options;
} cfg_program;

typedef enum cfg_result {
    CFG_OK = 0,     /* settings filled; go on */
    CFG_EXIT = 1,   /* --help, --version or --help-markdown was printed; exit 0 */
    CFG_ERROR = -1, /* err holds a one-line message; exit 2 */
} cfg_result;

/* Fill *settings from the table.  Positional arguments (options may stand
 * anywhere; "--" ends them) are moved, in order, to argv[1..*npos]; with
 * NPOS NULL the program takes none, and one is an error ("unexpected
 * argument", exit 2), so that a misspelt command does not start a daemon. */
cfg_result cfg_load(const cfg_program *prog, void *settings, int argc, char **argv, int *npos, FILE *out,
                    char *err, size_t errlen);
/* Free the strings cfg_load stored; the struct may be loaded again after. */
void cfg_release(const cfg_program *prog, void *settings);
void cfg_print_help(const cfg_program *prog, FILE *out);
/* The settings as a Markdown table: flag, environment, default, meaning. */
void cfg_print_markdown(const cfg_program *prog, FILE *out);
/* Parse one value as the option's type would; for validators and tests. */
bool cfg_parse_bytes(const char *s, int64_t *out);
bool cfg_parse_millis(const char *s, int64_t *out);

/* The settings every imgfeed process has (design.md, "Configuration"). */
typedef struct cfg_common {
    char *amqp_url;
    char *exchange;
    char *log_level;
    char *log_format;
    int64_t amqp_heartbeat_ms;
    int64_t max_message_bytes; /* largest message body published (mq_options.max_message_bytes) */
    char *metrics_listen;      /* where GET /metrics is served (metrics.h); NULL or "": nowhere */
    char *amqp_cacert;         /* amqps: CA bundle to verify the broker with; NULL or "": the system's */
    char *queue_type;          /* "classic" or "quorum" (mq.h, mq_queue_type_names) */
    long delivery_limit;       /* quorum queues: deliveries before a message is dead-lettered */
} cfg_common;

extern const char *const cfg_log_levels[];
extern const char *const cfg_log_formats[];
extern const char *const cfg_queue_types[];

/* Table rows for a cfg_common stored at member M of settings type T. */
#define CFG_COMMON_OPTIONS(T, M)                                                                               \
    {.name = "amqp-url", .env = "IMGFEED_AMQP_URL", .type = CFG_STRING, .offset = offsetof(T, M.amqp_url),    \
     .defval = "amqp://guest:guest@localhost:5672", .metavar = "URL", .check = cfg_check_amqp_url,            \
     .help = "broker URL, amqp:// or amqps://, or the URLs of a cluster's nodes separated by commas (a "      \
             "process fails over to the next node when its own goes away); a trailing / names the empty "     \
             "vhost, /%2f names /"},                                                                          \
    {.name = "amqp-cacert", .env = "IMGFEED_AMQP_CACERT", .type = CFG_STRING,                                  \
     .offset = offsetof(T, M.amqp_cacert), .metavar = "FILE",                                                  \
     .help = "CA certificates (PEM) that an amqps:// broker's certificate must be signed by; empty: the "     \
             "system's"},                                                                                     \
    {.name = "queue-type", .env = "IMGFEED_QUEUE_TYPE", .type = CFG_CHOICE, .offset = offsetof(T, M.queue_type), \
     .defval = "classic", .choices = cfg_queue_types,                                                          \
     .help = "type of the queues E.hasher, E.archiver, E.dead and durable consumer queues: classic (one "     \
             "broker) or quorum (replicated over a cluster); every process of one exchange must agree"},      \
    {.name = "delivery-limit", .env = "IMGFEED_DELIVERY_LIMIT", .type = CFG_INT,                               \
     .offset = offsetof(T, M.delivery_limit), .defval = "20", .min = 1, .max = 1000000,                       \
     .help = "quorum queues: a message delivered this many times without being acknowledged (a consumer "     \
             "that dies on it) goes to E.dead"},                                                              \
    {.name = "exchange", .env = "IMGFEED_EXCHANGE", .type = CFG_STRING, .offset = offsetof(T, M.exchange),    \
     .defval = "chan", .metavar = "NAME", .check = cfg_check_exchange,                                         \
     .help = "exchange name E: items flow E.raw -> hasher -> E -> archiver; E.dead holds rejects"},            \
    {.name = "amqp-heartbeat", .env = "IMGFEED_AMQP_HEARTBEAT", .type = CFG_MILLIS,                            \
     .offset = offsetof(T, M.amqp_heartbeat_ms), .defval = "30s", .min = 0, .max = 3600000,                   \
     .help = "AMQP heartbeat: a broker silent for twice this long is taken as dead (0 turns it off)"},         \
    {.name = "max-message", .env = "IMGFEED_MAX_MESSAGE", .type = CFG_BYTES,                                   \
     .offset = offsetof(T, M.max_message_bytes), .defval = "16MiB", .min = 1024, .max = 134217728,             \
     .help = "largest message body published; more items are split over several messages (RabbitMQ's own "   \
             "limit, max_message_size, is 128MiB by default)"},                                               \
    {.name = "metrics-listen", .env = "IMGFEED_METRICS_LISTEN", .type = CFG_STRING,                            \
     .offset = offsetof(T, M.metrics_listen), .metavar = "HOST:PORT",                                          \
     .help = "serve Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md); empty: not served"},     \
    {.name = "log-level", .env = "IMGFEED_LOG_LEVEL", .type = CFG_CHOICE, .offset = offsetof(T, M.log_level), \
     .defval = "info", .choices = cfg_log_levels, .help = "least severe level logged"},                       \
    {.name = "log-format", .env = "IMGFEED_LOG_FORMAT", .type = CFG_CHOICE,                                    \
     .offset = offsetof(T, M.log_format), .defval = "text", .choices = cfg_log_formats,                       \
     .help = "text lines, or json lines for log shippers"}

/* Table rows of the programs that read the archive without a broker
 * (imgfeed-search dupes, imgfeed-export, imgfeed-report): --pg at member PG
 * and --exchange at member EX of settings type T, EXHELP saying what the
 * exchange is used for. */
#define CFG_ARCHIVE_OPTIONS(T, PG, EX, EXHELP)                                                                  \
    {.name = "pg", .env = "IMGFEED_PG", .type = CFG_STRING, .offset = offsetof(T, PG), .defval = "dbname=imgfeed", \
     .metavar = "CONNINFO", .help = "the archive: a libpq conninfo string or a postgresql:// URI"},              \
    {.name = "exchange", .env = "IMGFEED_EXCHANGE", .type = CFG_STRING, .offset = offsetof(T, EX),              \
     .defval = "chan", .metavar = "NAME", .check = cfg_check_exchange, .help = EXHELP}

/* Validators for the common settings. */
bool cfg_check_amqp_url(const char *value, char *why, size_t whylen);
bool cfg_check_exchange(const char *value, char *why, size_t whylen);

/* Apply the common settings: the logger, and the metrics listener
 * (metrics_serve) when --metrics-listen is set.  Call once after cfg_load;
 * 0, or 2 (the exit status) when the listener cannot start, logged. */
int cfg_common_apply(const cfg_program *prog, const cfg_common *common);

/* Load settings for a main(): prints help or the error itself and returns
 * -1 to go on, or the exit status to return (0 after --help, 2 on error). */
int cfg_main_load(const cfg_program *prog, void *settings, int argc, char **argv, int *npos);

#endif
