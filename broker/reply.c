/* struct reply: an answer as data (status and body), owned by its holder.
 * SPDX-License-Identifier: MIT */
#include "broker/reply.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void reply_cleanup(struct reply *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->status = 0;
}

void reply_set(struct reply *r, int status, char *body, size_t body_len)
{
    free(r->body);
    r->status = status;
    r->body = body;
    r->body_len = body_len;
}

void reply_set_json(struct reply *r, int status, const char *json)
{
    size_t len = strlen(json);
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, json, len + 1);
    reply_set(r, status, copy, copy ? len : 0);
}

bool reply_is_success(const struct reply *r)
{
    return r->status >= 200 && r->status < 300;
}

int reply_copy(struct reply *dst, const struct reply *src)
{
    dst->status = src->status;
    dst->body = NULL;
    dst->body_len = src->body_len;
    if (src->body) {
        dst->body = malloc(src->body_len + 1);
        if (!dst->body)
            return MOM_ERR_NOMEM;
        memcpy(dst->body, src->body, src->body_len);
        dst->body[src->body_len] = '\0';
    }
    return MOM_OK;
}
