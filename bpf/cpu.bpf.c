// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The CPU path, kernel side: on-CPU time and context switches per cgroup v2 id.
 *
 * At every switch the time the task leaving the CPU (current, at this tracepoint) ran since it
 * was switched in is charged to its cgroup, and the incoming task's cgroup is remembered per
 * CPU so userspace can add the in-flight part of a task that never switches out.
 *
 * That time is the growth of the task's se.sum_exec_runtime over its stretch on the CPU: the
 * scheduler updated it just before this tracepoint, from the same deltas it charges to
 * cpu.stat. Wall-clock deltas (bpf_ktime_get_ns) would also charge the task with time the
 * hypervisor stole from the VM while it was on the CPU, and interrupt time where the kernel
 * accounts that apart: several percent on a loaded host. Wall-clock deltas remain the
 * fallback for a stretch whose start was not seen.
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
/*
 * The cgroup v2 id of the directory the collector walks from (its cgroup2 mount's root, which
 * is a subtree in a cgroup namespace): tree_changes counts changes below it only. 0: all.
 */
const volatile __u64 tree_root_id = 0;

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

/*
 * Userspace's alone, never touched here: each cgroup's CPU time from before the counters
 * existed (cpu.stat when tally first loaded), pinned with them so that an agent restarted
 * over the same counters continues the same totals instead of re-deriving them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_CPU_DEFAULT_MAX_CGROUPS); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, __u64);
} cg_seed SEC(".maps");

/*
 * Cgroups removed lately, each with its parent's id, written by the removal handler: see
 * counter_slot. Old ids age out; a late charge comes within moments of the removal.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} cg_gone SEC(".maps");

/* Removals above removals a late charge follows up to its nearest ancestor still there. */
#define GONE_MAX_HOPS 8

struct cpu_drops drops = {};

/*
 * Cgroup v2 directories created, renamed or removed below tree_root_id since load, read by
 * userspace through the mmap'ed .bss: the collector walks the tree again only when this moved
 * (see collect.c).
 */
__u64 tree_changes = 0;

/* Ancestors looked at for tree_root_id; a change deeper than that below it counts anyway. */
#define TREE_MAX_DEPTH 64

static __always_inline bool tree_has(struct cgroup *cgrp)
{
	struct cgroup *cg = cgrp;

	/* The tracepoints fire for v1 hierarchies too, whose changes are nothing tally walks. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return false;
	if (!tree_root_id)
		return true;
	for (int i = 0; i < TREE_MAX_DEPTH; i++) {
		if (!cg)
			return false; /* above the hierarchy's root: elsewhere */
		if (BPF_CORE_READ(cg, kn, id) == tree_root_id)
			return true;
		cg = BPF_CORE_READ(cg, self.parent, cgroup);
	}
	return true;
}

static __always_inline void tree_changed(struct cgroup *cgrp)
{
	if (tree_has(cgrp))
		__sync_fetch_and_add(&tree_changes, 1);
}

/* A cgroup's slot on this CPU, created (zero) if need be; NULL if the map is full. */
static __always_inline struct cpu_counter *slot_get(__u64 cgid)
{
	struct cpu_counter *c, zero = {};

	c = bpf_map_lookup_elem(&cg_cpu, &cgid);
	if (c)
		return c;
	/* -EEXIST: another CPU created it first; this CPU's slot starts at zero either way. */
	bpf_map_update_elem(&cg_cpu, &cgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&cg_cpu, &cgid);
}

/*
 * The slot of a cgroup's counter on this CPU, created if need be; NULL if the map is full.
 * A cgroup removed already (its id in cg_gone) is never given one: its parent's is used, so
 * a late charge (the cgroup read online just before its removal, charged just after) neither
 * leaks an entry nobody deletes nor loses its time. The removal handler marks the id gone
 * before it folds and deletes, so a creation that raced it finds the mark on its second look
 * and gives the entry up (this CPU's slot of it is still zero: the charge comes after).
 */
static __always_inline struct cpu_counter *counter_slot(__u64 cgid)
{
	struct cpu_counter *c;
	__u64 *parent, up;

	c = bpf_map_lookup_elem(&cg_cpu, &cgid);
	if (c)
		return c;
	for (int i = 0; i < GONE_MAX_HOPS && (parent = bpf_map_lookup_elem(&cg_gone, &cgid)); i++)
		cgid = *parent;
	c = slot_get(cgid);
	if (!c)
		return NULL;
	parent = bpf_map_lookup_elem(&cg_gone, &cgid);
	if (!parent)
		return c;
	up = *parent;
	bpf_map_delete_elem(&cg_cpu, &cgid);
	return slot_get(up);
}

static __always_inline void counter_add(__u64 cgid, __u64 time_ns, __u64 switches)
{
	struct cpu_counter *c = counter_slot(cgid);

	if (!c) {
		__sync_fetch_and_add(&drops.updates, 1);
		__sync_fetch_and_add(&drops.time_ns, time_ns);
		return;
	}
	c->time_ns += time_ns;
	c->switches += switches;
}

/* What the switch handlers read off the two tasks. */
struct switch_info {
	__u64 prev_cgid, next_cgid; /* 0 for idle */
	__u64 prev, next;	    /* the task_structs, as numbers */
	__u64 prev_runtime_ns;	    /* se.sum_exec_runtime, up to date at this tracepoint */
	__u64 next_runtime_ns;
	__u64 rq, rq_ns, task_ns;   /* next's run queue and its clocks; 0: not known */
	__u64 next_start_ns;	    /* next's start_time */
};

/* SCHED_NORMAL, SCHED_BATCH and SCHED_IDLE: the policies of the fair class. */
#define TALLY_FAIR_POLICIES ((1u << 0) | (1u << 3) | (1u << 5))

/*
 * A fair task's runtime since set_next_entity() last picked it (which sets
 * prev_sum_exec_runtime), ~0 for other classes, which do not keep it. Read only on the rare
 * unseen-switch path, so the common path pays nothing for it.
 */
static __always_inline bool fair_task(struct task_struct *t)
{
	__u32 policy = BPF_CORE_READ(t, policy);

	return policy <= 31 && ((1u << policy) & TALLY_FAIR_POLICIES);
}

static __always_inline __u64 stint_ns(__u64 task)
{
	struct task_struct *t = (void *)task;
	__u64 sum = BPF_CORE_READ(t, se.sum_exec_runtime);
	__u64 prev_sum = BPF_CORE_READ(t, se.prev_sum_exec_runtime);

	if (!fair_task(t) || sum < prev_sum)
		return ~0ULL;
	return sum - prev_sum;
}

/*
 * The task seen switched in here last is not cur, the task on the CPU now: it was switched out
 * unseen (see on_switch), and its stint here went uncounted. While it has not been picked again
 * since (prev_sum_exec_runtime still what it was at that switch-in), its runtime since then is
 * exactly that stint. start_time guards against its memory holding another task now.
 */
static __always_inline void charge_unseen_out(const struct cpu_running *run, __u64 cur)
{
	struct task_struct *t = (void *)run->task;
	__u64 sum;

	if (!run->since_ns || !run->task || !run->cgid || run->task == cur)
		return;
	sum = BPF_CORE_READ(t, se.sum_exec_runtime);
	if (BPF_CORE_READ(t, start_time) == run->task_start_ns &&
	    BPF_CORE_READ(t, se.prev_sum_exec_runtime) == run->since_runtime_ns &&
	    sum > run->since_runtime_ns)
		counter_add(run->cgid, sum - run->since_runtime_ns, 0);
}

/* sw's next is this CPU's task from now on (a switch seen, or adopt_running). */
static __always_inline void run_switch_in(struct cpu_running *run, const struct switch_info *sw,
					  __u64 now)
{
	run->since_ns = now;
	run->cgid = sw->next_cgid;
	run->task = sw->next;
	run->since_runtime_ns = sw->next_runtime_ns;
	/* A CPU's run queue never changes: kept from the last switch that told it. */
	if (sw->rq)
		run->rq = sw->rq;
	run->since_rq_ns = sw->rq_ns;
	run->since_task_ns = sw->task_ns;
	run->task_start_ns = sw->next_start_ns;
}

/*
 * The tp_btf program dereferences BTF pointers directly, which is several times cheaper than
 * the probe-read helpers the raw_tp fallback needs; both then share this.
 */
static __always_inline void on_switch(const struct switch_info *sw)
{
	struct cpu_running *run;
	__u32 zero = 0;
	__u64 now, delta, stint;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run)
		return;
	now = bpf_ktime_get_ns();
	charge_unseen_out(run, sw->prev);
	if (sw->prev_cgid) {
		/* since_ns == 0: the first switch seen after load, the time before it is unknown. */
		if (!run->since_ns)
			delta = 0;
		else if (run->task == sw->prev && sw->prev_runtime_ns >= run->since_runtime_ns)
			delta = sw->prev_runtime_ns - run->since_runtime_ns;
		/*
		 * prev's switch-in was not seen. Some tasks switch without the tracepoint
		 * (seen on this VM: the sandbox's own supervisor threads, whose switches even
		 * ftrace never shows), so the time since the last switch seen is partly theirs.
		 * CFS knows prev's own stint: what it ran since it was last picked.
		 */
		else if ((stint = stint_ns(sw->prev)) != ~0ULL)
			delta = stint;
		else
			delta = now - run->since_ns;
		if (!rollup_levels) {
			counter_add(sw->prev_cgid, delta, 1);
		} else {
			for (__u32 lvl = 0; lvl < 64 && lvl <= rollup_levels; lvl++) {
				__u64 id = bpf_get_current_ancestor_cgroup_id(lvl);

				if (!id)
					break;
				counter_add(id, delta, 1);
			}
		}
	}
	run_switch_in(run, sw, now);
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
	struct switch_info sw = {
		.prev_cgid = task_cgid(prev),
		.next_cgid = task_cgid(next),
		.prev = (__u64)prev,
		.next = (__u64)next,
		.prev_runtime_ns = prev->se.sum_exec_runtime,
		.next_runtime_ns = next->se.sum_exec_runtime,
		.next_start_ns = next->start_time,
	};

	/* A task's cfs_rq (of its group, on its CPU) links to the CPU's run queue. */
	if (sw.next_cgid && bpf_core_field_exists(struct cfs_rq, rq)) {
		struct rq *rq = next->se.cfs_rq->rq;

		if (rq) {
			sw.rq = (__u64)rq;
			sw.rq_ns = rq->clock;
			sw.task_ns = rq->clock_task;
		}
	}
	on_switch(&sw);
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

/*
 * An exiting task leaves its cgroup before its last switch: cgroup_exit() moves it out (seen
 * on 6.18: its css_set's cgroup is the root at that switch), while cpu.stat charged its cgroup
 * at each update of its runtime until then. Charge what it ran since its switch-in here, where
 * it is still in its cgroup (after exit_mm(), the long part of an exit, before cgroup_exit()):
 * its last switch then charges only the rest, to the root, as cpu.stat does. Without this a
 * killed busy task's last stretch (up to hundreds of ms) went to the root. Function hooks
 * (fentry on cgroup_exit) are locked down on some kernels, this one included.
 */
static __always_inline void on_exit(struct task_struct *tsk, __u64 sum, __u64 cgid, __u64 start)
{
	struct cpu_running *run;
	__u32 zero = 0;
	__u64 since, stint;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run || !run->since_ns || rollup_levels)
		return;
	if (run->task == (__u64)tsk) {
		since = run->since_runtime_ns;
	} else {
		/* Its switch-in was not seen (see on_switch): CFS knows what it ran since. */
		stint = stint_ns((__u64)tsk);
		if (!cgid || stint == ~0ULL || stint > sum)
			return;
		charge_unseen_out(run, (__u64)tsk);
		since = sum - stint;
		/* This CPU's task from here: its last switch charges only the rest (below). */
		run->task = (__u64)tsk;
		run->task_start_ns = start;
		run->since_ns = bpf_ktime_get_ns();
	}
	if (!cgid || sum <= since)
		return;
	counter_add(cgid, sum - since, 0);
	/* Charged up to here; in flight no more (the rest is the root's, and short). */
	run->since_runtime_ns = sum;
	run->cgid = 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_process_exit, struct task_struct *tsk)
{
	on_exit(tsk, tsk->se.sum_exec_runtime, task_cgid(tsk), tsk->start_time);
	return 0;
}

/* The same for the raw_tp tier, with probe reads. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(handle_process_exit_raw, struct task_struct *tsk)
{
	on_exit(tsk, BPF_CORE_READ(tsk, se.sum_exec_runtime), task_cgid_probed(tsk),
		BPF_CORE_READ(tsk, start_time));
	return 0;
}

/* Fallback for kernels without BTF-typed tracepoints (tp_btf needs 5.5, commit ac4414b5ca47). */
SEC("raw_tp/sched_switch")
int BPF_PROG(handle_sched_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct switch_info sw = {
		.prev_cgid = task_cgid_probed(prev),
		.next_cgid = task_cgid_probed(next),
		.prev = (__u64)prev,
		.next = (__u64)next,
		.prev_runtime_ns = BPF_CORE_READ(prev, se.sum_exec_runtime),
		.next_runtime_ns = BPF_CORE_READ(next, se.sum_exec_runtime),
		.next_start_ns = BPF_CORE_READ(next, start_time),
	};

	if (sw.next_cgid && bpf_core_field_exists(struct cfs_rq, rq)) {
		struct rq *rq = BPF_CORE_READ(next, se.cfs_rq, rq);

		if (rq) {
			sw.rq = (__u64)rq;
			sw.rq_ns = BPF_CORE_READ(rq, clock);
			sw.task_ns = BPF_CORE_READ(rq, clock_task);
		}
	}
	on_switch(&sw);
	return 0;
}

/*
 * Run by userspace (BPF_PROG_TEST_RUN on each CPU in turn) once, right after attach, never
 * attached: the task a CPU was running when tally loaded. Without it the first switch seen
 * there charged nothing (what ran before was unknown), so a busy task that kept its CPU lost
 * all it ran from load to that switch, while the seed from cpu.stat (taken in between)
 * assumed the counters had it: an agent started next to a busy container read it hundreds
 * of ms low for good. Run in an interrupt on that CPU, current is the task interrupted there.
 * A CPU that saw a switch already (or a reused pinned map) keeps what it has.
 */
SEC("raw_tp")
int adopt_running(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct switch_info sw = {};
	struct cpu_running *run;
	__u32 zero = 0;
	struct rq *rq;

	run = bpf_map_lookup_elem(&cpu_running, &zero);
	if (!run || run->since_ns || !t)
		return 0;
	sw.next = (__u64)t;
	sw.next_cgid = task_cgid_probed(t);
	sw.next_runtime_ns = BPF_CORE_READ(t, se.sum_exec_runtime);
	sw.next_start_ns = BPF_CORE_READ(t, start_time);
	rq = bpf_core_field_exists(struct cfs_rq, rq) ? BPF_CORE_READ(t, se.cfs_rq, rq) : NULL;
	if (rq) {
		sw.rq = (__u64)rq;
		sw.task_ns = BPF_CORE_READ(rq, clock_task);
		sw.rq_ns = BPF_CORE_READ(rq, clock);
	}
	run_switch_in(run, &sw, bpf_ktime_get_ns());
	return 0;
}

/* Filled by read_clocks, read by userspace through the mmap'ed .bss. */
struct cpu_rq_clock rq_clocks[TALLY_CPU_MAX_CPUS] = {};

/*
 * Run by userspace (BPF_PROG_TEST_RUN) at each read, never attached: per CPU, the clocks of
 * the run queue, so a running task's in-flight part can leave out what was stolen since it was
 * switched in, and the task really on the CPU (rq->curr). When that is not the task seen
 * switched in (its switch-in was one of the unseen ones, see on_switch), its cgroup and what
 * it ran since it was picked are read too: that stint is its in-flight part, which the seen
 * task's cgroup must not get instead. clock_task is read before clock: the kernel advances
 * clock first, so a read racing an update sees more stolen time, never less, and the in-flight
 * part errs low. Needs bpf_map_lookup_percpu_elem (5.19); userspace loads it only where that
 * exists.
 */
SEC("raw_tp")
int read_clocks(void *ctx)
{
	__u32 zero = 0;

	for (__u32 cpu = 0; cpu < TALLY_CPU_MAX_CPUS && cpu < nr_cpus; cpu++) {
		struct cpu_running *run = bpf_map_lookup_percpu_elem(&cpu_running, &zero, cpu);
		struct cpu_rq_clock *k = &rq_clocks[cpu];
		__u64 sum = 0, prev_sum = 0, start = 0;
		struct task_struct *t;
		struct rq *rq;
		bool unseen;

		if (!run)
			continue;
		k->curr = k->curr_cgid = k->curr_stint_ns = 0;
		/* (The kernel's per-CPU runqueues symbol is not in every kallsyms: not here.) */
		rq = (struct rq *)run->rq;
		if (!rq)
			continue;
		t = BPF_CORE_READ(rq, curr);
		k->curr = (__u64)t;
		/* Switched in unseen, and of the fair class, which keeps its stint. */
		unseen = t && k->curr != run->task && BPF_CORE_READ(t, pid) && fair_task(t);
		/*
		 * Read in the order update_curr() writes backwards (it advances clock_task, sets
		 * exec_start, then adds to sum_exec_runtime), so a race loses the latest delta,
		 * never counts it twice.
		 */
		if (unseen) {
			prev_sum = BPF_CORE_READ(t, se.prev_sum_exec_runtime);
			sum = BPF_CORE_READ(t, se.sum_exec_runtime);
			start = BPF_CORE_READ(t, se.exec_start);
		}
		k->task_ns = BPF_CORE_READ(rq, clock_task);
		k->rq_ns = BPF_CORE_READ(rq, clock);
		if (!unseen || sum < prev_sum)
			continue;
		k->curr_cgid = task_cgid_probed(t);
		k->curr_stint_ns = sum - prev_sum + (k->task_ns > start ? k->task_ns - start : 0);
	}
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
	/* Gone from kernfs already (kernfs_remove came first): a walk from now on misses it. */
	tree_changed(cgrp);
	id = BPF_CORE_READ(cgrp, kn, id);
	parent = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
	/* Marked first: a charge that misses the fold below finds the mark (counter_slot). */
	if (parent && !rollup_levels)
		bpf_map_update_elem(&cg_gone, &id, &parent, BPF_ANY);
	for (__u32 cpu = 0; cpu < TALLY_CPU_MAX_CPUS && cpu < nr_cpus; cpu++) {
		c = bpf_map_lookup_percpu_elem(&cg_cpu, &id, cpu);
		if (c) {
			sum.time_ns += c->time_ns;
			sum.switches += c->switches;
		}
	}
	if (parent && (sum.time_ns || sum.switches) && !rollup_levels)
		counter_add(parent, sum.time_ns, sum.switches);
	bpf_map_delete_elem(&cg_cpu, &id);
	return 0;
}

/*
 * A new cgroup. The kernel fires this just before kernfs_activate() makes the directory
 * visible, so a walk right after the bump can miss it: the collector trusts a walk only once
 * the counter held still over the next collection period as well.
 */
SEC("raw_tp/cgroup_mkdir")
int BPF_PROG(handle_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	tree_changed(cgrp);
	return 0;
}

/*
 * A renamed cgroup (after kernfs_rename). Cgroup v2 refuses renames today (its kernfs syscall
 * ops have no .rename, so rename(2) fails with EPERM) and this fires for v1 only, which
 * tree_has turns down; it is here so that a kernel that allows them cannot leave stale paths.
 */
SEC("raw_tp/cgroup_rename")
int BPF_PROG(handle_cgroup_rename, struct cgroup *cgrp, const char *path)
{
	tree_changed(cgrp);
	return 0;
}
