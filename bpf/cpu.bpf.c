// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CPU path, kernel side: on-CPU time and context switches per cgroup v2 id.
 *
 * At every switch the time since the previous switch on this CPU is charged to the cgroup of
 * the task leaving the CPU (current, at this tracepoint), and the incoming task's cgroup is
 * remembered per CPU so userspace can add the in-flight part of a task that never switches out.
 * Only a cgroup's own tasks are counted here; parents are summed in userspace (see
 * docs/ARCHITECTURE.md for the measurement behind that choice).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tally/cpu.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by userspace before load. */
const volatile __u32 nr_cpus = 1;
/*
 * 0: charge only the task's own cgroup (what tally ships). N > 0: also charge every ancestor
 * up to N levels deep in the kernel; only the benchmark sets it, to measure that alternative.
 */
const volatile __u32 rollup_levels = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TALLY_CPU_DEFAULT_MAX_CGROUPS); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, struct cpu_counter);
} cg_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_running);
} cpu_running SEC(".maps");

struct cpu_drops drops = {};

static __always_inline void counter_add(__u64 cgid, __u64 time_ns, __u64 switches)
{
	struct cpu_counter *c, init = { .time_ns = time_ns, .switches = switches };

	c = bpf_map_lookup_elem(&cg_cpu, &cgid);
	if (!c) {
		if (!bpf_map_update_elem(&cg_cpu, &cgid, &init, BPF_NOEXIST))
			return;
		/* -EEXIST: another CPU created it first; this CPU's slot starts at zero. */
		c = bpf_map_lookup_elem(&cg_cpu, &cgid);
		if (!c) {
			__sync_fetch_and_add(&drops.updates, 1);
			__sync_fetch_and_add(&drops.time_ns, time_ns);
			return;
		}
	}
	c->time_ns += time_ns;
	c->switches += switches;
}

/*
 * prev_cgid: cgroup of the task leaving the CPU (0 for idle); next_cgid: of the one coming in.
 * Both are read by the caller: the tp_btf program dereferences BTF pointers directly, which is
 * several times cheaper than the probe-read helpers the raw_tp fallback needs.
 */
static __always_inline void on_switch(__u64 prev_cgid, __u64 next_cgid)
{
	struct cpu_running *run;
	__u32 zero = 0;
	__u64 now, delta;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return;
	now = bpf_ktime_get_ns();
	if (prev_cgid) {
		/* since_ns == 0: the first switch seen after load, the time before it is unknown. */
		delta = run->since_ns ? now - run->since_ns : 0;
		if (!rollup_levels) {
			counter_add(prev_cgid, delta, 1);
		} else {
			for (__u32 lvl = 0; lvl < 64 && lvl <= rollup_levels; lvl++) {
				__u64 id = bpf_get_current_ancestor_cgroup_id(lvl);

				if (!id)
					break;
				counter_add(id, delta, 1);
			}
		}
	}
	run->since_ns = now;
	run->cgid = next_cgid;
}

/*
 * A task's cgroup v2 id; 0 for the idle task (pid 0), which is nobody's time. An exiting task
 * can switch out for the last time after its cgroup was removed (its parent's wait returns
 * first): the removal handler already folded that cgroup into its parent, so charge the
 * nearest ancestor still online instead of creating an entry nobody will delete.
 */
static __always_inline __u64 task_cgid(struct task_struct *t)
{
	struct cgroup *cg;

	if (!t->pid)
		return 0;
	cg = t->cgroups->dfl_cgrp;
	for (int i = 0; i < 8 && cg && !(cg->self.flags & CSS_ONLINE) && cg->self.parent; i++)
		cg = cg->self.parent->cgroup;
	return cg ? cg->kn->id : 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(task_cgid(prev), task_cgid(next));
	return 0;
}

/* task_cgid with probe reads, for raw_tp where task pointers are plain numbers. */
static __always_inline __u64 task_cgid_probed(struct task_struct *t)
{
	struct cgroup *cg;

	if (!BPF_CORE_READ(t, pid))
		return 0;
	cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	for (int i = 0; i < 8 && cg && !(BPF_CORE_READ(cg, self.flags) & CSS_ONLINE) &&
			BPF_CORE_READ(cg, self.parent);
	     i++)
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	return cg ? BPF_CORE_READ(cg, kn, id) : 0;
}

/* Fallback for kernels without BTF-typed tracepoints (tp_btf needs 5.5, commit ac4414b5ca47). */
SEC("raw_tp/sched_switch")
int BPF_PROG(handle_sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	on_switch(task_cgid_probed(prev), task_cgid_probed(next));
	return 0;
}

/*
 * A removed cgroup's counters move into its parent, so a parent keeps the time of children
 * that are gone (as the kernel's own cpu.stat does) and the map does not grow under churn.
 * A cgroup can only be removed once it has no tasks, so nothing adds to it concurrently.
 */
SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(handle_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	struct cpu_counter sum = {}, *c;
	__u64 id, parent;

	/* The tracepoint fires for v1 hierarchies too; their ids are another namespace. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	for (__u32 cpu = 0; cpu < TALLY_CPU_MAX_CPUS && cpu < nr_cpus; cpu++) {
		c = bpf_map_lookup_percpu_elem(&cg_cpu, &id, cpu);
		if (c) {
			sum.time_ns += c->time_ns;
			sum.switches += c->switches;
		}
	}
	parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	if (parent && (sum.time_ns || sum.switches) && !rollup_levels)
		counter_add(parent, sum.time_ns, sum.switches);
	bpf_map_delete_elem(&cg_cpu, &id);
	return 0;
}
