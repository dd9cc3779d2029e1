/* log.h -- one line per event, to stderr.
 *
 * Text lines read "2026-11-21T08:30:00.123Z info  imgfeed-hasher: message";
 * with log_set_format(LOG_FORMAT_JSON) every line is one JSON object
 * {"ts":…,"level":…,"prog":…,"msg":…} for log shippers.  A line is written
 * with one write(2) under a lock, so lines from threads never interleave.
 * Messages follow the project's habit: lower case, the problem first, then
 * on what and why ("cannot open /x: permission denied").
 */
#ifndef IMGFEED_LOG_H
#define IMGFEED_LOG_H

#include <stdbool.h>

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON } log_format;

/* Program name shown on each line; the string must outlive the logger. */
void log_set_program(const char *prog);
void log_set_level(log_level level);
void log_set_format(log_format format);
/* Set the file descriptor lines go to (default 2, stderr). */
void log_set_fd(int fd);
/* Parse "debug", "info", "warn" or "error"; false if it is none of them. */
bool log_level_parse(const char *name, log_level *out);
bool log_format_parse(const char *name, log_format *out);
bool log_enabled(log_level level);

void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
