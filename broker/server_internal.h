/* Shared between the server core (server.c, server_conn.c) and what runs
 * requests on it (handlers.c, handlers_ui.c, compat.c, demo.c): the server
 * object, the per-request context and the few calls a handler makes (reply,
 * propose, wait). Not for other modules.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_SERVER_INTERNAL_H
#define MOM_BROKER_SERVER_INTERNAL_H

#include "broker/auth.h"
#include "broker/cluster_token.h"
#include "broker/command.h"
#include "broker/compat.h"
#include "broker/config.h"
#include "broker/demo.h"
#include "broker/http_parse.h"
#include "broker/receipt.h"
#include "broker/render.h"
#include "broker/reply.h"
#include "broker/router.h"
#include "broker/store.h"

#include <evhtp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct metrics;
struct node;
struct hasher;
struct hasher_job;
struct ratelimit;
struct stream;
struct stream_hub;

enum wait_kind { WAIT_NONE, WAIT_RECEIVE, WAIT_TOPIC_READ, WAIT_SUB_READ };

struct request_ctx;

struct server {
    struct event_base *base;
    const struct config *cfg;
    evhtp_t *htp;
    struct store *store;
    struct auth *auth;
    struct node *node;
    struct node_token_ops peer_tokens; /* the cluster secret's; zeroed = none */
    struct receipt_key receipt_key;    /* the cluster's (broker/receipt.h) */
    struct receipt_signer *receipts;   /* of receipt_key: checks receipts; owned */
    evhtp_ssl_cfg_t tls_cfg;           /* client-port TLS, read by evhtp while htp lives */
    struct event *cron_ev;
    uint16_t http_port;
    char node_id_text[16];
    uint64_t last_stamp;                /* highest time_ms given to a Command */
    uint64_t own_stamp, own_stamp_mono; /* this process's last stamp, and when */
    bool tick_in_flight;
    int tick_marker;             /* its address is the ctx of Tick proposals */
    struct request_ctx *waiters; /* long polls, doubly linked */
    /* Names changed by the apply in progress, woken after it returns. */
    struct wake {
        enum store_change change;
        char name[129];
    } * wakes;
    size_t nwakes, wakes_cap;
    /* the items of a batch applied from its proposal's spans, rebuilt here
     * for each apply (one array reused: a fresh one per batch cost a page
     * fault every few items) */
    struct command_item *apply_items;
    size_t apply_items_cap;
    char dummy_hash[192];                            /* for constant-time failed logins */
    struct hasher *hasher;                           /* PBKDF2 off the loop */
    struct ratelimit *login_by_user, *login_by_addr; /* failed-login budgets */
    struct client_conn *conns; /* open client connections, freed at shutdown */
    struct demo_state demo;
    size_t nconns; /* how many (refused ones until they close included) */
    bool refusing; /* over MOM_MAX_CONNECTIONS (logged once) */
    const struct timeval *header_tv, *idle_tv; /* libevent common timeouts */
    struct metrics *metrics;                   /* request counters and latencies (loop thread) */
    struct stream_hub *streams;                /* open event streams (stream.c) */
    bool closing; /* server_free is running: nothing more is proposed */
};

/* Where a client connection is (server_conn.c): receiving a request head,
 * its body, being served, idle between requests, or refused and closing. */
enum conn_phase { CONN_HEAD, CONN_BODY, CONN_BUSY, CONN_IDLE, CONN_CLOSING };

/* One open client connection (evhtp does not free them in evhtp_free). */
struct client_conn {
    evhtp_connection_t *conn;
    struct server *srv;
    struct client_conn *prev, *next;
    struct event *timer; /* header, idle or closing deadline */
    struct evbuffer_cb_entry *input_cb;
    enum conn_phase phase;
    uint64_t head_bytes;        /* of the request head so far */
    uint64_t line_bytes;        /* request line: its bytes, CR not counted; header
                                 * line: nonzero once it holds more than CR */
    uint64_t first_sp, last_sp; /* request line: where its spaces are */
    bool in_request_line;
    bool shut_down;         /* closing: write side shut after the flush */
    uint64_t closing_since; /* monotonic ms */
    struct auth_memo auth;  /* the last bearer token that verified here */
};

/* What a part of the server that proposed a Command of its own learns:
 * the answer and the log index it was applied at (r NULL when the
 * proposal failed or its fate is unknown; err says why). r is valid
 * during the call. */
typedef void (*server_done_fn)(void *arg, uint64_t index, const struct reply *r, int err);

/* One in-flight Command (or read barrier): outlives its request if the
 * client leaves. While the request lives, a Command whose item bodies all
 * point into the request is also kept decoded, so that its own leader
 * applies it without decoding the bytes it has just encoded. */
struct proposal {
    struct request_ctx *rc; /* NULL once the request is gone */
    server_done_fn done;    /* or a part of the server waits (server_propose_cb) */
    void *done_arg;
    bool has_cmd; /* cmd is what was encoded (use only while rc) */
    /* cmd.items points at item when it has one. A batch keeps spans
     * instead (cmd.items NULL), when each item is only a body: apply
     * rebuilds the items from them. Other batches keep a copy of the
     * handler's items (cmd.items, malloc'd). Both owned (proposal_free). */
    struct command cmd;
    struct command_item item;
    struct item_span {
        const uint8_t *body;
        size_t len;
    } * spans;
};

struct request_ctx {
    struct server *srv;
    evhtp_request_t *req;
    enum http_method method;
    struct route_match match;
    struct auth_identity id;
    const char *body;
    size_t body_len;
    const char *query;
    uint64_t start_us;   /* monotonic arrival time, for metrics and the access log */
    bool held;           /* waiting for its answer (server_conn_hold) */
    bool sent_on_socket; /* its whole answer went straight to the socket */
    bool done;
    bool read_ok;                /* passed the read barrier (clusters) */
    struct hasher_job *hash_job; /* password work in flight (login, register) */
    char login_user[129];
    struct proposal *proposal;
    struct stream *stream; /* when the request became an event stream */
    /* long poll */
    enum wait_kind wait;
    uint64_t deadline_ms; /* monotonic */
    struct event *timer;
    struct request_ctx *wprev, *wnext;
    bool in_wait_list;
    /* parameters kept to retry a receive or read after a wake */
    uint32_t max;
    bool has_vt;
    uint64_t vt_ms;
    bool auto_ack;
    enum store_from from;
    uint64_t offset;
    /* the prototype's routes (compat.c): the shape of the answer, the route
     * as matched before the rewrite into /v1, what the rewrite owns */
    enum compat_family compat_family;
    enum route compat_route;
    char *compat_body;        /* freed with the request */
    const char *content_type; /* a publish's type when not from the header */
};

/* The value of the first header called name (case-insensitive), or NULL.
 * evhtp_header_find runs strcasecmp on every header of the list, about 70
 * calls per publish; this compares lengths first. */
static inline const char *server_header(evhtp_headers_t *hdrs, const char *name)
{
    size_t len = strlen(name);
    evhtp_header_t *kv;
    TAILQ_FOREACH(kv, hdrs, next)
    {
        if (kv->klen == len && strncasecmp(kv->key, name, len) == 0)
            return kv->val;
    }
    return NULL;
}

/* Sends r (status and body) with the common headers and finishes the request. */
void server_send(struct request_ctx *rc, const struct reply *r);
/* Answers with the error of kind e (status and code from api_error.c). */
void server_fail(struct request_ctx *rc, enum api_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts a request its handler answered with evhtp directly (metrics and
 * the access log), as server_send does for the others. */
void server_account(struct request_ctx *rc, int status, size_t bytes);
/* The same with a body that is not JSON. */
void server_send_typed(struct request_ctx *rc, const struct reply *r, const char *content_type);
void server_send_parse_error(struct request_ctx *rc, const struct parse_error *err);
/* Stamps, encodes and proposes cmd for this request (identity from rc); the
 * answer is sent when it commits. cmd is not kept. */
void server_propose(struct request_ctx *rc, struct command *cmd);
/* Stamps, encodes and proposes a Command of the server's own (no request,
 * no answer; cmd.pb.user says who). Returns MOM_OK or the error. */
int server_propose_internal(struct server *s, struct command *cmd);
/* The same with an answer: done(arg, ...) runs exactly once, from apply,
 * the leader's answer to a forwarded Command, or the failure; never from
 * inside this call. Returns MOM_OK, or the error (done will not run). */
int server_propose_cb(struct server *s, struct command *cmd, server_done_fn done, void *arg);
/* Clusters: holds a read until this node has applied what the leader had
 * committed, then dispatches the request again (rc->read_ok set). Returns
 * true when the caller must stop (held or answered 503). */
bool server_read_barrier(struct request_ctx *rc);
/* Parks the request until `wait` can make progress or rc->deadline_ms
 * (monotonic) passes. */
void server_wait(struct request_ctx *rc, enum wait_kind wait);
struct store_caller server_caller(const struct request_ctx *rc);
/* Holds the request until a helper (the hasher) answers it. */
void server_pause(struct request_ctx *rc);
/* Starts a chunked 200 answer for an event stream (stream.c): the common
 * headers, Content-Type text/event-stream, Cache-Control no-cache; counts
 * it and releases a held request. Nothing else is sent through rc then. */
void server_start_stream(struct request_ctx *rc);
/* Adds a response header (copied). */
void server_add_header(struct request_ctx *rc, const char *name, const char *value);
/* The client's address as a rate-limit key: family byte, then the IPv4
 * address or the IPv6 /64 prefix. Returns its length (0 if unknown). */
#define SERVER_ADDR_KEY_MAX 17u
size_t server_client_addr(const struct request_ctx *rc, uint8_t out[SERVER_ADDR_KEY_MAX]);
uint64_t server_now_stamp(struct server *s);

/* server_conn.c: evhtp's post-accept callback (limits and timeouts), and
 * the request life cycle as the connection limits see it. */
evhtp_res server_conn_on_accept(evhtp_connection_t *conn, void *arg);
void server_conn_request_started(struct request_ctx *rc);
void server_conn_request_done(struct request_ctx *rc);
/* Holds rc's request until server_conn_release (a Command, a wait, the
 * hasher): evhtp's pause without stopping reading, so holding a request
 * costs no epoll_ctl. Reading stops only when bytes of a pipelined request
 * arrive meanwhile. */
void server_conn_hold(struct request_ctx *rc);
/* The memo of the last token that verified on rc's connection (NULL when
 * the connection keeps none). */
struct auth_memo *server_conn_auth_memo(struct request_ctx *rc);
/* Writes the answer (head, then body) of a request held by flags straight
 * to the socket when nothing is queued before it and no further request is
 * waiting, so that the answer needs no write event (no epoll_ctl). Returns
 * the bytes written, 0 when it tried none; the caller queues the rest in
 * the connection's output. */
size_t server_conn_write_answer(struct request_ctx *rc, const void *head, size_t head_len,
                                const void *body, size_t body_len);
/* After the answer is queued: resumes the connection when the hold had to
 * pause it. A client that closed meanwhile gets the answer written at once,
 * as far as its socket takes it, before evhtp frees the connection. */
void server_conn_release(struct request_ctx *rc);

/* handlers.c */
void handlers_dispatch(struct request_ctx *rc);
/* Re-runs a parked read/receive (after a wake or at its deadline). */
void handlers_retry_wait(struct request_ctx *rc, bool final);

/* handlers_ui.c: answers a GET/HEAD of a dashboard file (no token needed);
 * false when path is not one. */
bool handlers_ui(struct request_ctx *rc, const char *path);

#endif
