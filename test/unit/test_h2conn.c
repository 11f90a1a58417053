/* Unit tests for replication/h2conn: a client and a server connection wired
 * back to back in memory (bytes moved by a pump, optionally in tiny pieces),
 * plus hand-made byte streams for every connection and stream error. Checks
 * request/response/trailers, CONTINUATION, flow control at both levels with
 * small and large windows (a 4 MiB body never stalls), SETTINGS changes,
 * PING, GOAWAY, stream limits and the window arithmetic.
 * SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include <cmocka.h>

#include "common/err.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

struct side {
    struct h2conn *c;
    struct buf out;
    struct buf body;
    int headers, closes, settings, goaways, ping_acks;
    int sensitive;           /* sensitive headers received */
    size_t sensitive_len;    /* the last one's value length */
    char sensitive_val[512]; /* and its value (NUL-terminated) */
    uint32_t close_sid, close_code, goaway_last, goaway_code;
    bool data_end, headers_end;
    char last_block[4096];
    char path[128];
    /* server behaviour: answer when the request is complete */
    bool respond;
    size_t respond_size;
    bool early_answer; /* answer on the request headers already */
};

static int cb_send(void *arg, const uint8_t *d, size_t n)
{
    struct side *s = arg;
    buf_add(&s->out, d, n);
    return 0;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 7 + 3);
}

static void answer(struct side *s, uint32_t sid)
{
    const struct h2conn_header head[] = {{":status", 7, "200", 3, false},
                                         {"content-type", 12, "application/grpc", 16, false}};
    const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false},
                                          {"grpc-message", 12, "fine", 4, false}};
    assert_int_equal(h2conn_submit_headers(s->c, sid, head, 2, false), MOM_OK);
    if (s->respond_size) {
        uint8_t *body = malloc(s->respond_size);
        for (size_t i = 0; i < s->respond_size; i++)
            body[i] = pattern(i);
        assert_int_equal(h2conn_submit_data(s->c, sid, body, s->respond_size, false), MOM_OK);
        free(body);
    }
    assert_int_equal(h2conn_submit_headers(s->c, sid, trail, 2, true), MOM_OK);
}

static void cb_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h, size_t n,
                       bool end)
{
    struct side *s = arg;
    (void)user;
    s->headers++;
    s->headers_end = end;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o < sizeof s->last_block) /* a long header fills it: the rest is cut */
            o += (size_t)snprintf(s->last_block + o, sizeof s->last_block - o, "%.*s: %.*s\n",
                                  (int)h[i].name_len, h[i].name, (int)h[i].value_len, h[i].value);
        if (h[i].name_len == 5 && memcmp(h[i].name, ":path", 5) == 0)
            snprintf(s->path, sizeof s->path, "%.*s", (int)h[i].value_len, h[i].value);
        if (h[i].sensitive) {
            s->sensitive++;
            s->sensitive_len = h[i].value_len;
            snprintf(s->sensitive_val, sizeof s->sensitive_val, "%.*s", (int)h[i].value_len,
                     h[i].value);
        }
    }
    if (s->respond && (end || s->early_answer))
        answer(s, sid);
}

static void cb_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end)
{
    struct side *s = arg;
    (void)user;
    buf_add(&s->body, d, n);
    s->data_end = end;
    if (end && s->respond && !s->early_answer)
        answer(s, sid);
}

static void cb_close(void *arg, uint32_t sid, void *user, uint32_t code)
{
    struct side *s = arg;
    (void)user;
    s->closes++;
    s->close_sid = sid;
    s->close_code = code;
}

static void cb_goaway(void *arg, uint32_t last, uint32_t code)
{
    struct side *s = arg;
    s->goaways++;
    s->goaway_last = last;
    s->goaway_code = code;
}

static void cb_settings(void *arg)
{
    ((struct side *)arg)->settings++;
}
static void cb_ping_ack(void *arg, const uint8_t d[8])
{
    (void)d;
    ((struct side *)arg)->ping_acks++;
}

static const struct h2conn_callbacks cbs = {cb_send,   cb_headers,  cb_data,    cb_close,
                                            cb_goaway, cb_settings, cb_ping_ack};

static void side_new(struct side *s, enum h2conn_role role, const struct h2conn_settings *set)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(h2conn_new(role, set, &cbs, s, &s->c), MOM_OK);
}

static void side_free(struct side *s)
{
    h2conn_free(s->c);
    free(s->out.p);
    free(s->body.p);
}

/* Delivers a's pending output to b in pieces of at most chunk bytes. */
static int deliver(struct side *a, struct side *b, size_t chunk)
{
    if (a->out.len == 0)
        return 0;
    struct buf in = a->out;
    memset(&a->out, 0, sizeof a->out);
    int rc = MOM_OK;
    for (size_t off = 0; off < in.len && rc == MOM_OK; off += chunk) {
        size_t n = in.len - off < chunk ? in.len - off : chunk;
        rc = h2conn_recv(b->c, in.p + off, n, NULL);
    }
    free(in.p);
    return rc == MOM_OK ? 1 : rc;
}

static void pump_chunked(struct side *cl, struct side *sv, size_t chunk)
{
    for (int guard = 0; guard < 100000; guard++) {
        int a = deliver(cl, sv, chunk);
        int b = deliver(sv, cl, chunk);
        assert_true(a >= 0);
        assert_true(b >= 0);
        if (a == 0 && b == 0)
            return;
    }
    fail_msg("pump did not settle");
}

static void pump(struct side *cl, struct side *sv)
{
    pump_chunked(cl, sv, SIZE_MAX);
}

static const struct h2conn_header req_hdrs[] = {
    {":method", 7, "POST", 4, false},
    {":scheme", 7, "http", 4, false},
    {":path", 5, "/mom.v1.Peer/Ping", 17, false},
    {":authority", 10, "localhost", 9, false},
    {"content-type", 12, "application/grpc", 16, false},
    {"te", 2, "trailers", 8, false},
    {"authorization", 13, "Bearer secret.token.value", 25, true},
};
#define NREQ (sizeof req_hdrs / sizeof req_hdrs[0])

static void test_handshake(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    assert_memory_equal(cl.out.p, H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    pump(&cl, &sv);
    assert_int_equal(cl.settings, 1);
    assert_int_equal(sv.settings, 1);
    assert_true(h2conn_remote_settings_seen(cl.c));
    assert_true(h2conn_remote_settings_seen(sv.c));
    assert_true(h2conn_can_open(cl.c));
    assert_true(h2conn_check_invariants(cl.c));
    assert_true(h2conn_check_invariants(sv.c));
    side_free(&cl);
    side_free(&sv);
}

static void run_call(size_t req_size, size_t resp_size, size_t chunk,
                     const struct h2conn_settings *cl_set, const struct h2conn_settings *sv_set)
{
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, cl_set);
    side_new(&sv, H2CONN_SERVER, sv_set);
    sv.respond = true;
    sv.respond_size = resp_size;
    pump_chunked(&cl, &sv, chunk);
    uint32_t sid = 0;
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, false, NULL, &sid), MOM_OK);
    assert_int_equal(sid, 1);
    uint8_t *req = malloc(req_size + 1);
    for (size_t i = 0; i < req_size; i++)
        req[i] = pattern(i);
    assert_int_equal(h2conn_submit_data(cl.c, sid, req, req_size, true), MOM_OK);
    free(req);
    assert_true(h2conn_check_invariants(cl.c));
    pump_chunked(&cl, &sv, chunk);
    /* server saw the request */
    assert_string_equal(sv.path, "/mom.v1.Peer/Ping");
    assert_non_null(strstr(sv.last_block, "authorization: Bearer secret.token.value\n"));
    assert_int_equal(sv.body.len, req_size);
    for (size_t i = 0; i < req_size; i++)
        if (sv.body.p[i] != pattern(i))
            fail_msg("request byte %zu differs", i);
    assert_true(sv.data_end);
    assert_int_equal(sv.closes, 1);
    assert_int_equal(sv.close_code, H2_NO_ERROR);
    /* client saw head, body and trailers */
    assert_int_equal(cl.headers, 2);
    assert_true(cl.headers_end);
    assert_non_null(strstr(cl.last_block, "grpc-status: 0\n"));
    assert_int_equal(cl.body.len, resp_size);
    for (size_t i = 0; i < resp_size; i++)
        if (cl.body.p[i] != pattern(i))
            fail_msg("response byte %zu differs", i);
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.close_sid, 1);
    assert_int_equal(cl.close_code, H2_NO_ERROR);
    assert_int_equal(h2conn_open_streams(cl.c), 0);
    assert_int_equal(h2conn_open_streams(sv.c), 0);
    assert_int_equal(h2conn_pending_bytes(sv.c), 0);
    assert_true(h2conn_check_invariants(cl.c));
    assert_true(h2conn_check_invariants(sv.c));
    side_free(&cl);
    side_free(&sv);
}

static void test_unary_small(void **state)
{
    (void)state;
    run_call(10, 20, SIZE_MAX, NULL, NULL);
    run_call(0, 0, SIZE_MAX, NULL, NULL);
}

static void test_unary_byte_by_byte(void **state)
{
    (void)state;
    run_call(300, 500, 1, NULL, NULL);
    run_call(40000, 70000, 7, NULL, NULL);
}

/* 4 MiB each way with default (large) windows: one pump round trip. */
static void test_large_default_windows(void **state)
{
    (void)state;
    run_call(4u << 20, 4u << 20, SIZE_MAX, NULL, NULL);
}

/* 4 MiB each way through RFC-default 64 KiB windows: WINDOW_UPDATEs keep it going. */
static void test_large_small_windows(void **state)
{
    (void)state;
    struct h2conn_settings small = {
        .initial_window = 65535, .conn_window = 65535, .max_frame_size = 16384};
    run_call(4u << 20, 4u << 20, SIZE_MAX, &small, &small);
    run_call(100000, 100000, 1000, &small, &small);
}

/* Builds the bytes of a client that speaks by hand: preface + SETTINGS. */
static void raw_client_start(struct buf *b, const struct h2frame_setting *set, size_t n)
{
    buf_add(b, H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    uint8_t f[9 + 6 * 8];
    buf_add(b, f, h2frame_pack_settings(f, set, n, false));
}

static void raw_headers(struct buf *b, nghttp2_hd_deflater *d, uint32_t sid,
                        const struct h2conn_header *h, size_t n, uint8_t flags)
{
    nghttp2_nv nv[16];
    for (size_t i = 0; i < n; i++) {
        nv[i].name = (uint8_t *)(uintptr_t)h[i].name;
        nv[i].namelen = h[i].name_len;
        nv[i].value = (uint8_t *)(uintptr_t)h[i].value;
        nv[i].valuelen = h[i].value_len;
        nv[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    uint8_t block[4096];
    ssize_t len = nghttp2_hd_deflate_hd(d, block, sizeof block, nv, n);
    assert_true(len >= 0);
    uint8_t f[4096 + 9];
    buf_add(b, f,
            h2frame_pack_payload(f, H2FRAME_HEADERS, flags | H2FRAME_FLAG_END_HEADERS, sid, block,
                                 (size_t)len, 0));
}

struct frame_summary {
    int n;
    int goaways, rsts, window_updates, data;
    uint32_t goaway_code, goaway_last, rst_code, rst_sid;
    size_t data_bytes;
};

static struct frame_summary summarize(const struct buf *b, size_t from)
{
    struct frame_summary s = {0};
    size_t off = from;
    while (off < b->len) {
        struct h2frame f;
        uint32_t err;
        int used = h2frame_decode(b->p + off, b->len - off, H2FRAME_MAX_MAX_FRAME_SIZE, &f, &err);
        assert_true(used > 0);
        s.n++;
        if (f.hd.type == H2FRAME_GOAWAY) {
            s.goaways++;
            s.goaway_code = f.error_code;
            s.goaway_last = f.last_stream_id;
        } else if (f.hd.type == H2FRAME_RST_STREAM) {
            s.rsts++;
            s.rst_code = f.error_code;
            s.rst_sid = f.hd.stream_id;
        } else if (f.hd.type == H2FRAME_WINDOW_UPDATE) {
            s.window_updates++;
        } else if (f.hd.type == H2FRAME_DATA) {
            s.data++;
            s.data_bytes += f.data_len;
        }
        off += (size_t)used;
    }
    return s;
}

/* Feeds in to a fresh server; returns what the server wrote (after its own preface). */
static uint32_t server_conn_error(const uint8_t *in, size_t len)
{
    struct side sv;
    side_new(&sv, H2CONN_SERVER, NULL);
    size_t start = sv.out.len;
    uint32_t code = 0;
    int rc = h2conn_recv(sv.c, in, len, &code);
    assert_int_equal(rc, MOM_ERR_PROTOCOL);
    assert_true(h2conn_is_dead(sv.c));
    struct frame_summary fs = summarize(&sv.out, start);
    assert_int_equal(fs.goaways, 1);
    assert_int_equal(fs.goaway_code, code);
    /* a dead connection takes nothing more */
    assert_int_equal(h2conn_recv(sv.c, in, len, NULL), MOM_ERR_CLOSED);
    assert_int_equal(h2conn_submit_headers(sv.c, 1, req_hdrs, 1, true), MOM_ERR_CLOSED);
    side_free(&sv);
    return code;
}

static uint32_t raw_error_after_start(const uint8_t *frame, size_t n)
{
    struct buf b = {0};
    raw_client_start(&b, NULL, 0);
    buf_add(&b, frame, n);
    uint32_t code = server_conn_error(b.p, b.len);
    free(b.p);
    return code;
}

static size_t rawf(uint8_t *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid,
                   const void *payload)
{
    struct h2frame_hd hd = {.length = len, .type = type, .flags = flags, .stream_id = sid};
    h2frame_pack_hd(out, &hd);
    if (len)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

static void test_connection_errors(void **state)
{
    (void)state;
    uint8_t f[128];
    uint8_t z[64] = {0};
    /* not HTTP/2 at all */
    const char *http1 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(server_conn_error((const uint8_t *)http1, strlen(http1)), H2_PROTOCOL_ERROR);
    /* a right preface, then a first frame that is not SETTINGS */
    struct buf b = {0};
    buf_add(&b, H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    buf_add(&b, f, h2frame_pack_ping(f, z, false));
    assert_int_equal(server_conn_error(b.p, b.len), H2_PROTOCOL_ERROR);
    free(b.p);
    /* malformed SETTINGS as the first frame */
    memset(&b, 0, sizeof b);
    buf_add(&b, H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    buf_add(&b, f, rawf(f, 5, H2FRAME_SETTINGS, 0, 0, z));
    assert_int_equal(server_conn_error(b.p, b.len), H2_FRAME_SIZE_ERROR);
    free(b.p);
    /* malformed SETTINGS later */
    assert_int_equal(raw_error_after_start(f, rawf(f, 7, H2FRAME_SETTINGS, 0, 0, z)),
                     H2_FRAME_SIZE_ERROR);
    uint8_t badwin[] = {0, 4, 0x80, 0, 0, 0};
    assert_int_equal(raw_error_after_start(f, rawf(f, 6, H2FRAME_SETTINGS, 0, 0, badwin)),
                     H2_FLOW_CONTROL_ERROR);
    /* a frame above our SETTINGS_MAX_FRAME_SIZE: refused from its header */
    struct h2frame_hd big = {
        .length = H2CONN_DEFAULT_MAX_FRAME + 1, .type = H2FRAME_DATA, .stream_id = 1};
    h2frame_pack_hd(f, &big);
    assert_int_equal(raw_error_after_start(f, 9), H2_FRAME_SIZE_ERROR);
    /* DATA / WINDOW_UPDATE / RST_STREAM on idle streams */
    assert_int_equal(raw_error_after_start(f, rawf(f, 1, H2FRAME_DATA, 0, 1, z)),
                     H2_PROTOCOL_ERROR);
    uint8_t one[] = {0, 0, 0, 1};
    assert_int_equal(raw_error_after_start(f, rawf(f, 4, H2FRAME_WINDOW_UPDATE, 0, 3, one)),
                     H2_PROTOCOL_ERROR);
    assert_int_equal(raw_error_after_start(f, rawf(f, 4, H2FRAME_RST_STREAM, 0, 5, z)),
                     H2_PROTOCOL_ERROR);
    /* CONTINUATION with no HEADERS before it */
    assert_int_equal(raw_error_after_start(f, rawf(f, 1, H2FRAME_CONTINUATION, 4, 1, z)),
                     H2_PROTOCOL_ERROR);
    /* HEADERS without END_HEADERS followed by something else */
    size_t n = rawf(f, 1, H2FRAME_HEADERS, 0, 1, "\x82");
    n += h2frame_pack_ping(f + n, z, false);
    assert_int_equal(raw_error_after_start(f, n), H2_PROTOCOL_ERROR);
    /* PUSH_PROMISE is never enabled */
    assert_int_equal(raw_error_after_start(f, rawf(f, 5, H2FRAME_PUSH_PROMISE, 4, 1, z)),
                     H2_PROTOCOL_ERROR);
    /* HPACK garbage: index 0 is invalid */
    assert_int_equal(raw_error_after_start(f, rawf(f, 1, H2FRAME_HEADERS, 4, 1, "\x80")),
                     H2_COMPRESSION_ERROR);
    /* HEADERS on a server-initiated (even) stream id */
    assert_int_equal(raw_error_after_start(f, rawf(f, 1, H2FRAME_HEADERS, 4, 2, "\x82")),
                     H2_PROTOCOL_ERROR);
    /* connection window overflow */
    uint8_t maxinc[] = {0x7f, 0xff, 0xff, 0xff};
    assert_int_equal(raw_error_after_start(f, rawf(f, 4, H2FRAME_WINDOW_UPDATE, 0, 0, maxinc)),
                     H2_FLOW_CONTROL_ERROR);
    /* zero increment on the connection */
    assert_int_equal(raw_error_after_start(f, rawf(f, 4, H2FRAME_WINDOW_UPDATE, 0, 0, z)),
                     H2_PROTOCOL_ERROR);
    /* PING on a stream */
    assert_int_equal(raw_error_after_start(f, rawf(f, 8, H2FRAME_PING, 0, 1, z)),
                     H2_PROTOCOL_ERROR);
}

/* Sending more DATA than the connection window allows is a connection
 * error. The window is replenished as data is taken, so the only way past
 * it is one frame larger than the whole window. */
static void test_recv_flow_control_violation(void **state)
{
    (void)state;
    struct h2conn_settings small = {
        .initial_window = 1u << 20, .conn_window = 65535, .max_frame_size = 100000};
    struct side sv;
    side_new(&sv, H2CONN_SERVER, &small);
    nghttp2_hd_deflater *d;
    nghttp2_hd_deflate_new(&d, 4096);
    struct buf b = {0};
    raw_client_start(&b, NULL, 0);
    raw_headers(&b, d, 1, req_hdrs, NREQ, 0);
    static uint8_t chunk[65536];
    static uint8_t f[65536 + 9];
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, 0, 1, chunk, 65535, 0));
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK); /* exactly the window */
    b.len = 0;
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, 0, 1, chunk, 65536, 0));
    uint32_t code;
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, &code), MOM_ERR_PROTOCOL);
    assert_int_equal(code, H2_FLOW_CONTROL_ERROR);

    /* the same for one stream's window: a stream error */
    struct h2conn_settings swin = {
        .initial_window = 65535, .conn_window = 1u << 20, .max_frame_size = 100000};
    struct side s2;
    side_new(&s2, H2CONN_SERVER, &swin);
    nghttp2_hd_deflater *d2;
    nghttp2_hd_deflate_new(&d2, 4096);
    b.len = 0;
    raw_client_start(&b, NULL, 0);
    raw_headers(&b, d2, 1, req_hdrs, NREQ, 0);
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, 0, 1, chunk, 65536, 0));
    size_t mark = s2.out.len;
    assert_int_equal(h2conn_recv(s2.c, b.p, b.len, NULL), MOM_OK);
    struct frame_summary fs = summarize(&s2.out, mark);
    assert_int_equal(fs.rsts, 1);
    assert_int_equal(fs.rst_code, H2_FLOW_CONTROL_ERROR);
    assert_int_equal(s2.closes, 1);
    assert_true(h2conn_check_invariants(s2.c));
    nghttp2_hd_deflate_del(d2);
    side_free(&s2);

    nghttp2_hd_deflate_del(d);
    free(b.p);
    side_free(&sv);
}

/* Stream errors reset one stream and keep the connection. */
static void test_stream_errors(void **state)
{
    (void)state;
    struct h2conn_settings lim = {.max_concurrent_streams = 2};
    struct side sv;
    side_new(&sv, H2CONN_SERVER, &lim);
    nghttp2_hd_deflater *d;
    nghttp2_hd_deflate_new(&d, 4096);
    struct buf b = {0};
    raw_client_start(&b, NULL, 0);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    size_t mark = sv.out.len;

    /* malformed request: upper-case header name */
    const struct h2conn_header upper[] = {{":method", 7, "POST", 4, false},
                                          {":scheme", 7, "http", 4, false},
                                          {":path", 5, "/x", 2, false},
                                          {"Content-Type", 12, "x", 1, false}};
    b.len = 0;
    raw_headers(&b, d, 1, upper, 4, H2FRAME_FLAG_END_STREAM);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    struct frame_summary fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rsts, 1);
    assert_int_equal(fs.rst_sid, 1);
    assert_int_equal(fs.rst_code, H2_PROTOCOL_ERROR);
    assert_int_equal(sv.headers, 0);

    /* missing :path */
    mark = sv.out.len;
    b.len = 0;
    raw_headers(&b, d, 3, req_hdrs, 2, H2FRAME_FLAG_END_STREAM);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rsts, 1);
    assert_int_equal(fs.rst_code, H2_PROTOCOL_ERROR);

    /* an empty header block (found by fuzzing): malformed, stream reset */
    mark = sv.out.len;
    b.len = 0;
    buf_add(&b, (const uint8_t[]){0, 0, 0, H2FRAME_HEADERS, 5, 0, 0, 0, 13}, 9);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rsts, 1);
    assert_int_equal(fs.rst_sid, 13);
    assert_int_equal(fs.rst_code, H2_PROTOCOL_ERROR);

    /* pseudo-header after a regular one */
    const struct h2conn_header late[] = {{":method", 7, "POST", 4, false},
                                         {"x", 1, "y", 1, false},
                                         {":scheme", 7, "http", 4, false},
                                         {":path", 5, "/x", 2, false}};
    mark = sv.out.len;
    b.len = 0;
    raw_headers(&b, d, 15, late, 4, H2FRAME_FLAG_END_STREAM);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rst_code, H2_PROTOCOL_ERROR);

    /* two good open streams, the third is refused (limit 2) */
    mark = sv.out.len;
    b.len = 0;
    raw_headers(&b, d, 17, req_hdrs, NREQ, 0);
    raw_headers(&b, d, 19, req_hdrs, NREQ, 0);
    raw_headers(&b, d, 21, req_hdrs, NREQ, 0);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rsts, 1);
    assert_int_equal(fs.rst_sid, 21);
    assert_int_equal(fs.rst_code, H2_REFUSED_STREAM);
    assert_int_equal(sv.headers, 2);
    assert_int_equal(h2conn_open_streams(sv.c), 2);

    /* WINDOW_UPDATE with 0 increment on stream 17: stream error */
    mark = sv.out.len;
    uint8_t f[64];
    uint8_t z[4] = {0};
    b.len = 0;
    buf_add(&b, f, rawf(f, 4, H2FRAME_WINDOW_UPDATE, 0, 17, z));
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rst_sid, 17);
    assert_int_equal(fs.rst_code, H2_PROTOCOL_ERROR);
    assert_int_equal(sv.closes, 1);
    assert_int_equal(sv.close_code, H2_PROTOCOL_ERROR);

    /* DATA after END_STREAM on stream 19: STREAM_CLOSED */
    b.len = 0;
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, H2FRAME_FLAG_END_STREAM, 19, "a", 1, 0));
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, 0, 19, "b", 1, 0));
    mark = sv.out.len;
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rst_sid, 19);
    assert_int_equal(fs.rst_code, H2_STREAM_CLOSED);

    /* frames on a closed stream are ignored; the connection still works */
    b.len = 0;
    buf_add(&b, f, h2frame_pack_payload(f, H2FRAME_DATA, 0, 17, "zz", 2, 0));
    buf_add(&b, f, h2frame_pack_rst_stream(f, 17, H2_CANCEL));
    const uint8_t opaque[8] = "pingpong";
    buf_add(&b, f, h2frame_pack_ping(f, opaque, false));
    mark = sv.out.len;
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    assert_false(h2conn_is_dead(sv.c));
    assert_int_equal(sv.out.len - mark, 17); /* just the PING ACK */
    struct h2frame pf;
    uint32_t err;
    assert_int_equal(h2frame_decode(sv.out.p + mark, 17, 16384, &pf, &err), 17);
    assert_int_equal(pf.hd.type, H2FRAME_PING);
    assert_int_equal(pf.hd.flags, H2FRAME_FLAG_ACK);
    assert_memory_equal(pf.ping, "pingpong", 8);
    assert_true(h2conn_check_invariants(sv.c));

    nghttp2_hd_deflate_del(d);
    free(b.p);
    side_free(&sv);
}

/* Header blocks larger than a frame travel as HEADERS + CONTINUATION. */
static void test_continuation(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    /* before the server's SETTINGS arrive the client uses 16 KiB frames */
    char *big = malloc(40000);
    memset(big, 'v', 40000);
    struct h2conn_header h[NREQ + 1];
    memcpy(h, req_hdrs, sizeof req_hdrs);
    h[NREQ] = (struct h2conn_header){"x-big", 5, big, 40000, false};
    uint32_t sid;
    assert_int_equal(h2conn_submit_request(cl.c, h, NREQ + 1, true, NULL, &sid), MOM_OK);
    size_t nframes = 0, conts = 0, off = 0;
    while (off < cl.out.len) {
        size_t o2 = off == 0 ? H2FRAME_PREFACE_LEN : off;
        struct h2frame f;
        uint32_t err;
        int used = h2frame_decode(cl.out.p + o2, cl.out.len - o2, 16384, &f, &err);
        assert_true(used > 0);
        nframes++;
        if (f.hd.type == H2FRAME_CONTINUATION)
            conts++;
        off = o2 + (size_t)used;
    }
    assert_true(conts >= 1);
    pump_chunked(&cl, &sv, 1000);
    assert_int_equal(sv.headers, 1);
    assert_true(sv.headers_end);
    assert_non_null(strstr(sv.last_block, "x-big: vvvv"));
    free(big);
    side_free(&cl);
    side_free(&sv);
}

/* A sensitive header (the peer token) is written as a literal never
 * indexed with its bytes in clear (no Huffman coding), after the others;
 * the peer decodes it as never indexed, and the dynamic table stays in step
 * across calls, also when a table size update leads the block. */
static void test_sensitive_never_indexed(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    pump(&cl, &sv);
    char token[301];
    for (size_t i = 0; i < 300; i++)
        token[i] = (char)('A' + i % 26);
    token[300] = '\0';
    struct h2conn_header h[NREQ];
    memcpy(h, req_hdrs, sizeof req_hdrs);
    h[NREQ - 1].value = token;
    h[NREQ - 1].value_len = 300;
    for (int call = 0; call < 4; call++) {
        if (call == 2) { /* the server shrinks its table: the next block starts with an update */
            uint8_t f[64];
            struct h2frame_setting set[] = {{H2_SETTINGS_HEADER_TABLE_SIZE, 0}};
            assert_int_equal(h2conn_recv(cl.c, f, h2frame_pack_settings(f, set, 1, false), NULL),
                             MOM_OK);
            cl.out.len = 0; /* the SETTINGS ack: not for the server here */
        }
        size_t mark = cl.out.len;
        uint32_t sid;
        assert_int_equal(h2conn_submit_request(cl.c, h, NREQ, true, NULL, &sid), MOM_OK);
        /* HEADERS payload: ... 0x10, name (13), value length 300 = 0x7f 0xad 0x01, value */
        const uint8_t *p = cl.out.p + mark + H2FRAME_HDLEN;
        size_t n = cl.out.len - mark - H2FRAME_HDLEN;
        if (call == 2)
            assert_int_equal(p[0], 0x20); /* table size update to 0 */
        static const uint8_t lit[] = {0x10, 13,  'a', 'u', 't', 'h', 'o',  'r',  'i',
                                      'z',  'a', 't', 'i', 'o', 'n', 0x7f, 0xad, 0x01};
        assert_true(n >= sizeof lit + 300);
        assert_memory_equal(p + n - 300 - sizeof lit, lit, sizeof lit);
        assert_memory_equal(p + n - 300, token, 300);
        int before = sv.headers;
        pump(&cl, &sv);
        assert_int_equal(sv.headers, before + 1);
        assert_int_equal(sv.sensitive, call + 1);
        assert_int_equal(sv.sensitive_len, 300);
        assert_string_equal(sv.sensitive_val, token);
        assert_string_equal(sv.path, "/mom.v1.Peer/Ping");
        assert_non_null(strstr(sv.last_block, "content-type: application/grpc\n"));
    }
    assert_true(h2conn_check_invariants(cl.c));
    assert_true(h2conn_check_invariants(sv.c));
    side_free(&cl);
    side_free(&sv);
}

/* Many streams in flight on one connection, answered in one go. */
static void test_many_streams(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    sv.respond = true;
    sv.respond_size = 100;
    pump(&cl, &sv);
    for (int i = 0; i < 300; i++) {
        uint32_t sid;
        assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, false, NULL, &sid), MOM_OK);
        assert_int_equal(sid, (uint32_t)(2 * i + 1));
        assert_int_equal(h2conn_submit_data(cl.c, sid, (const uint8_t *)"hello", 5, true), MOM_OK);
    }
    assert_int_equal(h2conn_open_streams(cl.c), 300);
    assert_true(h2conn_check_invariants(cl.c));
    pump(&cl, &sv);
    assert_int_equal(cl.closes, 300);
    assert_int_equal(sv.closes, 300);
    assert_int_equal(cl.body.len, 300 * 100);
    assert_int_equal(h2conn_open_streams(cl.c), 0);
    assert_int_equal(h2conn_open_streams(sv.c), 0);
    side_free(&cl);
    side_free(&sv);
}

/* The client obeys the server's MAX_CONCURRENT_STREAMS. */
static void test_client_stream_limit(void **state)
{
    (void)state;
    struct h2conn_settings lim = {.max_concurrent_streams = 3};
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, &lim);
    pump(&cl, &sv);
    uint32_t sid;
    for (int i = 0; i < 3; i++)
        assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, true, NULL, &sid), MOM_OK);
    assert_false(h2conn_can_open(cl.c));
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, true, NULL, &sid),
                     MOM_ERR_UNAVAILABLE);
    assert_int_equal(h2conn_reset_stream(cl.c, 1, H2_CANCEL), MOM_OK);
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.close_code, H2_CANCEL);
    assert_true(h2conn_can_open(cl.c));
    assert_int_equal(h2conn_reset_stream(cl.c, 1, H2_CANCEL), MOM_ERR_NOTFOUND);
    side_free(&cl);
    side_free(&sv);
}

/* Send-side flow control: DATA waits for WINDOW_UPDATE, trailers wait for
 * the DATA, and a SETTINGS change can make a window negative. */
static void test_send_window(void **state)
{
    (void)state;
    struct side sv;
    side_new(&sv, H2CONN_SERVER, NULL);
    nghttp2_hd_deflater *d;
    nghttp2_hd_deflate_new(&d, 4096);
    struct buf b = {0};
    struct h2frame_setting set[] = {{H2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}};
    raw_client_start(&b, set, 1);
    raw_headers(&b, d, 1, req_hdrs, NREQ, H2FRAME_FLAG_END_STREAM);
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    assert_int_equal(sv.headers, 1);

    const struct h2conn_header head[] = {{":status", 7, "200", 3, false}};
    const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false}};
    static uint8_t body[5000];
    assert_int_equal(h2conn_submit_headers(sv.c, 1, head, 1, false), MOM_OK);
    size_t mark = sv.out.len;
    assert_int_equal(h2conn_submit_data(sv.c, 1, body, sizeof body, false), MOM_OK);
    assert_int_equal(h2conn_submit_headers(sv.c, 1, trail, 1, true), MOM_OK);
    struct frame_summary fs = summarize(&sv.out, mark);
    assert_int_equal(fs.data_bytes, 1000); /* the stream window */
    assert_int_equal(h2conn_pending_bytes(sv.c), 4000);
    assert_int_equal(h2conn_submit_data(sv.c, 1, body, 1, false), MOM_ERR_INVALID);
    assert_true(h2conn_check_invariants(sv.c));

    /* peer lowers the initial window to 500: our window becomes -500 */
    uint8_t f[64];
    struct h2frame_setting lower[] = {{H2_SETTINGS_INITIAL_WINDOW_SIZE, 500}};
    mark = sv.out.len;
    b.len = 0;
    buf_add(&b, f, h2frame_pack_settings(f, lower, 1, false));
    buf_add(&b, f, h2frame_pack_window_update(f, 1, 1000)); /* -> 500 */
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.data_bytes, 500);
    assert_int_equal(h2conn_pending_bytes(sv.c), 3500);
    assert_int_equal(sv.closes, 0);

    /* the rest, then trailers, then the stream closes */
    mark = sv.out.len;
    b.len = 0;
    buf_add(&b, f, h2frame_pack_window_update(f, 1, 100000));
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.data_bytes, 3500);
    assert_int_equal(h2conn_pending_bytes(sv.c), 0);
    assert_int_equal(sv.closes, 1);
    assert_int_equal(sv.close_code, H2_NO_ERROR);
    assert_int_equal(h2conn_open_streams(sv.c), 0);
    /* the last frame was HEADERS (trailers) with END_STREAM */
    struct h2frame last;
    size_t off = mark;
    while (off < sv.out.len) {
        uint32_t err;
        int used = h2frame_decode(sv.out.p + off, sv.out.len - off, 1 << 24, &last, &err);
        off += (size_t)used;
    }
    assert_int_equal(last.hd.type, H2FRAME_HEADERS);
    assert_true(last.hd.flags & H2FRAME_FLAG_END_STREAM);

    /* stream window overflow via WINDOW_UPDATE: stream error only */
    b.len = 0;
    raw_headers(&b, d, 3, req_hdrs, NREQ, 0);
    buf_add(&b, f, h2frame_pack_window_update(f, 3, H2FRAME_MAX_WINDOW));
    mark = sv.out.len;
    assert_int_equal(h2conn_recv(sv.c, b.p, b.len, NULL), MOM_OK);
    fs = summarize(&sv.out, mark);
    assert_int_equal(fs.rst_sid, 3);
    assert_int_equal(fs.rst_code, H2_FLOW_CONTROL_ERROR);
    assert_false(h2conn_is_dead(sv.c));
    nghttp2_hd_deflate_del(d);
    free(b.p);
    side_free(&sv);
}

/* A server answering before the request ended tells the client to stop. */
static void test_early_answer(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    sv.respond = true;
    sv.early_answer = true;
    pump(&cl, &sv);
    uint32_t sid;
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, false, NULL, &sid), MOM_OK);
    size_t mark = sv.out.len;
    pump(&cl, &sv);
    struct frame_summary fs = summarize(&sv.out, mark);
    (void)fs;
    assert_int_equal(sv.closes, 1);
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.close_code, H2_NO_ERROR); /* RST_STREAM(NO_ERROR) */
    assert_int_equal(cl.headers, 2);
    /* late data from the client is dropped without harm */
    assert_int_equal(h2conn_submit_data(cl.c, sid, (const uint8_t *)"x", 1, true),
                     MOM_ERR_NOTFOUND);
    side_free(&cl);
    side_free(&sv);
}

static void test_goaway(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    pump(&cl, &sv);
    uint32_t sid;
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, false, NULL, &sid), MOM_OK);
    pump(&cl, &sv); /* server saw stream 1 */
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, false, NULL, &sid), MOM_OK);
    assert_int_equal(sid, 3);
    /* the server shuts down before reading stream 3 */
    assert_int_equal(h2conn_goaway(sv.c, H2_NO_ERROR, "shutdown"), MOM_OK);
    assert_true(h2conn_goaway_sent(sv.c));
    pump(&cl, &sv);
    assert_int_equal(cl.goaways, 1);
    assert_int_equal(cl.goaway_last, 1);
    assert_int_equal(cl.goaway_code, H2_NO_ERROR);
    /* stream 3 was refused: safe to retry; stream 1 still runs */
    assert_int_equal(cl.closes, 1);
    assert_int_equal(cl.close_sid, 3);
    assert_int_equal(cl.close_code, H2_REFUSED_STREAM);
    assert_int_equal(sv.headers, 1); /* stream 3 ignored by the server */
    assert_false(h2conn_can_open(cl.c));
    assert_int_equal(h2conn_submit_request(cl.c, req_hdrs, NREQ, true, NULL, &sid), MOM_ERR_CLOSED);
    /* stream 1 can still finish */
    sv.respond = true;
    assert_int_equal(h2conn_submit_data(cl.c, 1, (const uint8_t *)"x", 1, true), MOM_OK);
    pump(&cl, &sv);
    assert_int_equal(cl.closes, 2);
    assert_int_equal(cl.close_code, H2_NO_ERROR);
    side_free(&cl);
    side_free(&sv);
}

static void test_ping(void **state)
{
    (void)state;
    struct side cl, sv;
    side_new(&cl, H2CONN_CLIENT, NULL);
    side_new(&sv, H2CONN_SERVER, NULL);
    pump(&cl, &sv);
    const uint8_t data[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    assert_int_equal(h2conn_ping(cl.c, data), MOM_OK);
    pump(&cl, &sv);
    assert_int_equal(cl.ping_acks, 1);
    assert_int_equal(sv.ping_acks, 0);
    side_free(&cl);
    side_free(&sv);
}

static void test_window_arithmetic(void **state)
{
    (void)state;
    int64_t w = 65535;
    assert_int_equal(h2conn_window_update(&w, 1), MOM_OK);
    assert_int_equal(w, 65536);
    w = H2FRAME_MAX_WINDOW - 10;
    assert_int_equal(h2conn_window_update(&w, 10), MOM_OK);
    assert_int_equal(w, H2FRAME_MAX_WINDOW);
    assert_int_equal(h2conn_window_update(&w, 1), MOM_ERR_PROTOCOL);
    assert_int_equal(w, H2FRAME_MAX_WINDOW);
    w = -100; /* negative windows may grow back */
    assert_int_equal(h2conn_window_update(&w, 50), MOM_OK);
    assert_int_equal(w, -50);

    w = 1000;
    assert_int_equal(h2conn_window_rebase(&w, 65535, 0), MOM_OK);
    assert_int_equal(w, 1000 - 65535);
    assert_int_equal(h2conn_window_rebase(&w, 0, H2FRAME_MAX_WINDOW), MOM_OK);
    assert_int_equal(w, 1000 - 65535 + (int64_t)H2FRAME_MAX_WINDOW);
    w = 1;
    assert_int_equal(h2conn_window_rebase(&w, 0, H2FRAME_MAX_WINDOW), MOM_ERR_PROTOCOL);
    assert_int_equal(w, 1);

    w = 100;
    assert_int_equal(h2conn_window_consume(&w, 100), MOM_OK);
    assert_int_equal(w, 0);
    assert_int_equal(h2conn_window_consume(&w, 1), MOM_ERR_PROTOCOL);
    assert_int_equal(h2conn_window_consume(&w, 0), MOM_OK);

    assert_int_equal(h2conn_window_sendable(100, 50, 16384, 1000), 50);
    assert_int_equal(h2conn_window_sendable(30, 50, 16384, 1000), 30);
    assert_int_equal(h2conn_window_sendable(1 << 20, 1 << 20, 16384, 1 << 20), 16384);
    assert_int_equal(h2conn_window_sendable(100, 100, 16384, 7), 7);
    assert_int_equal(h2conn_window_sendable(-5, 100, 16384, 7), 0);
    assert_int_equal(h2conn_window_sendable(100, 0, 16384, 7), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_unary_small),
        cmocka_unit_test(test_unary_byte_by_byte),
        cmocka_unit_test(test_large_default_windows),
        cmocka_unit_test(test_large_small_windows),
        cmocka_unit_test(test_connection_errors),
        cmocka_unit_test(test_recv_flow_control_violation),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_sensitive_never_indexed),
        cmocka_unit_test(test_many_streams),
        cmocka_unit_test(test_client_stream_limit),
        cmocka_unit_test(test_send_window),
        cmocka_unit_test(test_early_answer),
        cmocka_unit_test(test_goaway),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_window_arithmetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
