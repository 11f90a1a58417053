/* Unit tests for the store's access control (broker/store_acl.c): SetAcl
 * apply (owner or admin, sorted and distinct lists, bad names, unknown
 * resources and kinds, nothing changed on refusal), GET .../acl, and the
 * matrix of owner, admin, publish list, consume list and others against
 * publish, receive, ack, topic reads, subscriptions, lists and GETs on
 * private and public queues and topics, through apply and through
 * store_may_publish/store_may_consume; a SetAcl wakes the resource's
 * waiters so that they check their caller again.
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

static mom_v1_QueueSettings private_queue(void)
{
    mom_v1_QueueSettings st = mom_v1_QueueSettings_init_zero;
    st.private_access = true;
    st.present = 1u << 6;
    return st;
}

static mom_v1_TopicSettings private_topic(void)
{
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    st.private_access = true;
    st.present = 1u << 4;
    return st;
}

static void expect_acl(struct fx *f, bool topic, const char *name, const char *text)
{
    struct res r = r_get_acl(f, "root", true, topic, name);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.text, text);
    res_free(&r);
}

static void expect_error(struct res r, int status, const char *code)
{
    if (r.status != status)
        fail_msg("expected %d, got %d: %s", status, r.status, r.text ? r.text : "");
    assert_string_equal(jerr(&r), code);
    res_free(&r);
}

static void test_set_and_get(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings pq = private_queue();
    struct command c = c_create_queue("alice", "q", &pq);
    fx_expect(f, &c, 201);
    expect_acl(f, false, "q", "{\"publish\":[],\"consume\":[]}");

    /* sorted, duplicates dropped, the answer is the stored ACL */
    struct res r = fx_acl(f, "alice", false, false, "q", "zed,amy,zed,Bob", "carol,amy");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.text, "{\"publish\":[\"Bob\",\"amy\",\"zed\"],\"consume\":[\"amy\","
                                "\"carol\"]}");
    res_free(&r);
    const char *now = "{\"publish\":[\"Bob\",\"amy\",\"zed\"],\"consume\":[\"amy\",\"carol\"]}";
    expect_acl(f, false, "q", now);

    assert_true(fx_saw(f, "ready:q")); /* waiters of q check their caller again */
    f->nevents = 0;
    /* refusals change nothing (and wake no one) */
    expect_error(fx_acl(f, "bob", false, false, "q", "bob", "bob"), 403, "forbidden");
    expect_error(fx_acl(f, "amy", false, false, "q", "amy", "amy"), 403, "forbidden");
    expect_error(fx_acl(f, "alice", false, false, "q", "ok,not ok", ""), 400, "bad_request");
    expect_error(fx_acl(f, "alice", false, false, "q", "", "x/y"), 400, "bad_request");
    expect_error(fx_acl(f, "alice", false, false, "nope", "", ""), 404, "queue_not_found");
    expect_error(fx_acl(f, "alice", false, true, "q", "", ""), 404, "topic_not_found");
    c = c_acl("alice", false, false, "q", "", "");
    c.pb.kind.set_acl.kind = (mom_v1_ResourceKind)7;
    expect_error(fx_run(f, &c), 400, "bad_request");
    command_cleanup(&c);
    expect_acl(f, false, "q", now);
    assert_int_equal(f->nevents, 0);

    /* reading it: owner and admins only */
    r = r_get_acl(f, "alice", false, false, "q");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.text, now);
    res_free(&r);
    expect_error(r_get_acl(f, "amy", false, false, "q"), 403, "forbidden");
    expect_error(r_get_acl(f, "bob", false, false, "q"), 403, "forbidden");
    expect_error(r_get_acl(f, "alice", false, false, "nope"), 404, "queue_not_found");
    expect_error(r_get_acl(f, "alice", false, true, "nope"), 404, "topic_not_found");

    /* an admin may replace it; empty lists clear it */
    r = fx_acl(f, "root", true, false, "q", "", "");
    assert_int_equal(r.status, 200);
    res_free(&r);
    expect_acl(f, false, "q", "{\"publish\":[],\"consume\":[]}");
    /* a replica without a waiting client applies it too */
    c = c_acl("alice", false, false, "q", "p", "c");
    c.pb.time_ms = f->now;
    assert_int_equal(store_apply(f->s, ++f->index, &c, NULL), MOM_OK);
    command_cleanup(&c);
    expect_acl(f, false, "q", "{\"publish\":[\"p\"],\"consume\":[\"c\"]}");

    /* the ACL goes with its resource */
    c = c_delete("alice", false, "q");
    fx_expect(f, &c, 204);
    c = c_create_queue("alice", "q", &pq);
    fx_expect(f, &c, 201);
    expect_acl(f, false, "q", "{\"publish\":[],\"consume\":[]}");
    fx_free(f);
}

static bool in_list(struct fx *f, bool topic, const char *user, bool admin, const char *name)
{
    struct store_caller who = {user, admin};
    struct reply rep = {0};
    if (topic)
        store_list_topics(f->s, &who, &rep);
    else
        store_list_queues(f->s, &who, &rep);
    struct res r = res_from(&rep);
    assert_int_equal(r.status, 200);
    bool found = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, jget(r.json, topic ? "topics" : "queues"))
    {
        if (!strcmp(jstr(item, "name"), name))
            found = true;
    }
    res_free(&r);
    return found;
}

struct who_case {
    const char *user;
    bool admin;
    bool publish, consume; /* what a private resource lets them do */
};

/* owner, admin, the publish list, the consume list, both lists, others */
static const struct who_case cases[] = {
    {"alice", false, true, true},  {"root", true, true, true},  {"pubby", false, true, false},
    {"conny", false, false, true}, {"both", false, true, true}, {"bob", false, false, false},
};

static void test_private_queue_matrix(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings pq = private_queue();
    struct command c = c_create_queue("alice", "q", &pq);
    fx_expect(f, &c, 201);
    struct res r = fx_acl(f, "alice", false, false, "q", "pubby,both", "conny,both");
    res_free(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct who_case *w = &cases[i];
        struct store_caller who = {w->user, w->admin};
        assert_int_equal(store_may_publish(f->s, mom_v1_ResourceKind_QUEUE, "q", &who, NULL),
                         w->publish);
        assert_int_equal(store_may_consume(f->s, mom_v1_ResourceKind_QUEUE, "q", &who, NULL),
                         w->consume);
        c = c_publish(w->user, false, "q", "m", 0, NULL);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->publish ? 201 : 403);
        c = c_receive(w->user, "q", 1, 1000, false);
        c.pb.admin = w->admin;
        r = fx_run(f, &c);
        assert_int_equal(r.status, w->consume ? 200 : 403);
        if (w->consume && w->publish) {
            /* a message of its own is there to ack */
            cJSON *m = cJSON_GetArrayItem(jmsgs(&r), 0);
            assert_non_null(m);
            struct command ack = c_ack(w->user, "q", jstr(m, "receipt"));
            ack.pb.admin = w->admin;
            fx_expect(f, &ack, 204);
        }
        res_free(&r);
        /* ack, nack and extend are consuming: refused before the receipt */
        c = c_ack(w->user, "q", "0.1.1");
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->consume ? 410 : 403);
        c = c_nack(w->user, "q", "0.1.1", 0);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->consume ? 410 : 403);
        c = c_extend(w->user, "q", "0.1.1", 1000);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->consume ? 410 : 403);
        /* seeing it: either right */
        bool sees = w->publish || w->consume;
        assert_int_equal(in_list(f, false, w->user, w->admin, "q"), sees);
        r = r_get_queue(f, w->user, w->admin, "q");
        assert_int_equal(r.status, sees ? 200 : 403);
        res_free(&r);
    }
    /* the refusal names what is missing; unknown queues are 404 first */
    struct store_caller bob = {"bob", false};
    struct reply rep = {0};
    assert_false(store_may_consume(f->s, mom_v1_ResourceKind_QUEUE, "q", &bob, &rep));
    r = res_from(&rep);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(jstr(jget(r.json, "error"), "message"), "consume list"));
    res_free(&r);
    assert_false(store_may_publish(f->s, mom_v1_ResourceKind_QUEUE, "nope", &bob, &rep));
    expect_error(res_from(&rep), 404, "queue_not_found");
    assert_false(store_may_consume(f->s, mom_v1_ResourceKind_TOPIC, "q", &bob, &rep));
    expect_error(res_from(&rep), 404, "topic_not_found");
    /* a caller without a name is on no list */
    struct store_caller nobody = {NULL, false};
    assert_false(store_may_publish(f->s, mom_v1_ResourceKind_QUEUE, "q", &nobody, NULL));
    fx_free(f);
}

static void test_private_topic_matrix(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_TopicSettings pt = private_topic();
    struct command c = c_create_topic("alice", "t", &pt);
    fx_expect(f, &c, 201);
    struct res r = fx_acl(f, "alice", false, true, "t", "pubby,both", "conny,both");
    res_free(&r);
    c = c_publish("alice", true, "t", "first", 0, NULL);
    fx_expect(f, &c, 201);
    c = c_sub("alice", "t", "owner-sub", true);
    fx_expect(f, &c, 201);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct who_case *w = &cases[i];
        struct store_caller who = {w->user, w->admin};
        assert_int_equal(store_may_publish(f->s, mom_v1_ResourceKind_TOPIC, "t", &who, NULL),
                         w->publish);
        assert_int_equal(store_may_consume(f->s, mom_v1_ResourceKind_TOPIC, "t", &who, NULL),
                         w->consume);
        c = c_publish(w->user, true, "t", "m", 0, NULL);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->publish ? 201 : 403);
        struct reply rep = {0};
        store_read_topic(f->s, "t", STORE_FROM_EARLIEST, 0, 10, &who, &rep, NULL);
        r = res_from(&rep);
        assert_int_equal(r.status, w->consume ? 200 : 403);
        res_free(&r);
        /* subscriptions: create, read, get, ack need consume */
        char sub[32];
        snprintf(sub, sizeof sub, "s-%s", w->user);
        c = c_sub(w->user, "t", sub, true);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->consume ? 201 : 403);
        store_read_subscription(f->s, "t", "owner-sub", 10, &who, &rep, NULL);
        r = res_from(&rep);
        assert_int_equal(r.status, w->consume ? 200 : 403);
        res_free(&r);
        store_get_subscription(f->s, "t", "owner-sub", &who, &rep);
        r = res_from(&rep);
        assert_int_equal(r.status, w->consume ? 200 : 403);
        res_free(&r);
        c = c_sub_ack(w->user, "t", "owner-sub", 0);
        c.pb.admin = w->admin;
        assert_int_equal(fx_status(f, &c), w->consume ? 204 : 403);
        /* seeing the topic and its subscriptions: either right */
        bool sees = w->publish || w->consume;
        assert_int_equal(in_list(f, true, w->user, w->admin, "t"), sees);
        r = r_get_topic(f, w->user, w->admin, "t");
        assert_int_equal(r.status, sees ? 200 : 403);
        res_free(&r);
        store_list_subscriptions(f->s, "t", &who, &rep);
        r = res_from(&rep);
        assert_int_equal(r.status, sees ? 200 : 403);
        res_free(&r);
    }
    /* seeking is consuming too: her own subscription, while she may */
    c = c_seek("conny", "t", "s-conny", false, 0);
    fx_expect(f, &c, 200);
    /* GET /v1/subscriptions leaves out topics the caller can no longer read */
    struct store_caller conny = {"conny", false};
    struct reply rep = {0};
    store_list_user_subscriptions(f->s, &conny, &rep);
    struct res before = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(before.json, "subscriptions")), 1);
    res_free(&before);
    r = fx_acl(f, "alice", false, true, "t", "pubby,both", "both");
    res_free(&r);
    store_list_user_subscriptions(f->s, &conny, &rep);
    struct res after = res_from(&rep);
    assert_int_equal(cJSON_GetArraySize(jget(after.json, "subscriptions")), 0);
    res_free(&after);
    c = c_seek("conny", "t", "s-conny", false, 0);
    expect_error(fx_run(f, &c), 403, "forbidden");
    /* the change woke the topic's long polls and streams (they check again) */
    assert_true(fx_saw(f, "append:t"));
    /* her subscription is still hers to delete */
    c = c_unsub("conny", "t", "s-conny");
    fx_expect(f, &c, 204);
    fx_free(f);
}

static void test_public_resources_ignore_lists(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    struct command c = c_create_queue("alice", "pq", NULL);
    fx_expect(f, &c, 201);
    c = c_create_topic("alice", "pt", NULL);
    fx_expect(f, &c, 201);
    struct res r = fx_acl(f, "alice", false, false, "pq", "carol", "");
    assert_int_equal(r.status, 200);
    res_free(&r);
    r = fx_acl(f, "alice", false, true, "pt", "", "carol");
    res_free(&r);
    expect_acl(f, false, "pq", "{\"publish\":[\"carol\"],\"consume\":[]}");
    expect_acl(f, true, "pt", "{\"publish\":[],\"consume\":[\"carol\"]}");
    struct store_caller bob = {"bob", false};
    assert_true(store_may_publish(f->s, mom_v1_ResourceKind_QUEUE, "pq", &bob, NULL));
    assert_true(store_may_consume(f->s, mom_v1_ResourceKind_QUEUE, "pq", &bob, NULL));
    assert_true(store_may_publish(f->s, mom_v1_ResourceKind_TOPIC, "pt", &bob, NULL));
    assert_true(store_may_consume(f->s, mom_v1_ResourceKind_TOPIC, "pt", &bob, NULL));
    assert_true(in_list(f, false, "bob", false, "pq"));
    assert_true(in_list(f, true, "bob", false, "pt"));
    c = c_publish("bob", false, "pq", "m", 0, NULL);
    fx_expect(f, &c, 201);
    c = c_receive("bob", "pq", 1, 1000, true);
    fx_expect(f, &c, 200);
    /* still only the owner or an admin may change or read it */
    expect_error(fx_acl(f, "bob", false, false, "pq", "", ""), 403, "forbidden");
    expect_error(r_get_acl(f, "bob", false, true, "pt"), 403, "forbidden");
    fx_free(f);
}

/* Replicas that apply the same SetAcls in the same order agree byte for
 * byte, whatever order the names came in. */
static void test_order_independent(void **state)
{
    (void)state;
    struct fx *a = fx_new(), *b = fx_new();
    struct fx *both[2] = {a, b};
    const char *orders[2] = {"d,c,b,a,c", "a,b,c,d"};
    for (int i = 0; i < 2; i++) {
        struct command c = c_create_topic("alice", "t", NULL);
        fx_expect(both[i], &c, 201);
        struct res r = fx_acl(both[i], "alice", false, true, "t", orders[i], orders[1 - i]);
        assert_int_equal(r.status, 200);
        res_free(&r);
    }
    struct res ra = r_get_acl(a, "alice", false, true, "t");
    struct res rb = r_get_acl(b, "alice", false, true, "t");
    assert_string_equal(ra.text, rb.text);
    assert_string_equal(ra.text, "{\"publish\":[\"a\",\"b\",\"c\",\"d\"],\"consume\":[\"a\","
                                 "\"b\",\"c\",\"d\"]}");
    res_free(&ra);
    res_free(&rb);
    fx_free(a);
    fx_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_private_queue_matrix),
        cmocka_unit_test(test_private_topic_matrix),
        cmocka_unit_test(test_public_resources_ignore_lists),
        cmocka_unit_test(test_order_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
