/* Hex digits: the one place that reads them (percent-decoding in the
 * router, the query parser and grpc-message).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_HEX_H
#define MOM_COMMON_HEX_H

/* The value of a hex digit (either case), or -1 when c is not one. */
static inline int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
