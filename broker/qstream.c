/* Queue streams (see qstream.h): the stream kind's feed, its Receive
 * proposals and their answers, and the release when it closes.
 *
 * Life: the struct qstream is owned by its stream until the stream closes,
 * then by its Receive in flight if there is one (the answer's leases must
 * be released too); whoever holds it last proposes the ReleaseLeases and
 * frees it. At most one Receive is in flight, and none while events of
 * the last answer wait for room in the socket's buffer.
 * SPDX-License-Identifier: MIT */
#include "broker/qstream.h"

#include "broker/qcredit.h"
#include "broker/server_internal.h"
#include "broker/stream.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Receive leases at most this many (the receive route's limit). */
#define QSTREAM_RECEIVE_MAX 100u

struct pending_event {
    uint64_t seq;
    char *json; /* owned */
    size_t len;
};

struct qstream {
    struct server *srv;
    struct stream *st; /* NULL once the stream is gone */
    struct qcredit *credit;
    char user[129]; /* who receives and releases */
    bool admin;
    bool receiving;                /* a Receive is in flight */
    bool closed;                   /* the stream is gone */
    bool refused;                  /* the queue answered 403/404: end the stream */
    struct pending_event *pending; /* leased, not yet sent: [head, n) */
    size_t head, n, cap;
};

/* The command clock as this node sees it (as a receive's empty check). */
static uint64_t now_ms(const struct server *s)
{
    uint64_t now = clock_wall_ms();
    return now < s->last_stamp ? s->last_stamp : now;
}

static void drop_pending(struct qstream *qs)
{
    for (size_t i = qs->head; i < qs->n; i++)
        free(qs->pending[i].json);
    qs->head = qs->n = 0;
}

/* The stream is gone and no Receive is in flight: the leases still held
 * go back in one Command, then qs dies. */
static void release_and_free(struct qstream *qs)
{
    struct server *s = qs->srv;
    drop_pending(qs);
    qcredit_recount(qs->credit, s->store, now_ms(s));
    struct command cmd;
    memset(&cmd, 0, sizeof cmd);
    int err = qcredit_release_command(qs->credit, &cmd);
    if (err == MOM_OK) {
        snprintf(cmd.pb.user, sizeof cmd.pb.user, "%s", qs->user);
        cmd.pb.admin = qs->admin;
        err = server_propose_internal(s, &cmd);
        if (err != MOM_OK)
            log_warn("queue stream on '%s': %zu leases not released (%s); they end at their "
                     "visibility timeout",
                     qcredit_queue(qs->credit), qcredit_held(qs->credit), mom_strerror(err));
        command_cleanup(&cmd);
    }
    qcredit_free(qs->credit);
    free(qs->pending);
    free(qs);
}

static bool add_pending(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct qstream *qs = arg;
    struct pending_event *p =
        grow_array(qs->pending, &qs->cap, qs->n + 1, sizeof *p, QSTREAM_RECEIVE_MAX);
    if (!p)
        return false; /* out of memory: the lease is held, unsent, until it ends */
    qs->pending = p;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, json, len + 1);
    qs->pending[qs->n++] = (struct pending_event){seq, copy, len};
    return true;
}

/* The answer to the stream's Receive (r NULL: failed or fate unknown; a
 * lease it may have taken then ends at its visibility timeout). */
static void on_received(void *arg, uint64_t index, const struct reply *r, int err)
{
    struct qstream *qs = arg;
    qs->receiving = false;
    if (r && r->status == 200) {
        int n = qcredit_take(qs->credit, r->body, r->body_len, index,
                             qs->closed ? NULL : add_pending, qs);
        if (n < 0)
            log_warn("queue stream on '%s': a Receive answer was not taken: %s",
                     qcredit_queue(qs->credit), mom_strerror(n));
    } else if (r && (r->status == 403 || r->status == 404)) {
        qs->refused = true;
    } else if (!r) {
        log_debug("queue stream on '%s': Receive failed: %s", qcredit_queue(qs->credit),
                  mom_strerror(err));
    }
    if (qs->closed)
        release_and_free(qs);
    else
        stream_wake(qs->st);
}

static void propose_receive(struct qstream *qs, uint32_t max)
{
    struct command cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.pb.which_kind = mom_v1_Command_receive_tag;
    mom_v1_Receive *rv = &cmd.pb.kind.receive;
    snprintf(rv->queue, sizeof rv->queue, "%s", qcredit_queue(qs->credit));
    rv->max = max;
    snprintf(cmd.pb.user, sizeof cmd.pb.user, "%s", qs->user);
    cmd.pb.admin = qs->admin;
    if (server_propose_cb(qs->srv, &cmd, on_received, qs) == MOM_OK)
        qs->receiving = true; /* else tried again at the next wake or heartbeat */
}

/* Sends what the last answer leased while the stream takes more. Returns
 * false while some is left (the stream feeds again when it has room). An
 * event the stream could not queue (out of memory) ends the stream, and
 * its lease is released with the others. */
static bool send_pending(struct qstream *qs, struct stream *st)
{
    while (qs->head < qs->n) {
        struct pending_event *p = &qs->pending[qs->head++];
        bool more = stream_send_event(st, p->seq, p->json, p->len);
        free(p->json);
        if (!more)
            break;
    }
    if (qs->head < qs->n)
        return false;
    qs->head = qs->n = 0;
    return true;
}

static bool feed(struct stream *st, void *arg)
{
    struct qstream *qs = arg;
    struct server *s = qs->srv;
    const char *queue = qcredit_queue(qs->credit);
    qs->st = st;
    struct store_caller who = {qs->user, qs->admin};
    if (qs->refused || !store_may_consume(s->store, mom_v1_ResourceKind_QUEUE, queue, &who, NULL))
        return false; /* deleted, or its ACL took the caller's right: the stream ends */
    if (!send_pending(qs, st) || qs->receiving || !stream_has_room(st))
        return true;
    uint64_t now = now_ms(s);
    qcredit_recount(qs->credit, s->store, now);
    uint32_t room = qcredit_room(qs->credit);
    if (room && store_queue_has_visible(s->store, queue, now))
        propose_receive(qs, room < QSTREAM_RECEIVE_MAX ? room : QSTREAM_RECEIVE_MAX);
    return true;
}

static void close_stream(void *arg)
{
    struct qstream *qs = arg;
    qs->st = NULL;
    qs->closed = true;
    drop_pending(qs); /* never sent: their leases are released with the rest */
    if (!qs->receiving)
        release_and_free(qs);
}

static const struct stream_ops queue_stream_ops = {
    .feed = feed,
    .close = close_stream,
};

void qstream_handle(struct request_ctx *rc)
{
    if (!stream_check_open(rc))
        return;
    uint64_t prefetch = QCREDIT_PREFETCH_DEFAULT;
    char text[64];
    if (http_query_get(rc->query, "prefetch", text, sizeof text)) {
        struct parse_error err;
        if (http_parse_uint(text, UINT64_MAX, false, "prefetch", &prefetch, &err) != 0 ||
            prefetch < 1 || prefetch > QCREDIT_PREFETCH_MAX) {
            server_fail(rc, API_ERR_BAD_REQUEST, "prefetch must be an integer 1..%u",
                        QCREDIT_PREFETCH_MAX);
            return;
        }
    }
    const char *queue = rc->match.params[0];
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    if (!store_may_consume(rc->srv->store, mom_v1_ResourceKind_QUEUE, queue, &who, &r)) {
        server_send(rc, &r); /* 404, or 403 for a caller off a private queue's consume list */
        reply_cleanup(&r);
        return;
    }
    struct qstream *qs = calloc(1, sizeof *qs);
    if (qs)
        qs->credit = qcredit_new(queue, (uint32_t)prefetch);
    if (!qs || !qs->credit) {
        free(qs);
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot open a stream: out of memory");
        return;
    }
    qs->srv = rc->srv;
    snprintf(qs->user, sizeof qs->user, "%s", rc->id.user);
    qs->admin = rc->id.admin;
    stream_open(rc, &queue_stream_ops, qs, STREAM_WATCH_QUEUE, queue);
}
