/* Exact integers from JSON numbers. JSON parsers (cJSON) hand numbers over
 * as doubles, which hold every integer below 2^53 exactly and round above
 * it (9007199254740993 reads as 9007199254740992). number_exact_uint is the
 * one check every JSON integer of the API goes through, so that a large
 * value is refused instead of silently changed.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_NUMBER_H
#define MOM_COMMON_NUMBER_H

#include <stdbool.h>
#include <stdint.h>

/* Largest integer every double below it represents exactly: 2^53 - 1. */
#define NUMBER_MAX_EXACT 9007199254740991ull

enum number_check {
    NUMBER_OK = 0,
    NUMBER_NOT_INTEGER, /* negative, fractional, NaN or infinite */
    NUMBER_INEXACT,     /* 2^53 or above: it may have been rounded */
    NUMBER_TOO_LARGE,   /* an exact integer above max */
};

/* Checks that d is an integer in 0..max that a double holds exactly
 * (below 2^53) and stores it in *out (only on NUMBER_OK). A fractional
 * literal within rounding distance of an integer at or above 2^52 reads as
 * that integer: no double there has a fraction to tell them apart. */
enum number_check number_exact_uint(double d, uint64_t max, uint64_t *out);

#endif
