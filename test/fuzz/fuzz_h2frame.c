/* libFuzzer harness for the HTTP/2 frame codec (replication/h2frame): decodes
 * the input as a sequence of frames, checks that every decoded frame stays
 * inside its buffer, and that packing what was decoded decodes to the same.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"
#include "replication/h2frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_repack(const struct h2frame *f)
{
    static uint8_t out[H2FRAME_HDLEN + H2FRAME_MAX_MAX_FRAME_SIZE];
    struct h2frame g;
    uint32_t err;
    size_t n = 0;
    switch (f->hd.type) {
    case H2FRAME_DATA:
    case H2FRAME_HEADERS:
        if (f->hd.type == H2FRAME_HEADERS && (f->hd.flags & H2FRAME_FLAG_PRIORITY))
            return;
        n = h2frame_pack_payload(out, f->hd.type, f->hd.flags, f->hd.stream_id, f->data,
                                 f->data_len, f->pad_len);
        break;
    case H2FRAME_CONTINUATION:
        n = h2frame_pack_payload(out, f->hd.type, f->hd.flags, f->hd.stream_id, f->data,
                                 f->data_len, 0);
        break;
    case H2FRAME_PING:
        n = h2frame_pack_ping(out, f->ping, (f->hd.flags & H2FRAME_FLAG_ACK) != 0);
        break;
    case H2FRAME_RST_STREAM:
        n = h2frame_pack_rst_stream(out, f->hd.stream_id, f->error_code);
        break;
    case H2FRAME_WINDOW_UPDATE:
        n = h2frame_pack_window_update(out, f->hd.stream_id, f->window_increment);
        break;
    case H2FRAME_GOAWAY:
        n = h2frame_pack_goaway(out, f->last_stream_id, f->error_code, f->data, f->data_len);
        break;
    case H2FRAME_PRIORITY:
        n = h2frame_pack_priority(out, f->hd.stream_id, f->dependency, f->weight, f->exclusive);
        break;
    case H2FRAME_SETTINGS: {
        static struct h2frame_setting s[H2FRAME_MAX_MAX_FRAME_SIZE / H2FRAME_SETTING_LEN + 1];
        for (size_t i = 0; i < f->n_settings; i++)
            s[i] = h2frame_setting_at(f, i);
        n = h2frame_pack_settings(out, s, f->n_settings, (f->hd.flags & H2FRAME_FLAG_ACK) != 0);
        break;
    }
    default: return;
    }
    int used = h2frame_decode(out, n, H2FRAME_MAX_MAX_FRAME_SIZE, &g, &err);
    if (used != (int)n || g.hd.type != f->hd.type || g.hd.stream_id != f->hd.stream_id ||
        g.data_len != f->data_len || (g.data_len && memcmp(g.data, f->data, g.data_len) != 0) ||
        g.error_code != f->error_code || g.window_increment != f->window_increment ||
        g.n_settings != f->n_settings || memcmp(g.ping, f->ping, sizeof g.ping) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* the first byte picks the frame size limit */
    uint32_t max = data[0] & 1 ? H2FRAME_MIN_MAX_FRAME_SIZE : H2FRAME_MAX_MAX_FRAME_SIZE;
    data++;
    size--;
    /* copy so ASan sees reads past the end of the input */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    size_t off = 0;
    while (off < size) {
        struct h2frame f;
        uint32_t err = 0;
        int used = h2frame_decode(buf + off, size - off, max, &f, &err);
        if (used == MOM_ERR_NEED_MORE)
            break;
        if (used < 0) {
            if (used != MOM_ERR_PROTOCOL || err == 0)
                abort();
            break;
        }
        if ((size_t)used > size - off || f.hd.length > max ||
            (f.data_len && (f.data < buf + off || f.data + f.data_len > buf + off + (size_t)used)))
            abort();
        check_repack(&f);
        off += (size_t)used;
    }
    free(buf);
    return 0;
}
