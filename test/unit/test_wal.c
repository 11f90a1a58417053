/* Unit tests for replication/wal: round trips across segment rotations,
 * recovery from crafted torn and corrupt logs (cut in the last segment,
 * refused in an earlier one), truncate/compact/reset, reads of written and
 * buffered records, a write failure via RLIMIT_FSIZE, the record codec and
 * the pure segment scan recovery is built on.
 * Each test works in a fresh temporary directory.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"
#include "replication/wal.h"

#define SEG_HDR 32u

struct fx {
    char dir[64];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/mom-wal-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    log_set_level(MOM_LOG_WARN);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Deterministic payload for an index: 10..69 bytes. */
static size_t payload(uint64_t index, uint8_t *out)
{
    size_t len = 10 + (size_t)(index * 7 % 60);
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(index * 31 + i);
    return len;
}

static uint64_t term_of(uint64_t index)
{
    return 1 + index / 100; /* a new term every 100 records */
}

static void append_range(struct wal *w, uint64_t from, uint64_t to, size_t batch,
                         uint64_t (*term)(uint64_t))
{
    uint8_t buf[128];
    for (uint64_t i = from; i <= to; i++) {
        size_t len = payload(i, buf);
        assert_int_equal(wal_append(w, term(i), i, buf, len), MOM_OK);
        if ((i - from + 1) % batch == 0 || i == to)
            assert_int_equal(wal_write(w), MOM_OK);
    }
}

struct check {
    uint64_t next;
    uint64_t count;
    uint64_t (*term)(uint64_t);
    uint64_t stop_at; /* return 7 at this index (0 = never) */
};

static int check_record(void *arg, uint64_t term, uint64_t index, const uint8_t *data, size_t len)
{
    struct check *c = arg;
    uint8_t buf[128];
    if (index != c->next)
        return -100;
    if (term != c->term(index))
        return -101;
    size_t want = payload(index, buf);
    if (len != want || memcmp(buf, data, len) != 0)
        return -102;
    c->next++;
    c->count++;
    if (index == c->stop_at)
        return 7;
    return 0;
}

static void expect_replay(struct wal *w, uint64_t from, uint64_t first, uint64_t last,
                          uint64_t (*term)(uint64_t))
{
    struct check c = {.next = first, .term = term};
    assert_int_equal(wal_replay(w, from, check_record, &c), MOM_OK);
    assert_int_equal(c.count, last - first + 1);
    assert_int_equal(c.next, last + 1);
}

static void seg_path(const struct fx *f, uint64_t first, char *out, size_t n)
{
    snprintf(out, n, "%s/%020llu.seg", f->dir, (unsigned long long)first);
}

static size_t count_segments(const struct fx *f, uint64_t *firsts, size_t max)
{
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l == 24 && strcmp(e->d_name + 20, ".seg") == 0) {
            if (firsts != NULL && n < max)
                firsts[n] = strtoull(e->d_name, NULL, 10);
            n++;
        }
    }
    closedir(d);
    /* sort the few names */
    if (firsts != NULL)
        for (size_t i = 1; i < n && i < max; i++)
            for (size_t j = i; j > 0 && firsts[j - 1] > firsts[j]; j--) {
                uint64_t t = firsts[j];
                firsts[j] = firsts[j - 1];
                firsts[j - 1] = t;
            }
    return n;
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

static void flip_byte(const char *p, uint64_t off)
{
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void cut_file(const char *p, uint64_t size)
{
    assert_int_equal(truncate(p, (off_t)size), 0);
}

static struct wal *open_ok(const struct fx *f, uint64_t seg_bytes, bool prealloc,
                           struct wal_open_info *info)
{
    struct wal_options o = {.segment_bytes = seg_bytes, .no_prealloc = !prealloc};
    struct wal *w = NULL;
    assert_int_equal(wal_open(f->dir, &o, &w, info), MOM_OK);
    assert_non_null(w);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    return w;
}

static int open_rc(const struct fx *f, uint64_t seg_bytes)
{
    struct wal_options o = {.segment_bytes = seg_bytes, .no_prealloc = true};
    struct wal *w = NULL;
    struct wal_open_info info;
    int rc = wal_open(f->dir, &o, &w, &info);
    if (rc == MOM_OK)
        wal_close(w);
    else
        assert_null(w);
    return rc;
}

/* Bytes that record `index` takes on disk. */
static uint64_t rec_size(uint64_t index)
{
    uint8_t buf[128];
    return WAL_RECORD_HDR + payload(index, buf);
}

/* ---- tests ---- */

static void roundtrip(struct fx *f, bool prealloc)
{
    struct wal_open_info info;
    struct wal *w = open_ok(f, 4096, prealloc, &info);
    assert_int_equal(info.first_index, 0);
    assert_int_equal(info.last_index, 0);
    assert_int_equal(info.last_term, 0);
    assert_int_equal(wal_first_index(w), 0);
    assert_int_equal(wal_last_index(w), 0);
    append_range(w, 1, 1000, 7, term_of);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    assert_int_equal(wal_last_index(w), 1000);
    assert_int_equal(wal_last_term(w), term_of(1000));
    expect_replay(w, 1, 1, 1000, term_of);

    uint64_t firsts[64];
    size_t nseg = count_segments(f, firsts, 64);
    assert_true(nseg >= 10);
    assert_int_equal(firsts[0], 1);
    /* Sealed segments are cut to their data; the sum of the logical sizes
     * is what wal_disk_bytes reports. */
    uint64_t sum = 0;
    for (size_t i = 0; i < nseg; i++) {
        char p[128];
        seg_path(f, firsts[i], p, sizeof p);
        uint64_t sz = file_size(p);
        if (i + 1 < nseg) {
            assert_true(sz >= 4096);
            sum += sz;
        }
    }
    uint64_t data = 0, last_seg = SEG_HDR;
    for (uint64_t i = 1; i <= 1000; i++) {
        data += rec_size(i);
        if (i >= firsts[nseg - 1])
            last_seg += rec_size(i);
    }
    assert_int_equal(wal_disk_bytes(w), data + nseg * SEG_HDR);
    /* Sealed segments hold exactly their records (preallocation cut off). */
    assert_int_equal(sum, wal_disk_bytes(w) - last_seg);
    char lp[128];
    seg_path(f, firsts[nseg - 1], lp, sizeof lp);
    if (prealloc)
        assert_true(file_size(lp) >= last_seg);
    else
        assert_int_equal(file_size(lp), last_seg);
    wal_close(w);

    w = open_ok(f, 4096, prealloc, &info);
    assert_int_equal(info.first_index, 1);
    assert_int_equal(info.last_index, 1000);
    assert_int_equal(info.last_term, term_of(1000));
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(wal_disk_bytes(w), data + nseg * SEG_HDR);
    expect_replay(w, 0, 1, 1000, term_of);
    expect_replay(w, 1, 1, 1000, term_of);
    expect_replay(w, 537, 537, 1000, term_of);
    expect_replay(w, 1000, 1000, 1000, term_of);
    struct check c = {.next = 1, .term = term_of};
    assert_int_equal(wal_replay(w, 1001, check_record, &c), MOM_OK);
    assert_int_equal(c.count, 0);
    /* The callback's non-zero value stops the replay and is returned. */
    c = (struct check){.next = 10, .term = term_of, .stop_at = 20};
    assert_int_equal(wal_replay(w, 10, check_record, &c), 7);
    assert_int_equal(c.count, 11);

    /* Appends continue in the reopened log and rotate further. */
    append_range(w, 1001, 1500, 13, term_of);
    wal_close(w);
    w = open_ok(f, 4096, prealloc, &info);
    assert_int_equal(info.last_index, 1500);
    expect_replay(w, 1, 1, 1500, term_of);
    wal_close(w);
}

static void test_roundtrip_rotation(void **state)
{
    roundtrip(*state, false);
}

static void test_roundtrip_rotation_prealloc(void **state)
{
    roundtrip(*state, true);
}

static uint64_t term_two(uint64_t index)
{
    return index >= 100 ? 9 : term_of(index);
}

static void test_torn_tail_cut(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, false, &info);
    append_range(w, 1, 100, 10, term_of);
    wal_close(w);
    char p[128];
    seg_path(f, 1, p, sizeof p);
    uint64_t size = file_size(p);
    uint64_t off100 = size - rec_size(100);
    cut_file(p, size - 5); /* mid-record */

    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 99);
    assert_int_equal(info.truncated_bytes, size - 5 - off100);
    assert_int_equal(file_size(p), off100);
    assert_int_equal(wal_term_at(w, 100), 0);
    /* Appending continues at 100, with a different term this time. */
    assert_int_equal(wal_append(w, 9, 101, (const uint8_t *)"x", 1), MOM_ERR_INVALID);
    append_range(w, 100, 120, 4, term_two);
    wal_close(w);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(info.last_index, 120);
    assert_int_equal(info.last_term, 9);
    expect_replay(w, 1, 1, 120, term_two);
    wal_close(w);

    /* A cut inside the 24-byte record header. truncated_bytes counts up to
     * the last non-zero byte (trailing zeros look like preallocated space):
     * of the 10 bytes left, byte 9 is the low byte of the term (9), byte 10
     * its second byte (0). */
    uint64_t end119 = file_size(p) - rec_size(120);
    cut_file(p, end119 + 10);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 119);
    assert_int_equal(info.truncated_bytes, 9);
    assert_int_equal(file_size(p), end119);
    wal_close(w);
}

static void test_crc_mismatch_last_record_cut(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, false, &info);
    append_range(w, 1, 100, 100, term_of);
    wal_close(w);
    char p[128];
    seg_path(f, 1, p, sizeof p);
    uint64_t size = file_size(p);
    flip_byte(p, size - 3); /* payload byte of record 100 */
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 99);
    assert_int_equal(info.truncated_bytes, rec_size(100));
    assert_int_equal(file_size(p), size - rec_size(100));
    expect_replay(w, 1, 1, 99, term_of);
    wal_close(w);

    /* A flipped length field is caught by the CRC as well. */
    size = file_size(p);
    flip_byte(p, size - rec_size(99)); /* low byte of record 99's length */
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 98);
    assert_int_equal(info.truncated_bytes, rec_size(99));
    wal_close(w);

    /* An impossible length (over WAL_MAX_PAYLOAD) is cut too. */
    size = file_size(p);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t ff[4] = {0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(pwrite(fd, ff, 4, (off_t)(size - rec_size(98))), 4);
    close(fd);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 97);
    wal_close(w);
}

static void test_earlier_segment_corrupt(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 2048, false, &info);
    append_range(w, 1, 300, 5, term_of);
    wal_close(w);
    uint64_t firsts[64];
    size_t n = count_segments(f, firsts, 64);
    assert_true(n >= 4);
    char p[128];
    seg_path(f, firsts[1], p, sizeof p);

    /* A flipped byte in the middle of the second segment. */
    flip_byte(p, 500);
    assert_int_equal(open_rc(f, 2048), MOM_ERR_CORRUPT);
    flip_byte(p, 500);
    assert_int_equal(open_rc(f, 2048), MOM_OK);

    /* A torn tail in an earlier segment is not cut: the node refuses. */
    uint64_t size = file_size(p);
    cut_file(p, size - 3);
    assert_int_equal(open_rc(f, 2048), MOM_ERR_CORRUPT);
    assert_int_equal(file_size(p), size - 3); /* left as found */
}

static void test_missing_segment_and_bad_header(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 2048, false, &info);
    append_range(w, 1, 300, 5, term_of);
    wal_close(w);
    uint64_t firsts[64];
    size_t n = count_segments(f, firsts, 64);
    assert_true(n >= 4);
    char p1[128], p2[128], tmp[160];
    seg_path(f, firsts[1], p1, sizeof p1);
    seg_path(f, firsts[2], p2, sizeof p2);

    /* A gap: the middle segment is gone. */
    snprintf(tmp, sizeof tmp, "%s/saved", f->dir);
    assert_int_equal(rename(p1, tmp), 0);
    assert_int_equal(open_rc(f, 2048), MOM_ERR_CORRUPT);
    assert_int_equal(rename(tmp, p1), 0);

    /* A bad magic in an earlier segment. */
    flip_byte(p1, 0);
    assert_int_equal(open_rc(f, 2048), MOM_ERR_CORRUPT);
    flip_byte(p1, 0);

    /* A segment whose header disagrees with its name. */
    assert_int_equal(rename(p2, tmp), 0);
    char renamed[128];
    seg_path(f, firsts[2] + 1, renamed, sizeof renamed);
    assert_int_equal(rename(tmp, renamed), 0);
    assert_int_equal(open_rc(f, 2048), MOM_ERR_CORRUPT);
    assert_int_equal(rename(renamed, p2), 0);
    assert_int_equal(open_rc(f, 2048), MOM_OK);
}

static void write_record_at_end(const char *p, uint64_t term, uint64_t index)
{
    uint8_t rec[64];
    size_t n = wal_record_encode(rec, term, index, (const uint8_t *)"stale", 5);
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, n), (ssize_t)n);
    close(fd);
}

static void test_index_gap(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(wal_append(w, 1, 0, (const uint8_t *)"z", 1), MOM_ERR_INVALID);
    append_range(w, 1, 5, 5, term_of);
    assert_int_equal(wal_append(w, 1, 7, (const uint8_t *)"z", 1), MOM_ERR_INVALID);
    assert_int_equal(wal_append(w, 1, 5, (const uint8_t *)"z", 1), MOM_ERR_INVALID);
    assert_int_equal(wal_append(w, 1, 6, NULL, WAL_MAX_PAYLOAD + 1), MOM_ERR_INVALID);
    assert_int_equal(wal_last_index(w), 5);
    wal_close(w);

    /* On disk: a valid record with the wrong index ends the last segment. */
    char p[128];
    seg_path(f, 1, p, sizeof p);
    uint64_t size = file_size(p);
    write_record_at_end(p, 1, 7);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 5);
    assert_int_equal(info.truncated_bytes, WAL_RECORD_HDR + 5);
    assert_int_equal(file_size(p), size);
    wal_close(w);

    /* The same in an earlier segment refuses to open. */
    w = open_ok(f, 1, false, &info);
    append_range(w, 6, 8, 1, term_of); /* segment size 1: one segment per batch */
    wal_close(w);
    assert_int_equal(count_segments(f, NULL, 0), 4);
    write_record_at_end(p, 1, 9); /* index 6 expected */
    assert_int_equal(open_rc(f, 1), MOM_ERR_CORRUPT);
    /* A valid record 6 there overlaps the next segment: refused too. */
    cut_file(p, size);
    assert_int_equal(open_rc(f, 1), MOM_OK);
    write_record_at_end(p, 1, 6);
    assert_int_equal(open_rc(f, 1), MOM_ERR_CORRUPT);
}

static uint64_t term_three(uint64_t index)
{
    return index > 150 ? 50 : term_of(index);
}

static void test_truncate_after_then_append(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 2048, false, &info);
    append_range(w, 1, 300, 6, term_of);
    size_t before = count_segments(f, NULL, 0);
    assert_int_equal(wal_truncate_after(w, 400), MOM_OK); /* beyond the end: nothing */
    assert_int_equal(wal_last_index(w), 300);
    assert_int_equal(wal_truncate_after(w, 150), MOM_OK);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    assert_int_equal(wal_last_index(w), 150);
    assert_int_equal(wal_last_term(w), term_of(150));
    assert_int_equal(wal_term_at(w, 151), 0);
    assert_true(count_segments(f, NULL, 0) < before);
    uint8_t *d;
    size_t len;
    uint64_t t;
    assert_int_equal(wal_read(w, 151, &t, &d, &len), MOM_ERR_NOTFOUND);
    append_range(w, 151, 400, 9, term_three);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    expect_replay(w, 1, 1, 400, term_three);
    wal_close(w);
    w = open_ok(f, 2048, false, &info);
    assert_int_equal(info.last_index, 400);
    assert_int_equal(info.last_term, 50);
    expect_replay(w, 1, 1, 400, term_three);

    /* Truncating buffered records only. */
    append_range(w, 401, 410, 100, term_three); /* written */
    uint8_t buf[128];
    for (uint64_t i = 411; i <= 420; i++)
        assert_int_equal(wal_append(w, 60, i, buf, payload(i, buf)), MOM_OK);
    size_t pend = wal_pending_bytes(w);
    assert_int_equal(wal_truncate_after(w, 415), MOM_OK);
    assert_int_equal(wal_last_index(w), 415);
    assert_true(wal_pending_bytes(w) < pend);
    assert_int_equal(wal_term_at(w, 415), 60);
    assert_int_equal(wal_term_at(w, 416), 0);
    assert_int_equal(wal_append(w, 61, 416, buf, payload(416, buf)), MOM_OK);
    assert_int_equal(wal_write(w), MOM_OK);
    /* Truncating through written and buffered records. */
    for (uint64_t i = 417; i <= 418; i++)
        assert_int_equal(wal_append(w, 61, i, buf, payload(i, buf)), MOM_OK);
    assert_int_equal(wal_truncate_after(w, 405), MOM_OK);
    assert_int_equal(wal_pending_bytes(w), 0);
    assert_int_equal(wal_last_index(w), 405);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    wal_close(w);
    w = open_ok(f, 2048, false, &info);
    assert_int_equal(info.last_index, 405);
    expect_replay(w, 1, 1, 405, term_three);

    /* Truncating below the first index empties the log. */
    assert_int_equal(wal_compact(w, 200), MOM_OK);
    uint64_t first = wal_first_index(w);
    assert_true(first > 1 && first <= 201);
    assert_int_equal(wal_truncate_after(w, first - 1), MOM_OK);
    assert_int_equal(wal_last_index(w), 0);
    assert_int_equal(wal_first_index(w), 0);
    assert_int_equal(count_segments(f, NULL, 0), 0);
    wal_close(w);
}

static void test_compact(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 2048, true, &info);
    append_range(w, 1, 500, 5, term_of);
    uint64_t firsts[128];
    size_t n = count_segments(f, firsts, 128);
    assert_true(n >= 6);
    uint64_t bytes = wal_disk_bytes(w);

    /* Nothing goes while index is inside the first segment. */
    assert_int_equal(wal_compact(w, firsts[1] - 2), MOM_OK);
    assert_int_equal(count_segments(f, NULL, 0), n);
    assert_int_equal(wal_first_index(w), 1);
    /* Segments 0 and 1 hold only records <= firsts[2] - 1. */
    assert_int_equal(wal_compact(w, firsts[2] - 1), MOM_OK);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    assert_int_equal(count_segments(f, NULL, 0), n - 2);
    assert_int_equal(wal_first_index(w), firsts[2]);
    assert_true(wal_disk_bytes(w) < bytes);
    assert_int_equal(wal_term_at(w, firsts[2] - 1), 0);
    assert_int_equal(wal_term_at(w, firsts[2]), term_of(firsts[2]));
    uint8_t *d;
    size_t len;
    uint64_t t;
    assert_int_equal(wal_read(w, 1, &t, &d, &len), MOM_ERR_NOTFOUND);
    expect_replay(w, 1, firsts[2], 500, term_of);

    /* Compacting at the last index keeps the segment holding it. */
    assert_int_equal(wal_compact(w, 500), MOM_OK);
    assert_int_equal(count_segments(f, NULL, 0), 1);
    assert_int_equal(wal_last_index(w), 500);
    assert_int_equal(wal_first_index(w), firsts[n - 1]);
    assert_int_equal(wal_term_at(w, 500), term_of(500));
    append_range(w, 501, 520, 20, term_of);
    wal_close(w);

    w = open_ok(f, 2048, true, &info);
    assert_int_equal(info.first_index, firsts[n - 1]);
    assert_int_equal(info.last_index, 520);
    expect_replay(w, 1, firsts[n - 1], 520, term_of);
    expect_replay(w, 510, 510, 520, term_of);
    wal_close(w);
}

static uint64_t term_seven(uint64_t index)
{
    (void)index;
    return 7;
}

static void test_reset(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 2048, true, &info);
    append_range(w, 1, 200, 10, term_of);
    uint8_t buf[128];
    assert_int_equal(wal_append(w, 3, 201, buf, payload(201, buf)), MOM_OK);
    assert_int_equal(wal_reset(w), MOM_OK);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    assert_int_equal(wal_first_index(w), 0);
    assert_int_equal(wal_last_index(w), 0);
    assert_int_equal(wal_last_term(w), 0);
    assert_int_equal(wal_pending_bytes(w), 0);
    assert_int_equal(wal_disk_bytes(w), 0);
    assert_int_equal(wal_term_at(w, 100), 0);
    assert_int_equal(count_segments(f, NULL, 0), 0);
    assert_true(wal_sync_fd(w) >= 0); /* the directory until a segment exists */
    /* Any index may come next. */
    append_range(w, 5000, 5100, 10, term_seven);
    assert_int_equal(wal_first_index(w), 5000);
    wal_close(w);
    w = open_ok(f, 2048, true, &info);
    assert_int_equal(info.first_index, 5000);
    assert_int_equal(info.last_index, 5100);
    assert_int_equal(info.last_term, 7);
    expect_replay(w, 1, 5000, 5100, term_seven);
    /* Reset of a reopened log, then a lower index. */
    assert_int_equal(wal_reset(w), MOM_OK);
    append_range(w, 10, 12, 10, term_seven);
    wal_close(w);
    w = open_ok(f, 2048, true, &info);
    assert_int_equal(info.first_index, 10);
    assert_int_equal(info.last_index, 12);
    wal_close(w);
}

static uint64_t term_runs(uint64_t index)
{
    return index < 50 ? 1 : index < 51 ? 2 : index < 300 ? 4 : 5;
}

static void test_read_and_term_at(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 3000, false, &info);
    append_range(w, 1, 400, 11, term_runs);
    uint8_t buf[128];
    /* Buffered records are readable too. */
    for (uint64_t i = 401; i <= 405; i++)
        assert_int_equal(wal_append(w, 6, i, buf, payload(i, buf)), MOM_OK);
    assert_int_equal(wal_last_index(w), 405);
    assert_int_equal(wal_last_term(w), 6);
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 1; i <= 405; i++) {
            uint64_t want = i <= 400 ? term_runs(i) : 6;
            assert_int_equal(wal_term_at(w, i), want);
            uint64_t t = 0;
            uint8_t *d = NULL;
            size_t len = 0;
            assert_int_equal(wal_read(w, i, &t, &d, &len), MOM_OK);
            assert_int_equal(t, want);
            assert_int_equal(len, payload(i, buf));
            assert_memory_equal(d, buf, len);
            free(d);
        }
        assert_int_equal(wal_write(w), MOM_OK); /* second pass: all on disk */
    }
    assert_int_equal(wal_term_at(w, 0), 0);
    assert_int_equal(wal_term_at(w, 406), 0);
    uint64_t t;
    uint8_t *d;
    size_t len;
    assert_int_equal(wal_read(w, 406, &t, &d, &len), MOM_ERR_NOTFOUND);
    assert_int_equal(wal_read(w, 0, &t, &d, &len), MOM_ERR_NOTFOUND);
    /* Zero-length payloads round-trip. */
    assert_int_equal(wal_append(w, 6, 406, NULL, 0), MOM_OK);
    assert_int_equal(wal_write(w), MOM_OK);
    assert_int_equal(wal_read(w, 406, &t, &d, &len), MOM_OK);
    assert_int_equal(len, 0);
    free(d);
    wal_close(w);

    /* A record damaged on disk after open is reported, not returned. */
    w = open_ok(f, 3000, false, &info);
    char p[128];
    seg_path(f, 1, p, sizeof p);
    flip_byte(p, SEG_HDR + WAL_RECORD_HDR + 2);
    assert_int_equal(wal_read(w, 1, &t, &d, &len), MOM_ERR_IO);
    assert_null(d);
    flip_byte(p, SEG_HDR + WAL_RECORD_HDR + 2);
    assert_int_equal(wal_read(w, 1, &t, &d, &len), MOM_OK);
    free(d);
    wal_close(w);
}

static void test_write_failure_rlimit(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, false, &info);
    append_range(w, 1, 50, 50, term_of);
    char p[128];
    seg_path(f, 1, p, sizeof p);
    uint64_t good = file_size(p);

    uint8_t buf[128];
    for (uint64_t i = 51; i <= 80; i++)
        assert_int_equal(wal_append(w, 2, i, buf, payload(i, buf)), MOM_OK);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)(good + 100); /* the batch gets partly written */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = wal_write(w);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);

    assert_int_equal(rc, MOM_ERR_IO);
    assert_int_equal(file_size(p), good); /* truncated back */
    assert_int_equal(wal_pending_bytes(w), 0);
    assert_int_equal(wal_last_index(w), 50);
    assert_int_equal(wal_last_term(w), term_of(50));
    assert_int_equal(wal_term_at(w, 51), 0);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    /* The same indexes can be appended again. */
    append_range(w, 51, 80, 30, term_of);
    wal_close(w);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(info.last_index, 80);
    expect_replay(w, 1, 1, 80, term_of);
    wal_close(w);
}

static void test_write_failure_new_segment(void **state)
{
    /* The failing batch is the first one of a fresh segment. */
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 512, true, &info);
    append_range(w, 1, 40, 10, term_of); /* several segments */
    size_t n = count_segments(f, NULL, 0);
    uint8_t buf[128];
    for (uint64_t i = 41; i <= 45; i++)
        assert_int_equal(wal_append(w, 2, i, buf, payload(i, buf)), MOM_OK);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 40;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = wal_write(w);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, MOM_ERR_IO);
    assert_int_equal(wal_last_index(w), 40);
    assert_int_equal(wal_check_invariants(w), MOM_OK);
    assert_int_equal(count_segments(f, NULL, 0), n + 1); /* the empty new one */
    wal_close(w);
    /* Reopen: the empty segment is removed, nothing is lost. */
    w = open_ok(f, 512, true, &info);
    assert_int_equal(info.last_index, 40);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(count_segments(f, NULL, 0), n);
    append_range(w, 41, 60, 10, term_of);
    expect_replay(w, 1, 1, 60, term_of);
    wal_close(w);
}

static void test_empty_and_zeroed_last_segment(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, false, &info);
    append_range(w, 1, 10, 10, term_of);
    wal_close(w);
    /* Crash right after creating the next segment: empty file. */
    char p[128];
    seg_path(f, 11, p, sizeof p);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 10);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(count_segments(f, NULL, 0), 1);
    wal_close(w);
    /* ... or after preallocating it: zeros only. */
    fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 65536), 0);
    close(fd);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 10);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(count_segments(f, NULL, 0), 1);
    wal_close(w);
    /* ... or with a torn header: removed, and the damage reported. */
    fd = open(p, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "MOMWAL", 6), 6);
    close(fd);
    w = open_ok(f, 1 << 20, false, &info);
    assert_int_equal(info.last_index, 10);
    assert_int_equal(info.truncated_bytes, 6);
    assert_int_equal(count_segments(f, NULL, 0), 1);
    append_range(w, 11, 20, 10, term_of);
    wal_close(w);
    w = open_ok(f, 1 << 20, false, &info);
    expect_replay(w, 1, 1, 20, term_of);
    wal_close(w);
}

static void test_prealloc_zero_tail(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1 << 20, true, &info);
    append_range(w, 1, 100, 10, term_of);
    uint64_t logical = wal_disk_bytes(w);
    wal_close(w);
    char p[128];
    seg_path(f, 1, p, sizeof p);
    uint64_t size = file_size(p);
    if (size == logical)
        skip(); /* the filesystem refused fallocate */
    assert_int_equal(size, 1 << 20);

    /* The zero tail is the end of data, not damage. */
    w = open_ok(f, 1 << 20, true, &info);
    assert_int_equal(info.last_index, 100);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(wal_disk_bytes(w), logical);
    append_range(w, 101, 120, 10, term_of);
    logical = wal_disk_bytes(w);
    wal_close(w);
    assert_int_equal(file_size(p), 1 << 20);

    /* Stray bytes after the end marker (a torn write whose later page
     * landed) are cut. */
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "junk", 4, (off_t)(logical + 5000)), 4);
    close(fd);
    w = open_ok(f, 1 << 20, true, &info);
    assert_int_equal(info.last_index, 120);
    assert_int_equal(info.truncated_bytes, 5004);
    expect_replay(w, 1, 1, 120, term_of);
    append_range(w, 121, 130, 10, term_of);
    wal_close(w);
    w = open_ok(f, 1 << 20, true, &info);
    assert_int_equal(info.truncated_bytes, 0);
    assert_int_equal(info.last_index, 130);
    wal_close(w);

    /* A torn record followed by the zero tail. */
    fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t zero[8] = {0};
    uint64_t end = 0;
    w = open_ok(f, 1 << 20, true, &info);
    end = wal_disk_bytes(w);
    wal_close(w);
    assert_int_equal(pwrite(fd, zero, sizeof zero, (off_t)(end - 8)), 8);
    close(fd);
    w = open_ok(f, 1 << 20, true, &info);
    assert_int_equal(info.last_index, 129);
    assert_int_equal(info.truncated_bytes, rec_size(130) - 8);
    wal_close(w);
}

static void test_sync_fd_and_rotation(void **state)
{
    struct fx *f = *state;
    struct wal_open_info info;
    struct wal *w = open_ok(f, 1024, true, &info);
    append_range(w, 1, 20, 20, term_of); /* one batch, over 1024 bytes */
    int fd1 = wal_sync_fd(w);
    assert_true(fd1 >= 0);
    assert_int_equal(fdatasync(fd1), 0);
    append_range(w, 21, 30, 10, term_of); /* rotates once */
    assert_int_equal(count_segments(f, NULL, 0), 2);
    assert_int_not_equal(wal_sync_fd(w), fd1);
    /* The fd handed out before the rotation still refers to the first
     * segment, so a sync in flight on it is not broken by the rotation. */
    char p[128];
    seg_path(f, 1, p, sizeof p);
    struct stat a, b;
    assert_int_equal(fstat(fd1, &a), 0);
    assert_int_equal(stat(p, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(fdatasync(fd1), 0);
    assert_int_equal(fdatasync(wal_sync_fd(w)), 0);
    /* The sealed segment was cut to its data before it was synced. */
    uint64_t sealed = SEG_HDR;
    for (uint64_t i = 1; i <= 20; i++)
        sealed += rec_size(i);
    assert_int_equal(file_size(p), sealed);
    wal_close(w);
}

static void test_codec(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = wal_record_encode(buf, 2, 7, (const uint8_t *)"hi", 2);
    assert_int_equal(n, 26);
    const uint8_t head[] = {2, 0, 0, 0};
    assert_memory_equal(buf, head, 4);
    assert_int_equal(buf[8], 2);
    assert_int_equal(buf[16], 7);
    assert_memory_equal(buf + 24, "hi", 2);
    struct wal_record r;
    size_t used = 0;
    assert_int_equal(wal_record_decode(buf, n, &r, &used), MOM_OK);
    assert_int_equal(used, n);
    assert_int_equal(r.term, 2);
    assert_int_equal(r.index, 7);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.data, "hi", 2);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(wal_record_decode(buf, k, &r, &used), MOM_ERR_NEED_MORE);
    for (size_t k = 0; k < n; k++) {
        if (k >= 4 && k < 8)
            continue; /* the CRC itself */
        buf[k] ^= 1;
        int rc = wal_record_decode(buf, n, &r, &used);
        assert_true(rc == MOM_ERR_CORRUPT || rc == MOM_ERR_NEED_MORE);
        buf[k] ^= 1;
    }
    buf[4] ^= 0x80;
    assert_int_equal(wal_record_decode(buf, n, &r, &used), MOM_ERR_CORRUPT);
}

/* wal_scan_segment over bytes: a clean image with a zero tail, a torn last
 * record, data after the end marker, a wrong first index, a missing header
 * and a record callback that stops the scan. */
static int count_records(void *arg, uint64_t off, const struct wal_record *rec)
{
    (void)off;
    uint64_t *n = arg;
    if (rec->index == 99)
        return MOM_ERR_NOMEM;
    (*n)++;
    return MOM_OK;
}

static void test_scan_segment_bytes(void **state)
{
    (void)state;
    static uint8_t img[4096];
    memset(img, 0, sizeof img);
    wal_segment_header_encode(img, 7);
    size_t off = WAL_SEGMENT_HDR, ends[3];
    for (uint64_t i = 0; i < 3; i++) {
        off += wal_record_encode(img + off, 1, 7 + i, (const uint8_t *)"abcdef", 6);
        ends[i] = off;
    }
    struct wal_scan res;
    uint64_t n = 0;
    /* clean, with and without the preallocated zeros after the records */
    assert_int_equal(wal_scan_segment(img, off, 7, -1, count_records, &n, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_CLEAN);
    assert_int_equal(res.good, off);
    assert_int_equal(res.records, 3);
    assert_int_equal(n, 3);
    assert_int_equal(wal_scan_segment(img, sizeof img, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_CLEAN);
    assert_int_equal(res.good, off);
    /* a torn last record: the tail starts after the second */
    assert_int_equal(wal_scan_segment(img, off - 2, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_DAMAGED);
    assert_int_equal(res.good, ends[1]);
    assert_int_equal(res.records, 2);
    assert_int_equal(res.damaged_end, off - 2);
    /* a flipped payload byte in the second record */
    img[ends[0] + WAL_RECORD_HDR] ^= 1;
    assert_int_equal(wal_scan_segment(img, sizeof img, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_DAMAGED);
    assert_int_equal(res.good, ends[0]);
    assert_int_equal(res.damaged_end, off);
    img[ends[0] + WAL_RECORD_HDR] ^= 1;
    /* a non-zero byte after the end marker */
    img[off + 100] = 1;
    assert_int_equal(wal_scan_segment(img, sizeof img, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_DAMAGED);
    assert_int_equal(res.good, off);
    assert_int_equal(res.damaged_end, off + 101);
    img[off + 100] = 0;
    /* the file name says another first index */
    assert_int_equal(wal_scan_segment(img, off, 8, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_WRONG_FIRST);
    /* no header: all zeros, or garbage */
    static const uint8_t zeros[64];
    assert_int_equal(wal_scan_segment(zeros, sizeof zeros, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_NO_HEADER);
    img[3] ^= 0xff;
    assert_int_equal(wal_scan_segment(img, off, 7, -1, NULL, NULL, &res), MOM_OK);
    assert_int_equal(res.status, WAL_SCAN_BAD_HEADER);
    assert_int_equal(res.damaged_end, off);
    img[3] ^= 0xff;
    /* the callback's error stops the scan at that record */
    wal_segment_header_encode(img, 98);
    off = WAL_SEGMENT_HDR;
    off += wal_record_encode(img + off, 1, 98, (const uint8_t *)"x", 1);
    size_t second = off;
    off += wal_record_encode(img + off, 1, 99, (const uint8_t *)"y", 1);
    n = 0;
    assert_int_equal(wal_scan_segment(img, off, 98, -1, count_records, &n, &res), MOM_ERR_NOMEM);
    assert_int_equal(n, 1);
    assert_int_equal(res.good, second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_rotation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_rotation_prealloc, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crc_mismatch_last_record_cut, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_earlier_segment_corrupt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_segment_and_bad_header, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_index_gap, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncate_after_then_append, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_compact, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reset, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_read_and_term_at, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_rlimit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_new_segment, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_zeroed_last_segment, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prealloc_zero_tail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sync_fd_and_rotation, fx_setup, fx_teardown),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_scan_segment_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
