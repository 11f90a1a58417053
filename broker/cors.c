/* MOM_CORS_ORIGINS matching: "*" allows every origin; otherwise the Origin
 * header must equal one list entry byte for byte (scheme, host and port, as
 * browsers send it).
 * SPDX-License-Identifier: MIT */
#include "broker/cors.h"

#include <string.h>

bool cors_origin_allowed(const char *list, const char *origin)
{
    if (!list || !origin || !origin[0])
        return false;
    size_t olen = strlen(origin);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        size_t n = (size_t)(last - p);
        if ((n == 1 && *p == '*') || (n == olen && n && !memcmp(p, origin, n)))
            return true;
        p = end;
    }
    return false;
}
