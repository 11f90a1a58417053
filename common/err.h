/* One error vocabulary for every layer of mom: negative codes, 0 is success.
 * Lower layers return these; one place per wire turns them into that wire's
 * errors: grpcmsg_status_from_err (replication/grpcmsg.c) into gRPC
 * statuses, and the server's send_storage_error (broker/server.c) into the
 * REST API's error kinds (broker/api_error.h). HTTP/2 connection errors are
 * h2frame's own codes (enum h2frame_error), not these.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_ERR_H
#define MOM_COMMON_ERR_H

enum mom_err {
    MOM_OK = 0,
    MOM_ERR_NOMEM = -1,        /* allocation failed */
    MOM_ERR_IO = -2,           /* read/write/sync failed */
    MOM_ERR_NOSPACE = -3,      /* disk full (ENOSPC/EDQUOT) */
    MOM_ERR_CORRUPT = -4,      /* checksum or structure mismatch in stored data */
    MOM_ERR_INVALID = -5,      /* malformed input */
    MOM_ERR_NOTFOUND = -6,     /* no such thing */
    MOM_ERR_NEED_MORE = -7,    /* parser needs more bytes */
    MOM_ERR_TOO_LARGE = -8,    /* over a size limit */
    MOM_ERR_PROTOCOL = -9,     /* peer broke the wire protocol */
    MOM_ERR_NOT_LEADER = -10,  /* this node cannot commit now */
    MOM_ERR_TIMEOUT = -11,     /* deadline passed */
    MOM_ERR_UNAVAILABLE = -12, /* peer or quorum unreachable */
    MOM_ERR_AUTH = -13,        /* authentication failed */
    MOM_ERR_CLOSED = -14,      /* object is shutting down */
    MOM_ERR_EXISTS = -15,      /* already exists */
    MOM_ERR_FOREIGN = -16,     /* belongs to another cluster */
};

/* Static text for a code (never NULL). */
const char *mom_strerror(int err);

/* Map an errno value from a failed syscall to MOM_ERR_NOSPACE or MOM_ERR_IO. */
int mom_err_from_errno(int errnum);

#endif
