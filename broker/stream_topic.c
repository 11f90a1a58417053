/* Topic and subscription streams (see stream_topic.h): where a stream
 * starts (from=, the subscription's cursor, Last-Event-ID), its feed (the
 * retained messages from its next offset, as the message lists render
 * them, while the stream has room) and ack=auto (a SubscriptionAck Command
 * for what has left for the socket, like any ack). A stream holds only
 * names and its next offset: it reads the store afresh on every feed, so a
 * deleted topic or subscription ends it, as does an ACL change that takes
 * the caller's right to consume (checked on every feed), and retention that passed it
 * moves it up to the first retained offset as a read would.
 * SPDX-License-Identifier: MIT */
#include "broker/stream_topic.h"

#include "broker/server_internal.h"
#include "broker/stream.h"
#include "broker/stream_params.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The names point into the request (its route parameters and identity),
 * which outlives the stream: an idle stream costs little. */
struct topic_stream {
    struct server *srv;
    const char *topic;
    const char *sub; /* NULL for a topic stream */
    const struct auth_identity *who;
    uint64_t next;  /* the next offset to send */
    uint64_t acked; /* offsets below it were acked (ack=auto) */
    bool auto_ack;
};

static bool on_message(void *arg, uint64_t offset, const char *json, size_t len)
{
    return stream_send_event(arg, offset, json, len);
}

static bool feed(struct stream *st, void *arg)
{
    struct topic_stream *ts = arg;
    struct store_caller who = {ts->who->user, ts->who->admin};
    if (!store_may_consume(ts->srv->store, mom_v1_ResourceKind_TOPIC, ts->topic, &who, NULL))
        return false; /* gone, or its ACL no longer lets the caller read: the stream ends */
    int rc = store_topic_each(ts->srv->store, ts->topic, ts->sub, &ts->next, on_message, st);
    return rc != MOM_ERR_NOTFOUND; /* out of memory: tried again at the next wake */
}

/* ack=auto: every event written so far has left for the socket. */
static void drained(struct stream *st, void *arg)
{
    (void)st;
    struct topic_stream *ts = arg;
    if (!ts->auto_ack || ts->next <= ts->acked || ts->next == 0)
        return;
    struct command cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.pb.which_kind = mom_v1_Command_subscription_ack_tag;
    mom_v1_SubscriptionAck *sa = &cmd.pb.kind.subscription_ack;
    snprintf(sa->topic, sizeof sa->topic, "%.128s", ts->topic);
    snprintf(sa->name, sizeof sa->name, "%.128s", ts->sub);
    sa->offset = ts->next - 1;
    snprintf(cmd.pb.user, sizeof cmd.pb.user, "%.128s", ts->who->user);
    cmd.pb.admin = ts->who->admin;
    if (server_propose_internal(ts->srv, &cmd) == MOM_OK)
        ts->acked = ts->next; /* else tried again when more has been written */
}

static void close_stream(void *arg)
{
    free(arg);
}

static const struct stream_ops topic_stream_ops = {
    .feed = feed,
    .drained = drained,
    .close = close_stream,
};

/* Where the client asks to start: from= (topic streams; default latest)
 * and Last-Event-ID (wins; the stream starts after it), read by the shared
 * parsers of broker/stream_params.h. Returns false after answering 400. */
static bool parse_start(struct request_ctx *rc, bool subscription, enum store_from *from,
                        uint64_t *offset, bool *resume)
{
    struct parse_error err;
    *resume = false;
    *from = STORE_FROM_LATEST;
    *offset = 0;
    const char *last = evhtp_header_find(rc->req->headers_in, "Last-Event-ID");
    if (last && *last) {
        uint64_t id;
        if (stream_parse_last_event_id(last, strlen(last), &id, &err)) {
            server_send_parse_error(rc, &err);
            return false;
        }
        *resume = true;
        *from = STORE_FROM_OFFSET;
        *offset = id + 1;
        return true;
    }
    char text[STREAM_FROM_MAX + 2];
    if (subscription || !http_query_get(rc->query, "from", text, sizeof text))
        return true;
    struct stream_from sf;
    if (stream_parse_from(text, &sf, &err)) {
        server_send_parse_error(rc, &err);
        return false;
    }
    switch (sf.kind) {
    case STREAM_FROM_EARLIEST: *from = STORE_FROM_EARLIEST; break;
    case STREAM_FROM_LATEST: *from = STORE_FROM_LATEST; break;
    case STREAM_FROM_OFFSET:
        *from = STORE_FROM_OFFSET;
        *offset = sf.value;
        break;
    case STREAM_FROM_TIME:
    default:
        *from = STORE_FROM_TIME;
        *offset = sf.value; /* the time: the store finds its offset */
        break;
    }
    return true;
}

void stream_topic_handle(struct request_ctx *rc, bool subscription)
{
    if (!stream_check_open(rc))
        return;
    bool auto_ack = false;
    char text[16];
    if (subscription && http_query_get(rc->query, "ack", text, sizeof text)) {
        if (!strcmp(text, "auto")) {
            auto_ack = true;
        } else if (strcmp(text, "manual") != 0) {
            server_fail(rc, API_ERR_BAD_REQUEST, "ack must be auto or manual");
            return;
        }
    }
    enum store_from from;
    uint64_t offset;
    bool resume;
    if (!parse_start(rc, subscription, &from, &offset, &resume))
        return;
    const char *topic = rc->match.params[0], *sub = rc->match.params[1];
    struct store *store = rc->srv->store;
    struct store_caller who = server_caller(rc);
    struct reply r = {0};
    uint64_t start = 0;
    bool ok = subscription ? store_subscription_stream_start(store, topic, sub, &who, &start, &r)
                           : store_topic_stream_start(store, topic, from, offset, &who, &start, &r);
    if (ok && subscription && resume)
        ok = store_topic_stream_start(store, topic, from, offset, &who, &start, &r);
    if (!ok) {
        server_send(rc, &r);
        reply_cleanup(&r);
        return;
    }
    struct topic_stream *ts = calloc(1, sizeof *ts);
    if (!ts) {
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot open a stream: out of memory");
        return;
    }
    ts->srv = rc->srv;
    ts->topic = topic;
    ts->sub = subscription ? sub : NULL;
    ts->who = &rc->id;
    ts->next = start;
    ts->acked = start;
    ts->auto_ack = auto_ack;
    stream_open(rc, &topic_stream_ops, ts, STREAM_WATCH_TOPIC, topic);
}
