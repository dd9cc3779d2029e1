/* zpart.c -- zstd part files written whole or not at all; see zpart.h.
 *
 * States of a writer: idle (no part) -> open (zpart_begin: the temporary
 * file exists, a frame is being compressed) -> idle again through
 * zpart_commit (renamed) or zpart_abort (removed).  A failure inside an
 * open part leaves it open for the caller's zpart_abort.
 */
#include "zpart.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "xalloc.h"

struct zpart_writer {
    ZSTD_CCtx *cctx;
    void *out;
    size_t outcap;
    int fd;           /* -1 when idle */
    char *tmp, *path; /* the part's temporary and final paths */
    uint64_t written, given;
};

zpart_writer *zpart_writer_new(int level, char *why, size_t whylen) {
    if (level < 1 || level > 19) {
        snprintf(why, whylen, "zstd level %d is outside 1..19", level);
        return NULL;
    }
    zpart_writer *w = xcalloc(1, sizeof *w);
    w->fd = -1;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        snprintf(why, whylen, "cannot make a zstd context");
        free(w);
        return NULL;
    }
    size_t r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r)) {
        snprintf(why, whylen, "cannot set up zstd: %s", ZSTD_getErrorName(r));
        zpart_writer_free(w);
        return NULL;
    }
    w->outcap = ZSTD_CStreamOutSize();
    w->out = xmalloc(w->outcap);
    return w;
}

void zpart_writer_free(zpart_writer *w) {
    if (!w) return;
    zpart_abort(w);
    ZSTD_freeCCtx(w->cctx);
    free(w->out);
    free(w);
}

static void zpart_forget(zpart_writer *w) {
    free(w->tmp);
    free(w->path);
    w->tmp = w->path = NULL;
    w->fd = -1;
}

void zpart_abort(zpart_writer *w) {
    if (w->fd < 0) return;
    close(w->fd);
    unlink(w->tmp);
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    zpart_forget(w);
}

int zpart_begin(zpart_writer *w, const char *dir, const char *name, char *why, size_t whylen) {
    zpart_abort(w);
    w->tmp = xasprintf("%s/.%s.tmp", dir, name);
    w->path = xasprintf("%s/%s", dir, name);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        snprintf(why, whylen, "cannot create %s: %s", w->tmp, strerror(e));
        zpart_forget(w);
        errno = e;
        return -1;
    }
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    w->written = w->given = 0;
    return 0;
}

static int zpart_flush_out(zpart_writer *w, size_t n, char *why, size_t whylen) {
    const char *p = w->out;
    while (n > 0) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            snprintf(why, whylen, "cannot write %s: %s", w->tmp, strerror(e));
            errno = e;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        w->written += (uint64_t)r;
    }
    return 0;
}

/* Compress IN with MODE until the input is taken (continue) or the frame is
 * ended (end). */
static int zpart_pump(zpart_writer *w, const void *data, size_t len, ZSTD_EndDirective mode, char *why, size_t whylen) {
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->out, w->outcap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) {
            snprintf(why, whylen, "zstd cannot compress %s: %s", w->tmp, ZSTD_getErrorName(left));
            errno = EIO;
            return -1;
        }
        if (out.pos && zpart_flush_out(w, out.pos, why, whylen) != 0) return -1;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return 0;
    }
}

int zpart_add(zpart_writer *w, const void *data, size_t len, char *why, size_t whylen) {
    if (w->fd < 0) {
        snprintf(why, whylen, "no part is open");
        errno = EINVAL;
        return -1;
    }
    w->given += len;
    return zpart_pump(w, data, len, ZSTD_e_continue, why, whylen);
}

uint64_t zpart_written(const zpart_writer *w) { return w->written; }

uint64_t zpart_given(const zpart_writer *w) { return w->given; }

int zpart_commit(zpart_writer *w, uint64_t *bytes, char *why, size_t whylen) {
    if (w->fd < 0) {
        snprintf(why, whylen, "no part is open");
        errno = EINVAL;
        return -1;
    }
    int e = 0;
    if (zpart_pump(w, NULL, 0, ZSTD_e_end, why, whylen) != 0) {
        e = errno;
    } else if (fsync(w->fd) != 0) {
        e = errno;
        snprintf(why, whylen, "cannot write %s (fsync): %s", w->tmp, strerror(e));
    }
    if (e != 0) {
        zpart_abort(w);
        errno = e;
        return -1;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        e = errno;
        snprintf(why, whylen, "cannot write %s (close): %s", w->tmp, strerror(e));
    } else if (rename(w->tmp, w->path) != 0) {
        e = errno;
        snprintf(why, whylen, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(e));
    }
    if (e != 0) {
        unlink(w->tmp);
        ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
        zpart_forget(w);
        errno = e;
        return -1;
    }
    *bytes = w->written;
    zpart_forget(w);
    return 0;
}

int zpart_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}
