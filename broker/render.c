/* JSON text building for store answers (see render.h). Base64 is OpenSSL's
 * EVP_EncodeBlock; UTF-8 validation follows RFC 3629's table.
 * SPDX-License-Identifier: MIT */
#include "broker/render.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(struct jbuf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void jbuf_cleanup(struct jbuf *b)
{
    free(b->p);
    jbuf_init(b);
}

/* Makes room for n more bytes plus a NUL; false on failure. */
static bool reserve(struct jbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    char *p = n < SIZE_MAX - b->len ? grow_array(b->p, &b->cap, b->len + n + 1, 1, 256) : NULL;
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    return true;
}

void jbuf_raw(struct jbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jbuf_lit(struct jbuf *b, const char *s)
{
    jbuf_raw(b, s, strlen(s));
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

void jbuf_str(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!reserve(b, n + 2))
        return;
    /* Text that is not UTF-8 (a header byte, a foreign token's subject)
     * must not break the JSON: its bytes >= 0x80 are escaped as Latin-1. */
    bool latin1 = !render_utf8_valid((const uint8_t *)s, n);
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape(c) && !(latin1 && c >= 0x80))
            continue;
        jbuf_raw(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        jbuf_raw(b, esc, elen);
    }
    jbuf_raw(b, s + run, n - run);
    jbuf_raw(b, "\"", 1);
}

void jbuf_cstr(struct jbuf *b, const char *s)
{
    if (s)
        jbuf_str(b, s, strlen(s));
    else
        jbuf_lit(b, "null");
}

void jbuf_u64(struct jbuf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jbuf_raw(b, tmp + i, sizeof tmp - i);
}

void jbuf_hex(struct jbuf *b, uint64_t v, int width)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    while (i > 0 && (int)(sizeof tmp - i) < width)
        tmp[--i] = '0';
    jbuf_raw(b, tmp + i, sizeof tmp - i);
}

void jbuf_time(struct jbuf *b, uint64_t ms)
{
    /* Messages listed together, and consecutive replies, mostly share a
     * second: format the date once per second (gmtime_r and snprintf cost
     * ~3.7k instructions, most of a receive's rendering when the cache was
     * per reply) and only the milliseconds each time. Thread-local, so
     * that rendering stays safe from any thread. */
    static _Thread_local uint64_t cached_sec = UINT64_MAX;
    static _Thread_local char cached_text[20];
    uint64_t sec = ms / 1000u;
    if (cached_sec != sec) {
        char t[25];
        clock_format_rfc3339(sec * 1000u, t);
        memcpy(cached_text, t, 19);
        cached_text[19] = '\0';
        cached_sec = sec;
    }
    unsigned milli = (unsigned)(ms % 1000u);
    char tail[7] = {'.',
                    (char)('0' + milli / 100),
                    (char)('0' + milli / 10 % 10),
                    (char)('0' + milli % 10),
                    'Z',
                    '"',
                    0};
    jbuf_raw(b, "\"", 1);
    jbuf_raw(b, cached_text, 19);
    jbuf_raw(b, tail, 6);
}

bool render_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (len - i <= need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

void jbuf_body(struct jbuf *b, const uint8_t *body, size_t len)
{
    jbuf_lit(b, "\"body\":");
    if (len == 0)
        body = (const uint8_t *)"";
    if (render_utf8_valid(body, len)) {
        jbuf_str(b, (const char *)body, len);
        jbuf_lit(b, ",\"encoding\":\"utf-8\"");
        return;
    }
    /* EVP_EncodeBlock takes an int length: encode in chunks of 3 * 2^20. */
    size_t out_len = 4 * ((len + 2) / 3);
    if (!reserve(b, out_len + 2))
        return;
    b->p[b->len++] = '"';
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done;
        if (chunk > 3u << 20)
            chunk = 3u << 20;
        int n = EVP_EncodeBlock((unsigned char *)b->p + b->len, body + done, (int)chunk);
        b->len += (size_t)n;
        done += chunk;
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
    jbuf_lit(b, ",\"encoding\":\"base64\"");
}

int jbuf_finish(struct jbuf *b, struct reply *r, int status)
{
    if (b->oom) {
        jbuf_cleanup(b);
        return MOM_ERR_NOMEM;
    }
    if (r)
        reply_set(r, status, b->p, b->len);
    else
        free(b->p);
    jbuf_init(b);
    return MOM_OK;
}
