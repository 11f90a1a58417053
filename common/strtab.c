/* Interned string table (see strtab.h): an array of entries indexed by id,
 * a hash map from the bytes to the id and a free list of released ids
 * threaded through the refs field of dead entries.
 * SPDX-License-Identifier: MIT */
#include "common/strtab.h"

#include "common/err.h"
#include "common/hashmap.h"

#include <stdlib.h>
#include <string.h>

struct strtab_entry {
    char *s; /* NULL when the id is free */
    uint32_t len;
    uint32_t refs; /* for a free id: the next free id, or UINT32_MAX */
};

struct strtab {
    struct strtab_entry *entries;
    uint32_t len; /* ids handed out so far (live or free) */
    uint32_t cap;
    uint32_t free_head; /* UINT32_MAX when none */
    size_t live;
    struct hashmap *map; /* bytes -> (id + 1) cast to a pointer */
};

struct strtab *strtab_new(void)
{
    struct strtab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->map = hashmap_new();
    if (!t->map) {
        free(t);
        return NULL;
    }
    t->free_head = UINT32_MAX;
    return t;
}

void strtab_free(struct strtab *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->len; i++)
        free(t->entries[i].s);
    free(t->entries);
    hashmap_free(t->map);
    free(t);
}

int strtab_intern(struct strtab *t, const char *s, size_t len, uint32_t *id)
{
    if (len >= UINT32_MAX)
        return MOM_ERR_TOO_LARGE;
    uintptr_t v = (uintptr_t)hashmap_get(t->map, s, len);
    if (v) {
        *id = (uint32_t)(v - 1);
        t->entries[*id].refs++;
        return MOM_OK;
    }
    uint32_t nid;
    if (t->free_head != UINT32_MAX) {
        nid = t->free_head;
    } else {
        if (t->len == UINT32_MAX - 1)
            return MOM_ERR_TOO_LARGE;
        if (t->len == t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 16;
            struct strtab_entry *e = realloc(t->entries, (size_t)cap * sizeof *e);
            if (!e)
                return MOM_ERR_NOMEM;
            t->entries = e;
            t->cap = cap;
        }
        nid = t->len;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return MOM_ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    if (hashmap_put(t->map, copy, len, (void *)((uintptr_t)nid + 1)) != MOM_OK) {
        free(copy);
        return MOM_ERR_NOMEM;
    }
    if (nid == t->free_head)
        t->free_head = t->entries[nid].refs;
    else
        t->len++;
    t->entries[nid].s = copy;
    t->entries[nid].len = (uint32_t)len;
    t->entries[nid].refs = 1;
    t->live++;
    *id = nid;
    return MOM_OK;
}

void strtab_ref(struct strtab *t, uint32_t id)
{
    t->entries[id].refs++;
}

void strtab_release(struct strtab *t, uint32_t id)
{
    struct strtab_entry *e = &t->entries[id];
    if (--e->refs > 0)
        return;
    hashmap_remove(t->map, e->s, e->len);
    free(e->s);
    e->s = NULL;
    e->len = 0;
    e->refs = t->free_head;
    t->free_head = id;
    t->live--;
}

const char *strtab_get(const struct strtab *t, uint32_t id, size_t *len)
{
    if (len)
        *len = t->entries[id].len;
    return t->entries[id].s;
}

size_t strtab_count(const struct strtab *t)
{
    return t->live;
}
