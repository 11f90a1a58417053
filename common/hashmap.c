/* Open-addressing hash map (see hashmap.h). Slots hold the key pointer, its
 * length, the cached hash and the value; an empty slot has key == NULL.
 * Keys are hashed with SipHash-2-4 under a random key drawn per map, so
 * clients that choose keys (names, idempotency keys, users) cannot compute
 * colliding keys offline and turn lookups into linear scans.
 * Capacity is a power of two kept at most 3/4 full; deletion shifts the
 * following cluster back, so there are no tombstones.
 * SPDX-License-Identifier: MIT */
#include "common/hashmap.h"

#include "common/err.h"
#include "common/siphash.h"

#include <stdint.h>
#include <stdlib.h>

struct slot {
    const void *key;
    uint32_t len;
    uint32_t hash;
    void *value;
};

struct hashmap {
    struct slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
    uint8_t key[SIPHASH_KEY_LEN];
};

#define HASHMAP_MIN_CAP 16u

static uint32_t hash_bytes(const struct hashmap *m, const void *key, size_t len)
{
    return (uint32_t)siphash24(m->key, key, len);
}

struct hashmap *hashmap_new(void)
{
    struct hashmap *m = calloc(1, sizeof(struct hashmap));
    if (m && siphash_random_key(m->key) != MOM_OK) {
        free(m);
        return NULL;
    }
    return m;
}

void hashmap_free(struct hashmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

size_t hashmap_count(const struct hashmap *m)
{
    return m ? m->count : 0;
}

static bool slot_matches(const struct slot *sl, uint32_t hash, const void *key, size_t len)
{
    return sl->hash == hash && sl->len == len && memcmp(sl->key, key, len) == 0;
}

static size_t find_slot(const struct hashmap *m, uint32_t hash, const void *key, size_t len,
                        bool *found)
{
    size_t mask = m->cap - 1;
    size_t i = hash & mask;
    for (;;) {
        const struct slot *sl = &m->slots[i];
        if (!sl->key) {
            *found = false;
            return i;
        }
        if (slot_matches(sl, hash, key, len)) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int resize(struct hashmap *m, size_t cap)
{
    struct slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return MOM_ERR_NOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        struct slot *sl = &m->slots[i];
        if (!sl->key)
            continue;
        size_t j = sl->hash & mask;
        while (slots[j].key)
            j = (j + 1) & mask;
        slots[j] = *sl;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return MOM_OK;
}

void *hashmap_get(const struct hashmap *m, const void *key, size_t len)
{
    if (!m || m->count == 0)
        return NULL;
    bool found;
    size_t i = find_slot(m, hash_bytes(m, key, len), key, len, &found);
    return found ? m->slots[i].value : NULL;
}

int hashmap_put(struct hashmap *m, const void *key, size_t len, void *value)
{
    if (!key || len > UINT32_MAX)
        return MOM_ERR_INVALID;
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = resize(m, m->cap ? m->cap * 2 : HASHMAP_MIN_CAP);
        if (rc != MOM_OK)
            return rc;
    }
    uint32_t hash = hash_bytes(m, key, len);
    bool found;
    size_t i = find_slot(m, hash, key, len, &found);
    struct slot *sl = &m->slots[i];
    if (!found)
        m->count++;
    sl->key = key;
    sl->len = (uint32_t)len;
    sl->hash = hash;
    sl->value = value;
    return MOM_OK;
}

void *hashmap_remove(struct hashmap *m, const void *key, size_t len)
{
    if (!m || m->count == 0)
        return NULL;
    bool found;
    size_t i = find_slot(m, hash_bytes(m, key, len), key, len, &found);
    if (!found)
        return NULL;
    void *value = m->slots[i].value;
    size_t mask = m->cap - 1;
    /* Backward-shift: move later members of the cluster into the hole when
     * their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    size_t j = (i + 1) & mask;
    while (m->slots[j].key) {
        size_t home = m->slots[j].hash & mask;
        bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
        j = (j + 1) & mask;
    }
    m->slots[hole].key = NULL;
    m->slots[hole].value = NULL;
    m->count--;
    if (m->cap > 64 && m->count * 8 < m->cap)
        (void)resize(m, m->cap / 2); /* best effort: a failed shrink keeps the table */
    return value;
}

bool hashmap_next(const struct hashmap *m, size_t *iter, const void **key, size_t *len,
                  void **value)
{
    if (!m)
        return false;
    for (size_t i = *iter; i < m->cap; i++) {
        const struct slot *sl = &m->slots[i];
        if (!sl->key)
            continue;
        if (key)
            *key = sl->key;
        if (len)
            *len = sl->len;
        if (value)
            *value = sl->value;
        *iter = i + 1;
        return true;
    }
    *iter = m->cap;
    return false;
}
