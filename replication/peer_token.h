/* Peer tokens: the HS256 JWTs one node shows another in `authorization:
 * Bearer` (sub "node:<id>", aud "mom-peer", iat, exp; signed with the
 * cluster secret). Issued and verified through the struct node_token_ops
 * the application hands node_open_cluster (node.h): in momd the shared
 * hardened verifier that also checks client tokens. The peer rules are
 * here.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_PEER_TOKEN_H
#define MOM_REPLICATION_PEER_TOKEN_H

#include <stddef.h>
#include <stdint.h>

struct node_token_ops; /* replication/node.h */

#define PEER_TOKEN_TTL_S 60
/* A token whose iat is older than this, or more than 5 s ahead, is refused
 * whatever its exp says (tokens are re-minted every 30 s). */
#define PEER_TOKEN_MAX_AGE_S 90
#define PEER_TOKEN_MAX 1024 /* longest token sent or accepted, bytes */
#define PEER_AUDIENCE "mom-peer"

/* What a verified peer token says. */
struct peer_token_claims {
    uint32_t node_id; /* from sub "node:<id>", 1..2^31-1 */
    uint64_t exp;     /* seconds since the epoch */
    uint64_t iat;     /* seconds since the epoch */
};

/* Writes a NUL-terminated token for node_id, valid from now_s for ttl_s
 * seconds, into out, with ops->sign. Returns its length, MOM_ERR_TOO_LARGE
 * (outlen too small), MOM_ERR_INVALID (no ops) or MOM_ERR_NOMEM. */
int peer_token_sign(const struct node_token_ops *ops, uint32_t node_id, uint64_t now_s,
                    uint32_t ttl_s, char *out, size_t outlen);

/* Verifies token (len bytes) at now_s with ops->verify (NULL ops: refused):
 * HS256 with the cluster secret only,
 * exp required and in the future, nbf (if any) at most 5 s ahead, iat
 * required and within PEER_TOKEN_MAX_AGE_S back to 5 s ahead, aud
 * "mom-peer", sub "node:<id>". Returns MOM_OK with *out filled, or
 * MOM_ERR_AUTH with *why set to a static reason. Membership of the id is
 * the caller's check. */
int peer_token_verify(const struct node_token_ops *ops, const char *token, size_t len,
                      uint64_t now_s, struct peer_token_claims *out, const char **why);

#endif
