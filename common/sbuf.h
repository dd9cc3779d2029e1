/* sbuf.h -- a growing byte buffer.
 *
 * p holds len bytes in cap; a zeroed sbuf is empty and ready.  Growing
 * doubles the capacity (from 256 bytes) until the bytes asked for fit, and
 * aborts on out-of-memory like xalloc.  The owner frees p.  The crawler's
 * scratch text, the hasher's published items and the archiver's arena of
 * item texts are sbufs.
 */
#ifndef IMGFEED_SBUF_H
#define IMGFEED_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Room for MORE bytes after the len in use (p may move). */
void sbuf_grow(sbuf *b, size_t more);
/* Append the N bytes at S. */
void sbuf_add(sbuf *b, const char *s, size_t n);
/* Append the byte C. */
void sbuf_addc(sbuf *b, char c);
/* Append what is left to read of F, up to its end; false on a read error
 * (what was read before it is kept). */
bool sbuf_add_stream(sbuf *b, FILE *f);

#endif
