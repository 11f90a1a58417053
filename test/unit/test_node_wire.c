/* Unit tests for replication/node_wire: every field of a RaftMessage, its
 * entry records (empty, small and over 64 KiB) and snapshot chunks survive a
 * round trip; ForwardRequest and ForwardResponse likewise; truncated and
 * garbage inputs, and entry records that do not add up, are refused; the
 * bytes of a known message are pinned so the wire format cannot drift; the
 * hand-laid Forward messages are the bytes nanopb's pb_encode writes, and
 * their one-pass readers agree with pb_decode.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "proto/mom.pb.h"
#include "replication/node_wire.h"

#include <pb_decode.h>
#include <pb_encode.h>

/* A message with every field set to a distinct value. */
static struct raft_msg full_msg(void)
{
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND_RESP,
        .group_id = 7,
        .from = 2,
        .to = 3,
        .term = 0x0102030405060708ull,
        .incarnation = 1765000000000999ull,
        .cookie = 99, /* not sent */
        .prev_log_index = 11,
        .prev_log_term = 12,
        .leader_commit = 13,
        .seq = 14,
        .success = true,
        .match_index = 15,
        .conflict_index = 16,
        .conflict_term = 17,
        .last_log_index = 18,
        .abstaining = true,
        .last_log_term = 19,
        .pre_vote = true,
        .leadership_transfer = true,
        .vote_granted = true,
        .snapshot_index = 20,
        .snapshot_term = 21,
        .echo_incarnation = UINT64_MAX,
        .cluster_id = 0xFEDCBA9876543210ull,
        .fresh = true,
    };
    return m;
}

static void assert_header_equal(const struct raft_msg *a, const struct raft_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->group_id, b->group_id);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->incarnation, b->incarnation);
    assert_int_equal(a->prev_log_index, b->prev_log_index);
    assert_int_equal(a->prev_log_term, b->prev_log_term);
    assert_int_equal(a->leader_commit, b->leader_commit);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->success, b->success);
    assert_int_equal(a->match_index, b->match_index);
    assert_int_equal(a->conflict_index, b->conflict_index);
    assert_int_equal(a->conflict_term, b->conflict_term);
    assert_int_equal(a->last_log_index, b->last_log_index);
    assert_int_equal(a->abstaining, b->abstaining);
    assert_int_equal(a->last_log_term, b->last_log_term);
    assert_int_equal(a->pre_vote, b->pre_vote);
    assert_int_equal(a->leadership_transfer, b->leadership_transfer);
    assert_int_equal(a->vote_granted, b->vote_granted);
    assert_int_equal(a->snapshot_index, b->snapshot_index);
    assert_int_equal(a->snapshot_term, b->snapshot_term);
    assert_int_equal(a->echo_incarnation, b->echo_incarnation);
    assert_int_equal(a->cluster_id, b->cluster_id);
    assert_int_equal(a->fresh, b->fresh);
}

static void test_every_field(void **state)
{
    (void)state;
    struct raft_msg m = full_msg();
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_msg(&m, NULL, &buf, &len), MOM_OK);
    struct node_wire_msg d;
    assert_int_equal(node_wire_decode_msg(buf, len, &d), MOM_OK);
    assert_header_equal(&m, &d.m);
    assert_int_equal(d.m.cookie, 0);
    assert_int_equal(d.m.n_entries, 0);
    assert_null(d.m.entries);
    assert_null(d.snap);
    assert_int_equal(d.snap_off, 0);
    assert_false(d.snap_done);
    node_wire_msg_cleanup(&d);
    free(buf);

    /* All zero: nothing on the wire, and it still decodes. */
    struct raft_msg z = {0};
    assert_int_equal(node_wire_encode_msg(&z, NULL, &buf, &len), MOM_OK);
    assert_int_equal(len, 0);
    assert_int_equal(node_wire_decode_msg(buf, len, &d), MOM_OK);
    assert_header_equal(&z, &d.m);
    node_wire_msg_cleanup(&d);
    free(buf);
}

/* The bytes of a small message, pinned: proto3 field tags in order, zero
 * fields omitted, entries as LE records. */
static void test_golden_bytes(void **state)
{
    (void)state;
    const uint8_t data[] = {0xAA, 0xBB};
    struct raft_entry e = {.term = 2, .index = 5, .data = data, .len = 2};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .group_id = 1,
                         .from = 1,
                         .to = 2,
                         .term = 2,
                         .entries = &e,
                         .n_entries = 1,
                         .seq = 3};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_msg(&m, NULL, &buf, &len), MOM_OK);
    const uint8_t want[] = {
        0x08, 0x01, /* type */
        0x10, 0x01, /* group_id */
        0x18, 0x01, /* from */
        0x20, 0x02, /* to */
        0x28, 0x02, /* term */
        0x52, 22,   /* entries, 22 bytes */
        2,    0,    0, 0, 0, 0, 0, 0, 5,    0,    0,    0,
        0,    0,    0, 0, 2, 0, 0, 0, 0xAA, 0xBB, 0x58, 0x03, /* seq */
    };
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
}

static void test_entries_round_trip(void **state)
{
    (void)state;
    size_t big = 70000 + 3; /* over 64 KiB */
    uint8_t *body = malloc(big);
    assert_non_null(body);
    for (size_t i = 0; i < big; i++)
        body[i] = (uint8_t)(i * 7 + 1);
    const uint8_t small[] = "x";
    struct raft_entry ents[4] = {
        {.term = 3, .index = 100, .data = NULL, .len = 0}, /* a no-op */
        {.term = 3, .index = 101, .data = small, .len = 1},
        {.term = 4, .index = 102, .data = body, .len = big},
        {.term = UINT64_MAX, .index = UINT64_MAX, .data = small, .len = 2},
    };
    struct raft_msg m = full_msg();
    m.type = RAFT_MSG_APPEND;
    m.entries = ents;
    m.n_entries = 4;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_msg(&m, NULL, &buf, &len), MOM_OK);
    assert_true(len > big);
    struct node_wire_msg d;
    assert_int_equal(node_wire_decode_msg(buf, len, &d), MOM_OK);
    assert_header_equal(&m, &d.m);
    assert_int_equal(d.m.n_entries, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(d.m.entries[i].term, ents[i].term);
        assert_int_equal(d.m.entries[i].index, ents[i].index);
        assert_int_equal(d.m.entries[i].len, ents[i].len);
        if (ents[i].len)
            assert_memory_equal(d.m.entries[i].data, ents[i].data, ents[i].len);
        else
            assert_null(d.m.entries[i].data);
    }
    node_wire_msg_cleanup(&d);
    free(buf);
    free(body);
}

static void test_snapshot_chunk(void **state)
{
    (void)state;
    size_t n = 100000;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i >> 3);
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
                         .group_id = 1,
                         .from = 1,
                         .to = 3,
                         .term = 9,
                         .incarnation = 5,
                         .snapshot_index = 4000,
                         .snapshot_term = 8};
    struct node_wire_chunk c = {.offset = 1u << 20, .data = data, .len = n, .done = true};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_msg(&m, &c, &buf, &len), MOM_OK);
    struct node_wire_msg d;
    assert_int_equal(node_wire_decode_msg(buf, len, &d), MOM_OK);
    assert_header_equal(&m, &d.m);
    assert_int_equal(d.snap_off, 1u << 20);
    assert_true(d.snap_done);
    assert_int_equal(d.snap_len, n);
    assert_memory_equal(d.snap, data, n);
    node_wire_msg_cleanup(&d);
    free(buf);

    /* An empty chunk (an empty snapshot file) still says where it is. */
    c = (struct node_wire_chunk){.offset = 0, .data = data, .len = 0, .done = true};
    assert_int_equal(node_wire_encode_msg(&m, &c, &buf, &len), MOM_OK);
    assert_int_equal(node_wire_decode_msg(buf, len, &d), MOM_OK);
    assert_true(d.snap_done);
    assert_int_equal(d.snap_len, 0);
    node_wire_msg_cleanup(&d);
    free(buf);
    free(data);
}

/* Every strict prefix of a valid message that cuts a field is refused;
 * none crashes or leaks. */
static void test_truncated(void **state)
{
    (void)state;
    uint8_t body[300];
    memset(body, 0x5A, sizeof body);
    struct raft_entry ents[2] = {{.term = 1, .index = 1, .data = body, .len = sizeof body},
                                 {.term = 1, .index = 2, .data = body, .len = 10}};
    struct raft_msg m = full_msg();
    m.entries = ents;
    m.n_entries = 2;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_msg(&m, NULL, &buf, &len), MOM_OK);
    size_t refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        struct node_wire_msg d;
        int rc = node_wire_decode_msg(buf, cut, &d);
        if (rc != MOM_OK)
            refused++;
        else /* a cut between fields is a shorter valid message */
            assert_true(d.m.n_entries == 0 || d.m.n_entries == 2);
        node_wire_msg_cleanup(&d);
    }
    /* The entries field is 330+ bytes: every cut inside it is refused. */
    assert_true(refused > sizeof body);
    free(buf);
}

static void test_garbage(void **state)
{
    (void)state;
    struct node_wire_msg d;
    /* an unterminated varint */
    const uint8_t a[] = {0x08, 0xFF, 0xFF};
    assert_int_equal(node_wire_decode_msg(a, sizeof a, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* a length beyond the input */
    const uint8_t b[] = {0x52, 0x7F, 0x00};
    assert_int_equal(node_wire_decode_msg(b, sizeof b, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* wire type 7 does not exist */
    const uint8_t c[] = {0x0F, 0x00};
    assert_int_equal(node_wire_decode_msg(c, sizeof c, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* entries shorter than one record header */
    const uint8_t e[] = {0x52, 0x05, 1, 2, 3, 4, 5};
    assert_int_equal(node_wire_decode_msg(e, sizeof e, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* a record whose length runs past the field */
    uint8_t f[2 + 20 + 3] = {0x52, 23};
    f[2 + 16] = 4; /* len 4, 3 bytes follow */
    assert_int_equal(node_wire_decode_msg(f, sizeof f, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* a record length near 4 GiB */
    memset(f + 2 + 16, 0xFF, 4);
    assert_int_equal(node_wire_decode_msg(f, sizeof f, &d), MOM_ERR_INVALID);
    node_wire_msg_cleanup(&d);
    /* the same record, whole: accepted */
    memset(f + 2 + 16, 0, 4);
    f[2 + 16] = 3;
    assert_int_equal(node_wire_decode_msg(f, sizeof f, &d), MOM_OK);
    assert_int_equal(d.m.n_entries, 1);
    assert_int_equal(d.m.entries[0].len, 3);
    node_wire_msg_cleanup(&d);
    /* Forward messages refuse garbage too */
    struct node_wire_fwd_req rq;
    assert_int_equal(node_wire_decode_fwd_req(a, sizeof a, &rq), MOM_ERR_INVALID);
    free(rq.command);
    struct node_wire_fwd_resp rs;
    assert_int_equal(node_wire_decode_fwd_resp(b, sizeof b, &rs), MOM_ERR_INVALID);
    free(rs.body);
}

static void test_forward_request(void **state)
{
    (void)state;
    size_t n = 65536 + 100;
    uint8_t *cmd = malloc(n);
    assert_non_null(cmd);
    for (size_t i = 0; i < n; i++)
        cmd[i] = (uint8_t)(i ^ (i >> 8));
    struct node_wire_fwd_req in = {.group_id = 3, .from = 2, .command = cmd, .command_len = n};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_fwd_req(&in, &buf, &len), MOM_OK);
    struct node_wire_fwd_req out;
    assert_int_equal(node_wire_decode_fwd_req(buf, len, &out), MOM_OK);
    assert_int_equal(out.group_id, 3);
    assert_int_equal(out.from, 2);
    assert_false(out.read_index);
    assert_int_equal(out.command_len, n);
    assert_memory_equal(out.command, cmd, n);
    free(out.command);
    /* every cut inside the command is refused */
    for (size_t cut = len - n + 1; cut < len; cut += 997) {
        assert_int_equal(node_wire_decode_fwd_req(buf, cut, &out), MOM_ERR_INVALID);
        free(out.command);
    }
    free(buf);

    struct node_wire_fwd_req ri = {.group_id = 1, .from = 3, .read_index = true};
    assert_int_equal(node_wire_encode_fwd_req(&ri, &buf, &len), MOM_OK);
    assert_int_equal(node_wire_decode_fwd_req(buf, len, &out), MOM_OK);
    assert_true(out.read_index);
    assert_int_equal(out.from, 3);
    assert_null(out.command);
    free(out.command);
    free(buf);
    free(cmd);
}

static void test_forward_response(void **state)
{
    (void)state;
    const char *json = "{\"id\":\"0000000000000400\"}";
    struct node_wire_fwd_resp in = {.group_id = 1,
                                    .from = 1,
                                    .status = 201,
                                    .body = (uint8_t *)json,
                                    .body_len = strlen(json),
                                    .index = 1ull << 40,
                                    .leader = 1};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(node_wire_encode_fwd_resp(&in, &buf, &len), MOM_OK);
    struct node_wire_fwd_resp out;
    assert_int_equal(node_wire_decode_fwd_resp(buf, len, &out), MOM_OK);
    assert_int_equal(out.group_id, 1);
    assert_int_equal(out.from, 1);
    assert_int_equal(out.status, 201);
    assert_int_equal(out.index, 1ull << 40);
    assert_int_equal(out.leader, 1);
    assert_int_equal(out.body_len, strlen(json));
    assert_memory_equal(out.body, json, out.body_len);
    free(out.body);
    free(buf);

    /* An empty body that is present is sent (a 204's answer) and comes back
     * as a present empty body. */
    uint8_t none = 0;
    in.status = 204;
    in.body = &none;
    in.body_len = 0;
    assert_int_equal(node_wire_encode_fwd_resp(&in, &buf, &len), MOM_OK);
    assert_int_equal(node_wire_decode_fwd_resp(buf, len, &out), MOM_OK);
    assert_int_equal(out.status, 204);
    assert_non_null(out.body);
    assert_int_equal(out.body_len, 0);
    free(out.body);
    free(buf);
}

/* pb_encode's bytes of a message whose one bytes field is a callback. */
struct cb_blob {
    const uint8_t *d;
    size_t n;
};

static bool enc_blob(pb_ostream_t *os, const pb_field_t *f, void *const *arg)
{
    const struct cb_blob *b = *arg;
    return pb_encode_tag_for_field(os, f) && pb_encode_string(os, b->d, b->n);
}

static void assert_pb_bytes(const pb_msgdesc_t *fields, const void *pb, const uint8_t *buf,
                            size_t len)
{
    uint8_t want[512];
    pb_ostream_t os = pb_ostream_from_buffer(want, sizeof want);
    assert_true(pb_encode(&os, fields, pb));
    assert_int_equal(len, os.bytes_written);
    assert_memory_equal(buf, want, len);
}

static void test_forward_bytes_match_pb_encode(void **state)
{
    (void)state;
    static const uint64_t nums[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX};
    static uint8_t data[300];
    memset(data, 'd', sizeof data);
    static const size_t lens[] = {0, 1, 127, 128, 300};
    unsigned checked = 0;
    for (size_t a = 0; a < 7; a++) {
        for (size_t l = 0; l < 6; l++) { /* l == 5: no bytes field */
            uint32_t x = (uint32_t)nums[a], y = (uint32_t)nums[(a + 3) % 7];
            const uint8_t *d = l < 5 ? data : NULL;
            size_t n = l < 5 ? lens[l] : 0;
            struct cb_blob b = {d, n};
            uint8_t *buf;
            size_t len;

            struct node_wire_fwd_req rq = {.group_id = x,
                                           .from = y,
                                           .command = (uint8_t *)d,
                                           .command_len = n,
                                           .read_index = (a & 1) != 0};
            assert_int_equal(node_wire_encode_fwd_req(&rq, &buf, &len), MOM_OK);
            mom_v1_ForwardRequest pq = mom_v1_ForwardRequest_init_zero;
            pq.group_id = x;
            pq.from = y;
            pq.read_index = rq.read_index;
            if (d) {
                pq.command.funcs.encode = enc_blob;
                pq.command.arg = &b;
            }
            assert_pb_bytes(mom_v1_ForwardRequest_fields, &pq, buf, len);
            free(buf);

            struct node_wire_fwd_resp rs = {.group_id = y,
                                            .from = x,
                                            .status = (uint32_t)nums[(a + 1) % 7],
                                            .body = (uint8_t *)d,
                                            .body_len = n,
                                            .index = a == 6 ? UINT64_MAX : nums[(a + 2) % 7],
                                            .leader = x};
            assert_int_equal(node_wire_encode_fwd_resp(&rs, &buf, &len), MOM_OK);
            mom_v1_ForwardResponse ps = mom_v1_ForwardResponse_init_zero;
            ps.group_id = rs.group_id;
            ps.from = rs.from;
            ps.status = rs.status;
            ps.index = rs.index;
            ps.leader = rs.leader;
            if (d) {
                ps.body.funcs.encode = enc_blob;
                ps.body.arg = &b;
            }
            assert_pb_bytes(mom_v1_ForwardResponse_fields, &ps, buf, len);
            free(buf);
            checked++;
        }
    }
    assert_int_equal(checked, 42);
}

/* pb_decode's reading of bytes, for comparison with the one-pass reader. */
struct cb_copy {
    uint8_t data[512];
    size_t len;
    bool seen;
};

static bool dec_copy(pb_istream_t *is, const pb_field_t *f, void **arg)
{
    (void)f;
    struct cb_copy *c = *arg;
    if (is->bytes_left > sizeof c->data)
        return false;
    c->len = is->bytes_left;
    c->seen = true;
    return pb_read(is, c->data, c->len);
}

static void assert_same_fwd_decode(const uint8_t *buf, size_t len)
{
    struct cb_copy c = {0};
    mom_v1_ForwardRequest pq = mom_v1_ForwardRequest_init_zero;
    pq.command.funcs.decode = dec_copy;
    pq.command.arg = &c;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    bool ok = pb_decode(&is, mom_v1_ForwardRequest_fields, &pq);
    struct node_wire_fwd_req rq;
    int rc = node_wire_decode_fwd_req(buf, len, &rq);
    assert_int_equal(rc, ok ? MOM_OK : MOM_ERR_INVALID);
    if (ok) {
        assert_int_equal(rq.group_id, pq.group_id);
        assert_int_equal(rq.from, pq.from);
        assert_int_equal(rq.read_index, pq.read_index);
        assert_int_equal(rq.command != NULL, c.seen);
        assert_int_equal(rq.command_len, c.len);
        if (c.len)
            assert_memory_equal(rq.command, c.data, c.len);
    }
    free(rq.command);

    struct cb_copy b = {0};
    mom_v1_ForwardResponse ps = mom_v1_ForwardResponse_init_zero;
    ps.body.funcs.decode = dec_copy;
    ps.body.arg = &b;
    is = pb_istream_from_buffer(buf, len);
    ok = pb_decode(&is, mom_v1_ForwardResponse_fields, &ps);
    struct node_wire_fwd_resp rs;
    rc = node_wire_decode_fwd_resp(buf, len, &rs);
    assert_int_equal(rc, ok ? MOM_OK : MOM_ERR_INVALID);
    if (ok) {
        assert_int_equal(rs.group_id, ps.group_id);
        assert_int_equal(rs.from, ps.from);
        assert_int_equal(rs.status, ps.status);
        assert_int_equal(rs.index, ps.index);
        assert_int_equal(rs.leader, ps.leader);
        assert_int_equal(rs.body != NULL, b.seen);
        assert_int_equal(rs.body_len, b.len);
        if (b.len)
            assert_memory_equal(rs.body, b.data, b.len);
    }
    free(rs.body);
}

/* The one-pass Forward readers agree with pb_decode on what the encoders
 * write, on every prefix of it and on every byte changed to telling values
 * (longer varints, other tags, zeros written out, lengths off by one). */
static void test_forward_decode_matches_pb_decode(void **state)
{
    (void)state;
    static const uint64_t nums[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX};
    static uint8_t data[300];
    memset(data, 'd', sizeof data);
    static const size_t lens[] = {0, 1, 127, 128, 300};
    static const uint8_t vals[] = {0x00, 0x01, 0x08, 0x10, 0x18, 0x1a, 0x20,
                                   0x22, 0x28, 0x30, 0x7f, 0x80, 0x81, 0xff};
    for (size_t a = 0; a < 7; a++) {
        for (size_t l = 0; l < 6; l++) {
            const uint8_t *d = l < 5 ? data : NULL;
            size_t n = l < 5 ? lens[l] : 0;
            struct node_wire_fwd_req rq = {.group_id = (uint32_t)nums[a],
                                           .from = (uint32_t)nums[(a + 3) % 7],
                                           .command = (uint8_t *)d,
                                           .command_len = n,
                                           .read_index = (a & 1) != 0};
            struct node_wire_fwd_resp rs = {.group_id = (uint32_t)nums[(a + 4) % 7],
                                            .from = (uint32_t)nums[a],
                                            .status = (uint32_t)nums[(a + 1) % 7],
                                            .body = (uint8_t *)d,
                                            .body_len = n,
                                            .index = a == 6 ? UINT64_MAX : nums[(a + 2) % 7],
                                            .leader = (uint32_t)nums[(a + 5) % 7]};
            for (int which = 0; which < 2; which++) {
                uint8_t *buf;
                size_t len;
                if (which == 0)
                    assert_int_equal(node_wire_encode_fwd_req(&rq, &buf, &len), MOM_OK);
                else
                    assert_int_equal(node_wire_encode_fwd_resp(&rs, &buf, &len), MOM_OK);
                for (size_t cut = 0; cut <= len; cut++)
                    assert_same_fwd_decode(buf, cut);
                uint8_t *m = malloc(len ? len : 1);
                assert_non_null(m);
                for (size_t i = 0; i < len && i < 24; i++) {
                    for (size_t v = 0; v < sizeof vals; v++) {
                        memcpy(m, buf, len);
                        m[i] = vals[v];
                        assert_same_fwd_decode(m, len);
                    }
                }
                free(m);
                free(buf);
            }
        }
    }
    /* by hand: a field twice, out of order, a zero and a bool of 2 written */
    static const uint8_t odd[][8] = {
        {0x08, 0x01, 0x08, 0x02}, {0x10, 0x01, 0x08, 0x02},      {0x08, 0x00}, {0x20, 0x02},
        {0x1a, 0x00, 0x1a, 0x00}, {0x22, 0x01, 0x41, 0x22, 0x00}};
    static const size_t odd_len[] = {4, 4, 2, 2, 4, 5};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_same_fwd_decode(odd[i], odd_len[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_entries_round_trip),
        cmocka_unit_test(test_snapshot_chunk),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_forward_request),
        cmocka_unit_test(test_forward_response),
        cmocka_unit_test(test_forward_bytes_match_pb_encode),
        cmocka_unit_test(test_forward_decode_matches_pb_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
