/* libFuzzer harness for the log's Command codec (broker/command): any bytes
 * either fail to decode cleanly or decode into a command whose hand-laid
 * publish encoding equals nanopb's reflective one, and whose encoding
 * decodes and encodes again to the same bytes (what the leader applies
 * from memory is what followers and recovery decode). command_decode's
 * Publish fast path and the reflective decoder give the same verdict and
 * the same command on every input.
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_decode(const uint8_t *data, size_t size)
{
    struct command a, b;
    int ra = command_decode(data, size, &a);
    if (ra != command_decode_generic(data, size, &b))
        abort();
    if (ra != MOM_OK)
        return;
    const mom_v1_Publish *pa = &a.pb.kind.publish, *pb = &b.pb.kind.publish;
    if (a.pb.which_kind != b.pb.which_kind || a.pb.time_ms != b.pb.time_ms ||
        strcmp(a.pb.user, b.pb.user) != 0 || a.pb.admin != b.pb.admin ||
        a.item_count != b.item_count)
        abort();
    if (a.pb.which_kind == mom_v1_Command_publish_tag &&
        (pa->kind != pb->kind || memcmp(pa->name, pb->name, sizeof pa->name) != 0 ||
         memcmp(pa->idempotency_key, pb->idempotency_key, sizeof pa->idempotency_key) != 0 ||
         pa->batch != pb->batch))
        abort();
    for (size_t i = 0; a.pb.which_kind == mom_v1_Command_publish_tag && i < a.item_count; i++)
        if (a.items[i].body != b.items[i].body || a.items[i].body_len != b.items[i].body_len ||
            a.items[i].delay_ms != b.items[i].delay_ms ||
            memcmp(a.items[i].content_type, b.items[i].content_type,
                   sizeof a.items[i].content_type) != 0)
            abort();
    command_cleanup(&a);
    command_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    same_decode(data, size);
    struct command cmd;
    if (command_decode(data, size, &cmd) != MOM_OK)
        return 0;
    uint8_t *fast = NULL, *generic = NULL, *again = NULL;
    size_t fast_len = 0, generic_len = 0, again_len = 0;
    int fast_rc = command_encode(&cmd, &fast, &fast_len);
    int generic_rc = command_encode_generic(&cmd, &generic, &generic_len);
    if (fast_rc != generic_rc)
        abort();
    if (fast_rc == MOM_OK) {
        if (fast_len != generic_len || memcmp(fast, generic, fast_len) != 0)
            abort();
        struct command round;
        if (command_decode(fast, fast_len, &round) != MOM_OK)
            abort();
        if (round.item_count != cmd.item_count || round.pb.which_kind != cmd.pb.which_kind)
            abort();
        if (command_encode(&round, &again, &again_len) != MOM_OK || again_len != fast_len ||
            memcmp(again, fast, fast_len) != 0)
            abort();
        command_cleanup(&round);
    }
    free(again);
    free(generic);
    free(fast);
    command_cleanup(&cmd);
    return 0;
}
