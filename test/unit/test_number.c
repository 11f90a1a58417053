/* Unit tests for common/number: exact integers from JSON doubles.
 * SPDX-License-Identifier: MIT */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/number.h"

static void test_exact_uint(void **state)
{
    (void)state;
    uint64_t v = 77;
    assert_int_equal(number_exact_uint(0.0, 10, &v), NUMBER_OK);
    assert_int_equal(v, 0);
    assert_int_equal(number_exact_uint(10.0, 10, &v), NUMBER_OK);
    assert_int_equal(v, 10);
    assert_int_equal(number_exact_uint(11.0, 10, &v), NUMBER_TOO_LARGE);
    assert_int_equal(v, 10); /* untouched on failure */
    assert_int_equal(number_exact_uint(9007199254740991.0, UINT64_MAX, &v), NUMBER_OK);
    assert_int_equal(v, NUMBER_MAX_EXACT);
    /* 2^53 + 1 reads as 2^53: both refused, never rounded */
    assert_int_equal(number_exact_uint(9007199254740992.0, UINT64_MAX, &v), NUMBER_INEXACT);
    assert_int_equal(number_exact_uint(9007199254740993.0, UINT64_MAX, &v), NUMBER_INEXACT);
    assert_int_equal(number_exact_uint(1.8446744073709552e19, UINT64_MAX, &v), NUMBER_INEXACT);
    assert_int_equal(number_exact_uint(INFINITY, UINT64_MAX, &v), NUMBER_INEXACT);
    assert_int_equal(number_exact_uint(1.5, 10, &v), NUMBER_NOT_INTEGER);
    assert_int_equal(number_exact_uint(-1.0, 10, &v), NUMBER_NOT_INTEGER);
    assert_int_equal(number_exact_uint(-0.5, 10, &v), NUMBER_NOT_INTEGER);
    assert_int_equal(number_exact_uint(NAN, 10, &v), NUMBER_NOT_INTEGER);
    assert_int_equal(number_exact_uint(-INFINITY, 10, &v), NUMBER_NOT_INTEGER);
    assert_int_equal(v, NUMBER_MAX_EXACT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
