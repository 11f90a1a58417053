/* libFuzzer harness for the gRPC deframer (replication/grpcmsg) and the
 * peer messages behind it: the input (after two control bytes) is a gRPC
 * byte stream fed in chunks whose sizes come from the input; the messages
 * must equal those of a one-shot feed, and each is decoded with nanopb as
 * the peer requests mom decodes. Also fuzzes grpc-timeout and
 * grpc-message parsing.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "proto/mom.pb.h"
#include "replication/grpcmsg.h"

#include <pb_decode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 64
#define MAX_LEN (1u << 16)

struct collected {
    size_t n;
    size_t len[MAX_MSGS];
    uint8_t *msg[MAX_MSGS];
    int rc;
};

static bool skip_cb(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    (void)arg;
    return pb_read(s, NULL, s->bytes_left);
}

static void decode_as_peer_messages(const uint8_t *p, size_t n)
{
    pb_istream_t is = pb_istream_from_buffer(p, n);
    mom_v1_PingRequest ping = mom_v1_PingRequest_init_zero;
    (void)pb_decode(&is, mom_v1_PingRequest_fields, &ping);
    is = pb_istream_from_buffer(p, n);
    mom_v1_RaftMessage rm = mom_v1_RaftMessage_init_zero;
    rm.entries.funcs.decode = skip_cb;
    rm.snap_data.funcs.decode = skip_cb;
    (void)pb_decode(&is, mom_v1_RaftMessage_fields, &rm);
    is = pb_istream_from_buffer(p, n);
    mom_v1_ForwardRequest fr = mom_v1_ForwardRequest_init_zero;
    fr.command.funcs.decode = skip_cb;
    (void)pb_decode(&is, mom_v1_ForwardRequest_fields, &fr);
}

/* Feeds the stream in chunks; sizes cycle through `sizes` (0 = whole). */
static void run(const uint8_t *s, size_t len, const uint8_t *sizes, size_t nsizes,
                struct collected *out, bool decode)
{
    struct grpcmsg_reader r;
    grpcmsg_reader_init(&r, MAX_LEN);
    memset(out, 0, sizeof *out);
    size_t off = 0, k = 0;
    while (off < len && out->rc == 0) {
        size_t chunk = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : len;
        if (chunk > len - off)
            chunk = len - off;
        const uint8_t *p = s + off;
        size_t n = chunk;
        while (n > 0) {
            size_t used;
            struct grpcmsg_view v;
            int rc = grpcmsg_reader_feed(&r, p, n, &used, &v);
            if (used > n)
                abort();
            p += used;
            n -= used;
            if (rc < 0) {
                out->rc = rc;
                break;
            }
            if (rc == 0) {
                if (n != 0)
                    abort();
                break;
            }
            if (v.len > MAX_LEN)
                abort();
            if (out->n < MAX_MSGS) {
                out->msg[out->n] = malloc(v.len + 1);
                memcpy(out->msg[out->n], v.data, v.len);
                out->len[out->n++] = v.len;
            }
            if (decode)
                decode_as_peer_messages(v.data, v.len);
        }
        off += chunk;
    }
    grpcmsg_reader_cleanup(&r);
}

static void release(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->msg[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nsizes = data[0] % 8;
    if (size < 1 + nsizes)
        return 0;
    const uint8_t *sizes = data + 1;
    const uint8_t *s = data + 1 + nsizes;
    size_t len = size - 1 - nsizes;

    struct collected whole, split;
    run(s, len, NULL, 0, &whole, true);
    run(s, len, sizes, nsizes ? nsizes : 1, &split, false);
    if (whole.n != split.n || whole.rc != split.rc)
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (whole.len[i] != split.len[i] || memcmp(whole.msg[i], split.msg[i], whole.len[i]) != 0)
            abort();
    release(&whole);
    release(&split);

    /* grpc-timeout and grpc-message on the same bytes */
    uint64_t ms;
    if (grpcmsg_timeout_parse((const char *)s, len < 16 ? len : 16, &ms) == MOM_OK) {
        char out[GRPCMSG_TIMEOUT_MAXLEN];
        size_t n = grpcmsg_timeout_format(ms, out);
        uint64_t back;
        if (grpcmsg_timeout_parse(out, n, &back) != MOM_OK || back < ms)
            abort();
    }
    size_t m = len < 512 ? len : 512;
    char enc[3 * 512 + 1], dec[3 * 512 + 1];
    size_t el = grpcmsg_percent_encode((const char *)s, m, enc, sizeof enc);
    size_t dl = grpcmsg_percent_decode(enc, el, dec);
    if (dl != m || memcmp(dec, s, m) != 0)
        abort();
    grpcmsg_percent_decode((const char *)s, m, dec);
    return 0;
}
