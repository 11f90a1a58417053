/* Topic and subscription event streams: GET /v1/topics/{t}/stream and
 * GET /v1/topics/{t}/subscriptions/{s}/stream, a stream kind of
 * broker/stream.h.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_STREAM_TOPIC_H
#define MOM_BROKER_STREAM_TOPIC_H

#include <stdbool.h>

struct request_ctx;

/* Answers the request (an error, or the stream); subscription picks the
 * route. Runs after the read barrier: local state is current. */
void stream_topic_handle(struct request_ctx *rc, bool subscription);

#endif
