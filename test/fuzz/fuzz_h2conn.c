/* libFuzzer harness for the whole HTTP/2 connection (replication/h2conn) in
 * either role: the input is the peer's byte stream (a server also gets a
 * valid preface first), fed in chunks whose sizes come from the input. The
 * callbacks answer, reset and open streams re-entrantly like the peer glue
 * does; the invariants must hold after every chunk, and a connection error
 * must leave the connection dead with a GOAWAY sent.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
    struct h2conn *c;
    bool goaway_out;
    size_t out_bytes;
    unsigned actions;
};

static int sink(void *arg, const uint8_t *d, size_t n)
{
    struct ctx *x = arg;
    /* a GOAWAY frame header has type 7 at offset 3 */
    if (n >= H2FRAME_HDLEN && d[3] == H2FRAME_GOAWAY)
        x->goaway_out = true;
    x->out_bytes += n;
    return 0;
}

static const struct h2conn_header req[] = {{":method", 7, "POST", 4, false},
                                           {":scheme", 7, "http", 4, false},
                                           {":path", 5, "/mom.v1.Peer/Ping", 17, false},
                                           {":authority", 10, "x", 1, false},
                                           {"content-type", 12, "application/grpc", 16, false},
                                           {"te", 2, "trailers", 8, false}};

static void on_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h, size_t n,
                       bool end)
{
    struct ctx *x = arg;
    (void)user;
    (void)h;
    (void)n;
    x->actions++;
    if (x->actions % 5 == 0) {
        h2conn_reset_stream(x->c, sid, H2_CANCEL);
        return;
    }
    if (end || x->actions % 3 == 0) {
        static uint8_t body[70000];
        const struct h2conn_header resp[] = {{":status", 7, "200", 3, false}};
        const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false}};
        h2conn_submit_headers(x->c, sid, resp, 1, false);
        h2conn_submit_data(x->c, sid, body, (x->actions * 7919u) % sizeof body, false);
        h2conn_submit_headers(x->c, sid, trail, 1, true);
    }
}

static void on_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end)
{
    struct ctx *x = arg;
    (void)user;
    (void)d;
    (void)n;
    if (end && ++x->actions % 4 == 0)
        h2conn_reset_stream(x->c, sid, H2_NO_ERROR);
}

static void on_close(void *arg, uint32_t sid, void *user, uint32_t code)
{
    struct ctx *x = arg;
    (void)sid;
    (void)user;
    (void)code;
    /* a client opens a new stream when one ends, as the peer glue drains its queue */
    uint32_t nsid;
    if (++x->actions % 2 == 0 && h2conn_can_open(x->c))
        h2conn_submit_request(x->c, req, 6, true, NULL, &nsid);
}

static void on_goaway(void *arg, uint32_t last, uint32_t code)
{
    (void)arg;
    (void)last;
    (void)code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool server = data[0] & 1;
    size_t chunk = (size_t)(data[0] >> 1) * 37 + 1;
    uint8_t window_mode = data[1];
    data += 2;
    size -= 2;
    struct h2conn_settings set = {0};
    if (window_mode & 1) { /* small windows and frames: exercises flow control */
        set.initial_window = 65535;
        set.conn_window = 65535;
        set.max_frame_size = 16384;
        set.max_concurrent_streams = 4;
        set.max_header_list = 4096;
    }
    struct ctx x = {0};
    struct h2conn_callbacks cb = {.send = sink,
                                  .on_headers = on_headers,
                                  .on_data = on_data,
                                  .on_stream_close = on_close,
                                  .on_goaway = on_goaway};
    if (h2conn_new(server ? H2CONN_SERVER : H2CONN_CLIENT, &set, &cb, &x, &x.c) != MOM_OK)
        abort();
    if (server) {
        h2conn_recv(x.c, (const uint8_t *)H2FRAME_PREFACE, H2FRAME_PREFACE_LEN, NULL);
    } else {
        uint32_t sid;
        for (int i = 0; i < 3; i++)
            h2conn_submit_request(x.c, req, 6, i != 1, NULL, &sid);
        h2conn_submit_data(x.c, 3, (const uint8_t *)"\0\0\0\0\0", 5, true);
    }
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        x.goaway_out = false;
        uint32_t code = 0;
        int rc = h2conn_recv(x.c, copy + off, n, &code);
        if (!h2conn_check_invariants(x.c))
            abort();
        if (rc == MOM_ERR_PROTOCOL) {
            if (!h2conn_is_dead(x.c) || !x.goaway_out)
                abort();
            break;
        }
        if (rc == MOM_ERR_CLOSED)
            break;
        if (rc != MOM_OK)
            abort();
    }
    free(copy);
    h2conn_free(x.c);
    return 0;
}
