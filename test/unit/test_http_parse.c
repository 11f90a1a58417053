/* Unit tests for request parsing: query values, integer rules, settings
 * bodies (types, unknown fields, presence bits), batches, credentials.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/http_parse.h"

static void test_query(void **state)
{
    (void)state;
    char v[32];
    assert_true(http_query_get("max=5&wait_ms=100", "wait_ms", v, sizeof v));
    assert_string_equal(v, "100");
    assert_true(http_query_get("a=x%20y+z", "a", v, sizeof v));
    assert_string_equal(v, "x y z");
    assert_false(http_query_get("maxx=1", "max", v, sizeof v));
    assert_false(http_query_get(NULL, "max", v, sizeof v));
    assert_true(http_query_get("flag", "flag", v, sizeof v));
    assert_string_equal(v, "");
    /* %00 stays as it is: a decoded NUL would cut the value short */
    assert_true(http_query_get("from=earliest%00x&a=%41", "from", v, sizeof v));
    assert_string_equal(v, "earliest%00x");
    assert_true(http_query_get("from=earliest%00x&a=%41", "a", v, sizeof v));
    assert_string_equal(v, "A");
}

static void test_uint(void **state)
{
    (void)state;
    struct parse_error e;
    uint64_t out;
    assert_int_equal(http_parse_uint("42", 100, true, "max", &out, &e), 0);
    assert_int_equal(out, 42);
    assert_int_equal(http_parse_uint("500", 100, true, "max", &out, &e), 0);
    assert_int_equal(out, 100);
    assert_int_equal(http_parse_uint("99999999999999999999999", 100, true, "max", &out, &e), 0);
    assert_int_equal(out, 100);
    assert_int_equal(http_parse_uint("500", 100, false, "max", &out, &e), -1);
    assert_int_equal(http_parse_uint("-1", 100, true, "max", &out, &e), -1);
    assert_int_equal(api_error_status(e.kind), 400);
    assert_int_equal(http_parse_uint("1.5", 100, true, "max", &out, &e), -1);
    /* the largest 64-bit value is read exactly, one more overflows */
    assert_int_equal(http_parse_uint("18446744073709551615", UINT64_MAX, false, "from", &out, &e),
                     0);
    assert_true(out == UINT64_MAX);
    assert_int_equal(http_parse_uint("18446744073709551610", UINT64_MAX, false, "from", &out, &e),
                     0);
    assert_true(out == UINT64_MAX - 5);
    assert_int_equal(http_parse_uint("18446744073709551616", UINT64_MAX, false, "from", &out, &e),
                     -1);
    assert_int_equal(http_parse_uint("", 100, true, "max", &out, &e), -1);
}

static void test_queue_settings(void **state)
{
    (void)state;
    struct parse_error e;
    mom_v1_QueueSettings s;
    const char *ok =
        "{\"visibility_timeout_ms\":1000,\"dead_letter_queue\":\"dlq\",\"access\":\"private\"}";
    assert_int_equal(http_parse_queue_settings("q", ok, strlen(ok), &s, &e), 0);
    assert_int_equal(s.visibility_timeout_ms, 1000);
    assert_string_equal(s.dead_letter_queue, "dlq");
    assert_true(s.private_access);
    assert_int_equal(s.present, (1u << 1) | (1u << 3) | (1u << 6));
    assert_int_equal(http_parse_queue_settings("q", "", 0, &s, &e), 0);
    assert_int_equal(s.present, 0);
    const char *self = "{\"dead_letter_queue\":\"q\"}";
    assert_int_equal(http_parse_queue_settings("q", self, strlen(self), &s, &e), -1);
    const char *unknown = "{\"colour\":1}";
    assert_int_equal(http_parse_queue_settings("q", unknown, strlen(unknown), &s, &e), -1);
    assert_string_equal(api_error_code(e.kind), "bad_request");
    const char *wrong_type = "{\"max_length\":\"10\"}";
    assert_int_equal(http_parse_queue_settings("q", wrong_type, strlen(wrong_type), &s, &e), -1);
    const char *negative = "{\"max_length\":-1}";
    assert_int_equal(http_parse_queue_settings("q", negative, strlen(negative), &s, &e), -1);
    /* 2^53 and above may have been rounded: refused, never changed */
    const char *inexact = "{\"max_length\":9007199254740993}";
    assert_int_equal(http_parse_queue_settings("q", inexact, strlen(inexact), &s, &e), -1);
    assert_string_equal(api_error_code(e.kind), "bad_request");
    const char *exact = "{\"max_length\":9007199254740991}";
    assert_int_equal(http_parse_queue_settings("q", exact, strlen(exact), &s, &e), 0);
    assert_int_equal(s.max_length, 9007199254740991ull);
    const char *broken = "{\"max_length\":";
    assert_int_equal(http_parse_queue_settings("q", broken, strlen(broken), &s, &e), -1);
    assert_string_equal(api_error_code(e.kind), "invalid_json");
    assert_int_equal(http_parse_queue_settings("q", "[1]", 3, &s, &e), -1);
}

static void test_batch(void **state)
{
    (void)state;
    struct parse_error e;
    struct command_item *items;
    size_t n;
    uint8_t **owned;
    const char *b = "{\"messages\":[{\"body\":\"hi\"},{\"body\":\"AAE=\",\"encoding\":\"base64\","
                    "\"content_type\":\"application/x\",\"delay_ms\":5}]}";
    assert_int_equal(http_parse_batch(b, strlen(b), true, &items, &n, &owned, &e), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(items[0].body, "hi", 2);
    assert_int_equal(items[1].body_len, 2);
    assert_int_equal(items[1].body[0], 0);
    assert_int_equal(items[1].body[1], 1);
    assert_string_equal(items[1].content_type, "application/x");
    assert_int_equal(items[1].delay_ms, 5);
    http_free_batch(items, owned, n);
    assert_int_equal(http_parse_batch(b, strlen(b), false, &items, &n, &owned, &e), -1);
    const char *empty = "{\"messages\":[]}";
    assert_int_equal(http_parse_batch(empty, strlen(empty), true, &items, &n, &owned, &e), -1);
    const char *bad64 = "{\"messages\":[{\"body\":\"***\",\"encoding\":\"base64\"}]}";
    assert_int_equal(http_parse_batch(bad64, strlen(bad64), true, &items, &n, &owned, &e), -1);
}

/* The plain-shape reader and cJSON agree on every body: same result, same
 * items, same error. */
static void same_batch(const char *b, size_t len, bool allow_delay, bool plain)
{
    struct parse_error e1, e2;
    struct command_item *i1, *i2;
    size_t n1, n2;
    uint8_t **o1, **o2;
    int r1 = http_parse_batch(b, len, allow_delay, &i1, &n1, &o1, &e1);
    int r2 = http_parse_batch_cjson(b, len, allow_delay, &i2, &n2, &o2, &e2);
    assert_int_equal(r1, r2);
    if (r1) {
        assert_int_equal(e1.kind, e2.kind);
        assert_string_equal(e1.message, e2.message);
        return;
    }
    assert_int_equal(n1, n2);
    for (size_t i = 0; i < n1; i++) {
        assert_int_equal(i1[i].body_len, i2[i].body_len);
        if (i1[i].body_len)
            assert_memory_equal(i1[i].body, i2[i].body, i1[i].body_len);
        assert_string_equal(i1[i].content_type, i2[i].content_type);
        assert_int_equal(i1[i].delay_ms, i2[i].delay_ms);
        /* read in place exactly when the body has the plain shape */
        assert_int_equal(o1[i] == NULL, plain);
        if (plain)
            assert_true((const char *)i1[i].body >= b &&
                        (const char *)i1[i].body + i1[i].body_len <= b + len);
    }
    http_free_batch(i1, o1, n1);
    http_free_batch(i2, o2, n2);
}

static void test_batch_plain(void **state)
{
    (void)state;
    static const char *const plain[] = {
        "{\"messages\":[{\"body\":\"hi\"}]}",
        " \r\n{ \"messages\" :\t[ {\"body\" : \"a\"} , { \"body\":\"\" "
        "},{\"body\":\"\xc3\xa9\xff\"}"
        " ] }\n",
        "{\"messages\":[{\"body\":\"tab\there\"},{\"body\":\"{[,:}]\"}]}",
    };
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        same_batch(plain[i], strlen(plain[i]), true, true);
        same_batch(plain[i], strlen(plain[i]), false, true);
    }
    static const char *const other[] = {
        "{\"messages\":[{\"body\":\"a\\\"b\"}]}",           /* an escape */
        "{\"messages\":[{\"body\":\"a\\u0000b\"}]}",        /* an escaped NUL cuts the body */
        "{\"messages\":[{\"body\":\"a\",\"delay_ms\":5}]}", /* another field */
        "{\"messages\":[{\"body\":\"AA==\",\"encoding\":\"base64\"}]}",
        "{\"messages\":[{\"delay_ms\":1,\"body\":\"a\"}]}",
        "{\"messages\":[{\"body\":\"a\"},]}", /* not JSON */
        "{\"messages\":[{\"body\":\"a\"}]}x",
        "{\"messages\":[{\"body\":\"a\"}]",
        "{\"messages\":[{\"body\":\"a\"}],\"messages\":[{\"body\":\"b\"}]}",
        "{\"messages\":[{\"body\":\"a\"},{\"body\":\"a\",\"body\":\"b\"}]}",
        "{\"messages\":[{\"body\":1}]}",
        "{\"messages\":[]}",
        "{\"messages\":[{\"body\":\"a\"}],\"x\":1}",
        "\x0b{\"messages\":[{\"body\":\"a\"}]}", /* whitespace only to cJSON */
        "\xef\xbb\xbf{\"messages\":[{\"body\":\"a\"}]}",
        "{\"messages\":[{\"body\":\"a",
        "",
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        same_batch(other[i], strlen(other[i]), true, false);
        same_batch(other[i], strlen(other[i]), false, false);
    }
    /* a NUL byte inside a body, or after the object */
    const char nul_in[] = "{\"messages\":[{\"body\":\"a\0b\"}]}";
    same_batch(nul_in, sizeof nul_in - 1, true, false);
    const char nul_after[] = "{\"messages\":[{\"body\":\"a\"}]}\0";
    same_batch(nul_after, sizeof nul_after - 1, true, false);
    /* 1000 items read in place, 1001 refused by both */
    size_t cap = 1001 * 16 + 32, len = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    for (int n = 1000; n <= 1001; n++) {
        len = (size_t)snprintf(big, cap, "{\"messages\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, cap - len, "%s{\"body\":\"m%d\"}", i ? "," : "", i);
        len += (size_t)snprintf(big + len, cap - len, "]}");
        same_batch(big, len, true, n == 1000);
    }
    free(big);
}

static void test_bodies(void **state)
{
    (void)state;
    struct parse_error e;
    uint64_t v;
    assert_int_equal(http_parse_nack("", 0, &v, &e), 0);
    assert_int_equal(v, 0);
    assert_int_equal(http_parse_nack("{\"delay_ms\":7}", 14, &v, &e), 0);
    assert_int_equal(v, 7);
    assert_int_equal(http_parse_extend("{}", 2, &v, &e), -1);
    const char *big = "{\"visibility_timeout_ms\":43200001}";
    assert_int_equal(http_parse_extend(big, strlen(big), &v, &e), -1);
    enum http_sub_start start;
    uint64_t t;
    const char *sub = "{\"start\":\"earliest\"}";
    assert_int_equal(http_parse_subscription(sub, strlen(sub), &start, &t, &e), 0);
    assert_int_equal(start, HTTP_SUB_EARLIEST);
    assert_int_equal(http_parse_subscription("", 0, &start, &t, &e), 0);
    assert_int_equal(start, HTTP_SUB_LATEST);
    const char *latest = "{\"start\":\"latest\"}";
    assert_int_equal(http_parse_subscription(latest, strlen(latest), &start, &t, &e), 0);
    assert_int_equal(start, HTTP_SUB_LATEST);
    const char *at = "{\"start\":\"time:2026-12-07T06:13:44.123+01:00\"}";
    assert_int_equal(http_parse_subscription(at, strlen(at), &start, &t, &e), 0);
    assert_int_equal(start, HTTP_SUB_TIME);
    assert_true(t == 1796620424123ull);
    static const char *const badsubs[] = {
        "{\"start\":\"middle\"}",
        "{\"start\":\"time:\"}",
        "{\"start\":\"time:2026-02-30T00:00:00Z\"}",
        "{\"start\":\"time:2026-01-01T00:00:00 01:00\"}", /* no query '+' in JSON */
        "{\"start\":5}",
        "{\"start\":\"5\"}", /* an offset is not a start */
        "{\"start\":\"earliest\",\"x\":1}",
    };
    for (size_t i = 0; i < sizeof badsubs / sizeof badsubs[0]; i++) {
        assert_int_equal(http_parse_subscription(badsubs[i], strlen(badsubs[i]), &start, &t, &e),
                         -1);
        assert_int_equal(api_error_status(e.kind), 400);
    }

    bool by_time;
    uint64_t off;
    const char *seek = "{\"offset\":42}";
    assert_int_equal(http_parse_seek(seek, strlen(seek), &by_time, &off, &t, &e), 0);
    assert_false(by_time);
    assert_int_equal(off, 42);
    seek = "{\"time\":\"2026-12-07T05:13:44.123Z\"}";
    assert_int_equal(http_parse_seek(seek, strlen(seek), &by_time, &off, &t, &e), 0);
    assert_true(by_time);
    assert_true(t == 1796620424123ull);
    static const char *const badseeks[] = {
        "",
        "{}",
        "{\"offset\":1,\"time\":\"2026-12-07T05:13:44Z\"}",
        "{\"offset\":-1}",
        "{\"offset\":1.5}",
        "{\"offset\":\"1\"}",
        "{\"time\":1}",
        "{\"time\":\"yesterday\"}",
        "{\"time\":\"2026-12-07T05:13:44\"}",
        "{\"offset\":1,\"whence\":0}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof badseeks / sizeof badseeks[0]; i++) {
        if (http_parse_seek(badseeks[i], strlen(badseeks[i]), &by_time, &off, &t, &e) != -1)
            fail_msg("accepted %s", badseeks[i]);
        assert_int_equal(api_error_status(e.kind), 400);
    }
    seek = "{\"offset\":1,\"time\":\"2026-12-07T05:13:44Z\"}";
    assert_int_equal(http_parse_seek(seek, strlen(seek), &by_time, &off, &t, &e), -1);
    assert_string_equal(e.message, "give exactly one of 'offset' and 'time'");
    char user[129];
    char *pw;
    size_t pwlen;
    const char *cred = "{\"username\":\"alice\",\"password\":\"longenough\"}";
    assert_int_equal(http_parse_credentials(cred, strlen(cred), user, &pw, &pwlen, &e), 0);
    assert_string_equal(user, "alice");
    assert_int_equal(pwlen, 10);
    free(pw);
    const char *shortpw = "{\"username\":\"alice\",\"password\":\"short\"}";
    assert_int_equal(http_parse_credentials(shortpw, strlen(shortpw), user, &pw, &pwlen, &e), -1);
    /* a login with a password no registration allows goes on as the empty
     * password, which matches no user */
    assert_int_equal(http_parse_login(shortpw, strlen(shortpw), user, &pw, &pwlen, &e), 0);
    assert_int_equal(pwlen, 0);
    assert_string_equal(pw, "");
    free(pw);
    assert_int_equal(http_parse_login(cred, strlen(cred), user, &pw, &pwlen, &e), 0);
    assert_int_equal(pwlen, 10);
    assert_string_equal(pw, "longenough");
    free(pw);
    const char *badname = "{\"username\":\"a b\",\"password\":\"longenough\"}";
    assert_int_equal(http_parse_credentials(badname, strlen(badname), user, &pw, &pwlen, &e), -1);
    assert_string_equal(api_error_code(e.kind), "invalid_name");
}

/* Parses an ACL body; on success checks the lists against the comma lists
 * want_publish/want_consume and frees them; returns the kind's code or "". */
static const char *acl(const char *body, const char *want_publish, const char *want_consume)
{
    static struct parse_error e;
    struct command_users pub, con;
    if (http_parse_acl(body, strlen(body), &pub, &con, &e) != 0) {
        assert_null(pub.names);
        assert_null(con.names);
        assert_int_equal(pub.count + con.count, 0);
        assert_true(strlen(e.message) > 0);
        return api_error_code(e.kind);
    }
    const struct command_users *lists[2] = {&pub, &con};
    const char *wants[2] = {want_publish, want_consume};
    for (int l = 0; l < 2; l++) {
        char joined[512] = "";
        for (size_t i = 0; i < lists[l]->count; i++) {
            if (i)
                strcat(joined, ",");
            strcat(joined, lists[l]->names[i]);
        }
        assert_string_equal(joined, wants[l]);
        free(lists[l]->names);
    }
    return "";
}

static void test_acl(void **state)
{
    (void)state;
    assert_string_equal(acl("{\"publish\":[\"b\",\"a\",\"b\"],\"consume\":[]}", "b,a,b", ""), "");
    assert_string_equal(acl("{}", "", ""), "");
    assert_string_equal(acl(" {\"consume\":[\"x.y_z-1\"]} ", "", "x.y_z-1"), "");
    assert_string_equal(acl("", "", ""), "bad_request"); /* a body is required */
    assert_string_equal(acl("{", "", ""), "invalid_json");
    assert_string_equal(acl("[]", "", ""), "bad_request");
    assert_string_equal(acl("{\"publish\":\"a\"}", "", ""), "bad_request");
    assert_string_equal(acl("{\"publish\":null}", "", ""), "bad_request");
    assert_string_equal(acl("{\"publish\":[\"a\",1]}", "", ""), "bad_request");
    assert_string_equal(acl("{\"consume\":[[\"a\"]]}", "", ""), "bad_request");
    assert_string_equal(acl("{\"consume\":[\"a b\"]}", "", ""), "invalid_name");
    assert_string_equal(acl("{\"consume\":[\"\"]}", "", ""), "invalid_name");
    assert_string_equal(acl("{\"publish\":[\"a\"],\"owner\":\"b\"}", "", ""), "bad_request");
    assert_string_equal(acl("{\"publish\":[],\"publish\":[\"a\"]}", "", ""), "bad_request");
    /* 128-byte names and 1000 users are the most */
    char body[16 * 1024];
    char name[129];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(body, sizeof body, "{\"publish\":[\"%s\"]}", name);
    assert_string_equal(acl(body, name, ""), "");
    snprintf(body, sizeof body, "{\"publish\":[\"%sn\"]}", name);
    assert_string_equal(acl(body, "", ""), "invalid_name");
    for (int users = 1000; users <= 1001; users++) {
        size_t o = (size_t)snprintf(body, sizeof body, "{\"consume\":[");
        for (int i = 0; i < users; i++)
            o += (size_t)snprintf(body + o, sizeof body - o, "%s\"u\"", i ? "," : "");
        snprintf(body + o, sizeof body - o, "]}");
        struct parse_error e;
        struct command_users pub, con;
        int rc = http_parse_acl(body, strlen(body), &pub, &con, &e);
        assert_int_equal(rc, users == 1000 ? 0 : -1);
        assert_int_equal(con.count, users == 1000 ? 1000 : 0);
        free(con.names);
        free(pub.names);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_queue_settings),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_batch_plain),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_acl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
