/* The node's peer messages as bytes: RaftMessage (every field of struct
 * raft_msg, plus the InstallSnapshot chunk fields) and ForwardRequest /
 * ForwardResponse, encoded and decoded by pure functions over buffers (no
 * I/O, no loop). The schema is mom.proto; the `entries` field of a
 * RaftMessage is a sequence of records, each
 *
 *     term u64 LE | index u64 LE | len u32 LE | len bytes of data
 *
 * Encoders return a malloc'd buffer the caller owns. Decoders copy what they
 * keep; a decoded message owns its buffers until its _cleanup.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_NODE_WIRE_H
#define MOM_REPLICATION_NODE_WIRE_H

#include "replication/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_WIRE_ENTRY_HEADER 20 /* term, index, len */

/* One InstallSnapshot chunk carried by a RaftMessage of type SNAPSHOT. */
struct node_wire_chunk {
    uint64_t offset;
    const uint8_t *data;
    size_t len;
    bool done;
};

/* A decoded RaftMessage. m.entries point into `raw`; m.cookie is 0. */
struct node_wire_msg {
    struct raft_msg m;
    uint8_t *raw; /* the entries field, owned */
    size_t raw_len;
    struct raft_entry *ents; /* owned; m.entries */
    uint8_t *snap;           /* a snapshot chunk's data, owned (NULL when none) */
    size_t snap_len;
    uint64_t snap_off;
    bool snap_done;
};

/* Encodes m (its entries included) into *out (malloc'd, *outlen bytes);
 * with chunk non-NULL the snapshot chunk fields go along. m->cookie is not
 * sent. Returns MOM_OK, MOM_ERR_NOMEM or MOM_ERR_INVALID (an entry over
 * 4 GiB). */
int node_wire_encode_msg(const struct raft_msg *m, const struct node_wire_chunk *chunk,
                         uint8_t **out, size_t *outlen);
/* Decodes a RaftMessage. Returns MOM_OK, MOM_ERR_INVALID (not a
 * RaftMessage, or an entries field that does not split into whole records)
 * or MOM_ERR_NOMEM. Call node_wire_msg_cleanup on every path. */
int node_wire_decode_msg(const uint8_t *buf, size_t len, struct node_wire_msg *d);
void node_wire_msg_cleanup(struct node_wire_msg *d);

/* A ForwardRequest: a follower's Command for the leader to propose, or a
 * read_index question (no command). */
struct node_wire_fwd_req {
    uint32_t group_id;
    uint32_t from;
    bool read_index;
    uint8_t *command; /* owned when decoded; NULL when absent */
    size_t command_len;
};

/* The leader's answer: the HTTP status and body its apply produced, or
 * (read_index) its commit index. */
struct node_wire_fwd_resp {
    uint32_t group_id;
    uint32_t from;
    uint32_t status;
    uint8_t *body; /* owned when decoded; NULL when absent */
    size_t body_len;
    uint64_t index;
    uint32_t leader;
};

/* Encoders: MOM_OK, MOM_ERR_NOMEM or MOM_ERR_INVALID; *out is malloc'd. */
int node_wire_encode_fwd_req(const struct node_wire_fwd_req *r, uint8_t **out, size_t *outlen);
int node_wire_encode_fwd_resp(const struct node_wire_fwd_resp *r, uint8_t **out, size_t *outlen);
/* Decoders: MOM_OK, MOM_ERR_INVALID or MOM_ERR_NOMEM; free(r->command) /
 * free(r->body) on every path. */
int node_wire_decode_fwd_req(const uint8_t *buf, size_t len, struct node_wire_fwd_req *r);
int node_wire_decode_fwd_resp(const uint8_t *buf, size_t len, struct node_wire_fwd_resp *r);

#endif
