/* imgapi.h -- the answers of the random-image APIs into images and items.
 *
 * Four families answer a category with random images, each in its own
 * shape (docs/design.md, "Source kinds"):
 *
 *   nekos_best  {"results": [{"url": …, "artist_name": …, …}, …]}
 *   waifu_pics  {"url": …}  (GET /sfw/{c}), or {"files": ["url", …]} (/many)
 *   waifu_im    {"items": [{"id": 6758, "url": …, "artists": […], "tags": […]}]}
 *               (the API of 2025 on, GET /images?IncludedTags=…), or the
 *               older {"images": [{"image_id": 8108, "url": …}]} of /search
 *   catboys     {"url": …, "artist": …, "source_url": …}: the object itself
 *
 * The body is walked by jsonscan first (syntax, json-c's memory estimate
 * against max_tree), as every parser of the crawler does.  An entry whose
 * url is not an http(s) URL, or whose id is missing, is passed over and
 * counted; the first such reason is kept for the log.  Pure: no I/O.
 *
 * _id: the file name of the url (its last path segment, without query),
 * except waifu_im: its numeric id as a decimal string.
 *
 * Ownership: imgapi_parse fills OUT, released with imgapi_page_release;
 * each image's obj is a reference of the page (take one with json_object_get
 * to keep it longer).
 */
#ifndef IMGFEED_IMGAPI_H
#define IMGFEED_IMGAPI_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define IMGAPI_ID_MAX 160
#define IMGAPI_ENTRIES_MAX 1000 /* an answer with more entries is refused */

typedef enum imgapi_kind { IMGAPI_NEKOS_BEST, IMGAPI_WAIFU_PICS, IMGAPI_WAIFU_IM, IMGAPI_CATBOYS } imgapi_kind;

typedef struct imgapi_image {
    json_object *obj; /* the entry, kept as sent (waifu_pics files: {"url": …}) */
    const char *url;  /* inside obj */
    char id[IMGAPI_ID_MAX];
} imgapi_image;

typedef struct imgapi_page {
    imgapi_image *images;
    size_t nimages;
    size_t nentries;          /* entries in the answer, images or not */
    size_t nrefused;          /* entries passed over */
    char first_refused[200];  /* why the first was */
} imgapi_page;

/* Parse BODY (LEN bytes) of KIND.  0 with OUT filled (perhaps no image), or
 * -1 with WHY (not JSON, too complex, not the API's shape, too many). */
int imgapi_parse(imgapi_kind kind, const char *body, size_t len, uint64_t max_tree, imgapi_page *out, char *why,
                 size_t whylen);
void imgapi_page_release(imgapi_page *p);

/* The file name of URL (last path segment, no query or fragment) into ID.
 * 0, or -1 when it is empty or longer than IMGAPI_ID_MAX - 1. */
int imgapi_url_id(const char *url, char *id, size_t idlen);

/* Make IMG's obj an item: _v, _id, _chan, _board, _type "image",
 * _crawled_at, _urls [url], _files 1 (added, or replacing the same keys). */
void imgapi_item(imgapi_image *img, const char *site, const char *board, int64_t crawled_at);

#endif
