/* The layout of the Raft core's state, shared by raft.c (the state machine)
 * and raft_view.c (read-only accessors, the cluster-id entry codec and the
 * invariant check); nothing else includes it. The index arithmetic of the
 * in-memory log lives here so both read the log the same way: index i is at
 * log[log_off + (i - snap_index - 1)], entries (snap_index, last_index].
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_RAFT_INTERNAL_H
#define MOM_REPLICATION_RAFT_INTERNAL_H

#include "replication/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pr_state { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };
enum vote_mark { VOTE_UNKNOWN = 0, VOTE_GRANTED, VOTE_REJECTED };

/* Replication progress of one member, as the leader tracks it (its own
 * slot is used for votes). */
struct progress {
    uint64_t match; /* leader: highest index known to match on the peer */
    uint64_t next;  /* leader: next index to send */
    enum pr_state state;
    bool probe_sent;     /* PROBE: a probe is in flight (cleared each heartbeat) */
    bool need_heartbeat; /* send an (empty) append at the next flush */
    bool commit_dirty;   /* our commit moved since we last told it */
    bool recent_active;  /* answered during this check-quorum period */
    bool hello_ok;       /* abstaining: it answered our HELLO */
    bool hello_fresh;    /* ... and said its storage never belonged to a cluster */
    bool abstaining;     /* leader: its last response said it abstains (counts for no quorum) */
    uint8_t vote;        /* enum vote_mark in the current campaign */
    uint32_t stall;      /* leader: ticks without progress while entries are outstanding */
    uint64_t pending_snapshot; /* SNAPSHOT: index sent */
    uint64_t acked_seq;        /* highest heartbeat round it echoed */
    uint64_t incarnation;      /* highest incarnation seen from it (volatile) */
    uint64_t *infl;            /* ring of last indexes of in-flight appends */
    size_t infl_start, infl_count;
};

struct read_pending {
    uint64_t ctx;
    uint64_t index;
    uint64_t seq; /* 0 = waiting until the leader commits in its term */
};

struct persist_mark {
    uint64_t id;
    uint64_t index;
    uint64_t term;
};

struct raft {
    struct raft_config cfg;
    uint32_t n;      /* members */
    uint32_t quorum; /* n / 2 + 1 */

    uint64_t term;
    uint32_t vote;
    bool abstain;
    uint64_t cluster_id;              /* 0 until the first cluster-id entry is applied */
    struct raft_hard_state hs_handed; /* last hard state handed to storage */

    enum raft_role role;
    uint32_t lead;

    /* The log: index i lives at log[log_off + (i - snap_index - 1)]. */
    struct raft_entry *log;
    size_t log_cap, log_off, log_len;
    uint64_t log_bytes; /* sum of the entries' len, released ones included */
    /* A cluster of one sends no entries, so an entry's data is freed once it
     * is applied and handed to storage (release_sent in raft.c): entries
     * (snap_index, released] keep index, term and len but data is NULL. */
    uint64_t released;
    /* Data of compacted entries, freed a slice at a time (raft_release):
     * freeing 100k entries at once held the loop for 10-20 ms. */
    const uint8_t **garbage;
    size_t n_garbage, cap_garbage;
    uint64_t snap_index, snap_term;
    uint64_t commit, applied;
    uint64_t stable;        /* known durable through here */
    uint64_t unstable_from; /* first index not yet handed to storage */
    bool pending_install;   /* a received snapshot must go out in the next Ready */

    uint32_t election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint32_t hello_elapsed, transfer_elapsed;
    uint64_t rng;

    struct progress *prs; /* n slots, node id i at prs[i - 1] */
    uint64_t *infl_buf;
    uint64_t *scratch; /* n slots for the commit computation */

    uint32_t transferee;
    uint64_t seq;          /* leader: heartbeat round */
    uint64_t hello_commit; /* abstaining: highest commit reported in HELLO_RESP */

    struct read_pending *rp;
    size_t n_rp, cap_rp;
    struct raft_read_state *rs;
    size_t n_rs, cap_rs;
    struct raft_msg *out;
    size_t n_out, cap_out;
    struct persist_mark *pm;
    size_t n_pm, cap_pm;

    bool started;  /* past raft_load_entry */
    bool in_ready; /* between raft_ready() == true and raft_advance() */
    int err;       /* first error during the current call (NOMEM/PROTOCOL) */
    uint64_t ready_id;
    size_t rd_n_committed;
    size_t rd_n_entries;
    bool rd_install;
};

static inline uint64_t last_index(const struct raft *r)
{
    return r->snap_index + (uint64_t)r->log_len;
}

static inline struct raft_entry *entry_ptr(const struct raft *r, uint64_t index)
{
    return &r->log[r->log_off + (size_t)(index - r->snap_index - 1)];
}

static inline bool term_at(const struct raft *r, uint64_t index, uint64_t *term)
{
    if (index == r->snap_index) {
        *term = r->snap_term;
        return true;
    }
    if (index < r->snap_index || index > last_index(r))
        return false;
    *term = entry_ptr(r, index)->term;
    return true;
}

#endif
