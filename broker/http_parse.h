/* Pure parsers for the REST layer: query-string values, integers with the
 * API's rules (digits only, clamped or bounded), and the JSON request bodies
 * (queue/topic settings, batch, nack/extend/ack/subscription bodies, user
 * credentials, ACLs) into Command fields. They never see evhtp; every error comes
 * back as an error kind (api_error.h) and a message for the client.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_HTTP_PARSE_H
#define MOM_BROKER_HTTP_PARSE_H

#include "broker/api_error.h"
#include "broker/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct parse_error {
    enum api_error kind; /* API_ERR_BAD_REQUEST, _INVALID_JSON or _INVALID_NAME */
    char message[256];
};

/* Finds key in a raw query string ("a=1&b=2"), percent-decoding the value
 * into out. "%00" is left as it is (three bytes): a decoded NUL would cut
 * the value short, so "from=earliest%00x" must reach the value's parser as
 * what it is, not as "earliest". Returns true when present. */
bool http_query_get(const char *query, const char *key, char *out, size_t outlen);

/* Unsigned decimal integer, digits only. Values above max are clamped when
 * clamp, else an error. Returns 0 or -1 with err filled (naming `what`). */
int http_parse_uint(const char *text, uint64_t max, bool clamp, const char *what, uint64_t *out,
                    struct parse_error *err);

/* Queue settings body (may be empty) for queue `name`. */
int http_parse_queue_settings(const char *name, const char *body, size_t len,
                              mom_v1_QueueSettings *out, struct parse_error *err);
int http_parse_topic_settings(const char *body, size_t len, mom_v1_TopicSettings *out,
                              struct parse_error *err);

/* Batch body. Fills items (malloc'd array, *count entries) whose bodies
 * point into body or are malloc'd copies listed in *owned (NULL where the
 * body points into the request; free each, then the arrays). The common
 * shape (items with only a body without escapes) is read without a JSON
 * tree; every other body takes http_parse_batch_cjson. */
int http_parse_batch(const char *body, size_t len, bool allow_delay, struct command_item **items,
                     size_t *count, uint8_t ***owned, struct parse_error *err);
/* The same through cJSON for every body (bodies always copied); tests and
 * the fuzz target compare the two. */
int http_parse_batch_cjson(const char *body, size_t len, bool allow_delay,
                           struct command_item **items, size_t *count, uint8_t ***owned,
                           struct parse_error *err);
void http_free_batch(struct command_item *items, uint8_t **owned, size_t count);

/* {"delay_ms": N} optional (empty body allowed). */
int http_parse_nack(const char *body, size_t len, uint64_t *delay_ms, struct parse_error *err);
/* {"visibility_timeout_ms": N} required, N <= 12 h. */
int http_parse_extend(const char *body, size_t len, uint64_t *vt_ms, struct parse_error *err);
/* {"offset": N} required. */
int http_parse_sub_ack(const char *body, size_t len, uint64_t *offset, struct parse_error *err);
/* Where a new subscription starts: {"start": "latest" | "earliest" |
 * "time:<RFC 3339>"}, optional (latest). */
enum http_sub_start { HTTP_SUB_LATEST, HTTP_SUB_EARLIEST, HTTP_SUB_TIME };
int http_parse_subscription(const char *body, size_t len, enum http_sub_start *start,
                            uint64_t *time_ms, struct parse_error *err);
/* A seek body: exactly one of {"offset": N} and {"time": "<RFC 3339>"}.
 * Sets *by_time and either *offset or *time_ms. */
int http_parse_seek(const char *body, size_t len, bool *by_time, uint64_t *offset,
                    uint64_t *time_ms, struct parse_error *err);
/* {"username","password"}: username matches the name rule, password 8..1024
 * bytes (registration). *password is malloc'd, the caller frees it. */
int http_parse_credentials(const char *body, size_t len, char username[129], char **password,
                           size_t *password_len, struct parse_error *err);
/* The same body for a login. A password outside 8..1024 bytes cannot be
 * right: it comes back as the empty password (*password_len 0), which no
 * stored hash matches, so the login fails like any wrong one (401
 * invalid_credentials, counted by the failed-login limits) whatever its
 * length. */
int http_parse_login(const char *body, size_t len, char username[129], char **password,
                     size_t *password_len, struct parse_error *err);

/* {"publish":[users],"consume":[users]}, a JSON object (required): each
 * list optional (missing = empty), at most COMMAND_ACL_MAX_USERS names
 * matching the name rule (duplicates allowed; the store drops them); any
 * other field, or either field twice, is refused. The lists are filled
 * with command_users_add and belong to the caller (command_cleanup); on
 * error they are freed and zeroed. */
int http_parse_acl(const char *body, size_t len, struct command_users *publish,
                   struct command_users *consume, struct parse_error *err);

#define HTTP_MAX_DELAY_MS 86400000ull
#define HTTP_MAX_VISIBILITY_MS 43200000ull

#endif
