/* Peer tokens on top of the injected struct node_token_ops (node.h; in momd
 * the shared hardened verifier, through broker/cluster_token.c): the peer
 * rules (audience "mom-peer", no leeway on exp, 5 s on nbf) and the
 * "node:<id>" subject. Stateless; the ops and their key belong to the
 * caller. A token must also be fresh: its iat within
 * PEER_TOKEN_MAX_AGE_S, so a captured token is useless soon after, whatever
 * exp it carries.
 * SPDX-License-Identifier: MIT */
#include "replication/peer_token.h"

#include "common/err.h"
#include "replication/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBF_LEEWAY_S 5

int peer_token_sign(const struct node_token_ops *ops, uint32_t node_id, uint64_t now_s,
                    uint32_t ttl_s, char *out, size_t outlen)
{
    if (!ops || !ops->sign)
        return MOM_ERR_INVALID;
    char sub[32];
    snprintf(sub, sizeof sub, "node:%u", node_id);
    char *tok = NULL;
    int rc = ops->sign(ops->arg, sub, PEER_AUDIENCE, now_s, now_s + ttl_s, &tok);
    if (rc != MOM_OK)
        return rc;
    size_t len = strlen(tok);
    if (len + 1 > outlen || len > PEER_TOKEN_MAX) {
        rc = MOM_ERR_TOO_LARGE;
    } else {
        memcpy(out, tok, len + 1);
        rc = (int)len;
    }
    free(tok);
    return rc;
}

/* "node:<id>" with id 1..2^31-1 in plain decimal; 0 when it is not. */
static uint32_t node_of_sub(const char *sub)
{
    if (strncmp(sub, "node:", 5) != 0 || sub[5] == '\0')
        return 0;
    uint64_t id = 0;
    for (const char *q = sub + 5; *q; q++) {
        if (*q < '0' || *q > '9' || id > 0x7fffffffu)
            return 0;
        id = id * 10 + (uint64_t)(*q - '0');
    }
    return id > 0x7fffffffu ? 0 : (uint32_t)id;
}

int peer_token_verify(const struct node_token_ops *ops, const char *token, size_t len,
                      uint64_t now_s, struct peer_token_claims *out, const char **why)
{
    static const struct node_token_rules rules = {
        .audience = PEER_AUDIENCE, .exp_leeway_s = 0, .nbf_leeway_s = NBF_LEEWAY_S};
    struct node_token_claims c;
    *why = "malformed token";
    if (!ops || !ops->verify || len >= PEER_TOKEN_MAX)
        return MOM_ERR_AUTH;
    int rc = ops->verify(ops->arg, &rules, token, len, now_s, &c, why);
    if (rc != MOM_OK) {
        if (!*why)
            *why = "malformed token";
        return MOM_ERR_AUTH;
    }
    if (c.iat == 0) {
        *why = "iat missing";
        return MOM_ERR_AUTH;
    }
    if (c.iat > now_s + NBF_LEEWAY_S) {
        *why = "iat in the future";
        return MOM_ERR_AUTH;
    }
    if (now_s - (c.iat < now_s ? c.iat : now_s) > PEER_TOKEN_MAX_AGE_S) {
        *why = "token too old (iat)";
        return MOM_ERR_AUTH;
    }
    uint32_t id = node_of_sub(c.sub);
    if (id == 0) {
        *why = "sub is not node:<id>";
        return MOM_ERR_AUTH;
    }
    out->node_id = id;
    out->exp = c.exp;
    out->iat = c.iat;
    *why = NULL;
    return MOM_OK;
}
