/* The peer channel: gRPC unary calls over our HTTP/2 (h2conn) on the one
 * libevent loop. A peer listens for other members (server role), keeps one
 * outgoing connection to every other member (client role) with jittered
 * reconnect backoff, authenticates both ways with a short-lived HS256 JWT
 * in `authorization: Bearer` (peer_token.h) and dispatches incoming calls
 * by :path to registered handlers. Unknown paths get UNIMPLEMENTED, undecodable or oversized
 * bodies INVALID_ARGUMENT / RESOURCE_EXHAUSTED (handlers decide the former).
 * Without a cluster secret every incoming call is refused (UNAUTHENTICATED)
 * and outgoing calls fail the same way locally; this is logged once.
 * Optional TLS (cert + key + CA): mutual TLS with ALPN h2, each side
 * verifying the other's chain against the cluster CA, via OpenSSL memory
 * BIOs between the socket and h2conn.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_PEER_H
#define MOM_REPLICATION_PEER_H

#include "replication/peer_members.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct peer;
struct peer_request;
struct node_token_ops; /* replication/node.h */

#define PEER_DEFAULT_MAX_MESSAGE (8u << 20) /* largest request or reply, bytes */

struct peer_config {
    uint32_t node_id;
    const char *listen_addr;           /* "host:port"; port 0 = any free port */
    const struct peer_member *members; /* every member, self included */
    size_t n_members;
    const struct node_token_ops *tokens;     /* NULL = refuse every call; copied */
    const char *tls_cert, *tls_key, *tls_ca; /* all NULL/"" = cleartext h2c; all set = mTLS */
    size_t max_message;                      /* 0 = PEER_DEFAULT_MAX_MESSAGE */
    uint32_t connect_timeout_ms;             /* 0 = 2000 */
    uint32_t backoff_base_ms;                /* 0 = 100 */
    uint32_t backoff_max_ms;                 /* 0 = 3000 */
};

/* Server side. A handler owns req until it calls peer_respond exactly once,
 * now or later from the loop. body is valid during the call only. */
typedef void (*peer_handler_fn)(struct peer_request *req, const uint8_t *body, size_t len,
                                void *arg);
/* Client side: called exactly once per started call, never from inside
 * peer_call; reply is valid during the call only (NULL unless status 0). */
typedef void (*peer_call_cb)(int grpc_status, const char *message, const uint8_t *reply, size_t len,
                             void *arg);

/* Binds the listener and starts connecting to the other members. Returns
 * MOM_OK, MOM_ERR_INVALID (bad address, partial TLS config or unreadable
 * certificate/key/CA: logged), MOM_ERR_IO (bind failed), MOM_ERR_NOMEM. */
int peer_new(struct event_base *base, const struct peer_config *cfg, struct peer **out);
/* Sends GOAWAY on every connection, writes what it can without blocking,
 * closes and frees everything. Calls no callback: pending calls are
 * dropped and requests still held by handlers become invalid, so stop
 * using them first. Accepts NULL. */
void peer_free(struct peer *p);
uint16_t peer_port(const struct peer *p);
uint32_t peer_node_id(const struct peer *p);

/* Routes "/mom.v1.Peer/<Method>" to fn. Returns MOM_OK, MOM_ERR_EXISTS,
 * MOM_ERR_INVALID (path not starting with '/'), MOM_ERR_NOMEM. */
int peer_register(struct peer *p, const char *path, peer_handler_fn fn, void *arg);

/* Answers a request: status GRPC_OK (0) with reply bytes, or an error status
 * and message (reply ignored). Frees req. If the caller has gone (cancel,
 * deadline, connection lost) the answer is dropped. */
void peer_respond(struct peer_request *req, int grpc_status, const char *message,
                  const uint8_t *reply, size_t len);
/* The authenticated member that made the request. */
uint32_t peer_request_from(const struct peer_request *req);
/* Remaining time before the caller's deadline in ms; UINT64_MAX if none. */
uint64_t peer_request_remaining_ms(const struct peer_request *req);

/* Starts a unary call of path on member_id with req (len bytes, copied).
 * deadline_ms 0 means no deadline. cb then fires exactly once with the
 * gRPC status: UNAVAILABLE when the member is down or the connection drops,
 * DEADLINE_EXCEEDED, UNAUTHENTICATED without a cluster secret, or the
 * peer's answer. Returns MOM_OK, MOM_ERR_NOTFOUND (no such member, or self),
 * MOM_ERR_INVALID (bad path), MOM_ERR_TOO_LARGE, MOM_ERR_NOMEM: cb is then
 * not called. */
int peer_call(struct peer *p, uint32_t member_id, const char *path, const uint8_t *req, size_t len,
              uint32_t deadline_ms, peer_call_cb cb, void *arg);

/* Connection state of an outgoing member link, for health views. */
bool peer_member_connected(const struct peer *p, uint32_t member_id);

#endif
