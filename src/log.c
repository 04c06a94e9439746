// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "json.h"
#include "log.h"

static enum log_level log_level = LOG_WARN;
static bool log_json;
static char *log_path; /* --log-file, NULL: stderr as given */

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

/*
 * The log file takes over fd 2, so that whatever writes to stderr (libbpf, libmicrohttpd, a
 * sanitizer's report) lands in it too. O_APPEND: each line is one write() at the end, even
 * with another writer on the file, and logrotate's copytruncate leaves no hole.
 */
static int log__open_fd(const char *path)
{
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return -errno;
	if (dup2(fd, STDERR_FILENO) < 0)
		err = -errno;
	close(fd);
	return err;
}

int log__open_file(const char *path)
{
	char *copy = strdup(path);
	int err;

	if (!copy)
		return -ENOMEM;
	err = log__open_fd(path);
	if (err) {
		free(copy);
		return err;
	}
	free(log_path);
	log_path = copy;
	return 0;
}

int log__reopen(void)
{
	/* On failure fd 2 is left as it was: lines keep going to the old (renamed) file. */
	return log_path ? log__open_fd(log_path) : 0;
}

const char *log__file(void)
{
	return log_path;
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
