/* SipHash-2-4 (Aumasson and Bernstein): a keyed 64-bit hash for the hash
 * tables whose keys clients choose (names, idempotency keys, users, rate
 * limiter keys). With a secret random key an attacker cannot compute
 * colliding keys offline. A small portable copy instead of OpenSSL 3's
 * EVP_MAC "SIPHASH": that one fetches, allocates and initialises a context
 * per call, far too slow for one hash per table lookup. Checked against the
 * reference test vectors in test/unit/test_siphash.c.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_SIPHASH_H
#define MOM_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16u

/* SipHash-2-4 of the len bytes at data under the 16-byte key. */
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);
/* Fills key with random bytes from the kernel (getrandom); MOM_OK or MOM_ERR_IO. */
int siphash_random_key(uint8_t key[SIPHASH_KEY_LEN]);

#endif
