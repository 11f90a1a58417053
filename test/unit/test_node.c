/* Unit tests for replication/node with a cluster of one: proposals commit
 * through the Raft core after a durable append and are applied in order
 * with their proposer's ctx; a reopened node replays its log before serving;
 * hard state and incarnation persist in raft-state; snapshots are taken,
 * the log is compacted and recovery loads the snapshot and replays the rest;
 * damaged storage is moved aside in a cluster of three and refused below.
 * SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/cluster_token.h"
#include "common/err.h"
#include "replication/node.h"
#include "replication/peer.h"

#define MAX_APPLIED 256

struct app {
    uint64_t applied[MAX_APPLIED]; /* the value carried by each applied entry */
    size_t n;
    uint64_t last_index;
    int ctx_hits;
    int fails;
    uint64_t snapshot_base; /* entries covered by a loaded snapshot */
    int resets;
};

static void app_apply(void *arg, uint64_t index, const uint8_t *data, size_t len, void *ctx,
                      struct node_reply *remote)
{
    struct app *a = arg;
    assert_null(remote);
    assert_true(index > a->last_index);
    a->last_index = index;
    uint64_t v = 0;
    assert_true(len >= sizeof v); /* the value, then padding in the large-entry test */
    memcpy(&v, data, sizeof v);
    assert_true(a->n < MAX_APPLIED);
    a->applied[a->n++] = v;
    if (ctx) {
        assert_int_equal(*(uint64_t *)ctx, v);
        a->ctx_hits++;
    }
}

static void app_fail(void *arg, void *ctx, int err)
{
    (void)ctx;
    (void)err;
    ((struct app *)arg)->fails++;
}

static void app_forwarded(void *arg, void *ctx, int status, const uint8_t *body, size_t len,
                          uint64_t index)
{
    (void)index;
    (void)arg;
    (void)ctx;
    (void)status;
    (void)body;
    (void)len;
    fail_msg("a cluster of one forwards nothing");
}

/* The state is the list of applied values. */
static int app_snapshot_write(void *arg, FILE *f)
{
    struct app *a = arg;
    uint64_t n = a->n;
    if (fwrite(&n, sizeof n, 1, f) != 1 ||
        fwrite(a->applied, sizeof a->applied[0], a->n, f) != a->n)
        return MOM_ERR_IO;
    return MOM_OK;
}

static int app_snapshot_read(void *arg, FILE *f)
{
    struct app *a = arg;
    uint64_t n;
    if (fread(&n, sizeof n, 1, f) != 1 || n > MAX_APPLIED ||
        fread(a->applied, sizeof a->applied[0], n, f) != n)
        return MOM_ERR_CORRUPT;
    a->n = n;
    a->snapshot_base = n;
    return MOM_OK;
}

static int app_reset(void *arg)
{
    struct app *a = arg;
    a->n = 0;
    a->snapshot_base = 0;
    a->resets++;
    return MOM_OK;
}

static const struct node_callbacks callbacks = {
    .apply = app_apply,
    .fail = app_fail,
    .forwarded = app_forwarded,
    .snapshot_write = app_snapshot_write,
    .snapshot_read = app_snapshot_read,
    .reset = app_reset,
};

static void make_dir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/mom-node-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static uint8_t *value(uint64_t v)
{
    uint8_t *b = malloc(sizeof v);
    assert_non_null(b);
    memcpy(b, &v, sizeof v);
    return b;
}

/* Runs the loop until the app has n entries (bounded). */
static void run_until(struct event_base *base, struct app *a, size_t n)
{
    for (int i = 0; i < 2000 && a->n < n; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(500);
    assert_int_equal(a->n, n);
}

static void test_single_member_commits_and_recovers(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    event_base_priority_init(base, 3);
    struct node_config cfg = {.data_dir = dir, .sync = NODE_SYNC_ALWAYS};
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_OK);
    assert_true(node_is_leader(n));
    assert_true(node_ready(n));
    assert_int_equal(node_members(n), 1);
    uint64_t ctx[5];
    for (uint64_t i = 0; i < 5; i++) {
        ctx[i] = 100 + i;
        assert_int_equal(node_propose(n, value(100 + i), sizeof(uint64_t), &ctx[i]), MOM_OK);
    }
    run_until(base, &a, 5);
    assert_int_equal(a.ctx_hits, 5);
    assert_int_equal(a.fails, 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(a.applied[i], 100 + i);
    uint64_t term = node_term(n);
    assert_true(term >= 1);
    assert_true(node_commit_index(n) >= 6); /* a no-op of the term plus 5 */
    node_close(n);

    char path[128];
    snprintf(path, sizeof path, "%s/group-0/raft-state", dir);
    assert_int_equal(access(path, R_OK), 0);

    /* Reopen: the log is applied before node_open returns, ctx NULL. */
    struct app b = {0};
    assert_int_equal(node_open(base, &cfg, &callbacks, &b, &n), MOM_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.ctx_hits, 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(b.applied[i], 100 + i);
    assert_true(node_term(n) > term); /* a new election after restart */
    node_close(n);
    event_base_free(base);
    remove_dir(dir);
}

/* Runs the loop until the node has finished `count` snapshots (bounded at
 * about 20 s: a snapshot child's fork and fsync took over 2 s on a loaded
 * 2-core machine, which failed an earlier 2 s bound). */
static void wait_for_snapshots(struct event_base *base, struct node *n, uint64_t count)
{
    struct node_stats st;
    for (int i = 0; i < 20000; i++) {
        node_get_stats(n, &st);
        if (st.snapshots >= count)
            return;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    fail_msg("only %llu of %llu snapshots finished", (unsigned long long)st.snapshots,
             (unsigned long long)count);
}

static size_t count_snapshot_files(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/group-0", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && !strcmp(e->d_name + len - 5, ".snap"))
            count++;
    }
    closedir(d);
    return count;
}

static void test_snapshot_compacts_and_recovers(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    event_base_priority_init(base, 3);
    struct node_config cfg = {.data_dir = dir, .sync = NODE_SYNC_NEVER, .snapshot_entries = 10};
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_OK);
    /* 25 entries after the election's empty one: snapshots at 10 and 20,
     * the next is not due yet, so no child is busy when the files are
     * counted */
    for (uint64_t i = 0; i < 25; i++) {
        assert_int_equal(node_propose(n, value(i), sizeof(uint64_t), NULL), MOM_OK);
        run_until(base, &a, (size_t)i + 1);
    }
    wait_for_snapshots(base, n, 2);
    /* the child that wrote the newer snapshot deleted the older one */
    assert_int_equal(count_snapshot_files(dir), 1);
    for (uint64_t i = 25; i < 30; i++) {
        assert_int_equal(node_propose(n, value(i), sizeof(uint64_t), NULL), MOM_OK);
        run_until(base, &a, (size_t)i + 1);
    }
    node_close(n);

    struct app b = {0};
    assert_int_equal(node_open(base, &cfg, &callbacks, &b, &n), MOM_OK);
    assert_true(b.snapshot_base >= 19); /* index 20 = 19 values after the empty entry */
    assert_int_equal(b.n, 30);
    for (size_t i = 0; i < 30; i++)
        assert_int_equal(b.applied[i], i);
    /* and it keeps going */
    assert_int_equal(node_propose(n, value(30), sizeof(uint64_t), NULL), MOM_OK);
    run_until(base, &b, 31);
    node_close(n);
    event_base_free(base);
    remove_dir(dir);
}

/* Few, large entries: the bytes rule starts a snapshot long before the
 * count rule would, and the core's log shrinks with it. */
static void test_snapshot_by_bytes(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    event_base_priority_init(base, 3);
    struct node_config cfg = {.data_dir = dir,
                              .sync = NODE_SYNC_NEVER,
                              .snapshot_entries = 1000000,
                              .snapshot_bytes = 64 * 1024};
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_OK);
    for (uint64_t i = 0; i < 24; i++) { /* 24 x 8 KiB = 192 KiB */
        uint8_t *big = calloc(1, 8192); /* node_propose takes it */
        assert_non_null(big);
        memcpy(big, &i, sizeof i);
        assert_int_equal(node_propose(n, big, 8192, NULL), MOM_OK);
        run_until(base, &a, (size_t)i + 1);
    }
    wait_for_snapshots(base, n, 1);
    node_close(n);

    struct app b = {0};
    assert_int_equal(node_open(base, &cfg, &callbacks, &b, &n), MOM_OK);
    assert_true(b.snapshot_base >=
                NODE_SNAPSHOT_MIN_ENTRIES - 1); /* index 1 is the election's empty entry */
    assert_int_equal(b.n, 24);
    for (size_t i = 0; i < 24; i++)
        assert_int_equal(b.applied[i], i);
    node_close(n);
    event_base_free(base);
    remove_dir(dir);
}

static void test_bad_membership_refused(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    struct event_base *base = event_base_new();
    struct node_config cfg = {.data_dir = dir, .node_id = 4, .n_members = 3};
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_ERR_INVALID);
    cfg.node_id = 1; /* a cluster without a peer channel */
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_ERR_INVALID);
    event_base_free(base);
    remove_dir(dir);
}

/* ---- damaged storage: moved aside in a cluster of three, else refused ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Storage whose raft-state file is unreadable. */
static void damage_storage(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/group-0", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/group-0/raft-state", dir);
    write_file(path, "garbage\n");
}

/* The names in dir starting with "group-0.damaged-" (count; the last into name). */
static int damaged_dirs(const char *dir, char *name, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "group-0.damaged-", 16)) {
            snprintf(name, size, "%.100s", e->d_name);
            count++;
        }
    }
    closedir(d);
    return count;
}

/* tokens: the cluster secret's, as momd wires them (they outlive the peer). */
static struct peer *make_peer(struct event_base *base, uint32_t members, struct peer_member *m,
                              const struct node_token_ops *tokens)
{
    for (uint32_t i = 0; i < members; i++) {
        m[i] = (struct peer_member){.id = i + 1, .port = 9};
        snprintf(m[i].host, sizeof m[i].host, "127.0.0.1");
        snprintf(m[i].addr, sizeof m[i].addr, "127.0.0.1:9");
    }
    struct peer_config pc = {.node_id = 1,
                             .listen_addr = "127.0.0.1:0",
                             .members = m,
                             .n_members = members,
                             .tokens = tokens};
    struct peer *p = NULL;
    assert_int_equal(peer_new(base, &pc, &p), MOM_OK);
    return p;
}

static void test_damaged_storage_moved_aside_in_a_cluster_of_three(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    damage_storage(dir);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    event_base_priority_init(base, 3);
    struct node_token_ops tokens;
    assert_int_equal(cluster_token_init("unit-test-secret-0123456789abcdef", &tokens), MOM_OK);
    struct peer_member m[3];
    struct peer *p = make_peer(base, 3, m, &tokens);
    struct node_config cfg = {.data_dir = dir,
                              .node_id = 1,
                              .n_members = 3,
                              .peer = p,
                              .sync = NODE_SYNC_ALWAYS,
                              .bootstrap = true}; /* abstains even so */
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_OK);
    assert_true(node_abstaining(n));
    assert_int_equal(a.resets, 1);
    char name[128], path[512];
    assert_int_equal(damaged_dirs(dir, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s/raft-state", dir, name);
    assert_int_equal(access(path, R_OK), 0); /* kept for inspection */
    node_close(n);
    peer_free(p); /* a peer takes each handler once */

    /* The new storage is sound: a restart does not repair again and still
     * abstains (it has not caught up). */
    p = make_peer(base, 3, m, &tokens);
    cfg.peer = p;
    struct app b = {0};
    assert_int_equal(node_open(base, &cfg, &callbacks, &b, &n), MOM_OK);
    assert_true(node_abstaining(n));
    assert_int_equal(b.resets, 0);
    assert_int_equal(damaged_dirs(dir, name, sizeof name), 1);
    node_close(n);
    peer_free(p);
    cluster_token_free(&tokens);
    event_base_free(base);
    remove_dir(dir);
}

static void test_damaged_storage_refused_below_three(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir, sizeof dir);
    damage_storage(dir);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    event_base_priority_init(base, 3);
    struct node_config cfg = {.data_dir = dir, .sync = NODE_SYNC_ALWAYS};
    struct app a = {0};
    struct node *n = NULL;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_ERR_CORRUPT);
    struct node_token_ops tokens;
    assert_int_equal(cluster_token_init("unit-test-secret-0123456789abcdef", &tokens), MOM_OK);
    struct peer_member m[2];
    struct peer *p = make_peer(base, 2, m, &tokens);
    cfg.node_id = 1;
    cfg.n_members = 2;
    cfg.peer = p;
    assert_int_equal(node_open(base, &cfg, &callbacks, &a, &n), MOM_ERR_CORRUPT);
    char name[128], path[512];
    assert_int_equal(damaged_dirs(dir, name, sizeof name), 0);
    snprintf(path, sizeof path, "%s/group-0/raft-state", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char text[32] = "";
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "garbage\n"); /* untouched */
    peer_free(p);
    cluster_token_free(&tokens);
    event_base_free(base);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_member_commits_and_recovers),
        cmocka_unit_test(test_snapshot_compacts_and_recovers),
        cmocka_unit_test(test_snapshot_by_bytes),
        cmocka_unit_test(test_bad_membership_refused),
        cmocka_unit_test(test_damaged_storage_moved_aside_in_a_cluster_of_three),
        cmocka_unit_test(test_damaged_storage_refused_below_three),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
