/* The REST route table as a pure function: (method, path) -> route and its
 * path parameters, or "no such route" / "wrong method" with the allowed
 * methods for the Allow header. No I/O; fuzzable and unit-tested.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_ROUTER_H
#define MOM_BROKER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_PUT = 1 << 1,
    HTTP_POST = 1 << 2,
    HTTP_DELETE = 1 << 3,
    HTTP_HEAD = 1 << 4,
    HTTP_OPTIONS = 1 << 5,
    HTTP_OTHER = 1 << 6,
};

enum route {
    ROUTE_NONE = 0,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_AUTH_USERS,
    ROUTE_AUTH_TOKEN,
    ROUTE_CLUSTER,
    ROUTE_QUEUES,
    ROUTE_QUEUE_GET,
    ROUTE_QUEUE_PUT,
    ROUTE_QUEUE_DELETE,
    ROUTE_QUEUE_PUBLISH,
    ROUTE_QUEUE_BATCH,
    ROUTE_QUEUE_RECEIVE,
    ROUTE_QUEUE_ACK,
    ROUTE_QUEUE_NACK,
    ROUTE_QUEUE_EXTEND,
    ROUTE_TOPICS,
    ROUTE_TOPIC_GET,
    ROUTE_TOPIC_PUT,
    ROUTE_TOPIC_DELETE,
    ROUTE_TOPIC_PUBLISH,
    ROUTE_TOPIC_BATCH,
    ROUTE_TOPIC_READ,
    ROUTE_SUBSCRIPTIONS_OF_TOPIC,
    ROUTE_SUBSCRIPTION_GET,
    ROUTE_SUBSCRIPTION_PUT,
    ROUTE_SUBSCRIPTION_DELETE,
    ROUTE_SUBSCRIPTION_READ,
    ROUTE_SUBSCRIPTION_ACK,
    ROUTE_SUBSCRIPTION_SEEK,
    ROUTE_USER_SUBSCRIPTIONS,
    ROUTE_TOPIC_STREAM, /* event streams (broker/stream.c) */
    ROUTE_SUBSCRIPTION_STREAM,
    ROUTE_QUEUE_STREAM, /* queue streams (broker/qstream.c) */
    ROUTE_QUEUE_ACL_GET,
    ROUTE_QUEUE_ACL_PUT,
    ROUTE_TOPIC_ACL_GET,
    ROUTE_TOPIC_ACL_PUT,
    /* the prototype's routes (broker/compat.c): under /api ... */
    ROUTE_API_REGISTER,
    ROUTE_API_LOGIN,
    ROUTE_API_TOPICS,
    ROUTE_API_TOPIC_CREATE,
    ROUTE_API_TOPIC_DELETE,
    ROUTE_API_TOPIC_PUBLISH,
    ROUTE_API_TOPIC_READ,
    ROUTE_API_SUBSCRIBE,
    ROUTE_API_UNSUBSCRIBE,
    ROUTE_API_MY_TOPICS,
    ROUTE_API_QUEUES,
    ROUTE_API_QUEUE_CREATE,
    ROUTE_API_QUEUE_DELETE,
    ROUTE_API_QUEUE_PUBLISH,
    ROUTE_API_QUEUE_TAKE,
    /* ... and the MOM nodes' own /colas and /topicos */
    ROUTE_NODE_QUEUES,
    ROUTE_NODE_QUEUE_CREATE,
    ROUTE_NODE_QUEUE_DELETE,
    ROUTE_NODE_QUEUE_PUBLISH,
    ROUTE_NODE_QUEUE_TAKE,
    ROUTE_NODE_TOPICS,
    ROUTE_NODE_TOPIC_CREATE,
    ROUTE_NODE_TOPIC_DELETE,
    ROUTE_NODE_TOPIC_PUBLISH,
    ROUTE_NODE_TOPIC_READ,
    ROUTE_METRICS,
    ROUTE_UI,   /* the dashboard's files, answered before routing (handlers_ui.c) */
    ROUTE_KINDS /* the number of routes: keep last */
};

#define ROUTER_MAX_PARAM 130 /* names are <= 128, receipts <= 64; longer is flagged */

struct route_match {
    enum route route;
    unsigned allowed; /* methods of the path (for 405 / Allow) */
    size_t nparams;
    char params[3][ROUTER_MAX_PARAM + 1]; /* percent-decoded path segments */
    bool param_too_long;                  /* a segment exceeded ROUTER_MAX_PARAM */
};

enum router_result { ROUTER_OK, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

enum http_method router_method(const char *name);
/* path is the request path without the query string; a run of slashes
 * counts as one ("//api/topicos" is "/api/topicos"). */
enum router_result router_match(enum http_method method, const char *path, size_t path_len,
                                struct route_match *out);
/* Writes "GET, PUT, DELETE" for a method mask. */
void router_allow_header(unsigned allowed, char *out, size_t outlen);
/* The route's path pattern for metric labels ("/v1/queues/{queue}"):
 * "unmatched" for ROUTE_NONE. Writes at most outlen bytes (NUL included). */
void router_route_label(enum route route, char *out, size_t outlen);
/* Whether the route accepts its token as ?access_token= (event streams:
 * a browser's EventSource cannot send an Authorization header). */
bool router_takes_query_token(enum route route);
/* ^[A-Za-z0-9._-]{1,128}$ */
bool router_valid_name(const char *name);

#endif
