/* workpool.c -- worker threads with a queue in and a queue out.
 *
 * One mutex guards both lists (FIFO queues of intrusive jobs) and the stop
 * flag; workers sleep on one condition variable until a job is queued or the
 * pool stops.  A worker calls the notify callback only when the job it
 * finished is the first on the finished list: the owner takes jobs until the
 * list is empty, so the ones finished meanwhile need no wake-up of their own
 * (one wake-up, a write to curl's wake-up pipe and a switch of thread, for
 * many results when images are small and finish close together).  The owner's backlog count is kept by the owner alone
 * (incremented by submit, decremented by take), so it needs no lock.
 */
#include "workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

typedef struct workpool_list {
    workpool_job *head, *tail;
} workpool_list;

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    workpool_list queued, finished;
    bool stopping;
    pthread_t *threads;
    int nthreads;
    size_t backlog; /* owner's */
    workpool_notify_fn notify;
    void *userdata;
};

static void workpool_push(workpool_list *l, workpool_job *job) {
    job->next = NULL;
    if (l->tail) {
        l->tail->next = job;
    } else {
        l->head = job;
    }
    l->tail = job;
}

static workpool_job *workpool_pop(workpool_list *l) {
    workpool_job *job = l->head;
    if (!job) return NULL;
    l->head = job->next;
    if (!l->head) l->tail = NULL;
    job->next = NULL;
    return job;
}

static void *workpool_worker(void *arg) {
    workpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && !p->queued.head)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping) break;
        workpool_job *job = workpool_pop(&p->queued);
        pthread_mutex_unlock(&p->lock);
        job->run(job);
        pthread_mutex_lock(&p->lock);
        bool first = !p->finished.head;
        workpool_push(&p->finished, job);
        if (first && p->notify) {
            /* Only the job that finds the list empty notifies: the owner
             * takes until the list is empty, so a later one is taken with it. */
            pthread_mutex_unlock(&p->lock);
            p->notify(p->userdata);
            pthread_mutex_lock(&p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int workpool_online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

workpool *workpool_new(int threads, workpool_notify_fn notify, void *userdata) {
    if (threads < 1) threads = 1;
    workpool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->notify = notify;
    p->userdata = userdata;
    p->threads = xcalloc((size_t)threads, sizeof *p->threads);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, workpool_worker, p);
        if (rc != 0) {
            log_warn("cannot start hashing thread %d of %d: %s", i + 1, threads, strerror(rc));
            break;
        }
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        log_error("cannot start any hashing thread");
        workpool_free(p);
        return NULL;
    }
    return p;
}

void workpool_free(workpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

void workpool_submit(workpool *p, workpool_job *job) {
    pthread_mutex_lock(&p->lock);
    workpool_push(&p->queued, job);
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    p->backlog++;
}

workpool_job *workpool_take(workpool *p) {
    pthread_mutex_lock(&p->lock);
    workpool_job *job = workpool_pop(&p->finished);
    pthread_mutex_unlock(&p->lock);
    if (job) p->backlog--;
    return job;
}

size_t workpool_backlog(const workpool *p) { return p->backlog; }

int workpool_threads(const workpool *p) { return p->nthreads; }
