/* Unit tests for the dashboard look-ups: the compiled-in table (every file
 * present, non-empty, with a quoted ETag), path -> asset, and If-None-Match
 * matching (lists, weak tags, "*", malformed values).
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker/ui.h"

static const struct ui_asset *find(const char *path)
{
    return ui_find(path, strlen(path));
}

static void test_table(void **state)
{
    (void)state;
    assert_true(ui_asset_count >= 4);
    for (size_t i = 0; i < ui_asset_count; i++) {
        const struct ui_asset *a = &ui_assets[i];
        assert_true(a->len > 0);
        assert_int_equal(strlen(a->etag), 18);
        assert_int_equal(a->etag[0], '"');
        assert_int_equal(a->etag[17], '"');
        assert_ptr_equal(find(a->path), a);
    }
}

static void test_find(void **state)
{
    (void)state;
    const struct ui_asset *page = find("/");
    assert_non_null(page);
    assert_string_equal(page->content_type, "text/html;charset=utf-8");
    assert_memory_equal(page->data, "<!doctype html>", 15);
    assert_ptr_equal(find("/index.html"), page);
    assert_non_null(find("/ui/app.js"));
    assert_non_null(find("/ui/app.css"));
    assert_non_null(find("/favicon.svg"));
    assert_null(find("/ui/"));
    assert_null(find("/ui/app.j"));
    assert_null(find("/ui/app.jsx"));
    assert_null(find("//"));
    assert_null(find(""));
    assert_null(ui_find("/ui/app.js", 3)); /* "/ui" */
}

static void test_etag_matches(void **state)
{
    (void)state;
    const char *tag = "\"0123456789abcdef\"";
    assert_true(ui_etag_matches("\"0123456789abcdef\"", tag));
    assert_true(ui_etag_matches("W/\"0123456789abcdef\"", tag));
    assert_true(ui_etag_matches("\"x\", \"0123456789abcdef\"", tag));
    assert_true(ui_etag_matches("\"x\",W/\"0123456789abcdef\" ,\"y\"", tag));
    assert_true(ui_etag_matches("*", tag));
    assert_true(ui_etag_matches(" * ", tag));
    assert_false(ui_etag_matches("", tag));
    assert_false(ui_etag_matches("\"0123456789abcdee\"", tag));
    assert_false(ui_etag_matches("0123456789abcdef", tag));   /* unquoted */
    assert_false(ui_etag_matches("\"0123456789abcdef", tag)); /* unterminated */
    assert_false(ui_etag_matches("\"0123456789abcdef\"x", tag));
    assert_false(ui_etag_matches("*x", tag));
    assert_false(ui_etag_matches("W/", tag));
    assert_false(ui_etag_matches(NULL, tag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_etag_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
