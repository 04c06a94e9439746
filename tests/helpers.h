/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Test fixtures on the real kernel: cgroup v2 directories named after the test and the pid,
 * CPU burners started (and stopped) by pid. Everything a test creates is removed by
 * th_cleanup(), which the tests' .fini runs even when an assertion failed; a report hook
 * sweeps what a crashed test left.
 */
#ifndef __TALLY_TESTS_HELPERS_H
#define __TALLY_TESTS_HELPERS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The cgroup2 mount of this machine (found like tally does). */
const char *th_cgroot(void);

/*
 * Create <cgroot>/<rel> (rel may be nested: "a/b"; parents are created) and remember it for
 * th_cleanup. Returns the absolute path in a static-per-call heap buffer owned by the helper.
 */
const char *th_cgroup_create(const char *rel);
/* A per-test top-level cgroup name: "tally-test-<name>-<pid>". */
const char *th_test_cgroup(const char *name);
uint64_t th_cgroup_id(const char *abs);
/* cpu.stat usage_usec, in ns. */
uint64_t th_cpustat_ns(const char *abs);
/* Move pid into the cgroup. 0 or -errno. */
int th_cgroup_enter(const char *abs, pid_t pid);
/* rmdir the cgroup; 0 or -errno. */
int th_cgroup_remove(const char *abs);

/* Fork a busy-looping child inside cgroup abs, optionally pinned to one CPU (cpu < 0: not). */
pid_t th_burner_start(const char *abs, int cpu);
/* Fork a child in cgroup abs that runs fn(arg) and exits. */
pid_t th_child_start(const char *abs, void (*fn)(void *), void *arg);
/* Same, pinned to one CPU (cpu < 0: not pinned). */
pid_t th_child_start_on(const char *abs, int cpu, void (*fn)(void *), void *arg);
/*
 * Same, but the child is blocked (before any work) both when it is moved into the cgroup and
 * when hook(pid, ctx) runs, just after the move: a point where its state is exactly known.
 */
pid_t th_child_start_hooked(const char *abs, void (*fn)(void *), void *arg,
			    void (*hook)(pid_t, void *), void *ctx);
/* SIGKILL and reap one child started by the helpers. */
void th_child_stop(pid_t pid);
/* Wait for a child to exit by itself; returns its wait status. */
int th_child_wait(pid_t pid);

/* Spin the calling thread for ms of CPU-ish wall time. */
void th_spin_ms(unsigned ms);
void th_sleep_ms(unsigned ms);

/*
 * Run a shell command (popen): its stdout into out (stderr too when cmd says 2>&1), cut to
 * len - 1 bytes; returns its exit status, 128 when it did not exit.
 */
int th_run(const char *cmd, char *out, size_t len);

/*
 * `promtool check metrics` (the Prometheus project's own parser and linter) with text on its
 * stdin: its exit status, and what it said in out.
 */
int th_promtool(const char *text, size_t len, char *out, size_t outlen);
/* Expect promtool to accept text without a word. */
void th_expect_promtool_accepts(const char *text, size_t len);

/* Stop every child and remove every cgroup this process created (deepest first). */
void th_cleanup(void);

/* |a - b| <= max(rel * b, abs_ns) */
bool th_close(uint64_t a, uint64_t b, double rel, uint64_t abs_ns);

#endif
