/* The store's core: lifecycle, the apply dispatcher, users,
 * Idempotency-Keys, the deadline heap behind Tick and store_next_deadline,
 * and stats. Access checks and ACLs live in store_acl.c; queue, topic and
 * snapshot logic in store_queue.c, store_topic.c and store_snapshot.c
 * (layout in store_internal.h).
 *
 * "now" for a command is max(Command.time_ms, last applied time): apply
 * never reads a clock, and time never runs backwards.
 * SPDX-License-Identifier: MIT */
#include "broker/store_internal.h"

#include "common/err.h"
#include "common/grow.h"
#include "common/log.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers shared by the store's parts ---- */

void store_notify(struct store *s, enum store_change change, const char *name)
{
    if (s->observer)
        s->observer(s->observer_arg, change, name);
}

bool store_may_delete(const struct resource *res, const char *noun, enum api_error not_found,
                      const char *name, const struct command *cmd, struct reply *r)
{
    if (!res) {
        render_error(r, not_found, "%s '%s' does not exist", noun, name);
        return false;
    }
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!store_may_admin(res, &who)) {
        render_error(r, API_ERR_FORBIDDEN, "only the owner or an admin may delete %s '%s'", noun,
                     name);
        return false;
    }
    return true;
}

void store_deleted(struct store *s, enum store_change change, const char *name, struct reply *r)
{
    store_notify(s, change, name);
    render_no_content(r);
}

uint64_t store_message_id(uint64_t index, size_t item)
{
    return (index << 10) | (uint64_t)item;
}

int store_intern_content_type(struct store *s, const char *ct, uint32_t *id)
{
    if (!ct[0])
        ct = STORE_DEFAULT_CONTENT_TYPE;
    return strtab_intern(s->strs, ct, strnlen(ct, 255), id);
}

int store_intern_item_content_type(struct store *s, const struct command *cmd, size_t i,
                                   uint32_t *id)
{
    const char *ct = cmd->items[i].content_type;
    if (i > 0 &&
        strncmp(ct, cmd->items[i - 1].content_type, sizeof cmd->items[i].content_type) == 0) {
        strtab_ref(s->strs, *id);
        return MOM_OK;
    }
    return store_intern_content_type(s, ct, id);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ---- deadlines ---- */

static int deadline_cmp(const void *a, const void *b)
{
    const struct resource *x = a, *y = b;
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void deadline_setpos(void *item, size_t pos)
{
    ((struct resource *)item)->deadline_pos = pos;
}

void store_set_deadline(struct store *s, struct resource *r, uint64_t when)
{
    if (when == STORE_NO_TIME) {
        if (r->deadline_pos != STORE_NOT_IN_HEAP)
            heap_remove(&s->deadlines, r->deadline_pos);
        r->deadline_pos = STORE_NOT_IN_HEAP;
        r->deadline = STORE_NO_TIME;
        return;
    }
    r->deadline = when;
    if (r->deadline_pos != STORE_NOT_IN_HEAP)
        heap_update(&s->deadlines, r->deadline_pos);
    else if (heap_push(&s->deadlines, r) != MOM_OK)
        s->oom = true; /* allocation failure: this resource misses Ticks */
}

uint64_t store_next_deadline(const struct store *s)
{
    const struct resource *r = heap_peek(&s->deadlines);
    return r ? r->deadline : UINT64_MAX;
}

/* ---- resources ---- */

int store_resource_init(struct resource *r, uint8_t kind, const char *name, const char *owner,
                        uint64_t created_at, uint64_t incarnation, bool private_access)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->name = dupstr(name);
    r->owner = dupstr(owner);
    r->created_at = created_at;
    r->incarnation = incarnation;
    r->private_access = private_access;
    r->deadline = STORE_NO_TIME;
    r->deadline_pos = STORE_NOT_IN_HEAP;
    if (!r->name || !r->owner) {
        store_resource_cleanup(r);
        return MOM_ERR_NOMEM;
    }
    return MOM_OK;
}

void store_resource_cleanup(struct resource *r)
{
    free(r->name);
    free(r->owner);
    hashmap_free(r->idem);
    store_acl_cleanup(r);
    r->name = NULL;
    r->owner = NULL;
    r->idem = NULL;
}

/* Binary search in a name-sorted array of resources (queue or topic
 * pointers, whose first member is the resource). */
static size_t sorted_find(void *const *list, size_t n, const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(((const struct resource *)list[mid])->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int store_add_resource(struct store *s, struct resource *r)
{
    bool is_queue = r->kind == RES_QUEUE;
    struct hashmap *map = is_queue ? s->queues : s->topics;
    void ***list = is_queue ? (void ***)&s->queue_list : (void ***)&s->topic_list;
    size_t *n = is_queue ? &s->nqueues : &s->ntopics;
    size_t *cap = is_queue ? &s->queue_cap : &s->topic_cap;
    if (heap_reserve(&s->deadlines, s->nqueues + s->ntopics + 1) != MOM_OK)
        return MOM_ERR_NOMEM;
    void **nl = grow_array(*list, cap, *n + 1, sizeof *nl, 16);
    if (!nl)
        return MOM_ERR_NOMEM;
    *list = nl;
    if (hashmap_put_str(map, r->name, r) != MOM_OK)
        return MOM_ERR_NOMEM;
    bool found;
    size_t pos = sorted_find(*list, *n, r->name, &found);
    memmove(*list + pos + 1, *list + pos, (*n - pos) * sizeof **list);
    (*list)[pos] = r;
    (*n)++;
    return MOM_OK;
}

static void idem_unlink(struct store *s, struct idem_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->idem_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->idem_tail = e->prev;
}

static void idem_free(struct idem_entry *e)
{
    reply_cleanup(&e->answer);
    free(e->key);
    free(e);
}

void store_remove_resource(struct store *s, struct resource *r)
{
    bool is_queue = r->kind == RES_QUEUE;
    struct hashmap *map = is_queue ? s->queues : s->topics;
    void **list = is_queue ? (void **)s->queue_list : (void **)s->topic_list;
    size_t *n = is_queue ? &s->nqueues : &s->ntopics;
    store_set_deadline(s, r, STORE_NO_TIME);
    hashmap_remove_str(map, r->name);
    bool found;
    size_t pos = sorted_find(list, *n, r->name, &found);
    if (found) {
        memmove(list + pos, list + pos + 1, (*n - pos - 1) * sizeof *list);
        (*n)--;
    }
    size_t it = 0;
    void *v;
    while (hashmap_next(r->idem, &it, NULL, NULL, &v)) {
        idem_unlink(s, v);
        idem_free(v);
    }
    hashmap_free(r->idem);
    r->idem = NULL;
}

/* ---- idempotency ----
 * A publish with an Idempotency-Key remembers its answer for
 * STORE_IDEM_WINDOW_MS from the first apply; a repeat inside the window gets
 * a copy (status and body) and stores nothing. Only 2xx answers are
 * remembered: an error (not found, forbidden, queue full...) changed nothing, so a retry with
 * the same key is applied afresh and may succeed. Entries live in one
 * store-wide list in apply order (times never decrease), so expired ones are
 * purged from its head. */

static void idem_remove(struct store *s, struct idem_entry *e)
{
    hashmap_remove_str(e->res->idem, e->key);
    idem_unlink(s, e);
    idem_free(e);
}

static void idem_purge(struct store *s, uint64_t now)
{
    while (s->idem_head && now - s->idem_head->time >= STORE_IDEM_WINDOW_MS)
        idem_remove(s, s->idem_head);
}

const struct reply *store_idem_find(struct store *s, struct resource *r, const char *key,
                                    uint64_t now)
{
    struct idem_entry *e = hashmap_get_str(r->idem, key);
    if (!e)
        return NULL;
    if (now - e->time >= STORE_IDEM_WINDOW_MS) {
        idem_remove(s, e);
        return NULL;
    }
    return &e->answer;
}

int store_idem_remember(struct store *s, struct resource *r, const char *key, uint64_t time,
                        const struct reply *answer)
{
    if (!r->idem) {
        r->idem = hashmap_new();
        if (!r->idem)
            return MOM_ERR_NOMEM;
    }
    struct idem_entry *old = hashmap_get_str(r->idem, key);
    if (old)
        idem_remove(s, old);
    struct idem_entry *e = calloc(1, sizeof *e);
    if (!e)
        return MOM_ERR_NOMEM;
    e->res = r;
    e->time = time;
    e->key = dupstr(key);
    if (!e->key || reply_copy(&e->answer, answer) != MOM_OK ||
        hashmap_put_str(r->idem, e->key, e) != MOM_OK) {
        idem_free(e);
        return MOM_ERR_NOMEM;
    }
    /* Keep the list sorted by time (snapshot restore may insert out of order). */
    struct idem_entry *after = s->idem_tail;
    while (after && after->time > time)
        after = after->prev;
    e->prev = after;
    e->next = after ? after->next : s->idem_head;
    if (e->next)
        e->next->prev = e;
    else
        s->idem_tail = e;
    if (after)
        after->next = e;
    else
        s->idem_head = e;
    return MOM_OK;
}

/* ---- lifecycle ---- */

struct store *store_new(void)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->queues = hashmap_new();
    s->topics = hashmap_new();
    s->users = hashmap_new();
    s->strs = strtab_new();
    heap_init(&s->deadlines, deadline_cmp, deadline_setpos);
    struct receipt_key key;
    if (!s->queues || !s->topics || !s->users || !s->strs ||
        RAND_bytes(key.bytes, sizeof key.bytes) != 1 || store_set_receipt_key(s, &key) != MOM_OK) {
        store_free(s);
        s = NULL;
    }
    OPENSSL_cleanse(&key, sizeof key);
    return s;
}

static void user_free(struct user *u)
{
    free(u->name);
    free(u->password_hash);
    free(u);
}

void store_clear(struct store *s)
{
    while (s->nqueues)
        queue_destroy(s, s->queue_list[s->nqueues - 1]);
    while (s->ntopics)
        topic_destroy(s, s->topic_list[s->ntopics - 1]);
    size_t it = 0;
    void *v;
    while (hashmap_next(s->users, &it, NULL, NULL, &v))
        user_free(v);
    hashmap_free(s->users);
    s->users = hashmap_new();
    s->applied_index = 0;
    s->last_time = 0;
    s->messages = 0;
    s->bytes = 0;
    s->dropped_no_dlq = 0;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    if (s->queues && s->topics && s->users && s->strs)
        store_clear(s);
    hashmap_free(s->queues);
    hashmap_free(s->topics);
    hashmap_free(s->users);
    strtab_free(s->strs);
    heap_cleanup(&s->deadlines);
    receipt_signer_free(s->signer);
    free(s->queue_list);
    free(s->topic_list);
    free(s);
}

void store_set_observer(struct store *s, store_observer_fn fn, void *arg)
{
    s->observer = fn;
    s->observer_arg = arg;
}

int store_set_receipt_key(struct store *s, const struct receipt_key *key)
{
    struct receipt_signer *sg = receipt_signer_new(key);
    if (!sg)
        return MOM_ERR_NOMEM;
    receipt_signer_free(s->signer);
    s->signer = sg;
    return MOM_OK;
}

uint64_t store_applied_index(const struct store *s)
{
    return s->applied_index;
}

uint64_t store_last_time(const struct store *s)
{
    return s->last_time;
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
    uint64_t subs = 0;
    for (size_t i = 0; i < s->ntopics; i++)
        subs += hashmap_count(s->topic_list[i]->subs);
    out->queues = s->nqueues;
    out->topics = s->ntopics;
    out->subscriptions = subs;
    out->users = hashmap_count(s->users);
    out->messages = s->messages;
    out->bytes = s->bytes;
    out->dropped_no_dlq = s->dropped_no_dlq;
}

/* ---- users ---- */

const char *store_user_password_hash(const struct store *s, const char *username)
{
    const struct user *u = hashmap_get_str(s->users, username);
    return u ? u->password_hash : NULL;
}

static int apply_register_user(struct store *s, uint64_t now, const struct command *cmd,
                               struct reply *r)
{
    const mom_v1_RegisterUser *ru = &cmd->pb.kind.register_user;
    if (!ru->username[0]) {
        render_error(r, API_ERR_BAD_REQUEST, "username is empty");
        return MOM_OK;
    }
    if (hashmap_get_str(s->users, ru->username)) {
        render_error(r, API_ERR_CONFLICT, "user '%s' already exists", ru->username);
        return MOM_OK;
    }
    struct user *u = calloc(1, sizeof *u);
    if (!u)
        return MOM_ERR_NOMEM;
    u->name = dupstr(ru->username);
    u->password_hash = dupstr(ru->password_hash);
    u->created_at = now;
    if (!u->name || !u->password_hash || hashmap_put_str(s->users, u->name, u) != MOM_OK) {
        user_free(u);
        return MOM_ERR_NOMEM;
    }
    return render_user_created(r, u);
}

int store_restore_user(struct store *s, const char *name, const char *hash, uint64_t created_at)
{
    if (hashmap_get_str(s->users, name))
        return MOM_ERR_CORRUPT;
    struct user *u = calloc(1, sizeof *u);
    if (!u)
        return MOM_ERR_NOMEM;
    u->name = dupstr(name);
    u->password_hash = dupstr(hash);
    u->created_at = created_at;
    if (!u->name || !u->password_hash || hashmap_put_str(s->users, u->name, u) != MOM_OK) {
        user_free(u);
        return MOM_ERR_NOMEM;
    }
    return MOM_OK;
}

/* ---- publish (queues and topics share validation and idempotency) ---- */

struct resource *resource_find(const struct store *s, unsigned kind, const char *name)
{
    if (kind == RES_QUEUE)
        return (struct resource *)queue_find(s, name);
    if (kind == RES_TOPIC)
        return (struct resource *)topic_find(s, name);
    return NULL;
}

struct resource *store_lookup_resource(const struct store *s, bool is_queue, const char *name,
                                       struct reply *r)
{
    struct resource *res = resource_find(s, is_queue ? RES_QUEUE : RES_TOPIC, name);
    if (!res)
        render_error(r, is_queue ? API_ERR_QUEUE_NOT_FOUND : API_ERR_TOPIC_NOT_FOUND,
                     "%s '%s' does not exist", is_queue ? "queue" : "topic", name);
    return res;
}

static int apply_publish(struct store *s, uint64_t index, uint64_t now, const struct command *cmd,
                         struct reply *out)
{
    const mom_v1_Publish *p = &cmd->pb.kind.publish;
    if (p->kind != mom_v1_ResourceKind_QUEUE && p->kind != mom_v1_ResourceKind_TOPIC) {
        render_error(out, API_ERR_BAD_REQUEST, "unknown resource kind");
        return MOM_OK;
    }
    bool is_queue = p->kind == mom_v1_ResourceKind_QUEUE;
    if (cmd->item_count < 1 || cmd->item_count > COMMAND_MAX_BATCH) {
        render_error(out, API_ERR_BAD_REQUEST, "a publish carries 1 to %d messages",
                     COMMAND_MAX_BATCH);
        return MOM_OK;
    }
    for (size_t i = 0; i < cmd->item_count; i++) {
        const struct command_item *it = &cmd->items[i];
        if (it->body_len > UINT32_MAX) {
            render_error(out, API_ERR_BAD_REQUEST, "message %zu is too large", i);
            return MOM_OK;
        }
        if (it->delay_ms && !is_queue) {
            render_error(out, API_ERR_BAD_REQUEST, "topics do not take a delay");
            return MOM_OK;
        }
        if (it->delay_ms > STORE_MAX_DELAY_MS) {
            render_error(out, API_ERR_BAD_REQUEST, "delay_ms must be 0..%u", STORE_MAX_DELAY_MS);
            return MOM_OK;
        }
    }
    struct resource *res = store_lookup_resource(s, is_queue, p->name, out);
    if (!res)
        return MOM_OK;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!store_may(res, &who, ACL_PUBLISH)) {
        store_forbidden(out, res, ACL_PUBLISH);
        return MOM_OK;
    }
    const char *key = p->idempotency_key[0] ? p->idempotency_key : NULL;
    if (key) {
        const struct reply *first = store_idem_find(s, res, key, now);
        if (first) {
            if (!out)
                return MOM_OK;
            reply_cleanup(out);
            return reply_copy(out, first);
        }
    }
    struct reply local = {0};
    struct reply *r = out ? out : (key ? &local : NULL);
    int rc = is_queue ? queue_apply_publish(s, (struct queue *)res, index, now, cmd, r)
                      : topic_apply_publish(s, (struct topic *)res, index, now, cmd, r);
    if (rc == MOM_OK && key && reply_is_success(r))
        rc = store_idem_remember(s, res, key, now, r);
    reply_cleanup(&local);
    return rc;
}

/* ---- apply ---- */

static void apply_tick(struct store *s, uint64_t now)
{
    struct resource *res;
    while ((res = heap_peek(&s->deadlines)) && res->deadline <= now) {
        if (res->kind == RES_QUEUE)
            queue_advance(s, (struct queue *)res, now);
        else
            topic_advance(s, (struct topic *)res, now);
        if (res->deadline <= now) {
            /* Cannot happen: advancing handles everything due by now. */
            log_error("store: deadline of '%s' did not move past %" PRIu64, res->name, now);
            store_set_deadline(s, res, STORE_NO_TIME);
        }
    }
}

int store_apply(struct store *s, uint64_t index, const struct command *cmd, struct reply *out)
{
    uint64_t now = cmd->pb.time_ms > s->last_time ? cmd->pb.time_ms : s->last_time;
    s->oom = false;
    s->last_time = now;
    s->applied_index = index;
    idem_purge(s, now);
    int rc = MOM_OK;
    switch (cmd->pb.which_kind) {
    case mom_v1_Command_create_queue_tag: rc = queue_apply_create(s, index, now, cmd, out); break;
    case mom_v1_Command_delete_queue_tag: rc = queue_apply_delete(s, now, cmd, out); break;
    case mom_v1_Command_create_topic_tag: rc = topic_apply_create(s, index, now, cmd, out); break;
    case mom_v1_Command_delete_topic_tag: rc = topic_apply_delete(s, now, cmd, out); break;
    case mom_v1_Command_publish_tag: rc = apply_publish(s, index, now, cmd, out); break;
    case mom_v1_Command_receive_tag: rc = queue_apply_receive(s, now, cmd, out); break;
    case mom_v1_Command_ack_tag: rc = queue_apply_ack(s, now, cmd, out); break;
    case mom_v1_Command_nack_tag: rc = queue_apply_nack(s, now, cmd, out); break;
    case mom_v1_Command_extend_tag: rc = queue_apply_extend(s, now, cmd, out); break;
    case mom_v1_Command_release_leases_tag: rc = queue_apply_release(s, now, cmd, out); break;
    case mom_v1_Command_tick_tag:
        apply_tick(s, now);
        render_no_content(out);
        break;
    case mom_v1_Command_create_subscription_tag:
        rc = topic_apply_create_subscription(s, now, cmd, out);
        break;
    case mom_v1_Command_delete_subscription_tag:
        rc = topic_apply_delete_subscription(s, now, cmd, out);
        break;
    case mom_v1_Command_subscription_ack_tag:
        rc = topic_apply_subscription_ack(s, now, cmd, out);
        break;
    case mom_v1_Command_seek_subscription_tag:
        rc = topic_apply_seek_subscription(s, now, cmd, out);
        break;
    case mom_v1_Command_register_user_tag: rc = apply_register_user(s, now, cmd, out); break;
    case mom_v1_Command_set_acl_tag: rc = store_apply_set_acl(s, cmd, out); break;
    case mom_v1_Command_noop_tag:
    default: render_no_content(out); break;
    }
    if (s->oom)
        rc = MOM_ERR_NOMEM;
    if (rc == MOM_ERR_NOMEM && out)
        render_error(out, API_ERR_UNAVAILABLE, "out of memory");
    return rc;
}
