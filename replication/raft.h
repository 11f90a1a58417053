/* The pure Raft core (docs/architecture.md, "Raft, and one node is a cluster
 * of one"), in the style of etcd's raft: a state machine that takes ticks,
 * peer messages and proposals and hands back a "Ready" batch (state to
 * persist, messages to send, entries to apply). It does no I/O, reads no
 * clock and draws its election jitter from a PRNG seeded by the caller, so
 * the same inputs always give the same outputs. It owns a copy of every log
 * entry since the last snapshot; snapshot contents are the application's,
 * the core only knows (index, term) of the latest one.
 * SPDX-License-Identifier: MIT
 *
 * ---- Driving it (what replication/node.c does) ----------------------------
 *
 *   r = raft_new(&cfg, &hard_state_from_disk, &snapshot_meta_from_disk)
 *   raft_load_entry(r, ...) for every WAL record after the snapshot
 *   loop thread:
 *     every tick (e.g. 100 ms; elections after 10-20 ticks by default)
 *                                       raft_tick(r)
 *     peer request/response decoded     raft_step(r, &msg)
 *     client write                      raft_propose(r, data, len, &idx, &term)
 *     linearizable read                 raft_read_index(r, ctx)
 *     after any of the above, until it returns false:
 *       if (raft_ready(r, &rd)) { handle rd (below); raft_advance(r, &rd); }
 *     when the fsync covering Ready `id` completes:
 *                                       raft_persisted(r, id)  (then ready again)
 *     after a snapshot taken at applied index i is durable:
 *                                       raft_compact(r, i)
 *
 * Handling one Ready, in this order:
 *   1. rd.install_snapshot: the follower received a snapshot (the glue
 *      streamed its chunks and holds the bytes, see RAFT_MSG_SNAPSHOT); load
 *      it into the state machine, persist it and drop the whole WAL
 *      (wal_reset). The state machine's applied index becomes
 *      rd.snapshot.index.
 *   2. rd.entries: append to the WAL. If entries[0].index is not beyond the
 *      last index on disk, first remove every stored entry with index >=
 *      entries[0].index (wal_truncate_after(entries[0].index - 1)).
 *   3. rd.hard_state_changed: write rd.hard_state (term, vote, abstain) to
 *      the hard-state file. When pieces are made durable separately, make the
 *      hard state durable last (after the entries of the same Ready).
 *   4. rd.msgs: encode (copy) them now, but SEND them only once everything of
 *      this Ready and of every earlier Ready is durable. Exception: when
 *      rd.send_early is true (a leader whose hard state did not change in this
 *      batch), they may be sent at once, in parallel with the fsync — the
 *      leader counts its own entries only after raft_persisted.
 *   5. rd.committed: apply in order (entries with len 0 are the core's own
 *      no-ops: apply as nothing, but they do advance the applied index).
 *      Committed entries can be applied before they are durable locally:
 *      being committed, they are durable on a majority.
 *   6. rd.reads: read_state results (see raft_read_index).
 *   7. raft_advance(r, &rd), then later raft_persisted(r, rd.id) once steps
 *      1-3 are durable (an fsync covering several Readies may acknowledge
 *      only the last id: an id acknowledges every earlier id too).
 * Persistence must be in Ready order: a Ready is never durable before an
 * earlier one.
 *
 * ---- Ownership ------------------------------------------------------------
 *
 * - raft_propose, raft_step and raft_load_entry COPY entry data; the caller
 *   keeps its buffers.
 * - Everything a struct raft_ready points to (entries, committed, msgs and
 *   the entries inside msgs, reads) is owned by the core and stays valid
 *   until raft_advance. Between raft_ready() returning true and
 *   raft_advance(), call nothing but the const getters; other calls return
 *   MOM_ERR_INVALID (raft_tick is ignored).
 *
 * ---- Messages and the wire (proto/mom.proto, Peer service) -----------------
 *
 * Every message carries group_id, from, to, term and the sender's storage
 * incarnation. They all travel on ONE RPC, /mom.v1.Peer/Raft, as a
 * RaftMessage holding every field of struct raft_msg (replication/node_wire.c
 * encodes it): a request is the call, and the core's response to it is the
 * call's reply (type 0 when the core answers nothing). Per type:
 *   RAFT_MSG_APPEND / _RESP  entries as records (node_wire.h), seq; on
 *                            reject, the response's match_index = the
 *                            rejected prev_log_index
 *   RAFT_MSG_VOTE / _RESP    pre_vote, leadership_transfer, last log
 *   RAFT_MSG_SNAPSHOT        the leader's glue streams the bytes of its
 *                            latest snapshot (which is at snapshot_index) in
 *                            chunks, one Raft call each (snap_offset,
 *                            snap_data, snap_done); the receiving glue answers
 *                            type 0 to every chunk but the last, buffers them
 *                            and steps ONE RAFT_MSG_SNAPSHOT when the chunk
 *                            with snap_done arrives. If a stream to that peer
 *                            is already running, a repeated SNAPSHOT can be
 *                            ignored.
 *   RAFT_MSG_SNAPSHOT_RESP   the reply to the last chunk (success,
 *                            match_index, abstaining); if the stream fails,
 *                            call raft_report_snapshot(false).
 *   RAFT_MSG_TIMEOUT_NOW     the core sends no response: the reply is type 0.
 *   RAFT_MSG_HELLO / _RESP   sent only by an abstaining node (below), with
 *                            its commit and echo_incarnation.
 * The only other peer RPCs are Forward (a follower's client command or read
 * barrier, node_forward.c) and Ping (the broker's health checks).
 * Pairing: the glue may set `cookie` on a request it steps (requests the
 * core emits have cookie 0). When raft_step returns MOM_OK for APPEND, VOTE,
 * SNAPSHOT or HELLO, exactly one response carrying the same cookie is in the
 * next Ready; the glue answers the pending RPC with it (after that Ready is
 * durable, like every message). raft_step returns an error for a message it
 * drops without answering; the glue then fails the RPC itself.
 *
 * Leadership: after any call, raft_role()/raft_leader()/raft_term() tell
 * whether this node leads (to accept writes) or whom to forward to. A
 * proposal's fate is known when its index is applied: same term = committed,
 * another term = lost (fail the client; a leader that stepped down cannot
 * tell earlier, as the entry may still commit under the next leader).
 *
 * ---- Wiped storage: the incarnation and abstain rule ----------------------
 *
 * A node that lost its disk has forgotten its votes and the entries it
 * acknowledged; letting it vote at once can elect a leader that lacks
 * committed entries. The glue gives every fresh storage a new incarnation,
 * strictly larger than any earlier one of that node id (e.g. wall clock in
 * µs when the data directory is created), persisted with it; and when a node
 * of an existing cluster starts with fresh storage it sets hard_state.abstain.
 * Peers remember each sender's highest incarnation (in memory) and drop
 * messages from an older one, and a leader forgets what it knew about a peer
 * whose incarnation grew. The abstaining node grants no vote (nor pre-vote),
 * never campaigns and ignores TimeoutNow, and it sends HELLO to every peer
 * until each has answered. It does accept entries and snapshots, but its
 * responses say abstaining=true and a leader counts them toward no quorum
 * (commit, ReadIndex, check-quorum): having forgotten its term, it may be
 * following a deposed leader. It stops abstaining (and persists abstain=false,
 * with its vote set to its current leader) when, after an AppendEntries or
 * snapshot from the leader of its current term:
 *   - every peer has answered HELLO for this incarnation (from then on no
 *     peer counts an acknowledgement or vote still in flight from the old
 *     incarnation), and its term is at least every peer's term at HELLO time
 *     (so it can not vote twice in a term it voted in before the wipe);
 *   - its commit index (log verified against that leader) holds an entry of
 *     the leader's own term, so it holds every entry committed in earlier
 *     terms (the leader has them all: it was elected without this node), and
 *   - its commit index is at least the highest commit index any peer reported
 *     in HELLO_RESP (this covers entries of the current term whose commit
 *     counted an acknowledgement of the old incarnation).
 * Commit indexes are volatile, which is why the second condition is needed.
 * This needs every peer to be reachable once; abstain is ignored when the
 * cluster has a single member (there is nobody to catch up from). If a
 * majority loses its storage at once the group stays unavailable: committed
 * data may be gone and only an operator can decide to start over.
 *
 * ---- Forming a cluster: fresh storage and the cluster id -------------------
 *
 * The glue starts every fresh storage abstaining, a brand-new cluster's too.
 * HELLO and HELLO_RESP say whether the sender's storage is fresh: term 0, an
 * empty log, no snapshot and no cluster id, i.e. it never voted nor
 * acknowledged anything (both persist a term first). An abstaining node that
 * is fresh itself and whose every peer answered its HELLO (which names this
 * incarnation, so the answer is younger than this start) with fresh=true
 * stops abstaining at once: a member whose storage was wiped could only
 * have forgotten votes or entries that a majority also forgot, which the
 * rule above already gives up on. So a new cluster forms without a flag, a
 * wiped member among members with data still abstains (they are not fresh),
 * and a cluster restarting on its data never forms again.
 * A leader that knows no cluster id makes the first entry of its term a
 * cluster-id entry (a random id, see raft_cluster_id_entry) instead of the
 * no-op; the first one applied decides the id, which goes into the hard
 * state and into every message this node sends. A follower without one
 * takes the id of the leader whose appends or snapshot it accepted. A
 * message with another nonzero id is refused (MOM_ERR_FOREIGN): a member of
 * another cluster is never merged.
 *
 * ---- Behaviour summary ----------------------------------------------------
 *
 * Randomized election timeout in [election_ticks, 2*election_ticks), pre-vote,
 * check-quorum (a leader that heard from no majority during election_ticks
 * steps down; a follower that heard from a leader within election_ticks
 * ignores vote requests unless they are a leadership transfer), a no-op entry
 * on election, commit only of an entry of the leader's own term counted on a
 * majority, pipelined replication (up to max_inflight messages of at most
 * max_msg_entries / max_msg_bytes each), fast log repair by conflict hints,
 * InstallSnapshot for followers behind the compacted log, TimeoutNow
 * leadership transfer, ReadIndex confirmed by a heartbeat round.
 */
#ifndef MOM_REPLICATION_RAFT_H
#define MOM_REPLICATION_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct raft;

#define RAFT_NONE 0u /* "no node" for votes and leaders; node ids are 1..n_nodes */

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER,
};

struct raft_config {
    uint32_t group_id;        /* carried in every message */
    uint32_t id;              /* this node, 1..n_nodes */
    uint32_t n_nodes;         /* members are node ids 1..n_nodes (1..64) */
    uint32_t election_ticks;  /* 0 = 10 */
    uint32_t heartbeat_ticks; /* 0 = 1; must be < election_ticks */
    uint32_t max_msg_entries; /* entries per AppendEntries, 0 = 64 */
    uint64_t max_msg_bytes; /* payload bytes per AppendEntries, 0 = 1 MiB (one entry always fits) */
    uint32_t max_inflight;  /* pipelined AppendEntries per follower, 0 = 32 */
    bool disable_pre_vote;
    bool disable_check_quorum;
    uint64_t seed;        /* PRNG seed for election jitter (differs per node) */
    uint64_t incarnation; /* this node's storage incarnation (see above) */
};

/* The state that must be durable before any message of the Ready that
 * changed it is sent. */
struct raft_hard_state {
    uint64_t term;
    uint32_t vote;       /* RAFT_NONE or the node voted for in term */
    bool abstain;        /* wiped storage that has not caught up yet */
    uint64_t cluster_id; /* 0 until the first cluster-id entry was applied */
};

/* The latest snapshot: it covers every entry up to index (whose term is term).
 * {0, 0} = none. */
struct raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
};

struct raft_entry {
    uint64_t term;
    uint64_t index;
    const uint8_t *data; /* NULL when len is 0; len 0 = the core's no-op */
    size_t len;
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,    /* leader -> follower: entries or heartbeat */
    RAFT_MSG_APPEND_RESP,   /* follower -> leader */
    RAFT_MSG_VOTE,          /* (pre-)candidate -> all */
    RAFT_MSG_VOTE_RESP,     /* voter -> (pre-)candidate */
    RAFT_MSG_SNAPSHOT,      /* leader -> follower: install snapshot (metadata) */
    RAFT_MSG_SNAPSHOT_RESP, /* follower -> leader */
    RAFT_MSG_TIMEOUT_NOW,   /* leader -> transfer target: campaign now */
    RAFT_MSG_HELLO,         /* abstaining node -> peer */
    RAFT_MSG_HELLO_RESP,    /* peer -> abstaining node */
};

/* One peer message. Fields not listed for a type are 0/false. */
struct raft_msg {
    enum raft_msg_type type;
    uint32_t group_id;
    uint32_t from;
    uint32_t to;
    uint64_t
        term; /* sender's term (HELLO: 0); a granted pre-vote carries the candidate's next term */
    uint64_t incarnation; /* sender's storage incarnation (all types) */
    uint64_t cluster_id;  /* sender's cluster id, 0 = none yet (all types) */
    uint64_t cookie;      /* glue's tag, copied from a request into its response */

    /* APPEND */
    uint64_t prev_log_index;
    uint64_t prev_log_term;
    uint64_t leader_commit; /* APPEND: leader's commit; HELLO_RESP: responder's commit */
    const struct raft_entry *entries;
    size_t n_entries;
    uint64_t
        seq; /* APPEND: leader's heartbeat round; APPEND_RESP: echoed (ReadIndex, check-quorum) */

    /* APPEND_RESP, SNAPSHOT_RESP */
    bool success;
    uint64_t match_index;    /* success: follower's log matches the leader's through it;
                              * reject: the prev_log_index that did not match */
    uint64_t conflict_index; /* reject: first index of conflict_term in the follower's log,
                              * or its last index + 1 when conflict_term is 0 */
    uint64_t conflict_term;  /* reject: follower's term at prev_log_index, 0 = log too short */
    uint64_t last_log_index; /* APPEND_RESP: follower's last index; VOTE: candidate's */
    bool abstaining;         /* APPEND_RESP, SNAPSHOT_RESP: the responder abstains (wiped
                              * storage not caught up): it counts for no quorum */

    /* VOTE, VOTE_RESP */
    uint64_t last_log_term; /* VOTE */
    bool pre_vote;
    bool leadership_transfer; /* VOTE: campaign started by TimeoutNow */
    bool vote_granted;        /* VOTE_RESP */

    /* SNAPSHOT */
    uint64_t snapshot_index;
    uint64_t snapshot_term;

    /* HELLO_RESP */
    uint64_t echo_incarnation; /* the incarnation the HELLO carried */
    /* HELLO, HELLO_RESP: the sender's storage never belonged to a cluster
     * (term 0, empty log, no snapshot, no cluster id) */
    bool fresh;
};

/* Result of a raft_read_index request. */
struct raft_read_state {
    uint64_t ctx;   /* caller's tag */
    uint64_t index; /* serve the read once the applied index reaches it */
    int err;        /* MOM_OK, or MOM_ERR_NOT_LEADER when leadership was lost first */
};

struct raft_ready {
    uint64_t id; /* pass to raft_persisted once steps 1-3 are durable */

    bool install_snapshot;              /* follower: install the received snapshot */
    struct raft_snapshot_meta snapshot; /* which one */

    const struct raft_entry *entries; /* to append to the log (see truncation rule) */
    size_t n_entries;

    bool hard_state_changed;
    struct raft_hard_state hard_state;

    const struct raft_msg *msgs; /* to send after persisting (or at once when send_early) */
    size_t n_msgs;
    bool send_early;

    const struct raft_entry *committed; /* to apply, in order */
    size_t n_committed;

    const struct raft_read_state *reads;
    size_t n_reads;
};

/* Creates a node from its durable state: hs and snap may be NULL for a brand
 * new node (term 0, no snapshot). The state machine must be at snap->index.
 * Returns MOM_OK, MOM_ERR_INVALID (bad config) or MOM_ERR_NOMEM. */
int raft_new(const struct raft_config *cfg, const struct raft_hard_state *hs,
             const struct raft_snapshot_meta *snap, struct raft **out);
/* Frees the node and every entry it holds. Accepts NULL. */
void raft_free(struct raft *r);

/* Restores one durable log entry, in index order, before the first
 * tick/step/propose. Entries at or below the snapshot index are skipped.
 * Returns MOM_OK, MOM_ERR_INVALID (gap, term going down, or called too late)
 * or MOM_ERR_NOMEM. */
int raft_load_entry(struct raft *r, uint64_t term, uint64_t index, const uint8_t *data, size_t len);

/* Advances logical time by one tick. */
void raft_tick(struct raft *r);

/* Feeds one message from a peer. Returns MOM_OK; MOM_ERR_INVALID for a
 * message that is malformed, not for this node/group, from an unknown node,
 * or from an older incarnation of its sender (dropped, no response will
 * come); MOM_ERR_FOREIGN when it carries a cluster id other than this node's
 * (dropped: the glue logs m->cluster_id and raft_cluster_id); MOM_ERR_NOMEM. */
int raft_step(struct raft *r, const struct raft_msg *m);

/* Appends a client entry on the leader (data is copied). On MOM_OK, *index
 * and *term identify it: the proposal succeeded if and only if the entry
 * applied at *index has term *term. Returns MOM_OK, MOM_ERR_NOT_LEADER,
 * MOM_ERR_UNAVAILABLE (a leadership transfer is in progress), MOM_ERR_INVALID
 * (len 0, which is reserved for no-ops) or MOM_ERR_NOMEM. */
int raft_propose(struct raft *r, const uint8_t *data, size_t len, uint64_t *index, uint64_t *term);

/* Asks the leader for a linearizable read index. A raft_read_state with
 * this ctx appears in a later Ready: once the leader has committed an entry
 * of its term and a majority has answered a heartbeat sent after this call,
 * index = the commit index at the time of the call (or later); if leadership
 * is lost first, err = MOM_ERR_NOT_LEADER. Returns MOM_OK or
 * MOM_ERR_NOT_LEADER (no read_state will come). */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Leader: hand leadership to node `to` (catch it up, then TimeoutNow).
 * Proposals fail with MOM_ERR_UNAVAILABLE until it completes or, after
 * election_ticks, is abandoned. Returns MOM_OK, MOM_ERR_NOT_LEADER or
 * MOM_ERR_INVALID. */
int raft_transfer_leadership(struct raft *r, uint32_t to);

/* Starts an election now (pre-vote first when enabled), e.g. at start-up of
 * a single-member cluster. Returns MOM_OK, MOM_ERR_UNAVAILABLE (abstaining)
 * or MOM_ERR_INVALID (already leader). */
int raft_campaign(struct raft *r);

/* The application took a snapshot of its state at applied index `index` and
 * it is durable: drop the entries up to index from memory. Followers behind
 * it will be sent RAFT_MSG_SNAPSHOT. Returns MOM_OK or MOM_ERR_INVALID
 * (index above the applied index, or not above the current snapshot). */
int raft_compact(struct raft *r, uint64_t index);
/* Frees up to max data buffers of compacted entries (raft_compact defers
 * them so that a large compaction does not stall the caller); returns how
 * many are left. raft_free frees the rest. */
size_t raft_release(struct raft *r, size_t max);

/* The glue finished (ok) or gave up (!ok) streaming a snapshot to `to`.
 * On failure the leader probes the follower again. */
void raft_report_snapshot(struct raft *r, uint32_t to, bool ok);
/* The connection to `to` failed: stop pipelining to it and probe. */
void raft_report_unreachable(struct raft *r, uint32_t to);

/* Fills *rd with everything pending; returns false when there is nothing
 * (then raft_advance must not be called). After true, call raft_advance. */
bool raft_ready(struct raft *r, struct raft_ready *rd);
/* The glue copied out everything in rd: messages are handed over, entries
 * handed to storage, committed entries applied. */
void raft_advance(struct raft *r, const struct raft_ready *rd);
/* Everything handed over in Ready `id` and before is durable. */
void raft_persisted(struct raft *r, uint64_t id);

/* Getters (const, callable at any time). */
uint32_t raft_id(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
const char *raft_role_name(enum raft_role role);
uint32_t raft_leader(const struct raft *r); /* RAFT_NONE when unknown */
uint64_t raft_term(const struct raft *r);
uint32_t raft_vote(const struct raft *r);
bool raft_abstaining(const struct raft *r);
uint64_t raft_cluster_id(const struct raft *r); /* 0 = none yet */
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_first_index(const struct raft *r); /* first entry in memory (snapshot index + 1) */
uint64_t raft_last_index(const struct raft *r);
struct raft_snapshot_meta raft_snapshot(const struct raft *r);
/* Term of the entry at index (snapshot index included); false when unknown. */
bool raft_term_at(const struct raft *r, uint64_t index, uint64_t *term);
/* The entry at index when it is in memory (pointer valid until the next
 * non-const call); false otherwise (compacted, or in a cluster of one
 * already applied and handed to storage: its data was released). */
bool raft_entry_at(const struct raft *r, uint64_t index, struct raft_entry *out);
/* Bytes of entry data appended since the snapshot (to decide when to
 * snapshot). In a cluster of one most of it is no longer in memory: an
 * entry's data is freed once it is applied and handed to storage. */
uint64_t raft_log_bytes(const struct raft *r);
/* Leader: whether a leadership transfer is in progress. */
uint32_t raft_transferee(const struct raft *r);

/* The cluster-id entry (see Forming a cluster above): RAFT_CLUSTER_ID_ENTRY_LEN
 * bytes that start with a 0 byte, which no encoded Command does. */
#define RAFT_CLUSTER_ID_ENTRY_LEN 16u
void raft_cluster_id_entry(uint64_t id, uint8_t out[RAFT_CLUSTER_ID_ENTRY_LEN]);
/* Whether e is a cluster-id entry (the glue applies it as nothing, like a
 * no-op); stores the id in *id when id is not NULL. */
bool raft_entry_cluster_id(const struct raft_entry *e, uint64_t *id);

/* Checks internal consistency (for tests); returns MOM_OK or
 * MOM_ERR_CORRUPT and logs what is wrong. */
int raft_check_invariants(const struct raft *r);

#endif
