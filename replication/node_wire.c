/* The node's wire codec (node_wire.h): RaftMessage with its entry records
 * and snapshot chunks, ForwardRequest and ForwardResponse, over nanopb.
 * Pure functions over buffers: no I/O, no loop, no node state. Byte fields
 * are nanopb callbacks; a decoded one is copied into a malloc'd buffer the
 * caller's struct owns.
 * SPDX-License-Identifier: MIT */
#include "replication/node_wire.h"

#include "common/err.h"
#include "common/le.h"
#include "common/pbwire.h"
#include "proto/mom.pb.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

struct blob {
    const uint8_t *data;
    size_t len;
};

static bool encode_blob(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
    const struct blob *b = *arg;
    return pb_encode_tag_for_field(os, field) && pb_encode_string(os, b->data, b->len);
}

struct owned_blob {
    uint8_t *data;
    size_t len;
};

/* A repeated field keeps its last occurrence. */
static bool decode_blob(pb_istream_t *is, const pb_field_t *field, void **arg)
{
    (void)field;
    struct owned_blob *b = *arg;
    free(b->data);
    b->len = is->bytes_left;
    b->data = malloc(b->len ? b->len : 1);
    if (!b->data) {
        b->len = 0;
        return false;
    }
    return pb_read(is, b->data, b->len);
}

/* Encodes pb (fields) into a malloc'd buffer. */
static int encode_pb(const pb_msgdesc_t *fields, const void *pb, uint8_t **out, size_t *outlen)
{
    size_t size = 0;
    if (!pb_get_encoded_size(&size, fields, pb))
        return MOM_ERR_INVALID;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return MOM_ERR_NOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, size);
    if (!pb_encode(&os, fields, pb)) {
        free(buf);
        return MOM_ERR_INVALID;
    }
    *out = buf;
    *outlen = os.bytes_written;
    return MOM_OK;
}

/* The entries field: records of NODE_WIRE_ENTRY_HEADER bytes plus data. */
static int encode_entries(const struct raft_msg *m, uint8_t **out, size_t *outlen)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n_entries; i++) {
        size_t l = m->entries[i].len;
        if (l > UINT32_MAX || total > SIZE_MAX - NODE_WIRE_ENTRY_HEADER - l)
            return MOM_ERR_INVALID;
        total += NODE_WIRE_ENTRY_HEADER + l;
    }
    uint8_t *ents = malloc(total ? total : 1);
    if (!ents)
        return MOM_ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        le_put64(ents + off, e->term);
        le_put64(ents + off + 8, e->index);
        le_put32(ents + off + 16, (uint32_t)e->len);
        if (e->len)
            memcpy(ents + off + NODE_WIRE_ENTRY_HEADER, e->data, e->len);
        off += NODE_WIRE_ENTRY_HEADER + e->len;
    }
    *out = ents;
    *outlen = total;
    return MOM_OK;
}

int node_wire_encode_msg(const struct raft_msg *m, const struct node_wire_chunk *chunk,
                         uint8_t **out, size_t *outlen)
{
    mom_v1_RaftMessage pb = mom_v1_RaftMessage_init_zero;
    pb.type = (uint32_t)m->type;
    pb.group_id = m->group_id;
    pb.from = m->from;
    pb.to = m->to;
    pb.term = m->term;
    pb.incarnation = m->incarnation;
    pb.prev_log_index = m->prev_log_index;
    pb.prev_log_term = m->prev_log_term;
    pb.leader_commit = m->leader_commit;
    pb.seq = m->seq;
    pb.success = m->success;
    pb.match_index = m->match_index;
    pb.conflict_index = m->conflict_index;
    pb.conflict_term = m->conflict_term;
    pb.last_log_index = m->last_log_index;
    pb.abstaining = m->abstaining;
    pb.last_log_term = m->last_log_term;
    pb.pre_vote = m->pre_vote;
    pb.leadership_transfer = m->leadership_transfer;
    pb.vote_granted = m->vote_granted;
    pb.snapshot_index = m->snapshot_index;
    pb.snapshot_term = m->snapshot_term;
    pb.echo_incarnation = m->echo_incarnation;
    pb.cluster_id = m->cluster_id;
    pb.fresh = m->fresh;
    uint8_t *ents = NULL;
    struct blob eb = {0}, cb = {0};
    if (m->n_entries) {
        int rc = encode_entries(m, &ents, &eb.len);
        if (rc != MOM_OK)
            return rc;
        eb.data = ents;
        pb.entries.funcs.encode = encode_blob;
        pb.entries.arg = &eb;
    }
    if (chunk) {
        pb.snap_offset = chunk->offset;
        pb.snap_done = chunk->done;
        cb.data = chunk->data;
        cb.len = chunk->len;
        pb.snap_data.funcs.encode = encode_blob;
        pb.snap_data.arg = &cb;
    }
    int rc = encode_pb(mom_v1_RaftMessage_fields, &pb, out, outlen);
    free(ents);
    return rc;
}

void node_wire_msg_cleanup(struct node_wire_msg *d)
{
    free(d->raw);
    free(d->ents);
    free(d->snap);
    d->raw = d->snap = NULL;
    d->ents = NULL;
}

/* Splits the entries field into records pointing into it. */
static int decode_entries(struct node_wire_msg *d)
{
    size_t count = 0, off = 0;
    while (off < d->raw_len) {
        if (d->raw_len - off < NODE_WIRE_ENTRY_HEADER)
            return MOM_ERR_INVALID;
        size_t l = le_get32(d->raw + off + 16);
        if (l > d->raw_len - off - NODE_WIRE_ENTRY_HEADER)
            return MOM_ERR_INVALID;
        off += NODE_WIRE_ENTRY_HEADER + l;
        count++;
    }
    d->ents = calloc(count, sizeof *d->ents);
    if (!d->ents)
        return MOM_ERR_NOMEM;
    off = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = d->raw + off;
        size_t l = le_get32(p + 16);
        d->ents[i].term = le_get64(p);
        d->ents[i].index = le_get64(p + 8);
        d->ents[i].data = l ? p + NODE_WIRE_ENTRY_HEADER : NULL;
        d->ents[i].len = l;
        off += NODE_WIRE_ENTRY_HEADER + l;
    }
    d->m.entries = d->ents;
    d->m.n_entries = count;
    return MOM_OK;
}

int node_wire_decode_msg(const uint8_t *buf, size_t len, struct node_wire_msg *d)
{
    memset(d, 0, sizeof *d);
    struct owned_blob raw = {0}, snap = {0};
    mom_v1_RaftMessage pb = mom_v1_RaftMessage_init_zero;
    pb.entries.funcs.decode = decode_blob;
    pb.entries.arg = &raw;
    pb.snap_data.funcs.decode = decode_blob;
    pb.snap_data.arg = &snap;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    bool ok = pb_decode(&is, mom_v1_RaftMessage_fields, &pb);
    d->raw = raw.data;
    d->raw_len = raw.len;
    d->snap = snap.data;
    d->snap_len = snap.len;
    if (!ok)
        return MOM_ERR_INVALID;
    d->snap_off = pb.snap_offset;
    d->snap_done = pb.snap_done;
    struct raft_msg *m = &d->m;
    m->type = (enum raft_msg_type)pb.type;
    m->group_id = pb.group_id;
    m->from = pb.from;
    m->to = pb.to;
    m->term = pb.term;
    m->incarnation = pb.incarnation;
    m->prev_log_index = pb.prev_log_index;
    m->prev_log_term = pb.prev_log_term;
    m->leader_commit = pb.leader_commit;
    m->seq = pb.seq;
    m->success = pb.success;
    m->match_index = pb.match_index;
    m->conflict_index = pb.conflict_index;
    m->conflict_term = pb.conflict_term;
    m->last_log_index = pb.last_log_index;
    m->abstaining = pb.abstaining;
    m->last_log_term = pb.last_log_term;
    m->pre_vote = pb.pre_vote;
    m->leadership_transfer = pb.leadership_transfer;
    m->vote_granted = pb.vote_granted;
    m->snapshot_index = pb.snapshot_index;
    m->snapshot_term = pb.snapshot_term;
    m->echo_incarnation = pb.echo_incarnation;
    m->cluster_id = pb.cluster_id;
    m->fresh = pb.fresh;
    return d->raw && d->raw_len ? decode_entries(d) : MOM_OK;
}

/* ---- Forward messages, laid out by hand ----
 * The bytes pb_encode writes (fields in number order, zero scalars left
 * out, a bytes field written whenever it is set, even empty) without
 * encode_pb's two walks over the descriptors: ~4k instructions a forwarded
 * write on each side. test_node_wire holds them to pb_encode's bytes. */

/* Fields 1..15 only: one tag byte. */
static size_t vfield_len(uint64_t v)
{
    return v ? 1 + pbwire_varint_size(v) : 0;
}

static uint8_t *put_vfield(uint8_t *p, uint32_t field, uint64_t v)
{
    if (!v)
        return p;
    *p++ = pbwire_tag(field, PBWIRE_VARINT);
    return pbwire_put_varint(p, v);
}

static size_t bfield_len(const uint8_t *d, size_t n)
{
    return d ? 1 + pbwire_varint_size(n) + n : 0;
}

static uint8_t *put_bfield(uint8_t *p, uint32_t field, const uint8_t *d, size_t n)
{
    if (!d)
        return p;
    *p++ = pbwire_tag(field, PBWIRE_LEN);
    p = pbwire_put_varint(p, n);
    if (n)
        memcpy(p, d, n);
    return p + n;
}

static int hand_out(uint8_t *buf, const uint8_t *end, size_t size, uint8_t **out, size_t *outlen)
{
    if ((size_t)(end - buf) != size) { /* cannot happen: the sizes above are the writes */
        free(buf);
        return MOM_ERR_INVALID;
    }
    *out = buf;
    *outlen = size;
    return MOM_OK;
}

int node_wire_encode_fwd_req(const struct node_wire_fwd_req *r, uint8_t **out, size_t *outlen)
{
    size_t size = vfield_len(r->group_id) + vfield_len(r->from) +
                  bfield_len(r->command, r->command_len) + vfield_len(r->read_index);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return MOM_ERR_NOMEM;
    uint8_t *p = put_vfield(buf, mom_v1_ForwardRequest_group_id_tag, r->group_id);
    p = put_vfield(p, mom_v1_ForwardRequest_from_tag, r->from);
    p = put_bfield(p, mom_v1_ForwardRequest_command_tag, r->command, r->command_len);
    p = put_vfield(p, mom_v1_ForwardRequest_read_index_tag, r->read_index);
    return hand_out(buf, p, size, out, outlen);
}

int node_wire_encode_fwd_resp(const struct node_wire_fwd_resp *r, uint8_t **out, size_t *outlen)
{
    size_t size = vfield_len(r->group_id) + vfield_len(r->from) + vfield_len(r->status) +
                  bfield_len(r->body, r->body_len) + vfield_len(r->index) + vfield_len(r->leader);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return MOM_ERR_NOMEM;
    uint8_t *p = put_vfield(buf, mom_v1_ForwardResponse_group_id_tag, r->group_id);
    p = put_vfield(p, mom_v1_ForwardResponse_from_tag, r->from);
    p = put_vfield(p, mom_v1_ForwardResponse_status_tag, r->status);
    p = put_bfield(p, mom_v1_ForwardResponse_body_tag, r->body, r->body_len);
    p = put_vfield(p, mom_v1_ForwardResponse_index_tag, r->index);
    p = put_vfield(p, mom_v1_ForwardResponse_leader_tag, r->leader);
    return hand_out(buf, p, size, out, outlen);
}

/* ---- Forward messages, read in one pass ----
 * The layout above (fields in number order, each at most once, varints in
 * their shortest form and within the field's width) is read here without
 * pb_decode's walk over the descriptors, ~3k instructions a forwarded
 * write; anything else goes to pb_decode, which decides, and
 * test_node_wire holds the two to the same result. */

static bool rd_u32(struct pbwire_reader *r, uint32_t field, uint32_t *out)
{
    uint64_t v;
    if (!pbwire_read_tag(r, pbwire_tag(field, PBWIRE_VARINT)))
        return true;
    if (!pbwire_read_varint(r, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* A bytes field copied into a malloc'd buffer (one byte when empty), as
 * decode_blob does. */
static bool rd_copy(struct pbwire_reader *r, uint32_t field, uint8_t **out, size_t *len)
{
    const uint8_t *p;
    size_t n;
    if (!pbwire_read_tag(r, pbwire_tag(field, PBWIRE_LEN)))
        return true;
    if (!pbwire_read_bytes(r, &p, &n))
        return false;
    *out = malloc(n ? n : 1);
    if (!*out)
        return false; /* pb_decode reports it */
    if (n)
        memcpy(*out, p, n);
    *len = n;
    return true;
}

static bool fwd_req_fast(const uint8_t *buf, size_t len, struct node_wire_fwd_req *r)
{
    struct pbwire_reader d = {buf, buf + len};
    uint32_t ri = 0;
    bool ok = rd_u32(&d, mom_v1_ForwardRequest_group_id_tag, &r->group_id) &&
              rd_u32(&d, mom_v1_ForwardRequest_from_tag, &r->from) &&
              rd_copy(&d, mom_v1_ForwardRequest_command_tag, &r->command, &r->command_len) &&
              rd_u32(&d, mom_v1_ForwardRequest_read_index_tag, &ri) && ri <= 1 && d.p == d.end;
    r->read_index = ri != 0;
    return ok;
}

static bool fwd_resp_fast(const uint8_t *buf, size_t len, struct node_wire_fwd_resp *r)
{
    struct pbwire_reader d = {buf, buf + len};
    bool ok = rd_u32(&d, mom_v1_ForwardResponse_group_id_tag, &r->group_id) &&
              rd_u32(&d, mom_v1_ForwardResponse_from_tag, &r->from) &&
              rd_u32(&d, mom_v1_ForwardResponse_status_tag, &r->status) &&
              rd_copy(&d, mom_v1_ForwardResponse_body_tag, &r->body, &r->body_len);
    if (ok && pbwire_read_tag(&d, pbwire_tag(mom_v1_ForwardResponse_index_tag, PBWIRE_VARINT)))
        ok = pbwire_read_varint(&d, &r->index);
    return ok && rd_u32(&d, mom_v1_ForwardResponse_leader_tag, &r->leader) && d.p == d.end;
}

int node_wire_decode_fwd_req(const uint8_t *buf, size_t len, struct node_wire_fwd_req *r)
{
    memset(r, 0, sizeof *r);
    if (fwd_req_fast(buf, len, r))
        return MOM_OK;
    free(r->command);
    memset(r, 0, sizeof *r);
    struct owned_blob cmd = {0};
    mom_v1_ForwardRequest pb = mom_v1_ForwardRequest_init_zero;
    pb.command.funcs.decode = decode_blob;
    pb.command.arg = &cmd;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    bool ok = pb_decode(&is, mom_v1_ForwardRequest_fields, &pb);
    r->command = cmd.data;
    r->command_len = cmd.len;
    if (!ok)
        return MOM_ERR_INVALID;
    r->group_id = pb.group_id;
    r->from = pb.from;
    r->read_index = pb.read_index;
    return MOM_OK;
}

int node_wire_decode_fwd_resp(const uint8_t *buf, size_t len, struct node_wire_fwd_resp *r)
{
    memset(r, 0, sizeof *r);
    if (fwd_resp_fast(buf, len, r))
        return MOM_OK;
    free(r->body);
    memset(r, 0, sizeof *r);
    struct owned_blob body = {0};
    mom_v1_ForwardResponse pb = mom_v1_ForwardResponse_init_zero;
    pb.body.funcs.decode = decode_blob;
    pb.body.arg = &body;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    bool ok = pb_decode(&is, mom_v1_ForwardResponse_fields, &pb);
    r->body = body.data;
    r->body_len = body.len;
    if (!ok)
        return MOM_ERR_INVALID;
    r->group_id = pb.group_id;
    r->from = pb.from;
    r->status = pb.status;
    r->index = pb.index;
    r->leader = pb.leader;
    return MOM_OK;
}
