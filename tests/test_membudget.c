/* test_membudget.c -- common/membudget.c: the budget of bytes in flight.
 *
 * Grants within the limit, waits in order (a small request does not pass a
 * large one that waits), the oldest waiter going alone when only waiters
 * hold bytes, try that never queues, shrink, release, move, and the
 * statistics.  Pure bookkeeping: no memory is allocated for the bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "membudget.h"

static uint64_t used(const membudget *b) {
    membudget_stats s;
    membudget_get_stats(b, &s);
    return s.used;
}

static membudget_stats stats(const membudget *b) {
    membudget_stats s;
    membudget_get_stats(b, &s);
    return s;
}

static void test_within_limit(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim a, c;
    membudget_claim_init(&a, b);
    membudget_claim_init(&c, b);
    assert_true(membudget_reserve(&a, 60));
    assert_true(membudget_reserve(&c, 40));
    assert_int_equal(used(b), 100);
    assert_true(membudget_reserve(&a, 50)); /* less than held: nothing changes */
    assert_int_equal(a.held, 60);
    membudget_shrink(&a, 10);
    assert_int_equal(used(b), 50);
    assert_true(membudget_reserve(&a, 60)); /* grows again into what it gave back */
    membudget_release(&a);
    membudget_release(&c);
    assert_int_equal(used(b), 0);
    membudget_stats s = stats(b);
    assert_int_equal(s.peak, 100);
    assert_int_equal(s.waits, 0);
    assert_int_equal(s.overdrafts, 0);
    assert_int_equal(s.limit, 100);
    membudget_free(b);
    membudget_free(NULL);
}

/* Waiters are served in the order they began to wait, whatever their size. */
static void test_fifo(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim run, big, small, late;
    membudget_claim_init(&run, b);
    membudget_claim_init(&big, b);
    membudget_claim_init(&small, b);
    membudget_claim_init(&late, b);
    assert_true(membudget_reserve(&run, 70));
    assert_false(membudget_reserve(&big, 80)); /* waits */
    assert_true(big.waiting);
    assert_false(membudget_reserve(&small, 10)); /* would fit, but big waits longer */
    assert_false(membudget_try(&late, 10));      /* try never queues */
    assert_false(late.waiting);
    assert_int_equal(stats(b).waiting, 2);
    membudget_release(&run);
    assert_false(membudget_reserve(&small, 10)); /* still behind big */
    assert_true(membudget_reserve(&big, 80));
    assert_false(big.waiting);
    assert_true(membudget_reserve(&small, 10)); /* now the head, and 90 fit */
    assert_false(membudget_try(&late, 20));     /* does not fit */
    assert_true(membudget_try(&late, 10));
    assert_int_equal(used(b), 100);
    assert_int_equal(stats(b).waits, 2);
    assert_int_equal(stats(b).waiting, 0);
    membudget_release(&big);
    membudget_release(&small);
    membudget_release(&late);
    membudget_free(b);
}

/* No deadlock: when every byte held belongs to waiters, the oldest goes,
 * past the limit; while anything runs, nobody does. */
static void test_oldest_goes_alone(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim p1, p2, other;
    membudget_claim_init(&p1, b);
    membudget_claim_init(&p2, b);
    membudget_claim_init(&other, b);
    /* Two paused downloads holding their first bytes, each wanting more
     * than is left. */
    assert_true(membudget_reserve(&p1, 30));
    assert_true(membudget_reserve(&p2, 30));
    assert_true(membudget_reserve(&other, 30));
    assert_false(membudget_reserve(&p1, 80));
    assert_false(membudget_reserve(&p2, 80));
    assert_false(membudget_reserve(&p1, 80)); /* "other" runs: it will give back */
    membudget_release(&other);
    assert_false(membudget_reserve(&p2, 80)); /* p1 is older */
    assert_true(membudget_reserve(&p1, 80));  /* only waiters hold bytes: p1 goes, 110 of 100 */
    assert_int_equal(used(b), 110);
    assert_int_equal(stats(b).overdrafts, 1);
    assert_false(membudget_reserve(&p2, 80)); /* p1 runs now */
    membudget_release(&p1);
    assert_true(membudget_reserve(&p2, 80)); /* fits */
    assert_int_equal(stats(b).overdrafts, 1);
    membudget_release(&p2);

    /* A single request larger than the whole budget, nothing else held. */
    membudget_claim huge;
    membudget_claim_init(&huge, b);
    assert_true(membudget_try(&huge, 1000));
    assert_int_equal(used(b), 1000);
    assert_int_equal(stats(b).overdrafts, 2);
    assert_int_equal(stats(b).peak, 1000);
    membudget_release(&huge);
    membudget_free(b);
}

/* A waiter that gives up (a cancelled download) leaves the queue, and the
 * one behind it becomes the head. */
static void test_release_while_waiting(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim run, w1, w2;
    membudget_claim_init(&run, b);
    membudget_claim_init(&w1, b);
    membudget_claim_init(&w2, b);
    assert_true(membudget_reserve(&run, 90));
    assert_true(membudget_reserve(&w1, 5));
    assert_false(membudget_reserve(&w1, 50));
    assert_false(membudget_reserve(&w2, 5));
    membudget_shrink(&w1, 0); /* a waiter may shrink */
    membudget_release(&w1);
    assert_false(w1.waiting);
    assert_int_equal(stats(b).waiting, 1);
    assert_true(membudget_reserve(&w2, 5)); /* head now, and 95 fit */
    membudget_release(&run);
    membudget_release(&w2);
    assert_int_equal(used(b), 0);
    membudget_free(b);
}

/* Reservations of the first queue (hashing) go before the others
 * (downloads), however long those waited, and the deadlock rule picks the
 * first queue's oldest too. */
static void test_first_queue(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim download, hash1, hash2;
    membudget_claim_init(&download, b);
    membudget_claim_init(&hash1, b);
    membudget_claim_init(&hash2, b);
    assert_true(membudget_reserve(&download, 10));
    assert_true(membudget_reserve(&hash1, 40));        /* a downloaded body */
    assert_true(membudget_reserve(&hash2, 40));        /* another one */
    assert_false(membudget_reserve(&download, 60));    /* paused: waits */
    assert_false(membudget_reserve_first(&hash1, 70)); /* body + decoding: 120 of 100 */
    assert_false(membudget_reserve_first(&hash2, 50)); /* behind hash1 */
    assert_true(hash1.waiting && hash1.first);
    /* Everything held is held by waiters: hash1 goes alone, not the older download. */
    assert_false(membudget_reserve(&download, 60));
    assert_false(membudget_reserve_first(&hash2, 50));
    assert_true(membudget_reserve_first(&hash1, 70));
    assert_int_equal(used(b), 120);
    assert_int_equal(stats(b).overdrafts, 1);
    membudget_release(&hash1);                      /* hashed: body and decoding given back */
    assert_false(membudget_reserve(&download, 60)); /* hash2 first */
    assert_true(membudget_reserve_first(&hash2, 50));
    assert_false(membudget_reserve(&download, 60)); /* 50 + 60 > 100, and hash2 runs */
    membudget_release(&hash2);
    assert_true(membudget_reserve(&download, 60));
    membudget_release(&download);
    assert_int_equal(used(b), 0);
    assert_int_equal(stats(b).waiting, 0);
    membudget_free(b);
}

/* A downloaded body's claim moves from the download to the image. */
static void test_move(void **state) {
    (void)state;
    membudget *b = membudget_new(100);
    membudget_claim from, to;
    membudget_claim_init(&from, b);
    membudget_claim_init(&to, b);
    assert_true(membudget_reserve(&from, 40));
    membudget_claim_move(&to, &from);
    assert_int_equal(to.held, 40);
    assert_int_equal(from.held, 0);
    assert_ptr_equal(to.budget, b);
    assert_int_equal(used(b), 40);
    membudget_release(&from); /* empty: nothing changes */
    assert_int_equal(used(b), 40);
    assert_true(membudget_reserve(&to, 100));
    membudget_release(&to);
    assert_int_equal(used(b), 0);
    membudget_free(b);
}

/* No limit: everything is granted and still counted; no budget at all:
 * everything is granted and nothing counted. */
static void test_unlimited(void **state) {
    (void)state;
    membudget *b = membudget_new(0);
    membudget_claim a, c;
    membudget_claim_init(&a, b);
    membudget_claim_init(&c, b);
    assert_true(membudget_reserve(&a, UINT64_C(1) << 40));
    assert_true(membudget_reserve(&c, 5));
    assert_int_equal(used(b), (UINT64_C(1) << 40) + 5);
    assert_int_equal(stats(b).overdrafts, 0);
    membudget_release(&a);
    membudget_release(&c);
    membudget_free(b);

    membudget_claim none;
    membudget_claim_init(&none, NULL);
    assert_true(membudget_reserve(&none, 12345));
    assert_true(membudget_try(&none, 99999));
    membudget_shrink(&none, 10);
    assert_int_equal(none.held, 10);
    membudget_release(&none);
    assert_int_equal(none.held, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_within_limit),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_oldest_goes_alone),
        cmocka_unit_test(test_release_while_waiting),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_first_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
