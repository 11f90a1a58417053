/* Cross-origin rules for browser clients: which Origin values the
 * MOM_CORS_ORIGINS list allows, and the fixed header values of an answer
 * and of a preflight. Pure functions; server.c writes the headers.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_CORS_H
#define MOM_BROKER_CORS_H

#include <stdbool.h>

#define CORS_EXPOSE_HEADERS "X-Mom-Node, Retry-After"
#define CORS_ALLOW_METHODS "GET, POST, PUT, DELETE, OPTIONS"
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Mom-Delay-Ms"
#define CORS_MAX_AGE "600"

/* Whether origin is allowed by list ("*", or origins separated by commas,
 * spaces around them ignored, compared exactly). An empty list or a NULL
 * origin allows nothing. */
bool cors_origin_allowed(const char *list, const char *origin);

#endif
