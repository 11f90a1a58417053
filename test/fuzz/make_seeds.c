/* Writes the seed corpus of the fuzz harnesses into test/fuzz/corpus/: real
 * traffic captured from an h2conn client/server pair (gRPC Ping calls with
 * HPACK-compressed headers, trailers, flow control) plus hand-made frames,
 * encoded Commands of the kinds the log holds most (and a SetAcl), the node's RaftMessage
 * and Forward messages, WAL segment images (clean, torn, damaged) and
 * store snapshots.
 * Not part of any build; run from the repository root after `make`:
 *   cc -std=c11 -D_GNU_SOURCE -I. -Ibuild test/fuzz/make_seeds.c build/libmom.a \
 *      -lnghttp2 -l:libprotobuf-nanopb.a -lcjson -lcrypto -o /tmp/make_seeds && /tmp/make_seeds
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"
#include "broker/reply.h"
#include "broker/store.h"
#include "common/le.h"
#include "replication/grpcmsg.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"
#include "replication/node_wire.h"
#include "replication/wal.h"

#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct buf {
    uint8_t p[1 << 20];
    size_t len;
};

static struct buf cl_out, sv_out;

static int to_cl(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    memcpy(cl_out.p + cl_out.len, d, n);
    cl_out.len += n;
    return 0;
}

static int to_sv(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    memcpy(sv_out.p + sv_out.len, d, n);
    sv_out.len += n;
    return 0;
}

static struct h2conn *server;

static void sv_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h, size_t n,
                       bool end)
{
    (void)arg, (void)user, (void)h, (void)n, (void)end;
    (void)sid;
}

static void sv_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end)
{
    (void)arg, (void)user, (void)d, (void)n;
    if (!end)
        return;
    const struct h2conn_header resp[] = {{":status", 7, "200", 3, false},
                                         {"content-type", 12, "application/grpc", 16, false}};
    const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false},
                                          {"grpc-message", 12, "ok", 2, false}};
    const uint8_t msg[] = {0, 0, 0, 0, 4, 0x10, 1, 0x20, 1};
    h2conn_submit_headers(server, sid, resp, 2, false);
    h2conn_submit_data(server, sid, msg, sizeof msg, false);
    h2conn_submit_headers(server, sid, trail, 2, true);
}

static void write_seed(const char *dir, const char *name, const uint8_t *pre, size_t prelen,
                       const uint8_t *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "test/fuzz/corpus/%s", dir);
    mkdir("test/fuzz/corpus", 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "test/fuzz/corpus/%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(pre, 1, prelen, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

static size_t hpack(const struct h2conn_header *h, size_t n, uint8_t *out, size_t cap)
{
    nghttp2_hd_deflater *d;
    nghttp2_hd_deflate_new(&d, 4096);
    nghttp2_nv nv[16];
    for (size_t i = 0; i < n; i++)
        nv[i] = (nghttp2_nv){(uint8_t *)(uintptr_t)h[i].name, (uint8_t *)(uintptr_t)h[i].value,
                             h[i].name_len, h[i].value_len,
                             h[i].sensitive ? NGHTTP2_NV_FLAG_NO_INDEX : 0};
    ssize_t len = nghttp2_hd_deflate_hd(d, out, cap, nv, n);
    nghttp2_hd_deflate_del(d);
    return len < 0 ? 0 : (size_t)len;
}

static void command_seed(const char *name, const struct command *c)
{
    uint8_t *buf;
    size_t len;
    if (command_encode(c, &buf, &len) != 0) {
        fprintf(stderr, "cannot encode seed %s\n", name);
        exit(1);
    }
    write_seed("fuzz_command", name, NULL, 0, buf, len);
    free(buf);
}

static void command_seeds(void)
{
    struct command c;
    struct command_item items[3];
    memset(items, 0, sizeof items);
    items[0].body = (const uint8_t *)"hello";
    items[0].body_len = 5;
    strcpy(items[0].content_type, "text/plain");
    items[1].body = (const uint8_t *)"\xff\x00binary";
    items[1].body_len = 8;
    items[1].delay_ms = 1500;
    items[2].body_len = 0;

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000000u;
    strcpy(c.pb.user, "alice");
    c.pb.which_kind = mom_v1_Command_publish_tag;
    strcpy(c.pb.kind.publish.name, "orders");
    c.items = items;
    c.item_count = 1;
    command_seed("publish_one", &c);
    c.item_count = 3;
    c.pb.kind.publish.batch = true;
    strcpy(c.pb.kind.publish.idempotency_key, "k-1");
    c.pb.admin = true;
    command_seed("publish_batch", &c);
    c.pb.kind.publish.kind = mom_v1_ResourceKind_TOPIC;
    command_seed("publish_topic_batch", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000001u;
    strcpy(c.pb.user, "bob");
    c.pb.which_kind = mom_v1_Command_create_queue_tag;
    strcpy(c.pb.kind.create_queue.name, "q");
    c.pb.kind.create_queue.has_settings = true;
    c.pb.kind.create_queue.settings.visibility_timeout_ms = 30000;
    c.pb.kind.create_queue.settings.max_deliveries = 3;
    strcpy(c.pb.kind.create_queue.settings.dead_letter_queue, "dlq");
    c.pb.kind.create_queue.settings.present = 7;
    command_seed("create_queue", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000002u;
    strcpy(c.pb.user, "bob");
    c.pb.which_kind = mom_v1_Command_receive_tag;
    strcpy(c.pb.kind.receive.queue, "q");
    c.pb.kind.receive.max = 10;
    c.pb.kind.receive.auto_ack = true;
    command_seed("receive", &c);

    memset(&c, 0, sizeof c);
    c.pb.which_kind = mom_v1_Command_ack_tag;
    strcpy(c.pb.kind.ack.queue, "q");
    strcpy(c.pb.kind.ack.receipt, "0000000000000001.0000000000000002");
    command_seed("ack", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000003u;
    c.pb.which_kind = mom_v1_Command_tick_tag;
    command_seed("tick", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000004u;
    strcpy(c.pb.user, "bob");
    c.pb.which_kind = mom_v1_Command_create_subscription_tag;
    strcpy(c.pb.kind.create_subscription.topic, "news");
    strcpy(c.pb.kind.create_subscription.name, "replay");
    c.pb.kind.create_subscription.start_at_time = true;
    c.pb.kind.create_subscription.start_time_ms = 1764200000000u;
    command_seed("subscription_start_time", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000005u;
    strcpy(c.pb.user, "bob");
    c.pb.which_kind = mom_v1_Command_seek_subscription_tag;
    strcpy(c.pb.kind.seek_subscription.topic, "news");
    strcpy(c.pb.kind.seek_subscription.name, "replay");
    c.pb.kind.seek_subscription.by_time = true;
    c.pb.kind.seek_subscription.time_ms = 1764200000000u;
    command_seed("seek_time", &c);
    c.pb.kind.seek_subscription.by_time = false;
    c.pb.kind.seek_subscription.time_ms = 0;
    c.pb.kind.seek_subscription.offset = 42;
    command_seed("seek_offset", &c);

    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1764300000006u;
    strcpy(c.pb.user, "alice");
    c.pb.which_kind = mom_v1_Command_set_acl_tag;
    c.pb.kind.set_acl.kind = mom_v1_ResourceKind_TOPIC;
    strcpy(c.pb.kind.set_acl.name, "news");
    if (command_users_add(&c.acl_publish, "bob", 3) != 0 ||
        command_users_add(&c.acl_consume, "carol", 5) != 0 ||
        command_users_add(&c.acl_consume, "bob", 3) != 0)
        exit(1);
    command_seed("set_acl", &c);
    command_cleanup(&c);
}

/* Snapshots of a store that holds users, a queue with ready, delayed and
 * leased messages and an ACL, a topic with a subscription and an
 * idempotency key:
 * flag byte 0 (read as is) and 1 (the harness recomputes the CRC). */
static uint64_t snap_index;

static void snap_apply(struct store *st, struct command *c)
{
    struct reply r = {0};
    c->pb.time_ms = 1764300000000u + snap_index;
    if (store_apply(st, ++snap_index, c, &r) != 0 || r.status >= 300) {
        fprintf(stderr, "snapshot seed: command %" PRIu64 " failed (%d %s)\n", snap_index, r.status,
                r.body ? r.body : "");
        exit(1);
    }
    reply_cleanup(&r);
}

static void snapshot_seeds(void)
{
    struct store *st = store_new();
    struct command c;
    memset(&c, 0, sizeof c);
    strcpy(c.pb.user, "admin");
    c.pb.admin = true;
    c.pb.which_kind = mom_v1_Command_register_user_tag;
    strcpy(c.pb.kind.register_user.username, "alice");
    strcpy(c.pb.kind.register_user.password_hash, "pbkdf2-sha256$1000$c2FsdA==$aGFzaA==");
    snap_apply(st, &c);
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_create_queue_tag;
    strcpy(c.pb.kind.create_queue.name, "jobs");
    snap_apply(st, &c);
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_create_topic_tag;
    strcpy(c.pb.kind.create_topic.name, "news");
    snap_apply(st, &c);
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_create_subscription_tag;
    strcpy(c.pb.kind.create_subscription.topic, "news");
    strcpy(c.pb.kind.create_subscription.name, "reader");
    snap_apply(st, &c);
    struct command_item items[3];
    memset(items, 0, sizeof items);
    items[0].body = (const uint8_t *)"hello";
    items[0].body_len = 5;
    strcpy(items[0].content_type, "text/plain");
    items[1].body = (const uint8_t *)"\xff\x00binary";
    items[1].body_len = 8;
    items[1].delay_ms = 60000;
    items[2].body = (const uint8_t *)"third";
    items[2].body_len = 5;
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_publish_tag;
    strcpy(c.pb.kind.publish.name, "jobs");
    strcpy(c.pb.kind.publish.idempotency_key, "k-1");
    c.pb.kind.publish.batch = true;
    c.items = items;
    c.item_count = 3;
    snap_apply(st, &c);
    c.pb.kind.publish.kind = mom_v1_ResourceKind_TOPIC;
    strcpy(c.pb.kind.publish.name, "news");
    items[1].delay_ms = 0;
    snap_apply(st, &c);
    c.items = NULL;
    c.item_count = 0;
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_receive_tag;
    strcpy(c.pb.kind.receive.queue, "jobs");
    c.pb.kind.receive.max = 1;
    snap_apply(st, &c);
    memset(&c.pb.kind, 0, sizeof c.pb.kind);
    c.pb.which_kind = mom_v1_Command_set_acl_tag;
    strcpy(c.pb.kind.set_acl.name, "jobs");
    if (command_users_add(&c.acl_publish, "bob", 3) != 0 ||
        command_users_add(&c.acl_consume, "carol", 5) != 0 ||
        command_users_add(&c.acl_consume, "bob", 3) != 0)
        exit(1);
    snap_apply(st, &c);
    command_cleanup(&c);

    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f || store_snapshot_write(st, f) != 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write the snapshot seed\n");
        exit(1);
    }
    write_seed("fuzz_snapshot", "populated", (const uint8_t *)"\0", 1, (const uint8_t *)p, n);
    write_seed("fuzz_snapshot", "populated_fix_crc", (const uint8_t *)"\1", 1, (const uint8_t *)p,
               n);
    free(p);
    store_free(st);
    st = store_new();
    f = open_memstream(&p, &n);
    if (!f || store_snapshot_write(st, f) != 0 || fclose(f) != 0)
        exit(1);
    write_seed("fuzz_snapshot", "empty", (const uint8_t *)"\0", 1, (const uint8_t *)p, n);
    free(p);
    store_free(st);
}

/* Segment images for fuzz_wal: flag byte, first index (LE), body. */
static void wal_seed(const char *name, uint8_t flags, uint64_t first, const uint8_t *body, size_t n)
{
    uint8_t pre[9] = {flags};
    le_put64(pre + 1, first);
    write_seed("fuzz_wal", name, pre, sizeof pre, body, n);
}

static void wal_seeds(void)
{
    static uint8_t b[4096];
    const uint8_t cmd[] = {0x08, 0x01, 0x12, 0x03, 'a', 'b', 'c'};
    size_t n = 0;
    for (uint64_t i = 0; i < 3; i++)
        n += wal_record_encode(b + n, 2, 5 + i, cmd, sizeof cmd - i);
    wal_seed("clean_three", 1 | 8, 5, b, n + 64); /* zeros after: preallocation */
    wal_seed("torn_tail", 1 | 8, 5, b, n - 3);
    wal_seed("split_two_segments", 1 | 2 | 4 | 8 | 16, 5, b, n);
    b[n] = 1; /* data after the end marker */
    wal_seed("data_after_marker", 1 | 8, 5, b, n + 40);
    b[n] = 0;
    b[30] ^= 0x40; /* a payload byte of the first record */
    wal_seed("bad_crc_first", 1 | 8, 5, b, n);
    wal_seed("fix_crcs", 1 | 4 | 8, 5, b, n);
    b[30] ^= 0x40;
    static uint8_t seg[4096];
    wal_segment_header_encode(seg, 9);
    size_t m = WAL_SEGMENT_HDR;
    m += wal_record_encode(seg + m, 3, 9, cmd, sizeof cmd);
    wal_seed("own_header", 8, 9, seg, m);
    wal_seed("wrong_first", 8, 10, seg, m);
}

/* RaftMessages of every kind the node sends, and both Forward messages. */
/* Reads *buf after the encoder ran (argument order is unspecified). */
static void wire_seed(const char *name, int rc, uint8_t **buf, const size_t *len)
{
    if (rc != 0) {
        fprintf(stderr, "cannot encode seed %s\n", name);
        exit(1);
    }
    write_seed("fuzz_node_wire", name, NULL, 0, *buf, *len);
    free(*buf);
}

static void node_wire_seeds(void)
{
    uint8_t *buf;
    size_t len;
    const uint8_t cmd[] = {0x08, 0x01, 0x12, 0x03, 'a', 'b', 'c'};
    struct raft_entry ents[3] = {{.term = 2, .index = 10, .data = NULL, .len = 0},
                                 {.term = 2, .index = 11, .data = cmd, .len = sizeof cmd},
                                 {.term = 3, .index = 12, .data = cmd, .len = 3}};
    struct raft_msg app = {.type = RAFT_MSG_APPEND,
                           .group_id = 1,
                           .from = 1,
                           .to = 2,
                           .term = 3,
                           .incarnation = 1765000000000999ull,
                           .prev_log_index = 9,
                           .prev_log_term = 2,
                           .leader_commit = 9,
                           .entries = ents,
                           .n_entries = 3,
                           .seq = 41};
    wire_seed("append", node_wire_encode_msg(&app, NULL, &buf, &len), &buf, &len);
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP,
                            .group_id = 1,
                            .from = 2,
                            .to = 1,
                            .term = 3,
                            .incarnation = 77,
                            .seq = 41,
                            .success = false,
                            .match_index = 9,
                            .conflict_index = 5,
                            .conflict_term = 1,
                            .last_log_index = 8,
                            .abstaining = true};
    wire_seed("append_resp", node_wire_encode_msg(&resp, NULL, &buf, &len), &buf, &len);
    struct raft_msg vote = {.type = RAFT_MSG_VOTE,
                            .group_id = 1,
                            .from = 3,
                            .to = 1,
                            .term = 4,
                            .incarnation = 5,
                            .last_log_index = 12,
                            .last_log_term = 3,
                            .pre_vote = true,
                            .leadership_transfer = true};
    wire_seed("vote", node_wire_encode_msg(&vote, NULL, &buf, &len), &buf, &len);
    struct raft_msg snap = {.type = RAFT_MSG_SNAPSHOT,
                            .group_id = 1,
                            .from = 1,
                            .to = 3,
                            .term = 4,
                            .snapshot_index = 4000,
                            .snapshot_term = 3};
    struct node_wire_chunk chunk = {
        .offset = 1u << 20, .data = cmd, .len = sizeof cmd, .done = true};
    wire_seed("snapshot_chunk", node_wire_encode_msg(&snap, &chunk, &buf, &len), &buf, &len);
    struct raft_msg hello = {.type = RAFT_MSG_HELLO_RESP,
                             .group_id = 1,
                             .from = 2,
                             .to = 3,
                             .echo_incarnation = 1234,
                             .leader_commit = 99};
    wire_seed("hello_resp", node_wire_encode_msg(&hello, NULL, &buf, &len), &buf, &len);
    struct node_wire_fwd_req fq = {
        .group_id = 1, .from = 2, .command = (uint8_t *)cmd, .command_len = sizeof cmd};
    wire_seed("forward_request", node_wire_encode_fwd_req(&fq, &buf, &len), &buf, &len);
    struct node_wire_fwd_req ri = {.group_id = 1, .from = 2, .read_index = true};
    wire_seed("forward_read_index", node_wire_encode_fwd_req(&ri, &buf, &len), &buf, &len);
    struct node_wire_fwd_resp fr = {.group_id = 1,
                                    .from = 1,
                                    .status = 201,
                                    .body = (uint8_t *)"{\"id\":\"1\"}",
                                    .body_len = 10,
                                    .index = 12,
                                    .leader = 1};
    wire_seed("forward_response", node_wire_encode_fwd_resp(&fr, &buf, &len), &buf, &len);
}

int main(void)
{
    command_seeds();
    const struct h2conn_header req[] = {
        {":method", 7, "POST", 4, false},
        {":scheme", 7, "http", 4, false},
        {":path", 5, "/mom.v1.Peer/Ping", 17, false},
        {":authority", 10, "127.0.0.1:9090", 14, false},
        {"content-type", 12, "application/grpc", 16, false},
        {"te", 2, "trailers", 8, false},
        {"grpc-timeout", 12, "900m", 4, false},
        {"authorization", 13, "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2RlOjEifQ.c2ln", 55, true},
    };
    struct h2conn_callbacks ccb = {.send = to_sv};
    struct h2conn_callbacks scb = {.send = to_cl, .on_headers = sv_headers, .on_data = sv_data};
    struct h2conn *client;
    h2conn_new(H2CONN_CLIENT, NULL, &ccb, NULL, &client);
    h2conn_new(H2CONN_SERVER, NULL, &scb, NULL, &server);
    const uint8_t ping[] = {0, 0, 0, 0, 6, 0x10, 1, 0x18, 0xe8, 0x07};
    for (int i = 0; i < 3; i++) {
        uint32_t sid;
        h2conn_submit_request(client, req, 8, false, NULL, &sid);
        h2conn_submit_data(client, sid, ping, sizeof ping, true);
    }
    /* client -> server bytes (without the preface the harness adds) */
    size_t c2s = sv_out.len;
    h2conn_recv(server, sv_out.p, sv_out.len, NULL);
    h2conn_recv(client, cl_out.p, cl_out.len, NULL);
    const uint8_t srv0 = 1, win0 = 0, win1 = 1;
    uint8_t sel[2] = {srv0, win0};
    write_seed("fuzz_h2conn", "server_three_pings", sel, 2, sv_out.p + H2FRAME_PREFACE_LEN,
               c2s - H2FRAME_PREFACE_LEN);
    sel[1] = win1;
    write_seed("fuzz_h2conn", "server_small_windows", sel, 2, sv_out.p + H2FRAME_PREFACE_LEN,
               c2s - H2FRAME_PREFACE_LEN);
    sel[0] = 0;
    write_seed("fuzz_h2conn", "client_answers", sel, 2, cl_out.p, cl_out.len);
    write_seed("fuzz_h2frame", "client_stream", (const uint8_t *)"\0", 1,
               sv_out.p + H2FRAME_PREFACE_LEN, c2s - H2FRAME_PREFACE_LEN);
    write_seed("fuzz_h2frame", "server_stream", (const uint8_t *)"\1", 1, cl_out.p, cl_out.len);

    /* hand-made frames of every type */
    uint8_t f[512];
    size_t n = 0;
    struct h2frame_setting set[] = {{1, 0}, {2, 0}, {3, 100}, {4, 1 << 20}, {5, 32768}, {6, 8192}};
    n += h2frame_pack_settings(f + n, set, 6, false);
    n += h2frame_pack_settings(f + n, NULL, 0, true);
    n += h2frame_pack_payload(f + n, H2FRAME_DATA, 1, 1, "abc", 3, 7);
    n += h2frame_pack_payload(f + n, H2FRAME_HEADERS, 0, 3, "\x82\x86", 2, 3);
    n += h2frame_pack_payload(f + n, H2FRAME_CONTINUATION, 4, 3, "\x84", 1, 0);
    n += h2frame_pack_priority(f + n, 5, 3, 16, true);
    n += h2frame_pack_rst_stream(f + n, 5, 8);
    n += h2frame_pack_ping(f + n, (const uint8_t *)"12345678", false);
    n += h2frame_pack_goaway(f + n, 7, 0, "bye", 3);
    n += h2frame_pack_window_update(f + n, 0, 1000);
    n += h2frame_pack_window_update(f + n, 1, 0);
    write_seed("fuzz_h2frame", "every_type", (const uint8_t *)"\0", 1, f, n);
    write_seed("fuzz_h2conn", "every_type_server", (const uint8_t *)"\1\0", 2, f, n);

    /* header blocks */
    uint8_t block[4096];
    size_t bl = hpack(req, 8, block, sizeof block);
    write_seed("fuzz_headers", "grpc_request", (const uint8_t *)"\x05", 1, block, bl);
    write_seed("fuzz_headers", "grpc_request_1byte_frames", (const uint8_t *)"\x00", 1, block, bl);
    const struct h2conn_header bad[] = {
        {":method", 7, "POST", 4, false}, {"Upper", 5, "x", 1, false}, {":path", 5, "/", 1, false}};
    bl = hpack(bad, 3, block, sizeof block);
    write_seed("fuzz_headers", "malformed", (const uint8_t *)"\x03", 1, block, bl);
    const uint8_t literal[] = {0x3f, 0xe1, 0x1f, 0x83, 0x86, 0x44, 0x02, '/', 'x', 0x00, 0x02, 't',
                               'e',  0x08, 't',  'r',  'a',  'i',  'l',  'e', 'r', 's',  0xbe};
    write_seed("fuzz_headers", "table_update_and_literals", (const uint8_t *)"\x01", 1, literal,
               sizeof literal);

    /* gRPC byte streams */
    uint8_t g[1024];
    size_t gl = 0;
    memcpy(g + gl, ping, sizeof ping);
    gl += sizeof ping;
    const uint8_t ae[] = {0,    0,    0,    0,    21,   0x08, 0x00, 0x10, 0x01,
                          0x18, 0x02, 0x32, 0x0b, 0x08, 0x02, 0x10, 0x05, 0x1a,
                          0x05, 'h',  'e',  'l',  'l',  'o',  0x38, 0x04};
    memcpy(g + gl, ae, sizeof ae);
    gl += sizeof ae;
    const uint8_t empty[] = {0, 0, 0, 0, 0};
    memcpy(g + gl, empty, sizeof empty);
    gl += sizeof empty;
    write_seed("fuzz_grpcmsg", "ping_ae_empty_whole", (const uint8_t *)"\x00", 1, g, gl);
    write_seed("fuzz_grpcmsg", "ping_ae_empty_split", (const uint8_t *)"\x03\x00\x04\x01", 4, g,
               gl);
    const uint8_t big[] = {0, 0, 1, 0, 1, 0xff};
    write_seed("fuzz_grpcmsg", "too_large", (const uint8_t *)"\x01\x02", 2, big, sizeof big);
    write_seed("fuzz_grpcmsg", "timeout", (const uint8_t *)"\x00", 1, (const uint8_t *)"1500u", 5);
    node_wire_seeds();
    wal_seeds();
    snapshot_seeds();
    h2conn_free(client);
    h2conn_free(server);
    puts("seeds written to test/fuzz/corpus/");
    return 0;
}
