/* urltmpl.c -- percent-encoding and {name} templates.
 *
 * Both write into an sbuf.  urltmpl_expand walks the template once: text up
 * to the next '{' is copied, a "{name}" whose name is in the table (and
 * whose value is not NULL) is replaced by its value, anything else is
 * copied as it stands, the '{' included, and the walk goes on after it.
 */
#include "urltmpl.h"

#include <string.h>

static bool urltmpl_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

void urltmpl_percent_encode_to(sbuf *out, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (urltmpl_unreserved(*p)) {
            sbuf_addc(out, (char)*p);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sbuf_add(out, enc, 3);
        }
    }
}

static int urltmpl_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int urltmpl_percent_decode_to(sbuf *out, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            sbuf_addc(out, s[i]);
            continue;
        }
        int hi = i + 2 < len ? urltmpl_hexval(s[i + 1]) : -1, lo = i + 2 < len ? urltmpl_hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
        sbuf_addc(out, (char)(hi * 16 + lo));
        i += 2;
    }
    return 0;
}

char *urltmpl_percent_encode(const char *s) {
    if (!s) return NULL;
    sbuf out = {0};
    sbuf_grow(&out, 3 * strlen(s) + 1);
    urltmpl_percent_encode_to(&out, s);
    sbuf_addc(&out, '\0');
    return out.p;
}

/* The variable named by the LEN bytes at NAME, or NULL. */
static const urltmpl_var *urltmpl_find(const urltmpl_var *vars, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++) {
        if (vars[i].name && strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) return &vars[i];
    }
    return NULL;
}

char *urltmpl_expand(const char *tmpl, const urltmpl_var *vars, size_t n) {
    if (!tmpl) return NULL;
    sbuf out = {0};
    sbuf_grow(&out, strlen(tmpl) + 1);
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) {
            sbuf_add(&out, p, strlen(p));
            break;
        }
        sbuf_add(&out, p, (size_t)(open - p));
        const char *close = strpbrk(open + 1, "{}");
        const urltmpl_var *v = NULL;
        if (close && *close == '}') v = urltmpl_find(vars, n, open + 1, (size_t)(close - open - 1));
        if (v && v->value) {
            if (v->encode) {
                urltmpl_percent_encode_to(&out, v->value);
            } else {
                sbuf_add(&out, v->value, strlen(v->value));
            }
            p = close + 1;
        } else {
            sbuf_addc(&out, '{');
            p = open + 1;
        }
    }
    sbuf_addc(&out, '\0');
    return out.p;
}
