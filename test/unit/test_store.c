/* Unit tests for broker/store: queues (PUT semantics, FIFO order, leases,
 * visibility expiry by Tick and by lazy advance, redelivery, dead-letter
 * queues, nack with delay, extend, auto-ack, receipts, idempotency, delays,
 * max_length, TTL, access and delete rules, deadlines), users, and the
 * answers' JSON shapes. Topics: test_store_topic.c; snapshots:
 * test_store_snapshot.c.
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

static mom_v1_QueueSettings qs(void)
{
    mom_v1_QueueSettings st = mom_v1_QueueSettings_init_zero;
    return st;
}

#define P(n) (1u << (n))

static void make_queue(struct fx *f, const char *name)
{
    struct command c = c_create_queue("alice", name, NULL);
    fx_expect(f, &c, 201);
}

static void publish(struct fx *f, const char *queue, const char *body)
{
    struct command c = c_publish("alice", false, queue, body, 0, NULL);
    fx_expect(f, &c, 201);
}

static void test_queue_put_semantics(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.visibility_timeout_ms = 5000;
    st.max_deliveries = 3;
    st.present = P(1) | P(2);
    struct command c = c_create_queue("alice", "jobs", &st);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(r.json, "name"), "jobs");
    assert_string_equal(jstr(r.json, "owner"), "alice");
    assert_string_equal(jstr(r.json, "created_at"), "2023-11-14T22:13:20.000Z");
    assert_int_equal(jint(r.json, "depth"), 0);
    assert_int_equal(jint(r.json, "in_flight"), 0);
    assert_int_equal(jint(r.json, "delayed"), 0);
    assert_int_equal(jint(r.json, "visibility_timeout_ms"), 5000);
    assert_int_equal(jint(r.json, "max_deliveries"), 3);
    assert_null(jstr(r.json, "dead_letter_queue"));
    assert_int_equal(jint(r.json, "max_length"), 0);
    assert_int_equal(jint(r.json, "message_ttl_ms"), 0);
    assert_string_equal(jstr(r.json, "access"), "public");
    char *created = strdup(r.text);
    res_free(&r);

    /* Same present settings (by another user): 200, the same object. */
    f->now += 10;
    c = c_create_queue("bob", "jobs", &st);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.text, created);
    res_free(&r);
    free(created);

    /* Empty PUT on an existing queue: 200, nothing changes. */
    c = c_create_queue("alice", "jobs", NULL);
    fx_expect(f, &c, 200);
    /* Only present fields are compared: a subset matches. */
    mom_v1_QueueSettings sub = qs();
    sub.max_deliveries = 3;
    sub.visibility_timeout_ms = 99; /* not present: ignored */
    sub.present = P(2);
    c = c_create_queue("alice", "jobs", &sub);
    fx_expect(f, &c, 200);
    /* A present field that differs: 409 conflict. */
    sub.present = P(1);
    c = c_create_queue("alice", "jobs", &sub);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 409);
    assert_string_equal(jerr(&r), "conflict");
    res_free(&r);
    mom_v1_QueueSettings priv = qs();
    priv.private_access = true;
    priv.present = P(6);
    c = c_create_queue("alice", "jobs", &priv);
    fx_expect(f, &c, 409);
    assert_int_equal(queue_field(f, "jobs", "visibility_timeout_ms"), 5000);

    /* Defaults; a queue naming itself as DLQ is 400; full settings echo. */
    mom_v1_QueueSettings all = qs();
    all.visibility_timeout_ms = 0;
    all.max_deliveries = 0;
    strcpy(all.dead_letter_queue, "x.dlq");
    all.max_length = 10;
    all.message_ttl_ms = 60000;
    all.private_access = true;
    all.present = 0x7e;
    c = c_create_queue("carol", "x", &all);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_int_equal(jint(r.json, "visibility_timeout_ms"), 0);
    assert_string_equal(jstr(r.json, "dead_letter_queue"), "x.dlq");
    assert_int_equal(jint(r.json, "max_length"), 10);
    assert_int_equal(jint(r.json, "message_ttl_ms"), 60000);
    assert_string_equal(jstr(r.json, "access"), "private");
    assert_string_equal(jstr(r.json, "owner"), "carol");
    res_free(&r);
    c = c_create_queue("alice", "plain", NULL);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "visibility_timeout_ms"), 30000);
    res_free(&r);
    mom_v1_QueueSettings self = qs();
    strcpy(self.dead_letter_queue, "selfish");
    self.present = P(3);
    c = c_create_queue("alice", "selfish", &self);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 400);
    assert_string_equal(jerr(&r), "bad_request");
    res_free(&r);
    assert_false(store_queue_exists(f->s, "selfish"));
    mom_v1_QueueSettings longvt = qs();
    longvt.visibility_timeout_ms = 43200001;
    longvt.present = P(1);
    c = c_create_queue("alice", "slow", &longvt);
    fx_expect(f, &c, 400);

    /* List: sorted by name, private queues only for owner and admins. */
    struct store_caller bob = {"bob", false}, carol = {"carol", false}, admin = {"root", true};
    struct reply rep = {0};
    store_list_queues(f->s, &bob, &rep);
    r = res_from(&rep);
    cJSON *qsj = jget(r.json, "queues");
    assert_int_equal(cJSON_GetArraySize(qsj), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(qsj, 0), "name"), "jobs");
    assert_string_equal(jstr(cJSON_GetArrayItem(qsj, 1), "name"), "plain");
    res_free(&r);
    store_list_queues(f->s, &carol, &rep);
    r = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "queues")), 3);
    assert_string_equal(jstr(cJSON_GetArrayItem(jget(r.json, "queues"), 2), "name"), "x");
    res_free(&r);
    store_list_queues(f->s, &admin, &rep);
    r = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(r.json, "queues")), 3);
    res_free(&r);
    fx_free(f);
}

static void test_fifo_order_and_bodies(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    struct command c = c_publish("alice", false, "q", "first", 0, NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_int_equal(jint(r.json, "seq"), 1);
    char first_id[64];
    snprintf(first_id, sizeof first_id, "%s", jstr(r.json, "id"));
    res_free(&r);
    f->now += 5;
    publish(f, "q", "second \"quoted\"\n");
    /* Binary body with a content type. */
    static const uint8_t bin[] = {0xff, 0x00, 0xfe, 'a'};
    c = cmd_new("bob", mom_v1_Command_publish_tag);
    strcpy(c.pb.kind.publish.name, "q");
    struct command_item it;
    memset(&it, 0, sizeof it);
    it.body = bin;
    it.body_len = sizeof bin;
    strcpy(it.content_type, "application/x-bin");
    c.items = &it;
    c.item_count = 1;
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "seq"), 3);
    res_free(&r);
    /* Batch: ids and seqs. */
    const char *bodies[] = {"b1", "b2", "\xc3\xa9t\xc3\xa9"};
    c = c_publish_n("alice", false, "q", 3, bodies, 0, NULL);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    cJSON *ids = jget(r.json, "ids"), *seqs = jget(r.json, "seqs");
    assert_int_equal(cJSON_GetArraySize(ids), 3);
    assert_int_equal(cJSON_GetArrayItem(seqs, 0)->valueint, 4);
    assert_int_equal(cJSON_GetArrayItem(seqs, 2)->valueint, 6);
    assert_string_not_equal(cJSON_GetArrayItem(ids, 0)->valuestring,
                            cJSON_GetArrayItem(ids, 1)->valuestring);
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 6);

    r = fx_receive(f, "q", 10, -1, NULL);
    cJSON *msgs = jmsgs(&r);
    assert_int_equal(cJSON_GetArraySize(msgs), 6);
    for (int i = 0; i < 6; i++) {
        cJSON *m = cJSON_GetArrayItem(msgs, i);
        assert_int_equal(jint(m, "seq"), (uint64_t)i + 1);
        assert_int_equal(jint(m, "delivery_count"), 1);
        assert_non_null(jstr(m, "receipt"));
    }
    cJSON *m0 = cJSON_GetArrayItem(msgs, 0);
    assert_string_equal(jstr(m0, "id"), first_id);
    assert_string_equal(jstr(m0, "body"), "first");
    assert_string_equal(jstr(m0, "encoding"), "utf-8");
    assert_string_equal(jstr(m0, "content_type"), "application/octet-stream");
    assert_string_equal(jstr(m0, "publisher"), "alice");
    assert_string_equal(jstr(m0, "published_at"), "2023-11-14T22:13:20.000Z");
    cJSON *m1 = cJSON_GetArrayItem(msgs, 1);
    assert_string_equal(jstr(m1, "body"), "second \"quoted\"\n");
    assert_string_equal(jstr(m1, "published_at"), "2023-11-14T22:13:20.005Z");
    cJSON *m2 = cJSON_GetArrayItem(msgs, 2);
    assert_string_equal(jstr(m2, "encoding"), "base64");
    assert_string_equal(jstr(m2, "body"), "/wD+YQ==");
    assert_string_equal(jstr(m2, "content_type"), "application/x-bin");
    assert_string_equal(jstr(m2, "publisher"), "bob");
    assert_string_equal(jstr(cJSON_GetArrayItem(msgs, 5), "body"), "\xc3\xa9t\xc3\xa9");
    assert_string_equal(jstr(cJSON_GetArrayItem(msgs, 5), "encoding"), "utf-8");
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    assert_int_equal(queue_field(f, "q", "in_flight"), 6);
    /* Nothing visible: an empty list. */
    r = fx_receive(f, "q", 10, -1, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 0);
    res_free(&r);
    /* max is clamped to 1..100 by the store too. */
    for (int i = 0; i < 120; i++)
        publish(f, "q", "x");
    c = c_receive("alice", "q", 0, -1, false);
    r = fx_run(f, &c);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    res_free(&r);
    c = c_receive("alice", "q", 1000, -1, false);
    r = fx_run(f, &c);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 100);
    res_free(&r);
    fx_free(f);
}

static void test_lease_expiry_tick_and_lazy(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    char receipt[65];
    struct res r = fx_receive(f, "q", 1, 1000, receipt);
    res_free(&r);
    assert_true(store_next_deadline(f->s) == T0 + 1000);
    /* Before expiry: still leased, nothing to receive. */
    f->now = T0 + 999;
    r = fx_receive(f, "q", 1, 1000, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 0);
    res_free(&r);
    assert_false(store_queue_has_visible(f->s, "q", T0 + 999));
    assert_true(store_queue_has_visible(f->s, "q", T0 + 1000));
    /* Tick at expiry: the message is back (depth 1, not in flight). */
    f->now = T0 + 1000;
    f->nevents = 0;
    struct command c = c_tick();
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ready:q"));
    assert_int_equal(queue_field(f, "q", "depth"), 1);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    assert_true(store_next_deadline(f->s) == UINT64_MAX);
    /* The ended lease's receipt is dead. */
    c = c_ack("alice", "q", receipt);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 410);
    assert_string_equal(jerr(&r), "receipt_expired");
    res_free(&r);
    /* Redelivery counts. */
    char receipt2[65];
    r = fx_receive(f, "q", 1, 500, receipt2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 2);
    res_free(&r);
    assert_string_not_equal(receipt, receipt2);
    /* Lazy: no Tick, a receive after the lease end gets it again. */
    f->now = T0 + 1500;
    r = fx_receive(f, "q", 1, 500, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 3);
    res_free(&r);
    c = c_ack("alice", "q", receipt2);
    fx_expect(f, &c, 410);
    /* visibility_timeout 0: leased until the next command at a later time. */
    f->now = T0 + 3000;
    char receipt3[65];
    r = fx_receive(f, "q", 1, 0, receipt3);
    res_free(&r);
    c = c_ack("alice", "q", receipt3);
    fx_expect(f, &c, 410); /* a live lease needs now < expiry */
    r = fx_receive(f, "q", 1, 0, NULL);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 5);
    res_free(&r);
    fx_free(f);
}

static void test_leased_head_and_positions(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    for (int i = 0; i < 4; i++)
        publish(f, "q", "m");
    char r1[65], r2[65];
    struct res r = fx_receive(f, "q", 1, 100, r1); /* seq 1, lease to +100 */
    res_free(&r);
    r = fx_receive(f, "q", 1, 10000, r2); /* the leased head does not block: seq 2 */
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "seq"), 2);
    res_free(&r);
    /* Nack seq 2: it returns before seq 3. */
    struct command c = c_nack("alice", "q", r2, 0);
    f->nevents = 0;
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ready:q"));
    r = fx_receive(f, "q", 1, 10000, r2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "seq"), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 2);
    res_free(&r);
    /* Seq 1's lease ends: it comes before 3 and 4. */
    f->now += 100;
    r = fx_receive(f, "q", 10, 10000, NULL);
    cJSON *msgs = jmsgs(&r);
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    assert_int_equal(jint(cJSON_GetArrayItem(msgs, 0), "seq"), 1);
    assert_int_equal(jint(cJSON_GetArrayItem(msgs, 1), "seq"), 3);
    assert_int_equal(jint(cJSON_GetArrayItem(msgs, 2), "seq"), 4);
    res_free(&r);
    fx_free(f);
}

static void test_ack_and_receipts(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    publish(f, "q", "b");
    char ra[65], rb[65];
    struct res r = fx_receive(f, "q", 1, 1000, ra);
    res_free(&r);
    r = fx_receive(f, "q", 1, 1000, rb);
    res_free(&r);
    assert_true(strlen(ra) <= 64);
    struct command c = c_ack("alice", "q", ra);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 204);
    assert_null(r.text);
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "in_flight"), 1);
    c = c_ack("alice", "q", ra); /* acked twice */
    fx_expect(f, &c, 410);
    static const char *const garbage[] = {
        "", "x", "1.1.1", "zz.1.1", "1.1", "1.1.1.1", "ffffffffffffffffff.1.1", "1.2.1 "};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        c = c_ack("alice", "q", garbage[i]);
        fx_expect(f, &c, 410);
        c = c_nack("alice", "q", garbage[i], 0);
        fx_expect(f, &c, 410);
        c = c_extend("alice", "q", garbage[i], 10);
        fx_expect(f, &c, 410);
    }
    /* A receipt of another queue is not a lease here. */
    make_queue(f, "other");
    c = c_ack("alice", "other", rb);
    fx_expect(f, &c, 410);
    /* Unknown queue: 404 before anything else. */
    c = c_ack("alice", "nope", rb);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "queue_not_found");
    res_free(&r);
    c = c_ack("alice", "q", rb);
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.bytes, 0);
    fx_free(f);
}

static void test_max_deliveries_dead_letter(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.max_deliveries = 2;
    strcpy(st.dead_letter_queue, "dlq");
    st.present = P(2) | P(3);
    struct command c = c_create_queue("alice", "work", &st);
    fx_expect(f, &c, 201);
    make_queue(f, "dlq");
    publish(f, "dlq", "already there"); /* dlq seq 1 */
    c = c_publish("bob", false, "work", "poison", 0, NULL);
    struct res r = fx_run(f, &c);
    char id[64];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    res_free(&r);
    publish(f, "work", "fine");
    uint64_t published = f->now;
    /* Delivery 1 and 2 expire (the second by Tick); then it moves. */
    f->now += 10;
    r = fx_receive(f, "work", 1, 100, NULL);
    res_free(&r);
    f->now += 100;
    r = fx_receive(f, "work", 1, 100, NULL);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "seq"), 1);
    res_free(&r);
    f->now += 100;
    f->nevents = 0;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ready:dlq"));
    assert_int_equal(queue_field(f, "work", "depth"), 1);
    assert_int_equal(queue_field(f, "dlq", "depth"), 2);
    /* In the DLQ: same id, body, publisher, published_at; new seq; count 0. */
    r = fx_receive(f, "dlq", 10, -1, NULL);
    cJSON *m = cJSON_GetArrayItem(jmsgs(&r), 1);
    assert_string_equal(jstr(m, "id"), id);
    assert_string_equal(jstr(m, "body"), "poison");
    assert_string_equal(jstr(m, "publisher"), "bob");
    assert_int_equal(jint(m, "seq"), 2);
    assert_int_equal(jint(m, "delivery_count"), 1);
    char when[25];
    clock_format_rfc3339(published, when);
    assert_string_equal(jstr(m, "published_at"), when);
    res_free(&r);
    /* The other message was untouched. */
    r = fx_receive(f, "work", 10, -1, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "fine");
    res_free(&r);
    struct store_stats stats;
    store_get_stats(f->s, &stats);
    assert_int_equal(stats.dropped_no_dlq, 0);
    fx_free(f);
}

static void test_dead_letter_queue_missing(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.max_deliveries = 1;
    strcpy(st.dead_letter_queue, "later");
    st.present = P(2) | P(3);
    struct command c = c_create_queue("alice", "w", &st);
    fx_expect(f, &c, 201);
    publish(f, "w", "x");
    publish(f, "w", "y");
    struct res r = fx_receive(f, "w", 1, 10, NULL);
    res_free(&r);
    f->now += 10;
    c = c_tick();
    fx_expect(f, &c, 204);
    struct store_stats stats;
    store_get_stats(f->s, &stats);
    assert_int_equal(stats.dropped_no_dlq, 1);
    assert_int_equal(stats.messages, 1);
    assert_int_equal(queue_field(f, "w", "depth"), 1);
    /* The DLQ may be created later; then messages move there. */
    make_queue(f, "later");
    char rc[65];
    r = fx_receive(f, "w", 1, 10, rc);
    res_free(&r);
    c = c_nack("alice", "w", rc, 0); /* nack ends the last lease: dead-letter */
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "later", "depth"), 1);
    assert_int_equal(queue_field(f, "w", "depth"), 0);
    /* No DLQ configured: dropped after max_deliveries, not counted. */
    st.present = P(2);
    c = c_create_queue("alice", "plain", &st);
    fx_expect(f, &c, 201);
    publish(f, "plain", "z");
    r = fx_receive(f, "plain", 1, 10, NULL);
    res_free(&r);
    f->now += 10;
    r = fx_receive(f, "plain", 1, 10, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 0);
    res_free(&r);
    store_get_stats(f->s, &stats);
    assert_int_equal(stats.dropped_no_dlq, 1);
    assert_int_equal(queue_field(f, "plain", "depth"), 0);
    fx_free(f);
}

static void test_nack_with_delay(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    publish(f, "q", "b");
    char ra[65];
    struct res r = fx_receive(f, "q", 1, 60000, ra);
    res_free(&r);
    struct command c = c_nack("alice", "q", ra, 500);
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "delayed"), 1);
    assert_int_equal(queue_field(f, "q", "depth"), 2);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    c = c_nack("alice", "q", ra, 0); /* the lease ended */
    fx_expect(f, &c, 410);
    assert_true(store_next_deadline(f->s) == T0 + 500);
    r = fx_receive(f, "q", 10, 60000, NULL); /* only b */
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "b");
    res_free(&r);
    f->now += 499;
    assert_false(store_queue_has_visible(f->s, "q", f->now));
    f->now += 1;
    assert_true(store_queue_has_visible(f->s, "q", f->now));
    f->nevents = 0;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ready:q"));
    assert_int_equal(queue_field(f, "q", "delayed"), 0);
    r = fx_receive(f, "q", 10, 60000, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "a");
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 2);
    res_free(&r);
    /* delay_ms above 24 h: 400 before anything else. */
    c = c_nack("alice", "nope", ra, 86400001);
    fx_expect(f, &c, 400);
    fx_free(f);
}

static void test_extend(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    char ra[65];
    struct res r = fx_receive(f, "q", 1, 1000, ra);
    res_free(&r);
    f->now += 900;
    struct command c = c_extend("alice", "q", ra, 5000); /* counts from now */
    fx_expect(f, &c, 204);
    assert_true(store_next_deadline(f->s) == T0 + 5900);
    f->now = T0 + 5899;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "in_flight"), 1);
    c = c_extend("alice", "q", ra, 43200001);
    fx_expect(f, &c, 400);
    c = c_extend("alice", "q", ra, 43200000);
    fx_expect(f, &c, 204);
    /* Shorten to 0: the lease ends now; the receipt is dead. */
    c = c_extend("alice", "q", ra, 0);
    fx_expect(f, &c, 204);
    c = c_ack("alice", "q", ra);
    fx_expect(f, &c, 410);
    assert_int_equal(queue_field(f, "q", "depth"), 1);
    fx_free(f);
}

static void test_auto_ack(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    publish(f, "q", "b");
    struct command c = c_receive("alice", "q", 1, -1, true);
    struct res r = fx_run(f, &c);
    cJSON *m = cJSON_GetArrayItem(jmsgs(&r), 0);
    assert_true(cJSON_IsNull(jget(m, "receipt")));
    assert_int_equal(jint(m, "delivery_count"), 1);
    assert_string_equal(jstr(m, "body"), "a");
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 1);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    /* A redelivered message still counts its earlier delivery. */
    char rb[65];
    r = fx_receive(f, "q", 1, 10, rb);
    res_free(&r);
    f->now += 10;
    r = fx_run(f, &c);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "delivery_count"), 2);
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.messages, 0);
    fx_free(f);
}

static void test_idempotency(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    struct command c = c_publish("alice", false, "q", "once", 0, "key-1");
    struct res first = fx_run(f, &c);
    assert_int_equal(first.status, 201);
    f->now += 299999;
    struct res again = fx_run(f, &c);
    assert_int_equal(again.status, 201);
    assert_string_equal(again.text, first.text);
    res_free(&again);
    /* Within the window the key wins even with another body. */
    c = c_publish("alice", false, "q", "different", 0, "key-1");
    again = fx_run(f, &c);
    assert_string_equal(again.text, first.text);
    res_free(&again);
    assert_int_equal(queue_field(f, "q", "depth"), 1);
    /* Keys are per queue. */
    make_queue(f, "q2");
    c = c_publish("alice", false, "q2", "once", 0, "key-1");
    fx_expect(f, &c, 201);
    assert_int_equal(queue_field(f, "q2", "depth"), 1);
    /* After 5 minutes the key is forgotten: a new message. */
    f->now = T0 + 300000;
    c = c_publish("alice", false, "q", "once", 0, "key-1");
    again = fx_run(f, &c);
    assert_int_equal(again.status, 201);
    assert_string_not_equal(again.text, first.text);
    assert_int_equal(jint(again.json, "seq"), 2);
    res_free(&again);
    res_free(&first);
    assert_int_equal(queue_field(f, "q", "depth"), 2);
    /* A batch takes one key. */
    const char *bodies[] = {"x", "y"};
    c = c_publish_n("alice", false, "q", 2, bodies, 0, "batch-key");
    first = fx_run(f, &c);
    again = fx_run(f, &c);
    assert_string_equal(again.text, first.text);
    assert_non_null(jget(again.json, "seqs"));
    res_free(&first);
    res_free(&again);
    assert_int_equal(queue_field(f, "q", "depth"), 4);
    /* Errors are not remembered: a 429 with a key, then room, then 201. */
    mom_v1_QueueSettings st = qs();
    st.max_length = 1;
    st.present = P(4);
    c = c_create_queue("alice", "small", &st);
    fx_expect(f, &c, 201);
    publish(f, "small", "fill");
    c = c_publish("alice", false, "small", "retry", 0, "k429");
    fx_expect(f, &c, 429);
    struct res rr = fx_receive(f, "small", 1, -1, NULL);
    char receipt[65];
    fx_lease_of("small", jstr(cJSON_GetArrayItem(jmsgs(&rr), 0), "receipt"), receipt);
    res_free(&rr);
    struct command ack = c_ack("alice", "small", receipt);
    fx_expect(f, &ack, 204);
    first = fx_run(f, &c);
    assert_int_equal(first.status, 201);
    again = fx_run(f, &c);
    assert_string_equal(again.text, first.text);
    res_free(&first);
    res_free(&again);
    /* Applied without an answer (a follower): still remembered. */
    c = c_publish("alice", false, "q", "follower", 0, "quiet");
    c.pb.time_ms = f->now;
    assert_int_equal(store_apply(f->s, ++f->index, &c, NULL), MOM_OK);
    assert_int_equal(queue_field(f, "q", "depth"), 5);
    again = fx_run(f, &c);
    assert_int_equal(again.status, 201);
    assert_int_equal(jint(again.json, "seq"), 5);
    res_free(&again);
    assert_int_equal(queue_field(f, "q", "depth"), 5);
    /* A repeat from someone who may not publish gets 403, not the answer. */
    mom_v1_QueueSettings priv = qs();
    priv.private_access = true;
    priv.present = P(6);
    c = c_create_queue("alice", "p", &priv);
    fx_expect(f, &c, 201);
    c = c_publish("alice", false, "p", "mine", 0, "pk");
    fx_expect(f, &c, 201);
    c = c_publish("mallory", false, "p", "mine", 0, "pk");
    fx_expect(f, &c, 403);
    fx_free(f);
}

static void test_publish_delay(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    f->nevents = 0;
    struct command c = c_publish("alice", false, "q", "later", 1000, NULL);
    fx_expect(f, &c, 201);
    assert_false(fx_saw(f, "ready:q"));
    publish(f, "q", "now");
    assert_int_equal(queue_field(f, "q", "delayed"), 1);
    assert_int_equal(queue_field(f, "q", "depth"), 2);
    assert_true(store_next_deadline(f->s) == T0 + 1000);
    struct res r = fx_receive(f, "q", 10, 60000, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "now");
    res_free(&r);
    publish(f, "q", "after");
    f->now += 1000; /* lazy: the delayed one (seq 1) comes before seq 3 */
    r = fx_receive(f, "q", 10, 60000, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 2);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "later");
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "seq"), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 1), "body"), "after");
    res_free(&r);
    /* Limits: above 24 h is 400; on a topic any delay is 400. */
    c = c_publish("alice", false, "q", "x", 86400001, NULL);
    fx_expect(f, &c, 400);
    c = c_publish("alice", false, "q", "x", 86400000, NULL);
    fx_expect(f, &c, 201);
    fx_free(f);
}

static void test_max_length(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.max_length = 3;
    st.present = P(4);
    struct command c = c_create_queue("alice", "q", &st);
    fx_expect(f, &c, 201);
    publish(f, "q", "1");
    c = c_publish("alice", false, "q", "2", 5000, NULL); /* delayed ones count */
    fx_expect(f, &c, 201);
    const char *bodies[] = {"a", "b"};
    c = c_publish_n("alice", false, "q", 2, bodies, 0, NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 429);
    assert_string_equal(jerr(&r), "queue_full");
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 2); /* nothing of the batch */
    c = c_publish_n("alice", false, "q", 1, bodies, 0, NULL);
    fx_expect(f, &c, 201);
    c = c_publish("alice", false, "q", "over", 0, NULL);
    fx_expect(f, &c, 429);
    r = fx_receive(f, "q", 1, 10, NULL); /* leased ones count too */
    res_free(&r);
    c = c_publish("alice", false, "q", "over", 0, NULL);
    fx_expect(f, &c, 429);
    assert_int_equal(queue_field(f, "q", "depth"), 2);
    assert_int_equal(queue_field(f, "q", "in_flight"), 1);
    fx_free(f);
}

static void test_ttl(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.message_ttl_ms = 1000;
    st.max_deliveries = 1;
    strcpy(st.dead_letter_queue, "dlq");
    st.present = P(5) | P(2) | P(3);
    struct command c = c_create_queue("alice", "q", &st);
    fx_expect(f, &c, 201);
    make_queue(f, "dlq");
    publish(f, "q", "old");
    f->now += 500;
    publish(f, "q", "young");
    assert_true(store_next_deadline(f->s) == T0 + 1000);
    f->now = T0 + 1000;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "depth"), 1);
    assert_int_equal(queue_field(f, "dlq", "depth"), 0); /* expired: never dead-lettered */
    /* A leased message outlives its TTL until its lease ends, then is dropped. */
    char rc[65];
    struct res r = fx_receive(f, "q", 1, 2000, rc);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "body"), "young");
    res_free(&r);
    f->now = T0 + 2000;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "in_flight"), 1);
    f->now = T0 + 3000;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    assert_int_equal(queue_field(f, "dlq", "depth"), 0);
    struct store_stats stats;
    store_get_stats(f->s, &stats);
    assert_int_equal(stats.messages, 0);
    assert_int_equal(stats.dropped_no_dlq, 0);
    /* Lazy expiry at receive; a nacked expired message is dropped. */
    publish(f, "q", "a");
    f->now += 1000;
    r = fx_receive(f, "q", 1, 5000, NULL);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 0);
    res_free(&r);
    /* A delayed message whose TTL passes before it is visible is dropped. */
    c = c_publish("alice", false, "q", "never", 5000, NULL);
    fx_expect(f, &c, 201);
    assert_true(store_next_deadline(f->s) == f->now + 1000);
    f->now += 1000;
    assert_false(store_queue_has_visible(f->s, "q", f->now + 10000));
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_int_equal(queue_field(f, "q", "delayed"), 0);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    fx_free(f);
}

static void test_private_access_and_precedence(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = qs();
    st.private_access = true;
    st.present = P(6);
    struct command c = c_create_queue("alice", "secret", &st);
    fx_expect(f, &c, 201);
    c = c_publish("bob", false, "secret", "x", 0, NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 403);
    assert_string_equal(jerr(&r), "forbidden");
    res_free(&r);
    c = c_receive("bob", "secret", 1, -1, false);
    fx_expect(f, &c, 403);
    c = c_ack("bob", "secret", "1.1.1");
    fx_expect(f, &c, 403);
    c = c_nack("bob", "secret", "1.1.1", 0);
    fx_expect(f, &c, 403);
    c = c_extend("bob", "secret", "1.1.1", 0);
    fx_expect(f, &c, 403);
    r = r_get_queue(f, "bob", false, "secret");
    assert_int_equal(r.status, 403);
    res_free(&r);
    r = r_get_queue(f, "bob", false, "missing");
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "queue_not_found");
    res_free(&r);
    c = c_publish("bob", false, "missing", "x", 0, NULL);
    fx_expect(f, &c, 404);
    /* Owner and admins may. */
    c = c_publish("alice", false, "secret", "x", 0, NULL);
    fx_expect(f, &c, 201);
    c = c_receive("root", "secret", 1, -1, false);
    c.pb.admin = true;
    r = fx_run(f, &c);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    res_free(&r);
    r = r_get_queue(f, "alice", false, "secret");
    assert_int_equal(r.status, 200);
    res_free(&r);
    /* The Noop and an unknown kind answer 204. */
    c = cmd_new("x", mom_v1_Command_noop_tag);
    fx_expect(f, &c, 204);
    /* ACLs: 404 before 403; the owner may (the rest: test_store_acl.c). */
    c = cmd_new("bob", mom_v1_Command_set_acl_tag);
    strcpy(c.pb.kind.set_acl.name, "secret");
    fx_expect(f, &c, 403);
    strcpy(c.pb.kind.set_acl.name, "none");
    fx_expect(f, &c, 404);
    strcpy(c.pb.kind.set_acl.name, "secret");
    strcpy(c.pb.user, "alice");
    fx_expect(f, &c, 200);
    fx_free(f);
}

static void test_delete_and_recreate(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    publish(f, "q", "a");
    publish(f, "q", "b");
    char ra[65];
    struct res r = fx_receive(f, "q", 1, 60000, ra);
    res_free(&r);
    struct command c = c_delete("bob", false, "q");
    r = fx_run(f, &c);
    assert_int_equal(r.status, 403);
    assert_string_equal(jerr(&r), "forbidden");
    res_free(&r);
    c = c_delete("bob", false, "nope");
    fx_expect(f, &c, 404);
    f->nevents = 0;
    c = c_delete("alice", false, "q");
    r = fx_run(f, &c);
    assert_int_equal(r.status, 204);
    assert_null(r.text);
    res_free(&r);
    assert_true(fx_saw(f, "qdel:q"));
    assert_false(store_queue_exists(f->s, "q"));
    assert_true(store_next_deadline(f->s) == UINT64_MAX);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.queues, 0);
    /* Re-created: seq restarts at 1, old receipts are dead. */
    make_queue(f, "q");
    c = c_publish("alice", false, "q", "new", 0, NULL);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "seq"), 1);
    res_free(&r);
    r = fx_receive(f, "q", 1, 60000, NULL);
    res_free(&r);
    c = c_ack("alice", "q", ra); /* same seq and count, other incarnation */
    fx_expect(f, &c, 410);
    /* Admins may delete anyone's queue. */
    c = c_delete("root", false, "q");
    c.pb.admin = true;
    fx_expect(f, &c, 204);
    fx_free(f);
}

static void test_users(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct command c = c_user("alice", "$hash$1");
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_string_equal(jstr(r.json, "username"), "alice");
    assert_string_equal(jstr(r.json, "created_at"), "2023-11-14T22:13:20.000Z");
    res_free(&r);
    c = c_user("alice", "$hash$2");
    r = fx_run(f, &c);
    assert_int_equal(r.status, 409);
    assert_string_equal(jerr(&r), "conflict");
    res_free(&r);
    assert_string_equal(store_user_password_hash(f->s, "alice"), "$hash$1");
    assert_null(store_user_password_hash(f->s, "bob"));
    c = c_user("", "h");
    fx_expect(f, &c, 400);
    struct store_stats st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.users, 1);
    fx_free(f);
}

static void test_bad_requests_and_clock(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q");
    struct command c = c_publish_n("alice", false, "q", 0, NULL, 0, NULL);
    fx_expect(f, &c, 400);
    c = c_publish("alice", false, "q", "x", 0, NULL);
    c.pb.kind.publish.kind = 7;
    fx_expect(f, &c, 400);
    c = c_receive("alice", "q", 1, 43200001, false);
    fx_expect(f, &c, 400);
    /* Time never runs backwards: a lower stamp is raised to the last one. */
    f->now = T0 + 5000;
    publish(f, "q", "late");
    assert_true(store_last_time(f->s) == T0 + 5000);
    f->now = T0;
    publish(f, "q", "early stamp");
    assert_true(store_last_time(f->s) == T0 + 5000);
    struct res r = fx_receive(f, "q", 2, -1, NULL);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 1), "published_at"),
                        "2023-11-14T22:13:25.000Z");
    res_free(&r);
    /* Apply without an answer works for every command. */
    c = c_receive("alice", "q", 1, -1, false);
    c.pb.time_ms = f->now;
    assert_int_equal(store_apply(f->s, ++f->index, &c, NULL), MOM_OK);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_put_semantics),
        cmocka_unit_test(test_fifo_order_and_bodies),
        cmocka_unit_test(test_lease_expiry_tick_and_lazy),
        cmocka_unit_test(test_leased_head_and_positions),
        cmocka_unit_test(test_ack_and_receipts),
        cmocka_unit_test(test_max_deliveries_dead_letter),
        cmocka_unit_test(test_dead_letter_queue_missing),
        cmocka_unit_test(test_nack_with_delay),
        cmocka_unit_test(test_extend),
        cmocka_unit_test(test_auto_ack),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_publish_delay),
        cmocka_unit_test(test_max_length),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_private_access_and_precedence),
        cmocka_unit_test(test_delete_and_recreate),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_bad_requests_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
