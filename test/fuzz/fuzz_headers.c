/* libFuzzer harness for the header-block path: the input is an HPACK block
 * sent to a server h2conn as a request (HEADERS split into CONTINUATIONs),
 * again as trailers, and again on a second stream, so the decoder's dynamic
 * table carries over. Every block the connection accepts must survive an
 * HPACK round trip unchanged, the server answers accepted requests from its
 * callbacks, and the connection invariants hold after every step.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/h2conn.h"
#include "replication/h2frame.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)d;
    (void)n;
    return 0;
}

/* Deflate then inflate the headers; they must come back the same. */
static void roundtrip(const struct h2conn_header *h, size_t n)
{
    nghttp2_hd_deflater *d;
    nghttp2_hd_inflater *in;
    if (nghttp2_hd_deflate_new(&d, 4096) || nghttp2_hd_inflate_new(&in))
        abort();
    nghttp2_nv *nv = calloc(n + 1, sizeof *nv);
    for (size_t i = 0; i < n; i++) {
        nv[i].name = (uint8_t *)(uintptr_t)h[i].name;
        nv[i].namelen = h[i].name_len;
        nv[i].value = (uint8_t *)(uintptr_t)h[i].value;
        nv[i].valuelen = h[i].value_len;
    }
    size_t bound = nghttp2_hd_deflate_bound(d, nv, n);
    uint8_t *buf = malloc(bound + 1);
    ssize_t len = nghttp2_hd_deflate_hd(d, buf, bound, nv, n);
    if (len < 0)
        abort();
    const uint8_t *p = buf;
    size_t left = (size_t)len, k = 0;
    for (;;) {
        nghttp2_nv out;
        int flags = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(in, &out, &flags, p, left, 1);
        if (rv < 0)
            abort();
        p += rv;
        left -= (size_t)rv;
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            if (k >= n || out.namelen != h[k].name_len || out.valuelen != h[k].value_len ||
                memcmp(out.name, h[k].name, out.namelen) != 0 ||
                (out.valuelen && memcmp(out.value, h[k].value, out.valuelen) != 0))
                abort();
            k++;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL)
            break;
    }
    if (k != n)
        abort();
    free(buf);
    free(nv);
    nghttp2_hd_deflate_del(d);
    nghttp2_hd_inflate_del(in);
}

struct ctx {
    struct h2conn *c;
};

static void on_headers(void *arg, uint32_t sid, void *user, const struct h2conn_header *h, size_t n,
                       bool end)
{
    struct ctx *x = arg;
    (void)user;
    roundtrip(h, n);
    for (size_t i = 0; i < n; i++) /* every name is lower-case, non-empty */
        for (size_t j = 0; j < h[i].name_len; j++)
            if (h[i].name[j] >= 'A' && h[i].name[j] <= 'Z')
                abort();
    if (end) {
        const struct h2conn_header resp[] = {{":status", 7, "200", 3, false}};
        const struct h2conn_header trail[] = {{"grpc-status", 11, "0", 1, false}};
        h2conn_submit_headers(x->c, sid, resp, 1, false);
        h2conn_submit_data(x->c, sid, (const uint8_t *)"\0\0\0\0\0", 5, false);
        h2conn_submit_headers(x->c, sid, trail, 1, true);
    }
}

static void on_data(void *arg, uint32_t sid, void *user, const uint8_t *d, size_t n, bool end)
{
    (void)arg;
    (void)sid;
    (void)user;
    (void)d;
    (void)n;
    (void)end;
}

static void on_close(void *arg, uint32_t sid, void *user, uint32_t code)
{
    (void)arg;
    (void)sid;
    (void)user;
    (void)code;
}

static void feed(struct ctx *x, const uint8_t *p, size_t n)
{
    h2conn_recv(x->c, p, n, NULL);
    if (!h2conn_check_invariants(x->c))
        abort();
}

/* Sends block on sid as HEADERS + CONTINUATION pieces of at most piece bytes. */
static void send_block(struct ctx *x, uint32_t sid, const uint8_t *block, size_t len, size_t piece,
                       bool end_stream)
{
    static uint8_t frame[H2FRAME_HDLEN + 70000];
    size_t off = 0;
    uint8_t type = H2FRAME_HEADERS;
    do {
        size_t chunk = len - off < piece ? len - off : piece;
        uint8_t flags = 0;
        if (type == H2FRAME_HEADERS && end_stream)
            flags |= H2FRAME_FLAG_END_STREAM;
        if (off + chunk == len)
            flags |= H2FRAME_FLAG_END_HEADERS;
        size_t n = h2frame_pack_payload(frame, type, flags, sid, block + off, chunk, 0);
        feed(x, frame, n);
        off += chunk;
        type = H2FRAME_CONTINUATION;
    } while (off < len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 60000)
        return 0;
    size_t piece = (size_t)(data[0] % 64) * 64 + 1; /* 1 .. 4033 bytes per frame */
    const uint8_t *block = data + 1;
    size_t len = size - 1;
    struct ctx x;
    struct h2conn_callbacks cb = {
        .send = sink, .on_headers = on_headers, .on_data = on_data, .on_stream_close = on_close};
    if (h2conn_new(H2CONN_SERVER, NULL, &cb, &x, &x.c) != MOM_OK)
        abort();
    uint8_t start[H2FRAME_PREFACE_LEN + H2FRAME_HDLEN];
    memcpy(start, H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    h2frame_pack_settings(start + H2FRAME_PREFACE_LEN, NULL, 0, false);
    feed(&x, start, sizeof start);
    send_block(&x, 1, block, len, piece, false); /* request head */
    send_block(&x, 1, block, len, piece, true);  /* as trailers */
    send_block(&x, 3, block, len, piece, true);  /* a second request */
    h2conn_free(x.c);
    return 0;
}
