/* libFuzzer harness for the stream position parsers (broker/stream_params:
 * stream_parse_from, stream_parse_time, stream_parse_last_event_id). Every
 * input goes through all three. stream_parse_time is checked against a
 * reference that validates the fixed layout by position and does the
 * calendar arithmetic with glibc's timegm/gmtime_r; stream_parse_from
 * against the words, a digits-only offset with exact overflow, and the time
 * parser with the query's '+'; Last-Event-ID against a trim-then-digits
 * reference. The first 8 bytes, as a time up to year 9999, must also read
 * back exactly from mom's own RFC 3339 formatter.
 * SPDX-License-Identifier: MIT */
#include "broker/stream_params.h"
#include "common/clock.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool dig(char c)
{
    return c >= '0' && c <= '9';
}

static int num(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

/* The reference RFC 3339 reader: true with *ms when valid. */
static bool ref_time(const char *t, size_t len, bool plus, uint64_t *ms)
{
    static const char layout[] = "dddd-dd-ddTdd:dd:dd";
    if (len < 20)
        return false;
    for (size_t i = 0; i < 19; i++) {
        char want = layout[i];
        if (want == 'd' ? !dig(t[i]) : want == 'T' ? (t[i] != 'T' && t[i] != 't') : t[i] != want)
            return false;
    }
    int year = num(t, 4), mon = num(t + 5, 2), day = num(t + 8, 2);
    int hour = num(t + 11, 2), min = num(t + 14, 2), sec = num(t + 17, 2);
    if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec == 60 ? 59 : sec};
    time_t secs = timegm(&tm);
    struct tm back;
    gmtime_r(&secs, &back);
    if (back.tm_mday != day || back.tm_mon != mon - 1) /* a day past the month's end */
        return false;
    int64_t total_s = (int64_t)secs + (sec == 60);
    size_t i = 19;
    int64_t frac = 0;
    if (t[i] == '.') {
        size_t start = ++i;
        while (i < len && dig(t[i]))
            i++;
        if (i == start)
            return false;
        char three[4] = "000";
        for (size_t k = 0; k < 3 && start + k < i; k++)
            three[k] = t[start + k];
        frac = atoi(three);
        for (size_t k = start + 3; k < i; k++)
            if (t[k] != '0') {
                frac++;
                break;
            }
    }
    if (i >= len)
        return false;
    if (t[i] == 'Z' || t[i] == 'z') {
        i++;
    } else if (t[i] == '+' || t[i] == '-' || (plus && t[i] == ' ')) {
        if (len - i != 6 || !dig(t[i + 1]) || !dig(t[i + 2]) || t[i + 3] != ':' || !dig(t[i + 4]) ||
            !dig(t[i + 5]))
            return false;
        int oh = num(t + i + 1, 2), om = num(t + i + 4, 2);
        if (oh > 23 || om > 59)
            return false;
        total_s += (t[i] == '-' ? 1 : -1) * (int64_t)(oh * 3600 + om * 60);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    int64_t total = total_s * 1000 + frac;
    *ms = total < 0 ? 0 : (uint64_t)total;
    return true;
}

static void check_time(const char *t, size_t len, bool plus)
{
    struct parse_error err;
    uint64_t got = 0, want = 0;
    int rc = stream_parse_time(t, len, plus, &got, &err);
    bool ok = ref_time(t, len, plus, &want);
    if (rc != (ok ? 0 : -1))
        abort();
    if (ok ? got != want : err.kind != API_ERR_BAD_REQUEST || !err.message[0])
        abort();
}

/* Digits only, no overflow. */
static bool ref_decimal(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!dig(p[i]))
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static void check_from(const char *text)
{
    struct stream_from f;
    struct parse_error err;
    int rc = stream_parse_from(text, &f, &err);
    size_t len = strlen(text);
    uint64_t v = 0;
    if (len > STREAM_FROM_MAX) {
        if (rc != -1)
            abort();
    } else if (!strcmp(text, "earliest")) {
        if (rc != 0 || f.kind != STREAM_FROM_EARLIEST)
            abort();
    } else if (!strcmp(text, "latest")) {
        if (rc != 0 || f.kind != STREAM_FROM_LATEST)
            abort();
    } else if (!strncmp(text, "time:", 5)) {
        bool ok = ref_time(text + 5, len - 5, true, &v);
        if (ok ? rc != 0 || f.kind != STREAM_FROM_TIME || f.value != v : rc != -1)
            abort();
    } else if (ref_decimal(text, len, &v)) {
        if (rc != 0 || f.kind != STREAM_FROM_OFFSET || f.value != v)
            abort();
    } else if (rc != -1) {
        abort();
    }
    if (rc && err.kind != API_ERR_BAD_REQUEST)
        abort();
}

static void check_event_id(const char *t, size_t len)
{
    struct parse_error err;
    uint64_t got = 0, want = 0;
    int rc = stream_parse_last_event_id(t, len, &got, &err);
    size_t a = 0, b = len;
    while (a < b && (t[a] == ' ' || t[a] == '\t'))
        a++;
    while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t'))
        b--;
    bool ok = ref_decimal(t + a, b - a, &want) && want != UINT64_MAX;
    if (ok ? rc != 0 || got != want : rc != -1 || err.kind != API_ERR_BAD_REQUEST)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (size)
        memcpy(buf, data, size);
    buf[size] = '\0';
    check_time(buf, size, false);
    check_time(buf, size, true);
    check_from(buf); /* up to the first NUL, as a decoded query value */
    check_event_id(buf, size);

    uint64_t t = 0;
    for (size_t i = 0; i < 8 && i < size; i++)
        t = t << 8 | data[i];
    t %= 253402300800000ull; /* up to the end of year 9999 */
    char text[25];
    clock_format_rfc3339(t, text);
    struct parse_error err;
    uint64_t back = 0;
    if (stream_parse_time(text, 24, false, &back, &err) != 0 || back != t)
        abort();
    free(buf);
    return 0;
}
