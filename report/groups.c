/* groups.c -- duplicate groups counted, the largest kept; see groups.h. */
#include "groups.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dupes.h"
#include "xalloc.h"

void rgroups_init(rgroups *r, size_t keep, size_t keep_members) {
    memset(r, 0, sizeof *r);
    r->keep = keep;
    r->keep_members = keep_members;
    r->g = xcalloc(keep ? keep : 1, sizeof *r->g);
    rmap_init(&r->sizes, sizeof(int64_t));
}

static void rgroup_release(rgroup *g) {
    for (size_t i = 0; i < g->n; i++) {
        rgroup_member *m = &g->m[i];
        free(m->table);
        free(m->id);
        free(m->label);
        free(m->sha1);
        free(m->format);
        free(m->path);
        free(m->file);
        free(m->thumb);
    }
    free(g->m);
    free(g->sha1);
    memset(g, 0, sizeof *g);
}

void rgroups_release(rgroups *r) {
    for (size_t i = 0; i < r->n; i++)
        rgroup_release(&r->g[i]);
    free(r->g);
    rmap_release(&r->sizes, NULL);
    memset(r, 0, sizeof *r);
}

rgroup *rgroups_offer(rgroups *r, int64_t size) {
    char key[32];
    snprintf(key, sizeof key, "%" PRId64, size);
    (*(int64_t *)rmap_get(&r->sizes, key))++;
    r->groups++;
    r->images += size;
    if (!r->keep) return NULL;
    if (r->n == r->keep) {
        if (size <= r->g[r->n - 1].size) return NULL;
        rgroup_release(&r->g[--r->n]);
    }
    size_t at = r->n;
    while (at > 0 && r->g[at - 1].size < size)
        at--;
    memmove(&r->g[at + 1], &r->g[at], (r->n - at) * sizeof *r->g);
    r->n++;
    memset(&r->g[at], 0, sizeof r->g[at]);
    r->g[at].size = size;
    r->g[at].m = xcalloc(r->keep_members ? r->keep_members : 1, sizeof *r->g[at].m);
    return &r->g[at];
}

rgroup_member *rgroup_add(const rgroups *r, rgroup *g, const char *table, const char *id, uint32_t image) {
    if (g->n >= r->keep_members) return NULL;
    rgroup_member *m = &g->m[g->n++];
    m->table = xstrdup(table ? table : "");
    m->id = xstrdup(id ? id : "");
    m->image = image;
    m->thumb_state = "no file";
    return m;
}

static void rgroups_near_one(catalog *c, const uint32_t *members, size_t n, void *arg) {
    rgroups *r = arg;
    rgroup *g = rgroups_offer(r, (int64_t)n);
    for (size_t i = 0; g && i < n && i < r->keep_members; i++) {
        const char *table, *id;
        uint32_t image;
        catalog_image_of(c, members[i], &table, &id, &image);
        rgroup_add(r, g, table, id, image);
    }
}

int rgroups_near(rgroups *r, catalog *c, catalog_kind kind, int max_distance) {
    return dupes_find(c, kind, max_distance, 2, rgroups_near_one, r) < 0 ? -1 : 0;
}

static void rgroups_add_str(json_object *o, const char *key, const char *v) {
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

json_object *rgroups_json(const rgroups *r) {
    json_object *o = json_object_new_object(), *sizes = json_object_new_object(), *largest = json_object_new_array();
    json_object_object_add(o, "groups", json_object_new_int64(r->groups));
    json_object_object_add(o, "images", json_object_new_int64(r->images));
    const char **keys = rmap_keys(&r->sizes);
    for (size_t i = 0; i < r->sizes.n; i++)
        json_object_object_add(sizes, keys[i], json_object_new_int64(*(const int64_t *)rmap_find(&r->sizes, keys[i])));
    free(keys);
    json_object_object_add(o, "sizes", sizes);
    for (size_t i = 0; i < r->n; i++) {
        const rgroup *g = &r->g[i];
        json_object *go = json_object_new_object(), *members = json_object_new_array();
        json_object_object_add(go, "size", json_object_new_int64(g->size));
        if (g->sha1) rgroups_add_str(go, "sha1", g->sha1);
        for (size_t j = 0; j < g->n; j++) {
            const rgroup_member *m = &g->m[j];
            json_object *mo = json_object_new_object();
            rgroups_add_str(mo, "table", m->table);
            rgroups_add_str(mo, "id", m->id);
            json_object_object_add(mo, "image", json_object_new_int64(m->image));
            if (m->path) rgroups_add_str(mo, "path", m->path);
            rgroups_add_str(mo, "label", m->label);
            rgroups_add_str(mo, "sha1", m->sha1);
            rgroups_add_str(mo, "format", m->format);
            rgroups_add_str(mo, "thumb", m->thumb_state);
            json_object_array_add(members, mo);
        }
        json_object_object_add(go, "members", members);
        json_object_array_add(largest, go);
    }
    json_object_object_add(o, "largest", largest);
    return o;
}
