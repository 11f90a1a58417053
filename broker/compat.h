/* The prototype's routes (/api/..., /colas, /topicos) as views over mom's
 * queues, topics and subscriptions. A compat request is rewritten into the
 * /v1 request it stands for (route, parameters, body, query), dispatched by
 * the ordinary handlers, and its /v1 answer is translated into the
 * prototype's field names, Spanish messages and error shapes on the way out.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_COMPAT_H
#define MOM_BROKER_COMPAT_H

#include "broker/reply.h"
#include "broker/router.h"

#include <stdbool.h>

struct request_ctx;

/* Which error shape a path answers with: /api -> {"error": "..."}, the
 * node routes (/colas, /topicos) -> {"detail": "..."}. Slash runs count as
 * one, as in the router. */
enum compat_family { COMPAT_NONE, COMPAT_API, COMPAT_NODE };

enum compat_family compat_family_of_path(const char *path);
/* Whether route is one of the prototype's routes. */
bool compat_is_route(enum route route);
/* Whether it is answered without a token (register and login). */
bool compat_is_public(enum route route);

/* Rewrites rc (a compat route, authenticated) into its /v1 request.
 * Returns true when the caller dispatches it now; false when it was
 * answered (bad input) or held (a read barrier re-dispatches it later).
 * Anything allocated is owned by rc (freed with it). */
bool compat_prepare(struct request_ctx *rc);

/* Translates the /v1 answer `in` of a compat request (rc->compat_family
 * set) into the prototype's shape. Returns true and fills out (owned by the
 * caller) when the answer changes, false to send `in` as it is. */
bool compat_translate(struct request_ctx *rc, const struct reply *in, struct reply *out);

#endif
