/* Topics of the store: a retained, offset-indexed log per topic (a ring of
 * message pointers; offset = first_offset + ring position), retention by
 * count, bytes and age, durable subscriptions with cursors, and the topic
 * reads. Offsets start at 0 per incarnation. Retention by bytes always
 * keeps the newest message, so a message larger than retention_bytes is
 * still readable until the next one arrives.
 * SPDX-License-Identifier: MIT */
#include "broker/store_internal.h"

#include "common/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TBIT(n) (1u << (n))

struct topic *topic_find(const struct store *s, const char *name)
{
    return hashmap_get_str(s->topics, name);
}

bool store_topic_exists(const struct store *s, const char *topic)
{
    return topic_find(s, topic) != NULL;
}

static uint64_t next_offset(const struct topic *t)
{
    return t->first_offset + t->count;
}

bool store_topic_next_offset(const struct store *s, const char *topic, uint64_t *out)
{
    const struct topic *t = topic_find(s, topic);
    if (!t)
        return false;
    *out = next_offset(t);
    return true;
}

static uint64_t add_ms(uint64_t t, uint64_t ms)
{
    return t > STORE_NO_TIME - 1 - ms ? STORE_NO_TIME - 1 : t + ms;
}

/* ---- the ring ---- */

static int ring_resize(struct topic *t, size_t cap)
{
    struct tmsg **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return MOM_ERR_NOMEM;
    for (size_t i = 0; i < t->count; i++)
        ring[i] = t->ring[(t->ring_head + i) & (t->ring_cap - 1)];
    free(t->ring);
    t->ring = ring;
    t->ring_cap = cap;
    t->ring_head = 0;
    return MOM_OK;
}

static int ring_reserve(struct topic *t, size_t n)
{
    if (n <= t->ring_cap)
        return MOM_OK;
    size_t cap = t->ring_cap ? t->ring_cap : 16;
    while (cap < n)
        cap *= 2;
    return ring_resize(t, cap);
}

struct tmsg *topic_at(const struct topic *t, uint64_t offset)
{
    if (offset < t->first_offset || offset >= next_offset(t))
        return NULL;
    return t->ring[(t->ring_head + (size_t)(offset - t->first_offset)) & (t->ring_cap - 1)];
}

int topic_append(struct store *s, struct topic *t, struct tmsg *m)
{
    if (ring_reserve(t, t->count + 1) != MOM_OK)
        return MOM_ERR_NOMEM;
    t->ring[(t->ring_head + t->count) & (t->ring_cap - 1)] = m;
    t->count++;
    t->bytes += m->body_len;
    s->messages++;
    s->bytes += m->body_len;
    return MOM_OK;
}

static void tmsg_free(struct store *s, struct tmsg *m)
{
    strtab_release(s->strs, m->content_type);
    strtab_release(s->strs, m->publisher);
    s->messages--;
    s->bytes -= m->body_len;
    free(m);
}

/* Removes the newest message (rollback of a failed batch). */
static void drop_newest(struct store *s, struct topic *t)
{
    t->count--;
    struct tmsg *m = t->ring[(t->ring_head + t->count) & (t->ring_cap - 1)];
    t->bytes -= m->body_len;
    tmsg_free(s, m);
}

static void evict_oldest(struct store *s, struct topic *t)
{
    struct tmsg *m = t->ring[t->ring_head];
    t->ring_head = (t->ring_head + 1) & (t->ring_cap - 1);
    t->count--;
    t->first_offset++;
    t->bytes -= m->body_len;
    tmsg_free(s, m);
}

void topic_refresh_deadline(struct store *s, struct topic *t)
{
    uint64_t d = STORE_NO_TIME;
    if (t->retention_ms && t->count)
        d = add_ms(topic_at(t, t->first_offset)->published_at, t->retention_ms);
    store_set_deadline(s, &t->res, d);
}

static void enforce_retention(struct store *s, struct topic *t, uint64_t now)
{
    bool evicted = false;
    while (t->retention_messages && t->count > t->retention_messages) {
        evict_oldest(s, t);
        evicted = true;
    }
    while (t->retention_bytes && t->count > 1 && t->bytes > t->retention_bytes) {
        evict_oldest(s, t);
        evicted = true;
    }
    while (t->retention_ms && t->count &&
           add_ms(topic_at(t, t->first_offset)->published_at, t->retention_ms) <= now) {
        evict_oldest(s, t);
        evicted = true;
    }
    if (evicted && t->ring_cap > 64 && t->count * 4 < t->ring_cap)
        (void)ring_resize(t, t->ring_cap / 2); /* best effort */
}

void topic_advance(struct store *s, struct topic *t, uint64_t now)
{
    enforce_retention(s, t, now);
    topic_refresh_deadline(s, t);
}

/* ---- lifecycle ---- */

struct topic *topic_new(const char *name, const char *owner, uint64_t created_at,
                        uint64_t incarnation, const mom_v1_TopicSettings *st)
{
    struct topic *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    uint32_t present = st ? st->present : 0;
    if (store_resource_init(&t->res, RES_TOPIC, name, owner, created_at, incarnation,
                            (present & TBIT(4)) && st->private_access) != MOM_OK) {
        free(t);
        return NULL;
    }
    t->retention_ms = (present & TBIT(1)) ? st->retention_ms : 0;
    t->retention_messages = (present & TBIT(2)) ? st->retention_messages : 0;
    t->retention_bytes = (present & TBIT(3)) ? st->retention_bytes : 0;
    t->subs = hashmap_new();
    if (!t->subs) {
        store_resource_cleanup(&t->res);
        free(t);
        return NULL;
    }
    return t;
}

void subscription_free(struct subscription *sub)
{
    if (!sub)
        return;
    free(sub->name);
    free(sub->owner);
    free(sub);
}

void topic_destroy(struct store *s, struct topic *t)
{
    store_remove_resource(s, &t->res);
    while (t->count)
        evict_oldest(s, t);
    free(t->ring);
    size_t it = 0;
    void *v;
    while (hashmap_next(t->subs, &it, NULL, NULL, &v))
        subscription_free(v);
    hashmap_free(t->subs);
    store_resource_cleanup(&t->res);
    free(t);
}

int topic_add_subscription(struct store *s, struct topic *t, struct subscription *sub)
{
    (void)s;
    if (hashmap_get_str(t->subs, sub->name))
        return MOM_ERR_EXISTS;
    return hashmap_put_str(t->subs, sub->name, sub);
}

/* ---- rendering ---- */

static int name_cmp(const void *a, const void *b)
{
    const struct subscription *x = *(const struct subscription *const *)a;
    const struct subscription *y = *(const struct subscription *const *)b;
    return strcmp(x->name, y->name);
}

/* The topic's subscriptions sorted by name (malloc'd array, *n entries);
 * NULL with *n == 0 when there are none or on allocation failure (*oom). */
static struct subscription **sorted_subs(const struct topic *t, size_t *n, bool *oom)
{
    *n = hashmap_count(t->subs);
    *oom = false;
    if (*n == 0)
        return NULL;
    struct subscription **list = malloc(*n * sizeof *list);
    if (!list) {
        *n = 0;
        *oom = true;
        return NULL;
    }
    size_t it = 0, i = 0;
    void *v;
    while (hashmap_next(t->subs, &it, NULL, NULL, &v))
        list[i++] = v;
    qsort(list, *n, sizeof *list, name_cmp);
    return list;
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
    jbuf_u64(b, next_offset(t));
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
    struct subscription **subs = sorted_subs(t, &n, &oom);
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

static int reply_topic(const struct topic *t, struct reply *r, int status)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    render_topic(&b, t);
    return jbuf_finish(&b, r, status);
}

static uint64_t effective_cursor(const struct topic *t, const struct subscription *sub)
{
    return sub->cursor < t->first_offset ? t->first_offset : sub->cursor;
}

static void render_subscription(struct jbuf *b, const struct topic *t,
                                const struct subscription *sub)
{
    uint64_t cursor = effective_cursor(t, sub);
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
    jbuf_u64(b, next_offset(t) - cursor);
    jbuf_lit(b, "}");
}

static int reply_subscription(const struct topic *t, const struct subscription *sub,
                              struct reply *r, int status)
{
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    render_subscription(&b, t, sub);
    return jbuf_finish(&b, r, status);
}

/* {"messages":[...],"next_offset":N} for up to max messages from start. */
static void reply_messages(const struct store *s, const struct topic *t, uint64_t start,
                           uint32_t max, struct reply *out, bool *empty)
{
    uint64_t end = next_offset(t);
    if (max < 1)
        max = 1;
    if (end - start > max)
        end = start + max;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"messages\":[");
    for (uint64_t off = start; off < end; off++) {
        const struct tmsg *m = topic_at(t, off);
        size_t len;
        const char *str;
        if (off != start)
            jbuf_lit(&b, ",");
        jbuf_lit(&b, "{\"offset\":");
        jbuf_u64(&b, off);
        jbuf_lit(&b, ",\"id\":");
        store_render_id(&b, m->id);
        jbuf_lit(&b, ",");
        jbuf_body(&b, m->body, m->body_len);
        jbuf_lit(&b, ",\"content_type\":");
        str = strtab_get(s->strs, m->content_type, &len);
        jbuf_str(&b, str, len);
        jbuf_lit(&b, ",\"published_at\":");
        jbuf_time(&b, m->published_at);
        jbuf_lit(&b, ",\"publisher\":");
        str = strtab_get(s->strs, m->publisher, &len);
        jbuf_str(&b, str, len);
        jbuf_lit(&b, "}");
    }
    jbuf_lit(&b, "],\"next_offset\":");
    jbuf_u64(&b, end);
    jbuf_lit(&b, "}");
    if (empty)
        *empty = end == start;
    if (jbuf_finish(&b, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

/* ---- lookups ---- */

static struct topic *lookup_topic(const struct store *s, const char *name,
                                  const struct store_caller *who, struct reply *r)
{
    struct topic *t = topic_find(s, name);
    if (!t) {
        store_fail(r, 404, "topic_not_found", "topic '%s' does not exist", name);
        return NULL;
    }
    if (!store_may_use(&t->res, who)) {
        store_fail(r, 403, "forbidden", "topic '%s' is private", name);
        return NULL;
    }
    return t;
}

static struct subscription *lookup_sub(const struct topic *t, const char *name, struct reply *r)
{
    struct subscription *sub = hashmap_get_str(t->subs, name);
    if (!sub)
        store_fail(r, 404, "subscription_not_found",
                   "subscription '%s' of topic '%s' does not exist", name, t->res.name);
    return sub;
}

/* ---- commands ---- */

static bool settings_match(const struct topic *t, const mom_v1_TopicSettings *st)
{
    uint32_t p = st->present;
    return (!(p & TBIT(1)) || st->retention_ms == t->retention_ms) &&
           (!(p & TBIT(2)) || st->retention_messages == t->retention_messages) &&
           (!(p & TBIT(3)) || st->retention_bytes == t->retention_bytes) &&
           (!(p & TBIT(4)) || st->private_access == t->res.private_access);
}

int topic_apply_create(struct store *s, uint64_t index, uint64_t now, const struct command *cmd,
                       struct reply *r)
{
    const mom_v1_CreateTopic *c = &cmd->pb.kind.create_topic;
    mom_v1_TopicSettings none = mom_v1_TopicSettings_init_zero;
    const mom_v1_TopicSettings *st = c->has_settings ? &c->settings : &none;
    if (!c->name[0]) {
        store_fail(r, 400, "bad_request", "topic name is empty");
        return MOM_OK;
    }
    struct topic *t = topic_find(s, c->name);
    if (t) {
        if (!settings_match(t, st)) {
            store_fail(r, 409, "conflict", "topic '%s' exists with other settings", c->name);
            return MOM_OK;
        }
        return reply_topic(t, r, 200);
    }
    t = topic_new(c->name, cmd->pb.user, now, index, st);
    if (!t)
        return MOM_ERR_NOMEM;
    if (store_add_resource(s, &t->res) != MOM_OK) {
        topic_destroy(s, t);
        return MOM_ERR_NOMEM;
    }
    return reply_topic(t, r, 201);
}

int topic_apply_delete(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    (void)now;
    const char *name = cmd->pb.kind.delete_topic.name;
    struct topic *t = topic_find(s, name);
    if (!store_may_delete(t ? &t->res : NULL, "topic", "topic_not_found", name, cmd, r))
        return MOM_OK;
    topic_destroy(s, t);
    store_deleted(s, STORE_TOPIC_DELETED, name, r);
    return MOM_OK;
}

int topic_apply_publish(struct store *s, struct topic *t, uint64_t index, uint64_t now,
                        const struct command *cmd, struct reply *r)
{
    topic_advance(s, t, now);
    size_t n = cmd->item_count;
    if (ring_reserve(t, t->count + n) != MOM_OK)
        return MOM_ERR_NOMEM;
    uint32_t publisher;
    if (strtab_intern(s->strs, cmd->pb.user, strnlen(cmd->pb.user, sizeof cmd->pb.user - 1),
                      &publisher) != MOM_OK)
        return MOM_ERR_NOMEM;
    uint64_t first = next_offset(t);
    size_t done = 0;
    for (; done < n; done++) {
        const struct command_item *it = &cmd->items[done];
        struct tmsg *m = malloc(offsetof(struct tmsg, body) + it->body_len);
        if (!m)
            break;
        if (store_intern_content_type(s, it->content_type, &m->content_type) != MOM_OK) {
            free(m);
            break;
        }
        strtab_ref(s->strs, publisher);
        m->publisher = publisher;
        m->id = store_message_id(index, done);
        m->published_at = now;
        m->body_len = (uint32_t)it->body_len;
        if (it->body_len)
            memcpy(m->body, it->body, it->body_len);
        topic_append(s, t, m); /* room reserved */
    }
    strtab_release(s->strs, publisher);
    if (done < n) {
        while (done--)
            drop_newest(s, t);
        return MOM_ERR_NOMEM;
    }
    enforce_retention(s, t, now);
    topic_refresh_deadline(s, t);
    store_notify(s, STORE_TOPIC_APPENDED, t->res.name);
    if (!r)
        return MOM_OK;
    struct jbuf b;
    jbuf_init(&b);
    if (!cmd->pb.kind.publish.batch && n == 1) {
        jbuf_lit(&b, "{\"id\":");
        store_render_id(&b, store_message_id(index, 0));
        jbuf_lit(&b, ",\"offset\":");
        jbuf_u64(&b, first);
        jbuf_lit(&b, "}");
    } else {
        jbuf_lit(&b, "{\"ids\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                jbuf_lit(&b, ",");
            store_render_id(&b, store_message_id(index, i));
        }
        jbuf_lit(&b, "],\"offsets\":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                jbuf_lit(&b, ",");
            jbuf_u64(&b, first + i);
        }
        jbuf_lit(&b, "]}");
    }
    return jbuf_finish(&b, r, 201);
}

int topic_apply_create_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r)
{
    const mom_v1_CreateSubscription *c = &cmd->pb.kind.create_subscription;
    if (!c->name[0]) {
        store_fail(r, 400, "bad_request", "subscription name is empty");
        return MOM_OK;
    }
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    struct topic *t = lookup_topic(s, c->topic, &who, r);
    if (!t)
        return MOM_OK;
    topic_advance(s, t, now);
    struct subscription *sub = hashmap_get_str(t->subs, c->name);
    if (sub) /* start applies only at creation */
        return reply_subscription(t, sub, r, 200);
    sub = calloc(1, sizeof *sub);
    if (!sub)
        return MOM_ERR_NOMEM;
    sub->name = strdup(c->name);
    sub->owner = strdup(cmd->pb.user);
    sub->created_at = now;
    sub->cursor = c->start_earliest ? t->first_offset : next_offset(t);
    if (!sub->name || !sub->owner || topic_add_subscription(s, t, sub) != MOM_OK) {
        subscription_free(sub);
        return MOM_ERR_NOMEM;
    }
    return reply_subscription(t, sub, r, 201);
}

int topic_apply_delete_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r)
{
    (void)now;
    const mom_v1_DeleteSubscription *d = &cmd->pb.kind.delete_subscription;
    struct topic *t = topic_find(s, d->topic);
    if (!t) {
        store_fail(r, 404, "topic_not_found", "topic '%s' does not exist", d->topic);
        return MOM_OK;
    }
    struct subscription *sub = lookup_sub(t, d->name, r);
    if (!sub)
        return MOM_OK;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!who.admin && strcmp(who.user, sub->owner) != 0 && strcmp(who.user, t->res.owner) != 0) {
        store_fail(r, 403, "forbidden",
                   "only the subscription's owner, the topic's owner or an admin may delete it");
        return MOM_OK;
    }
    hashmap_remove_str(t->subs, sub->name);
    subscription_free(sub);
    if (r)
        reply_set(r, 204, NULL, 0);
    return MOM_OK;
}

int topic_apply_subscription_ack(struct store *s, uint64_t now, const struct command *cmd,
                                 struct reply *r)
{
    const mom_v1_SubscriptionAck *a = &cmd->pb.kind.subscription_ack;
    struct topic *t = topic_find(s, a->topic);
    if (!t) {
        store_fail(r, 404, "topic_not_found", "topic '%s' does not exist", a->topic);
        return MOM_OK;
    }
    struct subscription *sub = lookup_sub(t, a->name, r);
    if (!sub)
        return MOM_OK;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!store_may_use(&t->res, &who)) {
        store_fail(r, 403, "forbidden", "topic '%s' is private", a->topic);
        return MOM_OK;
    }
    topic_advance(s, t, now);
    if (a->offset >= next_offset(t)) {
        store_fail(r, 400, "offset_out_of_range",
                   "offset %" PRIu64 " is not below next_offset %" PRIu64, a->offset,
                   next_offset(t));
        return MOM_OK;
    }
    if (a->offset >= effective_cursor(t, sub))
        sub->cursor = a->offset + 1;
    if (r)
        reply_set(r, 204, NULL, 0);
    return MOM_OK;
}

/* ---- reads ---- */

void store_list_topics(const struct store *s, const struct store_caller *who, struct reply *out)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"topics\":[");
    bool first = true;
    for (size_t i = 0; i < s->ntopics; i++) {
        const struct topic *t = s->topic_list[i];
        if (!store_may_use(&t->res, who))
            continue;
        if (!first)
            jbuf_lit(&b, ",");
        first = false;
        render_topic(&b, t);
    }
    jbuf_lit(&b, "]}");
    if (jbuf_finish(&b, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

void store_get_topic(const struct store *s, const char *name, const struct store_caller *who,
                     struct reply *out)
{
    const struct topic *t = lookup_topic(s, name, who, out);
    if (t && reply_topic(t, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

void store_read_topic(const struct store *s, const char *topic, enum store_from from,
                      uint64_t offset, uint32_t max, const struct store_caller *who,
                      struct reply *out, bool *empty)
{
    if (empty)
        *empty = true;
    const struct topic *t = lookup_topic(s, topic, who, out);
    if (!t)
        return;
    uint64_t start;
    switch (from) {
    case STORE_FROM_LATEST: start = next_offset(t); break;
    case STORE_FROM_OFFSET:
        if (offset > next_offset(t)) {
            store_fail(out, 400, "offset_out_of_range",
                       "offset %" PRIu64 " is beyond next_offset %" PRIu64, offset, next_offset(t));
            return;
        }
        start = offset < t->first_offset ? t->first_offset : offset;
        break;
    case STORE_FROM_EARLIEST:
    default: start = t->first_offset; break;
    }
    reply_messages(s, t, start, max, out, empty);
}

void store_list_subscriptions(const struct store *s, const char *topic,
                              const struct store_caller *who, struct reply *out)
{
    const struct topic *t = lookup_topic(s, topic, who, out);
    if (!t)
        return;
    size_t n;
    bool oom;
    struct subscription **subs = sorted_subs(t, &n, &oom);
    struct jbuf b;
    jbuf_init(&b);
    b.oom = oom;
    jbuf_lit(&b, "{\"subscriptions\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_lit(&b, ",");
        render_subscription(&b, t, subs[i]);
    }
    jbuf_lit(&b, "]}");
    free(subs);
    if (jbuf_finish(&b, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

void store_get_subscription(const struct store *s, const char *topic, const char *name,
                            const struct store_caller *who, struct reply *out)
{
    const struct topic *t = topic_find(s, topic);
    if (!t) {
        store_fail(out, 404, "topic_not_found", "topic '%s' does not exist", topic);
        return;
    }
    const struct subscription *sub = lookup_sub(t, name, out);
    if (!sub)
        return;
    if (!store_may_use(&t->res, who)) {
        store_fail(out, 403, "forbidden", "topic '%s' is private", topic);
        return;
    }
    if (reply_subscription(t, sub, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

void store_list_user_subscriptions(const struct store *s, const struct store_caller *who,
                                   struct reply *out)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_lit(&b, "{\"subscriptions\":[");
    bool first = true;
    for (size_t i = 0; i < s->ntopics && !b.oom; i++) {
        const struct topic *t = s->topic_list[i];
        size_t n;
        bool oom;
        struct subscription **subs = sorted_subs(t, &n, &oom);
        if (oom)
            b.oom = true;
        for (size_t k = 0; k < n; k++) {
            if (!who->user || strcmp(subs[k]->owner, who->user) != 0)
                continue;
            if (!first)
                jbuf_lit(&b, ",");
            first = false;
            render_subscription(&b, t, subs[k]);
        }
        free(subs);
    }
    jbuf_lit(&b, "]}");
    if (jbuf_finish(&b, out, 200) != MOM_OK)
        store_fail(out, 503, "unavailable", "out of memory");
}

void store_read_subscription(const struct store *s, const char *topic, const char *name,
                             uint32_t max, const struct store_caller *who, struct reply *out,
                             bool *empty)
{
    if (empty)
        *empty = true;
    const struct topic *t = topic_find(s, topic);
    if (!t) {
        store_fail(out, 404, "topic_not_found", "topic '%s' does not exist", topic);
        return;
    }
    const struct subscription *sub = lookup_sub(t, name, out);
    if (!sub)
        return;
    if (!store_may_use(&t->res, who)) {
        store_fail(out, 403, "forbidden", "topic '%s' is private", topic);
        return;
    }
    reply_messages(s, t, effective_cursor(t, sub), max, out, empty);
}
