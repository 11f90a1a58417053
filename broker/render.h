/* JSON text building for the store's answers: a growable buffer with
 * escaped strings, integers, RFC 3339 times and message bodies (UTF-8 text
 * with "encoding":"utf-8" when valid, else base64 with "encoding":"base64").
 * Allocation failure is sticky: the first one sets oom and later appends
 * do nothing, so callers check once at the end.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_BROKER_RENDER_H
#define MOM_BROKER_RENDER_H

#include "broker/reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

void jbuf_init(struct jbuf *b);
void jbuf_cleanup(struct jbuf *b);
/* Appends n raw bytes. */
void jbuf_raw(struct jbuf *b, const char *s, size_t n);
/* Appends a NUL-terminated raw text (JSON punctuation and keys). */
void jbuf_lit(struct jbuf *b, const char *s);
/* Appends n bytes as a quoted JSON string. Valid UTF-8 is copied as is;
 * otherwise bytes >= 0x80 are escaped as \u00XX (read as Latin-1). */
void jbuf_str(struct jbuf *b, const char *s, size_t n);
/* Appends a quoted JSON string of a NUL-terminated text, or null for NULL. */
void jbuf_cstr(struct jbuf *b, const char *s);
void jbuf_u64(struct jbuf *b, uint64_t v);
/* Appends v in lowercase hex, zero-padded to at least width digits. */
void jbuf_hex(struct jbuf *b, uint64_t v, int width);
/* Appends a quoted RFC 3339 UTC time with milliseconds. */
void jbuf_time(struct jbuf *b, uint64_t ms);
/* Appends "body":...,"encoding":"utf-8"|"base64" (no surrounding commas). */
void jbuf_body(struct jbuf *b, const uint8_t *body, size_t len);
/* Hands the text to r with status. Returns MOM_OK, or MOM_ERR_NOMEM (r
 * untouched, buffer freed). r may be NULL (the text is dropped). */
int jbuf_finish(struct jbuf *b, struct reply *r, int status);

/* Whether len bytes are well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool render_utf8_valid(const uint8_t *s, size_t len);

#endif
