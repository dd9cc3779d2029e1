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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_sets_flag),
        cmocka_unit_test(test_sleep_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
