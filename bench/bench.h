/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What the benchmarks share: the entry points main.c dispatches to, and bench_util.c. */
#ifndef __TALLY_BENCH_H
#define __TALLY_BENCH_H

#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int bench_cpu(int argc, char **argv);
int bench_disk(int argc, char **argv);
int bench_net(int argc, char **argv);
int bench_agent(int argc, char **argv);

/* --- measuring --- */

/* The median of v (n > 0 values; v is sorted in place, so v[n - 1] is then the max). */
uint64_t bench__median(uint64_t *v, int n);
/* A BPF program's bpf_stats so far: run time and runs. 0 or -errno. */
int bench__prog_stats(int fd, uint64_t *run_ns, uint64_t *runs);
/* The calling thread's CPU time. */
uint64_t bench__thread_cpu_ns(void);

/* --- small helpers --- */

/*
 * "bench: failed to <what>: <reason>" and exit 1. During a signal's cleanup (a failure it
 * caused), it lets that cleanup have the guard's lock and end the process instead.
 */
void bench__die(const char *what, int err) __attribute__((noreturn));
void bench__sleep_ms(unsigned ms);
/* asprintf, or die. */
char *bench__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "<dir>/<fmt...>", allocated, or die. */
char *bench__vpath(const char *dir, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* s written to the file at path in one write(). 0 or -errno. */
int bench__write_str(const char *path, const char *s);
/* The whole of a small file, NUL-terminated, in buf; bytes read or -errno. */
ssize_t bench__read_small(const char *path, char *buf, size_t size);
/* IPv6 off on a device (no autoconfiguration traffic through the programs). 0 or -errno. */
int bench__ipv6_off(const char *dev);
/* rmdir, retried for 2 s while the directory is busy (a cgroup whose task was just reaped). */
void bench__rmdir_retry(const char *path);

/* A growing text buffer. */
struct sbuf {
	char *p;
	size_t len, cap;
};

int sbuf__addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * --- the guard (bench_util.c says how it works) ---
 * bench__guard_start blocks SIGINT/SIGTERM/SIGHUP and starts the thread that takes them; from
 * then until bench__guard_end, the first of a signal, exit() or bench__guard_end runs
 * bench__cleanup once: cleanup(owner) with the lock held, owner being whether the main
 * thread runs it (a signal's cleanup leaves what the main thread owns to exit). The callback
 * removes the benchmark's own things and calls bench__kill_all, bench__links_del and
 * bench__cgroups_remove where its order wants them.
 */
void bench__guard_start(const char *name, void (*cleanup)(bool owner));
void bench__guard_end(void);
void bench__cleanup(void);
/* Creation holds it (recursive) so that a signal's cleanup never sees half of something. */
void bench__lock(void);
void bench__unlock(void);

/*
 * Fork a tracked child that dies with this process (PR_SET_PDEATHSIG). In the child: default
 * signals, stdin on /dev/null, stdout on out_fd and stderr on err_fd (/dev/null when < 0),
 * every other fd closed but keep1 and keep2 (-1: none); returns 0 there, the pid here.
 */
pid_t bench__fork(int out_fd, int err_fd, int keep1, int keep2);
/* Reap a tracked child; its wait status. */
int bench__wait(pid_t pid);
/* No longer track pid (reaped by the caller). */
void bench__forget(pid_t pid);
/* SIGKILL every tracked child and reap it. */
void bench__kill_all(void);
/* Run argv (PATH searched), stdout on out_fd (< 0: discarded), stderr discarded; its exit
 * status or -1. */
int bench__run(const char *const argv[], int out_fd);
/*
 * `ip -batch -` fed with text. Used on the cleanup path too, so it never dies: returns ip's
 * exit status, or -1. force: go on after a failed line (ip's -force), and quiet.
 */
int bench__ip_batch(const char *text, size_t len, bool force);
/*
 * Read n bytes from children reporting on a pipe, each within secs, or die with what. With
 * ok, the first byte not in ok is returned (a child's own failure); 0 when all n came.
 */
char bench__wait_ready(int fd, int n, int secs, const char *what, const char *ok);

/* mkdir a cgroup (abs, allocated: the guard frees it) or die; removed by bench__cgroups_remove. */
const char *bench__cg_make(char *abs);
/* Remove the cgroups bench__cg_make made, newest (deepest) first. */
void bench__cgroups_remove(void);
/* Wait for the devices (veths whose namespaces were removed) to go, then delete what is left. */
void bench__links_del(char (*devs)[IF_NAMESIZE], int n);

#endif /* __TALLY_BENCH_H */
