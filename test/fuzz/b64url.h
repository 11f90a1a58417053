/* base64url without padding (RFC 4648 §5), for the fuzz harnesses that
 * build JWTs from their input (fuzz_jws, fuzz_peer_token). out needs
 * 4 * ceil(len / 3) bytes. Test code only: the broker decodes with
 * common/base64.c and signs through broker/jws.c.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_TEST_FUZZ_B64URL_H
#define MOM_TEST_FUZZ_B64URL_H

#include <stddef.h>
#include <stdint.h>

static inline size_t b64url(const uint8_t *in, size_t len, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = al[(v >> 18) & 63];
        out[o++] = al[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = al[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = al[v & 63];
    }
    return o;
}

#endif
