/* The prefetch credit of one queue stream (GET /v1/queues/{q}/stream): the
 * leases it was given and still holds, checked against the store. A lease
 * is held from the Receive answer that gave it until this node's store,
 * having applied that Receive, no longer shows it live (acked, nacked,
 * released, expired or the queue deleted); a lease from an answer this node
 * has not applied yet (a follower behind the leader) still counts. The
 * stream may lease prefetch - held more. When the stream closes, the held
 * receipts become one ReleaseLeases Command. Pure over the store's reads
 * and the answer's bytes; the loop glue is broker/qstream.c.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_QCREDIT_H
#define MOM_BROKER_QCREDIT_H

#include "broker/command.h"
#include "broker/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QCREDIT_PREFETCH_MAX 1000u
#define QCREDIT_PREFETCH_DEFAULT 10u

struct qcredit;

/* A credit of prefetch (1..QCREDIT_PREFETCH_MAX) leases on queue. NULL on
 * allocation failure or a prefetch out of range. */
struct qcredit *qcredit_new(const char *queue, uint32_t prefetch);
/* Accepts NULL. */
void qcredit_free(struct qcredit *c);

/* Called by qcredit_take for each leased message of an answer: seq and the
 * message object's JSON text (NUL-terminated, valid during the call).
 * Returns false to stop (the remaining leases are still recorded). */
typedef bool (*qcredit_emit_fn)(void *arg, uint64_t seq, const char *json, size_t len);

/* Takes a Receive answer (status 200, {"messages":[...]}) that the leader
 * applied at log index `index`: records each message's receipt as held
 * and hands the message to emit (may be NULL). Returns the number of
 * leases recorded, or a negative error: MOM_ERR_INVALID (not such an
 * answer: nothing recorded) or MOM_ERR_NOMEM (the leases up to the failure
 * are recorded). */
int qcredit_take(struct qcredit *c, const char *body, size_t len, uint64_t index,
                 qcredit_emit_fn emit, void *arg);

/* Forgets the held leases that ended, as the store shows them at
 * command-clock time now_ms. Returns how many are still held. */
size_t qcredit_recount(struct qcredit *c, const struct store *s, uint64_t now_ms);
size_t qcredit_held(const struct qcredit *c);
/* How many more leases the stream may take: prefetch - held (0 when full). */
uint32_t qcredit_room(const struct qcredit *c);
const char *qcredit_queue(const struct qcredit *c);

/* Fills cmd (zeroed by the caller) with the ReleaseLeases of every held
 * lease; cmd->items is malloc'd (command_cleanup frees it) and its bodies
 * point into c, which must outlive the encoding. Returns MOM_OK,
 * MOM_ERR_NOMEM, or MOM_ERR_NOTFOUND when nothing is held (cmd untouched). */
int qcredit_release_command(const struct qcredit *c, struct command *cmd);
/* Forgets every held lease (after their release was proposed). */
void qcredit_clear(struct qcredit *c);

#endif
