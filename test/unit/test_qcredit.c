/* Unit tests for a queue stream's store side: the ReleaseLeases Command
 * (live leases back at once, ended/duplicate/garbage receipts skipped, no
 * access check, max_deliveries honoured, unknown queue), the
 * STORE_LEASES_ENDED notice of every way a lease ends, store_lease_live,
 * and broker/qcredit (prefetch credit from Receive answers, credit back
 * on ack, nack, expiry and release, leases a lagging store has not applied
 * yet still held, the release Command of what is held, bad answers).
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

#include "broker/qcredit.h"

static void make_queue(struct fx *f, const char *name, const mom_v1_QueueSettings *st)
{
    struct command c = c_create_queue("alice", name, st);
    fx_expect(f, &c, 201);
}

static void publish_n(struct fx *f, const char *queue, size_t n)
{
    static const char *const bodies[] = {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"};
    assert_true(n <= 8);
    struct command c = c_publish_n("alice", false, queue, n, bodies, 0, NULL);
    fx_expect(f, &c, 201);
}

/* The receipts of a receive answer (up to 8), copied. */
static size_t receipts_of(const struct res *r, char out[8][65])
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, jmsgs(r))
    {
        assert_true(n < 8);
        snprintf(out[n++], 65, "%s", jstr(m, "receipt"));
    }
    return n;
}

static void test_release_returns_live_leases(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q", NULL);
    publish_n(f, "q", 4);
    struct res r = fx_receive(f, "q", 3, 60000, NULL);
    char rc[8][65];
    assert_int_equal(receipts_of(&r, rc), 3);
    res_free(&r);
    /* rc[0] is acked first: its receipt is no longer live. */
    struct command c = c_ack("alice", "q", rc[0]);
    fx_expect(f, &c, 204);
    assert_false(store_lease_live(f->s, "q", rc[0], f->now));
    assert_true(store_lease_live(f->s, "q", rc[1], f->now));
    assert_false(store_lease_live(f->s, "nope", rc[1], f->now));
    assert_false(store_lease_live(f->s, "q", "garbage", f->now));
    /* Release by another user (no access check), with a duplicate, an ended
     * receipt, garbage and an over-long one: two leases come back. */
    char longr[80];
    memset(longr, '1', sizeof longr - 1);
    longr[sizeof longr - 1] = '\0';
    const char *list[] = {rc[0], rc[1], rc[2], rc[1], "x.y.z", longr};
    f->nevents = 0;
    c = c_release("mallory", "q", list, 6);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "released"), 2);
    res_free(&r);
    assert_true(fx_saw(f, "ready:q"));
    assert_true(fx_saw(f, "ended:q"));
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    assert_int_equal(queue_field(f, "q", "depth"), 3);
    /* Visible at once, in their own positions, the delivery counted. */
    r = fx_receive(f, "q", 3, 60000, NULL);
    const cJSON *m0 = cJSON_GetArrayItem(jmsgs(&r), 0);
    assert_int_equal(jint(m0, "seq"), 2);
    assert_int_equal(jint(m0, "delivery_count"), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 2), "seq"), 4);
    res_free(&r);
    /* Nothing live: 200 released 0, no notice. */
    f->nevents = 0;
    c = c_release("alice", "q", list, 3);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "released"), 0);
    res_free(&r);
    assert_false(fx_saw(f, "ended:q"));
    c = c_release("alice", "gone", list, 1);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "queue_not_found");
    res_free(&r);
    fx_free(f);
}

static void test_release_honours_max_deliveries(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    mom_v1_QueueSettings st = mom_v1_QueueSettings_init_zero;
    st.max_deliveries = 1;
    st.present = 1u << 2;
    make_queue(f, "dlq", NULL);
    snprintf(st.dead_letter_queue, sizeof st.dead_letter_queue, "dlq");
    st.present |= 1u << 3;
    make_queue(f, "q", &st);
    publish_n(f, "q", 1);
    char receipt[65];
    struct res r = fx_receive(f, "q", 1, 60000, receipt);
    res_free(&r);
    const char *list[] = {receipt};
    struct command c = c_release("alice", "q", list, 1);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "released"), 1);
    res_free(&r);
    assert_int_equal(queue_field(f, "q", "depth"), 0);
    assert_int_equal(queue_field(f, "dlq", "depth"), 1);
    fx_free(f);
}

static void test_every_lease_end_is_noticed(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q", NULL);
    publish_n(f, "q", 3);
    struct res r = fx_receive(f, "q", 3, 1000, NULL);
    char rc[8][65];
    receipts_of(&r, rc);
    res_free(&r);
    f->nevents = 0;
    struct command c = c_ack("alice", "q", rc[0]);
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ended:q"));
    f->nevents = 0;
    c = c_nack("alice", "q", rc[1], 5000); /* delayed: not ready, still ended */
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ended:q"));
    assert_false(fx_saw(f, "ready:q"));
    /* Extend is not an end. */
    f->nevents = 0;
    c = c_extend("alice", "q", rc[2], 1000);
    fx_expect(f, &c, 204);
    assert_false(fx_saw(f, "ended:q"));
    /* Expiry by Tick. */
    f->now = T0 + 1000;
    assert_false(store_lease_live(f->s, "q", rc[2], f->now));
    f->nevents = 0;
    c = c_tick();
    fx_expect(f, &c, 204);
    assert_true(fx_saw(f, "ended:q"));
    fx_free(f);
}

/* ---- qcredit ---- */

struct emitted {
    uint64_t seqs[16];
    char first[512];
    size_t n;
    size_t stop_after;
};

static bool emit(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct emitted *e = arg;
    assert_int_equal(strlen(json), len);
    if (e->n == 0)
        snprintf(e->first, sizeof e->first, "%s", json);
    e->seqs[e->n++] = seq;
    return e->n != e->stop_after;
}

/* Receives up to max at the fixture's next index and feeds the answer to c. */
static int take(struct fx *f, struct qcredit *c, uint32_t max, int64_t vt, struct emitted *e)
{
    struct command cmd = c_receive("alice", qcredit_queue(c), max, vt, false);
    struct reply rep = {0};
    cmd.pb.time_ms = f->now;
    assert_int_equal(store_apply(f->s, ++f->index, &cmd, &rep), MOM_OK);
    assert_int_equal(rep.status, 200);
    int n = qcredit_take(c, rep.body, rep.body_len, f->index, e ? emit : NULL, e);
    reply_cleanup(&rep);
    return n;
}

static void test_credit_ack_nack_expiry(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q", NULL);
    publish_n(f, "q", 8);
    assert_null(qcredit_new("q", 0));
    assert_null(qcredit_new("q", QCREDIT_PREFETCH_MAX + 1));
    struct qcredit *c = qcredit_new("q", 3);
    assert_non_null(c);
    assert_int_equal(qcredit_room(c), 3);
    struct emitted e = {0};
    assert_int_equal(take(f, c, qcredit_room(c), 1000, &e), 3);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.seqs[0], 1);
    assert_int_equal(e.seqs[2], 3);
    /* The event's JSON is a receive message object, receipt included. */
    cJSON *first = cJSON_Parse(e.first);
    assert_non_null(first);
    assert_int_equal(jint(first, "seq"), 1);
    assert_string_equal(jstr(first, "body"), "m1");
    char r1[65];
    snprintf(r1, sizeof r1, "%s", jstr(first, "receipt"));
    cJSON_Delete(first);
    assert_int_equal(qcredit_room(c), 0);
    assert_int_equal(qcredit_recount(c, f->s, f->now), 3);
    /* An ack frees one slot. */
    struct command cmd = c_ack("bob", "q", r1);
    fx_expect(f, &cmd, 204);
    assert_int_equal(qcredit_recount(c, f->s, f->now), 2);
    assert_int_equal(qcredit_room(c), 1);
    /* Exactly the room is leased again: seq 4. */
    e.n = 0;
    assert_int_equal(take(f, c, qcredit_room(c), 1000, &e), 1);
    assert_int_equal(e.seqs[0], 4);
    assert_int_equal(qcredit_room(c), 0);
    /* A nack frees one. */
    cJSON *m2 = cJSON_Parse(e.first);
    cmd = c_nack("bob", "q", jstr(m2, "receipt"), 0);
    cJSON_Delete(m2);
    fx_expect(f, &cmd, 204);
    assert_int_equal(qcredit_recount(c, f->s, f->now), 2);
    /* Expiry frees the rest, seen by the clock before any Tick. */
    assert_int_equal(qcredit_recount(c, f->s, T0 + 999), 2);
    assert_int_equal(qcredit_recount(c, f->s, T0 + 1000), 0);
    assert_int_equal(qcredit_room(c), 3);
    struct command rel;
    memset(&rel, 0, sizeof rel);
    assert_int_equal(qcredit_release_command(c, &rel), MOM_ERR_NOTFOUND);
    qcredit_free(c);
    qcredit_free(NULL);
    fx_free(f);
}

static void test_credit_lagging_store_and_release(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_queue(f, "q", NULL);
    publish_n(f, "q", 5);
    struct qcredit *c = qcredit_new("q", 4);
    struct emitted e = {.stop_after = 1}; /* the stream stops after one event */
    assert_int_equal(take(f, c, 2, 60000, &e), 2);
    assert_int_equal(e.n, 1);
    assert_int_equal(qcredit_held(c), 2);
    /* A lease from an index this store has not applied (a follower behind
     * the leader) is held even though the store does not show it. */
    struct command cmd = c_receive("alice", "q", 2, 60000, false);
    struct reply rep = {0};
    cmd.pb.time_ms = f->now;
    struct store *leader_view = f->s;
    assert_int_equal(store_apply(leader_view, f->index + 1, &cmd, &rep), MOM_OK);
    /* Pretend the answer came from index + 5 (not applied here yet). */
    assert_int_equal(qcredit_take(c, rep.body, rep.body_len, f->index + 5, NULL, NULL), 2);
    f->index++;
    char second[65];
    {
        struct res r = res_from(&rep);
        snprintf(second, sizeof second, "%s", jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "receipt"));
        res_free(&r);
    }
    cmd = c_ack("alice", "q", second);
    fx_expect(f, &cmd, 204);
    assert_int_equal(qcredit_recount(c, f->s, f->now), 4); /* index + 5 not applied */
    f->index += 5;
    struct command tick = c_tick();
    fx_expect(f, &tick, 204);
    assert_int_equal(qcredit_recount(c, f->s, f->now), 3);
    /* The release Command of what is held gives all three back at once. */
    struct command rel;
    memset(&rel, 0, sizeof rel);
    snprintf(rel.pb.user, sizeof rel.pb.user, "alice");
    assert_int_equal(qcredit_release_command(c, &rel), MOM_OK);
    assert_int_equal(rel.item_count, 3);
    uint8_t *buf;
    size_t len;
    assert_int_equal(command_encode(&rel, &buf, &len), MOM_OK);
    command_cleanup(&rel);
    qcredit_clear(c);
    assert_int_equal(qcredit_held(c), 0);
    struct command dec;
    assert_int_equal(command_decode(buf, len, &dec), MOM_OK);
    struct res r = fx_run(f, &dec);
    assert_int_equal(jint(r.json, "released"), 3);
    res_free(&r);
    command_cleanup(&dec);
    free(buf);
    assert_int_equal(queue_field(f, "q", "in_flight"), 0);
    assert_int_equal(queue_field(f, "q", "depth"), 4);
    qcredit_free(c);
    fx_free(f);
}

static void test_credit_bad_answers(void **state)
{
    (void)state;
    struct qcredit *c = qcredit_new("q", 10);
    static const char *const bad[] = {
        "",
        "{",
        "{\"error\":{\"code\":\"queue_not_found\"}}",
        "{\"messages\":{}}",
        "{\"messages\":[{\"seq\":1}]}",
        "{\"messages\":[{\"seq\":\"1\",\"receipt\":\"a\"}]}",
        "{\"messages\":[{\"seq\":1,\"receipt\":null}]}",
        "{\"messages\":[{\"seq\":1,\"receipt\":\"\"}]}",
        "{\"messages\":[{\"seq\":-1,\"receipt\":\"a\"}]}",
        "{\"messages\":[{\"seq\":1,\"receipt\":\"a\"},{\"seq\":2}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(qcredit_take(c, bad[i], strlen(bad[i]), 1, NULL, NULL), MOM_ERR_INVALID);
    assert_int_equal(qcredit_held(c), 0);
    const char *empty = "{\"messages\":[]}";
    assert_int_equal(qcredit_take(c, empty, strlen(empty), 1, NULL, NULL), 0);
    qcredit_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_returns_live_leases),
        cmocka_unit_test(test_release_honours_max_deliveries),
        cmocka_unit_test(test_every_lease_end_is_noticed),
        cmocka_unit_test(test_credit_ack_nack_expiry),
        cmocka_unit_test(test_credit_lagging_store_and_release),
        cmocka_unit_test(test_credit_bad_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
