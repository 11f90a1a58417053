/* Both sides of the Forward RPC (/mom.v1.Peer/Forward, node_internal.h).
 * Follower: node_propose on a follower sends the encoded Command to the
 * leader and keeps a struct fwd_call on n->fwd_calls until the reply, which
 * becomes cb.forwarded (the leader's HTTP status, body and the entry's log
 * index) or cb.fail; when this node learns a newer term first, cb.fail
 * (node_forward_fail_all) and the late reply is dropped.
 * Leader: a forwarded Command is restamped (cb.restamp) and proposed with
 * the call as its waiter; when it is applied, node_forward_answer replies
 * with what apply produced. A Forward{read_index} goes to node_read.c.
 * SPDX-License-Identifier: MIT */
#include "replication/node_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "replication/grpcmsg.h"

#include <stdlib.h>

static void on_forward_reply(int status, const char *message, const uint8_t *reply, size_t len,
                             void *arg)
{
    struct fwd_call *fc = arg;
    struct node *n = fc->n;
    if (fc->prev)
        fc->prev->next = fc->next;
    else
        n->fwd_calls = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    void *ctx = fc->ctx;
    free(fc);
    if (!ctx)
        return; /* failed already (node_forward_fail_all) */
    if (status != GRPC_OK) {
        log_debug("forward failed: %s %s", grpcmsg_status_name(status), message ? message : "");
        n->cb.fail(n->arg, ctx, MOM_ERR_UNAVAILABLE);
        return;
    }
    struct node_wire_fwd_resp resp;
    if (node_wire_decode_fwd_resp(reply, len, &resp) != MOM_OK || resp.status == 0)
        n->cb.fail(n->arg, ctx, MOM_ERR_UNAVAILABLE);
    else
        n->cb.forwarded(n->arg, ctx, (int)resp.status, resp.body, resp.body_len, resp.index);
    free(resp.body);
}

int node_forward(struct node *n, uint32_t leader, const uint8_t *data, size_t len, void *ctx)
{
    struct node_wire_fwd_req req = {
        .group_id = n->group_id,
        .from = n->id,
        .command = (uint8_t *)data,
        .command_len = len,
    };
    uint8_t *buf = NULL;
    size_t blen = 0;
    struct fwd_call *fc = calloc(1, sizeof *fc);
    if (!fc || node_wire_encode_fwd_req(&req, &buf, &blen) != MOM_OK) {
        free(fc);
        return MOM_ERR_UNAVAILABLE;
    }
    fc->n = n;
    fc->ctx = ctx;
    int rc = peer_call(n->peer, leader, NODE_PATH_FORWARD, buf, blen,
                       (uint32_t)n->commit_timeout_ms, on_forward_reply, fc);
    free(buf);
    if (rc != MOM_OK) {
        free(fc);
        return MOM_ERR_UNAVAILABLE;
    }
    fc->next = n->fwd_calls;
    if (n->fwd_calls)
        n->fwd_calls->prev = fc;
    n->fwd_calls = fc;
    return MOM_OK;
}

void node_forward_answer(struct node *n, struct peer_request *fwd, uint64_t index,
                         const struct node_reply *rr)
{
    uint8_t none = 0; /* the body field is sent even when empty */
    struct node_wire_fwd_resp resp = {
        .group_id = n->group_id,
        .from = n->id,
        .status = (uint32_t)rr->status,
        .body = rr->body ? rr->body : &none,
        .body_len = rr->body ? rr->len : 0,
        .index = index,
        .leader = n->id,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = node_wire_encode_fwd_resp(&resp, &buf, &len);
    if (rc == MOM_OK)
        peer_respond(fwd, GRPC_OK, NULL, buf, len);
    else if (rc == MOM_ERR_NOMEM)
        peer_respond(fwd, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    else
        peer_respond(fwd, GRPC_INTERNAL, "cannot encode the answer", NULL, 0);
    free(buf);
}

void node_forward_on_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct node *n = arg;
    struct node_wire_fwd_req in;
    if (node_wire_decode_fwd_req(body, len, &in) != MOM_OK) {
        free(in.command);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "bad ForwardRequest", NULL, 0);
        return;
    }
    if (in.read_index) {
        free(in.command);
        node_read_forwarded(n, req);
        return;
    }
    if (!in.command || !in.command_len) {
        free(in.command);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "empty command", NULL, 0);
        return;
    }
    if (raft_role(n->raft) != RAFT_LEADER || !n->writable) {
        free(in.command);
        peer_respond(req, GRPC_UNAVAILABLE, "not the leader", NULL, 0);
        return;
    }
    if (n->cb.restamp) {
        uint8_t *stamped = NULL;
        size_t slen = 0;
        if (n->cb.restamp(n->arg, in.command, in.command_len, &stamped, &slen) == MOM_OK) {
            free(in.command);
            in.command = stamped;
            in.command_len = slen;
        }
    }
    int rc = node_propose_local(n, in.command, in.command_len, NULL, req);
    free(in.command);
    if (rc != MOM_OK)
        peer_respond(req, GRPC_UNAVAILABLE, mom_strerror(rc), NULL, 0);
}

void node_forward_fail_all(struct node *n)
{
    for (struct fwd_call *fc = n->fwd_calls; fc; fc = fc->next) {
        void *ctx = fc->ctx;
        if (!ctx)
            continue;
        fc->ctx = NULL; /* the call stays until its reply or deadline frees it */
        n->cb.fail(n->arg, ctx, MOM_ERR_UNAVAILABLE);
    }
}

void node_forward_close(struct node *n)
{
    while (n->fwd_calls) {
        struct fwd_call *fc = n->fwd_calls;
        n->fwd_calls = fc->next;
        if (fc->ctx)
            n->cb.fail(n->arg, fc->ctx, MOM_ERR_CLOSED);
        free(fc);
    }
}
