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

int statefile_save(const char *path, json_object *state, char *why, size_t whylen) {
    char *text = xstrdup(json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN)), *tmp = xasprintf("%s.tmp", path);
    size_t len = strlen(text);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = -1;
    if (fd < 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            goto done;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        snprintf(why, whylen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    /* The rename itself is durable once the directory is synced. */
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    rc = 0;
done:
    if (rc != 0) unlink(tmp);
    free(tmp);
    free(text);
    return rc;
}
