/* hashcli.c -- `imgfeed-hasher hash FILE...`: the hash library on local files.
 *
 * For each file, in the order given: read it (refusing one over --max-bytes
 * before reading), describe it with ih_describe() -- the same code the
 * consumer runs on downloads, so the line has the colour summary (rgb_mean,
 * brightness, rgb_hist) too -- with imagehash's hex forms added, and print
 * the entry as one JSON line that starts with "file".  Anyone can compare
 * the *_hex fields with Python's imagehash directly, and the plain ones with
 * what the archive stores.
 *
 * Exit status: 0 when every file was hashed, 1 when any failed (its line has
 * "error"), 2 on bad usage.
 */
#include "hashcli.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "imghash/imghash.h"
#include "log.h"
#include "xalloc.h"

typedef struct hashcli_settings {
    long hash_size;
    int64_t max_bytes;
    long max_pixels;
    char *log_level;
} hashcli_settings;

static bool hashcli_check_hash_size(const char *value, char *why, size_t whylen) {
    const char *reason = NULL;
    if (!ih_hashes_size_supported(atoi(value), &reason)) {
        snprintf(why, whylen, "%s", reason ? reason : "unsupported hash size");
        return false;
    }
    return true;
}

static const cfg_option hashcli_options[] = {
    {.name = "hash-size", .env = "IMGFEED_HASH_SIZE", .type = CFG_INT,
     .offset = offsetof(hashcli_settings, hash_size), .defval = "12", .min = 2, .max = IH_HASH_MAX_SIZE,
     .metavar = "N", .check = hashcli_check_hash_size,
     .help = "ahash, dhash and phash of N*N bits; whash of the largest power of two <= N (12 gives 8)"},
    {.name = "max-bytes", .env = "IMGFEED_MAX_BYTES", .type = CFG_BYTES,
     .offset = offsetof(hashcli_settings, max_bytes), .defval = "64MiB", .min = 1, .max = 4e9,
     .help = "larger files are refused as \"too large\" without being read"},
    {.name = "max-pixels", .env = "IMGFEED_MAX_PIXELS", .type = CFG_INT,
     .offset = offsetof(hashcli_settings, max_pixels), .defval = "128000000", .min = 1, .max = 4e9,
     .help = "images with more pixels are refused from their header, before decoding"},
    {.name = "log-level", .env = "IMGFEED_LOG_LEVEL", .type = CFG_CHOICE,
     .offset = offsetof(hashcli_settings, log_level), .defval = "info", .choices = cfg_log_levels,
     .help = "least severe level logged"},
    {0},
};

static const cfg_program hashcli_program = {
    "imgfeed-hasher hash", "[OPTION]... FILE...",
    "Hashes local files as the hasher hashes downloads and prints one JSON line per file: the\n"
    "fields of an `_img` entry (size, width, height, format, crc32, md5, sha1, ahash, dhash,\n"
    "phash, whash in the archive's base64, and the colour summary rgb_mean, brightness and\n"
    "rgb_hist) plus ahash_hex ... whash_hex in imagehash's own hex form.  Exit status 1 when\n"
    "any file failed; its line has \"error\".",
    hashcli_options,
};

int hashcli_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno ? errno : EINVAL;
        if (!S_ISREG(st.st_mode)) e = EISDIR;
        close(fd);
        errno = e;
        return -1;
    }
    *len = (size_t)st.st_size;
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return 1;
    }
    unsigned char *buf = malloc(*len ? *len : 1);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    size_t got = 0;
    while (got < *len) {
        ssize_t n = read(fd, buf + got, *len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    *len = got; /* a file that shrank while read is hashed as it was read */
    *data = buf;
    return 0;
}

/* Describes one file into a new JSON object; returns 0 or -1 (has "error"). */
static int hashcli_describe(const char *path, const ih_options *options, json_object *entry) {
    json_object_object_add(entry, "file", json_object_new_string(path));
    unsigned char *data = NULL;
    size_t len = 0;
    int status = hashcli_read(path, options->max_bytes, &data, &len);
    if (status < 0) {
        char *why = xasprintf("cannot read: %s", strerror(errno));
        json_object_object_add(entry, "error", json_object_new_string(why));
        free(why);
        return -1;
    }
    if (status == 1) {
        json_object_object_add(entry, "size", json_object_new_int64((int64_t)len));
        json_object_object_add(entry, "error", json_object_new_string("too large"));
        return -1;
    }
    status = ih_describe(entry, data, len, options, NULL);
    free(data);
    return status;
}

/* One process hashes file after file, each needing the same few large
 * buffers (a 24 MP photo: a 24 MB gray image, resampling buffers of
 * megabytes).  By default glibc maps each of them fresh and unmaps it on
 * free(), so every file pays the kernel to fault in and zero its memory
 * again (on a run of 24 MP JPEGs this tuning saves a third of the page
 * faults and about 4% of the time).  Here large blocks come from
 * the heap and freed memory stays there for the next file.  Only this
 * short-lived command does so: the daemon keeps glibc's defaults, which
 * give memory back between downloads. */
static void hashcli_tune_malloc(void) {
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 512 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
#endif
}

int hashcli_main(int argc, char **argv) {
    hashcli_tune_malloc();
    hashcli_settings settings = {0};
    int npos = 0;
    int status = cfg_main_load(&hashcli_program, &settings, argc, argv, &npos);
    if (status >= 0) return status;
    log_set_program("imgfeed-hasher");
    log_level level;
    if (log_level_parse(settings.log_level, &level)) log_set_level(level);
    if (npos == 0) {
        fprintf(stderr, "imgfeed-hasher hash: no FILE given (see --help)\n");
        cfg_release(&hashcli_program, &settings);
        return 2;
    }

    ih_options options;
    ih_options_init(&options);
    options.hash_size = (int)settings.hash_size;
    options.max_bytes = (uint64_t)settings.max_bytes;
    options.max_pixels = (uint64_t)settings.max_pixels;
    options.hex = true;

    int failed = 0;
    for (int i = 1; i <= npos; i++) {
        json_object *entry = json_object_new_object();
        if (hashcli_describe(argv[i], &options, entry) < 0) failed++;
        puts(json_object_to_json_string_ext(entry, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(entry);
    }
    fflush(stdout);
    cfg_release(&hashcli_program, &settings);
    return failed ? 1 : 0;
}
