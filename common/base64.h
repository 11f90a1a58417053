/* The one base64 decoder of mom, strict and canonical (RFC 4648): message
 * bodies sent with "encoding":"base64", password records and JWT segments
 * all decode here. Exactly one spelling decodes to a given byte string: no
 * whitespace, no characters outside the variant's alphabet, padding exactly
 * as the variant wants it ("Q===" is refused), and the unused low bits of
 * the last character zero ("QR==" is refused; "QQ==" is "A").
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_BASE64_H
#define MOM_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

enum base64_variant {
    BASE64_STD, /* "+/" alphabet, padded with '=' to a multiple of 4 */
    BASE64_URL, /* "-_" alphabet, unpadded (JWS, RFC 7515 section 2) */
};

/* Upper bound of the decoded size of len characters. */
static inline size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

/* Decodes the len characters at in into out (cap bytes). Returns MOM_OK
 * with *out_len, MOM_ERR_INVALID (not canonical base64 of the variant) or
 * MOM_ERR_TOO_LARGE (cap too small). Pure. */
int base64_decode(enum base64_variant variant, const char *in, size_t len, uint8_t *out, size_t cap,
                  size_t *out_len);

#endif
