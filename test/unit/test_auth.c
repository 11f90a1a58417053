/* Unit tests for broker/auth.c: JWT verification (HS256/RS256/ES256, alg
 * none and HS/RS confusion, exp/nbf leeway, iss/aud, roles, admin_users,
 * malformed input), the verified-token cache, token issuing and password
 * hashing. Keys are generated here with OpenSSL; tokens are signed with
 * libjwt or built by hand. Also prints the measured verify/hash costs.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "broker/auth.h"
#include "common/err.h"

#define NOW 1700000000ull
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

struct keys {
    char *rsa_pub, *rsa_priv;   /* RSA 2048 */
    char *rsa2_pub, *rsa2_priv; /* another RSA 2048 */
    char *ec_pub, *ec_priv;     /* EC P-256 */
    char *ec384_pub;            /* EC P-384: unsupported */
    char *rsa1024_pub;          /* too small */
};

/* ---- helpers ---- */

static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static void gen_key(const char *type, const char *param, size_t bits, char **pub, char **priv)
{
    EVP_PKEY *pk = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits)
                                            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    assert_non_null(pk);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    *pub = bio_to_string(b);
    BIO_free(b);
    if (priv) {
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
        *priv = bio_to_string(b);
        BIO_free(b);
    }
    EVP_PKEY_free(pk);
}

static int setup_keys(void **state)
{
    struct keys *k = calloc(1, sizeof *k);
    gen_key("RSA", NULL, 2048, &k->rsa_pub, &k->rsa_priv);
    gen_key("RSA", NULL, 2048, &k->rsa2_pub, &k->rsa2_priv);
    gen_key("EC", "P-256", 0, &k->ec_pub, &k->ec_priv);
    gen_key("EC", "P-384", 0, &k->ec384_pub, NULL);
    gen_key("RSA", NULL, 1024, &k->rsa1024_pub, NULL);
    *state = k;
    return 0;
}

static int teardown_keys(void **state)
{
    struct keys *k = *state;
    free(k->rsa_pub);
    free(k->rsa_priv);
    free(k->rsa2_pub);
    free(k->rsa2_priv);
    free(k->ec_pub);
    free(k->ec_priv);
    free(k->ec384_pub);
    free(k->rsa1024_pub);
    free(k);
    return 0;
}

/* Signs claims_json with libjwt. key is a secret (HS256) or a private PEM. */
static char *sign(jwt_alg_t alg, const char *key, size_t key_len, const char *claims_json)
{
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims_json), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, (int)key_len), 0);
    char *tok = jwt_encode_str(j);
    assert_non_null(tok);
    jwt_free(j);
    return tok;
}

static char *sign_hs(const char *claims_json)
{
    return sign(JWT_ALG_HS256, SECRET, strlen(SECRET), claims_json);
}

/* Standard claims: sub, exp = NOW + 600 plus extra ("" or ",\"k\":v"). */
static char *claims(char *buf, size_t cap, const char *sub, uint64_t exp, const char *extra)
{
    snprintf(buf, cap, "{\"sub\":\"%s\",\"exp\":%llu%s}", sub, (unsigned long long)exp, extra);
    return buf;
}

static void b64url(const void *data, size_t len, char *out)
{
    unsigned char tmp[4096];
    assert_true(len <= 3000);
    int n = EVP_EncodeBlock(tmp, data, (int)len);
    int o = 0;
    for (int i = 0; i < n; i++) {
        char c = (char)tmp[i];
        if (c == '=')
            break;
        out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[o] = '\0';
}

/* header.payload.sig built by hand from JSON texts and a raw signature segment. */
static void hand_token(char *out, const char *header_json, const char *payload_json,
                       const char *sig_segment)
{
    char h[2048], p[2048];
    b64url(header_json, strlen(header_json), h);
    b64url(payload_json, strlen(payload_json), p);
    sprintf(out, "%s.%s.%s", h, p, sig_segment);
}

/* header.payload.HMAC-SHA256(secret) built by hand. */
static void hand_hs256(char *out, const char *header_json, const char *payload_json,
                       const char *secret)
{
    char h[2048], p[2048], sig[128];
    unsigned char mac[32];
    unsigned int maclen = 0;
    b64url(header_json, strlen(header_json), h);
    b64url(payload_json, strlen(payload_json), p);
    sprintf(out, "%s.%s", h, p);
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out,
                         strlen(out), mac, &maclen));
    b64url(mac, maclen, sig);
    strcat(out, ".");
    strcat(out, sig);
}

static struct auth *mk_auth(const char *secret, const char *pem, const char *iss, const char *aud,
                            const char *claim, const char *admins)
{
    struct auth_config cfg = {
        .hs256_secret = secret,
        .hs256_secret_len = secret ? strlen(secret) : 0,
        .public_key_pem = pem,
        .public_key_pem_len = pem ? strlen(pem) : 0,
        .issuer = iss,
        .audience = aud,
        .admin_claim = claim,
        .admin_users = admins,
        .token_ttl_s = 0,
    };
    struct auth *a = NULL;
    assert_int_equal(auth_new(&cfg, &a), MOM_OK);
    assert_non_null(a);
    return a;
}

static int verify(struct auth *a, const char *tok, uint64_t now, struct auth_identity *id)
{
    return auth_verify(a, tok, strlen(tok), now, id);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- construction ---- */

static void test_new_requires_valid_key(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = {0};
    struct auth *a = (struct auth *)1;
    assert_int_equal(auth_new(&cfg, &a), MOM_ERR_INVALID);
    assert_null(a);

    cfg.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n";
    cfg.public_key_pem_len = strlen(cfg.public_key_pem);
    assert_int_equal(auth_new(&cfg, &a), MOM_ERR_INVALID);
    cfg.public_key_pem = k->ec384_pub;
    cfg.public_key_pem_len = strlen(k->ec384_pub);
    assert_int_equal(auth_new(&cfg, &a), MOM_ERR_INVALID);
    cfg.public_key_pem = k->rsa1024_pub;
    cfg.public_key_pem_len = strlen(k->rsa1024_pub);
    assert_int_equal(auth_new(&cfg, &a), MOM_ERR_INVALID);
    cfg.public_key_pem = k->rsa_priv; /* a private key is not a public key */
    cfg.public_key_pem_len = strlen(k->rsa_priv);
    assert_int_equal(auth_new(&cfg, &a), MOM_ERR_INVALID);

    cfg.public_key_pem = k->ec_pub;
    cfg.public_key_pem_len = strlen(k->ec_pub);
    assert_int_equal(auth_new(&cfg, &a), MOM_OK);
    auth_free(a);
    auth_free(NULL);
}

/* ---- HS256 ---- */

static void test_hs256_good(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    char c[512];
    char *tok = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"iat\":1700000000"));
    struct auth_identity id;
    memset(&id, 0xAA, sizeof id);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_string_equal(id.user, "alice");
    assert_false(id.admin);
    assert_int_equal(id.exp, NOW + 600);
    /* Same token again (cache hit) gives the same identity. */
    struct auth_identity id2;
    assert_int_equal(verify(a, tok, NOW + 1, &id2), MOM_OK);
    assert_memory_equal(&id, &id2, sizeof id);
    /* The length argument is honoured: a token that is not NUL-terminated. */
    char *padded = malloc(strlen(tok) + 5);
    memcpy(padded, tok, strlen(tok));
    memcpy(padded + strlen(tok), "XXXX", 5);
    assert_int_equal(auth_verify(a, padded, strlen(tok), NOW, &id2), MOM_OK);
    assert_int_equal(auth_verify(a, padded, strlen(tok) + 4, NOW, &id2), MOM_ERR_AUTH);
    free(padded);
    free(tok);
    auth_free(a);
}

static void test_exp_leeway(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    /* 31 s past exp: beyond the 30 s leeway. */
    char *late = sign_hs(claims(c, sizeof c, "alice", NOW - 31, ""));
    assert_int_equal(verify(a, late, NOW, &id), MOM_ERR_AUTH);
    /* Long expired. */
    char *old = sign_hs(claims(c, sizeof c, "alice", NOW - 100000, ""));
    assert_int_equal(verify(a, old, NOW, &id), MOM_ERR_AUTH);
    /* Expired 30 s ago and 1 s ago: within leeway. */
    char *edge = sign_hs(claims(c, sizeof c, "alice", NOW - 30, ""));
    assert_int_equal(verify(a, edge, NOW, &id), MOM_OK);
    char *just = sign_hs(claims(c, sizeof c, "alice", NOW - 1, ""));
    assert_int_equal(verify(a, just, NOW, &id), MOM_OK);
    assert_int_equal(id.exp, NOW - 1);
    free(late);
    free(old);
    free(edge);
    free(just);
    auth_free(a);
}

static void test_nbf(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    char *future = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"nbf\":1700000031"));
    assert_int_equal(verify(a, future, NOW, &id), MOM_ERR_AUTH);
    /* The failure was not cached: the same token is fine once nbf is near. */
    assert_int_equal(verify(a, future, NOW + 1, &id), MOM_OK);
    /* A cache hit still applies nbf for an earlier now. */
    assert_int_equal(verify(a, future, NOW, &id), MOM_ERR_AUTH);
    char *edge = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"nbf\":1700000030"));
    assert_int_equal(verify(a, edge, NOW, &id), MOM_OK);
    char *past = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"nbf\":1600000000"));
    assert_int_equal(verify(a, past, NOW, &id), MOM_OK);
    char *bad = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"nbf\":\"soon\""));
    assert_int_equal(verify(a, bad, NOW, &id), MOM_ERR_AUTH);
    free(future);
    free(edge);
    free(past);
    free(bad);
    auth_free(a);
}

static void test_exp_required_integer(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    const char *bad[] = {
        "{\"sub\":\"alice\"}",
        "{\"sub\":\"alice\",\"exp\":\"1700000600\"}",
        "{\"sub\":\"alice\",\"exp\":1700000600.5}",
        "{\"sub\":\"alice\",\"exp\":-5}",
        "{\"sub\":\"alice\",\"exp\":null}",
        "{\"sub\":\"alice\",\"exp\":1e300}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok = sign_hs(bad[i]);
        assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
        free(tok);
    }
    auth_free(a);
}

static void test_wrong_key(void **state)
{
    struct keys *k = *state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    claims(c, sizeof c, "alice", NOW + 600, "");
    const char *other = "another-secret-of-enough-length-0123456789";
    char *tok = sign(JWT_ALG_HS256, other, strlen(other), c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    /* A signature with one character changed. */
    tok = sign_hs(c);
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    /* HS384 with the right secret: not the pinned algorithm. */
    tok = sign(JWT_ALG_HS384, SECRET, strlen(SECRET), c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    auth_free(a);

    /* RS256 signed by another RSA key. */
    a = mk_auth(NULL, k->rsa_pub, NULL, NULL, NULL, NULL);
    tok = sign(JWT_ALG_RS256, k->rsa2_priv, strlen(k->rsa2_priv), c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    /* ES256 token against an RSA key. */
    tok = sign(JWT_ALG_ES256, k->ec_priv, strlen(k->ec_priv), c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    /* RS512 with the right RSA key: not the pinned algorithm. */
    tok = sign(JWT_ALG_RS512, k->rsa_priv, strlen(k->rsa_priv), c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    /* HS256 token while no secret is configured. */
    tok = sign_hs(c);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    auth_free(a);
}

static void test_alg_none(void **state)
{
    struct keys *k = *state;
    struct auth *hs = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth *rs = mk_auth(NULL, k->rsa_pub, NULL, NULL, NULL, NULL);
    struct auth *both = mk_auth(SECRET, k->rsa_pub, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512], tok[4096];
    claims(c, sizeof c, "alice", NOW + 600, ",\"roles\":[\"admin\"]");
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"none\"}",
                             "{\"alg\":\"None\"}", "{\"typ\":\"JWT\"}"};
    const char *sigs[] = {"", "c2lnbmF0dXJl", "AAAA"};
    for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
        for (size_t s = 0; s < sizeof sigs / sizeof sigs[0]; s++) {
            hand_token(tok, headers[h], c, sigs[s]);
            assert_int_equal(verify(hs, tok, NOW, &id), MOM_ERR_AUTH);
            assert_int_equal(verify(rs, tok, NOW, &id), MOM_ERR_AUTH);
            assert_int_equal(verify(both, tok, NOW, &id), MOM_ERR_AUTH);
        }
    }
    /* Sanity of the hand builder: with an HS256 header and a real HMAC it passes. */
    hand_hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, SECRET);
    assert_int_equal(verify(hs, tok, NOW, &id), MOM_OK);
    assert_true(id.admin);
    /* ...and the same token with its signature stripped is rejected. */
    *(strrchr(tok, '.') + 1) = '\0';
    assert_int_equal(verify(hs, tok, NOW, &id), MOM_ERR_AUTH);
    auth_free(hs);
    auth_free(rs);
    auth_free(both);
}

static void test_hs_rs_confusion(void **state)
{
    struct keys *k = *state;
    struct auth_identity id;
    char c[512];
    claims(c, sizeof c, "mallory", NOW + 600, ",\"roles\":[\"admin\"]");
    /* HS256 token whose HMAC secret is the exact public PEM bytes. */
    char *tok = sign(JWT_ALG_HS256, k->rsa_pub, strlen(k->rsa_pub), c);
    /* Premise (docs/architecture.md, "JWTs"): libjwt alone accepts it. */
    jwt_t *j = NULL;
    assert_int_equal(
        jwt_decode(&j, tok, (const unsigned char *)k->rsa_pub, (int)strlen(k->rsa_pub)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    jwt_free(j);

    struct auth *rs = mk_auth(NULL, k->rsa_pub, NULL, NULL, NULL, NULL);
    assert_int_equal(verify(rs, tok, NOW, &id), MOM_ERR_AUTH);
    struct auth *both = mk_auth(SECRET, k->rsa_pub, NULL, NULL, NULL, NULL);
    assert_int_equal(verify(both, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);

    /* Same with the EC key. */
    tok = sign(JWT_ALG_HS256, k->ec_pub, strlen(k->ec_pub), c);
    struct auth *es = mk_auth(NULL, k->ec_pub, NULL, NULL, NULL, NULL);
    assert_int_equal(verify(es, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);

    /* An RS256 header on a token HMAC-signed with the PEM bytes is rejected as well. */
    char t2[4096];
    hand_hs256(t2, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c, k->rsa_pub);
    assert_int_equal(verify(rs, t2, NOW, &id), MOM_ERR_AUTH);
    assert_int_equal(verify(both, t2, NOW, &id), MOM_ERR_AUTH);

    auth_free(rs);
    auth_free(both);
    auth_free(es);
}

/* ---- public keys ---- */

static void test_rs256_good(void **state)
{
    struct keys *k = *state;
    struct auth *a = mk_auth(NULL, k->rsa_pub, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    char *tok = sign(JWT_ALG_RS256, k->rsa_priv, strlen(k->rsa_priv),
                     claims(c, sizeof c, "svc.worker-1", NOW + 60, ",\"roles\":\"admin\""));
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_string_equal(id.user, "svc.worker-1");
    assert_true(id.admin);
    assert_int_equal(id.exp, NOW + 60);
    auth_free(a);

    /* With both keys configured, each token goes to its own key. */
    a = mk_auth(SECRET, k->rsa_pub, NULL, NULL, NULL, NULL);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    char *hs = sign_hs(claims(c, sizeof c, "bob", NOW + 60, ""));
    assert_int_equal(verify(a, hs, NOW, &id), MOM_OK);
    assert_string_equal(id.user, "bob");
    free(hs);
    free(tok);
    auth_free(a);
}

static void test_es256_good(void **state)
{
    struct keys *k = *state;
    struct auth *a = mk_auth(NULL, k->ec_pub, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    char *tok = sign(JWT_ALG_ES256, k->ec_priv, strlen(k->ec_priv),
                     claims(c, sizeof c, "carol", NOW + 60, ""));
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_string_equal(id.user, "carol");
    assert_false(id.admin);
    /* Signature tampering: a changed byte, a DER signature instead of raw R||S. */
    char *bad = strdup(tok);
    char *sig = strrchr(bad, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(a, bad, NOW, &id), MOM_ERR_AUTH);
    free(bad);
    {
        EVP_PKEY *pk = NULL;
        BIO *b = BIO_new_mem_buf(k->ec_priv, -1);
        pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(pk);
        char signing[1024], der_tok[2048], sigb[256];
        size_t slen = (size_t)(strrchr(tok, '.') - tok);
        memcpy(signing, tok, slen);
        signing[slen] = '\0';
        unsigned char der[128];
        size_t der_len = sizeof der;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
        assert_int_equal(EVP_DigestSign(ctx, der, &der_len, (unsigned char *)signing, slen), 1);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pk);
        b64url(der, der_len, sigb);
        snprintf(der_tok, sizeof der_tok, "%s.%s", signing, sigb);
        assert_int_equal(verify(a, der_tok, NOW, &id), MOM_ERR_AUTH);
    }
    /* RS256 token against an EC key. */
    char *rs = sign(JWT_ALG_RS256, k->rsa_priv, strlen(k->rsa_priv), c);
    assert_int_equal(verify(a, rs, NOW, &id), MOM_ERR_AUTH);
    free(rs);
    free(tok);
    auth_free(a);
}

/* ---- claims ---- */

static void test_iss_aud(void **state)
{
    (void)state;
    struct auth *plain = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth *strict = mk_auth(SECRET, NULL, "https://idp.example", "mom", NULL, NULL);
    struct auth_identity id;
    char c[512];
    struct {
        const char *extra;
        int plain_rc, strict_rc;
    } cases[] = {
        {"", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\"", MOM_OK, MOM_ERR_AUTH},
        {",\"aud\":\"mom\"", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":\"mom\"", MOM_OK, MOM_OK},
        {",\"iss\":\"https://evil.example\",\"aud\":\"mom\"", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":\"other\"", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"mom\"]", MOM_OK, MOM_OK},
        {",\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"y\"]", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":[]", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":[[\"mom\"]]", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":7", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":[\"https://idp.example\"],\"aud\":\"mom\"", MOM_OK, MOM_ERR_AUTH},
        {",\"iss\":\"https://idp.example\",\"aud\":\"MOM\"", MOM_OK, MOM_ERR_AUTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = sign_hs(claims(c, sizeof c, "alice", NOW + 600, cases[i].extra));
        assert_int_equal(verify(plain, tok, NOW, &id), cases[i].plain_rc);
        assert_int_equal(verify(strict, tok, NOW, &id), cases[i].strict_rc);
        free(tok);
    }
    /* aud only, no issuer configured. */
    struct auth *aud_only = mk_auth(SECRET, NULL, NULL, "mom", NULL, NULL);
    char *tok = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"aud\":[\"mom\"]"));
    assert_int_equal(verify(aud_only, tok, NOW, &id), MOM_OK);
    free(tok);
    auth_free(aud_only);
    auth_free(plain);
    auth_free(strict);
}

static void test_sub(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[1024], name[200];
    const char *bad[] = {
        "{\"exp\":1700000600}",
        "{\"sub\":\"\",\"exp\":1700000600}",
        "{\"sub\":\"a b\",\"exp\":1700000600}",
        "{\"sub\":\"a/b\",\"exp\":1700000600}",
        "{\"sub\":\"al\\u00e9\",\"exp\":1700000600}",
        "{\"sub\":42,\"exp\":1700000600}",
        "{\"sub\":[\"alice\"],\"exp\":1700000600}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok = sign_hs(bad[i]);
        assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
        free(tok);
    }
    memset(name, 'n', 128);
    name[128] = '\0';
    char *tok = sign_hs(claims(c, sizeof c, name, NOW + 600, ""));
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_string_equal(id.user, name);
    free(tok);
    name[128] = 'n';
    name[129] = '\0';
    tok = sign_hs(claims(c, sizeof c, name, NOW + 600, ""));
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    free(tok);
    auth_free(a);
}

static void test_roles_and_admin_users(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, " alice , bob,,\tdave ");
    struct auth *g = mk_auth(SECRET, NULL, NULL, NULL, "groups", NULL);
    struct auth_identity id;
    char c[512];
    struct {
        const char *sub, *extra;
        bool admin, g_admin;
    } cases[] = {
        {"erin", ",\"roles\":\"admin\"", true, false},
        {"erin", ",\"roles\":[\"reader\",\"admin\"]", true, false},
        {"erin", ",\"roles\":[\"reader\"]", false, false},
        {"erin", ",\"roles\":\"administrator\"", false, false},
        {"erin", ",\"roles\":\"Admin\"", false, false},
        {"erin", ",\"roles\":{\"admin\":true}", false, false},
        {"erin", ",\"roles\":true", false, false},
        {"erin", ",\"groups\":[\"admin\"]", false, true},
        {"erin", "", false, false},
        {"alice", "", true, false},
        {"bob", "", true, false},
        {"dave", "", true, false},
        {"carol", "", false, false},
        {"alic", "", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = sign_hs(claims(c, sizeof c, cases[i].sub, NOW + 600, cases[i].extra));
        assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
        assert_string_equal(id.user, cases[i].sub);
        if (id.admin != cases[i].admin)
            fail_msg("case %zu: admin=%d", i, id.admin);
        assert_int_equal(verify(g, tok, NOW, &id), MOM_OK);
        if (id.admin != cases[i].g_admin)
            fail_msg("case %zu: groups admin=%d", i, id.admin);
        free(tok);
    }
    assert_true(auth_is_admin_user(a, "alice"));
    assert_true(auth_is_admin_user(a, "bob"));
    assert_true(auth_is_admin_user(a, "dave"));
    assert_false(auth_is_admin_user(a, "carol"));
    assert_false(auth_is_admin_user(a, ""));
    assert_false(auth_is_admin_user(a, " alice"));
    assert_false(auth_is_admin_user(g, "alice"));
    auth_free(a);
    auth_free(g);
}

/* ---- malformed ---- */

static void test_malformed(void **state)
{
    struct keys *k = *state;
    struct auth *a = mk_auth(SECRET, k->rsa_pub, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512], tok[8192];
    claims(c, sizeof c, "alice", NOW + 600, "");
    char *good = sign_hs(c);
    const char *bad[] = {
        "",
        "garbage",
        ".",
        "..",
        "...",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.",
        "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e.x",     /* payload of 1 char: impossible base64 */
        "eyJhbGciOiJIUzI1NiJ9=.eyJ9.x", /* padding is not base64url */
        "eyJhbGciOiJIUzI1NiJ9.ey+J9.x", /* '+' is not base64url */
        " eyJhbGciOiJIUzI1NiJ9.eyJ9.x",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ9.x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(verify(a, bad[i], NOW, &id), MOM_ERR_AUTH);

    /* Header that is not JSON / not an object / has alg of the wrong type / crit. */
    const char *headers[] = {"not json", "[\"HS256\"]", "{\"alg\":256}", "\"HS256\"",
                             "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        hand_token(tok, headers[i], c, strrchr(good, '.') + 1);
        assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    }
    /* Good header and signature, payload swapped for non-JSON: signature fails. */
    hand_token(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "not json", strrchr(good, '.') + 1);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    /* Signed payload that is JSON but not an object, or not JSON at all. */
    const char *payloads[] = {"[1,2]", "\"alice\"", "{\"sub\":\"alice\",\"exp\":17",
                              "null",  "not json",  ""};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        hand_hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloads[i], SECRET);
        assert_int_equal(verify(a, tok, NOW, &id), MOM_ERR_AUTH);
    }
    /* The same builder with a good payload verifies (the loop above is meaningful). */
    hand_hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, SECRET);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    /* HS256 header without typ is fine too. */
    hand_hs256(tok, "{\"alg\":\"HS256\"}", c, SECRET);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);

    /* Embedded NUL inside the given length. */
    size_t n = strlen(good);
    memcpy(tok, good, n + 1);
    tok[n / 2] = '\0';
    assert_int_equal(auth_verify(a, tok, n, NOW, &id), MOM_ERR_AUTH);

    /* Huge: a valid-looking token far over the limit, and one just over 8 KiB. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[100] = '.';
    huge[big - 100] = '.';
    huge[big] = '\0';
    assert_int_equal(verify(a, huge, NOW, &id), MOM_ERR_AUTH);
    /* A signed token with a large claim (~9 KiB) is too large too. */
    char *bigclaims = malloc(8000);
    char *pad = malloc(7000);
    memset(pad, 'x', 6999);
    pad[6999] = '\0';
    snprintf(bigclaims, 8000, "{\"sub\":\"alice\",\"exp\":1700000600,\"pad\":\"%s\"}", pad);
    char *bigtok = sign_hs(bigclaims);
    assert_true(strlen(bigtok) > 8192);
    assert_int_equal(verify(a, bigtok, NOW, &id), MOM_ERR_AUTH);
    /* ...while one just under the limit verifies. */
    pad[5000] = '\0';
    snprintf(bigclaims, 8000, "{\"sub\":\"alice\",\"exp\":1700000600,\"pad\":\"%s\"}", pad);
    char *oktok = sign_hs(bigclaims);
    assert_true(strlen(oktok) < 8192);
    assert_int_equal(verify(a, oktok, NOW, &id), MOM_OK);
    free(oktok);
    free(bigtok);
    free(pad);
    free(bigclaims);
    free(huge);

    /* Random garbage and truncations of a good token never crash or pass. */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(auth_verify(a, good, cut, NOW, &id), MOM_ERR_AUTH);
    srand(7);
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(rand() % 300) + 1;
        for (size_t j = 0; j < len; j++)
            tok[j] = (char)(rand() % 255 + 1);
        if (i % 2)
            memcpy(tok, good, (len < n ? len : n) / 2); /* half a real prefix */
        assert_int_equal(auth_verify(a, tok, len, NOW, &id), MOM_ERR_AUTH);
    }
    assert_int_equal(auth_verify(a, NULL, 0, NOW, &id), MOM_ERR_AUTH);
    free(good);
    auth_free(a);
}

/* ---- cache ---- */

static void test_cache_rechecks_exp(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    char *tok = sign_hs(claims(c, sizeof c, "alice", NOW + 100, ""));
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_int_equal(verify(a, tok, NOW + 100, &id), MOM_OK);
    assert_int_equal(verify(a, tok, NOW + 130, &id), MOM_OK);        /* leeway */
    assert_int_equal(verify(a, tok, NOW + 131, &id), MOM_ERR_AUTH);  /* hit, expired */
    assert_int_equal(verify(a, tok, NOW + 5000, &id), MOM_ERR_AUTH); /* evicted, re-checked */
    /* Fill far beyond capacity: every token still verifies correctly. */
    char *toks[6000];
    for (int i = 0; i < 6000; i++) {
        char sub[32], extra[32];
        snprintf(sub, sizeof sub, "user%d", i);
        snprintf(extra, sizeof extra, ",\"n\":%d", i);
        toks[i] = sign_hs(claims(c, sizeof c, sub, NOW + 100 + (uint64_t)i, extra));
        assert_int_equal(verify(a, toks[i], NOW, &id), MOM_OK);
    }
    for (int i = 0; i < 6000; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "user%d", i);
        assert_int_equal(verify(a, toks[i], NOW + 1, &id), MOM_OK);
        assert_string_equal(id.user, sub);
        assert_int_equal(id.exp, NOW + 100 + (uint64_t)i);
        uint64_t later = NOW + 100 + (uint64_t)i + 31;
        assert_int_equal(verify(a, toks[i], later, &id), MOM_ERR_AUTH);
    }
    for (int i = 0; i < 6000; i++)
        free(toks[i]);
    free(tok);
    auth_free(a);
}

/* A connection's memo answers exactly as the verifier: the same token
 * re-checks only its time, another token (or a longer or shorter one with
 * the same start) is verified in full and replaces the memo only if good. */
static void test_memo(void **state)
{
    (void)state;
    struct auth *a = mk_auth(SECRET, NULL, NULL, NULL, NULL, "bob");
    struct auth_memo m = {0};
    struct auth_identity id, plain;
    char c[512];
    char *alice = sign_hs(claims(c, sizeof c, "alice", NOW + 100, ",\"nbf\":1700000050"));
    char *bob = sign_hs(claims(c, sizeof c, "bob", NOW + 600, ""));
    size_t alen = strlen(alice);
    /* nbf is 50 s ahead: beyond the 30 s leeway, so not yet */
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW, &id), MOM_ERR_AUTH);
    assert_null(m.token);
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW + 20, &id), MOM_OK);
    assert_non_null(m.token);
    assert_int_equal(auth_verify(a, alice, alen, NOW + 20, &plain), MOM_OK);
    assert_memory_equal(&id, &plain, sizeof id);
    assert_int_equal(m.nbf, NOW + 50);
    /* memo hits: time still checked both ways */
    memset(&id, 0, sizeof id);
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW + 130, &id), MOM_OK);
    assert_string_equal(id.user, "alice");
    assert_false(id.admin);
    assert_int_equal(id.exp, NOW + 100);
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW + 131, &id), MOM_ERR_AUTH);
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW + 19, &id), MOM_ERR_AUTH);
    /* a prefix or an extension of the memo's bytes is not the memo's token */
    assert_int_equal(auth_verify_memo(a, &m, alice, alen - 1, NOW + 20, &id), MOM_ERR_AUTH);
    char *longer = malloc(alen + 2);
    memcpy(longer, alice, alen);
    memcpy(longer + alen, "A", 2);
    assert_int_equal(auth_verify_memo(a, &m, longer, alen + 1, NOW + 20, &id), MOM_ERR_AUTH);
    assert_int_equal(m.len, alen); /* failures leave the memo as it was */
    assert_memory_equal(m.token, alice, alen);
    /* a flipped byte in the signature fails in full */
    longer[alen - 2] = longer[alen - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_verify_memo(a, &m, longer, alen, NOW + 20, &id), MOM_ERR_AUTH);
    /* another good token replaces it (admin from admin_users) */
    assert_int_equal(auth_verify_memo(a, &m, bob, strlen(bob), NOW, &id), MOM_OK);
    assert_string_equal(id.user, "bob");
    assert_true(id.admin);
    assert_int_equal(m.len, strlen(bob));
    assert_int_equal(m.nbf, 0);
    assert_int_equal(auth_verify_memo(a, &m, alice, alen, NOW + 20, &id), MOM_OK);
    assert_string_equal(id.user, "alice");
    /* without a memo it is auth_verify */
    assert_int_equal(auth_verify_memo(a, NULL, bob, strlen(bob), NOW, &id), MOM_OK);
    assert_int_equal(auth_verify_memo(a, &m, NULL, 0, NOW, &id), MOM_ERR_AUTH);
    auth_memo_cleanup(&m);
    assert_null(m.token);
    auth_memo_cleanup(&m);
    auth_memo_cleanup(NULL);
    free(longer);
    free(alice);
    free(bob);
    auth_free(a);
}

/* ---- issuing ---- */

static void test_issue_round_trip(void **state)
{
    struct keys *k = *state;
    struct auth_config cfg = {
        .hs256_secret = SECRET,
        .hs256_secret_len = strlen(SECRET),
        .public_key_pem = k->rsa_pub,
        .public_key_pem_len = strlen(k->rsa_pub),
        .issuer = "mom",
        .audience = "mom-clients",
        .admin_users = "root",
        .token_ttl_s = 900,
    };
    struct auth *a = NULL;
    assert_int_equal(auth_new(&cfg, &a), MOM_OK);
    struct auth_identity id;
    char *tok = NULL;
    uint64_t ttl = 0;
    assert_int_equal(auth_issue(a, "alice", false, NOW, &tok, &ttl), MOM_OK);
    assert_int_equal(ttl, 900);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_string_equal(id.user, "alice");
    assert_false(id.admin);
    assert_int_equal(id.exp, NOW + 900);
    assert_int_equal(verify(a, tok, NOW + 931, &id), MOM_ERR_AUTH);
    /* Claims as written: sub, iat, exp, iss, aud, alg HS256. */
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
    assert_string_equal(jwt_get_grant(j, "sub"), "alice");
    assert_string_equal(jwt_get_grant(j, "iss"), "mom");
    assert_string_equal(jwt_get_grant(j, "aud"), "mom-clients");
    assert_int_equal(jwt_get_grant_int(j, "iat"), (long)NOW);
    assert_int_equal(jwt_get_grant_int(j, "exp"), (long)(NOW + 900));
    char *roles = jwt_get_grants_json(j, "roles");
    assert_non_null(roles);
    assert_string_equal(roles, "[]");
    free(roles);
    jwt_free(j);
    free(tok);

    assert_int_equal(auth_issue(a, "alice", true, NOW, &tok, &ttl), MOM_OK);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_true(id.admin);
    j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    roles = jwt_get_grants_json(j, "roles");
    assert_string_equal(roles, "[\"admin\"]");
    free(roles);
    jwt_free(j);
    free(tok);

    /* admin_users makes an admin token even when admin=false. */
    assert_int_equal(auth_issue(a, "root", false, NOW, &tok, &ttl), MOM_OK);
    struct auth *plain = mk_auth(SECRET, NULL, "mom", "mom-clients", NULL, NULL);
    assert_int_equal(verify(plain, tok, NOW, &id), MOM_OK);
    assert_true(id.admin);
    auth_free(plain);
    free(tok);

    /* Bad user names. */
    assert_int_equal(auth_issue(a, "a b", false, NOW, &tok, &ttl), MOM_ERR_INVALID);
    assert_null(tok);
    assert_int_equal(auth_issue(a, "", false, NOW, &tok, &ttl), MOM_ERR_INVALID);
    auth_free(a);

    /* No HS256 secret: cannot issue. Default ttl is 3600. */
    a = mk_auth(NULL, k->ec_pub, NULL, NULL, NULL, NULL);
    assert_int_equal(auth_issue(a, "alice", false, NOW, &tok, &ttl), MOM_ERR_INVALID);
    auth_free(a);
    a = mk_auth(SECRET, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(auth_issue(a, "alice", false, NOW, &tok, &ttl), MOM_OK);
    assert_int_equal(ttl, 3600);
    assert_int_equal(verify(a, tok, NOW, &id), MOM_OK);
    assert_int_equal(id.exp, NOW + 3600);
    free(tok);
    auth_free(a);
}

/* ---- passwords ---- */

static void test_password(void **state)
{
    (void)state;
    char h1[160], h2[160];
    const char *pw = "correct horse battery staple";
    double t0 = now_sec();
    assert_int_equal(auth_password_hash(pw, strlen(pw), h1, sizeof h1), MOM_OK);
    double t1 = now_sec();
    printf("    password hash: %.2f ms (%s)\n", (t1 - t0) * 1e3, h1);
    assert_int_equal(strncmp(h1, "pbkdf2-sha256$", 14), 0);
    assert_int_equal(auth_password_hash(pw, strlen(pw), h2, sizeof h2), MOM_OK);
    assert_string_not_equal(h1, h2); /* random salt */

    assert_true(auth_password_verify(pw, strlen(pw), h1));
    assert_true(auth_password_verify(pw, strlen(pw), h2));
    assert_false(auth_password_verify("correct horse battery stapl", 27, h1));
    assert_false(auth_password_verify("Correct horse battery staple", strlen(pw), h1));
    assert_false(auth_password_verify("", 0, h1));
    /* Length is honoured: a prefix of the password does not match. */
    assert_false(auth_password_verify(pw, strlen(pw) - 1, h1));

    /* Tampering with any part of the stored string. */
    char t[200];
    size_t n = strlen(h1);
    for (size_t i = 0; i < n; i++) {
        memcpy(t, h1, n + 1);
        t[i] = t[i] == 'A' ? 'B' : (t[i] == '$' ? 'x' : 'A');
        if (strcmp(t, h1) == 0)
            continue;
        if (auth_password_verify(pw, strlen(pw), t))
            fail_msg("tampered byte %zu accepted: %s", i, t);
    }
    for (size_t cut = 0; cut < n; cut++) {
        memcpy(t, h1, cut);
        t[cut] = '\0';
        assert_false(auth_password_verify(pw, strlen(pw), t));
    }
    snprintf(t, sizeof t, "%sAAAA", h1);
    assert_false(auth_password_verify(pw, strlen(pw), t));
    /* Iteration count out of bounds, or changed. */
    const char *salt = strchr(h1 + 14, '$');
    snprintf(t, sizeof t, "pbkdf2-sha256$999999999%s", salt);
    assert_false(auth_password_verify(pw, strlen(pw), t));
    snprintf(t, sizeof t, "pbkdf2-sha256$1%s", salt);
    assert_false(auth_password_verify(pw, strlen(pw), t));
    snprintf(t, sizeof t, "pbkdf2-sha256$2000%s", salt);
    assert_false(auth_password_verify(pw, strlen(pw), t));
    assert_false(auth_password_verify(pw, strlen(pw), ""));
    assert_false(auth_password_verify(pw, strlen(pw), NULL));
    assert_false(auth_password_verify(pw, strlen(pw), "plain:correct horse battery staple"));

    /* A record with another iteration count (as written by a future setting) verifies:
     * the count is read from the string. Built with OpenSSL directly. */
    unsigned char s[16] = "0123456789abcdef", dk[32], sb[32], hb[48];
    PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), s, 16, 1234, EVP_sha256(), 32, dk);
    EVP_EncodeBlock(sb, s, 16);
    EVP_EncodeBlock(hb, dk, 32);
    snprintf(t, sizeof t, "pbkdf2-sha256$1234$%s$%s", (char *)sb, (char *)hb);
    assert_true(auth_password_verify(pw, strlen(pw), t));
    assert_false(auth_password_verify("nope", 4, t));
    /* Non-canonical base64 (unused low bits set) decodes to the same salt but
     * is refused: a record has exactly one spelling. */
    assert_string_equal((char *)sb, "MDEyMzQ1Njc4OWFiY2RlZg==");
    snprintf(t, sizeof t, "pbkdf2-sha256$1234$MDEyMzQ1Njc4OWFiY2RlZh==$%s", (char *)hb);
    assert_false(auth_password_verify(pw, strlen(pw), t));
    /* Whitespace or a newline inside the record is refused. */
    snprintf(t, sizeof t, "pbkdf2-sha256$1234$%s$%s\n", (char *)sb, (char *)hb);
    assert_false(auth_password_verify(pw, strlen(pw), t));

    /* Buffer too small. */
    char small[40];
    assert_int_equal(auth_password_hash(pw, strlen(pw), small, sizeof small), MOM_ERR_IO);
    /* Binary passwords with NUL bytes. */
    const char bin[] = {'a', '\0', 'b', 'c', 'd', 'e', 'f', 'g'};
    assert_int_equal(auth_password_hash(bin, sizeof bin, h1, sizeof h1), MOM_OK);
    assert_true(auth_password_verify(bin, sizeof bin, h1));
    assert_false(auth_password_verify(bin, 1, h1));
}

/* ---- cost measurements (printed; bounds are loose so sanitizer builds pass) ---- */

static void test_measure(void **state)
{
    struct keys *k = *state;
    struct auth *a = mk_auth(SECRET, k->rsa_pub, NULL, NULL, NULL, NULL);
    struct auth_identity id;
    char c[512];
    char *tok = sign_hs(claims(c, sizeof c, "alice", NOW + 600, ",\"roles\":[\"reader\"]"));
    printf("    token length: %zu bytes\n", strlen(tok));
    size_t len = strlen(tok);
    assert_int_equal(auth_verify(a, tok, len, NOW, &id), MOM_OK);
    int n = 200000;
    double t0 = now_sec();
    for (int i = 0; i < n; i++)
        assert_int_equal(auth_verify(a, tok, len, NOW, &id), MOM_OK);
    double hit_us = (now_sec() - t0) / n * 1e6;
    printf("    cache hit: %.3f us/verify\n", hit_us);

    enum { M = 2000 };
    char **hs = malloc(M * sizeof *hs);
    char **rs = malloc(200 * sizeof *rs);
    for (int i = 0; i < M; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, ",\"roles\":[\"reader\"],\"n\":%d", i);
        hs[i] = sign_hs(claims(c, sizeof c, "alice", NOW + 600, extra));
    }
    for (int i = 0; i < 200; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, ",\"n\":%d", i);
        rs[i] = sign(JWT_ALG_RS256, k->rsa_priv, strlen(k->rsa_priv),
                     claims(c, sizeof c, "alice", NOW + 600, extra));
    }
    t0 = now_sec();
    for (int i = 0; i < M; i++)
        assert_int_equal(verify(a, hs[i], NOW, &id), MOM_OK);
    double miss_hs_us = (now_sec() - t0) / M * 1e6;
    t0 = now_sec();
    for (int i = 0; i < 200; i++)
        assert_int_equal(verify(a, rs[i], NOW, &id), MOM_OK);
    double miss_rs_us = (now_sec() - t0) / 200 * 1e6;
    /* Forged RS256 signatures: rejected before libjwt re-parses the PEM. */
    for (int i = 0; i < 200; i++) {
        char *sig = strrchr(rs[i], '.') + 1;
        sig[5] = sig[5] == 'A' ? 'B' : 'A';
    }
    t0 = now_sec();
    for (int i = 0; i < 200; i++)
        assert_int_equal(verify(a, rs[i], NOW, &id), MOM_ERR_AUTH);
    double forged_rs_us = (now_sec() - t0) / 200 * 1e6;
    struct auth *e = mk_auth(NULL, k->ec_pub, NULL, NULL, NULL, NULL);
    char *es[200];
    for (int i = 0; i < 200; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, ",\"n\":%d", i);
        es[i] = sign(JWT_ALG_ES256, k->ec_priv, strlen(k->ec_priv),
                     claims(c, sizeof c, "alice", NOW + 600, extra));
    }
    t0 = now_sec();
    for (int i = 0; i < 200; i++)
        assert_int_equal(verify(e, es[i], NOW, &id), MOM_OK);
    double miss_es_us = (now_sec() - t0) / 200 * 1e6;
    for (int i = 0; i < 200; i++)
        free(es[i]);
    auth_free(e);
    printf("    cache miss: HS256 %.2f us, RS256 %.2f us, ES256 %.2f us per verify\n", miss_hs_us,
           miss_rs_us, miss_es_us);
    printf("    forged RS256 signature rejected in %.2f us\n", forged_rs_us);
    assert_true(hit_us < miss_hs_us);
    for (int i = 0; i < M; i++)
        free(hs[i]);
    for (int i = 0; i < 200; i++)
        free(rs[i]);
    free(hs);
    free(rs);
    free(tok);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_requires_valid_key),
        cmocka_unit_test(test_hs256_good),
        cmocka_unit_test(test_exp_leeway),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_exp_required_integer),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs_rs_confusion),
        cmocka_unit_test(test_rs256_good),
        cmocka_unit_test(test_es256_good),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_roles_and_admin_users),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_cache_rechecks_exp),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_issue_round_trip),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_measure),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
