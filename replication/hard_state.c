/* The raft-state file's text (format in hard_state.h): formatting and the
 * strict parser.
 * SPDX-License-Identifier: MIT */
#include "replication/hard_state.h"

#include "common/crc32c.h"
#include "common/err.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char crc_mark[] = " crc32c=";

size_t hard_state_format(const struct raft_hard_state *hs, uint64_t incarnation,
                         char out[HARD_STATE_TEXT_MAX])
{
    int len = snprintf(out, HARD_STATE_TEXT_MAX, "%" PRIu64 " %u %d %" PRIu64 " %" PRIx64, hs->term,
                       hs->vote, hs->abstain ? 1 : 0, incarnation, hs->cluster_id);
    len += snprintf(out + len, HARD_STATE_TEXT_MAX - (size_t)len, "%s%08" PRIx32 "\n", crc_mark,
                    crc32c(out, (size_t)len));
    return (size_t)len;
}

/* One unsigned number filling [p, e) exactly, in base 10 or 16. */
static bool parse_u64(const char *p, const char *e, int base, uint64_t max, uint64_t *out)
{
    if (p == e || e - p > 20)
        return false;
    uint64_t v = 0;
    for (; p < e; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            return false;
        if (d > max || v > (max - d) / (unsigned)base)
            return false;
        v = v * (unsigned)base + d;
    }
    *out = v;
    return true;
}

int hard_state_parse(const char *text, size_t len, struct raft_hard_state *hs,
                     uint64_t *incarnation)
{
    if (len == 0 || text[len - 1] != '\n')
        return MOM_ERR_CORRUPT;
    const char *tok[7], *end[7];
    int n = 0;
    const char *p = text, *stop = text + len - 1;
    while (p <= stop) {
        const char *e = p;
        while (e < stop && *e != ' ')
            e++;
        if (e == p || n == 7)
            return MOM_ERR_CORRUPT; /* an empty field, or too many */
        tok[n] = p;
        end[n++] = e;
        p = e + 1;
    }
    if (n == 6) {
        const char *mark = crc_mark + 1; /* without its leading space */
        size_t ml = strlen(mark);
        uint64_t crc;
        if ((size_t)(end[5] - tok[5]) != ml + 8 || memcmp(tok[5], mark, ml) != 0 ||
            !parse_u64(tok[5] + ml, end[5], 16, UINT32_MAX, &crc) ||
            crc32c(text, (size_t)(end[4] - text)) != (uint32_t)crc)
            return MOM_ERR_CORRUPT;
    } else if (n != 4 && n != 5) {
        return MOM_ERR_CORRUPT;
    }
    uint64_t term, vote, abstain, inc, cid = 0;
    if (!parse_u64(tok[0], end[0], 10, UINT64_MAX, &term) ||
        !parse_u64(tok[1], end[1], 10, UINT32_MAX, &vote) ||
        !parse_u64(tok[2], end[2], 10, 1, &abstain) ||
        !parse_u64(tok[3], end[3], 10, UINT64_MAX, &inc) ||
        (n >= 5 && !parse_u64(tok[4], end[4], 16, UINT64_MAX, &cid)))
        return MOM_ERR_CORRUPT;
    hs->term = term;
    hs->vote = (uint32_t)vote;
    hs->abstain = abstain != 0;
    hs->cluster_id = cid;
    *incarnation = inc;
    return MOM_OK;
}
