/* Server-Sent Events encoding (see sse.h): bounded writes into a caller's
 * buffer, sizes computed by the same walk over the data.
 * SPDX-License-Identifier: MIT */
#include "broker/sse.h"

#include <stdbool.h>
#include <string.h>

/* A writer that counts when out is NULL and fails once cap is passed. */
struct sink {
    char *out;
    size_t cap, len;
    bool overflow;
};

static void put(struct sink *k, const char *s, size_t n)
{
    if (k->out) {
        if (k->overflow || n > k->cap - k->len) {
            k->overflow = true;
            return;
        }
        memcpy(k->out + k->len, s, n);
    }
    k->len += n;
}

static void put_u64(struct sink *k, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(k, digits + sizeof digits - n, n);
}

static void write_event(struct sink *k, uint64_t id, const char *event, const char *data,
                        size_t len)
{
    put(k, "id: ", 4);
    put_u64(k, id);
    put(k, "\n", 1);
    if (event && *event) {
        put(k, "event: ", 7);
        put(k, event, strlen(event));
        put(k, "\n", 1);
    }
    size_t i = 0;
    do {
        size_t start = i;
        while (i < len && data[i] != '\n' && data[i] != '\r')
            i++;
        put(k, "data: ", 6);
        put(k, data + start, i - start);
        put(k, "\n", 1);
        if (i < len) { /* a line break: CRLF counts as one */
            if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
                i++;
            i++;
            if (i == len) { /* data ending in a break: one more empty line */
                put(k, "data: \n", 7);
                break;
            }
        }
    } while (i < len);
    put(k, "\n", 1);
}

size_t sse_event_size(uint64_t id, const char *event, const char *data, size_t len)
{
    struct sink k = {0};
    write_event(&k, id, event, data, len);
    return k.len;
}

size_t sse_event(char *out, size_t cap, uint64_t id, const char *event, const char *data,
                 size_t len)
{
    struct sink k = {.out = out, .cap = cap};
    write_event(&k, id, event, data, len);
    return k.overflow ? 0 : k.len;
}

size_t sse_comment(char *out, size_t cap, const char *text)
{
    struct sink k = {.out = out, .cap = cap};
    put(&k, ": ", 2);
    put(&k, text, strlen(text));
    put(&k, "\n\n", 2);
    return k.overflow ? 0 : k.len;
}

size_t sse_retry(char *out, size_t cap, uint64_t ms)
{
    struct sink k = {.out = out, .cap = cap};
    put(&k, "retry: ", 7);
    put_u64(&k, ms);
    put(&k, "\n\n", 2);
    return k.overflow ? 0 : k.len;
}
