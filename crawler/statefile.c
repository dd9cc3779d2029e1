/* statefile.c -- a board's state file, read and saved atomically; see statefile.h. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static int statefile_mkdir(const char *path, char *why, size_t whylen) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
    free(p);
    return 0;
fail:
    snprintf(why, whylen, "cannot create directory %s: %s", p, strerror(errno));
    free(p);
    return -1;
}

/* A board name as a file name: [A-Za-z0-9_-] kept, every other byte %XX. */
static char *statefile_file_name(const char *board) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(3 * strlen(board) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)board; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
            *p == '-') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

char *statefile_path(const char *dir, const char *site, const char *board, char *why, size_t whylen) {
    char *sitedir = xasprintf("%s/%s", dir, site), *file = statefile_file_name(board);
    int rc = statefile_mkdir(sitedir, why, whylen);
    char *path = rc == 0 ? xasprintf("%s/%s.json", sitedir, file) : NULL;
    free(sitedir);
    free(file);
    return path;
}

int statefile_load(const char *path, json_object **out, char *why, size_t whylen) {
    *out = NULL;
    if (access(path, F_OK) != 0) return 0; /* never crawled */
    *out = json_object_from_file(path);
    if (!*out) {
        snprintf(why, whylen, "cannot read %s: %s", path, json_util_get_last_err());
        return -1;
    }
    return 0;
}

void statefile_sync_dir(const char *path) {
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
}

int statefile_write_all(int fd, const char *path, const char *data, size_t len, char *why, size_t whylen) {
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int statefile_replace(const char *path, const char *data, size_t len, char *why, size_t whylen) {
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = -1;
    if (fd < 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (statefile_write_all(fd, tmp, data, len, why, whylen) != 0) {
        close(fd);
        goto done;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        snprintf(why, whylen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    statefile_sync_dir(path); /* the rename itself is durable once the directory is synced */
    rc = 0;
done:
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

int statefile_save(const char *path, json_object *state, char *why, size_t whylen) {
    size_t len;
    const char *text = json_object_to_json_string_length(state, JSON_C_TO_STRING_PLAIN, &len);
    return statefile_replace(path, text, len, why, whylen);
}
