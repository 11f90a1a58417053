/* The Server-Sent Events wire format (text/event-stream) as pure functions
 * over bytes: events, comments and the retry field. Nothing here knows about
 * sockets or the broker; the stream module (broker/stream.c) hands the
 * results to the connection.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_SSE_H
#define MOM_BROKER_SSE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes sse_event writes for these arguments. */
size_t sse_event_size(uint64_t id, const char *event, const char *data, size_t len);
/* Writes "id: ID\nevent: EVENT\ndata: DATA\n\n" into out. A line break in
 * data (CR, LF or CRLF) starts another "data: " line, so a client joins
 * the lines back into exactly data; the broker's JSON has none and makes
 * one line. event must be a single line (no CR or LF); NULL or "" leaves
 * the event line out. Returns the bytes written, or 0 when cap is too
 * small (nothing useful is in out then). */
size_t sse_event(char *out, size_t cap, uint64_t id, const char *event, const char *data,
                 size_t len);
/* ": TEXT\n\n", a comment that clients ignore (keep-alive). text must be a
 * single line. Returns the bytes written, or 0 when cap is too small. */
size_t sse_comment(char *out, size_t cap, const char *text);
/* "retry: MS\n\n": the client's reconnection delay. Returns the bytes
 * written, or 0 when cap is too small. */
size_t sse_retry(char *out, size_t cap, uint64_t ms);

#endif
