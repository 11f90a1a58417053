/* HTTP/2 connection state machine over h2frame: preface and SETTINGS
 * exchange, the stream table (open addressing keyed by stream id), header
 * blocks gathered across CONTINUATION and decoded with nghttp2's HPACK
 * inflater, request/response/trailer header validation (RFC 9113 §8),
 * both levels of flow control, and GOAWAY/RST_STREAM on violations.
 * Invariants: a stream is in the table iff it is open in at least one
 * direction; a stream is on the pending list iff it holds unsent DATA or
 * trailers; header blocks are HPACK-encoded in the order they hit the wire.
 * SPDX-License-Identifier: MIT */
#include "replication/h2conn.h"

#include "common/err.h"
#include "common/grow.h"
#include "replication/h2frame.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#define HPACK_TABLE_MAX 4096u
#define GOAWAY_BUF 256u

struct trailers {
    size_t n;
    struct h2conn_header h[]; /* strings follow the array in the same block */
};

struct h2stream {
    uint32_t id;
    void *user;
    bool announced;     /* the application knows it: on_stream_close fires */
    bool headers_seen;  /* first header block received */
    bool recv_closed;   /* END_STREAM received */
    bool end_requested; /* the application finished its side */
    bool end_sent;      /* END_STREAM went out */
    int64_t send_window;
    int64_t recv_window;
    uint32_t recv_unacked;
    uint8_t *pend; /* unsent DATA */
    size_t pend_off, pend_len, pend_cap;
    struct trailers *trailers;    /* waiting behind pend */
    struct h2stream *prev, *next; /* pending list */
    bool listed;
};

struct hdr_off {
    size_t name, name_len, value, value_len;
    bool sensitive;
};

struct h2conn {
    enum h2conn_role role;
    struct h2conn_callbacks cb;
    void *arg;
    struct h2conn_settings local;

    uint32_t remote_max_streams;
    uint32_t remote_initial_window;
    uint32_t remote_max_frame;
    bool remote_settings_seen;
    bool local_settings_acked; /* the peer acknowledged our SETTINGS */
    bool first_frame_seen;

    int64_t conn_send_window;
    int64_t conn_recv_window;
    uint32_t conn_recv_unacked;

    struct h2stream **slots;
    size_t cap, count;
    size_t n_local, n_remote;
    uint32_t next_local_id;
    uint32_t last_remote_id;
    struct h2stream *pend_head, *pend_tail;
    size_t pending_bytes;

    /* header block being gathered */
    bool hb_active;
    uint32_t hb_stream;
    bool hb_end_stream;
    uint8_t *hb;
    size_t hb_len, hb_cap;
    /* decoded headers */
    struct hdr_off *offs;
    struct h2conn_header *hdrs;
    size_t hdrs_cap;
    char *arena;
    size_t arena_len, arena_cap;

    /* input */
    size_t preface_seen;
    uint8_t *ibuf;
    size_t ibuf_len, ibuf_cap;

    /* output scratch for header blocks */
    uint8_t *enc;
    size_t enc_cap;

    nghttp2_hd_deflater *deflater;
    nghttp2_hd_inflater *inflater;

    bool dead;
    bool goaway_sent, goaway_received;
    uint32_t goaway_sent_last;
    uint32_t last_error;
};

/* ---------------- window arithmetic ---------------- */

int h2conn_window_update(int64_t *window, uint32_t increment)
{
    if (*window + (int64_t)increment > (int64_t)H2FRAME_MAX_WINDOW)
        return MOM_ERR_PROTOCOL;
    *window += increment;
    return MOM_OK;
}

int h2conn_window_rebase(int64_t *window, uint32_t old_initial, uint32_t new_initial)
{
    int64_t w = *window + (int64_t)new_initial - (int64_t)old_initial;
    if (w > (int64_t)H2FRAME_MAX_WINDOW)
        return MOM_ERR_PROTOCOL;
    *window = w;
    return MOM_OK;
}

int h2conn_window_consume(int64_t *window, size_t n)
{
    if ((uint64_t)n > (uint64_t)H2FRAME_MAX_WINDOW || *window < (int64_t)n)
        return MOM_ERR_PROTOCOL;
    *window -= (int64_t)n;
    return MOM_OK;
}

size_t h2conn_window_sendable(int64_t conn_window, int64_t stream_window, size_t max_frame,
                              size_t want)
{
    int64_t w = conn_window < stream_window ? conn_window : stream_window;
    if (w <= 0)
        return 0;
    size_t n = (size_t)w;
    if (n > max_frame)
        n = max_frame;
    return n < want ? n : want;
}

/* ---------------- stream table ---------------- */

static size_t home_slot(uint32_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 2654435761u) & (cap - 1));
}

static struct h2stream *stream_find(const struct h2conn *c, uint32_t id)
{
    if (c->cap == 0)
        return NULL;
    for (size_t i = home_slot(id, c->cap);; i = (i + 1) & (c->cap - 1)) {
        struct h2stream *s = c->slots[i];
        if (!s)
            return NULL;
        if (s->id == id)
            return s;
    }
}

static int table_put(struct h2stream **slots, size_t cap, struct h2stream *s)
{
    size_t i = home_slot(s->id, cap);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = s;
    return MOM_OK;
}

static int stream_insert(struct h2conn *c, struct h2stream *s)
{
    if ((c->count + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct h2stream **ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return MOM_ERR_NOMEM;
        for (size_t i = 0; i < c->cap; i++)
            if (c->slots[i])
                table_put(ns, ncap, c->slots[i]);
        free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    table_put(c->slots, c->cap, s);
    c->count++;
    return MOM_OK;
}

static void stream_remove(struct h2conn *c, uint32_t id)
{
    size_t mask = c->cap - 1;
    size_t i = home_slot(id, c->cap);
    while (c->slots[i] && c->slots[i]->id != id)
        i = (i + 1) & mask;
    if (!c->slots[i])
        return;
    c->slots[i] = NULL;
    c->count--;
    /* backward-shift deletion keeps probe chains unbroken */
    for (size_t j = (i + 1) & mask; c->slots[j]; j = (j + 1) & mask) {
        size_t k = home_slot(c->slots[j]->id, c->cap);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            c->slots[j] = NULL;
            i = j;
        }
    }
}

static bool is_local_id(const struct h2conn *c, uint32_t id)
{
    return (id & 1u) == (c->role == H2CONN_CLIENT ? 1u : 0u);
}

static bool is_idle(const struct h2conn *c, uint32_t id)
{
    return is_local_id(c, id) ? id >= c->next_local_id : id > c->last_remote_id;
}

static void pend_unlink(struct h2conn *c, struct h2stream *s)
{
    if (!s->listed)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->pend_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        c->pend_tail = s->prev;
    s->prev = s->next = NULL;
    s->listed = false;
}

static void pend_link(struct h2conn *c, struct h2stream *s)
{
    if (s->listed)
        return;
    s->prev = c->pend_tail;
    s->next = NULL;
    if (c->pend_tail)
        c->pend_tail->next = s;
    else
        c->pend_head = s;
    c->pend_tail = s;
    s->listed = true;
}

static void stream_destroy(struct h2stream *s)
{
    free(s->pend);
    free(s->trailers);
    free(s);
}

/* Removes the stream, tells the application, frees it. */
static void stream_close(struct h2conn *c, struct h2stream *s, uint32_t code)
{
    stream_remove(c, s->id);
    pend_unlink(c, s);
    c->pending_bytes -= s->pend_len - s->pend_off;
    if (is_local_id(c, s->id))
        c->n_local--;
    else
        c->n_remote--;
    if (s->announced && c->cb.on_stream_close)
        c->cb.on_stream_close(c->arg, s->id, s->user, code);
    stream_destroy(s);
}

static struct h2stream *stream_new(struct h2conn *c, uint32_t id)
{
    struct h2stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    s->send_window = c->remote_initial_window;
    s->recv_window = c->local.initial_window;
    if (stream_insert(c, s) < 0) {
        free(s);
        return NULL;
    }
    if (is_local_id(c, id))
        c->n_local++;
    else
        c->n_remote++;
    return s;
}

/* ---------------- output ---------------- */

static int emit(struct h2conn *c, const uint8_t *p, size_t n)
{
    if (c->cb.send(c->arg, p, n) < 0) {
        c->dead = true;
        return MOM_ERR_IO;
    }
    return MOM_OK;
}

static int emit_hd(struct h2conn *c, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    uint8_t hd[H2FRAME_HDLEN];
    struct h2frame_hd h = {.length = len, .type = type, .flags = flags, .stream_id = sid};
    h2frame_pack_hd(hd, &h);
    return emit(c, hd, sizeof hd);
}

static int emit_rst(struct h2conn *c, uint32_t sid, uint32_t code)
{
    uint8_t buf[H2FRAME_HDLEN + 4];
    return emit(c, buf, h2frame_pack_rst_stream(buf, sid, code));
}

static int emit_window_update(struct h2conn *c, uint32_t sid, uint32_t inc)
{
    uint8_t buf[H2FRAME_HDLEN + 4];
    return emit(c, buf, h2frame_pack_window_update(buf, sid, inc));
}

static int emit_goaway(struct h2conn *c, uint32_t code, const char *debug)
{
    uint8_t buf[H2FRAME_HDLEN + 8 + GOAWAY_BUF];
    size_t dlen = debug ? strlen(debug) : 0;
    if (dlen > GOAWAY_BUF)
        dlen = GOAWAY_BUF;
    c->goaway_sent = true;
    c->goaway_sent_last = c->last_remote_id;
    return emit(c, buf, h2frame_pack_goaway(buf, c->last_remote_id, code, debug, dlen));
}

/* A connection error: GOAWAY with the code, then the connection is dead. */
static int conn_error(struct h2conn *c, uint32_t code, const char *debug)
{
    if (!c->dead)
        emit_goaway(c, code, debug);
    c->dead = true;
    c->last_error = code;
    return MOM_ERR_PROTOCOL;
}

/* An HPACK integer with an n-bit prefix (RFC 7541 §5.1) after the first
 * byte's high bits; returns the bytes written (at most 1 + 10). */
static size_t hpack_int(uint8_t *p, uint8_t high, unsigned nbits, size_t v)
{
    size_t max = (1u << nbits) - 1, k = 0;
    if (v < max) {
        p[k++] = (uint8_t)(high | v);
        return k;
    }
    p[k++] = (uint8_t)(high | max);
    for (v -= max; v >= 128; v >>= 7)
        p[k++] = (uint8_t)(v | 0x80);
    p[k++] = (uint8_t)v;
    return k;
}

/* Bytes a sensitive header takes as written by hpack_never_indexed. */
static size_t never_indexed_bound(const struct h2conn_header *h)
{
    return 1 + 11 + h->name_len + 11 + h->value_len;
}

/* A literal never indexed with a literal name, neither Huffman-coded
 * (RFC 7541 §6.2.3); returns the bytes written. */
static size_t hpack_never_indexed(uint8_t *p, const struct h2conn_header *h)
{
    size_t k = 0;
    p[k++] = 0x10;
    k += hpack_int(p + k, 0, 7, h->name_len);
    memcpy(p + k, h->name, h->name_len);
    k += h->name_len;
    k += hpack_int(p + k, 0, 7, h->value_len);
    memcpy(p + k, h->value, h->value_len);
    return k + h->value_len;
}

/* HPACK-encodes hdrs and sends HEADERS (+ CONTINUATION) on sid. Sensitive
 * headers (the peer token) follow the others as literals never indexed
 * written here without Huffman coding: nghttp2 Huffman-codes every literal,
 * which for a ~250-byte token cost ~7k instructions a call to encode and
 * ~4k to decode on the other side. They change no dynamic table, so the
 * deflater's state stays the one the peer's inflater has (a pending table
 * size update still leads the block: nghttp2 writes its part first). */
static int emit_header_block(struct h2conn *c, uint32_t sid, const struct h2conn_header *hdrs,
                             size_t n, bool end_stream)
{
    nghttp2_nv small[16] = {{0}};
    nghttp2_nv *nva = n <= 16 ? small : malloc(n * sizeof *nva);
    if (!nva)
        return MOM_ERR_NOMEM;
    size_t nn = 0, extra = 0;
    for (size_t i = 0; i < n; i++) {
        if (hdrs[i].sensitive) {
            extra += never_indexed_bound(&hdrs[i]);
            continue;
        }
        nva[nn].name = (uint8_t *)(uintptr_t)hdrs[i].name;
        nva[nn].namelen = hdrs[i].name_len;
        nva[nn].value = (uint8_t *)(uintptr_t)hdrs[i].value;
        nva[nn].valuelen = hdrs[i].value_len;
        nva[nn].flags = NGHTTP2_NV_FLAG_NONE;
        nn++;
    }
    size_t bound = nghttp2_hd_deflate_bound(c->deflater, nva, nn) + extra;
    if (bound > c->enc_cap) {
        uint8_t *ne = realloc(c->enc, bound);
        if (!ne) {
            if (nva != small)
                free(nva);
            return MOM_ERR_NOMEM;
        }
        c->enc = ne;
        c->enc_cap = bound;
    }
    ssize_t len = nghttp2_hd_deflate_hd(c->deflater, c->enc, c->enc_cap - extra, nva, nn);
    if (nva != small)
        free(nva);
    if (len < 0) { /* the deflater is unusable now: so is the connection */
        conn_error(c, H2_INTERNAL_ERROR, "hpack encode failed");
        return MOM_ERR_NOMEM;
    }
    for (size_t i = 0; extra && i < n; i++)
        if (hdrs[i].sensitive)
            len += (ssize_t)hpack_never_indexed(c->enc + len, &hdrs[i]);
    size_t total = (size_t)len, off = 0;
    uint8_t type = H2FRAME_HEADERS;
    do {
        size_t chunk = total - off;
        if (chunk > c->remote_max_frame)
            chunk = c->remote_max_frame;
        uint8_t flags = 0;
        if (type == H2FRAME_HEADERS && end_stream)
            flags |= H2FRAME_FLAG_END_STREAM;
        if (off + chunk == total)
            flags |= H2FRAME_FLAG_END_HEADERS;
        int rc = emit_hd(c, (uint32_t)chunk, type, flags, sid);
        if (rc == MOM_OK && chunk)
            rc = emit(c, c->enc + off, chunk);
        if (rc < 0)
            return rc;
        off += chunk;
        type = H2FRAME_CONTINUATION;
    } while (off < total);
    return MOM_OK;
}

static void after_end_sent(struct h2conn *c, struct h2stream *s);

/* Sends up to n bytes of p as DATA within the windows; returns the bytes
 * sent or a negative error. With end set and everything sent, the last
 * frame carries END_STREAM (an empty frame if n is 0). */
static ssize_t send_chunks(struct h2conn *c, struct h2stream *s, const uint8_t *p, size_t n,
                           bool end)
{
    size_t sent = 0;
    do {
        size_t chunk = h2conn_window_sendable(c->conn_send_window, s->send_window,
                                              c->remote_max_frame, n - sent);
        if (chunk == 0 && n - sent > 0)
            break;
        bool last = sent + chunk == n;
        uint8_t flags = last && end ? H2FRAME_FLAG_END_STREAM : 0;
        int rc = emit_hd(c, (uint32_t)chunk, H2FRAME_DATA, flags, s->id);
        if (rc == MOM_OK && chunk)
            rc = emit(c, p + sent, chunk);
        if (rc < 0)
            return rc;
        c->conn_send_window -= (int64_t)chunk;
        s->send_window -= (int64_t)chunk;
        sent += chunk;
        if (last && end)
            s->end_sent = true;
    } while (sent < n);
    return (ssize_t)sent;
}

static int pend_append(struct h2conn *c, struct h2stream *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return MOM_OK;
    if (s->pend_off > 0 && s->pend_off == s->pend_len)
        s->pend_off = s->pend_len = 0;
    if (s->pend_len + n > s->pend_cap) {
        if (s->pend_off > 0) { /* compact before growing */
            memmove(s->pend, s->pend + s->pend_off, s->pend_len - s->pend_off);
            s->pend_len -= s->pend_off;
            s->pend_off = 0;
        }
        uint8_t *np = grow_array(s->pend, &s->pend_cap, s->pend_len + n, 1, 4096);
        if (!np)
            return MOM_ERR_NOMEM;
        s->pend = np;
    }
    memcpy(s->pend + s->pend_len, p, n);
    s->pend_len += n;
    c->pending_bytes += n;
    pend_link(c, s);
    return MOM_OK;
}

/* Sends what the windows allow of a stream's pending DATA, then its
 * trailers once the DATA is out. May close the stream. */
static int stream_flush(struct h2conn *c, struct h2stream *s)
{
    size_t left = s->pend_len - s->pend_off;
    if (left > 0) {
        ssize_t sent =
            send_chunks(c, s, s->pend + s->pend_off, left, s->end_requested && !s->trailers);
        if (sent < 0)
            return (int)sent;
        s->pend_off += (size_t)sent;
        c->pending_bytes -= (size_t)sent;
        if ((size_t)sent < left)
            return MOM_OK;
    }
    free(s->pend);
    s->pend = NULL;
    s->pend_off = s->pend_len = s->pend_cap = 0;
    pend_unlink(c, s);
    if (s->trailers) {
        struct trailers *t = s->trailers;
        s->trailers = NULL;
        int rc = emit_header_block(c, s->id, t->h, t->n, true);
        free(t);
        if (rc < 0)
            return rc;
        s->end_sent = true;
    }
    if (s->end_sent)
        after_end_sent(c, s);
    return MOM_OK;
}

/* Tries every stream with pending output (after a window grew). */
static int flush_all(struct h2conn *c)
{
    struct h2stream *s = c->pend_head;
    while (s && c->conn_send_window > 0 && !c->dead) {
        struct h2stream *next = s->next;
        uint32_t next_id = next ? next->id : 0;
        int rc = stream_flush(c, s); /* may close s (and nothing else) */
        if (rc < 0)
            return rc;
        s = next_id ? stream_find(c, next_id) : NULL;
        if (next_id && !s) /* a callback closed it: start over (streams are finite) */
            s = c->pend_head;
    }
    return MOM_OK;
}

/* Our side is finished: close if theirs is too; a server that answered
 * before the whole request came asks the client to stop (RFC 9113 §8.1). */
static void after_end_sent(struct h2conn *c, struct h2stream *s)
{
    if (s->recv_closed) {
        stream_close(c, s, H2_NO_ERROR);
    } else if (c->role == H2CONN_SERVER) {
        emit_rst(c, s->id, H2_NO_ERROR);
        stream_close(c, s, H2_NO_ERROR);
    }
}

static int stream_reset(struct h2conn *c, struct h2stream *s, uint32_t code)
{
    int rc = emit_rst(c, s->id, code);
    stream_close(c, s, code);
    return rc;
}

/* ---------------- header blocks ---------------- */

enum hb_kind { HB_REQUEST, HB_RESPONSE, HB_TRAILERS };

static bool valid_name(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch <= 0x20 || ch >= 0x7f || (ch >= 'A' && ch <= 'Z') || (ch == ':' && i > 0))
            return false;
    }
    return true;
}

/* memchr scans a word or a vector at a time: a byte loop over the peer
 * token cost ~2k instructions a call. */
static bool valid_value(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (memchr(p, '\0', n) || memchr(p, '\r', n) || memchr(p, '\n', n))
        return false;
    if (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t')
        return false;
    return true;
}

static bool name_is(const struct h2conn_header *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(h->name, lit, n) == 0;
}

/* RFC 9113 §8.2-§8.3: true if the decoded block is well-formed for its kind. */
static bool block_well_formed(const struct h2conn_header *h, size_t n, enum hb_kind kind)
{
    enum {
        P_METHOD = 1,
        P_SCHEME = 2,
        P_PATH = 4,
        P_AUTHORITY = 8,
        P_STATUS = 16,
        P_PROTOCOL = 32
    };
    unsigned seen = 0;
    bool regular = false, connect = false;
    for (size_t i = 0; i < n; i++) {
        if (!valid_name(h[i].name, h[i].name_len) &&
            !(h[i].name_len > 1 && h[i].name[0] == ':' &&
              valid_name(h[i].name + 1, h[i].name_len - 1)))
            return false;
        if (!valid_value(h[i].value, h[i].value_len))
            return false;
        if (h[i].name[0] == ':') {
            unsigned bit = 0;
            if (regular || kind == HB_TRAILERS)
                return false;
            if (kind == HB_REQUEST) {
                if (name_is(&h[i], ":method")) {
                    bit = P_METHOD;
                    connect = h[i].value_len == 7 && memcmp(h[i].value, "CONNECT", 7) == 0;
                } else if (name_is(&h[i], ":scheme")) {
                    bit = P_SCHEME;
                } else if (name_is(&h[i], ":path")) {
                    bit = P_PATH;
                    if (h[i].value_len == 0)
                        return false;
                } else if (name_is(&h[i], ":authority")) {
                    bit = P_AUTHORITY;
                } else if (name_is(&h[i], ":protocol")) {
                    bit = P_PROTOCOL;
                }
            } else if (name_is(&h[i], ":status")) {
                bit = P_STATUS;
                if (h[i].value_len != 3)
                    return false;
            }
            if (bit == 0 || (seen & bit))
                return false;
            seen |= bit;
            continue;
        }
        regular = true;
        if (name_is(&h[i], "connection") || name_is(&h[i], "keep-alive") ||
            name_is(&h[i], "proxy-connection") || name_is(&h[i], "transfer-encoding") ||
            name_is(&h[i], "upgrade"))
            return false;
        if (name_is(&h[i], "te") &&
            !(h[i].value_len == 8 && memcmp(h[i].value, "trailers", 8) == 0))
            return false;
    }
    if (kind == HB_REQUEST) {
        if (!(seen & P_METHOD))
            return false;
        if (!connect && (seen & (P_SCHEME | P_PATH)) != (P_SCHEME | P_PATH))
            return false;
    } else if (kind == HB_RESPONSE && !(seen & P_STATUS)) {
        return false;
    }
    return true;
}

static int arena_add(struct h2conn *c, const uint8_t *p, size_t n, size_t *off)
{
    if (c->arena_len + n + 1 > c->arena_cap) {
        char *na = grow_array(c->arena, &c->arena_cap, c->arena_len + n + 1, 1, 1024);
        if (!na)
            return MOM_ERR_NOMEM;
        c->arena = na;
    }
    *off = c->arena_len;
    if (n)
        memcpy(c->arena + c->arena_len, p, n);
    c->arena[c->arena_len + n] = '\0';
    c->arena_len += n + 1;
    return MOM_OK;
}

/* Decodes the gathered block into c->hdrs. Returns the header count, or
 * MOM_ERR_PROTOCOL after a connection error (bad HPACK), MOM_ERR_NOMEM.
 * *too_large is set when the decoded list passed our limit. */
static ssize_t decode_block(struct h2conn *c, bool *too_large)
{
    size_t n = 0, list_size = 0;
    const uint8_t *in = c->hb;
    size_t inlen = c->hb_len;
    *too_large = false;
    c->arena_len = 0;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(c->inflater, &nv, &flags, in, inlen, 1);
        if (rv < 0)
            return conn_error(c, H2_COMPRESSION_ERROR, "hpack decode failed");
        if (rv > 0) { /* in is NULL for an empty block */
            in += rv;
            inlen -= (size_t)rv;
        }
        if (flags & NGHTTP2_HD_INFLATE_EMIT) {
            list_size += nv.namelen + nv.valuelen + 32;
            if (list_size > c->local.max_header_list)
                *too_large = true;
            if (!*too_large) {
                if (n == c->hdrs_cap) {
                    size_t cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
                    struct hdr_off *no = realloc(c->offs, cap * sizeof *no);
                    if (!no)
                        return MOM_ERR_NOMEM;
                    c->offs = no;
                    struct h2conn_header *nh = realloc(c->hdrs, cap * sizeof *nh);
                    if (!nh)
                        return MOM_ERR_NOMEM;
                    c->hdrs = nh;
                    c->hdrs_cap = cap;
                }
                struct hdr_off *o = &c->offs[n];
                if (arena_add(c, nv.name, nv.namelen, &o->name) < 0 ||
                    arena_add(c, nv.value, nv.valuelen, &o->value) < 0)
                    return MOM_ERR_NOMEM;
                o->name_len = nv.namelen;
                o->value_len = nv.valuelen;
                o->sensitive = (nv.flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0;
                n++;
            }
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(c->inflater);
            break;
        }
        if (rv == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
            return conn_error(c, H2_COMPRESSION_ERROR, "hpack decode stalled");
    }
    for (size_t i = 0; i < n; i++) {
        c->hdrs[i].name = c->arena + c->offs[i].name;
        c->hdrs[i].name_len = c->offs[i].name_len;
        c->hdrs[i].value = c->arena + c->offs[i].value;
        c->hdrs[i].value_len = c->offs[i].value_len;
        c->hdrs[i].sensitive = c->offs[i].sensitive;
    }
    return (ssize_t)n;
}

static int finish_header_block(struct h2conn *c)
{
    uint32_t sid = c->hb_stream;
    bool end_stream = c->hb_end_stream;
    bool too_large;
    c->hb_active = false;
    ssize_t nh = decode_block(c, &too_large);
    c->hb_len = 0;
    if (nh < 0)
        return (int)nh;
    size_t n = (size_t)nh;

    struct h2stream *s = stream_find(c, sid);
    if (!s) {
        if (!is_idle(c, sid))
            return MOM_OK; /* a stream closed already: ignore (HPACK state is kept) */
        if (is_local_id(c, sid) || c->role == H2CONN_CLIENT)
            return conn_error(c, H2_PROTOCOL_ERROR, "HEADERS on an idle stream");
        c->last_remote_id = sid;
        if (c->goaway_sent)
            return MOM_OK; /* opened after our GOAWAY: ignored */
        if (too_large)
            return emit_rst(c, sid, H2_REFUSED_STREAM);
        if (!block_well_formed(c->hdrs, n, HB_REQUEST))
            return emit_rst(c, sid, H2_PROTOCOL_ERROR);
        if (c->n_remote >= c->local.max_concurrent_streams)
            return emit_rst(c, sid, H2_REFUSED_STREAM);
        s = stream_new(c, sid);
        if (!s)
            return MOM_ERR_NOMEM;
        s->announced = true;
    } else {
        if (s->recv_closed)
            return stream_reset(c, s, H2_STREAM_CLOSED);
        enum hb_kind kind = s->headers_seen ? HB_TRAILERS : HB_RESPONSE;
        if (too_large || !block_well_formed(c->hdrs, n, kind) ||
            (kind == HB_TRAILERS && !end_stream))
            return stream_reset(c, s, H2_PROTOCOL_ERROR);
    }
    s->headers_seen = true;
    if (end_stream)
        s->recv_closed = true;
    if (c->cb.on_headers)
        c->cb.on_headers(c->arg, sid, s->user, c->hdrs, n, end_stream);
    s = stream_find(c, sid);
    if (s && s->recv_closed && s->end_sent)
        stream_close(c, s, H2_NO_ERROR);
    return c->dead ? MOM_ERR_PROTOCOL : MOM_OK;
}

static int hb_append(struct h2conn *c, const uint8_t *p, size_t n)
{
    if (c->hb_len + n > c->local.max_header_list)
        return conn_error(c, H2_ENHANCE_YOUR_CALM, "header block too large");
    if (c->hb_len + n > c->hb_cap) {
        uint8_t *nb = grow_array(c->hb, &c->hb_cap, c->hb_len + n, 1, 1024);
        if (!nb)
            return MOM_ERR_NOMEM;
        c->hb = nb;
    }
    if (n)
        memcpy(c->hb + c->hb_len, p, n);
    c->hb_len += n;
    return MOM_OK;
}

/* ---------------- frame handlers ---------------- */

static int replenish_conn(struct h2conn *c)
{
    if (c->conn_recv_unacked < c->local.conn_window / 2)
        return MOM_OK;
    uint32_t inc = c->conn_recv_unacked;
    c->conn_recv_unacked = 0;
    c->conn_recv_window += inc;
    return emit_window_update(c, 0, inc);
}

static int on_data_frame(struct h2conn *c, const struct h2frame *f)
{
    uint32_t sid = f->hd.stream_id;
    uint32_t flen = f->hd.length;
    if (h2conn_window_consume(&c->conn_recv_window, flen) < 0)
        return conn_error(c, H2_FLOW_CONTROL_ERROR, "connection window exceeded");
    c->conn_recv_unacked += flen;
    struct h2stream *s = stream_find(c, sid);
    if (!s) {
        if (is_idle(c, sid))
            return conn_error(c, H2_PROTOCOL_ERROR, "DATA on an idle stream");
        return replenish_conn(c); /* closed stream: drop, keep the window */
    }
    if (s->recv_closed || !s->headers_seen) {
        stream_reset(c, s, s->recv_closed ? H2_STREAM_CLOSED : H2_PROTOCOL_ERROR);
        return replenish_conn(c);
    }
    if (h2conn_window_consume(&s->recv_window, flen) < 0) {
        stream_reset(c, s, H2_FLOW_CONTROL_ERROR);
        return replenish_conn(c);
    }
    bool end = (f->hd.flags & H2FRAME_FLAG_END_STREAM) != 0;
    if (end)
        s->recv_closed = true;
    if (c->cb.on_data)
        c->cb.on_data(c->arg, sid, s->user, f->data, f->data_len, end);
    if (c->dead)
        return MOM_ERR_PROTOCOL;
    s = stream_find(c, sid);
    if (s && !s->recv_closed) {
        s->recv_unacked += flen;
        if (s->recv_unacked >= c->local.initial_window / 2) {
            uint32_t inc = s->recv_unacked;
            s->recv_unacked = 0;
            s->recv_window += inc;
            int rc = emit_window_update(c, sid, inc);
            if (rc < 0)
                return rc;
        }
    }
    int rc = replenish_conn(c);
    if (rc < 0)
        return rc;
    if (s && s->recv_closed && s->end_sent)
        stream_close(c, s, H2_NO_ERROR);
    return MOM_OK;
}

static int on_headers_frame(struct h2conn *c, const struct h2frame *f)
{
    c->hb_active = true;
    c->hb_stream = f->hd.stream_id;
    c->hb_end_stream = (f->hd.flags & H2FRAME_FLAG_END_STREAM) != 0;
    c->hb_len = 0;
    int rc = hb_append(c, f->data, f->data_len);
    if (rc < 0)
        return rc;
    if (f->hd.flags & H2FRAME_FLAG_END_HEADERS)
        return finish_header_block(c);
    return MOM_OK;
}

static int on_settings_frame(struct h2conn *c, const struct h2frame *f)
{
    if (f->hd.flags & H2FRAME_FLAG_ACK) {
        c->local_settings_acked = true;
        return MOM_OK;
    }
    bool grew = false;
    for (size_t i = 0; i < f->n_settings; i++) {
        struct h2frame_setting st = h2frame_setting_at(f, i);
        switch (st.id) {
        case H2_SETTINGS_HEADER_TABLE_SIZE:
            if (nghttp2_hd_deflate_change_table_size(
                    c->deflater, st.value < HPACK_TABLE_MAX ? st.value : HPACK_TABLE_MAX) != 0)
                return conn_error(c, H2_INTERNAL_ERROR, "hpack table resize failed");
            break;
        case H2_SETTINGS_MAX_CONCURRENT_STREAMS: c->remote_max_streams = st.value; break;
        case H2_SETTINGS_INITIAL_WINDOW_SIZE:
            for (size_t k = 0; k < c->cap; k++) {
                struct h2stream *s = c->slots[k];
                if (s &&
                    h2conn_window_rebase(&s->send_window, c->remote_initial_window, st.value) < 0)
                    return conn_error(c, H2_FLOW_CONTROL_ERROR, "stream window overflow");
            }
            grew = grew || st.value > c->remote_initial_window;
            c->remote_initial_window = st.value;
            break;
        case H2_SETTINGS_MAX_FRAME_SIZE: c->remote_max_frame = st.value; break;
        default: break;
        }
    }
    uint8_t ack[H2FRAME_HDLEN];
    int rc = emit(c, ack, h2frame_pack_settings(ack, NULL, 0, true));
    if (rc < 0)
        return rc;
    c->remote_settings_seen = true;
    if (grew && (rc = flush_all(c)) < 0)
        return rc;
    if (c->cb.on_settings)
        c->cb.on_settings(c->arg);
    return MOM_OK;
}

static int on_goaway_frame(struct h2conn *c, const struct h2frame *f)
{
    c->goaway_received = true;
    /* Close our streams the peer never processed, newest first. */
    uint32_t *ids = NULL;
    size_t n = 0;
    if (c->n_local > 0) {
        ids = malloc(c->n_local * sizeof *ids);
        if (!ids)
            return MOM_ERR_NOMEM;
        for (size_t k = 0; k < c->cap; k++) {
            struct h2stream *s = c->slots[k];
            if (s && is_local_id(c, s->id) && s->id > f->last_stream_id)
                ids[n++] = s->id;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct h2stream *s = stream_find(c, ids[i]);
        if (s)
            stream_close(c, s, H2_REFUSED_STREAM);
    }
    free(ids);
    if (c->cb.on_goaway)
        c->cb.on_goaway(c->arg, f->last_stream_id, f->error_code);
    return MOM_OK;
}

static int on_window_update_frame(struct h2conn *c, const struct h2frame *f)
{
    uint32_t sid = f->hd.stream_id;
    if (sid == 0) {
        if (h2conn_window_update(&c->conn_send_window, f->window_increment) < 0)
            return conn_error(c, H2_FLOW_CONTROL_ERROR, "connection window overflow");
        return flush_all(c);
    }
    struct h2stream *s = stream_find(c, sid);
    if (!s) {
        if (is_idle(c, sid))
            return conn_error(c, H2_PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
        return MOM_OK;
    }
    if (f->window_increment == 0)
        return stream_reset(c, s, H2_PROTOCOL_ERROR);
    if (h2conn_window_update(&s->send_window, f->window_increment) < 0)
        return stream_reset(c, s, H2_FLOW_CONTROL_ERROR);
    if (s->listed)
        return stream_flush(c, s);
    return MOM_OK;
}

static int process_frame(struct h2conn *c, const struct h2frame *f)
{
    const struct h2frame_hd *hd = &f->hd;
    if (c->hb_active && (hd->type != H2FRAME_CONTINUATION || hd->stream_id != c->hb_stream))
        return conn_error(c, H2_PROTOCOL_ERROR, "expected CONTINUATION");
    if (!c->first_frame_seen) {
        if (hd->type != H2FRAME_SETTINGS || (hd->flags & H2FRAME_FLAG_ACK))
            return conn_error(c, H2_PROTOCOL_ERROR, "first frame must be SETTINGS");
        c->first_frame_seen = true;
    }
    switch (hd->type) {
    case H2FRAME_DATA: return on_data_frame(c, f);
    case H2FRAME_HEADERS: return on_headers_frame(c, f);
    case H2FRAME_PRIORITY: return MOM_OK;
    case H2FRAME_RST_STREAM: {
        struct h2stream *s = stream_find(c, hd->stream_id);
        if (s)
            stream_close(c, s, f->error_code);
        else if (is_idle(c, hd->stream_id))
            return conn_error(c, H2_PROTOCOL_ERROR, "RST_STREAM on an idle stream");
        return MOM_OK;
    }
    case H2FRAME_SETTINGS: return on_settings_frame(c, f);
    case H2FRAME_PUSH_PROMISE: return conn_error(c, H2_PROTOCOL_ERROR, "PUSH_PROMISE not enabled");
    case H2FRAME_PING:
        if (hd->flags & H2FRAME_FLAG_ACK) {
            if (c->cb.on_ping_ack)
                c->cb.on_ping_ack(c->arg, f->ping);
            return MOM_OK;
        } else {
            uint8_t buf[H2FRAME_HDLEN + H2FRAME_PING_LEN];
            return emit(c, buf, h2frame_pack_ping(buf, f->ping, true));
        }
    case H2FRAME_GOAWAY: return on_goaway_frame(c, f);
    case H2FRAME_WINDOW_UPDATE: return on_window_update_frame(c, f);
    case H2FRAME_CONTINUATION: {
        if (!c->hb_active)
            return conn_error(c, H2_PROTOCOL_ERROR, "unexpected CONTINUATION");
        int rc = hb_append(c, f->data, f->data_len);
        if (rc < 0)
            return rc;
        if (hd->flags & H2FRAME_FLAG_END_HEADERS)
            return finish_header_block(c);
        return MOM_OK;
    }
    default: return MOM_OK;
    }
}

/* Decodes and handles one whole frame at p; returns bytes used or an error. */
static int take_frame(struct h2conn *c, const uint8_t *p, size_t n)
{
    struct h2frame f;
    uint32_t err = 0;
    int used = h2frame_decode(p, n, c->local.max_frame_size, &f, &err);
    if (used == MOM_ERR_NEED_MORE)
        return used;
    if (used < 0) {
        char why[64];
        const char *name = h2frame_type_name(p[3]);
        size_t len = strlen(name);
        memcpy(why, name, len);
        memcpy(why + len, " frame malformed", sizeof " frame malformed");
        return conn_error(c, err, why);
    }
    int rc = process_frame(c, &f);
    return rc < 0 ? rc : used;
}

int h2conn_recv(struct h2conn *c, const uint8_t *data, size_t len, uint32_t *h2_error)
{
    if (h2_error)
        *h2_error = H2_NO_ERROR;
    if (c->dead)
        return MOM_ERR_CLOSED;
    int rc = MOM_OK;
    if (c->role == H2CONN_SERVER && c->preface_seen < H2FRAME_PREFACE_LEN) {
        size_t take = H2FRAME_PREFACE_LEN - c->preface_seen;
        if (take > len)
            take = len;
        if (memcmp(data, &H2FRAME_PREFACE[c->preface_seen], take) != 0) {
            rc = conn_error(c, H2_PROTOCOL_ERROR, "bad connection preface");
            goto out;
        }
        c->preface_seen += take;
        data += take;
        len -= take;
    }
    /* finish a frame split across calls */
    while (len > 0 && c->ibuf_len > 0) {
        size_t need = H2FRAME_HDLEN;
        if (c->ibuf_len >= H2FRAME_HDLEN) {
            struct h2frame_hd hd;
            h2frame_decode_hd(c->ibuf, c->ibuf_len, &hd);
            need += hd.length;
        }
        size_t take = need - c->ibuf_len;
        if (take > len)
            take = len;
        memcpy(c->ibuf + c->ibuf_len, data, take);
        c->ibuf_len += take;
        data += take;
        len -= take;
        if (c->ibuf_len == H2FRAME_HDLEN) {
            struct h2frame_hd hd;
            h2frame_decode_hd(c->ibuf, c->ibuf_len, &hd);
            if (hd.length > c->local.max_frame_size) {
                rc =
                    conn_error(c, H2_FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
                goto out;
            }
            if (hd.length > 0)
                continue;
        }
        if (c->ibuf_len < need)
            break;
        int used = take_frame(c, c->ibuf, c->ibuf_len);
        c->ibuf_len = 0;
        if (used < 0) {
            rc = used;
            goto out;
        }
    }
    while (len > 0) {
        int used = take_frame(c, data, len);
        if (used == MOM_ERR_NEED_MORE) {
            memcpy(c->ibuf, data, len); /* less than one frame: fits */
            c->ibuf_len = len;
            break;
        }
        if (used < 0) {
            rc = used;
            goto out;
        }
        data += used;
        len -= (size_t)used;
    }
out:
    if (rc == MOM_OK && c->dead)
        rc = MOM_ERR_PROTOCOL;
    if (h2_error)
        *h2_error = c->last_error;
    return rc;
}

/* ---------------- public submit API ---------------- */

int h2conn_submit_request(struct h2conn *c, const struct h2conn_header *hdrs, size_t n,
                          bool end_stream, void *stream_user, uint32_t *stream_id)
{
    if (c->dead || c->goaway_received || c->goaway_sent || c->next_local_id > H2FRAME_MAX_STREAM_ID)
        return MOM_ERR_CLOSED;
    if (c->n_local >= c->remote_max_streams)
        return MOM_ERR_UNAVAILABLE;
    uint32_t sid = c->next_local_id;
    struct h2stream *s = stream_new(c, sid);
    if (!s)
        return MOM_ERR_NOMEM;
    c->next_local_id += 2;
    s->announced = true;
    s->user = stream_user;
    int rc = emit_header_block(c, sid, hdrs, n, end_stream);
    if (rc < 0)
        return rc;
    if (end_stream)
        s->end_requested = s->end_sent = true;
    *stream_id = sid;
    return MOM_OK;
}

int h2conn_submit_headers(struct h2conn *c, uint32_t stream_id, const struct h2conn_header *hdrs,
                          size_t n, bool end_stream)
{
    if (c->dead)
        return MOM_ERR_CLOSED;
    struct h2stream *s = stream_find(c, stream_id);
    if (!s)
        return MOM_ERR_NOTFOUND;
    if (s->end_requested)
        return MOM_ERR_INVALID;
    if (s->listed) { /* DATA still waiting: trailers queue behind it */
        if (!end_stream)
            return MOM_ERR_INVALID;
        size_t bytes = sizeof(struct trailers) + n * sizeof(struct h2conn_header);
        for (size_t i = 0; i < n; i++)
            bytes += hdrs[i].name_len + hdrs[i].value_len;
        struct trailers *t = malloc(bytes);
        if (!t)
            return MOM_ERR_NOMEM;
        t->n = n;
        char *p = (char *)&t->h[n];
        for (size_t i = 0; i < n; i++) {
            t->h[i] = hdrs[i];
            memcpy(p, hdrs[i].name, hdrs[i].name_len);
            t->h[i].name = p;
            p += hdrs[i].name_len;
            memcpy(p, hdrs[i].value, hdrs[i].value_len);
            t->h[i].value = p;
            p += hdrs[i].value_len;
        }
        s->trailers = t;
        s->end_requested = true;
        return MOM_OK;
    }
    int rc = emit_header_block(c, stream_id, hdrs, n, end_stream);
    if (rc < 0)
        return rc;
    if (end_stream) {
        s->end_requested = s->end_sent = true;
        after_end_sent(c, s);
    }
    return MOM_OK;
}

int h2conn_submit_data(struct h2conn *c, uint32_t stream_id, const uint8_t *data, size_t len,
                       bool end_stream)
{
    if (c->dead)
        return MOM_ERR_CLOSED;
    struct h2stream *s = stream_find(c, stream_id);
    if (!s)
        return MOM_ERR_NOTFOUND;
    if (s->end_requested)
        return MOM_ERR_INVALID;
    if (len == 0 && !end_stream)
        return MOM_OK;
    if (end_stream)
        s->end_requested = true;
    if (s->listed) /* keep order behind what is already waiting */
        return pend_append(c, s, data, len);
    ssize_t sent = send_chunks(c, s, data, len, end_stream);
    if (sent < 0)
        return (int)sent;
    if ((size_t)sent < len)
        return pend_append(c, s, data + sent, len - (size_t)sent);
    if (s->end_sent)
        after_end_sent(c, s);
    return MOM_OK;
}

int h2conn_reset_stream(struct h2conn *c, uint32_t stream_id, uint32_t h2_error)
{
    struct h2stream *s = stream_find(c, stream_id);
    if (!s)
        return MOM_ERR_NOTFOUND;
    if (c->dead) {
        stream_close(c, s, h2_error);
        return MOM_OK;
    }
    return stream_reset(c, s, h2_error);
}

int h2conn_ping(struct h2conn *c, const uint8_t data[8])
{
    if (c->dead)
        return MOM_ERR_CLOSED;
    uint8_t buf[H2FRAME_HDLEN + H2FRAME_PING_LEN];
    return emit(c, buf, h2frame_pack_ping(buf, data, false));
}

int h2conn_goaway(struct h2conn *c, uint32_t h2_error, const char *debug)
{
    if (c->dead)
        return MOM_ERR_CLOSED;
    int rc = emit_goaway(c, h2_error, debug);
    if (h2_error != H2_NO_ERROR) {
        c->dead = true;
        c->last_error = h2_error;
    }
    return rc;
}

void h2conn_stream_set_user(struct h2conn *c, uint32_t stream_id, void *user)
{
    struct h2stream *s = stream_find(c, stream_id);
    if (s)
        s->user = user;
}

void *h2conn_stream_user(const struct h2conn *c, uint32_t stream_id)
{
    struct h2stream *s = stream_find(c, stream_id);
    return s ? s->user : NULL;
}

bool h2conn_is_dead(const struct h2conn *c)
{
    return c->dead;
}
bool h2conn_goaway_received(const struct h2conn *c)
{
    return c->goaway_received;
}
bool h2conn_goaway_sent(const struct h2conn *c)
{
    return c->goaway_sent;
}
bool h2conn_remote_settings_seen(const struct h2conn *c)
{
    return c->remote_settings_seen;
}
bool h2conn_local_settings_acked(const struct h2conn *c)
{
    return c->local_settings_acked;
}
size_t h2conn_open_streams(const struct h2conn *c)
{
    return c->count;
}
size_t h2conn_pending_bytes(const struct h2conn *c)
{
    return c->pending_bytes;
}

bool h2conn_can_open(const struct h2conn *c)
{
    return !c->dead && !c->goaway_received && !c->goaway_sent &&
           c->next_local_id <= H2FRAME_MAX_STREAM_ID && c->n_local < c->remote_max_streams;
}

bool h2conn_exhausted(const struct h2conn *c)
{
    return c->dead || c->goaway_received || c->goaway_sent ||
           c->next_local_id > H2FRAME_MAX_STREAM_ID;
}

bool h2conn_check_invariants(const struct h2conn *c)
{
    size_t count = 0, local = 0, pending = 0, listed = 0;
    for (size_t k = 0; k < c->cap; k++) {
        const struct h2stream *s = c->slots[k];
        if (!s)
            continue;
        count++;
        if (is_local_id(c, s->id))
            local++;
        if (stream_find(c, s->id) != s)
            return false;
        if (s->send_window > (int64_t)H2FRAME_MAX_WINDOW || s->recv_window < 0 ||
            s->recv_window > (int64_t)H2FRAME_MAX_WINDOW)
            return false;
        bool has_out = s->pend_len > s->pend_off || s->trailers;
        if (has_out != s->listed)
            return false;
        pending += s->pend_len - s->pend_off;
        if (s->listed)
            listed++;
        if (s->end_sent && s->recv_closed)
            return false; /* should have been closed */
    }
    size_t walk = 0;
    for (const struct h2stream *s = c->pend_head; s; s = s->next)
        walk++;
    return count == c->count && local == c->n_local && count - local == c->n_remote &&
           pending == c->pending_bytes && walk == listed && c->conn_recv_window >= 0 &&
           c->conn_send_window <= (int64_t)H2FRAME_MAX_WINDOW;
}

/* ---------------- lifecycle ---------------- */

static uint32_t or_default(uint32_t v, uint32_t def)
{
    return v ? v : def;
}

int h2conn_new(enum h2conn_role role, const struct h2conn_settings *settings,
               const struct h2conn_callbacks *cb, void *arg, struct h2conn **out)
{
    *out = NULL;
    struct h2conn *c = calloc(1, sizeof *c);
    if (!c)
        return MOM_ERR_NOMEM;
    struct h2conn_settings zero = {0};
    const struct h2conn_settings *s = settings ? settings : &zero;
    c->role = role;
    c->cb = *cb;
    c->arg = arg;
    c->local.max_concurrent_streams =
        or_default(s->max_concurrent_streams, H2CONN_DEFAULT_MAX_STREAMS);
    c->local.initial_window = or_default(s->initial_window, H2CONN_DEFAULT_WINDOW);
    c->local.conn_window = or_default(s->conn_window, H2CONN_DEFAULT_CONN_WINDOW);
    c->local.max_frame_size = or_default(s->max_frame_size, H2CONN_DEFAULT_MAX_FRAME);
    c->local.max_header_list = or_default(s->max_header_list, H2CONN_DEFAULT_MAX_HEADER_LIST);
    if (c->local.initial_window > H2FRAME_MAX_WINDOW)
        c->local.initial_window = H2FRAME_MAX_WINDOW;
    if (c->local.conn_window > H2FRAME_MAX_WINDOW)
        c->local.conn_window = H2FRAME_MAX_WINDOW;
    if (c->local.conn_window < H2FRAME_DEFAULT_WINDOW)
        c->local.conn_window = H2FRAME_DEFAULT_WINDOW;
    if (c->local.max_frame_size < H2FRAME_MIN_MAX_FRAME_SIZE)
        c->local.max_frame_size = H2FRAME_MIN_MAX_FRAME_SIZE;
    if (c->local.max_frame_size > H2FRAME_MAX_MAX_FRAME_SIZE)
        c->local.max_frame_size = H2FRAME_MAX_MAX_FRAME_SIZE;
    c->remote_max_streams = UINT32_MAX;
    c->remote_initial_window = H2FRAME_DEFAULT_WINDOW;
    c->remote_max_frame = H2FRAME_MIN_MAX_FRAME_SIZE;
    c->conn_send_window = H2FRAME_DEFAULT_WINDOW;
    c->conn_recv_window = c->local.conn_window;
    c->next_local_id = role == H2CONN_CLIENT ? 1 : 2;
    c->ibuf_cap = H2FRAME_HDLEN + c->local.max_frame_size;
    c->ibuf = malloc(c->ibuf_cap);
    if (!c->ibuf || nghttp2_hd_deflate_new(&c->deflater, HPACK_TABLE_MAX) != 0 ||
        nghttp2_hd_inflate_new(&c->inflater) != 0) {
        h2conn_free(c);
        return MOM_ERR_NOMEM;
    }
    int rc = MOM_OK;
    if (role == H2CONN_CLIENT)
        rc = emit(c, (const uint8_t *)H2FRAME_PREFACE, H2FRAME_PREFACE_LEN);
    struct h2frame_setting set[5];
    size_t n = 0;
    if (role == H2CONN_CLIENT)
        set[n++] = (struct h2frame_setting){H2_SETTINGS_ENABLE_PUSH, 0};
    set[n++] = (struct h2frame_setting){H2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                        c->local.max_concurrent_streams};
    set[n++] = (struct h2frame_setting){H2_SETTINGS_INITIAL_WINDOW_SIZE, c->local.initial_window};
    set[n++] = (struct h2frame_setting){H2_SETTINGS_MAX_FRAME_SIZE, c->local.max_frame_size};
    set[n++] = (struct h2frame_setting){H2_SETTINGS_MAX_HEADER_LIST_SIZE, c->local.max_header_list};
    uint8_t buf[H2FRAME_HDLEN + 5 * H2FRAME_SETTING_LEN];
    if (rc == MOM_OK)
        rc = emit(c, buf, h2frame_pack_settings(buf, set, n, false));
    if (rc == MOM_OK && c->local.conn_window > H2FRAME_DEFAULT_WINDOW)
        rc = emit_window_update(c, 0, c->local.conn_window - H2FRAME_DEFAULT_WINDOW);
    if (rc < 0) {
        h2conn_free(c);
        return rc;
    }
    *out = c;
    return MOM_OK;
}

void h2conn_free(struct h2conn *c)
{
    if (!c)
        return;
    for (size_t k = 0; k < c->cap; k++)
        if (c->slots[k])
            stream_destroy(c->slots[k]);
    free(c->slots);
    free(c->hb);
    free(c->offs);
    free(c->hdrs);
    free(c->arena);
    free(c->ibuf);
    free(c->enc);
    if (c->deflater)
        nghttp2_hd_deflate_del(c->deflater);
    if (c->inflater)
        nghttp2_hd_inflate_del(c->inflater);
    free(c);
}
