/* Client authentication on top of the shared verifier broker/jws.c (which
 * pins the algorithm to the key, checks signatures in constant time before
 * libjwt sees them, requires exp and checks exp/nbf with a leeway and iss/aud
 * when configured): here the client rules (30 s leeway, sub a valid name,
 * the admin role claim or admin_users), a 2-way set-associative cache of
 * verified tokens keyed by the full SHA-256 of the token bytes (a hit
 * re-checks exp/nbf only), a per-connection memo of the last token (the same
 * bytes again skip even the digest), HS256 token issuing and salted
 * PBKDF2-HMAC-SHA256 password hashes. A struct auth belongs to the loop thread (the cache and
 * the digest context are mutated without locks).
 * SPDX-License-Identifier: MIT */
#include "broker/auth.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/jws.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"

#define AUTH_LEEWAY_S 30u
#define AUTH_NAME_MAX 128u
#define AUTH_DEFAULT_TTL_S 3600u

/* Cache: 2048 sets x 2 ways = 4096 entries (~770 KiB), indexed by the first
 * digest bytes. An entry holds the whole 32-byte digest, so a hit is the same
 * token byte for byte. */
#define AUTH_CACHE_SETS 2048u
#define AUTH_CACHE_WAYS 2u
#define AUTH_DIGEST_LEN 32u

/* PBKDF2-HMAC-SHA256 work factor. Measured on the build machine (Xeon with
 * SHA-NI, OpenSSL 3.0): ~0.31 us per iteration, so 25000 iterations take
 * ~7-8 ms. Hashing runs on the loop thread (register / token requests), so
 * this is bounded on purpose: slow enough to make offline guessing costly,
 * short enough not to stall other clients. verify takes the count from the
 * stored string and refuses counts outside [MIN, MAX] so a damaged record
 * cannot stall the loop. */
#define AUTH_PBKDF2_ITER 25000u
#define AUTH_PBKDF2_MIN_ITER 1000u
#define AUTH_PBKDF2_MAX_ITER 250000u
#define AUTH_SALT_LEN 16u
#define AUTH_HASH_LEN 32u
#define AUTH_PW_PREFIX "pbkdf2-sha256$"

struct auth_cache_entry {
    unsigned char digest[AUTH_DIGEST_LEN];
    uint64_t nbf; /* 0 when the token had none */
    struct auth_identity id;
    bool used;
};

struct auth {
    struct jws_key *key;    /* the HS256 secret and/or the public key */
    struct jws_rules rules; /* issuer, audience, admin claim, leeway */
    char *issuer;
    char *audience;
    char *admin_claim;
    char **admin_users;
    size_t n_admin_users;
    uint64_t ttl_s;
    EVP_MD *sha256;                 /* fetched once: implicit fetches cost ~0.3 us */
    EVP_MD_CTX *md_ctx;             /* reused for the cache key */
    struct auth_cache_entry *cache; /* AUTH_CACHE_SETS * AUTH_CACHE_WAYS */
    uint8_t *victim;                /* per set: way to replace next */
};

/* ---- small helpers ---- */

static bool name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= AUTH_NAME_MAX)
            return false;
    }
    return n >= 1;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Standard padded base64 (password records), canonical only so that one
 * record has one spelling. Returns the decoded length or -1. */
static int b64_decode_std(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t n;
    if (base64_decode(BASE64_STD, in, len, out, cap, &n) != MOM_OK || n == 0 || n > INT_MAX)
        return -1;
    return (int)n;
}

/* ---- lifecycle ---- */

/* Parses admin_users "a, b ,c" into trimmed names; empty items are skipped. */
static int parse_admin_users(struct auth *a, const char *list)
{
    if (!list)
        return MOM_OK;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        if (*p == ',')
            cap++;
    a->admin_users = calloc(cap, sizeof *a->admin_users);
    if (!a->admin_users)
        return MOM_ERR_NOMEM;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            char *name = strndup(b, (size_t)(e - b));
            if (!name)
                return MOM_ERR_NOMEM;
            a->admin_users[a->n_admin_users++] = name;
        }
        p = *end ? end + 1 : end;
    }
    return MOM_OK;
}

int auth_new(const struct auth_config *cfg, struct auth **out)
{
    *out = NULL;
    if (!cfg)
        return MOM_ERR_INVALID;
    bool has_secret = cfg->hs256_secret != NULL;
    bool has_pem = cfg->public_key_pem != NULL;
    if (!has_secret && !has_pem) {
        log_error("auth: neither an HS256 secret nor a public key is configured");
        return MOM_ERR_INVALID;
    }
    size_t secret_len = 0;
    if (has_secret) {
        secret_len = cfg->hs256_secret_len ? cfg->hs256_secret_len : strlen(cfg->hs256_secret);
        if (secret_len == 0 || secret_len > INT_MAX) {
            log_error("auth: HS256 secret is empty");
            return MOM_ERR_INVALID;
        }
        if (secret_len < 32)
            log_warn("auth: HS256 secret is only %zu bytes; use at least 32", secret_len);
    }
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return MOM_ERR_NOMEM;
    size_t pem_len = 0;
    if (has_pem)
        pem_len = cfg->public_key_pem_len ? cfg->public_key_pem_len : strlen(cfg->public_key_pem);
    int rc = jws_key_new(cfg->hs256_secret, secret_len, cfg->public_key_pem, pem_len, &a->key);
    if (rc != MOM_OK)
        goto fail;
    rc = MOM_ERR_NOMEM;
    a->issuer = dup_or_null(cfg->issuer);
    a->audience = dup_or_null(cfg->audience);
    a->admin_claim = strdup(cfg->admin_claim && *cfg->admin_claim ? cfg->admin_claim : "roles");
    if ((cfg->issuer && !a->issuer) || (cfg->audience && !a->audience) || !a->admin_claim)
        goto fail;
    if (parse_admin_users(a, cfg->admin_users) != MOM_OK)
        goto fail;
    a->ttl_s = cfg->token_ttl_s ? cfg->token_ttl_s : AUTH_DEFAULT_TTL_S;
    a->rules = (struct jws_rules){.issuer = a->issuer,
                                  .audience = a->audience,
                                  .role_claim = a->admin_claim,
                                  .role = "admin",
                                  .exp_leeway_s = AUTH_LEEWAY_S,
                                  .nbf_leeway_s = AUTH_LEEWAY_S};

    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    a->md_ctx = EVP_MD_CTX_new();
    a->cache = calloc((size_t)AUTH_CACHE_SETS * AUTH_CACHE_WAYS, sizeof *a->cache);
    a->victim = calloc(AUTH_CACHE_SETS, 1);
    if (!a->sha256 || !a->md_ctx || !a->cache || !a->victim)
        goto fail;
    *out = a;
    return MOM_OK;
fail:
    auth_free(a);
    return rc;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    jws_key_free(a->key);
    free(a->issuer);
    free(a->audience);
    free(a->admin_claim);
    for (size_t i = 0; i < a->n_admin_users; i++)
        free(a->admin_users[i]);
    free(a->admin_users);
    EVP_MD_CTX_free(a->md_ctx);
    EVP_MD_free(a->sha256);
    if (a->cache)
        OPENSSL_cleanse(a->cache, (size_t)AUTH_CACHE_SETS * AUTH_CACHE_WAYS * sizeof *a->cache);
    free(a->cache);
    free(a->victim);
    free(a);
}

bool auth_is_admin_user(const struct auth *a, const char *user)
{
    if (!a || !user)
        return false;
    for (size_t i = 0; i < a->n_admin_users; i++)
        if (strcmp(a->admin_users[i], user) == 0)
            return true;
    return false;
}

/* ---- cache ---- */

static bool time_ok(uint64_t exp, uint64_t nbf, uint64_t now_s)
{
    if (now_s > exp + AUTH_LEEWAY_S)
        return false;
    if (nbf > now_s + AUTH_LEEWAY_S)
        return false;
    return true;
}

static bool token_digest(struct auth *a, const char *token, size_t len,
                         unsigned char digest[AUTH_DIGEST_LEN])
{
    unsigned int dlen = 0;
    return EVP_DigestInit_ex(a->md_ctx, a->sha256, NULL) == 1 &&
           EVP_DigestUpdate(a->md_ctx, token, len) == 1 &&
           EVP_DigestFinal_ex(a->md_ctx, digest, &dlen) == 1 && dlen == AUTH_DIGEST_LEN;
}

static size_t cache_set(const unsigned char digest[AUTH_DIGEST_LEN])
{
    size_t v = (size_t)digest[0] | (size_t)digest[1] << 8 | (size_t)digest[2] << 16;
    return v & (AUTH_CACHE_SETS - 1);
}

static void cache_insert(struct auth *a, const unsigned char digest[AUTH_DIGEST_LEN], uint64_t nbf,
                         const struct auth_identity *id, uint64_t now_s)
{
    size_t set = cache_set(digest);
    struct auth_cache_entry *ways = &a->cache[set * AUTH_CACHE_WAYS];
    size_t pick = AUTH_CACHE_WAYS;
    for (size_t w = 0; w < AUTH_CACHE_WAYS; w++) {
        if (!ways[w].used || now_s > ways[w].id.exp + AUTH_LEEWAY_S ||
            memcmp(ways[w].digest, digest, AUTH_DIGEST_LEN) == 0) {
            pick = w;
            break;
        }
    }
    if (pick == AUTH_CACHE_WAYS) {
        pick = a->victim[set];
        a->victim[set] = (uint8_t)((pick + 1) % AUTH_CACHE_WAYS);
    }
    struct auth_cache_entry *e = &ways[pick];
    memcpy(e->digest, digest, AUTH_DIGEST_LEN);
    e->nbf = nbf;
    e->id = *id;
    e->used = true;
}

/* ---- verification ---- */

/* The shared verifier, then the client's own rule: sub is a valid name. */
static int verify_uncached(const struct auth *a, const char *token, size_t len, uint64_t now_s,
                           struct auth_identity *id, uint64_t *nbf)
{
    struct jws_claims c;
    const char *why = NULL;
    int rc = jws_verify(a->key, &a->rules, token, len, now_s, &c, &why);
    if (rc == MOM_OK && !name_valid(c.sub)) {
        why = "sub missing or not a valid name";
        rc = MOM_ERR_AUTH;
    }
    if (rc != MOM_OK) {
        if (why)
            log_debug("auth: token rejected: %s", why);
        return rc;
    }
    memset(id, 0, sizeof *id);
    memcpy(id->user, c.sub, strlen(c.sub) + 1);
    id->admin = c.has_role || auth_is_admin_user(a, id->user);
    id->exp = c.exp;
    *nbf = c.nbf;
    return MOM_OK;
}

/* auth_verify, also giving the token's nbf (0 when it had none). */
static int verify_cached(struct auth *a, const char *token, size_t token_len, uint64_t now_s,
                         struct auth_identity *id, uint64_t *nbf_out)
{
    if (!a || !token || !id || token_len == 0 || token_len > JWS_MAX_TOKEN ||
        memchr(token, '\0', token_len))
        return MOM_ERR_AUTH;

    unsigned char digest[AUTH_DIGEST_LEN];
    bool have_digest = token_digest(a, token, token_len, digest);
    if (have_digest) {
        struct auth_cache_entry *ways = &a->cache[cache_set(digest) * AUTH_CACHE_WAYS];
        for (size_t w = 0; w < AUTH_CACHE_WAYS; w++) {
            struct auth_cache_entry *e = &ways[w];
            if (!e->used || CRYPTO_memcmp(e->digest, digest, AUTH_DIGEST_LEN) != 0)
                continue;
            if (!time_ok(e->id.exp, e->nbf, now_s)) {
                if (now_s > e->id.exp + AUTH_LEEWAY_S)
                    e->used = false; /* expired for good */
                return MOM_ERR_AUTH;
            }
            *id = e->id;
            *nbf_out = e->nbf;
            return MOM_OK;
        }
    }

    struct auth_identity fresh;
    uint64_t nbf = 0;
    int rc = verify_uncached(a, token, token_len, now_s, &fresh, &nbf);
    if (rc != MOM_OK) {
        if (rc == MOM_ERR_NOMEM)
            log_error("auth: out of memory while verifying a token");
        return MOM_ERR_AUTH; /* the contract has one failure code */
    }
    if (have_digest)
        cache_insert(a, digest, nbf, &fresh, now_s);
    *id = fresh;
    *nbf_out = nbf;
    return MOM_OK;
}

int auth_verify(struct auth *a, const char *token, size_t token_len, uint64_t now_s,
                struct auth_identity *id)
{
    uint64_t nbf;
    return verify_cached(a, token, token_len, now_s, id, &nbf);
}

int auth_verify_memo(struct auth *a, struct auth_memo *m, const char *token, size_t token_len,
                     uint64_t now_s, struct auth_identity *id)
{
    if (m && m->token && token && token_len == m->len && memcmp(token, m->token, token_len) == 0) {
        /* the same bytes verified before: only the time can have changed */
        if (!time_ok(m->id.exp, m->nbf, now_s))
            return MOM_ERR_AUTH;
        *id = m->id;
        return MOM_OK;
    }
    uint64_t nbf;
    int rc = verify_cached(a, token, token_len, now_s, id, &nbf);
    if (rc != MOM_OK || !m)
        return rc;
    char *copy = m->len >= token_len && m->token ? m->token : malloc(token_len);
    if (!copy)
        return MOM_OK; /* verified; only the memo is lost */
    if (copy != m->token)
        free(m->token);
    memcpy(copy, token, token_len);
    m->token = copy;
    m->len = token_len;
    m->nbf = nbf;
    m->id = *id;
    return MOM_OK;
}

void auth_memo_cleanup(struct auth_memo *m)
{
    if (!m)
        return;
    if (m->token)
        OPENSSL_cleanse(m->token, m->len);
    free(m->token);
    memset(m, 0, sizeof *m);
}

/* ---- issuing ---- */

int auth_issue(struct auth *a, const char *user, bool admin, uint64_t now_s, char **token,
               uint64_t *expires_in)
{
    *token = NULL;
    if (!a || !jws_key_has_secret(a->key))
        return MOM_ERR_INVALID;
    if (!user || !name_valid(user))
        return MOM_ERR_INVALID;
    if (a->ttl_s > (uint64_t)LONG_MAX || now_s > (uint64_t)LONG_MAX - a->ttl_s)
        return MOM_ERR_INVALID;

    struct jws_grants g = {.sub = user,
                           .iat = now_s,
                           .exp = now_s + a->ttl_s,
                           .issuer = a->issuer,
                           .audience = a->audience,
                           .role_claim = a->admin_claim,
                           .role = admin || auth_is_admin_user(a, user) ? "admin" : NULL};
    int rc = jws_sign_hs256(a->key, &g, token);
    if (rc == MOM_OK)
        *expires_in = a->ttl_s;
    return rc;
}

/* ---- passwords ---- */

static int pbkdf2(const char *password, size_t password_len, const unsigned char *salt,
                  size_t salt_len, unsigned iter, unsigned char out[AUTH_HASH_LEN])
{
    if (password_len > INT_MAX || salt_len > INT_MAX || iter > INT_MAX)
        return MOM_ERR_INVALID;
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, (int)iter, EVP_sha256(),
                          AUTH_HASH_LEN, out) != 1)
        return MOM_ERR_IO;
    return MOM_OK;
}

int auth_password_hash(const char *password, size_t password_len, char *out, size_t out_len)
{
    unsigned char salt[AUTH_SALT_LEN], hash[AUTH_HASH_LEN];
    unsigned char salt_b64[4 * ((AUTH_SALT_LEN + 2) / 3) + 1];
    unsigned char hash_b64[4 * ((AUTH_HASH_LEN + 2) / 3) + 1];
    if (!out || out_len < 160 || (!password && password_len))
        return MOM_ERR_IO;
    out[0] = '\0';
    if (RAND_bytes(salt, sizeof salt) != 1)
        return MOM_ERR_IO;
    if (pbkdf2(password ? password : "", password_len, salt, sizeof salt, AUTH_PBKDF2_ITER, hash) !=
        MOM_OK)
        return MOM_ERR_IO;
    EVP_EncodeBlock(salt_b64, salt, sizeof salt);
    EVP_EncodeBlock(hash_b64, hash, sizeof hash);
    int n = snprintf(out, out_len, AUTH_PW_PREFIX "%u$%s$%s", AUTH_PBKDF2_ITER,
                     (const char *)salt_b64, (const char *)hash_b64);
    OPENSSL_cleanse(hash, sizeof hash);
    if (n < 0 || (size_t)n >= out_len) {
        out[0] = '\0';
        return MOM_ERR_IO;
    }
    return MOM_OK;
}

bool auth_password_verify(const char *password, size_t password_len, const char *stored)
{
    if (!stored || (!password && password_len))
        return false;
    size_t plen = strlen(AUTH_PW_PREFIX);
    if (strncmp(stored, AUTH_PW_PREFIX, plen) != 0)
        return false;
    const char *p = stored + plen;

    unsigned long iter = 0;
    size_t digits = 0;
    for (; p[digits] >= '0' && p[digits] <= '9'; digits++) {
        if (digits >= 7)
            return false;
        iter = iter * 10 + (unsigned long)(p[digits] - '0');
    }
    if (digits == 0 || p[digits] != '$' || iter < AUTH_PBKDF2_MIN_ITER ||
        iter > AUTH_PBKDF2_MAX_ITER)
        return false;
    const char *salt_s = p + digits + 1;
    const char *sep = strchr(salt_s, '$');
    if (!sep)
        return false;
    const char *hash_s = sep + 1;

    unsigned char salt[64], want[48], got[AUTH_HASH_LEN];
    int salt_len = b64_decode_std(salt_s, (size_t)(sep - salt_s), salt, sizeof salt);
    int want_len = b64_decode_std(hash_s, strlen(hash_s), want, sizeof want);
    if (salt_len < 8 || want_len != AUTH_HASH_LEN)
        return false;
    if (pbkdf2(password ? password : "", password_len, salt, (size_t)salt_len, (unsigned)iter,
               got) != MOM_OK)
        return false;
    bool ok = CRYPTO_memcmp(got, want, AUTH_HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}
