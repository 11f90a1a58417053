/* Repair instead of refusal (node_internal.h): when the group's storage is
 * damaged at start-up (a log damaged before its last segment, an unreadable
 * snapshot or raft-state file), a member of a cluster of three or more moves
 * the whole group directory aside, kept for inspection, and starts again
 * with empty storage: a new incarnation that abstains until it has caught
 * up from the others (the incarnation rule, docs/architecture.md). A smaller
 * cluster has nobody it could safely catch up from while abstaining, so it
 * refuses with the step an operator must take.
 * SPDX-License-Identifier: MIT */
#include "replication/node_internal.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The directory holding n->dir (the data directory), into buf. */
static void parent_dir(const struct node *n, char *buf, size_t size)
{
    snprintf(buf, size, "%s", n->dir);
    char *slash = strrchr(buf, '/');
    if (!slash)
        snprintf(buf, size, ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
}

int node_storage_set_aside(struct node *n)
{
    if (n->n_members < 3) {
        log_error("the storage in %s is damaged (see above) and this node has %s to catch up "
                  "from; refusing to start. To repair: stop it, move %s aside (for example "
                  "`mv %s %s.damaged`) and restore it from a backup; starting on an empty "
                  "directory instead loses every message it held",
                  n->dir, n->n_members == 1 ? "no other member" : "too few members (needs 3+)",
                  n->dir, n->dir, n->dir);
        return MOM_ERR_CORRUPT;
    }
    char aside[1200];
    snprintf(aside, sizeof aside, "%s.damaged-%" PRIu64, n->dir, clock_wall_ms());
    if (rename(n->dir, aside) != 0) {
        log_error("cannot move the damaged storage %s to %s: %s; refusing to start", n->dir, aside,
                  strerror(errno));
        return MOM_ERR_IO;
    }
    char parent[1024];
    parent_dir(n, parent, sizeof parent);
    int rc = fs_fsync_dir(parent);
    if (rc == MOM_OK)
        rc = fs_mkdir_p(n->log_dir);
    if (rc != MOM_OK) {
        log_error("cannot recreate %s after moving the damaged storage aside: %s", n->log_dir,
                  mom_strerror(rc));
        return rc;
    }
    /* A snapshot may have been loaded before the damage was found. */
    if (n->cb.reset) {
        rc = n->cb.reset(n->arg);
        if (rc != MOM_OK)
            return rc;
    }
    n->snapshot_index = n->snapshot_term = n->applied_index = 0;
    log_warn("damaged storage moved aside to %s (kept for inspection); starting %s empty, "
             "abstaining until caught up from the other members",
             aside, n->dir);
    return MOM_OK;
}
