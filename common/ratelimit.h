/* A bounded table of per-key failure budgets (GCRA, the "generic cell rate
 * algorithm" form of a token bucket): each key may fail `burst` times in a
 * row, then once more every `period_ms`. Used for failed logins per
 * username and per client address. Keys are hashed with SipHash under a
 * random key; only the 64-bit hash is stored, so memory is fixed
 * (capacity entries, 4-way sets). When a set is full the entry with the
 * least debt is replaced, so blocked keys are the last to be forgotten.
 * Pure: the caller passes the time. One owner thread, no locks.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_RATELIMIT_H
#define MOM_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* burst >= 1, period_ms >= 1, capacity rounded up to a multiple of 4.
 * Returns MOM_OK, MOM_ERR_INVALID or MOM_ERR_NOMEM (or MOM_ERR_IO when no
 * random key can be had). */
int ratelimit_new(uint32_t burst, uint32_t period_ms, size_t capacity, struct ratelimit **out);
/* Accepts NULL. */
void ratelimit_free(struct ratelimit *rl);
/* 0 when key may try now, else the milliseconds until it may. */
uint64_t ratelimit_wait_ms(const struct ratelimit *rl, const void *key, size_t len,
                           uint64_t now_ms);
/* Whether key has failed recently (any debt left, blocked or not). */
bool ratelimit_suspect(const struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms);
/* Records one failure of key. */
void ratelimit_fail(struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms);
/* Forgets key's failures (a successful login). */
void ratelimit_clear(struct ratelimit *rl, const void *key, size_t len);

#endif
