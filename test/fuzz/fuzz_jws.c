/* libFuzzer harness for the JWT parsing that needs no key (broker/jws): the
 * segment split and JOSE header read that run before any signature check
 * (jws_parse), and the claims check (jws_check_claims) fed the input both
 * as a raw claims segment and base64url-encoded, so the JSON parser behind
 * it sees arbitrary documents. Checks that accepted parts tile the token,
 * that accepted claims obey the rules (exp present and not past, nbf not in
 * the future, iss and aud as required, sub bounded), and that the whole
 * verifier never crashes on the same bytes.
 * SPDX-License-Identifier: MIT */
#include "broker/jws.h"
#include "common/err.h"
#include "test/fuzz/b64url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000u
#define LEEWAY 30u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parts(const char *tok, size_t len)
{
    struct jws_parts p;
    if (jws_parse(tok, len, &p) != MOM_OK) {
        if (p.alg != JWS_ALG_UNUSABLE)
            abort();
        return;
    }
    if (p.alg != JWS_ALG_HS256 && p.alg != JWS_ALG_RS256 && p.alg != JWS_ALG_ES256)
        abort();
    if (!p.header_len || !p.payload_len || !p.sig_len)
        abort();
    if (p.payload != tok + p.header_len + 1 || p.sig != p.payload + p.payload_len + 1 ||
        p.signed_len != p.header_len + 1 + p.payload_len ||
        p.header_len + p.payload_len + p.sig_len + 2 != len)
        abort();
    if (tok[p.header_len] != '.' || tok[p.signed_len] != '.' || memchr(p.sig, '.', p.sig_len))
        abort();
}

static void check_claims(const char *payload, size_t len, const struct jws_rules *r)
{
    struct jws_claims c;
    const char *why = NULL;
    int rc = jws_check_claims(r, payload, len, NOW, &c, &why);
    if (rc == MOM_ERR_AUTH) {
        if (!why)
            abort();
        return;
    }
    if (rc != MOM_OK)
        return; /* out of memory */
    if (why || NOW > c.exp + LEEWAY || c.nbf > NOW + LEEWAY)
        abort();
    if (strnlen(c.sub, sizeof c.sub) > JWS_SUB_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > JWS_MAX_TOKEN)
        return 0;
    const char *tok = (const char *)data;
    check_parts(tok, size);

    struct jws_rules plain = {.exp_leeway_s = LEEWAY, .nbf_leeway_s = LEEWAY};
    struct jws_rules strict = {.issuer = "mom-test",
                               .audience = "mom",
                               .role_claim = "roles",
                               .role = "admin",
                               .exp_leeway_s = LEEWAY,
                               .nbf_leeway_s = LEEWAY};
    check_claims(tok, size, &plain);
    char *enc = malloc(size / 3 * 4 + 4);
    if (!enc)
        return 0;
    size_t n = b64url(data, size, enc);
    check_claims(enc, n, &plain);
    check_claims(enc, n, &strict);
    free(enc);

    /* The whole verifier on the raw bytes, with an HS256 key. */
    static struct jws_key *key;
    if (!key && jws_key_new("fuzz-secret", 11, NULL, 0, &key) != MOM_OK)
        abort();
    struct jws_claims c;
    const char *why;
    (void)jws_verify(key, &strict, tok, size, NOW, &c, &why);
    return 0;
}
