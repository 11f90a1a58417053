/* The node's cluster view and the peer channel under it: MOM_PEERS parsed
 * once into the membership (ids 1..n, this node among them), the peer
 * channel built from it, the Ping service, one health Ping to every other
 * member each second (one in flight at most), and node_status, the one
 * struct GET /v1/cluster renders. Ping answers liveness only (term 0, this
 * node as leader; the Raft state travels in RaftMessage), as it always has
 * on the wire. Owns the channel and the health table; node_close frees
 * them after everything that still answers calls on the channel.
 * SPDX-License-Identifier: MIT */
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/mom.pb.h"
#include "replication/grpcmsg.h"
#include "replication/node_internal.h"
#include "replication/peer.h"

#include <event2/event.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PING_PATH "/mom.v1.Peer/Ping"
#define PING_INTERVAL_MS 1000
#define PING_DEADLINE_MS 900
#define HEALTHY_CONTACT_MS 3000 /* a Raft message this recent makes a member healthy */
#define GROUP_ID 0              /* the single Raft group */

struct member_health {
    struct node_cluster *c;
    uint32_t id;
    char addr[sizeof((struct peer_member *)0)->addr];
    bool self;
    bool healthy;
    bool ever;        /* a Ping has succeeded at least once */
    bool ping_out;    /* one in flight */
    uint64_t last_ok; /* monotonic ms */
};

struct node_cluster {
    struct peer *peer;
    uint32_t node_id; /* as configured (a node alone runs Raft as member 1) */
    struct member_health *m;
    size_t n;
    struct event *ping_ev;
};

static void on_ping_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct node_cluster *c = arg;
    mom_v1_PingRequest in = mom_v1_PingRequest_init_zero;
    pb_istream_t is = pb_istream_from_buffer(body, len);
    if (!pb_decode(&is, mom_v1_PingRequest_fields, &in)) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot decode PingRequest: %s", PB_GET_ERROR(&is));
        peer_respond(req, GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    if (in.from != 0 && in.from != peer_request_from(req)) {
        peer_respond(req, GRPC_PERMISSION_DENIED, "from does not match the caller's token", NULL,
                     0);
        return;
    }
    mom_v1_PingResponse out = {
        .group_id = in.group_id, .from = c->node_id, .term = 0, .leader = c->node_id};
    uint8_t buf[mom_v1_PingResponse_size];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    if (!pb_encode(&os, mom_v1_PingResponse_fields, &out)) {
        peer_respond(req, GRPC_INTERNAL, "cannot encode PingResponse", NULL, 0);
        return;
    }
    peer_respond(req, GRPC_OK, NULL, buf, os.bytes_written);
}

static void on_ping_reply(int status, const char *message, const uint8_t *reply, size_t len,
                          void *arg)
{
    struct member_health *mh = arg;
    mh->ping_out = false;
    bool ok = false;
    if (status == GRPC_OK) {
        mom_v1_PingResponse resp = mom_v1_PingResponse_init_zero;
        pb_istream_t is = pb_istream_from_buffer(reply, len);
        ok = pb_decode(&is, mom_v1_PingResponse_fields, &resp) && resp.from == mh->id;
        if (!ok)
            message = "bad PingResponse";
    }
    if (ok) {
        mh->last_ok = clock_mono_ms();
        mh->ever = true;
        if (!mh->healthy)
            log_info("peer %u (%s) is healthy", mh->id, mh->addr);
    } else if (mh->healthy) {
        log_warn("peer %u (%s) is unhealthy: %s %s", mh->id, mh->addr, grpcmsg_status_name(status),
                 message);
    }
    mh->healthy = ok;
}

static void ping_all(struct node_cluster *c)
{
    mom_v1_PingRequest req = {.group_id = GROUP_ID, .from = c->node_id, .time_ms = clock_wall_ms()};
    uint8_t buf[mom_v1_PingRequest_size];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    if (!pb_encode(&os, mom_v1_PingRequest_fields, &req))
        return;
    for (size_t i = 0; i < c->n; i++) {
        struct member_health *mh = &c->m[i];
        if (mh->self || mh->ping_out)
            continue;
        if (peer_call(c->peer, mh->id, PING_PATH, buf, os.bytes_written, PING_DEADLINE_MS,
                      on_ping_reply, mh) == MOM_OK)
            mh->ping_out = true;
    }
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ping_all(arg);
}

static void cluster_free(struct node_cluster *c)
{
    if (!c)
        return;
    if (c->ping_ev)
        event_free(c->ping_ev);
    peer_free(c->peer);
    free(c->m);
    free(c);
}

/* Parses and checks the membership; a node without MOM_PEERS is a cluster
 * of one at listen_addr. Returns MOM_OK or MOM_ERR_INVALID / _NOMEM (logged). */
static int parse_membership(uint32_t node_id, const struct node_peer_config *pc,
                            struct peer_member *members, size_t *n)
{
    *n = 0;
    if (pc->peers && *pc->peers) {
        char why[160];
        int rc = peer_parse_members(pc->peers, members, PEER_MAX_MEMBERS, n, why, sizeof why);
        if (rc != MOM_OK) {
            log_error("MOM_PEERS: %s", why);
            return rc;
        }
    }
    bool self_found = false;
    for (size_t i = 0; i < *n; i++)
        self_found = self_found || members[i].id == node_id;
    if (*n > 0 && !self_found) {
        log_error("MOM_PEERS does not list this node (MOM_NODE_ID=%u)", node_id);
        return MOM_ERR_INVALID;
    }
    for (size_t i = 0; i < *n; i++)
        if (members[i].id > *n) {
            log_error("MOM_PEERS must number its members 1..%zu", *n);
            return MOM_ERR_INVALID;
        }
    if (*n == 0) { /* a cluster of one */
        members[0].id = node_id;
        snprintf(members[0].addr, sizeof members[0].addr, "%s",
                 pc->listen_addr ? pc->listen_addr : "");
        *n = 1;
    }
    return MOM_OK;
}

static int cluster_new(struct event_base *base, uint32_t node_id, const struct node_peer_config *pc,
                       const struct peer_member *members, size_t n, struct node_cluster **out)
{
    *out = NULL;
    struct node_cluster *c = calloc(1, sizeof *c);
    if (!c || !(c->m = calloc(n, sizeof *c->m))) {
        free(c);
        return MOM_ERR_NOMEM;
    }
    c->node_id = node_id;
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        c->m[i].c = c;
        c->m[i].id = members[i].id;
        memcpy(c->m[i].addr, members[i].addr, sizeof c->m[i].addr);
        c->m[i].self = members[i].id == node_id;
        c->m[i].healthy = c->m[i].self;
    }
    struct peer_config cfg = {
        .node_id = node_id,
        .listen_addr = pc->listen_addr,
        .members = members,
        .n_members = n,
        .tokens = pc->tokens,
        .tls_cert = pc->tls_cert,
        .tls_key = pc->tls_key,
        .tls_ca = pc->tls_ca,
    };
    int rc = peer_new(base, &cfg, &c->peer);
    if (rc == MOM_OK)
        rc = peer_register(c->peer, PING_PATH, on_ping_request, c);
    if (rc != MOM_OK) {
        cluster_free(c);
        return rc;
    }
    c->ping_ev = event_new(base, -1, EV_PERSIST, ping_cb, c);
    struct timeval tv = {PING_INTERVAL_MS / 1000, (PING_INTERVAL_MS % 1000) * 1000};
    if (!c->ping_ev || event_add(c->ping_ev, &tv) != 0) {
        cluster_free(c);
        return MOM_ERR_NOMEM;
    }
    ping_all(c); /* the first round waits for the connections */
    log_info("peer channel on port %u, %zu member(s), node %u", peer_port(c->peer), n, node_id);
    *out = c;
    return MOM_OK;
}

int node_open_cluster(struct event_base *base, const struct node_config *cfg,
                      const struct node_peer_config *pc, const struct node_callbacks *cb, void *arg,
                      struct node **out)
{
    *out = NULL;
    struct peer_member *members = calloc(PEER_MAX_MEMBERS, sizeof *members);
    if (!members)
        return MOM_ERR_NOMEM;
    size_t n = 0;
    struct node_cluster *c = NULL;
    int rc = parse_membership(cfg->node_id, pc, members, &n);
    if (rc == MOM_OK)
        rc = cluster_new(base, cfg->node_id, pc, members, n, &c);
    free(members);
    if (rc != MOM_OK) {
        log_error("cannot start the peer channel on %s: %s", pc->listen_addr ? pc->listen_addr : "",
                  mom_strerror(rc));
        return rc;
    }
    struct node_config nc = *cfg;
    nc.n_members = (uint32_t)(n > 1 ? n : 0);
    nc.peer = c->peer;
    rc = node_open(base, &nc, cb, arg, out);
    if (rc != MOM_OK) {
        cluster_free(c);
        return rc;
    }
    (*out)->cluster = c;
    return MOM_OK;
}

void node_cluster_free(struct node_cluster *c)
{
    cluster_free(c);
}

uint16_t node_peer_port(const struct node *n)
{
    return n->cluster ? peer_port(n->cluster->peer) : 0;
}

void node_status(const struct node *n, struct node_status *out)
{
    const struct node_cluster *c = n->cluster;
    uint64_t now = clock_mono_ms();
    bool alone = n->n_members <= 1;
    uint32_t leader = node_leader(n);
    out->node_id = c ? c->node_id : n->id;
    out->role = node_role_name(n);
    out->term = node_term(n);
    out->leader = alone ? out->node_id : leader;
    out->commit_index = node_commit_index(n);
    out->applied_index = node_applied_index(n);
    out->abstaining = node_abstaining(n);
    out->n_members = 0;
    size_t count = c ? c->n : 1;
    for (size_t i = 0; i < count && i < NODE_STATUS_MAX_MEMBERS; i++) {
        struct node_member_status *ms = &out->members[out->n_members++];
        const struct member_health *mh = c ? &c->m[i] : NULL;
        uint32_t id = mh ? mh->id : out->node_id;
        bool self = id == out->node_id;
        uint32_t rid = alone ? n->id : id; /* alone, Raft knows this node as 1 */
        ms->id = id;
        snprintf(ms->address, sizeof ms->address, "%s", mh ? mh->addr : "");
        ms->role = self ? node_role_name(n) : rid == leader ? "leader" : "follower";
        ms->match_index = node_member_match(n, rid);
        if (self || !mh) {
            ms->last_contact_ms = 0;
            ms->healthy = true;
            continue;
        }
        uint64_t age = node_member_contact_ms(n, rid);
        if (age != UINT64_MAX) {
            ms->last_contact_ms = age;
            ms->healthy = age < HEALTHY_CONTACT_MS || mh->healthy;
        } else {
            ms->last_contact_ms = mh->ever ? now - mh->last_ok : UINT64_MAX;
            ms->healthy = mh->healthy;
        }
    }
}
