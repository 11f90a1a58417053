/* The prefetch credit of a queue stream (see qcredit.h): an array of the
 * held leases, each its receipt text and the log index of the Receive that
 * gave it. Receive answers are parsed with cJSON; each message object goes
 * to the stream re-printed unformatted (the same JSON value the receive
 * route answers).
 * SPDX-License-Identifier: MIT */
#include "broker/qcredit.h"

#include "common/err.h"
#include "common/grow.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct held {
    char *receipt; /* owned */
    uint64_t index;
};

struct qcredit {
    char queue[129];
    uint32_t prefetch;
    struct held *held;
    size_t n, cap;
};

struct qcredit *qcredit_new(const char *queue, uint32_t prefetch)
{
    if (prefetch < 1 || prefetch > QCREDIT_PREFETCH_MAX || strlen(queue) >= 129)
        return NULL;
    struct qcredit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    strcpy(c->queue, queue);
    c->prefetch = prefetch;
    return c;
}

void qcredit_clear(struct qcredit *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->held[i].receipt);
    c->n = 0;
}

void qcredit_free(struct qcredit *c)
{
    if (!c)
        return;
    qcredit_clear(c);
    free(c->held);
    free(c);
}

const char *qcredit_queue(const struct qcredit *c)
{
    return c->queue;
}

size_t qcredit_held(const struct qcredit *c)
{
    return c->n;
}

uint32_t qcredit_room(const struct qcredit *c)
{
    return c->n >= c->prefetch ? 0 : c->prefetch - (uint32_t)c->n;
}

static int add(struct qcredit *c, const char *receipt, uint64_t index)
{
    struct held *h = grow_array(c->held, &c->cap, c->n + 1, sizeof *h, 8);
    if (!h)
        return MOM_ERR_NOMEM;
    c->held = h;
    char *copy = strdup(receipt);
    if (!copy)
        return MOM_ERR_NOMEM;
    c->held[c->n].receipt = copy;
    c->held[c->n].index = index;
    c->n++;
    return MOM_OK;
}

int qcredit_take(struct qcredit *c, const char *body, size_t len, uint64_t index,
                 qcredit_emit_fn emit, void *arg)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return MOM_ERR_INVALID;
    }
    /* Check every message first: all or nothing for a malformed answer. */
    const cJSON *m;
    cJSON_ArrayForEach(m, list)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(m, "seq");
        const cJSON *receipt = cJSON_GetObjectItemCaseSensitive(m, "receipt");
        /* a seq is exact in a double up to 2^53 */
        if (!cJSON_IsNumber(seq) || !(seq->valuedouble >= 0 && seq->valuedouble < 0x1p53) ||
            !cJSON_IsString(receipt) || !receipt->valuestring[0]) {
            cJSON_Delete(root);
            return MOM_ERR_INVALID;
        }
    }
    int taken = 0;
    bool emitting = emit != NULL;
    cJSON_ArrayForEach(m, list)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(m, "seq");
        const cJSON *receipt = cJSON_GetObjectItemCaseSensitive(m, "receipt");
        if (add(c, receipt->valuestring, index) != MOM_OK) {
            cJSON_Delete(root);
            return MOM_ERR_NOMEM;
        }
        taken++;
        if (!emitting)
            continue;
        char *text = cJSON_PrintUnformatted(m);
        if (!text) {
            cJSON_Delete(root);
            return MOM_ERR_NOMEM;
        }
        emitting = emit(arg, (uint64_t)seq->valuedouble, text, strlen(text));
        cJSON_free(text);
    }
    cJSON_Delete(root);
    return taken;
}

size_t qcredit_recount(struct qcredit *c, const struct store *s, uint64_t now_ms)
{
    uint64_t applied = store_applied_index(s);
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct held *h = &c->held[i];
        if (h->index > applied || store_lease_live(s, c->queue, h->receipt, now_ms))
            c->held[kept++] = *h;
        else
            free(h->receipt);
    }
    c->n = kept;
    return kept;
}

int qcredit_release_command(const struct qcredit *c, struct command *cmd)
{
    if (!c->n)
        return MOM_ERR_NOTFOUND;
    struct command_item *items = calloc(c->n, sizeof *items);
    if (!items)
        return MOM_ERR_NOMEM;
    for (size_t i = 0; i < c->n; i++) {
        items[i].body = (const uint8_t *)c->held[i].receipt;
        items[i].body_len = strlen(c->held[i].receipt);
    }
    cmd->pb.which_kind = mom_v1_Command_release_leases_tag;
    strcpy(cmd->pb.kind.release_leases.queue, c->queue);
    cmd->items = items;
    cmd->item_count = c->n;
    return MOM_OK;
}
