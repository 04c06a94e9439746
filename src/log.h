/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one layer that reports problems (commands and, later, the daemon). Library code returns
 * -errno and never prints. Messages read "failed to <verb> <object> '<name>': <reason>".
 */
#ifndef __TALLY_LOG_H
#define __TALLY_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log__set_level(enum log_level level);
enum log_level log__level(void);
/* In JSON mode an error is a JSON document on stdout: {"error": "..."} (as bpftool does). */
void log__set_json(bool json);
void log__msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Send the log (fd 2) to path, appending, created 0640 if missing. log__reopen opens the same
 * path again, for SIGHUP after logrotate renamed the file; without a log file it does nothing.
 * 0 or -errno; the log stays where it was on failure.
 */
int log__open_file(const char *path);
int log__reopen(void);
/* The path given to log__open_file, or NULL (stderr). */
const char *log__file(void);
/* Route libbpf's own output here: shown at LOG_DEBUG (-v) only. */
void log__setup_libbpf(void);

#define log_err(...)   log__msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log__msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log__msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log__msg(LOG_DEBUG, __VA_ARGS__)

#endif /* __TALLY_LOG_H */
