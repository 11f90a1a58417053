/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
 * write-ahead log records. Chainable like zlib's crc32(): pass 0 to start,
 * and crc32c_update(crc32c(a), b) == crc32c(a || b). Pure functions; the
 * SSE4.2 instruction is used when the CPU has it, the table path otherwise.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_CRC32C_H
#define MOM_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 for a fresh checksum) over len bytes of data. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
/* CRC32C of one buffer: crc32c("123456789", 9) == 0xE3069283. */
uint32_t crc32c(const void *data, size_t len);
/* The portable slice-by-8 table path, same results; exported for tests. */
uint32_t crc32c_update_sw(uint32_t crc, const void *data, size_t len);

#endif
