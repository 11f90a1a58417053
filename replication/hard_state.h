/* The raft-state file's text: what a node must never forget (term, vote,
 * whether it abstains, its storage incarnation and the cluster id), one line
 * "term vote abstain incarnation cluster_id crc32c=XXXXXXXX\n" — the cluster
 * id in hex (0 = none yet), then the CRC32C of the text before " crc32c="
 * as 8 hex digits, so that a flipped digit (another valid-looking term, vote
 * or cluster id) is found, not believed. Files written before the CRC have
 * four or five fields and are still read. Pure functions over bytes; the
 * file itself (written atomically, fsync'd) is replication/node.c's.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_HARD_STATE_H
#define MOM_REPLICATION_HARD_STATE_H

#include "replication/raft.h"

#include <stddef.h>
#include <stdint.h>

/* Room for the longest text hard_state_format writes, with its NUL. */
#define HARD_STATE_TEXT_MAX 160

/* Writes the text of hs and incarnation into out (HARD_STATE_TEXT_MAX
 * bytes, NUL-terminated); returns its length. */
size_t hard_state_format(const struct raft_hard_state *hs, uint64_t incarnation,
                         char out[HARD_STATE_TEXT_MAX]);

/* Parses len bytes of raft-state text (no NUL needed): MOM_OK with *hs and
 * *incarnation filled, or MOM_ERR_CORRUPT (and nothing written) for anything
 * but the format above: a missing newline, an empty or extra field, a
 * number out of range or not in canonical digits, a CRC that does not
 * match. */
int hard_state_parse(const char *text, size_t len, struct raft_hard_state *hs,
                     uint64_t *incarnation);

#endif
