/* The pure Raft core: roles, terms and votes, the in-memory log since the
 * last snapshot, per-follower replication progress, and the outbox of the
 * next Ready. No I/O, no clock, no globals: everything it decides follows
 * from the calls it gets and its seeded PRNG (see raft.h for the contract).
 * Invariants: snapshot index <= applied <= commit <= last index; the log
 * holds exactly the entries (snapshot index, last index], contiguous with
 * non-decreasing terms; nothing a Ready points to changes until advance.
 * In a cluster of one the data of entries that are applied and handed to
 * storage is freed at once (nothing will send them; a restart reads them
 * back from the log): entries up to `released` keep only index, term, len.
 * SPDX-License-Identifier: MIT */
#include "replication/raft_internal.h"

#include "common/err.h"
#include "common/grow.h"
#include "common/le.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_ELECTION_TICKS 10u
#define DEFAULT_HEARTBEAT_TICKS 1u
#define DEFAULT_MAX_MSG_ENTRIES 64u
#define DEFAULT_MAX_MSG_BYTES (1024u * 1024u)
#define DEFAULT_MAX_INFLIGHT 32u
#define MAX_NODES 64u

/* ---- small helpers ------------------------------------------------------ */

static void free_data(const uint8_t *p)
{
    free((void *)(uintptr_t)p);
}

static uint64_t rng_next(struct raft *r)
{
    /* xorshift64* */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void reset_randomized_timeout(struct raft *r)
{
    uint32_t et = r->cfg.election_ticks;
    r->randomized_timeout = et + (uint32_t)(rng_next(r) % et);
}

static struct progress *progress_of(struct raft *r, uint32_t id)
{
    return &r->prs[id - 1];
}

static uint64_t last_term(const struct raft *r)
{
    uint64_t t = 0;
    term_at(r, last_index(r), &t);
    return t;
}

/* Storage that never took part in a cluster: no term, no log, no snapshot,
 * no cluster id. Every vote or acknowledgement persists a term first. */
static bool storage_fresh(const struct raft *r)
{
    return r->term == 0 && last_index(r) == 0 && r->snap_index == 0 && r->cluster_id == 0;
}

static void note_err(struct raft *r, int err)
{
    if (r->err == MOM_OK)
        r->err = err;
}

/* grow_array on a void * the caller then assigns back to its typed field. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    void *p = grow_array(*arr, cap, need, elem, 8);
    if (!p)
        return false;
    *arr = p;
    return true;
}

/* Makes room for `more` entries at the end of the log. */
static bool log_reserve(struct raft *r, size_t more)
{
    if (r->log_off + r->log_len + more <= r->log_cap)
        return true;
    if (r->log_off > 0) {
        memmove(r->log, r->log + r->log_off, r->log_len * sizeof *r->log);
        r->log_off = 0;
        if (r->log_len + more <= r->log_cap)
            return true;
    }
    void *arr = r->log;
    size_t cap = r->log_cap;
    if (!grow(&arr, &cap, r->log_len + more, sizeof *r->log))
        return false;
    r->log = arr;
    r->log_cap = cap;
    return true;
}

/* Appends an entry whose data is already owned by the core. Room must have
 * been reserved. */
static void log_push_owned(struct raft *r, uint64_t term, uint8_t *data, size_t len)
{
    struct raft_entry *e = &r->log[r->log_off + r->log_len];
    e->term = term;
    e->index = last_index(r) + 1;
    e->data = data;
    e->len = len;
    r->log_len++;
    r->log_bytes += len;
}

static int copy_data(const uint8_t *data, size_t len, uint8_t **out)
{
    *out = NULL;
    if (len == 0)
        return MOM_OK;
    if (!data)
        return MOM_ERR_INVALID;
    *out = malloc(len);
    if (!*out)
        return MOM_ERR_NOMEM;
    memcpy(*out, data, len);
    return MOM_OK;
}

/* Drops entries with index >= from. */
static void log_truncate_from(struct raft *r, uint64_t from)
{
    uint64_t last = last_index(r);
    for (uint64_t i = from; i <= last; i++) {
        struct raft_entry *e = entry_ptr(r, i);
        r->log_bytes -= e->len;
        free_data(e->data);
    }
    r->log_len = (size_t)(from - r->snap_index - 1);
    if (r->released >= from)
        r->released = from - 1;
    if (r->unstable_from > from)
        r->unstable_from = from;
    if (r->stable >= from)
        r->stable = from - 1;
}

static void log_clear(struct raft *r)
{
    for (size_t i = 0; i < r->log_len; i++)
        free_data(r->log[r->log_off + i].data);
    r->log_off = 0;
    r->log_len = 0;
    r->log_bytes = 0;
    r->released = 0;
}

/* A cluster of one: frees the data of entries that are applied and were
 * handed to storage (which keeps its own copy). No peer will be sent them
 * (membership is fixed for the life of the core) and the core reads no
 * entry's data after it was applied, so holding them until the next
 * compaction only cost memory (for a million 100-byte messages published
 * in batches, tens of MB). Called from raft_advance, once the glue is done
 * with the Ready's pointers. */
static void release_sent(struct raft *r)
{
    uint64_t upto = r->applied < r->unstable_from - 1 ? r->applied : r->unstable_from - 1;
    if (r->released < r->snap_index)
        r->released = r->snap_index;
    for (uint64_t i = r->released + 1; i <= upto; i++) {
        struct raft_entry *e = entry_ptr(r, i);
        free_data(e->data);
        e->data = NULL;
    }
    if (upto > r->released)
        r->released = upto;
}

/* Pushes a zeroed message onto the outbox; NULL (and err = NOMEM) on failure,
 * which the protocol survives like a lost message. */
static struct raft_msg *msg_new(struct raft *r, enum raft_msg_type type, uint32_t to)
{
    void *arr = r->out;
    if (!grow(&arr, &r->cap_out, r->n_out + 1, sizeof *r->out)) {
        note_err(r, MOM_ERR_NOMEM);
        return NULL;
    }
    r->out = arr;
    struct raft_msg *m = &r->out[r->n_out++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->group_id = r->cfg.group_id;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
    m->incarnation = r->cfg.incarnation;
    m->cluster_id = r->cluster_id;
    return m;
}

static struct raft_msg *respond(struct raft *r, const struct raft_msg *req, enum raft_msg_type type)
{
    struct raft_msg *m = msg_new(r, type, req->from);
    if (m) {
        m->cookie = req->cookie;
        m->abstaining = r->abstain;
    }
    return m;
}

static void emit_read(struct raft *r, uint64_t ctx, uint64_t index, int err)
{
    void *arr = r->rs;
    if (!grow(&arr, &r->cap_rs, r->n_rs + 1, sizeof *r->rs)) {
        note_err(r, MOM_ERR_NOMEM);
        return;
    }
    r->rs = arr;
    r->rs[r->n_rs++] = (struct raft_read_state){.ctx = ctx, .index = index, .err = err};
}

static void infl_reset(struct raft *r, struct progress *p)
{
    (void)r;
    p->infl_start = 0;
    p->infl_count = 0;
}

static bool infl_full(const struct raft *r, const struct progress *p)
{
    return p->infl_count >= r->cfg.max_inflight;
}

static void infl_add(struct raft *r, struct progress *p, uint64_t index)
{
    size_t cap = r->cfg.max_inflight;
    p->infl[(p->infl_start + p->infl_count) % cap] = index;
    p->infl_count++;
}

static void infl_free_upto(struct raft *r, struct progress *p, uint64_t index)
{
    size_t cap = r->cfg.max_inflight;
    while (p->infl_count > 0 && p->infl[p->infl_start] <= index) {
        p->infl_start = (p->infl_start + 1) % cap;
        p->infl_count--;
    }
}

static void become_probe(struct raft *r, struct progress *p, uint64_t next)
{
    p->state = PR_PROBE;
    p->next = next;
    p->probe_sent = false;
    p->stall = 0;
    infl_reset(r, p);
}

static void become_replicate(struct raft *r, struct progress *p)
{
    p->state = PR_REPLICATE;
    if (p->next < p->match + 1)
        p->next = p->match + 1;
    p->probe_sent = false;
    p->stall = 0;
    infl_reset(r, p);
}

/* ---- roles -------------------------------------------------------------- */

static void fail_reads(struct raft *r)
{
    for (size_t i = 0; i < r->n_rp; i++)
        emit_read(r, r->rp[i].ctx, 0, MOM_ERR_NOT_LEADER);
    r->n_rp = 0;
}

static void become_follower(struct raft *r, uint64_t term, uint32_t lead)
{
    bool was_leader = r->role == RAFT_LEADER;
    if (term != r->term) {
        r->term = term;
        r->vote = RAFT_NONE;
    }
    r->role = RAFT_FOLLOWER;
    r->lead = lead;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->transferee = RAFT_NONE;
    reset_randomized_timeout(r);
    if (was_leader) {
        fail_reads(r);
        log_info("raft g%" PRIu32 " n%" PRIu32 ": leader steps down at term %" PRIu64,
                 r->cfg.group_id, r->cfg.id, r->term);
    }
}

static void become_leader(struct raft *r)
{
    if (!log_reserve(r, 1)) {
        note_err(r, MOM_ERR_NOMEM);
        become_follower(r, r->term, RAFT_NONE);
        return;
    }
    r->role = RAFT_LEADER;
    r->lead = r->cfg.id;
    r->transferee = RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->seq = 0;
    uint64_t next = last_index(r) + 1;
    for (uint32_t i = 0; i < r->n; i++) {
        struct progress *p = &r->prs[i];
        p->match = 0;
        become_probe(r, p, next);
        p->need_heartbeat = false;
        p->commit_dirty = false;
        p->recent_active = false;
        p->acked_seq = 0;
        p->pending_snapshot = 0;
        p->abstaining = false;
    }
    uint8_t *cid = NULL;
    if (r->cluster_id == 0 && (cid = malloc(RAFT_CLUSTER_ID_ENTRY_LEN))) {
        /* No cluster id committed yet: this term's first entry proposes one.
         * The first such entry applied decides it for every member. */
        uint64_t id = 0;
        while (id == 0)
            id = rng_next(r);
        raft_cluster_id_entry(id, cid);
        log_push_owned(r, r->term, cid, RAFT_CLUSTER_ID_ENTRY_LEN);
    } else {
        log_push_owned(r, r->term, NULL, 0); /* the no-op of this term */
    }
    log_info("raft g%" PRIu32 " n%" PRIu32 ": leader at term %" PRIu64 " (last index %" PRIu64 ")",
             r->cfg.group_id, r->cfg.id, r->term, last_index(r));
}

static void campaign(struct raft *r, bool pre, bool transfer)
{
    if (r->abstain)
        return;
    if (pre) {
        r->role = RAFT_PRE_CANDIDATE;
    } else {
        r->term++;
        r->vote = r->cfg.id;
        r->role = RAFT_CANDIDATE;
    }
    r->lead = RAFT_NONE;
    r->election_elapsed = 0;
    reset_randomized_timeout(r);
    for (uint32_t i = 0; i < r->n; i++)
        r->prs[i].vote = VOTE_UNKNOWN;
    progress_of(r, r->cfg.id)->vote = VOTE_GRANTED;
    if (r->quorum == 1) {
        if (pre)
            campaign(r, false, transfer);
        else
            become_leader(r);
        return;
    }
    uint64_t lt = last_term(r);
    for (uint32_t id = 1; id <= r->n; id++) {
        if (id == r->cfg.id)
            continue;
        struct raft_msg *m = msg_new(r, RAFT_MSG_VOTE, id);
        if (!m)
            return;
        m->term = pre ? r->term + 1 : r->term;
        m->last_log_index = last_index(r);
        m->last_log_term = lt;
        m->pre_vote = pre;
        m->leadership_transfer = transfer;
    }
}

/* ---- commit and reads (leader) ------------------------------------------ */

static bool committed_in_term(const struct raft *r)
{
    uint64_t t = 0;
    return term_at(r, r->commit, &t) && t == r->term;
}

static void mark_all(struct raft *r, bool heartbeat, bool commit)
{
    for (uint32_t i = 0; i < r->n; i++) {
        if (i + 1 == r->cfg.id)
            continue;
        if (heartbeat)
            r->prs[i].need_heartbeat = true;
        if (commit)
            r->prs[i].commit_dirty = true;
    }
}

/* Starts a heartbeat round for reads still waiting for one. */
static void start_read_round(struct raft *r)
{
    bool any = false;
    for (size_t i = 0; i < r->n_rp; i++)
        if (r->rp[i].seq == 0)
            any = true;
    if (!any || !committed_in_term(r))
        return;
    r->seq++;
    for (size_t i = 0; i < r->n_rp; i++) {
        if (r->rp[i].seq == 0) {
            r->rp[i].seq = r->seq;
            r->rp[i].index = r->commit;
        }
    }
    mark_all(r, true, false);
}

/* Answers pending reads whose heartbeat round a majority has echoed. */
static void advance_reads(struct raft *r)
{
    size_t done = 0;
    while (done < r->n_rp) {
        struct read_pending *rp = &r->rp[done];
        if (rp->seq == 0)
            break;
        uint32_t acks = 1;
        for (uint32_t i = 0; i < r->n; i++)
            if (i + 1 != r->cfg.id && r->prs[i].acked_seq >= rp->seq)
                acks++;
        if (acks < r->quorum)
            break;
        emit_read(r, rp->ctx, rp->index, MOM_OK);
        done++;
    }
    if (done > 0) {
        memmove(r->rp, r->rp + done, (r->n_rp - done) * sizeof *r->rp);
        r->n_rp -= done;
    }
}

static void maybe_commit(struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return;
    uint64_t *s = r->scratch;
    for (uint32_t i = 0; i < r->n; i++) {
        uint64_t v = (i + 1 == r->cfg.id) ? r->stable : r->prs[i].abstaining ? 0 : r->prs[i].match;
        /* insertion sort, descending */
        uint32_t j = i;
        while (j > 0 && s[j - 1] < v) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v;
    }
    uint64_t c = s[r->quorum - 1];
    if (c <= r->commit)
        return;
    uint64_t t = 0;
    if (!term_at(r, c, &t) || t != r->term)
        return; /* only entries of the leader's own term are committed by counting */
    bool first_in_term = !committed_in_term(r);
    r->commit = c;
    mark_all(r, false, true);
    if (first_in_term) {
        start_read_round(r);
        advance_reads(r);
    }
}

/* ---- sending (leader, at flush time) ------------------------------------ */

/* Sends entries from `from` (at most one batch, none when !with_entries);
 * returns the last index sent (from - 1 when none). */
static uint64_t emit_append(struct raft *r, uint32_t to, uint64_t from, bool with_entries)
{
    uint64_t prev = from - 1, prev_term = 0;
    term_at(r, prev, &prev_term);
    uint64_t last = last_index(r);
    size_t n = 0;
    uint64_t bytes = 0;
    for (uint64_t i = from; with_entries && i <= last && n < r->cfg.max_msg_entries; i++) {
        size_t len = entry_ptr(r, i)->len;
        if (n > 0 && bytes + len > r->cfg.max_msg_bytes)
            break;
        bytes += len;
        n++;
    }
    struct raft_msg *m = msg_new(r, RAFT_MSG_APPEND, to);
    if (!m)
        return prev;
    m->prev_log_index = prev;
    m->prev_log_term = prev_term;
    m->leader_commit = r->commit;
    m->seq = r->seq;
    if (n > 0) {
        m->entries = entry_ptr(r, from);
        m->n_entries = n;
    }
    return prev + n;
}

/* An empty append at a point the follower is known to have (its match). */
static void emit_heartbeat(struct raft *r, uint32_t to, const struct progress *p)
{
    uint64_t prev = p->match, t = 0;
    if (!term_at(r, prev, &t))
        prev = r->snap_index;
    emit_append(r, to, prev + 1, false);
}

static void send_timeout_now(struct raft *r, uint32_t to)
{
    msg_new(r, RAFT_MSG_TIMEOUT_NOW, to);
}

static void flush_peer(struct raft *r, uint32_t id)
{
    struct progress *p = progress_of(r, id);
    uint64_t last = last_index(r);
    if (p->state != PR_SNAPSHOT && p->next - 1 < r->snap_index) {
        p->state = PR_SNAPSHOT;
        p->pending_snapshot = r->snap_index;
        p->stall = 0;
        infl_reset(r, p);
        struct raft_msg *m = msg_new(r, RAFT_MSG_SNAPSHOT, id);
        if (m) {
            m->snapshot_index = r->snap_index;
            m->snapshot_term = r->snap_term;
            m->leader_commit = r->commit;
        }
        p->need_heartbeat = false;
        p->commit_dirty = false;
        return;
    }
    bool want_hb = p->need_heartbeat || p->commit_dirty;
    switch (p->state) {
    case PR_SNAPSHOT:
        if (p->need_heartbeat)
            emit_heartbeat(r, id, p);
        break;
    case PR_PROBE:
        if (!p->probe_sent) {
            emit_append(r, id, p->next, true);
            p->probe_sent = true;
        } else if (want_hb) {
            emit_heartbeat(r, id, p);
        }
        break;
    case PR_REPLICATE: {
        bool sent = false;
        while (p->next <= last && !infl_full(r, p)) {
            uint64_t end = emit_append(r, id, p->next, true);
            if (end < p->next)
                break; /* out of memory */
            infl_add(r, p, end);
            p->next = end + 1;
            sent = true;
        }
        if (!sent && want_hb)
            emit_heartbeat(r, id, p);
        break;
    }
    }
    p->need_heartbeat = false;
    p->commit_dirty = false;
}

/* ---- handling messages -------------------------------------------------- */

static bool up_to_date(const struct raft *r, uint64_t index, uint64_t term)
{
    uint64_t lt = last_term(r);
    return term > lt || (term == lt && index >= last_index(r));
}

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
    bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
                    (m->pre_vote && m->term > r->term);
    struct raft_msg *resp = respond(r, m, RAFT_MSG_VOTE_RESP);
    if (!resp)
        return;
    resp->pre_vote = m->pre_vote;
    if (!r->abstain && can_vote && up_to_date(r, m->last_log_index, m->last_log_term)) {
        resp->vote_granted = true;
        resp->term = m->term;
        if (!m->pre_vote) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    }
}

static void handle_vote_resp(struct raft *r, const struct raft_msg *m)
{
    if (m->pre_vote && m->vote_granted && m->term != r->term + 1)
        return; /* stale */
    progress_of(r, m->from)->vote = m->vote_granted ? VOTE_GRANTED : VOTE_REJECTED;
    uint32_t granted = 0, rejected = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->prs[i].vote == VOTE_GRANTED)
            granted++;
        else if (r->prs[i].vote == VOTE_REJECTED)
            rejected++;
    }
    if (granted >= r->quorum) {
        if (r->role == RAFT_PRE_CANDIDATE)
            campaign(r, false, false);
        else
            become_leader(r);
    } else if (r->n - rejected < r->quorum) {
        become_follower(r, r->term, RAFT_NONE);
    }
}

static void commit_to(struct raft *r, uint64_t index)
{
    if (index > r->commit)
        r->commit = index;
}

/* An abstaining node with fresh storage whose every peer answered HELLO (for
 * this incarnation, so after this start) that its storage is fresh too: no
 * member holds a vote or an entry that anyone could have forgotten, so the
 * cluster is new and this node may vote at once (raft.h, Forming a cluster). */
static void maybe_form_cluster(struct raft *r)
{
    if (!r->abstain || !storage_fresh(r))
        return;
    for (uint32_t i = 0; i < r->n; i++)
        if (i + 1 != r->cfg.id && !r->prs[i].hello_fresh)
            return;
    r->abstain = false;
    log_info("raft g%" PRIu32 " n%" PRIu32
             ": every member reports fresh storage: forming a new cluster",
             r->cfg.group_id, r->cfg.id);
}

static void maybe_clear_abstain(struct raft *r)
{
    if (!r->abstain)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        if (i + 1 != r->cfg.id && !r->prs[i].hello_ok)
            return;
    if (r->commit < r->hello_commit || !committed_in_term(r))
        return;
    r->abstain = false;
    r->vote = r->lead;
    log_info("raft g%" PRIu32 " n%" PRIu32 ": caught up after fresh storage at term %" PRIu64
             " commit %" PRIu64 ": voting again",
             r->cfg.group_id, r->cfg.id, r->term, r->commit);
}

/* First index in (lo, hi] whose term is `term` (terms are non-decreasing);
 * hi's term is `term`. */
static uint64_t first_of_term(const struct raft *r, uint64_t lo, uint64_t hi, uint64_t term)
{
    while (lo + 1 < hi) {
        uint64_t mid = lo + (hi - lo) / 2, t = 0;
        term_at(r, mid, &t);
        if (t >= term)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* A follower whose log the leader of its term just verified takes the
 * leader's cluster id if it has none yet (e.g. it joined by a snapshot that
 * no longer holds the cluster-id entry). The leader only carries one once
 * it was committed. */
static void adopt_cluster_id(struct raft *r, const struct raft_msg *m)
{
    if (r->cluster_id == 0 && m->cluster_id != 0)
        r->cluster_id = m->cluster_id;
}

static void handle_append(struct raft *r, const struct raft_msg *m)
{
    uint64_t t = 0;
    if (m->prev_log_index < r->commit) {
        struct raft_msg *resp = respond(r, m, RAFT_MSG_APPEND_RESP);
        if (resp) {
            resp->success = true;
            resp->match_index = r->commit;
            resp->seq = m->seq;
            resp->last_log_index = last_index(r);
        }
        return;
    }
    if (term_at(r, m->prev_log_index, &t) && t == m->prev_log_term) {
        size_t i = 0;
        for (; i < m->n_entries; i++) {
            uint64_t et = 0;
            const struct raft_entry *e = &m->entries[i];
            if (!term_at(r, e->index, &et) || et != e->term)
                break;
        }
        if (i < m->n_entries) {
            uint64_t ci = m->entries[i].index;
            if (ci <= r->commit) {
                log_error("raft g%" PRIu32 " n%" PRIu32 ": leader n%" PRIu32
                          " conflicts at committed index %" PRIu64,
                          r->cfg.group_id, r->cfg.id, m->from, ci);
                note_err(r, MOM_ERR_PROTOCOL);
                return;
            }
            size_t more = m->n_entries - i;
            if (!log_reserve(r, more)) {
                note_err(r, MOM_ERR_NOMEM);
                return;
            }
            uint8_t **copies = calloc(more, sizeof *copies);
            if (!copies) {
                note_err(r, MOM_ERR_NOMEM);
                return;
            }
            for (size_t k = 0; k < more; k++) {
                const struct raft_entry *e = &m->entries[i + k];
                if (copy_data(e->data, e->len, &copies[k]) != MOM_OK) {
                    for (size_t j = 0; j < k; j++)
                        free(copies[j]);
                    free(copies);
                    note_err(r, MOM_ERR_NOMEM);
                    return;
                }
            }
            if (ci <= last_index(r))
                log_truncate_from(r, ci);
            for (size_t k = 0; k < more; k++)
                log_push_owned(r, m->entries[i + k].term, copies[k], m->entries[i + k].len);
            free(copies);
        }
        uint64_t match = m->prev_log_index + (uint64_t)m->n_entries;
        commit_to(r, m->leader_commit < match ? m->leader_commit : match);
        adopt_cluster_id(r, m);
        struct raft_msg *resp = respond(r, m, RAFT_MSG_APPEND_RESP);
        if (resp) {
            resp->success = true;
            resp->match_index = match;
            resp->seq = m->seq;
            resp->last_log_index = last_index(r);
        }
        maybe_clear_abstain(r);
        return;
    }
    struct raft_msg *resp = respond(r, m, RAFT_MSG_APPEND_RESP);
    if (!resp)
        return;
    resp->success = false;
    resp->match_index = m->prev_log_index;
    resp->seq = m->seq;
    resp->last_log_index = last_index(r);
    if (m->prev_log_index > last_index(r)) {
        resp->conflict_term = 0;
        resp->conflict_index = last_index(r) + 1;
    } else {
        /* prev > commit >= snapshot index, so its term is known */
        term_at(r, m->prev_log_index, &t);
        resp->conflict_term = t;
        resp->conflict_index = first_of_term(r, r->commit, m->prev_log_index, t);
    }
}

static void handle_snapshot(struct raft *r, const struct raft_msg *m)
{
    uint64_t t = 0;
    struct raft_msg *resp = respond(r, m, RAFT_MSG_SNAPSHOT_RESP);
    if (!resp)
        return;
    resp->success = true;
    if (m->snapshot_index <= r->commit) {
        resp->match_index = r->commit;
        return;
    }
    if (term_at(r, m->snapshot_index, &t) && t == m->snapshot_term) {
        commit_to(r, m->snapshot_index);
        resp->match_index = m->snapshot_index;
        maybe_clear_abstain(r);
        return;
    }
    log_info("raft g%" PRIu32 " n%" PRIu32 ": installing snapshot %" PRIu64 "/%" PRIu64
             " from n%" PRIu32,
             r->cfg.group_id, r->cfg.id, m->snapshot_index, m->snapshot_term, m->from);
    uint64_t old_commit = r->commit;
    log_clear(r);
    r->snap_index = m->snapshot_index;
    r->snap_term = m->snapshot_term;
    r->commit = r->applied = m->snapshot_index;
    if (r->stable > old_commit)
        r->stable = old_commit;
    r->unstable_from = m->snapshot_index + 1;
    r->pending_install = true;
    adopt_cluster_id(r, m);
    resp->match_index = m->snapshot_index;
    maybe_clear_abstain(r);
}

/* Leader: last index <= hi whose term is `term`, 0 when none is in memory. */
static uint64_t last_of_term(const struct raft *r, uint64_t hi, uint64_t term)
{
    uint64_t lo = r->snap_index, t = 0;
    if (hi > last_index(r))
        hi = last_index(r);
    if (hi <= lo)
        return 0;
    /* find the last index in (lo, hi] with term <= `term` */
    term_at(r, lo + 1, &t);
    if (t > term)
        return 0;
    uint64_t a = lo + 1, b = hi; /* invariant: term(a) <= term */
    while (a < b) {
        uint64_t mid = a + (b - a + 1) / 2;
        term_at(r, mid, &t);
        if (t <= term)
            a = mid;
        else
            b = mid - 1;
    }
    term_at(r, a, &t);
    return t == term ? a : 0;
}

static void handle_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *p = progress_of(r, m->from);
    uint64_t last = last_index(r);
    /* A node with wiped storage may be following us only because it forgot
     * a newer term: its answers prove nothing about our leadership. */
    bool was_abstaining = p->abstaining;
    p->abstaining = m->abstaining;
    if (!m->abstaining) {
        p->recent_active = true;
        if (m->seq > p->acked_seq)
            p->acked_seq = m->seq;
    }
    if (m->success) {
        uint64_t mi = m->match_index;
        if (mi > last) {
            log_warn("raft g%" PRIu32 " n%" PRIu32 ": n%" PRIu32 " claims match %" PRIu64
                     " beyond last %" PRIu64,
                     r->cfg.group_id, r->cfg.id, m->from, mi, last);
            mi = last;
        }
        bool progressed = false;
        if (mi > p->match) {
            p->match = mi;
            p->stall = 0;
            progressed = true;
        }
        if (p->next <= p->match)
            p->next = p->match + 1;
        infl_free_upto(r, p, p->match);
        if (p->state == PR_PROBE && mi + 1 >= p->next) {
            become_replicate(r, p);
        } else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snapshot) {
            p->next = p->match + 1;
            become_replicate(r, p);
        }
        if (progressed || was_abstaining != p->abstaining)
            maybe_commit(r);
        if (r->transferee == m->from && p->match == last_index(r))
            send_timeout_now(r, m->from);
    } else if (m->type == RAFT_MSG_APPEND_RESP && p->state != PR_SNAPSHOT) {
        uint64_t rejected = m->match_index;
        bool stale = rejected <= p->match || (p->state == PR_PROBE && rejected + 1 != p->next);
        if (!stale) {
            uint64_t nn = m->conflict_index;
            if (m->conflict_term > 0) {
                uint64_t idx = last_of_term(r, rejected, m->conflict_term);
                if (idx > 0)
                    nn = idx + 1;
            }
            if (nn > rejected)
                nn = rejected;
            if (nn < p->match + 1)
                nn = p->match + 1;
            become_probe(r, p, nn);
        }
    }
    advance_reads(r);
}

static void step_same_term(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_VOTE: handle_vote(r, m); break;
    case RAFT_MSG_VOTE_RESP:
        if ((r->role == RAFT_PRE_CANDIDATE && m->pre_vote) ||
            (r->role == RAFT_CANDIDATE && !m->pre_vote))
            handle_vote_resp(r, m);
        break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER) {
            log_error("raft g%" PRIu32 " n%" PRIu32 ": another leader n%" PRIu32
                      " in term %" PRIu64,
                      r->cfg.group_id, r->cfg.id, m->from, r->term);
            struct raft_msg *resp = respond(
                r, m, m->type == RAFT_MSG_APPEND ? RAFT_MSG_APPEND_RESP : RAFT_MSG_SNAPSHOT_RESP);
            if (resp)
                resp->match_index = m->prev_log_index;
            break;
        }
        if (r->role != RAFT_FOLLOWER)
            become_follower(r, r->term, m->from);
        r->lead = m->from;
        r->election_elapsed = 0;
        if (m->type == RAFT_MSG_APPEND)
            handle_append(r, m);
        else
            handle_snapshot(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role == RAFT_LEADER)
            handle_append_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role == RAFT_FOLLOWER && !r->abstain) {
            log_info("raft g%" PRIu32 " n%" PRIu32 ": leadership transfer from n%" PRIu32,
                     r->cfg.group_id, r->cfg.id, m->from);
            campaign(r, false, true);
        }
        break;
    case RAFT_MSG_HELLO:
    case RAFT_MSG_HELLO_RESP: break;
    }
}

static void step_msg(struct raft *r, const struct raft_msg *m)
{
    if (m->type == RAFT_MSG_HELLO) {
        struct raft_msg *resp = respond(r, m, RAFT_MSG_HELLO_RESP);
        if (resp) {
            resp->leader_commit = r->commit;
            resp->echo_incarnation = m->incarnation;
            resp->fresh = storage_fresh(r);
        }
        return;
    }
    if (m->type == RAFT_MSG_HELLO_RESP) {
        if (m->term > r->term)
            become_follower(r, m->term, RAFT_NONE);
        if (r->abstain && m->echo_incarnation == r->cfg.incarnation) {
            progress_of(r, m->from)->hello_ok = true;
            progress_of(r, m->from)->hello_fresh = m->fresh;
            if (m->leader_commit > r->hello_commit)
                r->hello_commit = m->leader_commit;
            maybe_form_cluster(r);
        }
        return;
    }
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_VOTE) {
            bool in_lease = !r->cfg.disable_check_quorum && r->lead != RAFT_NONE &&
                            r->election_elapsed < r->cfg.election_ticks && !m->leadership_transfer;
            if (in_lease) {
                struct raft_msg *resp = respond(r, m, RAFT_MSG_VOTE_RESP);
                if (resp)
                    resp->pre_vote = m->pre_vote;
                return;
            }
        }
        if (m->type == RAFT_MSG_VOTE && m->pre_vote) {
            /* a pre-vote never changes our term */
        } else if (m->type == RAFT_MSG_VOTE_RESP && m->pre_vote && m->vote_granted) {
            /* a granted pre-vote carries the term we would campaign at */
        } else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
            become_follower(r, m->term, m->from);
        } else {
            become_follower(r, m->term, RAFT_NONE);
        }
    } else if (m->term < r->term) {
        struct raft_msg *resp = NULL;
        switch (m->type) {
        case RAFT_MSG_APPEND:
            resp = respond(r, m, RAFT_MSG_APPEND_RESP);
            if (resp) {
                resp->match_index = m->prev_log_index;
                resp->seq = m->seq;
                resp->last_log_index = last_index(r);
            }
            break;
        case RAFT_MSG_SNAPSHOT: respond(r, m, RAFT_MSG_SNAPSHOT_RESP); break;
        case RAFT_MSG_VOTE:
            resp = respond(r, m, RAFT_MSG_VOTE_RESP);
            if (resp)
                resp->pre_vote = m->pre_vote;
            break;
        default: break; /* stale responses and TimeoutNow */
        }
        return;
    }
    step_same_term(r, m);
}

static bool msg_valid(const struct raft *r, const struct raft_msg *m)
{
    if (m->group_id != r->cfg.group_id || m->from == RAFT_NONE || m->from > r->n ||
        m->from == r->cfg.id || (m->to != RAFT_NONE && m->to != r->cfg.id))
        return false;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_HELLO_RESP)
        return false;
    if (m->type == RAFT_MSG_APPEND) {
        if (m->n_entries > 0 && !m->entries)
            return false;
        if (m->prev_log_term > m->term)
            return false;
        uint64_t prev_term = m->prev_log_term;
        for (size_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            if (e->index != m->prev_log_index + 1 + (uint64_t)i || e->term < prev_term ||
                e->term > m->term || (e->len > 0 && !e->data))
                return false;
            prev_term = e->term;
        }
    }
    if (m->type == RAFT_MSG_SNAPSHOT && (m->snapshot_index == 0 || m->snapshot_term > m->term))
        return false;
    return true;
}

/* ---- public API --------------------------------------------------------- */

int raft_new(const struct raft_config *cfg, const struct raft_hard_state *hs,
             const struct raft_snapshot_meta *snap, struct raft **out)
{
    *out = NULL;
    if (!cfg || cfg->n_nodes == 0 || cfg->n_nodes > MAX_NODES || cfg->id == RAFT_NONE ||
        cfg->id > cfg->n_nodes)
        return MOM_ERR_INVALID;
    struct raft *r = calloc(1, sizeof *r);
    if (!r)
        return MOM_ERR_NOMEM;
    r->cfg = *cfg;
    if (r->cfg.election_ticks == 0)
        r->cfg.election_ticks = DEFAULT_ELECTION_TICKS;
    if (r->cfg.heartbeat_ticks == 0)
        r->cfg.heartbeat_ticks = DEFAULT_HEARTBEAT_TICKS;
    if (r->cfg.max_msg_entries == 0)
        r->cfg.max_msg_entries = DEFAULT_MAX_MSG_ENTRIES;
    if (r->cfg.max_msg_bytes == 0)
        r->cfg.max_msg_bytes = DEFAULT_MAX_MSG_BYTES;
    if (r->cfg.max_inflight == 0)
        r->cfg.max_inflight = DEFAULT_MAX_INFLIGHT;
    if (r->cfg.heartbeat_ticks >= r->cfg.election_ticks) {
        free(r);
        return MOM_ERR_INVALID;
    }
    if (hs && hs->vote > cfg->n_nodes) {
        free(r);
        return MOM_ERR_INVALID;
    }
    r->n = cfg->n_nodes;
    r->quorum = r->n / 2 + 1;
    r->prs = calloc(r->n, sizeof *r->prs);
    r->infl_buf = calloc((size_t)r->n * r->cfg.max_inflight, sizeof *r->infl_buf);
    r->scratch = calloc(r->n, sizeof *r->scratch);
    if (!r->prs || !r->infl_buf || !r->scratch) {
        raft_free(r);
        return MOM_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < r->n; i++)
        r->prs[i].infl = r->infl_buf + (size_t)i * r->cfg.max_inflight;
    if (hs) {
        r->term = hs->term;
        r->vote = hs->vote;
        r->abstain = hs->abstain;
        r->cluster_id = hs->cluster_id;
        r->hs_handed = *hs;
    }
    if (r->n == 1)
        r->abstain = false; /* nobody to catch up from: see raft.h */
    if (snap) {
        r->snap_index = snap->index;
        r->snap_term = snap->term;
    }
    r->commit = r->applied = r->stable = r->snap_index;
    r->unstable_from = r->snap_index + 1;
    /* splitmix64 of the seed, never 0 for xorshift */
    uint64_t z = cfg->seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(cfg->id + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    r->rng = z ? z : 1;
    r->role = RAFT_FOLLOWER;
    reset_randomized_timeout(r);
    if (r->abstain) {
        for (uint32_t id = 1; id <= r->n; id++) {
            struct raft_msg *m = id != r->cfg.id ? msg_new(r, RAFT_MSG_HELLO, id) : NULL;
            if (m) {
                m->term = 0;
                m->fresh = storage_fresh(r);
            }
        }
    }
    if (r->err != MOM_OK) {
        raft_free(r);
        return MOM_ERR_NOMEM;
    }
    *out = r;
    return MOM_OK;
}

void raft_free(struct raft *r)
{
    if (!r)
        return;
    if (r->log)
        log_clear(r);
    raft_release(r, SIZE_MAX);
    free(r->garbage);
    free(r->log);
    free(r->prs);
    free(r->infl_buf);
    free(r->scratch);
    free(r->rp);
    free(r->rs);
    free(r->out);
    free(r->pm);
    free(r);
}

int raft_load_entry(struct raft *r, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    if (r->started || r->in_ready)
        return MOM_ERR_INVALID;
    if (index <= r->snap_index)
        return MOM_OK;
    if (index != last_index(r) + 1 || term < last_term(r))
        return MOM_ERR_INVALID;
    uint8_t *copy = NULL;
    int rc = copy_data(data, len, &copy);
    if (rc != MOM_OK)
        return rc;
    if (!log_reserve(r, 1)) {
        free(copy);
        return MOM_ERR_NOMEM;
    }
    log_push_owned(r, term, copy, len);
    r->stable = last_index(r);
    r->unstable_from = last_index(r) + 1;
    if (term > r->term) {
        /* the hard state lagged its entries: we never voted in that term */
        r->term = term;
        r->vote = RAFT_NONE;
    }
    return MOM_OK;
}

void raft_tick(struct raft *r)
{
    if (r->in_ready)
        return;
    r->started = true;
    r->err = MOM_OK;
    if (r->abstain) {
        if (++r->hello_elapsed >= r->cfg.heartbeat_ticks) {
            r->hello_elapsed = 0;
            for (uint32_t id = 1; id <= r->n; id++) {
                if (id != r->cfg.id && !progress_of(r, id)->hello_ok) {
                    struct raft_msg *m = msg_new(r, RAFT_MSG_HELLO, id);
                    if (m) {
                        m->term = 0;
                        m->fresh = storage_fresh(r);
                    }
                }
            }
        }
    }
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        /* A node forming a new cluster always asks first (pre-vote): a real
         * vote would cost it its fresh term 0, which the members still
         * waiting for every member's answer must see. */
        if (!r->abstain && r->election_elapsed >= r->randomized_timeout)
            campaign(r, !r->cfg.disable_pre_vote || storage_fresh(r), false);
        return;
    }
    /* leader */
    r->election_elapsed++;
    if (r->transferee != RAFT_NONE && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        log_info("raft g%" PRIu32 " n%" PRIu32 ": leadership transfer to n%" PRIu32 " abandoned",
                 r->cfg.group_id, r->cfg.id, r->transferee);
        r->transferee = RAFT_NONE;
    }
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (!r->cfg.disable_check_quorum) {
            uint32_t active = 1;
            for (uint32_t i = 0; i < r->n; i++)
                if (i + 1 != r->cfg.id && r->prs[i].recent_active)
                    active++;
            if (active < r->quorum) {
                log_info("raft g%" PRIu32 " n%" PRIu32
                         ": no quorum heard within an election timeout",
                         r->cfg.group_id, r->cfg.id);
                become_follower(r, r->term, RAFT_NONE);
                return;
            }
        }
        for (uint32_t i = 0; i < r->n; i++)
            r->prs[i].recent_active = false;
    }
    uint64_t last = last_index(r);
    for (uint32_t i = 0; i < r->n; i++) {
        if (i + 1 == r->cfg.id)
            continue;
        struct progress *p = &r->prs[i];
        switch (p->state) {
        case PR_REPLICATE:
            if (p->match >= last)
                p->stall = 0;
            else if (++p->stall >= r->cfg.election_ticks)
                become_probe(r, p, p->match + 1); /* appends were lost: resend */
            break;
        case PR_SNAPSHOT:
            if (++p->stall >= 2 * r->cfg.election_ticks)
                become_probe(r, p, p->match + 1);
            break;
        case PR_PROBE: break;
        }
    }
    if (++r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        r->seq++;
        for (uint32_t i = 0; i < r->n; i++) {
            if (i + 1 == r->cfg.id)
                continue;
            r->prs[i].need_heartbeat = true;
            if (r->prs[i].state == PR_PROBE)
                r->prs[i].probe_sent = false;
        }
    }
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    if (r->in_ready || !m || !msg_valid(r, m))
        return MOM_ERR_INVALID;
    r->started = true;
    if (m->cluster_id != 0 && r->cluster_id != 0 && m->cluster_id != r->cluster_id)
        return MOM_ERR_FOREIGN; /* never merged: the glue names both ids */
    r->err = MOM_OK;
    struct progress *p = progress_of(r, m->from);
    if (m->incarnation < p->incarnation)
        return MOM_ERR_INVALID; /* from a wiped-out past of that node */
    if (m->incarnation > p->incarnation) {
        bool changed = p->incarnation != 0;
        p->incarnation = m->incarnation;
        if (changed) {
            log_info("raft g%" PRIu32 " n%" PRIu32 ": n%" PRIu32
                     " has fresh storage (incarnation %" PRIu64 ")",
                     r->cfg.group_id, r->cfg.id, m->from, m->incarnation);
            if (r->role == RAFT_LEADER) {
                p->match = 0;
                p->abstaining = true; /* until it says otherwise */
                become_probe(r, p, last_index(r) + 1);
            }
        }
    }
    step_msg(r, m);
    return r->err;
}

int raft_propose(struct raft *r, const uint8_t *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (r->in_ready || len == 0 || !data)
        return MOM_ERR_INVALID;
    r->started = true;
    if (r->role != RAFT_LEADER)
        return MOM_ERR_NOT_LEADER;
    if (r->transferee != RAFT_NONE)
        return MOM_ERR_UNAVAILABLE;
    uint8_t *copy = NULL;
    int rc = copy_data(data, len, &copy);
    if (rc != MOM_OK)
        return rc;
    if (!log_reserve(r, 1)) {
        free(copy);
        return MOM_ERR_NOMEM;
    }
    log_push_owned(r, r->term, copy, len);
    if (index)
        *index = last_index(r);
    if (term)
        *term = r->term;
    return MOM_OK;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    if (r->in_ready)
        return MOM_ERR_INVALID;
    r->started = true;
    if (r->role != RAFT_LEADER)
        return MOM_ERR_NOT_LEADER;
    void *arr = r->rp;
    if (!grow(&arr, &r->cap_rp, r->n_rp + 1, sizeof *r->rp))
        return MOM_ERR_NOMEM;
    r->rp = arr;
    r->rp[r->n_rp++] = (struct read_pending){.ctx = ctx, .index = 0, .seq = 0};
    r->err = MOM_OK;
    start_read_round(r);
    advance_reads(r);
    return r->err;
}

int raft_transfer_leadership(struct raft *r, uint32_t to)
{
    if (r->in_ready || to == RAFT_NONE || to > r->n)
        return MOM_ERR_INVALID;
    r->started = true;
    if (r->role != RAFT_LEADER)
        return MOM_ERR_NOT_LEADER;
    if (to == r->cfg.id || r->transferee == to)
        return MOM_OK;
    log_info("raft g%" PRIu32 " n%" PRIu32 ": transferring leadership to n%" PRIu32,
             r->cfg.group_id, r->cfg.id, to);
    r->transferee = to;
    r->transfer_elapsed = 0;
    r->err = MOM_OK;
    if (progress_of(r, to)->match == last_index(r))
        send_timeout_now(r, to);
    return r->err;
}

int raft_campaign(struct raft *r)
{
    if (r->in_ready || r->role == RAFT_LEADER)
        return MOM_ERR_INVALID;
    r->started = true;
    if (r->abstain)
        return MOM_ERR_UNAVAILABLE;
    r->err = MOM_OK;
    campaign(r, !r->cfg.disable_pre_vote, false);
    return r->err;
}

int raft_compact(struct raft *r, uint64_t index)
{
    if (r->in_ready || index <= r->snap_index || index > r->applied)
        return MOM_ERR_INVALID;
    uint64_t t = 0;
    term_at(r, index, &t);
    size_t k = (size_t)(index - r->snap_index);
    void *arr = r->garbage;
    bool keep = grow(&arr, &r->cap_garbage, r->n_garbage + k, sizeof *r->garbage);
    if (keep)
        r->garbage = arr;
    for (size_t i = 0; i < k; i++) {
        struct raft_entry *e = &r->log[r->log_off + i];
        r->log_bytes -= e->len;
        if (!keep)
            free_data(e->data); /* no room to defer: free now */
        else if (e->data)
            r->garbage[r->n_garbage++] = e->data;
    }
    r->log_off += k;
    r->log_len -= k;
    if (r->log_len == 0)
        r->log_off = 0;
    r->snap_index = index;
    r->snap_term = t;
    if (r->stable < index)
        r->stable = index;
    if (r->unstable_from <= index)
        r->unstable_from = index + 1;
    return MOM_OK;
}

size_t raft_release(struct raft *r, size_t max)
{
    while (max-- > 0 && r->n_garbage > 0)
        free_data(r->garbage[--r->n_garbage]);
    return r->n_garbage;
}

void raft_report_snapshot(struct raft *r, uint32_t to, bool ok)
{
    if (r->in_ready || r->role != RAFT_LEADER || to == RAFT_NONE || to > r->n || to == r->cfg.id)
        return;
    struct progress *p = progress_of(r, to);
    if (p->state == PR_SNAPSHOT && !ok)
        become_probe(r, p, p->match + 1);
}

void raft_report_unreachable(struct raft *r, uint32_t to)
{
    if (r->in_ready || r->role != RAFT_LEADER || to == RAFT_NONE || to > r->n || to == r->cfg.id)
        return;
    struct progress *p = progress_of(r, to);
    if (p->state == PR_REPLICATE)
        become_probe(r, p, p->match + 1);
}

bool raft_ready(struct raft *r, struct raft_ready *rd)
{
    memset(rd, 0, sizeof *rd);
    if (r->in_ready)
        return false;
    r->started = true;
    if (r->role == RAFT_LEADER) {
        for (uint32_t id = 1; id <= r->n; id++)
            if (id != r->cfg.id)
                flush_peer(r, id);
    }
    uint64_t last = last_index(r);
    rd->install_snapshot = r->pending_install;
    if (r->pending_install) {
        rd->snapshot.index = r->snap_index;
        rd->snapshot.term = r->snap_term;
    }
    if (r->unstable_from <= last) {
        rd->entries = entry_ptr(r, r->unstable_from);
        rd->n_entries = (size_t)(last - r->unstable_from + 1);
    }
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.abstain = r->abstain;
    rd->hard_state.cluster_id = r->cluster_id;
    rd->hard_state_changed = r->term != r->hs_handed.term || r->vote != r->hs_handed.vote ||
                             r->abstain != r->hs_handed.abstain ||
                             r->cluster_id != r->hs_handed.cluster_id;
    rd->msgs = r->out;
    rd->n_msgs = r->n_out;
    rd->send_early = r->role == RAFT_LEADER && !rd->hard_state_changed && !rd->install_snapshot;
    if (r->commit > r->applied) {
        rd->committed = entry_ptr(r, r->applied + 1);
        rd->n_committed = (size_t)(r->commit - r->applied);
    }
    rd->reads = r->rs;
    rd->n_reads = r->n_rs;
    if (!rd->install_snapshot && rd->n_entries == 0 && !rd->hard_state_changed && rd->n_msgs == 0 &&
        rd->n_committed == 0 && rd->n_reads == 0)
        return false;
    rd->id = ++r->ready_id;
    r->in_ready = true;
    r->rd_n_committed = rd->n_committed;
    r->rd_n_entries = rd->n_entries;
    r->rd_install = rd->install_snapshot;
    return true;
}

static void push_mark(struct raft *r, uint64_t id, uint64_t index, uint64_t term)
{
    void *arr = r->pm;
    if (!grow(&arr, &r->cap_pm, r->n_pm + 1, sizeof *r->pm))
        return; /* the next acknowledged mark covers it */
    r->pm = arr;
    r->pm[r->n_pm++] = (struct persist_mark){.id = id, .index = index, .term = term};
}

void raft_advance(struct raft *r, const struct raft_ready *rd)
{
    if (!r->in_ready || rd->id != r->ready_id)
        return;
    if (r->rd_n_entries > 0) {
        uint64_t last = r->unstable_from + (uint64_t)r->rd_n_entries - 1;
        push_mark(r, rd->id, last, entry_ptr(r, last)->term);
        r->unstable_from = last + 1;
    } else if (r->rd_install) {
        push_mark(r, rd->id, r->snap_index, r->snap_term);
    }
    r->pending_install = false;
    r->hs_handed.term = r->term;
    r->hs_handed.vote = r->vote;
    r->hs_handed.abstain = r->abstain;
    r->hs_handed.cluster_id = r->cluster_id;
    /* The first cluster-id entry applied decides the cluster id (the same
     * entry on every member: it is committed). */
    for (uint64_t i = r->applied + 1; r->cluster_id == 0 && i <= r->applied + r->rd_n_committed;
         i++)
        raft_entry_cluster_id(entry_ptr(r, i), &r->cluster_id);
    r->applied += (uint64_t)r->rd_n_committed;
    if (r->n == 1)
        release_sent(r);
    r->n_out = 0;
    r->n_rs = 0;
    r->in_ready = false;
}

void raft_persisted(struct raft *r, uint64_t id)
{
    if (r->in_ready)
        return;
    size_t k = 0;
    uint64_t old = r->stable;
    for (; k < r->n_pm && r->pm[k].id <= id; k++) {
        uint64_t t = 0;
        if (term_at(r, r->pm[k].index, &t) && t == r->pm[k].term && r->pm[k].index > r->stable)
            r->stable = r->pm[k].index;
    }
    if (k > 0) {
        memmove(r->pm, r->pm + k, (r->n_pm - k) * sizeof *r->pm);
        r->n_pm -= k;
    }
    if (r->stable != old) {
        r->err = MOM_OK;
        maybe_commit(r);
    }
}
