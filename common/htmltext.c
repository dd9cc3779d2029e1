/* htmltext.c -- entities and tags of HTML text; see htmltext.h. */
#include "htmltext.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

void htmltext_put_utf8(sbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sbuf_add(b, u, n);
}

size_t htmltext_entity(const char *s, size_t n, sbuf *b) {
    size_t semi = 1;
    while (semi < n && semi < 12 && s[semi] != ';')
        semi++;
    if (semi >= n || s[semi] != ';' || semi < 3) return 0;
    const char *name = s + 1;
    size_t len = semi - 1;
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp", '&'}, {"quot", '"'}, {"apos", '\''}, {"lt", '<'}, {"gt", '>'}, {"nbsp", ' '}};
    if (name[0] != '#') {
        for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
            if (strlen(named[i].name) == len && memcmp(named[i].name, name, len) == 0) {
                sbuf_addc(b, named[i].c);
                return semi + 1;
            }
        return 0;
    }
    bool hex = name[1] == 'x' || name[1] == 'X';
    size_t i = hex ? 2 : 1;
    if (i >= len) return 0;
    uint32_t cp = 0;
    for (; i < len; i++) {
        int c = (unsigned char)name[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return 0;
        cp = cp * (hex ? 16 : 10) + (uint32_t)d;
        if (cp > 0x10ffff) return 0;
    }
    if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    htmltext_put_utf8(b, cp);
    return semi + 1;
}

char *htmltext_plain(const char *html, size_t len) {
    sbuf b = {0};
    sbuf_grow(&b, len + 1);
    for (size_t i = 0; i < len;) {
        if (html[i] == '<') {
            const char *end = memchr(html + i, '>', len - i);
            if (!end) break; /* a tag cut short: the rest is markup */
            size_t tl = (size_t)(end - (html + i)) + 1;
            if ((tl >= 4 && strncasecmp(html + i, "<br", 3) == 0) || (tl == 4 && strncasecmp(html + i, "</p>", 4) == 0))
                sbuf_addc(&b, '\n');
            i += tl;
        } else if (html[i] == '&') {
            size_t k = htmltext_entity(html + i, len - i, &b);
            if (!k) sbuf_addc(&b, '&');
            i += k ? k : 1;
        } else {
            sbuf_addc(&b, html[i++]);
        }
    }
    sbuf_addc(&b, '\0');
    return b.p;
}
