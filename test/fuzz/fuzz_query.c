/* libFuzzer harness for the query-string and integer parsers
 * (broker/http_parse: http_query_get, http_parse_uint). The input is
 * "<key>\0<query>" (without a NUL, the first byte picks a known key).
 * http_query_get is checked against a plain reference (first '&'-separated
 * item whose name is the key; '+' is a space; %XX with two hex digits is
 * decoded except %00, anything else copied) at several output sizes, and
 * http_parse_uint on the value against a reference over the digits with
 * exact overflow, clamped and bounded.
 * SPDX-License-Identifier: MIT */
#include "broker/http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The reference: the full decoded value (no size limit) and whether found. */
static bool ref_get(const char *q, const char *key, char *out, size_t *outlen)
{
    size_t klen = strlen(key);
    const char *p = q;
    while (*p) { /* an empty query, or the end after a last '&', has no item */
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        if (nlen == klen && !memcmp(p, key, klen)) {
            const char *v = eq ? eq + 1 : p + len, *end = p + len;
            size_t o = 0;
            while (v < end) {
                char c = *v++;
                if (c == '+')
                    c = ' ';
                else if (c == '%' && end - v >= 2 && hexv(v[0]) >= 0 && hexv(v[1]) >= 0 &&
                         (v[0] != '0' || v[1] != '0')) {
                    c = (char)(hexv(v[0]) * 16 + hexv(v[1]));
                    v += 2;
                }
                out[o++] = c;
            }
            *outlen = o;
            return true;
        }
        if (!amp)
            return false;
        p = amp + 1;
    }
    return false;
}

static void check_uint(const char *text, size_t len, uint64_t max, bool clamp)
{
    struct parse_error err;
    uint64_t got = 0;
    int rc = http_parse_uint(text, max, clamp, "value", &got, &err);
    bool digits = len > 0;
    bool overflow = false;
    uint64_t v = 0;
    for (size_t i = 0; i < len && digits; i++) {
        if (text[i] < '0' || text[i] > '9') {
            digits = false;
            break;
        }
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else if (!overflow)
            v = v * 10 + d;
    }
    if (!digits) {
        if (rc != -1 || api_error_status(err.kind) != 400)
            abort();
        return;
    }
    if (overflow || v > max) {
        if (clamp ? (rc != 0 || got != max) : rc != -1)
            abort();
        return;
    }
    if (rc != 0 || got != v)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"max", "wait_ms", "from",    "ack", "visibility_timeout_ms",
                                       "a",   "",        "prefetch"};
    if (size < 1 || size > 8192)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *key, *query;
    const char *nul = memchr(data, '\0', size);
    if (nul) {
        key = buf;
        query = buf + (nul - (const char *)data) + 1;
    } else {
        key = keys[data[0] % (sizeof keys / sizeof keys[0])];
        query = buf + 1;
    }
    size_t qlen = strlen(query);

    char *want = malloc(qlen + 1);
    size_t want_len = 0;
    bool found = ref_get(query, key, want, &want_len);
    static const size_t sizes[] = {1, 2, 5, 16, 64, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t cap = sizes[i] < qlen + 1 ? sizes[i] : qlen + 1;
        char *out = malloc(cap);
        memset(out, 'x', cap);
        if (http_query_get(query, key, out, cap) != found)
            abort();
        if (found) {
            size_t n = strnlen(out, cap);
            size_t expect = want_len < cap - 1 ? want_len : cap - 1;
            if (n != expect && memchr(want, '\0', expect) == NULL)
                abort();
            if (memcmp(out, want, n) != 0)
                abort();
        }
        free(out);
    }
    if (http_query_get(NULL, key, want, 1))
        abort();

    uint64_t max = 0;
    for (size_t i = 0; i < 8 && i < size; i++)
        max = max << 8 | data[size - 1 - i];
    check_uint(query, qlen, max, data[0] & 1);
    check_uint(query, qlen, UINT64_MAX, false);
    check_uint(query, qlen, 100, true);
    free(want);
    free(buf);
    return 0;
}
