/* seenlog.c -- a board's published ids in a journal on disk; see seenlog.h.
 *
 * Two seensets: `seen`, the committed ids (those in the journal, or imported
 * and due to be written), and `pend_set`, the ids emitted since the last
 * commit, whose order is kept in `pend` so that the journal lists them as
 * they were published.  `lines` counts the journal's lines, to know when it
 * has grown past twice `max` and is compacted.
 */
#include "seenlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbuf.h"
#include "seenset.h"
#include "statefile.h"
#include "urltmpl.h"
#include "xalloc.h"

struct seenlog {
    char *path;
    size_t max;
    seenset *seen;
    seenset *pend_set;
    char **pend; /* the pending ids in order */
    size_t npend, pend_cap;
    size_t lines;      /* lines in the journal */
    bool exists;       /* the journal file is there (its directory entry synced) */
    bool compact_due;  /* imported ids are not in the journal yet */
};

/* Read the journal: every whole line decoded into SEEN; a cut last line is
 * truncated away.  0, or -1 with WHY. */
static int seenlog_read(seenlog *l, char *why, size_t whylen) {
    FILE *f = fopen(l->path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(why, whylen, "cannot read %s: %s", l->path, strerror(errno));
        return -1;
    }
    l->exists = true;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t whole = 0; /* bytes of whole lines */
    sbuf id = {0};
    int rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* cut by a crash: not committed */
        id.len = 0;
        if (n == 1 || urltmpl_percent_decode_to(&id, line, (size_t)n - 1) != 0) {
            snprintf(why, whylen, "%s: line %zu is not a percent-encoded id", l->path, l->lines + 1);
            rc = -1;
            break;
        }
        sbuf_addc(&id, '\0');
        seenset_add(l->seen, id.p);
        l->lines++;
        whole += n;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, whylen, "cannot read %s: %s", l->path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    free(line);
    free(id.p);
    struct stat st;
    if (rc == 0 && stat(l->path, &st) == 0 && st.st_size > whole && truncate(l->path, whole) != 0) {
        snprintf(why, whylen, "cannot cut the unfinished last line of %s: %s", l->path, strerror(errno));
        rc = -1;
    }
    return rc;
}

seenlog *seenlog_open(const char *state_path, size_t max, char *why, size_t whylen) {
    seenlog *l = xcalloc(1, sizeof *l);
    l->path = xasprintf("%s.seen", state_path);
    l->max = max ? max : 1;
    l->seen = seenset_new(l->max);
    l->pend_set = seenset_new(l->max);
    if (seenlog_read(l, why, whylen) != 0) {
        seenlog_close(l);
        return NULL;
    }
    return l;
}

static void seenlog_pend_clear(seenlog *l) {
    for (size_t i = 0; i < l->npend; i++)
        free(l->pend[i]);
    if (l->npend) {
        seenset_free(l->pend_set);
        l->pend_set = seenset_new(l->max);
    }
    l->npend = 0;
}

void seenlog_close(seenlog *l) {
    if (!l) return;
    seenlog_pend_clear(l);
    free(l->pend);
    seenset_free(l->seen);
    seenset_free(l->pend_set);
    free(l->path);
    free(l);
}

int seenlog_import(seenlog *l, json_object *a, char *why, size_t whylen) {
    if (seenset_from_json(l->seen, a, why, whylen) != 0) return -1;
    l->compact_due = true;
    return 0;
}

bool seenlog_has(const seenlog *l, const char *id) {
    return seenset_has(l->seen, id) || seenset_has(l->pend_set, id);
}

void seenlog_pend(seenlog *l, const char *id) {
    if (seenlog_has(l, id)) return;
    if (l->npend == l->pend_cap) {
        l->pend_cap = l->pend_cap ? 2 * l->pend_cap : 64;
        l->pend = xrealloc(l->pend, l->pend_cap * sizeof *l->pend);
    }
    l->pend[l->npend++] = xstrdup(id);
    seenset_add(l->pend_set, id);
}

size_t seenlog_pending(const seenlog *l) { return l->npend; }
size_t seenlog_count(const seenlog *l) { return seenset_count(l->seen); }
const char *seenlog_path(const seenlog *l) { return l->path; }

void seenlog_drop(seenlog *l) { seenlog_pend_clear(l); }

/* Write every remembered id as the new journal. */
static int seenlog_compact(seenlog *l, char *why, size_t whylen) {
    sbuf text = {0};
    size_t n = seenset_count(l->seen);
    for (size_t i = 0; i < n; i++) {
        urltmpl_percent_encode_to(&text, seenset_id(l->seen, i));
        sbuf_addc(&text, '\n');
    }
    int rc = statefile_replace(l->path, text.p ? text.p : "", text.len, why, whylen);
    free(text.p);
    if (rc == 0) {
        l->lines = n;
        l->exists = true;
        l->compact_due = false;
    }
    return rc;
}

/* Append the pending ids' lines to the journal and fdatasync it. */
static int seenlog_append(seenlog *l, char *why, size_t whylen) {
    sbuf text = {0};
    for (size_t i = 0; i < l->npend; i++) {
        urltmpl_percent_encode_to(&text, l->pend[i]);
        sbuf_addc(&text, '\n');
    }
    int rc = -1;
    int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, whylen, "cannot write %s: %s", l->path, strerror(errno));
    } else if (statefile_write_all(fd, l->path, text.p, text.len, why, whylen) == 0) {
        if (fdatasync(fd) != 0) {
            snprintf(why, whylen, "cannot write %s: %s", l->path, strerror(errno));
        } else {
            rc = 0;
        }
    }
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        snprintf(why, whylen, "cannot write %s: %s", l->path, strerror(errno));
        rc = -1;
    }
    free(text.p);
    if (rc == 0) {
        if (!l->exists) statefile_sync_dir(l->path);
        l->exists = true;
        l->lines += l->npend;
    }
    return rc;
}

int seenlog_commit(seenlog *l, char *why, size_t whylen) {
    if (!l->npend && !l->compact_due) return 0;
    for (size_t i = 0; i < l->npend; i++)
        seenset_add(l->seen, l->pend[i]);
    int rc = l->compact_due || l->lines + l->npend > 2 * l->max ? seenlog_compact(l, why, whylen)
                                                                 : seenlog_append(l, why, whylen);
    seenlog_pend_clear(l);
    return rc;
}
