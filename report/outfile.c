/* outfile.c -- staged files renamed whole into place; see outfile.h.
 *
 * The staging directory lives inside DIR, so every rename stays on one file
 * system and is atomic.  Its name starts with a dot so that a listing of the
 * report does not show it while it exists.
 */
#define _GNU_SOURCE /* mkdtemp */
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static int outfile_fail(char why[OUTFILE_WHY_MAX], const char *what, const char *path, int errnum) {
    snprintf(why, OUTFILE_WHY_MAX, "cannot %s %s: %s", what, path, strerror(errnum));
    return -1;
}

/* mkdir -p PATH. */
static int outfile_mkdirs(const char *path, char why[OUTFILE_WHY_MAX]) {
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = outfile_fail(why, "create directory", p, errno);
        *s = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = outfile_fail(why, "use", path, errno ? errno : ENOTDIR);
    free(p);
    return rc;
}

int outfile_stage_init(outfile_stage *s, const char *dir, char why[OUTFILE_WHY_MAX]) {
    s->dir = xstrdup(dir);
    s->stage = NULL;
    if (outfile_mkdirs(dir, why) != 0) return -1;
    char *tmpl = xasprintf("%s/.report.XXXXXX", dir);
    if (!mkdtemp(tmpl)) {
        outfile_fail(why, "create directory", tmpl, errno);
        free(tmpl);
        return -1;
    }
    s->stage = tmpl;
    return 0;
}

static void outfile_rmtree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *sub = xasprintf("%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                outfile_rmtree(sub);
            else
                unlink(sub);
            free(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

void outfile_stage_release(outfile_stage *s) {
    if (s->stage) outfile_rmtree(s->stage);
    free(s->stage);
    free(s->dir);
    s->stage = s->dir = NULL;
}

char *outfile_stage_path(const outfile_stage *s, const char *name) { return xasprintf("%s/%s", s->stage, name); }

FILE *outfile_open(const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]) {
    char *path = outfile_stage_path(s, name);
    FILE *f = fopen(path, "wbe");
    if (!f) outfile_fail(why, "create", path, errno);
    free(path);
    return f;
}

int outfile_close(FILE *f, const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]) {
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    if (fflush(f) != 0 && !err) err = errno;
    if (fsync(fileno(f)) != 0 && !err) err = errno;
    if (fclose(f) != 0 && !err) err = errno;
    if (!err) return 0;
    char *path = outfile_stage_path(s, name);
    outfile_fail(why, "write", path, err);
    free(path);
    return -1;
}

int outfile_sync(const outfile_stage *s, const char *name, char why[OUTFILE_WHY_MAX]) {
    char *path = outfile_stage_path(s, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0 || fsync(fd) != 0) rc = outfile_fail(why, "write", path, errno);
    if (fd >= 0) close(fd);
    free(path);
    return rc;
}

static int outfile_sync_dir(const char *path, char why[OUTFILE_WHY_MAX]) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (fd < 0 || fsync(fd) != 0) rc = outfile_fail(why, "sync directory", path, errno);
    if (fd >= 0) close(fd);
    return rc;
}

int outfile_stage_commit(outfile_stage *s, const char *const *names, char why[OUTFILE_WHY_MAX]) {
    int rc = 0;
    for (size_t i = 0; names[i] && rc == 0; i++) {
        char *from = outfile_stage_path(s, names[i]), *to = xasprintf("%s/%s", s->dir, names[i]);
        char *slash = strrchr(to, '/');
        *slash = '\0';
        rc = outfile_mkdirs(to, why);
        *slash = '/';
        if (rc == 0 && rename(from, to) != 0) rc = outfile_fail(why, "rename into place", to, errno);
        if (rc == 0) {
            *slash = '\0';
            rc = outfile_sync_dir(to, why);
        }
        free(from);
        free(to);
    }
    return rc;
}
