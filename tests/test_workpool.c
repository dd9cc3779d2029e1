/* test_workpool.c -- hasher/workpool.c: jobs run on the threads and come back.
 *
 * Every job records the thread it ran on and the pool's notify counts its
 * calls; the owner waits on a condition variable that notify signals, which
 * is how the consumer's poll is woken.  Nothing is timed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workpool.h"
#include "xalloc.h"

typedef struct test_job {
    workpool_job job;
    int n;
    long result;
    pthread_t thread;
} test_job;

/* The notify callback as the consumer uses it: a wake-up that stays pending
 * until the owner waits for it (as curl_multi_wakeup does for a poll). */
typedef struct notifier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool pending;
    atomic_int calls;
} notifier;

static void notify(void *userdata) {
    notifier *nt = userdata;
    pthread_mutex_lock(&nt->lock);
    atomic_fetch_add(&nt->calls, 1);
    nt->pending = true;
    pthread_cond_signal(&nt->cond);
    pthread_mutex_unlock(&nt->lock);
}

static void notifier_wait(notifier *nt) {
    pthread_mutex_lock(&nt->lock);
    while (!nt->pending)
        pthread_cond_wait(&nt->cond, &nt->lock);
    nt->pending = false;
    pthread_mutex_unlock(&nt->lock);
}

/* Takes one job, waiting for a wake-up whenever the finished list is empty:
 * a job finished while the owner is not looking must wake it. */
static workpool_job *take_waiting(workpool *p, notifier *nt) {
    workpool_job *job;
    while (!(job = workpool_take(p)))
        notifier_wait(nt);
    return job;
}

static void run_job(workpool_job *job) {
    test_job *t = (test_job *)((char *)job - offsetof(test_job, job));
    long sum = 0;
    for (int i = 0; i <= t->n * 1000; i++)
        sum += i % 7;
    t->result = sum;
    t->thread = pthread_self();
}

#define NJOBS 200

static void test_jobs_come_back(void **state) {
    (void)state;
    notifier nt = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    workpool *p = workpool_new(4, notify, &nt);
    assert_non_null(p);
    assert_int_equal(workpool_threads(p), 4);
    test_job *jobs = xcalloc(NJOBS, sizeof *jobs);
    for (int i = 0; i < NJOBS; i++) {
        jobs[i].n = i;
        jobs[i].job.run = run_job;
        workpool_submit(p, &jobs[i].job);
    }
    assert_int_equal(workpool_backlog(p), NJOBS);
    int taken = 0;
    bool *seen = xcalloc(NJOBS, sizeof *seen);
    while (taken < NJOBS) {
        workpool_job *job = take_waiting(p, &nt);
        test_job *t = (test_job *)((char *)job - offsetof(test_job, job));
        assert_false(seen[t->n]);
        seen[t->n] = true;
        assert_false(pthread_equal(t->thread, pthread_self()));
        long expected = 0;
        for (int i = 0; i <= t->n * 1000; i++)
            expected += i % 7;
        assert_int_equal(t->result, expected);
        taken++;
    }
    assert_int_equal(workpool_backlog(p), 0);
    assert_null(workpool_take(p));
    assert_in_range(atomic_load(&nt.calls), 1, NJOBS);
    workpool_free(p);
    workpool_free(NULL);
    free(seen);
    free(jobs);
}

/* A gate job: it blocks its worker until the test opens the gate. */
typedef struct gate {
    workpool_job job;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started, open;
} gate;

static void run_gate(workpool_job *job) {
    gate *g = (gate *)((char *)job - offsetof(gate, job));
    pthread_mutex_lock(&g->lock);
    g->started = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Jobs finished while the owner does not take cost one notification in all:
 * only the job that finds the finished list empty notifies.  One thread runs
 * the jobs in order, so when the gate job (the last) has started, the 30
 * before it are all on the finished list. */
static void test_notify_once_per_empty_list(void **state) {
    (void)state;
    notifier nt = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .job.run = run_gate};
    workpool *p = workpool_new(1, notify, &nt);
    assert_non_null(p);
    test_job jobs[30] = {0};
    for (int i = 0; i < 30; i++) {
        jobs[i].n = i;
        jobs[i].job.run = run_job;
        workpool_submit(p, &jobs[i].job);
    }
    workpool_submit(p, &g.job);
    pthread_mutex_lock(&g.lock);
    while (!g.started)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    assert_int_equal(atomic_load(&nt.calls), 1);
    for (int i = 0; i < 30; i++)
        assert_ptr_equal(workpool_take(p), &jobs[i].job); /* in the order they finished */
    assert_null(workpool_take(p));
    pthread_mutex_lock(&g.lock);
    g.open = true;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    /* The list is empty again: the gate job's finish must notify. */
    assert_ptr_equal(take_waiting(p, &nt), &g.job);
    assert_int_equal(atomic_load(&nt.calls), 2);
    assert_int_equal(workpool_backlog(p), 0);
    workpool_free(p);
}

/* Freeing a pool with queued jobs neither runs nor touches them again. */
static void test_free_with_queue(void **state) {
    (void)state;
    workpool *p = workpool_new(1, NULL, NULL);
    test_job *jobs = xcalloc(50, sizeof *jobs);
    for (int i = 0; i < 50; i++) {
        jobs[i].n = 100;
        jobs[i].job.run = run_job;
        workpool_submit(p, &jobs[i].job);
    }
    workpool_free(p);
    free(jobs);
    assert_true(workpool_online_cores() >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_come_back),
        cmocka_unit_test(test_notify_once_per_empty_list),
        cmocka_unit_test(test_free_with_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
