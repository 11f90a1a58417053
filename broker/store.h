/* The broker's state machine: queues, topics, subscriptions, users and
 * idempotency keys, changed only by applying committed Commands in log
 * order. Apply is deterministic: it reads no clock (time comes from
 * Command.time_ms) and derives ids, receipts and offsets from the log index,
 * so every replica reaches the same state. Reads render JSON answers from
 * the current state without changing it. The store owns every message body.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_STORE_H
#define MOM_BROKER_STORE_H

#include "broker/command.h"
#include "broker/receipt.h"
#include "broker/reply.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct store;

/* Who asks: the authenticated caller of a read. */
struct store_caller {
    const char *user;
    bool admin;
};

enum store_change {
    STORE_QUEUE_READY,    /* a queue may have visible messages now */
    STORE_QUEUE_DELETED,  /* a queue was deleted */
    STORE_TOPIC_APPENDED, /* a topic got new messages */
    STORE_TOPIC_DELETED,  /* a topic (and its subscriptions) was deleted */
    STORE_LEASES_ENDED,   /* leases of a queue ended (ack, nack, release, expiry) */
};

/* Called during apply when something long-poll waiters care about changed.
 * Must not call back into store_apply. */
typedef void (*store_observer_fn)(void *arg, enum store_change change, const char *name);

/* A new empty store. It writes receipts under a random key until
 * store_set_receipt_key gives it the node's. NULL when out of memory. */
struct store *store_new(void);
/* Frees everything, message bodies included. Accepts NULL. */
void store_free(struct store *s);
void store_set_observer(struct store *s, store_observer_fn fn, void *arg);
/* The key of the receipts in receive answers (copied into the store's own
 * signer; broker/receipt.h). Returns MOM_OK or MOM_ERR_NOMEM (the store
 * keeps its previous key). */
int store_set_receipt_key(struct store *s, const struct receipt_key *key);

/* Applies the committed command at log index `index` (indexes strictly
 * increase). When out is non-NULL, fills the HTTP answer for the client
 * that proposed it (status and JSON body as docs/api.md shows). A command
 * that fails its checks (unknown queue, forbidden, receipt expired...) changes
 * nothing and answers with the error. Returns MOM_OK, or MOM_ERR_NOMEM. */
int store_apply(struct store *s, uint64_t index, const struct command *cmd, struct reply *out);

uint64_t store_applied_index(const struct store *s);
/* Highest Command.time_ms applied so far (0 at start): the leader stamps new
 * commands no lower than this. */
uint64_t store_last_time(const struct store *s);
/* Earliest command-clock time at which a Tick would change something (lease
 * end, delayed message becoming visible, TTL, age retention); UINT64_MAX if none. */
uint64_t store_next_deadline(const struct store *s);

/* ---- reads: fill out with the JSON answer (200 or an error) ---- */
void store_list_queues(const struct store *s, const struct store_caller *who, struct reply *out);
void store_get_queue(const struct store *s, const char *name, const struct store_caller *who,
                     struct reply *out);
void store_list_topics(const struct store *s, const struct store_caller *who, struct reply *out);
void store_get_topic(const struct store *s, const char *name, const struct store_caller *who,
                     struct reply *out);

/* Topic read. from_earliest/from_latest, an explicit offset, or
 * STORE_FROM_TIME with `offset` holding a time (ms since the epoch): the
 * first message published at or after it. max already clamped to 1..1000.
 * Sets *empty when the answer holds no message (the caller may long-poll and
 * read again). */
enum store_from { STORE_FROM_EARLIEST, STORE_FROM_LATEST, STORE_FROM_OFFSET, STORE_FROM_TIME };
void store_read_topic(const struct store *s, const char *topic, enum store_from from,
                      uint64_t offset, uint32_t max, const struct store_caller *who,
                      struct reply *out, bool *empty);
void store_list_subscriptions(const struct store *s, const char *topic,
                              const struct store_caller *who, struct reply *out);
void store_get_subscription(const struct store *s, const char *topic, const char *name,
                            const struct store_caller *who, struct reply *out);
/* GET /v1/subscriptions: the caller's subscriptions across topics. */
void store_list_user_subscriptions(const struct store *s, const struct store_caller *who,
                                   struct reply *out);
/* Messages from the subscription's cursor (stateless until acked). */
void store_read_subscription(const struct store *s, const char *topic, const char *name,
                             uint32_t max, const struct store_caller *who, struct reply *out,
                             bool *empty);

/* ---- access (store_acl.c) ----
 * A public queue or topic lets every authenticated caller publish and
 * consume; a private one its owner, admins and the users on its ACL's
 * publish or consume list. Consuming is receive, ack/nack/extend, topic
 * reads and every subscription read, ack and create (streams included).
 * These return whether who may; when not, out (may be NULL) holds the
 * answer: queue_not_found/topic_not_found (404) or forbidden (403). */
bool store_may_publish(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                       const struct store_caller *who, struct reply *out);
bool store_may_consume(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                       const struct store_caller *who, struct reply *out);
/* GET /v1/{queues|topics}/{name}/acl: {"publish":[users],"consume":[users]}
 * (sorted, distinct) for the owner or an admin, else 403; 404 unknown. */
void store_get_acl(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                   const struct store_caller *who, struct reply *out);

/* Whether a Receive at command-clock time now_ms could lease something
 * (the queue exists and has a visible message). */
bool store_queue_has_visible(const struct store *s, const char *queue, uint64_t now_ms);
/* Streams (broker/stream.c). Where a topic stream starts (from/offset as a
 * topic read takes them, STORE_FROM_TIME included), or a subscription stream (its cursor): false
 * with out holding the error (404, 403, 400 offset_out_of_range). */
bool store_topic_stream_start(const struct store *s, const char *topic, enum store_from from,
                              uint64_t offset, const struct store_caller *who, uint64_t *start,
                              struct reply *out);
bool store_subscription_stream_start(const struct store *s, const char *topic, const char *name,
                                     const struct store_caller *who, uint64_t *start,
                                     struct reply *out);
/* Hands fn each retained message of topic from *offset on (raised to the
 * first retained one) as the JSON object the message lists show, until fn
 * returns false or the end; *offset ends past the last one handed over.
 * subscription, when not NULL, must exist too. Returns MOM_OK,
 * MOM_ERR_NOTFOUND (the topic or subscription is gone) or MOM_ERR_NOMEM. */
typedef bool (*store_message_fn)(void *arg, uint64_t offset, const char *json, size_t len);
int store_topic_each(const struct store *s, const char *topic, const char *subscription,
                     uint64_t *offset, store_message_fn fn, void *arg);
/* Whether receipt names a live lease of queue at command-clock time now_ms
 * (false for an unknown queue, an ended, acked or never issued lease). A
 * queue stream counts its prefetch credit with it. */
bool store_lease_live(const struct store *s, const char *queue, const char *receipt,
                      uint64_t now_ms);
/* Whether the queue/topic exists (for long-poll bookkeeping). */
bool store_queue_exists(const struct store *s, const char *queue);
bool store_topic_exists(const struct store *s, const char *topic);
/* The offset the next message of topic will get; false when it does not exist. */
bool store_topic_next_offset(const struct store *s, const char *topic, uint64_t *out);
/* The first offset of topic whose message was published at or after time_ms
 * (a binary search over the retained messages): the first retained offset
 * when all qualify, the next offset when none does. False when the topic
 * does not exist. */
bool store_topic_offset_at_time(const struct store *s, const char *topic, uint64_t time_ms,
                                uint64_t *out);

/* The stored password hash of a registered user, or NULL. */
const char *store_user_password_hash(const struct store *s, const char *username);

/* Counters for /metrics and tests. */
struct store_stats {
    uint64_t queues, topics, subscriptions, users;
    uint64_t messages;       /* stored queue messages + retained topic messages */
    uint64_t bytes;          /* their body bytes */
    uint64_t dropped_no_dlq; /* dead-letters dropped because the DLQ was missing */
};
void store_get_stats(const struct store *s, struct store_stats *out);

/* ---- per-resource numbers for /metrics (store_metrics.c) ----
 * Queues and topics are indexed 0..count-1 in name order; an index past the
 * end returns false. The counters are counted at apply (see store_internal.h). */
struct store_queue_metrics {
    const char *name; /* valid until the next apply */
    uint64_t depth, in_flight, delayed;
    uint64_t published, acked, dead_lettered;
};
struct store_topic_metrics {
    const char *name;
    uint64_t messages, bytes; /* retained */
    uint64_t published;       /* every publish ever: the next offset */
    uint64_t subscriptions;
};
struct store_subscription_metrics {
    const char *name;
    uint64_t cursor, lag;
};
size_t store_queue_count(const struct store *s);
size_t store_topic_count(const struct store *s);
bool store_queue_metrics_at(const struct store *s, size_t i, struct store_queue_metrics *out);
bool store_topic_metrics_at(const struct store *s, size_t i, struct store_topic_metrics *out);
/* The subscriptions of topic i, in no particular order (start with *iter = 0). */
bool store_subscription_metrics_next(const struct store *s, size_t topic_i, size_t *iter,
                                     struct store_subscription_metrics *out);

/* ---- snapshots (docs/architecture.md, "Storage") ----
 * Writes the whole state (applied index, last time, everything above) to f
 * in the format documented in store_snapshot.c, ending with a CRC32C.
 * Returns MOM_OK, MOM_ERR_IO or MOM_ERR_NOSPACE. */
int store_snapshot_write(const struct store *s, FILE *f);
/* Replaces the state of an empty store with the snapshot read from f.
 * Returns MOM_OK, MOM_ERR_CORRUPT (bad CRC or structure) or MOM_ERR_IO. */
int store_snapshot_read(struct store *s, FILE *f);

#endif
