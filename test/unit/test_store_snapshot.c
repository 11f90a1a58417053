/* Unit tests for store snapshots: a rich state (users, queues with ready,
 * returned, delayed and leased messages, dead-letters, TTL, a re-created
 * queue, topics with retention and subscriptions, idempotency keys, stats,
 * ACLs on private and public resources)
 * is written and read into a new store; both stores must render every read
 * identically and then give byte-identical answers to the same further
 * commands. A flipped byte anywhere, a truncation or trailing garbage in
 * the header is MOM_ERR_CORRUPT and leaves the store empty; so is an ACL
 * section that breaks its rules under a good CRC. Versions 1 and 2 (before
 * the ACLS section) are still read.
 * SPDX-License-Identifier: MIT */
#include "test/unit/store_fixture.h"

#include "common/crc32c.h"

#define P(n) (1u << (n))

/* Receipts collected while building the state, used after the restore. */
struct receipts {
    char live_short[65]; /* lease ends soon */
    char live_long[65];  /* lease ends late */
    char to_nack[65];
};

static void run_ok(struct fx *f, struct command c, int status)
{
    fx_expect(f, &c, status);
}

static void receipt_of(struct fx *f, const char *queue, int64_t vt, char out[65])
{
    struct res r = fx_receive(f, queue, 1, vt, out);
    res_free(&r);
}

static void build_state(struct fx *f, struct receipts *rc)
{
    run_ok(f, c_user("alice", "$h$alice"), 201);
    run_ok(f, c_user("bob", "$h$bob"), 201);

    mom_v1_QueueSettings st = mom_v1_QueueSettings_init_zero;
    st.visibility_timeout_ms = 5000;
    st.max_deliveries = 2;
    strcpy(st.dead_letter_queue, "dlq");
    st.message_ttl_ms = 3600000;
    st.present = P(1) | P(2) | P(3) | P(5);
    run_ok(f, c_create_queue("alice", "work", &st), 201);
    run_ok(f, c_create_queue("alice", "dlq", NULL), 201);
    mom_v1_QueueSettings priv = mom_v1_QueueSettings_init_zero;
    priv.private_access = true;
    priv.max_length = 50;
    priv.present = P(4) | P(6);
    run_ok(f, c_create_queue("carol", "priv", &priv), 201);
    mom_v1_QueueSettings lost = mom_v1_QueueSettings_init_zero;
    lost.max_deliveries = 1;
    strcpy(lost.dead_letter_queue, "missing");
    lost.present = P(2) | P(3);
    run_ok(f, c_create_queue("bob", "lost", &lost), 201);

    /* A queue deleted and re-created: new incarnation, seq from 1. */
    run_ok(f, c_create_queue("alice", "again", NULL), 201);
    run_ok(f, c_publish("alice", false, "again", "gone", 0, NULL), 201);
    run_ok(f, c_delete("alice", false, "again"), 204);
    run_ok(f, c_create_queue("alice", "again", NULL), 201);
    run_ok(f, c_publish("alice", false, "again", "kept", 0, NULL), 201);

    for (int i = 0; i < 12; i++) {
        char body[32];
        snprintf(body, sizeof body, "work-%d", i);
        run_ok(f, c_publish(i % 2 ? "bob" : "alice", false, "work", body, 0, NULL), 201);
        f->now += 3;
    }
    /* A binary body with a content type, a delayed one, an idempotent one. */
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0xfe};
    struct command c = cmd_new("bob", mom_v1_Command_publish_tag);
    strcpy(c.pb.kind.publish.name, "work");
    struct command_item it;
    memset(&it, 0, sizeof it);
    it.body = bin;
    it.body_len = sizeof bin;
    strcpy(it.content_type, "application/x-test");
    c.items = &it;
    c.item_count = 1;
    run_ok(f, c, 201);
    run_ok(f, c_publish("alice", false, "work", "delayed", 60000, NULL), 201);
    run_ok(f, c_publish("alice", false, "work", "idem", 0, "key-work"), 201);

    /* Leases: one short, one long, one to nack later; one nacked now (back
     * to its position, ready heap), one nacked with a delay, one that runs
     * out twice and is dead-lettered. */
    receipt_of(f, "work", 100000, rc->live_long); /* work-0 */
    receipt_of(f, "work", 20000, rc->live_short); /* work-1 */
    receipt_of(f, "work", 50000, rc->to_nack);    /* work-2 */
    char tmp[65];
    receipt_of(f, "work", 50000, tmp); /* work-3 */
    run_ok(f, c_nack("alice", "work", tmp, 0), 204);
    receipt_of(f, "work", 50000, tmp); /* work-3 again */
    run_ok(f, c_nack("alice", "work", tmp, 30000), 204);
    receipt_of(f, "work", 10, tmp); /* work-4 */
    f->now += 10;
    receipt_of(f, "work", 10, tmp); /* work-4, second delivery */
    f->now += 10;
    run_ok(f, c_tick(), 204); /* work-4 -> dlq */
    /* A dead-letter dropped because its DLQ is missing. */
    run_ok(f, c_publish("bob", false, "lost", "doomed", 0, NULL), 201);
    run_ok(f, c_publish("bob", false, "lost", "stays", 0, NULL), 201);
    receipt_of(f, "lost", 5, tmp);
    f->now += 5;
    run_ok(f, c_tick(), 204);
    /* Private queue content. */
    run_ok(f, c_publish("carol", false, "priv", "p1", 0, NULL), 201);

    /* Topics. */
    mom_v1_TopicSettings ts = mom_v1_TopicSettings_init_zero;
    ts.retention_messages = 5;
    ts.present = P(2);
    run_ok(f, c_create_topic("alice", "ev", &ts), 201);
    for (int i = 0; i < 8; i++) {
        char body[32];
        snprintf(body, sizeof body, "ev-%d", i);
        run_ok(f, c_publish(i % 2 ? "bob" : "alice", true, "ev", body, 0, NULL), 201);
        if (i == 1) {
            run_ok(f, c_sub("bob", "ev", "s-early", true), 201);
            run_ok(f, c_sub("bob", "ev", "s-late", false), 201);
        }
    }
    run_ok(f, c_sub_ack("bob", "ev", "s-late", 4), 204);
    run_ok(f, c_publish("alice", true, "ev", "idem", 0, "key-ev"), 201);
    mom_v1_TopicSettings age = mom_v1_TopicSettings_init_zero;
    age.retention_ms = 120000;
    age.retention_bytes = 1000;
    age.private_access = true;
    age.present = P(1) | P(3) | P(4);
    run_ok(f, c_create_topic("carol", "aged", &age), 201);
    run_ok(f, c_publish("carol", true, "aged", "a1", 0, NULL), 201);
    f->now += 1000;
    run_ok(f, c_publish("carol", true, "aged", "a2", 0, NULL), 201);
    run_ok(f, c_sub("carol", "aged", "mine", true), 201);

    /* ACLs: private ones that open them to bob, a public one stored only. */
    struct command acl = c_acl("carol", false, false, "priv", "bob", "bob,alice");
    run_ok(f, acl, 200);
    command_cleanup(&acl);
    acl = c_acl("root", true, true, "aged", "", "bob");
    run_ok(f, acl, 200);
    command_cleanup(&acl);
    acl = c_acl("alice", false, false, "work", "zed", "");
    run_ok(f, acl, 200);
    command_cleanup(&acl);
}

static char *render(struct reply *rep)
{
    char *s = NULL;
    assert_true(
        asprintf(&s, "%d %.*s", rep->status, (int)rep->body_len, rep->body ? rep->body : "") >= 0);
    reply_cleanup(rep);
    return s;
}

/* Every read, rendered, concatenated. */
static char *render_all(const struct store *s)
{
    struct store_caller admin = {"root", true}, bob = {"bob", false}, carol = {"carol", false};
    struct reply rep = {0};
    char *parts[32];
    int n = 0;
    store_list_queues(s, &admin, &rep);
    parts[n++] = render(&rep);
    store_list_topics(s, &admin, &rep);
    parts[n++] = render(&rep);
    store_list_topics(s, &bob, &rep);
    parts[n++] = render(&rep);
    store_list_user_subscriptions(s, &bob, &rep);
    parts[n++] = render(&rep);
    store_list_user_subscriptions(s, &carol, &rep);
    parts[n++] = render(&rep);
    store_list_subscriptions(s, "ev", &bob, &rep);
    parts[n++] = render(&rep);
    store_read_topic(s, "ev", STORE_FROM_EARLIEST, 0, 1000, &bob, &rep, NULL);
    parts[n++] = render(&rep);
    store_read_topic(s, "aged", STORE_FROM_EARLIEST, 0, 1000, &carol, &rep, NULL);
    parts[n++] = render(&rep);
    store_read_subscription(s, "ev", "s-early", 100, &bob, &rep, NULL);
    parts[n++] = render(&rep);
    store_read_subscription(s, "ev", "s-late", 100, &bob, &rep, NULL);
    parts[n++] = render(&rep);
    store_get_subscription(s, "aged", "mine", &carol, &rep);
    parts[n++] = render(&rep);
    store_get_queue(s, "priv", &carol, &rep);
    parts[n++] = render(&rep);
    store_list_queues(s, &bob, &rep);
    parts[n++] = render(&rep);
    store_read_topic(s, "aged", STORE_FROM_EARLIEST, 0, 1000, &bob, &rep, NULL);
    parts[n++] = render(&rep);
    store_get_acl(s, mom_v1_ResourceKind_QUEUE, "priv", &admin, &rep);
    parts[n++] = render(&rep);
    store_get_acl(s, mom_v1_ResourceKind_QUEUE, "work", &admin, &rep);
    parts[n++] = render(&rep);
    store_get_acl(s, mom_v1_ResourceKind_TOPIC, "aged", &admin, &rep);
    parts[n++] = render(&rep);
    store_get_acl(s, mom_v1_ResourceKind_TOPIC, "ev", &admin, &rep);
    parts[n++] = render(&rep);
    struct store_stats st;
    store_get_stats(s, &st);
    const char *ha = store_user_password_hash(s, "alice");
    const char *hb = store_user_password_hash(s, "bob");
    assert_true(
        asprintf(&parts[n++],
                 "idx=%llu time=%llu deadline=%llu q=%llu t=%llu s=%llu u=%llu "
                 "m=%llu b=%llu d=%llu ha=%s hb=%s vis=%d%d%d",
                 (unsigned long long)store_applied_index(s), (unsigned long long)store_last_time(s),
                 (unsigned long long)store_next_deadline(s), (unsigned long long)st.queues,
                 (unsigned long long)st.topics, (unsigned long long)st.subscriptions,
                 (unsigned long long)st.users, (unsigned long long)st.messages,
                 (unsigned long long)st.bytes, (unsigned long long)st.dropped_no_dlq, ha ? ha : "-",
                 hb ? hb : "-", store_queue_has_visible(s, "work", store_last_time(s)),
                 store_queue_has_visible(s, "dlq", store_last_time(s)),
                 store_queue_has_visible(s, "work", store_last_time(s) + 100000)) >= 0);
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total += strlen(parts[i]) + 1;
    char *all = malloc(total);
    all[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(all, parts[i]);
        strcat(all, "\n");
        free(parts[i]);
    }
    return all;
}

/* Applies c to both fixtures at the same index and time; answers must be
 * identical. Returns A's answer. */
static struct res both(struct fx *a, struct fx *b, struct command c)
{
    b->index = a->index;
    b->now = a->now;
    struct res ra = fx_run(a, &c);
    struct res rb = fx_run(b, &c);
    assert_int_equal(ra.status, rb.status);
    if (ra.text || rb.text)
        assert_string_equal(ra.text ? ra.text : "", rb.text ? rb.text : "");
    res_free(&rb);
    return ra;
}

static int both_status(struct fx *a, struct fx *b, struct command c)
{
    struct res r = both(a, b, c);
    int st = r.status;
    res_free(&r);
    return st;
}

static void assert_same(struct fx *a, struct fx *b)
{
    char *ra = render_all(a->s), *rb = render_all(b->s);
    assert_string_equal(ra, rb);
    free(ra);
    free(rb);
    /* the metrics counters travel in the snapshot too */
    assert_int_equal(store_queue_count(a->s), store_queue_count(b->s));
    struct store_queue_metrics qa, qb;
    for (size_t i = 0; store_queue_metrics_at(a->s, i, &qa); i++) {
        assert_true(store_queue_metrics_at(b->s, i, &qb));
        assert_string_equal(qa.name, qb.name);
        assert_int_equal(qa.published, qb.published);
        assert_int_equal(qa.acked, qb.acked);
        assert_int_equal(qa.dead_lettered, qb.dead_lettered);
    }
}

static uint8_t *snapshot_bytes(const struct store *s, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    assert_non_null(f);
    assert_int_equal(store_snapshot_write(s, f), MOM_OK);
    fclose(f);
    return (uint8_t *)buf;
}

static int read_bytes(struct store *s, const uint8_t *buf, size_t len)
{
    FILE *f = fmemopen((void *)buf, len, "rb");
    assert_non_null(f);
    int rc = store_snapshot_read(s, f);
    fclose(f);
    return rc;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct fx *a = fx_new();
    struct receipts rc;
    build_state(a, &rc);
    uint64_t published = 0, acked = 0, dead = 0;
    struct store_queue_metrics qm;
    for (size_t i = 0; store_queue_metrics_at(a->s, i, &qm); i++) {
        published += qm.published;
        acked += qm.acked;
        dead += qm.dead_lettered;
    }
    assert_true(published > 0 && acked + dead > 0); /* the counters are exercised */

    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(store_snapshot_write(a->s, tmp), MOM_OK);
    rewind(tmp);
    struct fx *b = fx_new();
    assert_int_equal(store_snapshot_read(b->s, tmp), MOM_OK);
    fclose(tmp);
    b->index = a->index;
    b->now = a->now;
    assert_same(a, b);
    struct store_stats st;
    store_get_stats(b->s, &st);
    assert_int_equal(st.queues, 5);
    assert_int_equal(st.topics, 2);
    assert_int_equal(st.subscriptions, 3);
    assert_int_equal(st.users, 2);
    assert_int_equal(st.dropped_no_dlq, 1);

    /* Continue on both: every answer must match. */
    struct res r = both(a, b, c_receive("alice", "work", 100, 1000, false));
    assert_int_equal(cJSON_GetArraySize(jmsgs(&r)), 9); /* 3 delayed, 0-2 leased, 4 dead */
    assert_int_equal(jint(cJSON_GetArrayItem(jmsgs(&r), 0), "seq"), 6);
    res_free(&r);
    assert_int_equal(both_status(a, b, c_ack("alice", "work", rc.live_long)), 204);
    assert_int_equal(both_status(a, b, c_extend("alice", "work", rc.live_short, 90000)), 204);
    assert_int_equal(both_status(a, b, c_nack("alice", "work", rc.to_nack, 0)), 204);
    /* The idempotency keys survived. */
    r = both(a, b, c_publish("alice", false, "work", "idem", 0, "key-work"));
    assert_int_equal(r.status, 201);
    res_free(&r);
    r = both(a, b, c_publish("alice", true, "ev", "idem", 0, "key-ev"));
    assert_int_equal(jint(r.json, "offset"), 8);
    res_free(&r);
    /* Time passes: leases end, the delayed message shows, retention runs,
     * work-2 (nacked to its position) leads. */
    for (int step = 0; step < 8; step++) {
        a->now += 20000;
        assert_int_equal(both_status(a, b, c_tick()), 204);
        assert_same(a, b);
        r = both(a, b, c_receive("bob", "work", 3, 15000, step % 2 == 0));
        res_free(&r);
        r = both(a, b, c_receive("root", "dlq", 1, 5000, false));
        res_free(&r);
        char body[32];
        snprintf(body, sizeof body, "more-%d", step);
        r = both(a, b, c_publish("alice", false, "work", body, (uint64_t)step * 1000, NULL));
        res_free(&r);
        r = both(a, b, c_publish("carol", true, "aged", body, 0, NULL));
        res_free(&r);
        r = both(a, b, c_publish("bob", true, "ev", body, 0, NULL));
        res_free(&r);
        assert_int_equal(both_status(a, b, c_sub_ack("bob", "ev", "s-early", 9 + (uint64_t)step)),
                         204);
    }
    /* After the window the keys are new again; the recreated queue goes on. */
    a->now += 300000;
    r = both(a, b, c_publish("alice", false, "work", "idem", 0, "key-work"));
    assert_int_equal(r.status, 201);
    res_free(&r);
    r = both(a, b, c_publish("alice", false, "again", "next", 0, NULL));
    assert_int_equal(jint(r.json, "seq"), 2);
    res_free(&r);
    r = both(a, b, c_publish("carol", false, "priv", "p2", 0, NULL));
    res_free(&r);
    /* The ACLs survived: bob consumes carol's private queue, not publishes
     * to her topic; after a change on both, still the same. */
    r = both(a, b, c_receive("bob", "priv", 10, 1000, false));
    assert_int_equal(r.status, 200);
    res_free(&r);
    r = both(a, b, c_publish("bob", true, "aged", "no", 0, NULL));
    assert_int_equal(r.status, 403);
    res_free(&r);
    struct command acl = c_acl("carol", false, true, "aged", "bob", "bob");
    r = both(a, b, acl);
    assert_int_equal(r.status, 200);
    res_free(&r);
    command_cleanup(&acl);
    r = both(a, b, c_publish("bob", true, "aged", "yes", 0, NULL));
    assert_int_equal(r.status, 201);
    res_free(&r);
    r = both(a, b, c_user("alice", "other"));
    assert_int_equal(r.status, 409);
    res_free(&r);
    assert_same(a, b);

    /* A snapshot of the restored store restores again to the same state. */
    size_t len;
    uint8_t *buf = snapshot_bytes(b->s, &len);
    struct fx *c = fx_new();
    assert_int_equal(read_bytes(c->s, buf, len), MOM_OK);
    c->index = a->index;
    c->now = a->now;
    assert_same(a, c);
    free(buf);
    fx_free(c);
    fx_free(a);
    fx_free(b);
}

static void assert_empty(struct store *s);

/* Rewrites buf (len bytes) as the older version that lacks the last
 * `drop` bytes before END (its newest sections), with a fresh CRC; returns
 * the new length. */
static size_t as_version(uint8_t *out, const uint8_t *buf, size_t len, uint8_t version, size_t drop)
{
    size_t end = len - 8; /* END! and the CRC */
    memcpy(out, buf, end - drop);
    memcpy(out + end - drop, buf + end, 4);
    out[8] = version;
    size_t n = end - drop + 4;
    uint32_t crc = crc32c(out, n);
    for (int i = 0; i < 4; i++)
        out[n + (size_t)i] = (uint8_t)(crc >> (8 * i));
    return n + 4;
}

static void test_empty_round_trip(void **state)
{
    (void)state;
    struct fx *a = fx_new(), *b = fx_new();
    size_t len;
    uint8_t *buf = snapshot_bytes(a->s, &len);
    assert_memory_equal(buf, "MOMSNAP\0\3\0\0\0", 12);
    assert_int_equal(read_bytes(b->s, buf, len), MOM_OK);
    assert_same(a, b);
    /* version 2 (no ACLS: tag and count, 12 bytes before END) and version
     * 1 (no QCNT either) are still read */
    assert_true(len > 32);
    assert_memory_equal(buf + len - 20, "ACLS", 4);
    assert_memory_equal(buf + len - 32, "QCNT", 4);
    uint8_t old[256];
    assert_true(len <= sizeof old);
    for (uint8_t version = 2; version >= 1; version--) {
        size_t n = as_version(old, buf, len, version, version == 2 ? 12 : 24);
        struct fx *c = fx_new();
        assert_int_equal(read_bytes(c->s, old, n), MOM_OK);
        assert_same(a, c);
        fx_free(c);
        /* a version with the sections of another is refused */
        old[8] = version == 2 ? 3 : 2;
        uint32_t crc = crc32c(old, n - 4);
        for (int i = 0; i < 4; i++)
            old[n - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
        c = fx_new();
        assert_int_equal(read_bytes(c->s, old, n), MOM_ERR_CORRUPT);
        fx_free(c);
    }
    free(buf);
    fx_free(a);
    fx_free(b);
}

/* A version 2 snapshot of a rich state reads as that state with every ACL
 * empty. */
static void test_version_2_has_empty_acls(void **state)
{
    (void)state;
    struct fx *a = fx_new();
    struct command c = c_create_queue("alice", "q", NULL);
    fx_expect(a, &c, 201);
    struct res r = fx_acl(a, "alice", false, false, "q", "bob", "carol");
    res_free(&r);
    size_t len;
    uint8_t *buf = snapshot_bytes(a->s, &len);
    /* ACLS: tag, count 1, kind, str "q", 1 x str "bob", 1 x str "carol" */
    size_t acls = 4 + 8 + 1 + (4 + 1) + 4 + (4 + 3) + 4 + (4 + 5);
    assert_memory_equal(buf + len - 8 - acls, "ACLS", 4);
    uint8_t *old = malloc(len);
    size_t n = as_version(old, buf, len, 2, acls);
    struct fx *b = fx_new();
    assert_int_equal(read_bytes(b->s, old, n), MOM_OK);
    r = r_get_acl(b, "alice", false, false, "q");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.text, "{\"publish\":[],\"consume\":[]}");
    res_free(&r);
    free(old);
    free(buf);
    fx_free(a);
    fx_free(b);
}

/* Replaces the first `from` in buf by `to` (same length) and fixes the CRC. */
static void patch(uint8_t *buf, size_t len, const char *from, const char *to, size_t n)
{
    uint8_t *at = memmem(buf, len - 4, from, n);
    assert_non_null(at);
    memcpy(at, to, n);
    uint32_t crc = crc32c(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

/* An ACL section with a good CRC that breaks a rule is corrupt: unsorted
 * or repeated users, a name that cannot be a user, an unknown resource, a
 * list over the limit, a resource listed twice. */
static void test_acl_rules(void **state)
{
    (void)state;
    struct fx *a = fx_new();
    struct command c = c_create_queue("alice", "q", NULL);
    fx_expect(a, &c, 201);
    c = c_create_queue("alice", "r", NULL);
    fx_expect(a, &c, 201);
    struct res r = fx_acl(a, "alice", false, false, "q", "", "ann,bea");
    res_free(&r);
    r = fx_acl(a, "alice", false, false, "r", "cy", "");
    res_free(&r);
    size_t len;
    uint8_t *buf = snapshot_bytes(a->s, &len);
    uint8_t *bad = malloc(len);
    struct store *s = store_new();
    static const struct {
        const char *from, *to;
        size_t n;
    } cases[] = {
        {"ann\3\0\0\0bea", "bea\3\0\0\0ann", 10},             /* unsorted */
        {"ann\3\0\0\0bea", "ann\3\0\0\0ann", 10},             /* repeated */
        {"ann", "a n", 3},                                    /* not a name */
        {"\1\0\0\0q\0\0\0\0", "\1\0\0\0x\0\0\0\0", 9},        /* no such queue */
        {"\0\1\0\0\0q\0\0\0\0", "\1\1\0\0\0q\0\0\0\0", 10},   /* no such topic */
        {"\2\0\0\0\3\0\0\0ann", "\xe9\3\0\0\3\0\0\0ann", 11}, /* 1001 users */
        {"\1\0\0\0r\1\0\0\0", "\1\0\0\0q\1\0\0\0", 9},        /* q twice */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, buf, len);
        patch(bad, len, cases[i].from, cases[i].to, cases[i].n);
        if (read_bytes(s, bad, len) != MOM_ERR_CORRUPT)
            fail_msg("case %zu was read", i);
        assert_empty(s);
    }
    assert_int_equal(read_bytes(s, buf, len), MOM_OK);
    store_free(s);
    free(bad);
    free(buf);
    fx_free(a);
}

static void assert_empty(struct store *s)
{
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.queues + st.topics + st.users + st.messages + st.dropped_no_dlq, 0);
    assert_true(store_applied_index(s) == 0);
    assert_true(store_next_deadline(s) == UINT64_MAX);
}

static void test_corrupt(void **state)
{
    (void)state;
    struct fx *a = fx_new();
    struct receipts rc;
    build_state(a, &rc);
    size_t len;
    uint8_t *buf = snapshot_bytes(a->s, &len);
    uint8_t *bad = malloc(len);
    struct store *s = store_new();
    /* Every single flipped byte is caught. */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, buf, len);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        int rc2 = read_bytes(s, bad, len);
        if (rc2 != MOM_ERR_CORRUPT)
            fail_msg("flip at %zu of %zu: %d", i, len, rc2);
        assert_empty(s);
    }
    /* Truncations, including an empty file. */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 97)) {
        assert_int_equal(read_bytes(s, buf, cut), MOM_ERR_CORRUPT);
        assert_empty(s);
    }
    assert_int_equal(read_bytes(s, buf, len - 1), MOM_ERR_CORRUPT);
    /* A reader of a good snapshot after failures works. */
    assert_int_equal(read_bytes(s, buf, len), MOM_OK);
    struct store_stats st;
    store_get_stats(s, &st);
    assert_int_equal(st.queues, 5);
    /* Reading replaces any previous state. */
    assert_int_equal(read_bytes(s, buf, len), MOM_OK);
    store_get_stats(s, &st);
    assert_int_equal(st.queues, 5);
    store_free(s);
    free(bad);
    free(buf);
    fx_free(a);
}

static void test_write_error(void **state)
{
    (void)state;
    struct fx *a = fx_new();
    struct receipts rc;
    build_state(a, &rc);
    FILE *ro = fopen("/dev/null", "rb"); /* not writable */
    assert_non_null(ro);
    int err = store_snapshot_write(a->s, ro);
    assert_true(err == MOM_ERR_IO || err == MOM_ERR_NOSPACE);
    fclose(ro);
    FILE *full = fopen("/dev/full", "wb");
    if (full) {
        assert_int_equal(store_snapshot_write(a->s, full), MOM_ERR_NOSPACE);
        fclose(full);
    }
    fx_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_round_trip),
        cmocka_unit_test(test_version_2_has_empty_acls),
        cmocka_unit_test(test_acl_rules),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
