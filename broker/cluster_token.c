/* node_token_ops on broker/jws.c: the cluster secret as an HS256-only key
 * (no public key, so RS/ES tokens are refused), signing and verifying with
 * the rules replication/peer_token.c passes in. Owns the key.
 * SPDX-License-Identifier: MIT */
#include "broker/cluster_token.h"

#include "broker/jws.h"
#include "common/err.h"

#include <string.h>

static int cluster_sign(void *arg, const char *sub, const char *audience, uint64_t iat,
                        uint64_t exp, char **out)
{
    struct jws_grants g = {.sub = sub, .iat = iat, .exp = exp, .audience = audience};
    return jws_sign_hs256(arg, &g, out);
}

static int cluster_verify(void *arg, const struct node_token_rules *r, const char *token,
                          size_t len, uint64_t now_s, struct node_token_claims *out,
                          const char **why)
{
    struct jws_rules rules = {
        .audience = r->audience, .exp_leeway_s = r->exp_leeway_s, .nbf_leeway_s = r->nbf_leeway_s};
    struct jws_claims c;
    int rc = jws_verify(arg, &rules, token, len, now_s, &c, why);
    if (rc != MOM_OK)
        return rc;
    _Static_assert(sizeof out->sub == sizeof c.sub, "node_token_claims.sub as jws_claims.sub");
    memcpy(out->sub, c.sub, sizeof out->sub);
    out->exp = c.exp;
    out->iat = c.iat;
    return MOM_OK;
}

int cluster_token_init(const char *secret, struct node_token_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    if (!secret || !*secret)
        return MOM_ERR_INVALID;
    struct jws_key *key = NULL;
    int rc = jws_key_new(secret, strlen(secret), NULL, 0, &key);
    if (rc != MOM_OK)
        return rc;
    *ops = (struct node_token_ops){.sign = cluster_sign, .verify = cluster_verify, .arg = key};
    return MOM_OK;
}

void cluster_token_free(struct node_token_ops *ops)
{
    jws_key_free(ops->arg);
    memset(ops, 0, sizeof *ops);
}
