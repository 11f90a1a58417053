/* Peer-channel load client and test driver, built on replication/peer.
 *   peer_bench [bench] [--seconds S] [--inflight N] [--ae-inflight N]
 *                      [--batch N] [--entry-size B]
 *       forks a peer server, then over one connection on loopback measures
 *       Ping RPC/s with N calls in flight and append throughput (Raft calls
 *       carrying a RaftMessage of type APPEND with a batch of entries,
 *       encoded and decoded by replication/node_wire as the nodes do) in
 *       entries/s and MB/s, each beside a plain TCP echo of the same bytes
 *       with the same number in flight.
 *   peer_bench call --target HOST:PORT --secret S [--node-id 1] [--target-id 2]
 *                   [--path P] [--deadline-ms N] [--body-hex HEX | --ping]
 *       one unary call; prints "status=N reply_len=N message=..." and exits 0.
 *   peer_bench serve --listen HOST:PORT --secret S [--node-id 2] [--peers LIST]
 *       a peer answering Ping and appends on Raft, and /mom.v1.Peer/Slow (a
 *       PingRequest) after `time_ms` ms from a timer (a deferred answer);
 *       prints "PEER READY port=N".
 * SPDX-License-Identifier: MIT */
#include "broker/cluster_token.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/mom.pb.h"
#include "replication/grpcmsg.h"
#include "replication/node_wire.h"
#include "replication/peer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET_DEFAULT "bench-secret"
#define AE_PATH "/mom.v1.Peer/Raft"
#define PING_PATH "/mom.v1.Peer/Ping"

struct opts {
    const char *mode;
    double seconds;
    int inflight, ae_inflight, batch, entry_size;
    const char *target, *listen, *secret, *peers, *path, *body_hex;
    uint32_t node_id, target_id, deadline_ms;
    bool ping;
    struct node_token_ops tokens; /* on --secret, as momd wires them */
};

/* ---------------- server side ---------------- */

/* An append on the Raft RPC: decoded as a node decodes it and answered
 * with a successful APPEND_RESP up to its last entry. */
static void on_ae(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    uint32_t *self = arg;
    struct node_wire_msg in;
    if (node_wire_decode_msg(body, len, &in) != MOM_OK || in.m.type != RAFT_MSG_APPEND) {
        node_wire_msg_cleanup(&in);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "not an append", NULL, 0);
        return;
    }
    uint64_t last = in.m.n_entries ? in.m.entries[in.m.n_entries - 1].index : in.m.prev_log_index;
    struct raft_msg out = {.type = RAFT_MSG_APPEND_RESP,
                           .group_id = in.m.group_id,
                           .from = *self,
                           .to = in.m.from,
                           .term = in.m.term,
                           .seq = in.m.seq,
                           .success = true,
                           .match_index = last,
                           .last_log_index = last};
    node_wire_msg_cleanup(&in);
    uint8_t *buf;
    size_t n;
    if (node_wire_encode_msg(&out, NULL, &buf, &n) != MOM_OK) {
        peer_respond(req, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    peer_respond(req, GRPC_OK, NULL, buf, n);
    free(buf);
}

static void on_ping(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    uint32_t *self = arg;
    mom_v1_PingRequest in = mom_v1_PingRequest_init_zero;
    pb_istream_t is = pb_istream_from_buffer(body, len);
    if (!pb_decode(&is, mom_v1_PingRequest_fields, &in)) {
        peer_respond(req, GRPC_INVALID_ARGUMENT, PB_GET_ERROR(&is), NULL, 0);
        return;
    }
    mom_v1_PingResponse out = {.group_id = in.group_id, .from = *self, .leader = *self};
    uint8_t buf[mom_v1_PingResponse_size];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    pb_encode(&os, mom_v1_PingResponse_fields, &out);
    peer_respond(req, GRPC_OK, NULL, buf, os.bytes_written);
}

/* Test hook: /mom.v1.Peer/Slow answers a PingRequest after `time_ms` ms from
 * a timer, so a handler that keeps its request (and the server deadline)
 * is exercised. */
struct slow {
    struct peer_request *req;
    struct event *ev;
    uint32_t self;
};

static void slow_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct slow *s = arg;
    mom_v1_PingResponse out = {.from = s->self, .leader = s->self};
    uint8_t buf[mom_v1_PingResponse_size];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    pb_encode(&os, mom_v1_PingResponse_fields, &out);
    peer_respond(s->req, GRPC_OK, NULL, buf, os.bytes_written);
    event_free(s->ev);
    free(s);
}

static void on_slow(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    mom_v1_PingRequest in = mom_v1_PingRequest_init_zero;
    pb_istream_t is = pb_istream_from_buffer(body, len);
    if (!pb_decode(&is, mom_v1_PingRequest_fields, &in)) {
        peer_respond(req, GRPC_INVALID_ARGUMENT, PB_GET_ERROR(&is), NULL, 0);
        return;
    }
    struct event_base *base = ((void **)arg)[0];
    struct slow *s = calloc(1, sizeof *s);
    s->req = req;
    s->self = *(uint32_t *)((void **)arg)[1];
    s->ev = evtimer_new(base, slow_fire, s);
    struct timeval tv = {(time_t)(in.time_ms / 1000), (suseconds_t)(in.time_ms % 1000) * 1000};
    evtimer_add(s->ev, &tv);
}

/* plain TCP echo for the baseline */
static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void echo_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                        void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct event_base *base = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, echo_read, NULL, echo_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static uint16_t listener_port(struct evconnlistener *l)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Runs a peer server (and an echo listener) until SIGTERM/SIGINT. */
static int run_server(const struct opts *o, int ready_fd)
{
    struct event_base *base = event_base_new();
    struct peer_member members[PEER_MAX_MEMBERS];
    size_t n = 0;
    char why[128];
    if (o->peers && peer_parse_members(o->peers, members, PEER_MAX_MEMBERS, &n, why, sizeof why)) {
        fprintf(stderr, "bad --peers: %s\n", why);
        return 2;
    }
    if (!o->peers) { /* bench: the client is node 1 */
        members[0] = (struct peer_member){.id = 1};
        snprintf(members[0].addr, sizeof members[0].addr, "127.0.0.1:1");
        n = 1;
    }
    struct peer_config pc = {.node_id = o->node_id,
                             .listen_addr = o->listen,
                             .members = members,
                             .n_members = n,
                             .tokens = &o->tokens,
                             .max_message = 64u << 20};
    struct peer *p;
    if (peer_new(base, &pc, &p) != MOM_OK)
        return 1;
    uint32_t self = o->node_id;
    peer_register(p, PING_PATH, on_ping, &self);
    peer_register(p, AE_PATH, on_ae, &self);
    void *slow_arg[2] = {base, &self};
    peer_register(p, "/mom.v1.Peer/Slow", on_slow, slow_arg);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *echo =
        evconnlistener_new_bind(base, echo_accept, base, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                64, (struct sockaddr *)&sin, sizeof sin);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    char line[128];
    int len = snprintf(line, sizeof line, "PEER READY port=%u echo=%u\n", peer_port(p),
                       listener_port(echo));
    if (ready_fd >= 0) {
        ssize_t w = write(ready_fd, line, (size_t)len);
        (void)w;
        close(ready_fd);
    } else {
        fputs(line, stdout);
        fflush(stdout);
    }
    event_base_dispatch(base);
    event_free(sigterm);
    event_free(sigint);
    evconnlistener_free(echo);
    peer_free(p);
    event_base_free(base);
    return 0;
}

/* ---------------- one call ---------------- */

struct one {
    struct event_base *base;
    int status;
};

static void one_done(int status, const char *msg, const uint8_t *reply, size_t len, void *arg)
{
    struct one *o = arg;
    char hex[65] = "";
    for (size_t i = 0; i < len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", reply[i]);
    printf("status=%d reply_len=%zu reply_hex=%s message=%s\n", status, len, hex, msg);
    fflush(stdout);
    o->status = status;
    event_base_loopbreak(o->base);
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t max)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < max; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
    }
    return n;
}

static int run_call(const struct opts *o)
{
    struct event_base *base = event_base_new();
    struct peer_member members[2] = {{.id = o->node_id}, {.id = o->target_id}};
    snprintf(members[0].addr, sizeof members[0].addr, "127.0.0.1:0");
    size_t n;
    char why[128];
    char list[300];
    snprintf(list, sizeof list, "%u=%s", o->target_id, o->target);
    if (peer_parse_members(list, &members[1], 1, &n, why, sizeof why) != MOM_OK) {
        fprintf(stderr, "bad --target: %s\n", why);
        return 2;
    }
    struct peer_config pc = {.node_id = o->node_id,
                             .listen_addr = "127.0.0.1:0",
                             .members = members,
                             .n_members = 2,
                             .tokens = &o->tokens,
                             .max_message = 64u << 20,
                             .backoff_base_ms = 50};
    struct peer *p;
    if (peer_new(base, &pc, &p) != MOM_OK)
        return 1;
    uint8_t body[4096];
    size_t blen = 0;
    if (o->ping) {
        mom_v1_PingRequest req = {.group_id = 0, .from = o->node_id, .time_ms = clock_wall_ms()};
        pb_ostream_t os = pb_ostream_from_buffer(body, sizeof body);
        pb_encode(&os, mom_v1_PingRequest_fields, &req);
        blen = os.bytes_written;
    } else if (o->body_hex) {
        blen = parse_hex(o->body_hex, body, sizeof body);
    }
    struct one one = {.base = base, .status = -1};
    int rc = peer_call(p, o->target_id, o->path, body, blen, o->deadline_ms, one_done, &one);
    if (rc != MOM_OK) {
        printf("error=%s\n", mom_strerror(rc));
        return 1;
    }
    event_base_dispatch(base);
    peer_free(p);
    event_base_free(base);
    return 0;
}

/* ---------------- benchmark client ---------------- */

struct bench {
    struct event_base *base;
    struct peer *peer;
    const uint8_t *req;
    size_t req_len;
    const char *path;
    uint64_t done, errors;
    int inflight;
    bool measuring, stopping;
    uint64_t t0_us, t1_us;
    int last_error;
};

static void bench_issue(struct bench *b);

static void bench_done(int status, const char *msg, const uint8_t *reply, size_t len, void *arg)
{
    (void)reply;
    (void)len;
    struct bench *b = arg;
    b->inflight--;
    if (status != GRPC_OK) {
        b->errors++;
        if (b->errors < 5)
            fprintf(stderr, "call failed: %s %s\n", grpcmsg_status_name(status), msg);
    } else if (b->measuring) {
        b->done++;
    }
    if (!b->stopping)
        bench_issue(b);
    else if (b->inflight == 0)
        event_base_loopbreak(b->base);
}

static void bench_issue(struct bench *b)
{
    if (peer_call(b->peer, 2, b->path, b->req, b->req_len, 10000, bench_done, b) == MOM_OK)
        b->inflight++;
}

static void phase_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    b->measuring = true;
    b->done = 0;
    b->t0_us = clock_mono_us();
}

static void phase_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    b->measuring = false;
    b->stopping = true;
    b->t1_us = clock_mono_us();
    if (b->inflight == 0)
        event_base_loopbreak(b->base);
}

/* Runs calls with `inflight` outstanding; returns completed calls per second. */
static double bench_rpc(struct event_base *base, struct peer *p, const char *path,
                        const uint8_t *req, size_t len, int inflight, double seconds)
{
    struct bench b = {.base = base, .peer = p, .req = req, .req_len = len, .path = path};
    struct timeval warm = {0, 300000};
    struct timeval stop = {(time_t)seconds,
                           (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) + 300000};
    if (stop.tv_usec >= 1000000) {
        stop.tv_sec++;
        stop.tv_usec -= 1000000;
    }
    struct event *e1 = evtimer_new(base, phase_start_cb, &b);
    struct event *e2 = evtimer_new(base, phase_stop_cb, &b);
    evtimer_add(e1, &warm);
    evtimer_add(e2, &stop);
    for (int i = 0; i < inflight; i++)
        bench_issue(&b);
    event_base_dispatch(base);
    event_free(e1);
    event_free(e2);
    if (b.errors)
        fprintf(stderr, "%llu calls failed\n", (unsigned long long)b.errors);
    return (double)b.done / ((double)(b.t1_us - b.t0_us) / 1e6);
}

/* TCP echo baseline: `inflight` messages of `size` bytes outstanding. */
struct echo {
    struct event_base *base;
    struct bufferevent *bev;
    size_t size;
    uint8_t *msg;
    size_t pending; /* bytes of the current reply already read */
    uint64_t done;
    int inflight;
    bool measuring, stopping;
    uint64_t t0_us, t1_us;
};

static void echo_client_read(struct bufferevent *bev, void *arg)
{
    struct echo *e = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t have = evbuffer_get_length(in);
    evbuffer_drain(in, have);
    e->pending += have;
    while (e->pending >= e->size) {
        e->pending -= e->size;
        e->inflight--;
        if (e->measuring)
            e->done++;
        if (!e->stopping) {
            bufferevent_write(bev, e->msg, e->size);
            e->inflight++;
        }
    }
    if (e->stopping && e->inflight == 0)
        event_base_loopbreak(e->base);
}

static void echo_start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct echo *e = arg;
    e->measuring = true;
    e->done = 0;
    e->t0_us = clock_mono_us();
}

static void echo_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct echo *e = arg;
    e->measuring = false;
    e->stopping = true;
    e->t1_us = clock_mono_us();
}

static double bench_echo(struct event_base *base, uint16_t port, size_t size, int inflight,
                         double seconds)
{
    struct echo e = {.base = base, .size = size};
    e.msg = calloc(1, size);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    e.bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(e.bev, echo_client_read, NULL, NULL, &e);
    bufferevent_socket_connect(e.bev, (struct sockaddr *)&sin, sizeof sin);
    int one = 1;
    setsockopt(bufferevent_getfd(e.bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_enable(e.bev, EV_READ | EV_WRITE);
    for (int i = 0; i < inflight; i++) {
        bufferevent_write(e.bev, e.msg, size);
        e.inflight++;
    }
    struct timeval warm = {0, 300000};
    struct timeval stop = {(time_t)seconds, 300000};
    struct event *e1 = evtimer_new(base, echo_start_cb, &e);
    struct event *e2 = evtimer_new(base, echo_stop_cb, &e);
    evtimer_add(e1, &warm);
    evtimer_add(e2, &stop);
    event_base_dispatch(base);
    event_free(e1);
    event_free(e2);
    bufferevent_free(e.bev);
    free(e.msg);
    return (double)e.done / ((double)(e.t1_us - e.t0_us) / 1e6);
}

/* A RaftMessage of type APPEND with `batch` entries of entry_size bytes. */
static uint8_t *build_ae(int batch, int entry_size, size_t *len)
{
    uint8_t *payload = malloc((size_t)entry_size);
    for (int i = 0; i < entry_size; i++)
        payload[i] = (uint8_t)('a' + i % 26);
    struct raft_entry *ents = calloc((size_t)batch, sizeof *ents);
    for (int i = 0; i < batch; i++)
        ents[i] = (struct raft_entry){
            .term = 1, .index = (uint64_t)i + 1, .data = payload, .len = (size_t)entry_size};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 1,
                         .leader_commit = 1,
                         .entries = ents,
                         .n_entries = (size_t)batch};
    uint8_t *buf = NULL;
    *len = 0;
    if (node_wire_encode_msg(&m, NULL, &buf, len) != MOM_OK)
        abort();
    free(ents);
    free(payload);
    return buf;
}

static int run_bench(const struct opts *o)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        struct opts so = *o;
        so.node_id = 2;
        so.listen = "127.0.0.1:0";
        so.peers = NULL;
        _exit(run_server(&so, fds[1]));
    }
    close(fds[1]);
    char line[128] = "";
    ssize_t r = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    unsigned port = 0, echo_port = 0;
    if (r <= 0 || sscanf(line, "PEER READY port=%u echo=%u", &port, &echo_port) != 2) {
        fprintf(stderr, "server did not start\n");
        kill(child, SIGTERM);
        return 1;
    }
    struct event_base *base = event_base_new();
    struct peer_member members[2] = {{.id = 1}, {.id = 2, .port = (uint16_t)port}};
    snprintf(members[0].addr, sizeof members[0].addr, "127.0.0.1:0");
    snprintf(members[1].host, sizeof members[1].host, "127.0.0.1");
    snprintf(members[1].addr, sizeof members[1].addr, "127.0.0.1:%u", port);
    struct peer_config pc = {.node_id = 1,
                             .listen_addr = "127.0.0.1:0",
                             .members = members,
                             .n_members = 2,
                             .tokens = &o->tokens,
                             .max_message = 64u << 20};
    struct peer *p;
    if (peer_new(base, &pc, &p) != MOM_OK)
        return 1;

    uint8_t ping[mom_v1_PingRequest_size];
    mom_v1_PingRequest preq = {.group_id = 0, .from = 1, .time_ms = clock_wall_ms()};
    pb_ostream_t os = pb_ostream_from_buffer(ping, sizeof ping);
    pb_encode(&os, mom_v1_PingRequest_fields, &preq);
    size_t ping_len = os.bytes_written;
    size_t ae_len;
    uint8_t *ae = build_ae(o->batch, o->entry_size, &ae_len);

    double ping_rps = bench_rpc(base, p, PING_PATH, ping, ping_len, o->inflight, o->seconds);
    double ping_echo = bench_echo(base, (uint16_t)echo_port, ping_len + GRPCMSG_PREFIX_LEN,
                                  o->inflight, o->seconds);
    double ae_rps = bench_rpc(base, p, AE_PATH, ae, ae_len, o->ae_inflight, o->seconds);
    double ae_echo = bench_echo(base, (uint16_t)echo_port, ae_len + GRPCMSG_PREFIX_LEN,
                                o->ae_inflight, o->seconds);
    double ent = ae_rps * o->batch, ent_echo = ae_echo * o->batch;
    double mb = ent * o->entry_size / 1e6, mb_echo = ent_echo * o->entry_size / 1e6;
    printf("peer channel benchmark: one connection on loopback, %.1f s per run\n", o->seconds);
    printf("%-34s %14s %14s %7s\n", "", "gRPC/HTTP2", "TCP echo", "ratio");
    printf("%-34s %14.0f %14.0f %6.2f\n", "Ping RPC/s (inflight)", ping_rps, ping_echo,
           ping_echo > 0 ? ping_rps / ping_echo : 0);
    char label[64];
    snprintf(label, sizeof label, "Raft append entries/s (%dx%dB)", o->batch, o->entry_size);
    printf("%-34s %14.0f %14.0f %6.2f\n", label, ent, ent_echo, ent_echo > 0 ? ent / ent_echo : 0);
    printf("%-34s %14.1f %14.1f %6.2f\n", "Raft append payload MB/s", mb, mb_echo,
           mb_echo > 0 ? mb / mb_echo : 0);
    printf("(Ping: %d in flight, %zu-byte request; append: %d in flight, %zu-byte request)\n",
           o->inflight, ping_len, o->ae_inflight, ae_len);
    printf("targets: >= 50000 RPC/s %s, >= 500000 entries/s %s\n",
           ping_rps >= 50000 ? "met" : "NOT met", ent >= 500000 ? "met" : "NOT met");
    free(ae);
    peer_free(p);
    event_base_free(base);
    kill(child, SIGTERM);
    int st;
    waitpid(child, &st, 0);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.mode = "bench",
                     .seconds = 3,
                     .inflight = 64,
                     .ae_inflight = 16,
                     .batch = 256,
                     .entry_size = 100,
                     .secret = SECRET_DEFAULT,
                     .path = PING_PATH,
                     .node_id = 0,
                     .target_id = 2,
                     .listen = "127.0.0.1:0"};
    int i = 1;
    if (argc > 1 && argv[1][0] != '-')
        o.mode = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool used = true;
        if (!strcmp(a, "--ping")) {
            o.ping = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "missing value for %s\n", a);
            return 2;
        }
        if (!strcmp(a, "--seconds"))
            o.seconds = atof(v);
        else if (!strcmp(a, "--inflight"))
            o.inflight = atoi(v);
        else if (!strcmp(a, "--ae-inflight"))
            o.ae_inflight = atoi(v);
        else if (!strcmp(a, "--batch"))
            o.batch = atoi(v);
        else if (!strcmp(a, "--entry-size"))
            o.entry_size = atoi(v);
        else if (!strcmp(a, "--target"))
            o.target = v;
        else if (!strcmp(a, "--listen"))
            o.listen = v;
        else if (!strcmp(a, "--secret"))
            o.secret = v;
        else if (!strcmp(a, "--peers"))
            o.peers = v;
        else if (!strcmp(a, "--path"))
            o.path = v;
        else if (!strcmp(a, "--body-hex"))
            o.body_hex = v;
        else if (!strcmp(a, "--node-id"))
            o.node_id = (uint32_t)atoi(v);
        else if (!strcmp(a, "--target-id"))
            o.target_id = (uint32_t)atoi(v);
        else if (!strcmp(a, "--deadline-ms"))
            o.deadline_ms = (uint32_t)atoi(v);
        else
            used = false;
        if (!used) {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (getenv("PEER_BENCH_DEBUG"))
        log_set_level(MOM_LOG_DEBUG);
    else
        log_set_level(MOM_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (cluster_token_init(o.secret, &o.tokens) != MOM_OK) {
        fprintf(stderr, "bad --secret\n");
        return 2;
    }
    int rc = 2;
    if (!strcmp(o.mode, "call")) {
        if (!o.node_id)
            o.node_id = 1;
        if (o.target)
            rc = run_call(&o);
        else
            fprintf(stderr, "call needs --target\n");
    } else if (!strcmp(o.mode, "serve")) {
        if (!o.node_id)
            o.node_id = 2;
        rc = run_server(&o, -1);
    } else if (!strcmp(o.mode, "bench")) {
        rc = run_bench(&o);
    } else {
        fprintf(stderr, "usage: peer_bench [bench|call|serve] [options]\n");
    }
    cluster_token_free(&o.tokens);
    return rc;
}
