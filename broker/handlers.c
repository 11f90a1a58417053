/* REST route handlers: validate the request (names, query, body, headers),
 * then either answer a read from the store or build the Command that the
 * server proposes. Checks follow the precedence of docs/api.md: 401 was
 * decided by the server, 400 here, then 404/403/409/410/429 by the store at
 * apply. Answers are built by render.c; errors are api_error.h kinds.
 * SPDX-License-Identifier: MIT */
#include "broker/hasher.h"
#include "broker/metrics.h"
#include "broker/qstream.h"
#include "broker/render.h"
#include "broker/server_internal.h"
#include "broker/stream.h"
#include "broker/stream_params.h"
#include "broker/stream_topic.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ratelimit.h"
#include "replication/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECEIVE_MAX 100
#define READ_MAX 1000
#define WAIT_MAX_MS 30000

/* Bounded copy; names were validated to fit, longer text is cut. */
static void set_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void send_reply_and_free(struct request_ctx *rc, struct reply *r)
{
    server_send(rc, r);
    reply_cleanup(r);
}

static bool check_names(struct request_ctx *rc, size_t count)
{
    static const char *const what[] = {"name", "name", "subscription name"};
    for (size_t i = 0; i < count && i < rc->match.nparams; i++) {
        if (!router_valid_name(rc->match.params[i])) { /* a cut one is 129+ long */
            server_fail(rc, API_ERR_INVALID_NAME, "%s must match ^[A-Za-z0-9._-]{1,128}$", what[i]);
            return false;
        }
    }
    return true;
}

static void init_command(struct command *cmd, pb_size_t kind)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->pb.which_kind = kind;
}

/* Query integer: absent -> def; clamp above max when clamp. */
static bool query_uint(struct request_ctx *rc, const char *key, uint64_t def, uint64_t max,
                       bool clamp, uint64_t *out, bool *present)
{
    char text[64];
    bool found = http_query_get(rc->query, key, text, sizeof text);
    if (present)
        *present = found;
    if (!found) {
        *out = def;
        return true;
    }
    struct parse_error err;
    if (http_parse_uint(text, max, clamp, key, out, &err) != 0) {
        server_send_parse_error(rc, &err);
        return false;
    }
    return true;
}

/* ---- health ---- */

static void handle_health(struct request_ctx *rc, bool ready)
{
    struct reply r = {0};
    if (ready && !node_writable(rc->srv->node))
        render_health(&r, false, "storage unavailable");
    else if (ready && !node_ready(rc->srv->node))
        render_health(&r, false, "no leader or catching up");
    else
        render_health(&r, true, "ok");
    send_reply_and_free(rc, &r);
}

/* ---- cluster view: node_status rendered as it is ---- */

static void cluster_json(struct server *s, struct reply *r)
{
    struct node_status *st = malloc(sizeof *st);
    if (!st) {
        render_error(r, API_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    node_status(s->node, st);
    render_cluster(st, r); /* on failure r holds the 503 answer */
    free(st);
}

/* ---- GET /metrics: the registry plus what the store, the node and the
 * server hold at this moment ---- */

static void handle_metrics(struct request_ctx *rc)
{
    struct server *s = rc->srv;
    struct metrics_sources src = {
        .store = s->store,
        .node = s->node,
        .node_id = s->cfg->node_id,
        .connections = s->nconns, /* what MOM_MAX_CONNECTIONS counts */
        .streams = stream_hub_count(s->streams),
        .stream_queued_bytes = stream_hub_queued_bytes(s->streams),
    };
    for (const struct request_ctx *w = s->waiters; w; w = w->wnext)
        src.long_polls++;
    struct jbuf b;
    jbuf_init(&b);
    struct reply r = {0};
    if (metrics_render(s->metrics, &src, &b) != MOM_OK || jbuf_finish(&b, &r, 200) != MOM_OK) {
        jbuf_cleanup(&b);
        server_fail(rc, API_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    server_send_typed(rc, &r, METRICS_CONTENT_TYPE);
    reply_cleanup(&r);
}

/* ---- auth ---- */

/* Password hashing runs on the hasher's threads; the request stays paused
 * until the job comes back (or is cancelled in on_request_fini when the
 * client leaves). */

static void send_hasher_busy(struct request_ctx *rc, int err)
{
    if (err == MOM_ERR_TOO_LARGE)
        server_fail(rc, API_ERR_UNAVAILABLE, "too many password checks waiting; retry");
    else
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot queue the password check: %s",
                    mom_strerror(err));
}

static void on_register_hashed(void *arg, int result, const char *hash)
{
    struct request_ctx *rc = arg;
    rc->hash_job = NULL;
    if (result != MOM_OK || !hash) {
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot hash the password");
        return;
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_register_user_tag);
    set_str(cmd.pb.kind.register_user.password_hash, sizeof cmd.pb.kind.register_user.password_hash,
            hash);
    set_str(cmd.pb.kind.register_user.username, sizeof cmd.pb.kind.register_user.username,
            rc->login_user);
    set_str(cmd.pb.user, sizeof cmd.pb.user, rc->login_user);
    server_propose(rc, &cmd);
}

static void handle_register(struct request_ctx *rc)
{
    struct server *s = rc->srv;
    if (!s->cfg->allow_registration) {
        server_fail(rc, API_ERR_FORBIDDEN, "registration is disabled");
        return;
    }
    struct parse_error err;
    char *password;
    size_t plen;
    if (http_parse_credentials(rc->body, rc->body_len, rc->login_user, &password, &plen, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    int hrc = hasher_hash(s->hasher, password, plen, on_register_hashed, rc, &rc->hash_job);
    free(password);
    if (hrc != MOM_OK) {
        send_hasher_busy(rc, hrc);
        return;
    }
    server_pause(rc);
}

/* The key of a username's failure budget: the name and the client address
 * together, so that someone else's failures for a name never refuse its
 * owner at another address (the address budget bounds one source's tries
 * over all names). */
#define LOGIN_KEY_MAX (sizeof((struct request_ctx *)0)->login_user + SERVER_ADDR_KEY_MAX)
static size_t login_key(const char *user, size_t ulen, const uint8_t *addr, size_t addr_len,
                        uint8_t out[LOGIN_KEY_MAX])
{
    memcpy(out, user, ulen + 1); /* with its NUL: names cannot run into the address */
    memcpy(out + ulen + 1, addr, addr_len);
    return ulen + 1 + addr_len;
}

static void send_login_limited(struct request_ctx *rc, uint64_t wait_ms)
{
    char secs[24];
    snprintf(secs, sizeof secs, "%llu", (unsigned long long)((wait_ms + 999) / 1000));
    server_add_header(rc, "Retry-After", secs);
    server_fail(rc, API_ERR_TOO_MANY_REQUESTS, "too many failed logins; retry in %s s", secs);
}

static void on_login_checked(void *arg, int result, const char *hash)
{
    (void)hash;
    struct request_ctx *rc = arg;
    struct server *s = rc->srv;
    rc->hash_job = NULL;
    uint8_t addr[SERVER_ADDR_KEY_MAX], ukey[LOGIN_KEY_MAX];
    size_t addr_len = server_client_addr(rc, addr);
    size_t ukey_len = login_key(rc->login_user, strlen(rc->login_user), addr, addr_len, ukey);
    uint64_t now = clock_mono_ms();
    /* The user may have gone while the hash ran. */
    bool ok = result == MOM_OK && store_user_password_hash(s->store, rc->login_user);
    if (!ok) {
        ratelimit_fail(s->login_by_user, ukey, ukey_len, now);
        ratelimit_fail(s->login_by_addr, addr, addr_len, now);
        server_fail(rc, API_ERR_INVALID_CREDENTIALS, "unknown user or wrong password");
        return;
    }
    ratelimit_clear(s->login_by_user, ukey, ukey_len);
    char *token;
    uint64_t expires_in;
    if (auth_issue(s->auth, rc->login_user, auth_is_admin_user(s->auth, rc->login_user),
                   clock_wall_ms() / 1000, &token, &expires_in) != MOM_OK) {
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot issue a token");
        return;
    }
    struct reply r = {0};
    render_token(&r, token, expires_in);
    free(token);
    send_reply_and_free(rc, &r);
}

/* Failed logins are limited per username at an address and per client
 * address (429 with Retry-After, decided before any hashing). Names and
 * addresses without recent failures go to the hasher's urgent lane, ahead
 * of a flood. */
static void handle_token(struct request_ctx *rc)
{
    struct server *s = rc->srv;
    struct parse_error err;
    char *password;
    size_t plen;
    if (http_parse_login(rc->body, rc->body_len, rc->login_user, &password, &plen, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    uint8_t addr[SERVER_ADDR_KEY_MAX], ukey[LOGIN_KEY_MAX];
    size_t addr_len = server_client_addr(rc, addr);
    size_t ukey_len = login_key(rc->login_user, strlen(rc->login_user), addr, addr_len, ukey);
    uint64_t now = clock_mono_ms();
    uint64_t wait_user = ratelimit_wait_ms(s->login_by_user, ukey, ukey_len, now);
    uint64_t wait_addr = ratelimit_wait_ms(s->login_by_addr, addr, addr_len, now);
    if (wait_user || wait_addr) {
        free(password);
        send_login_limited(rc, wait_user > wait_addr ? wait_user : wait_addr);
        return;
    }
    bool urgent = !ratelimit_suspect(s->login_by_user, ukey, ukey_len, now) &&
                  !ratelimit_suspect(s->login_by_addr, addr, addr_len, now);
    const char *stored = store_user_password_hash(s->store, rc->login_user);
    /* Hash even for unknown users so that timing does not tell them apart. */
    int hrc = hasher_verify(s->hasher, password, plen, stored ? stored : s->dummy_hash, urgent,
                            on_login_checked, rc, &rc->hash_job);
    free(password);
    if (hrc != MOM_OK) {
        send_hasher_busy(rc, hrc);
        return;
    }
    server_pause(rc);
}

/* ---- queues and topics: settings ---- */

static void handle_queue_put(struct request_ctx *rc)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_create_queue_tag);
    struct parse_error err;
    mom_v1_CreateQueue *cq = &cmd.pb.kind.create_queue;
    if (http_parse_queue_settings(rc->match.params[0], rc->body, rc->body_len, &cq->settings,
                                  &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    cq->has_settings = true;
    set_str(cq->name, sizeof cq->name, rc->match.params[0]);
    server_propose(rc, &cmd);
}

static void handle_topic_put(struct request_ctx *rc)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_create_topic_tag);
    struct parse_error err;
    mom_v1_CreateTopic *ct = &cmd.pb.kind.create_topic;
    if (http_parse_topic_settings(rc->body, rc->body_len, &ct->settings, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    ct->has_settings = true;
    set_str(ct->name, sizeof ct->name, rc->match.params[0]);
    server_propose(rc, &cmd);
}

static void handle_delete(struct request_ctx *rc, bool queue)
{
    struct command cmd;
    if (queue) {
        init_command(&cmd, mom_v1_Command_delete_queue_tag);
        set_str(cmd.pb.kind.delete_queue.name, sizeof cmd.pb.kind.delete_queue.name,
                rc->match.params[0]);
    } else {
        init_command(&cmd, mom_v1_Command_delete_topic_tag);
        set_str(cmd.pb.kind.delete_topic.name, sizeof cmd.pb.kind.delete_topic.name,
                rc->match.params[0]);
    }
    server_propose(rc, &cmd);
}

/* ---- ACLs: PUT is a SetAcl Command (owner or admin, judged at apply),
 * GET reads this node's state behind the read barrier ---- */

static void handle_acl_put(struct request_ctx *rc, bool queue)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_set_acl_tag);
    struct parse_error err;
    if (http_parse_acl(rc->body, rc->body_len, &cmd.acl_publish, &cmd.acl_consume, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    mom_v1_SetAcl *a = &cmd.pb.kind.set_acl;
    a->kind = queue ? mom_v1_ResourceKind_QUEUE : mom_v1_ResourceKind_TOPIC;
    set_str(a->name, sizeof a->name, rc->match.params[0]);
    server_propose(rc, &cmd); /* encodes the lists: they are not needed after */
    command_cleanup(&cmd);
}

/* ---- publish ---- */

static bool publish_headers(struct request_ctx *rc, bool queue, mom_v1_Publish *pub,
                            uint64_t *delay_ms)
{
    const char *key = server_header(rc->req->headers_in, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        bool printable = n >= 1 && n <= 256;
        for (size_t i = 0; printable && i < n; i++)
            printable = key[i] >= 0x20 && key[i] < 0x7f;
        if (!printable) {
            server_fail(rc, API_ERR_BAD_REQUEST,
                        "Idempotency-Key must be 1 to 256 printable ASCII characters");
            return false;
        }
        memcpy(pub->idempotency_key, key, n + 1);
    }
    *delay_ms = 0;
    const char *delay = server_header(rc->req->headers_in, "Mom-Delay-Ms");
    if (delay) {
        if (!queue) {
            server_fail(rc, API_ERR_BAD_REQUEST, "topics do not take Mom-Delay-Ms");
            return false;
        }
        struct parse_error err;
        if (http_parse_uint(delay, HTTP_MAX_DELAY_MS, false, "Mom-Delay-Ms", delay_ms, &err)) {
            server_send_parse_error(rc, &err);
            return false;
        }
    }
    return true;
}

static void handle_publish(struct request_ctx *rc, bool queue)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_publish_tag);
    mom_v1_Publish *pub = &cmd.pb.kind.publish;
    pub->kind = queue ? mom_v1_ResourceKind_QUEUE : mom_v1_ResourceKind_TOPIC;
    set_str(pub->name, sizeof pub->name, rc->match.params[0]);
    struct command_item item;
    memset(&item, 0, sizeof item);
    if (!publish_headers(rc, queue, pub, &item.delay_ms))
        return;
    const char *ct =
        rc->content_type ? rc->content_type : server_header(rc->req->headers_in, "Content-Type");
    if (ct) {
        if (strlen(ct) >= sizeof item.content_type) {
            server_fail(rc, API_ERR_BAD_REQUEST, "Content-Type is longer than 255 bytes");
            return;
        }
        strcpy(item.content_type, ct);
    }
    item.body = (const uint8_t *)rc->body;
    item.body_len = rc->body_len;
    cmd.items = &item;
    cmd.item_count = 1;
    server_propose(rc, &cmd);
}

static void handle_batch(struct request_ctx *rc, bool queue)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_publish_tag);
    mom_v1_Publish *pub = &cmd.pb.kind.publish;
    pub->kind = queue ? mom_v1_ResourceKind_QUEUE : mom_v1_ResourceKind_TOPIC;
    pub->batch = true;
    set_str(pub->name, sizeof pub->name, rc->match.params[0]);
    uint64_t unused_delay;
    if (!publish_headers(rc, queue, pub, &unused_delay))
        return;
    struct parse_error err;
    uint8_t **owned;
    if (http_parse_batch(rc->body, rc->body_len, queue, &cmd.items, &cmd.item_count, &owned,
                         &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    server_propose(rc, &cmd);
    http_free_batch(cmd.items, owned, cmd.item_count);
}

/* ---- receive, ack, nack, extend ---- */

static void propose_receive(struct request_ctx *rc)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_receive_tag);
    mom_v1_Receive *r = &cmd.pb.kind.receive;
    set_str(r->queue, sizeof r->queue, rc->match.params[0]);
    r->max = rc->max;
    r->has_visibility_timeout = rc->has_vt;
    r->visibility_timeout_ms = rc->vt_ms;
    r->auto_ack = rc->auto_ack;
    server_propose(rc, &cmd);
}

static void send_empty_messages(struct request_ctx *rc)
{
    struct reply r = {0};
    render_empty_receive(&r);
    send_reply_and_free(rc, &r);
}

/* A receive leases only through a Command; an empty queue is answered (or
 * waited on) from local state after the access check (behind the read
 * barrier, see uses_local_state). */
static void try_receive(struct request_ctx *rc, bool final)
{
    struct server *s = rc->srv;
    const char *q = rc->match.params[0];
    uint64_t now = clock_wall_ms();
    if (now < s->last_stamp)
        now = s->last_stamp;
    if (store_queue_has_visible(s->store, q, now)) {
        propose_receive(rc);
        return;
    }
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    if (!store_may_consume(s->store, mom_v1_ResourceKind_QUEUE, q, &who, &r)) {
        send_reply_and_free(rc, &r);
        return;
    }
    if (final || clock_mono_ms() >= rc->deadline_ms)
        send_empty_messages(rc);
    else
        server_wait(rc, WAIT_RECEIVE);
}

static void handle_receive(struct request_ctx *rc)
{
    uint64_t max, wait_ms, vt;
    bool has_vt;
    if (!query_uint(rc, "max", 1, RECEIVE_MAX, true, &max, NULL) ||
        !query_uint(rc, "wait_ms", 0, WAIT_MAX_MS, true, &wait_ms, NULL) ||
        !query_uint(rc, "visibility_timeout_ms", 0, HTTP_MAX_VISIBILITY_MS, false, &vt, &has_vt))
        return;
    if (max == 0) {
        server_fail(rc, API_ERR_BAD_REQUEST, "max must be at least 1");
        return;
    }
    char ack[16];
    bool auto_ack = false;
    if (http_query_get(rc->query, "ack", ack, sizeof ack)) {
        if (!strcmp(ack, "auto"))
            auto_ack = true;
        else if (strcmp(ack, "manual") != 0) {
            server_fail(rc, API_ERR_BAD_REQUEST, "ack must be \"manual\" or \"auto\"");
            return;
        }
    }
    rc->max = (uint32_t)max;
    rc->has_vt = has_vt;
    rc->vt_ms = vt;
    rc->auto_ack = auto_ack;
    rc->deadline_ms = clock_mono_ms() + wait_ms;
    if (wait_ms)
        rc->wait = WAIT_RECEIVE;
    try_receive(rc, wait_ms == 0);
}

/* Checks the receipt's MAC (broker/receipt.h) before anything else and
 * writes the lease it names into out, the Command's form. A receipt this
 * cluster did not issue for this queue (forged, truncated, another
 * queue's) is answered like any dead lease: 404 if the queue is unknown,
 * else 410. */
static bool receipt_check(struct request_ctx *rc, char out[RECEIPT_LEASE_MAX])
{
    const char *text = rc->match.params[1];
    struct receipt_lease l;
    if (receipt_verify(rc->srv->receipts, rc->match.params[0], text, strlen(text), &l)) {
        receipt_lease_text(&l, out);
        return true;
    }
    /* in a cluster, the queue's existence as of the leader's commit index */
    if (server_read_barrier(rc))
        return false;
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    if (!store_may_consume(rc->srv->store, mom_v1_ResourceKind_QUEUE, rc->match.params[0], &who,
                           &r))
        send_reply_and_free(rc, &r);
    else
        server_fail(rc, API_ERR_RECEIPT_EXPIRED, "the receipt is not a live lease");
    return false;
}

/* Ack, nack and extend: a queue, a receipt and (nack, extend) one number. */
static void propose_on_receipt(struct request_ctx *rc, pb_size_t kind, uint64_t number)
{
    char lease[RECEIPT_LEASE_MAX];
    if (!receipt_check(rc, lease))
        return;
    struct command cmd;
    init_command(&cmd, kind);
    char *queue, *receipt;
    size_t qsize, rsize;
    if (kind == mom_v1_Command_ack_tag) {
        queue = cmd.pb.kind.ack.queue, qsize = sizeof cmd.pb.kind.ack.queue;
        receipt = cmd.pb.kind.ack.receipt, rsize = sizeof cmd.pb.kind.ack.receipt;
    } else if (kind == mom_v1_Command_nack_tag) {
        queue = cmd.pb.kind.nack.queue, qsize = sizeof cmd.pb.kind.nack.queue;
        receipt = cmd.pb.kind.nack.receipt, rsize = sizeof cmd.pb.kind.nack.receipt;
        cmd.pb.kind.nack.delay_ms = number;
    } else {
        queue = cmd.pb.kind.extend.queue, qsize = sizeof cmd.pb.kind.extend.queue;
        receipt = cmd.pb.kind.extend.receipt, rsize = sizeof cmd.pb.kind.extend.receipt;
        cmd.pb.kind.extend.visibility_timeout_ms = number;
    }
    set_str(queue, qsize, rc->match.params[0]);
    set_str(receipt, rsize, lease);
    server_propose(rc, &cmd);
}

static void handle_ack(struct request_ctx *rc)
{
    propose_on_receipt(rc, mom_v1_Command_ack_tag, 0);
}

static void handle_nack(struct request_ctx *rc)
{
    struct parse_error err;
    uint64_t delay;
    if (http_parse_nack(rc->body, rc->body_len, &delay, &err))
        server_send_parse_error(rc, &err);
    else
        propose_on_receipt(rc, mom_v1_Command_nack_tag, delay);
}

static void handle_extend(struct request_ctx *rc)
{
    struct parse_error err;
    uint64_t vt;
    if (http_parse_extend(rc->body, rc->body_len, &vt, &err))
        server_send_parse_error(rc, &err);
    else
        propose_on_receipt(rc, mom_v1_Command_extend_tag, vt);
}

/* ---- topic reads and subscriptions ---- */

static void try_read(struct request_ctx *rc, bool final)
{
    struct server *s = rc->srv;
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    bool empty = false;
    if (rc->wait == WAIT_SUB_READ || rc->match.route == ROUTE_SUBSCRIPTION_READ)
        store_read_subscription(s->store, rc->match.params[0], rc->match.params[1], rc->max, &who,
                                &r, &empty);
    else
        store_read_topic(s->store, rc->match.params[0], rc->from, rc->offset, rc->max, &who, &r,
                         &empty);
    if (r.status == 200 && empty && !final && clock_mono_ms() < rc->deadline_ms) {
        reply_cleanup(&r);
        /* "latest" means the offset it had when the read began. */
        server_wait(rc,
                    rc->match.route == ROUTE_SUBSCRIPTION_READ ? WAIT_SUB_READ : WAIT_TOPIC_READ);
        return;
    }
    send_reply_and_free(rc, &r);
}

static void handle_topic_read(struct request_ctx *rc, bool subscription)
{
    uint64_t max, wait_ms;
    if (!query_uint(rc, "max", 100, READ_MAX, true, &max, NULL) ||
        !query_uint(rc, "wait_ms", 0, WAIT_MAX_MS, true, &wait_ms, NULL))
        return;
    if (max == 0) {
        server_fail(rc, API_ERR_BAD_REQUEST, "max must be at least 1");
        return;
    }
    rc->max = (uint32_t)max;
    rc->from = STORE_FROM_EARLIEST;
    char text[STREAM_FROM_MAX + 2];
    if (!subscription && http_query_get(rc->query, "from", text, sizeof text)) {
        struct stream_from from;
        struct parse_error err;
        if (stream_parse_from(text, &from, &err)) {
            server_send_parse_error(rc, &err);
            return;
        }
        static const enum store_from kinds[] = {
            [STREAM_FROM_EARLIEST] = STORE_FROM_EARLIEST,
            [STREAM_FROM_LATEST] = STORE_FROM_LATEST,
            [STREAM_FROM_OFFSET] = STORE_FROM_OFFSET,
            [STREAM_FROM_TIME] = STORE_FROM_TIME,
        };
        rc->from = kinds[from.kind];
        rc->offset = from.value; /* the offset, or the time for STORE_FROM_TIME */
    }
    if (rc->from == STORE_FROM_LATEST && wait_ms) {
        /* Pin "latest" to the current end so a wake sees what arrived;
         * an unknown topic stays "latest" and the read answers 404. */
        if (store_topic_next_offset(rc->srv->store, rc->match.params[0], &rc->offset))
            rc->from = STORE_FROM_OFFSET;
    }
    rc->deadline_ms = clock_mono_ms() + wait_ms;
    try_read(rc, wait_ms == 0);
}

static void handle_subscription_put(struct request_ctx *rc)
{
    struct parse_error err;
    enum http_sub_start start;
    uint64_t time_ms;
    if (http_parse_subscription(rc->body, rc->body_len, &start, &time_ms, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_create_subscription_tag);
    mom_v1_CreateSubscription *cs = &cmd.pb.kind.create_subscription;
    set_str(cs->topic, sizeof cs->topic, rc->match.params[0]);
    set_str(cs->name, sizeof cs->name, rc->match.params[1]);
    cs->start_earliest = start == HTTP_SUB_EARLIEST;
    cs->start_at_time = start == HTTP_SUB_TIME;
    cs->start_time_ms = time_ms;
    server_propose(rc, &cmd);
}

/* The new cursor is decided at apply, from the leader's committed state
 * (the offset's range, the search from a time, the owner check). */
static void handle_subscription_seek(struct request_ctx *rc)
{
    struct parse_error err;
    bool by_time;
    uint64_t offset, time_ms;
    if (http_parse_seek(rc->body, rc->body_len, &by_time, &offset, &time_ms, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_seek_subscription_tag);
    mom_v1_SeekSubscription *sk = &cmd.pb.kind.seek_subscription;
    set_str(sk->topic, sizeof sk->topic, rc->match.params[0]);
    set_str(sk->name, sizeof sk->name, rc->match.params[1]);
    sk->by_time = by_time;
    sk->offset = offset;
    sk->time_ms = time_ms;
    server_propose(rc, &cmd);
}

static void handle_subscription_delete(struct request_ctx *rc)
{
    struct command cmd;
    init_command(&cmd, mom_v1_Command_delete_subscription_tag);
    mom_v1_DeleteSubscription *ds = &cmd.pb.kind.delete_subscription;
    set_str(ds->topic, sizeof ds->topic, rc->match.params[0]);
    set_str(ds->name, sizeof ds->name, rc->match.params[1]);
    server_propose(rc, &cmd);
}

static void handle_subscription_ack(struct request_ctx *rc)
{
    struct parse_error err;
    uint64_t offset;
    if (http_parse_sub_ack(rc->body, rc->body_len, &offset, &err)) {
        server_send_parse_error(rc, &err);
        return;
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_subscription_ack_tag);
    mom_v1_SubscriptionAck *sa = &cmd.pb.kind.subscription_ack;
    set_str(sa->topic, sizeof sa->topic, rc->match.params[0]);
    set_str(sa->name, sizeof sa->name, rc->match.params[1]);
    sa->offset = offset;
    server_propose(rc, &cmd);
}

/* ---- dispatch ---- */

void handlers_retry_wait(struct request_ctx *rc, bool final)
{
    if (rc->wait == WAIT_RECEIVE) {
        if (final)
            send_empty_messages(rc);
        else
            try_receive(rc, false);
    } else {
        try_read(rc, final);
    }
}

/* Routes whose answer comes from this node's state, or that check it
 * (existence, permission, a password) before proposing anything. Every
 * other write is decided by the leader's apply. */
static bool uses_local_state(const struct request_ctx *rc)
{
    switch (rc->match.route) {
    case ROUTE_QUEUES:
    case ROUTE_QUEUE_GET:
    case ROUTE_TOPICS:
    case ROUTE_TOPIC_GET:
    case ROUTE_TOPIC_READ:
    case ROUTE_SUBSCRIPTIONS_OF_TOPIC:
    case ROUTE_SUBSCRIPTION_GET:
    case ROUTE_SUBSCRIPTION_READ:
    case ROUTE_USER_SUBSCRIPTIONS:
    case ROUTE_TOPIC_STREAM: /* served from this node's applied state */
    case ROUTE_SUBSCRIPTION_STREAM:
    case ROUTE_QUEUE_STREAM: /* the queue's existence and access; leases by Command */
    case ROUTE_QUEUE_ACL_GET:
    case ROUTE_TOPIC_ACL_GET:
    case ROUTE_QUEUE_RECEIVE: /* an empty or unknown queue is answered locally */
    case ROUTE_AUTH_TOKEN: /* the stored password hash */ return true;
    /* ack, nack and extend with a bad receipt take their own read barrier
     * (receipt_check) */
    default: return false;
    }
}

void handlers_dispatch(struct request_ctx *rc)
{
    struct server *s = rc->srv;
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    const char *p0 = rc->match.params[0], *p1 = rc->match.params[1];
    size_t names = rc->match.nparams;
    switch (rc->match.route) {
    case ROUTE_QUEUE_ACK:
    case ROUTE_QUEUE_NACK:
    case ROUTE_QUEUE_EXTEND:
        names = 1; /* the second parameter is a receipt */
        break;
    default: break;
    }
    if (!check_names(rc, names))
        return;
    /* In a cluster, wait for the leader's commit index before looking at
     * local state: reads are linearizable, and a member that has not caught
     * up (just restarted, partitioned) answers 503, never a stale 404/401. */
    if (uses_local_state(rc) && server_read_barrier(rc))
        return;
    switch (rc->match.route) {
    case ROUTE_HEALTHZ: handle_health(rc, false); return;
    case ROUTE_METRICS: handle_metrics(rc); return;
    case ROUTE_READYZ: handle_health(rc, true); return;
    case ROUTE_AUTH_USERS: handle_register(rc); return;
    case ROUTE_AUTH_TOKEN: handle_token(rc); return;
    case ROUTE_CLUSTER: cluster_json(s, &r); break;
    case ROUTE_QUEUES: store_list_queues(s->store, &who, &r); break;
    case ROUTE_QUEUE_GET: store_get_queue(s->store, p0, &who, &r); break;
    case ROUTE_QUEUE_PUT: handle_queue_put(rc); return;
    case ROUTE_QUEUE_DELETE: handle_delete(rc, true); return;
    case ROUTE_QUEUE_PUBLISH: handle_publish(rc, true); return;
    case ROUTE_QUEUE_BATCH: handle_batch(rc, true); return;
    case ROUTE_QUEUE_RECEIVE: handle_receive(rc); return;
    case ROUTE_QUEUE_ACK: handle_ack(rc); return;
    case ROUTE_QUEUE_NACK: handle_nack(rc); return;
    case ROUTE_QUEUE_EXTEND: handle_extend(rc); return;
    case ROUTE_TOPICS: store_list_topics(s->store, &who, &r); break;
    case ROUTE_TOPIC_GET: store_get_topic(s->store, p0, &who, &r); break;
    case ROUTE_TOPIC_PUT: handle_topic_put(rc); return;
    case ROUTE_TOPIC_DELETE: handle_delete(rc, false); return;
    case ROUTE_TOPIC_PUBLISH: handle_publish(rc, false); return;
    case ROUTE_TOPIC_BATCH: handle_batch(rc, false); return;
    case ROUTE_TOPIC_READ: handle_topic_read(rc, false); return;
    case ROUTE_SUBSCRIPTIONS_OF_TOPIC: store_list_subscriptions(s->store, p0, &who, &r); break;
    case ROUTE_SUBSCRIPTION_GET: store_get_subscription(s->store, p0, p1, &who, &r); break;
    case ROUTE_SUBSCRIPTION_PUT: handle_subscription_put(rc); return;
    case ROUTE_SUBSCRIPTION_DELETE: handle_subscription_delete(rc); return;
    case ROUTE_SUBSCRIPTION_READ: handle_topic_read(rc, true); return;
    case ROUTE_SUBSCRIPTION_ACK: handle_subscription_ack(rc); return;
    case ROUTE_SUBSCRIPTION_SEEK: handle_subscription_seek(rc); return;
    case ROUTE_USER_SUBSCRIPTIONS: store_list_user_subscriptions(s->store, &who, &r); break;
    case ROUTE_TOPIC_STREAM: stream_topic_handle(rc, false); return;
    case ROUTE_SUBSCRIPTION_STREAM: stream_topic_handle(rc, true); return;
    case ROUTE_QUEUE_STREAM: qstream_handle(rc); return;
    case ROUTE_QUEUE_ACL_GET:
        store_get_acl(s->store, mom_v1_ResourceKind_QUEUE, p0, &who, &r);
        break;
    case ROUTE_TOPIC_ACL_GET:
        store_get_acl(s->store, mom_v1_ResourceKind_TOPIC, p0, &who, &r);
        break;
    case ROUTE_QUEUE_ACL_PUT: handle_acl_put(rc, true); return;
    case ROUTE_TOPIC_ACL_PUT: handle_acl_put(rc, false); return;
    case ROUTE_NONE:
    default: /* the prototype's routes arrive rewritten (compat.c) */
        server_fail(rc, API_ERR_NOT_FOUND, "no such route");
        return;
    }
    send_reply_and_free(rc, &r);
}
