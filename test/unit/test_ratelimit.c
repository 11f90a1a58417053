/* Unit tests for common/ratelimit: the burst, the refill period, clearing,
 * keys that do not disturb each other, and the bounded table keeping the
 * blocked keys when it is flooded with new ones.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/ratelimit.h"

static void test_burst_then_period(void **state)
{
    (void)state;
    struct ratelimit *rl;
    assert_int_equal(ratelimit_new(5, 2000, 64, &rl), MOM_OK);
    uint64_t now = 1000000;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ratelimit_wait_ms(rl, "alice", 5, now), 0);
        ratelimit_fail(rl, "alice", 5, now);
    }
    /* Five failures at once: the sixth try waits one period. */
    assert_int_equal(ratelimit_wait_ms(rl, "alice", 5, now), 2000);
    assert_int_equal(ratelimit_wait_ms(rl, "alice", 5, now + 1500), 500);
    assert_int_equal(ratelimit_wait_ms(rl, "alice", 5, now + 2000), 0);
    ratelimit_fail(rl, "alice", 5, now + 2000);
    assert_int_equal(ratelimit_wait_ms(rl, "alice", 5, now + 2000), 2000);
    /* Others are not affected. */
    assert_int_equal(ratelimit_wait_ms(rl, "bob", 3, now), 0);
    assert_false(ratelimit_suspect(rl, "bob", 3, now));
    assert_true(ratelimit_suspect(rl, "alice", 5, now));
    /* Debt runs out: 6 failures = 12 s after the first. */
    assert_false(ratelimit_suspect(rl, "alice", 5, now + 12000));
    ratelimit_free(rl);
}

static void test_clear(void **state)
{
    (void)state;
    struct ratelimit *rl;
    assert_int_equal(ratelimit_new(1, 1000, 16, &rl), MOM_OK);
    ratelimit_fail(rl, "k", 1, 50);
    assert_int_equal(ratelimit_wait_ms(rl, "k", 1, 50), 1000);
    ratelimit_clear(rl, "k", 1);
    assert_int_equal(ratelimit_wait_ms(rl, "k", 1, 50), 0);
    assert_false(ratelimit_suspect(rl, "k", 1, 50));
    ratelimit_free(rl);
}

static void test_flood_keeps_blocked_keys(void **state)
{
    (void)state;
    struct ratelimit *rl;
    assert_int_equal(ratelimit_new(3, 1000, 256, &rl), MOM_OK);
    uint64_t now = 5000;
    for (int i = 0; i < 10; i++)
        ratelimit_fail(rl, "victim", 6, now);
    uint64_t before = ratelimit_wait_ms(rl, "victim", 6, now);
    assert_true(before > 0);
    /* 10,000 other keys with one failure each: every set fills up, but a
     * replaced entry is always one with less debt than the victim's. */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "other-%d", i);
        ratelimit_fail(rl, key, (size_t)n, now);
    }
    assert_int_equal(ratelimit_wait_ms(rl, "victim", 6, now), before);
    ratelimit_free(rl);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct ratelimit *rl;
    assert_int_equal(ratelimit_new(0, 1000, 16, &rl), MOM_ERR_INVALID);
    assert_int_equal(ratelimit_new(1, 0, 16, &rl), MOM_ERR_INVALID);
    assert_int_equal(ratelimit_new(1, 1, 0, &rl), MOM_ERR_INVALID);
    ratelimit_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_period),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_flood_keeps_blocked_keys),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
