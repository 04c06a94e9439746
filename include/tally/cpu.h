/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The CPU path's ABI between bpf/cpu.bpf.c and src/cpu.c: plain fixed-width structs,
 * no pointers, so both sides agree whatever the compiler.
 */
#ifndef __TALLY_CPU_H
#define __TALLY_CPU_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Default number of cgroups the per-CPU counter map holds (--max-cgroups). */
#define TALLY_CPU_DEFAULT_MAX_CGROUPS 16384
/* Upper bound of CPUs the removal handler folds over (bounded loop for the verifier). */
#define TALLY_CPU_MAX_CPUS 1024

/* Value of cg_cpu, per CPU, keyed by cgroup v2 id: what the cgroup's own tasks used. */
struct cpu_counter {
	__u64 time_ns;  /* on-CPU time of tasks that switched out of this cgroup */
	__u64 switches; /* context switches out of this cgroup's tasks */
};

/* Value of cpu_running (one slot, per CPU): who is on the CPU since when. */
struct cpu_running {
	__u64 since_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last switch; 0: unknown */
	__u64 cgid;     /* cgroup v2 id of the task switched in; 0 for idle */
};

/* Global counters in .bss: rare events, updated atomically. */
struct cpu_drops {
	__u64 updates; /* counter updates lost because cg_cpu was full */
	__u64 time_ns; /* on-CPU time those updates carried */
};

#endif /* __TALLY_CPU_H */
