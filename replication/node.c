/* Group commit on the loop for a cluster of one (DESIGN §3, §4).
 *
 * Proposals in one loop turn are appended to the WAL buffer; a flush event
 * at the lowest priority (so it runs after every ready client callback of
 * the turn) writes them with one write() and hands one fdatasync to the I/O
 * helper thread. When the sync completes, the batch is committed: entries
 * are applied in index order and their proposers answered. Proposals made
 * while a sync is in flight form the next batch. With fsync=never the batch
 * commits after its write; with everysec a timer syncs once a second.
 *
 * Snapshots: every snapshot_entries applied entries a forked child writes
 * the application state to snapshot.tmp and syncs it; the loop then renames
 * it to snapshot-<index>-<term>.snap, syncs the directory, removes older
 * snapshots and deletes the WAL segments below it.
 * Recovery loads the newest snapshot and replays the log after it.
 * SPDX-License-Identifier: MIT */
#include "replication/node.h"

#include "common/err.h"
#include "common/log.h"
#include "replication/syncer.h"
#include "replication/wal.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_TERM 1u

struct pending {
    uint64_t index;
    uint8_t *data;
    size_t len;
    void *ctx;
};

struct node {
    struct event_base *base;
    struct node_callbacks cb;
    void *arg;
    enum node_sync sync;
    uint64_t snapshot_entries;
    char dir[1024];
    char log_dir[1100];

    struct wal *wal;
    struct syncer *syncer;
    struct event *flush_ev;
    struct event *sync_done_ev;
    struct event *everysec_ev;

    /* FIFO of proposals not yet applied, a ring of capacity cap. */
    struct pending *ring;
    size_t head, count, cap;

    uint64_t appended_index; /* last index given to wal_append */
    uint64_t written_index;  /* last index written to the file */
    uint64_t durable_index;  /* last index known synced */
    uint64_t applied_index;
    uint64_t snapshot_index;
    pid_t snap_pid;             /* snapshot child, 0 when none */
    int snap_pipe;              /* EOF when the child exits */
    struct event *snap_ev;
    uint64_t snap_child_index;  /* the index the child is writing */
    bool flush_scheduled;
    bool writable;
    struct node_stats stats;
};

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

static struct pending *ring_front(struct node *n) { return n->count ? &n->ring[n->head] : NULL; }

static void ring_pop(struct node *n)
{
    n->head = (n->head + 1) % n->cap;
    n->count--;
}

/* Fails every pending proposal with index > after (newest first is not
 * required: each gets exactly one callback). */
static void fail_pending_after(struct node *n, uint64_t after, int err)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->count; i++) {
        struct pending *p = &n->ring[(n->head + i) % n->cap];
        if (p->index <= after) {
            keep++;
            continue;
        }
        free(p->data);
        p->data = NULL;
        if (p->ctx)
            n->cb.fail(n->arg, p->ctx, err);
    }
    n->count = keep;
}

static void schedule_flush(struct node *n)
{
    if (!n->flush_scheduled) {
        n->flush_scheduled = true;
        event_active(n->flush_ev, EV_WRITE, 0);
    }
}

/* ---- snapshots ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return MOM_ERR_IO;
    int rc = fsync(fd) == 0 ? MOM_OK : mom_err_from_errno(errno);
    close(fd);
    return rc;
}

static bool parse_snapshot_name(const char *name, uint64_t *index, uint64_t *term)
{
    unsigned long long i, t;
    int used = 0;
    if (sscanf(name, "snapshot-%20llu-%20llu.snap%n", &i, &t, &used) != 2 ||
        name[used] != '\0')
        return false;
    *index = i;
    *term = t;
    return true;
}

/* Newest snapshot index in dir (0 when none); removes all older ones when prune. */
static uint64_t scan_snapshots(const char *dir, bool prune, uint64_t keep_index)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t idx, term;
        if (!parse_snapshot_name(e->d_name, &idx, &term))
            continue;
        if (prune && idx < keep_index) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
            continue;
        }
        if (idx > best)
            best = idx;
    }
    closedir(d);
    return best;
}

/* Child side: writes the frozen state to the temp file and syncs it. */
static int write_snapshot_file(struct node *n, const char *tmp)
{
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return mom_err_from_errno(errno);
    int rc = n->cb.snapshot_write(n->arg, f);
    if (rc == MOM_OK && fflush(f) != 0)
        rc = mom_err_from_errno(errno);
    if (rc == MOM_OK && fsync(fileno(f)) != 0)
        rc = mom_err_from_errno(errno);
    if (fclose(f) != 0 && rc == MOM_OK)
        rc = mom_err_from_errno(errno);
    return rc;
}

static void snapshot_tmp_path(const struct node *n, char *out, size_t len)
{
    snprintf(out, len, "%s/snapshot.tmp", n->dir);
}

/* Parent side, when the child has exited: publish the file, prune, compact. */
static void on_snapshot_child(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct node *n = arg;
    char byte;
    if (read(fd, &byte, 1) > 0)
        return; /* the child writes nothing; wait for EOF */
    event_free(n->snap_ev);
    n->snap_ev = NULL;
    close(n->snap_pipe);
    n->snap_pipe = -1;
    int status = 0;
    while (waitpid(n->snap_pid, &status, 0) < 0 && errno == EINTR)
        ;
    n->snap_pid = 0;
    char tmp[1200], final[1200];
    snapshot_tmp_path(n, tmp, sizeof tmp);
    snprintf(final, sizeof final, "%s/snapshot-%020" PRIu64 "-%" PRIu64 ".snap", n->dir,
             n->snap_child_index, (uint64_t)NODE_TERM);
    int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? MOM_OK : MOM_ERR_IO;
    if (rc == MOM_OK && rename(tmp, final) != 0)
        rc = mom_err_from_errno(errno);
    if (rc == MOM_OK)
        rc = fsync_dir(n->dir);
    if (rc != MOM_OK) {
        unlink(tmp);
        log_error("snapshot at index %" PRIu64 " failed (child status %d): %s",
                  n->snap_child_index, status, mom_strerror(rc));
        return;
    }
    n->snapshot_index = n->snap_child_index;
    n->stats.snapshots++;
    scan_snapshots(n->dir, true, n->snapshot_index);
    rc = wal_compact(n->wal, n->snapshot_index);
    if (rc != MOM_OK)
        log_warn("log compaction after snapshot %" PRIu64 " failed: %s", n->snapshot_index,
                 mom_strerror(rc));
    log_info("snapshot written at index %" PRIu64 "; log now %" PRIu64 " bytes", n->snapshot_index,
             wal_disk_bytes(n->wal));
}

/* Snapshots are written by a forked child from its copy-on-write image of
 * the state (as redis BGSAVE does), so the loop never stalls on them. */
static void take_snapshot(struct node *n)
{
    if (n->snap_pid)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        log_error("snapshot: pipe failed: %s", strerror(errno));
        return;
    }
    char tmp[1200];
    snapshot_tmp_path(n, tmp, sizeof tmp);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("snapshot: fork failed: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        _exit(write_snapshot_file(n, tmp) == MOM_OK ? 0 : 1);
    }
    close(fds[1]);
    n->snap_pid = pid;
    n->snap_pipe = fds[0];
    n->snap_child_index = n->applied_index;
    n->snap_ev = event_new(n->base, fds[0], EV_READ | EV_PERSIST, on_snapshot_child, n);
    if (!n->snap_ev || event_add(n->snap_ev, NULL) != 0) {
        log_error("snapshot: cannot watch the child");
        kill(pid, SIGKILL);
    }
}

/* ---- commit path ---- */

static void commit_to(struct node *n, uint64_t index)
{
    if (index > n->durable_index)
        n->durable_index = index;
    struct pending *p;
    while ((p = ring_front(n)) && p->index <= index) {
        struct pending cur = *p;
        ring_pop(n);
        n->cb.apply(n->arg, cur.index, cur.data, cur.len, cur.ctx);
        free(cur.data);
        n->applied_index = cur.index;
        n->stats.entries++;
    }
    if (n->applied_index - n->snapshot_index >= n->snapshot_entries && !n->snap_pid)
        take_snapshot(n);
}

/* Writes what is buffered and, under fsync=always, starts a sync when none
 * is in flight: a batch forms and is written while the previous one syncs. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    n->flush_scheduled = false;
    if (!n->writable)
        return;
    if (wal_pending_bytes(n->wal)) {
        int rc = wal_write(n->wal);
        if (rc != MOM_OK) {
            log_error("log write failed: %s; %" PRIu64 " pending writes refused", mom_strerror(rc),
                      n->appended_index - n->written_index);
            fail_pending_after(n, n->written_index, rc);
            n->appended_index = n->written_index;
            return;
        }
        n->stats.batches++;
        n->written_index = n->appended_index;
    }
    if (n->sync != NODE_SYNC_ALWAYS) {
        commit_to(n, n->written_index);
        if (wal_pending_bytes(n->wal))
            schedule_flush(n);
    } else if (n->written_index > n->durable_index && !syncer_busy(n->syncer)) {
        syncer_submit(n->syncer, wal_sync_fd(n->wal), n->written_index);
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
    if (result != MOM_OK) {
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages: nothing after the last good sync can be trusted, so refuse
         * every pending write and stop accepting new ones. */
        log_error("fdatasync of the log failed: %s; refusing writes until restart",
                  mom_strerror(result));
        n->writable = false;
        fail_pending_after(n, n->durable_index, MOM_ERR_UNAVAILABLE);
        return;
    }
    if (n->sync == NODE_SYNC_ALWAYS)
        commit_to(n, cookie);
    else if (cookie > n->durable_index)
        n->durable_index = cookie;
    on_flush(-1, 0, n);
}

static void on_everysec(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct node *n = arg;
    if (n->written_index > n->durable_index && !syncer_busy(n->syncer))
        syncer_submit(n->syncer, wal_sync_fd(n->wal), n->written_index);
}

int node_propose(struct node *n, uint8_t *data, size_t len, void *ctx)
{
    if (!n->writable) {
        free(data);
        return MOM_ERR_UNAVAILABLE;
    }
    uint64_t index = n->appended_index + 1;
    int rc = wal_append(n->wal, NODE_TERM, index, data, len);
    if (rc == MOM_OK)
        rc = ring_push(n, (struct pending){index, data, len, ctx});
    if (rc != MOM_OK) {
        free(data);
        return MOM_ERR_UNAVAILABLE;
    }
    n->appended_index = index;
    schedule_flush(n);
    return MOM_OK;
}

/* ---- open / close ---- */

static int mkdir_p(const char *path)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return MOM_ERR_IO;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return MOM_ERR_IO;
    return MOM_OK;
}

struct replay_ctx {
    struct node *n;
};

static int replay_one(void *arg, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    (void)term;
    struct node *n = ((struct replay_ctx *)arg)->n;
    if (index != n->applied_index + 1) {
        log_error("log replay: expected index %" PRIu64 ", found %" PRIu64, n->applied_index + 1,
                  index);
        return MOM_ERR_CORRUPT;
    }
    n->cb.apply(n->arg, index, data, len, NULL);
    n->applied_index = index;
    return MOM_OK;
}

static int load_snapshot(struct node *n)
{
    uint64_t idx = scan_snapshots(n->dir, false, 0);
    if (!idx)
        return MOM_OK;
    DIR *d = opendir(n->dir);
    if (!d)
        return MOM_ERR_IO;
    char path[1400] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t i, t;
        if (parse_snapshot_name(e->d_name, &i, &t) && i == idx)
            snprintf(path, sizeof path, "%s/%s", n->dir, e->d_name);
    }
    closedir(d);
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("cannot open snapshot %s: %s", path, strerror(errno));
        return MOM_ERR_IO;
    }
    int rc = n->cb.snapshot_read(n->arg, f);
    fclose(f);
    if (rc != MOM_OK) {
        log_error("snapshot %s is unreadable (%s); refusing to start", path, mom_strerror(rc));
        return rc;
    }
    n->snapshot_index = n->applied_index = idx;
    log_info("loaded snapshot %s", path);
    return MOM_OK;
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
    n->snapshot_entries = cfg->snapshot_entries ? cfg->snapshot_entries : 100000;
    n->writable = true;
    n->snap_pipe = -1;
    snprintf(n->dir, sizeof n->dir, "%s/group-%u", cfg->data_dir, cfg->group_id);
    snprintf(n->log_dir, sizeof n->log_dir, "%s/log", n->dir);
    int rc = mkdir_p(n->log_dir);
    if (rc != MOM_OK) {
        log_error("cannot create %s: %s", n->log_dir, strerror(errno));
        goto fail;
    }
    char stale_tmp[1200];
    snprintf(stale_tmp, sizeof stale_tmp, "%s/snapshot.tmp", n->dir);
    unlink(stale_tmp); /* a snapshot interrupted by a crash */
    rc = load_snapshot(n);
    if (rc != MOM_OK)
        goto fail;
    struct wal_options wopt = {.segment_bytes = cfg->segment_bytes};
    struct wal_open_info info;
    rc = wal_open(n->log_dir, &wopt, &n->wal, &info);
    if (rc != MOM_OK) {
        log_error("cannot open the log in %s: %s", n->log_dir, mom_strerror(rc));
        goto fail;
    }
    if (info.last_index && info.last_index < n->snapshot_index) {
        log_warn("log ends at %" PRIu64 " before snapshot %" PRIu64 "; starting a new log",
                 info.last_index, n->snapshot_index);
        rc = wal_reset(n->wal);
        if (rc != MOM_OK)
            goto fail;
    } else if (info.first_index > n->snapshot_index + 1) {
        log_error("log starts at %" PRIu64 " but the snapshot covers only up to %" PRIu64
                  "; refusing to start with a hole",
                  info.first_index, n->snapshot_index);
        rc = MOM_ERR_CORRUPT;
        goto fail;
    }
    struct replay_ctx rctx = {n};
    rc = wal_replay(n->wal, n->snapshot_index + 1, replay_one, &rctx);
    if (rc != MOM_OK) {
        log_error("log replay failed: %s", mom_strerror(rc));
        goto fail;
    }
    n->appended_index = n->written_index = n->durable_index = n->applied_index;
    log_info("recovered to index %" PRIu64 " (snapshot %" PRIu64 ", %" PRIu64
             " log entries replayed)",
             n->applied_index, n->snapshot_index, n->applied_index - n->snapshot_index);

    rc = syncer_start(&n->syncer);
    if (rc != MOM_OK)
        goto fail;
    n->flush_ev = event_new(base, -1, 0, on_flush, n);
    n->sync_done_ev = event_new(base, syncer_event_fd(n->syncer), EV_READ | EV_PERSIST,
                                on_sync_done, n);
    if (!n->flush_ev || !n->sync_done_ev) {
        rc = MOM_ERR_NOMEM;
        goto fail;
    }
    /* Lowest priority: the flush runs after the turn's client callbacks. */
    int nprio = event_base_get_npriorities(base);
    if (nprio > 1)
        event_priority_set(n->flush_ev, nprio - 1);
    event_add(n->sync_done_ev, NULL);
    if (n->sync == NODE_SYNC_EVERYSEC) {
        n->everysec_ev = event_new(base, -1, EV_PERSIST, on_everysec, n);
        struct timeval one = {1, 0};
        if (!n->everysec_ev || event_add(n->everysec_ev, &one) != 0) {
            rc = MOM_ERR_NOMEM;
            goto fail;
        }
    }
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
    if (n->wal && n->writable && wal_pending_bytes(n->wal) && n->syncer && !syncer_busy(n->syncer)) {
        /* Best effort: written but unanswered entries are not acknowledged. */
        (void)wal_write(n->wal);
    }
    if (n->snap_pid) {
        /* An unfinished snapshot is abandoned; the log still holds it all. */
        kill(n->snap_pid, SIGKILL);
        while (waitpid(n->snap_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        char tmp[1200];
        snapshot_tmp_path(n, tmp, sizeof tmp);
        unlink(tmp);
    }
    if (n->snap_ev)
        event_free(n->snap_ev);
    if (n->snap_pipe >= 0)
        close(n->snap_pipe);
    syncer_stop(n->syncer);
    n->syncer = NULL;
    if (n->wal && n->sync != NODE_SYNC_NEVER)
        (void)fdatasync(wal_sync_fd(n->wal));
    fail_pending_after(n, 0, MOM_ERR_CLOSED);
    if (n->flush_ev)
        event_free(n->flush_ev);
    if (n->sync_done_ev)
        event_free(n->sync_done_ev);
    if (n->everysec_ev)
        event_free(n->everysec_ev);
    wal_close(n->wal);
    free(n->ring);
    free(n);
}

bool node_writable(const struct node *n) { return n->writable; }
uint64_t node_commit_index(const struct node *n) { return n->durable_index; }
uint64_t node_applied_index(const struct node *n) { return n->applied_index; }
uint64_t node_term(const struct node *n)
{
    (void)n;
    return NODE_TERM;
}

void node_get_stats(const struct node *n, struct node_stats *out)
{
    *out = n->stats;
    out->log_bytes = n->wal ? wal_disk_bytes(n->wal) : 0;
}
