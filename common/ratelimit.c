/* Failure budgets per key (see ratelimit.h). Each entry holds the key's
 * hash and its "theoretical arrival time" tat: every failure moves tat to
 * max(tat, now) + period. A key is blocked while tat - now > (burst - 1) *
 * period, and may try again after that excess has passed; an entry with
 * tat <= now carries no debt and is free for reuse.
 * SPDX-License-Identifier: MIT */
#include "common/ratelimit.h"

#include "common/err.h"
#include "common/siphash.h"

#include <stdlib.h>

#define WAYS 4u

struct entry {
    uint64_t hash; /* 0: empty */
    uint64_t tat;  /* ms; no debt when <= now */
};

struct ratelimit {
    uint64_t period;
    uint64_t allowance; /* (burst - 1) * period */
    size_t nsets;
    struct entry *entries; /* nsets * WAYS */
    uint8_t key[SIPHASH_KEY_LEN];
};

int ratelimit_new(uint32_t burst, uint32_t period_ms, size_t capacity, struct ratelimit **out)
{
    *out = NULL;
    if (burst < 1 || period_ms < 1 || capacity < 1 || capacity > (1u << 24))
        return MOM_ERR_INVALID;
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return MOM_ERR_NOMEM;
    rl->period = period_ms;
    rl->allowance = (uint64_t)(burst - 1) * period_ms;
    rl->nsets = (capacity + WAYS - 1) / WAYS;
    rl->entries = calloc(rl->nsets * WAYS, sizeof *rl->entries);
    if (!rl->entries) {
        free(rl);
        return MOM_ERR_NOMEM;
    }
    if (siphash_random_key(rl->key) != MOM_OK) {
        ratelimit_free(rl);
        return MOM_ERR_IO;
    }
    *out = rl;
    return MOM_OK;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->entries);
    free(rl);
}

static uint64_t key_hash(const struct ratelimit *rl, const void *key, size_t len)
{
    uint64_t h = siphash24(rl->key, key, len);
    return h ? h : 1;
}

static struct entry *set_of(const struct ratelimit *rl, uint64_t h)
{
    return &rl->entries[(size_t)((h >> 32) % rl->nsets) * WAYS];
}

static struct entry *lookup(const struct ratelimit *rl, uint64_t h)
{
    struct entry *set = set_of(rl, h);
    for (size_t w = 0; w < WAYS; w++)
        if (set[w].hash == h)
            return &set[w];
    return NULL;
}

uint64_t ratelimit_wait_ms(const struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms)
{
    const struct entry *e = lookup(rl, key_hash(rl, key, len));
    if (!e || e->tat <= now_ms + rl->allowance)
        return 0;
    return e->tat - now_ms - rl->allowance;
}

bool ratelimit_suspect(const struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms)
{
    const struct entry *e = lookup(rl, key_hash(rl, key, len));
    return e && e->tat > now_ms;
}

void ratelimit_fail(struct ratelimit *rl, const void *key, size_t len, uint64_t now_ms)
{
    uint64_t h = key_hash(rl, key, len);
    struct entry *e = lookup(rl, h);
    if (!e) {
        /* A free way (empty or without debt), else the one with least debt. */
        struct entry *set = set_of(rl, h);
        e = &set[0];
        for (size_t w = 0; w < WAYS; w++) {
            if (set[w].hash == 0 || set[w].tat <= now_ms) {
                e = &set[w];
                break;
            }
            if (set[w].tat < e->tat)
                e = &set[w];
        }
        e->hash = h;
        e->tat = now_ms;
    }
    e->tat = (e->tat > now_ms ? e->tat : now_ms) + rl->period;
}

void ratelimit_clear(struct ratelimit *rl, const void *key, size_t len)
{
    struct entry *e = lookup(rl, key_hash(rl, key, len));
    if (e) {
        e->hash = 0;
        e->tat = 0;
    }
}
