/* itemtext.c -- mending item texts for jsonb.
 *
 * The repair walks the bytes once, outside and inside strings.  The item has
 * passed json-c's strict parser already (and common/items.c cut it out of
 * its batch), so the walk can rely on balanced brackets and well-formed
 * escapes; it still checks what it relies on and fails rather than read past
 * the end.  See itemtext.h for what is mended.
 */
#include "itemtext.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char itemtext_fffd[] = "\xEF\xBF\xBD";

size_t itemtext_utf8_len(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* no overlong forms */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return n;
}

/* Copy the UTF-8 sequence at S[*I] to OUT[*O], or U+FFFD in place of its
 * first byte when it is not one (false then); both indexes move on. */
static bool itemtext_copy_utf8(const char *s, size_t len, size_t *i, char *out, size_t *o) {
    size_t n = itemtext_utf8_len((const unsigned char *)s + *i, len - *i);
    if (!n) {
        memcpy(out + *o, itemtext_fffd, 3);
        *o += 3;
        *i += 1;
        return false;
    }
    memcpy(out + *o, s + *i, n);
    *o += n;
    *i += n;
    return true;
}

static int itemtext_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The code unit of the \uXXXX escape at S (6 bytes available), or -1. */
static long itemtext_escape_unit(const char *s, size_t avail) {
    if (avail < 6 || s[0] != '\\' || s[1] != 'u') return -1;
    long v = 0;
    for (int k = 2; k < 6; k++) {
        int h = itemtext_hex(s[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The length of the number at S: -?digits(.digits)?([eE][+-]?digits)?, or
 * 0 when S holds none. */
static size_t itemtext_number_len(const char *s, size_t avail) {
    size_t n = 0;
    if (n < avail && s[n] == '-') n++;
    size_t digits = n;
    while (n < avail && s[n] >= '0' && s[n] <= '9')
        n++;
    if (n == digits) return 0;
    if (n < avail && s[n] == '.') {
        n++;
        while (n < avail && s[n] >= '0' && s[n] <= '9')
            n++;
    }
    if (n < avail && (s[n] == 'e' || s[n] == 'E')) {
        n++;
        if (n < avail && (s[n] == '+' || s[n] == '-')) n++;
        while (n < avail && s[n] >= '0' && s[n] <= '9')
            n++;
    }
    return n;
}

/* A bare word outside strings must be true, false or null. */
static bool itemtext_word_ok(const char *s, size_t avail, size_t *wlen) {
    size_t n = 0;
    while (n < avail && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z')))
        n++;
    *wlen = n;
    return (n == 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0)) ||
           (n == 5 && memcmp(s, "false", 5) == 0);
}

size_t itemtext_repair(const char *item, size_t len, char *out, itemtext_repairs *r, char *why, size_t whylen) {
    static const char hexdigits[] = "0123456789abcdef";
    size_t o = 0, i = 0;
    bool in_string = false;
    r->nul = r->utf8 = 0;
    while (i < len) {
        unsigned char c = (unsigned char)item[i];
        if (!in_string) {
            if (c == '"') {
                in_string = true;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                /* A number, exponent and all (2.5e3, 1E+400): its letters are
                 * no bare word.  The strict parser checked its form; jsonb
                 * keeps every digit (numeric). */
                size_t n = itemtext_number_len(item + i, len - i);
                if (n == 0) { /* "-" not followed by a digit: -Infinity */
                    snprintf(why, whylen, "not JSON: %.*s is not a JSON value", (int)(len - i < 20 ? len - i : 20),
                             item + i);
                    return (size_t)-1;
                }
                memcpy(out + o, item + i, n);
                o += n;
                i += n;
                continue;
            } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                size_t wlen;
                if (!itemtext_word_ok(item + i, len - i, &wlen)) {
                    snprintf(why, whylen, "not JSON: %.*s is not a JSON value", (int)(wlen < 20 ? wlen : 20), item + i);
                    return (size_t)-1;
                }
                memcpy(out + o, item + i, wlen);
                o += wlen;
                i += wlen;
                continue;
            }
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c == '"') {
            in_string = false;
            out[o++] = '"';
            i++;
        } else if (c == '\\') {
            long unit = i + 1 < len && item[i + 1] == 'u' ? itemtext_escape_unit(item + i, len - i) : -2;
            if (unit == 0) { /* \u0000: jsonb cannot hold it */
                r->nul++;
                i += 6;
            } else if (unit >= 0xD800 && unit <= 0xDFFF) {
                long low = unit <= 0xDBFF ? itemtext_escape_unit(item + i + 6, len - i - 6) : -1;
                bool paired = low >= 0xDC00 && low <= 0xDFFF;
                if (!paired) r->utf8++; /* a lone surrogate: U+FFFD in its place */
                memcpy(out + o, paired ? item + i : "\\ufffd", paired ? 12 : 6);
                o += paired ? 12 : 6;
                i += paired ? 12 : 6;
            } else if (unit >= 0) {
                memcpy(out + o, item + i, 6);
                o += 6;
                i += 6;
            } else { /* a two-character escape */
                if (i + 1 >= len) break;
                out[o++] = '\\';
                out[o++] = item[i + 1];
                i += 2;
            }
        } else if (c < 0x20) { /* a raw control character: spell it as an escape */
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hexdigits[c >> 4];
            out[o + 5] = hexdigits[c & 15];
            o += 6;
            i++;
        } else if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else if (!itemtext_copy_utf8(item, len, &i, out, &o)) {
            r->utf8++;
        }
    }
    if (in_string || o == 0 || out[o - 1] != '}') {
        snprintf(why, whylen, "not JSON: the item is not a complete object");
        return (size_t)-1;
    }
    if (r->nul || r->utf8) {
        o--; /* before the closing brace */
        size_t k = o;
        while (k > 0 && strchr(" \t\r\n", out[k - 1]))
            k--;
        bool empty = k > 0 && out[k - 1] == '{';
        o += (size_t)sprintf(out + o, "%s\"_repaired\":{\"nul\":%zu,\"utf8\":%zu}}", empty ? "" : ",", r->nul, r->utf8);
    }
    return o;
}

size_t itemtext_repair_string(const char *s, size_t len, char *out) {
    size_t o = 0, i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0) {
            i++;
            continue;
        }
        itemtext_copy_utf8(s, len, &i, out, &o);
    }
    out[o] = '\0';
    return o;
}
