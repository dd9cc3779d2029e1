/* entry.c -- `_img` fields into a catalog image; see entry.h. */
#include "entry.h"

#include <string.h>

#include "imghash/imghash.h"

int entry_hash_decode(const char *s, unsigned char *out, size_t *len) {
    if (!s) return -1;
    size_t l = strlen(s);
    if (l == 0 || ih_hashenc_parse_base64(s, l, out, CATALOG_HASH_MAX, len) != 0 || *len == 0) return -1;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int entry_hex_decode(const char *s, unsigned char *out, size_t n) {
    if (!s || strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

bool entry_from_fields(uint32_t n, const char *phash, const char *dhash, const char *sha1, const char *md5,
                       catalog_image *out, unsigned *bad) {
    memset(out, 0, sizeof *out);
    out->n = n;
    if (phash && entry_hash_decode(phash, out->phash, &out->phash_len) != 0) {
        out->phash_len = 0;
        (*bad)++;
    }
    if (dhash && entry_hash_decode(dhash, out->dhash, &out->dhash_len) != 0) {
        out->dhash_len = 0;
        (*bad)++;
    }
    if (sha1) {
        out->has_sha1 = entry_hex_decode(sha1, out->sha1, sizeof out->sha1) == 0;
        if (!out->has_sha1) (*bad)++;
    }
    if (md5) {
        out->has_md5 = entry_hex_decode(md5, out->md5, sizeof out->md5) == 0;
        if (!out->has_md5) (*bad)++;
    }
    return out->phash_len || out->dhash_len;
}

static const char *string_member(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

bool entry_from_json(json_object *e, catalog_image *out, unsigned *bad) {
    json_object *url = NULL;
    if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "url", &url) ||
        !json_object_is_type(url, json_type_int))
        return false;
    int64_t n = json_object_get_int64(url);
    if (n < 0 || n > INT32_MAX) return false;
    return entry_from_fields((uint32_t)n, string_member(e, "phash"), string_member(e, "dhash"),
                             string_member(e, "sha1"), string_member(e, "md5"), out, bad);
}
