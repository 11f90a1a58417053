/* Fixed-bucket histograms (see histogram.h): a linear scan over at most 16
 * bounds per observation, cumulative sums only when read.
 * SPDX-License-Identifier: MIT */
#include "common/histogram.h"

#include <string.h>

const uint64_t histogram_request_bounds_us[] = {
    500,    1000,   2500,    5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};
const size_t histogram_request_nbounds =
    sizeof histogram_request_bounds_us / sizeof histogram_request_bounds_us[0];

const uint64_t histogram_disk_bounds_us[] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 250000, 1000000, 2500000, 10000000,
};
const size_t histogram_disk_nbounds =
    sizeof histogram_disk_bounds_us / sizeof histogram_disk_bounds_us[0];

void histogram_init(struct histogram *h, const uint64_t *bounds_us, size_t nbounds)
{
    memset(h, 0, sizeof *h);
    h->bounds_us = bounds_us;
    h->nbounds = nbounds > HISTOGRAM_MAX_BOUNDS ? HISTOGRAM_MAX_BOUNDS : nbounds;
}

void histogram_observe(struct histogram *h, uint64_t us)
{
    size_t i = 0;
    while (i < h->nbounds && us > h->bounds_us[i])
        i++;
    h->counts[i]++;
    h->sum_us += us;
    h->count++;
}

uint64_t histogram_cumulative(const struct histogram *h, size_t i)
{
    uint64_t total = 0;
    for (size_t k = 0; k <= i && k <= h->nbounds; k++)
        total += h->counts[k];
    return total;
}
