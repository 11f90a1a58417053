/* Wall and monotonic clocks, and the RFC 3339 formatter used in JSON replies.
 * SPDX-License-Identifier: MIT */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000u;
}

uint64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_stamp_next(uint64_t prev, uint64_t prev_mono, uint64_t wall, uint64_t mono)
{
    if (prev_mono == 0)
        return wall;
    uint64_t elapsed = mono > prev_mono ? mono - prev_mono : 0;
    uint64_t limit = prev + elapsed + elapsed / 100u;
    uint64_t next = wall < limit ? wall : limit;
    return next < prev ? prev : next;
}

void clock_format_rfc3339(uint64_t wall_ms, char out[25])
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(wall_ms % 1000u));
    memcpy(out, tmp, 24);
    out[24] = '\0';
}
