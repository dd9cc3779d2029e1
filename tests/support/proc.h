/* proc.h -- imgfeed's programs as child processes of a test.
 *
 * The daemon tests run the real executables (imgfeed-hasher,
 * imgfeed-archiver, …) the way a user does, then kill them, stop them with
 * SIGTERM, or wait for them.  Each child writes stdout and stderr to its own
 * log file, shown on failure.  One child at a time is "current": the
 * teardown of a failed test kills it (proc_kill_current), so a failing test
 * leaves no process behind.
 *
 * Every failure fails the test (cmocka).
 */
#ifndef IMGFEED_TEST_PROC_H
#define IMGFEED_TEST_PROC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PROC_GUARD_MS 180000 /* longest proc_wait waits before failing the test */

typedef struct proc {
    pid_t pid; /* 0 when not running */
    char *log; /* its stdout and stderr */
    char *name;
} proc;

/* Start BINARY with ARGV (argv[0] included, NULL-terminated); the log goes to
 * /tmp/imgfeed-<name>-<pid>-<n>.log. */
void proc_start(proc *p, const char *binary, const char *const *argv);
/* Start one of imgfeed's programs from the build tree: PROGRAM is its path
 * under IMGFEED_BINARY_DIR ("archiver/imgfeed-archiver"), run with
 * --exchange EXCHANGE --amqp-heartbeat 5s, then ARGS (NULL-terminated, may
 * be NULL; at most 32).  Releases what P held from an earlier run first. */
void proc_start_imgfeed(proc *p, const char *program, const char *exchange, const char *const *args);
/* The same through LAUNCHER (an argv prefix, NULL-terminated, at most 8; NULL:
 * none), e.g. {"/bin/bash", "deploy/netns.sh", "run", DIR, "w1", NULL}: the
 * launcher must exec the program (the pid stays the program's), and the
 * proc's name and log are the program's. */
void proc_start_imgfeed_in(proc *p, const char *const *launcher, const char *program, const char *exchange,
                           const char *const *args);
/* Wait for the child to exit; its status, or 128 + the signal. */
int proc_wait(proc *p);
/* Whether the running child has exited (not reaped: proc_wait gives its
 * status).  False when P is not running. */
bool proc_exited(const proc *p);
/* SIGTERM, and the exit status must be 0. */
void proc_stop(proc *p);
/* proc_stop, and how many seconds the child took to exit. */
double proc_stop_timed(proc *p);
/* How many lines of the child's log hold TEXT (0 before the log exists). */
int proc_log_count(const proc *p, const char *text);
/* Wait until the child's log holds TEXT; fails the test after PROC_GUARD_MS. */
void proc_wait_log(const proc *p, const char *text);
/* The port of the newest "(port N)" in the child's log: where a server
 * started with --listen HOST:0 listens.  Fails the test when there is none. */
int proc_log_port(const proc *p);
/* SIGKILL and reap. */
void proc_kill(proc *p);
/* Print the last lines of the log to stderr. */
void proc_print_log(const proc *p);
/* Remove the log file and free; the process must have been waited for. */
void proc_release(proc *p);
/* Kill and reap every child still running (for teardowns), printing their logs. */
void proc_kill_all(void);
/* Print the logs of the N children ALL[i] that ran, then fail the test with
 * the printf-formatted FMT and AP (for a harness's own fail-with-logs). */
void proc_vfail_logs(proc *const *all, size_t n, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Peak resident memory (kB) and CPU seconds used so far, of a live child. */
long proc_peak_rss_kb(pid_t pid);
double proc_cpu_seconds(pid_t pid);

#endif
