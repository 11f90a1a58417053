/* HTTP/2 frame codec (RFC 9113 §4 and §6): pure functions over byte buffers.
 * h2frame_decode checks everything a frame says about itself (sizes, stream
 * 0 rules, padding, SETTINGS values) and reports the HTTP/2 error code of a
 * violation; rules that need connection state live in h2conn. Decoded
 * payload pointers point into the caller's buffer. Packers write one whole
 * frame into a caller buffer and return its size. No allocation, no I/O.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_REPLICATION_H2FRAME_H
#define MOM_REPLICATION_H2FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2FRAME_HDLEN 9u
#define H2FRAME_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2FRAME_PREFACE_LEN 24u
#define H2FRAME_MIN_MAX_FRAME_SIZE 16384u    /* default and floor of SETTINGS_MAX_FRAME_SIZE */
#define H2FRAME_MAX_MAX_FRAME_SIZE 16777215u /* 2^24-1 */
#define H2FRAME_MAX_WINDOW 2147483647u       /* 2^31-1 */
#define H2FRAME_DEFAULT_WINDOW 65535u
#define H2FRAME_MAX_STREAM_ID 2147483647u
#define H2FRAME_SETTING_LEN 6u
#define H2FRAME_PING_LEN 8u

enum h2frame_type {
    H2FRAME_DATA = 0x0,
    H2FRAME_HEADERS = 0x1,
    H2FRAME_PRIORITY = 0x2,
    H2FRAME_RST_STREAM = 0x3,
    H2FRAME_SETTINGS = 0x4,
    H2FRAME_PUSH_PROMISE = 0x5,
    H2FRAME_PING = 0x6,
    H2FRAME_GOAWAY = 0x7,
    H2FRAME_WINDOW_UPDATE = 0x8,
    H2FRAME_CONTINUATION = 0x9,
};

enum h2frame_flag {
    H2FRAME_FLAG_END_STREAM = 0x01, /* DATA, HEADERS */
    H2FRAME_FLAG_ACK = 0x01,        /* SETTINGS, PING */
    H2FRAME_FLAG_END_HEADERS = 0x04,
    H2FRAME_FLAG_PADDED = 0x08,
    H2FRAME_FLAG_PRIORITY = 0x20,
};

/* RFC 9113 §7 error codes (RST_STREAM and GOAWAY). */
enum h2frame_error {
    H2_NO_ERROR = 0x0,
    H2_PROTOCOL_ERROR = 0x1,
    H2_INTERNAL_ERROR = 0x2,
    H2_FLOW_CONTROL_ERROR = 0x3,
    H2_SETTINGS_TIMEOUT = 0x4,
    H2_STREAM_CLOSED = 0x5,
    H2_FRAME_SIZE_ERROR = 0x6,
    H2_REFUSED_STREAM = 0x7,
    H2_CANCEL = 0x8,
    H2_COMPRESSION_ERROR = 0x9,
    H2_CONNECT_ERROR = 0xa,
    H2_ENHANCE_YOUR_CALM = 0xb,
    H2_INADEQUATE_SECURITY = 0xc,
    H2_HTTP_1_1_REQUIRED = 0xd,
};

enum h2frame_setting_id {
    H2_SETTINGS_HEADER_TABLE_SIZE = 0x1,
    H2_SETTINGS_ENABLE_PUSH = 0x2,
    H2_SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
    H2_SETTINGS_INITIAL_WINDOW_SIZE = 0x4,
    H2_SETTINGS_MAX_FRAME_SIZE = 0x5,
    H2_SETTINGS_MAX_HEADER_LIST_SIZE = 0x6,
    H2_SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8,
};

struct h2frame_hd {
    uint32_t length; /* payload length, 24 bits */
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id; /* reserved bit cleared */
};

struct h2frame_setting {
    uint16_t id;
    uint32_t value;
};

/* A decoded frame. Pointers point into the decoded buffer. */
struct h2frame {
    struct h2frame_hd hd;
    /* DATA, HEADERS, CONTINUATION, PUSH_PROMISE: the payload without
     * padding and priority fields (for PUSH_PROMISE it follows the promised
     * stream id). SETTINGS: the raw entries (use h2frame_setting_at).
     * GOAWAY: the debug data. Unknown types: the whole payload. */
    const uint8_t *data;
    size_t data_len;
    uint32_t
        pad_len; /* padding bytes incl. the Pad Length octet (DATA flow control counts hd.length) */
    uint32_t error_code;         /* RST_STREAM, GOAWAY */
    uint32_t last_stream_id;     /* GOAWAY */
    uint32_t window_increment;   /* WINDOW_UPDATE (0 is reported, h2conn decides) */
    uint32_t promised_stream_id; /* PUSH_PROMISE */
    uint32_t dependency;         /* HEADERS with PRIORITY, PRIORITY */
    uint8_t weight;
    bool exclusive;
    uint8_t ping[H2FRAME_PING_LEN];
    size_t n_settings; /* SETTINGS */
};

/* Reads a 9-byte frame header. Returns H2FRAME_HDLEN or MOM_ERR_NEED_MORE. */
int h2frame_decode_hd(const uint8_t *buf, size_t len, struct h2frame_hd *out);

/* Decodes one whole frame whose payload may be at most max_frame_size.
 * Returns the bytes consumed (9 + length), MOM_ERR_NEED_MORE when the frame
 * is incomplete (a header announcing more than max_frame_size fails at once,
 * before its payload arrives), or MOM_ERR_PROTOCOL with *h2_error set to
 * H2_FRAME_SIZE_ERROR, H2_PROTOCOL_ERROR or H2_FLOW_CONTROL_ERROR: a
 * connection error. Unknown frame types decode without checks. */
int h2frame_decode(const uint8_t *buf, size_t len, uint32_t max_frame_size, struct h2frame *out,
                   uint32_t *h2_error);

/* The i-th entry of a decoded SETTINGS frame (i < n_settings). */
struct h2frame_setting h2frame_setting_at(const struct h2frame *f, size_t i);

/* Checks one SETTINGS value (RFC 9113 §6.5.2). Returns 0 or the h2 error code. */
uint32_t h2frame_check_setting(uint16_t id, uint32_t value);

/* ---- packers: out must hold the returned size; sizes are given by the *_LEN helpers ---- */

void h2frame_pack_hd(uint8_t out[H2FRAME_HDLEN], const struct h2frame_hd *hd);
/* SETTINGS with n entries (0 and ack for an ACK): 9 + 6n bytes. */
size_t h2frame_pack_settings(uint8_t *out, const struct h2frame_setting *s, size_t n, bool ack);
/* PING: 17 bytes. */
size_t h2frame_pack_ping(uint8_t *out, const uint8_t data[H2FRAME_PING_LEN], bool ack);
/* WINDOW_UPDATE: 13 bytes. increment must be 1..2^31-1. */
size_t h2frame_pack_window_update(uint8_t *out, uint32_t stream_id, uint32_t increment);
/* RST_STREAM: 13 bytes. */
size_t h2frame_pack_rst_stream(uint8_t *out, uint32_t stream_id, uint32_t error_code);
/* GOAWAY: 17 + debug_len bytes. */
size_t h2frame_pack_goaway(uint8_t *out, uint32_t last_stream_id, uint32_t error_code,
                           const void *debug, size_t debug_len);
/* PRIORITY: 14 bytes. */
size_t h2frame_pack_priority(uint8_t *out, uint32_t stream_id, uint32_t dependency, uint8_t weight,
                             bool exclusive);
/* DATA, HEADERS (no priority) or CONTINUATION carrying len bytes; pad_len > 0
 * adds the PADDED flag, a Pad Length octet and pad_len-1 zero bytes (so the
 * frame payload is len + pad_len, pad_len <= 256). Returns 9 + len + pad_len.
 * type must be DATA, HEADERS or CONTINUATION (no padding on CONTINUATION). */
size_t h2frame_pack_payload(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id,
                            const void *data, size_t len, uint32_t pad_len);

/* Name of a frame type and of an error code, for logs. */
const char *h2frame_type_name(uint8_t type);
const char *h2frame_error_name(uint32_t code);

#endif
