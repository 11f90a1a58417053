/* Unit tests for common/hashmap, common/heap, common/strtab and
 * common/grow.h: random operation sequences checked against simple
 * reference models, deletion across wrapped clusters, shrinking, position
 * tracking, id reuse, and growth with its overflow refusal.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/grow.h"
#include "common/hashmap.h"
#include "common/heap.h"
#include "common/strtab.h"

#define NKEYS 2000

static void test_hashmap_model(void **state)
{
    (void)state;
    struct hashmap *m = hashmap_new();
    static char keys[NKEYS][16];
    static int present[NKEYS];
    static int values[NKEYS];
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i * 7919);
        values[i] = i;
    }
    srand(7);
    size_t count = 0;
    for (int round = 0; round < 200000; round++) {
        int i = rand() % NKEYS;
        int op = rand() % 3;
        if (op == 0) {
            assert_int_equal(hashmap_put_str(m, keys[i], &values[i]), MOM_OK);
            if (!present[i])
                count++;
            present[i] = 1;
        } else if (op == 1) {
            void *v = hashmap_remove_str(m, keys[i]);
            assert_ptr_equal(v, present[i] ? &values[i] : NULL);
            if (present[i])
                count--;
            present[i] = 0;
        } else {
            assert_ptr_equal(hashmap_get_str(m, keys[i]), present[i] ? &values[i] : NULL);
        }
        assert_int_equal(hashmap_count(m), count);
    }
    /* Iteration visits each entry once. */
    size_t it = 0, seen = 0;
    const void *k;
    size_t klen;
    void *v;
    while (hashmap_next(m, &it, &k, &klen, &v)) {
        int idx = *(int *)v;
        assert_true(present[idx]);
        assert_int_equal(klen, strlen(keys[idx]));
        assert_memory_equal(k, keys[idx], klen);
        seen++;
    }
    assert_int_equal(seen, count);
    /* Remove all: the table shrinks and still works. */
    for (int i = 0; i < NKEYS; i++)
        hashmap_remove_str(m, keys[i]);
    assert_int_equal(hashmap_count(m), 0);
    assert_null(hashmap_get_str(m, keys[0]));
    assert_int_equal(hashmap_put_str(m, keys[0], &values[0]), MOM_OK);
    assert_ptr_equal(hashmap_get_str(m, keys[0]), &values[0]);
    /* Binary keys (a uint64) and the empty key. */
    uint64_t seq = 42;
    assert_int_equal(hashmap_put(m, &seq, sizeof seq, &values[1]), MOM_OK);
    uint64_t probe = 42;
    assert_ptr_equal(hashmap_get(m, &probe, sizeof probe), &values[1]);
    assert_int_equal(hashmap_put_str(m, "", &values[2]), MOM_OK);
    assert_ptr_equal(hashmap_get_str(m, ""), &values[2]);
    assert_null(hashmap_get(NULL, "x", 1));
    hashmap_free(m);
    hashmap_free(NULL);
}

struct item {
    int key;
    size_t pos;
    int in;
};

static int item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    return (x->key > y->key) - (x->key < y->key);
}

static void item_setpos(void *it, size_t pos)
{
    ((struct item *)it)->pos = pos;
}

static void check_heap(const struct heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const struct item *it = h->items[i];
        assert_int_equal(it->pos, i);
        if (i)
            assert_true(item_cmp(h->items[(i - 1) / 2], it) <= 0);
    }
}

static void test_heap_model(void **state)
{
    (void)state;
    enum { N = 3000 };
    static struct item items[N];
    struct heap h;
    heap_init(&h, item_cmp, item_setpos);
    assert_null(heap_peek(&h));
    assert_null(heap_pop(&h));
    srand(11);
    for (int round = 0; round < 100000; round++) {
        int i = rand() % N;
        int op = rand() % 4;
        struct item *it = &items[i];
        if (op == 0 && !it->in) {
            it->key = rand() % 500;
            assert_int_equal(heap_push(&h, it), MOM_OK);
            it->in = 1;
        } else if (op == 1 && it->in) {
            assert_ptr_equal(heap_remove(&h, it->pos), it);
            it->in = 0;
        } else if (op == 2 && it->in) {
            it->key = rand() % 500;
            heap_update(&h, it->pos);
        } else if (op == 3) {
            struct item *top = heap_pop(&h);
            if (top) {
                for (int k = 0; k < N; k++)
                    if (items[k].in)
                        assert_true(items[k].key >= top->key);
                top->in = 0;
            }
        }
        if (round % 1000 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    int last = -1;
    struct item *it;
    while ((it = heap_pop(&h))) {
        assert_true(it->key >= last);
        last = it->key;
    }
    heap_cleanup(&h);
}

static void test_strtab(void **state)
{
    (void)state;
    struct strtab *t = strtab_new();
    uint32_t a, b, c;
    assert_int_equal(strtab_intern(t, "text/plain", 10, &a), MOM_OK);
    assert_int_equal(strtab_intern(t, "text/plainXX", 10, &b), MOM_OK); /* same 10 bytes */
    assert_int_equal(a, b);
    assert_int_equal(strtab_intern(t, "alice", 5, &c), MOM_OK);
    assert_int_not_equal(a, c);
    assert_int_equal(strtab_count(t), 2);
    size_t len;
    assert_string_equal(strtab_get(t, a, &len), "text/plain");
    assert_int_equal(len, 10);
    strtab_ref(t, c);
    strtab_release(t, a);
    assert_string_equal(strtab_get(t, a, NULL), "text/plain"); /* one reference left */
    strtab_release(t, a);
    assert_int_equal(strtab_count(t), 1);
    /* The freed id is reused for the next new string. */
    uint32_t d;
    assert_int_equal(strtab_intern(t, "bob", 3, &d), MOM_OK);
    assert_int_equal(d, a);
    assert_string_equal(strtab_get(t, d, NULL), "bob");
    strtab_release(t, c);
    assert_string_equal(strtab_get(t, c, NULL), "alice");
    strtab_release(t, c);
    strtab_release(t, d);
    assert_int_equal(strtab_count(t), 0);
    for (int i = 0; i < 1000; i++) {
        char s[16];
        snprintf(s, sizeof s, "s%d", i);
        uint32_t id;
        assert_int_equal(strtab_intern(t, s, strlen(s), &id), MOM_OK);
    }
    assert_int_equal(strtab_count(t), 1000);
    strtab_free(t); /* frees referenced strings too */
    strtab_free(NULL);
}

/* grow_array: doubling from the initial capacity, no change when there is
 * room, and refusal (caller's array untouched) when the size overflows. */
static void test_grow_array(void **state)
{
    (void)state;
    size_t cap = 0;
    uint32_t *a = grow_array(NULL, &cap, 1, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 4);
    for (uint32_t i = 0; i < 4; i++)
        a[i] = i;
    assert_ptr_equal(grow_array(a, &cap, 3, sizeof *a, 4), a);
    assert_int_equal(cap, 4);
    a = grow_array(a, &cap, 9, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 16);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(a[i], i);
    size_t before = cap;
    assert_null(grow_array(a, &cap, SIZE_MAX / 2, sizeof *a, 4));
    assert_int_equal(cap, before);
    a[15] = 15; /* still ours, still 16 elements */
    free(a);
    size_t c2 = 0;
    void *p = grow_array(NULL, &c2, 0, 8, 0); /* need 0 counts as 1 */
    assert_non_null(p);
    assert_int_equal(c2, 1);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashmap_model),
        cmocka_unit_test(test_heap_model),
        cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_grow_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
