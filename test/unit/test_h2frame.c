/* Unit tests for replication/h2frame: every packer decodes back to what it
 * packed, every prefix of a frame is "need more", and every malformed case
 * of RFC 9113 §6 yields the right connection error code.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "replication/h2frame.h"

#define MAXF H2FRAME_MIN_MAX_FRAME_SIZE

/* Builds a raw frame: 9-byte header then payload. */
static size_t raw(uint8_t *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
                  const void *payload)
{
    struct h2frame_hd hd = {.length = len, .type = type, .flags = flags, .stream_id = sid};
    h2frame_pack_hd(out, &hd);
    if (len && payload)
        memcpy(out + H2FRAME_HDLEN, payload, len);
    return H2FRAME_HDLEN + len;
}

static void expect_error(const uint8_t *buf, size_t len, uint32_t code)
{
    struct h2frame f;
    uint32_t err = 0;
    assert_int_equal(h2frame_decode(buf, len, MAXF, &f, &err), MOM_ERR_PROTOCOL);
    assert_int_equal(err, code);
}

static void expect_ok(const uint8_t *buf, size_t len, struct h2frame *f)
{
    uint32_t err = 99;
    assert_int_equal(h2frame_decode(buf, len, MAXF, f, &err), (int)len);
    assert_int_equal(err, H2_NO_ERROR);
    /* every strict prefix needs more */
    for (size_t i = 0; i < len; i++) {
        struct h2frame g;
        assert_int_equal(h2frame_decode(buf, i, MAXF, &g, &err), MOM_ERR_NEED_MORE);
    }
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[H2FRAME_HDLEN];
    struct h2frame_hd in = {
        .length = 0xabcdef, .type = 0x7, .flags = 0xa5, .stream_id = 0x7fffffff};
    h2frame_pack_hd(buf, &in);
    struct h2frame_hd out;
    assert_int_equal(h2frame_decode_hd(buf, sizeof buf, &out), (int)H2FRAME_HDLEN);
    assert_int_equal(out.length, 0xabcdef);
    assert_int_equal(out.type, 7);
    assert_int_equal(out.flags, 0xa5);
    assert_int_equal(out.stream_id, 0x7fffffff);
    assert_int_equal(h2frame_decode_hd(buf, 8, &out), MOM_ERR_NEED_MORE);
    /* the reserved bit is ignored on receipt */
    buf[5] |= 0x80;
    h2frame_decode_hd(buf, sizeof buf, &out);
    assert_int_equal(out.stream_id, 0x7fffffff);
}

static void test_data_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct h2frame f;
    size_t n = h2frame_pack_payload(buf, H2FRAME_DATA, H2FRAME_FLAG_END_STREAM, 3, "hello", 5, 0);
    assert_int_equal(n, H2FRAME_HDLEN + 5);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.type, H2FRAME_DATA);
    assert_int_equal(f.hd.flags, H2FRAME_FLAG_END_STREAM);
    assert_int_equal(f.hd.stream_id, 3);
    assert_int_equal(f.data_len, 5);
    assert_memory_equal(f.data, "hello", 5);
    assert_int_equal(f.pad_len, 0);

    /* padded: 1 Pad Length octet + 9 zero bytes */
    n = h2frame_pack_payload(buf, H2FRAME_DATA, 0, 5, "abc", 3, 10);
    assert_int_equal(n, H2FRAME_HDLEN + 13);
    expect_ok(buf, n, &f);
    assert_true(f.hd.flags & H2FRAME_FLAG_PADDED);
    assert_int_equal(f.hd.length, 13);
    assert_int_equal(f.pad_len, 10);
    assert_int_equal(f.data_len, 3);
    assert_memory_equal(f.data, "abc", 3);

    /* maximum padding (256 bytes overhead), empty data */
    n = h2frame_pack_payload(buf, H2FRAME_DATA, H2FRAME_FLAG_END_STREAM, 1, NULL, 0, 256);
    expect_ok(buf, n, &f);
    assert_int_equal(f.pad_len, 256);
    assert_int_equal(f.data_len, 0);

    /* an empty DATA frame is legal */
    n = h2frame_pack_payload(buf, H2FRAME_DATA, H2FRAME_FLAG_END_STREAM, 1, NULL, 0, 0);
    expect_ok(buf, n, &f);
    assert_int_equal(f.data_len, 0);
}

static void test_headers_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct h2frame f;
    size_t n = h2frame_pack_payload(buf, H2FRAME_HEADERS,
                                    H2FRAME_FLAG_END_HEADERS | H2FRAME_FLAG_END_STREAM, 7,
                                    "\x82\x86", 2, 4);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.type, H2FRAME_HEADERS);
    assert_int_equal(f.data_len, 2);
    assert_memory_equal(f.data, "\x82\x86", 2);
    assert_int_equal(f.pad_len, 4);

    /* with PRIORITY and PADDED: pad octet, 5 priority bytes, block, padding */
    uint8_t pl[] = {2, 0x80, 0, 0, 3, 200, 0xaa, 0xbb, 0, 0};
    n = raw(buf, sizeof pl, H2FRAME_HEADERS,
            H2FRAME_FLAG_END_HEADERS | H2FRAME_FLAG_PRIORITY | H2FRAME_FLAG_PADDED, 9, pl);
    expect_ok(buf, n, &f);
    assert_true(f.exclusive);
    assert_int_equal(f.dependency, 3);
    assert_int_equal(f.weight, 200);
    assert_int_equal(f.data_len, 2);
    assert_memory_equal(f.data, "\xaa\xbb", 2);

    n = h2frame_pack_payload(buf, H2FRAME_CONTINUATION, H2FRAME_FLAG_END_HEADERS, 7, "xyz", 3, 0);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.type, H2FRAME_CONTINUATION);
    assert_int_equal(f.data_len, 3);
}

static void test_control_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct h2frame f;

    struct h2frame_setting set[] = {{H2_SETTINGS_HEADER_TABLE_SIZE, 0},
                                    {H2_SETTINGS_ENABLE_PUSH, 0},
                                    {H2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                    {H2_SETTINGS_INITIAL_WINDOW_SIZE, H2FRAME_MAX_WINDOW},
                                    {H2_SETTINGS_MAX_FRAME_SIZE, H2FRAME_MAX_MAX_FRAME_SIZE},
                                    {H2_SETTINGS_MAX_HEADER_LIST_SIZE, 1},
                                    {0x99, 12345}}; /* unknown: ignored */
    size_t n = h2frame_pack_settings(buf, set, 7, false);
    assert_int_equal(n, H2FRAME_HDLEN + 42);
    expect_ok(buf, n, &f);
    assert_int_equal(f.n_settings, 7);
    for (size_t i = 0; i < 7; i++) {
        struct h2frame_setting s = h2frame_setting_at(&f, i);
        assert_int_equal(s.id, set[i].id);
        assert_int_equal(s.value, set[i].value);
    }
    n = h2frame_pack_settings(buf, NULL, 0, true);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.flags, H2FRAME_FLAG_ACK);
    assert_int_equal(f.n_settings, 0);

    const uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    n = h2frame_pack_ping(buf, opaque, true);
    assert_int_equal(n, 17);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.flags, H2FRAME_FLAG_ACK);
    assert_memory_equal(f.ping, opaque, 8);

    n = h2frame_pack_window_update(buf, 0, H2FRAME_MAX_WINDOW);
    expect_ok(buf, n, &f);
    assert_int_equal(f.window_increment, H2FRAME_MAX_WINDOW);
    n = h2frame_pack_window_update(buf, 11, 1);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.stream_id, 11);
    assert_int_equal(f.window_increment, 1);

    n = h2frame_pack_rst_stream(buf, 5, H2_CANCEL);
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.stream_id, 5);
    assert_int_equal(f.error_code, H2_CANCEL);

    n = h2frame_pack_goaway(buf, 41, H2_ENHANCE_YOUR_CALM, "calm down", 9);
    expect_ok(buf, n, &f);
    assert_int_equal(f.last_stream_id, 41);
    assert_int_equal(f.error_code, H2_ENHANCE_YOUR_CALM);
    assert_int_equal(f.data_len, 9);
    assert_memory_equal(f.data, "calm down", 9);

    n = h2frame_pack_priority(buf, 3, 1, 15, true);
    expect_ok(buf, n, &f);
    assert_int_equal(f.dependency, 1);
    assert_int_equal(f.weight, 15);
    assert_true(f.exclusive);

    uint8_t pp[] = {0, 0, 0, 4, 0x82};
    n = raw(buf, sizeof pp, H2FRAME_PUSH_PROMISE, H2FRAME_FLAG_END_HEADERS, 1, pp);
    expect_ok(buf, n, &f);
    assert_int_equal(f.promised_stream_id, 4);
    assert_int_equal(f.data_len, 1);

    /* unknown type: passes through */
    n = raw(buf, 3, 0xfa, 0xff, 0, "abc");
    expect_ok(buf, n, &f);
    assert_int_equal(f.hd.type, 0xfa);
    assert_int_equal(f.data_len, 3);
}

static void test_frame_size_limit(void **state)
{
    (void)state;
    uint8_t buf[H2FRAME_HDLEN + MAXF + 1];
    memset(buf, 0, sizeof buf);
    struct h2frame f;
    uint32_t err;
    /* exactly the limit is fine */
    size_t n = raw(buf, MAXF, H2FRAME_DATA, 0, 1, NULL);
    assert_int_equal(h2frame_decode(buf, n, MAXF, &f, &err), (int)n);
    /* one more fails as soon as the header is seen */
    raw(buf, MAXF + 1, H2FRAME_DATA, 0, 1, NULL);
    assert_int_equal(h2frame_decode(buf, H2FRAME_HDLEN, MAXF, &f, &err), MOM_ERR_PROTOCOL);
    assert_int_equal(err, H2_FRAME_SIZE_ERROR);
    /* a larger limit accepts it */
    assert_int_equal(h2frame_decode(buf, sizeof buf, MAXF + 1, &f, &err), (int)sizeof buf);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t b[64];
    uint8_t z[16] = {0};
    /* DATA */
    expect_error(b, raw(b, 1, H2FRAME_DATA, 0, 0, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 0, H2FRAME_DATA, H2FRAME_FLAG_PADDED, 1, z), H2_FRAME_SIZE_ERROR);
    uint8_t pad3[] = {3, 0, 0};
    expect_error(b, raw(b, 3, H2FRAME_DATA, H2FRAME_FLAG_PADDED, 1, pad3), H2_PROTOCOL_ERROR);
    uint8_t pad2[] = {2, 0, 0}; /* pad octet + 2 padding bytes, no data: fine */
    struct h2frame f;
    expect_ok(b, raw(b, 3, H2FRAME_DATA, H2FRAME_FLAG_PADDED, 1, pad2), &f);
    assert_int_equal(f.data_len, 0);
    /* HEADERS */
    expect_error(b, raw(b, 1, H2FRAME_HEADERS, 0, 0, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 4, H2FRAME_HEADERS, H2FRAME_FLAG_PRIORITY, 1, z), H2_FRAME_SIZE_ERROR);
    uint8_t hp[] = {5, 0, 0, 0, 0, 0}; /* pad 5 leaves no room for priority */
    expect_error(b, raw(b, 6, H2FRAME_HEADERS, H2FRAME_FLAG_PADDED | H2FRAME_FLAG_PRIORITY, 1, hp),
                 H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 1, H2FRAME_HEADERS, H2FRAME_FLAG_PADDED, 1, pad3), H2_PROTOCOL_ERROR);
    /* PRIORITY */
    expect_error(b, raw(b, 5, H2FRAME_PRIORITY, 0, 0, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 4, H2FRAME_PRIORITY, 0, 1, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 6, H2FRAME_PRIORITY, 0, 1, z), H2_FRAME_SIZE_ERROR);
    /* RST_STREAM */
    expect_error(b, raw(b, 4, H2FRAME_RST_STREAM, 0, 0, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 3, H2FRAME_RST_STREAM, 0, 1, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 5, H2FRAME_RST_STREAM, 0, 1, z), H2_FRAME_SIZE_ERROR);
    /* SETTINGS */
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 1, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 5, H2FRAME_SETTINGS, 0, 0, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 7, H2FRAME_SETTINGS, 0, 0, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, H2FRAME_FLAG_ACK, 0, z), H2_FRAME_SIZE_ERROR);
    uint8_t push2[] = {0, 2, 0, 0, 0, 2};
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 0, push2), H2_PROTOCOL_ERROR);
    uint8_t win[] = {0, 4, 0x80, 0, 0, 0};
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 0, win), H2_FLOW_CONTROL_ERROR);
    uint8_t small[] = {0, 5, 0, 0, 0x3f, 0xff};
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 0, small), H2_PROTOCOL_ERROR);
    uint8_t big[] = {0, 5, 1, 0, 0, 0};
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 0, big), H2_PROTOCOL_ERROR);
    uint8_t conn2[] = {0, 8, 0, 0, 0, 2};
    expect_error(b, raw(b, 6, H2FRAME_SETTINGS, 0, 0, conn2), H2_PROTOCOL_ERROR);
    /* PUSH_PROMISE */
    expect_error(b, raw(b, 4, H2FRAME_PUSH_PROMISE, 0, 0, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 3, H2FRAME_PUSH_PROMISE, 0, 1, z), H2_FRAME_SIZE_ERROR);
    /* PING */
    expect_error(b, raw(b, 8, H2FRAME_PING, 0, 1, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 7, H2FRAME_PING, 0, 0, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 9, H2FRAME_PING, 0, 0, z), H2_FRAME_SIZE_ERROR);
    /* GOAWAY */
    expect_error(b, raw(b, 8, H2FRAME_GOAWAY, 0, 3, z), H2_PROTOCOL_ERROR);
    expect_error(b, raw(b, 7, H2FRAME_GOAWAY, 0, 0, z), H2_FRAME_SIZE_ERROR);
    /* WINDOW_UPDATE */
    expect_error(b, raw(b, 3, H2FRAME_WINDOW_UPDATE, 0, 0, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 5, H2FRAME_WINDOW_UPDATE, 0, 1, z), H2_FRAME_SIZE_ERROR);
    expect_error(b, raw(b, 4, H2FRAME_WINDOW_UPDATE, 0, 0, z), H2_PROTOCOL_ERROR);
    /* a zero increment on a stream is a stream error: decoded, h2conn resets */
    expect_ok(b, raw(b, 4, H2FRAME_WINDOW_UPDATE, 0, 1, z), &f);
    assert_int_equal(f.window_increment, 0);
    /* CONTINUATION */
    expect_error(b, raw(b, 1, H2FRAME_CONTINUATION, 0, 0, z), H2_PROTOCOL_ERROR);
}

static void test_check_setting(void **state)
{
    (void)state;
    assert_int_equal(h2frame_check_setting(H2_SETTINGS_ENABLE_PUSH, 1), 0);
    assert_int_equal(h2frame_check_setting(H2_SETTINGS_INITIAL_WINDOW_SIZE, H2FRAME_MAX_WINDOW), 0);
    assert_int_equal(h2frame_check_setting(H2_SETTINGS_MAX_FRAME_SIZE, 16384), 0);
    assert_int_equal(h2frame_check_setting(H2_SETTINGS_MAX_FRAME_SIZE, 16383), H2_PROTOCOL_ERROR);
    assert_int_equal(h2frame_check_setting(H2_SETTINGS_HEADER_TABLE_SIZE, UINT32_MAX), 0);
    assert_int_equal(h2frame_check_setting(0xffff, UINT32_MAX), 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(h2frame_type_name(H2FRAME_GOAWAY), "GOAWAY");
    assert_string_equal(h2frame_type_name(0xee), "UNKNOWN");
    assert_string_equal(h2frame_error_name(H2_FRAME_SIZE_ERROR), "FRAME_SIZE_ERROR");
    assert_string_equal(h2frame_error_name(0x1234), "UNKNOWN_ERROR");
}

/* A stream of several frames decodes frame by frame. */
static void test_sequence(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = 0;
    n += h2frame_pack_settings(buf + n, NULL, 0, true);
    n += h2frame_pack_payload(buf + n, H2FRAME_DATA, 0, 1, "abc", 3, 2);
    n += h2frame_pack_window_update(buf + n, 0, 100);
    uint8_t types[3];
    size_t off = 0, k = 0;
    while (off < n) {
        struct h2frame f;
        uint32_t err;
        int used = h2frame_decode(buf + off, n - off, MAXF, &f, &err);
        assert_true(used > 0);
        types[k++] = f.hd.type;
        off += (size_t)used;
    }
    assert_int_equal(k, 3);
    assert_int_equal(types[0], H2FRAME_SETTINGS);
    assert_int_equal(types[1], H2FRAME_DATA);
    assert_int_equal(types[2], H2FRAME_WINDOW_UPDATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),  cmocka_unit_test(test_data_roundtrip),
        cmocka_unit_test(test_headers_roundtrip), cmocka_unit_test(test_control_roundtrip),
        cmocka_unit_test(test_frame_size_limit),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_check_setting),     cmocka_unit_test(test_names),
        cmocka_unit_test(test_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
