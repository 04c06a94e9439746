/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Rates from two generations of samples (pure). A counter that goes backwards was reset:
 * that interval has no rate (never a negative one); the first sample has no rate either.
 */
#ifndef __TALLY_RATE_H
#define __TALLY_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct counter_sample {
	uint64_t ts_ns; /* when it was read, CLOCK_MONOTONIC */
	uint64_t value;
	bool valid; /* false: no sample (first generation) */
};

/*
 * Rate of cur over prev in units of value per second, times `scale` (1 for bytes/s; also 1
 * for nanosecond CPU counters, whose rate per second is nano-cores). Returns 0 and sets *out;
 * -ENODATA when there is no previous sample, the clock did not advance, or the counter went
 * backwards.
 */
int rate__per_second(const struct counter_sample *prev, const struct counter_sample *cur,
		     uint64_t scale, uint64_t *out);

#endif /* __TALLY_RATE_H */
