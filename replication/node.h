/* The replication node: the Raft glue on the loop (docs/architecture.md). It
 * drives the pure core (raft.h) with ticks, peer messages over the peer
 * channel and proposed Commands, makes log entries durable in the
 * write-ahead log with group commit (one write and one fdatasync per batch, the
 * sync on the I/O helper thread), persists the hard state and storage
 * incarnation, and hands committed entries, in index order, to the
 * application's apply callback. Followers forward proposals to the leader
 * (Forward RPC) and get back the leader's answer. It also owns snapshot
 * files (write temp, fsync, rename, fsync dir) and log compaction. A single
 * node is a cluster of one: it commits after its own durable append. Opened
 * with node_open_cluster it also owns the cluster view: the membership
 * parsed from MOM_PEERS, the peer channel, Ping health and node_status, the
 * one struct GET /v1/cluster renders; the broker needs nothing else from
 * replication/. Runs on the loop thread; reports back through struct
 * node_callbacks. Its parts share replication/node_internal.h.
 *
 * Event-base priority: the node's pump (the Ready handler that writes one
 * batch and starts one fdatasync per loop turn) and its memory release run
 * at the base's lowest priority, event_base_get_npriorities(base) - 1, so
 * that they run after every client callback of the turn. Give the base at
 * least 2 priorities (event_base_priority_init before node_open; momd uses
 * 3) and register client events at a higher one (a lower number, e.g. the
 * default npriorities / 2). With a single priority it still works, but a
 * batch may close before the turn's clients have proposed. Because a lower
 * priority runs only when no higher one is active, a kick also arms a 1 ms
 * timer at priority 0 that runs the pump if client input kept it waiting
 * (a flood of always-ready sockets would otherwise starve every commit).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_NODE_H
#define MOM_REPLICATION_NODE_H

#include "common/histogram.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct node;
struct peer;

/* The answer a forwarded proposal gets: filled by apply (body malloc'd, the
 * node frees it). */
struct node_reply {
    int status;
    uint8_t *body;
    size_t len;
};

enum node_sync { NODE_SYNC_ALWAYS, NODE_SYNC_EVERYSEC, NODE_SYNC_NEVER };

struct node_callbacks {
    /* A committed entry, in order. ctx is the proposer's context when this
     * node proposed it in this process, else NULL (replay, other proposers).
     * `remote` is non-NULL when another node's client waits for this entry:
     * apply then fills it with the HTTP answer. */
    void (*apply)(void *arg, uint64_t index, const uint8_t *data, size_t len, void *ctx,
                  struct node_reply *remote);
    /* A proposal that will never be applied here or whose fate is unknown:
     * err is a MOM_ERR_* code (MOM_ERR_NOSPACE, MOM_ERR_IO, MOM_ERR_UNAVAILABLE
     * for no leader / commit timeout / lost leadership, MOM_ERR_CLOSED). */
    void (*fail)(void *arg, void *ctx, int err);
    /* A proposal this follower forwarded was applied by the leader at log
     * index `index`, which answered with this HTTP status and body (valid
     * during the call). This node may not have applied index yet. */
    void (*forwarded)(void *arg, void *ctx, int status, const uint8_t *body, size_t len,
                      uint64_t index);
    /* Writes the application state (which has applied exactly `index`) to f.
     * Returns MOM_OK or an error. */
    int (*snapshot_write)(void *arg, FILE *f);
    /* Loads a snapshot into the (empty) application state. */
    int (*snapshot_read)(void *arg, FILE *f);
    /* Empties the application state (before a snapshot received from the
     * leader is loaded). Returns MOM_OK or MOM_ERR_NOMEM. */
    int (*reset)(void *arg);
    /* A read barrier (node_read_barrier) passed (err MOM_OK: the local state
     * now reflects every write committed before the barrier) or failed
     * (MOM_ERR_UNAVAILABLE: no leader confirmed in time; MOM_ERR_CLOSED). */
    void (*read_ready)(void *arg, void *ctx, int err);
    /* Optional, leader: re-encodes a Command a follower forwarded with this
     * node's time stamp (the leader stamps every Command). *out is malloc'd. */
    int (*restamp)(void *arg, const uint8_t *data, size_t len, uint8_t **out, size_t *outlen);
};

#define NODE_SNAPSHOT_BYTES_DEFAULT (64ull << 20)
#define NODE_SNAPSHOT_MIN_ENTRIES 16 /* applied since the last snapshot, for the bytes rule */

struct node_config {
    const char *data_dir; /* the group's files live in data_dir/group-<id>/ */
    uint32_t group_id;
    enum node_sync sync;
    uint64_t snapshot_entries;  /* entries between snapshots (0 = 100000) */
    uint64_t snapshot_bytes;    /* or entry bytes held in memory (0 = default) */
    uint64_t segment_bytes;     /* WAL segment size (0 = default) */
    uint32_t node_id;           /* this member's id (1..n_members); ignored alone */
    uint32_t n_members;         /* members are ids 1..n_members; 0 or 1 = alone */
    struct peer *peer;          /* the peer channel (NULL when alone) */
    uint32_t tick_ms;           /* 0 = 100 */
    uint32_t election_ticks;    /* 0 = 10 */
    uint64_t commit_timeout_ms; /* 0 = 5000 */
    bool bootstrap;             /* override: fresh storage votes without waiting */
};

/* Opens the group's storage, loads the newest snapshot and replays the log
 * through cb->apply (ctx NULL), then starts the group-commit machinery.
 * Returns MOM_OK, or MOM_ERR_CORRUPT / MOM_ERR_IO (logged; do not start). */
int node_open(struct event_base *base, const struct node_config *cfg,
              const struct node_callbacks *cb, void *arg, struct node **out);
/* Flushes what can be flushed, stops the helper thread, closes files.
 * Pending proposals fail with MOM_ERR_CLOSED. Then frees the peer channel
 * node_open_cluster started (GOAWAY to every peer). Accepts NULL. */
void node_close(struct node *n);

/* The JWT primitives the peer channel's tokens need, supplied by the
 * application (momd: broker/cluster_token.c, HS256 with the cluster secret
 * on the same hardened verifier that checks client tokens), so that
 * replication/ has no verifier of its own and never includes broker/. The
 * peer rules (audience, leeways, "node:<id>" subject, iat freshness) stay in
 * replication/peer_token.c. Both functions may be called from the loop. */
#define NODE_TOKEN_SUB_MAX 128u

struct node_token_rules {
    const char *audience;  /* required aud (the string, or a list holding it) */
    uint32_t exp_leeway_s; /* accepted until exp + leeway */
    uint32_t nbf_leeway_s; /* accepted from nbf - leeway */
};

struct node_token_claims {
    char sub[NODE_TOKEN_SUB_MAX + 1]; /* "" unless a string of 1..NODE_TOKEN_SUB_MAX bytes */
    uint64_t exp;
    uint64_t iat; /* 0 when absent or not a NumericDate */
};

struct node_token_ops {
    /* Signs {sub, iat, exp, aud}; *out is a malloc'd NUL-terminated token
     * (caller frees). Returns MOM_OK, MOM_ERR_INVALID or MOM_ERR_NOMEM. */
    int (*sign)(void *arg, const char *sub, const char *audience, uint64_t iat, uint64_t exp,
                char **out);
    /* Verifies token (len bytes, not NUL-terminated) at now_s against r:
     * signature, exp required, nbf, aud. Returns MOM_OK with *out filled,
     * MOM_ERR_AUTH with *why set to a static reason, or MOM_ERR_NOMEM. */
    int (*verify)(void *arg, const struct node_token_rules *r, const char *token, size_t len,
                  uint64_t now_s, struct node_token_claims *out, const char **why);
    void *arg; /* the implementation's; must outlive the node */
};

/* The peer side of a node in a cluster, as configured. */
struct node_peer_config {
    const char *peers;       /* MOM_PEERS "1=host:9090,2=host:9090"; NULL/"" = a cluster of one */
    const char *listen_addr; /* "host:port" of the peer channel, port 0 = any */
    /* Peer token signing and verifying; NULL = every peer call refused
     * (UNAUTHENTICATED). Copied. */
    const struct node_token_ops *tokens;
    const char *tls_cert, *tls_key, *tls_ca; /* all NULL/"" = cleartext; all set = mutual TLS */
};

/* node_open for a process: parses pc->peers once (ids 1..n, cfg->node_id
 * among them), starts the peer channel on pc->listen_addr with the Ping
 * service and a health Ping to every other member each second, then opens
 * the node on it (cfg->n_members and cfg->peer are taken from there). The
 * node owns the channel. Returns what node_open returns, or MOM_ERR_INVALID
 * (bad MOM_PEERS, ids not 1..n, this node not listed, bad address or TLS
 * files), MOM_ERR_IO (bind failed), MOM_ERR_NOMEM; all logged. */
int node_open_cluster(struct event_base *base, const struct node_config *cfg,
                      const struct node_peer_config *pc, const struct node_callbacks *cb, void *arg,
                      struct node **out);
/* The bound peer port; 0 for a node opened without a channel. */
uint16_t node_peer_port(const struct node *n);

#define NODE_STATUS_MAX_MEMBERS 64

struct node_member_status {
    uint32_t id;
    char address[272];        /* as configured in MOM_PEERS (alone: the peer address) */
    const char *role;         /* this node: its role; others: "leader" or "follower" */
    uint64_t match_index;     /* as the leader knows it (this node: last durable index) */
    uint64_t last_contact_ms; /* age of the last Raft message or Ping answer; 0 for this
                                 node; UINT64_MAX = never */
    bool healthy;             /* this node: true; others: answered recently */
};

/* Everything GET /v1/cluster shows, filled by node_status in one call. */
struct node_status {
    uint32_t node_id; /* as configured */
    const char *role; /* "leader", "follower", "candidate", ... (static) */
    uint64_t term;
    uint32_t leader; /* 0 = unknown */
    uint64_t commit_index, applied_index;
    bool abstaining;
    size_t n_members;
    struct node_member_status members[NODE_STATUS_MAX_MEMBERS]; /* MOM_PEERS order */
};
void node_status(const struct node *n, struct node_status *out);

/* Proposes an encoded Command. The node takes ownership of data (malloc'd)
 * on every path. ctx comes back in apply or fail, exactly once.
 * Returns MOM_OK, or MOM_ERR_UNAVAILABLE when storage has failed (the caller
 * still owns ctx and must answer it; data is freed). */
int node_propose(struct node *n, uint8_t *data, size_t len, void *ctx);

/* Linearizable read: read_ready(ctx) fires once this node has applied the
 * leader's commit index as of now (ReadIndex; a follower asks the leader
 * with Forward{read_index}). Returns MOM_OK (the callback follows, never
 * from inside this call) or MOM_ERR_UNAVAILABLE (no leader known; ctx not
 * kept). */
int node_read_barrier(struct node *n, void *ctx);
/* Number of members (1 = alone: local reads are linearizable). */
uint32_t node_members(const struct node *n);

/* Whether writes are accepted (storage healthy). */
bool node_writable(const struct node *n);
/* Whether this node leads (proposals are appended here, not forwarded). */
bool node_is_leader(const struct node *n);
/* Whether the node knows a leader and has applied the commit index it learned. */
bool node_ready(const struct node *n);
/* Raft view (node_status has all of it in one struct). */
const char *node_role_name(const struct node *n);
uint32_t node_leader(const struct node *n);
uint32_t node_id(const struct node *n);
/* Wiped storage not caught up yet: grants no vote, counts for no quorum. */
bool node_abstaining(const struct node *n);
/* Leader: the member's acknowledged match index (self: last durable index);
 * the age in ms of the last message from it (UINT64_MAX = never). */
uint64_t node_member_match(const struct node *n, uint32_t id);
uint64_t node_member_contact_ms(const struct node *n, uint32_t id);
/* Graceful stop: hand leadership to an up-to-date follower and run the loop
 * for at most max_ms until it took over. */
void node_transfer_leadership(struct node *n, uint32_t max_ms);
uint64_t node_commit_index(const struct node *n);
uint64_t node_applied_index(const struct node *n);
uint64_t node_term(const struct node *n);

struct node_stats {
    uint64_t syncs;                     /* fdatasync calls completed */
    uint64_t sync_micros_total;         /* their summed duration */
    uint64_t batches;                   /* write() batches */
    uint64_t entries;                   /* entries committed */
    uint64_t snapshots;                 /* snapshots written */
    uint64_t log_bytes;                 /* bytes of log on disk */
    uint64_t wal_bytes_written;         /* log bytes handed to write() since start */
    struct histogram sync_latency;      /* each fdatasync of the log */
    struct histogram snapshot_duration; /* fork to the child's success */
};
void node_get_stats(const struct node *n, struct node_stats *out);

#endif
