/* Access-log lines (see access_log.h): the redaction of secret query
 * values and the record handed to the structured logger.
 * SPDX-License-Identifier: MIT */
#include "broker/access_log.h"

#include "common/hex.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Query keys whose values are credentials. */
static const char *const secret_keys[] = {
    "access_token", "token",  "id_token",      "refresh_token", "password",  "passwd",
    "secret",       "apikey", "api_key",       "key",           "signature", "sig",
    "jwt",          "auth",   "authorization", "client_secret", "code",
};

int access_log_secret_key(const char *key, size_t len)
{
    char decoded[64];
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c == '%' && i + 2 < len && hex_digit_value(key[i + 1]) >= 0 &&
            hex_digit_value(key[i + 2]) >= 0) {
            c = (char)(hex_digit_value(key[i + 1]) * 16 + hex_digit_value(key[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o == sizeof decoded - 1)
            return 1; /* a key this long is no name we know: keep its value out */
        decoded[o++] = c;
    }
    decoded[o] = '\0';
    for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++)
        if (!strcasecmp(decoded, secret_keys[k]))
            return 1;
    return 0;
}

static void append(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    if (*o + 1 >= outlen)
        return;
    size_t room = outlen - 1 - *o;
    if (n > room)
        n = room;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

void access_log_target(const char *path, const char *query, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t o = 0;
    out[0] = '\0';
    append(out, outlen, &o, path, strlen(path));
    if (!query || !query[0])
        return;
    append(out, outlen, &o, "?", 1);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (eq && access_log_secret_key(p, klen)) {
            append(out, outlen, &o, p, klen + 1);
            append(out, outlen, &o, "REDACTED", 8);
        } else {
            append(out, outlen, &o, p, plen);
        }
        if (!amp)
            break;
        append(out, outlen, &o, "&", 1);
        p = amp + 1;
    }
}

void access_log_write(const struct access_record *r)
{
    char target[1024];
    access_log_target(r->path, r->query, target, sizeof target);
    const struct log_field fields[] = {
        {"node", r->node, 0},
        {"method", r->method, 0},
        {"path", target, 0},
        {"status", NULL, (uint64_t)(r->status < 0 ? 0 : r->status)},
        {"duration_us", NULL, r->micros},
        {"bytes", NULL, r->bytes},
        {"user", r->user[0] ? r->user : "-", 0},
    };
    log_fields(MOM_LOG_INFO, "access", fields, sizeof fields / sizeof fields[0]);
}
