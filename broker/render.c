/* Every JSON answer of the API and the text building under them (see
 * render.h). The answer shapes read the store's structs (store_internal.h)
 * and the node's status (node.h) but never change them. Base64 is OpenSSL's EVP_EncodeBlock; UTF-8
 * validation follows RFC 3629's table.
 * SPDX-License-Identifier: MIT */
#include "broker/render.h"

#include "broker/store_internal.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"
#include "replication/node.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(struct jbuf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void jbuf_cleanup(struct jbuf *b)
{
    free(b->p);
    jbuf_init(b);
}

/* Makes room for n more bytes plus a NUL; false on failure. */
static bool reserve(struct jbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    char *p = n < SIZE_MAX - b->len ? grow_array(b->p, &b->cap, b->len + n + 1, 1, 256) : NULL;
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    return true;
}

void jbuf_raw(struct jbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jbuf_lit(struct jbuf *b, const char *s)
{
    jbuf_raw(b, s, strlen(s));
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

void jbuf_str(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!reserve(b, n + 2))
        return;
    /* Text that is not UTF-8 (a header byte, a foreign token's subject)
     * must not break the JSON: its bytes >= 0x80 are escaped as Latin-1. */
    bool latin1 = !render_utf8_valid((const uint8_t *)s, n);
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape(c) && !(latin1 && c >= 0x80))
            continue;
        jbuf_raw(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        jbuf_raw(b, esc, elen);
    }
    jbuf_raw(b, s + run, n - run);
    jbuf_raw(b, "\"", 1);
}

void jbuf_cstr(struct jbuf *b, const char *s)
{
    if (s)
        jbuf_str(b, s, strlen(s));
    else
        jbuf_lit(b, "null");
}

void jbuf_u64(struct jbuf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jbuf_raw(b, tmp + i, sizeof tmp - i);
}

void jbuf_hex(struct jbuf *b, uint64_t v, int width)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    while (i > 0 && (int)(sizeof tmp - i) < width)
        tmp[--i] = '0';
    jbuf_raw(b, tmp + i, sizeof tmp - i);
}

void jbuf_time(struct jbuf *b, uint64_t ms)
{
    /* Messages listed together, and consecutive replies, mostly share a
     * second: format the date once per second (gmtime_r and snprintf cost
     * ~3.7k instructions, most of a receive's rendering when the cache was
     * per reply) and only the milliseconds each time. Thread-local, so
     * that rendering stays safe from any thread. */
    static _Thread_local uint64_t cached_sec = UINT64_MAX;
    static _Thread_local char cached_text[20];
    uint64_t sec = ms / 1000u;
    if (cached_sec != sec) {
        char t[25];
        clock_format_rfc3339(sec * 1000u, t);
        memcpy(cached_text, t, 19);
        cached_text[19] = '\0';
        cached_sec = sec;
    }
    unsigned milli = (unsigned)(ms % 1000u);
    char tail[7] = {'.',
                    (char)('0' + milli / 100),
                    (char)('0' + milli / 10 % 10),
                    (char)('0' + milli % 10),
                    'Z',
                    '"',
                    0};
    jbuf_raw(b, "\"", 1);
    jbuf_raw(b, cached_text, 19);
    jbuf_raw(b, tail, 6);
}

bool render_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (len - i <= need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

void jbuf_body(struct jbuf *b, const uint8_t *body, size_t len)
{
    jbuf_lit(b, "\"body\":");
    if (len == 0)
        body = (const uint8_t *)"";
    if (render_utf8_valid(body, len)) {
        jbuf_str(b, (const char *)body, len);
        jbuf_lit(b, ",\"encoding\":\"utf-8\"");
        return;
    }
    /* EVP_EncodeBlock takes an int length: encode in chunks of 3 * 2^20. */
    size_t out_len = 4 * ((len + 2) / 3);
    if (!reserve(b, out_len + 2))
        return;
    b->p[b->len++] = '"';
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done;
        if (chunk > 3u << 20)
            chunk = 3u << 20;
        int n = EVP_EncodeBlock((unsigned char *)b->p + b->len, body + done, (int)chunk);
        b->len += (size_t)n;
        done += chunk;
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
    jbuf_lit(b, ",\"encoding\":\"base64\"");
}

int jbuf_finish(struct jbuf *b, struct reply *r, int status)
{
    if (b->oom) {
        jbuf_cleanup(b);
        return MOM_ERR_NOMEM;
    }
    if (r)
        reply_set(r, status, b->p, b->len);
    else
        free(b->p);
    jbuf_init(b);
    return MOM_OK;
}

/* ---- answer shapes ---- */

/* Hands b to r with status; on allocation failure r gets the 503 answer. */
static int finish(struct jbuf *b, struct reply *r, int status)
{
    if (jbuf_finish(b, r, status) == MOM_OK)
        return MOM_OK;
    render_error(r, API_ERR_UNAVAILABLE, "out of memory");
    return MOM_ERR_NOMEM;
}

void render_error(struct reply *r, enum api_error e, const char *fmt, ...)
{
    if (!r)
        return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"error\":{\"code\":");
    jbuf_cstr(&b, api_error_code(e));
    jbuf_lit(&b, ",\"message\":");
    jbuf_cstr(&b, message);
    jbuf_lit(&b, "}}");
    if (jbuf_finish(&b, r, api_error_status(e)) != MOM_OK)
        reply_set(r, api_error_status(e), NULL, 0); /* the status still tells */
}

void render_no_content(struct reply *r)
{
    if (r)
        reply_set(r, 204, NULL, 0);
}

static void render_id(struct jbuf *b, uint64_t id)
{
    jbuf_raw(b, "\"", 1);
    jbuf_hex(b, id, 16);
    jbuf_raw(b, "\"", 1);
}

/* A batch's lists, written in place into room reserved once: ids are
 * "%016x" of consecutive values and sequence numbers consecutive decimals
 * (the text of one is the previous one's plus one, carried by hand). The
 * same text jbuf_hex and jbuf_u64 write, at a few instructions a byte. */
static void render_batch_lists(struct jbuf *b, bool queue, uint64_t index, size_t n, uint64_t first)
{
    static const char hex[] = "0123456789abcdef";
    const char *seqs = queue ? "],\"seqs\":[" : "],\"offsets\":[";
    size_t seqs_len = strlen(seqs);
    /* "ids" items: 18 bytes and a comma; sequence numbers: at most 20
     * digits and a comma */
    if (!reserve(b, 8 + n * 19 + seqs_len + n * 21 + 2))
        return;
    char *p = b->p + b->len;
    memcpy(p, "{\"ids\":[", 8);
    p += 8;
    /* ids of one entry are consecutive (store_message_id): the text of
     * one is the previous one's plus one */
    char id[16];
    uint64_t v = store_message_id(index, 0);
    for (int k = 15; k >= 0; k--) {
        id[k] = hex[v & 15];
        v >>= 4;
    }
    for (size_t i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
            int k = 15;
            while (id[k] == 'f')
                id[k--] = '0';
            id[k] = id[k] == '9' ? 'a' : (char)(id[k] + 1);
        }
        *p++ = '"';
        memcpy(p, id, 16);
        p += 16;
        *p++ = '"';
    }
    memcpy(p, seqs, seqs_len);
    p += seqs_len;
    char dig[20];
    size_t start = sizeof dig;
    v = first;
    do {
        dig[--start] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
            size_t k = sizeof dig; /* + 1 (the caller saw that it does not wrap) */
            while (k > start && dig[k - 1] == '9')
                dig[--k] = '0';
            if (k > start)
                dig[k - 1]++;
            else
                dig[--start] = '1';
        }
        memcpy(p, dig + start, sizeof dig - start);
        p += sizeof dig - start;
    }
    memcpy(p, "]}", 2);
    p += 2;
    b->len = (size_t)(p - b->p);
    b->p[b->len] = '\0';
}

int render_publish_ack(struct reply *r, bool queue, bool batch, uint64_t index, size_t n,
                       uint64_t first)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    if (!batch && n == 1) {
        jbuf_lit(&b, "{\"id\":");
        render_id(&b, store_message_id(index, 0));
        jbuf_lit(&b, queue ? ",\"seq\":" : ",\"offset\":");
        jbuf_u64(&b, first);
        jbuf_lit(&b, "}");
    } else if (n && n <= 1024 && first <= UINT64_MAX - (n - 1)) {
        render_batch_lists(&b, queue, index, n, first);
    } else { /* n == 0, ids that are not consecutive, sequence numbers that wrap */
        jbuf_lit(&b, "{\"ids\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                jbuf_lit(&b, ",");
            render_id(&b, store_message_id(index, i));
        }
        jbuf_lit(&b, queue ? "],\"seqs\":[" : "],\"offsets\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                jbuf_lit(&b, ",");
            jbuf_u64(&b, first + i);
        }
        jbuf_lit(&b, "]}");
    }
    return finish(&b, r, 201);
}

static void render_queue(struct jbuf *b, const struct queue *q)
{
    size_t stored = queue_stored(q);
    jbuf_lit(b, "{\"name\":");
    jbuf_cstr(b, q->res.name);
    jbuf_lit(b, ",\"owner\":");
    jbuf_cstr(b, q->res.owner);
    jbuf_lit(b, ",\"created_at\":");
    jbuf_time(b, q->res.created_at);
    jbuf_lit(b, ",\"depth\":");
    jbuf_u64(b, stored - q->leased.len);
    jbuf_lit(b, ",\"in_flight\":");
    jbuf_u64(b, q->leased.len);
    jbuf_lit(b, ",\"delayed\":");
    jbuf_u64(b, q->delayed.len);
    jbuf_lit(b, ",\"visibility_timeout_ms\":");
    jbuf_u64(b, q->visibility_timeout_ms);
    jbuf_lit(b, ",\"max_deliveries\":");
    jbuf_u64(b, q->max_deliveries);
    jbuf_lit(b, ",\"dead_letter_queue\":");
    jbuf_cstr(b, q->dead_letter_queue);
    jbuf_lit(b, ",\"max_length\":");
    jbuf_u64(b, q->max_length);
    jbuf_lit(b, ",\"message_ttl_ms\":");
    jbuf_u64(b, q->message_ttl_ms);
    jbuf_lit(b, q->res.private_access ? ",\"access\":\"private\"}" : ",\"access\":\"public\"}");
}

static void render_topic(struct jbuf *b, const struct topic *t)
{
    jbuf_lit(b, "{\"name\":");
    jbuf_cstr(b, t->res.name);
    jbuf_lit(b, ",\"owner\":");
    jbuf_cstr(b, t->res.owner);
    jbuf_lit(b, ",\"created_at\":");
    jbuf_time(b, t->res.created_at);
    jbuf_lit(b, ",\"first_offset\":");
    jbuf_u64(b, t->first_offset);
    jbuf_lit(b, ",\"next_offset\":");
    jbuf_u64(b, topic_next_offset(t));
    jbuf_lit(b, ",\"messages\":");
    jbuf_u64(b, t->count);
    jbuf_lit(b, ",\"bytes\":");
    jbuf_u64(b, t->bytes);
    jbuf_lit(b, ",\"retention_ms\":");
    jbuf_u64(b, t->retention_ms);
    jbuf_lit(b, ",\"retention_messages\":");
    jbuf_u64(b, t->retention_messages);
    jbuf_lit(b, ",\"retention_bytes\":");
    jbuf_u64(b, t->retention_bytes);
    jbuf_lit(b, t->res.private_access ? ",\"access\":\"private\"" : ",\"access\":\"public\"");
    jbuf_lit(b, ",\"subscriptions\":[");
    size_t n;
    bool oom;
    struct subscription **subs = topic_sorted_subs(t, &n, &oom);
    if (oom)
        b->oom = true;
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_lit(b, ",");
        jbuf_cstr(b, subs[i]->name);
    }
    free(subs);
    jbuf_lit(b, "]}");
}

static void render_subscription(struct jbuf *b, const struct topic *t,
                                const struct subscription *sub)
{
    uint64_t cursor = subscription_cursor(t, sub);
    jbuf_lit(b, "{\"name\":");
    jbuf_cstr(b, sub->name);
    jbuf_lit(b, ",\"topic\":");
    jbuf_cstr(b, t->res.name);
    jbuf_lit(b, ",\"owner\":");
    jbuf_cstr(b, sub->owner);
    jbuf_lit(b, ",\"created_at\":");
    jbuf_time(b, sub->created_at);
    jbuf_lit(b, ",\"cursor\":");
    jbuf_u64(b, cursor);
    jbuf_lit(b, ",\"lag\":");
    jbuf_u64(b, topic_next_offset(t) - cursor);
    jbuf_lit(b, "}");
}

int render_queue_answer(struct reply *r, const struct queue *q, bool created)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    render_queue(&b, q);
    return finish(&b, r, created ? 201 : 200);
}

int render_topic_answer(struct reply *r, const struct topic *t, bool created)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    render_topic(&b, t);
    return finish(&b, r, created ? 201 : 200);
}

int render_subscription_answer(struct reply *r, const struct topic *t,
                               const struct subscription *sub, bool created)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    render_subscription(&b, t, sub);
    return finish(&b, r, created ? 201 : 200);
}

static void render_users(struct jbuf *b, const struct acl_list *l)
{
    jbuf_lit(b, "[");
    for (size_t i = 0; i < l->count; i++) {
        if (i)
            jbuf_lit(b, ",");
        jbuf_cstr(b, l->users[i]);
    }
    jbuf_lit(b, "]");
}

int render_acl(struct reply *r, const struct resource *res)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"publish\":");
    render_users(&b, &res->acl[ACL_PUBLISH]);
    jbuf_lit(&b, ",\"consume\":");
    render_users(&b, &res->acl[ACL_CONSUME]);
    jbuf_lit(&b, "}");
    return finish(&b, r, 200);
}

int render_user_created(struct reply *r, const struct user *u)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"username\":");
    jbuf_cstr(&b, u->name);
    jbuf_lit(&b, ",\"created_at\":");
    jbuf_time(&b, u->created_at);
    jbuf_lit(&b, "}");
    return finish(&b, r, 201);
}

/* A message's strings are interned in the store's string table. */
static void render_interned(struct jbuf *b, const struct store *s, uint32_t id)
{
    size_t len;
    const char *str = strtab_get(s->strs, id, &len);
    jbuf_str(b, str, len);
}

void render_topic_message(struct jbuf *b, const struct store *s, const struct topic *t,
                          uint64_t offset)
{
    const struct tmsg *m = topic_at(t, offset);
    jbuf_lit(b, "{\"offset\":");
    jbuf_u64(b, offset);
    jbuf_lit(b, ",\"id\":");
    render_id(b, m->id);
    jbuf_lit(b, ",");
    jbuf_body(b, m->body, m->body_len);
    jbuf_lit(b, ",\"content_type\":");
    render_interned(b, s, m->content_type);
    jbuf_lit(b, ",\"published_at\":");
    jbuf_time(b, m->published_at);
    jbuf_lit(b, ",\"publisher\":");
    render_interned(b, s, m->publisher);
    jbuf_lit(b, "}");
}

int render_topic_messages(struct reply *r, const struct store *s, const struct topic *t,
                          uint64_t start, uint64_t end)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"messages\":[");
    for (uint64_t off = start; off < end; off++) {
        if (off != start)
            jbuf_lit(&b, ",");
        render_topic_message(&b, s, t, off);
    }
    jbuf_lit(&b, "],\"next_offset\":");
    jbuf_u64(&b, end);
    jbuf_lit(&b, "}");
    return finish(&b, r, 200);
}

int render_token(struct reply *r, const char *token, uint64_t expires_in)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"access_token\":");
    jbuf_cstr(&b, token);
    jbuf_lit(&b, ",\"token_type\":\"Bearer\",\"expires_in\":");
    jbuf_u64(&b, expires_in);
    jbuf_lit(&b, "}");
    return finish(&b, r, 200);
}

int render_health(struct reply *r, bool ok, const char *text)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"status\":");
    jbuf_cstr(&b, text);
    jbuf_lit(&b, "}");
    return finish(&b, r, ok ? 200 : 503);
}

int render_released(struct reply *r, uint64_t n)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"released\":");
    jbuf_u64(&b, n);
    jbuf_lit(&b, "}");
    return finish(&b, r, 200);
}

static const char empty_receive[] = "{\"messages\":[]}";

int render_empty_receive(struct reply *r)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, empty_receive);
    return finish(&b, r, 200);
}

bool render_is_empty_receive(const struct reply *r)
{
    return r->status == 200 && r->body_len == sizeof empty_receive - 1 &&
           !memcmp(r->body, empty_receive, r->body_len);
}

/* ---- list answers ---- */

void render_list_open(struct render_list *l, const char *key)
{
    jbuf_init(&l->b);
    l->n = 0;
    jbuf_lit(&l->b, "{");
    jbuf_cstr(&l->b, key);
    jbuf_lit(&l->b, ":[");
}

static struct jbuf *list_item(struct render_list *l)
{
    if (l->n++)
        jbuf_lit(&l->b, ",");
    return &l->b;
}

void render_list_queue(struct render_list *l, const struct queue *q)
{
    render_queue(list_item(l), q);
}

void render_list_topic(struct render_list *l, const struct topic *t)
{
    render_topic(list_item(l), t);
}

void render_list_subscription(struct render_list *l, const struct topic *t,
                              const struct subscription *sub)
{
    render_subscription(list_item(l), t, sub);
}

/* The lease's receipt under the store's key (broker/receipt.h). */
static void render_receipt(struct jbuf *b, const struct store *s, const struct queue *q,
                           const struct qmsg *m)
{
    struct receipt_lease l = {q->res.incarnation, m->seq, m->delivery_count};
    char text[RECEIPT_MAX];
    size_t n = receipt_make(s->signer, q->res.name, &l, text);
    jbuf_raw(b, "\"", 1);
    jbuf_raw(b, text, n);
    jbuf_raw(b, "\"", 1);
}

void render_list_queue_message(struct render_list *l, const struct store *s, const struct queue *q,
                               const struct qmsg *m, bool receipt)
{
    struct jbuf *b = list_item(l);
    jbuf_lit(b, "{\"id\":");
    render_id(b, m->id);
    jbuf_lit(b, ",\"seq\":");
    jbuf_u64(b, m->seq);
    jbuf_lit(b, ",\"receipt\":");
    if (receipt)
        render_receipt(b, s, q, m);
    else
        jbuf_lit(b, "null");
    jbuf_lit(b, ",");
    jbuf_body(b, m->body, m->body_len);
    jbuf_lit(b, ",\"content_type\":");
    render_interned(b, s, m->content_type);
    jbuf_lit(b, ",\"delivery_count\":");
    jbuf_u64(b, m->delivery_count);
    jbuf_lit(b, ",\"published_at\":");
    jbuf_time(b, m->published_at);
    jbuf_lit(b, ",\"publisher\":");
    render_interned(b, s, m->publisher);
    jbuf_lit(b, "}");
}

int render_list_close(struct render_list *l, struct reply *r)
{
    jbuf_lit(&l->b, "]}");
    return finish(&l->b, r, 200);
}

/* ---- the cluster view ---- */

int render_cluster(const struct node_status *st, struct reply *out)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"node_id\":");
    jbuf_u64(&b, st->node_id);
    jbuf_lit(&b, ",\"role\":");
    jbuf_cstr(&b, st->role);
    jbuf_lit(&b, ",\"term\":");
    jbuf_u64(&b, st->term);
    jbuf_lit(&b, ",\"leader\":");
    if (st->leader)
        jbuf_u64(&b, st->leader);
    else
        jbuf_lit(&b, "null");
    jbuf_lit(&b, ",\"commit_index\":");
    jbuf_u64(&b, st->commit_index);
    jbuf_lit(&b, ",\"nodes\":[");
    for (size_t i = 0; i < st->n_members; i++) {
        const struct node_member_status *m = &st->members[i];
        jbuf_lit(&b, i ? ",{\"id\":" : "{\"id\":");
        jbuf_u64(&b, m->id);
        jbuf_lit(&b, ",\"address\":");
        jbuf_cstr(&b, m->address);
        jbuf_lit(&b, ",\"role\":");
        jbuf_cstr(&b, m->role);
        jbuf_lit(&b, ",\"match_index\":");
        jbuf_u64(&b, m->match_index);
        jbuf_lit(&b, ",\"last_contact_ms\":");
        if (m->last_contact_ms == UINT64_MAX)
            jbuf_lit(&b, "null");
        else
            jbuf_u64(&b, m->last_contact_ms);
        jbuf_lit(&b, m->healthy ? ",\"healthy\":true}" : ",\"healthy\":false}");
    }
    jbuf_lit(&b, "],\"applied_index\":");
    jbuf_u64(&b, st->applied_index);
    jbuf_lit(&b, st->abstaining ? ",\"abstaining\":true}" : ",\"abstaining\":false}");
    return finish(&b, out, 200);
}
