/* Event streams (see stream.h): the hub that finds the streams watching a
 * name and feeds them once per loop turn after apply, and each stream's
 * life on its connection: headers and "retry:", events queued in one chunk
 * per feed, the heartbeat, and back-pressure measured on the connection's
 * output buffer. One libevent event per stream serves both its heartbeat
 * (a persistent timer in a common-timeout queue) and its "drained" wake
 * (activated by hand from the output buffer's callback).
 * A stream is freed only from its request's on_request_fini; ending one
 * (its resource is gone) sends the last chunk and lets evhtp finish the
 * request after the flush.
 * SPDX-License-Identifier: MIT */
#include "broker/stream.h"

#include "broker/server_internal.h"
#include "broker/sse.h"
#include "common/err.h"
#include "common/hashmap.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reconnection delay a stream asks its client for. */
#define STREAM_RETRY_MS 2000u
/* One feed queues at most about this much; a stream with more to send is
 * fed again on the next loop turn, so thousands of streams catching up at
 * once do not hold the loop. */
#define STREAM_FEED_BYTES (64u << 10)
/* The flag of a stream's event activated by hand: its socket drained, or stream_wake. */
#define STREAM_EV_WAKE EV_WRITE

/* The streams watching one queue or topic. The key is a kind byte ('t' or
 * 'q') then the name; the map points at it. */
struct watch {
    char key[1 + 129];
    size_t key_len;
    struct stream *head;
    struct watch *next_dirty;
    bool dirty; /* in the hub's dirty list */
    bool busy;  /* being walked by on_wake: not freed under it */
};

struct stream_hub {
    struct event_base *base;
    const struct config *cfg;
    struct hashmap *watches;
    struct watch *dirty;      /* changed since the last wake */
    struct event *wake_ev;    /* activated on the first change of a turn */
    struct evbuffer *scratch; /* the events of the feed in progress */
    const struct timeval *heartbeat_tv;
    struct stream *iter_next; /* on_wake's next stream (advanced if it is freed) */
    size_t count;
};

struct stream {
    struct stream_hub *hub;
    struct request_ctx *rc;
    evhtp_request_t *req;
    const struct stream_ops *ops;
    void *arg;
    struct watch *watch;
    struct stream *wprev, *wnext;
    struct event *ev;
    struct evbuffer *out; /* the connection's output buffer */
    struct evbuffer_cb_entry *out_cb;
    bool wrote;        /* a chunk went out since the timer last fired */
    bool blocked;      /* over the limit: fed again when the socket drains */
    bool drain_wanted; /* events were written since ops->drained last ran */
    bool wake_wanted;  /* stream_wake: feed at the next event */
    bool feeding;
    bool failed;     /* an event could not be queued: the stream ends */
    bool more_later; /* this feed reached STREAM_FEED_BYTES */
    bool ended;
};

/* ---- the hub ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg);

struct stream_hub *stream_hub_new(struct event_base *base, const struct config *cfg)
{
    struct stream_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    hub->base = base;
    hub->cfg = cfg;
    hub->watches = hashmap_new();
    hub->wake_ev = event_new(base, -1, 0, on_wake, hub);
    hub->scratch = evbuffer_new();
    struct timeval tv = {(time_t)(cfg->sse_heartbeat_ms / 1000),
                         (suseconds_t)(cfg->sse_heartbeat_ms % 1000) * 1000};
    hub->heartbeat_tv = event_base_init_common_timeout(base, &tv);
    if (!hub->watches || !hub->wake_ev || !hub->scratch || !hub->heartbeat_tv) {
        stream_hub_free(hub);
        return NULL;
    }
    return hub;
}

void stream_hub_free(struct stream_hub *hub)
{
    if (!hub)
        return;
    if (hub->watches) {
        size_t iter = 0;
        void *value;
        while (hashmap_next(hub->watches, &iter, NULL, NULL, &value))
            free(value); /* only when streams outlived the server: none do */
        hashmap_free(hub->watches);
    }
    if (hub->wake_ev)
        event_free(hub->wake_ev);
    if (hub->scratch)
        evbuffer_free(hub->scratch);
    free(hub);
}

size_t stream_hub_count(const struct stream_hub *hub)
{
    return hub ? hub->count : 0;
}

uint64_t stream_hub_queued_bytes(const struct stream_hub *hub)
{
    uint64_t total = 0;
    size_t iter = 0;
    void *value;
    while (hub && hashmap_next(hub->watches, &iter, NULL, NULL, &value))
        for (const struct stream *st = ((struct watch *)value)->head; st; st = st->wnext)
            total += evbuffer_get_length(st->out);
    return total;
}

static size_t watch_key(char *key, enum stream_watch kind, const char *name)
{
    size_t n = strnlen(name, 128);
    key[0] = kind == STREAM_WATCH_TOPIC ? 't' : 'q';
    memcpy(key + 1, name, n);
    return n + 1;
}

void stream_hub_notify(struct stream_hub *hub, enum store_change change, const char *name)
{
    if (!hub || !hub->count)
        return;
    char key[1 + 129];
    enum stream_watch kind =
        change == STORE_QUEUE_READY || change == STORE_QUEUE_DELETED || change == STORE_LEASES_ENDED
            ? STREAM_WATCH_QUEUE
            : STREAM_WATCH_TOPIC;
    size_t len = watch_key(key, kind, name);
    struct watch *w = hashmap_get(hub->watches, key, len);
    if (!w || w->dirty)
        return;
    w->dirty = true;
    w->next_dirty = hub->dirty;
    hub->dirty = w;
    event_active(hub->wake_ev, EV_READ, 1);
}

static void watch_release(struct stream_hub *hub, struct watch *w)
{
    if (w->head || w->dirty || w->busy)
        return;
    hashmap_remove(hub->watches, w->key, w->key_len);
    free(w);
}

static void unwatch(struct stream *st)
{
    struct watch *w = st->watch;
    if (!w)
        return;
    if (st->hub->iter_next == st)
        st->hub->iter_next = st->wnext;
    if (st->wprev)
        st->wprev->wnext = st->wnext;
    else
        w->head = st->wnext;
    if (st->wnext)
        st->wnext->wprev = st->wprev;
    st->wprev = st->wnext = NULL;
    st->watch = NULL;
    watch_release(st->hub, w);
}

static int watch(struct stream *st, enum stream_watch kind, const char *name)
{
    struct stream_hub *hub = st->hub;
    char key[1 + 129];
    size_t len = watch_key(key, kind, name);
    struct watch *w = hashmap_get(hub->watches, key, len);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return MOM_ERR_NOMEM;
        memcpy(w->key, key, len);
        w->key_len = len;
        if (hashmap_put(hub->watches, w->key, w->key_len, w) != MOM_OK) {
            free(w);
            return MOM_ERR_NOMEM;
        }
    }
    st->watch = w;
    st->wprev = NULL;
    st->wnext = w->head;
    if (w->head)
        w->head->wprev = st;
    w->head = st;
    return MOM_OK;
}

/* ---- one stream ---- */

static size_t queued(const struct stream *st)
{
    return evbuffer_get_length(st->out) + evbuffer_get_length(st->hub->scratch);
}

bool stream_has_room(const struct stream *st)
{
    return queued(st) < st->hub->cfg->sse_max_buffer;
}

struct request_ctx *stream_request(const struct stream *st)
{
    return st->rc;
}

/* Appends n bytes of text to this feed's chunk. */
static void scratch_add(struct stream *st, const char *text, size_t n)
{
    evbuffer_add(st->hub->scratch, text, n);
}

bool stream_send_event(struct stream *st, uint64_t id, const char *json, size_t len)
{
    size_t need = sse_event_size(id, "message", json, len);
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(st->hub->scratch, (ev_ssize_t)need, &vec, 1) < 1 ||
        vec.iov_len < need) {
        /* out of memory: the stream ends after what it has sent, and the
         * client resumes after the last id it got (nothing is skipped) */
        st->failed = true;
        return false;
    }
    size_t n = sse_event(vec.iov_base, vec.iov_len, id, "message", json, len);
    vec.iov_len = n;
    evbuffer_commit_space(st->hub->scratch, &vec, 1);
    st->drain_wanted = true;
    if (evbuffer_get_length(st->hub->scratch) >= STREAM_FEED_BYTES) {
        st->more_later = true;
        return false;
    }
    return stream_has_room(st);
}

/* The queued events of this feed go out as one chunk, and the heartbeat
 * timer starts again: it fires only after MOM_SSE_HEARTBEAT_MS without a
 * write (a common timeout: re-arming is O(1)). */
static void flush(struct stream *st)
{
    struct evbuffer *scratch = st->hub->scratch;
    if (!evbuffer_get_length(scratch))
        return;
    evhtp_send_reply_chunk(st->req, scratch);
    evbuffer_drain(scratch, evbuffer_get_length(scratch));
    st->wrote = true;
    event_add(st->ev, st->hub->heartbeat_tv);
}

/* The resource is gone: the last chunk, then evhtp finishes the request
 * (and on_request_fini frees the stream) once it is flushed. */
static void end(struct stream *st)
{
    st->ended = true;
    unwatch(st);
    event_del(st->ev);
    evhtp_send_reply_chunk_end(st->req);
}

static void feed(struct stream *st)
{
    if (st->ended || st->feeding)
        return;
    if (!stream_has_room(st)) {
        st->blocked = true;
        return;
    }
    st->blocked = false;
    st->feeding = true;
    st->more_later = false;
    bool more = st->ops->feed(st, st->arg);
    st->feeding = false;
    flush(st);
    if (!more || st->failed)
        end(st);
    else if (!stream_has_room(st))
        st->blocked = true;
    else if (st->more_later)
        stream_wake(st);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stream_hub *hub = arg;
    while (hub->dirty) {
        struct watch *w = hub->dirty;
        hub->dirty = w->next_dirty;
        w->dirty = false;
        w->busy = true;
        for (struct stream *st = w->head; st; st = hub->iter_next) {
            hub->iter_next = st->wnext;
            feed(st);
        }
        hub->iter_next = NULL;
        w->busy = false;
        watch_release(hub, w);
    }
}

/* The output buffer lost bytes to the socket: wake the stream when it was
 * held back and is now below half the limit, or when everything written
 * has left and its kind wants to know. */
static void on_out_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct stream *st = arg;
    if (!info->n_deleted || st->ended)
        return;
    size_t left = evbuffer_get_length(buf);
    if ((st->blocked && left <= st->hub->cfg->sse_max_buffer / 2) ||
        (left == 0 && st->drain_wanted && st->ops->drained))
        event_active(st->ev, STREAM_EV_WAKE, 1);
}

static void heartbeat(struct stream *st)
{
    char text[32];
    size_t n = sse_comment(text, sizeof text, "keep-alive");
    scratch_add(st, text, n);
    flush(st);
}

static void on_stream_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct stream *st = arg;
    if (st->ended)
        return;
    if (st->drain_wanted && st->ops->drained && evbuffer_get_length(st->out) == 0) {
        st->drain_wanted = false;
        st->ops->drained(st, st->arg);
    }
    if (what & EV_TIMEOUT) {
        /* idle for MOM_SSE_HEARTBEAT_MS: a feed first catches what no
         * wake announces (a deleted subscription changes no topic) */
        st->wrote = false;
        feed(st);
        if (!st->ended && !st->wrote && !st->blocked)
            heartbeat(st);
    } else if (st->blocked || st->wake_wanted) {
        st->wake_wanted = false;
        feed(st);
    }
}

void stream_wake(struct stream *st)
{
    if (!st || st->ended)
        return;
    st->wake_wanted = true;
    event_active(st->ev, STREAM_EV_WAKE, 1);
}

bool stream_check_open(struct request_ctx *rc)
{
    struct stream_hub *hub = rc->srv->streams;
    if (evhtp_request_get_proto(rc->req) != EVHTP_PROTO_11) {
        server_fail(rc, API_ERR_HTTP_VERSION, "event streams need HTTP/1.1");
        return false;
    }
    if (!hub || hub->count >= hub->cfg->max_streams) {
        server_fail(rc, API_ERR_UNAVAILABLE, "this node serves %llu streams already; retry",
                    (unsigned long long)(hub ? hub->cfg->max_streams : 0));
        return false;
    }
    return true;
}

int stream_open(struct request_ctx *rc, const struct stream_ops *ops, void *arg,
                enum stream_watch kind, const char *name)
{
    struct stream_hub *hub = rc->srv->streams;
    struct stream *st = calloc(1, sizeof *st);
    struct bufferevent *bev = evhtp_request_get_bev(rc->req);
    if (st) {
        st->hub = hub;
        st->rc = rc;
        st->req = rc->req;
        st->ops = ops;
        st->arg = arg;
        st->out = bev ? bufferevent_get_output(bev) : NULL;
        st->ev = event_new(hub->base, -1, EV_PERSIST, on_stream_event, st);
    }
    if (!st || !st->out || !st->ev || watch(st, kind, name) != MOM_OK ||
        !(st->out_cb = evbuffer_add_cb(st->out, on_out_drained, st)) ||
        event_add(st->ev, hub->heartbeat_tv) != 0) {
        if (st) {
            unwatch(st);
            if (st->out_cb)
                evbuffer_remove_cb_entry(st->out, st->out_cb);
            if (st->ev)
                event_free(st->ev);
            free(st);
        }
        ops->close(arg);
        server_fail(rc, API_ERR_UNAVAILABLE, "cannot open a stream: out of memory");
        return MOM_ERR_NOMEM;
    }
    hub->count++;
    rc->stream = st;
    server_start_stream(rc);
    char text[32];
    size_t n = sse_retry(text, sizeof text, STREAM_RETRY_MS);
    scratch_add(st, text, n);
    feed(st); /* flushes the retry line with the first events */
    return MOM_OK;
}

void stream_free(struct stream *st)
{
    if (!st)
        return;
    unwatch(st);
    if (st->out_cb)
        evbuffer_remove_cb_entry(st->out, st->out_cb);
    event_free(st->ev);
    st->hub->count--;
    st->ops->close(st->arg);
    free(st);
}
