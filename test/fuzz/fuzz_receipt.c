/* libFuzzer harness for broker/receipt's parser and checker: whatever
 * receipt_parse accepts is the canonical spelling (its lease text plus
 * '.' plus the MAC text gives back the input exactly), and whatever
 * receipt_verify accepts under the fixed key is exactly what receipt_make
 * writes for that lease, with "q" as the queue name or the input's first
 * byte as a one-letter queue name.
 * SPDX-License-Identifier: MIT */
#include "broker/receipt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct receipt_key KEY = {{42, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31}};

/* The signer of KEY, made on the first input and kept for the run. */
static struct receipt_signer *signer;

static void check_verify(const char *queue, const char *s, size_t len)
{
    if (!signer && !(signer = receipt_signer_new(&KEY)))
        abort();
    struct receipt_lease l;
    if (!receipt_verify(signer, queue, s, len, &l))
        return;
    char again[RECEIPT_MAX];
    size_t n = receipt_make(signer, queue, &l, again);
    if (n != len || memcmp(again, s, len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct receipt_lease l;
    const char *mac;
    if (receipt_parse(s, size, &l, &mac)) {
        char lease[RECEIPT_LEASE_MAX];
        size_t n = receipt_lease_text(&l, lease);
        if (mac < s || mac + RECEIPT_MAC_CHARS != s + size || n + 1 + RECEIPT_MAC_CHARS != size ||
            memcmp(lease, s, n) != 0 || s[n] != '.')
            abort();
    }
    check_verify("q", s, size);
    if (size > 1) {
        char queue[2] = {s[0] ? s[0] : 'x', 0};
        check_verify(queue, s + 1, size - 1);
    }
    return 0;
}
