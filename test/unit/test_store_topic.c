/* Unit tests for the store's topics: PUT semantics, offsets, batch shape,
 * reads from earliest/latest/offset (and out of range), retention by
 * count, bytes and age, subscriptions (start, repeat PUT, cursor ack rules,
 * lag, retention raising the cursor, delete permissions, listing), private
 * topics, and delete/re-create.
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

#define P(n) (1u << (n))

static void make_topic(struct fx *f, const char *name, uint64_t ms, uint64_t count, uint64_t bytes)
{
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    st.retention_ms = ms;
    st.retention_messages = count;
    st.retention_bytes = bytes;
    st.present = P(1) | P(2) | P(3);
    struct command c = c_create_topic("alice", name, &st);
    fx_expect(f, &c, 201);
}

static uint64_t tpub(struct fx *f, const char *topic, const char *body)
{
    struct command c = c_publish("alice", true, topic, body, 0, NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    uint64_t off = jint(r.json, "offset");
    res_free(&r);
    return off;
}

static uint64_t topic_field(struct fx *f, const char *name, const char *field)
{
    struct res r = r_get_topic(f, "admin", true, name);
    assert_int_equal(r.status, 200);
    uint64_t v = jint(r.json, field);
    res_free(&r);
    return v;
}

static void test_topic_put_and_publish(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct command c = c_create_topic("alice", "ev", NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(r.json, "name"), "ev");
    assert_string_equal(jstr(r.json, "owner"), "alice");
    assert_int_equal(jint(r.json, "first_offset"), 0);
    assert_int_equal(jint(r.json, "next_offset"), 0);
    assert_int_equal(jint(r.json, "messages"), 0);
    assert_int_equal(jint(r.json, "bytes"), 0);
    assert_int_equal(jint(r.json, "retention_ms"), 0);
    assert_int_equal(jint(r.json, "retention_messages"), 0);
    assert_int_equal(jint(r.json, "retention_bytes"), 0);
    assert_string_equal(jstr(r.json, "access"), "public");
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "subscriptions")), 0);
    res_free(&r);
    c = c_create_topic("bob", "ev", NULL);
    fx_expect(f, &c, 200);
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    st.retention_ms = 0;
    st.present = P(1);
    c = c_create_topic("bob", "ev", &st);
    fx_expect(f, &c, 200);
    st.retention_ms = 5;
    c = c_create_topic("bob", "ev", &st);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 409);
    assert_string_equal(jerr(&r), "conflict");
    res_free(&r);
    /* Topics and queues are separate name spaces. */
    c = c_create_queue("alice", "ev", NULL);
    fx_expect(f, &c, 201);

    f->nevents = 0;
    assert_int_equal(tpub(f, "ev", "zero"), 0);
    assert_true(fx_saw(f, "append:ev"));
    assert_int_equal(tpub(f, "ev", "one"), 1);
    const char *bodies[] = {"two", "three"};
    c = c_publish_n("bob", true, "ev", 2, bodies, 0, NULL);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "ids")), 2);
    assert_int_equal(cJSON_GetArrayItem(jget(r.json, "offsets"), 0)->valueint, 2);
    assert_int_equal(cJSON_GetArrayItem(jget(r.json, "offsets"), 1)->valueint, 3);
    res_free(&r);
    assert_int_equal(topic_field(f, "ev", "next_offset"), 4);
    assert_int_equal(topic_field(f, "ev", "messages"), 4);
    assert_int_equal(topic_field(f, "ev", "bytes"), 15);
    /* Delay on a topic: 400. Unknown topic: 404 topic_not_found. */
    c = c_publish("alice", true, "ev", "x", 10, NULL);
    fx_expect(f, &c, 400);
    c = c_publish("alice", true, "nope", "x", 0, NULL);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "topic_not_found");
    res_free(&r);
    /* Idempotency on topics. */
    c = c_publish("alice", true, "ev", "k", 0, "key");
    struct res first = fx_run(f, &c);
    r = fx_run(f, &c);
    assert_string_equal(r.text, first.text);
    assert_int_equal(jint(r.json, "offset"), 4);
    res_free(&r);
    res_free(&first);
    assert_int_equal(topic_field(f, "ev", "next_offset"), 5);
    /* Topics never answer 429. */
    for (int i = 0; i < 50; i++)
        tpub(f, "ev", "more");
    fx_free(f);
}

static void test_topic_reads(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0, 0, 0);
    bool empty = false;
    struct res r = r_read_topic(f, "bob", "t", STORE_FROM_EARLIEST, 0, 100, &empty);
    assert_int_equal(r.status, 200);
    assert_true(empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 0);
    assert_int_equal(jint(r.json, "next_offset"), 0);
    res_free(&r);
    tpub(f, "t", "a");
    f->now += 1;
    tpub(f, "t", "b");
    static const uint8_t bin[] = {0x80, 0x81};
    struct command c = cmd_new("carol", mom_v1_Command_publish_tag);
    c.pb.kind.publish.kind = mom_v1_ResourceKind_TOPIC;
    strcpy(c.pb.kind.publish.name, "t");
    struct command_item it;
    memset(&it, 0, sizeof it);
    it.body = bin;
    it.body_len = 2;
    strcpy(it.content_type, "image/x");
    c.items = &it;
    c.item_count = 1;
    fx_expect(f, &c, 201);

    r = r_read_topic(f, "bob", "t", STORE_FROM_EARLIEST, 0, 100, &empty);
    assert_false(empty);
    cJSON *msgs = jmsgs(&r);
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
    assert_int_equal(jint(m0, "offset"), 0);
    assert_string_equal(jstr(m0, "body"), "a");
    assert_string_equal(jstr(m0, "encoding"), "utf-8");
    assert_string_equal(jstr(m0, "content_type"), "application/octet-stream");
    assert_string_equal(jstr(m0, "publisher"), "alice");
    assert_string_equal(jstr(m0, "published_at"), "2023-11-14T22:13:20.000Z");
    assert_non_null(jstr(m0, "id"));
    cJSON *m2 = cJSON_GetArrayItem(msgs, 2);
    assert_string_equal(jstr(m2, "encoding"), "base64");
    assert_string_equal(jstr(m2, "body"), "gIE=");
    assert_string_equal(jstr(m2, "content_type"), "image/x");
    assert_string_equal(jstr(m2, "publisher"), "carol");
    assert_int_equal(jint(r.json, "next_offset"), 3);
    res_free(&r);
    /* max, and reading on from next_offset. */
    r = r_read_topic(f, "bob", "t", STORE_FROM_OFFSET, 1, 1, &empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "b");
    assert_int_equal(jint(r.json, "next_offset"), 2);
    res_free(&r);
    r = r_read_topic(f, "bob", "t", STORE_FROM_LATEST, 0, 100, &empty);
    assert_true(empty);
    assert_int_equal(jint(r.json, "next_offset"), 3);
    res_free(&r);
    r = r_read_topic(f, "bob", "t", STORE_FROM_OFFSET, 3, 100, &empty);
    assert_int_equal(r.status, 200);
    assert_true(empty);
    res_free(&r);
    r = r_read_topic(f, "bob", "t", STORE_FROM_OFFSET, 4, 100, &empty);
    assert_int_equal(r.status, 400);
    assert_string_equal(jerr(&r), "offset_out_of_range");
    res_free(&r);
    r = r_read_topic(f, "bob", "none", STORE_FROM_EARLIEST, 0, 100, &empty);
    assert_int_equal(r.status, 404);
    res_free(&r);
    fx_free(f);
}

static void test_retention(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "count", 0, 2, 0);
    for (int i = 0; i < 5; i++)
        tpub(f, "count", "x");
    assert_int_equal(topic_field(f, "count", "first_offset"), 3);
    assert_int_equal(topic_field(f, "count", "next_offset"), 5);
    assert_int_equal(topic_field(f, "count", "messages"), 2);
    /* An offset below first_offset is raised to it. */
    bool empty;
    struct res r = r_read_topic(f, "bob", "count", STORE_FROM_OFFSET, 0, 100, &empty);
    assert_int_equal(r.status, 200);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "offset"), 3);
    res_free(&r);

    make_topic(f, "bytes", 0, 0, 10);
    tpub(f, "bytes", "1234");
    tpub(f, "bytes", "5678");
    tpub(f, "bytes", "90"); /* 10 bytes: all kept */
    assert_int_equal(topic_field(f, "bytes", "messages"), 3);
    tpub(f, "bytes", "a"); /* 11: the oldest goes */
    assert_int_equal(topic_field(f, "bytes", "first_offset"), 1);
    assert_int_equal(topic_field(f, "bytes", "bytes"), 7);
    tpub(f, "bytes", "this one is larger than ten"); /* the newest always stays */
    assert_int_equal(topic_field(f, "bytes", "messages"), 1);
    assert_int_equal(topic_field(f, "bytes", "first_offset"), 4);

    make_topic(f, "age", 1000, 0, 0);
    tpub(f, "age", "old");
    f->now += 600;
    tpub(f, "age", "new");
    assert_true(store_next_deadline(f->s) == T0 + 1000);
    f->now = T0 + 999;
    struct command c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(topic_field(f, "age", "messages"), 2);
    f->now = T0 + 1000;
    fx_expect(f, &c, 204);
    assert_int_equal(topic_field(f, "age", "messages"), 1);
    assert_int_equal(topic_field(f, "age", "first_offset"), 1);
    assert_true(store_next_deadline(f->s) == T0 + 1600);
    f->now = T0 + 5000;
    fx_expect(f, &c, 204);
    assert_int_equal(topic_field(f, "age", "messages"), 0);
    assert_int_equal(topic_field(f, "age", "first_offset"), 2);
    assert_int_equal(topic_field(f, "age", "next_offset"), 2);
    assert_true(store_next_deadline(f->s) == UINT64_MAX);
    r = r_read_topic(f, "bob", "age", STORE_FROM_EARLIEST, 0, 100, &empty);
    assert_true(empty);
    assert_int_equal(jint(r.json, "next_offset"), 2);
    res_free(&r);
    /* Age retention also applies lazily at publish. */
    tpub(f, "age", "a");
    f->now += 2000;
    assert_int_equal(tpub(f, "age", "b"), 3);
    assert_int_equal(topic_field(f, "age", "messages"), 1);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.topics, 3);
    assert_int_equal(st.messages, 2 + 1 + 1);
    fx_free(f);
}

static void test_subscriptions(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0, 3, 0);
    tpub(f, "t", "a");
    tpub(f, "t", "b");
    struct command c = c_sub("bob", "t", "late", false);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(r.json, "name"), "late");
    assert_string_equal(jstr(r.json, "topic"), "t");
    assert_string_equal(jstr(r.json, "owner"), "bob");
    assert_string_equal(jstr(r.json, "created_at"), "2023-11-14T22:13:20.000Z");
    assert_int_equal(jint(r.json, "cursor"), 2);
    assert_int_equal(jint(r.json, "lag"), 0);
    res_free(&r);
    c = c_sub("bob", "t", "early", true);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 0);
    assert_int_equal(jint(r.json, "lag"), 2);
    res_free(&r);
    /* A repeat PUT is 200 and start does not apply again. */
    c = c_sub("carol", "t", "late", true);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "cursor"), 2);
    assert_string_equal(jstr(r.json, "owner"), "bob");
    res_free(&r);
    c = c_sub("bob", "none", "s", true);
    fx_expect(f, &c, 404);

    /* Reads are stateless until acked. */
    bool empty;
    r = r_read_sub(f, "bob", "t", "early", 1, &empty);
    assert_false(empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "a");
    assert_int_equal(jint(r.json, "next_offset"), 1);
    res_free(&r);
    r = r_read_sub(f, "bob", "t", "early", 10, &empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 2);
    res_free(&r);
    r = r_read_sub(f, "bob", "t", "late", 10, &empty);
    assert_true(empty);
    assert_int_equal(jint(r.json, "next_offset"), 2);
    res_free(&r);
    r = r_read_sub(f, "bob", "t", "missing", 10, &empty);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "subscription_not_found");
    res_free(&r);

    /* Ack rules: >= next_offset is 400; else the cursor moves past N;
     * below the cursor is 204 and changes nothing. */
    c = c_sub_ack("carol", "t", "early", 2);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 400);
    assert_string_equal(jerr(&r), "offset_out_of_range");
    res_free(&r);
    c = c_sub_ack("carol", "t", "early", 0);
    fx_expect(f, &c, 204);
    r = r_get_sub(f, "bob", "t", "early");
    assert_int_equal(jint(r.json, "cursor"), 1);
    assert_int_equal(jint(r.json, "lag"), 1);
    res_free(&r);
    c = c_sub_ack("carol", "t", "early", 1);
    fx_expect(f, &c, 204);
    c = c_sub_ack("carol", "t", "early", 0);
    fx_expect(f, &c, 204);
    r = r_get_sub(f, "bob", "t", "early");
    assert_int_equal(jint(r.json, "cursor"), 2);
    res_free(&r);
    c = c_sub_ack("carol", "t", "nope", 0);
    fx_expect(f, &c, 404);

    /* Retention wins over a slow subscription: its cursor is raised. */
    for (int i = 0; i < 5; i++)
        tpub(f, "t", "x"); /* offsets 2..6, keeps 4..6 */
    r = r_get_sub(f, "bob", "t", "early");
    assert_int_equal(jint(r.json, "cursor"), 4);
    assert_int_equal(jint(r.json, "lag"), 3);
    res_free(&r);
    r = r_read_sub(f, "bob", "t", "early", 1, &empty);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "offset"), 4);
    res_free(&r);
    c = c_sub_ack("bob", "t", "early", 3); /* below the raised cursor: no change */
    fx_expect(f, &c, 204);
    c = c_sub_ack("bob", "t", "early", 4);
    fx_expect(f, &c, 204);
    r = r_get_sub(f, "bob", "t", "early");
    assert_int_equal(jint(r.json, "cursor"), 5);
    res_free(&r);

    /* Listings. */
    struct store_caller bob = {"bob", false}, carol = {"carol", false};
    struct reply rep = {0};
    store_list_subscriptions(f->s, "t", &carol, &rep);
    r = res_from(&rep);
    cJSON *subs = jget(r.json, "subscriptions");
    assert_int_equal(cJSON_GetArraySize(subs), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(subs, 0), "name"), "early");
    assert_string_equal(jstr(cJSON_GetArrayItem(subs, 1), "name"), "late");
    res_free(&r);
    r = r_get_topic(f, "bob", false, "t");
    subs = jget(r.json, "subscriptions");
    assert_int_equal(cJSON_GetArraySize(subs), 2);
    assert_string_equal(cJSON_GetArrayItem(subs, 0)->valuestring, "early");
    res_free(&r);
    make_topic(f, "a-first", 0, 0, 0);
    c = c_sub("bob", "a-first", "zzz", false);
    fx_expect(f, &c, 201);
    c = c_sub("carol", "a-first", "carols", false);
    fx_expect(f, &c, 201);
    store_list_user_subscriptions(f->s, &bob, &rep);
    r = res_from(&rep);
    subs = jget(r.json, "subscriptions");
    assert_int_equal(cJSON_GetArraySize(subs), 3);
    assert_string_equal(jstr(cJSON_GetArrayItem(subs, 0), "topic"), "a-first");
    assert_string_equal(jstr(cJSON_GetArrayItem(subs, 1), "name"), "early");
    assert_string_equal(jstr(cJSON_GetArrayItem(subs, 2), "name"), "late");
    res_free(&r);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.subscriptions, 4);

    /* Delete: the sub's owner, the topic's owner or an admin. */
    c = c_unsub("carol", "t", "early");
    r = fx_run(f, &c);
    assert_int_equal(r.status, 403);
    assert_string_equal(jerr(&r), "forbidden");
    res_free(&r);
    c = c_unsub("carol", "t", "missing");
    fx_expect(f, &c, 404);
    c = c_unsub("bob", "t", "early");
    fx_expect(f, &c, 204);
    c = c_unsub("alice", "t", "late"); /* topic owner */
    fx_expect(f, &c, 204);
    c = c_unsub("root", "a-first", "carols");
    c.pb.admin = true;
    fx_expect(f, &c, 204);
    r = r_get_sub(f, "bob", "t", "early");
    assert_int_equal(r.status, 404);
    res_free(&r);
    fx_free(f);
}

static void test_private_topic_and_delete(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    st.private_access = true;
    st.present = P(4);
    struct command c = c_create_topic("alice", "p", &st);
    struct res r = fx_run(f, &c);
    assert_string_equal(jstr(r.json, "access"), "private");
    res_free(&r);
    tpub(f, "p", "secret");
    c = c_publish("bob", true, "p", "x", 0, NULL);
    fx_expect(f, &c, 403);
    bool empty;
    r = r_read_topic(f, "bob", "p", STORE_FROM_EARLIEST, 0, 10, &empty);
    assert_int_equal(r.status, 403);
    res_free(&r);
    r = r_get_topic(f, "bob", false, "p");
    assert_int_equal(r.status, 403);
    res_free(&r);
    c = c_sub("bob", "p", "s", true);
    fx_expect(f, &c, 403);
    c = c_sub("alice", "p", "s", true);
    fx_expect(f, &c, 201);
    r = r_read_sub(f, "bob", "p", "s", 10, &empty);
    assert_int_equal(r.status, 403);
    res_free(&r);
    c = c_sub_ack("bob", "p", "s", 0);
    fx_expect(f, &c, 403);
    struct store_caller bob = {"bob", false}, alice = {"alice", false};
    struct reply rep = {0};
    store_list_topics(f->s, &bob, &rep);
    r = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "topics")), 0);
    res_free(&r);
    store_list_topics(f->s, &alice, &rep);
    r = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "topics")), 1);
    res_free(&r);
    store_list_subscriptions(f->s, "p", &bob, &rep);
    r = res_from(&rep);
    assert_int_equal(r.status, 403);
    res_free(&r);

    /* Delete: owner only; subscriptions go with the topic; a re-created
     * topic starts again at offset 0. */
    c = c_delete("bob", true, "p");
    fx_expect(f, &c, 403);
    f->nevents = 0;
    c = c_delete("alice", true, "p");
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "tdel:p"));
    assert_false(store_topic_exists(f->s, "p"));
    struct store_stats stats;
    store_get_stats(f->s, &stats);
    assert_int_equal(stats.subscriptions, 0);
    assert_int_equal(stats.messages, 0);
    c = c_delete("alice", true, "p");
    fx_expect(f, &c, 404);
    c = c_create_topic("alice", "p", NULL);
    fx_expect(f, &c, 201);
    assert_int_equal(tpub(f, "p", "again"), 0);
    r = r_get_sub(f, "alice", "p", "s");
    assert_int_equal(r.status, 404);
    res_free(&r);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_put_and_publish),
        cmocka_unit_test(test_topic_reads),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_subscriptions),
        cmocka_unit_test(test_private_topic_and_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
