/* The one hash map of mom: byte-string keys to void * values, open
 * addressing with linear probing and backward-shift deletion. The map owns
 * neither keys nor values: a key pointer must stay valid (and unchanged)
 * while its entry is stored, so callers point it into the value itself
 * (a queue's name, a message's seq). Each map hashes with SipHash under its
 * own random key, so iteration order differs between maps, processes and
 * nodes: code that must be deterministic sorts what it iterates.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_HASHMAP_H
#define MOM_COMMON_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct hashmap;

/* NULL on allocation failure (or when the kernel gives no random key). */
struct hashmap *hashmap_new(void);
/* Frees the table only (not keys or values). Accepts NULL. */
void hashmap_free(struct hashmap *m);
size_t hashmap_count(const struct hashmap *m);

/* The value stored under key, or NULL. Accepts a NULL map. */
void *hashmap_get(const struct hashmap *m, const void *key, size_t len);
/* Stores value under key, replacing (value and key pointer) an existing
 * entry. Returns MOM_OK or MOM_ERR_NOMEM (map unchanged). */
int hashmap_put(struct hashmap *m, const void *key, size_t len, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *hashmap_remove(struct hashmap *m, const void *key, size_t len);

/* Iterates: start with *iter = 0; returns false at the end. The map must
 * not change during an iteration. Any out pointer may be NULL. */
bool hashmap_next(const struct hashmap *m, size_t *iter, const void **key, size_t *len,
                  void **value);

static inline void *hashmap_get_str(const struct hashmap *m, const char *key)
{
    return hashmap_get(m, key, strlen(key));
}

static inline int hashmap_put_str(struct hashmap *m, const char *key, void *value)
{
    return hashmap_put(m, key, strlen(key), value);
}

static inline void *hashmap_remove_str(struct hashmap *m, const char *key)
{
    return hashmap_remove(m, key, strlen(key));
}

#endif
