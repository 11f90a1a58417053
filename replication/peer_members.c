/* The membership parser: MOM_PEERS text into struct peer_member, a pure
 * function over the string (no allocation, no I/O). Each item is
 * "<id>=<host>:<port>" or "<id>=[<v6>]:<port>"; the address is also kept as
 * written, for dialling and for the cluster view.
 * SPDX-License-Identifier: MIT */
#include "replication/peer_members.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>

static void set_msg(char *msg, size_t msglen, const char *text, const char *item, size_t n)
{
    if (msg && msglen)
        snprintf(msg, msglen, "%s: '%.*s'", text, (int)(n > 64 ? 64 : n), item);
}

int peer_parse_members(const char *text, struct peer_member *out, size_t max, size_t *n, char *msg,
                       size_t msglen)
{
    *n = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *item = p;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        p = end ? end + 1 : p + len;
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        if (len == 0) {
            if (end)
                continue;
            break;
        }
        if (*n >= max) {
            set_msg(msg, msglen, "too many members", item, len);
            return MOM_ERR_TOO_LARGE;
        }
        const char *eq = memchr(item, '=', len);
        if (!eq || eq == item) {
            set_msg(msg, msglen, "expected id=host:port", item, len);
            return MOM_ERR_INVALID;
        }
        uint64_t id = 0;
        for (const char *q = item; q < eq; q++) {
            if (*q < '0' || *q > '9' || id > 0x7fffffffu) {
                set_msg(msg, msglen, "bad member id", item, len);
                return MOM_ERR_INVALID;
            }
            id = id * 10 + (uint64_t)(*q - '0');
        }
        if (id == 0 || id > 0x7fffffffu) {
            set_msg(msg, msglen, "member id must be 1..2147483647", item, len);
            return MOM_ERR_INVALID;
        }
        const char *addr = eq + 1;
        size_t alen = len - (size_t)(addr - item);
        const char *colon = NULL;
        const char *host = addr;
        size_t hlen;
        if (alen > 0 && addr[0] == '[') {
            const char *rb = memchr(addr, ']', alen);
            if (!rb || rb + 1 >= addr + alen || rb[1] != ':') {
                set_msg(msg, msglen, "bad IPv6 address", item, len);
                return MOM_ERR_INVALID;
            }
            host = addr + 1;
            hlen = (size_t)(rb - host);
            colon = rb + 1;
        } else {
            for (const char *q = addr + alen; q > addr; q--)
                if (q[-1] == ':') {
                    colon = q - 1;
                    break;
                }
            if (!colon) {
                set_msg(msg, msglen, "missing port", item, len);
                return MOM_ERR_INVALID;
            }
            hlen = (size_t)(colon - addr);
        }
        size_t plen = alen - (size_t)(colon + 1 - addr);
        if (hlen == 0 || hlen >= sizeof out->host || plen == 0 || plen > 5 ||
            alen >= sizeof out->addr) {
            set_msg(msg, msglen, "bad host:port", item, len);
            return MOM_ERR_INVALID;
        }
        uint32_t port = 0;
        for (size_t i = 0; i < plen; i++) {
            char ch = colon[1 + i];
            if (ch < '0' || ch > '9') {
                set_msg(msg, msglen, "bad port", item, len);
                return MOM_ERR_INVALID;
            }
            port = port * 10 + (uint32_t)(ch - '0');
        }
        if (port > 65535) {
            set_msg(msg, msglen, "bad port", item, len);
            return MOM_ERR_INVALID;
        }
        for (size_t k = 0; k < *n; k++)
            if (out[k].id == id) {
                set_msg(msg, msglen, "duplicate member id", item, len);
                return MOM_ERR_INVALID;
            }
        struct peer_member *m = &out[(*n)++];
        memset(m, 0, sizeof *m);
        m->id = (uint32_t)id;
        memcpy(m->host, host, hlen);
        m->port = (uint16_t)port;
        memcpy(m->addr, addr, alen);
    }
    return MOM_OK;
}
