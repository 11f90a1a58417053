/* Unit tests for broker/command: encode/decode round trips for every kind
 * of Command (a 1 MiB body and a 1000-item batch included), zero-copy item
 * bodies, the batch limit (also through protobuf's merge of repeated
 * publish fields), SetAcl's user lists (order, bounds, names that cannot
 * be users), and garbage/truncated input failing cleanly.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/command.h"
#include "common/err.h"

static struct command base(pb_size_t kind)
{
    struct command c;
    memset(&c, 0, sizeof c);
    c.pb.time_ms = 1700000000123u;
    strcpy(c.pb.user, "alice");
    c.pb.admin = true;
    c.pb.which_kind = kind;
    return c;
}

/* Encodes c, decodes it into out and checks the common header. The
 * encoded buffer is returned (item bodies point into it). */
static uint8_t *round_trip(const struct command *c, struct command *out)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(command_encode(c, &buf, &len), MOM_OK);
    assert_int_equal(command_decode(buf, len, out), MOM_OK);
    assert_int_equal(out->pb.time_ms, c->pb.time_ms);
    assert_string_equal(out->pb.user, c->pb.user);
    assert_int_equal(out->pb.admin, c->pb.admin);
    assert_int_equal(out->pb.which_kind, c->pb.which_kind);
    assert_null(out->pb.cb_kind.funcs.decode);
    return buf;
}

static void test_simple_kinds(void **state)
{
    (void)state;
    struct command c, d;
    uint8_t *buf;

    c = base(mom_v1_Command_noop_tag);
    buf = round_trip(&c, &d);
    assert_int_equal(d.item_count, 0);
    free(buf);

    c = base(mom_v1_Command_tick_tag);
    buf = round_trip(&c, &d);
    free(buf);

    c = base(mom_v1_Command_create_queue_tag);
    strcpy(c.pb.kind.create_queue.name, "orders");
    c.pb.kind.create_queue.has_settings = true;
    c.pb.kind.create_queue.settings.visibility_timeout_ms = 45000;
    c.pb.kind.create_queue.settings.max_deliveries = 5;
    strcpy(c.pb.kind.create_queue.settings.dead_letter_queue, "orders.dlq");
    c.pb.kind.create_queue.settings.max_length = 1000;
    c.pb.kind.create_queue.settings.message_ttl_ms = 60000;
    c.pb.kind.create_queue.settings.private_access = true;
    c.pb.kind.create_queue.settings.present = 0x7e;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.create_queue.name, "orders");
    assert_true(d.pb.kind.create_queue.has_settings);
    assert_memory_equal(&d.pb.kind.create_queue.settings, &c.pb.kind.create_queue.settings,
                        sizeof c.pb.kind.create_queue.settings);
    free(buf);

    c = base(mom_v1_Command_delete_queue_tag);
    strcpy(c.pb.kind.delete_queue.name, "orders");
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.delete_queue.name, "orders");
    free(buf);

    c = base(mom_v1_Command_create_topic_tag);
    strcpy(c.pb.kind.create_topic.name, "events");
    c.pb.kind.create_topic.has_settings = true;
    c.pb.kind.create_topic.settings.retention_ms = 1;
    c.pb.kind.create_topic.settings.retention_messages = 2;
    c.pb.kind.create_topic.settings.retention_bytes = 3;
    c.pb.kind.create_topic.settings.private_access = true;
    c.pb.kind.create_topic.settings.present = 0x1e;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.create_topic.name, "events");
    assert_memory_equal(&d.pb.kind.create_topic.settings, &c.pb.kind.create_topic.settings,
                        sizeof c.pb.kind.create_topic.settings);
    free(buf);

    c = base(mom_v1_Command_delete_topic_tag);
    strcpy(c.pb.kind.delete_topic.name, "events");
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.delete_topic.name, "events");
    free(buf);

    c = base(mom_v1_Command_receive_tag);
    strcpy(c.pb.kind.receive.queue, "orders");
    c.pb.kind.receive.max = 100;
    c.pb.kind.receive.has_visibility_timeout = true;
    c.pb.kind.receive.visibility_timeout_ms = 0;
    c.pb.kind.receive.auto_ack = true;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.receive.queue, "orders");
    assert_int_equal(d.pb.kind.receive.max, 100);
    assert_true(d.pb.kind.receive.has_visibility_timeout);
    assert_true(d.pb.kind.receive.auto_ack);
    free(buf);

    c = base(mom_v1_Command_ack_tag);
    strcpy(c.pb.kind.ack.queue, "orders");
    strcpy(c.pb.kind.ack.receipt, "1f.2.3");
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.ack.receipt, "1f.2.3");
    free(buf);

    c = base(mom_v1_Command_nack_tag);
    strcpy(c.pb.kind.nack.queue, "orders");
    strcpy(c.pb.kind.nack.receipt, "r");
    c.pb.kind.nack.delay_ms = 86400000;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.nack.queue, "orders");
    assert_int_equal(d.pb.kind.nack.delay_ms, 86400000);
    free(buf);

    c = base(mom_v1_Command_extend_tag);
    strcpy(c.pb.kind.extend.queue, "orders");
    strcpy(c.pb.kind.extend.receipt, "r2");
    c.pb.kind.extend.visibility_timeout_ms = 43200000;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.extend.receipt, "r2");
    assert_int_equal(d.pb.kind.extend.visibility_timeout_ms, 43200000);
    free(buf);

    c = base(mom_v1_Command_create_subscription_tag);
    strcpy(c.pb.kind.create_subscription.topic, "events");
    strcpy(c.pb.kind.create_subscription.name, "audit");
    c.pb.kind.create_subscription.start_earliest = true;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.create_subscription.topic, "events");
    assert_string_equal(d.pb.kind.create_subscription.name, "audit");
    assert_true(d.pb.kind.create_subscription.start_earliest);
    assert_false(d.pb.kind.create_subscription.start_at_time);
    free(buf);
    c.pb.kind.create_subscription.start_earliest = false;
    c.pb.kind.create_subscription.start_at_time = true;
    c.pb.kind.create_subscription.start_time_ms = 1796620424123u;
    buf = round_trip(&c, &d);
    assert_true(d.pb.kind.create_subscription.start_at_time);
    assert_true(d.pb.kind.create_subscription.start_time_ms == 1796620424123u);
    free(buf);

    c = base(mom_v1_Command_seek_subscription_tag);
    strcpy(c.pb.kind.seek_subscription.topic, "events");
    strcpy(c.pb.kind.seek_subscription.name, "audit");
    c.pb.kind.seek_subscription.offset = UINT64_MAX - 1;
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.seek_subscription.topic, "events");
    assert_string_equal(d.pb.kind.seek_subscription.name, "audit");
    assert_false(d.pb.kind.seek_subscription.by_time);
    assert_true(d.pb.kind.seek_subscription.offset == UINT64_MAX - 1);
    free(buf);
    c.pb.kind.seek_subscription.offset = 0;
    c.pb.kind.seek_subscription.by_time = true;
    c.pb.kind.seek_subscription.time_ms = 1796620424123u;
    buf = round_trip(&c, &d);
    assert_true(d.pb.kind.seek_subscription.by_time);
    assert_true(d.pb.kind.seek_subscription.time_ms == 1796620424123u);
    assert_true(d.pb.kind.seek_subscription.offset == 0);
    free(buf);

    c = base(mom_v1_Command_delete_subscription_tag);
    strcpy(c.pb.kind.delete_subscription.topic, "events");
    strcpy(c.pb.kind.delete_subscription.name, "audit");
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.delete_subscription.name, "audit");
    free(buf);

    c = base(mom_v1_Command_subscription_ack_tag);
    strcpy(c.pb.kind.subscription_ack.topic, "events");
    strcpy(c.pb.kind.subscription_ack.name, "audit");
    c.pb.kind.subscription_ack.offset = UINT64_MAX - 1;
    buf = round_trip(&c, &d);
    assert_true(d.pb.kind.subscription_ack.offset == UINT64_MAX - 1);
    free(buf);

    c = base(mom_v1_Command_register_user_tag);
    strcpy(c.pb.kind.register_user.username, "bob");
    strcpy(c.pb.kind.register_user.password_hash, "$scrypt$abc");
    buf = round_trip(&c, &d);
    assert_string_equal(d.pb.kind.register_user.username, "bob");
    assert_string_equal(d.pb.kind.register_user.password_hash, "$scrypt$abc");
    free(buf);

    c = base(mom_v1_Command_set_acl_tag);
    c.pb.kind.set_acl.kind = mom_v1_ResourceKind_TOPIC;
    strcpy(c.pb.kind.set_acl.name, "events");
    buf = round_trip(&c, &d);
    assert_int_equal(d.pb.kind.set_acl.kind, mom_v1_ResourceKind_TOPIC);
    assert_string_equal(d.pb.kind.set_acl.name, "events");
    assert_int_equal(d.acl_publish.count + d.acl_consume.count, 0);
    free(buf);
}

/* SetAcl carries its lists in order, duplicates and all (the store sorts). */
static void test_set_acl_lists(void **state)
{
    (void)state;
    struct command c = base(mom_v1_Command_set_acl_tag), d;
    c.pb.kind.set_acl.kind = mom_v1_ResourceKind_QUEUE;
    strcpy(c.pb.kind.set_acl.name, "orders");
    static const char *const pub[] = {"zed", "amy", "zed"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(command_users_add(&c.acl_publish, pub[i], strlen(pub[i])), MOM_OK);
    char longest[129];
    memset(longest, 'u', 128);
    longest[128] = '\0';
    assert_int_equal(command_users_add(&c.acl_consume, longest, 128), MOM_OK);
    assert_int_equal(command_users_add(&c.acl_consume, longest, 129), MOM_ERR_INVALID);
    assert_int_equal(command_users_add(&c.acl_consume, "", 0), MOM_ERR_INVALID);
    uint8_t *buf = round_trip(&c, &d);
    assert_int_equal(d.acl_publish.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(d.acl_publish.names[i], pub[i]);
    assert_int_equal(d.acl_consume.count, 1);
    assert_string_equal(d.acl_consume.names[0], longest);
    /* the reflective encoder writes the same bytes, and again after decode */
    uint8_t *generic, *again;
    size_t len, glen, alen;
    assert_int_equal(command_encode(&c, &again, &alen), MOM_OK);
    assert_int_equal(command_encode_generic(&d, &generic, &glen), MOM_OK);
    len = alen;
    assert_int_equal(glen, len);
    assert_memory_equal(generic, again, len);
    free(generic);
    free(again);
    command_cleanup(&d);
    free(buf);

    /* 1000 users a list is the most */
    command_cleanup(&c);
    c = base(mom_v1_Command_set_acl_tag);
    strcpy(c.pb.kind.set_acl.name, "q");
    for (int i = 0; i < COMMAND_ACL_MAX_USERS; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "user%d", i);
        assert_int_equal(command_users_add(&c.acl_consume, name, (size_t)n), MOM_OK);
    }
    assert_int_equal(command_users_add(&c.acl_consume, "one-more", 8), MOM_ERR_INVALID);
    buf = round_trip(&c, &d);
    assert_int_equal(d.acl_consume.count, COMMAND_ACL_MAX_USERS);
    assert_string_equal(d.acl_consume.names[999], "user999");
    command_cleanup(&d);
    free(buf);
    command_cleanup(&c);
    assert_null(c.acl_consume.names);
}

/* Hand-made SetAcl entries that no encoder writes are refused: an empty
 * name, one of 129 bytes, one with a NUL, a 1001st user. */
static void test_set_acl_bad_lists(void **state)
{
    (void)state;
    struct command d;
    /* Command{set_acl(25){publish(3): "ab"}} decodes */
    static const uint8_t good[] = {0xca, 0x01, 0x04, 0x1a, 0x02, 'a', 'b'};
    assert_int_equal(command_decode(good, sizeof good, &d), MOM_OK);
    assert_int_equal(d.acl_publish.count, 1);
    assert_string_equal(d.acl_publish.names[0], "ab");
    command_cleanup(&d);
    static const uint8_t empty[] = {0xca, 0x01, 0x02, 0x22, 0x00};
    assert_int_equal(command_decode(empty, sizeof empty, &d), MOM_ERR_INVALID);
    assert_null(d.acl_consume.names);
    static const uint8_t nul[] = {0xca, 0x01, 0x04, 0x1a, 0x02, 'a', 0};
    assert_int_equal(command_decode(nul, sizeof nul, &d), MOM_ERR_INVALID);
    /* publish(3) of 129 bytes: inner length 3 + 129 = 132 (0x84 0x01) */
    uint8_t big[4 + 3 + 129];
    memcpy(big, (const uint8_t[]){0xca, 0x01, 0x84, 0x01, 0x1a, 0x81, 0x01}, 7);
    memset(big + 7, 'a', 129);
    assert_int_equal(command_decode(big, sizeof big, &d), MOM_ERR_INVALID);
    big[5] = 0x80; /* 128 bytes: inner 131, one 'a' left over as garbage */
    big[2] = 0x83;
    assert_int_equal(command_decode(big, sizeof big - 1, &d), MOM_OK);
    assert_int_equal(strlen(d.acl_publish.names[0]), 128);
    command_cleanup(&d);
    /* 1001 one-letter users: 3003 inner bytes (0xbb 0x17) */
    size_t n = 4 + 3 * 1001;
    uint8_t *many = malloc(n);
    memcpy(many, (const uint8_t[]){0xca, 0x01, 0xbb, 0x17}, 4);
    for (size_t i = 0; i < 1001; i++)
        memcpy(many + 4 + 3 * i, (const uint8_t[]){0x22, 0x01, 'x'}, 3);
    assert_int_equal(command_decode(many, n, &d), MOM_ERR_INVALID);
    assert_null(d.acl_consume.names);
    /* the same with 1000 (inner 3000 = 0xb8 0x17) decodes */
    many[2] = 0xb8;
    assert_int_equal(command_decode(many, n - 3, &d), MOM_OK);
    assert_int_equal(d.acl_consume.count, 1000);
    command_cleanup(&d);
    free(many);
    /* a SetAcl replaced by a later member leaves no lists */
    uint8_t replaced[sizeof good + 2];
    memcpy(replaced, good, sizeof good);
    replaced[sizeof good] = 0xa2; /* tick(20): tag 162 = 0xa2 0x01, then length 0 */
    replaced[sizeof good + 1] = 0x01;
    uint8_t with_len[sizeof replaced + 1];
    memcpy(with_len, replaced, sizeof replaced);
    with_len[sizeof replaced] = 0x00;
    assert_int_equal(command_decode(with_len, sizeof with_len, &d), MOM_OK);
    assert_int_equal(d.pb.which_kind, mom_v1_Command_tick_tag);
    assert_null(d.acl_publish.names);
    assert_int_equal(d.acl_publish.count, 0);
}

static void test_publish_single(void **state)
{
    (void)state;
    struct command c = base(mom_v1_Command_publish_tag), d;
    struct command_item item;
    memset(&item, 0, sizeof item);
    item.body = (const uint8_t *)"hello\0world";
    item.body_len = 11;
    strcpy(item.content_type, "text/plain");
    item.delay_ms = 250;
    c.pb.kind.publish.kind = mom_v1_ResourceKind_QUEUE;
    strcpy(c.pb.kind.publish.name, "orders");
    strcpy(c.pb.kind.publish.idempotency_key, "key-1");
    c.items = &item;
    c.item_count = 1;
    uint8_t *buf = round_trip(&c, &d);
    assert_int_equal(d.pb.kind.publish.kind, mom_v1_ResourceKind_QUEUE);
    assert_string_equal(d.pb.kind.publish.name, "orders");
    assert_string_equal(d.pb.kind.publish.idempotency_key, "key-1");
    assert_false(d.pb.kind.publish.batch);
    assert_int_equal(d.item_count, 1);
    assert_int_equal(d.items[0].body_len, 11);
    assert_memory_equal(d.items[0].body, "hello\0world", 11);
    assert_string_equal(d.items[0].content_type, "text/plain");
    assert_int_equal(d.items[0].delay_ms, 250);
    command_cleanup(&d);
    assert_null(d.items);
    free(buf);
}

static void test_publish_empty_body(void **state)
{
    (void)state;
    struct command c = base(mom_v1_Command_publish_tag), d;
    struct command_item items[2];
    memset(items, 0, sizeof items);
    items[1].body = (const uint8_t *)"x";
    items[1].body_len = 1;
    c.pb.kind.publish.kind = mom_v1_ResourceKind_TOPIC;
    strcpy(c.pb.kind.publish.name, "t");
    c.items = items;
    c.item_count = 2;
    uint8_t *buf = round_trip(&c, &d);
    assert_int_equal(d.item_count, 2);
    assert_int_equal(d.items[0].body_len, 0);
    assert_string_equal(d.items[0].content_type, "");
    assert_int_equal(d.items[1].body_len, 1);
    assert_memory_equal(d.items[1].body, "x", 1);
    command_cleanup(&d);
    free(buf);
}

/* A Publish whose optional envelope and Publish fields are set by mask's
 * low six bits (time, user, admin, topic, idempotency key, batch). */
static void publish_from_mask(struct command *c, unsigned mask)
{
    memset(c, 0, sizeof *c);
    c->pb.which_kind = mom_v1_Command_publish_tag;
    c->pb.time_ms = (mask & 1) ? 1700000000123u : 0;
    if (mask & 2)
        strcpy(c->pb.user, "alice");
    c->pb.admin = (mask & 4) != 0;
    mom_v1_Publish *pub = &c->pb.kind.publish;
    pub->kind = (mask & 8) ? mom_v1_ResourceKind_TOPIC : mom_v1_ResourceKind_QUEUE;
    if (mask & 16)
        strcpy(pub->idempotency_key, "key-1");
    pub->batch = (mask & 32) != 0;
}

/* command_encode lays Publish out by hand; pb_encode must agree byte for
 * byte on every combination of present and absent fields, on lengths that
 * need one, two and three varint bytes, and on batches. */
static void test_publish_layout_matches_pb_encode(void **state)
{
    (void)state;
    static uint8_t big[20000];
    memset(big, 'b', sizeof big);
    static const size_t body_lens[] = {0, 1, 127, 128, 16383, 16384, sizeof big};
    static const uint64_t delays[] = {0, 1, 300, UINT64_MAX};
    struct command_item items[3];
    unsigned checked = 0;
    for (unsigned mask = 0; mask < 64; mask++) {
        for (size_t b = 0; b < sizeof body_lens / sizeof body_lens[0]; b++) {
            struct command c;
            publish_from_mask(&c, mask);
            mom_v1_Publish *pub = &c.pb.kind.publish;
            memset(pub->name, 'n', 128); /* longest name */
            pub->name[128] = '\0';
            c.item_count = b % 4;
            for (size_t i = 0; i < c.item_count; i++) {
                memset(&items[i], 0, sizeof items[i]);
                items[i].body = big;
                items[i].body_len = body_lens[(b + i) % (sizeof body_lens / sizeof body_lens[0])];
                if ((mask + i) & 1)
                    strcpy(items[i].content_type, "text/plain; charset=utf-8");
                items[i].delay_ms = delays[(mask + i) % 4];
            }
            c.items = c.item_count ? items : NULL;
            uint8_t *fast, *generic;
            size_t fast_len, generic_len;
            assert_int_equal(command_encode(&c, &fast, &fast_len), MOM_OK);
            assert_int_equal(command_encode_generic(&c, &generic, &generic_len), MOM_OK);
            assert_int_equal(fast_len, generic_len);
            assert_memory_equal(fast, generic, fast_len);
            struct command d;
            assert_int_equal(command_decode(fast, fast_len, &d), MOM_OK);
            assert_int_equal(d.item_count, c.item_count);
            for (size_t i = 0; i < c.item_count; i++) {
                assert_int_equal(d.items[i].body_len, items[i].body_len);
                assert_int_equal(d.items[i].delay_ms, items[i].delay_ms);
                assert_string_equal(d.items[i].content_type, items[i].content_type);
            }
            assert_int_equal(d.pb.kind.publish.batch, pub->batch);
            assert_string_equal(d.pb.kind.publish.idempotency_key, pub->idempotency_key);
            command_cleanup(&d);
            free(fast);
            free(generic);
            checked++;
        }
    }
    assert_int_equal(checked, 64 * 7);
}

/* command_decode's Publish fast path and the reflective decoder agree on
 * bytes: the same verdict and, when both decode, the same command (item
 * bodies pointing at the same input bytes). */
static void assert_same_decode(const uint8_t *buf, size_t len)
{
    struct command a, b;
    int ra = command_decode(buf, len, &a);
    int rb = command_decode_generic(buf, len, &b);
    assert_int_equal(ra, rb);
    if (ra != MOM_OK)
        return;
    assert_int_equal(a.pb.which_kind, b.pb.which_kind);
    assert_int_equal(a.pb.time_ms, b.pb.time_ms);
    assert_string_equal(a.pb.user, b.pb.user);
    assert_int_equal(a.pb.admin, b.pb.admin);
    assert_int_equal(a.item_count, b.item_count);
    if (a.pb.which_kind == mom_v1_Command_publish_tag) {
        const mom_v1_Publish *pa = &a.pb.kind.publish, *pb = &b.pb.kind.publish;
        assert_int_equal(pa->kind, pb->kind);
        assert_memory_equal(pa->name, pb->name, sizeof pa->name);
        assert_memory_equal(pa->idempotency_key, pb->idempotency_key, sizeof pa->idempotency_key);
        assert_int_equal(pa->batch, pb->batch);
        assert_null(pa->items.funcs.decode);
        for (size_t i = 0; i < a.item_count; i++) {
            assert_ptr_equal(a.items[i].body, b.items[i].body);
            assert_int_equal(a.items[i].body_len, b.items[i].body_len);
            assert_memory_equal(a.items[i].content_type, b.items[i].content_type,
                                sizeof a.items[i].content_type);
            assert_int_equal(a.items[i].delay_ms, b.items[i].delay_ms);
        }
    }
    command_cleanup(&a);
    command_cleanup(&b);
}

static void test_publish_fast_decode_matches_generic(void **state)
{
    (void)state;
    static uint8_t body[300];
    memset(body, 'b', sizeof body);
    struct command_item items[3];
    unsigned checked = 0;
    for (unsigned mask = 0; mask < 128; mask++) {
        struct command c;
        publish_from_mask(&c, mask);
        mom_v1_Publish *pub = &c.pb.kind.publish;
        if (mask & 64)
            strcpy(pub->name, "orders");
        c.item_count = mask % 4;
        for (size_t i = 0; i < c.item_count; i++) {
            memset(&items[i], 0, sizeof items[i]);
            items[i].body = body;
            items[i].body_len = (size_t[]){0, 1, 100, 300}[(mask + i) % 4];
            if ((mask + i) & 1)
                strcpy(items[i].content_type, "text/plain");
            items[i].delay_ms = (uint64_t[]){0, 1, 300, UINT64_MAX}[(mask >> 1) % 4];
        }
        c.items = c.item_count ? items : NULL;
        uint8_t *buf;
        size_t len;
        assert_int_equal(command_encode(&c, &buf, &len), MOM_OK);
        assert_same_decode(buf, len);
        /* every prefix, and every byte changed to a few telling values
         * (defaults written, longer varints, other tags, lengths off by one) */
        uint8_t *m = malloc(len);
        assert_non_null(m);
        for (size_t cut = 0; cut < len; cut++)
            assert_same_decode(buf, cut);
        static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x08, 0x0a, 0x12, 0x18, 0x1a,
                                       0x22, 0x28, 0x7a, 0x7f, 0x80, 0x81, 0xff};
        for (size_t i = 0; i < len && i < 64; i++) {
            for (size_t v = 0; v < sizeof vals; v++) {
                memcpy(m, buf, len);
                m[i] = vals[v];
                assert_same_decode(m, len);
                m[i] = (uint8_t)(buf[i] + 1);
                assert_same_decode(m, len);
                m[i] = (uint8_t)(buf[i] - 1);
                assert_same_decode(m, len);
            }
        }
        free(m);
        free(buf);
        checked++;
    }
    assert_int_equal(checked, 128);
    /* written by hand: a default written out, a longer varint, fields out
     * of order, a repeated field, a trailing unknown field */
    static const uint8_t odd[][16] = {
        {0x08, 0x00, 0x7a, 0x00},             /* time_ms 0 written */
        {0x08, 0x81, 0x00, 0x7a, 0x00},       /* time_ms 1 in two bytes */
        {0x18, 0x01, 0x08, 0x05, 0x7a, 0x00}, /* admin before time_ms */
        {0x18, 0x02, 0x7a, 0x00},             /* admin 2 */
        {0x7a, 0x02, 0x08, 0x01, 0x18, 0x01}, /* publish, then admin */
        {0x7a, 0x00, 0x7a, 0x00},             /* publish twice */
        {0x7a, 0x02, 0x28, 0x00},             /* batch false written */
        {0x7a, 0x04, 0x1a, 0x02, 0x0a, 0x00}, /* an empty body written */
        {0x7a, 0x04, 0x12, 0x01, 0x71, 0x30}, /* a trailing unknown field 6 */
        {0x7a, 0x00},                         /* an empty publish */
    };
    static const size_t odd_len[] = {4, 5, 6, 4, 6, 4, 4, 6, 6, 2};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_same_decode(odd[i], odd_len[i]);
}

/* Every other kind: the member is encoded by pb_encode and framed by
 * hand; the bytes must equal pb_encode's framing of the whole Command, with
 * fields absent and present, the longest strings and the largest numbers. */
static void fill_kind(struct command *c, pb_size_t kind, bool full)
{
    const char *name = full ? "0123456789012345678901234567890123456789012345678901234567890123"
                              "0123456789012345678901234567890123456789012345678901234567890123"
                            : "q";
    uint64_t big = full ? UINT64_MAX : 1;
    c->pb.which_kind = kind;
    switch (kind) {
    case mom_v1_Command_create_queue_tag:
        strcpy(c->pb.kind.create_queue.name, name);
        c->pb.kind.create_queue.has_settings = full;
        c->pb.kind.create_queue.settings.visibility_timeout_ms = big;
        c->pb.kind.create_queue.settings.max_deliveries = 7;
        strcpy(c->pb.kind.create_queue.settings.dead_letter_queue, name);
        c->pb.kind.create_queue.settings.max_length = big;
        c->pb.kind.create_queue.settings.private_access = full;
        c->pb.kind.create_queue.settings.present = 0x7e;
        break;
    case mom_v1_Command_delete_queue_tag: strcpy(c->pb.kind.delete_queue.name, name); break;
    case mom_v1_Command_create_topic_tag:
        strcpy(c->pb.kind.create_topic.name, name);
        c->pb.kind.create_topic.has_settings = full;
        c->pb.kind.create_topic.settings.retention_ms = big;
        c->pb.kind.create_topic.settings.retention_bytes = big;
        c->pb.kind.create_topic.settings.present = 0x3e;
        break;
    case mom_v1_Command_delete_topic_tag: strcpy(c->pb.kind.delete_topic.name, name); break;
    case mom_v1_Command_receive_tag:
        strcpy(c->pb.kind.receive.queue, name);
        c->pb.kind.receive.max = full ? 100 : 0;
        c->pb.kind.receive.has_visibility_timeout = full;
        c->pb.kind.receive.visibility_timeout_ms = big;
        c->pb.kind.receive.auto_ack = full;
        break;
    case mom_v1_Command_ack_tag:
        strcpy(c->pb.kind.ack.queue, name);
        strcpy(c->pb.kind.ack.receipt, "00000000000000010000000000000002");
        break;
    case mom_v1_Command_nack_tag:
        strcpy(c->pb.kind.nack.queue, name);
        strcpy(c->pb.kind.nack.receipt, "r");
        c->pb.kind.nack.delay_ms = big;
        break;
    case mom_v1_Command_extend_tag:
        strcpy(c->pb.kind.extend.queue, name);
        strcpy(c->pb.kind.extend.receipt, "r");
        c->pb.kind.extend.visibility_timeout_ms = big;
        break;
    case mom_v1_Command_create_subscription_tag:
        strcpy(c->pb.kind.create_subscription.topic, name);
        strcpy(c->pb.kind.create_subscription.name, name);
        c->pb.kind.create_subscription.start_earliest = full;
        c->pb.kind.create_subscription.start_at_time = full;
        c->pb.kind.create_subscription.start_time_ms = big;
        break;
    case mom_v1_Command_seek_subscription_tag:
        strcpy(c->pb.kind.seek_subscription.topic, name);
        strcpy(c->pb.kind.seek_subscription.name, name);
        c->pb.kind.seek_subscription.by_time = full;
        c->pb.kind.seek_subscription.offset = big;
        c->pb.kind.seek_subscription.time_ms = big;
        break;
    case mom_v1_Command_delete_subscription_tag:
        strcpy(c->pb.kind.delete_subscription.topic, name);
        strcpy(c->pb.kind.delete_subscription.name, name);
        break;
    case mom_v1_Command_subscription_ack_tag:
        strcpy(c->pb.kind.subscription_ack.topic, name);
        strcpy(c->pb.kind.subscription_ack.name, name);
        c->pb.kind.subscription_ack.offset = big;
        break;
    case mom_v1_Command_register_user_tag:
        strcpy(c->pb.kind.register_user.username, name);
        memset(c->pb.kind.register_user.password_hash, 'h', 255);
        break;
    case mom_v1_Command_set_acl_tag:
        strcpy(c->pb.kind.set_acl.name, name);
        c->pb.kind.set_acl.kind = full ? mom_v1_ResourceKind_TOPIC : mom_v1_ResourceKind_QUEUE;
        for (int i = 0; full && i < 3; i++) {
            assert_int_equal(command_users_add(&c->acl_publish, name, strlen(name)), MOM_OK);
            assert_int_equal(command_users_add(&c->acl_consume, "u", 1), MOM_OK);
        }
        break;
    default: /* noop, tick: no fields */ break;
    }
}

static void test_enveloped_kinds_match_pb_encode(void **state)
{
    (void)state;
    static const pb_size_t kinds[] = {mom_v1_Command_noop_tag,
                                      mom_v1_Command_create_queue_tag,
                                      mom_v1_Command_delete_queue_tag,
                                      mom_v1_Command_create_topic_tag,
                                      mom_v1_Command_delete_topic_tag,
                                      mom_v1_Command_receive_tag,
                                      mom_v1_Command_ack_tag,
                                      mom_v1_Command_nack_tag,
                                      mom_v1_Command_extend_tag,
                                      mom_v1_Command_tick_tag,
                                      mom_v1_Command_create_subscription_tag,
                                      mom_v1_Command_delete_subscription_tag,
                                      mom_v1_Command_subscription_ack_tag,
                                      mom_v1_Command_register_user_tag,
                                      mom_v1_Command_set_acl_tag,
                                      mom_v1_Command_seek_subscription_tag};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (unsigned mask = 0; mask < 16; mask++) {
            struct command c;
            memset(&c, 0, sizeof c);
            c.pb.time_ms = (mask & 1) ? UINT64_MAX : 0;
            if (mask & 2)
                memset(c.pb.user, 'u', 128);
            c.pb.admin = (mask & 4) != 0;
            fill_kind(&c, kinds[k], (mask & 8) != 0);
            uint8_t *fast, *generic;
            size_t fast_len, generic_len;
            assert_int_equal(command_encode(&c, &fast, &fast_len), MOM_OK);
            assert_int_equal(command_encode_generic(&c, &generic, &generic_len), MOM_OK);
            assert_int_equal(fast_len, generic_len);
            assert_memory_equal(fast, generic, fast_len);
            struct command d;
            assert_int_equal(command_decode(fast, fast_len, &d), MOM_OK);
            assert_int_equal(d.pb.which_kind, kinds[k]);
            assert_int_equal(d.pb.time_ms, c.pb.time_ms);
            assert_string_equal(d.pb.user, c.pb.user);
            assert_int_equal(d.acl_publish.count, c.acl_publish.count);
            assert_int_equal(d.acl_consume.count, c.acl_consume.count);
            command_cleanup(&d);
            command_cleanup(&c);
            free(fast);
            free(generic);
        }
    }
}

/* Receive, Ack, Nack and Extend are laid out by hand: every field present
 * or absent on its own (proto3 skips zeros and empty strings), one-byte and
 * multi-byte varints, the longest strings, against pb_encode byte for byte
 * and decoded back. */
static void test_consumer_kinds_match_pb_encode(void **state)
{
    (void)state;
    static const uint64_t nums[] = {0, 1, 127, 128, 300000, UINT64_MAX};
    char longq[129], longr[65];
    memset(longq, 'q', 128);
    longq[128] = '\0';
    memset(longr, 'r', 64);
    longr[64] = '\0';
    const char *queues[] = {"", "orders", longq};
    const char *receipts[] = {"", "1.2.3", longr};
    unsigned checked = 0;
    for (unsigned mask = 0; mask < 64; mask++) {
        for (size_t v = 0; v < sizeof nums / sizeof nums[0]; v++) {
            for (int kind = 0; kind < 4; kind++) {
                struct command c;
                memset(&c, 0, sizeof c);
                c.pb.time_ms = (mask & 1) ? 1700000000123u : 0;
                if (mask & 2)
                    strcpy(c.pb.user, "alice");
                c.pb.admin = (mask & 4) != 0;
                const char *q = queues[(mask >> 3) % 3], *rc = receipts[(mask / 24 + v) % 3];
                uint64_t n = (mask & 32) ? nums[v] : 0;
                switch (kind) {
                case 0:
                    c.pb.which_kind = mom_v1_Command_receive_tag;
                    strcpy(c.pb.kind.receive.queue, q);
                    c.pb.kind.receive.max = (uint32_t)(v & 1 ? nums[v] & 0xffffffffu : 0);
                    c.pb.kind.receive.has_visibility_timeout = (mask & 8) != 0;
                    c.pb.kind.receive.visibility_timeout_ms = n;
                    c.pb.kind.receive.auto_ack = (mask & 16) != 0;
                    break;
                case 1:
                    c.pb.which_kind = mom_v1_Command_ack_tag;
                    strcpy(c.pb.kind.ack.queue, q);
                    strcpy(c.pb.kind.ack.receipt, rc);
                    break;
                case 2:
                    c.pb.which_kind = mom_v1_Command_nack_tag;
                    strcpy(c.pb.kind.nack.queue, q);
                    strcpy(c.pb.kind.nack.receipt, rc);
                    c.pb.kind.nack.delay_ms = n;
                    break;
                default:
                    c.pb.which_kind = mom_v1_Command_extend_tag;
                    strcpy(c.pb.kind.extend.queue, q);
                    strcpy(c.pb.kind.extend.receipt, rc);
                    c.pb.kind.extend.visibility_timeout_ms = n;
                    break;
                }
                uint8_t *fast, *generic;
                size_t fast_len, generic_len;
                assert_int_equal(command_encode(&c, &fast, &fast_len), MOM_OK);
                assert_int_equal(command_encode_generic(&c, &generic, &generic_len), MOM_OK);
                assert_int_equal(fast_len, generic_len);
                assert_memory_equal(fast, generic, fast_len);
                struct command d;
                assert_int_equal(command_decode(fast, fast_len, &d), MOM_OK);
                assert_int_equal(d.pb.which_kind, c.pb.which_kind);
                assert_memory_equal(&d.pb.kind, &c.pb.kind, sizeof d.pb.kind);
                command_cleanup(&d);
                free(fast);
                free(generic);
                checked++;
            }
        }
    }
    assert_int_equal(checked, 64 * 6 * 4);
}

/* ReleaseLeases carries its receipts as items: zero copy, in order, up to
 * COMMAND_MAX_BATCH, the same bytes through both encoders. */
static void test_release_leases(void **state)
{
    (void)state;
    static struct command_item items[COMMAND_MAX_BATCH + 1];
    static char texts[COMMAND_MAX_BATCH + 1][24];
    for (size_t i = 0; i <= COMMAND_MAX_BATCH; i++) {
        snprintf(texts[i], sizeof texts[i], "1.%zx.1", i + 1);
        memset(&items[i], 0, sizeof items[i]);
        items[i].body = (const uint8_t *)texts[i];
        items[i].body_len = strlen(texts[i]);
    }
    size_t counts[] = {0, 1, 3, COMMAND_MAX_BATCH};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        struct command c = base(mom_v1_Command_release_leases_tag), d;
        strcpy(c.pb.kind.release_leases.queue, "orders");
        c.items = items;
        c.item_count = counts[k];
        uint8_t *buf;
        size_t len;
        assert_int_equal(command_encode(&c, &buf, &len), MOM_OK);
        uint8_t *generic;
        size_t glen;
        assert_int_equal(command_encode_generic(&c, &generic, &glen), MOM_OK);
        assert_int_equal(len, glen);
        assert_memory_equal(buf, generic, len);
        free(generic);
        assert_int_equal(command_decode(buf, len, &d), MOM_OK);
        assert_int_equal(d.pb.which_kind, mom_v1_Command_release_leases_tag);
        assert_string_equal(d.pb.kind.release_leases.queue, "orders");
        assert_null(d.pb.kind.release_leases.receipts.funcs.decode);
        assert_int_equal(d.item_count, counts[k]);
        for (size_t i = 0; i < d.item_count; i++) {
            assert_int_equal(d.items[i].body_len, strlen(texts[i]));
            assert_memory_equal(d.items[i].body, texts[i], d.items[i].body_len);
            assert_true(d.items[i].body >= buf && d.items[i].body < buf + len);
        }
        command_cleanup(&d);
        free(buf);
    }
    /* One receipt over the limit: refused by the encoder; the same bytes
     * built by hand (the limit plus one) are refused by the decoder. */
    struct command c = base(mom_v1_Command_release_leases_tag), d;
    c.items = items;
    c.item_count = COMMAND_MAX_BATCH + 1;
    uint8_t *buf;
    size_t len;
    assert_int_equal(command_encode(&c, &buf, &len), MOM_ERR_INVALID);
    c.item_count = COMMAND_MAX_BATCH;
    assert_int_equal(command_encode(&c, &buf, &len), MOM_OK);
    /* Append one more release member: protobuf merges it into the first. */
    uint8_t extra[32];
    size_t elen = strlen(texts[0]);
    extra[0] = (uint8_t)(30 << 3 | 2), extra[1] = 0x01;                        /* field 30 */
    extra[2] = (uint8_t)(2 + elen), extra[3] = 0x12, extra[4] = (uint8_t)elen; /* receipts */
    memcpy(extra + 5, texts[0], elen);
    uint8_t *more = malloc(len + 5 + elen);
    assert_non_null(more);
    memcpy(more, buf, len);
    memcpy(more + len, extra, 5 + elen);
    assert_int_equal(command_decode(more, len + 5 + elen, &d), MOM_ERR_INVALID);
    free(more);
    free(buf);
}

static void test_publish_1mib_zero_copy(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    uint8_t *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (uint8_t)(i * 131u + 7u);
    struct command c = base(mom_v1_Command_publish_tag), d;
    struct command_item item;
    memset(&item, 0, sizeof item);
    item.body = body;
    item.body_len = n;
    c.pb.kind.publish.kind = mom_v1_ResourceKind_QUEUE;
    strcpy(c.pb.kind.publish.name, "big");
    c.items = &item;
    c.item_count = 1;
    uint8_t *buf;
    size_t len;
    assert_int_equal(command_encode(&c, &buf, &len), MOM_OK);
    assert_true(len > n);
    assert_int_equal(command_decode(buf, len, &d), MOM_OK);
    assert_int_equal(d.item_count, 1);
    assert_int_equal(d.items[0].body_len, n);
    /* Zero copy: the body lies inside the encoded buffer. */
    assert_true(d.items[0].body > buf && d.items[0].body + n <= buf + len);
    assert_memory_equal(d.items[0].body, body, n);
    command_cleanup(&d);
    /* Truncated anywhere inside the body: invalid, and nothing leaks. */
    assert_int_equal(command_decode(buf, len - 1, &d), MOM_ERR_INVALID);
    assert_int_equal(d.item_count, 0);
    assert_null(d.items);
    assert_int_equal(command_decode(buf, len / 2, &d), MOM_ERR_INVALID);
    free(buf);
    free(body);
}

static void fill_batch(struct command *c, struct command_item *items, size_t n, uint8_t *bodies)
{
    for (size_t i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof items[i]);
        bodies[i * 4] = (uint8_t)i;
        bodies[i * 4 + 1] = (uint8_t)(i >> 8);
        bodies[i * 4 + 2] = 0xff;
        bodies[i * 4 + 3] = '\n';
        items[i].body = &bodies[i * 4];
        items[i].body_len = 1 + i % 4;
        snprintf(items[i].content_type, sizeof items[i].content_type, "type/%zu", i % 3);
        items[i].delay_ms = i;
    }
    c->items = items;
    c->item_count = n;
}

static void test_publish_batch_1000(void **state)
{
    (void)state;
    size_t n = COMMAND_MAX_BATCH;
    struct command_item *items = calloc(n + 1, sizeof *items);
    uint8_t *bodies = calloc(n + 1, 4);
    struct command c = base(mom_v1_Command_publish_tag), d;
    c.pb.kind.publish.kind = mom_v1_ResourceKind_QUEUE;
    c.pb.kind.publish.batch = true;
    strcpy(c.pb.kind.publish.name, "batchq");
    fill_batch(&c, items, n, bodies);
    uint8_t *buf = round_trip(&c, &d);
    assert_true(d.pb.kind.publish.batch);
    assert_int_equal(d.item_count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(d.items[i].body_len, items[i].body_len);
        assert_memory_equal(d.items[i].body, items[i].body, items[i].body_len);
        assert_string_equal(d.items[i].content_type, items[i].content_type);
        assert_int_equal(d.items[i].delay_ms, i);
    }
    command_cleanup(&d);
    free(buf);

    /* 1001 items: refused by the encoder. */
    size_t len;
    fill_batch(&c, items, n + 1, bodies);
    assert_int_equal(command_encode(&c, &buf, &len), MOM_ERR_INVALID);
    assert_null(buf);
    free(items);
    free(bodies);
}

/* Protobuf merges a repeated submessage field: two encoded publish commands
 * concatenated are one publish with both item lists; over 1000 is invalid. */
static void test_merged_publish_limit(void **state)
{
    (void)state;
    size_t n = 600;
    struct command_item *items = calloc(n, sizeof *items);
    uint8_t *bodies = calloc(n, 4);
    struct command c = base(mom_v1_Command_publish_tag), d;
    strcpy(c.pb.kind.publish.name, "q");
    fill_batch(&c, items, n, bodies);
    uint8_t *a, *b;
    size_t alen, blen;
    assert_int_equal(command_encode(&c, &a, &alen), MOM_OK);
    c.item_count = 300;
    assert_int_equal(command_encode(&c, &b, &blen), MOM_OK);
    uint8_t *cat = malloc(alen + blen);
    memcpy(cat, b, blen);
    memcpy(cat + blen, b, blen);
    assert_int_equal(command_decode(cat, 2 * blen, &d), MOM_OK);
    assert_int_equal(d.item_count, 600);
    assert_memory_equal(d.items[300].body, items[0].body, items[0].body_len);
    command_cleanup(&d);
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    assert_int_equal(command_decode(cat, alen + blen, &d), MOM_OK); /* exactly 900 */
    assert_int_equal(d.item_count, 900);
    command_cleanup(&d);
    uint8_t *cat2 = malloc(2 * alen);
    memcpy(cat2, a, alen);
    memcpy(cat2 + alen, a, alen);
    assert_int_equal(command_decode(cat2, 2 * alen, &d), MOM_ERR_INVALID); /* 1200 */
    assert_null(d.items);
    free(cat2);
    free(cat);
    free(a);
    free(b);
    free(items);
    free(bodies);
}

/* A later oneof member replaces an earlier publish: its items are gone. */
static void test_oneof_replaced(void **state)
{
    (void)state;
    struct command_item item;
    memset(&item, 0, sizeof item);
    item.body = (const uint8_t *)"abc";
    item.body_len = 3;
    struct command c = base(mom_v1_Command_publish_tag), d;
    strcpy(c.pb.kind.publish.name, "q");
    c.items = &item;
    c.item_count = 1;
    uint8_t *a, *b;
    size_t alen, blen;
    assert_int_equal(command_encode(&c, &a, &alen), MOM_OK);
    struct command t = base(mom_v1_Command_tick_tag);
    assert_int_equal(command_encode(&t, &b, &blen), MOM_OK);
    uint8_t *cat = malloc(alen + blen + alen);
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    assert_int_equal(command_decode(cat, alen + blen, &d), MOM_OK);
    assert_int_equal(d.pb.which_kind, mom_v1_Command_tick_tag);
    assert_int_equal(d.item_count, 0);
    assert_null(d.items);
    /* publish, tick, publish: only the last publish's item. */
    memcpy(cat + alen + blen, a, alen);
    assert_int_equal(command_decode(cat, alen + blen + alen, &d), MOM_OK);
    assert_int_equal(d.pb.which_kind, mom_v1_Command_publish_tag);
    assert_int_equal(d.item_count, 1);
    command_cleanup(&d);
    free(cat);
    free(a);
    free(b);
}

/* A body with a wire type other than length-delimited (found by
 * fuzz_command) reaches the callback as a copy on nanopb's stack; decoding
 * must refuse it instead of pointing the body at a dead frame. */
static void test_body_with_wrong_wire_type_is_refused(void **state)
{
    (void)state;
    /* Command{publish(15){items(3){body(1) as varint 0x0bdc}}} */
    static const uint8_t varint_body[] = {0x7a, 0x05, 0x1a, 0x03, 0x08, 0xdc, 0x0b};
    struct command d;
    assert_int_equal(command_decode(varint_body, sizeof varint_body, &d), MOM_ERR_INVALID);
    assert_null(d.items);
    /* body(1) as fixed32 */
    static const uint8_t fixed_body[] = {0x7a, 0x07, 0x1a, 0x05, 0x0d, 1, 2, 3, 4};
    assert_int_equal(command_decode(fixed_body, sizeof fixed_body, &d), MOM_ERR_INVALID);
    /* the same item with a length-delimited body decodes, pointing into the input */
    static const uint8_t good[] = {0x7a, 0x06, 0x1a, 0x04, 0x0a, 0x02, 0xdc, 0x0b};
    assert_int_equal(command_decode(good, sizeof good, &d), MOM_OK);
    assert_int_equal(d.item_count, 1);
    assert_ptr_equal(d.items[0].body, good + 6);
    assert_int_equal(d.items[0].body_len, 2);
    command_cleanup(&d);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    struct command_item items[3];
    memset(items, 0, sizeof items);
    for (int i = 0; i < 3; i++) {
        items[i].body = (const uint8_t *)"some body bytes";
        items[i].body_len = 15;
        strcpy(items[i].content_type, "application/json");
    }
    struct command c = base(mom_v1_Command_publish_tag), d;
    strcpy(c.pb.kind.publish.name, "q");
    strcpy(c.pb.kind.publish.idempotency_key, "k");
    c.items = items;
    c.item_count = 3;
    uint8_t *buf;
    size_t len;
    assert_int_equal(command_encode(&c, &buf, &len), MOM_OK);
    /* Every strict prefix either fails cleanly or (when it ends on a
     * top-level field boundary before the publish) decodes a smaller command. */
    size_t invalid = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = command_decode(copy, cut, &d);
        assert_true(rc == MOM_OK || rc == MOM_ERR_INVALID);
        if (rc == MOM_OK) {
            assert_true(d.item_count == 0);
            command_cleanup(&d);
        } else {
            invalid++;
            assert_null(d.items);
        }
        free(copy);
    }
    assert_true(invalid > len / 2);
    /* Random garbage never crashes (ASan run) and never reports success with
     * item bodies outside the buffer. */
    srand(12345);
    uint8_t junk[256];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand() % (int)sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (round % 2 && n > 4) /* half of them start like a real command */
            memcpy(junk, buf, n < len ? n / 2 : len / 2);
        int rc = command_decode(junk, n, &d);
        assert_true(rc == MOM_OK || rc == MOM_ERR_INVALID);
        for (size_t i = 0; rc == MOM_OK && i < d.item_count; i++)
            assert_true(
                d.items[i].body_len == 0 ||
                (d.items[i].body >= junk && d.items[i].body + d.items[i].body_len <= junk + n));
        command_cleanup(&d);
    }
    /* A string longer than its max_size is invalid. */
    static const uint8_t long_user[] = {0x12, 0x82, 0x01}; /* field 2, length 130 */
    uint8_t big[3 + 130];
    memcpy(big, long_user, 3);
    memset(big + 3, 'a', 130);
    assert_int_equal(command_decode(big, sizeof big, &d), MOM_ERR_INVALID);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_kinds),
        cmocka_unit_test(test_set_acl_lists),
        cmocka_unit_test(test_set_acl_bad_lists),
        cmocka_unit_test(test_publish_single),
        cmocka_unit_test(test_publish_empty_body),
        cmocka_unit_test(test_publish_layout_matches_pb_encode),
        cmocka_unit_test(test_publish_fast_decode_matches_generic),
        cmocka_unit_test(test_enveloped_kinds_match_pb_encode),
        cmocka_unit_test(test_consumer_kinds_match_pb_encode),
        cmocka_unit_test(test_release_leases),
        cmocka_unit_test(test_publish_1mib_zero_copy),
        cmocka_unit_test(test_publish_batch_1000),
        cmocka_unit_test(test_merged_publish_limit),
        cmocka_unit_test(test_oneof_replaced),
        cmocka_unit_test(test_body_with_wrong_wire_type_is_refused),
        cmocka_unit_test(test_truncated_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
