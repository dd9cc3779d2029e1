/* sbuf.c -- a growing byte buffer; see sbuf.h. */
#include "sbuf.h"

#include <string.h>

#include "xalloc.h"

#define SBUF_FIRST_CAP 256

void sbuf_grow(sbuf *b, size_t more) {
    if (b->cap - b->len >= more) return;
    size_t cap = b->cap ? b->cap : SBUF_FIRST_CAP;
    while (cap - b->len < more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

void sbuf_add(sbuf *b, const char *s, size_t n) {
    sbuf_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void sbuf_addc(sbuf *b, char c) {
    sbuf_grow(b, 1);
    b->p[b->len++] = c;
}

bool sbuf_add_stream(sbuf *b, FILE *f) {
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sbuf_add(b, chunk, n);
    return !ferror(f);
}
