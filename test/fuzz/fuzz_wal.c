/* libFuzzer harness for the write-ahead log's decoding and recovery
 * (replication/wal): wal_record_decode over the raw input, then
 * wal_scan_segment over a segment image built from it, then (when asked)
 * wal_open + wal_replay over the image written as one or two segment files.
 *
 * Input: byte 0 is a flag set, bytes 1..8 the first index (LE), the rest
 * the body. Flags: 1 = put a valid segment header before the body (else the
 * body is the whole image); 2 = renumber the records the body holds to
 * first, first + 1, ...; 4 = recompute their CRCs (so the fuzzer gets past
 * the checksums and reaches lengths, indexes and the end-marker rules);
 * 8 = also recover it from files; 16 = split the records into two segments
 * there. Properties checked: every record the scan accepts re-encodes to
 * the same bytes; `good` and `damaged_end` stay in bounds; a clean image
 * has only zeros after `good`; the image cut at `good` (what recovery keeps)
 * scans clean with the same records, also with zeros after it
 * (preallocation); recovery from files keeps exactly the records the scan
 * accepted when the image is one segment.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "common/le.h"
#include "common/log.h"
#include "replication/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_HEADER 1
#define F_RENUMBER 2
#define F_FIXCRC 4
#define F_FILES 8
#define F_SPLIT 16

struct seen {
    const uint8_t *image;
    uint64_t last_off;
    uint64_t count;
    uint64_t first;
};

static int on_record(void *arg, uint64_t off, const struct wal_record *rec)
{
    struct seen *s = arg;
    if (s->count && off <= s->last_off)
        abort();
    if (rec->index != s->first + s->count)
        abort();
    uint8_t *again = malloc(WAL_RECORD_HDR + rec->len);
    if (!again)
        abort();
    size_t n = wal_record_encode(again, rec->term, rec->index, rec->data, rec->len);
    if (n != WAL_RECORD_HDR + rec->len || memcmp(again, s->image + off, n) != 0)
        abort();
    free(again);
    s->last_off = off;
    s->count++;
    return MOM_OK;
}

/* Walks the records by their length fields, renumbering and/or re-CRCing;
 * returns the offset of each record boundary in bounds[] (up to max). */
static size_t fix_records(uint8_t *img, size_t size, size_t from, uint64_t first, int flags,
                          size_t *bounds, size_t max)
{
    size_t off = from, k = 0;
    uint64_t index = first;
    while (size - off >= WAL_RECORD_HDR) {
        uint32_t plen = le_get32(img + off);
        if (plen > WAL_MAX_PAYLOAD || plen > size - off - WAL_RECORD_HDR)
            break;
        if (plen == 0 && le_get64(img + off + 16) == 0 && le_get64(img + off + 8) == 0)
            break; /* the end marker */
        if (k < max)
            bounds[k++] = off;
        if (flags & F_RENUMBER)
            le_put64(img + off + 16, index);
        if (flags & F_FIXCRC) {
            uint8_t *copy = malloc(plen ? plen : 1);
            if (!copy)
                abort();
            memcpy(copy, img + off + WAL_RECORD_HDR, plen);
            wal_record_encode(img + off, le_get64(img + off + 8), le_get64(img + off + 16), copy,
                              plen);
            free(copy);
        }
        off += WAL_RECORD_HDR + plen;
        index++;
    }
    return k;
}

static void scan_checks(const uint8_t *img, size_t size, uint64_t first, struct wal_scan *res)
{
    struct seen s = {.image = img, .first = first};
    if (wal_scan_segment(img, size, first, -1, on_record, &s, res) != MOM_OK)
        abort();
    if (res->good > size || s.count != res->records)
        abort();
    if (res->status == WAL_SCAN_CLEAN) {
        for (size_t i = res->good; i < size; i++)
            if (img[i] != 0)
                abort();
    }
    if (res->status == WAL_SCAN_DAMAGED &&
        (res->damaged_end <= res->good || res->damaged_end > size))
        abort();
    if (res->status != WAL_SCAN_CLEAN && res->status != WAL_SCAN_DAMAGED)
        return;
    /* What recovery keeps scans clean, with or without preallocated zeros. */
    size_t cut = (size_t)res->good;
    uint8_t *kept = calloc(1, cut + 4096);
    if (!kept)
        abort();
    memcpy(kept, img, cut);
    for (size_t pad = 0; pad <= 4096; pad += 4096) {
        struct wal_scan again;
        struct seen s2 = {.image = kept, .first = first};
        if (wal_scan_segment(kept, cut + pad, first, -1, on_record, &s2, &again) != MOM_OK ||
            again.status != WAL_SCAN_CLEAN || again.records != res->records ||
            again.good != res->good)
            abort();
    }
    free(kept);
}

/* ---- recovery from files ---- */

static char dir[256];

static void clear_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_dir(void)
{
    clear_dir();
    rmdir(dir);
}

static void write_segment(uint64_t first, const uint8_t *p, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, first);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
        abort();
    close(fd);
}

struct replayed {
    uint64_t count, next;
};

static int on_replay(void *arg, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    (void)term;
    (void)data;
    (void)len;
    struct replayed *r = arg;
    if (r->count && index != r->next)
        abort();
    r->next = index + 1;
    r->count++;
    return 0;
}

static void recover_files(const uint8_t *img, size_t size, uint64_t first, const size_t *bounds,
                          size_t nb, bool split, const struct wal_scan *scan)
{
    if (!dir[0]) {
        /* tmpfs when there is one: recovery syncs what it cuts */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/fuzz_wal.XXXXXX", tmp);
        if (!mkdtemp(dir))
            abort();
        atexit(remove_dir);
        log_set_level(MOM_LOG_ERROR);
    }
    clear_dir();
    bool two = split && nb >= 2 && size >= WAL_SEGMENT_HDR;
    if (two) {
        /* first segment: header + records before bounds[nb / 2]; second:
         * a header for the index there + the rest */
        size_t at = bounds[nb / 2];
        uint64_t second = first + nb / 2;
        write_segment(first, img, at);
        uint8_t *rest = malloc(WAL_SEGMENT_HDR + (size - at));
        if (!rest)
            abort();
        wal_segment_header_encode(rest, second);
        memcpy(rest + WAL_SEGMENT_HDR, img + at, size - at);
        write_segment(second, rest, WAL_SEGMENT_HDR + (size - at));
        free(rest);
    } else {
        write_segment(first, img, size);
    }
    struct wal_options opt = {.no_prealloc = true};
    struct wal *w = NULL;
    struct wal_open_info info;
    int rc = wal_open(dir, &opt, &w, &info);
    if (rc == MOM_OK) {
        struct replayed r = {0};
        if (wal_check_invariants(w) != MOM_OK)
            abort();
        if (wal_replay(w, 0, on_replay, &r) != MOM_OK)
            abort();
        if (!two && (scan->status == WAL_SCAN_CLEAN || scan->status == WAL_SCAN_DAMAGED) &&
            r.count != scan->records)
            abort();
        if (!two && r.count != 0 && (info.first_index != first || info.last_index != r.next - 1))
            abort();
        /* The recovered log takes the next record. */
        uint64_t next = r.count ? r.next : (info.last_index ? info.last_index + 1 : first);
        if (wal_append(w, 1, next, (const uint8_t *)"x", 1) != MOM_OK || wal_write(w) != MOM_OK ||
            wal_check_invariants(w) != MOM_OK)
            abort();
        wal_close(w);
    } else if (rc != MOM_ERR_CORRUPT) {
        abort();
    } else if (!two && scan->status != WAL_SCAN_WRONG_FIRST) {
        abort(); /* a single (last) segment is cut, never refused, unless misnamed */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the record decoder over the raw bytes */
    size_t off = 0;
    while (off < size) {
        struct wal_record rec;
        size_t used = 0;
        if (wal_record_decode(data + off, size - off, &rec, &used) != MOM_OK)
            break;
        if (used < WAL_RECORD_HDR || used > size - off || rec.len != used - WAL_RECORD_HDR)
            abort();
        off += used;
    }
    if (size < 9)
        return 0;
    int flags = data[0];
    uint64_t first = le_get64(data + 1);
    if (first == 0 || first > UINT64_MAX / 2)
        first = 1 + (first & 0xffff); /* index 0 is never a record */
    const uint8_t *body = data + 9;
    size_t blen = size - 9;
    size_t hdr = flags & F_HEADER ? WAL_SEGMENT_HDR : 0;
    size_t isize = hdr + blen;
    uint8_t *img = malloc(isize ? isize : 1);
    if (!img)
        abort();
    if (hdr)
        wal_segment_header_encode(img, first);
    memcpy(img + hdr, body, blen);
    size_t bounds[64], nb = 0;
    if (flags & (F_RENUMBER | F_FIXCRC | F_SPLIT))
        nb = fix_records(img, isize,
                         hdr                       ? hdr
                         : WAL_SEGMENT_HDR < isize ? WAL_SEGMENT_HDR
                                                   : isize,
                         first, flags, bounds, 64);
    struct wal_scan res;
    scan_checks(img, isize, first, &res);
    if (flags & F_FILES)
        recover_files(img, isize, first, bounds, nb, (flags & F_SPLIT) != 0, &res);
    free(img);
    return 0;
}
