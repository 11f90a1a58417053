/* Unit tests for replication/grpcmsg: prefix round trip, the deframer fed
 * with every kind of split of a multi-message stream (byte by byte, every
 * two-way split, seeded random splits), limits and bad flags, grpc-timeout
 * parse/format and percent-encoding, and the status mappings.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "replication/grpcmsg.h"

static void test_prefix(void **state)
{
    (void)state;
    uint8_t p[GRPCMSG_PREFIX_LEN];
    bool comp;
    uint32_t len;
    grpcmsg_pack_prefix(p, false, 0x01020304);
    assert_memory_equal(p, "\x00\x01\x02\x03\x04", 5);
    assert_int_equal(grpcmsg_decode_prefix(p, 5, &comp, &len), 5);
    assert_false(comp);
    assert_int_equal(len, 0x01020304);
    grpcmsg_pack_prefix(p, true, 0xffffffffu);
    assert_int_equal(grpcmsg_decode_prefix(p, 5, &comp, &len), 5);
    assert_true(comp);
    assert_int_equal(len, 0xffffffffu);
    assert_int_equal(grpcmsg_decode_prefix(p, 4, &comp, &len), MOM_ERR_NEED_MORE);
    p[0] = 2;
    assert_int_equal(grpcmsg_decode_prefix(p, 5, &comp, &len), MOM_ERR_INVALID);
}

/* A stream of messages of these sizes, byte i of message m = (m*31+i)&255. */
static const size_t sizes[] = {0, 1, 4, 5, 6, 300, 0, 70000, 17};
#define NMSG (sizeof sizes / sizeof sizes[0])

static uint8_t *build_stream(size_t *len)
{
    size_t total = 0;
    for (size_t m = 0; m < NMSG; m++)
        total += GRPCMSG_PREFIX_LEN + sizes[m];
    uint8_t *s = malloc(total);
    size_t o = 0;
    for (size_t m = 0; m < NMSG; m++) {
        grpcmsg_pack_prefix(s + o, false, (uint32_t)sizes[m]);
        o += GRPCMSG_PREFIX_LEN;
        for (size_t i = 0; i < sizes[m]; i++)
            s[o++] = (uint8_t)((m * 31 + i) & 255);
    }
    *len = total;
    return s;
}

/* Feeds the stream in chunks given by cut points; checks every message. */
static void feed_chunks(const uint8_t *s, size_t len, const size_t *cuts, size_t ncuts)
{
    struct grpcmsg_reader r;
    grpcmsg_reader_init(&r, 1 << 20);
    size_t got = 0, start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        const uint8_t *p = s + start;
        size_t n = end - start;
        while (n > 0) {
            size_t used;
            struct grpcmsg_view v;
            int rc = grpcmsg_reader_feed(&r, p, n, &used, &v);
            assert_true(rc == 0 || rc == 1);
            assert_true(used <= n);
            p += used;
            n -= used;
            if (rc == 1) {
                assert_true(got < NMSG);
                assert_int_equal(v.len, sizes[got]);
                assert_false(v.compressed);
                for (size_t i = 0; i < v.len; i++)
                    assert_int_equal(v.data[i], (uint8_t)((got * 31 + i) & 255));
                got++;
            } else {
                assert_int_equal(n, 0);
            }
        }
        start = end;
    }
    assert_int_equal(got, NMSG);
    assert_true(grpcmsg_reader_idle(&r));
    grpcmsg_reader_cleanup(&r);
}

static void test_reader_whole_and_bytewise(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = build_stream(&len);
    feed_chunks(s, len, NULL, 0);
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    feed_chunks(s, len, cuts, len - 1);
    free(cuts);
    free(s);
}

static void test_reader_every_two_way_split(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = build_stream(&len);
    for (size_t cut = 0; cut <= len; cut += (cut < 400 || cut > len - 400) ? 1 : 97)
        feed_chunks(s, len, &cut, 1);
    free(s);
}

static void test_reader_random_splits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = build_stream(&len);
    unsigned seed = 12345;
    size_t cuts[64];
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(rand_r(&seed) % 64);
        for (size_t i = 0; i < n; i++)
            cuts[i] = (size_t)rand_r(&seed) % (len + 1);
        /* sort the cut points */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        feed_chunks(s, len, cuts, n);
    }
    free(s);
}

static void test_reader_limits(void **state)
{
    (void)state;
    struct grpcmsg_reader r;
    uint8_t p[GRPCMSG_PREFIX_LEN + 4];
    size_t used;
    struct grpcmsg_view v;

    grpcmsg_reader_init(&r, 4);
    grpcmsg_pack_prefix(p, false, 4);
    memcpy(p + 5, "abcd", 4);
    assert_int_equal(grpcmsg_reader_feed(&r, p, 9, &used, &v), 1);
    assert_int_equal(used, 9);
    assert_int_equal(v.len, 4);
    /* one byte over the limit: refused on the prefix, before any body */
    grpcmsg_pack_prefix(p, false, 5);
    assert_int_equal(grpcmsg_reader_feed(&r, p, 5, &used, &v), MOM_ERR_TOO_LARGE);
    grpcmsg_reader_cleanup(&r);

    grpcmsg_reader_init(&r, 100);
    p[0] = 7;
    assert_int_equal(grpcmsg_reader_feed(&r, p, 5, &used, &v), MOM_ERR_INVALID);
    grpcmsg_reader_cleanup(&r);

    /* compressed flag is reported, a partial message is not idle */
    grpcmsg_reader_init(&r, 100);
    grpcmsg_pack_prefix(p, true, 3);
    assert_int_equal(grpcmsg_reader_feed(&r, p, 6, &used, &v), 0);
    assert_int_equal(used, 6);
    assert_false(grpcmsg_reader_idle(&r));
    assert_int_equal(grpcmsg_reader_feed(&r, (const uint8_t *)"yz", 2, &used, &v), 1);
    assert_true(v.compressed);
    assert_int_equal(v.len, 3);
    assert_true(grpcmsg_reader_idle(&r));
    grpcmsg_reader_cleanup(&r);

    /* 4 MiB message is accepted with a 4 MiB limit */
    size_t big = 4u << 20;
    uint8_t *m = calloc(1, big + 5);
    grpcmsg_pack_prefix(m, false, (uint32_t)big);
    m[5 + big - 1] = 0x5a;
    grpcmsg_reader_init(&r, big);
    size_t off = 0;
    int rc = 0;
    while (off < big + 5) {
        size_t chunk = big + 5 - off < 16384 ? big + 5 - off : 16384;
        rc = grpcmsg_reader_feed(&r, m + off, chunk, &used, &v);
        assert_true(rc >= 0);
        off += used;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(v.len, big);
    assert_int_equal(v.data[big - 1], 0x5a);
    grpcmsg_reader_cleanup(&r);
    free(m);
}

static void test_timeout(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(grpcmsg_timeout_parse("100m", 4, &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(grpcmsg_timeout_parse("2S", 2, &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(grpcmsg_timeout_parse("3M", 2, &ms), 0);
    assert_int_equal(ms, 180000);
    assert_int_equal(grpcmsg_timeout_parse("1H", 2, &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(grpcmsg_timeout_parse("1500u", 5, &ms), 0);
    assert_int_equal(ms, 2); /* rounded up */
    assert_int_equal(grpcmsg_timeout_parse("1n", 2, &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(grpcmsg_timeout_parse("0m", 2, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(grpcmsg_timeout_parse("99999999H", 9, &ms), 0);
    assert_int_equal(ms, 99999999ull * 3600000ull);
    assert_int_equal(grpcmsg_timeout_parse("123456789m", 10, &ms), MOM_ERR_INVALID);
    assert_int_equal(grpcmsg_timeout_parse("m", 1, &ms), MOM_ERR_INVALID);
    assert_int_equal(grpcmsg_timeout_parse("10x", 3, &ms), MOM_ERR_INVALID);
    assert_int_equal(grpcmsg_timeout_parse("1 S", 3, &ms), MOM_ERR_INVALID);
    assert_int_equal(grpcmsg_timeout_parse("-1S", 3, &ms), MOM_ERR_INVALID);

    char out[GRPCMSG_TIMEOUT_MAXLEN];
    assert_int_equal(grpcmsg_timeout_format(250, out), 4);
    assert_string_equal(out, "250m");
    assert_int_equal(grpcmsg_timeout_format(99999999, out), 9);
    assert_string_equal(out, "99999999m");
    grpcmsg_timeout_format(100000000, out);
    assert_string_equal(out, "100000S");
    grpcmsg_timeout_format(100000001, out);
    assert_string_equal(out, "100001S"); /* never shorter than asked */
    grpcmsg_timeout_format(UINT64_MAX, out);
    assert_string_equal(out, "99999999H");
    /* format then parse gives at least the original */
    const uint64_t vals[] = {0, 1, 999, 1000, 123456789, 99999999999ull};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        size_t n = grpcmsg_timeout_format(vals[i], out);
        assert_int_equal(grpcmsg_timeout_parse(out, n, &ms), 0);
        assert_true(ms >= vals[i]);
    }
}

static void test_percent(void **state)
{
    (void)state;
    char enc[64], dec[64];
    size_t n = grpcmsg_percent_encode("a b%c\n\xc3\xa9", 8, enc, sizeof enc);
    assert_string_equal(enc, "a b%25c%0A%C3%A9");
    assert_int_equal(n, strlen(enc));
    assert_int_equal(grpcmsg_percent_decode(enc, n, dec), 8);
    assert_memory_equal(dec, "a b%c\n\xc3\xa9", 8);
    /* never splits an escape when the output is short */
    n = grpcmsg_percent_encode("ab\n", 3, enc, 5);
    assert_string_equal(enc, "ab");
    /* lenient decode keeps bad escapes */
    assert_int_equal(grpcmsg_percent_decode("%zz%4", 5, dec), 5);
    assert_string_equal(dec, "%zz%4");
}

static void test_status_maps(void **state)
{
    (void)state;
    assert_int_equal(grpcmsg_status_from_err(MOM_OK), GRPC_OK);
    assert_int_equal(grpcmsg_status_from_err(MOM_ERR_TOO_LARGE), GRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(grpcmsg_status_from_err(MOM_ERR_INVALID), GRPC_INVALID_ARGUMENT);
    assert_int_equal(grpcmsg_status_from_err(MOM_ERR_AUTH), GRPC_UNAUTHENTICATED);
    assert_int_equal(grpcmsg_status_from_err(MOM_ERR_TIMEOUT), GRPC_DEADLINE_EXCEEDED);
    assert_int_equal(grpcmsg_status_from_err(MOM_ERR_UNAVAILABLE), GRPC_UNAVAILABLE);
    assert_int_equal(grpcmsg_status_from_err(-1000), GRPC_UNKNOWN);
    assert_int_equal(grpcmsg_status_from_http(404), GRPC_UNIMPLEMENTED);
    assert_int_equal(grpcmsg_status_from_http(503), GRPC_UNAVAILABLE);
    assert_int_equal(grpcmsg_status_from_http(401), GRPC_UNAUTHENTICATED);
    assert_int_equal(grpcmsg_status_from_http(500), GRPC_UNKNOWN);
    assert_string_equal(grpcmsg_status_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(grpcmsg_status_name(17), "INVALID_STATUS");
    assert_string_equal(grpcmsg_status_name(-1), "INVALID_STATUS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_reader_whole_and_bytewise),
        cmocka_unit_test(test_reader_every_two_way_split),
        cmocka_unit_test(test_reader_random_splits),
        cmocka_unit_test(test_reader_limits),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_status_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
