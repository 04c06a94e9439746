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
	__u64 task;	/* its task_struct, as a number: the next switch out must be of it */
	__u64 since_runtime_ns; /* its se.sum_exec_runtime when it was switched in */
	/*
	 * Its run queue (as a number) and that queue's clocks at the switch: rq->clock, and
	 * rq->clock_task, which leaves out time stolen by the hypervisor (and interrupt time
	 * where the kernel accounts it apart). 0 where the kernel's types lack the link.
	 */
	__u64 rq;
	__u64 since_rq_ns;
	__u64 since_task_ns;
	__u64 task_start_ns; /* its start_time: tells the same task from a reuse of its memory */
};

/* One CPU's run-queue clocks now, filled by the read_clocks program (see cpu__read). */
struct cpu_rq_clock {
	__u64 rq_ns;
	__u64 task_ns;
	__u64 curr; /* the task on the CPU (rq->curr), as a number; 0: not known */
	/*
	 * When curr is not cpu_running's task (its switch-in was not seen): its cgroup v2 id and
	 * what it ran since it was picked, its in-flight part. 0: none known.
	 */
	__u64 curr_cgid;
	__u64 curr_stint_ns;
};

/* Global counters in .bss: rare events, updated atomically. */
struct cpu_drops {
	__u64 updates; /* counter updates lost because cg_cpu was full */
	__u64 time_ns; /* on-CPU time those updates carried */
};

#endif /* __TALLY_CPU_H */
