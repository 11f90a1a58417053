/* The server core on the loop: evhtp set-up and the request life cycle
 * (413 before the body, routing, 404/405, authentication), the one place a
 * reply is written (common headers, release of held requests), Commands
 * proposed to the replication node and answered on apply, long-poll waiters
 * woken by the store's change notices, and the cron that proposes Ticks.
 * A request's context dies only in evhtp's on_request_fini hook; a proposal
 * outlives it and is answered into the void if the client left.
 * SPDX-License-Identifier: MIT */
#include "broker/server.h"

#include "broker/access_log.h"
#include "broker/client_tls.h"
#include "broker/cors.h"
#include "broker/hasher.h"
#include "broker/metrics.h"
#include "broker/server_internal.h"
#include "broker/stream.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "replication/node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRON_INTERVAL_MS 20

/* Password checks waiting for the hasher beyond this are answered 503. */
#define HASHER_MAX_PENDING 256u
/* Failed-login budgets: after MOM_LOGIN_FAILURES (per username at an address) or
 * MOM_LOGIN_ADDR_FAILURES (per address) failures in a row, one more try
 * per period. Each table keeps at most this many keys. */
#define LOGIN_USER_PERIOD_MS 2000u
#define LOGIN_ADDR_PERIOD_MS 200u
#define LOGIN_TABLE_SIZE 16384u

/* ---- replies ---- */

static void add_header(evhtp_request_t *req, const char *name, const char *value)
{
    evhtp_headers_add_header(req->headers_out, evhtp_header_new(name, value, 0, 1));
}

static void wait_unlink(struct request_ctx *rc)
{
    if (!rc->in_wait_list)
        return;
    struct server *s = rc->srv;
    if (rc->wprev)
        rc->wprev->wnext = rc->wnext;
    else
        s->waiters = rc->wnext;
    if (rc->wnext)
        rc->wnext->wprev = rc->wprev;
    rc->wprev = rc->wnext = NULL;
    rc->in_wait_list = false;
}

/* MOM_CORS_ORIGINS: an allowed Origin gets itself back, with the headers
 * a script may read. */
static void add_cors_headers(const struct server *s, evhtp_request_t *req)
{
    if (!s->cfg->cors_origins[0])
        return;
    add_header(req, "Vary", "Origin");
    const char *origin = server_header(req->headers_in, "Origin");
    if (!cors_origin_allowed(s->cfg->cors_origins, origin))
        return;
    add_header(req, "Access-Control-Allow-Origin", origin);
    add_header(req, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
}

/* Counts an answered request (route, method, status, time since arrival)
 * and writes its access-log line when that is on. */
static void account(struct server *s, evhtp_request_t *req, enum route route,
                    enum http_method method, int status, uint64_t start_us, const char *user,
                    size_t bytes)
{
    uint64_t now = 0;
#ifndef MOM_METRICS_OFF
    now = clock_mono_us();
    metrics_count_request(s->metrics, route, method, status, now > start_us ? now - start_us : 0);
#else
    (void)route;
    (void)method;
#endif
    if (!s->cfg->access_log)
        return;
    if (!now)
        now = clock_mono_us();
    struct access_record ar = {
        .node = s->node_id_text,
        .method = htparser_get_methodstr_m(evhtp_request_get_method(req)),
        .path = req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "/",
        .query = req->uri ? (const char *)req->uri->query_raw : NULL,
        .user = user,
        .status = status,
        .micros = now > start_us && start_us ? now - start_us : 0,
        .bytes = bytes,
    };
    access_log_write(&ar);
}

void server_account(struct request_ctx *rc, int status, size_t bytes)
{
    account(rc->srv, rc->req, rc->match.route, rc->method, status, rc->start_us, rc->id.user,
            bytes);
}

void server_send(struct request_ctx *rc, const struct reply *r)
{
    server_send_typed(rc, r, "application/json");
}

/* An answer's status line and headers, built in place. */
struct head {
    char buf[640];
    size_t len;
    bool overflow;
};

static void head_add(struct head *h, const char *s, size_t n)
{
    if (n > sizeof h->buf - h->len) {
        h->overflow = true;
        return;
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

static void head_str(struct head *h, const char *s)
{
    head_add(h, s, strlen(s));
}

static void head_u64(struct head *h, uint64_t v)
{
    char t[20];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    head_add(h, t + i, sizeof t - i);
}

/* Appends the answer's bytes from offset skip on to the connection's output
 * as one block. */
static bool queue_answer(evhtp_request_t *req, const struct head *h, const char *body,
                         size_t body_len, size_t skip)
{
    size_t len = h->len + body_len - skip;
    struct evbuffer *out = bufferevent_get_output(req->conn->bev);
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) != 1 || v.iov_len < len)
        return false;
    char *p = v.iov_base;
    if (skip < h->len) {
        memcpy(p, h->buf + skip, h->len - skip);
        p += h->len - skip;
        skip = 0;
    } else {
        skip -= h->len;
    }
    if (body_len > skip)
        memcpy(p, body + skip, body_len - skip);
    v.iov_len = len;
    return evbuffer_commit_space(out, &v, 1) == 0;
}

/* Writes what evhtp_send_reply would for an answer whose only headers are
 * the common ones, as one block: straight to the socket for a held request
 * when it can (server_conn_write_answer), else appended to the connection's
 * output. evhtp allocates every header as a list entry (the value copied), walks
 * the list for Content-Type and twice for Content-Length, and appends each
 * header in four pieces. The bytes are evhtp's: the status line with its
 * reason phrase, X-Mom-Node, Retry-After on 429 and 503, Content-Type with
 * a body, then what evhtp adds itself in its order (Content-Length of a
 * body; "Connection: close" to an HTTP/1.1 client that asked to close, then
 * "Content-Length: 0" without a body; "Connection: keep-alive" to an
 * HTTP/1.0 client that asked to keep the connection; "Content-Type:
 * text/plain" without a body), and the request is finished as evhtp would.
 * Returns false, having written nothing, when evhtp must build the answer:
 * headers were added for it, CORS is on, or the request is unusual. */
static bool send_direct(struct request_ctx *rc, const struct reply *r, const char *content_type)
{
    evhtp_request_t *req = rc->req;
    if (!TAILQ_EMPTY(req->headers_out) || rc->srv->cfg->cors_origins[0] ||
        (req->flags & EVHTP_REQ_FLAG_CHUNKED) || evbuffer_get_length(req->buffer_out) ||
        (req->proto != EVHTP_PROTO_11 && req->proto != EVHTP_PROTO_10) || !req->conn ||
        !req->conn->bev || htparser_get_multipart(req->conn->parser) == 1)
        return false;
    size_t body_len = r->body ? r->body_len : 0;
    bool keepalive = (req->flags & EVHTP_REQ_FLAG_KEEPALIVE) != 0;
    struct head h = {.len = 0};
    req->status = (evhtp_res)r->status;
    head_str(&h, "HTTP/");
    head_u64(&h, htparser_get_major(req->conn->parser));
    head_add(&h, ".", 1);
    head_u64(&h, htparser_get_minor(req->conn->parser));
    head_add(&h, " ", 1);
    head_u64(&h, (uint64_t)r->status);
    head_add(&h, " ", 1);
    head_str(&h, evhtp_request_get_status_code_str(req));
    head_str(&h, "\r\nX-Mom-Node: ");
    head_str(&h, rc->srv->node_id_text);
    head_add(&h, "\r\n", 2);
    if (r->status == 429 || r->status == 503)
        head_str(&h, "Retry-After: 1\r\n");
    if (body_len) {
        head_str(&h, "Content-Type: ");
        head_str(&h, content_type);
        head_str(&h, "\r\nContent-Length: ");
        head_u64(&h, body_len);
        head_add(&h, "\r\n", 2);
    }
    if (req->proto == EVHTP_PROTO_11) {
        if (!keepalive)
            head_str(&h, "Connection: close\r\n");
        if (!body_len)
            head_str(&h, "Content-Length: 0\r\n");
    } else if (keepalive) {
        head_str(&h, "Connection: keep-alive\r\n");
    }
    if (!body_len)
        head_str(&h, "Content-Type: text/plain\r\n");
    head_add(&h, "\r\n", 2);
    if (h.overflow)
        return false;
    /* A held request's answer goes straight to the socket when it can
     * (server_conn_write_answer); what the socket did not take is queued. */
    size_t sent = server_conn_write_answer(rc, h.buf, h.len, r->body, body_len);
    if (sent < h.len + body_len && !queue_answer(req, &h, r->body, body_len, sent)) {
        if (sent == 0)
            return false;
        /* a part is on the wire and the rest cannot be queued: close the
         * connection after it, so the client sees a short answer */
        req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
    }
    req->flags |= EVHTP_REQ_FLAG_FINISHED;
    return true;
}

void server_send_typed(struct request_ctx *rc, const struct reply *r, const char *content_type)
{
    if (rc->done)
        return;
    rc->done = true;
    wait_unlink(rc);
    if (rc->timer)
        evtimer_del(rc->timer);
    struct reply translated = {0};
    if (compat_translate(rc, r, &translated))
        r = &translated;
    evhtp_request_t *req = rc->req;
    if (!send_direct(rc, r, content_type)) {
        add_header(req, "X-Mom-Node", rc->srv->node_id_text);
        add_cors_headers(rc->srv, req);
        if ((r->status == 429 || r->status == 503) &&
            !server_header(req->headers_out, "Retry-After"))
            add_header(req, "Retry-After", "1");
        if (r->body && r->body_len) {
            add_header(req, "Content-Type", content_type);
            evbuffer_add(req->buffer_out, r->body, r->body_len);
        }
        evhtp_send_reply(req, (evhtp_res)r->status);
    }
    /* a prototype route is counted under its own pattern, not the /v1
     * route it was rewritten into */
    account(rc->srv, req, rc->compat_route ? rc->compat_route : rc->match.route, rc->method,
            r->status, rc->start_us, rc->id.user, r->body ? r->body_len : 0);
    reply_cleanup(&translated);
    if (rc->held) {
        rc->held = false;
        server_conn_release(rc);
    }
}

void server_fail(struct request_ctx *rc, enum api_error e, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct reply r = {0};
    render_error(&r, e, "%s", message);
    server_send(rc, &r);
    reply_cleanup(&r);
}

void server_send_parse_error(struct request_ctx *rc, const struct parse_error *err)
{
    server_fail(rc, err->kind, "%s", err->message);
}

void server_start_stream(struct request_ctx *rc)
{
    rc->done = true;
    wait_unlink(rc);
    if (rc->timer)
        evtimer_del(rc->timer);
    evhtp_request_t *req = rc->req;
    add_header(req, "X-Mom-Node", rc->srv->node_id_text);
    add_cors_headers(rc->srv, req);
    add_header(req, "Content-Type", "text/event-stream");
    add_header(req, "Cache-Control", "no-cache");
    evhtp_send_reply_chunk_start(req, EVHTP_RES_OK);
    account(rc->srv, req, rc->match.route, rc->method, 200, rc->start_us, rc->id.user, 0);
    if (rc->held) {
        rc->held = false;
        server_conn_release(rc);
    }
}

static void pause_request(struct request_ctx *rc)
{
    if (!rc->held) {
        rc->held = true;
        server_conn_hold(rc);
    }
}

void server_pause(struct request_ctx *rc)
{
    pause_request(rc);
}

void server_add_header(struct request_ctx *rc, const char *name, const char *value)
{
    add_header(rc->req, name, value);
}

size_t server_client_addr(const struct request_ctx *rc, uint8_t out[SERVER_ADDR_KEY_MAX])
{
    const struct sockaddr *sa = rc->req->conn ? rc->req->conn->saddr : NULL;
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        out[0] = 6;
        memcpy(out + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 8);
        return 9;
    }
    return 0;
}

struct store_caller server_caller(const struct request_ctx *rc)
{
    return (struct store_caller){.user = rc->id.user, .admin = rc->id.admin};
}

/* The time a Command is stamped with: the wall clock, but never below the
 * last stamp applied and never running more than 1% faster than the
 * monotonic clock since this process's previous stamp (a forward jump of
 * the leader's wall clock must not end leases early). */
uint64_t server_now_stamp(struct server *s)
{
    uint64_t mono = clock_mono_ms();
    uint64_t now = clock_stamp_next(s->own_stamp, s->own_stamp_mono, clock_wall_ms(), mono);
    if (now < s->last_stamp)
        now = s->last_stamp;
    s->last_stamp = s->own_stamp = now;
    s->own_stamp_mono = mono;
    return now;
}

/* ---- proposals ---- */

static void send_storage_error(struct request_ctx *rc, int err)
{
    if (err == MOM_ERR_UNAVAILABLE && node_writable(rc->srv->node))
        server_fail(rc, API_ERR_UNAVAILABLE,
                    "the write was not confirmed (no commit in time, or the leader changed); "
                    "it may still commit: retry with the same Idempotency-Key");
    else if (err == MOM_ERR_NOSPACE)
        server_fail(rc, API_ERR_STORAGE_FULL, "the log cannot be written: disk full");
    else
        server_fail(rc, API_ERR_STORAGE_UNAVAILABLE, "the write could not be made durable: %s",
                    mom_strerror(err));
}

/* Frees a proposal and the items it owns. */
static void proposal_free(struct proposal *p)
{
    if (p && p->has_cmd) {
        free(p->spans);
        if (p->cmd.items != &p->item)
            free(p->cmd.items);
    }
    free(p);
}

/* Whether every item body lies in the request body (or is empty), so the
 * command stays valid as long as the request. */
static bool items_in_request(const struct request_ctx *rc, const struct command *cmd)
{
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        if (it->body_len && (!rc->body || (const char *)it->body < rc->body ||
                             (const char *)it->body + it->body_len > rc->body + rc->body_len))
            return false;
    }
    return true;
}

/* A batch's items for its proposal: spans when every item is only a body
 * (no content type, no delay), else a copy. false when out of memory. */
static bool keep_items(struct proposal *p, const struct command *cmd)
{
    size_t n = cmd->item_count;
    bool plain = true;
    for (size_t i = 0; plain && i < n; i++)
        plain = !cmd->items[i].content_type[0] && !cmd->items[i].delay_ms;
    if (plain) {
        p->spans = malloc(n * sizeof *p->spans);
        for (size_t i = 0; p->spans && i < n; i++) {
            p->spans[i].body = cmd->items[i].body;
            p->spans[i].len = cmd->items[i].body_len;
        }
        return p->spans != NULL;
    }
    p->cmd.items = malloc(n * sizeof *cmd->items);
    if (p->cmd.items)
        memcpy(p->cmd.items, cmd->items, n * sizeof *cmd->items);
    return p->cmd.items != NULL;
}

/* The command of a proposal that kept it (p->has_cmd), its items rebuilt
 * from spans into s->apply_items; NULL when out of memory. */
static const struct command *kept_command(struct server *s, struct proposal *p)
{
    if (!p->spans)
        return &p->cmd;
    size_t n = p->cmd.item_count;
    if (n > s->apply_items_cap) {
        struct command_item *a = realloc(s->apply_items, n * sizeof *a);
        if (!a)
            return NULL;
        s->apply_items = a;
        s->apply_items_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        struct command_item *it = &s->apply_items[i];
        it->body = p->spans[i].body;
        it->body_len = p->spans[i].len;
        it->content_type[0] = '\0';
        it->delay_ms = 0;
    }
    p->cmd.items = s->apply_items; /* not the proposal's: cleared after apply */
    return &p->cmd;
}

void server_propose(struct request_ctx *rc, struct command *cmd)
{
    struct server *s = rc->srv;
    cmd->pb.time_ms = server_now_stamp(s);
    if (rc->id.user[0]) {
        size_t n = strnlen(rc->id.user, sizeof cmd->pb.user - 1);
        memcpy(cmd->pb.user, rc->id.user, n);
        cmd->pb.user[n] = '\0';
        cmd->pb.admin = rc->id.admin;
    }
    uint8_t *buf;
    size_t len;
    int err = command_encode(cmd, &buf, &len);
    if (err != MOM_OK) {
        server_fail(rc, API_ERR_BAD_REQUEST, "the request cannot be encoded: %s",
                    mom_strerror(err));
        return;
    }
    struct proposal *p = malloc(sizeof *p);
    if (!p) {
        free(buf);
        server_fail(rc, API_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    p->rc = rc;
    p->done = NULL;
    p->spans = NULL;
    /* an item body must live in the request (a batch item's decoded
     * base64 is freed when its handler returns); SetAcl's lists are the
     * handler's, so it is applied from the logged bytes. The items array
     * is the handler's too (keep_items). */
    p->has_cmd = cmd->pb.which_kind != mom_v1_Command_set_acl_tag && items_in_request(rc, cmd);
    if (p->has_cmd) {
        p->cmd = *cmd;
        p->cmd.items = NULL;
        if (cmd->item_count == 1) {
            p->item = cmd->items[0];
            p->cmd.items = &p->item;
        } else if (cmd->item_count > 1 && !keep_items(p, cmd)) {
            p->has_cmd = false; /* applied from the logged bytes */
        }
    }
    err = node_propose(s->node, buf, len, p);
    if (err != MOM_OK) {
        proposal_free(p);
        send_storage_error(rc, err);
        return;
    }
    rc->proposal = p;
    pause_request(rc);
}

int server_propose_internal(struct server *s, struct command *cmd)
{
    return server_propose_cb(s, cmd, NULL, NULL);
}

int server_propose_cb(struct server *s, struct command *cmd, server_done_fn done, void *arg)
{
    if (s->closing)
        return MOM_ERR_CLOSED; /* the node is closed (or closing) */
    cmd->pb.time_ms = server_now_stamp(s);
    uint8_t *buf;
    size_t len;
    int err = command_encode(cmd, &buf, &len);
    if (err != MOM_OK)
        return err;
    struct proposal *p = calloc(1, sizeof *p); /* rc NULL: no request is answered */
    if (!p) {
        free(buf);
        return MOM_ERR_NOMEM;
    }
    p->done = done;
    p->done_arg = arg;
    err = node_propose(s->node, buf, len, p);
    if (err != MOM_OK)
        proposal_free(p);
    return err;
}

/* The committed answer for a request: a receive that came back empty keeps
 * waiting while its long poll lasts. */
static void deliver(struct request_ctx *rc, const struct reply *r)
{
    if (rc->wait == WAIT_RECEIVE && render_is_empty_receive(r) &&
        clock_mono_ms() < rc->deadline_ms) {
        server_wait(rc, WAIT_RECEIVE);
        return;
    }
    server_send(rc, r);
}

static void process_wakes(struct server *s);

/* Sanitizer builds (make asan, so the whole suite) check that a command
 * applied from memory encodes to exactly the logged bytes, which followers
 * and recovery decode. */
static void check_local_command(const struct command *cmd, const uint8_t *data, size_t len)
{
#ifdef MOM_CHECK_LOCAL_APPLY
    uint8_t *again;
    size_t again_len;
    if (command_encode(cmd, &again, &again_len) != MOM_OK || again_len != len ||
        memcmp(again, data, len) != 0) {
        log_error("a local command does not match its log entry");
        abort();
    }
    free(again);
#else
    (void)cmd;
    (void)data;
    (void)len;
#endif
}

static void on_apply(void *arg, uint64_t index, const uint8_t *data, size_t len, void *ctx,
                     struct node_reply *remote)
{
    struct server *s = arg;
    struct proposal *p = ctx == &s->tick_marker ? NULL : ctx;
    if (ctx == &s->tick_marker)
        s->tick_in_flight = false;
    struct request_ctx *rc = p ? p->rc : NULL;
    struct command decoded;
    /* Our own proposal, at the index and term it was proposed with: data
     * are the bytes encoded from p->cmd. */
    const struct command *cmd = rc && p->has_cmd ? kept_command(s, p) : NULL;
    if (cmd) {
        check_local_command(cmd, data, len);
    } else if (command_decode(data, len, &decoded) == MOM_OK) {
        cmd = &decoded;
    } else {
        /* Every replica skips the same undecodable entry. */
        log_error("log entry %llu does not decode as a Command; skipped",
                  (unsigned long long)index);
        if (remote)
            remote->status = 500;
        if (rc) {
            rc->proposal = NULL;
            server_fail(rc, API_ERR_NOT_APPLIED, "the command could not be applied");
        }
        if (p && p->done)
            p->done(p->done_arg, index, NULL, MOM_ERR_INVALID);
        proposal_free(p);
        return;
    }
    struct reply r = {0};
    bool done = p && p->done;
    store_apply(s->store, index, cmd, rc || remote || done ? &r : NULL);
    if (cmd->pb.time_ms > s->last_stamp)
        s->last_stamp = cmd->pb.time_ms;
    if (cmd == &decoded)
        command_cleanup(&decoded);
    else if (p->spans)
        p->cmd.items = NULL; /* s->apply_items, not the proposal's */
    if (remote) {
        remote->status = r.status ? r.status : 500;
        remote->body = r.body_len ? malloc(r.body_len) : NULL;
        if (remote->body) {
            memcpy(remote->body, r.body, r.body_len);
            remote->len = r.body_len;
        }
    }
    if (rc) {
        rc->proposal = NULL;
        deliver(rc, &r);
    }
    if (done)
        p->done(p->done_arg, index, &r, MOM_OK);
    proposal_free(p);
    reply_cleanup(&r);
    process_wakes(s);
}

static void on_fail(void *arg, void *ctx, int err)
{
    struct server *s = arg;
    if (ctx == &s->tick_marker) {
        s->tick_in_flight = false;
        return;
    }
    struct proposal *p = ctx;
    if (p->rc) {
        p->rc->proposal = NULL;
        send_storage_error(p->rc, err);
    }
    if (p->done)
        p->done(p->done_arg, 0, NULL, err);
    proposal_free(p);
}

/* Leader: a forwarded Command gets this leader's time stamp. */
static int on_restamp(void *arg, const uint8_t *data, size_t len, uint8_t **out, size_t *outlen)
{
    struct server *s = arg;
    struct command cmd;
    int rc = command_decode(data, len, &cmd);
    if (rc != MOM_OK)
        return rc;
    cmd.pb.time_ms = server_now_stamp(s);
    rc = command_encode(&cmd, out, outlen);
    command_cleanup(&cmd);
    return rc;
}

static void on_read_ready(void *arg, void *ctx, int err)
{
    (void)arg;
    struct proposal *p = ctx;
    struct request_ctx *rc = p->rc;
    proposal_free(p);
    if (!rc)
        return;
    rc->proposal = NULL;
    if (err != MOM_OK) {
        server_fail(rc, API_ERR_UNAVAILABLE, "no leader confirmed the read in time; retry");
        return;
    }
    rc->read_ok = true;
    handlers_dispatch(rc);
}

bool server_read_barrier(struct request_ctx *rc)
{
    struct server *s = rc->srv;
    if (rc->read_ok || node_members(s->node) <= 1)
        return false;
    struct proposal *p = malloc(sizeof *p);
    if (!p) {
        server_fail(rc, API_ERR_UNAVAILABLE, "out of memory");
        return true;
    }
    p->rc = rc;
    p->done = NULL;
    p->has_cmd = false;
    if (node_read_barrier(s->node, p) != MOM_OK) {
        proposal_free(p);
        server_fail(rc, API_ERR_UNAVAILABLE, "no leader is known; retry");
        return true;
    }
    rc->proposal = p;
    pause_request(rc);
    return true;
}

/* A proposal forwarded to the leader came back with the leader's answer. */
static void on_forwarded(void *arg, void *ctx, int status, const uint8_t *body, size_t len,
                         uint64_t index)
{
    struct server *s = arg;
    if (ctx == &s->tick_marker) {
        s->tick_in_flight = false;
        return;
    }
    struct proposal *p = ctx;
    struct request_ctx *rc = p->rc;
    if (p->done) {
        struct reply answer = {.status = status, .body = (char *)body, .body_len = len};
        p->done(p->done_arg, index, &answer, MOM_OK);
    }
    proposal_free(p);
    if (!rc)
        return;
    rc->proposal = NULL;
    struct reply r = {0};
    char *copy = len ? malloc(len) : NULL;
    if (len && !copy) {
        server_fail(rc, API_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    if (copy)
        memcpy(copy, body, len);
    reply_set(&r, status, copy, len);
    deliver(rc, &r);
    reply_cleanup(&r);
    process_wakes(s);
}

static int on_snapshot_write(void *arg, FILE *f)
{
    return store_snapshot_write(((struct server *)arg)->store, f);
}

static int on_snapshot_read(void *arg, FILE *f)
{
    struct server *s = arg;
    int rc = store_snapshot_read(s->store, f);
    if (rc == MOM_OK && store_last_time(s->store) > s->last_stamp)
        s->last_stamp = store_last_time(s->store);
    return rc;
}

static void on_store_change(void *arg, enum store_change change, const char *name);

/* Before a snapshot from the leader replaces the state. */
static int on_reset(void *arg)
{
    struct server *s = arg;
    struct store *fresh = store_new();
    if (!fresh || store_set_receipt_key(fresh, &s->receipt_key) != MOM_OK) {
        store_free(fresh);
        return MOM_ERR_NOMEM;
    }
    store_free(s->store);
    s->store = fresh;
    store_set_observer(s->store, on_store_change, s);
    return MOM_OK;
}

/* ---- long polls ---- */

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct request_ctx *rc = arg;
    server_conn_request_done(rc);
    wait_unlink(rc);
    hasher_cancel(rc->hash_job);
    rc->hash_job = NULL; /* a cancelled job is freed by the hasher */
    if (rc->proposal)
        return; /* its answer arrives on apply and is sent as it is */
    handlers_retry_wait(rc, true);
}

void server_wait(struct request_ctx *rc, enum wait_kind wait)
{
    struct server *s = rc->srv;
    rc->wait = wait;
    if (!rc->timer) {
        uint64_t now = clock_mono_ms();
        uint64_t wait_ms = rc->deadline_ms > now ? rc->deadline_ms - now : 0;
        rc->timer = evtimer_new(s->base, on_wait_timeout, rc);
        struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000};
        if (!rc->timer || evtimer_add(rc->timer, &tv) != 0) {
            server_fail(rc, API_ERR_UNAVAILABLE, "cannot wait: out of memory");
            return;
        }
    }
    if (!rc->in_wait_list) {
        rc->wprev = NULL;
        rc->wnext = s->waiters;
        if (s->waiters)
            s->waiters->wprev = rc;
        s->waiters = rc;
        rc->in_wait_list = true;
    }
    pause_request(rc);
}

static void on_store_change(void *arg, enum store_change change, const char *name)
{
    struct server *s = arg;
    stream_hub_notify(s->streams, change, name);
    if (!s->waiters)
        return;
    struct wake *w = grow_array(s->wakes, &s->wakes_cap, s->nwakes + 1, sizeof *w, 16);
    if (!w)
        return; /* waiters still end at their deadline */
    s->wakes = w;
    s->wakes[s->nwakes].change = change;
    snprintf(s->wakes[s->nwakes].name, sizeof s->wakes[s->nwakes].name, "%s", name);
    s->nwakes++;
}

static bool wait_matches(const struct request_ctx *rc, enum store_change change, const char *name)
{
    if (strcmp(rc->match.params[0], name) != 0)
        return false;
    switch (change) {
    case STORE_QUEUE_READY:
    case STORE_QUEUE_DELETED: return rc->wait == WAIT_RECEIVE;
    case STORE_TOPIC_APPENDED:
    case STORE_TOPIC_DELETED: return rc->wait == WAIT_TOPIC_READ || rc->wait == WAIT_SUB_READ;
    case STORE_LEASES_ENDED:
    default: return false; /* no long poll waits for a lease to end */
    }
}

static void process_wakes(struct server *s)
{
    for (size_t i = 0; i < s->nwakes; i++) {
        const struct wake *w = &s->wakes[i];
        struct request_ctx *next;
        for (struct request_ctx *rc = s->waiters; rc; rc = next) {
            next = rc->wnext;
            if (!rc->in_wait_list || !wait_matches(rc, w->change, w->name))
                continue;
            wait_unlink(rc);
            if (w->change == STORE_QUEUE_DELETED)
                server_fail(rc, API_ERR_QUEUE_NOT_FOUND, "queue '%s' was deleted", w->name);
            else if (w->change == STORE_TOPIC_DELETED)
                server_fail(rc, API_ERR_TOPIC_NOT_FOUND, "topic '%s' was deleted", w->name);
            else
                handlers_retry_wait(rc, false);
        }
    }
    s->nwakes = 0;
}

/* ---- cron: Ticks for lease ends, delays, TTL and retention ---- */

static void on_cron(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    demo_on_cron(s, &s->demo);
    if (s->tick_in_flight || !node_writable(s->node) || !node_is_leader(s->node))
        return;
    uint64_t deadline = store_next_deadline(s->store);
    if (deadline == UINT64_MAX || deadline > clock_wall_ms())
        return;
    struct command cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.pb.which_kind = mom_v1_Command_tick_tag;
    cmd.pb.time_ms = server_now_stamp(s);
    uint8_t *buf;
    size_t len;
    if (command_encode(&cmd, &buf, &len) != MOM_OK)
        return;
    if (node_propose(s->node, buf, len, &s->tick_marker) == MOM_OK)
        s->tick_in_flight = true;
}

/* ---- request life cycle ---- */

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
    (void)req;
    struct request_ctx *rc = arg;
    stream_free(rc->stream);
    server_conn_request_done(rc);
    wait_unlink(rc);
    hasher_cancel(rc->hash_job);
    rc->hash_job = NULL; /* a cancelled job is freed by the hasher */
    if (rc->proposal)
        rc->proposal->rc = NULL;
    if (rc->timer)
        event_free(rc->timer);
    free(rc->compat_body);
    free(rc);
    return EVHTP_RES_OK;
}

/* Bodies over the limit that are already on their way are read and thrown
 * away up to this size, so the client reads the 413 instead of a reset. */
#define DRAIN_LIMIT (64ull << 20)

static evhtp_res on_read_discard(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
    (void)req;
    (void)arg;
    evbuffer_drain(buf, evbuffer_get_length(buf));
    return EVHTP_RES_OK;
}

/* Content-Length above max_body: 413, decided before the body (docs/api.md). */
static bool body_too_large(const struct server *s, evhtp_headers_t *hdrs, uint64_t *length)
{
    const char *cl = server_header(hdrs, "Content-Length");
    if (!cl)
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    *length = errno || *end ? UINT64_MAX : n;
    return *length > s->cfg->max_body;
}

static void send_too_large(struct server *s, evhtp_request_t *req, enum api_error e,
                           const char *message)
{
    req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
    struct reply r = {0};
    render_error(&r, e, "%s", message);
    add_header(req, "X-Mom-Node", s->node_id_text);
    add_cors_headers(s, req);
    add_header(req, "Content-Type", "application/json");
    add_header(req, "Connection", "close");
    evbuffer_add(req->buffer_out, r.body, r.body_len);
    evhtp_send_reply(req, (evhtp_res)r.status);
    /* answered from the headers: no request context, the route from the path */
    struct route_match match;
    const char *path =
        req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "/";
    enum http_method method =
        router_method(htparser_get_methodstr_m(evhtp_request_get_method(req)));
    router_match(method, path, strlen(path), &match);
    account(s, req, match.route, method, r.status, clock_mono_us(), "", r.body_len);
    reply_cleanup(&r);
}

/* 413 is decided from Content-Length before the body is read
 * (docs/architecture.md, "413 before the body").
 * A client that waits for "100 Continue" (or a body beyond DRAIN_LIMIT) is
 * answered at once and the connection closed; a body already in flight is
 * drained and answered 413 when it has arrived (see on_request). */
static evhtp_res on_headers(evhtp_request_t *req, evhtp_headers_t *hdrs, void *arg)
{
    struct server *s = arg;
    char message[160];
    uint64_t length = 0;
    if (server_header(hdrs, "Transfer-Encoding")) {
        snprintf(message, sizeof message,
                 "chunked request bodies are not accepted; send Content-Length");
        send_too_large(s, req, API_ERR_LENGTH_REQUIRED, message);
    } else if (body_too_large(s, hdrs, &length)) {
        snprintf(message, sizeof message, "the body is larger than %llu bytes",
                 (unsigned long long)s->cfg->max_body);
        send_too_large(s, req, API_ERR_PAYLOAD_TOO_LARGE, message);
        const char *expect = server_header(hdrs, "Expect");
        if (!expect && length <= DRAIN_LIMIT) {
            /* Answered; keep reading the body into the void so that the
             * close after it does not reset the connection under the 413. */
            evhtp_request_set_hook(req, evhtp_hook_on_read, (evhtp_hook)on_read_discard, NULL);
            return EVHTP_RES_OK;
        }
    } else {
        return EVHTP_RES_OK;
    }
    evhtp_request_pause(req);
    evhtp_request_resume(req);
    return EVHTP_RES_PAUSE;
}

/* A JWT in ?access_token= is this long at most (browsers' EventSource
 * cannot send headers; stream routes only). */
#define QUERY_TOKEN_MAX 4096

static bool authenticate(struct request_ctx *rc)
{
    const char *h = server_header(rc->req->headers_in, "Authorization");
    char *query_token = NULL;
    const char *token = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        token = h + 7;
        while (*token == ' ')
            token++;
    } else if (!h && router_takes_query_token(rc->match.route) && rc->query &&
               (query_token = malloc(QUERY_TOKEN_MAX)) &&
               http_query_get(rc->query, "access_token", query_token, QUERY_TOKEN_MAX)) {
        token = query_token;
    }
    if (!token) {
        free(query_token);
        add_header(rc->req, "WWW-Authenticate", "Bearer realm=\"mom\"");
        server_fail(rc, API_ERR_UNAUTHORIZED, "a bearer token is required");
        return false;
    }
    int rc_verify = auth_verify_memo(rc->srv->auth, server_conn_auth_memo(rc), token, strlen(token),
                                     clock_wall_ms() / 1000, &rc->id);
    free(query_token);
    if (rc_verify != MOM_OK) {
        add_header(rc->req, "WWW-Authenticate", "Bearer realm=\"mom\", error=\"invalid_token\"");
        server_fail(rc, API_ERR_INVALID_TOKEN, "the bearer token is invalid or expired");
        return false;
    }
    return true;
}

/* No route takes more than a handful of query parameters. */
#define MAX_QUERY_PARAMS 32

static size_t query_params(const char *query)
{
    if (!query || !*query)
        return 0;
    size_t n = 1;
    for (; *query; query++)
        n += *query == '&';
    return n;
}

static void on_request(evhtp_request_t *req, void *arg)
{
    struct server *s = arg;
    uint64_t length;
    if (body_too_large(s, req->headers_in, &length))
        return; /* answered 413 by on_headers; the body was drained */
    struct request_ctx *rc = calloc(1, sizeof *rc);
    if (!rc) {
        evhtp_send_reply(req, 503);
        return;
    }
    rc->srv = s;
    rc->req = req;
#ifndef MOM_METRICS_OFF
    rc->start_us = clock_mono_us();
#else
    if (s->cfg->access_log)
        rc->start_us = clock_mono_us();
#endif
    evhtp_request_set_hook(req, evhtp_hook_on_request_fini, (evhtp_hook)on_request_fini, rc);
    server_conn_request_started(rc);
    rc->method = router_method(htparser_get_methodstr_m(evhtp_request_get_method(req)));
    const char *path =
        req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "/";
    rc->query = req->uri ? (const char *)req->uri->query_raw : NULL;
    size_t blen = evbuffer_get_length(req->buffer_in);
    rc->body = blen ? (const char *)evbuffer_pullup(req->buffer_in, -1) : "";
    rc->body_len = blen;
    if (query_params(rc->query) > MAX_QUERY_PARAMS) {
        server_fail(rc, API_ERR_BAD_REQUEST, "at most %d query parameters are accepted",
                    MAX_QUERY_PARAMS);
        return;
    }

    if (rc->method == HTTP_OPTIONS && s->cfg->cors_origins[0]) {
        /* a CORS preflight, on any path */
        add_header(req, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
        add_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
        add_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
        server_send(rc, &(struct reply){.status = 204});
        return;
    }
    rc->compat_family = compat_family_of_path(path);
    if (handlers_ui(rc, path))
        return;
    enum router_result rr = router_match(rc->method, path, strlen(path), &rc->match);
    if (rr == ROUTER_NOT_FOUND) {
        server_fail(rc, API_ERR_NOT_FOUND, "no route for %s", path);
        return;
    }
    if (rr == ROUTER_METHOD_NOT_ALLOWED) {
        char allow[64];
        router_allow_header(rc->match.allowed, allow, sizeof allow);
        add_header(req, "Allow", allow);
        server_fail(rc, API_ERR_METHOD_NOT_ALLOWED, "%s is not allowed here; use %s",
                    htparser_get_methodstr_m(evhtp_request_get_method(req)), allow);
        return;
    }
    switch (rc->match.route) {
    case ROUTE_HEALTHZ:
    case ROUTE_READYZ:
    case ROUTE_AUTH_USERS:
    case ROUTE_AUTH_TOKEN:
    case ROUTE_METRICS: break;
    default:
        if (!compat_is_public(rc->match.route) && !authenticate(rc))
            return;
    }
    if (compat_is_route(rc->match.route) && !compat_prepare(rc))
        return;
    handlers_dispatch(rc);
}

/* ---- set-up ---- */

static int split_host_port(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= hostlen)
        return MOM_ERR_INVALID;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return MOM_ERR_INVALID;
    *port = (uint16_t)p;
    return MOM_OK;
}

/* DATA/jwt-secret: created once with 32 random bytes (hex), mode 0600. */
static int load_or_create_secret(const char *data_dir, char *out, size_t outlen, bool *created)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/jwt-secret", data_dir);
    *created = false;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(out, 1, outlen - 1, f);
        fclose(f);
        out[n] = '\0';
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
        return n >= 16 ? MOM_OK : MOM_ERR_CORRUPT;
    }
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return MOM_ERR_IO;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", out);
    int rc = fs_write_private(path, line, (size_t)n);
    if (rc != MOM_OK)
        return rc;
    *created = true;
    return MOM_OK;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int setup_auth(struct server *s, const struct config *cfg)
{
    char secret[1024];
    bool created = false, from_file = false;
    if (cfg->jwt_secret[0]) {
        snprintf(secret, sizeof secret, "%s", cfg->jwt_secret);
    } else {
        int rc = load_or_create_secret(cfg->data_dir, secret, sizeof secret, &created);
        if (rc != MOM_OK) {
            log_error("cannot read or create %s/jwt-secret: %s", cfg->data_dir, mom_strerror(rc));
            return rc;
        }
        from_file = true;
    }
    char *pem = NULL;
    size_t pem_len = 0;
    if (cfg->jwt_public_key_file[0]) {
        pem = read_file(cfg->jwt_public_key_file, &pem_len);
        if (!pem) {
            log_error("cannot read MOM_JWT_PUBLIC_KEY_FILE %s: %s", cfg->jwt_public_key_file,
                      strerror(errno));
            return MOM_ERR_IO;
        }
    }
    /* MOM_DEMO's user admin is an admin like those of MOM_ADMIN_USERS */
    char admins[sizeof cfg->admin_users + 8];
    snprintf(admins, sizeof admins, "%s%s%s", cfg->demo ? "admin" : "",
             cfg->demo && cfg->admin_users[0] ? "," : "", cfg->admin_users);
    struct auth_config ac = {
        .hs256_secret = secret,
        .hs256_secret_len = strlen(secret),
        .public_key_pem = pem,
        .public_key_pem_len = pem_len,
        .issuer = cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL,
        .audience = cfg->jwt_audience[0] ? cfg->jwt_audience : NULL,
        .admin_claim = cfg->jwt_admin_claim,
        .admin_users = admins[0] ? admins : NULL,
        .token_ttl_s = cfg->token_ttl_s,
    };
    int rc = auth_new(&ac, &s->auth);
    free(pem);
    if (rc != MOM_OK) {
        log_error("JWT configuration rejected: %s", mom_strerror(rc));
        return rc;
    }
    if (from_file) {
        /* A ready-made admin token for a node whose secret it generated
         * (make run), written to a private file: tokens never go to a log. */
        char *token;
        uint64_t expires;
        if (auth_issue(s->auth, "admin", true, clock_wall_ms() / 1000, &token, &expires) ==
            MOM_OK) {
            char path[1100];
            snprintf(path, sizeof path, "%s/admin-token", cfg->data_dir);
            int wrc = fs_write_private(path, token, strlen(token));
            free(token);
            if (wrc == MOM_OK)
                log_info("%s JWT secret in %s/jwt-secret; an admin token (valid %llu s) is in %s",
                         created ? "generated a" : "using the", cfg->data_dir,
                         (unsigned long long)cfg->token_ttl_s, path);
            else
                log_warn("cannot write %s: %s", path, mom_strerror(wrc));
        }
    }
    return auth_password_hash("dummy-password", 14, s->dummy_hash, sizeof s->dummy_hash);
}

/* The receipt key: derived from the cluster secret (the same on every
 * node), else DATA/receipt-key, generated once. */
static int setup_receipt_key(struct server *s, const struct config *cfg)
{
    if (cfg->cluster_secret[0]) {
        int rc =
            receipt_key_derive(cfg->cluster_secret, strlen(cfg->cluster_secret), &s->receipt_key);
        if (rc != MOM_OK)
            log_error("cannot derive the receipt key from MOM_CLUSTER_SECRET: %s",
                      mom_strerror(rc));
        return rc;
    }
    bool created;
    int rc = receipt_key_load_or_create(cfg->data_dir, &s->receipt_key, &created);
    if (rc != MOM_OK)
        log_error("cannot read or create %s/receipt-key: %s", cfg->data_dir, mom_strerror(rc));
    else if (created)
        log_info("generated a receipt key in %s/receipt-key", cfg->data_dir);
    return rc;
}

/* MOM_TLS_CERT + MOM_TLS_KEY (+ MOM_TLS_CLIENT_CA): the client port over
 * TLS; a partial or bad configuration stops start-up. */
static int setup_tls(struct server *s, const struct config *cfg)
{
    if (!cfg->tls_cert[0] && !cfg->tls_key[0] && !cfg->tls_client_ca[0])
        return MOM_OK;
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        log_error("client TLS needs both MOM_TLS_CERT and MOM_TLS_KEY%s",
                  cfg->tls_client_ca[0] ? " (MOM_TLS_CLIENT_CA alone does nothing)" : "");
        return MOM_ERR_INVALID;
    }
    char why[512];
    int rc = client_tls_enable(s->htp, &s->tls_cfg, cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca,
                               why, sizeof why);
    if (rc != MOM_OK) {
        log_error("client TLS: %s", why);
        return rc;
    }
    log_info("the client port serves TLS 1.2+%s",
             cfg->tls_client_ca[0] ? " and requires client certificates" : "");
    return MOM_OK;
}

static int setup_http(struct server *s, const struct config *cfg)
{
    char host[256];
    uint16_t port;
    if (split_host_port(cfg->http_addr, host, sizeof host, &port) != MOM_OK) {
        log_error("MOM_HTTP_ADDR '%s' is not HOST:PORT", cfg->http_addr);
        return MOM_ERR_INVALID;
    }
    s->htp = evhtp_new(s->base, NULL);
    if (!s->htp)
        return MOM_ERR_NOMEM;
    /* Backstop only: 413 is answered from Content-Length in on_headers. */
    evhtp_set_max_body_size(s->htp, DRAIN_LIMIT + 2);
    evhtp_set_post_accept_cb(s->htp, server_conn_on_accept, s);
    int rc = setup_tls(s, cfg);
    if (rc != MOM_OK)
        return rc;
    evhtp_callback_t *cb = evhtp_set_cb(s->htp, "/", on_request, s);
    if (!cb)
        return MOM_ERR_NOMEM;
    evhtp_callback_set_hook(cb, evhtp_hook_on_headers, (evhtp_hook)on_headers, s);
    if (evhtp_bind_socket(s->htp, host, port, 1024) != 0) {
        log_error("cannot listen on %s: %s", cfg->http_addr, strerror(errno));
        return MOM_ERR_IO;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evconnlistener_get_fd(s->htp->server);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->http_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                      : ((struct sockaddr_in *)&ss)->sin_port);
    return MOM_OK;
}

int server_new(struct event_base *base, const struct config *cfg, struct server **out)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s)
        return MOM_ERR_NOMEM;
    s->base = base;
    s->cfg = cfg;
    snprintf(s->node_id_text, sizeof s->node_id_text, "%u", cfg->node_id);
    int rc = demo_check_config(cfg);
    if (rc != MOM_OK)
        goto fail;
    rc = fs_mkdir_p(cfg->data_dir);
    if (rc != MOM_OK) {
        log_error("cannot create data dir %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    s->metrics = metrics_new();
    s->streams = s->metrics ? stream_hub_new(base, cfg) : NULL;
    s->store = s->streams ? store_new() : NULL;
    if (!s->store) {
        rc = MOM_ERR_NOMEM;
        goto fail;
    }
    store_set_observer(s->store, on_store_change, s);
    rc = setup_receipt_key(s, cfg);
    if (rc != MOM_OK)
        goto fail;
    s->receipts = receipt_signer_new(&s->receipt_key);
    rc = s->receipts ? store_set_receipt_key(s->store, &s->receipt_key) : MOM_ERR_NOMEM;
    if (rc != MOM_OK)
        goto fail;
    rc = setup_auth(s, cfg);
    if (rc != MOM_OK)
        goto fail;
    rc = hasher_new(base, (unsigned)cfg->hash_threads, HASHER_MAX_PENDING, &s->hasher);
    if (rc == MOM_OK)
        rc = ratelimit_new((uint32_t)cfg->login_failures, LOGIN_USER_PERIOD_MS, LOGIN_TABLE_SIZE,
                           &s->login_by_user);
    if (rc == MOM_OK)
        rc = ratelimit_new((uint32_t)cfg->login_addr_failures, LOGIN_ADDR_PERIOD_MS,
                           LOGIN_TABLE_SIZE, &s->login_by_addr);
    if (rc != MOM_OK) {
        log_error("cannot start the password hashing threads: %s", mom_strerror(rc));
        goto fail;
    }
    struct node_config nc = {
        .data_dir = cfg->data_dir,
        .group_id = 0,
        .sync = cfg->fsync == FSYNC_ALWAYS     ? NODE_SYNC_ALWAYS
                : cfg->fsync == FSYNC_EVERYSEC ? NODE_SYNC_EVERYSEC
                                               : NODE_SYNC_NEVER,
        .snapshot_entries = cfg->snapshot_entries,
        .snapshot_bytes = cfg->snapshot_log_mb << 20,
        .segment_bytes = cfg->wal_segment_mb << 20,
        .node_id = cfg->node_id,
        .commit_timeout_ms = cfg->commit_timeout_ms,
        .bootstrap = cfg->bootstrap,
    };
    struct node_callbacks cb = {
        .apply = on_apply,
        .fail = on_fail,
        .forwarded = on_forwarded,
        .snapshot_write = on_snapshot_write,
        .snapshot_read = on_snapshot_read,
        .reset = on_reset,
        .read_ready = on_read_ready,
        .restamp = on_restamp,
    };
    if (cfg->cluster_secret[0]) {
        rc = cluster_token_init(cfg->cluster_secret, &s->peer_tokens);
        if (rc != MOM_OK)
            goto fail;
    }
    struct node_peer_config pc = {
        .peers = cfg->peers,
        .listen_addr = cfg->peer_addr,
        .tokens = s->peer_tokens.verify ? &s->peer_tokens : NULL,
        .tls_cert = cfg->peer_tls_cert,
        .tls_key = cfg->peer_tls_key,
        .tls_ca = cfg->peer_tls_ca,
    };
    rc = node_open_cluster(base, &nc, &pc, &cb, s, &s->node);
    if (rc != MOM_OK)
        goto fail;
    s->last_stamp = store_last_time(s->store);
    rc = setup_http(s, cfg);
    if (rc != MOM_OK)
        goto fail;
    s->cron_ev = event_new(base, -1, EV_PERSIST, on_cron, s);
    struct timeval tv = {0, CRON_INTERVAL_MS * 1000};
    if (!s->cron_ev || event_add(s->cron_ev, &tv) != 0) {
        rc = MOM_ERR_NOMEM;
        goto fail;
    }
    *out = s;
    return MOM_OK;
fail:
    server_free(s);
    return rc;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->htp)
        evhtp_unbind_socket(s->htp);
    if (s->cron_ev)
        event_free(s->cron_ev);
    /* Pending writes fail (their clients get 503), then every open client
     * connection is freed with its requests (on_request_fini runs). */
    s->closing = true;
    node_close(s->node);
    cluster_token_free(&s->peer_tokens); /* after the node: its peer channel signs with it */
    while (s->conns)
        evhtp_connection_free(s->conns->conn); /* unlinks itself in on_connection_fini */
    if (s->htp)
        evhtp_free(s->htp);
    stream_hub_free(s->streams); /* after the requests: each freed its stream */
    hasher_free(s->hasher);      /* after the requests: their jobs are cancelled */
    ratelimit_free(s->login_by_user);
    ratelimit_free(s->login_by_addr);
    store_free(s->store);
    receipt_signer_free(s->receipts);
    auth_free(s->auth);
    metrics_free(s->metrics);
    free(s->wakes);
    free(s->apply_items);
    free(s);
}

void server_handoff(struct server *s)
{
    if (s && s->node)
        node_transfer_leadership(s->node, 1000);
}

uint16_t server_http_port(const struct server *s)
{
    return s->http_port;
}
uint16_t server_peer_port(const struct server *s)
{
    return s->node ? node_peer_port(s->node) : 0;
}
