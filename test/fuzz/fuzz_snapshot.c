/* libFuzzer harness for the store's snapshot reader
 * (broker/store_snapshot.c) over bytes, through fmemopen. Byte 0 is a flag
 * set: 1 = recompute the trailing CRC32C before reading, so the fuzzer
 * reaches the paths where a structurally valid snapshot is accepted. The
 * rest is the snapshot. Properties checked: a refused snapshot leaves the
 * store empty (it writes the same bytes as a new store); an accepted one
 * writes a snapshot that reads back and writes the same bytes again (the
 * written form is canonical).
 * SPDX-License-Identifier: MIT */
#include "broker/store.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/le.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The snapshot of s, malloc'd. */
static char *write_all(const struct store *s, size_t *len)
{
    char *p = NULL;
    FILE *f = open_memstream(&p, len);
    if (!f)
        abort();
    if (store_snapshot_write(s, f) != MOM_OK)
        abort();
    if (fclose(f) != 0)
        abort();
    return p;
}

static int read_bytes(struct store *s, const void *p, size_t n)
{
    FILE *f = fmemopen((void *)(uintptr_t)p, n, "rb");
    if (!f)
        abort();
    int rc = store_snapshot_read(s, f);
    fclose(f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int flags = data[0];
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    memcpy(buf, data + 1, n);
    if ((flags & 1) && n >= 4)
        le_put32(buf + n - 4, crc32c(buf, n - 4));

    struct store *s = store_new();
    if (!s)
        abort();
    int rc = read_bytes(s, buf, n);
    size_t len1 = 0;
    char *out1 = write_all(s, &len1);
    if (rc != MOM_OK) {
        if (rc != MOM_ERR_CORRUPT && rc != MOM_ERR_NOMEM && rc != MOM_ERR_IO)
            abort();
        struct store *fresh = store_new();
        size_t len0 = 0;
        char *out0 = write_all(fresh, &len0);
        if (len0 != len1 || memcmp(out0, out1, len0) != 0)
            abort(); /* a refused snapshot left state behind */
        free(out0);
        store_free(fresh);
    } else {
        struct store *again = store_new();
        if (read_bytes(again, out1, len1) != MOM_OK)
            abort(); /* what we write, we must read */
        size_t len2 = 0;
        char *out2 = write_all(again, &len2);
        if (len2 != len1 || memcmp(out1, out2, len1) != 0)
            abort();
        free(out2);
        store_free(again);
    }
    free(out1);
    store_free(s);
    free(buf);
    return 0;
}
