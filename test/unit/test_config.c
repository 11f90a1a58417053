/* Unit tests for the configuration chain: defaults, file < env < flags,
 * and the errors for bad values and unknown options.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/config.h"

static const char *fake_env(const char *name)
{
    if (!strcmp(name, "MOM_NODE_ID"))
        return "2";
    if (!strcmp(name, "MOM_FSYNC"))
        return "never";
    if (!strcmp(name, "MOM_HTTP_ADDR"))
        return "127.0.0.1:9000";
    return NULL;
}

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_int_equal(c.node_id, 1);
    assert_string_equal(c.http_addr, "0.0.0.0:8080");
    assert_string_equal(c.peer_addr, "0.0.0.0:9090");
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(c.fsync, FSYNC_ALWAYS);
    assert_int_equal(c.max_body, 1048576);
    assert_true(c.allow_registration);
    assert_int_equal(c.wal_segment_mb, 64);
    assert_int_equal(c.snapshot_log_mb, 64);
}

static void test_precedence(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_apply_file(&c,
                                       "# comment\nMOM_NODE_ID=7\nMOM_DATA_DIR = \"/tmp/x\"\n"
                                       "MOM_MAX_BODY=10\n",
                                       err, sizeof err),
                     0);
    assert_int_equal(c.node_id, 7);
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_int_equal(config_apply_env(&c, fake_env, err, sizeof err), 0);
    assert_int_equal(c.node_id, 2);
    assert_int_equal(c.fsync, FSYNC_NEVER);
    char *argv[] = {"momd", "--node-id", "3", "--allow-registration=false", NULL};
    assert_int_equal(config_apply_args(&c, 4, argv, err, sizeof err), 0);
    assert_int_equal(c.node_id, 3);
    assert_false(c.allow_registration);
    assert_string_equal(c.http_addr, "127.0.0.1:9000");
    assert_int_equal(c.max_body, 10);
}

static void test_errors(void **state)
{
    (void)state;
    struct config c;
    char err[256];
    config_defaults(&c);
    char *bad_flag[] = {"momd", "--nope", "1"};
    assert_int_not_equal(config_apply_args(&c, 3, bad_flag, err, sizeof err), 0);
    assert_non_null(strstr(err, "--nope"));
    char *bad_fsync[] = {"momd", "--fsync", "sometimes"};
    assert_int_not_equal(config_apply_args(&c, 3, bad_fsync, err, sizeof err), 0);
    char *missing[] = {"momd", "--node-id"};
    assert_int_not_equal(config_apply_args(&c, 2, missing, err, sizeof err), 0);
    char *negative[] = {"momd", "--max-body", "-5"};
    assert_int_not_equal(config_apply_args(&c, 3, negative, err, sizeof err), 0);
    assert_int_not_equal(config_apply_file(&c, "UNKNOWN=1\n", err, sizeof err), 0);
    assert_int_not_equal(config_apply_file(&c, "no equals sign\n", err, sizeof err), 0);
    char *segment_zero[] = {"momd", "--wal-segment-mb", "0"};
    assert_int_not_equal(config_load(&c, 3, segment_zero, no_env, err, sizeof err), 0);
    assert_non_null(strstr(err, "MOM_WAL_SEGMENT_MB"));
    char *segment_huge[] = {"momd", "--wal-segment-mb", "1025"};
    assert_int_not_equal(config_load(&c, 3, segment_huge, no_env, err, sizeof err), 0);
    char *segment_ok[] = {"momd", "--wal-segment-mb", "1024"};
    assert_int_equal(config_load(&c, 3, segment_ok, no_env, err, sizeof err), 0);
    assert_int_equal(c.wal_segment_mb, 1024);
    char *help[] = {"momd", "--help"};
    assert_int_equal(config_load(&c, 2, help, no_env, err, sizeof err), 0);
    assert_true(c.help);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
