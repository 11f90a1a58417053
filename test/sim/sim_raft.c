/* Deterministic simulation of the Raft core (replication/raft.c): N in-memory
 * nodes driven by a seeded scheduler that drops, duplicates, delays and
 * reorders messages, partitions and heals the network, crashes nodes (they
 * keep only what was made durable), wipes a node's storage, restarts nodes
 * or the whole cluster at once, gives a node the storage of another cluster,
 * proposes commands, takes snapshots, transfers leadership and asks for read
 * indexes. Most seeds start every node on fresh, abstaining storage, so the
 * cluster must form without a bootstrap flag; the others use the flag. The per-node "glue" follows
 * the contract of raft.h exactly (persist in Ready order, messages after persistence or early when
 * allowed, apply, advance, persisted). Safety invariants are checked after every step; at the end
 * of each seed the network heals and every node must converge on the same state holding every
 * acknowledged proposal exactly once. Usage: sim_raft [--seeds N | --seed S] [--nodes K] [--jobs J]
 * [--keep-going] SPDX-License-Identifier: MIT */
#include "replication/raft.h"

#include "common/err.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXN 7
#define TICK 10 /* time units per tick */
#define CHAOS_UNITS 3000
#define HEAL_UNITS 4000
#define HEAL_PROPOSE_UNITS 200
#define FOREIGN_CMD (1ULL << 62) /* command ids of another cluster's log */

/* ---- randomness --------------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t below(struct rng *g, uint64_t n)
{
    return n ? rnd(g) % n : 0;
}
static uint64_t between(struct rng *g, uint64_t lo, uint64_t hi)
{
    return lo + below(g, hi - lo + 1);
}
static bool ppm(struct rng *g, uint32_t p)
{
    return below(g, 1000000) < p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof *(arr));                                        \
        }                                                                                          \
    } while (0)

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- model types -------------------------------------------------------- */

struct snap {
    uint64_t index, term;
    uint64_t *cmds; /* the state machine: applied command ids in order */
    size_t n, cap;
};

struct dentry {
    uint64_t term, index;
    uint8_t *data;
    size_t len;
};

/* What survives a crash. */
struct disk {
    struct raft_hard_state hs;
    struct snap snap;
    struct dentry *log;
    size_t n, cap;
    uint64_t incarnation;
};

struct netmsg {
    struct raft_msg m;
    struct raft_entry *ents;
    uint8_t *blob;
    struct snap snap; /* RAFT_MSG_SNAPSHOT payload (the "streamed" bytes) */
    uint64_t at, order;
    bool from_foreign; /* sent while the sender held another cluster's storage */
};

struct batch {
    uint64_t id; /* Ready id; 0 for an application snapshot */
    uint64_t done_at;
    bool hs_changed;
    struct raft_hard_state hs;
    bool install, app_snapshot;
    struct snap snap;
    struct dentry *ents;
    size_t n_ents;
    uint64_t prev_term; /* term before ents[0] */
    struct netmsg **msgs;
    size_t n_msgs, cap_msgs;
    struct batch *next;
};

struct proposal {
    uint64_t index, term, cmd;
};

struct pending_read {
    uint64_t ctx, min_index;
};

struct node {
    uint32_t id;
    bool up;
    struct raft *r;
    struct disk disk;
    struct snap sm; /* live state machine: sm.index = applied index */
    struct batch *pq_head, *pq_tail;
    uint64_t pq_last_done;
    struct proposal *props;
    size_t n_props, cap_props;
    struct pending_read *reads;
    size_t n_reads, cap_reads;
    uint64_t next_tick, down_until;
    uint64_t crash_at; /* scheduled crash (0 = none) */
    uint64_t leader_since;
    uint64_t isolate_at; /* scheduled isolation (0 = none) */
    const struct netmsg *staged;
    bool was_leader;
    uint64_t leader_term, last_commit;
    bool foreign; /* holds the storage of another cluster */
};

struct lm_slot {
    uint64_t index, term, hash, prev_term; /* index 0 = empty */
};

struct applied_rec {
    uint64_t term, hash;
    bool set;
};

struct world {
    uint64_t seed;
    bool verbose;
    struct rng g;
    uint32_t n;
    struct node nodes[MAXN];
    struct raft_config cfg;
    uint64_t now;
    bool chaos;

    struct netmsg **heap;
    size_t heap_n, heap_cap;
    uint64_t order;
    bool conn[MAXN][MAXN];
    uint64_t heal_at;

    /* per-seed chaos knobs */
    uint32_t p_drop, p_dup, p_long, p_propose, p_crash, p_wipe, p_part, p_snap, p_transfer, p_read,
        p_early;
    uint32_t p_new_leader_crash, p_restart_all, p_foreign;
    bool bootstrap;      /* the nodes start with the bootstrap override */
    uint64_t cluster_id; /* the first nonzero one any member reported */
    uint32_t pad_max;
    uint64_t snap_every;

    /* invariant tables */
    uint32_t *leader_of_term;
    size_t lot_cap;
    struct lm_slot *lm;
    size_t lm_cap, lm_n;
    struct applied_rec *applied;
    size_t applied_cap;
    uint64_t applied_max;
    uint64_t next_cmd;
    uint64_t *cmd_index;
    bool *cmd_acked;
    size_t cmd_cap;
    uint64_t max_acked_index;
    uint64_t cookie;
    uint64_t read_ctx;

    bool failed;
    char why[512];
    /* stats */
    uint64_t n_delivered, n_acked, n_elections, n_snap_installs, n_wipes, n_crashes;
    uint64_t n_restart_all, n_foreign, n_refused;
};

static void trace(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct world *w, const char *fmt, ...)
{
    if (!w->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%6" PRIu64 "] ", w->now);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void fail(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct world *w, const char *fmt, ...)
{
    if (w->failed)
        return;
    w->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
    if (w->verbose)
        printf("[%6" PRIu64 "] FAILURE: %s\n", w->now, w->why);
}

/* ---- snapshots, disks, messages ----------------------------------------- */

static void snap_copy(struct snap *dst, const struct snap *src)
{
    dst->index = src->index;
    dst->term = src->term;
    dst->n = src->n;
    dst->cap = src->n;
    dst->cmds = xmalloc(src->n * sizeof *dst->cmds);
    if (src->n)
        memcpy(dst->cmds, src->cmds, src->n * sizeof *dst->cmds);
}

static void snap_free(struct snap *s)
{
    free(s->cmds);
    memset(s, 0, sizeof *s);
}

static void disk_free_log(struct disk *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->log[i].data);
    d->n = 0;
}

static void disk_free(struct disk *d)
{
    disk_free_log(d);
    free(d->log);
    d->log = NULL;
    d->cap = 0;
    snap_free(&d->snap);
}

static void netmsg_free(struct netmsg *nm)
{
    if (!nm)
        return;
    free(nm->ents);
    free(nm->blob);
    snap_free(&nm->snap);
    free(nm);
}

static struct netmsg *netmsg_copy(const struct raft_msg *m)
{
    struct netmsg *nm = xcalloc(1, sizeof *nm);
    nm->m = *m;
    if (m->n_entries > 0) {
        size_t bytes = 0;
        for (size_t i = 0; i < m->n_entries; i++)
            bytes += m->entries[i].len;
        nm->ents = xmalloc(m->n_entries * sizeof *nm->ents);
        nm->blob = xmalloc(bytes);
        size_t off = 0;
        for (size_t i = 0; i < m->n_entries; i++) {
            nm->ents[i] = m->entries[i];
            if (m->entries[i].len) {
                memcpy(nm->blob + off, m->entries[i].data, m->entries[i].len);
                nm->ents[i].data = nm->blob + off;
                off += m->entries[i].len;
            }
        }
        nm->m.entries = nm->ents;
    } else {
        nm->m.entries = NULL;
    }
    return nm;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n_ents; i++)
        free(b->ents[i].data);
    free(b->ents);
    for (size_t i = 0; i < b->n_msgs; i++)
        netmsg_free(b->msgs[i]);
    free(b->msgs);
    snap_free(&b->snap);
    free(b);
}

/* ---- the network -------------------------------------------------------- */

static bool heap_less(const struct netmsg *a, const struct netmsg *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(struct world *w, struct netmsg *nm)
{
    GROW(w->heap, w->heap_n, w->heap_cap);
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(nm, w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = nm;
}

static struct netmsg *heap_pop(struct world *w)
{
    struct netmsg *top = w->heap[0];
    struct netmsg *last = w->heap[--w->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct netmsg *mv = last;
        if (l < w->heap_n && heap_less(w->heap[l], mv)) {
            m = l;
            mv = w->heap[l];
        }
        if (r < w->heap_n && heap_less(w->heap[r], mv))
            m = r;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->heap_n > 0)
        w->heap[i] = last;
    return top;
}

static uint64_t delay(struct world *w)
{
    if (w->chaos && ppm(&w->g, w->p_long))
        return between(&w->g, 10, 150);
    return between(&w->g, 1, 8);
}

/* Puts a message on the wire (takes ownership): may drop or duplicate it. */
static void net_send(struct world *w, struct netmsg *nm)
{
    if (w->chaos && ppm(&w->g, w->p_drop)) {
        netmsg_free(nm);
        return;
    }
    if (w->chaos && ppm(&w->g, w->p_dup)) {
        struct netmsg *dup = netmsg_copy(&nm->m);
        if (nm->snap.cmds || nm->m.type == RAFT_MSG_SNAPSHOT)
            snap_copy(&dup->snap, &nm->snap);
        dup->from_foreign = nm->from_foreign;
        dup->at = w->now + delay(w);
        dup->order = w->order++;
        heap_push(w, dup);
    }
    nm->at = w->now + delay(w);
    nm->order = w->order++;
    heap_push(w, nm);
}

/* ---- invariant tables --------------------------------------------------- */

static void lm_grow(struct world *w);

static struct lm_slot *lm_find(struct world *w, uint64_t index, uint64_t term, bool insert)
{
    if (insert && (w->lm_n + 1) * 2 > w->lm_cap)
        lm_grow(w);
    if (w->lm_cap == 0)
        return NULL;
    size_t mask = w->lm_cap - 1;
    size_t i = (size_t)((index * 0x9E3779B97F4A7C15ULL) ^ (term * 0xC2B2AE3D27D4EB4FULL)) & mask;
    for (;;) {
        struct lm_slot *s = &w->lm[i];
        if (s->index == 0) {
            if (!insert)
                return NULL;
            s->index = index;
            s->term = term;
            w->lm_n++;
            return s;
        }
        if (s->index == index && s->term == term)
            return s;
        i = (i + 1) & mask;
    }
}

static void lm_grow(struct world *w)
{
    struct lm_slot *old = w->lm;
    size_t oc = w->lm_cap;
    w->lm_cap = oc ? oc * 2 : 1024;
    w->lm = xcalloc(w->lm_cap, sizeof *w->lm);
    w->lm_n = 0;
    for (size_t i = 0; i < oc; i++) {
        if (old[i].index) {
            struct lm_slot *s = lm_find(w, old[i].index, old[i].term, true);
            s->hash = old[i].hash;
            s->prev_term = old[i].prev_term;
        }
    }
    free(old);
}

#define TERM_UNKNOWN UINT64_MAX

/* Log matching: one (index, term) names one entry with one predecessor term
 * (which by induction makes the whole prefix identical). */
static void check_log_entry(struct world *w, uint32_t node, uint64_t index, uint64_t term,
                            uint64_t hash, uint64_t prev_term)
{
    struct lm_slot *s = lm_find(w, index, term, false);
    if (!s) {
        s = lm_find(w, index, term, true);
        s->hash = hash;
        s->prev_term = prev_term;
        return;
    }
    if (s->hash != hash)
        fail(w, "log matching: n%u holds a different entry at index %" PRIu64 " term %" PRIu64,
             node, index, term);
    if (prev_term != TERM_UNKNOWN) {
        if (s->prev_term == TERM_UNKNOWN)
            s->prev_term = prev_term;
        else if (s->prev_term != prev_term)
            fail(w,
                 "log matching: n%u entry %" PRIu64 "/%" PRIu64 " follows term %" PRIu64
                 ", elsewhere %" PRIu64,
                 node, index, term, prev_term, s->prev_term);
    }
}

static void need_applied(struct world *w, uint64_t index)
{
    if (index < w->applied_cap)
        return;
    size_t nc = w->applied_cap ? w->applied_cap : 1024;
    while (nc <= index)
        nc *= 2;
    w->applied = xrealloc(w->applied, nc * sizeof *w->applied);
    memset(w->applied + w->applied_cap, 0, (nc - w->applied_cap) * sizeof *w->applied);
    w->applied_cap = nc;
}

static void need_cmd(struct world *w, uint64_t cmd)
{
    if (cmd < w->cmd_cap)
        return;
    size_t nc = w->cmd_cap ? w->cmd_cap : 1024;
    while (nc <= cmd)
        nc *= 2;
    w->cmd_index = xrealloc(w->cmd_index, nc * sizeof *w->cmd_index);
    w->cmd_acked = xrealloc(w->cmd_acked, nc * sizeof *w->cmd_acked);
    memset(w->cmd_index + w->cmd_cap, 0, (nc - w->cmd_cap) * sizeof *w->cmd_index);
    memset(w->cmd_acked + w->cmd_cap, 0, (nc - w->cmd_cap) * sizeof *w->cmd_acked);
    w->cmd_cap = nc;
}

static void check_leader_term(struct world *w, struct node *nd)
{
    uint64_t term = raft_term(nd->r);
    if (term >= w->lot_cap) {
        size_t nc = w->lot_cap ? w->lot_cap : 256;
        while (nc <= term)
            nc *= 2;
        w->leader_of_term = xrealloc(w->leader_of_term, nc * sizeof *w->leader_of_term);
        memset(w->leader_of_term + w->lot_cap, 0, (nc - w->lot_cap) * sizeof *w->leader_of_term);
        w->lot_cap = nc;
    }
    if (w->leader_of_term[term] == 0) {
        w->leader_of_term[term] = nd->id;
    } else if (w->leader_of_term[term] != nd->id) {
        fail(w, "election safety: n%u and n%u are both leaders of term %" PRIu64,
             w->leader_of_term[term], nd->id, term);
    }
}

/* Leader completeness: a new leader holds every entry known committed. */
static void check_new_leader(struct world *w, struct node *nd)
{
    w->n_elections++;
    struct raft *r = nd->r;
    uint64_t last = raft_last_index(r), first = raft_first_index(r);
    if (w->applied_max > last) {
        fail(w,
             "leader completeness: n%u leads term %" PRIu64 " with last index %" PRIu64
             " but index %" PRIu64 " is committed",
             nd->id, raft_term(r), last, w->applied_max);
        return;
    }
    for (uint64_t i = first; i <= w->applied_max; i++) {
        uint64_t t = 0;
        if (!w->applied[i].set)
            continue;
        raft_term_at(r, i, &t);
        if (t != w->applied[i].term) {
            fail(w,
                 "leader completeness: n%u leads term %" PRIu64 " with term %" PRIu64
                 " at index %" PRIu64 ", committed term %" PRIu64,
                 nd->id, raft_term(r), t, i, w->applied[i].term);
            return;
        }
    }
}

static void check_node(struct world *w, struct node *nd)
{
    if (!nd->up || w->failed)
        return;
    struct raft *r = nd->r;
    if (raft_check_invariants(r) != MOM_OK) {
        fail(w, "n%u: raft_check_invariants failed", nd->id);
        return;
    }
    uint64_t cid = raft_cluster_id(r);
    if (cid != 0 && !nd->foreign) {
        if (w->cluster_id == 0)
            w->cluster_id = cid;
        else if (cid != w->cluster_id)
            fail(w, "cluster id: n%u holds %" PRIx64 ", the cluster %" PRIx64, nd->id, cid,
                 w->cluster_id);
    }
    uint64_t commit = raft_commit_index(r);
    if (commit < nd->last_commit)
        fail(w, "n%u: commit index went back from %" PRIu64 " to %" PRIu64, nd->id, nd->last_commit,
             commit);
    bool leader = raft_role(r) == RAFT_LEADER;
    /* A young leader dies the moment its commit index moves, before the
     * appends of that Ready leave (Figure 8 of the Raft paper). */
    if (leader && nd->was_leader && commit > nd->last_commit && w->chaos && nd->crash_at == 0 &&
        w->now - nd->leader_since < 60 && ppm(&w->g, w->p_new_leader_crash))
        nd->crash_at = w->now;
    nd->last_commit = commit;
    if (leader) {
        check_leader_term(w, nd);
        if (!nd->was_leader || nd->leader_term != raft_term(r)) {
            trace(w, "n%u becomes leader of term %" PRIu64, nd->id, raft_term(r));
            nd->leader_since = w->now;
            check_new_leader(w, nd);
            /* leaders that die right after election, before their first
             * entry is replicated, make the Figure 8 histories */
            if (w->chaos && ppm(&w->g, w->p_new_leader_crash))
                nd->crash_at = w->now + between(&w->g, 1, 40);
            else if (w->chaos && ppm(&w->g, w->p_new_leader_crash))
                nd->isolate_at = w->now + between(&w->g, 1, 40);
        }
        nd->leader_term = raft_term(r);
    }
    nd->was_leader = leader;
}

/* ---- commands ----------------------------------------------------------- */

static size_t make_cmd(struct world *w, uint64_t cmd, uint8_t *buf)
{
    size_t pad = (size_t)below(&w->g, (uint64_t)w->pad_max + 1);
    memcpy(buf, &cmd, 8);
    for (size_t i = 0; i < pad; i++)
        buf[8 + i] = (uint8_t)(cmd * 31 + i);
    return 8 + pad;
}

static void apply_entry(struct world *w, struct node *nd, const struct raft_entry *e)
{
    if (e->index != nd->sm.index + 1) {
        fail(w, "n%u applies index %" PRIu64 " after %" PRIu64, nd->id, e->index, nd->sm.index);
        return;
    }
    uint64_t h = fnv(e->data, e->len) ^ e->term;
    need_applied(w, e->index);
    struct applied_rec *a = &w->applied[e->index];
    if (a->set && (a->term != e->term || a->hash != h)) {
        fail(w,
             "state machine safety: n%u applies term %" PRIu64 " at index %" PRIu64
             ", another node term %" PRIu64,
             nd->id, e->term, e->index, a->term);
        return;
    }
    if (!a->set) {
        a->set = true;
        a->term = e->term;
        a->hash = h;
        if (e->index > w->applied_max)
            w->applied_max = e->index;
    }
    nd->sm.index = e->index;
    nd->sm.term = e->term;
    uint64_t cmd = 0;
    if (e->len > 0 && !raft_entry_cluster_id(e, NULL)) {
        if (e->len < 8) {
            fail(w, "n%u applies a corrupt entry at %" PRIu64, nd->id, e->index);
            return;
        }
        memcpy(&cmd, e->data, 8);
        if (cmd & FOREIGN_CMD) {
            fail(w, "n%u applies an entry of another cluster at %" PRIu64, nd->id, e->index);
            return;
        }
        for (size_t i = 8; i < e->len; i++) {
            if (e->data[i] != (uint8_t)(cmd * 31 + (i - 8))) {
                fail(w, "n%u applies corrupt data at %" PRIu64, nd->id, e->index);
                return;
            }
        }
        need_cmd(w, cmd);
        if (w->cmd_index[cmd] == 0)
            w->cmd_index[cmd] = e->index;
        else if (w->cmd_index[cmd] != e->index) {
            fail(w, "command %" PRIu64 " applied at index %" PRIu64 " and at %" PRIu64, cmd,
                 w->cmd_index[cmd], e->index);
            return;
        }
        GROW(nd->sm.cmds, nd->sm.n, nd->sm.cap);
        nd->sm.cmds[nd->sm.n++] = cmd;
    }
    /* answer proposals waiting for this index */
    size_t k = 0;
    for (size_t i = 0; i < nd->n_props; i++) {
        struct proposal *p = &nd->props[i];
        if (p->index != e->index) {
            nd->props[k++] = *p;
            continue;
        }
        if (p->term == e->term) {
            if (p->cmd != cmd) {
                fail(w, "n%u: proposal %" PRIu64 "/%" PRIu64 " applied as another command", nd->id,
                     p->index, p->term);
                return;
            }
            need_cmd(w, cmd);
            w->cmd_acked[cmd] = true;
            w->n_acked++;
            if (e->index > w->max_acked_index)
                w->max_acked_index = e->index;
        }
    }
    nd->n_props = k;
}

/* ---- the glue ----------------------------------------------------------- */

static void sm_reset_from(struct node *nd, const struct snap *s)
{
    snap_free(&nd->sm);
    snap_copy(&nd->sm, s);
}

static void enqueue_batch(struct world *w, struct node *nd, struct batch *b, bool io)
{
    uint64_t done = w->now + (io ? between(&w->g, 1, 6) : 0);
    if (done < nd->pq_last_done)
        done = nd->pq_last_done;
    b->done_at = done;
    nd->pq_last_done = done;
    if (nd->pq_tail)
        nd->pq_tail->next = b;
    else
        nd->pq_head = b;
    nd->pq_tail = b;
}

static bool is_request(enum raft_msg_type t)
{
    return t == RAFT_MSG_APPEND || t == RAFT_MSG_VOTE || t == RAFT_MSG_SNAPSHOT ||
           t == RAFT_MSG_HELLO;
}

static void handle_ready(struct world *w, struct node *nd, uint64_t expect_cookie)
{
    struct raft_ready rd;
    size_t seen = 0;
    while (!w->failed && raft_ready(nd->r, &rd)) {
        struct batch *b = xcalloc(1, sizeof *b);
        b->id = rd.id;
        if (rd.install_snapshot) {
            const struct netmsg *st = nd->staged;
            if (!st || st->snap.index != rd.snapshot.index || st->snap.term != rd.snapshot.term) {
                fail(w, "n%u: asked to install snapshot %" PRIu64 " it did not receive", nd->id,
                     rd.snapshot.index);
                free(b);
                raft_advance(nd->r, &rd);
                return;
            }
            trace(w, "n%u installs snapshot %" PRIu64 "/%" PRIu64, nd->id, st->snap.index,
                  st->snap.term);
            w->n_snap_installs++;
            b->install = true;
            snap_copy(&b->snap, &st->snap);
            sm_reset_from(nd, &st->snap);
        }
        if (rd.n_entries > 0) {
            uint64_t prev = TERM_UNKNOWN;
            if (!raft_term_at(nd->r, rd.entries[0].index - 1, &prev))
                prev = TERM_UNKNOWN;
            b->ents = xmalloc(rd.n_entries * sizeof *b->ents);
            b->n_ents = rd.n_entries;
            b->prev_term = prev;
            for (size_t i = 0; i < rd.n_entries; i++) {
                const struct raft_entry *e = &rd.entries[i];
                b->ents[i].term = e->term;
                b->ents[i].index = e->index;
                b->ents[i].len = e->len;
                b->ents[i].data = NULL;
                if (e->len) {
                    b->ents[i].data = xmalloc(e->len);
                    memcpy(b->ents[i].data, e->data, e->len);
                }
            }
        }
        b->hs_changed = rd.hard_state_changed;
        b->hs = rd.hard_state;
        bool early = rd.send_early && ppm(&w->g, w->p_early);
        for (size_t i = 0; i < rd.n_msgs; i++) {
            const struct raft_msg *m = &rd.msgs[i];
            if (m->cookie != 0) {
                /* only the response to the request just stepped carries a cookie */
                if (m->cookie != expect_cookie || is_request(m->type)) {
                    fail(w, "n%u: message type %d with unexpected cookie %" PRIu64, nd->id,
                         (int)m->type, m->cookie);
                    break;
                }
                seen++;
            }
            if (m->group_id != w->cfg.group_id || m->from != nd->id || m->to == 0 || m->to > w->n) {
                fail(w, "n%u: badly addressed message", nd->id);
                break;
            }
            struct netmsg *nm = netmsg_copy(m);
            nm->from_foreign = nd->foreign;
            if (m->type == RAFT_MSG_SNAPSHOT) {
                /* the glue streams its latest durable snapshot */
                if (nd->disk.snap.index != m->snapshot_index ||
                    nd->disk.snap.term != m->snapshot_term) {
                    fail(w, "n%u: SNAPSHOT %" PRIu64 " but disk holds %" PRIu64, nd->id,
                         m->snapshot_index, nd->disk.snap.index);
                    netmsg_free(nm);
                    break;
                }
                snap_copy(&nm->snap, &nd->disk.snap);
            }
            if (early) {
                net_send(w, nm);
            } else {
                GROW(b->msgs, b->n_msgs, b->cap_msgs);
                b->msgs[b->n_msgs++] = nm;
            }
        }
        for (size_t i = 0; i < rd.n_committed && !w->failed; i++)
            apply_entry(w, nd, &rd.committed[i]);
        for (size_t i = 0; i < rd.n_reads && !w->failed; i++) {
            const struct raft_read_state *rs = &rd.reads[i];
            size_t j = 0;
            while (j < nd->n_reads && nd->reads[j].ctx != rs->ctx)
                j++;
            if (j == nd->n_reads) {
                fail(w, "n%u: read state for unknown ctx %" PRIu64, nd->id, rs->ctx);
                break;
            }
            if (rs->err == MOM_OK && rs->index < nd->reads[j].min_index)
                fail(w,
                     "linearizability: n%u read index %" PRIu64
                     " misses acknowledged write at %" PRIu64,
                     nd->id, rs->index, nd->reads[j].min_index);
            nd->reads[j] = nd->reads[--nd->n_reads];
        }
        raft_advance(nd->r, &rd);
        enqueue_batch(w, nd, b, b->install || b->n_ents > 0 || b->hs_changed);
    }
    if (expect_cookie && seen != 1 && !w->failed)
        fail(w, "n%u: request with cookie %" PRIu64 " got %zu responses", nd->id, expect_cookie,
             seen);
}

static void disk_append(struct world *w, struct node *nd, const struct dentry *e)
{
    struct disk *d = &nd->disk;
    if (e->index <= d->snap.index)
        return;
    /* drop what it replaces */
    while (d->n > 0 && d->log[d->n - 1].index >= e->index) {
        free(d->log[d->n - 1].data);
        d->n--;
    }
    uint64_t expect = d->n ? d->log[d->n - 1].index + 1 : d->snap.index + 1;
    if (e->index != expect) {
        fail(w, "n%u: disk gap: appending %" PRIu64 ", expected %" PRIu64, nd->id, e->index,
             expect);
        return;
    }
    GROW(d->log, d->n, d->cap);
    struct dentry *x = &d->log[d->n++];
    *x = *e;
    x->data = NULL;
    if (e->len) {
        x->data = xmalloc(e->len);
        memcpy(x->data, e->data, e->len);
    }
}

static void disk_compact(struct disk *d, uint64_t index)
{
    size_t k = 0;
    while (k < d->n && d->log[k].index <= index) {
        free(d->log[k].data);
        k++;
    }
    memmove(d->log, d->log + k, (d->n - k) * sizeof *d->log);
    d->n -= k;
}

static void complete_batch(struct world *w, struct node *nd, struct batch *b)
{
    struct disk *d = &nd->disk;
    if ((b->install || b->app_snapshot) && b->snap.index > d->snap.index) {
        snap_free(&d->snap);
        snap_copy(&d->snap, &b->snap);
        if (b->install)
            disk_free_log(d);
        else
            disk_compact(d, b->snap.index);
    }
    /* Log matching is checked on what becomes durable: an entry that was
     * never persisted nor sent never existed (e.g. a single node that crashed
     * before persisting its new term may reuse that term). */
    uint64_t prev = b->prev_term;
    for (size_t i = 0; i < b->n_ents && !w->failed; i++) {
        const struct dentry *e = &b->ents[i];
        check_log_entry(w, nd->id, e->index, e->term, fnv(e->data, e->len), prev);
        prev = e->term;
        disk_append(w, nd, e);
    }
    if (b->hs_changed)
        d->hs = b->hs;
    for (size_t i = 0; i < b->n_msgs; i++) {
        net_send(w, b->msgs[i]);
        b->msgs[i] = NULL;
    }
    if (b->app_snapshot) {
        int rc = raft_compact(nd->r, b->snap.index);
        trace(w, "n%u snapshot at %" PRIu64 " durable, compact: %s", nd->id, b->snap.index,
              mom_strerror(rc));
    } else {
        raft_persisted(nd->r, b->id);
    }
    batch_free(b);
    handle_ready(w, nd, 0);
    check_node(w, nd);
}

static void pump_persist(struct world *w, struct node *nd)
{
    while (!w->failed && nd->up && nd->pq_head && nd->pq_head->done_at <= w->now) {
        struct batch *b = nd->pq_head;
        nd->pq_head = b->next;
        if (!nd->pq_head)
            nd->pq_tail = NULL;
        complete_batch(w, nd, b);
    }
}

/* ---- node lifecycle ----------------------------------------------------- */

static void node_start(struct world *w, struct node *nd)
{
    struct raft_config cfg = w->cfg;
    cfg.id = nd->id;
    cfg.seed = rnd(&w->g);
    cfg.incarnation = nd->disk.incarnation;
    struct raft_snapshot_meta sm = {.index = nd->disk.snap.index, .term = nd->disk.snap.term};
    int rc = raft_new(&cfg, &nd->disk.hs, &sm, &nd->r);
    if (rc != MOM_OK) {
        fail(w, "n%u: raft_new: %s", nd->id, mom_strerror(rc));
        return;
    }
    for (size_t i = 0; i < nd->disk.n; i++) {
        const struct dentry *e = &nd->disk.log[i];
        rc = raft_load_entry(nd->r, e->term, e->index, e->data, e->len);
        if (rc != MOM_OK) {
            fail(w, "n%u: raft_load_entry %" PRIu64 ": %s", nd->id, e->index, mom_strerror(rc));
            return;
        }
    }
    sm_reset_from(nd, &nd->disk.snap);
    nd->up = true;
    nd->next_tick = w->now + 1 + below(&w->g, TICK);
    nd->was_leader = false;
    nd->last_commit = raft_commit_index(nd->r);
    nd->pq_last_done = w->now;
    trace(w, "n%u starts: term %" PRIu64 " snap %" PRIu64 " last %" PRIu64 "%s", nd->id,
          raft_term(nd->r), nd->disk.snap.index, raft_last_index(nd->r),
          raft_abstaining(nd->r) ? " (abstaining)" : "");
    handle_ready(w, nd, 0);
    check_node(w, nd);
}

static void node_crash(struct world *w, struct node *nd)
{
    if (!nd->up)
        return;
    trace(w, "n%u crashes", nd->id);
    w->n_crashes++;
    raft_free(nd->r);
    nd->r = NULL;
    while (nd->pq_head) {
        struct batch *b = nd->pq_head;
        nd->pq_head = b->next;
        batch_free(b);
    }
    nd->pq_tail = NULL;
    snap_free(&nd->sm);
    nd->n_props = 0;
    nd->n_reads = 0;
    nd->up = false;
    nd->was_leader = false;
    nd->crash_at = 0;
}

static void node_wipe(struct world *w, struct node *nd)
{
    node_crash(w, nd);
    trace(w, "n%u loses its storage", nd->id);
    w->n_wipes++;
    uint64_t inc = nd->disk.incarnation;
    disk_free(&nd->disk);
    memset(&nd->disk, 0, sizeof nd->disk);
    nd->disk.incarnation = inc + 1;
    nd->disk.hs.abstain = true;
    nd->foreign = false;
}

/* The storage of another cluster: a higher term, a log of its own commands
 * and another cluster id. Its messages must be refused, never merged. */
static void node_make_foreign(struct world *w, struct node *nd)
{
    node_crash(w, nd);
    uint64_t inc = nd->disk.incarnation, top = 0;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->nodes[i].up && raft_term(w->nodes[i].r) > top)
            top = raft_term(w->nodes[i].r);
    disk_free(&nd->disk);
    memset(&nd->disk, 0, sizeof nd->disk);
    nd->disk.incarnation = inc + 1;
    nd->disk.hs.term = top + between(&w->g, 1, 4);
    nd->disk.hs.vote = nd->id;
    do
        nd->disk.hs.cluster_id = rnd(&w->g);
    while (nd->disk.hs.cluster_id == 0 || nd->disk.hs.cluster_id == w->cluster_id);
    size_t k = (size_t)between(&w->g, 1, 30);
    uint64_t term = 1;
    for (size_t i = 0; i < k; i++) {
        if (ppm(&w->g, 200000) && term < nd->disk.hs.term)
            term++;
        GROW(nd->disk.log, nd->disk.n, nd->disk.cap);
        struct dentry *e = &nd->disk.log[nd->disk.n++];
        uint64_t cmd = FOREIGN_CMD | (uint64_t)(i + 1);
        e->term = term;
        e->index = i + 1;
        e->len = 8;
        e->data = xmalloc(8);
        memcpy(e->data, &cmd, 8);
    }
    nd->foreign = true;
    w->n_foreign++;
    trace(w, "n%u gets the storage of cluster %" PRIx64 " (term %" PRIu64 ", %zu entries)", nd->id,
          nd->disk.hs.cluster_id, nd->disk.hs.term, k);
}

static bool anyone_foreign(struct world *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->nodes[i].foreign)
            return true;
    return false;
}

static void deliver(struct world *w, struct netmsg *nm)
{
    struct node *to = &w->nodes[nm->m.to - 1];
    if (!to->up || !w->conn[nm->m.from - 1][nm->m.to - 1]) {
        netmsg_free(nm);
        return;
    }
    w->n_delivered++;
    nm->m.cookie = ++w->cookie;
    to->staged = nm;
    int rc = raft_step(to->r, &nm->m);
    if (w->verbose && (nm->m.type != RAFT_MSG_APPEND || nm->m.n_entries > 0 || rc != MOM_OK))
        trace(w,
              "n%u <- n%u type %d term %" PRIu64 " prev %" PRIu64 " n %zu ok %d match %" PRIu64
              ": %s",
              nm->m.to, nm->m.from, (int)nm->m.type, nm->m.term, nm->m.prev_log_index,
              nm->m.n_entries, nm->m.success || nm->m.vote_granted, nm->m.match_index,
              mom_strerror(rc));
    if (rc == MOM_ERR_FOREIGN) {
        w->n_refused++;
        if (!to->foreign && !nm->from_foreign)
            fail(w, "n%u refuses n%u of its own cluster", to->id, nm->m.from);
    } else if (rc != MOM_OK && rc != MOM_ERR_INVALID) {
        fail(w, "n%u: raft_step: %s", to->id, mom_strerror(rc));
    }
    handle_ready(w, to, rc == MOM_OK && is_request(nm->m.type) ? nm->m.cookie : 0);
    to->staged = NULL;
    netmsg_free(nm);
    check_node(w, to);
}

/* ---- chaos -------------------------------------------------------------- */

static struct node *find_leader(struct world *w)
{
    struct node *best = NULL;
    for (uint32_t i = 0; i < w->n; i++) {
        struct node *nd = &w->nodes[i];
        if (nd->up && raft_role(nd->r) == RAFT_LEADER &&
            (!best || raft_term(nd->r) > raft_term(best->r)))
            best = nd;
    }
    return best;
}

static void propose(struct world *w, struct node *nd)
{
    uint8_t buf[8 + 1024];
    uint64_t cmd = ++w->next_cmd;
    size_t len = make_cmd(w, cmd, buf);
    uint64_t index = 0, term = 0;
    int rc = raft_propose(nd->r, buf, len, &index, &term);
    if (rc == MOM_OK) {
        GROW(nd->props, nd->n_props, nd->cap_props);
        nd->props[nd->n_props++] = (struct proposal){.index = index, .term = term, .cmd = cmd};
        trace(w, "n%u proposes cmd %" PRIu64 " at %" PRIu64 "/%" PRIu64, nd->id, cmd, index, term);
    }
    handle_ready(w, nd, 0);
    check_node(w, nd);
}

static void take_snapshot(struct world *w, struct node *nd)
{
    if (nd->sm.index < nd->disk.snap.index + w->snap_every || nd->sm.index == 0)
        return;
    struct batch *b = xcalloc(1, sizeof *b);
    b->app_snapshot = true;
    snap_copy(&b->snap, &nd->sm);
    trace(w, "n%u takes a snapshot at %" PRIu64, nd->id, b->snap.index);
    enqueue_batch(w, nd, b, true);
}

static void partition(struct world *w)
{
    for (uint32_t a = 0; a < w->n; a++)
        for (uint32_t b = 0; b < w->n; b++)
            w->conn[a][b] = true;
    uint64_t kind = below(&w->g, 3);
    if (kind == 0) {
        /* isolate one node */
        uint32_t x = (uint32_t)below(&w->g, w->n);
        for (uint32_t b = 0; b < w->n; b++)
            w->conn[x][b] = w->conn[b][x] = b == x;
        trace(w, "partition: n%u isolated", x + 1);
    } else if (kind == 1) {
        /* random split */
        uint32_t side[MAXN];
        for (uint32_t a = 0; a < w->n; a++)
            side[a] = (uint32_t)below(&w->g, 2);
        for (uint32_t a = 0; a < w->n; a++)
            for (uint32_t b = 0; b < w->n; b++)
                w->conn[a][b] = side[a] == side[b];
        trace(w, "partition: random split");
    } else {
        /* some one-way links fail */
        for (uint32_t a = 0; a < w->n; a++)
            for (uint32_t b = 0; b < w->n; b++)
                if (a != b && ppm(&w->g, 300000))
                    w->conn[a][b] = false;
        trace(w, "partition: one-way link failures");
    }
    w->heal_at = w->now + between(&w->g, 30, 400);
}

static void heal(struct world *w)
{
    for (uint32_t a = 0; a < w->n; a++)
        for (uint32_t b = 0; b < w->n; b++)
            w->conn[a][b] = true;
    w->heal_at = 0;
}

static bool anyone_abstaining(struct world *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->nodes[i].disk.hs.abstain || (w->nodes[i].up && raft_abstaining(w->nodes[i].r)))
            return true;
    return false;
}

static void chaos_events(struct world *w)
{
    struct rng *g = &w->g;
    if (ppm(g, w->p_crash)) {
        /* half of the crashes hit the leader (that is where the hard cases are) */
        struct node *nd = find_leader(w);
        if (!nd || ppm(g, 500000))
            nd = &w->nodes[below(g, w->n)];
        if (nd->up) {
            node_crash(w, nd);
            nd->down_until = w->now + (ppm(g, 500000) ? between(g, 5, 60) : between(g, 60, 400));
        }
    }
    /* wipes are likelier during partitions, when stale leaders exist */
    /* at most one member at a time without its own data (wiped or foreign) */
    if (w->n >= 3 && ppm(g, w->heal_at ? 4 * w->p_wipe : w->p_wipe) && !anyone_abstaining(w) &&
        !anyone_foreign(w)) {
        struct node *nd = &w->nodes[below(g, w->n)];
        node_wipe(w, nd);
        nd->down_until = w->now + between(g, 5, 300);
    }
    if (ppm(g, w->p_restart_all)) {
        /* every member stops at once and comes back on its data: it must
         * not form a new cluster */
        trace(w, "the whole cluster restarts");
        w->n_restart_all++;
        for (uint32_t i = 0; i < w->n; i++) {
            struct node *nd = &w->nodes[i];
            node_crash(w, nd);
            nd->down_until = w->now + between(g, 5, 100);
        }
    }
    if (w->n >= 3 && w->cluster_id != 0 && ppm(g, w->p_foreign) && !anyone_abstaining(w) &&
        !anyone_foreign(w)) {
        bool all_know = true;
        for (uint32_t i = 0; i < w->n; i++)
            if (w->nodes[i].disk.hs.cluster_id != w->cluster_id)
                all_know = false;
        if (all_know) {
            struct node *nd = &w->nodes[below(g, w->n)];
            node_make_foreign(w, nd);
            nd->down_until = w->now + between(g, 5, 100);
        }
    }
    if (w->heal_at == 0 && ppm(g, w->p_part))
        partition(w);
    if (w->heal_at != 0 && w->now >= w->heal_at) {
        trace(w, "network heals");
        heal(w);
    }
    if (ppm(g, w->p_snap)) {
        struct node *nd = &w->nodes[below(g, w->n)];
        if (nd->up)
            take_snapshot(w, nd);
    }
    if (ppm(g, w->p_transfer)) {
        struct node *l = find_leader(w);
        if (l) {
            uint32_t to = (uint32_t)between(g, 1, w->n);
            int rc = raft_transfer_leadership(l->r, to);
            trace(w, "n%u transfers leadership to n%u: %s", l->id, to, mom_strerror(rc));
            handle_ready(w, l, 0);
            check_node(w, l);
        }
    }
    for (uint32_t i = 0; i < w->n; i++) {
        struct node *nd = &w->nodes[i];
        if (nd->isolate_at != 0 && nd->isolate_at <= w->now) {
            nd->isolate_at = 0;
            if (nd->up && w->heal_at == 0) {
                for (uint32_t b = 0; b < w->n; b++)
                    w->conn[i][b] = w->conn[b][i] = b == i;
                w->heal_at = w->now + between(g, 20, 300);
                trace(w, "partition: leader n%u isolated", nd->id);
            }
        }
        if (nd->up && nd->crash_at != 0 && nd->crash_at <= w->now) {
            node_crash(w, nd);
            nd->down_until = w->now + between(g, 5, 80);
        }
        if (!nd->up && nd->down_until <= w->now)
            node_start(w, nd);
    }
}

static void client_events(struct world *w)
{
    struct rng *g = &w->g;
    if (ppm(g, w->p_propose)) {
        /* mostly the leader; sometimes whoever */
        struct node *nd = find_leader(w);
        if (!nd || ppm(g, 100000))
            nd = &w->nodes[below(g, w->n)];
        /* clients keep a bounded number of requests outstanding */
        if (nd->up && raft_last_index(nd->r) - raft_commit_index(nd->r) < 40)
            propose(w, nd);
    }
    if (ppm(g, w->p_read)) {
        struct node *l = find_leader(w);
        if (l) {
            uint64_t ctx = ++w->read_ctx;
            int rc = raft_read_index(l->r, ctx);
            if (rc == MOM_OK) {
                GROW(l->reads, l->n_reads, l->cap_reads);
                l->reads[l->n_reads++] =
                    (struct pending_read){.ctx = ctx, .min_index = w->max_acked_index};
            }
            handle_ready(w, l, 0);
            check_node(w, l);
        }
    }
}

static void step_time(struct world *w)
{
    while (!w->failed && w->heap_n > 0 && w->heap[0]->at <= w->now)
        deliver(w, heap_pop(w));
    for (uint32_t i = 0; i < w->n && !w->failed; i++)
        pump_persist(w, &w->nodes[i]);
    for (uint32_t i = 0; i < w->n && !w->failed; i++) {
        struct node *nd = &w->nodes[i];
        if (nd->up && w->now >= nd->next_tick) {
            nd->next_tick += TICK;
            raft_tick(nd->r);
            handle_ready(w, nd, 0);
            check_node(w, nd);
        }
    }
    if (w->failed)
        return;
    if (w->chaos)
        chaos_events(w);
    client_events(w);
}

/* ---- the end of a seed -------------------------------------------------- */

static bool converged(struct world *w)
{
    struct node *l = find_leader(w);
    if (!l)
        return false;
    uint64_t c = raft_commit_index(l->r);
    if (c != raft_last_index(l->r))
        return false;
    for (uint32_t i = 0; i < w->n; i++) {
        struct node *nd = &w->nodes[i];
        if (!nd->up || raft_abstaining(nd->r) || raft_commit_index(nd->r) != c ||
            raft_cluster_id(nd->r) != raft_cluster_id(l->r) || raft_cluster_id(l->r) == 0 ||
            nd->sm.index != c || raft_applied_index(nd->r) != c)
            return false;
        if (nd != l && (raft_role(nd->r) != RAFT_FOLLOWER || raft_leader(nd->r) != l->id))
            return false;
    }
    return true;
}

static void final_checks(struct world *w)
{
    struct node *a = &w->nodes[0];
    for (uint32_t i = 1; i < w->n && !w->failed; i++) {
        struct node *b = &w->nodes[i];
        if (a->sm.n != b->sm.n || memcmp(a->sm.cmds, b->sm.cmds, a->sm.n * sizeof *a->sm.cmds) != 0)
            fail(w, "convergence: n1 and n%u hold different states", b->id);
    }
    if (w->failed)
        return;
    /* every acknowledged command exactly once, on every node */
    uint8_t *seen = xcalloc(w->next_cmd + 1, 1);
    for (size_t i = 0; i < a->sm.n; i++) {
        uint64_t cmd = a->sm.cmds[i];
        if (cmd == 0 || cmd > w->next_cmd || seen[cmd]) {
            fail(w, "exactly once: command %" PRIu64 " applied twice", cmd);
            break;
        }
        seen[cmd] = 1;
    }
    for (uint64_t cmd = 1; cmd <= w->next_cmd && !w->failed; cmd++) {
        if (cmd < w->cmd_cap && w->cmd_acked[cmd] && !seen[cmd])
            fail(w, "durability: acknowledged command %" PRIu64 " is missing after healing", cmd);
    }
    free(seen);
}

/* ---- a seed ------------------------------------------------------------- */

static void world_init(struct world *w, uint64_t seed, uint32_t force_nodes, bool verbose)
{
    memset(w, 0, sizeof *w);
    w->seed = seed;
    w->verbose = verbose;
    w->g.s = seed * 0x2545F4914F6CDD1DULL + 7;
    struct rng *g = &w->g;
    if (force_nodes)
        w->n = force_nodes;
    else {
        uint64_t k = seed % 10;
        w->n = k == 0 ? 1 : (k <= 3 ? 5 : 3);
    }
    w->cfg.group_id = 7;
    w->cfg.n_nodes = w->n;
    w->cfg.election_ticks = (uint32_t)between(g, 4, 15);
    w->cfg.heartbeat_ticks = (uint32_t)between(g, 1, 2);
    w->cfg.max_msg_entries = ppm(g, 400000) ? 1 : (uint32_t)between(g, 2, 16);
    w->cfg.max_msg_bytes = between(g, 8, 400);
    w->cfg.max_inflight = (uint32_t)between(g, 1, 8);
    w->cfg.disable_pre_vote = ppm(g, 150000);
    w->cfg.disable_check_quorum = ppm(g, 150000);
    /* chaos level: 0 calm .. 3 wild; 4 = "leader killer": young leaders die
     * at election and at their first commits, small batches */
    uint32_t lvl = (uint32_t)below(g, 5);
    w->p_drop = lvl * 30000 + (uint32_t)below(g, 20000);
    w->p_dup = lvl * 10000;
    w->p_long = lvl * 20000;
    w->p_propose = (uint32_t)between(g, 50000, 400000);
    w->p_crash = lvl * 2000;
    w->p_wipe = lvl * 250;
    w->p_restart_all = lvl * 60;
    w->p_foreign = lvl * 150 + 50;
    w->bootstrap = ppm(g, 200000);
    w->p_new_leader_crash = 100000 + lvl * 200000;
    w->p_part = lvl * 1500 + 300;
    w->p_snap = (uint32_t)between(g, 2000, 30000);
    w->p_transfer = (uint32_t)below(g, 2000);
    w->p_read = (uint32_t)below(g, 50000);
    w->p_early = (uint32_t)below(g, 1000001);
    w->pad_max = ppm(g, 300000) ? 600 : 24;
    w->snap_every = between(g, 3, 40);
    if (lvl == 4) {
        w->p_drop = (uint32_t)below(g, 30000);
        w->p_crash = 1000;
        w->p_part = 1000;
        w->p_new_leader_crash = 700000;
        if (ppm(g, 700000))
            w->cfg.max_msg_entries = 1;
        if (ppm(g, 500000))
            w->p_early = 0;
    }
    for (uint32_t a = 0; a < MAXN; a++)
        for (uint32_t b = 0; b < MAXN; b++)
            w->conn[a][b] = true;
    for (uint32_t i = 0; i < w->n; i++) {
        w->nodes[i].id = i + 1;
        w->nodes[i].disk.incarnation = 1;
        /* fresh storage abstains unless the operator bootstraps */
        w->nodes[i].disk.hs.abstain = !w->bootstrap;
    }
    if (verbose)
        printf("seed %" PRIu64 ": %u nodes, election %u hb %u, batch %u/%" PRIu64
               "B inflight %u, pre-vote %d "
               "check-quorum %d, chaos level %u, %s\n",
               seed, w->n, w->cfg.election_ticks, w->cfg.heartbeat_ticks, w->cfg.max_msg_entries,
               w->cfg.max_msg_bytes, w->cfg.max_inflight, !w->cfg.disable_pre_vote,
               !w->cfg.disable_check_quorum, lvl,
               w->bootstrap ? "bootstrap flag" : "forms from fresh storage");
}

static void world_free(struct world *w)
{
    for (uint32_t i = 0; i < w->n; i++) {
        struct node *nd = &w->nodes[i];
        node_crash(w, nd);
        disk_free(&nd->disk);
        free(nd->props);
        free(nd->reads);
    }
    while (w->heap_n > 0)
        netmsg_free(heap_pop(w));
    free(w->heap);
    free(w->leader_of_term);
    free(w->lm);
    free(w->applied);
    free(w->cmd_index);
    free(w->cmd_acked);
}

/* Runs one seed; returns true when it passed (w->why holds the failure). */
static bool run_seed(struct world *w, uint64_t seed, uint32_t force_nodes, bool verbose)
{
    world_init(w, seed, force_nodes, verbose);
    w->chaos = true;
    for (uint32_t i = 0; i < w->n && !w->failed; i++)
        node_start(w, &w->nodes[i]);
    for (w->now = 1; w->now <= CHAOS_UNITS && !w->failed; w->now++)
        step_time(w);
    /* healing: everything up, network whole, no more faults */
    w->chaos = false;
    trace(w, "---- healing ----");
    heal(w);
    for (uint32_t i = 0; i < w->n && !w->failed; i++) {
        if (w->nodes[i].foreign) {
            trace(w, "the operator wipes the foreign storage of n%u", i + 1);
            node_wipe(w, &w->nodes[i]);
        }
        if (!w->nodes[i].up)
            node_start(w, &w->nodes[i]);
    }
    uint32_t saved_propose = w->p_propose;
    bool done = false;
    for (uint64_t t = 0; t < HEAL_UNITS && !w->failed; t++, w->now++) {
        if (t == HEAL_PROPOSE_UNITS)
            w->p_propose = 0;
        step_time(w);
        if (t > HEAL_PROPOSE_UNITS && t % 10 == 0 && converged(w)) {
            done = true;
            break;
        }
    }
    w->p_propose = saved_propose;
    if (!w->failed && !done) {
        fail(w, "liveness: no convergence within %d time units after healing", HEAL_UNITS);
        for (uint32_t i = 0; i < w->n && verbose; i++) {
            struct node *nd = &w->nodes[i];
            if (!nd->up)
                continue;
            printf("  n%u %s term %" PRIu64 " lead %u commit %" PRIu64 " applied %" PRIu64
                   "/%" PRIu64 " last %" PRIu64 " abstain %d pq %d\n",
                   nd->id, raft_role_name(raft_role(nd->r)), raft_term(nd->r), raft_leader(nd->r),
                   raft_commit_index(nd->r), raft_applied_index(nd->r), nd->sm.index,
                   raft_last_index(nd->r), raft_abstaining(nd->r), nd->pq_head != NULL);
        }
    }
    if (!w->failed)
        final_checks(w);
    if (verbose)
        printf("seed %" PRIu64 ": %" PRIu64 " commands, %" PRIu64 " acknowledged, %" PRIu64
               " elections, %" PRIu64 " snapshot installs, %" PRIu64 " crashes, %" PRIu64
               " wipes, %" PRIu64 " whole-cluster restarts, %" PRIu64 " foreign storages (%" PRIu64
               " messages refused), %" PRIu64 " messages, end index %" PRIu64 "\n",
               seed, w->next_cmd, w->n_acked, w->n_elections, w->n_snap_installs, w->n_crashes,
               w->n_wipes, w->n_restart_all, w->n_foreign, w->n_refused, w->n_delivered,
               w->applied_max);
    bool ok = !w->failed;
    w->verbose = false; /* tearing down is not part of the story */
    world_free(w);
    return ok;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--seeds N | --seed S] [--nodes K] [--jobs J] [--keep-going]\n",
            argv0);
}

int main(int argc, char **argv)
{
    uint64_t seeds = 100, one = 0;
    bool keep_going = false;
    uint32_t nodes = 0;
    long jobs = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
            seeds = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            one = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            nodes = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep-going") == 0)
            keep_going = true;
        else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jobs = strtol(argv[++i], NULL, 10);
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (nodes > MAXN) {
        fprintf(stderr, "--nodes: at most %d\n", MAXN);
        return 2;
    }
    log_set_level(MOM_LOG_ERROR);
    struct world *w = xmalloc(sizeof *w);
    char nodes_arg[32] = "";
    if (nodes)
        snprintf(nodes_arg, sizeof nodes_arg, " --nodes %u", nodes);
    if (one) {
        log_set_level(MOM_LOG_INFO);
        bool ok = run_seed(w, one, nodes, true);
        if (!ok) {
            printf("FAILED seed %" PRIu64 ": %s\n", one, w->why);
            printf("replay: %s --seed %" PRIu64 "%s\n", argv[0], one, nodes_arg);
        }
        printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
        free(w);
        return ok ? 0 : 1;
    }
    if (jobs < 1)
        jobs = 1;
    if (jobs > 16)
        jobs = 16;
    if ((uint64_t)jobs > seeds)
        jobs = seeds ? (long)seeds : 1;
    /* Seeds are striped over `jobs` worker processes; each reports its first
     * failure (if any) through a pipe. */
    int fds[16][2];
    pid_t pids[16];
    for (long j = 0; j < jobs; j++) {
        if (pipe(fds[j]) != 0) {
            perror("pipe");
            return 2;
        }
        fflush(stdout);
        pids[j] = fork();
        if (pids[j] < 0) {
            perror("fork");
            return 2;
        }
        if (pids[j] == 0) {
            close(fds[j][0]);
            uint64_t passed = 0, failed_seed = 0, nfail = 0;
            char why[sizeof w->why] = "-";
            for (uint64_t s = 1 + (uint64_t)j; s <= seeds; s += (uint64_t)jobs) {
                if (!run_seed(w, s, nodes, false)) {
                    if (!failed_seed) {
                        failed_seed = s;
                        memcpy(why, w->why, sizeof why);
                    }
                    nfail++;
                    if (!keep_going)
                        break;
                    continue;
                }
                passed++;
            }
            char line[700];
            int n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", passed,
                             nfail, failed_seed, why);
            if (write(fds[j][1], line, (size_t)n) != n)
                exit(3);
            free(w);
            exit(0); /* not _exit: LeakSanitizer checks at exit */
        }
        close(fds[j][1]);
    }
    uint64_t passed = 0, nfailed = 0;
    for (long j = 0; j < jobs; j++) {
        char buf[800] = "";
        size_t got = 0;
        ssize_t k;
        while (got < sizeof buf - 1 && (k = read(fds[j][0], buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)k;
        buf[got] = 0;
        close(fds[j][0]);
        int status = 0;
        waitpid(pids[j], &status, 0);
        uint64_t p = 0, nf = 0, fs = 0;
        int off = 0;
        if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &p, &nf, &fs, &off) < 3 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAILED worker %ld crashed (status %d)\n", j, status);
            nfailed++;
            continue;
        }
        passed += p;
        if (fs) {
            char *why = buf + off;
            why[strcspn(why, "\n")] = 0;
            printf("FAILED seed %" PRIu64 ": %s\n", fs, why);
            printf("replay: %s --seed %" PRIu64 "%s\n", argv[0], fs, nodes_arg);
            nfailed += nf;
        }
    }
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, nfailed);
    free(w);
    return nfailed ? 1 : 0;
}
