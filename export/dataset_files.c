/* dataset_files.c -- pictures into the dataset folder; see dataset_files.h.
 *
 * A temporary file is DIR/.tmp/<pid>-<n>; the final directories
 * (<split>/<label>) are made on the first rename that misses them.  A
 * hard link is made to a temporary name and renamed too, so that a link
 * never lands half-way under a final name either (rename replaces
 * atomically).
 */
#define _GNU_SOURCE
#include "dataset_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "xalloc.h"

static int dsf_fail(dsf *f, char why[DSF_WHY_MAX], const char *what, const char *path, int errnum) {
    if (errnum == ENOSPC || errnum == EDQUOT) f->no_space = true;
    snprintf(why, DSF_WHY_MAX, "cannot %s %s: %s", what, path, strerror(errnum));
    return -1;
}

/* mkdir -p PATH. */
static int dsf_mkdirs(dsf *f, const char *path, char why[DSF_WHY_MAX]) {
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = dsf_fail(f, why, "create directory", p, errno);
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) != 0 && errno != EEXIST) rc = dsf_fail(f, why, "create directory", p, errno);
    free(p);
    return rc;
}

int dsf_open(dsf *f, const char *dir, bool copy, char why[DSF_WHY_MAX]) {
    memset(f, 0, sizeof *f);
    f->dir = xstrdup(dir);
    f->tmp_dir = xasprintf("%s/.tmp", dir);
    f->copy = copy;
    if (dsf_mkdirs(f, f->tmp_dir, why) != 0) return -1;
    DIR *d = opendir(f->tmp_dir);
    if (!d) return dsf_fail(f, why, "open directory", f->tmp_dir, errno);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = xasprintf("%s/%s", f->tmp_dir, e->d_name);
        if (unlink(p) != 0 && errno != ENOENT) {
            int err = errno;
            free(p);
            closedir(d);
            char *t = xstrdup(f->tmp_dir);
            dsf_fail(f, why, "empty", t, err);
            free(t);
            return -1;
        }
        free(p);
    }
    closedir(d);
    return 0;
}

void dsf_close(dsf *f) {
    if (f->tmp_dir) rmdir(f->tmp_dir); /* only when empty */
    free(f->dir);
    free(f->tmp_dir);
    f->dir = f->tmp_dir = NULL;
}

char *dsf_path(const dsf *f, const char *rel) { return xasprintf("%s/%s", f->dir, rel); }

char *dsf_tmp_path(dsf *f) {
    return xasprintf("%s/%ld-%llu", f->tmp_dir, (long)getpid(), (unsigned long long)++f->seq);
}

bool dsf_present(const dsf *f, const char *rel, int64_t size) {
    char *p = dsf_path(f, rel);
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
    free(p);
    return ok;
}

int dsf_sync_dir(const char *dir, char why[DSF_WHY_MAX]) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(why, DSF_WHY_MAX, "cannot sync directory %s: %s", dir, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* rename TMP to DIR/REL, making REL's directories when missing. */
static int dsf_rename(dsf *f, const char *tmp, const char *rel, char why[DSF_WHY_MAX]) {
    char *final = dsf_path(f, rel);
    int rc = 0;
    if (rename(tmp, final) != 0) {
        if (errno == ENOENT) {
            char *parent = xstrdup(final);
            *strrchr(parent, '/') = '\0';
            rc = dsf_mkdirs(f, parent, why);
            free(parent);
            if (rc == 0 && rename(tmp, final) != 0) rc = dsf_fail(f, why, "rename to", final, errno);
        } else {
            rc = dsf_fail(f, why, "rename to", final, errno);
        }
    }
    free(final);
    return rc;
}

static int dsf_write_all(int fd, const unsigned char *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Close a written temporary file after fsync; -1 with errno. */
static int dsf_finish(int fd) {
    int rc = fsync(fd);
    int err = errno;
    if (close(fd) != 0 && rc == 0) return -1;
    errno = err;
    return rc;
}

static void dsf_hex(const unsigned char *d, char out[41]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[40] = '\0';
}

/* Copy FD (from its start) into a new file TMP; -1 with why. */
static int dsf_copy_fd(dsf *f, int fd, const char *tmp, char why[DSF_WHY_MAX]) {
    int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) return dsf_fail(f, why, "create", tmp, errno);
    unsigned char buf[1 << 16];
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(out);
        unlink(tmp);
        return dsf_fail(f, why, "seek in", "the source", errno);
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            close(out);
            unlink(tmp);
            return dsf_fail(f, why, "read", "the source", err);
        }
        if (n == 0) break;
        if (dsf_write_all(out, buf, (size_t)n) != 0) {
            int err = errno;
            close(out);
            unlink(tmp);
            return dsf_fail(f, why, "write", tmp, err);
        }
    }
    if (dsf_finish(out) != 0) {
        int err = errno;
        unlink(tmp);
        return dsf_fail(f, why, "write", tmp, err);
    }
    return 0;
}

dsf_result dsf_place(dsf *f, const char *src, const char *rel, const unsigned char *sha1, char why[DSF_WHY_MAX]) {
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(why, DSF_WHY_MAX, "not in the save dir (%s)", src);
        else
            snprintf(why, DSF_WHY_MAX, "cannot open %s: %s", src, strerror(errno));
        return DSF_SOURCE_BAD;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha1(), NULL)) {
        EVP_MD_CTX_free(md);
        close(fd);
        snprintf(why, DSF_WHY_MAX, "cannot compute a sha1 (OpenSSL)");
        return DSF_FAILED;
    }
    unsigned char buf[1 << 16];
    dsf_result res = DSF_SOURCE_BAD;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(why, DSF_WHY_MAX, "cannot read %s: %s", src, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        EVP_DigestUpdate(md, buf, (size_t)n);
    }
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned int glen = 0;
    EVP_DigestFinal_ex(md, got, &glen);
    if (glen != 20 || memcmp(got, sha1, 20) != 0) {
        char hex[41];
        dsf_hex(got, hex);
        snprintf(why, DSF_WHY_MAX, "damaged in the save dir: %s has sha1 %s", src, hex);
        goto done;
    }
    char *tmp = dsf_tmp_path(f);
    res = DSF_FAILED;
    if (!f->copy && link(src, tmp) == 0) {
        res = DSF_LINKED;
    } else if (!f->copy && errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP) {
        dsf_fail(f, why, "link into", tmp, errno);
    } else if (dsf_copy_fd(f, fd, tmp, why) == 0) {
        res = DSF_COPIED;
    }
    if (res != DSF_FAILED && dsf_rename(f, tmp, rel, why) != 0) {
        unlink(tmp);
        res = DSF_FAILED;
    }
    free(tmp);
done:
    EVP_MD_CTX_free(md);
    close(fd);
    return res;
}

/* The LEN bytes at DATA into a new temporary file of the set, written and
 * fsync'd: its path (free() it), or NULL with WHY and nothing left behind. */
static char *dsf_write_tmp(dsf *f, const unsigned char *data, size_t len, char why[DSF_WHY_MAX]) {
    char *tmp = dsf_tmp_path(f);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        dsf_fail(f, why, "create", tmp, errno);
    } else if (dsf_write_all(fd, data, len) != 0) {
        dsf_fail(f, why, "write", tmp, errno);
        close(fd);
        unlink(tmp);
    } else if (dsf_finish(fd) != 0) {
        dsf_fail(f, why, "write", tmp, errno);
        unlink(tmp);
    } else {
        return tmp;
    }
    free(tmp);
    return NULL;
}

dsf_result dsf_write(dsf *f, const unsigned char *data, size_t len, const char *rel, const unsigned char *sha1,
                     char why[DSF_WHY_MAX]) {
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned int glen = 0;
    if (!EVP_Digest(data, len, got, &glen, EVP_sha1(), NULL) || glen != 20 || memcmp(got, sha1, 20) != 0) {
        char hex[41];
        dsf_hex(got, hex);
        snprintf(why, DSF_WHY_MAX, "the downloaded file differs from the archived one (sha1 %s)", hex);
        return DSF_SOURCE_BAD;
    }
    char *tmp = dsf_write_tmp(f, data, len, why);
    if (!tmp) return DSF_FAILED;
    dsf_result res = DSF_WRITTEN;
    if (dsf_rename(f, tmp, rel, why) != 0) {
        unlink(tmp);
        res = DSF_FAILED;
    }
    free(tmp);
    return res;
}

int dsf_commit(dsf *f, const char *tmp, const char *name, char why[DSF_WHY_MAX]) {
    char *final = dsf_path(f, name);
    int rc = 0;
    if (rename(tmp, final) != 0) rc = dsf_fail(f, why, "rename to", final, errno);
    free(final);
    return rc == 0 ? dsf_sync_dir(f->dir, why) : -1;
}

int dsf_write_text(dsf *f, const char *name, const char *buf, size_t len, char why[DSF_WHY_MAX]) {
    char *tmp = dsf_write_tmp(f, (const unsigned char *)buf, len, why);
    if (!tmp) return -1;
    int rc = dsf_commit(f, tmp, name, why);
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
