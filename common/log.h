/* Process logging to stderr: one line per event, level-filtered, with a
 * UTC timestamp. Log once, where the decision is made; lower layers return
 * error codes instead. The level is the one process-wide setting.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_LOG_H
#define MOM_COMMON_LOG_H

#include <stddef.h>

enum log_level { MOM_LOG_DEBUG = 0, MOM_LOG_INFO, MOM_LOG_WARN, MOM_LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug|info|warn|error"; returns 0 or MOM_ERR_INVALID. */
int log_parse_level(const char *text, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a bounded, escaped sample of untrusted bytes into out (NUL-terminated). */
void log_escape_sample(const void *data, size_t len, char *out, size_t outlen);

#define log_debug(...) log_msg(MOM_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(MOM_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(MOM_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(MOM_LOG_ERROR, __VA_ARGS__)

#endif
