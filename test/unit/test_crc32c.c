/* Unit tests for common/crc32c: published CRC32C vectors (RFC 3720 B.4 and
 * the "123456789" check value), chaining, and the table path agreeing with
 * the dispatched (possibly SSE4.2) path at every alignment and length.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"

static void test_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0u);
    assert_int_equal(crc32c("a", 1), 0xC1D04330u);
}

static void test_rfc3720_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];

    memset(buf, 0, sizeof buf);
    assert_int_equal(crc32c(buf, sizeof buf), 0x8A9136AAu);
    assert_int_equal(crc32c_update_sw(0, buf, sizeof buf), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(crc32c(buf, sizeof buf), 0x62A8AB43u);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(buf, sizeof buf), 0x46DD794Eu);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(buf, sizeof buf), 0x113FDB5Cu);
}

static void test_chaining(void **state)
{
    (void)state;
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(s, n);

    assert_int_equal(whole, 0x22620404u);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t c = crc32c(s, cut);
        assert_int_equal(crc32c_update(c, s + cut, n - cut), whole);
        c = crc32c_update_sw(0, s, cut);
        assert_int_equal(crc32c_update_sw(c, s + cut, n - cut), whole);
    }
}

static void test_sw_matches_dispatch(void **state)
{
    (void)state;
    static uint8_t buf[4096 + 16];
    uint32_t x = 12345;

    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 300; len++)
            assert_int_equal(crc32c(buf + off, len), crc32c_update_sw(0, buf + off, len));
    assert_int_equal(crc32c(buf, 4096), crc32c_update_sw(0, buf, 4096));
    /* A single flipped bit changes the checksum. */
    uint32_t before = crc32c(buf, 4096);
    buf[1000] ^= 0x10;
    assert_int_not_equal(crc32c(buf, 4096), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_value),
        cmocka_unit_test(test_rfc3720_vectors),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_sw_matches_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
