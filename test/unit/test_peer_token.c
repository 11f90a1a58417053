/* Unit tests for replication/peer_token on the shared verifier broker/jws,
 * wired in as node_token_ops by broker/cluster_token exactly as momd does:
 * a signed token verifies to its node inside its lifetime, with iat and exp
 * reported; expired, wrong secret, wrong or missing audience, a subject that
 * is not "node:<id>", a missing, stale or future iat, alg none, HS512 and
 * a header with crit are refused with a reason; nbf allows 5 s of skew; oversized input is refused
 * unread. SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/cluster_token.h"
#include "common/err.h"
#include "replication/peer_token.h"

#define NOW 1700000000ull
#define SECRET "cluster-secret-0123456789abcdef-0123"

/* Signs claims_json with libjwt (alg HS256 unless told otherwise). */
static char *sign(jwt_alg_t alg, const char *secret, const char *claims_json)
{
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims_json), 0);
    if (alg != JWT_ALG_NONE)
        assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)secret, (int)strlen(secret)),
                         0);
    char *tok = jwt_encode_str(j);
    assert_non_null(tok);
    jwt_free(j);
    return tok;
}

static int verify(const struct node_token_ops *k, const char *tok, uint64_t now,
                  struct peer_token_claims *c, const char **why)
{
    return peer_token_verify(k, tok, strlen(tok), now, c, why);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct node_token_ops ops;
    const struct node_token_ops *k = &ops;
    assert_int_equal(cluster_token_init(SECRET, &ops), MOM_OK);
    char tok[PEER_TOKEN_MAX];
    int n = peer_token_sign(k, 7, NOW, PEER_TOKEN_TTL_S, tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(tok));
    struct peer_token_claims c;
    const char *why = "unset";
    assert_int_equal(verify(k, tok, NOW + 1, &c, &why), MOM_OK);
    assert_null(why);
    assert_int_equal(c.node_id, 7);
    assert_int_equal(c.iat, NOW);
    assert_int_equal(c.exp, NOW + PEER_TOKEN_TTL_S);
    /* valid through its exp second, refused after it (no leeway for peers) */
    assert_int_equal(verify(k, tok, NOW + PEER_TOKEN_TTL_S, &c, &why), MOM_OK);
    assert_int_equal(verify(k, tok, NOW + PEER_TOKEN_TTL_S + 1, &c, &why), MOM_ERR_AUTH);
    assert_string_equal(why, "expired");
    /* too small a buffer */
    char small[16];
    assert_int_equal(peer_token_sign(k, 7, NOW, 60, small, sizeof small), MOM_ERR_TOO_LARGE);
    cluster_token_free(&ops);
    assert_null(ops.arg);
    assert_int_equal(cluster_token_init("", &ops), MOM_ERR_INVALID);
    assert_null(ops.verify);
    /* no ops: nothing is signed, everything is refused */
    assert_int_equal(peer_token_sign(NULL, 7, NOW, 60, tok, sizeof tok), MOM_ERR_INVALID);
    assert_int_equal(peer_token_sign(&ops, 7, NOW, 60, tok, sizeof tok), MOM_ERR_INVALID);
    assert_int_equal(verify(&ops, "x.y.z", NOW, &c, &why), MOM_ERR_AUTH);
}

static void test_refusals(void **state)
{
    (void)state;
    struct node_token_ops ops;
    const struct node_token_ops *k = &ops;
    assert_int_equal(cluster_token_init(SECRET, &ops), MOM_OK);
    char claims[256];
    snprintf(claims, sizeof claims, "{\"sub\":\"node:2\",\"aud\":\"mom-peer\",\"exp\":%llu}",
             (unsigned long long)(NOW + 60));
    struct {
        jwt_alg_t alg;
        const char *secret;
        const char *claims;
        const char *why;
    } cases[] = {
        {JWT_ALG_HS256, "another-secret-0123456789abcdef-0123", claims, "bad signature"},
        {JWT_ALG_HS512, SECRET, claims, "header alg unusable with the configured keys"},
        {JWT_ALG_NONE, SECRET, claims, "malformed token"},
        {JWT_ALG_HS256, SECRET, "{\"sub\":\"node:2\",\"aud\":\"mom-peer\"}",
         "exp missing or not an integer"},
        {JWT_ALG_HS256, SECRET, "{\"sub\":\"node:2\",\"aud\":\"other\",\"exp\":1800000000}",
         "wrong aud"},
        {JWT_ALG_HS256, SECRET, "{\"sub\":\"node:2\",\"exp\":1800000000}", "wrong aud"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1700000000,\"sub\":\"alice\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "sub is not node:<id>"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1700000000,\"sub\":\"node:0\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "sub is not node:<id>"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1700000000,\"sub\":\"node:2147483648\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "sub is not node:<id>"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1700000000,\"sub\":\"node:2\",\"aud\":\"mom-peer\",\"exp\":1800000000,\"nbf\":"
         "1700000006}",
         "not yet valid (nbf)"},
        {JWT_ALG_HS256, SECRET, "{\"sub\":\"node:2\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "iat missing"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1699999000,\"sub\":\"node:2\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "token too old (iat)"},
        {JWT_ALG_HS256, SECRET,
         "{\"iat\":1700000010,\"sub\":\"node:2\",\"aud\":\"mom-peer\",\"exp\":1800000000}",
         "iat in the future"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = sign(cases[i].alg, cases[i].secret, cases[i].claims);
        struct peer_token_claims c;
        const char *why = NULL;
        assert_int_equal(verify(k, tok, NOW, &c, &why), MOM_ERR_AUTH);
        assert_non_null(why);
        assert_string_equal(why, cases[i].why);
        free(tok);
    }
    /* nbf within the 5 s of skew, and an aud list holding mom-peer, pass */
    char *tok = sign(
        JWT_ALG_HS256, SECRET,
        "{\"iat\":1700000000,\"sub\":\"node:3\",\"aud\":[\"x\",\"mom-peer\"],\"exp\":1800000000,"
        "\"nbf\":1700000005}");
    struct peer_token_claims c;
    const char *why = NULL;
    assert_int_equal(verify(k, tok, NOW, &c, &why), MOM_OK);
    assert_int_equal(c.node_id, 3);
    free(tok);
    /* a crit header is refused, oversized and garbage input too */
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_add_header(j, "crit", "exp"), 0);
    assert_int_equal(
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    assert_int_equal(verify(k, tok, NOW, &c, &why), MOM_ERR_AUTH);
    free(tok);
    static char big[PEER_TOKEN_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    assert_int_equal(verify(k, big, NOW, &c, &why), MOM_ERR_AUTH);
    assert_int_equal(verify(k, "x.y.z", NOW, &c, &why), MOM_ERR_AUTH);
    assert_int_equal(verify(NULL, "x.y.z", NOW, &c, &why), MOM_ERR_AUTH);
    cluster_token_free(&ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
