/* libFuzzer harness for the raft-state text parser
 * (replication/hard_state): any bytes are either refused as corrupt or
 * parse into a state that, formatted again, parses to the same values.
 * Links hard_state.c, common/crc32c.c and common/err.c only.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/hard_state.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct raft_hard_state hs = {0}, again = {0};
    uint64_t inc = 0, inc2 = 0;
    int rc = hard_state_parse((const char *)data, size, &hs, &inc);
    if (rc == MOM_ERR_CORRUPT)
        return 0;
    if (rc != MOM_OK)
        abort();
    char text[HARD_STATE_TEXT_MAX];
    size_t len = hard_state_format(&hs, inc, text);
    if (hard_state_parse(text, len, &again, &inc2) != MOM_OK || again.term != hs.term ||
        again.vote != hs.vote || again.abstain != hs.abstain || again.cluster_id != hs.cluster_id ||
        inc2 != inc)
        abort();
    return 0;
}
