/* Unit tests for common/base64: RFC 4648 section 10 vectors in both
 * variants, every refusal of a non-canonical spelling (bad padding, bits
 * left over, foreign characters, whitespace), and a round trip of all
 * byte strings up to 3 bytes against OpenSSL's encoder.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/base64.h"
#include "common/err.h"

static int dec(enum base64_variant v, const char *in, char *out, size_t cap, size_t *n)
{
    return base64_decode(v, in, strlen(in), (uint8_t *)out, cap, n);
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char out[16];
        size_t n = 99;
        assert_int_equal(dec(BASE64_STD, std[i], out, sizeof out, &n), MOM_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
        assert_int_equal(dec(BASE64_URL, url[i], out, sizeof out, &n), MOM_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
    }
    char out[4];
    size_t n;
    assert_int_equal(dec(BASE64_STD, "+/+/", out, sizeof out, &n), MOM_OK);
    assert_int_equal(dec(BASE64_URL, "-_-_", out, sizeof out, &n), MOM_OK);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *const bad_std[] = {
        "Q===", "====",     "QQ=",   "Q",     "QQ",     "QQQ",    "QR==", "QUF=", "QQ=A",    "Q=Q=",
        "=QQQ", "QQ==QQ==", "QQ== ", " QQ==", "QQ\n==", "Zm9v\n", "-_-_", "QQ-=", "Zm9\x80",
    };
    static const char *const bad_url[] = {
        "Q", "QR", "QUF", "QQ==", "QQ=", "+/+/", "Zm 9v", "Zm9vY"};
    char out[16];
    size_t n;
    for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
        if (dec(BASE64_STD, bad_std[i], out, sizeof out, &n) != MOM_ERR_INVALID)
            fail_msg("std accepted '%s'", bad_std[i]);
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
        if (dec(BASE64_URL, bad_url[i], out, sizeof out, &n) != MOM_ERR_INVALID)
            fail_msg("url accepted '%s'", bad_url[i]);
    /* Too small an output buffer. */
    assert_int_equal(dec(BASE64_STD, "Zm9vYmFy", out, 5, &n), MOM_ERR_TOO_LARGE);
    assert_int_equal(dec(BASE64_STD, "Zm9vYmFy", out, 6, &n), MOM_OK);
}

static void test_round_trip_short_strings(void **state)
{
    (void)state;
    uint8_t in[3], out[8];
    unsigned char text[8];
    for (size_t len = 0; len <= 3; len++) {
        size_t count = len == 3 ? 1u << 24 : 1u << (8 * len);
        size_t step = len == 3 ? 4099 : 1; /* a spread sample of the 3-byte strings */
        for (size_t v = 0; v < count; v += step) {
            for (size_t b = 0; b < len; b++)
                in[b] = (uint8_t)(v >> (8 * b));
            int tl = EVP_EncodeBlock(text, in, (int)len);
            size_t n;
            assert_int_equal(
                base64_decode(BASE64_STD, (const char *)text, (size_t)tl, out, sizeof out, &n),
                MOM_OK);
            assert_int_equal(n, len);
            assert_memory_equal(out, in, len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_round_trip_short_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
