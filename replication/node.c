/* The Raft glue on the loop (DESIGN §3, §4): drives the pure core
 * (replication/raft.c) with ticks from a timer, messages over the peer
 * channel (one RPC, /mom.v1.Peer/Raft, carries every core message; its reply
 * carries the core's response) and proposals, and handles each Ready in the
 * order raft.h prescribes.
 *
 * Group commit: everything one loop turn produced is handled by one pump at
 * the lowest priority, so its entries reach the WAL with one write() and one
 * fdatasync on the I/O helper thread; raft_persisted follows the sync and
 * releases the messages held for durability. A hard-state change (elections,
 * rare) is written and synced on the loop: entries first, then the
 * raft-state file (temp, fsync, rename, fsync dir). A cluster of one goes
 * through the same path: it commits after its own durable append.
 *
 * Proposals: the leader appends them (raft_propose) and remembers
 * (index, term) -> proposer; the proposer is answered when that index is
 * applied with the same term, failed (503) when another term's entry lands
 * there or when it did not commit within commit_timeout_ms. A follower
 * forwards the encoded Command to the leader (/mom.v1.Peer/Forward) and
 * answers its client with the status and body the leader's apply produced.
 *
 * Storage incarnation: storage with no raft-state file, log or snapshot is
 * fresh and gets a new incarnation (wall clock µs); in an existing cluster it
 * abstains (raft.h) until caught up. A new cluster's first start passes
 * bootstrap so its empty members may vote (deploy/local-cluster.sh does).
 *
 * Snapshots: every snapshot_entries applied entries, or once the entries
 * held in memory reach snapshot_bytes (a log of large batches would
 * otherwise hold up to snapshot_entries of them), a forked child writes
 * the application state to snapshot.tmp (writeback paced in 4 MiB steps),
 * syncs it, renames it to snapshot-<index>-<term>.snap, syncs the directory
 * and removes older snapshots; when it has exited the loop compacts the
 * core (freeing entries a slice per turn) and deletes the WAL segments
 * below it.
 * Recovery loads the newest snapshot and hands the log after it to the core;
 * entries are applied once they are known to be committed.
 * SPDX-License-Identifier: MIT */
#include "replication/node.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "proto/mom.pb.h"
#include "replication/grpcmsg.h"
#include "replication/peer.h"
#include "replication/raft.h"
#include "replication/syncer.h"
#include "replication/wal.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_PATH_RAFT "/mom.v1.Peer/Raft"
#define NODE_PATH_FORWARD "/mom.v1.Peer/Forward"
#define NODE_MAX_MEMBERS 64u

/* A proposal appended on this leader and not applied yet. */
struct pending {
    uint64_t index, term;
    void *ctx;                /* local proposer, or NULL */
    struct peer_request *fwd; /* a follower's Forward call, or NULL */
    uint64_t deadline;        /* monotonic ms */
};

/* An incoming Raft request waiting for the core's response. */
struct held {
    uint64_t cookie;
    struct peer_request *req;
};

/* An encoded message waiting until Ready `id` is durable. */
struct outmsg {
    uint64_t id;
    uint32_t to;
    uint64_t cookie;
    enum raft_msg_type type;
    uint8_t *buf;
    size_t len;
};

/* A proposal forwarded to the leader, its reply outstanding. */
struct fwd_call {
    struct node *n;
    void *ctx;
    struct fwd_call *prev, *next;
};

/* A read barrier in progress. */
struct read_wait {
    uint64_t id;
    void *ctx;                /* local reader, or NULL */
    struct peer_request *fwd; /* a follower's Forward{read_index}, or NULL */
    uint64_t index;           /* serve once applied >= index */
    bool have_index;
    bool call_out; /* a Forward call to the leader is outstanding */
    bool done;     /* answered (timed out); freed when the call returns */
    uint64_t deadline;
    struct node *n;
    struct read_wait *next;
};

struct member {
    struct node *n;
    uint32_t id;
    uint64_t match;
    uint64_t last_contact; /* monotonic ms, 0 = never */
    uint64_t incarnation;  /* highest seen; a new one resets match */
    /* InstallSnapshot stream to this member (leader side). */
    int snap_fd; /* -1 = none */
    uint64_t snap_off, snap_size, snap_index, snap_term;
    uint64_t snap_retry_at; /* a failed stream is reported at this tick time */
    bool snap_failed;
};

#define NODE_SNAP_CHUNK (1u << 20)

struct node {
    struct event_base *base;
    struct node_callbacks cb;
    void *arg;
    enum node_sync sync;
    uint64_t snapshot_entries;
    uint64_t snapshot_bytes;
    char dir[1024];
    char log_dir[1100];
    uint32_t group_id;
    uint32_t id, n_members;
    struct peer *peer;
    uint32_t tick_ms;
    uint64_t commit_timeout_ms;
    uint64_t incarnation;
    struct member mem[NODE_MAX_MEMBERS + 1];

    struct raft *raft;
    struct wal *wal;
    struct syncer *syncer;
    struct event *kick_ev;
    struct event *release_ev; /* frees compacted entries a slice per turn */
    struct event *sync_done_ev;
    struct event *everysec_ev;
    struct event *tick_ev;
    bool kicked;
    bool startup; /* node_open: sync on the loop thread */

    /* Leader's proposals in index order: a ring of capacity cap. */
    struct pending *ring;
    size_t head, count, cap;

    struct held *held;
    size_t nheld, held_cap;
    uint64_t next_cookie;

    struct outmsg *out;
    size_t nout, out_cap;

    struct fwd_call *fwd_calls;

    /* Proposals made from inside apply (a woken long poll), proposed after
     * raft_advance. */
    struct deferred {
        uint8_t *data;
        size_t len;
        void *ctx;
    } * deferred;
    size_t ndeferred, deferred_cap;
    bool in_ready;

    struct read_wait *reads;
    uint64_t next_read_id;

    uint64_t need_id;      /* highest Ready id waiting to be durable */
    uint64_t persisted_id; /* highest id given to raft_persisted */
    uint64_t submitted_id; /* cookie of the sync in flight */
    uint64_t last_index;   /* last index in the WAL (buffered included) */
    uint64_t durable_index;
    uint64_t applied_index;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    pid_t snap_pid;
    int snap_pipe;
    struct event *snap_ev;
    uint64_t snap_child_index;
    uint64_t snap_child_term;
    bool writable;
    struct node_stats stats;
};

static void kick(struct node *n);

/* ---- pending proposals ---- */

static int ring_push(struct node *n, struct pending p)
{
    if (n->count == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 1024;
        struct pending *ring = malloc(cap * sizeof *ring);
        if (!ring)
            return MOM_ERR_NOMEM;
        for (size_t i = 0; i < n->count; i++)
            ring[i] = n->ring[(n->head + i) % n->cap];
        free(n->ring);
        n->ring = ring;
        n->cap = cap;
        n->head = 0;
    }
    n->ring[(n->head + n->count) % n->cap] = p;
    n->count++;
    return MOM_OK;
}

static struct pending *ring_front(struct node *n)
{
    return n->count ? &n->ring[n->head] : NULL;
}

static void ring_pop(struct node *n)
{
    n->head = (n->head + 1) % n->cap;
    n->count--;
}

static void fail_one(struct node *n, struct pending *p, int err)
{
    if (p->fwd) {
        peer_respond(p->fwd, GRPC_UNAVAILABLE, mom_strerror(err), NULL, 0);
        p->fwd = NULL;
    }
    if (p->ctx) {
        void *ctx = p->ctx;
        p->ctx = NULL;
        n->cb.fail(n->arg, ctx, err);
    }
}

/* Fails every pending proposal with index >= from (their slots were
 * overwritten in this node's log). */
static void fail_pending_from(struct node *n, uint64_t from, int err)
{
    while (n->count) {
        struct pending *p = &n->ring[(n->head + n->count - 1) % n->cap];
        if (p->index < from)
            break;
        struct pending cur = *p;
        n->count--;
        fail_one(n, &cur, err);
    }
}

/* ---- hard state file ---- */

/* group dir/raft-state: "term vote abstain incarnation\n", replaced atomically. */
static int hard_state_write(struct node *n, const struct raft_hard_state *hs)
{
    char path[1200], tmp[1200], text[128];
    snprintf(path, sizeof path, "%s/raft-state", n->dir);
    snprintf(tmp, sizeof tmp, "%s/raft-state.tmp", n->dir);
    int len = snprintf(text, sizeof text, "%" PRIu64 " %u %d %" PRIu64 "\n", hs->term, hs->vote,
                       hs->abstain ? 1 : 0, n->incarnation);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return mom_err_from_errno(errno);
    bool ok = write(fd, text, (size_t)len) == (ssize_t)len;
    if (ok && n->sync != NODE_SYNC_NEVER)
        ok = fsync(fd) == 0;
    int rc = ok ? MOM_OK : mom_err_from_errno(errno);
    close(fd);
    if (rc == MOM_OK && rename(tmp, path) != 0)
        rc = mom_err_from_errno(errno);
    if (rc == MOM_OK && n->sync != NODE_SYNC_NEVER)
        rc = fs_fsync_dir(n->dir);
    return rc;
}

/* MOM_OK with *found; MOM_ERR_CORRUPT when present but unreadable. */
static int hard_state_read(struct node *n, struct raft_hard_state *hs, bool *found)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/raft-state", n->dir);
    FILE *f = fopen(path, "r");
    *found = false;
    if (!f)
        return errno == ENOENT ? MOM_OK : MOM_ERR_IO;
    unsigned long long term, inc;
    unsigned vote;
    int abstain;
    int got = fscanf(f, "%llu %u %d %llu", &term, &vote, &abstain, &inc);
    fclose(f);
    if (got != 4)
        return MOM_ERR_CORRUPT;
    hs->term = term;
    hs->vote = vote;
    hs->abstain = abstain != 0;
    n->incarnation = inc;
    *found = true;
    return MOM_OK;
}

/* ---- wire codec of struct raft_msg (RaftMessage) ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

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

static bool decode_blob(pb_istream_t *is, const pb_field_t *field, void **arg)
{
    (void)field;
    struct owned_blob *b = *arg;
    free(b->data);
    b->len = is->bytes_left;
    b->data = malloc(b->len ? b->len : 1);
    if (!b->data)
        return false;
    return pb_read(is, b->data, b->len);
}

/* Encodes m into a malloc'd buffer. */
static int msg_encode(const struct raft_msg *m, uint8_t **out, size_t *outlen)
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
    uint8_t *ents = NULL;
    struct blob eb = {0};
    if (m->n_entries) {
        size_t total = 0;
        for (size_t i = 0; i < m->n_entries; i++)
            total += 20 + m->entries[i].len;
        ents = malloc(total);
        if (!ents)
            return MOM_ERR_NOMEM;
        size_t off = 0;
        for (size_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            put_u64(ents + off, e->term);
            put_u64(ents + off + 8, e->index);
            uint32_t l = (uint32_t)e->len;
            for (int k = 0; k < 4; k++)
                ents[off + 16 + (size_t)k] = (uint8_t)(l >> (8 * k));
            if (e->len)
                memcpy(ents + off + 20, e->data, e->len);
            off += 20 + e->len;
        }
        eb.data = ents;
        eb.len = total;
        pb.entries.funcs.encode = encode_blob;
        pb.entries.arg = &eb;
    }
    size_t size = 0;
    int rc = MOM_ERR_NOMEM;
    uint8_t *buf = NULL;
    if (!pb_get_encoded_size(&size, mom_v1_RaftMessage_fields, &pb))
        goto out;
    buf = malloc(size ? size : 1);
    if (!buf)
        goto out;
    pb_ostream_t os = pb_ostream_from_buffer(buf, size);
    if (!pb_encode(&os, mom_v1_RaftMessage_fields, &pb)) {
        free(buf);
        buf = NULL;
        rc = MOM_ERR_INVALID;
        goto out;
    }
    *out = buf;
    *outlen = os.bytes_written;
    rc = MOM_OK;
out:
    free(ents);
    return rc;
}

/* A decoded message; entries point into `raw`. */
struct decoded_msg {
    struct raft_msg m;
    struct owned_blob raw;
    struct raft_entry *ents;
    struct owned_blob snap; /* a snapshot chunk */
    uint64_t snap_off;
    bool snap_done;
};

static void decoded_cleanup(struct decoded_msg *d)
{
    free(d->raw.data);
    free(d->ents);
    free(d->snap.data);
}

static int msg_decode(const uint8_t *buf, size_t len, struct decoded_msg *d)
{
    memset(d, 0, sizeof *d);
    mom_v1_RaftMessage pb = mom_v1_RaftMessage_init_zero;
    pb.entries.funcs.decode = decode_blob;
    pb.entries.arg = &d->raw;
    pb.snap_data.funcs.decode = decode_blob;
    pb.snap_data.arg = &d->snap;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, mom_v1_RaftMessage_fields, &pb))
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
    if (d->raw.data && d->raw.len) {
        size_t count = 0, off = 0;
        while (off < d->raw.len) {
            if (d->raw.len - off < 20)
                return MOM_ERR_INVALID;
            const uint8_t *p = d->raw.data + off;
            size_t l =
                (size_t)p[16] | (size_t)p[17] << 8 | (size_t)p[18] << 16 | (size_t)p[19] << 24;
            if (l > d->raw.len - off - 20)
                return MOM_ERR_INVALID;
            off += 20 + l;
            count++;
        }
        d->ents = calloc(count, sizeof *d->ents);
        if (!d->ents)
            return MOM_ERR_NOMEM;
        off = 0;
        for (size_t i = 0; i < count; i++) {
            const uint8_t *p = d->raw.data + off;
            size_t l =
                (size_t)p[16] | (size_t)p[17] << 8 | (size_t)p[18] << 16 | (size_t)p[19] << 24;
            d->ents[i].term = get_u64(p);
            d->ents[i].index = get_u64(p + 8);
            d->ents[i].data = l ? p + 20 : NULL;
            d->ents[i].len = l;
            off += 20 + l;
        }
        m->entries = d->ents;
        m->n_entries = count;
    }
    return MOM_OK;
}

/* ---- sending ---- */

static struct member *member_of(struct node *n, uint32_t id)
{
    return id >= 1 && id <= n->n_members ? &n->mem[id] : NULL;
}

/* Notes a message from the member: contact time, and a new storage
 * incarnation forgets what its old storage had acknowledged. */
static void member_heard(struct member *mb, uint64_t incarnation)
{
    mb->last_contact = clock_mono_ms();
    if (incarnation > mb->incarnation) {
        if (mb->incarnation)
            mb->match = 0;
        mb->incarnation = incarnation;
    }
}

static void on_raft_reply(int status, const char *message, const uint8_t *reply, size_t len,
                          void *arg)
{
    struct member *mb = arg;
    struct node *n = mb->n;
    if (status != GRPC_OK) {
        (void)message;
        raft_report_unreachable(n->raft, mb->id);
        kick(n);
        return;
    }
    struct decoded_msg d;
    int rc = msg_decode(reply, len, &d);
    if (rc == MOM_OK && d.m.type != 0) {
        member_heard(mb, d.m.incarnation);
        if (d.m.type == RAFT_MSG_APPEND_RESP && d.m.success && d.m.match_index > mb->match)
            mb->match = d.m.match_index;
        (void)raft_step(n->raft, &d.m);
    }
    decoded_cleanup(&d);
    kick(n);
}

/* ---- InstallSnapshot streaming (leader side) ---- */

static void snapshot_path(const struct node *n, uint64_t index, uint64_t term, char *out,
                          size_t len)
{
    snprintf(out, len, "%s/snapshot-%020" PRIu64 "-%" PRIu64 ".snap", n->dir, index, term);
}

/* A failed stream is reported after a second (on a tick), so that a member
 * that is down is not probed in a loop. */
static void snap_stream_end(struct node *n, struct member *mb, bool ok)
{
    if (mb->snap_fd >= 0)
        close(mb->snap_fd);
    mb->snap_fd = -1;
    if (ok) {
        raft_report_snapshot(n->raft, mb->id, true);
        kick(n);
    } else {
        mb->snap_failed = true;
        mb->snap_retry_at = clock_mono_ms() + 1000;
    }
}

static void snap_send_chunk(struct node *n, struct member *mb);

static void on_snap_chunk_reply(int status, const char *message, const uint8_t *reply, size_t len,
                                void *arg)
{
    struct member *mb = arg;
    struct node *n = mb->n;
    if (mb->snap_fd < 0)
        return;
    if (status != GRPC_OK) {
        log_debug("snapshot transfer to %u failed: %s %s", mb->id, grpcmsg_status_name(status),
                  message ? message : "");
        snap_stream_end(n, mb, false);
        return;
    }
    mb->last_contact = clock_mono_ms();
    if (mb->snap_off < mb->snap_size) {
        snap_send_chunk(n, mb);
        return;
    }
    struct decoded_msg d;
    bool ok = msg_decode(reply, len, &d) == MOM_OK && d.m.type == RAFT_MSG_SNAPSHOT_RESP;
    if (ok) {
        if (d.m.success && d.m.match_index > mb->match)
            mb->match = d.m.match_index;
        (void)raft_step(n->raft, &d.m);
    }
    decoded_cleanup(&d);
    log_info("snapshot %" PRIu64 " sent to member %u (%" PRIu64 " bytes)", mb->snap_index, mb->id,
             mb->snap_size);
    snap_stream_end(n, mb, ok);
}

static void snap_send_chunk(struct node *n, struct member *mb)
{
    uint64_t left = mb->snap_size - mb->snap_off;
    size_t chunk = left > NODE_SNAP_CHUNK ? NODE_SNAP_CHUNK : (size_t)left;
    uint8_t *data = malloc(chunk ? chunk : 1);
    if (!data) {
        snap_stream_end(n, mb, false);
        return;
    }
    ssize_t got = chunk ? pread(mb->snap_fd, data, chunk, (off_t)mb->snap_off) : 0;
    if (got != (ssize_t)chunk) {
        free(data);
        log_warn("cannot read snapshot %" PRIu64 ": %s", mb->snap_index, strerror(errno));
        snap_stream_end(n, mb, false);
        return;
    }
    mom_v1_RaftMessage pb = mom_v1_RaftMessage_init_zero;
    pb.type = RAFT_MSG_SNAPSHOT;
    pb.group_id = n->group_id;
    pb.from = n->id;
    pb.to = mb->id;
    pb.term = raft_term(n->raft);
    pb.incarnation = n->incarnation;
    pb.snapshot_index = mb->snap_index;
    pb.snapshot_term = mb->snap_term;
    pb.snap_offset = mb->snap_off;
    pb.snap_done = mb->snap_off + chunk == mb->snap_size;
    struct blob b = {data, chunk};
    pb.snap_data.funcs.encode = encode_blob;
    pb.snap_data.arg = &b;
    size_t size = 0;
    uint8_t *buf = NULL;
    int rc = MOM_ERR_NOMEM;
    if (pb_get_encoded_size(&size, mom_v1_RaftMessage_fields, &pb) &&
        (buf = malloc(size ? size : 1))) {
        pb_ostream_t os = pb_ostream_from_buffer(buf, size);
        if (pb_encode(&os, mom_v1_RaftMessage_fields, &pb))
            rc = peer_call(n->peer, mb->id, NODE_PATH_RAFT, buf, os.bytes_written, n->tick_ms * 50,
                           on_snap_chunk_reply, mb);
    }
    free(buf);
    free(data);
    if (rc != MOM_OK) {
        snap_stream_end(n, mb, false);
        return;
    }
    mb->snap_off += chunk;
}

static void snap_stream_start(struct node *n, struct member *mb, const struct outmsg *o)
{
    (void)o;
    if (mb->snap_fd >= 0 || mb->snap_failed)
        return; /* one stream per member; a repeated SNAPSHOT is ignored */
    char path[1300];
    snapshot_path(n, n->snapshot_index, n->snapshot_term, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_warn("cannot open snapshot %s for member %u: %s", path, mb->id, strerror(errno));
        if (fd >= 0)
            close(fd);
        snap_stream_end(n, mb, false);
        return;
    }
    mb->snap_fd = fd;
    mb->snap_off = 0;
    mb->snap_size = (uint64_t)st.st_size;
    mb->snap_index = n->snapshot_index;
    mb->snap_term = n->snapshot_term;
    log_debug("sending snapshot %" PRIu64 " (%" PRIu64 " bytes) to member %u", mb->snap_index,
              mb->snap_size, mb->id);
    snap_send_chunk(n, mb);
}

static int held_take(struct node *n, uint64_t cookie, struct peer_request **req)
{
    for (size_t i = 0; i < n->nheld; i++) {
        if (n->held[i].cookie == cookie) {
            *req = n->held[i].req;
            n->held[i] = n->held[--n->nheld];
            return MOM_OK;
        }
    }
    return MOM_ERR_NOTFOUND;
}

static void send_one(struct node *n, const struct outmsg *o)
{
    if (o->cookie) {
        struct peer_request *req;
        if (held_take(n, o->cookie, &req) == MOM_OK)
            peer_respond(req, GRPC_OK, NULL, o->buf, o->len);
        return;
    }
    struct member *mb = member_of(n, o->to);
    if (!mb || !n->peer)
        return;
    if (o->type == RAFT_MSG_SNAPSHOT) {
        snap_stream_start(n, mb, o);
        return;
    }
    uint32_t deadline = n->tick_ms * 10;
    if (peer_call(n->peer, o->to, NODE_PATH_RAFT, o->buf, o->len, deadline, on_raft_reply, mb) !=
        MOM_OK)
        raft_report_unreachable(n->raft, o->to);
}

/* Sends every queued message whose Ready is durable. */
static void send_durable(struct node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->nout; i++) {
        struct outmsg *o = &n->out[i];
        if (o->id <= n->persisted_id) {
            send_one(n, o);
            free(o->buf);
        } else {
            n->out[k++] = *o;
        }
    }
    n->nout = k;
}

static void mark_persisted(struct node *n, uint64_t id)
{
    if (id <= n->persisted_id)
        return;
    n->persisted_id = id;
    raft_persisted(n->raft, id);
    send_durable(n);
}

static int queue_msg(struct node *n, uint64_t id, const struct raft_msg *m, bool now)
{
    struct outmsg o = {.id = id, .to = m->to, .cookie = m->cookie, .type = m->type};
    int rc = msg_encode(m, &o.buf, &o.len);
    if (rc != MOM_OK)
        return rc;
    if (now) {
        send_one(n, &o);
        free(o.buf);
        return MOM_OK;
    }
    if (n->nout == n->out_cap) {
        size_t cap = n->out_cap ? n->out_cap * 2 : 64;
        struct outmsg *a = realloc(n->out, cap * sizeof *a);
        if (!a) {
            free(o.buf);
            return MOM_ERR_NOMEM;
        }
        n->out = a;
        n->out_cap = cap;
    }
    n->out[n->nout++] = o;
    return MOM_OK;
}

/* ---- applying ---- */

static void take_snapshot(struct node *n);

/* By count, or by the bytes the core holds once a few entries were applied
 * since the last snapshot (so that a log of unapplied entries cannot start
 * one snapshot after another). */
static bool snapshot_due(const struct node *n)
{
    uint64_t applied = n->applied_index - n->snapshot_index;
    return applied >= n->snapshot_entries ||
           (applied >= NODE_SNAPSHOT_MIN_ENTRIES && raft_log_bytes(n->raft) >= n->snapshot_bytes);
}

static void apply_entry(struct node *n, const struct raft_entry *e)
{
    struct pending *p;
    while ((p = ring_front(n)) && p->index < e->index) {
        struct pending cur = *p;
        ring_pop(n);
        fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    struct pending cur = {0};
    bool mine = false;
    if ((p = ring_front(n)) && p->index == e->index) {
        cur = *p;
        ring_pop(n);
        if (cur.term == e->term)
            mine = true;
        else
            fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    if (e->len) {
        struct node_reply rr = {0};
        n->cb.apply(n->arg, e->index, e->data, e->len, mine ? cur.ctx : NULL,
                    mine && cur.fwd ? &rr : NULL);
        if (mine && cur.fwd) {
            mom_v1_ForwardResponse resp = mom_v1_ForwardResponse_init_zero;
            resp.group_id = n->group_id;
            resp.from = n->id;
            resp.status = (uint32_t)rr.status;
            resp.index = e->index;
            resp.leader = n->id;
            struct blob b = {rr.body, rr.len};
            resp.body.funcs.encode = encode_blob;
            resp.body.arg = &b;
            size_t size = 0;
            uint8_t *buf = NULL;
            if (pb_get_encoded_size(&size, mom_v1_ForwardResponse_fields, &resp) &&
                (buf = malloc(size ? size : 1))) {
                pb_ostream_t os = pb_ostream_from_buffer(buf, size);
                if (pb_encode(&os, mom_v1_ForwardResponse_fields, &resp))
                    peer_respond(cur.fwd, GRPC_OK, NULL, buf, os.bytes_written);
                else
                    peer_respond(cur.fwd, GRPC_INTERNAL, "cannot encode the answer", NULL, 0);
            } else {
                peer_respond(cur.fwd, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
            }
            free(buf);
            free(rr.body);
        }
    } else if (mine) {
        fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    n->applied_index = e->index;
    n->stats.entries++;
}

/* ---- read barriers ---- */

static void read_answer(struct node *n, struct read_wait *w, int err)
{
    w->done = true;
    if (w->fwd) {
        if (err == MOM_OK) {
            mom_v1_ForwardResponse resp = mom_v1_ForwardResponse_init_zero;
            resp.group_id = n->group_id;
            resp.from = n->id;
            resp.status = 200;
            resp.index = w->index;
            resp.leader = n->id;
            uint8_t buf[64];
            pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
            if (pb_encode(&os, mom_v1_ForwardResponse_fields, &resp))
                peer_respond(w->fwd, GRPC_OK, NULL, buf, os.bytes_written);
            else
                peer_respond(w->fwd, GRPC_INTERNAL, "cannot encode", NULL, 0);
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

/* Answers what can be answered, drops what is finished. Callbacks may add
 * barriers: the list is detached while it is walked. */
static void reads_progress(struct node *n, bool expire)
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
        mom_v1_ForwardResponse resp = mom_v1_ForwardResponse_init_zero;
        pb_istream_t is = pb_istream_from_buffer(reply, len);
        if (status == GRPC_OK && pb_decode(&is, mom_v1_ForwardResponse_fields, &resp) &&
            resp.status == 200) {
            w->index = resp.index;
            w->have_index = true;
        } else {
            read_answer(n, w, MOM_ERR_UNAVAILABLE);
        }
    }
    reads_progress(n, false);
}

static void handle_read_states(struct node *n, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        const struct raft_read_state *rs = &rd->reads[i];
        for (struct read_wait *w = n->reads; w; w = w->next) {
            if (w->id != rs->ctx || w->done)
                continue;
            if (rs->err != MOM_OK) {
                w->deadline = 0; /* failed by reads_progress after the Ready */
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
        mom_v1_ForwardRequest req = mom_v1_ForwardRequest_init_zero;
        req.group_id = n->group_id;
        req.from = n->id;
        req.read_index = true;
        uint8_t buf[64];
        pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
        rc = pb_encode(&os, mom_v1_ForwardRequest_fields, &req)
                 ? peer_call(n->peer, leader, NODE_PATH_FORWARD, buf, os.bytes_written,
                             (uint32_t)n->commit_timeout_ms, on_read_index_reply, w)
                 : MOM_ERR_INVALID;
        if (rc == MOM_OK)
            w->call_out = true;
    }
    if (rc != MOM_OK) {
        w->ctx = NULL;
        w->done = true;
        reads_progress(n, false);
        return MOM_ERR_UNAVAILABLE;
    }
    kick(n);
    return MOM_OK;
}

uint32_t node_members(const struct node *n)
{
    return n->n_members;
}

/* ---- the Ready pump ---- */

static void storage_failed(struct node *n, int rc)
{
    log_error("log write failed (%s); refusing writes until restart", mom_strerror(rc));
    n->writable = false;
    fail_pending_from(n, 0, rc == MOM_ERR_NOSPACE ? rc : MOM_ERR_UNAVAILABLE);
}

/* Writes and syncs everything buffered on the loop thread (rare: hard state
 * changes, start-up). */
static int sync_now(struct node *n)
{
    if (wal_pending_bytes(n->wal)) {
        int rc = wal_write(n->wal);
        if (rc != MOM_OK)
            return rc;
        n->stats.batches++;
    }
    if (n->sync != NODE_SYNC_NEVER && fdatasync(wal_sync_fd(n->wal)) != 0)
        return mom_err_from_errno(errno);
    n->durable_index = n->last_index;
    return MOM_OK;
}

static int propose_local(struct node *n, const uint8_t *data, size_t len, void *ctx,
                         struct peer_request *fwd);
static uint64_t scan_snapshots(const char *dir, bool prune, uint64_t keep_index);

/* Follower: the received snapshot (snapshot.recv) becomes the state. */
static int install_snapshot(struct node *n, uint64_t index, uint64_t term)
{
    char recv[1200], final[1300];
    snprintf(recv, sizeof recv, "%s/snapshot.recv", n->dir);
    snapshot_path(n, index, term, final, sizeof final);
    if (n->snap_pid) {
        kill(n->snap_pid, SIGKILL); /* its result would be older */
        while (waitpid(n->snap_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        n->snap_pid = 0;
        if (n->snap_ev)
            event_free(n->snap_ev);
        n->snap_ev = NULL;
        if (n->snap_pipe >= 0)
            close(n->snap_pipe);
        n->snap_pipe = -1;
    }
    if (rename(recv, final) != 0)
        return mom_err_from_errno(errno);
    int rc = fs_fsync_dir(n->dir);
    if (rc != MOM_OK)
        return rc;
    FILE *f = fopen(final, "rb");
    if (!f)
        return mom_err_from_errno(errno);
    rc = n->cb.reset ? n->cb.reset(n->arg) : MOM_ERR_INVALID;
    if (rc == MOM_OK)
        rc = n->cb.snapshot_read(n->arg, f);
    fclose(f);
    if (rc != MOM_OK) {
        log_error("cannot load the snapshot received from the leader: %s", mom_strerror(rc));
        return rc;
    }
    rc = wal_reset(n->wal);
    if (rc != MOM_OK)
        return rc;
    fail_pending_from(n, 0, MOM_ERR_UNAVAILABLE);
    n->snapshot_index = n->applied_index = n->last_index = n->durable_index = index;
    n->snapshot_term = term;
    scan_snapshots(n->dir, true, index);
    log_info("installed snapshot %" PRIu64 " (term %" PRIu64 ") from the leader", index, term);
    return MOM_OK;
}

static void run_deferred(struct node *n)
{
    for (size_t i = 0; i < n->ndeferred; i++) {
        struct deferred d = n->deferred[i];
        int rc = n->writable && raft_role(n->raft) == RAFT_LEADER
                     ? propose_local(n, d.data, d.len, d.ctx, NULL)
                     : MOM_ERR_UNAVAILABLE;
        free(d.data);
        if (rc != MOM_OK && d.ctx)
            n->cb.fail(n->arg, d.ctx, MOM_ERR_UNAVAILABLE);
    }
    n->ndeferred = 0;
}

static void handle_ready(struct node *n, struct raft_ready *rd)
{
    bool dirty = false, durable_now = false;
    if (rd->install_snapshot && n->writable) {
        int rc = install_snapshot(n, rd->snapshot.index, rd->snapshot.term);
        if (rc != MOM_OK)
            storage_failed(n, rc);
    }
    if (rd->n_entries && n->writable) {
        uint64_t first = rd->entries[0].index;
        int rc = MOM_OK;
        if (first <= n->last_index) {
            rc = wal_truncate_after(n->wal, first - 1);
            n->last_index = first - 1;
            if (n->durable_index > n->last_index)
                n->durable_index = n->last_index;
        }
        for (size_t i = 0; rc == MOM_OK && i < rd->n_entries; i++) {
            const struct raft_entry *e = &rd->entries[i];
            rc = wal_append(n->wal, e->term, e->index, e->data, e->len);
            if (rc == MOM_OK)
                n->last_index = e->index;
        }
        if (rc != MOM_OK)
            storage_failed(n, rc);
        dirty = true;
    }
    if (rd->hard_state_changed && n->writable) {
        int rc = sync_now(n);
        if (rc == MOM_OK)
            rc = hard_state_write(n, &rd->hard_state);
        if (rc != MOM_OK)
            storage_failed(n, rc);
        else
            durable_now = true;
    }
    bool waiting = dirty || (n->need_id > n->persisted_id && !durable_now);
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const struct raft_msg *m = &rd->msgs[i];
        bool now = !waiting || (rd->send_early && !rd->hard_state_changed);
        if (!n->writable)
            continue; /* a node that cannot persist says nothing */
        if (queue_msg(n, rd->id, m, now) != MOM_OK)
            log_warn("cannot encode a raft message to %u", m->to);
    }
    n->in_ready = true;
    for (size_t i = 0; i < rd->n_committed; i++)
        apply_entry(n, &rd->committed[i]);
    handle_read_states(n, rd);
    uint64_t id = rd->id;
    raft_advance(n->raft, rd);
    n->in_ready = false;
    run_deferred(n);
    reads_progress(n, false);
    if (!n->writable)
        return;
    if (durable_now && !dirty)
        mark_persisted(n, id);
    else if (waiting)
        n->need_id = id;
    else
        mark_persisted(n, id);
    if (!n->snap_pid && !n->startup && snapshot_due(n))
        take_snapshot(n);
}

/* Hands buffered entries to the file and the sync. */
static void flush(struct node *n)
{
    if (!n->writable)
        return;
    if (wal_pending_bytes(n->wal)) {
        int rc = wal_write(n->wal);
        if (rc != MOM_OK) {
            storage_failed(n, rc);
            return;
        }
        n->stats.batches++;
    }
    if (n->need_id <= n->persisted_id)
        return;
    if (n->startup) {
        int rc = sync_now(n);
        if (rc != MOM_OK) {
            storage_failed(n, rc);
            return;
        }
        mark_persisted(n, n->need_id);
    } else if (n->sync != NODE_SYNC_ALWAYS) {
        n->durable_index = n->last_index;
        mark_persisted(n, n->need_id);
    } else if (!syncer_busy(n->syncer)) {
        n->submitted_id = n->need_id;
        n->durable_index = n->last_index; /* as of the sync's completion */
        syncer_submit(n->syncer, wal_sync_fd(n->wal), n->need_id);
    }
}

static void pump(struct node *n)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        struct raft_ready rd;
        bool any = false;
        while (raft_ready(n->raft, &rd)) {
            handle_ready(n, &rd);
            any = true;
        }
        uint64_t before = n->persisted_id;
        flush(n);
        if (!any && n->persisted_id == before)
            break;
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    n->kicked = false;
    pump(n);
}

static void kick(struct node *n)
{
    if (!n->kicked && n->kick_ev) {
        n->kicked = true;
        event_active(n->kick_ev, EV_WRITE, 0);
    }
}

static void on_sync_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    uint64_t cookie, micros;
    int result;
    if (!syncer_collect(n->syncer, &cookie, &result, &micros))
        return;
    n->stats.syncs++;
    n->stats.sync_micros_total += micros;
    if (result != MOM_OK) {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages: nothing after the last good sync can be trusted. */
        storage_failed(n, MOM_ERR_UNAVAILABLE);
        return;
    }
    mark_persisted(n, cookie);
    pump(n);
}

static void on_everysec(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    if (!syncer_busy(n->syncer) && n->writable)
        syncer_submit(n->syncer, wal_sync_fd(n->wal), 0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    raft_tick(n->raft);
    uint64_t now = clock_mono_ms();
    for (uint32_t i = 1; i <= n->n_members; i++) {
        struct member *mb = &n->mem[i];
        if (mb->snap_failed && now >= mb->snap_retry_at) {
            mb->snap_failed = false;
            raft_report_snapshot(n->raft, mb->id, false);
        }
    }
    struct pending *p;
    while ((p = ring_front(n)) && p->deadline <= now) {
        struct pending cur = *p;
        ring_pop(n);
        fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    reads_progress(n, true);
    kick(n);
}

/* ---- proposals ---- */

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
    if (status != GRPC_OK) {
        log_debug("forward failed: %s %s", grpcmsg_status_name(status), message ? message : "");
        n->cb.fail(n->arg, ctx, MOM_ERR_UNAVAILABLE);
        return;
    }
    mom_v1_ForwardResponse resp = mom_v1_ForwardResponse_init_zero;
    struct owned_blob body = {0};
    resp.body.funcs.decode = decode_blob;
    resp.body.arg = &body;
    pb_istream_t is = pb_istream_from_buffer(reply, len);
    if (!pb_decode(&is, mom_v1_ForwardResponse_fields, &resp) || resp.status == 0)
        n->cb.fail(n->arg, ctx, MOM_ERR_UNAVAILABLE);
    else
        n->cb.forwarded(n->arg, ctx, (int)resp.status, body.data, body.len);
    free(body.data);
}

static int forward(struct node *n, uint32_t leader, const uint8_t *data, size_t len, void *ctx)
{
    mom_v1_ForwardRequest req = mom_v1_ForwardRequest_init_zero;
    req.group_id = n->group_id;
    req.from = n->id;
    struct blob b = {data, len};
    req.command.funcs.encode = encode_blob;
    req.command.arg = &b;
    size_t size = 0;
    if (!pb_get_encoded_size(&size, mom_v1_ForwardRequest_fields, &req))
        return MOM_ERR_INVALID;
    uint8_t *buf = malloc(size ? size : 1);
    struct fwd_call *fc = calloc(1, sizeof *fc);
    if (!buf || !fc) {
        free(buf);
        free(fc);
        return MOM_ERR_UNAVAILABLE;
    }
    pb_ostream_t os = pb_ostream_from_buffer(buf, size);
    int rc = pb_encode(&os, mom_v1_ForwardRequest_fields, &req) ? MOM_OK : MOM_ERR_INVALID;
    fc->n = n;
    fc->ctx = ctx;
    if (rc == MOM_OK)
        rc = peer_call(n->peer, leader, NODE_PATH_FORWARD, buf, os.bytes_written,
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

/* Leader: appends data; the answer goes to ctx or to the Forward call. */
static int propose_local(struct node *n, const uint8_t *data, size_t len, void *ctx,
                         struct peer_request *fwd)
{
    uint64_t index, term;
    int rc = raft_propose(n->raft, data, len, &index, &term);
    if (rc != MOM_OK)
        return rc == MOM_ERR_NOMEM ? rc : MOM_ERR_UNAVAILABLE;
    fail_pending_from(n, index, MOM_ERR_UNAVAILABLE);
    rc = ring_push(n,
                   (struct pending){index, term, ctx, fwd, clock_mono_ms() + n->commit_timeout_ms});
    if (rc != MOM_OK)
        return rc; /* the entry may still commit; nobody waits for it */
    kick(n);
    return MOM_OK;
}

int node_propose(struct node *n, uint8_t *data, size_t len, void *ctx)
{
    int rc;
    if (!n->writable) {
        rc = MOM_ERR_UNAVAILABLE;
    } else if (raft_role(n->raft) == RAFT_LEADER && n->in_ready) {
        if (n->ndeferred == n->deferred_cap) {
            size_t cap = n->deferred_cap ? n->deferred_cap * 2 : 16;
            struct deferred *a = realloc(n->deferred, cap * sizeof *a);
            if (!a) {
                free(data);
                return MOM_ERR_UNAVAILABLE;
            }
            n->deferred = a;
            n->deferred_cap = cap;
        }
        n->deferred[n->ndeferred++] = (struct deferred){data, len, ctx};
        return MOM_OK;
    } else if (raft_role(n->raft) == RAFT_LEADER) {
        rc = propose_local(n, data, len, ctx, NULL);
    } else {
        uint32_t leader = raft_leader(n->raft);
        rc = leader == RAFT_NONE || !n->peer ? MOM_ERR_UNAVAILABLE
                                             : forward(n, leader, data, len, ctx);
    }
    free(data);
    return rc == MOM_OK ? MOM_OK : MOM_ERR_UNAVAILABLE;
}

/* ---- incoming peer calls ---- */

/* Follower: one chunk of the leader's snapshot into snapshot.recv. Returns
 * MOM_OK, or an error for the call. */
static int snap_recv_chunk(struct node *n, uint64_t offset, const struct owned_blob *chunk,
                           bool done)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/snapshot.recv", n->dir);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0);
    int fd = open(path, flags, 0600);
    if (fd < 0)
        return mom_err_from_errno(errno);
    struct stat st;
    int rc = fstat(fd, &st) == 0 && (uint64_t)st.st_size == offset ? MOM_OK : MOM_ERR_INVALID;
    if (rc == MOM_OK && chunk->len &&
        pwrite(fd, chunk->data, chunk->len, (off_t)offset) != (ssize_t)chunk->len)
        rc = mom_err_from_errno(errno);
    if (rc == MOM_OK && done && n->sync != NODE_SYNC_NEVER && fsync(fd) != 0)
        rc = mom_err_from_errno(errno);
    close(fd);
    return rc;
}

static void on_raft_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct node *n = arg;
    struct decoded_msg d;
    int rc = msg_decode(body, len, &d);
    if (rc != MOM_OK || d.m.from != peer_request_from(req)) {
        decoded_cleanup(&d);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "bad RaftMessage", NULL, 0);
        return;
    }
    struct member *mb = member_of(n, d.m.from);
    if (mb)
        member_heard(mb, d.m.incarnation);
    if (n->nheld == n->held_cap) {
        size_t cap = n->held_cap ? n->held_cap * 2 : 64;
        struct held *h = realloc(n->held, cap * sizeof *h);
        if (!h) {
            decoded_cleanup(&d);
            peer_respond(req, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
            return;
        }
        n->held = h;
        n->held_cap = cap;
    }
    if (d.m.type == RAFT_MSG_SNAPSHOT) {
        rc = snap_recv_chunk(n, d.snap_off, &d.snap, d.snap_done);
        if (rc != MOM_OK || !d.snap_done) {
            decoded_cleanup(&d);
            if (rc != MOM_OK)
                peer_respond(req, GRPC_FAILED_PRECONDITION, mom_strerror(rc), NULL, 0);
            else
                peer_respond(req, GRPC_OK, NULL, (const uint8_t *)"", 0);
            return;
        }
    }
    bool answered = d.m.type == RAFT_MSG_TIMEOUT_NOW;
    d.m.cookie = answered ? 0 : ++n->next_cookie;
    rc = raft_step(n->raft, &d.m);
    decoded_cleanup(&d);
    if (rc != MOM_OK) {
        peer_respond(req, GRPC_FAILED_PRECONDITION, mom_strerror(rc), NULL, 0);
    } else if (answered) {
        static const uint8_t empty[1];
        peer_respond(req, GRPC_OK, NULL, empty, 0);
    } else {
        n->held[n->nheld++] = (struct held){n->next_cookie, req};
    }
    kick(n);
}

static void on_forward_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct node *n = arg;
    mom_v1_ForwardRequest in = mom_v1_ForwardRequest_init_zero;
    struct owned_blob cmd = {0};
    in.command.funcs.decode = decode_blob;
    in.command.arg = &cmd;
    pb_istream_t is = pb_istream_from_buffer(body, len);
    if (!pb_decode(&is, mom_v1_ForwardRequest_fields, &in)) {
        free(cmd.data);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "bad ForwardRequest", NULL, 0);
        return;
    }
    if (in.read_index) {
        free(cmd.data);
        struct read_wait *w =
            raft_role(n->raft) == RAFT_LEADER && !n->in_ready ? read_new(n, NULL, req) : NULL;
        if (!w || raft_read_index(n->raft, w->id) != MOM_OK) {
            if (w) {
                w->fwd = NULL;
                w->done = true;
            }
            peer_respond(req, GRPC_UNAVAILABLE, "not the leader", NULL, 0);
            reads_progress(n, false);
            return;
        }
        kick(n);
        return;
    }
    if (!cmd.data || !cmd.len) {
        free(cmd.data);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "empty command", NULL, 0);
        return;
    }
    if (raft_role(n->raft) != RAFT_LEADER || !n->writable) {
        free(cmd.data);
        peer_respond(req, GRPC_UNAVAILABLE, "not the leader", NULL, 0);
        return;
    }
    if (n->cb.restamp) {
        uint8_t *stamped = NULL;
        size_t slen = 0;
        if (n->cb.restamp(n->arg, cmd.data, cmd.len, &stamped, &slen) == MOM_OK) {
            free(cmd.data);
            cmd.data = stamped;
            cmd.len = slen;
        }
    }
    int rc = propose_local(n, cmd.data, cmd.len, NULL, req);
    free(cmd.data);
    if (rc != MOM_OK)
        peer_respond(req, GRPC_UNAVAILABLE, mom_strerror(rc), NULL, 0);
}

/* ---- snapshots ---- */

static bool parse_snapshot_name(const char *name, uint64_t *index, uint64_t *term)
{
    unsigned long long i, t;
    int used = 0;
    if (sscanf(name, "snapshot-%20llu-%20llu.snap%n", &i, &t, &used) != 2 || name[used] != '\0')
        return false;
    *index = i;
    *term = t;
    return true;
}

/* Newest snapshot index in dir (0 when none); removes all older ones when prune. */
static uint64_t scan_snapshots(const char *dir, bool prune, uint64_t keep_index)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t idx, term;
        if (!parse_snapshot_name(e->d_name, &idx, &term))
            continue;
        if (prune && idx < keep_index) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
            continue;
        }
        if (idx > best)
            best = idx;
    }
    closedir(d);
    return best;
}

/* Child side: writes the frozen state to the temp file and syncs it. */
/* The snapshot child's file writes, paced: every SNAPSHOT_WRITEBACK_CHUNK
 * bytes it waits for that chunk's writeback and drops it from the page
 * cache. One fsync of the whole file at the end had the journal flush tens
 * of megabytes at once, and the loop's log fdatasync waited behind it (p99
 * spikes of 20-120 ms under fsync=always); and the cached pages made the
 * next snapshot's unlink of this file take 13-21 ms on the loop. */
#define SNAPSHOT_WRITEBACK_CHUNK (4u << 20)

struct paced_file {
    int fd;
    off_t written, settled;
    int err; /* errno of the first failure */
};

static void paced_settle(struct paced_file *pf)
{
    off_t len = pf->written - pf->settled;
    if (len <= 0)
        return;
    if (sync_file_range(pf->fd, pf->settled, len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
        !pf->err)
        pf->err = errno;
    (void)posix_fadvise(pf->fd, pf->settled, len, POSIX_FADV_DONTNEED);
    pf->settled = pf->written;
}

static ssize_t paced_write(void *cookie, const char *buf, size_t size)
{
    struct paced_file *pf = cookie;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(pf->fd, buf + done, size - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (!pf->err)
                pf->err = errno;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
        pf->written += w;
    }
    if (pf->written - pf->settled >= (off_t)SNAPSHOT_WRITEBACK_CHUNK)
        paced_settle(pf);
    return (ssize_t)done;
}

/* Runs in the forked child: writes tmp, makes it durable. */
static int write_snapshot_file(struct node *n, const char *tmp)
{
    struct paced_file pf = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (pf.fd < 0)
        return mom_err_from_errno(errno);
    cookie_io_functions_t io = {.write = paced_write};
    FILE *f = fopencookie(&pf, "w", io);
    if (!f) {
        int rc = mom_err_from_errno(errno);
        close(pf.fd);
        return rc;
    }
    int rc = n->cb.snapshot_write(n->arg, f);
    if (fclose(f) != 0 && rc == MOM_OK)
        rc = mom_err_from_errno(pf.err ? pf.err : errno);
    if (rc == MOM_OK && pf.err)
        rc = mom_err_from_errno(pf.err);
    if (rc == MOM_OK && fsync(pf.fd) != 0)
        rc = mom_err_from_errno(errno);
    (void)posix_fadvise(pf.fd, 0, 0, POSIX_FADV_DONTNEED);
    if (close(pf.fd) != 0 && rc == MOM_OK)
        rc = mom_err_from_errno(errno);
    return rc;
}

static void snapshot_tmp_path(const struct node *n, char *out, size_t len)
{
    snprintf(out, len, "%s/snapshot.tmp", n->dir);
}

/* Parent side, when the child has exited: the snapshot is durable under
 * its final name; compact the core and the log. */
static void on_snapshot_child(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct node *n = arg;
    char byte;
    if (read(fd, &byte, 1) > 0)
        return; /* the child writes nothing; wait for EOF */
    event_free(n->snap_ev);
    n->snap_ev = NULL;
    close(n->snap_pipe);
    n->snap_pipe = -1;
    int status = 0;
    while (waitpid(n->snap_pid, &status, 0) < 0 && errno == EINTR)
        ;
    n->snap_pid = 0;
    int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? MOM_OK : MOM_ERR_IO;
    if (rc != MOM_OK) {
        char tmp[1200];
        snapshot_tmp_path(n, tmp, sizeof tmp);
        unlink(tmp);
        log_error("snapshot at index %" PRIu64 " failed (child status %d): %s", n->snap_child_index,
                  status, mom_strerror(rc));
        return;
    }
    n->snapshot_index = n->snap_child_index;
    n->snapshot_term = n->snap_child_term;
    if (raft_compact(n->raft, n->snapshot_index) != MOM_OK)
        log_warn("raft_compact(%" PRIu64 ") refused", n->snapshot_index);
    else if (n->release_ev)
        event_active(n->release_ev, EV_WRITE, 0);
    n->stats.snapshots++;
    rc = wal_compact(n->wal, n->snapshot_index);
    if (rc != MOM_OK)
        log_warn("log compaction after snapshot %" PRIu64 " failed: %s", n->snapshot_index,
                 mom_strerror(rc));
    log_info("snapshot written at index %" PRIu64 "; log now %" PRIu64 " bytes", n->snapshot_index,
             wal_disk_bytes(n->wal));
}

/* Snapshots are written by a forked child from its copy-on-write image of
 * the state (as redis BGSAVE does), so the loop never stalls on them. */
static void take_snapshot(struct node *n)
{
    if (n->snap_pid)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        log_error("snapshot: pipe failed: %s", strerror(errno));
        return;
    }
    char tmp[1200], final[1300];
    snapshot_tmp_path(n, tmp, sizeof tmp);
    n->snap_child_index = n->applied_index;
    if (!raft_term_at(n->raft, n->applied_index, &n->snap_child_term))
        n->snap_child_term = 0;
    snapshot_path(n, n->snap_child_index, n->snap_child_term, final, sizeof final);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("snapshot: fork failed: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        /* All of the snapshot's file work happens here, off the loop: the
         * write, its fsync, the rename to its final name, the directory
         * fsync, then deleting the older snapshots (an unlink of a large
         * file took ~10 ms on the loop). The parent only compacts. */
        close(fds[0]);
        int rc = write_snapshot_file(n, tmp);
        if (rc == MOM_OK && rename(tmp, final) != 0)
            rc = mom_err_from_errno(errno);
        if (rc == MOM_OK)
            rc = fs_fsync_dir(n->dir);
        if (rc == MOM_OK)
            scan_snapshots(n->dir, true, n->snap_child_index);
        _exit(rc == MOM_OK ? 0 : 1);
    }
    close(fds[1]);
    n->snap_pid = pid;
    n->snap_pipe = fds[0];
    n->snap_ev = event_new(n->base, fds[0], EV_READ | EV_PERSIST, on_snapshot_child, n);
    if (!n->snap_ev || event_add(n->snap_ev, NULL) != 0) {
        log_error("snapshot: cannot watch the child");
        kill(pid, SIGKILL);
    }
}

/* ---- open / close ---- */

static int replay_one(void *arg, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    struct node *n = arg;
    if (index != n->last_index + 1) {
        log_error("log replay: expected index %" PRIu64 ", found %" PRIu64, n->last_index + 1,
                  index);
        return MOM_ERR_CORRUPT;
    }
    int rc = raft_load_entry(n->raft, term, index, data, len);
    if (rc != MOM_OK) {
        log_error("log replay: entry %" PRIu64 " (term %" PRIu64 ") rejected: %s", index, term,
                  mom_strerror(rc));
        return rc == MOM_ERR_NOMEM ? rc : MOM_ERR_CORRUPT;
    }
    n->last_index = index;
    return MOM_OK;
}

static int load_snapshot(struct node *n)
{
    uint64_t idx = scan_snapshots(n->dir, false, 0);
    if (!idx)
        return MOM_OK;
    DIR *d = opendir(n->dir);
    if (!d)
        return MOM_ERR_IO;
    char path[1400] = "";
    uint64_t term = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t i, t;
        if (parse_snapshot_name(e->d_name, &i, &t) && i == idx) {
            snprintf(path, sizeof path, "%s/%s", n->dir, e->d_name);
            term = t;
        }
    }
    closedir(d);
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("cannot open snapshot %s: %s", path, strerror(errno));
        return MOM_ERR_IO;
    }
    int rc = n->cb.snapshot_read(n->arg, f);
    fclose(f);
    if (rc != MOM_OK) {
        log_error("snapshot %s is unreadable (%s); refusing to start", path, mom_strerror(rc));
        return rc;
    }
    n->snapshot_index = n->applied_index = idx;
    n->snapshot_term = term;
    log_info("loaded snapshot %s", path);
    return MOM_OK;
}

/* Frees the data of compacted entries, RELEASE_SLICE per loop turn. */
#define RELEASE_SLICE 2048

static void on_release(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    if (raft_release(n->raft, RELEASE_SLICE) > 0)
        event_active(n->release_ev, EV_WRITE, 0);
}

static int setup_events(struct node *n)
{
    int rc = syncer_start(&n->syncer);
    if (rc != MOM_OK)
        return rc;
    n->kick_ev = event_new(n->base, -1, 0, on_kick, n);
    n->release_ev = event_new(n->base, -1, 0, on_release, n);
    n->sync_done_ev =
        event_new(n->base, syncer_event_fd(n->syncer), EV_READ | EV_PERSIST, on_sync_done, n);
    n->tick_ev = event_new(n->base, -1, EV_PERSIST, on_tick, n);
    if (!n->kick_ev || !n->release_ev || !n->sync_done_ev || !n->tick_ev)
        return MOM_ERR_NOMEM;
    /* Lowest priority: the pump runs after the turn's client callbacks, so
     * one Ready (one write, one sync) carries the whole turn. */
    int nprio = event_base_get_npriorities(n->base);
    if (nprio > 1) {
        event_priority_set(n->kick_ev, nprio - 1);
        event_priority_set(n->release_ev, nprio - 1);
    }
    event_add(n->sync_done_ev, NULL);
    struct timeval tv = {(time_t)(n->tick_ms / 1000), (suseconds_t)(n->tick_ms % 1000) * 1000};
    if (event_add(n->tick_ev, &tv) != 0)
        return MOM_ERR_NOMEM;
    if (n->sync == NODE_SYNC_EVERYSEC) {
        n->everysec_ev = event_new(n->base, -1, EV_PERSIST, on_everysec, n);
        struct timeval one = {1, 0};
        if (!n->everysec_ev || event_add(n->everysec_ev, &one) != 0)
            return MOM_ERR_NOMEM;
    }
    if (n->peer && n->n_members > 1) {
        rc = peer_register(n->peer, NODE_PATH_RAFT, on_raft_request, n);
        if (rc == MOM_OK)
            rc = peer_register(n->peer, NODE_PATH_FORWARD, on_forward_request, n);
    }
    return rc;
}

int node_open(struct event_base *base, const struct node_config *cfg,
              const struct node_callbacks *cb, void *arg, struct node **out)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        return MOM_ERR_NOMEM;
    n->base = base;
    n->cb = *cb;
    n->arg = arg;
    n->sync = cfg->sync;
    n->snapshot_entries = cfg->snapshot_entries ? cfg->snapshot_entries : 100000;
    n->snapshot_bytes = cfg->snapshot_bytes ? cfg->snapshot_bytes : NODE_SNAPSHOT_BYTES_DEFAULT;
    n->writable = true;
    n->snap_pipe = -1;
    n->group_id = cfg->group_id;
    n->n_members = cfg->n_members > 1 ? cfg->n_members : 1;
    n->id = n->n_members > 1 ? cfg->node_id : 1;
    n->peer = n->n_members > 1 ? cfg->peer : NULL;
    n->tick_ms = cfg->tick_ms ? cfg->tick_ms : 100;
    n->commit_timeout_ms = cfg->commit_timeout_ms ? cfg->commit_timeout_ms : 5000;
    int rc = MOM_ERR_INVALID;
    if (n->n_members > NODE_MAX_MEMBERS || n->id < 1 || n->id > n->n_members ||
        (n->n_members > 1 && !n->peer)) {
        bool member = n->id >= 1 && n->id <= n->n_members;
        log_error(member ? "node %u: a cluster of %u needs the peer channel"
                         : "node %u is not one of members 1..%u",
                  n->id, n->n_members);
        goto fail;
    }
    for (uint32_t i = 1; i <= n->n_members; i++)
        n->mem[i] = (struct member){.n = n, .id = i, .snap_fd = -1};
    snprintf(n->dir, sizeof n->dir, "%s/group-%u", cfg->data_dir, cfg->group_id);
    snprintf(n->log_dir, sizeof n->log_dir, "%s/log", n->dir);
    rc = fs_mkdir_p(n->log_dir);
    if (rc != MOM_OK) {
        log_error("cannot create %s: %s", n->log_dir, strerror(errno));
        goto fail;
    }
    char stale_tmp[1200];
    snprintf(stale_tmp, sizeof stale_tmp, "%s/snapshot.tmp", n->dir);
    unlink(stale_tmp); /* a snapshot interrupted by a crash */
    rc = load_snapshot(n);
    if (rc != MOM_OK)
        goto fail;
    struct wal_options wopt = {.segment_bytes = cfg->segment_bytes};
    struct wal_open_info info;
    rc = wal_open(n->log_dir, &wopt, &n->wal, &info);
    if (rc != MOM_OK) {
        log_error("cannot open the log in %s: %s", n->log_dir, mom_strerror(rc));
        goto fail;
    }
    if (info.last_index && info.last_index < n->snapshot_index) {
        log_warn("log ends at %" PRIu64 " before snapshot %" PRIu64 "; starting a new log",
                 info.last_index, n->snapshot_index);
        rc = wal_reset(n->wal);
        if (rc != MOM_OK)
            goto fail;
    } else if (info.first_index > n->snapshot_index + 1) {
        log_error("log starts at %" PRIu64 " but the snapshot covers only up to %" PRIu64
                  "; refusing to start with a hole",
                  info.first_index, n->snapshot_index);
        rc = MOM_ERR_CORRUPT;
        goto fail;
    }

    /* Hard state and incarnation. Storage without a raft-state file, log or
     * snapshot is fresh: it gets a new incarnation and, in a cluster that
     * already exists (no bootstrap flag), abstains until caught up. A cut
     * log tail counts as lost storage too. */
    struct raft_hard_state hs = {0};
    bool found = false;
    rc = hard_state_read(n, &hs, &found);
    if (rc != MOM_OK) {
        log_error("%s/raft-state is unreadable: %s; refusing to start", n->dir, mom_strerror(rc));
        goto fail;
    }
    bool fresh = !found && info.last_index == 0 && n->snapshot_index == 0;
    bool lost_tail = info.truncated_bytes > 0 && n->n_members > 1;
    if (!found || lost_tail) {
        n->incarnation = clock_wall_ms() * 1000u + 999u;
        if (n->n_members > 1 && ((fresh && !cfg->bootstrap) || lost_tail)) {
            hs.abstain = true;
            log_warn("%s storage: abstaining from votes until caught up with the cluster",
                     fresh ? "fresh" : "damaged");
        }
        rc = hard_state_write(n, &hs);
        if (rc != MOM_OK) {
            log_error("cannot write %s/raft-state: %s", n->dir, mom_strerror(rc));
            goto fail;
        }
    }
    struct raft_config rcfg = {
        .group_id = cfg->group_id,
        .id = n->id,
        .n_nodes = n->n_members,
        .election_ticks = cfg->election_ticks,
        .seed = n->incarnation ^ ((uint64_t)n->id << 32) ^ (uint64_t)getpid(),
        .incarnation = n->incarnation,
    };
    struct raft_snapshot_meta snap = {n->snapshot_index, n->snapshot_term};
    rc = raft_new(&rcfg, &hs, &snap, &n->raft);
    if (rc != MOM_OK) {
        log_error("cannot start raft: %s", mom_strerror(rc));
        goto fail;
    }
    n->last_index = n->snapshot_index;
    rc = wal_replay(n->wal, n->snapshot_index + 1, replay_one, n);
    if (rc != MOM_OK) {
        log_error("log replay failed: %s", mom_strerror(rc));
        goto fail;
    }
    n->durable_index = n->last_index;
    rc = setup_events(n);
    if (rc != MOM_OK)
        goto fail;
    if (n->n_members == 1) {
        /* A cluster of one elects itself and applies its log before serving. */
        n->startup = true;
        rc = raft_campaign(n->raft);
        if (rc == MOM_OK)
            pump(n);
        n->startup = false;
        if (rc != MOM_OK || !n->writable || raft_role(n->raft) != RAFT_LEADER) {
            log_error("cannot recover the log: %s",
                      rc != MOM_OK   ? mom_strerror(rc)
                      : !n->writable ? "the first write after start-up failed (see above)"
                                     : "the single member did not become leader");
            rc = rc != MOM_OK ? rc : MOM_ERR_IO;
            goto fail;
        }
    }
    log_info("recovered: log %" PRIu64 "..%" PRIu64 " (snapshot %" PRIu64 "), applied %" PRIu64
             ", term %" PRIu64 ", %u member(s), incarnation %" PRIu64 "%s",
             n->snapshot_index + 1, n->last_index, n->snapshot_index, n->applied_index,
             raft_term(n->raft), n->n_members, n->incarnation,
             raft_abstaining(n->raft) ? ", abstaining" : "");
    *out = n;
    return MOM_OK;
fail:
    node_close(n);
    return rc;
}

void node_close(struct node *n)
{
    if (!n)
        return;
    if (n->wal && n->writable && wal_pending_bytes(n->wal) && n->syncer &&
        !syncer_busy(n->syncer)) {
        /* Best effort: written but unanswered entries are not acknowledged. */
        (void)wal_write(n->wal);
    }
    if (n->snap_pid) {
        /* An unfinished snapshot is abandoned; the log still holds it all. */
        kill(n->snap_pid, SIGKILL);
        while (waitpid(n->snap_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        char tmp[1200];
        snapshot_tmp_path(n, tmp, sizeof tmp);
        unlink(tmp);
    }
    if (n->snap_ev)
        event_free(n->snap_ev);
    if (n->snap_pipe >= 0)
        close(n->snap_pipe);
    syncer_stop(n->syncer);
    n->syncer = NULL;
    if (n->wal && n->sync != NODE_SYNC_NEVER)
        (void)fdatasync(wal_sync_fd(n->wal));
    fail_pending_from(n, 0, MOM_ERR_CLOSED);
    for (size_t i = 0; i < n->nheld; i++)
        peer_respond(n->held[i].req, GRPC_UNAVAILABLE, "shutting down", NULL, 0);
    while (n->fwd_calls) {
        struct fwd_call *fc = n->fwd_calls;
        n->fwd_calls = fc->next;
        n->cb.fail(n->arg, fc->ctx, MOM_ERR_CLOSED);
        free(fc);
    }
    for (size_t i = 0; i < n->nout; i++)
        free(n->out[i].buf);
    for (uint32_t i = 1; i <= n->n_members && i <= NODE_MAX_MEMBERS; i++)
        if (n->mem[i].n == n && n->mem[i].snap_fd >= 0)
            close(n->mem[i].snap_fd);
    for (size_t i = 0; i < n->ndeferred; i++) {
        free(n->deferred[i].data);
        if (n->deferred[i].ctx)
            n->cb.fail(n->arg, n->deferred[i].ctx, MOM_ERR_CLOSED);
    }
    free(n->deferred);
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
    if (n->kick_ev)
        event_free(n->kick_ev);
    if (n->release_ev)
        event_free(n->release_ev);
    if (n->sync_done_ev)
        event_free(n->sync_done_ev);
    if (n->everysec_ev)
        event_free(n->everysec_ev);
    if (n->tick_ev)
        event_free(n->tick_ev);
    wal_close(n->wal);
    raft_free(n->raft);
    free(n->ring);
    free(n->held);
    free(n->out);
    free(n);
}

void node_transfer_leadership(struct node *n, uint32_t max_ms)
{
    if (!n || n->n_members < 2 || raft_role(n->raft) != RAFT_LEADER)
        return;
    uint32_t best = 0;
    uint64_t best_match = 0;
    for (uint32_t i = 1; i <= n->n_members; i++) {
        if (i != n->id && n->mem[i].match >= best_match && n->mem[i].last_contact) {
            best = i;
            best_match = n->mem[i].match;
        }
    }
    if (!best || raft_transfer_leadership(n->raft, best) != MOM_OK)
        return;
    log_info("handing leadership to member %u", best);
    kick(n);
    uint64_t end = clock_mono_ms() + max_ms;
    while (clock_mono_ms() < end && raft_role(n->raft) == RAFT_LEADER) {
        struct timeval tv = {0, 20000};
        event_base_loopexit(n->base, &tv);
        event_base_dispatch(n->base);
    }
}

bool node_writable(const struct node *n)
{
    return n->writable;
}
bool node_is_leader(const struct node *n)
{
    return raft_role(n->raft) == RAFT_LEADER;
}
bool node_ready(const struct node *n)
{
    /* The commit index is known to be current once it holds an entry of the
     * current term (the leader's no-op, then everything after). */
    uint64_t commit = raft_commit_index(n->raft), term = 0;
    return n->writable && raft_leader(n->raft) != RAFT_NONE &&
           raft_term_at(n->raft, commit, &term) && term == raft_term(n->raft) &&
           n->applied_index >= commit;
}
const char *node_role_name(const struct node *n)
{
    return raft_role_name(raft_role(n->raft));
}
uint32_t node_leader(const struct node *n)
{
    return raft_leader(n->raft);
}
uint32_t node_id(const struct node *n)
{
    return n->id;
}
bool node_abstaining(const struct node *n)
{
    return raft_abstaining(n->raft);
}
uint64_t node_commit_index(const struct node *n)
{
    return raft_commit_index(n->raft);
}
uint64_t node_applied_index(const struct node *n)
{
    return n->applied_index;
}
uint64_t node_term(const struct node *n)
{
    return raft_term(n->raft);
}

uint64_t node_member_match(const struct node *n, uint32_t id)
{
    if (id == n->id)
        return n->durable_index;
    return id >= 1 && id <= n->n_members ? n->mem[id].match : 0;
}

uint64_t node_member_contact_ms(const struct node *n, uint32_t id)
{
    if (id == n->id)
        return 0;
    if (id < 1 || id > n->n_members || !n->mem[id].last_contact)
        return UINT64_MAX;
    return clock_mono_ms() - n->mem[id].last_contact;
}

void node_get_stats(const struct node *n, struct node_stats *out)
{
    *out = n->stats;
    out->log_bytes = n->wal ? wal_disk_bytes(n->wal) : 0;
}
