/* Look-ups over the compiled-in dashboard assets (broker/ui.h): no I/O.
 * SPDX-License-Identifier: MIT */
#include "broker/ui.h"

#include <string.h>

const struct ui_asset *ui_find(const char *path, size_t len)
{
    if (len == sizeof "/index.html" - 1 && !memcmp(path, "/index.html", len)) {
        path = "/";
        len = 1;
    }
    for (size_t i = 0; i < ui_asset_count; i++) {
        const struct ui_asset *a = &ui_assets[i];
        if (strlen(a->path) == len && !memcmp(a->path, path, len))
            return a;
    }
    return NULL;
}

/* One entity-tag of a list, without a leading W/ (weak comparison). */
static bool tag_equals(const char *tag, size_t len, const char *etag)
{
    if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        len -= 2;
    }
    return len == strlen(etag) && !memcmp(tag, etag, len);
}

bool ui_etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = if_none_match;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        if (*p == '*' && (!p[1] || p[1] == ',' || p[1] == ' ' || p[1] == '\t'))
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p == '"') {
            const char *close = strchr(p + 1, '"');
            if (!close)
                return false; /* unterminated: matches nothing */
            p = close + 1;
        } else {
            while (*p && *p != ',' && *p != ' ' && *p != '\t')
                p++;
        }
        bool ends = !*p || *p == ',' || *p == ' ' || *p == '\t';
        if (ends && tag_equals(start, (size_t)(p - start), etag))
            return true;
        while (*p && *p != ',')
            p++; /* the rest of a malformed member */
    }
    return false;
}
