/* An HTTP answer as data: status, JSON body and the optional Retry-After.
 * Produced by the store's apply (so a follower can ship it back over Forward
 * and an idempotent repeat can return it again) and by the HTTP handlers.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_REPLY_H
#define MOM_BROKER_REPLY_H

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
/* Fills {"error":{"code":code,"message":<formatted>}}. */
void reply_error(struct reply *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Deep copy of src into dst (dst must be empty). Returns 0 or MOM_ERR_NOMEM. */
int reply_copy(struct reply *dst, const struct reply *src);

#endif
