/* Binary min-heap with position callbacks (see heap.h).
 * SPDX-License-Identifier: MIT */
#include "common/heap.h"

#include "common/err.h"
#include "common/grow.h"

#include <stdlib.h>

void heap_init(struct heap *h, heap_cmp_fn cmp, heap_setpos_fn setpos)
{
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
    h->cmp = cmp;
    h->setpos = setpos;
}

void heap_cleanup(struct heap *h)
{
    free(h->items);
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
}

static void place(struct heap *h, size_t pos, void *item)
{
    h->items[pos] = item;
    if (h->setpos)
        h->setpos(item, pos);
}

static void sift_up(struct heap *h, size_t pos)
{
    void *item = h->items[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (h->cmp(item, h->items[parent]) >= 0)
            break;
        place(h, pos, h->items[parent]);
        pos = parent;
    }
    place(h, pos, item);
}

static void sift_down(struct heap *h, size_t pos)
{
    void *item = h->items[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->cmp(h->items[child + 1], h->items[child]) < 0)
            child++;
        if (h->cmp(h->items[child], item) >= 0)
            break;
        place(h, pos, h->items[child]);
        pos = child;
    }
    place(h, pos, item);
}

int heap_reserve(struct heap *h, size_t n)
{
    if (n <= h->cap)
        return MOM_OK;
    void **items = grow_array(h->items, &h->cap, n, sizeof *items, 8);
    if (!items)
        return MOM_ERR_NOMEM;
    h->items = items;
    return MOM_OK;
}

int heap_push(struct heap *h, void *item)
{
    int rc = heap_reserve(h, h->len + 1);
    if (rc != MOM_OK)
        return rc;
    h->items[h->len] = item;
    h->len++;
    sift_up(h, h->len - 1);
    return MOM_OK;
}

void *heap_peek(const struct heap *h)
{
    return h->len ? h->items[0] : NULL;
}

void *heap_remove(struct heap *h, size_t pos)
{
    if (pos >= h->len)
        return NULL;
    void *item = h->items[pos];
    h->len--;
    if (pos < h->len) {
        place(h, pos, h->items[h->len]);
        heap_update(h, pos);
    }
    if (h->cap > 64 && h->len * 4 < h->cap) {
        void **items = realloc(h->items, (h->cap / 2) * sizeof *items);
        if (items) { /* a failed shrink keeps the larger array */
            h->items = items;
            h->cap /= 2;
        }
    }
    return item;
}

void *heap_pop(struct heap *h)
{
    return heap_remove(h, 0);
}

void heap_update(struct heap *h, size_t pos)
{
    if (pos >= h->len)
        return;
    if (pos > 0 && h->cmp(h->items[pos], h->items[(pos - 1) / 2]) < 0)
        sift_up(h, pos);
    else
        sift_down(h, pos);
}
