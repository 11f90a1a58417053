/* libFuzzer harness for the REST route table (broker/router): the first
 * input byte picks the method, the rest is the path. Checks the result
 * against the match (a route only for an allowed method, 405 only with an
 * Allow set the method is not in, 404 with none), that parameters are
 * bounded C strings, that a path with its runs of slashes merged routes the
 * same way, that the Allow header fits any buffer, and router_valid_name
 * against a reference of ^[A-Za-z0-9._-]{1,128}$.
 * SPDX-License-Identifier: MIT */
#include "broker/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ref_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", s[i]) ||
            s[i] == '\0')
            return false;
    return true;
}

static bool method_fits(enum http_method m, unsigned allowed)
{
    return (allowed & (unsigned)m) || (m == HTTP_HEAD && (allowed & HTTP_GET));
}

static void check(enum http_method m, const char *path, size_t len, struct route_match *out,
                  enum router_result *res)
{
    *res = router_match(m, path, len, out);
    switch (*res) {
    case ROUTER_OK:
        if (out->route == ROUTE_NONE || !method_fits(m, out->allowed) || out->nparams > 3)
            abort();
        for (size_t i = 0; i < out->nparams; i++) {
            size_t n = strnlen(out->params[i], ROUTER_MAX_PARAM + 1);
            if (n > ROUTER_MAX_PARAM)
                abort();
            if (router_valid_name(out->params[i]) != ref_valid_name(out->params[i]))
                abort();
        }
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        if (out->route != ROUTE_NONE || !out->allowed || method_fits(m, out->allowed))
            abort();
        break;
    case ROUTER_NOT_FOUND:
        if (out->route != ROUTE_NONE || out->allowed)
            abort();
        break;
    default: abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum http_method methods[] = {HTTP_GET,  HTTP_PUT,     HTTP_POST, HTTP_DELETE,
                                               HTTP_HEAD, HTTP_OPTIONS, HTTP_OTHER};
    if (size < 1 || size > 4096)
        return 0;
    enum http_method m = methods[data[0] % (sizeof methods / sizeof methods[0])];
    const char *path = (const char *)data + 1;
    size_t len = size - 1;

    struct route_match a, b;
    enum router_result ra, rb;
    check(m, path, len, &a, &ra);

    /* The same path with every run of slashes merged routes the same way. */
    char *merged = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!(path[i] == '/' && n && merged[n - 1] == '/'))
            merged[n++] = path[i];
    check(m, merged, n, &b, &rb);
    free(merged);
    if (ra != rb || a.route != b.route || a.allowed != b.allowed || a.nparams != b.nparams ||
        a.param_too_long != b.param_too_long)
        abort();
    for (size_t i = 0; i < a.nparams; i++)
        if (strcmp(a.params[i], b.params[i]) != 0)
            abort();

    /* The Allow header is a C string within any buffer size. */
    for (size_t cap = 1; cap <= 32; cap++) {
        char allow[32];
        memset(allow, 'x', sizeof allow);
        router_allow_header(a.allowed, allow, cap);
        if (strnlen(allow, cap) >= cap)
            abort();
    }

    /* Method names and the name rule on the raw text. */
    char *text = malloc(len + 1);
    memcpy(text, path, len);
    text[len] = '\0';
    enum http_method got = router_method(text);
    if (got != HTTP_GET && got != HTTP_PUT && got != HTTP_POST && got != HTTP_DELETE &&
        got != HTTP_HEAD && got != HTTP_OPTIONS && got != HTTP_OTHER)
        abort();
    if (router_valid_name(text) != ref_valid_name(text))
        abort();
    free(text);
    return 0;
}
