/* nanopb encode/decode of mom.v1.Command (see command.h). Publish items and
 * their bodies are callbacks: on encode they stream from cmd->items; on
 * decode each body points into the input buffer (zero copy) and is skipped
 * with pb_read(stream, NULL, n). ReleaseLeases receipts travel the same
 * way, one item per receipt (its body is the receipt's text). Command has
 * submsg_callback, so the items callback is installed through cb_kind
 * right before the publish or release submessage is decoded (after nanopb
 * has zeroed the oneof).
 * SetAcl's two user lists are callbacks the same way, copied into struct
 * command_users.
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"

#include "common/err.h"
#include "common/pbwire.h"

#include <pb_common.h>
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

/* ReleaseLeases.receipts: each item's body is one receipt. */
static bool encode_receipts(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const struct command *cmd = *arg;
    for (size_t i = 0; i < cmd->item_count; i++)
        if (!pb_encode_tag_for_field(stream, field) ||
            !pb_encode_string(stream, cmd->items[i].body, cmd->items[i].body_len))
            return false;
    return true;
}

static bool encode_users(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const struct command_users *list = *arg;
    for (size_t i = 0; i < list->count; i++) {
        const char *name = list->names[i];
        if (!pb_encode_tag_for_field(stream, field) ||
            !pb_encode_string(stream, (const pb_byte_t *)name,
                              strnlen(name, COMMAND_USER_SIZE - 1)))
            return false;
    }
    return true;
}

static bool users_valid(const struct command_users *list)
{
    return list->count <= COMMAND_ACL_MAX_USERS && (list->count == 0 || list->names);
}

#define COMMAND_FIXED_BOUND 4096

/* The reflective encoder: pb_encode walks the descriptors. */
int command_encode_generic(const struct command *cmd, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (cmd->item_count > COMMAND_MAX_BATCH || (cmd->item_count && !cmd->items) ||
        !users_valid(&cmd->acl_publish) || !users_valid(&cmd->acl_consume))
        return MOM_ERR_INVALID;
    mom_v1_Command pb = cmd->pb; /* a copy, so callbacks can be set on a const command */
    pb.cb_kind.funcs.encode = NULL;
    pb.cb_kind.arg = NULL;
    if (pb.which_kind == mom_v1_Command_publish_tag) {
        pb.kind.publish.items.funcs.encode = encode_items;
        pb.kind.publish.items.arg = (void *)cmd;
    } else if (pb.which_kind == mom_v1_Command_release_leases_tag) {
        pb.kind.release_leases.receipts.funcs.encode = encode_receipts;
        pb.kind.release_leases.receipts.arg = (void *)cmd;
    } else if (pb.which_kind == mom_v1_Command_set_acl_tag) {
        pb.kind.set_acl.publish.funcs.encode = encode_users;
        pb.kind.set_acl.publish.arg = (void *)&cmd->acl_publish;
        pb.kind.set_acl.consume.funcs.encode = encode_users;
        pb.kind.set_acl.consume.arg = (void *)&cmd->acl_consume;
    }
    /* One pass into a buffer sized from an upper bound (a sizing pass first
     * doubled the cost of every nested submessage on the publish path):
     * the fixed part of any Command is well under COMMAND_FIXED_BOUND and an
     * item adds its body, its content type and a few tags and varints. */
    size_t bound = COMMAND_FIXED_BOUND;
    for (size_t i = 0; i < cmd->item_count; i++)
        bound += cmd->items[i].body_len + sizeof cmd->items[i].content_type + 48;
    if (pb.which_kind == mom_v1_Command_set_acl_tag) /* a name, its tag and length */
        bound += (cmd->acl_publish.count + cmd->acl_consume.count) * (COMMAND_USER_SIZE + 4);
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

/* ---- the publish path, laid out by hand ----
 * Publish is most of the log, and pb_encode sizes every nested submessage
 * in a pass of its own (an item was walked four times, ~12k instructions a
 * publish). Here the lengths are computed first and the fields written once
 * with nanopb's primitives, in the order and with the proto3 default
 * skipping that pb_encode uses, so the bytes are the same; test_command
 * compares the two encoders on every field combination. */

/* tag (field numbers 1..15: one byte) + length + bytes */
static size_t string_field_size(size_t len)
{
    return len ? 1 + pbwire_varint_size(len) + len : 0;
}

static size_t varint_field_size(uint64_t v)
{
    return v ? 1 + pbwire_varint_size(v) : 0;
}

static size_t item_size(const struct command_item *it)
{
    return string_field_size(it->body_len) +
           string_field_size(strnlen(it->content_type, sizeof it->content_type - 1)) +
           varint_field_size(it->delay_ms);
}

static bool put_string(pb_ostream_t *os, uint32_t field, const void *data, size_t len)
{
    return !len || (pb_encode_tag(os, PB_WT_STRING, field) && pb_encode_string(os, data, len));
}

static bool put_varint(pb_ostream_t *os, uint32_t field, uint64_t v)
{
    return !v || (pb_encode_tag(os, PB_WT_VARINT, field) && pb_encode_varint(os, v));
}

/* Command's own fields (time_ms, user, admin), ahead of the oneof member. */
static size_t envelope_size(const struct command *cmd, size_t user_len)
{
    return varint_field_size(cmd->pb.time_ms) + string_field_size(user_len) +
           (cmd->pb.admin ? 2 : 0);
}

static bool put_envelope(pb_ostream_t *os, const struct command *cmd, size_t user_len)
{
    return put_varint(os, mom_v1_Command_time_ms_tag, cmd->pb.time_ms) &&
           put_string(os, mom_v1_Command_user_tag, cmd->pb.user, user_len) &&
           put_varint(os, mom_v1_Command_admin_tag, cmd->pb.admin);
}

/* Hands buf out when every byte planned was written, else frees it. */
static int finish_layout(uint8_t *buf, bool ok, const pb_ostream_t *os, size_t total, uint8_t **out,
                         size_t *out_len)
{
    if (!ok || os->bytes_written != total) {
        free(buf);
        return MOM_ERR_INVALID;
    }
    *out = buf;
    *out_len = total;
    return MOM_OK;
}

/* The items, written straight into buf (exactly their planned size) with
 * the raw writers below: a batch item went through five stream calls, ~60
 * instructions a field. */
static uint8_t *raw_string(uint8_t *p, uint32_t field, const void *data, size_t len);

static uint8_t *raw_items(uint8_t *p, const struct command *cmd)
{
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        size_t ct_len = strnlen(it->content_type, sizeof it->content_type - 1);
        size_t n = string_field_size(it->body_len) + string_field_size(ct_len) +
                   varint_field_size(it->delay_ms);
        *p++ = (uint8_t)(mom_v1_Publish_items_tag << 3 | PB_WT_STRING);
        p = pbwire_put_varint(p, n);
        p = raw_string(p, mom_v1_PublishItem_body_tag, it->body, it->body_len);
        p = raw_string(p, mom_v1_PublishItem_content_type_tag, it->content_type, ct_len);
        if (it->delay_ms) {
            *p++ = (uint8_t)(mom_v1_PublishItem_delay_ms_tag << 3 | PB_WT_VARINT);
            p = pbwire_put_varint(p, it->delay_ms);
        }
    }
    return p;
}

static int encode_publish(const struct command *cmd, uint8_t **out, size_t *out_len)
{
    const mom_v1_Publish *pub = &cmd->pb.kind.publish;
    size_t user_len = strnlen(cmd->pb.user, sizeof cmd->pb.user - 1);
    size_t name_len = strnlen(pub->name, sizeof pub->name - 1);
    size_t key_len = strnlen(pub->idempotency_key, sizeof pub->idempotency_key - 1);
    size_t pub_len = varint_field_size((uint64_t)pub->kind) + string_field_size(name_len) +
                     string_field_size(key_len) + (pub->batch ? 2 : 0);
    for (size_t i = 0; i < cmd->item_count; i++) {
        size_t n = item_size(&cmd->items[i]);
        pub_len += 1 + pbwire_varint_size(n) + n;
    }
    size_t total = envelope_size(cmd, user_len) + 1 + pbwire_varint_size(pub_len) + pub_len;
    uint8_t *buf = malloc(total);
    if (!buf)
        return MOM_ERR_NOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, total);
    bool ok = put_envelope(&os, cmd, user_len) &&
              pb_encode_tag(&os, PB_WT_STRING, mom_v1_Command_publish_tag) &&
              pb_encode_varint(&os, pub_len) &&
              put_varint(&os, mom_v1_Publish_kind_tag, (uint64_t)pub->kind) &&
              put_string(&os, mom_v1_Publish_name_tag, pub->name, name_len);
    if (!ok) {
        free(buf);
        return MOM_ERR_INVALID;
    }
    size_t head = os.bytes_written;
    size_t items_end = (size_t)(raw_items(buf + head, cmd) - buf);
    pb_ostream_t tail = pb_ostream_from_buffer(buf + items_end, total - items_end);
    ok = put_string(&tail, mom_v1_Publish_idempotency_key_tag, pub->idempotency_key, key_len) &&
         put_varint(&tail, mom_v1_Publish_batch_tag, pub->batch);
    tail.bytes_written += items_end;
    return finish_layout(buf, ok, &tail, total, out, out_len);
}

/* ---- the other kinds: inner message by pb_encode, envelope by hand ----
 * Queue and topic settings, subscriptions and users are small messages;
 * what cost ~6.5k instructions was pb_encode walking Command's descriptors
 * and sizing the oneof member in a pass of its own. The member is encoded once into a
 * stack buffer and framed as pb_encode frames a submessage. Kinds with
 * callbacks inside (SetAcl) take the reflective path. */
#define INNER_MAX 1024

/* The whole Command: envelope, the oneof member's tag and length, its
 * inner_len bytes. */
static size_t enveloped_size(const struct command *cmd, size_t user_len, size_t inner_len)
{
    return envelope_size(cmd, user_len) + pbwire_varint_size((uint64_t)cmd->pb.which_kind << 3) +
           pbwire_varint_size(inner_len) + inner_len;
}

static int encode_enveloped(const struct command *cmd, uint8_t **out, size_t *out_len)
{
    pb_field_iter_t it;
    if (!pb_field_iter_begin_const(&it, mom_v1_Command_fields, &cmd->pb) ||
        !pb_field_iter_find(&it, cmd->pb.which_kind) || !it.submsg_desc)
        return command_encode_generic(cmd, out, out_len);
    uint8_t inner[INNER_MAX];
    pb_ostream_t is = pb_ostream_from_buffer(inner, sizeof inner);
    if (!pb_encode(&is, it.submsg_desc, it.pData))
        return command_encode_generic(cmd, out, out_len); /* larger than INNER_MAX */
    size_t inner_len = is.bytes_written;
    size_t user_len = strnlen(cmd->pb.user, sizeof cmd->pb.user - 1);
    size_t total = enveloped_size(cmd, user_len, inner_len);
    uint8_t *buf = malloc(total);
    if (!buf)
        return MOM_ERR_NOMEM;
    pb_ostream_t os = pb_ostream_from_buffer(buf, total);
    bool ok = put_envelope(&os, cmd, user_len) &&
              pb_encode_tag(&os, PB_WT_STRING, cmd->pb.which_kind) &&
              pb_encode_string(&os, inner, inner_len);
    return finish_layout(buf, ok, &os, total, out, out_len);
}

/* ---- the consumer kinds, laid out by hand ----
 * Every receive and every ack proposes one of these, so a receive+ack pair
 * paid pb_encode's descriptor walk (~2.5k instructions) twice. Their
 * members are flat: strings (fields 1..nstr) followed by varints (the next
 * field numbers), written straight into a buffer of the computed size with
 * pb_encode's order and proto3 default skipping; test_command compares
 * them with pb_encode. */
struct flat_member {
    const char *str[2];
    size_t str_len[2];
    size_t nstr;
    uint64_t num[4];
    size_t nnum;
};

static void flat_str(struct flat_member *m, const char *s, size_t size)
{
    m->str[m->nstr] = s;
    m->str_len[m->nstr++] = strnlen(s, size - 1);
}

/* Raw writers for encode_flat and raw_items, whose buffers are sized
 * exactly: the bytes pb_encode_tag, pb_encode_varint and pb_encode_string
 * write, without going through a stream per field. */
static uint8_t *raw_string(uint8_t *p, uint32_t field, const void *data, size_t len)
{
    if (!len)
        return p;
    p = pbwire_put_varint(p, (uint64_t)field << 3 | PB_WT_STRING);
    p = pbwire_put_varint(p, len);
    memcpy(p, data, len);
    return p + len;
}

static uint8_t *raw_number(uint8_t *p, uint32_t field, uint64_t v)
{
    return v ? pbwire_put_varint(pbwire_put_varint(p, (uint64_t)field << 3 | PB_WT_VARINT), v) : p;
}

static int encode_flat(const struct command *cmd, const struct flat_member *m, uint8_t **out,
                       size_t *out_len)
{
    size_t inner_len = 0;
    for (size_t i = 0; i < m->nstr; i++)
        inner_len += string_field_size(m->str_len[i]);
    for (size_t i = 0; i < m->nnum; i++)
        inner_len += varint_field_size(m->num[i]);
    size_t user_len = strnlen(cmd->pb.user, sizeof cmd->pb.user - 1);
    size_t total = enveloped_size(cmd, user_len, inner_len);
    uint8_t *buf = malloc(total);
    if (!buf)
        return MOM_ERR_NOMEM;
    uint8_t *p = raw_number(buf, mom_v1_Command_time_ms_tag, cmd->pb.time_ms);
    p = raw_string(p, mom_v1_Command_user_tag, cmd->pb.user, user_len);
    p = raw_number(p, mom_v1_Command_admin_tag, cmd->pb.admin);
    p = pbwire_put_varint(p, (uint64_t)cmd->pb.which_kind << 3 | PB_WT_STRING);
    p = pbwire_put_varint(p, inner_len);
    uint32_t field = 1;
    for (size_t i = 0; i < m->nstr; i++)
        p = raw_string(p, field++, m->str[i], m->str_len[i]);
    for (size_t i = 0; i < m->nnum; i++)
        p = raw_number(p, field++, m->num[i]);
    (void)p; /* at buf + total: each writer writes what its _size above counted */
    *out = buf;
    *out_len = total;
    return MOM_OK;
}

/* Fills m for Receive, Ack, Nack and Extend; false for any other kind. */
static bool consumer_member(const mom_v1_Command *pb, struct flat_member *m)
{
    memset(m, 0, sizeof *m);
    switch (pb->which_kind) {
    case mom_v1_Command_receive_tag: {
        const mom_v1_Receive *r = &pb->kind.receive;
        flat_str(m, r->queue, sizeof r->queue);
        m->num[0] = r->max;
        m->num[1] = r->has_visibility_timeout;
        m->num[2] = r->visibility_timeout_ms;
        m->num[3] = r->auto_ack;
        m->nnum = 4;
        return true;
    }
    case mom_v1_Command_ack_tag:
        flat_str(m, pb->kind.ack.queue, sizeof pb->kind.ack.queue);
        flat_str(m, pb->kind.ack.receipt, sizeof pb->kind.ack.receipt);
        return true;
    case mom_v1_Command_nack_tag:
        flat_str(m, pb->kind.nack.queue, sizeof pb->kind.nack.queue);
        flat_str(m, pb->kind.nack.receipt, sizeof pb->kind.nack.receipt);
        m->num[m->nnum++] = pb->kind.nack.delay_ms;
        return true;
    case mom_v1_Command_extend_tag:
        flat_str(m, pb->kind.extend.queue, sizeof pb->kind.extend.queue);
        flat_str(m, pb->kind.extend.receipt, sizeof pb->kind.extend.receipt);
        m->num[m->nnum++] = pb->kind.extend.visibility_timeout_ms;
        return true;
    default: return false;
    }
}

int command_encode(const struct command *cmd, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (cmd->item_count > COMMAND_MAX_BATCH || (cmd->item_count && !cmd->items))
        return MOM_ERR_INVALID;
    if (cmd->pb.which_kind == mom_v1_Command_publish_tag)
        return encode_publish(cmd, out, out_len);
    struct flat_member m;
    if (consumer_member(&cmd->pb, &m))
        return encode_flat(cmd, &m, out, out_len);
    if (cmd->pb.which_kind == mom_v1_Command_set_acl_tag ||
        cmd->pb.which_kind == mom_v1_Command_release_leases_tag || cmd->pb.which_kind == 0)
        return command_encode_generic(cmd, out, out_len);
    return encode_enveloped(cmd, out, out_len);
}

/* ---- decode ---- */

struct decode_ctx {
    struct command *cmd;
    size_t cap;
    bool nomem;
    const uint8_t *input; /* the buffer command_decode reads */
    size_t input_len;
};

struct body_arg {
    struct command_item *item;
    const struct decode_ctx *ctx;
};

static bool decode_body(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct body_arg *ba = *arg;
    /* command_decode reads from a memory buffer, so a length-delimited
     * body's substream state is its position in that buffer. A body sent
     * with another wire type reaches here as a copy in nanopb's stack
     * frame: refuse it rather than keep a pointer that dies on return. */
    const uint8_t *at = stream->state;
    if (at < ba->ctx->input || stream->bytes_left > ba->ctx->input_len ||
        (size_t)(at - ba->ctx->input) > ba->ctx->input_len - stream->bytes_left)
        return false;
    ba->item->body = at;
    ba->item->body_len = stream->bytes_left;
    return pb_read(stream, NULL, stream->bytes_left);
}

/* Room for one more item (at most COMMAND_MAX_BATCH); the new item is
 * zeroed. NULL when full or out of memory (ctx->nomem). */
static struct command_item *next_item(struct decode_ctx *ctx)
{
    struct command *cmd = ctx->cmd;
    if (cmd->item_count >= COMMAND_MAX_BATCH)
        return NULL;
    if (cmd->item_count == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 1;
        if (cap > COMMAND_MAX_BATCH)
            cap = COMMAND_MAX_BATCH;
        struct command_item *items = realloc(cmd->items, cap * sizeof *items);
        if (!items) {
            ctx->nomem = true;
            return NULL;
        }
        cmd->items = items;
        ctx->cap = cap;
    }
    struct command_item *it = &cmd->items[cmd->item_count];
    memset(it, 0, sizeof *it);
    return it;
}

static bool decode_items(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct decode_ctx *ctx = *arg;
    struct command *cmd = ctx->cmd;
    struct command_item *it = next_item(ctx);
    if (!it)
        return false;
    struct body_arg ba = {it, ctx};
    mom_v1_PublishItem pi = mom_v1_PublishItem_init_zero;
    pi.body.funcs.decode = decode_body;
    pi.body.arg = &ba;
    if (!pb_decode(stream, mom_v1_PublishItem_fields, &pi))
        return false;
    memcpy(it->content_type, pi.content_type, sizeof it->content_type);
    it->delay_ms = pi.delay_ms;
    cmd->item_count++;
    return true;
}

/* One ReleaseLeases receipt: an item whose body points into the input. */
static bool decode_receipt(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct decode_ctx *ctx = *arg;
    struct command_item *it = next_item(ctx);
    if (!it)
        return false;
    struct body_arg ba = {it, ctx};
    void *bap = &ba;
    if (!decode_body(stream, field, &bap))
        return false;
    ctx->cmd->item_count++;
    return true;
}

/* One name of a SetAcl list: 1..128 bytes without a NUL. */
static bool decode_user(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    struct command_users *list = *arg;
    char name[COMMAND_USER_SIZE];
    size_t len = stream->bytes_left;
    if (len >= sizeof name || !pb_read(stream, (pb_byte_t *)name, len) || memchr(name, '\0', len))
        return false;
    return command_users_add(list, name, len) == MOM_OK;
}

/* Runs before a oneof submessage is decoded: installs the items callback
 * into the freshly zeroed publish (or release) member, the user-list
 * callbacks into a SetAcl one. */
static bool decode_kind(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)stream;
    if (field->tag == mom_v1_Command_release_leases_tag) {
        mom_v1_ReleaseLeases *rl = field->pData;
        if (!rl->receipts.funcs.decode) {
            struct decode_ctx *ctx = *arg;
            ctx->cmd->item_count = 0;
        }
        rl->receipts.funcs.decode = decode_receipt;
        rl->receipts.arg = *arg;
    } else if (field->tag == mom_v1_Command_set_acl_tag) {
        mom_v1_SetAcl *acl = field->pData;
        struct decode_ctx *ctx = *arg;
        if (!acl->publish.funcs.decode) {
            /* Freshly zeroed: the lists of an earlier, replaced SetAcl go. */
            ctx->cmd->acl_publish.count = 0;
            ctx->cmd->acl_consume.count = 0;
        }
        acl->publish.funcs.decode = decode_user;
        acl->publish.arg = &ctx->cmd->acl_publish;
        acl->consume.funcs.decode = decode_user;
        acl->consume.arg = &ctx->cmd->acl_consume;
    } else if (field->tag == mom_v1_Command_publish_tag) {
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

int command_decode_generic(const uint8_t *buf, size_t len, struct command *out)
{
    memset(out, 0, sizeof *out);
    struct decode_ctx ctx = {.cmd = out, .input = buf, .input_len = len};
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
    } else if (out->pb.which_kind == mom_v1_Command_release_leases_tag) {
        out->pb.kind.release_leases.receipts.funcs.decode = NULL;
        out->pb.kind.release_leases.receipts.arg = NULL;
    } else if (out->pb.which_kind == mom_v1_Command_set_acl_tag) {
        out->pb.kind.set_acl.publish.funcs.decode = NULL;
        out->pb.kind.set_acl.publish.arg = NULL;
        out->pb.kind.set_acl.consume.funcs.decode = NULL;
        out->pb.kind.set_acl.consume.arg = NULL;
    }
    if (!ok) {
        command_cleanup(out);
        memset(out, 0, sizeof *out);
        return ctx.nomem ? MOM_ERR_NOMEM : MOM_ERR_INVALID;
    }
    if (out->pb.which_kind != mom_v1_Command_publish_tag &&
        out->pb.which_kind != mom_v1_Command_release_leases_tag) {
        /* A member replaced by a later oneof member leaves no items. */
        free(out->items);
        out->items = NULL;
        out->item_count = 0;
    }
    if (out->pb.which_kind != mom_v1_Command_set_acl_tag) {
        /* Likewise the lists of a replaced SetAcl. */
        free(out->acl_publish.names);
        free(out->acl_consume.names);
        memset(&out->acl_publish, 0, sizeof out->acl_publish);
        memset(&out->acl_consume, 0, sizeof out->acl_consume);
    }
    return MOM_OK;
}

/* ---- decode: the Publish fast path ----
 * A Publish laid out the way command_encode writes it (each field at most
 * once and in field order, the items in a row, no default value written,
 * every varint in its shortest form) is read here in one pass over the
 * bytes. pb_decode's descriptor walk over Command and its oneof cost ~8k
 * instructions a single publish, paid by every follower applying it and
 * twice by a leader for a forwarded one (re-stamp, then apply). Anything
 * else, valid or not, makes publish_fast return false and
 * command_decode_generic decides; test_command and fuzz_command hold the
 * two to the same result. */

/* A non-default varint field's value. */
static bool rd_nonzero(struct pbwire_reader *r, uint64_t *v)
{
    return pbwire_read_varint(r, v) && *v != 0;
}

/* A non-empty string field into dst[cap], NUL-terminated as nanopb does. */
static bool rd_string(struct pbwire_reader *r, char *dst, size_t cap)
{
    const uint8_t *p;
    size_t n;
    if (!pbwire_read_bytes(r, &p, &n) || n == 0 || n >= cap)
        return false;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* One PublishItem's bytes into it. */
static bool rd_item(const uint8_t *p, size_t n, struct command_item *it)
{
    struct pbwire_reader r = {p, p + n};
    uint64_t v;
    memset(it, 0, sizeof *it);
    if (pbwire_read_tag(&r, mom_v1_PublishItem_body_tag << 3 | PB_WT_STRING) &&
        (!pbwire_read_bytes(&r, &it->body, &it->body_len) || it->body_len == 0))
        return false;
    if (pbwire_read_tag(&r, mom_v1_PublishItem_content_type_tag << 3 | PB_WT_STRING) &&
        !rd_string(&r, it->content_type, sizeof it->content_type))
        return false;
    if (pbwire_read_tag(&r, mom_v1_PublishItem_delay_ms_tag << 3 | PB_WT_VARINT)) {
        if (!rd_nonzero(&r, &v))
            return false;
        it->delay_ms = v;
    }
    return r.p == r.end;
}

/* out is zeroed; on false it holds no allocation. */
static bool publish_fast(const uint8_t *buf, size_t len, struct command *out)
{
    struct pbwire_reader r = {buf, buf + len};
    mom_v1_Command *pb = &out->pb;
    uint64_t v;
    if (pbwire_read_tag(&r, pbwire_tag(mom_v1_Command_time_ms_tag, PB_WT_VARINT))) {
        if (!rd_nonzero(&r, &v))
            return false;
        pb->time_ms = v;
    }
    if (pbwire_read_tag(&r, pbwire_tag(mom_v1_Command_user_tag, PB_WT_STRING)) &&
        !rd_string(&r, pb->user, sizeof pb->user))
        return false;
    if (pbwire_read_tag(&r, pbwire_tag(mom_v1_Command_admin_tag, PB_WT_VARINT))) {
        if (!pbwire_read_varint(&r, &v) || v != 1)
            return false;
        pb->admin = true;
    }
    const uint8_t *m;
    size_t mlen;
    if (!pbwire_read_tag(&r, pbwire_tag(mom_v1_Command_publish_tag, PB_WT_STRING)) ||
        !pbwire_read_bytes(&r, &m, &mlen) || r.p != r.end)
        return false;
    mom_v1_Publish *pub = &pb->kind.publish;
    struct pbwire_reader s = {m, m + mlen};
    if (pbwire_read_tag(&s, pbwire_tag(mom_v1_Publish_kind_tag, PB_WT_VARINT))) {
        if (!rd_nonzero(&s, &v) || v > 127)
            return false;
        pub->kind = (mom_v1_ResourceKind)v;
    }
    if (pbwire_read_tag(&s, pbwire_tag(mom_v1_Publish_name_tag, PB_WT_STRING)) &&
        !rd_string(&s, pub->name, sizeof pub->name))
        return false;
    struct pbwire_reader items = s;
    size_t count = 0;
    while (pbwire_read_tag(&s, pbwire_tag(mom_v1_Publish_items_tag, PB_WT_STRING))) {
        const uint8_t *ip;
        size_t il;
        if (!pbwire_read_bytes(&s, &ip, &il) || ++count > COMMAND_MAX_BATCH)
            return false;
    }
    if (pbwire_read_tag(&s, pbwire_tag(mom_v1_Publish_idempotency_key_tag, PB_WT_STRING)) &&
        !rd_string(&s, pub->idempotency_key, sizeof pub->idempotency_key))
        return false;
    if (pbwire_read_tag(&s, pbwire_tag(mom_v1_Publish_batch_tag, PB_WT_VARINT))) {
        if (!pbwire_read_varint(&s, &v) || v != 1)
            return false;
        pub->batch = true;
    }
    if (s.p != s.end)
        return false;
    if (count) {
        out->items = malloc(count * sizeof *out->items);
        if (!out->items)
            return false; /* the generic decoder reports it */
        for (size_t i = 0; i < count; i++) {
            const uint8_t *ip = NULL;
            size_t il = 0;
            bool walked =
                pbwire_read_tag(&items, pbwire_tag(mom_v1_Publish_items_tag, PB_WT_STRING)) &&
                pbwire_read_bytes(&items, &ip, &il); /* as in the count above */
            if (!walked || !rd_item(ip, il, &out->items[i])) {
                free(out->items);
                out->items = NULL;
                return false;
            }
        }
        out->item_count = count;
    }
    pb->which_kind = mom_v1_Command_publish_tag;
    return true;
}

int command_decode(const uint8_t *buf, size_t len, struct command *out)
{
    memset(out, 0, sizeof *out);
    if (publish_fast(buf, len, out))
        return MOM_OK;
    return command_decode_generic(buf, len, out);
}

int command_users_add(struct command_users *list, const char *name, size_t len)
{
    if (len == 0 || len >= COMMAND_USER_SIZE || list->count >= COMMAND_ACL_MAX_USERS)
        return MOM_ERR_INVALID;
    /* Grows in powers of two: a count that is one is where it doubles. */
    size_t n = list->count;
    if ((n & (n - 1)) == 0 || !list->names) {
        size_t cap = n ? n * 2 : 1;
        char(*names)[COMMAND_USER_SIZE] = realloc(list->names, cap * sizeof *names);
        if (!names)
            return MOM_ERR_NOMEM;
        list->names = names;
    }
    memcpy(list->names[n], name, len);
    list->names[n][len] = '\0';
    list->count++;
    return MOM_OK;
}

void command_cleanup(struct command *cmd)
{
    free(cmd->items);
    cmd->items = NULL;
    cmd->item_count = 0;
    free(cmd->acl_publish.names);
    free(cmd->acl_consume.names);
    memset(&cmd->acl_publish, 0, sizeof cmd->acl_publish);
    memset(&cmd->acl_consume, 0, sizeof cmd->acl_consume);
}
