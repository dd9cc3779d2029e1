/* sites.h -- the sites file: which boards to crawl, where, and how politely.
 *
 * The file (--sites, IMGFEED_SITES) is JSON:
 *
 *   {"user_agent": "imgfeed/0.1 (+https://example.org/contact)",   -- default for every site
 *    "sites": [
 *      {"name": "4chan", "kind": "4chan",
 *       "api": "https://a.4cdn.org", "media": "https://i.4cdn.org",
 *       "boards": ["a", "g"], "rps": 1,
 *       "poll_interval": "10s",                 -- optional: a board at most this often
 *       "user_agent": "…",                      -- optional: this site's own
 *       "threads_url": "{api}/{board}/threads.json",      -- optional templates, the
 *       "thread_url": "{api}/{board}/thread/{no}.json",   -- defaults of the kind
 *       "file_url": "{media}/{board}/{tim}{ext}"}]}       -- shown here for 4chan
 *
 * "kind" names a source kind (source.h): it says which templates a site has
 * and their defaults, whether "api" and "rps" may be left out (the kind's
 * published defaults), and reads the kind's own settings of the site.
 * "media" defaults to "api".  Sites of a kind this crawler does not know are
 * skipped with a warning, so one file can serve crawlers of other versions
 * too.  In URLs, {board} is percent-encoded (lainchan's "λ").
 *
 * Ownership: sites_load fills a sites the caller releases with
 * sites_release.
 */
#ifndef IMGFEED_SITES_H
#define IMGFEED_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

struct site_config {
    char *name; /* [a-z0-9_-]+, as in routing keys */
    const source_kind *kind;
    char *api, *media;                   /* base URLs ("media" defaults to "api") */
    char *urls[SOURCE_TEMPLATES_MAX];    /* the kind's templates, in its order; {api}, {media} replaced */
    char **boards;
    size_t nboards;
    double rps;               /* requests per second to the site's API host */
    int64_t poll_interval_ms; /* a board at most this often */
    char *user_agent;
    void *kind_conf;          /* the kind's own settings (source_kind.site_load), or NULL */
};

typedef struct sites {
    site_config *v;
    size_t n;
} sites;

/* Read and check PATH.  Sites with no poll_interval get DEFAULT_POLL_MS.
 * Returns 0, or -1 with the problem in WHY ("sites.json: site 2 (\"x\"):
 * rps must be a number above 0"). */
int sites_load(const char *path, int64_t default_poll_ms, sites *out, char *why, size_t whylen);
void sites_release(sites *s);

/* The template of C whose sites-file key is KEY ("thread_url"), or NULL
 * when its kind has none of that name. */
const char *sites_url(const site_config *c, const char *key);

/* TEMPLATE with {board} (percent-encoded), {no}, {tim} and {ext} replaced
 * by the given values (NULL: left as is).  The caller frees the result. */
char *sites_expand(const char *tmpl, const char *board, const char *no, const char *tim, const char *ext);

/* The string member KEY of O, or NULL (for a kind's site_load). */
const char *sites_string(json_object *o, const char *key);

#endif
