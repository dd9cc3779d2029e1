/* test_sig.c -- SIGTERM and SIGINT set the stop flag instead of killing, and
 * interruptible sleeps end early once it is set. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "sig.h"
#include "timeutil.h"

static void test_sigterm_sets_flag(void **state) {
    (void)state;
    sig_install();
    sig_reset();
    assert_false(sig_stop_requested());
    assert_true(time_sleep_ms(1)); /* no stop: the whole time passes */
    raise(SIGTERM);
    assert_true(sig_stop_requested()); /* and the process is still alive */
    sig_reset();
    raise(SIGINT);
    assert_true(sig_stop_requested());
    sig_reset();
}

static void *stop_later(void *arg) {
    (void)arg;
    time_sleep_ns(100 * TIME_NS_PER_MS);
    kill(getpid(), SIGTERM); /* process-directed, as a shell would send it */
    return NULL;
}

static void test_sleep_interrupted(void **state) {
    (void)state;
    sig_install();
    sig_reset();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, NULL), 0);
    /* An hour-long backoff must end once the stop is requested. */
    assert_false(time_sleep_ms(3600 * 1000));
    pthread_join(t, NULL);
    sig_reset();
}

/* A stop that was taken gives SIG_DRAIN_MS to drain: waits work again
 * until then, and give up after it, for good. */
static void test_drain_bounded(void **state) {
    (void)state;
    sig_install();
    sig_reset();
    assert_false(sig_draining());
    assert_int_equal(sig_drain_left_ms(), -1);
    raise(SIGTERM);
    assert_true(sig_take_stop());
    assert_false(sig_stop_requested()); /* the drain may publish and ack */
    assert_true(sig_draining());
    assert_true(sig_drain_left_ms() > 0 && sig_drain_left_ms() <= SIG_DRAIN_MS);
    int64_t t0 = time_mono_ns();
    assert_false(time_sleep_ms(3600 * 1000)); /* an hour-long wait ends with the drain */
    int64_t took_ms = (time_mono_ns() - t0) / TIME_NS_PER_MS;
    assert_true(took_ms >= SIG_DRAIN_MS - 100 && took_ms < 10 * SIG_DRAIN_MS);
    assert_true(sig_stop_requested());
    assert_int_equal(sig_drain_left_ms(), 0);
    assert_false(sig_take_stop()); /* nothing to take: it stays requested */
    assert_true(sig_stop_requested());
    sig_reset();
    assert_false(sig_stop_requested());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_sets_flag),
        cmocka_unit_test(test_sleep_interrupted),
        cmocka_unit_test(test_drain_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
