/* Exact integer checks for JSON numbers (see number.h).
 * SPDX-License-Identifier: MIT */
#include "common/number.h"

enum number_check number_exact_uint(double d, uint64_t max, uint64_t *out)
{
    if (!(d >= 0.0)) /* negative or NaN */
        return NUMBER_NOT_INTEGER;
    if (d >= 9007199254740992.0) /* 2^53 and above, infinity included */
        return NUMBER_INEXACT;
    uint64_t v = (uint64_t)d;
    if ((double)v != d)
        return NUMBER_NOT_INTEGER;
    if (v > max)
        return NUMBER_TOO_LARGE;
    *out = v;
    return NUMBER_OK;
}
