/* The hardened JWT verifier and HS256 signer (see jws.h for the checks).
 * libjwt 1.10 is only asked to decode tokens whose signature already
 * verified here, with a non-NULL key and the algorithm pinned to it; it
 * compares HMACs with strcmp and re-parses a PEM on every call, so neither a
 * forged token nor a stream of them reaches it. Owns: the key copies (the
 * secret is wiped on free) and the public key parsed once.
 * SPDX-License-Identifier: MIT */
#include "broker/jws.h"

#include "common/base64.h"
#include "common/err.h"
#include "common/log.h"
#include "common/number.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JWS_MAX_HEADER 1024u                /* decoded JOSE header bytes */
#define JWS_MAX_NUMERIC 1000000000000000ull /* NumericDate sanity bound (year ~31 million) */

struct jws_key {
    unsigned char *secret; /* HS256 key, NULL when not configured */
    size_t secret_len;
    char *pem; /* public key PEM, NUL-terminated copy (libjwt wants the text) */
    size_t pem_len;
    jwt_alg_t pk_alg; /* JWT_ALG_RS256 / JWT_ALG_ES256 / JWT_ALG_NONE */
    EVP_PKEY *pkey;   /* the same key, parsed once (see pk_signature_ok) */
    EVP_MD *sha256;   /* fetched once: implicit fetches cost ~0.3 us */
};

/* ---- decoding helpers ---- */

/* Unpadded base64url (RFC 7515 section 2), canonical only (common/base64.h):
 * a token has one spelling, so its cache key names one signature. Returns
 * MOM_OK or MOM_ERR_INVALID. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         size_t *out_len)
{
    return base64_decode(BASE64_URL, in, len, out, cap, out_len) == MOM_OK ? MOM_OK
                                                                           : MOM_ERR_INVALID;
}

/* A JSON NumericDate that is a non-negative integral number. */
static bool json_numeric_date(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    return number_exact_uint(v->valuedouble, JWS_MAX_NUMERIC, out) == NUMBER_OK;
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

/* ---- verification ---- */

int jws_parse(const char *token, size_t len, struct jws_parts *out)
{
    memset(out, 0, sizeof *out);
    out->alg = JWS_ALG_UNUSABLE;
    if (!token || len == 0 || len > JWS_MAX_TOKEN || memchr(token, '\0', len))
        return MOM_ERR_AUTH;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return MOM_ERR_AUTH;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return MOM_ERR_AUTH;
    out->header_len = (size_t)(dot1 - token);
    out->payload = dot1 + 1;
    out->payload_len = (size_t)(dot2 - out->payload);
    out->signed_len = (size_t)(dot2 - token);
    out->sig = dot2 + 1;
    out->sig_len = len - (size_t)(out->sig - token);
    if (out->header_len == 0 || out->payload_len == 0 || out->sig_len == 0)
        return MOM_ERR_AUTH; /* also rules out alg none's empty signature */

    unsigned char json[JWS_MAX_HEADER + 1];
    size_t n = 0;
    if (b64url_decode(token, out->header_len, json, JWS_MAX_HEADER, &n) != MOM_OK)
        return MOM_ERR_AUTH;
    cJSON *h = cJSON_ParseWithLength((const char *)json, n);
    if (!h)
        return MOM_ERR_AUTH;
    int rc = MOM_ERR_AUTH;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "alg");
    /* RFC 7515 §4.1.11: extensions we do not understand must be rejected. */
    if (cJSON_IsObject(h) && cJSON_IsString(v) && !cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        const char *a = v->valuestring;
        out->alg = strcmp(a, "HS256") == 0   ? JWS_ALG_HS256
                   : strcmp(a, "RS256") == 0 ? JWS_ALG_RS256
                   : strcmp(a, "ES256") == 0 ? JWS_ALG_ES256
                                             : JWS_ALG_UNUSABLE;
        rc = out->alg == JWS_ALG_UNUSABLE ? MOM_ERR_AUTH : MOM_OK;
    }
    cJSON_Delete(h);
    return rc;
}

/* Picks the one key that may verify a token of algorithm alg. Returns
 * MOM_OK with want, key and key_len set, else MOM_ERR_AUTH. */
static int pick_key(const struct jws_key *k, enum jws_alg alg, jwt_alg_t *want,
                    const unsigned char **key, size_t *key_len)
{
    if (alg == JWS_ALG_HS256 && k->secret) {
        *want = JWT_ALG_HS256;
        *key = k->secret;
        *key_len = k->secret_len;
        return MOM_OK;
    }
    if (k->pem && ((alg == JWS_ALG_RS256 && k->pk_alg == JWT_ALG_RS256) ||
                   (alg == JWS_ALG_ES256 && k->pk_alg == JWT_ALG_ES256))) {
        *want = k->pk_alg;
        *key = (const unsigned char *)k->pem;
        *key_len = k->pem_len;
        return MOM_OK;
    }
    return MOM_ERR_AUTH;
}

/* libjwt 1.10 compares HMACs with strcmp; check HS256 in constant time first
 * so a forged signature never reaches that compare. */
static bool hs256_signature_ok(const struct jws_key *k, const char *token, size_t signed_len,
                               const char *sig, size_t sig_len)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[64];
    unsigned int want_len = 0;
    size_t got_len = 0;
    if (b64url_decode(sig, sig_len, got, sizeof got, &got_len) != MOM_OK || got_len != 32)
        return false;
    if (!HMAC(k->sha256, k->secret, (int)k->secret_len, (const unsigned char *)token, signed_len,
              want, &want_len) ||
        want_len != 32)
        return false;
    return CRYPTO_memcmp(want, got, 32) == 0;
}

/* libjwt 1.10 re-parses the PEM on every jwt_decode (~370 us with OpenSSL 3,
 * against ~25 us for the RSA verify itself), so a stream of forged RS256/ES256
 * tokens would cost the loop thread dearly. Check the signature first with the
 * key parsed once in jws_key_new; only genuine signatures reach jwt_decode (and
 * client auth caches those afterwards). JWS ES256 signatures are raw R||S (RFC 7518
 * §3.4), converted to DER for OpenSSL. */
static bool pk_signature_ok(const struct jws_key *k, const char *token, size_t signed_len,
                            const char *sig, size_t sig_len)
{
    unsigned char raw[1024];
    size_t raw_len = 0;
    if (b64url_decode(sig, sig_len, raw, sizeof raw, &raw_len) != MOM_OK)
        return false;

    unsigned char *der = NULL;
    const unsigned char *check = raw;
    size_t check_len = raw_len;
    if (k->pk_alg == JWT_ALG_ES256) {
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
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, k->sha256, NULL, k->pkey) == 1)
        ok = EVP_DigestVerify(ctx, check, check_len, (const unsigned char *)token, signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

int jws_check_claims(const struct jws_rules *r, const char *payload, size_t len, uint64_t now_s,
                     struct jws_claims *out, const char **why)
{
    unsigned char *json = malloc(len / 4 * 3 + 3);
    if (!json)
        return MOM_ERR_NOMEM;
    size_t n = 0;
    cJSON *c = NULL;
    if (b64url_decode(payload, len, json, len / 4 * 3 + 3, &n) == MOM_OK)
        c = cJSON_ParseWithLength((const char *)json, n);
    free(json);
    *why = "claims are not JSON";
    if (!c)
        return MOM_ERR_AUTH;

    int rc = MOM_ERR_AUTH;
    uint64_t exp = 0, nbf = 0, iat = 0;
    const cJSON *v;
    if (!cJSON_IsObject(c)) {
        *why = "claims are not an object";
        goto out;
    }
    if (!json_numeric_date(cJSON_GetObjectItemCaseSensitive(c, "exp"), &exp)) {
        *why = "exp missing or not an integer";
        goto out;
    }
    if (now_s > exp + r->exp_leeway_s) {
        *why = "expired";
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(c, "nbf");
    if (v && !json_numeric_date(v, &nbf)) {
        *why = "nbf not an integer";
        goto out;
    }
    if (nbf > now_s + r->nbf_leeway_s) {
        *why = "not yet valid (nbf)";
        goto out;
    }
    if (r->issuer) {
        v = cJSON_GetObjectItemCaseSensitive(c, "iss");
        if (!cJSON_IsString(v) || strcmp(v->valuestring, r->issuer) != 0) {
            *why = "wrong iss";
            goto out;
        }
    }
    if (r->audience && !json_has_string(cJSON_GetObjectItemCaseSensitive(c, "aud"), r->audience)) {
        *why = "wrong aud";
        goto out;
    }
    if (!json_numeric_date(cJSON_GetObjectItemCaseSensitive(c, "iat"), &iat))
        iat = 0;
    memset(out, 0, sizeof *out);
    v = cJSON_GetObjectItemCaseSensitive(c, "sub");
    if (cJSON_IsString(v) && strlen(v->valuestring) <= JWS_SUB_MAX)
        memcpy(out->sub, v->valuestring, strlen(v->valuestring) + 1);
    out->exp = exp;
    out->nbf = nbf;
    out->iat = iat;
    out->has_role = r->role_claim && r->role &&
                    json_has_string(cJSON_GetObjectItemCaseSensitive(c, r->role_claim), r->role);
    *why = NULL;
    rc = MOM_OK;
out:
    cJSON_Delete(c);
    return rc;
}

int jws_verify(const struct jws_key *k, const struct jws_rules *r, const char *token, size_t len,
               uint64_t now_s, struct jws_claims *out, const char **why)
{
    *why = "malformed token";
    struct jws_parts parts;
    if (!k || !r)
        return MOM_ERR_AUTH;
    if (jws_parse(token, len, &parts) != MOM_OK) {
        if (parts.header_len && parts.payload_len && parts.sig_len)
            *why = "header alg unusable with the configured keys";
        return MOM_ERR_AUTH;
    }
    jwt_alg_t want;
    const unsigned char *key;
    size_t key_len;
    if (pick_key(k, parts.alg, &want, &key, &key_len) != MOM_OK) {
        *why = "header alg unusable with the configured keys";
        return MOM_ERR_AUTH;
    }
    if (want == JWT_ALG_HS256
            ? !hs256_signature_ok(k, token, parts.signed_len, parts.sig, parts.sig_len)
            : !pk_signature_ok(k, token, parts.signed_len, parts.sig, parts.sig_len)) {
        *why = "bad signature";
        return MOM_ERR_AUTH;
    }

    /* jwt_decode wants a C string. */
    char buf[JWS_MAX_TOKEN + 1];
    memcpy(buf, token, len);
    buf[len] = '\0';
    jwt_t *j = NULL;
    int jrc = jwt_decode(&j, buf, key, (int)key_len);
    jwt_alg_t got = j ? jwt_get_alg(j) : JWT_ALG_INVAL;
    jwt_free(j);
    if (jrc != 0 || got != want) {
        *why = "signature does not verify in libjwt";
        return MOM_ERR_AUTH;
    }
    return jws_check_claims(r, parts.payload, parts.payload_len, now_s, out, why);
}

/* ---- keys ---- */

int jws_key_new(const void *secret, size_t secret_len, const char *pem, size_t pem_len,
                struct jws_key **out)
{
    *out = NULL;
    if (!secret && !pem)
        return MOM_ERR_INVALID;
    if (secret && (secret_len == 0 || secret_len > INT_MAX))
        return MOM_ERR_INVALID;
    struct jws_key *k = calloc(1, sizeof *k);
    if (!k)
        return MOM_ERR_NOMEM;
    k->pk_alg = JWT_ALG_NONE;
    int rc = MOM_ERR_NOMEM;
    if (secret) {
        k->secret = malloc(secret_len);
        if (!k->secret)
            goto fail;
        memcpy(k->secret, secret, secret_len);
        k->secret_len = secret_len;
    }
    if (pem) {
        rc = load_public_key(pem, pem_len, &k->pk_alg, &k->pkey);
        if (rc != MOM_OK)
            goto fail;
        rc = MOM_ERR_NOMEM;
        k->pem = malloc(pem_len + 1);
        if (!k->pem)
            goto fail;
        memcpy(k->pem, pem, pem_len);
        k->pem[pem_len] = '\0';
        k->pem_len = pem_len;
    }
    k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!k->sha256)
        goto fail;
    *out = k;
    return MOM_OK;
fail:
    jws_key_free(k);
    return rc;
}

void jws_key_free(struct jws_key *k)
{
    if (!k)
        return;
    if (k->secret)
        OPENSSL_cleanse(k->secret, k->secret_len);
    free(k->secret);
    free(k->pem);
    EVP_PKEY_free(k->pkey);
    EVP_MD_free(k->sha256);
    free(k);
}

bool jws_key_has_secret(const struct jws_key *k)
{
    return k && k->secret;
}

/* ---- signing ---- */

int jws_sign_hs256(const struct jws_key *k, const struct jws_grants *g, char **out)
{
    *out = NULL;
    if (!k || !k->secret || !g->sub || g->iat > (uint64_t)LONG_MAX || g->exp > (uint64_t)LONG_MAX)
        return MOM_ERR_INVALID;
    int rc = MOM_ERR_NOMEM;
    jwt_t *j = NULL;
    char *roles_json = NULL;
    cJSON *roles = NULL;
    if (g->role_claim) {
        roles = cJSON_CreateObject();
        cJSON *list = roles ? cJSON_AddArrayToObject(roles, g->role_claim) : NULL;
        if (!list)
            goto out;
        if (g->role) {
            cJSON *s = cJSON_CreateString(g->role);
            if (!s || !cJSON_AddItemToArray(list, s)) {
                cJSON_Delete(s);
                goto out;
            }
        }
        roles_json = cJSON_PrintUnformatted(roles);
        if (!roles_json)
            goto out;
    }
    if (jwt_new(&j) != 0)
        goto out;
    if (jwt_add_grant(j, "sub", g->sub) != 0 || jwt_add_grant_int(j, "iat", (long)g->iat) != 0 ||
        jwt_add_grant_int(j, "exp", (long)g->exp) != 0 ||
        (g->issuer && jwt_add_grant(j, "iss", g->issuer) != 0) ||
        (g->audience && jwt_add_grant(j, "aud", g->audience) != 0) ||
        (roles_json && jwt_add_grants_json(j, roles_json) != 0) ||
        jwt_set_alg(j, JWT_ALG_HS256, k->secret, (int)k->secret_len) != 0)
        goto out;
    *out = jwt_encode_str(j); /* malloc'd by libjwt 1.10 (no custom allocator) */
    if (*out)
        rc = MOM_OK;
out:
    jwt_free(j);
    cJSON_free(roles_json);
    cJSON_Delete(roles);
    return rc;
}
