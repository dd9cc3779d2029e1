/* imgapi.c -- the answers of the random-image APIs into images; see imgapi.h.
 *
 * One walk of the body by jsonscan (syntax and json-c's memory estimate),
 * then json-c, then the kind's shape: where its entries are (an array
 * member, or the object itself), which member is the url and which the id.
 * The rules of the four kinds are one small table, imgapi_shapes.
 */
#include "imgapi.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "xalloc.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Where a kind's entries are.  list_keys: array members tried in order
 * (NULL: the root object is the one entry); id_keys: numeric id members
 * (NULL: the id is the url's file name); strings: entries may be bare url
 * strings (waifu_pics /many). */
typedef struct imgapi_shape {
    const char *list_keys[3];
    const char *id_keys[3];
    const char *single_url; /* a root member that is the one url when no list is there */
} imgapi_shape;

static const imgapi_shape imgapi_shapes[] = {
    [IMGAPI_NEKOS_BEST] = {{"results", NULL}, {NULL}, NULL},
    [IMGAPI_WAIFU_PICS] = {{"files", NULL}, {NULL}, "url"},
    [IMGAPI_WAIFU_IM] = {{"items", "images", NULL}, {"id", "image_id", NULL}, NULL},
    [IMGAPI_CATBOYS] = {{NULL}, {NULL}, "url"},
};

int imgapi_url_id(const char *url, char *id, size_t idlen) {
    size_t end = strcspn(url, "?#");
    size_t start = end;
    while (start > 0 && url[start - 1] != '/')
        start--;
    size_t n = end - start;
    if (n == 0 || n >= idlen || n >= IMGAPI_ID_MAX) return -1;
    memcpy(id, url + start, n);
    id[n] = '\0';
    return 0;
}

static int url_ok(const char *u) {
    if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

/* Count entry I passed over, keeping the first reason: "entry I: WHAT". */
static void refuse(imgapi_page *p, size_t i, const char *what) {
    if (!p->nrefused++) snprintf(p->first_refused, sizeof p->first_refused, "entry %zu: %s", i, what);
}

/* Take entry E (index I) into P when it has a good url and id. */
static void take(imgapi_page *p, imgapi_kind kind, json_object *e, size_t i) {
    const imgapi_shape *sh = &imgapi_shapes[kind];
    json_object *obj, *u = NULL;
    if (json_object_is_type(e, json_type_string) && kind == IMGAPI_WAIFU_PICS) {
        obj = json_object_new_object();
        json_object_object_add(obj, "url", json_object_get(e));
    } else if (json_object_is_type(e, json_type_object)) {
        obj = json_object_get(e);
    } else {
        refuse(p, i, "not an object");
        return;
    }
    if (!json_object_object_get_ex(obj, "url", &u) || !json_object_is_type(u, json_type_string)) {
        refuse(p, i, u ? "url is not a string" : "url is missing");
        goto drop;
    }
    const char *url = json_object_get_string(u);
    if (!url_ok(url)) {
        refuse(p, i, "url is not an http(s) URL");
        goto drop;
    }
    imgapi_image *img = &p->images[p->nimages];
    if (sh->id_keys[0]) {
        json_object *v = NULL;
        for (size_t k = 0; sh->id_keys[k] && !v; k++)
            if (!json_object_object_get_ex(obj, sh->id_keys[k], &v)) v = NULL;
        if (!v || !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
            refuse(p, i, v ? "id is not a whole number" : "id is missing");
            goto drop;
        }
        snprintf(img->id, sizeof img->id, "%" PRId64, json_object_get_int64(v));
    } else if (imgapi_url_id(url, img->id, sizeof img->id) != 0) {
        refuse(p, i, "url has no file name");
        goto drop;
    }
    img->obj = obj;
    img->url = url;
    p->nimages++;
    return;
drop:
    json_object_put(obj);
}

int imgapi_parse(imgapi_kind kind, const char *body, size_t len, uint64_t max_tree, imgapi_page *out, char *why,
                 size_t whylen) {
    memset(out, 0, sizeof *out);
    json_object *root = jsonscan_parse_object(body, len, max_tree, "not an answer of the API", "the answer", why, whylen);
    if (!root) return -1;
    const imgapi_shape *sh = &imgapi_shapes[kind];
    json_object *list = NULL;
    const char *list_key = NULL;
    for (size_t k = 0; sh->list_keys[k] && !list; k++)
        if (json_object_object_get_ex(root, sh->list_keys[k], &list)) list_key = sh->list_keys[k];
    int rc = -1;
    if (list) {
        if (!json_object_is_type(list, json_type_array)) {
            set_why(why, whylen, "%s is not an array", list_key);
            goto done;
        }
        size_t n = json_object_array_length(list);
        if (n > IMGAPI_ENTRIES_MAX) {
            set_why(why, whylen, "%s has %zu entries, more than %d", list_key, n, IMGAPI_ENTRIES_MAX);
            goto done;
        }
        out->nentries = n;
        out->images = xcalloc(n ? n : 1, sizeof *out->images);
        for (size_t i = 0; i < n; i++)
            take(out, kind, json_object_array_get_idx(list, i), i);
    } else if (sh->single_url) {
        json_object *u;
        if (!json_object_object_get_ex(root, sh->single_url, &u)) {
            set_why(why, whylen, "no %s in the answer", sh->single_url);
            goto done;
        }
        out->nentries = 1;
        out->images = xcalloc(1, sizeof *out->images);
        take(out, kind, root, 0);
    } else {
        set_why(why, whylen, "no %s array in the answer", sh->list_keys[0]);
        goto done;
    }
    rc = 0;
done:
    json_object_put(root); /* the images hold their own references */
    return rc;
}

void imgapi_page_release(imgapi_page *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nimages; i++)
        json_object_put(p->images[i].obj);
    free(p->images);
    memset(p, 0, sizeof *p);
}

void imgapi_item(imgapi_image *img, const char *site, const char *board, int64_t crawled_at) {
    json_object *o = img->obj;
    /* url stays valid: obj keeps its "url" member; copy it before _urls refers to it */
    json_object *urls = json_object_new_array_ext(1);
    json_object_array_add(urls, json_object_new_string(img->url));
    json_object_object_add(o, "_v", json_object_new_int(1));
    json_object_object_add(o, "_id", json_object_new_string(img->id));
    json_object_object_add(o, "_chan", json_object_new_string(site));
    json_object_object_add(o, "_board", json_object_new_string(board));
    json_object_object_add(o, "_type", json_object_new_string("image"));
    json_object_object_add(o, "_crawled_at", json_object_new_int64(crawled_at));
    json_object_object_add(o, "_urls", urls);
    json_object_object_add(o, "_files", json_object_new_int(1));
}
