/* Commands: every state change of mom as a mom.v1.Command (docs/architecture.md,
 * "Every state change is a Command").
 * The HTTP layer fills a struct command and encodes it; the log stores the
 * bytes; apply decodes them back. Publish item bodies are nanopb callbacks
 * (bodies can exceed nanopb's 64 KiB static limit), and so are SetAcl's
 * user lists (bounded by COMMAND_ACL_MAX_USERS, kept out of the static
 * struct so that every other Command stays small).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_COMMAND_H
#define MOM_BROKER_COMMAND_H

#include "proto/mom.pb.h"

#include <stddef.h>
#include <stdint.h>

#define COMMAND_MAX_BATCH 1000
#define COMMAND_ACL_MAX_USERS 1000 /* per SetAcl list */
#define COMMAND_USER_SIZE 129      /* a user name (1..128 bytes) and its NUL */

struct command_item {
    const uint8_t *body; /* not owned: the request body, or the decode buffer */
    size_t body_len;
    char content_type[256]; /* "" = application/octet-stream */
    uint64_t delay_ms;
};

/* One SetAcl list: user names in the order given (the store sorts them). */
struct command_users {
    char (*names)[COMMAND_USER_SIZE]; /* malloc'd, owned by the command; NULL when empty */
    size_t count;
};

struct command {
    mom_v1_Command pb; /* stamp, identity and the oneof (pb.which_kind) */
    /* Publish: its items. ReleaseLeases: one item per receipt (body = the
     * receipt's text, not NUL-terminated). Owned by the command (malloc'd
     * array). */
    struct command_item *items;
    size_t item_count;
    struct command_users acl_publish, acl_consume; /* SetAcl only; owned by the command */
};

/* Encodes cmd into a malloc'd buffer (*out, *out_len), owned by the caller.
 * Returns MOM_OK, MOM_ERR_NOMEM or MOM_ERR_INVALID. */
int command_encode(const struct command *cmd, uint8_t **out, size_t *out_len);

/* The same bytes through nanopb's reflective pb_encode for every kind;
 * command_encode lays Publish, Receive, Ack, Nack and Extend out by hand
 * and tests compare the two. */
int command_encode_generic(const struct command *cmd, uint8_t **out, size_t *out_len);

/* Decodes buf into out. Item bodies point into buf, which must outlive out.
 * Returns MOM_OK, MOM_ERR_INVALID (undecodable; out is cleaned) or MOM_ERR_NOMEM.
 * Pure over the bytes: safe on any input (fuzzable). */
int command_decode(const uint8_t *buf, size_t len, struct command *out);

/* The same through nanopb's reflective pb_decode for every kind;
 * command_decode reads a Publish laid out as command_encode writes it in
 * one pass of its own, and tests compare the two. */
int command_decode_generic(const uint8_t *buf, size_t len, struct command *out);

/* Appends a user to a SetAcl list (copied). Returns MOM_OK, MOM_ERR_NOMEM,
 * or MOM_ERR_INVALID (empty, longer than 128 bytes, or the list is full). */
int command_users_add(struct command_users *list, const char *name, size_t len);

/* Frees the items array and the ACL lists; accepts a zeroed command. */
void command_cleanup(struct command *cmd);

#endif
