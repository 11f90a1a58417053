/* The one hardened JWT (compact JWS) verifier and HS256 signer, shared by
 * client authentication (broker/auth.c) and the peer tokens: replication/
 * reaches it only through the struct node_token_ops that
 * broker/cluster_token.c builds on it and server.c hands to
 * node_open_cluster, so replication/ never includes broker/. libjwt 1.10
 * lacks checks that matter, so they are made here: the key is chosen by the
 * algorithm the header names and that algorithm is pinned to the key (HS256
 * for a secret; RS256 or ES256 by the public key's type), so `alg: none` and
 * HS/RS confusion fail; a header with `crit` fails; the signature is checked
 * with OpenSSL first (HMAC compared in constant time, RS/ES with the key
 * parsed once) and only genuine tokens reach jwt_decode; claims: exp
 * required, exp/nbf with a leeway, iss and aud when the rules name them. A
 * jwt_t and a cJSON never leave jws.c. A key is read-only after jws_key_new,
 * so any thread may verify with it.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_JWS_H
#define MOM_BROKER_JWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JWS_MAX_TOKEN 8192u /* longer tokens are rejected unparsed */
#define JWS_SUB_MAX 128u

struct jws_key;

/* The keys that may verify: an HS256 secret (secret_len bytes; NULL = none)
 * and an RS256 or ES256 public key in PEM (SubjectPublicKeyInfo; NULL =
 * none). Both are copied. Returns MOM_OK, MOM_ERR_INVALID (neither key, an
 * empty secret, a PEM that does not parse, RSA under 2048 bits, EC not on
 * P-256: logged) or MOM_ERR_NOMEM. */
int jws_key_new(const void *secret, size_t secret_len, const char *pem, size_t pem_len,
                struct jws_key **out);
/* Wipes the secret and frees. Accepts NULL. */
void jws_key_free(struct jws_key *k);
/* Whether k holds an HS256 secret (and so can sign). */
bool jws_key_has_secret(const struct jws_key *k);

struct jws_rules {
    const char *issuer;     /* required iss, or NULL */
    const char *audience;   /* required aud (the string, or a list holding it), or NULL */
    const char *role_claim; /* claim checked for role (string or list), or NULL */
    const char *role;
    uint32_t exp_leeway_s; /* accepted until exp + leeway */
    uint32_t nbf_leeway_s; /* accepted from nbf - leeway */
};

struct jws_claims {
    char sub[JWS_SUB_MAX + 1]; /* "" unless a string of 1..JWS_SUB_MAX bytes */
    uint64_t exp;
    uint64_t nbf; /* 0 when absent */
    uint64_t iat; /* 0 when absent or not a NumericDate */
    bool has_role;
};

/* Verifies token (len bytes, not NUL-terminated) at now_s against k and r.
 * Returns MOM_OK with *out filled, MOM_ERR_AUTH with *why set to a static
 * reason (malformed, alg unusable with the keys, bad signature, exp missing
 * or expired, nbf in the future, wrong iss/aud), or MOM_ERR_NOMEM. The
 * caller checks sub. Pure apart from OpenSSL: no logging, no state. */
int jws_verify(const struct jws_key *k, const struct jws_rules *r, const char *token, size_t len,
               uint64_t now_s, struct jws_claims *out, const char **why);

/* The parts of a compact JWS and the algorithm its header names. */
enum jws_alg { JWS_ALG_UNUSABLE = 0, JWS_ALG_HS256, JWS_ALG_RS256, JWS_ALG_ES256 };
struct jws_parts {
    enum jws_alg alg;
    size_t header_len;   /* the header segment starts the token */
    const char *payload; /* the claims segment (base64url), in the token */
    size_t payload_len;
    size_t signed_len; /* header '.' payload: the bytes the signature covers */
    const char *sig;   /* the signature segment, in the token */
    size_t sig_len;
};

/* What happens before any signature check, as a pure function over bytes:
 * splits token (len bytes) into its three non-empty segments and reads the
 * JOSE header: base64url JSON object with a string "alg" of HS256, RS256 or
 * ES256 and no "crit". Returns MOM_OK, or MOM_ERR_AUTH (malformed, or an
 * algorithm we never accept; out->alg is then JWS_ALG_UNUSABLE). */
int jws_parse(const char *token, size_t len, struct jws_parts *out);

/* The claims check jws_verify runs once the signature verified, as a pure
 * function: payload is the base64url claims segment. Returns MOM_OK with out
 * filled, MOM_ERR_AUTH with *why set, or MOM_ERR_NOMEM. */
int jws_check_claims(const struct jws_rules *r, const char *payload, size_t len, uint64_t now_s,
                     struct jws_claims *out, const char **why);

struct jws_grants {
    const char *sub;
    uint64_t iat, exp;
    const char *issuer, *audience; /* NULL = left out */
    const char *role_claim;        /* NULL = left out; else a list holding role, if any */
    const char *role;
};

/* Signs {sub, iat, exp[, iss][, aud][, role_claim]} with k's HS256 secret.
 * *out is malloc'd (caller frees). Returns MOM_OK, MOM_ERR_INVALID (no
 * secret, no sub, times beyond LONG_MAX) or MOM_ERR_NOMEM. */
int jws_sign_hs256(const struct jws_key *k, const struct jws_grants *g, char **out);

#endif
