/* Unit tests for the access log's redaction of secret query values: plain,
 * mixed case, percent-encoded keys, keys without values, long input cut
 * safely.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/access_log.h"

static void check(const char *path, const char *query, const char *want)
{
    char out[256];
    access_log_target(path, query, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_redaction(void **state)
{
    (void)state;
    check("/v1/queues", NULL, "/v1/queues");
    check("/v1/queues", "", "/v1/queues");
    check("/v1/queues/q/receive", "max=10&wait_ms=5", "/v1/queues/q/receive?max=10&wait_ms=5");
    check("/s", "access_token=eyJ.abc.def", "/s?access_token=REDACTED");
    check("/s", "from=1&ACCESS_TOKEN=x&y=2", "/s?from=1&ACCESS_TOKEN=REDACTED&y=2");
    check("/s", "access%5Ftoken=x", "/s?access%5Ftoken=REDACTED");
    check("/s", "password=hunter2&token=t&api_key=k",
          "/s?password=REDACTED&token=REDACTED&api_key=REDACTED");
    check("/s", "access_token", "/s?access_token"); /* no value: nothing to hide */
    check("/s", "a=1&&b=2", "/s?a=1&&b=2");
    assert_true(access_log_secret_key("Authorization", 13));
    assert_false(access_log_secret_key("max", 3));
}

static void test_cut(void **state)
{
    (void)state;
    char out[16];
    access_log_target("/v1/queues/abcdef", "access_token=secretsecret", out, sizeof out);
    assert_int_equal(strlen(out), 15);
    assert_null(strstr(out, "secret"));
    access_log_target("/v1", "access_token=secretsecret", out, sizeof out);
    assert_null(strstr(out, "secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
