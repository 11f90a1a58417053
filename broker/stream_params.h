/* Pure parsers of where a topic read, stream or subscription begins: the
 * `from` query value (`earliest`, `latest`, an offset or `time:<RFC 3339>`),
 * an RFC 3339 timestamp on its own (subscription `start`, seek `time`), and
 * the `Last-Event-ID` header of a resumed stream (an offset or a seq). They
 * read only the bytes they are given (no locale, no time zone, no clock) and
 * fail with a parse_error (always API_ERR_BAD_REQUEST, 400) whose message
 * can go to the client as it is.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_STREAM_PARAMS_H
#define MOM_BROKER_STREAM_PARAMS_H

#include "broker/http_parse.h"

#include <stddef.h>
#include <stdint.h>

/* The longest `from` value accepted (in bytes, after query decoding). A
 * caller reading it with http_query_get uses a buffer of at least
 * STREAM_FROM_MAX + 2 bytes, so a longer value arrives with more than
 * STREAM_FROM_MAX bytes and is refused rather than silently cut. */
#define STREAM_FROM_MAX 120

enum stream_from_kind {
    STREAM_FROM_EARLIEST, /* the first retained message */
    STREAM_FROM_LATEST,   /* only what is published from now on */
    STREAM_FROM_OFFSET,   /* value is an offset */
    STREAM_FROM_TIME,     /* value is a time, ms since the Unix epoch (UTC) */
};

struct stream_from {
    enum stream_from_kind kind;
    uint64_t value; /* offset or time in ms; 0 for earliest and latest */
};

/* Parses a NUL-terminated `from` value: "earliest", "latest", a decimal
 * offset (digits only, no sign, at most UINT64_MAX) or "time:" followed by
 * an RFC 3339 time (stream_parse_time, with query_plus set: the value comes
 * from a query string, where an unencoded '+' of a "+01:00" offset arrives
 * as a space). Returns 0, or -1 with err filled. */
int stream_parse_from(const char *text, struct stream_from *out, struct parse_error *err);

/* Parses an RFC 3339 date-time (len bytes, no NUL needed):
 * YYYY-MM-DD"T"hh:mm:ss[.frac]("Z"|("+"|"-")hh:mm), "T" and "Z" in either
 * case, a real calendar date (leap years), hh 00-23, mm 00-59, ss 00-60 (a
 * leap second reads as the first second of the next minute), an offset of at
 * most 23:59 ("-00:00" is UTC). The result is whole milliseconds since the
 * Unix epoch: a fraction finer than a millisecond rounds up, so "at or after
 * this time" keeps its meaning against millisecond stamps; a time before
 * 1970 gives 0. When query_plus, a space where the offset's sign goes is
 * read as '+'. Returns 0, or -1 with err filled. */
int stream_parse_time(const char *text, size_t len, bool query_plus, uint64_t *ms,
                      struct parse_error *err);

/* Parses a Last-Event-ID header value (len bytes): a decimal offset or seq,
 * digits only after trimming spaces and tabs at both ends (HTTP's optional
 * white space); no sign, not empty, below UINT64_MAX so that the next
 * position (*id + 1) always exists. Returns 0, or -1 with err filled. */
int stream_parse_last_event_id(const char *text, size_t len, uint64_t *id, struct parse_error *err);

#endif
