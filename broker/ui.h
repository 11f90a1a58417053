/* The dashboard's static files, compiled into the binary (the table is
 * generated at build time from broker/ui/ by broker/ui/embed.c), and the
 * pure look-ups the server needs to serve them: path -> asset, and whether
 * an If-None-Match header names the asset's ETag.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_UI_H
#define MOM_BROKER_UI_H

#include <stdbool.h>
#include <stddef.h>

struct ui_asset {
    const char *path;         /* URL path, "/" for the page */
    const char *content_type; /* Content-Type header value */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted strong ETag, e.g. "\"0123456789abcdef\"" */
};

/* The generated table (build/broker/ui_assets.c). */
extern const struct ui_asset ui_assets[];
extern const size_t ui_asset_count;

/* The Content-Security-Policy every asset is served with: everything from
 * this node only, no inline script or style, no framing. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

/* The asset at path (len bytes, no query string), or NULL. "/index.html"
 * is the page too. */
const struct ui_asset *ui_find(const char *path, size_t len);
/* True when an If-None-Match value lists etag (or is "*"); weak
 * comparison, as RFC 9110 asks for If-None-Match. */
bool ui_etag_matches(const char *if_none_match, const char *etag);

#endif
