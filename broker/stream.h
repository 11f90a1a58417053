/* Event streams (Server-Sent Events) on client connections: the machinery
 * every stream kind shares. A stream is one GET answered with
 * "text/event-stream" in chunks that never ends on its own: it opens with
 * "retry: 2000", sends events as its kind finds them, a ": keep-alive"
 * comment every MOM_SSE_HEARTBEAT_MS while idle, and holds at most
 * MOM_SSE_MAX_BUFFER bytes queued to the socket: beyond that its kind is
 * not fed until the socket drains below half of it. At most MOM_MAX_STREAMS
 * are open (503 above). Streams are woken after apply: a change to a
 * watched queue or topic (the store's change notices) feeds every stream
 * watching that name once per loop turn, whatever number of changes the
 * turn applied. A stream lives in its request: it dies in the request's
 * on_request_fini (client gone, pipelined request, stream ended, shutdown),
 * which calls its kind's close exactly once.
 *
 * How a stream kind plugs in (topic and subscription streams are in
 * broker/stream_topic.c):
 *   1. Its handler answers every error before the stream opens (400, 404,
 *      403: server_fail as usual) and calls stream_check_open(rc) first
 *      (HTTP/1.0: 505, MOM_MAX_STREAMS: 503).
 *   2. It calls stream_open(rc, &ops, arg, watch, name): the headers and
 *      "retry:" are sent, then ops->feed runs at once.
 *   3. ops->feed(st, arg) writes what is ready with stream_send_event while
 *      it returns true (room left), and remembers where it stopped; it is
 *      called again on a wake (a store change of the watched name, or
 *      stream_wake), when the socket has drained, and on each heartbeat.
 *      Returning false ends the stream (the resource is gone). The route
 *      also goes into router_takes_query_token (?access_token=).
 *   4. ops->drained(st, arg), optional, runs when every byte written so far
 *      has left for the socket (ack=auto acks what was written then).
 *   5. ops->close(arg) releases what arg holds (and arg itself): the
 *      stream is gone, do not touch it.
 * Everything runs on the loop thread.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_STREAM_H
#define MOM_BROKER_STREAM_H

#include "broker/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct request_ctx;
struct stream;
struct stream_hub;

enum stream_watch { STREAM_WATCH_TOPIC, STREAM_WATCH_QUEUE };

struct stream_ops {
    bool (*feed)(struct stream *st, void *arg);
    void (*drained)(struct stream *st, void *arg); /* may be NULL */
    void (*close)(void *arg);
};

/* The server's streams: NULL on allocation failure. */
struct stream_hub *stream_hub_new(struct event_base *base, const struct config *cfg);
/* Frees the hub; its streams must be gone (their requests freed). Accepts NULL. */
void stream_hub_free(struct stream_hub *hub);
/* A store change notice (during apply): the streams watching name are fed
 * after the apply returns, once per loop turn. */
void stream_hub_notify(struct stream_hub *hub, enum store_change change, const char *name);
/* Open streams. */
size_t stream_hub_count(const struct stream_hub *hub);
/* Bytes the open streams have queued to their sockets (for /metrics). */
uint64_t stream_hub_queued_bytes(const struct stream_hub *hub);

/* Answers 505 (HTTP/1.0) or 503 (MOM_MAX_STREAMS) and returns false, or
 * returns true: the request may become a stream. */
bool stream_check_open(struct request_ctx *rc);
/* Turns rc into a stream of kind ops (arg is the kind's, handed to close
 * exactly once, on every path: when this fails too). Returns MOM_OK, or
 * MOM_ERR_NOMEM after answering 503. */
int stream_open(struct request_ctx *rc, const struct stream_ops *ops, void *arg,
                enum stream_watch watch, const char *name);
/* Queues one event (id, "event: message", data = json); returns whether
 * there is room for more (below MOM_SSE_MAX_BUFFER, and below 64 KiB in
 * this feed: a stream with more is fed again on the next loop turn, from
 * where its kind stopped). An event is always
 * queued, so one event larger than the limit still goes out, except when
 * memory runs out: then it returns false and the stream ends after what
 * it sent (the client resumes after the last id it got). */
bool stream_send_event(struct stream *st, uint64_t id, const char *json, size_t len);
/* Feeds the stream again on a later loop turn (its kind has something new
 * that no store change announces, e.g. a freed prefetch slot). Safe from
 * inside apply; accepts NULL. */
void stream_wake(struct stream *st);
/* Whether the stream may be fed now (below MOM_SSE_MAX_BUFFER). */
bool stream_has_room(const struct stream *st);
/* The request the stream answers (for its caller's identity). */
struct request_ctx *stream_request(const struct stream *st);
/* Called by the server from on_request_fini: frees the stream (accepts NULL). */
void stream_free(struct stream *st);

#endif
