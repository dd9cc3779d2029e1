/* plot.c -- matplotlib run as a child; see plot.h.
 *
 * The child's standard input is a pipe carrying plot.py; its standard error
 * is a pipe whose last 2 KiB are kept for the error message (what it printed
 * before, warnings included, is dropped as it comes, so a chatty plotter
 * cannot fill memory).  Standard output goes to our standard error.  A
 * plotter that cannot be started is found through a close-on-exec pipe
 * that carries exec's errno.
 */
#define _GNU_SOURCE /* pipe2 */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

extern const char report_plot_py[];

const char *const plot_figures[] = {"labels",     "per_day", "formats",    "sizes",  "dimensions",
                                    "brightness", "colour",  "duplicates", "errors", NULL};

static void plot_close(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

int plot_run(const char *python, const char *report_json, const char *outdir, char *why, size_t whylen) {
    int in[2] = {-1, -1}, err[2] = {-1, -1}, ex[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(ex, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "cannot run the plotter: pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            plot_close(&in[i]);
            plot_close(&err[i]);
            plot_close(&ex[i]);
        }
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(err[1], 2);
        dup2(err[1], 1);
        signal(SIGPIPE, SIG_DFL);
        setenv("MPLBACKEND", "Agg", 1);
        execlp(python, python, "-I", "-", report_json, outdir, (char *)NULL);
        int e = errno;
        if (write(ex[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    plot_close(&in[0]);
    plot_close(&err[1]);
    plot_close(&ex[1]);
    if (pid < 0) {
        snprintf(why, whylen, "cannot run the plotter %s: fork: %s", python, strerror(errno));
        plot_close(&in[1]);
        plot_close(&err[0]);
        plot_close(&ex[0]);
        return -1;
    }
    int exec_errno = 0;
    ssize_t got = read(ex[0], &exec_errno, sizeof exec_errno);
    plot_close(&ex[0]);
    /* the script, while keeping the tail of what the child prints */
    char tail[2048];
    size_t tlen = 0;
    const char *script = report_plot_py;
    size_t left = got == (ssize_t)sizeof exec_errno ? 0 : strlen(script);
    if (left == 0) plot_close(&in[1]);
    while (err[0] >= 0) {
        struct pollfd p[2] = {{.fd = err[0], .events = POLLIN}, {.fd = in[1], .events = POLLOUT}};
        if (poll(p, in[1] >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], script, left);
            if (w > 0) {
                script += w;
                left -= (size_t)w;
            }
            if (w < 0 && errno != EINTR && errno != EAGAIN) left = 0;
            if (left == 0) plot_close(&in[1]);
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[1024];
            ssize_t r = read(err[0], buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                plot_close(&err[0]);
                break;
            }
            for (ssize_t i = 0; i < r; i++) {
                if (tlen == sizeof tail - 1) {
                    memmove(tail, tail + sizeof tail / 2, tlen - sizeof tail / 2);
                    tlen -= sizeof tail / 2;
                }
                tail[tlen++] = buf[i];
            }
        }
    }
    plot_close(&in[1]);
    plot_close(&err[0]);
    tail[tlen] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got == (ssize_t)sizeof exec_errno) {
        snprintf(why, whylen, "cannot run the plotter %s: %s (Debian: apt-get install python3 python3-matplotlib)",
                 python, strerror(exec_errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (tlen) log_debug("the plotter said: %s", tail);
        return 0;
    }
    /* the last lines, made one line */
    while (tlen && (tail[tlen - 1] == '\n' || tail[tlen - 1] == ' '))
        tail[--tlen] = '\0';
    const char *last = tail;
    int lines = 0;
    for (size_t i = tlen; i-- > 0;)
        if (tail[i] == '\n' && ++lines == 3) {
            last = tail + i + 1;
            break;
        }
    char one[sizeof tail];
    size_t k = 0;
    for (const char *c = last; *c && k + 1 < sizeof one; c++)
        one[k++] = *c == '\n' ? ' ' : *c;
    one[k] = '\0';
    if (WIFEXITED(status))
        snprintf(why, whylen, "the plotter %s failed (exit %d): %s", python, WEXITSTATUS(status),
                 k ? one : "it printed nothing");
    else
        snprintf(why, whylen, "the plotter %s was killed by signal %d: %s", python,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0, k ? one : "it printed nothing");
    return -1;
}
