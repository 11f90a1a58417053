/* Protocol Buffers wire primitives over byte buffers: the pieces the
 * hand-laid encoders and one-pass decoders (broker/command.c,
 * replication/node_wire.c) share. Varints are written in their shortest
 * form and read only in it (anything else is left to nanopb's decoder by
 * the callers); tags here are one byte (field numbers 1..15). Pure, no
 * allocation.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_PBWIRE_H
#define MOM_COMMON_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PBWIRE_VARINT = 0, PBWIRE_LEN = 2 };

/* The one-byte tag of a field numbered 1..15. */
static inline uint8_t pbwire_tag(uint32_t field, unsigned wire_type)
{
    return (uint8_t)(field << 3 | wire_type);
}

static inline size_t pbwire_varint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

/* Writes v at p (room for pbwire_varint_size(v) bytes); returns the end. */
static inline uint8_t *pbwire_put_varint(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

struct pbwire_reader {
    const uint8_t *p, *end;
};

/* Consumes the byte tag when it is next; false (nothing consumed) if not. */
static inline bool pbwire_read_tag(struct pbwire_reader *r, uint8_t tag)
{
    if (r->p < r->end && *r->p == tag) {
        r->p++;
        return true;
    }
    return false;
}

/* A varint in its shortest form that fits 64 bits. */
static inline bool pbwire_read_varint(struct pbwire_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return b != 0 || shift == 0;
        }
    }
    return false;
}

/* A length-delimited field's bytes (after its tag), within the input. */
static inline bool pbwire_read_bytes(struct pbwire_reader *r, const uint8_t **p, size_t *n)
{
    uint64_t len;
    if (!pbwire_read_varint(r, &len) || len > (uint64_t)(r->end - r->p))
        return false;
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    return true;
}

#endif
