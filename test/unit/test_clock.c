/* Unit tests for common/clock's stamp rule (clock_stamp_next): the wall
 * clock as long as it behaves, a forward jump held to the monotonic clock
 * plus 1%, caught up at that rate, never backwards, and the first stamp of
 * a process taken as is.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/clock.h"

static void test_first_stamp_is_the_wall_clock(void **state)
{
    (void)state;
    assert_int_equal(clock_stamp_next(0, 0, 1000000, 5), 1000000);
}

static void test_wall_clock_that_behaves(void **state)
{
    (void)state;
    /* 250 ms later by both clocks */
    assert_int_equal(clock_stamp_next(1000000, 5000, 1000250, 5250), 1000250);
}

static void test_forward_jump_is_held_to_elapsed_time(void **state)
{
    (void)state;
    /* the wall clock jumped 5 s ahead within 1 s: at most 1 s + 1% */
    assert_int_equal(clock_stamp_next(1000000, 5000, 1006000, 6000), 1001010);
    /* and catches up 1% of elapsed time per step */
    uint64_t prev = 1001010, prev_mono = 6000, wall = 1006000;
    for (int i = 0; i < 100; i++) {
        uint64_t next = clock_stamp_next(prev, prev_mono, wall + 1000, prev_mono + 1000);
        assert_int_equal(next, prev + 1010);
        prev = next;
        prev_mono += 1000;
        wall += 1000;
    }
}

static void test_never_backwards(void **state)
{
    (void)state;
    assert_int_equal(clock_stamp_next(1000000, 5000, 400000, 6000), 1000000);
    assert_int_equal(clock_stamp_next(1000000, 5000, 1000100, 4000), 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_stamp_is_the_wall_clock),
        cmocka_unit_test(test_wall_clock_that_behaves),
        cmocka_unit_test(test_forward_jump_is_held_to_elapsed_time),
        cmocka_unit_test(test_never_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
