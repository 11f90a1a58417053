/* Access control of queues and topics: who may publish to, consume from,
 * see, delete or re-ACL a resource, and the ACL itself (SetAcl apply, the
 * GET .../acl read, the checks other modules call).
 *
 * A public resource lets every authenticated caller publish and consume; a
 * private one only its owner, admins and the users on the matching ACL
 * list. The lists are stored for public resources too (so that making the
 * ACL first and reading it back works the same everywhere) but only
 * private ones consult them. Each list holds distinct names in strcmp
 * order, so a membership check is a binary search and two replicas that
 * applied the same SetAcl hold the same bytes.
 * SPDX-License-Identifier: MIT */
#include "broker/router.h"
#include "broker/store_internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

/* ---- checks ---- */

static bool acl_has(const struct acl_list *l, const char *user)
{
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->users[mid], user);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool store_may_admin(const struct resource *r, const struct store_caller *who)
{
    return who->admin || (who->user && strcmp(who->user, r->owner) == 0);
}

bool store_may(const struct resource *r, const struct store_caller *who, enum acl_right right)
{
    if (!r->private_access || store_may_admin(r, who))
        return true;
    if (!who->user)
        return false;
    if (right == ACL_ANY)
        return acl_has(&r->acl[ACL_PUBLISH], who->user) || acl_has(&r->acl[ACL_CONSUME], who->user);
    return acl_has(&r->acl[right], who->user);
}

void store_forbidden(struct reply *r, const struct resource *res, enum acl_right right)
{
    const char *noun = res->kind == RES_QUEUE ? "queue" : "topic";
    static const char *const what[] = {
        [ACL_PUBLISH] = "publishing to it needs its owner, an admin or its ACL's publish list",
        [ACL_CONSUME] = "consuming from it needs its owner, an admin or its ACL's consume list",
        [ACL_ANY] = "only its owner, admins and the users on its ACL may use it",
    };
    render_error(r, API_ERR_FORBIDDEN, "%s '%s' is private: %s", noun, res->name, what[right]);
}

/* The resource of kind/name for the public checks, or NULL with out
 * holding the 404 (or 400 for an unknown kind). */
static struct resource *public_lookup(const struct store *s, mom_v1_ResourceKind kind,
                                      const char *name, struct reply *out)
{
    if (kind != mom_v1_ResourceKind_QUEUE && kind != mom_v1_ResourceKind_TOPIC) {
        render_error(out, API_ERR_BAD_REQUEST, "unknown resource kind");
        return NULL;
    }
    return store_lookup_resource(s, kind == mom_v1_ResourceKind_QUEUE, name, out);
}

static bool may_or_answer(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                          const struct store_caller *who, enum acl_right right, struct reply *out)
{
    const struct resource *res = public_lookup(s, kind, name, out);
    if (!res)
        return false;
    if (!store_may(res, who, right)) {
        store_forbidden(out, res, right);
        return false;
    }
    return true;
}

bool store_may_publish(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                       const struct store_caller *who, struct reply *out)
{
    return may_or_answer(s, kind, name, who, ACL_PUBLISH, out);
}

bool store_may_consume(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                       const struct store_caller *who, struct reply *out)
{
    return may_or_answer(s, kind, name, who, ACL_CONSUME, out);
}

/* ---- the lists ---- */

static void list_free(struct acl_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->users[i]);
    free(l->users);
    l->users = NULL;
    l->count = 0;
}

void store_acl_cleanup(struct resource *res)
{
    for (size_t i = 0; i < ACL_LISTS; i++)
        list_free(&res->acl[i]);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int store_acl_set(struct resource *res, enum acl_right list, const char *const *users, size_t n)
{
    struct acl_list next = {0};
    if (n) {
        next.users = malloc(n * sizeof *next.users);
        if (!next.users)
            return MOM_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            next.users[i] = (char *)users[i]; /* borrowed until copied below */
        qsort(next.users, n, sizeof *next.users, by_string);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            if (kept == 0 || strcmp(next.users[kept - 1], next.users[i]) != 0)
                next.users[kept++] = next.users[i];
        for (next.count = 0; next.count < kept; next.count++) {
            char *copy = strdup(next.users[next.count]);
            if (!copy) {
                list_free(&next); /* frees the copies made so far */
                return MOM_ERR_NOMEM;
            }
            next.users[next.count] = copy;
        }
    }
    list_free(&res->acl[list]);
    res->acl[list] = next;
    return MOM_OK;
}

/* ---- SetAcl and GET .../acl ---- */

/* The names of a SetAcl list as pointers (malloc'd array; NULL when empty
 * or on allocation failure, told apart by *oom), or NULL with r holding
 * the 400 when a name is not a valid user name. */
static const char **list_names(const struct command_users *u, const char *which, struct reply *r,
                               bool *bad, bool *oom)
{
    *bad = false;
    *oom = false;
    if (u->count == 0)
        return NULL;
    const char **names = malloc(u->count * sizeof *names);
    if (!names) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < u->count; i++) {
        if (!router_valid_name(u->names[i])) {
            render_error(r, API_ERR_BAD_REQUEST,
                         "user %zu of the %s list must match ^[A-Za-z0-9._-]{1,128}$", i, which);
            free(names);
            *bad = true;
            return NULL;
        }
        names[i] = u->names[i];
    }
    return names;
}

int store_apply_set_acl(struct store *s, const struct command *cmd, struct reply *r)
{
    const mom_v1_SetAcl *a = &cmd->pb.kind.set_acl;
    struct resource *res = public_lookup(s, a->kind, a->name, r);
    if (!res)
        return MOM_OK;
    struct store_caller who = {cmd->pb.user, cmd->pb.admin};
    if (!store_may_admin(res, &who)) {
        render_error(r, API_ERR_FORBIDDEN,
                     "only the owner or an admin may change the ACL of %s '%s'",
                     res->kind == RES_QUEUE ? "queue" : "topic", res->name);
        return MOM_OK;
    }
    bool bad, oom;
    const char **pub = list_names(&cmd->acl_publish, "publish", r, &bad, &oom);
    if (bad || oom)
        return oom ? MOM_ERR_NOMEM : MOM_OK;
    const char **con = list_names(&cmd->acl_consume, "consume", r, &bad, &oom);
    if (bad || oom) {
        free(pub);
        return oom ? MOM_ERR_NOMEM : MOM_OK;
    }
    /* Both lists are built before either replaces the old one, so that a
     * failed allocation leaves the whole ACL as it was. */
    struct resource staged = {0};
    int rc = store_acl_set(&staged, ACL_PUBLISH, pub, cmd->acl_publish.count);
    if (rc == MOM_OK)
        rc = store_acl_set(&staged, ACL_CONSUME, con, cmd->acl_consume.count);
    free(pub);
    free(con);
    if (rc != MOM_OK) {
        store_acl_cleanup(&staged);
        return rc;
    }
    store_acl_cleanup(res);
    memcpy(res->acl, staged.acl, sizeof res->acl);
    /* Wake the long polls and streams of this resource: each checks its
     * caller again and a caller taken off a list gets its 403 (or its
     * stream ends) now rather than at the next message. */
    store_notify(s, res->kind == RES_QUEUE ? STORE_QUEUE_READY : STORE_TOPIC_APPENDED, res->name);
    return render_acl(r, res);
}

void store_get_acl(const struct store *s, mom_v1_ResourceKind kind, const char *name,
                   const struct store_caller *who, struct reply *out)
{
    const struct resource *res = public_lookup(s, kind, name, out);
    if (!res)
        return;
    if (!store_may_admin(res, who)) {
        render_error(out, API_ERR_FORBIDDEN,
                     "only the owner or an admin may read the ACL of %s '%s'",
                     res->kind == RES_QUEUE ? "queue" : "topic", res->name);
        return;
    }
    (void)render_acl(out, res);
}
