/* Binary min-heap of pointers with position tracking: each item learns its
 * index through a setpos callback, so it can be removed or re-keyed in
 * O(log n). The heap owns only its array, never the items. For a
 * deterministic pop order give cmp a total order (break ties on a unique key).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_HEAP_H
#define MOM_COMMON_HEAP_H

#include <stddef.h>

/* Negative when a sorts before b, 0 when equal, positive otherwise. */
typedef int (*heap_cmp_fn)(const void *a, const void *b);
/* Tells item its current index in the heap array. */
typedef void (*heap_setpos_fn)(void *item, size_t pos);

struct heap {
    void **items;
    size_t len;
    size_t cap;
    heap_cmp_fn cmp;
    heap_setpos_fn setpos;
};

void heap_init(struct heap *h, heap_cmp_fn cmp, heap_setpos_fn setpos);
/* Frees the array (not the items). */
void heap_cleanup(struct heap *h);
/* Returns MOM_OK or MOM_ERR_NOMEM (heap unchanged). */
int heap_push(struct heap *h, void *item);
/* The smallest item, or NULL when empty. */
void *heap_peek(const struct heap *h);
/* Removes and returns the smallest item, or NULL when empty. */
void *heap_pop(struct heap *h);
/* Removes the item at pos (as last reported by setpos) and returns it. */
void *heap_remove(struct heap *h, size_t pos);
/* Restores order after the key of the item at pos changed. */
void heap_update(struct heap *h, size_t pos);
/* Reserves room for n items in total. Returns MOM_OK or MOM_ERR_NOMEM. */
int heap_reserve(struct heap *h, size_t n);

#endif
