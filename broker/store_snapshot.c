/* Store snapshots: the whole state machine serialized to a FILE * and read
 * back, so a node can drop old log segments and a lagging follower can be
 * sent the state (InstallSnapshot).
 *
 * Format (version 3; versions 1 and 2 are read too). All integers little
 * endian; u8/u32/u64 are unsigned.
 *   str  = u32 length, then that many bytes (no NUL, none inside)
 *   blob = u32 length, then bytes; length 0xFFFFFFFF means "null" (no bytes)
 *
 *   header   "MOMSNAP\0" (8 bytes), u32 version (3; 2 lacks ACLS, 1 lacks
 *            QCNT and ACLS),
 *            u64 applied_index, u64 last_time, u64 dropped_no_dlq
 *   USERS    u32 tag 'USER' (0x52455355), u64 count, then per user (by
 *            name): str name, str password_hash, u64 created_at
 *   QUEUES   u32 tag 'QUEU', u64 count, then per queue (any order):
 *            str name, str owner, u64 created_at, u64 incarnation,
 *            u8 private, u64 visibility_timeout_ms, u32 max_deliveries,
 *            str dead_letter_queue ("" = none), u64 max_length,
 *            u64 message_ttl_ms, u64 next_seq, u64 message count, then per
 *            message: u8 state (0 ready, 1 delayed, 2 leased), u64 seq,
 *            u64 id, u64 published_at, u64 expires_at, u64 due (0 when ready),
 *            u32 delivery_count, str content_type, str publisher, blob body.
 *            Ready messages come first, in increasing seq order.
 *   TOPICS   u32 tag 'TOPC', u64 count, then per topic:
 *            str name, str owner, u64 created_at, u64 incarnation,
 *            u8 private, u64 retention_ms, u64 retention_messages,
 *            u64 retention_bytes, u64 first_offset, u64 message count, then
 *            per message in offset order: u64 id, u64 published_at,
 *            str content_type, str publisher, blob body; then u64
 *            subscription count, per subscription (by name): str name, str owner,
 *            u64 created_at, u64 cursor
 *   IDEM     u32 tag 'IDEM', u64 count, then per Idempotency-Key (oldest
 *            first): u8 kind (0 queue, 1 topic), str resource name, str key,
 *            u64 time, u32 status, blob body
 *   QCNT     (version 2) u32 tag 'QCNT', u64 count, then per queue in the
 *            QUEUES order: u64 published, u64 acked, u64 dead_lettered
 *            (the metrics counters, so that they survive a restart and a
 *            follower that installs the snapshot agrees with the leader)
 *   ACLS     (version 3) u32 tag 'ACLS', u64 count, then per queue or topic
 *            whose ACL has a user (queues by name, then topics by name):
 *            u8 kind (0 queue, 1 topic), str name, u32 publish count, str
 *            per user, u32 consume count, str per user (each list in
 *            strcmp order, no duplicates, at most 1000 valid names; an
 *            older snapshot reads as every ACL empty)
 *   END      u32 tag 'END!'
 *   trailer  u32 CRC32C (common/crc32c.h) of every byte before it
 *
 * Example start: 4d 4f 4d 53 4e 41 50 00 | 03 00 00 00 | <applied index>...
 * The reader consumes exactly the snapshot's bytes (nothing after the
 * trailer), checks every length against a bound and every structural rule
 * it can (sorted ready seqs, seq < next_seq, no duplicate names), then the
 * CRC; any failure leaves the store empty and returns MOM_ERR_CORRUPT (or
 * MOM_ERR_IO when the stream itself failed). A reader refuses other
 * versions; a format change bumps the version.
 * SPDX-License-Identifier: MIT */
#include "broker/router.h"
#include "broker/store_internal.h"

#include "common/crc32c.h"
#include "common/err.h"
#include "common/le.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC "MOMSNAP"
#define SNAP_VERSION 3u
#define SNAP_VERSION_NO_ACLS 2u
#define SNAP_VERSION_NO_QCNT 1u
#define TAG(a, b, c, d)                                                                            \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_USER TAG('U', 'S', 'E', 'R')
#define TAG_QUEUE TAG('Q', 'U', 'E', 'U')
#define TAG_TOPIC TAG('T', 'O', 'P', 'C')
#define TAG_IDEM TAG('I', 'D', 'E', 'M')
#define TAG_QCNT TAG('Q', 'C', 'N', 'T')
#define TAG_ACLS TAG('A', 'C', 'L', 'S')
#define TAG_END TAG('E', 'N', 'D', '!')
#define NULL_BLOB 0xFFFFFFFFu
#define MAX_NAME 128u
#define MAX_ACL_USERS COMMAND_ACL_MAX_USERS
#define MAX_SHORT 1024u     /* owners, keys, content types, hashes */
#define MAX_BODY (1u << 28) /* message bodies and remembered answers */

/* ---- writing ---- */

struct writer {
    FILE *f;
    uint32_t crc;
    bool failed;
};

static void w_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return;
    }
    w->crc = crc32c_update(w->crc, p, n);
}

static void w_u8(struct writer *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_u32(struct writer *w, uint32_t v)
{
    uint8_t b[4];
    le_put32(b, v);
    w_bytes(w, b, 4);
}

static void w_u64(struct writer *w, uint64_t v)
{
    uint8_t b[8];
    le_put64(b, v);
    w_bytes(w, b, 8);
}

static void w_strn(struct writer *w, const char *s, size_t n)
{
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}

static void w_str(struct writer *w, const char *s)
{
    w_strn(w, s ? s : "", s ? strlen(s) : 0);
}

static void w_interned(struct writer *w, const struct store *s, uint32_t id)
{
    size_t len;
    const char *str = strtab_get(s->strs, id, &len);
    w_strn(w, str, len);
}

static void w_qmsg(struct writer *w, const struct store *s, const struct qmsg *m)
{
    w_u8(w, m->state);
    w_u64(w, m->seq);
    w_u64(w, m->id);
    w_u64(w, m->published_at);
    w_u64(w, m->expires_at);
    w_u64(w, m->state == QMSG_READY ? 0 : m->due); /* a ready message's holds its link */
    w_u32(w, m->delivery_count);
    w_interned(w, s, m->content_type);
    w_interned(w, s, m->publisher);
    w_u32(w, m->body_len);
    w_bytes(w, m->body, m->body_len);
}

static int seq_order(const void *a, const void *b)
{
    const struct qmsg *x = *(const struct qmsg *const *)a;
    const struct qmsg *y = *(const struct qmsg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int write_queue(struct writer *w, const struct store *s, const struct queue *q)
{
    w_str(w, q->res.name);
    w_str(w, q->res.owner);
    w_u64(w, q->res.created_at);
    w_u64(w, q->res.incarnation);
    w_u8(w, q->res.private_access);
    w_u64(w, q->visibility_timeout_ms);
    w_u32(w, q->max_deliveries);
    w_str(w, q->dead_letter_queue);
    w_u64(w, q->max_length);
    w_u64(w, q->message_ttl_ms);
    w_u64(w, q->next_seq);
    w_u64(w, q->fifo_len + q->ready.len + q->delayed.len + q->leased.len);
    /* Ready messages in seq order: merge the FIFO with the sorted heap. */
    struct qmsg **ready = NULL;
    if (q->ready.len) {
        ready = malloc(q->ready.len * sizeof *ready);
        if (!ready)
            return MOM_ERR_NOMEM;
        memcpy(ready, q->ready.items, q->ready.len * sizeof *ready);
        qsort(ready, q->ready.len, sizeof *ready, seq_order);
    }
    const struct qmsg *f = q->fifo_head;
    size_t i = 0;
    while (f || i < q->ready.len) {
        if (f && (i == q->ready.len || f->seq < ready[i]->seq)) {
            w_qmsg(w, s, f);
            f = f->next;
        } else {
            w_qmsg(w, s, ready[i++]);
        }
    }
    free(ready);
    for (i = 0; i < q->delayed.len; i++)
        w_qmsg(w, s, q->delayed.items[i]);
    for (i = 0; i < q->leased.len; i++)
        w_qmsg(w, s, q->leased.items[i]);
    return MOM_OK;
}

/* Hash maps iterate in an order that depends on their random key, so the
 * snapshot lists map contents sorted: one state, one byte image. */
static int by_name(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* The values of m (each starting with its `char *name`) sorted by name;
 * malloc'd, NULL when m is empty or memory is short (*oom). */
static void **sorted_by_name(const struct hashmap *m, bool *oom)
{
    size_t n = hashmap_count(m), i = 0, it = 0;
    *oom = false;
    if (n == 0)
        return NULL;
    void **list = malloc(n * sizeof *list);
    if (!list) {
        *oom = true;
        return NULL;
    }
    void *v;
    while (hashmap_next(m, &it, NULL, NULL, &v))
        list[i++] = v;
    qsort(list, n, sizeof *list, by_name);
    return list;
}

static int write_topic(struct writer *w, const struct store *s, const struct topic *t)
{
    w_str(w, t->res.name);
    w_str(w, t->res.owner);
    w_u64(w, t->res.created_at);
    w_u64(w, t->res.incarnation);
    w_u8(w, t->res.private_access);
    w_u64(w, t->retention_ms);
    w_u64(w, t->retention_messages);
    w_u64(w, t->retention_bytes);
    w_u64(w, t->first_offset);
    w_u64(w, t->count);
    for (uint64_t off = t->first_offset; off < t->first_offset + t->count; off++) {
        const struct tmsg *m = topic_at(t, off);
        w_u64(w, m->id);
        w_u64(w, m->published_at);
        w_interned(w, s, m->content_type);
        w_interned(w, s, m->publisher);
        w_u32(w, m->body_len);
        w_bytes(w, m->body, m->body_len);
    }
    bool oom;
    void **subs = sorted_by_name(t->subs, &oom);
    if (oom)
        return MOM_ERR_NOMEM;
    w_u64(w, hashmap_count(t->subs));
    for (size_t i = 0; i < hashmap_count(t->subs); i++) {
        const struct subscription *sub = subs[i];
        w_str(w, sub->name);
        w_str(w, sub->owner);
        w_u64(w, sub->created_at);
        w_u64(w, sub->cursor);
    }
    free(subs);
    return MOM_OK;
}

static bool acl_empty(const struct resource *res)
{
    return res->acl[ACL_PUBLISH].count == 0 && res->acl[ACL_CONSUME].count == 0;
}

static void write_acl(struct writer *w, const struct resource *res)
{
    w_u8(w, res->kind);
    w_str(w, res->name);
    for (size_t l = 0; l < ACL_LISTS; l++) {
        w_u32(w, (uint32_t)res->acl[l].count);
        for (size_t i = 0; i < res->acl[l].count; i++)
            w_str(w, res->acl[l].users[i]);
    }
}

static void write_acls(struct writer *w, const struct store *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nqueues; i++)
        n += !acl_empty(&s->queue_list[i]->res);
    for (size_t i = 0; i < s->ntopics; i++)
        n += !acl_empty(&s->topic_list[i]->res);
    w_u32(w, TAG_ACLS);
    w_u64(w, n);
    for (size_t i = 0; i < s->nqueues; i++)
        if (!acl_empty(&s->queue_list[i]->res))
            write_acl(w, &s->queue_list[i]->res);
    for (size_t i = 0; i < s->ntopics; i++)
        if (!acl_empty(&s->topic_list[i]->res))
            write_acl(w, &s->topic_list[i]->res);
}

int store_snapshot_write(const struct store *s, FILE *f)
{
    struct writer w = {.f = f};
    w_bytes(&w, SNAP_MAGIC, 8); /* 7 letters and the NUL */
    w_u32(&w, SNAP_VERSION);
    w_u64(&w, s->applied_index);
    w_u64(&w, s->last_time);
    w_u64(&w, s->dropped_no_dlq);

    w_u32(&w, TAG_USER);
    bool oom;
    void **users = sorted_by_name(s->users, &oom);
    if (oom)
        return MOM_ERR_NOMEM;
    w_u64(&w, hashmap_count(s->users));
    for (size_t i = 0; i < hashmap_count(s->users); i++) {
        const struct user *u = users[i];
        w_str(&w, u->name);
        w_str(&w, u->password_hash);
        w_u64(&w, u->created_at);
    }
    free(users);

    w_u32(&w, TAG_QUEUE);
    w_u64(&w, s->nqueues);
    for (size_t i = 0; i < s->nqueues; i++)
        if (write_queue(&w, s, s->queue_list[i]) != MOM_OK)
            return MOM_ERR_IO;

    w_u32(&w, TAG_TOPIC);
    w_u64(&w, s->ntopics);
    for (size_t i = 0; i < s->ntopics; i++)
        if (write_topic(&w, s, s->topic_list[i]) != MOM_OK)
            return MOM_ERR_NOMEM;

    w_u32(&w, TAG_IDEM);
    uint64_t nidem = 0;
    for (const struct idem_entry *e = s->idem_head; e; e = e->next)
        nidem++;
    w_u64(&w, nidem);
    for (const struct idem_entry *e = s->idem_head; e; e = e->next) {
        w_u8(&w, e->res->kind);
        w_str(&w, e->res->name);
        w_str(&w, e->key);
        w_u64(&w, e->time);
        w_u32(&w, (uint32_t)e->answer.status);
        if (e->answer.body) {
            w_u32(&w, (uint32_t)e->answer.body_len);
            w_bytes(&w, e->answer.body, e->answer.body_len);
        } else {
            w_u32(&w, NULL_BLOB);
        }
    }
    w_u32(&w, TAG_QCNT);
    w_u64(&w, s->nqueues);
    for (size_t i = 0; i < s->nqueues; i++) {
        w_u64(&w, s->queue_list[i]->published);
        w_u64(&w, s->queue_list[i]->acked);
        w_u64(&w, s->queue_list[i]->dead_lettered);
    }
    write_acls(&w, s);
    w_u32(&w, TAG_END);

    uint32_t crc = w.crc;
    uint8_t trailer[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                          (uint8_t)(crc >> 24)};
    if (!w.failed && fwrite(trailer, 1, 4, f) != 4)
        w.failed = true;
    if (w.failed || fflush(f) != 0)
        return mom_err_from_errno(errno);
    return MOM_OK;
}

/* ---- reading ---- */

struct reader {
    FILE *f;
    uint32_t crc;
    int err; /* first error: MOM_ERR_IO or MOM_ERR_CORRUPT */
};

static bool r_bytes(struct reader *r, void *p, size_t n)
{
    if (r->err)
        return false;
    if (n == 0)
        return true;
    if (fread(p, 1, n, r->f) != n) {
        r->err = ferror(r->f) ? MOM_ERR_IO : MOM_ERR_CORRUPT;
        return false;
    }
    r->crc = crc32c_update(r->crc, p, n);
    return true;
}

static uint8_t r_u8(struct reader *r)
{
    uint8_t v = 0;
    r_bytes(r, &v, 1);
    return v;
}

static uint32_t r_u32(struct reader *r)
{
    uint8_t b[4] = {0};
    r_bytes(r, b, 4);
    return le_get32(b);
}

static uint64_t r_u64(struct reader *r)
{
    uint8_t b[8] = {0};
    r_bytes(r, b, 8);
    return le_get64(b);
}

static void corrupt(struct reader *r)
{
    if (!r->err)
        r->err = MOM_ERR_CORRUPT;
}

/* Reads a str of at most max bytes into a malloc'd NUL-terminated text
 * (NULL on error). */
static char *r_str(struct reader *r, size_t max)
{
    uint32_t n = r_u32(r);
    if (r->err)
        return NULL;
    if (n > max) {
        corrupt(r);
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        corrupt(r);
        return NULL;
    }
    if (!r_bytes(r, s, n) || memchr(s, '\0', n)) {
        corrupt(r);
        free(s);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

/* Reads a str into the string table (one reference taken). */
static bool r_interned(struct reader *r, struct store *s, uint32_t *id)
{
    char *str = r_str(r, MAX_SHORT);
    if (!str)
        return false;
    int rc = strtab_intern(s->strs, str, strlen(str), id);
    free(str);
    if (rc != MOM_OK) {
        corrupt(r);
        return false;
    }
    return true;
}

static bool check_tag(struct reader *r, uint32_t tag)
{
    if (r_u32(r) != tag)
        corrupt(r);
    return !r->err;
}

static int read_users(struct reader *r, struct store *s)
{
    uint64_t n = r_u64(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        char *name = r_str(r, MAX_NAME);
        char *hash = r_str(r, MAX_SHORT);
        uint64_t created = r_u64(r);
        if (!r->err && store_restore_user(s, name, hash, created) != MOM_OK)
            corrupt(r);
        free(name);
        free(hash);
    }
    return r->err;
}

static struct qmsg *read_qmsg(struct reader *r, struct store *s)
{
    uint8_t state = r_u8(r);
    uint64_t seq = r_u64(r), id = r_u64(r), published = r_u64(r);
    uint64_t expires = r_u64(r), due = r_u64(r);
    uint32_t count = r_u32(r);
    uint32_t ct, pub;
    if (r->err || !r_interned(r, s, &ct))
        return NULL;
    if (!r_interned(r, s, &pub)) {
        strtab_release(s->strs, ct);
        return NULL;
    }
    uint32_t len = r_u32(r);
    struct qmsg *m = NULL;
    if (!r->err && len <= MAX_BODY && state <= QMSG_LEASED)
        m = malloc(offsetof(struct qmsg, body) + len);
    if (!m || !r_bytes(r, m->body, len)) {
        corrupt(r);
        free(m);
        strtab_release(s->strs, ct);
        strtab_release(s->strs, pub);
        return NULL;
    }
    m->state = state & 3u; /* checked above */
    m->seq = seq;
    m->id = id;
    m->published_at = published;
    m->expires_at = expires;
    if (state == QMSG_READY)
        m->next = NULL;
    else
        m->due = due;
    m->heap_pos = 0;
    m->delivery_count = count;
    m->content_type = ct;
    m->publisher = pub;
    m->body_len = len;
    return m;
}

static void drop_qmsg(struct store *s, struct qmsg *m)
{
    strtab_release(s->strs, m->content_type);
    strtab_release(s->strs, m->publisher);
    free(m);
}

static int read_queue(struct reader *r, struct store *s)
{
    char *name = r_str(r, MAX_NAME);
    char *owner = r_str(r, MAX_SHORT);
    mom_v1_QueueSettings st = mom_v1_QueueSettings_init_zero;
    uint64_t created = r_u64(r), incarnation = r_u64(r);
    st.private_access = r_u8(r) != 0;
    st.visibility_timeout_ms = r_u64(r);
    st.max_deliveries = r_u32(r);
    char *dlq = r_str(r, MAX_NAME);
    st.max_length = r_u64(r);
    st.message_ttl_ms = r_u64(r);
    uint64_t next_seq = r_u64(r);
    uint64_t n = r_u64(r);
    struct queue *q = NULL;
    if (!r->err && name[0] && !queue_find(s, name) && next_seq >= 1) {
        memcpy(st.dead_letter_queue, dlq, strlen(dlq) + 1);
        st.present = 0x7eu; /* fields 1..6 */
        q = queue_new(name, owner, created, incarnation, &st);
        if (q && store_add_resource(s, &q->res) != MOM_OK) {
            queue_destroy(s, q);
            q = NULL;
        }
    }
    free(name);
    free(owner);
    free(dlq);
    if (!q) {
        corrupt(r);
        return r->err;
    }
    q->next_seq = next_seq;
    for (uint64_t i = 0; i < n && !r->err; i++) {
        struct qmsg *m = read_qmsg(r, s);
        if (!m)
            break;
        int rc = queue_restore_message(s, q, m);
        if (rc != MOM_OK) {
            drop_qmsg(s, m);
            corrupt(r);
        }
    }
    queue_refresh_deadline(s, q);
    return r->err;
}

static int read_topic(struct reader *r, struct store *s)
{
    char *name = r_str(r, MAX_NAME);
    char *owner = r_str(r, MAX_SHORT);
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    uint64_t created = r_u64(r), incarnation = r_u64(r);
    st.private_access = r_u8(r) != 0;
    st.retention_ms = r_u64(r);
    st.retention_messages = r_u64(r);
    st.retention_bytes = r_u64(r);
    st.present = 0x1eu; /* fields 1..4 */
    uint64_t first = r_u64(r);
    uint64_t n = r_u64(r);
    struct topic *t = NULL;
    if (!r->err && name[0] && !topic_find(s, name) && first <= UINT64_MAX - n) {
        t = topic_new(name, owner, created, incarnation, &st);
        if (t && store_add_resource(s, &t->res) != MOM_OK) {
            topic_destroy(s, t);
            t = NULL;
        }
    }
    free(name);
    free(owner);
    if (!t) {
        corrupt(r);
        return r->err;
    }
    t->first_offset = first;
    for (uint64_t i = 0; i < n && !r->err; i++) {
        uint64_t id = r_u64(r), published = r_u64(r);
        uint32_t ct, pub;
        if (r->err || !r_interned(r, s, &ct))
            break;
        if (!r_interned(r, s, &pub)) {
            strtab_release(s->strs, ct);
            break;
        }
        uint32_t len = r_u32(r);
        struct tmsg *m = NULL;
        if (!r->err && len <= MAX_BODY)
            m = malloc(offsetof(struct tmsg, body) + len);
        if (m && r_bytes(r, m->body, len)) {
            m->id = id;
            m->published_at = published;
            m->content_type = ct;
            m->publisher = pub;
            m->body_len = len;
            if (topic_append(s, t, m) == MOM_OK)
                continue;
        }
        corrupt(r);
        free(m);
        strtab_release(s->strs, ct);
        strtab_release(s->strs, pub);
    }
    uint64_t nsubs = r_u64(r);
    for (uint64_t i = 0; i < nsubs && !r->err; i++) {
        struct subscription *sub = calloc(1, sizeof *sub);
        if (!sub) {
            corrupt(r);
            break;
        }
        sub->name = r_str(r, MAX_NAME);
        sub->owner = r_str(r, MAX_SHORT);
        sub->created_at = r_u64(r);
        sub->cursor = r_u64(r);
        if (r->err || !sub->name[0] || topic_add_subscription(s, t, sub) != MOM_OK) {
            subscription_free(sub);
            corrupt(r);
        }
    }
    topic_refresh_deadline(s, t);
    return r->err;
}

static int read_idem(struct reader *r, struct store *s)
{
    uint64_t n = r_u64(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        uint8_t kind = r_u8(r);
        char *name = r_str(r, MAX_NAME);
        char *key = r_str(r, MAX_SHORT);
        uint64_t time = r_u64(r);
        uint32_t status = r_u32(r);
        uint32_t len = r_u32(r);
        struct reply answer = {0};
        if (!r->err && len != NULL_BLOB) {
            answer.body = len <= MAX_BODY ? malloc((size_t)len + 1) : NULL;
            if (!answer.body || !r_bytes(r, answer.body, len))
                corrupt(r);
            else
                answer.body[len] = '\0';
            answer.body_len = len;
        }
        answer.status = (int)status;
        struct resource *res = r->err ? NULL : resource_find(s, kind, name);
        if (!res || !reply_is_success(&answer) || !key[0] || hashmap_get_str(res->idem, key) ||
            store_idem_remember(s, res, key, time, &answer) != MOM_OK)
            corrupt(r);
        reply_cleanup(&answer);
        free(name);
        free(key);
    }
    return r->err;
}

/* The queues were read in QUEUES order into the sorted list; the counters
 * follow that same order, which was the list's order when written. */
static int read_queue_counters(struct reader *r, struct store *s)
{
    uint64_t n = r_u64(r);
    if (!r->err && n != s->nqueues)
        corrupt(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        struct queue *q = s->queue_list[i];
        q->published = r_u64(r);
        q->acked = r_u64(r);
        q->dead_lettered = r_u64(r);
    }
    return r->err;
}

/* One ACL list: at most MAX_ACL_USERS valid names in strictly increasing
 * order, handed to store_acl_set. */
static void read_acl_list(struct reader *r, struct resource *res, enum acl_right list)
{
    uint32_t n = r_u32(r);
    if (r->err)
        return;
    if (n > MAX_ACL_USERS) {
        corrupt(r);
        return;
    }
    char **users = n ? calloc(n, sizeof *users) : NULL;
    if (n && !users) {
        corrupt(r);
        return;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        users[i] = r_str(r, MAX_NAME);
        if (users[i] &&
            (!router_valid_name(users[i]) || (i > 0 && strcmp(users[i - 1], users[i]) >= 0)))
            corrupt(r);
    }
    if (!r->err && store_acl_set(res, list, (const char *const *)users, n) != MOM_OK)
        corrupt(r);
    for (uint32_t i = 0; i < n; i++)
        free(users[i]);
    free(users);
}

static int read_acls(struct reader *r, struct store *s)
{
    uint64_t n = r_u64(r);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        uint8_t kind = r_u8(r);
        char *name = r_str(r, MAX_NAME);
        struct resource *res = r->err ? NULL : resource_find(s, kind, name);
        free(name);
        /* each resource once, and never with an empty ACL */
        if (!res || !acl_empty(res)) {
            corrupt(r);
            break;
        }
        for (size_t l = 0; l < ACL_LISTS; l++)
            read_acl_list(r, res, (enum acl_right)l);
        if (!r->err && acl_empty(res))
            corrupt(r);
    }
    return r->err;
}

int store_snapshot_read(struct store *s, FILE *f)
{
    store_clear(s);
    struct reader r = {.f = f};
    char magic[8];
    if (r_bytes(&r, magic, 8) && memcmp(magic, SNAP_MAGIC, 8) != 0)
        corrupt(&r);
    uint32_t version = r.err ? 0 : r_u32(&r);
    if (!r.err && version != SNAP_VERSION && version != SNAP_VERSION_NO_ACLS &&
        version != SNAP_VERSION_NO_QCNT)
        corrupt(&r);
    uint64_t applied = r_u64(&r), last_time = r_u64(&r), dropped = r_u64(&r);
    if (check_tag(&r, TAG_USER))
        read_users(&r, s);
    if (check_tag(&r, TAG_QUEUE)) {
        uint64_t n = r_u64(&r);
        for (uint64_t i = 0; i < n && !r.err; i++)
            read_queue(&r, s);
    }
    if (check_tag(&r, TAG_TOPIC)) {
        uint64_t n = r_u64(&r);
        for (uint64_t i = 0; i < n && !r.err; i++)
            read_topic(&r, s);
    }
    if (check_tag(&r, TAG_IDEM))
        read_idem(&r, s);
    if (version >= SNAP_VERSION_NO_ACLS && check_tag(&r, TAG_QCNT))
        read_queue_counters(&r, s);
    if (version >= SNAP_VERSION && check_tag(&r, TAG_ACLS))
        read_acls(&r, s);
    check_tag(&r, TAG_END);
    uint32_t crc = r.crc;
    if (!r.err && r_u32(&r) != crc)
        corrupt(&r);
    if (r.err) {
        int err = r.err;
        store_clear(s);
        return err;
    }
    s->applied_index = applied;
    s->last_time = last_time;
    s->dropped_no_dlq = dropped;
    return MOM_OK;
}
