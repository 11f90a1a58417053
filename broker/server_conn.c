/* Client connections and the limits that keep hostile clients from holding
 * the node: MOM_MAX_CONNECTIONS (over it a connection is answered 503 and
 * closed), MOM_HEADER_TIMEOUT_MS (a request must arrive whole, head and
 * body, within it: slowloris), MOM_IDLE_TIMEOUT_MS (keep-alive connections
 * between requests), MOM_MAX_HEADER_BYTES (431) and MOM_MAX_URL_BYTES (414).
 *
 * evhtp's parser gives up on a token over 8 KiB by resetting the
 * connection, and it has no limit on the head as a whole, so the head is
 * measured here, before evhtp sees it: an evbuffer callback on the
 * connection's input runs as bytes arrive (before evhtp's read callback)
 * and scans only the bytes of a request head. A refused connection gets
 * its answer written straight to the socket buffer, its input is thrown
 * away, and it is closed once the answer is flushed (write side first, so
 * the client reads the answer rather than a reset).
 *
 * A connection's state (struct client_conn) lives from post-accept to
 * evhtp's on_connection_fini, which frees it and its timer. Requests find
 * it through the connection's hook argument, which on_connection_fini
 * clears because evhtp runs on_request_fini after it.
 * SPDX-License-Identifier: MIT */
#include "broker/metrics.h"
#include "broker/server_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* A refused connection is closed at the latest this long after its answer. */
#define CLOSING_LINGER_MS 2000u
#define CLOSING_POLL_MS 20u
/* Request line overhead besides the target: "OPTIONS " + " HTTP/1.1". */
#define REQUEST_LINE_EXTRA 17u

static struct client_conn *conn_of(evhtp_connection_t *conn)
{
    return conn && conn->hooks ? conn->hooks->on_connection_fini_arg : NULL;
}

/* Header and idle deadlines all have the same length, so they go into
 * libevent's common-timeout queues (O(1) to add and delete, instead of the
 * timer heap): thousands of idle connections cost nothing per request. */
static const struct timeval *common_timeout(struct server *s, uint64_t ms)
{
    const struct timeval **slot = ms == s->cfg->header_timeout_ms ? &s->header_tv
                                  : ms == s->cfg->idle_timeout_ms ? &s->idle_tv
                                                                  : NULL;
    if (slot && !*slot) {
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        *slot = event_base_init_common_timeout(s->base, &tv);
    }
    return slot ? *slot : NULL;
}

static void arm(struct client_conn *cc, uint64_t ms)
{
    const struct timeval *common = common_timeout(cc->srv, ms);
    if (common) {
        evtimer_add(cc->timer, common);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(cc->timer, &tv);
}

static void start_head(struct client_conn *cc)
{
    cc->phase = CONN_HEAD;
    cc->head_bytes = 0;
    cc->line_bytes = 0;
    cc->first_sp = cc->last_sp = 0;
    cc->in_request_line = true;
    arm(cc, cc->srv->cfg->header_timeout_ms);
}

/* Answers status with a JSON error on the raw connection and closes it
 * after the flush. Used before evhtp has a request to answer through. */
static void refuse(struct client_conn *cc, enum api_error e, const char *reason,
                   const char *message)
{
    int status = api_error_status(e);
    struct bufferevent *bev = cc->conn->bev;
    cc->phase = CONN_CLOSING;
    cc->closing_since = clock_mono_ms();
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    struct reply r = {0};
    render_error(&r, e, "%s", message);
    evbuffer_add_printf(bufferevent_get_output(bev),
                        "HTTP/1.1 %d %s\r\nX-Mom-Node: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                        status, reason, cc->srv->node_id_text, r.body_len,
                        status == 503 ? "Retry-After: 1\r\n" : "");
    evbuffer_add(bufferevent_get_output(bev), r.body, r.body_len);
    reply_cleanup(&r);
    /* no request was parsed: counted as an unmatched route, method OTHER */
    metrics_count_request(cc->srv->metrics, ROUTE_NONE, HTTP_OTHER, status, 0);
    bufferevent_enable(bev, EV_WRITE);
    arm(cc, CLOSING_POLL_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct client_conn *cc = arg;
    struct bufferevent *bev = cc->conn->bev;
    switch (cc->phase) {
    case CONN_CLOSING:
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && !cc->shut_down) {
            shutdown(bufferevent_getfd(bev), SHUT_WR);
            cc->shut_down = true;
        }
        if (clock_mono_ms() - cc->closing_since < CLOSING_LINGER_MS) {
            arm(cc, CLOSING_POLL_MS);
            return;
        }
        break;
    case CONN_HEAD:
    case CONN_BODY:
        log_debug("closing a connection whose request did not arrive within %llu ms",
                  (unsigned long long)cc->srv->cfg->header_timeout_ms);
        break;
    case CONN_IDLE: break;
    case CONN_BUSY: return; /* a request in progress is never timed out here */
    }
    evhtp_connection_free(cc->conn); /* on_connection_fini frees cc */
}

enum head_scan { HEAD_MORE, HEAD_DONE, HEAD_URL_TOO_LONG, HEAD_TOO_LARGE };

/* Advances the head state of cc over n bytes. The state is worked on in
 * locals: through cc every byte would reload it (p may alias it), which made
 * this scan 12% of a publish's instructions. Header lines are skipped to
 * their newline with memchr: of them only the length of the head and
 * whether a line held more than CR matter; the request line is read byte by
 * byte for its spaces and its length. */
static enum head_scan scan_bytes(struct client_conn *cc, const unsigned char *p, size_t n)
{
    const struct config *cfg = cc->srv->cfg;
    const uint64_t max_url = cfg->max_url_bytes, max_head = cfg->max_header_bytes;
    uint64_t head = cc->head_bytes, line = cc->line_bytes;
    uint64_t first_sp = cc->first_sp, last_sp = cc->last_sp;
    bool in_request_line = cc->in_request_line;
    enum head_scan res = HEAD_MORE;
    size_t i = 0;
    while (i < n) {
        if (!in_request_line) {
            const unsigned char *nl = memchr(p + i, '\n', n - i);
            size_t end = nl ? (size_t)(nl - p) : n;
            for (size_t k = i; k < end && line == 0; k++)
                if (p[k] != '\r')
                    line = 1;
            head += end - i;
            if (head > max_head) {
                res = HEAD_TOO_LARGE;
                break;
            }
            if (!nl) {
                i = n;
                break;
            }
            head++; /* the newline */
            if (line == 0) {
                res = HEAD_DONE; /* the empty line ends the head */
                break;
            }
            if (head > max_head) {
                res = HEAD_TOO_LARGE;
                break;
            }
            line = 0;
            i = end + 1;
            continue;
        }
        unsigned char c = p[i++];
        head++;
        if (c == '\n') {
            if (line > 0) {
                in_request_line = false;
                uint64_t target = last_sp > first_sp + 1 ? last_sp - first_sp - 1 : line;
                if (target > max_url) {
                    res = HEAD_URL_TOO_LONG;
                    break;
                }
            }
            line = 0;
        } else if (c != '\r') {
            line++;
            if (c == ' ') {
                if (!first_sp)
                    first_sp = line;
                last_sp = line;
            }
        }
        if (in_request_line && line > max_url + REQUEST_LINE_EXTRA) {
            res = HEAD_URL_TOO_LONG;
            break;
        }
        if (head > max_head) {
            res = HEAD_TOO_LARGE;
            break;
        }
    }
    cc->head_bytes = head;
    cc->line_bytes = line;
    cc->first_sp = first_sp;
    cc->last_sp = last_sp;
    cc->in_request_line = in_request_line;
    return res;
}

/* Scans newly arrived bytes of a request head; refuses the connection when
 * the head or its target is too long. */
static void scan_head(struct client_conn *cc, struct evbuffer *buf, size_t from)
{
    const struct config *cfg = cc->srv->cfg;
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) != 0)
        return;
    char message[128];
    for (;;) { /* eight chains at a time, to the end of what has arrived */
        struct evbuffer_iovec vec[8];
        int n = evbuffer_peek(buf, -1, &pos, vec, 8);
        int use = n > 8 ? 8 : n;
        size_t scanned = 0;
        for (int v = 0; v < use; v++) {
            switch (scan_bytes(cc, vec[v].iov_base, vec[v].iov_len)) {
            case HEAD_MORE: scanned += vec[v].iov_len; continue;
            case HEAD_DONE: cc->phase = CONN_BODY; return;
            case HEAD_URL_TOO_LONG:
                snprintf(message, sizeof message, "the request target is longer than %llu bytes",
                         (unsigned long long)cfg->max_url_bytes);
                refuse(cc, API_ERR_URI_TOO_LONG, "URI Too Long", message);
                return;
            case HEAD_TOO_LARGE:
                snprintf(message, sizeof message,
                         "the request line and headers are larger than %llu bytes",
                         (unsigned long long)cfg->max_header_bytes);
                refuse(cc, API_ERR_HEADER_TOO_LARGE, "Request Header Fields Too Large", message);
                return;
            }
        }
        if (n <= 8 || evbuffer_ptr_set(buf, &pos, scanned, EVBUFFER_PTR_ADD) != 0)
            return;
    }
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct client_conn *cc = arg;
    size_t len = evbuffer_get_length(buf);
    struct bufferevent *bev = cc->conn->bev;
    /* Bytes of a next request behind a held one (server_conn_hold), come
     * now or left after evhtp drained the held request: evhtp leaves them
     * unparsed while paused; stop reading (and seeing EOF) until the
     * answer, as evhtp's own pause does. */
    if (len && (cc->conn->flags & EVHTP_CONN_FLAG_PAUSED) &&
        (bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_disable(bev, EV_READ);
    if (info->n_added == 0)
        return;
    switch (cc->phase) {
    case CONN_CLOSING: evbuffer_drain(buf, len); return;
    case CONN_IDLE: start_head(cc); /* fall through */
    case CONN_HEAD: scan_head(cc, buf, len - info->n_added); return;
    case CONN_BODY:
    case CONN_BUSY: return;
    }
}

void server_conn_request_started(struct request_ctx *rc)
{
    struct client_conn *cc = conn_of(rc->req->conn);
    if (cc && cc->phase != CONN_CLOSING) {
        cc->phase = CONN_BUSY;
        evtimer_del(cc->timer);
    }
}

/* A request is over. Bytes already read belong to pipelined requests:
 * evhtp would leave them unparsed until more bytes arrive, so its read
 * callback is run again (deferred, from the loop), and they are held to
 * the head limits and the header timeout like any other head. */
static void request_done(evhtp_request_t *req)
{
    struct client_conn *cc = conn_of(req->conn);
    if (!cc || cc->phase == CONN_CLOSING)
        return;
    struct bufferevent *bev = cc->conn->bev;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) == 0) {
        cc->phase = CONN_IDLE;
        arm(cc, cc->srv->cfg->idle_timeout_ms);
        return;
    }
    start_head(cc);
    scan_head(cc, in, 0);
    if (cc->phase != CONN_CLOSING)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void server_conn_request_done(struct request_ctx *rc)
{
    request_done(rc->req);
}

/* evhtp_request_pause() also disables reading, and the resume enables it
 * again: two epoll_ctl calls per held request (and an epoll entry freed
 * and allocated again), about a fifth of the loop's time when every
 * request waits for its commit. Here only evhtp's flags are set: while
 * PAUSED its read callback leaves the input alone, the request is not
 * freed under us when the client goes away (evhtp frees the connection at
 * the resume instead), and a request pipelined behind the held one waits
 * in the input until the resume, which reads it. */
void server_conn_hold(struct request_ctx *rc)
{
    evhtp_request_t *req = rc->req;
    if (req->conn->ssl) {
        /* TLS: the answer to a client gone meanwhile could not be written
         * past the TLS layer here (see server_conn_release); evhtp's own
         * pause keeps the old behaviour. */
        evhtp_request_pause(req);
        return;
    }
    req->status = EVHTP_RES_PAUSE;
    req->conn->flags |= EVHTP_CONN_FLAG_PAUSED;
}

/* The common case of a held request (docs/architecture.md, "Holding a
 * request without touching epoll"): the connection's output is empty and
 * nothing more has arrived, so the answer is written here and never waits
 * for a write event. evhtp's own path appends it to the output, whose
 * write event is added (epoll_ctl) and, once the next loop turn has
 * written it, deleted again (epoll_ctl). */
size_t server_conn_write_answer(struct request_ctx *rc, const void *head, size_t head_len,
                                const void *body, size_t body_len)
{
    evhtp_connection_t *conn = rc->req->conn;
    if (!rc->held || conn->ssl || !(conn->flags & EVHTP_CONN_FLAG_PAUSED) ||
        (conn->flags & EVHTP_CONN_FLAG_FREE_CONN))
        return 0;
    struct bufferevent *bev = conn->bev;
    if (evbuffer_get_length(bufferevent_get_output(bev)) ||
        evbuffer_get_length(bufferevent_get_input(bev)) ||
        !(bufferevent_get_enabled(bev) & EV_READ))
        return 0;
    struct iovec iov[2] = {{(void *)(uintptr_t)head, head_len},
                           {(void *)(uintptr_t)body, body_len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = body_len ? 2 : 1};
    ssize_t n;
    do {
        n = sendmsg(conn->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0; /* full or failed: the bufferevent writes it, and sees the error */
    if ((size_t)n == head_len + body_len)
        rc->sent_on_socket = true;
    return (size_t)n;
}

void server_conn_release(struct request_ctx *rc)
{
    evhtp_connection_t *conn = rc->req->conn;
    if (!(conn->flags & EVHTP_CONN_FLAG_PAUSED))
        return;
    if (rc->sent_on_socket) {
        /* What evhtp's resume and its write callback would do once the
         * output is flushed, without the write event: clear the pause and
         * let evhtp's write callback (deferred, so rc stays valid up the
         * stack) free the finished request and ready the parser for the
         * next one, or close the connection. Reading was never stopped. */
        conn->flags &= (uint16_t)~EVHTP_CONN_FLAG_PAUSED;
        rc->req->status = EVHTP_RES_OK;
        bufferevent_trigger(conn->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    if (conn->flags & EVHTP_CONN_FLAG_FREE_CONN) {
        /* The client closed (or reset) while held; evhtp frees the
         * connection in the resume without flushing: write the answer now
         * for a client that only shut its sending side. */
        struct bufferevent *bev = conn->bev;
        struct evbuffer *out = bufferevent_get_output(bev);
        evbuffer_unfreeze(out, 1); /* its start is the bufferevent's to drain */
        if (evbuffer_write(out, bufferevent_getfd(bev)) < 0)
            log_debug("answer to a closed connection: %s", strerror(errno));
        evbuffer_freeze(out, 1);
    }
    evhtp_request_resume(rc->req);
}

struct auth_memo *server_conn_auth_memo(struct request_ctx *rc)
{
    struct client_conn *cc = conn_of(rc->req->conn);
    return cc ? &cc->auth : NULL;
}

/* Requests that never reached on_request (no route callback) end here. */
static evhtp_res on_plain_request_fini(evhtp_request_t *req, void *arg)
{
    (void)arg;
    request_done(req);
    return EVHTP_RES_OK;
}

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
    struct client_conn *cc = arg;
    if (!cc)
        return EVHTP_RES_OK;
    struct server *s = cc->srv;
    /* on_request_fini runs after this: let it find no state. */
    evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_connection_fini,
                              NULL);
    if (cc->input_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), cc->input_cb);
    if (cc->prev)
        cc->prev->next = cc->next;
    else
        s->conns = cc->next;
    if (cc->next)
        cc->next->prev = cc->prev;
    s->nconns--;
    event_free(cc->timer);
    auth_memo_cleanup(&cc->auth);
    free(cc);
    return EVHTP_RES_OK;
}

evhtp_res server_conn_on_accept(evhtp_connection_t *conn, void *arg)
{
    struct server *s = arg;
    struct client_conn *cc = calloc(1, sizeof *cc);
    if (!cc)
        return EVHTP_RES_ERROR;
    cc->conn = conn;
    cc->srv = s;
    /* An answer spanning several segments must not wait for the client's
     * delayed ACK (Nagle): a 26 KB topic read took ~44 ms without this.
     * Failure only costs latency, so it is not fatal. */
    int one = 1;
    if (setsockopt(conn->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        log_debug("TCP_NODELAY on a client connection: %s", strerror(errno));
    cc->timer = evtimer_new(s->base, on_timer, cc);
    cc->input_cb =
        cc->timer ? evbuffer_add_cb(bufferevent_get_input(conn->bev), on_input, cc) : NULL;
    if (!cc->input_cb) {
        if (cc->timer)
            event_free(cc->timer);
        free(cc);
        return EVHTP_RES_ERROR;
    }
    cc->next = s->conns;
    if (s->conns)
        s->conns->prev = cc;
    s->conns = cc;
    s->nconns++;
    evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_connection_fini,
                              cc);
    evhtp_connection_set_hook(conn, evhtp_hook_on_request_fini, (evhtp_hook)on_plain_request_fini,
                              NULL);
    if (s->nconns > s->cfg->max_connections) {
        if (!s->refusing)
            log_warn("%zu client connections open (MOM_MAX_CONNECTIONS %llu): refusing more",
                     s->nconns, (unsigned long long)s->cfg->max_connections);
        s->refusing = true;
        refuse(cc, API_ERR_UNAVAILABLE, "Service Unavailable",
               "too many open connections; retry later");
        return EVHTP_RES_OK;
    }
    s->refusing = false;
    start_head(cc);
    return EVHTP_RES_OK;
}
