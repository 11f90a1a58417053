/* The segmented write-ahead log: the Raft log on disk. Records
 * are appended into an in-memory batch (wal_append), written with one
 * write() per batch (wal_write) and made durable by fdatasync on the fd that
 * wal_sync_fd returns (run on the I/O helper thread, see syncer.h). Recovery
 * scans the segments, verifies every CRC32C and cuts a torn or corrupt tail
 * of the last segment; damage in an earlier segment refuses to open.
 * Owned and called by the loop thread only.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_WAL_H
#define MOM_REPLICATION_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wal;

struct wal_options {
    uint64_t segment_bytes; /* rotate after this size (default 64 MiB when 0) */
    bool no_prealloc;       /* don't fallocate new segments (default: preallocate) */
};

struct wal_open_info {
    uint64_t first_index; /* first index present in the log (0 when empty) */
    uint64_t last_index;  /* last index present (0 when empty) */
    uint64_t last_term;
    uint64_t truncated_bytes; /* bytes cut from a torn/corrupt tail (logged), up to the
                               * last non-zero byte: zeros after it are not counted */
};

/* Opens (creating if needed) the log in directory dir.
 * Returns MOM_OK, MOM_ERR_IO, MOM_ERR_NOMEM, or MOM_ERR_CORRUPT when a
 * segment other than the last is damaged (the node must not start). */
int wal_open(const char *dir, const struct wal_options *opt, struct wal **out,
             struct wal_open_info *info);
/* Closes files and frees everything. Accepts NULL. Pending unwritten records are dropped. */
void wal_close(struct wal *w);

typedef int (*wal_record_fn)(void *arg, uint64_t term, uint64_t index, const uint8_t *data,
                             size_t len);
/* Calls fn for every record with index >= from_index, in order; stops and
 * returns fn's value when it is non-zero. Returns MOM_OK or MOM_ERR_IO.
 * data is valid only during the call (it points into a mapping of the file). */
int wal_replay(struct wal *w, uint64_t from_index, wal_record_fn fn, void *arg);

/* Buffers one record. index must be last_index + 1 (or any index when the
 * log is empty, e.g. right after a snapshot). Returns MOM_OK,
 * MOM_ERR_INVALID (index gap) or MOM_ERR_NOMEM. */
int wal_append(struct wal *w, uint64_t term, uint64_t index, const uint8_t *data, size_t len);
/* Writes every buffered record with one write() (rotating segments first if
 * needed). On a short or failed write the segment is truncated back to its
 * last good size and the buffered records are dropped (their indexes can be
 * appended again). Returns MOM_OK, MOM_ERR_IO or MOM_ERR_NOSPACE. */
int wal_write(struct wal *w);
/* The fd to fdatasync so that everything written so far is durable. After a
 * rotation, the previous segment was already synced by wal_write. */
int wal_sync_fd(const struct wal *w);
/* Bytes buffered by wal_append and not yet written. */
size_t wal_pending_bytes(const struct wal *w);

/* Removes every record with index > index (Raft conflict repair). The caller
 * syncs afterwards. Returns MOM_OK or MOM_ERR_IO. */
int wal_truncate_after(struct wal *w, uint64_t index);
/* Deletes whole segments whose records are all <= index (after a snapshot at
 * index). Returns MOM_OK or MOM_ERR_IO. */
int wal_compact(struct wal *w, uint64_t index);
/* Drops the whole log and restarts it empty so that the next append may be
 * any index (after installing a snapshot beyond the log). */
int wal_reset(struct wal *w);

uint64_t wal_first_index(const struct wal *w);
uint64_t wal_last_index(const struct wal *w);
uint64_t wal_last_term(const struct wal *w);
/* Term of the record at index, or 0 when it is not in the log. */
uint64_t wal_term_at(const struct wal *w, uint64_t index);
/* Reads one record (data malloc'd into *data, owned by caller).
 * Returns MOM_OK, MOM_ERR_NOTFOUND or MOM_ERR_IO. */
int wal_read(struct wal *w, uint64_t index, uint64_t *term, uint8_t **data, size_t *len);
/* Total bytes of all segments on disk (headers and records; space
 * preallocated beyond the last record is not counted). */
uint64_t wal_disk_bytes(const struct wal *w);

/* ---- the record codec (pure functions over bytes; see the format banner
 * in wal.c) and a self-check for tests ---- */

#define WAL_RECORD_HDR 24u          /* u32 len, u32 crc32c, u64 term, u64 index */
#define WAL_MAX_PAYLOAD (64u << 20) /* larger appends are MOM_ERR_INVALID */

struct wal_record {
    uint64_t term;
    uint64_t index;
    const uint8_t *data; /* points into the decoded buffer */
    size_t len;
};
/* Encodes one record into out, which must hold WAL_RECORD_HDR + len bytes
 * (len <= WAL_MAX_PAYLOAD). Returns the bytes written. */
size_t wal_record_encode(uint8_t *out, uint64_t term, uint64_t index, const uint8_t *data,
                         size_t len);
/* Decodes the record at the start of buf. Returns MOM_OK with *consumed set,
 * MOM_ERR_NEED_MORE when buf holds only part of it, or MOM_ERR_CORRUPT when
 * the length is impossible or the CRC does not match. */
int wal_record_decode(const uint8_t *buf, size_t len, struct wal_record *out, size_t *consumed);
/* The segment header (WAL_SEGMENT_HDR bytes) for a segment whose first
 * record is `first`. */
#define WAL_SEGMENT_HDR 32u
void wal_segment_header_encode(uint8_t *out, uint64_t first);

/* What scanning one segment's bytes found (recovery decides from it: a
 * damaged LAST segment is cut at `good`, damage anywhere else stops the
 * node). */
enum wal_scan_status {
    WAL_SCAN_CLEAN,       /* header, records, then only zeros or the end */
    WAL_SCAN_DAMAGED,     /* a bad record or data after the end marker at `good` */
    WAL_SCAN_NO_HEADER,   /* short or bad header and nothing but zeros */
    WAL_SCAN_BAD_HEADER,  /* short or bad header over non-zero bytes */
    WAL_SCAN_WRONG_FIRST, /* a valid header naming another first index */
};
struct wal_scan {
    enum wal_scan_status status;
    uint64_t good;        /* bytes of header and valid records: a torn tail starts here */
    uint64_t damaged_end; /* damage: end of the non-zero bytes from good on */
    uint64_t records;     /* valid records, indexes first, first + 1, ... */
    char why[96];         /* the damage, for the log */
};
/* Called for each valid record in order with its offset in the image;
 * a non-zero return stops the scan and is returned. */
typedef int (*wal_scan_fn)(void *arg, uint64_t off, const struct wal_record *rec);
/* Scans the image of one segment whose file name says `first`: its header,
 * then records (length, CRC, index first + i) up to the end-of-data marker,
 * a zero record header followed by nothing but zeros. A pure function over
 * image[0..size); fd is -1, or the file the image maps, which only lets it
 * skip holes (preallocated space) when looking for non-zero bytes. fn may
 * be NULL. Returns MOM_OK (the verdict in *res) or fn's value. */
int wal_scan_segment(const uint8_t *image, uint64_t size, uint64_t first, int fd, wal_scan_fn fn,
                     void *arg, struct wal_scan *res);

/* Checks the in-memory index against itself (continuity, offsets, terms).
 * Returns MOM_OK or MOM_ERR_CORRUPT. For tests. */
int wal_check_invariants(const struct wal *w);

#endif
