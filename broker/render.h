/* Every JSON answer of the API, and the text building under them.
 * The answer shapes (errors, publish acks, queue/topic/subscription objects,
 * message lists, tokens, health, the cluster view) are built here from the
 * store's state, node_status or plain values, so the store and the handlers
 * decide what to answer and only this module decides how it looks and which
 * success status it has.
 * Under them, struct jbuf: a growable buffer with escaped strings, integers,
 * RFC 3339 times and message bodies (UTF-8 text with "encoding":"utf-8" when
 * valid, else base64 with "encoding":"base64"). Allocation failure is
 * sticky: the first one sets oom and later appends do nothing, so callers
 * check once at the end.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_RENDER_H
#define MOM_BROKER_RENDER_H

#include "broker/api_error.h"
#include "broker/reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_status;

struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

void jbuf_init(struct jbuf *b);
void jbuf_cleanup(struct jbuf *b);
/* Appends n raw bytes. */
void jbuf_raw(struct jbuf *b, const char *s, size_t n);
/* Appends a NUL-terminated raw text (JSON punctuation and keys). */
void jbuf_lit(struct jbuf *b, const char *s);
/* Appends n bytes as a quoted JSON string. Valid UTF-8 is copied as is;
 * otherwise bytes >= 0x80 are escaped as \u00XX (read as Latin-1). */
void jbuf_str(struct jbuf *b, const char *s, size_t n);
/* Appends a quoted JSON string of a NUL-terminated text, or null for NULL. */
void jbuf_cstr(struct jbuf *b, const char *s);
void jbuf_u64(struct jbuf *b, uint64_t v);
/* Appends v in lowercase hex, zero-padded to at least width digits. */
void jbuf_hex(struct jbuf *b, uint64_t v, int width);
/* Appends a quoted RFC 3339 UTC time with milliseconds. */
void jbuf_time(struct jbuf *b, uint64_t ms);
/* Appends "body":...,"encoding":"utf-8"|"base64" (no surrounding commas). */
void jbuf_body(struct jbuf *b, const uint8_t *body, size_t len);
/* Hands the text to r with status. Returns MOM_OK, or MOM_ERR_NOMEM (r
 * untouched, buffer freed). r may be NULL (the text is dropped). */
int jbuf_finish(struct jbuf *b, struct reply *r, int status);

/* Whether len bytes are well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool render_utf8_valid(const uint8_t *s, size_t len);

/* ---- answer shapes ----
 * A function that fills a struct reply accepts NULL (a replica applying
 * without a waiting client builds nothing). On allocation failure it fills
 * the reply with 503 unavailable and returns MOM_ERR_NOMEM; else MOM_OK.
 * The store's structs are those of store_internal.h. */
struct store;
struct queue;
struct qmsg;
struct topic;
struct subscription;
struct user;
struct resource;

/* {"error":{"code","message"}} with the kind's status (api_error.c). */
void render_error(struct reply *r, enum api_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 204 without a body: delete, ack, nack, extend, subscription ack. */
void render_no_content(struct reply *r);
/* 201 answer of a publish of n messages, the first at seq/offset first,
 * with ids from the log index: {"id","seq"} (topics: "offset") for a single
 * publish, {"ids":[...],"seqs":[...]} (topics: "offsets") for a batch. */
int render_publish_ack(struct reply *r, bool queue, bool batch, uint64_t index, size_t n,
                       uint64_t first);
/* The GET shape of one resource: 201 when created, else 200. */
int render_queue_answer(struct reply *r, const struct queue *q, bool created);
int render_topic_answer(struct reply *r, const struct topic *t, bool created);
int render_subscription_answer(struct reply *r, const struct topic *t,
                               const struct subscription *sub, bool created);
/* 200 {"publish":[users],"consume":[users]}: a queue's or topic's ACL. */
int render_acl(struct reply *r, const struct resource *res);
/* 201 {"username","created_at"} of a registered user. */
int render_user_created(struct reply *r, const struct user *u);
/* {"messages":[...],"next_offset":end} of a topic's offsets start..end-1; 200. */
int render_topic_messages(struct reply *r, const struct store *s, const struct topic *t,
                          uint64_t start, uint64_t end);
/* One message of a topic list, {"offset","id","body","encoding",
 * "content_type","published_at","publisher"}: also a stream event's data. */
void render_topic_message(struct jbuf *b, const struct store *s, const struct topic *t,
                          uint64_t offset);
/* 200 {"access_token","token_type":"Bearer","expires_in"}. */
int render_token(struct reply *r, const char *token, uint64_t expires_in);
/* {"status":text}: 200 when ok, else 503 (health and readiness). */
int render_health(struct reply *r, bool ok, const char *text);
/* 200 {"released":n}: leases a closed queue stream gave back. */
int render_released(struct reply *r, uint64_t n);
/* The answer of a receive that found nothing, and a test for it. */
int render_empty_receive(struct reply *r);
bool render_is_empty_receive(const struct reply *r);

/* A list answer {"<key>":[items]}: open, add items, close (200). */
struct render_list {
    struct jbuf b;
    size_t n;
};
void render_list_open(struct render_list *l, const char *key);
void render_list_queue(struct render_list *l, const struct queue *q);
void render_list_topic(struct render_list *l, const struct topic *t);
void render_list_subscription(struct render_list *l, const struct topic *t,
                              const struct subscription *sub);
/* A queue message as receive lists it; receipt: its lease's receipt, else null. */
void render_list_queue_message(struct render_list *l, const struct store *s, const struct queue *q,
                               const struct qmsg *m, bool receipt);
int render_list_close(struct render_list *l, struct reply *r);

/* GET /v1/cluster: {"node_id","role","term","leader","commit_index",
 * "nodes":[{"id","address","role","match_index","last_contact_ms",
 * "healthy"}],"applied_index","abstaining"} with 200. Returns MOM_OK or
 * MOM_ERR_NOMEM (out then holds the 503 answer). */
int render_cluster(const struct node_status *st, struct reply *out);

#endif
