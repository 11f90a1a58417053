/* Client authentication: JWT verification (HS256 secret, RS256/ES256 public
 * key) with the checks libjwt 1.10 does not do (docs/architecture.md, "JWTs":
 * algorithm pinned per key, exp required, exp/nbf with 30 s leeway, iss/aud
 * when configured),
 * a cache of verified tokens keyed by SHA-256 of the token and a memo per
 * connection of its last token, token issuing for
 * POST /v1/auth/token, and salted slow password hashes (PBKDF2-HMAC-SHA256).
 * A jwt_t never leaves auth.c.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_AUTH_H
#define MOM_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth;

struct auth_config {
    const char *hs256_secret; /* HS256 key bytes (NUL-terminated); may be NULL */
    size_t hs256_secret_len;
    const char *public_key_pem; /* RS256 or ES256 public key PEM text; may be NULL */
    size_t public_key_pem_len;
    const char *issuer;      /* required iss when non-NULL */
    const char *audience;    /* required aud (string or list) when non-NULL */
    const char *admin_claim; /* claim naming roles, default "roles" */
    const char *admin_users; /* comma list of usernames that are admins, may be NULL */
    uint64_t token_ttl_s;    /* expires_in of issued tokens, default 3600 */
};

struct auth_identity {
    char user[129];
    bool admin;
    uint64_t exp; /* seconds since the epoch */
};

/* Copies what it needs from cfg. At least one key must be set
 * (else MOM_ERR_INVALID). A public key that does not parse is MOM_ERR_INVALID. */
int auth_new(const struct auth_config *cfg, struct auth **out);
void auth_free(struct auth *a);

/* Verifies a compact JWT at time now_s (seconds). Returns MOM_OK with *id
 * filled, or MOM_ERR_AUTH (bad signature, alg none/confused, expired, nbf in
 * the future, missing exp, wrong iss/aud, malformed, sub missing or not a
 * valid name). Verified tokens are cached (bounded), exp still checked. */
int auth_verify(struct auth *a, const char *token, size_t token_len, uint64_t now_s,
                struct auth_identity *id);

/* The last token one client connection presented and what it verified
 * to: a request repeating those bytes skips the digest and the cache (a
 * SHA-256 of the token per request) and re-checks only exp and nbf. The
 * connection owns it: zero-initialised, released with auth_memo_cleanup. */
struct auth_memo {
    char *token; /* a copy, len bytes; NULL until a token verified */
    size_t len;
    uint64_t nbf; /* 0 when the token had none */
    struct auth_identity id;
};

/* auth_verify through m (which may be NULL): the same answers for the same
 * token and time; a token that verifies replaces the memo's. */
int auth_verify_memo(struct auth *a, struct auth_memo *m, const char *token, size_t token_len,
                     uint64_t now_s, struct auth_identity *id);
void auth_memo_cleanup(struct auth_memo *m);

/* Issues an HS256 token for user (sub, iat, exp = now + ttl, roles ["admin"]
 * when admin or listed in admin_users, iss/aud when configured). *token is
 * malloc'd. Returns MOM_OK, MOM_ERR_INVALID (no HS256 secret) or MOM_ERR_NOMEM. */
int auth_issue(struct auth *a, const char *user, bool admin, uint64_t now_s, char **token,
               uint64_t *expires_in);
/* Whether user is named in admin_users. */
bool auth_is_admin_user(const struct auth *a, const char *user);

/* Salted slow hash "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>" into
 * out (NUL-terminated, out_len >= 160). Returns MOM_OK or MOM_ERR_IO. */
int auth_password_hash(const char *password, size_t password_len, char *out, size_t out_len);
/* Constant-time check of password against a stored hash. */
bool auth_password_verify(const char *password, size_t password_len, const char *stored);

#endif
