/* Peer channel set-up for momd: membership from MOM_PEERS, the Ping
 * service, one health ping per member per second (one in flight at most)
 * and the /v1/cluster view. Until Raft is wired this node reports itself as
 * leader of term 0 with commit index 0.
 * SPDX-License-Identifier: MIT */
#include "broker/peer_glue.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "proto/mom.pb.h"
#include "replication/grpcmsg.h"
#include "replication/peer.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_ID 0 /* the single Raft group for now */

struct member_health {
    struct peer_glue *g;
    uint32_t id;
    char addr[272];
    bool self;
    bool healthy;
    bool ever;        /* a Ping has succeeded at least once */
    bool ping_out;    /* one in flight */
    uint64_t last_ok; /* monotonic ms */
};

struct peer_glue {
    struct event_base *base;
    struct peer *peer;
    uint32_t node_id;
    struct member_health *m;
    size_t n;
    struct event *ping_ev;
};

static void on_ping_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct peer_glue *g = arg;
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
        .group_id = in.group_id, .from = g->node_id, .term = 0, .leader = g->node_id};
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

static void ping_all(struct peer_glue *g)
{
    mom_v1_PingRequest req = {.group_id = GROUP_ID, .from = g->node_id, .time_ms = clock_wall_ms()};
    uint8_t buf[mom_v1_PingRequest_size];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    if (!pb_encode(&os, mom_v1_PingRequest_fields, &req))
        return;
    for (size_t i = 0; i < g->n; i++) {
        struct member_health *mh = &g->m[i];
        if (mh->self || mh->ping_out)
            continue;
        if (peer_call(g->peer, mh->id, PEER_GLUE_PING_PATH, buf, os.bytes_written,
                      PEER_GLUE_PING_DEADLINE_MS, on_ping_reply, mh) == MOM_OK)
            mh->ping_out = true;
    }
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ping_all(arg);
}

int peer_glue_new(struct event_base *base, const struct peer_glue_config *cfg,
                  struct peer_glue **out)
{
    *out = NULL;
    struct peer_member *members = calloc(PEER_MAX_MEMBERS, sizeof *members);
    struct peer_glue *g = calloc(1, sizeof *g);
    int rc = MOM_ERR_NOMEM;
    if (!members || !g)
        goto fail;
    g->base = base;
    g->node_id = cfg->node_id;
    size_t n = 0;
    if (cfg->peers && *cfg->peers) {
        char why[160];
        rc = peer_parse_members(cfg->peers, members, PEER_MAX_MEMBERS, &n, why, sizeof why);
        if (rc != MOM_OK) {
            log_error("MOM_PEERS: %s", why);
            goto fail;
        }
    }
    bool self_found = false;
    for (size_t i = 0; i < n; i++)
        self_found = self_found || members[i].id == cfg->node_id;
    if (n > 0 && !self_found) {
        log_error("MOM_PEERS does not list this node (MOM_NODE_ID=%u)", cfg->node_id);
        rc = MOM_ERR_INVALID;
        goto fail;
    }
    if (n == 0) { /* a cluster of one */
        members[0].id = cfg->node_id;
        snprintf(members[0].addr, sizeof members[0].addr, "%s",
                 cfg->listen_addr ? cfg->listen_addr : "");
        n = 1;
    }
    g->m = calloc(n, sizeof *g->m);
    if (!g->m) {
        rc = MOM_ERR_NOMEM;
        goto fail;
    }
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        g->m[i].g = g;
        g->m[i].id = members[i].id;
        memcpy(g->m[i].addr, members[i].addr, sizeof g->m[i].addr);
        g->m[i].self = members[i].id == cfg->node_id;
        g->m[i].healthy = g->m[i].self;
    }
    struct peer_config pc = {
        .node_id = cfg->node_id,
        .listen_addr = cfg->listen_addr,
        .members = members,
        .n_members = n,
        .cluster_secret = cfg->cluster_secret,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .tls_ca = cfg->tls_ca,
    };
    rc = peer_new(base, &pc, &g->peer);
    if (rc != MOM_OK)
        goto fail;
    rc = peer_register(g->peer, PEER_GLUE_PING_PATH, on_ping_request, g);
    if (rc != MOM_OK)
        goto fail;
    g->ping_ev = event_new(base, -1, EV_PERSIST, ping_cb, g);
    struct timeval tv = {PEER_GLUE_PING_INTERVAL_MS / 1000,
                         (PEER_GLUE_PING_INTERVAL_MS % 1000) * 1000};
    if (!g->ping_ev || event_add(g->ping_ev, &tv) != 0) {
        rc = MOM_ERR_NOMEM;
        goto fail;
    }
    ping_all(g); /* the first round waits for the connections */
    free(members);
    log_info("peer channel on port %u, %zu member(s), node %u", peer_port(g->peer), n,
             cfg->node_id);
    *out = g;
    return MOM_OK;
fail:
    free(members);
    peer_glue_free(g);
    return rc;
}

void peer_glue_free(struct peer_glue *g)
{
    if (!g)
        return;
    if (g->ping_ev)
        event_free(g->ping_ev);
    peer_free(g->peer);
    free(g->m);
    free(g);
}

uint16_t peer_glue_port(const struct peer_glue *g)
{
    return peer_port(g->peer);
}
struct peer *peer_glue_peer(struct peer_glue *g)
{
    return g->peer;
}

bool peer_glue_member_healthy(const struct peer_glue *g, uint32_t id)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->m[i].id == id)
            return g->m[i].healthy;
    return false;
}

int peer_glue_cluster_json(struct peer_glue *g, struct reply *out)
{
    uint64_t now = clock_mono_ms();
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return MOM_ERR_NOMEM;
    cJSON_AddNumberToObject(root, "node_id", g->node_id);
    cJSON_AddStringToObject(root, "role", "leader");
    cJSON_AddNumberToObject(root, "term", 0);
    cJSON_AddNumberToObject(root, "leader", g->node_id);
    cJSON_AddNumberToObject(root, "commit_index", 0);
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    if (!nodes) {
        cJSON_Delete(root);
        return MOM_ERR_NOMEM;
    }
    for (size_t i = 0; i < g->n; i++) {
        const struct member_health *mh = &g->m[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddItemToArray(nodes, o);
        cJSON_AddNumberToObject(o, "id", mh->id);
        cJSON_AddStringToObject(o, "address", mh->addr);
        cJSON_AddStringToObject(o, "role", mh->self ? "leader" : "follower");
        cJSON_AddNumberToObject(o, "match_index", 0);
        if (mh->self)
            cJSON_AddNumberToObject(o, "last_contact_ms", 0);
        else if (mh->ever)
            cJSON_AddNumberToObject(o, "last_contact_ms", (double)(now - mh->last_ok));
        else
            cJSON_AddNullToObject(o, "last_contact_ms");
        cJSON_AddBoolToObject(o, "healthy", mh->healthy);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return MOM_ERR_NOMEM;
    reply_set(out, 200, text, strlen(text));
    return MOM_OK;
}
