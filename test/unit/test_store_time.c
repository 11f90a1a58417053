/* Unit tests for replay from a time: the binary search from a time to an
 * offset (empty topic, before the first, after the last, exact hits, runs of
 * the same millisecond, a head trimmed by retention, against a linear scan
 * over a large topic), stamps that never go back when the leader's clock
 * does, topic reads from a time, subscriptions that start at a time, and
 * seek (by offset and by time; range, permission and not-found answers).
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

#include "common/crc32c.h"
#include "common/le.h"

static void make_topic(struct fx *f, const char *name, uint64_t count)
{
    mom_v1_TopicSettings st = mom_v1_TopicSettings_init_zero;
    st.retention_messages = count;
    st.present = 1u << 2;
    struct command c = c_create_topic("alice", name, &st);
    fx_expect(f, &c, 201);
}

/* Publishes one message at time `at` (the command clock). */
static uint64_t pub_at(struct fx *f, const char *topic, uint64_t at)
{
    f->now = at;
    struct command c = c_publish("alice", true, topic, "x", 0, NULL);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    uint64_t off = jint(r.json, "offset");
    res_free(&r);
    return off;
}

static uint64_t at_time(struct fx *f, const char *topic, uint64_t t)
{
    uint64_t off = 777777;
    assert_true(store_topic_offset_at_time(f->s, topic, t, &off));
    return off;
}

static void test_search_edges(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    uint64_t off;
    assert_false(store_topic_offset_at_time(f->s, "nope", T0, &off));
    make_topic(f, "t", 0);
    /* empty: every time maps to the next offset */
    assert_int_equal(at_time(f, "t", 0), 0);
    assert_int_equal(at_time(f, "t", UINT64_MAX), 0);
    pub_at(f, "t", T0 + 10); /* 0 */
    pub_at(f, "t", T0 + 20); /* 1 */
    pub_at(f, "t", T0 + 20); /* 2: same millisecond */
    pub_at(f, "t", T0 + 20); /* 3 */
    pub_at(f, "t", T0 + 30); /* 4 */
    /* before the first */
    assert_int_equal(at_time(f, "t", 0), 0);
    assert_int_equal(at_time(f, "t", T0 + 9), 0);
    /* exact hits; a run of one millisecond starts at its first offset */
    assert_int_equal(at_time(f, "t", T0 + 10), 0);
    assert_int_equal(at_time(f, "t", T0 + 20), 1);
    assert_int_equal(at_time(f, "t", T0 + 30), 4);
    /* between stamps: the next one */
    assert_int_equal(at_time(f, "t", T0 + 11), 1);
    assert_int_equal(at_time(f, "t", T0 + 21), 4);
    /* after the last: the next offset */
    assert_int_equal(at_time(f, "t", T0 + 31), 5);
    assert_int_equal(at_time(f, "t", UINT64_MAX), 5);
    fx_free(f);
}

static void test_search_after_retention_and_batches(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 3);
    for (uint64_t i = 0; i < 6; i++)
        pub_at(f, "t", T0 + 100 * i); /* offsets 0..5; 0..2 trimmed */
    /* a time older than the retained head maps to the first retained offset */
    assert_int_equal(at_time(f, "t", 0), 3);
    assert_int_equal(at_time(f, "t", T0 + 100), 3);
    assert_int_equal(at_time(f, "t", T0 + 300), 3);
    assert_int_equal(at_time(f, "t", T0 + 301), 4);
    assert_int_equal(at_time(f, "t", T0 + 500), 5);
    assert_int_equal(at_time(f, "t", T0 + 501), 6);

    /* a batch shares one stamp: a time inside it starts at its first item */
    make_topic(f, "b", 0);
    pub_at(f, "b", T0 + 1000);
    f->now = T0 + 2000;
    struct command c = c_publish_n("alice", true, "b", 5, NULL, 0, NULL);
    fx_expect(f, &c, 201);
    pub_at(f, "b", T0 + 3000);
    assert_int_equal(at_time(f, "b", T0 + 1500), 1);
    assert_int_equal(at_time(f, "b", T0 + 2000), 1);
    assert_int_equal(at_time(f, "b", T0 + 2001), 6);
    fx_free(f);
}

static void test_search_matches_scan(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "big", 3000);
    uint64_t stamps[5000];
    uint64_t t = T0, x = 12345;
    for (int i = 0; i < 5000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t += (x >> 33) % 4; /* steps of 0..3 ms: many repeats */
        stamps[i] = t;
        pub_at(f, "big", t);
    }
    /* retained: offsets 2000..4999 */
    for (uint64_t probe = T0 - 5; probe <= t + 5; probe++) {
        uint64_t want = 5000;
        for (uint64_t o = 2000; o < 5000; o++)
            if (stamps[o] >= probe) {
                want = o;
                break;
            }
        if (at_time(f, "big", probe) != want)
            fail_msg("time %llu: want offset %llu", (unsigned long long)probe,
                     (unsigned long long)want);
    }
    fx_free(f);
}

static void test_stamps_never_go_back(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0);
    pub_at(f, "t", T0 + 5000);
    pub_at(f, "t", T0 + 1000); /* the leader's clock stepped back */
    pub_at(f, "t", T0 + 6000);
    bool empty;
    struct res r = r_read_topic(f, "bob", "t", STORE_FROM_EARLIEST, 0, 100, &empty);
    assert_int_equal(r.status, 200);
    char want[25];
    clock_format_rfc3339(T0 + 5000, want);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 0), "published_at"), want);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 1), "published_at"), want);
    clock_format_rfc3339(T0 + 6000, want);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&r), 2), "published_at"), want);
    res_free(&r);
    assert_int_equal(at_time(f, "t", T0 + 1000), 0);
    assert_int_equal(at_time(f, "t", T0 + 5001), 2);
    fx_free(f);
}

/* A snapshot whose stamps go back (written by hand or by an older node) is
 * read with each stamp raised to its predecessor's, so the search holds. */
static void test_snapshot_stamps_raised(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0);
    pub_at(f, "t", T0 + 1000);
    pub_at(f, "t", T0 + 7777); /* patched below to T0 + 500 */
    pub_at(f, "t", T0 + 9000);
    char *buf = NULL;
    size_t len = 0;
    FILE *w = open_memstream(&buf, &len);
    assert_non_null(w);
    assert_int_equal(store_snapshot_write(f->s, w), MOM_OK);
    fclose(w);
    uint8_t want[8], patched[8];
    le_put64(want, T0 + 7777);
    le_put64(patched, T0 + 500);
    uint8_t *hit = memmem(buf, len, want, 8);
    assert_non_null(hit);
    assert_null(memmem(hit + 1, len - (size_t)(hit + 1 - (uint8_t *)buf), want, 8));
    memcpy(hit, patched, 8);
    le_put32((uint8_t *)buf + len - 4, crc32c(buf, len - 4));
    struct store *s = store_new();
    FILE *r = fmemopen(buf, len, "rb");
    assert_int_equal(store_snapshot_read(s, r), MOM_OK);
    fclose(r);
    uint64_t off;
    assert_true(store_topic_offset_at_time(s, "t", T0 + 1000, &off));
    assert_int_equal(off, 0);
    assert_true(store_topic_offset_at_time(s, "t", T0 + 600, &off));
    assert_int_equal(off, 0); /* unraised, the search would land on offset 2 */
    assert_true(store_topic_offset_at_time(s, "t", T0 + 1001, &off));
    assert_int_equal(off, 2); /* the patched message now carries T0 + 1000 */
    struct store_caller who = {"bob", false};
    struct reply rep = {0};
    bool empty;
    store_read_topic(s, "t", STORE_FROM_OFFSET, 1, 1, &who, &rep, &empty);
    struct res got = res_from(&rep);
    char stamp[25];
    clock_format_rfc3339(T0 + 1000, stamp);
    assert_string_equal(jstr(cJSON_GetArrayItem(jmsgs(&got), 0), "published_at"), stamp);
    res_free(&got);
    store_free(s);
    free(buf);
    fx_free(f);
}

static void test_read_from_time(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0);
    for (uint64_t i = 0; i < 4; i++)
        pub_at(f, "t", T0 + 1000 * i);
    bool empty;
    struct res r = r_read_topic(f, "bob", "t", STORE_FROM_TIME, T0 + 1500, 100, &empty);
    assert_int_equal(r.status, 200);
    assert_false(empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "offset"), 2);
    assert_int_equal(jint(r.json, "next_offset"), 4);
    res_free(&r);
    r = r_read_topic(f, "bob", "t", STORE_FROM_TIME, T0 + 3001, 100, &empty);
    assert_int_equal(r.status, 200);
    assert_true(empty);
    assert_int_equal(jint(r.json, "next_offset"), 4);
    res_free(&r);
    r = r_read_topic(f, "bob", "t", STORE_FROM_TIME, 0, 1, &empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 1);
    assert_int_equal(jint(r.json, "next_offset"), 1);
    res_free(&r);
    r = r_read_topic(f, "bob", "none", STORE_FROM_TIME, 0, 1, &empty);
    assert_int_equal(r.status, 404);
    res_free(&r);
    fx_free(f);
}

static void test_subscription_start_time(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 0);
    for (uint64_t i = 0; i < 4; i++)
        pub_at(f, "t", T0 + 1000 * i);
    struct command c = c_sub_at("bob", "t", "s", T0 + 1000);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 201);
    assert_int_equal(jint(r.json, "cursor"), 1);
    assert_int_equal(jint(r.json, "lag"), 3);
    res_free(&r);
    /* start applies only at creation */
    c = c_sub_at("bob", "t", "s", T0);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "cursor"), 1);
    res_free(&r);
    c = c_sub_at("bob", "t", "future", T0 + 99999);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 4);
    res_free(&r);
    bool empty;
    r = r_read_sub(f, "bob", "t", "s", 100, &empty);
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 3);
    res_free(&r);
    fx_free(f);
}

static void test_seek(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    make_topic(f, "t", 4);
    for (uint64_t i = 0; i < 6; i++)
        pub_at(f, "t", T0 + 1000 * i); /* retained: 2..5 */
    struct command c = c_sub("bob", "t", "s", false);
    fx_expect(f, &c, 201);

    /* by offset: the answer is the subscription with its new cursor */
    f->nevents = 0;
    c = c_seek("bob", "t", "s", false, 3);
    struct res r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "name"), "s");
    assert_int_equal(jint(r.json, "cursor"), 3);
    assert_int_equal(jint(r.json, "lag"), 3);
    res_free(&r);
    assert_true(fx_saw(f, "append:t")); /* wakes a waiting subscription read */
    bool empty;
    r = r_read_sub(f, "bob", "t", "s", 100, &empty);
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "offset"), 3);
    res_free(&r);
    /* below the first retained offset: raised to it */
    c = c_seek("bob", "t", "s", false, 0);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 2);
    res_free(&r);
    /* the next offset is allowed (nothing left), beyond it is 400 */
    c = c_seek("bob", "t", "s", false, 6);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "cursor"), 6);
    res_free(&r);
    c = c_seek("bob", "t", "s", false, 7);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 400);
    assert_string_equal(jerr(&r), "offset_out_of_range");
    res_free(&r);
    c = c_seek("bob", "t", "s", false, UINT64_MAX);
    fx_expect(f, &c, 400);

    /* by time: backwards and forwards */
    c = c_seek("bob", "t", "s", true, T0 + 3500);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 4);
    res_free(&r);
    c = c_seek("bob", "t", "s", true, 0);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 2);
    res_free(&r);
    c = c_seek("bob", "t", "s", true, UINT64_MAX);
    r = fx_run(f, &c);
    assert_int_equal(jint(r.json, "cursor"), 6);
    res_free(&r);

    /* only the subscription's owner or an admin; not even the topic's owner */
    c = c_seek("alice", "t", "s", false, 2);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 403);
    assert_string_equal(jerr(&r), "forbidden");
    res_free(&r);
    c = c_seek("root", "t", "s", false, 2);
    c.pb.admin = true;
    r = fx_run(f, &c);
    assert_int_equal(r.status, 200);
    assert_int_equal(jint(r.json, "cursor"), 2);
    res_free(&r);

    /* unknown topic, then unknown subscription (before the permission) */
    c = c_seek("bob", "nope", "s", false, 0);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "topic_not_found");
    res_free(&r);
    c = c_seek("mallory", "t", "nope", false, 0);
    r = fx_run(f, &c);
    assert_int_equal(r.status, 404);
    assert_string_equal(jerr(&r), "subscription_not_found");
    res_free(&r);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_edges),
        cmocka_unit_test(test_search_after_retention_and_batches),
        cmocka_unit_test(test_search_matches_scan),
        cmocka_unit_test(test_stamps_never_go_back),
        cmocka_unit_test(test_snapshot_stamps_raised),
        cmocka_unit_test(test_read_from_time),
        cmocka_unit_test(test_subscription_start_time),
        cmocka_unit_test(test_seek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
