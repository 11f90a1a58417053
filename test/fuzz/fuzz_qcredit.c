/* libFuzzer harness for a queue stream's credit (broker/qcredit): any bytes
 * as a Receive answer either are refused whole or record at most as many
 * leases as the answer holds; whatever is held recounts against an empty
 * store to nothing (an unknown queue holds no live lease once applied) and
 * its ReleaseLeases Command encodes and decodes to the same receipts.
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"
#include "broker/qcredit.h"
#include "broker/store.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool count(void *arg, uint64_t seq, const char *json, size_t len)
{
    (void)seq;
    if (strlen(json) != len)
        abort();
    (*(size_t *)arg)++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qcredit *c = qcredit_new("q", QCREDIT_PREFETCH_MAX);
    struct store *s = store_new();
    if (!c || !s)
        abort();
    size_t emitted = 0;
    int n = qcredit_take(c, (const char *)data, size, 0, count, &emitted);
    if (n == MOM_ERR_INVALID && qcredit_held(c) != 0)
        abort();
    if (n >= 0 && ((size_t)n != qcredit_held(c) || emitted != (size_t)n))
        abort();
    if (n > 0 && n <= COMMAND_MAX_BATCH) {
        struct command cmd;
        memset(&cmd, 0, sizeof cmd);
        if (qcredit_release_command(c, &cmd) != MOM_OK || cmd.item_count != (size_t)n)
            abort();
        uint8_t *buf;
        size_t len;
        if (command_encode(&cmd, &buf, &len) != MOM_OK)
            abort();
        struct command back;
        if (command_decode(buf, len, &back) != MOM_OK || back.item_count != cmd.item_count)
            abort();
        for (size_t i = 0; i < back.item_count; i++)
            if (back.items[i].body_len != cmd.items[i].body_len ||
                memcmp(back.items[i].body, cmd.items[i].body, back.items[i].body_len) != 0)
                abort();
        command_cleanup(&back);
        command_cleanup(&cmd);
        free(buf);
    }
    if (qcredit_recount(c, s, 0) != 0)
        abort();
    store_free(s);
    qcredit_free(c);
    return 0;
}
