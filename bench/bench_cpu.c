// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * make bench, CPU path. Prints, measured in this run on this machine:
 *  1. BPF cost per context switch (bpf_stats run_time_ns / run_cnt), for the shipped program
 *     (own cgroup only, parents summed in userspace) and for the in-kernel roll-up alternative;
 *  2. the time to read the CPU counters of N cgroups: tally's batch read (plus the userspace
 *     roll-up) against open+read+close of every cgroup's cpu.stat, as today's agents do;
 *  3. the slowdown of a context-switch-heavy workload (perf bench sched pipe) with the
 *     programs attached against without.
 * Everything it creates (cgroups under tally-bench-<pid>) is removed, even on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "tally/cpu.h"
#include "cpu.h"
#include "cpu.skel.h"
#include "discovery.h"
#include "model.h"
#include "util.h"

static char cgroot[PATH_MAX];
static char benchdir[PATH_MAX + 32];
/* Created cgroups, for cleanup (deepest last). */
static char **made;
static size_t n_made, cap_made;

/* Remove the cgroups made since index first, newest (deepest) first. */
static void cleanup_from(size_t first)
{
	while (n_made > first) {
		char *p = made[--n_made];

		bench__rmdir_retry(p);
		free(p);
	}
}

static void cleanup(void)
{
	cleanup_from(0);
	free(made);
	made = NULL;
	if (benchdir[0])
		rmdir(benchdir);
}

static void on_signal(int sig)
{
	cleanup();
	_exit(128 + sig);
}

static const char *mkcg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *mkcg(const char *fmt, ...)
{
	va_list ap;
	char *abs;

	va_start(ap, fmt);
	abs = bench__vpath(benchdir, fmt, ap);
	va_end(ap);
	if (mkdir(abs, 0755))
		bench__die("create a cgroup", errno);
	if (n_made == cap_made) {
		cap_made = cap_made ? cap_made * 2 : 1024;
		made = realloc(made, cap_made * sizeof(*made));
		if (!made)
			bench__die("allocate", ENOMEM);
	}
	made[n_made++] = abs;
	return abs;
}

static void enter(const char *cg, pid_t pid)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f))
		bench__die("move a task into a cgroup", errno);
}

/* Run `perf bench sched pipe -l loops` inside cg; returns its wall time in ns. */
static uint64_t run_pipe(const char *cg, int loops)
{
	char arg[32];
	uint64_t t0;
	pid_t pid;
	int status, devnull;

	snprintf(arg, sizeof(arg), "%d", loops);
	t0 = clock__monotonic_ns();
	pid = fork();
	if (pid < 0)
		bench__die("fork", errno);
	if (pid == 0) {
		cpu_set_t one;

		/* Both ends on one CPU: every op is two switches and no idle wake-ups, which
		 * makes the figure far less noisy on a small VM. */
		CPU_ZERO(&one);
		CPU_SET(0, &one);
		sched_setaffinity(0, sizeof(one), &one);
		enter(cg, getpid());
		devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execlp("perf", "perf", "bench", "sched", "pipe", "-l", arg, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		bench__die("run 'perf bench sched pipe' (install linux-perf)", EINVAL);
	return clock__monotonic_ns() - t0;
}

/* Cost per switch of the program as loaded with these options, under the pipe workload. */
static double per_switch_ns(const struct cpu_opts *o, const char *cg, const char **hook)
{
	struct tally_cpu *c = cpu__open(o);
	uint64_t ns0, n0, ns1, n1;
	struct cpu_bpf *skel;
	int fd;

	if (!c)
		bench__die("load the CPU programs", errno);
	skel = cpu__skel(c);
	*hook = cpu__switch_hook(c);
	fd = bpf_program__fd(!strcmp(*hook, "raw_tp") ? skel->progs.handle_sched_switch_raw
						      : skel->progs.handle_sched_switch);
	if (bench__prog_stats(fd, &ns0, &n0))
		bench__die("read program info", errno);
	run_pipe(cg, 50000);
	if (bench__prog_stats(fd, &ns1, &n1))
		bench__die("read program info", errno);
	cpu__free(c);
	return n1 > n0 ? (double)(ns1 - ns0) / (double)(n1 - n0) : 0;
}

#define REPS 11

/* 2: read N cgroups' counters. */
static void bench_reads(int n)
{
	struct cpu_opts o = {.max_cgroups = n + 4096};
	struct cpu_sample s = {}, s2 = {};
	struct cg_tree t = {};
	struct cpu_totals *tot;
	struct tally_cpu *c, *c2;
	uint64_t t0, batch[REPS], perkey[REPS], cstat[REPS], rollup[REPS], walk;
	size_t first = n_made;
	char *vals;
	int nr_cpus = libbpf_num_possible_cpus(), fd, fd2, err;

	c = cpu__open(&o);
	o.force_no_batch = true;
	c2 = cpu__open(&o);
	if (!c || !c2)
		bench__die("load the CPU programs", errno);
	/* Real cgroups; their map entries are written from here, since the read cost depends
	 * on the entries, not on who wrote them. */
	mkcg("reads%d", n);
	vals = calloc(nr_cpus, sizeof(struct cpu_counter));
	for (int i = 0; i < nr_cpus; i++)
		((struct cpu_counter *)vals)[i] = (struct cpu_counter){1000 + i, 1};
	fd = bpf_map__fd(cpu__skel(c)->maps.cg_cpu);
	fd2 = bpf_map__fd(cpu__skel(c2)->maps.cg_cpu);
	for (int i = 0; i < n; i++) {
		struct stat st;
		const char *p = mkcg("reads%d/c%d", n, i);
		uint64_t id;

		if (stat(p, &st))
			bench__die("stat a cgroup", errno);
		id = st.st_ino;
		if (bpf_map_update_elem(fd, &id, vals, BPF_ANY) ||
		    bpf_map_update_elem(fd2, &id, vals, BPF_ANY))
			bench__die("fill the counter map", errno);
	}
	free(vals);
	t0 = clock__monotonic_ns();
	err = cg_tree__walk(&t, cgroot);
	walk = clock__monotonic_ns() - t0;
	if (err)
		bench__die("walk the cgroup tree", err);
	tot = calloc(t.n, sizeof(*tot));
	for (int r = 0; r < REPS; r++) {
		t0 = clock__monotonic_ns();
		if ((err = cpu__read(c, &s)))
			bench__die("batch-read the counters", err);
		batch[r] = clock__monotonic_ns() - t0;
		t0 = clock__monotonic_ns();
		if ((err = cpu__read(c2, &s2)))
			bench__die("read the counters key by key", err);
		perkey[r] = clock__monotonic_ns() - t0;
		t0 = clock__monotonic_ns();
		model__rollup_cpu(&t, &s, tot);
		rollup[r] = clock__monotonic_ns() - t0;
		t0 = clock__monotonic_ns();
		for (size_t i = first + 1; i < n_made; i++) {
			uint64_t usec;
			int dfd = open(made[i], O_RDONLY | O_DIRECTORY);

			if (dfd < 0 || cpustat__read_usage(dfd, &usec))
				bench__die("read cpu.stat", errno);
			close(dfd);
		}
		cstat[r] = clock__monotonic_ns() - t0;
	}
	uint64_t b = bench__median(batch, REPS), k = bench__median(perkey, REPS),
		 st = bench__median(cstat, REPS), ru = bench__median(rollup, REPS);
	printf("| %6d | %9.3f | %9.3f | %9.3f | %10.3f | %7.1fx | %9.3f |\n", n, b / 1e6, ru / 1e6,
	       k / 1e6, st / 1e6, (double)st / (double)(b + ru), walk / 1e6);
	if (s.n < (size_t)n)
		bench__die("read back all entries", EIO);
	free(tot);
	cg_tree__free(&t);
	cpu_sample__free(&s);
	cpu_sample__free(&s2);
	cpu__free(c);
	cpu__free(c2);
	cleanup_from(first);
}

int bench_cpu(int argc, char **argv)
{
	const char *leaf, *hook = "?";
	uint64_t off[9], on[9];
	struct cpu_opts own = {}, kernel = {.rollup_levels = 63};
	double c_own, c_kernel;
	int stats_fd, err;

	err = cgroup2__find_mount_file("/proc/self/mountinfo", cgroot, sizeof(cgroot));
	if (err)
		bench__die("find the cgroup2 mount", err);
	snprintf(benchdir, sizeof(benchdir), "%s/tally-bench-%d", cgroot, (int)getpid());
	if (mkdir(benchdir, 0755))
		bench__die("create the benchmark cgroup", errno);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	atexit(cleanup);
	/* A pod-like depth: /tally-bench/pod.slice/pod-x.slice/ctr.scope (4 below the root). */
	mkcg("pod.slice");
	mkcg("pod.slice/pod-x.slice");
	leaf = mkcg("pod.slice/pod-x.slice/ctr.scope");

	printf("## CPU path (tally bench, %ld CPUs)\n\n", sysconf(_SC_NPROCESSORS_ONLN));
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0)
		bench__die("enable bpf_stats", stats_fd);
	c_own = per_switch_ns(&own, leaf, &hook);
	c_kernel = per_switch_ns(&kernel, leaf, &hook);
	close(stats_fd);
	printf("### 1. Cost per context switch (bpf_stats run_time_ns / run_cnt, perf bench "
	       "sched pipe in a cgroup 4 levels deep)\n\n");
	printf("| program | ns per switch |\n| --- | ---: |\n");
	printf("| %s/sched_switch, own cgroup (shipped) | %.0f |\n", hook, c_own);
	printf("| %s/sched_switch, roll-up in the kernel (5 levels) | %.0f |\n\n", hook, c_kernel);

	printf("### 2. Reading the CPU counters of N cgroups (ms, median of 11)\n\n");
	printf("| N | batch read | + roll-up | per-key read | cpu.stat each | cpu.stat / "
	       "tally | tree walk |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int n = 100; n <= 10000; n *= 10)
		bench_reads(n);

	printf("\n### 3. perf bench sched pipe -l 50000 on one CPU, wall time (median of 9, "
	       "alternating)\n\n");
	for (int r = 0; r < 9; r++) {
		struct tally_cpu *c;

		off[r] = run_pipe(leaf, 50000);
		c = cpu__open(&own);
		if (!c)
			bench__die("load the CPU programs", errno);
		on[r] = run_pipe(leaf, 50000);
		cpu__free(c);
	}
	uint64_t m_off = bench__median(off, 9), m_on = bench__median(on, 9);
	printf("| without tally | with tally | slowdown |\n| ---: | ---: | ---: |\n");
	printf("| %.3f s | %.3f s | %+.1f%% |\n", m_off / 1e9, m_on / 1e9,
	       100.0 * ((double)m_on - (double)m_off) / (double)m_off);
	return 0;
}
