/* Process logging to stderr: one line per event, level-filtered, with a
 * UTC timestamp, as text ("TIME LEVEL message") or as one JSON object per
 * line ({"time","level","msg",...}). Log once, where the decision is made;
 * lower layers return error codes instead. The level and the format are
 * process-wide settings, written once at start-up.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_LOG_H
#define MOM_COMMON_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { MOM_LOG_DEBUG = 0, MOM_LOG_INFO, MOM_LOG_WARN, MOM_LOG_ERROR };
enum log_format { MOM_LOG_TEXT = 0, MOM_LOG_JSON };

/* One named value of a structured line (log_fields): text when str is
 * non-NULL, else the number. */
struct log_field {
    const char *key; /* [a-z_]+, written as is */
    const char *str;
    uint64_t num;
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug|info|warn|error"; returns 0 or MOM_ERR_INVALID. */
int log_parse_level(const char *text, enum log_level *out);
/* Parses "text|json"; returns 0 or MOM_ERR_INVALID. */
int log_parse_format(const char *text, enum log_format *out);
void log_set_format(enum log_format format);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A structured line, written whatever the level: text "TIME LEVEL msg
 * key=value key=\"quoted value\"", or JSON with each field as a member.
 * Strings are escaped (quotes, backslashes, control and non-ASCII bytes). */
void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n);
/* Writes a bounded, escaped sample of untrusted bytes into out (NUL-terminated). */
void log_escape_sample(const void *data, size_t len, char *out, size_t outlen);

#define log_debug(...) log_msg(MOM_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(MOM_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(MOM_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(MOM_LOG_ERROR, __VA_ARGS__)

#endif
