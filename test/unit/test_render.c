/* Unit tests for broker/render: UTF-8 validation (RFC 3629 edge cases),
 * JSON string escaping (checked by parsing with cJSON), body encoding
 * (utf-8 vs base64 round trip through OpenSSL), numbers and times, and the
 * answer shapes that need no store: errors (every kind of the api_error
 * table), publish acks, tokens, health and the empty receive.
 * SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include <cmocka.h>

#include "broker/render.h"
#include "common/clock.h"
#include "common/err.h"

static bool valid(const char *s, size_t n)
{
    return render_utf8_valid((const uint8_t *)s, n);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(valid("", 0));
    assert_true(valid("plain ascii text, longer than eight bytes", 41));
    assert_true(valid("\xc3\xa9", 2));         /* U+00E9 */
    assert_true(valid("\xe2\x82\xac", 3));     /* U+20AC */
    assert_true(valid("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    assert_true(valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    assert_true(valid("\xed\x9f\xbf", 3));     /* U+D7FF */
    assert_true(valid("\x00", 1));             /* NUL is valid UTF-8 */
    assert_false(valid("\xc0\xaf", 2));        /* overlong '/' */
    assert_false(valid("\xc1\xbf", 2));
    assert_false(valid("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(valid("\xf0\x80\x80\xaf", 4)); /* overlong */
    assert_false(valid("\xed\xa0\x80", 3));     /* surrogate U+D800 */
    assert_false(valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(valid("\xf5\x80\x80\x80", 4));
    assert_false(valid("\xff", 1));
    assert_false(valid("\x80", 1));              /* lone continuation */
    assert_false(valid("\xc3", 1));              /* truncated */
    assert_false(valid("abcdefgh\xe2\x82", 10)); /* truncated after the fast path */
    assert_false(valid("\xe2\x28\xa1", 3));      /* bad continuation */
}

static char *finish(struct jbuf *b)
{
    struct reply r = {0};
    assert_int_equal(jbuf_finish(b, &r, 200), MOM_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(strlen(r.body), r.body_len);
    return r.body;
}

static void test_strings_and_numbers(void **state)
{
    (void)state;
    struct jbuf b;
    jbuf_init(&b);
    static const char nasty[] = "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f \xc3\xa9";
    jbuf_lit(&b, "{\"s\":");
    jbuf_str(&b, nasty, sizeof nasty - 1);
    jbuf_lit(&b, ",\"latin1\":");
    jbuf_str(&b, "caf\xe9", 4);
    jbuf_lit(&b, ",\"n\":");
    jbuf_u64(&b, 0);
    jbuf_lit(&b, ",\"big\":");
    jbuf_u64(&b, 18446744073709551615u);
    jbuf_lit(&b, ",\"null\":");
    jbuf_cstr(&b, NULL);
    jbuf_lit(&b, ",\"h\":\"");
    jbuf_hex(&b, 0xabc, 6);
    jbuf_lit(&b, "\",\"h0\":\"");
    jbuf_hex(&b, 0, 1);
    jbuf_lit(&b, "\",\"hmax\":\"");
    jbuf_hex(&b, UINT64_MAX, 16);
    jbuf_lit(&b, "\"}");
    char *text = finish(&b);
    assert_non_null(strstr(text, "\"big\":18446744073709551615"));
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "s")->valuestring, nasty);
    assert_int_equal(cJSON_GetObjectItem(j, "n")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(j, "latin1")->valuestring, "caf\xc3\xa9");
    assert_non_null(strstr(text, "\"caf\\u00e9\""));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "null")));
    assert_string_equal(cJSON_GetObjectItem(j, "h")->valuestring, "000abc");
    assert_string_equal(cJSON_GetObjectItem(j, "h0")->valuestring, "0");
    assert_string_equal(cJSON_GetObjectItem(j, "hmax")->valuestring, "ffffffffffffffff");
    cJSON_Delete(j);
    free(text);
}

static void test_times(void **state)
{
    (void)state;
    static const uint64_t times[] = {0,
                                     999,
                                     1000,
                                     1700000000000u,
                                     1700000000001u,
                                     1700000000999u,
                                     1700000001000u,
                                     1700000000500u,
                                     253402300799999u};
    struct jbuf b;
    jbuf_init(&b);
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        b.len = 0;
        jbuf_time(&b, times[i]);
        char want[25], quoted[32];
        clock_format_rfc3339(times[i], want);
        snprintf(quoted, sizeof quoted, "\"%s\"", want);
        assert_int_equal(b.len, strlen(quoted));
        assert_memory_equal(b.p, quoted, b.len);
    }
    jbuf_cleanup(&b);
}

static void test_bodies(void **state)
{
    (void)state;
    /* Text stays text. */
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{");
    jbuf_body(&b, (const uint8_t *)"h\xc3\xa9llo \"x\"", strlen("h\xc3\xa9llo \"x\""));
    jbuf_lit(&b, "}");
    char *text = finish(&b);
    cJSON *j = cJSON_Parse(text);
    assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "h\xc3\xa9llo \"x\"");
    assert_string_equal(cJSON_GetObjectItem(j, "encoding")->valuestring, "utf-8");
    cJSON_Delete(j);
    free(text);
    /* Empty body. */
    jbuf_lit(&b, "{");
    jbuf_body(&b, NULL, 0);
    jbuf_lit(&b, "}");
    text = finish(&b);
    assert_string_equal(text, "{\"body\":\"\",\"encoding\":\"utf-8\"}");
    free(text);
    /* Binary of every length mod 3, and one above the 3 MiB chunk size,
     * decodes back to the same bytes. */
    size_t lens[] = {1, 2, 3, 4, 5, (3u << 20) + 2};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        size_t n = lens[k];
        uint8_t *bin = malloc(n);
        for (size_t i = 0; i < n; i++)
            bin[i] = (uint8_t)(0x80 + i * 37);
        bin[0] = 0xff;
        jbuf_lit(&b, "{");
        jbuf_body(&b, bin, n);
        jbuf_lit(&b, "}");
        text = finish(&b);
        j = cJSON_Parse(text);
        assert_string_equal(cJSON_GetObjectItem(j, "encoding")->valuestring, "base64");
        const char *b64 = cJSON_GetObjectItem(j, "body")->valuestring;
        size_t blen = strlen(b64);
        assert_int_equal(blen, 4 * ((n + 2) / 3));
        uint8_t *dec = malloc(blen);
        int dn = EVP_DecodeBlock(dec, (const uint8_t *)b64, (int)blen);
        size_t pad = (n % 3) ? 3 - n % 3 : 0;
        assert_int_equal((size_t)dn - pad, n);
        assert_memory_equal(dec, bin, n);
        free(dec);
        cJSON_Delete(j);
        free(text);
        free(bin);
    }
    /* jbuf_finish with no reply drops the text. */
    jbuf_lit(&b, "x");
    assert_int_equal(jbuf_finish(&b, NULL, 200), MOM_OK);
    assert_null(b.p);
}

static void test_errors(void **state)
{
    (void)state;
    /* Every kind has a status and a code the API lists, and renders as
     * {"error":{"code","message"}} with that status. */
    static const char *const codes[] = {
        "bad_request",
        "invalid_json",
        "invalid_name",
        "offset_out_of_range",
        "unauthorized",
        "invalid_token",
        "invalid_credentials",
        "forbidden",
        "not_found",
        "queue_not_found",
        "topic_not_found",
        "subscription_not_found",
        "method_not_allowed",
        "conflict",
        "receipt_expired",
        "payload_too_large",
        "queue_full",
        "unavailable",
        "storage_unavailable",
        "too_many_requests",
        "header_too_large",
        "uri_too_long",
        "http_version_not_supported",
    };
    for (int e = 0; e < API_ERR_COUNT; e++) {
        int status = api_error_status((enum api_error)e);
        const char *code = api_error_code((enum api_error)e);
        assert_true(status >= 400 && status <= 599);
        bool listed = false;
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
            listed |= strcmp(codes[i], code) == 0;
        assert_true(listed);
        struct reply r = {0};
        render_error(&r, (enum api_error)e, "thing '%s' \"quoted\" %d", "x\n", e);
        assert_int_equal(r.status, status);
        cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
        assert_non_null(j);
        cJSON *err = cJSON_GetObjectItem(j, "error");
        assert_string_equal(cJSON_GetObjectItem(err, "code")->valuestring, code);
        char want[64];
        snprintf(want, sizeof want, "thing 'x\n' \"quoted\" %d", e);
        assert_string_equal(cJSON_GetObjectItem(err, "message")->valuestring, want);
        cJSON_Delete(j);
        reply_cleanup(&r);
    }
    assert_int_equal(api_error_status(API_ERR_QUEUE_NOT_FOUND), 404);
    assert_int_equal(api_error_status(API_ERR_STORAGE_FULL), 507);
    assert_int_equal(api_error_status((enum api_error)API_ERR_COUNT), 500);
    render_error(NULL, API_ERR_CONFLICT, "no reply: nothing happens");
}

/* A batch's answer is what printf writes for each id and sequence number,
 * across decimal carries, large indexes and sequence numbers that wrap. */
static void test_batch_answer(void **state)
{
    (void)state;
    static const struct {
        uint64_t index, first;
        size_t n;
    } cases[] = {
        {1, 0, 1},
        {7, 99998, 5},
        {0x3fffffffffffffULL, 9, 1000},
        {12345, 899, 300},
        {2, UINT64_MAX - 2, 3},
        {2, UINT64_MAX - 1, 3},
        {3, 999999999, 2},
        {4, 0, 0},
        {0x3fffffffffffffULL, 0, 1024},
    };
    size_t cap = 1024 * 44 + 64;
    char *want = malloc(cap);
    assert_non_null(want);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        for (int queue = 0; queue < 2; queue++) {
            size_t len = (size_t)snprintf(want, cap, "{\"ids\":[");
            for (size_t i = 0; i < cases[c].n; i++)
                len += (size_t)snprintf(want + len, cap - len, "%s\"%016" PRIx64 "\"", i ? "," : "",
                                        (cases[c].index << 10) | (uint64_t)i);
            len += (size_t)snprintf(want + len, cap - len, "%s",
                                    queue ? "],\"seqs\":[" : "],\"offsets\":[");
            for (size_t i = 0; i < cases[c].n; i++)
                len += (size_t)snprintf(want + len, cap - len, "%s%" PRIu64, i ? "," : "",
                                        cases[c].first + (uint64_t)i);
            snprintf(want + len, cap - len, "]}");
            struct reply r = {0};
            assert_int_equal(
                render_publish_ack(&r, queue, true, cases[c].index, cases[c].n, cases[c].first),
                MOM_OK);
            assert_int_equal(r.status, 201);
            assert_string_equal(r.body, want);
            assert_int_equal(r.body_len, strlen(want));
            reply_cleanup(&r);
        }
    }
    free(want);
}

static void test_answers(void **state)
{
    (void)state;
    struct reply r = {0};
    /* ids are (log index << 10) | item, in 16 hex digits */
    assert_int_equal(render_publish_ack(&r, true, false, 5, 1, 7), MOM_OK);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"id\":\"0000000000001400\",\"seq\":7}");
    assert_int_equal(render_publish_ack(&r, false, false, 5, 1, 0), MOM_OK);
    assert_string_equal(r.body, "{\"id\":\"0000000000001400\",\"offset\":0}");
    assert_int_equal(render_publish_ack(&r, true, true, 1, 2, 3), MOM_OK);
    assert_string_equal(r.body, "{\"ids\":[\"0000000000000400\",\"0000000000000401\"],"
                                "\"seqs\":[3,4]}");
    assert_int_equal(render_publish_ack(&r, false, true, 1, 1, 9), MOM_OK);
    assert_string_equal(r.body, "{\"ids\":[\"0000000000000400\"],\"offsets\":[9]}");
    assert_int_equal(render_publish_ack(NULL, false, true, 1, 1, 9), MOM_OK);
    assert_int_equal(render_token(&r, "a.b.c", 3600), MOM_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        r.body, "{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\",\"expires_in\":3600}");
    assert_int_equal(render_health(&r, false, "storage unavailable"), MOM_OK);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"storage unavailable\"}");
    assert_false(render_is_empty_receive(&r));
    assert_int_equal(render_empty_receive(&r), MOM_OK);
    assert_true(render_is_empty_receive(&r));
    render_no_content(&r);
    assert_int_equal(r.status, 204);
    assert_null(r.body);
    struct render_list l;
    render_list_open(&l, "queues");
    assert_int_equal(render_list_close(&l, &r), MOM_OK);
    assert_string_equal(r.body, "{\"queues\":[]}");
    reply_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),         cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_times),        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_answers),
        cmocka_unit_test(test_batch_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
