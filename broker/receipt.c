/* Making and checking receipts (format in receipt.h), and the receipt key:
 * derived from the cluster secret, or a random one kept in the data dir by
 * a node without a cluster secret. The store writes receipts into receive
 * answers; the ack, nack and extend handlers check them before anything is
 * proposed, and the Command carries only the lease numbers, so applying a
 * Command never needs the key. A signer (receipt.h) owns its three OpenSSL
 * digest contexts; nothing else here is on the heap.
 * SPDX-License-Identifier: MIT */
#include "broker/receipt.h"

#include "common/err.h"
#include "common/fsutil.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LABEL "mom receipt key v1"
#define MAC_LABEL "mom receipt v1"
#define MAC_BYTES 16
#define MAX_QUEUE_NAME 256 /* names are at most 128 bytes */
#define SHA256_BLOCK 64
#define SHA256_BYTES 32

struct receipt_signer {
    EVP_MD_CTX *inner; /* SHA-256 after (key ^ ipad): never written after new */
    EVP_MD_CTX *outer; /* SHA-256 after (key ^ opad): never written after new */
    EVP_MD_CTX *work;  /* a copy of one of them, finished by each MAC */
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hexdig[] = "0123456789abcdef";

int receipt_key_derive(const char *secret, size_t len, struct receipt_key *out)
{
    unsigned int n = 0;
    if (!secret || len == 0 || len > 1 << 20 ||
        !HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)KEY_LABEL,
              sizeof KEY_LABEL - 1, out->bytes, &n) ||
        n != RECEIPT_KEY_LEN)
        return MOM_ERR_INVALID;
    return MOM_OK;
}

/* A lowercase hex digit's value, else -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Whether c is in the base64url alphabet (b64url). */
static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int receipt_key_load_or_create(const char *data_dir, struct receipt_key *out, bool *created)
{
    char path[1100];
    if (snprintf(path, sizeof path, "%s/receipt-key", data_dir) >= (int)sizeof path)
        return MOM_ERR_TOO_LARGE;
    *created = false;
    char text[2 * RECEIPT_KEY_LEN + 2]; /* the digits, '\n' and one byte too many */
    const size_t want = 2 * RECEIPT_KEY_LEN + 1;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        if (n != want || text[2 * RECEIPT_KEY_LEN] != '\n')
            return MOM_ERR_CORRUPT;
        for (size_t i = 0; i < RECEIPT_KEY_LEN; i++) {
            int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
            if (hi < 0 || lo < 0)
                return MOM_ERR_CORRUPT;
            out->bytes[i] = (uint8_t)(hi << 4 | lo);
        }
        return MOM_OK;
    }
    if (errno != ENOENT)
        return mom_err_from_errno(errno);
    if (RAND_bytes(out->bytes, RECEIPT_KEY_LEN) != 1)
        return MOM_ERR_IO;
    for (size_t i = 0; i < RECEIPT_KEY_LEN; i++) {
        text[2 * i] = hexdig[out->bytes[i] >> 4];
        text[2 * i + 1] = hexdig[out->bytes[i] & 15];
    }
    text[2 * RECEIPT_KEY_LEN] = '\n';
    int rc = fs_write_private(path, text, want);
    if (rc == MOM_OK)
        *created = true;
    return rc;
}

void receipt_signer_free(struct receipt_signer *sg)
{
    if (!sg)
        return;
    EVP_MD_CTX_free(sg->inner); /* frees wipe the digest states */
    EVP_MD_CTX_free(sg->outer);
    EVP_MD_CTX_free(sg->work);
    free(sg);
}

/* ctx := SHA-256 after one block of (key zero-padded to 64 bytes) ^ pad. */
static bool start_pad(EVP_MD_CTX *ctx, const struct receipt_key *key, uint8_t pad)
{
    uint8_t block[SHA256_BLOCK];
    memset(block, pad, sizeof block);
    for (size_t i = 0; i < RECEIPT_KEY_LEN; i++)
        block[i] ^= key->bytes[i];
    bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, block, sizeof block) == 1;
    OPENSSL_cleanse(block, sizeof block);
    return ok;
}

struct receipt_signer *receipt_signer_new(const struct receipt_key *key)
{
    /* HMAC (RFC 2104) with a key no longer than the block: H((K ^ opad) ||
     * H((K ^ ipad) || m)); the two pad blocks are hashed here, once. */
    _Static_assert(RECEIPT_KEY_LEN <= SHA256_BLOCK, "the key fits one block");
    struct receipt_signer *sg = calloc(1, sizeof *sg);
    if (!sg)
        return NULL;
    sg->inner = EVP_MD_CTX_new();
    sg->outer = EVP_MD_CTX_new();
    sg->work = EVP_MD_CTX_new();
    if (!sg->inner || !sg->outer || !sg->work || !start_pad(sg->inner, key, 0x36) ||
        !start_pad(sg->outer, key, 0x5c)) {
        receipt_signer_free(sg);
        return NULL;
    }
    return sg;
}

/* out := HMAC-SHA256 of the n bytes at msg under the signer's key. */
static bool hmac_sha256(struct receipt_signer *sg, const uint8_t *msg, size_t n,
                        uint8_t out[SHA256_BYTES])
{
    unsigned int len = 0;
    return EVP_MD_CTX_copy_ex(sg->work, sg->inner) == 1 &&
           EVP_DigestUpdate(sg->work, msg, n) == 1 &&
           EVP_DigestFinal_ex(sg->work, out, &len) == 1 && len == SHA256_BYTES &&
           EVP_MD_CTX_copy_ex(sg->work, sg->outer) == 1 &&
           EVP_DigestUpdate(sg->work, out, SHA256_BYTES) == 1 &&
           EVP_DigestFinal_ex(sg->work, out, &len) == 1 && len == SHA256_BYTES;
}

static size_t put_hex(char *out, uint64_t v)
{
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = hexdig[v & 15];
        v >>= 4;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The MAC text of lease l of queue: base64url of the first 16 bytes of
 * HMAC-SHA256(key, label NUL queue NUL be64(incarnation, seq, count)).
 * Returns false when there is none (a queue name longer than any valid
 * one, or OpenSSL failed): such a lease gets no receipt that verifies. */
static bool mac_text(struct receipt_signer *sg, const char *queue, const struct receipt_lease *l,
                     char out[RECEIPT_MAC_CHARS])
{
    uint8_t msg[sizeof MAC_LABEL + MAX_QUEUE_NAME + 1 + 24];
    size_t qlen = strlen(queue);
    if (qlen > MAX_QUEUE_NAME)
        return false;
    size_t n = 0;
    memcpy(msg, MAC_LABEL, sizeof MAC_LABEL); /* with its NUL */
    n += sizeof MAC_LABEL;
    memcpy(msg + n, queue, qlen);
    n += qlen;
    msg[n++] = 0;
    put_be64(msg + n, l->incarnation);
    put_be64(msg + n + 8, l->seq);
    put_be64(msg + n + 16, l->delivery_count);
    n += 24;
    uint8_t mac[SHA256_BYTES];
    if (!hmac_sha256(sg, msg, n, mac))
        return false;
    /* 16 bytes: five 3-byte groups (20 characters) and one byte (2) */
    size_t o = 0;
    for (size_t i = 0; i + 3 <= MAC_BYTES; i += 3) {
        uint32_t v = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 | mac[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    out[o++] = b64url[mac[MAC_BYTES - 1] >> 2];
    out[o] = b64url[(mac[MAC_BYTES - 1] & 3) << 4];
    return true;
}

size_t receipt_lease_text(const struct receipt_lease *l, char out[RECEIPT_LEASE_MAX])
{
    size_t n = put_hex(out, l->incarnation);
    out[n++] = '.';
    n += put_hex(out + n, l->seq);
    out[n++] = '.';
    n += put_hex(out + n, l->delivery_count);
    out[n] = '\0';
    return n;
}

size_t receipt_make(struct receipt_signer *sg, const char *queue, const struct receipt_lease *l,
                    char out[RECEIPT_MAX])
{
    size_t n = receipt_lease_text(l, out);
    out[n++] = '.';
    /* without a MAC the receipt ends in '!', which never parses */
    if (!mac_text(sg, queue, l, out + n))
        memset(out + n, '!', RECEIPT_MAC_CHARS);
    n += RECEIPT_MAC_CHARS;
    out[n] = '\0';
    return n;
}

/* One canonical hex number (1..16 digits, no leading zero) ending at a '.'. */
static bool parse_hex(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;
    while (s < end && *s != '.') {
        int d = hexval(*s);
        if (d < 0 || n == 16 || (n == 1 && v == 0))
            return false;
        v = v << 4 | (uint64_t)d;
        s++, n++;
    }
    if (n == 0 || s == end)
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

bool receipt_parse(const char *s, size_t len, struct receipt_lease *l, const char **mac)
{
    if (!s || len >= RECEIPT_MAX)
        return false;
    const char *p = s, *end = s + len;
    struct receipt_lease v;
    if (!parse_hex(&p, end, &v.incarnation) || !parse_hex(&p, end, &v.seq) ||
        !parse_hex(&p, end, &v.delivery_count) || end - p != RECEIPT_MAC_CHARS)
        return false;
    for (const char *c = p; c < end; c++)
        if (!is_b64url(*c))
            return false;
    *l = v;
    *mac = p;
    return true;
}

bool receipt_verify(struct receipt_signer *sg, const char *queue, const char *s, size_t len,
                    struct receipt_lease *out)
{
    struct receipt_lease l;
    const char *mac;
    if (!receipt_parse(s, len, &l, &mac))
        return false;
    char want[RECEIPT_MAC_CHARS];
    if (!mac_text(sg, queue, &l, want))
        return false;
    if (CRYPTO_memcmp(want, mac, RECEIPT_MAC_CHARS) != 0)
        return false;
    *out = l;
    return true;
}
