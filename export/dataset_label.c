/* dataset_label.c -- safe folder names for labels, splits by sha1; see
 * dataset_label.h.
 *
 * UTF-8 is checked strictly (no overlong forms, no surrogates, nothing past
 * U+10FFFF), so that a name cut on a character boundary is still valid
 * UTF-8 and a file manager shows what the manifest says.
 */
#include "dataset_label.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "sbuf.h"
#include "xalloc.h"

const char *dataset_split_name(dataset_split s) {
    switch (s) {
    case DATASET_TRAIN: return "train";
    case DATASET_VAL: return "val";
    default: return "test";
    }
}

dataset_split dataset_split_of(const unsigned char *sha1, double train, double val) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | sha1[i];
    double u = (double)(x >> 11) / 9007199254740992.0; /* 2^53: exact */
    if (u < train) return DATASET_TRAIN;
    if (u < train + val) return DATASET_VAL;
    return DATASET_TEST;
}

/* The length of the valid UTF-8 character at S (at most LEFT bytes), or 0. */
static size_t utf8_char(const unsigned char *s, size_t left) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c == 0xe0)
        n = 3, lo = 0xa0;
    else if (c == 0xed)
        n = 3, hi = 0x9f;
    else if (c >= 0xe1 && c <= 0xef)
        n = 3;
    else if (c == 0xf0)
        n = 4, lo = 0x90;
    else if (c == 0xf4)
        n = 4, hi = 0x8f;
    else if (c >= 0xf1 && c <= 0xf3)
        n = 4;
    else
        return 0;
    if (left < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

static bool bad_byte(unsigned char c) { return c < 0x20 || c == 0x7f || c == '/'; }

/* Ends in "~" and 8 lower-case hex digits: the form of a made-safe name. */
static bool has_suffix_form(const char *s, size_t len) {
    if (len < 9 || s[len - 9] != '~') return false;
    for (size_t i = len - 8; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

bool dataset_label_is_safe(const char *label, size_t len) {
    if (len == 0 || len > DATASET_LABEL_MAX || label[0] == '.') return false;
    const unsigned char *s = (const unsigned char *)label;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(s + i, len - i);
        if (n == 0 || (n == 1 && bad_byte(s[i]))) return false;
        i += n;
    }
    return !has_suffix_form(label, len);
}

char *dataset_label_dir(const char *label, size_t len) {
    if (dataset_label_is_safe(label, len)) return xstrndup(label, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(label, len, md, &mdlen, EVP_sha1(), NULL)) memset(md, 0, sizeof md); /* only without memory */
    sbuf b = {0};
    const unsigned char *s = (const unsigned char *)label;
    bool leading = true;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(s + i, len - i);
        const char *piece = label + i;
        size_t plen = n;
        if (n == 0 || (n == 1 && bad_byte(s[i])) || (leading && s[i] == '.')) {
            piece = "_";
            plen = 1;
            n = n ? n : 1;
        }
        leading = leading && s[i] == '.';
        if (b.len + plen > DATASET_LABEL_MAX) break;
        sbuf_add(&b, piece, plen);
        i += n;
    }
    if (b.len == 0) sbuf_add(&b, "_empty", 6);
    char tail[16];
    static const char hex[] = "0123456789abcdef";
    tail[0] = '~';
    for (int i = 0; i < 4; i++) {
        tail[1 + 2 * i] = hex[md[i] >> 4];
        tail[2 + 2 * i] = hex[md[i] & 15];
    }
    sbuf_add(&b, tail, 9);
    sbuf_addc(&b, '\0');
    return b.p;
}
