/* sites.c -- loading the sites file; see sites.h for its format. */
#include "sites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "urltmpl.h"
#include "xalloc.h"

static void site_config_release(site_config *c) {
    if (c->kind && c->kind->site_free) c->kind->site_free(c);
    free(c->name);
    free(c->api);
    free(c->media);
    for (size_t i = 0; i < SOURCE_TEMPLATES_MAX; i++)
        free(c->urls[i]);
    for (size_t i = 0; i < c->nboards; i++)
        free(c->boards[i]);
    free(c->boards);
    free(c->user_agent);
    memset(c, 0, sizeof *c);
}

void sites_release(sites *s) {
    for (size_t i = 0; i < s->n; i++)
        site_config_release(&s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

const char *sites_string(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) return NULL;
    return json_object_get_string(v);
}

char *sites_expand(const char *tmpl, const char *board, const char *no, const char *tim, const char *ext) {
    const urltmpl_var vars[] = {
        {"board", board, true}, {"no", no, false}, {"tim", tim, false}, {"ext", ext, false}};
    return urltmpl_expand(tmpl, vars, sizeof vars / sizeof vars[0]);
}

static bool sites_valid_name(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-')) return false;
    return true;
}

/* A board name goes into routing keys, file names (encoded) and URLs
 * (encoded): no dots (they would split the routing key), no slashes, no
 * control characters, at most 64 bytes. */
static bool sites_valid_board(const char *s) {
    size_t n = strlen(s);
    if (!n || n > 64) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == '.' || *p == '/' || *p == '#' || *p == '*' || *p == 0x7f) return false;
    return true;
}

/* The template KEY of site object O, or the kind's default, with {api} and
 * {media} substituted. */
static char *sites_template(json_object *o, const char *key, const char *def, const char *api, const char *media) {
    const char *t = sites_string(o, key);
    const urltmpl_var vars[] = {{"api", api, false}, {"media", media, false}};
    return urltmpl_expand(t ? t : def, vars, 2);
}

const char *sites_url(const site_config *c, const char *key) {
    for (size_t i = 0; c->kind && i < SOURCE_TEMPLATES_MAX && c->kind->templates[i].key; i++)
        if (strcmp(c->kind->templates[i].key, key) == 0) return c->urls[i];
    return NULL;
}

static int sites_load_one(json_object *o, const char *default_ua, int64_t default_poll_ms, site_config *c, char *why,
                          size_t whylen) {
    const char *name = sites_string(o, "name"), *kind = sites_string(o, "kind");
    if (!name || !sites_valid_name(name)) {
        snprintf(why, whylen, "\"name\" must be a string of [a-z0-9_-]");
        return -1;
    }
    c->name = xstrdup(name);
    const source_kind *k = source_find(kind);
    if (!k) {
        snprintf(why, whylen, "kind %s is not crawled by this version (it knows %s)", kind ? kind : "(none)",
                 source_names());
        return 1; /* skipped, not an error */
    }
    const char *api = sites_string(o, "api"), *media = sites_string(o, "media");
    if (!api) api = k->default_api;
    bool all_given = true;
    for (size_t i = 0; k->templates[i].key; i++)
        if (!sites_string(o, k->templates[i].key)) all_given = false;
    if (!api && !all_given) {
        snprintf(why, whylen, "\"api\" (the base URL of the site's API) is missing");
        return -1;
    }
    if (!api) api = "";
    if (!media) media = api;
    c->api = xstrdup(api);
    c->media = xstrdup(media);
    for (size_t i = 0; k->templates[i].key; i++)
        c->urls[i] = sites_template(o, k->templates[i].key, k->templates[i].def, api, media);
    json_object *boards, *rps = NULL, *v;
    if (!json_object_object_get_ex(o, "boards", &boards) || !json_object_is_type(boards, json_type_array) ||
        json_object_array_length(boards) == 0) {
        snprintf(why, whylen, "\"boards\" must be a non-empty array of board names");
        return -1;
    }
    c->nboards = json_object_array_length(boards);
    c->boards = xcalloc(c->nboards, sizeof *c->boards);
    for (size_t i = 0; i < c->nboards; i++) {
        json_object *b = json_object_array_get_idx(boards, i);
        if (!json_object_is_type(b, json_type_string) || !sites_valid_board(json_object_get_string(b))) {
            snprintf(why, whylen, "board %zu must be a name without dots, slashes or control characters", i);
            return -1;
        }
        c->boards[i] = xstrdup(json_object_get_string(b));
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->boards[j], c->boards[i]) == 0) {
                snprintf(why, whylen, "board \"%s\" is listed twice", c->boards[i]);
                return -1;
            }
    }
    if (!json_object_object_get_ex(o, "rps", &rps) && k->default_rps > 0) {
        c->rps = k->default_rps;
    } else if (!rps || !(json_object_is_type(rps, json_type_int) || json_object_is_type(rps, json_type_double)) ||
               !(json_object_get_double(rps) > 0) || !isfinite(json_object_get_double(rps))) {
        snprintf(why, whylen, "\"rps\" (requests per second the site allows) must be a number above 0");
        return -1;
    } else {
        c->rps = json_object_get_double(rps);
    }
    c->poll_interval_ms = default_poll_ms;
    if (json_object_object_get_ex(o, "poll_interval", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            !cfg_parse_millis(json_object_get_string(v), &c->poll_interval_ms) || c->poll_interval_ms < 0) {
            snprintf(why, whylen, "\"poll_interval\" must be a duration such as \"10s\"");
            return -1;
        }
    }
    const char *ua = sites_string(o, "user_agent");
    if (!ua) ua = default_ua;
    if (!ua || !*ua) {
        snprintf(why, whylen, "no \"user_agent\": sites ask crawlers to name themselves and a contact");
        return -1;
    }
    c->user_agent = xstrdup(ua);
    c->kind = k; /* from here on, site_config_release calls the kind's site_free */
    if (k->site_load && k->site_load(c, o, why, whylen) != 0) return -1;
    return 0;
}

int sites_load(const char *path, int64_t default_poll_ms, sites *out, char *why, size_t whylen) {
    memset(out, 0, sizeof *out);
    json_object *root = json_object_from_file(path);
    if (!root) {
        snprintf(why, whylen, "cannot read sites file %s: %s", path, json_util_get_last_err());
        return -1;
    }
    json_object *list = NULL;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "sites", &list) ||
        !json_object_is_type(list, json_type_array)) {
        snprintf(why, whylen, "%s: expected an object with a \"sites\" array", path);
        json_object_put(root);
        return -1;
    }
    const char *default_ua = sites_string(root, "user_agent");
    size_t n = json_object_array_length(list);
    out->v = xcalloc(n ? n : 1, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        site_config *c = &out->v[out->n];
        char reason[256];
        int rc = json_object_is_type(o, json_type_object)
                     ? sites_load_one(o, default_ua, default_poll_ms, c, reason, sizeof reason)
                     : (snprintf(reason, sizeof reason, "not an object"), -1);
        if (rc > 0) {
            log_warn("%s: site %zu (\"%s\") skipped: %s", path, i, c->name ? c->name : "?", reason);
            site_config_release(c);
            continue;
        }
        if (rc < 0) {
            snprintf(why, whylen, "%s: site %zu (\"%s\"): %s", path, i, c->name ? c->name : "?", reason);
            site_config_release(c);
            sites_release(out);
            json_object_put(root);
            return -1;
        }
        for (size_t k = 0; k < out->n; k++) {
            if (strcmp(out->v[k].name, c->name) == 0) {
                snprintf(why, whylen, "%s: two sites are named \"%s\"", path, c->name);
                site_config_release(c);
                sites_release(out);
                json_object_put(root);
                return -1;
            }
        }
        out->n++;
    }
    json_object_put(root);
    if (!out->n) {
        snprintf(why, whylen, "%s: no site of a kind this crawler knows (%s)", path, source_names());
        sites_release(out);
        return -1;
    }
    return 0;
}
