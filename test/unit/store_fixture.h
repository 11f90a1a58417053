/* Test fixture for the store's unit tests (test_store*.c): a store with a
 * command clock and log index under the test's control, an observer log,
 * command builders for every kind, and JSON helpers (cJSON) to check
 * answers. Header-only, included by the test files; not a test itself.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_TEST_STORE_FIXTURE_H
#define MOM_TEST_STORE_FIXTURE_H

/* Each test file uses a different subset of the helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <cmocka.h>

#include "broker/store.h"
#include "common/clock.h"
#include "common/err.h"

#define T0 1700000000000u /* 2023-11-14T22:13:20.000Z */

struct fx {
    struct store *s;
    uint64_t index;
    uint64_t now;
    char events[256][160];
    int nevents;
};

static void fx_observer(void *arg, enum store_change ch, const char *name)
{
    struct fx *f = arg;
    static const char *const kinds[] = {"ready", "qdel", "append", "tdel", "ended"};
    if (f->nevents < 256)
        snprintf(f->events[f->nevents++], sizeof f->events[0], "%s:%s", kinds[ch], name);
}

/* The receipt key of every fixture store. */
static const struct receipt_key FX_RECEIPT_KEY = {{7,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                   11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                   22, 23, 24, 25, 26, 27, 28, 29, 30, 31}};

/* What the ack handler does to a receipt the store wrote for queue: checks
 * its MAC and writes the lease it names (the Command's form) into out. */
static void fx_lease_of(const char *queue, const char *receipt, char out[65])
{
    struct receipt_signer *sg = receipt_signer_new(&FX_RECEIPT_KEY);
    assert_non_null(sg);
    struct receipt_lease l;
    bool ok = receipt_verify(sg, queue, receipt, strlen(receipt), &l);
    receipt_signer_free(sg);
    assert_true(ok);
    receipt_lease_text(&l, out);
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = store_new();
    assert_non_null(f->s);
    assert_int_equal(store_set_receipt_key(f->s, &FX_RECEIPT_KEY), MOM_OK);
    f->now = T0;
    store_set_observer(f->s, fx_observer, f);
    return f;
}

static void fx_free(struct fx *f)
{
    store_free(f->s);
    free(f);
}

static bool fx_saw(const struct fx *f, const char *event)
{
    for (int i = 0; i < f->nevents; i++)
        if (strcmp(f->events[i], event) == 0)
            return true;
    return false;
}

/* An answer: status, the raw body and its parsed JSON (NULL when no body). */
struct res {
    int status;
    char *text;
    cJSON *json;
};

static void res_free(struct res *r)
{
    free(r->text);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static struct res res_from(struct reply *rep)
{
    struct res r = {rep->status, NULL, NULL};
    if (rep->body) {
        r.text = strndup(rep->body, rep->body_len);
        r.json = cJSON_Parse(r.text);
        if (!r.json)
            fail_msg("invalid JSON: %s", r.text);
    }
    reply_cleanup(rep);
    return r;
}

static struct command cmd_new(const char *user, pb_size_t kind)
{
    struct command c;
    memset(&c, 0, sizeof c);
    snprintf(c.pb.user, sizeof c.pb.user, "%s", user);
    c.pb.which_kind = kind;
    return c;
}

/* Applies c at the fixture's time and next index; returns the answer. */
static struct res fx_run(struct fx *f, struct command *c)
{
    struct reply rep = {0};
    c->pb.time_ms = f->now;
    assert_int_equal(store_apply(f->s, ++f->index, c, &rep), MOM_OK);
    assert_true(store_applied_index(f->s) == f->index);
    return res_from(&rep);
}

/* Runs c and checks only the status. */
static void fx_expect(struct fx *f, struct command *c, int status)
{
    struct res r = fx_run(f, c);
    if (r.status != status)
        fail_msg("expected %d, got %d: %s", status, r.status, r.text ? r.text : "");
    res_free(&r);
}

static int fx_status(struct fx *f, struct command *c)
{
    struct res r = fx_run(f, c);
    int st = r.status;
    res_free(&r);
    return st;
}

/* ---- JSON helpers ---- */

static cJSON *jget(const cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("missing field '%s'", key);
    return v;
}

static uint64_t jint(const cJSON *o, const char *key)
{
    cJSON *v = jget(o, key);
    assert_true(cJSON_IsNumber(v));
    return (uint64_t)v->valuedouble;
}

static const char *jstr(const cJSON *o, const char *key)
{
    cJSON *v = jget(o, key);
    if (cJSON_IsNull(v))
        return NULL;
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static const char *jerr(const struct res *r)
{
    return jstr(jget(r->json, "error"), "code");
}

static cJSON *jmsgs(const struct res *r)
{
    cJSON *a = jget(r->json, "messages");
    assert_true(cJSON_IsArray(a));
    return a;
}

/* ---- command builders ---- */

static struct command c_create_queue(const char *user, const char *name,
                                     const mom_v1_QueueSettings *st)
{
    struct command c = cmd_new(user, mom_v1_Command_create_queue_tag);
    snprintf(c.pb.kind.create_queue.name, sizeof c.pb.kind.create_queue.name, "%s", name);
    if (st) {
        c.pb.kind.create_queue.has_settings = true;
        c.pb.kind.create_queue.settings = *st;
    }
    return c;
}

static struct command c_create_topic(const char *user, const char *name,
                                     const mom_v1_TopicSettings *st)
{
    struct command c = cmd_new(user, mom_v1_Command_create_topic_tag);
    snprintf(c.pb.kind.create_topic.name, sizeof c.pb.kind.create_topic.name, "%s", name);
    if (st) {
        c.pb.kind.create_topic.has_settings = true;
        c.pb.kind.create_topic.settings = *st;
    }
    return c;
}

static struct command c_delete(const char *user, bool topic, const char *name)
{
    struct command c =
        cmd_new(user, topic ? mom_v1_Command_delete_topic_tag : mom_v1_Command_delete_queue_tag);
    snprintf(c.pb.kind.delete_queue.name, sizeof c.pb.kind.delete_queue.name, "%s", name);
    return c;
}

/* A publish of one item; items live in the fixture-static array. */
static struct command_item fx_items[1001];

static struct command c_publish_n(const char *user, bool topic, const char *name, size_t n,
                                  const char *const *bodies, uint64_t delay_ms, const char *key)
{
    struct command c = cmd_new(user, mom_v1_Command_publish_tag);
    c.pb.kind.publish.kind = topic ? mom_v1_ResourceKind_TOPIC : mom_v1_ResourceKind_QUEUE;
    snprintf(c.pb.kind.publish.name, sizeof c.pb.kind.publish.name, "%s", name);
    if (key)
        snprintf(c.pb.kind.publish.idempotency_key, sizeof c.pb.kind.publish.idempotency_key, "%s",
                 key);
    for (size_t i = 0; i < n; i++) {
        memset(&fx_items[i], 0, sizeof fx_items[i]);
        const char *b = bodies ? bodies[i] : "m";
        fx_items[i].body = (const uint8_t *)b;
        fx_items[i].body_len = strlen(b);
        fx_items[i].delay_ms = delay_ms;
    }
    c.items = fx_items;
    c.item_count = n;
    c.pb.kind.publish.batch = n != 1;
    return c;
}

static struct command c_publish(const char *user, bool topic, const char *name, const char *body,
                                uint64_t delay_ms, const char *key)
{
    const char *bodies[1] = {body};
    return c_publish_n(user, topic, name, 1, bodies, delay_ms, key);
}

/* vt < 0: the queue's default visibility timeout. */
static struct command c_receive(const char *user, const char *queue, uint32_t max, int64_t vt,
                                bool auto_ack)
{
    struct command c = cmd_new(user, mom_v1_Command_receive_tag);
    snprintf(c.pb.kind.receive.queue, sizeof c.pb.kind.receive.queue, "%s", queue);
    c.pb.kind.receive.max = max;
    if (vt >= 0) {
        c.pb.kind.receive.has_visibility_timeout = true;
        c.pb.kind.receive.visibility_timeout_ms = (uint64_t)vt;
    }
    c.pb.kind.receive.auto_ack = auto_ack;
    return c;
}

static struct command c_ack(const char *user, const char *queue, const char *receipt)
{
    struct command c = cmd_new(user, mom_v1_Command_ack_tag);
    snprintf(c.pb.kind.ack.queue, sizeof c.pb.kind.ack.queue, "%s", queue);
    snprintf(c.pb.kind.ack.receipt, sizeof c.pb.kind.ack.receipt, "%s", receipt);
    return c;
}

static struct command c_nack(const char *user, const char *queue, const char *receipt,
                             uint64_t delay_ms)
{
    struct command c = cmd_new(user, mom_v1_Command_nack_tag);
    snprintf(c.pb.kind.nack.queue, sizeof c.pb.kind.nack.queue, "%s", queue);
    snprintf(c.pb.kind.nack.receipt, sizeof c.pb.kind.nack.receipt, "%s", receipt);
    c.pb.kind.nack.delay_ms = delay_ms;
    return c;
}

static struct command c_extend(const char *user, const char *queue, const char *receipt,
                               uint64_t vt)
{
    struct command c = cmd_new(user, mom_v1_Command_extend_tag);
    snprintf(c.pb.kind.extend.queue, sizeof c.pb.kind.extend.queue, "%s", queue);
    snprintf(c.pb.kind.extend.receipt, sizeof c.pb.kind.extend.receipt, "%s", receipt);
    c.pb.kind.extend.visibility_timeout_ms = vt;
    return c;
}

/* A ReleaseLeases of n receipts; items live in the fixture-static array. */
static struct command c_release(const char *user, const char *queue, const char *const *receipts,
                                size_t n)
{
    struct command c = cmd_new(user, mom_v1_Command_release_leases_tag);
    snprintf(c.pb.kind.release_leases.queue, sizeof c.pb.kind.release_leases.queue, "%s", queue);
    for (size_t i = 0; i < n; i++) {
        memset(&fx_items[i], 0, sizeof fx_items[i]);
        fx_items[i].body = (const uint8_t *)receipts[i];
        fx_items[i].body_len = strlen(receipts[i]);
    }
    c.items = fx_items;
    c.item_count = n;
    return c;
}

static struct command c_tick(void)
{
    return cmd_new("", mom_v1_Command_tick_tag);
}

static struct command c_sub(const char *user, const char *topic, const char *name, bool earliest)
{
    struct command c = cmd_new(user, mom_v1_Command_create_subscription_tag);
    snprintf(c.pb.kind.create_subscription.topic, sizeof c.pb.kind.create_subscription.topic, "%s",
             topic);
    snprintf(c.pb.kind.create_subscription.name, sizeof c.pb.kind.create_subscription.name, "%s",
             name);
    c.pb.kind.create_subscription.start_earliest = earliest;
    return c;
}

/* A subscription whose cursor starts at the first message published at or
 * after time_ms. */
static struct command c_sub_at(const char *user, const char *topic, const char *name,
                               uint64_t time_ms)
{
    struct command c = c_sub(user, topic, name, false);
    c.pb.kind.create_subscription.start_at_time = true;
    c.pb.kind.create_subscription.start_time_ms = time_ms;
    return c;
}

/* Seek to an offset, or (by_time) to a time. */
static struct command c_seek(const char *user, const char *topic, const char *name, bool by_time,
                             uint64_t value)
{
    struct command c = cmd_new(user, mom_v1_Command_seek_subscription_tag);
    snprintf(c.pb.kind.seek_subscription.topic, sizeof c.pb.kind.seek_subscription.topic, "%s",
             topic);
    snprintf(c.pb.kind.seek_subscription.name, sizeof c.pb.kind.seek_subscription.name, "%s", name);
    c.pb.kind.seek_subscription.by_time = by_time;
    if (by_time)
        c.pb.kind.seek_subscription.time_ms = value;
    else
        c.pb.kind.seek_subscription.offset = value;
    return c;
}

static struct command c_unsub(const char *user, const char *topic, const char *name)
{
    struct command c = cmd_new(user, mom_v1_Command_delete_subscription_tag);
    snprintf(c.pb.kind.delete_subscription.topic, sizeof c.pb.kind.delete_subscription.topic, "%s",
             topic);
    snprintf(c.pb.kind.delete_subscription.name, sizeof c.pb.kind.delete_subscription.name, "%s",
             name);
    return c;
}

static struct command c_sub_ack(const char *user, const char *topic, const char *name,
                                uint64_t offset)
{
    struct command c = cmd_new(user, mom_v1_Command_subscription_ack_tag);
    snprintf(c.pb.kind.subscription_ack.topic, sizeof c.pb.kind.subscription_ack.topic, "%s",
             topic);
    snprintf(c.pb.kind.subscription_ack.name, sizeof c.pb.kind.subscription_ack.name, "%s", name);
    c.pb.kind.subscription_ack.offset = offset;
    return c;
}

static struct command c_user(const char *name, const char *hash)
{
    struct command c = cmd_new("", mom_v1_Command_register_user_tag);
    snprintf(c.pb.kind.register_user.username, sizeof c.pb.kind.register_user.username, "%s", name);
    snprintf(c.pb.kind.register_user.password_hash, sizeof c.pb.kind.register_user.password_hash,
             "%s", hash);
    return c;
}

/* Adds the names of a comma list ("" = none) to a SetAcl list. */
static void users_from_csv(struct command_users *u, const char *csv)
{
    while (*csv) {
        size_t n = strcspn(csv, ",");
        assert_int_equal(command_users_add(u, csv, n), MOM_OK);
        csv += n + (csv[n] == ',');
    }
}

/* A SetAcl with malloc'd lists: free them with command_cleanup (fx_acl does). */
static struct command c_acl(const char *user, bool admin, bool topic, const char *name,
                            const char *publish, const char *consume)
{
    struct command c = cmd_new(user, mom_v1_Command_set_acl_tag);
    c.pb.admin = admin;
    c.pb.kind.set_acl.kind = topic ? mom_v1_ResourceKind_TOPIC : mom_v1_ResourceKind_QUEUE;
    snprintf(c.pb.kind.set_acl.name, sizeof c.pb.kind.set_acl.name, "%s", name);
    users_from_csv(&c.acl_publish, publish);
    users_from_csv(&c.acl_consume, consume);
    return c;
}

/* Applies a SetAcl and returns its answer. */
static struct res fx_acl(struct fx *f, const char *user, bool admin, bool topic, const char *name,
                         const char *publish, const char *consume)
{
    struct command c = c_acl(user, admin, topic, name, publish, consume);
    struct res r = fx_run(f, &c);
    command_cleanup(&c);
    return r;
}

/* ---- reads ---- */

static struct res r_get_queue(struct fx *f, const char *user, bool admin, const char *name)
{
    struct store_caller who = {user, admin};
    struct reply rep = {0};
    store_get_queue(f->s, name, &who, &rep);
    return res_from(&rep);
}

static struct res r_get_topic(struct fx *f, const char *user, bool admin, const char *name)
{
    struct store_caller who = {user, admin};
    struct reply rep = {0};
    store_get_topic(f->s, name, &who, &rep);
    return res_from(&rep);
}

static struct res r_get_acl(struct fx *f, const char *user, bool admin, bool topic,
                            const char *name)
{
    struct store_caller who = {user, admin};
    struct reply rep = {0};
    store_get_acl(f->s, topic ? mom_v1_ResourceKind_TOPIC : mom_v1_ResourceKind_QUEUE, name, &who,
                  &rep);
    return res_from(&rep);
}

static uint64_t queue_field(struct fx *f, const char *name, const char *field)
{
    struct res r = r_get_queue(f, "admin", true, name);
    assert_int_equal(r.status, 200);
    uint64_t v = jint(r.json, field);
    res_free(&r);
    return v;
}

static struct res r_read_topic(struct fx *f, const char *user, const char *topic,
                               enum store_from from, uint64_t offset, uint32_t max, bool *empty)
{
    struct store_caller who = {user, false};
    struct reply rep = {0};
    store_read_topic(f->s, topic, from, offset, max, &who, &rep, empty);
    return res_from(&rep);
}

static struct res r_read_sub(struct fx *f, const char *user, const char *topic, const char *name,
                             uint32_t max, bool *empty)
{
    struct store_caller who = {user, false};
    struct reply rep = {0};
    store_read_subscription(f->s, topic, name, max, &who, &rep, empty);
    return res_from(&rep);
}

static struct res r_get_sub(struct fx *f, const char *user, const char *topic, const char *name)
{
    struct store_caller who = {user, false};
    struct reply rep = {0};
    store_get_subscription(f->s, topic, name, &who, &rep);
    return res_from(&rep);
}

/* Receives up to max with a visibility timeout; writes the lease of the
 * first message's receipt, as an ack Command names it, into receipt (when
 * non-NULL) and returns the answer. */
static struct res fx_receive(struct fx *f, const char *queue, uint32_t max, int64_t vt,
                             char receipt[65])
{
    struct command c = c_receive("alice", queue, max, vt, false);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    if (receipt) {
        cJSON *m = cJSON_GetArrayItem(jmsgs(&r), 0);
        assert_non_null(m);
        fx_lease_of(queue, jstr(m, "receipt"), receipt);
    }
    return r;
}

#endif
