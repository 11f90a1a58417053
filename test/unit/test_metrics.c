/* Unit tests for the metrics registry and its text format: label escaping,
 * seconds formatting, route labels from patterns, request counting with
 * bounded status slots, histogram buckets, and a render of a store with
 * a queue whose name needs no escaping.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/metrics.h"
#include "broker/store.h"
#include "common/err.h"
#include "common/histogram.h"

static char *label(const char *v)
{
    struct jbuf b;
    jbuf_init(&b);
    metrics_label_value(&b, v);
    jbuf_raw(&b, "", 1);
    return b.p; /* the caller frees */
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *s = label("plain");
    assert_string_equal(s, "plain");
    free(s);
    s = label("a\\b\"c\nd");
    assert_string_equal(s, "a\\\\b\\\"c\\nd");
    free(s);
    s = label("");
    assert_string_equal(s, "");
    free(s);
}

static void test_seconds(void **state)
{
    (void)state;
    char out[32];
    metrics_format_seconds(500, out);
    assert_string_equal(out, "0.0005");
    metrics_format_seconds(2500000, out);
    assert_string_equal(out, "2.5");
    metrics_format_seconds(30000000, out);
    assert_string_equal(out, "30");
    metrics_format_seconds(0, out);
    assert_string_equal(out, "0");
    metrics_format_seconds(1, out);
    assert_string_equal(out, "0.000001");
}

static void test_route_labels(void **state)
{
    (void)state;
    char out[96];
    router_route_label(ROUTE_QUEUE_ACK, out, sizeof out);
    assert_string_equal(out, "/v1/queues/{queue}/messages/{receipt}");
    router_route_label(ROUTE_SUBSCRIPTION_ACK, out, sizeof out);
    assert_string_equal(out, "/v1/topics/{topic}/subscriptions/{subscription}/ack");
    router_route_label(ROUTE_METRICS, out, sizeof out);
    assert_string_equal(out, "/metrics");
    router_route_label(ROUTE_UI, out, sizeof out);
    assert_string_equal(out, "/{dashboard file}");
    router_route_label(ROUTE_NONE, out, sizeof out);
    assert_string_equal(out, "unmatched");
    router_route_label(ROUTE_QUEUE_ACK, out, 12); /* cut, still terminated */
    assert_int_equal(strlen(out), 11);
}

static void test_request_counts(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    for (int i = 0; i < 10; i++)
        metrics_count_request(m, ROUTE_QUEUE_PUBLISH, HTTP_POST, 201, 300);
    metrics_count_request(m, ROUTE_QUEUE_PUBLISH, HTTP_POST, 429, 300);
    metrics_count_request(m, ROUTE_NONE, HTTP_GET, 404, 10);
    assert_int_equal(metrics_request_count(m, ROUTE_QUEUE_PUBLISH, HTTP_POST, 201), 10);
    assert_int_equal(metrics_request_count(m, ROUTE_QUEUE_PUBLISH, HTTP_POST, 429), 1);
    assert_int_equal(metrics_request_count(m, ROUTE_QUEUE_PUBLISH, HTTP_GET, 201), 0);
    assert_int_equal(metrics_request_count(m, ROUTE_NONE, HTTP_GET, 404), 1);
    /* more distinct statuses than slots: the rest share "other", no crash */
    for (int st = 100; st < 600; st++)
        metrics_count_request(m, ROUTE_HEALTHZ, HTTP_GET, st, 1);
    metrics_count_request(m, ROUTE_HEALTHZ, HTTP_GET, 9999, 1);
    struct metrics_sources src = {.node_id = 1};
    struct jbuf b;
    jbuf_init(&b);
    assert_int_equal(metrics_render(m, &src, &b), MOM_OK);
    jbuf_raw(&b, "", 1);
    assert_non_null(strstr(
        b.p, "mom_http_requests_total{route=\"/v1/queues/{queue}/messages\",method=\"POST\",status="
             "\"201\"} 10\n"));
    assert_non_null(strstr(b.p, "route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"));
    assert_non_null(strstr(b.p, "status=\"other\"}"));
    assert_non_null(strstr(b.p,
                           "mom_http_request_duration_seconds_bucket{route=\"/v1/queues/{queue}/"
                           "messages\",le=\"0.0005\"} 11\n"));
    assert_non_null(strstr(
        b.p,
        "mom_http_request_duration_seconds_count{route=\"/v1/queues/{queue}/messages\"} 11\n"));
    assert_non_null(strstr(
        b.p,
        "mom_http_request_duration_seconds_sum{route=\"/v1/queues/{queue}/messages\"} 0.0033\n"));
    assert_non_null(strstr(b.p, "# TYPE process_cpu_seconds_total counter\n"));
    jbuf_cleanup(&b);
    metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    struct histogram h;
    histogram_init(&h, histogram_request_bounds_us, histogram_request_nbounds);
    histogram_observe(&h, 500);      /* on the bound: counted in it */
    histogram_observe(&h, 501);      /* next bucket */
    histogram_observe(&h, 99999999); /* +Inf */
    assert_int_equal(histogram_cumulative(&h, 0), 1);
    assert_int_equal(histogram_cumulative(&h, 1), 2);
    assert_int_equal(histogram_cumulative(&h, h.nbounds - 1), 2);
    assert_int_equal(histogram_cumulative(&h, h.nbounds), 3);
    assert_int_equal(h.count, 3);
    assert_int_equal(h.sum_us, 500 + 501 + 99999999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping), cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_route_labels),   cmocka_unit_test(test_request_counts),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
