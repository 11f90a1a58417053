/* libFuzzer harness for replication/node_wire: the input is decoded as a
 * RaftMessage, a ForwardRequest and a ForwardResponse. Whatever decodes
 * must encode again and decode to the same values (every header field,
 * every entry record, the snapshot chunk, the Forward fields); nothing may
 * crash, leak or read out of bounds.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/node_wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_msg(const struct node_wire_msg *a, const struct node_wire_msg *b)
{
    const struct raft_msg *x = &a->m, *y = &b->m;
    if (x->type != y->type || x->group_id != y->group_id || x->from != y->from || x->to != y->to ||
        x->term != y->term || x->incarnation != y->incarnation ||
        x->prev_log_index != y->prev_log_index || x->prev_log_term != y->prev_log_term ||
        x->leader_commit != y->leader_commit || x->seq != y->seq || x->success != y->success ||
        x->match_index != y->match_index || x->conflict_index != y->conflict_index ||
        x->conflict_term != y->conflict_term || x->last_log_index != y->last_log_index ||
        x->abstaining != y->abstaining || x->last_log_term != y->last_log_term ||
        x->pre_vote != y->pre_vote || x->leadership_transfer != y->leadership_transfer ||
        x->vote_granted != y->vote_granted || x->snapshot_index != y->snapshot_index ||
        x->snapshot_term != y->snapshot_term || x->echo_incarnation != y->echo_incarnation)
        abort();
    if (x->n_entries != y->n_entries)
        abort();
    for (size_t i = 0; i < x->n_entries; i++) {
        const struct raft_entry *e = &x->entries[i], *f = &y->entries[i];
        if (e->term != f->term || e->index != f->index || e->len != f->len ||
            (e->len && memcmp(e->data, f->data, e->len) != 0))
            abort();
    }
    if (a->snap_off != b->snap_off || a->snap_done != b->snap_done || a->snap_len != b->snap_len ||
        (a->snap_len && memcmp(a->snap, b->snap, a->snap_len) != 0))
        abort();
}

static void raft_message(const uint8_t *data, size_t size)
{
    struct node_wire_msg d, again;
    if (node_wire_decode_msg(data, size, &d) != MOM_OK) {
        node_wire_msg_cleanup(&d);
        return;
    }
    struct node_wire_chunk c = {
        .offset = d.snap_off, .data = d.snap, .len = d.snap_len, .done = d.snap_done};
    bool chunk = d.snap || d.snap_off || d.snap_done;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (node_wire_encode_msg(&d.m, chunk ? &c : NULL, &buf, &len) != MOM_OK)
        abort();
    if (node_wire_decode_msg(buf, len, &again) != MOM_OK)
        abort();
    same_msg(&d, &again);
    node_wire_msg_cleanup(&again);
    node_wire_msg_cleanup(&d);
    free(buf);
}

static void forward_request(const uint8_t *data, size_t size)
{
    struct node_wire_fwd_req r, again;
    if (node_wire_decode_fwd_req(data, size, &r) == MOM_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (node_wire_encode_fwd_req(&r, &buf, &len) != MOM_OK ||
            node_wire_decode_fwd_req(buf, len, &again) != MOM_OK)
            abort();
        if (again.group_id != r.group_id || again.from != r.from ||
            again.read_index != r.read_index || again.command_len != r.command_len ||
            (r.command_len && memcmp(again.command, r.command, r.command_len) != 0))
            abort();
        free(again.command);
        free(buf);
    }
    free(r.command);
}

static void forward_response(const uint8_t *data, size_t size)
{
    struct node_wire_fwd_resp r, again;
    if (node_wire_decode_fwd_resp(data, size, &r) == MOM_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (node_wire_encode_fwd_resp(&r, &buf, &len) != MOM_OK ||
            node_wire_decode_fwd_resp(buf, len, &again) != MOM_OK)
            abort();
        if (again.group_id != r.group_id || again.from != r.from || again.status != r.status ||
            again.index != r.index || again.leader != r.leader || again.body_len != r.body_len ||
            (r.body_len && memcmp(again.body, r.body, r.body_len) != 0))
            abort();
        free(again.body);
        free(buf);
    }
    free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    raft_message(data, size);
    forward_request(data, size);
    forward_response(data, size);
    return 0;
}
