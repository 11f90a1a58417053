/* The cluster membership as configured: MOM_PEERS "1=host:9090,2=..." parsed
 * into members (id, host, port, the address as written). A pure parser over
 * a string, with its own fuzz target (test/fuzz/fuzz_members.c).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_PEER_MEMBERS_H
#define MOM_REPLICATION_PEER_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#define PEER_MAX_MEMBERS 64

struct peer_member {
    uint32_t id;
    char host[256];
    uint16_t port;
    char addr[272]; /* "host:port" as configured */
};

/* Parses a membership list "1=host:9090,2=10.0.0.2:9090,3=[::1]:9090"
 * (ids 1..2^31, unique; spaces around items allowed). Pure. Returns MOM_OK
 * with *n set, or MOM_ERR_INVALID (msg, if not NULL, gets a reason) or
 * MOM_ERR_TOO_LARGE (more than max). */
int peer_parse_members(const char *text, struct peer_member *out, size_t max, size_t *n, char *msg,
                       size_t msglen);

#endif
