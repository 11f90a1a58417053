/* Internal layout of the replication node (replication/node.h), shared by
 * its parts:
 *   node.c          the Ready pump, group commit, the Raft RPC, proposals,
 *                   hard state, open and close;
 *   node_wire.c     RaftMessage and Forward encode/decode (pure, node_wire.h);
 *   node_snapshot.c taking (forked child, paced writer, reaper), loading and
 *                   installing snapshots, and the chunk stream both ways;
 *   node_read.c     read barriers (ReadIndex, local and forwarded);
 *   node_forward.c  both sides of the Forward RPC for proposals;
 *   node_cluster.c  MOM_PEERS parsed once, the peer channel's set-up, Ping
 *                   health and node_status (node_open_cluster);
 *   node_repair.c   damaged storage at start-up: moved aside or refused.
 * Nothing outside replication/node*.c includes this header. Everything runs
 * on the loop thread except the snapshot child (a forked process that only
 * writes files) and the syncer's fdatasync.
 *
 * Invariants:
 * - persisted_id <= need_id; messages of a Ready wait in `out` until its id
 *   is persisted (raft.h's durability rule), except send_early ones.
 * - ring holds the leader's proposals in index order, at most one per index.
 * - snap_pid != 0 exactly while a snapshot child runs; snap_ev/snap_pipe
 *   watch it.
 * - A member streams at most one snapshot (snap_fd >= 0 while it does).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_NODE_INTERNAL_H
#define MOM_REPLICATION_NODE_INTERNAL_H

#include "replication/node.h"
#include "replication/node_wire.h"
#include "replication/peer.h"
#include "replication/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NODE_PATH_RAFT "/mom.v1.Peer/Raft"
#define NODE_PATH_FORWARD "/mom.v1.Peer/Forward"
#define NODE_MAX_MEMBERS 64u
#define NODE_SNAP_CHUNK (1u << 20) /* bytes per InstallSnapshot call */

struct wal;
struct syncer;
struct event;
struct node_cluster;

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
    uint64_t last_contact;   /* monotonic ms, 0 = never */
    uint64_t incarnation;    /* highest seen; a new one resets match */
    uint64_t foreign_logged; /* monotonic ms of the last "another cluster" line, 0 = never */
    uint64_t refused_logged; /* monotonic ms of the last "refuses this node" line, 0 = never */
    /* InstallSnapshot stream to this member (leader side). */
    int snap_fd; /* -1 = none */
    uint64_t snap_off, snap_size, snap_index, snap_term;
    uint64_t snap_retry_at; /* a failed stream is reported at this tick time */
    bool snap_failed;
};

/* A proposal made from inside apply (a woken long poll), proposed after
 * raft_advance. */
struct deferred {
    uint8_t *data;
    size_t len;
    void *ctx;
};

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
    struct event *kick_deadline_ev; /* runs the pump if kick_ev was passed over */
    struct event *release_ev;       /* frees compacted entries a slice per turn */
    struct event *sync_done_ev;
    struct event *everysec_ev;
    struct event *tick_ev;
    bool kicked;
    /* leadership as of the last pump (node_leadership_changed) */
    bool was_leader;
    uint64_t seen_term;
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

    struct deferred *deferred;
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
    uint64_t snap_started_us; /* when the child was forked (metrics) */
    uint64_t snap_child_term;
    bool writable;
    struct node_stats stats;
    struct node_cluster *cluster; /* node_open_cluster's channel and health; else NULL */
};

/* ---- node.c ---- */
/* Schedules the pump for the end of this loop turn. */
void node_kick(struct node *n);
/* Fails every pending proposal with index >= from (0: all). */
void node_fail_pending_from(struct node *n, uint64_t from, int err);
/* Leader: appends data (copied); the answer goes to ctx or to the Forward
 * call fwd. Returns MOM_OK, MOM_ERR_NOMEM or MOM_ERR_UNAVAILABLE. */
int node_propose_local(struct node *n, const uint8_t *data, size_t len, void *ctx,
                       struct peer_request *fwd);

/* ---- node_repair.c ---- */
/* node_open found the storage damaged: in a cluster of three or more, moves
 * dir aside (dir.damaged-<ms>), recreates it empty and empties the
 * application (cb.reset); MOM_OK means start as lost storage. Otherwise
 * logs the refusal with the repair step and returns MOM_ERR_CORRUPT. */
int node_storage_set_aside(struct node *n);

/* ---- node_snapshot.c ---- */
/* Whether applied entries (or the bytes the core holds) call for a snapshot. */
bool node_snapshot_due(const struct node *n);
/* Starts a forked child writing the state at applied_index; no-op while one
 * runs. Failures are logged (the log still holds everything). */
void node_snapshot_take(struct node *n);
/* node_open: removes a crash's snapshot.tmp and loads the newest snapshot
 * through cb.snapshot_read. Returns MOM_OK, MOM_ERR_IO or the reader's error. */
int node_snapshot_load(struct node *n);
/* Follower: snapshot.recv becomes snapshot-<index>-<term>.snap and the
 * state; the log restarts after it. Returns MOM_OK or an error. */
int node_snapshot_install(struct node *n, uint64_t index, uint64_t term);
/* Leader: starts streaming the current snapshot to mb (one stream each). */
void node_snapshot_send(struct node *n, struct member *mb);
/* Follower: writes one chunk into snapshot.recv (offset must be its size).
 * Returns MOM_OK, MOM_ERR_INVALID (out of order) or an I/O error. */
int node_snapshot_recv_chunk(struct node *n, uint64_t offset, const uint8_t *data, size_t len,
                             bool done);
/* On a tick: reports streams that failed a second ago to the core. */
void node_snapshot_tick(struct node *n, uint64_t now);
/* node_close: kills a running child, closes streams. */
void node_snapshot_close(struct node *n);

/* ---- node_read.c ---- */
/* Answers the barriers that can be answered; with expire, fails the ones
 * past their deadline. */
void node_read_progress(struct node *n, bool expire);
/* Notes the ReadIndex results of a Ready. */
void node_read_states(struct node *n, const struct raft_ready *rd);
/* Leader: a follower's Forward{read_index}; answers req now or later. */
void node_read_forwarded(struct node *n, struct peer_request *req);
/* node_close: fails every barrier with MOM_ERR_CLOSED. */
void node_read_close(struct node *n);
/* Follower: fails the barriers still waiting for a leader's answer
 * (the leader they asked may never answer). */
void node_read_fail_calls(struct node *n);

/* ---- node_forward.c ---- */
/* Follower: sends the Command to the leader; ctx gets forwarded or fail.
 * Returns MOM_OK or MOM_ERR_UNAVAILABLE (ctx not kept). */
int node_forward(struct node *n, uint32_t leader, const uint8_t *data, size_t len, void *ctx);
/* Leader: answers a follower's Forward call with what apply produced. */
void node_forward_answer(struct node *n, struct peer_request *fwd, uint64_t index,
                         const struct node_reply *rr);
/* The Forward RPC handler (registered by node.c). */
void node_forward_on_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg);
/* node_close: fails the calls still waiting for the leader. */
void node_forward_close(struct node *n);
/* Follower: fails the forwarded proposals still waiting for their leader's
 * answer with MOM_ERR_UNAVAILABLE (the outcome is unknown); a late answer
 * is dropped. */
void node_forward_fail_all(struct node *n);

/* ---- node_cluster.c ---- */
/* Frees the health table and the peer channel (GOAWAY). Accepts NULL. */
void node_cluster_free(struct node_cluster *c);

#endif
