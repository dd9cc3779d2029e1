/* proc.c -- child processes for the daemon tests; see proc.h.
 *
 * Running children are kept in a small table so that a teardown can kill
 * whatever a failed test left running (cmocka leaves the test function at
 * the failed assertion).
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testenv.h"
#include "timeutil.h"
#include "xalloc.h"

#define PROC_MAX_RUNNING 16

static proc *proc_running[PROC_MAX_RUNNING];

static void proc_track(proc *p, bool on) {
    for (int i = 0; i < PROC_MAX_RUNNING; i++) {
        if (on && !proc_running[i]) {
            proc_running[i] = p;
            return;
        }
        if (!on && proc_running[i] == p) {
            proc_running[i] = NULL;
            return;
        }
    }
    if (on) fail_msg("more than %d children at once", PROC_MAX_RUNNING);
}

/* Start BINARY with ARGV, named (and its log named) after NAME's last part. */
static void proc_spawn(proc *p, const char *name, const char *binary, const char *const *argv) {
    static int serial;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    free(p->log);
    free(p->name);
    p->name = xstrdup(base);
    p->log = xasprintf("/tmp/imgfeed-%s-%d-%d.log", base, (int)getpid(), ++serial);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(binary, (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    proc_track(p, true);
}

void proc_start(proc *p, const char *binary, const char *const *argv) { proc_spawn(p, binary, binary, argv); }

void proc_start_imgfeed(proc *p, const char *program, const char *exchange, const char *const *args) {
    proc_start_imgfeed_in(p, NULL, program, exchange, args);
}

void proc_start_imgfeed_in(proc *p, const char *const *launcher, const char *program, const char *exchange,
                           const char *const *args) {
    char *binary = xasprintf("%s/%s", testenv_binary_dir(), program);
    const char *argv[48];
    int n = 0;
    for (size_t i = 0; launcher && launcher[i]; i++) {
        if (n == 8) fail_msg("too long a launcher for %s", program);
        argv[n++] = launcher[i];
    }
    argv[n++] = binary;
    argv[n++] = "--exchange";
    argv[n++] = exchange;
    argv[n++] = "--amqp-heartbeat";
    argv[n++] = "5s";
    for (size_t i = 0; args && args[i]; i++) {
        if (n == 47) fail_msg("too many arguments for %s", program);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    proc_release(p);
    proc_spawn(p, binary, argv[0], argv);
    free(binary);
}

void proc_print_log(const proc *p) {
    if (!p->log) return;
    fprintf(stderr, "--- last lines of %s (%s) ---\n", p->name ? p->name : "?", p->log);
    char *cmd = xasprintf("tail -n 60 '%s' >&2", p->log);
    if (system(cmd) != 0) fprintf(stderr, "cannot show %s\n", p->log);
    free(cmd);
}

bool proc_exited(const proc *p) {
    siginfo_t info = {0};
    return p->pid > 0 && waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p->pid;
}

int proc_wait(proc *p) {
    int64_t deadline = time_mono_ns() + PROC_GUARD_MS * TIME_NS_PER_MS;
    int status = 0;
    for (;;) {
        pid_t rc = waitpid(p->pid, &status, WNOHANG);
        if (rc == p->pid) break;
        if (rc < 0 && errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
        if (time_mono_ns() > deadline) {
            proc_print_log(p);
            fail_msg("%s did not exit", p->name);
        }
        time_sleep_ns(10 * TIME_NS_PER_MS);
    }
    p->pid = 0;
    proc_track(p, false);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void proc_stop(proc *p) {
    kill(p->pid, SIGTERM);
    int status = proc_wait(p);
    if (status != 0) {
        proc_print_log(p);
        fail_msg("%s exited with %d after SIGTERM", p->name, status);
    }
}

double proc_stop_timed(proc *p) {
    int64_t t0 = time_mono_ns();
    proc_stop(p);
    return (double)(time_mono_ns() - t0) / 1e9;
}

int proc_log_count(const proc *p, const char *text) {
    FILE *f = p->log ? fopen(p->log, "r") : NULL;
    if (!f) return 0; /* not written yet */
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, text)) n++;
    fclose(f);
    return n;
}

void proc_wait_log(const proc *p, const char *text) {
    int64_t deadline = time_mono_ns() + PROC_GUARD_MS * TIME_NS_PER_MS;
    while (proc_log_count(p, text) == 0) {
        if (time_mono_ns() > deadline) {
            proc_print_log(p);
            fail_msg("the log of %s never said '%s'", p->name, text);
        }
        time_sleep_ns(20 * TIME_NS_PER_MS);
    }
}

void proc_kill(proc *p) {
    if (p->pid <= 0) return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    proc_track(p, false);
}

void proc_release(proc *p) {
    if (p->log) unlink(p->log);
    free(p->log);
    free(p->name);
    p->log = p->name = NULL;
}

void proc_kill_all(void) {
    for (int i = 0; i < PROC_MAX_RUNNING; i++) {
        proc *p = proc_running[i];
        if (!p) continue;
        proc_print_log(p);
        proc_kill(p);
    }
}

void proc_vfail_logs(proc *const *all, size_t n, const char *fmt, va_list ap) {
    for (size_t i = 0; i < n; i++)
        if (all[i]->log) proc_print_log(all[i]);
    static char msg[4096]; /* not freed by a failure's longjmp: no leak to report */
    vsnprintf(msg, sizeof msg, fmt, ap);
    fail_msg("%s", msg);
}

long proc_peak_rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

double proc_cpu_seconds(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    assert_non_null(p);
    unsigned long utime = 0, stime = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

int proc_log_port(const proc *p) {
    FILE *f = fopen(p->log, "r");
    if (!f) fail_msg("%s: no log at %s", p->name, p->log);
    char line[1024];
    int port = 0;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "(port ");
        if (at) port = atoi(at + 6);
    }
    fclose(f);
    if (port <= 0) fail_msg("%s logged no port", p->name);
    return port;
}
