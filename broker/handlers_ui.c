/* Serves the compiled-in dashboard (broker/ui.h) on GET and HEAD: no token,
 * Content-Type, Cache-Control (revalidate every time, so a new binary's
 * page is picked up at once), a strong ETag with 304 on If-None-Match, and
 * a Content-Security-Policy that lets the page load nothing from elsewhere.
 * SPDX-License-Identifier: MIT */
#include "broker/server_internal.h"
#include "broker/ui.h"

#include <stdio.h>
#include <string.h>

static void header(evhtp_request_t *req, const char *name, const char *value)
{
    evhtp_headers_add_header(req->headers_out, evhtp_header_new(name, value, 0, 1));
}

bool handlers_ui(struct request_ctx *rc, const char *path)
{
    if (rc->method != HTTP_GET && rc->method != HTTP_HEAD)
        return false;
    const struct ui_asset *a = ui_find(path, strlen(path));
    if (!a)
        return false;
    evhtp_request_t *req = rc->req;
    rc->done = true;
    header(req, "X-Mom-Node", rc->srv->node_id_text);
    header(req, "ETag", a->etag);
    header(req, "Cache-Control", "no-cache");
    header(req, "Content-Security-Policy", UI_CSP);
    header(req, "X-Content-Type-Options", "nosniff");
    header(req, "Referrer-Policy", "no-referrer");
    header(req, "X-Frame-Options", "DENY");
    header(req, "Content-Type", a->content_type);
    const char *inm = evhtp_header_find(req->headers_in, "If-None-Match");
    rc->match.route = ROUTE_UI;
    if (inm && ui_etag_matches(inm, a->etag)) {
        evhtp_send_reply(req, 304);
        server_account(rc, 304, 0);
        return true;
    }
    if (rc->method == HTTP_GET) {
        evbuffer_add_reference(req->buffer_out, a->data, a->len, NULL, NULL);
    } else {
        char len[24];
        snprintf(len, sizeof len, "%zu", a->len);
        header(req, "Content-Length", len);
    }
    evhtp_send_reply(req, 200);
    server_account(rc, 200, rc->method == HTTP_GET ? a->len : 0);
    return true;
}
