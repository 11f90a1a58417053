/* The replication node's core (node.h, layout in node_internal.h): drives
 * the pure Raft core (replication/raft.c) with ticks from a timer, messages
 * over the peer channel (one RPC, /mom.v1.Peer/Raft, carries every core
 * message; its reply carries the core's response) and proposals, and
 * handles each Ready in the order raft.h prescribes. docs/architecture.md
 * tells the whole story; the parts are node_wire.c (the codec),
 * node_snapshot.c, node_read.c (read barriers) and node_forward.c.
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
 * forwards the encoded Command to the leader (node_forward.c).
 *
 * Storage incarnation: storage with no raft-state file, log or snapshot is
 * fresh and gets a new incarnation (wall clock µs) and abstains (raft.h)
 * until every member reports fresh storage too (a new cluster forms, no flag
 * needed) or it has caught up with an existing cluster; the bootstrap
 * option lets it vote at once. The hard state also keeps the cluster id; a
 * peer of another cluster is refused with one line naming both ids.
 * Storage found damaged at start-up is moved aside and counts as lost in a
 * cluster of three or more, and is refused below that (node_repair.c).
 *
 * Snapshots (node_snapshot.c): every snapshot_entries applied entries, or
 * once the entries held in memory reach snapshot_bytes, a forked child
 * writes the application state; when it has exited the loop compacts the
 * core (freeing entries a slice per turn, on_release here) and the WAL.
 * Recovery loads the newest snapshot and hands the log after it to the core;
 * entries are applied once they are known to be committed.
 * SPDX-License-Identifier: MIT */
#include "replication/node_internal.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/log.h"
#include "replication/grpcmsg.h"
#include "replication/hard_state.h"
#include "replication/syncer.h"
#include "replication/wal.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
void node_fail_pending_from(struct node *n, uint64_t from, int err)
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

/* group dir/raft-state (text in hard_state.h), replaced atomically. */
static int hard_state_write(struct node *n, const struct raft_hard_state *hs)
{
    char path[1200], tmp[1200], text[HARD_STATE_TEXT_MAX];
    snprintf(path, sizeof path, "%s/raft-state", n->dir);
    snprintf(tmp, sizeof tmp, "%s/raft-state.tmp", n->dir);
    size_t len = hard_state_format(hs, n->incarnation, text);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return mom_err_from_errno(errno);
    bool ok = write(fd, text, len) == (ssize_t)len;
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
    char path[1200], text[256];
    snprintf(path, sizeof path, "%s/raft-state", n->dir);
    FILE *f = fopen(path, "r");
    *found = false;
    if (!f)
        return errno == ENOENT ? MOM_OK : MOM_ERR_IO;
    size_t len = fread(text, 1, sizeof text, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return MOM_ERR_IO;
    if (len == sizeof text || hard_state_parse(text, len, hs, &n->incarnation) != MOM_OK)
        return MOM_ERR_CORRUPT;
    *found = true;
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

/* A member refused our Raft call for who we are (wrong cluster secret, or
 * another cluster's storage on either side): one line a minute names it. */
static void member_log_refusal(struct member *mb, int status, const char *message)
{
    if (status != GRPC_UNAUTHENTICATED && status != GRPC_PERMISSION_DENIED)
        return;
    uint64_t now = clock_mono_ms();
    if (mb->refused_logged && now - mb->refused_logged < 60000)
        return;
    mb->refused_logged = now;
    if (status == GRPC_UNAUTHENTICATED)
        log_error("node %u refuses this node's peer calls (%s): MOM_CLUSTER_SECRET must be the "
                  "same on every member",
                  mb->id, message ? message : "unauthenticated");
    else
        log_error("node %u refuses this node (%s): one of the two holds another cluster's storage",
                  mb->id, message ? message : "permission denied");
}

static void on_raft_reply(int status, const char *message, const uint8_t *reply, size_t len,
                          void *arg)
{
    struct member *mb = arg;
    struct node *n = mb->n;
    if (status != GRPC_OK) {
        member_log_refusal(mb, status, message);
        raft_report_unreachable(n->raft, mb->id);
        node_kick(n);
        return;
    }
    struct node_wire_msg d;
    int rc = node_wire_decode_msg(reply, len, &d);
    if (rc == MOM_OK && d.m.type != 0) {
        member_heard(mb, d.m.incarnation);
        if (d.m.type == RAFT_MSG_APPEND_RESP && d.m.success && d.m.match_index > mb->match)
            mb->match = d.m.match_index;
        (void)raft_step(n->raft, &d.m);
    }
    node_wire_msg_cleanup(&d);
    node_kick(n);
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
        node_snapshot_send(n, mb);
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
    int rc = node_wire_encode_msg(m, NULL, &o.buf, &o.len);
    if (rc != MOM_OK)
        return rc;
    if (now) {
        send_one(n, &o);
        free(o.buf);
        return MOM_OK;
    }
    struct outmsg *a = grow_array(n->out, &n->out_cap, n->nout + 1, sizeof *a, 64);
    if (!a) {
        free(o.buf);
        return MOM_ERR_NOMEM;
    }
    n->out = a;
    n->out[n->nout++] = o;
    return MOM_OK;
}

/* ---- applying ---- */

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
    if (e->len && !raft_entry_cluster_id(e, NULL)) {
        struct node_reply rr = {0};
        n->cb.apply(n->arg, e->index, e->data, e->len, mine ? cur.ctx : NULL,
                    mine && cur.fwd ? &rr : NULL);
        if (mine && cur.fwd) {
            node_forward_answer(n, cur.fwd, e->index, &rr);
            free(rr.body);
        }
    } else if (mine) {
        fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    n->applied_index = e->index;
    n->stats.entries++;
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
    node_fail_pending_from(n, 0, rc == MOM_ERR_NOSPACE ? rc : MOM_ERR_UNAVAILABLE);
}

/* Writes and syncs everything buffered on the loop thread (rare: hard state
 * changes, start-up). */
static int sync_now(struct node *n)
{
    size_t pending = wal_pending_bytes(n->wal);
    if (pending) {
        int rc = wal_write(n->wal);
        if (rc != MOM_OK)
            return rc;
        n->stats.batches++;
        n->stats.wal_bytes_written += pending;
    }
    if (n->sync != NODE_SYNC_NEVER && fdatasync(wal_sync_fd(n->wal)) != 0)
        return mom_err_from_errno(errno);
    n->durable_index = n->last_index;
    return MOM_OK;
}

static void run_deferred(struct node *n)
{
    for (size_t i = 0; i < n->ndeferred; i++) {
        struct deferred d = n->deferred[i];
        int rc = n->writable && raft_role(n->raft) == RAFT_LEADER
                     ? node_propose_local(n, d.data, d.len, d.ctx, NULL)
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
        int rc = node_snapshot_install(n, rd->snapshot.index, rd->snapshot.term);
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
    node_read_states(n, rd);
    uint64_t id = rd->id;
    raft_advance(n->raft, rd);
    n->in_ready = false;
    run_deferred(n);
    node_read_progress(n, false);
    if (!n->writable)
        return;
    if (durable_now && !dirty)
        mark_persisted(n, id);
    else if (waiting)
        n->need_id = id;
    else
        mark_persisted(n, id);
    if (!n->snap_pid && !n->startup && node_snapshot_due(n))
        node_snapshot_take(n);
}

/* Hands buffered entries to the file and the sync. */
static void flush(struct node *n)
{
    if (!n->writable)
        return;
    size_t pending = wal_pending_bytes(n->wal);
    if (pending) {
        int rc = wal_write(n->wal);
        if (rc != MOM_OK) {
            storage_failed(n, rc);
            return;
        }
        n->stats.batches++;
        n->stats.wal_bytes_written += pending;
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

/* After a change of role or term: a leader that lost its leadership fails
 * its proposals that have not committed (they may still commit under the
 * next leader: the answer is 503, outcome unknown, and the client retries
 * with its Idempotency-Key) instead of letting them wait out the commit
 * timeout; its ReadIndex barriers are failed by the core (fail_reads). A
 * newer term also fails what this node sent to the leader it knew: the
 * forwarded proposals (same answer) and the barriers still waiting for the
 * leader's read index. */
static void leadership_check(struct node *n)
{
    bool leader = raft_role(n->raft) == RAFT_LEADER;
    uint64_t term = raft_term(n->raft);
    bool newer = term > n->seen_term;
    bool lost = n->was_leader && (!leader || newer);
    n->was_leader = leader;
    n->seen_term = term;
    if (lost)
        node_fail_pending_from(n, raft_commit_index(n->raft) + 1, MOM_ERR_UNAVAILABLE);
    if (newer) {
        node_forward_fail_all(n);
        node_read_fail_calls(n);
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
        leadership_check(n);
        uint64_t before = n->persisted_id;
        flush(n);
        if (!any && n->persisted_id == before)
            break;
    }
}

/* The pump runs at the lowest priority so that one Ready carries a whole
 * loop turn; but while client sockets always have input (a flood), the
 * lowest priority never gets the loop. A kick therefore also arms a
 * deadline at the highest priority that runs the pump after
 * NODE_KICK_DEADLINE_US if the kick has not run by then. */
#define NODE_KICK_DEADLINE_US 1000

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    n->kicked = false;
    event_del(n->kick_ev); /* whichever of the two ran, the other is moot */
    event_del(n->kick_deadline_ev);
    pump(n);
}

void node_kick(struct node *n)
{
    if (!n->kicked && n->kick_ev) {
        n->kicked = true;
        event_active(n->kick_ev, EV_WRITE, 0);
        struct timeval tv = {0, NODE_KICK_DEADLINE_US};
        event_add(n->kick_deadline_ev, &tv);
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
    histogram_observe(&n->stats.sync_latency, micros);
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
    node_snapshot_tick(n, now);
    struct pending *p;
    while ((p = ring_front(n)) && p->deadline <= now) {
        struct pending cur = *p;
        ring_pop(n);
        fail_one(n, &cur, MOM_ERR_UNAVAILABLE);
    }
    node_read_progress(n, true);
    node_kick(n);
}

/* ---- proposals ---- */

int node_propose_local(struct node *n, const uint8_t *data, size_t len, void *ctx,
                       struct peer_request *fwd)
{
    uint64_t index, term;
    int rc = raft_propose(n->raft, data, len, &index, &term);
    if (rc != MOM_OK)
        return rc == MOM_ERR_NOMEM ? rc : MOM_ERR_UNAVAILABLE;
    node_fail_pending_from(n, index, MOM_ERR_UNAVAILABLE);
    rc = ring_push(n,
                   (struct pending){index, term, ctx, fwd, clock_mono_ms() + n->commit_timeout_ms});
    if (rc != MOM_OK)
        return rc; /* the entry may still commit; nobody waits for it */
    node_kick(n);
    return MOM_OK;
}

int node_propose(struct node *n, uint8_t *data, size_t len, void *ctx)
{
    int rc;
    if (!n->writable) {
        rc = MOM_ERR_UNAVAILABLE;
    } else if (raft_role(n->raft) == RAFT_LEADER && n->in_ready) {
        struct deferred *a =
            grow_array(n->deferred, &n->deferred_cap, n->ndeferred + 1, sizeof *a, 16);
        if (!a) {
            free(data);
            return MOM_ERR_UNAVAILABLE;
        }
        n->deferred = a;
        n->deferred[n->ndeferred++] = (struct deferred){data, len, ctx};
        return MOM_OK;
    } else if (raft_role(n->raft) == RAFT_LEADER) {
        rc = node_propose_local(n, data, len, ctx, NULL);
    } else {
        uint32_t leader = raft_leader(n->raft);
        rc = leader == RAFT_NONE || !n->peer ? MOM_ERR_UNAVAILABLE
                                             : node_forward(n, leader, data, len, ctx);
    }
    free(data);
    return rc == MOM_OK ? MOM_OK : MOM_ERR_UNAVAILABLE;
}

/* ---- incoming peer calls ---- */

/* Follower: one chunk of the leader's snapshot into snapshot.recv. Returns
 * MOM_OK, or an error for the call. */
/* A peer that holds another cluster's id (its storage, or ours, belongs to
 * another cluster): its messages are refused, never merged. One line a
 * minute per member names both ids. */
static void node_log_foreign(struct node *n, struct member *mb, uint32_t from, uint64_t theirs)
{
    uint64_t now = clock_mono_ms();
    if (mb && mb->foreign_logged && now - mb->foreign_logged < 60000)
        return;
    if (mb)
        mb->foreign_logged = now;
    log_error("refusing node %u: it belongs to cluster %016" PRIx64
              ", this node to cluster %016" PRIx64 "; storage of another cluster is never merged",
              from, theirs, raft_cluster_id(n->raft));
}

static void on_raft_request(struct peer_request *req, const uint8_t *body, size_t len, void *arg)
{
    struct node *n = arg;
    struct node_wire_msg d;
    int rc = node_wire_decode_msg(body, len, &d);
    if (rc != MOM_OK || d.m.from != peer_request_from(req)) {
        node_wire_msg_cleanup(&d);
        peer_respond(req, GRPC_INVALID_ARGUMENT, "bad RaftMessage", NULL, 0);
        return;
    }
    struct member *mb = member_of(n, d.m.from);
    if (mb)
        member_heard(mb, d.m.incarnation);
    struct held *h = grow_array(n->held, &n->held_cap, n->nheld + 1, sizeof *h, 64);
    if (!h) {
        node_wire_msg_cleanup(&d);
        peer_respond(req, GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    n->held = h;
    if (d.m.type == RAFT_MSG_SNAPSHOT) {
        rc = node_snapshot_recv_chunk(n, d.snap_off, d.snap, d.snap_len, d.snap_done);
        if (rc != MOM_OK || !d.snap_done) {
            node_wire_msg_cleanup(&d);
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
    if (rc == MOM_ERR_FOREIGN)
        node_log_foreign(n, mb, d.m.from, d.m.cluster_id);
    node_wire_msg_cleanup(&d);
    if (rc == MOM_ERR_FOREIGN) {
        peer_respond(req, GRPC_PERMISSION_DENIED, "member of another cluster", NULL, 0);
    } else if (rc != MOM_OK) {
        peer_respond(req, GRPC_FAILED_PRECONDITION, mom_strerror(rc), NULL, 0);
    } else if (answered) {
        static const uint8_t empty[1];
        peer_respond(req, GRPC_OK, NULL, empty, 0);
    } else {
        n->held[n->nheld++] = (struct held){n->next_cookie, req};
    }
    node_kick(n);
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
    n->kick_deadline_ev = evtimer_new(n->base, on_kick, n);
    n->release_ev = event_new(n->base, -1, 0, on_release, n);
    n->sync_done_ev =
        event_new(n->base, syncer_event_fd(n->syncer), EV_READ | EV_PERSIST, on_sync_done, n);
    n->tick_ev = event_new(n->base, -1, EV_PERSIST, on_tick, n);
    if (!n->kick_ev || !n->kick_deadline_ev || !n->release_ev || !n->sync_done_ev || !n->tick_ev)
        return MOM_ERR_NOMEM;
    /* Lowest priority: the pump runs after the turn's client callbacks, so
     * one Ready (one write, one sync) carries the whole turn. */
    int nprio = event_base_get_npriorities(n->base);
    if (nprio > 1) {
        event_priority_set(n->kick_ev, nprio - 1);
        event_priority_set(n->release_ev, nprio - 1);
        event_priority_set(n->kick_deadline_ev, 0);
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
            rc = peer_register(n->peer, NODE_PATH_FORWARD, node_forward_on_request, n);
    }
    return rc;
}

/* The group's storage: the newest snapshot (into the application), the
 * log and the hard state. MOM_ERR_CORRUPT means damaged storage (logged);
 * the log is closed again on any failure. */
static int open_storage(struct node *n, const struct node_config *cfg, struct wal_open_info *info,
                        struct raft_hard_state *hs, bool *found)
{
    int rc = node_snapshot_load(n);
    if (rc != MOM_OK)
        return rc;
    struct wal_options wopt = {.segment_bytes = cfg->segment_bytes};
    rc = wal_open(n->log_dir, &wopt, &n->wal, info);
    if (rc != MOM_OK) {
        log_error("cannot open the log in %s: %s", n->log_dir, mom_strerror(rc));
        return rc;
    }
    if (info->last_index && info->last_index < n->snapshot_index) {
        log_warn("log ends at %" PRIu64 " before snapshot %" PRIu64 "; starting a new log",
                 info->last_index, n->snapshot_index);
        rc = wal_reset(n->wal);
    } else if (info->first_index > n->snapshot_index + 1) {
        log_error("log starts at %" PRIu64 " but the snapshot covers only up to %" PRIu64
                  ": a hole",
                  info->first_index, n->snapshot_index);
        rc = MOM_ERR_CORRUPT;
    }
    if (rc == MOM_OK) {
        rc = hard_state_read(n, hs, found);
        if (rc != MOM_OK)
            log_error("%s/raft-state is unreadable: %s", n->dir, mom_strerror(rc));
    }
    if (rc != MOM_OK) {
        wal_close(n->wal);
        n->wal = NULL;
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
    histogram_init(&n->stats.sync_latency, histogram_disk_bounds_us, histogram_disk_nbounds);
    histogram_init(&n->stats.snapshot_duration, histogram_disk_bounds_us, histogram_disk_nbounds);
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
    struct wal_open_info info;
    struct raft_hard_state hs = {0};
    bool found = false;
    rc = open_storage(n, cfg, &info, &hs, &found);
    bool repaired = false;
    if (rc == MOM_ERR_CORRUPT) {
        /* Repair instead of refusal (node_repair.c): a cluster of three or
         * more starts this member again on empty storage. It keeps the
         * cluster id if the old raft-state still tells it, so that the new
         * storage is not fresh: it can rejoin that cluster, never form one. */
        struct raft_hard_state old = {0};
        bool had = false;
        if (hard_state_read(n, &old, &had) != MOM_OK || !had)
            old.cluster_id = 0;
        rc = node_storage_set_aside(n);
        if (rc == MOM_OK) {
            repaired = true;
            memset(&hs, 0, sizeof hs);
            rc = open_storage(n, cfg, &info, &hs, &found);
            if (rc == MOM_OK && !found)
                hs.cluster_id = old.cluster_id;
        }
    }
    if (rc != MOM_OK)
        goto fail;

    /* Hard state and incarnation. Storage without a raft-state file, log or
     * snapshot is fresh: it gets a new incarnation and abstains until the
     * core sees every member fresh (a new cluster) or it has caught up
     * (unless the bootstrap override is set). A cut log tail, or storage
     * moved aside as damaged, counts as lost storage: it abstains until
     * caught up, whatever the override says. */
    bool fresh = !found && info.last_index == 0 && n->snapshot_index == 0;
    bool lost_tail = info.truncated_bytes > 0 && n->n_members > 1;
    if (!found || lost_tail) {
        n->incarnation = clock_wall_ms() * 1000u + 999u;
        if (n->n_members > 1 && ((fresh && (!cfg->bootstrap || repaired)) || lost_tail)) {
            hs.abstain = true;
            if (fresh && !repaired)
                log_info("fresh storage: abstaining from votes until every member reports fresh "
                         "storage too (a new cluster) or this one has caught up with the cluster");
            else
                log_warn("damaged storage: abstaining from votes until caught up with the cluster");
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
             ", term %" PRIu64 ", %u member(s), incarnation %" PRIu64 ", cluster %016" PRIx64 "%s",
             n->snapshot_index + 1, n->last_index, n->snapshot_index, n->applied_index,
             raft_term(n->raft), n->n_members, n->incarnation, raft_cluster_id(n->raft),
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
    node_snapshot_close(n);
    syncer_stop(n->syncer);
    n->syncer = NULL;
    if (n->wal && n->sync != NODE_SYNC_NEVER)
        (void)fdatasync(wal_sync_fd(n->wal));
    node_fail_pending_from(n, 0, MOM_ERR_CLOSED);
    for (size_t i = 0; i < n->nheld; i++)
        peer_respond(n->held[i].req, GRPC_UNAVAILABLE, "shutting down", NULL, 0);
    node_forward_close(n);
    for (size_t i = 0; i < n->nout; i++)
        free(n->out[i].buf);
    for (size_t i = 0; i < n->ndeferred; i++) {
        free(n->deferred[i].data);
        if (n->deferred[i].ctx)
            n->cb.fail(n->arg, n->deferred[i].ctx, MOM_ERR_CLOSED);
    }
    free(n->deferred);
    node_read_close(n);
    if (n->kick_ev)
        event_free(n->kick_ev);
    if (n->kick_deadline_ev)
        event_free(n->kick_deadline_ev);
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
    node_cluster_free(n->cluster); /* last: held calls were answered above */
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
    node_kick(n);
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