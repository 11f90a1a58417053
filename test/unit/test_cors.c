/* cors_origin_allowed: "*", exact entries, spaces and empty lists.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker/cors.h"

static void test_origins(void **state)
{
    (void)state;
    assert_true(cors_origin_allowed("*", "http://x.example:8000"));
    assert_true(cors_origin_allowed("http://a:1, http://b:2", "http://b:2"));
    assert_true(cors_origin_allowed("http://a:1 ,http://b:2", "http://a:1"));
    assert_false(cors_origin_allowed("http://a:1", "http://a:12"));
    assert_false(cors_origin_allowed("http://a:12", "http://a:1"));
    assert_false(cors_origin_allowed("", "http://a:1"));
    assert_false(cors_origin_allowed("*", ""));
    assert_false(cors_origin_allowed("*", NULL));
    assert_false(cors_origin_allowed(",, ,", "http://a:1"));
    assert_true(cors_origin_allowed("http://a:1,*", "null"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
