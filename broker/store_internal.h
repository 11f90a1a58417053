/* Internal layout of the store (broker/store.h), shared by its parts:
 * store.c (lifecycle, dispatch, users, idempotency, deadlines),
 * store_acl.c (access checks and ACLs), store_queue.c, store_topic.c,
 * store_snapshot.c and store_metrics.c, and read by render.c,
 * which builds the answers from these structs. Nothing else includes this
 * header.
 *
 * Invariants:
 * - A queue message is in exactly one place: the FIFO (ready, published in
 *   order), the ready heap (ready, returned out of order; by seq), the delay
 *   heap (by due = min(visible_at, expires_at), seq) or the lease heap (by
 *   due = lease end, seq; also in the leases map by seq). Receive takes the
 *   smaller seq of the FIFO head and the ready-heap top.
 * - Within a queue, expires_at never decreases with seq (the TTL is fixed
 *   per queue and counts from the time the message entered the queue), so
 *   expired ready messages are always a prefix of the FIFO and of the ready
 *   heap.
 * - Within a topic, published_at never decreases with the offset: apply
 *   stamps with max(Command.time_ms, last applied time) and topic_append
 *   raises a restored message's stamp to its predecessor's, so a time maps
 *   to an offset by binary search.
 * - Every heap has a total order, so the order of pops never depends on the
 *   heap's internal layout (which a snapshot does not preserve).
 * - A resource whose next deadline is finite sits in the store's deadline
 *   heap; Tick pops resources whose deadline passed, in (deadline, kind,
 *   name) order.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_STORE_INTERNAL_H
#define MOM_BROKER_STORE_INTERNAL_H

#include "broker/render.h"
#include "broker/store.h"
#include "common/hashmap.h"
#include "common/heap.h"
#include "common/strtab.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_IDEM_WINDOW_MS 300000u /* Idempotency-Key window */
#define STORE_DEFAULT_VISIBILITY_MS 30000u
#define STORE_MAX_VISIBILITY_MS 43200000u /* 12 h: extend and queue settings */
#define STORE_MAX_DELAY_MS 86400000u      /* Mom-Delay-Ms, nack delay_ms */
#define STORE_NO_TIME UINT64_MAX
#define STORE_NOT_IN_HEAP SIZE_MAX
#define STORE_DEFAULT_CONTENT_TYPE "application/octet-stream"

enum res_kind { RES_QUEUE = 0, RES_TOPIC = 1 };

/* What a caller wants to do with a queue or topic. */
enum acl_right {
    ACL_PUBLISH = 0, /* publish (single and batch) */
    ACL_CONSUME = 1, /* receive, ack/nack/extend, topic reads, subscriptions */
    ACL_ANY = 2,     /* either: see it in lists and GET it */
};
#define ACL_LISTS 2 /* the ACL's lists, indexed by ACL_PUBLISH and ACL_CONSUME */

/* One ACL list: distinct user names in strcmp order (binary-searched). */
struct acl_list {
    char **users; /* owned, each owned; NULL when empty */
    size_t count;
};

/* What queues and topics share. */
struct resource {
    char *name;  /* owned; also the key in the store's map */
    char *owner; /* owned */
    uint64_t created_at;
    uint64_t incarnation; /* log index of the creating command */
    bool private_access;
    struct acl_list acl[ACL_LISTS]; /* kept for public ones too, but only checked when private */
    uint8_t kind;                   /* enum res_kind */
    struct hashmap *idem;           /* key -> struct idem_entry; NULL until used */
    uint64_t deadline;              /* STORE_NO_TIME when none */
    size_t deadline_pos;            /* index in store.deadlines or STORE_NOT_IN_HEAP */
};

/* A remembered 2xx answer to a publish with an Idempotency-Key. */
struct idem_entry {
    struct idem_entry *prev, *next; /* the store's list, oldest first */
    struct resource *res;
    char *key; /* owned; key in res->idem */
    uint64_t time;
    struct reply answer;
};

enum qmsg_state { QMSG_READY = 0, QMSG_DELAYED = 1, QMSG_LEASED = 2 };

/* One queue message: header and body in one allocation. The header is 60
 * bytes, so a 100-byte message takes jemalloc's 160-byte class (with a
 * separate FIFO link and state byte it was 69 bytes and the 192 class:
 * 32 MB more for a million such messages). */
struct qmsg {
    /* A message is either in the FIFO (linked by next) or in a heap (the
     * delayed and lease heaps order by due; the ready heap uses neither),
     * never both, so the two share their bytes. due is meaningless while
     * the message is ready. */
    union {
        struct qmsg *next; /* FIFO link */
        uint64_t due;      /* lease end (leased) or min(visible_at, expires_at) (delayed) */
    };
    uint64_t seq; /* key in queue.leases while leased */
    uint64_t id;  /* (log index << 10) | item number */
    uint64_t published_at;
    uint64_t expires_at; /* TTL end or STORE_NO_TIME */
    uint32_t heap_pos;
    uint32_t body_len : 30; /* below STORE_MAX_MESSAGE_BODY */
    uint32_t state : 2;     /* enum qmsg_state */
    uint32_t delivery_count;
    uint32_t content_type; /* strtab id */
    uint32_t publisher;    /* strtab id */
    uint8_t body[];
};
/* What a message body can hold (the HTTP server accepts far less). */
#define STORE_MAX_MESSAGE_BODY (1u << 30)

struct queue {
    struct resource res; /* first member */
    uint64_t visibility_timeout_ms;
    uint32_t max_deliveries;
    char *dead_letter_queue; /* owned; NULL when none */
    uint64_t max_length;
    uint64_t message_ttl_ms;
    uint64_t next_seq; /* starts at 1 */
    struct qmsg *fifo_head, *fifo_tail;
    size_t fifo_len;
    struct heap ready;      /* returned messages by seq */
    struct heap delayed;    /* by (due, seq) */
    struct heap leased;     /* by (due, seq) */
    struct hashmap *leases; /* seq -> leased qmsg */
    /* Counted at apply and kept in snapshots, so every replica has the
     * same values at the same applied index (exported by /metrics). */
    uint64_t published;     /* messages stored by a publish */
    uint64_t acked;         /* removed by an ack or an ack=auto receive */
    uint64_t dead_lettered; /* reached max_deliveries (moved or dropped) */
};

/* One retained topic message; its offset is implied by its ring position. */
struct tmsg {
    uint64_t id;
    uint64_t published_at;
    uint32_t body_len;
    uint32_t content_type; /* strtab id */
    uint32_t publisher;    /* strtab id */
    uint8_t body[];
};

struct subscription {
    char *name;  /* owned; key in topic.subs */
    char *owner; /* owned */
    uint64_t created_at;
    uint64_t cursor; /* next offset to deliver (may lag below first_offset) */
};

struct topic {
    struct resource res; /* first member */
    uint64_t retention_ms, retention_messages, retention_bytes;
    uint64_t first_offset; /* offset of the oldest retained message */
    struct tmsg **ring;    /* ring[(head + i) & (cap - 1)] has offset first_offset + i */
    size_t ring_cap, ring_head, count;
    uint64_t bytes;
    struct hashmap *subs; /* name -> struct subscription */
};

struct user {
    char *name; /* owned; key in store.users */
    char *password_hash;
    uint64_t created_at;
};

struct store {
    struct hashmap *queues;    /* name -> struct queue */
    struct queue **queue_list; /* sorted by name */
    size_t nqueues, queue_cap;
    struct hashmap *topics;    /* name -> struct topic */
    struct topic **topic_list; /* sorted by name */
    size_t ntopics, topic_cap;
    struct hashmap *users; /* name -> struct user */
    struct strtab *strs;   /* content types and publishers */
    struct heap deadlines; /* struct resource by (deadline, kind, name) */
    struct idem_entry *idem_head, *idem_tail;
    uint64_t applied_index, last_time;
    uint64_t messages, bytes, dropped_no_dlq;
    bool oom; /* an allocation failed inside this apply (state may be lossy) */
    store_observer_fn observer;
    void *observer_arg;
    struct receipt_signer *signer; /* signs the receipts of receive answers; owned */
};

/* ---- store.c ----
 * Failures are answered with render_error(r, API_ERR_..., ...) and successes
 * with the render_* shapes: the store never names an HTTP status. */
void store_notify(struct store *s, enum store_change change, const char *name);
/* The queue or topic called name (kind RES_QUEUE or RES_TOPIC); NULL when
 * there is none or kind is neither. */
struct resource *resource_find(const struct store *s, unsigned kind, const char *name);
/* The queue or topic a command names, or NULL with r holding the 404. */
struct resource *store_lookup_resource(const struct store *s, bool is_queue, const char *name,
                                       struct reply *r);
/* The checks every queue or topic delete shares: not_found when res is
 * NULL, forbidden unless cmd's caller owns it or is an admin. Returns
 * whether it may be deleted; else r holds the error. noun is "queue"/"topic". */
bool store_may_delete(const struct resource *res, const char *noun, enum api_error not_found,
                      const char *name, const struct command *cmd, struct reply *r);
/* After a delete: tells the observer and answers with no content. */
void store_deleted(struct store *s, enum store_change change, const char *name, struct reply *r);
/* Sets (or clears, with STORE_NO_TIME) a resource's next deadline. */
void store_set_deadline(struct store *s, struct resource *r, uint64_t when);
/* Registers a new queue or topic (map, sorted list, deadline heap room). */
int store_add_resource(struct store *s, struct resource *r);
/* Unregisters it (map, list, deadline heap, idempotency keys); no free. */
void store_remove_resource(struct store *s, struct resource *r);
int store_resource_init(struct resource *r, uint8_t kind, const char *name, const char *owner,
                        uint64_t created_at, uint64_t incarnation, bool private_access);
void store_resource_cleanup(struct resource *r);
/* Idempotency entries: a live (within the window) answer, or NULL. */
const struct reply *store_idem_find(struct store *s, struct resource *r, const char *key,
                                    uint64_t now);
int store_idem_remember(struct store *s, struct resource *r, const char *key, uint64_t time,
                        const struct reply *answer);
/* Resets the store to empty (after a failed snapshot read). */
void store_clear(struct store *s);
/* Message ids: (log index << 10) | item number (rendered as 16 hex digits). */
uint64_t store_message_id(uint64_t index, size_t item);
/* Interns a content type ("" means application/octet-stream). */
int store_intern_content_type(struct store *s, const char *ct, uint32_t *id);
/* The same for item i of a publish, *id holding the id item i - 1 got: an
 * item with the previous item's content type (a batch's usual case) takes
 * another reference on that id without hashing the type again. */
int store_intern_item_content_type(struct store *s, const struct command *cmd, size_t i,
                                   uint32_t *id);
/* Users for the snapshot: restore one. */
int store_restore_user(struct store *s, const char *name, const char *hash, uint64_t created_at);

/* ---- store_acl.c ---- */
/* Whether who may do `right` with r: a public resource lets everyone; a
 * private one its owner, admins and the users on the right's ACL list
 * (ACL_ANY: on either list). */
bool store_may(const struct resource *r, const struct store_caller *who, enum acl_right right);
/* Delete and ACL permission: the owner or an admin. */
bool store_may_admin(const struct resource *r, const struct store_caller *who);
/* Fills r with the 403 answer for a caller refused `right` on res. */
void store_forbidden(struct reply *r, const struct resource *res, enum acl_right right);
/* Replaces one of res's ACL lists with users[0..n-1] (copied, sorted,
 * duplicates dropped). On MOM_ERR_NOMEM the list is unchanged. */
int store_acl_set(struct resource *res, enum acl_right list, const char *const *users, size_t n);
/* Frees both lists. */
void store_acl_cleanup(struct resource *res);
int store_apply_set_acl(struct store *s, const struct command *cmd, struct reply *r);

/* ---- store_queue.c ---- */
struct queue *queue_find(const struct store *s, const char *name);
/* Messages stored in q: ready, delayed and leased. */
size_t queue_stored(const struct queue *q);
void queue_destroy(struct store *s, struct queue *q); /* frees messages and q */
void queue_advance(struct store *s, struct queue *q, uint64_t now);
void queue_refresh_deadline(struct store *s, struct queue *q);
struct queue *queue_new(const char *name, const char *owner, uint64_t created_at,
                        uint64_t incarnation, const mom_v1_QueueSettings *settings);
/* Inserts a message at its seq position in the right structure for its
 * state (snapshot restore). Returns MOM_OK or MOM_ERR_NOMEM. */
int queue_restore_message(struct store *s, struct queue *q, struct qmsg *m);
void queue_free_message(struct store *s, struct qmsg *m);
int queue_apply_create(struct store *s, uint64_t index, uint64_t now, const struct command *cmd,
                       struct reply *r);
int queue_apply_delete(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int queue_apply_publish(struct store *s, struct queue *q, uint64_t index, uint64_t now,
                        const struct command *cmd, struct reply *r);
int queue_apply_receive(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int queue_apply_ack(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int queue_apply_nack(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int queue_apply_extend(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int queue_apply_release(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);

/* ---- store_topic.c ---- */
struct topic *topic_find(const struct store *s, const char *name);
/* The offset t's next message will get. */
uint64_t topic_next_offset(const struct topic *t);
/* The subscription's cursor, raised to the topic's first retained offset. */
uint64_t subscription_cursor(const struct topic *t, const struct subscription *sub);
/* t's subscriptions sorted by name (malloc'd array, *n entries); NULL with
 * *n == 0 when there are none or on allocation failure (*oom). */
struct subscription **topic_sorted_subs(const struct topic *t, size_t *n, bool *oom);
void topic_destroy(struct store *s, struct topic *t);
void topic_advance(struct store *s, struct topic *t, uint64_t now);
struct topic *topic_new(const char *name, const char *owner, uint64_t created_at,
                        uint64_t incarnation, const mom_v1_TopicSettings *settings);
/* Appends a retained message (publish and snapshot restore). */
int topic_append(struct store *s, struct topic *t, struct tmsg *m);
struct tmsg *topic_at(const struct topic *t, uint64_t offset);
void topic_refresh_deadline(struct store *s, struct topic *t);
int topic_apply_create(struct store *s, uint64_t index, uint64_t now, const struct command *cmd,
                       struct reply *r);
int topic_apply_delete(struct store *s, uint64_t now, const struct command *cmd, struct reply *r);
int topic_apply_publish(struct store *s, struct topic *t, uint64_t index, uint64_t now,
                        const struct command *cmd, struct reply *r);
int topic_apply_create_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r);
int topic_apply_delete_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r);
int topic_apply_subscription_ack(struct store *s, uint64_t now, const struct command *cmd,
                                 struct reply *r);
int topic_apply_seek_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                  struct reply *r);
/* The first offset of t whose message was published at or after time_ms
 * (binary search over the retained ring; published_at never decreases with
 * the offset). first_offset when every retained message qualifies,
 * topic_next_offset(t) when none does. */
uint64_t topic_offset_at_time(const struct topic *t, uint64_t time_ms);
/* Adds a subscription to a topic (create and snapshot restore). */
int topic_add_subscription(struct store *s, struct topic *t, struct subscription *sub);
void subscription_free(struct subscription *sub);

#endif
