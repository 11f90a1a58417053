/* libFuzzer harness for common/base64: whatever either variant accepts
 * must be canonical, that is, OpenSSL's encoding of the decoded bytes
 * (padding dropped and the URL alphabet used for BASE64_URL) gives back
 * the input exactly; and the decoded size never exceeds its bound.
 * SPDX-License-Identifier: MIT */
#include "common/base64.h"
#include "common/err.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(enum base64_variant v, const char *in, size_t len)
{
    size_t cap = base64_decoded_max(len);
    uint8_t *out = malloc(cap ? cap : 1);
    size_t n = 0;
    if (!out)
        return;
    if (base64_decode(v, in, len, out, cap, &n) == MOM_OK) {
        if (n > cap)
            abort();
        unsigned char *text = malloc(4 * (n / 3 + 1) + 1);
        if (!text)
            abort();
        int tl = EVP_EncodeBlock(text, out, (int)n);
        if (v == BASE64_URL) {
            while (tl > 0 && text[tl - 1] == '=')
                tl--;
            for (int i = 0; i < tl; i++)
                text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
        }
        if ((size_t)tl != len || memcmp(text, in, len) != 0)
            abort(); /* accepted a non-canonical spelling */
        free(text);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    check(BASE64_STD, (const char *)data, size);
    check(BASE64_URL, (const char *)data, size);
    return 0;
}
