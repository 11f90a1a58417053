/* Queues of the store: create/delete, publish, receive (leases), ack, nack,
 * extend, the release of a closed queue stream's leases, the lazy advance of a queue's clock (lease
 * ends, delays, TTL, dead-lettering) and the queue reads. Layout and invariants are in
 * store_internal.h. Every command that touches a queue first advances it
 * to the command's time, so its answer never depends on when Tick ran.
 *
 * A Command names a lease as "<incarnation>.<seq>.<delivery_count>" in hex:
 * unique per lease (a new lease of the same message has a higher delivery
 * count, a re-created queue another incarnation) and checked against the
 * live lease. Clients see it inside a MAC'd receipt (broker/receipt.h),
 * checked by the handler before the Command is proposed; a whole receipt
 * (the lease and its MAC, as a queue stream's release holds them) names the
 * same lease here, its MAC ignored: apply never needs the receipt key.
 * SPDX-License-Identifier: MIT */
#include "broker/store_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QBIT(n) (1u << (n))

/* ---- message structures ---- */

static int seq_cmp(const void *a, const void *b)
{
    const struct qmsg *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int due_cmp(const void *a, const void *b)
{
    const struct qmsg *x = a, *y = b;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    return seq_cmp(a, b);
}

static void msg_setpos(void *item, size_t pos)
{
    ((struct qmsg *)item)->heap_pos = (uint32_t)pos;
}

struct queue *queue_find(const struct store *s, const char *name)
{
    return hashmap_get_str(s->queues, name);
}

bool store_queue_exists(const struct store *s, const char *queue)
{
    return queue_find(s, queue) != NULL;
}

size_t queue_stored(const struct queue *q)
{
    return q->fifo_len + q->ready.len + q->delayed.len + q->leased.len;
}

void queue_free_message(struct store *s, struct qmsg *m)
{
    strtab_release(s->strs, m->content_type);
    strtab_release(s->strs, m->publisher);
    s->messages--;
    s->bytes -= m->body_len;
    free(m);
}

static void fifo_append(struct queue *q, struct qmsg *m)
{
    m->next = NULL;
    m->state = QMSG_READY;
    if (q->fifo_tail)
        q->fifo_tail->next = m;
    else
        q->fifo_head = m;
    q->fifo_tail = m;
    q->fifo_len++;
}

static struct qmsg *fifo_pop(struct queue *q)
{
    struct qmsg *m = q->fifo_head;
    if (!m)
        return NULL;
    q->fifo_head = m->next;
    if (!q->fifo_head)
        q->fifo_tail = NULL;
    q->fifo_len--;
    m->next = NULL;
    return m;
}

/* The visible message with the lowest seq, removed from its structure. */
static struct qmsg *take_ready(struct queue *q)
{
    struct qmsg *h = q->fifo_head;
    struct qmsg *t = heap_peek(&q->ready);
    if (h && (!t || h->seq < t->seq))
        return fifo_pop(q);
    return t ? heap_pop(&q->ready) : NULL;
}

/* Pushes onto one of the queue's heaps; an allocation failure loses the
 * message and marks the apply as out of memory. */
static bool push_or_drop(struct store *s, struct heap *h, struct qmsg *m)
{
    if (heap_push(h, m) == MOM_OK)
        return true;
    log_error("store: out of memory, message %016" PRIx64 " lost", m->id);
    queue_free_message(s, m);
    s->oom = true;
    return false;
}

static void make_ready(struct store *s, struct queue *q, struct qmsg *m)
{
    m->state = QMSG_READY;
    m->next = NULL;
    push_or_drop(s, &q->ready, m);
}

static void make_delayed(struct store *s, struct queue *q, struct qmsg *m, uint64_t visible_at)
{
    m->state = QMSG_DELAYED;
    m->due = visible_at < m->expires_at ? visible_at : m->expires_at;
    push_or_drop(s, &q->delayed, m);
}

static uint64_t add_ms(uint64_t t, uint64_t ms)
{
    return t > STORE_NO_TIME - 1 - ms ? STORE_NO_TIME - 1 : t + ms;
}

static uint64_t expiry_for(const struct queue *q, uint64_t now)
{
    return q->message_ttl_ms ? add_ms(now, q->message_ttl_ms) : STORE_NO_TIME;
}

void queue_refresh_deadline(struct store *s, struct queue *q)
{
    uint64_t d = STORE_NO_TIME;
    const struct qmsg *m;
    if ((m = heap_peek(&q->leased)) && m->due < d)
        d = m->due;
    if ((m = heap_peek(&q->delayed)) && m->due < d)
        d = m->due;
    if ((m = q->fifo_head) && m->expires_at < d)
        d = m->expires_at;
    if ((m = heap_peek(&q->ready)) && m->expires_at < d)
        d = m->expires_at;
    store_set_deadline(s, &q->res, d);
}

/* Moves m (taken out of q) to q's dead-letter queue with a new seq and
 * delivery count 0, or drops it when that queue does not exist. */
static void dead_letter(struct store *s, struct queue *q, struct qmsg *m, uint64_t now)
{
    if (!q->dead_letter_queue) {
        queue_free_message(s, m);
        return;
    }
    struct queue *d = queue_find(s, q->dead_letter_queue);
    if (!d || d == q) {
        s->dropped_no_dlq++;
        queue_free_message(s, m);
        return;
    }
    /* Dead-lettering is never refused by max_length: it is not a client's
     * publish that could be retried. */
    m->seq = d->next_seq++;
    m->delivery_count = 0;
    m->expires_at = expiry_for(d, now);
    fifo_append(d, m);
    queue_refresh_deadline(s, d);
    store_notify(s, STORE_QUEUE_READY, d->res.name);
}

/* Ends m's lease (m already out of the lease heap and map): drop when its
 * TTL passed, dead-letter after max_deliveries, else back to its position
 * (after delay_ms when non-zero). Returns whether it became visible. */
static bool end_lease(struct store *s, struct queue *q, struct qmsg *m, uint64_t now,
                      uint64_t delay_ms)
{
    if (m->expires_at <= now) {
        queue_free_message(s, m);
        return false;
    }
    if (q->max_deliveries && m->delivery_count >= q->max_deliveries) {
        q->dead_lettered++;
        dead_letter(s, q, m, now);
        return false;
    }
    if (delay_ms) {
        make_delayed(s, q, m, add_ms(now, delay_ms));
        return false;
    }
    make_ready(s, q, m);
    return true;
}

static void unlease(struct queue *q, struct qmsg *m)
{
    heap_remove(&q->leased, m->heap_pos);
    hashmap_remove(q->leases, &m->seq, sizeof m->seq);
}

void queue_advance(struct store *s, struct queue *q, uint64_t now)
{
    bool ready = false, ended = false;
    struct qmsg *m;
    /* Lease ends in (due, seq) order: dead-letters get their DLQ seqs in it. */
    while ((m = heap_peek(&q->leased)) && m->due <= now) {
        unlease(q, m);
        ready |= end_lease(s, q, m, now, 0);
        ended = true;
    }
    while ((m = heap_peek(&q->delayed)) && m->due <= now) {
        heap_pop(&q->delayed);
        if (m->expires_at <= now) {
            queue_free_message(s, m);
        } else {
            make_ready(s, q, m);
            ready = true;
        }
    }
    /* Expired ready messages are a seq prefix of the FIFO and of the heap. */
    while (q->fifo_head && q->fifo_head->expires_at <= now)
        queue_free_message(s, fifo_pop(q));
    while ((m = heap_peek(&q->ready)) && m->expires_at <= now)
        queue_free_message(s, heap_pop(&q->ready));
    queue_refresh_deadline(s, q);
    if (ready)
        store_notify(s, STORE_QUEUE_READY, q->res.name);
    if (ended)
        store_notify(s, STORE_LEASES_ENDED, q->res.name);
}

/* ---- lifecycle ---- */

struct queue *queue_new(const char *name, const char *owner, uint64_t created_at,
                        uint64_t incarnation, const mom_v1_QueueSettings *st)
{
    struct queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    uint32_t present = st ? st->present : 0;
    if (store_resource_init(&q->res, RES_QUEUE, name, owner, created_at, incarnation,
                            (present & QBIT(6)) && st->private_access) != MOM_OK) {
        free(q);
        return NULL;
    }
    q->visibility_timeout_ms =
        (present & QBIT(1)) ? st->visibility_timeout_ms : STORE_DEFAULT_VISIBILITY_MS;
    q->max_deliveries = (present & QBIT(2)) ? st->max_deliveries : 0;
    q->max_length = (present & QBIT(4)) ? st->max_length : 0;
    q->message_ttl_ms = (present & QBIT(5)) ? st->message_ttl_ms : 0;
    q->next_seq = 1;
    heap_init(&q->ready, seq_cmp, msg_setpos);
    heap_init(&q->delayed, due_cmp, msg_setpos);
    heap_init(&q->leased, due_cmp, msg_setpos);
    q->leases = hashmap_new();
    bool dlq_ok = true;
    if ((present & QBIT(3)) && st->dead_letter_queue[0]) {
        q->dead_letter_queue = strdup(st->dead_letter_queue);
        dlq_ok = q->dead_letter_queue != NULL;
    }
    if (!q->leases || !dlq_ok) {
        hashmap_free(q->leases);
        free(q->dead_letter_queue);
        store_resource_cleanup(&q->res);
        free(q);
        return NULL;
    }
    return q;
}

static void free_heap_messages(struct store *s, struct heap *h)
{
    for (size_t i = 0; i < h->len; i++)
        queue_free_message(s, h->items[i]);
    heap_cleanup(h);
}

void queue_destroy(struct store *s, struct queue *q)
{
    store_remove_resource(s, &q->res);
    struct qmsg *m;
    while ((m = fifo_pop(q)))
        queue_free_message(s, m);
    free_heap_messages(s, &q->ready);
    free_heap_messages(s, &q->delayed);
    free_heap_messages(s, &q->leased);
    hashmap_free(q->leases);
    free(q->dead_letter_queue);
    store_resource_cleanup(&q->res);
    free(q);
}

int queue_restore_message(struct store *s, struct queue *q, struct qmsg *m)
{
    if (m->seq == 0 || m->seq >= q->next_seq)
        return MOM_ERR_CORRUPT;
    switch (m->state) {
    case QMSG_READY:
        /* The writer emits ready messages in seq order: all go to the FIFO. */
        if (q->fifo_tail && q->fifo_tail->seq >= m->seq)
            return MOM_ERR_CORRUPT;
        fifo_append(q, m);
        break;
    case QMSG_DELAYED:
        if (heap_push(&q->delayed, m) != MOM_OK)
            return MOM_ERR_NOMEM;
        break;
    case QMSG_LEASED:
        if (hashmap_get(q->leases, &m->seq, sizeof m->seq))
            return MOM_ERR_CORRUPT;
        if (heap_push(&q->leased, m) != MOM_OK)
            return MOM_ERR_NOMEM;
        if (hashmap_put(q->leases, &m->seq, sizeof m->seq, m) != MOM_OK) {
            heap_remove(&q->leased, m->heap_pos);
            return MOM_ERR_NOMEM;
        }
        break;
    default: return MOM_ERR_CORRUPT;
    }
    s->messages++;
    s->bytes += m->body_len;
    return MOM_OK;
}

/* ---- lookups shared by the commands ---- */

/* The queue named, or NULL with r holding the error (not found, or
 * private and who may not do `right`). */
static struct queue *usable_queue(const struct store *s, const char *name,
                                  const struct store_caller *who, enum acl_right right,
                                  struct reply *r)
{
    struct queue *q = queue_find(s, name);
    if (!q) {
        render_error(r, API_ERR_QUEUE_NOT_FOUND, "queue '%s' does not exist", name);
        return NULL;
    }
    if (!store_may(&q->res, who, right)) {
        store_forbidden(r, &q->res, right);
        return NULL;
    }
    return q;
}

/* The queue a consuming command names, advanced to now, or NULL with r
 * holding the error. */
static struct queue *lookup(struct store *s, const char *name, uint64_t now,
                            const struct command *cmd, struct reply *r)
{
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    struct queue *q = usable_queue(s, name, &who, ACL_CONSUME, r);
    if (q)
        queue_advance(s, q, now);
    return q;
}

static bool parse_hex(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    const char *s = *p;
    for (;; s++, n++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else
            break;
        if (n == 16)
            return false;
        v = v << 4 | d;
    }
    if (n == 0)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* The live lease a receipt names, or NULL (ended, acked, never issued, garbage). */
static struct qmsg *find_lease(const struct queue *q, const char *receipt, uint64_t now)
{
    uint64_t inc, seq, count;
    const char *p = receipt;
    if (!parse_hex(&p, &inc) || *p++ != '.' || !parse_hex(&p, &seq) || *p++ != '.' ||
        !parse_hex(&p, &count))
        return NULL;
    /* the lease alone, or a whole receipt: a MAC's worth of base64url */
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (*p != '\0' && (*p != '.' || strlen(p + 1) != RECEIPT_MAC_CHARS ||
                       strspn(p + 1, b64url) != RECEIPT_MAC_CHARS))
        return NULL;
    if (inc != q->res.incarnation)
        return NULL;
    struct qmsg *m = hashmap_get(q->leases, &seq, sizeof seq);
    if (!m || m->delivery_count != count || m->due <= now)
        return NULL;
    return m;
}

/* What ack, nack and extend share: the queue (advanced to now) and the
 * live lease the receipt names, or NULL with r holding the error (queue not
 * found, private, or receipt expired). */
static struct qmsg *lease_lookup(struct store *s, const char *queue, const char *receipt,
                                 uint64_t now, const struct command *cmd, struct reply *r,
                                 struct queue **qout)
{
    struct queue *q = lookup(s, queue, now, cmd, r);
    if (!q)
        return NULL;
    struct qmsg *m = find_lease(q, receipt, now);
    if (!m) {
        render_error(r, API_ERR_RECEIPT_EXPIRED, "the receipt is not a live lease");
        return NULL;
    }
    *qout = q;
    return m;
}

/* ---- commands ---- */

static bool settings_match(const struct queue *q, const mom_v1_QueueSettings *st)
{
    uint32_t p = st->present;
    const char *dlq = q->dead_letter_queue ? q->dead_letter_queue : "";
    return (!(p & QBIT(1)) || st->visibility_timeout_ms == q->visibility_timeout_ms) &&
           (!(p & QBIT(2)) || st->max_deliveries == q->max_deliveries) &&
           (!(p & QBIT(3)) || strcmp(st->dead_letter_queue, dlq) == 0) &&
           (!(p & QBIT(4)) || st->max_length == q->max_length) &&
           (!(p & QBIT(5)) || st->message_ttl_ms == q->message_ttl_ms) &&
           (!(p & QBIT(6)) || st->private_access == q->res.private_access);
}

int queue_apply_create(struct store *s, uint64_t index, uint64_t now, const struct command *cmd,
                       struct reply *r)
{
    const mom_v1_CreateQueue *c = &cmd->pb.kind.create_queue;
    mom_v1_QueueSettings none = mom_v1_QueueSettings_init_zero;
    const mom_v1_QueueSettings *st = c->has_settings ? &c->settings : &none;
    if (!c->name[0]) {
        render_error(r, API_ERR_BAD_REQUEST, "queue name is empty");
        return MOM_OK;
    }
    if ((st->present & QBIT(3)) && strcmp(st->dead_letter_queue, c->name) == 0) {
        render_error(r, API_ERR_BAD_REQUEST, "a queue cannot be its own dead_letter_queue");
        return MOM_OK;
    }
    if ((st->present & QBIT(1)) && st->visibility_timeout_ms > STORE_MAX_VISIBILITY_MS) {
        render_error(r, API_ERR_BAD_REQUEST, "visibility_timeout_ms must be 0..%u",
                     STORE_MAX_VISIBILITY_MS);
        return MOM_OK;
    }
    struct queue *q = queue_find(s, c->name);
    if (q) {
        if (!settings_match(q, st)) {
            render_error(r, API_ERR_CONFLICT, "queue '%s' exists with other settings", c->name);
            return MOM_OK;
        }
        return render_queue_answer(r, q, false);
    }
    q = queue_new(c->name, cmd->pb.user, now, index, st);
    if (!q)
        return MOM_ERR_NOMEM;
    if (store_add_resource(s, &q->res) != MOM_OK) {
        queue_destroy(s, q);
        return MOM_ERR_NOMEM;
    }
    return render_queue_answer(r, q, true);
}

int queue_apply_delete(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    (void)now;
    const char *name = cmd->pb.kind.delete_queue.name;
    struct queue *q = queue_find(s, name);
    if (!store_may_delete(q ? &q->res : NULL, "queue", API_ERR_QUEUE_NOT_FOUND, name, cmd, r))
        return MOM_OK;
    queue_destroy(s, q);
    store_deleted(s, STORE_QUEUE_DELETED, name, r);
    return MOM_OK;
}

/* Builds the messages of a publish, linked through ->next, before anything
 * changes (all or nothing). */
static int build_messages(struct store *s, uint64_t index, uint64_t now, const struct queue *q,
                          const struct command *cmd, struct qmsg **out)
{
    struct qmsg *head = NULL, **tail = &head;
    uint32_t publisher;
    if (strtab_intern(s->strs, cmd->pb.user, strnlen(cmd->pb.user, sizeof cmd->pb.user - 1),
                      &publisher) != MOM_OK)
        return MOM_ERR_NOMEM;
    int rc = MOM_OK;
    uint32_t ct = 0; /* the previous item's content type */
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        if (it->body_len >= STORE_MAX_MESSAGE_BODY) {
            rc = MOM_ERR_TOO_LARGE;
            break;
        }
        struct qmsg *m = malloc(offsetof(struct qmsg, body) + it->body_len);
        if (!m) {
            rc = MOM_ERR_NOMEM;
            break;
        }
        if (store_intern_item_content_type(s, cmd, i, &ct) != MOM_OK) {
            free(m);
            rc = MOM_ERR_NOMEM;
            break;
        }
        m->content_type = ct;
        strtab_ref(s->strs, publisher);
        m->publisher = publisher;
        m->next = NULL;
        m->seq = 0;
        m->id = store_message_id(index, i);
        m->published_at = now;
        m->expires_at = expiry_for(q, now);
        m->heap_pos = 0;
        m->body_len = (uint32_t)it->body_len;
        m->delivery_count = 0;
        m->state = QMSG_READY;
        if (it->body_len)
            memcpy(m->body, it->body, it->body_len);
        s->messages++;
        s->bytes += m->body_len;
        *tail = m;
        tail = &m->next;
    }
    strtab_release(s->strs, publisher);
    if (rc != MOM_OK) {
        while (head) {
            struct qmsg *next = head->next;
            queue_free_message(s, head);
            head = next;
        }
    }
    *out = head;
    return rc;
}

int queue_apply_publish(struct store *s, struct queue *q, uint64_t index, uint64_t now,
                        const struct command *cmd, struct reply *r)
{
    queue_advance(s, q, now);
    size_t n = cmd->item_count;
    if (q->max_length && queue_stored(q) + n > q->max_length) {
        render_error(r, API_ERR_QUEUE_FULL, "queue '%s' is full (max_length %" PRIu64 ")",
                     q->res.name, q->max_length);
        return MOM_OK;
    }
    size_t delayed = 0;
    for (size_t i = 0; i < n; i++)
        delayed += cmd->items[i].delay_ms != 0;
    if (heap_reserve(&q->delayed, q->delayed.len + delayed) != MOM_OK)
        return MOM_ERR_NOMEM;
    struct qmsg *list;
    int rc = build_messages(s, index, now, q, cmd, &list);
    if (rc != MOM_OK)
        return rc;
    uint64_t first_seq = q->next_seq;
    bool visible = false;
    q->published += n;
    for (size_t i = 0; i < n; i++) {
        struct qmsg *m = list;
        list = m->next;
        m->seq = q->next_seq++;
        if (cmd->items[i].delay_ms) {
            make_delayed(s, q, m, add_ms(now, cmd->items[i].delay_ms)); /* room reserved */
        } else {
            fifo_append(q, m);
            visible = true;
        }
    }
    queue_refresh_deadline(s, q);
    if (visible)
        store_notify(s, STORE_QUEUE_READY, q->res.name);
    return render_publish_ack(r, true, cmd->pb.kind.publish.batch, index, n, first_seq);
}

int queue_apply_receive(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    const mom_v1_Receive *rc = &cmd->pb.kind.receive;
    if (rc->has_visibility_timeout && rc->visibility_timeout_ms > STORE_MAX_VISIBILITY_MS) {
        render_error(r, API_ERR_BAD_REQUEST, "visibility_timeout_ms must be 0..%u",
                     STORE_MAX_VISIBILITY_MS);
        return MOM_OK;
    }
    struct queue *q = lookup(s, rc->queue, now, cmd, r);
    if (!q)
        return MOM_OK;
    uint32_t max = rc->max < 1 ? 1 : rc->max > 100 ? 100 : rc->max;
    uint64_t vt = rc->has_visibility_timeout ? rc->visibility_timeout_ms : q->visibility_timeout_ms;
    if (!rc->auto_ack && heap_reserve(&q->leased, q->leased.len + max) != MOM_OK)
        return MOM_ERR_NOMEM;
    struct render_list list;
    render_list_open(&list, "messages");
    for (uint32_t i = 0; i < max; i++) {
        struct qmsg *m = take_ready(q);
        if (!m)
            break;
        m->delivery_count++;
        if (rc->auto_ack) {
            if (r)
                render_list_queue_message(&list, s, q, m, false);
            q->acked++;
            queue_free_message(s, m);
            continue;
        }
        m->state = QMSG_LEASED;
        m->due = add_ms(now, vt);
        if (hashmap_put(q->leases, &m->seq, sizeof m->seq, m) != MOM_OK) {
            /* Give the message back untouched and answer with what we have. */
            m->delivery_count--;
            make_ready(s, q, m);
            s->oom = true;
            break;
        }
        heap_push(&q->leased, m); /* room reserved above */
        if (r)
            render_list_queue_message(&list, s, q, m, true);
    }
    queue_refresh_deadline(s, q);
    return render_list_close(&list, r);
}

int queue_apply_ack(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    const mom_v1_Ack *a = &cmd->pb.kind.ack;
    struct queue *q;
    struct qmsg *m = lease_lookup(s, a->queue, a->receipt, now, cmd, r, &q);
    if (!m)
        return MOM_OK;
    unlease(q, m);
    q->acked++;
    queue_free_message(s, m);
    queue_refresh_deadline(s, q);
    store_notify(s, STORE_LEASES_ENDED, q->res.name);
    render_no_content(r);
    return MOM_OK;
}

int queue_apply_nack(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    const mom_v1_Nack *a = &cmd->pb.kind.nack;
    if (a->delay_ms > STORE_MAX_DELAY_MS) {
        render_error(r, API_ERR_BAD_REQUEST, "delay_ms must be 0..%u", STORE_MAX_DELAY_MS);
        return MOM_OK;
    }
    struct queue *q;
    struct qmsg *m = lease_lookup(s, a->queue, a->receipt, now, cmd, r, &q);
    if (!m)
        return MOM_OK;
    unlease(q, m);
    bool ready = end_lease(s, q, m, now, a->delay_ms);
    queue_refresh_deadline(s, q);
    if (ready)
        store_notify(s, STORE_QUEUE_READY, q->res.name);
    store_notify(s, STORE_LEASES_ENDED, q->res.name);
    render_no_content(r);
    return MOM_OK;
}

int queue_apply_extend(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    const mom_v1_Extend *e = &cmd->pb.kind.extend;
    if (e->visibility_timeout_ms > STORE_MAX_VISIBILITY_MS) {
        render_error(r, API_ERR_BAD_REQUEST, "visibility_timeout_ms must be 0..%u",
                     STORE_MAX_VISIBILITY_MS);
        return MOM_OK;
    }
    struct queue *q;
    struct qmsg *m = lease_lookup(s, e->queue, e->receipt, now, cmd, r, &q);
    if (!m)
        return MOM_OK;
    m->due = add_ms(now, e->visibility_timeout_ms);
    heap_update(&q->leased, m->heap_pos);
    queue_refresh_deadline(s, q);
    render_no_content(r);
    return MOM_OK;
}

/* A queue stream closed: every receipt it still held that is a live lease
 * goes back as a nack without delay would. No access check: only the node
 * that served the stream proposes this, with receipts it was given, and it
 * can only make messages visible earlier. Answers 200 {"released": n}. */
int queue_apply_release(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    const char *name = cmd->pb.kind.release_leases.queue;
    struct queue *q = queue_find(s, name);
    if (!q) {
        render_error(r, API_ERR_QUEUE_NOT_FOUND, "queue '%s' does not exist", name);
        return MOM_OK;
    }
    queue_advance(s, q, now);
    char receipt[sizeof cmd->pb.kind.ack.receipt];
    bool ready = false;
    uint64_t released = 0;
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        if (it->body_len >= sizeof receipt)
            continue; /* longer than any receipt of ours */
        memcpy(receipt, it->body, it->body_len);
        receipt[it->body_len] = '\0';
        struct qmsg *m = find_lease(q, receipt, now);
        if (!m)
            continue;
        unlease(q, m);
        ready |= end_lease(s, q, m, now, 0);
        released++;
    }
    queue_refresh_deadline(s, q);
    if (ready)
        store_notify(s, STORE_QUEUE_READY, q->res.name);
    if (released)
        store_notify(s, STORE_LEASES_ENDED, q->res.name);
    return render_released(r, released);
}

/* ---- reads ---- */

bool store_lease_live(const struct store *s, const char *queue, const char *receipt,
                      uint64_t now_ms)
{
    const struct queue *q = queue_find(s, queue);
    return q && find_lease(q, receipt, now_ms) != NULL;
}

void store_list_queues(const struct store *s, const struct store_caller *who, struct reply *out)
{
    struct render_list list;
    render_list_open(&list, "queues");
    for (size_t i = 0; i < s->nqueues; i++)
        if (store_may(&s->queue_list[i]->res, who, ACL_ANY))
            render_list_queue(&list, s->queue_list[i]);
    (void)render_list_close(&list, out);
}

void store_get_queue(const struct store *s, const char *name, const struct store_caller *who,
                     struct reply *out)
{
    const struct queue *q = usable_queue(s, name, who, ACL_ANY, out);
    if (q)
        (void)render_queue_answer(out, q, false);
}

/* Whether some heap entry with due <= now satisfies ok(); visits only the
 * subtrees whose root is due (a heap's children are never due earlier). */
static bool heap_any_due(const struct heap *h, size_t pos, uint64_t now,
                         bool (*ok)(const struct queue *, const struct qmsg *, uint64_t),
                         const struct queue *q)
{
    if (pos >= h->len)
        return false;
    const struct qmsg *m = h->items[pos];
    if (m->due > now)
        return false;
    return ok(q, m, now) || heap_any_due(h, 2 * pos + 1, now, ok, q) ||
           heap_any_due(h, 2 * pos + 2, now, ok, q);
}

static bool delayed_visible(const struct queue *q, const struct qmsg *m, uint64_t now)
{
    (void)q;
    return m->expires_at > now;
}

static bool lease_requeues(const struct queue *q, const struct qmsg *m, uint64_t now)
{
    return m->expires_at > now && !(q->max_deliveries && m->delivery_count >= q->max_deliveries);
}

bool store_queue_has_visible(const struct store *s, const char *queue, uint64_t now_ms)
{
    const struct queue *q = queue_find(s, queue);
    if (!q)
        return false;
    /* TTL expiry grows with seq: the FIFO tail is its last to expire. */
    if (q->fifo_tail && q->fifo_tail->expires_at > now_ms)
        return true;
    for (size_t i = 0; i < q->ready.len; i++)
        if (((const struct qmsg *)q->ready.items[i])->expires_at > now_ms)
            return true;
    return heap_any_due(&q->delayed, 0, now_ms, delayed_visible, q) ||
           heap_any_due(&q->leased, 0, now_ms, lease_requeues, q);
}
