/* Unit tests for the pure REST router: routes, parameters, 404 vs 405 with
 * the Allow list, percent-decoding and the name rule.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/router.h"

static enum router_result match(enum http_method m, const char *path, struct route_match *out)
{
    return router_match(m, path, strlen(path), out);
}

static void test_routes_and_params(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_GET, "/healthz", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_HEALTHZ);
    assert_int_equal(match(HTTP_PUT, "/v1/queues/orders", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUE_PUT);
    assert_string_equal(m.params[0], "orders");
    assert_int_equal(match(HTTP_POST, "/v1/queues/q1/messages/r-9/nack", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUE_NACK);
    assert_string_equal(m.params[1], "r-9");
    assert_int_equal(match(HTTP_GET, "/v1/topics/t/subscriptions/s/messages", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_SUBSCRIPTION_READ);
    assert_string_equal(m.params[0], "t");
    assert_string_equal(m.params[1], "s");
    assert_int_equal(match(HTTP_GET, "/v1/subscriptions", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_USER_SUBSCRIPTIONS);
    assert_int_equal(match(HTTP_POST, "/v1/topics/t/subscriptions/s/seek", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_SUBSCRIPTION_SEEK);
    assert_string_equal(m.params[1], "s");
    assert_int_equal(match(HTTP_GET, "/v1/topics/t/subscriptions/s/seek", &m),
                     ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(m.allowed, HTTP_POST);
    assert_int_equal(match(HTTP_PUT, "/v1/queues/orders/acl", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUE_ACL_PUT);
    assert_string_equal(m.params[0], "orders");
    assert_int_equal(match(HTTP_GET, "/v1/topics/news/acl", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_TOPIC_ACL_GET);
    assert_string_equal(m.params[0], "news");
    assert_int_equal(match(HTTP_DELETE, "/v1/topics/news/acl", &m), ROUTER_METHOD_NOT_ALLOWED);
    char allow[64];
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, PUT");
    char label[64];
    router_route_label(ROUTE_QUEUE_ACL_PUT, label, sizeof label);
    assert_string_equal(label, "/v1/queues/{queue}/acl");
}

static void test_batch_versus_receipt(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_POST, "/v1/queues/q/messages/batch", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUE_BATCH);
    assert_int_equal(match(HTTP_DELETE, "/v1/queues/q/messages/batch", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUE_ACK);
    assert_string_equal(m.params[1], "batch");
}

static void test_not_found_and_method(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_GET, "/nope", &m), ROUTER_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "/v1/queues/a/b/c/d/e/f/g/h/i", &m), ROUTER_NOT_FOUND);
    assert_int_equal(match(HTTP_GET, "", &m), ROUTER_NOT_FOUND);
    assert_int_equal(match(HTTP_POST, "/v1/queues/q", &m), ROUTER_METHOD_NOT_ALLOWED);
    char allow[64];
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, PUT, DELETE");
    assert_int_equal(match(HTTP_PUT, "/v1/topics/t/messages", &m), ROUTER_METHOD_NOT_ALLOWED);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, POST");
}

static void test_slash_runs_merge(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_GET, "/v1//queues", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_QUEUES);
    assert_int_equal(match(HTTP_GET, "//api/topicos", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_API_TOPICS);
    assert_int_equal(match(HTTP_POST, "///api///topicos//CNN/suscribir//", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_API_SUBSCRIBE);
    assert_string_equal(m.params[0], "CNN");
    assert_int_equal(match(HTTP_GET, "//", &m), ROUTER_NOT_FOUND);
}

static void test_prototype_routes(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_GET, "/api/topicos/CNN/mensajes", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_API_TOPIC_READ);
    assert_int_equal(match(HTTP_POST, "/api/topicos/CNN/mensajes", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_API_TOPIC_PUBLISH);
    assert_int_equal(match(HTTP_GET, "/api/mis-topicos", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_API_MY_TOPICS);
    assert_int_equal(match(HTTP_POST, "/colas/q1/publicar", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_NODE_QUEUE_PUBLISH);
    assert_string_equal(m.params[0], "q1");
    assert_int_equal(match(HTTP_GET, "/topicos/t1/mensajes", &m), ROUTER_OK);
    assert_int_equal(m.route, ROUTE_NODE_TOPIC_READ);
    assert_int_equal(match(HTTP_PUT, "/api/colas", &m), ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(router_method("OPTIONS"), HTTP_OPTIONS);
}

static void test_decoding_and_names(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(match(HTTP_GET, "/v1/queues/a%2Fb", &m), ROUTER_OK);
    assert_string_equal(m.params[0], "a/b");
    assert_false(router_valid_name(m.params[0]));
    assert_true(router_valid_name("Orders_v1.2-x"));
    assert_false(router_valid_name(""));
    char long_name[130];
    memset(long_name, 'a', 129);
    long_name[129] = '\0';
    assert_false(router_valid_name(long_name));
    long_name[128] = '\0';
    assert_true(router_valid_name(long_name));
    assert_false(router_valid_name("sp ace"));
    assert_int_equal(router_method("PATCH"), HTTP_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_params),    cmocka_unit_test(test_batch_versus_receipt),
        cmocka_unit_test(test_not_found_and_method), cmocka_unit_test(test_slash_runs_merge),
        cmocka_unit_test(test_prototype_routes),     cmocka_unit_test(test_decoding_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
