/* Growing an array by doubling, with the overflow checks in one place: the
 * helper every "if full, realloc twice the size" in the tree uses. Header
 * only, so the fuzz harnesses need no extra source.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_GROW_H
#define MOM_COMMON_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Returns p (an array of *cap elements of elem bytes, NULL when *cap is 0)
 * with room for at least need elements: unchanged when it has it, else
 * reallocated to initial * 2^k elements (need exactly, when doubling would
 * overflow) and *cap updated. Returns NULL when need * elem overflows or
 * realloc fails; then p and *cap are untouched and p still belongs to the
 * caller. need 0 counts as 1, so NULL always means failure. */
static inline void *grow_array(void *p, size_t *cap, size_t need, size_t elem, size_t initial)
{
    if (need == 0)
        need = 1;
    if (need <= *cap && p)
        return p;
    if (elem == 0 || need > SIZE_MAX / elem)
        return NULL;
    size_t ncap = *cap ? *cap : (initial ? initial : 1);
    while (ncap < need && ncap <= SIZE_MAX / 2)
        ncap *= 2;
    if (ncap < need || ncap > SIZE_MAX / elem)
        ncap = need;
    void *np = realloc(p, ncap * elem);
    if (!np)
        return NULL;
    *cap = ncap;
    return np;
}

#endif
