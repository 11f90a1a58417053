/* What the files of the peer channel share and nothing else sees: the peer,
 * its members and connections (peer.c, the connection core) and the hooks
 * between the core and TLS (peer_tls.c). Calls and requests stay private to
 * peer.c. OpenSSL types appear by their struct tags only, so the core does
 * not include OpenSSL.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_PEER_INTERNAL_H
#define MOM_REPLICATION_PEER_INTERNAL_H

#include "replication/node.h"
#include "replication/peer.h"
#include "replication/peer_token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct evbuffer;
struct event;
struct evconnlistener;
struct evdns_base;
struct h2conn;
struct pcall;
struct ssl_st;     /* OpenSSL's SSL */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* At most this many member ids are taken from one certificate. */
#define PEER_CERT_IDS_MAX 16

struct handler {
    char *path;
    peer_handler_fn fn;
    void *arg;
};

struct call_list {
    struct pcall *head, *tail;
};

enum member_state { M_CONNECTING, M_READY, M_BACKOFF };

struct pmember {
    struct peer *peer;
    struct peer_member cfg;
    struct pconn *conn; /* the current outgoing connection; NULL in backoff */
    enum member_state state;
    bool was_up; /* for logging transitions once */
    struct event *retry_ev;
    uint32_t backoff_ms;
    struct call_list waiting; /* calls not on a stream yet */
};

struct pconn {
    struct peer *peer;
    struct bufferevent *bev;
    struct h2conn *h2;
    struct pmember *member; /* client role: the member dialled */
    bool connected;
    bool closing;  /* torn down, waiting for the reaper */
    bool draining; /* GOAWAY received: finish streams, then close */
    bool paused;   /* reading stopped until our output drains (back-pressure) */
    bool reaped;
    struct ssl_st *ssl;        /* TLS: memory BIOs between the socket and h2conn */
    bool tls_ready;            /* handshake done, ALPN h2 agreed */
    struct evbuffer *tls_hold; /* h2 bytes written before the handshake ended */
    /* TLS: the members the peer's certificate names (peer_tls.c) */
    uint32_t cert_ids[PEER_CERT_IDS_MAX];
    size_t n_cert_ids;
    uint64_t opened_ms; /* for the SETTINGS acknowledgement deadline */
    uint64_t last_recv_ms;
    char desc[320];
    char addr[48];             /* server: the client's address, for the per-address limit */
    struct call_list calls;    /* client: calls on streams */
    struct peer_request *reqs; /* server: requests not yet answered */
    /* server: the last token that verified on this connection */
    char tok[PEER_TOKEN_MAX];
    size_t tok_len;
    uint64_t tok_exp;
    uint32_t tok_node;
    bool auth_warned;
    struct pconn *next, *prev;
    struct pconn *reap_next;
};

struct peer {
    struct event_base *base;
    uint32_t node_id;
    struct node_token_ops tokens; /* the peer tokens' JWT primitives; verify NULL = refuse all */
    size_t max_message;
    uint32_t connect_timeout_ms, backoff_base_ms, backoff_max_ms;
    struct evconnlistener *listener;
    uint16_t port;
    struct evdns_base *dns;
    struct ssl_ctx_st *tls_server, *tls_client; /* both or neither */
    struct pmember *members;
    size_t n_members;
    uint32_t *member_ids; /* every configured id, self included */
    size_t n_ids;
    struct handler *handlers;
    size_t n_handlers;
    struct pconn *conns;
    size_t n_server_conns;
    struct pconn *reap_list;
    struct event *reap_ev;
    struct event *cron_ev;
    char token[PEER_TOKEN_MAX];
    uint64_t token_exp;
    uint64_t rng;
    bool secret_warned;
};

/* ---- the core (peer.c), for TLS ---- */

/* The one teardown path: fails the calls, detaches the requests and frees
 * the connection later (after flushing a GOAWAY when flush is set). */
void peer_conn_fail(struct pconn *pc, const char *reason, bool flush);
/* Feeds plaintext bytes to h2conn; false once the connection is closing. */
bool peer_conn_feed(struct pconn *pc, const uint8_t *p, size_t n);

/* ---- TLS (peer_tls.c), for the core ---- */

/* Builds the server and client contexts when cert, key and CA are all set;
 * none set means cleartext. Returns MOM_OK or MOM_ERR_INVALID (partial
 * configuration, unreadable files: logged). */
int peer_tls_init(struct peer *p, const struct peer_config *cfg);
void peer_tls_cleanup(struct peer *p);
/* Puts TLS under a fresh connection; a client starts the handshake. */
int peer_tls_start(struct pconn *pc, bool server);
/* Encrypts h2 output onto the socket (held until the handshake is done). */
int peer_tls_send(struct pconn *pc, const uint8_t *data, size_t len);
/* Decrypts what arrived, finishing the handshake first, and feeds h2conn. */
void peer_tls_read(struct pconn *pc, struct evbuffer *in);
/* Whether the connection's certificate names member id (true without TLS). */
bool peer_tls_certifies(const struct pconn *pc, uint32_t id);
/* Frees the connection's TLS state. */
void peer_tls_conn_cleanup(struct pconn *pc);

#endif
