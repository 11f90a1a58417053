/* Queue streams: GET /v1/queues/{q}/stream?prefetch=N, a push consumer on
 * the event-stream machinery of broker/stream.h. The node keeps up to
 * prefetch live leases for the stream (broker/qcredit.h), taken by
 * ordinary Receive Commands (on a follower forwarded to the leader like
 * any write), and sends each leased message as an event whose data is the
 * receive route's message object, receipt included. An ack, a nack, a
 * lease's end or a release frees a slot. It leases nothing while the
 * stream's socket holds MOM_SSE_MAX_BUFFER. When the stream closes (client
 * gone, queue deleted, shutdown) the leases it still holds go back at once
 * through one ReleaseLeases Command; a node that dies cannot send it, and
 * its streams' leases end at their visibility timeout.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_QSTREAM_H
#define MOM_BROKER_QSTREAM_H

struct request_ctx;

/* The route's handler: 400 (prefetch), 404/403 (the queue) before the
 * stream opens, then the stream. */
void qstream_handle(struct request_ctx *rc);

#endif
