/* Unit tests for the logger's two formats: a JSON line is one object with
 * time, level, msg and typed fields, every string escaped (quotes,
 * backslashes, newlines, control and non-ASCII bytes); a text line keeps
 * "TIME LEVEL msg key=value"; an over-long JSON line is cut to a message
 * start that still parses.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"

/* Runs fn with stderr sent to a temp file; returns what it wrote. */
static char *capture(void (*fn)(void))
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    assert_true(n >= 0);
    char *out = calloc(1, (size_t)n + 1);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static void write_fields(void)
{
    const struct log_field f[] = {
        {"path", "/a\"b\\c\nd\x01\xc3\xa9", 0},
        {"status", NULL, 201},
    };
    log_fields(MOM_LOG_INFO, "access", f, 2);
}

static void write_msg(void)
{
    log_msg(MOM_LOG_WARN, "quote \" and tab\t");
}

static void write_long(void)
{
    char big[1500];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const struct log_field f[] = {{"path", big, 0}};
    log_fields(MOM_LOG_INFO, "access", f, 1);
}

static void test_json(void **state)
{
    (void)state;
    log_set_format(MOM_LOG_JSON);
    char *out = capture(write_fields);
    const char *tail = strstr(out, "\",\"level\":\"info\",\"msg\":\"access\",");
    assert_non_null(tail);
    assert_memory_equal(out, "{\"time\":\"", 9);
    assert_string_equal(tail,
                        "\",\"level\":\"info\",\"msg\":\"access\","
                        "\"path\":\"/a\\\"b\\\\c\\nd\\u0001\\u00c3\\u00a9\",\"status\":201}\n");
    free(out);
    out = capture(write_msg);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"quote \\\" and tab\\u0009\"}\n"));
    free(out);
    out = capture(write_long);
    assert_non_null(strstr(out, ",\"truncated\":true}\n"));
    assert_true(strlen(out) < 2048);
    free(out);
}

static void test_text(void **state)
{
    (void)state;
    log_set_format(MOM_LOG_TEXT);
    char *out = capture(write_fields);
    assert_non_null(
        strstr(out, " INFO access path=\"/a\\\"b\\\\c\\nd\\u0001\\u00c3\\u00a9\" status=201\n"));
    free(out);
}

static void test_parse(void **state)
{
    (void)state;
    enum log_format f;
    assert_int_equal(log_parse_format("json", &f), MOM_OK);
    assert_int_equal(f, MOM_LOG_JSON);
    assert_int_equal(log_parse_format("TEXT", &f), MOM_OK);
    assert_int_equal(f, MOM_LOG_TEXT);
    assert_int_equal(log_parse_format("xml", &f), MOM_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
