/* cli.c -- `imgfeed-search query` and `imgfeed-search dupes`; see cli.h.
 *
 * dupes loads the archive into a catalog (loader.h) and prints the groups
 * dupes_find (dupes.h) gives it, one JSON line each.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "catalog.h"
#include "config.h"
#include "dupes.h"
#include "http.h"
#include "imghash/imghash.h"
#include "itemview.h"
#include "loader.h"
#include "log.h"
#include "sbuf.h"
#include "sig.h"
#include "xalloc.h"

/* --- query --- */

typedef struct query_cli_settings {
    char *server;
    long k;
    long max_distance;
    char *hash;
    long hash_size;
    int64_t max_bytes;
    long max_pixels;
    char *log_level;
} query_cli_settings;

static const char *const cli_hash_kinds[] = {"phash", "dhash", NULL};

static const cfg_option query_cli_options[] = {
    {.name = "server", .env = "IMGFEED_SEARCH_SERVER", .type = CFG_STRING,
     .offset = offsetof(query_cli_settings, server), .defval = "http://127.0.0.1:8091", .metavar = "URL",
     .help = "the imgfeed-search to ask"},
    {.name = "k", .env = "IMGFEED_SEARCH_K", .type = CFG_INT, .offset = offsetof(query_cli_settings, k),
     .defval = "10", .min = 1, .max = 1000, .help = "results per file, nearest first"},
    {.name = "max-distance", .env = "IMGFEED_SEARCH_MAX_DISTANCE", .type = CFG_INT,
     .offset = offsetof(query_cli_settings, max_distance), .defval = "-1", .min = -1, .max = 1024,
     .help = "largest Hamming distance of a result (-1: the server's default, 15% of the bits)"},
    {.name = "hash", .env = "IMGFEED_SEARCH_HASH", .type = CFG_CHOICE, .offset = offsetof(query_cli_settings, hash),
     .defval = "phash", .choices = cli_hash_kinds, .help = "the perceptual hash compared"},
    {.name = "hash-size", .env = "IMGFEED_HASH_SIZE", .type = CFG_INT,
     .offset = offsetof(query_cli_settings, hash_size), .defval = "12", .min = 2, .max = IH_HASH_MAX_SIZE,
     .metavar = "N", .help = "hash size of the archive's hashes (the hasher's: 12, 144 bits)"},
    {.name = "max-bytes", .env = "IMGFEED_MAX_BYTES", .type = CFG_BYTES,
     .offset = offsetof(query_cli_settings, max_bytes), .defval = "64MiB", .min = 1, .max = 4e9,
     .help = "larger files are refused as \"too large\" without being read"},
    {.name = "max-pixels", .env = "IMGFEED_MAX_PIXELS", .type = CFG_INT,
     .offset = offsetof(query_cli_settings, max_pixels), .defval = "128000000", .min = 1, .max = 4e9,
     .help = "images with more pixels are refused from their header, before decoding"},
    {.name = "log-level", .env = "IMGFEED_LOG_LEVEL", .type = CFG_CHOICE,
     .offset = offsetof(query_cli_settings, log_level), .defval = "warn", .choices = cfg_log_levels,
     .help = "least severe level logged"},
    {0},
};

static const cfg_program query_cli_program = {
    "imgfeed-search query",
    "[OPTION]... FILE...",
    "Hashes each FILE as the hasher would and prints its nearest images in the archive, asked of a\n"
    "running imgfeed-search: one JSON line a file.",
    query_cli_options,
};

/* Reads PATH whole, refusing one over MAX before reading. */
static unsigned char *read_file(const char *path, int64_t max, size_t *len, char *why, size_t whylen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (st.st_size > max) {
        snprintf(why, whylen, "too large");
        close(fd);
        return NULL;
    }
    unsigned char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) {
            snprintf(why, whylen, "cannot read: %s", r < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

static void print_line(json_object *o) {
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
}

/* Asks the server about one file; true when it answered with results. */
static bool query_one(http_client *http, CURL *esc, const query_cli_settings *s, const ih_options *ho,
                      const char *path) {
    json_object *line = json_object_new_object();
    json_object_object_add(line, "file", json_object_new_string(path));
    char why[400];
    size_t len = 0;
    bool ok = false;
    unsigned char *data = read_file(path, s->max_bytes, &len, why, sizeof why);
    json_object *entry = json_object_new_object();
    if (data && ih_describe(entry, data, len, ho, NULL) != 0) {
        const char *e = itemview_string(entry, "error");
        snprintf(why, sizeof why, "%s", e ? e : "cannot hash it");
    } else if (data) {
        const char *hash = itemview_string(entry, s->hash);
        char *q = curl_easy_escape(esc, hash ? hash : "", 0);
        sbuf url = {0};
        char tail[96];
        snprintf(tail, sizeof tail, "&k=%ld", s->k);
        sbuf_add(&url, s->server, strlen(s->server));
        sbuf_add(&url, "/search?", 8);
        sbuf_add(&url, s->hash, strlen(s->hash));
        sbuf_addc(&url, '=');
        sbuf_add(&url, q, strlen(q));
        sbuf_add(&url, tail, strlen(tail));
        if (s->max_distance >= 0) {
            snprintf(tail, sizeof tail, "&max_distance=%ld", s->max_distance);
            sbuf_add(&url, tail, strlen(tail));
        }
        sbuf_addc(&url, '\0');
        curl_free(q);
        http_request rq = {.url = url.p};
        http_response resp;
        int rc = http_get(http, &rq, &resp);
        json_object *answer = resp.body_len ? json_tokener_parse(resp.body) : NULL;
        if (rc == HTTP_OK && json_object_is_type(answer, json_type_object)) {
            json_object_object_foreach(answer, key, val) json_object_object_add(line, key, json_object_get(val));
            ok = true;
        } else {
            const char *e = json_object_is_type(answer, json_type_object) ? itemview_string(answer, "error") : NULL;
            snprintf(why, sizeof why, "%s", e ? e : resp.error[0] ? resp.error : "no answer");
        }
        json_object_put(answer);
        http_response_release(&resp);
        free(url.p);
    }
    if (!ok) json_object_object_add(line, "error", json_object_new_string(why));
    print_line(line);
    json_object_put(line);
    json_object_put(entry);
    free(data);
    return ok;
}

int cli_query(int argc, char **argv) {
    query_cli_settings s = {0};
    int npos = 0;
    int status = cfg_main_load(&query_cli_program, &s, argc, argv, &npos);
    if (status >= 0) return status;
    log_level lv;
    if (log_level_parse(s.log_level, &lv)) log_set_level(lv);
    if (npos == 0) {
        fprintf(stderr, "imgfeed-search query: give at least one FILE\n");
        cfg_release(&query_cli_program, &s);
        return 2;
    }
    ih_options ho;
    ih_options_init(&ho);
    ho.hash_size = (int)s.hash_size;
    ho.max_bytes = (uint64_t)s.max_bytes;
    ho.max_pixels = (uint64_t)s.max_pixels;
    http_options hopt;
    http_options_init(&hopt);
    hopt.max_retries = 1;
    http_client *http = http_client_new(&hopt, NULL);
    CURL *esc = curl_easy_init();
    status = http && esc ? 0 : 1;
    for (int i = 1; i <= npos && http && esc; i++)
        if (!query_one(http, esc, &s, &ho, argv[i])) status = 1;
    curl_easy_cleanup(esc);
    http_client_free(http);
    cfg_release(&query_cli_program, &s);
    return status;
}

/* --- dupes --- */

typedef struct dupes_settings {
    char *pg;
    char *exchange;
    long max_distance;
    long min_size;
    char *hash;
    char *log_level;
} dupes_settings;

static const cfg_option dupes_options[] = {
    CFG_ARCHIVE_OPTIONS(dupes_settings, pg, exchange, "the exchange whose tables are read"),
    {.name = "max-distance", .env = "IMGFEED_DUPES_MAX_DISTANCE", .type = CFG_INT,
     .offset = offsetof(dupes_settings, max_distance), .defval = "4", .min = 0, .max = 1024,
     .help = "images at most this many bits apart are near-identical"},
    {.name = "min-size", .env = "IMGFEED_DUPES_MIN_SIZE", .type = CFG_INT,
     .offset = offsetof(dupes_settings, min_size), .defval = "2", .min = 1, .max = 1000000000,
     .help = "groups of fewer images are not printed (1: every image)"},
    {.name = "hash", .env = "IMGFEED_SEARCH_HASH", .type = CFG_CHOICE, .offset = offsetof(dupes_settings, hash),
     .defval = "phash", .choices = cli_hash_kinds, .help = "the perceptual hash compared"},
    {.name = "log-level", .env = "IMGFEED_LOG_LEVEL", .type = CFG_CHOICE, .offset = offsetof(dupes_settings, log_level),
     .defval = "info", .choices = cfg_log_levels, .help = "least severe level logged"},
    {0},
};

static const cfg_program dupes_program = {
    "imgfeed-search dupes",
    "[OPTION]...",
    "Loads the archive's image hashes and prints the groups of near-identical images, one JSON line a\n"
    "group.",
    dupes_options,
};

/* One group as a JSON line (dupes_group_fn). */
static void dupes_print(catalog *c, const uint32_t *members, size_t n, void *arg) {
    (void)arg;
    json_object *g = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(g, "size", json_object_new_int64((int64_t)n));
    for (size_t i = 0; i < n; i++) {
        const char *t, *id;
        uint32_t num;
        catalog_image_of(c, members[i], &t, &id, &num);
        json_object *m = json_object_new_object();
        json_object_object_add(m, "table", json_object_new_string(t));
        json_object_object_add(m, "id", json_object_new_string(id));
        json_object_object_add(m, "image", json_object_new_int64(num));
        json_object_array_add(arr, m);
    }
    json_object_object_add(g, "images", arr);
    print_line(g);
    json_object_put(g);
}

int cli_dupes(int argc, char **argv) {
    dupes_settings s = {0};
    int status = cfg_main_load(&dupes_program, &s, argc, argv, NULL);
    if (status >= 0) return status;
    log_level lv;
    if (log_level_parse(s.log_level, &lv)) log_set_level(lv);
    sig_install();
    catalog *c = catalog_new();
    loader_progress prog = {0};
    char why[600];
    if (loader_run(s.pg, s.exchange, c, &prog, why, sizeof why) != 0) {
        log_error("cannot load the archive: %s", why);
        catalog_free(c);
        cfg_release(&dupes_program, &s);
        return 1;
    }
    catalog_kind kind = strcmp(s.hash, "dhash") == 0 ? CATALOG_DHASH : CATALOG_PHASH;
    long groups = dupes_find(c, kind, (int)s.max_distance, (size_t)s.min_size, dupes_print, NULL);
    if (groups >= 0) log_info("%ld groups of at least %ld images within %ld bits", groups, s.min_size, s.max_distance);
    catalog_free(c);
    cfg_release(&dupes_program, &s);
    return groups < 0 ? 1 : 0;
}
