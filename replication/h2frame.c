/* HTTP/2 frame codec: decoding with every self-contained check of RFC 9113
 * §6, and packers for the frames mom sends. Every read is bounds-checked
 * against the declared payload length before it happens.
 * SPDX-License-Identifier: MIT */
#include "replication/h2frame.h"

#include "common/err.h"

#include <string.h>

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int h2frame_decode_hd(const uint8_t *buf, size_t len, struct h2frame_hd *out)
{
    if (len < H2FRAME_HDLEN)
        return MOM_ERR_NEED_MORE;
    out->length = (uint32_t)buf[0] << 16 | (uint32_t)buf[1] << 8 | (uint32_t)buf[2];
    out->type = buf[3];
    out->flags = buf[4];
    out->stream_id = get_u32(buf + 5) & H2FRAME_MAX_STREAM_ID;
    return (int)H2FRAME_HDLEN;
}

void h2frame_pack_hd(uint8_t out[H2FRAME_HDLEN], const struct h2frame_hd *hd)
{
    out[0] = (uint8_t)(hd->length >> 16);
    out[1] = (uint8_t)(hd->length >> 8);
    out[2] = (uint8_t)hd->length;
    out[3] = hd->type;
    out[4] = hd->flags;
    put_u32(out + 5, hd->stream_id & H2FRAME_MAX_STREAM_ID);
}

uint32_t h2frame_check_setting(uint16_t id, uint32_t value)
{
    switch (id) {
    case H2_SETTINGS_ENABLE_PUSH:
    case H2_SETTINGS_ENABLE_CONNECT_PROTOCOL: return value > 1 ? H2_PROTOCOL_ERROR : 0;
    case H2_SETTINGS_INITIAL_WINDOW_SIZE:
        return value > H2FRAME_MAX_WINDOW ? H2_FLOW_CONTROL_ERROR : 0;
    case H2_SETTINGS_MAX_FRAME_SIZE:
        return value < H2FRAME_MIN_MAX_FRAME_SIZE || value > H2FRAME_MAX_MAX_FRAME_SIZE
                   ? H2_PROTOCOL_ERROR
                   : 0;
    default: return 0; /* unknown settings are ignored (§6.5.2) */
    }
}

struct h2frame_setting h2frame_setting_at(const struct h2frame *f, size_t i)
{
    const uint8_t *p = f->data + i * H2FRAME_SETTING_LEN;
    struct h2frame_setting s = {.id = (uint16_t)(p[0] << 8 | p[1]), .value = get_u32(p + 2)};
    return s;
}

/* Strips the Pad Length octet and padding (flag PADDED) from *p / *n. */
static int strip_padding(const struct h2frame_hd *hd, const uint8_t **p, size_t *n,
                         uint32_t *pad_len, uint32_t *h2_error)
{
    *pad_len = 0;
    if (!(hd->flags & H2FRAME_FLAG_PADDED))
        return MOM_OK;
    if (*n < 1) {
        *h2_error = H2_FRAME_SIZE_ERROR;
        return MOM_ERR_PROTOCOL;
    }
    size_t pad = (*p)[0];
    if (pad >= *n) { /* padding must leave room for the octet itself (§6.1) */
        *h2_error = H2_PROTOCOL_ERROR;
        return MOM_ERR_PROTOCOL;
    }
    *pad_len = (uint32_t)pad + 1;
    *p += 1;
    *n -= pad + 1;
    return MOM_OK;
}

static int fail(uint32_t *h2_error, uint32_t code)
{
    *h2_error = code;
    return MOM_ERR_PROTOCOL;
}

int h2frame_decode(const uint8_t *buf, size_t len, uint32_t max_frame_size, struct h2frame *f,
                   uint32_t *h2_error)
{
    memset(f, 0, sizeof *f);
    *h2_error = H2_NO_ERROR;
    int rc = h2frame_decode_hd(buf, len, &f->hd);
    if (rc < 0)
        return rc;
    const struct h2frame_hd *hd = &f->hd;
    if (hd->length > max_frame_size)
        return fail(h2_error, H2_FRAME_SIZE_ERROR);
    if (len - H2FRAME_HDLEN < hd->length)
        return MOM_ERR_NEED_MORE;
    const uint8_t *p = buf + H2FRAME_HDLEN;
    size_t n = hd->length;
    f->data = p;
    f->data_len = n;

    switch (hd->type) {
    case H2FRAME_DATA:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (strip_padding(hd, &p, &n, &f->pad_len, h2_error) < 0)
            return MOM_ERR_PROTOCOL;
        break;
    case H2FRAME_HEADERS:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (strip_padding(hd, &p, &n, &f->pad_len, h2_error) < 0)
            return MOM_ERR_PROTOCOL;
        if (hd->flags & H2FRAME_FLAG_PRIORITY) {
            if (n < 5)
                return fail(h2_error, H2_FRAME_SIZE_ERROR);
            uint32_t dep = get_u32(p);
            f->exclusive = (dep >> 31) != 0;
            f->dependency = dep & H2FRAME_MAX_STREAM_ID;
            f->weight = p[4];
            p += 5;
            n -= 5;
        }
        break;
    case H2FRAME_PRIORITY:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (n != 5)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        {
            uint32_t dep = get_u32(p);
            f->exclusive = (dep >> 31) != 0;
            f->dependency = dep & H2FRAME_MAX_STREAM_ID;
            f->weight = p[4];
        }
        n = 0;
        break;
    case H2FRAME_RST_STREAM:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (n != 4)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        f->error_code = get_u32(p);
        n = 0;
        break;
    case H2FRAME_SETTINGS:
        if (hd->stream_id != 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if ((hd->flags & H2FRAME_FLAG_ACK) && n != 0)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        if (n % H2FRAME_SETTING_LEN != 0)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        f->n_settings = n / H2FRAME_SETTING_LEN;
        for (size_t i = 0; i < f->n_settings; i++) {
            struct h2frame_setting s = h2frame_setting_at(f, i);
            uint32_t code = h2frame_check_setting(s.id, s.value);
            if (code)
                return fail(h2_error, code);
        }
        break;
    case H2FRAME_PUSH_PROMISE:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (strip_padding(hd, &p, &n, &f->pad_len, h2_error) < 0)
            return MOM_ERR_PROTOCOL;
        if (n < 4)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        f->promised_stream_id = get_u32(p) & H2FRAME_MAX_STREAM_ID;
        p += 4;
        n -= 4;
        break;
    case H2FRAME_PING:
        if (hd->stream_id != 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (n != H2FRAME_PING_LEN)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        memcpy(f->ping, p, H2FRAME_PING_LEN);
        n = 0;
        break;
    case H2FRAME_GOAWAY:
        if (hd->stream_id != 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        if (n < 8)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        f->last_stream_id = get_u32(p) & H2FRAME_MAX_STREAM_ID;
        f->error_code = get_u32(p + 4);
        p += 8;
        n -= 8;
        break;
    case H2FRAME_WINDOW_UPDATE:
        if (n != 4)
            return fail(h2_error, H2_FRAME_SIZE_ERROR);
        f->window_increment = get_u32(p) & H2FRAME_MAX_WINDOW;
        if (f->window_increment == 0 && hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        n = 0;
        break;
    case H2FRAME_CONTINUATION:
        if (hd->stream_id == 0)
            return fail(h2_error, H2_PROTOCOL_ERROR);
        break;
    default: break; /* unknown types must be ignored (§4.1) */
    }
    f->data = p;
    f->data_len = n;
    return (int)(H2FRAME_HDLEN + hd->length);
}

size_t h2frame_pack_settings(uint8_t *out, const struct h2frame_setting *s, size_t n, bool ack)
{
    struct h2frame_hd hd = {.length = (uint32_t)(n * H2FRAME_SETTING_LEN),
                            .type = H2FRAME_SETTINGS,
                            .flags = ack ? H2FRAME_FLAG_ACK : 0};
    h2frame_pack_hd(out, &hd);
    uint8_t *p = out + H2FRAME_HDLEN;
    for (size_t i = 0; i < n; i++, p += H2FRAME_SETTING_LEN) {
        p[0] = (uint8_t)(s[i].id >> 8);
        p[1] = (uint8_t)s[i].id;
        put_u32(p + 2, s[i].value);
    }
    return H2FRAME_HDLEN + hd.length;
}

size_t h2frame_pack_ping(uint8_t *out, const uint8_t data[H2FRAME_PING_LEN], bool ack)
{
    struct h2frame_hd hd = {
        .length = H2FRAME_PING_LEN, .type = H2FRAME_PING, .flags = ack ? H2FRAME_FLAG_ACK : 0};
    h2frame_pack_hd(out, &hd);
    memcpy(out + H2FRAME_HDLEN, data, H2FRAME_PING_LEN);
    return H2FRAME_HDLEN + H2FRAME_PING_LEN;
}

size_t h2frame_pack_window_update(uint8_t *out, uint32_t stream_id, uint32_t increment)
{
    struct h2frame_hd hd = {.length = 4, .type = H2FRAME_WINDOW_UPDATE, .stream_id = stream_id};
    h2frame_pack_hd(out, &hd);
    put_u32(out + H2FRAME_HDLEN, increment & H2FRAME_MAX_WINDOW);
    return H2FRAME_HDLEN + 4;
}

size_t h2frame_pack_rst_stream(uint8_t *out, uint32_t stream_id, uint32_t error_code)
{
    struct h2frame_hd hd = {.length = 4, .type = H2FRAME_RST_STREAM, .stream_id = stream_id};
    h2frame_pack_hd(out, &hd);
    put_u32(out + H2FRAME_HDLEN, error_code);
    return H2FRAME_HDLEN + 4;
}

size_t h2frame_pack_goaway(uint8_t *out, uint32_t last_stream_id, uint32_t error_code,
                           const void *debug, size_t debug_len)
{
    struct h2frame_hd hd = {.length = (uint32_t)(8 + debug_len), .type = H2FRAME_GOAWAY};
    h2frame_pack_hd(out, &hd);
    put_u32(out + H2FRAME_HDLEN, last_stream_id & H2FRAME_MAX_STREAM_ID);
    put_u32(out + H2FRAME_HDLEN + 4, error_code);
    if (debug_len)
        memcpy(out + H2FRAME_HDLEN + 8, debug, debug_len);
    return H2FRAME_HDLEN + 8 + debug_len;
}

size_t h2frame_pack_priority(uint8_t *out, uint32_t stream_id, uint32_t dependency, uint8_t weight,
                             bool exclusive)
{
    struct h2frame_hd hd = {.length = 5, .type = H2FRAME_PRIORITY, .stream_id = stream_id};
    h2frame_pack_hd(out, &hd);
    put_u32(out + H2FRAME_HDLEN, (dependency & H2FRAME_MAX_STREAM_ID) | (exclusive ? 1u << 31 : 0));
    out[H2FRAME_HDLEN + 4] = weight;
    return H2FRAME_HDLEN + 5;
}

size_t h2frame_pack_payload(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id,
                            const void *data, size_t len, uint32_t pad_len)
{
    struct h2frame_hd hd = {.length = (uint32_t)(len + pad_len),
                            .type = type,
                            .flags = (uint8_t)(flags & ~H2FRAME_FLAG_PADDED),
                            .stream_id = stream_id};
    uint8_t *p = out + H2FRAME_HDLEN;
    if (pad_len > 0) {
        hd.flags |= H2FRAME_FLAG_PADDED;
        *p++ = (uint8_t)(pad_len - 1);
    }
    h2frame_pack_hd(out, &hd);
    if (len)
        memcpy(p, data, len);
    if (pad_len > 1)
        memset(p + len, 0, pad_len - 1);
    return H2FRAME_HDLEN + hd.length;
}

const char *h2frame_type_name(uint8_t type)
{
    static const char *const names[] = {"DATA",          "HEADERS",      "PRIORITY", "RST_STREAM",
                                        "SETTINGS",      "PUSH_PROMISE", "PING",     "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION"};
    return type < sizeof names / sizeof names[0] ? names[type] : "UNKNOWN";
}

const char *h2frame_error_name(uint32_t code)
{
    static const char *const names[] = {"NO_ERROR",
                                        "PROTOCOL_ERROR",
                                        "INTERNAL_ERROR",
                                        "FLOW_CONTROL_ERROR",
                                        "SETTINGS_TIMEOUT",
                                        "STREAM_CLOSED",
                                        "FRAME_SIZE_ERROR",
                                        "REFUSED_STREAM",
                                        "CANCEL",
                                        "COMPRESSION_ERROR",
                                        "CONNECT_ERROR",
                                        "ENHANCE_YOUR_CALM",
                                        "INADEQUATE_SECURITY",
                                        "HTTP_1_1_REQUIRED"};
    return code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN_ERROR";
}
