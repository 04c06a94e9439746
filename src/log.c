// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "json.h"
#include "log.h"

static enum log_level log_level = LOG_WARN;
static bool log_json;

void log__set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log__level(void)
{
	return log_level;
}

void log__set_json(bool json)
{
	log_json = json;
}

void log__msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char *msg = NULL;
	va_list ap;
	int len;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	len = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (level == LOG_ERROR && log_json) {
		struct jw *w = jw__new(stdout, false);

		if (w) {
			jw__begin_object(w);
			jw__kv_string(w, "error", msg);
			jw__end_object(w);
			jw__free(w);
			fputc('\n', stdout);
			fflush(stdout);
		}
	} else {
		fprintf(stderr, "tally: %s%s%s\n", level == LOG_ERROR ? "" : names[level],
			level == LOG_ERROR ? "" : ": ", msg);
	}
	free(msg);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (log_level < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void log__setup_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
