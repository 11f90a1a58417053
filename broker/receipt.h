/* Receipts: the unforgeable name of one live lease. A receipt is
 * "<incarnation>.<seq>.<delivery_count>.<mac>": the queue's incarnation, the
 * message's seq and its delivery count in lowercase hex without leading
 * zeros, then a MAC in unpadded base64url (22 characters, 128 bits of
 * HMAC-SHA256) over the queue name and those three numbers under the
 * cluster's receipt key. The same key on every node lets any node check a
 * receipt another node issued; the delivery count makes each lease's
 * receipt different, so a receipt of an ended lease stays dead.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_RECEIPT_H
#define MOM_BROKER_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECEIPT_KEY_LEN 32
#define RECEIPT_MAC_CHARS 22
/* 3 numbers of at most 16 hex digits, 3 dots, the MAC and a NUL */
#define RECEIPT_MAX (3 * 16 + 3 + RECEIPT_MAC_CHARS + 1)
/* The lease part alone ("<incarnation>.<seq>.<delivery_count>") and a NUL */
#define RECEIPT_LEASE_MAX (3 * 16 + 2 + 1)

struct receipt_key {
    uint8_t bytes[RECEIPT_KEY_LEN];
};

struct receipt_lease {
    uint64_t incarnation, seq, delivery_count;
};

/* A receipt key keyed into HMAC-SHA256 once: the SHA-256 states after the
 * key's inner and outer pads, copied for each MAC instead of hashing the key
 * again (OpenSSL's one-shot HMAC() fetches the digest, allocates and hashes
 * both pads on every call). It also holds the context each MAC is computed
 * in, so one signer serves one thread at a time. */
struct receipt_signer;

/* A signer of key (which it copies). NULL when out of memory or OpenSSL
 * failed. */
struct receipt_signer *receipt_signer_new(const struct receipt_key *key);
/* Frees the signer, its states wiped. Accepts NULL. */
void receipt_signer_free(struct receipt_signer *sg);

/* The key of a cluster: HMAC-SHA256 of a fixed label under the cluster
 * secret, so every node that shares the secret derives the same key.
 * Returns MOM_OK or MOM_ERR_INVALID (empty secret, OpenSSL failure). */
int receipt_key_derive(const char *secret, size_t len, struct receipt_key *out);

/* The key of a node without a cluster secret: DIR/receipt-key, 64 hex
 * digits and a newline, mode 0600, created with random bytes on first use.
 * Returns MOM_OK (*created says which), MOM_ERR_CORRUPT (the file is not 64
 * hex digits), MOM_ERR_IO / MOM_ERR_NOSPACE / MOM_ERR_TOO_LARGE. */
int receipt_key_load_or_create(const char *data_dir, struct receipt_key *out, bool *created);

/* Writes the receipt of lease l of queue under the signer's key into out (RECEIPT_MAX bytes,
 * NUL-terminated); returns its length. */
size_t receipt_make(struct receipt_signer *sg, const char *queue, const struct receipt_lease *l,
                    char out[RECEIPT_MAX]);

/* Splits the len bytes at s into the lease numbers and the MAC text
 * (*mac, RECEIPT_MAC_CHARS bytes inside s). Only the canonical spelling
 * receipt_make writes is accepted. Returns true or false (malformed).
 * Pure: it checks no MAC. */
bool receipt_parse(const char *s, size_t len, struct receipt_lease *l, const char **mac);

/* Whether the len bytes at s are a receipt the signer's key issued for
 * queue; on true *out holds the lease it names. The MAC is compared in
 * constant time. */
bool receipt_verify(struct receipt_signer *sg, const char *queue, const char *s, size_t len,
                    struct receipt_lease *out);

/* Writes "<incarnation>.<seq>.<delivery_count>" (what a Command carries)
 * into out (RECEIPT_LEASE_MAX bytes); returns its length. */
size_t receipt_lease_text(const struct receipt_lease *l, char out[RECEIPT_LEASE_MAX]);

#endif
