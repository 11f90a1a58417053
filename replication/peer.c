/* The connection core of the peer channel: the listener, one bufferevent
 * per connection feeding h2conn (through peer_tls.c when TLS is on), gRPC
 * unary calls on top (server dispatch by :path after the bearer token
 * checks of peer_token.c, client calls with deadlines), outgoing links to
 * every member with decorrelated-jitter reconnects and keepalive PINGs.
 * Ownership: the peer owns members, connections and handlers; a
 * connection owns its h2conn and bufferevent (fd included); a call is owned
 * by the list it is on until its callback has run; a request is owned by
 * its connection until dispatched, then by the handler until peer_respond.
 * Connections are never freed inside their own callbacks: they are marked
 * closing and freed by a reaper event.
 * SPDX-License-Identifier: MIT */
#include "replication/peer.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "replication/grpcmsg.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"
#include "replication/peer_internal.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_SERVER_CONNS 512
/* Incoming connections from one address (a member needs one). */
#define MAX_CONNS_PER_ADDRESS 64
/* A connection (TLS handshake included) whose peer has not acknowledged our
 * SETTINGS by then is dropped. */
#define SETTINGS_ACK_TIMEOUT_MS 5000u
#define HANDSHAKE_TIMEOUT_S 10
#define KEEPALIVE_IDLE_MS 1000
#define KEEPALIVE_DEAD_MS 4000
#define FLUSH_TIMEOUT_S 1
#define MESSAGE_MAX 256
#define MAX_READ_CHUNK (256 * 1024)
#define OUT_HIGH_WATER (16u << 20) /* stop reading a peer that does not read our answers */

struct pcall {
    struct peer *peer;
    struct pmember *m;
    struct call_list *list;
    struct pcall *next, *prev;
    struct pconn *conn;
    uint32_t sid;
    char *path;
    uint8_t *req; /* prefix + message */
    size_t req_len;
    uint64_t deadline; /* monotonic ms, 0 = none */
    struct event *timer;
    peer_call_cb cb;
    void *arg;
    bool fail_pending; /* decided before any stream: delivered from the timer */
    int fail_status;
    const char *fail_msg;
    bool got_head;
    int http_status;
    int grpc_status; /* -1 = not seen */
    char message[MESSAGE_MAX];
    uint8_t *reply;
    size_t reply_len;
    bool have_reply;
    struct grpcmsg_reader reader;
};

struct peer_request {
    struct peer *peer;
    struct pconn *conn; /* NULL once the caller is gone or answered */
    uint32_t sid;
    struct peer_request *next, *prev;
    peer_handler_fn fn;
    void *arg;
    uint32_t from;
    uint64_t deadline; /* monotonic ms, 0 = none */
    struct event *timer;
    struct grpcmsg_reader reader;
    uint8_t *msg;
    size_t msg_len;
    bool have_msg;
    bool dispatched;  /* the handler owns it */
    bool in_dispatch; /* inside the handler call */
    bool responded;   /* peer_respond was called (inside the handler call) */
    bool answered;
};

/* ---------------- small helpers ---------------- */

static uint64_t rng_next(struct peer *p)
{
    /* xorshift64*: reconnect jitter only */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 2685821657736338717ull;
}

static bool hdr_is(const struct h2conn_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && memcmp(h->name, name, n) == 0;
}

static bool is_member(const struct peer *p, uint32_t id)
{
    for (size_t i = 0; i < p->n_ids; i++)
        if (p->member_ids[i] == id)
            return true;
    return false;
}

static struct pmember *find_member(struct peer *p, uint32_t id)
{
    for (size_t i = 0; i < p->n_members; i++)
        if (p->members[i].cfg.id == id)
            return &p->members[i];
    return NULL;
}

static const struct handler *find_handler(const struct peer *p, const char *path, size_t len)
{
    for (size_t i = 0; i < p->n_handlers; i++)
        if (strlen(p->handlers[i].path) == len && memcmp(p->handlers[i].path, path, len) == 0)
            return &p->handlers[i];
    return NULL;
}

static void list_push(struct call_list *l, struct pcall *c)
{
    c->list = l;
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_remove(struct pcall *c)
{
    struct call_list *l = c->list;
    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->next = c->prev = NULL;
    c->list = NULL;
}

/* ---------------- connections ---------------- */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void member_drain(struct pmember *m);
static void member_backoff(struct pmember *m);
static void call_complete(struct pcall *c, int status, const char *msg, bool reset);
static void req_free(struct peer_request *r);
static void srv_answer(struct peer_request *r, int status, const char *msg, const uint8_t *reply,
                       size_t len);

static int conn_send(void *arg, const uint8_t *data, size_t len)
{
    struct pconn *pc = arg;
    if (!pc->bev)
        return MOM_ERR_CLOSED;
    if (pc->ssl) {
        return peer_tls_send(pc, data, len);
    }
    return bufferevent_write(pc->bev, data, len) == 0 ? MOM_OK : MOM_ERR_NOMEM;
}

static void schedule_reap(struct pconn *pc)
{
    if (pc->reaped)
        return;
    pc->reaped = true;
    pc->reap_next = pc->peer->reap_list;
    pc->peer->reap_list = pc;
    event_active(pc->peer->reap_ev, 0, 0);
}

static void conn_destroy(struct pconn *pc)
{
    struct peer *p = pc->peer;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        p->conns = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    if (!pc->member)
        p->n_server_conns--;
    if (pc->bev)
        bufferevent_free(pc->bev);
    h2conn_free(pc->h2);
    peer_tls_conn_cleanup(pc);
    free(pc);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer *p = arg;
    while (p->reap_list) {
        struct pconn *pc = p->reap_list;
        p->reap_list = pc->reap_next;
        conn_destroy(pc);
    }
}

static void flush_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    schedule_reap(arg);
}

static void linger_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* The GOAWAY is out: half-close and discard input until EOF (or a timeout),
 * so the kernel does not answer unread bytes with an RST that could
 * destroy the GOAWAY at the peer. */
static void flush_done_cb(struct bufferevent *bev, void *arg)
{
    struct timeval tv = {FLUSH_TIMEOUT_S, 0};
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    bufferevent_setcb(bev, linger_read_cb, NULL, flush_event_cb, arg);
    bufferevent_set_timeouts(bev, &tv, NULL);
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, EV_READ);
}

void peer_conn_fail(struct pconn *pc, const char *reason, bool flush)
{
    if (pc->closing)
        return;
    pc->closing = true;
    struct pmember *m = pc->member;
    bool current = m && m->conn == pc;
    if (m) {
        if (current) {
            if (m->was_up)
                log_warn("peer %u (%s): connection lost: %s", m->cfg.id, m->cfg.addr, reason);
            else
                log_debug("peer %u (%s): connect failed: %s", m->cfg.id, m->cfg.addr, reason);
            m->was_up = false;
            m->conn = NULL;
            member_backoff(m);
        }
    } else {
        log_debug("peer connection %s closed: %s", pc->desc, reason);
    }
    if (pc->bev)
        bufferevent_disable(pc->bev, EV_READ);
    while (pc->calls.head) {
        struct pcall *c = pc->calls.head;
        c->conn = NULL;
        call_complete(c, GRPC_UNAVAILABLE, reason, false);
    }
    /* fail fast: while the member is down, nothing waits for it (a retired
     * or drained connection is not the member going down) */
    if (current && !m->conn) {
        while (m->waiting.head)
            call_complete(m->waiting.head, GRPC_UNAVAILABLE, reason, false);
    }
    while (pc->reqs) {
        struct peer_request *r = pc->reqs;
        pc->reqs = r->next;
        r->conn = NULL;
        r->next = r->prev = NULL;
        if (r->dispatched)
            r->answered = true; /* the handler still owns it */
        else
            req_free(r);
    }
    if (flush && pc->bev && pc->connected) {
        if (evbuffer_get_length(bufferevent_get_output(pc->bev)) > 0) {
            struct timeval tv = {FLUSH_TIMEOUT_S, 0};
            bufferevent_setcb(pc->bev, NULL, flush_done_cb, flush_event_cb, pc);
            bufferevent_set_timeouts(pc->bev, NULL, &tv);
            bufferevent_enable(pc->bev, EV_WRITE);
        } else {
            flush_done_cb(pc->bev, pc);
        }
        return;
    }
    schedule_reap(pc);
}

static void conn_on_settings(void *arg);
static void conn_on_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h,
                            size_t n, bool end);
static void conn_on_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end);
static void conn_on_stream_close(void *arg, uint32_t sid, void *user, uint32_t code);
static void conn_on_goaway(void *arg, uint32_t last, uint32_t code);

static const struct h2conn_callbacks conn_cbs = {
    .send = conn_send,
    .on_headers = conn_on_headers,
    .on_data = conn_on_data,
    .on_stream_close = conn_on_stream_close,
    .on_goaway = conn_on_goaway,
    .on_settings = conn_on_settings,
};

static struct pconn *conn_new(struct peer *p, struct pmember *m)
{
    struct pconn *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    pc->peer = p;
    pc->member = m;
    pc->last_recv_ms = clock_mono_ms();
    pc->opened_ms = pc->last_recv_ms;
    pc->next = p->conns;
    if (p->conns)
        p->conns->prev = pc;
    p->conns = pc;
    if (!m)
        p->n_server_conns++;
    return pc;
}

static void set_nodelay(struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool peer_conn_feed(struct pconn *pc, const uint8_t *p, size_t n)
{
    uint32_t code = 0;
    int rc = h2conn_recv(pc->h2, p, n, &code);
    if (rc < 0) {
        char sample[80];
        log_escape_sample(p, n < 16 ? n : 16, sample, sizeof sample);
        if (rc == MOM_ERR_PROTOCOL)
            log_warn("peer connection %s: HTTP/2 %s, sent GOAWAY (input starts \"%s\")", pc->desc,
                     h2frame_error_name(code), sample);
        peer_conn_fail(pc, rc == MOM_ERR_PROTOCOL ? "protocol error" : mom_strerror(rc), true);
    }
    return !pc->closing;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct pconn *pc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    pc->last_recv_ms = clock_mono_ms();
    while (!pc->closing && evbuffer_get_length(in) > 0) {
        if (evbuffer_get_length(out) > OUT_HIGH_WATER) {
            /* back-pressure: resume in conn_write_cb once the peer has read */
            pc->paused = true;
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(bev, EV_WRITE, OUT_HIGH_WATER / 4, 0);
            return;
        }
        if (pc->ssl) {
            peer_tls_read(pc, in);
            continue;
        }
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < nv && i < 8; i++) {
            used += v[i].iov_len;
            if (!peer_conn_feed(pc, v[i].iov_base, v[i].iov_len))
                break;
        }
        evbuffer_drain(in, used);
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct pconn *pc = arg;
    if (!pc->paused || pc->closing)
        return;
    pc->paused = false;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_enable(bev, EV_READ);
    conn_read_cb(bev, pc); /* what arrived meanwhile */
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pconn *pc = arg;
    if (what & BEV_EVENT_CONNECTED) {
        struct pmember *m = pc->member;
        set_nodelay(bev);
        bufferevent_set_timeouts(bev, NULL, NULL);
        struct h2conn_settings set = {.max_frame_size = H2CONN_DEFAULT_MAX_FRAME};
        if ((pc->peer->tls_client && peer_tls_start(pc, false) != MOM_OK) ||
            h2conn_new(H2CONN_CLIENT, &set, &conn_cbs, pc, &pc->h2) != MOM_OK) {
            peer_conn_fail(pc, "out of memory", false);
            return;
        }
        pc->connected = true;
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        if (m && m->conn == pc) {
            m->state = M_READY;
            member_drain(m);
        }
        return;
    }
    const char *why = "closed by peer";
    if (what & BEV_EVENT_TIMEOUT)
        why = pc->connected ? "timed out" : "connect timed out";
    else if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();
        why = err ? evutil_socket_error_to_string(err) : "socket error";
        if (!pc->connected && pc->member && bufferevent_socket_get_dns_error(bev))
            why = evutil_gai_strerror(bufferevent_socket_get_dns_error(bev));
    }
    peer_conn_fail(pc, why, false);
}

static void conn_on_settings(void *arg)
{
    struct pconn *pc = arg;
    if (pc->member) {
        struct pmember *m = pc->member;
        m->backoff_ms = 0;
        if (!m->was_up && m->conn == pc) {
            m->was_up = true;
            log_info("peer %u (%s): connected", m->cfg.id, m->cfg.addr);
        }
    } else if (pc->bev) {
        bufferevent_set_timeouts(pc->bev, NULL, NULL); /* handshake done */
    }
}

static void conn_on_goaway(void *arg, uint32_t last, uint32_t code)
{
    struct pconn *pc = arg;
    (void)last;
    struct pmember *m = pc->member;
    if (!m)
        return; /* a client leaving: it closes the connection itself */
    if (code != H2_NO_ERROR)
        log_warn("peer %u (%s): GOAWAY %s", m->cfg.id, m->cfg.addr, h2frame_error_name(code));
    pc->draining = true;
    if (m->conn == pc) {
        m->conn = NULL;
        member_backoff(m); /* reconnect after a short, jittered pause */
    }
    if (h2conn_open_streams(pc->h2) == 0)
        peer_conn_fail(pc, "GOAWAY", true);
}

/* ---------------- server side ---------------- */

static void req_link(struct pconn *pc, struct peer_request *r)
{
    r->conn = pc;
    r->prev = NULL;
    r->next = pc->reqs;
    if (pc->reqs)
        pc->reqs->prev = r;
    pc->reqs = r;
}

static void req_unlink(struct peer_request *r)
{
    struct pconn *pc = r->conn;
    if (!pc)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        pc->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    if (pc->h2)
        h2conn_stream_set_user(pc->h2, r->sid, NULL);
    r->conn = NULL;
}

static void req_free(struct peer_request *r)
{
    req_unlink(r);
    if (r->timer)
        event_free(r->timer);
    grpcmsg_reader_cleanup(&r->reader);
    free(r->msg);
    free(r);
}

static void srv_send_http(struct pconn *pc, uint32_t sid, const char *status)
{
    const struct h2conn_header h[] = {{":status", 7, status, 3, false}};
    h2conn_submit_headers(pc->h2, sid, h, 1, true);
}

/* Sends the answer and detaches the request from its stream. */
static void srv_answer(struct peer_request *r, int status, const char *msg, const uint8_t *reply,
                       size_t len)
{
    struct pconn *pc = r->conn;
    uint32_t sid = r->sid;
    r->answered = true;
    if (!pc)
        return;
    req_unlink(r);
    if (pc->closing || !pc->h2)
        return;
    if (status == GRPC_OK && len > r->peer->max_message) {
        status = GRPC_RESOURCE_EXHAUSTED;
        msg = "reply larger than the message limit";
    }
    if (status == GRPC_OK) {
        const struct h2conn_header head[] = {{":status", 7, "200", 3, false},
                                             {"content-type", 12, "application/grpc", 16, false}};
        const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false}};
        uint8_t small[GRPCMSG_PREFIX_LEN + 4096];
        if (h2conn_submit_headers(pc->h2, sid, head, 2, false) != MOM_OK)
            return;
        if (len <= 4096) {
            grpcmsg_pack_prefix(small, false, (uint32_t)len);
            if (len)
                memcpy(small + GRPCMSG_PREFIX_LEN, reply, len);
            h2conn_submit_data(pc->h2, sid, small, GRPCMSG_PREFIX_LEN + len, false);
        } else {
            grpcmsg_pack_prefix(small, false, (uint32_t)len);
            h2conn_submit_data(pc->h2, sid, small, GRPCMSG_PREFIX_LEN, false);
            h2conn_submit_data(pc->h2, sid, reply, len, false);
        }
        h2conn_submit_headers(pc->h2, sid, trail, 1, true);
        return;
    }
    char code[12], text[3 * MESSAGE_MAX];
    int clen = snprintf(code, sizeof code, "%d", status);
    size_t tlen = grpcmsg_percent_encode(msg ? msg : "", msg ? strlen(msg) : 0, text, sizeof text);
    const struct h2conn_header h[] = {{":status", 7, "200", 3, false},
                                      {"content-type", 12, "application/grpc", 16, false},
                                      {"grpc-status", 11, code, (size_t)clen, false},
                                      {"grpc-message", 12, text, tlen, false}};
    h2conn_submit_headers(pc->h2, sid, h, tlen ? 4 : 3, true);
}

/* Refuses a request before dispatch and frees it. */
static void srv_refuse(struct peer_request *r, int status, const char *msg)
{
    srv_answer(r, status, msg, NULL, 0);
    req_free(r);
}

static void srv_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer_request *r = arg;
    if (!r->answered)
        srv_answer(r, GRPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
}

static void srv_dispatch(struct peer_request *r)
{
    if (!r->have_msg) {
        srv_refuse(r, GRPC_INTERNAL, "missing request message");
        return;
    }
    r->dispatched = true;
    r->in_dispatch = true;
    r->fn(r, r->msg, r->msg_len, r->arg);
    r->in_dispatch = false;
    free(r->msg);
    r->msg = NULL;
    r->msg_len = 0;
    grpcmsg_reader_cleanup(&r->reader);
    if (r->responded) { /* peer_respond ran inside the handler */
        req_free(r);
        return;
    }
    if (!r->answered && r->deadline) {
        uint64_t now = clock_mono_ms();
        uint64_t left = r->deadline > now ? r->deadline - now : 0;
        r->timer = evtimer_new(r->peer->base, srv_deadline_cb, r);
        if (r->timer) {
            struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
            evtimer_add(r->timer, &tv);
        }
    }
}

/* Checks the bearer token; returns NULL if fine, else a reason. */
static const char *srv_auth(struct pconn *pc, const struct h2conn_header *h, uint32_t *from)
{
    struct peer *p = pc->peer;
    if (!p->tokens.verify) {
        if (!p->secret_warned) {
            p->secret_warned = true;
            log_warn("peer call from %s refused: no cluster secret configured (MOM_CLUSTER_SECRET)",
                     pc->desc);
        }
        return "cluster secret not configured on this node";
    }
    if (!h)
        return "missing authorization";
    if (h->value_len < 7 || strncasecmp(h->value, "Bearer ", 7) != 0)
        return "authorization is not a Bearer token";
    const char *tok = h->value + 7;
    size_t len = h->value_len - 7;
    uint64_t now_s = clock_wall_ms() / 1000;
    if (len == pc->tok_len && len > 0 && now_s < pc->tok_exp && memcmp(tok, pc->tok, len) == 0) {
        *from = pc->tok_node;
        return NULL;
    }
    struct peer_token_claims c;
    const char *why = NULL;
    if (peer_token_verify(&p->tokens, tok, len, now_s, &c, &why) != MOM_OK)
        return why;
    if (!is_member(p, c.node_id))
        return "token subject is not a cluster member";
    if (!peer_tls_certifies(pc, c.node_id))
        return "token subject is not the member the TLS certificate names";
    if (len < sizeof pc->tok) {
        memcpy(pc->tok, tok, len);
        pc->tok_len = len;
        pc->tok_exp = c.exp;
        pc->tok_node = c.node_id;
    }
    *from = c.node_id;
    return NULL;
}

static void srv_on_request_headers(struct pconn *pc, uint32_t sid, const struct h2conn_header *h,
                                   size_t n, bool end)
{
    struct peer *p = pc->peer;
    const struct h2conn_header *method = NULL, *path = NULL, *ctype = NULL, *timeout = NULL,
                               *auth = NULL, *enc = NULL;
    for (size_t i = 0; i < n; i++) {
        if (hdr_is(&h[i], ":method"))
            method = &h[i];
        else if (hdr_is(&h[i], ":path"))
            path = &h[i];
        else if (hdr_is(&h[i], "content-type"))
            ctype = &h[i];
        else if (hdr_is(&h[i], "grpc-timeout"))
            timeout = &h[i];
        else if (hdr_is(&h[i], "authorization"))
            auth = &h[i];
        else if (hdr_is(&h[i], "grpc-encoding"))
            enc = &h[i];
    }
    if (!method)
        return; /* trailers of a stream already answered */
    if (method->value_len != 4 || memcmp(method->value, "POST", 4) != 0) {
        srv_send_http(pc, sid, "405");
        return;
    }
    if (!ctype || ctype->value_len < 16 || memcmp(ctype->value, "application/grpc", 16) != 0 ||
        (ctype->value_len > 16 && ctype->value[16] != '+' && ctype->value[16] != ';')) {
        srv_send_http(pc, sid, "415");
        return;
    }
    struct peer_request *r = calloc(1, sizeof *r);
    if (!r) {
        h2conn_reset_stream(pc->h2, sid, H2_INTERNAL_ERROR);
        return;
    }
    r->peer = p;
    r->sid = sid;
    grpcmsg_reader_init(&r->reader, p->max_message);
    req_link(pc, r);
    h2conn_stream_set_user(pc->h2, sid, r);
    uint64_t ms;
    if (timeout && grpcmsg_timeout_parse(timeout->value, timeout->value_len, &ms) == MOM_OK)
        r->deadline = clock_mono_ms() + (ms ? ms : 1);
    const char *why = srv_auth(pc, auth, &r->from);
    if (why) {
        if (!pc->auth_warned) {
            pc->auth_warned = true;
            log_warn("peer connection %s: call refused (UNAUTHENTICATED): %s", pc->desc, why);
        }
        srv_refuse(r, GRPC_UNAUTHENTICATED, why);
        return;
    }
    if (enc && !(enc->value_len == 8 && memcmp(enc->value, "identity", 8) == 0)) {
        srv_refuse(r, GRPC_UNIMPLEMENTED, "grpc-encoding not supported");
        return;
    }
    const struct handler *hd = find_handler(p, path->value, path->value_len);
    if (!hd) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown method %.*s",
                 (int)(path->value_len > 100 ? 100 : path->value_len), path->value);
        srv_refuse(r, GRPC_UNIMPLEMENTED, msg);
        return;
    }
    r->fn = hd->fn;
    r->arg = hd->arg;
    if (end)
        srv_dispatch(r);
}

static void srv_on_data(struct peer_request *r, const uint8_t *d, size_t n, bool end)
{
    while (n > 0 && !r->answered) {
        size_t used;
        struct grpcmsg_view v;
        int rc = grpcmsg_reader_feed(&r->reader, d, n, &used, &v);
        d += used;
        n -= used;
        if (rc == MOM_ERR_TOO_LARGE) {
            char msg[96];
            snprintf(msg, sizeof msg, "request larger than %zu bytes", r->peer->max_message);
            srv_refuse(r, GRPC_RESOURCE_EXHAUSTED, msg);
            return;
        }
        if (rc < 0) {
            srv_refuse(r, GRPC_INTERNAL,
                       rc == MOM_ERR_NOMEM ? "out of memory" : "bad message framing");
            return;
        }
        if (rc == 1) {
            if (r->have_msg) {
                srv_refuse(r, GRPC_UNIMPLEMENTED, "more than one request message in a unary call");
                return;
            }
            if (v.compressed) {
                srv_refuse(r, GRPC_INTERNAL, "compressed message without grpc-encoding");
                return;
            }
            r->msg = malloc(v.len ? v.len : 1);
            if (!r->msg) {
                srv_refuse(r, GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return;
            }
            if (v.len)
                memcpy(r->msg, v.data, v.len);
            r->msg_len = v.len;
            r->have_msg = true;
        }
    }
    if (end && !r->answered) {
        if (!grpcmsg_reader_idle(&r->reader)) {
            srv_refuse(r, GRPC_INTERNAL, "truncated request message");
            return;
        }
        srv_dispatch(r);
    }
}

void peer_respond(struct peer_request *r, int grpc_status, const char *message,
                  const uint8_t *reply, size_t len)
{
    if (!r)
        return;
    if (!r->answered)
        srv_answer(r, grpc_status, message, reply, len);
    r->answered = true;
    if (r->in_dispatch) {
        r->responded = true; /* srv_dispatch frees it when the handler returns */
        return;
    }
    req_free(r);
}

uint32_t peer_request_from(const struct peer_request *r)
{
    return r->from;
}

uint64_t peer_request_remaining_ms(const struct peer_request *r)
{
    if (!r->deadline)
        return UINT64_MAX;
    uint64_t now = clock_mono_ms();
    return r->deadline > now ? r->deadline - now : 0;
}

/* ---------------- client side ---------------- */

static void call_free(struct pcall *c)
{
    if (c->timer)
        event_free(c->timer);
    grpcmsg_reader_cleanup(&c->reader);
    free(c->reply);
    free(c->req);
    free(c->path);
    free(c);
}

/* Finishes a call: detaches it from its stream (resetting the stream if
 * asked), runs the callback once and frees the call. */
static void call_complete(struct pcall *c, int status, const char *msg, bool reset)
{
    list_remove(c);
    if (c->conn && c->conn->h2) {
        h2conn_stream_set_user(c->conn->h2, c->sid, NULL);
        if (reset)
            h2conn_reset_stream(c->conn->h2, c->sid, H2_CANCEL);
    }
    c->conn = NULL;
    if (c->timer)
        evtimer_del(c->timer);
    bool ok = status == GRPC_OK;
    c->cb(status, msg ? msg : "", ok ? c->reply : NULL, ok ? c->reply_len : 0, c->arg);
    call_free(c);
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pcall *c = arg;
    if (c->fail_pending) {
        call_complete(c, c->fail_status, c->fail_msg, false);
        return;
    }
    call_complete(c, GRPC_DEADLINE_EXCEEDED, "deadline exceeded", true);
}

static void call_fail_later(struct pcall *c, int status, const char *msg)
{
    c->fail_pending = true;
    c->fail_status = status;
    c->fail_msg = msg;
    struct timeval tv = {0, 0};
    evtimer_add(c->timer, &tv);
}

static void refresh_token(struct peer *p)
{
    uint64_t now_s = clock_wall_ms() / 1000;
    if (p->token_exp > now_s + PEER_TOKEN_TTL_S / 2)
        return;
    int n =
        peer_token_sign(&p->tokens, p->node_id, now_s, PEER_TOKEN_TTL_S, p->token, sizeof p->token);
    if (n > 0)
        p->token_exp = now_s + PEER_TOKEN_TTL_S;
    else
        p->token[0] = '\0';
}

/* Puts a call on a stream of m's connection. Returns MOM_OK, or
 * MOM_ERR_UNAVAILABLE when no stream can be opened right now. */
static int call_send(struct pmember *m, struct pcall *c)
{
    struct pconn *pc = m->conn;
    struct peer *p = m->peer;
    if (!pc || !pc->connected || pc->closing || !h2conn_can_open(pc->h2))
        return MOM_ERR_UNAVAILABLE;
    refresh_token(p);
    char auth[PEER_TOKEN_MAX + 8];
    int alen = snprintf(auth, sizeof auth, "Bearer %s", p->token);
    char tmo[GRPCMSG_TIMEOUT_MAXLEN];
    size_t tlen = 0;
    if (c->deadline) {
        uint64_t now = clock_mono_ms();
        tlen = grpcmsg_timeout_format(c->deadline > now ? c->deadline - now : 1, tmo);
    }
    struct h2conn_header h[9] = {
        {":method", 7, "POST", 4, false},
        {":scheme", 7, p->tls_client ? "https" : "http", p->tls_client ? 5u : 4u, false},
        {":path", 5, c->path, strlen(c->path), false},
        {":authority", 10, m->cfg.addr, strlen(m->cfg.addr), false},
        {"content-type", 12, "application/grpc", 16, false},
        {"te", 2, "trailers", 8, false},
        {"user-agent", 10, "mom-peer/1", 10, false},
        {"authorization", 13, auth, (size_t)alen, true},
        {"grpc-timeout", 12, tmo, tlen, false},
    };
    uint32_t sid;
    int rc = h2conn_submit_request(pc->h2, h, tlen ? 9 : 8, false, c, &sid);
    if (rc == MOM_ERR_UNAVAILABLE || rc == MOM_ERR_CLOSED)
        return MOM_ERR_UNAVAILABLE;
    if (rc != MOM_OK)
        return rc;
    c->conn = pc;
    c->sid = sid;
    list_remove(c);
    list_push(&pc->calls, c);
    /* c->req stays until the call ends: a stream refused by GOAWAY is resent */
    return h2conn_submit_data(pc->h2, sid, c->req, c->req_len, true);
}

static void member_connect(struct pmember *m);

/* Sends waiting calls while the connection takes new streams. A connection
 * that can never open another stream is left to finish and replaced. */
static void member_drain(struct pmember *m)
{
    struct pconn *pc = m->conn;
    if (m->waiting.head && pc && pc->connected && !pc->closing && h2conn_exhausted(pc->h2)) {
        pc->draining = true;
        m->conn = NULL;
        member_connect(m); /* the waiting calls go out on the new connection */
        if (h2conn_open_streams(pc->h2) == 0)
            peer_conn_fail(pc, "connection retired", true);
        return;
    }
    while (m->waiting.head && m->conn && m->conn->connected && !m->conn->closing &&
           h2conn_can_open(m->conn->h2)) {
        struct pcall *c = m->waiting.head;
        int rc = call_send(m, c);
        if (rc == MOM_ERR_UNAVAILABLE)
            break;
        if (rc != MOM_OK)
            call_complete(c, (int)grpcmsg_status_from_err(rc), mom_strerror(rc), true);
    }
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    member_connect(arg);
}

static void member_backoff(struct pmember *m)
{
    struct peer *p = m->peer;
    m->state = M_BACKOFF;
    /* decorrelated jitter: next in [base, 3*previous], capped */
    uint64_t prev = m->backoff_ms ? m->backoff_ms : p->backoff_base_ms;
    uint64_t hi = prev * 3;
    uint64_t next = p->backoff_base_ms + rng_next(p) % (hi - p->backoff_base_ms + 1);
    if (next > p->backoff_max_ms)
        next = p->backoff_max_ms;
    m->backoff_ms = (uint32_t)next;
    struct timeval tv = {(time_t)(next / 1000), (suseconds_t)(next % 1000) * 1000};
    evtimer_add(m->retry_ev, &tv);
}

static void member_connect(struct pmember *m)
{
    struct peer *p = m->peer;
    struct pconn *pc = conn_new(p, m);
    if (!pc) {
        member_backoff(m);
        return;
    }
    snprintf(pc->desc, sizeof pc->desc, "to %u (%s)", m->cfg.id, m->cfg.addr);
    pc->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!pc->bev) {
        conn_destroy(pc);
        member_backoff(m);
        return;
    }
    m->conn = pc;
    m->state = M_CONNECTING;
    bufferevent_setcb(pc->bev, conn_read_cb, conn_write_cb, conn_event_cb, pc);
    bufferevent_set_max_single_read(pc->bev, MAX_READ_CHUNK);
    struct timeval tv = {(time_t)(p->connect_timeout_ms / 1000),
                         (suseconds_t)(p->connect_timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(pc->bev, &tv, &tv);
    struct sockaddr_storage ss;
    int sslen = (int)sizeof ss;
    int rc;
    if (evutil_parse_sockaddr_port(m->cfg.addr, (struct sockaddr *)&ss, &sslen) == 0) {
        rc = bufferevent_socket_connect(pc->bev, (struct sockaddr *)&ss, sslen);
    } else {
        if (!p->dns)
            p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                 EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        rc = p->dns ? bufferevent_socket_connect_hostname(pc->bev, p->dns, AF_UNSPEC, m->cfg.host,
                                                          m->cfg.port)
                    : -1;
    }
    if (rc != 0)
        peer_conn_fail(pc, "connect failed", false);
}

int peer_call(struct peer *p, uint32_t member_id, const char *path, const uint8_t *req, size_t len,
              uint32_t deadline_ms, peer_call_cb cb, void *arg)
{
    if (!path || path[0] != '/' || !cb)
        return MOM_ERR_INVALID;
    if (len > p->max_message)
        return MOM_ERR_TOO_LARGE;
    struct pmember *m = find_member(p, member_id);
    if (!m)
        return MOM_ERR_NOTFOUND;
    struct pcall *c = calloc(1, sizeof *c);
    if (!c)
        return MOM_ERR_NOMEM;
    c->peer = p;
    c->m = m;
    c->cb = cb;
    c->arg = arg;
    c->grpc_status = -1;
    c->path = strdup(path);
    c->req_len = GRPCMSG_PREFIX_LEN + len;
    c->req = malloc(c->req_len);
    c->timer = evtimer_new(p->base, call_timer_cb, c);
    if (!c->path || !c->req || !c->timer) {
        call_free(c);
        return MOM_ERR_NOMEM;
    }
    grpcmsg_reader_init(&c->reader, p->max_message);
    grpcmsg_pack_prefix(c->req, false, (uint32_t)len);
    if (len)
        memcpy(c->req + GRPCMSG_PREFIX_LEN, req, len);
    list_push(&m->waiting, c);
    if (deadline_ms) {
        c->deadline = clock_mono_ms() + deadline_ms;
        struct timeval tv = {(time_t)(deadline_ms / 1000),
                             (suseconds_t)(deadline_ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    }
    if (!p->tokens.verify) {
        call_fail_later(c, GRPC_UNAUTHENTICATED, "cluster secret not configured");
        return MOM_OK;
    }
    if (m->state == M_BACKOFF) {
        call_fail_later(c, GRPC_UNAVAILABLE, "peer unavailable");
        return MOM_OK;
    }
    if (m->state == M_READY && m->waiting.head == c) {
        int rc = call_send(m, c);
        if (rc != MOM_OK && rc != MOM_ERR_UNAVAILABLE)
            call_fail_later(c, (int)grpcmsg_status_from_err(rc), mom_strerror(rc));
    }
    return MOM_OK; /* else it waits for the connection or a free stream */
}

static void cli_on_headers(struct pcall *c, const struct h2conn_header *h, size_t n, bool end)
{
    for (size_t i = 0; i < n; i++) {
        if (hdr_is(&h[i], ":status")) {
            int v = 0;
            for (size_t k = 0; k < h[i].value_len && k < 3; k++)
                v = v * 10 + (h[i].value[k] - '0');
            c->http_status = v;
        } else if (hdr_is(&h[i], "grpc-status")) {
            int v = 0;
            bool ok = h[i].value_len > 0 && h[i].value_len <= 3;
            for (size_t k = 0; ok && k < h[i].value_len; k++) {
                ok = h[i].value[k] >= '0' && h[i].value[k] <= '9';
                v = v * 10 + (h[i].value[k] - '0');
            }
            c->grpc_status = ok ? v : GRPC_UNKNOWN;
        } else if (hdr_is(&h[i], "grpc-message")) {
            size_t len = h[i].value_len < MESSAGE_MAX - 1 ? h[i].value_len : MESSAGE_MAX - 1;
            grpcmsg_percent_decode(h[i].value, len, c->message);
        }
    }
    c->got_head = true;
    if (!end)
        return;
    int status = c->grpc_status;
    const char *msg = c->message;
    if (status < 0) {
        if (c->http_status != 200) {
            status = (int)grpcmsg_status_from_http(c->http_status);
            snprintf(c->message, sizeof c->message, "HTTP status %d", c->http_status);
        } else {
            status = GRPC_INTERNAL;
            msg = "response without grpc-status";
        }
    } else if (status == GRPC_OK && !c->have_reply) {
        status = GRPC_INTERNAL;
        msg = "response without a message";
    }
    call_complete(c, status, msg, false);
}

static void cli_on_data(struct pcall *c, const uint8_t *d, size_t n)
{
    while (n > 0) {
        size_t used;
        struct grpcmsg_view v;
        int rc = grpcmsg_reader_feed(&c->reader, d, n, &used, &v);
        d += used;
        n -= used;
        if (rc == MOM_ERR_TOO_LARGE) {
            call_complete(c, GRPC_RESOURCE_EXHAUSTED, "reply larger than the message limit", true);
            return;
        }
        if (rc < 0 || (rc == 1 && (c->have_reply || v.compressed))) {
            call_complete(c, GRPC_INTERNAL, "bad reply framing", true);
            return;
        }
        if (rc == 1) {
            c->reply = malloc(v.len ? v.len : 1);
            if (!c->reply) {
                call_complete(c, GRPC_RESOURCE_EXHAUSTED, "out of memory", true);
                return;
            }
            if (v.len)
                memcpy(c->reply, v.data, v.len);
            c->reply_len = v.len;
            c->have_reply = true;
        }
    }
}

/* ---------------- h2conn callbacks ---------------- */

static void conn_on_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h,
                            size_t n, bool end)
{
    struct pconn *pc = arg;
    if (pc->closing)
        return;
    if (pc->member) {
        if (user)
            cli_on_headers(user, h, n, end);
        return;
    }
    if (!user) {
        srv_on_request_headers(pc, sid, h, n, end);
        return;
    }
    if (end) /* request trailers: the request is complete */
        srv_on_data(user, NULL, 0, true);
}

static void conn_on_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end)
{
    struct pconn *pc = arg;
    (void)sid;
    if (!user || pc->closing)
        return;
    if (pc->member) {
        cli_on_data(user, d, n);
        return;
    }
    srv_on_data(user, d, n, end);
}

static int status_from_h2(uint32_t code)
{
    switch (code) {
    case H2_REFUSED_STREAM: return GRPC_UNAVAILABLE;
    case H2_CANCEL: return GRPC_CANCELLED;
    case H2_ENHANCE_YOUR_CALM: return GRPC_RESOURCE_EXHAUSTED;
    case H2_INADEQUATE_SECURITY: return GRPC_PERMISSION_DENIED;
    default: return GRPC_INTERNAL;
    }
}

static void conn_on_stream_close(void *arg, uint32_t sid, void *user, uint32_t code)
{
    struct pconn *pc = arg;
    (void)sid;
    if (pc->closing)
        return; /* conn_fail already ended every call and request */
    if (pc->member) {
        struct pcall *c = user;
        if (c) {
            if (code == H2_REFUSED_STREAM && (!c->deadline || c->deadline > clock_mono_ms())) {
                /* never processed by the peer: safe to send again */
                list_remove(c);
                c->conn = NULL;
                c->sid = 0;
                c->got_head = false;
                c->grpc_status = -1;
                c->http_status = 0;
                list_push(&c->m->waiting, c);
            } else {
                char msg[96];
                snprintf(msg, sizeof msg, "stream reset by peer (%s)", h2frame_error_name(code));
                c->conn = NULL;
                call_complete(c, status_from_h2(code), msg, false);
            }
        }
        if (pc->draining && !pc->closing && h2conn_open_streams(pc->h2) == 0)
            peer_conn_fail(pc, "drained after GOAWAY", true);
        else if (pc->member->conn == pc)
            member_drain(pc->member);
        return;
    }
    struct peer_request *r = user;
    if (!r)
        return;
    req_unlink(r);
    if (r->dispatched)
        r->answered = true; /* the handler still owns it; its answer is dropped */
    else
        req_free(r);
}

/* ---------------- listener and cron ---------------- */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l;
    (void)salen;
    struct peer *p = arg;
    if (p->n_server_conns >= MAX_SERVER_CONNS) {
        log_warn("peer listener: %d connections open, refusing another", MAX_SERVER_CONNS);
        evutil_closesocket(fd);
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    size_t same = 0;
    for (const struct pconn *o = p->conns; o; o = o->next)
        same += !o->member && !o->closing && strcmp(o->addr, host) == 0;
    if (same >= MAX_CONNS_PER_ADDRESS) {
        log_debug("peer listener: %zu connections from %s open, refusing another", same, host);
        evutil_closesocket(fd);
        return;
    }
    struct pconn *pc = conn_new(p, NULL);
    if (!pc) {
        evutil_closesocket(fd);
        return;
    }
    snprintf(pc->addr, sizeof pc->addr, "%s", host);
    snprintf(pc->desc, sizeof pc->desc, "from %s:%u", host, port);
    pc->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!pc->bev) {
        evutil_closesocket(fd);
        conn_destroy(pc);
        return;
    }
    pc->connected = true;
    set_nodelay(pc->bev);
    bufferevent_setcb(pc->bev, conn_read_cb, conn_write_cb, conn_event_cb, pc);
    bufferevent_set_max_single_read(pc->bev, MAX_READ_CHUNK);
    struct timeval tv = {HANDSHAKE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(pc->bev, &tv, NULL);
    if ((p->tls_server && peer_tls_start(pc, true) != MOM_OK) ||
        h2conn_new(H2CONN_SERVER, NULL, &conn_cbs, pc, &pc->h2) != MOM_OK) {
        peer_conn_fail(pc, "out of memory", false);
        return;
    }
    bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
}

/* Keepalive: PING an idle outgoing link, drop one that stays silent. */
static void cron_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer *p = arg;
    uint64_t now = clock_mono_ms();
    for (struct pconn *pc = p->conns; pc; pc = pc->next) {
        if (!pc->closing && pc->h2 && !h2conn_local_settings_acked(pc->h2) &&
            now - pc->opened_ms >= SETTINGS_ACK_TIMEOUT_MS) {
            log_warn("peer connection %s: SETTINGS not acknowledged within %u ms; dropped",
                     pc->desc, SETTINGS_ACK_TIMEOUT_MS);
            peer_conn_fail(pc, "SETTINGS not acknowledged", false);
            continue;
        }
        if (!pc->member || !pc->connected || pc->closing || !pc->h2)
            continue;
        uint64_t idle = now - pc->last_recv_ms;
        if (idle >= KEEPALIVE_DEAD_MS) {
            peer_conn_fail(pc, "no response to keepalive", false);
        } else if (idle >= KEEPALIVE_IDLE_MS) {
            uint8_t data[8];
            memcpy(data, &now, sizeof data);
            h2conn_ping(pc->h2, data);
        }
    }
}

/* ---------------- lifecycle ---------------- */

int peer_register(struct peer *p, const char *path, peer_handler_fn fn, void *arg)
{
    if (!path || path[0] != '/' || !fn)
        return MOM_ERR_INVALID;
    if (find_handler(p, path, strlen(path)))
        return MOM_ERR_EXISTS;
    struct handler *nh = realloc(p->handlers, (p->n_handlers + 1) * sizeof *nh);
    if (!nh)
        return MOM_ERR_NOMEM;
    p->handlers = nh;
    char *copy = strdup(path);
    if (!copy)
        return MOM_ERR_NOMEM;
    p->handlers[p->n_handlers++] = (struct handler){copy, fn, arg};
    return MOM_OK;
}

uint16_t peer_port(const struct peer *p)
{
    return p->port;
}
uint32_t peer_node_id(const struct peer *p)
{
    return p->node_id;
}

bool peer_member_connected(const struct peer *p, uint32_t member_id)
{
    for (size_t i = 0; i < p->n_members; i++)
        if (p->members[i].cfg.id == member_id)
            return p->members[i].state == M_READY && p->members[i].conn &&
                   h2conn_remote_settings_seen(p->members[i].conn->h2);
    return false;
}

/* Resolves a listen address "host:port" / "[v6]:port" (port 0 allowed).
 * Runs once at start-up, before the loop, so getaddrinfo may block. */
static int resolve_listen(const char *addr, struct sockaddr_storage *ss, int *sslen)
{
    struct peer_member m;
    size_t n = 0;
    char list[300];
    if (!addr || strlen(addr) > 270)
        return MOM_ERR_INVALID;
    snprintf(list, sizeof list, "1=%s", addr);
    if (peer_parse_members(list, &m, 1, &n, NULL, 0) != MOM_OK || n != 1)
        return MOM_ERR_INVALID;
    char port[8];
    snprintf(port, sizeof port, "%u", m.port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV};
    struct evutil_addrinfo *res = NULL;
    if (evutil_getaddrinfo(m.host, port, &hints, &res) != 0 || !res)
        return MOM_ERR_INVALID;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (int)res->ai_addrlen;
    evutil_freeaddrinfo(res);
    return MOM_OK;
}

static int bind_listener(struct peer *p, const char *addr)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof ss;
    if (resolve_listen(addr, &ss, &sslen) != MOM_OK) {
        log_error("peer listen address '%s' is not a valid host:port", addr ? addr : "");
        return MOM_ERR_INVALID;
    }
    p->listener = evconnlistener_new_bind(
        p->base, accept_cb, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        128, (struct sockaddr *)&ss, sslen);
    if (!p->listener) {
        log_error("peer listener: cannot bind %s: %s", addr,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return MOM_ERR_IO;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(p->listener), (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            p->port = ntohs(((struct sockaddr_in *)(void *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            p->port = ntohs(((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
    }
    return MOM_OK;
}

int peer_new(struct event_base *base, const struct peer_config *cfg, struct peer **out)
{
    *out = NULL;
    struct peer *p = calloc(1, sizeof *p);
    if (!p)
        return MOM_ERR_NOMEM;
    if (peer_tls_init(p, cfg) != MOM_OK) {
        peer_free(p);
        return MOM_ERR_INVALID;
    }
    p->base = base;
    p->node_id = cfg->node_id;
    p->max_message = cfg->max_message ? cfg->max_message : PEER_DEFAULT_MAX_MESSAGE;
    p->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000;
    p->backoff_base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 100;
    p->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 3000;
    if (p->backoff_max_ms < p->backoff_base_ms)
        p->backoff_max_ms = p->backoff_base_ms;
    p->rng = (clock_mono_us() ^ ((uint64_t)cfg->node_id << 32)) | 1;
    int rc = MOM_ERR_NOMEM;
    if (cfg->tokens && cfg->tokens->sign && cfg->tokens->verify) {
        p->tokens = *cfg->tokens;
    } else {
        log_warn("no cluster secret (MOM_CLUSTER_SECRET): peers cannot authenticate, every peer "
                 "call is refused with UNAUTHENTICATED");
        p->secret_warned = true;
    }
    p->reap_ev = event_new(base, -1, 0, reap_cb, p);
    p->cron_ev = event_new(base, -1, EV_PERSIST, cron_cb, p);
    p->member_ids = calloc(cfg->n_members + 1, sizeof *p->member_ids);
    p->members = calloc(cfg->n_members + 1, sizeof *p->members);
    if (!p->reap_ev || !p->cron_ev || !p->member_ids || !p->members)
        goto fail;
    for (size_t i = 0; i < cfg->n_members; i++) {
        p->member_ids[p->n_ids++] = cfg->members[i].id;
        if (cfg->members[i].id == cfg->node_id)
            continue;
        struct pmember *m = &p->members[p->n_members++];
        m->peer = p;
        m->cfg = cfg->members[i];
        m->retry_ev = evtimer_new(base, retry_cb, m);
        if (!m->retry_ev)
            goto fail;
    }
    rc = bind_listener(p, cfg->listen_addr);
    if (rc != MOM_OK)
        goto fail;
    struct timeval tv = {KEEPALIVE_IDLE_MS / 1000, (KEEPALIVE_IDLE_MS % 1000) * 1000};
    event_add(p->cron_ev, &tv);
    for (size_t i = 0; i < p->n_members; i++)
        member_connect(&p->members[i]);
    *out = p;
    return MOM_OK;
fail:
    peer_free(p);
    return rc;
}

void peer_free(struct peer *p)
{
    if (!p)
        return;
    if (p->listener)
        evconnlistener_free(p->listener);
    /* Say goodbye: GOAWAY(NO_ERROR, last stream) and one non-blocking write. */
    for (struct pconn *pc = p->conns; pc; pc = pc->next) {
        if (pc->h2 && pc->bev && !pc->closing && pc->connected) {
            h2conn_goaway(pc->h2, H2_NO_ERROR, "shutdown");
            /* the bufferevent's output is front-frozen: send its bytes directly */
            struct evbuffer *outb = bufferevent_get_output(pc->bev);
            evutil_socket_t fd = bufferevent_getfd(pc->bev);
            size_t len = evbuffer_get_length(outb);
            unsigned char *bytes = len ? evbuffer_pullup(outb, -1) : NULL;
            if (fd >= 0 && bytes) {
                ssize_t w = send(fd, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                (void)w; /* best effort: the process is stopping */
            }
        }
    }
    while (p->conns) {
        struct pconn *pc = p->conns;
        while (pc->calls.head) {
            struct pcall *c = pc->calls.head;
            list_remove(c);
            call_free(c);
        }
        while (pc->reqs) {
            struct peer_request *r = pc->reqs;
            pc->reqs = r->next;
            r->conn = NULL;
            req_free(r);
        }
        conn_destroy(pc);
    }
    for (size_t i = 0; i < p->n_members; i++) {
        struct pmember *m = &p->members[i];
        while (m->waiting.head) {
            struct pcall *c = m->waiting.head;
            list_remove(c);
            call_free(c);
        }
        if (m->retry_ev)
            event_free(m->retry_ev);
    }
    if (p->dns)
        evdns_base_free(p->dns, 0);
    if (p->reap_ev)
        event_free(p->reap_ev);
    if (p->cron_ev)
        event_free(p->cron_ev);
    for (size_t i = 0; i < p->n_handlers; i++)
        free(p->handlers[i].path);
    free(p->handlers);
    peer_tls_cleanup(p);
    free(p->members);
    free(p->member_ids);
    free(p);
}
