/* An HTTP answer as data: status and JSON body. Produced by the store's
 * apply (so a follower can ship it back over Forward and an idempotent
 * repeat can return it again) and by the HTTP handlers, with the shapes of
 * render.c. Headers are not part of it: server_send adds them (Retry-After
 * on every 429 and 503).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_REPLY_H
#define MOM_BROKER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct reply {
    int status; /* HTTP status; 0 = not filled */
    char *body; /* malloc'd JSON text (may be NULL for 204), owned by the reply */
    size_t body_len;
};

/* Frees the body and zeroes the reply. Accepts a zeroed reply. */
void reply_cleanup(struct reply *r);
/* Takes ownership of body (malloc'd, body_len bytes). */
void reply_set(struct reply *r, int status, char *body, size_t body_len);
/* Copies a JSON text. */
void reply_set_json(struct reply *r, int status, const char *json);
/* Whether r is a success (2xx) answer. */
bool reply_is_success(const struct reply *r);
/* Deep copy of src into dst (dst must be empty). Returns 0 or MOM_ERR_NOMEM. */
int reply_copy(struct reply *dst, const struct reply *src);

#endif
