/* sources.c -- the table of source kinds this crawler knows (source.h).
 *
 * Adding a kind: its module src_<kind>.c defines `const source_kind
 * source_<kind>`; declare it here and add it to the table.
 */
#include "source.h"

#include <stdio.h>
#include <string.h>

extern const source_kind source_4chan, source_vichan;
extern const source_kind source_lynxchan;
extern const source_kind source_reddit;
extern const source_kind source_nekos_best, source_waifu_pics, source_waifu_im, source_catboys;

static const source_kind *const source_table[] = {
    &source_4chan,
    &source_vichan,
    &source_lynxchan,
    &source_reddit,
    &source_nekos_best,
    &source_waifu_pics,
    &source_waifu_im,
    &source_catboys,
};

#define SOURCE_COUNT (sizeof source_table / sizeof source_table[0])

const source_kind *source_find(const char *name) {
    for (size_t i = 0; name && i < SOURCE_COUNT; i++)
        if (strcmp(source_table[i]->name, name) == 0) return source_table[i];
    return NULL;
}

const char *source_names(void) {
    static char names[512];
    if (!names[0]) {
        size_t at = 0;
        for (size_t i = 0; i < SOURCE_COUNT && at < sizeof names; i++)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "", source_table[i]->name);
    }
    return names;
}
