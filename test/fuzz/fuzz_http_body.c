/* libFuzzer harness for the JSON request-body parsers (broker/http_parse):
 * every parser reads the input. A refusal must carry a 400 kind and a
 * C-string message; an accepted body must give values inside the API's
 * bounds (delays, visibility timeouts, batch sizes, content types,
 * user names and password lengths; a login's impossible password comes
 * back empty; ACL lists of at most 1000 valid user names), and a parsed
 * batch or ACL must be freeable, and a batch must read as cJSON reads it.
 * SPDX-License-Identifier: MIT */
#include "broker/http_parse.h"
#include "broker/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(int rc, const struct parse_error *e)
{
    if (rc != -1)
        abort();
    int status = api_error_status(e->kind);
    if (status != 400 || strnlen(e->message, sizeof e->message) >= sizeof e->message)
        abort();
}

/* A batch read without the JSON tree must be what cJSON reads. */
static void same_as_cjson(const char *body, size_t size, bool allow_delay,
                          const struct command_item *items, size_t n)
{
    struct command_item *c;
    size_t cn;
    uint8_t **owned;
    struct parse_error e;
    if (http_parse_batch_cjson(body, size, allow_delay, &c, &cn, &owned, &e) != 0 || cn != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (c[i].body_len != items[i].body_len ||
            (items[i].body_len && memcmp(c[i].body, items[i].body, items[i].body_len)) ||
            strcmp(c[i].content_type, items[i].content_type) || c[i].delay_ms != items[i].delay_ms)
            abort();
    http_free_batch(c, owned, cn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *body = (const char *)data;
    struct parse_error e;
    int rc;

    mom_v1_QueueSettings qs;
    rc = http_parse_queue_settings("q", body, size, &qs, &e);
    if (rc == 0) {
        if (((qs.present & (1u << 1)) && qs.visibility_timeout_ms > HTTP_MAX_VISIBILITY_MS) ||
            strcmp(qs.dead_letter_queue, "q") == 0 ||
            (qs.dead_letter_queue[0] && !router_valid_name(qs.dead_letter_queue)))
            abort();
    } else {
        refused(rc, &e);
    }

    mom_v1_TopicSettings ts;
    rc = http_parse_topic_settings(body, size, &ts, &e);
    if (rc)
        refused(rc, &e);

    for (int allow_delay = 0; allow_delay < 2; allow_delay++) {
        struct command_item *items = NULL;
        size_t n = 0;
        uint8_t **owned = NULL;
        rc = http_parse_batch(body, size, allow_delay, &items, &n, &owned, &e);
        if (rc == 0) {
            if (n < 1 || n > COMMAND_MAX_BATCH)
                abort();
            for (size_t i = 0; i < n; i++) {
                if (items[i].delay_ms > HTTP_MAX_DELAY_MS || (!allow_delay && items[i].delay_ms))
                    abort();
                if (strnlen(items[i].content_type, sizeof items[i].content_type) >=
                    sizeof items[i].content_type)
                    abort();
                if (items[i].body_len > size)
                    abort(); /* decoding never grows a body */
                volatile uint8_t sum = 0;
                for (size_t k = 0; k < items[i].body_len; k++)
                    sum ^= items[i].body[k]; /* readable in full */
                (void)sum;
            }
            same_as_cjson(body, size, allow_delay, items, n);
            http_free_batch(items, owned, n);
        } else {
            refused(rc, &e);
        }
    }

    uint64_t v;
    rc = http_parse_nack(body, size, &v, &e);
    if (rc == 0 ? v > HTTP_MAX_DELAY_MS : (refused(rc, &e), false))
        abort();
    rc = http_parse_extend(body, size, &v, &e);
    if (rc == 0 ? v > HTTP_MAX_VISIBILITY_MS : (refused(rc, &e), false))
        abort();
    rc = http_parse_sub_ack(body, size, &v, &e);
    if (rc)
        refused(rc, &e);
    enum http_sub_start start;
    uint64_t t;
    rc = http_parse_subscription(body, size, &start, &t, &e);
    if (rc)
        refused(rc, &e);
    else if (start > HTTP_SUB_TIME || (start != HTTP_SUB_TIME && t != 0))
        abort();
    bool by_time;
    rc = http_parse_seek(body, size, &by_time, &v, &t, &e);
    if (rc)
        refused(rc, &e);
    else if (by_time ? v != 0 : t != 0)
        abort(); /* exactly one of offset and time */

    struct command_users pub, con;
    rc = http_parse_acl(body, size, &pub, &con, &e);
    if (rc == 0) {
        const struct command_users *lists[2] = {&pub, &con};
        for (int l = 0; l < 2; l++) {
            if (lists[l]->count > COMMAND_ACL_MAX_USERS)
                abort();
            for (size_t i = 0; i < lists[l]->count; i++)
                if (!router_valid_name(lists[l]->names[i]))
                    abort();
        }
        free(pub.names);
        free(con.names);
    } else {
        refused(rc, &e);
        if (pub.names || con.names || pub.count || con.count)
            abort();
    }

    for (int login = 0; login < 2; login++) {
        char user[129];
        char *pw = NULL;
        size_t pwlen = 0;
        rc = login ? http_parse_login(body, size, user, &pw, &pwlen, &e)
                   : http_parse_credentials(body, size, user, &pw, &pwlen, &e);
        if (rc == 0) {
            /* a login's password outside the rules comes back empty */
            bool len_ok = (pwlen >= 8 && pwlen <= 1024) || (login && pwlen == 0);
            if (!router_valid_name(user) || !len_ok || strlen(pw) > pwlen)
                abort();
            free(pw);
        } else {
            refused(rc, &e);
            if (pw)
                abort();
        }
    }
    return 0;
}
