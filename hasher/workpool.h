/* workpool.h -- a fixed set of threads that run jobs, for the hashing.
 *
 * The consumer's main thread downloads and talks to the broker; decoding and
 * hashing an image takes CPU for milliseconds to seconds, so it runs here, on
 * as many threads as the machine has cores.  The main thread submits jobs
 * (workpool_submit) and later takes them back finished (workpool_take), in
 * the order they finished.  When a finished job finds the finished list
 * empty, its worker calls the notify function, which the consumer uses to
 * wake its poll (curl_multi_wakeup), so the main thread never waits for a
 * result it could already have.  The owner must therefore take until
 * workpool_take returns NULL each time it is woken.
 *
 * A job is the caller's memory: a workpool_job embedded in the caller's own
 * struct, whose run function finds that struct again (offsetof).  The pool
 * only links jobs into its two lists; run is called on a worker thread and
 * must touch nothing the main thread uses meanwhile.
 *
 * workpool_new returns a pool the caller frees with workpool_free, which
 * waits for the jobs running and drops (does not run) the jobs still queued:
 * their memory stays the caller's.  Submit, take and backlog are for one
 * thread (the owner); notify is called from the workers.
 */
#ifndef IMGFEED_WORKPOOL_H
#define IMGFEED_WORKPOOL_H

#include <stddef.h>

typedef struct workpool workpool;
typedef struct workpool_job workpool_job;

struct workpool_job {
    void (*run)(workpool_job *job); /* set by the caller; called on a worker thread */
    workpool_job *next;             /* the pool's */
};

typedef void (*workpool_notify_fn)(void *userdata);

/* A pool of THREADS threads (at least 1).  NOTIFY (may be NULL) is called
 * with USERDATA on the worker thread after each job, without locks held.
 * Returns NULL, logged, when no thread can be started. */
workpool *workpool_new(int threads, workpool_notify_fn notify, void *userdata);
void workpool_free(workpool *p);

void workpool_submit(workpool *p, workpool_job *job);
/* A finished job, or NULL when none has finished since the last take. */
workpool_job *workpool_take(workpool *p);
/* Jobs submitted and not yet taken back. */
size_t workpool_backlog(const workpool *p);
int workpool_threads(const workpool *p);

/* The number of online CPU cores (at least 1). */
int workpool_online_cores(void);

#endif
