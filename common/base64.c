/* Strict canonical base64 decoding (see base64.h): a 256-entry table per
 * variant maps characters to 6-bit values (0xff: not in the alphabet);
 * whole quanta decode to 3 bytes, a final quantum of 2 or 3 characters to
 * 1 or 2 bytes with its unused bits checked to be zero.
 * SPDX-License-Identifier: MIT */
#include "common/base64.h"

#include "common/err.h"

#include <stdbool.h>

static uint8_t value_of(enum base64_variant variant, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    if (c == (variant == BASE64_URL ? '-' : '+'))
        return 62;
    if (c == (variant == BASE64_URL ? '_' : '/'))
        return 63;
    return 0xff;
}

int base64_decode(enum base64_variant variant, const char *in, size_t len, uint8_t *out, size_t cap,
                  size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t chars = len; /* without padding */
    if (variant == BASE64_STD) {
        if (len % 4 != 0)
            return MOM_ERR_INVALID;
        if (len >= 1 && p[len - 1] == '=')
            chars--;
        if (len >= 2 && p[len - 2] == '=') {
            if (chars != len - 1)
                return MOM_ERR_INVALID; /* "x=y" cannot happen past this */
            chars--;
        }
    }
    size_t tail = chars % 4;
    if (tail == 1)
        return MOM_ERR_INVALID;
    size_t need = chars / 4 * 3 + (tail ? tail - 1 : 0);
    if (need > cap)
        return MOM_ERR_TOO_LARGE;
    size_t o = 0, i = 0;
    for (; i + 4 <= chars; i += 4) {
        uint8_t a = value_of(variant, p[i]), b = value_of(variant, p[i + 1]);
        uint8_t c = value_of(variant, p[i + 2]), d = value_of(variant, p[i + 3]);
        if ((a | b | c | d) & 0xc0)
            return MOM_ERR_INVALID;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)((b & 0x0f) << 4 | c >> 2);
        out[o++] = (uint8_t)((c & 0x03) << 6 | d);
    }
    if (tail) {
        uint8_t a = value_of(variant, p[i]), b = value_of(variant, p[i + 1]);
        uint8_t c = tail == 3 ? value_of(variant, p[i + 2]) : 0;
        if ((a | b | c) & 0xc0)
            return MOM_ERR_INVALID;
        if (tail == 2 && (b & 0x0f))
            return MOM_ERR_INVALID; /* non-zero unused bits */
        if (tail == 3 && (c & 0x03))
            return MOM_ERR_INVALID;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        if (tail == 3)
            out[o++] = (uint8_t)((b & 0x0f) << 4 | c >> 2);
    }
    *out_len = o;
    return MOM_OK;
}
