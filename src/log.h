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
/* Route libbpf's own output here: shown at LOG_DEBUG (-v) only. */
void log__setup_libbpf(void);

#define log_err(...)   log__msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log__msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log__msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log__msg(LOG_DEBUG, __VA_ARGS__)

#endif /* __TALLY_LOG_H */
