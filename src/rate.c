// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>

#include "rate.h"

int rate__per_second(const struct counter_sample *prev, const struct counter_sample *cur,
		     uint64_t scale, uint64_t *out)
{
	unsigned __int128 r;
	uint64_t dt;

	if (!prev->valid || !cur->valid || cur->ts_ns <= prev->ts_ns)
		return -ENODATA;
	/* Backwards is a reset (a reloaded map, a recreated cgroup): no rate, not a negative one.
	 */
	if (cur->value < prev->value)
		return -ENODATA;
	dt = cur->ts_ns - prev->ts_ns;
	/* 128 bits: ns deltas times a 1e9 scale overflow 64 bits after ~18 s of CPU time. */
	r = (unsigned __int128)(cur->value - prev->value) * scale * 1000000000u / dt;
	*out = r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
	return 0;
}
