/* nanopb encode/decode of mom.v1.Command (see command.h). Publish items and
 * their bodies are callbacks: on encode they stream from cmd->items; on
 * decode each body points into the input buffer (zero copy) and is skipped
 * with pb_read(stream, NULL, n). Command has submsg_callback, so the items
 * callback is installed through cb_kind right before the publish
 * submessage is decoded (after nanopb has zeroed the oneof).
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"

#include "common/err.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

/* ---- encode ---- */

static bool encode_body(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const struct command_item *it = *arg;
    if (it->body_len == 0)
        return true; /* proto3: empty bytes are not written */
    return pb_encode_tag_for_field(stream, field) &&
           pb_encode_string(stream, it->body, it->body_len);
}

static bool encode_items(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const struct command *cmd = *arg;
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        mom_v1_PublishItem pi = mom_v1_PublishItem_init_zero;
        pi.body.funcs.encode = encode_body;
        pi.body.arg = (void *)it;
        memcpy(pi.content_type, it->content_type, sizeof pi.content_type);
        pi.content_type[sizeof pi.content_type - 1] = '\0';
        pi.delay_ms = it->delay_ms;
        if (!pb_encode_tag_for_field(stream, field) ||
            !pb_encode_submessage(stream, mom_v1_PublishItem_fields, &pi))
            return false;
    }
    return true;
}

#define COMMAND_FIXED_BOUND 4096

int command_encode(const struct command *cmd, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (cmd->item_count > COMMAND_MAX_BATCH || (cmd->item_count && !cmd->items))
        return MOM_ERR_INVALID;
    mom_v1_Command pb = cmd->pb; /* a copy, so callbacks can be set on a const command */
    pb.cb_kind.funcs.encode = NULL;
    pb.cb_kind.arg = NULL;
    if (pb.which_kind == mom_v1_Command_publish_tag) {
        pb.kind.publish.items.funcs.encode = encode_items;
        pb.kind.publish.items.arg = (void *)cmd;
    } else if (pb.which_kind == mom_v1_Command_set_acl_tag) {
        /* struct command carries no ACL lists yet: none are encoded. */
        pb.kind.set_acl.publish.funcs.encode = NULL;
        pb.kind.set_acl.consume.funcs.encode = NULL;
    }
    /* One pass into a buffer sized from an upper bound (a sizing pass first
     * doubled the cost of every nested submessage on the publish path):
     * the fixed part of any Command is well under COMMAND_FIXED_BOUND and an
     * item adds its body, its content type and a few tags and varints. */
    size_t bound = COMMAND_FIXED_BOUND;
    for (size_t i = 0; i < cmd->item_count; i++)
        bound += cmd->items[i].body_len + sizeof cmd->items[i].content_type + 48;
    uint8_t *buf = malloc(bound);
    if (!buf)
        return MOM_ERR_NOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, bound);
    if (!pb_encode(&os, mom_v1_Command_fields, &pb)) {
        free(buf);
        return MOM_ERR_INVALID;
    }
    *out = buf;
    *out_len = os.bytes_written;
    return MOM_OK;
}

/* ---- decode ---- */

struct decode_ctx {
    struct command *cmd;
    size_t cap;
    bool nomem;
};

static bool decode_body(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct command_item *it = *arg;
    /* command_decode reads from a memory buffer, so every substream's state
     * is the current position in that buffer. */
    it->body = stream->state;
    it->body_len = stream->bytes_left;
    return pb_read(stream, NULL, stream->bytes_left);
}

static bool decode_items(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct decode_ctx *ctx = *arg;
    struct command *cmd = ctx->cmd;
    if (cmd->item_count >= COMMAND_MAX_BATCH)
        return false;
    if (cmd->item_count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 1;
        if (cap > COMMAND_MAX_BATCH)
            cap = COMMAND_MAX_BATCH;
        struct command_item *items = realloc(cmd->items, cap * sizeof *items);
        if (!items) {
            ctx->nomem = true;
            return false;
        }
        cmd->items = items;
        ctx->cap = cap;
    }
    struct command_item *it = &cmd->items[cmd->item_count];
    memset(it, 0, sizeof *it);
    mom_v1_PublishItem pi = mom_v1_PublishItem_init_zero;
    pi.body.funcs.decode = decode_body;
    pi.body.arg = it;
    if (!pb_decode(stream, mom_v1_PublishItem_fields, &pi))
        return false;
    memcpy(it->content_type, pi.content_type, sizeof it->content_type);
    it->delay_ms = pi.delay_ms;
    cmd->item_count++;
    return true;
}

/* Runs before a oneof submessage is decoded: installs the items callback
 * into the freshly zeroed publish member. */
static bool decode_kind(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)stream;
    if (field->tag == mom_v1_Command_publish_tag) {
        mom_v1_Publish *pub = field->pData;
        if (!pub->items.funcs.decode) {
            /* Freshly zeroed: items of an earlier, replaced publish go. */
            struct decode_ctx *ctx = *arg;
            ctx->cmd->item_count = 0;
        }
        pub->items.funcs.decode = decode_items;
        pub->items.arg = *arg;
    }
    return true;
}

int command_decode(const uint8_t *buf, size_t len, struct command *out)
{
    memset(out, 0, sizeof *out);
    struct decode_ctx ctx = {.cmd = out};
    out->pb.cb_kind.funcs.decode = decode_kind;
    out->pb.cb_kind.arg = &ctx;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    bool ok = pb_decode(&is, mom_v1_Command_fields, &out->pb);
    /* No callback may outlive this call (ctx is on the stack). */
    out->pb.cb_kind.funcs.decode = NULL;
    out->pb.cb_kind.arg = NULL;
    if (out->pb.which_kind == mom_v1_Command_publish_tag) {
        out->pb.kind.publish.items.funcs.decode = NULL;
        out->pb.kind.publish.items.arg = NULL;
    }
    if (!ok) {
        command_cleanup(out);
        memset(out, 0, sizeof *out);
        return ctx.nomem ? MOM_ERR_NOMEM : MOM_ERR_INVALID;
    }
    if (out->pb.which_kind != mom_v1_Command_publish_tag) {
        /* A publish member replaced by a later oneof member leaves no items. */
        free(out->items);
        out->items = NULL;
        out->item_count = 0;
    }
    return MOM_OK;
}

void command_cleanup(struct command *cmd)
{
    free(cmd->items);
    cmd->items = NULL;
    cmd->item_count = 0;
}
