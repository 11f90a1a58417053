/* The broker's side of the peer channel: builds the replication/peer from
 * the node configuration (MOM_PEERS, MOM_NODE_ID, MOM_PEER_ADDR,
 * MOM_CLUSTER_SECRET), serves Ping, pings every other member once a second
 * and keeps its health, and renders GET /v1/cluster. Other modules (the Raft
 * glue) reach the channel through peer_glue_peer() and the generic
 * peer_register / peer_call of replication/peer.h.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_PEER_GLUE_H
#define MOM_BROKER_PEER_GLUE_H

#include "broker/reply.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct peer;
struct peer_glue;

#define PEER_GLUE_PING_PATH "/mom.v1.Peer/Ping"
#define PEER_GLUE_PING_INTERVAL_MS 1000
#define PEER_GLUE_PING_DEADLINE_MS 900

struct peer_glue_config {
    uint32_t node_id;
    const char *listen_addr; /* "host:port", port 0 = any */
    const char *peers;       /* MOM_PEERS "1=host:9090,2=host:9090"; NULL/"" = this node alone */
    const char
        *cluster_secret; /* NULL/"" = every peer call refused (UNAUTHENTICATED), logged once */
    const char *tls_cert, *tls_key, *tls_ca; /* all NULL/"" = cleartext; all set = mutual TLS */
};

/* Parses the membership, binds the listener, registers Ping and starts the
 * health pings. Returns MOM_OK, MOM_ERR_INVALID (bad MOM_PEERS, self not in
 * it, bad address, partial TLS config: logged), MOM_ERR_IO (bind), MOM_ERR_NOMEM. */
int peer_glue_new(struct event_base *base, const struct peer_glue_config *cfg,
                  struct peer_glue **out);
/* Sends GOAWAY to every peer and frees everything. Accepts NULL. */
void peer_glue_free(struct peer_glue *g);
/* The bound peer port. */
uint16_t peer_glue_port(const struct peer_glue *g);
/* The channel, for registering more handlers and making calls. */
struct peer *peer_glue_peer(struct peer_glue *g);
/* Fills out with 200 and {"node_id","role","term","leader","commit_index",
 * "nodes":[{"id","address","role","match_index","last_contact_ms","healthy"}]}.
 * last_contact_ms is the age of the last successful Ping answer (0 for this
 * node, null if never). Returns MOM_OK or MOM_ERR_NOMEM. */
int peer_glue_cluster_json(struct peer_glue *g, struct reply *out);
/* Health of one member as the last Ping saw it (this node: true). */
bool peer_glue_member_healthy(const struct peer_glue *g, uint32_t id);

#endif
