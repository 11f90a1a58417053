/* Parsers of `from`, RFC 3339 times and Last-Event-ID (see the header for the
 * accepted grammar). Calendar arithmetic is done here, not with timegm(), so
 * the result never depends on the process's time zone or locale.
 * SPDX-License-Identifier: MIT */
#include "broker/stream_params.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(struct parse_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct parse_error *err, const char *fmt, ...)
{
    err->kind = API_ERR_BAD_REQUEST;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* n digits at p (all of them must be digits); -1 when one is not. */
static int digits(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard
 * Hinnant's days_from_civil), for y in 0..9999. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#define TIME_HELP "an RFC 3339 time such as 2026-01-02T15:04:05.123Z or 2026-01-02T16:04:05+01:00"

int stream_parse_time(const char *text, size_t len, bool query_plus, uint64_t *ms,
                      struct parse_error *err)
{
    /* YYYY-MM-DDThh:mm:ss is 19 bytes; a zone must follow. */
    if (len < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
        text[13] != ':' || text[16] != ':')
        return fail(err, "time must be " TIME_HELP);
    int year = digits(text, 4), month = digits(text + 5, 2), day = digits(text + 8, 2);
    int hour = digits(text + 11, 2), minute = digits(text + 14, 2), sec = digits(text + 17, 2);
    if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || sec < 0)
        return fail(err, "time must be " TIME_HELP);
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return fail(err, "time has no such date: %.10s", text);
    if (hour > 23 || minute > 59 || sec > 60)
        return fail(err, "time has no such time of day: %.8s", text + 11);

    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < len && text[i] == '.') {
        i++;
        size_t start = i;
        bool finer = false; /* a non-zero digit past the milliseconds */
        for (; i < len && is_digit(text[i]); i++) {
            size_t k = i - start;
            if (k < 3)
                frac_ms = frac_ms * 10 + (text[i] - '0');
            else if (text[i] != '0')
                finer = true;
        }
        if (i == start)
            return fail(err, "time has a '.' without digits; it must be " TIME_HELP);
        for (size_t k = i - start; k < 3; k++)
            frac_ms *= 10;
        if (finer)
            frac_ms++; /* round up: the first whole millisecond at or after it */
    }
    if (i >= len)
        return fail(err, "time needs a zone: Z or an offset such as +01:00");

    int64_t offset_s = 0;
    char zone = text[i];
    if (zone == 'Z' || zone == 'z') {
        i++;
    } else if (zone == '+' || zone == '-' || (query_plus && zone == ' ')) {
        if (len - i < 6 || text[i + 3] != ':')
            return fail(err, "time zone offset must be +hh:mm or -hh:mm");
        int oh = digits(text + i + 1, 2), om = digits(text + i + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return fail(err, "time zone offset must be +hh:mm or -hh:mm (at most 23:59)");
        offset_s = (int64_t)oh * 3600 + om * 60;
        if (zone == '-')
            offset_s = -offset_s;
        i += 6;
    } else {
        return fail(err, "time needs a zone: Z or an offset such as +01:00");
    }
    if (i != len)
        return fail(err, "time has extra characters after its zone");

    int64_t secs = days_from_civil(year, month, day) * 86400 + (int64_t)hour * 3600 +
                   (int64_t)minute * 60 + sec - offset_s;
    int64_t total = secs * 1000 + frac_ms;
    *ms = total < 0 ? 0 : (uint64_t)total;
    return 0;
}

/* Digits only, no overflow: 0 or -1 (overflow sets *overflow). */
static int decimal(const char *p, size_t len, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;
    *overflow = false;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return -1;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *overflow = true;
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int stream_parse_from(const char *text, struct stream_from *out, struct parse_error *err)
{
    size_t len = strlen(text);
    if (len > STREAM_FROM_MAX)
        return fail(err, "from is longer than %d bytes", STREAM_FROM_MAX);
    out->value = 0;
    if (!strcmp(text, "earliest")) {
        out->kind = STREAM_FROM_EARLIEST;
        return 0;
    }
    if (!strcmp(text, "latest")) {
        out->kind = STREAM_FROM_LATEST;
        return 0;
    }
    if (!strncmp(text, "time:", 5)) {
        if (stream_parse_time(text + 5, len - 5, true, &out->value, err))
            return -1;
        out->kind = STREAM_FROM_TIME;
        return 0;
    }
    bool overflow;
    if (decimal(text, len, &out->value, &overflow))
        return fail(err, overflow ? "from offset is too large"
                                  : "from must be earliest, latest, an offset or time:<RFC 3339>");
    out->kind = STREAM_FROM_OFFSET;
    return 0;
}

int stream_parse_last_event_id(const char *text, size_t len, uint64_t *id, struct parse_error *err)
{
    while (len && (text[0] == ' ' || text[0] == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    bool overflow;
    uint64_t v = 0;
    if (decimal(text, len, &v, &overflow))
        return fail(err, overflow ? "Last-Event-ID is out of range"
                                  : "Last-Event-ID must be the decimal id of an event");
    if (v == UINT64_MAX)
        return fail(err, "Last-Event-ID is out of range");
    *id = v;
    return 0;
}
