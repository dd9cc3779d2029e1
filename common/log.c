/* log.c -- timestamped, levelled log lines in text or JSON.
 *
 * Each line is formatted into a stack buffer (long messages are cut with
 * "…") and written with a single write(2) under a mutex.  The JSON form
 * escapes the message itself rather than pulling in json-c, so logging never
 * allocates.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

#define LOG_LINE_MAX 4096

static struct {
    const char *prog;
    log_level level;
    log_format format;
    int fd;
    pthread_mutex_t lock;
} logger = {"imgfeed", LOG_INFO, LOG_FORMAT_TEXT, 2, PTHREAD_MUTEX_INITIALIZER};

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_set_program(const char *prog) { logger.prog = prog; }
void log_set_level(log_level level) { logger.level = level; }
void log_set_format(log_format format) { logger.format = format; }
void log_set_fd(int fd) { logger.fd = fd; }
bool log_enabled(log_level level) { return level >= logger.level; }

bool log_level_parse(const char *name, log_level *out) {
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return true;
    }
    return false;
}

bool log_format_parse(const char *name, log_format *out) {
    if (strcmp(name, "text") == 0) *out = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0) *out = LOG_FORMAT_JSON;
    else return false;
    return true;
}

/* "2026-11-21T08:30:00.123Z" */
static void log_timestamp(char *buf, size_t len) {
    int64_t ms = time_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* Append s to out[*pos..cap) as the inside of a JSON string. */
static void log_json_escape(char *out, size_t *pos, size_t cap, const char *s) {
    for (; *s && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = (char)c;
        } else if (c == '\n') {
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'n';
        } else if (c < 0x20) {
            *pos += (size_t)snprintf(out + *pos, cap - *pos, "\\u%04x", c);
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

static void log_emit(const char *line, size_t len) {
    pthread_mutex_lock(&logger.lock);
    while (len > 0) {
        ssize_t n = write(logger.fd, line, len);
        if (n <= 0) break;
        line += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&logger.lock);
}

void log_write(log_level level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    char msg[LOG_LINE_MAX - 256], ts[32], line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m >= (int)sizeof msg) memcpy(msg + sizeof msg - 4, "\xe2\x80\xa6", 4); /* "…" */
    log_timestamp(ts, sizeof ts);

    size_t pos;
    if (logger.format == LOG_FORMAT_JSON) {
        pos = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", ts,
                               log_level_names[level]);
        log_json_escape(line, &pos, sizeof line - 4, logger.prog);
        pos += (size_t)snprintf(line + pos, sizeof line - pos, "\",\"msg\":\"");
        log_json_escape(line, &pos, sizeof line - 4, msg);
        line[pos++] = '"';
        line[pos++] = '}';
    } else {
        int n = snprintf(line, sizeof line, "%s %-5s %s: %s", ts, log_level_names[level], logger.prog, msg);
        pos = n < (int)sizeof line - 1 ? (size_t)n : sizeof line - 2;
    }
    line[pos++] = '\n';
    log_emit(line, pos);
}
