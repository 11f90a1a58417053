/* Interned, reference-counted strings named by small integer ids: the many
 * messages that share a content type or a publisher keep a 4-byte id
 * instead of a copy. The table owns the strings; an id stays valid until
 * its last reference is released, then the id is reused.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_STRTAB_H
#define MOM_COMMON_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab;

struct strtab *strtab_new(void);
/* Frees every string, referenced or not. Accepts NULL. */
void strtab_free(struct strtab *t);
/* Finds or adds the len bytes at s and takes one reference to it.
 * Returns MOM_OK (with *id) or MOM_ERR_NOMEM / MOM_ERR_TOO_LARGE. */
int strtab_intern(struct strtab *t, const char *s, size_t len, uint32_t *id);
/* Takes one more reference to a live id. */
void strtab_ref(struct strtab *t, uint32_t id);
/* Drops one reference; the string is freed with the last one. */
void strtab_release(struct strtab *t, uint32_t id);
/* The NUL-terminated string of a live id (its length in *len if non-NULL). */
const char *strtab_get(const struct strtab *t, uint32_t id, size_t *len);
/* Number of distinct live strings. */
size_t strtab_count(const struct strtab *t);

#endif
