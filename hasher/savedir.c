/* savedir.c -- sha1-named files under --save-dir, written crash-safely.
 *
 * savedir_store: look for the final name (present: done); make the two
 * directory levels, fsync'ing the parent of each one created so that the new
 * directory entry survives a crash; write the bytes to a mkstemp file in the
 * final directory, fsync and close it; rename it to the final name; fsync the
 * directory.  Any failure removes the temporary file and reports the system's
 * reason with the path it concerns.
 */
#include "savedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

static int savedir_fail(char err[SAVEDIR_ERROR_MAX], const char *what, const char *path, int errnum) {
    snprintf(err, SAVEDIR_ERROR_MAX, "cannot %s %s: %s", what, path, strerror(errnum));
    return -1;
}

/* fsync the directory PATH. */
static int savedir_sync_dir(const char *path, char err[SAVEDIR_ERROR_MAX]) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return savedir_fail(err, "open directory", path, errno);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return savedir_fail(err, "sync directory", path, e);
    }
    close(fd);
    return 0;
}

/* mkdir PATH unless it exists; a directory created is made durable by
 * syncing PARENT. */
static int savedir_make_dir(const char *path, const char *parent, char err[SAVEDIR_ERROR_MAX]) {
    if (mkdir(path, 0755) == 0) return savedir_sync_dir(parent, err);
    if (errno == EEXIST) return 0;
    return savedir_fail(err, "create directory", path, errno);
}

int savedir_prepare(const char *dir, char err[SAVEDIR_ERROR_MAX]) {
    char *path = xstrdup(dir);
    int rc = 0;
    /* mkdir -p: every prefix ending before a '/', then the whole path. */
    for (char *p = path + 1; *p && rc == 0; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) rc = savedir_fail(err, "create directory", path, errno);
        *p = '/';
    }
    if (rc == 0 && mkdir(path, 0755) != 0 && errno != EEXIST) rc = savedir_fail(err, "create directory", path, errno);
    struct stat st;
    if (rc == 0 && stat(path, &st) != 0) rc = savedir_fail(err, "find", path, errno);
    if (rc == 0 && !S_ISDIR(st.st_mode)) rc = savedir_fail(err, "use", path, ENOTDIR);
    if (rc == 0 && access(path, W_OK | X_OK) != 0) rc = savedir_fail(err, "write into", path, errno);
    free(path);
    return rc;
}

char *savedir_path(const char *dir, const char *sha1_hex, const char *ext) {
    return xasprintf("%s/%.2s/%.2s/%s.%s", dir, sha1_hex, sha1_hex + 2, sha1_hex, ext);
}

/* Write all LEN bytes to FD. */
static int savedir_write_all(int fd, const unsigned char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write DATA to a new temporary file in DIR and rename it to FINAL. */
static int savedir_write_file(const char *dir, const char *name, const char *final, const unsigned char *data,
                              size_t len, char err[SAVEDIR_ERROR_MAX]) {
    char *tmp = xasprintf("%s/.%s.XXXXXX", dir, name);
    int rc = -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        savedir_fail(err, "create", tmp, errno);
        free(tmp);
        return -1;
    }
    if (fchmod(fd, 0644) != 0) {
        savedir_fail(err, "set the mode of", tmp, errno);
    } else if (savedir_write_all(fd, data, len) != 0) {
        savedir_fail(err, "write", tmp, errno);
    } else if (fsync(fd) != 0) {
        savedir_fail(err, "sync", tmp, errno);
    } else {
        rc = 0;
    }
    if (close(fd) != 0 && rc == 0) rc = savedir_fail(err, "close", tmp, errno);
    if (rc == 0 && rename(tmp, final) != 0) rc = savedir_fail(err, "rename to", final, errno);
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

int savedir_store(const char *dir, const char *sha1_hex, const char *ext, const unsigned char *data, size_t len,
                  bool *written, char err[SAVEDIR_ERROR_MAX]) {
    if (written) *written = false;
    if (strlen(sha1_hex) != 40 || strchr(sha1_hex, '/') || strchr(ext, '/')) {
        snprintf(err, SAVEDIR_ERROR_MAX, "cannot store a file named '%s.%s': not a sha1", sha1_hex, ext);
        return -1;
    }
    char *final = savedir_path(dir, sha1_hex, ext);
    char *level1 = xasprintf("%s/%.2s", dir, sha1_hex);
    char *level2 = xasprintf("%s/%.2s", level1, sha1_hex + 2);
    char *name = xasprintf("%s.%s", sha1_hex, ext);
    int rc = 0;
    struct stat st;
    if (stat(final, &st) == 0) goto done; /* kept already: the name is the content */
    if (errno != ENOENT) {
        rc = savedir_fail(err, "look for", final, errno);
        goto done;
    }
    rc = savedir_make_dir(level1, dir, err);
    if (rc == 0) rc = savedir_make_dir(level2, level1, err);
    if (rc == 0) rc = savedir_write_file(level2, name, final, data, len, err);
    if (rc == 0) rc = savedir_sync_dir(level2, err);
    if (rc == 0 && written) *written = true;
done:
    free(name);
    free(level2);
    free(level1);
    free(final);
    return rc;
}
