/* The struct node_token_ops the broker hands node_open_cluster for the peer
 * tokens: HS256 signing and verifying with the cluster secret on the shared
 * hardened verifier (broker/jws.c), the code that also checks client tokens.
 * replication/peer_token.c applies the peer rules on top.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_CLUSTER_TOKEN_H
#define MOM_BROKER_CLUSTER_TOKEN_H

#include "replication/node.h"

/* Fills *ops for secret (NUL-terminated, non-empty; copied): ops->arg is a
 * key that cluster_token_free frees. Returns MOM_OK, MOM_ERR_INVALID (NULL
 * or empty secret; *ops zeroed) or MOM_ERR_NOMEM. */
int cluster_token_init(const char *secret, struct node_token_ops *ops);
/* Wipes and frees the key and zeroes *ops. Accepts zeroed ops. */
void cluster_token_free(struct node_token_ops *ops);

#endif
