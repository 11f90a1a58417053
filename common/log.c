/* stderr logger: "2026-11-28T18:42:35.123Z INFO message", or one JSON
 * object per line ({"time":"...","level":"info","msg":"message"}). The
 * level and the format are process-wide settings written once at start-up
 * by main.c. Each line is built whole and written with one fwrite, so lines
 * from the fsync helper thread never interleave with the loop's.
 * SPDX-License-Identifier: MIT */
#include "common/log.h"

#include "common/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level current_level = MOM_LOG_INFO;
static enum log_format current_format = MOM_LOG_TEXT;

#define LINE_MAX_BYTES 2048

static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    current_level = level;
}
enum log_level log_get_level(void)
{
    return current_level;
}

int log_parse_level(const char *text, enum log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (unsigned i = 0; i < 4; i++) {
        if (strcasecmp(text, names[i]) == 0) {
            *out = (enum log_level)i;
            return MOM_OK;
        }
    }
    return MOM_ERR_INVALID;
}

int log_parse_format(const char *text, enum log_format *out)
{
    if (strcasecmp(text, "text") == 0)
        *out = MOM_LOG_TEXT;
    else if (strcasecmp(text, "json") == 0)
        *out = MOM_LOG_JSON;
    else
        return MOM_ERR_INVALID;
    return MOM_OK;
}

void log_set_format(enum log_format format)
{
    current_format = format;
}

/* A line under construction; appends past the end are cut. */
struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool cut; /* something did not fit */
};

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep room for "}\n" */
    if (n > room) {
        n = room;
        l->cut = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Escapes for JSON strings and for quoted text values alike. */
static void put_escaped(struct line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20 || c >= 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, e, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static void put_time(struct line *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[40];
    int n =
        snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    put(l, t, n > 0 ? (size_t)n : 0);
}

static void begin(struct line *l, enum log_level level, const char *msg, size_t msglen)
{
    l->len = 0;
    l->cut = false;
    if (current_format == MOM_LOG_JSON) {
        puts_(l, "{\"time\":\"");
        put_time(l);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_names[level]);
        puts_(l, "\",\"msg\":\"");
        put_escaped(l, msg, msglen);
        puts_(l, "\"");
    } else {
        put_time(l);
        puts_(l, " ");
        puts_(l, level_tags[level]);
        puts_(l, " ");
        put(l, msg, msglen);
    }
}

static void finish(struct line *l)
{
    if (current_format == MOM_LOG_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    fwrite(l->buf, 1, l->len, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < current_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = m < 0 ? 0 : (size_t)m >= sizeof msg ? sizeof msg - 1 : (size_t)m;
    struct line l;
    begin(&l, level, msg, len);
    if (l.cut) /* only JSON escaping can grow it past the line */
        begin(&l, level, msg, len > 300 ? 300 : len);
    finish(&l);
}

void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n)
{
    struct line l;
    begin(&l, level, msg, strlen(msg));
    for (size_t i = 0; i < n && !l.cut; i++) {
        char num[24];
        const char *v = fields[i].str;
        if (!v)
            snprintf(num, sizeof num, "%llu", (unsigned long long)fields[i].num);
        if (current_format == MOM_LOG_JSON) {
            puts_(&l, ",\"");
            puts_(&l, fields[i].key);
            puts_(&l, "\":");
            if (v) {
                puts_(&l, "\"");
                put_escaped(&l, v, strlen(v));
                puts_(&l, "\"");
            } else {
                puts_(&l, num);
            }
        } else {
            puts_(&l, " ");
            puts_(&l, fields[i].key);
            puts_(&l, "=");
            if (v) {
                puts_(&l, "\"");
                put_escaped(&l, v, strlen(v));
                puts_(&l, "\"");
            } else {
                puts_(&l, num);
            }
        }
    }
    if (l.cut && current_format == MOM_LOG_JSON) {
        /* a cut JSON line would not parse: the start of the message only */
        size_t mlen = strlen(msg);
        begin(&l, level, msg, mlen > 200 ? 200 : mlen);
        puts_(&l, ",\"truncated\":true");
    }
    finish(&l);
}

void log_escape_sample(const void *data, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < len && o + 5 < outlen; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            out[o++] = (char)p[i];
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
        }
    }
    out[o] = '\0';
}
