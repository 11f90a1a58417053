/* Read-only numbers of the store for /metrics: per queue (depth, in flight,
 * delayed and the apply-time counters), per topic (retained messages and
 * bytes, messages ever published) and per subscription (cursor, lag). Owns
 * nothing; the names returned point into the store.
 * SPDX-License-Identifier: MIT */
#include "broker/store_internal.h"

size_t store_queue_count(const struct store *s)
{
    return s->nqueues;
}

size_t store_topic_count(const struct store *s)
{
    return s->ntopics;
}

bool store_queue_metrics_at(const struct store *s, size_t i, struct store_queue_metrics *out)
{
    if (i >= s->nqueues)
        return false;
    const struct queue *q = s->queue_list[i];
    size_t stored = q->fifo_len + q->ready.len + q->delayed.len + q->leased.len;
    out->name = q->res.name;
    out->depth = stored - q->leased.len; /* as GET /v1/queues/{q} counts it */
    out->in_flight = q->leased.len;
    out->delayed = q->delayed.len;
    out->published = q->published;
    out->acked = q->acked;
    out->dead_lettered = q->dead_lettered;
    return true;
}

bool store_topic_metrics_at(const struct store *s, size_t i, struct store_topic_metrics *out)
{
    if (i >= s->ntopics)
        return false;
    const struct topic *t = s->topic_list[i];
    out->name = t->res.name;
    out->messages = t->count;
    out->bytes = t->bytes;
    out->published = t->first_offset + t->count;
    out->subscriptions = hashmap_count(t->subs);
    return true;
}

bool store_subscription_metrics_next(const struct store *s, size_t topic_i, size_t *iter,
                                     struct store_subscription_metrics *out)
{
    if (topic_i >= s->ntopics)
        return false;
    const struct topic *t = s->topic_list[topic_i];
    const void *key;
    size_t klen;
    void *value;
    if (!hashmap_next(t->subs, iter, &key, &klen, &value))
        return false;
    const struct subscription *sub = value;
    uint64_t next = t->first_offset + t->count;
    uint64_t cursor = sub->cursor < t->first_offset ? t->first_offset : sub->cursor;
    out->name = sub->name;
    out->cursor = cursor;
    out->lag = next - cursor;
    return true;
}
