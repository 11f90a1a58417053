/* Unit tests for the stream position parsers: `from` values, RFC 3339 times
 * (zones, fractions, calendar, rounding, query '+'), Last-Event-ID.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/stream_params.h"
#include "common/clock.h"

static int parse_time(const char *text, uint64_t *ms)
{
    struct parse_error e;
    int rc = stream_parse_time(text, strlen(text), false, ms, &e);
    if (rc)
        assert_int_equal(api_error_status(e.kind), 400);
    return rc;
}

static uint64_t time_of(const char *text)
{
    uint64_t ms = 12345;
    assert_int_equal(parse_time(text, &ms), 0);
    return ms;
}

static void test_from_words_and_offsets(void **state)
{
    (void)state;
    struct stream_from f;
    struct parse_error e;
    assert_int_equal(stream_parse_from("earliest", &f, &e), 0);
    assert_int_equal(f.kind, STREAM_FROM_EARLIEST);
    assert_int_equal(stream_parse_from("latest", &f, &e), 0);
    assert_int_equal(f.kind, STREAM_FROM_LATEST);
    assert_int_equal(stream_parse_from("0", &f, &e), 0);
    assert_int_equal(f.kind, STREAM_FROM_OFFSET);
    assert_int_equal(f.value, 0);
    assert_int_equal(stream_parse_from("42", &f, &e), 0);
    assert_int_equal(f.value, 42);
    assert_int_equal(stream_parse_from("18446744073709551615", &f, &e), 0);
    assert_true(f.value == UINT64_MAX);
    assert_int_equal(stream_parse_from("18446744073709551616", &f, &e), -1);
    assert_string_equal(e.message, "from offset is too large");
    static const char *const bad[] = {"",       "-1",   " 1",       "1 ",
                                      "+1",     "0x10", "Earliest", "LATEST",
                                      "1.0",    "time", "time:",    "TIME:2026-01-01T00:00:00Z",
                                      "latest "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.kind = API_ERR_COUNT;
        assert_int_equal(stream_parse_from(bad[i], &f, &e), -1);
        assert_int_equal(e.kind, API_ERR_BAD_REQUEST);
        assert_true(e.message[0] != '\0');
    }
}

static void test_from_time(void **state)
{
    (void)state;
    struct stream_from f;
    struct parse_error e;
    assert_int_equal(stream_parse_from("time:2026-12-07T05:13:44.123Z", &f, &e), 0);
    assert_int_equal(f.kind, STREAM_FROM_TIME);
    assert_true(f.value == 1796620424123ull);
    /* a '+' the query string decoded to a space is still the offset's sign */
    assert_int_equal(stream_parse_from("time:2026-01-01T01:00:00 01:00", &f, &e), 0);
    assert_true(f.value == 1767225600000ull);
    assert_int_equal(stream_parse_from("time:2026-01-01T01:00:00+01:00", &f, &e), 0);
    assert_true(f.value == 1767225600000ull);
    /* but not in a JSON time, where a space is never a '+' */
    uint64_t ms;
    assert_int_equal(stream_parse_time("2026-01-01T01:00:00 01:00", 25, false, &ms, &e), -1);
    /* a value longer than STREAM_FROM_MAX is refused, whatever it holds */
    char longer[STREAM_FROM_MAX + 2];
    memset(longer, '0', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(stream_parse_from(longer, &f, &e), -1);
    char fits[STREAM_FROM_MAX + 1];
    memcpy(fits, "time:2026-01-01T00:00:00.", 25);
    memset(fits + 25, '0', STREAM_FROM_MAX - 26);
    fits[STREAM_FROM_MAX - 1] = 'Z';
    fits[STREAM_FROM_MAX] = '\0';
    assert_int_equal(stream_parse_from(fits, &f, &e), 0);
    assert_true(f.value == 1767225600000ull);
}

static void test_time_values(void **state)
{
    (void)state;
    assert_true(time_of("1970-01-01T00:00:00Z") == 0);
    assert_true(time_of("1970-01-01T00:00:00.001Z") == 1);
    assert_true(time_of("2026-12-07T05:13:44.123Z") == 1796620424123ull);
    assert_true(time_of("2026-12-07t05:13:44.123z") == 1796620424123ull);
    assert_true(time_of("2026-12-07T06:13:44.123+01:00") == 1796620424123ull);
    assert_true(time_of("2026-12-06T23:43:44.123-05:30") == 1796620424123ull);
    assert_true(time_of("2026-12-07T05:13:44.123-00:00") == 1796620424123ull);
    assert_true(time_of("2000-02-29T23:59:59Z") == 951868799000ull);
    assert_true(time_of("9999-12-31T23:59:59.999Z") == 253402300799999ull);
    /* a leap second reads as the next minute's first second */
    assert_true(time_of("2024-02-29T23:59:60Z") == 1709251200000ull);
    /* before the epoch: everything is at or after it */
    assert_true(time_of("1969-12-31T23:59:59.999Z") == 0);
    assert_true(time_of("0000-01-01T00:00:00Z") == 0);
    assert_true(time_of("1970-01-01T00:30:00+01:00") == 0);
}

static void test_time_fractions(void **state)
{
    (void)state;
    uint64_t base = 1767225600000ull; /* 2026-01-01T00:00:00Z */
    assert_true(time_of("2026-01-01T00:00:00.1Z") == base + 100);
    assert_true(time_of("2026-01-01T00:00:00.12Z") == base + 120);
    assert_true(time_of("2026-01-01T00:00:00.123Z") == base + 123);
    assert_true(time_of("2026-01-01T00:00:00.1230000Z") == base + 123);
    /* finer than a millisecond rounds up: the first stamp at or after it */
    assert_true(time_of("2026-01-01T00:00:00.1231Z") == base + 124);
    assert_true(time_of("2026-01-01T00:00:00.000000001Z") == base + 1);
    assert_true(time_of("2026-01-01T00:00:00.9999Z") == base + 1000);
    assert_true(time_of("2025-12-31T23:59:59.9999Z") == base);
    assert_true(time_of("2026-01-01T00:00:00.0Z") == base);
}

static void test_time_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",       /* no zone */
        "2026-01-01T00:00:00.",      /* '.' without digits, no zone */
        "2026-01-01T00:00:00.Z",     /* '.' without digits */
        "2026-01-01 00:00:00Z",      /* space for T */
        "2026-01-01T00:00Z",         /* no seconds */
        "26-01-01T00:00:00Z",        /* two-digit year */
        "2026-1-01T00:00:00Z",       /* one-digit month */
        "2026-13-01T00:00:00Z",      /* month 13 */
        "2026-00-01T00:00:00Z",      /* month 0 */
        "2026-01-00T00:00:00Z",      /* day 0 */
        "2026-01-32T00:00:00Z",      /* day 32 */
        "2026-04-31T00:00:00Z",      /* April has 30 days */
        "2023-02-29T00:00:00Z",      /* not a leap year */
        "1900-02-29T00:00:00Z",      /* a century, not a leap year */
        "2026-01-01T24:00:00Z",      /* hour 24 */
        "2026-01-01T00:60:00Z",      /* minute 60 */
        "2026-01-01T00:00:61Z",      /* second 61 */
        "2026-01-01T00:00:00+0100",  /* offset without ':' */
        "2026-01-01T00:00:00+01",    /* short offset */
        "2026-01-01T00:00:00+24:00", /* offset hour 24 */
        "2026-01-01T00:00:00+01:60", /* offset minute 60 */
        "2026-01-01T00:00:00Zx",     /* trailing bytes */
        "2026-01-01T00:00:00+01:00 ",
        "2026-01-01T00:00:00UTC",
        "+2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.1e3Z",
        "2026-01-01T0a:00:00Z",
        "2026-01-01T00:00:00 01:00", /* a space is a '+' only in a query */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 7;
        if (parse_time(bad[i], &ms) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ms, 7);
    }
    /* the length given is the whole input: a NUL inside is a bad byte */
    uint64_t ms;
    struct parse_error e;
    assert_int_equal(stream_parse_time("2026-01-01T00:00:00Z\0", 21, false, &ms, &e), -1);
    assert_int_equal(stream_parse_time("2026-01-01T00:00:00Zjunk", 20, false, &ms, &e), 0);
}

static void test_time_round_trip(void **state)
{
    (void)state;
    /* every timestamp mom renders reads back as the same millisecond */
    uint64_t t = 0;
    for (int i = 0; i < 5000; i++) {
        char text[25];
        clock_format_rfc3339(t, text);
        assert_true(time_of(text) == t);
        t = t * 6364136223846793005ull + 1442695040888963407ull;
        t %= 253402300800000ull; /* up to the end of year 9999 */
    }
}

static void test_last_event_id(void **state)
{
    (void)state;
    uint64_t id;
    struct parse_error e;
    assert_int_equal(stream_parse_last_event_id("5", 1, &id, &e), 0);
    assert_int_equal(id, 5);
    assert_int_equal(stream_parse_last_event_id(" \t17\t ", 6, &id, &e), 0);
    assert_int_equal(id, 17);
    assert_int_equal(stream_parse_last_event_id("007", 3, &id, &e), 0);
    assert_int_equal(id, 7);
    assert_int_equal(stream_parse_last_event_id("18446744073709551614", 20, &id, &e), 0);
    assert_true(id == UINT64_MAX - 1);
    assert_int_equal(stream_parse_last_event_id("18446744073709551615", 20, &id, &e), -1);
    assert_string_equal(e.message, "Last-Event-ID is out of range");
    assert_int_equal(stream_parse_last_event_id("99999999999999999999", 20, &id, &e), -1);
    assert_string_equal(e.message, "Last-Event-ID is out of range");
    static const char *const bad[] = {"",    "  ", "-1", "+1",  "1 2", "0x10",
                                      "1.0", "a",  "١",  "1\r", "\n1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id = 99;
        e.kind = API_ERR_COUNT;
        assert_int_equal(stream_parse_last_event_id(bad[i], strlen(bad[i]), &id, &e), -1);
        assert_int_equal(e.kind, API_ERR_BAD_REQUEST);
        assert_string_equal(e.message, "Last-Event-ID must be the decimal id of an event");
        assert_int_equal(id, 99);
    }
    /* only len bytes are read */
    assert_int_equal(stream_parse_last_event_id("12x", 2, &id, &e), 0);
    assert_int_equal(id, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_words_and_offsets),
        cmocka_unit_test(test_from_time),
        cmocka_unit_test(test_time_values),
        cmocka_unit_test(test_time_fractions),
        cmocka_unit_test(test_time_rejects),
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_last_event_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
