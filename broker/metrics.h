/* The node's Prometheus registry and /metrics renderer. The registry holds
 * what only the HTTP layer sees (requests by route pattern, method and
 * status; latency histograms by route); it is plain memory owned by the
 * server and touched only on the loop thread, so there are no locks. At a
 * scrape it is rendered in the text format 0.0.4 together with numbers read
 * from their owners at that moment: the store (per queue, topic and
 * subscription), the replication node (Raft indexes, peers, WAL and
 * snapshot histograms) and the process (/proc, getrusage).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_METRICS_H
#define MOM_BROKER_METRICS_H

#include "broker/render.h"
#include "broker/router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;
struct node;
struct store;

/* What a scrape reads besides the registry (all on the loop thread). */
struct metrics_sources {
    const struct store *store;
    const struct node *node;
    uint32_t node_id;
    uint64_t connections;         /* open client connections */
    uint64_t long_polls;          /* requests parked in a long poll */
    uint64_t streams;             /* open SSE streams */
    uint64_t stream_queued_bytes; /* bytes waiting in their output buffers */
};

/* Returns NULL when out of memory. */
struct metrics *metrics_new(void);
/* Accepts NULL. */
void metrics_free(struct metrics *m);

/* One answered request: its route (ROUTE_NONE when none matched), method,
 * status and the time from its arrival to its answer in microseconds. */
void metrics_count_request(struct metrics *m, enum route route, enum http_method method, int status,
                           uint64_t micros);
/* The counter value for one (route, method, status); 0 when never seen.
 * For tests. */
uint64_t metrics_request_count(const struct metrics *m, enum route route, enum http_method method,
                               int status);

/* Appends the whole exposition (text format 0.0.4) to out. Returns MOM_OK,
 * or MOM_ERR_NOMEM (out->oom set). */
int metrics_render(const struct metrics *m, const struct metrics_sources *src, struct jbuf *out);

/* Appends v as a label value: backslash, double quote and newline escaped as
 * the text format requires. */
void metrics_label_value(struct jbuf *out, const char *v);
/* Formats microseconds as seconds in shortest exact decimal ("0.0005",
 * "2.5", "30"); out must hold 32 bytes. */
void metrics_format_seconds(uint64_t micros, char out[32]);

/* Content-Type of the exposition. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
