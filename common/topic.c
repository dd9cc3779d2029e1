/* topic.c -- binding keys checked and matched; see topic.h.
 *
 * Both keys are cut into words (at most TOPIC_MAX / 2 + 1 of each, since a
 * word takes a byte and a dot).  Then reach[j] says whether the pattern's
 * words so far can match the key's first j words; each pattern word moves
 * the row on: a plain word or "*" one key word ahead (when it is equal, or
 * for "*" any word), "#" to every j at or after the first reachable one.
 * O(pattern words x key words), no recursion.
 */
#include "topic.h"

#include <stdio.h>
#include <string.h>

#include "xalloc.h"

#define TOPIC_WORDS (TOPIC_MAX / 2 + 2)

typedef struct topic_word {
    const char *p;
    size_t n;
} topic_word;

/* Cut S into words; -1 when it has more than TOPIC_WORDS of them. */
static int topic_split(const char *s, topic_word *w) {
    int n = 0;
    for (;;) {
        if (n == TOPIC_WORDS) return -1;
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        w[n++] = (topic_word){s, len};
        if (!dot) return n;
        s = dot + 1;
    }
}

static bool topic_word_is(const topic_word *w, char c) { return w->n == 1 && w->p[0] == c; }

bool topic_check(const char *key, char *why, size_t whylen) {
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > TOPIC_MAX) {
        snprintf(why, whylen, "a topic has 1 to %d bytes, not %zu", TOPIC_MAX, n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '*' || c == '#' || c == '.' || c == '-';
        if (!ok) {
            snprintf(why, whylen, "a topic is made of A-Z a-z 0-9 _ * # . - only; byte %zu is 0x%02x", i, c);
            return false;
        }
    }
    return true;
}

bool topic_match(const char *pattern, const char *key) {
    topic_word pw[TOPIC_WORDS], kw[TOPIC_WORDS];
    int np = topic_split(pattern, pw), nk = topic_split(key, kw);
    if (np < 0 || nk < 0) return false;
    bool reach[TOPIC_WORDS + 1], next[TOPIC_WORDS + 1];
    memset(reach, 0, sizeof reach);
    reach[0] = true;
    for (int i = 0; i < np; i++) {
        memset(next, 0, sizeof next);
        if (topic_word_is(&pw[i], '#')) {
            bool any = false;
            for (int j = 0; j <= nk; j++) {
                any = any || reach[j];
                next[j] = any;
            }
        } else {
            bool star = topic_word_is(&pw[i], '*');
            for (int j = 0; j < nk; j++) {
                if (reach[j] && (star || (pw[i].n == kw[j].n && memcmp(pw[i].p, kw[j].p, kw[j].n) == 0)))
                    next[j + 1] = true;
            }
        }
        memcpy(reach, next, sizeof reach);
    }
    return reach[nk];
}

int topic_split_list(const char *list, const char **out, size_t max, char **store, const char *what, char *why,
                     size_t whylen) {
    *store = xstrdup(list ? list : "");
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(*store, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char *end = t + strlen(t);
        while (end > t && end[-1] == ' ')
            *--end = '\0';
        if (!*t) continue;
        char reason[200];
        if (!topic_check(t, reason, sizeof reason)) {
            snprintf(why, whylen, "%s: %s", what, reason);
            return -1;
        }
        if (n == max) {
            snprintf(why, whylen, "%s: at most %zu", what, max);
            return -1;
        }
        out[n++] = t;
    }
    out[n] = NULL;
    return 0;
}
