/* The access log (MOM_ACCESS_LOG=1): one structured line per answered
 * request, written to the process log in its format (text or JSON): time,
 * node, method, path, status, duration, body bytes and the authenticated
 * user. No header is logged and no body; query values under secret keys
 * (access_token, password, ...) are replaced by "REDACTED", so a token sent
 * in the query string never reaches the log.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_ACCESS_LOG_H
#define MOM_BROKER_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

struct access_record {
    const char *node;   /* X-Mom-Node */
    const char *method; /* as received */
    const char *path;   /* without the query */
    const char *query;  /* raw query string, or NULL */
    const char *user;   /* "" when none was authenticated */
    int status;
    uint64_t micros; /* arrival to answer */
    uint64_t bytes;  /* answer body */
};

/* Writes path, then "?" and the query with secret values redacted (when
 * there is a query), into out (always NUL-terminated; cut at outlen). Pure. */
void access_log_target(const char *path, const char *query, char *out, size_t outlen);
/* Whether a query key (percent-decoded, any case) names a secret. Pure. */
int access_log_secret_key(const char *key, size_t len);
/* Logs one record. */
void access_log_write(const struct access_record *r);

#endif
