/* libFuzzer harness for the membership parser (replication/peer_members):
 * any MOM_PEERS text either fails with a reason or parses into members that,
 * printed back, parse to the same members. Links peer_members.c and
 * common/err.c only.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/peer_members.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    static struct peer_member a[PEER_MAX_MEMBERS], b[PEER_MAX_MEMBERS];
    size_t na = 0, nb = 0;
    char why[128];
    int rc = peer_parse_members(text, a, PEER_MAX_MEMBERS, &na, why, sizeof why);
    if (rc != MOM_OK && rc != MOM_ERR_INVALID && rc != MOM_ERR_TOO_LARGE)
        abort();
    if (rc == MOM_OK) {
        static char again[PEER_MAX_MEMBERS * 300];
        size_t o = 0;
        again[0] = '\0';
        for (size_t i = 0; i < na; i++) {
            if (a[i].id == 0 || a[i].host[0] == '\0')
                abort();
            o += (size_t)snprintf(again + o, sizeof again - o, "%s%u=%s", i ? "," : "", a[i].id,
                                  a[i].addr);
        }
        if (peer_parse_members(again, b, PEER_MAX_MEMBERS, &nb, NULL, 0) != MOM_OK || nb != na)
            abort();
        for (size_t i = 0; i < na; i++)
            if (a[i].id != b[i].id || a[i].port != b[i].port || strcmp(a[i].host, b[i].host) ||
                strcmp(a[i].addr, b[i].addr))
                abort();
    }
    free(text);
    return 0;
}
