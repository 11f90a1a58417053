/* gRPC length-prefixed message framing, deframer, grpc-timeout and status
 * helpers. The deframer keeps only the current message; a message that sits
 * whole inside one input chunk is returned in place, without a copy.
 * SPDX-License-Identifier: MIT */
#include "replication/grpcmsg.h"

#include "common/err.h"
#include "common/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void grpcmsg_pack_prefix(uint8_t out[GRPCMSG_PREFIX_LEN], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int grpcmsg_decode_prefix(const uint8_t *buf, size_t len, bool *compressed, uint32_t *msg_len)
{
    if (len < GRPCMSG_PREFIX_LEN)
        return MOM_ERR_NEED_MORE;
    if (buf[0] > 1)
        return MOM_ERR_INVALID;
    *compressed = buf[0] == 1;
    *msg_len =
        (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | (uint32_t)buf[4];
    return (int)GRPCMSG_PREFIX_LEN;
}

void grpcmsg_reader_init(struct grpcmsg_reader *r, size_t max_len)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len;
}

void grpcmsg_reader_cleanup(struct grpcmsg_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->have = 0;
    r->prefix_have = 0;
}

bool grpcmsg_reader_idle(const struct grpcmsg_reader *r)
{
    return r->prefix_have == 0;
}

int grpcmsg_reader_feed(struct grpcmsg_reader *r, const uint8_t *data, size_t len, size_t *used,
                        struct grpcmsg_view *msg)
{
    size_t off = 0;
    *used = 0;
    if (r->prefix_have < GRPCMSG_PREFIX_LEN) {
        size_t take = GRPCMSG_PREFIX_LEN - r->prefix_have;
        if (take > len)
            take = len;
        memcpy(r->prefix + r->prefix_have, data, take);
        r->prefix_have += take;
        off = take;
        *used = off;
        if (r->prefix_have < GRPCMSG_PREFIX_LEN)
            return 0;
        int rc = grpcmsg_decode_prefix(r->prefix, GRPCMSG_PREFIX_LEN, &r->compressed, &r->msg_len);
        if (rc < 0)
            return rc;
        if (r->msg_len > r->max_len)
            return MOM_ERR_TOO_LARGE;
        r->have = 0;
        /* Whole message in this chunk: hand it out in place. */
        if (len - off >= r->msg_len) {
            msg->data = data + off;
            msg->len = r->msg_len;
            msg->compressed = r->compressed;
            *used = off + r->msg_len;
            r->prefix_have = 0;
            return 1;
        }
    }
    size_t want = r->msg_len - r->have;
    size_t take = len - off < want ? len - off : want;
    if (take > 0 && r->have + take > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->msg_len)
            cap *= 2;
        if (cap > r->msg_len)
            cap = r->msg_len;
        uint8_t *nb = realloc(r->buf, cap);
        if (!nb)
            return MOM_ERR_NOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    if (take > 0)
        memcpy(r->buf + r->have, data + off, take);
    r->have += take;
    *used = off + take;
    if (r->have < r->msg_len)
        return 0;
    msg->data = r->buf;
    msg->len = r->msg_len;
    msg->compressed = r->compressed;
    r->prefix_have = 0;
    r->have = 0;
    return 1;
}

int grpcmsg_timeout_parse(const char *text, size_t len, uint64_t *ms)
{
    if (len < 2 || len > 9)
        return MOM_ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return MOM_ERR_INVALID;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    switch (text[len - 1]) {
    case 'H': *ms = v * 3600000u; break;
    case 'M': *ms = v * 60000u; break;
    case 'S': *ms = v * 1000u; break;
    case 'm': *ms = v; break;
    case 'u': *ms = (v + 999u) / 1000u; break;
    case 'n': *ms = (v + 999999u) / 1000000u; break;
    default: return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

size_t grpcmsg_timeout_format(uint64_t ms, char out[GRPCMSG_TIMEOUT_MAXLEN])
{
    static const struct {
        uint64_t div;
        char unit;
    } units[] = {{1, 'm'}, {1000, 'S'}, {60000, 'M'}, {3600000, 'H'}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t v = ms / units[i].div + (ms % units[i].div != 0); /* never shorten a deadline */
        if (v <= 99999999u || i + 1 == sizeof units / sizeof units[0]) {
            if (v > 99999999u)
                v = 99999999u;
            int n = snprintf(out, GRPCMSG_TIMEOUT_MAXLEN, "%llu%c", (unsigned long long)v,
                             units[i].unit);
            return n > 0 ? (size_t)n : 0;
        }
    }
    return 0;
}

size_t grpcmsg_percent_encode(const char *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (outlen == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                break;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

size_t grpcmsg_percent_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = hex_digit_value(in[i + 1])) >= 0 &&
            (lo = hex_digit_value(in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

enum grpc_status grpcmsg_status_from_err(int err)
{
    switch (err) {
    case MOM_OK: return GRPC_OK;
    case MOM_ERR_NOMEM: return GRPC_RESOURCE_EXHAUSTED;
    case MOM_ERR_TOO_LARGE: return GRPC_RESOURCE_EXHAUSTED;
    case MOM_ERR_NOSPACE: return GRPC_RESOURCE_EXHAUSTED;
    case MOM_ERR_INVALID: return GRPC_INVALID_ARGUMENT;
    case MOM_ERR_NOTFOUND: return GRPC_NOT_FOUND;
    case MOM_ERR_EXISTS: return GRPC_ALREADY_EXISTS;
    case MOM_ERR_NOT_LEADER: return GRPC_FAILED_PRECONDITION;
    case MOM_ERR_TIMEOUT: return GRPC_DEADLINE_EXCEEDED;
    case MOM_ERR_UNAVAILABLE: return GRPC_UNAVAILABLE;
    case MOM_ERR_CLOSED: return GRPC_UNAVAILABLE;
    case MOM_ERR_AUTH: return GRPC_UNAUTHENTICATED;
    case MOM_ERR_FOREIGN: return GRPC_PERMISSION_DENIED;
    case MOM_ERR_CORRUPT: return GRPC_DATA_LOSS;
    case MOM_ERR_PROTOCOL: return GRPC_INTERNAL;
    case MOM_ERR_IO: return GRPC_INTERNAL;
    default: return GRPC_UNKNOWN;
    }
}

enum grpc_status grpcmsg_status_from_http(int http_status)
{
    switch (http_status) {
    case 400: return GRPC_INTERNAL;
    case 401: return GRPC_UNAUTHENTICATED;
    case 403: return GRPC_PERMISSION_DENIED;
    case 404: return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return GRPC_UNAVAILABLE;
    default: return GRPC_UNKNOWN;
    }
}

const char *grpcmsg_status_name(int status)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    return status >= 0 && (size_t)status < sizeof names / sizeof names[0] ? names[status]
                                                                          : "INVALID_STATUS";
}
