/* The node's read barriers (node_read_barrier, node_internal.h): ReadIndex
 * on the leader (raft_read_index, answered by a Ready's read states), and
 * on a follower a Forward{read_index} call that asks the leader for its
 * commit index and then waits until this node has applied it. The leader
 * side of that call lives here too. A barrier is a struct read_wait on
 * n->reads; it is answered once (read_ready or the Forward reply) and freed
 * when it is answered and no call to the leader is outstanding.
 * SPDX-License-Identifier: MIT */
#include "replication/node_internal.h"

#include "common/clock.h"
#include "common/err.h"
#include "replication/grpcmsg.h"

#include <stdlib.h>

static void read_answer(struct node *n, struct read_wait *w, int err)
{
    w->done = true;
    if (w->fwd) {
        if (err == MOM_OK) {
            struct node_wire_fwd_resp resp = {
                .group_id = n->group_id,
                .from = n->id,
                .status = 200,
                .index = w->index,
                .leader = n->id,
            };
            uint8_t *buf = NULL;
            size_t len = 0;
            if (node_wire_encode_fwd_resp(&resp, &buf, &len) == MOM_OK)
                peer_respond(w->fwd, GRPC_OK, NULL, buf, len);
            else
                peer_respond(w->fwd, GRPC_INTERNAL, "cannot encode", NULL, 0);
            free(buf);
        } else {
            peer_respond(w->fwd, GRPC_UNAVAILABLE, mom_strerror(err), NULL, 0);
        }
        w->fwd = NULL;
    }
    if (w->ctx) {
        void *ctx = w->ctx;
        w->ctx = NULL;
        n->cb.read_ready(n->arg, ctx, err);
    }
}

/* Callbacks may add barriers: the list is detached while it is walked. */
void node_read_progress(struct node *n, bool expire)
{
    uint64_t now = expire ? clock_mono_ms() : 0;
    struct read_wait *list = n->reads, *keep = NULL;
    n->reads = NULL;
    while (list) {
        struct read_wait *w = list;
        list = w->next;
        if (!w->done) {
            /* A follower's barrier is answered to the follower as soon as the
             * index is known; it applies up to it itself. */
            if (w->have_index && (w->fwd || n->applied_index >= w->index))
                read_answer(n, w, MOM_OK);
            else if (w->deadline == 0 || (expire && now >= w->deadline))
                read_answer(n, w, MOM_ERR_UNAVAILABLE);
        }
        if (w->done && !w->call_out) {
            free(w);
        } else {
            w->next = keep;
            keep = w;
        }
    }
    while (keep) {
        struct read_wait *w = keep;
        keep = w->next;
        w->next = n->reads;
        n->reads = w;
    }
}

static struct read_wait *read_new(struct node *n, void *ctx, struct peer_request *fwd)
{
    struct read_wait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->id = ++n->next_read_id;
    w->ctx = ctx;
    w->fwd = fwd;
    w->n = n;
    w->deadline = clock_mono_ms() + n->commit_timeout_ms;
    w->next = n->reads;
    n->reads = w;
    return w;
}

static void on_read_index_reply(int status, const char *message, const uint8_t *reply, size_t len,
                                void *arg)
{
    (void)message;
    struct read_wait *w = arg;
    struct node *n = w->n;
    w->call_out = false;
    if (!w->done) {
        struct node_wire_fwd_resp resp = {0};
        if (status == GRPC_OK && node_wire_decode_fwd_resp(reply, len, &resp) == MOM_OK &&
            resp.status == 200) {
            w->index = resp.index;
            w->have_index = true;
        } else {
            read_answer(n, w, MOM_ERR_UNAVAILABLE);
        }
        free(resp.body);
    }
    node_read_progress(n, false);
}

void node_read_states(struct node *n, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        const struct raft_read_state *rs = &rd->reads[i];
        for (struct read_wait *w = n->reads; w; w = w->next) {
            if (w->id != rs->ctx || w->done)
                continue;
            if (rs->err != MOM_OK) {
                w->deadline = 0; /* failed by node_read_progress after the Ready */
            } else {
                w->index = rs->index;
                w->have_index = true;
            }
        }
    }
}

int node_read_barrier(struct node *n, void *ctx)
{
    if (!n->writable)
        return MOM_ERR_UNAVAILABLE;
    uint32_t leader = raft_leader(n->raft);
    if (leader == RAFT_NONE || (leader != n->id && !n->peer))
        return MOM_ERR_UNAVAILABLE;
    struct read_wait *w = read_new(n, ctx, NULL);
    if (!w)
        return MOM_ERR_UNAVAILABLE;
    int rc;
    if (leader == n->id && !n->in_ready) {
        rc = raft_read_index(n->raft, w->id);
    } else if (leader == n->id) {
        rc = MOM_ERR_UNAVAILABLE;
    } else {
        struct node_wire_fwd_req req = {.group_id = n->group_id, .from = n->id, .read_index = true};
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = node_wire_encode_fwd_req(&req, &buf, &len);
        if (rc == MOM_OK)
            rc = peer_call(n->peer, leader, NODE_PATH_FORWARD, buf, len,
                           (uint32_t)n->commit_timeout_ms, on_read_index_reply, w);
        free(buf);
        if (rc == MOM_OK)
            w->call_out = true;
    }
    if (rc != MOM_OK) {
        w->ctx = NULL;
        w->done = true;
        node_read_progress(n, false);
        return MOM_ERR_UNAVAILABLE;
    }
    node_kick(n);
    return MOM_OK;
}

void node_read_forwarded(struct node *n, struct peer_request *req)
{
    struct read_wait *w =
        raft_role(n->raft) == RAFT_LEADER && !n->in_ready ? read_new(n, NULL, req) : NULL;
    if (!w || raft_read_index(n->raft, w->id) != MOM_OK) {
        if (w) {
            w->fwd = NULL;
            w->done = true;
        }
        peer_respond(req, GRPC_UNAVAILABLE, "not the leader", NULL, 0);
        node_read_progress(n, false);
        return;
    }
    node_kick(n);
}

void node_read_fail_calls(struct node *n)
{
    for (struct read_wait *w = n->reads; w; w = w->next)
        if (w->call_out && !w->done && !w->have_index)
            w->deadline = 0; /* answered 503 by node_read_progress */
    node_read_progress(n, false);
}

void node_read_close(struct node *n)
{
    while (n->reads) {
        struct read_wait *w = n->reads;
        n->reads = w->next;
        if (!w->done) {
            if (w->fwd)
                peer_respond(w->fwd, GRPC_UNAVAILABLE, "shutting down", NULL, 0);
            if (w->ctx)
                n->cb.read_ready(n->arg, w->ctx, MOM_ERR_CLOSED);
        }
        free(w);
    }
}
