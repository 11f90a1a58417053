/* gRPC over HTTP/2 message layer, pure over bytes: the 5-byte length-prefixed
 * message framing and an incremental deframer that accepts any split of the
 * byte stream, grpc-timeout parse/format, grpc-message percent-encoding, and
 * the gRPC status codes with the one mapping from mom errors (and from HTTP
 * statuses) onto them.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_GRPCMSG_H
#define MOM_REPLICATION_GRPCMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPCMSG_PREFIX_LEN 5u
#define GRPCMSG_TIMEOUT_MAXLEN 10u /* 8 digits + unit + NUL */

enum grpc_status {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* Writes the prefix of a message of len bytes (compressed flag 0 or 1). */
void grpcmsg_pack_prefix(uint8_t out[GRPCMSG_PREFIX_LEN], bool compressed, uint32_t len);
/* Reads a prefix. Returns GRPCMSG_PREFIX_LEN, MOM_ERR_NEED_MORE or
 * MOM_ERR_INVALID (flag byte other than 0 or 1). */
int grpcmsg_decode_prefix(const uint8_t *buf, size_t len, bool *compressed, uint32_t *msg_len);

/* Incremental deframer for one stream. Embedded, _init/_cleanup. */
struct grpcmsg_reader {
    size_t max_len; /* largest accepted message */
    uint8_t prefix[GRPCMSG_PREFIX_LEN];
    size_t prefix_have;
    bool compressed;
    uint32_t msg_len; /* valid once prefix_have == 5 */
    uint8_t *buf;     /* owned: message bytes gathered across calls */
    size_t have;
    size_t cap;
};

/* One whole message. data points either into the input of the last feed
 * call or into the reader's buffer; valid until the next feed or cleanup. */
struct grpcmsg_view {
    const uint8_t *data;
    size_t len;
    bool compressed;
};

void grpcmsg_reader_init(struct grpcmsg_reader *r, size_t max_len);
void grpcmsg_reader_cleanup(struct grpcmsg_reader *r);
/* Feeds bytes; *used is set to how many were taken. Returns 1 with *msg set
 * when a message completed (call again with the rest), 0 when all input was
 * taken and more is needed, MOM_ERR_TOO_LARGE when a prefix announces more
 * than max_len, MOM_ERR_INVALID for a bad flag byte, MOM_ERR_NOMEM. After an
 * error the reader must not be fed again. */
int grpcmsg_reader_feed(struct grpcmsg_reader *r, const uint8_t *data, size_t len, size_t *used,
                        struct grpcmsg_view *msg);
/* True when no partial message is pending (a clean end of stream). */
bool grpcmsg_reader_idle(const struct grpcmsg_reader *r);

/* Parses a grpc-timeout value ("1*8DIGIT unit", unit H M S m u n) into
 * milliseconds, rounding up. Returns 0 or MOM_ERR_INVALID. */
int grpcmsg_timeout_parse(const char *text, size_t len, uint64_t *ms);
/* Formats ms as a grpc-timeout value of at most 8 digits; returns its length. */
size_t grpcmsg_timeout_format(uint64_t ms, char out[GRPCMSG_TIMEOUT_MAXLEN]);

/* grpc-message percent-encoding: bytes outside 0x20..0x7e and '%' become %XX.
 * Encode writes at most outlen-1 bytes plus a NUL and never splits an escape;
 * returns the length written. Decode is lenient (a bad escape is kept as is)
 * and returns the decoded length (out holds at least len+1). */
size_t grpcmsg_percent_encode(const char *in, size_t len, char *out, size_t outlen);
size_t grpcmsg_percent_decode(const char *in, size_t len, char *out);

/* The one mapping of a mom error code (common/err.h) onto a gRPC status. */
enum grpc_status grpcmsg_status_from_err(int err);
/* gRPC status for a non-200 HTTP :status (gRPC spec, http-grpc-status-mapping). */
enum grpc_status grpcmsg_status_from_http(int http_status);
/* Upper-case name ("UNAVAILABLE") for logs. */
const char *grpcmsg_status_name(int status);

#endif
