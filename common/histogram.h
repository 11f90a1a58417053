/* A fixed-bucket latency histogram for metrics: integer microseconds,
 * Prometheus semantics (bucket i counts observations <= bounds_us[i], the
 * last bucket is +Inf). Plain data updated by its one owner thread, no
 * locks; a copy is a consistent snapshot. Counts are kept per bucket and
 * made cumulative when read.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_HISTOGRAM_H
#define MOM_COMMON_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BOUNDS 16

struct histogram {
    const uint64_t *bounds_us; /* increasing upper bounds (static storage) */
    size_t nbounds;            /* <= HISTOGRAM_MAX_BOUNDS */
    uint64_t counts[HISTOGRAM_MAX_BOUNDS + 1];
    uint64_t sum_us;
    uint64_t count;
};

/* Request latencies: 0.5 ms .. 30 s (long polls wait up to 30 s). */
extern const uint64_t histogram_request_bounds_us[];
extern const size_t histogram_request_nbounds;
/* Disk work: 50 us .. 10 s (fdatasync, snapshots). */
extern const uint64_t histogram_disk_bounds_us[];
extern const size_t histogram_disk_nbounds;

/* Empties h and sets its bounds (nbounds is capped at HISTOGRAM_MAX_BOUNDS). */
void histogram_init(struct histogram *h, const uint64_t *bounds_us, size_t nbounds);
void histogram_observe(struct histogram *h, uint64_t us);
/* Observations <= bounds_us[i] (i == nbounds: all of them). */
uint64_t histogram_cumulative(const struct histogram *h, size_t i);

#endif
