/* libFuzzer harness for the peer tokens (replication/peer_token) and the
 * shared JWT verifier under them (broker/jws, wired in as node_token_ops by
 * broker/cluster_token as in momd): arbitrary bytes never verify;
 * a header and claims taken from the input and correctly HMAC-signed with
 * the cluster secret reach the header and claims parsers, and verify only
 * when they say HS256, aud "mom-peer", an exp ahead and sub "node:<id>"; a
 * token signed with the input as secret verifies to its node inside its
 * lifetime only.
 * SPDX-License-Identifier: MIT */
#include "broker/cluster_token.h"
#include "common/err.h"
#include "replication/peer_token.h"
#include "test/fuzz/b64url.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* header '\n' claims, both from the input, signed with SECRET. */
static void signed_from_input(const struct node_token_ops *key, const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || size > 600)
        return;
    size_t hlen = (size_t)(nl - data), clen = size - hlen - 1;
    char tok[PEER_TOKEN_MAX * 2];
    size_t o = b64url(data, hlen, tok);
    tok[o++] = '.';
    o += b64url(nl + 1, clen, tok + o);
    unsigned char mac[32];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, o, mac, &mlen);
    tok[o++] = '.';
    o += b64url(mac, mlen, tok + o);
    struct peer_token_claims c;
    const char *why = NULL;
    if (peer_token_verify(key, tok, o, 1000, &c, &why) == MOM_OK) {
        if (c.node_id == 0 || c.exp < 1000 || !memmem(data, hlen, "HS256", 5) ||
            !memmem(nl + 1, clen, "mom-peer", 8) || !memmem(nl + 1, clen, "node:", 5))
            abort();
    } else if (!why) {
        abort(); /* every refusal has a reason */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct node_token_ops ops;
    const struct node_token_ops *key = &ops;
    if (!ops.verify && cluster_token_init(SECRET, &ops) != MOM_OK)
        abort();
    if (size > 4096)
        return 0;
    struct peer_token_claims c;
    const char *why = NULL;
    if (peer_token_verify(key, (const char *)data, size, 1000, &c, &why) == MOM_OK)
        abort(); /* nobody can forge a signature */
    signed_from_input(key, data, size);

    if (size > 0 && size < 200 && !memchr(data, '\0', size)) {
        char *text = malloc(size + 1);
        memcpy(text, data, size);
        text[size] = '\0';
        struct node_token_ops k2;
        char tok[PEER_TOKEN_MAX];
        uint32_t id = (uint32_t)data[0] + 1;
        if (cluster_token_init(text, &k2) == MOM_OK &&
            peer_token_sign(&k2, id, 1000, 60, tok, sizeof tok) > 0 &&
            (peer_token_verify(&k2, tok, strlen(tok), 1010, &c, &why) != MOM_OK ||
             c.node_id != id || peer_token_verify(&k2, tok, strlen(tok), 1061, &c, &why) == MOM_OK))
            abort(); /* valid inside its lifetime only */
        cluster_token_free(&k2);
        free(text);
    }
    return 0;
}
