/* libevent glue of the peer channel: the listener, one bufferevent per
 * connection feeding h2conn, gRPC unary calls on top (server dispatch by
 * :path, client calls with deadlines), outgoing links to every member with
 * decorrelated-jitter reconnects and keepalive PINGs, and the HS256 peer
 * tokens. Ownership: the peer owns members, connections and handlers; a
 * connection owns its h2conn and bufferevent (fd included); a call is owned
 * by the list it is on until its callback has run; a request is owned by
 * its connection until dispatched, then by the handler until peer_respond.
 * Connections are never freed inside their own callbacks: they are marked
 * closing and freed by a reaper event (STYLE §5).
 * SPDX-License-Identifier: MIT */
#include "replication/peer.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "replication/grpcmsg.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jwt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_SERVER_CONNS 512
#define HANDSHAKE_TIMEOUT_S 10
#define KEEPALIVE_IDLE_MS 1000
#define KEEPALIVE_DEAD_MS 4000
#define FLUSH_TIMEOUT_S 1
#define TOKEN_MAX 1024
#define MESSAGE_MAX 256
#define MAX_READ_CHUNK (256 * 1024)
#define TLS_CHUNK 16384
#define OUT_HIGH_WATER (16u << 20) /* stop reading a peer that does not read our answers */

struct handler {
    char *path;
    peer_handler_fn fn;
    void *arg;
};

struct pcall;
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
    SSL *ssl;                  /* TLS: memory BIOs between the socket and h2conn */
    bool tls_ready;            /* handshake done, ALPN h2 agreed */
    struct evbuffer *tls_hold; /* h2 bytes written before the handshake ended */
    uint64_t last_recv_ms;
    char desc[320];
    struct call_list calls;    /* client: calls on streams */
    struct peer_request *reqs; /* server: requests not yet answered */
    /* server: the last token that verified on this connection */
    char tok[TOKEN_MAX];
    size_t tok_len;
    uint64_t tok_exp;
    uint32_t tok_node;
    bool auth_warned;
    struct pconn *next, *prev;
    struct pconn *reap_next;
};

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

struct peer {
    struct event_base *base;
    uint32_t node_id;
    char *secret; /* NULL = refuse all */
    size_t max_message;
    uint32_t connect_timeout_ms, backoff_base_ms, backoff_max_ms;
    struct evconnlistener *listener;
    uint16_t port;
    struct evdns_base *dns;
    SSL_CTX *tls_server, *tls_client; /* both or neither */
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
    char token[TOKEN_MAX];
    uint64_t token_exp;
    uint64_t rng;
    bool secret_warned;
};

/* ---------------- membership parsing (pure) ---------------- */

static void set_msg(char *msg, size_t msglen, const char *text, const char *item, size_t n)
{
    if (msg && msglen)
        snprintf(msg, msglen, "%s: '%.*s'", text, (int)(n > 64 ? 64 : n), item);
}

int peer_parse_members(const char *text, struct peer_member *out, size_t max, size_t *n, char *msg,
                       size_t msglen)
{
    *n = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *item = p;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        p = end ? end + 1 : p + len;
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        if (len == 0) {
            if (end)
                continue;
            break;
        }
        if (*n >= max) {
            set_msg(msg, msglen, "too many members", item, len);
            return MOM_ERR_TOO_LARGE;
        }
        const char *eq = memchr(item, '=', len);
        if (!eq || eq == item) {
            set_msg(msg, msglen, "expected id=host:port", item, len);
            return MOM_ERR_INVALID;
        }
        uint64_t id = 0;
        for (const char *q = item; q < eq; q++) {
            if (*q < '0' || *q > '9' || id > 0x7fffffffu) {
                set_msg(msg, msglen, "bad member id", item, len);
                return MOM_ERR_INVALID;
            }
            id = id * 10 + (uint64_t)(*q - '0');
        }
        if (id == 0 || id > 0x7fffffffu) {
            set_msg(msg, msglen, "member id must be 1..2147483647", item, len);
            return MOM_ERR_INVALID;
        }
        const char *addr = eq + 1;
        size_t alen = len - (size_t)(addr - item);
        const char *colon = NULL;
        const char *host = addr;
        size_t hlen;
        if (alen > 0 && addr[0] == '[') {
            const char *rb = memchr(addr, ']', alen);
            if (!rb || rb + 1 >= addr + alen || rb[1] != ':') {
                set_msg(msg, msglen, "bad IPv6 address", item, len);
                return MOM_ERR_INVALID;
            }
            host = addr + 1;
            hlen = (size_t)(rb - host);
            colon = rb + 1;
        } else {
            for (const char *q = addr + alen; q > addr; q--)
                if (q[-1] == ':') {
                    colon = q - 1;
                    break;
                }
            if (!colon) {
                set_msg(msg, msglen, "missing port", item, len);
                return MOM_ERR_INVALID;
            }
            hlen = (size_t)(colon - addr);
        }
        size_t plen = alen - (size_t)(colon + 1 - addr);
        if (hlen == 0 || hlen >= sizeof out->host || plen == 0 || plen > 5 ||
            alen >= sizeof out->addr) {
            set_msg(msg, msglen, "bad host:port", item, len);
            return MOM_ERR_INVALID;
        }
        uint32_t port = 0;
        for (size_t i = 0; i < plen; i++) {
            char ch = colon[1 + i];
            if (ch < '0' || ch > '9') {
                set_msg(msg, msglen, "bad port", item, len);
                return MOM_ERR_INVALID;
            }
            port = port * 10 + (uint32_t)(ch - '0');
        }
        if (port > 65535) {
            set_msg(msg, msglen, "bad port", item, len);
            return MOM_ERR_INVALID;
        }
        for (size_t k = 0; k < *n; k++)
            if (out[k].id == id) {
                set_msg(msg, msglen, "duplicate member id", item, len);
                return MOM_ERR_INVALID;
            }
        struct peer_member *m = &out[(*n)++];
        memset(m, 0, sizeof *m);
        m->id = (uint32_t)id;
        memcpy(m->host, host, hlen);
        m->port = (uint16_t)port;
        memcpy(m->addr, addr, alen);
    }
    return MOM_OK;
}

/* ---------------- peer tokens ---------------- */

int peer_token_sign(const char *secret, uint32_t node_id, uint64_t now_s, uint32_t ttl_s, char *out,
                    size_t outlen)
{
    jwt_t *j = NULL;
    char sub[32];
    snprintf(sub, sizeof sub, "node:%u", node_id);
    int rc = MOM_ERR_NOMEM;
    if (jwt_new(&j) != 0)
        return MOM_ERR_NOMEM;
    if (jwt_add_grant(j, "sub", sub) == 0 && jwt_add_grant(j, "aud", PEER_AUDIENCE) == 0 &&
        jwt_add_grant_int(j, "iat", (long)now_s) == 0 &&
        jwt_add_grant_int(j, "exp", (long)(now_s + ttl_s)) == 0 &&
        jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0) {
        char *tok = jwt_encode_str(j);
        if (tok) {
            size_t len = strlen(tok);
            if (len + 1 > outlen) {
                rc = MOM_ERR_TOO_LARGE;
            } else {
                memcpy(out, tok, len + 1);
                rc = (int)len;
            }
            free(tok);
        }
    }
    jwt_free(j);
    return rc;
}

static int token_verify(const char *secret, const char *token, size_t len, uint64_t now_s,
                        uint32_t *node_id, uint64_t *exp_s, const char **why)
{
    char tok[TOKEN_MAX];
    *why = "malformed token";
    if (len == 0 || len >= sizeof tok || memchr(token, '\0', len))
        return MOM_ERR_AUTH;
    memcpy(tok, token, len);
    tok[len] = '\0';
    jwt_t *j = NULL;
    if (jwt_decode(&j, tok, (const unsigned char *)secret, (int)strlen(secret)) != 0 || !j) {
        *why = "bad signature or encoding";
        return MOM_ERR_AUTH;
    }
    int rc = MOM_ERR_AUTH;
    /* the alg check is what makes a key mandatory (PITFALLS §5) */
    if (jwt_get_alg(j) != JWT_ALG_HS256) {
        *why = "alg is not HS256";
        goto out;
    }
    errno = 0;
    long exp = jwt_get_grant_int(j, "exp");
    if (errno != 0 || exp <= 0 || (uint64_t)exp <= now_s) {
        *why = errno != 0 ? "no exp" : "expired";
        goto out;
    }
    errno = 0;
    long nbf = jwt_get_grant_int(j, "nbf");
    if (errno == 0 && nbf > 0 && (uint64_t)nbf > now_s + 5) {
        *why = "not yet valid";
        goto out;
    }
    const char *aud = jwt_get_grant(j, "aud");
    if (!aud || strcmp(aud, PEER_AUDIENCE) != 0) {
        *why = "wrong audience";
        goto out;
    }
    const char *sub = jwt_get_grant(j, "sub");
    if (!sub || strncmp(sub, "node:", 5) != 0 || sub[5] == '\0') {
        *why = "sub is not node:<id>";
        goto out;
    }
    uint64_t id = 0;
    for (const char *q = sub + 5; *q; q++) {
        if (*q < '0' || *q > '9' || id > 0x7fffffffu) {
            *why = "sub is not node:<id>";
            goto out;
        }
        id = id * 10 + (uint64_t)(*q - '0');
    }
    if (id == 0 || id > 0x7fffffffu) {
        *why = "sub is not node:<id>";
        goto out;
    }
    *node_id = (uint32_t)id;
    if (exp_s)
        *exp_s = (uint64_t)exp;
    rc = MOM_OK;
out:
    jwt_free(j);
    return rc;
}

int peer_token_verify(const char *secret, const char *token, size_t len, uint64_t now_s,
                      uint32_t *node_id)
{
    const char *why;
    return token_verify(secret, token, len, now_s, node_id, NULL, &why);
}

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
static void conn_fail(struct pconn *pc, const char *reason, bool flush);
static void member_drain(struct pmember *m);
static void member_backoff(struct pmember *m);
static void call_complete(struct pcall *c, int status, const char *msg, bool reset);
static void req_free(struct peer_request *r);
static void srv_answer(struct peer_request *r, int status, const char *msg, const uint8_t *reply,
                       size_t len);

/* ---------------- TLS (OpenSSL over memory BIOs) ---------------- */

/* Moves what OpenSSL produced onto the socket. */
static int tls_flush(struct pconn *pc)
{
    BIO *wbio = SSL_get_wbio(pc->ssl);
    uint8_t buf[TLS_CHUNK];
    int n;
    while ((n = BIO_read(wbio, buf, (int)sizeof buf)) > 0)
        if (bufferevent_write(pc->bev, buf, (size_t)n) != 0)
            return MOM_ERR_NOMEM;
    return MOM_OK;
}

static int tls_write(struct pconn *pc, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(pc->ssl, data, chunk);
        if (n <= 0)
            return MOM_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return tls_flush(pc);
}

static const char *tls_error(void)
{
    unsigned long e = ERR_get_error();
    return e ? ERR_reason_error_string(e) : "TLS error";
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h2[] = "\x02h2";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* A server or client context: our certificate, peers verified against the
 * cluster CA (mutual TLS), TLS 1.2 at least, ALPN h2 only. */
static SSL_CTX *tls_ctx_new(bool server, const char *cert, const char *key, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        log_error("peer TLS: cannot load certificate %s, key %s or CA %s: %s", cert, key, ca,
                  tls_error());
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (server)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    else if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Puts TLS under a fresh connection; the handshake starts at once. */
static int tls_start(struct pconn *pc, bool server)
{
    struct peer *p = pc->peer;
    pc->ssl = SSL_new(server ? p->tls_server : p->tls_client);
    pc->tls_hold = evbuffer_new();
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!pc->ssl || !pc->tls_hold || !rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return MOM_ERR_NOMEM;
    }
    SSL_set_bio(pc->ssl, rbio, wbio);
    if (server) {
        SSL_set_accept_state(pc->ssl);
        return MOM_OK;
    }
    SSL_set_connect_state(pc->ssl);
    const char *host = pc->member->cfg.host;
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
        SSL_set_tlsext_host_name(pc->ssl, host);
    SSL_do_handshake(pc->ssl);
    return tls_flush(pc);
}

static int conn_send(void *arg, const uint8_t *data, size_t len)
{
    struct pconn *pc = arg;
    if (!pc->bev)
        return MOM_ERR_CLOSED;
    if (pc->ssl) {
        if (!pc->tls_ready)
            return evbuffer_add(pc->tls_hold, data, len) == 0 ? MOM_OK : MOM_ERR_NOMEM;
        return tls_write(pc, data, len);
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
    if (pc->ssl)
        SSL_free(pc->ssl);
    if (pc->tls_hold)
        evbuffer_free(pc->tls_hold);
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

/* The one teardown path: fails the calls, detaches the requests, and frees
 * the connection later (after flushing a GOAWAY when asked). */
static void conn_fail(struct pconn *pc, const char *reason, bool flush)
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

/* Feeds (decrypted) bytes to h2conn; false once the connection is closing. */
static bool feed_h2(struct pconn *pc, const uint8_t *p, size_t n)
{
    uint32_t code = 0;
    int rc = h2conn_recv(pc->h2, p, n, &code);
    if (rc < 0) {
        char sample[80];
        log_escape_sample(p, n < 16 ? n : 16, sample, sizeof sample);
        if (rc == MOM_ERR_PROTOCOL)
            log_warn("peer connection %s: HTTP/2 %s, sent GOAWAY (input starts \"%s\")", pc->desc,
                     h2frame_error_name(code), sample);
        conn_fail(pc, rc == MOM_ERR_PROTOCOL ? "protocol error" : mom_strerror(rc), true);
    }
    return !pc->closing;
}

static void tls_read(struct pconn *pc, struct evbuffer *in)
{
    BIO *rbio = SSL_get_rbio(pc->ssl);
    struct evbuffer_iovec v[8];
    int nv = evbuffer_peek(in, -1, NULL, v, 8);
    size_t used = 0;
    for (int i = 0; i < nv && i < 8; i++) {
        if (BIO_write(rbio, v[i].iov_base, (int)v[i].iov_len) != (int)v[i].iov_len)
            break;
        used += v[i].iov_len;
    }
    evbuffer_drain(in, used);
    if (!pc->tls_ready) {
        int rc = SSL_do_handshake(pc->ssl);
        tls_flush(pc);
        if (rc != 1) {
            int err = SSL_get_error(pc->ssl, rc);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                long vr = SSL_get_verify_result(pc->ssl);
                log_warn("peer connection %s: TLS handshake failed: %s", pc->desc,
                         vr != X509_V_OK ? X509_verify_cert_error_string(vr) : tls_error());
                conn_fail(pc, "TLS handshake failed", true);
            }
            return;
        }
        const unsigned char *alpn = NULL;
        unsigned int alen = 0;
        SSL_get0_alpn_selected(pc->ssl, &alpn, &alen);
        if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            log_warn("peer connection %s: TLS peer did not agree on ALPN h2", pc->desc);
            conn_fail(pc, "no ALPN h2", true);
            return;
        }
        pc->tls_ready = true;
        size_t held = evbuffer_get_length(pc->tls_hold);
        if (held && tls_write(pc, evbuffer_pullup(pc->tls_hold, -1), held) != MOM_OK) {
            conn_fail(pc, "TLS write failed", false);
            return;
        }
        evbuffer_drain(pc->tls_hold, held);
    }
    uint8_t buf[TLS_CHUNK];
    for (;;) {
        int n = SSL_read(pc->ssl, buf, (int)sizeof buf);
        if (n > 0) {
            if (!feed_h2(pc, buf, (size_t)n))
                return;
            continue;
        }
        int err = SSL_get_error(pc->ssl, n);
        tls_flush(pc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            return;
        conn_fail(pc, err == SSL_ERROR_ZERO_RETURN ? "TLS closed by peer" : tls_error(), false);
        return;
    }
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
            tls_read(pc, in);
            continue;
        }
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < nv && i < 8; i++) {
            used += v[i].iov_len;
            if (!feed_h2(pc, v[i].iov_base, v[i].iov_len))
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
        if ((pc->peer->tls_client && tls_start(pc, false) != MOM_OK) ||
            h2conn_new(H2CONN_CLIENT, &set, &conn_cbs, pc, &pc->h2) != MOM_OK) {
            conn_fail(pc, "out of memory", false);
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
    conn_fail(pc, why, false);
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
        conn_fail(pc, "GOAWAY", true);
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
    if (!p->secret) {
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
    uint32_t node = 0;
    uint64_t exp = 0;
    const char *why = NULL;
    if (token_verify(p->secret, tok, len, now_s, &node, &exp, &why) != MOM_OK)
        return why;
    if (!is_member(p, node))
        return "token subject is not a cluster member";
    if (len < sizeof pc->tok) {
        memcpy(pc->tok, tok, len);
        pc->tok_len = len;
        pc->tok_exp = exp;
        pc->tok_node = node;
    }
    *from = node;
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
        peer_token_sign(p->secret, p->node_id, now_s, PEER_TOKEN_TTL_S, p->token, sizeof p->token);
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
    char auth[TOKEN_MAX + 8];
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
            conn_fail(pc, "connection retired", true);
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
        conn_fail(pc, "connect failed", false);
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
    if (!p->secret) {
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
            conn_fail(pc, "drained after GOAWAY", true);
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
    struct pconn *pc = conn_new(p, NULL);
    if (!pc) {
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
    if ((p->tls_server && tls_start(pc, true) != MOM_OK) ||
        h2conn_new(H2CONN_SERVER, NULL, &conn_cbs, pc, &pc->h2) != MOM_OK) {
        conn_fail(pc, "out of memory", false);
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
        if (!pc->member || !pc->connected || pc->closing || !pc->h2)
            continue;
        uint64_t idle = now - pc->last_recv_ms;
        if (idle >= KEEPALIVE_DEAD_MS) {
            conn_fail(pc, "no response to keepalive", false);
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
    bool has_cert = cfg->tls_cert && *cfg->tls_cert, has_key = cfg->tls_key && *cfg->tls_key,
         has_ca = cfg->tls_ca && *cfg->tls_ca;
    if ((has_cert || has_key || has_ca) && !(has_cert && has_key && has_ca)) {
        log_error("peer TLS needs all of MOM_PEER_TLS_CERT, MOM_PEER_TLS_KEY and MOM_PEER_TLS_CA");
        return MOM_ERR_INVALID;
    }
    struct peer *p = calloc(1, sizeof *p);
    if (!p)
        return MOM_ERR_NOMEM;
    if (has_cert) {
        p->tls_server = tls_ctx_new(true, cfg->tls_cert, cfg->tls_key, cfg->tls_ca);
        p->tls_client = tls_ctx_new(false, cfg->tls_cert, cfg->tls_key, cfg->tls_ca);
        if (!p->tls_server || !p->tls_client) {
            peer_free(p);
            return MOM_ERR_INVALID;
        }
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
    if (cfg->cluster_secret && *cfg->cluster_secret) {
        p->secret = strdup(cfg->cluster_secret);
        if (!p->secret)
            goto fail;
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
    if (p->tls_server)
        SSL_CTX_free(p->tls_server);
    if (p->tls_client)
        SSL_CTX_free(p->tls_client);
    free(p->members);
    free(p->member_ids);
    free(p->secret);
    free(p);
}
