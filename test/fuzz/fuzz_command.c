/* libFuzzer harness for the log's Command codec (broker/command): any bytes
 * either fail to decode cleanly or decode into a command whose hand-laid
 * publish encoding equals nanopb's reflective one, and whose encoding
 * decodes and encodes again to the same bytes (what the leader applies
 * from memory is what followers and recovery decode).
 * SPDX-License-Identifier: MIT */
#include "broker/command.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
