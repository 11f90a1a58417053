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

uint64_t topic_next_offset(const struct topic *t)
{
    return t->first_offset + t->count;
}

bool store_topic_next_offset(const struct store *s, const char *topic, uint64_t *out)
{
    const struct topic *t = topic_find(s, topic);
    if (!t)
        return false;
    *out = topic_next_offset(t);
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
    if (offset < t->first_offset || offset >= topic_next_offset(t))
        return NULL;
    return t->ring[(t->ring_head + (size_t)(offset - t->first_offset)) & (t->ring_cap - 1)];
}

int topic_append(struct store *s, struct topic *t, struct tmsg *m)
{
    if (ring_reserve(t, t->count + 1) != MOM_OK)
        return MOM_ERR_NOMEM;
    if (t->count) { /* keep stamps non-decreasing, whatever a snapshot held */
        const struct tmsg *last = topic_at(t, topic_next_offset(t) - 1);
        if (m->published_at < last->published_at)
            m->published_at = last->published_at;
    }
    t->ring[(t->ring_head + t->count) & (t->ring_cap - 1)] = m;
    t->count++;
    t->bytes += m->body_len;
    s->messages++;
    s->bytes += m->body_len;
    return MOM_OK;
}

uint64_t topic_offset_at_time(const struct topic *t, uint64_t time_ms)
{
    uint64_t lo = t->first_offset, hi = topic_next_offset(t);
    while (lo < hi) { /* the answer is in [lo, hi] */
        uint64_t mid = lo + (hi - lo) / 2;
        if (topic_at(t, mid)->published_at < time_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool store_topic_offset_at_time(const struct store *s, const char *topic, uint64_t time_ms,
                                uint64_t *out)
{
    const struct topic *t = topic_find(s, topic);
    if (!t)
        return false;
    *out = topic_offset_at_time(t, time_ms);
    return true;
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

/* ---- subscriptions and messages ---- */

static int name_cmp(const void *a, const void *b)
{
    const struct subscription *x = *(const struct subscription *const *)a;
    const struct subscription *y = *(const struct subscription *const *)b;
    return strcmp(x->name, y->name);
}

struct subscription **topic_sorted_subs(const struct topic *t, size_t *n, bool *oom)
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

uint64_t subscription_cursor(const struct topic *t, const struct subscription *sub)
{
    return sub->cursor < t->first_offset ? t->first_offset : sub->cursor;
}

/* Up to max messages from start; *empty when there are none. */
static void reply_messages(const struct store *s, const struct topic *t, uint64_t start,
                           uint32_t max, struct reply *out, bool *empty)
{
    uint64_t end = topic_next_offset(t);
    if (max < 1)
        max = 1;
    if (end - start > max)
        end = start + max;
    if (empty)
        *empty = end == start;
    (void)render_topic_messages(out, s, t, start, end);
}

/* ---- lookups ---- */

/* The topic named, or NULL with r holding the error (not found, or
 * private and who may not do `right`). */
static struct topic *lookup_topic(const struct store *s, const char *name,
                                  const struct store_caller *who, enum acl_right right,
                                  struct reply *r)
{
    struct topic *t = topic_find(s, name);
    if (!t) {
        render_error(r, API_ERR_TOPIC_NOT_FOUND, "topic '%s' does not exist", name);
        return NULL;
    }
    if (!store_may(&t->res, who, right)) {
        store_forbidden(r, &t->res, right);
        return NULL;
    }
    return t;
}

/* The subscription topic/name and its topic (*tout), or NULL with r
 * holding the not-found error (topic first, then subscription). */
static struct subscription *find_sub(const struct store *s, const char *topic, const char *name,
                                     struct reply *r, struct topic **tout)
{
    struct topic *t = topic_find(s, topic);
    if (!t) {
        render_error(r, API_ERR_TOPIC_NOT_FOUND, "topic '%s' does not exist", topic);
        return NULL;
    }
    struct subscription *sub = hashmap_get_str(t->subs, name);
    if (!sub) {
        render_error(r, API_ERR_SUBSCRIPTION_NOT_FOUND,
                     "subscription '%s' of topic '%s' does not exist", name, topic);
        return NULL;
    }
    *tout = t;
    return sub;
}

/* find_sub for reading and acking: also forbidden unless who may consume
 * the topic. */
static struct subscription *lookup_sub(const struct store *s, const char *topic, const char *name,
                                       const struct store_caller *who, struct reply *r,
                                       struct topic **tout)
{
    struct subscription *sub = find_sub(s, topic, name, r, tout);
    if (sub && !store_may(&(*tout)->res, who, ACL_CONSUME)) {
        store_forbidden(r, &(*tout)->res, ACL_CONSUME);
        return NULL;
    }
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
        render_error(r, API_ERR_BAD_REQUEST, "topic name is empty");
        return MOM_OK;
    }
    struct topic *t = topic_find(s, c->name);
    if (t) {
        if (!settings_match(t, st)) {
            render_error(r, API_ERR_CONFLICT, "topic '%s' exists with other settings", c->name);
            return MOM_OK;
        }
        return render_topic_answer(r, t, false);
    }
    t = topic_new(c->name, cmd->pb.user, now, index, st);
    if (!t)
        return MOM_ERR_NOMEM;
    if (store_add_resource(s, &t->res) != MOM_OK) {
        topic_destroy(s, t);
        return MOM_ERR_NOMEM;
    }
    return render_topic_answer(r, t, true);
}

int topic_apply_delete(struct store *s, uint64_t now, const struct command *cmd, struct reply *r)
{
    (void)now;
    const char *name = cmd->pb.kind.delete_topic.name;
    struct topic *t = topic_find(s, name);
    if (!store_may_delete(t ? &t->res : NULL, "topic", API_ERR_TOPIC_NOT_FOUND, name, cmd, r))
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
    uint64_t first = topic_next_offset(t);
    size_t done = 0;
    uint32_t ct = 0; /* the previous item's content type */
    for (; done < n; done++) {
        const struct command_item *it = &cmd->items[done];
        struct tmsg *m = malloc(offsetof(struct tmsg, body) + it->body_len);
        if (!m)
            break;
        if (store_intern_item_content_type(s, cmd, done, &ct) != MOM_OK) {
            free(m);
            break;
        }
        m->content_type = ct;
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
    return render_publish_ack(r, false, cmd->pb.kind.publish.batch, index, n, first);
}

int topic_apply_create_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r)
{
    const mom_v1_CreateSubscription *c = &cmd->pb.kind.create_subscription;
    if (!c->name[0]) {
        render_error(r, API_ERR_BAD_REQUEST, "subscription name is empty");
        return MOM_OK;
    }
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    struct topic *t = lookup_topic(s, c->topic, &who, ACL_CONSUME, r);
    if (!t)
        return MOM_OK;
    topic_advance(s, t, now);
    struct subscription *sub = hashmap_get_str(t->subs, c->name);
    if (sub) /* start applies only at creation */
        return render_subscription_answer(r, t, sub, false);
    sub = calloc(1, sizeof *sub);
    if (!sub)
        return MOM_ERR_NOMEM;
    sub->name = strdup(c->name);
    sub->owner = strdup(cmd->pb.user);
    sub->created_at = now;
    if (c->start_at_time)
        sub->cursor = topic_offset_at_time(t, c->start_time_ms);
    else
        sub->cursor = c->start_earliest ? t->first_offset : topic_next_offset(t);
    if (!sub->name || !sub->owner || topic_add_subscription(s, t, sub) != MOM_OK) {
        subscription_free(sub);
        return MOM_ERR_NOMEM;
    }
    return render_subscription_answer(r, t, sub, true);
}

int topic_apply_delete_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                    struct reply *r)
{
    (void)now;
    const mom_v1_DeleteSubscription *d = &cmd->pb.kind.delete_subscription;
    struct topic *t;
    struct subscription *sub = find_sub(s, d->topic, d->name, r, &t);
    if (!sub)
        return MOM_OK;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!who.admin && strcmp(who.user, sub->owner) != 0 && strcmp(who.user, t->res.owner) != 0) {
        render_error(r, API_ERR_FORBIDDEN,
                     "only the subscription's owner, the topic's owner or an admin may delete it");
        return MOM_OK;
    }
    hashmap_remove_str(t->subs, sub->name);
    subscription_free(sub);
    render_no_content(r);
    return MOM_OK;
}

int topic_apply_subscription_ack(struct store *s, uint64_t now, const struct command *cmd,
                                 struct reply *r)
{
    const mom_v1_SubscriptionAck *a = &cmd->pb.kind.subscription_ack;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    struct topic *t;
    struct subscription *sub = lookup_sub(s, a->topic, a->name, &who, r, &t);
    if (!sub)
        return MOM_OK;
    topic_advance(s, t, now);
    if (a->offset >= topic_next_offset(t)) {
        render_error(r, API_ERR_OFFSET_OUT_OF_RANGE,
                     "offset %" PRIu64 " is not below next_offset %" PRIu64, a->offset,
                     topic_next_offset(t));
        return MOM_OK;
    }
    if (a->offset >= subscription_cursor(t, sub))
        sub->cursor = a->offset + 1;
    render_no_content(r);
    return MOM_OK;
}

int topic_apply_seek_subscription(struct store *s, uint64_t now, const struct command *cmd,
                                  struct reply *r)
{
    const mom_v1_SeekSubscription *k = &cmd->pb.kind.seek_subscription;
    struct topic *t;
    struct subscription *sub = find_sub(s, k->topic, k->name, r, &t);
    if (!sub)
        return MOM_OK;
    if (!cmd->pb.admin && strcmp(cmd->pb.user, sub->owner) != 0) {
        render_error(r, API_ERR_FORBIDDEN, "only the subscription's owner or an admin may seek it");
        return MOM_OK;
    }
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!store_may(&t->res, &who, ACL_CONSUME)) { /* an owner taken off the consume list */
        store_forbidden(r, &t->res, ACL_CONSUME);
        return MOM_OK;
    }
    topic_advance(s, t, now);
    uint64_t to;
    if (k->by_time) {
        to = topic_offset_at_time(t, k->time_ms);
    } else {
        if (k->offset > topic_next_offset(t)) {
            render_error(r, API_ERR_OFFSET_OUT_OF_RANGE,
                         "offset %" PRIu64 " is beyond next_offset %" PRIu64, k->offset,
                         topic_next_offset(t));
            return MOM_OK;
        }
        to = k->offset < t->first_offset ? t->first_offset : k->offset;
    }
    sub->cursor = to;
    /* A subscription read waiting at the old cursor may have messages now. */
    store_notify(s, STORE_TOPIC_APPENDED, t->res.name);
    return render_subscription_answer(r, t, sub, false);
}

/* ---- reads ---- */

void store_list_topics(const struct store *s, const struct store_caller *who, struct reply *out)
{
    struct render_list list;
    render_list_open(&list, "topics");
    for (size_t i = 0; i < s->ntopics; i++)
        if (store_may(&s->topic_list[i]->res, who, ACL_ANY))
            render_list_topic(&list, s->topic_list[i]);
    (void)render_list_close(&list, out);
}

void store_get_topic(const struct store *s, const char *name, const struct store_caller *who,
                     struct reply *out)
{
    const struct topic *t = lookup_topic(s, name, who, ACL_ANY, out);
    if (t)
        (void)render_topic_answer(out, t, false);
}

void store_read_topic(const struct store *s, const char *topic, enum store_from from,
                      uint64_t offset, uint32_t max, const struct store_caller *who,
                      struct reply *out, bool *empty)
{
    if (empty)
        *empty = true;
    const struct topic *t = lookup_topic(s, topic, who, ACL_CONSUME, out);
    if (!t)
        return;
    uint64_t start;
    switch (from) {
    case STORE_FROM_LATEST: start = topic_next_offset(t); break;
    case STORE_FROM_OFFSET:
        if (offset > topic_next_offset(t)) {
            render_error(out, API_ERR_OFFSET_OUT_OF_RANGE,
                         "offset %" PRIu64 " is beyond next_offset %" PRIu64, offset,
                         topic_next_offset(t));
            return;
        }
        start = offset < t->first_offset ? t->first_offset : offset;
        break;
    case STORE_FROM_TIME: start = topic_offset_at_time(t, offset); break;
    case STORE_FROM_EARLIEST:
    default: start = t->first_offset; break;
    }
    reply_messages(s, t, start, max, out, empty);
}

void store_list_subscriptions(const struct store *s, const char *topic,
                              const struct store_caller *who, struct reply *out)
{
    const struct topic *t = lookup_topic(s, topic, who, ACL_ANY, out);
    if (!t)
        return;
    size_t n;
    bool oom;
    struct subscription **subs = topic_sorted_subs(t, &n, &oom);
    struct render_list list;
    render_list_open(&list, "subscriptions");
    list.b.oom = oom;
    for (size_t i = 0; i < n; i++)
        render_list_subscription(&list, t, subs[i]);
    free(subs);
    (void)render_list_close(&list, out);
}

void store_get_subscription(const struct store *s, const char *topic, const char *name,
                            const struct store_caller *who, struct reply *out)
{
    struct topic *t;
    const struct subscription *sub = lookup_sub(s, topic, name, who, out, &t);
    if (sub)
        (void)render_subscription_answer(out, t, sub, false);
}

void store_list_user_subscriptions(const struct store *s, const struct store_caller *who,
                                   struct reply *out)
{
    struct render_list list;
    render_list_open(&list, "subscriptions");
    for (size_t i = 0; i < s->ntopics && !list.b.oom; i++) {
        const struct topic *t = s->topic_list[i];
        if (!store_may(&t->res, who, ACL_CONSUME))
            continue; /* a subscription the caller can no longer read */
        size_t n;
        bool oom;
        struct subscription **subs = topic_sorted_subs(t, &n, &oom);
        if (oom)
            list.b.oom = true;
        for (size_t k = 0; k < n; k++)
            if (who->user && strcmp(subs[k]->owner, who->user) == 0)
                render_list_subscription(&list, t, subs[k]);
        free(subs);
    }
    (void)render_list_close(&list, out);
}

void store_read_subscription(const struct store *s, const char *topic, const char *name,
                             uint32_t max, const struct store_caller *who, struct reply *out,
                             bool *empty)
{
    if (empty)
        *empty = true;
    struct topic *t;
    const struct subscription *sub = lookup_sub(s, topic, name, who, out, &t);
    if (sub)
        reply_messages(s, t, subscription_cursor(t, sub), max, out, empty);
}

/* ---- streams ---- */

bool store_topic_stream_start(const struct store *s, const char *topic, enum store_from from,
                              uint64_t offset, const struct store_caller *who, uint64_t *start,
                              struct reply *out)
{
    const struct topic *t = lookup_topic(s, topic, who, ACL_CONSUME, out);
    if (!t)
        return false;
    switch (from) {
    case STORE_FROM_EARLIEST: *start = t->first_offset; break;
    case STORE_FROM_OFFSET:
        if (offset > topic_next_offset(t)) {
            render_error(out, API_ERR_OFFSET_OUT_OF_RANGE,
                         "offset %" PRIu64 " is beyond next_offset %" PRIu64, offset,
                         topic_next_offset(t));
            return false;
        }
        *start = offset < t->first_offset ? t->first_offset : offset;
        break;
    case STORE_FROM_TIME: *start = topic_offset_at_time(t, offset); break;
    case STORE_FROM_LATEST:
    default: *start = topic_next_offset(t); break;
    }
    return true;
}

bool store_subscription_stream_start(const struct store *s, const char *topic, const char *name,
                                     const struct store_caller *who, uint64_t *start,
                                     struct reply *out)
{
    struct topic *t;
    const struct subscription *sub = lookup_sub(s, topic, name, who, out, &t);
    if (!sub)
        return false;
    *start = subscription_cursor(t, sub);
    return true;
}

int store_topic_each(const struct store *s, const char *topic, const char *subscription,
                     uint64_t *offset, store_message_fn fn, void *arg)
{
    const struct topic *t = topic_find(s, topic);
    if (!t || (subscription && !hashmap_get_str(t->subs, subscription)))
        return MOM_ERR_NOTFOUND;
    uint64_t off = *offset < t->first_offset ? t->first_offset : *offset;
    uint64_t end = topic_next_offset(t);
    struct jbuf b;
    jbuf_init(&b);
    int rc = MOM_OK;
    for (; off < end; off++) {
        b.len = 0;
        render_topic_message(&b, s, t, off);
        if (b.oom) {
            rc = MOM_ERR_NOMEM;
            break;
        }
        if (!fn(arg, off, b.p, b.len)) {
            off++;
            break;
        }
    }
    *offset = off;
    jbuf_cleanup(&b);
    return rc;
}
