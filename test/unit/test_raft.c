/* Unit tests for replication/raft: targeted scenarios on a small synchronous
 * harness (nodes persist each Ready at once, messages go through a FIFO that
 * links can cut): single-node commit and its release of applied entries,
 * elections, log repair with conflict
 * hints, pre-vote, check-quorum, snapshots and InstallSnapshot, leadership
 * transfer, ReadIndex, the abstain rule for wiped storage, the Figure 8 rule
 * (no commit of older-term entries by counting) and message validation.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "replication/raft.h"

#define TN_MAX 5

struct tmsg {
    struct raft_msg m;
    struct raft_entry *ents;
    uint8_t *blob;
};

struct tnode {
    struct raft *r;
    bool up;
    uint64_t applied_index;
    uint64_t sum;                              /* state machine: sum of applied 8-byte values */
    uint64_t count;                            /* and how many */
    uint64_t snap_index, snap_sum, snap_count; /* last snapshot taken */
    struct raft_read_state reads[16];
    size_t n_reads;
    unsigned rejects_sent; /* APPEND_RESP with success=false */
    unsigned snapshots_got;
};

struct tnet {
    uint32_t n;
    struct tnode nodes[TN_MAX + 1];
    bool cut[TN_MAX + 1][TN_MAX + 1];
    struct tmsg *q;
    size_t nq, capq, head;
    struct raft_config cfg;
    struct raft_msg last; /* last message delivered */
    uint32_t stepping_from;
};

static void tmsg_free(struct tmsg *t)
{
    free(t->ents);
    free(t->blob);
}

static void push_msg(struct tnet *tn, const struct raft_msg *m)
{
    if (tn->nq == tn->capq) {
        tn->capq = tn->capq ? tn->capq * 2 : 64;
        tn->q = realloc(tn->q, tn->capq * sizeof *tn->q);
        assert_non_null(tn->q);
    }
    struct tmsg *t = &tn->q[tn->nq++];
    memset(t, 0, sizeof *t);
    t->m = *m;
    if (m->n_entries) {
        size_t bytes = 0;
        for (size_t i = 0; i < m->n_entries; i++)
            bytes += m->entries[i].len;
        t->ents = calloc(m->n_entries, sizeof *t->ents);
        t->blob = malloc(bytes ? bytes : 1);
        size_t off = 0;
        for (size_t i = 0; i < m->n_entries; i++) {
            t->ents[i] = m->entries[i];
            if (m->entries[i].len) {
                memcpy(t->blob + off, m->entries[i].data, m->entries[i].len);
                t->ents[i].data = t->blob + off;
                off += m->entries[i].len;
            }
        }
        t->m.entries = t->ents;
    }
}

static uint64_t val_of(const struct raft_entry *e)
{
    uint64_t v = 0;
    if (e->len == 8)
        memcpy(&v, e->data, 8);
    return v;
}

/* Handles every pending Ready of node id; returns whether there was one. */
static bool handle_ready(struct tnet *tn, uint32_t id)
{
    struct tnode *nd = &tn->nodes[id];
    struct raft_ready rd;
    bool any = false;
    while (nd->up && raft_ready(nd->r, &rd)) {
        any = true;
        if (rd.install_snapshot) {
            /* the state streamed from the sender's latest snapshot */
            struct tnode *src = &tn->nodes[tn->stepping_from];
            assert_int_equal(src->snap_index, rd.snapshot.index);
            nd->sum = src->snap_sum;
            nd->count = src->snap_count;
            nd->applied_index = rd.snapshot.index;
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            if (rd.msgs[i].type == RAFT_MSG_APPEND_RESP && !rd.msgs[i].success)
                nd->rejects_sent++;
            push_msg(tn, &rd.msgs[i]);
        }
        for (size_t i = 0; i < rd.n_committed; i++) {
            const struct raft_entry *e = &rd.committed[i];
            assert_int_equal(e->index, nd->applied_index + 1);
            nd->applied_index = e->index;
            if (e->len && !raft_entry_cluster_id(e, NULL)) {
                nd->sum += val_of(e);
                nd->count++;
            }
        }
        for (size_t i = 0; i < rd.n_reads && nd->n_reads < 16; i++)
            nd->reads[nd->n_reads++] = rd.reads[i];
        raft_advance(nd->r, &rd);
        raft_persisted(nd->r, rd.id);
    }
    return any;
}

/* Processes Readies, then delivers one queued message; false when idle. */
static bool step_one(struct tnet *tn)
{
    bool any = false;
    for (uint32_t id = 1; id <= tn->n; id++)
        any |= handle_ready(tn, id);
    if (tn->head < tn->nq) {
        struct tmsg t = tn->q[tn->head++];
        struct tnode *to = &tn->nodes[t.m.to];
        if (to->up && tn->nodes[t.m.from].up && !tn->cut[t.m.from][t.m.to]) {
            if (t.m.type == RAFT_MSG_SNAPSHOT)
                to->snapshots_got++;
            tn->stepping_from = t.m.from;
            raft_step(to->r, &t.m);
            tn->last = t.m;
            handle_ready(tn, t.m.to);
        }
        tmsg_free(&t);
        if (tn->head == tn->nq)
            tn->head = tn->nq = 0;
        any = true;
    }
    return any;
}

static void flush(struct tnet *tn)
{
    for (int guard = 0; step_one(tn); guard++)
        assert_true(guard < 100000);
}

static void tick(struct tnet *tn, uint32_t id, int times)
{
    for (int i = 0; i < times; i++) {
        if (tn->nodes[id].up)
            raft_tick(tn->nodes[id].r);
        flush(tn);
    }
}

static void tick_all(struct tnet *tn, int times)
{
    for (int i = 0; i < times; i++) {
        for (uint32_t id = 1; id <= tn->n; id++)
            if (tn->nodes[id].up)
                raft_tick(tn->nodes[id].r);
        flush(tn);
    }
}

static struct raft_config base_cfg(uint32_t n)
{
    struct raft_config c = {.group_id = 3,
                            .n_nodes = n,
                            .election_ticks = 10,
                            .heartbeat_ticks = 1,
                            .max_msg_entries = 16,
                            .max_inflight = 4,
                            .incarnation = 1};
    return c;
}

static void node_init(struct tnet *tn, uint32_t id, const struct raft_hard_state *hs,
                      const struct raft_snapshot_meta *snap, uint64_t incarnation)
{
    struct raft_config c = tn->cfg;
    c.id = id;
    c.seed = 1000 + id;
    c.incarnation = incarnation;
    struct tnode *nd = &tn->nodes[id];
    raft_free(nd->r);
    memset(nd, 0, sizeof *nd);
    assert_int_equal(raft_new(&c, hs, snap, &nd->r), MOM_OK);
    nd->up = true;
}

static struct tnet *tnet_new(const struct raft_config *cfg)
{
    struct tnet *tn = calloc(1, sizeof *tn);
    assert_non_null(tn);
    tn->n = cfg->n_nodes;
    tn->cfg = *cfg;
    for (uint32_t id = 1; id <= tn->n; id++)
        node_init(tn, id, NULL, NULL, 1);
    return tn;
}

static void tnet_free(struct tnet *tn)
{
    for (uint32_t id = 1; id <= tn->n; id++)
        raft_free(tn->nodes[id].r);
    for (size_t i = tn->head; i < tn->nq; i++)
        tmsg_free(&tn->q[i]);
    free(tn->q);
    free(tn);
}

static void isolate(struct tnet *tn, uint32_t id, bool cut)
{
    for (uint32_t o = 1; o <= tn->n; o++) {
        if (o == id)
            continue;
        tn->cut[id][o] = cut;
        tn->cut[o][id] = cut;
    }
}

static void elect(struct tnet *tn, uint32_t id)
{
    assert_int_equal(raft_campaign(tn->nodes[id].r), MOM_OK);
    flush(tn);
    assert_int_equal(raft_role(tn->nodes[id].r), RAFT_LEADER);
}

static uint64_t propose(struct tnet *tn, uint32_t id, uint64_t v)
{
    uint64_t index = 0, term = 0;
    assert_int_equal(raft_propose(tn->nodes[id].r, (const uint8_t *)&v, 8, &index, &term), MOM_OK);
    assert_int_equal(term, raft_term(tn->nodes[id].r));
    return index;
}

static void load(struct tnet *tn, uint32_t id, uint64_t term, uint64_t index, uint64_t v)
{
    assert_int_equal(raft_load_entry(tn->nodes[id].r, term, index, (const uint8_t *)&v, 8), MOM_OK);
}

/* ---- tests -------------------------------------------------------------- */

static void test_single_node_commits(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(1);
    cfg.id = 1;
    struct raft *r = NULL;
    assert_int_equal(raft_new(&cfg, NULL, NULL, &r), MOM_OK);
    uint64_t idx = 0, term = 0;
    uint64_t v = 42;
    assert_int_equal(raft_propose(r, (const uint8_t *)&v, 8, &idx, &term), MOM_ERR_NOT_LEADER);

    /* the election timeout makes it leader on its own */
    for (int i = 0; i < 25 && raft_role(r) != RAFT_LEADER; i++)
        raft_tick(r);
    assert_int_equal(raft_role(r), RAFT_LEADER);
    assert_int_equal(raft_term(r), 1);

    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.term, 1);
    assert_int_equal(rd.hard_state.vote, 1);
    assert_int_equal(rd.n_entries, 1); /* the first leader proposes a cluster id */
    uint64_t cid = 0;
    assert_true(raft_entry_cluster_id(&rd.entries[0], &cid));
    assert_true(cid != 0);
    assert_int_equal(raft_cluster_id(r), 0); /* not before it is applied */
    assert_int_equal(rd.n_msgs, 0);
    assert_int_equal(rd.n_committed, 0); /* nothing is committed before it is durable */
    raft_advance(r, &rd);
    assert_int_equal(raft_commit_index(r), 0);
    raft_persisted(r, rd.id);
    assert_int_equal(raft_commit_index(r), 1);

    /* two proposals in one batch, committed by the same persist path */
    uint64_t a = 7, b = 8;
    assert_int_equal(raft_propose(r, (const uint8_t *)&a, 8, &idx, &term), MOM_OK);
    assert_int_equal(idx, 2);
    assert_int_equal(raft_propose(r, (const uint8_t *)&b, 8, &idx, &term), MOM_OK);
    assert_int_equal(idx, 3);
    assert_int_equal(raft_propose(r, NULL, 0, &idx, &term), MOM_ERR_INVALID);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 1); /* the cluster-id entry */
    assert_int_equal(rd.n_entries, 2);
    assert_false(rd.hard_state_changed);
    assert_true(rd.send_early);
    /* while a Ready is out, only getters work */
    assert_int_equal(raft_propose(r, (const uint8_t *)&a, 8, &idx, &term), MOM_ERR_INVALID);
    raft_advance(r, &rd);
    assert_int_equal(raft_commit_index(r), 1);
    assert_int_equal(raft_cluster_id(r), cid); /* applied: decided, and persisted next */
    raft_persisted(r, rd.id);
    assert_int_equal(raft_commit_index(r), 3);
    assert_true(raft_ready(r, &rd));
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.cluster_id, cid);
    assert_int_equal(rd.n_committed, 2);
    assert_int_equal(val_of(&rd.committed[0]), 7);
    assert_int_equal(val_of(&rd.committed[1]), 8);
    raft_advance(r, &rd);
    raft_persisted(r, rd.id);
    assert_int_equal(raft_applied_index(r), 3);
    assert_false(raft_ready(r, &rd));
    assert_int_equal(raft_check_invariants(r), MOM_OK);
    raft_free(r);
}

/* Hands one Ready over and marks it durable at once. */
static void ready_cycle(struct raft *r)
{
    struct raft_ready rd;
    while (raft_ready(r, &rd)) {
        raft_advance(r, &rd);
        raft_persisted(r, rd.id);
    }
}

/* A cluster of one frees an entry's data once it is applied and handed to
 * storage (nothing will send it); the byte count that paces snapshots
 * still counts it, and compaction and new proposals work as before. A
 * member of a larger cluster keeps its applied entries for its peers. */
static void test_single_node_releases_applied_entries(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(1);
    cfg.id = 1;
    struct raft *r = NULL;
    assert_int_equal(raft_new(&cfg, NULL, NULL, &r), MOM_OK);
    assert_int_equal(raft_campaign(r), MOM_OK);
    ready_cycle(r);
    assert_int_equal(raft_role(r), RAFT_LEADER);
    assert_int_equal(raft_applied_index(r), 1); /* the cluster-id entry */
    uint64_t bytes0 = raft_log_bytes(r);

    uint64_t idx = 0, term = 0, v = 5;
    assert_int_equal(raft_propose(r, (const uint8_t *)&v, 8, &idx, &term), MOM_OK);
    struct raft_entry e;
    assert_true(raft_entry_at(r, idx, &e)); /* not yet handed to storage */
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    assert_true(rd.entries[0].data != NULL);
    raft_advance(r, &rd);
    assert_true(raft_entry_at(r, idx, &e)); /* handed over, not yet applied */
    assert_int_equal(val_of(&e), 5);
    raft_persisted(r, rd.id);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(val_of(&rd.committed[0]), 5); /* data valid until advance */
    raft_advance(r, &rd);
    raft_persisted(r, rd.id);
    assert_int_equal(raft_applied_index(r), idx);
    assert_false(raft_entry_at(r, idx, &e)); /* released */
    uint64_t t = 0;
    assert_true(raft_term_at(r, idx, &t));
    assert_int_equal(t, term);
    assert_int_equal(raft_log_bytes(r), bytes0 + 8);
    assert_int_equal(raft_check_invariants(r), MOM_OK);

    /* compaction over released entries defers nothing */
    assert_int_equal(raft_compact(r, idx), MOM_OK);
    assert_int_equal(raft_release(r, 10), 0);
    assert_int_equal(raft_log_bytes(r), 0);
    for (uint64_t k = 0; k < 3; k++)
        assert_int_equal(raft_propose(r, (const uint8_t *)&k, 8, &idx, &term), MOM_OK);
    ready_cycle(r);
    assert_int_equal(raft_applied_index(r), idx);
    assert_false(raft_entry_at(r, idx, &e));
    assert_int_equal(raft_log_bytes(r), 24);
    assert_int_equal(raft_check_invariants(r), MOM_OK);
    raft_free(r);

    /* three members: the leader keeps what it applied */
    struct raft_config cfg3 = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg3);
    elect(tn, 1);
    uint64_t i3 = propose(tn, 1, 9);
    flush(tn);
    tick_all(tn, 2);
    assert_int_equal(tn->nodes[1].applied_index, i3);
    assert_true(raft_entry_at(tn->nodes[1].r, i3, &e));
    assert_int_equal(val_of(&e), 9);
    assert_int_equal(raft_check_invariants(tn->nodes[1].r), MOM_OK);
    tnet_free(tn);
}

static void test_three_node_election(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    /* no campaign call: the randomized timeouts elect exactly one leader */
    tick_all(tn, 30);
    uint32_t leaders = 0, leader = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        if (raft_role(tn->nodes[id].r) == RAFT_LEADER) {
            leaders++;
            leader = id;
        }
    }
    assert_int_equal(leaders, 1);
    for (uint32_t id = 1; id <= 3; id++) {
        assert_int_equal(raft_leader(tn->nodes[id].r), leader);
        assert_int_equal(raft_term(tn->nodes[id].r), raft_term(tn->nodes[leader].r));
    }
    for (uint64_t v = 1; v <= 5; v++)
        propose(tn, leader, v);
    flush(tn);
    tick_all(tn, 2); /* heartbeats carry the final commit index */
    for (uint32_t id = 1; id <= 3; id++) {
        assert_int_equal(tn->nodes[id].sum, 15);
        assert_int_equal(tn->nodes[id].count, 5);
        assert_int_equal(raft_commit_index(tn->nodes[id].r), 6);
        assert_int_equal(raft_check_invariants(tn->nodes[id].r), MOM_OK);
    }
    tnet_free(tn);
}

static void test_conflicting_follower_repaired(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    struct raft_hard_state hs2 = {.term = 2}, hs1 = {.term = 1};
    node_init(tn, 1, &hs2, NULL, 1);
    node_init(tn, 2, &hs2, NULL, 1);
    node_init(tn, 3, &hs1, NULL, 1);
    for (uint32_t id = 1; id <= 2; id++) {
        load(tn, id, 1, 1, 1);
        load(tn, id, 1, 2, 2);
        load(tn, id, 2, 3, 30);
        load(tn, id, 2, 4, 40);
    }
    /* node 3 holds a longer log of an older term that lost */
    load(tn, 3, 1, 1, 1);
    load(tn, 3, 1, 2, 2);
    for (uint64_t i = 3; i <= 6; i++)
        load(tn, 3, 1, i, 900 + i);
    elect(tn, 1);
    assert_int_equal(raft_term(tn->nodes[1].r), 3);
    tick_all(tn, 2);
    struct raft *f = tn->nodes[3].r;
    uint64_t t = 0;
    assert_int_equal(raft_last_index(f), 5);
    assert_true(raft_term_at(f, 3, &t));
    assert_int_equal(t, 2);
    assert_true(raft_term_at(f, 5, &t));
    assert_int_equal(t, 3);
    /* the conflict hint skipped the whole bad term in one round trip */
    assert_int_equal(tn->nodes[3].rejects_sent, 1);
    assert_int_equal(tn->nodes[3].sum, 1 + 2 + 30 + 40);
    assert_int_equal(tn->nodes[1].sum, tn->nodes[3].sum);
    tnet_free(tn);
}

static void run_partitioned_follower(bool pre_vote, uint64_t *term_after, uint32_t *leader_after)
{
    struct raft_config cfg = base_cfg(3);
    cfg.disable_pre_vote = !pre_vote;
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    propose(tn, 1, 5);
    flush(tn);
    isolate(tn, 3, true);
    for (int i = 0; i < 60; i++) {
        tick(tn, 3, 1);
        tick(tn, 1, 1);
        tick(tn, 2, 1);
    }
    if (pre_vote) {
        /* the isolated node never gets a pre-vote majority: its term stays */
        assert_int_equal(raft_term(tn->nodes[3].r), 1);
        assert_int_not_equal(raft_role(tn->nodes[3].r), RAFT_LEADER);
    } else {
        assert_true(raft_term(tn->nodes[3].r) > 1);
    }
    isolate(tn, 3, false);
    tick_all(tn, 30);
    *term_after = raft_term(tn->nodes[1].r);
    *leader_after = raft_leader(tn->nodes[2].r);
    for (uint32_t id = 1; id <= 3; id++)
        assert_int_equal(tn->nodes[id].sum, 5);
    tnet_free(tn);
}

static void test_prevote_prevents_disruption(void **state)
{
    (void)state;
    uint64_t term = 0;
    uint32_t leader = 0;
    run_partitioned_follower(true, &term, &leader);
    assert_int_equal(term, 1); /* rejoining did not disturb the term */
    assert_int_equal(leader, 1);
    /* without pre-vote the same history forces a new election */
    run_partitioned_follower(false, &term, &leader);
    assert_true(term > 1);
}

/* One-way link faults, as the chaos runner's `one-way` scenario makes them
 * between real nodes: first the leader's messages to a follower are lost
 * while the follower's reach the leader, then the reverse. Either way the
 * follower never wins a pre-vote (the others still hear the leader), so
 * the term and the leader stay, every proposal commits on the other two,
 * and the follower has applied all of it once the link heals. */
static void test_one_way_link_does_not_disrupt(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    propose(tn, 1, 5);
    flush(tn);
    uint64_t expect = 5;
    for (int dir = 0; dir < 2; dir++) {
        bool *cut = dir == 0 ? &tn->cut[1][3] : &tn->cut[3][1];
        *cut = true;
        for (uint64_t i = 0; i < 60; i++) {
            tick_all(tn, 1);
            if (i % 10 == 0) {
                propose(tn, 1, i + 1);
                expect += i + 1;
                flush(tn);
            }
        }
        assert_int_equal(raft_role(tn->nodes[1].r), RAFT_LEADER);
        for (uint32_t id = 1; id <= 3; id++)
            assert_int_equal(raft_term(tn->nodes[id].r), 1);
        assert_int_equal(raft_leader(tn->nodes[2].r), 1);
        assert_int_equal(tn->nodes[1].sum, expect);
        assert_int_equal(tn->nodes[2].sum, expect);
        *cut = false;
        tick_all(tn, 30);
        for (uint32_t id = 1; id <= 3; id++) {
            assert_int_equal(raft_term(tn->nodes[id].r), 1);
            assert_int_equal(raft_leader(tn->nodes[id].r), 1);
            assert_int_equal(tn->nodes[id].sum, expect);
        }
    }
    tnet_free(tn);
}

static void test_check_quorum_step_down(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    tick_all(tn, 3);
    isolate(tn, 1, true);
    /* at most two election timeouts: one to notice, one to check */
    for (int i = 0; i < 2 * 10 && raft_role(tn->nodes[1].r) == RAFT_LEADER; i++)
        tick(tn, 1, 1);
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_FOLLOWER);
    assert_int_equal(raft_leader(tn->nodes[1].r), RAFT_NONE);
    uint64_t idx = 0, term = 0, v = 1;
    assert_int_equal(raft_propose(tn->nodes[1].r, (const uint8_t *)&v, 8, &idx, &term),
                     MOM_ERR_NOT_LEADER);
    tnet_free(tn);

    /* with check-quorum off, an isolated leader keeps believing */
    cfg.disable_check_quorum = true;
    tn = tnet_new(&cfg);
    elect(tn, 1);
    isolate(tn, 1, true);
    tick(tn, 1, 50);
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_LEADER);
    tnet_free(tn);
}

static void test_snapshot_install(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    isolate(tn, 3, true);
    for (uint64_t v = 1; v <= 20; v++)
        propose(tn, 1, v);
    flush(tn);
    tick(tn, 1, 1);
    tick(tn, 2, 1);
    struct tnode *l = &tn->nodes[1];
    assert_int_equal(raft_commit_index(l->r), 21);
    assert_int_equal(l->applied_index, 21);
    /* the application snapshots at 15 (durable at once here) and compacts */
    assert_int_equal(raft_compact(l->r, 22), MOM_ERR_INVALID); /* beyond applied */
    l->snap_index = 15;
    l->snap_sum = 14 * 15 / 2; /* values 1..14 sit at indexes 2..15 */
    l->snap_count = 14;
    uint64_t bytes_before = raft_log_bytes(l->r);
    assert_int_equal(raft_compact(l->r, 15), MOM_OK);
    assert_int_equal(raft_first_index(l->r), 16);
    assert_int_equal(raft_snapshot(l->r).index, 15);
    assert_int_equal(raft_compact(l->r, 15), MOM_ERR_INVALID);
    /* the 15 data buffers (index 1 is the first leader's cluster-id entry)
     * are freed later, a slice at a time; the byte count drops at once */
    assert_int_equal(raft_log_bytes(l->r),
                     bytes_before - 14 * sizeof(uint64_t) - RAFT_CLUSTER_ID_ENTRY_LEN);
    assert_int_equal(raft_release(l->r, 10), 5);
    assert_int_equal(raft_release(l->r, 10), 0);
    assert_int_equal(raft_release(l->r, 10), 0);

    isolate(tn, 3, false);
    tick_all(tn, 3);
    struct tnode *f = &tn->nodes[3];
    assert_true(f->snapshots_got >= 1);
    assert_int_equal(raft_snapshot(f->r).index, 15);
    assert_int_equal(raft_commit_index(f->r), 21);
    assert_int_equal(f->applied_index, 21);
    assert_int_equal(f->sum, 210);
    assert_int_equal(f->count, 20);
    /* and it keeps up with new entries through normal appends */
    propose(tn, 1, 100);
    flush(tn);
    tick_all(tn, 2);
    assert_int_equal(f->sum, 310);
    assert_int_equal(raft_check_invariants(f->r), MOM_OK);
    tnet_free(tn);
}

static void test_leadership_transfer(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    propose(tn, 1, 3);
    flush(tn);
    assert_int_equal(raft_transfer_leadership(tn->nodes[2].r, 3), MOM_ERR_NOT_LEADER);

    /* the target is unreachable: the transfer blocks proposals, then gives up */
    isolate(tn, 2, true);
    propose(tn, 1, 4);
    flush(tn);
    assert_int_equal(raft_transfer_leadership(tn->nodes[1].r, 2), MOM_OK);
    assert_int_equal(raft_transferee(tn->nodes[1].r), 2);
    uint64_t idx = 0, term = 0, v = 9;
    assert_int_equal(raft_propose(tn->nodes[1].r, (const uint8_t *)&v, 8, &idx, &term),
                     MOM_ERR_UNAVAILABLE);
    tick(tn, 1, 10);
    assert_int_equal(raft_transferee(tn->nodes[1].r), RAFT_NONE);
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_LEADER);
    isolate(tn, 2, false);
    tick_all(tn, 2);

    /* reachable: the target catches up and wins at once (no timeout needed) */
    assert_int_equal(raft_transfer_leadership(tn->nodes[1].r, 2), MOM_OK);
    flush(tn);
    assert_int_equal(raft_role(tn->nodes[2].r), RAFT_LEADER);
    assert_int_equal(raft_term(tn->nodes[2].r), 2);
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_FOLLOWER);
    assert_int_equal(raft_leader(tn->nodes[1].r), 2);
    propose(tn, 2, 10);
    flush(tn);
    tick_all(tn, 2);
    for (uint32_t id = 1; id <= 3; id++)
        assert_int_equal(tn->nodes[id].sum, 17);
    tnet_free(tn);
}

static void test_read_index(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    assert_int_equal(raft_campaign(tn->nodes[1].r), MOM_OK);
    /* become leader but hold the no-op's acknowledgements back */
    for (int i = 0; i < 1000 && raft_role(tn->nodes[1].r) != RAFT_LEADER; i++)
        assert_true(step_one(tn));
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_LEADER);
    assert_int_equal(raft_commit_index(tn->nodes[1].r), 0);
    assert_int_equal(raft_read_index(tn->nodes[1].r, 77), MOM_OK);
    handle_ready(tn, 1);
    assert_int_equal(tn->nodes[1].n_reads, 0); /* waits for a commit in its term */
    flush(tn);
    assert_int_equal(tn->nodes[1].n_reads, 1);
    assert_int_equal(tn->nodes[1].reads[0].ctx, 77);
    assert_int_equal(tn->nodes[1].reads[0].err, MOM_OK);
    assert_int_equal(tn->nodes[1].reads[0].index, 1);

    uint64_t i2 = propose(tn, 1, 5);
    flush(tn);
    assert_int_equal(raft_read_index(tn->nodes[2].r, 1), MOM_ERR_NOT_LEADER);
    assert_int_equal(raft_read_index(tn->nodes[1].r, 78), MOM_OK);
    handle_ready(tn, 1);
    assert_int_equal(tn->nodes[1].n_reads, 1); /* needs a heartbeat round first */
    flush(tn);
    assert_int_equal(tn->nodes[1].n_reads, 2);
    assert_int_equal(tn->nodes[1].reads[1].ctx, 78);
    assert_int_equal(tn->nodes[1].reads[1].index, i2);

    /* a deposed leader never confirms a read; it fails it when stepping down */
    isolate(tn, 1, true);
    assert_int_equal(raft_read_index(tn->nodes[1].r, 79), MOM_OK);
    tick_all(tn, 40);
    assert_int_not_equal(raft_role(tn->nodes[1].r), RAFT_LEADER); /* follower or pre-candidate */
    assert_int_equal(raft_term(tn->nodes[1].r), 1);               /* pre-vote: no term bump */
    assert_int_equal(
        raft_role(tn->nodes[2].r) == RAFT_LEADER || raft_role(tn->nodes[3].r) == RAFT_LEADER, 1);
    assert_int_equal(tn->nodes[1].n_reads, 3);
    assert_int_equal(tn->nodes[1].reads[2].ctx, 79);
    assert_int_equal(tn->nodes[1].reads[2].err, MOM_ERR_NOT_LEADER);
    tnet_free(tn);
}

/* Three members all on fresh (abstaining) storage: they tell each other in
 * HELLO, form the cluster without a bootstrap flag, and the first leader's
 * cluster-id entry gives every member the same id. */
static void test_fresh_members_form_a_cluster(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    struct raft_hard_state fresh = {.abstain = true};
    /* node 3 is not there yet: the others wait for its answer */
    for (uint32_t id = 1; id <= 3; id++)
        node_init(tn, id, &fresh, NULL, 10 + id);
    tn->nodes[3].up = false;
    isolate(tn, 3, true);
    tick(tn, 1, 1);
    tick(tn, 2, 1);
    tick(tn, 1, 40);
    tick(tn, 2, 40);
    assert_true(raft_abstaining(tn->nodes[1].r));
    assert_true(raft_abstaining(tn->nodes[2].r));
    assert_int_equal(raft_term(tn->nodes[1].r), 0);

    tn->nodes[3].up = true;
    isolate(tn, 3, false);
    tick_all(tn, 60);
    uint32_t leaders = 0, leader = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        assert_false(raft_abstaining(tn->nodes[id].r));
        if (raft_role(tn->nodes[id].r) == RAFT_LEADER) {
            leaders++;
            leader = id;
        }
    }
    assert_int_equal(leaders, 1);
    uint64_t cid = raft_cluster_id(tn->nodes[leader].r);
    assert_true(cid != 0);
    for (uint32_t id = 1; id <= 3; id++) {
        assert_int_equal(raft_cluster_id(tn->nodes[id].r), cid);
        assert_int_equal(tn->nodes[id].count, 0); /* the cluster-id entry is no command */
    }
    propose(tn, leader, 7);
    flush(tn);
    tick_all(tn, 2);
    for (uint32_t id = 1; id <= 3; id++)
        assert_int_equal(tn->nodes[id].sum, 7);

    /* the whole cluster restarts on its data: nobody forms again, the id stays */
    struct raft_hard_state hs = {.term = raft_term(tn->nodes[leader].r), .cluster_id = cid};
    for (uint32_t id = 1; id <= 3; id++) {
        node_init(tn, id, &hs, NULL, 10 + id);
        load(tn, id, hs.term, 1, 0); /* stands in for the log (values only count) */
    }
    tick_all(tn, 60);
    for (uint32_t id = 1; id <= 3; id++) {
        assert_false(raft_abstaining(tn->nodes[id].r));
        assert_int_equal(raft_cluster_id(tn->nodes[id].r), cid);
    }

    /* a member wiped among members with data is not told "fresh": it abstains */
    struct raft_msg hello = {.type = RAFT_MSG_HELLO,
                             .group_id = 3,
                             .from = 3,
                             .to = 1,
                             .incarnation = 99,
                             .fresh = true,
                             .cookie = 4};
    assert_int_equal(raft_step(tn->nodes[1].r, &hello), MOM_OK);
    struct raft_ready rd;
    assert_true(raft_ready(tn->nodes[1].r, &rd));
    assert_int_equal(rd.n_msgs, 1);
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_HELLO_RESP);
    assert_false(rd.msgs[0].fresh);
    raft_advance(tn->nodes[1].r, &rd); /* the harness drops this answer */
    raft_persisted(tn->nodes[1].r, rd.id);
    node_init(tn, 3, &fresh, NULL, 99);
    assert_true(raft_abstaining(tn->nodes[3].r));
    tick_all(tn, 40);
    assert_false(raft_abstaining(tn->nodes[3].r)); /* caught up the usual way: */
    assert_int_equal(raft_vote(tn->nodes[3].r), raft_leader(tn->nodes[3].r));
    assert_int_equal(raft_cluster_id(tn->nodes[3].r), cid);
    tnet_free(tn);
}

/* A message carrying another cluster's id is refused, one without an id is
 * not; a node without an id refuses nothing. */
static void test_other_cluster_refused(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    cfg.id = 1;
    struct raft_hard_state hs = {.term = 2, .cluster_id = 0xAAAA};
    struct raft *r = NULL;
    assert_int_equal(raft_new(&cfg, &hs, NULL, &r), MOM_OK);
    struct raft_msg hb = {.type = RAFT_MSG_APPEND,
                          .group_id = 3,
                          .from = 2,
                          .to = 1,
                          .term = 2,
                          .incarnation = 1,
                          .cluster_id = 0xBBBB};
    assert_int_equal(raft_step(r, &hb), MOM_ERR_FOREIGN);
    assert_int_equal(raft_leader(r), RAFT_NONE);
    assert_int_equal(raft_term(r), 2);
    hb.cluster_id = 0;
    assert_int_equal(raft_step(r, &hb), MOM_OK);
    assert_int_equal(raft_leader(r), 2);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_true(rd.n_msgs > 0);
    assert_int_equal(rd.msgs[0].cluster_id, 0xAAAA); /* every message carries it */
    raft_advance(r, &rd);
    raft_free(r);

    cfg.id = 2;
    assert_int_equal(raft_new(&cfg, NULL, NULL, &r), MOM_OK);
    hb.from = 1;
    hb.to = 2;
    hb.cluster_id = 0xBBBB;
    assert_int_equal(raft_step(r, &hb), MOM_OK); /* adopts the leader's id */
    assert_int_equal(raft_cluster_id(r), 0xBBBB);
    hb.cluster_id = 0xCCCC;
    assert_int_equal(raft_step(r, &hb), MOM_ERR_FOREIGN);
    raft_free(r);
}

static void test_abstaining_wiped_node(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    struct tnet *tn = tnet_new(&cfg);
    elect(tn, 1);
    for (uint64_t v = 1; v <= 4; v++)
        propose(tn, 1, v);
    flush(tn);
    tick_all(tn, 2);
    uint64_t commit_before = raft_commit_index(tn->nodes[1].r);

    /* node 3 comes back with empty storage and a new incarnation */
    struct raft_hard_state fresh = {.abstain = true};
    node_init(tn, 3, &fresh, NULL, 2);
    struct raft *w = tn->nodes[3].r;
    assert_true(raft_abstaining(w));
    assert_int_equal(raft_campaign(w), MOM_ERR_UNAVAILABLE);

    /* it grants no vote, whatever the candidate's log */
    struct raft_msg vote = {.type = RAFT_MSG_VOTE,
                            .group_id = 3,
                            .from = 2,
                            .to = 3,
                            .term = 9,
                            .incarnation = 1,
                            .last_log_index = 100,
                            .last_log_term = 9,
                            .cookie = 5};
    assert_int_equal(raft_step(w, &vote), MOM_OK);
    struct raft_ready rd;
    assert_true(raft_ready(w, &rd));
    bool found = false;
    for (size_t i = 0; i < rd.n_msgs; i++) {
        if (rd.msgs[i].type == RAFT_MSG_VOTE_RESP) {
            assert_false(rd.msgs[i].vote_granted);
            assert_int_equal(rd.msgs[i].cookie, 5);
            found = true;
        }
    }
    assert_true(found);
    raft_advance(w, &rd); /* the harness drops these messages */
    raft_persisted(w, rd.id);
    assert_int_equal(raft_term(w), 9);
    isolate(tn, 3, true);
    tick(tn, 3, 100); /* and it never campaigns */
    assert_int_equal(raft_role(w), RAFT_FOLLOWER);
    assert_int_equal(raft_term(w), 9);

    /* start over with another fresh incarnation (the term 9 above never
     * reached the others) */
    node_init(tn, 3, &fresh, NULL, 3);
    isolate(tn, 3, false);
    w = tn->nodes[3].r;
    /* while node 2 is away, node 3 can not finish HELLO: its acks do not count */
    isolate(tn, 2, true);
    tick_all(tn, 3);
    assert_true(raft_abstaining(w));
    uint64_t idx = propose(tn, 1, 50);
    flush(tn);
    tick_all(tn, 3);
    assert_int_equal(raft_last_index(w), idx);            /* replicated to it ... */
    assert_true(raft_commit_index(tn->nodes[1].r) < idx); /* ... but not counted */
    assert_int_equal(raft_commit_index(tn->nodes[1].r), commit_before);

    /* node 2 returns: HELLO completes, node 3 catches up and votes again */
    isolate(tn, 2, false);
    tick_all(tn, 5);
    assert_int_equal(raft_commit_index(tn->nodes[1].r), idx);
    assert_false(raft_abstaining(w));
    assert_int_equal(raft_vote(w), raft_leader(w));
    assert_int_equal(tn->nodes[3].sum, 1 + 2 + 3 + 4 + 50);

    /* a message from its wiped-out past is dropped by the peers */
    struct raft_msg stale = {.type = RAFT_MSG_APPEND_RESP,
                             .group_id = 3,
                             .from = 3,
                             .to = 1,
                             .term = raft_term(w),
                             .incarnation = 2,
                             .success = true,
                             .match_index = 1};
    assert_int_equal(raft_step(tn->nodes[1].r, &stale), MOM_ERR_INVALID);

    /* after catching up, it grants a vote for a later term to an up-to-date candidate */
    struct raft_msg v2 = {.type = RAFT_MSG_VOTE,
                          .group_id = 3,
                          .from = 2,
                          .to = 3,
                          .term = raft_term(w) + 1,
                          .incarnation = 1,
                          .last_log_index = raft_last_index(w),
                          .cookie = 6,
                          .leadership_transfer = true};
    raft_term_at(w, raft_last_index(w), &v2.last_log_term);
    assert_int_equal(raft_step(w, &v2), MOM_OK);
    assert_true(raft_ready(w, &rd));
    found = false;
    for (size_t i = 0; i < rd.n_msgs; i++)
        if (rd.msgs[i].type == RAFT_MSG_VOTE_RESP && rd.msgs[i].cookie == 6)
            found = rd.msgs[i].vote_granted;
    assert_true(found);
    assert_true(rd.hard_state_changed);
    assert_int_equal(rd.hard_state.vote, 2);
    assert_false(rd.hard_state.abstain);
    raft_advance(w, &rd);
    raft_persisted(w, rd.id);
    tnet_free(tn);
}

/* Figure 8 of the Raft paper: a leader must not commit an entry of an older
 * term by counting replicas, only through an entry of its own term. */
static void test_no_commit_of_older_term_by_counting(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    cfg.max_msg_entries = 1;
    struct tnet *tn = tnet_new(&cfg);
    struct raft_hard_state h1 = {.term = 3}, h2 = {.term = 3, .vote = 2},
                           h3 = {.term = 3, .vote = 2};
    node_init(tn, 1, &h1, NULL, 1);
    node_init(tn, 2, &h2, NULL, 1);
    node_init(tn, 3, &h3, NULL, 1);
    /* node 1 led term 2 and wrote e at index 2; node 2 led term 3 and wrote x there */
    for (uint32_t id = 1; id <= 3; id++)
        load(tn, id, 1, 1, 1);
    load(tn, 1, 2, 2, 20);
    load(tn, 2, 3, 2, 30);
    tn->nodes[2].up = false;
    /* node 1 wins term 4 with node 3's vote and replicates e to it */
    assert_int_equal(raft_campaign(tn->nodes[1].r), MOM_OK);
    bool acked_e = false;
    for (int i = 0; i < 1000 && !acked_e; i++) {
        assert_true(step_one(tn));
        acked_e = tn->last.type == RAFT_MSG_APPEND_RESP && tn->last.from == 3 && tn->last.success &&
                  tn->last.match_index == 2;
    }
    assert_true(acked_e);
    assert_int_equal(raft_role(tn->nodes[1].r), RAFT_LEADER);
    assert_int_equal(raft_term(tn->nodes[1].r), 4);
    /* e is on a majority, yet not committed */
    assert_int_equal(raft_commit_index(tn->nodes[1].r), 0);
    /* once the term-4 no-op is on a majority, both commit */
    flush(tn);
    assert_int_equal(raft_commit_index(tn->nodes[1].r), 3);
    assert_int_equal(tn->nodes[1].sum, 1 + 20);
    tnet_free(tn);
}

static void test_message_validation_and_cookies(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(3);
    cfg.id = 1;
    struct raft *r = NULL;
    assert_int_equal(raft_new(&cfg, NULL, NULL, &r), MOM_OK);
    struct raft_msg m = {.type = RAFT_MSG_VOTE,
                         .group_id = 3,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .cookie = 99,
                         .incarnation = 1};
    struct raft_msg bad = m;
    bad.group_id = 4;
    assert_int_equal(raft_step(r, &bad), MOM_ERR_INVALID);
    bad = m;
    bad.from = 1;
    assert_int_equal(raft_step(r, &bad), MOM_ERR_INVALID);
    bad.from = 4;
    assert_int_equal(raft_step(r, &bad), MOM_ERR_INVALID);
    bad = m;
    bad.to = 3;
    assert_int_equal(raft_step(r, &bad), MOM_ERR_INVALID);
    struct raft_entry ents[2] = {{.term = 1, .index = 1}, {.term = 1, .index = 3}};
    struct raft_msg app = {.type = RAFT_MSG_APPEND,
                           .group_id = 3,
                           .from = 2,
                           .to = 1,
                           .term = 1,
                           .entries = ents,
                           .n_entries = 2,
                           .incarnation = 1};
    assert_int_equal(raft_step(r, &app), MOM_ERR_INVALID); /* not contiguous */
    ents[1].index = 2;
    ents[1].term = 2;
    assert_int_equal(raft_step(r, &app), MOM_ERR_INVALID); /* entry term above message term */

    /* a request gets exactly one response carrying its cookie */
    assert_int_equal(raft_step(r, &m), MOM_OK);
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_msgs, 1);
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_VOTE_RESP);
    assert_int_equal(rd.msgs[0].cookie, 99);
    assert_int_equal(rd.msgs[0].to, 2);
    assert_int_equal(rd.msgs[0].group_id, 3);
    assert_true(rd.msgs[0].vote_granted);
    assert_true(rd.hard_state_changed); /* the vote must be durable before the answer leaves */
    assert_false(rd.send_early);
    raft_advance(r, &rd);
    raft_persisted(r, rd.id);
    /* a second candidate in the same term is refused */
    m.from = 3;
    m.cookie = 100;
    assert_int_equal(raft_step(r, &m), MOM_OK);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_msgs, 1);
    assert_false(rd.msgs[0].vote_granted);
    assert_int_equal(rd.msgs[0].cookie, 100);
    raft_advance(r, &rd);
    raft_free(r);

    struct raft_config badcfg = base_cfg(3);
    badcfg.id = 4;
    assert_int_equal(raft_new(&badcfg, NULL, NULL, &r), MOM_ERR_INVALID);
    badcfg.id = 1;
    badcfg.heartbeat_ticks = 10;
    assert_int_equal(raft_new(&badcfg, NULL, NULL, &r), MOM_ERR_INVALID);
}

static void test_restart_from_storage(void **state)
{
    (void)state;
    struct raft_config cfg = base_cfg(1);
    cfg.id = 1;
    struct raft_hard_state hs = {.term = 2, .vote = 1};
    struct raft_snapshot_meta snap = {.index = 5, .term = 2};
    struct raft *r = NULL;
    assert_int_equal(raft_new(&cfg, &hs, &snap, &r), MOM_OK);
    uint64_t v = 1;
    assert_int_equal(raft_load_entry(r, 1, 4, (const uint8_t *)&v, 8),
                     MOM_OK); /* below the snapshot: skipped */
    assert_int_equal(raft_load_entry(r, 2, 6, (const uint8_t *)&v, 8), MOM_OK);
    assert_int_equal(raft_load_entry(r, 2, 8, (const uint8_t *)&v, 8), MOM_ERR_INVALID); /* gap */
    assert_int_equal(raft_load_entry(r, 3, 7, (const uint8_t *)&v, 8), MOM_OK);
    /* the term follows the newest entry (hard state written after entries) */
    assert_int_equal(raft_term(r), 3);
    assert_int_equal(raft_commit_index(r), 5);
    assert_int_equal(raft_first_index(r), 6);
    assert_int_equal(raft_last_index(r), 7);
    assert_int_equal(raft_campaign(r), MOM_OK);
    assert_int_equal(raft_role(r), RAFT_LEADER);
    assert_int_equal(raft_term(r), 4);
    assert_int_equal(raft_load_entry(r, 4, 8, NULL, 0), MOM_ERR_INVALID); /* too late */
    struct raft_ready rd;
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 8);
    raft_advance(r, &rd);
    raft_persisted(r, rd.id);
    assert_int_equal(raft_commit_index(r), 8);
    assert_true(raft_ready(r, &rd));
    assert_int_equal(rd.n_committed, 3);
    assert_int_equal(rd.committed[0].index, 6);
    raft_advance(r, &rd);
    raft_free(r);
}

int main(void)
{
    log_set_level(MOM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_node_commits),
        cmocka_unit_test(test_single_node_releases_applied_entries),
        cmocka_unit_test(test_three_node_election),
        cmocka_unit_test(test_conflicting_follower_repaired),
        cmocka_unit_test(test_prevote_prevents_disruption),
        cmocka_unit_test(test_one_way_link_does_not_disrupt),
        cmocka_unit_test(test_check_quorum_step_down),
        cmocka_unit_test(test_snapshot_install),
        cmocka_unit_test(test_leadership_transfer),
        cmocka_unit_test(test_read_index),
        cmocka_unit_test(test_abstaining_wiped_node),
        cmocka_unit_test(test_fresh_members_form_a_cluster),
        cmocka_unit_test(test_other_cluster_refused),
        cmocka_unit_test(test_no_commit_of_older_term_by_counting),
        cmocka_unit_test(test_message_validation_and_cookies),
        cmocka_unit_test(test_restart_from_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
