/* The segmented write-ahead log (docs/architecture.md). Owns the log directory, the fd
 * of the current (last) segment, an in-memory index of every record (file
 * offset per record, terms as runs) and the batch of appended, unwritten
 * records. Invariants: segments hold consecutive indexes with no gaps, each
 * named by its first index; only the last segment is ever written; the batch
 * continues the log at last written index + 1. Loop thread only.
 * SPDX-License-Identifier: MIT
 *
 * ON-DISK FORMAT (version 1). All integers little endian.
 *
 * Directory: one file per segment, named by the index of its first record
 * as 20 zero-padded decimal digits, e.g. "00000000000000000001.seg". Other
 * files are ignored. Segments sort by name into one gap-free sequence.
 *
 * Segment header, 32 bytes:
 *   0  8  magic "MOMWAL1\0"
 *   8  4  version (1)
 *  12  4  flags (0)
 *  16  8  first index (must equal the file name)
 *  24  4  CRC32C of bytes 0..23
 *  28  4  reserved (0)
 * Records follow back to back from offset 32:
 *   0  4  payload length N (at most WAL_MAX_PAYLOAD)
 *   4  4  CRC32C over bytes 0..3 (the length) and 8..24+N (term, index,
 *         payload), so a damaged length is caught like damaged data
 *   8  8  term
 *  16  8  index (first index of the segment + position in it)
 *  24  N  payload (a nanopb-encoded mom.v1.Command)
 * Example: term 2, index 7, payload "hi" is the 26 bytes
 *   02 00 00 00 | crc (4) | 02 00.. (8) | 07 00.. (8) | 68 69
 *
 * Preallocation: a new segment is extended with fallocate() to the rotation
 * size, so the file is followed by zeros after its last record and fdatasync
 * does not have to commit a new file size on every sync. Index 0 is never a
 * valid record, so a record header of 24 zero bytes (or fewer than 24 zero
 * bytes before the end of file) marks the end of data when everything after
 * it is zero. When a segment is rotated out it is truncated to its last
 * record first; a zero tail is nevertheless accepted in any segment.
 *
 * Writing: one pwrite() per batch at the end of the last record (the header
 * of a new segment goes in the same pwrite as its first batch). After a
 * short or failed write the file is truncated back to the last good size.
 * Rotation happens before a batch when the segment has reached the rotation
 * size: the old one is truncated to its data, fdatasync'd and closed; the new
 * one is created and the directory fsync'd, all before the batch is written.
 *
 * Recovery (wal_open): every segment is read in order and every record's
 * length, CRC and index checked. In the LAST segment, the first bad record
 * (short, impossible length, CRC mismatch, index not the expected next one,
 * non-zero bytes after the end marker) starts a torn tail: the file is cut
 * there with ftruncate and fdatasync'd, and a warning names the file and
 * offset; a last segment left without records (crash while creating it) is
 * deleted. The same damage in any EARLIER segment, a bad header, a header
 * whose index differs from the file name, or a gap between segments means
 * acknowledged data is lost: wal_open fails with MOM_ERR_CORRUPT and the
 * node either refuses to start or, in a cluster of three or more, moves its
 * storage aside and catches up from the others (node_repair.c). wal_replay trusts what wal_open
 * verified and does not recheck CRCs; wal_read rechecks the one record it reads. The per-segment
 * walk is wal_scan_segment, a pure function over the segment's bytes (unit
 * tested and fuzzed); recover() only maps files and acts on its verdicts.
 *
 * Deleting files: truncate_after deletes segments from the back and fsyncs
 * the directory before cutting the segment that keeps the index, so a crash
 * never leaves a gap; wal_reset fsyncs the directory; wal_compact does not
 * (a compacted segment that reappears after a crash is a harmless, longer
 * prefix of the same log and is compacted again).
 *
 * Compatibility: readers refuse other magics and versions. A future version
 * must bump the version field; a node that finds one it does not know stops.
 */
#include "replication/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/grow.h"
#include "common/le.h"
#include "common/log.h"

#define WAL_MAGIC "MOMWAL1\0"
#define WAL_VERSION 1u
#define WAL_HDR_SIZE WAL_SEGMENT_HDR
#define WAL_NAME_LEN 24u /* 20 digits + ".seg" */
#define WAL_DEFAULT_SEGMENT (64ull << 20)
#define WAL_MAX_SEGMENT (1ull << 30)
#define WAL_MAX_BATCH ((size_t)1 << 30)
#define WAL_BUF_KEEP ((size_t)4 << 20) /* shrink the batch buffer above this */

/* One segment file. offs[i] is the file offset of record first + i; offsets
 * are 32-bit because a segment never exceeds WAL_MAX_SEGMENT + WAL_MAX_BATCH
 * + header (< 4 GiB): 4 bytes of index per record. */
struct wal_seg {
    uint64_t first;
    uint64_t size; /* bytes of header and complete records */
    uint32_t *offs;
    size_t count;
    size_t cap;
};

/* Terms as runs: records from `first` on have `term`, until the next run. */
struct term_run {
    uint64_t first;
    uint64_t term;
};

struct wal {
    char *dir;
    int dir_fd;
    uint64_t seg_bytes;
    bool prealloc;
    int failed; /* sticky error once the on-disk tail is unknown */

    struct wal_seg *segs;
    size_t nsegs, segs_cap;
    int fd;              /* last segment, O_RDWR, or -1 when there is none */
    uint64_t fd_size;    /* its file size, preallocation included */
    int retired_fd;      /* previous last segment, kept open for a sync in flight */
    int read_fd;         /* cached read-only fd of an older segment */
    uint64_t read_first; /* the segment read_fd belongs to */

    struct term_run *runs;
    size_t nruns, runs_cap;

    /* The batch: buf[0..WAL_HDR_SIZE) is reserved for a segment header,
     * records follow; pend_offs[i] is record pend_first + i's offset from
     * buf + WAL_HDR_SIZE. */
    uint8_t *buf;
    size_t buf_len, buf_cap;
    uint32_t *pend_offs;
    size_t pend_count, pend_cap;
    uint64_t pend_first;
};

/* ---- the codec ---- */

static uint32_t record_crc(const uint8_t *rec, size_t payload_len)
{
    uint32_t c = crc32c_update(0, rec, 4);
    return crc32c_update(c, rec + 8, 16 + payload_len);
}

size_t wal_record_encode(uint8_t *out, uint64_t term, uint64_t index, const uint8_t *data,
                         size_t len)
{
    le_put32(out, (uint32_t)len);
    le_put64(out + 8, term);
    le_put64(out + 16, index);
    if (len > 0)
        memcpy(out + WAL_RECORD_HDR, data, len);
    le_put32(out + 4, record_crc(out, len));
    return WAL_RECORD_HDR + len;
}

int wal_record_decode(const uint8_t *buf, size_t len, struct wal_record *out, size_t *consumed)
{
    if (len < WAL_RECORD_HDR)
        return MOM_ERR_NEED_MORE;
    uint32_t plen = le_get32(buf);
    if (plen > WAL_MAX_PAYLOAD)
        return MOM_ERR_CORRUPT;
    if (len - WAL_RECORD_HDR < plen)
        return MOM_ERR_NEED_MORE;
    if (record_crc(buf, plen) != le_get32(buf + 4))
        return MOM_ERR_CORRUPT;
    out->term = le_get64(buf + 8);
    out->index = le_get64(buf + 16);
    out->data = buf + WAL_RECORD_HDR;
    out->len = plen;
    *consumed = WAL_RECORD_HDR + plen;
    return MOM_OK;
}

void wal_segment_header_encode(uint8_t *out, uint64_t first)
{
    memcpy(out, WAL_MAGIC, 8);
    le_put32(out + 8, WAL_VERSION);
    le_put32(out + 12, 0);
    le_put64(out + 16, first);
    le_put32(out + 24, crc32c(out, 24));
    le_put32(out + 28, 0);
}

/* Returns MOM_OK with *first set, or MOM_ERR_CORRUPT. */
static int header_decode(const uint8_t *p, uint64_t *first)
{
    if (memcmp(p, WAL_MAGIC, 8) != 0 || le_get32(p + 8) != WAL_VERSION ||
        le_get32(p + 24) != crc32c(p, 24))
        return MOM_ERR_CORRUPT;
    *first = le_get64(p + 16);
    return MOM_OK;
}

/* ---- small utilities ---- */

static void seg_name(char out[WAL_NAME_LEN + 1], uint64_t first)
{
    snprintf(out, WAL_NAME_LEN + 1, "%020" PRIu64 ".seg", first);
}

static int parse_seg_name(const char *name, uint64_t *first)
{
    if (strlen(name) != WAL_NAME_LEN || strcmp(name + 20, ".seg") != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *first = v;
    return 0;
}

static int errno_code(void)
{
    return mom_err_from_errno(errno);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Keeps fd open until the next retirement: a sync submitted on it before a
 * rotation may still be running on the helper thread. */
static void retire_fd(struct wal *w, int fd)
{
    close_fd(&w->retired_fd);
    w->retired_fd = fd;
}

static int fsync_dir(struct wal *w)
{
    if (fsync(w->dir_fd) != 0) {
        int rc = errno_code();
        log_error("wal: fsync of directory %s failed: %s", w->dir, strerror(errno));
        return rc;
    }
    return MOM_OK;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno_code();
        }
        if (k == 0)
            return MOM_ERR_IO;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return MOM_OK;
}

static struct wal_seg *last_seg(const struct wal *w)
{
    return w->nsegs ? &w->segs[w->nsegs - 1] : NULL;
}

/* Last index on disk, 0 when there are no records on disk. */
static uint64_t disk_last(const struct wal *w)
{
    const struct wal_seg *s = last_seg(w);
    if (s == NULL || (s->count == 0 && w->nsegs == 1))
        return 0;
    return s->first + s->count - 1;
}

/* Index of the segment holding index, or -1. */
static long find_seg(const struct wal *w, uint64_t index)
{
    size_t lo = 0, hi = w->nsegs;
    while (lo < hi) { /* first segment with first > index */
        size_t mid = lo + (hi - lo) / 2;
        if (w->segs[mid].first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const struct wal_seg *s = &w->segs[lo - 1];
    if (index - s->first >= s->count)
        return -1;
    return (long)(lo - 1);
}

static int runs_push(struct wal *w, uint64_t index, uint64_t term)
{
    if (w->nruns > 0 && w->runs[w->nruns - 1].term == term)
        return MOM_OK;
    struct term_run *runs = grow_array(w->runs, &w->runs_cap, w->nruns + 1, sizeof *runs, 16);
    if (!runs)
        return MOM_ERR_NOMEM;
    w->runs = runs;
    w->runs[w->nruns].first = index;
    w->runs[w->nruns].term = term;
    w->nruns++;
    return MOM_OK;
}

/* Drops runs that start after index. */
static void runs_truncate_after(struct wal *w, uint64_t index)
{
    while (w->nruns > 0 && w->runs[w->nruns - 1].first > index)
        w->nruns--;
}

/* Drops runs that end before index. */
static void runs_drop_before(struct wal *w, uint64_t index)
{
    size_t k = 0;
    while (k + 1 < w->nruns && w->runs[k + 1].first <= index)
        k++;
    if (k > 0) {
        memmove(w->runs, w->runs + k, (w->nruns - k) * sizeof *w->runs);
        w->nruns -= k;
    }
}

static void drop_pending(struct wal *w)
{
    if (w->pend_count > 0)
        runs_truncate_after(w, w->pend_first - 1);
    w->pend_count = 0;
    w->buf_len = WAL_HDR_SIZE;
    if (w->buf_cap > WAL_BUF_KEEP) {
        free(w->buf);
        w->buf = NULL;
        w->buf_cap = 0;
    }
}

static void seg_free(struct wal_seg *s)
{
    free(s->offs);
    s->offs = NULL;
}

static int seg_push_off(struct wal_seg *s, uint64_t off)
{
    uint32_t *offs = grow_array(s->offs, &s->cap, s->count + 1, sizeof *offs, 1024);
    if (!offs)
        return MOM_ERR_NOMEM;
    s->offs = offs;
    s->offs[s->count++] = (uint32_t)off;
    return MOM_OK;
}

static void seg_shrink(struct wal_seg *s)
{
    if (s->count > 0 && s->count < s->cap) {
        uint32_t *p = realloc(s->offs, s->count * sizeof *s->offs);
        if (p != NULL) {
            s->offs = p;
            s->cap = s->count;
        }
    }
}

static void maybe_prealloc(struct wal *w)
{
    if (!w->prealloc || w->fd < 0 || w->fd_size >= w->seg_bytes)
        return;
    /* Best effort: without it the log still works, syncs just cost more. */
    if (fallocate(w->fd, 0, 0, (off_t)w->seg_bytes) == 0)
        w->fd_size = w->seg_bytes;
}

/* ---- recovery ---- */

/* Offset just past the last non-zero byte of map[from..size), or from when
 * it is all zero. With the file's fd, skips holes and unwritten extents with
 * SEEK_DATA/HOLE; with fd -1, reads every byte. */
static uint64_t nonzero_end(int fd, const uint8_t *map, uint64_t from, uint64_t size)
{
    uint64_t end = from;
    uint64_t pos = from;
    if (fd < 0) {
        for (uint64_t i = size; i > from; i--)
            if (map[i - 1] != 0)
                return i;
        return from;
    }
    while (pos < size) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0) {
            if (errno == ENXIO)
                break;      /* only a hole remains */
            d = (off_t)pos; /* no SEEK_DATA support: treat the rest as data */
        }
        off_t h = lseek(fd, d, SEEK_HOLE);
        uint64_t dstart = (uint64_t)d < pos ? pos : (uint64_t)d;
        uint64_t dend = h < 0 || (uint64_t)h > size ? size : (uint64_t)h;
        if (dstart >= size)
            break;
        if (dend <= dstart)
            dend = size;
        for (uint64_t i = dend; i > dstart; i--) {
            if (map[i - 1] != 0) {
                end = i;
                break;
            }
        }
        pos = dend;
    }
    return end;
}

/* Scanning a segment's bytes (pure: see wal.h). */
int wal_scan_segment(const uint8_t *map, uint64_t size, uint64_t first, int fd, wal_scan_fn fn,
                     void *arg, struct wal_scan *res)
{
    memset(res, 0, sizeof *res);
    uint64_t hdr_first;
    if (size < WAL_HDR_SIZE || header_decode(map, &hdr_first) != MOM_OK) {
        res->damaged_end = nonzero_end(fd, map, 0, size);
        res->status = res->damaged_end == 0 ? WAL_SCAN_NO_HEADER : WAL_SCAN_BAD_HEADER;
        snprintf(res->why, sizeof res->why, "%s",
                 size < WAL_HDR_SIZE ? "short segment header" : "bad segment header");
        return MOM_OK;
    }
    if (hdr_first != first) {
        res->status = WAL_SCAN_WRONG_FIRST;
        snprintf(res->why, sizeof res->why, "header says first index %" PRIu64, hdr_first);
        return MOM_OK;
    }
    uint64_t off = WAL_HDR_SIZE;
    uint64_t expect = first;
    for (;;) {
        if (off == size)
            break;
        uint64_t rem = size - off;
        static const uint8_t zero[WAL_RECORD_HDR];
        size_t cmp = rem < WAL_RECORD_HDR ? (size_t)rem : WAL_RECORD_HDR;
        if (memcmp(map + off, zero, cmp) == 0) {
            /* End-of-data marker: valid only when nothing but zeros follows. */
            uint64_t nz = nonzero_end(fd, map, off, size);
            if (nz == off)
                break;
            res->status = WAL_SCAN_DAMAGED;
            res->damaged_end = nz;
            snprintf(res->why, sizeof res->why, "data after the end-of-log marker");
            break;
        }
        struct wal_record rec;
        size_t used = 0;
        int drc =
            wal_record_decode(map + off, (size_t)(rem > SIZE_MAX ? SIZE_MAX : rem), &rec, &used);
        if (drc == MOM_OK && rec.index != expect) {
            snprintf(res->why, sizeof res->why, "index %" PRIu64 " where %" PRIu64 " was expected",
                     rec.index, expect);
            drc = MOM_ERR_INVALID;
        } else if (drc == MOM_ERR_NEED_MORE) {
            snprintf(res->why, sizeof res->why, "short record (%" PRIu64 " bytes left)", rem);
        } else if (drc == MOM_ERR_CORRUPT) {
            snprintf(res->why, sizeof res->why, "bad length or checksum");
        }
        if (drc != MOM_OK) {
            res->status = WAL_SCAN_DAMAGED;
            res->damaged_end = nonzero_end(fd, map, off, size);
            if (res->damaged_end == off) /* cannot happen: the record was not zero */
                res->damaged_end = size;
            break;
        }
        if (fn) {
            int rc = fn(arg, off, &rec);
            if (rc != MOM_OK) {
                res->good = off;
                return rc;
            }
        }
        off += used;
        expect++;
        res->records++;
    }
    res->good = off;
    return MOM_OK;
}

/* Recovery's per-record step: the offset into the segment's index, the term
 * into the runs. */
struct scan_ctx {
    struct wal *w;
    struct wal_seg *seg;
};

static int scan_note(void *arg, uint64_t off, const struct wal_record *rec)
{
    struct scan_ctx *c = arg;
    int rc = seg_push_off(c->seg, off);
    return rc == MOM_OK ? runs_push(c->w, rec->index, rec->term) : rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment first indexes in ascending order. */
static int list_segments(struct wal *w, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int dfd = dup(w->dir_fd);
    if (dfd < 0)
        return errno_code();
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return errno_code();
    }
    rewinddir(d);
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = MOM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (parse_seg_name(e->d_name, &first) != 0)
            continue;
        uint64_t *nv = grow_array(v, &cap, cnt + 1, sizeof *nv, 16);
        if (!nv) {
            rc = MOM_ERR_NOMEM;
            break;
        }
        v = nv;
        v[cnt++] = first;
    }
    closedir(d);
    if (rc != MOM_OK) {
        free(v);
        return rc;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, cmp_u64);
    *out = v;
    *n = cnt;
    return MOM_OK;
}

static int recover(struct wal *w, struct wal_open_info *info)
{
    uint64_t *names = NULL;
    size_t n = 0;
    int rc = list_segments(w, &names, &n);
    if (rc != MOM_OK) {
        log_error("wal: cannot list %s: %s", w->dir, mom_strerror(rc));
        return rc;
    }
    struct wal_scan last_res;
    memset(&last_res, 0, sizeof last_res);
    for (size_t i = 0; i < n && rc == MOM_OK; i++) {
        bool is_last = i + 1 == n;
        char name[WAL_NAME_LEN + 1];
        seg_name(name, names[i]);
        int fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = errno_code();
            log_error("wal: cannot open %s/%s: %s", w->dir, name, strerror(errno));
            if (fd >= 0)
                close(fd);
            break;
        }
        uint64_t size = (uint64_t)st.st_size;
        const uint8_t *map = NULL;
        if (size > 0) {
            void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) {
                rc = errno_code();
                log_error("wal: cannot map %s/%s: %s", w->dir, name, strerror(errno));
                close(fd);
                break;
            }
            (void)madvise(m, (size_t)size, MADV_SEQUENTIAL);
            map = m;
        }
        struct wal_seg seg = {.first = names[i]};
        struct wal_scan res;
        static const uint8_t empty[1];
        struct scan_ctx sc = {w, &seg};
        rc = wal_scan_segment(map ? map : empty, size, seg.first, fd, scan_note, &sc, &res);
        seg.size = res.good;
        if (map != NULL)
            munmap((void *)(uintptr_t)map, (size_t)size);
        close(fd);
        if (rc != MOM_OK) {
            seg_free(&seg);
            break;
        }
        const struct wal_seg *prev = last_seg(w);
        bool gap = prev != NULL && seg.first != prev->first + prev->count;
        if (!is_last) {
            if (res.status != WAL_SCAN_CLEAN || gap) {
                if (gap)
                    log_error("wal: %s/%s does not continue the previous segment, which ends"
                              " at %" PRIu64,
                              w->dir, name, prev->first + prev->count - 1);
                else
                    log_error("wal: %s/%s: damaged at offset %" PRIu64
                              " (%s) and it is not the last segment",
                              w->dir, name, res.good, res.why);
                seg_free(&seg);
                rc = MOM_ERR_CORRUPT;
                break;
            }
            seg_shrink(&seg);
        } else {
            if (res.status == WAL_SCAN_WRONG_FIRST) {
                log_error("wal: %s/%s: %s", w->dir, name, res.why);
                seg_free(&seg);
                rc = MOM_ERR_CORRUPT;
                break;
            }
            if (seg.count == 0) {
                /* Crash while the segment was being created or first written:
                 * nothing in it was ever synced. */
                uint64_t bad = res.damaged_end > res.good ? res.damaged_end - res.good : 0;
                if (res.status == WAL_SCAN_BAD_HEADER)
                    bad = res.damaged_end;
                if (bad > 0) {
                    log_warn("wal: %s/%s: no complete record (%s at offset %" PRIu64
                             "); removing the segment, %" PRIu64 " damaged bytes",
                             w->dir, name, res.why, res.good, bad);
                    info->truncated_bytes += bad;
                } else {
                    log_info("wal: %s/%s holds no records; removing it", w->dir, name);
                }
                seg_free(&seg);
                if (unlinkat(w->dir_fd, name, 0) != 0) {
                    rc = errno_code();
                    log_error("wal: cannot remove %s/%s: %s", w->dir, name, strerror(errno));
                    break;
                }
                rc = fsync_dir(w);
                break;
            }
            if (gap) {
                log_error("wal: %s/%s does not continue the previous segment, which ends"
                          " at %" PRIu64,
                          w->dir, name, prev->first + prev->count - 1);
                seg_free(&seg);
                rc = MOM_ERR_CORRUPT;
                break;
            }
            last_res = res;
        }
        struct wal_seg *segs = grow_array(w->segs, &w->segs_cap, w->nsegs + 1, sizeof *segs, 8);
        if (!segs) {
            seg_free(&seg);
            rc = MOM_ERR_NOMEM;
            break;
        }
        w->segs = segs;
        w->segs[w->nsegs++] = seg;
    }
    free(names);
    if (rc != MOM_OK)
        return rc;

    struct wal_seg *cur = last_seg(w);
    if (cur == NULL)
        return MOM_OK;
    char name[WAL_NAME_LEN + 1];
    seg_name(name, cur->first);
    w->fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (w->fd < 0 || fstat(w->fd, &st) != 0) {
        rc = errno_code();
        log_error("wal: cannot open %s/%s for writing: %s", w->dir, name, strerror(errno));
        return rc;
    }
    w->fd_size = (uint64_t)st.st_size;
    if (last_res.status == WAL_SCAN_DAMAGED) {
        uint64_t bad = last_res.damaged_end - last_res.good;
        log_warn("wal: %s/%s: torn tail at offset %" PRIu64 " (%s); cutting %" PRIu64
                 " damaged bytes, log now ends at index %" PRIu64,
                 w->dir, name, last_res.good, last_res.why, bad, cur->first + cur->count - 1);
        info->truncated_bytes += bad;
        if (ftruncate(w->fd, (off_t)last_res.good) != 0 || fdatasync(w->fd) != 0) {
            rc = errno_code();
            log_error("wal: cannot cut %s/%s: %s", w->dir, name, strerror(errno));
            return rc;
        }
        w->fd_size = last_res.good;
        maybe_prealloc(w);
    }
    return MOM_OK;
}

/* ---- open / close ---- */

int wal_open(const char *dir, const struct wal_options *opt, struct wal **out,
             struct wal_open_info *info)
{
    struct wal_open_info scratch;
    if (info == NULL)
        info = &scratch;
    memset(info, 0, sizeof *info);
    *out = NULL;

    struct wal *w = calloc(1, sizeof *w);
    if (w == NULL)
        return MOM_ERR_NOMEM;
    w->dir_fd = w->fd = w->retired_fd = w->read_fd = -1;
    w->seg_bytes = opt && opt->segment_bytes ? opt->segment_bytes : WAL_DEFAULT_SEGMENT;
    if (w->seg_bytes > WAL_MAX_SEGMENT)
        w->seg_bytes = WAL_MAX_SEGMENT;
    w->prealloc = !(opt && opt->no_prealloc);
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        free(w);
        return MOM_ERR_NOMEM;
    }
    w->buf_len = WAL_HDR_SIZE;

    int rc = MOM_OK;
    if (mkdir(dir, 0755) == 0) {
        /* Make the new directory's entry durable in its parent. */
        size_t dl = strlen(dir);
        char *parent = malloc(dl + 4);
        if (parent != NULL) {
            memcpy(parent, dir, dl);
            memcpy(parent + dl, "/..", 4);
            int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (pfd >= 0) {
                (void)fsync(pfd);
                close(pfd);
            }
            free(parent);
        }
    } else if (errno != EEXIST) {
        rc = errno_code();
        log_error("wal: cannot create %s: %s", dir, strerror(errno));
    }
    if (rc == MOM_OK) {
        w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->dir_fd < 0) {
            rc = errno_code();
            log_error("wal: cannot open %s: %s", dir, strerror(errno));
        }
    }
    if (rc == MOM_OK)
        rc = recover(w, info);
    if (rc != MOM_OK) {
        wal_close(w);
        return rc;
    }
    info->first_index = wal_first_index(w);
    info->last_index = wal_last_index(w);
    info->last_term = wal_last_term(w);
    log_info("wal: opened %s: %zu segments, indexes %" PRIu64 "..%" PRIu64 ", %" PRIu64 " bytes",
             dir, w->nsegs, info->first_index, info->last_index, wal_disk_bytes(w));
    *out = w;
    return MOM_OK;
}

void wal_close(struct wal *w)
{
    if (w == NULL)
        return;
    close_fd(&w->fd);
    close_fd(&w->retired_fd);
    close_fd(&w->read_fd);
    close_fd(&w->dir_fd);
    for (size_t i = 0; i < w->nsegs; i++)
        seg_free(&w->segs[i]);
    free(w->segs);
    free(w->runs);
    free(w->buf);
    free(w->pend_offs);
    free(w->dir);
    free(w);
}

/* ---- appending and writing ---- */

int wal_append(struct wal *w, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    uint64_t last = wal_last_index(w);
    if (index == 0 || (last != 0 && index != last + 1) || len > WAL_MAX_PAYLOAD)
        return MOM_ERR_INVALID;
    size_t rec = WAL_RECORD_HDR + len;
    if (w->buf_len - WAL_HDR_SIZE + rec > WAL_MAX_BATCH)
        return MOM_ERR_NOMEM; /* an unwritten batch of over 1 GiB */
    int rc = MOM_ERR_NOMEM;
    uint8_t *buf = grow_array(w->buf, &w->buf_cap, w->buf_len + rec, 1, 64 * 1024);
    if (buf) {
        w->buf = buf;
        uint32_t *po = grow_array(w->pend_offs, &w->pend_cap, w->pend_count + 1, sizeof *po, 256);
        if (po) {
            w->pend_offs = po;
            rc = MOM_OK;
        }
    }
    if (rc == MOM_OK)
        rc = runs_push(w, index, term);
    if (rc != MOM_OK)
        return rc;
    if (w->pend_count == 0)
        w->pend_first = index;
    w->pend_offs[w->pend_count++] = (uint32_t)(w->buf_len - WAL_HDR_SIZE);
    w->buf_len += wal_record_encode(w->buf + w->buf_len, term, index, data, len);
    return MOM_OK;
}

/* Truncates the last segment to its data, syncs it and retires its fd. */
static int finish_segment(struct wal *w)
{
    struct wal_seg *cur = last_seg(w);
    if (w->fd_size > cur->size && ftruncate(w->fd, (off_t)cur->size) != 0)
        return errno_code();
    if (fdatasync(w->fd) != 0)
        return errno_code();
    seg_shrink(cur);
    retire_fd(w, w->fd);
    w->fd = -1;
    w->fd_size = 0;
    return MOM_OK;
}

static int create_segment(struct wal *w, uint64_t first)
{
    struct wal_seg *segs = grow_array(w->segs, &w->segs_cap, w->nsegs + 1, sizeof *segs, 8);
    if (!segs)
        return MOM_ERR_NOMEM;
    w->segs = segs;
    char name[WAL_NAME_LEN + 1];
    seg_name(name, first);
    int fd = openat(w->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = errno_code();
        log_error("wal: cannot create %s/%s: %s", w->dir, name, strerror(errno));
        return rc;
    }
    int rc = fsync_dir(w);
    if (rc != MOM_OK) {
        close(fd);
        (void)unlinkat(w->dir_fd, name, 0);
        return rc;
    }
    w->fd = fd;
    w->fd_size = 0;
    maybe_prealloc(w);
    w->segs[w->nsegs++] = (struct wal_seg){.first = first};
    return MOM_OK;
}

/* Gives the (still empty) last segment the name of a new first index. */
static int rename_empty_segment(struct wal *w, uint64_t first)
{
    struct wal_seg *cur = last_seg(w);
    char from[WAL_NAME_LEN + 1], to[WAL_NAME_LEN + 1];
    seg_name(from, cur->first);
    seg_name(to, first);
    if (renameat(w->dir_fd, from, w->dir_fd, to) != 0) {
        int rc = errno_code();
        log_error("wal: cannot rename %s/%s: %s", w->dir, from, strerror(errno));
        return rc;
    }
    cur->first = first;
    return fsync_dir(w);
}

int wal_write(struct wal *w)
{
    if (w->pend_count == 0)
        return w->failed;
    if (w->failed) {
        drop_pending(w);
        return w->failed;
    }
    size_t body = w->buf_len - WAL_HDR_SIZE;
    struct wal_seg *cur = last_seg(w);
    int rc = MOM_OK;
    if (cur != NULL && cur->count > 0 &&
        (cur->size >= w->seg_bytes || cur->size + body > UINT32_MAX)) {
        rc = finish_segment(w);
        if (rc != MOM_OK) {
            /* The previous segment may not be durable: stop writing. */
            char name[WAL_NAME_LEN + 1];
            seg_name(name, cur->first);
            log_error("wal: cannot finish %s/%s: %s", w->dir, name, mom_strerror(rc));
            w->failed = rc;
            drop_pending(w);
            return rc;
        }
        cur = NULL;
    }
    /* Reserve index space first so nothing can fail after the write. */
    if (cur == NULL) {
        rc = create_segment(w, w->pend_first);
        if (rc != MOM_OK) {
            drop_pending(w);
            return rc;
        }
        cur = last_seg(w);
    } else if (cur->count == 0 && cur->first != w->pend_first) {
        rc = rename_empty_segment(w, w->pend_first);
        if (rc != MOM_OK) {
            drop_pending(w);
            return rc;
        }
    }
    uint32_t *offs =
        grow_array(cur->offs, &cur->cap, cur->count + w->pend_count, sizeof *offs, 1024);
    if (!offs)
        return MOM_ERR_NOMEM; /* the batch stays buffered */
    cur->offs = offs;

    const uint8_t *src = w->buf + WAL_HDR_SIZE;
    size_t n = body;
    uint64_t at = cur->size;
    if (cur->size == 0) { /* new segment: header and batch in one write */
        wal_segment_header_encode(w->buf, cur->first);
        src = w->buf;
        n += WAL_HDR_SIZE;
    }
    rc = pwrite_all(w->fd, src, n, at);
    if (rc != MOM_OK) {
        char name[WAL_NAME_LEN + 1];
        seg_name(name, cur->first);
        int err = errno;
        if (ftruncate(w->fd, (off_t)cur->size) != 0) {
            log_error("wal: write to %s/%s failed (%s) and it cannot be truncated back to %" PRIu64
                      " bytes: %s; refusing further writes",
                      w->dir, name, strerror(err), cur->size, strerror(errno));
            w->failed = MOM_ERR_IO;
        } else {
            w->fd_size = cur->size;
            maybe_prealloc(w);
        }
        drop_pending(w);
        return rc;
    }
    uint64_t base = cur->size == 0 ? WAL_HDR_SIZE : cur->size;
    for (size_t i = 0; i < w->pend_count; i++)
        cur->offs[cur->count + i] = (uint32_t)(base + w->pend_offs[i]);
    cur->count += w->pend_count;
    cur->size = at + n;
    if (cur->size > w->fd_size)
        w->fd_size = cur->size;
    w->pend_count = 0;
    w->buf_len = WAL_HDR_SIZE;
    if (w->buf_cap > WAL_BUF_KEEP) {
        free(w->buf);
        w->buf = NULL;
        w->buf_cap = 0;
    }
    return MOM_OK;
}

int wal_sync_fd(const struct wal *w)
{
    return w->fd >= 0 ? w->fd : w->dir_fd;
}

size_t wal_pending_bytes(const struct wal *w)
{
    return w->pend_count ? w->buf_len - WAL_HDR_SIZE : 0;
}

/* ---- cutting the log ---- */

/* Removes the last segment's file and entry (its fd is retired). */
static int delete_last_segment(struct wal *w)
{
    struct wal_seg *cur = last_seg(w);
    char name[WAL_NAME_LEN + 1];
    seg_name(name, cur->first);
    if (unlinkat(w->dir_fd, name, 0) != 0 && errno != ENOENT) {
        int rc = errno_code();
        log_error("wal: cannot remove %s/%s: %s", w->dir, name, strerror(errno));
        return rc;
    }
    if (w->read_fd >= 0 && w->read_first == cur->first)
        close_fd(&w->read_fd);
    if (w->fd >= 0) {
        retire_fd(w, w->fd);
        w->fd = -1;
        w->fd_size = 0;
    }
    seg_free(cur);
    w->nsegs--;
    return MOM_OK;
}

int wal_truncate_after(struct wal *w, uint64_t index)
{
    if (index >= wal_last_index(w))
        return MOM_OK;
    uint64_t dlast = disk_last(w);
    if (w->pend_count > 0 && index >= w->pend_first - 1 && index >= dlast) {
        /* Only buffered records go. */
        size_t keep = (size_t)(index - (w->pend_first - 1));
        w->buf_len = WAL_HDR_SIZE + (keep < w->pend_count ? w->pend_offs[keep] : 0);
        w->pend_count = keep;
        if (keep == 0)
            w->buf_len = WAL_HDR_SIZE;
        runs_truncate_after(w, index);
        return MOM_OK;
    }
    drop_pending(w);
    if (w->failed)
        return w->failed;
    bool deleted = false;
    int rc = MOM_OK;
    while (w->nsegs > 0 && last_seg(w)->first > index) {
        rc = delete_last_segment(w);
        if (rc != MOM_OK)
            break;
        deleted = true;
    }
    if (deleted) {
        int frc = fsync_dir(w); /* before cutting the survivor: never a gap */
        if (rc == MOM_OK)
            rc = frc;
    }
    runs_truncate_after(w, index);
    if (rc != MOM_OK) {
        w->failed = rc;
        return rc;
    }
    struct wal_seg *cur = last_seg(w);
    if (cur == NULL) {
        w->nruns = 0;
        return MOM_OK;
    }
    char name[WAL_NAME_LEN + 1];
    seg_name(name, cur->first);
    if (w->fd < 0) {
        w->fd = openat(w->dir_fd, name, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (w->fd < 0 || fstat(w->fd, &st) != 0) {
            rc = errno_code();
            log_error("wal: cannot open %s/%s: %s", w->dir, name, strerror(errno));
            close_fd(&w->fd);
            w->failed = rc;
            return rc;
        }
        w->fd_size = (uint64_t)st.st_size;
    }
    size_t keep = (size_t)(index - cur->first + 1);
    if (keep < cur->count) {
        uint64_t size = cur->offs[keep];
        if (ftruncate(w->fd, (off_t)size) != 0) {
            rc = errno_code();
            log_error("wal: cannot truncate %s/%s to %" PRIu64 " bytes: %s", w->dir, name, size,
                      strerror(errno));
            w->failed = rc;
            return rc;
        }
        cur->count = keep;
        cur->size = size;
        w->fd_size = size;
        maybe_prealloc(w);
    }
    return MOM_OK;
}

int wal_compact(struct wal *w, uint64_t index)
{
    /* Never the segment holding the last index (nor an empty last one). */
    size_t keep_from = w->nsegs;
    if (keep_from > 0)
        keep_from--;
    if (keep_from > 0 && w->segs[keep_from].count == 0)
        keep_from--;
    size_t k = 0;
    int rc = MOM_OK;
    while (k < keep_from && w->segs[k + 1].first <= index + 1) {
        char name[WAL_NAME_LEN + 1];
        seg_name(name, w->segs[k].first);
        if (unlinkat(w->dir_fd, name, 0) != 0 && errno != ENOENT) {
            rc = errno_code();
            log_error("wal: cannot remove %s/%s: %s", w->dir, name, strerror(errno));
            break;
        }
        if (w->read_fd >= 0 && w->read_first == w->segs[k].first)
            close_fd(&w->read_fd);
        seg_free(&w->segs[k]);
        k++;
    }
    if (k > 0) {
        memmove(w->segs, w->segs + k, (w->nsegs - k) * sizeof *w->segs);
        w->nsegs -= k;
        runs_drop_before(w, w->segs[0].first);
    }
    return rc;
}

int wal_reset(struct wal *w)
{
    drop_pending(w);
    int rc = MOM_OK;
    while (w->nsegs > 0 && rc == MOM_OK)
        rc = delete_last_segment(w);
    if (rc == MOM_OK)
        rc = fsync_dir(w);
    if (rc != MOM_OK) {
        w->failed = rc;
        return rc;
    }
    w->nruns = 0;
    w->failed = MOM_OK; /* whatever was unknown about the old tail is gone */
    return MOM_OK;
}

/* ---- reading ---- */

uint64_t wal_first_index(const struct wal *w)
{
    if (w->nsegs > 0 && (w->segs[0].count > 0 || w->nsegs > 1))
        return w->segs[0].first;
    return w->pend_count ? w->pend_first : 0;
}

uint64_t wal_last_index(const struct wal *w)
{
    if (w->pend_count)
        return w->pend_first + w->pend_count - 1;
    return disk_last(w);
}

uint64_t wal_last_term(const struct wal *w)
{
    return wal_last_index(w) == 0 || w->nruns == 0 ? 0 : w->runs[w->nruns - 1].term;
}

uint64_t wal_term_at(const struct wal *w, uint64_t index)
{
    uint64_t first = wal_first_index(w);
    if (first == 0 || index < first || index > wal_last_index(w))
        return 0;
    if (w->runs[w->nruns - 1].first <= index)
        return w->runs[w->nruns - 1].term;
    size_t lo = 0, hi = w->nruns;
    while (lo < hi) { /* first run starting after index */
        size_t mid = lo + (hi - lo) / 2;
        if (w->runs[mid].first <= index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : w->runs[lo - 1].term;
}

static int read_fd_for(struct wal *w, size_t si)
{
    if (si + 1 == w->nsegs && w->fd >= 0)
        return w->fd;
    if (w->read_fd >= 0 && w->read_first == w->segs[si].first)
        return w->read_fd;
    close_fd(&w->read_fd);
    char name[WAL_NAME_LEN + 1];
    seg_name(name, w->segs[si].first);
    w->read_fd = openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (w->read_fd >= 0)
        w->read_first = w->segs[si].first;
    else
        log_error("wal: cannot open %s/%s: %s", w->dir, name, strerror(errno));
    return w->read_fd;
}

int wal_read(struct wal *w, uint64_t index, uint64_t *term, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (w->pend_count > 0 && index >= w->pend_first && index - w->pend_first < w->pend_count) {
        const uint8_t *rec = w->buf + WAL_HDR_SIZE + w->pend_offs[index - w->pend_first];
        size_t plen = le_get32(rec);
        uint8_t *copy = malloc(plen ? plen : 1);
        if (copy == NULL)
            return MOM_ERR_NOMEM;
        memcpy(copy, rec + WAL_RECORD_HDR, plen);
        *term = le_get64(rec + 8);
        *data = copy;
        *len = plen;
        return MOM_OK;
    }
    long si = find_seg(w, index);
    if (si < 0)
        return MOM_ERR_NOTFOUND;
    const struct wal_seg *s = &w->segs[si];
    size_t j = (size_t)(index - s->first);
    uint64_t off = s->offs[j];
    uint64_t end = j + 1 < s->count ? s->offs[j + 1] : s->size;
    if (end - off < WAL_RECORD_HDR || end - off - WAL_RECORD_HDR > WAL_MAX_PAYLOAD)
        return MOM_ERR_IO;
    size_t plen = (size_t)(end - off - WAL_RECORD_HDR);
    int fd = read_fd_for(w, (size_t)si);
    if (fd < 0)
        return MOM_ERR_IO;
    uint8_t *rec = malloc(WAL_RECORD_HDR + plen);
    if (rec == NULL)
        return MOM_ERR_NOMEM;
    size_t want = WAL_RECORD_HDR + plen, got = 0;
    while (got < want) {
        ssize_t k = pread(fd, rec + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    struct wal_record r;
    size_t used;
    if (got < want || wal_record_decode(rec, want, &r, &used) != MOM_OK || used != want ||
        r.index != index) {
        char name[WAL_NAME_LEN + 1];
        seg_name(name, s->first);
        log_error("wal: %s/%s: record %" PRIu64 " at offset %" PRIu64 " unreadable or corrupt",
                  w->dir, name, index, off);
        free(rec);
        return MOM_ERR_IO;
    }
    memmove(rec, rec + WAL_RECORD_HDR, plen);
    *term = r.term;
    *data = rec;
    *len = plen;
    return MOM_OK;
}

int wal_replay(struct wal *w, uint64_t from_index, wal_record_fn fn, void *arg)
{
    for (size_t si = 0; si < w->nsegs; si++) {
        const struct wal_seg *s = &w->segs[si];
        if (s->count == 0 || s->first + s->count <= from_index)
            continue;
        char name[WAL_NAME_LEN + 1];
        seg_name(name, s->first);
        int fd = si + 1 == w->nsegs && w->fd >= 0 ? w->fd
                                                  : openat(w->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            log_error("wal: cannot open %s/%s: %s", w->dir, name, strerror(errno));
            return MOM_ERR_IO;
        }
        void *m = mmap(NULL, (size_t)s->size, PROT_READ, MAP_SHARED, fd, 0);
        int err = errno;
        if (fd != w->fd)
            close(fd);
        if (m == MAP_FAILED) {
            log_error("wal: cannot map %s/%s: %s", w->dir, name, strerror(err));
            return MOM_ERR_IO;
        }
        (void)madvise(m, (size_t)s->size, MADV_SEQUENTIAL);
        (void)madvise(m, (size_t)s->size, MADV_WILLNEED);
        const uint8_t *map = m;
        size_t j = from_index > s->first ? (size_t)(from_index - s->first) : 0;
        int rc = MOM_OK;
        for (; j < s->count; j++) {
            const uint8_t *rec = map + s->offs[j];
            uint64_t index = le_get64(rec + 16);
            if (index != s->first + j) {
                log_error("wal: %s/%s: record %" PRIu64 " changed on disk", w->dir, name,
                          s->first + j);
                rc = MOM_ERR_IO;
                break;
            }
            rc = fn(arg, le_get64(rec + 8), index, rec + WAL_RECORD_HDR, le_get32(rec));
            if (rc != 0)
                break;
        }
        munmap(m, (size_t)s->size);
        if (rc != 0)
            return rc;
    }
    for (size_t j = 0; j < w->pend_count; j++) {
        uint64_t index = w->pend_first + j;
        if (index < from_index)
            continue;
        const uint8_t *rec = w->buf + WAL_HDR_SIZE + w->pend_offs[j];
        int rc = fn(arg, le_get64(rec + 8), index, rec + WAL_RECORD_HDR, le_get32(rec));
        if (rc != 0)
            return rc;
    }
    return MOM_OK;
}

uint64_t wal_disk_bytes(const struct wal *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->nsegs; i++)
        n += w->segs[i].size;
    return n;
}

int wal_check_invariants(const struct wal *w)
{
    for (size_t i = 0; i < w->nsegs; i++) {
        const struct wal_seg *s = &w->segs[i];
        if (s->first == 0 || (s->count == 0 && i + 1 != w->nsegs))
            return MOM_ERR_CORRUPT;
        if (i > 0 && s->first != w->segs[i - 1].first + w->segs[i - 1].count)
            return MOM_ERR_CORRUPT;
        uint64_t prev = 0;
        for (size_t j = 0; j < s->count; j++) {
            if (s->offs[j] < WAL_HDR_SIZE || (j > 0 && s->offs[j] < prev + WAL_RECORD_HDR) ||
                s->offs[j] + WAL_RECORD_HDR > s->size)
                return MOM_ERR_CORRUPT;
            prev = s->offs[j];
        }
    }
    if (w->pend_count > 0 && disk_last(w) != 0 && w->pend_first != disk_last(w) + 1)
        return MOM_ERR_CORRUPT;
    for (size_t i = 1; i < w->nruns; i++)
        if (w->runs[i].first <= w->runs[i - 1].first || w->runs[i].term == w->runs[i - 1].term)
            return MOM_ERR_CORRUPT;
    uint64_t first = wal_first_index(w);
    if (first != 0 && (w->nruns == 0 || w->runs[0].first > first))
        return MOM_ERR_CORRUPT;
    if (w->nruns > 0 && w->runs[w->nruns - 1].first > wal_last_index(w))
        return MOM_ERR_CORRUPT;
    if (w->fd < 0 && w->nsegs > 0)
        return MOM_ERR_CORRUPT;
    return MOM_OK;
}
