/* The replication node: takes proposed Commands, makes them durable in the
 * write-ahead log with group commit (one write and one fdatasync per batch,
 * the sync on the I/O helper thread) and hands committed entries, in index
 * order, to the application's apply callback. It also owns snapshot files
 * (write temp, fsync, rename, fsync dir) and log compaction. A single node is
 * a cluster of one: it commits after its own durable append.
 * Runs on the loop thread; reports back through struct node_callbacks.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_NODE_H
#define MOM_REPLICATION_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct node;

enum node_sync { NODE_SYNC_ALWAYS, NODE_SYNC_EVERYSEC, NODE_SYNC_NEVER };

struct node_callbacks {
    /* A committed entry, in order. ctx is the proposer's context when this
     * node proposed it in this process, else NULL (replay, other proposers). */
    void (*apply)(void *arg, uint64_t index, const uint8_t *data, size_t len, void *ctx);
    /* A proposal that will never be applied (write or sync failed): err is a
     * MOM_ERR_* code (MOM_ERR_NOSPACE, MOM_ERR_IO, MOM_ERR_UNAVAILABLE). */
    void (*fail)(void *arg, void *ctx, int err);
    /* Writes the application state (which has applied exactly `index`) to f.
     * Returns MOM_OK or an error. */
    int (*snapshot_write)(void *arg, FILE *f);
    /* Loads a snapshot into the (empty) application state. */
    int (*snapshot_read)(void *arg, FILE *f);
};

struct node_config {
    const char *data_dir;       /* the group's files live in data_dir/group-<id>/ */
    uint32_t group_id;
    enum node_sync sync;
    uint64_t snapshot_entries;  /* entries between snapshots (0 = 100000) */
    uint64_t segment_bytes;     /* WAL segment size (0 = default) */
};

/* Opens the group's storage, loads the newest snapshot and replays the log
 * through cb->apply (ctx NULL), then starts the group-commit machinery.
 * Returns MOM_OK, or MOM_ERR_CORRUPT / MOM_ERR_IO (logged; do not start). */
int node_open(struct event_base *base, const struct node_config *cfg,
              const struct node_callbacks *cb, void *arg, struct node **out);
/* Flushes what can be flushed, stops the helper thread, closes files.
 * Pending proposals fail with MOM_ERR_CLOSED. Accepts NULL. */
void node_close(struct node *n);

/* Proposes an encoded Command. The node takes ownership of data (malloc'd)
 * on every path. ctx comes back in apply or fail, exactly once.
 * Returns MOM_OK, or MOM_ERR_UNAVAILABLE when storage has failed (the caller
 * still owns ctx and must answer it; data is freed). */
int node_propose(struct node *n, uint8_t *data, size_t len, void *ctx);

/* Whether writes are accepted (storage healthy). */
bool node_writable(const struct node *n);
uint64_t node_commit_index(const struct node *n);
uint64_t node_applied_index(const struct node *n);
uint64_t node_term(const struct node *n);

struct node_stats {
    uint64_t syncs;             /* fdatasync calls completed */
    uint64_t sync_micros_total; /* their summed duration */
    uint64_t batches;           /* write() batches */
    uint64_t entries;           /* entries committed */
    uint64_t snapshots;         /* snapshots written */
    uint64_t log_bytes;         /* bytes of log on disk */
};
void node_get_stats(const struct node *n, struct node_stats *out);

#endif
