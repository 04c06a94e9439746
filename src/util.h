/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
#ifndef __TALLY_UTIL_H
#define __TALLY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>

#define NSEC_PER_SEC 1000000000ull

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Parse a duration: a number with an optional unit, ns, us, ms, s (default), m or h
 * ("1s", "500ms", "0.25", "2m"). Returns 0, or -EINVAL for anything else (negative,
 * trailing junk, overflow).
 */
int duration__parse(const char *s, uint64_t *ns);

/* Parse a positive 32-bit count ("16384"). 0 or -EINVAL. */
int count__parse(const char *s, uint32_t *out);

uint64_t clock__monotonic_ns(void);

/*
 * The calling thread yields to the node's work: idle I/O class and nice 19 (walks must not
 * compete with the containers' own I/O and CPU). Failing to lower priority is harmless.
 */
void thread__background(void);
/* CLOCK_REALTIME ns for a CLOCK_MONOTONIC ns reading taken recently. */
uint64_t clock__to_realtime_ns(uint64_t mono_ns);

/* A byte span inside a larger buffer: mountinfo fields and path components are not NUL-ended. */
struct span {
	const char *s;
	size_t len;
};

static inline bool span__eq(struct span sp, const char *str)
{
	size_t n = strlen(str);

	return sp.len == n && memcmp(sp.s, str, n) == 0;
}

/*
 * Read a whole file into a malloc'd, NUL-terminated buffer (*len excludes the NUL). /proc and
 * cgroupfs files report st_size 0, so it reads until EOF. 0 or -errno (*buf NULL then).
 */
int file__read_all(const char *path, char **buf, size_t *len);

/* A 64-bit finaliser (splitmix/murmur3 style): spreads every input bit over the output. */
static inline uint64_t hash__mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* FNV-1a over n bytes, starting from seed, then mixed. */
uint64_t hash__bytes(uint64_t seed, const void *p, size_t n);

/*
 * Length of the UTF-8 sequence starting at s (len > 0 bytes available). Sets *ok when it is
 * well-formed; otherwise the length is that of its maximal subpart, at least 1, which is what
 * one U+FFFD replaces (Unicode 15, section 3.9). The one UTF-8 check: the JSON writer and the
 * Prometheus exposition both use it.
 */
size_t utf8__sequence(const unsigned char *s, size_t len, bool *ok);
/*
 * Write the len bytes at s to f: verbatim in runs, except each ASCII byte for which
 * escape(c, buf) returns a replacement (a constant, or buf filled), and each byte that starts
 * no valid UTF-8 sequence, written as U+FFFD. The one loop behind JSON strings and
 * Prometheus label values.
 */
#define UTF8_ESC_MAX 8
void utf8__write_escaped(FILE *f, const char *s, size_t len,
			 const char *(*escape)(unsigned char c, char buf[UTF8_ESC_MAX]));

#endif /* __TALLY_UTIL_H */
