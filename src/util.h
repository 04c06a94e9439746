/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef __TALLY_UTIL_H
#define __TALLY_UTIL_H

#include <stdint.h>

#define NSEC_PER_SEC 1000000000ull

/*
 * Parse a duration: a number with an optional unit, ns, us, ms, s (default), m or h
 * ("1s", "500ms", "0.25", "2m"). Returns 0, or -EINVAL for anything else (negative,
 * trailing junk, overflow).
 */
int duration__parse(const char *s, uint64_t *ns);

/* Parse a positive 32-bit count ("16384"). 0 or -EINVAL. */
int count__parse(const char *s, uint32_t *out);

uint64_t clock__monotonic_ns(void);
/* CLOCK_REALTIME ns for a CLOCK_MONOTONIC ns reading taken recently. */
uint64_t clock__to_realtime_ns(uint64_t mono_ns);

#endif /* __TALLY_UTIL_H */
