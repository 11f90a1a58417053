/* Request parsing for the REST layer: query values and JSON bodies, with a
 * type for every field and 400 for wrong types and unknown fields.
 * A cJSON tree never leaves the function that parsed it.
 * SPDX-License-Identifier: MIT */
#include "broker/http_parse.h"

#include "broker/router.h"
#include "broker/stream_params.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/hex.h"
#include "common/number.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct parse_error *err, enum api_error kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parse_error *err, enum api_error kind, const char *fmt, ...)
{
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

bool http_query_get(const char *query, const char *key, char *out, size_t outlen)
{
    if (!query)
        return false;
    size_t klen = strlen(key);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t namelen = eq ? (size_t)(eq - p) : len;
        if (namelen == klen && !memcmp(p, key, klen)) {
            const char *v = eq ? eq + 1 : p + len;
            const char *end = p + len;
            size_t o = 0;
            while (v < end && o + 1 < outlen) {
                char c = *v++;
                if (c == '+')
                    c = ' ';
                else if (c == '%' && end - v >= 2 && hex_digit_value(v[0]) >= 0 &&
                         hex_digit_value(v[1]) >= 0 && (v[0] != '0' || v[1] != '0')) {
                    c = (char)(hex_digit_value(v[0]) * 16 + hex_digit_value(v[1]));
                    v += 2;
                }
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        p += len + (amp ? 1 : 0);
    }
    return false;
}

int http_parse_uint(const char *text, uint64_t max, bool clamp, const char *what, uint64_t *out,
                    struct parse_error *err)
{
    if (!*text)
        return fail(err, API_ERR_BAD_REQUEST, "%s must be a non-negative integer", what);
    uint64_t v = 0;
    bool overflow = false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return fail(err, API_ERR_BAD_REQUEST, "%s must be a non-negative integer", what);
        uint64_t d = (uint64_t)(*p - '0');
        if (overflow || v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (overflow || v > max) {
        if (!clamp)
            return fail(err, API_ERR_BAD_REQUEST, "%s must be at most %llu", what,
                        (unsigned long long)max);
        v = max;
    }
    *out = v;
    return 0;
}

/* ---- JSON helpers ---- */

static bool body_is_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
            return false;
    return true;
}

/* Parses an object body. *root is NULL for an empty body when optional. */
static int parse_object(const char *body, size_t len, bool optional, cJSON **root,
                        struct parse_error *err)
{
    *root = NULL;
    if (!body || body_is_blank(body, len)) {
        if (optional)
            return 0;
        return fail(err, API_ERR_BAD_REQUEST, "a JSON object body is required");
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (j && end && !body_is_blank(end, len - (size_t)(end - body))) {
        cJSON_Delete(j);
        j = NULL;
    }
    if (!j)
        return fail(err, API_ERR_INVALID_JSON, "the body is not valid JSON");
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(err, API_ERR_BAD_REQUEST, "the body must be a JSON object");
    }
    *root = j;
    return 0;
}

/* A JSON integer 0..max, exact (number.h): 2^53 and above is refused
 * rather than rounded. */
static int json_uint(const cJSON *item, uint64_t max, uint64_t *out, struct parse_error *err)
{
    if (!cJSON_IsNumber(item))
        return fail(err, API_ERR_BAD_REQUEST, "field '%s' must be an integer", item->string);
    switch (number_exact_uint(item->valuedouble, max, out)) {
    case NUMBER_OK: return 0;
    case NUMBER_NOT_INTEGER:
        return fail(err, API_ERR_BAD_REQUEST, "field '%s' must be a non-negative integer",
                    item->string);
    case NUMBER_INEXACT:
        return fail(err, API_ERR_BAD_REQUEST,
                    "field '%s' must be below 2^53 (9007199254740992) to be read exactly",
                    item->string);
    case NUMBER_TOO_LARGE:
    default:
        return fail(err, API_ERR_BAD_REQUEST, "field '%s' must be at most %llu", item->string,
                    (unsigned long long)max);
    }
}

static int unknown_field(const cJSON *item, struct parse_error *err)
{
    return fail(err, API_ERR_BAD_REQUEST, "unknown field '%s'", item->string);
}

static int json_access(const cJSON *item, bool *private_access, struct parse_error *err)
{
    if (!cJSON_IsString(item))
        return fail(err, API_ERR_BAD_REQUEST, "field 'access' must be \"public\" or \"private\"");
    if (!strcmp(item->valuestring, "public"))
        *private_access = false;
    else if (!strcmp(item->valuestring, "private"))
        *private_access = true;
    else
        return fail(err, API_ERR_BAD_REQUEST, "field 'access' must be \"public\" or \"private\"");
    return 0;
}

int http_parse_queue_settings(const char *name, const char *body, size_t len,
                              mom_v1_QueueSettings *out, struct parse_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root;
    if (parse_object(body, len, true, &root, err))
        return -1;
    int rc = 0;
    for (const cJSON *it = root ? root->child : NULL; it && !rc; it = it->next) {
        uint64_t v = 0;
        if (!strcmp(it->string, "visibility_timeout_ms")) {
            rc = json_uint(it, HTTP_MAX_VISIBILITY_MS, &v, err);
            out->visibility_timeout_ms = v;
            out->present |= 1u << 1;
        } else if (!strcmp(it->string, "max_deliveries")) {
            rc = json_uint(it, UINT32_MAX, &v, err);
            out->max_deliveries = (uint32_t)v;
            out->present |= 1u << 2;
        } else if (!strcmp(it->string, "dead_letter_queue")) {
            out->present |= 1u << 3;
            if (cJSON_IsNull(it))
                continue;
            if (!cJSON_IsString(it))
                rc = fail(err, API_ERR_BAD_REQUEST,
                          "field 'dead_letter_queue' must be a string or null");
            else if (!router_valid_name(it->valuestring))
                rc = fail(err, API_ERR_INVALID_NAME,
                          "dead_letter_queue '%.128s' is not a valid name", it->valuestring);
            else if (!strcmp(it->valuestring, name))
                rc = fail(err, API_ERR_BAD_REQUEST, "a queue cannot be its own dead-letter queue");
            else
                snprintf(out->dead_letter_queue, sizeof out->dead_letter_queue, "%s",
                         it->valuestring);
        } else if (!strcmp(it->string, "max_length")) {
            rc = json_uint(it, UINT64_MAX, &v, err);
            out->max_length = v;
            out->present |= 1u << 4;
        } else if (!strcmp(it->string, "message_ttl_ms")) {
            rc = json_uint(it, UINT64_MAX, &v, err);
            out->message_ttl_ms = v;
            out->present |= 1u << 5;
        } else if (!strcmp(it->string, "access")) {
            rc = json_access(it, &out->private_access, err);
            out->present |= 1u << 6;
        } else {
            rc = unknown_field(it, err);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int http_parse_topic_settings(const char *body, size_t len, mom_v1_TopicSettings *out,
                              struct parse_error *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root;
    if (parse_object(body, len, true, &root, err))
        return -1;
    int rc = 0;
    for (const cJSON *it = root ? root->child : NULL; it && !rc; it = it->next) {
        uint64_t v = 0;
        if (!strcmp(it->string, "retention_ms")) {
            rc = json_uint(it, UINT64_MAX, &v, err);
            out->retention_ms = v;
            out->present |= 1u << 1;
        } else if (!strcmp(it->string, "retention_messages")) {
            rc = json_uint(it, UINT64_MAX, &v, err);
            out->retention_messages = v;
            out->present |= 1u << 2;
        } else if (!strcmp(it->string, "retention_bytes")) {
            rc = json_uint(it, UINT64_MAX, &v, err);
            out->retention_bytes = v;
            out->present |= 1u << 3;
        } else if (!strcmp(it->string, "access")) {
            rc = json_access(it, &out->private_access, err);
            out->present |= 1u << 4;
        } else {
            rc = unknown_field(it, err);
        }
    }
    cJSON_Delete(root);
    return rc;
}

void http_free_batch(struct command_item *items, uint8_t **owned, size_t count)
{
    if (owned)
        for (size_t i = 0; i < count; i++)
            free(owned[i]);
    free(owned);
    free(items);
}

/* Canonical padded base64 only (common/base64.h): "Q===" or "QR==" is 400. */
static int decode_base64(const char *text, uint8_t **out, size_t *outlen)
{
    size_t len = strlen(text);
    uint8_t *buf = malloc(base64_decoded_max(len));
    if (!buf)
        return -1;
    if (base64_decode(BASE64_STD, text, len, buf, base64_decoded_max(len), outlen) != MOM_OK) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

static int parse_batch_item(const cJSON *obj, size_t i, bool allow_delay, struct command_item *item,
                            uint8_t **owned, struct parse_error *err)
{
    if (!cJSON_IsObject(obj))
        return fail(err, API_ERR_BAD_REQUEST, "messages[%zu] must be an object", i);
    const cJSON *body = NULL;
    bool base64 = false;
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (!strcmp(it->string, "body")) {
            if (!cJSON_IsString(it))
                return fail(err, API_ERR_BAD_REQUEST, "messages[%zu].body must be a string", i);
            body = it;
        } else if (!strcmp(it->string, "encoding")) {
            if (!cJSON_IsString(it) ||
                (strcmp(it->valuestring, "utf-8") && strcmp(it->valuestring, "base64")))
                return fail(err, API_ERR_BAD_REQUEST,
                            "messages[%zu].encoding must be \"utf-8\" or \"base64\"", i);
            base64 = !strcmp(it->valuestring, "base64");
        } else if (!strcmp(it->string, "content_type")) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof item->content_type)
                return fail(err, API_ERR_BAD_REQUEST,
                            "messages[%zu].content_type must be a string of at most 255 bytes", i);
            strcpy(item->content_type, it->valuestring);
        } else if (!strcmp(it->string, "delay_ms")) {
            if (!allow_delay)
                return fail(err, API_ERR_BAD_REQUEST, "topics do not take delay_ms");
            if (json_uint(it, HTTP_MAX_DELAY_MS, &item->delay_ms, err))
                return -1;
        } else {
            return fail(err, API_ERR_BAD_REQUEST, "unknown field 'messages[%zu].%s'", i,
                        it->string);
        }
    }
    if (!body)
        return fail(err, API_ERR_BAD_REQUEST, "messages[%zu].body is required", i);
    uint8_t *bytes;
    size_t n;
    if (base64) {
        if (decode_base64(body->valuestring, &bytes, &n))
            return fail(err, API_ERR_BAD_REQUEST, "messages[%zu].body is not valid base64", i);
    } else {
        n = strlen(body->valuestring);
        bytes = malloc(n + 1);
        if (!bytes)
            return fail(err, API_ERR_BAD_REQUEST, "out of memory");
        memcpy(bytes, body->valuestring, n);
    }
    *owned = bytes;
    item->body = bytes;
    item->body_len = n;
    return 0;
}

/* ---- the common batch shape without a JSON tree ----
 * {"messages":[{"body":"..."},...]} where every item has only a body
 * without escapes (no backslash, no NUL) and the only whitespace is space,
 * tab, CR and LF: what cJSON reads from such a body is exactly the bytes
 * between the quotes, and every other item field keeps its zero default.
 * Anything else (other fields, escapes, a count out of range, invalid
 * JSON) is left to the cJSON path, which then gives the same answer and
 * error as before. Bodies point into the request body (no copy). */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* Consumes the literal lit (after whitespace); NULL when it is not next. */
static const char *expect_lit(const char *p, const char *end, const char *lit, size_t n)
{
    p = skip_ws(p, end);
    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/* Consumes the character c (after whitespace); NULL when it is not next. */
static inline const char *expect_char(const char *p, const char *end, char c)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p < end && *p == c ? p + 1 : NULL;
}

/* A string without backslash or NUL after the opening quote at p: sets its
 * span, returns the position after the closing quote (NULL if none). */
static const char *plain_string(const char *p, const char *end, const char **s, size_t *n)
{
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q || memchr(p, '\\', (size_t)(q - p)) || memchr(p, '\0', (size_t)(q - p)))
        return NULL;
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

/* Item spans (offset, length) of a body of the plain shape, or 0 items. */
struct plain_span {
    uint32_t off, len;
};

static size_t plain_batch_scan(const char *body, size_t len, struct plain_span *spans)
{
    if (len > UINT32_MAX)
        return 0;
    const char *end = body + len;
    const char *p = expect_lit(body, end, "{", 1);
    if (p)
        p = expect_lit(p, end, "\"messages\"", 10);
    if (p)
        p = expect_lit(p, end, ":", 1);
    if (p)
        p = expect_lit(p, end, "[", 1);
    size_t n = 0;
    while (p) {
        if (n == COMMAND_MAX_BATCH)
            return 0;
        const char *s;
        size_t sn;
        if (end - p > 9 && memcmp(p, "{\"body\":\"", 9) == 0) { /* without whitespace */
            p += 9;
        } else {
            p = expect_char(p, end, '{');
            if (p)
                p = expect_lit(p, end, "\"body\"", 6);
            if (p)
                p = expect_char(p, end, ':');
            if (p)
                p = expect_char(p, end, '"');
        }
        if (p)
            p = plain_string(p, end, &s, &sn);
        if (p)
            p = expect_char(p, end, '}');
        if (!p)
            return 0;
        spans[n].off = (uint32_t)(s - body);
        spans[n].len = (uint32_t)sn;
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        p = expect_lit(p, end, "]", 1);
        if (p)
            p = expect_lit(p, end, "}", 1);
        if (!p || skip_ws(p, end) != end)
            return 0;
        return n;
    }
    return 0;
}

/* 0 when the body has the plain shape (items filled), 1 when it has not,
 * -1 out of memory. */
static int parse_batch_plain(const char *body, size_t len, struct command_item **items,
                             size_t *count, uint8_t ***owned)
{
    struct plain_span spans[COMMAND_MAX_BATCH];
    size_t n = body ? plain_batch_scan(body, len, spans) : 0;
    if (n == 0)
        return 1;
    /* not calloc: zeroing each item's 256-byte content type buffer cost
     * more than the rest of the parse; an empty C string is enough */
    *items = malloc(n * sizeof **items);
    *owned = calloc(n, sizeof **owned); /* all NULL: nothing is copied */
    if (!*items || !*owned) {
        free(*items);
        free(*owned);
        *items = NULL;
        *owned = NULL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct command_item *it = &(*items)[i];
        it->body = (const uint8_t *)body + spans[i].off;
        it->body_len = spans[i].len;
        it->content_type[0] = '\0';
        it->delay_ms = 0;
    }
    *count = n;
    return 0;
}

int http_parse_batch(const char *body, size_t len, bool allow_delay, struct command_item **items,
                     size_t *count, uint8_t ***owned, struct parse_error *err)
{
    *items = NULL;
    *owned = NULL;
    *count = 0;
    int plain = parse_batch_plain(body, len, items, count, owned);
    if (plain <= 0)
        return plain ? fail(err, API_ERR_BAD_REQUEST, "out of memory") : 0;
    return http_parse_batch_cjson(body, len, allow_delay, items, count, owned, err);
}

int http_parse_batch_cjson(const char *body, size_t len, bool allow_delay,
                           struct command_item **items, size_t *count, uint8_t ***owned,
                           struct parse_error *err)
{
    *items = NULL;
    *owned = NULL;
    *count = 0;
    cJSON *root;
    if (parse_object(body, len, false, &root, err))
        return -1;
    int rc = 0;
    const cJSON *messages = NULL;
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "messages"))
            messages = it;
        else
            rc = unknown_field(it, err);
    }
    if (!rc && (!messages || !cJSON_IsArray(messages)))
        rc = fail(err, API_ERR_BAD_REQUEST, "field 'messages' must be an array");
    int n = rc ? 0 : cJSON_GetArraySize(messages);
    if (!rc && (n < 1 || n > COMMAND_MAX_BATCH))
        rc = fail(err, API_ERR_BAD_REQUEST, "a batch holds 1 to %d messages, not %d",
                  COMMAND_MAX_BATCH, n);
    if (!rc) {
        *items = calloc((size_t)n, sizeof **items);
        *owned = calloc((size_t)n, sizeof **owned);
        if (!*items || !*owned)
            rc = fail(err, API_ERR_BAD_REQUEST, "out of memory");
    }
    size_t i = 0;
    for (const cJSON *m = rc ? NULL : messages->child; m && !rc; m = m->next, i++) {
        rc = parse_batch_item(m, i, allow_delay, &(*items)[i], &(*owned)[i], err);
        *count = i + 1;
    }
    cJSON_Delete(root);
    if (rc) {
        http_free_batch(*items, *owned, *count);
        *items = NULL;
        *owned = NULL;
        *count = 0;
        return -1;
    }
    return 0;
}

/* Parses a body with exactly the one optional/required integer field `name`. */
static int parse_single_uint(const char *body, size_t len, const char *name, bool required,
                             uint64_t max, uint64_t *out, struct parse_error *err)
{
    cJSON *root;
    if (parse_object(body, len, !required, &root, err))
        return -1;
    int rc = 0;
    bool seen = false;
    for (const cJSON *it = root ? root->child : NULL; it && !rc; it = it->next) {
        if (!strcmp(it->string, name)) {
            rc = json_uint(it, max, out, err);
            seen = true;
        } else {
            rc = unknown_field(it, err);
        }
    }
    cJSON_Delete(root);
    if (!rc && required && !seen)
        rc = fail(err, API_ERR_BAD_REQUEST, "field '%s' is required", name);
    return rc;
}

int http_parse_nack(const char *body, size_t len, uint64_t *delay_ms, struct parse_error *err)
{
    *delay_ms = 0;
    return parse_single_uint(body, len, "delay_ms", false, HTTP_MAX_DELAY_MS, delay_ms, err);
}

int http_parse_extend(const char *body, size_t len, uint64_t *vt_ms, struct parse_error *err)
{
    return parse_single_uint(body, len, "visibility_timeout_ms", true, HTTP_MAX_VISIBILITY_MS,
                             vt_ms, err);
}

int http_parse_sub_ack(const char *body, size_t len, uint64_t *offset, struct parse_error *err)
{
    return parse_single_uint(body, len, "offset", true, UINT64_MAX, offset, err);
}

int http_parse_subscription(const char *body, size_t len, enum http_sub_start *start,
                            uint64_t *time_ms, struct parse_error *err)
{
    *start = HTTP_SUB_LATEST;
    *time_ms = 0;
    cJSON *root;
    if (parse_object(body, len, true, &root, err))
        return -1;
    int rc = 0;
    for (const cJSON *it = root ? root->child : NULL; it && !rc; it = it->next) {
        if (!strcmp(it->string, "start")) {
            const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
            if (v && !strcmp(v, "earliest"))
                *start = HTTP_SUB_EARLIEST;
            else if (v && !strcmp(v, "latest"))
                *start = HTTP_SUB_LATEST;
            else if (v && !strncmp(v, "time:", 5)) {
                rc = stream_parse_time(v + 5, strlen(v + 5), false, time_ms, err);
                *start = HTTP_SUB_TIME;
            } else
                rc = fail(err, API_ERR_BAD_REQUEST,
                          "field 'start' must be \"latest\", \"earliest\" or \"time:<RFC 3339>\"");
        } else {
            rc = unknown_field(it, err);
        }
    }
    cJSON_Delete(root);
    return rc;
}

int http_parse_seek(const char *body, size_t len, bool *by_time, uint64_t *offset,
                    uint64_t *time_ms, struct parse_error *err)
{
    *by_time = false;
    *offset = *time_ms = 0;
    cJSON *root;
    if (parse_object(body, len, false, &root, err))
        return -1;
    int rc = 0;
    bool seen_offset = false, seen_time = false;
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "offset")) {
            rc = json_uint(it, UINT64_MAX, offset, err);
            seen_offset = true;
        } else if (!strcmp(it->string, "time")) {
            if (!cJSON_IsString(it))
                rc = fail(err, API_ERR_BAD_REQUEST, "field 'time' must be an RFC 3339 string");
            else
                rc = stream_parse_time(it->valuestring, strlen(it->valuestring), false, time_ms,
                                       err);
            seen_time = true;
        } else {
            rc = unknown_field(it, err);
        }
    }
    cJSON_Delete(root);
    if (!rc && seen_offset == seen_time)
        rc = fail(err, API_ERR_BAD_REQUEST, "give exactly one of 'offset' and 'time'");
    *by_time = seen_time;
    return rc;
}

static int parse_credentials(const char *body, size_t len, bool login, char username[129],
                             char **password, size_t *password_len, struct parse_error *err)
{
    *password = NULL;
    cJSON *root;
    if (parse_object(body, len, false, &root, err))
        return -1;
    int rc = 0;
    const cJSON *user = NULL, *pass = NULL;
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "username"))
            user = it;
        else if (!strcmp(it->string, "password"))
            pass = it;
        else
            rc = unknown_field(it, err);
    }
    if (!rc && (!user || !cJSON_IsString(user)))
        rc = fail(err, API_ERR_BAD_REQUEST, "field 'username' (string) is required");
    if (!rc && (!pass || !cJSON_IsString(pass)))
        rc = fail(err, API_ERR_BAD_REQUEST, "field 'password' (string) is required");
    if (!rc && !router_valid_name(user->valuestring))
        rc = fail(err, API_ERR_INVALID_NAME, "username must match ^[A-Za-z0-9._-]{1,128}$");
    size_t plen = rc ? 0 : strlen(pass->valuestring);
    bool out_of_rules = plen < 8 || plen > 1024;
    if (!rc && out_of_rules && !login)
        rc = fail(err, API_ERR_BAD_REQUEST, "password must be 8 to 1024 bytes");
    /* A login whose password no registration could have set is simply a
     * wrong password: it goes on as the empty one, which matches no user. */
    if (!rc && out_of_rules)
        plen = 0;
    if (!rc) {
        snprintf(username, 129, "%s", user->valuestring);
        *password = malloc(plen + 1);
        if (!*password)
            rc = fail(err, API_ERR_BAD_REQUEST, "out of memory");
        else {
            memcpy(*password, pass->valuestring, plen);
            (*password)[plen] = '\0';
            *password_len = plen;
        }
    }
    cJSON_Delete(root);
    return rc;
}

int http_parse_credentials(const char *body, size_t len, char username[129], char **password,
                           size_t *password_len, struct parse_error *err)
{
    return parse_credentials(body, len, false, username, password, password_len, err);
}

int http_parse_login(const char *body, size_t len, char username[129], char **password,
                     size_t *password_len, struct parse_error *err)
{
    return parse_credentials(body, len, true, username, password, password_len, err);
}

/* One ACL list: an array of user names. */
static int json_users(const cJSON *item, struct command_users *out, struct parse_error *err)
{
    if (!cJSON_IsArray(item))
        return fail(err, API_ERR_BAD_REQUEST, "field '%s' must be an array of user names",
                    item->string);
    size_t i = 0;
    for (const cJSON *u = item->child; u; u = u->next, i++) {
        if (i == COMMAND_ACL_MAX_USERS)
            return fail(err, API_ERR_BAD_REQUEST, "field '%s' holds more than %d users",
                        item->string, COMMAND_ACL_MAX_USERS);
        if (!cJSON_IsString(u))
            return fail(err, API_ERR_BAD_REQUEST, "%s[%zu] must be a string (a user name)",
                        item->string, i);
        if (!router_valid_name(u->valuestring))
            return fail(err, API_ERR_INVALID_NAME,
                        "%s[%zu] must be a user name matching ^[A-Za-z0-9._-]{1,128}$",
                        item->string, i);
        if (command_users_add(out, u->valuestring, strlen(u->valuestring)) != MOM_OK)
            return fail(err, API_ERR_BAD_REQUEST, "out of memory");
    }
    return 0;
}

static void users_free(struct command_users *u)
{
    free(u->names);
    u->names = NULL;
    u->count = 0;
}

int http_parse_acl(const char *body, size_t len, struct command_users *publish,
                   struct command_users *consume, struct parse_error *err)
{
    memset(publish, 0, sizeof *publish);
    memset(consume, 0, sizeof *consume);
    cJSON *root;
    if (parse_object(body, len, false, &root, err))
        return -1;
    int rc = 0;
    bool seen_publish = false, seen_consume = false;
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        bool is_publish = !strcmp(it->string, "publish");
        if (!is_publish && strcmp(it->string, "consume") != 0) {
            rc = unknown_field(it, err);
            break;
        }
        bool *seen = is_publish ? &seen_publish : &seen_consume;
        if (*seen) {
            rc = fail(err, API_ERR_BAD_REQUEST, "field '%s' is given twice", it->string);
            break;
        }
        *seen = true;
        rc = json_users(it, is_publish ? publish : consume, err);
    }
    cJSON_Delete(root);
    if (rc) {
        users_free(publish);
        users_free(consume);
    }
    return rc;
}
