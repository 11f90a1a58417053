/* One HTTP/2 connection (RFC 9113), client or server role on the same code,
 * as a pure state machine: bytes in through h2conn_recv, bytes out through
 * the send callback, events through callbacks. It owns the stream table,
 * both flow-control windows, the HPACK deflater/inflater (nghttp2_hd_*) and
 * the data it could not send yet. No sockets, no clock.
 *
 * Receive windows are large and replenished as soon as a callback has taken
 * the data, so a sender is only ever limited by what the application can
 * buffer. Send windows are honoured: DATA that does not fit waits in the
 * stream and goes out on WINDOW_UPDATE or a SETTINGS change, trailers after it.
 * Protocol violations end the connection with GOAWAY and the RFC error code
 * (connection errors) or reset the stream (stream errors).
 *
 * Callbacks may call any h2conn_submit_* / h2conn_reset_stream, also for the
 * stream being reported, but must not free the connection.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_H2CONN_H
#define MOM_REPLICATION_H2CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2conn;

enum h2conn_role { H2CONN_CLIENT, H2CONN_SERVER };

struct h2conn_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool sensitive; /* never indexed by HPACK, sent last, not Huffman-coded (authorization) */
};

/* What this side advertises; zero fields take the defaults below. */
struct h2conn_settings {
    uint32_t max_concurrent_streams; /* peer-initiated streams open at once */
    uint32_t initial_window;         /* per-stream receive window */
    uint32_t conn_window;            /* connection receive window */
    uint32_t max_frame_size;         /* largest frame payload accepted */
    uint32_t max_header_list;        /* decoded header block limit (RFC size) */
};

#define H2CONN_DEFAULT_MAX_STREAMS 1000u
#define H2CONN_DEFAULT_WINDOW (16u << 20)
#define H2CONN_DEFAULT_CONN_WINDOW (64u << 20)
#define H2CONN_DEFAULT_MAX_FRAME 65536u
#define H2CONN_DEFAULT_MAX_HEADER_LIST 65536u

struct h2conn_callbacks {
    /* Bytes for the transport, in order. Return 0, or a negative code: the
     * connection is then dead. Required. */
    int (*send)(void *arg, const uint8_t *data, size_t len);
    /* A whole header block (HEADERS + CONTINUATION). On a server the first
     * block of a new stream opens it (stream_user is NULL; set it with
     * h2conn_stream_set_user). Later blocks are trailers (end_stream set).
     * Headers point into connection memory valid during the call. */
    void (*on_headers)(void *arg, uint32_t stream_id, void *stream_user,
                       const struct h2conn_header *hdrs, size_t n, bool end_stream);
    /* DATA payload (padding removed); may be empty with end_stream. */
    void (*on_data)(void *arg, uint32_t stream_id, void *stream_user, const uint8_t *data,
                    size_t len, bool end_stream);
    /* A stream the application knows (opened by h2conn_submit_request, or
     * announced by on_headers) ended: both sides closed (H2_NO_ERROR), reset
     * by either side, or refused by the peer's GOAWAY (H2_REFUSED_STREAM:
     * the peer did not process it, it is safe to retry). Called once, also
     * from inside h2conn_submit_* and h2conn_reset_stream. Not called by
     * h2conn_free or after a connection error. */
    void (*on_stream_close)(void *arg, uint32_t stream_id, void *stream_user, uint32_t h2_error);
    /* Optional: the peer sent GOAWAY (already-refused streams were closed). */
    void (*on_goaway)(void *arg, uint32_t last_stream_id, uint32_t h2_error);
    /* Optional: the peer's SETTINGS arrived (the first one means the peer
     * speaks HTTP/2), or a PING was acknowledged. */
    void (*on_settings)(void *arg);
    void (*on_ping_ack)(void *arg, const uint8_t data[8]);
};

/* Creates a connection and queues its opening bytes (a client's preface,
 * then SETTINGS and the connection WINDOW_UPDATE) through cb->send.
 * settings may be NULL. Returns MOM_OK, MOM_ERR_NOMEM or MOM_ERR_IO (send failed). */
int h2conn_new(enum h2conn_role role, const struct h2conn_settings *settings,
               const struct h2conn_callbacks *cb, void *arg, struct h2conn **out);
/* Frees everything, calling no callback. Accepts NULL. */
void h2conn_free(struct h2conn *c);

/* Feeds bytes from the transport; any split is fine. Returns MOM_OK, or
 * MOM_ERR_PROTOCOL after a connection error (GOAWAY with the error code was
 * sent; *h2_error tells which, may be NULL), MOM_ERR_CLOSED when the
 * connection is already dead, MOM_ERR_NOMEM / MOM_ERR_IO. */
int h2conn_recv(struct h2conn *c, const uint8_t *data, size_t len, uint32_t *h2_error);

/* Client: opens a stream with a request header block. Returns MOM_OK with
 * *stream_id set, MOM_ERR_UNAVAILABLE when the peer's stream limit is
 * reached (try again after a stream closes), MOM_ERR_CLOSED after GOAWAY or
 * when stream ids ran out or the connection is dead, MOM_ERR_NOMEM, MOM_ERR_IO. */
int h2conn_submit_request(struct h2conn *c, const struct h2conn_header *hdrs, size_t n,
                          bool end_stream, void *stream_user, uint32_t *stream_id);
/* A header block on an open stream: the response head (server), or
 * trailers (end_stream). Trailers wait behind unsent DATA. Returns MOM_OK,
 * MOM_ERR_NOTFOUND (no such open stream), MOM_ERR_INVALID (the sending
 * side is closed, or non-final headers behind pending data), MOM_ERR_CLOSED,
 * MOM_ERR_NOMEM, MOM_ERR_IO. */
int h2conn_submit_headers(struct h2conn *c, uint32_t stream_id, const struct h2conn_header *hdrs,
                          size_t n, bool end_stream);
/* DATA: sent as far as the peer's windows allow, the rest is copied and
 * sent later. Same returns as h2conn_submit_headers. */
int h2conn_submit_data(struct h2conn *c, uint32_t stream_id, const uint8_t *data, size_t len,
                       bool end_stream);
/* Sends RST_STREAM and closes the stream (on_stream_close fires with the
 * code). Returns MOM_OK or MOM_ERR_NOTFOUND. */
int h2conn_reset_stream(struct h2conn *c, uint32_t stream_id, uint32_t h2_error);
/* Sends PING with 8 bytes of opaque data. */
int h2conn_ping(struct h2conn *c, const uint8_t data[8]);
/* Sends GOAWAY with the last peer-initiated stream id processed; with
 * H2_NO_ERROR streams already open finish normally, new ones are ignored.
 * Any other code makes the connection dead. */
int h2conn_goaway(struct h2conn *c, uint32_t h2_error, const char *debug);

void h2conn_stream_set_user(struct h2conn *c, uint32_t stream_id, void *user);
void *h2conn_stream_user(const struct h2conn *c, uint32_t stream_id);

/* State. */
bool h2conn_is_dead(const struct h2conn *c); /* connection error or fatal GOAWAY */
bool h2conn_goaway_received(const struct h2conn *c);
bool h2conn_goaway_sent(const struct h2conn *c);
bool h2conn_remote_settings_seen(const struct h2conn *c);
/* The peer has acknowledged our SETTINGS (RFC 9113 section 6.5.3). */
bool h2conn_local_settings_acked(const struct h2conn *c);
size_t h2conn_open_streams(const struct h2conn *c);
/* True when a new local stream may be opened now. */
bool h2conn_can_open(const struct h2conn *c);
/* True when no new local stream can ever be opened here (dead, GOAWAY
 * sent or received, stream ids used up): time for a new connection. */
bool h2conn_exhausted(const struct h2conn *c);
/* Bytes of DATA waiting for send window in all streams. */
size_t h2conn_pending_bytes(const struct h2conn *c);
/* Checks internal consistency (window bounds, table, lists); for tests. */
bool h2conn_check_invariants(const struct h2conn *c);

/* Flow-control window arithmetic (RFC 9113 §6.9), exposed for tests.
 * Windows are signed: a SETTINGS change may make one negative. */
/* Adds a WINDOW_UPDATE increment; MOM_ERR_PROTOCOL (FLOW_CONTROL_ERROR) if
 * the result exceeds 2^31-1 (the window is then unchanged). */
int h2conn_window_update(int64_t *window, uint32_t increment);
/* Applies a change of SETTINGS_INITIAL_WINDOW_SIZE to a stream window. */
int h2conn_window_rebase(int64_t *window, uint32_t old_initial, uint32_t new_initial);
/* Takes n bytes from a receive window; MOM_ERR_PROTOCOL if it would go below 0. */
int h2conn_window_consume(int64_t *window, size_t n);
/* How much DATA may go out now: min(conn, stream, max_frame), at least 0. */
size_t h2conn_window_sendable(int64_t conn_window, int64_t stream_window, size_t max_frame,
                              size_t want);

#endif
