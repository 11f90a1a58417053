/* The event-stream encoder (broker/sse.c): exact bytes of events, comments
 * and retry, sizes, bounded writes, and a decode of the result as a client
 * reads it (the field rules of the event-stream format) for data with line
 * breaks.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sse.h"

/* A client's reading of one event block: the last id, the event name and
 * the data lines joined with LF. Returns 0, or -1 when the block is not one
 * event ending in an empty line. */
static int decode(const char *in, size_t len, char *id, char *event, char *data, size_t cap)
{
    id[0] = event[0] = data[0] = '\0';
    size_t dlen = 0;
    int ndata = 0;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(in + i, '\n', len - i);
        if (!nl)
            return -1;
        size_t n = (size_t)(nl - (in + i));
        const char *line = in + i;
        i += n + 1;
        if (n == 0)
            return i == len ? 0 : -1; /* the end of the event */
        const char *colon = memchr(line, ':', n);
        size_t klen = colon ? (size_t)(colon - line) : n;
        const char *v = colon ? colon + 1 : line + n;
        if (v < line + n && *v == ' ')
            v++;
        size_t vlen = (size_t)(line + n - v);
        if (klen == 2 && !memcmp(line, "id", 2)) {
            memcpy(id, v, vlen);
            id[vlen] = '\0';
        } else if (klen == 5 && !memcmp(line, "event", 5)) {
            memcpy(event, v, vlen);
            event[vlen] = '\0';
        } else if (klen == 4 && !memcmp(line, "data", 4)) {
            if (ndata++)
                data[dlen++] = '\n';
            if (dlen + vlen >= cap)
                return -1;
            memcpy(data + dlen, v, vlen);
            dlen += vlen;
            data[dlen] = '\0';
        }
    }
    return -1;
}

static void test_event_exact_bytes(void **state)
{
    (void)state;
    char out[128];
    const char *json = "{\"offset\":7,\"body\":\"hi\"}";
    size_t n = sse_event(out, sizeof out, 7, "message", json, strlen(json));
    const char *want = "id: 7\nevent: message\ndata: {\"offset\":7,\"body\":\"hi\"}\n\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    assert_int_equal(sse_event_size(7, "message", json, strlen(json)), n);
}

static void test_event_without_name(void **state)
{
    (void)state;
    char out[64];
    size_t n = sse_event(out, sizeof out, 18446744073709551615ull, NULL, "x", 1);
    const char *want = "id: 18446744073709551615\ndata: x\n\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    n = sse_event(out, sizeof out, 0, "", "", 0);
    assert_int_equal(n, strlen("id: 0\ndata: \n\n"));
    assert_memory_equal(out, "id: 0\ndata: \n\n", n);
}

static void round_trip(const char *data, const char *joined)
{
    char out[256], id[32], event[32], back[256];
    size_t len = strlen(data);
    size_t n = sse_event(out, sizeof out, 42, "message", data, len);
    assert_true(n > 0);
    assert_int_equal(n, sse_event_size(42, "message", data, len));
    assert_int_equal(decode(out, n, id, event, back, sizeof back), 0);
    assert_string_equal(id, "42");
    assert_string_equal(event, "message");
    assert_string_equal(back, joined);
}

static void test_line_breaks_round_trip(void **state)
{
    (void)state;
    round_trip("plain", "plain");
    round_trip("a\nb", "a\nb");
    round_trip("a\r\nb", "a\nb");
    round_trip("a\rb", "a\nb");
    round_trip("a\n\nb", "a\n\nb");
    round_trip("a\n", "a\n");
    round_trip("\n", "\n");
    round_trip("", "");
    round_trip("a\r\n\r\n", "a\n\n");
    /* no line of the encoding is empty before the end: a break in the
     * data never ends the event early */
    char out[64];
    size_t n = sse_event(out, sizeof out, 1, "message", "x\n\ny", 4);
    assert_true(n > 0);
    const char *first_blank = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (out[i] == '\n' && out[i + 1] == '\n') {
            first_blank = out + i;
            break;
        }
    assert_ptr_equal(first_blank, out + n - 2);
}

static void test_bounded_writes(void **state)
{
    (void)state;
    char out[64];
    size_t need = sse_event_size(5, "message", "abc", 3);
    for (size_t cap = 0; cap < need; cap++)
        assert_int_equal(sse_event(out, cap, 5, "message", "abc", 3), 0);
    assert_int_equal(sse_event(out, need, 5, "message", "abc", 3), need);
    assert_int_equal(sse_comment(out, 5, "keep-alive"), 0);
    assert_int_equal(sse_retry(out, 3, 2000), 0);
}

static void test_comment_and_retry(void **state)
{
    (void)state;
    char out[64];
    size_t n = sse_comment(out, sizeof out, "keep-alive");
    assert_int_equal(n, strlen(": keep-alive\n\n"));
    assert_memory_equal(out, ": keep-alive\n\n", n);
    n = sse_retry(out, sizeof out, 2000);
    assert_int_equal(n, strlen("retry: 2000\n\n"));
    assert_memory_equal(out, "retry: 2000\n\n", n);
    n = sse_retry(out, sizeof out, 0);
    assert_memory_equal(out, "retry: 0\n\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_exact_bytes),      cmocka_unit_test(test_event_without_name),
        cmocka_unit_test(test_line_breaks_round_trip), cmocka_unit_test(test_bounded_writes),
        cmocka_unit_test(test_comment_and_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
