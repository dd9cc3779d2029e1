/* tablename.c -- routing key to table name; see tablename.h.
 *
 * The hash that keeps truncated names apart is 32-bit FNV-1a: stable across
 * machines and versions, which is all a name needs.
 */
#include "tablename.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TABLENAME_KEEP (TABLENAME_MAX - 9) /* bytes kept before "_" and 8 hex digits */

static uint32_t tablename_fnv1a(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Append S[0..len) to OUT at *n, sanitized, up to CAP bytes. */
static void tablename_append(char *out, size_t *n, size_t cap, const char *s, size_t len) {
    for (size_t i = 0; i < len && *n < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
        out[(*n)++] = (char)c;
    }
}

bool tablename_from_key(const char *exchange, const char *routing_key, char *out, char *why, size_t whylen) {
    const char *last_dot = strrchr(routing_key, '.');
    const char *first_dot = strchr(routing_key, '.');
    if (!last_dot) {
        snprintf(why, whylen, "routing key \"%.100s\" is not <site>.<type>.<board>", routing_key);
        return false;
    }
    if (first_dot == routing_key) {
        snprintf(why, whylen, "routing key \"%.100s\" has an empty site", routing_key);
        return false;
    }
    if (last_dot[-1] == '.') {
        snprintf(why, whylen, "routing key \"%.100s\" has an empty type", routing_key);
        return false;
    }
    /* The whole sanitized name, as long as it is, for the hash. */
    size_t elen = strlen(exchange), klen = (size_t)(last_dot - routing_key);
    char full[1024];
    size_t n = 0, cap = sizeof full;
    tablename_append(full, &n, cap, exchange, elen);
    if (n < cap) full[n++] = '_';
    tablename_append(full, &n, cap, routing_key, klen);
    bool whole = elen + 1 + klen <= cap; /* else the hash covers the first 1024 bytes */
    uint32_t h = tablename_fnv1a(full, n);
    if (!whole) {
        /* Fold in the rest of the key too, so very long keys stay apart. */
        for (size_t i = cap - elen - 1; i < klen; i++)
            h = (h ^ (unsigned char)routing_key[i]) * 16777619u;
    }
    if (n <= TABLENAME_MAX && whole) {
        memcpy(out, full, n);
        out[n] = '\0';
        return true;
    }
    memcpy(out, full, TABLENAME_KEEP);
    snprintf(out + TABLENAME_KEEP, TABLENAME_MAX + 1 - TABLENAME_KEEP, "_%08x", h);
    return true;
}
