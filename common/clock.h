/* Clocks: wall time in ms since the epoch (for Command stamps) and a
 * monotonic ms counter (for timeouts and measurements).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_CLOCK_H
#define MOM_COMMON_CLOCK_H

#include <stdint.h>

uint64_t clock_wall_ms(void);
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-28T18:42:35.123Z"); out must hold 25 bytes. */
void clock_format_rfc3339(uint64_t wall_ms, char out[25]);

#endif
