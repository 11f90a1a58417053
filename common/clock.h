/* Clocks: wall time in ms since the epoch (for Command stamps) and a
 * monotonic ms counter (for timeouts and measurements).
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_CLOCK_H
#define MOM_COMMON_CLOCK_H

#include <stdint.h>

uint64_t clock_wall_ms(void);
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
/* The next Command stamp from the wall clock `wall`, given this process's
 * previous stamp `prev` taken at monotonic time `prev_mono` (0: none yet).
 * Stamps decide when leases expire, so a wall clock that jumps forward
 * must not end them early: a stamp runs at most 1% faster than the
 * monotonic clock since the previous one (a wall clock that was really
 * behind is caught up at that rate). Never below `prev`. Pure. */
uint64_t clock_stamp_next(uint64_t prev, uint64_t prev_mono, uint64_t wall, uint64_t mono);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-28T18:42:35.123Z"); out must hold 25 bytes. */
void clock_format_rfc3339(uint64_t wall_ms, char out[25]);

#endif
