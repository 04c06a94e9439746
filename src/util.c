// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int duration__parse(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
	    {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"", 1e9}, {"m", 60e9}, {"h", 3600e9},
	};
	char *end;
	double v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		v *= units[i].ns;
		/* 2^64 as a double: anything at or above it does not fit. */
		if (v >= 18446744073709551616.0)
			return -EINVAL;
		*ns = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

int count__parse(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static uint64_t clock__ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t clock__monotonic_ns(void)
{
	return clock__ns(CLOCK_MONOTONIC);
}

uint64_t clock__to_realtime_ns(uint64_t mono_ns)
{
	uint64_t mono = clock__ns(CLOCK_MONOTONIC), real = clock__ns(CLOCK_REALTIME);

	return real - (mono - mono_ns);
}

int file__read_all(const char *path, char **buf_out, size_t *len_out)
{
	char *buf = NULL, *tmp;
	size_t len = 0, cap = 0;
	int fd = -1, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			tmp = realloc(buf, cap);
			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			buf = tmp;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
out:
	if (fd >= 0)
		close(fd);
	if (err) {
		free(buf);
		buf = NULL;
		len = 0;
	}
	*buf_out = buf;
	*len_out = len;
	return err;
}

uint64_t hash__bytes(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return hash__mix64(h);
}

/*
 * The byte ranges are those of Unicode's table of well-formed sequences, which excludes
 * overlongs, surrogates and code points above U+10FFFF by construction.
 */
size_t utf8__sequence(const unsigned char *s, size_t len, bool *ok)
{
	unsigned char lead = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need = 0;

	*ok = false;
	if (lead >= 0xc2 && lead <= 0xdf) {
		need = 1;
	} else if (lead >= 0xe0 && lead <= 0xef) {
		need = 2;
		if (lead == 0xe0)
			lo = 0xa0; /* below is overlong */
		else if (lead == 0xed)
			hi = 0x9f; /* above is a surrogate */
	} else if (lead >= 0xf0 && lead <= 0xf4) {
		need = 3;
		if (lead == 0xf0)
			lo = 0x90; /* below is overlong */
		else if (lead == 0xf4)
			hi = 0x8f; /* above is beyond U+10FFFF */
	} else {
		return 1;
	}

	for (size_t i = 1; i <= need; i++) {
		if (i >= len || s[i] < lo || s[i] > hi)
			return i;
		/* only the second byte has a narrowed range */
		lo = 0x80;
		hi = 0xbf;
	}
	*ok = true;
	return need + 1;
}

/* ioprio_set(2): the idle class; glibc has no wrapper. */
#define IOPRIO_CLASS_IDLE  3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

void thread__background(void)
{
	syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
	setpriority(PRIO_PROCESS, syscall(SYS_gettid), 19);
}

void utf8__write_escaped(FILE *f, const char *str, size_t len,
			 const char *(*escape)(unsigned char c, char buf[UTF8_ESC_MAX]))
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0, i = 0; /* run: start of the bytes that go out verbatim, in one fwrite */
	char buf[UTF8_ESC_MAX];

	while (i < len) {
		const char *e = NULL;
		size_t n = 1;
		bool ok = false;

		if (s[i] < 0x80) {
			e = escape(s[i], buf);
			if (!e) {
				i++;
				continue;
			}
		} else {
			n = utf8__sequence(s + i, len - i, &ok);
			if (ok) {
				i += n;
				continue;
			}
			e = "\xef\xbf\xbd"; /* U+FFFD */
		}
		fwrite_unlocked(s + run, 1, i - run, f);
		fputs_unlocked(e, f);
		i += n;
		run = i;
	}
	fwrite_unlocked(s + run, 1, i - run, f);
}
