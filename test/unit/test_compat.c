/* compat.c's route tables: which paths answer in the prototype's shapes,
 * which of its routes need no token.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker/compat.h"

static void test_family_of_path(void **state)
{
    (void)state;
    assert_int_equal(compat_family_of_path("/api/topicos"), COMPAT_API);
    assert_int_equal(compat_family_of_path("//api//topicos"), COMPAT_API);
    assert_int_equal(compat_family_of_path("/api"), COMPAT_API);
    assert_int_equal(compat_family_of_path("/colas/q1/mensajes"), COMPAT_NODE);
    assert_int_equal(compat_family_of_path("///topicos"), COMPAT_NODE);
    assert_int_equal(compat_family_of_path("/apis"), COMPAT_NONE);
    assert_int_equal(compat_family_of_path("/v1/queues"), COMPAT_NONE);
    assert_int_equal(compat_family_of_path("/topicosx"), COMPAT_NONE);
    assert_int_equal(compat_family_of_path("/"), COMPAT_NONE);
    assert_int_equal(compat_family_of_path(""), COMPAT_NONE);
}

static void test_routes(void **state)
{
    (void)state;
    assert_true(compat_is_route(ROUTE_API_REGISTER));
    assert_true(compat_is_route(ROUTE_NODE_TOPIC_READ));
    assert_false(compat_is_route(ROUTE_QUEUES));
    assert_false(compat_is_route(ROUTE_NONE));
    assert_true(compat_is_public(ROUTE_API_LOGIN));
    assert_true(compat_is_public(ROUTE_API_REGISTER));
    assert_false(compat_is_public(ROUTE_API_TOPICS));
    assert_false(compat_is_public(ROUTE_NODE_QUEUES));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_of_path),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
