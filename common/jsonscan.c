/* jsonscan.c -- a JSON syntax walk that counts instead of building; see
 * jsonscan.h.
 *
 * One loop over the bytes with an explicit stack of open containers and a
 * state saying what may come next: a value, a key (or the end of an empty
 * object), a value (or the end of an empty array), or what follows a value
 * (a comma, or the end of its container).  Scalars are scanned in place. */
#include "jsonscan.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Per-node costs of json-c 0.16 on x86-64, measured (bytes; see .h). */
#define JSONSCAN_OBJECT_BYTES 800
#define JSONSCAN_ARRAY_BYTES 160
#define JSONSCAN_MEMBER_BYTES 176
#define JSONSCAN_ELEMENT_BYTES 16
#define JSONSCAN_SCALAR_BYTES 80

static int jsonscan_fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define JSONSCAN_TRUNCATED "not JSON: truncated, the text ends inside a value (%zu bytes)"

static int jsonscan_fail(char *why, size_t whylen, const char *fmt, ...) {
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool jsonscan_is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int jsonscan_skip_space(const char *s, size_t len, size_t *pos) {
    while (*pos < len && jsonscan_is_space(s[*pos]))
        (*pos)++;
    return *pos < len ? (unsigned char)s[*pos] : -1;
}

static bool jsonscan_is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The string at s[*i] == '"': move past its closing quote, counting its
 * bytes and raw control characters in COST.  0, -1 for a bad escape, -2
 * when the text ends inside it. */
static int jsonscan_string(const char *s, size_t len, size_t *i, jsonscan_cost *cost) {
    /* k is local and the plain bytes are passed in a tight loop: the string
     * walk is most of the crawler's scanning time */
    size_t start = *i + 1, k = start;
    for (;;) {
        while (k < len && (unsigned char)s[k] >= 0x20 && s[k] != '"' && s[k] != '\\')
            k++;
        if (k >= len) break;
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"') {
            cost->string_bytes += k - start;
            *i = k + 1;
            return 0;
        }
        if (ch == '\\') {
            if (k + 1 >= len) break;
            char e = s[k + 1];
            if (e == 'u') {
                if (k + 6 > len) break;
                for (size_t h = 2; h < 6; h++) {
                    if (!jsonscan_is_hex(s[k + h])) {
                        *i = k;
                        return -1;
                    }
                }
                k += 6;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                k += 2;
            } else {
                *i = k;
                return -1;
            }
        } else { /* a raw control character */
            cost->control_bytes++;
            k++;
        }
    }
    *i = k;
    return -2;
}

/* A number at s[*i]: -?digits(.digits)?([eE][+-]?digits)?  0, or -1. */
static int jsonscan_number(const char *s, size_t len, size_t *i) {
    size_t k = *i;
    if (k < len && s[k] == '-') k++;
    size_t digits = k;
    while (k < len && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k == digits) return -1;
    if (k < len && s[k] == '.') {
        size_t frac = ++k;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == frac) return -1;
    }
    if (k < len && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < len && (s[k] == '+' || s[k] == '-')) k++;
        size_t exp = k;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == exp) return -1;
    }
    *i = k;
    return 0;
}

/* A bare word at s[*i]: true, false, null, NaN, Infinity, -Infinity. */
static int jsonscan_word(const char *s, size_t len, size_t *i) {
    static const char *const words[] = {"true", "false", "null", "NaN", "Infinity", "-Infinity"};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t n = strlen(words[w]);
        if (len - *i >= n && memcmp(s + *i, words[w], n) == 0) {
            *i += n;
            return 0;
        }
    }
    return -1;
}

typedef enum jsonscan_want {
    JSONSCAN_VALUE,          /* a value */
    JSONSCAN_VALUE_OR_CLOSE, /* a value, or ']' of an empty array */
    JSONSCAN_KEY,            /* a member's key */
    JSONSCAN_KEY_OR_CLOSE,   /* a key, or '}' of an empty object */
    JSONSCAN_AFTER,          /* ',' or the end of the container */
} jsonscan_want;

int jsonscan_value(const char *s, size_t len, size_t *pos, jsonscan_cost *cost, char *why, size_t whylen) {
    jsonscan_cost local = {0};
    jsonscan_cost *c = cost ? cost : &local;
    char stack[JSONSCAN_MAX_DEPTH];
    size_t depth = 0, i = *pos, first = *pos;
    jsonscan_want want = JSONSCAN_VALUE;
    for (;;) {
        int ch = jsonscan_skip_space(s, len, &i);
        *pos = i;
        if (ch < 0) return jsonscan_fail(why, whylen, JSONSCAN_TRUNCATED, len);
        switch (want) {
        case JSONSCAN_KEY_OR_CLOSE:
        case JSONSCAN_VALUE_OR_CLOSE:
            if (ch == (want == JSONSCAN_KEY_OR_CLOSE ? '}' : ']')) {
                depth--;
                i++;
                want = JSONSCAN_AFTER;
                break;
            }
            if (want == JSONSCAN_VALUE_OR_CLOSE) {
                want = JSONSCAN_VALUE;
                continue;
            }
            __attribute__((fallthrough)); /* to a key */
        case JSONSCAN_KEY:
            if (ch != '"') return jsonscan_fail(why, whylen, "not JSON: expected a key at byte %zu", i);
            int krc = jsonscan_string(s, len, &i, c);
            if (krc == -2) return jsonscan_fail(why, whylen, JSONSCAN_TRUNCATED, len);
            if (krc != 0) return jsonscan_fail(why, whylen, "not JSON: a bad escape in the string at byte %zu", *pos);
            c->members++;
            if (jsonscan_skip_space(s, len, &i) != ':') {
                *pos = i;
                return jsonscan_fail(why, whylen, "not JSON: expected ':' at byte %zu", i);
            }
            i++;
            want = JSONSCAN_VALUE;
            break;
        case JSONSCAN_VALUE:
            if (depth && stack[depth - 1] == '[') c->elements++;
            if (ch == '{' || ch == '[') {
                if (depth == JSONSCAN_MAX_DEPTH)
                    return jsonscan_fail(why, whylen, "not JSON: nested deeper than %d levels at byte %zu",
                                         JSONSCAN_MAX_DEPTH, i);
                stack[depth++] = (char)ch;
                if (ch == '{')
                    c->objects++;
                else
                    c->arrays++;
                i++;
                want = ch == '{' ? JSONSCAN_KEY_OR_CLOSE : JSONSCAN_VALUE_OR_CLOSE;
                break;
            }
            int rc;
            if (ch == '"')
                rc = jsonscan_string(s, len, &i, c);
            else if (ch == '-' && i + 1 < len && s[i + 1] == 'I')
                rc = jsonscan_word(s, len, &i);
            else if (ch == '-' || (ch >= '0' && ch <= '9'))
                rc = jsonscan_number(s, len, &i);
            else
                rc = jsonscan_word(s, len, &i);
            if (rc == -2) return jsonscan_fail(why, whylen, JSONSCAN_TRUNCATED, len);
            if (rc != 0 && ch == '"')
                return jsonscan_fail(why, whylen, "not JSON: a bad escape in the string at byte %zu", *pos);
            if (rc != 0) return jsonscan_fail(why, whylen, "not JSON: a bad value at byte %zu", *pos);
            c->scalars++;
            want = JSONSCAN_AFTER;
            break;
        case JSONSCAN_AFTER:
            if (ch == ',') {
                i++;
                want = stack[depth - 1] == '{' ? JSONSCAN_KEY : JSONSCAN_VALUE;
            } else if (ch == (stack[depth - 1] == '{' ? '}' : ']')) {
                depth--;
                i++;
            } else {
                return jsonscan_fail(why, whylen, "not JSON: expected ',' or '%c' at byte %zu",
                                     stack[depth - 1] == '{' ? '}' : ']', i);
            }
            break;
        }
        if (want == JSONSCAN_AFTER && depth == 0) {
            *pos = i;
            c->text_bytes += i - first;
            return 0;
        }
    }
}

uint64_t jsonscan_print_estimate(const jsonscan_cost *c) { return 2 * (c->text_bytes + 5 * c->control_bytes); }

uint64_t jsonscan_estimate(const jsonscan_cost *c) {
    return c->objects * JSONSCAN_OBJECT_BYTES + c->arrays * JSONSCAN_ARRAY_BYTES + c->members * JSONSCAN_MEMBER_BYTES +
           c->elements * JSONSCAN_ELEMENT_BYTES + c->scalars * JSONSCAN_SCALAR_BYTES + c->string_bytes;
}

json_object *jsonscan_parse_object(const char *body, size_t len, uint64_t max_tree, const char *what, const char *doc,
                                   char *why, size_t whylen) {
    size_t pos = 0;
    jsonscan_cost cost = {0};
    char reason[200];
    if (jsonscan_skip_space(body, len, &pos) < 0) {
        (void)jsonscan_fail(why, whylen, "not JSON: the body is empty");
        return NULL;
    }
    if (body[pos] != '{') {
        (void)jsonscan_fail(why, whylen, "%s: the body does not start with '{' (%s)", what,
                body[pos] == '<' ? "HTML?" : "not an object");
        return NULL;
    }
    if (jsonscan_value(body, len, &pos, &cost, reason, sizeof reason) != 0) {
        (void)jsonscan_fail(why, whylen, "%s", reason);
        return NULL;
    }
    if (jsonscan_skip_space(body, len, &pos) >= 0) {
        (void)jsonscan_fail(why, whylen, "not JSON: text after the value at byte %zu", pos);
        return NULL;
    }
    uint64_t need = jsonscan_estimate(&cost);
    if (max_tree && need > max_tree) {
        (void)jsonscan_fail(why, whylen, "too complex: %s would take about %llu bytes of json-c tree, above %llu",
                doc, (unsigned long long)need, (unsigned long long)max_tree);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSONSCAN_MAX_DEPTH + 1);
    if (!tok) {
        (void)jsonscan_fail(why, whylen, "out of memory for the tokener");
        return NULL;
    }
    json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || err != json_tokener_success) {
        json_object_put(root);
        (void)jsonscan_fail(why, whylen, "not JSON: %s", json_tokener_error_desc(err));
        return NULL;
    }
    return root;
}

/* --- a document a piece at a time --- */

int jsonscan_body(const char *body, size_t len, jsonscan_cost *cost, char *why, size_t whylen) {
    size_t pos = 0;
    if (jsonscan_skip_space(body, len, &pos) < 0) return jsonscan_fail(why, whylen, "not JSON: empty body");
    char reason[160];
    if (jsonscan_value(body, len, &pos, cost, reason, sizeof reason) != 0)
        return jsonscan_fail(why, whylen, "%s", reason);
    if (jsonscan_skip_space(body, len, &pos) >= 0)
        return jsonscan_fail(why, whylen, "not JSON: unexpected bytes after the value at byte %zu", pos);
    return 0;
}

void jsonscan_members(const char *s, size_t len, size_t start, const char *const *keys, size_t n, size_t *vstart,
                      size_t *vend) {
    for (size_t k = 0; k < n; k++)
        vstart[k] = vend[k] = 0;
    size_t i = start + 1;
    if (jsonscan_skip_space(s, len, &i) == '}') return;
    for (;;) {
        size_t ks = i;
        jsonscan_value(s, len, &i, NULL, NULL, 0); /* the key */
        size_t klen = i - ks - 2;
        jsonscan_skip_space(s, len, &i); /* ':' */
        i++;
        jsonscan_skip_space(s, len, &i);
        size_t vs = i;
        jsonscan_value(s, len, &i, NULL, NULL, 0);
        for (size_t k = 0; k < n; k++) {
            if (strlen(keys[k]) == klen && memcmp(s + ks + 1, keys[k], klen) == 0) {
                vstart[k] = vs;
                vend[k] = i;
            }
        }
        if (jsonscan_skip_space(s, len, &i) != ',') return;
        i++;
        jsonscan_skip_space(s, len, &i);
    }
}

bool jsonscan_member(const char *s, size_t len, size_t start, const char *key, size_t *vstart, size_t *vend) {
    const char *const keys[] = {key};
    jsonscan_members(s, len, start, keys, 1, vstart, vend);
    return *vend != 0;
}

bool jsonscan_fits(const jsonscan_cost *cost, uint64_t max_tree, bool printed, const char *what, char *why,
                   size_t whylen) {
    uint64_t need = jsonscan_estimate(cost) + (printed ? jsonscan_print_estimate(cost) : 0);
    if (!max_tree || need <= max_tree) return true;
    (void)jsonscan_fail(why, whylen,
                        "%s is too complex to parse: it would take about %.1f MB, more than --max-parse-memory (%.1f MB)",
                        what, (double)need / 1e6, (double)max_tree / 1e6);
    return false;
}

bool jsonscan_element(const char *s, size_t len, size_t *pos, size_t *es, size_t *ee, jsonscan_cost *cost) {
    size_t i = *pos;
    if (i < len && s[i] == '[') {
        i++; /* the first element, if any */
    } else {
        if (jsonscan_skip_space(s, len, &i) != ',') return false; /* ']' */
        i++;
    }
    if (jsonscan_skip_space(s, len, &i) == ']') return false;
    if (cost) *cost = (jsonscan_cost){0};
    *es = i;
    jsonscan_value(s, len, &i, cost, NULL, 0);
    *ee = *pos = i;
    return true;
}

json_object *jsonscan_parse_body(const char *body, size_t len, uint64_t max_tree, bool printed, char *why,
                                 size_t whylen) {
    jsonscan_cost cost = {0};
    if (jsonscan_body(body, len, &cost, why, whylen) != 0) return NULL;
    if (!jsonscan_fits(&cost, max_tree, printed, "the body", why, whylen)) return NULL;
    return jsonscan_parse_span(body, len, "the body", why, whylen);
}

json_object *jsonscan_parse_span(const char *text, size_t len, const char *what, char *why, size_t whylen) {
    if (len > INT_MAX) {
        (void)jsonscan_fail(why, whylen, "%s too large to parse: %zu bytes", what, len);
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!obj && err == json_tokener_continue) { /* a bare number at the very end */
        tok = json_tokener_new();
        json_tokener_parse_ex(tok, text, (int)len);
        obj = json_tokener_parse_ex(tok, " ", 1);
        err = json_tokener_get_error(tok);
        json_tokener_free(tok);
    }
    if (!obj || (err != json_tokener_success && err != json_tokener_continue)) {
        (void)jsonscan_fail(why, whylen, "not JSON: %s in %s at byte %zu", json_tokener_error_desc(err), what, end);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}
