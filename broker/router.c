/* Route table of docs/api.md. Paths are split on '/', each segment is
 * percent-decoded, and matched against patterns where "{}" is a parameter.
 * SPDX-License-Identifier: MIT */
#include "broker/router.h"

#include "common/hex.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct route_def {
    const char *pattern; /* segments separated by '/', "{}" = parameter */
    enum http_method method;
    enum route route;
};

/* Order matters only for "batch": a POST to .../messages/batch is the batch
 * route, any other method there treats "batch" as a receipt. */
static const struct route_def routes[] = {
    {"healthz", HTTP_GET, ROUTE_HEALTHZ},
    {"readyz", HTTP_GET, ROUTE_READYZ},
    {"v1/auth/users", HTTP_POST, ROUTE_AUTH_USERS},
    {"v1/auth/token", HTTP_POST, ROUTE_AUTH_TOKEN},
    {"v1/cluster", HTTP_GET, ROUTE_CLUSTER},
    {"v1/queues", HTTP_GET, ROUTE_QUEUES},
    {"v1/queues/{}", HTTP_GET, ROUTE_QUEUE_GET},
    {"v1/queues/{}", HTTP_PUT, ROUTE_QUEUE_PUT},
    {"v1/queues/{}", HTTP_DELETE, ROUTE_QUEUE_DELETE},
    {"v1/queues/{}/messages", HTTP_POST, ROUTE_QUEUE_PUBLISH},
    {"v1/queues/{}/messages/batch", HTTP_POST, ROUTE_QUEUE_BATCH},
    {"v1/queues/{}/receive", HTTP_POST, ROUTE_QUEUE_RECEIVE},
    {"v1/queues/{}/messages/{}", HTTP_DELETE, ROUTE_QUEUE_ACK},
    {"v1/queues/{}/messages/{}/nack", HTTP_POST, ROUTE_QUEUE_NACK},
    {"v1/queues/{}/messages/{}/extend", HTTP_POST, ROUTE_QUEUE_EXTEND},
    {"v1/topics", HTTP_GET, ROUTE_TOPICS},
    {"v1/topics/{}", HTTP_GET, ROUTE_TOPIC_GET},
    {"v1/topics/{}", HTTP_PUT, ROUTE_TOPIC_PUT},
    {"v1/topics/{}", HTTP_DELETE, ROUTE_TOPIC_DELETE},
    {"v1/topics/{}/messages", HTTP_POST, ROUTE_TOPIC_PUBLISH},
    {"v1/topics/{}/messages", HTTP_GET, ROUTE_TOPIC_READ},
    {"v1/topics/{}/messages/batch", HTTP_POST, ROUTE_TOPIC_BATCH},
    {"v1/topics/{}/subscriptions", HTTP_GET, ROUTE_SUBSCRIPTIONS_OF_TOPIC},
    {"v1/topics/{}/subscriptions/{}", HTTP_GET, ROUTE_SUBSCRIPTION_GET},
    {"v1/topics/{}/subscriptions/{}", HTTP_PUT, ROUTE_SUBSCRIPTION_PUT},
    {"v1/topics/{}/subscriptions/{}", HTTP_DELETE, ROUTE_SUBSCRIPTION_DELETE},
    {"v1/topics/{}/subscriptions/{}/messages", HTTP_GET, ROUTE_SUBSCRIPTION_READ},
    {"v1/topics/{}/subscriptions/{}/ack", HTTP_POST, ROUTE_SUBSCRIPTION_ACK},
    {"v1/topics/{}/subscriptions/{}/seek", HTTP_POST, ROUTE_SUBSCRIPTION_SEEK},
    {"v1/subscriptions", HTTP_GET, ROUTE_USER_SUBSCRIPTIONS},
    {"v1/topics/{}/stream", HTTP_GET, ROUTE_TOPIC_STREAM},
    {"v1/topics/{}/subscriptions/{}/stream", HTTP_GET, ROUTE_SUBSCRIPTION_STREAM},
    {"v1/queues/{}/stream", HTTP_GET, ROUTE_QUEUE_STREAM},
    {"v1/queues/{}/acl", HTTP_GET, ROUTE_QUEUE_ACL_GET},
    {"v1/queues/{}/acl", HTTP_PUT, ROUTE_QUEUE_ACL_PUT},
    {"v1/topics/{}/acl", HTTP_GET, ROUTE_TOPIC_ACL_GET},
    {"v1/topics/{}/acl", HTTP_PUT, ROUTE_TOPIC_ACL_PUT},
    {"api/auth/register", HTTP_POST, ROUTE_API_REGISTER},
    {"api/auth/login", HTTP_POST, ROUTE_API_LOGIN},
    {"api/topicos", HTTP_GET, ROUTE_API_TOPICS},
    {"api/topicos", HTTP_POST, ROUTE_API_TOPIC_CREATE},
    {"api/topicos/{}", HTTP_DELETE, ROUTE_API_TOPIC_DELETE},
    {"api/topicos/{}/mensajes", HTTP_POST, ROUTE_API_TOPIC_PUBLISH},
    {"api/topicos/{}/mensajes", HTTP_GET, ROUTE_API_TOPIC_READ},
    {"api/topicos/{}/suscribir", HTTP_POST, ROUTE_API_SUBSCRIBE},
    {"api/topicos/{}/desuscribir", HTTP_POST, ROUTE_API_UNSUBSCRIBE},
    {"api/mis-topicos", HTTP_GET, ROUTE_API_MY_TOPICS},
    {"api/colas", HTTP_GET, ROUTE_API_QUEUES},
    {"api/colas", HTTP_POST, ROUTE_API_QUEUE_CREATE},
    {"api/colas/{}", HTTP_DELETE, ROUTE_API_QUEUE_DELETE},
    {"api/colas/{}/mensajes", HTTP_POST, ROUTE_API_QUEUE_PUBLISH},
    {"api/colas/{}/mensajes", HTTP_GET, ROUTE_API_QUEUE_TAKE},
    {"colas", HTTP_GET, ROUTE_NODE_QUEUES},
    {"colas", HTTP_POST, ROUTE_NODE_QUEUE_CREATE},
    {"colas/{}", HTTP_DELETE, ROUTE_NODE_QUEUE_DELETE},
    {"colas/{}/publicar", HTTP_POST, ROUTE_NODE_QUEUE_PUBLISH},
    {"colas/{}/mensajes", HTTP_GET, ROUTE_NODE_QUEUE_TAKE},
    {"topicos", HTTP_GET, ROUTE_NODE_TOPICS},
    {"topicos", HTTP_POST, ROUTE_NODE_TOPIC_CREATE},
    {"topicos/{}", HTTP_DELETE, ROUTE_NODE_TOPIC_DELETE},
    {"topicos/{}/publicar", HTTP_POST, ROUTE_NODE_TOPIC_PUBLISH},
    {"topicos/{}/mensajes", HTTP_GET, ROUTE_NODE_TOPIC_READ},
    {"metrics", HTTP_GET, ROUTE_METRICS},
};

#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

bool router_takes_query_token(enum route route)
{
    return route == ROUTE_TOPIC_STREAM || route == ROUTE_SUBSCRIPTION_STREAM ||
           route == ROUTE_QUEUE_STREAM;
}

enum http_method router_method(const char *name)
{
    if (!strcmp(name, "GET"))
        return HTTP_GET;
    if (!strcmp(name, "PUT"))
        return HTTP_PUT;
    if (!strcmp(name, "POST"))
        return HTTP_POST;
    if (!strcmp(name, "DELETE"))
        return HTTP_DELETE;
    if (!strcmp(name, "HEAD"))
        return HTTP_HEAD;
    if (!strcmp(name, "OPTIONS"))
        return HTTP_OPTIONS;
    return HTTP_OTHER;
}

#define MAX_SEGMENTS 8

struct segments {
    size_t n;
    const char *start[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
};

/* Splits on runs of slashes: empty segments (a doubled slash, the trailing
 * slash) are skipped, as nginx's merge_slashes does. "/" has one empty
 * segment so that it can still be matched as the root. */
static bool split_path(const char *path, size_t len, struct segments *s)
{
    s->n = 0;
    if (len == 0 || path[0] != '/')
        return false;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i == len)
            break;
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (s->n == MAX_SEGMENTS)
            return false;
        s->start[s->n] = path + i;
        s->len[s->n] = j - i;
        s->n++;
        i = j;
    }
    if (s->n == 0) {
        s->start[0] = path + len;
        s->len[0] = 0;
        s->n = 1;
    }
    return true;
}

/* A pattern split once into its segments: where each literal lies in the
 * pattern text and which segments are parameters. */
struct compiled {
    uint8_t n;
    uint8_t params; /* bit k: segment k is "{}" */
    uint8_t off[MAX_SEGMENTS], len[MAX_SEGMENTS];
};

static struct compiled compile(const char *pattern)
{
    struct compiled c = {0};
    const char *p = pattern;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t plen = slash ? (size_t)(slash - p) : strlen(p);
        c.off[c.n] = (uint8_t)(p - pattern);
        c.len[c.n] = (uint8_t)plen;
        if (plen == 2 && p[0] == '{' && p[1] == '}')
            c.params |= (uint8_t)(1u << c.n);
        c.n++;
        if (!slash || c.n == MAX_SEGMENTS) /* no pattern has that many */
            return c;
        p = slash + 1;
    }
}

/* Each pattern compiled once, and the routes listed by segment count in
 * table order (the loop thread and the fuzzers are single-threaded; a
 * racing first fill would write the same values). */
_Static_assert(sizeof routes / sizeof routes[0] < 256, "route indices fit a uint8_t");

struct route_index {
    struct compiled route[ROUTE_COUNT];
    uint8_t count[MAX_SEGMENTS + 1];
    uint8_t of[MAX_SEGMENTS + 1][ROUTE_COUNT];
};

static const struct route_index *route_index(void)
{
    static struct route_index ix;
    static bool done;
    if (!done) {
        for (size_t i = 0; i < ROUTE_COUNT; i++) {
            struct compiled c = compile(routes[i].pattern);
            ix.route[i] = c;
            ix.of[c.n][ix.count[c.n]++] = (uint8_t)i;
        }
        done = true;
    }
    return &ix;
}

/* Matches one pattern; params are decoded into out only when it matches. */
static bool pattern_matches(const char *pattern, const struct compiled *c, const struct segments *s)
{
    if (c->n != s->n)
        return false;
    for (size_t k = 0; k < c->n; k++) {
        if (c->params & (1u << k))
            continue;
        if (s->len[k] != c->len[k] || memcmp(s->start[k], pattern + c->off[k], c->len[k]) != 0)
            return false;
    }
    return true;
}

static void decode_params(const struct compiled *c, const struct segments *s,
                          struct route_match *out)
{
    out->nparams = 0;
    out->param_too_long = false;
    for (size_t k = 0; k < c->n; k++) {
        if (!(c->params & (1u << k)) || out->nparams >= 3)
            continue;
        char *dst = out->params[out->nparams++];
        size_t o = 0;
        for (size_t i = 0; i < s->len[k]; i++) {
            char ch = s->start[k][i];
            if (ch == '%' && i + 2 < s->len[k] && hex_digit_value(s->start[k][i + 1]) >= 0 &&
                hex_digit_value(s->start[k][i + 2]) >= 0) {
                ch = (char)(hex_digit_value(s->start[k][i + 1]) * 16 +
                            hex_digit_value(s->start[k][i + 2]));
                i += 2;
            }
            if (o == ROUTER_MAX_PARAM) {
                out->param_too_long = true;
                break;
            }
            dst[o++] = ch == '\0' ? '?' : ch;
        }
        dst[o] = '\0';
    }
}

enum router_result router_match(enum http_method method, const char *path, size_t path_len,
                                struct route_match *out)
{
    memset(out, 0, sizeof *out);
    struct segments s;
    if (!split_path(path, path_len, &s))
        return ROUTER_NOT_FOUND;
    const struct route_index *ix = route_index();
    const struct compiled *table = ix->route;
    size_t hit = ROUTE_COUNT;
    unsigned allowed = 0;
    for (size_t j = 0; j < ix->count[s.n]; j++) {
        size_t i = ix->of[s.n][j];
        /* a cheap filter first: the first byte */
        if (s.len[0] == 0 || routes[i].pattern[0] != s.start[0][0] ||
            !pattern_matches(routes[i].pattern, &table[i], &s))
            continue;
        allowed |= routes[i].method;
        if (hit == ROUTE_COUNT &&
            (routes[i].method == method || (method == HTTP_HEAD && routes[i].method == HTTP_GET)))
            hit = i;
    }
    out->allowed = allowed;
    if (hit == ROUTE_COUNT) {
        if (!allowed)
            return ROUTER_NOT_FOUND;
        return ROUTER_METHOD_NOT_ALLOWED;
    }
    out->route = routes[hit].route;
    decode_params(&table[hit], &s, out);
    return ROUTER_OK;
}

void router_allow_header(unsigned allowed, char *out, size_t outlen)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {HTTP_GET, "GET"}, {HTTP_PUT, "PUT"}, {HTTP_POST, "POST"}, {HTTP_DELETE, "DELETE"}};
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        if (!(allowed & names[i].bit))
            continue;
        int n = snprintf(out + o, outlen - o, "%s%s", o ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= outlen - o)
            break;
        o += (size_t)n;
    }
}

/* A parameter is named after the segment before it: "queues" -> {queue},
 * "messages" -> {receipt}, anything else loses a trailing 's'. */
static void param_name(const char *prev, size_t prevlen, char *out, size_t outlen)
{
    if (prevlen == 8 && !memcmp(prev, "messages", 8)) {
        snprintf(out, outlen, "{receipt}");
        return;
    }
    if (prevlen > 1 && prev[prevlen - 1] == 's')
        prevlen--;
    snprintf(out, outlen, "{%.*s}", (int)prevlen, prev);
}

void router_route_label(enum route route, char *out, size_t outlen)
{
    const char *pattern = NULL;
    for (size_t i = 0; i < ROUTE_COUNT && route != ROUTE_NONE; i++) {
        if (routes[i].route == route) {
            pattern = routes[i].pattern;
            break;
        }
    }
    if (outlen == 0)
        return;
    if (route == ROUTE_UI) {
        snprintf(out, outlen, "/{dashboard file}");
        return;
    }
    snprintf(out, outlen, "%s", pattern ? "" : "unmatched");
    size_t o = 0;
    const char *prev = "";
    size_t prevlen = 0;
    for (const char *p = pattern; p && *p && o < outlen;) {
        const char *slash = strchr(p, '/');
        size_t plen = slash ? (size_t)(slash - p) : strlen(p);
        char seg[ROUTER_MAX_PARAM + 3];
        if (plen == 2 && p[0] == '{' && p[1] == '}')
            param_name(prev, prevlen, seg, sizeof seg);
        else
            snprintf(seg, sizeof seg, "%.*s", (int)plen, p);
        int n = snprintf(out + o, outlen - o, "/%s", seg);
        o += n < 0 ? outlen : (size_t)n;
        prev = p;
        prevlen = plen;
        p += plen + (slash ? 1 : 0);
    }
}

bool router_valid_name(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= 128;
}
