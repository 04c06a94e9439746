/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The CPU path, userspace side: load and attach bpf/cpu.bpf.c, read every cgroup's counters
 * in batches, and add the in-flight time of the tasks running at read time.
 */
#ifndef __TALLY_CPU_USER_H
#define __TALLY_CPU_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/cpu.h"

struct cpu_opts {
	uint32_t max_cgroups;	/* entries of the counter map; 0: TALLY_CPU_DEFAULT_MAX_CGROUPS */
	uint32_t rollup_levels; /* 0 (shipped): own cgroup only; >0: also ancestors, in BPF */
	bool force_raw_tp;	/* skip tp_btf, as on a kernel without it (tests the fallback) */
	bool force_no_batch;	/* skip batch lookups (tests the fallback) */
	bool force_walks;	/* count no cgroup tree changes: walk every time (tests it) */
	/* cgroup v2 id below which cpu__tree_changes counts (the collector's root); 0: all */
	uint64_t tree_root;
	/*
	 * The agent's bpffs directory (see pin.h): maps and links pinned there, reused by the
	 * next agent, left attached on cpu__free. NULL: nothing pinned, all detached on free.
	 * The collector hands it to the network path too.
	 */
	const char *pin_root;
};

/* Own (not hierarchical) counters of one cgroup, in-flight time included. */
struct cpu_entry {
	uint64_t cgid;
	uint64_t time_ns;     /* in-flight part included */
	uint64_t inflight_ns; /* part of time_ns of tasks on a CPU at read time */
	uint64_t switches;
};

struct cpu_sample {
	uint64_t ts_ns;	     /* CLOCK_MONOTONIC when the in-flight part was computed */
	struct cpu_entry *e; /* sorted by cgid */
	size_t n, cap;
	size_t map_entries;	  /* entries in the counter map (its fill) */
	uint64_t dropped_updates; /* updates lost because the map was full, since load */
	uint64_t dropped_ns;	  /* CPU time those updates carried */
	/*
	 * A running task switched out during every attempt of the read: its in-flight part may
	 * be missing, so the sample is a lower bound (the next one has that time).
	 */
	bool lower_bound;
};

struct tally_cpu;
struct cpu_bpf;

/* Open, configure, load and attach, probing tp_btf then raw_tp. NULL and errno on failure. */
struct tally_cpu *cpu__open(const struct cpu_opts *opts);
void cpu__free(struct tally_cpu *c); /* detaches everything; accepts NULL */

/* Read every cgroup's counters into s (reused between calls). 0 or -errno. */
int cpu__read(struct tally_cpu *c, struct cpu_sample *s);
void cpu_sample__free(struct cpu_sample *s);
/*
 * Pure: one CPU's in-flight time at now_ns (CLOCK_MONOTONIC) from what cpu__read read of it,
 * and the cgroup it belongs to (*cgid; 0 and a return of 0: nobody's).
 */
uint64_t cpu__inflight_ns(const struct cpu_running *r, const struct cpu_rq_clock *k,
			  uint64_t now_ns, uint64_t *cgid);
const struct cpu_entry *cpu_sample__find(const struct cpu_sample *s, uint64_t cgid);

/*
 * Pinned mode: whether the counters are a predecessor's (the agent was restarted), and the
 * directory of another layout that was replaced ("" if none), for the agent's log.
 */
bool cpu__resumed(const struct tally_cpu *c);
const char *cpu__replaced(const struct tally_cpu *c);
/*
 * CPU time of a cgroup from before the counters (see cg_seed in bpf/cpu.bpf.c), kept with
 * pinned counters. get: 0, -ENOENT or -errno; put and del (fine when absent): 0 or -errno.
 */
int cpu__seed_get(struct tally_cpu *c, uint64_t cgid, uint64_t *ns);
int cpu__seed_put(struct tally_cpu *c, uint64_t cgid, uint64_t ns);
int cpu__seed_del(struct tally_cpu *c, uint64_t cgid);
/* Drop the seeds of cgroups that present(id) says are gone. 0 or -errno. */
int cpu__seed_prune(struct tally_cpu *c, bool (*present)(uint64_t id, void *ctx), void *ctx);

/* What the probes chose, for logs and --verbose. */
const char *cpu__switch_hook(const struct tally_cpu *c); /* "tp_btf" or "raw_tp" */
bool cpu__batch_reads(const struct tally_cpu *c);
bool cpu__tracks_removal(const struct tally_cpu *c);
bool cpu__tracks_tree(const struct tally_cpu *c);
uint32_t cpu__max_cgroups(const struct tally_cpu *c);
struct cpu_bpf *cpu__skel(struct tally_cpu *c); /* for the benchmark's bpf_stats */

/*
 * How many cgroup v2 directories were created, renamed or removed below opts->tree_root since
 * the programs were loaded (by a predecessor too, when pinned), read from the mmap'ed .bss
 * without a syscall.
 * Without those programs (cpu__tracks_tree false) a value that differs at every call, so a
 * caller that walks when it moved walks every time. A mkdir counts just before its directory
 * shows (see handle_cgroup_mkdir).
 */
uint64_t cpu__tree_changes(struct tally_cpu *c);

/*
 * Reconciliation where the removal tracepoint is not used: drop counter entries of cgroups
 * absent from this walk and from the previous one (two walks, so a cgroup born after a walk
 * is never dropped). present(id) says whether the cgroup is in the current walk.
 */
int cpu__prune(struct tally_cpu *c, bool (*present)(uint64_t id, void *ctx), void *ctx);

/* Parse "usage_usec N" out of a cgroup v2 cpu.stat buffer. 0, or -ENOENT when absent. */
int cpustat__parse_usage(const char *buf, uint64_t *usage_usec);
/* Read usage_usec of the cgroup directory at dirfd (cpu.stat). 0 or -errno. */
int cpustat__read_usage(int dirfd, uint64_t *usage_usec);

#endif /* __TALLY_CPU_USER_H */
