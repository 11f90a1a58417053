/* Read-only views of the Raft core (raft_internal.h): the accessors raft.h
 * declares, the role names, the cluster-id log entry's encoding, and the
 * invariant check the simulation runs after every step. Nothing here changes
 * the state.
 * SPDX-License-Identifier: MIT */
#include "replication/raft_internal.h"

#include "common/err.h"
#include "common/le.h"
#include "common/log.h"

#include <inttypes.h>
#include <string.h>

uint32_t raft_id(const struct raft *r)
{
    return r->cfg.id;
}
enum raft_role raft_role(const struct raft *r)
{
    return r->role;
}
uint32_t raft_leader(const struct raft *r)
{
    return r->lead;
}
uint64_t raft_term(const struct raft *r)
{
    return r->term;
}
uint32_t raft_vote(const struct raft *r)
{
    return r->vote;
}
bool raft_abstaining(const struct raft *r)
{
    return r->abstain;
}
uint64_t raft_cluster_id(const struct raft *r)
{
    return r->cluster_id;
}

/* The cluster-id entry: a byte 0 (which starts no encoded Command: protobuf
 * has no field 0), "momcid" and a byte 1 (version), then the id as 8 bytes
 * little endian. */
static const uint8_t cid_magic[8] = {0, 'm', 'o', 'm', 'c', 'i', 'd', 1};

void raft_cluster_id_entry(uint64_t id, uint8_t out[RAFT_CLUSTER_ID_ENTRY_LEN])
{
    memcpy(out, cid_magic, sizeof cid_magic);
    le_put64(out + 8, id);
}

bool raft_entry_cluster_id(const struct raft_entry *e, uint64_t *id)
{
    if (e->len != RAFT_CLUSTER_ID_ENTRY_LEN || memcmp(e->data, cid_magic, sizeof cid_magic) != 0)
        return false;
    if (id)
        *id = le_get64(e->data + 8);
    return true;
}
uint64_t raft_commit_index(const struct raft *r)
{
    return r->commit;
}
uint64_t raft_applied_index(const struct raft *r)
{
    return r->applied;
}
uint64_t raft_first_index(const struct raft *r)
{
    return r->snap_index + 1;
}
uint64_t raft_last_index(const struct raft *r)
{
    return last_index(r);
}
uint64_t raft_log_bytes(const struct raft *r)
{
    return r->log_bytes;
}
uint32_t raft_transferee(const struct raft *r)
{
    return r->transferee;
}

struct raft_snapshot_meta raft_snapshot(const struct raft *r)
{
    return (struct raft_snapshot_meta){.index = r->snap_index, .term = r->snap_term};
}

bool raft_term_at(const struct raft *r, uint64_t index, uint64_t *term)
{
    return term_at(r, index, term);
}

bool raft_entry_at(const struct raft *r, uint64_t index, struct raft_entry *out)
{
    if (index <= r->snap_index || index <= r->released || index > last_index(r))
        return false;
    *out = *entry_ptr(r, index);
    return true;
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRE_CANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "?";
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            log_error("raft g%" PRIu32 " n%" PRIu32 ": invariant failed: %s", r->cfg.group_id,     \
                      r->cfg.id, #cond);                                                           \
            return MOM_ERR_CORRUPT;                                                                \
        }                                                                                          \
    } while (0)

int raft_check_invariants(const struct raft *r)
{
    uint64_t last = last_index(r);
    CHECK(r->snap_index <= r->applied);
    CHECK(r->applied <= r->commit);
    CHECK(r->commit <= last);
    CHECK(r->stable <= last);
    CHECK(r->unstable_from <= last + 1);
    CHECK(r->log_off + r->log_len <= r->log_cap || r->log_len == 0);
    uint64_t prev = r->snap_term, bytes = 0;
    for (size_t i = 0; i < r->log_len; i++) {
        const struct raft_entry *e = &r->log[r->log_off + i];
        CHECK(e->index == r->snap_index + 1 + (uint64_t)i);
        CHECK(e->term >= prev);
        CHECK(e->term <= r->term);
        if (e->index <= r->released)
            CHECK(e->data == NULL && e->index <= r->applied && e->index < r->unstable_from);
        else
            CHECK((e->len == 0) == (e->data == NULL));
        prev = e->term;
        bytes += e->len;
    }
    CHECK(bytes == r->log_bytes);
    CHECK(r->released == 0 || r->n == 1);
    CHECK(r->vote <= r->n);
    CHECK(r->lead <= r->n);
    CHECK((r->role == RAFT_LEADER) == (r->lead == r->cfg.id));
    if (r->role == RAFT_LEADER || r->role == RAFT_CANDIDATE)
        CHECK(r->vote == r->cfg.id);
    CHECK(!(r->abstain && (r->role != RAFT_FOLLOWER)));
    if (r->role == RAFT_LEADER) {
        for (uint32_t i = 0; i < r->n; i++) {
            if (i + 1 == r->cfg.id)
                continue;
            const struct progress *p = &r->prs[i];
            CHECK(p->match <= last);
            CHECK(p->next >= p->match + 1);
            CHECK(p->next <= last + 1);
            CHECK(p->infl_count <= r->cfg.max_inflight);
        }
    }
    return MOM_OK;
}
