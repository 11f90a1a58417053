/* The node's snapshots (node_internal.h): taking one in a forked child
 * (the paced writer, then fsync, rename, directory fsync and pruning, all
 * in the child), reaping the child and compacting the core and the log,
 * loading the newest snapshot at start, installing one received from the
 * leader, and the InstallSnapshot chunk stream both ways (leader: reads the
 * file in NODE_SNAP_CHUNK pieces, one Raft call each; follower: appends
 * them to snapshot.recv).
 *
 * Files in the group directory: snapshot-<index 20 digits>-<term>.snap (the
 * newest is the state; older ones are removed once a newer one is durable),
 * snapshot.tmp (a child's work in progress; removed at open) and
 * snapshot.recv (a stream from the leader in progress). The bytes are the
 * application's (cb.snapshot_write / snapshot_read); this file never looks
 * inside them.
 * SPDX-License-Identifier: MIT */
#include "replication/node_internal.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "replication/grpcmsg.h"
#include "replication/wal.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void snapshot_path(const struct node *n, uint64_t index, uint64_t term, char *out,
                          size_t len)
{
    snprintf(out, len, "%s/snapshot-%020" PRIu64 "-%" PRIu64 ".snap", n->dir, index, term);
}

static void snapshot_tmp_path(const struct node *n, char *out, size_t len)
{
    snprintf(out, len, "%s/snapshot.tmp", n->dir);
}

static bool parse_snapshot_name(const char *name, uint64_t *index, uint64_t *term)
{
    unsigned long long i, t;
    int used = 0;
    if (sscanf(name, "snapshot-%20llu-%20llu.snap%n", &i, &t, &used) != 2 || name[used] != '\0')
        return false;
    *index = i;
    *term = t;
    return true;
}

/* Deleting a large file at once puts the release of all its blocks (the
 * journal's work and, with the discard mount option, the discards) into
 * one journal commit, which the loop's next log fdatasync waits for: after
 * a 48 MiB unlink the log's slowest sync in the next 0.3 s took 4-17 ms;
 * truncating it 1 MiB at a time with a 1 ms pause first, 2-11 ms (with no
 * deletion 0.6-6 ms) on the 2-core test VM. Sleeps: the snapshot child
 * only. A crash part way leaves an older, shorter snapshot file, which
 * nothing reads (the newest index is the state) and the next one prunes. */
#define SNAPSHOT_REMOVE_STEP ((off_t)1 << 20)

static void remove_in_steps(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        for (off_t size = st.st_size; size > 0;) {
            size = size > SNAPSHOT_REMOVE_STEP ? size - SNAPSHOT_REMOVE_STEP : 0;
            if (ftruncate(fd, size) != 0)
                break;
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
}

/* Newest snapshot index in dir (0 when none); removes all older ones when
 * prune (in steps when in_steps: remove_in_steps). */
static uint64_t scan_snapshots(const char *dir, bool prune, uint64_t keep_index, bool in_steps)
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
            if (in_steps)
                remove_in_steps(path);
            else
                unlink(path);
            continue;
        }
        if (idx > best)
            best = idx;
    }
    closedir(d);
    return best;
}

/* By count, or by the bytes the core holds once a few entries were applied
 * since the last snapshot (so that a log of unapplied entries cannot start
 * one snapshot after another). */
bool node_snapshot_due(const struct node *n)
{
    uint64_t applied = n->applied_index - n->snapshot_index;
    return applied >= n->snapshot_entries ||
           (applied >= NODE_SNAPSHOT_MIN_ENTRIES && raft_log_bytes(n->raft) >= n->snapshot_bytes);
}

/* ---- the child: paced writes ---- */

/* The snapshot child's file writes, paced: every SNAPSHOT_WRITEBACK_CHUNK
 * bytes it waits for that chunk's writeback and drops it from the page
 * cache. One fsync of the whole file at the end had the journal flush tens
 * of megabytes at once, and the loop's log fdatasync waited behind it (p99
 * spikes of 20-120 ms under fsync=always); and the cached pages made the
 * next snapshot's unlink of this file take 13-21 ms on the loop. A log
 * fdatasync that lands while a chunk is in flight still waits for that
 * chunk (the device flush carries it): with a writer running flat out,
 * 4 MiB chunks put the log's sync p90 at 6.4 ms, 256 KiB ones at 0.6 ms
 * (0.14 ms with no writer) on the 2-core test VM. */
#define SNAPSHOT_WRITEBACK_CHUNK (256u << 10)

/* The child keeps the loop's CPU priority. At nice 19 (tried, with a
 * guard that raised a child left a whole interval behind) it took less CPU
 * from the loop, but publish p99 was no better on a loaded machine and
 * worse in a quiet window (84-134 ms against 14 ms at nice 0, unpinned,
 * bench_snapshot.py). The likely cause, inferred and not traced: a child
 * preempted inside the filesystem (holding a journal handle while it
 * writes or allocates blocks) waits behind every normal-priority task
 * before the journal can commit, and the loop's log fdatasync waits too. */

struct paced_file {
    int fd;
    off_t written, settled;
    int err; /* errno of the first failure */
};

static void paced_settle(struct paced_file *pf)
{
    off_t len = pf->written - pf->settled;
    if (len <= 0)
        return;
    if (sync_file_range(pf->fd, pf->settled, len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
        !pf->err)
        pf->err = errno;
    (void)posix_fadvise(pf->fd, pf->settled, len, POSIX_FADV_DONTNEED);
    pf->settled = pf->written;
}

static ssize_t paced_write(void *cookie, const char *buf, size_t size)
{
    struct paced_file *pf = cookie;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(pf->fd, buf + done, size - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (!pf->err)
                pf->err = errno;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
        pf->written += w;
    }
    if (pf->written - pf->settled >= (off_t)SNAPSHOT_WRITEBACK_CHUNK)
        paced_settle(pf);
    return (ssize_t)done;
}

/* Runs in the forked child: writes tmp, makes it durable. */
static int write_snapshot_file(struct node *n, const char *tmp)
{
    struct paced_file pf = {.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (pf.fd < 0)
        return mom_err_from_errno(errno);
    cookie_io_functions_t io = {.write = paced_write};
    FILE *f = fopencookie(&pf, "w", io);
    if (!f) {
        int rc = mom_err_from_errno(errno);
        close(pf.fd);
        return rc;
    }
    int rc = n->cb.snapshot_write(n->arg, f);
    if (fclose(f) != 0 && rc == MOM_OK)
        rc = mom_err_from_errno(pf.err ? pf.err : errno);
    if (rc == MOM_OK && pf.err)
        rc = mom_err_from_errno(pf.err);
    if (rc == MOM_OK && fsync(pf.fd) != 0)
        rc = mom_err_from_errno(errno);
    (void)posix_fadvise(pf.fd, 0, 0, POSIX_FADV_DONTNEED);
    if (close(pf.fd) != 0 && rc == MOM_OK)
        rc = mom_err_from_errno(errno);
    return rc;
}

/* ---- the parent: start, reap, abandon ---- */

/* Parent side, when the child has exited: the snapshot is durable under
 * its final name; compact the core and the log. */
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
    int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? MOM_OK : MOM_ERR_IO;
    if (rc != MOM_OK) {
        char tmp[1200];
        snapshot_tmp_path(n, tmp, sizeof tmp);
        unlink(tmp);
        log_error("snapshot at index %" PRIu64 " failed (child status %d): %s", n->snap_child_index,
                  status, mom_strerror(rc));
        return;
    }
    n->snapshot_index = n->snap_child_index;
    n->snapshot_term = n->snap_child_term;
    if (raft_compact(n->raft, n->snapshot_index) != MOM_OK)
        log_warn("raft_compact(%" PRIu64 ") refused", n->snapshot_index);
    else if (n->release_ev)
        event_active(n->release_ev, EV_WRITE, 0);
    n->stats.snapshots++;
    histogram_observe(&n->stats.snapshot_duration, clock_mono_us() - n->snap_started_us);
    rc = wal_compact(n->wal, n->snapshot_index);
    if (rc != MOM_OK)
        log_warn("log compaction after snapshot %" PRIu64 " failed: %s", n->snapshot_index,
                 mom_strerror(rc));
    log_info("snapshot written at index %" PRIu64 "; log now %" PRIu64 " bytes", n->snapshot_index,
             wal_disk_bytes(n->wal));
    /* Entries applied while this child ran may call for the next snapshot
     * already; the pump checks only after a Ready, and an idle node has
     * none, so check here too. */
    if (!n->startup && node_snapshot_due(n))
        node_snapshot_take(n);
}

/* Snapshots are written by a forked child from its copy-on-write image of
 * the state (as redis BGSAVE does), so the loop never stalls on them. */
static void abandon_child(struct node *n);

void node_snapshot_take(struct node *n)
{
    if (n->snap_pid)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        log_error("snapshot: pipe failed: %s", strerror(errno));
        return;
    }
    char tmp[1200], final[1300];
    snapshot_tmp_path(n, tmp, sizeof tmp);
    n->snap_child_index = n->applied_index;
    if (!raft_term_at(n->raft, n->applied_index, &n->snap_child_term))
        n->snap_child_term = 0;
    snapshot_path(n, n->snap_child_index, n->snap_child_term, final, sizeof final);
    n->snap_started_us = clock_mono_us();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("snapshot: fork failed: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        /* All of the snapshot's file work happens here, off the loop: the
         * write, its fsync, the rename to its final name, the directory
         * fsync, then deleting the older snapshots in steps (an unlink of
         * a large file took ~10 ms on the loop; remove_in_steps says why
         * in steps). The parent only compacts. */
        close(fds[0]);
        int rc = write_snapshot_file(n, tmp);
        if (rc == MOM_OK && rename(tmp, final) != 0)
            rc = mom_err_from_errno(errno);
        if (rc == MOM_OK)
            rc = fs_fsync_dir(n->dir);
        if (rc == MOM_OK)
            scan_snapshots(n->dir, true, n->snap_child_index, true);
        _exit(rc == MOM_OK ? 0 : 1);
    }
    close(fds[1]);
    n->snap_pid = pid;
    n->snap_pipe = fds[0];
    n->snap_ev = event_new(n->base, fds[0], EV_READ | EV_PERSIST, on_snapshot_child, n);
    if (!n->snap_ev || event_add(n->snap_ev, NULL) != 0) {
        /* unwatched, it would never be reaped and no later snapshot would
         * start: kill, reap and forget it now */
        log_error("snapshot: cannot watch the child");
        abandon_child(n);
    }
}

/* Kills a running child (its result would be stale or unwanted), reaps it
 * and removes its temp file. */
static void abandon_child(struct node *n)
{
    if (n->snap_pid) {
        kill(n->snap_pid, SIGKILL);
        while (waitpid(n->snap_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        n->snap_pid = 0;
        char tmp[1200];
        snapshot_tmp_path(n, tmp, sizeof tmp);
        unlink(tmp);
    }
    if (n->snap_ev)
        event_free(n->snap_ev);
    n->snap_ev = NULL;
    if (n->snap_pipe >= 0)
        close(n->snap_pipe);
    n->snap_pipe = -1;
}

void node_snapshot_close(struct node *n)
{
    /* An unfinished snapshot is abandoned; the log still holds it all. */
    abandon_child(n);
    for (uint32_t i = 1; i <= n->n_members && i <= NODE_MAX_MEMBERS; i++)
        if (n->mem[i].n == n && n->mem[i].snap_fd >= 0)
            close(n->mem[i].snap_fd);
}

/* ---- loading and installing ---- */

int node_snapshot_load(struct node *n)
{
    char stale_tmp[1200];
    snapshot_tmp_path(n, stale_tmp, sizeof stale_tmp);
    unlink(stale_tmp); /* a snapshot interrupted by a crash */
    uint64_t idx = scan_snapshots(n->dir, false, 0, false);
    if (!idx)
        return MOM_OK;
    DIR *d = opendir(n->dir);
    if (!d)
        return MOM_ERR_IO;
    char path[1400] = "";
    uint64_t term = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t i, t;
        if (parse_snapshot_name(e->d_name, &i, &t) && i == idx) {
            snprintf(path, sizeof path, "%s/%s", n->dir, e->d_name);
            term = t;
        }
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
        log_error("snapshot %s is unreadable (%s)", path, mom_strerror(rc));
        return rc;
    }
    n->snapshot_index = n->applied_index = idx;
    n->snapshot_term = term;
    log_info("loaded snapshot %s", path);
    return MOM_OK;
}

int node_snapshot_install(struct node *n, uint64_t index, uint64_t term)
{
    char recv[1200], final[1300];
    snprintf(recv, sizeof recv, "%s/snapshot.recv", n->dir);
    snapshot_path(n, index, term, final, sizeof final);
    abandon_child(n); /* its result would be older */
    if (rename(recv, final) != 0)
        return mom_err_from_errno(errno);
    int rc = fs_fsync_dir(n->dir);
    if (rc != MOM_OK)
        return rc;
    FILE *f = fopen(final, "rb");
    if (!f)
        return mom_err_from_errno(errno);
    rc = n->cb.reset ? n->cb.reset(n->arg) : MOM_ERR_INVALID;
    if (rc == MOM_OK)
        rc = n->cb.snapshot_read(n->arg, f);
    fclose(f);
    if (rc != MOM_OK) {
        log_error("cannot load the snapshot received from the leader: %s", mom_strerror(rc));
        return rc;
    }
    rc = wal_reset(n->wal);
    if (rc != MOM_OK)
        return rc;
    node_fail_pending_from(n, 0, MOM_ERR_UNAVAILABLE);
    n->snapshot_index = n->applied_index = n->last_index = n->durable_index = index;
    n->snapshot_term = term;
    scan_snapshots(n->dir, true, index, false);
    log_info("installed snapshot %" PRIu64 " (term %" PRIu64 ") from the leader", index, term);
    return MOM_OK;
}

/* ---- the stream, leader side ---- */

/* A failed stream is reported after a second (on a tick), so that a member
 * that is down is not probed in a loop. */
static void stream_end(struct node *n, struct member *mb, bool ok)
{
    if (mb->snap_fd >= 0)
        close(mb->snap_fd);
    mb->snap_fd = -1;
    if (ok) {
        raft_report_snapshot(n->raft, mb->id, true);
        node_kick(n);
    } else {
        mb->snap_failed = true;
        mb->snap_retry_at = clock_mono_ms() + 1000;
    }
}

void node_snapshot_tick(struct node *n, uint64_t now)
{
    for (uint32_t i = 1; i <= n->n_members; i++) {
        struct member *mb = &n->mem[i];
        if (mb->snap_failed && now >= mb->snap_retry_at) {
            mb->snap_failed = false;
            raft_report_snapshot(n->raft, mb->id, false);
        }
    }
}

static void send_chunk(struct node *n, struct member *mb);

static void on_chunk_reply(int status, const char *message, const uint8_t *reply, size_t len,
                           void *arg)
{
    struct member *mb = arg;
    struct node *n = mb->n;
    if (mb->snap_fd < 0)
        return;
    if (status != GRPC_OK) {
        log_debug("snapshot transfer to %u failed: %s %s", mb->id, grpcmsg_status_name(status),
                  message ? message : "");
        stream_end(n, mb, false);
        return;
    }
    mb->last_contact = clock_mono_ms();
    if (mb->snap_off < mb->snap_size) {
        send_chunk(n, mb);
        return;
    }
    struct node_wire_msg d;
    bool ok = node_wire_decode_msg(reply, len, &d) == MOM_OK && d.m.type == RAFT_MSG_SNAPSHOT_RESP;
    if (ok) {
        if (d.m.success && d.m.match_index > mb->match)
            mb->match = d.m.match_index;
        (void)raft_step(n->raft, &d.m);
    }
    node_wire_msg_cleanup(&d);
    log_info("snapshot %" PRIu64 " sent to member %u (%" PRIu64 " bytes)", mb->snap_index, mb->id,
             mb->snap_size);
    stream_end(n, mb, ok);
}

static void send_chunk(struct node *n, struct member *mb)
{
    uint64_t left = mb->snap_size - mb->snap_off;
    size_t chunk = left > NODE_SNAP_CHUNK ? NODE_SNAP_CHUNK : (size_t)left;
    uint8_t *data = malloc(chunk ? chunk : 1);
    if (!data) {
        stream_end(n, mb, false);
        return;
    }
    ssize_t got = chunk ? pread(mb->snap_fd, data, chunk, (off_t)mb->snap_off) : 0;
    if (got != (ssize_t)chunk) {
        free(data);
        log_warn("cannot read snapshot %" PRIu64 ": %s", mb->snap_index, strerror(errno));
        stream_end(n, mb, false);
        return;
    }
    struct raft_msg m = {
        .type = RAFT_MSG_SNAPSHOT,
        .group_id = n->group_id,
        .from = n->id,
        .to = mb->id,
        .term = raft_term(n->raft),
        .incarnation = n->incarnation,
        .snapshot_index = mb->snap_index,
        .snapshot_term = mb->snap_term,
    };
    struct node_wire_chunk c = {.offset = mb->snap_off,
                                .data = data,
                                .len = chunk,
                                .done = mb->snap_off + chunk == mb->snap_size};
    uint8_t *buf = NULL;
    size_t blen = 0;
    int rc = node_wire_encode_msg(&m, &c, &buf, &blen);
    if (rc == MOM_OK)
        rc = peer_call(n->peer, mb->id, NODE_PATH_RAFT, buf, blen, n->tick_ms * 50, on_chunk_reply,
                       mb);
    free(buf);
    free(data);
    if (rc != MOM_OK) {
        stream_end(n, mb, false);
        return;
    }
    mb->snap_off += chunk;
}

void node_snapshot_send(struct node *n, struct member *mb)
{
    if (mb->snap_fd >= 0 || mb->snap_failed)
        return; /* one stream per member; a repeated SNAPSHOT is ignored */
    char path[1300];
    snapshot_path(n, n->snapshot_index, n->snapshot_term, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_warn("cannot open snapshot %s for member %u: %s", path, mb->id, strerror(errno));
        if (fd >= 0)
            close(fd);
        stream_end(n, mb, false);
        return;
    }
    mb->snap_fd = fd;
    mb->snap_off = 0;
    mb->snap_size = (uint64_t)st.st_size;
    mb->snap_index = n->snapshot_index;
    mb->snap_term = n->snapshot_term;
    log_debug("sending snapshot %" PRIu64 " (%" PRIu64 " bytes) to member %u", mb->snap_index,
              mb->snap_size, mb->id);
    send_chunk(n, mb);
}

/* ---- the stream, follower side ---- */

int node_snapshot_recv_chunk(struct node *n, uint64_t offset, const uint8_t *data, size_t len,
                             bool done)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/snapshot.recv", n->dir);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0);
    int fd = open(path, flags, 0600);
    if (fd < 0)
        return mom_err_from_errno(errno);
    struct stat st;
    int rc = fstat(fd, &st) == 0 && (uint64_t)st.st_size == offset ? MOM_OK : MOM_ERR_INVALID;
    if (rc == MOM_OK && len && pwrite(fd, data, len, (off_t)offset) != (ssize_t)len)
        rc = mom_err_from_errno(errno);
    if (rc == MOM_OK && done && n->sync != NODE_SYNC_NEVER && fsync(fd) != 0)
        rc = mom_err_from_errno(errno);
    close(fd);
    return rc;
}
