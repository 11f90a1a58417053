/* Client authentication: verifies compact JWTs with libjwt 1.10 and adds the
 * checks it lacks (PITFALLS §5): the key is chosen from the algorithm the
 * header names, jwt_decode always gets a non-NULL key, and the algorithm it
 * reports is pinned to that key (HS256 for the shared secret, RS256 or ES256
 * for the public key by its type), so `alg: none` and HS/RS confusion fail.
 * Before jwt_decode the signature is also checked here with OpenSSL (HMAC in
 * constant time; RS/ES with the key parsed once), so forged tokens never
 * reach libjwt's strcmp or its per-call PEM parsing.
 * Claims are checked here: exp required, exp/nbf with 30 s leeway, iss/aud
 * when configured, sub a valid name. Verified tokens go into a 2-way
 * set-associative cache keyed by the full SHA-256 of the token bytes; a hit
 * re-checks exp/nbf only. Also issues HS256 tokens and hashes passwords with
 * PBKDF2-HMAC-SHA256. A struct auth belongs to the loop thread (the cache and
 * the digest context are mutated without locks). A jwt_t never leaves here.
 * SPDX-License-Identifier: MIT */
#include "broker/auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

#define AUTH_LEEWAY_S 30u
#define AUTH_MAX_TOKEN 8192u  /* longer tokens are rejected unparsed */
#define AUTH_MAX_HEADER 1024u /* decoded JOSE header bytes */
#define AUTH_NAME_MAX 128u
#define AUTH_DEFAULT_TTL_S 3600u
#define AUTH_MAX_NUMERIC 1e15 /* NumericDate sanity bound (year ~31 million) */

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
    unsigned char *secret; /* HS256 key, NULL when not configured */
    size_t secret_len;
    char *pem; /* public key PEM, NUL-terminated copy */
    size_t pem_len;
    jwt_alg_t pk_alg; /* JWT_ALG_RS256 / JWT_ALG_ES256 / JWT_ALG_NONE */
    EVP_PKEY *pkey;   /* the same key, parsed once (see pk_signature_ok) */
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

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Decodes unpadded base64url (RFC 7515 §2) with OpenSSL's EVP_DecodeBlock,
 * in chunks of whole quanta so no allocation is needed. Strict: only the URL
 * alphabet, no padding, no whitespace. Returns MOM_OK or MOM_ERR_INVALID. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         size_t *out_len)
{
    if (len % 4 == 1)
        return MOM_ERR_INVALID;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > cap)
        return MOM_ERR_INVALID;
    for (size_t i = 0; i < len; i++)
        if (!is_b64url_char(in[i]))
            return MOM_ERR_INVALID;

    unsigned char chunk[1024 + 4];
    unsigned char tmp[(sizeof chunk / 4) * 3];
    size_t done = 0, pos = 0;
    while (pos < len) {
        size_t n = len - pos;
        if (n > 1024)
            n = 1024;
        for (size_t i = 0; i < n; i++) {
            char c = in[pos + i];
            chunk[i] = (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c);
        }
        size_t padded = n, pad = 0;
        while (padded % 4 != 0) {
            chunk[padded++] = '=';
            pad++;
        }
        int r = EVP_DecodeBlock(tmp, chunk, (int)padded);
        if (r < 0 || (size_t)r < pad)
            return MOM_ERR_INVALID;
        size_t got = (size_t)r - pad;
        memcpy(out + done, tmp, got);
        done += got;
        pos += n;
    }
    *out_len = done;
    return MOM_OK;
}

/* Standard padded base64 (password records). Returns decoded length or -1. */
static int b64_decode_std(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap || len > INT_MAX)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (c == '=' && i >= len - 2) {
            pad++;
            continue;
        }
        if (!ok || pad > 0)
            return -1;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (r < 0 || (size_t)r < pad)
        return -1;
    /* Canonical only: the unused low bits before '=' must be zero, so one
     * record has exactly one spelling (re-encode and compare). */
    unsigned char again[4 * 64 / 3 + 8];
    if (len >= sizeof again)
        return -1;
    EVP_EncodeBlock(again, out, r - (int)pad);
    if (memcmp(again, in, len) != 0)
        return -1;
    return r - (int)pad;
}

/* A JSON NumericDate that is a non-negative integral number. */
static bool json_numeric_date(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > AUTH_MAX_NUMERIC || floor(d) != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

/* v is the string s, or an array holding the string s. */
static bool json_has_string(const cJSON *v, const char *s)
{
    if (cJSON_IsString(v))
        return strcmp(v->valuestring, s) == 0;
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
                return true;
        }
    }
    return false;
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

/* Loads the public key PEM to learn its type: RSA (>= 2048 bits) gives
 * RS256, EC on P-256 gives ES256; anything else is MOM_ERR_INVALID. On
 * success *out holds the parsed key (caller frees). */
static int load_public_key(const char *pem, size_t len, jwt_alg_t *alg, EVP_PKEY **out)
{
    if (len > INT_MAX)
        return MOM_ERR_INVALID;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return MOM_ERR_NOMEM;
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk) {
        log_error("auth: public key PEM does not parse (need a SubjectPublicKeyInfo "
                  "\"BEGIN PUBLIC KEY\" block)");
        return MOM_ERR_INVALID;
    }
    int rc = MOM_ERR_INVALID;
    int type = EVP_PKEY_base_id(pk);
    if (type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(pk) >= 2048) {
            *alg = JWT_ALG_RS256;
            rc = MOM_OK;
        } else {
            log_error("auth: RSA public key has %d bits, need >= 2048", EVP_PKEY_get_bits(pk));
        }
    } else if (type == EVP_PKEY_EC) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pk, group, sizeof group, &glen) == 1 &&
            (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
            *alg = JWT_ALG_ES256;
            rc = MOM_OK;
        } else {
            log_error("auth: EC public key is not on P-256 (only ES256 is supported)");
        }
    } else {
        log_error("auth: public key type %d is neither RSA nor EC", type);
    }
    if (rc == MOM_OK)
        *out = pk;
    else
        EVP_PKEY_free(pk);
    return rc;
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
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return MOM_ERR_NOMEM;
    a->pk_alg = JWT_ALG_NONE;
    int rc = MOM_ERR_NOMEM;

    if (has_secret) {
        size_t n = cfg->hs256_secret_len ? cfg->hs256_secret_len : strlen(cfg->hs256_secret);
        if (n == 0 || n > INT_MAX) {
            log_error("auth: HS256 secret is empty");
            rc = MOM_ERR_INVALID;
            goto fail;
        }
        if (n < 32)
            log_warn("auth: HS256 secret is only %zu bytes; use at least 32", n);
        a->secret = malloc(n);
        if (!a->secret)
            goto fail;
        memcpy(a->secret, cfg->hs256_secret, n);
        a->secret_len = n;
    }
    if (has_pem) {
        size_t n = cfg->public_key_pem_len ? cfg->public_key_pem_len : strlen(cfg->public_key_pem);
        rc = load_public_key(cfg->public_key_pem, n, &a->pk_alg, &a->pkey);
        if (rc != MOM_OK)
            goto fail;
        rc = MOM_ERR_NOMEM;
        a->pem = malloc(n + 1);
        if (!a->pem)
            goto fail;
        memcpy(a->pem, cfg->public_key_pem, n);
        a->pem[n] = '\0';
        a->pem_len = n;
    }
    a->issuer = dup_or_null(cfg->issuer);
    a->audience = dup_or_null(cfg->audience);
    a->admin_claim = strdup(cfg->admin_claim && *cfg->admin_claim ? cfg->admin_claim : "roles");
    if ((cfg->issuer && !a->issuer) || (cfg->audience && !a->audience) || !a->admin_claim)
        goto fail;
    if (parse_admin_users(a, cfg->admin_users) != MOM_OK)
        goto fail;
    a->ttl_s = cfg->token_ttl_s ? cfg->token_ttl_s : AUTH_DEFAULT_TTL_S;

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
    if (a->secret)
        OPENSSL_cleanse(a->secret, a->secret_len);
    free(a->secret);
    free(a->pem);
    EVP_PKEY_free(a->pkey);
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

/* Reads the "alg" of the JOSE header segment and picks the one key that may
 * verify it. Returns MOM_OK with alg, key and key_len set, else MOM_ERR_AUTH. */
static int pick_key(const struct auth *a, const char *hdr, size_t hdr_len, jwt_alg_t *alg,
                    const unsigned char **key, size_t *key_len)
{
    unsigned char json[AUTH_MAX_HEADER + 1];
    size_t n = 0;
    if (b64url_decode(hdr, hdr_len, json, AUTH_MAX_HEADER, &n) != MOM_OK)
        return MOM_ERR_AUTH;
    cJSON *h = cJSON_ParseWithLength((const char *)json, n);
    if (!h)
        return MOM_ERR_AUTH;
    int rc = MOM_ERR_AUTH;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "alg");
    /* RFC 7515 §4.1.11: extensions we do not understand must be rejected. */
    if (cJSON_IsObject(h) && cJSON_IsString(v) && !cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        const char *s = v->valuestring;
        if (strcmp(s, "HS256") == 0 && a->secret) {
            *alg = JWT_ALG_HS256;
            *key = a->secret;
            *key_len = a->secret_len;
            rc = MOM_OK;
        } else if (a->pem && ((strcmp(s, "RS256") == 0 && a->pk_alg == JWT_ALG_RS256) ||
                              (strcmp(s, "ES256") == 0 && a->pk_alg == JWT_ALG_ES256))) {
            *alg = a->pk_alg;
            *key = (const unsigned char *)a->pem;
            *key_len = a->pem_len;
            rc = MOM_OK;
        }
    }
    cJSON_Delete(h);
    return rc;
}

/* libjwt 1.10 compares HMACs with strcmp; check HS256 in constant time first
 * so a forged signature never reaches that compare. */
static bool hs256_signature_ok(const struct auth *a, const char *token, size_t signed_len,
                               const char *sig, size_t sig_len)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[64];
    unsigned int want_len = 0;
    size_t got_len = 0;
    if (b64url_decode(sig, sig_len, got, sizeof got, &got_len) != MOM_OK || got_len != 32)
        return false;
    if (!HMAC(a->sha256, a->secret, (int)a->secret_len, (const unsigned char *)token, signed_len,
              want, &want_len) ||
        want_len != 32)
        return false;
    return CRYPTO_memcmp(want, got, 32) == 0;
}

/* libjwt 1.10 re-parses the PEM on every jwt_decode (~370 us with OpenSSL 3,
 * against ~25 us for the RSA verify itself), so a stream of forged RS256/ES256
 * tokens would cost the loop thread dearly. Check the signature first with the
 * key parsed once in auth_new; only genuine signatures reach jwt_decode, and
 * those are cached afterwards. JWS ES256 signatures are raw R||S (RFC 7518
 * §3.4), converted to DER for OpenSSL. */
static bool pk_signature_ok(const struct auth *a, const char *token, size_t signed_len,
                            const char *sig, size_t sig_len)
{
    unsigned char raw[1024];
    size_t raw_len = 0;
    if (b64url_decode(sig, sig_len, raw, sizeof raw, &raw_len) != MOM_OK)
        return false;

    unsigned char *der = NULL;
    const unsigned char *check = raw;
    size_t check_len = raw_len;
    if (a->pk_alg == JWT_ALG_ES256) {
        if (raw_len != 64)
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return false;
        }
        int n = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (n <= 0)
            return false;
        check = der;
        check_len = (size_t)n;
    }
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, a->sha256, NULL, a->pkey) == 1)
        ok = EVP_DigestVerify(ctx, check, check_len, (const unsigned char *)token, signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* Checks the claims of a token whose signature verified. Fills id and nbf. */
static int check_claims(const struct auth *a, const char *payload, size_t len, uint64_t now_s,
                        struct auth_identity *id, uint64_t *nbf_out)
{
    unsigned char *json = malloc(len / 4 * 3 + 3);
    if (!json)
        return MOM_ERR_NOMEM;
    size_t n = 0;
    cJSON *c = NULL;
    if (b64url_decode(payload, len, json, len / 4 * 3 + 3, &n) == MOM_OK)
        c = cJSON_ParseWithLength((const char *)json, n);
    free(json);
    if (!c)
        return MOM_ERR_AUTH;

    int rc = MOM_ERR_AUTH;
    const char *why = NULL;
    uint64_t exp = 0, nbf = 0;
    const cJSON *v;
    if (!cJSON_IsObject(c)) {
        why = "claims are not an object";
        goto out;
    }
    if (!json_numeric_date(cJSON_GetObjectItemCaseSensitive(c, "exp"), &exp)) {
        why = "exp missing or not an integer";
        goto out;
    }
    if (now_s > exp + AUTH_LEEWAY_S) {
        why = "expired";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    if (v && !json_numeric_date(v, &nbf)) {
        why = "nbf not an integer";
        goto out;
    }
    if (nbf > now_s + AUTH_LEEWAY_S) {
        why = "not yet valid (nbf)";
        goto out;
    }
    if (a->issuer) {
        v = cJSON_GetObjectItemCaseSensitive(c, "iss");
        if (!cJSON_IsString(v) || strcmp(v->valuestring, a->issuer) != 0) {
            why = "wrong iss";
            goto out;
        }
    }
    if (a->audience && !json_has_string(cJSON_GetObjectItemCaseSensitive(c, "aud"), a->audience)) {
        why = "wrong aud";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "sub");
    if (!cJSON_IsString(v) || !name_valid(v->valuestring)) {
        why = "sub missing or not a valid name";
        goto out;
    }
    memset(id, 0, sizeof *id);
    memcpy(id->user, v->valuestring, strlen(v->valuestring) + 1);
    id->admin = json_has_string(cJSON_GetObjectItemCaseSensitive(c, a->admin_claim), "admin") ||
                auth_is_admin_user(a, id->user);
    id->exp = exp;
    *nbf_out = nbf;
    rc = MOM_OK;
out:
    if (why)
        log_debug("auth: token rejected: %s", why);
    cJSON_Delete(c);
    return rc;
}

static int verify_uncached(const struct auth *a, const char *token, size_t len, uint64_t now_s,
                           struct auth_identity *id, uint64_t *nbf)
{
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return MOM_ERR_AUTH;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return MOM_ERR_AUTH;
    size_t hdr_len = (size_t)(dot1 - token);
    const char *payload = dot1 + 1;
    size_t payload_len = (size_t)(dot2 - payload);
    const char *sig = dot2 + 1;
    size_t sig_len = len - (size_t)(sig - token);
    if (hdr_len == 0 || payload_len == 0 || sig_len == 0)
        return MOM_ERR_AUTH; /* also rules out alg none's empty signature */

    jwt_alg_t want;
    const unsigned char *key;
    size_t key_len;
    if (pick_key(a, token, hdr_len, &want, &key, &key_len) != MOM_OK) {
        log_debug("auth: token rejected: header alg unusable with the configured keys");
        return MOM_ERR_AUTH;
    }
    size_t signed_len = (size_t)(dot2 - token);
    if (want == JWT_ALG_HS256 ? !hs256_signature_ok(a, token, signed_len, sig, sig_len)
                              : !pk_signature_ok(a, token, signed_len, sig, sig_len)) {
        log_debug("auth: token rejected: bad %s signature", jwt_alg_str(want));
        return MOM_ERR_AUTH;
    }

    /* jwt_decode wants a C string. */
    char buf[AUTH_MAX_TOKEN + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';
    jwt_t *j = NULL;
    int jrc = jwt_decode(&j, buf, key, (int)key_len);
    jwt_alg_t got = j ? jwt_get_alg(j) : JWT_ALG_INVAL;
    jwt_free(j);
    if (jrc != 0 || got != want) {
        log_debug("auth: token rejected: signature does not verify (jwt_decode %d, alg %d)", jrc,
                  (int)got);
        return MOM_ERR_AUTH;
    }
    return check_claims(a, payload, payload_len, now_s, id, nbf);
}

int auth_verify(struct auth *a, const char *token, size_t token_len, uint64_t now_s,
                struct auth_identity *id)
{
    if (!a || !token || !id || token_len == 0 || token_len > AUTH_MAX_TOKEN ||
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
    return MOM_OK;
}

/* ---- issuing ---- */

int auth_issue(struct auth *a, const char *user, bool admin, uint64_t now_s, char **token,
               uint64_t *expires_in)
{
    *token = NULL;
    if (!a || !a->secret)
        return MOM_ERR_INVALID;
    if (!user || !name_valid(user))
        return MOM_ERR_INVALID;
    if (a->ttl_s > (uint64_t)LONG_MAX || now_s > (uint64_t)LONG_MAX - a->ttl_s)
        return MOM_ERR_INVALID;

    int rc = MOM_ERR_NOMEM;
    jwt_t *j = NULL;
    char *roles_json = NULL;
    cJSON *roles = cJSON_CreateObject();
    cJSON *list = roles ? cJSON_AddArrayToObject(roles, a->admin_claim) : NULL;
    if (!list)
        goto out;
    if (admin || auth_is_admin_user(a, user)) {
        cJSON *s = cJSON_CreateString("admin");
        if (!s || !cJSON_AddItemToArray(list, s)) {
            cJSON_Delete(s);
            goto out;
        }
    }
    roles_json = cJSON_PrintUnformatted(roles);
    if (!roles_json || jwt_new(&j) != 0)
        goto out;
    if (jwt_add_grant(j, "sub", user) != 0 || jwt_add_grant_int(j, "iat", (long)now_s) != 0 ||
        jwt_add_grant_int(j, "exp", (long)(now_s + a->ttl_s)) != 0 ||
        (a->issuer && jwt_add_grant(j, "iss", a->issuer) != 0) ||
        (a->audience && jwt_add_grant(j, "aud", a->audience) != 0) ||
        jwt_add_grants_json(j, roles_json) != 0 ||
        jwt_set_alg(j, JWT_ALG_HS256, a->secret, (int)a->secret_len) != 0)
        goto out;
    *token = jwt_encode_str(j); /* malloc'd by libjwt 1.10 (no custom allocator) */
    if (!*token)
        goto out;
    *expires_in = a->ttl_s;
    rc = MOM_OK;
out:
    jwt_free(j);
    cJSON_free(roles_json);
    cJSON_Delete(roles);
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
